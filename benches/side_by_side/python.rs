//! The Python reference server (PyPI `aster-rpc` 0.1.2, `../shared/interop/server.py`) against
//! an aster-rs node serving the same `TaskManager` (the example's `#[service]`), both called
//! the same way: an [`AsterClient`] runs consumer admission, then unary `assign_task` in the
//! mode admission selects (XLANG for both) on the producer's `aster/1` connection.
//!
//! The Python server is a child process (`ASTER_RELAY_MODE=disabled`, bound to 127.0.0.1,
//! info file in a temp directory), killed when the section ends, also on error. Without the
//! venv made by `../shared/interop/setup.sh` the section prints why and is skipped. The
//! Python peer sends DNS queries for `dns.iroh.link` whatever it is told; `scripts/bench.sh`
//! runs the bench in a loopback-only network namespace.

#[path = "../../examples/taskmanager/service.rs"]
mod service;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use aster::prelude::*;
use aster::runtime::transport::{Endpoint, EndpointAddr, EndpointConfig, EndpointId, bind_endpoint};

use crate::common::{Counts, Row, fmt_rate, rate_cells, ratio_cells, unary_row};
use service::{TaskAssignment, TaskManagerClient};

pub const PY_ROW: &str = "python aster-rpc 0.1.2 server (TaskManager.assign_task, xlang)";
pub const RS_ROW: &str = "aster-rs node (TaskManager.assign_task, xlang)";

/// How long server.py may take to write its info file (it takes about a second).
const START_LIMIT: Duration = Duration::from_secs(30);

/// The deadline of every call (and of admission), so a stalled server fails the section
/// instead of hanging the bench. Both rows carry it, so they stay comparable.
const CALL_LIMIT: Duration = Duration::from_secs(30);

/// Where the Python peer is: the venv's interpreter and the harness's `server.py`.
struct Peer {
    python: PathBuf,
    server_py: PathBuf,
}

impl Peer {
    /// `Err(reason)` when the peer is not installed.
    fn find() -> Result<Peer, String> {
        let venv = match std::env::var_os("ASTER_PY_VENV").filter(|v| !v.is_empty()) {
            Some(v) => PathBuf::from(v),
            None => {
                let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
                Path::new(&home).join(".cache").join("aster-py-venv")
            }
        };
        let python = venv.join("bin").join("python");
        let server_py = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/interop/server.py");
        if !server_py.is_file() {
            return Err(format!("no reference-peer harness at {}", server_py.display()));
        }
        if !python.is_file() {
            return Err(format!("no Python peer venv at {}", venv.display()));
        }
        Ok(Peer { python, server_py })
    }
}

/// A temp directory, removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A running `server.py`: the child is killed on drop, then its temp directory removed (the
/// fields drop after [`PyServer::drop`]).
struct PyServer {
    child: Child,
    dir: TempDir,
}

impl PyServer {
    /// Starts server.py; returns it with the address from its info file.
    async fn start(peer: &Peer) -> Result<(PyServer, EndpointAddr)> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
        // The guard exists before the directory does, so every failure below removes it.
        let dir = TempDir(std::env::temp_dir().join(format!("aster-bench-py-{}-{nanos}", std::process::id())));
        fs::create_dir_all(&dir.0)?;
        let info = dir.0.join("server_info.json");
        let child = Command::new(&peer.python)
            .arg(&peer.server_py)
            .arg("--info")
            .arg(&info)
            .env("ASTER_RELAY_MODE", "disabled")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("ASTER_RUN_DIR", &dir.0)
            .env_remove("ASTER_SERVER_INFO")
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.0.join("server.out"))?)
            .stderr(fs::File::create(dir.0.join("server.err"))?)
            .spawn()
            .with_context(|| format!("cannot start {}", peer.python.display()))?;
        // From here on the guard owns the child too.
        let mut server = PyServer { child, dir };
        let text = server.wait_for_info(&info).await?;
        let json: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("info file: {text}"))?;
        let field = |k: &str| json[k].as_str().with_context(|| format!("no {k} in the info file: {text}"));
        let id: EndpointId = field("endpoint_id")?.parse()?;
        let rpc: SocketAddr = field("rpc_addr")?.parse()?;
        anyhow::ensure!(rpc.ip().is_loopback(), "server.py is not on loopback: {rpc}");
        Ok((server, EndpointAddr::new(id).with_ip_addr(rpc)))
    }

    /// The info file's text, once server.py has written it (atomically).
    async fn wait_for_info(&mut self, info: &Path) -> Result<String> {
        let start = Instant::now();
        loop {
            if let Ok(text) = fs::read_to_string(info) {
                return Ok(text);
            }
            if let Some(status) = self.child.try_wait()? {
                bail!("server.py exited ({status}) before writing its info file\n{}", self.logs());
            }
            if start.elapsed() > START_LIMIT {
                bail!("server.py wrote no info file within {START_LIMIT:?}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn logs(&self) -> String {
        let read = |name: &str| fs::read_to_string(self.dir.0.join(name)).unwrap_or_default();
        format!("--- server.py stdout\n{}--- server.py stderr\n{}", read("server.out"), read("server.err"))
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        // SIGKILL: nothing of the server outlives it but the temp directory, removed next by
        // the `dir` field's guard (the client has closed its connections by now).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The unary row of `assign_task` against the producer at `addr`: admission, the channel in
/// the selected mode (checked to be XLANG), one checked call, then the measurement.
async fn assign_task_row(c: &Counts, levels: &[usize], ep: &Endpoint, addr: EndpointAddr, worker: &str) -> Result<Row> {
    let (client, channel) = tokio::time::timeout(CALL_LIMIT, async {
        let client = AsterClient::connect(ep, addr).await?;
        let channel = client.channel_for("TaskManager").await?;
        Ok::<_, anyhow::Error>((client, channel))
    })
    .await
    .map_err(|_| anyhow!("admission to the TaskManager producer took longer than {CALL_LIMIT:?}"))??;
    anyhow::ensure!(channel.mode() == SerializationMode::Xlang, "admission selected {}", channel.mode());
    let tm = TaskManagerClient::new(channel);
    // The request of ../shared/interop/bench.py.
    let req = TaskAssignment {
        task_id: "bench".into(),
        title: "benchmark task".into(),
        priority: 1,
        tags: vec!["a".into(), "b".into()],
    };
    let ack = tm.assign_task(&req, CallOptions::new().timeout(CALL_LIMIT)).await?;
    anyhow::ensure!(ack.worker == worker && ack.accepted, "unexpected answer {ack:?} (expected worker {worker})");

    let row = unary_row(c, levels, move || {
        let (tm, req) = (tm.clone(), req.clone());
        async move {
            let ack = tm.assign_task(&req, CallOptions::new().timeout(CALL_LIMIT)).await?;
            anyhow::ensure!(ack.task_id == req.task_id && ack.accepted, "bad answer {ack:?}");
            Ok(())
        }
    })
    .await?;
    client.close().await;
    Ok(row)
}

/// Both rows, aster-rs node first (while no Python process runs), then the Python server.
pub async fn bench(c: &Counts, levels: &[usize], rows: &mut Vec<(String, Row)>) -> Result<()> {
    let peer = match Peer::find() {
        Ok(peer) => peer,
        Err(why) => {
            println!("python: skipped ({why}); install the peer with ../shared/interop/setup.sh");
            return Ok(());
        }
    };
    let ep = bind_endpoint(&EndpointConfig::default()).await?;

    let node = service::serve(AsterNode::builder()).await?;
    let rs = assign_task_row(c, levels, &ep, node.addr(), "rs-worker-1").await?;
    node.shutdown().await?;

    println!(
        "python: {} sequential calls, {} calls per concurrency level, {} warm-up (both TaskManager rows)",
        c.seq, c.conc, c.warm
    );
    let (server, addr) = PyServer::start(&peer).await?;
    let py = assign_task_row(c, levels, &ep, addr, "py-worker-1").await?;
    ep.close().await;
    drop(server);

    rows.push((PY_ROW.into(), py));
    rows.push((RS_ROW.into(), rs));
    Ok(())
}

/// The Rust/Python throughput ratio of the two TaskManager rows, when both were measured.
pub fn print_ratios(rows: &[(String, Row)], levels: &[usize]) {
    let find = |name: &str| rows.iter().find(|(n, _)| n == name).map(|(_, r)| r);
    let (Some(py), Some(rs)) = (find(PY_ROW), find(RS_ROW)) else { return };
    let heads = levels.iter().map(|n| format!("{n} in flight")).collect::<Vec<_>>();
    println!();
    println!(
        "| TaskManager.assign_task, aster-rs node / python aster-rpc 0.1.2 | seq calls/s | {} |",
        heads.join(" | ")
    );
    println!("|---|---|{}", "---|".repeat(heads.len()));
    println!("| python (calls/s) | {} | {} |", fmt_rate(py.seq_per_s), rate_cells(&py.conc_per_s));
    println!("| aster-rs (calls/s) | {} | {} |", fmt_rate(rs.seq_per_s), rate_cells(&rs.conc_per_s));
    println!(
        "| ratio (×, aster-rs / python) | {:.1} | {} |",
        rs.seq_per_s / py.seq_per_s,
        ratio_cells(&rs.conc_per_s, &py.conc_per_s, 1)
    );
}
