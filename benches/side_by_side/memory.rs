//! Resident memory of an Aster node per idle connection and per idle session actor.
//!
//! The node runs in a child process (this bench binary started again with
//! `ASTER_BENCH_MEMORY_SERVER=<max concurrent streams>`), so the client's own memory is not
//! counted. The child prints its ticket, then answers `rss` on stdin with its resident set size
//! (`VmRSS` of `/proc/self/status`) and its live heap bytes (allocated minus freed, from the
//! counting allocator: what the node's objects take, without the allocator's slack). The
//! parent warms the node up (calls, sessions opened and closed), reads the RSS, opens `n`
//! sessions (each makes one call, so its actor exists and has run) or `n` connections (each
//! makes one call), reads the RSS again and divides the difference. The parent reads the
//! child's answers on a blocking thread, each within [`ANSWER_LIMIT`].

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aster::prelude::*;
use aster::runtime::transport::{EndpointConfig, bind_endpoint};

use crate::aster_paths::{Blob, Echo, EchoClient, EchoService, StreamRequest};
use crate::common::{MSG, live_heap};

/// The env var that turns the bench binary into the memory bench's server; its value is the
/// node's maximum number of concurrent streams.
pub const SERVER_ENV: &str = "ASTER_BENCH_MEMORY_SERVER";

/// How long the server may take to print its ticket or answer `rss`.
const ANSWER_LIMIT: Duration = Duration::from_secs(60);

/// How long the server may take to exit after `quit` before it is killed.
const QUIT_LIMIT: Duration = Duration::from_secs(3);

#[aster::service(name = "Tally", version = 1, scope = session)]
pub trait TallyHandler {
    #[unary]
    async fn add(&mut self, ctx: CallContext, req: StreamRequest) -> Result<StreamRequest, Status>;
}

/// A minimal session service: one running total per session.
pub struct Tally {
    total: i64,
}

impl TallyHandler for Tally {
    async fn add(&mut self, _ctx: CallContext, req: StreamRequest) -> Result<StreamRequest, Status> {
        self.total += req.count;
        Ok(StreamRequest { count: self.total })
    }
}

fn rss_bytes() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kb * 1024)
}

/// The child process: serves `Echo` and `Tally`, prints its ticket, answers `rss` until `quit`
/// or end of input.
pub async fn serve(max_streams: u32) -> Result<()> {
    let node = AsterNode::builder()
        .max_concurrent_streams(max_streams)
        .serve(EchoService(Echo))
        .serve_sessions(|_: &SessionInfo| TallyService(Tally { total: 0 }))
        .spawn()
        .await?;
    println!("ticket {}", node.ticket());
    tokio::task::spawn_blocking(|| {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if line.trim() == "quit" {
                break;
            }
            // Answered from this blocking thread: reading /proc needs no runtime.
            let (live, _) = live_heap();
            let answer = rss_bytes().map_or_else(|e| format!("error {e}"), |b| format!("rss {b} heap {live}"));
            println!("{answer}");
        }
    })
    .await?;
    node.shutdown().await?;
    Ok(())
}

struct ServerProcess {
    child: Child,
    stdin: ChildStdin,
    /// `None` only after a read timed out (the reader is then left to its blocking thread,
    /// which ends when the child is killed).
    stdout: Option<BufReader<ChildStdout>>,
}

impl ServerProcess {
    async fn start(max_streams: u32) -> Result<(ServerProcess, String)> {
        let exe = std::env::current_exe()?;
        let mut child = Command::new(exe)
            .env(SERVER_ENV, max_streams.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().context("child stdin")?;
        let stdout = Some(BufReader::new(child.stdout.take().context("child stdout")?));
        let mut p = ServerProcess { child, stdin, stdout };
        let line = p.read_line("its ticket").await?;
        let ticket = line.strip_prefix("ticket ").ok_or_else(|| anyhow!("unexpected server line: {line}"))?;
        Ok((p, ticket.to_string()))
    }

    /// The server's next line (`what` names it for the errors), read on a blocking thread so
    /// no runtime worker waits on the pipe, within [`ANSWER_LIMIT`].
    async fn read_line(&mut self, what: &str) -> Result<String> {
        let mut stdout = self.stdout.take().context("the memory server's stdout was lost to an earlier timeout")?;
        let read = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            let n = stdout.read_line(&mut line);
            (stdout, n.map(|n| (n, line)))
        });
        let Ok(joined) = tokio::time::timeout(ANSWER_LIMIT, read).await else {
            bail!("the memory server sent no {what} within {ANSWER_LIMIT:?}");
        };
        let (stdout, read) = joined?;
        self.stdout = Some(stdout);
        let (n, line) = read.with_context(|| format!("reading {what} from the memory server"))?;
        if n == 0 {
            bail!("the memory server exited before sending {what}");
        }
        Ok(line.trim().to_string())
    }

    /// (resident bytes, live heap bytes) of the server.
    async fn rss(&mut self) -> Result<(u64, u64)> {
        writeln!(self.stdin, "rss")?;
        self.stdin.flush()?;
        let line = self.read_line("its memory figures").await?;
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("rss"), Some(rss), Some("heap"), Some(heap)) => Ok((rss.parse()?, heap.parse()?)),
            _ => Err(anyhow!("unexpected answer: {line}")),
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        // The server shuts its node down and exits; it is killed if it takes longer.
        let deadline = Instant::now() + QUIT_LIMIT;
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => return,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the memory bench measured (bytes of server RSS).
pub struct Memory {
    pub sessions: usize,
    /// (resident, live heap) bytes per idle session.
    pub per_session: (f64, f64),
    pub connections: usize,
    /// (resident, live heap) bytes per idle connection.
    pub per_connection: (f64, f64),
    /// Resident bytes of the warmed-up node.
    pub baseline: u64,
}

fn per(after: (u64, u64), before: (u64, u64), n: usize) -> (f64, f64) {
    (after.0.saturating_sub(before.0) as f64 / n as f64, after.1.saturating_sub(before.1) as f64 / n as f64)
}

async fn open_sessions(channel: &Channel, n: usize) -> Result<Vec<Session>> {
    let mut sessions = Vec::with_capacity(n);
    // In batches, so the opening does not itself hold thousands of calls in flight.
    for chunk in (0..n).collect::<Vec<_>>().chunks(200) {
        let mut batch = Vec::with_capacity(chunk.len());
        for _ in chunk {
            let channel = channel.clone();
            batch.push(tokio::spawn(async move {
                let s = channel.open_session("Tally", 1, CallOptions::new()).await?;
                let r: StreamRequest = s.unary("add", &StreamRequest { count: 1 }, CallOptions::new()).await?;
                anyhow::ensure!(r.count == 1, "unexpected total {}", r.count);
                Ok::<_, anyhow::Error>(s)
            }));
        }
        for t in batch {
            sessions.push(t.await??);
        }
    }
    Ok(sessions)
}

/// Measures `connections` idle connections, then `sessions` idle sessions on one connection.
pub async fn bench(sessions: usize, connections: usize) -> Result<Memory> {
    let max_streams = u32::try_from(sessions + 1024)?;
    let (mut server, ticket) = ServerProcess::start(max_streams).await?;
    let ep = bind_endpoint(&EndpointConfig::default()).await?;
    let channel = Channel::connect_ticket(&ep, &ticket).await?;
    let echo = EchoClient::new(channel.clone());
    let blob = Blob { data: vec![0x5A; MSG] };

    // Warm-up: the node's one-time allocations (pools, registries, buffers) happen first.
    for _ in 0..200 {
        echo.echo(&blob, CallOptions::new()).await?;
    }
    let warm = open_sessions(&channel, 200).await?;
    for s in warm {
        s.close().await?;
    }
    let baseline = server.rss().await?;

    // Idle connections first (freed session memory would otherwise be reused for them). Each
    // makes one call, so its connection actor has served a stream.
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        let c = Channel::connect_ticket(&ep, &ticket).await?;
        EchoClient::new(c.clone()).echo(&blob, CallOptions::new()).await?;
        conns.push(c);
    }
    let with_conns = server.rss().await?;
    let per_connection = per(with_conns, baseline, connections);

    let open = open_sessions(&channel, sessions).await?;
    let with_sessions = server.rss().await?;
    let per_session = per(with_sessions, with_conns, sessions);
    for s in open {
        s.close().await?;
    }
    for c in &conns {
        c.close();
    }
    channel.close();
    ep.close().await;
    drop(server);
    Ok(Memory { sessions, per_session, connections, per_connection, baseline: baseline.0 })
}
