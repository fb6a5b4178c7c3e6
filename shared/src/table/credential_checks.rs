//! The warmup's credential checks: `TENANT#<tenant>` / `CREDCHECK#<role>`
//! items (provider, ok, the error kind, when; never the reference, the
//! version or the secret).

use std::collections::HashMap;
use std::time::SystemTime;

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
}
