//! The iroh endpoint, configured for offline, loopback-capable operation.
//!
//! The recipe: `presets::Minimal` (crypto provider only), relays disabled, no address lookup,
//! no portmapper (the crate is built without it), a minimal net report, and an explicit bind
//! address (default `127.0.0.1:0`). Nothing leaves the machine unless the bind address says so.

use std::net::SocketAddr;

use iroh::endpoint::{EndpointHooks, NetReportConfig, presets};
use iroh::{Endpoint, EndpointAddr, RelayMode, SecretKey, TransportAddr};

use super::ticket::AsterTicket;
use crate::Status;

/// How to bind a node's endpoint.
#[derive(Clone, Debug)]
pub struct EndpointConfig {
    /// Socket address to bind (default `127.0.0.1:0`).
    pub bind_addr: SocketAddr,
    /// The node's secret key; a fresh random key when `None` (the EndpointId is its public key).
    pub secret_key: Option<SecretKey>,
    /// ALPNs the endpoint accepts (a router sets its own; clients need none).
    pub alpns: Vec<Vec<u8>>,
    /// Maximum concurrent bi-streams a peer may open (QUIC flow control; default 1024).
    pub max_concurrent_bidi_streams: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig {
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            secret_key: None,
            alpns: Vec::new(),
            max_concurrent_bidi_streams: 1024,
        }
    }
}

/// Binds an iroh endpoint with the offline recipe.
pub async fn bind_endpoint(config: &EndpointConfig) -> Result<Endpoint, Status> {
    bind(config, None::<NoHooks>).await
}

/// Binds an iroh endpoint with the offline recipe and connection `hooks` installed (a node's
/// Gate 0 uses [`EndpointHooks::after_handshake`] to close connections of peers that are not
/// admitted).
pub async fn bind_endpoint_with_hooks(
    config: &EndpointConfig,
    hooks: impl EndpointHooks + 'static,
) -> Result<Endpoint, Status> {
    bind(config, Some(hooks)).await
}

/// Placeholder hook type of [`bind_endpoint`] (never instantiated).
#[derive(Debug)]
struct NoHooks;

impl EndpointHooks for NoHooks {}

async fn bind<H: EndpointHooks + 'static>(config: &EndpointConfig, hooks: Option<H>) -> Result<Endpoint, Status> {
    let transport = iroh::endpoint::QuicTransportConfig::builder()
        .max_concurrent_bidi_streams(config.max_concurrent_bidi_streams.into())
        .build();
    let mut builder = Endpoint::builder(presets::Minimal)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .clear_ip_transports()
        .bind_addr(config.bind_addr)
        .map_err(|e| Status::invalid_argument(format!("bind address {}: {e}", config.bind_addr)))?
        .net_report_config(NetReportConfig::minimal())
        .transport_config(transport)
        .alpns(config.alpns.clone());
    if let Some(key) = &config.secret_key {
        builder = builder.secret_key(key.clone());
    }
    if let Some(hooks) = hooks {
        builder = builder.hooks(hooks);
    }
    builder.bind().await.map_err(|e| Status::unavailable(format!("cannot bind endpoint on {}: {e}", config.bind_addr)))
}

/// The address peers use to dial `ep`: its id plus its bound sockets.
///
/// A socket bound to an unspecified address (`0.0.0.0`) is advertised as loopback, since the
/// offline recipe has no other way to learn an externally reachable address.
pub fn endpoint_addr(ep: &Endpoint) -> EndpointAddr {
    let mut addr = EndpointAddr::new(ep.id());
    for mut sa in ep.bound_sockets() {
        if sa.ip().is_unspecified() {
            sa.set_ip(if sa.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        addr = addr.with_ip_addr(sa);
    }
    addr
}

/// An `aster1…` ticket for dialing `ep` directly (no relay, no credential).
pub fn ticket_for(ep: &Endpoint) -> AsterTicket {
    let addr = endpoint_addr(ep);
    AsterTicket {
        endpoint_id: *addr.id.as_bytes(),
        relay_addr: None,
        direct_addrs: addr
            .addrs
            .iter()
            .filter_map(|a| match a {
                TransportAddr::Ip(sa) => Some(*sa),
                _ => None,
            })
            .take(15)
            .collect(),
        credential: None,
    }
}

/// The dialable address in a ticket (direct addresses only, like the reference client).
pub fn addr_from_ticket(ticket: &AsterTicket) -> Result<EndpointAddr, Status> {
    let id = iroh::EndpointId::from_bytes(&ticket.endpoint_id)
        .map_err(|e| Status::invalid_argument(format!("ticket endpoint id is not a valid key: {e}")))?;
    let mut addr = EndpointAddr::new(id);
    for sa in &ticket.direct_addrs {
        addr = addr.with_ip_addr(*sa);
    }
    Ok(addr)
}

/// Parses a peer address in any form the reference's clients accept (protocol §2.3 step 1):
/// an `aster1…` ticket (direct addresses; the relay is dropped), base64 "NodeAddr bytes"
/// ([`NodeAddrText`](super::NodeAddrText)), or a bare 64-hex EndpointId (no addresses: only
/// dialable when the endpoint already knows where the peer is). Malformed input is
/// `INVALID_ARGUMENT`.
pub fn parse_address(s: &str) -> Result<EndpointAddr, Status> {
    let s = s.trim();
    if s.starts_with(super::ticket::TICKET_PREFIX) {
        let ticket: AsterTicket = s.parse().map_err(|e| Status::invalid_argument(format!("invalid ticket: {e}")))?;
        return addr_from_ticket(&ticket);
    }
    if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        let id: iroh::EndpointId =
            s.parse().map_err(|e| Status::invalid_argument(format!("invalid endpoint id {s}: {e}")))?;
        return Ok(EndpointAddr::new(id));
    }
    super::NodeAddrText::from_base64(s)
        .map_err(|e| {
            Status::invalid_argument(format!("not an aster1 ticket, a base64 NodeAddr or a 64-hex endpoint id: {e}"))
        })?
        .to_endpoint_addr()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::transport::NodeAddrText;

    #[test]
    fn parse_address_accepts_the_three_forms() {
        let id = SecretKey::from_bytes(&[3; 32]).public();
        let sa: std::net::SocketAddr = "127.0.0.1:4433".parse().unwrap();
        let want = EndpointAddr::new(id).with_ip_addr(sa);
        let ticket =
            AsterTicket { endpoint_id: *id.as_bytes(), relay_addr: None, direct_addrs: vec![sa], credential: None };
        assert_eq!(parse_address(&ticket.to_string()).unwrap(), want);
        let b64 = NodeAddrText::from(&want).to_base64();
        assert_eq!(parse_address(&b64).unwrap(), want);
        assert_eq!(parse_address(&format!(" {id} ")).unwrap(), EndpointAddr::new(id));
        for bad in ["", "aster1zzz", "hello", &"g".repeat(64)] {
            let e = parse_address(bad).unwrap_err();
            assert_eq!(e.code(), crate::Code::InvalidArgument, "{bad}: {e}");
        }
    }
}
