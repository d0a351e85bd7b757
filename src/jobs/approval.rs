//! Approve or reject a pending plan, or run a job again.
//!
//! An approval binds the plan hash the operator saw: the worker re-reads the resource, re-plans,
//! and applies only when the plan still has that hash. An approval is refused when the stored
//! plan does not hash to the stored hash (the plan shown is then not the plan bound). A plan that
//! waited longer than the approval time-to-live expires instead of being approved, and an
//! approval not executed within that time-to-live expires too (the worker's gate).

use std::time::Duration;

use crate::audit::AuditWriter;
use crate::audit::Record;
use crate::clock::now_text;
use crate::reconcile::{approval_expired, expire};
use crate::state::{Job, JobStatus, Store};

use super::{ControlQueue, JobError, find};

/// An operator's decision on a pending plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Apply the plan; with `plan_hash`, only if the pending plan has that sha256 (a prefix of
    /// at least 12 characters).
    Approve {
        reason: Option<String>,
        plan_hash: Option<String>,
    },
    /// Never apply the plan.
    Reject { reason: String },
}

impl Decision {
    /// The past participle used in messages ("approved", "rejected").
    pub fn verb(&self) -> &'static str {
        match self {
            Decision::Approve { .. } => "approved",
            Decision::Reject { .. } => "rejected",
        }
    }

    /// The status a pending job moves to, and the fields written with it, when `by` decides
    /// on the plan with sha256 `plan_hash` at `now`, recorded as audit record `record`.
    pub fn transition(
        &self,
        by: &str,
        plan_hash: &str,
        now: &str,
        record: &str,
    ) -> (JobStatus, Vec<(&'static str, Option<String>)>) {
        match self {
            Decision::Approve { reason, .. } => (
                JobStatus::Approved,
                vec![
                    ("approved_by", Some(by.to_string())),
                    ("approved_at", Some(now.to_string())),
                    ("approved_plan_hash", Some(plan_hash.to_string())),
                    ("approval_reason", reason.clone()),
                    ("approved_in", Some(record.to_string())),
                    (
                        "reason",
                        Some(format!(
                            "approved by {by}{}; waiting for the worker to apply it",
                            reason
                                .as_deref()
                                .map(|why| format!(" ({why})"))
                                .unwrap_or_default()
                        )),
                    ),
                ],
            ),
            Decision::Reject { reason } => (
                JobStatus::Rejected,
                vec![("reason", Some(format!("rejected by {by}: {reason}")))],
            ),
        }
    }
}

/// Refuses an approval when the operator named a plan hash that the pending plan (`hash`) does
/// not start with, or a prefix shorter than 12 characters.
pub fn check_plan_hash(id: &str, hash: &str, want: Option<&str>) -> Result<(), JobError> {
    match want {
        Some(want) if want.len() < 12 || !hash.starts_with(want) => {
            Err(JobError::PlanHashMismatch {
                id: id.to_string(),
                hash: hash.to_string(),
                want: want.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// Refuses an approval when the stored plan does not hash to the stored plan hash: the plan an
/// operator reviewed (`jobs show` prints the stored plan) must be the one the hash binds.
pub fn check_stored_plan(job: &Job) -> Result<(), JobError> {
    let computed = job.plan.as_ref().map(crate::action::Plan::hash);
    match (&job.plan_hash, &computed) {
        (Some(stored), Some(computed)) if stored == computed => Ok(()),
        (stored, computed) => Err(JobError::PlanTampered {
            id: job.id.clone(),
            stored: stored.clone().unwrap_or_else(|| "none".into()),
            computed: computed
                .clone()
                .unwrap_or_else(|| "nothing (no plan)".into()),
        }),
    }
}

/// A job found pending approval, with the decision checked against it: what [`decide`]
/// records. Only [`check`] builds one.
#[derive(Debug, Clone)]
pub struct Pending {
    job: Job,
    decision: Decision,
}

/// Reads job `id` and checks that `decision` can be made on it: the job is pending approval;
/// for an approval, it has not waited longer than `ttl` (it is then marked expired and
/// recorded on `audit`), its stored plan hashes to its stored plan hash, and that is the hash
/// the operator named.
pub async fn check(
    store: &Store,
    audit: &AuditWriter,
    id: &str,
    decision: Decision,
    ttl: Duration,
) -> Result<Pending, JobError> {
    let job = find(store, id).await?;
    if job.status != JobStatus::PendingApproval {
        return Err(JobError::NotPending {
            id: id.to_string(),
            status: job.status.as_str(),
            verb: decision.verb(),
        });
    }
    if let Decision::Approve { plan_hash, .. } = &decision {
        if approval_expired(&job, ttl) {
            expire(store, audit, &job, ttl).await?;
            return Err(JobError::Expired {
                id: id.to_string(),
                ttl_seconds: ttl.as_secs(),
            });
        }
        check_stored_plan(&job)?;
        check_plan_hash(
            id,
            job.plan_hash.as_deref().unwrap_or_default(),
            plan_hash.as_deref(),
        )?;
    }
    Ok(Pending { job, decision })
}

/// Records `by`'s decision: moves the job out of pending-approval (an error if it changed
/// since [`check`] read it), writes its audit record, and for an approval queues the job on
/// `queue`, so the worker re-reads the resource and applies the plan only if it is unchanged.
/// Returns the job as it is now.
pub async fn decide(
    store: &Store,
    audit: &AuditWriter,
    queue: &ControlQueue,
    pending: Pending,
    by: &str,
) -> Result<Job, JobError> {
    let id = pending.job.id.as_str();
    let hash = pending.job.plan_hash.as_deref().unwrap_or_default();
    // The approval names its record: the id the decision's record gets (looked for in the
    // rest of the chain when it ends up elsewhere in it).
    let record = audit.next_id().await;
    let (to, fields) = pending.decision.transition(by, hash, &now_text(), &record);
    // The decision and its record are one write: a decision is never left off the record.
    let decided = store
        .transition_recorded(
            &pending.job,
            &[JobStatus::PendingApproval],
            to,
            &fields,
            &audit.job_recorder(store, by),
        )
        .await?
        .ok_or_else(|| JobError::Changed {
            id: id.to_string(),
            verb: pending.decision.verb(),
        })?;
    if matches!(pending.decision, Decision::Approve { .. }) {
        queue.run_job(id).await?;
    }
    Ok(decided)
}

/// Whether `job` may be run again (`jobs retry`): one that ended without an effect, or an
/// approved one; never an undo, which run as a remediation would apply the fix it undid.
pub fn rerunnable(job: &Job) -> Result<(), JobError> {
    if let Some(of) = job.undoes() {
        return Err(JobError::UndoNotRerun {
            id: job.id.clone(),
            of: of.to_string(),
        });
    }
    if !job.status.claimable() {
        return Err(JobError::NotRerunnable {
            id: job.id.clone(),
            status: job.status.as_str(),
        });
    }
    Ok(())
}

/// Queues job `id` to run again through every gate (after a change of mode or parameters);
/// only a job that ended without an effect runs again, or an approved job (whose control
/// message was lost or dead-lettered: a dead-lettered one is never put back on the control
/// queue). The job records `requester` (the caller's AWS identity) as who asked, and so does
/// the audit trail, before the job is queued. Returns the job as it was read.
pub async fn retry(
    store: &Store,
    audit: &AuditWriter,
    queue: &ControlQueue,
    id: &str,
    requester: &str,
) -> Result<Job, JobError> {
    let job = find(store, id).await?;
    rerunnable(&job)?;
    // Who asked, and its record, are one write.
    let asked = audit
        .append_with(
            store,
            store.requested_by_update(id, requester)?,
            Record::retry_requested(&job, requester),
        )
        .await?;
    if asked.is_none() {
        return Err(JobError::NotFound(id.to_string()));
    }
    queue.run_job(id).await?;
    Ok(job)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn an_approval_binds_the_plan_hash_and_says_who() {
        let d = Decision::Approve {
            reason: Some("change 42".into()),
            plan_hash: None,
        };
        let (to, fields) = d.transition("alice", HASH, "2026-01-01T00:00:00.000Z", "w-1");
        assert_eq!(to, JobStatus::Approved);
        assert_eq!(
            fields,
            vec![
                ("approved_by", Some("alice".to_string())),
                ("approved_at", Some("2026-01-01T00:00:00.000Z".to_string())),
                ("approved_plan_hash", Some(HASH.to_string())),
                ("approval_reason", Some("change 42".to_string())),
                ("approved_in", Some("w-1".to_string())),
                (
                    "reason",
                    Some(
                        "approved by alice (change 42); waiting for the worker to apply it"
                            .to_string()
                    )
                ),
            ]
        );
        assert_eq!(d.verb(), "approved");
    }

    #[test]
    fn an_approval_without_a_reason_removes_the_old_one() {
        let d = Decision::Approve {
            reason: None,
            plan_hash: None,
        };
        let (_, fields) = d.transition("alice", HASH, "t", "w-1");
        assert!(fields.contains(&("approval_reason", None)));
    }

    #[test]
    fn a_rejection_only_writes_its_reason() {
        let d = Decision::Reject {
            reason: "too broad".into(),
        };
        let (to, fields) = d.transition("bob", HASH, "t", "w-1");
        assert_eq!(to, JobStatus::Rejected);
        assert_eq!(
            fields,
            vec![("reason", Some("rejected by bob: too broad".to_string()))]
        );
        assert_eq!(d.verb(), "rejected");
    }

    #[test]
    fn a_named_plan_hash_must_be_a_long_enough_prefix_of_the_pending_one() {
        assert!(check_plan_hash("j", HASH, None).is_ok());
        assert!(check_plan_hash("j", HASH, Some(&HASH[..12])).is_ok());
        assert!(check_plan_hash("j", HASH, Some(HASH)).is_ok());
        // Too short to bind anything.
        assert!(check_plan_hash("j", HASH, Some(&HASH[..11])).is_err());
        // Another plan.
        let e = check_plan_hash("j", HASH, Some("ffffffffffffffff")).unwrap_err();
        assert!(e.is_usage());
        assert_eq!(
            e.to_string(),
            format!(
                "job j's pending plan has sha256 {HASH}, not ffffffffffffffff: review it again with `rectify jobs show j`"
            )
        );
        // No pending hash at all: nothing starts the empty string but itself.
        assert!(check_plan_hash("j", "", Some(&HASH[..12])).is_err());
    }

    #[test]
    fn a_stored_plan_must_hash_to_the_stored_hash() {
        use crate::action::{Action, Plan};
        let plan = Plan {
            actions: vec![Action::RevokeSecurityGroupIngress {
                group_id: "sg-0123456789abcdef0".into(),
                rule_id: "sgr-0123456789abcdef0".into(),
            }],
            reason: None,
            ..Default::default()
        };
        let mut job = test_job();
        job.plan_hash = Some(plan.hash());
        job.plan = Some(plan.clone());
        assert!(check_stored_plan(&job).is_ok());
        // Someone edits the stored plan and keeps the hash.
        let mut tampered = plan.clone();
        tampered.actions[0] = Action::RevokeSecurityGroupIngress {
            group_id: "sg-0123456789abcdef0".into(),
            rule_id: "sgr-0fffffffffffffff0".into(),
        };
        job.plan = Some(tampered.clone());
        let e = check_stored_plan(&job).unwrap_err();
        assert!(!e.is_usage(), "a failed check, not bad input");
        let text = e.to_string();
        assert!(
            text.contains(&plan.hash()) && text.contains(&tampered.hash()),
            "{text}"
        );
        // A hash with no plan, or a plan with no hash, binds nothing.
        job.plan = None;
        assert!(check_stored_plan(&job).is_err());
        job.plan = Some(plan);
        job.plan_hash = None;
        assert!(check_stored_plan(&job).is_err());
    }

    fn test_job() -> Job {
        Job {
            remediation: "sg-revoke-open-ssh".into(),
            resource_type: "AWS::EC2::SecurityGroup".into(),
            resource_id: "sg-0123456789abcdef0".into(),
            rule: "restricted-ssh".into(),
            ..Job::sample(JobStatus::PendingApproval)
        }
    }

    #[test]
    fn refusals_are_usage_errors_and_store_failures_are_not() {
        assert!(JobError::NotFound("x".into()).is_usage());
        assert_eq!(
            JobError::NotPending {
                id: "x".into(),
                status: "applied",
                verb: "rejected"
            }
            .to_string(),
            "job x is applied, not pending-approval: only a pending plan can be rejected"
        );
        assert!(!JobError::State(crate::state::StateError::Corrupt("x".into())).is_usage());
    }
}
