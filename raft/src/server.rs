//! Raft RPC server: the axum routes peers call (`POST /raft/append`, `/raft/vote`, `/raft/snapshot`).
//!
//! Each route hands the JSON request to the local openraft node and returns its
//! `Result<_, RaftError>` as JSON, which `network.rs` decodes on the other side. The application
//! serves these routes on its own listener, merged into its API router; when a token is configured
//! every raft route requires `Authorization: Bearer <token>` so that only peers can vote or append.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

use crate::network::{APPEND_PATH, SNAPSHOT_PATH, VOTE_PATH};
use crate::{NodeId, Raft, TypeConfig};

/// Largest accepted RPC body. Append batches (up to 300 entries) and snapshot chunks (1 MiB of
/// data, inflated by JSON) can exceed axum's 2 MB default.
const MAX_BODY_BYTES: usize = 64 << 20;

/// The raft routes for `raft`, guarded by `token` when set.
pub(crate) fn router(raft: Raft, token: Option<Arc<str>>) -> Router {
    let routes = Router::new()
        .route(APPEND_PATH, post(append))
        .route(VOTE_PATH, post(vote))
        .route(SNAPSHOT_PATH, post(snapshot));
    let routes = match token {
        Some(token) => routes.route_layer(middleware::from_fn_with_state(token, require_token)),
        None => routes,
    };
    routes
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(raft)
}

async fn append(
    State(raft): State<Raft>,
    Json(rpc): Json<AppendEntriesRequest<TypeConfig>>,
) -> Json<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>> {
    Json(raft.append_entries(rpc).await)
}

async fn vote(
    State(raft): State<Raft>,
    Json(rpc): Json<VoteRequest<NodeId>>,
) -> Json<Result<VoteResponse<NodeId>, RaftError<NodeId>>> {
    Json(raft.vote(rpc).await)
}

async fn snapshot(
    State(raft): State<Raft>,
    Json(rpc): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Json<Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>> {
    Json(raft.install_snapshot(rpc).await)
}

/// Rejects a request whose bearer token is missing or different, before its body is read.
async fn require_token(State(token): State<Arc<str>>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if same_secret(presented.as_bytes(), token.as_bytes()) => {
            next.run(request).await
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            "missing or wrong raft bearer token",
        )
            .into_response(),
    }
}

/// Compares secrets in time independent of where they differ.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{Replica, ReplicaConfig};

    #[test]
    fn same_secret_compares_whole_strings() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"s3cret", b"s3cre"));
    }

    #[tokio::test]
    async fn raft_routes_require_the_token() {
        let dir = tempfile::TempDir::new().expect("tempdir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let mut cfg = ReplicaConfig::new(
            1,
            addr.clone(),
            BTreeMap::from([(1, addr.clone())]),
            dir.path(),
        );
        cfg.token = Some("s3cret".to_string());
        let replica = Replica::open(cfg).await.expect("open");
        let router = replica.raft_router();
        let server = tokio::spawn(async move { axum::serve(listener, router).await });

        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let vote = serde_json::json!({
            "vote": {"leader_id": {"term": 0, "node_id": 2}, "committed": false},
            "last_log_id": null
        });
        let url = format!("http://{addr}{VOTE_PATH}");
        let status = |auth: Option<&'static str>| {
            let mut req = client.post(&url).json(&vote);
            if let Some(auth) = auth {
                req = req.header(header::AUTHORIZATION, auth);
            }
            async move { req.send().await.expect("send").status() }
        };
        assert_eq!(status(None).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(Some("Bearer wrong")).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(Some("s3cret")).await, StatusCode::UNAUTHORIZED);
        assert_eq!(status(Some("Bearer s3cret")).await, StatusCode::OK);
        server.abort();
        replica.shutdown().await.expect("shutdown");
    }
}
