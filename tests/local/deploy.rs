//! The deployment files parse and hold together: the master StatefulSet has three replicas whose
//! stable names (pod-N.service) are exactly the raft peers, its data directory sits on a volume, and
//! the worker Deployment listens on the port its Service and probe use. (No cluster runs here; this
//! checks what a typo would break.)

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

#[test]
fn the_worker_deployment_serves_where_its_service_points() {
    let d = docs("workers.yaml");
    let dep = find(&d, "Deployment", "perfornium-workers");
    let container = &dep["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        &args[..3],
        ["worker", "--host", "0.0.0.0"],
        "remote workers must bind all interfaces"
    );
    let port: u64 = args[args.iter().position(|a| *a == "--port").unwrap() + 1]
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
}

#[test]
fn the_dockerfile_builds_the_one_binary() {
    let text = std::fs::read_to_string(format!("{}/deploy/Dockerfile", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    assert!(text.contains("cargo build --release --locked --bin perfornium"));
    assert!(text.contains("ENTRYPOINT [\"/usr/local/bin/perfornium\"]"));
}
