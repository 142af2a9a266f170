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

use crate::common::{Counts, Row, fmt_rate, unary_row};
use service::{TaskAssignment, TaskManagerClient};

pub const PY_ROW: &str = "python aster-rpc 0.1.2 server (TaskManager.assign_task, xlang)";
pub const RS_ROW: &str = "aster-rs node (TaskManager.assign_task, xlang)";

/// How long server.py may take to write its info file (it takes about a second).
const START_LIMIT: Duration = Duration::from_secs(30);

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

/// A running `server.py`: the child is killed and its temp directory removed on drop.
struct PyServer {
    child: Child,
    dir: PathBuf,
}

impl PyServer {
    /// Starts server.py; returns it with the address from its info file.
    async fn start(peer: &Peer) -> Result<(PyServer, EndpointAddr)> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.subsec_nanos();
        let dir = std::env::temp_dir().join(format!("aster-bench-py-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir)?;
        let info = dir.join("server_info.json");
        let spawned = Command::new(&peer.python)
            .arg(&peer.server_py)
            .arg("--info")
            .arg(&info)
            .env("ASTER_RELAY_MODE", "disabled")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("ASTER_RUN_DIR", &dir)
            .env_remove("ASTER_SERVER_INFO")
            .stdin(Stdio::null())
            .stdout(fs::File::create(dir.join("server.out"))?)
            .stderr(fs::File::create(dir.join("server.err"))?)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                return Err(anyhow!("cannot start {}: {e}", peer.python.display()));
            }
        };
        // From here on the guard owns the child and the directory.
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
        let read = |name: &str| fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        format!("--- server.py stdout\n{}--- server.py stderr\n{}", read("server.out"), read("server.err"))
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        // SIGKILL: nothing of the server outlives it but the temp directory, removed here (the
        // client has closed its connections by now).
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The unary row of `assign_task` against the producer at `addr`: admission, the channel in
/// the selected mode (checked to be XLANG), one checked call, then the measurement.
async fn assign_task_row(c: &Counts, levels: &[usize], ep: &Endpoint, addr: EndpointAddr, worker: &str) -> Result<Row> {
    let client = AsterClient::connect(ep, addr).await?;
    let channel = client.channel_for("TaskManager").await?;
    anyhow::ensure!(channel.mode() == SerializationMode::Xlang, "admission selected {}", channel.mode());
    let tm = TaskManagerClient::new(channel);
    // The request of ../shared/interop/bench.py.
    let req = TaskAssignment {
        task_id: "bench".into(),
        title: "benchmark task".into(),
        priority: 1,
        tags: vec!["a".into(), "b".into()],
    };
    let ack = tm.assign_task(&req, CallOptions::new()).await?;
    anyhow::ensure!(ack.worker == worker && ack.accepted, "unexpected answer {ack:?} (expected worker {worker})");

    let row = unary_row(c, levels, move || {
        let (tm, req) = (tm.clone(), req.clone());
        async move {
            let ack = tm.assign_task(&req, CallOptions::new()).await?;
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
    let ratio = |a: f64, b: f64| format!("{:.1}", a / b);
    let heads = levels.iter().map(|n| format!("{n} in flight")).collect::<Vec<_>>();
    println!();
    println!(
        "| TaskManager.assign_task, aster-rs node / python aster-rpc 0.1.2 | seq calls/s | {} |",
        heads.join(" | ")
    );
    println!("|---|---|{}", "---|".repeat(heads.len()));
    let conc = |r: &Row| r.conc_per_s.iter().map(|v| fmt_rate(*v)).collect::<Vec<_>>().join(" | ");
    println!("| python (calls/s) | {} | {} |", fmt_rate(py.seq_per_s), conc(py));
    println!("| aster-rs (calls/s) | {} | {} |", fmt_rate(rs.seq_per_s), conc(rs));
    let conc_ratio = rs.conc_per_s.iter().zip(&py.conc_per_s).map(|(a, b)| ratio(*a, *b)).collect::<Vec<_>>();
    println!("| ratio (×, aster-rs / python) | {} | {} |", ratio(rs.seq_per_s, py.seq_per_s), conc_ratio.join(" | "));
}
