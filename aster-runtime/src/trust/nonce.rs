//! One-time-token nonce stores (§7.3 step "OTT nonce not yet consumed").
//!
//! [`NonceStore::consume`] is atomic: of any number of concurrent consumers of one nonce,
//! exactly one gets `true`. Both stores keep each nonce with the expiry of the credential that
//! carried it; [`NonceStore::prune`] forgets nonces whose credential expired more than
//! [`PRUNE_GRACE_SECS`] ago (such a credential is rejected as expired before its nonce is
//! looked at; the grace covers the wall clock stepping back).
//!
//! * [`InMemoryNonceStore`]: an [`aster_sync::ClaimSet`] (model-checked with loom); lost on
//!   restart, like the reference's default.
//! * [`FileNonceStore`]: the same set, made durable by an append-only log that is fsync'ed
//!   before `consume` returns `true`, so a replay after a restart is still rejected. Pruning
//!   compacts the log (write temporary file, fsync, rename, fsync directory). The file is
//!   locked for the life of the store: two processes cannot share one log (each would accept
//!   the nonce once).
//!
//! All methods block (the file store does disk I/O with fsync); async callers should use
//! `spawn_blocking` or accept the short block.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use aster_sync::ClaimSet;

use super::credential::NONCE_LEN;
use super::hex;

/// How long after its credential's expiry a nonce is kept before [`NonceStore::prune`] may
/// drop it (one day).
pub const PRUNE_GRACE_SECS: u64 = 24 * 3600;

/// First line of a nonce log.
const HEADER: &str = "aster-nonce-store v1";

/// A store failure. Admission treats it as a denial (fail closed).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Reading, writing or syncing the store failed.
    #[error("nonce store {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The log has a malformed record (not a torn last line, which is dropped).
    #[error("nonce store {path}: corrupt record on line {line}: {reason}")]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// Another process (or another store in this one) holds the log's lock.
    #[error("nonce store {0} is locked by another user")]
    Locked(PathBuf),
    /// An earlier write failed part-way; the store refuses further writes until reopened
    /// (reopening drops a torn last record).
    #[error("nonce store {0} failed earlier and must be reopened")]
    Failed(PathBuf),
}

/// Storage of consumed OTT nonces.
pub trait NonceStore: Send + Sync {
    /// Marks `nonce` consumed. Returns `Ok(true)` only for the first consumer of a nonce
    /// (atomically, across threads); `Ok(false)` if it was already consumed. `expires_at` is
    /// the carrying credential's expiry (epoch seconds), used for pruning.
    fn consume(&self, nonce: [u8; NONCE_LEN], expires_at: u64) -> Result<bool, StoreError>;

    /// Whether `nonce` has been consumed.
    fn is_consumed(&self, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError>;

    /// Forgets nonces whose credential expired before `now - PRUNE_GRACE_SECS`; returns how
    /// many were dropped.
    fn prune(&self, now: u64) -> Result<usize, StoreError>;
}

fn prune_cutoff(now: u64) -> u64 {
    now.saturating_sub(PRUNE_GRACE_SECS)
}

/// In-memory nonce store (not persistent across restarts).
#[derive(Debug, Default)]
pub struct InMemoryNonceStore {
    set: ClaimSet<[u8; NONCE_LEN]>,
}

impl InMemoryNonceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nonces held.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

impl NonceStore for InMemoryNonceStore {
    fn consume(&self, nonce: [u8; NONCE_LEN], expires_at: u64) -> Result<bool, StoreError> {
        Ok(self.set.claim(nonce, expires_at))
    }

    fn is_consumed(&self, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError> {
        Ok(self.set.contains(nonce))
    }

    fn prune(&self, now: u64) -> Result<usize, StoreError> {
        Ok(self.set.prune(prune_cutoff(now)))
    }
}

/// Durable nonce store: an append-only log, one `<64 hex nonce> <expires_at>` line per
/// consumed nonce after a header line. See the [module docs](self).
#[derive(Debug)]
pub struct FileNonceStore {
    path: PathBuf,
    set: ClaimSet<[u8; NONCE_LEN]>,
    /// The append handle; `None` after a failed write (see [`StoreError::Failed`]).
    log: Mutex<Option<File>>,
    /// Held (and locked) for the life of the store.
    _lock: File,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

fn sync_dir(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn record(nonce: &[u8; NONCE_LEN], expires_at: u64) -> String {
    format!("{} {}\n", hex::encode(nonce), expires_at)
}

fn parse_record(line: &str) -> Result<([u8; NONCE_LEN], u64), String> {
    let (n, e) = line.split_once(' ').ok_or("expected `<nonce hex> <expires_at>`")?;
    let nonce = hex::decode_array::<NONCE_LEN>(n).ok_or("nonce is not 64 hex characters")?;
    let exp = e.parse::<u64>().map_err(|err| format!("expires_at: {err}"))?;
    Ok((nonce, exp))
}

impl FileNonceStore {
    /// Opens (or creates) the log at `path`, creating parent directories. Takes an exclusive
    /// lock on `<path>.lock`; fails with [`StoreError::Locked`] if it is held elsewhere. A torn
    /// last record (crash mid-append; never acknowledged) is dropped; any other malformed
    /// record is an error, so a damaged log never silently forgets nonces.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        let mut lock_path = path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked(path)),
            Err(fs::TryLockError::Error(e)) => return Err(io_err(&lock_path)(e)),
        }

        let set = ClaimSet::new();
        let mut text = String::new();
        match File::open(&path) {
            Ok(mut f) => {
                f.read_to_string(&mut text).map_err(io_err(&path))?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path)(e)),
        }
        // Keep only complete lines; a missing final newline means a torn append.
        let complete = text.rfind('\n').map_or(0, |i| i + 1);
        let mut lines = text[..complete].lines();
        let fresh = match lines.next() {
            // Empty, or a torn header from a crash while creating the log. Anything else
            // without a newline (e.g. the reference's one-line JSON file) is not ours.
            None if HEADER.starts_with(text.as_str()) => true,
            None => {
                return Err(StoreError::Corrupt { path, line: 1, reason: "not a nonce log".to_string() });
            }
            Some(h) if h == HEADER => false,
            Some(h) => {
                return Err(StoreError::Corrupt { path, line: 1, reason: format!("unknown header {h:?}") });
            }
        };
        for (i, line) in lines.enumerate() {
            let (nonce, exp) =
                parse_record(line).map_err(|reason| StoreError::Corrupt { path: path.clone(), line: i + 2, reason })?;
            set.claim(nonce, exp);
        }
        let log = if fresh {
            Self::rewrite(&path, &[])?
        } else {
            let f = OpenOptions::new().append(true).open(&path).map_err(io_err(&path))?;
            if complete < text.len() {
                f.set_len(complete as u64).and_then(|()| f.sync_all()).map_err(io_err(&path))?;
            }
            f
        };
        Ok(FileNonceStore { path, set, log: Mutex::new(Some(log)), _lock: lock })
    }

    /// Writes a complete log with `entries` to a temporary file, fsyncs it, renames it over
    /// `path`, fsyncs the directory, and returns an append handle on the new log.
    fn rewrite(path: &Path, entries: &[([u8; NONCE_LEN], u64)]) -> Result<File, StoreError> {
        let mut tmp = path.to_path_buf().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let mut body = String::with_capacity(HEADER.len() + 1 + entries.len() * 80);
        body.push_str(HEADER);
        body.push('\n');
        for (n, e) in entries {
            body.push_str(&record(n, *e));
        }
        let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
        f.write_all(body.as_bytes()).and_then(|()| f.sync_all()).map_err(io_err(&tmp))?;
        drop(f);
        fs::rename(&tmp, path).map_err(io_err(path))?;
        sync_dir(path)?;
        OpenOptions::new().append(true).open(path).map_err(io_err(path))
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of nonces held.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether no nonce is held.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// Imports the reference's nonce file (`{"consumed": ["<hex>", …]}`, written by
    /// `aster.trust.nonces.NonceStore`): every listed nonce becomes consumed, kept forever (the
    /// reference records no expiry). Returns how many were new.
    pub fn import_reference_json(&self, text: &str) -> Result<usize, StoreError> {
        #[derive(serde::Deserialize)]
        struct Ref {
            #[serde(default)]
            consumed: Vec<String>,
        }
        let corrupt = |reason: String| StoreError::Corrupt { path: self.path.clone(), line: 0, reason };
        let r: Ref = serde_json::from_str(text).map_err(|e| corrupt(e.to_string()))?;
        let mut added = 0;
        for n in &r.consumed {
            let nonce = hex::decode_array::<NONCE_LEN>(n).ok_or_else(|| corrupt(format!("bad nonce {n:?}")))?;
            if self.consume(nonce, u64::MAX)? {
                added += 1;
            }
        }
        Ok(added)
    }
}

impl NonceStore for FileNonceStore {
    fn consume(&self, nonce: [u8; NONCE_LEN], expires_at: u64) -> Result<bool, StoreError> {
        // The claim decides atomically who is first; the winner then makes it durable.
        if !self.set.claim(nonce, expires_at) {
            return Ok(false);
        }
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let result = match log.as_mut() {
            None => Err(StoreError::Failed(self.path.clone())),
            Some(f) => f.write_all(record(&nonce, expires_at).as_bytes()).and_then(|()| f.sync_data()).map_err(|e| {
                // A partial record may be on disk: stop appending after it.
                *log = None;
                io_err(&self.path)(e)
            }),
        };
        drop(log);
        match result {
            Ok(()) => Ok(true),
            Err(e) => {
                self.set.release(&nonce);
                Err(e)
            }
        }
    }

    fn is_consumed(&self, nonce: &[u8; NONCE_LEN]) -> Result<bool, StoreError> {
        Ok(self.set.contains(nonce))
    }

    fn prune(&self, now: u64) -> Result<usize, StoreError> {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if log.is_none() {
            return Err(StoreError::Failed(self.path.clone()));
        }
        let removed = self.set.prune(prune_cutoff(now));
        if removed > 0 {
            // Claims racing this snapshot are either in it or appended to the new log after
            // the lock is released (a duplicate record is harmless).
            let mut entries = self.set.snapshot();
            entries.sort_unstable();
            // Whatever step failed, the handle may now point at an unlinked file (the rename
            // may have happened): appends there would be lost on restart, so the store fails
            // closed from here on.
            match Self::rewrite(&self.path, &entries) {
                Ok(f) => *log = Some(f),
                Err(e) => {
                    *log = None;
                    return Err(e);
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("aster-nonce-{}-{}", name, std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn in_memory_consume_once_and_prune() {
        let s = InMemoryNonceStore::new();
        assert!(s.consume([1; 32], 1000).unwrap());
        assert!(!s.consume([1; 32], 1000).unwrap());
        assert!(s.is_consumed(&[1; 32]).unwrap());
        assert!(!s.is_consumed(&[2; 32]).unwrap());
        assert_eq!(s.prune(1000 + PRUNE_GRACE_SECS).unwrap(), 0, "kept through the grace period");
        assert_eq!(s.prune(1001 + PRUNE_GRACE_SECS).unwrap(), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn file_store_survives_restart() {
        let d = tmpdir("restart");
        let p = d.join("sub/nonces.log");
        {
            let s = FileNonceStore::open(&p).unwrap();
            assert!(s.consume([7; 32], 5000).unwrap());
            assert!(!s.consume([7; 32], 5000).unwrap());
            assert!(s.consume([8; 32], 6000).unwrap());
        }
        let s = FileNonceStore::open(&p).unwrap();
        assert_eq!(s.len(), 2);
        assert!(!s.consume([7; 32], 5000).unwrap(), "replay after restart must be rejected");
        assert!(s.consume([9; 32], 7000).unwrap());
        drop(s);
        let text = fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("aster-nonce-store v1\n"));
        assert_eq!(text.lines().count(), 4);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn file_store_prune_compacts() {
        let d = tmpdir("prune");
        let p = d.join("n.log");
        let s = FileNonceStore::open(&p).unwrap();
        assert!(s.consume([1; 32], 100).unwrap());
        assert!(s.consume([2; 32], 10_000_000).unwrap());
        assert_eq!(s.prune(100 + PRUNE_GRACE_SECS + 1).unwrap(), 1);
        assert!(s.consume([3; 32], 10_000_000).unwrap(), "appends go to the compacted log");
        drop(s);
        let s = FileNonceStore::open(&p).unwrap();
        assert_eq!(s.len(), 2);
        assert!(!s.is_consumed(&[1; 32]).unwrap());
        assert!(s.is_consumed(&[2; 32]).unwrap() && s.is_consumed(&[3; 32]).unwrap());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn file_store_is_locked_and_drops_torn_tail() {
        let d = tmpdir("lock");
        let p = d.join("n.log");
        let s = FileNonceStore::open(&p).unwrap();
        assert!(matches!(FileNonceStore::open(&p), Err(StoreError::Locked(_))));
        assert!(s.consume([4; 32], 50).unwrap());
        drop(s);
        // Simulate a crash mid-append.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"abcdef").unwrap();
        drop(f);
        let s = FileNonceStore::open(&p).unwrap();
        assert_eq!(s.len(), 1);
        assert!(s.consume([5; 32], 50).unwrap());
        drop(s);
        let s = FileNonceStore::open(&p).unwrap();
        assert_eq!(s.len(), 2);
        drop(s);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn file_store_fails_closed_when_a_prune_cannot_rewrite() {
        let d = tmpdir("prune-fail");
        let p = d.join("n.log");
        let s = FileNonceStore::open(&p).unwrap();
        assert!(s.consume([1; 32], 10).unwrap());
        assert!(s.consume([2; 32], u64::MAX / 2).unwrap());
        // The rewrite's temporary file cannot be created (a directory is in the way).
        fs::create_dir(d.join("n.log.tmp")).unwrap();
        assert!(s.prune(u64::MAX / 4).is_err());
        assert!(matches!(s.consume([3; 32], 99), Err(StoreError::Failed(_))), "no claim is accepted unlogged");
        drop(s);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn file_store_rejects_corruption() {
        let d = tmpdir("corrupt");
        let p = d.join("n.log");
        fs::write(&p, "aster-nonce-store v1\nnot-a-record\n").unwrap();
        assert!(matches!(FileNonceStore::open(&p), Err(StoreError::Corrupt { line: 2, .. })));
        fs::write(&p, "{\"consumed\": []}\n").unwrap();
        assert!(matches!(FileNonceStore::open(&p), Err(StoreError::Corrupt { line: 1, .. })));
        fs::write(&p, "{\"consumed\": []}").unwrap();
        assert!(matches!(FileNonceStore::open(&p), Err(StoreError::Corrupt { line: 1, .. })), "no newline");
        fs::write(&p, "aster-nonce").unwrap();
        assert!(FileNonceStore::open(&p).unwrap().is_empty(), "torn header = fresh log");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn imports_reference_file() {
        let d = tmpdir("import");
        let s = FileNonceStore::open(d.join("n.log")).unwrap();
        let json = format!("{{\"consumed\": [\"{}\", \"{}\"]}}", "aa".repeat(32), "bb".repeat(32));
        assert_eq!(s.import_reference_json(&json).unwrap(), 2);
        assert!(!s.consume([0xaa; 32], 1).unwrap());
        assert_eq!(s.prune(u64::MAX).unwrap(), 0, "imported nonces never expire");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn concurrent_consumers_one_winner() {
        let d = tmpdir("race");
        let s = std::sync::Arc::new(FileNonceStore::open(d.join("n.log")).unwrap());
        let wins: usize = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || s.consume([6; 32], 99).unwrap())
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| usize::from(h.join().unwrap()))
            .sum();
        assert_eq!(wins, 1);
        fs::remove_dir_all(&d).unwrap();
    }
}
