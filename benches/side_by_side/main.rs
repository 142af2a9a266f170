//! Side by side, in one process run on 127.0.0.1: raw iroh (the transport's limit) against
//! Aster through the full actor path, and against the alternatives a user would pick instead.
//!
//! Run: `cargo bench --bench side_by_side` (release profile). `ASTER_BENCH_SCALE` (a float,
//! default 1.0) scales the counts: 2,000 sequential calls, 20,000 calls per concurrency level,
//! 200,000 stream messages, 200 warm-up calls. `ASTER_BENCH_ONLY` (comma-separated section
//! names, default all) picks sections: `raw`, `aster`, `direct` (the actor hop bypassed),
//! `streams`, `tonic` (tonic gRPC, plaintext h2 and rustls TLS), `python` (the Python reference
//! server aster-rpc 0.1.2 against an aster-rs node, both serving TaskManager; skipped when its
//! venv is missing), `memory`. `ASTER_BENCH_MODES` (`native,xlang,json`) picks the modes of the
//! `aster` rows; `ASTER_BENCH_ROUNDS` (default 3) the number of interleaved rounds whose medians
//! are reported. `scripts/bench.sh` runs the bench in a loopback-only network namespace. Prints
//! markdown tables with absolute numbers and ratios; `docs/benchmarks.md` explains them.
// A bench is a non-test target, so the workspace's unwrap/expect denial applies; errors here
// go through `anyhow` instead, and setup failures abort the run.
#![allow(missing_docs, unreachable_pub)]

mod aster_paths;
mod common;
mod grpc;
mod memory;
mod python;
mod raw;

use anyhow::Result;
use aster::prelude::*;

use common::{CONCURRENCY, Caller, Counts, MSG, Row, fmt_rate, rate_cells, ratio_cells, unary_row};

/// Sections picked by `ASTER_BENCH_ONLY` (all when unset).
struct Only(Option<Vec<String>>);

impl Only {
    fn from_env() -> Only {
        Only(std::env::var("ASTER_BENCH_ONLY").ok().map(|s| s.split(',').map(|p| p.trim().to_string()).collect()))
    }

    fn has(&self, section: &str) -> bool {
        self.0.as_ref().is_none_or(|l| l.iter().any(|s| s == section))
    }
}

/// Serialization modes of the Aster unary rows: `ASTER_BENCH_MODES` (comma-separated
/// `native`, `xlang`, `json`), default all three.
fn modes_from_env() -> Vec<SerializationMode> {
    let all = [SerializationMode::Native, SerializationMode::Xlang, SerializationMode::Json];
    match std::env::var("ASTER_BENCH_MODES") {
        Ok(list) => all.into_iter().filter(|m| list.split(',').any(|s| s.trim() == m.as_str())).collect(),
        Err(_) => all.to_vec(),
    }
}

/// Everything measured, for the tables.
#[derive(Default)]
struct Results {
    /// Unary rows, in print order; the first named "raw iroh" is the reference for ratios.
    unary: Vec<(String, Row)>,
    /// The same TaskManager service served by an aster-rs node and by the Python reference.
    taskmanager: Vec<(String, Row)>,
    /// One-stream message rates: (path, msgs/s).
    streams: Vec<(String, f64)>,
}

impl Results {
    fn row(&self, prefix: &str) -> Option<&Row> {
        self.unary.iter().find(|(n, _)| n.starts_with(prefix)).map(|(_, r)| r)
    }
}

async fn run() -> Result<()> {
    let c = Counts::from_env();
    let only = Only::from_env();
    println!(
        "side_by_side: {} sequential calls, {} calls per concurrency level, {} stream messages, {} warm-up \
         (ASTER_BENCH_SCALE scales them)",
        c.seq, c.conc, c.stream, c.warm
    );
    let mut res = Results::default();
    let rounds = common::rounds();

    // Every unary path is set up first; the paths are then measured in interleaved rounds.
    let raw = if only.has("raw") { Some(raw::RawSetup::start().await?) } else { None };
    let actor = if only.has("aster") || only.has("streams") {
        Some(aster_paths::Setup::start(AsterNode::builder()).await?)
    } else {
        None
    };
    // The ablation: the same node and service with the actor hop bypassed.
    let direct = if only.has("direct") {
        Some(aster_paths::Setup::start(AsterNode::builder().unary_dispatch(UnaryDispatch::Inline)).await?)
    } else {
        None
    };
    let tonic = if only.has("tonic") {
        Some((grpc::GrpcSetup::start(false).await?, grpc::GrpcSetup::start(true).await?))
    } else {
        None
    };
    let mut paths: Vec<(String, Caller)> = Vec::new();
    if let Some(r) = &raw {
        paths.push(("raw iroh (new stream per call)".into(), r.caller()));
    }
    if let (Some(s), true) = (&actor, only.has("aster")) {
        for mode in modes_from_env() {
            paths.push((format!("aster unary {mode} (actor path)"), aster_paths::unary_caller(&s.client, mode)));
        }
    }
    if let Some(s) = &direct {
        paths.push((
            "aster unary native (direct dispatch, actor hop bypassed)".into(),
            aster_paths::unary_caller(&s.client, SerializationMode::Native),
        ));
    }
    if let Some((plain, tls)) = &tonic {
        paths.push(("tonic gRPC, plaintext h2".into(), plain.caller()));
        paths.push(("tonic gRPC, rustls TLS".into(), tls.caller()));
    }
    let mut measured: Vec<Vec<Row>> = vec![Vec::new(); paths.len()];
    let mut raw_stream = Vec::new();
    let mut server_stream = Vec::new();
    let mut bidi = Vec::new();
    // A client stream is capped at 100,000 items (limits::MAX_CLIENT_STREAM_ITEMS).
    let bidi_n = c.stream.min(aster::runtime::wire::limits::MAX_CLIENT_STREAM_ITEMS);
    for round in 0..rounds {
        eprintln!("round {}/{rounds}", round + 1);
        for ((_, call), rows) in paths.iter().zip(measured.iter_mut()) {
            let call = call.clone();
            rows.push(unary_row(&c, &CONCURRENCY, move || call()).await?);
        }
        if only.has("streams") {
            if let Some(r) = &raw {
                r.stream_rate(c.warm as u64 * 10).await?;
                raw_stream.push(r.stream_rate(c.stream as u64).await?);
            }
            if let Some(s) = &actor {
                aster_paths::server_stream(&s.client, c.warm * 10).await?;
                server_stream.push(aster_paths::server_stream(&s.client, c.stream).await?);
                aster_paths::bidi(&s.client, c.warm * 10).await?;
                bidi.push(aster_paths::bidi(&s.client, bidi_n).await?);
            }
        }
    }
    for ((name, _), rows) in paths.iter().zip(&measured) {
        res.unary.push((name.clone(), Row::median_of(rows)));
    }
    if !raw_stream.is_empty() {
        res.streams.push(("raw iroh (write_all per message, unframed)".into(), common::median(raw_stream)));
    }
    if !server_stream.is_empty() {
        res.streams.push(("aster server stream (NATIVE)".into(), common::median(server_stream)));
        res.streams.push((
            format!("aster bidi echo (NATIVE, {bidi_n} messages each way, echoes counted)"),
            common::median(bidi),
        ));
    }
    if let Some(r) = raw {
        r.stop().await?;
    }
    for s in [actor, direct].into_iter().flatten() {
        s.stop().await?;
    }
    if let Some((plain, tls)) = tonic {
        plain.stop().await?;
        tls.stop().await?;
    }

    if only.has("python") {
        python::bench(&c, &CONCURRENCY, &mut res.taskmanager).await?;
    }

    print_tables(&res);

    if only.has("memory") {
        let sessions = (10_000.0 * c.scale).max(100.0) as usize;
        let connections = (500.0 * c.scale).max(20.0) as usize;
        let m = memory::bench(sessions, connections).await?;
        println!();
        println!("| server memory (separate process) | resident | live heap |");
        println!("|---|---|---|");
        println!("| node after warm-up (baseline) | {:.1} MiB | |", m.baseline as f64 / (1024.0 * 1024.0));
        println!(
            "| per idle session ({} sessions on one connection, one call each) | {:.0} B | {:.0} B |",
            m.sessions, m.per_session.0, m.per_session.1
        );
        println!(
            "| per idle connection ({} connections, one call each) | {:.0} B | {:.0} B |",
            m.connections, m.per_connection.0, m.per_connection.1
        );
    }
    Ok(())
}

/// A table of unary rows: latency, allocations and throughput at each level.
fn print_rows(title: &str, rows: &[(String, Row)], levels: &[String]) {
    if rows.is_empty() {
        return;
    }
    println!();
    println!("| {title} | seq p50 | seq p99 | seq calls/s | allocs/call (bytes) | {} |", levels.join(" | "));
    println!("|---|---|---|---|---|{}", "---|".repeat(levels.len()));
    for (name, r) in rows {
        println!(
            "| {name} | {:.0} µs | {:.0} µs | {} | {:.1} ({:.0} B) | {} |",
            r.p50_us,
            r.p99_us,
            fmt_rate(r.seq_per_s),
            r.allocs_per_call,
            r.alloc_bytes_per_call,
            rate_cells(&r.conc_per_s)
        );
    }
}

fn print_tables(res: &Results) {
    let levels = CONCURRENCY.iter().map(|n| format!("{n} in flight")).collect::<Vec<_>>();
    print_rows(&format!("unary, {MSG}-byte echo"), &res.unary, &levels);
    if let Some(raw) = res.row("raw iroh") {
        println!();
        println!("| ratio vs raw iroh | seq p50 (×, lower is better) | {} (×, higher is better) |", levels.join(" | "));
        println!("|---|---|{}", "---|".repeat(levels.len()));
        for (name, r) in res.unary.iter().filter(|(n, _)| !n.starts_with("raw iroh")) {
            println!("| {name} | {:.2} | {} |", r.p50_us / raw.p50_us, ratio_cells(&r.conc_per_s, &raw.conc_per_s, 2));
        }
    }
    if let (Some(actor), Some(direct)) = (res.row("aster unary native (actor"), res.row("aster unary native (direct")) {
        println!();
        println!(
            "| actor path vs direct dispatch (NATIVE) | seq p50 (×, lower is better) | {} (×, higher is better) |",
            levels.join(" | ")
        );
        println!("|---|---|{}", "---|".repeat(levels.len()));
        println!(
            "| full actor path / direct | {:.2} | {} |",
            actor.p50_us / direct.p50_us,
            ratio_cells(&actor.conc_per_s, &direct.conc_per_s, 2)
        );
    }
    print_rows("TaskManager.assign_task (XLANG, admission first)", &res.taskmanager, &levels);
    python::print_ratios(&res.taskmanager, &CONCURRENCY);
    if !res.streams.is_empty() {
        let raw = res.streams.iter().find(|(n, _)| n.starts_with("raw iroh")).map(|(_, v)| *v);
        println!();
        println!("| one stream, {MSG}-byte messages | msgs/s | ratio vs raw iroh |");
        println!("|---|---|---|");
        for (name, v) in &res.streams {
            let ratio = raw.map_or("–".to_string(), |r| format!("{:.2}", v / r));
            println!("| {name} | {} | {ratio} |", fmt_rate(*v));
        }
    }
}

fn main() -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if let Ok(max_streams) = std::env::var(memory::SERVER_ENV) {
        let max_streams = max_streams.parse()?;
        return rt.block_on(async move { tokio::spawn(memory::serve(max_streams)).await? });
    }
    // Run on a worker thread like the server tasks (block_on's thread is not a worker, and
    // every wake-up would cross threads).
    rt.block_on(async { tokio::spawn(run()).await? })
}
