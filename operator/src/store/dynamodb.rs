//! `dynamodb://TABLE`: one item per spec document.
//!
//! Table layout (partition key `pk`, a string):
//! - `spec#<Kind>/<name>`: `body` (the document as JSON), `sha256` (of `body`), `origin` (the file
//!   it was synced from), `syncedAt`, `commit`;
//! - `status#<Kind>/<name>`: `body` (the status as JSON);
//! - `meta#sync`: `body` (the last sync record).
//!
//! Changes are picked up from the table's stream (records of `spec#` items only, so a status write
//! never looks like a spec change), with a periodic full scan as the safety net.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TableStatus,
};
use aws_sdk_dynamodb::Client;

use super::{
    sha256_hex, Fingerprint, InitReport, Layout, Listing, Source, SpecStatus, Store, StoreError,
    SyncRecord,
};
use crate::spec::{parse_file, SpecKey};

const PK: &str = "pk";
const SPEC_PREFIX: &str = "spec#";
const STATUS_PREFIX: &str = "status#";
const SYNC_PK: &str = "meta#sync";

pub struct DynamoStore {
    client: Client,
    streams: aws_sdk_dynamodbstreams::Client,
    table: String,
}

impl DynamoStore {
    pub fn new(sdk: &crate::aws::Sdk, table: &str) -> Self {
        DynamoStore {
            client: sdk.dynamodb(),
            streams: sdk.dynamodb_streams(),
            table: table.to_string(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn err<E: std::error::Error>(&self, op: &str, e: E) -> StoreError {
        StoreError::backend(&self.url(), op, DisplayErrorContext(e))
    }

    fn source_from_item(&self, item: &HashMap<String, AttributeValue>) -> Option<Source> {
        let pk = item.get(PK)?.as_s().ok()?;
        let key = pk.strip_prefix(SPEC_PREFIX)?.to_string();
        let body = item
            .get("body")
            .and_then(|b| b.as_s().ok())
            .cloned()
            .unwrap_or_default();
        let origin = item.get("origin").and_then(|o| o.as_s().ok()).cloned();
        // Diagnostics name the item and the file it was synced from; `.json` makes it parse as JSON.
        let label = match origin {
            Some(o) => format!("{}/{key}.json (from {o})", self.url()),
            None => format!("{}/{key}.json", self.url()),
        };
        let parsed = parse_file(&label, body.as_bytes());
        Some(Source {
            key,
            version: sha256_hex(body.as_bytes()),
            parsed,
        })
    }

    async fn get_body(&self, pk: &str, op: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(pk.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err(op, e))?;
        Ok(out
            .item()
            .and_then(|i| i.get("body"))
            .and_then(|b| b.as_s().ok())
            .cloned())
    }

    async fn put_body(&self, pk: &str, body: String, op: &str) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, AttributeValue::S(pk.to_string()))
            .item("body", AttributeValue::S(body))
            .send()
            .await
            .map_err(|e| self.err(op, e))?;
        Ok(())
    }

    /// Every item whose key starts with `prefix`. A full scan; fails whole on any page error.
    async fn scan_prefix(
        &self,
        prefix: &str,
        op: &str,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut out = Vec::new();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression("begins_with(#pk, :p)")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_values(":p", AttributeValue::S(prefix.to_string()))
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.err(op, e))?;
            out.extend(page.items().iter().cloned());
        }
        Ok(out)
    }

    /// Fetch one spec source by key (`Kind/name`); `None` when the item is gone.
    pub async fn fetch_item_source(&self, key: &str) -> Result<Option<Source>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(format!("{SPEC_PREFIX}{key}")))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.err("get", e))?;
        Ok(out.item().and_then(|i| self.source_from_item(i)))
    }

    /// Start following the table's stream from now on.
    pub async fn stream_feed(&self) -> Result<StreamFeed, StoreError> {
        let table = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| self.err("describe table", e))?;
        let arn = table
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| self.err("watch", NoStream(self.table.clone())))?
            .to_string();
        let mut feed = StreamFeed {
            streams: self.streams.clone(),
            stream_arn: arn,
            store_url: self.url(),
            iterators: BTreeMap::new(),
            seen: BTreeSet::new(),
        };
        feed.discover(true).await?;
        Ok(feed)
    }

    async fn wait_active(&self, table: &str) -> Result<(), StoreError> {
        for _ in 0..120 {
            let out = self
                .client
                .describe_table()
                .table_name(table)
                .send()
                .await
                .map_err(|e| self.err("describe table", e))?;
            if out.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err(self.err("init", TimedOut(table.to_string())))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("table `{0}` has no stream; run `ecs-operator init` to enable it")]
struct NoStream(String);

#[derive(Debug, thiserror::Error)]
#[error("table `{0}` did not become ACTIVE within 60 s")]
struct TimedOut(String);

/// Create a table keyed by one string attribute when it does not exist; enable its stream when
/// `stream` is set and it has none. Returns whether it was created.
pub async fn ensure_table(
    client: &Client,
    table: &str,
    key: &str,
    stream: bool,
) -> Result<bool, aws_sdk_dynamodb::Error> {
    match client.describe_table().table_name(table).send().await {
        Ok(out) => {
            let has_stream = out
                .table()
                .and_then(|t| t.stream_specification())
                .map(|s| s.stream_enabled())
                .unwrap_or(false);
            if stream && !has_stream {
                client
                    .update_table()
                    .table_name(table)
                    .stream_specification(stream_spec())
                    .send()
                    .await?;
            }
            Ok(false)
        }
        Err(e)
            if e.as_service_error()
                .map(|s| s.is_resource_not_found_exception())
                .unwrap_or(false) =>
        {
            let mut req = client
                .create_table()
                .table_name(table)
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(key)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .expect("name and type are set"),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(key)
                        .key_type(KeyType::Hash)
                        .build()
                        .expect("name and type are set"),
                );
            if stream {
                req = req.stream_specification(stream_spec());
            }
            match req.send().await {
                Ok(_) => Ok(true),
                Err(e)
                    if e.as_service_error()
                        .map(|s| s.is_resource_in_use_exception())
                        .unwrap_or(false) =>
                {
                    Ok(false)
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn stream_spec() -> StreamSpecification {
    StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::KeysOnly)
        .build()
        .expect("stream_enabled is set")
}

/// The partition key of lease tables created by `init --lease-table`.
pub const LEASE_KEY: &str = "lease";

/// Create the lease table used for leader election when absent. Returns whether it was created.
pub async fn ensure_lease_table(
    sdk: &aws_config::SdkConfig,
    table: &str,
) -> Result<bool, StoreError> {
    let client = Client::new(sdk);
    let created = ensure_table(&client, table, LEASE_KEY, false)
        .await
        .map_err(|e| {
            StoreError::backend(
                &format!("dynamodb://{table}"),
                "create lease table",
                DisplayErrorContext(e),
            )
        })?;
    Ok(created)
}

#[async_trait]
impl Store for DynamoStore {
    fn url(&self) -> String {
        format!("dynamodb://{}", self.table)
    }

    fn layout(&self) -> Layout {
        Layout::Documents
    }

    async fn change_feed(&self) -> Result<Option<Box<dyn super::watch::ChangeFeed>>, StoreError> {
        Ok(Some(Box::new(self.stream_feed().await?)))
    }

    async fn fetch_source(&self, key: &str) -> Result<Option<Source>, StoreError> {
        self.fetch_item_source(key).await
    }

    async fn init(&self) -> Result<InitReport, StoreError> {
        let created = ensure_table(&self.client, &self.table, PK, true)
            .await
            .map_err(|e| self.err("init", e))?;
        self.wait_active(&self.table).await?;
        let mut report = InitReport::default();
        if created {
            report.created.push(self.url());
        } else {
            report.existing.push(self.url());
        }
        Ok(report)
    }

    async fn list(&self) -> Result<Listing, StoreError> {
        let mut listing = Listing::default();
        for item in self.scan_prefix(SPEC_PREFIX, "scan").await? {
            if let Some(source) = self.source_from_item(&item) {
                listing.sources.insert(source.key.clone(), Arc::new(source));
            }
        }
        Ok(listing)
    }

    async fn source_fingerprints(&self) -> Result<BTreeMap<String, Fingerprint>, StoreError> {
        let mut out = BTreeMap::new();
        for item in self.scan_prefix(SPEC_PREFIX, "scan").await? {
            let Some(key) = item
                .get(PK)
                .and_then(|p| p.as_s().ok())
                .and_then(|p| p.strip_prefix(SPEC_PREFIX))
            else {
                continue;
            };
            let body = item
                .get("body")
                .and_then(|b| b.as_s().ok())
                .cloned()
                .unwrap_or_default();
            out.insert(
                key.to_string(),
                Fingerprint::Sha256(sha256_hex(body.as_bytes())),
            );
        }
        Ok(out)
    }

    async fn put_source(&self, key: &str, bytes: &[u8], origin: &str) -> Result<(), StoreError> {
        let body = String::from_utf8(bytes.to_vec()).map_err(|e| self.err("put", e))?;
        let sha = sha256_hex(body.as_bytes());
        self.client
            .put_item()
            .table_name(&self.table)
            .item(PK, AttributeValue::S(format!("{SPEC_PREFIX}{key}")))
            .item("body", AttributeValue::S(body))
            .item("sha256", AttributeValue::S(sha))
            .item("origin", AttributeValue::S(origin.to_string()))
            .item("syncedAt", AttributeValue::S(super::now_rfc3339()))
            .send()
            .await
            .map_err(|e| self.err("put", e))?;
        Ok(())
    }

    async fn delete_source(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(format!("{SPEC_PREFIX}{key}")))
            .send()
            .await
            .map_err(|e| self.err("delete", e))?;
        Ok(())
    }

    async fn read_status(&self, key: &SpecKey) -> Result<Option<SpecStatus>, StoreError> {
        let pk = format!("{STATUS_PREFIX}{key}");
        let Some(body) = self.get_body(&pk, "get status").await? else {
            return Ok(None);
        };
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                store: self.url(),
                key: pk,
                message: e.to_string(),
            })
    }

    async fn list_status(&self) -> Result<Vec<SpecStatus>, StoreError> {
        let mut out = Vec::new();
        for item in self.scan_prefix(STATUS_PREFIX, "scan status").await? {
            let pk = item
                .get(PK)
                .and_then(|p| p.as_s().ok())
                .cloned()
                .unwrap_or_default();
            let body = item
                .get("body")
                .and_then(|b| b.as_s().ok())
                .cloned()
                .unwrap_or_default();
            let status: SpecStatus =
                serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
                    store: self.url(),
                    key: pk,
                    message: e.to_string(),
                })?;
            out.push(status);
        }
        out.sort_by_key(|s| s.key());
        Ok(out)
    }

    async fn write_status(&self, status: &SpecStatus) -> Result<(), StoreError> {
        let body = serde_json::to_string(status).expect("status serialises");
        self.put_body(
            &format!("{STATUS_PREFIX}{}", status.key()),
            body,
            "put status",
        )
        .await
    }

    async fn delete_status(&self, key: &SpecKey) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key(PK, AttributeValue::S(format!("{STATUS_PREFIX}{key}")))
            .send()
            .await
            .map_err(|e| self.err("delete status", e))?;
        Ok(())
    }

    async fn read_sync_record(&self) -> Result<Option<SyncRecord>, StoreError> {
        let Some(body) = self.get_body(SYNC_PK, "get sync record").await? else {
            return Ok(None);
        };
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                store: self.url(),
                key: SYNC_PK.into(),
                message: e.to_string(),
            })
    }

    async fn write_sync_record(&self, record: &SyncRecord) -> Result<(), StoreError> {
        let body = serde_json::to_string(record).expect("sync record serialises");
        self.put_body(SYNC_PK, body, "put sync record").await
    }
}

/// What one poll of the stream found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FeedPoll {
    /// Spec keys (`Kind/name`) whose items were written or removed.
    pub changed: BTreeSet<String>,
    /// The stream lost continuity (an iterator expired or records were trimmed): the caller must
    /// fall back to a full scan.
    pub resync: bool,
}

/// A reader of the table's stream that remembers where it is in every shard.
pub struct StreamFeed {
    streams: aws_sdk_dynamodbstreams::Client,
    stream_arn: String,
    store_url: String,
    /// Open shard id -> next iterator.
    iterators: BTreeMap<String, String>,
    seen: BTreeSet<String>,
}

impl StreamFeed {
    fn err<E: std::error::Error>(&self, op: &str, e: E) -> StoreError {
        StoreError::backend(
            &self.store_url,
            op,
            aws_sdk_dynamodbstreams::error::DisplayErrorContext(e),
        )
    }

    /// Learn the stream's shards. At start, open shards are read from LATEST (the initial full
    /// scan covers what came before); shards that appear later are read from TRIM_HORIZON.
    async fn discover(&mut self, initial: bool) -> Result<(), StoreError> {
        use aws_sdk_dynamodbstreams::types::ShardIteratorType;
        let mut start: Option<String> = None;
        loop {
            let out = self
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.clone())
                .send()
                .await
                .map_err(|e| self.err("describe stream", e))?;
            let Some(desc) = out.stream_description() else {
                break;
            };
            for shard in desc.shards() {
                let Some(id) = shard.shard_id() else { continue };
                if !self.seen.insert(id.to_string()) {
                    continue;
                }
                let open = shard
                    .sequence_number_range()
                    .and_then(|r| r.ending_sequence_number())
                    .is_none();
                if initial && !open {
                    continue;
                }
                let kind = if initial {
                    ShardIteratorType::Latest
                } else {
                    ShardIteratorType::TrimHorizon
                };
                let it = self
                    .streams
                    .get_shard_iterator()
                    .stream_arn(&self.stream_arn)
                    .shard_id(id)
                    .shard_iterator_type(kind)
                    .send()
                    .await
                    .map_err(|e| self.err("get shard iterator", e))?;
                if let Some(it) = it.shard_iterator() {
                    self.iterators.insert(id.to_string(), it.to_string());
                }
            }
            match desc.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_string()),
                None => break,
            }
        }
        Ok(())
    }

    /// Read every shard once. Keys of `spec#` items only; status and sync items are ignored.
    ///
    /// Cancel-safe: each shard's iterator is replaced only after its records were read, so a
    /// poll dropped half-way re-reads some records next time (harmless) and loses none.
    pub async fn poll(&mut self) -> Result<FeedPoll, StoreError> {
        let mut result = FeedPoll::default();
        let mut closed = false;
        for (shard, iterator) in self.iterators.clone() {
            match self
                .streams
                .get_records()
                .shard_iterator(&iterator)
                .limit(1000)
                .send()
                .await
            {
                Ok(out) => {
                    for record in out.records() {
                        let key = record
                            .dynamodb()
                            .and_then(|d| d.keys())
                            .and_then(|k| k.get(PK))
                            .and_then(|v| v.as_s().ok())
                            .and_then(|pk| pk.strip_prefix(SPEC_PREFIX));
                        if let Some(k) = key {
                            result.changed.insert(k.to_string());
                        }
                    }
                    match out.next_shard_iterator() {
                        Some(next) => {
                            self.iterators.insert(shard, next.to_string());
                        }
                        None => {
                            self.iterators.remove(&shard);
                            closed = true;
                        }
                    }
                }
                Err(e) => {
                    let lost = e
                        .as_service_error()
                        .map(|s| {
                            s.is_expired_iterator_exception()
                                || s.is_trimmed_data_access_exception()
                        })
                        .unwrap_or(false);
                    if !lost {
                        return Err(self.err("get records", e));
                    }
                    result.resync = true;
                    self.iterators.remove(&shard);
                    self.seen.remove(&shard);
                }
            }
        }
        if closed || result.resync || self.iterators.is_empty() {
            self.discover(false).await?;
        }
        Ok(result)
    }
}
