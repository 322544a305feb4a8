//! `distributed.communication`: how the controller talks to its workers.
//!
//! - `protocol: http` (the default) calls the worker's HTTP/JSON API and pulls batches with
//!   `GET /metrics?since=N`. `grpc` calls the same API as a gRPC service (`proto/worker.proto`)
//!   and `websocket` keeps the HTTP calls but receives batches on a WebSocket; with either, the
//!   controller opens a batch stream to each worker (the worker never dials out) and acknowledges
//!   with sequence numbers, so every batch is still merged exactly once. Workers serve all three
//!   on their one port, so `protocol:` alone chooses.
//! - `http.compression` (`true`/`gzip`, `zstd`, `false`): the encodings the controller accepts for
//!   answers (batches); workers compress them when asked. `keep_alive: false` opens a connection
//!   per call; `timeout` bounds every call to a worker; `authentication` is the bearer token.
//! - `grpc.max_message_size` bounds the messages the controller sends and accepts;
//!   `keepalive_time`/`keepalive_timeout` are HTTP/2 pings on the connection; `security` is the TLS
//!   the controller uses to reach workers over gRPC (the CA it trusts and, with `mutual_tls`, its
//!   own certificate).
//! - `websocket.ping_interval`/`pong_timeout`: the controller pings and drops a stream that does
//!   not answer; `max_reconnect_attempts`/`reconnect_delay`: how a pull reopens a broken stream;
//!   `message_compression`: gzip-compressed frames; `max_message_size`: the largest frame taken.
//!
//! Refused by name with the reason: `http.max_connections` and `grpc.max_connection_idle`.

use super::duration::{de_opt_duration, ser_opt_duration};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::path::PathBuf;
use std::time::Duration;

/// `distributed.communication`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Communication {
    #[serde(default)]
    pub protocol: Option<Protocol>,
    #[serde(default)]
    pub http: Option<HttpCommunication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcCommunication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub websocket: Option<WsCommunication>,
}

/// Transport between controller and workers.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Http,
    Grpc,
    Websocket,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Http => "http",
            Protocol::Grpc => "grpc",
            Protocol::Websocket => "websocket",
        }
    }
}

/// `distributed.communication.http`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpCommunication {
    #[serde(default)]
    pub authentication: Option<Authentication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<bool>,
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub timeout: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "refuse_max_connections",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connections: Option<u64>,
}

fn refuse_max_connections<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let _ = serde::de::IgnoredAny::deserialize(d)?;
    Err(serde::de::Error::custom(
        "communication.http.max_connections is not supported: the controller makes one call at a \
         time to each worker (plus its background tasks), so its connections are already bounded \
         by the worker count; use `keep_alive: false` to hold none open between calls",
    ))
}

/// `http.compression`: what the controller accepts for answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

impl Serialize for Compression {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Compression {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            B(bool),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::B(true) => Ok(Compression::Gzip),
            Raw::B(false) => Ok(Compression::None),
            Raw::S(s) => match s.as_str() {
                "gzip" | "true" => Ok(Compression::Gzip),
                "zstd" => Ok(Compression::Zstd),
                "none" | "false" => Ok(Compression::None),
                other => Err(serde::de::Error::custom(format!(
                    "communication.http.compression: unknown `{other}`; expected true (gzip), gzip, zstd or false"
                ))),
            },
        }
    }
}

/// Bearer-token authentication to workers; the token is usually `{{env.WORKER_TOKEN}}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authentication {
    #[serde(rename = "type", default)]
    pub kind: Option<AuthKind>,
    #[serde(default, skip_serializing)]
    pub token: Option<String>,
}

/// The one authentication type implemented.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    BearerToken,
}

/// A message size: a number of bytes, or `4MB`, `512KB` (1KB to 256MB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageSize(pub usize);

impl Serialize for MessageSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0 as u64)
    }
}

impl<'de> Deserialize<'de> for MessageSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::performance::ByteSize::deserialize(d).map(|b| MessageSize(b.0))
    }
}

/// `distributed.communication.grpc`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrpcCommunication {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<MessageSize>,
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub keepalive_time: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub keepalive_timeout: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "refuse_connection_idle",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_connection_idle: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<GrpcSecurity>,
}

fn refuse_connection_idle<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let _ = serde::de::IgnoredAny::deserialize(d)?;
    Err(serde::de::Error::custom(
        "communication.grpc.max_connection_idle is not supported: the controller's connection to \
         a worker carries the batch stream for the whole run, so it is never idle while a run \
         needs it, and it is closed when the run ends; use `keepalive_time`/`keepalive_timeout` \
         to detect a dead connection",
    ))
}

/// `distributed.communication.grpc.security`: the TLS the controller uses for gRPC calls.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GrpcSecurity {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutual_tls: Option<bool>,
    /// The controller's certificate (with `mutual_tls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The CA that signed the workers' certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

/// `distributed.communication.websocket`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WsCommunication {
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub ping_interval: Option<Duration>,
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub pong_timeout: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_reconnect_attempts: Option<u32>,
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub reconnect_delay: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_compression: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_size: Option<MessageSize>,
}

/// The most reconnect attempts a pull makes (each waits `reconnect_delay`).
pub const MAX_RECONNECTS: u32 = 20;

impl Communication {
    /// The transport (`http` when not given).
    pub fn protocol(&self) -> Protocol {
        self.protocol.unwrap_or_default()
    }

    /// Why the block does not make sense as a whole, if it does not.
    pub fn check(&self) -> Result<(), String> {
        if let Some(s) = self.grpc.as_ref().and_then(|g| g.security.as_ref()) {
            let tls = s.tls_enabled.unwrap_or(true);
            if !tls && (s.mutual_tls == Some(true) || s.ca_file.is_some()) {
                return Err("communication.grpc.security: `mutual_tls` and `ca_file` need `tls_enabled: true`".into());
            }
            if tls && s.ca_file.is_none() {
                return Err("communication.grpc.security.tls_enabled needs `ca_file` (the CA that signed the workers' certificates)".into());
            }
            if s.mutual_tls == Some(true) && (s.cert_file.is_none() || s.key_file.is_none()) {
                return Err("communication.grpc.security.mutual_tls needs `cert_file` and `key_file` (the controller's certificate and key)".into());
            }
            if s.mutual_tls != Some(true) && (s.cert_file.is_some() || s.key_file.is_some()) {
                return Err("communication.grpc.security: `cert_file`/`key_file` are the controller's client certificate and act only with `mutual_tls: true`".into());
            }
        }
        if let Some(w) = &self.websocket {
            if w.ping_interval.is_some_and(|d| d.is_zero())
                || w.pong_timeout.is_some_and(|d| d.is_zero())
            {
                return Err(
                    "communication.websocket: `ping_interval` and `pong_timeout` must be above 0"
                        .into(),
                );
            }
            if w.max_reconnect_attempts.is_some_and(|n| n > MAX_RECONNECTS) {
                return Err(format!(
                    "communication.websocket.max_reconnect_attempts: at most {MAX_RECONNECTS} (each attempt is made within one pull)"
                ));
            }
        }
        if self
            .http
            .as_ref()
            .and_then(|h| h.timeout)
            .is_some_and(|t| t.is_zero() || t > Duration::from_secs(600))
        {
            return Err("communication.http.timeout: between 1 ms and 10 minutes".into());
        }
        let p = self.protocol();
        for (block, set, proto) in [
            ("grpc", self.grpc.is_some(), Protocol::Grpc),
            ("websocket", self.websocket.is_some(), Protocol::Websocket),
        ] {
            if set && p != proto {
                return Err(format!(
                    "communication.{block} is given but `protocol` is `{}`: its options act only with `protocol: {block}`",
                    p.name()
                ));
            }
        }
        Ok(())
    }

    /// `--explain`'s lines for the block.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        let p = self.protocol();
        out.push_str(&match p {
            Protocol::Http => "communication.protocol http: worker calls are HTTP/JSON; batches are pulled with GET /metrics?since=N\n".to_string(),
            Protocol::Grpc => "communication.protocol grpc: worker calls are gRPC (proto/worker.proto) on the worker's port; batches arrive on a server stream the controller opens, acknowledged by sequence number\n".to_string(),
            Protocol::Websocket => "communication.protocol websocket: worker calls are HTTP/JSON; batches arrive on a WebSocket the controller opens at GET /metrics, acknowledged by sequence number\n".to_string(),
        });
        if let Some(h) = &self.http {
            if let Some(c) = h.compression {
                out.push_str(&format!("communication.http.compression {}: the controller accepts {} answers and workers compress them (Accept-Encoding)\n", c.name(), match c { Compression::None => "only uncompressed", Compression::Gzip => "gzip", Compression::Zstd => "zstd" }));
            }
            if h.keep_alive == Some(false) {
                out.push_str("communication.http.keep_alive false: a new connection for every call to a worker\n");
            }
            if let Some(t) = h.timeout {
                out.push_str(&format!("communication.http.timeout {} ms: bounds every call to a worker (instead of the heartbeat interval, 0.5-5 s)\n", t.as_millis()));
            }
        }
        if let Some(g) = &self.grpc {
            if let Some(m) = g.max_message_size {
                out.push_str(&format!("communication.grpc.max_message_size {} bytes: the largest message the controller sends or accepts\n", m.0));
            }
            if let Some(k) = g.keepalive_time {
                out.push_str(&format!("communication.grpc.keepalive_time {} ms: HTTP/2 pings on each worker connection, even idle\n", k.as_millis()));
            }
            if let Some(k) = g.keepalive_timeout {
                out.push_str(&format!("communication.grpc.keepalive_timeout {} ms: a ping unanswered that long closes the connection\n", k.as_millis()));
            }
            if let Some(s) = &g.security {
                out.push_str(&format!(
                    "communication.grpc.security: TLS {}, trusting {}{}\n",
                    if s.tls_enabled.unwrap_or(true) {
                        "on"
                    } else {
                        "off"
                    },
                    s.ca_file
                        .as_ref()
                        .map_or("-".into(), |p| p.display().to_string()),
                    if s.mutual_tls == Some(true) {
                        ", presenting the controller's certificate (mutual TLS)"
                    } else {
                        ""
                    }
                ));
            }
        }
        if let Some(w) = &self.websocket {
            let d = |x: Option<Duration>, def: &str| {
                x.map_or(def.to_string(), |d| format!("{} ms", d.as_millis()))
            };
            out.push_str(&format!(
                "communication.websocket: ping every {}, a stream without a pong for {} is dropped; a broken stream is reopened up to {} times, {} apart; frames {}; largest frame {}\n",
                d(w.ping_interval, "off"),
                d(w.pong_timeout, "the ping interval"),
                w.max_reconnect_attempts.unwrap_or(1),
                d(w.reconnect_delay, "0 ms"),
                if w.message_compression == Some(true) { "gzip-compressed" } else { "uncompressed" },
                w.max_message_size.map_or("64 MB".into(), |m| format!("{} bytes", m.0)),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(y: &str) -> Result<Communication, String> {
        serde_norway::from_str::<Communication>(y).map_err(|e| e.to_string())
    }

    #[test]
    fn the_seeds_blocks_parse_and_explain() {
        let c = parse("protocol: grpc\ngrpc:\n  max_message_size: \"4MB\"\n  keepalive_time: 30s\n  keepalive_timeout: 5s\n  security:\n    tls_enabled: true\n    mutual_tls: true\n    cert_file: /c/w.crt\n    key_file: /c/w.key\n    ca_file: /c/ca.crt\n").unwrap();
        c.check().unwrap();
        assert_eq!(
            c.grpc.as_ref().unwrap().max_message_size,
            Some(MessageSize(4 << 20))
        );
        assert!(c.explain().contains("4194304 bytes"), "{}", c.explain());
        let c = parse("protocol: http\nhttp:\n  compression: true\n  keep_alive: true\n  timeout: 30s\n  authentication:\n    type: bearer_token\n    token: x\n").unwrap();
        c.check().unwrap();
        assert_eq!(
            c.http.as_ref().unwrap().compression,
            Some(Compression::Gzip)
        );
        let c = parse("protocol: websocket\nwebsocket:\n  ping_interval: 30s\n  pong_timeout: 5s\n  max_reconnect_attempts: 5\n  reconnect_delay: 1s\n  message_compression: true\n  max_message_size: \"1MB\"\n").unwrap();
        c.check().unwrap();
        assert!(c.explain().contains("gzip-compressed"));
        let json = serde_json::to_string(&c).unwrap();
        let back: Communication = serde_json::from_str(&json).unwrap();
        assert_eq!(back, c, "{json}");
    }

    #[test]
    fn keys_that_cannot_act_are_refused_by_name() {
        for (y, needle) in [
            ("http: {max_connections: 100}", "max_connections"),
            ("grpc: {max_connection_idle: 300s}", "max_connection_idle"),
            ("http: {compression: brotli}", "brotli"),
            ("protocol: quic", "quic"),
        ] {
            let e = parse(y).unwrap_err();
            assert!(e.contains(needle), "{y}: {e}");
        }
        for (y, needle) in [
            (
                "protocol: grpc\ngrpc: {security: {tls_enabled: true}}",
                "ca_file",
            ),
            (
                "protocol: grpc\ngrpc: {security: {ca_file: a, mutual_tls: true}}",
                "cert_file",
            ),
            (
                "protocol: http\ngrpc: {keepalive_time: 1s}",
                "protocol: grpc",
            ),
            (
                "protocol: websocket\nwebsocket: {max_reconnect_attempts: 1000}",
                "at most",
            ),
            ("http: {timeout: 0s}", "timeout"),
        ] {
            let e = parse(y).unwrap().check().unwrap_err();
            assert!(e.contains(needle), "{y}: {e}");
        }
    }
}
