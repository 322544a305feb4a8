//! `perfornium mock`: a small JSON API to aim tests at (users list/get/create, `/delay/{ms}`,
//! `/status/{code}`, `/health`), plus what the protocol features need: a SOAP calculator with its
//! WSDL (`GET /soap/calculator?wsdl`; `POST /soap/calculator` answers `Add` and `Subtract` of two
//! ints sent with their SOAPAction, and a Fault for anything else), `POST /form` and `POST /multipart` echoing the fields they
//! received as JSON, `/digest/{md5|sha-256}` behind HTTP Digest auth (`qop=auth`; nonces it issued,
//! with `nc` counting up) and `/auth/basic` behind Basic
//! auth (user `mock`, password `secret`), and `/auth/bearer` echoing a bearer token. It counts every request it serves, by route and status, and reports the counts at
//! `GET /__stats`, so tests can check the engine's numbers against the server's (also per second of
//! arrival, `per_second`). `/slow_for/{worker}/{ms}` is slow only for one worker of a distributed run.
//! `/record/...` (any method) keeps what it received — method, path with query, headers and body
//! — answers it back as JSON (`body` parsed when it is JSON), and `GET /__recorded` lists it
//! (the last 10,000), so tests can see exactly what each request carried.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the mock has served (requests to `/__stats` itself are not counted).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Stats {
    pub total: u64,
    pub by_route: BTreeMap<String, u64>,
    pub by_status: BTreeMap<u16, u64>,
    /// Headers named `x-trace` seen, so a test can see what a step sent.
    pub last_x_trace: Option<String>,
    /// SOAP calls answered with a result (not a Fault).
    #[serde(default)]
    pub soap_ok: u64,
    /// Digest-protected requests whose `Authorization` verified.
    #[serde(default)]
    pub digest_ok: u64,
    /// When the first request of each worker of a distributed run arrived (this machine's clock,
    /// ms since the epoch, µs precision), by the worker's name in `x-perfornium-worker`: the
    /// ground truth for how closely a synchronized start really started the workers together.
    #[serde(default)]
    pub first_request_ms: BTreeMap<String, f64>,
    /// Requests served per second of this machine's clock (Unix seconds → count), for the last
    /// [`PER_SECOND_KEPT`] seconds with traffic: what a load change did, as the target saw it.
    #[serde(default)]
    pub per_second: BTreeMap<u64, u64>,
    /// Requests served by the worker that sent them (`x-perfornium-worker`).
    #[serde(default)]
    pub by_worker: BTreeMap<String, u64>,
}

/// How many seconds of [`Stats::per_second`] the mock keeps.
pub const PER_SECOND_KEPT: usize = 3600;

#[derive(Default)]
struct Inner {
    stats: Stats,
    users: Vec<Value>,
    /// Digest nonces issued, with the highest `nc` answered so far (a replay is refused).
    nonces: std::collections::HashMap<String, u64>,
    /// What `/record/...` received, oldest first.
    recorded: std::collections::VecDeque<Value>,
}

#[derive(Clone)]
struct Mock {
    inner: Arc<Mutex<Inner>>,
    delay: Duration,
}

/// The mock's routes; `delay` is added to every route but `/health` and `/__stats`.
pub fn router(delay: Duration) -> Router {
    let users = (1..=10).map(|i| json!({"id": i, "name": format!("user{i}"), "email": format!("user{i}@example.com")})).collect();
    let state = Mock {
        inner: Arc::new(Mutex::new(Inner {
            users,
            ..Default::default()
        })),
        delay,
    };
    Router::new()
        .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/users", get(list_users).post(create_user))
        .route("/users/{id}", get(get_user))
        .route("/delay/{ms}", get(delay_ms))
        .route("/slow_for/{worker}/{ms}", get(slow_for))
        .route("/status/{code}", get(status).post(status))
        .route("/echo", axum::routing::post(echo))
        .route("/form", axum::routing::post(form))
        .route("/multipart", axum::routing::post(multipart))
        .route("/soap/calculator", get(wsdl).post(soap))
        .route("/digest/{algorithm}", get(digest).post(digest))
        .route("/auth/basic", get(basic).post(basic))
        .route("/auth/bearer", get(bearer).post(bearer))
        .route("/record", axum::routing::any(record))
        .route("/record/{*rest}", axum::routing::any(record))
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .route("/__stats", get(stats))
        .route("/__recorded", get(recorded))
        .with_state(state)
}

/// Serves the mock on `listener` until `stop` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    delay: Duration,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    crate::tls::serve(listener, router(delay), tls, stop).await
}

async fn count(State(m): State<Mock>, req: Request, next: Next) -> Response {
    let arrived_ms = crate::time::precise_now_ms();
    let worker = req
        .headers()
        .get(crate::api::worker::WORKER_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let trace = req
        .headers()
        .get("x-trace")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    if route != "/health" && !m.delay.is_zero() {
        tokio::time::sleep(m.delay).await;
    }
    let resp = next.run(req).await;
    let mut inner = m.inner.lock().expect("mock lock poisoned");
    inner.stats.total += 1;
    *inner
        .stats
        .per_second
        .entry((arrived_ms / 1000.0) as u64)
        .or_default() += 1;
    if inner.stats.per_second.len() > PER_SECOND_KEPT {
        inner.stats.per_second.pop_first();
    }
    *inner.stats.by_route.entry(route).or_default() += 1;
    *inner
        .stats
        .by_status
        .entry(resp.status().as_u16())
        .or_default() += 1;
    if trace.is_some() {
        inner.stats.last_x_trace = trace;
    }
    if let Some(w) = worker {
        *inner.stats.by_worker.entry(w.clone()).or_default() += 1;
        inner.stats.first_request_ms.entry(w).or_insert(arrived_ms);
    }
    resp
}

/// How many received requests `/record` keeps.
const RECORDED: usize = 10_000;

async fn record(
    State(m): State<Mock>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    body: String,
) -> Json<Value> {
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let parsed = serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body));
    let seen = json!({
        "method": method.as_str(),
        "path": uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"),
        "headers": headers,
        "body": parsed,
    });
    let mut inner = m.inner.lock().expect("mock lock poisoned");
    if inner.recorded.len() >= RECORDED {
        inner.recorded.pop_front();
    }
    inner.recorded.push_back(seen.clone());
    Json(seen)
}

async fn recorded(State(m): State<Mock>) -> Json<Value> {
    let inner = m.inner.lock().expect("mock lock poisoned");
    Json(Value::Array(inner.recorded.iter().cloned().collect()))
}

async fn stats(State(m): State<Mock>) -> Json<Stats> {
    Json(m.inner.lock().expect("mock lock poisoned").stats.clone())
}

async fn list_users(State(m): State<Mock>) -> Json<Value> {
    let users = m.inner.lock().expect("mock lock poisoned").users.clone();
    Json(json!({ "users": users, "total": users.len() }))
}

async fn get_user(State(m): State<Mock>, Path(id): Path<String>) -> Response {
    let inner = m.inner.lock().expect("mock lock poisoned");
    match inner
        .users
        .iter()
        .find(|u| u["id"] == id.parse::<u64>().unwrap_or(0))
    {
        Some(u) => Json(u.clone()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such user", "id": id})),
        )
            .into_response(),
    }
}

async fn create_user(State(m): State<Mock>, body: Option<Json<Value>>) -> Response {
    let Some(Json(mut user)) = body else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "body must be JSON"})),
        )
            .into_response();
    };
    let mut inner = m.inner.lock().expect("mock lock poisoned");
    let id = inner.users.len() as u64 + 1;
    user["id"] = json!(id);
    // Keep the list bounded in long runs; the id still counts up.
    if inner.users.len() < 10_000 {
        inner.users.push(user.clone());
    }
    (StatusCode::CREATED, Json(user)).into_response()
}

async fn delay_ms(Path(ms): Path<u64>) -> Json<Value> {
    tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    Json(json!({"delayed_ms": ms}))
}

/// `/slow_for/{worker}/{ms}`: waits `ms` (at most a minute) when the request comes from `worker`
/// (its `x-perfornium-worker` header, `host:port`), answers at once otherwise: one worker of a
/// distributed run sees a slow target, the others a fast one.
async fn slow_for(
    Path((worker, ms)): Path<(String, u64)>,
    headers: axum::http::HeaderMap,
) -> Json<Value> {
    let from = headers
        .get(crate::api::worker::WORKER_HEADER)
        .and_then(|v| v.to_str().ok());
    let slow = from == Some(worker.as_str());
    if slow {
        tokio::time::sleep(Duration::from_millis(ms.min(60_000))).await;
    }
    Json(json!({"slow": slow}))
}

async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (code, Json(json!({"status": code.as_u16()}))).into_response()
}

/// The body back, with the request's Content-Type (so a test can see what a step sent).
async fn echo(headers: axum::http::HeaderMap, body: String) -> Response {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/plain; charset=utf-8")
        .to_string();
    ([(axum::http::header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The mock's Digest credentials.
pub const DIGEST_USER: &str = "mock";
pub const DIGEST_PASSWORD: &str = "secret";
const REALM: &str = "perfornium-mock";

async fn form(headers: axum::http::HeaderMap, body: String) -> Response {
    let urlencoded = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !urlencoded {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(json!({"error": "expected application/x-www-form-urlencoded"})),
        )
            .into_response();
    }
    let fields: serde_json::Map<String, Value> = url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), Value::String(v.into_owned())))
        .collect();
    Json(json!({ "form": fields })).into_response()
}

/// Echoes a `multipart/form-data` body: text fields by name, files as name → {filename,
/// content_type, size, text (when UTF-8)}.
async fn multipart(headers: axum::http::HeaderMap, body: axum::body::Bytes) -> Response {
    let boundary = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("multipart/form-data"))
        .and_then(|v| v.split("boundary=").nth(1))
        .map(|b| b.trim_matches('"').to_string());
    let Some(boundary) = boundary else {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(json!({"error": "expected multipart/form-data with a boundary"})),
        )
            .into_response();
    };
    let delimiter = format!("--{boundary}");
    let mut fields = serde_json::Map::new();
    let mut files = serde_json::Map::new();
    let mut rest: &[u8] = &body;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let Some(start) = find(rest, delimiter.as_bytes()) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "no parts"}))).into_response();
    };
    rest = &rest[start + delimiter.len()..];
    while rest.starts_with(b"\r\n") {
        rest = &rest[2..];
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        rest = &rest[head_end + 4..];
        let end_marker = format!("\r\n{delimiter}");
        let Some(end) = find(rest, end_marker.as_bytes()) else {
            break;
        };
        let data = &rest[..end];
        rest = &rest[end + end_marker.len()..];
        let param = |name: &str| {
            head.split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(&format!("{name}=\"")))
                .and_then(|p| p.split('"').next())
                .map(String::from)
        };
        let Some(name) = param("name") else { continue };
        match param("filename") {
            Some(filename) => {
                let content_type = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .starts_with("content-type:")
                            .then(|| l["content-type:".len()..].trim().to_string())
                    })
                    .unwrap_or_default();
                files.insert(
                    name,
                    json!({"filename": filename, "content_type": content_type, "size": data.len(),
                           "text": std::str::from_utf8(data).ok()}),
                );
            }
            None => {
                fields.insert(
                    name,
                    Value::String(String::from_utf8_lossy(data).into_owned()),
                );
            }
        }
    }
    Json(json!({"fields": fields, "files": files})).into_response()
}

/// A Digest-protected resource: a `401` challenge without a valid `Authorization`.
async fn digest(
    State(m): State<Mock>,
    Path(algorithm): Path<String>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> Response {
    let algorithm = match algorithm.to_ascii_lowercase().as_str() {
        "md5" => "MD5",
        "sha-256" | "sha256" => "SHA-256",
        _ => return (StatusCode::NOT_FOUND, "use /digest/md5 or /digest/sha-256").into_response(),
    };
    let verified = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(crate::engine::digest::fields)
        .filter(|f| {
            f.get("username").map(String::as_str) == Some(DIGEST_USER)
                && f.get("realm").map(String::as_str) == Some(REALM)
                && f.get("algorithm").map(String::as_str) == Some(algorithm)
                && f.get("uri").map(String::as_str)
                    == Some(uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"))
        })
        .and_then(|f| {
            let want =
                crate::engine::digest::expected_response(&f, method.as_str(), DIGEST_PASSWORD)?;
            (f.get("response") == Some(&want)).then_some(f)
        })
        .and_then(|f| {
            // The nonce must be one we issued, and `nc` must count up (no replays).
            let nc = u64::from_str_radix(f.get("nc")?, 16).ok()?;
            let mut inner = m.inner.lock().expect("mock lock poisoned");
            let last = inner.nonces.get_mut(f.get("nonce")?)?;
            (nc > *last).then(|| *last = nc)
        })
        .is_some();
    if verified {
        m.inner.lock().expect("mock lock poisoned").stats.digest_ok += 1;
        return Json(json!({"authenticated": true, "user": DIGEST_USER, "algorithm": algorithm}))
            .into_response();
    }
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    {
        let mut inner = m.inner.lock().expect("mock lock poisoned");
        if inner.nonces.len() >= 10_000 {
            inner.nonces.clear();
        }
        inner.nonces.insert(nonce.clone(), 0);
    }
    let challenge = format!(
        "Digest realm=\"{REALM}\", qop=\"auth\", algorithm={algorithm}, nonce=\"{nonce}\", opaque=\"mock\""
    );
    (
        StatusCode::UNAUTHORIZED,
        [(axum::http::header::WWW_AUTHENTICATE, challenge)],
        Json(json!({"error": "digest authentication required"})),
    )
        .into_response()
}

/// Basic auth with the mock's credentials.
async fn basic(headers: axum::http::HeaderMap) -> Response {
    use base64::Engine;
    let want = base64::engine::general_purpose::STANDARD
        .encode(format!("{DIGEST_USER}:{DIGEST_PASSWORD}"));
    let sent = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "));
    if sent == Some(want.as_str()) {
        Json(json!({"authenticated": true, "user": DIGEST_USER})).into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(
                axum::http::header::WWW_AUTHENTICATE,
                format!("Basic realm=\"{REALM}\""),
            )],
            Json(json!({"error": "basic authentication required"})),
        )
            .into_response()
    }
}

/// Echoes the bearer token sent.
async fn bearer(headers: axum::http::HeaderMap) -> Response {
    match headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        Some(token) => Json(json!({"token": token})).into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "no bearer token"})),
        )
            .into_response(),
    }
}

const CALC_NS: &str = "http://tempuri.org/";

/// The calculator's WSDL, with this server as its address.
async fn wsdl(uri: axum::http::Uri, headers: axum::http::HeaderMap) -> Response {
    if uri.query().is_none_or(|q| !q.eq_ignore_ascii_case("wsdl")) {
        return (
            StatusCode::NOT_FOUND,
            "GET /soap/calculator?wsdl for the WSDL",
        )
            .into_response();
    }
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let ops = ["Add", "Subtract"];
    let elements: String = ops
        .iter()
        .map(|op| {
            format!(
                r#"<s:element name="{op}"><s:complexType><s:sequence><s:element name="intA" type="s:int"/><s:element name="intB" type="s:int"/></s:sequence></s:complexType></s:element><s:element name="{op}Response"><s:complexType><s:sequence><s:element name="{op}Result" type="s:int"/></s:sequence></s:complexType></s:element>"#
            )
        })
        .collect();
    let per_op = |f: &dyn Fn(&str) -> String| ops.iter().map(|op| f(op)).collect::<String>();
    let messages = per_op(&|op| {
        format!(
            r#"<wsdl:message name="{op}SoapIn"><wsdl:part name="parameters" element="tns:{op}"/></wsdl:message><wsdl:message name="{op}SoapOut"><wsdl:part name="parameters" element="tns:{op}Response"/></wsdl:message>"#
        )
    });
    let port_ops = per_op(&|op| {
        format!(
            r#"<wsdl:operation name="{op}"><wsdl:input message="tns:{op}SoapIn"/><wsdl:output message="tns:{op}SoapOut"/></wsdl:operation>"#
        )
    });
    let binding_ops = per_op(&|op| {
        format!(
            r#"<wsdl:operation name="{op}"><soap:operation soapAction="{CALC_NS}{op}" style="document"/><wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>"#
        )
    });
    let text = format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<wsdl:definitions xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:s="http://www.w3.org/2001/XMLSchema" xmlns:tns="{CALC_NS}" targetNamespace="{CALC_NS}">
<wsdl:types><s:schema elementFormDefault="qualified" targetNamespace="{CALC_NS}">{elements}</s:schema></wsdl:types>
{messages}
<wsdl:portType name="CalculatorSoap">{port_ops}</wsdl:portType>
<wsdl:binding name="CalculatorSoap" type="tns:CalculatorSoap"><soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>{binding_ops}</wsdl:binding>
<wsdl:service name="Calculator"><wsdl:port name="CalculatorSoap" binding="tns:CalculatorSoap"><soap:address location="http://{host}/soap/calculator"/></wsdl:port></wsdl:service>
</wsdl:definitions>"#
    );
    (
        [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        text,
    )
        .into_response()
}

fn soap_reply(status: StatusCode, body: String) -> Response {
    let text = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>{body}</soap:Body></soap:Envelope>"#
    );
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        text,
    )
        .into_response()
}

fn fault(code: &str, why: &str) -> Response {
    soap_reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("<soap:Fault><faultcode>soap:{code}</faultcode><faultstring>{why}</faultstring></soap:Fault>"),
    )
}

/// Answers `Add` and `Subtract` envelopes; a Fault for anything it cannot compute.
async fn soap(State(m): State<Mock>, headers: axum::http::HeaderMap, body: String) -> Response {
    let Ok(doc) = roxmltree::Document::parse(&body) else {
        return fault("Client", "the request is not XML");
    };
    let Some(call) = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Body")
        .and_then(|b| b.children().find(|c| c.is_element()))
    else {
        return fault("Client", "no soap:Body element");
    };
    let op = call.tag_name().name();
    if call.tag_name().namespace() != Some(CALC_NS) {
        return fault("Client", &format!("`{op}` is not in namespace {CALC_NS}"));
    }
    // SOAP 1.1: the SOAPAction must name the operation the body calls.
    let action = headers
        .get("soapaction")
        .and_then(|v| v.to_str().ok())
        .map(|a| a.trim_matches('"').to_string())
        .unwrap_or_default();
    if action != format!("{CALC_NS}{op}") {
        return fault(
            "Client",
            &format!("SOAPAction `{action}` is not `{CALC_NS}{op}`"),
        );
    }
    let arg = |name: &str| {
        call.children()
            .find(|c| c.is_element() && c.tag_name().name() == name)
            .and_then(|c| c.text())
            .and_then(|t| t.trim().parse::<i64>().ok())
    };
    let (Some(a), Some(b)) = (arg("intA"), arg("intB")) else {
        return fault("Client", "intA and intB must be integers");
    };
    let result = match op {
        "Add" => a.checked_add(b),
        "Subtract" => a.checked_sub(b),
        _ => return fault("Client", &format!("no operation `{op}`")),
    };
    let Some(result) = result else {
        return fault("Client", "overflow");
    };
    m.inner.lock().expect("mock lock poisoned").stats.soap_ok += 1;
    soap_reply(
        StatusCode::OK,
        format!(
            r#"<{op}Response xmlns="{CALC_NS}"><{op}Result>{result}</{op}Result></{op}Response>"#
        ),
    )
}
