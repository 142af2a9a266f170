//! Side by side, in one process on 127.0.0.1: raw iroh (a new bi-stream per 64-byte echo, and
//! one long stream of 64-byte messages) against Aster unary calls through the full actor path
//! (NATIVE, XLANG, JSON) and an Aster server stream of 64-byte messages.
//!
//! Run: `cargo bench --bench side_by_side` (release profile). Counts scale with the env var
//! `ASTER_BENCH_SCALE` (a float, default 1.0: 2,000 sequential calls, 20,000 calls per
//! concurrency level, 200,000 stream messages). Prints a markdown table.
// A bench is a non-test target, so the workspace's unwrap/expect denial applies; errors here
// go through `anyhow` instead, and setup failures abort the run.
#![allow(missing_docs, unreachable_pub)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use aster::prelude::*;
use aster::runtime::transport::{EndpointConfig, bind_endpoint, endpoint_addr};
use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use serde::{Deserialize, Serialize};

const ECHO_ALPN: &[u8] = b"iroh-echo/1";
const MSG: usize = 64;
const CONCURRENCY: [usize; 4] = [1, 16, 64, 256];

// ───────────────────────────── the Aster side ─────────────────────────────

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "bench/Blob")]
pub struct Blob {
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, fory::ForyStruct, AsterType)]
#[serde(default)]
#[aster(tag = "bench/StreamRequest")]
pub struct StreamRequest {
    pub count: i64,
}

#[aster::service(name = "Echo", version = 1)]
pub trait EchoHandler {
    #[unary]
    async fn echo(&self, ctx: CallContext, req: Blob) -> Result<Blob, Status>;

    #[server_stream]
    async fn flood(&self, ctx: CallContext, req: StreamRequest, sink: ServerSink<Blob>) -> Result<(), Status>;
}

pub struct Echo;

impl EchoHandler for Echo {
    async fn echo(&self, _ctx: CallContext, req: Blob) -> Result<Blob, Status> {
        Ok(req)
    }

    async fn flood(&self, _ctx: CallContext, req: StreamRequest, mut sink: ServerSink<Blob>) -> Result<(), Status> {
        let blob = Blob { data: vec![0x5A; MSG] };
        for _ in 0..req.count.max(0) {
            sink.send(blob.clone()).await?;
        }
        Ok(())
    }
}

// ───────────────────────────── the raw iroh side ─────────────────────────────

/// `iroh_echo` protocol: first byte `E` = echo the whole stream back; `S` + u64 BE `n` = send
/// `n` 64-byte messages (one `write_all` each) and finish.
#[derive(Debug, Clone)]
struct RawEcho;

impl ProtocolHandler for RawEcho {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        while let Ok((mut send, mut recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let res: Result<()> = async {
                    let req = recv.read_to_end(1 << 16).await?;
                    match req.first() {
                        Some(b'E') => send.write_all(&req).await?,
                        Some(b'S') => {
                            let n = u64::from_be_bytes(req.get(1..9).context("short S")?.try_into()?);
                            let msg = [0x5Au8; MSG];
                            for _ in 0..n {
                                send.write_all(&msg).await?;
                            }
                        }
                        _ => return Err(anyhow!("bad request")),
                    }
                    send.finish()?;
                    Ok(())
                }
                .await;
                drop(res);
            });
        }
        Ok(())
    }
}

async fn raw_call(conn: &Connection, req: &[u8]) -> Result<()> {
    let (mut send, mut recv) = conn.open_bi().await?;
    send.write_all(req).await?;
    send.finish()?;
    let resp = recv.read_to_end(1 << 16).await?;
    anyhow::ensure!(resp.len() == req.len(), "short echo");
    Ok(())
}

// ───────────────────────────── measurement helpers ─────────────────────────────

#[derive(Default, Clone)]
struct Row {
    p50_us: f64,
    p99_us: f64,
    seq_per_s: f64,
    conc_per_s: Vec<f64>,
    stream_msgs_per_s: Option<f64>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

async fn sequential<F, Fut>(n: usize, warm: usize, call: F) -> Result<(f64, f64, f64)>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    for _ in 0..warm {
        call().await?;
    }
    let mut lat = Vec::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        call().await?;
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    lat.sort_unstable();
    Ok((percentile(&lat, 0.50), percentile(&lat, 0.99), n as f64 / total.as_secs_f64()))
}

/// `total` calls spread over `inflight` tasks, each running its share back to back.
async fn concurrent<F, Fut>(total: usize, inflight: usize, call: F) -> Result<f64>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let call = Arc::new(call);
    let per_task = total.div_ceil(inflight);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(inflight);
    for _ in 0..inflight {
        let call = call.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_task {
                call().await?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok((per_task * inflight) as f64 / start.elapsed().as_secs_f64())
}

struct Counts {
    seq: usize,
    conc: usize,
    stream: usize,
    warm: usize,
}

fn counts() -> Counts {
    let scale: f64 = std::env::var("ASTER_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let n = |base: f64| ((base * scale) as usize).max(16);
    Counts { seq: n(2_000.0), conc: n(20_000.0), stream: n(200_000.0), warm: n(200.0) }
}

// ───────────────────────────── the runs ─────────────────────────────

async fn bench_raw(c: &Counts) -> Result<Row> {
    let server = bind_endpoint(&EndpointConfig::default()).await?;
    let addr = endpoint_addr(&server);
    let router = Router::builder(server).accept(ECHO_ALPN, RawEcho).spawn();
    let client = bind_endpoint(&EndpointConfig::default()).await?;
    let conn = client.connect(addr, ECHO_ALPN).await?;

    let mut req = vec![b'E'];
    req.extend_from_slice(&[0x5A; MSG]);
    let req: Arc<[u8]> = req.into();
    let (p50_us, p99_us, seq_per_s) = {
        let (conn, req) = (conn.clone(), req.clone());
        sequential(c.seq, c.warm, move || {
            let (conn, req) = (conn.clone(), req.clone());
            async move { raw_call(&conn, &req).await }
        })
        .await?
    };
    let mut conc_per_s = Vec::new();
    for inflight in CONCURRENCY {
        let (conn, req) = (conn.clone(), req.clone());
        concurrent(c.warm, inflight, {
            let (conn, req) = (conn.clone(), req.clone());
            move || {
                let (conn, req) = (conn.clone(), req.clone());
                async move { raw_call(&conn, &req).await }
            }
        })
        .await?;
        conc_per_s.push(
            concurrent(c.conc, inflight, move || {
                let (conn, req) = (conn.clone(), req.clone());
                async move { raw_call(&conn, &req).await }
            })
            .await?,
        );
    }

    // one long stream, server → client, 64-byte messages
    let stream_rate = |n: u64| {
        let conn = conn.clone();
        async move {
            let (mut send, mut recv) = conn.open_bi().await?;
            let mut req = vec![b'S'];
            req.extend_from_slice(&n.to_be_bytes());
            let start = Instant::now();
            send.write_all(&req).await?;
            send.finish()?;
            let mut got = 0usize;
            while let Some(chunk) = recv.read_chunk(1 << 16).await? {
                got += chunk.len();
            }
            anyhow::ensure!(got == n as usize * MSG, "stream short: {got}");
            Ok::<_, anyhow::Error>(n as f64 / start.elapsed().as_secs_f64())
        }
    };
    stream_rate(c.warm as u64 * 10).await?;
    let stream_msgs_per_s = Some(stream_rate(c.stream as u64).await?);

    conn.close(0u32.into(), b"done");
    client.close().await;
    router.shutdown().await?;
    Ok(Row { p50_us, p99_us, seq_per_s, conc_per_s, stream_msgs_per_s })
}

async fn bench_aster_unary(c: &Counts, client: &EchoClient, mode: SerializationMode) -> Result<Row> {
    let blob = Arc::new(Blob { data: vec![0x5A; MSG] });
    let call = {
        let (client, blob) = (client.clone(), blob.clone());
        move || {
            let (client, blob) = (client.clone(), blob.clone());
            async move {
                let r = client.echo(&blob, CallOptions::new().mode(mode)).await?;
                anyhow::ensure!(r.data.len() == MSG, "short echo");
                Ok(())
            }
        }
    };
    let (p50_us, p99_us, seq_per_s) = sequential(c.seq, c.warm, call.clone()).await?;
    let mut conc_per_s = Vec::new();
    for inflight in CONCURRENCY {
        concurrent(c.warm, inflight, call.clone()).await?;
        conc_per_s.push(concurrent(c.conc, inflight, call.clone()).await?);
    }
    Ok(Row { p50_us, p99_us, seq_per_s, conc_per_s, stream_msgs_per_s: None })
}

async fn bench_aster_stream(client: &EchoClient, n: usize) -> Result<f64> {
    let start = Instant::now();
    let mut s = client.flood(&StreamRequest { count: n as i64 }, CallOptions::new()).await?;
    let mut got = 0usize;
    while let Some(m) = s.message().await? {
        got += m.data.len();
    }
    anyhow::ensure!(got == n * MSG, "stream short: {got}");
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

fn fmt_rate(v: f64) -> String {
    if v >= 1e6 { format!("{:.2} M/s", v / 1e6) } else { format!("{:.1} k/s", v / 1e3) }
}

async fn run() -> Result<()> {
    let c = counts();
    println!(
        "side_by_side: {} sequential calls, {} calls per concurrency level, {} stream messages, {} warm-up \
         (ASTER_BENCH_SCALE scales them)",
        c.seq, c.conc, c.stream, c.warm
    );

    let raw = bench_raw(&c).await?;

    let node = AsterNode::builder().serve(EchoService(Echo)).spawn().await?;
    let client_ep = bind_endpoint(&EndpointConfig::default()).await?;
    let channel = Channel::connect(&client_ep, node.addr()).await?;
    let client = EchoClient::new(channel.clone());
    let mut rows = vec![("raw iroh (new stream per call)".to_string(), raw.clone())];
    for mode in [SerializationMode::Native, SerializationMode::Xlang, SerializationMode::Json] {
        let row = bench_aster_unary(&c, &client, mode).await?;
        rows.push((format!("aster unary {mode}"), row));
    }
    bench_aster_stream(&client, c.warm * 10).await?;
    let aster_stream = bench_aster_stream(&client, c.stream).await?;
    channel.close();
    client_ep.close().await;
    node.shutdown().await?;

    println!();
    println!(
        "| path | seq p50 | seq p99 | seq calls/s | {} |",
        CONCURRENCY.iter().map(|n| format!("{n} in flight")).collect::<Vec<_>>().join(" | ")
    );
    println!("|---|---|---|---|{}", "---|".repeat(CONCURRENCY.len()));
    for (name, r) in &rows {
        println!(
            "| {name} | {:.0} µs | {:.0} µs | {} | {} |",
            r.p50_us,
            r.p99_us,
            fmt_rate(r.seq_per_s),
            r.conc_per_s.iter().map(|v| fmt_rate(*v)).collect::<Vec<_>>().join(" | ")
        );
    }
    println!();
    println!("| ratio vs raw iroh | seq p50 (×, lower is better) | {} |", {
        CONCURRENCY.iter().map(|n| format!("{n} in flight (×, higher is better)")).collect::<Vec<_>>().join(" | ")
    });
    println!("|---|---|{}", "---|".repeat(CONCURRENCY.len()));
    for (name, r) in rows.iter().skip(1) {
        println!(
            "| {name} | {:.2} | {} |",
            r.p50_us / raw.p50_us,
            r.conc_per_s
                .iter()
                .zip(&raw.conc_per_s)
                .map(|(a, b)| format!("{:.2}", a / b))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    println!();
    let raw_stream = raw.stream_msgs_per_s.unwrap_or(0.0);
    println!("| one stream, {MSG}-byte messages | msgs/s | ratio vs raw |");
    println!("|---|---|---|");
    println!("| raw iroh (write_all per message, unframed) | {} | 1.00 |", fmt_rate(raw_stream));
    println!("| aster server stream (NATIVE) | {} | {:.2} |", fmt_rate(aster_stream), aster_stream / raw_stream);
    println!();
    println!("not done here: tonic (gRPC) and the Python reference side by side.");
    Ok(())
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    // Run on a worker thread like the server tasks (block_on's thread is not a worker, and
    // every wake-up would cross threads).
    rt.block_on(async { tokio::spawn(run()).await? })
}
