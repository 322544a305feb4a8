//! The registered pool: workers started with `--master` register with the replicated masters and
//! renew a lease; the pool lives in the raft state (it outlives a leader kill without anyone
//! registering again), a run without `-w` runs on it, `coordinator.max_workers` caps it, and
//! `capacity.max_vus` is honoured before anything starts. Roles also come from the environment
//! (`PERFORNIUM_MODE`, `PERFORNIUM_CONFIG`, `MASTER_HOST`, `WORKER_ID`), as containers start them.

use crate::support::*;
use std::process::Command;

/// `GET /workers` of `addr`.
pub(crate) fn pool(addr: &str) -> Vec<serde_json::Value> {
    get_json(&format!("http://{addr}/workers"))
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
}

/// The ids of `addr`'s pool entries that are `up`, sorted.
pub(crate) fn up(addr: &str) -> Vec<String> {
    let mut ids: Vec<String> = pool(addr)
        .iter()
        .filter(|w| w["health"] == "up")
        .map(|w| w["id"].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    ids
}

/// A worker on a free loopback port that registers with `masters`.
pub(crate) fn registering_worker(masters: &str, id: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "worker",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--master",
        masters,
        "--id",
        id,
        "--lease-ms",
        "1500",
    ];
    args.extend(extra);
    spawn_server(&args, "/health")
}

#[test]
fn workers_register_outlive_a_leader_kill_and_a_console_run_without_w_uses_the_pool() {
    let mut c = Cluster::start();
    let mock = mock(0);
    let a = registering_worker(
        &c.list(),
        "w-a",
        &["--region", "eu", "--label", "tier=gold"],
    );
    let b = registering_worker(&c.list(), "w-b", &["--region", "us"]);
    let leader = c.agreed_leader(20);
    assert!(
        wait_for(10, || up(&c.addrs[leader]) == ["w-a", "w-b"]),
        "both workers registered: {:?}\n{}\n{}",
        pool(&c.addrs[leader]),
        a.stderr_tail(),
        b.stderr_tail()
    );
    let entry = pool(&c.addrs[leader])
        .into_iter()
        .find(|w| w["id"] == "w-a")
        .unwrap();
    assert_eq!(
        entry["port"].as_u64().unwrap().to_string(),
        a.addr.split(':').nth(1).unwrap()
    );
    assert_eq!(entry["region"], "eu");
    assert_eq!(entry["labels"]["tier"], "gold");

    // Kill the leader: the pool is in the raft state, and the workers renew with the new leader.
    let killed_at = now_ms();
    c.kill(leader);
    let survivors: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    let new = (0..200)
        .find_map(|_| {
            let l = c.leader().filter(|l| *l != leader);
            if l.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            l
        })
        .unwrap_or_else(|| panic!("no new leader.\n{}", c.stderr_tails()));
    let renewed_after_kill = |addr: &str| {
        let p = pool(addr);
        p.len() == 2
            && p.iter()
                .all(|w| w["health"] == "up" && w["renewed_ms"].as_u64() > Some(killed_at))
    };
    assert!(
        wait_for(10, || renewed_after_kill(&c.addrs[new])),
        "both renewed with the new leader: {:?}\n{}",
        pool(&c.addrs[new]),
        c.stderr_tails()
    );
    assert!(survivors.contains(&new));
    // Each renewal carries the worker's own CPU and memory sample.
    for w in pool(&c.addrs[new]) {
        let r = &w["resources"];
        assert!(
            r["process_memory_bytes"].as_u64() > Some(0)
                && r["host_memory_total_bytes"].as_u64() > Some(0),
            "resources reported with the lease: {w}"
        );
    }

    // A console run with no -w: on the registered pool, exact counts against the mock.
    let dir = tempfile::tempdir().unwrap();
    let file = yaml(&mock)
        .name("pool")
        .load("pattern: basic, virtual_users: 4, iterations: 5")
        .write(dir.path());
    let out = dir.path().join("out");
    let res = start(&[
        "console",
        "--cluster",
        &c.list(),
        &file,
        "-s",
        "even",
        "--no-tui",
        "-o",
        out.to_str().unwrap(),
    ])
    .wait_with_deadline(std::time::Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(0), "{stderr}\n{}", c.stderr_tails());
    assert!(
        stderr.contains("pool: 2 up (w-a, w-b)"),
        "the console shows the pool: {stderr}"
    );
    let s = summary(&out);
    assert_eq!(s["overall"]["count"], 20);
    assert_eq!(mock_stats(&mock)["total"], 20);
    let by_worker: Vec<u64> = s["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["count"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        by_worker,
        [10, 10],
        "both registered workers ran: {}",
        s["workers"]
    );
    assert_merged_exactly_once(&s);

    // A filter: only the `eu` worker; a filter nobody passes is refused, and nothing runs.
    let body = |filter: serde_json::Value| {
        serde_json::json!({
            "test_yaml": yaml(&mock).name("eu").load("pattern: basic, virtual_users: 2, iterations: 3").text(),
            "pool": filter,
        })
        .to_string()
    };
    let id = c.submit(new, &body(serde_json::json!({"region": "eu"})));
    let view = c.wait_phase(&[new], &id, "finished", 30);
    let workers = view["summary"]["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "{workers:?}");
    assert_eq!(workers[0]["address"].as_str(), Some(a.addr.as_str()));
    assert_eq!(mock_stats(&mock)["total"], 26);
    let (code, resp) = call(
        "POST",
        &format!("http://{}/runs", c.addrs[new]),
        None,
        Some(&body(serde_json::json!({"labels": {"tier": "bronze"}}))),
    )
    .unwrap();
    assert_eq!(code, 422, "{resp}");
    assert!(
        resp.contains("no registered worker with a live lease matches"),
        "{resp}"
    );

    // A worker that stops renewing is listed down, and left out.
    drop(b);
    assert!(
        wait_for(10, || up(&c.addrs[new]) == ["w-a"]),
        "w-b's lease ran out: {:?}",
        pool(&c.addrs[new])
    );
    assert!(pool(&c.addrs[new])
        .iter()
        .any(|w| w["id"] == "w-b" && w["health"] == "down"));
}

/// A one-replica master from a `--config` file's `coordinator` block.
fn coordinator_master(dir: &std::path::Path, max_workers: u32) -> Proc {
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let cfg = write(
            dir,
            "master.yml",
            &format!("distributed:\n  enabled: true\n  mode: master\n  coordinator:\n    host: 127.0.0.1\n    port: {port}\n    max_workers: {max_workers}\n"),
        );
        let data = dir.join("data");
        match try_spawn_listening(&["master", "--config", &cfg, "--data", data.to_str().unwrap()]) {
            Ok(mut p) => {
                p.wait_ready("/health");
                assert_eq!(
                    p.addr,
                    format!("127.0.0.1:{port}"),
                    "listens at coordinator.host:port"
                );
                return p;
            }
            Err(e) if port_taken(&e) => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{last}")
}

#[test]
fn max_workers_caps_the_pool_and_a_plan_over_capacity_fails_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let m = coordinator_master(dir.path(), 1);
    assert!(
        wait_for(10, || get_json(&format!("http://{}/cluster", m.addr))
            .is_some_and(|v| v["role"] == "leader")),
        "{}",
        m.stderr_tail()
    );
    let mock = mock(0);
    let a = registering_worker(&m.addr, "cap-a", &["--max-vus", "5"]);
    assert!(
        wait_for(10, || up(&m.addr) == ["cap-a"]),
        "{}",
        a.stderr_tail()
    );
    let b = registering_worker(&m.addr, "cap-b", &[]);
    assert!(
        wait_for(10, || b
            .stderr_tail()
            .contains("coordinator.max_workers is 1")),
        "the second worker is told the cap: {}",
        b.stderr_tail()
    );
    assert_eq!(up(&m.addr), ["cap-a"], "the pool holds one");

    // 8 VUs on a pool whose capacity is 5: refused before any run is recorded or request sent.
    let body = serde_json::json!({
        "test_yaml": yaml(&mock).name("big").load("pattern: basic, virtual_users: 8, iterations: 2").text(),
    })
    .to_string();
    let (code, resp) = call(
        "POST",
        &format!("http://{}/runs", m.addr),
        None,
        Some(&body),
    )
    .unwrap();
    assert_eq!(code, 422, "{resp}");
    assert!(
        resp.contains("worker cap-a would get 8 VUs, over its capacity of 5 (3 over)")
            && resp.contains("the pool's capacity is 5 VUs in all (3 short)"),
        "{resp}"
    );
    assert_eq!(
        get_json(&format!("http://{}/runs", m.addr)).unwrap(),
        serde_json::json!([])
    );
    assert_eq!(mock_stats(&mock)["total"], 0);

    // The worker itself refuses a share over its capacity (a controller that ignored it).
    let prepare = serde_json::json!({
        "run_id": "r-over",
        "test": serde_json::from_str::<serde_json::Value>(&serde_json::to_string(
            &serde_norway::from_str::<serde_json::Value>(
                &yaml(&mock).name("big").load("pattern: basic, virtual_users: 6, iterations: 1").text()
            ).unwrap()
        ).unwrap()).unwrap(),
    })
    .to_string();
    let (code, resp) = call(
        "POST",
        &format!("http://{}/prepare", a.addr),
        None,
        Some(&prepare),
    )
    .unwrap();
    assert_eq!(code, 409, "{resp}");
    assert!(resp.contains("capacity.max_vus is 5 (1 over)"), "{resp}");

    // Within capacity it runs on the pool, exactly.
    let fits = serde_json::json!({
        "test_yaml": yaml(&mock).name("fits").load("pattern: basic, virtual_users: 5, iterations: 2").text(),
    })
    .to_string();
    let (code, resp) = call(
        "POST",
        &format!("http://{}/runs", m.addr),
        None,
        Some(&fits),
    )
    .unwrap();
    assert_eq!(code, 201, "{resp}");
    let id = serde_json::from_str::<serde_json::Value>(&resp).unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        wait_for(30, || get_json(&format!("http://{}/runs/{id}", m.addr))
            .is_some_and(|v| v["phase"] == "finished")),
        "{}",
        m.stderr_tail()
    );
    assert_eq!(mock_stats(&mock)["total"], 10);
}

#[test]
fn roles_come_from_perfornium_mode_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mock = mock(0);
    // The master: PERFORNIUM_MODE=master with PERFORNIUM_CONFIG (its coordinator block).
    let mut master = None;
    let mut last = String::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_port();
        let cfg = write(
            dir.path(),
            "perfornium.yml",
            &format!("distributed:\n  mode: master\n  coordinator:\n    host: 127.0.0.1\n    port: {port}\n"),
        );
        let mut cmd = Command::new(BIN);
        cmd.env("PERFORNIUM_MODE", "master")
            .env("PERFORNIUM_CONFIG", &cfg)
            .env("PERFORNIUM_DATA", dir.path().join("m"))
            .env_remove("PERFORNIUM_PEERS")
            .env_remove("PERFORNIUM_ID");
        match try_spawn_listening_cmd(cmd) {
            Ok(mut p) => {
                p.wait_ready("/health");
                master = Some(p);
                break;
            }
            Err(e) if port_taken(&e) => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    let master = master.unwrap_or_else(|| panic!("{last}"));
    // The worker: PERFORNIUM_MODE=worker, MASTER_HOST and WORKER_ID, as the seed's compose file
    // sets them, and a config file whose `{{env.X}}` are expanded.
    std::env::set_var("PERFORNIUM_REGISTRY_TEST_REGION", "eu-west");
    let wcfg = write(
        dir.path(),
        "worker.yml",
        "distributed:\n  mode: worker\n  worker:\n    region: \"{{env.PERFORNIUM_REGISTRY_TEST_REGION}}\"\n    capacity:\n      max_vus: 50\n",
    );
    let mut worker = None;
    for _ in 0..PORT_ATTEMPTS {
        let mut cmd = Command::new(BIN);
        cmd.env("PERFORNIUM_MODE", "worker")
            .env("PERFORNIUM_CONFIG", &wcfg)
            .env("PERFORNIUM_PORT", free_port().to_string())
            .env("HOSTNAME", "127.0.0.1")
            .env("MASTER_HOST", &master.addr)
            .env("WORKER_ID", "worker-1");
        match try_spawn_listening_cmd(cmd) {
            Ok(p) => {
                worker = Some(p);
                break;
            }
            Err(e) if port_taken(&e) => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    let worker = worker.unwrap_or_else(|| panic!("{last}"));
    assert!(
        worker.addr.starts_with("0.0.0.0:"),
        "a container worker binds all interfaces: {}",
        worker.addr
    );
    assert!(
        wait_for(10, || up(&master.addr) == ["worker-1"]),
        "{}\n{}",
        worker.stderr_tail(),
        master.stderr_tail()
    );
    let entry = &pool(&master.addr)[0];
    assert_eq!(entry["host"], "127.0.0.1", "advertised as $HOSTNAME");
    assert_eq!(entry["region"], "eu-west");
    assert_eq!(entry["capacity"]["max_vus"], 50);
    let body = serde_json::json!({
        "test_yaml": yaml(&mock).name("env").load("pattern: basic, virtual_users: 3, iterations: 3").text(),
    })
    .to_string();
    let (code, resp) = call(
        "POST",
        &format!("http://{}/runs", master.addr),
        None,
        Some(&body),
    )
    .unwrap();
    assert_eq!(code, 201, "{resp}");
    assert!(
        wait_for(30, || get_json(&format!("http://{}/runs", master.addr))
            .and_then(|v| v.as_array().cloned())
            .is_some_and(|r| r
                .first()
                .is_some_and(|r| r["phase"] == "finished"))),
        "{}",
        master.stderr_tail()
    );
    assert_eq!(mock_stats(&mock)["total"], 9);

    // Standalone: the test file runs in this one process.
    let test = yaml(&mock)
        .name("alone")
        .load("pattern: basic, virtual_users: 1, iterations: 4")
        .write(dir.path());
    let mut cmd = Command::new(BIN);
    cmd.env("PERFORNIUM_MODE", "standalone")
        .env("PERFORNIUM_CONFIG", &test);
    let res = start_cmd(cmd).wait_with_deadline(std::time::Duration::from_secs(30));
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(mock_stats(&mock)["total"], 13);
}
