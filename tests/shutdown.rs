//! Graceful shutdown: in-flight calls drain within the grace period, calls past a short grace
//! are cancelled (UNAVAILABLE), and nothing is served afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use aster::prelude::*;
use common::*;

/// Waits until the node refuses new calls (shutdown has closed admission): polls with a fresh
/// call until one fails with UNAVAILABLE, a bounded number of times.
async fn wait_until_refusing(probe: &ProbeClient) -> Status {
    for _ in 0..500 {
        match guard("probe call during shutdown", probe.echo("probe", 0)).await {
            Err(s) if s.code() == Code::Unavailable => return s,
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    panic!("the node never started refusing calls");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_call_drains_within_the_grace_period() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let ProbeFixture { node, state, client_ep, channel, probe } = fx;

    let p = probe.clone();
    let in_flight = tokio::spawn(async move { p.gate("drain me").await });
    state.gate_entered.wait_for(1, "gate entered").await;

    let shutdown = tokio::spawn(node.shutdown_with_grace(Duration::from_secs(60)));
    // admission is closed while the call is still running
    let refused = wait_until_refusing(&probe).await;
    assert!(refused.message().contains("shutting down"), "{refused}");
    assert!(!in_flight.is_finished() && !shutdown.is_finished(), "draining waits for the call");

    state.gate.open();
    assert_eq!(guard("drained call", in_flight).await.unwrap().unwrap(), Msg::new("gate drain me", 0));
    let report = guard("shutdown", shutdown).await.unwrap().unwrap();
    assert_eq!(report, ShutdownReport { drained: true, cancelled_calls: 0 });

    let err = guard("call after shutdown", probe.echo("late", 1)).await;
    expect_code(err, Code::Unavailable);
    channel.close();
    client_ep.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_past_a_short_grace_are_cancelled() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let ProbeFixture { node, state, client_ep, channel, probe } = fx;

    // a unary call held at the gate and an endless stream
    let p = probe.clone();
    let held = tokio::spawn(async move { p.gate("never released").await });
    state.gate_entered.wait_for(1, "gate entered").await;
    let mut stream = probe.server_stream("forever", &Msg::new("tick", 0)).await.unwrap();
    assert!(guard("tick", stream.message()).await.unwrap().is_some());

    let report = guard("shutdown", node.shutdown_with_grace(Duration::from_millis(200))).await.unwrap();
    assert!(!report.drained, "{report:?}");
    assert_eq!(report.cancelled_calls, 2, "{report:?}");

    let s = guard("held call", held).await.unwrap().unwrap_err();
    assert!(matches!(s.code(), Code::Unavailable | Code::Cancelled), "{s}");
    let end = guard("stream end", async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                other => break other,
            }
        }
    })
    .await;
    let s = end.unwrap_err();
    assert!(matches!(s.code(), Code::Unavailable | Code::Cancelled), "{s}");
    state.cancelled.wait_for(1, "the stream handler observes the cancellation").await;
    assert_eq!(state.gate_done.get(), 0, "the gate was never released");
    channel.close();
    client_ep.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_served_after_shutdown() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let ProbeFixture { node, state: _, client_ep, channel, probe } = fx;
    let addr = node.addr();
    let session = channel.open_session(PROBE_SESSION, 1, CallOptions::new()).await.unwrap();
    let r: Msg = session.unary("add", &Msg::new("", 1), CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 1);

    let report = guard("shutdown", node.shutdown()).await.unwrap();
    assert_eq!(report, ShutdownReport { drained: true, cancelled_calls: 0 }, "an idle session is not a call");

    // calls on the existing connection and session fail
    expect_code(guard("unary after shutdown", probe.echo("late", 1)).await, Code::Unavailable);
    let err =
        guard("session call after shutdown", session.unary::<Msg, Msg>("get", &Msg::default(), CallOptions::new()))
            .await;
    expect_code(err, Code::Unavailable);
    let err = guard("new session after shutdown", channel.open_session(PROBE_SESSION, 1, CallOptions::new())).await;
    expect_code(err, Code::Unavailable);
    // and a new connection cannot be made: the dial fails, or never completes (the closed
    // socket does not answer; the wait is bounded only to keep the test short)
    match tokio::time::timeout(Duration::from_secs(1), Channel::connect(&client_ep, addr)).await {
        Err(_elapsed) => {}
        Ok(r) => {
            expect_code(r, Code::Unavailable);
        }
    }
    client_ep.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_of_an_idle_node_reports_drained() {
    let fx = ProbeFixture::start(AsterNode::builder().shutdown_grace(Duration::from_secs(30))).await;
    assert_eq!(fx.probe.echo("x", 1).await.unwrap(), Msg::new("x", 1));
    assert!(fx.node.is_running());
    let ProbeFixture { node, client_ep, channel, .. } = fx;
    let report = guard("shutdown", node.shutdown()).await.unwrap();
    assert_eq!(report, ShutdownReport { drained: true, cancelled_calls: 0 });
    channel.close();
    client_ep.close().await;
}
