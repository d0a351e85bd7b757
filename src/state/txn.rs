//! A job's two writes, each one `TransactWriteItems`: its claim together with its resource's
//! lock, and its outcome together with its audit record and the lock's release. Either every
//! item of one is written or none is, so a worker killed between two calls leaves nothing
//! half done, and the conditions of each item are the ones the separate writes had.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, Put, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update as TxUpdate,
};
use chrono::Utc;

use super::{
    Job, JobStatus, StateError, Store, Update, claim_update, finish_update, job_from_item, lock_id,
    n, s,
};
use crate::cloud::classify;

/// What claiming a job with its resource's lock came to. Only `Won` wrote anything.
#[derive(Debug)]
pub enum LockedClaim {
    /// The resource is locked and the job claimed, by this worker.
    Won(Option<Box<Job>>),
    /// Another job holds the resource's lock.
    ResourceHeld,
    /// The job ended already, or waits for an approval: the delivery is a duplicate. The
    /// resource was not locked.
    Done(Box<Job>),
    /// Another worker holds a live lease on the job. The resource was not locked.
    Busy,
}

/// What writing a job's outcome with its audit record came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Outcome, audit record and (when one was given) the release of the lock are written.
    Written,
    /// The job's lease is no longer this worker's: nothing was written.
    LeaseLost,
    /// The audit record's place in its chain is taken: nothing was written. An earlier try of
    /// this very transaction may have landed before its answer was lost; the caller checks.
    AuditTaken,
}

/// How many times a transaction that met another transaction on one of its items is tried.
const TRIES: usize = 5;

/// The reason codes of a cancelled transaction, or the error it is.
fn cancelled(
    call: &'static str,
    e: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
) -> Result<Vec<CancellationReason>, StateError> {
    if let SdkError::ServiceError(se) = &e
        && let TransactWriteItemsError::TransactionCanceledException(t) = se.err()
    {
        return Ok(t.cancellation_reasons().to_vec());
    }
    Err(classify(call, e).into())
}

fn code(reasons: &[CancellationReason], i: usize) -> &str {
    reasons.get(i).and_then(|r| r.code()).unwrap_or("None")
}

const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// A transaction item the SDK refused to build (a required field missing): a bug here.
fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StateError> {
    r.map_err(|e| StateError::Corrupt(format!("a transaction item cannot be built: {e}")))
}

impl Store {
    /// The conditional update of job `job_id` in a transaction: `u` under `condition`.
    fn job_update(
        &self,
        job_id: &str,
        u: Update,
        condition: String,
    ) -> aws_sdk_dynamodb::types::builders::UpdateBuilder {
        TxUpdate::builder()
            .table_name(&self.names.jobs)
            .key("id", s(job_id))
            .update_expression(u.expression())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
    }

    /// The Put that takes the lock on `key` for `owner` (or renews this owner's own): alone in
    /// [`Store::lock_resource`], with the claim in [`Store::claim_locked`]. Lock records are
    /// short-lived: a TTL on `expires_at` may expire them.
    pub(super) fn lock_put(
        &self,
        key: &str,
        owner: &str,
        lease: Duration,
        now: i64,
    ) -> Result<Put, StateError> {
        let until = now + lease.as_secs().max(1) as i64;
        built(
            Put::builder()
                .table_name(&self.names.jobs)
                .item("id", s(lock_id(key)))
                .item("resource_key", s(key))
                .item("lease_owner", s(owner))
                .item("lease_until", n(until))
                .item("expires_at", n(until + 86_400))
                .condition_expression("attribute_not_exists(#id) OR #until < :now OR #owner = :me")
                .expression_attribute_names("#id", "id")
                .expression_attribute_names("#until", "lease_until")
                .expression_attribute_names("#owner", "lease_owner")
                .expression_attribute_values(":now", n(now))
                .expression_attribute_values(":me", s(owner))
                .build(),
        )
    }

    /// Locks the resource `lock_key` for `lock_owner` and claims `job` for `owner`, in one
    /// transaction. The claim's condition is the one [`Store::claim`] has: a job not there yet,
    /// or one that ended without effect, was approved, or whose lease ran out. A job already
    /// there is claimed on exactly the version read (its status, attempts and last update), so
    /// the job returned as the previous one is the one the claim replaced.
    pub async fn claim_locked(
        &self,
        lock_key: &str,
        lock_owner: &str,
        job: &Job,
        owner: &str,
        lease: Duration,
    ) -> Result<LockedClaim, StateError> {
        // What the job was when last seen: None until a claim finds it there.
        let mut seen: Option<HashMap<String, AttributeValue>> = None;
        for _ in 0..TRIES {
            let now = Utc::now();
            let mut u = claim_update(job, owner, lease, now);
            let condition = match &seen {
                None => format!("attribute_not_exists({})", u.name("id")),
                Some(item) => {
                    let mut parts = Vec::new();
                    for attr in ["status", "attempts", "updated_at", "lease_until"] {
                        let name = u.name(attr);
                        parts.push(match item.get(attr) {
                            Some(v) => format!("{name} = {}", u.value(v.clone())),
                            None => format!("attribute_not_exists({name})"),
                        });
                    }
                    parts.join(" AND ")
                }
            };
            let claim = built(
                self.job_update(&job.id, u, condition)
                    .return_values_on_condition_check_failure(
                        ReturnValuesOnConditionCheckFailure::AllOld,
                    )
                    .build(),
            )?;
            let lock = self.lock_put(lock_key, lock_owner, lease, now.timestamp())?;
            let result = self
                .ddb
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(lock).build())
                .transact_items(TransactWriteItem::builder().update(claim).build())
                .send()
                .await;
            let reasons = match result {
                Ok(_) => {
                    let previous = match &seen {
                        Some(item) => Some(Box::new(job_from_item(item)?)),
                        None => None,
                    };
                    return Ok(LockedClaim::Won(previous));
                }
                Err(e) => cancelled("dynamodb:TransactWriteItems", e)?,
            };
            if code(&reasons, 0) == CONDITION_FAILED {
                return Ok(LockedClaim::ResourceHeld);
            }
            match code(&reasons, 1) {
                CONDITION_FAILED => {}
                // Another transaction was writing one of the items: try again.
                _ => continue,
            }
            let existing = match reasons.get(1).and_then(|r| r.item()) {
                Some(item) if !item.is_empty() => item.clone(),
                // Gone since it was seen: a fresh claim.
                _ => {
                    seen = None;
                    continue;
                }
            };
            let found = job_from_item(&existing)?;
            let expired = super::get_n(&existing, "lease_until")
                .is_some_and(|until| (until as i64) < Utc::now().timestamp());
            if found.status.claimable() || (found.status == JobStatus::InProgress && expired) {
                seen = Some(existing);
                continue;
            }
            return Ok(if found.status == JobStatus::InProgress {
                LockedClaim::Busy
            } else {
                LockedClaim::Done(Box::new(found))
            });
        }
        Err(StateError::Conflict(format!("the claim of job {}", job.id)))
    }

    /// Writes a job's outcome, its audit record (`audit`, the Put that appends it to its
    /// chain) and, when given, the release of the lock `(key, lock owner)`, in one transaction,
    /// if `owner` still holds the job's lease. A lock no longer this owner's (its lease ran out
    /// and another job took it) is not released: the outcome and record are written without it.
    pub async fn finish_recorded(
        &self,
        job: &Job,
        owner: &str,
        audit: Put,
        unlock: Option<(&str, &str)>,
    ) -> Result<Finished, StateError> {
        let mut unlock = unlock;
        for _ in 0..TRIES {
            let (u, condition) = finish_update(job, owner);
            let outcome = built(self.job_update(&job.id, u, condition).build())?;
            let mut call = self
                .ddb
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(audit.clone()).build())
                .transact_items(TransactWriteItem::builder().update(outcome).build());
            if let Some((key, lock_owner)) = unlock {
                let release = built(
                    Delete::builder()
                        .table_name(&self.names.jobs)
                        .key("id", s(lock_id(key)))
                        .condition_expression("#owner = :me")
                        .expression_attribute_names("#owner", "lease_owner")
                        .expression_attribute_values(":me", s(lock_owner))
                        .build(),
                )?;
                call = call.transact_items(TransactWriteItem::builder().delete(release).build());
            }
            let reasons = match call.send().await {
                Ok(_) => return Ok(Finished::Written),
                Err(e) => cancelled("dynamodb:TransactWriteItems", e)?,
            };
            if code(&reasons, 0) == CONDITION_FAILED {
                return Ok(Finished::AuditTaken);
            }
            if code(&reasons, 1) == CONDITION_FAILED {
                return Ok(Finished::LeaseLost);
            }
            if code(&reasons, 2) == CONDITION_FAILED {
                // Someone else took the lock over after its lease ran out: not ours to release.
                unlock = None;
            }
        }
        Err(StateError::Conflict(format!(
            "the outcome of job {}",
            job.id
        )))
    }
}
