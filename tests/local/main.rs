//! The import graph of `src/` (architecture), and end-to-end tests of what runs without a master:
//! `perfornium run`, `validate`, `report` and `demo`, workers driven by `perfornium distributed`,
//! the deployment files, and hostile input thrown at the routers in process.
//!
//! One binary, so the crate is linked once and the tests share the two cores; the master cluster's
//! tests are in `tests/cluster`, the benchmarks in `tests/bench`.

#[path = "../support/mod.rs"]
mod support;

mod architecture;
mod arrival_rate;
mod demo;
mod deploy;
mod distributed;
mod engine;
mod format;
mod fuzz;
mod import;
mod init;
mod memory;
mod outputs;
mod protocols;
mod raw_data;
mod report;
mod scripting;
mod scripting_hooks;
mod seed_blocks;
mod stop_in_flight;
mod templating;
mod test_hooks;
mod test_sockets;
mod thresholds_custom;
