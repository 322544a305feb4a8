//! The rules a test must follow that serde cannot express: at least one scenario with steps, numbers
//! in range (virtual users, rates, timeouts, percentages; durations are bounded where they are
//! parsed), thresholds that parse, and checks and extractions that compile. Every path that accepts
//! a test runs them: `load`, `from_str`, a worker's `prepare` and the master's submit.

use super::duration::NumOrText;
use super::{compile, duration, threshold, Load, Step, TestFile, Threshold};

/// Rewrites what the format offers as shorthand into the one form the engine runs, before
/// [`check`]: scenarios with `enabled: false` are removed; `global.variables` and
/// `global.csv_data` (with `global.csv_mode`) go to every scenario (a scenario's own win);
/// `sla_requirements` and top-level `checks` become `thresholds`; `global.hooks` (where the
/// TypeScript documentation writes them) becomes the top-level `hooks`. Idempotent, so a test that
/// travels to a worker and is loaded again stays the same.
pub fn normalize(test: &mut TestFile) -> Result<(), super::Invalid> {
    normalize_all(test).map_err(super::Invalid)
}

fn normalize_all(test: &mut TestFile) -> Result<(), String> {
    test.scenarios.retain(|s| s.enabled);
    if let Some(h) = test.global.hooks.take() {
        if test.hooks.is_some() {
            return Err("`global.hooks` and a top-level `hooks` are both given: the test's hooks are one block, write them once".into());
        }
        test.hooks = Some(h);
    }
    let vars = std::mem::take(&mut test.global.variables);
    let csv = test.global.csv_data.take();
    let csv_mode = test.global.csv_mode.take();
    for s in &mut test.scenarios {
        for (k, v) in &vars {
            s.variables.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if s.csv_data.is_none() {
            if let Some(c) = &csv {
                s.csv_data = Some(c.clone());
                if s.csv_mode.is_none() && c.mode.is_none() {
                    s.csv_mode.clone_from(&csv_mode);
                }
            }
        }
    }
    if csv.is_none() && csv_mode.is_some() {
        for s in &mut test.scenarios {
            if s.csv_data.as_ref().is_some_and(|c| c.mode.is_none()) && s.csv_mode.is_none() {
                s.csv_mode.clone_from(&csv_mode);
            }
        }
    }
    let ms = |v: &NumOrText, key: &str| -> Result<f64, String> {
        v.duration_ms()
            .map(|d| d.as_secs_f64() * 1000.0)
            .map_err(|e| format!("{key}: {e}"))
    };
    let pct = |v: &NumOrText, key: &str| -> Result<f64, String> {
        let p = match v {
            NumOrText::Num(n) => *n,
            NumOrText::Text(t) => t
                .trim()
                .trim_end_matches('%')
                .trim()
                .parse()
                .map_err(|_| format!("{key}: `{t}` is not a percentage"))?,
        };
        if !(0.0..=100.0).contains(&p) {
            return Err(format!("{key}: {p} is not a percentage from 0 to 100"));
        }
        Ok(p)
    };
    let mut added = Vec::new();
    for (i, s) in test.scenarios.iter_mut().enumerate() {
        let Some(sla) = s.sla_requirements.take() else {
            continue;
        };
        let at = format!("scenarios[{i}].sla_requirements");
        let mut rules = Vec::new();
        if let Some(v) = &sla.p95_response_time {
            rules.push(format!(
                "p95 < {}ms",
                ms(v, &format!("{at}.p95_response_time"))?
            ));
        }
        if let Some(v) = &sla.p99_response_time {
            rules.push(format!(
                "p99 < {}ms",
                ms(v, &format!("{at}.p99_response_time"))?
            ));
        }
        if let Some(v) = &sla.availability {
            let a = pct(v, &format!("{at}.availability"))?;
            rules.push(format!("error_rate <= {}%", 100.0 - a));
        }
        if let Some(t) = sla.throughput {
            if !(t.is_finite() && t >= 0.0) {
                return Err(format!("{at}.throughput: {t} is not a rate per second"));
            }
            rules.push(format!("rps >= {t}"));
        }
        for step in &s.steps {
            if let Step::Http(h) = step {
                for r in &rules {
                    added.push(Threshold::Long {
                        metric: r.clone(),
                        step: Some(h.name.clone()),
                    });
                }
            }
        }
    }
    for (i, c) in std::mem::take(&mut test.checks).into_iter().enumerate() {
        let at = format!("checks[{i}]");
        if c.fail_test == Some(false) {
            return Err(format!(
                "{at}: `fail_test: false` is not supported: a run check always decides the verdict"
            ));
        }
        let rule = match c.kind.as_str() {
            "response_time" => {
                let p = c.percentile.unwrap_or(95.0);
                let name = [
                    (50.0, "p50"),
                    (90.0, "p90"),
                    (95.0, "p95"),
                    (99.0, "p99"),
                    (99.9, "p99.9"),
                ]
                .iter()
                .find(|(v, _)| *v == p)
                .map(|(_, n)| *n)
                .ok_or_else(|| {
                    format!("{at}: percentile {p} is not one of 50, 90, 95, 99, 99.9")
                })?;
                let v = c.value.as_ref().ok_or(format!("{at}: needs `value` (ms)"))?;
                format!("{name} < {}ms", ms(v, &at)?)
            }
            "throughput" => {
                let v = c.min_value.ok_or(format!("{at}: needs `min_value` (requests per second)"))?;
                format!("rps >= {v}")
            }
            "error_rate" => {
                let v = c.value.as_ref().ok_or(format!("{at}: needs `value` (percent)"))?;
                format!("error_rate < {}%", pct(v, &at)?)
            }
            other => {
                return Err(format!(
                    "{at}: check type `{other}` is not supported on the run (supported: response_time, throughput, error_rate)"
                ))
            }
        };
        added.push(Threshold::Short(rule));
    }
    if test.debug.is_some() {
        test.global.debug = test.debug.take();
    }
    test.thresholds.extend(added);
    Ok(())
}

/// What is worth saying about a valid test: a relative `path` with no `global.base_url` (the run
/// then needs `--base-url`).
pub fn warnings(test: &TestFile) -> Vec<String> {
    let mut out = Vec::new();
    if test.global.base_url.is_some() {
        return out;
    }
    for (i, s) in test.scenarios.iter().enumerate() {
        for step in &s.steps {
            if let Step::Http(h) = step {
                if is_relative(&h.target) {
                    out.push(format!(
                        "scenarios[{i}] step `{}`: path `{}` needs a base URL: set `global.base_url`, use a full `url`, or run with `--base-url`",
                        h.name, h.target
                    ));
                }
            }
        }
    }
    out
}

fn is_relative(target: &str) -> bool {
    !(target.starts_with("http://") || target.starts_with("https://") || target.starts_with("{{"))
}

/// Refuses to run a test whose relative paths have no base URL (validation only warns).
pub fn runnable(test: &TestFile) -> Result<(), super::Invalid> {
    match warnings(test).into_iter().next() {
        Some(w) => Err(super::Invalid(w)),
        None => Ok(()),
    }
}

/// Rules serde cannot express: non-empty scenarios, numbers in range, parseable thresholds, and
/// checks and extractions that compile.
pub fn check(test: &TestFile) -> Result<(), super::Invalid> {
    check_all(test).map_err(super::Invalid)
}

fn check_all(test: &TestFile) -> Result<(), String> {
    if test.scenarios.is_empty() {
        return Err("`scenarios` is empty: a test needs at least one scenario with steps".into());
    }
    for (i, s) in test.scenarios.iter().enumerate() {
        if s.steps.is_empty() {
            return Err(format!("scenarios[{i}] (`{}`): `steps` is empty", s.name));
        }
        if s.condition.is_some() {
            return Err(format!(
                "scenarios[{i}] (`{}`): `condition` is not supported on a scenario: the TypeScript tool never evaluates it; put a `condition` on the scenario's steps",
                s.name
            ));
        }
        if let Some(csv) = &s.csv_data {
            csv.policy(s.csv_mode.as_deref())
                .map_err(|e| format!("scenarios[{i}] (`{}`): {e}", s.name))?;
        } else if s.csv_mode.is_some() {
            return Err(format!(
                "scenarios[{i}] (`{}`): `csv_mode` needs `csv_data` (here or in `global`)",
                s.name
            ));
        }
    }
    check_global(&test.global)?;
    super::script::check_sources(test)?;
    let top = [(
        test.workers.is_some(),
        "workers",
        "workers are given on the command line (`-w host:port,...` or `--workers-file`)",
    )];
    if let Some((_, key, why)) = top.iter().find(|(present, _, _)| *present) {
        return Err(format!("`{key}` is not supported: {why}"));
    }
    if test.scenarios.iter().all(|s| s.weight == 0) {
        return Err("every scenario has `weight: 0`".into());
    }
    check_load(&test.load)?;
    check_numbers(test)?;
    if let Some(d) = &test.distributed {
        d.not_yet()?;
    }
    super::distributed::check_global_extractions(test)?;
    super::distributed::check_state_refs(test)?;
    compile(test).map_err(|e| e.0)?;
    for t in &test.thresholds {
        match t {
            Threshold::Short(s) => threshold::parse(s, None).map(drop)?,
            Threshold::Long { metric, step } => threshold::parse(metric, step.clone()).map(drop)?,
        }
    }
    Ok(())
}

/// The `global` keys refused by name, and the checks of the accepted ones.
fn check_global(g: &super::Global) -> Result<(), String> {
    let refused = [
        (g.influxdb.is_some(), "influxdb", "live metrics to InfluxDB 2 (token, org, bucket) are not supported: write to InfluxDB 1.x with `outputs: [{type: influxdb, url, database}]`"),
        (g.browser.is_some(), "browser", "browser tests are not supported: Perfornium-rs drives HTTP"),
        (g.web.is_some(), "web", "browser tests are not supported: Perfornium-rs drives HTTP"),
        (g.ssl.is_some(), "ssl", "TLS options are not supported: https uses the system's trusted roots"),
        (g.proxy.is_some(), "proxy", "proxies are not supported: requests go straight to the target"),
        (g.connection_pool.is_some(), "connection_pool", "not supported: each VU keeps one connection per target, reused across requests"),
    ];
    if let Some((_, key, why)) = refused.iter().find(|(present, _, _)| *present) {
        return Err(format!("global.{key} is not supported: {why}"));
    }
    if let Some(f) = &g.faker {
        if let Some(l) = &f.locale {
            super::faker::Locale::parse(l)?;
        }
    }
    if let Some(d) = &g.debug {
        if let Some(l) = d.level() {
            if !["debug", "info", "warn", "error"].contains(&l) {
                return Err(format!(
                    "debug.log_level `{l}`: expected debug, info, warn or error"
                ));
            }
        }
        if d.capture_response_headers {
            return Err("debug.capture_response_headers is not supported yet: responses are captured with their status and body".into());
        }
    }
    Ok(())
}

/// The most virtual users one test (or one worker's share of it) may ask for. Each one is a task
/// and a connection; above this a typo (an extra zero, `1e12`) would exhaust memory, not load a target.
pub const MAX_VUS: u64 = 1_000_000;

/// The highest arrival rate accepted, per second.
pub const MAX_RATE: f64 = 1_000_000.0;

fn check_load(load: &Load) -> Result<(), String> {
    let vus = |name: &str, n: u64| {
        if n > MAX_VUS {
            Err(format!(
                "load.{name} is {n}, above the {MAX_VUS} virtual users a test may run"
            ))
        } else {
            Ok(())
        }
    };
    match load {
        Load::Basic { virtual_users, .. } => vus("virtual_users", *virtual_users)?,
        Load::Stepping {
            start_users,
            step_users,
            max_users,
            ..
        } => {
            vus("start_users", *start_users)?;
            vus("step_users", *step_users)?;
            vus("max_users", *max_users)?;
        }
        Load::Levels { levels } => {
            for (i, l) in levels.iter().enumerate() {
                vus(&format!("steps[{i}].users"), l.users)?;
            }
            if levels.iter().all(|l| l.users == 0) {
                return Err("load.steps: every level has 0 users".into());
            }
        }
        Load::Arrivals {
            max_virtual_users,
            preallocation,
            ..
        } => {
            vus("max_virtual_users", max_virtual_users.unwrap_or(0))?;
            vus("preallocation", preallocation.unwrap_or(0))?;
        }
        Load::Phases(phases) => {
            for (i, p) in phases.iter().enumerate() {
                check_load(&p.load).map_err(|e| match &p.name {
                    Some(n) => format!("load[{i}] (`{n}`): {e}"),
                    None => format!("load[{i}]: {e}"),
                })?;
            }
        }
    }
    match load {
        Load::Basic {
            virtual_users: 0, ..
        } => Err("load.virtual_users must be at least 1".into()),
        Load::Stepping { step_duration, .. } if step_duration.is_zero() => {
            Err("load.step_duration must be above zero".into())
        }
        Load::Stepping { max_users: 0, .. } => Err("load.max_users must be at least 1".into()),
        Load::Arrivals { rate, .. } if !(*rate > 0.0 && *rate <= MAX_RATE) => Err(format!(
            "load.rate must be a number of arrivals per second above 0 and at most {MAX_RATE}, got {rate}"
        )),
        Load::Arrivals {
            max_virtual_users: Some(0),
            ..
        } => Err("load.max_virtual_users must be at least 1".into()),
        _ => Ok(()),
    }
}

/// Range rules of the numbers outside `load:` (durations are bounded when they are parsed).
fn check_numbers(test: &TestFile) -> Result<(), String> {
    let max_ms = duration::MAX.as_millis();
    if u128::from(test.global.timeout) > max_ms {
        return Err(format!(
            "global.timeout is {} ms, longer than the 365 days ({max_ms} ms) a duration may last",
            test.global.timeout
        ));
    }
    let failures = test
        .distributed
        .as_ref()
        .and_then(|d| d.orchestration.as_ref())
        .and_then(|o| o.failure_handling.as_ref())
        .and_then(|f| f.worker_failure_threshold)
        .map(|v| ("orchestration.failure_handling.worker_failure_threshold", v));
    let rate = test
        .distributed
        .as_ref()
        .and_then(|d| d.fault_tolerance.as_ref())
        .and_then(|f| f.worker_failures.as_ref())
        .and_then(|w| w.max_failure_rate)
        .map(|v| ("fault_tolerance.worker_failures.max_failure_rate", v));
    for (name, v) in failures.into_iter().chain(rate) {
        if !(0.0..=100.0).contains(&v) {
            return Err(format!(
                "distributed.{name} is a percentage from 0 to 100, got {v}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use proptest::prelude::*;

    /// A whole test with `load:` given as `load` (indented two spaces) and one more top-level block.
    fn test_text(load: &str, extra: &str) -> String {
        format!(
            "name: t\nload:\n{load}\nglobal:\n  base_url: http://127.0.0.1:9\n{extra}\
             scenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /x\n"
        )
    }

    fn basic(duration: &str) -> String {
        test_text(
            &format!("  pattern: basic\n  virtual_users: 2\n  duration: {duration}"),
            "",
        )
    }

    fn refused(text: &str) -> String {
        match from_str(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn huge_and_infinite_durations_are_refused_not_panicked_on() {
        for d in ["1e300", ".inf", "-.inf", "1e20"] {
            let e = refused(&basic(d));
            assert!(e.contains("365 days") || e.contains("negative"), "{d}: {e}");
        }
        assert_eq!(
            refused(&basic("1e300")),
            "<test>:5:13: load.duration: `1e300` is longer than the 365 days a duration may last (a bare number is ms)"
        );
        assert!(refused(&basic(".inf")).contains("`.inf` is longer"));
        let e = refused(&basic("\"99999999999999999999999h\""));
        assert!(e.contains("365 days"), "{e}");
        assert!(refused(&basic("-1")).contains("negative"));
        assert!(refused(&basic(".nan")).contains("not a number"));
        assert!(from_str(&basic("1e-300")).is_ok());
        assert!(from_str(&basic("365d")).is_err());
    }

    #[test]
    fn vus_rates_timeouts_and_percentages_are_bounded() {
        let vus = test_text(
            "  pattern: basic\n  virtual_users: 1000001\n  duration: 1s",
            "",
        );
        assert!(refused(&vus).contains("1000000 virtual users"));
        let big = test_text(
            "  pattern: basic\n  virtual_users: 18446744073709551616\n  duration: 1s",
            "",
        );
        refused(&big);
        for rate in ["1e300", ".inf", ".nan", "-1", "0"] {
            let t = test_text(
                &format!("  pattern: arrivals\n  rate: {rate}\n  duration: 1s"),
                "",
            );
            assert!(refused(&t).contains("load.rate"), "{rate}");
        }
        let t = test_text("  pattern: arrivals\n  rate: 1e-300\n  duration: 1s", "");
        assert!(
            from_str(&t).is_ok(),
            "a tiny rate makes no arrivals, which is harmless"
        );
        let timeout = basic("1s").replace(
            "  base_url: http://127.0.0.1:9\n",
            "  base_url: http://127.0.0.1:9\n  timeout: 31536000001\n",
        );
        assert!(refused(&timeout).contains("global.timeout"));
        let pct = test_text(
            "  pattern: basic\n  virtual_users: 1\n  duration: 1s",
            "distributed:\n  fault_tolerance:\n    worker_failures:\n      max_failure_rate: 1e300\n",
        );
        assert!(refused(&pct).contains("percentage"));
    }

    #[test]
    fn unknown_keys_suggest_the_nearest() {
        let t = basic("1s").replace(
            "        path: /x\n",
            "        path: /x\n        thinktime: 1s\n",
        );
        let e = refused(&t);
        assert!(e.contains("did you mean `think_time`?"), "{e}");
        let t = basic("1s").replace("  pattern: basic", "  pattern: basic\n  virtual_user: 2");
        assert!(refused(&t).contains("did you mean `virtual_users`?"));
        let t = basic("1s").replace("  pattern: basic", "  pattern: basic\n  zzz: 2");
        assert!(!refused(&t).contains("did you mean"));
    }

    #[test]
    fn a_relative_path_without_base_url_is_a_warning_not_an_error() {
        let t = basic("1s").replace("  base_url: http://127.0.0.1:9\n", "  timeout: 1000\n");
        let test = from_str(&t).unwrap();
        assert_eq!(warnings(&test).len(), 1);
        assert!(runnable(&test).unwrap_err().0.contains("--base-url"));
        assert!(warnings(&from_str(&basic("1s")).unwrap()).is_empty());
    }

    #[test]
    fn shorthands_become_thresholds_variables_and_rows() {
        let t = basic("1s")
            .replace(
                "  base_url: http://127.0.0.1:9\n",
                "  base_url: http://127.0.0.1:9\n  variables: {a: 1, b: 2}\n  csv_data: {file: u.csv}\n  csv_mode: unique\n",
            )
            .replace(
                "  - name: s\n",
                "  - name: off\n    enabled: false\n    steps: [{path: /y}]\n  - name: s\n    description: d\n    variables: {b: 3}\n    sla_requirements: {p95_response_time: 500, availability: 99.5, throughput: 10}\n    loop: {duration: 2s}\n",
            )
            + "checks:\n  - {type: response_time, percentile: 99, value: 2s}\n  - {type: throughput, min_value: 5}\n  - {type: error_rate, value: 1}\n";
        let test = from_str(&t).unwrap();
        assert_eq!(test.scenarios.len(), 1, "the disabled scenario is gone");
        let s = &test.scenarios[0];
        assert_eq!(s.variable_texts()["a"], "1");
        assert_eq!(s.variable_texts()["b"], "3", "the scenario's own wins");
        assert_eq!(s.csv_mode.as_deref(), Some("unique"));
        assert_eq!(s.looping.duration, Some(std::time::Duration::from_secs(2)));
        let rules: Vec<String> = rules(&test).iter().map(|r| format!("{r:?}")).collect();
        assert_eq!(rules.len(), 6, "{rules:?}");
        let again = from_str(&serde_norway::to_string(&test).unwrap()).unwrap();
        assert_eq!(
            again.thresholds, test.thresholds,
            "normalizing twice changes nothing"
        );
        for (bad, want) in [
            ("  influxdb: {url: x}\n", "outputs: [{type: influxdb"),
            ("  browser: {headless: true}\n", "Perfornium-rs drives HTTP"),
            ("  proxy: x\n", "global.proxy"),
            ("  faker: {locale: es}\n", "`es` is not supported"),
            ("  timeout: 2m\n  debug: {log_level: loud}\n", "log_level"),
        ] {
            let t = basic("1s").replace(
                "  base_url: http://127.0.0.1:9\n",
                &format!("  base_url: http://127.0.0.1:9\n{bad}"),
            );
            assert!(refused(&t).contains(want), "{bad}: {}", refused(&t));
        }
        let cond = basic("1s").replace("  - name: s\n", "  - name: s\n    condition: 'x == 1'\n");
        assert!(refused(&cond).contains("`condition` is not supported on a scenario"));
        let hooks = basic("1s").replace(
            "  - name: s\n",
            "  - name: s\n    hooks: {beforeScenario: {type: steps, steps: []}}\n",
        );
        assert!(refused(&hooks).contains("`type: steps` needs at least one step"));
        let outputs = basic("1s") + "outputs:\n  - {type: json, file: r.json, compression: gzip}\n";
        assert!(refused(&outputs).contains("`compression` is not supported"));
        let loop_mode = basic("1s").replace(
            "  - name: s\n",
            "  - name: s\n    loop: {count: 2, mode: x}\n",
        );
        assert!(refused(&loop_mode).contains("loop.mode is not supported"));
    }

    #[test]
    fn test_level_hooks_are_read_in_every_form_and_checked_like_scenario_hooks() {
        let with = |hooks: &str| basic("1s") + "hooks:\n" + hooks;
        let t = from_str(&with("  beforeTest: \"context.variables.a = 1\"\n  afterTest: {type: inline, content: 'x', continueOnError: false, timeout: 2s}\n  onTestError: {type: steps, steps: [{name: e, path: /e}]}\n")).unwrap();
        let h = t.hooks.unwrap();
        let names: Vec<&str> = h.all().map(|(n, _)| n).collect();
        assert_eq!(names, ["beforeTest", "onTestError", "teardownTest"]);
        let td = h.teardown_test.unwrap();
        assert!(!td.continue_on_error);
        assert_eq!(td.timeout, Some(std::time::Duration::from_secs(2)));
        assert!(
            h.before_test.unwrap().continue_on_error,
            "the string form goes on"
        );
        assert!(refused(&with("  beforeVU: x\n")).contains("beforeVU"));
        assert!(refused(&with("  beforeTest: {type: steps, steps: []}\n"))
            .contains("`type: steps` needs at least one step"));
        assert!(refused(&with("  beforeTest: {type: steps, steps: [{name: r, type: rendezvous, rendezvous: r, count: 2}]}\n"))
            .contains("rendezvous"));
        // The TypeScript documentation's place, `global.hooks`, is the same block.
        let global = basic("1s").replace(
            "  base_url: http://127.0.0.1:9\n",
            "  base_url: http://127.0.0.1:9\n  hooks: {afterTest: 'x'}\n",
        );
        let g = from_str(&global).unwrap();
        assert!(g.hooks.unwrap().teardown_test.is_some() && g.global.hooks.is_none());
        assert!(refused(&(global + "hooks: {beforeTest: 'y'}\n")).contains("both given"));
        let t = from_str(&with("  beforeTest: 'x'\n")).unwrap();
        assert!(super::super::script::refuse_ts(&t, "a TS worker")
            .unwrap_err()
            .contains("not supported with a TS worker"));
    }

    #[test]
    fn step_common_keys_are_checked() {
        let with = |keys: &str| {
            basic("1s").replace("        path: /x\n", &format!("        path: /x\n{keys}"))
        };
        let test = from_str(&with("        timeout: 250\n        think_time: 1\n        on_error: {continue: false}\n        retry: {max_attempts: 3, delay: 10, backoff: exponential}\n        thresholds:\n          - {metric: response_time, value: 1s, operator: lt, action: fail_step}\n")).unwrap();
        let Step::Http(h) = &test.scenarios[0].steps[0] else {
            panic!()
        };
        assert_eq!(
            h.options.timeout,
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(
            h.options.think_time.unwrap().max,
            std::time::Duration::from_secs(1)
        );
        assert!(!h.options.continue_on_error);
        assert_eq!(
            h.options.retry.as_ref().unwrap().delay_before(2).unwrap(),
            std::time::Duration::from_millis(20)
        );
        assert_eq!(h.options.thresholds[0].compile().unwrap().value, 1000.0);
        let back = from_str(&serde_norway::to_string(&test).unwrap()).unwrap();
        let Step::Http(b) = &back.scenarios[0].steps[0] else {
            panic!()
        };
        assert_eq!(b.options, h.options);
        for (keys, want) in [
            ("        retry: {max_attempts: 0}\n", "max_attempts"),
            (
                "        thresholds: [{metric: custom, value: 1}]\n",
                "needs `custom_script`",
            ),
            (
                "        thresholds: [{metric: response_time, value: 1, action: explode}]\n",
                "unknown variant",
            ),
            (
                "        hooks: {afterStep: 'x'}\n",
                "unknown field `afterStep`",
            ),
            (
                "        on_error: {continue: true}\n        continueOnError: false\n",
                "disagree",
            ),
        ] {
            assert!(
                refused(&with(keys)).contains(want),
                "{keys}: {}",
                refused(&with(keys))
            );
        }
        let wait = basic("1s").replace(
            "        path: /x\n",
            "        path: /x\n      - {type: wait, duration: 1, retry: {max_attempts: 2}}\n",
        );
        assert!(refused(&wait).contains("applies to HTTP steps"));
    }

    #[test]
    fn a_wrong_think_time_in_a_step_is_refused() {
        let t = basic("1s").replace(
            "        path: /x\n",
            "        path: /x\n      - type: wait\n        duration: 1e300\n",
        );
        assert!(refused(&t).contains("365 days"));
    }

    #[test]
    fn check_refuses_a_bad_check_in_a_test_built_in_code() {
        let mut test = from_str(&basic("1s")).unwrap();
        if let Step::Http(h) = &mut test.scenarios[0].steps[0] {
            h.checks.push(Check::TextContains {
                value: "x".into(),
                description: None,
            });
            h.extract.push(Extract {
                name: "t".into(),
                kind: ExtractKind::Regex,
                expression: "[".into(),
                default: None,
                namespaces: Default::default(),
                group: None,
                return_type: None,
            });
        }
        let e = check(&test).unwrap_err();
        assert!(e.0.starts_with("scenarios[0].steps[0].extract[0]: "), "{e}");
    }

    const EXTREMES: &[&str] = &[
        "1e300",
        "-1",
        ".inf",
        "-.inf",
        ".nan",
        "1e-300",
        "18446744073709551616",
        "0",
        "-0.0",
        "~",
        "\"1e300s\"",
        "\"-5ms\"",
    ];

    /// Every numeric key of a test, with where it sits; `{}` is replaced by the value under test.
    const FIELDS: &[&str] = &[
        "load:\n  pattern: basic\n  virtual_users: {}\n  duration: 1s\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  ramp_up: {}\n  iterations: 1\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  iterations: {}\n",
        "load:\n  pattern: stepping\n  start_users: {}\n  step_users: 1\n  step_duration: 1s\n  max_users: 2\n  duration: 1s\n",
        "load:\n  pattern: stepping\n  step_users: {}\n  step_duration: 1s\n  max_users: 2\n  duration: 1s\n",
        "load:\n  pattern: stepping\n  step_users: 1\n  step_duration: {}\n  max_users: 2\n  duration: 1s\n",
        "load:\n  pattern: stepping\n  step_users: 1\n  step_duration: 1s\n  max_users: {}\n  duration: 1s\n",
        "load:\n  pattern: arrivals\n  rate: {}\n  duration: 1s\n",
        "load:\n  pattern: arrivals\n  rate: 1\n  duration: {}\n",
        "load:\n  pattern: arrivals\n  rate: 1\n  duration: 1s\n  max_virtual_users: {}\n",
        "load:\n  pattern: arrivals\n  rate: 1\n  duration: 1s\n  preallocation: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\nglobal:\n  timeout: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 2\n  duration: 10s\n  ramp_down: {}\n",
        "load:\n  pattern: stepping\n  steps:\n    - {users: 2, duration: {}}\n    - {users: 1, duration: 1s, ramp_up: {}}\n",
        "load:\n  pattern: stepping\n  steps:\n    - {users: {}, duration: 1s}\n",
        "load:\n  pattern: stepping\n  start_users: 1\n  step_users: 1\n  step_duration: 1s\n  max_users: 3\n  hold_final: {}\n",
        "load:\n  pattern: stepping\n  start_users: 1\n  step_users: 1\n  step_duration: 1s\n  max_users: 3\n  duration: 5s\n  ramp_step: {}\n",
        "load:\n  pattern: arrivals\n  rate: 1\n  duration: 1s\n  vu_duration: {}\n",
        "load:\n  pattern: arrivals\n  rate: 1\n  duration: 10s\n  ramp_up: {}\n",
        "load:\n  pattern: arrivals\n  rate_profile:\n    - {rate: {}, duration: 1s}\n",
        "load:\n  pattern: arrivals\n  rate_profile:\n    - {rate: 2, duration: {}}\n",
        "load:\n  - {pattern: basic, vus: {}, duration: 1s}\n  - {pattern: arrivals, rate: 2, duration: 1s}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\nglobal:\n  think_time: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\ndistributed:\n  coordination:\n    time_skew_tolerance: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\ndistributed:\n  orchestration:\n    heartbeat_interval: {}\n",
        "load:\n  pattern: basic\n  virtual_users: 1\n  duration: 1s\ndistributed:\n  orchestration:\n    failure_handling:\n      worker_failure_threshold: {}\n",
    ];

    /// Whatever value any numeric key gets, loading neither panics nor yields a test whose numbers
    /// would panic the engine later: each is finite and within its bound, in YAML and over JSON.
    fn load_never_panics(field: &str, value: &str, step: &str) {
        let text = format!(
            "name: t\n{}scenarios:\n  - name: s\n    think_time: 1\n    steps:\n      - url: http://127.0.0.1:9/\n{step}",
            field.replace("{}", value)
        );
        if let Ok(test) = from_str(&text) {
            assert!(crate::engine::max_vus(&test.load) <= MAX_VUS, "{text}");
            let json = serde_json::to_string(&test).expect("a loaded test serialises");
            let back: TestFile = serde_json::from_str(&json).expect("and reads back");
            check(&back).expect("and is still valid");
            let _ = crate::engine::schedule::vu_starts(&back.load);
            let _ = crate::engine::schedule::duration(&back.load);
            let loads = match &back.load {
                Load::Phases(ps) => ps.iter().map(|p| p.load.clone()).collect(),
                other => vec![other.clone()],
            };
            for l in loads {
                let _ = crate::engine::schedule::vu_starts(&l);
                if let Load::Arrivals {
                    rate,
                    duration,
                    shape,
                    ..
                } = &l
                {
                    let _ = crate::engine::schedule::Arrivals::new(*rate, *duration, shape)
                        .take(1000)
                        .count();
                }
            }
        }
    }

    proptest! {
        #[test]
        fn numeric_extremes_never_panic(
            field in 0..FIELDS.len(),
            value in 0..EXTREMES.len(),
            step in 0..5usize,
            n in any::<f64>(),
        ) {
            let value = if value == 0 { format!("{n:e}") } else { EXTREMES[value].to_string() };
            let step = [
                String::new(),
                format!("      - type: wait\n        duration: {value}\n"),
                format!("      - rendezvous: r\n        count: 1\n        timeout: {value}\n"),
                format!("      - url: http://127.0.0.1:9/\n        checks:\n          - {{ type: response_time, value: {value} }}\n"),
                format!("      - url: http://127.0.0.1:9/\n        timeout: {value}\n        retry: {{ max_attempts: 2, delay: {value} }}\n        thresholds:\n          - {{ metric: response_time, value: {value} }}\n"),
            ][step].clone();
            load_never_panics(FIELDS[field], &value, &step);
        }
    }

    #[test]
    fn extremes_sent_as_json_are_refused() {
        let base =
            r#"{"name":"t","scenarios":[{"name":"s","steps":[{"url":"http://a/"}]}],"load":"#;
        for load in [
            r#"{"pattern":"basic","virtual_users":1,"duration":1e300}"#,
            r#"{"pattern":"basic","virtual_users":1,"duration":-1}"#,
            r#"{"pattern":"basic","virtual_users":1,"duration":"1e300s"}"#,
            r#"{"pattern":"basic","virtual_users":1,"duration":null}"#,
            r#"{"pattern":"basic","virtual_users":18446744073709551616,"duration":1}"#,
            r#"{"pattern":"basic","virtual_users":1e300,"duration":1}"#,
            r#"{"pattern":"arrivals","rate":1e300,"duration":1}"#,
            r#"{"pattern":"stepping","step_users":1,"step_duration":0,"max_users":2,"duration":1}"#,
        ] {
            let json = format!("{base}{load}}}");
            let refused = match serde_json::from_str::<TestFile>(&json) {
                Ok(test) => check(&test).is_err(),
                Err(_) => true,
            };
            assert!(refused, "{json}");
        }
    }

    #[test]
    fn every_extreme_in_every_field() {
        for f in FIELDS {
            for v in EXTREMES {
                load_never_panics(f, v, "");
            }
        }
    }
}
