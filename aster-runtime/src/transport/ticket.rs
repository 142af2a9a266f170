//! `aster1…` tickets (protocol §2.4): an endpoint id, optional relay and direct socket
//! addresses, and an optional credential, in a compact binary form written as
//! `"aster1"` + base58 (Bitcoin alphabet).
//!
//! Binary layout (at most 256 bytes):
//!
//! | bytes | content |
//! |---|---|
//! | 32 | endpoint id (ed25519 public key) |
//! | 1 | header: version (=1) in the high nibble, relay type in bits 3..2 (00 none, 01 IPv4, 10 IPv6), bits 1..0 reserved |
//! | 0/6/18 | relay socket address: IPv4 (4) or IPv6 (16) octets + port, big-endian |
//! | 1 | direct-address count in the high nibble (≤ 15), low nibble reserved |
//! | ⌈2n/8⌉ | address types, 2 bits each, most significant first (00 IPv4, 01 IPv6) |
//! | 6/18 each | the direct addresses |
//! | optional | credential: type byte, u16 BE length (≤ 220), payload |
//!
//! Decoding follows the reference (`core/src/ticket.rs`): reserved bits and unused bitfield
//! bits are ignored, the `Open` credential's payload (normally empty) is ignored, anything
//! after the credential is rejected. IPv6 flow info and scope ids are not carried.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::str::FromStr;

/// The text prefix of a ticket.
pub const TICKET_PREFIX: &str = "aster1";
/// Largest binary ticket, in bytes.
pub const MAX_TICKET_BYTES: usize = 256;
/// Largest credential payload the TLV allows, in bytes. Note that the 256-byte ticket limit
/// leaves at most 219 bytes for a credential (256 − 32 − 1 − 1 − 3), and less with addresses.
pub const MAX_CREDENTIAL_BYTES: usize = 220;
/// Most direct addresses a ticket can carry (a 4-bit count).
pub const MAX_DIRECT_ADDRS: usize = 15;
/// The ticket format version written in the header's high nibble.
pub const TICKET_VERSION: u8 = 1;

/// Longest base58 text that can decode to [`MAX_TICKET_BYTES`] bytes (each leading zero byte
/// is one `'1'`, and 256 bytes need at most 350 digits). Longer input is rejected before
/// decoding, which is quadratic in the input length.
const MAX_BASE58_CHARS: usize = 350;

/// Why a ticket or a NodeAddr text could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// The text does not start with `aster1`.
    #[error("not an Aster ticket: it must start with \"aster1\"")]
    MissingPrefix,
    /// The text after `aster1` is not base58 (Bitcoin alphabet).
    #[error("invalid ticket: bad base58 after \"aster1\": {0}")]
    InvalidBase58(#[source] bs58::decode::Error),
    /// The ticket is longer than the format allows.
    #[error("invalid ticket: {len} bytes, more than the maximum of {max}")]
    TooLong {
        /// Length found (bytes, or base58 characters for text).
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// The ticket ends before `what` is complete.
    #[error("invalid ticket: truncated ({what} missing)")]
    Truncated {
        /// The part that is missing.
        what: &'static str,
    },
    /// The header's version nibble is not 1.
    #[error("invalid ticket: unsupported format version {0} (expected 1)")]
    UnsupportedVersion(u8),
    /// The header's relay type is the reserved value `0b11`.
    #[error("invalid ticket: reserved relay address type {0:#04b}")]
    ReservedRelayType(u8),
    /// A direct address has a reserved type (`0b10` or `0b11`).
    #[error("invalid ticket: direct address {index} has reserved type {bits:#04b}")]
    ReservedAddressType {
        /// Index of the address.
        index: usize,
        /// Its 2 type bits.
        bits: u8,
    },
    /// More direct addresses than the 4-bit count can hold.
    #[error("too many direct addresses for a ticket: {0} (maximum 15)")]
    TooManyDirectAddrs(usize),
    /// The credential payload is longer than 220 bytes.
    #[error("ticket credential payload too long: {0} bytes (maximum 220)")]
    CredentialTooLong(usize),
    /// The credential type byte is not 0–3.
    #[error("invalid ticket: unknown credential type {0:#04x}")]
    UnknownCredentialType(u8),
    /// A RegistryRead credential whose payload is not 32 bytes.
    #[error("invalid ticket: RegistryRead credential must be 32 bytes, got {0}")]
    BadRegistryRead(usize),
    /// Bytes follow the last field.
    #[error("invalid ticket: {0} trailing bytes after the last field")]
    TrailingBytes(usize),
    /// NodeAddr text: the endpoint id line is not 64 hex digits.
    #[error("invalid NodeAddr: endpoint id must be 64 hex digits, got {0:?}")]
    InvalidEndpointId(String),
    /// NodeAddr text: a direct address line is not `ip:port` / `[ipv6]:port`.
    #[error("invalid NodeAddr: bad direct address {0:?}")]
    InvalidDirectAddr(String),
    /// NodeAddr text: the relay URL contains a line break or is otherwise unusable.
    #[error("invalid NodeAddr: bad relay URL {0:?}")]
    InvalidRelayUrl(String),
    /// NodeAddr: the bytes are not UTF-8.
    #[error("invalid NodeAddr: not UTF-8 text")]
    InvalidUtf8,
    /// NodeAddr: the base64 form does not decode.
    #[error("invalid NodeAddr: bad base64: {0}")]
    InvalidBase64(#[source] base64::DecodeError),
}

/// Ticket and NodeAddr errors are the caller's bad input: `INVALID_ARGUMENT`.
impl From<TicketError> for crate::Status {
    fn from(e: TicketError) -> crate::Status {
        crate::Status::invalid_argument(e.to_string())
    }
}

/// The credential carried by a ticket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TicketCredential {
    /// Type 0: open access, no payload.
    Open,
    /// Type 1: a consumer RCAN credential (JSON bytes, carried verbatim).
    ConsumerRcan(Vec<u8>),
    /// Type 2: an enrollment credential (JSON bytes, carried verbatim).
    Enrollment(Vec<u8>),
    /// Type 3: read access to a registry: the 32-byte namespace id.
    RegistryRead([u8; 32]),
}

impl TicketCredential {
    /// The TLV type byte.
    pub fn type_byte(&self) -> u8 {
        match self {
            TicketCredential::Open => 0x00,
            TicketCredential::ConsumerRcan(_) => 0x01,
            TicketCredential::Enrollment(_) => 0x02,
            TicketCredential::RegistryRead(_) => 0x03,
        }
    }

    /// The TLV payload.
    pub fn payload(&self) -> &[u8] {
        match self {
            TicketCredential::Open => &[],
            TicketCredential::ConsumerRcan(p) | TicketCredential::Enrollment(p) => p,
            TicketCredential::RegistryRead(ns) => ns,
        }
    }

    fn from_tlv(type_byte: u8, payload: &[u8]) -> Result<TicketCredential, TicketError> {
        match type_byte {
            0x00 => Ok(TicketCredential::Open),
            0x01 => Ok(TicketCredential::ConsumerRcan(payload.to_vec())),
            0x02 => Ok(TicketCredential::Enrollment(payload.to_vec())),
            0x03 => <[u8; 32]>::try_from(payload)
                .map(TicketCredential::RegistryRead)
                .map_err(|_| TicketError::BadRegistryRead(payload.len())),
            other => Err(TicketError::UnknownCredentialType(other)),
        }
    }
}

/// An `aster1…` ticket.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsterTicket {
    /// The endpoint id (ed25519 public key) of the node.
    pub endpoint_id: [u8; 32],
    /// The relay, as a resolved socket address (the reference's Python client ignores it).
    pub relay_addr: Option<SocketAddr>,
    /// Direct socket addresses (at most 15).
    pub direct_addrs: Vec<SocketAddr>,
    /// Optional credential.
    pub credential: Option<TicketCredential>,
}

impl AsterTicket {
    /// A ticket with only an endpoint id.
    pub fn new(endpoint_id: [u8; 32]) -> AsterTicket {
        AsterTicket { endpoint_id, relay_addr: None, direct_addrs: Vec::new(), credential: None }
    }

    /// The text form: `"aster1"` + base58 of [`to_bytes`](Self::to_bytes).
    pub fn encode(&self) -> Result<String, TicketError> {
        let bytes = self.to_bytes()?;
        let mut text = String::with_capacity(TICKET_PREFIX.len() + bytes.len() * 14 / 10 + 1);
        text.push_str(TICKET_PREFIX);
        text.push_str(&bs58::encode(&bytes).into_string());
        Ok(text)
    }

    /// Parses the text form. Surrounding whitespace is not accepted.
    pub fn decode(text: &str) -> Result<AsterTicket, TicketError> {
        let body = text.strip_prefix(TICKET_PREFIX).ok_or(TicketError::MissingPrefix)?;
        if body.len() > MAX_BASE58_CHARS {
            return Err(TicketError::TooLong { len: body.len(), max: MAX_BASE58_CHARS });
        }
        let mut buf = [0u8; MAX_TICKET_BYTES];
        let len = bs58::decode(body).onto(&mut buf[..]).map_err(|e| match e {
            bs58::decode::Error::BufferTooSmall => {
                TicketError::TooLong { len: MAX_TICKET_BYTES + 1, max: MAX_TICKET_BYTES }
            }
            other => TicketError::InvalidBase58(other),
        })?;
        AsterTicket::from_bytes(&buf[..len])
    }

    /// The binary form. Fails for more than 15 direct addresses, a credential payload over
    /// 220 bytes, or a total over 256 bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, TicketError> {
        let n = self.direct_addrs.len();
        if n > MAX_DIRECT_ADDRS {
            return Err(TicketError::TooManyDirectAddrs(n));
        }
        if let Some(cred) = &self.credential
            && cred.payload().len() > MAX_CREDENTIAL_BYTES
        {
            return Err(TicketError::CredentialTooLong(cred.payload().len()));
        }
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&self.endpoint_id);
        let relay_type = match self.relay_addr {
            None => 0b00,
            Some(SocketAddr::V4(_)) => 0b01,
            Some(SocketAddr::V6(_)) => 0b10,
        };
        out.push((TICKET_VERSION << 4) | (relay_type << 2));
        if let Some(relay) = &self.relay_addr {
            put_addr(&mut out, relay);
        }
        out.push((n as u8) << 4);
        let mut types = [0u8; 4];
        for (i, addr) in self.direct_addrs.iter().enumerate() {
            if addr.is_ipv6() {
                types[i / 4] |= 0b01 << (6 - 2 * (i % 4));
            }
        }
        out.extend_from_slice(&types[..(2 * n).div_ceil(8)]);
        for addr in &self.direct_addrs {
            put_addr(&mut out, addr);
        }
        if let Some(cred) = &self.credential {
            let payload = cred.payload();
            out.push(cred.type_byte());
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            out.extend_from_slice(payload);
        }
        if out.len() > MAX_TICKET_BYTES {
            return Err(TicketError::TooLong { len: out.len(), max: MAX_TICKET_BYTES });
        }
        Ok(out)
    }

    /// Parses the binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<AsterTicket, TicketError> {
        if bytes.len() > MAX_TICKET_BYTES {
            return Err(TicketError::TooLong { len: bytes.len(), max: MAX_TICKET_BYTES });
        }
        let mut r = ByteReader { bytes };
        let endpoint_id: [u8; 32] = r.array("endpoint id")?;
        let [header] = r.array::<1>("header")?;
        let version = header >> 4;
        if version != TICKET_VERSION {
            return Err(TicketError::UnsupportedVersion(version));
        }
        let relay_addr = match (header >> 2) & 0b11 {
            0b00 => None,
            0b01 => Some(r.v4("relay address")?),
            0b10 => Some(r.v6("relay address")?),
            other => return Err(TicketError::ReservedRelayType(other)),
        };
        let [count] = r.array::<1>("direct address count")?;
        let n = usize::from(count >> 4);
        let types = r.take((2 * n).div_ceil(8), "address type bits")?;
        let mut direct_addrs = Vec::with_capacity(n);
        for i in 0..n {
            let bits = (types[i / 4] >> (6 - 2 * (i % 4))) & 0b11;
            direct_addrs.push(match bits {
                0b00 => r.v4("direct address")?,
                0b01 => r.v6("direct address")?,
                bits => return Err(TicketError::ReservedAddressType { index: i, bits }),
            });
        }
        let credential = if r.bytes.is_empty() {
            None
        } else {
            let [kind] = r.array::<1>("credential type")?;
            let len = usize::from(u16::from_be_bytes(r.array("credential length")?));
            if len > MAX_CREDENTIAL_BYTES {
                return Err(TicketError::CredentialTooLong(len));
            }
            let payload = r.take(len, "credential payload")?;
            Some(TicketCredential::from_tlv(kind, payload)?)
        };
        if !r.bytes.is_empty() {
            return Err(TicketError::TrailingBytes(r.bytes.len()));
        }
        Ok(AsterTicket { endpoint_id, relay_addr, direct_addrs, credential })
    }
}

impl FromStr for AsterTicket {
    type Err = TicketError;

    fn from_str(s: &str) -> Result<AsterTicket, TicketError> {
        AsterTicket::decode(s)
    }
}

/// Writes the `aster1…` text. A ticket that cannot be encoded (see
/// [`AsterTicket::to_bytes`]) is written as `<invalid aster ticket: reason>` instead; use
/// [`AsterTicket::encode`] to get the error.
impl fmt::Display for AsterTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.encode() {
            Ok(text) => f.write_str(&text),
            Err(e) => write!(f, "<invalid aster ticket: {e}>"),
        }
    }
}

fn put_addr(out: &mut Vec<u8>, addr: &SocketAddr) {
    match addr {
        SocketAddr::V4(a) => out.extend_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => out.extend_from_slice(&a.ip().octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

struct ByteReader<'a> {
    bytes: &'a [u8],
}

impl<'a> ByteReader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], TicketError> {
        if self.bytes.len() < n {
            return Err(TicketError::Truncated { what });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], TicketError> {
        let head = self.take(N, what)?;
        <[u8; N]>::try_from(head).map_err(|_| TicketError::Truncated { what })
    }

    fn v4(&mut self, what: &'static str) -> Result<SocketAddr, TicketError> {
        let ip: [u8; 4] = self.array(what)?;
        let port = u16::from_be_bytes(self.array(what)?);
        Ok(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
    }

    fn v6(&mut self, what: &'static str) -> Result<SocketAddr, TicketError> {
        let ip: [u8; 16] = self.array(what)?;
        let port = u16::from_be_bytes(self.array(what)?);
        Ok(SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn eid() -> [u8; 32] {
        std::array::from_fn(|i| i as u8 + 1)
    }

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn protocol_example_one_ipv4_direct_address() {
        let t = AsterTicket {
            endpoint_id: eid(),
            relay_addr: None,
            direct_addrs: vec![sa("192.0.2.2:38510")],
            credential: None,
        };
        let bytes = t.to_bytes().unwrap();
        assert_eq!(bytes.len(), 41);
        assert_eq!(&bytes[..32], &eid());
        assert_eq!(&bytes[32..], &[0x10, 0x10, 0x00, 0xc0, 0x00, 0x02, 0x02, 0x96, 0x6e]);
        let text = t.encode().unwrap();
        assert!(text.starts_with("aster1"));
        assert_eq!(text, format!("aster1{}", bs58::encode(&bytes).into_string()));
        assert_eq!(AsterTicket::decode(&text).unwrap(), t);
        assert_eq!(text.parse::<AsterTicket>().unwrap(), t);
        assert_eq!(t.to_string(), text);
    }

    #[test]
    fn minimal_and_relay_layouts() {
        let mut t = AsterTicket::new(eid());
        assert_eq!(&t.to_bytes().unwrap()[32..], &[0x10, 0x00]);
        t.relay_addr = Some(sa("87.254.0.136:443"));
        assert_eq!(&t.to_bytes().unwrap()[32..], &[0x14, 87, 254, 0, 136, 0x01, 0xbb, 0x00]);
        t.relay_addr = Some(sa("[2001:db8::1]:3478"));
        let b = t.to_bytes().unwrap();
        assert_eq!(b.len(), 32 + 1 + 18 + 1);
        assert_eq!(b[32], 0x18);
        assert_eq!(&b[33..35], &[0x20, 0x01]);
        assert_eq!(&b[49..51], &3478u16.to_be_bytes());
        for t in [AsterTicket::new(eid()), t] {
            assert_eq!(AsterTicket::decode(&t.encode().unwrap()).unwrap(), t);
        }
    }

    #[test]
    fn mixed_ipv4_ipv6_direct_addresses() {
        let addrs = vec![
            sa("[::1]:9000"),
            sa("10.0.0.1:1"),
            sa("[fe80::1:2:3:4]:65535"),
            sa("127.0.0.1:0"),
            sa("[2001:db8::7]:7"),
        ];
        let t = AsterTicket {
            endpoint_id: eid(),
            relay_addr: Some(sa("1.2.3.4:5")),
            direct_addrs: addrs.clone(),
            credential: None,
        };
        let b = t.to_bytes().unwrap();
        // type bits: 01 00 01 00 | 01 -> 0x44, 0x40
        assert_eq!(b[32 + 1 + 6], 0x50);
        assert_eq!(&b[40..42], &[0x44, 0x40]);
        assert_eq!(b.len(), 32 + 1 + 6 + 1 + 2 + 3 * 18 + 2 * 6);
        let back = AsterTicket::from_bytes(&b).unwrap();
        assert_eq!(back.direct_addrs, addrs);
        assert_eq!(back, t);
    }

    #[test]
    fn fifteen_addresses_fit() {
        let t = AsterTicket {
            endpoint_id: eid(),
            relay_addr: None,
            direct_addrs: (0..15).map(|i| sa(&format!("10.0.0.{i}:{}", 1000 + i))).collect(),
            credential: Some(TicketCredential::Open),
        };
        let b = t.to_bytes().unwrap();
        assert_eq!(b[33], 0xf0);
        assert_eq!(b.len(), 32 + 1 + 1 + 4 + 15 * 6 + 3);
        assert_eq!(AsterTicket::decode(&t.encode().unwrap()).unwrap(), t);
    }

    #[test]
    fn every_credential_kind_round_trips() {
        let creds = [
            TicketCredential::Open,
            TicketCredential::ConsumerRcan(br#"{"sig":"abc","exp":12345}"#.to_vec()),
            TicketCredential::Enrollment(br#"{"k":"v"}"#.to_vec()),
            TicketCredential::RegistryRead([0xAB; 32]),
            TicketCredential::ConsumerRcan(Vec::new()),
        ];
        for cred in creds {
            let t = AsterTicket {
                endpoint_id: eid(),
                relay_addr: None,
                direct_addrs: vec![sa("192.0.2.2:38510")],
                credential: Some(cred.clone()),
            };
            let b = t.to_bytes().unwrap();
            let tail = &b[41..];
            assert_eq!(tail[0], cred.type_byte());
            assert_eq!(usize::from(u16::from_be_bytes([tail[1], tail[2]])), cred.payload().len());
            assert_eq!(&tail[3..], cred.payload());
            assert_eq!(AsterTicket::decode(&t.encode().unwrap()).unwrap(), t, "{cred:?}");
        }
        // The largest credential that fits: 256 - 32 - 1 - 1 - 3 = 219 bytes (so the 220-byte
        // TLV limit can never be reached in a valid ticket).
        let mut t = AsterTicket::new(eid());
        t.credential = Some(TicketCredential::Enrollment(vec![b'x'; 219]));
        assert_eq!(t.to_bytes().unwrap().len(), 256);
        assert_eq!(AsterTicket::decode(&t.encode().unwrap()).unwrap(), t);
        t.credential = Some(TicketCredential::Enrollment(vec![b'x'; 220]));
        assert!(matches!(t.to_bytes(), Err(TicketError::TooLong { len: 257, .. })));
        // Open with a (non-standard) payload decodes as Open, like the reference
        let mut b = AsterTicket::new(eid()).to_bytes().unwrap();
        b.extend_from_slice(&[0x00, 0x00, 0x02, 9, 9]);
        assert_eq!(AsterTicket::from_bytes(&b).unwrap().credential, Some(TicketCredential::Open));
    }

    #[test]
    fn rejects_bad_text() {
        let good = AsterTicket::new(eid()).encode().unwrap();
        assert!(matches!(AsterTicket::decode(&good[1..]), Err(TicketError::MissingPrefix)));
        assert!(matches!(AsterTicket::decode("Aster1abc"), Err(TicketError::MissingPrefix)));
        assert!(matches!(AsterTicket::decode(""), Err(TicketError::MissingPrefix)));
        assert!(matches!(AsterTicket::decode(&format!(" {good}")), Err(TicketError::MissingPrefix)));
        // 0, O, I, l are not in the Bitcoin alphabet
        for bad in ["aster10abc", "aster1OOO", "aster1Il", "aster1ü", &format!("{good} ")] {
            let err = AsterTicket::decode(bad).unwrap_err();
            assert!(matches!(err, TicketError::InvalidBase58(_)), "{bad}: {err}");
            assert!(err.to_string().contains("base58"));
        }
        let huge = format!("aster1{}", "z".repeat(351));
        assert!(matches!(AsterTicket::decode(&huge), Err(TicketError::TooLong { .. })));
        let too_big = format!("aster1{}", bs58::encode(vec![0xffu8; 257]).into_string());
        assert!(matches!(AsterTicket::decode(&too_big), Err(TicketError::TooLong { .. })));
        // empty body decodes to zero bytes
        assert!(matches!(AsterTicket::decode("aster1"), Err(TicketError::Truncated { what: "endpoint id" })));
    }

    #[test]
    fn rejects_truncation_anywhere() {
        let t = AsterTicket {
            endpoint_id: eid(),
            relay_addr: Some(sa("[2001:db8::1]:3478")),
            direct_addrs: vec![sa("192.0.2.2:38510"), sa("[::1]:1")],
            credential: Some(TicketCredential::RegistryRead([7; 32])),
        };
        let b = t.to_bytes().unwrap();
        let cred_start = b.len() - 35;
        for cut in 0..b.len() {
            if cut == cred_start {
                // a ticket without its (optional) credential is complete
                assert_eq!(AsterTicket::from_bytes(&b[..cut]).unwrap().credential, None);
                continue;
            }
            let err = AsterTicket::from_bytes(&b[..cut]).unwrap_err();
            assert!(matches!(err, TicketError::Truncated { .. } | TicketError::BadRegistryRead(_)), "cut {cut}: {err}");
        }
        assert!(matches!(
            AsterTicket::from_bytes(&b[..cred_start + 3 + 31]),
            Err(TicketError::Truncated { what: "credential payload" })
        ));
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut b = AsterTicket::new(eid()).to_bytes().unwrap();
        b.extend_from_slice(&[0x00, 0x00, 0x00, 0xEE]);
        assert!(matches!(AsterTicket::from_bytes(&b), Err(TicketError::TrailingBytes(1))));
        let text = format!("aster1{}", bs58::encode(&b).into_string());
        assert!(matches!(AsterTicket::decode(&text), Err(TicketError::TrailingBytes(1))));
    }

    #[test]
    fn rejects_too_many_addresses_and_oversized_tickets() {
        let mut t = AsterTicket::new(eid());
        t.direct_addrs = (0..16).map(|i| sa(&format!("10.0.0.{i}:1"))).collect();
        assert!(matches!(t.to_bytes(), Err(TicketError::TooManyDirectAddrs(16))));
        assert!(t.to_string().starts_with("<invalid aster ticket: too many direct addresses"));
        // 15 IPv6 addresses: 32+1+1+4+270 = 308 bytes > 256
        t.direct_addrs = (0..15).map(|i| sa(&format!("[::{i}]:1"))).collect();
        assert!(matches!(t.to_bytes(), Err(TicketError::TooLong { len: 308, max: 256 })));
        let mut b = vec![0u8; 257];
        b[32] = 0x10;
        assert!(matches!(AsterTicket::from_bytes(&b), Err(TicketError::TooLong { .. })));
    }

    #[test]
    fn rejects_long_credentials() {
        let mut t = AsterTicket::new(eid());
        t.credential = Some(TicketCredential::ConsumerRcan(vec![b'{'; 221]));
        assert!(matches!(t.to_bytes(), Err(TicketError::CredentialTooLong(221))));
        let mut b = AsterTicket::new(eid()).to_bytes().unwrap();
        b.extend_from_slice(&[0x01, 0x00, 221]);
        b.extend_from_slice(&[b'x'; 100]);
        assert!(matches!(AsterTicket::from_bytes(&b), Err(TicketError::CredentialTooLong(221))));
    }

    #[test]
    fn rejects_bad_header_and_types() {
        let good = AsterTicket {
            endpoint_id: eid(),
            relay_addr: None,
            direct_addrs: vec![sa("192.0.2.2:38510")],
            credential: None,
        }
        .to_bytes()
        .unwrap();
        for version in [0x00u8, 0x20, 0xF0] {
            let mut b = good.clone();
            b[32] = version;
            let err = AsterTicket::from_bytes(&b).unwrap_err();
            assert!(matches!(err, TicketError::UnsupportedVersion(v) if v == version >> 4), "{err}");
        }
        let mut b = good.clone();
        b[32] = 0x1C;
        assert!(matches!(AsterTicket::from_bytes(&b), Err(TicketError::ReservedRelayType(3))));
        for bits in [0b10u8, 0b11] {
            let mut b = good.clone();
            b[34] = bits << 6;
            assert!(matches!(
                AsterTicket::from_bytes(&b),
                Err(TicketError::ReservedAddressType { index: 0, bits: got }) if got == bits
            ));
        }
        // reserved header bits, reserved count nibble and unused type bits are ignored
        let mut b = good.clone();
        b[32] |= 0b11;
        b[33] |= 0x0F;
        b[34] |= 0b0011_1111;
        assert_eq!(AsterTicket::from_bytes(&b).unwrap().direct_addrs, vec![sa("192.0.2.2:38510")]);
        // unknown credential type, bad RegistryRead length
        let mut b = good.clone();
        b.extend_from_slice(&[0x04, 0x00, 0x00]);
        assert!(matches!(AsterTicket::from_bytes(&b), Err(TicketError::UnknownCredentialType(4))));
        let mut b = good;
        b.extend_from_slice(&[0x03, 0x00, 0x02, 1, 2]);
        assert!(matches!(AsterTicket::from_bytes(&b), Err(TicketError::BadRegistryRead(2))));
    }

    #[test]
    fn errors_become_invalid_argument() {
        let status: crate::Status = AsterTicket::decode("nope").unwrap_err().into();
        assert_eq!(status.code(), crate::Code::InvalidArgument);
        assert!(status.message().contains("aster1"));
    }

    #[test]
    fn ipv6_scope_is_not_carried() {
        let mut t = AsterTicket::new(eid());
        t.direct_addrs = vec![SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::LOCALHOST, 5, 7, 3))];
        let back = AsterTicket::from_bytes(&t.to_bytes().unwrap()).unwrap();
        assert_eq!(back.direct_addrs, vec![sa("[::1]:5")]);
    }

    #[test]
    fn random_input_never_panics() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5000 {
            let len = (next() % 300) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            if b.len() > 32 {
                b[32] = 0x10 | (b[32] & 0x0F);
            }
            if let Ok(t) = AsterTicket::from_bytes(&b) {
                // whatever decodes re-encodes to a valid ticket
                let again = AsterTicket::from_bytes(&t.to_bytes().unwrap()).unwrap();
                assert_eq!(again, t);
            }
        }
    }
}
