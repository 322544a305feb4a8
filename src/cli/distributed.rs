//! `perfornium distributed`: one run across workers, driven by this process. It builds the run
//! record (plan, settings, inlined CSV rows), prints the plan, drives it with the same [`Driver`] the
//! HA master uses over an embedded single-node master ([`Embedded`]), so every state change goes
//! through the same replicated store, prints progress, and turns the final record into the summary.

use super::args::DriveArgs;
use super::{output, shutdown};
use anyhow::Result;
use clap::Args;
use perfornium::api::master::{ClusterView, Role};
use perfornium::config::{Strategy, TestFile};
use perfornium::control::client::Credentials;
use perfornium::control::driver::Driver;
use perfornium::control::plan;
use perfornium::control::run::{Phase, RunRecord, WorkerState};
use perfornium::control::submit;
use perfornium::control::workers::WorkerAddr;
use perfornium::master::embedded::Embedded;
use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

/// Run a test across workers, driven from this process.
#[derive(Args, Debug)]
pub struct DistributedArgs {
    /// The test file.
    file: PathBuf,
    #[command(flatten)]
    pub drive: DriveArgs,
    /// Keep the embedded master's state here (default: a temporary directory).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Serve the run's live feed (`GET /runs/{id}/stream`, Server-Sent Events) on this address
    /// while it runs; the test needs `distributed.results.aggregation.streaming.enabled: true`.
    /// With `monitoring.dashboards.master_dashboard: true` the web dashboard (`/ui`) is served
    /// there too (else on a free loopback port).
    #[arg(long, value_name = "ADDR")]
    stream: Option<String>,
}

impl DistributedArgs {
    /// `perfornium run FILE -w ...`: the same run, headless, its state in a temporary directory.
    pub fn from_run(file: PathBuf, drive: DriveArgs) -> Self {
        DistributedArgs {
            file,
            drive,
            data: None,
            stream: None,
        }
    }

    /// Drives the run, prints the summary, writes the outputs; 2 when the run did not finish.
    pub async fn run(self) -> Result<ExitCode> {
        let test = self.drive.over.load(&self.file)?;
        let workers = self.drive.plan.workers()?;
        use perfornium::config::security::Permission;
        // Redistributing a failed worker's share calls its survivors' /scale.
        let redistributes = test
            .distributed
            .as_ref()
            .and_then(|d| d.fault_tolerance.as_ref())
            .and_then(|f| f.worker_failures.as_ref())
            .and_then(|w| w.recovery.as_ref())
            .and_then(|r| r.load_redistribution)
            == Some(true);
        let mut needs = vec![Permission::ExecuteTests, Permission::ReportMetrics];
        if redistributes {
            needs.push(Permission::ManageWorkers);
        }
        let caller = super::args::caller(
            test.distributed.as_ref().and_then(|d| d.security.as_ref()),
            &self.drive.tls,
            &workers.iter().map(WorkerAddr::addr).collect::<Vec<_>>(),
            "worker",
            "controller",
            &needs,
        )?;
        let tls = caller.tls.is_some();
        let (workers, ts_workers) =
            perfornium::control::ts_worker::adapt(workers, tls, &test).await?;
        let launch = Launch {
            workers,
            strategy: self.drive.plan.strategy,
            sync_start: self.drive.plan.sync_start,
            token: self.drive.access.token()?,
            tls: caller.tls,
            mint: caller.mint,
            tui: self.drive.screen.tui(),
            data: self.data.clone(),
            stream: self.stream.clone(),
        };
        let stop = shutdown::on_ctrl_c("stopping: requests in flight will finish and be counted");
        let rec = run(test, launch, stop).await?;
        let mut summary = rec.summary();
        ts_workers.annotate(&mut summary);
        output::write(&summary, &self.drive.output)?;
        let code = output::verdict(&summary);
        // A test that stopped itself (`abort`, CSV `stop_test`) failed its verdict, as a local run
        // does (exit 1); any other unfinished run is an error (exit 2).
        Ok(if rec.phase == Phase::Finished || rec.stopped_by_test() {
            code
        } else {
            ExitCode::from(2)
        })
    }
}

/// Where and how to run a distributed test.
#[derive(Debug, Clone)]
struct Launch {
    workers: Vec<WorkerAddr>,
    strategy: Option<Strategy>,
    sync_start: bool,
    /// Bearer token for the workers (else the test's `communication.http.authentication.token`).
    token: Option<String>,
    /// HTTPS to the workers: the CA to trust and the client certificate to present.
    tls: Option<perfornium::tls::ClientTls>,
    /// Mints the JWTs the workers are called with (the test's `security.authentication.token_auth`).
    mint: Option<std::sync::Arc<perfornium::config::security::Minter>>,
    /// Show the console until the user closes it; progress lines follow until the run ends.
    tui: bool,
    /// The embedded master's directory (kept after the run); a temporary one when `None`.
    data: Option<PathBuf>,
    /// Where to serve the live feed (`--stream`).
    stream: Option<String>,
}

/// Runs `test` as `launch` says and returns the final record.
async fn run(test: TestFile, launch: Launch, stop: CancellationToken) -> Result<RunRecord> {
    let Launch {
        workers,
        strategy,
        sync_start,
        token,
        tls,
        mint,
        tui,
        data,
        stream,
    } = launch;
    let creds = Credentials {
        token: token.or_else(|| test_token(&test)),
        tls,
        mint,
    };
    let one = submit::Masters {
        replicas: 1,
        election_max_ms: 0,
    };
    submit::check_masters(&test, one).map_err(anyhow::Error::msg)?;
    let run_id = submit::run_id();
    // The test's outputs are written here, from the controller's merged seconds: once per run,
    // never by the workers (the test they receive has no `outputs:`).
    let outs = perfornium::outputs::start(&test, &run_id)?;
    let samples = if perfornium::control::balance::wants_samples(&test) {
        perfornium::control::balance::read_samples(&workers, &creds).await
    } else {
        Vec::new()
    };
    let rec = perfornium::control::balance::new_record(
        run_id, test, &workers, &samples, strategy, sync_start,
    )?;
    eprint!("{}", plan::text(&rec));
    // `monitoring.dashboards.master_dashboard`: the web dashboard beside the feed, on --stream's
    // address or a free loopback port.
    let dashboard = perfornium::config::monitoring::Dashboards::master_dashboard(&rec.test);
    let streaming = match &stream {
        None if dashboard => Some(
            tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .map_err(|e| anyhow::anyhow!("the dashboard cannot listen on loopback: {e}"))?,
        ),
        Some(addr) => {
            let on = rec
                .test
                .distributed
                .as_ref()
                .and_then(|d| d.results.as_ref())
                .and_then(|r| r.feed())
                .is_some_and(|a| a.streaming_on());
            if !on {
                anyhow::bail!("--stream {addr}: the test has no feed to serve; set `distributed.results.aggregation.streaming.enabled: true`");
            }
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("--stream {addr}: cannot listen: {e}"))?;
            Some(listener)
        }
        None => None,
    };
    let master = Embedded::open(data.as_deref()).await?;
    let streaming = match streaming {
        Some(listener) => {
            // Recorded before the address is announced, so the stream answers from the start.
            perfornium::control::store::RunStore::save(&master.store, &rec).await?;
            let at = listener.local_addr()?;
            if stream.is_some() {
                eprintln!("live feed: http://{at}/runs/{}/stream", rec.id);
            }
            let done = CancellationToken::new();
            let serving = if dashboard {
                eprintln!("dashboard: http://{at}/ui#/runs/{}", rec.id);
                tokio::spawn(perfornium::master::ui::serve_embedded(
                    listener,
                    master.store.clone(),
                    done.clone(),
                ))
            } else {
                tokio::spawn(perfornium::master::stream::serve_embedded(
                    listener,
                    master.store.clone(),
                    done.clone(),
                ))
            };
            Some((done, serving))
        }
        None => None,
    };
    let mut driver = Driver::new(master.store.clone(), rec, &creds, stop.clone());
    if let Some(o) = &outs {
        driver.feed_seconds(o.sender());
    }
    let updates = driver.subscribe();
    let control = driver.control();
    // The records are stamped from the agreed start instant once the driver has set it.
    let stamping = outs.as_ref().map(|o| {
        let clock = o.start_clock();
        let mut rx = updates.clone();
        tokio::spawn(async move {
            loop {
                if let Some(t) = rx.borrow_and_update().start_at_ms {
                    clock.set(t);
                    return;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        })
    });
    let driving = tokio::spawn(driver.drive());
    if tui {
        show_console(updates.clone(), stop, control).await?;
    }
    let progress = tokio::spawn(print_progress(updates));
    let rec = driving
        .await
        .map_err(|e| anyhow::anyhow!("the driver task failed: {e}"))??;
    progress.abort();
    if let Some(s) = stamping {
        s.abort();
    }
    if let Some((done, mut serving)) = streaming {
        // Open streams send their `end` event (the final record is applied) and close.
        done.cancel();
        if tokio::time::timeout(std::time::Duration::from_secs(5), &mut serving)
            .await
            .is_err()
        {
            serving.abort();
        }
    }
    master.close().await?;
    if let Some(o) = outs {
        o.finish(&rec.summary()).await?;
    }
    Ok(rec)
}

/// The interactive console over the embedded controller's record.
async fn show_console(
    mut updates: tokio::sync::watch::Receiver<RunRecord>,
    stop: CancellationToken,
    control: perfornium::control::rescale::ControlHandle,
) -> Result<()> {
    use perfornium::console::screen::{interactive_with, Snapshot};
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    // The console's live changes go straight to the embedded driver (no HTTP in between).
    let (change_tx, mut change_rx) = tokio::sync::mpsc::unbounded_channel();
    let changer = tokio::spawn(async move {
        while let Some(patch) = change_rx.recv().await {
            match control.change(patch).await {
                Some(Ok(c)) => tracing::info!(
                    generation = c.generation,
                    target = c.target,
                    paused = c.paused,
                    "live change taken"
                ),
                Some(Err(e)) => tracing::warn!("live change refused: {e}"),
                None => return,
            }
        }
    });
    let (stop_tx, mut stop_rx) = tokio::sync::mpsc::unbounded_channel();
    let feeder = tokio::spawn(async move {
        loop {
            let rec = updates.borrow_and_update().clone();
            let me = ClusterView {
                id: 0,
                role: Role::Leader,
                leader_id: Some(0),
                leader_addr: None,
                term: 0,
                members: vec![],
                last_applied: None,
                last_log_index: None,
                last_purged: None,
            };
            let snap = Snapshot {
                cluster: vec![("embedded controller".into(), Some(me))],
                run: Some(rec.view(0)),
                error: None,
                pool: None,
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
    let shown = interactive_with(rx, stop_tx, Some(change_tx)).await;
    changer.abort();
    feeder.abort();
    stopper.abort();
    Ok(shown.map(drop)?)
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
    let rendered = perfornium::engine::template::render(&raw, &Default::default()).into_owned();
    (!rendered.contains("{{")).then_some(rendered)
}

async fn print_progress(mut rx: tokio::sync::watch::Receiver<RunRecord>) {
    let mut last = String::new();
    while rx.changed().await.is_ok() {
        let rec = rx.borrow_and_update().clone();
        let live = rec.live();
        let mut line = format!(
            "{} {}",
            rec.phase,
            perfornium::report::progress::line(&live)
        );
        let failed = rec
            .workers
            .iter()
            .filter(|w| w.state == WorkerState::Failed)
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
