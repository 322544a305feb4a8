//! Test harness shared by every test binary: starts the real `perfornium` binary as child processes
//! on 127.0.0.1 with ports chosen by the OS, waits for readiness by reading the address a server
//! prints and polling it, awaits every child with a deadline, and kills every child on drop.
//!
//! - [`Proc`]: a child whose stderr is drained by a thread (a chatty child never blocks on a full
//!   pipe) and whose last lines are kept for panic messages ([`Proc::stderr_tail`]);
//! - [`http`]: a blocking HTTP client (ureq) that returns (status, body) for any status;
//! - [`yaml`]: the one builder of test files aimed at the mock;
//! - [`cluster`]: three master replicas, and submitting to them;
//! - [`distributed`]: one master, the mock and workers, a run submitted and followed to its summary.
#![allow(dead_code, unused_imports)]

pub mod cluster;
pub mod distributed;
pub mod http;
pub mod receiver;
pub mod yaml;

pub use cluster::Cluster;
pub use distributed::{
    run_distributed, run_view, submit_run, summary_worker, wait_run_event, wait_run_final,
    Distributed,
};
pub use http::{call, call_within, get_json, get_json_within, http_get};
pub use yaml::{yaml, Yaml};

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_perfornium");

/// How many stderr lines a server keeps for panic messages.
const TAIL: usize = 200;

/// How long [`run`] lets a command take before it is killed.
pub const RUN_DEADLINE: Duration = Duration::from_secs(90);

/// How long the pipes of an exited child may stay open before its output is taken as it is.
const READERS_GRACE: Duration = Duration::from_secs(5);

/// A child's stderr lines, with when each arrived; only the last `keep` are kept.
struct Lines {
    lines: VecDeque<(Instant, String)>,
    keep: usize,
}

/// A child process, killed when dropped. Its stderr is read by a thread as it comes.
pub struct Proc {
    pub child: Child,
    /// The address a server printed (`host:port`); empty for commands that do not listen.
    pub addr: String,
    what: String,
    stderr: Arc<Mutex<Lines>>,
    stdout: Arc<Mutex<Vec<u8>>>,
    readers: Vec<JoinHandle<()>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `host:port` in a line such as `worker listening on http://127.0.0.1:4100 (open)`, taken
/// only from a line that says "listening on" (log lines before it are skipped); it ends at a space,
/// quote, comma, slash or terminal escape (a log formatter may colour what follows).
fn listening_addr(line: &str) -> Option<String> {
    let rest = &line[line.find("listening on")? + "listening on".len()..];
    let url = &rest[rest.find("://")? + 3..];
    let addr = url
        .split(|c: char| c.is_whitespace() || "\"',/\x1b".contains(c))
        .next()?;
    (!addr.is_empty()).then(|| addr.to_string())
}

/// Starts `cmd` with stderr piped and drained by a thread that keeps the last `keep` lines and
/// sends the first "listening on" address to `on_addr`. Stdout is read by a thread when
/// `capture_stdout`, else discarded.
fn spawn_cmd(
    mut cmd: Command,
    keep: usize,
    capture_stdout: bool,
    on_addr: Option<mpsc::Sender<String>>,
) -> Proc {
    let program = Path::new(cmd.get_program());
    let what = format!(
        "{} {}",
        program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy(),
        cmd.get_args()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    cmd.stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(if capture_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        });
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let lines = Arc::new(Mutex::new(Lines {
        lines: VecDeque::new(),
        keep,
    }));
    let pipe = child.stderr.take().expect("piped stderr");
    let sink = lines.clone();
    let stderr_reader = std::thread::spawn(move || {
        let mut on_addr = on_addr;
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        while reader.read_until(b'\n', &mut buf).is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            buf.clear();
            if let Some(addr) = on_addr.as_ref().and_then(|_| listening_addr(&line)) {
                let _ = on_addr.take().expect("checked").send(addr);
            }
            let mut l = sink.lock().unwrap();
            l.lines.push_back((Instant::now(), line));
            if l.lines.len() > l.keep {
                l.lines.pop_front();
            }
        }
    });
    let mut readers = vec![stderr_reader];
    let stdout = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut pipe) = child.stdout.take() {
        let sink = stdout.clone();
        readers.push(std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n @ 1..) = pipe.read(&mut buf) {
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        }));
    }
    Proc {
        child,
        addr: String::new(),
        what,
        stderr: lines,
        stdout,
        readers,
    }
}

impl Proc {
    /// The last lines the process wrote on stderr (up to 200 for a server, all for a command).
    pub fn stderr_tail(&self) -> String {
        let l = self.stderr.lock().unwrap();
        let mut text = String::new();
        for (_, line) in &l.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// When a stderr line containing `needle` first arrived (among the lines kept).
    pub fn stderr_line_at(&self, needle: &str) -> Option<Instant> {
        let l = self.stderr.lock().unwrap();
        l.lines
            .iter()
            .find(|(_, line)| line.contains(needle))
            .map(|(t, _)| *t)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("kill");
        let _ = self.child.wait();
    }

    /// Waits up to `deadline` for the process to exit; if it is still running then, kills it and
    /// panics with its stderr.
    pub fn wait_with_deadline(mut self, deadline: Duration) -> Output {
        let status = self.exit_within(deadline).unwrap_or_else(|| {
            let _ = self.child.kill();
            let _ = self.child.wait();
            self.join_readers();
            panic!(
                "`{}` still running after {deadline:?}: killed. Its stderr:\n{}",
                self.what,
                self.stderr_tail()
            )
        });
        let stdout = self.join_readers();
        Output {
            status,
            stdout,
            stderr: self.stderr_tail().into_bytes(),
        }
    }

    /// Polls for the exit status for up to `deadline`.
    pub fn exit_within(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return Some(s);
            }
            if t.elapsed() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lets the pipe readers reach EOF (the child has exited) and returns its stdout. A process
    /// the child started may still hold the pipes open (chromium's helpers do), so this waits at
    /// most a few seconds and then returns what was read.
    fn join_readers(&mut self) -> Vec<u8> {
        let t = Instant::now();
        while !self.readers.iter().all(JoinHandle::is_finished) && t.elapsed() < READERS_GRACE {
            std::thread::sleep(Duration::from_millis(5));
        }
        for h in std::mem::take(&mut self.readers) {
            if h.is_finished() {
                let _ = h.join();
            }
        }
        self.stdout.lock().unwrap().clone()
    }

    /// Polls `http://ADDR{path}` until it answers 200; panics with the stderr tail if it never does
    /// within 20 s or the process exits.
    pub fn wait_ready(&mut self, path: &str) {
        let url = format!("http://{}{path}", self.addr);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "`{}` exited ({status}) before {url} was ready. Its stderr:\n{}",
                    self.what,
                    self.stderr_tail()
                );
            }
            if http_get(&url).is_ok_and(|(code, _)| code == 200) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "{url} never became ready. `{}` stderr:\n{}",
            self.what,
            self.stderr_tail()
        );
    }
}

/// Starts `perfornium ARGS`, reads the `http://ADDR` it prints on stderr when listening, and polls
/// `probe` (a path) until it answers 200.
pub fn spawn_server(args: &[&str], probe: &str) -> Proc {
    let mut proc = spawn_listening(args);
    proc.wait_ready(probe);
    proc
}

/// Starts `perfornium ARGS` and waits until it prints the `http://ADDR` or `https://ADDR` it
/// listens on (the caller probes readiness its own way, e.g. over TLS).
pub fn spawn_listening(args: &[&str]) -> Proc {
    try_spawn_listening(args).unwrap_or_else(|e| panic!("{e}"))
}

/// [`spawn_listening`] that returns the stderr of a process that exited (or did not say where it
/// listens within 20 s) instead of panicking, so a caller can retry on a port taken meanwhile.
pub fn try_spawn_listening(args: &[&str]) -> Result<Proc, String> {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    try_spawn_listening_cmd(cmd)
}

/// [`try_spawn_listening`] of a prepared command (e.g. with its own environment).
pub fn try_spawn_listening_cmd(cmd: Command) -> Result<Proc, String> {
    let (tx, rx) = mpsc::channel();
    let mut proc = spawn_cmd(cmd, TAIL, false, Some(tx));
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(addr) => {
            proc.addr = addr;
            Ok(proc)
        }
        Err(_) => {
            let _ = proc.child.kill();
            let status = proc.child.wait();
            proc.join_readers();
            Err(format!(
                "`{}` never said where it listens ({status:?}). Its stderr:\n{}",
                proc.what,
                proc.stderr_tail()
            ))
        }
    }
}

/// Starts `cmd` (a command that runs to completion) with its stdout and all of its
/// stderr captured; await it with [`Proc::wait_with_deadline`].
pub fn start_cmd(cmd: Command) -> Proc {
    spawn_cmd(cmd, usize::MAX, true, None)
}

/// [`start_cmd`] of `perfornium ARGS`.
pub fn start(args: &[&str]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    start_cmd(cmd)
}

/// Runs `perfornium ARGS` to completion and returns its output; killed, with a panic showing its
/// stderr, if it runs longer than [`RUN_DEADLINE`].
pub fn run(args: &[&str]) -> Output {
    start(args).wait_with_deadline(RUN_DEADLINE)
}

/// The mock's `/__stats`.
pub fn mock_stats(mock: &Proc) -> serde_json::Value {
    get_json(&format!("http://{}/__stats", mock.addr))
        .unwrap_or_else(|| panic!("the mock's /__stats; its stderr:\n{}", mock.stderr_tail()))
}

/// Starts `perfornium mock` on a free port; probed on `/__stats`, which the mock does not count.
pub fn mock(delay_ms: u64) -> Proc {
    spawn_server(
        &["mock", "--port", "0", "--delay", &format!("{delay_ms}ms")],
        "/__stats",
    )
}

/// Writes `text` as `name` in `dir` and returns its path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p.display().to_string()
}

/// Reads `DIR/summary.json`.
pub fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).expect("summary.json"))
        .expect("summary JSON")
}

/// Starts `perfornium worker` on a free loopback port, optionally with a token.
pub fn worker(token: Option<&str>) -> Proc {
    let mut args = vec!["worker", "--host", "127.0.0.1", "--port", "0"];
    if let Some(t) = token {
        args.extend(["--token", t]);
    }
    spawn_server(&args, "/health")
}

/// [`worker`] without a token, with `env` added to its environment.
pub fn worker_with_env(env: &[(&str, &str)]) -> Proc {
    let mut cmd = Command::new(BIN);
    cmd.args(["worker", "--host", "127.0.0.1", "--port", "0"]);
    cmd.envs(env.iter().copied());
    let mut proc = try_spawn_listening_cmd(cmd).unwrap_or_else(|e| panic!("{e}"));
    proc.wait_ready("/health");
    proc
}

/// `GET /status` of a worker as JSON (`Null` if it does not answer).
pub fn worker_status(w: &Proc) -> serde_json::Value {
    get_json(&format!("http://{}/status", w.addr)).unwrap_or_default()
}

/// Waits until worker `w` reports its run as running.
pub fn wait_running(w: &Proc, secs: u64) {
    assert!(
        wait_for(secs, || worker_status(w)["phase"] == "running"),
        "worker {} never ran; its stderr:\n{}",
        w.addr,
        w.stderr_tail()
    );
}

/// Waits until a controller has pulled from worker `w` after its first one-second batch closed
/// (`last_poll_ms` past `started_at_ms` + 1.1 s, both on the worker's clock), so that batches of
/// its were merged before a test kills or freezes it.
pub fn wait_pulled(w: &Proc, secs: u64) {
    let pulled = || {
        let v = worker_status(w);
        let first_closed = v["started_at_ms"].as_f64().unwrap_or(f64::MAX) + 1100.0;
        v["last_poll_ms"].as_f64().unwrap_or(0.0) > first_closed
    };
    assert!(
        wait_for(secs, pulled),
        "no controller pulled a closed batch from worker {}: {}\n{}",
        w.addr,
        worker_status(w),
        w.stderr_tail()
    );
}

/// Masters must know their own and each other's addresses before they start, so their ports are
/// picked with [`free_port`]; another process can take one meanwhile. This many attempts are made.
pub const PORT_ATTEMPTS: usize = 3;

/// Whether a failed start was a port taken between [`free_port`] and the bind.
pub fn port_taken(stderr: &str) -> bool {
    stderr.contains("in use")
}

/// A one-replica `perfornium master` on a free port over `data` (it elects itself).
pub fn one_replica_master(data: &Path) -> Proc {
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let listen = format!("127.0.0.1:{}", free_port());
        let peers = format!("1={listen}");
        let args = [
            "master",
            "--id",
            "1",
            "--listen",
            &listen,
            "--peers",
            &peers,
            "--data",
            data.to_str().expect("a UTF-8 path"),
        ];
        match try_spawn_listening(&args) {
            Ok(mut m) => {
                m.wait_ready("/health");
                return m;
            }
            Err(e) if port_taken(&e) => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{last}")
}

/// `h:p,h:p` for `-w`.
pub fn worker_list(workers: &[&Proc]) -> String {
    workers
        .iter()
        .map(|w| w.addr.clone())
        .collect::<Vec<_>>()
        .join(",")
}

/// Polls `cond` every 50 ms until it holds or `secs` pass.
pub fn wait_for(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// A port the OS says is free right now (bound, read, released). Masters must know each other's
/// addresses before they start, so this is the one place a port is chosen before the server binds
/// (callers retry on "address in use", see [`PORT_ATTEMPTS`]).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// `n` distinct free ports on 127.0.0.1 (all held open until every one is chosen, so two calls in a
/// row cannot hand out the same port, as separate [`free_port`] calls can).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    held.iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// Milliseconds since the Unix epoch (the clock workers report `last_poll_ms` in).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

#[test]
fn the_listening_address_is_read_only_from_its_line() {
    assert_eq!(listening_addr("INFO starting up on http://x"), None);
    assert_eq!(
        listening_addr("worker listening on http://127.0.0.1:4100 (open)").as_deref(),
        Some("127.0.0.1:4100")
    );
    let traced = "2026-01-01T00:00:00Z  INFO perfornium: master 1 listening on \
                  https://127.0.0.1:7000 (data /d)";
    assert_eq!(listening_addr(traced).as_deref(), Some("127.0.0.1:7000"));
    assert_eq!(
        listening_addr("INFO mock listening on http://127.0.0.1:9/").as_deref(),
        Some("127.0.0.1:9")
    );
    assert_eq!(
        listening_addr("\x1b[32mINFO\x1b[0m listening on http://127.0.0.1:9\x1b[0m").as_deref(),
        Some("127.0.0.1:9")
    );
}

/// SIGSTOPs a process until dropped (or [`Frozen::thaw`]), so a failing test leaves none stopped.
pub struct Frozen(u32);

impl Frozen {
    pub fn new(p: &Proc) -> Frozen {
        signal("-STOP", p.child.id());
        Frozen(p.child.id())
    }

    /// SIGCONTs the process now.
    pub fn thaw(self) {}
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

/// Sends `sig` (e.g. `-STOP`) to `pid` with kill(1).
pub fn signal(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// "N cores (CPU model)" of this host, for benchmark result files.
pub fn host_facts() -> String {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores ({cpu})")
}

/// Exactly once, on the merged path, in a final distributed summary (`summary.json` or a
/// `/runs/{id}` view's `summary`): every worker with final totals has merged batches equal to them,
/// a worker without them counts what was merged, the timeline adds up to the overall count, and no
/// event reports a batch lost or merged twice.
pub fn assert_merged_exactly_once(s: &serde_json::Value) {
    assert!(
        ["finished", "failed", "stopped"].contains(&s["phase"].as_str().unwrap_or("")),
        "only a final summary has its whole timeline: {}",
        s["phase"]
    );
    for w in s["workers"].as_array().expect("a distributed summary") {
        if w["final_count"].is_null() {
            assert_eq!(w["merged_count"], w["count"], "{w}");
        } else {
            assert_eq!(
                w["merged_matches_final"], true,
                "merged batches differ from the worker's final totals: {w}"
            );
            assert_eq!(w["merged_count"], w["final_count"], "{w}");
            assert_eq!(w["merged_errors"], w["final_errors"], "{w}");
        }
    }
    let on_timeline: u64 = s["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(
        Some(on_timeline),
        s["overall"]["count"].as_u64(),
        "Σ timeline == overall count"
    );
    for e in s["events"].as_array().into_iter().flatten() {
        let e = e.as_str().unwrap_or("");
        assert!(
            !e.contains("differ from merged") && !e.contains("never merged"),
            "{e}"
        );
    }
}

/// This host's 1-minute load average now (from /proc/loadavg), for result files: what else was
/// running while a benchmark measured.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "unknown".into())
}

/// Replaces section `## title` of the results file `file` (under `bench/results/`) with `body`,
/// creating the file with `header` when it does not exist; other sections are kept.
pub fn write_results_section(file: &str, header: &str, title: &str, body: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench/results")
        .join(file);
    let old = std::fs::read_to_string(&path).unwrap_or_else(|_| header.to_string());
    let head = format!("## {title}\n");
    let mut out = String::new();
    let mut skipping = false;
    for line in old.lines() {
        if line.starts_with("## ") {
            skipping = line == head.trim_end();
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push('\n');
    out.push_str(&head);
    out.push_str(body);
    std::fs::write(&path, out.replace("\n\n\n", "\n\n")).expect("write results");
}

/// Spread of the workers' first requests as the mock saw them (its own clock), in ms.
pub fn first_request_spread(mock: &Proc, workers: usize) -> f64 {
    let firsts: Vec<f64> = mock_stats(mock)["first_request_ms"]
        .as_object()
        .expect("first_request_ms")
        .values()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(firsts.len(), workers, "one first request per worker");
    let max = firsts.iter().cloned().fold(f64::MIN, f64::max);
    let min = firsts.iter().cloned().fold(f64::MAX, f64::min);
    max - min
}

/// A worker whose clock runs `offset_ms` off the machine's.
pub fn skewed_worker(offset_ms: &str) -> Proc {
    spawn_server(
        &[
            "worker",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--test-clock-offset-ms",
            offset_ms,
        ],
        "/health",
    )
}
