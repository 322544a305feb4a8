//! End-to-end tests of the replicated master: three `perfornium master` processes with workers and
//! the mock (forwarding, failover, restarts, the console), faults injected with SIGSTOP, SIGKILL and
//! damaged data directories, TLS and mutual TLS, and access control.

#[path = "../support/mod.rs"]
mod support;

mod console_tmux;
mod dashboard;
mod data_consistency;
mod exactly_once;
mod live_control;
mod logs;
mod master;
mod monitoring;
mod raw_data;
mod registry;
mod replacement;
mod retention;
mod robustness;
mod scripting;
mod security;
mod seed_distribution;
mod seed_fault_tolerance;
mod soak;
mod state;
mod state_raft;
mod storage;
mod stream;
mod tls;
mod transports;
mod ts_interop;
