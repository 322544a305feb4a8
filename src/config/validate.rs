//! The rules a test must follow that serde cannot express: at least one scenario with steps, numbers
//! in range (virtual users, rates, timeouts, percentages; durations are bounded where they are
//! parsed), thresholds that parse, and checks and extractions that compile. Every path that accepts
//! a test runs them: `load`, `from_str`, a worker's `prepare` and the master's submit.

use super::{compile, duration, threshold, Load, Step, TestFile, Threshold};

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
        for step in &s.steps {
            if let Step::Http(h) = step {
                let absolute = h.target.starts_with("http://") || h.target.starts_with("https://");
                if !absolute && test.global.base_url.is_none() && !h.target.starts_with("{{") {
                    return Err(format!(
                        "scenarios[{i}] step `{}`: path `{}` needs `global.base_url` (or use a full `url`)",
                        h.name, h.target
                    ));
                }
            }
        }
    }
    if test.scenarios.iter().all(|s| s.weight == 0) {
        return Err("every scenario has `weight: 0`".into());
    }
    check_load(&test.load)?;
    check_numbers(test)?;
    if let Some(d) = &test.distributed {
        d.not_yet()?;
    }
    compile(test).map_err(|e| e.0)?;
    for t in &test.thresholds {
        match t {
            Threshold::Short(s) => threshold::parse(s, None).map(drop)?,
            Threshold::Long { metric, step } => threshold::parse(metric, step.clone()).map(drop)?,
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
        Load::Arrivals {
            max_virtual_users,
            preallocation,
            ..
        } => {
            vus("max_virtual_users", max_virtual_users.unwrap_or(0))?;
            vus("preallocation", preallocation.unwrap_or(0))?;
        }
    }
    match load {
        Load::Basic {
            virtual_users: 0, ..
        } => Err("load.virtual_users must be at least 1".into()),
        Load::Basic {
            duration: None,
            iterations: None,
            ..
        } => Err("load: a `basic` pattern needs `duration` or `iterations`".into()),
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
            "<test>:5:13: load.duration: `1e300` is longer than the 365 days a duration may last"
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
        }
    }

    proptest! {
        #[test]
        fn numeric_extremes_never_panic(
            field in 0..FIELDS.len(),
            value in 0..EXTREMES.len(),
            step in 0..4usize,
            n in any::<f64>(),
        ) {
            let value = if value == 0 { format!("{n:e}") } else { EXTREMES[value].to_string() };
            let step = [
                String::new(),
                format!("      - type: wait\n        duration: {value}\n"),
                format!("      - rendezvous: r\n        count: 1\n        timeout: {value}\n"),
                format!("      - url: http://127.0.0.1:9/\n        checks:\n          - {{ type: response_time, value: {value} }}\n"),
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
