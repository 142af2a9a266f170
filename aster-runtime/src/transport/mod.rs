//! Transport: the offline-capable iroh endpoint, ALPN constants, tickets and the NodeAddr text
//! form, and [`FramedStream`], a QUIC bi-stream that carries Aster frames.

pub mod endpoint;
pub mod nodeaddr;
pub mod stream;
pub mod ticket;

pub use endpoint::{
    EndpointConfig, addr_from_ticket, bind_endpoint, bind_endpoint_with_hooks, endpoint_addr, parse_address, ticket_for,
};
pub use nodeaddr::NodeAddrText;
pub use stream::{FrameReader, FrameWriter, FramedStream};
pub use ticket::{AsterTicket, TicketCredential, TicketError};

/// ALPN of the Aster RPC protocol (v0.1 dialect; the v0.2 dialect reuses it).
pub const ALPN_RPC: &[u8] = b"aster/1";
/// ALPN of consumer admission (credential presentation and service discovery).
pub const ALPN_CONSUMER_ADMISSION: &[u8] = b"aster.consumer_admission";
/// ALPN of producer admission (producer mesh join).
pub const ALPN_PRODUCER_ADMISSION: &[u8] = b"aster.producer_admission";
/// ALPN of the reference's optional delegated admission (@aster directory tokens; not served
/// by aster-rs, but like the other admission ALPNs never refused by Gate 0).
pub const ALPN_DELEGATED_ADMISSION: &[u8] = b"aster.admission";
/// The admission ALPNs: a peer that is not (yet) admitted may use these and nothing else
/// (Gate 0).
pub const ADMISSION_ALPNS: [&[u8]; 3] = [ALPN_CONSUMER_ADMISSION, ALPN_PRODUCER_ADMISSION, ALPN_DELEGATED_ADMISSION];

pub use iroh::{Endpoint, EndpointAddr, EndpointId, SecretKey};
