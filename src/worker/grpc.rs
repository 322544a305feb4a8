//! The worker API as a gRPC service (`proto/worker.proto`), on the worker's one port. Every unary
//! call is made as the HTTP call it stands for, through the guarded routes, with the caller's
//! `authorization` metadata and address: the same handlers, permissions, refusals and
//! idempotence. The batch stream (`Batches`) is opened the same way (as `GET /metrics?since=N`,
//! which acknowledges N and gives the first message), then follows [`Worker::stream`]; `Ack`
//! needs what `GET /metrics` needs.

use super::Worker;
use crate::api::transport::{grpc as pb, grpc_code, DEFAULT_STREAM_MS, STATUS_KEY};
use crate::api::ApiError;
use axum::extract::ConnectInfo;
use axum::http::{Method, StatusCode};
use axum::Router;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;
use tonic::{Request, Response, Status};
use tower::ServiceExt;

/// Where the service's calls arrive.
pub(super) const PATH: &str = "/perfornium.worker.Worker/{*rest}";

/// The service: the worker's state (for the stream) and its guarded routes (for everything else).
#[derive(Clone)]
pub struct GrpcWorker {
    w: Worker,
    app: Router,
}

pub(super) fn service(w: Worker, app: Router) -> pb::worker_server::WorkerServer<GrpcWorker> {
    pb::worker_server::WorkerServer::new(GrpcWorker { w, app })
        .max_decoding_message_size(super::BODY_LIMIT)
        .max_encoding_message_size(usize::MAX)
}

fn query(key: &str, value: &str) -> String {
    let v: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    format!("{key}={v}")
}

impl GrpcWorker {
    /// Makes `method uri` with `body` through the guarded routes as `req`'s caller.
    async fn forward<T>(
        &self,
        req: &Request<T>,
        method: Method,
        uri: String,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, bytes::Bytes), Status> {
        let mut b = axum::http::Request::builder().method(method).uri(uri);
        if let Some(a) = req.metadata().get("authorization") {
            b = b.header("authorization", a.as_bytes());
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let mut hreq = b
            .body(axum::body::Body::from(body.unwrap_or_default()))
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        if let Some(ci) = req.extensions().get::<ConnectInfo<SocketAddr>>() {
            hreq.extensions_mut().insert(*ci);
        }
        let resp = match self.app.clone().oneshot(hreq).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        if status.is_success() {
            return Ok((status, bytes));
        }
        let message = serde_json::from_slice::<ApiError>(&bytes)
            .map(|e| e.error)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).into_owned());
        let mut st = Status::new(grpc_code(status.as_u16()), message);
        if let Ok(v) = status.as_u16().to_string().parse() {
            st.metadata_mut().insert(STATUS_KEY, v);
        }
        Err(st)
    }

    async fn json<T>(
        &self,
        req: &Request<T>,
        method: Method,
        uri: String,
        body: Option<Vec<u8>>,
    ) -> Result<Response<pb::Json>, Status> {
        let (_, b) = self.forward(req, method, uri, body).await?;
        Ok(Response::new(pb::Json { body: b.to_vec() }))
    }

    async fn post(&self, req: Request<pb::Json>, path: &str) -> Result<Response<pb::Json>, Status> {
        let body = req.get_ref().body.clone();
        self.json(&req, Method::POST, path.into(), Some(body)).await
    }

    async fn get_run(
        &self,
        req: Request<pb::RunId>,
        path: &str,
    ) -> Result<Response<pb::Json>, Status> {
        let uri = format!("{path}?{}", query("run_id", &req.get_ref().run_id));
        self.json(&req, Method::GET, uri, None).await
    }
}

type Batches = Pin<Box<dyn futures_util::Stream<Item = Result<pb::Json, Status>> + Send>>;

#[tonic::async_trait]
impl pb::worker_server::Worker for GrpcWorker {
    async fn health(&self, req: Request<pb::Empty>) -> Result<Response<pb::Json>, Status> {
        self.json(&req, Method::GET, "/health".into(), None).await
    }

    async fn status(&self, req: Request<pb::Empty>) -> Result<Response<pb::Json>, Status> {
        self.json(&req, Method::GET, "/status".into(), None).await
    }

    async fn prepare(&self, req: Request<pb::Json>) -> Result<Response<pb::Json>, Status> {
        self.post(req, "/prepare").await
    }

    async fn start(&self, req: Request<pb::Json>) -> Result<Response<pb::Json>, Status> {
        self.post(req, "/start").await
    }

    async fn stop(&self, req: Request<pb::Json>) -> Result<Response<pb::Json>, Status> {
        self.post(req, "/stop").await
    }

    async fn scale(&self, req: Request<pb::Json>) -> Result<Response<pb::Json>, Status> {
        self.post(req, "/scale").await
    }

    async fn results(&self, req: Request<pb::RunId>) -> Result<Response<pb::Pending>, Status> {
        let uri = format!("/results?{}", query("run_id", &req.get_ref().run_id));
        let (status, body) = self.forward(&req, Method::GET, uri, None).await?;
        Ok(Response::new(pb::Pending {
            pending: status == StatusCode::ACCEPTED,
            body: body.to_vec(),
        }))
    }

    async fn rendezvous(&self, req: Request<pb::RunId>) -> Result<Response<pb::Json>, Status> {
        self.get_run(req, "/rendezvous").await
    }

    async fn release(&self, req: Request<pb::Json>) -> Result<Response<pb::Json>, Status> {
        self.post(req, "/rendezvous").await
    }

    async fn variables(&self, req: Request<pb::RunId>) -> Result<Response<pb::Json>, Status> {
        self.get_run(req, "/variables").await
    }

    async fn set_variables(&self, req: Request<pb::Json>) -> Result<Response<pb::Json>, Status> {
        self.post(req, "/variables").await
    }

    async fn leases(&self, req: Request<pb::RunId>) -> Result<Response<pb::Json>, Status> {
        self.get_run(req, "/leases").await
    }

    async fn grant(&self, req: Request<pb::Json>) -> Result<Response<pb::Json>, Status> {
        self.post(req, "/leases").await
    }

    async fn ack(&self, req: Request<pb::Since>) -> Result<Response<pb::Empty>, Status> {
        // What `GET /metrics` needs (`/status` asks the same permission and drains no logs).
        self.forward(&req, Method::GET, "/status".into(), None)
            .await?;
        let _ = self.w.slot.metrics(req.get_ref().since);
        Ok(Response::new(pb::Empty {}))
    }

    type BatchesStream = Batches;

    async fn batches(&self, req: Request<pb::Since>) -> Result<Response<Batches>, Status> {
        let since = req.get_ref().since;
        let every = Duration::from_millis(u64::from(match req.get_ref().interval_ms {
            0 => DEFAULT_STREAM_MS,
            n => n,
        }));
        // The opening is the pull `since=N`: the guard's check, the ack, the first message.
        let (_, first) = self
            .forward(&req, Method::GET, format!("/metrics?since={since}"), None)
            .await?;
        let sent = serde_json::from_slice::<serde_json::Value>(&first)
            .ok()
            .and_then(|v| {
                v["batches"]
                    .as_array()
                    .and_then(|b| b.last())
                    .and_then(|b| b["seq"].as_u64())
            })
            .unwrap_or(since);
        tracing::info!(since, "batch stream opened (grpc)");
        let rx = self.w.stream(sent, every);
        let first = futures_util::stream::once(async move {
            Ok(pb::Json {
                body: first.to_vec(),
            })
        });
        let rest = futures_util::stream::unfold(rx, |mut rx| async move {
            let body = rx.recv().await?;
            let json = serde_json::to_vec(&body)
                .map_err(|e| Status::internal(e.to_string()))
                .map(|body| pb::Json { body });
            Some((json, rx))
        });
        Ok(Response::new(Box::pin(futures_util::StreamExt::chain(
            first, rest,
        ))))
    }
}
