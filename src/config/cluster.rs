//! The seed document's role blocks: `distributed.{enabled, mode, coordinator, master, worker}`.
//!
//! They describe a *process* of the cluster, not a test, so they are read from the file given to
//! `perfornium master|worker --config FILE` (or `PERFORNIUM_CONFIG` with `PERFORNIUM_MODE`), beside
//! `security` and `performance`. A master takes `coordinator{host, port, max_workers}` (where it
//! listens, how many workers its pool admits); a worker takes `master{host, port,
//! authentication{token}}` (whom it registers with) and `worker{id, region, labels, capacity}`
//! (what it reports). A test file that holds them gets an error naming `--config`
//! ([`InTestFile`]). `{{env.NAME}}` is expanded inside every text value, as the seed writes
//! `id: "worker-{{env.HOSTNAME}}"`; an unset variable is an error naming it.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The master port when the file gives a host but no port (the seed's examples use 8080).
pub const DEFAULT_PORT: u16 = 8080;

/// The role blocks of a `--config` file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// `false` is refused for a role process (use `perfornium run`); `true` or absent: the role acts.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// The role this file is for; must match the command that reads it.
    #[serde(default)]
    pub mode: Option<Mode>,
    #[serde(default)]
    pub coordinator: Option<Coordinator>,
    #[serde(default)]
    pub master: Option<MasterRef>,
    #[serde(default)]
    pub worker: Option<WorkerSelf>,
}

/// `distributed.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A replica of the master cluster (`perfornium master`).
    Master,
    /// A worker (`perfornium worker`).
    Worker,
    /// No cluster: `perfornium run FILE` in this process.
    Standalone,
}

impl Mode {
    /// The mode as written in YAML and in `PERFORNIUM_MODE`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Master => "master",
            Mode::Worker => "worker",
            Mode::Standalone => "standalone",
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "master" => Ok(Mode::Master),
            "worker" => Ok(Mode::Worker),
            "standalone" => Ok(Mode::Standalone),
            other => Err(format!(
                "`{other}` is not a mode: master, worker or standalone"
            )),
        }
    }
}

/// `distributed.coordinator`: the master's own address and its pool's cap.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Coordinator {
    /// Interface the master listens on (default `0.0.0.0`).
    #[serde(default)]
    pub host: Option<String>,
    /// Port of the master API and raft RPC (default 8080).
    #[serde(default)]
    pub port: Option<u16>,
    /// The most workers the pool admits at once (live leases); a registration over it is refused
    /// with a 409 naming the cap.
    #[serde(default)]
    pub max_workers: Option<u32>,
}

/// `distributed.master`: where a worker registers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterRef {
    /// A replica's host name (or several, comma-separated `host[:port]`).
    #[serde(default)]
    pub host: Option<String>,
    /// The port used for hosts given without one (default 8080).
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub authentication: Option<MasterAuth>,
}

/// `distributed.master.authentication`.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterAuth {
    /// The bearer token the worker registers with (the master's `--token`).
    #[serde(default)]
    pub token: Option<String>,
}

impl std::fmt::Debug for MasterAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterAuth")
            .field("token", &self.token.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

/// `distributed.worker`: what this worker reports when it registers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerSelf {
    /// Its name in the pool (and wherever a test names workers).
    #[serde(default)]
    pub id: Option<String>,
    /// Its region (`geographic` plans, pool filters); `default` when not given.
    #[serde(default)]
    pub region: Option<String>,
    /// Free-form labels a run may select the pool by.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub capacity: Option<Capacity>,
    /// Refused by name: see [`Resources`].
    #[serde(default)]
    pub resources: Option<Resources>,
}

/// `distributed.worker.capacity`: the most this worker takes. The plan keeps every share within
/// it, and the worker refuses (409) a share over it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Capacity {
    /// Virtual users (closed models; the VU cap of an arrivals pattern).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_vus: Option<u64>,
    /// Arrivals per second (open model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rps: Option<u64>,
}

/// `distributed.worker.resources`: refused when given (see [`RESOURCES_REFUSED`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Resources;

/// Why `worker.resources` is refused.
pub const RESOURCES_REFUSED: &str = "distributed.worker.resources (cpu_limit, memory_limit) is not enforced by perfornium: \
a process cannot cap its own CPU or memory reliably (tokio threads are sized at start; an allocation over a limit aborts). \
Set the container's limits instead (Kubernetes resources.limits, docker --cpus/--memory) and bound the load with \
worker.capacity.max_vus/max_rps, which the plan honours";

impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Err(serde::de::Error::custom(RESOURCES_REFUSED))
    }
}

/// A role block (`enabled`, `mode`, `coordinator`, `master`, `worker`) found in a *test* file:
/// refused by name, pointing at `--config`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InTestFile;

impl<'de> Deserialize<'de> for InTestFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Err(serde::de::Error::custom(
            "distributed.enabled/mode/coordinator/master/worker describe a cluster process, not a test: \
             put them in the file given to `perfornium master --config FILE` or `perfornium worker --config FILE` \
             (or PERFORNIUM_CONFIG with PERFORNIUM_MODE); a test runs locally with `perfornium run`, on workers \
             with `perfornium distributed`, on a master cluster with `perfornium console`",
        ))
    }
}

/// Replaces every `{{env.NAME}}` in `text` with the variable's value; `key` names the setting in
/// the error when a variable is unset or a `{{` is anything else.
pub fn expand_env(text: &str, key: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("{key}: `{{{{` without `}}}}` in `{text}`"))?;
        let inner = after[..end].trim();
        let name = inner
            .strip_prefix("env.")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                format!("{key}: only `{{{{env.NAME}}}}` is expanded here, not `{{{{{inner}}}}}`")
            })?;
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => out.push_str(&v),
            _ => return Err(format!("{key}: the environment variable {name} is not set")),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Cluster {
    /// Expands `{{env.NAME}}` in every text value and checks ranges; the message names the key.
    pub fn resolve(mut self) -> Result<Self, String> {
        fn exp(v: &mut Option<String>, key: &str) -> Result<(), String> {
            if let Some(t) = v.as_mut() {
                *t = expand_env(t, key)?;
                if t.trim().is_empty() {
                    return Err(format!("{key}: empty"));
                }
            }
            Ok(())
        }
        if let Some(c) = self.coordinator.as_mut() {
            exp(&mut c.host, "distributed.coordinator.host")?;
            if c.port == Some(0) {
                return Err("distributed.coordinator.port: 0 is not a port".into());
            }
            if c.max_workers == Some(0) {
                return Err("distributed.coordinator.max_workers: must be at least 1".into());
            }
        }
        if let Some(m) = self.master.as_mut() {
            exp(&mut m.host, "distributed.master.host")?;
            if m.port == Some(0) {
                return Err("distributed.master.port: 0 is not a port".into());
            }
            if let Some(a) = m.authentication.as_mut() {
                exp(&mut a.token, "distributed.master.authentication.token")?;
            }
        }
        if let Some(w) = self.worker.as_mut() {
            exp(&mut w.id, "distributed.worker.id")?;
            exp(&mut w.region, "distributed.worker.region")?;
            if let Some(labels) = w.labels.as_mut() {
                for (k, v) in labels.iter_mut() {
                    *v = expand_env(v, &format!("distributed.worker.labels.{k}"))?;
                }
            }
            if let Some(c) = w.capacity {
                if c.max_vus == Some(0) || c.max_rps == Some(0) {
                    return Err(
                        "distributed.worker.capacity: max_vus and max_rps must be at least 1 (leave one out for no cap)"
                            .into(),
                    );
                }
            }
        }
        Ok(self)
    }

    /// Checks that this file may configure a `role` process (`master` or `worker`).
    pub fn check_role(&self, role: Mode) -> Result<(), String> {
        if self.enabled == Some(false) {
            return Err(format!(
                "distributed.enabled is false: a {} takes part in a cluster; run a test alone with `perfornium run`",
                role.name()
            ));
        }
        match self.mode {
            Some(Mode::Standalone) => Err(format!(
                "distributed.mode is standalone: this file is not for a cluster process; `perfornium run TEST` runs a test in one process (not `perfornium {}`)",
                role.name()
            )),
            Some(m) if m != role => Err(format!(
                "distributed.mode is {} but this is `perfornium {}`: give the file to the matching command (or PERFORNIUM_MODE={})",
                m.name(),
                role.name(),
                m.name()
            )),
            _ => Ok(()),
        }
    }

    /// The master replicas a worker registers with, as `host:port` (from `master.host`, several
    /// comma-separated, each with `master.port` or 8080 when it has none).
    pub fn master_addrs(&self) -> Vec<String> {
        let Some(m) = &self.master else {
            return Vec::new();
        };
        m.host
            .as_deref()
            .map(|h| with_port(h, m.port.unwrap_or(DEFAULT_PORT)))
            .unwrap_or_default()
    }
}

/// `a,b:9,c` → `a:PORT`, `b:9`, `c:PORT` (bracketed IPv6 kept).
pub fn with_port(hosts: &str, port: u16) -> Vec<String> {
    hosts
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .map(|h| {
            let has_port = match h.rsplit_once(':') {
                Some((host, p)) => {
                    p.parse::<u16>().is_ok() && (!host.contains(':') || host.ends_with(']'))
                }
                None => false,
            };
            if has_port {
                h.to_string()
            } else {
                format!("{h}:{port}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<Cluster, String> {
        serde_norway::from_str::<Cluster>(yaml)
            .map_err(|e| e.to_string())
            .and_then(Cluster::resolve)
    }

    #[test]
    fn the_seed_worker_block_reads_with_env_expanded() {
        std::env::set_var("PERFORNIUM_TEST_CLUSTER_HOST", "w7");
        std::env::set_var("PERFORNIUM_TEST_CLUSTER_TOKEN", "sekret");
        let c = parse("mode: worker\nmaster:\n  host: master.company.com\n  port: 8080\n  authentication:\n    token: \"{{env.PERFORNIUM_TEST_CLUSTER_TOKEN}}\"\nworker:\n  id: \"worker-{{env.PERFORNIUM_TEST_CLUSTER_HOST}}\"\n  capacity:\n    max_vus: 1000\n    max_rps: 5000\n").unwrap();
        let w = c.worker.as_ref().unwrap();
        assert_eq!(w.id.as_deref(), Some("worker-w7"));
        assert_eq!(w.capacity.unwrap().max_vus, Some(1000));
        assert_eq!(c.master_addrs(), vec!["master.company.com:8080"]);
        assert_eq!(
            c.master
                .clone()
                .unwrap()
                .authentication
                .unwrap()
                .token
                .as_deref(),
            Some("sekret")
        );
        assert!(c.check_role(Mode::Worker).is_ok());
        let e = parse("mode: worker\n").unwrap().check_role(Mode::Master);
        assert!(e.unwrap_err().contains("mode is worker"));
    }

    #[test]
    fn resources_unset_variables_and_zero_caps_are_refused_by_name() {
        let e = parse("worker:\n  resources:\n    cpu_limit: \"4\"\n").unwrap_err();
        assert!(e.contains("worker.resources"), "{e}");
        let e = parse("worker:\n  id: \"w-{{env.PERFORNIUM_SURELY_UNSET_X}}\"\n").unwrap_err();
        assert!(e.contains("PERFORNIUM_SURELY_UNSET_X is not set"), "{e}");
        let e = parse("coordinator:\n  max_workers: 0\n").unwrap_err();
        assert!(e.contains("max_workers"), "{e}");
        let e = parse("worker:\n  capacity:\n    max_vus: 0\n").unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
    }

    #[test]
    fn hosts_get_the_default_port() {
        assert_eq!(
            with_port("a, b:9,[::1]:7,[::1]", 80),
            vec!["a:80", "b:9", "[::1]:7", "[::1]:80"]
        );
    }
}

#[cfg(test)]
mod in_a_test_file {
    #[test]
    fn role_blocks_in_a_test_file_are_refused_pointing_at_config() {
        for block in [
            "mode: worker",
            "enabled: true",
            "coordinator: {port: 8080}",
            "master: {host: m}",
            "worker: {id: w}",
        ] {
            let yaml = format!("name: t\nglobal:\n  base_url: http://h\nload:\n  pattern: basic\n  virtual_users: 1\n  iterations: 1\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\ndistributed:\n  {block}\n");
            let e = crate::config::from_str(&yaml).unwrap_err().to_string();
            assert!(
                e.contains("perfornium worker --config FILE") && e.contains(":14:"),
                "{block}: {e}"
            );
        }
    }
}
