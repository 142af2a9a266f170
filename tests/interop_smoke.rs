//! Smoke tests against the real Python reference peer (PyPI `aster-rpc` 0.1.2):
//!
//! - a Rust [`Channel`] calls `../shared/interop/server.py` in JSON mode (dialed by
//!   `endpoint_id` + `rpc_addr` on ALPN `aster/1`, no admission: the Python server is
//!   open-gate);
//! - a Rust [`AsterClient`] runs consumer admission against `server.py`: the contract ids it
//!   lists equal the Rust example's, the live response re-encodes byte for byte, mode selection
//!   on its `serialization_modes: []` (= XLANG) with an XLANG call, and a JSON call;
//! - `../shared/interop/client.py` calls a Rust node serving the example TaskManager/TaskSession:
//!   all eight cases in JSON mode with admission (the reference flow: `aster.consumer_admission`,
//!   then the `channels.rpc` address) and without (`--no-admission`), and the typed client in
//!   XLANG with admission (the Rust node advertises `["xlang", "native", "json"]`).
//!
//! Ignored by default: they need the venv made by `../shared/interop/setup.sh`. Run them with
//! `scripts/interop-smoke.sh`, which runs setup.sh and then this binary in a loopback-only network
//! namespace (the Python peer otherwise sends DNS queries for `dns.iroh.link`). Without the venv
//! the tests fail with a message saying so. Everything binds to 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../examples/taskmanager/service.rs"]
mod service;

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use aster::prelude::*;
use aster::runtime::admission::{ConsumerAdmissionRequest, ConsumerAdmissionResponse, MAX_ADMISSION_PAYLOAD};
use aster::runtime::transport::{
    ALPN_CONSUMER_ADMISSION, EndpointAddr, EndpointConfig, EndpointId, NodeAddrText, bind_endpoint,
};
use service::{TaskAck, TaskAssignment, TaskManager, TaskManagerService, TaskSession, TaskSessionService};

/// How long `server.py` may take to write its info file (it takes well under a second).
const SERVER_START_LIMIT: Duration = Duration::from_secs(30);
/// How long one `client.py` run may take (all cases together take about a second).
const CLIENT_RUN_LIMIT: Duration = Duration::from_secs(120);
/// Bound for the Rust side of a test (connect + calls).
const RUST_CALLS_LIMIT: Duration = Duration::from_secs(60);

/// The `client.py` cases run against the Rust node.
///
/// All eight cases of client.py. In JSON mode client.py sends dicts that omit fields (`tags`,
/// `priority`, `data`), which the reference decodes to the dataclass defaults; the example's
/// message types carry `#[serde(default)]` for the same behaviour.
const CLIENT_CASES: &[&str] =
    &["unary", "unary_meta", "unary_big", "server_stream", "client_stream", "bidi", "error", "session"];

/// Lines (prefixes) client.py prints in JSON mode for each case when it got the Rust services'
/// answers.
const CASE_OUTPUT: &[(&str, &str)] = &[
    ("unary", "unary        assign_task   -> {'task_id': 't-1', 'accepted': True, 'worker': 'rs-worker-1'}"),
    ("unary_meta", "unary+meta   assign_task   -> {'task_id': 't-2', 'accepted': True, 'worker': 'rs-worker-1'}"),
    ("unary_big", "unary big    assign_task   -> {'task_id': 't-big', 'accepted': True, 'worker': 'rs-worker-1'}"),
    (
        "server_stream",
        "server-stream watch_progress -> {'task_id': 't-1', 'step': 1, 'percent': 33.333333333333336, 'note': 'ok'}",
    ),
    ("server_stream", "server-stream watch_progress -> {'task_id': 't-1', 'step': 3, 'percent': 100.0, 'note': 'ok'}"),
    ("client_stream", "client-stream upload_steps -> {'task_id': 't-1', 'steps_received': 3, 'total_bytes': 0}"),
    ("bidi", "bidi         chat          <- {'sender': 'server', 'text': 'echo: hello 0', 'seq': 0}"),
    ("bidi", "bidi         chat          <- {'sender': 'server', 'text': 'echo: hello 2', 'seq': 2}"),
    ("bidi", "bidi         chat end      <- None"),
    ("error", "error        no_such_method -> UNIMPLEMENTED \"Method 'TaskManager.no_such_method' not implemented\""),
    ("session", "session      open2         -> {'task_id': 's-2', 'accepted': True, 'worker': 'session#2'}"),
];

/// The same for the typed client (XLANG: dataclasses instead of dicts; `data` bytes included).
const TYPED_CASE_OUTPUT: &[(&str, &str)] = &[
    ("unary", "unary        assign_task   -> TaskAck(task_id='t-1', accepted=True, worker='rs-worker-1')"),
    ("unary_meta", "unary+meta   assign_task   -> TaskAck(task_id='t-2', accepted=True, worker='rs-worker-1')"),
    ("unary_big", "unary big    assign_task   -> TaskAck(task_id='t-big', accepted=True, worker='rs-worker-1')"),
    (
        "server_stream",
        "server-stream watch_progress -> ProgressUpdate(task_id='t-1', step=1, percent=33.333333333333336, note='ok')",
    ),
    ("client_stream", "client-stream upload_steps -> UploadSummary(task_id='t-1', steps_received=3, total_bytes=6)"),
    ("bidi", "bidi         chat          <- ChatMessage(sender='server', text='echo: hello 2', seq=2)"),
    ("error", "error        no_such_method -> UNIMPLEMENTED \"Method 'TaskManager.no_such_method' not implemented\""),
    ("session", "session      add_steps     -> UploadSummary(task_id='t-1', steps_received=3, total_bytes=6)"),
    ("session", "session      chat          -> [ChatMessage(sender='session(2 tasks)', text='PING 0', seq=0)"),
];

// ── locating the Python peer ────────────────────────────────────────────────

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("shared").join("interop")
}

fn venv_dir() -> PathBuf {
    match std::env::var_os("ASTER_PY_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => {
            let home = std::env::var_os("HOME").expect("HOME is not set (needed to find the Python peer venv)");
            PathBuf::from(home).join(".cache").join("aster-py-venv")
        }
    }
}

/// Fails the test (loudly) when the reference peer is not installed.
fn require_peer() {
    let py = interop_dir().join("py");
    assert!(py.is_file(), "Python reference peer harness not found at {} (expected ../shared/interop/)", py.display());
    let python = venv_dir().join("bin").join("python");
    assert!(
        python.is_file(),
        "Python reference peer venv missing: {} does not exist. Run ../shared/interop/setup.sh \
         (or scripts/interop-smoke.sh, which does) before running these ignored tests.",
        python.display()
    );
}

/// `../shared/interop/py ../shared/interop/<script>` with the offline environment of env.sh.
fn py_command(script: &str, run_dir: &Path) -> Command {
    let dir = interop_dir();
    let mut cmd = Command::new(dir.join("py"));
    cmd.arg(dir.join(script))
        .env("ASTER_RELAY_MODE", "disabled")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("ASTER_RUN_DIR", run_dir)
        .env_remove("ASTER_SERVER_INFO")
        .stdin(Stdio::null());
    cmd
}

// ── scratch directory and child-process guard ───────────────────────────────

/// A scratch directory, removed on drop unless the test is failing (then kept for the logs).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new(name: &str) -> ScratchDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
        let dir = std::env::temp_dir().join(format!("aster-interop-{name}-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn log(&self, name: &str) -> fs::File {
        fs::File::create(self.0.join(name)).unwrap()
    }

    fn read(&self, name: &str) -> String {
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
struct ChildGuard {
    child: Child,
    name: &'static str,
}

impl ChildGuard {
    fn spawn(mut cmd: Command, name: &'static str) -> ChildGuard {
        let child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        ChildGuard { child, name }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for the child to exit by itself, at most `limit`; kills it and panics on overrun.
    async fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
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
    fn stop(&mut self) {
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

// ── Rust client → Python server ─────────────────────────────────────────────

/// Polls for the server's info file (written atomically), bounded; fails early when the server
/// exits.
async fn wait_for_info(server: &mut ChildGuard, scratch: &ScratchDir, info: &Path) -> serde_json::Value {
    let start = Instant::now();
    loop {
        if let Ok(text) = fs::read_to_string(info) {
            return serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("bad info file {}: {e}\n{text}", info.display()));
        }
        if let Some(status) = server.exited() {
            panic!(
                "server.py exited ({status}) before writing its info file\n--- stdout\n{}\n--- stderr\n{}",
                scratch.read("server.out"),
                scratch.read("server.err")
            );
        }
        assert!(
            start.elapsed() < SERVER_START_LIMIT,
            "server.py wrote no info file within {SERVER_START_LIMIT:?}\n--- stdout\n{}\n--- stderr\n{}",
            scratch.read("server.out"),
            scratch.read("server.err")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A running `server.py` (open gate) and where to dial it.
struct PyServer {
    server: ChildGuard,
    scratch: ScratchDir,
    endpoint_id: EndpointId,
    rpc_addr: SocketAddr,
}

impl PyServer {
    async fn start(name: &str) -> PyServer {
        require_peer();
        let scratch = ScratchDir::new(name);
        let info_path = scratch.path().join("server_info.json");

        let mut cmd = py_command("server.py", scratch.path());
        cmd.arg("--info").arg(&info_path).stdout(scratch.log("server.out")).stderr(scratch.log("server.err"));
        let mut server = ChildGuard::spawn(cmd, "server.py");

        let info = wait_for_info(&mut server, &scratch, &info_path).await;
        assert_eq!(info["mode"], "open-gate", "info file: {info}");
        assert_eq!(info["alpn_rpc"], "aster/1", "info file: {info}");
        let endpoint_id: EndpointId = info["endpoint_id"].as_str().expect("endpoint_id").parse().unwrap();
        let rpc_addr: SocketAddr = info["rpc_addr"].as_str().expect("rpc_addr").parse().unwrap();
        assert!(rpc_addr.ip().is_loopback(), "server must be on loopback, got {rpc_addr}");
        PyServer { server, scratch, endpoint_id, rpc_addr }
    }

    fn addr(&self) -> EndpointAddr {
        EndpointAddr::new(self.endpoint_id).with_ip_addr(self.rpc_addr)
    }

    /// Stops the server and prints its logs (shown with --nocapture or on failure).
    fn stop(mut self) {
        self.server.stop();
        println!(
            "--- server.py stdout\n{}--- server.py stderr\n{}",
            self.scratch.read("server.out"),
            self.scratch.read("server.err")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn rust_client_calls_python_server_json_unary() {
    let py = PyServer::start("py-server").await;
    let (endpoint_id, rpc_addr) = (py.endpoint_id, py.rpc_addr);

    let calls = async {
        let ep = bind_endpoint(&EndpointConfig::default()).await.unwrap();
        let addr = EndpointAddr::new(endpoint_id).with_ip_addr(rpc_addr);
        let channel = Channel::connect(&ep, addr).await.unwrap();
        assert_eq!(channel.peer(), endpoint_id, "TLS identity of the peer is the advertised endpoint id");

        let json = || CallOptions::new().mode(SerializationMode::Json);
        let req = TaskAssignment {
            task_id: "rust-1".into(),
            title: "from aster-rs".into(),
            priority: 3,
            tags: vec!["rust".into(), "interop".into()],
        };
        let ack: TaskAck = channel.unary("TaskManager", 1, "assign_task", &req, json()).await.unwrap();
        assert_eq!(ack, TaskAck { task_id: "rust-1".into(), accepted: true, worker: "py-worker-1".into() });

        // accepted = priority >= 0 on the Python side
        let req = TaskAssignment { task_id: "rust-2".into(), priority: -1, ..Default::default() };
        let ack: TaskAck = channel
            .unary("TaskManager", 1, "assign_task", &req, json().metadata("x-trace-id", "abc123"))
            .await
            .unwrap();
        assert_eq!(ack, TaskAck { task_id: "rust-2".into(), accepted: false, worker: "py-worker-1".into() });

        channel.close();
        ep.close().await;
    };
    tokio::time::timeout(RUST_CALLS_LIMIT, calls).await.expect("Rust client calls timed out");
    py.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn rust_client_admission_against_python_server() {
    let py = PyServer::start("py-admission").await;
    let tm_id = TaskManagerService::<TaskManager>::contract_id().unwrap().to_hex();
    let ts_id = TaskSessionService::<TaskSession>::contract_id().unwrap().to_hex();
    assert_eq!(tm_id, "564f108daa850392179f626568b5c919cad3bf5996d3a41ec13229ee2b65120e");
    assert_eq!(ts_id, "ada0e1fe5cded36e3151dd4c0f7820ae1e662d4e3bda5dfccd834808a80c609f");

    let calls = async {
        let ep = bind_endpoint(&EndpointConfig::default()).await.unwrap();

        // The raw exchange: the live 0.1.2 response re-encodes byte for byte.
        let conn = ep.connect(py.addr(), ALPN_CONSUMER_ADMISSION).await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        send.write_all(&ConsumerAdmissionRequest::open().to_json().unwrap()).await.unwrap();
        send.finish().unwrap();
        let raw = recv.read_to_end(MAX_ADMISSION_PAYLOAD).await.unwrap();
        conn.close(0u32.into(), b"done");
        let parsed = ConsumerAdmissionResponse::from_json(&raw).unwrap();
        assert_eq!(parsed.to_json().unwrap(), raw, "re-encoding of\n{}", String::from_utf8_lossy(&raw));
        println!("python admission response: {}", String::from_utf8_lossy(&raw));

        // The client flow.
        let client = AsterClient::connect(&ep, py.addr()).await.unwrap();
        assert_eq!(client.peer(), py.endpoint_id);
        let adm = client.admission();
        assert!(adm.admitted);
        assert!(adm.attributes.is_empty());
        assert_eq!(adm.root_pubkey.len(), 64, "dev mode sends its ephemeral root key: {adm}");
        let listed: Vec<_> = client
            .services()
            .iter()
            .map(|s| (s.name.as_str(), s.version, s.contract_id.as_str(), s.pattern.as_str()))
            .collect();
        assert_eq!(
            listed,
            [("TaskManager", 1, tm_id.as_str(), "shared"), ("TaskSession", 1, ts_id.as_str(), "session")],
            "contract ids advertised by the Python server equal the Rust example's"
        );
        for s in client.services() {
            assert!(s.serialization_modes.is_empty(), "Python advertises [] (= XLANG): {s:?}");
            let rpc = NodeAddrText::from_base64(s.rpc_address().unwrap()).unwrap();
            assert_eq!(rpc.endpoint_id, *py.endpoint_id.as_bytes());
            assert!(rpc.direct_addrs.contains(&py.rpc_addr), "{rpc:?}");
        }

        // Mode selection: [] means XLANG; the default client (XLANG + NATIVE) selects it.
        assert_eq!(client.mode_for("TaskManager").unwrap(), SerializationMode::Xlang);
        let ch = client.channel_for("TaskManager").await.unwrap();
        assert_eq!(ch.mode(), SerializationMode::Xlang);
        let req =
            TaskAssignment { task_id: "adm-x".into(), title: "xlang".into(), priority: 2, tags: vec!["a".into()] };
        let ack: TaskAck = ch.unary("TaskManager", 1, "assign_task", &req, CallOptions::new()).await.unwrap();
        assert_eq!(ack, TaskAck { task_id: "adm-x".into(), accepted: true, worker: "py-worker-1".into() });
        // A NATIVE-only client shares no mode with a Python producer.
        let native = AsterClient::connect_with(
            &ep,
            py.addr(),
            AdmissionOptions::new().supported_modes([SerializationMode::Native]),
        )
        .await
        .unwrap();
        let e = native.channel_for("TaskManager").await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
        assert!(e.message().contains("producer offers [xlang]"), "{e}");

        // JSON explicitly, on the connection to channels.rpc.
        let ch = native.channel_for_mode("TaskManager", SerializationMode::Json).await.unwrap();
        assert_eq!(ch.peer(), py.endpoint_id);
        let req = TaskAssignment { task_id: "adm-1".into(), title: "admitted".into(), priority: 1, tags: vec![] };
        let ack: TaskAck = ch.unary("TaskManager", 1, "assign_task", &req, CallOptions::new()).await.unwrap();
        assert_eq!(ack, TaskAck { task_id: "adm-1".into(), accepted: true, worker: "py-worker-1".into() });

        client.close().await;
        native.close().await;
        ep.close().await;
    };
    tokio::time::timeout(RUST_CALLS_LIMIT, calls).await.expect("Rust admission client timed out");
    py.stop();
}

// ── Python client → Rust server ─────────────────────────────────────────────

/// Runs `client.py` with `args` (all eight cases) against a fresh Rust node serving the example;
/// checks that every case passed with the Rust services' answers. Returns client.py's stdout.
async fn run_client_py(name: &str, args: &[&str], expected: &[(&str, &str)]) -> String {
    require_peer();
    let scratch = ScratchDir::new(name);

    let node = service::serve(AsterNode::builder()).await.unwrap();
    let ticket = node.ticket().to_string();
    let addr = node.addr();
    assert!(
        addr.ip_addrs().all(|sa| sa.ip().is_loopback()),
        "the Rust node must only advertise loopback addresses: {addr:?}"
    );

    let mut cmd = py_command("client.py", scratch.path());
    cmd.arg("--address")
        .arg(&ticket)
        .args(args)
        .arg("--connect-timeout")
        .arg("30")
        .arg("--cases")
        .arg(CLIENT_CASES.join(","))
        .env("ASTER_CLIENT_TRACEBACK", "1")
        .stdout(scratch.log("client.out"))
        .stderr(scratch.log("client.err"));
    let mut client = ChildGuard::spawn(cmd, "client.py");
    let status = client.wait_exit(CLIENT_RUN_LIMIT).await;
    let out = scratch.read("client.out");
    let err = scratch.read("client.err");
    let report = format!("client.py {args:?}: exit status {status}\n--- stdout\n{out}\n--- stderr\n{err}");

    let result =
        out.lines().rev().find(|l| l.starts_with("RESULT ")).unwrap_or_else(|| panic!("no RESULT line\n{report}"));
    let fails: Vec<&str> = out.lines().filter(|l| l.starts_with("FAIL ")).collect();
    assert!(fails.is_empty(), "client.py reported failures: {fails:#?}\n{report}");
    assert_eq!(result, format!("RESULT passed={} failed=0", CLIENT_CASES.len()), "\n{report}");
    assert!(status.success(), "{report}");

    println!("{report}");
    // The answers came from the Rust services (worker "rs-worker-1"), not from some other server.
    for (case, line) in expected.iter().filter(|(case, _)| CLIENT_CASES.contains(case)) {
        assert!(out.lines().any(|l| l.starts_with(line)), "case {case}: missing output line {line:?}\n{report}");
    }

    tokio::time::timeout(Duration::from_secs(30), node.shutdown()).await.expect("node shutdown timed out").unwrap();
    out
}

/// What client.py prints after admission against the Rust node (contract id prefixes).
const ADMITTED_LINE: &str =
    "admitted; services offered: [('TaskManager', 1, '564f108daa850392'), ('TaskSession', 1, 'ada0e1fe5cded36e')]";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn python_client_calls_rust_server_json() {
    // The reference flow: admission on aster.consumer_admission, then channels.rpc on aster/1.
    let out = run_client_py("py-client-admission", &["--json"], CASE_OUTPUT).await;
    assert!(out.lines().any(|l| l == ADMITTED_LINE), "missing {ADMITTED_LINE:?}\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn python_client_calls_rust_server_json_no_admission() {
    let out = run_client_py("py-client", &["--json", "--no-admission"], CASE_OUTPUT).await;
    assert!(out.lines().any(|l| l == "connected to aster/1 directly (no admission)"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the Python reference peer: ../shared/interop/setup.sh"]
async fn python_typed_client_with_admission_calls_rust_server_xlang() {
    // No --json: the typed client keeps XLANG because the Rust node lists "xlang" (it would
    // switch to its JSON codec, which cannot work, for a list with "json" but no "xlang").
    let out = run_client_py("py-typed-admission", &[], TYPED_CASE_OUTPUT).await;
    assert!(out.lines().any(|l| l == ADMITTED_LINE), "missing {ADMITTED_LINE:?}\n{out}");
}
