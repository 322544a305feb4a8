//! The controller side of a distributed run: which workers exist ([`workers`]), how the load is
//! split among them ([`plan`]), their clocks ([`clock`]), and the driver that takes a run from
//! submitted to finished over a [`store::RunStore`] ([`driver`]), and what the record looks like from
//! outside ([`summary`]).

pub mod alerts;
pub mod balance;
pub mod client;
pub mod clock;
pub mod data;
pub mod driver;
pub mod leases;
pub mod logs;
pub mod plan;
pub mod raw;
pub mod redistribute;
pub mod rendezvous;
pub mod rescale;
pub mod run;
pub mod run_hooks;
pub mod storage;
pub mod store;
pub mod stream;
pub mod submit;
pub mod summary;
pub mod transport;
pub mod ts_worker;
pub mod variables;
pub mod workers;
