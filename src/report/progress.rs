//! The one-line progress display on stderr while a run goes on.

use crate::metrics::collector::Live;
use tokio::sync::watch;

/// Formats one progress line.
pub fn line(l: &Live) -> String {
    format!(
        "[{:>5.0}s] vus {:>5}  requests {:>9}  rps {:>8.1}  errors {:>6}  p95 {:>8.2}ms{}",
        l.elapsed_s,
        l.active_vus,
        l.requests,
        l.rps,
        l.errors,
        l.p95_ms,
        if l.dropped > 0 {
            format!("  dropped {}", l.dropped)
        } else {
            String::new()
        }
    )
}

/// Prints a line each time the live view changes, until the sender goes away.
pub async fn print(mut rx: watch::Receiver<Live>) {
    while rx.changed().await.is_ok() {
        let l = rx.borrow_and_update().clone();
        eprintln!("{}", line(&l));
    }
}
