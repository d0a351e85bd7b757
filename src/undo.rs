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
use crate::reconcile::Context;
use crate::reconcile::lease::ResourceLease;
use crate::reconcile::plan::observe;
use crate::settings::{ExemptionRequest, add_exemption};
use crate::state::{Job, JobStatus, now_text};

/// The resource as it matters for a comparison: without the observation time, and with
/// security group rules compared by content, not by id.
pub fn comparable(resource: &Value) -> Value {
    let mut v = resource.clone();
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
) -> Result<Undone, String> {
    let job = ctx
        .store
        .job(job_id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no job {job_id:?} (see `rectify jobs list`)"))?;
    if !matches!(job.status, JobStatus::Applied | JobStatus::FailedVerify) {
        return Err(format!(
            "job {job_id} is {}: only an applied (or failed-verify) job can be undone",
            job.status.as_str()
        ));
    }
    let (Some(inverse), Some(before), Some(after)) = (&job.inverse, &job.before, &job.after) else {
        return Err(format!(
            "job {job_id} recorded no inverse or states to undo with"
        ));
    };
    let key = job.resource_key();
    let owner = format!("{}/undo-{job_id}", ctx.owner);
    let Some(lease) = ResourceLease::take(&ctx.store, &key, &owner, ctx.lease)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Err(format!(
            "another job holds {} right now; try again in a moment",
            job.resource_id
        ));
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
) -> Result<Undone, String> {
    let Asked {
        by,
        reason,
        force,
        exempt,
    } = *asked;
    let live = observe(ctx, job)
        .await
        .map_err(|e| format!("the resource cannot be read: {e}"))?;
    let changed = comparable(&live) != comparable(after);
    if changed && !force {
        return Err(format!(
            "{} changed since job {} (- as the job left it, + now):\n{}\nundo would overwrite that change; use --force to undo anyway",
            job.resource_id,
            job.id,
            difference(after, &live)
        ));
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
        .map_err(|e| format!("the resource cannot be read back: {e}"))?;
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
    ctx.audit
        .append(Record::for_job(&undo_job, by))
        .await
        .map_err(|e| e.to_string())?;
    ctx.store
        .put_job(&undo_job)
        .await
        .map_err(|e| e.to_string())?;
    if status != JobStatus::Applied {
        return Err(text);
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
        .await
        .map_err(|e| e.to_string())?;
    if let Some(j) = &undone {
        ctx.audit
            .append(Record::for_job(j, by))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut exempted = false;
    if exempt {
        let request = ExemptionRequest::for_job(job, format!("undo of job {}: {reason}", job.id));
        add_exemption(&ctx.store, &ctx.audit, request, by)
            .await
            .map_err(|e| e.to_string())?;
        exempted = true;
    }
    Ok(Undone { undo_job, exempted })
}
