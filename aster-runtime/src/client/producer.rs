//! The joiner's side of producer admission (`aster.producer_admission`, protocol §7.5).

use iroh::{Endpoint, EndpointAddr};

use super::admitted::exchange;
use crate::Status;
use crate::transport::ALPN_PRODUCER_ADMISSION;
use crate::trust::gate::AdmissionRequest;
use crate::trust::mesh::ProducerAdmissionResponse;
use crate::trust::{EnrollmentCredential, gate::MAX_ADMISSION_PAYLOAD};

/// Presents a producer enrollment credential to the mesh member at `addr` on ALPN
/// `aster.producer_admission`: one bi-stream, `{"credential_json": …, "iid_token": ""}`,
/// finish, the answer read to its end (at most 64 KiB); the connection is closed afterwards.
///
/// Returns the response whether or not it accepts (a refusal has `accepted: false` and no
/// reason, like the reference). Errors: connect or stream failures and an empty answer
/// `UNAVAILABLE`; an answer that does not parse `INTERNAL`.
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
    let conn = ep
        .connect(addr, ALPN_PRODUCER_ADMISSION)
        .await
        .map_err(|e| Status::unavailable(format!("cannot connect to {id} for producer admission: {e}")))?;
    let result = exchange(&conn, body.as_bytes()).await;
    conn.close(0u32.into(), b"admission done");
    let raw = result?;
    if raw.is_empty() {
        return Err(Status::unavailable(format!("{id} ended the producer admission stream without a response")));
    }
    ProducerAdmissionResponse::from_json(&raw)
        .map_err(|e| Status::internal(format!("malformed producer admission response from {id}: {e}")))
}
