//! `distributed.performance.network` in a test file: its socket options act on that run's load
//! connections on the worker, read back from the kernel with `ss` (iproute2) while the run holds
//! them open — and a run of the same worker without the block shows the kernel's defaults.

use crate::support::*;

/// `ss`'s line for each established TCP socket matching `filter` (with its skmem and timer).
fn ss(filter: &str) -> String {
    let out = std::process::Command::new("ss")
        .args(["-tmoiHn", "state", "established", filter])
        .output()
        .expect("ss (iproute2) is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_tests_socket_options_reach_the_workers_load_connections() {
    let w = worker(None);
    let mock = mock(50);
    let mock_port = mock.addr.rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let base = yaml(&mock)
        .name("sockets")
        .load("pattern: basic, virtual_users: 2, duration: 2s");
    let sample = |file: &str, seen: &dyn Fn(&str) -> bool| {
        let mut run = start(&["distributed", file, "-w", &w.addr, "--no-tui"]);
        let mut load = String::new();
        let ok = wait_for(10, || {
            load = ss(&format!("dport = :{mock_port}"));
            seen(&load)
        });
        assert!(
            run.exit_within(std::time::Duration::from_secs(30))
                .is_some_and(|s| s.success()),
            "the run succeeds"
        );
        (ok, load)
    };
    // Without the block: connections, but not with these buffers.
    let plain = base.clone().write(dir.path());
    let (ok, load) = sample(&plain, &|t| t.contains("skmem:"));
    assert!(ok, "load connections seen: {load}");
    assert!(
        !load.contains("rb81920") && !load.contains("tb98304"),
        "{load}"
    );
    // With it: Linux reports twice the buffer sizes set, and a keepalive timer while idle.
    let tuned = base
        .extra("distributed:\n  performance:\n    network:\n      tcp_nodelay: true\n      tcp_keepalive: true\n      send_buffer_size: 48KB\n      receive_buffer_size: 40KB\n")
        .write(dir.path());
    let (ok, load) = sample(&tuned, &|t| {
        t.contains("rb81920") && t.contains("tb98304") && t.contains("timer:(keepalive")
    });
    assert!(
        ok,
        "SO_RCVBUF 2x40KB (rb81920), SO_SNDBUF 2x48KB (tb98304), SO_KEEPALIVE: {load}"
    );
}
