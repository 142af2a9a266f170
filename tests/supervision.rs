//! Supervision: restart intensity at service level escalating to the node (which restarts the
//! service, or gives up and stops), and in-place restart of a session after a handler panic.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use aster::prelude::*;
use common::*;

fn intensity(max_restarts: u32) -> RestartIntensity {
    RestartIntensity { max_restarts, period: Duration::from_secs(60) }
}

async fn panic_call(fx: &ProbeFixture, text: &str) {
    let s = expect_code(guard("panic call", fx.probe.panic(text)).await, Code::Internal);
    assert!(s.message().contains(&format!("probe panic: {text}")), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_escalation_is_restarted_by_the_node() {
    let builder =
        AsterNode::builder().pool_size(2).service_restart_intensity(intensity(1)).node_restart_intensity(intensity(5));
    let fx = ProbeFixture::start(builder).await;

    // first panic: within the service's intensity, the worker is restarted
    panic_call(&fx, "one").await;
    let r = retry_unavailable(200, || fx.probe.echo("after one", 1)).await;
    assert_eq!(r.unwrap(), Msg::new("after one", 1));

    // second panic within the period: the service supervisor gives up and escalates; the node
    // restarts the whole service (calls may see UNAVAILABLE while it restarts)
    panic_call(&fx, "two").await;
    for i in 0..5 {
        let r = retry_unavailable(200, || fx.probe.echo("after two", i)).await;
        assert_eq!(r.unwrap(), Msg::new("after two", i), "the restarted service serves");
    }
    let ticks = retry_unavailable(200, || async {
        fx.probe.server_stream("ticks", &Msg::new("t", 3)).await?.collect_all().await
    })
    .await
    .unwrap();
    assert_eq!(ticks.len(), 3);
    assert!(fx.node.is_running(), "the node survived");

    // the restarted service has a fresh intensity window: one more panic is tolerated, and the
    // session service next to it was never affected
    panic_call(&fx, "three").await;
    let r = retry_unavailable(200, || fx.probe.echo("after three", 3)).await;
    assert_eq!(r.unwrap(), Msg::new("after three", 3));
    let s = fx.channel.open_session(PROBE_SESSION, 1, CallOptions::new()).await.unwrap();
    let r: Msg = s.unary("add", &Msg::new("", 2), CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 2);
    s.close().await.unwrap();
    assert!(fx.node.is_running());
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_stops_when_its_intensity_is_exceeded() {
    let builder =
        AsterNode::builder().pool_size(2).service_restart_intensity(intensity(1)).node_restart_intensity(intensity(0));
    let mut fx = ProbeFixture::start(builder).await;
    assert!(fx.node.is_running());

    panic_call(&fx, "one").await;
    // the first panic is absorbed by the service supervisor
    let r = retry_unavailable(200, || fx.probe.echo("ok", 1)).await;
    assert_eq!(r.unwrap(), Msg::new("ok", 1));
    // the escalation this causes takes the node down, possibly before the call's INTERNAL
    // trailer is delivered (the endpoint closes every connection)
    let err = guard("fatal panic call", fx.probe.panic("two")).await.unwrap_err();
    assert!(matches!(err.code(), Code::Internal | Code::Unavailable), "{err}");

    // escalation reaches the node, which may not restart anything: it stops
    guard("the node stops", fx.node.stopped()).await;
    assert!(!fx.node.is_running());

    // nothing is served any more
    let err = guard("call after the node stopped", fx.probe.echo("late", 1)).await;
    assert!(err.is_err(), "{err:?}");
    let err = err.unwrap_err();
    assert!(matches!(err.code(), Code::Unavailable | Code::Cancelled), "{err}");
    fx.client_ep.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_panic_restarts_the_session_in_place() {
    let fx = ProbeFixture::start(AsterNode::builder()).await;
    let s = fx.channel.open_session(PROBE_SESSION, 1, CallOptions::new()).await.unwrap();
    let r: Msg = s.unary("add", &Msg::new("", 5), CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 5);

    let err = guard("session panic", s.unary::<Msg, Msg>("panic", &Msg::new("kaboom", 0), CallOptions::new())).await;
    let st = expect_code(err, Code::Internal);
    assert!(st.message().contains("probe session panic: kaboom"), "{st}");

    // the same session keeps working; its instance was rebuilt (state reset)
    let r: Msg = guard("get after panic", s.unary("get", &Msg::default(), CallOptions::new())).await.unwrap();
    assert_eq!(r, Msg::new(s.session_id(), 0), "state was reset by the in-place restart");
    let r: Msg = s.unary("add", &Msg::new("", 2), CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 2);
    // streams in the same session too
    let mut stream = s.server_stream::<Msg, Msg>("forever", &Msg::new("tick", 0), CallOptions::new()).await.unwrap();
    assert_eq!(guard("tick", stream.message()).await.unwrap(), Some(Msg::new("tick", 3)));
    drop(stream);
    let r: Msg = guard("get after cancel", s.unary("get", &Msg::default(), CallOptions::new())).await.unwrap();
    assert_eq!(r.n, 2);

    // other sessions were not touched
    let other = fx.channel.open_session(PROBE_SESSION, 1, CallOptions::new()).await.unwrap();
    let r: Msg = other.unary("add", &Msg::new("", 7), CallOptions::new()).await.unwrap();
    assert_eq!(r.n, 7);
    other.close().await.unwrap();
    s.close().await.unwrap();
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_and_queued_during_a_service_restart() {
    // any failure escalates at once; the node restarts the service
    let builder =
        AsterNode::builder().pool_size(2).service_restart_intensity(intensity(0)).node_restart_intensity(intensity(5));
    let fx = ProbeFixture::start(builder).await;

    // worker 1: a call in flight that only ends when cancelled
    let p = fx.probe.clone();
    let in_flight = tokio::spawn(async move { p.sleep(CallOptions::new()).await });
    fx.state.sleep_entered.wait_for(1, "sleep entered").await;
    // worker 2: a call that panics once the gate opens
    let p = fx.probe.clone();
    let panicking = tokio::spawn(async move { p.gate("panic").await });
    fx.state.gate_entered.wait_for(1, "gate entered").await;
    // the pool is exhausted: these queue for a worker
    let queued: Vec<_> = (0..3)
        .map(|i| {
            let p = fx.probe.clone();
            tokio::spawn(async move { p.echo("queued", i).await })
        })
        .collect();
    // (a head start for the queued calls; nothing below depends on it)
    tokio::time::sleep(Duration::from_millis(100)).await;

    fx.state.gate.open();
    let s = expect_code(guard("panicking call", panicking).await.unwrap(), Code::Internal);
    assert!(s.message().contains("probe panic: gated"), "{s}");

    // the call in flight on the killed incarnation fails as UNAVAILABLE (not a handler error)
    let s = expect_code(guard("call in flight", in_flight).await.unwrap(), Code::Unavailable);
    assert!(s.message().contains("restarting"), "{s}");
    // queued calls are not lost in the old pool: each either failed over as UNAVAILABLE or was
    // served by the restarted service
    for (i, q) in queued.into_iter().enumerate() {
        match guard("queued call", q).await.unwrap() {
            Ok(m) => assert_eq!(m, Msg::new("queued", i as i64)),
            Err(s) => assert_eq!(s.code(), Code::Unavailable, "{s}"),
        }
    }
    let r = retry_unavailable(200, || fx.probe.echo("restarted", 1)).await;
    assert_eq!(r.unwrap(), Msg::new("restarted", 1));
    assert!(fx.node.is_running());
    fx.stop().await;
}
