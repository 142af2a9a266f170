//! The worker pool of shared services: exhaustion queues calls (none lost, none entering a
//! handler early), and streaming calls never occupy pool workers.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use aster::prelude::*;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_pool_queues_calls_without_losing_any() {
    let fx = ProbeFixture::start(AsterNode::builder().pool_size(2)).await;

    let gates: Vec<_> = (0..2)
        .map(|i| {
            let p = fx.probe.clone();
            tokio::spawn(async move { p.gate(&format!("g{i}")).await })
        })
        .collect();
    fx.state.gate_entered.wait_for(2, "both gates entered").await;
    assert_eq!(fx.state.entries.get(), 2);

    let echoes: Vec<_> = (0..10)
        .map(|i| {
            let p = fx.probe.clone();
            tokio::spawn(async move { p.echo("queued", i).await })
        })
        .collect();
    // Give the queued calls every chance to (wrongly) reach a handler; the assertion below
    // holds for any amount of waiting, it does not measure time.
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(fx.state.entries.get(), 2, "no handler entered while both workers are held");
    }
    assert!(echoes.iter().all(|e| !e.is_finished()), "queued calls wait for a worker");
    assert!(gates.iter().all(|g| !g.is_finished()));

    fx.state.gate.open();
    for (i, g) in gates.into_iter().enumerate() {
        assert_eq!(guard("gate call", g).await.unwrap().unwrap(), Msg::new(format!("gate g{i}"), 0));
    }
    for (i, e) in echoes.into_iter().enumerate() {
        assert_eq!(guard("queued echo", e).await.unwrap().unwrap(), Msg::new("queued", i as i64));
    }
    assert_eq!(fx.state.entries.get(), 12, "every call ran exactly once");
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_streams_do_not_starve_unary_calls() {
    let fx = ProbeFixture::start(AsterNode::builder().pool_size(1)).await;

    // endless server streams, a held client stream and a held bidi call
    let mut streams = Vec::new();
    for i in 0..3 {
        let mut s = fx.probe.server_stream("forever", &Msg::new(format!("s{i}"), 0)).await.unwrap();
        assert_eq!(guard("first tick", s.message()).await.unwrap(), Some(Msg::new(format!("s{i}"), 1)));
        streams.push(s);
    }
    let mut sum = fx.probe.sum(CallOptions::new()).await.unwrap();
    sum.send(&Msg::new("n", 1)).await.unwrap();
    let (mut tx, mut rx) = fx.probe.echo_bidi().await.unwrap();
    tx.send(&Msg::new("b", 1)).await.unwrap();
    assert_eq!(guard("bidi echo", rx.message()).await.unwrap(), Some(Msg::new("echo b", 1)));

    // the single pool worker is free for unary calls
    for i in 0..5 {
        assert_eq!(guard("unary during streams", fx.probe.echo("unary", i)).await.unwrap(), Msg::new("unary", i));
    }
    // the streams are still alive
    for (i, s) in streams.iter_mut().enumerate() {
        let m = guard("tick", s.message()).await.unwrap().expect("stream still running");
        assert_eq!(m.text, format!("s{i}"));
    }
    sum.send(&Msg::new("n", 2)).await.unwrap();
    assert_eq!(guard("sum finish", sum.finish()).await.unwrap(), Msg::new("2 items", 3));
    tx.close().await.unwrap();
    assert!(guard("bidi end", rx.collect_all()).await.unwrap().is_empty());

    drop(streams);
    fx.state.cancelled.wait_for(3, "the dropped streams are cancelled").await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_worker_does_not_block_streams() {
    // the converse: with the only worker held by a unary call, streams still run
    let fx = ProbeFixture::start(AsterNode::builder().pool_size(1)).await;
    let p = fx.probe.clone();
    let held = tokio::spawn(async move { p.gate("held").await });
    fx.state.gate_entered.wait_for(1, "gate entered").await;

    let ticks = guard("ticks", async { fx.probe.server_stream("ticks", &Msg::new("t", 3)).await?.collect_all().await })
        .await
        .unwrap();
    assert_eq!(ticks.len(), 3);
    let (mut tx, rx) = fx.probe.echo_bidi().await.unwrap();
    tx.send(&Msg::new("x", 1)).await.unwrap();
    tx.close().await.unwrap();
    assert_eq!(guard("bidi", rx.collect_all()).await.unwrap(), vec![Msg::new("echo x", 1)]);
    // sessions have their own actors as well
    let s = fx.channel.open_session(PROBE_SESSION, 1, CallOptions::new()).await.unwrap();
    let r: Msg = guard("session call", s.unary("add", &Msg::new("", 1), CallOptions::new())).await.unwrap();
    assert_eq!(r.n, 1);
    s.close().await.unwrap();

    assert!(!held.is_finished());
    fx.state.gate.open();
    assert_eq!(guard("held call", held).await.unwrap().unwrap(), Msg::new("gate held", 0));
    fx.stop().await;
}

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "pooltest/Fill")]
pub struct Fill {
    pub len: i64,
    pub data: Vec<u8>,
}

#[aster::service(name = "Filler", version = 1)]
pub trait FillerHandler {
    #[unary]
    async fn fill(&self, ctx: CallContext, req: Fill) -> Result<Fill, Status>;
}

struct Filler;

impl FillerHandler for Filler {
    /// `len` bytes that do not compress (so the answer really is that large on the wire).
    async fn fill(&self, _ctx: CallContext, req: Fill) -> Result<Fill, Status> {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let data = (0..req.len.max(0))
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        Ok(Fill { len: req.len, data })
    }
}

/// A caller that asks for a large answer, grants little flow-control credit and never reads
/// does not keep the (only) worker busy: the next call is served. (With noq's defaults the
/// answer is accepted into the send buffer at once; should a write have to wait, `CallTail`
/// finishes it outside the worker, bounded by the call's deadline.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_does_not_read_its_answer_does_not_hold_a_worker() {
    let node = spawn(AsterNode::builder().pool_size(1).serve(FillerService(Filler))).await;
    let (ep, channel) = connect(&node).await;
    // The caller grants little flow-control credit, so the answer cannot leave the server.
    channel.connection().set_receive_window(iroh::endpoint::VarInt::from_u32(64 * 1024));
    // A raw call (HEADER + request + end of input in one write), never read.
    let codec = aster::runtime::codec::PayloadCodec::new(SerializationMode::Native);
    let mut bytes = header_frame(&header("Filler", 1, "fill", SerializationMode::Native));
    let (f, p) = codec.encode(&Fill { len: 15 * 1024 * 1024, data: Vec::new() }).unwrap();
    bytes.extend(frame_bytes(f, &p));
    let stream =
        guard("open raw stream", aster::runtime::transport::FramedStream::open(channel.connection())).await.unwrap();
    let (unread, mut writer) = stream.split();
    writer.push_encoded(&bytes);
    guard("raw write", writer.finish()).await.unwrap();
    // The next call needs the same worker; it is answered while the first answer is unread.
    let client = FillerClient::new(channel.clone());
    let small = guard("second call", client.fill(&Fill { len: 16, data: Vec::new() }, CallOptions::new())).await;
    assert_eq!(small.unwrap().data.len(), 16);
    drop(unread);
    channel.close();
    ep.close().await;
    guard("shutdown", node.shutdown_with_grace(Duration::from_secs(5))).await.unwrap();
}
