//! Calls to one worker's API, with a timeout on every call and the bearer token when one is set.
//! The controller never assumes a call went through: every worker call is idempotent per run id,
//! so a failed or repeated call is simply made again.

use crate::api::worker::{self as api, WorkerAddr};
use crate::api::ApiError;
use crate::tls::{self, ClientTls};
use serde::de::DeserializeOwned;
use serde::Deserialize as _;
use std::time::Duration;
use thiserror::Error;

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
}

impl CallError {
    /// The HTTP status the worker answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Refused { status, .. } => Some(*status),
            CallError::Unreachable { .. } | CallError::Tls { .. } => None,
        }
    }

    /// True when the worker was reached and said no (an HTTP status or a TLS refusal), so the
    /// same call will fail again; false when it may simply be down for now.
    pub fn is_permanent(&self) -> bool {
        !matches!(self, CallError::Unreachable { .. })
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
}

impl WorkerClient {
    /// A client for `worker` with a per-call `timeout`.
    pub fn new(worker: &WorkerAddr, creds: &Credentials, timeout: Duration) -> Self {
        let http = tls::client_builder(creds.tls.as_ref())
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
        }
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
            let message = resp
                .json::<ApiError>()
                .await
                .map(|e| e.error)
                .unwrap_or_default();
            return Err(CallError::Refused {
                addr: self.addr.clone(),
                status: status.as_u16(),
                message,
            });
        }
        resp.json().await.map(Some).map_err(unreachable)
    }

    /// `GET /health`: the worker is up, and its clock.
    pub async fn health(&self) -> Result<api::Health, CallError> {
        self.call(self.http.get(self.url("/health"))).await
    }

    /// Hands the worker its share of the run.
    pub async fn prepare(&self, body: &api::Prepare) -> Result<api::Ack, CallError> {
        self.call(self.http.post(self.url("/prepare")).json(body))
            .await
    }

    /// Starts the prepared run, at an instant of the worker's clock or now.
    pub async fn start(&self, body: &api::Start) -> Result<api::Ack, CallError> {
        self.call(self.http.post(self.url("/start")).json(body))
            .await
    }

    /// Adds load to the running run (a failed worker's share).
    pub async fn scale(&self, body: &api::Scale) -> Result<api::Ack, CallError> {
        self.call(self.http.post(self.url("/scale")).json(body))
            .await
    }

    /// Stops the run; what was measured is kept.
    pub async fn stop(&self, run_id: &str) -> Result<api::Ack, CallError> {
        self.call(self.http.post(self.url("/stop")).json(&api::Stop {
            run_id: run_id.into(),
        }))
        .await
    }

    /// Batches after `since`, acknowledging everything up to it.
    pub async fn metrics(&self, since: u64) -> Result<api::Metrics, CallError> {
        self.call(self.http.get(self.url(&format!("/metrics?since={since}"))))
            .await
    }

    /// Like [`Self::metrics`], with what the worker measured about itself and its log records.
    pub async fn pull(&self, since: u64) -> Result<api::Pull, CallError> {
        let body: serde_json::Value = self
            .call(self.http.get(self.url(&format!("/metrics?since={since}"))))
            .await?;
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
        self.call(
            self.http
                .get(self.url("/rendezvous"))
                .query(&[("run_id", run_id)]),
        )
        .await
    }

    /// Releases one rendezvous point's waiters.
    pub async fn release(&self, body: &api::Release) -> Result<api::Released, CallError> {
        self.call(self.http.post(self.url("/rendezvous")).json(body))
            .await
    }

    /// The worker's global variables for `run_id`.
    pub async fn variables(&self, run_id: &str) -> Result<api::Variables, CallError> {
        self.call(
            self.http
                .get(self.url("/variables"))
                .query(&[("run_id", run_id)]),
        )
        .await
    }

    /// Merges global variables into the worker's; the worker's values after the merge.
    pub async fn set_variables(&self, body: &api::Variables) -> Result<api::Variables, CallError> {
        self.call(self.http.post(self.url("/variables")).json(body))
            .await
    }

    /// The worker's shared counters (`state_backend: raft`).
    pub async fn leases(&self, run_id: &str) -> Result<api::LeaseReport, CallError> {
        self.call(
            self.http
                .get(self.url("/leases"))
                .query(&[("run_id", run_id)]),
        )
        .await
    }

    /// Grants counter values to the worker (after the grant is replicated); its counters after.
    pub async fn grant(&self, body: &api::LeaseGrant) -> Result<api::LeaseReport, CallError> {
        self.call(self.http.post(self.url("/leases")).json(body))
            .await
    }

    /// Final results, or `None` while the run is still going (the worker answers 202).
    pub async fn results(&self, run_id: &str) -> Result<Option<api::Results>, CallError> {
        self.call_or_wait(
            self.http
                .get(self.url("/results"))
                .query(&[("run_id", run_id)]),
        )
        .await
    }
}
