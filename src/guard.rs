//! Who may talk to a worker or a master replica. One [`Guard`] wraps every route of a server: the
//! caller's address must be inside `allowed_networks` when that list is set (403 otherwise), and every
//! call but `GET /health` must carry `Authorization: Bearer <token>` when a token is set (401
//! otherwise). Tokens are compared in constant time and never logged.
//!
//! With a JWT [`Verifier`] (`security.authentication.token_auth` of `--config`), a bearer that is
//! not the static token must be a JWT that verifies (signature, expiry: 401 with the reason
//! otherwise) and whose role holds the permission the endpoint needs ([`required`]: 403 naming the
//! missing permission otherwise). The static token stays a full-access credential; replicas use it
//! for the raft RPC, which no JWT may call.

use crate::api::ApiError;
use crate::config::security::{Permission, Verifier};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use ipnet::IpNet;
use std::net::SocketAddr;
use std::sync::Arc;
use tracing::warn;

/// The access rules of one server.
#[derive(Clone, Default)]
pub struct Guard {
    token: Option<Arc<str>>,
    allowed: Arc<Vec<IpNet>>,
    jwt: Option<Arc<Verifier>>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("allowed", &self.allowed)
            .field("jwt", &self.jwt.is_some())
            .finish()
    }
}

impl Guard {
    /// A guard with an optional token and allow-list (empty = any address).
    pub fn new(token: Option<String>, allowed: Vec<IpNet>) -> Self {
        Self {
            token: token.map(Arc::from),
            allowed: Arc::new(allowed),
            jwt: None,
        }
    }

    /// Also accepts JWTs that `verifier` admits, each for its role's permissions.
    pub fn with_jwt(mut self, verifier: Option<Arc<Verifier>>) -> Self {
        self.jwt = verifier;
        self
    }

    /// True when a token (static or JWT) is required.
    pub fn has_token(&self) -> bool {
        self.token.is_some() || self.jwt.is_some()
    }

    /// Wraps every route of `router`.
    pub fn wrap(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), check))
    }

    fn admits(&self, ip: std::net::IpAddr) -> bool {
        let ip = match ip {
            std::net::IpAddr::V6(v6) => v6.to_ipv4_mapped().map(std::net::IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.allowed.is_empty() || self.allowed.iter().any(|n| n.contains(&ip))
    }
}

/// A network entry that is neither a CIDR block nor an address.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a network (CIDR like 10.0.0.0/8) or an address")]
pub struct BadNetwork(pub String);

/// Parses one entry of an allow-list: `10.0.0.0/8`, or a bare address (a /32 or /128).
pub fn parse_network(text: &str) -> Result<IpNet, BadNetwork> {
    let s = text.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| BadNetwork(s.to_string()))
}

/// Parses `10.0.0.0/8,127.0.0.1` (empty entries are skipped).
pub fn parse_networks(text: &str) -> Result<Vec<IpNet>, BadNetwork> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(parse_network)
        .collect()
}

/// Compares without an early exit, so response timing does not reveal how much of a token matched.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i % b.len().max(1)).copied().unwrap_or(0));
    }
    diff == 0
}

/// What an endpoint needs: a permission, the static token alone (raft RPC between replicas), or
/// nothing (`GET /health`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Nothing,
    Permission(Permission),
    StaticToken,
}

/// Which paths a row of [`ROUTES`] matches.
#[derive(Debug, Clone, Copy)]
enum Paths {
    /// Exactly this path.
    Is(&'static str),
    /// Every path that starts with this prefix.
    Under(&'static str),
    /// A path under the prefix that ends with the suffix (`/runs/{id}/stop`).
    UnderEnding(&'static str, &'static str),
}

/// Which methods a row of [`ROUTES`] matches.
#[derive(Debug, Clone, Copy)]
enum Methods {
    Any,
    /// GET or HEAD.
    Read,
    /// Any but GET and HEAD.
    Write,
    Patch,
}

impl Paths {
    fn matches(self, path: &str) -> bool {
        match self {
            Paths::Is(p) => path == p,
            Paths::Under(prefix) => path.starts_with(prefix),
            Paths::UnderEnding(prefix, suffix) => {
                path.starts_with(prefix) && path.ends_with(suffix)
            }
        }
    }
}

impl Methods {
    fn matches(self, method: &Method) -> bool {
        let read = method == Method::GET || method == Method::HEAD;
        match self {
            Methods::Any => true,
            Methods::Read => read,
            Methods::Write => !read,
            Methods::Patch => method == Method::PATCH,
        }
    }
}

const EXECUTE: Needs = Needs::Permission(Permission::ExecuteTests);
const REPORT: Needs = Needs::Permission(Permission::ReportMetrics);
const MANAGE: Needs = Needs::Permission(Permission::ManageWorkers);
const VIEW: Needs = Needs::Permission(Permission::ViewAllResults);

/// The one route table of a worker, a master and the master's web dashboard (README's table): the
/// first row whose path and method match says what a call needs. A path no row matches needs
/// `manage_workers`, the strictest, so a route added without a row here is not left open.
const ROUTES: &[(Paths, Methods, Needs)] = {
    use Methods::*;
    use Paths::*;
    &[
        (Is("/health"), Any, Needs::Nothing),
        (Under("/raft/"), Any, Needs::StaticToken),
        // Worker.
        // `/variables`: the run's global variables, read and spread by the controller like rendezvous.
        (Is("/prepare"), Any, EXECUTE),
        (Is("/start"), Any, EXECUTE),
        (Is("/stop"), Any, EXECUTE),
        (Is("/rendezvous"), Any, EXECUTE),
        (Is("/variables"), Any, EXECUTE),
        // `/leases`: the shared counters' grants (`state_backend: raft`), part of running the test.
        (Is("/leases"), Any, EXECUTE),
        // Moving a failed worker's share onto a running one (load_redistribution).
        (Is("/scale"), Any, MANAGE),
        (Is("/status"), Any, REPORT),
        (Is("/results"), Any, REPORT),
        // A worker's CPU and memory sample, read when a `least_loaded` run is planned.
        (Is("/resources"), Any, REPORT),
        // Both: a worker's /metrics is its run's counters, a master's the Prometheus page.
        (Is("/metrics"), Any, REPORT),
        // Master.
        // Every client finds the leader with it, so the read-only viewer may.
        (Is("/cluster"), Any, VIEW),
        (Is("/runs"), Read, VIEW),
        (Is("/runs"), Any, EXECUTE),
        (UnderEnding("/runs/", "/stop"), Any, EXECUTE),
        // Live control of a running run's load (`PATCH /runs/{id}`): as much as starting it.
        (Under("/runs/"), Patch, EXECUTE),
        (Under("/runs/"), Read, VIEW),
        // The registered pool: listing it is a read; registering (POST) joins the cluster, so
        // it needs manage_workers (the default).
        (Is("/workers"), Read, VIEW),
        // The web dashboard (`master::ui`): its shell holds no data; its fragments are reads; the
        // test files of --tests-dir and the launch need what `POST /runs` needs.
        (Is("/ui"), Any, Needs::Nothing),
        (Is("/ui/"), Any, Needs::Nothing),
        (Under("/ui/tests/"), Any, EXECUTE),
        (Is("/ui/runs"), Write, EXECUTE),
        (Under("/ui/"), Read, VIEW),
    ]
};

/// The permission each endpoint of a worker or a master needs: the first row of [`ROUTES`] that
/// matches, `manage_workers` when none does.
pub fn required(method: &Method, path: &str) -> Needs {
    ROUTES
        .iter()
        .find(|(paths, methods, _)| paths.matches(path) && methods.matches(method))
        .map_or(MANAGE, |&(_, _, needs)| needs)
}

async fn check(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(p)| *p);
    if let Some(peer) = peer {
        if !g.admits(peer.ip()) {
            warn!(%peer, path = req.uri().path(), "refused: caller not in allowed networks");
            return ApiError::reply(
                StatusCode::FORBIDDEN,
                format!("{} is not in allowed_networks", peer.ip()),
            );
        }
    }
    if let Some(verifier) = &g.jwt {
        let needs = required(req.method(), req.uri().path());
        let given = req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let is_static = given.is_some_and(|t| {
            g.token
                .as_ref()
                .is_some_and(|s| constant_time_eq(t.as_bytes(), s.as_bytes()))
        });
        let refuse = |status, message: String| {
            warn!(
                peer = peer.map(|p| p.to_string()).unwrap_or_default(),
                path = req.uri().path(),
                "refused: {message}"
            );
            ApiError::reply(status, message)
        };
        match (needs, given) {
            (Needs::Nothing, _) => {}
            _ if is_static => {}
            (Needs::StaticToken, _) => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "raft RPC takes the replicas' static token only".into(),
                )
            }
            (Needs::Permission(_), None) => {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "missing bearer token (a JWT)".into(),
                )
            }
            (Needs::Permission(p), Some(token)) => match verifier.verify(token) {
                Err(reason) => return refuse(StatusCode::UNAUTHORIZED, reason),
                Ok(grant) if !grant.allows(p) => {
                    return refuse(
                        StatusCode::FORBIDDEN,
                        format!(
                            "role `{}` lacks the permission `{}` ({} {} needs it)",
                            grant.role,
                            p.name(),
                            req.method(),
                            req.uri().path()
                        ),
                    )
                }
                Ok(_) => {}
            },
        }
        return next.run(req).await;
    }
    if let Some(token) = &g.token {
        if required(req.method(), req.uri().path()) != Needs::Nothing {
            let given = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
                warn!(
                    peer = peer.map(|p| p.to_string()).unwrap_or_default(),
                    path = req.uri().path(),
                    token_given = given.is_some(),
                    "refused: missing or wrong bearer token"
                );
                return ApiError::reply(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_needs_a_permission() {
        use Needs::{Nothing, StaticToken};
        let (get, post, patch, head, delete) = (
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::HEAD,
            Method::DELETE,
        );
        let cases = [
            (&get, "/health", Nothing),
            (&post, "/prepare", EXECUTE),
            (&post, "/start", EXECUTE),
            (&post, "/stop", EXECUTE),
            (&get, "/rendezvous", EXECUTE),
            (&post, "/variables", EXECUTE),
            (&post, "/leases", EXECUTE),
            (&post, "/scale", MANAGE),
            (&get, "/status", REPORT),
            (&get, "/results", REPORT),
            (&get, "/metrics", REPORT),
            (&get, "/cluster", VIEW),
            (&get, "/runs", VIEW),
            (&head, "/runs", VIEW),
            (&post, "/runs", EXECUTE),
            (&get, "/runs/r-1", VIEW),
            (&post, "/runs/r-1/stop", EXECUTE),
            (&patch, "/runs/r-1", EXECUTE),
            (&delete, "/runs/r-1", MANAGE),
            (&get, "/workers", VIEW),
            (&post, "/workers", MANAGE),
            (&post, "/raft/vote", StaticToken),
            (&get, "/ui", Nothing),
            (&get, "/ui/", Nothing),
            (&get, "/ui/runs/r-1", VIEW),
            (&get, "/ui/runs", VIEW),
            (&post, "/ui/runs", EXECUTE),
            (&get, "/ui/tests/t.yaml", EXECUTE),
            (&post, "/ui/other", MANAGE),
            (&get, "/new-route", MANAGE),
        ];
        for (method, path, needs) in cases {
            assert_eq!(required(method, path), needs, "{method} {path}");
        }
    }

    #[test]
    fn token_compare() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn networks() {
        let g = Guard::new(None, parse_networks("10.0.0.0/8, 127.0.0.1").unwrap());
        assert!(g.admits("10.1.2.3".parse().unwrap()));
        assert!(g.admits("127.0.0.1".parse().unwrap()));
        assert!(
            g.admits("::ffff:127.0.0.1".parse().unwrap()),
            "v4-mapped v6 counts as v4"
        );
        assert!(!g.admits("127.0.0.2".parse().unwrap()));
        assert!(!g.admits("192.168.1.1".parse().unwrap()));
        assert!(
            Guard::default().admits("8.8.8.8".parse().unwrap()),
            "no list: anyone"
        );
        assert!(parse_networks("10.0.0.0/33").is_err());
        assert!(parse_networks("nonsense").is_err());
        assert!(
            !format!("{:?}", Guard::new(Some("s3cret".into()), vec![])).contains("s3cret"),
            "Debug hides the token"
        );
    }
}
