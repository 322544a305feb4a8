//! The web dashboard (`/ui`) in headless Chromium, driven over WebDriver: the Debian
//! `chromedriver` started on a free port, the `fantoccini` client (WebDriver is the W3C protocol
//! chromedriver speaks; the test owns the chromedriver process, so it can bound and kill it, and
//! fantoccini is a maintained async client that needs no browser download). The page is clicked
//! through as a user would: a run launched from a follower's page, watched live to its end, its
//! totals checked against the mock's own count, compared with an earlier run, and the history
//! still served after the leader is killed, by the replicas and by `perfornium dashboard --master`.
//! Without a browser: `perfornium dashboard -r DIR` over saved summaries, and `perfornium
//! distributed` serving the page when the test sets `master_dashboard: true`.

use crate::support::cluster::Cluster;
use crate::support::*;
use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};

const STREAMED: &str = "distributed:\n  results:\n    aggregation:\n      real_time: true\n      interval: 1s\n      streaming:\n        enabled: true\n        protocol: sse\n";

/// chromedriver (killed at the end, with the browser it started) and a WebDriver session.
struct Browser {
    client: Option<Client>,
    driver: Proc,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let port = free_port();
        let mut cmd = Command::new("chromedriver");
        cmd.arg(format!("--port={port}"));
        let mut driver = start_cmd(cmd);
        driver.addr = format!("127.0.0.1:{port}");
        driver.wait_ready("/status");
        let profile = tempfile::tempdir().expect("a profile directory");
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium(),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = tokio::time::timeout(
            Duration::from_secs(30),
            ClientBuilder::new(connector)
                .capabilities(caps)
                .connect(&format!("http://127.0.0.1:{port}")),
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "no WebDriver session within 30 s:\n{}",
                driver.stderr_tail()
            )
        })
        .unwrap_or_else(|e| panic!("WebDriver session: {e}\n{}", driver.stderr_tail()));
        Browser {
            client: Some(client),
            driver,
            _profile: profile,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().expect("an open session")
    }

    async fn goto(&self, url: &str) {
        self.c()
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// Runs `script` (a function body) until it returns something other than null or false;
    /// panics after `secs` with `what` and the page's error line.
    async fn until(&self, secs: u64, what: &str, script: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self
                .c()
                .execute(script, vec![])
                .await
                .unwrap_or(Value::Null);
            if !v.is_null() && v != Value::Bool(false) {
                return v;
            }
            if Instant::now() > deadline {
                let err = self
                    .c()
                    .execute(
                        "return document.getElementById('error').textContent",
                        vec![],
                    )
                    .await
                    .unwrap_or(Value::Null);
                panic!("{what}: not within {secs} s (page error: {err})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn js(&self, script: &str) -> Value {
        self.c()
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Ends the session (chromedriver quits the browser), then chromedriver.
    async fn close(mut self) {
        if let Some(c) = self.client.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), c.close()).await;
        }
        self.driver.kill();
    }
}

impl Drop for Browser {
    /// After a failure the session was not closed: kill the browser chromedriver started (by its
    /// pid, found as chromedriver's child) before chromedriver itself goes.
    fn drop(&mut self) {
        if self.client.is_some() {
            for pid in children(self.driver.pid()) {
                // Not `signal`: a panic here, during a failed test's unwinding, would abort.
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    let after = s.rsplit_once(')')?.1.split_whitespace().nth(1)?.to_string();
                    after.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

fn chromium() -> &'static str {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromium is required for this test (.ci/run installs it with chromium-driver)")
}

fn total(mock: &Proc) -> u64 {
    mock_stats(mock)["total"]
        .as_u64()
        .expect("the mock's total")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_launched_from_the_page_completes_live_is_compared_and_outlives_the_leader() {
    let tests = tempfile::tempdir().expect("tests dir");
    let extra = [
        "--tests-dir".to_string(),
        tests.path().to_str().expect("UTF-8").to_string(),
    ];
    let mut c = Cluster::start_with_args(&extra, None);
    let leader = c.agreed_leader(20);
    let follower = (leader + 1) % 3;
    let mock = mock(5);
    let (a, b) = (worker(None), worker(None));
    let test = yaml(&mock)
        .name("dash")
        .load("pattern: basic, virtual_users: 2, duration: 3s")
        .extra(STREAMED);
    std::fs::write(tests.path().join("dash.yaml"), test.text()).expect("write the test");
    // The run to compare with, submitted through the API.
    let before = c.submit(leader, &test.submit_body(&[&a]));
    c.wait_phase(&[leader], &before, "finished", 30);
    let mock_before = total(&mock);

    let browser = Browser::start().await;
    // Launch from a follower's page: the test from --tests-dir, the workers as a list.
    let base = format!("http://{}", c.addrs[follower]);
    browser.goto(&format!("{base}/ui#/launch")).await;
    browser
        .until(
            10,
            "the launch form",
            "return !!document.getElementById('launch')",
        )
        .await;
    browser
        .c()
        .find(fantoccini::Locator::Css("#test-file"))
        .await
        .expect("the tests-dir picker")
        .select_by_value("dash.yaml")
        .await
        .expect("pick dash.yaml");
    browser
        .c()
        .find(fantoccini::Locator::Css("#workers-text"))
        .await
        .expect("the workers box")
        .send_keys(&worker_list(&[&a, &b]))
        .await
        .expect("type the workers");
    browser.js("document.getElementById('sync-start').click(); document.getElementById('strategy').value = 'even'; return true").await;
    browser
        .js("document.getElementById('launch').click(); return true")
        .await;
    let id = browser
        .until(
            15,
            "the launched run's page",
            "var r = document.getElementById('run'); return r && r.dataset.id",
        )
        .await;
    let id = id.as_str().expect("a run id").to_string();
    assert_ne!(id, before);

    // Live: the feed's intervals arrive while the run is still going, then its end.
    let mut seen_live = false;
    let deadline = Instant::now() + Duration::from_secs(40);
    let ended = loop {
        let state = browser
            .js("var l = document.getElementById('live'); return l ? [l.dataset.seq || '0', l.dataset.ended || ''] : null")
            .await;
        if let Some([seq, ended]) = state.as_array().map(|a| [a[0].clone(), a[1].clone()]) {
            let seq: u64 = seq.as_str().unwrap_or("0").parse().unwrap_or(0);
            let ended = ended.as_str().unwrap_or("").to_string();
            if ended.is_empty() && seq >= 1 {
                seen_live = true;
            }
            if !ended.is_empty() {
                break ended;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the live page never saw the feed end.\n{}",
            c.stderr_tails()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(ended, "finished");
    assert!(
        seen_live,
        "the page showed no interval before the feed ended"
    );
    let launched = mock_stats_delta(&mock, mock_before);
    let page_requests: u64 = browser
        .js("return document.getElementById('live').dataset.requests")
        .await
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("the page's request count");
    assert!(launched > 0);
    assert_eq!(
        page_requests, launched,
        "the feed's requests as the page summed them = the mock's count"
    );
    let view = c.run(follower, &id).expect("the run on the follower");
    assert_eq!(view["summary"]["overall"]["count"], json!(launched));
    // Per-worker health and the report's charts are on the page.
    let workers = browser
        .until(
            10,
            "the workers table of the finished run",
            "var r = document.querySelectorAll('#workers tr.worker'); return r.length == 2 && Array.prototype.every.call(r, function (x) { return x.dataset.state == 'finished' })",
        )
        .await;
    assert_eq!(workers, json!(true));
    browser
        .until(
            10,
            "the report's charts",
            "var f = document.getElementById('report'); return f && f.contentDocument && f.contentDocument.querySelectorAll('svg.chart').length > 0",
        )
        .await;

    // The comparison: pick both runs in the list.
    browser.goto(&format!("{base}/ui#/")).await;
    browser
        .until(
            10,
            "both runs listed",
            "return document.querySelectorAll('tr.run').length >= 2",
        )
        .await;
    browser
        .js(&format!(
            "document.querySelector('input.pick[value=\"{before}\"]').click(); document.querySelector('input.pick[value=\"{id}\"]').click(); document.getElementById('compare').click(); return true"
        ))
        .await;
    let cmp = browser
        .until(
            10,
            "the comparison",
            "var s = document.getElementById('comparison'); if (!s) return null; var row = s.querySelector('tr[data-step=\"all steps\"][data-figure=\"requests\"]'); return [s.dataset.a, s.dataset.b, row.children[2].textContent, row.children[3].textContent, document.getElementById('threshold').textContent]",
        )
        .await;
    assert_eq!(cmp[0], json!(before));
    assert_eq!(cmp[1], json!(id));
    let first = c.run(follower, &before).expect("the first run")["summary"]["overall"]["count"]
        .as_u64()
        .expect("a count");
    assert_eq!(cmp[2], json!(first.to_string()));
    assert_eq!(cmp[3], json!(launched.to_string()));
    assert!(
        cmp[4].as_str().is_some_and(|t| t.contains("10 %")),
        "the page states its threshold: {}",
        cmp[4]
    );

    // The leader dies: the follower's page still lists both runs and opens the launched one.
    let dead = c.addrs[leader].clone();
    c.kill(leader);
    browser.c().refresh().await.expect("reload");
    browser.goto(&format!("{base}/ui#/runs/{id}")).await;
    browser
        .until(
            10,
            "the launched run after the leader's death",
            &format!("var r = document.getElementById('run'); return r && r.dataset.id == '{id}' && r.dataset.phase == 'finished'"),
        )
        .await;
    // And through `perfornium dashboard`, whose first master is the dead one.
    let survivor = c.addrs[(leader + 2) % 3].clone();
    let dash = spawn_server(
        &[
            "dashboard",
            "--listen",
            "127.0.0.1:0",
            "--master",
            &format!("http://{dead},http://{survivor}"),
        ],
        "/ui",
    );
    browser.goto(&format!("http://{}/ui#/", dash.addr)).await;
    browser
        .until(
            10,
            "both runs through the dashboard proxy",
            &format!("return !!document.querySelector('tr.run[data-id=\"{before}\"]') && !!document.querySelector('tr.run[data-id=\"{id}\"]')"),
        )
        .await;
    browser.close().await;
}

/// Requests the mock counted since `before`.
fn mock_stats_delta(mock: &Proc, before: u64) -> u64 {
    total(mock) - before
}

#[test]
fn the_dashboard_over_a_results_directory_lists_and_compares_saved_runs() {
    let mock = mock(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, iterations: 3")
        .write(dir.path());
    let results = dir.path().join("results");
    let mut counts = Vec::new();
    for name in ["a", "b"] {
        let before = total(&mock);
        let out = results.join(name);
        let res = run(&["run", &file, "-o", out.to_str().expect("UTF-8")]);
        assert!(
            res.status.success(),
            "{}",
            String::from_utf8_lossy(&res.stderr)
        );
        counts.push(total(&mock) - before);
    }
    let dash = spawn_server(
        &[
            "dashboard",
            "--listen",
            "127.0.0.1:0",
            "-r",
            results.to_str().expect("UTF-8"),
        ],
        "/ui",
    );
    let get = |path: &str| {
        let (code, body) = http_get(&format!("http://{}{path}", dash.addr)).expect(path);
        assert_eq!(code, 200, "{path}: {body}");
        body
    };
    let list = get("/ui/runs");
    for name in ["a", "b"] {
        assert!(
            list.contains(&format!("data-id=\"{name}/summary.json\"")),
            "{list}"
        );
    }
    let page = get("/ui/runs/a%2Fsummary.json");
    assert!(page.contains(&format!("{} requests", counts[0])), "{page}");
    let cmp = get("/ui/compare/a%2Fsummary.json/b%2Fsummary.json");
    let row = cmp
        .split("<tr")
        .find(|r| r.contains("data-step=\"all steps\"") && r.contains("data-figure=\"requests\""))
        .expect("the requests row");
    assert!(
        row.contains(&format!(">{}<", counts[0])) && row.contains(&format!(">{}<", counts[1])),
        "{row}"
    );
    let form = get("/ui/launch");
    assert!(form.contains("id=\"launch-refused\""), "{form}");
    let (code, _) = http_get(&format!("http://{}/ui/runs/nope", dash.addr)).expect("GET");
    assert_eq!(code, 404);
}

#[test]
fn distributed_serves_the_dashboard_when_the_test_asks_for_master_dashboard() {
    let mock = mock(5);
    let w = worker(None);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = yaml(&mock)
        .load("pattern: basic, virtual_users: 1, duration: 3s")
        .extra("distributed:\n  monitoring:\n    dashboards:\n      master_dashboard: true\n")
        .write(dir.path());
    let run = start(&["distributed", &file, "-w", &worker_list(&[&w])]);
    let mut url = String::new();
    assert!(
        wait_for(15, || {
            url = run
                .stderr_tail()
                .lines()
                .find_map(|l| l.strip_prefix("dashboard: ").map(str::to_string))
                .unwrap_or_default();
            !url.is_empty()
        }),
        "no dashboard address printed:\n{}",
        run.stderr_tail()
    );
    let (base, id) = url.split_once("/ui#/runs/").expect("a run's page address");
    let (code, page) = http_get(&format!("{base}/ui/runs/{id}")).expect("the run's fragment");
    assert_eq!(code, 200, "{page}");
    assert!(page.contains(&format!("data-id=\"{id}\"")), "{page}");
    let (code, shell) = http_get(&format!("{base}/ui")).expect("the page");
    assert_eq!(code, 200);
    assert!(shell.contains("<script>"));
    let out = run.wait_with_deadline(Duration::from_secs(30));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_rbac_a_viewer_token_browses_the_page_and_its_launch_is_refused_on_it() {
    use perfornium::config::security::Security;
    let secret = "dashboard-secret-0123456789-abcdef";
    // The master's own calls to workers need a role with execute_tests and report_metrics.
    let roles = "authorization:\n  enabled: true\n  rbac:\n    roles:\n      - name: worker\n        permissions: [execute_tests, report_metrics]\n      - name: viewer\n        permissions: [view_all_results]\n      - name: operator\n        permissions: [execute_tests, view_all_results]\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = write(
        dir.path(),
        "master.yml",
        &format!(
            "distributed:\n  security:\n    authentication:\n      method: token\n      token_auth:\n        algorithm: HS256\n        secret: {secret}\n        expiration: 60\n{}",
            roles
                .lines()
                .map(|l| format!("    {l}\n"))
                .collect::<String>()
        ),
    );
    let listen = format!("127.0.0.1:{}", free_port());
    let m = spawn_server(
        &[
            "master",
            "--id",
            "1",
            "--listen",
            &listen,
            "--peers",
            &format!("1={listen}"),
            "--data",
            dir.path().join("m").to_str().expect("UTF-8"),
            "--token",
            "replica-secret",
            "--config",
            &conf,
        ],
        "/health",
    );
    let viewer: Security = serde_norway::from_str(&format!(
        "authentication:\n  method: token\n  token_auth:\n    algorithm: HS256\n    secret: {secret}\n    role: viewer\n{roles}"
    ))
    .expect("the viewer's security block");
    let viewer = viewer
        .minter("test", &[])
        .expect("a minter")
        .expect("a minter")
        .bearer();
    let mock = mock(0);
    let test = yaml(&mock).text();

    let browser = Browser::start().await;
    // No token: the shell loads, its data is refused and the page says so.
    browser.goto(&format!("http://{}/ui#/", m.addr)).await;
    let err = browser
        .until(
            10,
            "the refusal without a token",
            "var e = document.getElementById('error').textContent; return e.length > 0 && e",
        )
        .await;
    assert!(err.as_str().is_some_and(|e| e.contains("401")), "{err}");
    // The viewer's token: the runs list.
    browser
        .js(&format!(
            "document.getElementById('token').value = {}; document.getElementById('token-save').click(); return true",
            json!(viewer)
        ))
        .await;
    browser
        .until(
            10,
            "the runs list for the viewer",
            "return !!document.getElementById('runs')",
        )
        .await;
    // The launch is refused by the API's own permission check, shown on the page.
    browser.goto(&format!("http://{}/ui#/launch", m.addr)).await;
    browser
        .until(
            10,
            "the launch form",
            "return !!document.getElementById('launch')",
        )
        .await;
    browser
        .js(&format!(
            "document.getElementById('test-yaml').value = {}; document.getElementById('launch').click(); return true",
            json!(test)
        ))
        .await;
    let refused = browser
        .until(
            10,
            "the launch's refusal",
            "var r = document.getElementById('launch-result'); return r.className == 'refused' && [r.dataset.status, r.textContent]",
        )
        .await;
    assert_eq!(refused[0], json!("403"), "{refused}");
    assert!(
        refused[1]
            .as_str()
            .is_some_and(|t| t.contains("lacks the permission `execute_tests`")),
        "{refused}"
    );
    assert_eq!(total(&mock), 0, "nothing ran");
    let (code, runs) = call(
        "GET",
        &format!("http://{}/runs", m.addr),
        Some(&viewer),
        None,
    )
    .expect("GET /runs");
    assert_eq!((code, runs.as_str()), (200, "[]"), "nothing was recorded");
    browser.close().await;
}
