//! [`CallContext`]: what a handler knows about the call it is serving.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::EndpointId;
use tokio_util::sync::CancellationToken;

/// Per-call information handed to every handler: identity of the caller, deadline,
/// metadata and cancellation.
///
/// Cancellation covers the caller resetting the stream, a CANCEL frame in a session, the
/// deadline passing, and node shutdown after the grace period. Handlers that do long work
/// should watch [`CallContext::cancelled`]; the runtime also drops the handler's future when
/// the call is cancelled.
#[derive(Clone, Debug)]
pub struct CallContext {
    inner: Arc<CallInfo>,
    cancel: CancellationToken,
}

/// What a [`CallContext`] shares between its clones. The runtime builds it directly, with the
/// descriptors' `'static` service and method names (no allocation per call for them).
#[derive(Debug)]
pub(crate) struct CallInfo {
    pub(crate) service: Cow<'static, str>,
    pub(crate) method: Cow<'static, str>,
    pub(crate) call_id: String,
    pub(crate) session_id: Option<String>,
    pub(crate) peer: EndpointId,
    pub(crate) deadline: Option<Instant>,
    pub(crate) deadline_epoch_ms: i64,
    pub(crate) metadata: Vec<(String, String)>,
    pub(crate) attributes: Vec<(String, String)>,
}

/// Builder-style constructor arguments for a [`CallContext`] (used by the runtime and tests).
#[derive(Clone, Debug)]
pub struct CallContextParts {
    /// Service name.
    pub service: String,
    /// Method name.
    pub method: String,
    /// `callId` from the header (may be empty for unary calls).
    pub call_id: String,
    /// Session id for session-scoped services.
    pub session_id: Option<String>,
    /// The caller's endpoint id (the verified QUIC peer).
    pub peer: EndpointId,
    /// When the call must be finished (already capped by the runtime).
    pub deadline: Option<Instant>,
    /// The wire deadline, milliseconds since the Unix epoch (0 = none).
    pub deadline_epoch_ms: i64,
    /// Request metadata in wire order.
    pub metadata: Vec<(String, String)>,
    /// Verified attributes of the caller (empty in open-gate mode).
    pub attributes: Vec<(String, String)>,
}

impl CallContext {
    /// Creates a context with its own cancellation token.
    pub fn new(parts: CallContextParts, cancel: CancellationToken) -> Self {
        CallContext {
            inner: Arc::new(CallInfo {
                service: Cow::Owned(parts.service),
                method: Cow::Owned(parts.method),
                call_id: parts.call_id,
                session_id: parts.session_id,
                peer: parts.peer,
                deadline: parts.deadline,
                deadline_epoch_ms: parts.deadline_epoch_ms,
                metadata: parts.metadata,
                attributes: parts.attributes,
            }),
            cancel,
        }
    }

    /// The runtime's constructor (see [`CallInfo`]).
    pub(crate) fn from_info(info: CallInfo, cancel: CancellationToken) -> Self {
        CallContext { inner: Arc::new(info), cancel }
    }

    /// The service name.
    pub fn service(&self) -> &str {
        &self.inner.service
    }

    /// The method name.
    pub fn method(&self) -> &str {
        &self.inner.method
    }

    /// The call id the client sent (empty for unary calls from the reference client).
    pub fn call_id(&self) -> &str {
        &self.inner.call_id
    }

    /// The session id, for calls of a session-scoped service.
    pub fn session_id(&self) -> Option<&str> {
        self.inner.session_id.as_deref()
    }

    /// The caller's endpoint id (its public key, verified by QUIC/TLS).
    pub fn peer(&self) -> EndpointId {
        self.inner.peer
    }

    /// The instant by which the call must complete, if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.inner.deadline
    }

    /// The deadline as sent on the wire (ms since the Unix epoch; 0 = none).
    pub fn deadline_epoch_ms(&self) -> i64 {
        self.inner.deadline_epoch_ms
    }

    /// Time left until the deadline (`None` = no deadline; zero when passed).
    pub fn remaining(&self) -> Option<Duration> {
        self.inner.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// All metadata entries in wire order.
    pub fn metadata(&self) -> &[(String, String)] {
        &self.inner.metadata
    }

    /// The first metadata value for `key`.
    pub fn metadata_value(&self, key: &str) -> Option<&str> {
        self.inner.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The caller's verified attributes (from admission; empty in open-gate mode).
    pub fn attributes(&self) -> &[(String, String)] {
        &self.inner.attributes
    }

    /// True once the call is cancelled (caller reset, CANCEL, deadline, shutdown).
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the call is cancelled.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// The cancellation token of this call.
    pub fn cancellation_token(&self) -> &CancellationToken {
        &self.cancel
    }
}
