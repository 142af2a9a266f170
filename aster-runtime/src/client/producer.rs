//! The joiner's side of producer admission (`aster.producer_admission`, protocol §7.5).

use iroh::{Endpoint, EndpointAddr};

use super::admitted::{DEFAULT_ADMISSION_TIMEOUT, exchange};
use crate::Status;
use crate::transport::ALPN_PRODUCER_ADMISSION;
use crate::trust::gate::AdmissionRequest;
use crate::trust::mesh::ProducerAdmissionResponse;
use crate::trust::{EnrollmentCredential, gate::MAX_ADMISSION_PAYLOAD};

/// Presents a producer enrollment credential to the mesh member at `addr` on ALPN
/// `aster.producer_admission`: one bi-stream, `{"credential_json": …, "iid_token": ""}`,
/// finish, the answer read to its end (at most 64 KiB); the connection is closed afterwards.
/// The whole exchange is bounded by [`DEFAULT_ADMISSION_TIMEOUT`].
///
/// Returns the response whether or not it accepts (a refusal has `accepted: false` and no
/// reason, like the reference). Errors: connect or stream failures and an empty answer
/// `UNAVAILABLE`; no answer within the bound `DEADLINE_EXCEEDED`; an answer over 64 KiB
/// `RESOURCE_EXHAUSTED`; an answer that does not parse `INTERNAL`.
pub async fn request_producer_admission(
    ep: &Endpoint,
    addr: impl Into<EndpointAddr>,
    credential: &EnrollmentCredential,
) -> Result<ProducerAdmissionResponse, Status> {
    let addr = addr.into();
    let id = addr.id;
    let request = AdmissionRequest { credential_json: credential.to_wire_json(), iid_token: String::new() };
    let body = request.to_json();
    if body.len() > MAX_ADMISSION_PAYLOAD {
        return Err(Status::resource_exhausted(format!(
            "producer admission request of {} bytes exceeds {MAX_ADMISSION_PAYLOAD}",
            body.len()
        )));
    }
    let raw = exchange(
        ep,
        addr,
        ALPN_PRODUCER_ADMISSION,
        "producer admission",
        body.as_bytes(),
        Some(DEFAULT_ADMISSION_TIMEOUT),
    )
    .await?;
    if raw.is_empty() {
        return Err(Status::unavailable(format!("{id} ended the producer admission stream without a response")));
    }
    ProducerAdmissionResponse::from_json(&raw)
        .map_err(|e| Status::internal(format!("malformed producer admission response from {id}: {e}")))
}
