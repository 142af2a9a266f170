//! Per-call options, deadlines and call ids.

use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::wire::limits;
use crate::{SerializationMode, Status};

/// Options of one call: timeout, metadata and an optional serialization-mode override.
///
/// ```
/// # use std::time::Duration;
/// # use aster_runtime::client::CallOptions;
/// let opts = CallOptions::new()
///     .timeout(Duration::from_secs(2))
///     .metadata("x-request-id", "42");
/// assert_eq!(opts.metadata.len(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Per-call timeout. It becomes the absolute `deadlineEpochMs` of the header (now + timeout)
    /// and a local timer: when it fires the call fails with `DEADLINE_EXCEEDED` and is
    /// cancelled. `None` = no deadline (the wire value 0).
    pub timeout: Option<Duration>,
    /// Metadata entries, sent as the header's parallel `metadataKeys` / `metadataValues` lists
    /// (validated against the protocol limits before anything is sent).
    pub metadata: Vec<(String, String)>,
    /// Serialization mode of this call; `None` = the channel's mode. Inside a session the
    /// mode is fixed when the session is opened, so only `None` or that mode is accepted.
    pub mode: Option<SerializationMode>,
}

impl CallOptions {
    /// Default options: no timeout, no metadata, the channel's mode.
    pub fn new() -> CallOptions {
        CallOptions::default()
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> CallOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Appends a metadata entry.
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> CallOptions {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// Overrides the serialization mode.
    pub fn mode(mut self, mode: SerializationMode) -> CallOptions {
        self.mode = Some(mode);
        self
    }
}

/// Milliseconds since the Unix epoch of `now`, saturating (0 before the epoch).
pub(crate) fn epoch_ms(now: SystemTime) -> i64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// The absolute wire deadline (`deadlineEpochMs`) of a call started at `now` with `timeout`:
/// `now` in ms since the Unix epoch plus the timeout in ms, saturating.
pub(crate) fn deadline_epoch_ms(now: SystemTime, timeout: Duration) -> i64 {
    let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
    epoch_ms(now).saturating_add(timeout_ms).max(1)
}

/// The deadline of a call: the wire value (0 = none) and the local timer instant
/// (`None` = none, also when `now + timeout` does not fit an `Instant`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Deadline {
    pub(crate) epoch_ms: i64,
    pub(crate) instant: Option<Instant>,
}

impl Deadline {
    pub(crate) const NONE: Deadline = Deadline { epoch_ms: 0, instant: None };

    /// Starts the deadline clock for `timeout`.
    pub(crate) fn start(timeout: Option<Duration>) -> Deadline {
        match timeout {
            None => Deadline::NONE,
            Some(t) => {
                Deadline { epoch_ms: deadline_epoch_ms(SystemTime::now(), t), instant: Instant::now().checked_add(t) }
            }
        }
    }
}

/// The status of a call whose deadline expired.
pub(crate) fn deadline_exceeded() -> Status {
    Status::deadline_exceeded("deadline exceeded")
}

/// Runs `fut` under the optional local deadline (`DEADLINE_EXCEEDED` when it fires first; the
/// future is dropped, which cancels whatever it owned). An already expired deadline fails
/// without polling `fut` at all.
pub(crate) async fn with_deadline<T, F>(deadline: Option<Instant>, fut: F) -> Result<T, Status>
where
    F: Future<Output = Result<T, Status>>,
{
    match deadline {
        None => fut.await,
        Some(at) if at <= Instant::now() => Err(deadline_exceeded()),
        Some(at) => match tokio::time::timeout_at(at, fut).await {
            Ok(r) => r,
            Err(_) => Err(deadline_exceeded()),
        },
    }
}

/// Splits metadata into the header's parallel lists and validates them against the limits.
pub(crate) fn split_metadata(metadata: Vec<(String, String)>) -> Result<(Vec<String>, Vec<String>), Status> {
    let (keys, values): (Vec<String>, Vec<String>) = metadata.into_iter().unzip();
    limits::validate_metadata(&keys, &values)?;
    Ok((keys, values))
}

/// A random (version 4, RFC 9562 variant) UUID in its 36-character lower-case text form,
/// e.g. `"568d10f8-4017-4648-b40e-0f99f04aae94"`: what the reference client uses for
/// streaming call ids and session ids.
pub fn uuid_v4() -> String {
    format_uuid_v4(rand::random::<u128>().to_be_bytes())
}

/// Formats 16 random bytes as a version-4 UUID (sets the version and variant bits).
pub(crate) fn format_uuid_v4(mut b: [u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let mut s = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(byte >> 4)]));
        s.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn is_uuid_v4(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 36
            && s.chars().enumerate().all(|(i, c)| {
                if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_digit() || ('a'..='f').contains(&c) }
            })
            && b[14] == b'4'
            && matches!(b[19], b'8' | b'9' | b'a' | b'b')
    }

    #[test]
    fn uuid_v4_has_the_canonical_form() {
        for _ in 0..200 {
            let u = uuid_v4();
            assert!(is_uuid_v4(&u), "{u}");
        }
        assert_ne!(uuid_v4(), uuid_v4());
        // the golden capture's ids have the same shape
        assert!(is_uuid_v4("568d10f8-4017-4648-b40e-0f99f04aae94"));
    }

    #[test]
    fn uuid_v4_formats_fixed_bytes() {
        assert_eq!(format_uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
        assert_eq!(format_uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let b = [0x56, 0x8d, 0x10, 0xf8, 0x40, 0x17, 0x46, 0x48, 0xb4, 0x0e, 0x0f, 0x99, 0xf0, 0x4a, 0xae, 0x94];
        assert_eq!(format_uuid_v4(b), "568d10f8-4017-4648-b40e-0f99f04aae94");
    }

    #[test]
    fn deadline_is_absolute_epoch_ms() {
        let now = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
        assert_eq!(deadline_epoch_ms(now, Duration::from_millis(2500)), 1_700_000_002_623);
        assert_eq!(deadline_epoch_ms(now, Duration::from_micros(1500)), 1_700_000_000_124);
        assert_eq!(deadline_epoch_ms(now, Duration::MAX), i64::MAX);
        assert_eq!(epoch_ms(UNIX_EPOCH - Duration::from_secs(1)), 0);
        // a zero timeout still yields a non-zero (already expired) deadline, never "none"
        assert_eq!(deadline_epoch_ms(UNIX_EPOCH, Duration::ZERO), 1);
    }

    #[tokio::test]
    async fn deadline_start() {
        assert_eq!(Deadline::start(None), Deadline::NONE);
        let before = epoch_ms(SystemTime::now());
        let d = Deadline::start(Some(Duration::from_secs(10)));
        assert!(d.epoch_ms >= before + 10_000);
        assert!(d.instant.is_some());
        let far = Deadline::start(Some(Duration::MAX));
        assert_eq!(far.epoch_ms, i64::MAX);
        assert_eq!(far.instant, None);
        let r: Result<(), Status> = with_deadline(Some(Instant::now()), std::future::pending()).await;
        assert_eq!(r.map_err(|s| s.code()), Err(crate::Code::DeadlineExceeded));
        let r = with_deadline(None, async { Ok::<_, Status>(7) }).await;
        assert_eq!(r, Ok(7));
        // an expired deadline wins even over a future that is ready at once
        let r = with_deadline(Some(Instant::now()), async { Ok::<_, Status>(7) }).await;
        assert_eq!(r.map_err(|s| s.code()), Err(crate::Code::DeadlineExceeded));
        let r = with_deadline(Some(Instant::now() + Duration::from_secs(60)), async { Ok::<_, Status>(7) }).await;
        assert_eq!(r, Ok(7));
    }

    #[test]
    fn option_builders() {
        let o = CallOptions::new()
            .timeout(Duration::from_millis(5))
            .metadata("a", "1")
            .metadata(String::from("b"), String::from("2"))
            .mode(SerializationMode::Json);
        assert_eq!(o.timeout, Some(Duration::from_millis(5)));
        assert_eq!(o.metadata, vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
        assert_eq!(o.mode, Some(SerializationMode::Json));
        assert_eq!(CallOptions::new(), CallOptions::default());
    }

    #[test]
    fn metadata_split_and_validation() {
        let (k, v) = split_metadata(vec![("a".into(), "1".into()), ("b".into(), "2".into())]).unwrap();
        assert_eq!(k, ["a", "b"]);
        assert_eq!(v, ["1", "2"]);
        let too_many: Vec<(String, String)> = (0..1000).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert_eq!(split_metadata(too_many).unwrap_err().code(), crate::Code::InvalidArgument);
        let huge_value = vec![("k".to_string(), "x".repeat(100_000))];
        assert_eq!(split_metadata(huge_value).unwrap_err().code(), crate::Code::InvalidArgument);
    }
}
