//! `perfornium dashboard --master URL,...`: the page served locally, every other call sent on to
//! the masters as it came (method, path, query, body, the caller's `Authorization`), trying them in
//! the given order until one answers. Reads work on any replica; the launch (`POST /ui/runs`) is
//! sent on to the leader by the replica that takes it. Answers stream back as they arrive, so the
//! live feed passes through unbuffered.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::TryStreamExt;
use std::sync::Arc;
use thiserror::Error;
use tracing::warn;

/// Why the dashboard could not start or stopped.
#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("--master `{0}` is not a URL like http://10.0.0.1:7001")]
    BadMaster(String),
    #[error("building the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("serving: {0}")]
    Serve(std::io::Error),
}

/// The headers passed on in each direction.
const REQUEST_HEADERS: [HeaderName; 4] = [
    header::AUTHORIZATION,
    header::CONTENT_TYPE,
    header::ACCEPT,
    HeaderName::from_static("last-event-id"),
];
const ANSWER_HEADERS: [HeaderName; 3] = [
    header::CONTENT_TYPE,
    header::CACHE_CONTROL,
    header::LOCATION,
];

/// The largest request body passed on (a test with inlined rows fits).
const BODY_LIMIT: usize = super::super::BODY_LIMIT;

#[derive(Clone)]
struct Masters {
    bases: Arc<Vec<String>>,
    client: reqwest::Client,
}

/// Parses `http://h:p,https://h:p` (a bare `h:p` is taken as http).
pub fn parse_masters(text: &str) -> Result<Vec<String>, ProxyError> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|m| {
            let full = if m.contains("://") {
                m.to_string()
            } else {
                format!("http://{m}")
            };
            match url::Url::parse(&full) {
                Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => {
                    Ok(full.trim_end_matches('/').to_string())
                }
                _ => Err(ProxyError::BadMaster(m.to_string())),
            }
        })
        .collect()
}

/// The proxy's routes: the page itself, and everything else on to the masters.
pub fn router(masters: Vec<String>) -> Result<Router, ProxyError> {
    let client = crate::tls::client_builder(None)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(3))
        .build()
        .map_err(ProxyError::Client)?;
    let state = Masters {
        bases: Arc::new(masters),
        client,
    };
    Ok(Router::new()
        .route("/ui", axum::routing::get(super::shell))
        .route("/ui/", axum::routing::get(super::shell))
        .fallback(forward)
        .with_state(state))
}

async fn forward(State(m): State<Masters>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            return crate::api::ApiError::reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body: {e}"),
            )
        }
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes())
        .unwrap_or(reqwest::Method::GET);
    let mut tried = Vec::new();
    for base in m.bases.iter() {
        let mut call = m
            .client
            .request(method.clone(), format!("{base}{path}"))
            .body(body.clone());
        for name in &REQUEST_HEADERS {
            if let Some(v) = parts.headers.get(name) {
                call = call.header(name.as_str(), v.as_bytes());
            }
        }
        match call.send().await {
            Ok(answer) => {
                let mut out = Response::builder().status(answer.status().as_u16());
                for name in &ANSWER_HEADERS {
                    if let Some(v) = answer.headers().get(name.as_str()) {
                        out = out.header(name, v.as_bytes());
                    }
                }
                let stream = answer.bytes_stream().map_err(std::io::Error::other);
                return out.body(Body::from_stream(stream)).unwrap_or_else(|e| {
                    crate::api::ApiError::reply(StatusCode::BAD_GATEWAY, e.to_string())
                });
            }
            Err(e) => {
                warn!(master = %base, "dashboard: master did not answer: {e}");
                tried.push(format!("{base}: {e}"));
            }
        }
    }
    crate::api::ApiError::reply(
        StatusCode::BAD_GATEWAY,
        format!("no master answered ({})", tried.join("; ")),
    )
    .into_response()
}

/// Serves the dashboard on `listener` until `stop`: a proxy to `masters` when any is given,
/// else the page over the summaries under `results`.
pub async fn serve_proxy(
    listener: tokio::net::TcpListener,
    masters: Vec<String>,
    results: std::path::PathBuf,
    stop: tokio_util::sync::CancellationToken,
) -> Result<(), ProxyError> {
    let app = if masters.is_empty() {
        super::router(super::Ui::of_results(super::Results::new(results)))
    } else {
        router(masters)?
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
        .map_err(ProxyError::Serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masters_are_urls() {
        assert_eq!(
            parse_masters("127.0.0.1:7001, https://m:1/").unwrap(),
            vec!["http://127.0.0.1:7001", "https://m:1"]
        );
        assert!(parse_masters("ftp://x:1").is_err());
    }
}
