//! Benchmarks, run by hand: every test here is `#[ignore]`d, so `cargo test` builds them (they keep
//! compiling) without running them. Each writes its results under `bench/results/`:
//!
//! ```sh
//! cargo test --release --test bench -- --ignored --nocapture --test-threads 1
//! ```

#[path = "../support/mod.rs"]
mod support;

mod distributed;
mod failover;
