//! The warmup's credential checks: `TENANT#<tenant>` / `CREDCHECK#<role>`
//! items (provider, ok, the error kind, when; never the reference, the
//! version or the secret).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, PutRequest, WriteRequest};

use super::{epoch_secs, n, s, DynamoError, Table};
use crate::clock::Clock;
use crate::retry::{self, Policy, Step};
use crate::secrets::{CredentialErrorKind, Role};

/// Items a busy table left unprocessed are written again, 100 ms doubling.
const UNPROCESSED_RETRY: Policy = Policy {
    attempts: 3,
    base: Duration::from_millis(100),
    cap: Duration::from_secs(2),
    jitter: 0.25,
    give_up_beyond_cap: false,
};

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
        // A batch may come back partly unprocessed when the table is busy.
        let pending = Mutex::new(requests);
        let finished = retry::run(&UNPROCESSED_RETRY, clock, |_| async {
            let requests = std::mem::take(&mut *pending.lock().unwrap_or_else(|e| e.into_inner()));
            if requests.is_empty() {
                return Step::Done(());
            }
            let output = match self
                .client
                .batch_write_item()
                .request_items(&self.name, requests)
                .send()
                .await
            {
                Ok(output) => output,
                Err(e) => return Step::Fail(DynamoError::from_sdk("BatchWriteItem", &e)),
            };
            let left = output
                .unprocessed_items
                .and_then(|mut left| left.remove(&self.name))
                .unwrap_or_default();
            if left.is_empty() {
                return Step::Done(());
            }
            *pending.lock().unwrap_or_else(|e| e.into_inner()) = left;
            Step::retry(DynamoError::new("BatchWriteItem", "items left unprocessed"))
        })
        .await;
        finished.result
    }
}
