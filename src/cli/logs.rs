//! Structured logs for every command, through `tracing`: `RUST_LOG`-style filters
//! (`RUST_LOG=perfornium=debug,openraft=info`), `--log-format text|json`, always on stderr so stdout
//! stays the summary. Long-running roles (master, worker) log at `info` by default: elections, runs
//! started and finished, worker failures, redistribution, refused requests, each line about a run
//! carrying its `run_id`. While a console owns the terminal, logs are off unless `RUST_LOG`, `-v` or `-d` asks.

use clap::{Args, ValueEnum};
use std::io::IsTerminal as _;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line (for log shippers), with the run id in the event's span fields.
    Json,
}

/// The logging flags every command takes.
#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// How log lines on stderr look.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Every crate's events at info (openraft's included), as the TypeScript tool's `-v`.
    #[arg(short = 'v', long, global = true)]
    verbose: bool,
    /// Perfornium's own events at debug, others at info, as the TypeScript tool's `-d`.
    #[arg(short = 'd', long, global = true)]
    debug: bool,
}

/// The filter when `RUST_LOG` is not set: our own events at info; openraft's warnings and errors
/// (unreachable peers, storage faults). openraft's info level dumps whole raft states at every
/// election, so it is there only when asked for (`RUST_LOG=info`); our `elected leader` and
/// `raft role` lines report elections in one line each.
const DEFAULT_FILTER: &str = "info,openraft=warn";

/// Replaces the installed filter (set by `init` when no `RUST_LOG` fixed it).
type Reload = Box<dyn Fn(EnvFilter) + Send + Sync>;
static RELOAD: std::sync::OnceLock<Reload> = std::sync::OnceLock::new();

/// A test's `debug.log_level` (debug, info, warn, error) for Perfornium's own events, unless
/// `RUST_LOG` set the filter (it wins) or a console owns the terminal.
pub fn set_test_level(level: &str) {
    if let Some(reload) = RELOAD.get() {
        reload(EnvFilter::new(format!("{level},openraft=warn")));
    }
}

impl LogArgs {
    /// Installs the global subscriber. `tui`: a console will own the terminal.
    pub fn init(&self, tui: bool) -> anyhow::Result<()> {
        let mut fixed = true;
        let filter = match std::env::var("RUST_LOG") {
            Ok(f) if !f.trim().is_empty() => EnvFilter::try_new(&f)
                .map_err(|e| anyhow::anyhow!("RUST_LOG `{f}` is not a valid filter: {e}"))?,
            // The command line's level is fixed: a test's `debug.log_level` does not lower it,
            // and like `RUST_LOG` it is shown even while a console owns the terminal.
            _ if self.debug => EnvFilter::new("info,perfornium=debug"),
            _ if self.verbose => EnvFilter::new("info"),
            _ if tui => EnvFilter::new("off"),
            _ => {
                fixed = false;
                EnvFilter::new(DEFAULT_FILTER)
            }
        };
        use tracing_subscriber::layer::SubscriberExt as _;
        use tracing_subscriber::util::SubscriberInitExt as _;
        use tracing_subscriber::Layer as _;
        // The filter governs stderr only, so a run's `logging.log_levels.workers` can ship records
        // (through the worker's capture layer) that this process does not print.
        let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
        if !fixed {
            let _ = RELOAD.set(Box::new(move |f| {
                let _ = handle.reload(f);
            }));
        }
        let fmt = tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            // A closed stderr (a supervisor that stopped reading) must not take the process down:
            // by default the subscriber reports a failed write with `eprintln!`, which panics then.
            .log_internal_errors(false)
            .with_writer(std::io::stderr);
        let fmt = match self.log_format {
            LogFormat::Text => fmt.with_filter(filter).boxed(),
            LogFormat::Json => fmt
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_filter(filter)
                .boxed(),
        };
        let installed = tracing_subscriber::registry()
            .with(fmt)
            // `distributed.logging.centralized`: a worker's records of a run, for its controller.
            .with(perfornium::worker::logs::layer())
            .try_init();
        installed.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))
    }
}
