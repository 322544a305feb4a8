//! The load loop's HTTP client. Each VU owns one HTTP/1.1 keep-alive connection (raw hyper over a
//! tokio `TcpStream`, wrapped in rustls for `https://`), as oha does: no pool lookups or shared locks
//! per request, which measured about a third less CPU per request than a shared `reqwest::Client` on
//! loopback. One rustls client configuration is shared by all VUs: webpki's roots, plus the PEM
//! certificates of `SSL_CERT_FILE` when set (a staging CA).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;

/// The socket options every load connection of this process gets (`performance.network` of the
/// worker's `--config`), set once at start; unset: `TCP_NODELAY` on, the rest the kernel's defaults.
static SOCKET_OPTIONS: std::sync::OnceLock<crate::config::performance::SocketOptions> =
    std::sync::OnceLock::new();

/// Sets the load connections' socket options for the rest of the process (the first call wins).
pub fn set_socket_options(opts: crate::config::performance::SocketOptions) {
    let _ = SOCKET_OPTIONS.set(opts);
}

/// A TCP connection to `addr` with the run's socket options (the test's `performance.network`)
/// over the process's; buffer sizes are set before connecting, so the receive window is scaled for
/// them.
async fn connect(
    addr: &str,
    run: Option<crate::config::performance::SocketOptions>,
) -> Result<tokio::net::TcpStream, Failure> {
    let process = SOCKET_OPTIONS.get().copied().unwrap_or_default();
    let o = run.map_or(process, |r| r.over(process));
    match Some(o).filter(|o| *o != Default::default()) {
        Some(o) => connect_with(addr, &o).await,
        None => {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|_| Failure::Connect)?;
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
    }
}

async fn connect_with(
    addr: &str,
    o: &crate::config::performance::SocketOptions,
) -> Result<tokio::net::TcpStream, Failure> {
    let mut last = Failure::Connect;
    for target in tokio::net::lookup_host(addr)
        .await
        .map_err(|_| Failure::Connect)?
    {
        let socket = match target {
            std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4(),
            std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6(),
        }
        .map_err(|_| Failure::Connect)?;
        if let Some(n) = o.send_buffer {
            let _ = socket.set_send_buffer_size(u32::try_from(n).unwrap_or(u32::MAX));
        }
        if let Some(n) = o.recv_buffer {
            let _ = socket.set_recv_buffer_size(u32::try_from(n).unwrap_or(u32::MAX));
        }
        if let Some(k) = o.keepalive {
            let _ = socket2::SockRef::from(&socket).set_keepalive(k);
        }
        match socket.connect(target).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(o.nodelay.unwrap_or(true));
                return Ok(stream);
            }
            Err(_) => last = Failure::Connect,
        }
    }
    Err(last)
}

/// Why a request produced no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Timeout,
    Connect,
    /// The TLS handshake failed (an untrusted or mismatched certificate).
    Tls,
    Request,
}

impl Failure {
    /// The label used in `errors_by_kind`.
    pub fn kind(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connect => "connect",
            Failure::Tls => "tls",
            Failure::Request => "request",
        }
    }
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: http::Method,
    pub url: url::Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Where a connection goes: `scheme://host:port` identifies it, `addr` is dialled, and
/// `tls` names the server for rustls on `https://`.
#[derive(Debug, Clone)]
struct Origin {
    key: String,
    addr: String,
    tls: Option<rustls::pki_types::ServerName<'static>>,
}

impl Origin {
    fn of(url: &url::Url) -> Result<Origin, Failure> {
        let host = url.host_str().unwrap_or("");
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = format!("{host}:{port}");
        let tls = match url.scheme() {
            "http" => None,
            "https" => {
                // `host_str` keeps an IPv6 address in brackets; rustls wants it bare.
                let name = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                Some(rustls::pki_types::ServerName::try_from(name).map_err(|_| Failure::Request)?)
            }
            _ => return Err(Failure::Request),
        };
        Ok(Origin {
            key: format!("{}://{addr}", url.scheme()),
            addr,
            tls,
        })
    }
}

/// A request rendered once, for steps with no templating: sending it clones a few
/// reference-counted parts instead of parsing the URL and headers again for every request.
#[derive(Debug)]
pub struct Prepared {
    origin: Origin,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Prepared {
    /// `req` ready to send as is; `None` unless it is well formed.
    pub fn new(req: Request) -> Option<Prepared> {
        let (origin, parts, body) = request_parts(req).ok()?;
        Some(Prepared {
            origin,
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

/// The connection's origin, the request head and the body of a request.
fn request_parts(req: Request) -> Result<(Origin, http::request::Parts, Bytes), Failure> {
    let origin = Origin::of(&req.url)?;
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
    Ok((origin, parts, Bytes::from(req.body.unwrap_or_default())))
}

/// The rustls client configuration every VU shares: webpki's roots, plus the certificates in the
/// PEM file `SSL_CERT_FILE` names, if any (an unreadable one is an error, not ignored).
pub fn tls_config() -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        use rustls::pki_types::{pem::PemObject, CertificateDer};
        let path = std::path::PathBuf::from(file);
        let certs = CertificateDer::pem_file_iter(&path)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("SSL_CERT_FILE {}: {e}", path.display()))?;
        roots.add_parsable_certificates(certs);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// One VU's connection.
pub struct VuClient {
    conn: Option<(String, SendRequest<Full<Bytes>>)>,
    tls: tokio_rustls::TlsConnector,
    timeout: Duration,
    /// By step: the last Digest challenge and the count of requests that answered it, so later
    /// requests authenticate at once (RFC 7616 `nc`) instead of meeting a `401` every time.
    pub digest: std::collections::HashMap<usize, (super::digest::Challenge, u32)>,
    /// The run's socket options (`performance.network` in the test), over the process's.
    socket: Option<crate::config::performance::SocketOptions>,
}

impl VuClient {
    pub fn new(tls: Arc<rustls::ClientConfig>, timeout: Duration) -> Self {
        let tls = tokio_rustls::TlsConnector::from(tls);
        Self {
            conn: None,
            tls,
            timeout,
            digest: std::collections::HashMap::new(),
            socket: None,
        }
    }

    /// Gives the VU's connections the run's socket options (over the process's).
    pub fn with_socket_options(
        mut self,
        socket: Option<crate::config::performance::SocketOptions>,
    ) -> Self {
        self.socket = socket;
        self
    }

    /// Replaces the request timeout (a step's own `timeout`); returns the one it replaced.
    pub fn set_timeout(&mut self, timeout: Duration) -> Duration {
        std::mem::replace(&mut self.timeout, timeout)
    }

    /// Sends `req` and reads the whole body, within the request timeout.
    pub async fn send(&mut self, req: Request) -> Result<Reply, Failure> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, async {
            let (origin, parts, body) = request_parts(req)?;
            let request = http::Request::from_parts(parts, Full::new(body));
            self.exchange(&origin, request).await
        })
        .await;
        self.timed_out_unless(result)
    }

    /// Sends a prepared request and reads the whole body, within the request timeout.
    pub async fn send_prepared(&mut self, p: &Prepared) -> Result<Reply, Failure> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.exchange(&p.origin, p.request())).await;
        self.timed_out_unless(result)
    }

    fn timed_out_unless(
        &mut self,
        result: Result<Result<Reply, Failure>, tokio::time::error::Elapsed>,
    ) -> Result<Reply, Failure> {
        match result {
            Ok(r) => r,
            Err(_) => {
                // The connection may hold half a response; never reuse it.
                self.conn = None;
                Err(Failure::Timeout)
            }
        }
    }

    /// One request on the VU's connection to `origin`.
    async fn exchange(
        &mut self,
        origin: &Origin,
        request: http::Request<Full<Bytes>>,
    ) -> Result<Reply, Failure> {
        let sender = self.connection(origin).await?;
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                return Err(Failure::Request);
            }
        };
        let status = response.status().as_u16();
        let (parts, body) = response.into_parts();
        match body.collect().await {
            Ok(body) => Ok(Reply {
                status,
                headers: parts.headers,
                body: body.to_bytes(),
            }),
            Err(_) => {
                self.conn = None;
                Err(Failure::Request)
            }
        }
    }

    /// The VU's connection to `origin`, opened (or reopened) when missing or closed.
    async fn connection(
        &mut self,
        origin: &Origin,
    ) -> Result<&mut SendRequest<Full<Bytes>>, Failure> {
        let reusable = matches!(&self.conn, Some((k, s)) if *k == origin.key && !s.is_closed());
        if reusable {
            let (_, sender) = self.conn.as_mut().expect("checked above");
            if sender.ready().await.is_ok() {
                return Ok(&mut self.conn.as_mut().expect("checked above").1);
            }
        }
        let stream = connect(&origin.addr, self.socket).await?;
        let sender = match &origin.tls {
            None => handshake(stream).await?,
            // Boxed: a TLS handshake's state is several KiB, and every VU's future would reserve
            // room for it even when the target is plain HTTP.
            Some(name) => Box::pin(tls_handshake(self.tls.clone(), name.clone(), stream)).await?,
        };
        self.conn = Some((origin.key.clone(), sender));
        Ok(&mut self.conn.as_mut().expect("just set").1)
    }
}

/// HTTP/1.1 over `io`; the connection runs as its own task until the sender is dropped or the peer
/// closes.
async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, Failure>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|_| Failure::Connect)?;
    tokio::spawn(conn);
    Ok(sender)
}

/// TLS, then HTTP/1.1, over `stream`.
async fn tls_handshake(
    tls: tokio_rustls::TlsConnector,
    name: rustls::pki_types::ServerName<'static>,
    stream: tokio::net::TcpStream,
) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let stream = tls.connect(name, stream).await.map_err(|_| Failure::Tls)?;
    handshake(stream).await
}

fn host_header(url: &url::Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("")),
        None => url.host_str().unwrap_or("").to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options are read back from the connected socket (getsockopt); Linux doubles the
    /// buffer sizes it is given, to leave room for its bookkeeping.
    #[tokio::test]
    async fn load_connections_carry_the_configured_socket_options() {
        let opts = crate::config::performance::SocketOptions {
            nodelay: Some(false),
            keepalive: Some(true),
            send_buffer: Some(48 << 10),
            recv_buffer: Some(40 << 10),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stream = connect_with(&addr, &opts).await.unwrap();
        let sock = socket2::SockRef::from(&stream);
        assert!(!sock.tcp_nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        assert_eq!(sock.send_buffer_size().unwrap(), 2 * (48 << 10));
        assert_eq!(sock.recv_buffer_size().unwrap(), 2 * (40 << 10));
    }
}
