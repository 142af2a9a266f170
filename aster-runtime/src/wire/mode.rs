//! `SerializationMode`: the payload encoding a call uses, carried in every StreamHeader.

use std::fmt;

/// The serialization mode of a call (`StreamHeader.serializationMode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SerializationMode {
    /// 0: Fory cross-language (pyfory 0.16 wire in the v0.1 dialect).
    Xlang,
    /// 1: Fory language-native (Rust ↔ Rust only).
    Native,
    /// 2: Fory row format (not implemented by aster-rs; calls get INVALID_ARGUMENT).
    Row,
    /// 3: UTF-8 JSON objects; always accepted by servers.
    Json,
}

impl SerializationMode {
    /// All modes, in wire-value order.
    pub const ALL: [SerializationMode; 4] =
        [SerializationMode::Xlang, SerializationMode::Native, SerializationMode::Row, SerializationMode::Json];

    /// The wire value (0..=3).
    pub fn as_i64(self) -> i64 {
        match self {
            SerializationMode::Xlang => 0,
            SerializationMode::Native => 1,
            SerializationMode::Row => 2,
            SerializationMode::Json => 3,
        }
    }

    /// Parses a wire value; `None` for anything outside 0..=3.
    pub fn from_i64(v: i64) -> Option<SerializationMode> {
        match v {
            0 => Some(SerializationMode::Xlang),
            1 => Some(SerializationMode::Native),
            2 => Some(SerializationMode::Row),
            3 => Some(SerializationMode::Json),
            _ => None,
        }
    }

    /// The contract string (`"xlang"`, `"native"`, `"row"`, `"json"`).
    pub fn as_str(self) -> &'static str {
        match self {
            SerializationMode::Xlang => "xlang",
            SerializationMode::Native => "native",
            SerializationMode::Row => "row",
            SerializationMode::Json => "json",
        }
    }

    /// True when protocol payloads (headers, trailers) of this stream are JSON.
    pub fn protocol_is_json(self) -> bool {
        self == SerializationMode::Json
    }
}

impl fmt::Display for SerializationMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip() {
        for m in SerializationMode::ALL {
            assert_eq!(SerializationMode::from_i64(m.as_i64()), Some(m));
        }
        assert_eq!(SerializationMode::from_i64(4), None);
        assert_eq!(SerializationMode::from_i64(-1), None);
        assert!(SerializationMode::Json.protocol_is_json());
        assert!(!SerializationMode::Native.protocol_is_json());
    }
}
