//! The worker transports compared in one run: `perfornium distributed` (the controller, a child
//! process) drives N simulated workers served by this test process over each transport and
//! compression setting in turn (`http` with no compression, gzip and zstd; `grpc`; `websocket`
//! plain and with gzip frames). Each simulated worker sends a batch a second of 3 steps × 1,000
//! requests with their HDR histograms (the template of `controller.rs`), so N workers stand for
//! N × 3,000 requests a second. Measured per setting:
//! - the controller's CPU (from `/proc/PID/stat`, over the middle of the run);
//! - bytes on the wire, both directions, counted at the simulated workers' sockets (TCP payload)
//!   over the whole run, per worker and second;
//! - delivery latency: from the instant a batch closes at the worker to the instant it leaves
//!   for the controller (a pull's answer or a stream message), median and p95 over all batches;
//! - ack latency: from the close to the controller's acknowledgement, which it sends only after
//!   merging (and with a master, saving) the batch: merge latency plus the wait for the next pull.
//!
//! And the merge is checked against the simulated workers' totals (every batch merged once).
//!
//! Full version (writes `bench/results/transports.md`):
//! `TRANSPORTS_WORKERS=100 TRANSPORTS_SECONDS=12 cargo test --release --test bench transports -- --ignored --nocapture`

use super::controller::{final_results, template, usage, PER_STEP};
use crate::support::*;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use perfornium::api::transport::grpc as pb;
use perfornium::api::worker as api;
use perfornium::metrics::StepStats;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One simulated worker.
struct Fake {
    run: Mutex<Option<(String, Instant, f64)>>,
    stopped: AtomicBool,
    seconds: u64,
    steps_json: Arc<String>,
    totals: Arc<Vec<StepStats>>,
    /// The highest sequence number the controller acknowledged.
    acked: AtomicU64,
    /// By sequence number: ms from its close to its first delivery, and to its ack.
    delivered: Mutex<BTreeMap<u64, f64>>,
    ack_ms: Mutex<BTreeMap<u64, f64>>,
}

impl Fake {
    /// Run id, start (ms), seconds closed, and whether the run is over.
    fn closed(&self) -> Option<(String, f64, u64, bool, Instant)> {
        let run = self.run.lock().unwrap();
        let (id, started, at_ms) = run.as_ref()?;
        let elapsed = started.elapsed().as_secs();
        let done = self.stopped.load(Ordering::Relaxed) || elapsed >= self.seconds;
        Some((
            id.clone(),
            *at_ms,
            elapsed.min(self.seconds),
            done,
            *started,
        ))
    }

    fn ack(&self, since: u64) {
        let before = self.acked.fetch_max(since, Ordering::Relaxed);
        if since <= before {
            return;
        }
        let Some((.., started)) = self.closed() else {
            return;
        };
        let mut acks = self.ack_ms.lock().unwrap();
        for seq in before + 1..=since {
            let close = started + Duration::from_secs(seq);
            acks.insert(
                seq,
                Instant::now().duration_since(close).as_secs_f64() * 1000.0,
            );
        }
    }

    /// A `GET /metrics` answer with the batches after `from`; the seconds closed.
    fn body(&self, from: u64) -> (String, u64, &'static str) {
        let Some((id, at_ms, closed, done, started)) = self.closed() else {
            return (r#"{"run_id":null,"phase":"idle","started_at_ms":null,"batches":[],"live":{"elapsed_s":0,"requests":0,"errors":0,"rps":0,"p95_ms":0,"active_vus":0,"dropped":0}}"#.into(), 0, "idle");
        };
        let phase = if done && self.acked.load(Ordering::Relaxed).max(from) >= closed {
            "finished"
        } else {
            "running"
        };
        let now = Instant::now();
        let mut delivered = self.delivered.lock().unwrap();
        let batches: Vec<String> = (from + 1..=closed)
            .map(|seq| {
                let close = started + Duration::from_secs(seq);
                delivered
                    .entry(seq)
                    .or_insert(now.duration_since(close).as_secs_f64() * 1000.0);
                format!(
                    r#"{{"seq":{seq},"elapsed_s":{seq},"steps":{},"active_vus":1,"dropped":0}}"#,
                    self.steps_json
                )
            })
            .collect();
        let body = format!(
            r#"{{"run_id":"{id}","phase":"{phase}","started_at_ms":{at_ms},"batches":[{}],"live":{{"elapsed_s":{closed},"requests":{},"errors":0,"rps":{},"p95_ms":1.0,"active_vus":1,"dropped":0}}}}"#,
            batches.join(","),
            closed * 3 * PER_STEP,
            3 * PER_STEP
        );
        (body, closed, phase)
    }

    fn results(&self) -> Option<api::Results> {
        let (id, at_ms, closed, done, _) = self.closed()?;
        if !done {
            return None;
        }
        Some(final_results(&self.totals, id, at_ms, closed))
    }

    fn start(&self, s: api::Start) {
        let mut run = self.run.lock().unwrap();
        if run.is_none() {
            *run = Some((s.run_id, Instant::now(), perfornium::time::precise_now_ms()));
        }
    }

    /// The stream both transports send: a message as soon as a batch closes or the phase
    /// changes (checked every 50 ms), and at least every `every`.
    fn stream(
        self: &Arc<Self>,
        mut sent: u64,
        every: Duration,
    ) -> tokio::sync::mpsc::Receiver<String> {
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let f = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            let mut last: Option<(Instant, &'static str)> = None;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tx.closed() => return,
                }
                let closed = f.closed().map_or(0, |c| c.2);
                let (body, _, phase) = if closed > sent
                    || last.is_none_or(|(at, p)| at.elapsed() >= every || p != f.body_phase())
                {
                    f.body(sent)
                } else {
                    continue;
                };
                sent = sent.max(closed);
                last = Some((Instant::now(), phase));
                if tx.send(body).await.is_err() {
                    return;
                }
            }
        });
        rx
    }

    fn body_phase(&self) -> &'static str {
        match self.closed() {
            None => "idle",
            Some((_, _, closed, done, _))
                if done && self.acked.load(Ordering::Relaxed) >= closed =>
            {
                "finished"
            }
            Some(_) => "running",
        }
    }
}

fn ack_json(phase: api::WorkerPhase) -> Vec<u8> {
    serde_json::to_vec(&api::Ack { phase }).unwrap()
}

#[derive(serde::Deserialize)]
struct PullQuery {
    #[serde(default)]
    since: u64,
    #[serde(default)]
    interval_ms: u32,
    #[serde(default)]
    compress: Option<String>,
}

async fn metrics(
    State(f): State<Arc<Fake>>,
    Query(q): Query<PullQuery>,
    upgrade: Result<
        axum::extract::ws::WebSocketUpgrade,
        axum::extract::ws::rejection::WebSocketUpgradeRejection,
    >,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Ok(up) = upgrade {
        return up.on_upgrade(move |socket| ws(f, q, socket));
    }
    f.ack(q.since);
    let (body, ..) = f.body(q.since);
    ([("content-type", "application/json")], body).into_response()
}

async fn ws(f: Arc<Fake>, q: PullQuery, socket: axum::extract::ws::WebSocket) {
    use axum::extract::ws::Message;
    use futures_util::{SinkExt, StreamExt};
    use std::io::Write;
    f.ack(q.since);
    let every = Duration::from_millis(u64::from(q.interval_ms.max(50)));
    let mut rx = f.stream(q.since, every);
    let gzip = q.compress.as_deref() == Some("gzip");
    let (mut tx, mut incoming) = socket.split();
    loop {
        tokio::select! {
            body = rx.recv() => {
                let Some(body) = body else { return };
                let msg = if gzip {
                    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    enc.write_all(body.as_bytes()).unwrap();
                    Message::Binary(enc.finish().unwrap().into())
                } else {
                    Message::Text(body.into())
                };
                if tx.send(msg).await.is_err() { return; }
            }
            m = incoming.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if let Ok(a) = serde_json::from_str::<perfornium::api::transport::WsAck>(t.as_str()) {
                        f.ack(a.ack);
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            }
        }
    }
}

#[derive(Clone)]
struct FakeGrpc(Arc<Fake>);

type Stream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<pb::Json, tonic::Status>> + Send>>;

fn json(body: Vec<u8>) -> Result<tonic::Response<pb::Json>, tonic::Status> {
    Ok(tonic::Response::new(pb::Json { body }))
}

#[tonic::async_trait]
impl pb::worker_server::Worker for FakeGrpc {
    async fn health(
        &self,
        _: tonic::Request<pb::Empty>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        json(
            serde_json::to_vec(&api::Health {
                status: "ok".into(),
                now_ms: perfornium::time::precise_now_ms(),
            })
            .unwrap(),
        )
    }
    async fn status(
        &self,
        _: tonic::Request<pb::Empty>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        Err(tonic::Status::unimplemented("status"))
    }
    async fn prepare(
        &self,
        _: tonic::Request<pb::Json>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        json(ack_json(api::WorkerPhase::Prepared))
    }
    async fn start(
        &self,
        r: tonic::Request<pb::Json>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        let s: api::Start = serde_json::from_slice(&r.get_ref().body).unwrap();
        self.0.start(s);
        json(ack_json(api::WorkerPhase::Running))
    }
    async fn stop(
        &self,
        _: tonic::Request<pb::Json>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        self.0.stopped.store(true, Ordering::Relaxed);
        json(ack_json(api::WorkerPhase::Stopped))
    }
    async fn scale(
        &self,
        _: tonic::Request<pb::Json>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        Err(tonic::Status::unimplemented("scale"))
    }
    async fn results(
        &self,
        _: tonic::Request<pb::RunId>,
    ) -> Result<tonic::Response<pb::Pending>, tonic::Status> {
        Ok(tonic::Response::new(match self.0.results() {
            Some(r) => pb::Pending {
                pending: false,
                body: serde_json::to_vec(&r).unwrap(),
            },
            None => pb::Pending {
                pending: true,
                body: Vec::new(),
            },
        }))
    }
    async fn rendezvous(
        &self,
        _: tonic::Request<pb::RunId>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        let id = self.0.closed().map(|c| c.0).unwrap_or_default();
        json(
            serde_json::to_vec(&api::RendezvousState {
                run_id: id,
                points: Default::default(),
            })
            .unwrap(),
        )
    }
    async fn release(
        &self,
        _: tonic::Request<pb::Json>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        Err(tonic::Status::unimplemented("release"))
    }
    async fn variables(
        &self,
        _: tonic::Request<pb::RunId>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        Err(tonic::Status::unimplemented("variables"))
    }
    async fn set_variables(
        &self,
        _: tonic::Request<pb::Json>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        Err(tonic::Status::unimplemented("set_variables"))
    }
    async fn leases(
        &self,
        _: tonic::Request<pb::RunId>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        Err(tonic::Status::unimplemented("leases"))
    }
    async fn grant(
        &self,
        _: tonic::Request<pb::Json>,
    ) -> Result<tonic::Response<pb::Json>, tonic::Status> {
        Err(tonic::Status::unimplemented("grant"))
    }
    async fn ack(
        &self,
        r: tonic::Request<pb::Since>,
    ) -> Result<tonic::Response<pb::Empty>, tonic::Status> {
        self.0.ack(r.get_ref().since);
        Ok(tonic::Response::new(pb::Empty {}))
    }
    type BatchesStream = Stream;
    async fn batches(
        &self,
        r: tonic::Request<pb::Since>,
    ) -> Result<tonic::Response<Stream>, tonic::Status> {
        let since = r.get_ref().since;
        self.0.ack(since);
        let every = Duration::from_millis(u64::from(r.get_ref().interval_ms.max(50)));
        let rx = self.0.stream(since, every);
        let s = futures_util::stream::unfold(rx, |mut rx| async move {
            let body = rx.recv().await?;
            Some((
                Ok(pb::Json {
                    body: body.into_bytes(),
                }),
                rx,
            ))
        });
        Ok(tonic::Response::new(Box::pin(s)))
    }
}

/// A socket that counts the bytes it carries, both ways.
struct Counted {
    io: tokio::net::TcpStream,
    bytes: Arc<AtomicU64>,
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = std::pin::Pin::new(&mut self.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let r = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        if let std::task::Poll::Ready(Ok(n)) = &r {
            self.bytes.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

struct CountingListener {
    inner: tokio::net::TcpListener,
    bytes: Arc<AtomicU64>,
}

impl axum::serve::Listener for CountingListener {
    type Io = Counted;
    type Addr = std::net::SocketAddr;
    async fn accept(&mut self) -> (Counted, std::net::SocketAddr) {
        loop {
            if let Ok((io, addr)) = self.inner.accept().await {
                let _ = io.set_nodelay(true);
                return (
                    Counted {
                        io,
                        bytes: self.bytes.clone(),
                    },
                    addr,
                );
            }
        }
    }
    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

/// `n` simulated workers serving HTTP, gRPC and WebSocket on one port each.
fn fake_workers(
    n: usize,
    seconds: u64,
) -> (
    tokio::runtime::Runtime,
    Vec<String>,
    Vec<Arc<Fake>>,
    Arc<AtomicU64>,
) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (steps_json, totals) = template();
    let (steps_json, totals) = (Arc::new(steps_json), Arc::new(totals));
    let bytes = Arc::new(AtomicU64::new(0));
    let mut fakes = Vec::new();
    let addrs = rt.block_on(async {
        let mut addrs = Vec::new();
        for _ in 0..n {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addrs.push(l.local_addr().unwrap().to_string());
            let fake = Arc::new(Fake {
                run: Mutex::new(None),
                stopped: AtomicBool::new(false),
                seconds,
                steps_json: steps_json.clone(),
                totals: totals.clone(),
                acked: AtomicU64::new(0),
                delivered: Mutex::new(BTreeMap::new()),
                ack_ms: Mutex::new(BTreeMap::new()),
            });
            fakes.push(fake.clone());
            let grpc = pb::worker_server::WorkerServer::new(FakeGrpc(fake.clone()));
            let app = Router::new()
                .route(
                    "/health",
                    get(|| async {
                        Json(api::Health {
                            status: "ok".into(),
                            now_ms: perfornium::time::precise_now_ms(),
                        })
                    }),
                )
                .route(
                    "/prepare",
                    post(|| async {
                        Json(api::Ack {
                            phase: api::WorkerPhase::Prepared,
                        })
                    }),
                )
                .route(
                    "/start",
                    post(
                        |State(f): State<Arc<Fake>>, Json(s): Json<api::Start>| async move {
                            f.start(s);
                            Json(api::Ack {
                                phase: api::WorkerPhase::Running,
                            })
                        },
                    ),
                )
                .route(
                    "/stop",
                    post(|State(f): State<Arc<Fake>>| async move {
                        f.stopped.store(true, Ordering::Relaxed);
                        Json(api::Ack {
                            phase: api::WorkerPhase::Stopped,
                        })
                    }),
                )
                .route(
                    "/metrics",
                    get(metrics).layer(
                        tower_http::compression::CompressionLayer::new()
                            .no_br()
                            .no_deflate(),
                    ),
                )
                .route(
                    "/results",
                    get(|State(f): State<Arc<Fake>>| async move {
                        use axum::response::IntoResponse;
                        match f.results() {
                            Some(r) => Json(r).into_response(),
                            None => (axum::http::StatusCode::ACCEPTED, "{}").into_response(),
                        }
                    }),
                )
                .route(
                    "/rendezvous",
                    get(|State(f): State<Arc<Fake>>| async move {
                        let id = f.closed().map(|c| c.0).unwrap_or_default();
                        Json(api::RendezvousState {
                            run_id: id,
                            points: Default::default(),
                        })
                    }),
                )
                .with_state(fake)
                .route_service("/perfornium.worker.Worker/{*rest}", grpc);
            let listener = CountingListener {
                inner: l,
                bytes: bytes.clone(),
            };
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        addrs
    });
    (rt, addrs, fakes, bytes)
}

/// What one setting measured.
struct Cost {
    label: &'static str,
    cpu_pct: f64,
    bytes_per_worker_s: f64,
    delivery_p50: f64,
    delivery_p95: f64,
    ack_p50: f64,
    ack_p95: f64,
    counted: u64,
    expected: u64,
}

fn quantile(v: &mut [f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * q).round() as usize]
}

/// The settings compared: a label, the protocol, and the options under `communication:`.
const SETTINGS: [(&str, &str, &str); 6] = [
    ("http", "http", "http: {compression: false}"),
    ("http + gzip", "http", "http: {compression: gzip}"),
    ("http + zstd", "http", "http: {compression: zstd}"),
    ("grpc", "grpc", ""),
    ("websocket", "websocket", ""),
    (
        "websocket + gzip frames",
        "websocket",
        "websocket: {message_compression: true}",
    ),
];

fn measure(label: &'static str, protocol: &str, options: &str, n: usize, seconds: u64) -> Cost {
    let (rt, addrs, fakes, bytes) = fake_workers(n, seconds);
    let dir = tempfile::tempdir().unwrap();
    let mut comm = format!("distributed:\n  communication:\n    protocol: {protocol}\n");
    if !options.is_empty() {
        comm.push_str(&format!("    {options}\n"));
    }
    let test = format!(
        "name: transports-{n}\nglobal:\n  base_url: http://127.0.0.1:9\nload:\n  pattern: basic\n  virtual_users: {n}\n  duration: {seconds}s\nscenarios:\n  - name: s\n    steps:\n      - {{ name: a, path: /a }}\n      - {{ name: b, path: /b }}\n      - {{ name: c, path: /c }}\n{comm}"
    );
    let file = write(dir.path(), "t.yaml", &test);
    let out = dir.path().join("out");
    let list = addrs.join(",");
    let child = start(&[
        "distributed",
        &file,
        "-w",
        &list,
        "-s",
        "even",
        "-o",
        out.to_str().unwrap(),
    ]);
    let pid = child.pid();
    // The middle of the run: from a second after the start to a second before the end.
    assert!(
        wait_for(60, || fakes.iter().all(|f| f.closed().is_some())),
        "the run did not start: {}",
        child.stderr_tail()
    );
    std::thread::sleep(Duration::from_secs(1));
    let t0 = Instant::now();
    let (cpu0, _) = usage(pid);
    std::thread::sleep(Duration::from_secs(seconds.saturating_sub(2).max(1)));
    let (cpu1, _) = usage(pid);
    let window = t0.elapsed().as_secs_f64();
    let res = child.wait_with_deadline(Duration::from_secs(120 + seconds * 10));
    assert!(
        res.status.success(),
        "{label}: {}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    assert_merged_exactly_once(&s);
    let counted = s["overall"]["count"].as_u64().unwrap();
    let mut delivery: Vec<f64> = fakes
        .iter()
        .flat_map(|f| {
            f.delivered
                .lock()
                .unwrap()
                .values()
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    let mut acks: Vec<f64> = fakes
        .iter()
        .flat_map(|f| {
            f.ack_ms
                .lock()
                .unwrap()
                .values()
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    let total_bytes = bytes.load(Ordering::Relaxed) as f64;
    drop(rt);
    Cost {
        label,
        cpu_pct: (cpu1 - cpu0) / window * 100.0,
        bytes_per_worker_s: total_bytes / (n as f64 * seconds as f64),
        delivery_p50: quantile(&mut delivery, 0.5),
        delivery_p95: quantile(&mut delivery, 0.95),
        ack_p50: quantile(&mut acks, 0.5),
        ack_p95: quantile(&mut acks, 0.95),
        counted,
        expected: n as u64 * seconds * 3 * PER_STEP,
    }
}

/// CI-sized: 10 simulated workers for 4 s over HTTP, gRPC and WebSocket; every batch merged
/// once, and the streams deliver a batch sooner than the once-a-second pull does at the median
/// (they send it as it closes; a pull finds it up to a second later).
#[test]
fn ci_sized_transports_merge_exactly_and_streams_deliver_sooner() {
    let mut costs = Vec::new();
    for (label, protocol, options) in [SETTINGS[0], SETTINGS[3], SETTINGS[4]] {
        let c = measure(label, protocol, options, 10, 4);
        println!(
            "{label}: controller {:.1} % CPU, {:.0} B/worker/s, delivery p50 {:.0} ms",
            c.cpu_pct, c.bytes_per_worker_s, c.delivery_p50
        );
        assert_eq!(c.counted, c.expected, "{label}: every batch merged once");
        costs.push(c);
    }
    for c in &costs[1..] {
        assert!(
            c.delivery_p50 < costs[0].delivery_p50,
            "{}: delivery p50 {:.0} ms, http pull {:.0} ms",
            c.label,
            c.delivery_p50,
            costs[0].delivery_p50
        );
    }
}

#[test]
#[ignore]
fn transports_compared() {
    let n: usize = std::env::var("TRANSPORTS_WORKERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let seconds: u64 = std::env::var("TRANSPORTS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(12);
    let mut md = format!(
        "# Worker transports compared\n\n`TRANSPORTS_WORKERS={n} TRANSPORTS_SECONDS={seconds} cargo test{} --test bench transports -- --ignored`: \
         {} build. `perfornium distributed` drives {n} simulated workers (served by the test process on {}), each sending a batch a second \
         of 3 steps × {PER_STEP} requests with their HDR histograms ({} requests/s in total), for {seconds} s per setting, one setting after the other. \
         Controller CPU is over the middle of each run; bytes are both directions at the workers' sockets over the whole run; \
         delivery latency is from a batch's close to its leaving the worker for the controller; ack latency from the close to the \
         controller's acknowledgement (sent after the merge, on its next pull of that worker).\n\n\
         | setting | controller CPU (% of one core) | bytes / worker / s | delivery p50 / p95 (ms) | ack p50 / p95 (ms) | requests counted / expected |\n|---|---|---|---|---|---|\n",
        if cfg!(debug_assertions) { "" } else { " --release" },
        if cfg!(debug_assertions) { "A debug" } else { "A release" },
        host_facts(),
        n as u64 * 3 * PER_STEP
    );
    // `TRANSPORTS_ONLY=grpc` measures only the settings whose label contains it.
    let only = std::env::var("TRANSPORTS_ONLY").unwrap_or_default();
    for (label, protocol, options) in SETTINGS {
        if !label.contains(only.as_str()) {
            continue;
        }
        let c = measure(label, protocol, options, n, seconds);
        println!(
            "{label}: {:.1} % CPU, {:.0} B/worker/s, delivery {:.0}/{:.0} ms, ack {:.0}/{:.0} ms",
            c.cpu_pct, c.bytes_per_worker_s, c.delivery_p50, c.delivery_p95, c.ack_p50, c.ack_p95
        );
        md.push_str(&format!(
            "| {} | {:.1} | {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {} / {} |\n",
            c.label,
            c.cpu_pct,
            c.bytes_per_worker_s,
            c.delivery_p50,
            c.delivery_p95,
            c.ack_p50,
            c.ack_p95,
            c.counted,
            c.expected
        ));
        assert_eq!(c.counted, c.expected, "{label}: every batch merged once");
    }
    md.push_str(&format!(
        "\nThe host's 1-minute load average at the end: {}.\n",
        load_average()
    ));
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results/transports.md");
    std::fs::write(&path, md).unwrap();
}
