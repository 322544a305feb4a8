//! `distributed.performance`: socket options and thread placement of a worker or master process.
//!
//! A worker opens its listening socket and starts its threads before any test exists, so these
//! settings come from the file given to `perfornium worker --config` (or `master --config`); a test
//! file may carry `network`'s socket options, which then act on that run's load connections (key by
//! key over the process's), and is refused, with a pointer to `--config`, for the per-process rest
//! (`resources`, `network.compression`). `network` sets
//! `TCP_NODELAY`, `SO_KEEPALIVE`, `SO_SNDBUF` and `SO_RCVBUF` on every load connection (the
//! engine's connector) and on the control channel's listening socket, whose accepted connections
//! inherit them; `compression` gzips the control channel's responses. `resources` pins the process's threads to cores. Settings that only mean something
//! to a garbage-collected runtime (`gc_tuning`, memory pools) are accepted as no-ops, and
//! `--explain` says why.

use serde::{Deserialize, Deserializer, Serialize};

/// `distributed.performance`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Performance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<PerfNetwork>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Resources>,
}

/// `distributed.performance` in a test file: `network`'s socket options act on that run's load
/// connections (over the worker's `--config`, key by key); what is per process — thread placement,
/// the control channel's compression — is refused with a pointer to `--config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InTestFile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<TestNetwork>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<PerProcess<ResourcesKey>>,
}

/// `performance.network` in a test file: the run's load connections.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestNetwork {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_nodelay: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_buffer_size: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_buffer_size: Option<ByteSize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<PerProcess<CompressionKey>>,
}

impl InTestFile {
    /// The socket options the test asks for (unset keys: the process's own).
    pub fn socket_options(&self) -> SocketOptions {
        let Some(n) = &self.network else {
            return SocketOptions::default();
        };
        SocketOptions {
            nodelay: n.tcp_nodelay,
            keepalive: n.tcp_keepalive,
            send_buffer: n.send_buffer_size.map(|b| b.0),
            recv_buffer: n.receive_buffer_size.map(|b| b.0),
        }
    }
}

impl InTestFile {
    /// `validate --explain` line.
    pub fn explain(&self) -> String {
        let o = self.socket_options();
        if o == SocketOptions::default() {
            return String::new();
        }
        let show = |v: Option<String>| {
            v.unwrap_or_else(|| "as the worker's --config (or the kernel) says".into())
        };
        format!(
            "  performance.network (this run's load connections, on every worker, over each worker's --config key by key): TCP_NODELAY {}, SO_KEEPALIVE {}, SO_SNDBUF {}, SO_RCVBUF {} (buffers set before connecting; Linux reports twice what is set and caps at net.core.[wr]mem_max); the control channel keeps the worker's own settings\n",
            show(o.nodelay.map(|b| b.to_string())),
            show(o.keepalive.map(|b| b.to_string())),
            show(o.send_buffer.map(|b| format!("{b} bytes"))),
            show(o.recv_buffer.map(|b| format!("{b} bytes"))),
        )
    }
}

impl SocketOptions {
    /// These options, each unset one taken from `base`.
    pub fn over(self, base: SocketOptions) -> SocketOptions {
        SocketOptions {
            nodelay: self.nodelay.or(base.nodelay),
            keepalive: self.keepalive.or(base.keepalive),
            send_buffer: self.send_buffer.or(base.send_buffer),
            recv_buffer: self.recv_buffer.or(base.recv_buffer),
        }
    }
}

/// Why a per-process key is refused in a test file.
pub trait PerProcessKey {
    const WHY: &'static str;
}

/// `performance.resources` in a test.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcesKey;
impl PerProcessKey for ResourcesKey {
    const WHY: &'static str = "distributed.performance.resources belongs in the file given to `perfornium worker --config` \
        (or `master --config`): a process starts and pins its threads before any test exists";
}

/// `performance.network.compression` in a test.
#[derive(Debug, Clone, PartialEq)]
pub struct CompressionKey;
impl PerProcessKey for CompressionKey {
    const WHY: &'static str = "distributed.performance.network.compression belongs in the file given to `perfornium worker \
        --config` (or `master --config`): it compresses the control channel's responses, which serve every run";
}

/// A per-process key in a test file: refused when read, with the reason.
#[derive(Debug, Clone, PartialEq)]
pub struct PerProcess<K>(std::marker::PhantomData<K>);

impl<'de, K: PerProcessKey> Deserialize<'de> for PerProcess<K> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d)?;
        Err(serde::de::Error::custom(K::WHY))
    }
}

impl<K> Serialize for PerProcess<K> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

/// `performance.network`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PerfNetwork {
    /// `TCP_NODELAY` (load connections have it on unless this says `false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_nodelay: Option<bool>,
    /// `SO_KEEPALIVE`, with the kernel's probe timing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_keepalive: Option<bool>,
    /// `SO_SNDBUF` in bytes (`64KB`, `1MB`: K and M are 1024 and 1024²).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_buffer_size: Option<ByteSize>,
    /// `SO_RCVBUF` in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_buffer_size: Option<ByteSize>,
    /// gzip on the control channel's responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
}

/// `performance.network.compression`: the worker's or master's responses (results, runs, metrics)
/// gzipped for clients that accept it (the controller and console do), above `threshold` bytes.
/// Load requests are not touched: they carry what the test's headers say.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Compression {
    pub algorithm: CompressionAlgorithm,
    /// 1 (fastest) to 9 (smallest); default 6.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<u32>,
    /// Smallest body compressed, in bytes; default 1024.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold: Option<u16>,
}

/// The one compression algorithm implemented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompressionAlgorithm {
    Gzip,
}

impl Compression {
    /// (level, threshold) after defaults, or why the level is out of range.
    pub fn settings(&self) -> Result<(u32, u16), String> {
        let level = self.level.unwrap_or(6);
        if !(1..=9).contains(&level) {
            return Err(format!(
                "performance.network.compression.level is 1 to 9, got {level}"
            ));
        }
        Ok((level, self.threshold.unwrap_or(1024)))
    }
}

/// A size in bytes: a number, or a number with `B`, `KB`/`KiB`/`K`, `MB`/`MiB`/`M`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

/// The largest buffer accepted (the kernel caps lower, at `net.core.[rw]mem_max`).
pub const MAX_BUFFER: usize = 256 << 20;

impl ByteSize {
    /// Parses `65536`, `64KB`, `1MiB`.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: usize = num
            .parse()
            .map_err(|_| format!("`{t}` is not a size (like 65536 or 64KB)"))?;
        let mult = match unit.trim().to_ascii_uppercase().as_str() {
            "" | "B" => 1,
            "K" | "KB" | "KIB" => 1 << 10,
            "M" | "MB" | "MIB" => 1 << 20,
            u => return Err(format!("`{u}` is not a size unit (B, KB, MB)")),
        };
        let bytes = n
            .checked_mul(mult)
            .filter(|b| (1024..=MAX_BUFFER).contains(b))
            .ok_or_else(|| format!("`{t}` is outside 1KB..256MB"))?;
        Ok(ByteSize(bytes))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::N(n) => n.to_string(),
            Raw::S(s) => s,
        };
        ByteSize::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0 as u64)
    }
}

/// `performance.resources`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Pins the process's threads to cores, as `cpu_management.thread_pinning` (either turns it on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_affinity: Option<bool>,
    /// `true` is refused: see [`Resources::check`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numa_awareness: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_management: Option<MemoryManagement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_management: Option<CpuManagement>,
}

/// `resources.memory_management`: accepted, no effect (see `--explain`).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MemoryManagement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gc_tuning: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_pools: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer_management: Option<bool>,
}

/// `resources.cpu_management`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CpuManagement {
    /// Each thread of the process pinned to one core, round robin over the cores it may use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_pinning: Option<bool>,
    /// `true` is refused: see [`Resources::check`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_isolation: Option<bool>,
}

impl Resources {
    /// True when threads are to be pinned.
    pub fn pin_threads(&self) -> bool {
        self.worker_affinity == Some(true)
            || self.cpu_management.as_ref().and_then(|c| c.thread_pinning) == Some(true)
    }

    /// Settings that would need the operating system's cooperation, refused by name.
    pub fn check(&self) -> Result<(), String> {
        if self.numa_awareness == Some(true) {
            return Err("performance.resources.numa_awareness: not available: placing memory on NUMA nodes \
                 needs the OS (start the worker under `numactl --cpunodebind=N --membind=N`)"
                .into());
        }
        if self.cpu_management.as_ref().and_then(|c| c.cpu_isolation) == Some(true) {
            return Err("performance.resources.cpu_management.cpu_isolation: not available: keeping other \
                 processes off cores is the kernel's (isolcpus, cgroup cpusets); start the worker inside \
                 such a cpuset and use thread_pinning"
                .into());
        }
        Ok(())
    }
}

/// The socket options `network` asks for, ready to apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketOptions {
    pub nodelay: Option<bool>,
    pub keepalive: Option<bool>,
    pub send_buffer: Option<usize>,
    pub recv_buffer: Option<usize>,
}

impl Performance {
    /// The socket options of `network` (all unset when absent).
    pub fn socket_options(&self) -> SocketOptions {
        let Some(n) = &self.network else {
            return SocketOptions::default();
        };
        SocketOptions {
            nodelay: n.tcp_nodelay,
            keepalive: n.tcp_keepalive,
            send_buffer: n.send_buffer_size.map(|b| b.0),
            recv_buffer: n.receive_buffer_size.map(|b| b.0),
        }
    }

    /// Rules across keys.
    pub fn check(&self) -> Result<(), String> {
        if let Some(c) = self.network.as_ref().and_then(|n| n.compression.as_ref()) {
            c.settings()?;
        }
        match &self.resources {
            Some(r) => r.check(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_blocks_parse_and_out_of_range_values_are_refused() {
        let p = serde_norway::from_str::<Performance>("network:\n  tcp_nodelay: true\n  tcp_keepalive: true\n  send_buffer_size: \"64KB\"\n  receive_buffer_size: \"64KB\"\n  compression:\n    algorithm: gzip\n    level: 6\n    threshold: 1024\n").unwrap();
        p.check().unwrap();
        let e = serde_norway::from_str::<Performance>(
            "network:\n  compression:\n    algorithm: brotli\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("gzip"), "{e}");
        let p = serde_norway::from_str::<Performance>(
            "network:\n  compression:\n    algorithm: gzip\n    level: 12\n",
        )
        .unwrap();
        assert!(p.check().unwrap_err().contains("1 to 9"));
        let p: Performance = serde_norway::from_str("network:\n  tcp_nodelay: true\n  tcp_keepalive: true\n  send_buffer_size: \"64KB\"\n  receive_buffer_size: 131072\nresources:\n  worker_affinity: true\n  memory_management:\n    gc_tuning: true\n    memory_pools: true\n    buffer_management: true\n  cpu_management:\n    thread_pinning: true\n").unwrap();
        p.check().unwrap();
        assert_eq!(p.socket_options().send_buffer, Some(65536));
        assert_eq!(p.socket_options().recv_buffer, Some(131072));
        assert!(p.resources.unwrap().pin_threads());
        let r: Resources = serde_norway::from_str("numa_awareness: true\n").unwrap();
        assert!(r.check().unwrap_err().contains("numactl"));
        assert!(ByteSize::parse("64XB").is_err());
        assert!(ByteSize::parse("1GB").is_err());
        assert!(ByteSize::parse("12").is_err(), "below 1KB");
    }
}
