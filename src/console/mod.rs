//! `perfornium console`: attaches to whichever master replica leads, optionally submits a run, and
//! follows it to the end across leader changes. This module is the data side (cluster client and
//! the headless `--no-tui` mode for CI); the screen lives in the `perfornium-tui` crate.

pub mod client;
pub mod screen;

use crate::api::master::{RunView, Submit};
use crate::phase::Phase;
use crate::report;
use client::{ClusterClient, ClusterError, LeaderInfo};
use std::time::Duration;
use tracing::{info, warn};

/// How a console session ended, as an exit code: 0 passed, 1 a threshold failed, 2 the run failed.
pub fn exit_code(view: &RunView) -> u8 {
    match view.phase {
        Phase::Finished if view.summary.passed => 0,
        Phase::Finished => 1,
        _ => 2,
    }
}

/// Picks the run to follow: the submitted one, else the newest unfinished one, else the newest.
pub async fn pick_run(
    client: &mut ClusterClient,
    submit: Option<Submit>,
    patience: Duration,
) -> Result<String, ClusterError> {
    if let Some(body) = submit {
        let id = client.submit(&body, patience).await?;
        info!(run_id = %id, "run submitted");
        return Ok(id);
    }
    let runs = client.runs().await?;
    runs.iter()
        .rev()
        .find(|r| r.finished_ms.is_none())
        .or(runs.last())
        .map(|r| r.id.clone())
        .ok_or(ClusterError::NoRuns)
}

/// Headless mode: a progress line every `every` and leader changes on stderr, until the run ends.
/// Returns its final view, or `None` when the cluster stayed unreachable for 30 s.
pub async fn headless(
    mut client: ClusterClient,
    run_id: String,
    every: Duration,
) -> Option<RunView> {
    let mut leader: Option<LeaderInfo> = None;
    let mut unreachable_since: Option<tokio::time::Instant> = None;
    loop {
        if let Ok(l) = client.find_leader().await {
            if leader.as_ref() != Some(&l) {
                let change = if leader.is_some() {
                    " (leader changed)"
                } else {
                    ""
                };
                eprintln!("leader: node {} (term {}){change}", l.id, l.term);
                if leader.is_none() {
                    if let Some(line) = client.pool().await.as_deref().and_then(pool_line) {
                        eprintln!("{line}");
                    }
                }
                info!(run_id = %run_id, leader = l.id, term = l.term, addr = %l.addr, changed = leader.is_some(), "leader");
                leader = Some(l);
            }
        }
        match client.run(&run_id).await {
            Ok(view) => {
                unreachable_since = None;
                eprintln!("{} {}", view.phase, report::progress::line(&view.live));
                if view.phase.is_final() {
                    info!(run_id = %run_id, phase = %view.phase, requests = view.summary.overall.count, "run ended");
                    return Some(view);
                }
            }
            Err(e) => {
                let since = *unreachable_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > Duration::from_secs(30) {
                    warn!(run_id = %run_id, "cluster unreachable for 30 s: {e}");
                    eprintln!("error: {e}");
                    return None;
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// "pool: 2 up (w-a, w-b), 1 down (w-c)", or nothing when no worker ever registered.
pub fn pool_line(pool: &[crate::api::pool::PoolWorker]) -> Option<String> {
    use crate::api::pool::Lease;
    if pool.is_empty() {
        return None;
    }
    let ids = |h: Lease| -> Vec<&str> {
        pool.iter()
            .filter(|w| w.health == h)
            .map(|w| w.registration.id.as_str())
            .collect()
    };
    let (up, down) = (ids(Lease::Up), ids(Lease::Down));
    let mut line = format!("pool: {} up ({})", up.len(), up.join(", "));
    if !down.is_empty() {
        line.push_str(&format!(", {} down ({})", down.len(), down.join(", ")));
    }
    Some(line)
}
