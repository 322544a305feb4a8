//! A plain HTTP/1.1 receiver on a free loopback port that keeps every request it gets (path,
//! headers, body) and answers a fixed reply: the webhook and bulk-API endpoints of monitoring tests.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One HTTP request a [`Receiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    /// Answered 200 (else 503).
    pub taken: bool,
}

/// A plain HTTP/1.1 server on a free loopback port that keeps every request and answers `reply`.
pub struct Receiver {
    pub addr: String,
    got: Arc<Mutex<Vec<Received>>>,
    /// While false, requests are kept but answered 503.
    pub open: Arc<std::sync::atomic::AtomicBool>,
}

impl Receiver {
    pub fn start(reply: &'static str) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a receiver");
        let addr = listener.local_addr().expect("its address").to_string();
        let got = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (keep, gate) = (got.clone(), open.clone());
        // Lives as long as the test process: the thread blocks in accept.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (keep, gate) = (keep.clone(), gate.clone());
                std::thread::spawn(move || serve_one(conn, reply, &keep, &gate));
            }
        });
        Receiver { addr, got, open }
    }

    pub fn got(&self) -> Vec<Received> {
        self.got.lock().expect("receiver lock").clone()
    }
}

/// Reads requests off one connection (keep-alive) until it closes.
fn serve_one(
    mut conn: TcpStream,
    reply: &str,
    keep: &Mutex<Vec<Received>>,
    open: &std::sync::atomic::AtomicBool,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        // Headers.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let mut lines = head.lines();
        let path = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("")
            .to_string();
        let headers: BTreeMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + len {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).to_string();
        buf.drain(..head_end + len);
        let taken = open.load(std::sync::atomic::Ordering::SeqCst);
        keep.lock().expect("receiver lock").push(Received {
            path,
            headers,
            body,
            taken,
        });
        let status = if taken {
            "200 OK"
        } else {
            "503 Service Unavailable"
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
            reply.len()
        );
        if conn.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
