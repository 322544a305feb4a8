//! The pool's messages: what a worker sends to `POST /workers` to register and to renew its lease
//! (the same call, idempotent per worker id), and what `GET /workers` lists. The pool is kept in the
//! masters' raft state, so it outlives a leader.

use super::worker::WorkerAddr;
use crate::config::cluster::Capacity;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `POST /workers`: a worker registers, or renews its lease.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The worker's name in the pool (unique).
    pub id: String,
    /// Where the leader reaches the worker's API.
    pub host: String,
    pub port: u16,
    #[serde(default = "default_region")]
    pub region: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub capacity: Capacity,
    /// How long the lease lasts without a renewal, ms: past it the worker is listed `down`.
    pub lease_ms: u64,
    /// The worker process's and host's CPU and memory when it sent this registration or renewal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::metrics::resources::Resources>,
}

fn default_region() -> String {
    super::worker::DEFAULT_REGION.to_string()
}

/// The answer to [`Registration`] (200).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    pub id: String,
    /// Workers in the pool with a live lease, this one included.
    pub live: usize,
    /// The pool's cap (`coordinator.max_workers`), when the master has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_workers: Option<u32>,
}

/// A worker's health in the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lease {
    /// Renewed within its lease.
    Up,
    /// Its lease expired: it is not planned on until it renews.
    Down,
}

/// One entry of `GET /workers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolWorker {
    #[serde(flatten)]
    pub registration: Registration,
    /// When it first registered (leader's clock, Unix ms).
    pub registered_ms: u64,
    /// Its last renewal (leader's clock, Unix ms).
    pub renewed_ms: u64,
    pub health: Lease,
}

impl PoolWorker {
    /// The entry's health at `now_ms`.
    pub fn health_at(&self, now_ms: u64) -> Lease {
        if now_ms.saturating_sub(self.renewed_ms) <= self.registration.lease_ms {
            Lease::Up
        } else {
            Lease::Down
        }
    }

    /// The worker as a plan sees it.
    pub fn addr(&self) -> WorkerAddr {
        let r = &self.registration;
        let mut w = WorkerAddr::new(r.host.clone(), r.port);
        w.region = r.region.clone();
        w.id = Some(r.id.clone());
        // `capacity_based` (the default split) then follows the declared capacity.
        if let Some(c) = r.capacity.max_vus.or(r.capacity.max_rps) {
            w.capacity = u32::try_from(c).unwrap_or(u32::MAX);
        }
        w.max_vus = r.capacity.max_vus;
        w.max_rps = r.capacity.max_rps;
        w
    }
}

/// Which registered workers a run takes (`POST /runs` without `workers`): those with a live lease,
/// in `region` when given, carrying every label of `labels`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl PoolFilter {
    /// Whether `w` passes the filter (health is checked separately).
    pub fn admits(&self, w: &Registration) -> bool {
        self.region.as_ref().is_none_or(|r| &w.region == r)
            && self.labels.iter().all(|(k, v)| w.labels.get(k) == Some(v))
    }
}
