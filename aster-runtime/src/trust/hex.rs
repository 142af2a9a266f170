//! Hex helpers (lowercase out, either case in), as Python's `bytes.hex()` / `bytes.fromhex()`
//! minus `fromhex`'s tolerance of embedded whitespace.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex (either case); `None` on odd length or a non-hex character.
pub(crate) fn decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return None;
    }
    b.chunks_exact(2).map(|p| Some((nibble(p[0])? << 4) | nibble(p[1])?)).collect()
}

/// Decodes exactly `N` bytes of hex.
pub(crate) fn decode_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    decode(s)?.try_into().ok()
}

/// Whether `s` is exactly `2 * n` hex characters.
pub(crate) fn is_hex_of_len(s: &str, n: usize) -> bool {
    s.len() == 2 * n && s.bytes().all(|c| nibble(c).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_rejects() {
        assert_eq!(encode(&[0x00, 0xab, 0xff]), "00abff");
        assert_eq!(decode("00ABff"), Some(vec![0x00, 0xab, 0xff]));
        assert_eq!(decode("abc"), None);
        assert_eq!(decode("zz"), None);
        assert_eq!(decode("ab cd"), None);
        assert_eq!(decode_array::<2>("abcd"), Some([0xab, 0xcd]));
        assert_eq!(decode_array::<2>("abcdef"), None);
        assert!(is_hex_of_len("abCD", 2));
        assert!(!is_hex_of_len("abc", 2));
    }
}
