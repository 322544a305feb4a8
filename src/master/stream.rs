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
use crate::api::stream::{FeedEnd, FeedMessage};
use crate::api::ApiError;
use crate::config::results::StreamProtocol;
use crate::control::run::RunRecord;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, BoxStream, StreamExt};
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

/// `?last_event_id=N`: the resume point for WebSocket clients, which cannot set headers.
#[derive(serde::Deserialize)]
pub struct Resume {
    last_event_id: Option<String>,
}

/// The run's streaming protocol (`sse` unless the test says `websocket`).
fn protocol(rec: &RunRecord) -> StreamProtocol {
    rec.test
        .distributed
        .as_ref()
        .and_then(|d| d.results.as_ref())
        .and_then(|r| r.aggregation.as_ref())
        .and_then(|a| a.streaming.as_ref())
        .and_then(|s| s.protocol)
        .unwrap_or(StreamProtocol::Sse)
}

/// The handler: Server-Sent Events, or a WebSocket when the test's protocol is `websocket` (the
/// same messages, each a JSON text frame [`FeedMessage`]).
pub async fn stream(
    State(store): State<RaftStore>,
    Path(id): Path<String>,
    Query(resume): Query<Resume>,
    req: axum::extract::Request,
) -> Response {
    let Some(rec) = store.run(&id) else {
        return ApiError::reply(StatusCode::NOT_FOUND, format!("no run `{id}`"));
    };
    if let Some(why) = refusal(&rec) {
        return ApiError::reply(StatusCode::CONFLICT, why);
    }
    let (mut parts, _) = req.into_parts();
    let after = match last_event_id(&parts.headers, resume.last_event_id.as_deref()) {
        Ok(n) => n,
        Err(why) => return ApiError::reply(StatusCode::BAD_REQUEST, why),
    };
    let upgrade = parts
        .headers
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    match (protocol(&rec), upgrade) {
        (StreamProtocol::Sse, false) => {
            let events = messages(store, id, after).map(|m| Ok::<_, Infallible>(sse_event(&m)));
            Sse::new(events)
                .keep_alive(KeepAlive::default())
                .into_response()
        }
        (StreamProtocol::Websocket, true) => {
            match WebSocketUpgrade::from_request_parts(&mut parts, &store).await {
                Ok(ws) => ws.on_upgrade(move |socket| send_ws(socket, messages(store, id, after))),
                Err(e) => e.into_response(),
            }
        }
        (StreamProtocol::Sse, true) => ApiError::reply(
            StatusCode::CONFLICT,
            format!("run `{id}` streams as Server-Sent Events (streaming.protocol: sse): GET without a WebSocket upgrade"),
        ),
        (StreamProtocol::Websocket, false) => ApiError::reply(
            StatusCode::CONFLICT,
            format!("run `{id}` streams over a WebSocket (streaming.protocol: websocket): connect with an upgrade"),
        ),
    }
}

/// The resume point: `Last-Event-ID` or `?last_event_id=`, 0 when neither is given.
fn last_event_id(headers: &HeaderMap, query: Option<&str>) -> Result<u64, String> {
    let given = match (headers.get("last-event-id"), query) {
        (Some(v), _) => v
            .to_str()
            .map_err(|_| "Last-Event-ID is not text".to_string())?
            .trim()
            .to_string(),
        (None, Some(q)) => q.trim().to_string(),
        (None, None) => return Ok(0),
    };
    given.parse::<u64>().map_err(|_| {
        format!("Last-Event-ID `{given}` is not an event number of this stream (1, 2, 3...)")
    })
}

fn sse_event(m: &FeedMessage) -> Event {
    let ev = match m {
        FeedMessage::Figures { id, data } => Event::default()
            .event("figures")
            .id(id.to_string())
            .json_data(data),
        FeedMessage::End { data } => Event::default().event("end").json_data(data),
    };
    ev.unwrap_or_else(|_| Event::default().comment("unserializable event"))
}

async fn send_ws(mut socket: WebSocket, mut messages: BoxStream<'static, FeedMessage>) {
    while let Some(m) = messages.next().await {
        let Ok(text) = serde_json::to_string(&m) else {
            break;
        };
        if socket.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// The run's messages after `after`, as they are committed, then `end` once the run is final.
fn messages(store: RaftStore, id: String, after: u64) -> BoxStream<'static, FeedMessage> {
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
    stream::unfold(cursor, |mut c| async move {
        if c.done {
            return None;
        }
        loop {
            // The record cannot go away today; if it did, the stream would end.
            let rec = c.m.run(&c.id)?;
            let feed = rec.feed.as_ref()?;
            let new: Vec<FeedMessage> = feed
                .events
                .iter()
                .filter(|e| e.seq > c.sent)
                .map(|e| FeedMessage::Figures {
                    id: e.seq,
                    data: e.clone(),
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
                return Some((vec![FeedMessage::End { data: end }], c));
            }
            // Wait for the next applied entry (or re-read after a while).
            let _ = tokio::time::timeout(RECHECK, c.applied.changed()).await;
        }
    })
    .flat_map(stream::iter)
    .boxed()
}
