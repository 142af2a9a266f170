//! zstd payload compression (`COMPRESSED` frame flag, protocol §3.13).
//!
//! * [`compress`]: one zstd frame at level 3 with the content size in the header, like the
//!   Python reference's `zstandard.ZstdCompressor().compress()`.
//! * [`decompress`]: bounded. The output never grows beyond `max + 1` bytes: a frame that
//!   declares a content size above `max`, or that produces more than `max` bytes, is a
//!   decompression bomb → `RESOURCE_EXHAUSTED` (the message names the limit). Frames that
//!   declare their size are decoded in one shot into a buffer of exactly that size; others are
//!   streamed with the decoder window capped (`window_log_max`), so zstd's own buffers stay
//!   bounded as well.
//! * Input that is not valid zstd → `INVALID_ARGUMENT` (the payload is malformed, like any
//!   other undecodable payload a peer sends).
//!
//! Compressor and one-shot decompressor contexts are kept per thread and reused.

use std::cell::RefCell;
use std::io::Read;

use crate::wire::Status;

/// zstd level used for payloads (the reference's default, level 3).
pub const LEVEL: i32 = 3;

/// Smallest decoder window limit used when streaming (2^23 = 8 MiB ≥ level-3 windows).
const MIN_WINDOW_LOG: u32 = 23;
/// zstd's own default decoder window limit (2^27).
const MAX_WINDOW_LOG: u32 = 27;
/// Growth step of the streaming output buffer.
const CHUNK: usize = 64 * 1024;

thread_local! {
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Compresses `data` into one zstd frame (level 3, content size recorded).
///
/// Fails (`INTERNAL`) only if zstd cannot allocate its context.
pub fn compress(data: &[u8]) -> Result<Vec<u8>, Status> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.try_borrow_mut().map_err(|_| busy())?;
        if slot.is_none() {
            *slot = Some(zstd::bulk::Compressor::new(LEVEL).map_err(internal)?);
        }
        let Some(c) = slot.as_mut() else {
            return Err(busy());
        };
        let mut out = Vec::with_capacity(zstd::zstd_safe::compress_bound(data.len()));
        c.compress_to_buffer(data, &mut out).map_err(internal)?;
        Ok(out)
    })
}

/// Decompresses a zstd payload of at most `max` decompressed bytes.
///
/// Errors: more than `max` bytes (declared or produced) → `RESOURCE_EXHAUSTED`; not zstd,
/// corrupt or truncated → `INVALID_ARGUMENT`.
pub fn decompress(data: &[u8], max: usize) -> Result<Vec<u8>, Status> {
    match zstd::zstd_safe::get_frame_content_size(data) {
        Ok(Some(size)) => {
            if size > max as u64 {
                return Err(bomb(max, Some(size)));
            }
            // A declared size lets us decode in one shot into an exact buffer, when it is
            // plausible for the input (a tiny frame declaring megabytes is decoded by streaming,
            // which allocates only as output appears). If the payload holds further frames the
            // buffer is too small; fall back to streaming then.
            let plausible = data.len().saturating_mul(ONE_SHOT_MAX_RATIO).max(ONE_SHOT_ALWAYS);
            if size > plausible as u64 {
                return stream(data, max);
            }
            match one_shot(data, size as usize) {
                Ok(out) => Ok(out),
                Err(OneShot::TooSmall) => stream(data, max),
                Err(OneShot::Failed(status)) => Err(status),
            }
        }
        Ok(None) => stream(data, max),
        Err(_) => {
            Err(Status::invalid_argument("compressed payload is not a zstd frame (bad magic or truncated header)"))
        }
    }
}

/// Largest declared-size/input ratio decoded in one shot (see [`decompress`]).
const ONE_SHOT_MAX_RATIO: usize = 64;
/// Declared sizes up to this are always decoded in one shot.
const ONE_SHOT_ALWAYS: usize = 64 * 1024;

enum OneShot {
    TooSmall,
    Failed(Status),
}

fn one_shot(data: &[u8], size: usize) -> Result<Vec<u8>, OneShot> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.try_borrow_mut().map_err(|_| OneShot::Failed(busy()))?;
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| OneShot::Failed(internal(e)))?);
        }
        let Some(d) = slot.as_mut() else {
            return Err(OneShot::Failed(busy()));
        };
        let mut out = Vec::with_capacity(size);
        match d.decompress_to_buffer(data, &mut out) {
            Ok(_) => Ok(out),
            Err(e) if is_dst_too_small(&e) => Err(OneShot::TooSmall),
            Err(e) => Err(OneShot::Failed(corrupt(&e))),
        }
    })
}

fn stream(data: &[u8], max: usize) -> Result<Vec<u8>, Status> {
    let mut decoder = zstd::stream::read::Decoder::with_buffer(data).map_err(internal)?;
    decoder.window_log_max(window_log_for(max)).map_err(internal)?;
    let limit = max.saturating_add(1);
    let mut out: Vec<u8> = Vec::with_capacity(limit.min(CHUNK).min(data.len().saturating_mul(4)));
    loop {
        if out.len() == out.capacity() {
            if out.len() >= limit {
                return Err(bomb(max, None));
            }
            let grow = out.len().max(CHUNK).min(limit - out.len());
            out.reserve_exact(grow);
        }
        let filled = out.len();
        // Read straight into the spare capacity (zero-filled first, at most one chunk at a
        // time so the zeroing stays linear; no unsafe).
        let room = (out.capacity().min(limit) - filled).min(CHUNK);
        out.resize(filled + room, 0);
        match decoder.read(&mut out[filled..]) {
            Ok(0) => {
                out.truncate(filled);
                return Ok(out);
            }
            Ok(n) => {
                out.truncate(filled + n);
                if out.len() > max {
                    return Err(bomb(max, None));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => out.truncate(filled),
            Err(e) => {
                return Err(if is_window_too_large(&e) {
                    Status::resource_exhausted(format!(
                        "zstd window of the compressed payload exceeds the decoder limit \
                         (2^{} bytes) for a decompressed-size limit of {max} bytes",
                        window_log_for(max)
                    ))
                } else {
                    corrupt(&e)
                });
            }
        }
    }
}

/// The decoder window limit for a `max`-byte output: enough for any window a frame of that
/// size can legitimately use, never below zstd level-3 windows nor above zstd's default.
fn window_log_for(max: usize) -> u32 {
    let needed = usize::BITS - max.saturating_sub(1).leading_zeros();
    needed.clamp(MIN_WINDOW_LOG, MAX_WINDOW_LOG)
}

fn is_dst_too_small(e: &std::io::Error) -> bool {
    e.to_string().contains("Destination buffer is too small")
}

fn is_window_too_large(e: &std::io::Error) -> bool {
    e.to_string().contains("Frame requires too much memory")
}

fn bomb(max: usize, declared: Option<u64>) -> Status {
    match declared {
        Some(size) => Status::resource_exhausted(format!(
            "decompressed payload exceeds the limit of {max} bytes (frame declares {size} bytes)"
        )),
        None => Status::resource_exhausted(format!("decompressed payload exceeds the limit of {max} bytes")),
    }
}

fn corrupt(e: &std::io::Error) -> Status {
    Status::invalid_argument(format!("invalid zstd payload: {e}"))
}

fn internal(e: std::io::Error) -> Status {
    Status::internal(format!("zstd: {e}"))
}

fn busy() -> Status {
    Status::internal("zstd context re-entered on the same thread")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::Code;

    fn frame_without_size(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        enc.include_contentsize(false).unwrap();
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn round_trip_declared_size() {
        // Barely compressible (a plausible declared size): decoded in one shot.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..80_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x % 16) as u8
            })
            .collect();
        let packed = compress(&data).unwrap();
        assert_eq!(&packed[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&packed).unwrap(), Some(data.len() as u64));
        let back = decompress(&packed, data.len()).unwrap();
        assert_eq!(back, data);
        assert_eq!(back.capacity(), data.len(), "exact allocation");
        assert_eq!(decompress(&compress(&[]).unwrap(), 0).unwrap(), Vec::<u8>::new());
        // A tiny frame declaring a large size is streamed (no up-front allocation of that size),
        // with the same result.
        let zeros = vec![0u8; 4 << 20];
        let packed = compress(&zeros).unwrap();
        assert!(packed.len() * ONE_SHOT_MAX_RATIO < zeros.len());
        assert_eq!(decompress(&packed, zeros.len()).unwrap(), zeros);
    }

    #[test]
    fn round_trip_streamed_frame() {
        let data = vec![7u8; 300_000];
        let packed = frame_without_size(&data);
        assert_eq!(zstd::zstd_safe::get_frame_content_size(&packed).unwrap(), None);
        let back = decompress(&packed, 300_000).unwrap();
        assert_eq!(back, data);
        assert!(back.capacity() <= 300_001);
    }

    #[test]
    fn concatenated_frames_are_read() {
        let mut packed = compress(b"hello ").unwrap();
        packed.extend(compress(b"world").unwrap());
        assert_eq!(decompress(&packed, 100).unwrap(), b"hello world");
        let err = decompress(&packed, 8).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
    }

    #[test]
    fn bomb_with_declared_size_is_rejected_before_allocating() {
        let packed = compress(&vec![0u8; 1 << 20]).unwrap();
        assert!(packed.len() < 200);
        let err = decompress(&packed, 1000).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(err.message().contains("limit of 1000 bytes"), "{err}");
        // exactly at the limit is fine
        assert_eq!(decompress(&packed, 1 << 20).unwrap().len(), 1 << 20);
    }

    #[test]
    fn bomb_without_declared_size_stops_at_the_limit() {
        let packed = frame_without_size(&vec![0u8; 4 << 20]);
        let err = decompress(&packed, 100_000).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
        assert!(err.message().contains("100000"), "{err}");
        assert_eq!(decompress(&packed, 4 << 20).unwrap().len(), 4 << 20);
        let err = decompress(&packed, (4 << 20) - 1).unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted);
    }

    #[test]
    fn invalid_input_is_invalid_argument() {
        for bad in [&b""[..], b"\x28\xb5", b"not zstd at all", b"{\"a\":1}"] {
            let err = decompress(bad, 1000).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument, "{bad:?}: {err}");
        }
        let packed = compress(&vec![1u8; 10_000]).unwrap();
        for cut in 4..packed.len() {
            let r = decompress(&packed[..cut], 1 << 20);
            assert!(r.is_err(), "cut {cut}");
        }
        let streamed = frame_without_size(&[5u8; 5000]);
        let err = decompress(&streamed[..streamed.len() - 2], 1 << 20).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err}");
        let mut corrupt = packed.clone();
        let n = corrupt.len();
        corrupt[n - 3] ^= 0xff;
        assert!(decompress(&corrupt, 1 << 20).is_err());
    }

    #[test]
    fn window_limit() {
        assert_eq!(window_log_for(16 << 20), 24);
        assert_eq!(window_log_for(1000), MIN_WINDOW_LOG);
        assert_eq!(window_log_for(usize::MAX), MAX_WINDOW_LOG);
        assert_eq!(window_log_for(0), MIN_WINDOW_LOG);
    }
}
