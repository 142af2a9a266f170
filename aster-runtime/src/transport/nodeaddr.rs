//! The reference's "NodeAddr bytes" (protocol §2.5): how admission responses
//! (`ServiceSummary.channels["rpc"]`) and `ASTER_ENDPOINT_ADDR` describe where a node is.
//!
//! Text: `"<endpoint id, 64 hex>\n<relay URL or empty>\n<direct 1>\n<direct 2>…"`, with
//! socket addresses written as `ip:port` / `[ipv6]:port`; in JSON it travels as standard,
//! padded base64 of that text. Example: `6fba…6876\n\n192.0.2.2:39730`.
//!
//! Parsing follows the reference (`NodeAddr.from_bytes`): lines are split on `\n`, an empty
//! or missing second line means "no relay", empty address lines are skipped. Unlike the
//! reference, the endpoint id and every address are validated here (whitespace around a line,
//! including a `\r`, is tolerated).

use std::net::SocketAddr;

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};

use iroh::{EndpointAddr, EndpointId};

use super::ticket::{AsterTicket, TicketError};
use crate::Status;

/// Decoder that accepts base64 with or without padding (encoding always pads).
const LENIENT_BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A node address in the reference's text form.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeAddrText {
    /// The endpoint id (ed25519 public key).
    pub endpoint_id: [u8; 32],
    /// The home relay URL, if any (kept verbatim).
    pub relay_url: Option<String>,
    /// Direct socket addresses.
    pub direct_addrs: Vec<SocketAddr>,
}

impl NodeAddrText {
    /// An address with only an endpoint id.
    pub fn new(endpoint_id: [u8; 32]) -> NodeAddrText {
        NodeAddrText { endpoint_id, relay_url: None, direct_addrs: Vec::new() }
    }

    /// The endpoint id as 64 lowercase hex digits.
    pub fn endpoint_id_hex(&self) -> String {
        hex_encode(&self.endpoint_id)
    }

    /// The text form, exactly as the reference writes it (no trailing newline after the last
    /// address; with no addresses the text ends with the relay line's `\n`).
    pub fn to_text(&self) -> String {
        let mut text = self.endpoint_id_hex();
        text.push('\n');
        if let Some(relay) = &self.relay_url {
            text.push_str(relay);
        }
        text.push('\n');
        for (i, addr) in self.direct_addrs.iter().enumerate() {
            if i > 0 {
                text.push('\n');
            }
            text.push_str(&addr.to_string());
        }
        text
    }

    /// Parses the text form.
    pub fn parse_text(text: &str) -> Result<NodeAddrText, TicketError> {
        let mut lines = text.split('\n');
        let id_line = lines.next().unwrap_or_default().trim();
        let endpoint_id = hex_decode_32(id_line).ok_or_else(|| TicketError::InvalidEndpointId(truncated(id_line)))?;
        let relay_url = match lines.next().map(str::trim) {
            None | Some("") => None,
            Some(url) if url.chars().any(char::is_whitespace) => {
                return Err(TicketError::InvalidRelayUrl(truncated(url)));
            }
            Some(url) => Some(url.to_owned()),
        };
        let direct_addrs = lines
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| line.parse::<SocketAddr>().map_err(|_| TicketError::InvalidDirectAddr(truncated(line))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NodeAddrText { endpoint_id, relay_url, direct_addrs })
    }

    /// Parses UTF-8 bytes of the text form.
    pub fn parse_bytes(bytes: &[u8]) -> Result<NodeAddrText, TicketError> {
        let text = std::str::from_utf8(bytes).map_err(|_| TicketError::InvalidUtf8)?;
        NodeAddrText::parse_text(text)
    }

    /// Standard, padded base64 of the text form (what admission JSON carries).
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.to_text())
    }

    /// Parses the base64 form (standard alphabet; padding optional).
    pub fn from_base64(b64: &str) -> Result<NodeAddrText, TicketError> {
        let bytes = LENIENT_BASE64.decode(b64.trim()).map_err(TicketError::InvalidBase64)?;
        NodeAddrText::parse_bytes(&bytes)
    }
}

impl NodeAddrText {
    /// The dialable iroh address: the endpoint id and the direct addresses. The relay URL is
    /// not used (the offline endpoint recipe has no relays). An id that is not a valid ed25519
    /// key is `INVALID_ARGUMENT`.
    pub fn to_endpoint_addr(&self) -> Result<EndpointAddr, Status> {
        let id = EndpointId::from_bytes(&self.endpoint_id).map_err(|e| {
            Status::invalid_argument(format!("endpoint id {} is not a valid key: {e}", self.endpoint_id_hex()))
        })?;
        Ok(self.direct_addrs.iter().fold(EndpointAddr::new(id), |a, sa| a.with_ip_addr(*sa)))
    }
}

/// An iroh address in the text form: its id, its first relay URL (if any) and its direct
/// addresses in iroh's (sorted) order.
impl From<&EndpointAddr> for NodeAddrText {
    fn from(addr: &EndpointAddr) -> NodeAddrText {
        NodeAddrText {
            endpoint_id: *addr.id.as_bytes(),
            relay_url: addr.relay_urls().next().map(|u| u.to_string()),
            direct_addrs: addr.ip_addrs().copied().collect(),
        }
    }
}

/// A ticket's endpoint id and direct addresses. The relay is dropped: a ticket stores a
/// resolved relay socket address, not a relay URL (the reference's Python client does the
/// same).
impl From<&AsterTicket> for NodeAddrText {
    fn from(ticket: &AsterTicket) -> NodeAddrText {
        NodeAddrText { endpoint_id: ticket.endpoint_id, relay_url: None, direct_addrs: ticket.direct_addrs.clone() }
    }
}

fn truncated(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn hex_decode_32(s: &str) -> Option<[u8; 32]> {
    let raw = s.as_bytes();
    if raw.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *byte = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::transport::ticket::TicketCredential;

    const ID_HEX: &str = "7ace1fdbe50f636764cb322cdb7d8c7f094758abd3f605bc1452cc84deb56c3e";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn golden_admission_response_channels() {
        let raw = crate::test_vectors::read("golden/admission_open_gate.s2c.bin");
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let services = v["services"].as_array().unwrap();
        assert_eq!(services.len(), 2);
        for svc in services {
            let b64 = svc["channels"]["rpc"].as_str().unwrap();
            let addr = NodeAddrText::from_base64(b64).unwrap();
            assert_eq!(addr.endpoint_id_hex(), ID_HEX);
            assert_eq!(addr.relay_url, None);
            assert_eq!(addr.direct_addrs, vec![sa("127.0.0.1:58296"), sa("[::1]:34135")]);
            // re-encoding gives the server's exact bytes
            assert_eq!(addr.to_base64(), b64);
            assert_eq!(addr.to_text(), format!("{ID_HEX}\n\n127.0.0.1:58296\n[::1]:34135"));
        }
    }

    #[test]
    fn protocol_example_and_relay() {
        let text = format!("{ID_HEX}\n\n192.0.2.2:39730");
        let a = NodeAddrText::parse_text(&text).unwrap();
        assert_eq!(a.direct_addrs, vec![sa("192.0.2.2:39730")]);
        assert_eq!(a.to_text(), text);

        let mut a = NodeAddrText::new([0xAB; 32]);
        assert_eq!(a.to_text(), format!("{}\n\n", "ab".repeat(32)));
        assert_eq!(NodeAddrText::parse_text(&a.to_text()).unwrap(), a);
        a.relay_url = Some("https://relay.example.invalid./".into());
        assert_eq!(a.to_text(), format!("{}\nhttps://relay.example.invalid./\n", "ab".repeat(32)));
        a.direct_addrs = vec![sa("[2001:db8::1]:1"), sa("10.1.2.3:4")];
        let round = NodeAddrText::from_base64(&a.to_base64()).unwrap();
        assert_eq!(round, a);
    }

    #[test]
    fn lenient_where_the_reference_is() {
        let upper = ID_HEX.to_uppercase();
        let a = NodeAddrText::parse_text(&format!("{upper}\r\n\r\n\n127.0.0.1:1\r\n\n")).unwrap();
        assert_eq!(a.endpoint_id_hex(), ID_HEX);
        assert_eq!(a.direct_addrs, vec![sa("127.0.0.1:1")]);
        // id line only
        assert_eq!(NodeAddrText::parse_text(ID_HEX).unwrap().direct_addrs, vec![]);
        // unpadded base64
        let mut a = NodeAddrText::new([1; 32]);
        a.relay_url = Some("x".into());
        let b64 = a.to_base64();
        assert!(b64.ends_with("=="));
        let unpadded = b64.trim_end_matches('=');
        assert_eq!(NodeAddrText::from_base64(unpadded).unwrap(), a);
    }

    #[test]
    fn rejects_bad_input() {
        for id in ["", "abc", &ID_HEX[..63], &format!("{ID_HEX}0"), &ID_HEX.replace('7', "g")] {
            let err = NodeAddrText::parse_text(&format!("{id}\n\n")).unwrap_err();
            assert!(matches!(err, TicketError::InvalidEndpointId(_)), "{id}: {err}");
        }
        for addr in ["127.0.0.1", "::1:80", "host:80", "1.2.3.4:99999", "[::1]"] {
            let err = NodeAddrText::parse_text(&format!("{ID_HEX}\n\n{addr}")).unwrap_err();
            assert!(matches!(err, TicketError::InvalidDirectAddr(_)), "{addr}: {err}");
            assert!(err.to_string().contains(addr));
        }
        let err = NodeAddrText::parse_text(&format!("{ID_HEX}\nhttp://a b\n")).unwrap_err();
        assert!(matches!(err, TicketError::InvalidRelayUrl(_)));
        assert!(matches!(NodeAddrText::from_base64("!!!"), Err(TicketError::InvalidBase64(_))));
        assert!(matches!(NodeAddrText::parse_bytes(b"\xff\xfe"), Err(TicketError::InvalidUtf8)));
        let long = "x".repeat(500);
        let msg = NodeAddrText::parse_text(&long).unwrap_err().to_string();
        assert!(msg.len() < 200, "{msg}");
    }

    #[test]
    fn endpoint_addr_conversions() {
        let key = iroh::SecretKey::from_bytes(&[7; 32]);
        let id = key.public();
        let ea = EndpointAddr::new(id).with_ip_addr(sa("127.0.0.1:4000")).with_ip_addr(sa("[::1]:4001"));
        let text = NodeAddrText::from(&ea);
        assert_eq!(text.endpoint_id, *id.as_bytes());
        assert_eq!(text.relay_url, None);
        assert_eq!(text.direct_addrs, vec![sa("127.0.0.1:4000"), sa("[::1]:4001")]);
        assert_eq!(text.to_endpoint_addr().unwrap(), ea);
        let round = NodeAddrText::from_base64(&text.to_base64()).unwrap().to_endpoint_addr().unwrap();
        assert_eq!(round, ea);
        // the golden capture's address is dialable as is
        let golden = NodeAddrText::parse_text(&format!("{ID_HEX}\n\n127.0.0.1:58296\n[::1]:34135")).unwrap();
        let ea = golden.to_endpoint_addr().unwrap();
        assert_eq!(ea.ip_addrs().count(), 2);
    }

    #[test]
    fn from_ticket_drops_the_relay() {
        let t = AsterTicket {
            endpoint_id: [9; 32],
            relay_addr: Some(sa("1.1.1.1:443")),
            direct_addrs: vec![sa("192.0.2.2:38510")],
            credential: Some(TicketCredential::Open),
        };
        let a = NodeAddrText::from(&t);
        assert_eq!(a.endpoint_id, [9; 32]);
        assert_eq!(a.relay_url, None);
        assert_eq!(a.direct_addrs, t.direct_addrs);
    }
}
