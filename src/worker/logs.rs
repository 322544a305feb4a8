//! Central logs, the worker's half: a `tracing` layer that copies this process's records into a
//! bounded buffer while a run with `distributed.logging.centralized` is here, and hands them out on
//! the controller's next pull (`GET /metrics`). Workers never connect to their controller, so logs
//! travel the way batches do. The buffer keeps at most [`CAPACITY`] records; when the controller
//! pulls too slowly the newest are dropped and counted, and the count travels with the pull.
//!
//! Only Perfornium's own events are looked at (the layer's static filter), so a load run's hot
//! path does not start building events for every `debug!` of hyper or reqwest.

use crate::api::worker::LogRecord;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::Level;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The most records kept between two pulls.
pub const CAPACITY: usize = 10_000;

struct Capture {
    run_id: String,
    source: String,
    level: Level,
    buf: VecDeque<LogRecord>,
    dropped: u64,
}

static CAPTURE: Mutex<Option<Capture>> = Mutex::new(None);

/// The least severe level captured now (1 = error ... 5 = trace; 0 = nothing): read lock-free on
/// every event, so a worker with no central log pays one atomic load per Perfornium event.
static LEVEL: AtomicU8 = AtomicU8::new(0);

fn rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 1,
        Level::WARN => 2,
        Level::INFO => 3,
        Level::DEBUG => 4,
        Level::TRACE => 5,
    }
}

fn lock() -> std::sync::MutexGuard<'static, Option<Capture>> {
    match CAPTURE.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// Starts keeping records for `run_id` at `level` and above, named `source` (this worker's
/// address in the run); any earlier run's undelivered records are dropped.
pub fn start(run_id: &str, source: &str, level: Level) {
    *lock() = Some(Capture {
        run_id: run_id.into(),
        source: source.into(),
        level,
        buf: VecDeque::new(),
        dropped: 0,
    });
    LEVEL.store(rank(&level), Ordering::Relaxed);
}

/// The records of `run_id` kept since the last call, and how many were dropped since the run began.
pub fn drain(run_id: &str) -> (Vec<LogRecord>, u64) {
    let mut g = lock();
    match g.as_mut() {
        Some(c) if c.run_id == run_id => (c.buf.drain(..).collect(), c.dropped),
        _ => (Vec::new(), 0),
    }
}

/// The layer to install beside the process's own log output (see `cli/logs.rs`).
pub fn layer<S>() -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    use tracing_subscriber::filter::FilterExt as _;
    // Static: only Perfornium's callsites, up to debug; dynamic: only while a run captures.
    let now = tracing_subscriber::filter::filter_fn(|meta| {
        rank(meta.level()) <= LEVEL.load(Ordering::Relaxed)
    });
    Copier.with_filter(
        Targets::new()
            .with_target("perfornium", LevelFilter::DEBUG)
            .and(now),
    )
}

struct Copier;

#[derive(Default)]
struct Fields {
    message: String,
    fields: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.message = match value {
                serde_json::Value::String(s) => s,
                v => v.to_string(),
            };
        } else {
            self.fields.insert(field.name().into(), value);
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for Copier {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut g = lock();
        let Some(c) = g.as_mut() else { return };
        // `Level` orders by verbosity: ERROR < WARN < ... < TRACE.
        if *meta.level() > c.level {
            return;
        }
        if c.buf.len() >= CAPACITY {
            c.dropped += 1;
            return;
        }
        let mut f = Fields::default();
        event.record(&mut f);
        c.buf.push_back(LogRecord {
            ts_ms: crate::time::precise_now_ms(),
            level: meta.level().as_str().to_ascii_lowercase(),
            source: c.source.clone(),
            target: meta.target().into(),
            message: f.message,
            run_id: c.run_id.clone(),
            fields: f.fields,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn records_at_the_level_are_kept_until_drained_and_overflow_is_counted() {
        let sub = tracing_subscriber::registry().with(layer());
        tracing::subscriber::with_default(sub, || {
            start("run-1", "w:1", Level::INFO);
            tracing::info!(step = 3, "kept");
            tracing::debug!("below the level");
            let (logs, dropped) = drain("run-1");
            assert_eq!(logs.len(), 1, "{logs:?}");
            assert_eq!(logs[0].message, "kept");
            assert_eq!(logs[0].run_id, "run-1");
            assert_eq!(logs[0].fields["step"], 3);
            assert_eq!(dropped, 0);
            assert!(drain("run-1").0.is_empty(), "handed out once");
            assert!(drain("other").0.is_empty());
            for _ in 0..CAPACITY + 5 {
                tracing::warn!("flood");
            }
            let (logs, dropped) = drain("run-1");
            assert_eq!((logs.len(), dropped), (CAPACITY, 5));
        });
        *lock() = None;
        LEVEL.store(0, Ordering::Relaxed);
    }
}
