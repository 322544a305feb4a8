//! The controller's side of the gRPC and WebSocket worker transports
//! (`distributed.communication.protocol`), used by [`super::client::WorkerClient`].
//!
//! Both receive batches on a stream the controller opens to the worker (the worker never dials
//! out). A background task keeps what arrives: batches by sequence number, the latest phase and
//! live view, log records. A pull with `since=N&ack=A` acknowledges A (what the controller has
//! saved) on the stream's link (the `Ack` call, or an `{"ack": A}` frame), and returns everything
//! after N (what it has merged), exactly as `GET /metrics?since=N&ack=A` does; the run record's
//! sequence check merges each once. A broken or silent stream is reopened from A, so nothing the
//! saved record lacks is lost and nothing is counted twice.

use crate::api::transport::{grpc as pb, StreamQuery, WsAck};
use crate::config::communication::{GrpcCommunication, WsCommunication};
use crate::tls::ClientTls;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Notify};

/// What arrived on a batch stream and has not been handed to a pull yet.
#[derive(Default)]
struct FeedState {
    batches: BTreeMap<u64, serde_json::Value>,
    /// The latest message, without its batches and logs.
    last: Option<serde_json::Map<String, serde_json::Value>>,
    logs: Vec<serde_json::Value>,
    last_at: Option<Instant>,
    /// Why the stream ended, once it has.
    broken: Option<String>,
}

/// A stream's shared state: the reader task writes, pulls read.
#[derive(Default)]
pub(super) struct Feed {
    state: std::sync::Mutex<FeedState>,
    arrived: Notify,
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps one message (a `GET /metrics` answer).
    pub(super) fn push(&self, body: &[u8]) {
        let v = serde_json::from_slice::<serde_json::Value>(body);
        let mut s = self.lock();
        match v {
            Ok(serde_json::Value::Object(mut m)) => {
                if let Some(serde_json::Value::Array(bs)) = m.remove("batches") {
                    for b in bs {
                        if let Some(seq) = b["seq"].as_u64() {
                            s.batches.insert(seq, b);
                        }
                    }
                }
                if let Some(serde_json::Value::Array(ls)) = m.remove("logs") {
                    s.logs.extend(ls);
                }
                s.last = Some(m);
                s.last_at = Some(Instant::now());
            }
            Ok(_) => s.broken = Some("the worker sent a message that is not an object".into()),
            Err(e) => s.broken = Some(format!("unreadable message: {e}")),
        }
        drop(s);
        self.arrived.notify_waiters();
    }

    pub(super) fn fail(&self, why: String) {
        let mut s = self.lock();
        if s.broken.is_none() {
            s.broken = Some(why);
        }
        drop(s);
        self.arrived.notify_waiters();
    }

    fn broken(&self) -> Option<String> {
        self.lock().broken.clone()
    }

    /// Waits up to `timeout` for the first message; why not, if none came.
    async fn first(&self, timeout: Duration) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let wait = self.arrived.notified();
            {
                let s = self.lock();
                if let Some(b) = &s.broken {
                    return Err(b.clone());
                }
                if s.last.is_some() {
                    return Ok(());
                }
            }
            if tokio::time::timeout_at(deadline, wait).await.is_err() {
                return Err(format!(
                    "no message on the batch stream within {} ms",
                    timeout.as_millis()
                ));
            }
        }
    }

    /// A `GET /metrics` answer: what arrived, with every batch after `since`; `Err` when the
    /// stream broke or went silent for `stale`.
    fn take(&self, since: u64, stale: Duration) -> Result<serde_json::Value, String> {
        let mut s = self.lock();
        if let Some(b) = &s.broken {
            return Err(b.clone());
        }
        if s.last_at.is_none_or(|t| t.elapsed() > stale) {
            let why = format!(
                "the batch stream was silent for over {} ms",
                stale.as_millis()
            );
            s.broken = Some(why.clone());
            return Err(why);
        }
        s.batches = s.batches.split_off(&(since + 1));
        let mut m = s.last.clone().unwrap_or_default();
        m.insert(
            "batches".into(),
            serde_json::Value::Array(s.batches.values().cloned().collect()),
        );
        m.insert(
            "logs".into(),
            serde_json::Value::Array(std::mem::take(&mut s.logs)),
        );
        Ok(serde_json::Value::Object(m))
    }
}

/// An open stream: its feed, its reader task, and how to acknowledge on it.
struct Open {
    feed: Arc<Feed>,
    task: tokio::task::AbortHandle,
    acked: u64,
    /// WebSocket: acks go to the task, which writes them on the socket.
    acks: Option<tokio::sync::mpsc::UnboundedSender<u64>>,
}

impl Drop for Open {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a stream transport reaches one worker.
#[derive(Clone)]
pub(super) enum Kind {
    Grpc(pb::worker_client::WorkerClient<tonic::transport::Channel>),
    Ws(WsSettings),
}

/// `communication.websocket` as the client applies it.
#[derive(Clone)]
pub(super) struct WsSettings {
    pub url: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub ping_interval: Option<Duration>,
    pub pong_timeout: Option<Duration>,
    pub reconnects: u32,
    pub reconnect_delay: Duration,
    pub gzip: bool,
    pub max_message: usize,
}

impl WsSettings {
    pub(super) fn new(
        addr: &str,
        tls: Option<&ClientTls>,
        o: Option<&WsCommunication>,
    ) -> Result<Self, String> {
        let tls = match tls {
            Some(t) => Some(t.rustls_config(&[b"http/1.1"]).map_err(|e| e.to_string())?),
            None => None,
        };
        let scheme = if tls.is_some() { "wss" } else { "ws" };
        let d = WsCommunication::default();
        let o = o.unwrap_or(&d);
        Ok(WsSettings {
            url: format!("{scheme}://{addr}/metrics"),
            tls,
            ping_interval: o.ping_interval,
            pong_timeout: o.pong_timeout,
            reconnects: o.max_reconnect_attempts.unwrap_or(1),
            reconnect_delay: o.reconnect_delay.unwrap_or_default(),
            gzip: o.message_compression == Some(true),
            max_message: o.max_message_size.map_or(64 << 20, |m| m.0),
        })
    }
}

/// A gRPC channel to `addr` with the block's keepalive, message-size and TLS settings.
pub(super) fn grpc_client(
    addr: &str,
    tls: Option<&ClientTls>,
    o: Option<&GrpcCommunication>,
    timeout: Duration,
) -> Result<pb::worker_client::WorkerClient<tonic::transport::Channel>, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut ep = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|e| format!("{addr} is not a gRPC address: {e}"))?
        .connect_timeout(timeout)
        // Client-side: every call (and the opening of the stream) gives up after `timeout`.
        .timeout(timeout);
    if let Some(t) = tls {
        let (ca, id) = t.pems();
        let mut c = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
        if let Some((cert, key)) = id {
            c = c.identity(Identity::from_pem(cert, key));
        }
        ep = ep.tls_config(c).map_err(|e| format!("gRPC TLS: {e}"))?;
    }
    if let Some(o) = o {
        if let Some(k) = o.keepalive_time {
            ep = ep.http2_keep_alive_interval(k).keep_alive_while_idle(true);
        }
        if let Some(k) = o.keepalive_timeout {
            ep = ep.keep_alive_timeout(k);
        }
    }
    let mut client = pb::worker_client::WorkerClient::new(ep.connect_lazy());
    let limit = o
        .and_then(|o| o.max_message_size)
        .map_or(usize::MAX, |m| m.0);
    client = client
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit);
    Ok(client)
}

/// The batch stream to one worker, opened on the first pull and reopened when it breaks.
pub(super) struct Stream {
    kind: Kind,
    open: Mutex<Option<Open>>,
    /// Bounds opening the stream and each ack.
    timeout: Duration,
    /// How often the worker sends when nothing new happened.
    interval: Duration,
}

impl Stream {
    pub(super) fn new(kind: Kind, timeout: Duration) -> Self {
        // Half the call timeout, so a pull always finds a message younger than the timeout.
        let interval = (timeout / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
        Stream {
            kind,
            open: Mutex::new(None),
            timeout,
            interval,
        }
    }

    /// A `GET /metrics?since=N&ack=A` answer over the stream (see the module's comment); `auth`
    /// is the bearer token for this call, if any.
    pub(super) async fn pull(
        &self,
        since: u64,
        ack: u64,
        auth: Option<String>,
    ) -> Result<serde_json::Value, String> {
        let mut open = self.open.lock().await;
        let attempts = match &self.kind {
            Kind::Ws(w) => w.reconnects.max(1),
            Kind::Grpc(_) => 1,
        };
        let mut last_err = String::new();
        for attempt in 0..=attempts {
            if attempt > 0 {
                if let Kind::Ws(w) = &self.kind {
                    tokio::time::sleep(w.reconnect_delay).await;
                }
            }
            if open.as_ref().is_some_and(|o| o.feed.broken().is_some()) {
                *open = None;
            }
            if open.is_none() {
                // Opened from what is saved: opening acknowledges it, and batches the worker sends
                // again up to `since` are answered by `take` no more (merged ones are ignored).
                let ack = ack.min(since);
                match self.open(ack, auth.clone()).await {
                    Ok(o) => *open = Some(o),
                    Err(e) => {
                        last_err = e;
                        continue;
                    }
                }
            }
            let Some(o) = open.as_mut() else { continue };
            let ack = ack.min(since);
            if ack > o.acked {
                if let Err(e) = self.ack(o, ack, auth.clone()).await {
                    last_err = e;
                    *open = None;
                    continue;
                }
            }
            // Messages come at least every `interval`; a loaded worker may fall behind for a
            // while, and a dead connection is found by the keepalives and the driver's
            // detection timeout, so only a long silence counts as a broken stream.
            let stale = (self.timeout * 5).max(self.interval * 4);
            match o.feed.take(since, stale) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    last_err = e;
                    *open = None;
                }
            }
        }
        Err(last_err)
    }

    async fn ack(&self, o: &mut Open, since: u64, auth: Option<String>) -> Result<(), String> {
        match &self.kind {
            Kind::Grpc(c) => {
                // In the background, as a WebSocket ack is: acks only go up and a lost one is
                // covered by the next, so the pull need not wait a round trip for it.
                let mut c = c.clone();
                let req = request(
                    pb::Since {
                        since,
                        interval_ms: 0,
                    },
                    auth,
                    self.timeout,
                );
                let feed = o.feed.clone();
                tokio::spawn(async move {
                    if let Err(s) = c.ack(req).await {
                        if s.code() == tonic::Code::Unauthenticated
                            || s.code() == tonic::Code::PermissionDenied
                        {
                            feed.fail(grpc_reason(&s));
                        }
                    }
                });
            }
            Kind::Ws(_) => {
                let tx = o.acks.as_ref().ok_or("no ack channel")?;
                tx.send(since)
                    .map_err(|_| "the batch stream is closed".to_string())?;
            }
        }
        o.acked = since;
        Ok(())
    }

    async fn open(&self, since: u64, auth: Option<String>) -> Result<Open, String> {
        let feed = Arc::new(Feed::default());
        let interval_ms = self.interval.as_millis() as u32;
        let (task, acks) = match &self.kind {
            Kind::Grpc(c) => {
                let mut c = c.clone();
                let req = request(pb::Since { since, interval_ms }, auth, self.timeout);
                let mut stream = tokio::time::timeout(self.timeout, c.batches(req))
                    .await
                    .map_err(|_| "opening the batch stream timed out".to_string())?
                    .map_err(|s| grpc_reason(&s))?
                    .into_inner();
                let f = feed.clone();
                let task = tokio::spawn(async move {
                    loop {
                        match stream.message().await {
                            Ok(Some(m)) => f.push(&m.body),
                            Ok(None) => return f.fail("the worker ended the batch stream".into()),
                            Err(s) => return f.fail(grpc_reason(&s)),
                        }
                    }
                });
                (task.abort_handle(), None)
            }
            Kind::Ws(w) => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let socket = ws_connect(w, since, interval_ms, auth, self.timeout).await?;
                let task = tokio::spawn(ws_read(socket, feed.clone(), rx, w.clone()));
                (task.abort_handle(), Some(tx))
            }
        };
        let open = Open {
            feed,
            task,
            acked: since,
            acks,
        };
        open.feed.first(self.timeout).await?;
        Ok(open)
    }
}

/// A gRPC request with the bearer token and a deadline.
pub(super) fn request<T>(msg: T, auth: Option<String>, timeout: Duration) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    req.set_timeout(timeout);
    if let Some(t) = auth {
        if let Ok(v) = format!("Bearer {t}").parse() {
            req.metadata_mut().insert("authorization", v);
        }
    }
    req
}

/// Why a gRPC call failed, with the worker's message.
pub(super) fn grpc_reason(s: &tonic::Status) -> String {
    let http = crate::api::transport::http_status(s);
    format!(
        "{} ({:?}, HTTP {http}): {}",
        "gRPC call refused",
        s.code(),
        s.message()
    )
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(
    w: &WsSettings,
    since: u64,
    interval_ms: u32,
    auth: Option<String>,
    timeout: Duration,
) -> Result<Socket, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let q = StreamQuery {
        since,
        ack: None,
        interval_ms,
        compress: w.gzip.then(|| "gzip".to_string()),
    };
    let query = serde_urlencoded_query(&q);
    let mut req = format!("{}?{query}", w.url)
        .into_client_request()
        .map_err(|e| e.to_string())?;
    if let Some(t) = auth {
        if let Ok(v) = format!("Bearer {t}").parse() {
            req.headers_mut().insert("authorization", v);
        }
    }
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(w.max_message))
        .max_frame_size(Some(w.max_message));
    let connector = w
        .tls
        .clone()
        .map(tokio_tungstenite::Connector::Rustls)
        .or(Some(tokio_tungstenite::Connector::Plain));
    let connect =
        tokio_tungstenite::connect_async_tls_with_config(req, Some(config), true, connector);
    match tokio::time::timeout(timeout, connect).await {
        Err(_) => Err("opening the WebSocket timed out".into()),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            Err(format!(
                "the worker refused the WebSocket: HTTP {} {body}",
                resp.status().as_u16()
            ))
        }
        Ok(Err(e)) => Err(format!("WebSocket: {e}")),
        Ok(Ok((socket, _))) => Ok(socket),
    }
}

fn serde_urlencoded_query(q: &StreamQuery) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("since", &q.since.to_string());
    s.append_pair("interval_ms", &q.interval_ms.to_string());
    if let Some(c) = &q.compress {
        s.append_pair("compress", c);
    }
    s.finish()
}

/// Reads a WebSocket batch stream into `feed`, writes acks, and pings as the settings say.
async fn ws_read(
    socket: Socket,
    feed: Arc<Feed>,
    mut acks: tokio::sync::mpsc::UnboundedReceiver<u64>,
    w: WsSettings,
) {
    use futures_util::{SinkExt, StreamExt};
    use std::io::Read;
    use tokio_tungstenite::tungstenite::Message;
    let (mut tx, mut rx) = socket.split();
    let ping_every = w.ping_interval.unwrap_or(Duration::from_secs(3600));
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    // When the oldest unanswered ping went out.
    let mut waiting_pong: Option<tokio::time::Instant> = None;
    let pong_timeout = w.pong_timeout.unwrap_or(ping_every);
    loop {
        let pong_deadline = waiting_pong.map(|t| t + pong_timeout);
        tokio::select! {
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => feed.push(t.as_bytes()),
                Some(Ok(Message::Binary(b))) => {
                    let mut json = Vec::new();
                    match flate2::read::GzDecoder::new(&b[..]).read_to_end(&mut json) {
                        Ok(_) => feed.push(&json),
                        Err(e) => return feed.fail(format!("undecodable compressed frame: {e}")),
                    }
                }
                Some(Ok(Message::Pong(_))) => waiting_pong = None,
                Some(Ok(Message::Ping(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(c))) => {
                    return feed.fail(format!("the worker closed the batch stream: {}",
                        c.map(|c| c.reason.to_string()).unwrap_or_default()))
                }
                Some(Err(e)) => return feed.fail(format!("WebSocket: {e}")),
                None => return feed.fail("the worker ended the batch stream".into()),
            },
            a = acks.recv() => {
                let Some(a) = a else { return };
                let Ok(text) = serde_json::to_string(&WsAck { ack: a }) else { return };
                if let Err(e) = tx.send(Message::Text(text.into())).await {
                    return feed.fail(format!("WebSocket: {e}"));
                }
            }
            _ = ping.tick(), if w.ping_interval.is_some() => {
                if let Err(e) = tx.send(Message::Ping(Vec::new().into())).await {
                    return feed.fail(format!("WebSocket: {e}"));
                }
                waiting_pong.get_or_insert_with(tokio::time::Instant::now);
            }
            _ = async { match pong_deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {
                return feed.fail(format!("no pong within {} ms", pong_timeout.as_millis()));
            }
        }
    }
}
