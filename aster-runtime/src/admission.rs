//! Consumer admission messages (ALPN `aster.consumer_admission`, protocol reference §2.3, §7.3)
//! and client-side serialization-mode selection (§5.1). Pure: no IO.
//!
//! The exchange is one QUIC bi-stream: the consumer writes one [`ConsumerAdmissionRequest`]
//! JSON object and finishes; the producer reads it to the end (at most
//! [`MAX_ADMISSION_PAYLOAD`] bytes), answers one [`ConsumerAdmissionResponse`] JSON object and
//! finishes. The response lists the services with their contract ids, the address of their
//! RPC connection (`channels["rpc"]`, base64 "NodeAddr bytes") and their serialization modes.
//!
//! JSON is written exactly as the reference writes it (`json.dumps(…, separators=(",", ":"))`):
//! compact, keys in the reference's order, and every character outside printable ASCII
//! escaped as `\uXXXX` (Python's default `ensure_ascii=True`), so a response re-encoded from
//! the golden capture is byte-identical. Decoding is as lenient as the reference where it is
//! lenient (unknown keys ignored, `null` or missing optional fields read as defaults) and
//! strict about sizes: a payload over 64 KiB, more than 10 000 services or more than 100
//! channels per service is an [`AdmissionError`].

use std::collections::BTreeMap;
use std::fmt;
use std::io;

use serde::{Deserialize, Deserializer, Serialize};

use crate::{SerializationMode, Status};

/// Largest admission request or response, in bytes (the reference reads with
/// `read_to_end(64 * 1024)`).
pub const MAX_ADMISSION_PAYLOAD: usize = 64 * 1024;

/// Most services in one admission response (`MAX_SERVICES_IN_ADMISSION`).
pub const MAX_SERVICES_IN_ADMISSION: usize = 10_000;

/// Most channels of one service in an admission response (`MAX_CHANNELS_PER_SERVICE`).
pub const MAX_CHANNELS_PER_SERVICE: usize = 100;

/// The channel name under which a service's RPC address is listed.
pub const RPC_CHANNEL: &str = "rpc";

/// The modes a Rust client supports for mode selection by default: XLANG and NATIVE, the Fory
/// modes `#[derive(AsterType)]` message types implement. JSON is not in the list: it is the
/// universal fallback a caller asks for explicitly
/// ([`AsterClient::channel_for_mode`](crate::client::AsterClient::channel_for_mode)).
pub const DEFAULT_CLIENT_MODES: &[SerializationMode] = &[SerializationMode::Xlang, SerializationMode::Native];

// ───────────────────────────── errors ─────────────────────────────

/// Why an admission message could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The payload is larger than [`MAX_ADMISSION_PAYLOAD`].
    #[error("admission payload of {len} bytes exceeds the limit of {MAX_ADMISSION_PAYLOAD} bytes")]
    PayloadTooLarge {
        /// The payload's size.
        len: usize,
    },
    /// More than [`MAX_SERVICES_IN_ADMISSION`] services.
    #[error("admission response lists {count} services, more than the limit of {MAX_SERVICES_IN_ADMISSION}")]
    TooManyServices {
        /// How many services the response lists.
        count: usize,
    },
    /// A service with more than [`MAX_CHANNELS_PER_SERVICE`] channels.
    #[error("service '{service}' lists {count} channels, more than the limit of {MAX_CHANNELS_PER_SERVICE}")]
    TooManyChannels {
        /// The service's name.
        service: String,
        /// How many channels it lists.
        count: usize,
    },
    /// The payload is not valid JSON of the expected shape.
    #[error("malformed admission {what}: {source}")]
    Json {
        /// `"request"` or `"response"`.
        what: &'static str,
        /// The parser's error.
        source: serde_json::Error,
    },
}

impl AdmissionError {
    /// The status a peer's malformed or oversized admission message maps to:
    /// RESOURCE_EXHAUSTED for the size limits, INTERNAL for malformed JSON.
    pub fn to_status(&self) -> Status {
        match self {
            AdmissionError::Json { .. } => Status::internal(self.to_string()),
            _ => Status::resource_exhausted(self.to_string()),
        }
    }
}

impl From<AdmissionError> for Status {
    fn from(e: AdmissionError) -> Status {
        e.to_status()
    }
}

// ───────────────────────────── request ─────────────────────────────

/// What a consumer sends on `aster.consumer_admission`:
/// `{"credential_json":"<credential JSON as a string>","iid_token":""}`.
///
/// An empty `credential_json` means "no credential" (what open-gate clients send).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerAdmissionRequest {
    /// The consumer's enrollment credential as a JSON text (empty: none). A `null` on the wire
    /// reads as empty, as in the reference.
    #[serde(deserialize_with = "null_as_default")]
    pub credential_json: String,
    /// A cloud instance-identity token (empty: none). Optional on the wire.
    #[serde(default, deserialize_with = "null_as_default")]
    pub iid_token: String,
}

impl ConsumerAdmissionRequest {
    /// The request of an open-gate client: no credential, no IID token.
    pub fn open() -> ConsumerAdmissionRequest {
        ConsumerAdmissionRequest::default()
    }

    /// The JSON bytes, as the reference writes them.
    pub fn to_json(&self) -> Result<Vec<u8>, AdmissionError> {
        let out = to_python_json(self);
        check_len(out.len())?;
        Ok(out)
    }

    /// Parses a request (at most [`MAX_ADMISSION_PAYLOAD`] bytes). Unknown keys are ignored;
    /// `credential_json` must be present.
    pub fn from_json(bytes: &[u8]) -> Result<ConsumerAdmissionRequest, AdmissionError> {
        check_len(bytes.len())?;
        serde_json::from_slice(bytes).map_err(|source| AdmissionError::Json { what: "request", source })
    }
}

// ───────────────────────────── response ─────────────────────────────

/// One service in an admission response (the reference's `ServiceSummary.to_json_dict`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSummaryJson {
    /// Wire name of the service.
    pub name: String,
    /// Its version.
    pub version: i64,
    /// The contract id (64 hex digits; empty for a Rust service without a contract).
    pub contract_id: String,
    /// Channel name → base64 "NodeAddr bytes" of the connection to use; the reference
    /// always lists exactly one channel, [`RPC_CHANNEL`].
    #[serde(default, deserialize_with = "null_as_default")]
    pub channels: BTreeMap<String, String>,
    /// `"shared"` or `"session"` (missing or `null`: `"shared"`).
    #[serde(default = "shared_pattern", deserialize_with = "null_as_shared")]
    pub pattern: String,
    /// The producer's serialization modes in preference order (`"xlang"`, `"native"`,
    /// `"row"`, `"json"`); empty means XLANG (what Python producers send).
    #[serde(default, deserialize_with = "null_as_default")]
    pub serialization_modes: Vec<String>,
}

fn shared_pattern() -> String {
    "shared".to_owned()
}

impl ServiceSummaryJson {
    /// True for a session-scoped service (`pattern == "session"`).
    pub fn is_session(&self) -> bool {
        self.pattern == "session"
    }

    /// The base64 RPC address (`channels["rpc"]`), if listed.
    pub fn rpc_address(&self) -> Option<&str> {
        self.channels.get(RPC_CHANNEL).map(String::as_str)
    }

    /// The producer's modes as [`SerializationMode`]s, in its order: an empty list means
    /// `[Xlang]`; strings that name no mode are skipped.
    pub fn producer_modes(&self) -> Vec<SerializationMode> {
        if self.serialization_modes.is_empty() {
            return vec![SerializationMode::Xlang];
        }
        let mut out = Vec::new();
        for s in &self.serialization_modes {
            if let Some(m) = mode_from_str(s)
                && !out.contains(&m)
            {
                out.push(m);
            }
        }
        out
    }

    /// Mode selection (protocol §5.1): walks the producer's list in order and returns the
    /// first mode in `client_modes`. None in common → FAILED_PRECONDITION naming both lists.
    pub fn select_mode(&self, client_modes: &[SerializationMode]) -> Result<SerializationMode, Status> {
        let producer = self.producer_modes();
        producer.iter().copied().find(|m| client_modes.contains(m)).ok_or_else(|| {
            Status::failed_precondition(format!(
                "service '{}' v{}: no serialization mode in common (producer offers [{}], this client \
                 supports [{}]); request JSON explicitly to use the universal fallback",
                self.name,
                self.version,
                join_modes(&producer),
                join_modes(client_modes)
            ))
        })
    }
}

/// What the producer answers on `aster.consumer_admission`.
///
/// On the wire `reason` is always empty (the reference never tells a denied consumer why);
/// `gossip_topic` is written only when non-empty (the reference sends it only to the root
/// node's own shell).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConsumerAdmissionResponse {
    /// Whether the consumer was admitted.
    pub admitted: bool,
    /// The consumer's attributes from its credential (open gate: empty). Written in key order.
    pub attributes: BTreeMap<String, String>,
    /// The services the consumer may call (empty when denied).
    pub services: Vec<ServiceSummaryJson>,
    /// The producer's registry document namespace (64 hex), or empty.
    pub registry_namespace: String,
    /// The deployment's root public key (64 hex), or empty.
    pub root_pubkey: String,
    /// Diagnostic reason (empty on the wire).
    pub reason: String,
    /// Producer-mesh gossip topic (64 hex), only for the root node; empty: not written.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gossip_topic: String,
}

/// Decoding shape of a response: optional fields, `null` as default, the reference's legacy
/// `registry_ticket` key.
#[derive(Deserialize)]
struct ResponseIn {
    admitted: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    attributes: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    services: Vec<ServiceSummaryJson>,
    #[serde(default, deserialize_with = "null_as_default")]
    registry_namespace: String,
    #[serde(default, deserialize_with = "null_as_default")]
    registry_ticket: String,
    #[serde(default, deserialize_with = "null_as_default")]
    root_pubkey: String,
    #[serde(default, deserialize_with = "null_as_default")]
    reason: String,
    #[serde(default, deserialize_with = "null_as_default")]
    gossip_topic: String,
}

impl ConsumerAdmissionResponse {
    /// A denial as the reference sends it: nothing but `admitted: false` (and the root key).
    pub fn denied(root_pubkey: impl Into<String>) -> ConsumerAdmissionResponse {
        ConsumerAdmissionResponse { root_pubkey: root_pubkey.into(), ..Default::default() }
    }

    /// The service named `name` (the first listed, if several versions are).
    pub fn service(&self, name: &str) -> Option<&ServiceSummaryJson> {
        self.services.iter().find(|s| s.name == name)
    }

    /// Checks the service and channel limits.
    pub fn check_limits(&self) -> Result<(), AdmissionError> {
        if self.services.len() > MAX_SERVICES_IN_ADMISSION {
            return Err(AdmissionError::TooManyServices { count: self.services.len() });
        }
        for s in &self.services {
            if s.channels.len() > MAX_CHANNELS_PER_SERVICE {
                return Err(AdmissionError::TooManyChannels { service: s.name.clone(), count: s.channels.len() });
            }
        }
        Ok(())
    }

    /// The JSON bytes, byte-for-byte as the reference writes them. Fails when a limit is
    /// exceeded (the encoded size included: a consumer would not read more than 64 KiB).
    pub fn to_json(&self) -> Result<Vec<u8>, AdmissionError> {
        self.check_limits()?;
        let out = to_python_json(self);
        check_len(out.len())?;
        Ok(out)
    }

    /// Parses a response, enforcing the limits.
    pub fn from_json(bytes: &[u8]) -> Result<ConsumerAdmissionResponse, AdmissionError> {
        check_len(bytes.len())?;
        let raw: ResponseIn =
            serde_json::from_slice(bytes).map_err(|source| AdmissionError::Json { what: "response", source })?;
        let registry_namespace =
            if raw.registry_namespace.is_empty() { raw.registry_ticket } else { raw.registry_namespace };
        let resp = ConsumerAdmissionResponse {
            admitted: raw.admitted,
            attributes: raw.attributes,
            services: raw.services,
            registry_namespace,
            root_pubkey: raw.root_pubkey,
            reason: raw.reason,
            gossip_topic: raw.gossip_topic,
        };
        resp.check_limits()?;
        Ok(resp)
    }
}

// ───────────────────────────── modes ─────────────────────────────

/// Parses a contract mode string (`"xlang"`, `"native"`, `"row"`, `"json"`, ASCII case
/// ignored).
pub fn mode_from_str(s: &str) -> Option<SerializationMode> {
    SerializationMode::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
}

/// The contract strings of `modes`, in order.
pub fn mode_strings(modes: &[SerializationMode]) -> Vec<String> {
    modes.iter().map(|m| m.as_str().to_owned()).collect()
}

/// [`DEFAULT_CLIENT_MODES`] as a list.
pub fn default_client_modes() -> Vec<SerializationMode> {
    DEFAULT_CLIENT_MODES.to_vec()
}

/// What a Rust producer advertises in `serialization_modes` for a service that accepts
/// `accepted` (`ServiceDescriptor::serialization`: the declared contract modes in their
/// order, then what the runtime adds — NATIVE for `#[service]`): those modes in that order,
/// without ROW (not implemented) and duplicates, then `"json"` (always accepted).
///
/// A `#[service]` declaring `[xlang]` advertises `["xlang", "native", "json"]`:
/// * Python 0.1.2 typed clients keep XLANG: they switch to their JSON codec only when the list
///   has `"json"` but not `"xlang"`, and that switch is unusable against any server (the typed
///   stub still sends `serializationMode` XLANG with JSON payloads, and cannot JSON-encode
///   `bytes` fields), so the list must contain `"xlang"` whenever the service serves it;
/// * spec-following clients (§5.1: the producer's order decides) pick XLANG before NATIVE, so a
///   non-Rust client that knows a "native" mode of its own never picks Rust's;
/// * Rust clients pick XLANG too unless told to prefer otherwise ([`AdmissionOptions`]);
///   NATIVE stays available explicitly.
///
/// [`AdmissionOptions`]: crate::client::AdmissionOptions
pub fn advertised_modes(accepted: &[SerializationMode]) -> Vec<SerializationMode> {
    let mut out: Vec<SerializationMode> = Vec::with_capacity(accepted.len() + 1);
    for &m in accepted {
        if !matches!(m, SerializationMode::Row | SerializationMode::Json) && !out.contains(&m) {
            out.push(m);
        }
    }
    out.push(SerializationMode::Json);
    out
}

fn join_modes(modes: &[SerializationMode]) -> String {
    modes.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
}

// ───────────────────────────── JSON helpers ─────────────────────────────

fn check_len(len: usize) -> Result<(), AdmissionError> {
    if len > MAX_ADMISSION_PAYLOAD { Err(AdmissionError::PayloadTooLarge { len }) } else { Ok(()) }
}

/// `null` (or a missing field with `#[serde(default)]`) reads as `T::default()`, like the
/// reference's `d.get(key) or default`.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn null_as_shared<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.filter(|s| !s.is_empty()).unwrap_or_else(shared_pattern))
}

/// Serializes like Python's `json.dumps(v, separators=(",", ":"))`: compact, and every
/// character outside printable ASCII (`' '..='~'`) escaped as `\uXXXX` (lowercase hex,
/// surrogate pairs above U+FFFF). Control characters use the same escapes as serde_json.
fn to_python_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonAsciiFormatter);
    // Serializing plain structs of strings, numbers, maps and lists into a Vec cannot fail.
    if let Err(e) = value.serialize(&mut ser) {
        tracing::error!(%e, "admission JSON encoding failed");
    }
    out
}

/// serde_json formatter reproducing Python's `ensure_ascii=True` output. serde_json has
/// already escaped the control characters, `"` and `\\` when it hands over a fragment.
struct PythonAsciiFormatter;

impl serde_json::ser::Formatter for PythonAsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        if !fragment.chars().any(python_ascii_escapes) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut escaped = String::with_capacity(fragment.len() + 16);
        push_python_ascii(&mut escaped, fragment);
        writer.write_all(escaped.as_bytes())
    }
}

/// Whether Python's `json.dumps(…, ensure_ascii=True)` writes the string character `c` as a
/// `\\uxxxx` escape: every character from U+007F (DEL) up. Python escapes everything outside
/// printable ASCII (`' '..='~'`); the C0 controls, `"` and `\\` have escapes of their own,
/// which every JSON writer of this crate applies before this rule. The one rule behind the
/// admission messages, the trust documents and the contract manifest.
pub(crate) fn python_ascii_escapes(c: char) -> bool {
    u32::from(c) >= 0x7f
}

/// Appends `c` as a `\\uxxxx` escape per UTF-16 code unit (lowercase hex, a surrogate pair
/// above U+FFFF), the form Python's `json.dumps` writes.
pub(crate) fn push_python_u_escape(out: &mut String, c: char) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        out.push_str("\\u");
        for shift in [12, 8, 4, 0] {
            out.push(char::from(DIGITS[usize::from((*unit >> shift) & 0xf)]));
        }
    }
}

/// Appends `text` with every character [`python_ascii_escapes`] selects written by
/// [`push_python_u_escape`], the others as they are.
pub(crate) fn push_python_ascii(out: &mut String, text: &str) {
    for c in text.chars() {
        if python_ascii_escapes(c) {
            push_python_u_escape(out, c);
        } else {
            out.push(c);
        }
    }
}

impl fmt::Display for ConsumerAdmissionResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&to_python_json(self)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::transport::NodeAddrText;

    const TM_ID: &str = "564f108daa850392179f626568b5c919cad3bf5996d3a41ec13229ee2b65120e";
    const TS_ID: &str = "ada0e1fe5cded36e3151dd4c0f7820ae1e662d4e3bda5dfccd834808a80c609f";

    fn golden(name: &str) -> Vec<u8> {
        crate::test_vectors::read(&format!("golden/admission_open_gate.{name}.bin"))
    }

    #[test]
    fn golden_request_round_trips() {
        let raw = golden("c2s");
        let req = ConsumerAdmissionRequest::from_json(&raw).unwrap();
        assert_eq!(req, ConsumerAdmissionRequest::open());
        assert_eq!(req.to_json().unwrap(), raw);
        assert_eq!(ConsumerAdmissionRequest::open().to_json().unwrap(), br#"{"credential_json":"","iid_token":""}"#);
    }

    #[test]
    fn golden_response_parses_and_re_encodes_byte_for_byte() {
        let raw = golden("s2c");
        let resp = ConsumerAdmissionResponse::from_json(&raw).unwrap();
        assert!(resp.admitted);
        assert!(resp.attributes.is_empty());
        assert_eq!(resp.reason, "");
        assert_eq!(resp.gossip_topic, "");
        assert_eq!(resp.registry_namespace, "fab739afab0d7ce42ee2fc5c6a0a6046adbcb8249825bfcf5a03caa7c9325136");
        assert_eq!(resp.root_pubkey, "95e8d61a051530c3d1d16554efa37801e0eb2ab557c046c4961202134858d200");
        let names: Vec<_> = resp.services.iter().map(|s| (s.name.as_str(), s.version, s.pattern.as_str())).collect();
        assert_eq!(names, [("TaskManager", 1, "shared"), ("TaskSession", 1, "session")]);
        assert_eq!(resp.service("TaskManager").unwrap().contract_id, TM_ID);
        assert_eq!(resp.service("TaskSession").unwrap().contract_id, TS_ID);
        assert!(resp.service("TaskSession").unwrap().is_session());
        for s in &resp.services {
            assert!(s.serialization_modes.is_empty());
            assert_eq!(s.producer_modes(), [SerializationMode::Xlang]);
            let addr = NodeAddrText::from_base64(s.rpc_address().unwrap()).unwrap();
            assert_eq!(addr.direct_addrs.len(), 2);
        }
        assert_eq!(resp.to_json().unwrap(), raw);
        assert_eq!(resp.to_string().as_bytes(), raw.as_slice());
    }

    /// A response built from scratch with the capture's values encodes to the capture's bytes.
    #[test]
    fn built_response_matches_the_capture() {
        let raw = golden("s2c");
        let parsed = ConsumerAdmissionResponse::from_json(&raw).unwrap();
        let rpc = parsed.services[0].rpc_address().unwrap().to_owned();
        let svc = |name: &str, id: &str, pattern: &str| ServiceSummaryJson {
            name: name.into(),
            version: 1,
            contract_id: id.into(),
            channels: BTreeMap::from([(RPC_CHANNEL.to_owned(), rpc.clone())]),
            pattern: pattern.into(),
            serialization_modes: vec![],
        };
        let built = ConsumerAdmissionResponse {
            admitted: true,
            attributes: BTreeMap::new(),
            services: vec![svc("TaskManager", TM_ID, "shared"), svc("TaskSession", TS_ID, "session")],
            registry_namespace: parsed.registry_namespace.clone(),
            root_pubkey: parsed.root_pubkey.clone(),
            reason: String::new(),
            gossip_topic: String::new(),
        };
        assert_eq!(built.to_json().unwrap(), raw);
    }

    #[test]
    fn denial_matches_the_reference_shape() {
        let d = ConsumerAdmissionResponse::denied("ab".repeat(32));
        let want = format!(
            r#"{{"admitted":false,"attributes":{{}},"services":[],"registry_namespace":"","root_pubkey":"{}","reason":""}}"#,
            "ab".repeat(32)
        );
        assert_eq!(String::from_utf8(d.to_json().unwrap()).unwrap(), want);
    }

    #[test]
    fn gossip_topic_and_attributes_in_reference_order() {
        let r = ConsumerAdmissionResponse {
            admitted: true,
            attributes: BTreeMap::from([("aster.role".into(), "ops".into()), ("aster.name".into(), "ä".into())]),
            gossip_topic: "00".into(),
            ..Default::default()
        };
        assert_eq!(
            String::from_utf8(r.to_json().unwrap()).unwrap(),
            r#"{"admitted":true,"attributes":{"aster.name":"\u00e4","aster.role":"ops"},"services":[],"registry_namespace":"","root_pubkey":"","reason":"","gossip_topic":"00"}"#
        );
    }

    /// Python's `json.dumps` escapes everything outside `' '..='~'`: DEL, non-ASCII (UTF-16
    /// surrogate pairs above the BMP), control characters.
    #[test]
    fn strings_are_escaped_like_python_ensure_ascii() {
        let req = ConsumerAdmissionRequest {
            credential_json: "{\"a\":\"é\u{7f}\u{1F600}\n\t\u{1}\\/\"}".into(),
            iid_token: "€".into(),
        };
        let json = String::from_utf8(req.to_json().unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"credential_json":"{\"a\":\"\u00e9\u007f\ud83d\ude00\n\t\u0001\\/\"}","iid_token":"\u20ac"}"#
        );
        assert_eq!(ConsumerAdmissionRequest::from_json(json.as_bytes()).unwrap(), req);
    }

    /// The shared rule: DEL and everything above it, in Python's exact spelling.
    #[test]
    fn python_ascii_escaping_rule() {
        let mut out = String::new();
        push_python_ascii(&mut out, " ~\u{7f}\u{80}é\u{ffff}\u{10000}\n");
        assert_eq!(out, " ~\\u007f\\u0080\\u00e9\\uffff\\ud800\\udc00\n");
        assert!(!python_ascii_escapes('~') && python_ascii_escapes('\u{7f}'));
    }

    #[test]
    fn lenient_where_the_reference_is() {
        // null / missing optional fields, unknown keys
        let req = ConsumerAdmissionRequest::from_json(br#"{"credential_json":null,"extra":1}"#).unwrap();
        assert_eq!(req, ConsumerAdmissionRequest::open());
        let r = ConsumerAdmissionResponse::from_json(
            br#"{"admitted":true,"attributes":null,"services":[{"name":"S","version":2,"contract_id":"c","channels":null,"pattern":null,"serialization_modes":null,"x":0}],"registry_ticket":"ns","future":[1]}"#,
        )
        .unwrap();
        assert_eq!(r.registry_namespace, "ns");
        assert_eq!(r.services[0].pattern, "shared");
        assert!(r.services[0].channels.is_empty());
        assert_eq!(r.services[0].rpc_address(), None);
        let r = ConsumerAdmissionResponse::from_json(br#"{"admitted":false}"#).unwrap();
        assert!(!r.admitted && r.services.is_empty());
    }

    #[test]
    fn malformed_messages_are_errors() {
        for bad in [&b""[..], b"[]", b"{}", b"{\"iid_token\":\"\"}", b"{\"credential_json\":5}", b"\xff"] {
            let e = ConsumerAdmissionRequest::from_json(bad).unwrap_err();
            assert!(matches!(e, AdmissionError::Json { what: "request", .. }), "{bad:?}: {e}");
            assert_eq!(e.to_status().code(), crate::Code::Internal);
        }
        for bad in [&b"{}"[..], b"{\"admitted\":\"yes\"}", b"{\"admitted\":true,\"services\":[{\"name\":\"x\"}]}"] {
            let e = ConsumerAdmissionResponse::from_json(bad).unwrap_err();
            assert!(matches!(e, AdmissionError::Json { what: "response", .. }), "{bad:?}: {e}");
        }
    }

    #[test]
    fn size_limits() {
        // payload: exactly 64 KiB is fine, one byte more is not (checked before parsing)
        let pad = |n: usize| {
            let mut v = br#"{"credential_json":""#.to_vec();
            let tail = br#"","iid_token":""}"#;
            v.resize(n - tail.len(), b'x');
            v.extend_from_slice(tail);
            v
        };
        assert!(ConsumerAdmissionRequest::from_json(&pad(MAX_ADMISSION_PAYLOAD)).is_ok());
        let e = ConsumerAdmissionRequest::from_json(&pad(MAX_ADMISSION_PAYLOAD + 1)).unwrap_err();
        assert!(matches!(e, AdmissionError::PayloadTooLarge { len } if len == MAX_ADMISSION_PAYLOAD + 1));
        assert_eq!(e.to_status().code(), crate::Code::ResourceExhausted);
        assert!(e.to_string().contains("65536"), "{e}");
        let big = ConsumerAdmissionRequest { credential_json: "x".repeat(MAX_ADMISSION_PAYLOAD), ..Default::default() };
        assert!(matches!(big.to_json(), Err(AdmissionError::PayloadTooLarge { .. })));

        // services
        let svc = ServiceSummaryJson {
            name: "S".into(),
            version: 1,
            contract_id: String::new(),
            channels: BTreeMap::new(),
            pattern: "shared".into(),
            serialization_modes: vec![],
        };
        let mut r = ConsumerAdmissionResponse {
            admitted: true,
            services: vec![svc.clone(); MAX_SERVICES_IN_ADMISSION + 1],
            ..Default::default()
        };
        let e = r.to_json().unwrap_err();
        assert!(matches!(e, AdmissionError::TooManyServices { count: 10_001 }), "{e}");
        // On decode the 64 KiB cap comes first: 10 001 services never fit in it.
        let one = r#"{"name":"","version":0,"contract_id":""}"#;
        let text =
            format!(r#"{{"admitted":true,"services":[{}]}}"#, vec![one; MAX_SERVICES_IN_ADMISSION + 1].join(","));
        assert!(matches!(
            ConsumerAdmissionResponse::from_json(text.as_bytes()),
            Err(AdmissionError::PayloadTooLarge { .. })
        ));

        // channels
        r.services = vec![svc];
        r.services[0].channels = (0..=MAX_CHANNELS_PER_SERVICE).map(|i| (format!("c{i}"), String::new())).collect();
        let e = r.to_json().unwrap_err();
        assert!(matches!(&e, AdmissionError::TooManyChannels { service, count: 101 } if service == "S"), "{e}");
        let text = String::from_utf8(to_python_json(&r)).unwrap();
        let e = ConsumerAdmissionResponse::from_json(text.as_bytes()).unwrap_err();
        assert!(matches!(e, AdmissionError::TooManyChannels { .. }), "{e}");
        r.services[0].channels.pop_first();
        assert!(r.to_json().is_ok());
    }

    fn summary(modes: &[&str]) -> ServiceSummaryJson {
        ServiceSummaryJson {
            name: "TaskManager".into(),
            version: 1,
            contract_id: TM_ID.into(),
            channels: BTreeMap::new(),
            pattern: "shared".into(),
            serialization_modes: modes.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn mode_selection_walks_the_producer_list() {
        use SerializationMode::*;
        // [] means XLANG
        assert_eq!(summary(&[]).select_mode(&[Xlang, Native]).unwrap(), Xlang);
        // producer order wins over client order
        assert_eq!(summary(&["native", "xlang"]).select_mode(&[Xlang, Native]).unwrap(), Native);
        assert_eq!(summary(&["xlang", "native", "json"]).select_mode(&[Native, Xlang]).unwrap(), Xlang);
        // unknown strings skipped, case ignored
        assert_eq!(summary(&["cbor", "JSON"]).select_mode(&[Json]).unwrap(), Json);
        assert_eq!(summary(&["native", "json"]).select_mode(&default_client_modes()).unwrap(), Native);
        assert_eq!(
            summary(&["json"]).select_mode(&default_client_modes()).unwrap_err().code(),
            crate::Code::FailedPrecondition
        );
        // nothing shared
        let e = summary(&[]).select_mode(&[Native]).unwrap_err();
        assert_eq!(e.code(), crate::Code::FailedPrecondition);
        assert!(e.message().contains("producer offers [xlang]") && e.message().contains("supports [native]"), "{e}");
        let e = summary(&["row"]).select_mode(&[]).unwrap_err();
        assert_eq!(e.code(), crate::Code::FailedPrecondition);
        assert_eq!(summary(&["bogus"]).producer_modes(), []);
    }

    #[test]
    fn what_a_rust_producer_advertises() {
        use SerializationMode::*;
        // a #[service] declaring [xlang] (the runtime adds NATIVE)
        assert_eq!(advertised_modes(&[Xlang, Native]), [Xlang, Native, Json]);
        assert_eq!(advertised_modes(&[Native, Xlang]), [Native, Xlang, Json]);
        assert_eq!(advertised_modes(&[Json]), [Json]);
        assert_eq!(advertised_modes(&[Json, Native]), [Native, Json]);
        assert_eq!(advertised_modes(&[Row, Native, Native]), [Native, Json]);
        assert_eq!(advertised_modes(&[]), [Json]);
        assert_eq!(mode_strings(&advertised_modes(&[Xlang, Native])), ["xlang", "native", "json"]);
        // A Python 0.1.2 typed client switches to its JSON codec exactly when the list has
        // "json" but not "xlang" (runtime.py AsterClient.client): it keeps XLANG here.
        let advertised = mode_strings(&advertised_modes(&[Xlang, Native]));
        let python_switches_to_json = !advertised.is_empty()
            && !advertised.iter().any(|m| m == "xlang")
            && advertised.iter().any(|m| m == "json");
        assert!(!python_switches_to_json);
        // a Rust client (XLANG + NATIVE) follows the producer's order
        let svc = ServiceSummaryJson { serialization_modes: advertised, ..summary(&[]) };
        assert_eq!(svc.select_mode(&default_client_modes()).unwrap(), Xlang);
        assert_eq!(svc.select_mode(&[Native]).unwrap(), Native);
        assert_eq!(default_client_modes(), [Xlang, Native]);
        assert_eq!(mode_from_str(" Xlang "), Some(Xlang));
        assert_eq!(mode_from_str("fory"), None);
    }
}
