//! What JavaScript costs an iteration: one VU runs N iterations of `GET /users` back to back
//! against the mock, once plain and once with a step `condition` and a `custom` check on the same
//! step (the first script also creates the VU's QuickJS context). The difference of the runs'
//! durations over N is the per-iteration overhead. The CI-sized run (the least of three interleaved
//! rounds of each) asserts a generous bound; the
//! full run (`SCRIPTING_ITERATIONS`, default 20000, × `SCRIPTING_ROUNDS`, default 3) writes `bench/results/scripting.md`.

use crate::support::*;

const PLAIN: &str =
    "      - { name: list, path: /users, checks: [{ type: status, value: 200 }] }\n";
const SCRIPTED: &str = "      - name: list\n        path: /users\n        condition: \"context.iteration >= 0\"\n        checks:\n          - { type: custom, script: \"result.status === 200 && result.data.users.length > 0\" }\n";

/// Seconds per iteration of `steps` run `n` times by one VU, and the requests the mock counted.
fn per_iteration(steps: &str, n: u64) -> (f64, u64) {
    let mock = mock(0);
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .load(&format!(
            "pattern: basic, virtual_users: 1, iterations: {n}"
        ))
        .steps(steps)
        .write(dir.path());
    let out = dir.path().join("out");
    let res = run(&["run", &file, "-o", out.to_str().unwrap()]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&out);
    assert_eq!(s["overall"]["count"], n);
    assert_eq!(s["overall"]["checks_passed"], n, "every check passed");
    let served = mock_stats(&mock)["total"].as_u64().unwrap();
    (s["duration_s"].as_f64().unwrap() / n as f64, served)
}

/// (plain, scripted) seconds per iteration; each run's requests checked against the mock's count.
fn measure(n: u64) -> (f64, f64) {
    let (plain, served) = per_iteration(PLAIN, n);
    assert_eq!(served, n);
    let (scripted, served) = per_iteration(SCRIPTED, n);
    assert_eq!(served, n);
    (plain, scripted)
}

#[test]
fn ci_sized_script_overhead_per_iteration() {
    // The least of three interleaved rounds of each: the host's other load only adds time.
    let rounds: Vec<(f64, f64)> = (0..3).map(|_| measure(300)).collect();
    let plain = rounds.iter().map(|r| r.0).fold(f64::INFINITY, f64::min);
    let scripted = rounds.iter().map(|r| r.1).fold(f64::INFINITY, f64::min);
    let overhead_ms = (scripted - plain) * 1000.0;
    eprintln!(
        "plain {:.3} ms, scripted {:.3} ms per iteration (overhead {overhead_ms:.3} ms)",
        plain * 1000.0,
        scripted * 1000.0
    );
    // A debug build on a shared 2-core machine: a condition and a custom check cost well under a
    // millisecond each (see bench/results/scripting.md for the release figures).
    assert!(
        overhead_ms < 5.0,
        "a condition and a custom check add {overhead_ms:.3} ms per iteration"
    );
}

#[test]
#[ignore]
fn script_overhead_per_iteration() {
    let n: u64 = std::env::var("SCRIPTING_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let rounds: usize = std::env::var("SCRIPTING_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    // Interleaved rounds; the least of each is the figure (the host's other load only adds time),
    // and the spread shows how noisy the host was.
    let all: Vec<(f64, f64)> = (0..rounds).map(|_| measure(n)).collect();
    let least = |f: fn(&(f64, f64)) -> f64| all.iter().map(f).fold(f64::INFINITY, f64::min);
    let most = |f: fn(&(f64, f64)) -> f64| all.iter().map(f).fold(0.0, f64::max);
    let (plain, scripted) = (least(|r| r.0), least(|r| r.1));
    let body = format!(
        "| iterations × rounds | plain, µs per iteration (least; most) | condition + custom check, µs per iteration (least; most) | overhead of the least, µs |\n|---:|---:|---:|---:|\n| {n} × {rounds} | {:.1} ({:.1}) | {:.1} ({:.1}) | {:.1} |\n\nBuild: {}. Host: {}; load average at the end: {}.\n",
        plain * 1e6,
        most(|r| r.0) * 1e6,
        scripted * 1e6,
        most(|r| r.1) * 1e6,
        (scripted - plain) * 1e6,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        host_facts(),
        load_average()
    );
    write_results_section(
        "scripting.md",
        "# Scripting overhead\n\nWritten by `tests/bench/scripting.rs` (`cargo test --release --test bench script_overhead -- --ignored`; the build is named with the figures). One VU, `GET /users` against `perfornium mock`, back to back; the scripted run adds a step `condition` and a `custom` check. The engines' own figures are in `scripting-engines.md` (written by `bench/script-engines`).\n",
        "Per-iteration overhead",
        &body,
    );
}
