//! TLS for Perfornium's own channels: the worker API, the master API and the raft RPC between
//! replicas (load traffic to the system under test is the test file's business, not this module's).
//!
//! A server presents a certificate and, given a CA, requires every client to present one signed by
//! it (mutual TLS); a client trusts one CA and may present its own certificate. Everything is read
//! and checked once, at start, so a wrong path or a key that does not match fails before the first
//! connection with an error naming the file. rustls with the ring provider throughout: the same
//! stack reqwest already uses, so no second TLS library is linked.

use axum::Router;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio_util::sync::CancellationToken;

/// Why TLS could not be set up.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read {what} {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} holds no PEM {what}")]
    Empty { what: &'static str, path: PathBuf },
    #[error("TLS setup refused: {0}")]
    Setup(String),
}

/// How long open connections may finish after a TLS server is asked to stop.
const DRAIN: Duration = Duration::from_secs(5);

/// What a server needs: its certificate chain and key, and the CA that signs allowed clients.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

impl ServerTls {
    /// Reads the files and builds the rustls configuration (HTTP/1.1 only, as every client here).
    pub fn config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        self.config_with_suites(&[])
    }

    /// As [`ServerTls::config`], offering only `suites` (all of rustls's safe defaults when empty):
    /// TLS 1.3 only when one of them is a TLS 1.3 suite, TLS 1.2 only when one is a TLS 1.2 suite.
    pub fn config_with_suites(
        &self,
        suites: &[rustls::SupportedCipherSuite],
    ) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let certs = read_certs(&self.cert, "certificate")?;
        let key = read_key(&self.key)?;
        let builder = if suites.is_empty() {
            rustls::ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
        } else {
            let mut p = rustls::crypto::ring::default_provider();
            p.cipher_suites = suites.to_vec();
            let versions = protocol_versions(suites);
            rustls::ServerConfig::builder_with_provider(Arc::new(p))
                .with_protocol_versions(&versions)
        }
        .map_err(setup)?;
        let builder = match &self.client_ca {
            Some(ca) => {
                let roots = roots(ca)?;
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider())
                    .build()
                    .map_err(setup)?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(certs, key).map_err(|e| {
            TlsError::Setup(format!(
                "{} and {} do not make a certificate and its key: {e}",
                self.cert.display(),
                self.key.display()
            ))
        })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// What a client needs to call Perfornium servers over HTTPS: the CA to trust and, for servers
/// that require mutual TLS, its own certificate and key. Cheap to clone.
#[derive(Clone)]
pub struct ClientTls {
    ca: reqwest::Certificate,
    identity: Option<reqwest::Identity>,
    /// With `suites`: a rustls configuration offering only them (built once, in `with_suites`).
    restricted: Option<Arc<rustls::ClientConfig>>,
    ca_pem: Arc<Vec<u8>>,
    identity_pem: Option<Arc<(Vec<u8>, Vec<u8>)>>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("identity", &self.identity.is_some())
            .field("restricted", &self.restricted.is_some())
            .finish()
    }
}

/// A certificate's PEM and its key's.
pub type PemPair<'a> = (&'a [u8], &'a [u8]);

impl ClientTls {
    /// Reads the CA and, when both are given, the client certificate and key.
    pub fn load(ca: &Path, cert_key: Option<(&Path, &Path)>) -> Result<ClientTls, TlsError> {
        // Each file is read once and parsed here first, for errors that name it.
        let ca_pem = read(ca, "CA certificate")?;
        roots_from(&ca_pem, ca)?;
        let ca = reqwest::Certificate::from_pem(&ca_pem).map_err(setup)?;
        let mut identity_pem = None;
        let identity = match cert_key {
            Some((cert, key)) => {
                let mut pem = read(cert, "certificate")?;
                parse_certs(&pem, cert, "certificate")?;
                let key_pem = read(key, "private key")?;
                parse_key(&key_pem, key)?;
                identity_pem = Some(Arc::new((pem.clone(), key_pem.clone())));
                pem.push(b'\n');
                pem.extend(key_pem);
                Some(reqwest::Identity::from_pem(&pem).map_err(setup)?)
            }
            None => None,
        };
        Ok(ClientTls {
            ca,
            identity,
            restricted: None,
            ca_pem: Arc::new(ca_pem),
            identity_pem,
        })
    }

    /// The same trust and identity, offering only `suites` (no change when empty).
    pub fn with_suites(
        mut self,
        suites: &[rustls::SupportedCipherSuite],
    ) -> Result<ClientTls, TlsError> {
        if suites.is_empty() {
            return Ok(self);
        }
        let here = Path::new("<CA>");
        let mut p = rustls::crypto::ring::default_provider();
        p.cipher_suites = suites.to_vec();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(p))
            .with_protocol_versions(&protocol_versions(suites))
            .map_err(setup)?
            .with_root_certificates(roots_from(&self.ca_pem, here)?);
        let mut config = match &self.identity_pem {
            Some(pair) => builder
                .with_client_auth_cert(
                    parse_certs(&pair.0, here, "certificate")?,
                    parse_key(&pair.1, here)?,
                )
                .map_err(setup)?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        self.restricted = Some(Arc::new(config));
        Ok(self)
    }

    /// The same trust and identity as a rustls configuration offering `alpn`, for the clients
    /// that are not reqwest (the gRPC and WebSocket worker transports).
    pub fn rustls_config(&self, alpn: &[&[u8]]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
        let mut config = match &self.restricted {
            Some(c) => (**c).clone(),
            None => {
                let here = Path::new("<CA>");
                let builder = rustls::ClientConfig::builder_with_provider(provider())
                    .with_safe_default_protocol_versions()
                    .map_err(setup)?
                    .with_root_certificates(roots_from(&self.ca_pem, here)?);
                match &self.identity_pem {
                    Some(pair) => builder
                        .with_client_auth_cert(
                            parse_certs(&pair.0, here, "certificate")?,
                            parse_key(&pair.1, here)?,
                        )
                        .map_err(setup)?,
                    None => builder.with_no_client_auth(),
                }
            }
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// The CA certificate's PEM, and the client certificate's and key's when there is one.
    pub fn pems(&self) -> (&[u8], Option<PemPair<'_>>) {
        (
            &self.ca_pem,
            self.identity_pem
                .as_deref()
                .map(|(c, k)| (c.as_slice(), k.as_slice())),
        )
    }

    /// `builder` set to trust only the CA, present the identity if any, and refuse plain HTTP.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        if let Some(config) = &self.restricted {
            return builder
                .use_preconfigured_tls((**config).clone())
                .https_only(true);
        }
        let builder = builder
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(self.ca.clone())
            .https_only(true);
        match &self.identity {
            Some(id) => builder.identity(id.clone()),
            None => builder,
        }
    }
}

/// `https` when calls go over TLS, else `http`.
pub fn scheme(tls: Option<&ClientTls>) -> &'static str {
    if tls.is_some() {
        "https"
    } else {
        "http"
    }
}

/// A reqwest client builder for calls to Perfornium servers: no proxy, TLS as `tls` says.
pub fn client_builder(tls: Option<&ClientTls>) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder().no_proxy();
    match tls {
        Some(t) => t.apply(builder),
        None => builder,
    }
}

/// gzip level and size threshold for every response of this process's servers
/// (`performance.network.compression` of `--config`), set once at start.
static COMPRESSION: std::sync::OnceLock<(u32, u16)> = std::sync::OnceLock::new();

/// Compresses the responses of this process's servers from now on (the first call wins):
/// gzip at `level` (1-9) for bodies of at least `threshold` bytes, to clients that accept it.
pub fn set_compression(level: u32, threshold: u16) {
    let _ = COMPRESSION.set((level, threshold));
}

/// `app` with the process's response compression, if any.
fn compressed(app: Router) -> Router {
    use tower_http::compression::predicate::{Predicate, SizeAbove};
    use tower_http::compression::{CompressionLayer, CompressionLevel, DefaultPredicate};
    let Some(&(level, threshold)) = COMPRESSION.get() else {
        return app;
    };
    let layer = CompressionLayer::new()
        .no_br()
        .no_deflate()
        .no_zstd()
        .quality(CompressionLevel::Precise(level as i32))
        .compress_when(DefaultPredicate::new().and(SizeAbove::new(threshold)));
    app.layer(layer)
}

/// Serves `app` on `listener` until `stop`, over TLS when `tls` is set. Handlers can read the
/// peer's address (`ConnectInfo<SocketAddr>`) either way, which the guard's allow-list needs.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let service = compressed(app).into_make_service_with_connect_info::<SocketAddr>();
    let Some(config) = tls else {
        return axum::serve(listener, service)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    };
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        stopper.graceful_shutdown(Some(DRAIN));
    });
    let config = axum_server::tls_rustls::RustlsConfig::from_config(config);
    axum_server::from_tcp_rustls(listener.into_std()?, config)?
        .handle(handle)
        .serve(service)
        .await
}

/// The rustls error in `e`'s chain, if the request failed in the TLS handshake (an untrusted
/// server, or our certificate refused) rather than on the network. rustls errors arrive wrapped
/// in `io::Error`s, whose `source()` skips the wrapped error, so those are opened too.
pub fn handshake_failure(e: &reqwest::Error) -> Option<String> {
    fn find<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        let wrapped = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref());
        if let Some(tls) = wrapped.and_then(|inner| find(inner)) {
            return Some(tls);
        }
        err.source().and_then(find)
    }
    find(e).map(ToString::to_string)
}

/// The rustls suite named `name` (IANA spelling, `TLS13_`/`TLS_` prefixes as rustls writes them), or
/// why it cannot be offered.
pub fn cipher_suite(name: &str) -> Result<rustls::SupportedCipherSuite, String> {
    let wanted = name.trim().to_ascii_uppercase();
    let all = rustls::crypto::ring::ALL_CIPHER_SUITES;
    if let Some(s) = all.iter().find(|s| format!("{:?}", s.suite()) == wanted) {
        return Ok(*s);
    }
    // TLS 1.3 suites are often written without rustls's `TLS13_` prefix (`TLS_AES_128_GCM_SHA256`).
    if let Some(s) = wanted.strip_prefix("TLS_").and_then(|rest| {
        all.iter()
            .find(|s| format!("{:?}", s.suite()) == format!("TLS13_{rest}"))
    }) {
        return Ok(*s);
    }
    let known: Vec<String> = all.iter().map(|s| format!("{:?}", s.suite())).collect();
    let reason = if wanted.contains("CBC")
        || wanted.contains("_RSA_WITH")
        || wanted.contains("3DES")
        || wanted.contains("RC4")
    {
        " (CBC modes, static RSA key exchange, 3DES and RC4 are not implemented by rustls: they are unsafe)"
    } else {
        ""
    };
    let hint = known
        .iter()
        .map(|k| (strsim::jaro_winkler(&wanted, k), k))
        .filter(|(score, _)| *score >= 0.9)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default();
    Err(format!(
        "cipher suite `{name}` is not supported{reason}{hint}; supported: {}",
        known.join(", ")
    ))
}

/// The protocol versions that `suites` can serve.
fn protocol_versions(
    suites: &[rustls::SupportedCipherSuite],
) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let mut v = Vec::new();
    if suites
        .iter()
        .any(|s| matches!(s, rustls::SupportedCipherSuite::Tls13(_)))
    {
        v.push(&rustls::version::TLS13);
    }
    if suites
        .iter()
        .any(|s| matches!(s, rustls::SupportedCipherSuite::Tls12(_)))
    {
        v.push(&rustls::version::TLS12);
    }
    v
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn setup(e: impl std::fmt::Display) -> TlsError {
    TlsError::Setup(e.to_string())
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    parse_certs(&read(path, what)?, path, what)
}

/// The certificates in `pem` (read from `path`); at least one.
fn parse_certs(
    pem: &[u8],
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Setup(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    parse_key(&read(path, "private key")?, path)
}

/// The private key in `pem` (read from `path`).
fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsError::Empty {
        what: "private key",
        path: path.to_path_buf(),
    })
}

fn roots(ca: &Path) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    roots_from(&read(ca, "CA certificate")?, ca)
}

/// A root store of the CA certificates in `pem` (read from `ca`).
fn roots_from(pem: &[u8], ca: &Path) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    let mut store = rustls::RootCertStore::empty();
    for cert in parse_certs(pem, ca, "CA certificate")? {
        store
            .add(cert)
            .map_err(|e| TlsError::Setup(format!("{}: {e}", ca.display())))?;
    }
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate and its key, and a second key that does not match it.
    fn files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let paths = (dir.join("c.pem"), dir.join("k.pem"), dir.join("other.pem"));
        std::fs::write(&paths.0, cert.pem()).unwrap();
        std::fs::write(&paths.1, key.serialize_pem()).unwrap();
        std::fs::write(&paths.2, other.serialize_pem()).unwrap();
        paths
    }

    #[test]
    fn a_matching_pair_builds_with_and_without_client_auth() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, _) = files(dir.path());
        let mut tls = ServerTls {
            cert: cert.clone(),
            key,
            client_ca: None,
        };
        assert!(tls.config().is_ok());
        tls.client_ca = Some(cert.clone());
        assert!(tls.config().is_ok());
        assert!(ClientTls::load(&cert, None).is_ok());
    }

    #[test]
    fn wrong_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key, other) = files(dir.path());
        let missing = ServerTls {
            cert: dir.path().join("nope.pem"),
            key: key.clone(),
            client_ca: None,
        };
        let e = missing.config().unwrap_err().to_string();
        assert!(e.contains("nope.pem"), "{e}");
        let swapped = ServerTls {
            cert: key.clone(),
            key: cert.clone(),
            client_ca: None,
        };
        let e = swapped.config().unwrap_err().to_string();
        assert!(
            e.contains("k.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let mismatched = ServerTls {
            cert: cert.clone(),
            key: other,
            client_ca: None,
        };
        let e = mismatched.config().unwrap_err().to_string();
        assert!(e.contains("do not make a certificate and its key"), "{e}");
        let e = ClientTls::load(&key, None).unwrap_err().to_string();
        assert!(e.contains("k.pem"), "{e}");
    }
}
