//! A client of the master cluster that finds the leader through `GET /cluster` on any replica and
//! follows it when leadership moves. Every call has a timeout: a write sent to a leader that has just
//! been cut off would otherwise hang.

use crate::api::master::{ClusterView, Role, RunBrief, RunView, Submit, Submitted};
use crate::api::ApiError;
use crate::tls::ClientTls;
use std::time::Duration;
use thiserror::Error;

/// Why the cluster could not be used.
#[derive(Debug, Error)]
pub enum ClusterError {
    #[error("no replica answered: {0}")]
    Unreachable(String),
    #[error("{addr}: TLS failed: {reason}")]
    Tls { addr: String, reason: String },
    #[error("no leader is known yet (election in progress?)")]
    NoLeader,
    #[error("the cluster has no runs yet; give a test file to submit one")]
    NoRuns,
    #[error("the master refused: {status} {message}")]
    Refused { status: u16, message: String },
}

/// Why one replica gave no usable answer.
enum NoAnswer {
    Status(u16),
    Tls(String),
    Silent,
}

/// What the client last learned about the cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderInfo {
    pub id: u64,
    pub addr: String,
    pub term: u64,
}

/// Talks to whichever replica leads.
#[derive(Clone)]
pub struct ClusterClient {
    pub addrs: Vec<String>,
    pub leader: Option<LeaderInfo>,
    http: reqwest::Client,
    /// `http` or `https`.
    scheme: &'static str,
    token: Option<String>,
    mint: Option<std::sync::Arc<crate::config::security::Minter>>,
}

impl ClusterClient {
    /// A client for the replicas at `addrs` (host:port), over HTTPS when `tls` is set.
    pub fn new(addrs: Vec<String>, token: Option<String>, tls: Option<&ClientTls>) -> Self {
        let http = crate::tls::client_builder(tls)
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(1))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a reqwest client with timeouts and loaded certificates builds");
        Self {
            addrs,
            leader: None,
            http,
            scheme: crate::tls::scheme(tls),
            token,
            mint: None,
        }
    }

    /// Calls with a JWT minted by `mint` (wins over the static token).
    pub fn with_mint(
        mut self,
        mint: Option<std::sync::Arc<crate::config::security::Minter>>,
    ) -> Self {
        self.mint = mint;
        self
    }

    fn url(&self, addr: &str, path: &str) -> String {
        format!("{}://{addr}{path}", self.scheme)
    }

    fn auth(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match (&self.mint, &self.token) {
            (Some(m), _) => req.bearer_auth(m.bearer()),
            (None, Some(t)) => req.bearer_auth(t),
            (None, None) => req,
        }
    }

    /// `GET /cluster` of one replica.
    pub async fn cluster_of(&self, addr: &str) -> Option<ClusterView> {
        self.fetch_cluster(addr).await.ok()
    }

    /// `GET /cluster` of one replica, or why there is no answer.
    async fn fetch_cluster(&self, addr: &str) -> Result<ClusterView, NoAnswer> {
        let resp = self
            .auth(self.http.get(self.url(addr, "/cluster")))
            .send()
            .await
            .map_err(|e| match crate::tls::handshake_failure(&e) {
                Some(reason) => NoAnswer::Tls(reason),
                None => NoAnswer::Silent,
            })?;
        if !resp.status().is_success() {
            return Err(NoAnswer::Status(resp.status().as_u16()));
        }
        resp.json().await.map_err(|_| NoAnswer::Silent)
    }

    /// Asks the replicas in turn who leads (the known leader first) and remembers it.
    pub async fn find_leader(&mut self) -> Result<LeaderInfo, ClusterError> {
        let mut order = self.addrs.clone();
        if let Some(l) = &self.leader {
            order.retain(|a| a != &l.addr);
            order.insert(0, l.addr.clone());
        }
        let mut answered = false;
        for addr in order {
            let view = match self.fetch_cluster(&addr).await {
                Ok(v) => v,
                Err(NoAnswer::Status(status @ (401 | 403))) => {
                    let message = format!("{addr} refused this client (wrong or missing token, or not an allowed network)");
                    return Err(ClusterError::Refused { status, message });
                }
                // A certificate problem will not go away by asking again.
                Err(NoAnswer::Tls(reason)) => return Err(ClusterError::Tls { addr, reason }),
                Err(_) => continue,
            };
            answered = true;
            if let (Some(id), Some(laddr)) = (view.leader_id, view.leader_addr) {
                // Trust a replica that says it leads, or the leader it names if that one confirms.
                if let Some(lv) = self
                    .cluster_of(&laddr)
                    .await
                    .filter(|v| v.role == Role::Leader)
                {
                    let info = LeaderInfo {
                        id,
                        addr: laddr,
                        term: lv.term,
                    };
                    self.leader = Some(info.clone());
                    return Ok(info);
                }
            }
        }
        if answered {
            Err(ClusterError::NoLeader)
        } else {
            Err(self.unreachable())
        }
    }

    /// No replica answered: says over which scheme, with a hint when it was plain HTTP.
    fn unreachable(&self) -> ClusterError {
        let hint = if self.scheme == "http" {
            " (pass --ca if the cluster serves HTTPS)"
        } else {
            ""
        };
        ClusterError::Unreachable(format!(
            "{} over {}{hint}",
            self.addrs.join(","),
            self.scheme
        ))
    }

    async fn json<T: serde::de::DeserializeOwned>(
        resp: reqwest::Response,
    ) -> Result<T, ClusterError> {
        let status = resp.status();
        if !status.is_success() {
            let message = resp
                .json::<ApiError>()
                .await
                .map(|e| e.error)
                .unwrap_or_default();
            return Err(ClusterError::Refused {
                status: status.as_u16(),
                message,
            });
        }
        resp.json().await.map_err(|e| ClusterError::Refused {
            status: status.as_u16(),
            message: e.to_string(),
        })
    }

    /// Submits a run to the leader, following redirects and elections for up to `patience`.
    pub async fn submit(
        &mut self,
        body: &Submit,
        patience: Duration,
    ) -> Result<String, ClusterError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            let attempt = async {
                let leader = self.find_leader().await?;
                let resp = self
                    .auth(self.http.post(self.url(&leader.addr, "/runs")).json(body))
                    .send()
                    .await
                    .map_err(|_| ClusterError::Unreachable(leader.addr.clone()))?;
                let v: Submitted = Self::json(resp).await?;
                Ok::<_, ClusterError>(v.run_id)
            };
            match attempt.await {
                Ok(id) => return Ok(id),
                Err(ClusterError::Refused { status, message })
                    if status != 307 && status != 503 =>
                {
                    return Err(ClusterError::Refused { status, message })
                }
                Err(e @ ClusterError::Tls { .. }) => return Err(e),
                Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// A run's view from the leader, or from any replica that answers (followers may lag a little).
    pub async fn run(&mut self, id: &str) -> Result<RunView, ClusterError> {
        let mut order = self.addrs.clone();
        if let Some(l) = &self.leader {
            order.insert(0, l.addr.clone());
        }
        for addr in order {
            if let Ok(resp) = self
                .auth(self.http.get(self.url(&addr, &format!("/runs/{id}"))))
                .send()
                .await
            {
                if let Ok(v) = Self::json::<RunView>(resp).await {
                    return Ok(v);
                }
            }
        }
        Err(ClusterError::Unreachable(self.addrs.join(",")))
    }

    /// The registered pool (`GET /workers`) as the leader, or else any replica, lists it.
    pub async fn pool(&self) -> Option<Vec<crate::api::pool::PoolWorker>> {
        let mut order = self.addrs.clone();
        if let Some(l) = &self.leader {
            order.insert(0, l.addr.clone());
        }
        for addr in order {
            if let Ok(resp) = self
                .auth(self.http.get(self.url(&addr, "/workers")))
                .send()
                .await
            {
                if let Ok(v) = Self::json(resp).await {
                    return Some(v);
                }
            }
        }
        None
    }

    /// The runs any replica knows.
    pub async fn runs(&self) -> Result<Vec<RunBrief>, ClusterError> {
        let mut why = None;
        for addr in &self.addrs {
            match self
                .auth(self.http.get(self.url(addr, "/runs")))
                .send()
                .await
            {
                Ok(resp) => match Self::json(resp).await {
                    Ok(v) => return Ok(v),
                    Err(e) => why = Some(e),
                },
                Err(e) => {
                    if let Some(reason) = crate::tls::handshake_failure(&e) {
                        why = Some(ClusterError::Tls {
                            addr: addr.clone(),
                            reason,
                        });
                    }
                }
            }
        }
        Err(why.unwrap_or_else(|| self.unreachable()))
    }

    /// Asks the leader to stop a run.
    pub async fn stop(&mut self, id: &str) -> Result<(), ClusterError> {
        let leader = self.find_leader().await?;
        let resp = self
            .auth(
                self.http
                    .post(self.url(&leader.addr, &format!("/runs/{id}/stop"))),
            )
            .send()
            .await
            .map_err(|_| ClusterError::Unreachable(leader.addr.clone()))?;
        Self::json::<crate::api::master::Stopping>(resp)
            .await
            .map(drop)
    }

    /// Asks the leader for a live change of a run's load (`PATCH /runs/{id}`).
    pub async fn change(
        &mut self,
        id: &str,
        patch: &crate::api::master::RunPatch,
    ) -> Result<crate::api::master::LoadControl, ClusterError> {
        let leader = self.find_leader().await?;
        let resp = self
            .auth(
                self.http
                    .patch(self.url(&leader.addr, &format!("/runs/{id}")))
                    .json(patch),
            )
            .send()
            .await
            .map_err(|_| ClusterError::Unreachable(leader.addr.clone()))?;
        Self::json(resp).await
    }
}
