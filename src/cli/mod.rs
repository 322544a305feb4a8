//! The command line: one clap [`Cli`], one file per subcommand, the argument groups they share
//! ([`args`]), and what every command needs at its edge (logging, Ctrl-C, writing results). The
//! commands hold no logic of their own beyond wiring: they parse, call the library, and turn its
//! outcome into an exit code (0 passed, 1 a threshold failed, 2 the run failed or could not happen).

pub mod args;
mod console;
mod dashboard;
mod demo;
mod distributed;
mod import;
mod init;
mod logs;
mod master;
mod mock;
mod output;
mod report;
mod run;
mod shutdown;
mod validate;
mod worker;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// `perfornium`: distributed HTTP load testing with a replicated master.
#[derive(Parser)]
#[command(
    name = "perfornium",
    version,
    about = "Distributed HTTP load testing with a replicated master"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    logs: logs::LogArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run a test in this process.
    Run(run::RunArgs),
    /// Check a test file and print "ok" or what is wrong, with file:line:column.
    Validate(validate::ValidateArgs),
    /// Serve the demo/test target API.
    Mock(mock::MockArgs),
    /// The embedded default: mock, 3 workers and 3 master replicas on loopback, one example run, the console.
    Demo(demo::DemoArgs),
    /// Turn saved results (our summary.json, the TypeScript tool's JSON or CSV) into an HTML report.
    Report(report::ReportArgs),
    /// Serve the worker API (pull-based: the controller calls it).
    Worker(worker::WorkerArgs),
    /// One replica of the HA master cluster (openraft + sled).
    Master(master::MasterArgs),
    /// Attach to the master cluster's leader; optionally submit a run; follow it to the end.
    Console(console::ConsoleArgs),
    /// Run a test across workers, driven from this process.
    Distributed(distributed::DistributedArgs),
    /// Create a new test project (tests, environments, data, payloads, workers.json, README).
    Init(init::InitArgs),
    /// Generate a test from an OpenAPI 3 document, a HAR recording or a WSDL.
    #[command(subcommand)]
    Import(import::ImportCommand),
    /// Serve the web dashboard: a master cluster's runs (--master), or saved results (-r DIR).
    Dashboard(dashboard::DashboardArgs),
}

impl Command {
    /// True when the command takes over the terminal (its screen would be broken by log lines).
    fn shows_tui(&self) -> bool {
        match self {
            Command::Demo(a) => a.screen.tui(),
            Command::Console(a) => a.drive.screen.tui(),
            Command::Distributed(a) => a.drive.screen.tui(),
            _ => false,
        }
    }
}

/// Parses the command line, runs the command on a tokio runtime, and maps errors to exit code 2.
pub fn main() -> ExitCode {
    let cli = match role_from_env() {
        Ok(Some(argv)) => Cli::parse_from(argv),
        Ok(None) => Cli::parse(),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = cli.logs.init(cli.command.shows_tui()) {
        eprintln!("error: {e:#}");
        return ExitCode::from(2);
    }
    // Every VU holds its own connection: take the most file descriptors the system allows.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::debug!(nofile = n, "open-file limit"),
        Err(e) => tracing::warn!("could not raise the open-file limit: {e}"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let outcome = runtime.block_on(async move {
        match cli.command {
            Command::Run(a) => a.run().await,
            Command::Validate(a) => Ok(a.run()),
            Command::Mock(a) => a.run().await,
            Command::Demo(a) => a.run().await,
            Command::Report(a) => a.run(),
            Command::Worker(a) => a.run().await,
            Command::Master(a) => a.run().await,
            Command::Console(a) => a.run().await,
            Command::Distributed(a) => a.run().await,
            Command::Init(a) => a.run(),
            Command::Import(a) => a.run(),
            Command::Dashboard(a) => a.run().await,
        }
    });
    match outcome {
        Ok(code) => code,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `perfornium` with no arguments and `PERFORNIUM_MODE` set: the command line the mode stands for,
/// as containers start it (the seed's Kubernetes and Docker Compose examples).
///
/// - `master`: `perfornium master --config $PERFORNIUM_CONFIG` (the file's `coordinator` gives the
///   address; `PERFORNIUM_ID`/`PERFORNIUM_PEERS`/`PERFORNIUM_DATA` the rest of a replicated cluster);
/// - `worker`: `perfornium worker --host 0.0.0.0 [--config $PERFORNIUM_CONFIG]` (a container serves
///   all interfaces; `MASTER_HOST` and `WORKER_ID` are read as `--master` and `--id`);
/// - `standalone`: `perfornium run $PERFORNIUM_CONFIG`: the test file runs in this one process,
///   no workers and no master.
///
/// With arguments, `PERFORNIUM_MODE` is not read (the command line says what to do).
fn role_from_env() -> Result<Option<Vec<String>>, String> {
    if std::env::args_os().len() > 1 {
        return Ok(None);
    }
    let Some(mode) = std::env::var("PERFORNIUM_MODE")
        .ok()
        .filter(|m| !m.is_empty())
    else {
        return Ok(None);
    };
    let mode: perfornium::config::cluster::Mode =
        mode.parse().map_err(|e| format!("PERFORNIUM_MODE: {e}"))?;
    let config = std::env::var("PERFORNIUM_CONFIG")
        .ok()
        .filter(|c| !c.is_empty());
    Ok(Some(argv_for(mode, config)?))
}

/// The command line of a role (see [`role_from_env`]).
fn argv_for(
    mode: perfornium::config::cluster::Mode,
    config: Option<String>,
) -> Result<Vec<String>, String> {
    use perfornium::config::cluster::Mode;
    let mut argv = vec!["perfornium".to_string()];
    match (mode, config) {
        (Mode::Master, Some(c)) => argv.extend(["master".into(), "--config".into(), c]),
        (Mode::Master, None) => {
            return Err("PERFORNIUM_MODE=master needs PERFORNIUM_CONFIG: a file with distributed.coordinator (where the master listens)".into())
        }
        (Mode::Worker, c) => {
            argv.extend(["worker".into(), "--host".into(), "0.0.0.0".into()]);
            if let Some(c) = c {
                argv.extend(["--config".into(), c]);
            }
        }
        (Mode::Standalone, Some(c)) => argv.extend(["run".into(), c]),
        (Mode::Standalone, None) => {
            return Err("PERFORNIUM_MODE=standalone needs PERFORNIUM_CONFIG: the test file to run in this process".into())
        }
    }
    Ok(argv)
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_mode_stands_for_a_command_line() {
        use perfornium::config::cluster::Mode;
        let a = super::argv_for(Mode::Worker, None).unwrap();
        assert_eq!(a[1..], ["worker", "--host", "0.0.0.0"]);
        let a = super::argv_for(Mode::Master, Some("/c.yml".into())).unwrap();
        assert_eq!(a[1..], ["master", "--config", "/c.yml"]);
        let a = super::argv_for(Mode::Standalone, Some("t.yml".into())).unwrap();
        assert_eq!(a[1..], ["run", "t.yml"]);
        assert!(super::argv_for(Mode::Master, None).is_err());
        for a in [
            super::argv_for(Mode::Worker, Some("/w.yml".into())).unwrap(),
            super::argv_for(Mode::Master, Some("/m.yml".into())).unwrap(),
        ] {
            use clap::Parser;
            super::Cli::try_parse_from(a).expect("the argv parses");
        }
    }

    /// Every subcommand's flags are consistent (no two flags share a short name, global flags
    /// included): clap checks this only when a command is built, so check them all here.
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
