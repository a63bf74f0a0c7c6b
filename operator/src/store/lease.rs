//! The lease record of leader election on DynamoDB (`run --lease-table TABLE`).
//!
//! One item per lease in a table keyed by the string attribute `lease` (created by
//! `init --lease-table`, see [`super::dynamodb::ensure_lease_table`]):
//! - `lease`: the lease name, [`lease_name`] of the operator instance;
//! - `holder`: the identity of the replica that holds it; absent once released;
//! - `rv`: the record version (a number), incremented by every write;
//! - `leaseDurationMs`, `renewedAt` (RFC 3339), `releasedAt`: for people reading the table. No
//!   replica compares them with its own clock.
//!
//! Invariant: every write is conditional on the version the writer last saw (and, for renew and
//! release, on naming the writer as holder), so of two racing writers exactly one wins; the other
//! gets DynamoDB's ConditionalCheckFailedException, answered as `Ok(false)` with nothing changed.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use super::dynamodb::LEASE_KEY;
use crate::runtime::leader::{BackendError, LeaseBackend, LeaseRecord};

const HOLDER: &str = "holder";
const VERSION: &str = "rv";

/// Errors of lease calls, other than losing a race. Messages name the table and the lease.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("dynamodb://{table}: lease `{lease}`: {op} failed: {message}")]
    Call {
        table: String,
        lease: String,
        op: &'static str,
        message: String,
    },
    #[error("dynamodb://{table}: lease `{lease}`: malformed item: {reason}")]
    Malformed {
        table: String,
        lease: String,
        reason: String,
    },
}

/// The lease name of an operator instance (the `--instance` value): `ecs-operator/<instance>`.
pub fn lease_name(instance: &str) -> String {
    format!("ecs-operator/{instance}")
}

/// One lease record in a DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoLease {
    client: Client,
    table: String,
    name: String,
}

impl DynamoLease {
    /// The lease `name` (e.g. [`lease_name`]`("prod")`) in `table`.
    pub fn new(sdk: &aws_config::SdkConfig, table: &str, name: &str) -> Self {
        DynamoLease::with_client(Client::new(sdk), table, name)
    }

    pub fn with_client(client: Client, table: &str, name: &str) -> Self {
        DynamoLease {
            client,
            table: table.to_string(),
            name: name.to_string(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn call_err(&self, op: &'static str, message: impl std::fmt::Display) -> LeaseError {
        LeaseError::Call {
            table: self.table.clone(),
            lease: self.name.clone(),
            op,
            message: message.to_string(),
        }
    }

    fn malformed(&self, reason: String) -> LeaseError {
        LeaseError::Malformed {
            table: self.table.clone(),
            lease: self.name.clone(),
            reason,
        }
    }

    /// Whether a conditional write went through: `Ok(false)` when its condition failed.
    fn written<T, E, R>(
        &self,
        op: &'static str,
        result: Result<T, SdkError<E, R>>,
        lost: impl Fn(&E) -> bool,
    ) -> Result<bool, LeaseError>
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(&lost) => Ok(false),
            Err(e) => Err(self.call_err(op, DisplayErrorContext(e))),
        }
    }

    fn parse(&self, item: &HashMap<String, AttributeValue>) -> Result<LeaseRecord, LeaseError> {
        let holder = match item.get(HOLDER) {
            None => None,
            Some(AttributeValue::S(h)) => Some(h.clone()),
            Some(other) => return Err(self.malformed(format!("`{HOLDER}` is {other:?}"))),
        };
        let version = match item.get(VERSION) {
            Some(AttributeValue::N(n)) => n
                .parse()
                .map_err(|_| self.malformed(format!("`{VERSION}` is {n:?}")))?,
            other => return Err(self.malformed(format!("`{VERSION}` is {other:?}"))),
        };
        Ok(LeaseRecord { holder, version })
    }

    async fn get(&self) -> Result<LeaseRecord, LeaseError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(LEASE_KEY, AttributeValue::S(self.name.clone()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.call_err("read", DisplayErrorContext(e)))?;
        match out.item() {
            Some(item) => self.parse(item),
            None => Ok(LeaseRecord::default()),
        }
    }

    /// Write the whole item naming `holder` at `version + 1`, if the item is at `version`
    /// (absent when 0) and, with `must_hold`, already names `holder`.
    async fn put(
        &self,
        op: &'static str,
        holder: &str,
        version: u64,
        must_hold: bool,
        lease_duration: Duration,
    ) -> Result<bool, LeaseError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(LEASE_KEY, AttributeValue::S(self.name.clone()))
            .item(HOLDER, AttributeValue::S(holder.to_string()))
            .item(VERSION, number(version + 1))
            .item("leaseDurationMs", number(lease_duration.as_millis()))
            .item("renewedAt", AttributeValue::S(super::now_rfc3339()));
        req = match (version, must_hold) {
            (0, false) => req
                .condition_expression("attribute_not_exists(#k)")
                .expression_attribute_names("#k", LEASE_KEY),
            (_, false) => req
                .condition_expression("#rv = :rv")
                .expression_attribute_names("#rv", VERSION)
                .expression_attribute_values(":rv", number(version)),
            (_, true) => req
                .condition_expression("#rv = :rv AND #h = :h")
                .expression_attribute_names("#rv", VERSION)
                .expression_attribute_names("#h", HOLDER)
                .expression_attribute_values(":rv", number(version))
                .expression_attribute_values(":h", AttributeValue::S(holder.to_string())),
        };
        let result = req.send().await;
        self.written(
            op,
            result,
            PutItemError::is_conditional_check_failed_exception,
        )
    }

    async fn clear(&self, holder: &str, version: u64) -> Result<bool, LeaseError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key(LEASE_KEY, AttributeValue::S(self.name.clone()))
            .update_expression("REMOVE #h SET #rv = :next, releasedAt = :now")
            .condition_expression("#rv = :rv AND #h = :h")
            .expression_attribute_names("#rv", VERSION)
            .expression_attribute_names("#h", HOLDER)
            .expression_attribute_values(":rv", number(version))
            .expression_attribute_values(":next", number(version + 1))
            .expression_attribute_values(":h", AttributeValue::S(holder.to_string()))
            .expression_attribute_values(":now", AttributeValue::S(super::now_rfc3339()))
            .send()
            .await;
        self.written(
            "release",
            result,
            UpdateItemError::is_conditional_check_failed_exception,
        )
    }
}

fn number(n: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

#[async_trait]
impl LeaseBackend for DynamoLease {
    async fn read(&self) -> Result<LeaseRecord, BackendError> {
        Ok(self.get().await?)
    }

    async fn acquire(
        &self,
        holder: &str,
        expected: u64,
        lease_duration: Duration,
    ) -> Result<bool, BackendError> {
        Ok(self
            .put("acquire", holder, expected, false, lease_duration)
            .await?)
    }

    async fn renew(
        &self,
        holder: &str,
        version: u64,
        lease_duration: Duration,
    ) -> Result<bool, BackendError> {
        Ok(self
            .put("renew", holder, version, true, lease_duration)
            .await?)
    }

    async fn release(&self, holder: &str, version: u64) -> Result<bool, BackendError> {
        Ok(self.clear(holder, version).await?)
    }
}
