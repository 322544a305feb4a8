//! The operator console's screen: a [`Model`] of what the console knows (cluster, run, workers,
//! live percentiles, each worker's own figures), a pure [`render`] of it with ratatui (the main
//! screen, one worker's own view, the topology: see [`Screen`]), and [`handle_key`]. There is no
//! networking here, so tests build a model and render it into ratatui's `TestBackend`; the
//! `perfornium` binary fills the model from the master API and owns the terminal.

mod keys;
mod model;
mod render;
mod views;

pub use keys::{handle_key, Action};
pub use model::{
    Model, Pane, Pending, RegionRow, Replica, ResourceRow, Run, Screen, StepRow, TimePoint, Views,
    WorkerDetail, WorkerRow, WorkerSecond,
};
pub use ratatui;
pub use render::render;
