//! Benchmarks, run by hand: the full benchmarks are `#[ignore]`d, so `cargo test` builds them (they
//! keep compiling) and runs only their CI-sized versions, whose thresholds turn a regression into a
//! failed CI run. Each full benchmark writes its results under `bench/results/`:
//!
//! ```sh
//! cargo test --release --test bench -- --ignored --nocapture --test-threads 1
//! ```

#[path = "../support/mod.rs"]
mod support;

mod controller;
mod distributed;
mod failover;
mod many_vus;
mod raw_data;
mod scale;
mod scripting;
mod transports;
