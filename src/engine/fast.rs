//! The load loop's own HTTP/1.1 client for plain `http://` (as wrk has one): the request is written
//! as bytes (rendered once for a step with nothing templated) and the response is parsed with
//! `httparse` in the VU's own task, on the VU's own connection. Compared with hyper's client
//! connection this saves, per request, the connection task and the channel between it and the VU,
//! building an `http::Request`, and a `HeaderMap` for a response nobody reads the headers of.
//!
//! Eligible ([`eligible`]): `http://` requests whose headers carry none of `Connection`, `Expect`,
//! `Upgrade`, `Transfer-Encoding` or `TE`, whose semantics (closing, `100-continue`, protocol
//! switches, chunked request bodies) this client does not implement; those, and every `https://`
//! request, go through hyper. Responses: `Content-Length`, chunked, or delimited by the connection's
//! close; no body for `HEAD`, `204` and `304`; interim `1xx` responses are skipped (a `101` switch
//! is refused). The connection is kept unless the response says `Connection: close`, is an
//! HTTP/1.0 response without `keep-alive`, or ends with the connection's close. A keep-alive
//! connection the server closed while the VU was idle is noticed before the next request is
//! written, which then goes on a new connection. Once a request's bytes are written it is never
//! sent again: a connection that ends before its response makes it a failed request (the server
//! may have acted on it), so each request the server sees is one sample.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Request headers only the general (hyper) path implements.
const GENERAL_ONLY: [http::HeaderName; 5] = [
    http::header::CONNECTION,
    http::header::EXPECT,
    http::header::UPGRADE,
    http::header::TRANSFER_ENCODING,
    http::header::TE,
];

/// The largest response head read (hyper's default limit is about this size too).
const MAX_HEAD: usize = 400 * 1024;

/// How many response header lines are parsed at most.
const MAX_HEADERS: usize = 100;

/// What a connection's read buffer starts with (a typical small response fits at once).
const READ_CHUNK: usize = 4096;

/// Whether a request to an `http://` (`tls` false) origin with these headers goes through the fast
/// path; see the module comment.
pub fn eligible(tls: bool, headers: &http::HeaderMap) -> bool {
    !tls && GENERAL_ONLY.iter().all(|h| !headers.contains_key(h))
}

/// The request as bytes on the wire, written as hyper writes it: the request line with the path and
/// query, the headers in order (lower-case names), `content-length` for a non-empty body unless the
/// request sets one, then the body.
pub fn encode(parts: &http::request::Parts, body: &[u8]) -> Bytes {
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut out =
        BytesMut::with_capacity(64 + target.len() + 32 * parts.headers.len() + body.len());
    out.put_slice(parts.method.as_str().as_bytes());
    out.put_u8(b' ');
    out.put_slice(target.as_bytes());
    out.put_slice(b" HTTP/1.1\r\n");
    for (name, value) in &parts.headers {
        out.put_slice(name.as_str().as_bytes());
        out.put_slice(b": ");
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    if !body.is_empty() && !parts.headers.contains_key(http::header::CONTENT_LENGTH) {
        out.put_slice(b"content-length: ");
        out.put_slice(body.len().to_string().as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.put_slice(body);
    out.freeze()
}

/// Why an exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub enum Error {
    /// A kept-alive connection the server had closed, found before the request was written (or
    /// refusing the write): the server never saw the request, which may be sent again on a new
    /// connection. A connection that ends after the request was written is [`Error::Broken`].
    Stale,
    /// Anything else: the connection is not reused.
    Broken,
}

/// A response read whole, and whether the connection may carry the next request.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Empty unless asked for.
    pub headers: http::HeaderMap,
    pub body: Bytes,
    pub keep_alive: bool,
}

/// One VU's plain HTTP/1.1 connection.
pub struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

/// How the body of a response ends.
enum Framing {
    None,
    Length(usize),
    Chunked,
    Close,
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            stream,
            buf: BytesMut::new(),
        }
    }

    /// Lets go of the read buffer while the connection idles (a think time), so an idle VU holds
    /// no more than its socket; the next request takes a new one.
    pub fn shrink(&mut self) {
        if self.buf.is_empty() {
            self.buf = BytesMut::new();
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at the connection's end.
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 512 {
            self.buf.reserve(READ_CHUNK);
        }
        self.stream.read_buf(&mut self.buf).await
    }

    /// Sends `wire` (see [`encode`]) and reads the whole response; `head` says the request was a
    /// `HEAD` (no body follows); the response headers are kept when `want_headers`.
    pub async fn exchange(
        &mut self,
        wire: &[u8],
        head: bool,
        want_headers: bool,
    ) -> Result<Response, Error> {
        if !self.buf.is_empty() {
            // Bytes nobody asked for: the connection is out of step.
            return Err(Error::Broken);
        }
        // A kept-alive connection the server closed (or gave up with an unasked-for answer, such
        // as a `408`) while the VU was idle shows it here, before the request is written: the
        // server never saw this request, so it may be sent on a new connection. Once its bytes
        // are written, the request is the server's and is never sent again (see `Error::Stale`).
        // The read costs no system call when the socket is known not to be readable, and when it
        // is, it takes the place of the first read after the write.
        self.buf.reserve(READ_CHUNK);
        match self.stream.try_read_buf(&mut self.buf) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Ok(_) => return Err(Error::Stale),
            Err(e) if stale(&e) => return Err(Error::Stale),
            Err(_) => return Err(Error::Broken),
        }
        if let Err(e) = self.stream.write_all(wire).await {
            return Err(if stale(&e) {
                Error::Stale
            } else {
                Error::Broken
            });
        }
        loop {
            // Parse what has arrived; read more until the head is complete.
            let parsed = {
                let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(&self.buf) {
                    Ok(httparse::Status::Complete(len)) => {
                        Some(head_of(&resp, len, head, want_headers)?)
                    }
                    Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => None,
                    _ => return Err(Error::Broken),
                }
            };
            let Some(h) = parsed else {
                // The connection's end before the response, even before its first byte, is a
                // failed request: the server may have acted on it (and counted it), so sending it
                // again would make two requests of one sample.
                match self.fill().await {
                    Ok(0) | Err(_) => return Err(Error::Broken),
                    Ok(_) => {}
                }
                continue;
            };
            self.buf.advance(h.len);
            if (100..200).contains(&h.status) {
                if h.status == 101 {
                    return Err(Error::Broken);
                }
                continue; // An interim response: the final one follows.
            }
            let body = match h.framing {
                Framing::None => Bytes::new(),
                Framing::Length(n) => {
                    while self.buf.len() < n {
                        if self.fill().await.map_err(|_| Error::Broken)? == 0 {
                            return Err(Error::Broken);
                        }
                    }
                    self.buf.split_to(n).freeze()
                }
                Framing::Chunked => self.chunked().await?,
                Framing::Close => {
                    while self.fill().await.map_err(|_| Error::Broken)? != 0 {}
                    self.buf.split().freeze()
                }
            };
            let keep_alive = h.keep_alive && !matches!(h.framing, Framing::Close);
            return Ok(Response {
                status: h.status,
                headers: h.headers,
                body,
                keep_alive,
            });
        }
    }

    /// A chunked body, decoded; trailers are read and dropped.
    async fn chunked(&mut self) -> Result<Bytes, Error> {
        let mut body = BytesMut::new();
        loop {
            let (skip, size) = loop {
                match httparse::parse_chunk_size(&self.buf) {
                    Ok(httparse::Status::Complete(v)) => break v,
                    Ok(httparse::Status::Partial) if self.buf.len() < MAX_HEAD => {
                        if self.fill().await.map_err(|_| Error::Broken)? == 0 {
                            return Err(Error::Broken);
                        }
                    }
                    _ => return Err(Error::Broken),
                }
            };
            self.buf.advance(skip);
            if size == 0 {
                // Trailer lines, then the empty line.
                loop {
                    match self.buf.windows(2).position(|w| w == b"\r\n") {
                        Some(0) => {
                            self.buf.advance(2);
                            return Ok(body.freeze());
                        }
                        Some(i) => self.buf.advance(i + 2),
                        None if self.buf.len() < MAX_HEAD => {
                            if self.fill().await.map_err(|_| Error::Broken)? == 0 {
                                return Err(Error::Broken);
                            }
                        }
                        None => return Err(Error::Broken),
                    }
                }
            }
            let size = usize::try_from(size).map_err(|_| Error::Broken)?;
            let need = size.checked_add(2).ok_or(Error::Broken)?;
            while self.buf.len() < need {
                if self.fill().await.map_err(|_| Error::Broken)? == 0 {
                    return Err(Error::Broken);
                }
            }
            body.put_slice(&self.buf[..size]);
            if &self.buf[size..need] != b"\r\n" {
                return Err(Error::Broken);
            }
            self.buf.advance(need);
        }
    }
}

/// Whether a write or read error means the peer had closed the connection.
fn stale(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
    )
}

/// What the head of a response says.
struct Head {
    len: usize,
    status: u16,
    framing: Framing,
    keep_alive: bool,
    headers: http::HeaderMap,
}

fn head_of(
    resp: &httparse::Response<'_, '_>,
    len: usize,
    head: bool,
    want_headers: bool,
) -> Result<Head, Error> {
    let status = resp.code.ok_or(Error::Broken)?;
    let http10 = resp.version == Some(0);
    let mut keep_alive = !http10;
    let mut length: Option<usize> = None;
    let mut chunked = false;
    let mut encoded = false;
    let mut headers = http::HeaderMap::new();
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(Error::Broken)?;
            if length.is_some_and(|l| l != n) {
                return Err(Error::Broken);
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|b| *b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && http10 {
                    keep_alive = true;
                }
            }
        }
        if want_headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| Error::Broken)?;
            let value = http::HeaderValue::from_bytes(h.value).map_err(|_| Error::Broken)?;
            headers.append(name, value);
        }
    }
    let framing = if head || status == 204 || status == 304 || (100..200).contains(&status) {
        Framing::None
    } else if encoded {
        // A transfer coding overrides a length (RFC 9112 §6.3); not chunked last: read to the end.
        if chunked {
            Framing::Chunked
        } else {
            Framing::Close
        }
    } else {
        match length {
            Some(n) => Framing::Length(n),
            None => Framing::Close,
        }
    };
    Ok(Head {
        len,
        status,
        framing,
        keep_alive,
        headers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn requests_are_written_as_hyper_writes_them() {
        let p = parts("GET", "/a?b=1", &[("host", "h:1"), ("X-Run", "7")]);
        assert_eq!(
            &encode(&p, b"")[..],
            b"GET /a?b=1 HTTP/1.1\r\nhost: h:1\r\nx-run: 7\r\n\r\n"
        );
        let p = parts("POST", "/p", &[("host", "h")]);
        assert_eq!(
            &encode(&p, b"abc")[..],
            b"POST /p HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\n\r\nabc"
        );
        let p = parts("PUT", "/p", &[("host", "h"), ("content-length", "3")]);
        assert_eq!(
            &encode(&p, b"abc")[..],
            b"PUT /p HTTP/1.1\r\nhost: h\r\ncontent-length: 3\r\n\r\nabc"
        );
    }

    #[test]
    fn headers_with_semantics_of_their_own_go_the_general_way() {
        let plain = parts("GET", "/", &[("host", "h"), ("accept", "*/*")]).headers;
        assert!(eligible(false, &plain));
        assert!(!eligible(true, &plain), "https");
        for h in ["Connection", "Expect", "Upgrade", "Transfer-Encoding", "TE"] {
            let p = parts("GET", "/", &[("host", "h"), (h, "x")]);
            assert!(!eligible(false, &p.headers), "{h}");
        }
    }

    /// A server on a real socket that answers each request with the next of `replies` (written in
    /// the given pieces), then closes.
    async fn server(replies: Vec<Vec<&'static [u8]>>) -> (String, tokio::task::JoinHandle<()>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            for pieces in replies {
                let mut buf = [0u8; 4096];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                }
                for p in pieces {
                    s.write_all(p).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::task::yield_now().await;
                }
            }
        });
        (addr, task)
    }

    async fn conn(addr: &str) -> Conn {
        Conn::new(TcpStream::connect(addr).await.unwrap())
    }

    const GET: &[u8] = b"GET / HTTP/1.1\r\nhost: h\r\n\r\n";

    #[tokio::test]
    async fn reads_length_chunked_interim_and_headless_responses_on_one_connection() {
        let (addr, _s) = server(vec![
            vec![b"HTTP/1.1 200 OK\r\nContent-Le", b"ngth: 5\r\nX-A: 1\r\n\r\nhel", b"lo"],
            vec![
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
                b"2;ext=1\r\nde\r\n0\r\nTrailer: x\r\n\r\n",
            ],
            vec![b"HTTP/1.1 204 No Content\r\n\r\n"],
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"],
            vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"],
        ])
        .await;
        let mut c = conn(&addr).await;
        let r = c.exchange(GET, false, true).await.unwrap();
        assert_eq!(
            (r.status, &r.body[..], r.keep_alive),
            (200, &b"hello"[..], true)
        );
        assert_eq!(r.headers["x-a"], "1");
        let r = c.exchange(GET, false, false).await.unwrap();
        assert_eq!((r.status, &r.body[..]), (201, &b"abcde"[..]));
        assert!(r.headers.is_empty(), "headers only when asked for");
        let r = c.exchange(GET, false, false).await.unwrap();
        assert_eq!((r.status, r.body.len()), (204, 0));
        let r = c.exchange(GET, true, false).await.unwrap();
        assert_eq!(
            (r.status, r.body.len(), r.keep_alive),
            (200, 0, true),
            "HEAD"
        );
        let r = c.exchange(GET, false, false).await.unwrap();
        assert_eq!((&r.body[..], r.keep_alive), (&b"ok"[..], false));
    }

    #[tokio::test]
    async fn a_body_delimited_by_the_close_is_read_to_the_end() {
        let (addr, _s) = server(vec![vec![b"HTTP/1.0 200 OK\r\n\r\nall ", b"of it"]]).await;
        let r = conn(&addr).await.exchange(GET, false, false).await.unwrap();
        assert_eq!((&r.body[..], r.keep_alive), (&b"all of it"[..], false));
    }

    #[tokio::test]
    async fn a_connection_closed_after_the_request_is_broken_and_a_cut_reply_too() {
        // The server reads the request and closes without a word: it may have acted on it, so
        // the request failed (it is not one to send again).
        let (addr, _s) = server(vec![vec![]]).await;
        let mut c = conn(&addr).await;
        assert_eq!(
            c.exchange(GET, false, false).await.unwrap_err(),
            Error::Broken
        );
        let (addr, _s) = server(vec![vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
        ]])
        .await;
        let mut c = conn(&addr).await;
        assert_eq!(
            c.exchange(GET, false, false).await.unwrap_err(),
            Error::Broken
        );
        let (addr, _s) = server(vec![vec![b"HTTP/1.1 101 Switching\r\n\r\n"]]).await;
        let mut c = conn(&addr).await;
        assert_eq!(
            c.exchange(GET, false, false).await.unwrap_err(),
            Error::Broken
        );
    }

    #[tokio::test]
    async fn a_connection_closed_while_idle_is_stale_before_the_request_is_written() {
        // One answer, then the server closes the kept-alive connection.
        let (addr, server) = server(vec![vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ]])
        .await;
        let mut c = conn(&addr).await;
        assert_eq!(c.exchange(GET, false, false).await.unwrap().status, 200);
        server.await.unwrap();
        // The close has reached this side once the socket reads as readable (its end).
        c.stream.readable().await.unwrap();
        assert_eq!(
            c.exchange(GET, false, false).await.unwrap_err(),
            Error::Stale,
            "found closed before anything was written"
        );
    }
}
