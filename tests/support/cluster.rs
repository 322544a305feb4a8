//! Three `perfornium master` replicas on loopback, each with its own data directory, and the
//! master API calls tests make against them: submit a run, wait for its phase, wait for merges.

use super::{call, free_port, get_json_within, port_taken, try_spawn_listening, wait_for, Proc};
use std::time::Duration;

/// Three replicas; `procs[i]` is `None` while replica `i` is down.
pub struct Cluster {
    pub addrs: Vec<String>,
    pub dir: tempfile::TempDir,
    pub procs: Vec<Option<Proc>>,
    /// Extra arguments every replica gets (e.g. `--token T`).
    pub extra: Vec<String>,
    /// The token to read replicas with, when they need one.
    pub token: Option<String>,
}

/// How long one read of a replica may take (a frozen one accepts but never answers).
const READ: Duration = Duration::from_secs(2);

impl Cluster {
    /// Starts three replicas and waits until they agree on a leader.
    pub fn start() -> Cluster {
        Cluster::start_with(None)
    }

    /// Like [`Cluster::start`], every replica guarded by `token`. The replicas' ports are chosen
    /// before they bind (each must know the others'); if one was taken meanwhile, the cluster is
    /// started again on new ports.
    pub fn start_with(token: Option<&str>) -> Cluster {
        let extra: Vec<String> = token
            .map(|t| vec!["--token".to_string(), t.to_string()])
            .unwrap_or_default();
        Cluster::start_with_args(&extra, token)
    }

    /// Like [`Cluster::start`], every replica started with `extra` arguments after its own, and
    /// read with `token` when one is given.
    pub fn start_with_args(extra: &[String], token: Option<&str>) -> Cluster {
        let mut last = String::new();
        for _ in 0..super::PORT_ATTEMPTS {
            let addrs: Vec<String> = (0..3)
                .map(|_| format!("127.0.0.1:{}", free_port()))
                .collect();
            let mut c = Cluster {
                addrs,
                dir: tempfile::tempdir().expect("tempdir"),
                procs: vec![None, None, None],
                extra: extra.to_vec(),
                token: token.map(String::from),
            };
            match (0..3).try_for_each(|i| c.try_start_node(i)) {
                Ok(()) => {
                    if c.wait_leader(20).is_none() {
                        panic!("no leader within 20 s.\n{}", c.stderr_tails());
                    }
                    return c;
                }
                Err(e) if port_taken(&e) => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last}")
    }

    /// `1=h:p,2=h:p,3=h:p`.
    pub fn peers(&self) -> String {
        self.addrs
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{}={a}", i + 1))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `--cluster` value.
    pub fn list(&self) -> String {
        self.addrs.join(",")
    }

    /// Replica `i`'s data directory (0-based; node id i+1).
    pub fn data_dir(&self, i: usize) -> std::path::PathBuf {
        self.dir.path().join(format!("m{}", i + 1))
    }

    /// The `perfornium` arguments that start replica `i` from its directory.
    pub fn node_args(&self, i: usize) -> Vec<String> {
        let mut args: Vec<String> = [
            "master",
            "--id",
            &(i + 1).to_string(),
            "--listen",
            &self.addrs[i],
            "--peers",
            &self.peers(),
            "--data",
            self.data_dir(i).to_str().expect("a UTF-8 path"),
        ]
        .map(String::from)
        .to_vec();
        args.extend(self.extra.iter().cloned());
        args
    }

    fn try_start_node(&mut self, i: usize) -> Result<(), String> {
        let args = self.node_args(i);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut p = try_spawn_listening(&args)?;
        p.wait_ready("/health");
        self.procs[i] = Some(p);
        Ok(())
    }

    /// (Re)starts replica `i` from its directory.
    pub fn start_node(&mut self, i: usize) {
        self.try_start_node(i).unwrap_or_else(|e| panic!("{e}"));
    }

    /// SIGKILLs replica `i`.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            p.kill();
        }
    }

    /// Each running replica's last stderr lines, for panic messages.
    pub fn stderr_tails(&self) -> String {
        let mut text = String::new();
        for (i, p) in self.procs.iter().enumerate() {
            if let Some(p) = p {
                text.push_str(&format!(
                    "--- replica {} ({}) stderr:\n{}",
                    i + 1,
                    self.addrs[i],
                    p.stderr_tail()
                ));
            }
        }
        text
    }

    /// `GET path` of replica `i` as JSON, if it is running and answers 200.
    pub fn get_json(&self, i: usize, path: &str) -> Option<serde_json::Value> {
        self.procs[i].as_ref()?;
        let url = format!("http://{}{path}", self.addrs[i]);
        get_json_within(&url, self.token.as_deref(), READ)
    }

    /// `GET /cluster` of replica `i`.
    pub fn view(&self, i: usize) -> Option<serde_json::Value> {
        self.get_json(i, "/cluster")
    }

    /// The leader's index once every live replica names the same leader and it says it leads.
    pub fn leader(&self) -> Option<usize> {
        let views: Vec<serde_json::Value> = (0..3).filter_map(|i| self.view(i)).collect();
        let live = self.procs.iter().filter(|p| p.is_some()).count();
        if views.len() < live || views.is_empty() {
            return None;
        }
        let id = views[0]["leader_id"].as_u64()?;
        if !views.iter().all(|v| v["leader_id"].as_u64() == Some(id)) {
            return None;
        }
        let i = id as usize - 1;
        (self.view(i)?["role"] == "leader").then_some(i)
    }

    /// Waits up to `secs` for an agreed leader.
    pub fn wait_leader(&self, secs: u64) -> Option<usize> {
        let mut found = None;
        wait_for(secs, || {
            found = self.leader();
            found.is_some()
        });
        found
    }

    /// [`Cluster::wait_leader`] that panics with the replicas' stderr if there is none.
    pub fn agreed_leader(&self, secs: u64) -> usize {
        self.wait_leader(secs).unwrap_or_else(|| {
            panic!(
                "the replicas agreed on no leader within {secs} s.\n{}",
                self.stderr_tails()
            )
        })
    }

    /// `GET /runs/{id}` from replica `i`.
    pub fn run(&self, i: usize, id: &str) -> Option<serde_json::Value> {
        self.get_json(i, &format!("/runs/{id}"))
    }

    /// Submits `body` to replica `i`, following one redirect to the leader; it must be
    /// acknowledged (201). Returns the run id.
    pub fn submit(&self, i: usize, body: &str) -> String {
        let token = self.token.as_deref();
        let url = format!("http://{}/runs", self.addrs[i]);
        let (mut code, mut resp) = call("POST", &url, token, Some(body)).expect("POST /runs");
        if code == 307 {
            let v: serde_json::Value = serde_json::from_str(&resp).expect("a JSON redirect");
            let url = format!(
                "http://{}/runs",
                v["leader_addr"].as_str().expect("leader_addr")
            );
            (code, resp) = call("POST", &url, token, Some(body)).expect("POST /runs");
        }
        assert_eq!(code, 201, "{resp}");
        serde_json::from_str::<serde_json::Value>(&resp).expect("JSON")["run_id"]
            .as_str()
            .expect("run_id")
            .to_string()
    }

    /// Waits until one of the replicas in `live` serves run `id` in `phase`; returns that view.
    pub fn wait_phase(
        &self,
        live: &[usize],
        id: &str,
        phase: &str,
        secs: u64,
    ) -> serde_json::Value {
        let mut last = serde_json::Value::Null;
        let ok = wait_for(secs, || {
            live.iter().any(|&i| match self.run(i, id) {
                Some(v) if v["phase"] == phase => {
                    last = v;
                    true
                }
                _ => false,
            })
        });
        assert!(
            ok,
            "run {id} did not reach {phase} within {secs} s.\n{}",
            self.stderr_tails()
        );
        last
    }

    /// Waits until replica `i` shows that the controller merged at least two batches from each of
    /// the run's `workers`: each worker's count in `GET /runs/{id}` (the merged batches while it
    /// runs) has taken two different non-zero values.
    pub fn wait_merged(&self, i: usize, id: &str, workers: usize, secs: u64) {
        let mut seen: Vec<Vec<u64>> = vec![Vec::new(); workers];
        let ok = wait_for(secs, || {
            if let Some(v) = self.run(i, id) {
                for (w, counts) in seen.iter_mut().enumerate() {
                    let n = v["summary"]["workers"][w]["merged_count"]
                        .as_u64()
                        .unwrap_or(0);
                    if n > 0 && !counts.contains(&n) {
                        counts.push(n);
                    }
                }
            }
            seen.iter().all(|c| c.len() >= 2)
        });
        assert!(
            ok,
            "run {id}: not two merged batches from each worker within {secs} s (counts seen {seen:?}).\n{}",
            self.stderr_tails()
        );
    }
}
