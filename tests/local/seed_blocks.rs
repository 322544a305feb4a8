//! Every `distributed:` YAML block of the seed document (`tests/fixtures/distributed-testing.md`, a
//! copy of the user-facing "Distributed Testing" page), placed in a test as written and given to
//! `perfornium validate`: it validates, or it is refused naming why (a role block belongs in a
//! process's `--config`, a key that is not built says so, `cloud:` and other transports name their
//! issue); never an unexplained "unknown field".

use crate::support::*;

/// The YAML blocks of the document that hold a `distributed:` key, dedented.
fn seed_blocks() -> Vec<String> {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/distributed-testing.md"
    ))
    .unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in doc.lines() {
        let fence = line.trim_start();
        match &mut current {
            None if fence == "```yaml" || fence == "```yml" => current = Some(Vec::new()),
            Some(lines) if fence.starts_with("```") => {
                let indent = lines
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.len() - l.trim_start().len())
                    .min()
                    .unwrap_or(0);
                let text: String = lines
                    .iter()
                    .map(|l| format!("{}\n", l.get(indent..).unwrap_or("")))
                    .collect();
                if text
                    .lines()
                    .any(|l| l.trim_start().starts_with("distributed:"))
                {
                    blocks.push(text);
                }
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    blocks
}

/// What a block's test must give: `Ok` validates; `Err(text)`: refused, the message holding text.
fn expected(block: &str) -> Result<(), &'static str> {
    let has = |k: &str| block.lines().any(|l| l.trim_start().starts_with(k));
    if has("mode:") {
        // Roles act in a process's `--config`, not in a test.
        Err("describe a cluster process, not a test")
    } else if has("cloud:") {
        Err("(issue 15)")
    } else if has("logging:") {
        // (Before `communication:`, which the logging block names as a log level.) The seed's
        // `log_aggregation` names no endpoint to ship to.
        Err("log_aggregation: missing field `url`")
    } else if has("aggregation:") {
        Err("streaming.compression: true is refused")
    } else if has("max_connection_idle:") {
        // The gRPC block: every other key acts.
        Err("max_connection_idle is not supported")
    } else if has("max_connections:") {
        // The HTTP block: every other key acts.
        Err("max_connections is not supported")
    } else if has("buffer_sizes:") {
        Err("performance.network.send_buffer_size")
    } else if has("backend: \"etcd\"") {
        // Issue 14's own: runs persist in the masters' raft log, not in etcd.
        Err("backend: `etcd` is not supported")
    } else if has("resources:") {
        // Thread pinning is per process: the worker's `--config`, not a test.
        Err("performance.resources belongs in the file given to `perfornium worker --config`")
    } else if has("network:") && has("tcp_nodelay:") {
        // Its socket options act on the run's load connections; its `compression` is the control
        // channel's, per process.
        Err("network.compression belongs in the file given to `perfornium worker")
    } else {
        Ok(())
    }
}

#[test]
fn every_distributed_block_of_the_seed_validates_or_is_refused_naming_why() {
    let blocks = seed_blocks();
    assert_eq!(blocks.len(), 23, "the seed shows 23 `distributed:` blocks");
    let dir = tempfile::tempdir().unwrap();
    let head = "name: seed\nglobal:\n  base_url: http://127.0.0.1:9\nscenarios:\n  - name: s\n    steps:\n      - name: a\n        path: /a\n";
    let basic = "load:\n  pattern: basic\n  virtual_users: 10\n  duration: 1s\n";
    let mut tests = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        if block.starts_with("load:") {
            // The load-distribution block shows two alternatives (an even `load.distributed` and a
            // weighted top-level block with another strategy): each is placed in a test of its own.
            let at = block
                .find("\ndistributed:")
                .expect("the weighted alternative");
            tests.push((i, format!("{head}{}", &block[..at + 1])));
            tests.push((i, format!("{head}{basic}{}", &block[at + 1..])));
        } else {
            tests.push((i, format!("{head}{basic}{block}")));
        }
    }
    let mut failures = Vec::new();
    for (i, text) in tests {
        let file = write(dir.path(), &format!("block{i}.yaml"), &text);
        let res = run(&["validate", &file]);
        let stderr = String::from_utf8_lossy(&res.stderr);
        let block = &blocks[i];
        match expected(block) {
            Ok(()) if !res.status.success() => {
                failures.push(format!("block {i} should validate:\n{block}\n{stderr}"))
            }
            Err(why) if res.status.success() || !stderr.contains(why) => failures.push(format!(
                "block {i} should be refused naming `{why}`:\n{block}\n{stderr}"
            )),
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}
