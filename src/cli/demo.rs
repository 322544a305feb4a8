//! `perfornium demo`: the embedded default a newcomer runs first. In this one process it starts the
//! mock target, three workers and three master replicas on loopback (ports from the OS, a temporary
//! data directory), submits `examples/basic.yaml` (embedded) to the cluster like a console would,
//! and shows the run in the console (headless progress when there is no terminal). Everything is
//! stopped and the data directory removed on exit or Ctrl-C.

use super::args::{Output, OverrideArgs, Screen};
use super::output;
use anyhow::Result;
use clap::Args;
use perfornium::api::master::{RunView, Submit};
use perfornium::api::worker::WorkerAddr;
use perfornium::config::{Overrides, Strategy, TestFile};
use perfornium::console::client::ClusterClient;
use perfornium::master::MasterConfig;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The example the demo runs.
const TEST: &str = include_str!("../../examples/basic.yaml");

/// The embedded default: mock, 3 workers and 3 master replicas on loopback, one example run, the console.
#[derive(Args, Debug)]
pub struct DemoArgs {
    #[command(flatten)]
    over: OverrideArgs,
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    pub screen: Screen,
}

impl DemoArgs {
    /// Starts the local cluster, runs the example, shows it, stops everything.
    pub async fn run(self) -> Result<ExitCode> {
        let last = run(&self.over.overrides(), self.screen.tui()).await?;
        output::finish_console(last, &self.output)
    }
}

/// Everything the demo started, stopped by [`Demo::shutdown`].
struct Demo {
    mock: String,
    workers: Vec<WorkerAddr>,
    masters: Vec<String>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    _data: tempfile::TempDir,
}

async fn bind() -> Result<(TcpListener, String)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?.to_string();
    Ok((l, addr))
}

impl Demo {
    /// Starts the mock, three workers and three master replicas.
    async fn start() -> Result<Demo> {
        let stop = CancellationToken::new();
        let data = tempfile::Builder::new()
            .prefix("perfornium-demo-")
            .tempdir()?;
        let mut tasks = Vec::new();
        let (l, mock) = bind().await?;
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _ = perfornium::mock::serve(l, Duration::from_millis(2), None, s).await;
        }));
        let mut workers = Vec::new();
        for _ in 0..3 {
            let (l, addr) = bind().await?;
            let s = stop.clone();
            tasks.push(tokio::spawn(async move {
                let _ = perfornium::worker::serve(l, Default::default(), s).await;
            }));
            let (host, port) = addr.rsplit_once(':').expect("a socket address has a port");
            workers.push(WorkerAddr::new(host, port.parse()?));
        }
        // Bind all three first: each replica must know the others' addresses before it starts.
        let mut listeners = Vec::new();
        for _ in 0..3 {
            listeners.push(bind().await?);
        }
        let peers: std::collections::BTreeMap<u64, String> = listeners
            .iter()
            .enumerate()
            .map(|(i, (_, a))| (i as u64 + 1, a.clone()))
            .collect();
        let masters: Vec<String> = peers.values().cloned().collect();
        for (i, (l, addr)) in listeners.into_iter().enumerate() {
            let cfg = MasterConfig {
                id: i as u64 + 1,
                listen: addr,
                peers: peers.clone(),
                data: data.path().join(format!("master-{}", i + 1)),
                token: None,
                allowed: Vec::new(),
                tls: None,
                client_tls: None,
                raft_timing: None,
                jwt: None,
                mint: None,
                max_workers: None,
                backup: None,
                tests_dir: None,
            };
            let s = stop.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = perfornium::master::serve(cfg, l, s).await {
                    tracing::error!("demo: master stopped: {e}");
                    eprintln!("demo: master stopped: {e}");
                }
            }));
        }
        Ok(Demo {
            mock: format!("http://{mock}"),
            workers,
            masters,
            stop,
            tasks,
            _data: data,
        })
    }

    /// The demo test aimed at the mock, with `over` applied.
    fn test(&self, over: &Overrides) -> Result<TestFile> {
        let mut test = perfornium::config::from_str(TEST)?;
        test.global.base_url = Some(self.mock.clone());
        over.apply(&mut test)?;
        Ok(test)
    }

    /// A client of the demo's cluster.
    fn client(&self) -> ClusterClient {
        ClusterClient::new(self.masters.clone(), None, None)
    }

    /// Submits `test` across the three workers and returns the run id.
    async fn submit(&self, test: TestFile) -> Result<String> {
        let body = Submit {
            test: Some(test),
            test_yaml: None,
            workers: self.workers.clone(),
            strategy: Some(Strategy::Even),
            sync_start: true,
            pool: None,
        };
        Ok(self.client().submit(&body, Duration::from_secs(20)).await?)
    }

    /// Stops everything it started and removes its data directory.
    async fn shutdown(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// Runs the demo: start, submit, show, stop. Returns the last view of the run.
async fn run(over: &Overrides, interactive: bool) -> Result<Option<RunView>> {
    let demo = Demo::start().await?;
    eprintln!("demo: mock target {}", demo.mock);
    eprintln!(
        "demo: workers {}",
        demo.workers
            .iter()
            .map(WorkerAddr::addr)
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!("demo: master replicas {}", demo.masters.join(", "));
    let shown = async {
        let id = demo.submit(demo.test(over)?).await?;
        eprintln!("demo: submitted run {id} (examples/basic.yaml, 3 workers, synchronized start)");
        if interactive {
            Ok(perfornium::console::screen::attach(demo.client(), id).await?)
        } else {
            Ok(perfornium::console::headless(demo.client(), id, Duration::from_secs(2)).await)
        }
    };
    let result = tokio::select! {
        r = shown => r,
        _ = tokio::signal::ctrl_c() => { eprintln!("demo: interrupted"); Ok(None) }
    };
    demo.shutdown().await;
    result
}
