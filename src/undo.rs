//! Undo: put a resource back as it was before an applied job.
//!
//! The job recorded, before anything was applied, the inverse of each action (computed from the
//! before-state). Undo re-reads the resource; if it changed since the job (someone else touched
//! it), undo refuses and shows the difference unless forced. It then applies the inverse
//! actions, reads the resource again and compares it with the job's before-state (security group
//! rule ids aside: re-authorised rules get new ids from AWS). The undo is itself a job, audited,
//! and by default it exempts the resource from the remediation, since an undo says the fix was
//! wrong for it and the next event would otherwise fix it again.

use std::sync::Arc;

use serde_json::Value;

use crate::action::{Action, Plan, canonical_value};
use crate::audit::Record;
use crate::catalog::Mode;
use crate::clock::now_text;
use crate::cloud::CloudError;
use crate::reconcile::Context;
use crate::reconcile::lease::ResourceLease;
use crate::reconcile::plan::observe;
use crate::settings::{ExemptionRequest, SettingsError, add_exemption};
use crate::state::{Job, JobStatus, StateError};

/// The resource as it matters for a comparison: without the observation time, with security
/// group rules compared by content, not by id, and with secrets redacted as the jobs table
/// stores them (so a live state compares equal to its stored copy).
pub fn comparable(resource: &Value) -> Value {
    let mut v = resource.clone();
    crate::redact::redact(&mut v);
    if let Value::Object(m) = &mut v {
        m.remove("observed_at");
        if let Some(Value::Array(rules)) = m.get_mut("ingress_rules") {
            for r in rules.iter_mut() {
                if let Value::Object(r) = r {
                    r.remove("rule_id");
                }
            }
            rules.sort_by_key(|r| serde_json::to_string(&canonical_value(r)).unwrap_or_default());
        }
    }
    canonical_value(&v)
}

/// A readable difference between two resource states.
pub fn difference(expected: &Value, actual: &Value) -> String {
    let e = serde_json::to_string_pretty(&comparable(expected)).unwrap_or_default();
    let a = serde_json::to_string_pretty(&comparable(actual)).unwrap_or_default();
    crate::catalog::line_diff(&e, &a)
        .lines()
        .filter(|l| !l.starts_with("  "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An undo that was refused or did not put the resource back.
#[derive(Debug, thiserror::Error)]
pub enum UndoError {
    #[error("no job {0:?} (see `rectify jobs list`)")]
    NotFound(String),
    #[error("job {id} is {status}: only an applied (or failed-verify) job can be undone")]
    NotUndoable { id: String, status: &'static str },
    #[error("job {0} recorded no inverse or states to undo with")]
    NothingRecorded(String),
    #[error("another job holds {0} right now; try again in a moment")]
    Busy(String),
    #[error(
        "{resource_id} changed since job {job_id} (- as the job left it, + now):\n{difference}\nundo would overwrite that change; use --force to undo anyway"
    )]
    Changed {
        resource_id: String,
        job_id: String,
        difference: String,
    },
    #[error("the resource cannot be read: {0}")]
    Unreadable(CloudError),
    #[error("the resource cannot be read back: {0}")]
    UnreadableAfter(CloudError),
    /// The undo ran and is recorded, but an undo action failed or the resource differs from
    /// its state before the job.
    #[error("{0}")]
    NotRestored(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Settings(#[from] SettingsError),
}

impl UndoError {
    /// Whether the operator's request is at fault (exit code 2): no such job, a job that cannot
    /// be undone, a resource busy or changed since (without `--force`); not AWS or the state
    /// store (1).
    pub fn is_usage(&self) -> bool {
        match self {
            UndoError::NotFound(_)
            | UndoError::NotUndoable { .. }
            | UndoError::NothingRecorded(_)
            | UndoError::Busy(_)
            | UndoError::Changed { .. } => true,
            UndoError::Unreadable(_)
            | UndoError::UnreadableAfter(_)
            | UndoError::NotRestored(_)
            | UndoError::State(_) => false,
            UndoError::Settings(e) => e.is_usage(),
        }
    }
}

/// What an undo did.
#[derive(Debug)]
pub struct Undone {
    pub undo_job: Job,
    pub exempted: bool,
}

/// Undoes an applied job.
pub async fn undo(
    ctx: &Arc<Context>,
    job_id: &str,
    by: &str,
    reason: &str,
    force: bool,
    exempt: bool,
) -> Result<Undone, UndoError> {
    let job = ctx
        .store
        .job(job_id)
        .await?
        .ok_or_else(|| UndoError::NotFound(job_id.to_string()))?;
    if !matches!(job.status, JobStatus::Applied | JobStatus::FailedVerify) {
        return Err(UndoError::NotUndoable {
            id: job_id.to_string(),
            status: job.status.as_str(),
        });
    }
    let (Some(inverse), Some(before), Some(after)) = (&job.inverse, &job.before, &job.after) else {
        return Err(UndoError::NothingRecorded(job_id.to_string()));
    };
    let key = job.resource_key();
    let owner = format!("{}/undo-{job_id}", ctx.owner);
    let Some(lease) = ResourceLease::take(&ctx.store, &key, &owner, ctx.lease).await? else {
        return Err(UndoError::Busy(job.resource_id.clone()));
    };
    let asked = Asked {
        by,
        reason,
        force,
        exempt,
    };
    let result = run(ctx, &job, inverse, before, after, &asked).await;
    lease.release().await;
    result
}

/// What the operator asked of an undo.
struct Asked<'a> {
    by: &'a str,
    reason: &'a str,
    force: bool,
    exempt: bool,
}

async fn run(
    ctx: &Arc<Context>,
    job: &Job,
    inverse: &[Action],
    before: &Value,
    after: &Value,
    asked: &Asked<'_>,
) -> Result<Undone, UndoError> {
    let Asked {
        by,
        reason,
        force,
        exempt,
    } = *asked;
    let live = observe(ctx, job).await.map_err(UndoError::Unreadable)?;
    let changed = comparable(&live) != comparable(after);
    if changed && !force {
        return Err(UndoError::Changed {
            resource_id: job.resource_id.clone(),
            job_id: job.id.clone(),
            difference: difference(after, &live),
        });
    }
    let now = now_text();
    let mut undo_job = Job {
        id: format!("undo-{}", job.id),
        source: "operator".into(),
        event_id: None,
        observation: format!("undo:{now}"),
        status: JobStatus::InProgress,
        mode: Mode::Enforce,
        reason: None,
        plan: Some(Plan {
            actions: inverse.to_vec(),
            reason: None,
        }),
        plan_hash: None,
        before: Some(live.clone()),
        after: None,
        inverse: None,
        approved_by: Some(by.to_string()),
        approved_at: Some(now.clone()),
        approved_plan_hash: None,
        approval_reason: Some(reason.to_string()),
        created_at: now.clone(),
        updated_at: now,
        attempts: 1,
        ..job.clone()
    };
    undo_job.plan_hash = undo_job.plan.as_ref().map(Plan::hash);
    let mut failure = None;
    for (i, action) in inverse.iter().enumerate() {
        if let Err(e) =
            crate::action::apply::apply(&ctx.cloud, &job.account, &job.region, action).await
        {
            failure = Some(format!(
                "{} failed after {i} of {} undo actions: {e}",
                action.kind(),
                inverse.len()
            ));
            break;
        }
    }
    let restored = observe(ctx, job)
        .await
        .map_err(UndoError::UnreadableAfter)?;
    undo_job.after = Some(restored.clone());
    let (status, text) = match failure {
        Some(f) => (JobStatus::Failed, f),
        None if comparable(&restored) == comparable(before) => (
            JobStatus::Applied,
            format!(
                "undo of job {} by {by}: {reason}; the resource is as it was before the job",
                job.id
            ),
        ),
        // Forced over a later change: the resource cannot equal its old state, and the later
        // change is kept; the inverse actions were applied.
        None if changed => (
            JobStatus::Applied,
            format!(
                "undo of job {} by {by} (forced over a later change, which is kept): {reason}",
                job.id
            ),
        ),
        None => (
            JobStatus::FailedVerify,
            format!(
                "undo of job {}: the resource differs from its state before the job (- before, + now):\n{}",
                job.id,
                difference(before, &restored)
            ),
        ),
    };
    undo_job.status = status;
    undo_job.reason = Some(text.clone());
    ctx.audit.append(Record::for_job(&undo_job, by)).await?;
    ctx.store.put_job(&undo_job).await?;
    if status != JobStatus::Applied {
        return Err(UndoError::NotRestored(text));
    }
    let undone = ctx
        .store
        .transition(
            &job.id,
            &[JobStatus::Applied, JobStatus::FailedVerify],
            JobStatus::Undone,
            &[(
                "reason",
                Some(format!("undone by {by} in job {}: {reason}", undo_job.id)),
            )],
        )
        .await?;
    if let Some(j) = &undone {
        ctx.audit.append(Record::for_job(j, by)).await?;
    }
    let mut exempted = false;
    if exempt {
        let request = ExemptionRequest::for_job(job, format!("undo of job {}: {reason}", job.id));
        add_exemption(&ctx.store, &ctx.audit, request, by).await?;
        exempted = true;
    }
    Ok(Undone { undo_job, exempted })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_usage_errors_and_failures_are_not() {
        assert!(UndoError::NotFound("j".into()).is_usage());
        assert!(
            UndoError::NotUndoable {
                id: "j".into(),
                status: "planned"
            }
            .is_usage()
        );
        let changed = UndoError::Changed {
            resource_id: "sg-1".into(),
            job_id: "j".into(),
            difference: "+ x".into(),
        };
        assert!(changed.is_usage());
        assert!(changed.to_string().contains("use --force"));
        assert!(!UndoError::NotRestored("failed".into()).is_usage());
        assert!(!UndoError::Unreadable(CloudError::Unsupported("x".into())).is_usage());
        assert!(!UndoError::State(StateError::Corrupt("x".into())).is_usage());
    }

    #[test]
    fn a_live_state_compares_equal_to_its_redacted_stored_copy() {
        let live = serde_json::json!({"tags": {"note": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}, "observed_at": "t1"});
        let mut stored = live.clone();
        crate::redact::redact(&mut stored);
        assert_ne!(live, stored);
        assert_eq!(comparable(&live), comparable(&stored));
    }
}
