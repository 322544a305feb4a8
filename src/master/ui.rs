//! The web dashboard at `/ui`: one server-rendered page served by every master replica, by
//! `perfornium distributed`'s embedded master (`monitoring.dashboards.master_dashboard: true`) and by
//! `perfornium dashboard` (a proxy to masters, or a reader of a local results directory).
//!
//! `GET /ui` is the page's shell (HTML, CSS and one small hand-written script, all compiled into the
//! binary): it holds no data, so it is open like `/health`. Everything the page shows comes from
//! HTML fragments under `/ui/…` that the script fetches with the token the user typed in (kept in
//! the tab's sessionStorage), so they need what the JSON API's reads need (`view_all_results`):
//! the runs past and live (`/ui/runs`, from the replicated store, so any replica answers and the
//! history outlives a leader), one run (`/ui/runs/{id}`: phase, per-worker health, the registered
//! pool, and its charts: the HTML report's, rendered from the same record as `GET /runs/{id}`), the
//! comparison of two runs (`/ui/compare/{a}/{b}`) and the launch form (`/ui/launch`). A live run's
//! page follows `GET /runs/{id}/stream` (read with `fetch`, which can send the token where an
//! `EventSource` cannot) and redraws as each interval arrives.
//!
//! The one write, `POST /ui/runs` ([`crate::api::ui::Launch`]), is turned into the `POST /runs` body
//! and sent to the leader with the caller's own `Authorization` header: the leader's guard checks
//! it exactly as for a call to the API, and a follower serving the page needs no redirect that a
//! browser would refuse to follow across origins.

mod proxy;
mod render;
mod results;

pub use proxy::{parse_masters, serve_proxy, ProxyError};
pub use results::Results;

use super::api::Master;
use super::store::RaftStore;
use crate::api::master::Submit;
use crate::api::ui::Launch;
use crate::api::ApiError;
use crate::control::run::RunRecord;
use crate::report::RunSummary;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::path::PathBuf;
use tracing::{info, warn};

/// The page's shell: no data, only the layout, the style and the script.
pub const SHELL: &str = concat!(
    include_str!("ui/head.html"),
    "<style>",
    include_str!("ui/app.css"),
    "</style>\n</head>\n",
    include_str!("ui/body.html"),
    "<script>",
    include_str!("ui/app.js"),
    "</script>\n</body>\n</html>\n"
);

/// Where the page's runs come from.
#[derive(Clone)]
pub enum Runs {
    /// A replica's applied copy of the replicated store.
    Store(RaftStore),
    /// Summaries saved by `-o` under a directory (`perfornium dashboard` without `--master`).
    Dir(Results),
}

/// One run as the list shows it.
#[derive(Debug, Clone)]
pub struct RunEntry {
    pub id: String,
    pub name: String,
    pub phase: String,
    pub is_final: bool,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
    pub requests: u64,
    pub errors: u64,
}

/// One run with everything its page shows.
pub struct RunPage {
    pub entry: RunEntry,
    pub summary: RunSummary,
    /// The live record, when the run is in a store.
    pub record: Option<RunRecord>,
    /// The run has a Server-Sent Events feed the page can follow.
    pub streamed: bool,
}

impl Runs {
    fn list(&self) -> Vec<RunEntry> {
        match self {
            Runs::Store(s) => {
                let mut runs: Vec<RunEntry> = s.runs().iter().map(entry_of).collect();
                runs.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(a.id.cmp(&b.id)));
                runs
            }
            Runs::Dir(d) => d.list(),
        }
    }

    fn page(&self, id: &str) -> Option<RunPage> {
        match self {
            Runs::Store(s) => s.run(id).map(|rec| RunPage {
                entry: entry_of(&rec),
                summary: rec.summary(),
                streamed: sse_feed(&rec),
                record: Some(rec),
            }),
            Runs::Dir(d) => d.page(id),
        }
    }
}

fn entry_of(rec: &RunRecord) -> RunEntry {
    let (requests, errors) = rec
        .workers
        .iter()
        .flat_map(|w| w.merged.iter())
        .fold((0, 0), |(r, e), s| (r + s.count, e + s.errors));
    RunEntry {
        id: rec.id.clone(),
        name: rec.test.name.clone(),
        phase: rec.phase.to_string(),
        is_final: rec.phase.is_final(),
        created_ms: rec.created_ms,
        finished_ms: rec.finished_ms,
        requests,
        errors,
    }
}

/// True when `GET /runs/{id}/stream` serves the run as Server-Sent Events.
fn sse_feed(rec: &RunRecord) -> bool {
    let agg = rec
        .test
        .distributed
        .as_ref()
        .and_then(|d| d.results.as_ref())
        .and_then(|r| r.aggregation.as_ref());
    let websocket = agg
        .and_then(|a| a.streaming.as_ref())
        .and_then(|s| s.protocol)
        == Some(crate::config::results::StreamProtocol::Websocket);
    agg.is_some_and(|a| a.streaming_on()) && rec.feed.is_some() && !websocket
}

/// What serves the page, with what it can do.
#[derive(Clone)]
pub struct Ui {
    runs: Runs,
    /// A master replica: lists the registered pool and launches runs through its leader.
    master: Option<Master>,
    /// `--tests-dir`: the tests the launch form offers.
    tests_dir: Option<PathBuf>,
    /// Who serves the page, as its header says.
    served_by: String,
}

impl Ui {
    /// The page of a master replica.
    pub fn of_master(master: Master, tests_dir: Option<PathBuf>) -> Ui {
        Ui {
            served_by: format!("master replica {}", master.store.replica.id()),
            runs: Runs::Store(master.store.clone()),
            master: Some(master),
            tests_dir,
        }
    }

    /// The page of `perfornium distributed`'s embedded master: its run, read only.
    pub fn of_embedded(store: RaftStore) -> Ui {
        Ui {
            runs: Runs::Store(store),
            master: None,
            tests_dir: None,
            served_by: "perfornium distributed (embedded master)".into(),
        }
    }

    /// The page over a results directory: past runs, read only.
    pub fn of_results(results: Results) -> Ui {
        Ui {
            served_by: format!("results in {}", results.root().display()),
            runs: Runs::Dir(results),
            master: None,
            tests_dir: None,
        }
    }
}

/// The dashboard's routes over `ui`.
pub fn router(ui: Ui) -> Router {
    Router::new()
        .route("/ui", get(shell))
        .route("/ui/", get(shell))
        .route("/ui/runs", get(list_runs).post(launch))
        .route("/ui/runs/{id}", get(run_page))
        .route("/ui/runs/{id}/report", get(run_report))
        .route("/ui/compare/{a}/{b}", get(compare))
        .route("/ui/launch", get(launch_form))
        .route("/ui/tests/{name}", get(test_text))
        .with_state(ui)
}

/// What `perfornium distributed` serves when the test asks for the master dashboard: the page
/// (read only) and the run's feed, over its embedded master.
pub fn embedded_router(store: RaftStore) -> Router {
    router(Ui::of_embedded(store.clone())).merge(super::stream::router(store))
}

/// Serves [`embedded_router`] on `listener` until `stop` (then until open streams end).
pub async fn serve_embedded(
    listener: tokio::net::TcpListener,
    store: RaftStore,
    stop: tokio_util::sync::CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, embedded_router(store))
        .with_graceful_shutdown(stop.cancelled_owned())
        .await
}

async fn shell() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        SHELL,
    )
        .into_response()
}

async fn list_runs(State(ui): State<Ui>) -> Html<String> {
    Html(render::runs(&ui.served_by, &ui.runs.list()))
}

async fn run_page(State(ui): State<Ui>, Path(id): Path<String>) -> Response {
    let Some(page) = ui.runs.page(&id) else {
        return ApiError::reply(StatusCode::NOT_FOUND, format!("no run `{id}`"));
    };
    let pool = ui
        .master
        .as_ref()
        .map(super::pool::list)
        .unwrap_or_default();
    Html(render::run(&page, &pool, ui.master.is_some())).into_response()
}

async fn run_report(State(ui): State<Ui>, Path(id): Path<String>) -> Response {
    match ui.runs.page(&id) {
        Some(page) => Html(crate::report::html::render_titled(
            &page.summary,
            &format!("{} ({})", page.entry.name, page.entry.id),
            None,
        ))
        .into_response(),
        None => ApiError::reply(StatusCode::NOT_FOUND, format!("no run `{id}`")),
    }
}

/// `?worse_pct=`: how far B may be from A before it is marked worse.
#[derive(serde::Deserialize)]
struct CompareQuery {
    worse_pct: Option<f64>,
}

/// The margin used when the query gives none, in percent.
pub const DEFAULT_WORSE_PCT: f64 = 10.0;

async fn compare(
    State(ui): State<Ui>,
    Path((a, b)): Path<(String, String)>,
    Query(q): Query<CompareQuery>,
) -> Response {
    let pct = q.worse_pct.unwrap_or(DEFAULT_WORSE_PCT);
    if !pct.is_finite() || !(0.0..=1000.0).contains(&pct) {
        return ApiError::reply(
            StatusCode::BAD_REQUEST,
            format!("`worse_pct` must be 0 to 1000, got {pct}"),
        );
    }
    let (Some(pa), Some(pb)) = (ui.runs.page(&a), ui.runs.page(&b)) else {
        let missing = if ui.runs.page(&a).is_none() { a } else { b };
        return ApiError::reply(StatusCode::NOT_FOUND, format!("no run `{missing}`"));
    };
    Html(render::compare(&pa, &pb, pct)).into_response()
}

/// The test files of `--tests-dir` the launch form offers (YAML files at its top level).
fn test_files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".yaml") || n.ends_with(".yml"))
        .collect();
    names.sort();
    names
}

async fn launch_form(State(ui): State<Ui>) -> Html<String> {
    let refusal = match (&ui.master, &ui.runs) {
        (Some(_), _) => None,
        (None, Runs::Dir(_)) => Some(
            "This dashboard reads a results directory: it has no master to launch a run on. \
             Start `perfornium dashboard --master URL` to launch.",
        ),
        (None, Runs::Store(_)) => Some(
            "This page is served by `perfornium distributed` for its one run: launch from a \
             master cluster's dashboard (`perfornium master`, or `perfornium dashboard --master URL`).",
        ),
    };
    let tests = ui.tests_dir.as_deref().map(test_files);
    let pool = ui
        .master
        .as_ref()
        .map(super::pool::list)
        .unwrap_or_default();
    Html(render::launch_form(refusal, tests.as_deref(), &pool))
}

/// A name the form may ask for: one of the listed files, never a path.
fn tests_dir_file(ui: &Ui, name: &str) -> Result<PathBuf, (StatusCode, String)> {
    let Some(dir) = &ui.tests_dir else {
        return Err((
            StatusCode::NOT_FOUND,
            "this master was started without --tests-dir: upload the test instead".into(),
        ));
    };
    if !test_files(dir).iter().any(|n| n == name) {
        return Err((
            StatusCode::NOT_FOUND,
            format!("`{name}` is not a test file of --tests-dir"),
        ));
    }
    Ok(dir.join(name))
}

async fn test_text(State(ui): State<Ui>, Path(name): Path<String>) -> Response {
    let path = match tests_dir_file(&ui, &name) {
        Ok(p) => p,
        Err((code, e)) => return ApiError::reply(code, e),
    };
    match tokio::fs::read_to_string(&path).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/yaml; charset=utf-8")], text).into_response(),
        Err(e) => ApiError::reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading {}: {e}", path.display()),
        ),
    }
}

/// The launch form's workers: a `-w` list, a workers file's JSON array, or nothing (the pool).
fn workers_of(text: Option<&str>) -> Result<Vec<crate::api::worker::WorkerAddr>, String> {
    let text = text.map(str::trim).unwrap_or("");
    if text.is_empty() {
        return Ok(Vec::new());
    }
    if text.starts_with('[') {
        return serde_json::from_str(text).map_err(|e| format!("workers file: {e}"));
    }
    let one_line = text.replace(['\n', '\r'], ",");
    let list: Vec<&str> = one_line
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    crate::control::workers::parse_list(&list.join(",")).map_err(|e| e.to_string())
}

/// How many redirects to a new leader a launch follows.
const LEADER_HOPS: usize = 3;

async fn launch(
    State(ui): State<Ui>,
    headers: HeaderMap,
    body: Result<Json<Launch>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let Json(form) = match body {
        Ok(b) => b,
        Err(e) => {
            return ApiError::reply(
                StatusCode::BAD_REQUEST,
                format!("malformed launch: {}", e.body_text()),
            )
        }
    };
    let Some(master) = &ui.master else {
        return ApiError::reply(
            StatusCode::CONFLICT,
            "this dashboard has no master to launch a run on",
        );
    };
    let test_yaml = match (form.test_yaml, form.test_file) {
        (Some(y), None) if !y.trim().is_empty() => y,
        (None, Some(name)) => {
            let path = match tests_dir_file(&ui, &name) {
                Ok(p) => p,
                Err((code, e)) => return ApiError::reply(code, e),
            };
            match tokio::fs::read_to_string(&path).await {
                Ok(t) => t,
                Err(e) => {
                    return ApiError::reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        format!("reading {}: {e}", path.display()),
                    )
                }
            }
        }
        _ => return ApiError::reply(
            StatusCode::UNPROCESSABLE_ENTITY,
            "give the test: upload or paste it, or pick one from the tests directory (one of them)",
        ),
    };
    let workers = match workers_of(form.workers.as_deref()) {
        Ok(w) => w,
        Err(e) => return ApiError::reply(StatusCode::UNPROCESSABLE_ENTITY, e),
    };
    let submit = Submit {
        test: None,
        test_yaml: Some(test_yaml),
        workers,
        strategy: form.strategy,
        sync_start: form.sync_start,
        pool: None,
    };
    forward_submit(master, &headers, &submit).await
}

/// Sends `submit` to the leader's `POST /runs` with the caller's `Authorization`, following a
/// leader change, and answers what the leader answered.
async fn forward_submit(master: &Master, headers: &HeaderMap, submit: &Submit) -> Response {
    let tls = master.workers.tls.as_ref();
    let client = match crate::tls::client_builder(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            return ApiError::reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("building the client to the leader: {e}"),
            )
        }
    };
    let Some(leader) = master.store.replica.status().leader_addr else {
        return ApiError::reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "no leader right now (election in progress); retry",
        );
    };
    let mut url = format!("{}://{leader}/runs", crate::tls::scheme(tls));
    for _ in 0..LEADER_HOPS {
        let mut call = client.post(&url).json(submit);
        if let Some(auth) = headers.get(header::AUTHORIZATION) {
            call = call.header(header::AUTHORIZATION, auth.clone());
        }
        let answer = match call.send().await {
            Ok(a) => a,
            Err(e) => {
                warn!(%url, "launch: the leader did not answer: {e}");
                return ApiError::reply(
                    StatusCode::BAD_GATEWAY,
                    format!("the leader at {url} did not answer: {e}"),
                );
            }
        };
        let status = answer.status();
        if status == reqwest::StatusCode::TEMPORARY_REDIRECT {
            if let Some(next) = answer
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
            {
                url = next.to_string();
                continue;
            }
        }
        let body = answer.bytes().await.unwrap_or_default();
        if status.is_success() {
            info!(%url, "run launched from the dashboard");
        }
        return (
            StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
    }
    ApiError::reply(
        StatusCode::SERVICE_UNAVAILABLE,
        "the leader changed during the launch; retry",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_come_from_a_list_a_file_or_the_pool() {
        assert!(workers_of(None).unwrap().is_empty());
        assert!(workers_of(Some("  ")).unwrap().is_empty());
        let w = workers_of(Some("127.0.0.1:1\n127.0.0.1:2,")).unwrap();
        assert_eq!(w.len(), 2);
        let w = workers_of(Some(r#"[{"host":"h","port":3,"region":"eu"}]"#)).unwrap();
        assert_eq!((w[0].port, w[0].region.as_str()), (3, "eu"));
        assert!(workers_of(Some("nohost")).unwrap_err().contains("port"));
        assert!(workers_of(Some("[{\"port\":1}]"))
            .unwrap_err()
            .contains("host"));
    }

    #[test]
    fn the_shell_embeds_its_script_and_style() {
        assert!(SHELL.contains("<script>") && SHELL.contains("sessionStorage"));
        assert!(
            !SHELL.contains("src=\"http"),
            "nothing is fetched from elsewhere"
        );
    }
}
