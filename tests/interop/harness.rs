//! The Python reference peer as a test partner: locating the venv made by
//! `../shared/interop/setup.sh`, running its scripts offline, child-process and scratch-directory
//! guards, and a running Python server (`server.py` or `tests/interop/py_probe.py serve`).
//!
//! Shared by `tests/interop_smoke.rs`, `tests/interop_matrix.rs` (both run by
//! `scripts/interop-smoke.sh`) and `tests/interop_trust.rs` (`scripts/interop-trust.sh`), each
//! inside a loopback-only network namespace. Nothing here measures time: every limit is a hang
//! guard.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use aster::runtime::transport::{EndpointAddr, EndpointId};

/// How long a Python server may take to write its info file (it takes well under a second).
pub const SERVER_START_LIMIT: Duration = Duration::from_secs(30);
/// How long one Python client run may take (a run takes seconds).
pub const CLIENT_RUN_LIMIT: Duration = Duration::from_secs(120);
/// Bound for the Rust side of a test (connect + calls).
pub const RUST_CALLS_LIMIT: Duration = Duration::from_secs(90);

// ── locating the Python peer ────────────────────────────────────────────────

/// `../shared/interop` (the reference-peer harness).
pub fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared").join("interop")
}

/// A script of the reference-peer harness, e.g. `server.py`.
pub fn interop_script(name: &str) -> PathBuf {
    interop_dir().join(name)
}

/// `tests/interop/py_probe.py` (the probe driver/server of this repository).
pub fn probe_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("interop").join("py_probe.py")
}

/// The venv of the reference peer: `$ASTER_PY_VENV`, else `~/.cache/aster-py-venv` (as `py`
/// and `env.sh` choose it).
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("ASTER_PY_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => {
            let home = std::env::var_os("HOME").expect("HOME is not set (needed to find the Python peer venv)");
            PathBuf::from(home).join(".cache").join("aster-py-venv")
        }
    }
}

/// A program of the venv: `python`, or `aster` (aster-cli).
pub fn venv_bin(name: &str) -> PathBuf {
    venv_dir().join("bin").join(name)
}

/// Fails the test (loudly) when the reference peer is not installed.
pub fn require_peer() {
    let py = interop_dir().join("py");
    assert!(py.is_file(), "Python reference peer harness not found at {} (expected ../shared/interop/)", py.display());
    let python = venv_bin("python");
    assert!(
        python.is_file(),
        "Python reference peer venv missing: {} does not exist. Run ../shared/interop/setup.sh \
         (or scripts/interop-smoke.sh, which does) before running these ignored tests.",
        python.display()
    );
}

/// The offline environment of `../shared/interop/env.sh` for a child process of the Python
/// peer (a script, `aster-cli`, a shell script sourcing env.sh), with `run_dir` as
/// `ASTER_RUN_DIR`; stdin is null.
pub fn offline_env<'a>(cmd: &'a mut Command, run_dir: &Path) -> &'a mut Command {
    cmd.env("ASTER_RELAY_MODE", "disabled")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("ASTER_PY_VENV", venv_dir())
        .env("ASTER_RUN_DIR", run_dir)
        .env("ASTER_INTEROP_DIR", interop_dir())
        .env_remove("ASTER_SERVER_INFO")
        .stdin(Stdio::null())
}

/// `../shared/interop/py <script>` with the offline environment (and tracebacks for failed
/// `client.py` cases).
pub fn py_command(script: &Path, run_dir: &Path) -> Command {
    let mut cmd = Command::new(interop_dir().join("py"));
    cmd.arg(script).env("ASTER_CLIENT_TRACEBACK", "1");
    offline_env(&mut cmd, run_dir);
    cmd
}

// ── scratch directory and child-process guard ───────────────────────────────

/// A scratch directory, removed on drop unless the test is failing (then kept for the logs).
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(name: &str) -> ScratchDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("aster-interop-{name}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// `name` inside the scratch directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    pub fn log(&self, name: &str) -> fs::File {
        fs::File::create(self.0.join(name)).unwrap()
    }

    pub fn read(&self, name: &str) -> String {
        fs::read_to_string(self.0.join(name)).unwrap_or_default()
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("interop scratch directory kept for inspection: {}", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Owns a child process; on drop (also when the test panics) sends SIGTERM, waits briefly, then
/// kills it.
pub struct ChildGuard {
    child: Child,
    name: &'static str,
}

impl ChildGuard {
    pub fn spawn(mut cmd: Command, name: &'static str) -> ChildGuard {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        ChildGuard { child, name }
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for the child to exit by itself, at most `limit`; kills it and panics on overrun.
    pub async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            if start.elapsed() > limit {
                self.stop();
                panic!("{} did not finish within {limit:?}; killed", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGTERM (the Python peer exits in well under a second), then SIGKILL after 3 s.
    pub fn stop(&mut self) {
        if self.exited().is_some() {
            return;
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{} ignored SIGTERM; killing it", self.name);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cmd` to completion (at most `limit`) with its output captured into `<name>.out` and
/// `<name>.err` of the scratch directory; returns (exit status, stdout, stderr).
pub async fn run_logged(
    mut cmd: Command,
    name: &'static str,
    scratch: &ScratchDir,
    limit: Duration,
) -> (ExitStatus, String, String) {
    let (out, err) = (format!("{name}.out"), format!("{name}.err"));
    cmd.stdout(scratch.log(&out)).stderr(scratch.log(&err));
    let mut child = ChildGuard::spawn(cmd, name);
    let status = child.wait_exit(limit).await;
    (status, scratch.read(&out), scratch.read(&err))
}

/// Runs a Python client script to completion (bounded); returns (exit status, stdout, a report
/// with both outputs for assertion messages).
pub async fn run_py_client(
    name: &'static str,
    scratch: &ScratchDir,
    script: &Path,
    args: &[&str],
) -> (ExitStatus, String, String) {
    require_peer();
    let mut cmd = py_command(script, scratch.path());
    cmd.args(args);
    let (status, out, err) = run_logged(cmd, name, scratch, CLIENT_RUN_LIMIT).await;
    let report = format!("{name} {args:?}: exit status {status}\n--- stdout\n{out}\n--- stderr\n{err}");
    (status, out, report)
}

// ── a running Python server ─────────────────────────────────────────────────

/// Polls for a server's info file (written atomically), bounded; fails early when the server
/// exits.
pub async fn wait_for_info(server: &mut ChildGuard, scratch: &ScratchDir, info: &Path) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Ok(text) = fs::read_to_string(info) {
            return serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("bad info file {}: {e}\n{text}", info.display()));
        }
        if let Some(status) = server.exited() {
            panic!(
                "Python server exited ({status}) before writing its info file\n--- stdout\n{}\n--- stderr\n{}",
                scratch.read("server.out"),
                scratch.read("server.err")
            );
        }
        assert!(
            start.elapsed() < SERVER_START_LIMIT,
            "Python server wrote no info file within {SERVER_START_LIMIT:?}\n--- stdout\n{}\n--- stderr\n{}",
            scratch.read("server.out"),
            scratch.read("server.err")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running Python server (open gate) and where to dial it.
pub struct PyServer {
    pub server: ChildGuard,
    pub scratch: ScratchDir,
    pub info: serde_json::Value,
    pub endpoint_id: EndpointId,
    pub rpc_addr: SocketAddr,
}

impl PyServer {
    /// `../shared/interop/server.py` (TaskManager + TaskSession).
    pub async fn start(name: &str) -> PyServer {
        let py = PyServer::start_script(name, &interop_script("server.py"), &[]).await;
        assert_eq!(py.info["mode"], "open-gate", "info file: {}", py.info);
        assert_eq!(py.info["alpn_rpc"], "aster/1", "info file: {}", py.info);
        py
    }

    /// `tests/interop/py_probe.py serve` (InteropProbe + InteropSession).
    pub async fn start_probe(name: &str) -> PyServer {
        PyServer::start_script(name, &probe_script(), &["serve"]).await
    }

    /// Any server script taking `--info FILE` and writing `endpoint_id` and `rpc_addr` there.
    pub async fn start_script(name: &str, script: &Path, args: &[&str]) -> PyServer {
        PyServer::start_in(ScratchDir::new(name), script, args).await
    }

    /// [`PyServer::start_script`] in a given scratch directory (its run directory and logs; it
    /// may already hold files the server reads).
    pub async fn start_in(scratch: ScratchDir, script: &Path, args: &[&str]) -> PyServer {
        require_peer();
        let info_path = scratch.path().join("server_info.json");

        let mut cmd = py_command(script, scratch.path());
        cmd.args(args)
            .arg("--info")
            .arg(&info_path)
            .stdout(scratch.log("server.out"))
            .stderr(scratch.log("server.err"));
        let mut server = ChildGuard::spawn(cmd, "python server");

        let info = wait_for_info(&mut server, &scratch, &info_path).await;
        let endpoint_id: EndpointId = info["endpoint_id"].as_str().expect("endpoint_id").parse().unwrap();
        let rpc_addr: SocketAddr = info["rpc_addr"].as_str().expect("rpc_addr").parse().unwrap();
        assert!(rpc_addr.ip().is_loopback(), "server must be on loopback, got {rpc_addr}");
        PyServer { server, scratch, info, endpoint_id, rpc_addr }
    }

    pub fn addr(&self) -> EndpointAddr {
        EndpointAddr::new(self.endpoint_id).with_ip_addr(self.rpc_addr)
    }

    /// Stops the server and prints its logs (shown with --nocapture or on failure).
    pub fn stop(mut self) {
        self.server.stop();
        println!(
            "--- python server stdout\n{}--- python server stderr\n{}",
            self.scratch.read("server.out"),
            self.scratch.read("server.err")
        );
    }
}
