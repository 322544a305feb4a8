//! A worker's one outbound call: registering with the master cluster and renewing its lease.
//!
//! The worker posts its [`Registration`] to a replica; a follower answers 307 naming the leader,
//! which the loop follows (at most a few hops). Success renews the lease; the next renewal comes
//! after a third of it, so two can be lost before the worker is listed `down`. Any failure
//! (no replica reachable, an election, a refusal) is retried with a doubling backoff up to 2 s,
//! trying every known replica in turn, so a worker outlives a leader's death without anyone
//! re-registering it by hand. The data path stays pull-based: the leader calls the worker for
//! its share and its measurements; this loop only says "I am here".

use crate::api::master::NotLeader;
use crate::api::pool::{Registered, Registration};
use crate::api::ApiError;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Where and how the worker registers.
#[derive(Debug, Clone)]
pub struct Registrar {
    /// Master replicas, `host:port` (one is enough: it names the leader).
    pub masters: Vec<String>,
    /// Bearer token for the master (its `--token`).
    pub token: Option<String>,
    pub registration: Registration,
    /// HTTPS to the masters (a worker serving TLS): the CA to trust and the certificate to present
    /// (the worker's own), so a master requiring client certificates admits it.
    pub tls: Option<crate::tls::ClientTls>,
}

/// The longest wait between two failed attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// What one attempt found.
enum Outcome {
    Registered(Registered),
    /// A follower named the leader.
    Redirect(String),
    /// The master refused the registration itself (4xx other than 307): logged, retried slowly.
    Refused(u16, String),
    Unreachable(String),
}

impl Registrar {
    /// Registers and renews until `stop`; never returns early (a refused or unreachable master is
    /// retried, and each change of state is logged once).
    pub async fn run(mut self, stop: CancellationToken) {
        // Each registration and renewal carries a fresh sample of this process and its host.
        let sampler = crate::metrics::resources::Sampler::new();
        let http = crate::tls::client_builder(self.tls.as_ref())
            .timeout(Duration::from_secs(3))
            .connect_timeout(Duration::from_secs(1))
            .redirect(reqwest::redirect::Policy::none())
            .build();
        let http = match http {
            Ok(h) => h,
            Err(e) => {
                warn!(error = %e, "registration cannot start: no HTTP client");
                eprintln!("worker: registration cannot start: {e}");
                return;
            }
        };
        let lease = Duration::from_millis(self.registration.lease_ms);
        let mut leader: Option<String> = None;
        let mut backoff = Duration::from_millis(100);
        let mut registered = false;
        let mut last_error = String::new();
        loop {
            self.registration.resources = Some(sampler.sample());
            let outcome = self.attempt(&http, &mut leader).await;
            let wait = match outcome {
                Ok(r) => {
                    if !registered {
                        info!(id = %r.id, leader = leader.as_deref().unwrap_or("?"), live = r.live, "registered with the master cluster");
                        eprintln!(
                            "worker registered as {} with {} ({} live in the pool)",
                            r.id,
                            leader.as_deref().unwrap_or("?"),
                            r.live
                        );
                    }
                    registered = true;
                    last_error.clear();
                    backoff = Duration::from_millis(100);
                    lease / 3
                }
                Err(e) => {
                    if e != last_error {
                        warn!(error = %e, "registration failed; retrying");
                        eprintln!("worker: registration failed: {e}; retrying");
                        last_error = e;
                    }
                    registered = false;
                    leader = None;
                    let w = backoff;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    w
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// One registration: the known leader first, then every replica, following redirects.
    async fn attempt(
        &self,
        http: &reqwest::Client,
        leader: &mut Option<String>,
    ) -> Result<Registered, String> {
        let mut order: Vec<String> = leader.iter().cloned().collect();
        order.extend(
            self.masters
                .iter()
                .filter(|a| Some(*a) != leader.as_ref())
                .cloned(),
        );
        let mut why = Vec::new();
        for first in order {
            let mut addr = first;
            // A follower names the leader; one more hop is enough unless an election is under way.
            for _ in 0..3 {
                match self.post(http, &addr).await {
                    Outcome::Registered(r) => {
                        *leader = Some(addr);
                        return Ok(r);
                    }
                    Outcome::Redirect(to) => {
                        debug!(from = %addr, to = %to, "following the leader");
                        addr = to;
                    }
                    Outcome::Refused(status, message) => {
                        return Err(format!("{addr} refused ({status}): {message}"))
                    }
                    Outcome::Unreachable(e) => {
                        why.push(format!("{addr}: {e}"));
                        break;
                    }
                }
            }
        }
        Err(if why.is_empty() {
            "no leader found (election in progress?)".to_string()
        } else {
            why.join("; ")
        })
    }

    async fn post(&self, http: &reqwest::Client, addr: &str) -> Outcome {
        let mut req = http
            .post(format!(
                "{}://{addr}/workers",
                crate::tls::scheme(self.tls.as_ref())
            ))
            .json(&self.registration);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Unreachable(match crate::tls::handshake_failure(&e) {
                    Some(why) => format!("TLS failed: {why}"),
                    None => e.without_url().to_string(),
                })
            }
        };
        let status = resp.status().as_u16();
        match status {
            200..=299 => match resp.json::<Registered>().await {
                Ok(r) => Outcome::Registered(r),
                Err(e) => Outcome::Unreachable(format!("unreadable answer: {e}")),
            },
            307 => match resp.json::<NotLeader>().await {
                Ok(n) => Outcome::Redirect(n.leader_addr),
                Err(e) => Outcome::Unreachable(format!("unreadable redirect: {e}")),
            },
            503 => Outcome::Unreachable("no leader right now".into()),
            _ => Outcome::Refused(
                status,
                resp.json::<ApiError>()
                    .await
                    .map(|e| e.error)
                    .unwrap_or_default(),
            ),
        }
    }
}
