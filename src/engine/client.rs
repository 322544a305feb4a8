//! The load loop's HTTP client. Each VU owns one HTTP/1.1 keep-alive connection (raw hyper over a
//! tokio `TcpStream`), as oha does: no pool lookups or shared locks per request, which measured about a
//! third less CPU per request than a shared `reqwest::Client` on loopback. `https://` targets go
//! through a shared reqwest client (rustls) instead, so TLS works, at reqwest's cost.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::time::Duration;

/// Why a request produced no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    Connect,
    Request,
}

impl Failure {
    /// The label used in `errors_by_kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect => "connect",
            Failure::Request => "request",
        }
    }
}

/// A request ready to send.
pub struct Request {
    pub method: http::Method,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// A plain-HTTP request rendered once, for steps with no templating: sending it clones a few
/// reference-counted parts instead of parsing the URL and headers again for every request.
#[derive(Debug)]
pub struct Prepared {
    authority: String,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Prepared {
    /// `req` ready to send as is; `None` unless it is plain HTTP and well formed.
    pub fn new(req: Request) -> Option<Prepared> {
        if req.url.scheme() != "http" {
            return None;
        }
        let (authority, parts, body) = plain_parts(req).ok()?;
        Some(Prepared {
            authority,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
        })
    }

    fn request(&self) -> http::Request<Full<Bytes>> {
        let mut req = http::Request::new(Full::new(self.body.clone()));
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.uri.clone();
        *req.headers_mut() = self.headers.clone();
        req
    }
}

/// The connection's authority, the request head and the body of a plain-HTTP request.
fn plain_parts(req: Request) -> Result<(String, http::request::Parts, Bytes), Failure> {
    let authority = format!(
        "{}:{}",
        req.url.host_str().unwrap_or(""),
        req.url.port_or_known_default().unwrap_or(80)
    );
    let path = match req.url.query() {
        Some(q) => format!("{}?{q}", req.url.path()),
        None => req.url.path().to_string(),
    };
    let mut builder = http::Request::builder().method(req.method).uri(path);
    let mut has_host = false;
    for (k, v) in &req.headers {
        has_host |= k.eq_ignore_ascii_case("host");
        builder = builder.header(k.as_str(), v.as_str());
    }
    if !has_host {
        builder = builder.header(http::header::HOST, host_header(&req.url));
    }
    let (parts, ()) = builder.body(()).map_err(|_| Failure::Request)?.into_parts();
    Ok((authority, parts, Bytes::from(req.body.unwrap_or_default())))
}

/// One VU's connection (and the shared TLS fallback).
pub struct VuClient {
    conn: Option<(String, SendRequest<Full<Bytes>>)>,
    tls: reqwest::Client,
    timeout: Duration,
}

impl VuClient {
    pub fn new(tls: reqwest::Client, timeout: Duration) -> Self {
        Self {
            conn: None,
            tls,
            timeout,
        }
    }

    /// Sends `req` and reads the whole body, within the request timeout.
    pub async fn send(&mut self, req: Request) -> Result<(u16, Bytes), Failure> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, async {
            if req.url.scheme() == "http" {
                let (authority, parts, body) = plain_parts(req)?;
                let request = http::Request::from_parts(parts, Full::new(body));
                self.exchange(&authority, request).await
            } else {
                self.send_tls(req).await
            }
        })
        .await;
        self.timed_out_unless(result)
    }

    /// Sends a prepared request and reads the whole body, within the request timeout.
    pub async fn send_prepared(&mut self, p: &Prepared) -> Result<(u16, Bytes), Failure> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.exchange(&p.authority, p.request())).await;
        self.timed_out_unless(result)
    }

    fn timed_out_unless(
        &mut self,
        result: Result<Result<(u16, Bytes), Failure>, tokio::time::error::Elapsed>,
    ) -> Result<(u16, Bytes), Failure> {
        match result {
            Ok(r) => r,
            Err(_) => {
                // The connection may hold half a response; never reuse it.
                self.conn = None;
                Err(Failure::Timeout)
            }
        }
    }

    /// One request on the VU's connection to `authority`.
    async fn exchange(
        &mut self,
        authority: &str,
        request: http::Request<Full<Bytes>>,
    ) -> Result<(u16, Bytes), Failure> {
        let sender = self.connection(authority).await?;
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                return Err(Failure::Request);
            }
        };
        let status = response.status().as_u16();
        match response.into_body().collect().await {
            Ok(body) => Ok((status, body.to_bytes())),
            Err(_) => {
                self.conn = None;
                Err(Failure::Request)
            }
        }
    }

    /// The VU's connection to `authority`, opened (or reopened) when missing or closed.
    async fn connection(
        &mut self,
        authority: &str,
    ) -> Result<&mut SendRequest<Full<Bytes>>, Failure> {
        let reusable = matches!(&self.conn, Some((a, s)) if a == authority && !s.is_closed());
        if reusable {
            let (_, sender) = self.conn.as_mut().expect("checked above");
            if sender.ready().await.is_ok() {
                return Ok(&mut self.conn.as_mut().expect("checked above").1);
            }
        }
        let stream = tokio::net::TcpStream::connect(authority)
            .await
            .map_err(|_| Failure::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| Failure::Connect)?;
        // The connection task ends when the sender is dropped or the peer closes.
        tokio::spawn(conn);
        self.conn = Some((authority.to_string(), sender));
        Ok(&mut self.conn.as_mut().expect("just set").1)
    }

    async fn send_tls(&self, req: Request) -> Result<(u16, Bytes), Failure> {
        let mut r = self.tls.request(req.method, req.url);
        for (k, v) in &req.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        if let Some(b) = req.body {
            r = r.body(b);
        }
        let classify = |e: reqwest::Error| {
            if e.is_connect() {
                Failure::Connect
            } else if e.is_timeout() {
                Failure::Timeout
            } else {
                Failure::Request
            }
        };
        let resp = r.send().await.map_err(classify)?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(classify)?;
        Ok((status, body))
    }
}

fn host_header(url: &url::Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    }
}
