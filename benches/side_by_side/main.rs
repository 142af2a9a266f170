//! Side by side, in one process run on 127.0.0.1: raw iroh (the transport's limit) against
//! Aster through the full actor path, and against the alternatives a user would pick instead.
//!
//! Run: `cargo bench --bench side_by_side` (release profile). `ASTER_BENCH_SCALE` (a float,
//! default 1.0) scales the counts: 2,000 sequential calls, 20,000 calls per concurrency level,
//! 200,000 stream messages, 200 warm-up calls. `ASTER_BENCH_ONLY` (comma-separated section
//! names, default all) picks sections: `raw`, `aster`, `streams`, `tonic` (tonic gRPC, plaintext
//! h2 and rustls TLS), `python` (the Python reference server aster-rpc 0.1.2 against an aster-rs
//! node, both serving TaskManager; skipped when its venv is missing; `scripts/bench.sh` runs the
//! bench in a loopback-only network namespace). Prints markdown tables with absolute numbers and
//! ratios; `docs/benchmarks.md` explains them.
// A bench is a non-test target, so the workspace's unwrap/expect denial applies; errors here
// go through `anyhow` instead, and setup failures abort the run.
#![allow(missing_docs, unreachable_pub)]

mod aster_paths;
mod common;
mod grpc;
mod python;
mod raw;

use anyhow::Result;
use aster::prelude::*;

use common::{CONCURRENCY, Counts, MSG, Row, fmt_rate};

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

/// Everything measured, for the tables.
#[derive(Default)]
struct Results {
    /// Unary rows, in print order; the first named "raw iroh" is the reference for ratios.
    unary: Vec<(String, Row)>,
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

    if only.has("raw") {
        let (row, stream) = raw::bench(&c, &CONCURRENCY).await?;
        res.unary.push(("raw iroh (new stream per call)".into(), row));
        res.streams.push(("raw iroh (write_all per message, unframed)".into(), stream));
    }

    if only.has("aster") || only.has("streams") {
        let s = aster_paths::Setup::start(AsterNode::builder()).await?;
        if only.has("aster") {
            for mode in [SerializationMode::Native, SerializationMode::Xlang, SerializationMode::Json] {
                let row = aster_paths::unary(&c, &CONCURRENCY, &s.client, mode).await?;
                res.unary.push((format!("aster unary {mode} (actor path)"), row));
            }
        }
        if only.has("streams") {
            aster_paths::server_stream(&s.client, c.warm * 10).await?;
            let rate = aster_paths::server_stream(&s.client, c.stream).await?;
            res.streams.push(("aster server stream (NATIVE)".into(), rate));
            aster_paths::bidi(&s.client, c.warm * 10).await?;
            let rate = aster_paths::bidi(&s.client, c.stream).await?;
            res.streams.push(("aster bidi echo (NATIVE, messages echoed)".into(), rate));
        }
        s.stop().await?;
    }

    if only.has("tonic") {
        res.unary.push(("tonic gRPC, plaintext h2".into(), grpc::bench(&c, &CONCURRENCY, false).await?));
        res.unary.push(("tonic gRPC, rustls TLS".into(), grpc::bench(&c, &CONCURRENCY, true).await?));
    }

    if only.has("python") {
        python::bench(&c, &CONCURRENCY, &mut res.unary).await?;
    }

    print_tables(&res);
    Ok(())
}

fn print_tables(res: &Results) {
    let levels = CONCURRENCY.iter().map(|n| format!("{n} in flight")).collect::<Vec<_>>();
    if !res.unary.is_empty() {
        println!();
        println!("| unary, {MSG}-byte echo | seq p50 | seq p99 | seq calls/s | {} |", levels.join(" | "));
        println!("|---|---|---|---|{}", "---|".repeat(levels.len()));
        for (name, r) in &res.unary {
            println!(
                "| {name} | {:.0} µs | {:.0} µs | {} | {} |",
                r.p50_us,
                r.p99_us,
                fmt_rate(r.seq_per_s),
                r.conc_per_s.iter().map(|v| fmt_rate(*v)).collect::<Vec<_>>().join(" | ")
            );
        }
    }
    if let Some(raw) = res.row("raw iroh") {
        println!();
        println!("| ratio vs raw iroh | seq p50 (×, lower is better) | {} (×, higher is better) |", levels.join(" | "));
        println!("|---|---|{}", "---|".repeat(levels.len()));
        for (name, r) in res.unary.iter().filter(|(n, _)| !n.starts_with("raw iroh")) {
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
    }
    python::print_ratios(&res.unary, &CONCURRENCY);
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
    // Run on a worker thread like the server tasks (block_on's thread is not a worker, and
    // every wake-up would cross threads).
    rt.block_on(async { tokio::spawn(run()).await? })
}
