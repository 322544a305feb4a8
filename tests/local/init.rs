//! `perfornium init`: the scaffold of every template validates, and every test in it runs against
//! the mock with the requests it reports counted by the mock too; an existing project is never
//! overwritten without `--force`.

use crate::support::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn tests_in(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            tests_in(&p, out);
        } else if p.extension().is_some_and(|e| e == "yml") {
            out.push(p);
        }
    }
}

/// The run's arguments that keep it short: `--duration 500ms` for a timed load (its `ramp_up`, if
/// any, shortened in place); a stepped load (which refuses `--duration`) gets its levels shortened
/// in place instead; an iteration count is kept.
fn shorten(test: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(test).unwrap();
    let mut doc: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    let load = &mut doc["load"];
    if let Some(levels) = load.get_mut("steps").and_then(|s| s.as_sequence_mut()) {
        for level in levels {
            let level = level.as_mapping_mut().unwrap();
            level.insert("duration".into(), "300ms".into());
            level.remove("ramp_up");
        }
        std::fs::write(test, serde_norway::to_string(&doc).unwrap()).unwrap();
        return vec![];
    }
    if load.get("duration").is_some() {
        // A ramp longer than the shortened duration would keep the run waiting for it.
        if let Some(ramp) = load.get_mut("ramp_up") {
            *ramp = "200ms".into();
            std::fs::write(test, serde_norway::to_string(&doc).unwrap()).unwrap();
        }
        return vec!["--duration".into(), "500ms".into()];
    }
    vec![]
}

#[test]
fn every_scaffolded_test_validates_and_runs_against_the_mock_with_matching_counts() {
    let root = tempfile::tempdir().unwrap();
    let mock = mock(0);
    let base = format!("http://{}", mock.addr);
    let mut seen: BTreeMap<String, PathBuf> = BTreeMap::new();
    for template in ["basic", "api", "mixed"] {
        let dir = root.path().join(template);
        let out = run(&[
            "init",
            dir.to_str().unwrap(),
            "--template",
            template,
            "--examples",
        ]);
        ok(&out, &format!("init --template {template}"));
        for d in [
            "tests/api",
            "config/environments",
            "data",
            "payloads",
            "results",
            "reports",
        ] {
            assert!(dir.join(d).is_dir(), "{template}: {d}/");
        }
        for f in [
            "README.md",
            "config/workers.json",
            "payloads/create-user.json",
            "data/users.csv",
        ] {
            assert!(dir.join(f).is_file(), "{template}: {f}");
        }
        // The workers file in the shape `distributed --workers-file` reads (unknown keys refused).
        let workers: Vec<perfornium::api::worker::WorkerAddr> =
            serde_json::from_slice(&std::fs::read(dir.join("config/workers.json")).unwrap())
                .unwrap();
        assert_eq!(workers.len(), 2);
        let mut files = Vec::new();
        tests_in(&dir.join("tests"), &mut files);
        for f in files {
            // The same file from two templates runs once.
            let rel = f.strip_prefix(&dir).unwrap().display().to_string();
            seen.entry(rel).or_insert(f);
        }
    }
    assert!(seen.len() >= 9, "{:?}", seen.keys());
    for (rel, file) in &seen {
        let path = file.to_str().unwrap();
        let v = run(&["validate", path]);
        ok(&v, &format!("validate {rel}"));
        assert_eq!(String::from_utf8_lossy(&v.stdout).trim(), "ok", "{rel}");
        let before = mock_stats(&mock)["total"].as_u64().unwrap();
        let out_dir = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = vec![
            "run".into(),
            path.into(),
            "--base-url".into(),
            base.clone(),
            "-o".into(),
            out_dir.path().display().to_string(),
        ];
        args.extend(shorten(file));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        ok(&out, &format!("run {rel}"));
        let s = summary(out_dir.path());
        let count = s["overall"]["count"].as_u64().unwrap();
        let after = mock_stats(&mock)["total"].as_u64().unwrap();
        assert!(count > 0, "{rel}: no request made");
        assert_eq!(s["overall"]["errors"], 0, "{rel}: {s}");
        assert_eq!(
            after - before,
            count,
            "{rel}: the mock served what the run counted"
        );
    }
    // The SOAP steps of the mixed journey were answered with results, not Faults.
    assert!(mock_stats(&mock)["soap_ok"].as_u64().unwrap() > 0);
}

#[test]
fn environments_in_config_are_found_from_the_tests_directory() {
    let dir = tempfile::tempdir().unwrap();
    ok(&run(&["init", dir.path().to_str().unwrap()]), "init");
    let test = dir.path().join("tests/api/load-test.yml");
    for (env, url) in [
        ("dev", "http://127.0.0.1:3000"),
        ("staging", "https://staging-api.example.com"),
        ("production", "https://api.example.com"),
    ] {
        let out = run(&[
            "validate",
            test.to_str().unwrap(),
            "--env",
            env,
            "--explain",
        ]);
        ok(&out, &format!("validate --env {env}"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("base_url {url}")), "{env}: {text}");
    }
    let missing = run(&["validate", test.to_str().unwrap(), "--env", "nope"]);
    assert_eq!(missing.status.code(), Some(1));
}

#[test]
fn init_refuses_to_overwrite_unless_forced_and_refuses_the_web_template() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    ok(&run(&["init", d]), "first init");
    let readme = dir.path().join("README.md");
    std::fs::write(&readme, "mine").unwrap();
    let again = run(&["init", d, "--template", "api"]);
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("README.md") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), "mine");
    assert!(
        !dir.path().join("tests/api/faker-test.yml").exists(),
        "nothing written when refused"
    );
    ok(
        &run(&["init", d, "--template", "api", "--force"]),
        "init --force",
    );
    assert_ne!(std::fs::read_to_string(&readme).unwrap(), "mine");
    assert!(dir.path().join("tests/api/faker-test.yml").exists());
    let dry = tempfile::tempdir().unwrap();
    let out = run(&["init", dry.path().to_str().unwrap(), "--dry-run"]);
    ok(&out, "--dry-run");
    assert!(String::from_utf8_lossy(&out.stdout).contains("tests/api/sample-test.yml"));
    assert!(
        !dry.path().join("tests").exists(),
        "a dry run writes nothing"
    );
    let web = run(&["init", dry.path().to_str().unwrap(), "--template", "web"]);
    assert_eq!(web.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&web.stderr).contains("browser"));
}
