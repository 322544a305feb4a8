//! The batch stream as a WebSocket (`communication.protocol: websocket`): `GET /metrics` with an
//! upgrade, behind the same guard as the HTTP pull. The worker sends `GET /metrics` answers (JSON
//! text frames, or gzip-compressed JSON in binary frames with `compress=gzip`); the controller
//! sends `{"ack": N}` when it has merged everything up to N, and the worker forgets those batches.
//! Opening the stream with `since=N` acknowledges N, as a pull with `since=N` does.

use super::Worker;
use crate::api::transport::{StreamQuery, WsAck, DEFAULT_STREAM_MS};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use std::io::Write;
use std::time::Duration;

/// Takes the upgrade of `GET /metrics?since=N`.
pub(super) fn upgrade(w: Worker, q: StreamQuery, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| serve(w, q, socket))
}

async fn serve(w: Worker, q: StreamQuery, socket: WebSocket) {
    let gzip = match q.compress.as_deref() {
        None | Some("none") => false,
        Some("gzip") => true,
        Some(other) => {
            let mut socket = socket;
            let _ = socket
                .send(Message::Close(Some(axum::extract::ws::CloseFrame {
                    code: 1003,
                    reason: format!("unknown compress `{other}` (gzip or none)").into(),
                })))
                .await;
            return;
        }
    };
    let every = Duration::from_millis(u64::from(match q.interval_ms {
        0 => DEFAULT_STREAM_MS,
        n => n,
    }));
    tracing::info!(since = q.since, gzip, "batch stream opened (websocket)");
    // The opening acknowledges `since`, like a pull.
    let _ = w.slot.metrics(q.since);
    let mut batches = w.stream(q.since, every);
    let (mut tx, mut rx) = socket.split();
    loop {
        tokio::select! {
            body = batches.recv() => {
                let Some(body) = body else { return };
                let Some(frame) = frame(&body, gzip) else { return };
                if tx.send(frame).await.is_err() {
                    return;
                }
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Text(t))) => match serde_json::from_str::<WsAck>(t.as_str()) {
                    Ok(a) => {
                        let _ = w.slot.metrics(a.ack);
                    }
                    Err(e) => tracing::warn!("batch stream: unreadable message from the controller: {e}"),
                },
                // Pings are answered by the WebSocket layer; pongs need nothing.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Binary(_))) => {}
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
            }
        }
    }
}

fn frame(body: &serde_json::Value, gzip: bool) -> Option<Message> {
    let json = serde_json::to_vec(body).ok()?;
    if !gzip {
        return String::from_utf8(json)
            .ok()
            .map(|s| Message::Text(s.into()));
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&json).ok()?;
    enc.finish().ok().map(|b| Message::Binary(b.into()))
}
