//! The shared key-value state (`distributed.data_consistency.state_management`): counters every
//! VU of every worker reads and increments atomically. Two backends: `raft` (the default) leases
//! ranges of values from the controller, which replicates each grant before sending it (see
//! [`super::leases`] and `control::leases`); `redis`, described here: each engine (one per worker, or the local run) connects to the user's redis server directly
//! through a connection manager (reconnecting on its own); keys are `perfornium:RUN_ID:NAME`, so
//! runs do not mix, and every write sets the key's expiry to `state_ttl` when given.
//!
//! A step refers to the state as `{{state.incr(NAME)}}` (add 1 to NAME, once per request; every
//! use of it in that request reads the new value) or `{{state.get(NAME)}}` (NAME's value when the
//! request is made, empty when unset). The engine resolves them before rendering the request and
//! puts the values under the reference's own text, which the template reads as a variable.

use crate::config::{StateManagement, StateRef};
use redis::aio::ConnectionManager;
use std::collections::HashMap;

/// The prefix of every key.
pub const KEY_PREFIX: &str = "perfornium";

/// The shared state as one engine reaches it.
#[derive(Debug, Clone)]
pub enum State {
    /// `state_backend: redis`.
    Redis(Redis),
    /// `state_backend: raft`: values leased from the controller (or held here in a local run).
    Leased(std::sync::Arc<super::leases::Leases>),
}

impl State {
    /// Resolves a step's references for one request into `values` (under each reference's text).
    pub async fn resolve(
        &self,
        refs: &[StateRef],
        values: &mut HashMap<String, String>,
    ) -> Result<(), String> {
        match self {
            State::Redis(r) => r.resolve(refs, values).await,
            State::Leased(l) => {
                for r in refs {
                    let v = match r.op.as_str() {
                        "incr" => l.claim(&r.name).await,
                        "get" => l.get(&r.name),
                        other => return Err(format!("unknown state operation `{other}`")),
                    };
                    values.insert(r.expr.clone(), v.to_string());
                }
                Ok(())
            }
        }
    }
}

/// A connection to a redis server holding the shared state.
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    prefix: String,
    ttl: Option<u64>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("prefix", &self.prefix)
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl Redis {
    /// Connects to the configured redis server; `run_id` separates this run's keys.
    pub async fn connect(cfg: &StateManagement, run_id: &str) -> Result<Self, String> {
        let url = cfg.redis_url();
        let client = redis::Client::open(url).map_err(|e| format!("redis_url `{url}`: {e}"))?;
        let conn = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            ConnectionManager::new(client),
        )
        .await
        .map_err(|_| format!("redis at {url}: no answer within 5 s"))?
        .map_err(|e| format!("redis at {url}: {e}"))?;
        Ok(Self {
            conn,
            prefix: format!("{KEY_PREFIX}:{run_id}:"),
            ttl: cfg.state_ttl,
        })
    }

    /// The redis key of state NAME.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// Adds 1 to NAME (atomically, with its expiry in the same transaction); the new value.
    pub async fn incr(&self, name: &str) -> Result<i64, String> {
        let key = self.key(name);
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        pipe.atomic().incr(&key, 1i64);
        if let Some(ttl) = self.ttl {
            pipe.expire(&key, ttl as i64).ignore();
        }
        let (n,): (i64,) = pipe
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("INCR {key}: {e}"))?;
        Ok(n)
    }

    /// NAME's value, empty when unset.
    pub async fn get(&self, name: &str) -> Result<String, String> {
        let key = self.key(name);
        let mut conn = self.conn.clone();
        let v: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(|e| format!("GET {key}: {e}"))?;
        Ok(v.unwrap_or_default())
    }

    /// Resolves a step's references for one request into `values` (under each reference's text).
    pub async fn resolve(
        &self,
        refs: &[StateRef],
        values: &mut HashMap<String, String>,
    ) -> Result<(), String> {
        for r in refs {
            let v = match r.op.as_str() {
                "incr" => self.incr(&r.name).await?.to_string(),
                "get" => self.get(&r.name).await?,
                other => return Err(format!("unknown state operation `{other}`")),
            };
            values.insert(r.expr.clone(), v);
        }
        Ok(())
    }
}
