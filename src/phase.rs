//! The states a distributed run and each of its workers go through. They are the vocabulary shared
//! by the run record (what the controller saves), the summary (what reports show), the master API
//! (what consoles read) and the console itself, so they sit below all of them and depend on nothing.

use serde::{Deserialize, Serialize};

/// A run's phase; it only moves forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Submitted,
    Preparing,
    Ready,
    Started,
    Finished,
    Failed,
    Stopped,
}

impl Phase {
    /// True for the phases a run never leaves.
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Finished | Phase::Failed | Phase::Stopped)
    }

    /// The name used on the wire and in logs.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Submitted => "submitted",
            Phase::Preparing => "preparing",
            Phase::Ready => "ready",
            Phase::Started => "started",
            Phase::Finished => "finished",
            Phase::Failed => "failed",
            Phase::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

/// A worker's state within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkerState {
    /// Its share is zero; it takes no part.
    Idle,
    Pending,
    Prepared,
    Started,
    Running,
    Finished,
    Failed,
}

impl WorkerState {
    /// The name used on the wire and in logs.
    pub fn name(self) -> &'static str {
        match self {
            WorkerState::Idle => "idle",
            WorkerState::Pending => "pending",
            WorkerState::Prepared => "prepared",
            WorkerState::Started => "started",
            WorkerState::Running => "running",
            WorkerState::Finished => "finished",
            WorkerState::Failed => "failed",
        }
    }
}

impl std::fmt::Display for WorkerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_the_wire() {
        for p in [
            Phase::Submitted,
            Phase::Preparing,
            Phase::Ready,
            Phase::Started,
            Phase::Finished,
            Phase::Failed,
            Phase::Stopped,
        ] {
            assert_eq!(serde_json::to_string(&p).unwrap(), format!("\"{p}\""));
        }
        for w in [
            WorkerState::Idle,
            WorkerState::Pending,
            WorkerState::Prepared,
            WorkerState::Started,
            WorkerState::Running,
            WorkerState::Finished,
            WorkerState::Failed,
        ] {
            assert_eq!(serde_json::to_string(&w).unwrap(), format!("\"{w}\""));
        }
    }
}
