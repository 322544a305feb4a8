//! Calls to one worker's API, with a timeout on every call and the bearer token when one is set.
//! The controller never assumes a call went through: every worker call is idempotent per run id,
//! so a failed or repeated call is simply made again.
//!
//! The transport is the test's `distributed.communication.protocol`: HTTP/JSON, gRPC (every call,
//! and batches on a stream), or WebSocket (HTTP calls, batches on a WebSocket); see
//! [`super::transport`]. The answers are the same documents whichever carries them.

use crate::api::transport::grpc as pb;
use crate::api::worker::{self as api, WorkerAddr};
use crate::api::ApiError;
use crate::tls::{self, ClientTls};
use serde::de::DeserializeOwned;
use serde::Deserialize as _;
use std::time::Duration;
use thiserror::Error;

/// Over gRPC: makes the call `$method` with `$msg` and returns its decoded JSON answer.
macro_rules! grpc_json {
    ($self:ident, $method:ident, $msg:expr) => {
        if let Some(c) = $self.grpc() {
            let mut c = c?;
            let msg = $msg;
            let r = c
                .$method($self.req(msg))
                .await
                .map_err(|s| $self.grpc_error(s))?;
            return $self.decode(&r.get_ref().body);
        }
    };
}

/// The TLS error in `e`'s chain, if the call failed in the handshake (retrying cannot help).
fn rustls_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(tls) = e.downcast_ref::<rustls::Error>() {
        return Some(tls.to_string());
    }
    let wrapped = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref());
    if let Some(tls) = wrapped.and_then(|inner| rustls_failure(inner)) {
        return Some(tls);
    }
    // Under gRPC the handshake's error reaches us as text in an I/O error.
    if let Some(inner) = wrapped {
        let text = inner.to_string();
        if ["fatal alert", "invalid peer certificate", "handshake"]
            .iter()
            .any(|n| text.contains(n))
        {
            return Some(text);
        }
    }
    e.source().and_then(rustls_failure)
}

/// Why a call to a worker failed.
#[derive(Debug, Error)]
pub enum CallError {
    #[error("worker {addr} is unreachable: {source}")]
    Unreachable {
        addr: String,
        source: reqwest::Error,
    },
    #[error("worker {addr} answered {status}: {message}")]
    Refused {
        addr: String,
        status: u16,
        message: String,
    },
    /// The TLS handshake failed (an untrusted server, or our certificate refused): retrying the
    /// same call cannot help.
    #[error("worker {addr}: TLS failed: {reason}")]
    Tls { addr: String, reason: String },
    /// A gRPC or WebSocket link failed (or its stream broke) without an answer from the worker.
    #[error("worker {addr} is unreachable: {reason}")]
    Down { addr: String, reason: String },
}

impl CallError {
    /// The HTTP status the worker answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Refused { status, .. } => Some(*status),
            CallError::Unreachable { .. } | CallError::Tls { .. } | CallError::Down { .. } => None,
        }
    }

    /// True when the worker was reached and said no (an HTTP status or a TLS refusal), so the
    /// same call will fail again; false when it may simply be down for now.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, CallError::Unreachable { .. } | CallError::Down { .. })
    }
}

/// How the controller proves itself to workers: the bearer token and, when workers serve HTTPS,
/// the CA to trust and the client certificate to present. Never printed.
#[derive(Clone, Default)]
pub struct Credentials {
    pub token: Option<String>,
    pub tls: Option<ClientTls>,
    /// Mints a short-lived JWT for each call (`security.authentication.token_auth`); wins over `token`.
    pub mint: Option<std::sync::Arc<crate::config::security::Minter>>,
}

/// A handle on one worker.
#[derive(Clone)]
pub struct WorkerClient {
    pub addr: String,
    http: reqwest::Client,
    scheme: &'static str,
    token: Option<String>,
    mint: Option<std::sync::Arc<crate::config::security::Minter>>,
    /// gRPC or WebSocket; `None`: HTTP/JSON.
    link: Option<std::sync::Arc<Link>>,
    timeout: Duration,
}

/// A gRPC or WebSocket link to one worker.
struct Link {
    /// gRPC: every call goes over it.
    grpc:
        Option<crate::api::transport::grpc::worker_client::WorkerClient<tonic::transport::Channel>>,
    /// The batch stream; `Err`: why the link could not be set up (every call says so).
    stream: Result<super::transport::Stream, String>,
}

impl WorkerClient {
    /// A client for `worker` for a run of `test`: its `communication` block chooses the transport
    /// and its options; `timeout` bounds each call unless `communication.http.timeout` is given.
    pub fn for_test(
        worker: &WorkerAddr,
        creds: &Credentials,
        timeout: Duration,
        test: &crate::config::TestFile,
    ) -> Self {
        use super::transport::{grpc_client, Kind, Stream, WsSettings};
        use crate::config::communication::{Compression, Protocol};
        let comm = test
            .distributed
            .as_ref()
            .and_then(|d| d.communication.clone())
            .unwrap_or_default();
        let http = comm.http.clone().unwrap_or_default();
        let timeout = http.timeout.unwrap_or(timeout);
        // HTTP/1.1 as before workers offered HTTP/2 (for gRPC): a refused handshake then
        // reads as a TLS failure, not as a broken HTTP/2 connection.
        let mut builder = tls::client_builder(creds.tls.as_ref())
            .http1_only()
            .timeout(timeout)
            .connect_timeout(timeout);
        builder = match http.compression {
            Some(Compression::None) => builder.no_gzip().no_zstd(),
            Some(Compression::Zstd) => builder.no_gzip(),
            Some(Compression::Gzip) => builder.no_zstd(),
            None => builder.no_zstd(),
        };
        if http.keep_alive == Some(false) {
            builder = builder.pool_max_idle_per_host(0);
        }
        let http_client = builder
            .build()
            .expect("a reqwest client with a timeout and loaded certificates builds");
        let addr = worker.addr();
        let link = match comm.protocol() {
            Protocol::Http => None,
            Protocol::Grpc => {
                let g = comm.grpc.as_ref();
                let tls = match g.and_then(|g| g.security.as_ref()) {
                    Some(s) if s.tls_enabled != Some(false) => {
                        let ca = s.ca_file.clone().unwrap_or_default();
                        let pair = match (s.mutual_tls, &s.cert_file, &s.key_file) {
                            (Some(true), Some(c), Some(k)) => Some((c.clone(), k.clone())),
                            _ => None,
                        };
                        ClientTls::load(&ca, pair.as_ref().map(|(c, k)| (c.as_path(), k.as_path())))
                            .map(Some)
                            .map_err(|e| format!("communication.grpc.security: {e}"))
                    }
                    Some(_) => Ok(None),
                    None => Ok(creds.tls.clone()),
                };
                let client = tls.and_then(|t| grpc_client(&addr, t.as_ref(), g, timeout));
                Some(match client {
                    Ok(c) => Link {
                        grpc: Some(c.clone()),
                        stream: Ok(Stream::new(Kind::Grpc(c), timeout)),
                    },
                    Err(e) => Link {
                        grpc: None,
                        stream: Err(e),
                    },
                })
            }
            Protocol::Websocket => Some(Link {
                grpc: None,
                stream: WsSettings::new(&addr, creds.tls.as_ref(), comm.websocket.as_ref())
                    .map(|w| Stream::new(Kind::Ws(w), timeout)),
            }),
        };
        Self {
            addr,
            http: http_client,
            scheme: tls::scheme(creds.tls.as_ref()),
            token: creds.token.clone(),
            mint: creds.mint.clone(),
            link: link.map(std::sync::Arc::new),
            timeout,
        }
    }

    /// A client for `worker` with a per-call `timeout`.
    pub fn new(worker: &WorkerAddr, creds: &Credentials, timeout: Duration) -> Self {
        let http = tls::client_builder(creds.tls.as_ref())
            .http1_only()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("a reqwest client with a timeout and loaded certificates builds");
        Self {
            addr: worker.addr(),
            http,
            scheme: tls::scheme(creds.tls.as_ref()),
            token: creds.token.clone(),
            mint: creds.mint.clone(),
            link: None,
            timeout,
        }
    }

    /// The bearer token for one call: a fresh JWT, or the static token.
    fn bearer(&self) -> Option<String> {
        match (&self.mint, &self.token) {
            (Some(m), _) => Some(m.bearer()),
            (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        }
    }

    fn down(&self, reason: String) -> CallError {
        CallError::Down {
            addr: self.addr.clone(),
            reason,
        }
    }

    /// A gRPC refusal as the HTTP API's, or the link's failure.
    fn grpc_error(&self, s: tonic::Status) -> CallError {
        use tonic::Code;
        let answered = s.metadata().contains_key(crate::api::transport::STATUS_KEY)
            || !matches!(
                s.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
            );
        if !answered {
            if let Some(reason) = rustls_failure(&s) {
                return CallError::Tls {
                    addr: self.addr.clone(),
                    reason,
                };
            }
            return self.down(super::transport::grpc_reason(&s));
        }
        CallError::Refused {
            addr: self.addr.clone(),
            status: crate::api::transport::http_status(&s),
            message: s.message().to_string(),
        }
    }

    /// A worker's non-success answer as [`CallError::Refused`], with the reason its error body
    /// gives (empty when the body is not one).
    async fn refused_by(&self, resp: reqwest::Response) -> CallError {
        let status = resp.status().as_u16();
        let message = resp
            .json::<ApiError>()
            .await
            .map(|e| e.error)
            .unwrap_or_default();
        CallError::Refused {
            addr: self.addr.clone(),
            status,
            message,
        }
    }

    /// The gRPC client, when the transport is gRPC: `Err` when the link could not be set up.
    fn grpc(
        &self,
    ) -> Option<
        Result<
            crate::api::transport::grpc::worker_client::WorkerClient<tonic::transport::Channel>,
            CallError,
        >,
    > {
        let link = self.link.as_ref()?;
        match (&link.grpc, &link.stream) {
            (Some(c), _) => Some(Ok(c.clone())),
            (None, Err(e)) => Some(Err(CallError::Tls {
                addr: self.addr.clone(),
                reason: e.clone(),
            })),
            (None, Ok(_)) => None,
        }
    }

    /// Reads a gRPC answer's JSON document.
    fn decode<T: DeserializeOwned>(&self, body: &[u8]) -> Result<T, CallError> {
        serde_json::from_slice(body).map_err(|e| CallError::Refused {
            addr: self.addr.clone(),
            status: 200,
            message: format!("unreadable answer: {e}"),
        })
    }

    fn encode<T: serde::Serialize>(&self, body: &T) -> Result<Vec<u8>, CallError> {
        serde_json::to_vec(body).map_err(|e| CallError::Refused {
            addr: self.addr.clone(),
            status: 0,
            message: format!("the request did not serialize: {e}"),
        })
    }

    fn req<T>(&self, msg: T) -> tonic::Request<T> {
        super::transport::request(msg, self.bearer(), self.timeout)
    }

    fn url(&self, path: &str) -> String {
        format!("{}://{}{path}", self.scheme, self.addr)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, CallError> {
        match self.call_or_wait(req).await? {
            Some(t) => Ok(t),
            None => Err(CallError::Refused {
                addr: self.addr.clone(),
                status: 202,
                message: "accepted, no answer yet".into(),
            }),
        }
    }

    /// A call whose 202 means "not yet" (`Ok(None)`), not a refusal.
    async fn call_or_wait<T: DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<Option<T>, CallError> {
        let req = match (&self.mint, &self.token) {
            (Some(m), _) => req.bearer_auth(m.bearer()),
            (None, Some(t)) => req.bearer_auth(t),
            (None, None) => req,
        };
        let unreachable = |source: reqwest::Error| match tls::handshake_failure(&source) {
            Some(reason) => CallError::Tls {
                addr: self.addr.clone(),
                reason,
            },
            None => CallError::Unreachable {
                addr: self.addr.clone(),
                source,
            },
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        if status == reqwest::StatusCode::ACCEPTED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.refused_by(resp).await);
        }
        resp.json().await.map(Some).map_err(unreachable)
    }

    /// `GET /health`: the worker is up, and its clock.
    pub async fn health(&self) -> Result<api::Health, CallError> {
        grpc_json!(self, health, pb::Empty {});
        self.call(self.http.get(self.url("/health"))).await
    }

    /// `GET /resources`: a sample of the worker's process and host (`least_loaded` plans by it).
    pub async fn resources(&self) -> Result<crate::metrics::resources::Resources, CallError> {
        self.call(self.http.get(self.url("/resources"))).await
    }

    /// Hands the worker its share of the run.
    pub async fn prepare(&self, body: &api::Prepare) -> Result<api::Ack, CallError> {
        grpc_json!(
            self,
            prepare,
            pb::Json {
                body: self.encode(body)?
            }
        );
        self.call(self.http.post(self.url("/prepare")).json(body))
            .await
    }

    /// `POST /test-hook`: runs the test's own hooks of `body.hook` on the worker (over HTTP
    /// whatever the transport), waiting up to `wait` for them to end.
    pub async fn test_hook(
        &self,
        body: &api::TestHook,
        wait: Duration,
    ) -> Result<api::TestHookDone, CallError> {
        self.call(
            self.http
                .post(self.url("/test-hook"))
                .json(body)
                .timeout(wait),
        )
        .await
    }

    /// Starts the prepared run, at an instant of the worker's clock or now.
    pub async fn start(&self, body: &api::Start) -> Result<api::Ack, CallError> {
        grpc_json!(
            self,
            start,
            pb::Json {
                body: self.encode(body)?
            }
        );
        self.call(self.http.post(self.url("/start")).json(body))
            .await
    }

    /// Adds load to the running run (a failed worker's share).
    pub async fn scale(&self, body: &api::Scale) -> Result<api::Ack, CallError> {
        grpc_json!(
            self,
            scale,
            pb::Json {
                body: self.encode(body)?
            }
        );
        self.call(self.http.post(self.url("/scale")).json(body))
            .await
    }

    /// Stops the run; what was measured is kept.
    pub async fn stop(&self, run_id: &str) -> Result<api::Ack, CallError> {
        let body = api::Stop {
            run_id: run_id.into(),
        };
        grpc_json!(
            self,
            stop,
            pb::Json {
                body: self.encode(&body)?
            }
        );
        self.call(self.http.post(self.url("/stop")).json(&body))
            .await
    }

    /// Batches after `since`, acknowledging everything up to `ack` (what the controller has
    /// saved; at most `since`).
    pub async fn metrics(&self, since: u64, ack: u64) -> Result<api::Metrics, CallError> {
        if self.link.is_some() {
            return self.pull(since, ack).await.map(|p| p.metrics);
        }
        self.call(self.http.get(self.url(&metrics_path(since, ack))))
            .await
    }

    /// Like [`Self::metrics`], with what the worker measured about itself and its log records.
    /// Over gRPC and WebSocket, the batches come from the worker's stream (opened on the first
    /// pull) and `ack` is acknowledged on it.
    pub async fn pull(&self, since: u64, ack: u64) -> Result<api::Pull, CallError> {
        let body: serde_json::Value = match &self.link {
            Some(link) => {
                let stream = link.stream.as_ref().map_err(|e| CallError::Tls {
                    addr: self.addr.clone(),
                    reason: e.clone(),
                })?;
                stream
                    .pull(since, ack, self.bearer())
                    .await
                    .map_err(|e| self.down(e))?
            }
            None => {
                self.call(self.http.get(self.url(&metrics_path(since, ack))))
                    .await?
            }
        };
        let refused = |e: serde_json::Error| CallError::Refused {
            addr: self.addr.clone(),
            status: 200,
            message: format!("unreadable metrics: {e}"),
        };
        let extras = api::PullExtras::deserialize(&body).map_err(refused)?;
        let metrics = api::Metrics::deserialize(body).map_err(refused)?;
        Ok(api::Pull { metrics, extras })
    }

    /// Who waits at each rendezvous point of `run_id`.
    pub async fn rendezvous(&self, run_id: &str) -> Result<api::RendezvousState, CallError> {
        grpc_json!(
            self,
            rendezvous,
            pb::RunId {
                run_id: run_id.into()
            }
        );
        self.call(
            self.http
                .get(self.url("/rendezvous"))
                .query(&[("run_id", run_id)]),
        )
        .await
    }

    /// Releases one rendezvous point's waiters.
    pub async fn release(&self, body: &api::Release) -> Result<api::Released, CallError> {
        grpc_json!(
            self,
            release,
            pb::Json {
                body: self.encode(body)?
            }
        );
        self.call(self.http.post(self.url("/rendezvous")).json(body))
            .await
    }

    /// The worker's global variables for `run_id`.
    pub async fn variables(&self, run_id: &str) -> Result<api::Variables, CallError> {
        grpc_json!(
            self,
            variables,
            pb::RunId {
                run_id: run_id.into()
            }
        );
        self.call(
            self.http
                .get(self.url("/variables"))
                .query(&[("run_id", run_id)]),
        )
        .await
    }

    /// Merges global variables into the worker's; the worker's values after the merge.
    pub async fn set_variables(&self, body: &api::Variables) -> Result<api::Variables, CallError> {
        grpc_json!(
            self,
            set_variables,
            pb::Json {
                body: self.encode(body)?
            }
        );
        self.call(self.http.post(self.url("/variables")).json(body))
            .await
    }

    /// The worker's shared counters (`state_backend: raft`).
    pub async fn leases(&self, run_id: &str) -> Result<api::LeaseReport, CallError> {
        grpc_json!(
            self,
            leases,
            pb::RunId {
                run_id: run_id.into()
            }
        );
        self.call(
            self.http
                .get(self.url("/leases"))
                .query(&[("run_id", run_id)]),
        )
        .await
    }

    /// Grants counter values to the worker (after the grant is replicated); its counters after.
    pub async fn grant(&self, body: &api::LeaseGrant) -> Result<api::LeaseReport, CallError> {
        grpc_json!(
            self,
            grant,
            pb::Json {
                body: self.encode(body)?
            }
        );
        self.call(self.http.post(self.url("/leases")).json(body))
            .await
    }

    /// Final results, or `None` while the run is still going (the worker answers 202).
    pub async fn results(&self, run_id: &str) -> Result<Option<api::Results>, CallError> {
        if let Some(c) = self.grpc() {
            let mut c = c?;
            let r = c
                .results(self.req(pb::RunId {
                    run_id: run_id.into(),
                }))
                .await
                .map_err(|s| self.grpc_error(s))?
                .into_inner();
            if r.pending {
                return Ok(None);
            }
            return self.decode(&r.body).map(Some);
        }
        self.call_or_wait(
            self.http
                .get(self.url("/results"))
                .query(&[("run_id", run_id)]),
        )
        .await
    }

    /// `GET /raw?run_id&after`: chunk `after + 1` of the run's raw data spool. Always over HTTP,
    /// which the worker serves on its one port whatever the transport: a chunk is a file, with
    /// nothing to stream.
    pub async fn raw_chunk(&self, run_id: &str, after: u64) -> Result<RawNext, CallError> {
        let req = self
            .http
            .get(self.url("/raw"))
            .query(&[("run_id", run_id), ("after", &after.to_string())]);
        let req = match self.bearer() {
            Some(b) => req.bearer_auth(b),
            None => req,
        };
        let unreachable = |source: reqwest::Error| CallError::Unreachable {
            addr: self.addr.clone(),
            source,
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        if status == reqwest::StatusCode::ACCEPTED {
            return Ok(RawNext::NotYet);
        }
        if !status.is_success() {
            return Err(self.refused_by(resp).await);
        }
        let seq = resp
            .headers()
            .get(api::RAW_SEQ_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let bytes = resp.bytes().await.map_err(unreachable)?;
        match seq {
            Some(seq) => Ok(RawNext::Chunk { seq, frame: bytes }),
            None => self.decode(&bytes).map(RawNext::Done),
        }
    }

    /// `POST /raw/ack`: the run's raw chunks up to `seq` are stored.
    pub async fn raw_ack(&self, body: &api::RawAck) -> Result<api::RawSpool, CallError> {
        self.call(self.http.post(self.url("/raw/ack")).json(body))
            .await
    }
}

/// What `GET /raw?run_id&after` answered.
pub enum RawNext {
    /// Chunk `seq`, a whole zstd frame.
    Chunk { seq: u64, frame: bytes::Bytes },
    /// The run is still writing its spool.
    NotYet,
    /// Every chunk was handed out.
    Done(api::RawDone),
}

/// `GET /metrics`: batches after `since`; the worker may forget up to `ack` (at most `since`).
fn metrics_path(since: u64, ack: u64) -> String {
    if ack >= since {
        format!("/metrics?since={since}")
    } else {
        format!("/metrics?since={since}&ack={ack}")
    }
}
