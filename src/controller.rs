//! The controller: one finding, one remediation, one job, reconciled against the live resource.
//!
//! `route → gate → lock → claim → observe → plan → apply → verify → record`. The event's claim
//! about the resource is never trusted: the resource is read live, the script decides from what
//! was read, and after applying, the resource is read again and re-planned; a plan that is not
//! empty then is `failed-verify`, never success.
//!
//! The gates, in order: settings readable (else nothing happens and the message is retried),
//! account allow-list, mode, exemption records, required parameters, exemption tags, approval,
//! the pause switch and the blast-radius breaker. Each fails closed.

use std::sync::Arc;
use std::time::Duration;

use rhai::Engine;
use serde_json::Value;
use tracing::{Instrument, error, info, warn};

use crate::action::{Action, Plan};
use crate::audit::{AuditWriter, Record};
use crate::catalog::{Catalog, Mode, Remediation};
use crate::cloud::{Cloud, CloudError};
use crate::event::{Compliance, Finding, Source};
use crate::notify::Notifier;
use crate::script::Limits;
use crate::state::{
    Breaker, Claim, Job, JobStatus, Setting, SettingsCache, SettingsSnapshot, StateError, Store,
    now_text,
};

/// The catalog in force; replaced whole on reload, so work in flight keeps the one it started
/// with.
pub struct CatalogHandle(std::sync::RwLock<Arc<Catalog>>);

impl CatalogHandle {
    pub fn new(catalog: Arc<Catalog>) -> CatalogHandle {
        CatalogHandle(std::sync::RwLock::new(catalog))
    }

    pub fn current(&self) -> Arc<Catalog> {
        self.0
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    pub fn replace(&self, catalog: Arc<Catalog>) {
        match self.0.write() {
            Ok(mut c) => *c = catalog,
            Err(poisoned) => *poisoned.into_inner() = catalog,
        }
    }
}

/// Everything a worker needs to handle findings.
pub struct Context {
    pub catalog: CatalogHandle,
    pub engine: Arc<Engine>,
    pub limits: Limits,
    pub cloud: Cloud,
    pub store: Store,
    pub settings: SettingsCache,
    pub audit: AuditWriter,
    pub notifier: Option<Notifier>,
    /// This worker's identity in job leases.
    pub owner: String,
    /// How long a claim holds (the queue's visibility timeout).
    pub lease: Duration,
    /// How long a plan waits for an approval before it expires.
    pub approval_ttl: Duration,
    /// Set when the state store could not be read; the worker takes no messages until it can.
    pub store_down: std::sync::atomic::AtomicBool,
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
            ctx.store_down
                .store(true, std::sync::atomic::Ordering::Relaxed);
            warn!(rule = %finding.rule, resource = %finding.resource_id, error = %e,
                "settings cannot be read: nothing is changed and the message will be retried");
            return Disposition::Retry(format!("settings cannot be read: {e}"));
        }
    };
    let routes = ctx.catalog.current().route(
        &finding.resource_type,
        &finding.rule,
        &finding.rule_base,
        snapshot.triggers(),
    );
    if routes.is_empty() {
        info!(rule = %finding.rule, resource_type = %finding.resource_type, resource = %finding.resource_id,
            "no remediation is triggered by this rule and resource type");
        return Disposition::Done;
    }
    if finding.compliance.cancels_pending() {
        return cancel_pending(ctx, finding, &routes).await;
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

/// A resource reported compliant or out of scope: its plans waiting for (or holding) an
/// approval are cancelled, with the reason.
async fn cancel_pending(
    ctx: &Context,
    finding: &Finding,
    routes: &[Arc<Remediation>],
) -> Disposition {
    let key = crate::state::resource_key(
        &finding.account,
        &finding.region,
        &finding.resource_type,
        &finding.resource_id,
    );
    let jobs = match ctx.store.jobs_for_resource(&key).await {
        Ok(j) => j,
        Err(e) => {
            return Disposition::Retry(format!(
                "jobs of {} cannot be read: {e}",
                finding.resource_id
            ));
        }
    };
    let reason = format!(
        "cancelled: rule {} reported the resource {}",
        finding.rule,
        match finding.compliance {
            Compliance::Compliant => "COMPLIANT",
            _ => "NOT_APPLICABLE",
        }
    );
    for job in jobs.iter().filter(|j| {
        routes.iter().any(|r| r.name() == j.remediation)
            && matches!(j.status, JobStatus::PendingApproval | JobStatus::Approved)
    }) {
        match ctx
            .store
            .transition(
                &job.id,
                &[JobStatus::PendingApproval, JobStatus::Approved],
                JobStatus::Cancelled,
                &[("reason", Some(reason.clone()))],
            )
            .await
        {
            Ok(Some(cancelled)) => {
                info!(job = %job.id, remediation = %job.remediation, resource = %job.resource_id, "pending job cancelled");
                if let Err(e) = ctx.audit.append(job_record(&cancelled, "worker")).await {
                    return Disposition::Retry(format!("audit cannot be written: {e}"));
                }
            }
            Ok(None) => {}
            Err(e) => {
                return Disposition::Retry(format!("job {} cannot be cancelled: {e}", job.id));
            }
        }
    }
    Disposition::Done
}

/// Runs a job again (`jobs retry`, or an approval): the same finding, through every gate.
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
    let Some(r) = ctx.catalog.current().get(&job.remediation).cloned() else {
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
        compliance: Compliance::NonCompliant,
        ordered_at: None,
        observation: job.observation.clone(),
        annotation: None,
    };
    reconcile(ctx, &finding, &r, &snapshot).await
}

/// A new job for (finding, remediation), not yet claimed.
pub fn new_job(finding: &Finding, r: &Remediation, mode: Mode) -> Job {
    let now = now_text();
    Job {
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
        mode,
        reason: None,
        plan: None,
        plan_hash: None,
        before: None,
        after: None,
        inverse: None,
        script_sha256: Some(r.script_sha256.clone()),
        approved_by: None,
        approved_at: None,
        approved_plan_hash: None,
        approval_reason: None,
        created_at: now.clone(),
        updated_at: now,
        attempts: 0,
    }
}

/// Locks the resource, claims the job for (finding, remediation), decides, records, and says
/// what to do with the message.
pub async fn reconcile(
    ctx: &Context,
    finding: &Finding,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
) -> Disposition {
    let job = new_job(finding, r, snapshot.mode_for(r, &finding.account));
    let span = tracing::info_span!("job", job = %job.id, remediation = %job.remediation,
        account = %job.account, resource = %job.resource_id);
    async {
        let key = job.resource_key();
        // The lock's owner is this job in this worker, so that two deliveries handled at once
        // by one worker exclude each other too.
        let owner = format!("{}/{}", ctx.owner, job.id);
        match ctx.store.lock_resource(&key, &owner, ctx.lease).await {
            Ok(true) => {}
            Ok(false) => {
                info!("another job holds this resource; the message will come back");
                return Disposition::Retry("another job holds the resource".into());
            }
            Err(e) => return Disposition::Retry(format!("the resource cannot be locked: {e}")),
        }
        let disposition = run_job(ctx, r, snapshot, job).await;
        if let Err(e) = ctx.store.unlock_resource(&key, &owner).await {
            warn!(error = %e, "the resource lock could not be released; it expires with its lease");
        }
        disposition
    }
    .instrument(span)
    .await
}

async fn run_job(
    ctx: &Context,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
    mut job: Job,
) -> Disposition {
    let previous = match ctx.store.claim(&job, &ctx.owner, ctx.lease).await {
        Ok(Claim::Won(previous)) => previous,
        Ok(Claim::Done(existing)) => {
            if existing.status == JobStatus::PendingApproval {
                return expire_if_due(ctx, &existing).await;
            }
            info!(
                status = existing.status.as_str(),
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
    };
    if let Some(p) = &previous {
        job.created_at = p.created_at.clone();
        job.attempts = p.attempts + 1;
    }
    let outcome = decide(ctx, r, snapshot, &mut job, previous.as_deref()).await;
    job.updated_at = now_text();
    let actor = job.approved_by.clone().unwrap_or_else(|| "worker".into());
    if let Err(e) = ctx.audit.append(job_record(&job, &actor)).await {
        warn!(error = %e, "audit record cannot be written: the message will be retried");
        return Disposition::Retry(format!("audit cannot be written: {e}"));
    }
    // Counted once its record is in the audit trail: one job metric for each job record, so a
    // retry after a failed audit write is not counted twice.
    crate::metrics::job_ended(
        r.name(),
        job.status.as_str(),
        outcome.plan_ms,
        outcome.apply_ms,
    );
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
    if let Some(n) = &ctx.notifier {
        n.job(&job).await;
    }
    if let Some((count, limit, window)) = outcome.tripped {
        trip_breaker(ctx, r, &job, count, limit, window).await;
    }
    match outcome.retry {
        Some(reason) => Disposition::Retry(reason),
        None => Disposition::Done,
    }
}

/// A plan left waiting for an approval longer than the approval TTL expires; it is never applied.
async fn expire_if_due(ctx: &Context, job: &Job) -> Disposition {
    if !approval_expired(job, ctx.approval_ttl) {
        info!("duplicate delivery: the job waits for an approval");
        return Disposition::Done;
    }
    match expire(&ctx.store, &ctx.audit, job, ctx.approval_ttl).await {
        Ok(_) => Disposition::Done,
        Err(e) => Disposition::Retry(format!("job cannot be expired: {e}")),
    }
}

/// Whether a job pending approval has waited longer than `ttl`.
pub fn approval_expired(job: &Job, ttl: Duration) -> bool {
    job.status == JobStatus::PendingApproval
        && chrono::DateTime::parse_from_rfc3339(&job.updated_at).is_ok_and(|since| {
            chrono::Utc::now()
                .signed_duration_since(since)
                .num_milliseconds()
                >= ttl.as_millis() as i64
        })
}

/// Marks a pending job `expired` and records it. Returns the job, or `None` if it was no longer
/// pending.
pub async fn expire(
    store: &Store,
    audit: &AuditWriter,
    job: &Job,
    ttl: Duration,
) -> Result<Option<Job>, StateError> {
    let reason = format!(
        "no approval within {} s; it will never be applied",
        ttl.as_secs()
    );
    let expired = store
        .transition(
            &job.id,
            &[JobStatus::PendingApproval],
            JobStatus::Expired,
            &[("reason", Some(reason))],
        )
        .await?;
    if let Some(j) = &expired {
        info!(job = %j.id, "approval expired");
        audit.append(job_record(j, "worker")).await?;
    }
    Ok(expired)
}

/// The audit record of a job's outcome.
pub fn job_record(job: &Job, actor: &str) -> Record {
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
        actor: Some(actor.to_string()),
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

/// What deciding a job left to do besides recording it.
#[derive(Default)]
struct Outcome {
    /// Leave the message for a retry, for this reason.
    retry: Option<String>,
    /// The breaker tripped: (enforcements in the window, limit, window seconds).
    tripped: Option<(usize, u32, u64)>,
    /// How long the script took, and applying and verifying, in milliseconds.
    plan_ms: f64,
    apply_ms: f64,
}

fn end(job: &mut Job, status: JobStatus, reason: impl Into<String>) {
    job.status = status;
    job.reason = Some(reason.into());
}

/// The `rectify:exempt` tag's exemption, if it holds today: its value is a reason, optionally
/// with `until=YYYY-MM-DD`.
pub fn tag_exemption(resource: &Value, today: &str) -> Option<String> {
    let value = resource.get("tags")?.get("rectify:exempt")?.as_str()?;
    let until = value
        .split([';', ',', ' '])
        .find_map(|part| part.trim().strip_prefix("until="));
    if until.is_some_and(|u| u < today) {
        return None;
    }
    Some(if value.trim().is_empty() {
        "(no reason given)".to_string()
    } else {
        value.trim().to_string()
    })
}

/// Today in UTC, as `YYYY-MM-DD`.
pub fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

/// Fills in the job's outcome.
async fn decide(
    ctx: &Context,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
    job: &mut Job,
    previous: Option<&Job>,
) -> Outcome {
    let mut outcome = Outcome::default();
    let today = today();
    if !snapshot.account_allowed(&job.account) {
        end(
            job,
            JobStatus::AccountNotAllowed,
            format!("account {} is not in the allow-list", job.account),
        );
        return outcome;
    }
    if job.mode == Mode::Off {
        end(job, JobStatus::Off, "the remediation is off");
        return outcome;
    }
    if let Some(e) = snapshot.exemption(r.name(), &job.account, &job.resource_id, &today) {
        let until = e
            .until
            .as_deref()
            .map(|u| format!(" until {u}"))
            .unwrap_or_default();
        end(
            job,
            JobStatus::Exempt,
            format!("exempted by {}{until}: {}", e.by, e.reason),
        );
        return outcome;
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
        return outcome;
    }
    // The remediation as routed: a reload while this job runs does not change its script.
    let remediation = r.clone();
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
            return outcome;
        }
        Err(e) => {
            let retry = e.retryable();
            end(
                job,
                JobStatus::Failed,
                format!("observing the resource failed: {e}"),
            );
            outcome.retry = retry.then(|| e.to_string());
            return outcome;
        }
    };
    job.before = Some(before.clone());
    if snapshot.tag_exemptions(r)
        && let Some(reason) = tag_exemption(&before, &today)
    {
        end(
            job,
            JobStatus::Exempt,
            format!("tagged rectify:exempt: {reason}"),
        );
        return outcome;
    }
    let planning = std::time::Instant::now();
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
            return outcome;
        }
    };
    outcome.plan_ms = planning.elapsed().as_secs_f64() * 1000.0;
    let hash = plan.hash();
    job.plan_hash = Some(hash.clone());
    job.plan = Some(plan.clone());
    if plan.is_empty() {
        let reason = plan
            .reason
            .clone()
            .unwrap_or_else(|| "already compliant".into());
        end(job, JobStatus::NoOp, reason);
        return outcome;
    }
    let approved = previous.filter(|p| p.status == JobStatus::Approved);
    if let Some(p) = approved {
        if p.approved_plan_hash.as_deref() != Some(hash.as_str()) {
            end(
                job,
                JobStatus::PendingApproval,
                format!(
                    "changed since approval: {} approved plan {}, the resource now needs plan {}; approve again",
                    p.approved_by.as_deref().unwrap_or("someone"),
                    p.approved_plan_hash
                        .as_deref()
                        .map_or("?", |h| &h[..12.min(h.len())]),
                    &hash[..12]
                ),
            );
            return outcome;
        }
        job.approved_by = p.approved_by.clone();
        job.approved_at = p.approved_at.clone();
        job.approved_plan_hash = p.approved_plan_hash.clone();
        job.approval_reason = p.approval_reason.clone();
    }
    match (job.mode, approved.is_some()) {
        (Mode::DryRun, _) => {
            end(
                job,
                JobStatus::Planned,
                "dry-run: the plan is recorded and nothing was changed",
            );
            return outcome;
        }
        (Mode::Approval, false) => {
            end(
                job,
                JobStatus::PendingApproval,
                "waiting for an operator's approval",
            );
            return outcome;
        }
        _ => {}
    }
    if snapshot.global.paused {
        let why = snapshot
            .global
            .pause_reason
            .as_deref()
            .unwrap_or("no reason given");
        let by = snapshot
            .global
            .updated_by
            .as_deref()
            .unwrap_or("an operator");
        if approved.is_some() {
            end(
                job,
                JobStatus::Approved,
                format!(
                    "paused by {by} ({why}): the approved plan runs after `rectify resume` and `rectify jobs retry {}`",
                    job.id
                ),
            );
        } else {
            end(
                job,
                JobStatus::Planned,
                format!("paused by {by} ({why}): the plan is recorded and nothing was changed"),
            );
        }
        return outcome;
    }
    if approved.is_none() {
        let (limit, window) = snapshot.breaker(r);
        match ctx.store.breaker_admit(r.name(), limit, window).await {
            Ok(Breaker::Admitted) => {}
            Ok(Breaker::Tripped(count)) => {
                end(
                    job,
                    JobStatus::PendingApproval,
                    format!(
                        "blast-radius breaker: {count} enforcements in {window} s reached the limit of {limit}; held for approval"
                    ),
                );
                outcome.tripped = Some((count, limit, window));
                return outcome;
            }
            Err(e) => {
                end(
                    job,
                    JobStatus::Failed,
                    format!("the breaker cannot be read: {e}"),
                );
                outcome.retry = Some(e.to_string());
                return outcome;
            }
        }
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
            return outcome;
        }
    }
    let applying = std::time::Instant::now();
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
            outcome.retry = retry.then(|| e.to_string());
            return outcome;
        }
    }
    outcome.apply_ms = applying.elapsed().as_secs_f64() * 1000.0;
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
                return outcome;
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
                return outcome;
            }
            Ok(p) => last_plan = Some(p),
            Err(e) => {
                end(
                    job,
                    JobStatus::FailedVerify,
                    format!("re-planning after the fix failed: {e}"),
                );
                return outcome;
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
    outcome
}

/// The breaker tripped: the remediation goes to approval mode, loudly, on the record.
async fn trip_breaker(
    ctx: &Context,
    r: &Arc<Remediation>,
    job: &Job,
    count: usize,
    limit: u32,
    window: u64,
) {
    error!(
        remediation = r.name(),
        count,
        limit,
        window_seconds = window,
        "BLAST-RADIUS BREAKER TRIPPED: the remediation is switched to approval mode; reset with `rectify settings set {} --mode enforce`",
        r.name()
    );
    let by = "rectify (blast-radius breaker)".to_string();
    let mut switched = false;
    for _ in 0..5 {
        let snapshot = match ctx.store.settings().await {
            Ok(s) => s,
            Err(e) => {
                error!(error = %e, "the breaker could not switch the remediation to approval");
                return;
            }
        };
        let old = snapshot
            .settings
            .iter()
            .find(|s| s.remediation == r.name() && s.scope == "*")
            .cloned();
        if old.as_ref().and_then(|o| o.mode) == Some(Mode::Approval) {
            // Another job tripped it a moment ago.
            return;
        }
        let mut new = old.clone().unwrap_or(Setting {
            remediation: r.name().to_string(),
            scope: "*".into(),
            ..Setting::default()
        });
        new.mode = Some(Mode::Approval);
        new.updated_by = Some(by.clone());
        match ctx
            .store
            .put_setting(&new, old.as_ref().map_or(0, |o| o.version))
            .await
        {
            Ok(()) => {
                switched = true;
                break;
            }
            Err(StateError::Conflict(_)) => continue,
            Err(e) => {
                error!(error = %e, "the breaker could not switch the remediation to approval");
                return;
            }
        }
    }
    if !switched {
        // Nothing was written: the record must not say the mode was set.
        error!(
            "the breaker could not switch the remediation to approval: its settings kept changing"
        );
        return;
    }
    let record = Record {
        kind: "settings".into(),
        remediation: Some(r.name().to_string()),
        job_id: Some(job.id.clone()),
        outcome: "breaker-tripped".into(),
        reason: Some(format!(
            "{count} enforcements in {window} s reached the limit of {limit}; mode set to approval"
        )),
        actor: Some(by),
        ..Record::default()
    };
    if let Err(e) = ctx.audit.append(record).await {
        error!(error = %e, "the breaker trip could not be recorded");
    }
    if let Some(n) = &ctx.notifier {
        n.breaker_tripped(job, count, limit, window).await;
    }
}
