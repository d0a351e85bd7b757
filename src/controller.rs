//! The controller: one finding, one remediation, one job, reconciled against the live resource.
//!
//! `route → gate → claim → observe → plan → apply → verify → record`. The event's claim about
//! the resource is never trusted: the resource is read live, the script decides from what was
//! read, and after applying, the resource is read again and re-planned; a plan that is not empty
//! then is `failed-verify`, never success. Every gate fails closed: settings that cannot be read
//! stop the job before anything is changed.

use std::sync::Arc;
use std::time::Duration;

use rhai::Engine;
use serde_json::Value;
use tracing::{Instrument, info, warn};

use crate::action::{Action, Plan};
use crate::audit::{AuditWriter, Record};
use crate::catalog::{Catalog, Mode, Remediation};
use crate::cloud::{Cloud, CloudError};
use crate::event::{Finding, Source};
use crate::script::Limits;
use crate::state::{Claim, Job, JobStatus, SettingsCache, SettingsSnapshot, Store, now_text};

/// Everything a worker needs to handle findings.
pub struct Context {
    pub catalog: Arc<Catalog>,
    pub engine: Arc<Engine>,
    pub limits: Limits,
    pub cloud: Cloud,
    pub store: Store,
    pub settings: SettingsCache,
    pub audit: AuditWriter,
    /// This worker's identity in job leases.
    pub owner: String,
    /// How long a claim holds (the queue's visibility timeout).
    pub lease: Duration,
}

/// What to do with the message that carried the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Its outcome is durable: delete it.
    Done,
    /// Leave it on the queue; it comes back after its visibility timeout (and after
    /// `maxReceiveCount` receives lands in the DLQ).
    Retry(String),
}

/// Handles one finding: routes it and reconciles each remediation it routes to.
pub async fn handle_finding(ctx: &Context, finding: &Finding) -> Disposition {
    let snapshot = match ctx.settings.get().await {
        Ok(s) => s,
        Err(e) => {
            warn!(rule = %finding.rule, resource = %finding.resource_id, error = %e,
                "settings cannot be read: nothing is changed and the message will be retried");
            return Disposition::Retry(format!("settings cannot be read: {e}"));
        }
    };
    let routes = ctx.catalog.route(
        &finding.resource_type,
        &finding.rule,
        &finding.rule_base,
        &snapshot.triggers(),
    );
    if routes.is_empty() {
        info!(rule = %finding.rule, resource_type = %finding.resource_type, resource = %finding.resource_id,
            "no remediation is triggered by this rule and resource type");
        return Disposition::Done;
    }
    if !finding.compliance.wants_fix() {
        info!(rule = %finding.rule, resource = %finding.resource_id, compliance = ?finding.compliance,
            "finding does not ask for a fix");
        return Disposition::Done;
    }
    let mut disposition = Disposition::Done;
    for r in routes {
        if let Disposition::Retry(reason) = reconcile(ctx, finding, &r, &snapshot).await {
            disposition = Disposition::Retry(reason);
        }
    }
    disposition
}

/// Runs a job again (`jobs retry`): the same finding, through every gate.
pub async fn rerun_job(ctx: &Context, job_id: &str) -> Disposition {
    let job = match ctx.store.job(job_id).await {
        Ok(Some(job)) => job,
        Ok(None) => {
            warn!(
                job = job_id,
                "control message names a job that does not exist"
            );
            return Disposition::Done;
        }
        Err(e) => return Disposition::Retry(format!("job {job_id} cannot be read: {e}")),
    };
    let Some(r) = ctx.catalog.get(&job.remediation).cloned() else {
        warn!(job = job_id, remediation = %job.remediation, "job's remediation is not in the catalog");
        return Disposition::Done;
    };
    let snapshot = match ctx.settings.get().await {
        Ok(s) => s,
        Err(e) => return Disposition::Retry(format!("settings cannot be read: {e}")),
    };
    let finding = Finding {
        source: Source::Operator,
        event_id: job.event_id.clone(),
        account: job.account.clone(),
        region: job.region.clone(),
        rule: job.rule.clone(),
        rule_base: crate::event::normalise_rule(&job.rule),
        resource_type: job.resource_type.clone(),
        resource_id: job.resource_id.clone(),
        compliance: crate::event::Compliance::NonCompliant,
        ordered_at: None,
        observation: job.observation.clone(),
        annotation: None,
    };
    reconcile(ctx, &finding, &r, &snapshot).await
}

/// Claims the job for (finding, remediation), decides, records, and says what to do with the
/// message.
async fn reconcile(
    ctx: &Context,
    finding: &Finding,
    r: &Remediation,
    snapshot: &SettingsSnapshot,
) -> Disposition {
    let now = now_text();
    let job = Job {
        id: Job::id_for(
            &finding.account,
            &finding.region,
            r.name(),
            &finding.resource_type,
            &finding.resource_id,
            &finding.observation,
        ),
        remediation: r.name().to_string(),
        account: finding.account.clone(),
        region: finding.region.clone(),
        resource_type: finding.resource_type.clone(),
        resource_id: finding.resource_id.clone(),
        rule: finding.rule.clone(),
        source: finding.source.as_str().to_string(),
        event_id: finding.event_id.clone(),
        observation: finding.observation.clone(),
        status: JobStatus::InProgress,
        mode: snapshot.mode_for(r, &finding.account),
        reason: None,
        plan: None,
        plan_hash: None,
        before: None,
        after: None,
        inverse: None,
        script_sha256: Some(r.script_sha256.clone()),
        created_at: now.clone(),
        updated_at: now,
        attempts: 0,
    };
    let span = tracing::info_span!("job", job = %job.id, remediation = %job.remediation,
        account = %job.account, resource = %job.resource_id);
    run_job(ctx, r, snapshot, job).instrument(span).await
}

async fn run_job(
    ctx: &Context,
    r: &Remediation,
    snapshot: &SettingsSnapshot,
    mut job: Job,
) -> Disposition {
    match ctx.store.claim(&job, &ctx.owner, ctx.lease).await {
        Ok(Claim::Won) => {}
        Ok(Claim::Done(status)) => {
            info!(
                status = status.as_str(),
                "duplicate delivery: the job already ended"
            );
            return Disposition::Done;
        }
        Ok(Claim::Busy) => {
            info!("another worker holds this job's lease; the message will come back");
            return Disposition::Retry("job is held by another worker".into());
        }
        Err(e) => {
            warn!(error = %e, "job cannot be claimed: nothing is changed");
            return Disposition::Retry(format!("job cannot be claimed: {e}"));
        }
    }
    let retry = decide(ctx, r, snapshot, &mut job).await;
    job.updated_at = now_text();
    let record = job_record(&job);
    if let Err(e) = ctx.audit.append(record).await {
        warn!(error = %e, "audit record cannot be written: the message will be retried");
        return Disposition::Retry(format!("audit cannot be written: {e}"));
    }
    if let Err(e) = ctx.store.finish(&job, &ctx.owner).await {
        warn!(error = %e, "job outcome cannot be written: the message will be retried");
        return Disposition::Retry(format!("job outcome cannot be written: {e}"));
    }
    info!(
        outcome = job.status.as_str(),
        mode = job.mode.as_str(),
        actions = job.plan.as_ref().map_or(0, |p| p.actions.len()),
        reason = job.reason.as_deref().unwrap_or(""),
        "job ended"
    );
    match retry {
        Some(reason) => Disposition::Retry(reason),
        None => Disposition::Done,
    }
}

/// The audit record of a job's outcome.
pub fn job_record(job: &Job) -> Record {
    Record {
        kind: "job".into(),
        job_id: Some(job.id.clone()),
        event_id: job.event_id.clone(),
        account: Some(job.account.clone()),
        region: Some(job.region.clone()),
        resource_type: Some(job.resource_type.clone()),
        resource_id: Some(job.resource_id.clone()),
        remediation: Some(job.remediation.clone()),
        rule: Some(job.rule.clone()),
        script_sha256: job.script_sha256.clone(),
        mode: Some(job.mode.as_str().into()),
        before: job.before.clone(),
        plan: job.plan.clone(),
        after: job.after.clone(),
        outcome: job.status.as_str().into(),
        reason: job.reason.clone(),
        actor: Some("worker".into()),
        ..Record::default()
    }
}

/// Runs a remediation's script on a blocking thread, away from the async workers.
pub async fn plan_blocking(
    engine: Arc<Engine>,
    remediation: Arc<Remediation>,
    resource: Value,
    params: serde_json::Map<String, Value>,
    deadline: Duration,
) -> Result<Plan, String> {
    tokio::task::spawn_blocking(move || {
        remediation
            .plan(&engine, &resource, &params, deadline)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the script's thread failed: {e}"))?
}

/// Fills in the job's outcome. Returns a reason when the message should be retried.
async fn decide(
    ctx: &Context,
    r: &Remediation,
    snapshot: &SettingsSnapshot,
    job: &mut Job,
) -> Option<String> {
    let end = |job: &mut Job, status: JobStatus, reason: String| {
        job.status = status;
        job.reason = Some(reason);
    };
    if job.mode == Mode::Off {
        end(job, JobStatus::Off, "the remediation is off".into());
        return None;
    }
    let params = snapshot.params_for(r, &job.account);
    let missing = r.missing_params(&params);
    if !missing.is_empty() {
        let sets: Vec<String> = missing
            .iter()
            .map(|m| format!("--param {m}=VALUE"))
            .collect();
        end(
            job,
            JobStatus::NeedsParameter,
            format!(
                "parameter {} has no value: set it with `rectify settings set {} {}`",
                missing.join(", "),
                r.name(),
                sets.join(" ")
            ),
        );
        return None;
    }
    let remediation = match ctx.catalog.get(r.name()) {
        Some(r) => r.clone(),
        None => {
            end(
                job,
                JobStatus::Failed,
                "the remediation left the catalog".into(),
            );
            return None;
        }
    };
    let deadline = Duration::from_millis(ctx.limits.deadline_ms);
    let (account, region, resource_type, resource_id) = (
        job.account.clone(),
        job.region.clone(),
        job.resource_type.clone(),
        job.resource_id.clone(),
    );
    let observe = || {
        ctx.cloud
            .observe(&account, &region, &resource_type, &resource_id)
    };
    let before = match observe().await {
        Ok(v) => v,
        Err(CloudError::NotFound { resource }) => {
            end(
                job,
                JobStatus::NoOp,
                format!("{resource} does not exist: nothing to fix"),
            );
            return None;
        }
        Err(e) => {
            let retry = e.retryable();
            end(
                job,
                JobStatus::Failed,
                format!("observing the resource failed: {e}"),
            );
            return retry.then(|| e.to_string());
        }
    };
    job.before = Some(before.clone());
    let plan = match plan_blocking(
        ctx.engine.clone(),
        remediation.clone(),
        before.clone(),
        params.clone(),
        deadline,
    )
    .await
    {
        Ok(p) => p,
        Err(e) => {
            end(job, JobStatus::Failed, format!("the script failed: {e}"));
            return None;
        }
    };
    job.plan_hash = Some(plan.hash());
    job.plan = Some(plan.clone());
    if plan.is_empty() {
        let reason = plan
            .reason
            .clone()
            .unwrap_or_else(|| "already compliant".into());
        end(job, JobStatus::NoOp, reason);
        return None;
    }
    match job.mode {
        Mode::Off => unreachable!("handled above"),
        Mode::DryRun => {
            end(
                job,
                JobStatus::Planned,
                "dry-run: the plan is recorded and nothing was changed".into(),
            );
            return None;
        }
        Mode::Approval => {
            end(
                job,
                JobStatus::PendingApproval,
                "waiting for an operator's approval".into(),
            );
            return None;
        }
        Mode::Enforce => {}
    }
    // Nothing is applied that cannot be undone.
    let inverse: Result<Vec<Action>, _> = plan
        .actions
        .iter()
        .rev()
        .map(|a| a.inverse(&before))
        .collect();
    match inverse {
        Ok(inv) => job.inverse = Some(inv),
        Err(e) => {
            end(job, JobStatus::Failed, format!("refused: {e}"));
            return None;
        }
    }
    for (i, action) in plan.actions.iter().enumerate() {
        if let Err(e) = ctx.cloud.apply(&account, &region, action).await {
            let retry = e.retryable();
            end(
                job,
                JobStatus::Failed,
                format!(
                    "{} failed after {i} of {} actions were applied: {e}",
                    action.kind(),
                    plan.actions.len()
                ),
            );
            job.after = observe().await.ok();
            return retry.then(|| e.to_string());
        }
    }
    // Verify: read again and re-plan. A read right after a write may lag on AWS, so a plan that
    // is not yet empty is checked again a few times before the fix is called failed.
    let mut last_plan = None;
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
        }
        let after = match observe().await {
            Ok(v) => v,
            Err(e) => {
                end(
                    job,
                    JobStatus::FailedVerify,
                    format!("the resource could not be read back: {e}"),
                );
                return None;
            }
        };
        job.after = Some(after.clone());
        match plan_blocking(
            ctx.engine.clone(),
            remediation.clone(),
            after,
            params.clone(),
            deadline,
        )
        .await
        {
            Ok(p) if p.is_empty() => {
                end(
                    job,
                    JobStatus::Applied,
                    format!("{} action(s) applied and verified", plan.actions.len()),
                );
                return None;
            }
            Ok(p) => last_plan = Some(p),
            Err(e) => {
                end(
                    job,
                    JobStatus::FailedVerify,
                    format!("re-planning after the fix failed: {e}"),
                );
                return None;
            }
        }
    }
    let still: Vec<String> = last_plan
        .map(|p| p.actions.iter().map(Action::summary).collect())
        .unwrap_or_default();
    end(
        job,
        JobStatus::FailedVerify,
        format!(
            "the fix did not hold: re-planning still wants {}",
            still.join("; ")
        ),
    );
    None
}
