//! Where a run's results go when it ends (`distributed.results.collection.storage`): one client,
//! the `object_store` crate, for a local directory, S3 (and S3-compatible servers), GCS and Azure.
//! The driver uploads `summary.json`, `timeline.ndjson`, the feed's events (`feed.ndjson`, when
//! the run has a feed) and, unless `format.aggregated: false`, `histograms.json` (the merged HDR
//! histograms per step and per worker) under the run's prefix; `format.compressed: true` gzips
//! each (`.gz` added). Credentials come from the controller's environment; a cloud backend
//! without any is refused before the run starts, naming the variables to set.

use super::run::RunRecord;
use crate::config::results::{Backend, Format, Storage};
use crate::metrics::StepStats;
use object_store::path::Path as Key;
use object_store::{ObjectStore, PutPayload};
use serde::Serialize;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Why results could not be stored.
#[derive(Debug, Error)]
pub enum StorageError {
    #[error("results.collection.storage backend `{backend}`: no credentials in the environment: set {hint}")]
    NoCredentials {
        backend: &'static str,
        hint: &'static str,
    },
    #[error("results.collection.storage backend `{backend}`: {source}")]
    Open {
        backend: &'static str,
        source: object_store::Error,
    },
    #[error("results.collection.storage: cannot create {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
    #[error("storing {key}: {source}")]
    Put {
        key: String,
        source: object_store::Error,
    },
    #[error("encoding {key}: {why}")]
    Encode { key: String, why: String },
    #[error("reading {key}: {source}")]
    Get {
        key: String,
        source: object_store::Error,
    },
    #[error("{key} is not an archived run record: {why}")]
    Decode { key: String, why: String },
}

/// A storage opened for uploads, with the place it names in messages.
pub struct Opened {
    pub store: Arc<dyn ObjectStore>,
    /// `s3://bucket`, `gs://bucket`, `az://container` or the local directory.
    pub place: String,
}

fn env_any(names: &[&str]) -> bool {
    names
        .iter()
        .any(|n| std::env::var_os(n).is_some_and(|v| !v.is_empty()))
}

/// Opens the backend `s` names, with credentials from the environment.
pub fn open(s: &Storage) -> Result<Opened, StorageError> {
    let backend = s.backend.name();
    let bucket = s.bucket.clone().unwrap_or_default();
    let retry = object_store::RetryConfig {
        max_retries: 3,
        retry_timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let client = object_store::ClientOptions::new()
        .with_timeout(Duration::from_secs(30))
        .with_connect_timeout(Duration::from_secs(5));
    let open_err = |source| StorageError::Open { backend, source };
    let (store, place): (Arc<dyn ObjectStore>, String) = match s.backend {
        Backend::Local => {
            let dir = s.path.clone().unwrap_or_default();
            std::fs::create_dir_all(&dir).map_err(|source| StorageError::Dir {
                path: dir.clone(),
                source,
            })?;
            let fs =
                object_store::local::LocalFileSystem::new_with_prefix(&dir).map_err(open_err)?;
            (Arc::new(fs), dir)
        }
        Backend::S3 => {
            let keys = env_any(&["AWS_ACCESS_KEY_ID"]) && env_any(&["AWS_SECRET_ACCESS_KEY"]);
            let federated = env_any(&[
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            ]);
            if !keys && !federated {
                return Err(StorageError::NoCredentials {
                    backend,
                    hint: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones), or AWS_WEB_IDENTITY_TOKEN_FILE",
                });
            }
            let mut b = object_store::aws::AmazonS3Builder::from_env()
                .with_bucket_name(&bucket)
                .with_retry(retry)
                .with_client_options(client);
            if let Some(e) = &s.endpoint {
                b = b
                    .with_endpoint(e)
                    .with_allow_http(e.starts_with("http://"))
                    // S3-compatible servers are addressed by path (`endpoint/bucket/key`).
                    .with_virtual_hosted_style_request(false);
            }
            if let Some(r) = &s.region {
                b = b.with_region(r);
            } else if !env_any(&["AWS_REGION", "AWS_DEFAULT_REGION"]) {
                b = b.with_region("us-east-1");
            }
            (
                Arc::new(b.build().map_err(open_err)?),
                format!("s3://{bucket}"),
            )
        }
        Backend::Gcs => {
            if !env_any(&[
                "GOOGLE_SERVICE_ACCOUNT",
                "GOOGLE_SERVICE_ACCOUNT_PATH",
                "GOOGLE_SERVICE_ACCOUNT_KEY",
                "GOOGLE_APPLICATION_CREDENTIALS",
            ]) {
                return Err(StorageError::NoCredentials {
                    backend,
                    hint: "GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT_PATH) to a service account key file, or GOOGLE_SERVICE_ACCOUNT_KEY to its JSON",
                });
            }
            let b = object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(&bucket)
                .with_retry(retry)
                .with_client_options(client);
            (
                Arc::new(b.build().map_err(open_err)?),
                format!("gs://{bucket}"),
            )
        }
        Backend::Azure => {
            let account = env_any(&["AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT"]);
            let secret = env_any(&[
                "AZURE_STORAGE_ACCOUNT_KEY",
                "AZURE_STORAGE_ACCESS_KEY",
                "AZURE_STORAGE_SAS_KEY",
                "AZURE_STORAGE_TOKEN",
                "AZURE_CLIENT_SECRET",
                "AZURE_FEDERATED_TOKEN_FILE",
            ]);
            if !(account && secret || env_any(&["AZURE_STORAGE_USE_EMULATOR"])) {
                return Err(StorageError::NoCredentials {
                    backend,
                    hint: "AZURE_STORAGE_ACCOUNT_NAME and one of AZURE_STORAGE_ACCOUNT_KEY, AZURE_STORAGE_SAS_KEY or AZURE_STORAGE_TOKEN (or AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID)",
                });
            }
            let b = object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_container_name(&bucket)
                .with_retry(retry)
                .with_client_options(client);
            (
                Arc::new(b.build().map_err(open_err)?),
                format!("az://{bucket}"),
            )
        }
    };
    Ok(Opened { store, place })
}

/// One step's merged histogram (and counts), as `histograms.json` stores it.
#[derive(Serialize)]
struct NamedStats<'a> {
    step: &'a str,
    #[serde(flatten)]
    stats: &'a StepStats,
}

#[derive(Serialize)]
struct WorkerStats<'a> {
    worker: String,
    steps: Vec<NamedStats<'a>>,
}

#[derive(Serialize)]
struct Histograms<'a> {
    run_id: &'a str,
    /// `latency` is an HDR histogram (V2 deflate encoding, base64), microseconds.
    steps: Vec<NamedStats<'a>>,
    workers: Vec<WorkerStats<'a>>,
}

/// The files one run stores, by name (before `.gz`).
pub fn files(rec: &RunRecord, fmt: &Format) -> Result<Vec<(String, Vec<u8>)>, StorageError> {
    let enc = |key: &str, e: serde_json::Error| StorageError::Encode {
        key: key.to_string(),
        why: e.to_string(),
    };
    let mut out = Vec::new();
    let summary = serde_json::to_vec_pretty(&rec.summary()).map_err(|e| enc("summary.json", e))?;
    out.push(("summary.json".to_string(), summary));
    let mut timeline = Vec::new();
    for p in &rec.timeline {
        serde_json::to_writer(&mut timeline, p).map_err(|e| enc("timeline.ndjson", e))?;
        timeline.push(b'\n');
    }
    out.push(("timeline.ndjson".to_string(), timeline));
    if let Some(feed) = &rec.feed {
        let mut lines = Vec::new();
        for e in &feed.events {
            serde_json::to_writer(&mut lines, e).map_err(|e| enc("feed.ndjson", e))?;
            lines.push(b'\n');
        }
        out.push(("feed.ndjson".to_string(), lines));
    }
    if fmt.aggregated != Some(false) {
        let merged = rec.merged_steps();
        fn named<'a>(steps: &'a [StepStats], names: &'a [String]) -> Vec<NamedStats<'a>> {
            steps
                .iter()
                .zip(names)
                .map(|(stats, step)| NamedStats { step, stats })
                .collect()
        }
        let h = Histograms {
            run_id: &rec.id,
            steps: named(&merged, &rec.step_names),
            workers: rec
                .workers
                .iter()
                .map(|w| WorkerStats {
                    worker: w.addr.addr(),
                    steps: named(w.totals(), &rec.step_names),
                })
                .collect(),
        };
        let body = serde_json::to_vec(&h).map_err(|e| enc("histograms.json", e))?;
        out.push(("histograms.json".to_string(), body));
    }
    Ok(out)
}

/// Uploads `rec`'s files under its prefix; returns where they went (`s3://bucket/prefix`).
pub async fn upload(s: &Storage, fmt: &Format, rec: &RunRecord) -> Result<String, StorageError> {
    let opened = open(s)?;
    let prefix = s.prefix_for(&rec.id, &rec.test.name, rec.created_ms);
    for (name, body) in files(rec, fmt)? {
        let (name, body) = if fmt.compressed == Some(true) {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let body = gz.write_all(&body).and_then(|_| gz.finish()).map_err(|e| {
                StorageError::Encode {
                    key: name.clone(),
                    why: e.to_string(),
                }
            })?;
            (format!("{name}.gz"), body)
        } else {
            (name, body)
        };
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        opened
            .store
            .put(&Key::from(key.as_str()), PutPayload::from(body))
            .await
            .map_err(|source| StorageError::Put {
                key: format!("{}/{key}", opened.place),
                source,
            })?;
    }
    Ok(format!("{}/{prefix}", opened.place))
}

/// The file an archived run record is kept in, under the run's prefix (retention's `keep_runs`,
/// `keep_days`): the whole record as gzipped JSON, enough to serve `GET /runs/{id}` again.
pub const ARCHIVE_FILE: &str = "run.json.gz";

/// Writes the whole of `rec` to `s` under its prefix; returns the object's key within the store
/// and the place (`s3://bucket`, the directory) for messages.
pub async fn archive(s: &Storage, rec: &RunRecord) -> Result<(String, String), StorageError> {
    let opened = open(s)?;
    let prefix = s.prefix_for(&rec.id, &rec.test.name, rec.created_ms);
    let key = if prefix.is_empty() {
        ARCHIVE_FILE.to_string()
    } else {
        format!("{prefix}/{ARCHIVE_FILE}")
    };
    let encode = |why: String| StorageError::Encode {
        key: key.clone(),
        why,
    };
    let json = serde_json::to_vec(rec).map_err(|e| encode(e.to_string()))?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let body = gz
        .write_all(&json)
        .and_then(|_| gz.finish())
        .map_err(|e| encode(e.to_string()))?;
    opened
        .store
        .put(&Key::from(key.as_str()), PutPayload::from(body))
        .await
        .map_err(|source| StorageError::Put {
            key: format!("{}/{key}", opened.place),
            source,
        })?;
    Ok((key, opened.place))
}

/// Reads back a run record [`archive`] wrote under `key` of `s`.
pub async fn read_archive(s: &Storage, key: &str) -> Result<RunRecord, StorageError> {
    let opened = open(s)?;
    let named = format!("{}/{key}", opened.place);
    let got = opened
        .store
        .get(&Key::from(key))
        .await
        .map_err(|source| StorageError::Get {
            key: named.clone(),
            source,
        })?;
    let bytes = got.bytes().await.map_err(|source| StorageError::Get {
        key: named.clone(),
        source,
    })?;
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut json).map_err(
        |e| StorageError::Decode {
            key: named.clone(),
            why: e.to_string(),
        },
    )?;
    serde_json::from_slice(&json).map_err(|e| StorageError::Decode {
        key: named,
        why: e.to_string(),
    })
}
