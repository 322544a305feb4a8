//! The console in a real terminal: `perfornium console` runs inside tmux against three masters, two
//! workers and the mock; the test reads the screen with `capture-pane`, kills the leader, and expects
//! the screen to name the new leader while the request count keeps rising; then Enter opens the first
//! worker's own view and `t` the topology, each read back from the screen. tmux is required (`.ci/run`
//! installs it).

use crate::support::*;
use std::process::Command;

struct Tmux(String);

impl Tmux {
    fn keys(&self, keys: &str) {
        let ok = Command::new("tmux")
            .args(["send-keys", "-t", &self.0, keys])
            .status()
            .expect("tmux send-keys");
        assert!(ok.success());
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.0])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .status();
    }
}

fn leader_and_requests(screen: &str) -> Option<(u64, u64)> {
    let re = regex::Regex::new(r"leader: node (\d+) \(term \d+\).*\breq (\d+)").unwrap();
    let c = re.captures(screen)?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?))
}

#[test]
fn the_console_follows_a_new_leader_then_opens_a_worker_and_the_topology_in_a_real_terminal() {
    assert!(
        Command::new("tmux")
            .arg("-V")
            .status()
            .is_ok_and(|s| s.success()),
        "tmux is required for this test"
    );
    let mut c = Cluster::start();
    let mock = mock(2);
    let (a, b) = (worker(None), worker(None));
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("tmux")
        .load("pattern: basic, virtual_users: 2, duration: 20s")
        .scenario("think_time: 10ms")
        .write(dir.path());
    let session = format!("perfornium-test-{}", std::process::id());
    let cmd = format!(
        "{BIN} console --cluster {} {file} -w {},{}; sleep 60",
        c.list(),
        a.addr,
        b.addr
    );
    let ok = Command::new("tmux")
        .args([
            "new-session",
            "-d",
            "-s",
            &session,
            "-x",
            "120",
            "-y",
            "40",
            &cmd,
        ])
        .env("TERM", "xterm-256color")
        .status()
        .expect("tmux new-session");
    assert!(ok.success());
    let tmux = Tmux(session);

    let mut seen = None;
    assert!(
        wait_for(30, || {
            seen = leader_and_requests(&tmux.screen()).filter(|(_, r)| *r > 0);
            seen.is_some()
        }),
        "the console never showed a leader and requests:\n{}",
        tmux.screen()
    );
    let (old, _) = seen.unwrap();
    c.kill(old as usize - 1);
    let mut after = None;
    assert!(
        wait_for(30, || {
            let screen = tmux.screen();
            after = leader_and_requests(&screen).filter(|(l, _)| *l != old);
            after.is_some() && screen.contains("leader changed")
        }),
        "the console never showed the new leader:\n{}",
        tmux.screen()
    );
    let (_, requests) = after.unwrap();
    assert!(
        wait_for(20, || leader_and_requests(&tmux.screen())
            .is_some_and(|(_, r)| r > requests)),
        "the request count stopped rising after the failover:\n{}",
        tmux.screen()
    );
    // Enter: the selected (first) worker's own view, with the controller's calls to it counted.
    tmux.keys("Enter");
    let calls = regex::Regex::new(r"calls (\d+)  failed (\d+)").unwrap();
    assert!(
        wait_for(10, || {
            let screen = tmux.screen();
            [&a.addr, &b.addr]
                .iter()
                .any(|w| screen.contains(&format!("worker {w}")))
                && [
                    "its percentiles (ms)",
                    "its steps (ms)",
                    "proc cpu",
                    "health history",
                ]
                .iter()
                .all(|t| screen.contains(t))
                && calls
                    .captures(&screen)
                    .is_some_and(|c| c[1].parse::<u64>().unwrap() > 0)
        }),
        "Enter did not open a worker's view with its calls:\n{}",
        tmux.screen()
    );
    // Esc returns; t opens the topology: the killed replica unreachable, a leader driving the
    // run, both workers under their region.
    tmux.keys("Escape");
    assert!(
        wait_for(10, || tmux.screen().contains("live percentiles")),
        "Esc did not return to the main screen:\n{}",
        tmux.screen()
    );
    tmux.keys("t");
    assert!(
        wait_for(10, || {
            let screen = tmux.screen();
            screen.contains("topology: master replicas")
                && screen.contains(&format!("node {old} "))
                && screen.contains("unreachable")
                && screen.contains("leader  drives the run")
                && screen.contains(&format!("─ {}", a.addr))
                && screen.contains(&format!("─ {}", b.addr))
        }),
        "t did not show the topology:\n{}",
        tmux.screen()
    );
    tmux.keys("Escape");
    // q quits the console cleanly.
    Command::new("tmux")
        .args(["send-keys", "-t", &tmux.0, "q"])
        .status()
        .unwrap();
    assert!(
        wait_for(10, || tmux.screen().contains("result:")),
        "quitting printed the summary:\n{}",
        tmux.screen()
    );
}
