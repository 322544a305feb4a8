//! Test harness: starts the real `perfornium` binary as child processes on 127.0.0.1 with ports
//! chosen by the OS, waits for readiness by reading the address a server prints and polling it, and
//! kills every child on drop.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_perfornium");

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub addr: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `perfornium ARGS`, reads the `http://ADDR` it prints on stderr when listening, and polls
/// `probe` (a path) until it answers 200.
pub fn spawn_server(args: &[&str], probe: &str) -> Proc {
    let proc = spawn_listening(args);
    wait_ready(&format!("http://{}{probe}", proc.addr));
    proc
}

/// Starts `perfornium ARGS` and waits until it prints the `http://ADDR` or `https://ADDR` it
/// listens on (the caller probes readiness its own way, e.g. over TLS).
pub fn spawn_listening(args: &[&str]) -> Proc {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn perfornium");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !sent {
                if let Some(i) = line.find("://").filter(|_| line.contains("http")) {
                    let addr = line[i + 3..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(addr);
                    sent = true;
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("server printed its address");
    Proc { child, addr }
}

/// Polls `url` until it answers 200 (a readiness probe, not a sleep).
pub fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(r) = ureq_get(url) {
            if r.0 == 200 {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{url} never became ready");
}

/// A blocking GET (see [`call`]), so tests need no HTTP client runtime.
pub fn ureq_get(url: &str) -> std::io::Result<(u16, String)> {
    call("GET", url, None, None)
}

/// The mock's `/__stats`.
pub fn mock_stats(mock: &Proc) -> serde_json::Value {
    let (_, body) = ureq_get(&format!("http://{}/__stats", mock.addr)).expect("stats");
    serde_json::from_str(&body).expect("stats JSON")
}

/// Starts `perfornium mock` on a free port; probed on `/__stats`, which the mock does not count.
pub fn mock(delay_ms: u64) -> Proc {
    spawn_server(
        &["mock", "--port", "0", "--delay", &format!("{delay_ms}ms")],
        "/__stats",
    )
}

/// Runs `perfornium ARGS` to completion (bounded by the test's own durations) and returns its output.
pub fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run perfornium")
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

/// A one-replica `perfornium master` on a free port over `data` (it elects itself).
pub fn one_replica_master(data: &Path) -> Proc {
    let listen = format!("127.0.0.1:{}", free_port());
    spawn_server(
        &[
            "master",
            "--id",
            "1",
            "--listen",
            &listen,
            "--peers",
            &format!("1={listen}"),
            "--data",
            data.to_str().expect("a UTF-8 path"),
        ],
        "/health",
    )
}

/// `h:p,h:p` for `-w`.
pub fn worker_list(workers: &[&Proc]) -> String {
    workers
        .iter()
        .map(|w| w.addr.clone())
        .collect::<Vec<_>>()
        .join(",")
}

/// A blocking HTTP call with a method, optional bearer token and JSON body; returns (status, body).
pub fn call(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    call_within(method, url, token, body, Duration::from_secs(10))
}

/// [`call`] that gives up after `timeout` (a stopped process accepts connections but never answers).
pub fn call_within(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
    timeout: Duration,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map(|(h, p)| (h, format!("/{p}")))
        .unwrap_or((rest, "/".into()));
    let addr: std::net::SocketAddr = host.parse().expect("tests call numeric addresses");
    let mut s = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut buf = String::new();
    s.read_to_string(&mut buf)?;
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
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
/// addresses before they start, so this is the one place a port is chosen before the server binds.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Three `perfornium master` replicas on loopback, each with its own data directory.
pub struct Cluster {
    pub addrs: Vec<String>,
    pub dir: tempfile::TempDir,
    pub procs: Vec<Option<Proc>>,
    /// Extra arguments every replica gets (e.g. `--token T`).
    pub extra: Vec<String>,
    /// The token to read replicas with, when they need one.
    pub token: Option<String>,
}

impl Cluster {
    /// Starts three replicas and waits until they agree on a leader.
    pub fn start() -> Cluster {
        Cluster::start_with(None)
    }

    /// Like [`Cluster::start`], every replica guarded by `token`.
    pub fn start_with(token: Option<&str>) -> Cluster {
        let addrs: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let extra = token
            .map(|t| vec!["--token".to_string(), t.to_string()])
            .unwrap_or_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Cluster {
            addrs,
            dir,
            procs: vec![None, None, None],
            extra,
            token: token.map(String::from),
        };
        for i in 0..3 {
            c.start_node(i);
        }
        c.wait_leader(20).expect("a leader within 20 s");
        c
    }

    /// `1=h:p,2=h:p,3=h:p`.
    pub fn peers(&self) -> String {
        self.addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `--cluster` value.
    pub fn list(&self) -> String {
        self.addrs.join(",")
    }

    /// Replica `i`'s data directory (0-based; node id i+1).
    pub fn data_dir(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("m{}", i + 1))
    }

    /// The `perfornium` arguments that start replica `i` from its directory.
    pub fn node_args(&self, i: usize) -> Vec<String> {
        let mut args: Vec<String> = [
            "master",
            "--id",
            &(i + 1).to_string(),
            "--listen",
            &self.addrs[i],
            "--peers",
            &self.peers(),
            "--data",
            self.data_dir(i).to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        args.extend(self.extra.iter().cloned());
        args
    }

    /// (Re)starts replica `i` from its directory.
    pub fn start_node(&mut self, i: usize) {
        let args = self.node_args(i);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.procs[i] = Some(spawn_server(&args, "/health"));
    }

    /// SIGKILLs replica `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            p.child.kill().expect("kill");
            let _ = p.child.wait();
        }
    }

    /// `GET path` of replica `i` as JSON, if it is running and answers 200.
    fn get_json(&self, i: usize, path: &str) -> Option<serde_json::Value> {
        self.procs[i].as_ref()?;
        let url = format!("http://{}{path}", self.addrs[i]);
        let (code, body) = call("GET", &url, self.token.as_deref(), None).ok()?;
        (code == 200)
            .then(|| serde_json::from_str(&body).ok())
            .flatten()
    }

    /// `GET /cluster` of replica `i`.
    pub fn view(&self, i: usize) -> Option<serde_json::Value> {
        self.get_json(i, "/cluster")
    }

    /// The leader's index once every live replica names the same leader and it says it leads.
    pub fn leader(&self) -> Option<usize> {
        let views: Vec<serde_json::Value> = (0..3).filter_map(|i| self.view(i)).collect();
        let live = self.procs.iter().filter(|p| p.is_some()).count();
        if views.len() < live || views.is_empty() {
            return None;
        }
        let id = views[0]["leader_id"].as_u64()?;
        if !views.iter().all(|v| v["leader_id"].as_u64() == Some(id)) {
            return None;
        }
        let i = id as usize - 1;
        (self.view(i)?["role"] == "leader").then_some(i)
    }

    /// Waits up to `secs` for an agreed leader.
    pub fn wait_leader(&self, secs: u64) -> Option<usize> {
        let mut found = None;
        wait_for(secs, || {
            found = self.leader();
            found.is_some()
        });
        found
    }

    /// `GET /runs/{id}` from replica `i`.
    pub fn run(&self, i: usize, id: &str) -> Option<serde_json::Value> {
        self.get_json(i, &format!("/runs/{id}"))
    }
}
