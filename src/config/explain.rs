//! `perfornium validate --explain`: how each section of a test was understood, in words, with the
//! units and the defaults that were applied.

use super::{Load, Step, TestFile, Threshold};
use std::fmt::Write;
use std::time::Duration;

fn d(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 && (ms / 1000.0).fract() == 0.0 {
        format!("{}s", ms / 1000.0)
    } else {
        format!("{ms}ms")
    }
}

fn load(l: &Load) -> String {
    match l {
        Load::Basic {
            virtual_users,
            ramp_up,
            duration,
            iterations,
        } => {
            let how = match (duration, iterations) {
                (Some(t), Some(n)) => format!("duration {}, at most {n} iterations per VU", d(*t)),
                (Some(t), None) => format!("duration {}", d(*t)),
                (None, Some(n)) => format!("{n} iterations per VU"),
                (None, None) => "no duration or iterations: each VU runs its scenario once".into(),
            };
            format!("basic, {virtual_users} VUs, ramp_up {}, {how}", d(*ramp_up))
        }
        Load::Stepping {
            start_users,
            step_users,
            step_duration,
            max_users,
            duration,
        } => format!(
            "stepping, {start_users} VUs at once, +{step_users} every {} up to {max_users}, duration {}",
            d(*step_duration),
            d(*duration)
        ),
        Load::Levels { levels } => {
            let mut s = "levels, one after another:".to_string();
            for l in levels {
                let _ = write!(
                    s,
                    " [{} VUs, ramp {} within {}]",
                    l.users,
                    d(l.ramp_up),
                    d(l.duration)
                );
            }
            s
        }
        Load::Arrivals {
            rate,
            duration,
            max_virtual_users,
            shape,
            ..
        } => {
            let mut s = if shape.profile.is_empty() {
                format!("arrivals, {rate}/s")
            } else {
                let steps: Vec<String> = shape
                    .profile
                    .iter()
                    .map(|(f, t)| format!("{}/s for {}", f * rate, d(*t)))
                    .collect();
                format!("arrivals, rate profile {}", steps.join(", then "))
            };
            let _ = write!(s, ", duration {}", d(*duration));
            if !shape.ramp_up.is_zero() {
                let _ = write!(s, ", rate ramps up from 0 over {}", d(shape.ramp_up));
            }
            match shape.vu_duration {
                Some(v) => {
                    let _ = write!(s, ", each arrival is a VU looping for {}", d(v));
                }
                None => s.push_str(", each arrival runs one iteration"),
            }
            match max_virtual_users {
                Some(m) => {
                    let _ = write!(s, ", at most {m} at once");
                }
                None => s.push_str(
                    ", max_virtual_users not set (default: rate × 10, or rate × (1.5 × vu_duration + 1 s), at least 100)",
                ),
            }
            s
        }
        Load::Phases(ps) => {
            let mut s = format!("{} phases, one after another:", ps.len());
            for (i, p) in ps.iter().enumerate() {
                let _ = write!(
                    s,
                    "\n  phase {} ({}): {}",
                    i + 1,
                    p.name.as_deref().unwrap_or("unnamed"),
                    load(&p.load)
                );
            }
            s
        }
    }
}

/// The test as understood, one line (or block) per section.
pub fn explain(test: &TestFile) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "load: {} (durations: a bare number would be ms)",
        load(&test.load)
    );
    let g = &test.global;
    let _ = writeln!(
        out,
        "global: base_url {}, request timeout {}ms{}, think time {}",
        g.base_url.as_deref().unwrap_or("(none: give --base-url)"),
        g.timeout,
        if g.timeout == 30_000 {
            " (default)"
        } else {
            ""
        },
        g.think_time
            .map(|t| format!("{}-{} (a bare number is s)", d(t.min), d(t.max)))
            .unwrap_or_else(|| "none".into())
    );
    if let Some(dbg) = &g.debug {
        let _ = writeln!(
            out,
            "debug: log level {}, captures {} requests into summary.json",
            dbg.level().unwrap_or("unchanged"),
            if dbg.capture_only_failures == Some(false) {
                "all (first 100)"
            } else {
                "failing"
            }
        );
    }
    if let Some(f) = &g.faker {
        let _ = writeln!(
            out,
            "faker: locale {}, seed {}",
            f.locale.as_deref().unwrap_or("en"),
            f.seed.map_or("none (random)".into(), |s| s.to_string())
        );
    }
    if let Some(line) = super::script::explain_test(test) {
        let _ = writeln!(out, "{line}");
    }
    for s in &test.scenarios {
        let looping = match s.looping.duration {
            Some(t) => format!("steps repeat for {}", d(t)),
            None => format!("steps {} time(s) per iteration", s.looping.count.max(1)),
        };
        let _ = writeln!(
            out,
            "scenario `{}`: weight {}, {looping}, {} steps{}",
            s.name,
            s.weight,
            s.steps.len(),
            s.csv_data
                .as_ref()
                .and_then(|c| c.policy(s.csv_mode.as_deref()).ok().map(|p| (c, p)))
                .map(|(c, p)| format!(
                    ", rows from {} ({:?} scope, {} order, on exhaustion {:?}, {})",
                    c.file,
                    p.scope,
                    if p.random { "random" } else { "file" },
                    p.on_exhausted,
                    if p.per_vu {
                        "a row per VU"
                    } else {
                        "a row per iteration"
                    }
                ))
                .unwrap_or_default()
        );
        if let Some(line) = super::script::explain_scenario(s) {
            let _ = writeln!(out, "  {line}");
        }
        for step in &s.steps {
            let line = match step {
                Step::Http(h) => {
                    let mut l = format!("{} {}", h.method, h.target);
                    if let Some(t) = h.options.timeout {
                        let _ = write!(l, ", timeout {}", d(t));
                    }
                    if let Some(r) = &h.options.retry {
                        let _ = write!(l, ", up to {} attempts", r.max_attempts);
                    }
                    if !h.options.continue_on_error {
                        l.push_str(", a failure ends the iteration");
                    }
                    if !h.options.thresholds.is_empty() {
                        let _ = write!(l, ", {} per-result thresholds", h.options.thresholds.len());
                    }
                    if let Some(s) = &h.scripts {
                        l.push_str(&super::script::explain_step(s));
                    }
                    l
                }
                Step::Script(s) => super::script::explain_script_step(s),
                Step::Wait { duration, .. } => {
                    format!(
                        "wait {}-{} (a bare number is ms)",
                        d(duration.min),
                        d(duration.max)
                    )
                }
                Step::Rendezvous(r) => format!(
                    "rendezvous `{}` for {} VUs, timeout {}",
                    r.point,
                    r.count,
                    d(r.timeout)
                ),
            };
            let _ = writeln!(out, "  step `{}`: {line}", step.name());
        }
    }
    if let Some(dist) = &test.distributed {
        out.push_str(&dist.explain());
        if let Some(lb) = &dist.load_balancing {
            out.push_str(&lb.explain());
        }
        out.push_str(&super::balancing::explain_replacement(dist));
        if let Some(dc) = &dist.data_consistency {
            out.push_str(&dc.explain());
        }
        if let Some(p) = &dist.performance {
            out.push_str(&p.explain());
        }
        if let Some(m) = &dist.monitoring {
            out.push_str(&m.explain());
        }
        if let Some(l) = &dist.logging {
            out.push_str(&l.explain());
        }
        if let Some(r) = &dist.results {
            out.push_str(&r.explain());
        }
        if let Some(c) = &dist.communication {
            out.push_str(&c.explain());
        }
    }
    for t in &test.thresholds {
        let _ = match t {
            Threshold::Short(s) => writeln!(out, "threshold: {s}"),
            Threshold::Long { metric, step } => writeln!(
                out,
                "threshold: {metric}{}",
                step.as_deref()
                    .map(|s| format!(" on step `{s}`"))
                    .unwrap_or_default()
            ),
        };
    }
    super::outputs::explain(test, &mut out);
    if let Some(sec) = test.distributed.as_ref().and_then(|d| d.security.as_ref()) {
        out.push_str(&security(sec, false));
    }
    out
}

/// `distributed.security` in words: for a test file (`server == false`), what the controller and
/// console send; for a worker's or master's `--config`, what it requires.
pub fn security(sec: &super::security::Security, server: bool) -> String {
    use super::security::{AuthMethod, JwtAlgorithm};
    let mut out = String::new();
    if let Some(a) = &sec.authentication {
        let method = match a.method {
            AuthMethod::Token => "token (JWT)",
            AuthMethod::MutualTls => "mutual_tls (client certificates)",
            AuthMethod::Oauth => "oauth",
        };
        let _ = writeln!(out, "security.authentication: method {method}");
        if let Some(t) = &a.token_auth {
            let alg = match t.algorithm {
                JwtAlgorithm::Hs256 => "HS256 (shared secret)",
                JwtAlgorithm::Rs256 => "RS256 (RSA key pair)",
            };
            let life = t.expiration.unwrap_or(super::security::DEFAULT_EXPIRATION);
            let _ = if server {
                writeln!(
                    out,
 "  token_auth: {alg}; every call but /health needs a JWT that verifies and has not expired (401 otherwise) whose `role` holds the endpoint's permission (403 naming it otherwise); --token stays a full-access credential"
                )
            } else {
                writeln!(
                    out,
 "  token_auth: {alg}; the controller and console sign a JWT valid {} with role `{}`, a new one when half its life has passed",
                    d(life),
                    t.role.as_deref().unwrap_or("(the first holding what the caller needs)")
                )
            };
        }
        if let Some(t) = &a.tls_auth {
            let p = |x: &Option<std::path::PathBuf>| {
                x.as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "-".into())
            };
            let _ = if server {
                writeln!(
                    out,
                    "  tls_auth: serves {} (key {}), requires client certificates signed by {}",
                    p(&t.server_cert),
                    p(&t.server_key),
                    p(&t.ca_cert)
                )
            } else {
                writeln!(
                    out,
                    "  tls_auth: trusts {}, presents {} (key {}), as --ca/--client-cert/--client-key",
                    p(&t.ca_cert),
                    p(&t.client_cert),
                    p(&t.client_key)
                )
            };
        }
    }
    match sec.roles() {
        None => {
            let _ = writeln!(
                out,
                "security.authorization: off, any valid JWT may call every endpoint"
            );
        }
        Some(roles) if sec.token_auth().is_some() => {
            let list: Vec<String> = roles
                .iter()
                .map(|(r, ps)| {
                    let ps: Vec<&str> = ps.iter().map(|p| p.name()).collect();
                    format!("{r} [{}]", ps.join(", "))
                })
                .collect();
            let _ = writeln!(out, "security.authorization: roles {}", list.join("; "));
        }
        Some(_) => {}
    }
    if let Some(n) = &sec.network {
        if let Some(e) = n.encryption {
            let _ = writeln!(
                out,
                "security.network.encryption: {}",
                if e {
                    "every call over HTTPS (refused to start without certificates)"
                } else {
                    "plain HTTP"
                }
            );
        }
        if let Some(s) = &n.cipher_suites {
            let names: Vec<&str> = s.iter().map(|c| c.0.as_str()).collect();
            let _ = writeln!(
                out,
                "security.network.cipher_suites: only {} offered{}",
                names.join(", "),
                if server { "" } else { " by the controller" }
            );
        }
        if let Some(f) = &n.firewall_rules {
            let nets = f
                .allowed_networks
                .as_ref()
                .map(|n| {
                    n.iter()
                        .map(|n| n.0.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_else(|| "any".into());
            let _ = writeln!(
                out,
                "security.network.firewall_rules: {} {nets}; master ports {:?}, worker ports {:?}",
                if server {
                    "callers admitted from"
                } else {
                    "workers and masters called only in"
                },
                f.master_ports.as_deref().unwrap_or(&[]),
                f.worker_ports.as_deref().unwrap_or(&[])
            );
        }
    }
    out
}

/// A worker's or master's `--config` in words (`perfornium worker --config FILE --explain`).
pub fn process(pc: &super::security::ProcessConfig) -> String {
    let mut out = security(&pc.security, true);
    if let Some(m) = &pc.master_failure {
        let f = m.failover.clone().unwrap_or_default();
        let _ = writeln!(
            out,
            "fault_tolerance.master_failure: checked against this replica's --peers before it listens (high_availability: 3 or more replicas; backup_masters: the replicas minus one){}; leader election is raft, and runs persist in the replicas' raft log (state_persistence: raft only; with --backup-dir, a JSON copy of the state every backup_interval)",
            f.election_timeout.map_or(String::new(), |t| format!(
                "; elections wait {}-{} ms (failover.election_timeout, instead of --raft-election-ms)",
                t.as_millis() / 2,
                t.as_millis()
            ))
        );
    }
    let perf = &pc.performance;
    if perf.network.is_some() {
        let o = perf.socket_options();
        let b = |x: Option<usize>| x.map_or("kernel default".to_string(), |n| format!("{n} bytes"));
        let _ = writeln!(
            out,
 "performance.network: on load connections and the control channel: TCP_NODELAY {}, SO_KEEPALIVE {}, SO_SNDBUF {}, SO_RCVBUF {} (Linux reports twice what is set, and caps at net.core.[wr]mem_max)",
            o.nodelay.map_or("on (default)".into(), |v| v.to_string()),
            o.keepalive.map_or("off (default)".into(), |v| v.to_string()),
            b(o.send_buffer),
            b(o.recv_buffer)
        );
        if let Some(c) = perf.network.as_ref().and_then(|n| n.compression.as_ref()) {
            if let Ok((level, threshold)) = c.settings() {
                let _ = writeln!(
                    out,
                    "performance.network.compression: the control channel's responses of {threshold} bytes or more \
                     gzipped at level {level} for clients that accept gzip (the controller and console do); \
                     load requests unchanged"
                );
            }
        }
    }
    if let Some(r) = &perf.resources {
        let _ = writeln!(
            out,
            "performance.resources: {}",
            if r.pin_threads() {
                "each thread of the process pinned to one core, round robin over the cores it may use"
            } else {
                "threads not pinned"
            }
        );
        if let Some(m) = &r.memory_management {
            for (key, v) in [
                ("gc_tuning", m.gc_tuning),
                ("memory_pools", m.memory_pools),
                ("buffer_management", m.buffer_management),
            ] {
                if v.is_some() {
                    let _ = writeln!(
                        out,
 "  memory_management.{key}: no effect: a Rust process has no garbage collector or runtime heap to tune; memory is freed when its owner goes, and each VU reuses its connection and buffers"
                    );
                }
            }
        }
    }
    cluster(&pc.cluster, &mut out);
    out
}

/// The role blocks of a `--config` file (`cluster.rs`), as `--explain` prints them.
fn cluster(c: &super::cluster::Cluster, out: &mut String) {
    if let Some(m) = c.mode {
        let _ = writeln!(
            out,
            "mode: {}: only `perfornium {}` (or PERFORNIUM_MODE={}) accepts this file",
            m.name(),
            m.name(),
            m.name()
        );
    }
    if let Some(e) = c.enabled {
        let _ = writeln!(
            out,
            "enabled: {e}{}",
            if e {
                ""
            } else {
                " (refused by master and worker: they take part in a cluster)"
            }
        );
    }
    if let Some(co) = &c.coordinator {
        let _ = writeln!(
            out,
            "coordinator: the master listens on {}:{} (unless --listen); {}",
            co.host.as_deref().unwrap_or("0.0.0.0"),
            co.port.unwrap_or(super::cluster::DEFAULT_PORT),
            match co.max_workers {
                Some(n) => format!("the registered pool admits at most {n} workers with a live lease (more are refused with 409 naming the cap)"),
                None => "no cap on the registered pool".into(),
            }
        );
    }
    if let Some(m) = &c.master {
        let _ = writeln!(
            out,
            "master: the worker registers with {} (POST /workers, following the leader) and renews its lease; {}",
            c.master_addrs().join(", "),
            if m.authentication.as_ref().is_some_and(|a| a.token.is_some()) {
                "with authentication.token as its bearer token"
            } else {
                "with the worker's own --token, if any"
            }
        );
    }
    if let Some(w) = &c.worker {
        let cap = w.capacity.unwrap_or_default();
        let _ = writeln!(
            out,
            "worker: reported to the master as id {}, region {}, labels {:?}; capacity: max_vus {}, max_rps {} (plans keep every share within them and the worker refuses a share over them with 409; max_rps bounds arrivals loads)",
            w.id.as_deref().unwrap_or("(its advertised host:port)"),
            w.region.as_deref().unwrap_or("default"),
            w.labels.clone().unwrap_or_default(),
            cap.max_vus.map_or("no cap".into(), |v| v.to_string()),
            cap.max_rps.map_or("no cap".into(), |v| v.to_string()),
        );
    }
}
