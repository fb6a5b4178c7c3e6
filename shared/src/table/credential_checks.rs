//! The warmup's credential checks: `TENANT#<tenant>` / `CREDCHECK#<role>`
//! items (provider, ok, the error kind, when, and the config version
//! checked; never the reference, the credential's version or the secret).

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};

use super::{epoch_secs, n, s, until_processed, DynamoError, Table};
use crate::clock::Clock;
use crate::secrets::{CredentialErrorKind, Role};

/// One credential check of the warmup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialCheck {
    pub role: Role,
    /// `None` when the reference resolved to the role's provider.
    pub error: Option<CredentialErrorKind>,
    pub checked_at: SystemTime,
    /// The tenant's `config_version` the check was made for.
    pub config_version: String,
}

/// A check as the table holds it (the error kind is not read back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCheck {
    pub role: Role,
    pub ok: bool,
    pub checked_at: SystemTime,
    pub config_version: Option<String>,
}

impl Table {
    /// Records a tenant's credential checks (`TENANT#<tenant>` /
    /// `CREDCHECK#<role>`: provider, ok, the error kind, when; never the
    /// reference, the version or the secret) and forgets the checks of the
    /// roles in `dropped`, in one batch.
    pub async fn record_credential_checks(
        &self,
        tenant: &str,
        checks: &[CredentialCheck],
        dropped: &[Role],
        clock: &Clock,
    ) -> Result<(), DynamoError> {
        let key = |role: Role| {
            [
                ("pk".to_string(), s(format!("TENANT#{tenant}"))),
                ("sk".to_string(), s(format!("CREDCHECK#{role}"))),
            ]
        };
        let puts = checks.iter().map(|check| {
            let mut item: HashMap<String, AttributeValue> = key(check.role).into();
            item.insert("provider".into(), s(check.role.provider()));
            item.insert("ok".into(), AttributeValue::Bool(check.error.is_none()));
            item.insert("checked_at".into(), n(epoch_secs(check.checked_at)));
            item.insert("config_version".into(), s(&check.config_version));
            if let Some(kind) = check.error {
                item.insert("error".into(), s(kind.to_string()));
            }
            let request = PutRequest::builder().set_item(Some(item)).build()?;
            Ok(WriteRequest::builder().put_request(request).build())
        });
        let deletes = dropped.iter().map(|&role| {
            let request = DeleteRequest::builder()
                .set_key(Some(key(role).into()))
                .build()?;
            Ok(WriteRequest::builder().delete_request(request).build())
        });
        let requests: Vec<WriteRequest> = puts
            .chain(deletes)
            .collect::<Result<_, BuildError>>()
            .map_err(|_| DynamoError::new("BatchWriteItem", "request not built"))?;
        until_processed(clock, "BatchWriteItem", requests, |requests| async move {
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.name, requests)
                .send()
                .await
                .map_err(|e| DynamoError::from_sdk("BatchWriteItem", &e))?;
            Ok(output
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.name))
                .filter(|left| !left.is_empty()))
        })
        .await
    }

    /// The tenant's recorded checks; an unreadable item is left out (its
    /// role is checked again).
    pub async fn credential_checks(&self, tenant: &str) -> Result<Vec<RecordedCheck>, DynamoError> {
        let items: Vec<HashMap<String, AttributeValue>> = self
            .client
            .query()
            .table_name(&self.name)
            .key_condition_expression("pk = :pk AND begins_with(sk, :checks)")
            .expression_attribute_values(":pk", s(format!("TENANT#{tenant}")))
            .expression_attribute_values(":checks", s("CREDCHECK#"))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| DynamoError::from_sdk("Query", &e))?;
        Ok(items.iter().filter_map(recorded_check).collect())
    }
}

fn recorded_check(item: &HashMap<String, AttributeValue>) -> Option<RecordedCheck> {
    let text = |name: &str| item.get(name)?.as_s().ok();
    let role_name = text("sk")?.strip_prefix("CREDCHECK#")?;
    let role = Role::ALL.into_iter().find(|r| r.as_str() == role_name)?;
    let checked_at: u64 = item.get("checked_at")?.as_n().ok()?.parse().ok()?;
    Some(RecordedCheck {
        role,
        ok: *item.get("ok")?.as_bool().ok()?,
        checked_at: UNIX_EPOCH.checked_add(Duration::from_secs(checked_at))?,
        config_version: text("config_version").cloned(),
    })
}
