//! `GET /runs/{id}/stream`: the run's live feed as Server-Sent Events, served by any replica from
//! its own applied copy of the replicated record (never from a driver's memory). Only committed
//! figures are sent, so what a client saw from one replica is exactly what every other replica
//! and the next leader hold; after a leader change the new leader appends the next events to the
//! same numbering. A follower serves the feed itself (no redirect): its copy lags the leader by
//! one raft round trip at most.
//!
//! Each `figures` event has `id:` its sequence number (1, 2, 3...); a client that reconnects with
//! `Last-Event-ID: N` gets the events after N and nothing before. Once the run has a final phase
//! and every event was sent, an `end` event ([`FeedEnd`]) closes the stream.

use super::api::Master;
use super::store::RaftStore;
use crate::api::stream::FeedEnd;
use crate::api::ApiError;
use crate::control::run::RunRecord;
use axum::extract::{FromRef, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use std::convert::Infallible;
use std::time::Duration;

/// Longest wait for a change of the applied state before the record is read again.
const RECHECK: Duration = Duration::from_secs(1);

/// Why a record has no stream, or `None` when it has one.
fn refusal(rec: &RunRecord) -> Option<String> {
    let agg = rec
        .test
        .distributed
        .as_ref()
        .and_then(|d| d.results.as_ref())
        .and_then(|r| r.aggregation.as_ref());
    match agg {
        Some(a) if a.streaming_on() && rec.feed.is_some() => None,
        Some(_) => Some(format!("run `{}` is not streamed: its test has no `distributed.results.aggregation.streaming.enabled: true`", rec.id)),
        None => Some(format!("run `{}` is not streamed: its test has no `distributed.results.aggregation` block (with `streaming.enabled: true`)", rec.id)),
    }
}

impl FromRef<Master> for RaftStore {
    fn from_ref(m: &Master) -> RaftStore {
        m.store.clone()
    }
}

/// The stream alone, over `store`: what `perfornium distributed --stream ADDR` serves from its
/// embedded master.
pub fn router(store: RaftStore) -> axum::Router {
    axum::Router::new()
        .route("/runs/{id}/stream", axum::routing::get(stream))
        .with_state(store)
}

/// Serves [`router`] on `listener` until `stop`, then until the open streams have closed (each
/// sends its `end` once the run's final record is applied); the caller bounds that wait.
pub async fn serve_embedded(
    listener: tokio::net::TcpListener,
    store: RaftStore,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(store))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

/// The handler.
pub async fn stream(
    State(store): State<RaftStore>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(rec) = store.run(&id) else {
        return ApiError::reply(StatusCode::NOT_FOUND, format!("no run `{id}`"));
    };
    if let Some(why) = refusal(&rec) {
        return ApiError::reply(StatusCode::CONFLICT, why);
    }
    let after = match headers
        .get("last-event-id")
        .map(|v| v.to_str().map(str::trim))
    {
        None => 0,
        Some(Ok(v)) => match v.parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                return ApiError::reply(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Last-Event-ID `{v}` is not an event number of this stream (1, 2, 3...)"
                    ),
                )
            }
        },
        Some(Err(_)) => {
            return ApiError::reply(StatusCode::BAD_REQUEST, "Last-Event-ID is not text")
        }
    };
    struct Cursor<W> {
        m: RaftStore,
        id: String,
        sent: u64,
        applied: tokio::sync::watch::Receiver<W>,
        done: bool,
    }
    let cursor = Cursor {
        applied: store.replica.metrics(),
        m: store,
        id,
        sent: after,
        done: false,
    };
    let events = stream::unfold(cursor, |mut c| async move {
        if c.done {
            return None;
        }
        loop {
            let Some(rec) = c.m.run(&c.id) else {
                // The record went away (it cannot today): end the stream.
                return None;
            };
            let feed = rec.feed.as_ref()?;
            let new: Vec<Event> = feed
                .events
                .iter()
                .filter(|e| e.seq > c.sent)
                .map(|e| {
                    Event::default()
                        .event("figures")
                        .id(e.seq.to_string())
                        .json_data(e)
                        .unwrap_or_else(|_| Event::default().comment("unserializable event"))
                })
                .collect();
            if let Some(last) = feed.events.last() {
                c.sent = c.sent.max(last.seq);
            }
            if !new.is_empty() {
                return Some((new, c));
            }
            if rec.phase.is_final() {
                let totals = crate::metrics::collector::merged(&rec.merged_steps());
                let end = FeedEnd {
                    run_id: rec.id.clone(),
                    phase: rec.phase,
                    last_seq: feed.events.last().map_or(0, |e| e.seq),
                    requests: totals.count,
                    errors: totals.errors,
                };
                c.done = true;
                let ev = Event::default()
                    .event("end")
                    .json_data(&end)
                    .unwrap_or_else(|_| Event::default().event("end"));
                return Some((vec![ev], c));
            }
            // Wait for the next applied entry (or re-read after a while).
            let _ = tokio::time::timeout(RECHECK, c.applied.changed()).await;
        }
    })
    .flat_map(|batch| stream::iter(batch.into_iter().map(Ok::<_, Infallible>)));
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
