//! Locates the shared reference vectors for unit tests.

use std::path::PathBuf;

/// The `shared/vectors` directory: `$ASTER_SHARED_DIR/vectors` if set, else the `shared/` folder
/// beside the project root. Panics (tests only) when it does not exist.
pub(crate) fn vectors_dir() -> PathBuf {
    let shared = std::env::var_os("ASTER_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let dir = shared.join("vectors");
    assert!(dir.is_dir(), "reference vectors not found at {} (set ASTER_SHARED_DIR)", dir.display());
    dir
}

/// Reads a file below `vectors/`.
pub(crate) fn read(rel: &str) -> Vec<u8> {
    let p = vectors_dir().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()))
}

/// Decodes a hex string (whitespace ignored).
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("bad hex: {e}")))
        .collect()
}
