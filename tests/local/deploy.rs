//! The deployment files parse and hold together: the master StatefulSet has three replicas whose
//! stable names (pod-N.service) are exactly the raft peers, its data directory sits on a volume, and
//! the worker Deployment listens on the port its Service and probe use and registers with the masters'
//! Service; every variable the Docker Compose and Kubernetes files set is one the CLI reads (from its
//! own `--help`), and the masters' config files parse. (No cluster runs here; this checks what a typo
//! would break; `tests/cluster/registry.rs` runs the same environment for real.)

use serde_norway::Value;

fn docs(name: &str) -> Vec<Value> {
    let path = format!("{}/deploy/k8s/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_norway::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

use serde::Deserialize;

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_master_statefulset_gives_raft_stable_peers_and_a_volume() {
    let d = docs("masters.yaml");
    let sts = find(&d, "StatefulSet", "perfornium-master");
    assert_eq!(sts["spec"]["replicas"], 3);
    let service = sts["spec"]["serviceName"].as_str().unwrap();
    let svc = find(&d, "Service", service);
    assert_eq!(
        svc["spec"]["clusterIP"], "None",
        "stable per-pod names need a headless service"
    );
    let container = &sts["spec"]["template"]["spec"]["containers"][0];
    let args = container["args"][0].as_str().unwrap();
    let peers: Vec<String> = (0..3)
        .map(|i| {
            format!(
                "{}={}-{i}.{service}:7000",
                i + 1,
                sts["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        args.contains(&format!("--peers {}", peers.join(","))),
        "peers must be the pods' stable names: {args}"
    );
    assert!(args.contains("perfornium master") && args.contains("--id"));
    let data = args
        .split("--data ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| data.starts_with(m["mountPath"].as_str().unwrap()));
    let mount = mount.expect("--data lies on a mounted volume");
    let claim = &sts["spec"]["volumeClaimTemplates"][0];
    assert_eq!(
        claim["metadata"]["name"], mount["name"],
        "the mount is the per-replica claim"
    );
    assert_eq!(container["ports"][0]["containerPort"], 7000);
    assert_eq!(container["env"][0]["name"], "PERFORNIUM_TOKEN");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/cluster");
}

/// The value of env var `name` in a container's `env` list (a plain `value`), if set that way.
fn env_value<'a>(container: &'a Value, name: &str) -> Option<&'a str> {
    container["env"]
        .as_sequence()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

#[test]
fn the_worker_deployment_serves_where_its_service_points() {
    let d = docs("workers.yaml");
    let dep = find(&d, "Deployment", "perfornium-workers");
    let container = &dep["spec"]["template"]["spec"]["containers"][0];
    assert!(
        container["args"].is_null() && container["command"].is_null(),
        "started by environment alone (PERFORNIUM_MODE)"
    );
    assert_eq!(env_value(container, "PERFORNIUM_MODE"), Some("worker"));
    let port: u64 = env_value(container, "PERFORNIUM_PORT")
        .expect("PERFORNIUM_PORT")
        .parse()
        .unwrap();
    assert_eq!(container["ports"][0]["containerPort"].as_u64(), Some(port));
    assert_eq!(
        container["readinessProbe"]["httpGet"]["port"].as_u64(),
        Some(port)
    );
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/health");
    let svc = find(&d, "Service", "perfornium-workers");
    assert_eq!(svc["spec"]["ports"][0]["port"].as_u64(), Some(port));
    assert_eq!(
        svc["spec"]["selector"]["app"],
        dep["spec"]["template"]["metadata"]["labels"]["app"]
    );
    let secret = &docs("secret.yaml")[0];
    assert_eq!(
        container["env"][0]["valueFrom"]["secretKeyRef"]["name"],
        secret["metadata"]["name"]
    );
    // The workers register with the masters' API service, on the port the masters serve.
    let masters = docs("masters.yaml");
    let api = find(&masters, "Service", "perfornium-master-api");
    let master_host = env_value(container, "MASTER_HOST").expect("MASTER_HOST");
    assert_eq!(
        master_host,
        format!(
            "perfornium-master-api:{}",
            api["spec"]["ports"][0]["port"].as_u64().unwrap()
        )
    );
    // The masters' --config is the ConfigMap they mount, and it parses as a master's.
    let sts = find(&masters, "StatefulSet", "perfornium-master");
    let m = &sts["spec"]["template"]["spec"]["containers"][0];
    let args = m["args"][0].as_str().unwrap();
    let config = args
        .split("--config ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let mount = m["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| config.starts_with(v["mountPath"].as_str().unwrap()))
        .expect("--config lies on a mount");
    let volume = sts["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mount's volume");
    let cm = find(
        &masters,
        "ConfigMap",
        volume["configMap"]["name"].as_str().unwrap(),
    );
    let file = config.rsplit('/').next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = crate::support::write(dir.path(), file, cm["data"][file].as_str().unwrap());
    explains("master", &path);
}

/// `perfornium ROLE --config PATH --explain` accepts the file.
fn explains(role: &str, path: &str) {
    let out = crate::support::run(&[role, "--config", path, "--explain"]);
    assert!(
        out.status.success(),
        "{path} as a {role}'s --config: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The environment variables `perfornium ROLE` reads, from its own `--help` (clap prints
/// `[env: NAME=...]` beside each flag that reads one).
fn env_vars_of(role: &str) -> Vec<String> {
    let out = crate::support::run(&[role, "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    help.split("[env: ")
        .skip(1)
        .map(|s| s.split(['=', ']']).next().unwrap().to_string())
        .collect()
}

/// Every variable a role's container sets is one the binary reads: PERFORNIUM_MODE and
/// PERFORNIUM_CONFIG (the role itself), or a flag's variable in `perfornium MODE --help`.
fn check_environment(what: &str, mode: &str, names: &[String]) {
    let known = env_vars_of(mode);
    for n in names {
        assert!(
            n == "PERFORNIUM_MODE" || n == "PERFORNIUM_CONFIG" || known.contains(n),
            "{what}: {n} is read by no flag of `perfornium {mode}` (it reads {known:?})"
        );
    }
}

#[test]
fn every_role_s_environment_is_read_by_the_cli() {
    let path = format!("{}/deploy/docker-compose.yml", env!("CARGO_MANIFEST_DIR"));
    let compose: Value = serde_norway::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let services = compose["services"].as_mapping().unwrap();
    let mut modes = Vec::new();
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        let env: Vec<(String, String)> = svc["environment"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|e| {
                let (k, v) = e.as_str().unwrap().split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let mode = get("PERFORNIUM_MODE").unwrap_or_else(|| panic!("{name}: no PERFORNIUM_MODE"));
        let names: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
        check_environment(&format!("docker-compose {name}"), mode, &names);
        match mode {
            "master" => {
                // Its config, mounted from deploy/config, is a master's and listens on the published port.
                let config = get("PERFORNIUM_CONFIG").expect("a master needs PERFORNIUM_CONFIG");
                let volume = svc["volumes"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap())
                    .find(|v| {
                        let inside = v.split(':').nth(1).unwrap();
                        config.starts_with(inside)
                    })
                    .expect("PERFORNIUM_CONFIG lies on a volume");
                let (host_dir, inside) = {
                    let mut p = volume.split(':');
                    (p.next().unwrap(), p.next().unwrap())
                };
                let local = format!(
                    "{}/deploy/{}{}",
                    env!("CARGO_MANIFEST_DIR"),
                    host_dir.trim_start_matches("./"),
                    config.strip_prefix(inside).unwrap()
                );
                explains("master", &local);
                let text = std::fs::read_to_string(&local).unwrap();
                let cfg: Value = serde_norway::from_str(&text).unwrap();
                let port = cfg["distributed"]["coordinator"]["port"].as_u64().unwrap();
                assert!(svc["ports"][0]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!(":{port}")));
                assert_eq!(
                    svc["hostname"], name,
                    "the master's raft address is its name"
                );
            }
            "worker" => {
                let master = get("MASTER_HOST").expect("MASTER_HOST");
                assert!(
                    services.contains_key(master),
                    "{name}: MASTER_HOST {master} is a service"
                );
                assert_eq!(get("WORKER_ID"), Some(name));
                assert_eq!(svc["hostname"], name, "advertised as its service name");
            }
            other => panic!("{name}: mode {other}"),
        }
        modes.push(mode.to_string());
    }
    modes.sort();
    assert_eq!(
        modes,
        ["master", "worker", "worker"],
        "the seed's master and two workers"
    );
    // The Kubernetes workers too.
    let d = docs("workers.yaml");
    let c =
        &find(&d, "Deployment", "perfornium-workers")["spec"]["template"]["spec"]["containers"][0];
    let names: Vec<String> = c["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    check_environment("k8s workers", "worker", &names);
}

#[test]
fn the_dockerfile_builds_the_one_binary() {
    let text = std::fs::read_to_string(format!("{}/deploy/Dockerfile", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    assert!(text.contains("cargo build --release --locked --bin perfornium"));
    assert!(text.contains("ENTRYPOINT [\"/usr/local/bin/perfornium\"]"));
}
