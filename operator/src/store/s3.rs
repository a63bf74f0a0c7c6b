//! `s3://BUCKET/PREFIX`: every spec-named object under PREFIX.
//!
//! Status lives at `BUCKET/.ecs-operator/PREFIX/status/<Kind>/<name>.json` and the sync record at
//! `BUCKET/.ecs-operator/PREFIX/sync.json`: beside PREFIX, never under it, so
//! `aws s3 sync specs/ s3://BUCKET/PREFIX/ --delete` never touches them.
//!
//! Change detection lists with ListObjectsV2 and fetches only objects whose ETag changed; an
//! object event from the events queue (README "Events") re-reads its one key instead
//! ([`Store::fetch_source`], no listing).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;

use super::{
    sha256_hex, Fingerprint, InitReport, Layout, Listing, Source, SpecStatus, Store, StoreError,
    SyncRecord, STATUS_ROOT,
};
use crate::spec::{load::is_spec_file_name, parse_file, SpecKey};

/// Object metadata key holding the sha256 of the content, set by `sync`.
const SHA256_META: &str = "sha256";

pub struct S3Store {
    client: Client,
    bucket: String,
    prefix: String,
    region: Option<String>,
}

/// An S3 client for standard SDK settings (path-style addressing with a custom endpoint).
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    crate::aws::Sdk::new(sdk.clone()).s3()
}

impl S3Store {
    pub fn new(sdk: &crate::aws::Sdk, bucket: &str, prefix: &str) -> Self {
        S3Store {
            client: sdk.s3(),
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
            region: sdk.config.region().map(|r| r.to_string()),
        }
    }

    fn err<E: std::error::Error>(&self, op: &str, e: E) -> StoreError {
        StoreError::backend(&self.url(), op, DisplayErrorContext(e))
    }

    fn status_prefix(&self) -> String {
        format!("{STATUS_ROOT}{}status/", self.prefix)
    }

    fn status_key(&self, key: &SpecKey) -> String {
        format!("{}{}/{}.json", self.status_prefix(), key.kind, key.name)
    }

    fn sync_key(&self) -> String {
        format!("{STATUS_ROOT}{}sync.json", self.prefix)
    }

    /// Every object under `prefix` as (key, ETag without quotes). Fails whole on any page error.
    async fn list_objects(
        &self,
        prefix: &str,
        op: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err(op, e))?;
            for obj in page.contents() {
                if let Some(k) = obj.key() {
                    out.push((
                        k.to_string(),
                        obj.e_tag()
                            .unwrap_or_default()
                            .trim_matches('"')
                            .to_string(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Spec objects under the prefix: (key relative to the prefix, ETag). Hidden path segments
    /// are skipped, as in a folder.
    async fn spec_objects(&self) -> Result<Vec<(String, String)>, StoreError> {
        Ok(self
            .list_objects(&self.prefix, "list")
            .await?
            .into_iter()
            .filter_map(|(k, etag)| Some((spec_key(&self.prefix, &k)?, etag)))
            .collect())
    }

    async fn get(&self, key: &str, op: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_with_etag(key, op).await?.map(|(bytes, _)| bytes))
    }

    /// An object's content and ETag (without quotes); `None` when there is no such object.
    async fn get_with_etag(
        &self,
        key: &str,
        op: &str,
    ) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let etag = out
                    .e_tag()
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string();
                let bytes = out.body.collect().await.map_err(|e| self.err(op, e))?;
                Ok(Some((bytes.into_bytes().to_vec(), etag)))
            }
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_no_such_key())
                    .unwrap_or(false) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.err(op, e)),
        }
    }

    async fn put(
        &self,
        key: &str,
        bytes: Vec<u8>,
        content_type: &str,
        op: &str,
    ) -> Result<(), StoreError> {
        let sha = sha256_hex(&bytes);
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .metadata(SHA256_META, sha)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| self.err(op, e))?;
        Ok(())
    }
}

/// The store key (relative to `prefix`) of the object `key` when it is a spec source: under the
/// prefix, a spec file name, no hidden path segment (as in a folder). What listings keep and
/// what object events are turned into.
pub fn spec_key(prefix: &str, key: &str) -> Option<String> {
    let rel = key.strip_prefix(prefix)?;
    let hidden = rel.split('/').any(|s| s.starts_with('.'));
    (!hidden && is_spec_file_name(rel)).then(|| rel.to_string())
}

/// An ETag is the MD5 of the content only for single-part, non-KMS uploads (32 hex digits).
fn is_plain_md5(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

#[async_trait]
impl Store for S3Store {
    fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn layout(&self) -> Layout {
        Layout::Files
    }

    async fn init(&self) -> Result<InitReport, StoreError> {
        let mut report = InitReport::default();
        let label = format!("s3://{}", self.bucket);
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => report.existing.push(label),
            Err(e)
                if e.as_service_error()
                    .map(|s| s.is_not_found())
                    .unwrap_or(false) =>
            {
                let mut req = self.client.create_bucket().bucket(&self.bucket);
                if let Some(region) = self.region.as_deref().filter(|r| *r != "us-east-1") {
                    req = req.create_bucket_configuration(
                        aws_sdk_s3::types::CreateBucketConfiguration::builder()
                            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(
                                region,
                            ))
                            .build(),
                    );
                }
                match req.send().await {
                    Ok(_) => report.created.push(label),
                    Err(e) if e.code() == Some("BucketAlreadyOwnedByYou") => {
                        report.existing.push(label)
                    }
                    Err(e) => return Err(self.err("create bucket", e)),
                }
            }
            Err(e) => return Err(self.err("head bucket", e)),
        }
        Ok(report)
    }

    async fn list(&self) -> Result<Listing, StoreError> {
        self.refresh(&Listing::default()).await
    }

    async fn refresh(&self, previous: &Listing) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        for (key, etag) in self.spec_objects().await? {
            if let Some(old) = previous.sources.get(&key).filter(|old| old.version == etag) {
                listing.sources.insert(key, old.clone());
                continue;
            }
            // Deleted between listing and fetching: it is gone.
            let Some(bytes) = self.get(&format!("{}{key}", self.prefix), "get").await? else {
                continue;
            };
            let label = format!("{}{key}", self.url());
            let parsed = parse_file(&label, &bytes);
            listing.sources.insert(
                key.clone(),
                Arc::new(Source {
                    key,
                    version: etag,
                    parsed,
                }),
            );
        }
        Ok(listing)
    }

    /// One object by its store key, read with GetObject (no listing); `None` when it is gone
    /// or is no spec source.
    async fn fetch_source(&self, key: &str) -> Result<Option<Source>, StoreError> {
        let object = format!("{}{key}", self.prefix);
        if spec_key(&self.prefix, &object).as_deref() != Some(key) {
            return Ok(None);
        }
        let Some((bytes, etag)) = self.get_with_etag(&object, "get").await? else {
            return Ok(None);
        };
        let parsed = parse_file(&format!("{}{key}", self.url()), &bytes);
        Ok(Some(Source {
            key: key.to_string(),
            version: etag,
            parsed,
        }))
    }

    async fn source_fingerprints(&self) -> Result<BTreeMap<String, Fingerprint>, StoreError> {
        let mut out = BTreeMap::new();
        for (key, etag) in self.spec_objects().await? {
            let fp = if is_plain_md5(&etag) {
                Fingerprint::Md5(etag.to_ascii_lowercase())
            } else {
                // Multipart or KMS: the ETag is no content hash; use the sha256 sync stored.
                let head = self
                    .client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(format!("{}{key}", self.prefix))
                    .send()
                    .await
                    .map_err(|e| self.err("head", e))?;
                match head.metadata().and_then(|m| m.get(SHA256_META)) {
                    Some(sha) => Fingerprint::Sha256(sha.clone()),
                    None => Fingerprint::Unknown,
                }
            };
            out.insert(key, fp);
        }
        Ok(out)
    }

    async fn put_source(&self, key: &str, bytes: &[u8], _origin: &str) -> Result<(), StoreError> {
        let content_type = if key.to_ascii_lowercase().ends_with(".json") {
            "application/json"
        } else {
            "application/yaml"
        };
        self.put(
            &format!("{}{key}", self.prefix),
            bytes.to_vec(),
            content_type,
            "put",
        )
        .await
    }

    async fn delete_source(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(format!("{}{key}", self.prefix))
            .send()
            .await
            .map_err(|e| self.err("delete", e))?;
        Ok(())
    }

    async fn read_status(&self, key: &SpecKey) -> Result<Option<SpecStatus>, StoreError> {
        let k = self.status_key(key);
        let Some(bytes) = self.get(&k, "get status").await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                store: self.url(),
                key: k,
                message: e.to_string(),
            })
    }

    async fn list_status(&self) -> Result<Vec<SpecStatus>, StoreError> {
        let mut out = Vec::new();
        for (k, _) in self
            .list_objects(&self.status_prefix(), "list status")
            .await?
        {
            let Some(bytes) = self.get(&k, "get status").await? else {
                continue;
            };
            let status: SpecStatus =
                serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                    store: self.url(),
                    key: k.clone(),
                    message: e.to_string(),
                })?;
            out.push(status);
        }
        out.sort_by_key(|s| s.key());
        Ok(out)
    }

    async fn write_status(&self, status: &SpecStatus) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(status).expect("status serialises");
        self.put(
            &self.status_key(&status.key()),
            bytes,
            "application/json",
            "put status",
        )
        .await
    }

    async fn delete_status(&self, key: &SpecKey) -> Result<(), StoreError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.status_key(key))
            .send()
            .await
            .map_err(|e| self.err("delete status", e))?;
        Ok(())
    }

    async fn read_sync_record(&self) -> Result<Option<SyncRecord>, StoreError> {
        let k = self.sync_key();
        let Some(bytes) = self.get(&k, "get sync record").await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                store: self.url(),
                key: k,
                message: e.to_string(),
            })
    }

    async fn write_sync_record(&self, record: &SyncRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec_pretty(record).expect("sync record serialises");
        self.put(
            &self.sync_key(),
            bytes,
            "application/json",
            "put sync record",
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_spec_files_under_the_prefix_are_spec_keys() {
        let p = "team/specs/";
        assert_eq!(
            spec_key(p, "team/specs/service-web.yaml").as_deref(),
            Some("service-web.yaml")
        );
        assert_eq!(
            spec_key(p, "team/specs/prod/cluster.yml").as_deref(),
            Some("prod/cluster.yml")
        );
        assert_eq!(spec_key(p, "team/specs/README.md"), None);
        assert_eq!(spec_key(p, "team/specs/.git/x.yaml"), None);
        assert_eq!(
            spec_key(p, ".ecs-operator/team/specs/status/ServiceSpec/web.json"),
            None
        );
        assert_eq!(spec_key(p, "other/service-web.yaml"), None);
    }
}
