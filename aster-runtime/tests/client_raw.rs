//! Client integration tests against hand-written raw servers on real iroh endpoints
//! (127.0.0.1): each server reads frames with `FrameReader` and answers with canned frames.
//! No test asserts on elapsed time.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use aster_runtime::admission::{ConsumerAdmissionResponse, ServiceSummaryJson};
use aster_runtime::client::{AdmissionOptions, AsterClient, CallOptions, Channel};
use aster_runtime::transport::stream::{FrameReader, FrameWriter};
use aster_runtime::transport::{
    ALPN_CONSUMER_ADMISSION, ALPN_RPC, Endpoint, EndpointConfig, NodeAddrText, bind_endpoint, endpoint_addr, ticket_for,
};
use aster_runtime::wire::flags::{CALL, CANCEL, COMPRESSED, HEADER, ROW_SCHEMA, TRAILER};
use aster_runtime::wire::{CallHeader, Frame, ProtocolMessage, RpcStatus, StreamHeader};
use aster_runtime::{Code, SerializationMode, Status};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Num {
    n: i64,
}

aster_runtime::impl_message!(Num, "test/Num"; json_only);

/// A request larger than a QUIC stream's flow-control window: its write blocks until the
/// server reads it (or fails once the server stops reading).
#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Blob {
    data: String,
}

aster_runtime::impl_message!(Blob, "test/Blob"; json_only);

fn big_blob() -> Blob {
    Blob { data: "x".repeat(8 * 1024 * 1024) }
}

/// Fails the test instead of hanging it when `fut` never completes (no assertion on time).
async fn hang_guard<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), fut).await.unwrap_or_else(|_| panic!("hang guard: {what}"))
}

// ----- raw server plumbing -------------------------------------------------------------------

type Log = mpsc::UnboundedSender<String>;

/// Binds a server endpoint that runs `handler` for every bi-stream of every connection.
async fn start_server<F, Fut>(handler: F) -> Endpoint
where
    F: Fn(FrameReader, FrameWriter) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let config = EndpointConfig { alpns: vec![ALPN_RPC.to_vec()], ..EndpointConfig::default() };
    let ep = bind_endpoint(&config).await.unwrap();
    let handler = Arc::new(handler);
    let accept_ep = ep.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accept_ep.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                while let Ok((send, recv)) = conn.accept_bi().await {
                    let handler = handler.clone();
                    tokio::spawn(async move { handler(FrameReader::new(recv), FrameWriter::new(send)).await });
                }
            });
        }
    });
    ep
}

/// A client endpoint and a JSON-mode channel to `server`.
async fn connect(server: &Endpoint) -> (Endpoint, Channel) {
    let ep = bind_endpoint(&EndpointConfig::default()).await.unwrap();
    let ch = Channel::connect(&ep, endpoint_addr(server)).await.unwrap().with_mode(SerializationMode::Json);
    (ep, ch)
}

fn log_channel() -> (Log, mpsc::UnboundedReceiver<String>) {
    mpsc::unbounded_channel()
}

async fn next_log(rx: &mut mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.expect("server log timed out").expect("log closed")
}

async fn read_frame(r: &mut FrameReader) -> Frame {
    r.next().await.expect("read").expect("unexpected EOF")
}

async fn read_header(r: &mut FrameReader) -> StreamHeader {
    let f = read_frame(r).await;
    assert_eq!(f.flags, HEADER);
    StreamHeader::decode_sniffed(&f.payload).unwrap()
}

fn num_json(n: i64) -> Vec<u8> {
    serde_json::to_vec(&Num { n }).unwrap()
}

fn parse_num(f: &Frame) -> i64 {
    serde_json::from_slice::<Num>(&f.payload).unwrap().n
}

fn status_json(code: i64, message: &str) -> Vec<u8> {
    RpcStatus { code, message: message.into(), detail_keys: vec![], detail_values: vec![] }.encode(true)
}

fn ok_trailer() -> Vec<u8> {
    status_json(0, "")
}

/// Reads HEADER, the request and the client's EOF; returns the header and the request value.
async fn read_unary_request(r: &mut FrameReader) -> (StreamHeader, i64) {
    let h = read_header(r).await;
    let req = read_frame(r).await;
    assert_eq!(req.flags, 0);
    assert!(r.next().await.unwrap().is_none(), "client must finish after the request");
    (h, parse_num(&req))
}

// ----- unary ---------------------------------------------------------------------------------

#[tokio::test]
async fn unary_ok_and_header_fields() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, mut w| {
        let log = log.clone();
        async move {
            let (h, n) = read_unary_request(&mut r).await;
            log.send(format!(
                "{}|{}|{}|{}|{}|{}|{:?}|{:?}",
                h.service,
                h.method,
                h.version,
                h.call_id,
                h.deadline_epoch_ms,
                h.serialization_mode,
                h.metadata_keys,
                h.metadata_values
            ))
            .unwrap();
            w.push(0, &num_json(n + 1)).unwrap();
            w.push(TRAILER, &ok_trailer()).unwrap();
            w.finish().await.unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    assert_eq!(ch.peer(), server.id());
    let resp: Num = ch.unary("Calc", 2, "inc", &Num { n: 41 }, CallOptions::new()).await.unwrap();
    assert_eq!(resp, Num { n: 42 });
    assert_eq!(next_log(&mut logs).await, "Calc|inc|2||0|3|[]|[]");
}

#[tokio::test]
async fn unary_sends_deadline_and_metadata() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, mut w| {
        let log = log.clone();
        async move {
            let (h, n) = read_unary_request(&mut r).await;
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
            let remaining = h.deadline_epoch_ms - now;
            log.send(format!("{}|{:?}|{:?}", remaining > 0 && remaining <= 60_000, h.metadata_keys, h.metadata_values))
                .unwrap();
            w.push(0, &num_json(n)).unwrap();
            w.push(TRAILER, &ok_trailer()).unwrap();
            w.finish().await.unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let opts = CallOptions::new().timeout(Duration::from_secs(60)).metadata("who", "me").metadata("trace", "1");
    let resp: Num = ch.unary("Calc", 1, "id", &Num { n: 7 }, opts).await.unwrap();
    assert_eq!(resp.n, 7);
    assert_eq!(next_log(&mut logs).await, r#"true|["who", "trace"]|["me", "1"]"#);
}

#[tokio::test]
async fn unary_error_trailer_is_the_status() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_unary_request(&mut r).await;
        let st = RpcStatus {
            code: 5,
            message: "Service 'Calc' v9 not found".into(),
            detail_keys: vec!["k".into()],
            detail_values: vec!["v".into()],
        };
        w.send(TRAILER, &st.encode(true)).await.unwrap();
        w.finish().await.unwrap();
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let err = ch.unary::<Num, Num>("Calc", 9, "inc", &Num { n: 1 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(err.message(), "Service 'Calc' v9 not found");
    assert_eq!(err.detail("k"), Some("v"));
}

#[tokio::test]
async fn unary_application_code_is_forwarded() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_unary_request(&mut r).await;
        w.send(TRAILER, &status_json(104, "app")).await.unwrap();
        w.finish().await.unwrap();
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let err = ch.unary::<Num, Num>("Calc", 1, "inc", &Num { n: 1 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::Other(104));
}

#[tokio::test]
async fn unary_missing_trailer_is_unavailable() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_unary_request(&mut r).await;
        w.push(0, &num_json(1)).unwrap();
        w.finish().await.unwrap();
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let err = ch.unary::<Num, Num>("Calc", 1, "inc", &Num { n: 1 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
    assert_eq!(err.message(), "stream ended before trailer");
}

#[tokio::test]
async fn unary_multiple_response_frames_is_internal() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_unary_request(&mut r).await;
        w.push(0, &num_json(1)).unwrap();
        w.push(0, &num_json(2)).unwrap();
        w.push(TRAILER, &ok_trailer()).unwrap();
        let _ = w.finish().await;
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let err = ch.unary::<Num, Num>("Calc", 1, "inc", &Num { n: 1 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert_eq!(err.message(), "multiple response frames");
}

#[tokio::test]
async fn unary_ok_trailer_without_response_is_internal() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_unary_request(&mut r).await;
        w.send(TRAILER, &ok_trailer()).await.unwrap();
        w.finish().await.unwrap();
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let err = ch.unary::<Num, Num>("Calc", 1, "inc", &Num { n: 1 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert_eq!(err.message(), "trailer OK without response");
}

#[tokio::test]
async fn unary_malformed_trailer_is_internal() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_unary_request(&mut r).await;
        w.push(0, &num_json(1)).unwrap();
        w.push(TRAILER, b"{\"code\":\"zero\"}").unwrap();
        w.finish().await.unwrap();
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let err = ch.unary::<Num, Num>("Calc", 1, "inc", &Num { n: 1 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::Internal);
    assert!(err.message().starts_with("malformed trailer: "), "{err}");
}

#[tokio::test]
async fn unary_compressed_response_and_row_schema_skipped() {
    let big = Num { n: 1234 };
    let server = start_server(move |mut r, mut w| {
        let big = big.clone();
        async move {
            let _ = read_unary_request(&mut r).await;
            let packed = aster_runtime::codec::compress::compress(&serde_json::to_vec(&big).unwrap()).unwrap();
            w.push(ROW_SCHEMA, b"schema").unwrap();
            w.push(COMPRESSED, &packed).unwrap();
            w.push(TRAILER, &ok_trailer()).unwrap();
            w.finish().await.unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let resp: Num = ch.unary("Calc", 1, "big", &Num { n: 0 }, CallOptions::new()).await.unwrap();
    assert_eq!(resp.n, 1234);
}

#[tokio::test]
async fn unary_reset_by_server_is_unavailable() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_unary_request(&mut r).await;
        w.reset();
        r.stop();
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let err = ch.unary::<Num, Num>("Calc", 1, "inc", &Num { n: 1 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
}

#[tokio::test]
async fn unary_answered_early_keeps_the_response_when_the_request_write_fails() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, mut w| {
        let log = log.clone();
        async move {
            let _ = read_header(&mut r).await;
            // Answer without reading the (large) request, then stop reading it: the client's
            // write fails with STOP_SENDING while the answer is already on its way.
            w.push(0, &num_json(7)).unwrap();
            w.push(TRAILER, &ok_trailer()).unwrap();
            w.finish().await.unwrap();
            r.stop();
            log.send("answered".into()).unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let request = big_blob();
    let call = ch.unary::<Blob, Num>("Calc", 1, "early", &request, CallOptions::new());
    let resp = hang_guard("unary answered early", call).await.unwrap();
    assert_eq!(resp, Num { n: 7 });
    assert_eq!(next_log(&mut logs).await, "answered");
}

#[tokio::test]
async fn unary_deadline_expires_and_resets_the_stream() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, w| {
        let log = log.clone();
        async move {
            let (h, _) = read_unary_request(&mut r).await;
            log.send(format!("deadline set: {}", h.deadline_epoch_ms > 0)).unwrap();
            // Never answer: wait until the client gives up and stops our send half.
            let stopped = wait_stopped(w).await;
            log.send(format!("stopped: {stopped}")).unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let opts = CallOptions::new().timeout(Duration::from_millis(300));
    let err = ch.unary::<Num, Num>("Calc", 1, "slow", &Num { n: 1 }, opts).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(next_log(&mut logs).await, "deadline set: true");
    assert_eq!(next_log(&mut logs).await, "stopped: true");
}

/// Waits until the peer stops our send half (or the stream ends); true when it did.
async fn wait_stopped(mut w: FrameWriter) -> bool {
    tokio::time::timeout(Duration::from_secs(20), w.stopped()).await.is_ok()
}

#[tokio::test]
async fn dropping_a_unary_call_resets_the_stream() {
    let (log, mut logs) = log_channel();
    let (got_tx, got_rx) = tokio::sync::oneshot::channel::<()>();
    let got_tx = Arc::new(std::sync::Mutex::new(Some(got_tx)));
    let server = start_server(move |mut r, w| {
        let log = log.clone();
        let got_tx = got_tx.clone();
        async move {
            let (_, _) = read_unary_request(&mut r).await;
            if let Some(tx) = got_tx.lock().unwrap().take() {
                let _ = tx.send(());
            }
            let stopped = wait_stopped(w).await;
            log.send(format!("stopped: {stopped}")).unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let call = tokio::spawn({
        let ch = ch.clone();
        async move { ch.unary::<Num, Num>("Calc", 1, "slow", &Num { n: 1 }, CallOptions::new()).await }
    });
    got_rx.await.unwrap();
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(next_log(&mut logs).await, "stopped: true");
}

#[tokio::test]
async fn invalid_metadata_is_rejected_before_sending() {
    let server = start_server(|_r, _w| async move { panic!("no stream expected") }).await;
    let (_ep, ch) = connect(&server).await;
    let mut opts = CallOptions::new();
    for i in 0..65 {
        opts = opts.metadata(format!("k{i}"), "v");
    }
    let err = ch.unary::<Num, Num>("Calc", 1, "inc", &Num { n: 1 }, opts).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = ch.open_session("S", 1, CallOptions::new().metadata("k", "v".repeat(5000))).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn connect_ticket_parses_and_dials() {
    let server = start_server(|mut r, mut w| async move {
        let (_, n) = read_unary_request(&mut r).await;
        w.push(0, &num_json(n)).unwrap();
        w.push(TRAILER, &ok_trailer()).unwrap();
        w.finish().await.unwrap();
    })
    .await;
    let ep = bind_endpoint(&EndpointConfig::default()).await.unwrap();
    let ticket = ticket_for(&server).encode().unwrap();
    let ch = Channel::connect_ticket(&ep, &ticket).await.unwrap().with_mode(SerializationMode::Json);
    assert_eq!(ch.peer(), server.id());
    let resp: Num = ch.unary("Calc", 1, "id", &Num { n: 3 }, CallOptions::new()).await.unwrap();
    assert_eq!(resp.n, 3);
    let err = Channel::connect_ticket(&ep, "aster1notaticket").await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn closed_channel_fails_with_unavailable() {
    let server = start_server(|mut r, mut w| async move {
        let (_, n) = read_unary_request(&mut r).await;
        w.push(0, &num_json(n)).unwrap();
        w.push(TRAILER, &ok_trailer()).unwrap();
        let _ = w.finish().await;
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    ch.close();
    let err = ch.unary::<Num, Num>("Calc", 1, "id", &Num { n: 3 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable);
}

// ----- server stream -------------------------------------------------------------------------

#[tokio::test]
async fn server_stream_of_three() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, mut w| {
        let log = log.clone();
        async move {
            let (h, n) = read_unary_request(&mut r).await;
            log.send(h.call_id.clone()).unwrap();
            for i in 0..n {
                w.send(0, &num_json(i)).await.unwrap();
            }
            w.send(TRAILER, &ok_trailer()).await.unwrap();
            w.finish().await.unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;

    let mut s = ch.server_stream::<Num, Num>("Calc", 1, "count", &Num { n: 3 }, CallOptions::new()).await.unwrap();
    let mut got = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        got.push(m.n);
    }
    assert_eq!(got, [0, 1, 2]);
    assert!(s.is_finished());
    assert_eq!(s.message().await.unwrap(), None);
    let call_id = next_log(&mut logs).await;
    assert_eq!(call_id.len(), 36, "{call_id}");

    // as a futures::Stream
    let s = ch.server_stream::<Num, Num>("Calc", 1, "count", &Num { n: 3 }, CallOptions::new()).await.unwrap();
    let items: Vec<i64> = s.map(|r| r.unwrap().n).collect().await;
    assert_eq!(items, [0, 1, 2]);
    assert_ne!(next_log(&mut logs).await, call_id, "streaming call ids are fresh UUIDs");
}

#[tokio::test]
async fn server_stream_error_after_items() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_unary_request(&mut r).await;
        w.send(0, &num_json(1)).await.unwrap();
        w.send(0, &num_json(2)).await.unwrap();
        w.send(TRAILER, &status_json(10, "aborted midway")).await.unwrap();
        w.finish().await.unwrap();
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let mut s = ch.server_stream::<Num, Num>("Calc", 1, "count", &Num { n: 0 }, CallOptions::new()).await.unwrap();
    assert_eq!(s.message().await.unwrap(), Some(Num { n: 1 }));
    assert_eq!(s.message().await.unwrap(), Some(Num { n: 2 }));
    let err = s.message().await.unwrap_err();
    assert_eq!(err.code(), Code::Aborted);
    assert_eq!(err.message(), "aborted midway");
    assert_eq!(s.message().await.unwrap(), None, "the stream is ended after its error");
}

#[tokio::test]
async fn server_stream_decode_error_is_reported() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_unary_request(&mut r).await;
        w.send(0, b"{\"n\":1,\"extra\":true}").await.unwrap();
        w.send(TRAILER, &ok_trailer()).await.unwrap();
        let _ = w.finish().await;
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let mut s = ch.server_stream::<Num, Num>("Calc", 1, "count", &Num { n: 0 }, CallOptions::new()).await.unwrap();
    let err = s.message().await.unwrap_err();
    assert_eq!(err.code(), Code::ContractViolation, "{err}");
}

#[tokio::test]
async fn dropping_a_response_stream_stops_the_server() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, mut w| {
        let log = log.clone();
        async move {
            let _ = read_unary_request(&mut r).await;
            let mut i = 0;
            let outcome = loop {
                if let Err(e) = w.send(0, &num_json(i)).await {
                    break format!("write failed: {}", e.code());
                }
                i += 1;
                if i > 100_000 {
                    break "never stopped".to_string();
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            };
            log.send(outcome).unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let mut s = ch.server_stream::<Num, Num>("Calc", 1, "endless", &Num { n: 0 }, CallOptions::new()).await.unwrap();
    assert_eq!(s.message().await.unwrap(), Some(Num { n: 0 }));
    drop(s);
    assert_eq!(next_log(&mut logs).await, "write failed: UNAVAILABLE");
}

#[tokio::test]
async fn server_stream_deadline() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_unary_request(&mut r).await;
        w.send(0, &num_json(1)).await.unwrap();
        let _ = wait_stopped(w).await;
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let opts = CallOptions::new().timeout(Duration::from_millis(300));
    let mut s = ch.server_stream::<Num, Num>("Calc", 1, "count", &Num { n: 0 }, opts).await.unwrap();
    assert_eq!(s.message().await.unwrap(), Some(Num { n: 1 }));
    assert_eq!(s.message().await.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(s.message().await.unwrap(), None);
}

// ----- client stream -------------------------------------------------------------------------

/// Sums request frames until EOF; answers with the sum and an OK trailer.
async fn sum_server(mut r: FrameReader, mut w: FrameWriter) {
    let _ = read_header(&mut r).await;
    let mut total = 0;
    while let Some(f) = r.next().await.unwrap() {
        total += parse_num(&f);
    }
    w.push(0, &num_json(total)).unwrap();
    w.push(TRAILER, &ok_trailer()).unwrap();
    w.finish().await.unwrap();
}

#[tokio::test]
async fn client_stream_sum() {
    let server = start_server(sum_server).await;
    let (_ep, ch) = connect(&server).await;
    let mut call = ch.client_stream::<Num, Num>("Calc", 1, "sum", CallOptions::new()).await.unwrap();
    for n in 1..=3 {
        call.send(&Num { n }).await.unwrap();
    }
    assert_eq!(call.finish().await.unwrap(), Num { n: 6 });

    let nums = [Num { n: 10 }, Num { n: 20 }];
    let total: Num = ch.client_stream_iter("Calc", 1, "sum", nums, CallOptions::new()).await.unwrap();
    assert_eq!(total.n, 30);
    let empty: Vec<Num> = Vec::new();
    let total: Num = ch.client_stream_iter("Calc", 1, "sum", empty, CallOptions::new()).await.unwrap();
    assert_eq!(total.n, 0);
}

#[tokio::test]
async fn client_stream_early_error_trailer() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_header(&mut r).await;
        w.send(TRAILER, &status_json(12, "Method 'Calc.nope' not implemented")).await.unwrap();
        w.finish().await.unwrap();
        r.stop();
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let mut call = ch.client_stream::<Num, Num>("Calc", 1, "nope", CallOptions::new()).await.unwrap();
    // Sends may or may not fail depending on timing; finish reports the server's status.
    for n in 0..3 {
        if call.send(&Num { n }).await.is_err() {
            break;
        }
    }
    let err = call.finish().await.unwrap_err();
    assert_eq!(err.code(), Code::Unimplemented, "{err}");
}

#[tokio::test]
async fn dropping_a_client_stream_resets_it() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, _w| {
        let log = log.clone();
        async move {
            let _ = read_header(&mut r).await;
            let first = read_frame(&mut r).await;
            log.send(format!("got {}", parse_num(&first))).unwrap();
            let end = match r.next().await {
                Ok(None) => "eof".to_string(),
                Ok(Some(_)) => "frame".to_string(),
                Err(_) => "reset".to_string(),
            };
            log.send(end).unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let mut call = ch.client_stream::<Num, Num>("Calc", 1, "sum", CallOptions::new()).await.unwrap();
    call.send(&Num { n: 5 }).await.unwrap();
    assert_eq!(next_log(&mut logs).await, "got 5");
    drop(call);
    assert_eq!(next_log(&mut logs).await, "reset");
}

// ----- bidi ----------------------------------------------------------------------------------

/// Echoes every request frame (n * 10); OK trailer at EOF.
async fn echo_server(mut r: FrameReader, mut w: FrameWriter) {
    let _ = read_header(&mut r).await;
    loop {
        match r.next().await {
            Ok(Some(f)) => w.send(0, &num_json(parse_num(&f) * 10)).await.unwrap(),
            Ok(None) => break,
            Err(_) => return,
        }
    }
    w.send(TRAILER, &ok_trailer()).await.unwrap();
    w.finish().await.unwrap();
}

#[tokio::test]
async fn bidi_echo_from_two_tasks() {
    let server = start_server(echo_server).await;
    let (_ep, ch) = connect(&server).await;
    let (mut tx, mut rx) = ch.bidi::<Num, Num>("Chat", 1, "echo", CallOptions::new()).await.unwrap();
    let sender = tokio::spawn(async move {
        for n in 1..=3 {
            tx.send(&Num { n }).await.unwrap();
        }
        tx.close().await.unwrap();
    });
    let mut got = Vec::new();
    while let Some(m) = rx.message().await.unwrap() {
        got.push(m.n);
    }
    sender.await.unwrap();
    assert_eq!(got, [10, 20, 30]);
}

#[tokio::test]
async fn bidi_interleaved() {
    let server = start_server(echo_server).await;
    let (_ep, ch) = connect(&server).await;
    let (mut tx, mut rx) = ch.bidi::<Num, Num>("Chat", 1, "echo", CallOptions::new()).await.unwrap();
    for n in 1..=3 {
        tx.send(&Num { n }).await.unwrap();
        assert_eq!(rx.message().await.unwrap(), Some(Num { n: n * 10 }));
    }
    tx.close().await.unwrap();
    assert_eq!(rx.message().await.unwrap(), None);
}

#[tokio::test]
async fn dropping_the_bidi_sink_cancels_the_call() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, mut w| {
        let log = log.clone();
        async move {
            let _ = read_header(&mut r).await;
            let first = read_frame(&mut r).await;
            w.send(0, &num_json(parse_num(&first))).await.unwrap();
            let end = match r.next().await {
                Ok(None) => "eof",
                Ok(Some(_)) => "frame",
                Err(_) => "reset",
            };
            log.send(end.to_string()).unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let (mut tx, mut rx) = ch.bidi::<Num, Num>("Chat", 1, "echo", CallOptions::new()).await.unwrap();
    tx.send(&Num { n: 1 }).await.unwrap();
    assert_eq!(rx.message().await.unwrap(), Some(Num { n: 1 }));
    drop(tx);
    assert_eq!(rx.message().await.unwrap_err().code(), Code::Cancelled);
    assert_eq!(next_log(&mut logs).await, "reset");
}

#[tokio::test]
async fn bidi_send_after_the_server_ended() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_header(&mut r).await;
        w.send(TRAILER, &status_json(9, "not now")).await.unwrap();
        w.finish().await.unwrap();
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let (mut tx, mut rx) = ch.bidi::<Num, Num>("Chat", 1, "echo", CallOptions::new()).await.unwrap();
    let err = rx.message().await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    let err = tx.send(&Num { n: 1 }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert_eq!(err.message(), "not now");
}

#[tokio::test]
async fn bidi_deadline_cancels_both_halves() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, mut w| {
        let log = log.clone();
        async move {
            let _ = read_header(&mut r).await;
            let first = read_frame(&mut r).await;
            w.send(0, &num_json(parse_num(&first))).await.unwrap();
            let end = match r.next().await {
                Ok(None) => "eof",
                Ok(Some(_)) => "frame",
                Err(_) => "reset",
            };
            log.send(end.to_string()).unwrap();
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let opts = CallOptions::new().timeout(Duration::from_millis(300));
    let (mut tx, mut rx) = ch.bidi::<Num, Num>("Chat", 1, "echo", opts).await.unwrap();
    tx.send(&Num { n: 1 }).await.unwrap();
    assert_eq!(rx.message().await.unwrap(), Some(Num { n: 1 }));
    assert_eq!(rx.message().await.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(tx.send(&Num { n: 2 }).await.unwrap_err().code(), Code::DeadlineExceeded);
    assert_eq!(next_log(&mut logs).await, "reset");
}

// ----- sessions ------------------------------------------------------------------------------

/// A raw v0.1 session server. Methods: `add` (unary, n+1), `fail` (unary, error trailer),
/// `slow` (unary, answers only a CANCEL), `count` (server stream 0..n), `endless` (server
/// stream until CANCEL), `sum` (client stream, ends at the client's TRAILER(OK)),
/// `echo` (bidi, n*10, ends at the client's TRAILER).
async fn session_server(mut r: FrameReader, mut w: FrameWriter, log: Log) {
    let cancelled = status_json(1, "cancelled");
    let h = read_header(&mut r).await;
    log.send(format!(
        "open {} v{} method={:?} id_len={} deadline={}",
        h.service,
        h.version,
        h.method,
        h.call_id.len(),
        h.deadline_epoch_ms
    ))
    .unwrap();
    loop {
        let f = match r.next().await {
            Ok(Some(f)) => f,
            Ok(None) => {
                log.send("eof".into()).unwrap();
                return;
            }
            Err(e) => {
                log.send(format!("error {e}")).unwrap();
                return;
            }
        };
        if f.flags == CANCEL {
            log.send("cancel (idle)".into()).unwrap();
            w.send(TRAILER, &cancelled).await.unwrap();
            continue;
        }
        assert_eq!(f.flags, CALL, "expected CALL");
        let ch = CallHeader::decode(&f.payload, true).unwrap();
        assert_eq!(ch.call_id.len(), 36);
        log.send(format!("call {}", ch.method)).unwrap();
        match ch.method.as_str() {
            "add" => {
                let n = parse_num(&read_frame(&mut r).await);
                w.send(0, &num_json(n + 1)).await.unwrap();
            }
            "fail" => {
                let _ = read_frame(&mut r).await;
                w.send(TRAILER, &status_json(7, "denied")).await.unwrap();
            }
            "slow" => {
                let _ = read_frame(&mut r).await;
                let next = read_frame(&mut r).await;
                assert_eq!(next.flags, CANCEL);
                log.send(format!("cancel (deadline {})", ch.deadline_epoch_ms > 0)).unwrap();
                w.send(TRAILER, &cancelled).await.unwrap();
            }
            "count" => {
                let n = parse_num(&read_frame(&mut r).await);
                for i in 0..n {
                    w.send(0, &num_json(i)).await.unwrap();
                }
                w.send(TRAILER, &ok_trailer()).await.unwrap();
            }
            "endless" => {
                let _ = read_frame(&mut r).await;
                let mut i = 0;
                loop {
                    tokio::select! {
                        f = r.next() => {
                            let f = f.unwrap().unwrap();
                            assert_eq!(f.flags, CANCEL);
                            log.send("cancel (stream)".into()).unwrap();
                            w.send(TRAILER, &cancelled).await.unwrap();
                            break;
                        }
                        _ = tokio::time::sleep(Duration::from_millis(2)) => {
                            w.send(0, &num_json(i)).await.unwrap();
                            i += 1;
                        }
                    }
                }
            }
            "sum" => {
                let mut total = 0;
                let cancelled_call = loop {
                    let f = read_frame(&mut r).await;
                    if f.flags == CANCEL {
                        break true;
                    }
                    if f.flags == TRAILER {
                        assert_eq!(RpcStatus::decode(&f.payload, true).unwrap().code, 0);
                        break false;
                    }
                    total += parse_num(&f);
                };
                if cancelled_call {
                    log.send("cancel (client stream)".into()).unwrap();
                    w.send(TRAILER, &cancelled).await.unwrap();
                } else {
                    w.send(0, &num_json(total)).await.unwrap();
                }
            }
            "echo" => loop {
                let f = read_frame(&mut r).await;
                if f.flags == CANCEL {
                    log.send("cancel (bidi)".into()).unwrap();
                    w.send(TRAILER, &cancelled).await.unwrap();
                    break;
                }
                if f.flags == TRAILER {
                    w.send(TRAILER, &ok_trailer()).await.unwrap();
                    break;
                }
                w.send(0, &num_json(parse_num(&f) * 10)).await.unwrap();
            },
            other => panic!("unknown method {other}"),
        }
    }
}

async fn start_session_server() -> (Endpoint, mpsc::UnboundedReceiver<String>) {
    let (log, logs) = log_channel();
    let server = start_server(move |r, w| session_server(r, w, log.clone())).await;
    (server, logs)
}

#[tokio::test]
async fn session_all_patterns_cancel_and_close() {
    let (server, mut logs) = start_session_server().await;
    let (_ep, ch) = connect(&server).await;
    let session = ch.open_session("Tasks", 1, CallOptions::new()).await.unwrap();
    assert_eq!(session.session_id().len(), 36);
    assert_eq!(session.mode(), SerializationMode::Json);
    assert_eq!(next_log(&mut logs).await, "open Tasks v1 method=\"\" id_len=36 deadline=0");

    // unary success: a bare response frame
    let r: Num = session.unary("add", &Num { n: 1 }, CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 2);
    assert_eq!(next_log(&mut logs).await, "call add");

    // unary error: a trailer, and the session continues
    let err = session.unary::<Num, Num>("fail", &Num { n: 0 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(next_log(&mut logs).await, "call fail");

    // deadline: the client sends CANCEL and drains to the CANCELLED trailer
    let opts = CallOptions::new().timeout(Duration::from_millis(200));
    let err = session.unary::<Num, Num>("slow", &Num { n: 0 }, opts).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(next_log(&mut logs).await, "call slow");
    assert_eq!(next_log(&mut logs).await, "cancel (deadline true)");
    let r: Num = session.unary("add", &Num { n: 10 }, CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 11);
    assert_eq!(next_log(&mut logs).await, "call add");

    // server stream
    let s = session.server_stream::<Num, Num>("count", &Num { n: 3 }, CallOptions::new()).await.unwrap();
    let items: Vec<i64> = s.collect_all().await.unwrap().into_iter().map(|m| m.n).collect();
    assert_eq!(items, [0, 1, 2]);
    assert_eq!(next_log(&mut logs).await, "call count");

    // dropping a stream mid-way cancels it; the next call still works
    let mut s = session.server_stream::<Num, Num>("endless", &Num { n: 0 }, CallOptions::new()).await.unwrap();
    assert_eq!(s.message().await.unwrap(), Some(Num { n: 0 }));
    assert_eq!(s.message().await.unwrap(), Some(Num { n: 1 }));
    drop(s);
    assert_eq!(next_log(&mut logs).await, "call endless");
    assert_eq!(next_log(&mut logs).await, "cancel (stream)");
    let r: Num = session.unary("add", &Num { n: 20 }, CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 21);
    assert_eq!(next_log(&mut logs).await, "call add");

    // client stream: TRAILER(OK) ends the input, one bare response
    let nums = [Num { n: 1 }, Num { n: 2 }, Num { n: 3 }];
    let total: Num = session.client_stream_iter("sum", nums, CallOptions::new()).await.unwrap();
    assert_eq!(total.n, 6);
    assert_eq!(next_log(&mut logs).await, "call sum");

    // bidi
    let (mut tx, mut rx) = session.bidi::<Num, Num>("echo", CallOptions::new()).await.unwrap();
    tx.send(&Num { n: 1 }).await.unwrap();
    assert_eq!(rx.message().await.unwrap(), Some(Num { n: 10 }));
    tx.send(&Num { n: 2 }).await.unwrap();
    tx.close().await.unwrap();
    assert_eq!(rx.message().await.unwrap(), Some(Num { n: 20 }));
    assert_eq!(rx.message().await.unwrap(), None);
    assert_eq!(next_log(&mut logs).await, "call echo");

    // explicit cancel() of a stream
    let mut s = session.server_stream::<Num, Num>("endless", &Num { n: 0 }, CallOptions::new()).await.unwrap();
    assert!(s.message().await.unwrap().is_some());
    s.cancel();
    assert_eq!(next_log(&mut logs).await, "call endless");
    assert_eq!(next_log(&mut logs).await, "cancel (stream)");
    let r: Num = session.unary("add", &Num { n: 30 }, CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 31);
    assert_eq!(next_log(&mut logs).await, "call add");

    // a streaming call's deadline cancels it in-band too
    let opts = CallOptions::new().timeout(Duration::from_millis(200));
    let mut s = session.server_stream::<Num, Num>("endless", &Num { n: 0 }, opts).await.unwrap();
    let err = loop {
        match s.message().await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("endless stream ended"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), Code::DeadlineExceeded);
    assert_eq!(next_log(&mut logs).await, "call endless");
    assert_eq!(next_log(&mut logs).await, "cancel (stream)");
    let r: Num = session.unary("add", &Num { n: 40 }, CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 41);
    assert_eq!(next_log(&mut logs).await, "call add");

    // an expired timeout fails before anything is sent
    let err =
        session.unary::<Num, Num>("add", &Num { n: 0 }, CallOptions::new().timeout(Duration::ZERO)).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded);

    // a mode other than the session's is refused
    let err = session
        .unary::<Num, Num>("add", &Num { n: 0 }, CallOptions::new().mode(SerializationMode::Native))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    session.close().await.unwrap();
    assert_eq!(next_log(&mut logs).await, "eof");
}

#[tokio::test]
async fn session_calls_are_sequential_across_tasks() {
    let (server, mut logs) = start_session_server().await;
    let (_ep, ch) = connect(&server).await;
    let session = Arc::new(ch.open_session("Tasks", 1, CallOptions::new()).await.unwrap());
    let mut tasks = Vec::new();
    for t in 0..4 {
        let session = session.clone();
        tasks.push(tokio::spawn(async move {
            let mut sum = 0;
            for i in 0..5 {
                let n = t * 100 + i;
                let r: Num = session.unary("add", &Num { n }, CallOptions::new()).await.unwrap();
                assert_eq!(r.n, n + 1);
                let s = session.server_stream::<Num, Num>("count", &Num { n: 2 }, CallOptions::new()).await.unwrap();
                sum += s.collect_all().await.unwrap().len();
            }
            sum
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 10);
    }
    drop(session);
    assert!(next_log(&mut logs).await.starts_with("open"));
    let mut calls = 0;
    loop {
        match next_log(&mut logs).await.as_str() {
            "eof" => break,
            l => {
                assert!(l == "call add" || l == "call count", "{l}");
                calls += 1;
            }
        }
    }
    assert_eq!(calls, 40);
}

#[tokio::test]
async fn session_bidi_sink_drop_cancels_and_session_recovers() {
    let (server, mut logs) = start_session_server().await;
    let (_ep, ch) = connect(&server).await;
    let session = ch.open_session("Tasks", 1, CallOptions::new()).await.unwrap();
    let _ = next_log(&mut logs).await;
    let (mut tx, mut rx) = session.bidi::<Num, Num>("echo", CallOptions::new()).await.unwrap();
    tx.send(&Num { n: 4 }).await.unwrap();
    assert_eq!(rx.message().await.unwrap(), Some(Num { n: 40 }));
    drop(tx);
    assert_eq!(rx.message().await.unwrap_err().code(), Code::Cancelled);
    drop(rx);
    assert_eq!(next_log(&mut logs).await, "call echo");
    assert_eq!(next_log(&mut logs).await, "cancel (bidi)");
    let r: Num = session.unary("add", &Num { n: 1 }, CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 2);
    assert_eq!(next_log(&mut logs).await, "call add");

    // a client-stream call dropped mid-input is cancelled the same way
    let mut cs = session.client_stream::<Num, Num>("sum", CallOptions::new()).await.unwrap();
    cs.send(&Num { n: 1 }).await.unwrap();
    drop(cs);
    assert_eq!(next_log(&mut logs).await, "call sum");
    assert_eq!(next_log(&mut logs).await, "cancel (client stream)");
    let r: Num = session.unary("add", &Num { n: 2 }, CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 3);
}

#[tokio::test]
async fn session_rejected_at_open_reports_the_status_then_unavailable() {
    let server = start_server(|mut r, mut w| async move {
        let _ = read_header(&mut r).await;
        w.send(TRAILER, &status_json(5, "Service 'Nope' v1 not found")).await.unwrap();
        w.finish().await.unwrap();
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let session = ch.open_session("Nope", 1, CallOptions::new()).await.unwrap();
    let err = session.unary::<Num, Num>("add", &Num { n: 1 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = session.unary::<Num, Num>("add", &Num { n: 1 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    session.close().await.unwrap();
}

#[tokio::test]
async fn session_write_failure_without_a_trailer_does_not_hang() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, w| {
        let log = log.clone();
        async move {
            let _ = read_header(&mut r).await;
            // Stop reading, but neither answer nor end the send half: a silent peer.
            r.stop();
            log.send("stopped".into()).unwrap();
            let _keep_open = w;
            std::future::pending::<()>().await;
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let session = ch.open_session("Tasks", 1, CallOptions::new()).await.unwrap();
    assert_eq!(next_log(&mut logs).await, "stopped");
    // No timeout: only the client's own grace bound ends the wait for an explaining trailer.
    let request = big_blob();
    let call = session.unary::<Blob, Num>("add", &request, CallOptions::new());
    let err = hang_guard("session write failure", call).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    let err = session.unary::<Num, Num>("add", &Num { n: 1 }, CallOptions::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "the session is broken: {err}");
    session.close().await.unwrap();
}

#[tokio::test]
async fn session_recovery_from_a_silent_server_is_bounded() {
    let (log, mut logs) = log_channel();
    let server = start_server(move |mut r, w| {
        let log = log.clone();
        async move {
            let _ = read_header(&mut r).await;
            let call = read_frame(&mut r).await;
            assert_eq!(call.flags, CALL);
            // Read nothing more (not the large request, not the CANCEL) and never answer.
            log.send("call".into()).unwrap();
            let _keep_open = (r, w);
            std::future::pending::<()>().await;
        }
    })
    .await;
    let (_ep, ch) = connect(&server).await;
    let session = ch.open_session("Tasks", 1, CallOptions::new()).await.unwrap();
    // The call's write blocks on flow control until its deadline abandons it; the CANCEL
    // cannot be written and no trailer ever comes.
    let request = big_blob();
    let opts = CallOptions::new().timeout(Duration::from_millis(300));
    let err = session.unary::<Blob, Num>("big", &request, opts).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    assert_eq!(next_log(&mut logs).await, "call");
    // The next call (no timeout) waits for the recovery, which gives up after its grace.
    let call = session.unary::<Num, Num>("add", &Num { n: 1 }, CallOptions::new());
    let err = hang_guard("session recovery", call).await.unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err}");
    assert!(err.message().starts_with("session lost"), "{err}");
    hang_guard("session close", session.close()).await.unwrap();
}

// ----- admission ------------------------------------------------------------------------------

/// A raw consumer-admission server: reads each request to its end, then answers `response`
/// (`None`: never answers, keeping the stream and the connection open).
async fn start_admission_server(response: Option<Vec<u8>>) -> Endpoint {
    let config = EndpointConfig { alpns: vec![ALPN_CONSUMER_ADMISSION.to_vec()], ..EndpointConfig::default() };
    let ep = bind_endpoint(&config).await.unwrap();
    let accept_ep = ep.clone();
    tokio::spawn(async move {
        while let Some(incoming) = accept_ep.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    let response = response.clone();
                    tokio::spawn(async move {
                        let _ = recv.read_to_end(64 * 1024).await;
                        match response {
                            Some(body) => {
                                send.write_all(&body).await.unwrap();
                                send.finish().unwrap();
                                let _ = send.stopped().await;
                            }
                            None => {
                                let _keep_open = (send, recv);
                                std::future::pending::<()>().await;
                            }
                        }
                    });
                }
            });
        }
    });
    ep
}

#[tokio::test]
async fn admission_without_an_answer_is_deadline_exceeded() {
    let server = start_admission_server(None).await;
    let ep = bind_endpoint(&EndpointConfig::default()).await.unwrap();
    let opts = AdmissionOptions::new().timeout(Some(Duration::from_millis(300)));
    let err = hang_guard("admission", AsterClient::connect_with(&ep, endpoint_addr(&server), opts)).await.unwrap_err();
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err}");
    assert!(err.message().starts_with("admission with "), "{err}");
}

#[tokio::test]
async fn concurrent_channel_requests_share_one_connection() {
    let rpc = start_server(|mut r, mut w| async move {
        let (_, n) = read_unary_request(&mut r).await;
        w.push(0, &num_json(n + 1)).unwrap();
        w.push(TRAILER, &ok_trailer()).unwrap();
        w.finish().await.unwrap();
    })
    .await;
    let rpc_address = NodeAddrText::from(&endpoint_addr(&rpc)).to_base64();
    let service = |name: &str| ServiceSummaryJson {
        name: name.into(),
        version: 1,
        contract_id: String::new(),
        channels: [("rpc".to_string(), rpc_address.clone())].into(),
        pattern: "shared".into(),
        serialization_modes: vec!["json".into()],
    };
    let response = ConsumerAdmissionResponse {
        admitted: true,
        services: vec![service("Calc"), service("Other")],
        ..ConsumerAdmissionResponse::default()
    };
    let server = start_admission_server(Some(response.to_json().unwrap())).await;
    let ep = bind_endpoint(&EndpointConfig::default()).await.unwrap();
    let client = AsterClient::connect(&ep, endpoint_addr(&server)).await.unwrap();
    // Both dial the same RPC address at once (the cache is not held while dialing): one
    // connection is kept and handed to both.
    let (a, b) = hang_guard("channels", async {
        tokio::join!(
            client.channel_for_mode("Calc", SerializationMode::Json),
            client.channel_for_mode("Other", SerializationMode::Json)
        )
    })
    .await;
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.connection().stable_id(), b.connection().stable_id());
    let c = client.channel_for_mode("Calc", SerializationMode::Json).await.unwrap();
    assert_eq!(c.connection().stable_id(), a.connection().stable_id());
    for ch in [a, b] {
        let r: Num = ch.unary("Calc", 1, "inc", &Num { n: 1 }, CallOptions::new()).await.unwrap();
        assert_eq!(r.n, 2);
    }
    client.close().await;
}

#[test]
fn handles_are_send() {
    fn is_send<T: Send + 'static>() {}
    is_send::<Channel>();
    is_send::<aster_runtime::client::Session>();
    is_send::<aster_runtime::client::Streaming<Num>>();
    is_send::<aster_runtime::client::RequestSink<Num>>();
    is_send::<aster_runtime::client::ClientStreamCall<Num, Num>>();
    is_send::<Status>();
}
