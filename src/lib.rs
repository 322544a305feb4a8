//! Perfornium: a distributed HTTP load tester.
//!
//! Data flows one way: a test file ([`config`]) becomes virtual users on tokio ([`engine`]), whose
//! samples land in HDR histograms ([`metrics`]), which are summarized and checked against thresholds
//! ([`report`]). [`mock`] is the small target API used by the demo and the tests.

pub mod config;
pub mod console;
pub mod control;
pub mod demo;
pub mod distributed;
pub mod engine;
pub mod guard;
pub mod local;
pub mod master;
pub mod metrics;
pub mod mock;
pub mod report;
pub mod tls;
pub mod worker;
