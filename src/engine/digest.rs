//! HTTP Digest authentication (RFC 7616) for `auth: {type: digest}`: the server's `401` challenge
//! (`WWW-Authenticate: Digest ...`) is answered with the computed `Authorization` on the same
//! connection. MD5, SHA-256 and their `-sess` forms; `qop=auth` (or none, RFC 2069).

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// A parsed `WWW-Authenticate: Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: String,
    /// Whether the server offers `qop=auth`.
    pub qop_auth: bool,
}

/// Reads a `Digest` challenge from one `WWW-Authenticate` value; `None` for another scheme.
pub fn parse(header: &str) -> Option<Challenge> {
    let rest = header.trim();
    let (scheme, params) = rest.split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut fields = std::collections::HashMap::new();
    let mut s = params.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        fields.insert(key, value);
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        realm: fields.get("realm")?.clone(),
        nonce: fields.get("nonce")?.clone(),
        opaque: fields.get("opaque").cloned(),
        algorithm: fields
            .get("algorithm")
            .cloned()
            .unwrap_or_else(|| "MD5".into()),
        qop_auth: fields
            .get("qop")
            .is_some_and(|q| q.split(',').any(|v| v.trim() == "auth")),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash an algorithm names, or `None` for one this does not implement.
fn hasher(algorithm: &str) -> Option<fn(&str) -> String> {
    match algorithm.to_ascii_uppercase().trim_end_matches("-SESS") {
        "MD5" => Some(|s| hex(&Md5::digest(s.as_bytes()))),
        "SHA-256" => Some(|s| hex(&Sha256::digest(s.as_bytes()))),
        _ => None,
    }
}

/// The `Authorization` value answering `c` for `method` on `uri` (path and query); `cnonce` is the
/// client's nonce and `nc` the count of requests sent with this nonce (from 1). `None` when the
/// algorithm is not MD5 or SHA-256 (or their `-sess`).
pub fn authorization(
    c: &Challenge,
    (method, uri): (&str, &str),
    (username, password): (&str, &str),
    cnonce: &str,
    nc: u32,
) -> Option<String> {
    let h = hasher(&c.algorithm)?;
    let mut ha1 = h(&format!("{username}:{}:{password}", c.realm));
    if c.algorithm.to_ascii_uppercase().ends_with("-SESS") {
        ha1 = h(&format!("{ha1}:{}:{cnonce}", c.nonce));
    }
    let ha2 = h(&format!("{method}:{uri}"));
    let nc = format!("{nc:08x}");
    let response = if c.qop_auth {
        h(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce))
    } else {
        h(&format!("{ha1}:{}:{ha2}", c.nonce))
    };
    let mut out = format!(
        "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
         algorithm={}, response=\"{response}\"",
        c.realm, c.nonce, c.algorithm
    );
    if c.qop_auth {
        out.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
    }
    if let Some(o) = &c.opaque {
        out.push_str(&format!(", opaque=\"{o}\""));
    }
    Some(out)
}

/// What a server computes to verify an `Authorization: Digest` value (the mock uses it): the
/// expected `response` for the fields the client sent.
pub fn expected_response(
    fields: &std::collections::HashMap<String, String>,
    method: &str,
    password: &str,
) -> Option<String> {
    let get = |k: &str| fields.get(k).map(String::as_str);
    let algorithm = get("algorithm").unwrap_or("MD5");
    let h = hasher(algorithm)?;
    let (user, realm, nonce, uri) = (get("username")?, get("realm")?, get("nonce")?, get("uri")?);
    let mut ha1 = h(&format!("{user}:{realm}:{password}"));
    if algorithm.to_ascii_uppercase().ends_with("-SESS") {
        ha1 = h(&format!("{ha1}:{nonce}:{}", get("cnonce")?));
    }
    let ha2 = h(&format!("{method}:{uri}"));
    Some(match get("qop") {
        Some(qop) => h(&format!(
            "{ha1}:{nonce}:{}:{}:{qop}:{ha2}",
            get("nc")?,
            get("cnonce")?
        )),
        None => h(&format!("{ha1}:{nonce}:{ha2}")),
    })
}

/// The fields of an `Authorization: Digest ...` value (what [`parse`] reads, for the other side).
pub fn fields(header: &str) -> Option<std::collections::HashMap<String, String>> {
    let (scheme, params) = header.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("digest") {
        return None;
    }
    let mut out = std::collections::HashMap::new();
    let mut s = params.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        let after = after.trim_start();
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        out.insert(key, value);
        s = next.trim_start().trim_start_matches(',').trim_start();
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7616_examples() {
        // RFC 7616 section 3.9.1: Mufasa / Circle of Life on GET /dir/index.html.
        let header = r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let c = parse(header).unwrap();
        assert!(c.qop_auth);
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let req = ("GET", "/dir/index.html");
        let user = ("Mufasa", "Circle of Life");
        let a = authorization(&c, req, user, cnonce, 1).unwrap();
        assert!(
            a.contains(
                r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
            ),
            "{a}"
        );
        let md5 = Challenge {
            algorithm: "MD5".into(),
            ..c.clone()
        };
        let a = authorization(&md5, req, user, cnonce, 1).unwrap();
        assert!(
            a.contains(r#"response="8ca523f5e9506fed4657c9700eebdbec""#),
            "{a}"
        );
        // The server side agrees.
        let f = fields(&a).unwrap();
        assert_eq!(
            expected_response(&f, "GET", "Circle of Life").as_deref(),
            Some("8ca523f5e9506fed4657c9700eebdbec")
        );
        assert!(parse("Basic realm=x").is_none());
        let unknown = Challenge {
            algorithm: "SHA-512-256".into(),
            ..c
        };
        assert!(authorization(&unknown, req, user, "c", 1).is_none());
        let second = authorization(&md5, req, user, cnonce, 2).unwrap();
        assert!(second.contains("nc=00000002"), "{second}");
        assert_eq!(
            expected_response(&fields(&second).unwrap(), "GET", "Circle of Life"),
            fields(&second).unwrap().get("response").cloned()
        );
    }
}
