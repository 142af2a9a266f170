//! [`AsterClient`]: the reference client's connection flow (protocol §2.3) — consumer
//! admission first, then one `aster/1` [`Channel`] per RPC address, each service called in the
//! serialization mode chosen from what its producer advertises (§5.1).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use iroh::endpoint::{Connection, ReadToEndError};
use iroh::{Endpoint, EndpointAddr, EndpointId};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::channel::Channel;
use super::options::CallOptions;
use super::session::Session;
use crate::admission::{
    ConsumerAdmissionRequest, ConsumerAdmissionResponse, MAX_ADMISSION_PAYLOAD, RPC_CHANNEL, ServiceSummaryJson,
    default_client_modes,
};
use crate::transport::{ALPN_CONSUMER_ADMISSION, NodeAddrText, parse_address};
use crate::trust::ConsumerCredential;
use crate::trust::identity::consumer_credential_from_file_text;
use crate::{SerializationMode, Status};

/// The bound on an admission exchange (connect, request, response) when no other is given:
/// [`request_admission`], [`request_producer_admission`](super::request_producer_admission)
/// and the default `timeout` of [`AdmissionOptions`]. 30 s, the reference's frame read timeout.
pub const DEFAULT_ADMISSION_TIMEOUT: Duration = crate::wire::limits::DEFAULT_FRAME_READ_TIMEOUT;

/// How an [`AsterClient`] gets admitted and which modes it can speak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdmissionOptions {
    /// The request to send (default: no credential, no IID token — open gate).
    pub request: ConsumerAdmissionRequest,
    /// Modes this client supports for mode selection, in no particular order (the producer's
    /// order decides). Default: [`DEFAULT_CLIENT_MODES`](crate::admission::DEFAULT_CLIENT_MODES)
    /// (XLANG and NATIVE). JSON is always available through [`AsterClient::channel_for_mode`].
    pub supported_modes: Vec<SerializationMode>,
    /// Bound on the admission exchange (connect, request, response); when it expires the
    /// result is `DEADLINE_EXCEEDED`. Default [`DEFAULT_ADMISSION_TIMEOUT`] (30 s); `None`
    /// waits as long as the connection lives.
    pub timeout: Option<Duration>,
}

impl Default for AdmissionOptions {
    fn default() -> Self {
        AdmissionOptions {
            request: ConsumerAdmissionRequest::open(),
            supported_modes: default_client_modes(),
            timeout: Some(DEFAULT_ADMISSION_TIMEOUT),
        }
    }
}

impl AdmissionOptions {
    /// Default options (open-gate request, default modes, 30 s).
    pub fn new() -> AdmissionOptions {
        AdmissionOptions::default()
    }

    /// Presents `credential_json` (the credential's JSON text) in the request.
    pub fn credential_json(mut self, credential_json: impl Into<String>) -> AdmissionOptions {
        self.request.credential_json = credential_json.into();
        self
    }

    /// Presents a consumer enrollment credential (`policy` or `ott`), in the admission wire
    /// form the reference client sends ([`ConsumerCredential::to_wire_json`]).
    pub fn credential(self, credential: &ConsumerCredential) -> AdmissionOptions {
        self.credential_json(credential.to_wire_json())
    }

    /// Presents the consumer credential stored in the file at `path`, read like the reference
    /// client's `enrollment_credential_file`: the JSON `aster trust sign --type policy|ott`
    /// writes (or the wire form), or an `.aster-identity` TOML file (its consumer entry).
    ///
    /// A missing or unreadable file is `NOT_FOUND`; a file that does not parse is
    /// `INVALID_ARGUMENT`. The credential is not verified here (the producer does that).
    pub fn credential_file(self, path: impl AsRef<Path>) -> Result<AdmissionOptions, Status> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Status::not_found(format!("credential file {}: {e}", path.display())))?;
        let credential = consumer_credential_from_file_text(&text)
            .map_err(|e| Status::invalid_argument(format!("credential file {}: {e}", path.display())))?;
        Ok(self.credential(&credential))
    }

    /// Sends a pre-fetched cloud instance-identity token with the request.
    pub fn iid_token(mut self, token: impl Into<String>) -> AdmissionOptions {
        self.request.iid_token = token.into();
        self
    }

    /// Sets the modes this client supports for mode selection.
    pub fn supported_modes(mut self, modes: impl IntoIterator<Item = SerializationMode>) -> AdmissionOptions {
        self.supported_modes = modes.into_iter().collect();
        self
    }

    /// Sets (or with `None` removes) the bound on the admission exchange.
    pub fn timeout(mut self, timeout: Option<Duration>) -> AdmissionOptions {
        self.timeout = timeout;
        self
    }
}

/// Runs one consumer-admission exchange with `addr`: a connection on ALPN
/// `aster.consumer_admission`, one bi-stream, the request JSON, finish, the response read to
/// its end (at most 64 KiB); the connection is closed afterwards. The whole exchange is bounded
/// by [`DEFAULT_ADMISSION_TIMEOUT`] (use [`AsterClient::connect_with`] for another bound).
///
/// Returns the response whether or not it admits. Errors: connect or stream failures and an
/// empty response `UNAVAILABLE` (with the peer's close reason, e.g. code 413 for an oversized
/// request); no response within the bound `DEADLINE_EXCEEDED`; a response over 64 KiB or over
/// the service/channel limits `RESOURCE_EXHAUSTED`; malformed JSON `INTERNAL`; an oversized
/// request `RESOURCE_EXHAUSTED` before anything is sent.
pub async fn request_admission(
    ep: &Endpoint,
    addr: impl Into<EndpointAddr>,
    request: &ConsumerAdmissionRequest,
) -> Result<ConsumerAdmissionResponse, Status> {
    consumer_admission(ep, addr.into(), request, Some(DEFAULT_ADMISSION_TIMEOUT)).await
}

/// [`request_admission`] under `timeout` (`None`: unbounded).
async fn consumer_admission(
    ep: &Endpoint,
    addr: EndpointAddr,
    request: &ConsumerAdmissionRequest,
    timeout: Option<Duration>,
) -> Result<ConsumerAdmissionResponse, Status> {
    let id = addr.id;
    let body = request.to_json()?;
    let raw = exchange(ep, addr, ALPN_CONSUMER_ADMISSION, "admission", &body, timeout).await?;
    if raw.is_empty() {
        return Err(Status::unavailable(format!("{id} ended the admission stream without a response")));
    }
    Ok(ConsumerAdmissionResponse::from_json(&raw)?)
}

/// One admission round trip with `addr` on `alpn` (`what` names it in errors): connect, a new
/// bi-stream, `body`, finish, and the answer read to its end (at most
/// [`MAX_ADMISSION_PAYLOAD`] bytes); the connection is closed afterwards. `timeout` bounds all
/// of it: when it expires the result is `DEADLINE_EXCEEDED`.
pub(super) async fn exchange(
    ep: &Endpoint,
    addr: EndpointAddr,
    alpn: &[u8],
    what: &str,
    body: &[u8],
    timeout: Option<Duration>,
) -> Result<Vec<u8>, Status> {
    let id = addr.id;
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let expired = || {
        Status::deadline_exceeded(format!("{what} with {id} did not complete within {:?}", timeout.unwrap_or_default()))
    };
    let conn = within(deadline, ep.connect(addr, alpn))
        .await
        .ok_or_else(expired)?
        .map_err(|e| Status::unavailable(format!("cannot connect to {id} for {what}: {e}")))?;
    let result = within(deadline, stream_exchange(&conn, what, body)).await;
    conn.close(0u32.into(), b"admission done");
    result.ok_or_else(expired)?
}

/// `fut`'s output, or `None` when `deadline` passes first.
async fn within<F: Future>(deadline: Option<Instant>, fut: F) -> Option<F::Output> {
    match deadline {
        None => Some(fut.await),
        Some(at) => tokio::time::timeout_at(at, fut).await.ok(),
    }
}

/// Writes `body` on a new bi-stream of `conn`, finishes, and reads the answer to its end.
async fn stream_exchange(conn: &Connection, what: &str, body: &[u8]) -> Result<Vec<u8>, Status> {
    let peer = conn.remote_id();
    let lost = |step: &str, e: &dyn fmt::Display| Status::unavailable(format!("{what} with {peer}: {step}: {e}"));
    let (mut send, mut recv) = conn.open_bi().await.map_err(|e| lost("cannot open a stream", &e))?;
    let written = async {
        send.write_all(body).await.map_err(|e| lost("cannot send the request", &e))?;
        send.finish().map_err(|e| lost("cannot finish the request", &e))
    }
    .await;
    let read = recv.read_to_end(MAX_ADMISSION_PAYLOAD).await;
    match (written, read) {
        (_, Ok(raw)) => Ok(raw),
        (_, Err(ReadToEndError::TooLong)) => Err(Status::resource_exhausted(format!(
            "{what} response from {peer} exceeds the limit of {MAX_ADMISSION_PAYLOAD} bytes"
        ))),
        // The read error carries the peer's close reason; prefer it to the write error.
        (_, Err(ReadToEndError::Read(e))) => Err(lost("no response", &e)),
    }
}

/// A client admitted by a producer: the admission response plus one [`Channel`] per RPC
/// address (dialed on first use and cached), each service called in its selected mode.
///
/// ```no_run
/// # use aster_runtime::client::{AsterClient, CallOptions};
/// # async fn demo(ep: iroh::Endpoint, addr: iroh::EndpointAddr) -> Result<(), aster_runtime::Status> {
/// let client = AsterClient::connect(&ep, addr).await?;
/// for s in client.services() {
///     println!("{} v{} {} modes {:?}", s.name, s.version, s.contract_id, s.serialization_modes);
/// }
/// let channel = client.channel_for("TaskManager").await?; // set to the selected mode
/// # drop(channel);
/// # Ok(()) }
/// ```
pub struct AsterClient {
    ep: Endpoint,
    addr: EndpointAddr,
    admission: ConsumerAdmissionResponse,
    supported: Vec<SerializationMode>,
    channels: Mutex<HashMap<String, Channel>>,
}

impl fmt::Debug for AsterClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsterClient")
            .field("peer", &self.addr.id)
            .field("services", &self.admission.services.iter().map(|s| &s.name).collect::<Vec<_>>())
            .field("supported_modes", &self.supported)
            .finish_non_exhaustive()
    }
}

impl AsterClient {
    /// Admission with default options (no credential: open gate) against `addr`.
    pub async fn connect(ep: &Endpoint, addr: impl Into<EndpointAddr>) -> Result<AsterClient, Status> {
        AsterClient::connect_with(ep, addr, AdmissionOptions::default()).await
    }

    /// Admission against an address string: an `aster1…` ticket, base64 NodeAddr bytes or a
    /// 64-hex EndpointId ([`parse_address`]).
    pub async fn connect_address(ep: &Endpoint, address: &str, opts: AdmissionOptions) -> Result<AsterClient, Status> {
        AsterClient::connect_with(ep, parse_address(address)?, opts).await
    }

    /// Runs admission with `opts`. A denial is `PERMISSION_DENIED` (with the reason when the
    /// producer sent one; the reference never does); no answer within `opts.timeout`
    /// `DEADLINE_EXCEEDED`.
    pub async fn connect_with(
        ep: &Endpoint,
        addr: impl Into<EndpointAddr>,
        opts: AdmissionOptions,
    ) -> Result<AsterClient, Status> {
        let addr = addr.into();
        let admission = consumer_admission(ep, addr.clone(), &opts.request, opts.timeout).await?;
        if !admission.admitted {
            let mut msg = format!("admission denied by {}", addr.id);
            if !admission.reason.is_empty() {
                msg.push_str(": ");
                msg.push_str(&admission.reason);
            }
            return Err(Status::permission_denied(msg));
        }
        tracing::debug!(
            peer = %addr.id.fmt_short(),
            services = ?admission.services.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            "admitted"
        );
        Ok(AsterClient {
            ep: ep.clone(),
            addr,
            admission,
            supported: opts.supported_modes,
            channels: Mutex::new(HashMap::new()),
        })
    }

    /// The producer's endpoint id (the peer admission was run with).
    pub fn peer(&self) -> EndpointId {
        self.addr.id
    }

    /// The admission response.
    pub fn admission(&self) -> &ConsumerAdmissionResponse {
        &self.admission
    }

    /// The services the producer offers.
    pub fn services(&self) -> &[ServiceSummaryJson] {
        &self.admission.services
    }

    /// The service named `name`; `NOT_FOUND` listing what is offered.
    pub fn service(&self, name: &str) -> Result<&ServiceSummaryJson, Status> {
        self.admission.service(name).ok_or_else(|| {
            let offered: Vec<&str> = self.admission.services.iter().map(|s| s.name.as_str()).collect();
            Status::not_found(format!("service '{name}' is not offered by {} (offered: {offered:?})", self.addr.id))
        })
    }

    /// The modes this client supports for mode selection.
    pub fn supported_modes(&self) -> &[SerializationMode] {
        &self.supported
    }

    /// The mode selected for `name` (§5.1): the first of the producer's modes this client
    /// supports (`[]` = XLANG); none shared → `FAILED_PRECONDITION`.
    pub fn mode_for(&self, name: &str) -> Result<SerializationMode, Status> {
        self.service(name)?.select_mode(&self.supported)
    }

    /// A channel to the service `name`, set to its selected mode ([`AsterClient::mode_for`]).
    pub async fn channel_for(&self, name: &str) -> Result<Channel, Status> {
        let mode = self.mode_for(name)?;
        self.channel_in(name, mode).await
    }

    /// A channel to the service `name` in an explicitly requested mode. JSON always works
    /// (servers accept it for every service); another mode must be one the producer lists
    /// for the service, else `FAILED_PRECONDITION`.
    pub async fn channel_for_mode(&self, name: &str, mode: SerializationMode) -> Result<Channel, Status> {
        let svc = self.service(name)?;
        if mode != SerializationMode::Json && !svc.producer_modes().contains(&mode) {
            return Err(Status::failed_precondition(format!(
                "service '{name}' is not offered in {mode} (producer modes: {:?})",
                svc.serialization_modes
            )));
        }
        self.channel_in(name, mode).await
    }

    /// Opens a session of the session-scoped service `name` on [`AsterClient::channel_for`]
    /// (its version from the admission response).
    pub async fn open_session(&self, name: &str, opts: CallOptions) -> Result<Session, Status> {
        let version = self.service(name)?.version;
        self.channel_for(name).await?.open_session(name, version, opts).await
    }

    /// Closes every cached RPC connection (channels handed out fail from now on).
    pub async fn close(&self) {
        for (_, ch) in self.channels.lock().await.drain() {
            ch.close();
        }
    }

    async fn channel_in(&self, name: &str, mode: SerializationMode) -> Result<Channel, Status> {
        let svc = self.service(name)?;
        let rpc = svc.rpc_address().ok_or_else(|| {
            Status::not_found(format!(
                "service '{name}' lists no '{RPC_CHANNEL}' channel (channels: {:?})",
                svc.channels.keys().collect::<Vec<_>>()
            ))
        })?;
        if let Some(ch) = self.cached_channel(rpc).await {
            return Ok(ch.with_mode(mode));
        }
        // Dial without holding the cache: other services' channels stay available meanwhile.
        let addr = self.rpc_addr(name, rpc)?;
        let dialed = Channel::connect(&self.ep, addr).await?;
        let mut cache = self.channels.lock().await;
        if let Some(ch) = cache.get(rpc)
            && ch.connection().close_reason().is_none()
        {
            // Another task dialed the same address meanwhile: keep one connection.
            let ch = ch.clone();
            drop(cache);
            dialed.close();
            return Ok(ch.with_mode(mode));
        }
        cache.insert(rpc.to_owned(), dialed.clone());
        Ok(dialed.with_mode(mode))
    }

    /// The cached channel to the RPC address `rpc`, unless there is none or it was closed.
    async fn cached_channel(&self, rpc: &str) -> Option<Channel> {
        let cache = self.channels.lock().await;
        cache.get(rpc).filter(|ch| ch.connection().close_reason().is_none()).cloned()
    }

    /// The dialable address of a `channels["rpc"]` value; for the producer itself, the
    /// addresses admission used are added (the advertised list may lack a reachable one).
    fn rpc_addr(&self, name: &str, rpc: &str) -> Result<EndpointAddr, Status> {
        let text = NodeAddrText::from_base64(rpc)
            .map_err(|e| Status::internal(format!("service '{name}': invalid '{RPC_CHANNEL}' address: {e}")))?;
        let mut addr = text.to_endpoint_addr()?;
        if addr.id == self.addr.id {
            addr = addr.with_addrs(self.addr.addrs.iter().cloned());
        }
        Ok(addr)
    }
}
