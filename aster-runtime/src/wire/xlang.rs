//! Fory XLANG primitives, byte-compatible with **pyfory 0.16** in its default xlang
//! configuration (`pyfory.Fory(xlang=True)`: no reference tracking, not compatible mode).
//!
//! This is the byte layer the v0.1 dialect of Aster uses for its protocol messages
//! (`StreamHeader`, `CallHeader`, `RpcStatus`, see [`crate::wire::header`]) and for user
//! payloads in XLANG mode. It is sans-IO: an [`XlangWriter`] appends to a `Vec<u8>`, an
//! [`XlangReader`] walks a borrowed slice and never panics or allocates more than the input
//! can justify.
//!
//! # Layout of a top-level named struct (pyfory 0.16)
//!
//! ```text
//! 02            header bitmap: bit1 = xlang (bit0 = null root, bit2 = out-of-band buffers)
//! ff            ref/null flag of the root object: NOT_NULL (-1)
//! 1d            type id 29 = NAMED_STRUCT (one byte)
//! <meta string> namespace (special chars '.' and '_')
//! <meta string> typename  (special chars '$' and '_')
//! <i32 LE>      struct hash ([`struct_hash`] of the struct fingerprint)
//! <fields>      non-null primitives, then strings/other internal types, then lists, ...
//! ```
//!
//! # Facts about pyfory 0.16 this module reproduces
//!
//! * **Strings** (`Buffer.write_string`): the header is a Fory var-uint64 of
//!   `(byte_len << 2) | encoding`. The encoding follows CPython's internal string kind:
//!   every char `< U+0100` → **LATIN1** (0, one byte per char; this includes all ASCII),
//!   else every char `< U+10000` → **UTF-16LE** (1, two bytes per char), else **UTF-8** (2).
//!   The reader accepts all three (UTF-16 with surrogate pairs too).
//! * **Var-uint64** is Fory's 9-byte form: 7 bits in each of the first 8 bytes, then the
//!   9th byte carries the last 8 bits (so `u64::MAX` = `ff × 9`), not LEB128's 10 bytes.
//!   Var-uint32 is plain LEB128 (≤ 5 bytes). Signed variants use zigzag.
//! * **Meta strings** (namespace / typename): header var-uint32 `len << 1`; for
//!   `0 < len <= 16` one encoding byte follows, for `len > 16` an 8-byte little-endian hash
//!   (MurmurHash3_x64_128 seed 47 of the bytes, first 64-bit half, low byte replaced by the
//!   encoding); then the bytes. The encoding is chosen as pyfory's `MetaStringEncoder` does
//!   (see [`MetaString::encode`]). Within one message a meta string already written is
//!   referenced again as var-uint32 `((id + 1) << 1) | 1`; pyfory keeps one id per
//!   *registered type* (the namespace of two different types is written twice), while the
//!   empty namespace is a single shared object — [`XlangWriter::write_named_type_info`]
//!   reproduces exactly that.
//! * **`list<string>`** fields: var-uint32 count, then (only if count > 0) the elements
//!   header byte `0x0c` (declared element type + same type, no nulls, no refs) and the
//!   strings. Readers accept every header pyfory can write for a string list.
//! * **Struct hash**: the low 32 bits (as `i32`) of MurmurHash3_x64_128(seed 47) of the
//!   fingerprint `name,type_id,ref,nullable;…` sorted by field name; 47 for an empty
//!   fingerprint (see [`struct_fingerprint`], [`struct_hash`]).

use std::fmt;

use bytes::Bytes;

/// Fory xlang type ids (pyfory 0.16 `pyfory.types.TypeId`).
pub mod type_id {
    /// Unknown / polymorphic.
    pub const UNKNOWN: u8 = 0;
    /// `bool`.
    pub const BOOL: u8 = 1;
    /// `int8`.
    pub const INT8: u8 = 2;
    /// `int16`.
    pub const INT16: u8 = 3;
    /// `int32` (fixed 4 bytes).
    pub const INT32: u8 = 4;
    /// `int32` as zigzag varint.
    pub const VARINT32: u8 = 5;
    /// `int64` (fixed 8 bytes).
    pub const INT64: u8 = 6;
    /// `int64` as zigzag varint (Python `int`).
    pub const VARINT64: u8 = 7;
    /// `int64`, tagged encoding.
    pub const TAGGED_INT64: u8 = 8;
    /// `uint8`.
    pub const UINT8: u8 = 9;
    /// `uint16`.
    pub const UINT16: u8 = 10;
    /// `uint32` (fixed).
    pub const UINT32: u8 = 11;
    /// `uint32` as varint.
    pub const VAR_UINT32: u8 = 12;
    /// `uint64` (fixed).
    pub const UINT64: u8 = 13;
    /// `uint64` as varint.
    pub const VAR_UINT64: u8 = 14;
    /// `uint64`, tagged encoding.
    pub const TAGGED_UINT64: u8 = 15;
    /// 8-bit float.
    pub const FLOAT8: u8 = 16;
    /// `float16`.
    pub const FLOAT16: u8 = 17;
    /// `bfloat16`.
    pub const BFLOAT16: u8 = 18;
    /// `float32`.
    pub const FLOAT32: u8 = 19;
    /// `float64` (Python `float`).
    pub const FLOAT64: u8 = 20;
    /// `string`.
    pub const STRING: u8 = 21;
    /// `list`.
    pub const LIST: u8 = 22;
    /// `set`.
    pub const SET: u8 = 23;
    /// `map`.
    pub const MAP: u8 = 24;
    /// Enum registered by id.
    pub const ENUM: u8 = 25;
    /// Enum registered by name.
    pub const NAMED_ENUM: u8 = 26;
    /// Struct registered by id.
    pub const STRUCT: u8 = 27;
    /// Compatible-mode struct registered by id.
    pub const COMPATIBLE_STRUCT: u8 = 28;
    /// Struct registered by namespace + typename (what the v0.1 dialect uses).
    pub const NAMED_STRUCT: u8 = 29;
    /// Compatible-mode struct registered by name (v0.2 dialect).
    pub const NAMED_COMPATIBLE_STRUCT: u8 = 30;
    /// Extension type registered by id.
    pub const EXT: u8 = 31;
    /// Extension type registered by name.
    pub const NAMED_EXT: u8 = 32;
    /// Union.
    pub const UNION: u8 = 33;
    /// Typed union.
    pub const TYPED_UNION: u8 = 34;
    /// Named union.
    pub const NAMED_UNION: u8 = 35;
    /// None.
    pub const NONE: u8 = 36;
    /// Duration.
    pub const DURATION: u8 = 37;
    /// Timestamp.
    pub const TIMESTAMP: u8 = 38;
    /// Date.
    pub const DATE: u8 = 39;
    /// Decimal.
    pub const DECIMAL: u8 = 40;
    /// Binary (`bytes`).
    pub const BINARY: u8 = 41;
    /// Generic array.
    pub const ARRAY: u8 = 42;
}

/// Bits of the one-byte Fory header bitmap.
pub mod header_bits {
    /// The root object is null (nothing follows).
    pub const NULL: u8 = 0x01;
    /// Cross-language format (always set by pyfory 0.16).
    pub const XLANG: u8 = 0x02;
    /// Out-of-band buffers were used (never by Aster).
    pub const OUT_OF_BAND: u8 = 0x04;
}

/// Reference/null flags written before a nullable or ref-tracked value.
pub mod ref_flag {
    /// The value is null.
    pub const NULL: i8 = -3;
    /// Back-reference to an object already written (ref id follows).
    pub const REF: i8 = -2;
    /// A non-null value follows, not ref-tracked.
    pub const NOT_NULL: i8 = -1;
    /// A ref-tracked value follows (first occurrence).
    pub const REF_VALUE: i8 = 0;
}

/// Bits of the elements header byte of a collection.
pub mod collection_flags {
    /// Every element carries a ref flag.
    pub const TRACKING_REF: u8 = 0x01;
    /// Every element carries a null flag.
    pub const HAS_NULL: u8 = 0x02;
    /// The element type is the declared one (no type info written).
    pub const DECL_ELEMENT_TYPE: u8 = 0x04;
    /// All elements have the same type (type info written once, unless declared).
    pub const SAME_TYPE: u8 = 0x08;
    /// The header pyfory writes for a non-empty, null-free `list[str]` field.
    pub const DECL_SAME_TYPE: u8 = DECL_ELEMENT_TYPE | SAME_TYPE;
}

/// Meta strings of at most this many encoded bytes carry an encoding byte; longer ones a hash.
pub const SMALL_META_STRING_THRESHOLD: usize = 16;

/// Seed of every MurmurHash3 Fory computes (struct hashes, meta-string hashes).
pub const FORY_HASH_SEED: u32 = 47;

/// pyfory refuses meta strings of this many chars or more.
pub const META_STRING_MAX_CHARS: usize = 32767;

/// Special characters of namespace meta strings (`LOWER_UPPER_DIGIT_SPECIAL` values 62, 63).
pub const NAMESPACE_SPECIAL_CHARS: (char, char) = ('.', '_');

/// Special characters of typename meta strings (`LOWER_UPPER_DIGIT_SPECIAL` values 62, 63).
pub const TYPENAME_SPECIAL_CHARS: (char, char) = ('$', '_');

/// A malformed or unexpected Fory XLANG byte sequence.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum XlangError {
    /// The input ended before a value was complete.
    #[error("truncated Fory data: needed {needed} byte(s) at offset {offset}, {available} available")]
    Truncated {
        /// Offset of the value being read.
        offset: usize,
        /// Bytes the value needs (as announced by the data).
        needed: u64,
        /// Bytes left in the input.
        available: usize,
    },
    /// A varint is longer than its type allows or overflows it.
    #[error("malformed varint at offset {offset}")]
    BadVarint {
        /// Offset of the varint.
        offset: usize,
    },
    /// The header bitmap is not `0x02` (xlang, non-null root, no out-of-band buffers).
    #[error("unsupported Fory header bitmap 0x{0:02x} (expected 0x02)")]
    BadHeader(u8),
    /// A ref/null flag that is not allowed at this position.
    #[error("unexpected ref/null flag {found} at offset {offset}")]
    UnexpectedRefFlag {
        /// Offset of the flag.
        offset: usize,
        /// The flag read.
        found: i8,
    },
    /// A type id other than the expected one.
    #[error("unexpected Fory type id {found} at offset {offset} (expected {expected})")]
    UnexpectedTypeId {
        /// Offset of the type id.
        offset: usize,
        /// The type id required here.
        expected: u8,
        /// The type id read.
        found: u8,
    },
    /// A named struct of another type than expected.
    #[error("type mismatch: expected {expected}, found {found}")]
    TypeMismatch {
        /// `namespace/typename` expected.
        expected: String,
        /// `namespace/typename` read.
        found: String,
    },
    /// The struct hash does not match the expected field layout.
    #[error("struct hash mismatch for {type_name}: expected {expected}, found {found}")]
    HashMismatch {
        /// `namespace/typename` of the struct.
        type_name: String,
        /// The hash of the local definition.
        expected: i32,
        /// The hash read.
        found: i32,
    },
    /// A string value that cannot be decoded.
    #[error("invalid string at offset {offset}: {reason}")]
    InvalidString {
        /// Offset of the string header.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A meta string (namespace / typename) that cannot be encoded or decoded.
    #[error("invalid meta string: {0}")]
    InvalidMetaString(String),
    /// A collection header or element that cannot be read.
    #[error("invalid collection at offset {offset}: {reason}")]
    InvalidCollection {
        /// Offset of the collection.
        offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// Bytes remain after the complete message.
    #[error("{0} trailing byte(s) after the Fory message")]
    TrailingBytes(usize),
}

// ---------------------------------------------------------------------------------------------
// MurmurHash3 x64 128 and struct hashes
// ---------------------------------------------------------------------------------------------

#[inline]
fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^= k >> 33;
    k
}

/// MurmurHash3_x64_128 (Austin Appleby's reference algorithm) of `data` with `seed`.
///
/// Returns the two 64-bit halves `(h1, h2)`; the reference implementation writes them to
/// memory in that order (little-endian), Python's `mmh3.hash64` returns them as signed ints.
pub fn murmurhash3_x64_128(data: &[u8], seed: u32) -> (u64, u64) {
    const C1: u64 = 0x87c3_7b91_1142_53d5;
    const C2: u64 = 0x4cf5_ad43_2745_937f;
    let mut h1 = u64::from(seed);
    let mut h2 = u64::from(seed);

    let mut blocks = data.chunks_exact(16);
    for block in &mut blocks {
        let mut k1 = le_u64(&block[0..8]);
        let mut k2 = le_u64(&block[8..16]);

        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
        h1 = h1.rotate_left(27).wrapping_add(h2).wrapping_mul(5).wrapping_add(0x52dc_e729);

        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
        h2 = h2.rotate_left(31).wrapping_add(h1).wrapping_mul(5).wrapping_add(0x3849_5ab5);
    }

    let tail = blocks.remainder();
    if tail.len() > 8 {
        let mut k2 = 0u64;
        for (i, b) in tail[8..].iter().enumerate() {
            k2 ^= u64::from(*b) << (8 * i);
        }
        k2 = k2.wrapping_mul(C2).rotate_left(33).wrapping_mul(C1);
        h2 ^= k2;
    }
    if !tail.is_empty() {
        let mut k1 = 0u64;
        for (i, b) in tail.iter().take(8).enumerate() {
            k1 ^= u64::from(*b) << (8 * i);
        }
        k1 = k1.wrapping_mul(C1).rotate_left(31).wrapping_mul(C2);
        h1 ^= k1;
    }

    let len = data.len() as u64;
    h1 ^= len;
    h2 ^= len;
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 = h1.wrapping_add(h2);
    h2 = h2.wrapping_add(h1);
    (h1, h2)
}

fn le_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u64::from_le_bytes(a)
}

/// One field's entry in a struct fingerprint (pyfory 0.16 `compute_struct_fingerprint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FingerprintField<'a> {
    /// Field name as declared (Python attribute name).
    pub name: &'a str,
    /// Fory type id of the field; polymorphic, enum and union fields use [`type_id::UNKNOWN`].
    pub type_id: u8,
    /// `ref=True` was declared for the field (never for Aster types).
    pub tracking_ref: bool,
    /// The field is nullable (`Optional[T]`).
    pub nullable: bool,
}

/// The fingerprint string `name,type_id,ref,nullable;` of every field, sorted by name
/// (code-point order, as Python sorts `str`).
pub fn struct_fingerprint(fields: &[FingerprintField<'_>]) -> String {
    let mut sorted: Vec<&FingerprintField<'_>> = fields.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(b.name));
    let mut s = String::new();
    for f in sorted {
        s.push_str(f.name);
        s.push(',');
        s.push_str(&f.type_id.to_string());
        s.push_str(if f.tracking_ref { ",1" } else { ",0" });
        s.push_str(if f.nullable { ",1;" } else { ",0;" });
    }
    s
}

/// The struct version hash pyfory writes after the type info of a non-compatible struct:
/// the low 32 bits (as `i32`) of the first half of MurmurHash3_x64_128(seed 47) of the
/// UTF-8 fingerprint; 47 for an empty fingerprint.
pub fn struct_hash(fingerprint: &str) -> i32 {
    if fingerprint.is_empty() {
        return 47;
    }
    let (h1, _) = murmurhash3_x64_128(fingerprint.as_bytes(), FORY_HASH_SEED);
    h1 as u32 as i32
}

// ---------------------------------------------------------------------------------------------
// Meta strings
// ---------------------------------------------------------------------------------------------

/// Encoding of a meta string (the `Encoding` enum of pyfory's `metastring.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaStringEncoding {
    /// 0: raw UTF-8 bytes.
    Utf8,
    /// 1: 5 bits per char: `a-z . _ $ |`.
    LowerSpecial,
    /// 2: 6 bits per char: `a-z A-Z 0-9` and two special chars.
    LowerUpperDigitSpecial,
    /// 3: like `LowerSpecial`, first char upper-cased on decode.
    FirstToLowerSpecial,
    /// 4: like `LowerSpecial`, each `|x` decodes to upper-case `X`.
    AllToLowerSpecial,
}

impl MetaStringEncoding {
    /// The wire value (0..=4).
    pub fn as_u8(self) -> u8 {
        match self {
            MetaStringEncoding::Utf8 => 0,
            MetaStringEncoding::LowerSpecial => 1,
            MetaStringEncoding::LowerUpperDigitSpecial => 2,
            MetaStringEncoding::FirstToLowerSpecial => 3,
            MetaStringEncoding::AllToLowerSpecial => 4,
        }
    }

    /// Parses a wire value; `None` outside 0..=4.
    pub fn from_u8(v: u8) -> Option<MetaStringEncoding> {
        match v {
            0 => Some(MetaStringEncoding::Utf8),
            1 => Some(MetaStringEncoding::LowerSpecial),
            2 => Some(MetaStringEncoding::LowerUpperDigitSpecial),
            3 => Some(MetaStringEncoding::FirstToLowerSpecial),
            4 => Some(MetaStringEncoding::AllToLowerSpecial),
            _ => None,
        }
    }
}

/// An encoded meta string: a namespace or type name in Fory's packed form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MetaString {
    encoding: MetaStringEncoding,
    /// Shared, so that a clone (a writer remembering what it wrote, a reader what it read)
    /// costs no allocation.
    bytes: Bytes,
}

impl MetaString {
    /// The empty meta string (UTF-8, no bytes).
    pub fn empty() -> MetaString {
        MetaString { encoding: MetaStringEncoding::Utf8, bytes: Bytes::new() }
    }

    /// A meta string from its wire parts (no validation; [`MetaString::decode`] checks).
    pub fn from_parts(encoding: MetaStringEncoding, bytes: Vec<u8>) -> MetaString {
        MetaString { encoding, bytes: Bytes::from(bytes) }
    }

    /// Encodes `s` choosing the encoding the way pyfory 0.16's `MetaStringEncoder` does
    /// (`special` = the two chars for values 62/63 of `LOWER_UPPER_DIGIT_SPECIAL`):
    ///
    /// 1. all chars in `a-z . _ $ |` → `LOWER_SPECIAL`;
    /// 2. else all chars in `a-z A-Z 0-9` ∪ `special`: with a digit → `LOWER_UPPER_DIGIT_SPECIAL`;
    ///    exactly one upper-case char and it is the first → `FIRST_TO_LOWER_SPECIAL`;
    ///    `(len + uppers) * 5 < len * 6` → `ALL_TO_LOWER_SPECIAL`; else
    ///    `LOWER_UPPER_DIGIT_SPECIAL`;
    /// 3. else UTF-8. The empty string is UTF-8 with no bytes.
    ///
    /// Character classes are ASCII only (pyfory's Unicode-aware `islower()` would pick a
    /// packed encoding for e.g. `é` and then fail; such names are unusable with pyfory).
    /// Errors for strings of [`META_STRING_MAX_CHARS`] chars or more, like pyfory.
    pub fn encode(s: &str, special: (char, char)) -> Result<MetaString, XlangError> {
        let n = s.chars().count();
        if n >= META_STRING_MAX_CHARS {
            return Err(XlangError::InvalidMetaString(format!(
                "{n} chars, the limit is {}",
                META_STRING_MAX_CHARS - 1
            )));
        }
        if s.is_empty() {
            return Ok(MetaString::empty());
        }
        let encoding = compute_meta_encoding(s, special);
        MetaString::encode_with(s, encoding, special)
    }

    /// Encodes `s` as a namespace (special chars `.` and `_`).
    pub fn encode_namespace(s: &str) -> Result<MetaString, XlangError> {
        MetaString::encode(s, NAMESPACE_SPECIAL_CHARS)
    }

    /// Encodes `s` as a type name (special chars `$` and `_`).
    pub fn encode_typename(s: &str) -> Result<MetaString, XlangError> {
        MetaString::encode(s, TYPENAME_SPECIAL_CHARS)
    }

    /// Encodes `s` with a given encoding; errors if a char is not representable.
    pub fn encode_with(s: &str, encoding: MetaStringEncoding, special: (char, char)) -> Result<MetaString, XlangError> {
        if s.is_empty() {
            return Ok(MetaString::empty());
        }
        let values: Vec<u8> = match encoding {
            MetaStringEncoding::Utf8 => {
                return Ok(MetaString { encoding, bytes: Bytes::copy_from_slice(s.as_bytes()) });
            }
            MetaStringEncoding::LowerSpecial => s.chars().map(lower_special_value).collect::<Result<_, _>>()?,
            MetaStringEncoding::FirstToLowerSpecial if !s.starts_with(|c: char| c.is_ascii_uppercase()) => {
                return Err(XlangError::InvalidMetaString(format!(
                    "{s:?} does not start with an upper-case letter (FIRST_TO_LOWER_SPECIAL)"
                )));
            }
            MetaStringEncoding::FirstToLowerSpecial => s
                .chars()
                .enumerate()
                .map(|(i, c)| lower_special_value(if i == 0 { c.to_ascii_lowercase() } else { c }))
                .collect::<Result<_, _>>()?,
            MetaStringEncoding::AllToLowerSpecial => {
                let mut v = Vec::with_capacity(s.len() * 2);
                for c in s.chars() {
                    if c.is_ascii_uppercase() {
                        v.push(29); // '|'
                        v.push(lower_special_value(c.to_ascii_lowercase())?);
                    } else {
                        v.push(lower_special_value(c)?);
                    }
                }
                v
            }
            MetaStringEncoding::LowerUpperDigitSpecial => {
                s.chars().map(|c| lower_upper_digit_special_value(c, special)).collect::<Result<_, _>>()?
            }
        };
        let bits = if encoding == MetaStringEncoding::LowerUpperDigitSpecial { 6 } else { 5 };
        Ok(MetaString { encoding, bytes: Bytes::from(pack_bits(&values, bits)) })
    }

    /// The encoding.
    pub fn encoding(&self) -> MetaStringEncoding {
        self.encoding
    }

    /// The encoded bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// True for the empty meta string.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Decodes back to text (`special` as used when encoding).
    pub fn decode(&self, special: (char, char)) -> Result<String, XlangError> {
        if self.bytes.is_empty() {
            return Ok(String::new());
        }
        match self.encoding {
            MetaStringEncoding::Utf8 => String::from_utf8(self.bytes.to_vec())
                .map_err(|_| XlangError::InvalidMetaString("invalid UTF-8".into())),
            MetaStringEncoding::LowerSpecial => {
                unpack_bits(&self.bytes, 5)?.into_iter().map(lower_special_char).collect()
            }
            MetaStringEncoding::FirstToLowerSpecial => {
                let mut s: String =
                    unpack_bits(&self.bytes, 5)?.into_iter().map(lower_special_char).collect::<Result<_, _>>()?;
                if let Some(first) = s.get_mut(0..1) {
                    first.make_ascii_uppercase();
                }
                Ok(s)
            }
            MetaStringEncoding::AllToLowerSpecial => {
                let raw: Vec<char> =
                    unpack_bits(&self.bytes, 5)?.into_iter().map(lower_special_char).collect::<Result<_, _>>()?;
                let mut out = String::with_capacity(raw.len());
                let mut it = raw.into_iter();
                while let Some(c) = it.next() {
                    if c == '|' {
                        let next = it.next().ok_or_else(|| {
                            XlangError::InvalidMetaString("dangling '|' in ALL_TO_LOWER_SPECIAL".into())
                        })?;
                        out.push(next.to_ascii_uppercase());
                    } else {
                        out.push(c);
                    }
                }
                Ok(out)
            }
            MetaStringEncoding::LowerUpperDigitSpecial => {
                unpack_bits(&self.bytes, 6)?.into_iter().map(|v| lower_upper_digit_special_char(v, special)).collect()
            }
        }
    }

    /// Decodes as a namespace (special chars `.` and `_`).
    pub fn decode_namespace(&self) -> Result<String, XlangError> {
        self.decode(NAMESPACE_SPECIAL_CHARS)
    }

    /// Decodes as a type name (special chars `$` and `_`).
    pub fn decode_typename(&self) -> Result<String, XlangError> {
        self.decode(TYPENAME_SPECIAL_CHARS)
    }

    /// The 8-byte hash written before meta strings longer than
    /// [`SMALL_META_STRING_THRESHOLD`] bytes: first half of MurmurHash3_x64_128(seed 47) of
    /// the bytes with its low byte replaced by the encoding.
    pub fn long_hash(&self) -> i64 {
        let (h1, _) = murmurhash3_x64_128(&self.bytes, FORY_HASH_SEED);
        ((h1 & !0xff) | u64::from(self.encoding.as_u8())) as i64
    }
}

fn compute_meta_encoding(s: &str, special: (char, char)) -> MetaStringEncoding {
    let mut lower_special = true;
    let mut luds = true;
    let mut digits = 0usize;
    let mut uppers = 0usize;
    let mut len = 0usize;
    for c in s.chars() {
        len += 1;
        if !(c.is_ascii_lowercase() || matches!(c, '.' | '_' | '$' | '|')) {
            lower_special = false;
        }
        if !(c.is_ascii_alphanumeric() || c == special.0 || c == special.1) {
            luds = false;
        }
        if c.is_ascii_digit() {
            digits += 1;
        }
        if c.is_ascii_uppercase() {
            uppers += 1;
        }
    }
    if lower_special {
        return MetaStringEncoding::LowerSpecial;
    }
    if luds {
        if digits != 0 {
            return MetaStringEncoding::LowerUpperDigitSpecial;
        }
        if uppers == 1 && s.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            return MetaStringEncoding::FirstToLowerSpecial;
        }
        if (len + uppers) * 5 < len * 6 {
            return MetaStringEncoding::AllToLowerSpecial;
        }
        return MetaStringEncoding::LowerUpperDigitSpecial;
    }
    MetaStringEncoding::Utf8
}

fn lower_special_value(c: char) -> Result<u8, XlangError> {
    match c {
        'a'..='z' => Ok(c as u8 - b'a'),
        '.' => Ok(26),
        '_' => Ok(27),
        '$' => Ok(28),
        '|' => Ok(29),
        _ => Err(XlangError::InvalidMetaString(format!("{c:?} is not LOWER_SPECIAL"))),
    }
}

fn lower_special_char(v: u8) -> Result<char, XlangError> {
    match v {
        0..=25 => Ok(char::from(b'a' + v)),
        26 => Ok('.'),
        27 => Ok('_'),
        28 => Ok('$'),
        29 => Ok('|'),
        _ => Err(XlangError::InvalidMetaString(format!("invalid LOWER_SPECIAL value {v}"))),
    }
}

fn lower_upper_digit_special_value(c: char, special: (char, char)) -> Result<u8, XlangError> {
    match c {
        'a'..='z' => Ok(c as u8 - b'a'),
        'A'..='Z' => Ok(26 + (c as u8 - b'A')),
        '0'..='9' => Ok(52 + (c as u8 - b'0')),
        _ if c == special.0 => Ok(62),
        _ if c == special.1 => Ok(63),
        _ => Err(XlangError::InvalidMetaString(format!("{c:?} is not LOWER_UPPER_DIGIT_SPECIAL"))),
    }
}

fn lower_upper_digit_special_char(v: u8, special: (char, char)) -> Result<char, XlangError> {
    match v {
        0..=25 => Ok(char::from(b'a' + v)),
        26..=51 => Ok(char::from(b'A' + (v - 26))),
        52..=61 => Ok(char::from(b'0' + (v - 52))),
        62 => Ok(special.0),
        63 => Ok(special.1),
        _ => Err(XlangError::InvalidMetaString(format!("invalid LOWER_UPPER_DIGIT_SPECIAL value {v}"))),
    }
}

/// Packs `values` (each `bits` wide) MSB-first after one leading flag bit; the flag
/// ("strip last char") is set when the padding could hold one more char.
fn pack_bits(values: &[u8], bits: usize) -> Vec<u8> {
    let total_bits = values.len() * bits + 1;
    let byte_len = total_bits.div_ceil(8);
    let mut out = vec![0u8; byte_len];
    let mut pos = 1usize;
    for &v in values {
        for i in (0..bits).rev() {
            if (v >> i) & 1 == 1 {
                out[pos / 8] |= 0x80 >> (pos % 8);
            }
            pos += 1;
        }
    }
    if byte_len * 8 >= total_bits + bits {
        out[0] |= 0x80;
    }
    out
}

/// Inverse of [`pack_bits`] (pyfory's decoder loop).
fn unpack_bits(data: &[u8], bits: usize) -> Result<Vec<u8>, XlangError> {
    let Some(&first) = data.first() else {
        return Ok(Vec::new());
    };
    let num_bits = data.len() * 8;
    let strip_last = first & 0x80 != 0;
    let mask = (1u16 << bits) - 1;
    let mut out = Vec::with_capacity(num_bits / bits);
    let mut pos = 1usize;
    while pos + bits <= num_bits && !(strip_last && pos + 2 * bits > num_bits) {
        let byte = pos / 8;
        let intra = pos % 8;
        let hi = u16::from(data[byte]);
        let lo = data.get(byte + 1).map_or(0, |b| u16::from(*b));
        let v = (((hi << 8) | lo) >> (16 - bits - intra)) & mask;
        out.push(v as u8);
        pos += bits;
    }
    Ok(out)
}

/// A named struct type as the v0.1 dialect registers it: namespace, type name, the
/// pre-encoded meta strings and the struct hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedStructType {
    namespace: String,
    typename: String,
    namespace_meta: MetaString,
    typename_meta: MetaString,
    hash: i32,
}

impl NamedStructType {
    /// A type `namespace/typename` with struct hash `hash`.
    pub fn new(namespace: &str, typename: &str, hash: i32) -> Result<NamedStructType, XlangError> {
        Ok(NamedStructType {
            namespace: namespace.to_owned(),
            typename: typename.to_owned(),
            namespace_meta: MetaString::encode_namespace(namespace)?,
            typename_meta: MetaString::encode_typename(typename)?,
            hash,
        })
    }

    /// A type whose hash is [`struct_hash`] of `fingerprint`.
    pub fn from_fingerprint(namespace: &str, typename: &str, fingerprint: &str) -> Result<NamedStructType, XlangError> {
        NamedStructType::new(namespace, typename, struct_hash(fingerprint))
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The type name.
    pub fn typename(&self) -> &str {
        &self.typename
    }

    /// The encoded namespace.
    pub fn namespace_meta(&self) -> &MetaString {
        &self.namespace_meta
    }

    /// The encoded type name.
    pub fn typename_meta(&self) -> &MetaString {
        &self.typename_meta
    }

    /// The struct hash.
    pub fn hash(&self) -> i32 {
        self.hash
    }
}

impl fmt::Display for NamedStructType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.typename)
    }
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// Which encoding pyfory 0.16 writes a string in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringEncoding {
    /// 0: one byte per char (all chars < U+0100; every ASCII string).
    Latin1,
    /// 1: UTF-16LE (all chars < U+10000, at least one ≥ U+0100).
    Utf16,
    /// 2: UTF-8 (some char ≥ U+10000).
    Utf8,
}

impl StringEncoding {
    /// The encoding pyfory 0.16 picks for `s` (CPython's compact string kind).
    pub fn for_str(s: &str) -> StringEncoding {
        if s.is_ascii() {
            return StringEncoding::Latin1;
        }
        let mut max = 0u32;
        for c in s.chars() {
            max = max.max(u32::from(c));
        }
        if max < 0x100 {
            StringEncoding::Latin1
        } else if max < 0x1_0000 {
            StringEncoding::Utf16
        } else {
            StringEncoding::Utf8
        }
    }
}

/// Appends pyfory-0.16-compatible XLANG bytes to a buffer.
#[derive(Clone, Debug, Default)]
pub struct XlangWriter {
    buf: Vec<u8>,
    next_meta_id: u32,
    empty_meta_id: Option<u32>,
    /// Types whose type info was written in full: (namespace, typename) → (ns id, name id).
    written_types: Few<(MetaString, MetaString, u32, u32)>,
}

/// A short list kept inline (most messages write one or two type names; a list allocation per
/// message would be the most frequent allocation of a header or trailer).
#[derive(Clone, Debug)]
struct Few<T> {
    inline: [Option<T>; 2],
    spill: Vec<T>,
}

impl<T> Default for Few<T> {
    fn default() -> Self {
        Few { inline: [None, None], spill: Vec::new() }
    }
}

impl<T> Few<T> {
    fn push(&mut self, v: T) {
        match self.inline.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => *slot = Some(v),
            None => self.spill.push(v),
        }
    }

    fn get(&self, i: usize) -> Option<&T> {
        match self.inline.get(i) {
            Some(slot) => slot.as_ref(),
            None => self.spill.get(i - self.inline.len()),
        }
    }

    fn len(&self) -> usize {
        self.inline.iter().flatten().count() + self.spill.len()
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.inline.iter().flatten().chain(self.spill.iter())
    }
}

impl XlangWriter {
    /// An empty writer.
    pub fn new() -> XlangWriter {
        XlangWriter::default()
    }

    /// An empty writer with room for `cap` bytes.
    pub fn with_capacity(cap: usize) -> XlangWriter {
        XlangWriter { buf: Vec::with_capacity(cap), ..XlangWriter::default() }
    }

    /// A writer that appends to `buf` (its existing bytes are kept; meta-string
    /// back-references start afresh, as for a new message).
    pub fn from_vec(buf: Vec<u8>) -> XlangWriter {
        XlangWriter { buf, ..XlangWriter::default() }
    }

    /// Overwrites the byte at `offset` (already written) with `v`, e.g. a map chunk size
    /// known only after its entries; returns false when `offset` is out of range.
    pub fn put_u8(&mut self, offset: usize, v: u8) -> bool {
        match self.buf.get_mut(offset) {
            Some(b) => {
                *b = v;
                true
            }
            None => false,
        }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Number of bytes written.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Consumes the writer, returning the bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw bytes.
    pub fn write_bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// One byte.
    pub fn write_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// One signed byte.
    pub fn write_i8(&mut self, v: i8) {
        self.buf.push(v as u8);
    }

    /// `bool` as one byte 0/1.
    pub fn write_bool(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    /// `i16` little-endian.
    pub fn write_i16(&mut self, v: i16) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `i32` little-endian.
    pub fn write_i32(&mut self, v: i32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `i64` little-endian.
    pub fn write_i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `f32` little-endian.
    pub fn write_f32(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `f64` little-endian.
    pub fn write_f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// Unsigned LEB128 varint (1–5 bytes).
    pub fn write_var_u32(&mut self, mut v: u32) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// Zigzag varint of an `i32` (1–5 bytes).
    pub fn write_var_i32(&mut self, v: i32) {
        self.write_var_u32(((v << 1) ^ (v >> 31)) as u32);
    }

    /// Fory var-uint64 (1–9 bytes; the 9th byte holds 8 bits).
    pub fn write_var_u64(&mut self, mut v: u64) {
        for _ in 0..8 {
            if v < 0x80 {
                self.buf.push(v as u8);
                return;
            }
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    /// Zigzag Fory var-int64 (Python `int` fields; 1–9 bytes).
    pub fn write_var_i64(&mut self, v: i64) {
        self.write_var_u64(((v << 1) ^ (v >> 63)) as u64);
    }

    /// A string in the encoding pyfory 0.16 would choose ([`StringEncoding::for_str`]).
    pub fn write_string(&mut self, s: &str) {
        match StringEncoding::for_str(s) {
            StringEncoding::Latin1 => {
                if s.is_ascii() {
                    self.write_string_header(s.len(), 0);
                    self.buf.extend_from_slice(s.as_bytes());
                } else {
                    let n = s.chars().count();
                    self.write_string_header(n, 0);
                    // every char < U+0100 here
                    self.buf.extend(s.chars().map(|c| c as u32 as u8));
                }
            }
            StringEncoding::Utf16 => {
                let n = s.chars().count();
                self.write_string_header(n * 2, 1);
                for c in s.chars() {
                    // every char < U+10000 here: exactly one UTF-16 unit
                    self.buf.extend_from_slice(&(c as u32 as u16).to_le_bytes());
                }
            }
            StringEncoding::Utf8 => {
                self.write_string_header(s.len(), 2);
                self.buf.extend_from_slice(s.as_bytes());
            }
        }
    }

    fn write_string_header(&mut self, byte_len: usize, encoding: u64) {
        self.write_var_u64(((byte_len as u64) << 2) | encoding);
    }

    /// A non-nullable `list<string>` field: count, then (if non-empty) the elements header
    /// `0x0c` and the strings.
    pub fn write_string_list<S: AsRef<str>>(&mut self, items: &[S]) {
        self.write_var_u32(items.len() as u32);
        if items.is_empty() {
            return;
        }
        self.buf.push(collection_flags::DECL_SAME_TYPE);
        for s in items {
            self.write_string(s.as_ref());
        }
    }

    /// The header bitmap of a top-level message (`0x02`: xlang, root not null).
    pub fn write_header(&mut self) {
        self.buf.push(header_bits::XLANG);
    }

    /// A ref/null flag (see [`ref_flag`]).
    pub fn write_ref_flag(&mut self, flag: i8) {
        self.write_i8(flag);
    }

    /// A type id (one byte in pyfory 0.16).
    pub fn write_type_id(&mut self, id: u8) {
        self.buf.push(id);
    }

    /// A meta string written in full; returns the id later back-references use.
    pub fn write_meta_string_full(&mut self, ms: &MetaString) -> u32 {
        let id = self.next_meta_id;
        self.next_meta_id += 1;
        let len = ms.bytes.len();
        self.write_var_u32((len as u32) << 1);
        if len > SMALL_META_STRING_THRESHOLD {
            self.write_i64(ms.long_hash());
        } else if len != 0 {
            self.buf.push(ms.encoding.as_u8());
        }
        self.buf.extend_from_slice(&ms.bytes);
        id
    }

    /// A back-reference to the meta string written with `id` in this message.
    pub fn write_meta_string_ref(&mut self, id: u32) {
        self.write_var_u32(((id + 1) << 1) | 1);
    }

    fn write_empty_meta_string(&mut self) -> u32 {
        match self.empty_meta_id {
            Some(id) => {
                self.write_meta_string_ref(id);
                id
            }
            None => {
                let id = self.write_meta_string_full(&MetaString::empty());
                self.empty_meta_id = Some(id);
                id
            }
        }
    }

    /// Type info of a name-registered type: `type_id`, namespace and typename meta strings,
    /// with pyfory's back-references (one id pair per type; the empty namespace shared).
    pub fn write_named_type_info(&mut self, type_id: u8, namespace: &MetaString, typename: &MetaString) {
        self.write_type_id(type_id);
        let written = self
            .written_types
            .iter()
            .find(|(ns, tn, _, _)| ns == namespace && tn == typename)
            .map(|&(_, _, n, t)| (n, t));
        if let Some((ns_id, tn_id)) = written {
            self.write_meta_string_ref(ns_id);
            self.write_meta_string_ref(tn_id);
            return;
        }
        let ns_id =
            if namespace.is_empty() { self.write_empty_meta_string() } else { self.write_meta_string_full(namespace) };
        let tn_id =
            if typename.is_empty() { self.write_empty_meta_string() } else { self.write_meta_string_full(typename) };
        self.written_types.push((namespace.clone(), typename.clone(), ns_id, tn_id));
    }

    /// `NAMED_STRUCT` type info of `t` followed by its struct hash (what precedes the fields
    /// of a struct value whose type is not declared).
    pub fn write_struct_type_and_hash(&mut self, t: &NamedStructType) {
        self.write_named_type_info(type_id::NAMED_STRUCT, &t.namespace_meta, &t.typename_meta);
        self.write_i32(t.hash);
    }

    /// Start of a top-level struct message: header bitmap, `NOT_NULL`, type info, hash.
    /// The caller then writes the fields in Fory order.
    pub fn write_struct_root(&mut self, t: &NamedStructType) {
        self.write_header();
        self.write_ref_flag(ref_flag::NOT_NULL);
        self.write_struct_type_and_hash(t);
    }
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/// Reads pyfory-0.16 XLANG bytes from a slice. Every error is an [`XlangError`]; lengths
/// are checked against the remaining input before anything is allocated.
#[derive(Clone, Debug)]
pub struct XlangReader<'a> {
    buf: &'a [u8],
    pos: usize,
    meta_strings: Few<MetaString>,
}

impl<'a> XlangReader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> XlangReader<'a> {
        XlangReader { buf, pos: 0, meta_strings: Few::default() }
    }

    /// Current offset.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next byte without consuming it; `None` at the end of the input.
    pub fn peek_u8(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Errors with [`XlangError::TrailingBytes`] unless everything was read.
    pub fn expect_end(&self) -> Result<(), XlangError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(XlangError::TrailingBytes(n)),
        }
    }

    /// The next `n` bytes.
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], XlangError> {
        if n > self.remaining() {
            return Err(self.truncated(n as u64));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn truncated(&self, needed: u64) -> XlangError {
        XlangError::Truncated { offset: self.pos, needed, available: self.remaining() }
    }

    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], XlangError> {
        let b = self.read_bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(b);
        Ok(a)
    }

    /// One byte.
    pub fn read_u8(&mut self) -> Result<u8, XlangError> {
        Ok(self.read_array::<1>()?[0])
    }

    /// One signed byte.
    pub fn read_i8(&mut self) -> Result<i8, XlangError> {
        Ok(self.read_u8()? as i8)
    }

    /// A `bool` byte (non-zero = true, as pyfory reads it).
    pub fn read_bool(&mut self) -> Result<bool, XlangError> {
        Ok(self.read_u8()? != 0)
    }

    /// `i16` little-endian.
    pub fn read_i16(&mut self) -> Result<i16, XlangError> {
        Ok(i16::from_le_bytes(self.read_array()?))
    }

    /// `i32` little-endian.
    pub fn read_i32(&mut self) -> Result<i32, XlangError> {
        Ok(i32::from_le_bytes(self.read_array()?))
    }

    /// `i64` little-endian.
    pub fn read_i64(&mut self) -> Result<i64, XlangError> {
        Ok(i64::from_le_bytes(self.read_array()?))
    }

    /// `f32` little-endian.
    pub fn read_f32(&mut self) -> Result<f32, XlangError> {
        Ok(f32::from_le_bytes(self.read_array()?))
    }

    /// `f64` little-endian.
    pub fn read_f64(&mut self) -> Result<f64, XlangError> {
        Ok(f64::from_le_bytes(self.read_array()?))
    }

    /// Unsigned LEB128 varint of at most 5 bytes whose value fits `u32`.
    pub fn read_var_u32(&mut self) -> Result<u32, XlangError> {
        let start = self.pos;
        let mut v = 0u32;
        for i in 0..5 {
            let b = match self.read_u8() {
                Ok(b) => b,
                Err(_) => {
                    self.pos = start;
                    return Err(XlangError::Truncated {
                        offset: start,
                        needed: i as u64 + 1,
                        available: self.remaining(),
                    });
                }
            };
            if i == 4 {
                if b > 0x0f {
                    self.pos = start;
                    return Err(XlangError::BadVarint { offset: start });
                }
                return Ok(v | (u32::from(b) << 28));
            }
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Ok(v)
    }

    /// Zigzag varint `i32`.
    pub fn read_var_i32(&mut self) -> Result<i32, XlangError> {
        let u = self.read_var_u32()?;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }

    /// Fory var-uint64 (at most 9 bytes; the 9th carries 8 bits).
    pub fn read_var_u64(&mut self) -> Result<u64, XlangError> {
        let start = self.pos;
        let mut v = 0u64;
        for i in 0..9 {
            let b = match self.read_u8() {
                Ok(b) => b,
                Err(_) => {
                    self.pos = start;
                    return Err(XlangError::Truncated {
                        offset: start,
                        needed: i as u64 + 1,
                        available: self.remaining(),
                    });
                }
            };
            if i == 8 {
                return Ok(v | (u64::from(b) << 56));
            }
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Ok(v)
    }

    /// Zigzag Fory var-int64.
    pub fn read_var_i64(&mut self) -> Result<i64, XlangError> {
        let u = self.read_var_u64()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// A string in any encoding pyfory writes (LATIN1, UTF-16LE, UTF-8).
    pub fn read_string(&mut self) -> Result<String, XlangError> {
        let offset = self.pos;
        let header = self.read_var_u64()?;
        let size = header >> 2;
        let encoding = header & 0b11;
        if size > self.remaining() as u64 {
            let e = XlangError::Truncated { offset, needed: size, available: self.remaining() };
            self.pos = offset;
            return Err(e);
        }
        let bytes = self.read_bytes(size as usize)?;
        let invalid = |reason: &str| XlangError::InvalidString { offset, reason: reason.to_owned() };
        match encoding {
            0 => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            1 => {
                if bytes.len() % 2 != 0 {
                    return Err(invalid("odd UTF-16 byte length"));
                }
                let units = bytes.chunks_exact(2).map(|p| u16::from_le_bytes([p[0], p[1]]));
                char::decode_utf16(units)
                    .collect::<Result<String, _>>()
                    .map_err(|_| invalid("unpaired UTF-16 surrogate"))
            }
            2 => std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| invalid("invalid UTF-8")),
            _ => Err(invalid("unknown string encoding 3")),
        }
    }

    /// A `list<string>` field as pyfory writes it (any elements header: declared or not,
    /// with null or ref flags); null elements and string back-references are errors.
    pub fn read_string_list(&mut self) -> Result<Vec<String>, XlangError> {
        let offset = self.pos;
        let count = self.read_var_u32()? as usize;
        if count == 0 {
            return Ok(Vec::new());
        }
        let invalid = |reason: String| XlangError::InvalidCollection { offset, reason };
        // every element takes at least one byte, plus the header byte
        if count > self.remaining().saturating_sub(1) {
            return Err(invalid(format!("{count} elements announced, only {} byte(s) left", self.remaining())));
        }
        let flags = self.read_u8()?;
        if flags & 0xf0 != 0 {
            return Err(invalid(format!("unknown elements header 0x{flags:02x}")));
        }
        let same_type = flags & collection_flags::SAME_TYPE != 0;
        let declared = flags & collection_flags::DECL_ELEMENT_TYPE != 0;
        let per_elem_flag = flags & (collection_flags::TRACKING_REF | collection_flags::HAS_NULL) != 0;
        if same_type && !declared {
            self.expect_type_id(type_id::STRING)?;
        }
        // capacity bounded: a hostile count may be as large as the input
        let mut out = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            if per_elem_flag {
                let at = self.pos;
                match self.read_i8()? {
                    ref_flag::NOT_NULL | ref_flag::REF_VALUE => {}
                    ref_flag::NULL => return Err(invalid("null element in list<string>".into())),
                    found => return Err(XlangError::UnexpectedRefFlag { offset: at, found }),
                }
            }
            if !same_type {
                self.expect_type_id(type_id::STRING)?;
            }
            out.push(self.read_string()?);
        }
        Ok(out)
    }

    /// Reads the header bitmap; only `0x02` (xlang, non-null root, in-band) is accepted.
    pub fn read_header(&mut self) -> Result<(), XlangError> {
        match self.read_u8()? {
            header_bits::XLANG => Ok(()),
            other => Err(XlangError::BadHeader(other)),
        }
    }

    /// A ref/null flag.
    pub fn read_ref_flag(&mut self) -> Result<i8, XlangError> {
        self.read_i8()
    }

    /// A one-byte type id.
    pub fn read_type_id(&mut self) -> Result<u8, XlangError> {
        self.read_u8()
    }

    /// Reads a type id and errors unless it is `expected`.
    pub fn expect_type_id(&mut self, expected: u8) -> Result<(), XlangError> {
        let offset = self.pos;
        let found = self.read_type_id()?;
        if found != expected {
            return Err(XlangError::UnexpectedTypeId { offset, expected, found });
        }
        Ok(())
    }

    /// A meta string, resolving back-references to meta strings earlier in this message.
    pub fn read_meta_string(&mut self) -> Result<MetaString, XlangError> {
        let header = self.read_var_u32()?;
        let len = (header >> 1) as usize;
        if header & 1 != 0 {
            return match len.checked_sub(1).and_then(|id| self.meta_strings.get(id)) {
                Some(ms) => Ok(ms.clone()),
                None => Err(XlangError::InvalidMetaString(format!(
                    "back-reference to meta string #{len} of {}",
                    self.meta_strings.len()
                ))),
            };
        }
        let ms = if len == 0 {
            MetaString::empty()
        } else {
            let enc_byte = if len <= SMALL_META_STRING_THRESHOLD {
                self.read_u8()?
            } else {
                // pyfory uses the hash only as a cache key; its low byte is the encoding.
                self.read_i64()? as u8
            };
            let encoding = MetaStringEncoding::from_u8(enc_byte)
                .ok_or_else(|| XlangError::InvalidMetaString(format!("unknown meta string encoding {enc_byte}")))?;
            MetaString { encoding, bytes: Bytes::copy_from_slice(self.read_bytes(len)?) }
        };
        self.meta_strings.push(ms.clone());
        Ok(ms)
    }

    /// [`read_meta_string`](Self::read_meta_string) for a position where `expected` is the
    /// likely value: when the bytes are exactly `expected`'s encoding, it is recorded and
    /// returned without allocating (a shared clone); anything else is read in full.
    pub fn read_meta_string_expecting(&mut self, expected: &MetaString) -> Result<MetaString, XlangError> {
        let start = self.pos;
        let header = self.read_var_u32()?;
        let len = (header >> 1) as usize;
        let body = self.pos;
        let matches = header & 1 == 0
            && len == expected.bytes.len()
            && len > 0
            && len <= SMALL_META_STRING_THRESHOLD
            && self.buf.get(body) == Some(&expected.encoding.as_u8())
            && self.buf.get(body + 1..body + 1 + len) == Some(&expected.bytes[..]);
        if matches {
            self.pos = body + 1 + len;
            self.meta_strings.push(expected.clone());
            return Ok(expected.clone());
        }
        self.pos = start;
        self.read_meta_string()
    }

    /// Type info of a name-registered type: the type id and the two meta strings.
    pub fn read_named_type_info(&mut self) -> Result<(u8, MetaString, MetaString), XlangError> {
        let id = self.read_type_id()?;
        let ns = self.read_meta_string()?;
        let tn = self.read_meta_string()?;
        Ok((id, ns, tn))
    }

    /// Reads `NAMED_STRUCT` type info and the struct hash and checks both against `t`.
    pub fn expect_struct_type_and_hash(&mut self, t: &NamedStructType) -> Result<(), XlangError> {
        self.expect_type_id(type_id::NAMED_STRUCT)?;
        let ns = self.read_meta_string_expecting(&t.namespace_meta)?;
        let tn = self.read_meta_string_expecting(&t.typename_meta)?;
        let same = (ns == t.namespace_meta && tn == t.typename_meta)
            || (ns.decode_namespace()? == t.namespace && tn.decode_typename()? == t.typename);
        if !same {
            let ns = ns.decode_namespace().unwrap_or_else(|_| "?".into());
            let tn = tn.decode_typename().unwrap_or_else(|_| "?".into());
            return Err(XlangError::TypeMismatch { expected: t.to_string(), found: format!("{ns}/{tn}") });
        }
        let found = self.read_i32()?;
        if found != t.hash {
            return Err(XlangError::HashMismatch { type_name: t.to_string(), expected: t.hash, found });
        }
        Ok(())
    }

    /// Start of a top-level struct message: header bitmap, a non-null root flag
    /// (`NOT_NULL`, or `REF_VALUE` from a ref-tracking writer), type info and hash of `t`.
    pub fn read_struct_root(&mut self, t: &NamedStructType) -> Result<(), XlangError> {
        self.read_header()?;
        let at = self.pos;
        match self.read_ref_flag()? {
            ref_flag::NOT_NULL | ref_flag::REF_VALUE => {}
            found => return Err(XlangError::UnexpectedRefFlag { offset: at, found }),
        }
        self.expect_struct_type_and_hash(t)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::test_vectors::hex;

    #[test]
    fn murmur3_published_vectors() {
        // Well-known MurmurHash3_x64_128 outputs (seed 0), e.g. Python `mmh3.hash64`.
        assert_eq!(murmurhash3_x64_128(b"", 0), (0, 0));
        assert_eq!(murmurhash3_x64_128(b"hello", 0), (0xcbd8_a7b3_41bd_9b02, 0x5b1e_906a_48ae_1d19));
        assert_eq!(
            murmurhash3_x64_128(b"The quick brown fox jumps over the lazy dog", 0),
            (0xe34b_bc7b_bc07_1b6c, 0x7a43_3ca9_c49a_9347)
        );
        // Seed 47 (Fory), computed with pyfory 0.16's bundled MurmurHash3: tail < 8, = 16, > 16.
        assert_eq!(murmurhash3_x64_128(b"a", 47), (0x0339_2778_c550_8564, 0xdc12_e038_b4ac_e87d));
        assert_eq!(murmurhash3_x64_128(b"0123456789abcdef", 47), (0xbf08_a2cf_6317_e221, 0xf995_df7a_72fd_8d9f));
        assert_eq!(murmurhash3_x64_128(b"0123456789abcdefX", 47), (0x7c3c_4bbc_862c_ef3d, 0x616b_0a75_0520_bc99));
    }

    #[test]
    fn struct_hashes_of_the_protocol_types() {
        let sh = "callId,21,0,0;deadlineEpochMs,7,0,0;metadataKeys,22,0,0;metadataValues,22,0,0;\
                  method,21,0,0;serializationMode,7,0,0;service,21,0,0;version,7,0,0;";
        assert_eq!(murmurhash3_x64_128(sh.as_bytes(), 47).0, 0xbed3_2452_de18_05a4);
        assert_eq!(struct_hash(sh), -568_851_036);
        assert_eq!(struct_hash(sh).to_le_bytes(), [0xa4, 0x05, 0x18, 0xde]);
        let rs = "code,7,0,0;detailKeys,22,0,0;detailValues,22,0,0;message,21,0,0;";
        assert_eq!(struct_hash(rs), -1_614_130_349);
        assert_eq!(struct_hash(rs).to_le_bytes(), [0x53, 0x53, 0xca, 0x9f]);
        let ch = "callId,21,0,0;deadlineEpochMs,7,0,0;metadataKeys,22,0,0;metadataValues,22,0,0;method,21,0,0;";
        assert_eq!(struct_hash(ch), 2_038_834_545);
        assert_eq!(struct_hash("name,21,0,0;"), 1_165_743_576);
        assert_eq!(struct_hash("name,21,0,0;").to_le_bytes(), [0xd8, 0xd5, 0x7b, 0x45]);
        assert_eq!(struct_hash(""), 47);
    }

    #[test]
    fn fingerprint_sorts_by_name() {
        let f = |name, type_id| FingerprintField { name, type_id, tracking_ref: false, nullable: false };
        let fields = [
            f("version", type_id::VARINT64),
            f("service", type_id::STRING),
            f("method", type_id::STRING),
            f("metadataValues", type_id::LIST),
            f("callId", type_id::STRING),
            f("serializationMode", type_id::VARINT64),
            f("metadataKeys", type_id::LIST),
            f("deadlineEpochMs", type_id::VARINT64),
        ];
        assert_eq!(struct_hash(&struct_fingerprint(&fields)), -568_851_036);
        let opt = FingerprintField { name: "b", type_id: 4, tracking_ref: true, nullable: true };
        assert_eq!(struct_fingerprint(&[opt, f("a", 0)]), "a,0,0,0;b,4,1,1;");
        assert_eq!(struct_fingerprint(&[]), "");
    }

    /// (special chars, text, encoding, bytes) as pyfory 0.16's MetaStringEncoder produces them.
    const META_VECTORS: &[(bool, &str, u8, &str)] = &[
        (true, "_aster", 1, "6c129922"),
        (true, "taskmgr", 1, "4c12530d10"),
        (true, "hello", 1, "9c8b5b80"),
        (true, "a.b.c_d", 1, "0341d0b630"),
        (true, "Mixed.NS", 2, "cc42e207f4f600"),
        (true, "n1", 2, "1ba8"),
        (true, "averyveryverylongnamespacename.x", 1, "82a48e2a48e2a48e16e699a06124f0088d0309ab80"),
        (true, "xxxxxxxxxxxxxxxxxxxx", 1, "5ef7bdef7bdef7bdef7bdef7b8"),
        (true, "A", 3, "00"),
        (true, "ab$", 1, "003c"),
        (true, "a|b", 1, "03a1"),
        (false, "StreamHeader", 4, "76538900ce9c801922"),
        (false, "RpcStatus", 2, "56785626026a24"),
        (false, "CallHeader", 2, "380165c220018888"),
        (false, "Request", 3, "4490a12530"),
        (false, "TaskAssignment", 4, "f66092ba0949066b08d980"),
        (false, "TaskAck", 2, "5a0245341140"),
        (false, "ProgressUpdate", 4, "f5f171a2494bb478c13200"),
        (false, "ChatMessage", 4, "f44704fac24a403100"),
        (false, "Type$1", 2, "5ac1e27da8"),
        (false, "ABC", 2, "34db80"),
        (false, "T", 3, "4c"),
        (false, "lower_case", 1, "add62476204880"),
        (false, "AVeryLongTypeNameThatExceedsSixteen", 2, "357888b129c68d6b078938060968e026f2e10820695842e98821a0"),
        (false, "Foo.Bar", 0, "466f6f2e426172"),
        (false, "Ab", 3, "8020"),
        (false, "aB", 2, "00d8"),
        (false, "HTTPServer", 2, "436db4d8222a8888"),
        (false, "x_Y", 2, "2ffe40"),
    ];

    #[test]
    fn meta_string_encoding_matches_pyfory() {
        for &(is_ns, text, enc, bytes) in META_VECTORS {
            let special = if is_ns { NAMESPACE_SPECIAL_CHARS } else { TYPENAME_SPECIAL_CHARS };
            let ms = MetaString::encode(text, special).unwrap();
            assert_eq!(ms.encoding().as_u8(), enc, "{text}");
            assert_eq!(ms.bytes(), &hex(bytes)[..], "{text}");
            assert_eq!(ms.decode(special).unwrap(), text);
            let parsed = MetaString::from_parts(MetaStringEncoding::from_u8(enc).unwrap(), hex(bytes));
            assert_eq!(parsed.decode(special).unwrap(), text);
        }
        assert_eq!(MetaString::encode_namespace("").unwrap(), MetaString::empty());
        assert_eq!(MetaString::empty().decode_namespace().unwrap(), "");
        // non-ASCII falls back to UTF-8
        let ms = MetaString::encode_typename("Größe").unwrap();
        assert_eq!(ms.encoding(), MetaStringEncoding::Utf8);
        assert_eq!(ms.decode_typename().unwrap(), "Größe");
        assert!(MetaString::encode_namespace(&"a".repeat(32767)).is_err());
        assert!(MetaString::encode_namespace(&"a".repeat(32766)).is_ok());
    }

    #[test]
    fn meta_string_round_trips_every_encoding() {
        let texts = ["a", "ab", "abc", "abcdefgh", "abcdefghijklm", "Abcdefgh", "ABcdefgh", "a1", "a_b.c", "x$y"];
        let encs = [
            MetaStringEncoding::Utf8,
            MetaStringEncoding::LowerSpecial,
            MetaStringEncoding::LowerUpperDigitSpecial,
            MetaStringEncoding::FirstToLowerSpecial,
            MetaStringEncoding::AllToLowerSpecial,
        ];
        for special in [NAMESPACE_SPECIAL_CHARS, TYPENAME_SPECIAL_CHARS] {
            for t in texts {
                for e in encs {
                    let first_upper = t.starts_with(|c: char| c.is_ascii_uppercase());
                    if e == MetaStringEncoding::FirstToLowerSpecial && !first_upper {
                        assert!(MetaString::encode_with(t, e, special).is_err(), "{t}");
                        continue;
                    }
                    if let Ok(ms) = MetaString::encode_with(t, e, special) {
                        assert_eq!(ms.decode(special).unwrap(), t, "{t} {e:?}");
                    }
                }
            }
        }
        for n in 1..40 {
            let t: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            let ms = MetaString::encode_namespace(&t).unwrap();
            assert_eq!(ms.decode_namespace().unwrap(), t);
            let t2 = t.to_ascii_uppercase() + "9";
            let ms = MetaString::encode_typename(&t2).unwrap();
            assert_eq!(ms.decode_typename().unwrap(), t2);
        }
    }

    #[test]
    fn meta_string_decode_errors() {
        // 5-bit value 31 is not LOWER_SPECIAL
        let bad = MetaString::from_parts(MetaStringEncoding::LowerSpecial, vec![0x7f, 0xff]);
        assert!(bad.decode_namespace().is_err());
        let bad = MetaString::from_parts(MetaStringEncoding::Utf8, vec![0xff]);
        assert!(bad.decode_namespace().is_err());
        // a lone '|' (value 29) at the end of ALL_TO_LOWER_SPECIAL
        let bar = MetaString::encode_with("a|", MetaStringEncoding::LowerSpecial, NAMESPACE_SPECIAL_CHARS).unwrap();
        let bad = MetaString::from_parts(MetaStringEncoding::AllToLowerSpecial, bar.bytes().to_vec());
        assert!(bad.decode_typename().is_err());
        assert!(MetaString::encode_with("A", MetaStringEncoding::LowerSpecial, NAMESPACE_SPECIAL_CHARS).is_err());
        assert!(
            MetaString::encode_with("-", MetaStringEncoding::LowerUpperDigitSpecial, NAMESPACE_SPECIAL_CHARS).is_err()
        );
    }

    #[test]
    fn type_info_with_back_references_matches_pyfory() {
        // pyfory 0.16: Outer{a: Inner, b: Any} with namespace "" for both types —
        // the empty namespace is one shared meta string, Inner is back-referenced.
        let expected = hex("02ff1d000803ba932440147eb35f1d030803a1ad2440c03ec01d021d0307c03ec01d04");
        let outer = NamedStructType::new("", "Outer", i32::from_le_bytes([0x14, 0x7e, 0xb3, 0x5f])).unwrap();
        let inner = NamedStructType::new("", "Inner", i32::from_le_bytes([0xc0, 0x3e, 0xc0, 0x1d])).unwrap();
        let mut w = XlangWriter::new();
        w.write_struct_root(&outer);
        w.write_struct_type_and_hash(&inner);
        w.write_var_i64(1);
        w.write_struct_type_and_hash(&inner);
        w.write_var_i64(2);
        assert_eq!(w.as_bytes(), &expected[..]);

        let mut r = XlangReader::new(&expected);
        r.read_struct_root(&outer).unwrap();
        r.expect_struct_type_and_hash(&inner).unwrap();
        assert_eq!(r.read_var_i64().unwrap(), 1);
        r.expect_struct_type_and_hash(&inner).unwrap();
        assert_eq!(r.read_var_i64().unwrap(), 2);
        r.expect_end().unwrap();

        // Same namespace, two types: pyfory writes the namespace twice (one object per type).
        let expected = hex("02ff1d0a014c12530d100803ba9324400558d68902081d0a014c12530d100803a1ad2440c03ec01d06\
             c03ec01d081d0709c03ec01d021d0709c03ec01d04");
        let outer = NamedStructType::new("taskmgr", "Outer", i32::from_le_bytes([0x05, 0x58, 0xd6, 0x89])).unwrap();
        let inner = NamedStructType::new("taskmgr", "Inner", i32::from_le_bytes([0xc0, 0x3e, 0xc0, 0x1d])).unwrap();
        let mut w = XlangWriter::new();
        w.write_struct_root(&outer);
        // items: List[Any] with two Inner: count, SAME_TYPE header, type info once
        w.write_var_u32(2);
        w.write_u8(collection_flags::SAME_TYPE);
        w.write_named_type_info(type_id::NAMED_STRUCT, inner.namespace_meta(), inner.typename_meta());
        for x in [3, 4] {
            w.write_i32(inner.hash());
            w.write_var_i64(x);
        }
        for x in [1, 2] {
            w.write_struct_type_and_hash(&inner);
            w.write_var_i64(x);
        }
        assert_eq!(w.as_bytes(), &expected[..]);
        let mut r = XlangReader::new(&expected);
        r.read_struct_root(&outer).unwrap();
        assert_eq!(r.read_var_u32().unwrap(), 2);
        assert_eq!(r.read_u8().unwrap(), collection_flags::SAME_TYPE);
        let (id, ns, tn) = r.read_named_type_info().unwrap();
        assert_eq!(
            (id, ns.decode_namespace().unwrap(), tn.decode_typename().unwrap()),
            (29, "taskmgr".into(), "Inner".into())
        );
        for x in [3, 4] {
            assert_eq!(r.read_i32().unwrap(), inner.hash());
            assert_eq!(r.read_var_i64().unwrap(), x);
        }
        for x in [1, 2] {
            r.expect_struct_type_and_hash(&inner).unwrap();
            assert_eq!(r.read_var_i64().unwrap(), x);
        }
        r.expect_end().unwrap();
    }

    #[test]
    fn few_keeps_order_past_its_inline_slots() {
        let mut few = Few::default();
        assert_eq!((few.len(), few.get(0)), (0, None));
        for i in 0..5u32 {
            few.push(i);
        }
        assert_eq!(few.len(), 5);
        assert_eq!(few.iter().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert_eq!(
            (few.get(0), few.get(1), few.get(2), few.get(4), few.get(5)),
            (Some(&0), Some(&1), Some(&2), Some(&4), None)
        );
    }

    #[test]
    fn reading_an_expected_meta_string_matches_a_full_read() {
        let ns = MetaString::encode_namespace("aster").unwrap();
        let other = MetaString::encode_namespace("other.ns").unwrap();
        let mut w = XlangWriter::new();
        let id = w.write_meta_string_full(&ns);
        w.write_meta_string_ref(id);
        w.write_meta_string_full(&other);
        let bytes = w.into_bytes();
        let mut r = XlangReader::new(&bytes);
        // Exactly the expected bytes: taken as they are, and recorded for back-references.
        assert_eq!(r.read_meta_string_expecting(&ns).unwrap(), ns);
        assert_eq!(r.read_meta_string_expecting(&other).unwrap(), ns, "a back-reference resolves");
        // Something else where `ns` was expected: read in full, whatever it is.
        assert_eq!(r.read_meta_string_expecting(&ns).unwrap(), other);
        r.expect_end().unwrap();
        // Truncated input is an error, not a match.
        let mut short = XlangReader::new(&bytes[..3]);
        assert!(short.read_meta_string_expecting(&ns).is_err());
    }

    #[test]
    fn long_meta_strings_carry_a_hash() {
        // pyfory 0.16, Request registered as averyveryverylongnamespacename.x/AVeryLongTypeNameThatExceedsSixteen
        let expected = hex("02ff1d2a01ed4c8d1787b75082a48e2a48e2a48e16e699a06124f0088d0309ab80360225f5ccafce395b35\
             7888b129c68d6b078938060968e026f2e10820695842e98821a0d8d57b4500");
        let t = NamedStructType::from_fingerprint(
            "averyveryverylongnamespacename.x",
            "AVeryLongTypeNameThatExceedsSixteen",
            "name,21,0,0;",
        )
        .unwrap();
        let mut w = XlangWriter::new();
        w.write_struct_root(&t);
        w.write_string("");
        assert_eq!(w.into_bytes(), expected);
        let mut r = XlangReader::new(&expected);
        r.read_struct_root(&t).unwrap();
        assert_eq!(r.read_string().unwrap(), "");
        r.expect_end().unwrap();
        assert_eq!(t.namespace_meta().long_hash().to_le_bytes(), hex("01ed4c8d1787b750")[..]);
    }

    #[test]
    fn hello_request_vector() {
        let expected = hex("02ff1d08019c8b5b800a034490a12530d8d57b45147479706564");
        let t = NamedStructType::from_fingerprint("hello", "Request", "name,21,0,0;").unwrap();
        let mut w = XlangWriter::new();
        w.write_struct_root(&t);
        w.write_string("typed");
        assert_eq!(w.as_bytes(), &expected[..]);
        assert_eq!(t.to_string(), "hello/Request");
        let mut r = XlangReader::new(&expected);
        r.read_struct_root(&t).unwrap();
        assert_eq!(r.read_string().unwrap(), "typed");
        r.expect_end().unwrap();
        // wrong type name / wrong hash
        let other = NamedStructType::from_fingerprint("hello", "Reply", "name,21,0,0;").unwrap();
        assert!(matches!(XlangReader::new(&expected).read_struct_root(&other), Err(XlangError::TypeMismatch { .. })));
        let other = NamedStructType::from_fingerprint("hello", "Request", "name,21,0,1;").unwrap();
        assert!(matches!(XlangReader::new(&expected).read_struct_root(&other), Err(XlangError::HashMismatch { .. })));
        // a name written in another (valid) meta-string encoding is still recognized
        let mut w = XlangWriter::new();
        w.write_header();
        w.write_ref_flag(ref_flag::NOT_NULL);
        w.write_named_type_info(
            type_id::NAMED_STRUCT,
            &MetaString::encode_with("hello", MetaStringEncoding::Utf8, NAMESPACE_SPECIAL_CHARS).unwrap(),
            &MetaString::encode_with("Request", MetaStringEncoding::LowerUpperDigitSpecial, TYPENAME_SPECIAL_CHARS)
                .unwrap(),
        );
        w.write_i32(t.hash());
        XlangReader::new(w.as_bytes()).read_struct_root(&t).unwrap();
    }

    #[test]
    fn varints() {
        // zigzag var-int64 as pyfory 0.16 writes Python ints
        let cases: &[(i64, &str)] = &[
            (0, "00"),
            (1, "02"),
            (-1, "01"),
            (63, "7e"),
            (64, "8001"),
            (-64, "7f"),
            (-65, "8101"),
            (2_147_483_647, "feffffff0f"),
            (-2_147_483_648, "ffffffff0f"),
            (1 << 62, "808080808080808080"),
            (i64::MAX, "feffffffffffffffff"),
            (i64::MIN, "ffffffffffffffffff"),
            (1 << 56, "808080808080808002"),
            ((1 << 56) - 1, "feffffffffffffff01"),
            (1_712_764_800_000, "80b0e68bd963"),
        ];
        for &(v, h) in cases {
            let mut w = XlangWriter::new();
            w.write_var_i64(v);
            assert_eq!(w.as_bytes(), &hex(h)[..], "{v}");
            let mut r = XlangReader::new(w.as_bytes());
            assert_eq!(r.read_var_i64().unwrap(), v);
            r.expect_end().unwrap();
        }
        let u64_cases: &[(u64, &str)] = &[
            (u64::MAX, "ffffffffffffffffff"),
            (1 << 63, "808080808080808080"),
            (1 << 56, "808080808080808001"),
            (1 << 49, "8080808080808001"),
        ];
        for &(v, h) in u64_cases {
            let mut w = XlangWriter::new();
            w.write_var_u64(v);
            assert_eq!(w.as_bytes(), &hex(h)[..]);
            assert_eq!(XlangReader::new(w.as_bytes()).read_var_u64().unwrap(), v);
        }
        for v in [0u32, 1, 127, 128, 300, 1 << 21, u32::MAX] {
            let mut w = XlangWriter::new();
            w.write_var_u32(v);
            assert_eq!(XlangReader::new(w.as_bytes()).read_var_u32().unwrap(), v);
        }
        let mut w = XlangWriter::new();
        w.write_var_u32(u32::MAX);
        assert_eq!(w.as_bytes(), &hex("ffffffff0f")[..]);
        for v in [0i32, 1, -1, i32::MAX, i32::MIN] {
            let mut w = XlangWriter::new();
            w.write_var_i32(v);
            assert_eq!(XlangReader::new(w.as_bytes()).read_var_i32().unwrap(), v);
        }
        // malformed
        assert_eq!(XlangReader::new(&hex("ffffffff1f")).read_var_u32(), Err(XlangError::BadVarint { offset: 0 }));
        assert_eq!(XlangReader::new(&hex("ffffffff8f")).read_var_u32(), Err(XlangError::BadVarint { offset: 0 }));
        assert!(matches!(XlangReader::new(&hex("ffff")).read_var_u32(), Err(XlangError::Truncated { .. })));
        assert!(matches!(XlangReader::new(&hex("ffffffffffffffff")).read_var_u64(), Err(XlangError::Truncated { .. })));
        assert!(matches!(XlangReader::new(&[]).read_var_i64(), Err(XlangError::Truncated { .. })));
    }

    #[test]
    fn fixed_width_values() {
        let mut w = XlangWriter::with_capacity(64);
        assert!(w.is_empty());
        w.write_bool(true);
        w.write_i8(-2);
        w.write_i16(-3);
        w.write_i32(-4);
        w.write_i64(-5);
        w.write_f32(1.5);
        w.write_f64(-2.25);
        w.write_bytes(b"xy");
        assert_eq!(w.len(), 1 + 1 + 2 + 4 + 8 + 4 + 8 + 2);
        let b = w.into_bytes();
        let mut r = XlangReader::new(&b);
        assert!(r.read_bool().unwrap());
        assert_eq!(r.read_i8().unwrap(), -2);
        assert_eq!(r.read_i16().unwrap(), -3);
        assert_eq!(r.read_i32().unwrap(), -4);
        assert_eq!(r.read_i64().unwrap(), -5);
        assert_eq!(r.read_f32().unwrap(), 1.5);
        assert_eq!(r.read_f64().unwrap(), -2.25);
        assert_eq!(r.read_bytes(2).unwrap(), b"xy");
        assert_eq!(r.position(), b.len());
        assert!(matches!(r.read_i32(), Err(XlangError::Truncated { needed: 4, available: 0, .. })));
    }

    #[test]
    fn strings_use_pyfory_encodings() {
        // (text, pyfory 0.16 bytes)
        let cases: &[(&str, &str)] = &[
            ("", "00"),
            ("é", "04e9"),
            ("héllo", "1468e96c6c6f"),
            ("ā", "090101"),
            ("日本", "11e5652c67"),
            ("😀", "12f09f9880"),
            ("a😀", "1661f09f9880"),
            ("\u{7f}", "047f"),
            ("ключ", "213a043b044e044704"),
        ];
        for &(s, h) in cases {
            let mut w = XlangWriter::new();
            w.write_string(s);
            assert_eq!(w.as_bytes(), &hex(h)[..], "{s}");
            let mut r = XlangReader::new(w.as_bytes());
            assert_eq!(r.read_string().unwrap(), s);
            r.expect_end().unwrap();
        }
        assert_eq!(StringEncoding::for_str("abc"), StringEncoding::Latin1);
        assert_eq!(StringEncoding::for_str("ÿ"), StringEncoding::Latin1);
        assert_eq!(StringEncoding::for_str("Ā"), StringEncoding::Utf16);
        assert_eq!(StringEncoding::for_str("\u{ffff}"), StringEncoding::Utf16);
        assert_eq!(StringEncoding::for_str("\u{10000}"), StringEncoding::Utf8);
        // UTF-8 of BMP text and UTF-16 surrogate pairs are read too (other writers)
        assert_eq!(XlangReader::new(&hex("16c3a9e697a5")).read_string().unwrap(), "é日");
        assert_eq!(XlangReader::new(&hex("113dd800de")).read_string().unwrap(), "😀");
    }

    #[test]
    fn long_strings_round_trip() {
        for (c, header) in [('a', "c0bb01"), ('é', "c0bb01"), ('ā', "81f702"), ('😀', "82ee05")] {
            let s: String = std::iter::repeat_n(c, 6000).collect();
            let mut w = XlangWriter::new();
            w.write_string(&s);
            let b = w.into_bytes();
            assert_eq!(&b[..header.len() / 2], &hex(header)[..], "{c}");
            assert_eq!(XlangReader::new(&b).read_string().unwrap(), s);
        }
    }

    #[test]
    fn malformed_strings() {
        let bad: &[(&str, &str)] = &[
            ("14616263", "truncated"),      // says 5 bytes, has 3
            ("0bffff", "unknown encoding"), // encoding 3
            ("0d00d8ff", "odd length"),     // UTF-16 of 3 bytes
            ("0900d8", "lone surrogate"),   // U+D800 alone
            ("0900dc", "lone low surrogate"),
            ("06ff", "invalid UTF-8"),
            ("0ac328", "invalid UTF-8"),
            ("ffffffffffffffffff", "huge size"),
            ("fcffffff0f", "4 GiB size"),
        ];
        for (h, what) in bad {
            let b = hex(h);
            assert!(XlangReader::new(&b).read_string().is_err(), "{what}");
        }
    }

    #[test]
    fn string_lists() {
        let mut w = XlangWriter::new();
        w.write_string_list::<String>(&[]);
        w.write_string_list(&["aster.role", "ops.status"]);
        assert_eq!(w.as_bytes(), &hex("00020c2861737465722e726f6c65286f70732e737461747573")[..]);
        let mut r = XlangReader::new(w.as_bytes());
        assert!(r.read_string_list().unwrap().is_empty());
        assert_eq!(r.read_string_list().unwrap(), ["aster.role", "ops.status"]);
        r.expect_end().unwrap();

        // every elements header pyfory may write for a list of strings
        let ok: &[&str] = &[
            "020c04610462",         // declared, same type
            "02081504610462",       // same type, type info once
            "020eff0461ff0462",     // declared, has-null flags (none null)
            "020d0004610004 62",    // declared, tracking ref (REF_VALUE)
            "020dff0461ff0462",     // declared, tracking ref (NOT_NULL)
            "0200150461150462",     // different types: type id per element
            "0202ff150461ff150462", // different types with null flags
        ];
        for h in ok {
            let b = hex(h);
            let mut r = XlangReader::new(&b);
            assert_eq!(r.read_string_list().unwrap(), ["a", "b"], "{h}");
            r.expect_end().unwrap();
        }
        let bad: &[&str] = &[
            "020efd0461",       // null element
            "020dfe00",         // back-reference
            "02081404610462",   // same type but not STRING
            "0200150461140462", // second element not STRING
            "021c04610462",     // unknown header bits
            "020c0461",         // truncated
            "ffffffff0f0c0461", // 4 billion elements announced
            "050c046104620463", // 5 announced, 3 present
            "02",               // no header
        ];
        for h in bad {
            assert!(XlangReader::new(&hex(h)).read_string_list().is_err(), "{h}");
        }
    }

    #[test]
    fn header_and_root_errors() {
        let t = NamedStructType::from_fingerprint("hello", "Request", "name,21,0,0;").unwrap();
        let good = hex("02ff1d08019c8b5b800a034490a12530d8d57b45147479706564");
        let mut root_ref_value = good.clone();
        root_ref_value[1] = 0x00;
        XlangReader::new(&root_ref_value).read_struct_root(&t).unwrap();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "empty"),
            (vec![0x00], "non-xlang header"),
            (vec![0x03, 0xff], "null root"),
            (vec![0x06, 0xff], "out-of-band"),
            (hex("02fd"), "null flag"),
            (hex("02fe00"), "ref flag"),
            (hex("02ff1c"), "compatible struct"),
            (hex("02ff1e"), "named compatible struct"),
            (hex("02ff1d"), "no meta string"),
            (hex("02ff1d0801"), "truncated meta string"),
            (hex("02ff1d08099c8b5b80"), "bad meta encoding"),
            (hex("02ff1d03"), "dangling back-reference"),
            (hex("02ff1d08019c8b5b8005"), "back-reference to itself+1"),
            (good[..good.len() - 7].to_vec(), "truncated hash"),
        ];
        for (b, what) in cases {
            assert!(XlangReader::new(&b).read_struct_root(&t).is_err(), "{what}");
        }
        let mut r = XlangReader::new(&good);
        r.read_struct_root(&t).unwrap();
        assert_eq!(r.expect_end(), Err(XlangError::TrailingBytes(6)));
        assert_eq!(r.remaining(), 6);
    }

    #[test]
    fn errors_display_clearly() {
        let e = XlangError::HashMismatch { type_name: "_aster/RpcStatus".into(), expected: 1, found: 2 };
        assert_eq!(e.to_string(), "struct hash mismatch for _aster/RpcStatus: expected 1, found 2");
        let e = XlangError::Truncated { offset: 3, needed: 9, available: 1 };
        assert!(e.to_string().contains("truncated"));
        assert_eq!(XlangError::BadHeader(0).to_string(), "unsupported Fory header bitmap 0x00 (expected 0x02)");
    }
}
