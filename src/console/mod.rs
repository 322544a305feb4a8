//! `perfornium console`: attaches to whichever master replica leads, optionally submits a run, and
//! follows it to the end across leader changes. This module is the data side (cluster client and
//! the headless `--no-tui` mode for CI); the screen lives in the `perfornium-tui` crate.

pub mod client;
pub mod screen;

use crate::master::api::{RunView, Submit};
use crate::report;
use client::{ClusterClient, LeaderInfo};
use std::time::Duration;

/// How a console session ended, as an exit code: 0 passed, 1 a threshold failed, 2 the run failed.
pub fn exit_code(view: &RunView) -> u8 {
    match view.phase.as_str() {
        "finished" if view.summary.passed => 0,
        "finished" => 1,
        _ => 2,
    }
}

/// Picks the run to follow: the submitted one, else the newest unfinished one, else the newest.
pub async fn pick_run(
    client: &mut ClusterClient,
    submit: Option<Submit>,
) -> anyhow::Result<String> {
    if let Some(body) = submit {
        return Ok(client.submit(&body, Duration::from_secs(20)).await?);
    }
    let runs = client.runs().await?;
    runs.iter()
        .rev()
        .find(|r| r.finished_ms.is_none())
        .or(runs.last())
        .map(|r| r.id.clone())
        .ok_or_else(|| {
            anyhow::anyhow!("the cluster has no runs yet; give a test file to submit one")
        })
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
                leader = Some(l);
            }
        }
        match client.run(&run_id).await {
            Ok(view) => {
                unreachable_since = None;
                eprintln!("{} {}", view.phase, report::progress::line(&view.live));
                if matches!(view.phase.as_str(), "finished" | "failed" | "stopped") {
                    return Some(view);
                }
            }
            Err(e) => {
                let since = *unreachable_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > Duration::from_secs(30) {
                    eprintln!("error: {e}");
                    return None;
                }
            }
        }
        tokio::time::sleep(every).await;
    }
}
