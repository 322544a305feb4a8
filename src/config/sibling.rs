//! Keys of the seed's `distributed:` vocabulary that belong to capabilities not built (cloud
//! provisioning and discovery, transports other than HTTP/JSON). The model does not
//! know them, so serde refuses them as unknown; this names the capability, so a user who copies a
//! block from the seed document learns why it is refused rather than only that it is. Once a
//! capability defines its keys, they parse and this note never shows.

/// The capability that owns `key` at `path` (the dotted path serde reports), if it is one of the
/// seed's keys owned elsewhere.
fn owner(path: &str, key: &str) -> Option<&'static str> {
    const CLUSTER: &str = "Perfornium does not provision machines or discover them: start workers with your own tooling (the seed's Kubernetes and Compose files are in deploy/) and let them register with `perfornium worker --master` (issue 15)";
    const TRANSPORT: &str =
        "transports other than HTTP/JSON and their options are not available yet (issue 16)";
    match (path, key) {
        ("distributed", "discovery" | "cloud") => Some(CLUSTER),
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
            "distributed.communication.protocol: unknown variant `grpc`, expected `http`".into(),
        );
        assert!(m.contains("transports other than HTTP/JSON"), "{m}");
        let m = annotate("distributed: unknown field `enabld`, expected one of `a`".into());
        assert!(!m.contains("issue"), "a typo is only a typo: {m}");
        let m = annotate("load: unknown field `results`".into());
        assert!(!m.contains("issue"), "{m}");
    }
}
