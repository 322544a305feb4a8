//! The load loop's HTTP client. Each VU owns one HTTP/1.1 keep-alive connection: on `http://` the
//! load loop's own writer and parser ([`super::fast`]) over a tokio `TcpStream`, as wrk does; on
//! `https://`, and for the few request headers the fast path leaves to it, raw hyper (over rustls for
//! `https://`), as oha does. Either way no pool lookups or shared locks per request. One rustls
//! client configuration is shared by all VUs: webpki's roots, plus the PEM certificates of
//! `SSL_CERT_FILE` when set (a staging CA).

use super::fast;
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

/// A request rendered once, for steps with no templating: sending it writes the same bytes again
/// (fast path) or clones a few reference-counted parts (hyper) instead of parsing the URL and
/// headers again for every request.
#[derive(Debug)]
pub struct Prepared {
    origin: Origin,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
    body: Bytes,
    /// The request's bytes when it goes through the fast path ([`fast::eligible`]).
    wire: Option<Bytes>,
}

impl Prepared {
    /// `req` ready to send as is; `None` unless it is well formed.
    pub fn new(req: Request) -> Option<Prepared> {
        let (origin, parts, body) = request_parts(req).ok()?;
        let wire = fast::eligible(origin.tls.is_some(), &parts.headers)
            .then(|| fast::encode(&parts, &body));
        Some(Prepared {
            origin,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            wire,
        })
    }

    /// Whether it goes through the fast path.
    #[cfg(test)]
    pub fn is_fast(&self) -> bool {
        self.wire.is_some()
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

/// A VU's connection: the fast path's, or hyper's.
enum Conn {
    Fast(fast::Conn),
    Hyper(SendRequest<Full<Bytes>>),
}

/// One VU's connection.
pub struct VuClient {
    conn: Option<(String, Conn)>,
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

    /// Sends `req` and reads the whole body and the headers, within the request timeout.
    pub async fn send(&mut self, req: Request) -> Result<Reply, Failure> {
        self.send_request(req, true).await
    }

    /// Sends `req` and reads the whole body, within the request timeout; the response headers are
    /// read only when `want_headers` (the fast path's `Reply` has none otherwise).
    pub async fn send_request(
        &mut self,
        req: Request,
        want_headers: bool,
    ) -> Result<Reply, Failure> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, async {
            let (origin, parts, body) = request_parts(req)?;
            if fast::eligible(origin.tls.is_some(), &parts.headers) {
                let head = parts.method == http::Method::HEAD;
                let wire = fast::encode(&parts, &body);
                return self.fast_exchange(&origin, &wire, head, want_headers).await;
            }
            let request = http::Request::from_parts(parts, Full::new(body));
            self.exchange(&origin, request).await
        })
        .await;
        self.timed_out_unless(result)
    }

    /// Sends a prepared request and reads the whole body, within the request timeout; the headers
    /// as for [`VuClient::send_request`].
    pub async fn send_prepared(
        &mut self,
        p: &Prepared,
        want_headers: bool,
    ) -> Result<Reply, Failure> {
        let timeout = self.timeout;
        let result = match &p.wire {
            Some(wire) => {
                let head = p.method == http::Method::HEAD;
                let exchange = self.fast_exchange(&p.origin, wire, head, want_headers);
                tokio::time::timeout(timeout, exchange).await
            }
            None => tokio::time::timeout(timeout, self.exchange(&p.origin, p.request())).await,
        };
        self.timed_out_unless(result)
    }

    /// Whether the VU's connection is open and of the fast path's kind (for tests).
    #[cfg(test)]
    pub fn holds_fast_connection(&self) -> Option<bool> {
        self.conn.as_ref().map(|(_, c)| matches!(c, Conn::Fast(_)))
    }

    /// Lets go of per-connection buffers while the VU idles; the connection stays open.
    pub fn idle(&mut self) {
        if let Some((_, Conn::Fast(c))) = &mut self.conn {
            c.shrink();
        }
    }

    /// One request through the fast path on the VU's connection to `origin`; a kept-alive
    /// connection found closed by the server before any reply is replaced and the request sent
    /// once more.
    async fn fast_exchange(
        &mut self,
        origin: &Origin,
        wire: &[u8],
        head: bool,
        want_headers: bool,
    ) -> Result<Reply, Failure> {
        let mut reused = matches!(&self.conn, Some((k, Conn::Fast(_))) if *k == origin.key);
        loop {
            if !reused {
                self.conn = None;
                let stream = connect(&origin.addr, self.socket).await?;
                self.conn = Some((origin.key.clone(), Conn::Fast(fast::Conn::new(stream))));
            }
            let Some((_, Conn::Fast(conn))) = &mut self.conn else {
                return Err(Failure::Connect);
            };
            match conn.exchange(wire, head, want_headers).await {
                Ok(r) => {
                    if !r.keep_alive {
                        self.conn = None;
                    }
                    return Ok(Reply {
                        status: r.status,
                        headers: r.headers,
                        body: r.body,
                    });
                }
                Err(fast::Error::Stale) if reused => reused = false,
                Err(_) => {
                    self.conn = None;
                    return Err(Failure::Request);
                }
            }
        }
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

    /// The VU's hyper connection to `origin`, opened (or reopened) when missing, closed or of the
    /// fast path's kind.
    async fn connection(
        &mut self,
        origin: &Origin,
    ) -> Result<&mut SendRequest<Full<Bytes>>, Failure> {
        let reusable = match &mut self.conn {
            Some((k, Conn::Hyper(sender))) if *k == origin.key && !sender.is_closed() => {
                sender.ready().await.is_ok()
            }
            _ => false,
        };
        if reusable {
            return match &mut self.conn {
                Some((_, Conn::Hyper(sender))) => Ok(sender),
                _ => Err(Failure::Connect),
            };
        }
        self.conn = None;
        let stream = connect(&origin.addr, self.socket).await?;
        let sender = match &origin.tls {
            None => handshake(stream).await?,
            // Boxed: a TLS handshake's state is several KiB, and every VU's future would reserve
            // room for it even when the target is plain HTTP.
            Some(name) => Box::pin(tls_handshake(self.tls.clone(), name.clone(), stream)).await?,
        };
        let (_, conn) = self.conn.insert((origin.key.clone(), Conn::Hyper(sender)));
        match conn {
            Conn::Hyper(sender) => Ok(sender),
            Conn::Fast(_) => Err(Failure::Connect),
        }
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

    /// A server on a real socket that answers every request head with `200 ok`, on as many
    /// connections as are opened; returns its URL and the count of connections accepted.
    async fn answering() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/x", listener.local_addr().unwrap());
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut seen = Vec::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        while let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
                            seen.drain(..end + 4);
                            let reply =
                                b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Seen: 1\r\n\r\nok";
                            if s.write_all(reply).await.is_err() {
                                return;
                            }
                        }
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                });
            }
        });
        (url, accepted)
    }

    fn get(url: &str, headers: &[(&str, &str)]) -> Request {
        Request {
            method: http::Method::GET,
            url: url::Url::parse(url).unwrap(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: None,
        }
    }

    /// Plain requests take the fast path and keep one connection; a request with a header only
    /// hyper implements goes through hyper (a connection of its kind), and both read the response.
    #[tokio::test]
    async fn plain_requests_take_the_fast_path_and_the_rest_go_through_hyper() {
        let (url, accepted) = answering().await;
        let tls = tls_config().unwrap();
        let mut c = VuClient::new(tls, Duration::from_secs(5));
        for _ in 0..3 {
            let r = c.send_request(get(&url, &[]), false).await.unwrap();
            assert_eq!((r.status, &r.body[..]), (200, &b"ok"[..]));
            assert!(r.headers.is_empty(), "no headers unless asked for");
            assert_eq!(c.holds_fast_connection(), Some(true));
        }
        let p = Prepared::new(get(&url, &[("X-A", "1")])).unwrap();
        assert!(p.is_fast());
        let r = c.send_prepared(&p, true).await.unwrap();
        assert_eq!(r.headers["x-seen"], "1");
        assert_eq!(
            accepted.load(std::sync::atomic::Ordering::SeqCst),
            1,
            "kept alive"
        );
        for h in ["Connection", "Expect", "Upgrade", "TE"] {
            let value = match h {
                "Expect" => "100-continue",
                "Upgrade" => "websocket",
                "TE" => "trailers",
                _ => "keep-alive",
            };
            let req = get(&url, &[(h, value)]);
            assert!(!Prepared::new(req.clone()).unwrap().is_fast(), "{h}");
            let r = c.send_request(req, true).await.unwrap();
            assert_eq!((r.status, &r.body[..]), (200, &b"ok"[..]), "{h}");
            assert_eq!(r.headers["x-seen"], "1", "hyper reads the headers");
            assert_eq!(c.holds_fast_connection(), Some(false), "{h}");
        }
        let https = Prepared::new(get("https://127.0.0.1:9/", &[])).unwrap();
        assert!(!https.is_fast(), "https goes through hyper and rustls");
    }

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
