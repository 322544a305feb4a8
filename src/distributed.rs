//! `perfornium distributed`: one run across workers, driven by this process. It builds the run
//! record (plan, settings, inlined CSV rows), prints the plan, drives it with the same [`Driver`] the
//! HA master uses over an embedded single-node master ([`Embedded`]), so every state change goes
//! through the same replicated store, prints progress, and turns the final record into the summary.

use crate::config::{self, TestFile};
use crate::control::client::Credentials;
use crate::control::driver::Driver;
use crate::control::plan::{self, Strategy};
use crate::control::run::{Phase, RunRecord};
use crate::control::submit;
use crate::control::workers::WorkerAddr;
use crate::master::embedded::Embedded;
use crate::metrics::collector::merged;
use crate::report::{RunSummary, WorkerSummary};
use std::fmt::Write;
use tokio_util::sync::CancellationToken;

/// The plan as a table: worker → share, region, capacity.
pub fn plan_text(rec: &RunRecord) -> String {
    let mut out = format!("plan ({} strategy, run {}):\n", rec.strategy, rec.id);
    let arrivals = matches!(rec.test.load, config::Load::Arrivals { .. });
    for w in &rec.workers {
        let share = share(&w.load, arrivals);
        let unit = if arrivals { "arrivals/s" } else { "VUs" };
        let _ = writeln!(
            out,
            "  {:<21} {share:>8} {unit:<10} region {:<10} capacity {}",
            w.addr.addr(),
            w.addr.region,
            w.addr.capacity
        );
    }
    out
}

fn share(load: &config::Load, arrivals: bool) -> f64 {
    let u = plan::units(load) as f64;
    if arrivals {
        u / 1000.0
    } else {
        u
    }
}

/// The summary of a finished (or failed) run record.
pub fn summarize(rec: &RunRecord) -> RunSummary {
    let steps = rec.merged_steps();
    let started = rec
        .workers
        .iter()
        .filter_map(|w| w.results.as_ref().map(|r| r.elapsed_s))
        .fold(0.0, f64::max);
    let seconds = if started > 0.0 {
        started
    } else {
        rec.timeline.len() as f64
    };
    let dropped = rec
        .workers
        .iter()
        .map(|w| {
            w.results
                .as_ref()
                .map(|r| r.dropped)
                .unwrap_or(w.live.dropped)
        })
        .sum();
    let mut s = RunSummary::build(
        &rec.test.name,
        &rec.step_names,
        &steps,
        seconds,
        dropped,
        rec.timeline.clone(),
        &config::rules(&rec.test),
    );
    let arrivals = matches!(rec.test.load, config::Load::Arrivals { .. });
    s.workers = rec
        .workers
        .iter()
        .map(|w| {
            let all = merged(w.totals());
            WorkerSummary {
                address: w.addr.addr(),
                region: w.addr.region.clone(),
                capacity: w.addr.capacity,
                planned: share(&w.load, arrivals)
                    + if arrivals {
                        w.extra_units as f64 / 1000.0
                    } else {
                        w.extra_units as f64
                    },
                state: format!("{:?}", w.state).to_lowercase(),
                count: all.count,
                errors: all.errors,
                p50: all.latency.quantile_ms(0.5),
                p95: all.latency.quantile_ms(0.95),
                p99: all.latency.quantile_ms(0.99),
                clock_offset_ms: w.offset.map(|o| o.offset_ms),
                error: w.error.clone(),
                active_vus: w.live.active_vus,
                rps: w.live.rps,
                last_seen_ms: w.last_seen_ms,
            }
        })
        .collect();
    s = s.with_checks(&rec.test);
    s.start_skew_ms = rec.skew_ms;
    s.phase = Some(format!("{:?}", rec.phase).to_lowercase());
    s.events = rec.events.clone();
    if rec.phase != Phase::Finished {
        s.passed = false;
    }
    s
}

/// Where and how to run a distributed test.
#[derive(Debug, Clone)]
pub struct Launch {
    pub workers: Vec<WorkerAddr>,
    pub strategy: Strategy,
    pub sync_start: bool,
    /// Bearer token for the workers (else the test's `communication.http.authentication.token`).
    pub token: Option<String>,
    /// HTTPS to the workers: the CA to trust and the client certificate to present.
    pub tls: Option<crate::tls::ClientTls>,
    /// Show the console until the user closes it; progress lines follow until the run ends.
    pub tui: bool,
    /// The embedded master's directory (kept after the run); a temporary one when `None`.
    pub data: Option<std::path::PathBuf>,
}

/// Runs `test` as `launch` says and returns the final record.
pub async fn run(
    test: TestFile,
    launch: Launch,
    stop: CancellationToken,
) -> anyhow::Result<RunRecord> {
    let Launch {
        workers,
        strategy,
        sync_start,
        token,
        tls,
        tui,
        data,
    } = launch;
    let creds = Credentials {
        token: token.or_else(|| test_token(&test)),
        tls,
    };
    let rec = submit::new_record(submit::run_id(), test, &workers, strategy, sync_start)
        .map_err(anyhow::Error::msg)?;
    eprint!("{}", plan_text(&rec));
    let master = Embedded::open(data.as_deref()).await?;
    let driver = Driver::new(master.store.clone(), rec, &creds, stop.clone());
    let updates = driver.subscribe();
    let driving = tokio::spawn(driver.drive());
    if tui {
        show_console(updates.clone(), stop).await?;
    }
    let progress = tokio::spawn(print_progress(updates));
    let rec = driving
        .await
        .map_err(|e| anyhow::anyhow!("the driver task failed: {e}"))??;
    progress.abort();
    master.close().await?;
    Ok(rec)
}

/// The interactive console over the embedded controller's record.
async fn show_console(
    mut updates: tokio::sync::watch::Receiver<RunRecord>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    use crate::console::screen::{interactive, Snapshot};
    use crate::master::api::{run_view, ClusterView};
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let (stop_tx, mut stop_rx) = tokio::sync::mpsc::unbounded_channel();
    let feeder = tokio::spawn(async move {
        loop {
            let rec = updates.borrow_and_update().clone();
            let me = ClusterView {
                id: 0,
                role: "leader".into(),
                leader_id: Some(0),
                leader_addr: None,
                term: 0,
                members: vec![],
                last_applied: None,
            };
            let snap = Snapshot {
                cluster: vec![("embedded controller".into(), Some(me))],
                run: Some(run_view(&rec, 0)),
                error: None,
            };
            if tx.send(snap).await.is_err() || updates.changed().await.is_err() {
                return;
            }
        }
    });
    let stopper = tokio::spawn(async move {
        if stop_rx.recv().await.is_some() {
            stop.cancel();
        }
    });
    let shown = interactive(rx, stop_tx).await;
    feeder.abort();
    stopper.abort();
    shown.map(drop)
}

/// The bearer token from `distributed.communication.http.authentication`, templated from the env.
fn test_token(test: &TestFile) -> Option<String> {
    let raw = test
        .distributed
        .as_ref()?
        .communication
        .as_ref()?
        .http
        .as_ref()?
        .authentication
        .as_ref()?
        .token
        .clone()?;
    let rendered = crate::engine::template::render(&raw, &Default::default()).into_owned();
    (!rendered.contains("{{")).then_some(rendered)
}

async fn print_progress(mut rx: tokio::sync::watch::Receiver<RunRecord>) {
    let mut last = String::new();
    while rx.changed().await.is_ok() {
        let rec = rx.borrow_and_update().clone();
        let live = rec.live();
        let mut line =
            format!("{:?} ", rec.phase).to_lowercase() + &crate::report::progress::line(&live);
        let failed = rec
            .workers
            .iter()
            .filter(|w| w.state == crate::control::run::WorkerState::Failed)
            .count();
        if failed > 0 {
            let _ = write!(line, "  failed workers {failed}");
        }
        if line != last {
            eprintln!("{line}");
            last = line;
        }
    }
}
