//! End-to-end tests of the replicated master: three `perfornium master` processes with workers and
//! the mock (forwarding, failover, restarts, the console), faults injected with SIGSTOP, SIGKILL and
//! damaged data directories, TLS and mutual TLS, and access control.

#[path = "../support/mod.rs"]
mod support;

mod capacity_replan;
mod console_tmux;
mod dashboard;
mod data_consistency;
mod exactly_once;
mod least_loaded;
mod live_control;
mod logs;
mod master;
mod monitoring;
mod raw_data;
mod registry;
mod registry_mtls;
mod replacement;
mod retention;
mod robustness;
mod save_cadence;
mod scripting;
mod security;
mod seed_distribution;
mod seed_fault_tolerance;
// libtest starts tests in name order, two at a time: the 90 s soak is named to start first, so it
// runs beside the rest of the binary instead of alone at its end.
#[path = "soak.rs"]
mod background_soak;
mod state;
mod state_raft;
mod storage;
mod stream;
mod test_hooks_distributed;
mod tls;
mod transports;
mod ts_interop;
