//! A job's two writes, each one `TransactWriteItems`: its claim together with its resource's
//! lock (and, for a fresh job in enforce mode, one enforcement counted on its breaker), and its
//! outcome together with its audit record and the lock's release (and the count given back
//! when nothing was enforced). Either every item of one is written or none is, so a worker
//! killed between two calls leaves nothing half done, and the conditions of each item are the
//! ones the separate writes had.

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
    BreakerLimit, Job, JobStatus, Reservation, StateError, Store, Update, claim_item, claim_update,
    finish_update, job_from_item, job_item, lock_id, n, s,
};
use crate::cloud::{CloudError, classify};

/// Whether a lock write takes the lock (free, expired or this owner's) or renews this owner's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LockWrite {
    Take,
    Renew,
}

/// What claiming a job with its resource's lock came to. Only `Won` wrote anything.
#[derive(Debug)]
pub enum LockedClaim {
    /// The resource is locked and the job claimed, by this worker: the job as it was before
    /// (when it was there), and the enforcement counted against the breaker in the same write.
    Won(Option<Box<Job>>, Option<Reservation>),
    /// Another job holds the resource's lock.
    ResourceHeld,
    /// The job ended already, or waits for an approval: the delivery is a duplicate. The
    /// resource was not locked.
    Done(Box<Job>),
    /// Another worker holds a live lease on the job. The resource was not locked.
    Busy,
}

/// A job's audit record as writes for its outcome's transaction: the record, and its anchor
/// when one is due.
#[derive(Debug, Clone)]
pub struct AuditPuts {
    pub record: Put,
    pub anchor: Option<Put>,
}

/// What writing a job's outcome with its audit record came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// Outcome, audit record and (when one was given) the release of the lock are written,
    /// and the record's anchor when `anchored`.
    Written { anchored: bool },
    /// The job's lease is no longer this worker's: nothing was written.
    LeaseLost,
    /// The audit record's place in its chain is taken: nothing was written. An earlier try of
    /// this very transaction may have landed before its answer was lost; the caller checks.
    AuditTaken,
}

/// How a job's outcome is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobWrite {
    /// The job was new when this worker claimed it, so its item holds only what the claim
    /// wrote, and no one else writes a job under another's lease: the outcome is written as
    /// the whole item (a Put, without the lease).
    Whole,
    /// The item holds an earlier run's fields too (an approval, who asked for a retry): the
    /// outcome writes only what the job decided (an Update).
    Changes,
}

/// What writing a change together with its audit record, in one transaction, came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The change and its record are written.
    Written,
    /// The change's own condition does not hold: nothing was written.
    Refused,
    /// The record's place in its chain is taken: nothing was written. An earlier try of this
    /// very transaction may have landed before its answer was lost; the caller checks.
    AuditTaken,
}

/// How many times a transaction that met another transaction on one of its items is tried.
const TRIES: usize = 5;

/// The reason DynamoDB gives for an item another transaction was writing at the same time.
const CONFLICT: &str = "TransactionConflict";

/// The reasons for a cancelled item that pass with time: another transaction writing it, and
/// the table's or account's throughput spent.
const TRANSIENT: [&str; 4] = [
    CONFLICT,
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "RequestLimitExceeded",
];

/// The waits between the tries of a transaction that met another one on one of its items, or
/// was throttled: exponential from 10 ms, with jitter, at most 200 ms, so that two writers of
/// one item (two workers anchoring, a worker and an operator on one job) do not meet again at
/// once. One wait fewer than [`TRIES`]: no wait follows the last try.
struct Pauses {
    waits: backon::ExponentialBackoff,
    /// The throttling reason of the last cancellation, when it had one.
    throttled: Option<String>,
}

impl Pauses {
    fn new() -> Pauses {
        use backon::BackoffBuilder;
        Pauses {
            waits: backon::ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(10))
                .with_max_delay(Duration::from_millis(200))
                .with_jitter()
                .with_max_times(TRIES - 1)
                .build(),
            throttled: None,
        }
    }

    /// The reason codes of a cancelled transaction, or the error it is. A cancellation's
    /// throttling reason is kept for [`Pauses::gave_up`].
    fn cancelled(
        &mut self,
        e: SdkError<TransactWriteItemsError, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> Result<Vec<CancellationReason>, StateError> {
        const CALL: &str = "dynamodb:TransactWriteItems";
        if let SdkError::ServiceError(se) = &e
            && let TransactWriteItemsError::TransactionCanceledException(t) = se.err()
        {
            let reasons = t.cancellation_reasons().to_vec();
            self.saw(&reasons);
            return Ok(reasons);
        }
        Err(classify(CALL, e).into())
    }

    /// Keeps the throttling reason of a cancellation (`reasons`), if it has one.
    fn saw(&mut self, reasons: &[CancellationReason]) {
        self.throttled = reasons
            .iter()
            .filter_map(|r| r.code())
            .find(|c| *c != CONFLICT && TRANSIENT.contains(c))
            .map(str::to_string);
    }

    /// The error of a transaction (`what`) still cancelled after its last try: throttled
    /// when the last cancellation was (worth a slower pace, not a fresh read), a conflict
    /// otherwise.
    fn gave_up(&self, what: String) -> StateError {
        match &self.throttled {
            Some(reason) => StateError::Store(CloudError::Service {
                call: "dynamodb:TransactWriteItems",
                code: "ThrottlingException".into(),
                message: format!("{what}: still throttled ({reason}) after {TRIES} tries"),
                status: None,
            }),
            None => StateError::Conflict(what),
        }
    }

    /// Waits before the next try when an item of the cancelled transaction (`reasons`) met
    /// another transaction or was throttled; a cancellation for any other reason is tried
    /// again at once.
    async fn after(&mut self, reasons: &[CancellationReason]) {
        if let Some(wait) = self.next(reasons) {
            tokio::time::sleep(wait).await;
        }
    }

    fn next(&mut self, reasons: &[CancellationReason]) -> Option<Duration> {
        if reasons
            .iter()
            .any(|r| r.code().is_some_and(|c| TRANSIENT.contains(&c)))
        {
            self.waits.next()
        } else {
            None
        }
    }
}

fn code(reasons: &[CancellationReason], i: usize) -> &str {
    reasons.get(i).and_then(|r| r.code()).unwrap_or("None")
}

const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// A transaction item the SDK refused to build (a required field missing): a bug here.
pub(super) fn built<T>(r: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, StateError> {
    r.map_err(|e| StateError::Corrupt(format!("a transaction item cannot be built: {e}")))
}

/// A Put as one item of a transaction.
pub(super) fn tx_put(
    put: aws_sdk_dynamodb::types::builders::PutBuilder,
) -> Result<TransactWriteItem, StateError> {
    Ok(TransactWriteItem::builder()
        .put(built(put.build())?)
        .build())
}

/// An Update as one item of a transaction.
pub(super) fn tx_update(
    update: aws_sdk_dynamodb::types::builders::UpdateBuilder,
) -> Result<TransactWriteItem, StateError> {
    Ok(TransactWriteItem::builder()
        .update(built(update.build())?)
        .build())
}

/// A Delete as one item of a transaction.
pub(super) fn tx_delete(
    delete: aws_sdk_dynamodb::types::builders::DeleteBuilder,
) -> Result<TransactWriteItem, StateError> {
    Ok(TransactWriteItem::builder()
        .delete(built(delete.build())?)
        .build())
}

impl Store {
    /// The conditional update of job `job_id` in a transaction: `u` under `condition`.
    pub(super) fn job_update(
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

    /// The Put that takes (`Take`) or renews (`Renew`) `owner`'s lock on `key` for `lease`:
    /// alone in [`Store::lock_resource`] and [`Store::renew_lock`], with the claim in
    /// [`Store::claim_locked`]. A renewal extends only a lock that is there and still this
    /// owner's (one released or taken over meanwhile is not taken again). Lock records are
    /// short-lived: a TTL on `expires_at` may expire them.
    pub(super) fn lock_write(
        &self,
        key: &str,
        owner: &str,
        lease: Duration,
        now: i64,
        write: LockWrite,
    ) -> Result<Put, StateError> {
        let condition = match write {
            LockWrite::Take => "attribute_not_exists(#id) OR #until < :now OR #owner = :me",
            LockWrite::Renew => "attribute_exists(#id) AND #owner = :me AND #until >= :now",
        };
        let until = now + lease.as_secs().max(1) as i64;
        built(
            Put::builder()
                .table_name(&self.names.jobs)
                .item("id", s(lock_id(key)))
                .item("resource_key", s(key))
                .item("lease_owner", s(owner))
                .item("lease_until", n(until))
                .item("expires_at", n(until + 86_400))
                .condition_expression(condition)
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
    ///
    /// With `breaker`, a fresh job's claim also counts one enforcement against it, unless it is
    /// full: the plan is counted before it is made, and given back by [`Store::finish_recorded`]
    /// when it is not enforced. A job claimed again is not counted here (it may run under an
    /// approval, which the breaker does not count).
    pub async fn claim_locked(
        &self,
        lock_key: &str,
        lock_owner: &str,
        job: &Job,
        owner: &str,
        lease: Duration,
        breaker: Option<&BreakerLimit>,
    ) -> Result<LockedClaim, StateError> {
        // What the job was when last seen: None until a claim finds it there.
        let mut seen: Option<HashMap<String, AttributeValue>> = None;
        let mut held = match breaker {
            Some(b) => Some(self.breaker_held(&b.remediation, &b.account).await),
            None => None,
        };
        let mut pauses = Pauses::new();
        for _ in 0..TRIES {
            let now = Utc::now();
            let reserve = match (breaker, held.as_mut(), &seen) {
                (Some(b), Some(held), None) => self.breaker_reserve(held, b, now.timestamp()).await,
                _ => None,
            };
            let claim = match &seen {
                // A job not there yet is written whole: a Put does what the Update below does
                // to an absent item.
                None => tx_put(
                    Put::builder()
                        .table_name(&self.names.jobs)
                        .set_item(Some(claim_item(job, owner, lease, now)))
                        .condition_expression("attribute_not_exists(#id)")
                        .expression_attribute_names("#id", "id")
                        .return_values_on_condition_check_failure(
                            ReturnValuesOnConditionCheckFailure::AllOld,
                        ),
                )?,
                Some(item) => {
                    let mut u = claim_update(job, owner, lease, now);
                    let mut parts = Vec::new();
                    for attr in ["status", "attempts", "updated_at", "lease_until"] {
                        let name = u.name(attr);
                        parts.push(match item.get(attr) {
                            Some(v) => format!("{name} = {}", u.value(v.clone())),
                            None => format!("attribute_not_exists({name})"),
                        });
                    }
                    let condition = parts.join(" AND ");
                    tx_update(
                        self.job_update(&job.id, u, condition)
                            .return_values_on_condition_check_failure(
                                ReturnValuesOnConditionCheckFailure::AllOld,
                            ),
                    )?
                }
            };
            let lock = self.lock_write(
                lock_key,
                lock_owner,
                lease,
                now.timestamp(),
                LockWrite::Take,
            )?;
            let mut call = self
                .ddb
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(lock).build())
                .transact_items(claim);
            if let Some(r) = &reserve {
                call = call.transact_items(TransactWriteItem::builder().put(r.put.clone()).build());
            }
            let reasons = match call.send().await {
                Ok(_) => {
                    let previous = match &seen {
                        Some(item) => Some(Box::new(job_from_item(item)?)),
                        None => None,
                    };
                    let reserved = match (reserve, breaker, held.as_mut()) {
                        (Some(r), Some(b), Some(held)) => {
                            **held = Some(r.item);
                            Some(Reservation {
                                remediation: b.remediation.clone(),
                                account: b.account.clone(),
                                at: now.timestamp(),
                            })
                        }
                        _ => None,
                    };
                    return Ok(LockedClaim::Won(previous, reserved));
                }
                Err(e) => pauses.cancelled(e)?,
            };
            if reserve.is_some() && code(&reasons, 2) != "None" {
                // The breaker item changed since this process last saw it: read it again.
                if let Some(held) = held.as_mut() {
                    **held = None;
                }
            }
            if code(&reasons, 0) == CONDITION_FAILED {
                return Ok(LockedClaim::ResourceHeld);
            }
            match code(&reasons, 1) {
                CONDITION_FAILED => {}
                // Another transaction was writing one of the items: try again.
                _ => {
                    pauses.after(&reasons).await;
                    continue;
                }
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
        Err(pauses.gave_up(format!("the claim of job {}", job.id)))
    }

    /// Appends an audit record (`record`: the Put that appends it to its chain) and makes
    /// `change` (a conditional write of a setting, an exemption or a job's decision) in one
    /// transaction: both are written or neither is, so a process killed between two calls
    /// cannot leave a change off the record.
    pub async fn write_recorded(
        &self,
        record: Put,
        change: TransactWriteItem,
    ) -> Result<Recorded, StateError> {
        let mut pauses = Pauses::new();
        for _ in 0..TRIES {
            let call = self
                .ddb
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().put(record.clone()).build())
                .transact_items(change.clone());
            let reasons = match call.send().await {
                Ok(_) => return Ok(Recorded::Written),
                Err(e) => pauses.cancelled(e)?,
            };
            if code(&reasons, 0) == CONDITION_FAILED {
                return Ok(Recorded::AuditTaken);
            }
            if code(&reasons, 1) == CONDITION_FAILED {
                return Ok(Recorded::Refused);
            }
            // Another transaction was writing one of the items: try again.
            pauses.after(&reasons).await;
        }
        Err(pauses.gave_up("a change and its audit record".into()))
    }

    /// Writes a job's outcome, its audit record (`audit`: the Put that appends it to its chain,
    /// and the one that anchors it, when an anchor is due) and, when given, the release of the
    /// lock `(key, lock owner)`, in one transaction, if `owner` still holds the job's lease. A
    /// lock no longer this owner's (its lease ran out and another job took it) is not released:
    /// the outcome and record are written without it, as they are without an anchor another
    /// writer got ahead of. `release`, an enforcement the claim counted that was not made, is
    /// given back to its breaker in the same write. `write` says whether the job's item is
    /// written whole or only what the job decided.
    pub async fn finish_recorded(
        &self,
        job: &Job,
        owner: &str,
        write: JobWrite,
        audit: AuditPuts,
        unlock: Option<(&str, &str)>,
        release: Option<&Reservation>,
    ) -> Result<Finished, StateError> {
        /// What each item of the transaction is, in order.
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum Part {
            Record,
            Outcome,
            Unlock,
            Anchor,
            Breaker,
        }
        let AuditPuts { record, mut anchor } = audit;
        // The job's own write is the same on every try.
        let outcome = match write {
            JobWrite::Whole => tx_put(
                Put::builder()
                    .table_name(&self.names.jobs)
                    .set_item(Some(job_item(job)))
                    .condition_expression("#owner = :me")
                    .expression_attribute_names("#owner", "lease_owner")
                    .expression_attribute_values(":me", s(owner)),
            )?,
            JobWrite::Changes => {
                let (u, condition) = finish_update(job, owner);
                tx_update(self.job_update(&job.id, u, condition))?
            }
        };
        let mut unlock = unlock;
        let mut held = match release {
            Some(r) => Some(self.breaker_held(&r.remediation, &r.account).await),
            None => None,
        };
        let mut pauses = Pauses::new();
        for _ in 0..TRIES {
            let give_back = match (release, held.as_mut()) {
                // Unreadable, the enforcement stays counted: the breaker errs towards tripping.
                (Some(r), Some(held)) => self.breaker_release(held, r).await.ok().flatten(),
                _ => None,
            };
            let mut items = vec![
                (
                    Part::Record,
                    TransactWriteItem::builder().put(record.clone()).build(),
                ),
                (Part::Outcome, outcome.clone()),
            ];
            if let Some((key, lock_owner)) = unlock {
                let delete = tx_delete(
                    Delete::builder()
                        .table_name(&self.names.jobs)
                        .key("id", s(lock_id(key)))
                        .condition_expression("#owner = :me")
                        .expression_attribute_names("#owner", "lease_owner")
                        .expression_attribute_values(":me", s(lock_owner)),
                )?;
                items.push((Part::Unlock, delete));
            }
            if let Some(a) = &anchor {
                items.push((
                    Part::Anchor,
                    TransactWriteItem::builder().put(a.clone()).build(),
                ));
            }
            if let Some(g) = &give_back {
                items.push((
                    Part::Breaker,
                    TransactWriteItem::builder().put(g.put.clone()).build(),
                ));
            }
            let parts: Vec<Part> = items.iter().map(|(p, _)| *p).collect();
            let call = self
                .ddb
                .transact_write_items()
                .set_transact_items(Some(items.into_iter().map(|(_, i)| i).collect()));
            let reasons = match call.send().await {
                Ok(_) => {
                    if let (Some(g), Some(held)) = (give_back, held.as_mut()) {
                        **held = Some(g.item);
                    }
                    return Ok(Finished::Written {
                        anchored: anchor.is_some(),
                    });
                }
                Err(e) => pauses.cancelled(e)?,
            };
            let failed = |part| {
                parts
                    .iter()
                    .position(|p| *p == part)
                    .is_some_and(|i| code(&reasons, i) == CONDITION_FAILED)
            };
            if failed(Part::Record) {
                return Ok(Finished::AuditTaken);
            }
            if failed(Part::Outcome) {
                return Ok(Finished::LeaseLost);
            }
            if failed(Part::Unlock) {
                // Someone else took the lock over after its lease ran out: not ours to release.
                unlock = None;
            }
            if failed(Part::Anchor) {
                // Another writer appended to the anchor chain first: the anchor is made later.
                anchor = None;
            }
            if let Some(i) = parts.iter().position(|p| *p == Part::Breaker)
                && code(&reasons, i) != "None"
                && let Some(held) = held.as_mut()
            {
                // The breaker item changed since this process last saw it: read it again.
                **held = None;
            }
            pauses.after(&reasons).await;
        }
        Err(pauses.gave_up(format!("the outcome of job {}", job.id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|c| CancellationReason::builder().code(*c).build())
            .collect()
    }

    #[test]
    fn a_transaction_that_met_another_waits_longer_each_time_and_not_for_ever() {
        let met = reasons(&["None", CONFLICT]);
        let mut pauses = Pauses::new();
        let waits: Vec<Duration> = std::iter::from_fn(|| pauses.next(&met)).collect();
        // A wait between two tries, none after the last.
        assert_eq!(waits.len(), TRIES - 1, "{waits:?}");
        for w in &waits {
            // Jitter adds up to the delay itself.
            assert!(
                *w >= Duration::from_millis(10) && *w <= Duration::from_millis(400),
                "{waits:?}"
            );
        }
        assert!(waits.last() > waits.first(), "{waits:?}");
    }

    #[test]
    fn a_transaction_refused_for_another_reason_is_tried_again_at_once() {
        let mut pauses = Pauses::new();
        assert_eq!(pauses.next(&reasons(&[CONDITION_FAILED, "None"])), None);
        assert_eq!(pauses.next(&[]), None);
        // Those tries took nothing from the waits a conflict gets.
        let met = reasons(&[CONFLICT]);
        assert_eq!(std::iter::from_fn(|| pauses.next(&met)).count(), TRIES - 1);
    }

    #[test]
    fn a_transaction_given_up_on_says_whether_it_was_throttled_or_met_another() {
        let mut pauses = Pauses::new();
        pauses.saw(&reasons(&["None", CONFLICT]));
        assert!(matches!(
            pauses.gave_up("the claim of job j".into()),
            StateError::Conflict(w) if w == "the claim of job j"
        ));
        // Throttled on the last try: a throttled store, to be tried later at a slower pace.
        pauses.saw(&reasons(&[CONFLICT, "ProvisionedThroughputExceeded"]));
        let e = pauses.gave_up("the outcome of job j".into());
        assert!(
            matches!(&e, StateError::Store(c) if c.throttled() && c.retryable()),
            "{e:?}"
        );
        assert!(e.to_string().contains("the outcome of job j"), "{e}");
        assert!(
            e.to_string().contains("ProvisionedThroughputExceeded"),
            "{e}"
        );
        // Only the last cancellation counts.
        pauses.saw(&reasons(&[CONDITION_FAILED, CONFLICT]));
        assert!(matches!(
            pauses.gave_up("x".into()),
            StateError::Conflict(_)
        ));
    }

    #[test]
    fn a_throttled_transaction_waits_too() {
        for code in ["ThrottlingError", "ProvisionedThroughputExceeded"] {
            assert!(Pauses::new().next(&reasons(&["None", code])).is_some());
        }
        assert_eq!(Pauses::new().next(&reasons(&["ValidationError"])), None);
    }
}
