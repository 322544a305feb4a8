//! Perfornium: a distributed HTTP load tester.
//!
//! # Layout
//!
//! Data flows one way, and so do the imports (a test in `src/lib.rs` checks the graph has no cycle):
//!
//! - [`config`]: the test file (YAML) → a checked [`config::TestFile`], with file:line errors.
//! - [`metrics`]: HDR histograms per step and per-second intervals, merged exactly.
//! - [`engine`]: virtual users on tokio that run a test and record into [`metrics`].
//! - [`report`]: the run summary, thresholds' verdicts, text, JSON, JUnit and HTML.
//! - [`outputs`]: the test file's `outputs:` (files, InfluxDB, Graphite, a webhook) and `report:`.
//! - [`api`]: the wire contract of the worker API and the master API (types only).
//! - [`control`]: distributed runs: plan, clocks, the run record and the driver that advances it.
//! - At the edges, each serving or calling over the network: [`worker`] (the worker API around the
//!   engine), [`master`] (one replica of the HA master: raft store, API, leader supervision),
//!   [`console`] (the cluster client and the terminal UI), [`mock`] (the demo target), and
//!   [`local`] (a run in this process).
//! - Below everything: [`time`] (clock readings), [`phase`] (run and worker states), [`tls`] and
//!   [`guard`] (who may call).
//! - Test files written for the user: [`scaffold`] (`perfornium init`) and [`import`] (OpenAPI, HAR
//!   and WSDL turned into tests), checked by [`config`] like any other.
//!
//! The command line (`src/cli/`, in the binary) parses flags and calls into these modules.

pub mod api;
pub mod config;
pub mod console;
pub mod control;
pub mod engine;
pub mod guard;
pub mod import;
pub mod local;
pub mod master;
pub mod metrics;
pub mod mock;
pub mod outputs;
pub mod phase;
pub mod report;
pub mod scaffold;
pub mod script;
pub mod time;
pub mod tls;
pub mod worker;
