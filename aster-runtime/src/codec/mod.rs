//! Payload codecs: how user request/response values become frame payloads.
//!
//! * [`Message`] is what a request or response type implements; it encodes and decodes itself
//!   in a given [`SerializationMode`]. `#[derive(AsterType)]` (crate `aster`) writes the
//!   impl for JSON + NATIVE + XLANG together with the contract description; the exported
//!   [`impl_message!`](crate::impl_message) macro writes a JSON + NATIVE impl without one.
//! * [`json`]: compact JSON like the Python reference, strict decoding (unknown keys →
//!   `CONTRACT_VIOLATION`).
//! * [`native`]: Fory 1.7.7 native (Rust ↔ Rust) mode with one cached `Fory` per type.
//! * [`xlang`]: the pyfory-0.16 XLANG bytes of aster-rpc 0.1.2 (`NAMED_STRUCT` + struct hash),
//!   driven by a per-type field schema ([`xlang::XlangStruct`]).
//! * [`compress`]: zstd level 3 above a size threshold; bounded decompression.
//! * [`PayloadCodec`]: mode + compression settings; turns a [`Message`] into
//!   `(frame flags, payload)` and back.
//!
//! XLANG needs the field schema only the derive knows (and an explicit wire tag, as in
//! Python): types implemented with [`impl_message!`](crate::impl_message) or derived with
//! `#[aster(untagged)]` answer XLANG with the `UNIMPLEMENTED` status of [`unsupported_mode`],
//! as every type does for ROW.

use bytes::Bytes;

use crate::wire::{SerializationMode, Status};

pub mod compress;
pub mod json;
pub mod native;
pub mod xlang;

mod macros;

/// Frame flag bit set when a payload is zstd-compressed (mirrors `wire::flags::COMPRESSED`).
const COMPRESSED: u8 = crate::wire::flags::COMPRESSED;

/// Default limit on a decompressed payload: 16 MiB (`MAX_DECOMPRESSED_SIZE` of the reference).
pub const DEFAULT_MAX_DECOMPRESSED: usize = crate::wire::limits::MAX_DECOMPRESSED_SIZE;

/// Default compression threshold: payloads strictly larger than 4096 bytes are compressed
/// (`DEFAULT_COMPRESSION_THRESHOLD` of the reference).
pub const DEFAULT_COMPRESSION_THRESHOLD: usize = crate::wire::limits::COMPRESSION_THRESHOLD;

/// A request or response type that can be carried in Aster frames.
///
/// Implementations encode and decode themselves for a [`SerializationMode`]. A mode the type
/// does not support must return a `Status` (normally [`unsupported_mode`]), never panic.
/// Compression is not the type's business: [`PayloadCodec`] applies it to the encoded bytes
/// (NATIVE and XLANG above 4096 bytes, never JSON).
///
/// Implement it with `#[derive(AsterType)]` (JSON + NATIVE + XLANG),
/// [`impl_message!`](crate::impl_message) (JSON + NATIVE) or by hand.
pub trait Message: Send + Sized + 'static {
    /// The wire tag `"namespace/TypeName"` (split at the last `/`, like `@wire_type`).
    fn wire_tag() -> &'static str;

    /// Appends the encoding of `self` in `mode` to `out` (uncompressed).
    fn encode_payload(&self, mode: SerializationMode, out: &mut Vec<u8>) -> Result<(), Status>;

    /// Decodes a value from an uncompressed payload in `mode`.
    fn decode_payload(mode: SerializationMode, bytes: &[u8]) -> Result<Self, Status>;
}

/// The `UNIMPLEMENTED` status for a mode a user type cannot use: ROW always, XLANG for types
/// without an XLANG codec (`impl_message!`, `#[aster(untagged)]`).
pub fn unsupported_mode(mode: SerializationMode, wire_tag: &str) -> Status {
    match mode {
        SerializationMode::Xlang => Status::unimplemented(format!(
            "type {wire_tag} has no XLANG codec: XLANG needs #[derive(AsterType)] with an explicit \
             #[aster(tag = \"namespace/TypeName\")] (impl_message! and untagged types support JSON and NATIVE)"
        )),
        SerializationMode::Row => Status::unimplemented(format!(
            "ROW payloads are not implemented by aster-rs (type {wire_tag}); use JSON or NATIVE"
        )),
        other => Status::unimplemented(format!("serialization mode {other} is not supported by type {wire_tag}")),
    }
}

/// Encodes and decodes [`Message`] payloads for one serialization mode.
///
/// `Copy` and three words large; hold one per call or per stream. Encoding produces the frame
/// flags (`0` or `COMPRESSED`) together with the payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadCodec {
    mode: SerializationMode,
    compression_threshold: Option<usize>,
    max_decompressed: usize,
}

impl PayloadCodec {
    /// A codec for `mode` with the reference defaults: compress above 4096 bytes (never in
    /// JSON mode), accept at most 16 MiB after decompression.
    pub fn new(mode: SerializationMode) -> PayloadCodec {
        PayloadCodec {
            mode,
            compression_threshold: Some(DEFAULT_COMPRESSION_THRESHOLD),
            max_decompressed: DEFAULT_MAX_DECOMPRESSED,
        }
    }

    /// Sets the compression threshold: payloads strictly larger than it are compressed;
    /// `None` turns compression off. JSON mode never compresses, whatever this says.
    pub fn with_compression_threshold(mut self, threshold: Option<usize>) -> PayloadCodec {
        self.compression_threshold = threshold;
        self
    }

    /// Sets the largest decompressed payload accepted (default 16 MiB).
    pub fn with_max_decompressed(mut self, max: usize) -> PayloadCodec {
        self.max_decompressed = max;
        self
    }

    /// The serialization mode.
    pub fn mode(&self) -> SerializationMode {
        self.mode
    }

    /// The compression threshold in effect (`None` = off; JSON mode never compresses).
    pub fn compression_threshold(&self) -> Option<usize> {
        self.compression_threshold
    }

    /// The decompressed-size limit.
    pub fn max_decompressed(&self) -> usize {
        self.max_decompressed
    }

    /// True when a payload of `len` encoded bytes would be compressed by this codec.
    pub fn should_compress(&self, len: usize) -> bool {
        self.mode != SerializationMode::Json && self.compression_threshold.is_some_and(|t| len > t)
    }

    /// Encodes `msg` in this codec's mode; returns the frame flags and the payload.
    pub fn encode<M: Message>(&self, msg: &M) -> Result<(u8, Bytes), Status> {
        with_scratch(|buf| {
            msg.encode_payload(self.mode, buf)?;
            if self.should_compress(buf.len())
                && let Ok(packed) = compress::compress(buf)
            {
                return Ok((COMPRESSED, tight(packed)));
            }
            Ok((0, take_or_copy(buf)))
        })
    }

    /// Encodes `msg` as one complete data frame (length prefix, flags, payload; compressed
    /// when the codec would), built in a single buffer: what a streaming sender queues.
    pub fn encode_frame<M: Message>(&self, msg: &M) -> Result<Bytes, Status> {
        const PREFIX: usize = crate::wire::frame::FRAME_OVERHEAD;
        with_scratch(|buf| {
            buf.extend_from_slice(&[0; PREFIX]);
            msg.encode_payload(self.mode, buf)?;
            let mut flags = 0;
            let packed =
                if self.should_compress(buf.len() - PREFIX) { compress::compress(&buf[PREFIX..]).ok() } else { None };
            let payload_len = packed.as_ref().map_or(buf.len() - PREFIX, Vec::len);
            if packed.is_some() {
                flags = COMPRESSED;
            }
            // The same rules `wire::encode_frame` applies (an empty payload is no data frame).
            crate::wire::frame::check_flags(flags, payload_len).map_err(|e| e.to_status())?;
            let len = u32::try_from(payload_len + 1).unwrap_or(u32::MAX);
            crate::wire::frame::check_length(len, crate::wire::limits::MAX_FRAME_SIZE).map_err(|e| e.to_status())?;
            if let Some(packed) = packed {
                buf.truncate(PREFIX);
                buf.extend_from_slice(&packed);
            }
            buf[..4].copy_from_slice(&len.to_le_bytes());
            buf[4] = flags;
            Ok(take_or_copy(buf))
        })
    }

    /// Wraps an already encoded payload: compresses it when the codec would and returns the
    /// frame flags with the payload.
    ///
    /// Never fails: should zstd itself fail (allocation), the payload goes out uncompressed
    /// with flags `0`, which every receiver accepts.
    pub fn encode_raw(&self, bytes: Vec<u8>) -> (u8, Bytes) {
        if self.should_compress(bytes.len())
            && let Ok(packed) = compress::compress(&bytes)
        {
            return (COMPRESSED, tight(packed));
        }
        (0, tight(bytes))
    }

    /// Decodes a payload whose frame had `flags`; decompresses first when `flags` has
    /// `COMPRESSED` (in any mode). Other flag bits are ignored here.
    pub fn decode<M: Message>(&self, flags: u8, payload: &[u8]) -> Result<M, Status> {
        if flags & COMPRESSED != 0 {
            let plain = compress::decompress(payload, self.max_decompressed)?;
            M::decode_payload(self.mode, &plain)
        } else {
            M::decode_payload(self.mode, payload)
        }
    }

    /// The uncompressed payload of a frame: decompresses when `flags` has `COMPRESSED`,
    /// otherwise returns `payload` itself (no copy).
    pub fn decode_raw(&self, flags: u8, payload: Bytes) -> Result<Bytes, Status> {
        if flags & COMPRESSED != 0 {
            compress::decompress(&payload, self.max_decompressed).map(Bytes::from)
        } else {
            Ok(payload)
        }
    }
}

thread_local! {
    /// Per-thread scratch space payloads are encoded into, then copied out at their exact size
    /// (one allocation per message instead of a growing buffer plus a shared-bytes header); a
    /// payload too large to keep the buffer for is taken instead of copied.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The scratch buffer larger than which a thread does not keep it between messages.
const SCRATCH_KEEP: usize = 64 * 1024;

/// The bytes of `buf`: copied out at their exact size when small (the scratch buffer is kept),
/// taken without a copy when large (the thread would not keep such a buffer anyway).
fn take_or_copy(buf: &mut Vec<u8>) -> Bytes {
    if buf.capacity() > SCRATCH_KEEP { tight(std::mem::take(buf)) } else { Bytes::copy_from_slice(buf) }
}

/// `v` as `Bytes` without holding much more memory than its length (a zstd output buffer is
/// sized for the worst case; a grown `Vec` may have up to twice its length).
fn tight(v: Vec<u8>) -> Bytes {
    if v.capacity() > v.len().saturating_mul(2).max(64) { Bytes::copy_from_slice(&v) } else { Bytes::from(v) }
}

/// Runs `f` with an empty scratch buffer (this thread's, or a fresh one if it is in use).
fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            let r = f(&mut buf);
            if buf.capacity() > SCRATCH_KEEP {
                *buf = Vec::new();
            }
            r
        }
        // Re-entered (an encoder that encodes another message itself): a buffer of its own.
        Err(_) => f(&mut Vec::new()),
    })
}

/// Support code for [`impl_message!`](crate::impl_message); not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use ::fory;
    pub use ::serde;

    use super::{Message, json, native, unsupported_mode, xlang};
    use crate::wire::{SerializationMode, Status};

    /// `encode_payload` of a JSON + NATIVE + XLANG message (`#[derive(AsterType)]` with a tag).
    pub fn encode_json_native_xlang<T>(value: &T, mode: SerializationMode, out: &mut Vec<u8>) -> Result<(), Status>
    where
        T: Message + serde::Serialize + native::NativeMessage + xlang::XlangStruct,
    {
        match mode {
            SerializationMode::Xlang => xlang::encode(value, out),
            other => encode_json_native(value, other, out),
        }
    }

    /// `decode_payload` of a JSON + NATIVE + XLANG message.
    pub fn decode_json_native_xlang<T>(mode: SerializationMode, bytes: &[u8]) -> Result<T, Status>
    where
        T: Message + serde::de::DeserializeOwned + native::NativeMessage + xlang::XlangStruct,
    {
        match mode {
            SerializationMode::Xlang => xlang::decode(bytes),
            other => decode_json_native(other, bytes),
        }
    }

    /// `encode_payload` of a JSON + NATIVE message.
    pub fn encode_json_native<T>(value: &T, mode: SerializationMode, out: &mut Vec<u8>) -> Result<(), Status>
    where
        T: Message + serde::Serialize + native::NativeMessage,
    {
        match mode {
            SerializationMode::Json => json::encode(value, out),
            SerializationMode::Native => T::native_fory().encode(value, out),
            other => Err(unsupported_mode(other, T::wire_tag())),
        }
    }

    /// `decode_payload` of a JSON + NATIVE message.
    pub fn decode_json_native<T>(mode: SerializationMode, bytes: &[u8]) -> Result<T, Status>
    where
        T: Message + serde::de::DeserializeOwned + native::NativeMessage,
    {
        match mode {
            SerializationMode::Json => json::decode_strict(bytes, T::wire_tag()),
            SerializationMode::Native => T::native_fory().decode(bytes),
            other => Err(unsupported_mode(other, T::wire_tag())),
        }
    }

    /// `encode_payload` of a JSON-only message.
    pub fn encode_json_only<T>(value: &T, mode: SerializationMode, out: &mut Vec<u8>) -> Result<(), Status>
    where
        T: Message + serde::Serialize,
    {
        match mode {
            SerializationMode::Json => json::encode(value, out),
            other => Err(unsupported_mode(other, T::wire_tag())),
        }
    }

    /// `decode_payload` of a JSON-only message.
    pub fn decode_json_only<T>(mode: SerializationMode, bytes: &[u8]) -> Result<T, Status>
    where
        T: Message + serde::de::DeserializeOwned,
    {
        match mode {
            SerializationMode::Json => json::decode_strict(bytes, T::wire_tag()),
            other => Err(unsupported_mode(other, T::wire_tag())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Code;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, fory::ForyStruct, Debug, PartialEq, Clone, Default)]
    struct Step {
        n: i32,
        label: String,
    }

    #[derive(Serialize, Deserialize, fory::ForyStruct, Debug, PartialEq, Clone, Default)]
    struct Job {
        task_id: String,
        title: String,
        priority: i32,
        tags: Vec<String>,
        steps: Vec<Step>,
        first: Option<Step>,
    }

    crate::impl_message!(Job, "taskmgr/Job"; nested = [Step]);

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Ping {
        seq: u64,
    }

    crate::impl_message!(Ping, "demo/Ping"; json_only);

    fn job(title_len: usize) -> Job {
        Job {
            task_id: "t-1".into(),
            title: "x".repeat(title_len),
            priority: 3,
            tags: vec!["a".into(), "b".into()],
            steps: vec![Step { n: 1, label: "one".into() }],
            first: Some(Step { n: 0, label: String::new() }),
        }
    }

    #[test]
    fn codec_is_small_and_copy() {
        fn is_copy<T: Copy + Send + Sync>() {}
        is_copy::<PayloadCodec>();
        assert!(std::mem::size_of::<PayloadCodec>() <= 32);
        let c = PayloadCodec::new(SerializationMode::Native);
        assert_eq!(c.mode(), SerializationMode::Native);
        assert_eq!(c.compression_threshold(), Some(4096));
        assert_eq!(c.max_decompressed(), 16 << 20);
    }

    #[test]
    fn small_payloads_round_trip_uncompressed_in_both_modes() {
        for mode in [SerializationMode::Json, SerializationMode::Native] {
            let codec = PayloadCodec::new(mode);
            let (flags, payload) = codec.encode(&job(10)).unwrap();
            assert_eq!(flags, 0, "{mode}");
            let back: Job = codec.decode(flags, &payload).unwrap();
            assert_eq!(back, job(10));
        }
        let (_, json) = PayloadCodec::new(SerializationMode::Json).encode(&job(1)).unwrap();
        assert_eq!(
            &json[..],
            br#"{"task_id":"t-1","title":"x","priority":3,"tags":["a","b"],"steps":[{"n":1,"label":"one"}],"first":{"n":0,"label":""}}"#
        );
    }

    #[test]
    fn large_native_payloads_are_compressed_json_never() {
        let native = PayloadCodec::new(SerializationMode::Native);
        let (flags, payload) = native.encode(&job(10_000)).unwrap();
        assert_eq!(flags, COMPRESSED);
        assert_eq!(&payload[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert!(payload.len() < 1000);
        assert_eq!(native.decode::<Job>(flags, &payload).unwrap(), job(10_000));

        let json = PayloadCodec::new(SerializationMode::Json);
        let (flags, payload) = json.encode(&job(10_000)).unwrap();
        assert_eq!(flags, 0);
        assert!(payload.len() > 10_000);
        // ... but a compressed JSON payload is accepted
        let (cflags, cpayload) = PayloadCodec::new(SerializationMode::Native).encode_raw(payload.to_vec());
        assert_eq!(cflags, COMPRESSED);
        assert_eq!(json.decode::<Job>(cflags, &cpayload).unwrap(), job(10_000));
    }

    #[test]
    fn threshold_is_strictly_greater_and_can_be_disabled() {
        let c = PayloadCodec::new(SerializationMode::Native).with_compression_threshold(Some(10));
        assert_eq!(c.encode_raw(vec![0; 10]).0, 0);
        assert_eq!(c.encode_raw(vec![0; 11]).0, COMPRESSED);
        let off = c.with_compression_threshold(None);
        assert_eq!(off.encode_raw(vec![0; 1 << 20]).0, 0);
        assert!(!PayloadCodec::new(SerializationMode::Json).should_compress(1 << 20));
        assert!(PayloadCodec::new(SerializationMode::Xlang).should_compress(4097));
        assert!(!PayloadCodec::new(SerializationMode::Xlang).should_compress(4096));
    }

    #[test]
    fn decompression_limit_applies() {
        let c = PayloadCodec::new(SerializationMode::Native).with_max_decompressed(1000);
        let (flags, payload) = c.encode(&job(10_000)).unwrap();
        let err = c.decode::<Job>(flags, &payload).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(err.message().contains("1000"), "{err}");
        let err = c.decode_raw(flags, payload).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        let err = c.decode::<Job>(COMPRESSED, b"garbage").unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
    }

    #[test]
    fn decode_raw_passes_plain_payloads_through() {
        let c = PayloadCodec::new(SerializationMode::Native);
        let plain = Bytes::from_static(b"abc");
        let out = c.decode_raw(0x04, plain.clone()).unwrap();
        assert_eq!(out.as_ptr(), plain.as_ptr(), "no copy");
        let (f, p) = c.with_compression_threshold(Some(0)).encode_raw(b"abc".to_vec());
        assert_eq!(f, COMPRESSED);
        assert_eq!(&c.decode_raw(f, p).unwrap()[..], b"abc");
    }

    #[test]
    fn xlang_and_row_are_unimplemented_for_impl_message_types() {
        for mode in [SerializationMode::Xlang, SerializationMode::Row] {
            let c = PayloadCodec::new(mode);
            let err = c.encode(&job(1)).unwrap_err();
            assert_eq!(err.code(), Code::Unimplemented);
            let err = c.decode::<Job>(0, b"\x02\xff").unwrap_err();
            assert_eq!(err.code(), Code::Unimplemented);
        }
        let err = PayloadCodec::new(SerializationMode::Xlang).encode(&job(1)).unwrap_err();
        assert!(err.message().contains("type taskmgr/Job has no XLANG codec"), "{err}");
        assert!(err.message().contains("#[derive(AsterType)]"), "{err}");
    }

    #[test]
    fn json_only_messages() {
        let json = PayloadCodec::new(SerializationMode::Json);
        let (f, p) = json.encode(&Ping { seq: 7 }).unwrap();
        assert_eq!(&p[..], br#"{"seq":7}"#);
        assert_eq!(json.decode::<Ping>(f, &p).unwrap(), Ping { seq: 7 });
        let err = PayloadCodec::new(SerializationMode::Native).encode(&Ping { seq: 1 }).unwrap_err();
        assert_eq!(err.code(), Code::Unimplemented);
        assert_eq!(<Ping as Message>::wire_tag(), "demo/Ping");
    }

    #[test]
    fn strict_json_through_the_codec() {
        let json = PayloadCodec::new(SerializationMode::Json);
        let err = json
            .decode::<Job>(0, br#"{"task_id":"a","title":"","priority":1,"tags":[],"steps":[{"n":1,"label":"","colour":1}],"first":null}"#)
            .unwrap_err();
        assert_eq!(err.code(), Code::ContractViolation);
        assert_eq!(err.detail("location"), Some("Job.steps[0]"));
        assert_eq!(err.detail("expected_class"), Some("Step"));
    }

    /// Splits a capture into frames: (flags, payload).
    fn frames(bin: &[u8]) -> Vec<(u8, &[u8])> {
        let mut out = Vec::new();
        let mut rest = bin;
        while !rest.is_empty() {
            let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
            out.push((rest[4], &rest[5..4 + len]));
            rest = &rest[4 + len..];
        }
        out
    }

    fn golden(name: &str) -> Vec<u8> {
        crate::test_vectors::read(&format!("golden/{name}"))
    }

    #[test]
    fn golden_compressed_request_decompresses() {
        let bin = golden("unary_assign_task_compressed.c2s.bin");
        let frames = frames(&bin);
        assert_eq!(frames.len(), 2);
        let (flags, payload) = frames[1];
        assert_eq!(flags, 0x01);
        let c = PayloadCodec::new(SerializationMode::Xlang);
        let plain = c.decode_raw(flags, Bytes::copy_from_slice(payload)).unwrap();
        // pyfory 0.16 XLANG: header 0x02, then the NAMED_STRUCT TaskAssignment with
        // task_id 't-big' and a title of 5000 'x' (see the capture's .txt)
        assert_eq!(&plain[..2], &[0x02, 0xff]);
        let text = plain.windows(5).any(|w| w == b"t-big");
        assert!(text);
        let xs = plain.iter().filter(|&&b| b == b'x').count();
        assert!(xs >= 4096, "{xs}");
        assert!(plain.len() > 4096);
        // our level-3 compressor reproduces the Python peer's bytes (same zstd parameters)
        let (cflags, repacked) = PayloadCodec::new(SerializationMode::Xlang).encode_raw(plain.to_vec());
        assert_eq!(cflags, COMPRESSED);
        assert_eq!(&repacked[..], payload);
        // a limit below its size is enforced
        let err = c.with_max_decompressed(1024).decode_raw(flags, Bytes::copy_from_slice(payload));
        assert_eq!(err.unwrap_err().code(), Code::ResourceExhausted);
    }

    #[test]
    fn golden_json_request_decodes_through_the_codec() {
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct TaskAssignment {
            task_id: String,
            title: String,
            priority: i32,
            tags: Vec<String>,
        }
        crate::impl_message!(TaskAssignment, "taskmgr/TaskAssignment"; json_only);

        let bin = golden("json_mode_unary.c2s.bin");
        let frames = frames(&bin);
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[0].0, 0x04);
        assert_eq!(frames[0].1[0], b'{');
        let c = PayloadCodec::new(SerializationMode::Json);
        let t: TaskAssignment = c.decode(frames[1].0, frames[1].1).unwrap();
        assert_eq!(
            t,
            TaskAssignment {
                task_id: "json-1".into(),
                title: "from raw client".into(),
                priority: 5,
                tags: vec!["raw".into()],
            }
        );
        // the Python server's JSON response re-encodes byte for byte
        #[derive(Serialize, Deserialize, Debug, PartialEq)]
        struct TaskAck {
            task_id: String,
            accepted: bool,
            worker: String,
        }
        crate::impl_message!(TaskAck, "taskmgr/TaskAck"; json_only);
        let reply = golden("json_mode_unary.s2c.bin");
        let reply = frames_owned(&reply);
        assert_eq!(reply.len(), 2);
        assert_eq!(reply[0].0, 0x00);
        let ack: TaskAck = c.decode(reply[0].0, &reply[0].1).unwrap();
        assert_eq!(ack, TaskAck { task_id: "json-1".into(), accepted: true, worker: "py-worker-1".into() });
        let (flags, again) = c.encode(&ack).unwrap();
        assert_eq!(flags, 0);
        assert_eq!(&again[..], &reply[0].1[..]);
        assert_eq!(reply[1].0, 0x02);
        assert_eq!(reply[1].1, br#"{"code":0,"message":"","detailKeys":[],"detailValues":[]}"#);
    }

    fn frames_owned(bin: &[u8]) -> Vec<(u8, Vec<u8>)> {
        frames(bin).into_iter().map(|(f, p)| (f, p.to_vec())).collect()
    }

    #[test]
    fn encode_frame_is_the_frame_of_encode() {
        // (impl_message! types have no XLANG codec; the derive's XLANG path is tested elsewhere.)
        for mode in [SerializationMode::Native, SerializationMode::Json] {
            let codec = PayloadCodec::new(mode);
            // Small (plain), large (compressed, except JSON) and larger than the kept scratch.
            for len in [10, 10_000, 100_000] {
                let msg = job(len);
                let (flags, payload) = codec.encode(&msg).unwrap();
                let mut expected = bytes::BytesMut::new();
                crate::wire::encode_frame(flags, &payload, &mut expected).unwrap();
                let frame = codec.encode_frame(&msg).unwrap();
                assert_eq!(frame[..], expected[..], "{mode} {len}");
                let compressed = mode != SerializationMode::Json && len > 4096;
                assert_eq!(frame[4] & crate::wire::flags::COMPRESSED != 0, compressed, "{mode} {len}");
                let back: Job = codec.decode(frame[4], &frame[5..]).unwrap();
                assert_eq!(back, msg);
            }
        }
    }
}
