//! TLS and mutual TLS on Perfornium's own channels, with certificates made at run time by rcgen:
//! a worker that requires client certificates refuses every client without a valid one (plain
//! HTTP, no certificate, a certificate from another CA, a server it cannot verify), and accepts the
//! controller and console that present one; three masters elect a leader over HTTPS raft and drive
//! a TLS worker to a complete run whose count equals the mock's.

use crate::support::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A CA and the certificates signed by it, as PEM files in a directory.
pub(crate) struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// CA `name` with a server certificate (localhost, 127.0.0.1) and a client certificate.
    pub(crate) fn new(dir: &Path, name: &str) -> Pki {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} CA"));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        for (leaf, names) in [
            (
                "server",
                vec!["localhost".to_string(), "127.0.0.1".to_string()],
            ),
            ("client", vec!["perfornium-client".to_string()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let mut p = CertificateParams::new(names).unwrap();
            p.distinguished_name
                .push(DnType::CommonName, format!("{name} {leaf}"));
            let cert = p.signed_by(&key, &ca).unwrap();
            std::fs::write(dir.join(format!("{leaf}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.join(format!("{leaf}.key")), key.serialize_pem()).unwrap();
        }
        Pki { dir }
    }

    pub(crate) fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }

    /// `--tls-cert --tls-key --tls-ca`: serve HTTPS and require client certificates from this CA.
    fn serve_args(&self) -> Vec<String> {
        [
            "--tls-cert",
            &self.path("server.pem"),
            "--tls-key",
            &self.path("server.key"),
            "--tls-ca",
            &self.path("ca.pem"),
        ]
        .map(String::from)
        .to_vec()
    }

    /// `--ca --client-cert --client-key`: call over HTTPS with this CA's client certificate.
    fn call_args(&self) -> Vec<String> {
        [
            "--ca",
            &self.path("ca.pem"),
            "--client-cert",
            &self.path("client.pem"),
            "--client-key",
            &self.path("client.key"),
        ]
        .map(String::from)
        .to_vec()
    }

    /// A TLS client trusting `self`'s CA and presenting `identity`'s client certificate.
    fn client(&self, identity: Option<&Pki>) -> perfornium::tls::ClientTls {
        let id = identity.map(|i| (i.dir.join("client.pem"), i.dir.join("client.key")));
        perfornium::tls::ClientTls::load(
            &self.dir.join("ca.pem"),
            id.as_ref().map(|(c, k)| (c.as_path(), k.as_path())),
        )
        .expect("client TLS loads")
    }
}

/// GET `url` with `tls`: the status, or the error's full chain as text.
fn get(tls: &perfornium::tls::ClientTls, url: &str) -> Result<u16, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = perfornium::tls::client_builder(Some(tls))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| e.to_string())?;
        match client.get(url).send().await {
            Ok(r) => Ok(r.status().as_u16()),
            Err(e) => {
                let mut text = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    text += &format!(": {s}");
                    src = s.source();
                }
                Err(text)
            }
        }
    })
}

/// Polls `https://addr/health` with a valid client until it answers 200.
fn wait_tls_ready(tls: &perfornium::tls::ClientTls, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if get(tls, &format!("https://{addr}/health")) == Ok(200) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("https://{addr} never became ready");
}

pub(crate) fn tls_worker(pki: &Pki) -> Proc {
    let mut args = vec!["worker", "--host", "127.0.0.1", "--port", "0"];
    let serve = pki.serve_args();
    args.extend(serve.iter().map(String::as_str));
    let w = spawn_listening(&args);
    wait_tls_ready(&pki.client(Some(pki)), &w.addr);
    w
}

fn test_yaml(dir: &Path, mock: &Proc) -> String {
    yaml(mock)
        .name("tls")
        .load("pattern: basic, virtual_users: 3, iterations: 5")
        .write(dir)
}

#[test]
fn a_worker_with_mutual_tls_refuses_every_client_without_a_valid_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "cluster");
    let rogue = Pki::new(tmp.path(), "rogue");
    let w = tls_worker(&pki);
    let health = format!("https://{}/health", w.addr);

    let plain = http_get(&format!("http://{}/health", w.addr));
    assert!(
        !matches!(plain, Ok((200, _))),
        "plain HTTP must not be served: {plain:?}"
    );
    let anonymous = get(&pki.client(None), &health);
    assert!(anonymous.is_err(), "no client certificate: {anonymous:?}");
    let foreign = get(&pki.client(Some(&rogue)), &health);
    assert!(
        foreign.is_err(),
        "a certificate from another CA: {foreign:?}"
    );
    let unverified = get(&rogue.client(Some(&pki)), &health);
    assert!(
        unverified.is_err(),
        "a server the client's CA did not sign: {unverified:?}"
    );
    assert_eq!(get(&pki.client(Some(&pki)), &health), Ok(200));

    // The controller over mTLS: without a client certificate the run cannot prepare the worker.
    let mock = mock(0);
    let file = test_yaml(tmp.path(), &mock);
    let mut args = vec!["distributed", file.as_str(), "-w", &w.addr, "--no-tui"];
    let ca = pki.path("ca.pem");
    let refused = run(&[args.clone(), vec!["--ca", &ca]].concat());
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stdout) + String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("TLS failed"), "the reason is named: {said}");
    assert_eq!(mock_stats(&mock)["total"], 0, "nothing ran");

    let call = pki.call_args();
    let out = tmp.path().join("out");
    let out_s = out.display().to_string();
    args.extend(call.iter().map(String::as_str));
    args.extend(["-o", &out_s]);
    let res = run(&args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(summary(&out)["overall"]["count"], 15);
    assert_merged_exactly_once(&summary(&out));
    assert_eq!(mock_stats(&mock)["total"], 15);
}

/// Three master replicas serving HTTPS and requiring `pki`'s client certificates. Their ports are
/// chosen before they bind (each must know the others'), so if one was taken meanwhile they are all
/// started again on new ports.
fn tls_masters(dir: &Path, pki: &Pki) -> (Vec<String>, Vec<Proc>) {
    let serve = pki.serve_args();
    let mut last = String::new();
    for attempt in 0..PORT_ATTEMPTS {
        let addrs: Vec<String> = free_ports(3)
            .into_iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let peers = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",");
        let started: Result<Vec<Proc>, String> = addrs
            .iter()
            .enumerate()
            .map(|(i, addr)| {
                let id = (i + 1).to_string();
                let data = dir.join(format!("attempt{attempt}/m{id}"));
                let data = data.display().to_string();
                let mut args = vec![
                    "master", "--id", &id, "--listen", addr, "--peers", &peers, "--data", &data,
                ];
                args.extend(serve.iter().map(String::as_str));
                try_spawn_listening(&args)
            })
            .collect();
        match started {
            Ok(masters) => return (addrs, masters),
            Err(e) if port_taken(&e) => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{last}")
}

#[test]
fn a_tls_cluster_elects_over_https_raft_and_completes_a_run_on_a_tls_worker() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "cluster");
    let w = tls_worker(&pki);
    let mock = mock(0);
    let (addrs, _masters) = tls_masters(tmp.path(), &pki);
    let client = pki.client(Some(&pki));
    for a in &addrs {
        wait_tls_ready(&client, a);
    }

    let file = test_yaml(tmp.path(), &mock);
    let cluster = addrs.join(",");
    let out = tmp.path().join("out");
    let out_s = out.display().to_string();
    let call = pki.call_args();
    let mut args = vec![
        "console",
        "--cluster",
        &cluster,
        &file,
        "-w",
        &w.addr,
        "--no-tui",
        "-o",
        &out_s,
    ];
    args.extend(call.iter().map(String::as_str));
    let res = run(&args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    assert_eq!(summary(&out)["overall"]["count"], 15);
    assert_merged_exactly_once(&summary(&out));
    assert_eq!(
        mock_stats(&mock)["total"],
        15,
        "the leader drove the worker over mTLS"
    );

    // The console without a client certificate is refused by every replica, with a clear error.
    let ca = pki.path("ca.pem");
    let refused = run(&["console", "--cluster", &cluster, "--no-tui", "--ca", &ca]);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("TLS failed"), "{said}");
    let plain = http_get(&format!("http://{}/cluster", addrs[0]));
    assert!(!matches!(plain, Ok((200, _))), "{plain:?}");
}

#[test]
fn load_goes_over_https_to_a_trusted_target_and_fails_as_tls_to_an_untrusted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::new(tmp.path(), "target");
    let mut args = vec!["mock", "--port", "0"];
    let cert = pki.path("server.pem");
    let key = pki.path("server.key");
    args.extend(["--tls-cert", &cert, "--tls-key", &key]);
    let m = spawn_listening(&args);
    let client = pki.client(None);
    let stats_url = format!("https://{}/__stats", m.addr);
    assert!(wait_for(20, || get(&client, &stats_url) == Ok(200)));
    let file = Yaml::at(&format!("https://{}", m.addr))
        .name("https")
        .load("pattern: basic, virtual_users: 2, iterations: 5")
        .steps("      - name: list\n        path: /users\n        checks:\n          - type: status\n            value: 200\n")
        .write(tmp.path());
    let served = || -> u64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let http = perfornium::tls::client_builder(Some(&client))
                .build()
                .unwrap();
            let v: serde_json::Value = http
                .get(&stats_url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["total"].as_u64().unwrap()
        })
    };
    let run_with = |ca: Option<&str>, out: &str| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["run", &file, "-o", out])
            .env_remove("SSL_CERT_FILE");
        if let Some(ca) = ca {
            cmd.env("SSL_CERT_FILE", ca);
        }
        start_cmd(cmd).wait_with_deadline(RUN_DEADLINE)
    };

    // Not trusted: every request fails in the handshake, and is counted as a `tls` error.
    let untrusted = tmp.path().join("untrusted");
    run_with(None, untrusted.to_str().unwrap());
    let s = summary(&untrusted);
    assert_eq!(s["overall"]["count"], 10);
    assert_eq!(s["overall"]["errors"], 10);
    assert_eq!(
        s["overall"]["errors_by_kind"]["tls"], 10,
        "{}",
        s["overall"]
    );
    assert_eq!(served(), 0, "no request got through");

    // Trusted through SSL_CERT_FILE: each VU's own TLS connection, every request counted once.
    let trusted = tmp.path().join("trusted");
    let res = run_with(Some(&pki.path("ca.pem")), trusted.to_str().unwrap());
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let s = summary(&trusted);
    assert_eq!(s["overall"]["count"], 10);
    assert_eq!(s["overall"]["errors"], 0);
    assert_eq!(served(), 10);
}
