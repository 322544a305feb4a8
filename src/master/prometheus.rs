//! `GET /metrics` on every master replica, in Prometheus text format: the cluster as this replica
//! sees it, and for each run its phase, per-worker VUs and health, request and error counters per step,
//! and a latency histogram per step whose buckets are read from the merged HDR histograms.

use super::store::RaftStore;
use crate::control::run::{RunRecord, WorkerState};
use std::fmt::Write;

/// Bucket bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// The whole exposition for this replica.
pub fn render(store: &RaftStore) -> String {
    let mut out = String::new();
    let st = store.replica.status();
    header(
        &mut out,
        "perfornium_master_is_leader",
        "gauge",
        "1 on the replica that leads.",
    );
    let _ = writeln!(
        out,
        "perfornium_master_is_leader{{node=\"{}\"}} {}",
        st.id,
        u8::from(st.is_leader)
    );
    header(
        &mut out,
        "perfornium_master_term",
        "gauge",
        "Current raft term.",
    );
    let _ = writeln!(
        out,
        "perfornium_master_term{{node=\"{}\"}} {}",
        st.id, st.term
    );
    header(
        &mut out,
        "perfornium_master_last_applied",
        "gauge",
        "Index of the last applied raft entry.",
    );
    let _ = writeln!(
        out,
        "perfornium_master_last_applied{{node=\"{}\"}} {}",
        st.id,
        st.last_applied.unwrap_or(0)
    );
    let sent = store.replica.replication_bytes();
    header(
        &mut out,
        "perfornium_master_replication_bytes_total",
        "counter",
        "Bytes of raft RPC bodies this replica sent to its peers (as leader: what it replicates), by kind.",
    );
    for (kind, bytes) in [
        ("append_entries", sent.append_entries),
        ("snapshot", sent.snapshot),
    ] {
        let _ = writeln!(
            out,
            "perfornium_master_replication_bytes_total{{node=\"{}\",kind=\"{kind}\"}} {bytes}",
            st.id
        );
    }
    let runs = store.runs();
    header(
        &mut out,
        "perfornium_run_phase",
        "gauge",
        "1 for the run's current phase.",
    );
    for r in &runs {
        let _ = writeln!(
            out,
            "perfornium_run_phase{{run=\"{}\",name=\"{}\",phase=\"{:?}\"}} 1",
            label(&r.id),
            label(&r.test.name),
            r.phase
        );
    }
    header(
        &mut out,
        "perfornium_worker_vus",
        "gauge",
        "Active virtual users on each worker.",
    );
    header(
        &mut out,
        "perfornium_worker_up",
        "gauge",
        "1 while the worker answers, 0 once failed.",
    );
    header(
        &mut out,
        "perfornium_worker_request_p95_ms",
        "gauge",
        "p95 latency of the requests each worker made so far, ms (its own merged histogram).",
    );
    for r in &runs {
        workers(&mut out, r);
    }
    monitor_headers(&mut out);
    for r in &runs {
        monitor(&mut out, r);
    }
    header(
        &mut out,
        "perfornium_requests_total",
        "counter",
        "Requests per step, merged across workers.",
    );
    header(
        &mut out,
        "perfornium_errors_total",
        "counter",
        "Failed requests per step.",
    );
    header(
        &mut out,
        "perfornium_request_duration_seconds",
        "histogram",
        "Request latency per step (from merged HDR histograms).",
    );
    for r in &runs {
        steps(&mut out, r);
    }
    out
}

fn workers(out: &mut String, r: &RunRecord) {
    for w in &r.workers {
        let l = format!(
            "run=\"{}\",worker=\"{}\",region=\"{}\"",
            label(&r.id),
            label(&w.addr.addr()),
            label(&w.addr.region)
        );
        let _ = writeln!(out, "perfornium_worker_vus{{{l}}} {}", w.live.active_vus);
        let _ = writeln!(
            out,
            "perfornium_worker_up{{{l}}} {}",
            u8::from(w.state != WorkerState::Failed)
        );
        let all = crate::metrics::collector::merged(w.totals());
        if all.count > 0 {
            let _ = writeln!(
                out,
                "perfornium_worker_request_p95_ms{{{l}}} {}",
                all.latency.quantile_ms(0.95)
            );
        }
    }
}

fn steps(out: &mut String, r: &RunRecord) {
    for (name, s) in r.step_names.iter().zip(r.merged_steps()) {
        let l = format!("run=\"{}\",step=\"{}\"", label(&r.id), label(name));
        let _ = writeln!(out, "perfornium_requests_total{{{l}}} {}", s.count);
        let _ = writeln!(out, "perfornium_errors_total{{{l}}} {}", s.errors);
        for le in BUCKETS {
            let n = s.latency.count_at_most_us((le * 1e6) as u64);
            let _ = writeln!(
                out,
                "perfornium_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {n}"
            );
        }
        let count = s.latency.count();
        let _ = writeln!(
            out,
            "perfornium_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(
            out,
            "perfornium_request_duration_seconds_sum{{{l}}} {}",
            s.latency.mean_ms() / 1000.0 * count as f64
        );
        let _ = writeln!(
            out,
            "perfornium_request_duration_seconds_count{{{l}}} {count}"
        );
    }
}

/// Per-worker monitoring gauges (`distributed.monitoring`), one series per run and worker.
const MONITOR: [(&str, &str, &str); 10] = [
    (
        "perfornium_worker_control_rtt_ms",
        "gauge",
        "Round trip of the controller's last call to the worker, ms.",
    ),
    (
        "perfornium_worker_control_rtt_mean_ms",
        "gauge",
        "Mean round trip of the controller's calls to the worker, ms.",
    ),
    (
        "perfornium_worker_control_calls_total",
        "counter",
        "Control calls made to the worker.",
    ),
    (
        "perfornium_worker_control_failures_total",
        "counter",
        "Control calls to the worker that failed.",
    ),
    (
        "perfornium_worker_process_cpu_percent",
        "gauge",
        "The worker process's CPU use, percent of its host.",
    ),
    (
        "perfornium_worker_host_cpu_percent",
        "gauge",
        "The worker host's CPU use, percent.",
    ),
    (
        "perfornium_worker_process_memory_bytes",
        "gauge",
        "The worker process's resident memory.",
    ),
    (
        "perfornium_worker_saturated",
        "gauge",
        "1 when the worker's last sample was at or above 90% CPU.",
    ),
    (
        "perfornium_worker_planned_share_percent",
        "gauge",
        "The worker's planned share of the load, percent.",
    ),
    (
        "perfornium_worker_actual_share_percent",
        "gauge",
        "The worker's share of the requests so far, percent.",
    ),
];

fn monitor_headers(out: &mut String) {
    for (name, kind, help) in MONITOR {
        header(out, name, kind, help);
    }
    header(
        out,
        "perfornium_alerts_total",
        "counter",
        "Alerts raised in the run, per rule and worker.",
    );
}

fn monitor(out: &mut String, r: &RunRecord) {
    for w in &r.workers {
        let l = format!(
            "run=\"{}\",worker=\"{}\",region=\"{}\"",
            label(&r.id),
            label(&w.addr.addr()),
            label(&w.addr.region)
        );
        let m = &w.monitor;
        let res = m.resources;
        let values: [Option<f64>; 10] = [
            (m.calls > 0).then_some(m.rtt_last_ms),
            (m.calls > 0).then_some(m.rtt_mean_ms),
            Some(m.calls as f64),
            Some(m.failed_calls as f64),
            res.map(|r| r.process_cpu_pct),
            res.map(|r| r.host_cpu_pct),
            res.map(|r| r.process_memory_bytes as f64),
            res.map(|r| f64::from(u8::from(r.saturated))),
            m.planned_share_pct,
            m.actual_share_pct,
        ];
        for ((name, _, _), v) in MONITOR.iter().zip(values) {
            if let Some(v) = v {
                let _ = writeln!(out, "{name}{{{l}}} {v}");
            }
        }
    }
    let mut counts: std::collections::BTreeMap<(&str, &str), u64> = Default::default();
    for a in &r.monitoring.alerts {
        *counts
            .entry((a.rule.as_str(), a.worker.as_deref().unwrap_or("")))
            .or_default() += 1;
    }
    for ((rule, worker), n) in counts {
        let _ = writeln!(
            out,
            "perfornium_alerts_total{{run=\"{}\",rule=\"{}\",worker=\"{}\"}} {n}",
            label(&r.id),
            label(rule),
            label(worker)
        );
    }
}
