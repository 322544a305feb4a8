//! `distributed.security`: who may call workers and masters, and how the caller proves it.
//!
//! Two places read this block. A test file's `distributed.security` drives the controller side (the
//! JWT the controller or console mints, the client certificate it presents, the addresses and
//! ports it agrees to call). The file given to `perfornium worker --config` or `perfornium master
//! --config` drives the server side (the JWT it verifies, the roles and their permissions, the CA
//! client certificates must be signed by, the cipher suites it offers, the networks it admits).
//!
//! JWTs ([`Minter`], [`Verifier`]) are signed and checked with the `jsonwebtoken` crate: HS256 with
//! a shared secret, or RS256 with an RSA key pair (private key to mint, public key to verify). A
//! token carries `role`; the role's permissions decide which endpoints it may call
//! ([`Permission`]). The static `--token` stays a full-access credential beside it.

use super::duration::{de_opt_duration, ser_opt_duration};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `distributed.security`; parsing it also checks the rules across its keys ([`Security::check`]).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Security {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<Authentication>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkSecurity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecurity {
    #[serde(default)]
    authentication: Option<Authentication>,
    #[serde(default)]
    authorization: Option<Authorization>,
    #[serde(default)]
    network: Option<NetworkSecurity>,
}

impl TryFrom<RawSecurity> for Security {
    type Error = String;
    fn try_from(r: RawSecurity) -> Result<Self, String> {
        let s = Security {
            authentication: r.authentication,
            authorization: r.authorization,
            network: r.network,
        };
        s.check()?;
        Ok(s)
    }
}

impl<'de> Deserialize<'de> for Security {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de_converted::<D, RawSecurity, Security>(d, "a security mapping")
    }
}

/// `distributed.security.authentication`. `method` says which proof is required; a section given
/// beside it (`token_auth` with `method: mutual_tls`) is required as well.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Authentication {
    pub method: AuthMethod,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_auth: Option<TokenAuth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_auth: Option<TlsAuth>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuthentication {
    method: AuthMethod,
    #[serde(default)]
    token_auth: Option<TokenAuth>,
    #[serde(default)]
    tls_auth: Option<TlsAuth>,
}

impl TryFrom<RawAuthentication> for Authentication {
    type Error = String;
    fn try_from(r: RawAuthentication) -> Result<Self, String> {
        match r.method {
            AuthMethod::Token if r.token_auth.is_none() => {
                return Err("authentication.method `token` needs `token_auth` (algorithm, secret, expiration)".into())
            }
            AuthMethod::MutualTls if r.tls_auth.is_none() => {
                return Err("authentication.method `mutual_tls` needs `tls_auth` (ca_cert, client_cert, client_key)".into())
            }
            AuthMethod::Oauth => {
                return Err("authentication.method `oauth` is not available: it needs an identity provider to \
                     issue and introspect tokens, which this program does not talk to; use `token` (JWTs \
                     signed with token_auth's secret or RSA key) or `mutual_tls`"
                    .into())
            }
            _ => {}
        }
        Ok(Authentication {
            method: r.method,
            token_auth: r.token_auth,
            tls_auth: r.tls_auth,
        })
    }
}

impl<'de> Deserialize<'de> for Authentication {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::de_converted::<D, RawAuthentication, Authentication>(d, "an authentication mapping")
    }
}

/// How callers authenticate.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// JWTs (`token_auth`).
    Token,
    /// Client certificates (`tls_auth`).
    MutualTls,
    /// Refused with the reason when parsed.
    Oauth,
}

/// `authentication.token_auth`: JWTs. Its `Debug` hides the secret.
#[derive(Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TokenAuth {
    pub algorithm: JwtAlgorithm,
    /// HS256's shared secret; `{{env.NAME}}` reads it from the environment. Never serialized (a
    /// test travels to the master and the workers without it).
    #[serde(default, skip_serializing)]
    pub secret: Option<String>,
    /// RS256: the PEM private key that signs (controller side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PathBuf>,
    /// RS256: the PEM public key that verifies (worker and master side).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<PathBuf>,
    /// Lifetime of a minted token (a number is seconds); default 1 hour.
    #[serde(
        default,
        deserialize_with = "de_opt_duration",
        serialize_with = "ser_opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration: Option<Duration>,
    /// The role a minted token claims; default: the first role holding every permission the
    /// caller needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl std::fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuth")
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "<set>"))
            .field("private_key", &self.private_key)
            .field("public_key", &self.public_key)
            .field("expiration", &self.expiration)
            .field("role", &self.role)
            .finish()
    }
}

/// The JWT signature algorithms implemented.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
pub enum JwtAlgorithm {
    #[serde(rename = "HS256")]
    Hs256,
    #[serde(rename = "RS256")]
    Rs256,
}

/// `authentication.tls_auth`: certificates as the `--ca`/`--client-cert`/`--tls-*` flags give them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsAuth {
    /// Controller: the CA to trust. Worker/master: the CA client certificates must be signed by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
    /// Controller (and a master calling workers): the certificate it presents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// Worker/master: the certificate it serves (as `--tls-cert`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_key: Option<PathBuf>,
}

/// `distributed.security.authorization`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Authorization {
    /// `false`: any valid token may call anything. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rbac: Option<Rbac>,
}

/// `authorization.rbac`: the roles a token's `role` claim may name. Given, it replaces the
/// built-in roles ([`builtin_roles`]).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Rbac {
    pub roles: Vec<RoleDef>,
}

/// One role.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    pub name: String,
    pub permissions: Vec<Permission>,
}

/// What a role may do; each endpoint of a worker and a master needs one (README's table).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Prepare, start, stop and scale runs on workers; submit and stop runs on masters.
    ExecuteTests,
    /// Read a worker's status, metrics and results.
    ReportMetrics,
    /// Move load between running workers (a worker's `POST /scale`, used by `load_redistribution`).
    ManageWorkers,
    /// Read runs and the replica cluster's view on masters (the read-only viewer's one permission).
    ViewAllResults,
}

impl Permission {
    /// The name as written in YAML.
    pub fn name(self) -> &'static str {
        match self {
            Permission::ExecuteTests => "execute_tests",
            Permission::ReportMetrics => "report_metrics",
            Permission::ManageWorkers => "manage_workers",
            Permission::ViewAllResults => "view_all_results",
        }
    }
}

/// The roles used when `authorization.rbac` is not given: `admin` (every permission), `worker`
/// (what a controller needs of workers: `execute_tests`, `report_metrics`) and the read-only
/// `viewer` (`view_all_results`).
pub fn builtin_roles() -> BTreeMap<String, BTreeSet<Permission>> {
    use Permission::*;
    BTreeMap::from([
        (
            "admin".to_string(),
            BTreeSet::from([ExecuteTests, ReportMetrics, ManageWorkers, ViewAllResults]),
        ),
        (
            "worker".to_string(),
            BTreeSet::from([ExecuteTests, ReportMetrics]),
        ),
        ("viewer".to_string(), BTreeSet::from([ViewAllResults])),
    ])
}

/// `distributed.security.network`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NetworkSecurity {
    /// `true`: every call is HTTPS (a server refuses to start without a certificate, a controller
    /// without a CA). `false` with certificates given is a contradiction, refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<bool>,
    /// The only suites offered, by IANA name (TLS 1.3 and TLS 1.2 ECDHE-GCM/ChaCha20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suites: Option<Vec<CipherSuiteName>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firewall_rules: Option<FirewallRules>,
}

/// A cipher suite name that rustls implements (checked when parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherSuiteName(pub String);

impl<'de> Deserialize<'de> for CipherSuiteName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        crate::tls::cipher_suite(&name).map_err(serde::de::Error::custom)?;
        Ok(CipherSuiteName(name))
    }
}

impl Serialize for CipherSuiteName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// `network.firewall_rules`. A server admits callers from `allowed_networks` only and refuses to
/// listen on a port not in its list; a controller refuses to call a worker outside them.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FirewallRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_networks: Option<Vec<Network>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_ports: Option<Vec<u16>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_ports: Option<Vec<u16>>,
}

/// A CIDR block or a bare address (a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(pub ipnet::IpNet);

impl Network {
    /// Parses `10.0.0.0/8` or `127.0.0.1`.
    pub fn parse(text: &str) -> Result<Network, String> {
        let s = text.trim();
        s.parse::<ipnet::IpNet>()
            .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
            .map(Network)
            .map_err(|_| format!("`{s}` is not a network (CIDR like 10.0.0.0/8) or an address"))
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Network::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Network {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// Why a security setting cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("{0}")]
    Invalid(String),
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a usable {what}: {reason}")]
    Key {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// A value written as `{{env.NAME}}` read from the environment (an unset variable is an error);
/// any other text as is.
pub fn resolve_env(text: &str, key: &str) -> Result<String, SecurityError> {
    let t = text.trim();
    let Some(name) = t
        .strip_prefix("{{")
        .and_then(|s| s.strip_suffix("}}"))
        .map(str::trim)
        .and_then(|s| s.strip_prefix("env."))
    else {
        if t.contains("{{") {
            return Err(SecurityError::Invalid(format!(
                "{key}: only `{{{{env.NAME}}}}` is expanded here"
            )));
        }
        return Ok(text.to_string());
    };
    match std::env::var(name.trim()) {
        Ok(v) if !v.is_empty() => Ok(v),
        _ => Err(SecurityError::Invalid(format!(
            "{key}: the environment variable {} is not set",
            name.trim()
        ))),
    }
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|source| SecurityError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// Default lifetime of a minted token.
pub const DEFAULT_EXPIRATION: Duration = Duration::from_secs(3600);

/// What a JWT says: who minted it, its role, when it was issued and when it expires.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: String,
    pub iat: u64,
    pub exp: u64,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Security {
    /// The role table tokens are checked against: `None` when authorization is switched off
    /// (`enabled: false`: every valid token may do everything).
    pub fn roles(&self) -> Option<BTreeMap<String, BTreeSet<Permission>>> {
        match &self.authorization {
            Some(Authorization {
                enabled: Some(false),
                ..
            }) => None,
            Some(Authorization {
                rbac: Some(rbac), ..
            }) => Some(
                rbac.roles
                    .iter()
                    .map(|r| (r.name.clone(), r.permissions.iter().copied().collect()))
                    .collect(),
            ),
            _ => Some(builtin_roles()),
        }
    }

    /// The JWT settings, if any.
    pub fn token_auth(&self) -> Option<&TokenAuth> {
        self.authentication.as_ref()?.token_auth.as_ref()
    }

    /// The certificate settings, if any.
    pub fn tls_auth(&self) -> Option<&TlsAuth> {
        self.authentication.as_ref()?.tls_auth.as_ref()
    }

    /// The firewall rules, if any.
    pub fn firewall(&self) -> Option<&FirewallRules> {
        self.network.as_ref()?.firewall_rules.as_ref()
    }

    /// Rules across keys: roles named once, `rbac` only with JWTs (the role is a JWT claim).
    pub fn check(&self) -> Result<(), String> {
        if let Some(rbac) = self.authorization.as_ref().and_then(|a| a.rbac.as_ref()) {
            let mut seen = BTreeSet::new();
            for r in &rbac.roles {
                if !seen.insert(&r.name) {
                    return Err(format!(
                        "security.authorization.rbac: role `{}` is defined twice",
                        r.name
                    ));
                }
            }
            if self.token_auth().is_none() {
                return Err("security.authorization.rbac needs authentication.token_auth: a caller's role is \
                     the `role` claim of its JWT (the static --token grants every permission)"
                    .into());
            }
        }
        if let Some(role) = self.token_auth().and_then(|t| t.role.as_ref()) {
            if let Some(roles) = self.roles() {
                if !roles.contains_key(role) {
                    return Err(format!(
                        "security.authentication.token_auth.role `{role}` is not a role ({})",
                        roles.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
        let enc = self.network.as_ref().and_then(|n| n.encryption);
        if enc == Some(false) && self.tls_auth().is_some() {
            return Err(
                "security.network.encryption is false but authentication.tls_auth gives certificates"
                    .into(),
            );
        }
        if matches!(&self.network, Some(NetworkSecurity { cipher_suites: Some(s), .. }) if s.is_empty())
        {
            return Err("security.network.cipher_suites is empty: name at least one suite".into());
        }
        Ok(())
    }

    /// The verifier a worker or master checks JWTs with, when `token_auth` is set.
    pub fn verifier(&self) -> Result<Option<Verifier>, SecurityError> {
        let Some(t) = self.token_auth() else {
            return Ok(None);
        };
        let key = match t.algorithm {
            JwtAlgorithm::Hs256 => {
                jsonwebtoken::DecodingKey::from_secret(t.hs256_secret()?.as_bytes())
            }
            JwtAlgorithm::Rs256 => {
                let path = t.public_key.as_deref().ok_or_else(|| {
                    SecurityError::Invalid(
                        "security.authentication.token_auth: RS256 verification needs `public_key` (a PEM file)".into(),
                    )
                })?;
                jsonwebtoken::DecodingKey::from_rsa_pem(&read(path, "RSA public key")?).map_err(
                    |e| SecurityError::Key {
                        what: "RSA public key",
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    },
                )?
            }
        };
        let mut validation = jsonwebtoken::Validation::new(t.algorithm.jwt());
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        Ok(Some(Verifier {
            key,
            validation,
            roles: self.roles(),
        }))
    }

    /// The minter a controller, console or master signs tokens with, when `token_auth` is set:
    /// its role is `token_auth.role`, else the first role holding every permission in `needs`.
    pub fn minter(&self, who: &str, needs: &[Permission]) -> Result<Option<Minter>, SecurityError> {
        let Some(t) = self.token_auth() else {
            return Ok(None);
        };
        let role = match (&t.role, self.roles()) {
            (Some(r), _) => r.clone(),
            (None, None) => "admin".to_string(),
            (None, Some(roles)) => roles
                .iter()
                .find(|(_, p)| needs.iter().all(|n| p.contains(n)))
                .map(|(name, _)| name.clone())
                .ok_or_else(|| {
                    SecurityError::Invalid(format!(
                        "security.authorization: no role holds every permission the {who} needs ({}); \
                         add one or set token_auth.role",
                        needs.iter().map(|p| p.name()).collect::<Vec<_>>().join(", ")
                    ))
                })?,
        };
        let key = match t.algorithm {
            JwtAlgorithm::Hs256 => {
                jsonwebtoken::EncodingKey::from_secret(t.hs256_secret()?.as_bytes())
            }
            JwtAlgorithm::Rs256 => {
                let path = t.private_key.as_deref().ok_or_else(|| {
                    SecurityError::Invalid(
                        "security.authentication.token_auth: RS256 signing needs `private_key` (a PEM file)".into(),
                    )
                })?;
                jsonwebtoken::EncodingKey::from_rsa_pem(&read(path, "RSA private key")?).map_err(
                    |e| SecurityError::Key {
                        what: "RSA private key",
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    },
                )?
            }
        };
        Ok(Some(Minter {
            key,
            header: jsonwebtoken::Header::new(t.algorithm.jwt()),
            sub: who.to_string(),
            role,
            lifetime: t.expiration.unwrap_or(DEFAULT_EXPIRATION),
            cached: Mutex::new(None),
        }))
    }
}

impl JwtAlgorithm {
    fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            JwtAlgorithm::Hs256 => jsonwebtoken::Algorithm::HS256,
            JwtAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl TokenAuth {
    fn hs256_secret(&self) -> Result<String, SecurityError> {
        let raw = self.secret.as_deref().ok_or_else(|| {
            SecurityError::Invalid(
                "security.authentication.token_auth: HS256 needs `secret`".into(),
            )
        })?;
        let secret = resolve_env(raw, "security.authentication.token_auth.secret")?;
        if secret.len() < 16 {
            return Err(SecurityError::Invalid(
                "security.authentication.token_auth.secret: at least 16 bytes, or an HS256 token can be guessed".into(),
            ));
        }
        Ok(secret)
    }
}

/// Signs short-lived JWTs; one token is reused until half its lifetime has passed.
pub struct Minter {
    key: jsonwebtoken::EncodingKey,
    header: jsonwebtoken::Header,
    sub: String,
    role: String,
    lifetime: Duration,
    cached: Mutex<Option<(String, u64)>>,
}

impl std::fmt::Debug for Minter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Minter")
            .field("role", &self.role)
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl Minter {
    /// The role its tokens claim.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// A token valid for at least half the lifetime (a fresh one when the last is older).
    pub fn bearer(&self) -> String {
        let now = now_secs();
        let life = self.lifetime.as_secs().max(1);
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((t, exp)) = cached.as_ref() {
            if *exp > now + life / 2 {
                return t.clone();
            }
        }
        let token = self.mint_at(now, life);
        *cached = Some((token.clone(), now + life));
        token
    }

    /// A token issued at `iat` (seconds since the epoch) valid for `life` seconds (tests mint
    /// expired ones with it).
    pub fn mint_at(&self, iat: u64, life: u64) -> String {
        let claims = Claims {
            sub: self.sub.clone(),
            role: self.role.clone(),
            iat,
            exp: iat + life,
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key).expect(
            "claims of strings and numbers always serialize, and the key was checked when loaded",
        )
    }
}

/// Checks JWTs: signature, expiry, and the role claim against the role table.
pub struct Verifier {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    roles: Option<BTreeMap<String, BTreeSet<Permission>>>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("roles", &self.roles)
            .finish()
    }
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub role: String,
    /// `None`: authorization is off, everything is allowed.
    pub permissions: Option<BTreeSet<Permission>>,
}

impl Grant {
    /// True when the grant includes `p`.
    pub fn allows(&self, p: Permission) -> bool {
        self.permissions.as_ref().is_none_or(|s| s.contains(&p))
    }
}

impl Verifier {
    /// The grant of `token`, or why it is refused (expired, wrongly signed, no such role).
    pub fn verify(&self, token: &str) -> Result<Grant, String> {
        use jsonwebtoken::errors::ErrorKind;
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::ExpiredSignature => "JWT expired".to_string(),
                ErrorKind::InvalidSignature => "JWT signature does not verify".to_string(),
                ErrorKind::InvalidAlgorithm => "JWT signed with another algorithm".to_string(),
                ErrorKind::MissingRequiredClaim(c) => format!("JWT has no `{c}` claim"),
                _ => format!("not a valid JWT: {e}"),
            },
        )?;
        let role = data.claims.role;
        let permissions = match &self.roles {
            None => None,
            Some(roles) => Some(
                roles
                    .get(&role)
                    .cloned()
                    .ok_or_else(|| format!("JWT role `{role}` is not a role here"))?,
            ),
        };
        Ok(Grant { role, permissions })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sec(yaml: &str) -> Result<Security, String> {
        serde_norway::from_str::<Security>(yaml).map_err(|e| e.to_string())
    }

    #[test]
    fn the_seed_blocks_parse_and_oauth_is_refused_by_name() {
        let s = sec("authentication:\n  method: mutual_tls\n  token_auth:\n    algorithm: HS256\n    secret: \"{{env.JWT_SECRET}}\"\n    expiration: 3600\n  tls_auth:\n    ca_cert: /certs/ca.crt\n    client_cert: /certs/client.crt\n    client_key: /certs/client.key\nauthorization:\n  enabled: true\n  rbac:\n    roles:\n      - name: worker\n        permissions: [execute_tests, report_metrics]\n      - name: admin\n        permissions: [manage_workers, view_all_results]\n").unwrap();
        s.check().unwrap();
        assert_eq!(
            s.token_auth().unwrap().expiration,
            Some(Duration::from_secs(3600))
        );
        let n = sec("network:\n  encryption: true\n  cipher_suites:\n    - TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384\n    - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n  firewall_rules:\n    master_ports: [8080]\n    worker_ports: [8081, 8082]\n    allowed_networks: [\"10.0.0.0/8\", \"172.16.0.0/12\"]\n").unwrap();
        n.check().unwrap();
        let e = sec("authentication:\n  method: oauth\n").unwrap_err();
        assert!(e.contains("`oauth` is not available"), "{e}");
        let e = sec("authentication:\n  method: token\n").unwrap_err();
        assert!(e.contains("needs `token_auth`"), "{e}");
        let e = sec("network:\n  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n").unwrap_err();
        assert!(e.contains("TLS_RSA_WITH_AES_128_CBC_SHA"), "{e}");
        let e = sec("authorization:\n  rbac:\n    roles:\n      - name: x\n        permissions: [execute_test]\n").unwrap_err();
        assert!(e.contains("execute_tests"), "{e}");
        let e = sec("authorization:\n  rbac:\n    roles: []\n").unwrap_err();
        assert!(e.contains("needs authentication.token_auth"), "{e}");
    }

    fn hs(extra: &str) -> Security {
        sec(&format!("authentication:\n  method: token\n  token_auth:\n    algorithm: HS256\n    secret: 0123456789abcdef-secret\n{extra}")).unwrap()
    }

    #[test]
    fn hs256_tokens_verify_until_they_expire_and_carry_their_role() {
        let s = hs("");
        let m = s
            .minter(
                "controller",
                &[Permission::ExecuteTests, Permission::ReportMetrics],
            )
            .unwrap()
            .unwrap();
        assert_eq!(m.role(), "admin", "the first built-in role holding both");
        let v = s.verifier().unwrap().unwrap();
        let g = v.verify(&m.bearer()).unwrap();
        assert!(g.allows(Permission::ManageWorkers));
        let old = m.mint_at(now_secs() - 100, 10);
        assert_eq!(v.verify(&old).unwrap_err(), "JWT expired");
        let other = hs("").authentication.unwrap();
        let mut t = other.token_auth.unwrap();
        t.secret = Some("another-secret-of-16-bytes".into());
        let forged = Security {
            authentication: Some(Authentication {
                method: AuthMethod::Token,
                token_auth: Some(t),
                tls_auth: None,
            }),
            ..Default::default()
        };
        let f = forged.minter("x", &[]).unwrap().unwrap().bearer();
        assert_eq!(v.verify(&f).unwrap_err(), "JWT signature does not verify");
        let viewer = hs("    role: viewer\n").minter("c", &[]).unwrap().unwrap();
        let g = v.verify(&viewer.bearer()).unwrap();
        assert!(g.allows(Permission::ViewAllResults) && !g.allows(Permission::ExecuteTests));
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = hs("");
        assert!(!format!("{s:?}").contains("0123456789abcdef-secret"));
    }

    #[test]
    fn short_secrets_and_unset_variables_are_refused() {
        let s = sec("authentication:\n  method: token\n  token_auth:\n    algorithm: HS256\n    secret: short\n").unwrap();
        assert!(s
            .verifier()
            .unwrap_err()
            .to_string()
            .contains("at least 16 bytes"));
        let s = sec("authentication:\n  method: token\n  token_auth:\n    algorithm: HS256\n    secret: \"{{env.PERFORNIUM_SURELY_UNSET_VAR}}\"\n").unwrap();
        let e = s.verifier().unwrap_err().to_string();
        assert!(e.contains("PERFORNIUM_SURELY_UNSET_VAR is not set"), "{e}");
    }
}

/// What `perfornium worker --config FILE` and `master --config FILE` take from FILE: the
/// `security` and `performance` sections of its `distributed:` block, and its role blocks
/// (`enabled`, `mode`, `coordinator`, `master`, `worker`: see `cluster.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessConfig {
    pub security: Security,
    pub performance: super::performance::Performance,
    pub cluster: super::cluster::Cluster,
    /// A master replica's `fault_tolerance.master_failure`: checked against its `--peers`, and its
    /// `failover.election_timeout` sets the replica's election timeout (see `cli/master.rs`).
    pub master_failure: Option<super::distributed::MasterFailure>,
}

/// `fault_tolerance` in a `--config` file: only `master_failure` (a master's); the rest describes
/// a run and belongs in the test.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessFaultTolerance {
    #[serde(default)]
    master_failure: Option<super::distributed::MasterFailure>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessFile {
    distributed: ProcessDistributed,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessDistributed {
    #[serde(default)]
    security: Option<Security>,
    #[serde(default)]
    performance: Option<super::performance::Performance>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    mode: Option<super::cluster::Mode>,
    #[serde(default)]
    master: Option<super::cluster::MasterRef>,
    #[serde(default)]
    worker: Option<super::cluster::WorkerSelf>,
    #[serde(default)]
    coordinator: Option<super::cluster::Coordinator>,
    #[serde(default)]
    fault_tolerance: Option<ProcessFaultTolerance>,
}

/// Reads a `--config` file: file:line errors, "did you mean" on unknown keys.
pub fn load_process_config(path: &Path) -> Result<ProcessConfig, super::ConfigError> {
    let text = super::read(path)?;
    let file: ProcessFile = serde_norway::from_str(&text).map_err(|e| super::syntax(path, e))?;
    let d = file.distributed;
    let performance = d.performance.unwrap_or_default();
    performance.check().map_err(|m| super::invalid(path, m))?;
    let cluster = super::cluster::Cluster {
        enabled: d.enabled,
        mode: d.mode,
        coordinator: d.coordinator,
        master: d.master,
        worker: d.worker,
    }
    .resolve()
    .map_err(|m| super::invalid(path, m))?;
    let master_failure = d.fault_tolerance.and_then(|f| f.master_failure);
    if let Some(m) = &master_failure {
        m.check().map_err(|m| super::invalid(path, m))?;
    }
    Ok(ProcessConfig {
        security: d.security.unwrap_or_default(),
        performance,
        cluster,
        master_failure,
    })
}
