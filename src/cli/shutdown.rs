//! The one place Ctrl-C is handled: a token that is cancelled on the first Ctrl-C, which every
//! command hands down to what it runs (the engine, a server, a driver) so they stop cleanly —
//! requests in flight finish and are counted, servers drain, raft shuts down.

use tokio_util::sync::CancellationToken;

/// A token cancelled at the first Ctrl-C, saying `why` on stderr when it is.
pub fn on_ctrl_c(why: &'static str) -> CancellationToken {
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("Ctrl-C: {why}");
            eprintln!("{why}");
            s.cancel();
        }
    });
    stop
}
