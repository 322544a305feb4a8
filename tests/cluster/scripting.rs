//! A distributed run with a `script` step: the controller reads the script file when it loads the
//! test and sends its text inside the test, and the scripts run on the workers. The workers run
//! from another directory, where the file's relative path names nothing, so a worker reading its
//! own disk would fail; each worker's requests carry the values its script computed.

use crate::support::*;

#[test]
fn a_script_step_travels_with_the_test_and_runs_on_each_worker() {
    let mock = mock(0);
    let a = worker_with_env(&[("PERF_WORKER", "a")]);
    let b = worker_with_env(&[("PERF_WORKER", "b")]);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("lib")).unwrap();
    write(
        dir.path(),
        "lib/sign.js",
        "exports.sign = function (p) {\n  return p.prefix + '-' + p.__iteration;\n};\n",
    );
    let file = yaml(&mock)
        .name("scripted")
        .load("pattern: basic, virtual_users: 2, iterations: 2")
        .steps(
            r#"      - name: sign
        type: script
        file: lib/sign.js
        function: sign
        params: { prefix: sig }
        returns: signature
      - name: rec
        path: "/record/d?w={{env.PERF_WORKER}}&s={{signature}}"
"#,
        )
        .write(dir.path());
    assert!(
        !std::path::Path::new("lib/sign.js").exists(),
        "the workers' directory has no lib/sign.js"
    );
    let res = run(&[
        "distributed",
        &file,
        "-w",
        &worker_list(&[&a, &b]),
        "-s",
        "even",
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let mut paths: Vec<String> = get_json(&format!("http://{}/__recorded", mock.addr))
        .and_then(|v| v.as_array().cloned())
        .expect("the mock's /__recorded")
        .iter()
        .map(|r| r["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    assert_eq!(
        paths,
        [
            "/record/d?w=a&s=sig-0",
            "/record/d?w=a&s=sig-1",
            "/record/d?w=b&s=sig-0",
            "/record/d?w=b&s=sig-1"
        ]
    );
    assert_eq!(mock_stats(&mock)["total"], 4);
}
