//! [`TypeHash`] and [`ContractId`]: BLAKE3 digests of canonical bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::Profile;
use super::model::{Canonical, ServiceContract, TypeDef};

/// A string that is not 64 hexadecimal digits.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("expected 64 hex digits, got {got:?}")]
pub struct ParseDigestError {
    /// The rejected input (truncated to 80 chars).
    pub got: String,
}

fn parse_hex32(s: &str) -> Result<[u8; 32], ParseDigestError> {
    let err = || ParseDigestError { got: s.chars().take(80).collect() };
    let b = s.as_bytes();
    if b.len() != 64 {
        return Err(err());
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16).ok_or_else(err)?;
        let lo = (pair[1] as char).to_digit(16).ok_or_else(err)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Ok(out)
}

fn write_hex(f: &mut fmt::Formatter<'_>, b: &[u8; 32]) -> fmt::Result {
    for x in b {
        write!(f, "{x:02x}")?;
    }
    Ok(())
}

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// 32 zero bytes: what 0.1.2 writes for unknown types, `None` and forward references.
            pub const ZERO: Self = Self([0u8; 32]);

            /// BLAKE3 of `bytes`.
            pub fn digest(bytes: &[u8]) -> Self {
                Self(*blake3::hash(bytes).as_bytes())
            }

            /// The raw 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lowercase hex (64 chars), as in `Display`.
            pub fn to_hex(&self) -> String {
                self.to_string()
            }

            /// Whether this is [`Self::ZERO`].
            pub fn is_zero(&self) -> bool {
                self.0 == [0u8; 32]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_hex(f, &self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                write_hex(f, &self.0)?;
                write!(f, ")")
            }
        }

        impl FromStr for $name {
            type Err = ParseDigestError;

            /// Parses 64 hex digits (either case).
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_hex32(s).map(Self)
            }
        }

        impl From<[u8; 32]> for $name {
            fn from(b: [u8; 32]) -> Self {
                Self(b)
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

digest_type!(
    /// `BLAKE3(canonical TypeDef bytes)`: how a contract refers to a message type. Also used
    /// for a method's request/response slot, which can hold a type hash, the hash of a
    /// primitive's name, or [`TypeHash::ZERO`].
    TypeHash
);

digest_type!(
    /// `BLAKE3(canonical ServiceContract bytes)`; shown as 64 lowercase hex digits.
    ContractId
);

impl TypeHash {
    /// The hash of a TypeDef under `profile`.
    pub fn of(def: &TypeDef, profile: Profile) -> Self {
        Self::digest(&def.canonical_bytes(profile))
    }
}

impl ContractId {
    /// The contract id of a ServiceContract under `profile`.
    pub fn of(contract: &ServiceContract, profile: Profile) -> Self {
        Self::digest(&contract.canonical_bytes(profile))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip() {
        let s = "564f108daa850392179f626568b5c919cad3bf5996d3a41ec13229ee2b65120e";
        let id: ContractId = s.parse().unwrap();
        assert_eq!(id.to_string(), s);
        assert_eq!(id.as_bytes()[0], 0x56);
        let upper: ContractId = s.to_uppercase().parse().unwrap();
        assert_eq!(upper, id);
        assert!(format!("{id:?}").starts_with("ContractId(564f"));
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{s}\""));
        assert_eq!(serde_json::from_str::<ContractId>(&format!("\"{s}\"")).unwrap(), id);
    }

    #[test]
    fn hex_rejects() {
        assert!("00".parse::<TypeHash>().is_err());
        assert!("g".repeat(64).parse::<TypeHash>().is_err());
        assert!("é".repeat(32).parse::<TypeHash>().is_err());
        assert!(TypeHash::ZERO.is_zero());
    }

    #[test]
    fn digest_is_blake3() {
        // BLAKE3("") from the BLAKE3 test vectors.
        assert_eq!(
            TypeHash::digest(b"").to_string(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
