//! A network of Linux network namespaces for partition tests, built with `ip` alone.
//!
//! Layout: one bridge per [`Net`] in the host namespace with the host address `10.231.S.1/24`; each
//! node is a namespace `pfns-PID-N-NAME` holding `eth0` (one end of a veth pair whose other end is on
//! the bridge) with address `10.231.S.H/24`, and `lo`. No default route anywhere: the addresses exist
//! only inside these namespaces and on the bridge. The test process reaches every node through the
//! bridge; nodes reach each other through it.
//!
//! A partition between two nodes is made on both sides by pinning the other node's address to a MAC
//! address nobody has (`ip neigh replace ... nud permanent`): frames leave, the bridge floods them, no
//! interface accepts them. The peers see silence (timeouts), as behind a dropping firewall, not
//! connection errors; the test process still reaches both. Healing deletes the pinned entries (ARP
//! resolves the real address again). A node can also be cut from everything, test process included,
//! by bringing its host-side veth down.
//!
//! `Drop` kills whatever still runs in the namespaces (processes the test started) and deletes the
//! namespaces (which removes their veths) and the bridge, also when a test panics. Namespaces left by
//! a test process that was killed outright are swept by the next [`Net::new`] (their names carry the
//! pid of a process that no longer exists).
#![allow(dead_code)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The `ip` binary, by absolute path when it is in the usual place (root's PATH may not be ours).
fn ip_bin() -> &'static str {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .unwrap_or("ip")
}

/// Runs `ip ARGS`; `Err` carries its stderr.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new(ip_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn ip_out(args: &[&str]) -> String {
    Command::new(ip_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// Why namespaces cannot be used here, if they cannot (not root, no CAP_NET_ADMIN, no `ip`).
pub fn unavailable() -> Option<String> {
    static PROBE: Mutex<Option<Option<String>>> = Mutex::new(None);
    let mut probe = PROBE.lock().unwrap_or_else(|e| e.into_inner());
    probe
        .get_or_insert_with(|| {
            let name = format!("pfns-{}-probe", std::process::id());
            match ip(&["netns", "add", &name]) {
                Ok(()) => {
                    let veth = ip(&[
                        "link", "add", "pfprobe0", "type", "veth", "peer", "name", "pfprobe1",
                    ]);
                    let _ = ip(&["link", "del", "pfprobe0"]);
                    let bridge = ip(&["link", "add", "pfprobebr", "type", "bridge"]);
                    let _ = ip(&["link", "del", "pfprobebr"]);
                    let _ = ip(&["netns", "del", &name]);
                    veth.and(bridge).err()
                }
                Err(e) => Some(e),
            }
        })
        .clone()
}

/// Whether `tc qdisc ... netem` exists in this kernel (CONFIG_NET_SCH_NETEM).
pub fn netem_available() -> bool {
    let probe = format!("pfnq{}", std::process::id() % 100_000);
    if ip(&[
        "link",
        "add",
        &probe,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{probe}p"),
    ])
    .is_err()
    {
        return false;
    }
    let ok = Command::new("tc")
        .args([
            "qdisc", "add", "dev", &probe, "root", "netem", "delay", "1ms",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let _ = ip(&["link", "del", &probe]);
    ok
}

/// Why TAP devices (for [`Net::impaired`]) cannot be made here, if they cannot.
pub fn tap_unavailable() -> Option<String> {
    let name = format!("pftq{}", std::process::id() % 100_000);
    match open_tap(&name) {
        Ok(f) => {
            drop(f);
            None
        }
        Err(e) => Some(e),
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);
static SUBNETS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// One node: a namespace with one address on the bridge.
pub struct Node {
    pub name: String,
    pub ns: String,
    /// The host-side end of its veth (on the bridge).
    pub veth: String,
    pub ip: String,
}

/// A bridge and namespaces on it; everything is deleted on drop.
pub struct Net {
    pub tag: String,
    pub subnet: u8,
    pub bridge: String,
    pub host_ip: String,
    pub nodes: Vec<Node>,
    cuts: Mutex<Vec<(usize, usize)>>,
    /// When the links are impaired: the userspace switch that carries every frame.
    pub switch: Option<Switch>,
}

/// Deletes namespaces and bridges left by test processes that no longer exist.
fn sweep_stale() {
    for line in ip_out(&["netns", "list"]).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix("pfns-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
    for line in ip_out(&["-o", "link", "show", "type", "bridge"]).lines() {
        // "12: pf123x0b: <...>"
        let Some(name) = line.split(':').nth(1).map(str::trim) else {
            continue;
        };
        let name = name.split('@').next().unwrap_or(name);
        if let Some(rest) = name.strip_prefix("pf").and_then(|r| r.strip_suffix('b')) {
            if let Some(pid) = rest.split('x').next().and_then(|p| p.parse::<u32>().ok()) {
                if pid != std::process::id()
                    && !std::path::Path::new(&format!("/proc/{pid}")).exists()
                {
                    let _ = ip(&["link", "del", name]);
                }
            }
        }
    }
}

/// A /24 in 10.231.0.0/16 that no interface or route here uses yet.
fn take_subnet() -> Result<u8, String> {
    let mut taken = SUBNETS.lock().unwrap_or_else(|e| e.into_inner());
    let routes = ip_out(&["-4", "route", "show", "table", "all"]);
    let start = (std::process::id() % 200) as u8;
    for k in 0..250u16 {
        let s = ((start as u16 + k) % 250 + 1) as u8;
        let prefix = format!("10.231.{s}.");
        if !taken.contains(&s) && !routes.contains(&prefix) {
            taken.push(s);
            return Ok(s);
        }
    }
    Err("no free 10.231.x.0/24".into())
}

impl Net {
    /// A bridge with one namespace per name, addresses `10.231.S.10`, `.11`, ... in order.
    pub fn new(names: &[&str]) -> Result<Net, String> {
        sweep_stale();
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("pf{pid}x{n}");
        let subnet = take_subnet()?;
        let bridge = format!("{tag}b");
        let host_ip = format!("10.231.{subnet}.1");
        let mut net = Net {
            tag: tag.clone(),
            subnet,
            bridge: bridge.clone(),
            host_ip: host_ip.clone(),
            nodes: Vec::new(),
            cuts: Mutex::new(Vec::new()),
            switch: None,
        };
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for (i, name) in names.iter().enumerate() {
            let ns = format!("pfns-{pid}-{n}-{name}");
            let veth = format!("{tag}v{i}");
            let peer = format!("{tag}p{i}");
            let addr = format!("10.231.{subnet}.{}", 10 + i);
            // Pushed first, so Drop cleans up whatever of it was made.
            net.nodes.push(Node {
                name: name.to_string(),
                ns: ns.clone(),
                veth: veth.clone(),
                ip: addr.clone(),
            });
            ip(&["netns", "add", &ns])?;
            ip(&["link", "add", &veth, "type", "veth", "peer", "name", &peer])?;
            ip(&["link", "set", &peer, "netns", &ns])?;
            ip(&["link", "set", &veth, "master", &bridge])?;
            ip(&["link", "set", &veth, "up"])?;
            ip(&["-n", &ns, "link", "set", &peer, "name", "eth0"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    /// Like [`Net::new`], but every link is impaired: instead of veths on a kernel bridge, each
    /// namespace (and the host) gets a TAP device whose frames this process switches, losing
    /// `loss_pct` % of them and delaying each of the others by `delay_ms ± jitter_ms` (uniform; frames
    /// may overtake each other, as under netem with jitter). For kernels without `sch_netem`.
    pub fn impaired(names: &[&str], imp: Impairment) -> Result<Net, String> {
        sweep_stale();
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("pf{pid}x{n}");
        let subnet = take_subnet()?;
        let host_tap = format!("{tag}b");
        let host_ip = format!("10.231.{subnet}.1");
        let switch = Switch::new(imp);
        let mut net = Net {
            tag: tag.clone(),
            subnet,
            bridge: host_tap.clone(),
            host_ip: host_ip.clone(),
            nodes: Vec::new(),
            cuts: Mutex::new(Vec::new()),
            switch: None,
        };
        switch.add_port(open_tap(&host_tap)?);
        net.switch = Some(switch);
        ip(&["addr", "add", &format!("{host_ip}/24"), "dev", &host_tap])?;
        ip(&["link", "set", &host_tap, "up"])?;
        for (i, name) in names.iter().enumerate() {
            let ns = format!("pfns-{pid}-{n}-{name}");
            let tap = format!("{tag}t{i}");
            let addr = format!("10.231.{subnet}.{}", 10 + i);
            net.nodes.push(Node {
                name: name.to_string(),
                ns: ns.clone(),
                veth: tap.clone(),
                ip: addr.clone(),
            });
            ip(&["netns", "add", &ns])?;
            net.switch.as_ref().unwrap().add_port(open_tap(&tap)?);
            ip(&["link", "set", &tap, "netns", &ns])?;
            ip(&["-n", &ns, "link", "set", &tap, "name", "eth0"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    pub fn index(&self, name: &str) -> usize {
        self.nodes
            .iter()
            .position(|n| n.name == name)
            .unwrap_or_else(|| panic!("no node {name}"))
    }

    pub fn node(&self, name: &str) -> &Node {
        &self.nodes[self.index(name)]
    }

    /// The node's address.
    pub fn ip_of(&self, name: &str) -> String {
        self.node(name).ip.clone()
    }

    /// Starts `BIN ARGS` inside the node's namespace; stderr goes to a file shown on failure.
    pub fn spawn(&self, name: &str, bin: &str, args: &[&str]) -> NsProc {
        let node = self.node(name);
        let log = std::env::temp_dir().join(format!(
            "{}-{}.stderr",
            node.ns,
            NEXT_LOG.fetch_add(1, Ordering::SeqCst)
        ));
        let file = std::fs::File::create(&log).expect("stderr file");
        let child = Command::new(ip_bin())
            .args(["netns", "exec", &node.ns, bin])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn ip netns exec");
        NsProc {
            name: name.to_string(),
            child: Some(child),
            log,
        }
    }

    /// Cuts the link between two nodes in both directions (silently: packets are lost).
    pub fn cut(&self, a: &str, b: &str) {
        let (ia, ib) = (self.index(a), self.index(b));
        for (from, to) in [(ia, ib), (ib, ia)] {
            let (ns, peer) = (&self.nodes[from].ns, &self.nodes[to].ip);
            ip(&[
                "-n",
                ns,
                "neigh",
                "replace",
                peer,
                "lladdr",
                "02:00:5e:00:53:01",
                "nud",
                "permanent",
                "dev",
                "eth0",
            ])
            .expect("cut");
        }
        self.cuts.lock().unwrap().push((ia, ib));
    }

    /// Restores the link between two nodes.
    pub fn heal(&self, a: &str, b: &str) {
        let (ia, ib) = (self.index(a), self.index(b));
        for (from, to) in [(ia, ib), (ib, ia)] {
            let (ns, peer) = (&self.nodes[from].ns, &self.nodes[to].ip);
            ip(&["-n", ns, "neigh", "del", peer, "dev", "eth0"]).expect("heal");
        }
        self.cuts
            .lock()
            .unwrap()
            .retain(|&c| c != (ia, ib) && c != (ib, ia));
    }

    /// Cuts `a` from every node in `others`.
    pub fn cut_from(&self, a: &str, others: &[&str]) {
        for o in others {
            self.cut(a, o);
        }
    }

    /// Heals every cut made so far.
    pub fn heal_all(&self) {
        let cuts: Vec<(usize, usize)> = self.cuts.lock().unwrap().clone();
        for (a, b) in cuts {
            let (a, b) = (self.nodes[a].name.clone(), self.nodes[b].name.clone());
            self.heal(&a, &b);
        }
    }

    /// `tc qdisc add dev IF root netem ARGS` on the bridge side of every node's veth and on the
    /// bridge itself (towards the host): every frame between two nodes crosses exactly one of them,
    /// once, as through [`Net::impaired`]'s switch. Needs `sch_netem` in the kernel.
    pub fn netem_all(&self, args: &[&str]) -> Result<(), String> {
        for n in &self.nodes {
            tc(None, &n.veth, args)?;
        }
        tc(None, &self.bridge, args)
    }
}

fn tc(ns: Option<&str>, dev: &str, netem: &[&str]) -> Result<(), String> {
    let mut cmd = match ns {
        Some(ns) => {
            let mut c = Command::new(ip_bin());
            c.args(["netns", "exec", ns, "tc"]);
            c
        }
        None => Command::new("tc"),
    };
    let out = cmd
        .args(["qdisc", "add", "dev", dev, "root", "netem"])
        .args(netem)
        .output()
        .map_err(|e| format!("tc: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

static NEXT_LOG: AtomicU32 = AtomicU32::new(0);

impl Drop for Net {
    fn drop(&mut self) {
        for node in &self.nodes {
            // Only processes this test started live in these namespaces.
            for pid in ip_out(&["netns", "pids", &node.ns]).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = Command::new("kill").args(["-9", &pid.to_string()]).output();
                }
            }
            let _ = ip(&["netns", "del", &node.ns]);
            let _ = ip(&["link", "del", &node.veth]);
        }
        let _ = ip(&["link", "del", &self.bridge]);
        if let Some(sw) = self.switch.take() {
            sw.shut();
        }
        SUBNETS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|&s| s != self.subnet);
    }
}

/// A process in a namespace: killed and awaited on drop; its stderr kept in a file.
pub struct NsProc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl NsProc {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Its stderr so far (the last 6000 bytes).
    pub fn stderr(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut s);
        }
        let cut = s.len().saturating_sub(6000);
        let cut = (cut..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        format!("--- stderr of {} ---\n{}", self.name, &s[cut..])
    }

    /// Waits for it to exit within `deadline`; kills it past that. Returns its exit code.
    pub fn wait_within(&mut self, deadline: Duration) -> Option<i32> {
        let until = Instant::now() + deadline;
        let child = self.child.as_mut()?;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return None;
                }
            }
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NsProc {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Link impairment for [`Net::impaired`].
#[derive(Clone, Copy, Debug)]
pub struct Impairment {
    pub delay_ms: u64,
    pub jitter_ms: u64,
    pub loss_pct: f64,
}

extern "C" {
    fn ioctl(fd: std::os::raw::c_int, request: std::os::raw::c_ulong, ...) -> std::os::raw::c_int;
}

/// Creates TAP device `name` in this (the host) namespace and returns its queue. The device lives
/// while the file is open or until it is deleted (with its namespace, or `ip link del`).
fn open_tap(name: &str) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    const TUNSETIFF: std::os::raw::c_ulong = 0x4004_54ca;
    const IFF_TAP: u16 = 0x0002;
    const IFF_NO_PI: u16 = 0x1000;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| format!("/dev/net/tun: {e}"))?;
    // struct ifreq: the name (16 bytes), then the flags (a short) in a 24-byte union.
    let mut ifr = [0u8; 40];
    if name.len() >= 16 {
        return Err(format!("{name}: name too long"));
    }
    ifr[..name.len()].copy_from_slice(name.as_bytes());
    ifr[16..18].copy_from_slice(&(IFF_TAP | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF reads and writes a struct ifreq, which `ifr` is large enough to hold.
    let rc = unsafe { ioctl(file.as_raw_fd(), TUNSETIFF, ifr.as_mut_ptr()) };
    if rc < 0 {
        return Err(format!(
            "TUNSETIFF {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(file)
}

type Mac = [u8; 6];

struct Due {
    at: Instant,
    seq: u64,
    port: usize,
    frame: Vec<u8>,
}
impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        // A min-heap on the due instant.
        (o.at, o.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Default)]
struct Queue {
    heap: std::collections::BinaryHeap<Due>,
    seq: u64,
    stop: bool,
}

/// Frames switched, lost and delivered: the impairment as it happened.
#[derive(Default, Debug, Clone, Copy)]
pub struct SwitchStats {
    pub frames: u64,
    pub lost: u64,
    pub delivered: u64,
}

/// A learning Ethernet switch in this process, one thread per port reading frames and one
/// delivering them when due.
pub struct Switch {
    imp: Impairment,
    ports: std::sync::Arc<Mutex<Vec<std::sync::Arc<std::fs::File>>>>,
    macs: std::sync::Arc<Mutex<std::collections::HashMap<Mac, usize>>>,
    queue: std::sync::Arc<(Mutex<Queue>, std::sync::Condvar)>,
    stats: std::sync::Arc<Mutex<SwitchStats>>,
    deliverer: Option<std::thread::JoinHandle<()>>,
}

impl Switch {
    fn new(imp: Impairment) -> Switch {
        let ports: std::sync::Arc<Mutex<Vec<std::sync::Arc<std::fs::File>>>> = Default::default();
        let queue: std::sync::Arc<(Mutex<Queue>, std::sync::Condvar)> = Default::default();
        let stats: std::sync::Arc<Mutex<SwitchStats>> = Default::default();
        let deliverer = {
            let (ports, queue, stats) = (ports.clone(), queue.clone(), stats.clone());
            std::thread::spawn(move || {
                use std::io::Write;
                let (lock, cv) = &*queue;
                let mut q = lock.lock().unwrap();
                loop {
                    if q.stop {
                        return;
                    }
                    let now = Instant::now();
                    match q.heap.peek() {
                        Some(d) if d.at <= now => {
                            let d = q.heap.pop().unwrap();
                            drop(q);
                            let port = ports.lock().unwrap().get(d.port).cloned();
                            if let Some(port) = port {
                                // A port whose namespace is gone fails; nothing to do then.
                                if (&*port).write(&d.frame).is_ok() {
                                    stats.lock().unwrap().delivered += 1;
                                }
                            }
                            q = lock.lock().unwrap();
                        }
                        Some(d) => {
                            let wait = d.at - now;
                            q = cv.wait_timeout(q, wait).unwrap().0;
                        }
                        None => q = cv.wait(q).unwrap(),
                    }
                }
            })
        };
        Switch {
            imp,
            ports,
            macs: Default::default(),
            queue,
            stats,
            deliverer: Some(deliverer),
        }
    }

    pub fn stats(&self) -> SwitchStats {
        *self.stats.lock().unwrap()
    }

    fn add_port(&self, file: std::fs::File) {
        let file = std::sync::Arc::new(file);
        let me = {
            let mut ports = self.ports.lock().unwrap();
            ports.push(file.clone());
            ports.len() - 1
        };
        let (ports, macs, queue, stats, imp) = (
            self.ports.clone(),
            self.macs.clone(),
            self.queue.clone(),
            self.stats.clone(),
            self.imp,
        );
        // Ends when its device is deleted (read fails) or the switch stops.
        std::thread::spawn(move || {
            use rand::Rng;
            use std::io::Read;
            let mut rng = rand::thread_rng();
            let mut buf = vec![0u8; 65_536];
            loop {
                let n = match (&*file).read(&mut buf) {
                    Ok(n) if n >= 14 => n,
                    Ok(_) => continue,
                    Err(_) => return,
                };
                let frame = &buf[..n];
                let dst: Mac = frame[0..6].try_into().unwrap();
                let src: Mac = frame[6..12].try_into().unwrap();
                let targets: Vec<usize> = {
                    let mut macs = macs.lock().unwrap();
                    macs.insert(src, me);
                    match macs.get(&dst) {
                        Some(&p) if dst[0] & 1 == 0 => vec![p],
                        _ => (0..ports.lock().unwrap().len())
                            .filter(|&p| p != me)
                            .collect(),
                    }
                };
                let (lock, cv) = &*queue;
                let mut q = lock.lock().unwrap();
                if q.stop {
                    return;
                }
                for port in targets {
                    if port == me {
                        continue;
                    }
                    let mut st = stats.lock().unwrap();
                    st.frames += 1;
                    if rng.gen::<f64>() * 100.0 < imp.loss_pct {
                        st.lost += 1;
                        continue;
                    }
                    drop(st);
                    let lo = imp.delay_ms.saturating_sub(imp.jitter_ms) as f64;
                    let hi = (imp.delay_ms + imp.jitter_ms) as f64;
                    let delay = if hi > lo { rng.gen_range(lo..hi) } else { lo };
                    q.seq += 1;
                    let seq = q.seq;
                    q.heap.push(Due {
                        at: Instant::now() + Duration::from_secs_f64(delay / 1000.0),
                        seq,
                        port,
                        frame: frame.to_vec(),
                    });
                }
                cv.notify_one();
            }
        });
    }

    /// Stops delivering; the port readers end as their devices go away.
    fn shut(mut self) {
        {
            let (lock, cv) = &*self.queue;
            let mut q = lock.lock().unwrap();
            q.stop = true;
            q.heap.clear();
            cv.notify_all();
        }
        if let Some(t) = self.deliverer.take() {
            let _ = t.join();
        }
        self.ports.lock().unwrap().clear();
    }
}
