//! Frames: `[u32 LE length][u8 flags][payload]`, length = 1 + payload length.
//!
//! Rules (protocol reference §3.1, `conformance/vectors/framing.json`):
//! * length 0 is invalid ([`FrameError::ZeroLength`]); length > the maximum (16 MiB by
//!   default) is invalid ([`FrameError::TooLarge`]) — both are detected as soon as the four
//!   length bytes are present, before any payload is buffered;
//! * the reserved flag bit 0x80 must be 0 ([`FrameError::ReservedFlags`]);
//! * an empty payload is legal only with TRAILER, CANCEL or END_STREAM
//!   ([`FrameError::EmptyPayload`]).
//!
//! Encoding applies the same rules, so this module never emits a frame a peer rejects.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::wire::limits::MAX_FRAME_SIZE;
use crate::wire::status::Status;

/// Frame flag bits.
pub mod flags {
    /// Payload is zstd-compressed.
    pub const COMPRESSED: u8 = 0x01;
    /// Payload is an RpcStatus (last frame of a call).
    pub const TRAILER: u8 = 0x02;
    /// Payload is a StreamHeader (first frame of a stream).
    pub const HEADER: u8 = 0x04;
    /// Payload is a Fory row schema (ROW mode).
    pub const ROW_SCHEMA: u8 = 0x08;
    /// Payload is a CallHeader (v0.1 session streams).
    pub const CALL: u8 = 0x10;
    /// Cancel the current call (v0.1 session streams); payload empty.
    pub const CANCEL: u8 = 0x20;
    /// Last request frame of a call (v0.2 dialect only; accepted, never required in v0.1).
    pub const END_STREAM: u8 = 0x40;
    /// Reserved, must be 0.
    pub const RESERVED: u8 = 0x80;
    /// Flags that allow an empty payload.
    pub const EMPTY_PAYLOAD_OK: u8 = TRAILER | CANCEL | END_STREAM;
}

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Bytes before the payload (length prefix + flags).
pub const FRAME_OVERHEAD: usize = 5;

/// Most bytes the decoder reserves ahead for an incomplete frame (the buffer still grows to
/// any legal frame size as data arrives; this only bounds allocation per announced length).
const MAX_RESERVE_AHEAD: usize = 64 * 1024;

/// A violation of the frame rules.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length field is 0 (a frame has at least the flags byte).
    #[error("zero-length frame (length field 0)")]
    ZeroLength,
    /// The length field exceeds the maximum frame size.
    #[error("frame size exceeds maximum: length {len} > {max}")]
    TooLarge {
        /// The announced length (flags + payload), saturated to `u32::MAX` when encoding.
        len: u32,
        /// The maximum in force.
        max: u32,
    },
    /// The reserved flag bit 0x80 is set.
    #[error("reserved frame flag bit 0x80 set (flags 0x{0:02x})")]
    ReservedFlags(u8),
    /// An empty payload without TRAILER, CANCEL or END_STREAM.
    #[error(
        "zero-length payload is not permitted with flags 0x{flags:02x} \
         (only TRAILER, CANCEL or END_STREAM frames may be empty)"
    )]
    EmptyPayload {
        /// The frame's flags.
        flags: u8,
    },
    /// The stream ended in the middle of a frame.
    #[error("stream ended mid-frame: needed {needed} bytes, have {have}")]
    Truncated {
        /// Bytes the incomplete frame needs in total (4 while the length is unknown).
        needed: usize,
        /// Bytes that were available.
        have: usize,
    },
}

impl FrameError {
    /// The status a call fails with because of this error:
    /// * `TooLarge` → `RESOURCE_EXHAUSTED` (a size limit, as in the Python peer);
    /// * `ZeroLength`, `ReservedFlags`, `EmptyPayload` → `INVALID_ARGUMENT` (the peer sent
    ///   a malformed frame);
    /// * `Truncated` → `INTERNAL` (the peer closed its side mid-frame: a protocol violation,
    ///   not a transport failure, which would be `UNAVAILABLE`).
    pub fn to_status(&self) -> Status {
        let msg = format!("framing error: {self}");
        match self {
            FrameError::TooLarge { .. } => Status::resource_exhausted(msg),
            FrameError::ZeroLength | FrameError::ReservedFlags(_) | FrameError::EmptyPayload { .. } => {
                Status::invalid_argument(msg)
            }
            FrameError::Truncated { .. } => Status::internal(msg),
        }
    }
}

/// Checks flags and payload size of a frame (reserved bit, empty payload rule).
pub fn check_flags(flags: u8, payload_len: usize) -> Result<(), FrameError> {
    if flags & flags::RESERVED != 0 {
        return Err(FrameError::ReservedFlags(flags));
    }
    if payload_len == 0 && flags & flags::EMPTY_PAYLOAD_OK == 0 {
        return Err(FrameError::EmptyPayload { flags });
    }
    Ok(())
}

/// Checks a length field (flags + payload) against `max`.
pub fn check_length(len: u32, max: u32) -> Result<(), FrameError> {
    if len == 0 {
        return Err(FrameError::ZeroLength);
    }
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(())
}

/// One frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Flag bits (see [`flags`]).
    pub flags: u8,
    /// The payload (possibly compressed, see [`flags::COMPRESSED`]).
    pub payload: Bytes,
}

impl Frame {
    /// A frame with `flags` and `payload` (not validated until encoded).
    pub fn new(flags: u8, payload: impl Into<Bytes>) -> Frame {
        Frame { flags, payload: payload.into() }
    }

    /// True when every bit of `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        flag != 0 && self.flags & flag == flag
    }

    /// Bytes of the encoded frame (5 + payload length).
    pub fn encoded_len(&self) -> usize {
        FRAME_OVERHEAD + self.payload.len()
    }

    /// Appends the encoded frame to `dst` after checking the frame rules.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), FrameError> {
        encode_frame(self.flags, &self.payload, dst)
    }
}

/// Appends `length u32 LE (= 1 + payload len) | flags | payload` to `dst`, after checking the
/// frame rules against [`MAX_FRAME_SIZE`]. Nothing is written on error.
pub fn encode_frame(flags: u8, payload: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
    check_flags(flags, payload.len())?;
    let len = payload.len().saturating_add(1);
    let len32 = u32::try_from(len).unwrap_or(u32::MAX);
    check_length(len32, MAX_FRAME_SIZE)?;
    dst.reserve(LENGTH_PREFIX_LEN + len);
    dst.put_u32_le(len32);
    dst.put_u8(flags);
    dst.put_slice(payload);
    Ok(())
}

/// Incremental, sans-IO frame decoder: feed bytes into a `BytesMut`, call
/// [`decode`](FrameDecoder::decode) until it returns `Ok(None)`.
///
/// Errors are fatal for the stream: the offending bytes are left in the buffer and the
/// stream should be reset (after a trailer where the protocol asks for one).
#[derive(Clone, Debug)]
pub struct FrameDecoder {
    max_frame_size: u32,
}

impl Default for FrameDecoder {
    fn default() -> FrameDecoder {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder with the protocol maximum [`MAX_FRAME_SIZE`] (16 MiB).
    pub fn new() -> FrameDecoder {
        FrameDecoder { max_frame_size: MAX_FRAME_SIZE }
    }

    /// A decoder rejecting length fields above `max` (at least 1, at most [`MAX_FRAME_SIZE`]).
    pub fn with_max_frame_size(max: u32) -> FrameDecoder {
        FrameDecoder { max_frame_size: max.clamp(1, MAX_FRAME_SIZE) }
    }

    /// The maximum length field accepted.
    pub fn max_frame_size(&self) -> u32 {
        self.max_frame_size
    }

    /// Takes the next complete frame off the front of `src`. `Ok(None)` = more bytes are
    /// needed (nothing consumed). Length and flags are validated as soon as they are
    /// present, so an oversized frame is rejected after its first 4 bytes.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(total) = self.complete_len(src)? else {
            let need = expected_len(src).saturating_sub(src.len());
            src.reserve(need.min(MAX_RESERVE_AHEAD));
            return Ok(None);
        };
        src.advance(LENGTH_PREFIX_LEN);
        let flags = src.get_u8();
        let payload = src.split_to(total - LENGTH_PREFIX_LEN - 1).freeze();
        Ok(Some(Frame { flags, payload }))
    }

    /// Like [`decode`](FrameDecoder::decode), but takes the frame off a shared [`Bytes`]
    /// without copying: the payload is a slice of `src`. `Ok(None)` = `src` holds no complete
    /// frame (nothing consumed).
    pub fn decode_shared(&mut self, src: &mut Bytes) -> Result<Option<Frame>, FrameError> {
        let Some(total) = self.complete_len(src)? else {
            return Ok(None);
        };
        let mut frame = src.split_to(total);
        frame.advance(LENGTH_PREFIX_LEN);
        let flags = frame.get_u8();
        Ok(Some(Frame { flags, payload: frame }))
    }

    /// Validates the length prefix (and the flags, once present) at the front of `src`;
    /// `Some(total frame length)` when the whole frame is there.
    fn complete_len(&self, src: &[u8]) -> Result<Option<usize>, FrameError> {
        if src.len() < LENGTH_PREFIX_LEN {
            return Ok(None);
        }
        let len = u32::from_le_bytes([src[0], src[1], src[2], src[3]]);
        check_length(len, self.max_frame_size)?;
        if src.len() > LENGTH_PREFIX_LEN {
            check_flags(src[LENGTH_PREFIX_LEN], len as usize - 1)?;
        }
        let total = LENGTH_PREFIX_LEN + len as usize;
        Ok((src.len() >= total).then_some(total))
    }

    /// Like [`decode`](FrameDecoder::decode) at end of stream: `Ok(None)` only when `src` is
    /// empty; a partial frame is [`FrameError::Truncated`].
    pub fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        if let Some(frame) = self.decode(src)? {
            return Ok(Some(frame));
        }
        if src.is_empty() {
            return Ok(None);
        }
        Err(FrameError::Truncated { needed: expected_len(src), have: src.len() })
    }
}

/// The total length of the frame starting at `src[0]` as far as its prefix tells (4 while the
/// prefix is incomplete).
pub fn expected_len(src: &[u8]) -> usize {
    if src.len() < LENGTH_PREFIX_LEN {
        LENGTH_PREFIX_LEN
    } else {
        LENGTH_PREFIX_LEN + u32::from_le_bytes([src[0], src[1], src[2], src[3]]) as usize
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_vectors::{hex, read, vectors_dir};
    use crate::wire::Code;

    fn framing_json() -> serde_json::Value {
        serde_json::from_slice(&read("reference/conformance/vectors/framing.json")).unwrap()
    }

    fn decode_all(bytes: &[u8]) -> (Vec<Frame>, usize) {
        let mut dec = FrameDecoder::new();
        let mut buf = BytesMut::from(bytes);
        let mut frames = Vec::new();
        while let Some(f) = dec.decode_eof(&mut buf).unwrap() {
            frames.push(f);
        }
        (frames, buf.len())
    }

    fn decode_bytewise(bytes: &[u8]) -> Vec<Frame> {
        let mut dec = FrameDecoder::new();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for b in bytes {
            buf.put_u8(*b);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(dec.decode_eof(&mut buf).unwrap(), None);
        frames
    }

    #[test]
    fn flag_values() {
        use flags::*;
        assert_eq!(
            [COMPRESSED, TRAILER, HEADER, ROW_SCHEMA, CALL, CANCEL, END_STREAM, RESERVED],
            [0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80]
        );
        let v = framing_json();
        for (name, val) in v["flag_definitions"].as_object().unwrap() {
            let val = u8::from_str_radix(val.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
            let ours = match name.as_str() {
                "COMPRESSED" => COMPRESSED,
                "TRAILER" => TRAILER,
                "HEADER" => HEADER,
                "ROW_SCHEMA" => ROW_SCHEMA,
                "CALL" => CALL,
                "CANCEL" => CANCEL,
                other => panic!("unknown flag {other}"),
            };
            assert_eq!(ours, val, "{name}");
        }
        let f = Frame::new(HEADER | COMPRESSED, vec![1u8]);
        assert!(f.has(HEADER) && f.has(COMPRESSED) && f.has(HEADER | COMPRESSED));
        assert!(!f.has(TRAILER) && !f.has(0));
        assert_eq!(f.encoded_len(), 6);
    }

    #[test]
    fn framing_json_encode_vectors() {
        let v = framing_json();
        let vectors = v["encode_vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 9);
        for t in vectors {
            let payload = hex(t["payload_hex"].as_str().unwrap());
            let fl = t["flags"].as_u64().unwrap() as u8;
            let expected = hex(t["expected_wire_hex"].as_str().unwrap());
            let mut out = BytesMut::new();
            encode_frame(fl, &payload, &mut out).unwrap();
            assert_eq!(&out[..], &expected[..], "{}", t["name"]);
            let mut out2 = BytesMut::new();
            let frame = Frame::new(fl, payload.clone());
            frame.encode(&mut out2).unwrap();
            assert_eq!(out2, out);
            assert_eq!(frame.encoded_len(), expected.len());
            // and back
            let (frames, rest) = decode_all(&expected);
            assert_eq!((frames, rest), (vec![frame], 0));
        }
    }

    #[test]
    fn framing_json_decode_vectors() {
        let v = framing_json();
        let vectors = v["decode_vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 3);
        for t in vectors {
            let wire = hex(t["wire_hex"].as_str().unwrap());
            let expected = Frame::new(
                t["expected_flags"].as_u64().unwrap() as u8,
                hex(t["expected_payload_hex"].as_str().unwrap()),
            );
            assert_eq!(decode_all(&wire), (vec![expected.clone()], 0), "{}", t["name"]);
            assert_eq!(decode_bytewise(&wire), vec![expected]);
        }
    }

    #[test]
    fn framing_json_error_vectors() {
        let v = framing_json();
        let vectors = v["error_vectors"].as_array().unwrap();
        assert_eq!(vectors.len(), 3);
        for t in vectors {
            let expected_text = t["error"].as_str().unwrap();
            let err = if let Some(w) = t["wire_hex"].as_str() {
                let mut buf = BytesMut::from(&hex(w)[..]);
                FrameDecoder::new().decode(&mut buf).unwrap_err()
            } else if let Some(len) = t["wire_length_value"].as_u64() {
                // only the 4 length bytes: rejected before any payload is buffered
                let mut buf = BytesMut::from(&(len as u32).to_le_bytes()[..]);
                FrameDecoder::new().decode(&mut buf).unwrap_err()
            } else {
                let payload = hex(t["payload_hex"].as_str().unwrap());
                let fl = t["flags"].as_u64().unwrap() as u8;
                let mut out = BytesMut::new();
                let e = encode_frame(fl, &payload, &mut out).unwrap_err();
                assert!(out.is_empty());
                // the decoder rejects the same frame
                let mut buf = BytesMut::from(&[1u8, 0, 0, 0, fl][..]);
                assert_eq!(FrameDecoder::new().decode(&mut buf).unwrap_err(), e);
                e
            };
            assert!(err.to_string().contains(expected_text), "{err} vs {expected_text}");
        }
    }

    #[test]
    fn wire_bin_files() {
        for (file, fl) in [("trailer_ok.bin", flags::TRAILER), ("cancel_flags_only.bin", flags::CANCEL)] {
            let bytes = read(&format!("reference/tests/python/conformance/wire/{file}"));
            assert_eq!(decode_all(&bytes), (vec![Frame::new(fl, Bytes::new())], 0));
            let mut out = BytesMut::new();
            encode_frame(fl, &[], &mut out).unwrap();
            assert_eq!(&out[..], &bytes[..]);
        }
        let mut out = BytesMut::new();
        encode_frame(flags::END_STREAM, &[], &mut out).unwrap();
        assert_eq!(&out[..], &[1, 0, 0, 0, 0x40]);
    }

    #[test]
    fn rejects_bad_frames_early() {
        let mut dec = FrameDecoder::new();
        // too large: rejected on the length alone
        let mut b = BytesMut::from(&16_777_217u32.to_le_bytes()[..]);
        assert_eq!(dec.decode(&mut b), Err(FrameError::TooLarge { len: 16_777_217, max: MAX_FRAME_SIZE }));
        let mut b = BytesMut::from(&u32::MAX.to_le_bytes()[..]);
        assert!(matches!(dec.decode(&mut b), Err(FrameError::TooLarge { .. })));
        // at the limit: just needs more bytes, without reserving the whole frame
        let mut b = BytesMut::from(&[0u8, 0, 0, 1, 0][..]);
        assert_eq!(dec.decode(&mut b), Ok(None));
        assert!(b.capacity() < 1024 * 1024);
        // zero length
        let mut b = BytesMut::from(&[0u8, 0, 0, 0][..]);
        assert_eq!(dec.decode(&mut b), Err(FrameError::ZeroLength));
        // reserved bit, detected as soon as the flags byte is there
        let mut b = BytesMut::from(&[10u8, 0, 0, 0, 0x80][..]);
        assert_eq!(dec.decode(&mut b), Err(FrameError::ReservedFlags(0x80)));
        let mut b = BytesMut::from(&[2u8, 0, 0, 0, 0x84, 0][..]);
        assert_eq!(dec.decode(&mut b), Err(FrameError::ReservedFlags(0x84)));
        // empty payloads
        for fl in [0u8, flags::HEADER, flags::CALL, flags::COMPRESSED, flags::ROW_SCHEMA] {
            let mut b = BytesMut::from(&[1u8, 0, 0, 0, fl][..]);
            assert_eq!(dec.decode(&mut b), Err(FrameError::EmptyPayload { flags: fl }));
        }
        for fl in [flags::TRAILER, flags::CANCEL, flags::END_STREAM, flags::TRAILER | flags::COMPRESSED] {
            let mut b = BytesMut::from(&[1u8, 0, 0, 0, fl][..]);
            assert_eq!(dec.decode(&mut b), Ok(Some(Frame::new(fl, Bytes::new()))));
            assert!(b.is_empty());
        }
        // custom maximum
        let mut small = FrameDecoder::with_max_frame_size(8);
        assert_eq!(small.max_frame_size(), 8);
        let mut b = BytesMut::from(&[9u8, 0, 0, 0][..]);
        assert_eq!(small.decode(&mut b), Err(FrameError::TooLarge { len: 9, max: 8 }));
        assert_eq!(FrameDecoder::default().max_frame_size(), MAX_FRAME_SIZE);
    }

    #[test]
    fn encoder_rejects_what_decoder_rejects() {
        let mut out = BytesMut::new();
        assert_eq!(encode_frame(0x80, b"x", &mut out), Err(FrameError::ReservedFlags(0x80)));
        assert_eq!(encode_frame(flags::HEADER, b"", &mut out), Err(FrameError::EmptyPayload { flags: 4 }));
        let big = vec![0u8; MAX_FRAME_SIZE as usize];
        assert_eq!(
            encode_frame(0, &big, &mut out),
            Err(FrameError::TooLarge { len: MAX_FRAME_SIZE + 1, max: MAX_FRAME_SIZE })
        );
        assert!(out.is_empty());
        // the largest legal frame
        encode_frame(0, &big[1..], &mut out).unwrap();
        assert_eq!(out.len(), 4 + MAX_FRAME_SIZE as usize);
        let (frames, rest) = decode_all(&out);
        assert_eq!((frames.len(), rest, frames[0].payload.len()), (1, 0, MAX_FRAME_SIZE as usize - 1));
    }

    #[test]
    fn truncated_at_eof() {
        let mut dec = FrameDecoder::new();
        let mut b = BytesMut::from(&[6u8, 0][..]);
        assert_eq!(dec.decode(&mut b), Ok(None));
        assert_eq!(dec.decode_eof(&mut b), Err(FrameError::Truncated { needed: 4, have: 2 }));
        let mut b = BytesMut::from(&[6u8, 0, 0, 0, 0, b'H', b'e'][..]);
        assert_eq!(dec.decode_eof(&mut b), Err(FrameError::Truncated { needed: 10, have: 7 }));
        assert_eq!(dec.decode_eof(&mut BytesMut::new()), Ok(None));
    }

    #[test]
    fn error_statuses() {
        assert_eq!(FrameError::TooLarge { len: 1, max: 0 }.to_status().code(), Code::ResourceExhausted);
        assert_eq!(FrameError::ZeroLength.to_status().code(), Code::InvalidArgument);
        assert_eq!(FrameError::ReservedFlags(0x80).to_status().code(), Code::InvalidArgument);
        assert_eq!(FrameError::EmptyPayload { flags: 0 }.to_status().code(), Code::InvalidArgument);
        let s = FrameError::Truncated { needed: 9, have: 3 }.to_status();
        assert_eq!(s.code(), Code::Internal);
        assert!(s.message().contains("mid-frame"));
    }

    #[test]
    fn several_frames_in_one_chunk_and_split_points() {
        let mut wire = BytesMut::new();
        let frames = vec![
            Frame::new(flags::HEADER, &b"head"[..]),
            Frame::new(0, &b"req"[..]),
            Frame::new(flags::TRAILER, Bytes::new()),
            Frame::new(flags::COMPRESSED, vec![7u8; 300]),
        ];
        for f in &frames {
            f.encode(&mut wire).unwrap();
        }
        assert_eq!(decode_all(&wire), (frames.clone(), 0));
        assert_eq!(decode_bytewise(&wire), frames);
        for split in 0..wire.len() {
            let mut dec = FrameDecoder::new();
            let mut buf = BytesMut::from(&wire[..split]);
            let mut got = Vec::new();
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(f);
            }
            buf.extend_from_slice(&wire[split..]);
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                got.push(f);
            }
            assert_eq!(got, frames, "split at {split}");
        }
    }

    /// Every golden capture (aster-rpc 0.1.2) splits into frames with nothing left over,
    /// byte-wise and in one chunk, and re-encodes to the same bytes.
    #[test]
    fn golden_captures_split_completely() {
        let dir = vectors_dir().join("golden");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| (n.ends_with(".c2s.bin") || n.ends_with(".s2c.bin")) && !n.starts_with("admission"))
            .collect();
        files.sort();
        assert_eq!(files.len(), 18, "{files:?}");
        let mut total_frames = 0;
        for name in &files {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            let (frames, rest) = decode_all(&bytes);
            assert_eq!(rest, 0, "{name}");
            assert!(!frames.is_empty(), "{name}");
            assert_eq!(decode_bytewise(&bytes), frames, "{name}");
            let mut re = BytesMut::new();
            for f in &frames {
                f.encode(&mut re).unwrap();
            }
            assert_eq!(&re[..], &bytes[..], "{name}");
            if name.ends_with(".c2s.bin") {
                assert!(frames[0].has(flags::HEADER), "{name}");
            }
            total_frames += frames.len();
        }
        assert!(total_frames > 60, "{total_frames}");
    }

    #[test]
    fn decode_shared_slices_whole_frames_and_leaves_partial_ones() {
        let mut wire = BytesMut::new();
        encode_frame(flags::HEADER, b"head", &mut wire).unwrap();
        encode_frame(0, b"request", &mut wire).unwrap();
        encode_frame(flags::TRAILER, b"t", &mut wire).unwrap();
        let all = wire.freeze();
        // Everything but the last byte: two whole frames come out, the partial third stays.
        let mut src = all.slice(..all.len() - 1);
        let mut dec = FrameDecoder::new();
        let a = dec.decode_shared(&mut src).unwrap().unwrap();
        let b = dec.decode_shared(&mut src).unwrap().unwrap();
        assert_eq!((a.flags, &a.payload[..]), (flags::HEADER, &b"head"[..]));
        assert_eq!((b.flags, &b.payload[..]), (0, &b"request"[..]));
        assert_eq!(dec.decode_shared(&mut src).unwrap(), None);
        assert_eq!(src.len(), 5, "the partial frame is not consumed");
        // The payload is a view of the input, not a copy.
        assert_eq!(b.payload.as_ptr(), all[9 + 5..].as_ptr());
    }

    #[test]
    fn decode_shared_checks_length_and_flags_before_the_payload_arrives() {
        let mut dec = FrameDecoder::with_max_frame_size(16);
        let mut too_long = Bytes::from_static(&[17, 0, 0, 0]);
        assert!(matches!(dec.decode_shared(&mut too_long), Err(FrameError::TooLarge { .. })));
        let mut reserved = Bytes::from_static(&[3, 0, 0, 0, 0x80]);
        assert!(dec.decode_shared(&mut reserved).is_err());
        let mut short = Bytes::from_static(&[3, 0]);
        assert_eq!(dec.decode_shared(&mut short).unwrap(), None);
        assert_eq!(short.len(), 2);
    }
}
