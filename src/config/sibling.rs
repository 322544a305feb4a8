//! Keys of the seed's `distributed:` vocabulary that belong to capabilities not built (cloud
//! provisioning and discovery, the seed's communication keys that live elsewhere). The model does not
//! know them, so serde refuses them as unknown; this names the capability, so a user who copies a
//! block from the seed document learns why it is refused rather than only that it is. Once a
//! capability defines its keys, they parse and this note never shows.

/// The capability that owns `key` at `path` (the dotted path serde reports), if it is one of the
/// seed's keys owned elsewhere.
fn owner(path: &str, key: &str) -> Option<&'static str> {
    const CLUSTER: &str = "Perfornium does not provision machines or discover them: start workers with your own tooling (the seed's Kubernetes and Compose files are in deploy/) and let them register with `perfornium worker --master` (issue 15)";
    const TRANSPORT: &str = "the transports are `http`, `grpc` and `websocket`, with the options of `communication.http`, `.grpc` and `.websocket` (issue 16)";
    const ENCRYPTION: &str = "encryption to workers is `security.encryption` (and `communication.grpc.security` for gRPC), not a communication key";
    const COMPRESSION: &str = "compression is `communication.http.compression` (batches) or `communication.websocket.message_compression`";
    const BUFFERS: &str =
        "socket buffer sizes are `performance.network.send_buffer_size` / `receive_buffer_size`";
    match (path, key) {
        ("distributed", "discovery" | "cloud") => Some(CLUSTER),
        ("distributed.communication", "encryption") => Some(ENCRYPTION),
        ("distributed.communication", "compression") => Some(COMPRESSION),
        ("distributed.communication", "buffer_sizes") => Some(BUFFERS),
        (p, _) if p.starts_with("distributed.communication") => Some(TRANSPORT),
        _ => None,
    }
}

/// Adds the owning capability to serde's "PATH: unknown field `KEY`" / "unknown variant `KEY`"
/// when the key is one of the seed's owned elsewhere.
pub fn annotate(message: String) -> String {
    let Some((path, rest)) = message.split_once(": unknown ") else {
        return message;
    };
    let Some(key) = rest.split('`').nth(1) else {
        return message;
    };
    match owner(path.trim(), key) {
        Some(why) => format!("{message} — {why}"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::annotate;

    #[test]
    fn seed_keys_owned_elsewhere_name_their_capability() {
        let m = annotate("distributed: unknown field `cloud`, expected one of `a`".into());
        assert!(m.ends_with("(issue 15)"), "{m}");
        let m = annotate(
            "distributed.communication.protocol: unknown variant `quic`, expected `http`".into(),
        );
        assert!(m.contains("`http`, `grpc` and `websocket`"), "{m}");
        let m = annotate("distributed.communication: unknown field `encryption`, expected".into());
        assert!(m.contains("security.encryption"), "{m}");
        let m = annotate("distributed: unknown field `enabld`, expected one of `a`".into());
        assert!(!m.contains("issue"), "a typo is only a typo: {m}");
        let m = annotate("load: unknown field `results`".into());
        assert!(!m.contains("issue"), "{m}");
    }
}
