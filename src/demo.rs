//! `perfornium demo`: the embedded default a newcomer runs first. In this one process it starts the
//! mock target, three workers and three master replicas on loopback (ports from the OS, a temporary
//! data directory), submits `examples/basic.yaml` (embedded) to the cluster like a console would,
//! and shows the run in the console (headless progress when there is no terminal). Everything is
//! stopped and the data directory removed on exit or Ctrl-C.

use crate::config::{Overrides, TestFile};
use crate::console::client::ClusterClient;
use crate::control::plan::Strategy;
use crate::control::workers::WorkerAddr;
use crate::master::api::{RunView, Submit};
use crate::master::MasterConfig;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The example the demo runs.
pub const TEST: &str = include_str!("../examples/basic.yaml");

/// Everything the demo started, stopped by [`Demo::shutdown`].
pub struct Demo {
    pub mock: String,
    pub workers: Vec<WorkerAddr>,
    pub masters: Vec<String>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
    _data: tempfile::TempDir,
}

async fn bind() -> anyhow::Result<(TcpListener, String)> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    let addr = l.local_addr()?.to_string();
    Ok((l, addr))
}

impl Demo {
    /// Starts the mock, three workers and three master replicas.
    pub async fn start() -> anyhow::Result<Demo> {
        let stop = CancellationToken::new();
        let data = tempfile::Builder::new()
            .prefix("perfornium-demo-")
            .tempdir()?;
        let mut tasks = Vec::new();
        let (l, mock) = bind().await?;
        let s = stop.clone();
        tasks.push(tokio::spawn(async move {
            let _ = crate::mock::serve(l, Duration::from_millis(2), None, s).await;
        }));
        let mut workers = Vec::new();
        for _ in 0..3 {
            let (l, addr) = bind().await?;
            let s = stop.clone();
            tasks.push(tokio::spawn(async move {
                let _ = crate::worker::serve(l, Default::default(), s).await;
            }));
            let (host, port) = addr.rsplit_once(':').expect("a socket address has a port");
            workers.push(WorkerAddr {
                host: host.into(),
                port: port.parse()?,
                capacity: 100,
                region: "default".into(),
            });
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
            };
            let s = stop.clone();
            tasks.push(tokio::spawn(async move {
                if let Err(e) = crate::master::serve(cfg, l, s).await {
                    eprintln!("demo: master stopped: {e:#}");
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
    pub fn test(&self, over: &Overrides) -> anyhow::Result<TestFile> {
        let mut test = crate::config::from_str(TEST)?;
        test.global.base_url = Some(self.mock.clone());
        over.apply(&mut test).map_err(anyhow::Error::msg)?;
        Ok(test)
    }

    /// A client of the demo's cluster.
    pub fn client(&self) -> ClusterClient {
        ClusterClient::new(self.masters.clone(), None, None)
    }

    /// Submits `test` across the three workers and returns the run id.
    pub async fn submit(&self, test: TestFile) -> anyhow::Result<String> {
        let body = Submit {
            test: Some(test),
            test_yaml: None,
            workers: self.workers.clone(),
            strategy: Strategy::Even,
            sync_start: true,
        };
        Ok(self.client().submit(&body, Duration::from_secs(20)).await?)
    }

    /// Stops everything it started and removes its data directory.
    pub async fn shutdown(self) {
        self.stop.cancel();
        for t in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }
}

/// Runs the demo: start, submit, show, stop. Returns the last view of the run.
pub async fn run(over: &Overrides, interactive: bool) -> anyhow::Result<Option<RunView>> {
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
            crate::console::screen::attach(demo.client(), id).await
        } else {
            Ok(crate::console::headless(demo.client(), id, Duration::from_secs(2)).await)
        }
    };
    let result = tokio::select! {
        r = shown => r,
        _ = tokio::signal::ctrl_c() => { eprintln!("demo: interrupted"); Ok(None) }
    };
    demo.shutdown().await;
    result
}
