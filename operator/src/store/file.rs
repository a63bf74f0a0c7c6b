//! `file://DIR`: every `*.yaml|*.yml|*.json` under DIR (hidden folders skipped). Status lives in
//! `DIR/.ecs-operator/status/<Kind>/<name>.json`, which the listing never reads.
//!
//! Writes are atomic (temporary file, then rename), so a reader never sees half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    sha256_hex, Fingerprint, InitReport, Layout, Listing, Source, SpecStatus, Store, StoreError,
    SyncRecord, STATUS_ROOT,
};
use crate::spec::{load, parse_file, Kind, SpecKey};

pub struct FileStore {
    dir: PathBuf,
}

impl FileStore {
    pub fn new(dir: PathBuf) -> Self {
        FileStore { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn err(&self, op: &str, e: impl std::fmt::Display) -> StoreError {
        StoreError::backend(&self.url(), op, e)
    }

    /// The JSON document at `path`; `None` when there is no file. A file that does not parse
    /// is [`StoreError::Corrupt`], naming it; one that cannot be read fails `op`.
    async fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
        op: &str,
    ) -> Result<Option<T>, StoreError> {
        let Some(bytes) = read_optional(path).await.map_err(|e| self.err(op, e))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                store: self.url(),
                key: path.display().to_string(),
                message: e.to_string(),
            })
    }

    fn status_dir(&self) -> PathBuf {
        self.dir.join(STATUS_ROOT).join("status")
    }

    fn status_path(&self, key: &SpecKey) -> PathBuf {
        self.status_dir()
            .join(key.kind.as_str())
            .join(format!("{}.json", key.name))
    }

    fn relative_key(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.dir).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    /// A key from `sync` must stay inside the folder and outside the status folder.
    fn checked_path(&self, key: &str) -> Result<PathBuf, StoreError> {
        let bad = key.is_empty()
            || key.starts_with('/')
            || key
                .split('/')
                .any(|seg| seg.is_empty() || seg == ".." || seg.starts_with('.'));
        if bad {
            return Err(self.err(
                "write",
                format!("refusing key `{key}`: not a plain relative path"),
            ));
        }
        Ok(self.dir.join(key))
    }

    async fn spec_files(&self) -> Result<Vec<PathBuf>, StoreError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || load::spec_files_under(&dir))
            .await
            .map_err(|e| self.err("list", e))?
            .map_err(|e| self.err("list", e))
    }
}

async fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    tokio::fs::write(&tmp, bytes).await?;
    tokio::fs::rename(&tmp, path).await
}

async fn read_optional(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    match tokio::fs::read(path).await {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[async_trait]
impl Store for FileStore {
    fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }

    fn layout(&self) -> Layout {
        Layout::Files
    }

    fn local_dir(&self) -> Option<PathBuf> {
        Some(self.dir.clone())
    }

    async fn init(&self) -> Result<InitReport, StoreError> {
        let mut report = InitReport::default();
        if tokio::fs::metadata(&self.dir).await.is_ok() {
            report.existing.push(self.url());
        } else {
            tokio::fs::create_dir_all(&self.dir)
                .await
                .map_err(|e| self.err("init", e))?;
            report.created.push(self.url());
        }
        Ok(report)
    }

    async fn list(&self) -> Result<Listing, StoreError> {
        self.refresh(&Listing::default()).await
    }

    async fn refresh(&self, previous: &Listing) -> Result<Listing, StoreError> {
        if !tokio::fs::metadata(&self.dir)
            .await
            .map(|m| m.is_dir())
            .unwrap_or(false)
        {
            return Err(self.err("list", "folder does not exist (run `ecs-operator init`)"));
        }
        let mut listing = Listing::default();
        for path in self.spec_files().await? {
            let key = self.relative_key(&path);
            let bytes = match tokio::fs::read(&path).await {
                Ok(b) => b,
                // Removed between listing and reading: it is simply gone.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err("read", format!("{}: {e}", path.display()))),
            };
            let version = sha256_hex(&bytes);
            let source = match previous.sources.get(&key) {
                Some(old) if old.version == version => old.clone(),
                _ => Arc::new(Source {
                    key: key.clone(),
                    version,
                    parsed: parse_file(&key, &bytes),
                }),
            };
            listing.sources.insert(key, source);
        }
        Ok(listing)
    }

    async fn source_fingerprints(&self) -> Result<BTreeMap<String, Fingerprint>, StoreError> {
        let mut out = BTreeMap::new();
        if tokio::fs::metadata(&self.dir).await.is_err() {
            return Ok(out);
        }
        for path in self.spec_files().await? {
            let bytes = tokio::fs::read(&path)
                .await
                .map_err(|e| self.err("read", e))?;
            out.insert(
                self.relative_key(&path),
                Fingerprint::Sha256(sha256_hex(&bytes)),
            );
        }
        Ok(out)
    }

    async fn put_source(&self, key: &str, bytes: &[u8], _origin: &str) -> Result<(), StoreError> {
        let path = self.checked_path(key)?;
        write_atomic(&path, bytes)
            .await
            .map_err(|e| self.err("write", format!("{key}: {e}")))
    }

    async fn delete_source(&self, key: &str) -> Result<(), StoreError> {
        let path = self.checked_path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("delete", format!("{key}: {e}"))),
        }
    }

    async fn read_status(&self, key: &SpecKey) -> Result<Option<SpecStatus>, StoreError> {
        self.read_json(&self.status_path(key), "read status").await
    }

    async fn list_status(&self) -> Result<Vec<SpecStatus>, StoreError> {
        let mut out = Vec::new();
        for kind in Kind::ALL {
            let dir = self.status_dir().join(kind.as_str());
            let mut entries = match tokio::fs::read_dir(&dir).await {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err("list status", e)),
            };
            while let Some(entry) = entries
                .next_entry()
                .await
                .map_err(|e| self.err("list status", e))?
            {
                let name = entry.file_name().to_string_lossy().to_string();
                if let Some(spec_name) = name
                    .strip_suffix(".json")
                    .filter(|_| !name.starts_with('.'))
                {
                    if let Some(s) = self.read_status(&SpecKey::new(kind, spec_name)).await? {
                        out.push(s);
                    }
                }
            }
        }
        out.sort_by_key(|s| s.key());
        Ok(out)
    }

    async fn write_status(&self, status: &SpecStatus) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(status).expect("status serialises");
        write_atomic(&self.status_path(&status.key()), &bytes)
            .await
            .map_err(|e| self.err("write status", e))
    }

    async fn delete_status(&self, key: &SpecKey) -> Result<(), StoreError> {
        match tokio::fs::remove_file(self.status_path(key)).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err("delete status", e)),
        }
    }

    async fn read_sync_record(&self) -> Result<Option<SyncRecord>, StoreError> {
        let path = self.dir.join(STATUS_ROOT).join("sync.json");
        self.read_json(&path, "read sync record").await
    }

    async fn write_sync_record(&self, record: &SyncRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(record).expect("sync record serialises");
        write_atomic(&self.dir.join(STATUS_ROOT).join("sync.json"), &bytes)
            .await
            .map_err(|e| self.err("write sync record", e))
    }
}
