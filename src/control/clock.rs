//! Clock offsets between the controller and a worker, estimated from request round trips as NTP
//! does: a sample is (sent, worker's now, received); the worker's clock minus the midpoint is the
//! offset, and the sample with the smallest round trip bounds the error best (±RTT/2).

use super::client::{CallError, WorkerClient};
use crate::time::precise_now_ms;
use serde::{Deserialize, Serialize};

/// A worker's clock relative to the controller's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Offset {
    /// Worker clock minus controller clock, in ms.
    pub offset_ms: f64,
    /// Round trip of the sample used; the estimate is good to ±rtt/2.
    pub rtt_ms: f64,
}

/// Picks the lowest-RTT sample of `(sent_ms, worker_now_ms, received_ms)`.
pub fn best(samples: &[(f64, f64, f64)]) -> Option<Offset> {
    samples
        .iter()
        .map(|&(t0, w, t1)| Offset {
            offset_ms: w - (t0 + t1) / 2.0,
            rtt_ms: t1 - t0,
        })
        .min_by(|a, b| a.rtt_ms.total_cmp(&b.rtt_ms))
}

/// Measures `n` samples against `worker`'s `/health`.
pub async fn estimate(worker: &WorkerClient, n: usize) -> Result<Offset, CallError> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = precise_now_ms();
        let h = worker.health().await?;
        let t1 = precise_now_ms();
        samples.push((t0, h.now_ms, t1));
    }
    Ok(best(&samples).expect("n > 0 samples"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_lowest_rtt_sample() {
        // Worker clock is 500 ms ahead; the second sample had the shortest round trip.
        let s = [
            (0.0, 530.0, 40.0),
            (100.0, 601.0, 102.0),
            (200.0, 750.0, 300.0),
        ];
        let o = best(&s).unwrap();
        assert_eq!(o.rtt_ms, 2.0);
        assert_eq!(o.offset_ms, 500.0);
        assert!(best(&[]).is_none());
    }
}
