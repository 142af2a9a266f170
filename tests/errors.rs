//! Error paths: the dispatch order of protocol §3.7 (unknown service / version / method),
//! handler errors and panics, deadlines (client timeout and an expired wire deadline), client
//! cancellation reaching the handler, raw protocol abuse on a bare QUIC stream, and metadata
//! limits on both sides.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aster::prelude::*;
use aster::runtime::codec::PayloadCodec;
use aster::runtime::wire::flags;
use common::*;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_service_version_and_method() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let m = Msg::new("x", 1);

    let err = fx.channel.unary::<Msg, Msg>("Nope", 1, "echo", &m, CallOptions::new()).await;
    assert_eq!(expect_code(err, Code::NotFound).message(), "Service 'Nope' v1 not found");

    let err = fx.channel.unary::<Msg, Msg>(PROBE, 2, "echo", &m, CallOptions::new()).await;
    assert_eq!(expect_code(err, Code::NotFound).message(), "Service 'Probe' v2 not found");

    let err = fx.channel.unary::<Msg, Msg>(PROBE, 1, "nope", &m, CallOptions::new()).await;
    assert_eq!(expect_code(err, Code::Unimplemented).message(), "Method 'Probe.nope' not implemented");

    // the same for a streaming pattern, and in JSON mode
    let err = async {
        fx.channel.server_stream::<Msg, Msg>("Nope", 1, "ticks", &m, CallOptions::new()).await?.collect_all().await
    };
    expect_code(guard("stream to unknown service", err).await, Code::NotFound);
    let err =
        fx.channel.unary::<Msg, Msg>(PROBE, 1, "nope", &m, CallOptions::new().mode(SerializationMode::Json)).await;
    expect_code(err, Code::Unimplemented);

    // an empty service name
    let frames = raw_exchange(&fx.channel, &header_frame(&header("", 1, "echo", SerializationMode::Native))).await;
    assert_eq!(trailer_status(&frames).code(), Code::InvalidArgument);

    // the node keeps serving
    assert_eq!(fx.probe.echo("still", 2).await.unwrap(), Msg::new("still", 2));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_status_reaches_the_client_unchanged() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let cases = [
        FailReq {
            code: 7,
            message: "no access to task 9".into(),
            detail_key: "reason".into(),
            detail_value: "acl".into(),
        },
        FailReq { code: 5, message: "task missing".into(), ..Default::default() },
        FailReq { code: 104, message: "application code".into(), detail_key: "k".into(), detail_value: "v".into() },
    ];
    for mode in [SerializationMode::Native, SerializationMode::Json] {
        for req in &cases {
            let s = fx.probe.unary::<FailReq, Msg>("fail", req, CallOptions::new().mode(mode)).await.unwrap_err();
            assert_eq!(s.code(), Code::from_i64(req.code), "{mode}");
            assert_eq!(s.message(), req.message);
            if req.detail_key.is_empty() {
                assert!(s.details().is_empty());
            } else {
                assert_eq!(s.details(), &[(req.detail_key.clone(), req.detail_value.clone())]);
            }
        }
    }
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_panic_is_internal_and_isolated() {
    let fx = ProbeFixture::start(AsterNode::builder().pool_size(4)).await;
    // a call in flight on another worker
    let probe = fx.probe.clone();
    let gated = tokio::spawn(async move { probe.gate("held").await });
    fx.state.gate_entered.wait_for(1, "gate call entered").await;

    let s = expect_code(guard("panic", fx.probe.panic("boom")).await, Code::Internal);
    assert!(s.message().contains("probe panic: boom"), "{s}");

    // the next call on the same service succeeds
    assert_eq!(fx.probe.echo("after", 1).await.unwrap(), Msg::new("after", 1));
    // the parallel call was unaffected
    assert!(!gated.is_finished());
    fx.state.gate.open();
    let r = guard("gated call", gated).await.unwrap();
    assert_eq!(r.unwrap(), Msg::new("gate held", 0));
    // streams keep working too
    let ticks = guard("ticks", async { fx.probe.server_stream("ticks", &Msg::new("t", 2)).await?.collect_all().await })
        .await
        .unwrap();
    assert_eq!(ticks.len(), 2);
    fx.stop().await;
}

/// The benchmark ablation (`UnaryDispatch::Inline`) runs unary handlers in the stream's task:
/// answers, handler errors, panics (INTERNAL, isolated) and deadlines behave as on the actor path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_unary_dispatch_behaves_like_the_actor_path() {
    let fx = ProbeFixture::start(AsterNode::builder().unary_dispatch(UnaryDispatch::Inline)).await;
    assert_eq!(fx.probe.echo("inline", 7).await.unwrap(), Msg::new("inline", 7));
    let probe = fx.probe.clone();
    let gated = tokio::spawn(async move { probe.gate("held").await });
    fx.state.gate_entered.wait_for(1, "gate call entered").await;
    let s = expect_code(guard("panic", fx.probe.panic("boom")).await, Code::Internal);
    assert!(s.message().contains("probe panic: boom"), "{s}");
    assert_eq!(fx.probe.echo("after", 1).await.unwrap(), Msg::new("after", 1));
    assert!(!gated.is_finished(), "the parallel call is unaffected");
    fx.state.gate.open();
    assert_eq!(guard("gated call", gated).await.unwrap().unwrap(), Msg::new("gate held", 0));
    let ticks = guard("ticks", async { fx.probe.server_stream("ticks", &Msg::new("t", 2)).await?.collect_all().await })
        .await
        .unwrap();
    assert_eq!(ticks.len(), 2, "streams still go through stream actors");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_in_json_mode_then_streams_still_work() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    // the panic message survives a JSON trailer, and the stream-actor path is unaffected
    let s = fx
        .probe
        .unary::<Msg, Msg>("panic", &Msg::new("json", 0), CallOptions::new().mode(SerializationMode::Json))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::Internal);
    assert!(s.message().contains("probe panic: json"), "{s}");
    let (mut tx, rx) = fx.probe.echo_bidi().await.unwrap();
    tx.send(&Msg::new("a", 1)).await.unwrap();
    tx.close().await.unwrap();
    assert_eq!(guard("bidi", rx.collect_all()).await.unwrap(), vec![Msg::new("echo a", 1)]);
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_deadline_exceeded_cancels_the_handler() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let err = guard("sleep with timeout", fx.probe.sleep(CallOptions::new().timeout(Duration::from_millis(300)))).await;
    expect_code(err, Code::DeadlineExceeded);
    fx.state.sleep_entered.wait_for(1, "sleep entered").await;
    fx.state.cancelled.wait_for(1, "the handler observes the cancellation").await;
    // the worker is free again
    assert_eq!(fx.probe.echo("next", 1).await.unwrap(), Msg::new("next", 1));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_enforces_the_wire_deadline() {
    // The client sends a deadline but does not enforce it itself (raw stream): the server's
    // own timer (at the exact wire deadline) ends the call with DEADLINE_EXCEEDED.
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let codec = PayloadCodec::new(SerializationMode::Native);
    let mut h = header(PROBE, 1, "sleep", SerializationMode::Native);
    h.deadline_epoch_ms = now_ms() + 200;
    let mut bytes = header_frame(&h);
    let (f, p) = codec.encode(&Msg::new("zz", 0)).unwrap();
    bytes.extend(frame_bytes(f, &p));
    let frames = raw_exchange(&fx.channel, &bytes).await;
    let s = trailer_status(&frames);
    assert_eq!(s.code(), Code::DeadlineExceeded, "{s}");
    fx.state.cancelled.wait_for(1, "the handler observes the deadline").await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_deadline_ends_a_call_still_waiting_for_a_worker() {
    // The only worker is held, so the call waits for one; its (raw, not locally enforced)
    // deadline passes while it waits: DEADLINE_EXCEEDED from the server, no handler run.
    let fx = ProbeFixture::start(AsterNode::builder().pool_size(1)).await;
    let p = fx.probe.clone();
    let held = tokio::spawn(async move { p.gate("held").await });
    fx.state.gate_entered.wait_for(1, "the only worker is held").await;
    let codec = PayloadCodec::new(SerializationMode::Native);
    let mut h = header(PROBE, 1, "echo", SerializationMode::Native);
    h.deadline_epoch_ms = now_ms() + 200;
    let mut bytes = header_frame(&h);
    let (f, p) = codec.encode(&Msg::new("waits", 0)).unwrap();
    bytes.extend(frame_bytes(f, &p));
    let frames = raw_exchange(&fx.channel, &bytes).await;
    assert_eq!(frames.len(), 1, "only a trailer: {frames:?}");
    let s = trailer_status(&frames);
    assert_eq!(s.code(), Code::DeadlineExceeded, "{s}");
    fx.state.gate.open();
    assert_eq!(guard("held call", held).await.unwrap().unwrap(), Msg::new("gate held", 0));
    assert_eq!(fx.probe.echo("after", 1).await.unwrap(), Msg::new("after", 1));
    assert_eq!(fx.state.entries.get(), 2, "the expired call never reached a handler");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_wire_deadline_is_rejected_before_dispatch() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let codec = PayloadCodec::new(SerializationMode::Native);
    let (f, p) = codec.encode(&Msg::new("late", 1)).unwrap();
    for mode in [SerializationMode::Native, SerializationMode::Json] {
        let mut h = header(PROBE, 1, "echo", mode);
        h.deadline_epoch_ms = now_ms() - 60_000;
        let mut bytes = header_frame(&h);
        let (f, p) = if mode == SerializationMode::Json {
            PayloadCodec::new(mode).encode(&Msg::new("late", 1)).unwrap()
        } else {
            (f, p.clone())
        };
        bytes.extend(frame_bytes(f, &p));
        let frames = raw_exchange(&fx.channel, &bytes).await;
        assert_eq!(frames.len(), 1, "only a trailer: {frames:?}");
        let s = trailer_status(&frames);
        assert_eq!(s.code(), Code::DeadlineExceeded, "{mode}: {s}");
    }
    assert_eq!(fx.state.entries.get(), 0, "the handler never ran");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_unary_call_cancels_the_handler() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let probe = fx.probe.clone();
    let call = tokio::spawn(async move { probe.sleep(CallOptions::new()).await });
    fx.state.sleep_entered.wait_for(1, "sleep entered").await;
    call.abort(); // drops the call future: the stream is reset
    assert!(guard("aborted task", call).await.unwrap_err().is_cancelled());
    fx.state.cancelled.wait_for(1, "the handler observes the client's cancellation").await;
    assert_eq!(fx.probe.echo("next", 1).await.unwrap(), Msg::new("next", 1));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_response_stream_cancels_the_handler() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    // a handler that sent one item and now sleeps (writes nothing more)
    let mut stream = fx.probe.server_stream("sleep_stream", &Msg::new("first", 0)).await.unwrap();
    assert_eq!(guard("first item", stream.message()).await.unwrap(), Some(Msg::new("first", 1)));
    fx.state.sleep_entered.wait_for(1, "sleep entered").await;
    drop(stream);
    fx.state.cancelled.wait_for(1, "the sleeping stream handler observes the cancellation").await;

    // a handler that keeps writing
    let mut stream = fx.probe.server_stream("forever", &Msg::new("tick", 0)).await.unwrap();
    assert_eq!(guard("tick", stream.message()).await.unwrap(), Some(Msg::new("tick", 1)));
    stream.cancel();
    fx.state.cancelled.wait_for(2, "the writing stream handler observes the cancellation").await;

    // a bidi call whose both halves are dropped
    let (mut tx, mut rx) = fx.probe.echo_bidi().await.unwrap();
    tx.send(&Msg::new("a", 1)).await.unwrap();
    assert_eq!(guard("bidi echo", rx.message()).await.unwrap(), Some(Msg::new("echo a", 1)));
    drop(tx);
    drop(rx);
    assert_eq!(fx.probe.echo("next", 1).await.unwrap(), Msg::new("next", 1));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_protocol_abuse_gets_error_trailers() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;

    // first frame without the HEADER flag
    let frames = raw_exchange(&fx.channel, &frame_bytes(0, b"hello")).await;
    let s = trailer_status(&frames);
    assert_eq!((s.code(), s.message()), (Code::Internal, "First frame must have HEADER flag"));

    // a HEADER frame whose payload is garbage (XLANG and JSON-looking)
    for garbage in [&b"\x01\x02garbage"[..], &b"{\"service\": 12"[..], &b"{\"nope\":1}"[..]] {
        let frames = raw_exchange(&fx.channel, &frame_bytes(flags::HEADER, garbage)).await;
        let s = trailer_status(&frames);
        assert_eq!(s.code(), Code::Internal, "{s}");
        assert!(s.message().starts_with("Invalid StreamHeader"), "{s}");
    }

    // a first frame whose length prefix announces 17 MiB
    let mut bytes = (17u32 * 1024 * 1024).to_le_bytes().to_vec();
    bytes.extend([flags::HEADER, b'{']);
    let frames = raw_exchange(&fx.channel, &bytes).await;
    let s = trailer_status(&frames);
    assert_eq!(s.code(), Code::ResourceExhausted, "{s}");

    // the same for the request frame after a valid header
    let mut bytes = header_frame(&header(PROBE, 1, "echo", SerializationMode::Native));
    bytes.extend((17u32 * 1024 * 1024).to_le_bytes());
    bytes.push(0);
    let frames = raw_exchange(&fx.channel, &bytes).await;
    assert_eq!(trailer_status(&frames).code(), Code::ResourceExhausted);

    // a frame with the reserved flag bit, and a truncated request
    let mut bytes = header_frame(&header(PROBE, 1, "echo", SerializationMode::Native));
    bytes.extend(frame_bytes(0, b"x"));
    let n = bytes.len();
    bytes[n - 2] = 0x80;
    let frames = raw_exchange(&fx.channel, &bytes).await;
    assert_eq!(trailer_status(&frames).code(), Code::InvalidArgument);
    let mut bytes = header_frame(&header(PROBE, 1, "echo", SerializationMode::Native));
    bytes.extend([10, 0, 0, 0, 0, 1, 2]);
    let frames = raw_exchange(&fx.channel, &bytes).await;
    assert!(!trailer_status(&frames).is_ok());

    // header only, no request: the stream ends before the request frame
    let frames = raw_exchange(&fx.channel, &header_frame(&header(PROBE, 1, "echo", SerializationMode::Native))).await;
    assert_eq!(trailer_status(&frames).code(), Code::InvalidArgument);

    // an undecodable request payload
    let mut bytes = header_frame(&header(PROBE, 1, "echo", SerializationMode::Json));
    bytes.extend(frame_bytes(0, b"not json"));
    let frames = raw_exchange(&fx.channel, &bytes).await;
    assert!(!trailer_status(&frames).is_ok());

    // nothing of this hurt the node
    assert_eq!(fx.probe.echo("fine", 3).await.unwrap(), Msg::new("fine", 3));
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_limits_client_and_server_side() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let too_many = (0..65).fold(CallOptions::new(), |o, i| o.metadata(format!("k{i}"), "v"));
    let just_right = (0..64).fold(CallOptions::new(), |o, i| o.metadata(format!("k{i}"), "v"));

    // refused by the client before anything is sent
    let s = expect_code(fx.probe.info("k0", too_many.clone()).await, Code::InvalidArgument);
    assert!(s.message().contains("MAX_METADATA_ENTRIES"), "{s}");
    let big_value = CallOptions::new().metadata("k", "x".repeat(5000));
    expect_code(fx.probe.info("k", big_value).await, Code::InvalidArgument);
    // 64 entries are fine
    let info = fx.probe.info("k63", just_right).await.unwrap();
    assert_eq!((info.metadata_len, info.metadata_value.as_str()), (64, "v"));

    // a raw header with 65 entries is refused by the server
    let codec = PayloadCodec::new(SerializationMode::Native);
    let (f, p) = codec.encode(&Msg::new("k0", 0)).unwrap();
    let mut h = header(PROBE, 1, "info", SerializationMode::Native);
    h.metadata_keys = (0..65).map(|i| format!("k{i}")).collect();
    h.metadata_values = vec!["v".into(); 65];
    let mut bytes = header_frame(&h);
    bytes.extend(frame_bytes(f, &p));
    let frames = raw_exchange(&fx.channel, &bytes).await;
    let s = trailer_status(&frames);
    assert_eq!(s.code(), Code::InvalidArgument, "{s}");
    assert!(s.message().contains("MAX_METADATA_ENTRIES"), "{s}");
    // and mismatched key/value lists
    h.metadata_values.pop();
    let mut bytes = header_frame(&h);
    bytes.extend(frame_bytes(f, &p));
    let frames = raw_exchange(&fx.channel, &bytes).await;
    assert_eq!(trailer_status(&frames).code(), Code::InvalidArgument);

    // in a session: a CALL with too much metadata fails that call only
    let session = fx.channel.open_session(PROBE_SESSION, 1, CallOptions::new()).await.unwrap();
    expect_code(session.unary::<Msg, Info>("info", &Msg::default(), too_many).await, Code::InvalidArgument);
    let r: Msg = session.unary("add", &Msg::new("", 4), CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 4);
    session.close().await.unwrap();
    fx.stop().await;
}

/// Writes `bytes` on a raw stream WITHOUT finishing it (the peer goes quiet) and returns the
/// frames the server sends until it ends its side.
async fn stalled_exchange(channel: &Channel, bytes: &[u8]) -> Vec<aster::runtime::wire::Frame> {
    let stream = guard("open raw stream", aster::runtime::transport::FramedStream::open(channel.connection()))
        .await
        .expect("open stream");
    let (mut reader, mut writer) = stream.split();
    writer.push_encoded(bytes);
    guard("raw write", writer.flush()).await.expect("write");
    let mut frames = Vec::new();
    while let Ok(Some(f)) = guard("raw read", reader.next()).await {
        frames.push(f);
    }
    drop(writer);
    frames
}

/// A unary call whose bytes arrive in pieces (HEADER, then the request, then the end of input,
/// each written separately) is answered as one written in one go: whichever of the fast path
/// and the stream's own task serves it, the answer is the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_call_written_in_pieces_is_answered() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let codec = PayloadCodec::new(SerializationMode::Native);
    let h = header(PROBE, 1, "echo", SerializationMode::Native);
    let (f, p) = codec.encode(&Msg::new("pieces", 3)).unwrap();
    for split in [false, true] {
        let stream =
            guard("open", aster::runtime::transport::FramedStream::open(fx.channel.connection())).await.unwrap();
        let (mut reader, mut writer) = stream.split();
        writer.push_encoded(&header_frame(&h));
        guard("write header", writer.flush()).await.unwrap();
        if split {
            // Gives the server every chance to see the HEADER alone (nothing depends on it).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        writer.push_encoded(&frame_bytes(f, &p));
        guard("write request", writer.flush()).await.unwrap();
        if split {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        guard("finish", writer.finish()).await.unwrap();
        let mut frames = Vec::new();
        while let Ok(Some(fr)) = guard("read", reader.next()).await {
            frames.push(fr);
        }
        assert_eq!(trailer_status(&frames).code(), Code::Ok, "split={split}");
        let resp: Msg = codec.decode(frames[0].flags, &frames[0].payload).unwrap();
        assert_eq!(resp, Msg::new("pieces", 3), "split={split}");
    }
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_streams_are_timed_out_instead_of_held() {
    let fx = ProbeFixture::start(AsterNode::builder().frame_read_timeout(Duration::from_millis(200))).await;
    // Half a length prefix, then nothing: the HEADER never completes.
    let frames = stalled_exchange(&fx.channel, &[0x40, 0x00]).await;
    let s = trailer_status(&frames);
    assert_eq!(s.code(), Code::DeadlineExceeded, "{s}");
    assert!(s.message().contains("no HEADER frame"), "{s}");
    // A complete HEADER of a unary call, but no request frame.
    let h = header(PROBE, 1, "echo", SerializationMode::Native);
    let frames = stalled_exchange(&fx.channel, &header_frame(&h)).await;
    let s = trailer_status(&frames);
    assert_eq!(s.code(), Code::DeadlineExceeded, "{s}");
    assert!(s.message().contains("no request frame"), "{s}");
    assert_eq!(fx.state.entries.get(), 0, "no handler ran");
    // The node keeps serving.
    assert_eq!(fx.probe.echo("after", 1).await.expect("echo").text, "after");
    fx.stop().await;
}
