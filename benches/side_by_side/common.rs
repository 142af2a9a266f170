//! Measurement helpers shared by every side of the side-by-side bench.

use std::alloc::System;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::future::BoxFuture;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

/// Payload size of every echo and stream message.
pub const MSG: usize = 64;
/// Calls in flight for the throughput runs.
pub const CONCURRENCY: [usize; 4] = [1, 16, 64, 256];

/// The system allocator with counters (both ends of every path run in this process, so a
/// count per call covers client and server together).
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// (allocations incl. reallocations, bytes requested) so far, process-wide.
pub fn alloc_counts() -> (u64, u64) {
    let s = GLOBAL.stats();
    ((s.allocations + s.reallocations) as u64, (s.bytes_allocated + s.bytes_reallocated.max(0) as usize) as u64)
}

/// (live heap bytes = allocated − freed, allocations − frees) so far, process-wide.
pub fn live_heap() -> (i64, i64) {
    let s = GLOBAL.stats();
    let bytes = (s.bytes_allocated as i64 - s.bytes_deallocated as i64) + s.bytes_reallocated as i64;
    (bytes, s.allocations as i64 - s.deallocations as i64)
}

/// How many calls/messages each run makes (`ASTER_BENCH_SCALE` multiplies them).
#[derive(Clone, Copy, Debug)]
pub struct Counts {
    /// `ASTER_BENCH_SCALE` (default 1.0), for sections that size themselves.
    pub scale: f64,
    pub seq: usize,
    pub conc: usize,
    pub stream: usize,
    pub warm: usize,
}

impl Counts {
    pub fn from_env() -> Counts {
        let scale: f64 = std::env::var("ASTER_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
        let n = |base: f64| ((base * scale) as usize).max(16);
        Counts { scale, seq: n(2_000.0), conc: n(20_000.0), stream: n(200_000.0), warm: n(200.0) }
    }
}

/// One unary path's results.
#[derive(Default, Clone, Debug)]
pub struct Row {
    pub p50_us: f64,
    pub p99_us: f64,
    pub seq_per_s: f64,
    /// Heap allocations (and bytes) per call during the sequential run, client and server
    /// together (counted by the instrumented global allocator; other tasks of the process add a little).
    pub allocs_per_call: f64,
    pub alloc_bytes_per_call: f64,
    /// Calls/s at each of [`CONCURRENCY`] (fewer entries when a level was skipped).
    pub conc_per_s: Vec<f64>,
}

/// One call of a unary path, type-erased so paths can be measured in interleaved rounds.
pub type Caller = Arc<dyn Fn() -> BoxFuture<'static, Result<()>> + Send + Sync>;

/// Wraps a call closure as a [`Caller`].
pub fn caller<F, Fut>(f: F) -> Caller
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// How many interleaved rounds (`ASTER_BENCH_ROUNDS`, default 3): every path is measured once
/// per round, and each figure reported is the median over the rounds, so a slow or fast spell
/// of the machine touches every path alike.
pub fn rounds() -> usize {
    std::env::var("ASTER_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1)
}

/// The median of `xs` (the mean of the middle two for an even count).
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => xs[n / 2],
        _ => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

impl Row {
    /// Figure by figure, the median over several measurements of one path.
    pub fn median_of(rows: &[Row]) -> Row {
        let m = |f: &dyn Fn(&Row) -> f64| median(rows.iter().map(f).collect());
        let levels = rows.iter().map(|r| r.conc_per_s.len()).min().unwrap_or(0);
        Row {
            p50_us: m(&|r| r.p50_us),
            p99_us: m(&|r| r.p99_us),
            seq_per_s: m(&|r| r.seq_per_s),
            allocs_per_call: m(&|r| r.allocs_per_call),
            alloc_bytes_per_call: m(&|r| r.alloc_bytes_per_call),
            conc_per_s: (0..levels).map(|i| median(rows.iter().map(|r| r.conc_per_s[i]).collect())).collect(),
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(idx).map_or(0.0, |d| d.as_secs_f64() * 1e6)
}

/// What [`sequential`] measured.
pub struct Sequential {
    pub p50_us: f64,
    pub p99_us: f64,
    pub per_s: f64,
    pub allocs_per_call: f64,
    pub alloc_bytes_per_call: f64,
}

/// `n` calls one after another (after `warm` unmeasured ones).
pub async fn sequential<F, Fut>(n: usize, warm: usize, call: F) -> Result<Sequential>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    for _ in 0..warm {
        call().await?;
    }
    let mut lat = Vec::with_capacity(n);
    let (allocs0, bytes0) = alloc_counts();
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        call().await?;
        lat.push(t.elapsed());
    }
    let total = start.elapsed();
    let (allocs1, bytes1) = alloc_counts();
    lat.sort_unstable();
    Ok(Sequential {
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
        per_s: n as f64 / total.as_secs_f64(),
        allocs_per_call: (allocs1 - allocs0) as f64 / n as f64,
        alloc_bytes_per_call: (bytes1 - bytes0) as f64 / n as f64,
    })
}

/// `total` calls spread over `inflight` tasks, each running its share back to back: calls/s.
pub async fn concurrent<F, Fut>(total: usize, inflight: usize, call: F) -> Result<f64>
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

/// The full unary measurement of one path: sequential latency, then each concurrency level
/// (each after a warm-up at that level).
pub async fn unary_row<F, Fut>(c: &Counts, levels: &[usize], call: F) -> Result<Row>
where
    F: Fn() -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let seq = sequential(c.seq, c.warm, call.clone()).await?;
    let mut conc_per_s = Vec::new();
    for &inflight in levels {
        concurrent(c.warm, inflight, call.clone()).await?;
        conc_per_s.push(concurrent(c.conc, inflight, call.clone()).await?);
    }
    Ok(Row {
        p50_us: seq.p50_us,
        p99_us: seq.p99_us,
        seq_per_s: seq.per_s,
        allocs_per_call: seq.allocs_per_call,
        alloc_bytes_per_call: seq.alloc_bytes_per_call,
        conc_per_s,
    })
}

/// Table cells of `a / b`, level by level (as many as both have), with `decimals` decimals.
pub fn ratio_cells(a: &[f64], b: &[f64], decimals: usize) -> String {
    a.iter().zip(b).map(|(x, y)| format!("{:.*}", decimals, x / y)).collect::<Vec<_>>().join(" | ")
}

/// Table cells of rates, level by level.
pub fn rate_cells(rates: &[f64]) -> String {
    rates.iter().map(|v| fmt_rate(*v)).collect::<Vec<_>>().join(" | ")
}

pub fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M/s", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k/s", v / 1e3)
    } else {
        format!("{v:.0} /s")
    }
}
