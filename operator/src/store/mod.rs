//! Where desired state lives (README "Stores"): one trait, three backends.
//!
//! Invariants every backend keeps:
//! - a listing that fails is an error, never an empty or partial list;
//! - status and sync records live apart from specs (a CI write never clobbers status, and a status
//!   write never shows up as a spec change);
//! - every spec source comes back with its own parse result, so one broken file hides nothing else.
//!
//! `lease` is not a store: it keeps the DynamoDB record that leader election campaigns for.

pub mod dynamodb;
pub mod file;
pub mod lease;
pub mod s3;
pub mod status;
pub mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use md5::Md5;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::spec::{ParsedFile, SpecKey};
pub use status::{Condition, Phase, ResourceRef, SpecStatus};
pub use watch::{WatchEvent, Watcher};

/// Errors of store operations. Messages carry the store URL and the object or key involved.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store URL `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("{store}: {op} failed: {message}")]
    Backend {
        store: String,
        op: String,
        message: String,
    },
    #[error("{store}: `{key}`: {message}")]
    Corrupt {
        store: String,
        key: String,
        message: String,
    },
}

impl StoreError {
    pub(crate) fn backend(store: &str, op: &str, err: impl std::fmt::Display) -> Self {
        StoreError::Backend {
            store: store.to_string(),
            op: op.to_string(),
            message: err.to_string(),
        }
    }
}

/// A parsed store URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreUrl {
    /// `file://DIR`
    File(PathBuf),
    /// `s3://BUCKET/PREFIX`; `prefix` is empty or ends with `/`.
    S3 { bucket: String, prefix: String },
    /// `dynamodb://TABLE`
    DynamoDb { table: String },
}

impl StoreUrl {
    pub fn parse(url: &str) -> Result<StoreUrl, StoreError> {
        let bad = |reason: &str| StoreError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = url.strip_prefix("file://") {
            if rest.is_empty() {
                return Err(bad(
                    "file:// needs a folder, e.g. file://./specs or file:///srv/specs",
                ));
            }
            return Ok(StoreUrl::File(PathBuf::from(rest)));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad("s3:// needs a bucket, e.g. s3://my-bucket/specs"));
            }
            let prefix = prefix.trim_matches('/');
            if prefix.is_empty() {
                return Err(bad(
                    "s3:// needs a prefix (s3://BUCKET/PREFIX): status is kept beside the prefix, where `aws s3 sync --delete` does not reach",
                ));
            }
            if prefix.starts_with(STATUS_ROOT.trim_end_matches('/')) {
                return Err(bad(
                    "the prefix must not start with `.ecs-operator`, where status is kept",
                ));
            }
            return Ok(StoreUrl::S3 {
                bucket: bucket.to_string(),
                prefix: format!("{prefix}/"),
            });
        }
        if let Some(table) = url.strip_prefix("dynamodb://") {
            let ok = (3..=255).contains(&table.len())
                && table
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c));
            if !ok {
                return Err(bad(
                    "dynamodb:// needs a table name (3-255 letters, digits, `_`, `-`, `.`)",
                ));
            }
            return Ok(StoreUrl::DynamoDb {
                table: table.to_string(),
            });
        }
        Err(bad(
            "expected file://DIR, s3://BUCKET/PREFIX or dynamodb://TABLE",
        ))
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::File(p) => write!(f, "file://{}", p.display()),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            StoreUrl::DynamoDb { table } => write!(f, "dynamodb://{table}"),
        }
    }
}

/// The folder (file store) or key prefix (S3) under which status and sync records live.
pub const STATUS_ROOT: &str = ".ecs-operator/";

/// How a store keeps specs, which decides what `sync` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One object per file, at the file's path relative to the synced folder (file, S3).
    Files,
    /// One item per spec document, keyed `Kind/name` (DynamoDB).
    Documents,
}

/// What a store knows about one source's content without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fingerprint {
    Md5(String),
    Sha256(String),
    Unknown,
}

impl Fingerprint {
    /// Whether `bytes` is the content this fingerprint describes.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        match self {
            Fingerprint::Md5(h) => *h == hex::encode(Md5::digest(bytes)),
            Fingerprint::Sha256(h) => *h == sha256_hex(bytes),
            Fingerprint::Unknown => false,
        }
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One unit of storage (a file, an object, an item) with what it parsed to.
#[derive(Debug, Clone)]
pub struct Source {
    /// The key within the store: relative path, object key below the prefix, or `Kind/name`.
    pub key: String,
    /// Changes whenever the content changes (content hash, ETag).
    pub version: String,
    pub parsed: ParsedFile,
}

/// A complete listing of a store's specs.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub sources: BTreeMap<String, Arc<Source>>,
}

impl Listing {
    /// Every parsed file of the listing, with cross-document checks applied over the whole store.
    pub fn validated_files(&self) -> Vec<ParsedFile> {
        let mut files: Vec<ParsedFile> = self.sources.values().map(|s| s.parsed.clone()).collect();
        crate::spec::load::validate_files(&mut files);
        files
    }
}

/// The record `sync` leaves in the store: which commit the specs came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The working tree had uncommitted changes.
    #[serde(default)]
    pub dirty: bool,
    pub synced_at: String,
    pub written: usize,
    pub deleted: usize,
    pub unchanged: usize,
}

/// What `init` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InitReport {
    pub created: Vec<String>,
    pub existing: Vec<String>,
}

/// A store of specs and their status.
#[async_trait]
pub trait Store: Send + Sync {
    /// The store's URL, for messages.
    fn url(&self) -> String;

    fn layout(&self) -> Layout;

    /// Create what the store needs (folder, bucket, table with its stream) when absent.
    async fn init(&self) -> Result<InitReport, StoreError>;

    /// Every spec source with its parse results. Fails whole rather than returning part.
    async fn list(&self) -> Result<Listing, StoreError>;

    /// Fetch only what changed since `previous` (sources whose version differs); unchanged ones
    /// are carried over. The default re-lists everything.
    async fn refresh(&self, previous: &Listing) -> Result<Listing, StoreError> {
        let _ = previous;
        self.list().await
    }

    /// The fingerprints of every spec source, for `sync` to decide what to write.
    async fn source_fingerprints(&self) -> Result<BTreeMap<String, Fingerprint>, StoreError>;

    /// Write one source (`sync`). `origin` names where it came from (a path in the git checkout).
    async fn put_source(&self, key: &str, bytes: &[u8], origin: &str) -> Result<(), StoreError>;

    async fn delete_source(&self, key: &str) -> Result<(), StoreError>;

    async fn read_status(&self, key: &SpecKey) -> Result<Option<SpecStatus>, StoreError>;

    /// Every status record, including those of specs no longer in the store.
    async fn list_status(&self) -> Result<Vec<SpecStatus>, StoreError>;

    async fn write_status(&self, status: &SpecStatus) -> Result<(), StoreError>;

    async fn delete_status(&self, key: &SpecKey) -> Result<(), StoreError>;

    async fn read_sync_record(&self) -> Result<Option<SyncRecord>, StoreError>;

    async fn write_sync_record(&self, record: &SyncRecord) -> Result<(), StoreError>;

    /// The folder of a local store, for filesystem notifications.
    fn local_dir(&self) -> Option<PathBuf> {
        None
    }

    /// A feed of changed keys cheaper than listing (DynamoDB's stream), started now.
    async fn change_feed(&self) -> Result<Option<Box<dyn watch::ChangeFeed>>, StoreError> {
        Ok(None)
    }

    /// One source by key, for stores with a change feed. `None` when it no longer exists.
    async fn fetch_source(&self, key: &str) -> Result<Option<Source>, StoreError> {
        Err(StoreError::backend(
            &self.url(),
            "fetch",
            format!("`{key}`: this store has no per-key reads"),
        ))
    }
}

/// Open the store a URL names, with AWS clients built from `sdk` (the standard SDK settings).
pub fn open(url: &StoreUrl, sdk: &aws_config::SdkConfig) -> Arc<dyn Store> {
    open_with(url, &crate::aws::Sdk::new(sdk.clone()))
}

/// Open the store a URL names, counting its AWS calls in `sdk.calls`.
pub fn open_with(url: &StoreUrl, sdk: &crate::aws::Sdk) -> Arc<dyn Store> {
    match url {
        StoreUrl::File(dir) => Arc::new(file::FileStore::new(dir.clone())),
        StoreUrl::S3 { bucket, prefix } => Arc::new(s3::S3Store::new(sdk, bucket, prefix)),
        StoreUrl::DynamoDb { table } => Arc::new(dynamodb::DynamoStore::new(sdk, table)),
    }
}

/// Whether a store URL needs AWS (and so an SDK configuration).
pub fn needs_aws(url: &StoreUrl) -> bool {
    !matches!(url, StoreUrl::File(_))
}

/// Now, as RFC 3339 UTC with second precision.
pub fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("0 is a valid nanosecond");
    now.format(&time::format_description::well_known::Rfc3339)
        .expect("UTC times format")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_into_backends() {
        assert_eq!(
            StoreUrl::parse("file://./specs").unwrap(),
            StoreUrl::File("./specs".into())
        );
        assert_eq!(
            StoreUrl::parse("s3://b/team/specs/").unwrap(),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: "team/specs/".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("dynamodb://specs").unwrap(),
            StoreUrl::DynamoDb {
                table: "specs".into()
            }
        );
    }

    #[test]
    fn s3_urls_without_a_prefix_are_refused_because_status_would_live_under_it() {
        let e = StoreUrl::parse("s3://bucket").unwrap_err().to_string();
        assert!(e.contains("needs a prefix"), "{e}");
    }

    #[test]
    fn unknown_schemes_are_refused_with_the_accepted_forms() {
        let e = StoreUrl::parse("http://x").unwrap_err().to_string();
        assert!(e.contains("file://DIR"), "{e}");
    }

    #[test]
    fn fingerprints_match_only_their_content() {
        let md5 = Fingerprint::Md5(hex::encode(Md5::digest(b"abc")));
        assert!(md5.matches(b"abc"));
        assert!(!md5.matches(b"abd"));
        assert!(Fingerprint::Sha256(sha256_hex(b"x")).matches(b"x"));
        assert!(!Fingerprint::Unknown.matches(b"x"));
    }
}
