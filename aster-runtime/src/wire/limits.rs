//! Protocol limits of the v0.1 dialect (`bindings/python/aster/limits.py` of aster-rpc 0.1.2,
//! protocol reference §3.12) and the validators built on them.
//!
//! Differences from the Python helpers, on purpose:
//! * violations are `INVALID_ARGUMENT` here (Python raises `LimitExceeded`, mapped to
//!   `RESOURCE_EXHAUSTED`);
//! * metadata key / value sizes are counted in UTF-8 **bytes** (Python counts chars for the
//!   per-entry limits and bytes for the total); for ASCII both are the same.

use std::borrow::Cow;
use std::time::Duration;

use crate::wire::status::Status;

/// Largest value of a frame's length field (flags byte + payload): 16 MiB.
pub const MAX_FRAME_SIZE: u32 = 16 * 1024 * 1024;

/// Largest payload after zstd decompression (decompression-bomb guard): 16 MiB.
pub const MAX_DECOMPRESSED_SIZE: usize = 16 * 1024 * 1024;

/// Upper bound of a handler's run time, whatever the deadline says: 300 s.
pub const MAX_HANDLER_TIMEOUT: Duration = Duration::from_secs(300);

/// Default timeout of a frame read when no deadline applies (Python: 30 s, off on the hot path).
pub const DEFAULT_FRAME_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Most request items a client-streaming call may send (more → `RESOURCE_EXHAUSTED`).
pub const MAX_CLIENT_STREAM_ITEMS: usize = 100_000;

/// Most metadata entries in a StreamHeader / CallHeader.
pub const MAX_METADATA_ENTRIES: usize = 64;

/// Largest StreamHeader, CallHeader or RpcStatus payload decoded (64 KiB: eight times what the
/// metadata limits and a status message allow). Larger ones are refused before decoding.
pub const MAX_PROTOCOL_MESSAGE_BYTES: usize = 64 * 1024;

/// Most UTF-8 bytes of all metadata keys plus values together.
pub const MAX_METADATA_TOTAL_BYTES: usize = 8192;

/// Most UTF-8 bytes of one metadata key.
pub const MAX_METADATA_KEY_BYTES: usize = 256;

/// Most UTF-8 bytes of one metadata value.
pub const MAX_METADATA_VALUE_BYTES: usize = 4096;

/// Most chars of an RpcStatus message (longer ones are truncated, see
/// [`truncate_status_message`]).
pub const MAX_STATUS_MESSAGE_CHARS: usize = 4096;

/// Most detail entries of an RpcStatus (extra ones are dropped).
pub const MAX_STATUS_DETAILS: usize = 32;

/// Most UTF-8 bytes of a service or method name.
pub const MAX_NAME_BYTES: usize = 256;

/// Encoded payloads larger than this many bytes are zstd-compressed (non-JSON modes).
pub const COMPRESSION_THRESHOLD: usize = 4096;

/// Tolerance of the server's deadline check, in milliseconds.
pub const DEADLINE_SKEW_MS: i64 = 5000;

/// Checks parallel metadata lists against the limits; violations are `INVALID_ARGUMENT`
/// with a message naming the limit.
pub fn validate_metadata(keys: &[String], values: &[String]) -> Result<(), Status> {
    if keys.len() != values.len() {
        return Err(Status::invalid_argument(format!(
            "metadata keys and values differ in length ({} keys, {} values)",
            keys.len(),
            values.len()
        )));
    }
    if keys.len() > MAX_METADATA_ENTRIES {
        return Err(Status::invalid_argument(format!(
            "metadata has {} entries, exceeds MAX_METADATA_ENTRIES ({MAX_METADATA_ENTRIES})",
            keys.len()
        )));
    }
    let mut total = 0usize;
    for (k, v) in keys.iter().zip(values) {
        if k.len() > MAX_METADATA_KEY_BYTES {
            return Err(Status::invalid_argument(format!(
                "metadata key of {} bytes exceeds MAX_METADATA_KEY_BYTES ({MAX_METADATA_KEY_BYTES})",
                k.len()
            )));
        }
        if v.len() > MAX_METADATA_VALUE_BYTES {
            return Err(Status::invalid_argument(format!(
                "metadata value of {} bytes (key {k:?}) exceeds MAX_METADATA_VALUE_BYTES \
                 ({MAX_METADATA_VALUE_BYTES})",
                v.len()
            )));
        }
        total += k.len() + v.len();
    }
    if total > MAX_METADATA_TOTAL_BYTES {
        return Err(Status::invalid_argument(format!(
            "metadata totals {total} bytes, exceeds MAX_METADATA_TOTAL_BYTES ({MAX_METADATA_TOTAL_BYTES})"
        )));
    }
    Ok(())
}

/// Checks a service or method name (`kind` = `"service"` / `"method"`, used in the message)
/// against [`MAX_NAME_BYTES`]; `INVALID_ARGUMENT` when longer. Empty names pass (an empty
/// method opens a session stream; an empty service is rejected by dispatch, not here).
pub fn validate_name(kind: &str, name: &str) -> Result<(), Status> {
    if name.len() > MAX_NAME_BYTES {
        return Err(Status::invalid_argument(format!(
            "{kind} name of {} bytes exceeds MAX_NAME_BYTES ({MAX_NAME_BYTES})",
            name.len()
        )));
    }
    Ok(())
}

/// Truncates an RpcStatus message the way aster 0.1.2 `validate_status_message` does:
/// longer than [`MAX_STATUS_MESSAGE_CHARS`] chars → the first 4093 chars plus `"..."`
/// (4096 chars in all, cut at a char boundary).
pub fn truncate_status_message(message: &str) -> Cow<'_, str> {
    // fast path: a string of at most MAX chars bytes has at most MAX chars
    if message.len() <= MAX_STATUS_MESSAGE_CHARS || message.chars().count() <= MAX_STATUS_MESSAGE_CHARS {
        return Cow::Borrowed(message);
    }
    let keep = MAX_STATUS_MESSAGE_CHARS - 3;
    let cut = message.char_indices().nth(keep).map_or(message.len(), |(i, _)| i);
    let mut s = String::with_capacity(cut + 3);
    s.push_str(&message[..cut]);
    s.push_str("...");
    Cow::Owned(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::wire::Code;

    fn strings(n: usize, f: impl Fn(usize) -> String) -> Vec<String> {
        (0..n).map(f).collect()
    }

    #[test]
    fn constants_match_the_reference() {
        assert_eq!(MAX_FRAME_SIZE, 16_777_216);
        assert_eq!(MAX_DECOMPRESSED_SIZE, 16_777_216);
        assert_eq!(MAX_HANDLER_TIMEOUT, Duration::from_secs(300));
        assert_eq!(MAX_CLIENT_STREAM_ITEMS, 100_000);
        assert_eq!(
            (MAX_METADATA_ENTRIES, MAX_METADATA_TOTAL_BYTES, MAX_METADATA_KEY_BYTES, MAX_METADATA_VALUE_BYTES),
            (64, 8192, 256, 4096)
        );
        assert_eq!((MAX_STATUS_MESSAGE_CHARS, MAX_STATUS_DETAILS, MAX_NAME_BYTES), (4096, 32, 256));
        assert_eq!(COMPRESSION_THRESHOLD, 4096);
        assert_eq!(DEADLINE_SKEW_MS, 5000);
    }

    #[test]
    fn metadata_within_limits_passes() {
        assert!(validate_metadata(&[], &[]).is_ok());
        let k = strings(64, |i| format!("k{i}"));
        let v = strings(64, |i| format!("v{i}"));
        assert!(validate_metadata(&k, &v).is_ok());
        // exactly at the per-entry limits and the total limit
        let k = vec!["k".repeat(256), "x".repeat(96)];
        let v = vec!["v".repeat(4096), "y".repeat(3744)];
        assert_eq!(k.iter().chain(&v).map(String::len).sum::<usize>(), 8192);
        assert!(validate_metadata(&k, &v).is_ok());
    }

    #[test]
    fn metadata_violations_name_the_limit() {
        let cases: Vec<(Vec<String>, Vec<String>, &str)> = vec![
            (vec!["a".into()], vec![], "differ in length"),
            (strings(65, |i| format!("k{i}")), strings(65, |i| format!("v{i}")), "MAX_METADATA_ENTRIES"),
            (vec!["k".repeat(257)], vec!["v".into()], "MAX_METADATA_KEY_BYTES"),
            (vec!["é".repeat(129)], vec!["v".into()], "MAX_METADATA_KEY_BYTES"),
            (vec!["k".into()], vec!["v".repeat(4097)], "MAX_METADATA_VALUE_BYTES"),
            (strings(3, |i| format!("k{i}")), strings(3, |_| "v".repeat(4000)), "MAX_METADATA_TOTAL_BYTES"),
        ];
        for (k, v, needle) in cases {
            let err = validate_metadata(&k, &v).unwrap_err();
            assert_eq!(err.code(), Code::InvalidArgument);
            assert!(err.message().contains(needle), "{needle}: {}", err.message());
        }
    }

    #[test]
    fn names() {
        assert!(validate_name("service", "").is_ok());
        assert!(validate_name("service", &"s".repeat(256)).is_ok());
        let err = validate_name("method", &"m".repeat(257)).unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument);
        assert!(err.message().starts_with("method name"));
        assert!(err.message().contains("MAX_NAME_BYTES"));
        // counted in bytes: 129 two-byte chars
        assert!(validate_name("service", &"é".repeat(129)).is_err());
    }

    #[test]
    fn status_message_truncation() {
        assert_eq!(truncate_status_message("short"), "short");
        let exact = "é".repeat(4096);
        assert!(matches!(truncate_status_message(&exact), Cow::Borrowed(_)));
        let long = "é".repeat(6000);
        let t = truncate_status_message(&long);
        assert_eq!(t.chars().count(), 4096);
        assert!(t.ends_with("é..."));
        assert_eq!(t.chars().filter(|c| *c == 'é').count(), 4093);
        let ascii = "a".repeat(4097);
        assert_eq!(truncate_status_message(&ascii).len(), 4096);
    }
}
