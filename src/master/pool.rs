//! The registered pool: workers that registered with `POST /workers` and renew their lease with the
//! same call. Each entry is a record `worker/<id>` in the raft state, written by the leader with its
//! own clock as `renewed_ms`, so the pool survives a leader's death and every replica can list it
//! (`GET /workers`); an entry whose lease ran out is listed `down` and left out of plans until it
//! renews. `coordinator.max_workers` caps the workers with a live lease.

use super::api::{to_leader, Master};
use crate::api::pool::{Lease, PoolFilter, PoolWorker, Registered, Registration};
use crate::api::worker::WorkerAddr;
use crate::api::ApiError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use perfornium_raft::Command;
use tracing::{info, warn};

/// Key prefix of pool entries.
pub const WORKER_PREFIX: &str = "worker/";

/// The longest lease a worker may ask for: a dead worker stays `up` at most this long.
pub const MAX_LEASE_MS: u64 = 300_000;

/// The shortest: renewals go through the raft log, so a lease shorter than this would mostly be
/// log traffic.
pub const MIN_LEASE_MS: u64 = 200;

/// Every pool entry this replica has applied, by id, with its health now.
pub fn list(m: &Master) -> Vec<PoolWorker> {
    entries(&m.store.replica)
}

/// The pool as a run's driver reads it, afresh at each call (`replacement_workers`, and
/// `auto_restart` of a worker registering again from a new address).
pub fn source(store: &super::store::RaftStore) -> crate::control::driver::PoolSource {
    let replica = store.replica.clone();
    std::sync::Arc::new(move || entries(&replica))
}

/// Every pool entry `replica` has applied, by id, with its health now.
pub fn entries(replica: &perfornium_raft::Replica) -> Vec<PoolWorker> {
    let now = crate::time::now_ms();
    replica
        .scan(WORKER_PREFIX)
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice::<PoolWorker>(&v).ok())
        .map(|mut w| {
            w.health = w.health_at(now);
            w
        })
        .collect()
}

/// The live workers that pass `filter`, as a plan takes them (sorted by id).
pub fn live(m: &Master, filter: &PoolFilter) -> Vec<WorkerAddr> {
    live_sampled(m, filter)
        .into_iter()
        .map(|(w, _)| w)
        .collect()
}

/// [`live`], each with the resource sample its last renewal carried (what `least_loaded` plans
/// by), read from one listing of the pool.
pub fn live_sampled(
    m: &Master,
    filter: &PoolFilter,
) -> Vec<(WorkerAddr, Option<crate::metrics::resources::Resources>)> {
    list(m)
        .into_iter()
        .filter(|w| w.health == Lease::Up && filter.admits(&w.registration))
        .map(|w| (w.addr(), w.registration.resources))
        .collect()
}

/// `GET /workers`.
pub async fn get_workers(State(m): State<Master>) -> Json<Vec<PoolWorker>> {
    Json(list(&m))
}

/// Why a registration is refused, before anything is stored.
fn check(r: &Registration) -> Result<(), String> {
    let bad_text = |s: &str| s.trim().is_empty() || s.len() > 200 || s.contains('/');
    if bad_text(&r.id) {
        return Err(format!(
            "`id` `{}`: must be 1 to 200 characters without `/`",
            r.id
        ));
    }
    if bad_text(&r.host) || r.host.contains(' ') {
        return Err(format!("`host` `{}` is not a host name or address", r.host));
    }
    if r.port == 0 {
        return Err("`port` 0 is not a port".into());
    }
    if !(MIN_LEASE_MS..=MAX_LEASE_MS).contains(&r.lease_ms) {
        return Err(format!(
            "`lease_ms` {} is outside {MIN_LEASE_MS}..={MAX_LEASE_MS}",
            r.lease_ms
        ));
    }
    if r.capacity.max_vus == Some(0) || r.capacity.max_rps == Some(0) {
        return Err("`capacity`: max_vus and max_rps must be at least 1 when given".into());
    }
    Ok(())
}

/// `POST /workers`: registers a worker or renews its lease (idempotent per id). Leader only
/// (followers answer 307); 409 when the pool is at `coordinator.max_workers` or another live worker
/// already holds the id at a different address.
pub async fn register(
    State(m): State<Master>,
    body: Result<Json<Registration>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(reg) = match body {
        Ok(b) => b,
        Err(e) => {
            return ApiError::reply(
                StatusCode::BAD_REQUEST,
                format!("malformed registration: {}", e.body_text()),
            )
        }
    };
    if !m.store.replica.status().is_leader {
        return to_leader(&m, "/workers");
    }
    if let Err(e) = check(&reg) {
        warn!(id = %reg.id, %e, "registration refused");
        return ApiError::reply(StatusCode::UNPROCESSABLE_ENTITY, e);
    }
    let now = crate::time::now_ms();
    let pool = list(&m);
    let previous = pool.iter().find(|w| w.registration.id == reg.id);
    if let Some(p) = previous.filter(|p| p.health == Lease::Up) {
        let (a, b) = (&p.registration, &reg);
        if (a.host.as_str(), a.port) != (b.host.as_str(), b.port) {
            let message = format!(
                "worker id `{}` is held by a live worker at {}:{} (this one is {}:{}): give each worker its own id",
                reg.id, a.host, a.port, b.host, b.port
            );
            warn!(%message, "registration refused");
            return ApiError::reply(StatusCode::CONFLICT, message);
        }
    }
    let others_live = pool
        .iter()
        .filter(|w| w.health == Lease::Up && w.registration.id != reg.id)
        .count();
    if let Some(cap) = m.max_workers {
        if others_live >= cap as usize {
            let message = format!(
                "the pool is full: coordinator.max_workers is {cap} and {others_live} workers hold a live lease; \
                 `{}` is not admitted (it may retry when one leaves)",
                reg.id
            );
            warn!(%message, "registration refused");
            return ApiError::reply(StatusCode::CONFLICT, message);
        }
    }
    let entry = PoolWorker {
        registered_ms: previous
            .filter(|p| p.health == Lease::Up)
            .map_or(now, |p| p.registered_ms),
        renewed_ms: now,
        health: Lease::Up,
        registration: reg,
    };
    let id = entry.registration.id.clone();
    let value = match serde_json::to_vec(&entry) {
        Ok(v) => v,
        Err(e) => return ApiError::reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    if let Err(e) = m
        .store
        .replica
        .write(Command::Put {
            key: format!("{WORKER_PREFIX}{id}"),
            value,
        })
        .await
    {
        return ApiError::reply(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the registration could not be recorded: {e}"),
        );
    }
    if previous.is_none_or(|p| p.health == Lease::Down) {
        info!(%id, host = %entry.registration.host, port = entry.registration.port, region = %entry.registration.region, "worker joined the pool");
    }
    Json(Registered {
        id,
        live: others_live + 1,
        max_workers: m.max_workers,
    })
    .into_response()
}
