//! The canonical "XLANG profile" primitives (protocol reference §6.1; `core/src/canonical.rs`
//! of aster-rpc, identical in 0.1.2 and HEAD).
//!
//! No Fory header, no type info, no ref/null flags, no struct hash: a message is the plain
//! concatenation of its fields in ascending field-number order, each written with one of the
//! primitives below.
//!
//! | kind | encoding |
//! |---|---|
//! | unsigned / enum discriminant | unsigned LEB128 varint |
//! | int32 / int64 | ZigZag, then unsigned varint (`0→00`, `−1→01`, `1→02`) |
//! | string | `varint((utf8_len << 2) \| 2)` then the UTF-8 bytes (always the UTF-8 tag; `""` = `02`) |
//! | bytes | `varint(len)` then the bytes |
//! | bool | `00` / `01` |
//! | float64 | 8 bytes little-endian IEEE-754 |
//! | list | `varint(count)` then **always** `0c`, even for an empty list, then the elements |
//! | optional | absent = `fd`; present = `00` then the value |

/// The element header written after every list count: "declared type, same type, no nulls,
/// no refs" in Fory terms. Written even for an empty list.
pub const LIST_ELEMENT_HEADER: u8 = 0x0c;

/// The flag of an absent optional value (Fory `NULL_FLAG`, −3 as a byte).
pub const ABSENT_FLAG: u8 = 0xfd;

/// The flag in front of a present optional value.
pub const PRESENT_FLAG: u8 = 0x00;

/// The tag in the low two bits of a string header: UTF-8.
const STRING_UTF8_TAG: u64 = 2;

/// Appends canonical primitives to a byte buffer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CanonicalWriter {
    buf: Vec<u8>,
}

impl CanonicalWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Consumes the writer, returning its bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Unsigned LEB128 varint (also used for enum discriminants).
    pub fn write_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// ZigZag-encoded signed 32-bit integer.
    pub fn write_i32(&mut self, v: i32) {
        self.write_varint(u64::from(((v << 1) ^ (v >> 31)) as u32));
    }

    /// ZigZag-encoded signed 64-bit integer.
    pub fn write_i64(&mut self, v: i64) {
        self.write_varint(((v << 1) ^ (v >> 63)) as u64);
    }

    /// String: `varint((len << 2) | 2)` and the UTF-8 bytes, written as given (no normalization).
    pub fn write_string(&mut self, s: &str) {
        self.write_varint(((s.len() as u64) << 2) | STRING_UTF8_TAG);
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Bytes: `varint(len)` and the raw bytes.
    pub fn write_bytes(&mut self, b: &[u8]) {
        self.write_varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }

    /// Bool: one byte `00` or `01`.
    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    /// Float64: 8 bytes little-endian.
    pub fn write_f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// List header: `varint(count)` then `0c` (always, also for `count == 0`).
    pub fn write_list_header(&mut self, count: usize) {
        self.write_varint(count as u64);
        self.buf.push(LIST_ELEMENT_HEADER);
    }

    /// An absent optional value: `fd`.
    pub fn write_absent(&mut self) {
        self.buf.push(ABSENT_FLAG);
    }

    /// The prefix of a present optional value: `00` (the value follows).
    pub fn write_present(&mut self) {
        self.buf.push(PRESENT_FLAG);
    }

    /// A list of strings: header, then each string.
    pub fn write_string_list<S: AsRef<str>>(&mut self, items: &[S]) {
        self.write_list_header(items.len());
        for s in items {
            self.write_string(s.as_ref());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn w(f: impl FnOnce(&mut CanonicalWriter)) -> String {
        let mut w = CanonicalWriter::new();
        f(&mut w);
        hex(w.as_bytes())
    }

    #[test]
    fn varints() {
        assert_eq!(w(|w| w.write_varint(0)), "00");
        assert_eq!(w(|w| w.write_varint(127)), "7f");
        assert_eq!(w(|w| w.write_varint(128)), "8001");
        assert_eq!(w(|w| w.write_varint(u64::MAX)), "ffffffffffffffffff01");
    }

    #[test]
    fn zigzag() {
        assert_eq!(w(|w| w.write_i32(127)), "fe01");
        assert_eq!(w(|w| w.write_i32(-64)), "7f");
        assert_eq!(w(|w| w.write_i64(i64::MIN)), "ffffffffffffffffff01");
    }

    #[test]
    fn strings_lists_optionals() {
        assert_eq!(w(|w| w.write_string("")), "02");
        assert_eq!(w(|w| w.write_string("é")), "0ac3a9");
        assert_eq!(w(|w| w.write_string_list::<&str>(&[])), "000c");
        assert_eq!(w(|w| w.write_string_list(&["a"])), "010c0661");
        assert_eq!(w(|w| w.write_absent()), "fd");
        assert_eq!(w(|w| w.write_present()), "00");
        assert_eq!(w(|w| w.write_f64(30000.0)), "00000000004cdd40");
        assert_eq!(w(|w| w.write_bool(true)), "01");
        assert_eq!(w(|w| w.write_bytes(&[])), "00");
    }
}
