//! Reconcile: one finding, one remediation, one job, brought to a durable outcome against the
//! live resource.
//!
//! `route → lock → claim → gates → observe → gate → plan → gates → apply → verify → record`.
//! The event's claim about the resource is never trusted: the resource is read live, the
//! script decides from what was read, and after applying, the resource is read again and
//! re-planned; a plan that is not empty then is `failed-verify`, never success.
//!
//! - [`gates`]: every gate as a pure function, in order, each failing closed;
//! - [`plan`]: observe and plan; [`apply`]: inverse first, breaker, apply; [`verify`];
//! - [`outcome`]: how a job ended and why, in one place;
//! - [`error`]: what can keep an outcome from being durable, and the one [`error_policy`]
//!   that turns it into a [`Disposition`] for the message;
//! - [`lease`]: the per-resource lock and the job's claim, renewed while the job runs.

pub mod apply;
pub mod error;
pub mod gates;
pub mod lease;
pub mod outcome;
pub mod plan;
pub mod verify;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rhai::Engine;
use tracing::{Instrument, error, info, warn};

use apply::Stopped;
pub use error::{Disposition, ReconcileError, error_policy};
use lease::ResourceLease;
pub use outcome::{JobTally, Outcome};
use plan::Observed;

use crate::audit::{AuditWriter, Record};
use crate::catalog::{Catalog, Mode, Remediation};
use crate::clock::now_text;
use crate::cloud::Cloud;
use crate::event::{Compliance, Finding, Source};
use crate::notify::Notifier;
use crate::organization::OrganizationAccounts;
use crate::script::Limits;
use crate::state::{
    AuditPuts, Claim, Finished, Job, JobStatus, JobWrite, LockedClaim, Reservation, SettingsCache,
    SettingsSnapshot, StateError, Store,
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
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |c| c.clone())
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
    /// Jobs this worker ended, for the summary a run ends with.
    pub tally: JobTally,
    /// The Organization's accounts, for an allow-list set to `organization`.
    pub organization: OrganizationAccounts,
    /// This worker's identity in job leases.
    pub owner: String,
    /// How long a claim holds (the queue's visibility timeout).
    pub lease: Duration,
    /// How long a plan waits for an approval before it expires, and an approval waits to be
    /// executed.
    pub approval_ttl: Duration,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub status: JobStatus,
    /// The job ended for a passing reason (throttling, a 5xx): its message is worth retrying.
    pub retry: Option<String>,
}

impl Ended {
    /// What to do with the message that carried this job.
    pub fn disposition(&self) -> Disposition {
        match &self.retry {
            Some(reason) => Disposition::Retry(reason.clone()),
            None => Disposition::Done,
        }
    }
}

/// The disposition of a reconcile's result.
pub fn disposition(result: &Result<Ended, ReconcileError>) -> Disposition {
    match result {
        Ok(ended) => ended.disposition(),
        Err(e) => error_policy(e),
    }
}

/// Handles one finding: routes it and reconciles each remediation it routes to.
pub async fn handle_finding(ctx: &Context, finding: &Finding) -> Disposition {
    let snapshot = match ctx.settings.get().await {
        Ok(s) => s,
        Err(e) => {
            warn!(rule = %finding.rule, resource = %finding.resource_id, error = %e,
                "settings cannot be read: nothing is changed and the message will be retried");
            return error_policy(&ReconcileError::Settings(e));
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
        return match cancel_pending(ctx, finding, &routes, &snapshot).await {
            Ok(()) => Disposition::Done,
            Err(e) => error_policy(&e),
        };
    }
    if !finding.compliance.wants_fix() {
        info!(rule = %finding.rule, resource = %finding.resource_id, compliance = ?finding.compliance,
            "finding does not ask for a fix");
        return Disposition::Done;
    }
    let mut disposition = Disposition::Done;
    for r in routes {
        let result = reconcile(ctx, finding, &r, &snapshot).await;
        disposition = disposition.and(self::disposition(&result));
    }
    disposition
}

/// A resource reported compliant or out of scope: its plans waiting for (or holding) an
/// approval are cancelled, with the reason, but only once the resource, read again, plans
/// empty. The event's word is not trusted (anyone who can put a message on the queue could
/// forge it): a job whose resource still needs a fix, or cannot be read, stays as it is, and
/// the audit trail says why.
async fn cancel_pending(
    ctx: &Context,
    finding: &Finding,
    routes: &[Arc<Remediation>],
    snapshot: &SettingsSnapshot,
) -> Result<(), ReconcileError> {
    // Jobs are filed under the id their finding used: a resource named another way (an IAM
    // user by its unique id) has its jobs under its name too.
    let name = lock_name(
        ctx,
        snapshot,
        &finding.account,
        &finding.region,
        &finding.resource_type,
        &finding.resource_id,
    )
    .await?;
    let mut jobs = Vec::new();
    for id in
        std::iter::once(&finding.resource_id).chain((name != finding.resource_id).then_some(&name))
    {
        let key = crate::state::resource_key(
            &finding.account,
            &finding.region,
            &finding.resource_type,
            id,
        );
        jobs.extend(ctx.store.jobs_for_resource(&key).await.map_err(|source| {
            ReconcileError::JobsOfResource {
                resource: id.clone(),
                source,
            }
        })?);
    }
    let reported = format!(
        "rule {} reported the resource {}",
        finding.rule,
        match finding.compliance {
            Compliance::Compliant => "COMPLIANT",
            _ => "NOT_APPLICABLE",
        }
    );
    for job in jobs
        .iter()
        .filter(|j| matches!(j.status, JobStatus::PendingApproval | JobStatus::Approved))
    {
        let Some(r) = routes.iter().find(|r| r.name() == job.remediation) else {
            continue;
        };
        if let Some(why) = still_needed(ctx, r, snapshot, job).await {
            info!(job = %job.id, remediation = %job.remediation, resource = %job.resource_id,
                reason = %why, "pending job kept: the resource still needs its fix");
            let mut kept = job.clone();
            kept.reason = Some(format!("kept: {reported}, but {why}"));
            ctx.audit
                .append(Record::for_job(&kept, "worker"))
                .await
                .map_err(ReconcileError::Audit)?;
            continue;
        }
        let reason = format!("cancelled: {reported}, and read again it needs no change");
        // An approval given since the job was read does not save it: the resource needs no
        // change.
        let cancelled = ctx
            .store
            .transition_latest_recorded(
                job,
                &[JobStatus::PendingApproval, JobStatus::Approved],
                JobStatus::Cancelled,
                &[("reason", Some(reason))],
                &ctx.audit.job_recorder(&ctx.store, "worker"),
            )
            .await
            .map_err(|source| ReconcileError::Cancel {
                job: job.id.clone(),
                source,
            })?;
        if cancelled.is_some() {
            info!(job = %job.id, remediation = %job.remediation, resource = %job.resource_id, "pending job cancelled");
        }
    }
    Ok(())
}

/// Why a pending job's resource still needs its fix, read again now; `None` when it plans
/// empty or no longer exists. An account the allow-list no longer allows is not read (the job
/// stays: it cannot run there anyway).
async fn still_needed(
    ctx: &Context,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
    job: &Job,
) -> Option<String> {
    let organization = match organization_for(ctx, snapshot, &job.account).await {
        Ok(o) => o,
        Err(e) => return Some(format!("the Organization's accounts cannot be listed: {e}")),
    };
    if !snapshot.account_allowed(&job.account, organization.as_deref()) {
        return Some(format!(
            "account {} is not in the allow-list: the resource is not read again",
            job.account
        ));
    }
    let before = match plan::observe(ctx, job).await {
        Ok(v) => v,
        Err(crate::cloud::CloudError::NotFound { .. }) => return None,
        Err(e) => return Some(format!("the resource cannot be read again: {e}")),
    };
    let params = snapshot.params_for(r, &job.account);
    match plan::plan_blocking(ctx, r, before, params).await {
        Ok(p) if p.is_empty() => None,
        Ok(p) => Some(format!(
            "read again it still needs: {}",
            p.actions
                .iter()
                .map(crate::action::Action::summary)
                .collect::<Vec<_>>()
                .join("; ")
        )),
        Err(e) => Some(format!("re-planning failed: {e}")),
    }
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
        Err(source) => {
            return error_policy(&ReconcileError::ReadJob {
                job: job_id.to_string(),
                source,
            });
        }
    };
    if let Some(of) = job.undoes() {
        warn!(
            job = job_id,
            undid = of,
            "control message names an undo: it is not run as a remediation (`rectify jobs undo` tries it again)"
        );
        return Disposition::Done;
    }
    let Some(r) = ctx.catalog.current().get(&job.remediation).cloned() else {
        warn!(job = job_id, remediation = %job.remediation, "job's remediation is not in the catalog");
        return Disposition::Done;
    };
    let snapshot = match ctx.settings.get().await {
        Ok(s) => s,
        Err(e) => return error_policy(&ReconcileError::Settings(e)),
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
        hub: job.hub.clone(),
        rectify_noted: false,
    };
    disposition(&reconcile(ctx, &finding, &r, &snapshot).await)
}

/// The Organization's ACTIVE accounts when the allow-list is `organization` (read again when
/// `account` is not among them, see [`OrganizationAccounts::active`]); none otherwise.
pub(crate) async fn organization_for(
    ctx: &Context,
    snapshot: &SettingsSnapshot,
    account: &str,
) -> Result<Option<Arc<BTreeSet<String>>>, crate::cloud::CloudError> {
    if !snapshot.global.organization {
        return Ok(None);
    }
    ctx.organization.active(account).await.map(Some)
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
        created: Vec::new(),
        script_sha256: Some(r.script_sha256.clone()),
        approved_by: None,
        approved_at: None,
        approved_plan_hash: None,
        approval_reason: None,
        approved_in: None,
        requested_by: None,
        created_at: now.clone(),
        updated_at: now,
        attempts: 0,
        hub: finding.hub.clone(),
        hub_retry: false,
    }
}

/// The span every log line of one job carries.
pub(crate) fn job_span(job: &Job) -> tracing::Span {
    tracing::info_span!("job", job = %job.id, remediation = %job.remediation,
        account = %job.account, resource = %job.resource_id)
}

/// Locks the resource, claims the job for (finding, remediation), decides and records it.
pub async fn reconcile(
    ctx: &Context,
    finding: &Finding,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
) -> Result<Ended, ReconcileError> {
    let job = new_job(finding, r, snapshot.mode_for(r, &finding.account));
    let span = job_span(&job);
    async {
        // Security Hub imports each write-back as an update of the finding, with the
        // evaluation's time unchanged: a job of it that exists already saw this evaluation.
        if finding.rectify_noted {
            let existing =
                ctx.store
                    .job(&job.id)
                    .await
                    .map_err(|source| ReconcileError::ReadJob {
                        job: job.id.clone(),
                        source,
                    })?;
            if let Some(existing) = existing {
                info!(
                    status = existing.status.as_str(),
                    "the finding comes back with rectify's own note on it: the job stands"
                );
                return ended_already(ctx, r, snapshot, &existing).await;
            }
        }
        // The resource's lock and the job's claim are one write; in enforce mode it also counts
        // the enforcement on the breaker, given back with the outcome if none is made.
        let lock_owner = format!("{}/{}", ctx.owner, job.id);
        let name = lock_name(
            ctx,
            snapshot,
            &job.account,
            &job.region,
            &job.resource_type,
            &job.resource_id,
        )
        .await?;
        let key = lock_key(&job, r.scope(), &name);
        let breaker = (job.mode == Mode::Enforce).then(|| snapshot.breaker(r, &job.account));
        let taken = std::time::Instant::now();
        let claimed = ctx
            .store
            .claim_locked(
                &key,
                &lock_owner,
                &job,
                &ctx.owner,
                ctx.lease,
                breaker.as_ref(),
            )
            .await;
        let (previous, reserved) = match claimed {
            Ok(LockedClaim::Won(previous, reserved)) => (previous, reserved),
            Ok(LockedClaim::ResourceHeld) => {
                info!("another job holds this resource; the message will come back");
                return Err(ReconcileError::ResourceHeld);
            }
            Ok(LockedClaim::Done(existing)) => {
                return ended_already(ctx, r, snapshot, &existing).await;
            }
            Ok(LockedClaim::Busy) => {
                info!("another worker holds this job's lease; the message will come back");
                return Err(ReconcileError::JobHeld);
            }
            Err(e) => {
                warn!(error = %e, "job cannot be claimed: nothing is changed");
                return Err(ReconcileError::Claim(e));
            }
        };
        let lease = ResourceLease::held(&ctx.store, &key, &lock_owner, ctx.lease, taken);
        let result = run_won(ctx, r, snapshot, job, previous, reserved, None, &lease).await;
        lease.release().await;
        result
    }
    .instrument(span)
    .await
}

/// The key of the lock a job takes: its resource, under `name` (the first of the names it goes
/// by, [`crate::resource::lock_name_of`], so that findings naming it two ways take one lock), in
/// its region, or in every region when what its remediation changes is one per account (an
/// account's S3 Public Access Block, reported by Config in each region, is one setting: two
/// regions' jobs must not run at once). The name is taken without case: an IAM user name or an
/// RDS identifier is unique without it, so two spellings of one take one lock.
pub(crate) fn lock_key(job: &Job, scope: crate::resource::Scope, name: &str) -> String {
    let region = match scope {
        crate::resource::Scope::Global => "*",
        crate::resource::Scope::Regional => &job.region,
    };
    crate::state::resource_key(
        &job.account,
        region,
        &job.resource_type,
        &name.to_ascii_lowercase(),
    )
}

/// The name a resource its finding names `id` is locked under: `id`, or, when that is another
/// of the resource's names (an IAM user's unique id), the first of them, looked up in an
/// account the allow-list allows (nothing is read in another: the job is refused after its
/// claim). A lookup that fails for a passing reason (throttling, a 5xx) leaves the message for
/// a retry, before any claim; one that fails otherwise (gone, access denied) leaves the
/// finding's id, and the read after the claim meets the same and records it. Should the lock's
/// name still not be the resource's, apply finds so and changes nothing under it.
async fn lock_name(
    ctx: &Context,
    snapshot: &SettingsSnapshot,
    account: &str,
    region: &str,
    resource_type: &str,
    id: &str,
) -> Result<String, ReconcileError> {
    let Some(rt) = crate::resource::lookup(resource_type).filter(|rt| rt.named_otherwise(id))
    else {
        return Ok(id.to_string());
    };
    let allowed = organization_for(ctx, snapshot, account)
        .await
        .is_ok_and(|o| snapshot.account_allowed(account, o.as_deref()));
    if !allowed {
        return Ok(id.to_string());
    }
    let clients = ctx.cloud.clients(account, region).await;
    match rt.lock_name(&clients, id).await {
        Ok(name) => Ok(name),
        Err(e) if e.retryable() => {
            warn!(error = %e, "the resource's name cannot be looked up: the message will be retried");
            Err(ReconcileError::LockName(e))
        }
        Err(e) => {
            info!(error = %e, "the resource's other name cannot be looked up: it is locked under the finding's");
            Ok(id.to_string())
        }
    }
}

/// Takes the job's resource lock. The lock's owner is this job in this worker, so that two
/// deliveries handled at once by one worker exclude each other too.
pub(crate) async fn take_lease(
    ctx: &Context,
    r: &Remediation,
    job: &Job,
) -> Result<ResourceLease, ReconcileError> {
    let owner = format!("{}/{}", ctx.owner, job.id);
    let key = lock_key(job, r.scope(), &job.resource_id);
    match ResourceLease::take(&ctx.store, &key, &owner, ctx.lease).await {
        Ok(Some(lease)) => Ok(lease),
        Ok(None) => {
            info!("another job holds this resource; the message will come back");
            Err(ReconcileError::ResourceHeld)
        }
        Err(e) => Err(ReconcileError::Lock(e)),
    }
}

/// Claims the job and runs it to a recorded outcome, under the resource's lease. `observed`
/// is a reading made under this same lease (the sweep's), used instead of reading again.
pub(crate) async fn run_claimed(
    ctx: &Context,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
    job: Job,
    observed: Option<Observed>,
    lease: &ResourceLease,
) -> Result<Ended, ReconcileError> {
    let previous = match ctx.store.claim(&job, &ctx.owner, ctx.lease).await {
        Ok(Claim::Won(previous)) => previous,
        Ok(Claim::Done(existing)) => return ended_already(ctx, r, snapshot, &existing).await,
        Ok(Claim::Busy) => {
            info!("another worker holds this job's lease; the message will come back");
            return Err(ReconcileError::JobHeld);
        }
        Err(e) => {
            warn!(error = %e, "job cannot be claimed: nothing is changed");
            return Err(ReconcileError::Claim(e));
        }
    };
    run_won(ctx, r, snapshot, job, previous, None, observed, lease).await
}

/// A delivery of a job that already ended (or waits for an approval): the Security Hub
/// write-back that failed is tried once more, a pending plan whose approval is overdue expires.
async fn ended_already(
    ctx: &Context,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
    existing: &Job,
) -> Result<Ended, ReconcileError> {
    if existing.hub_retry {
        retry_hub_update(ctx, r, snapshot, existing).await;
    }
    if existing.status == JobStatus::PendingApproval {
        return expire_if_due(ctx, existing).await;
    }
    info!(
        status = existing.status.as_str(),
        "duplicate delivery: the job already ended"
    );
    Ok(Ended {
        status: existing.status,
        retry: None,
    })
}

/// Runs a job this worker has just claimed, under `lease`, to a recorded outcome. `reserved` is
/// the enforcement its claim counted on the breaker, if it did.
#[allow(clippy::too_many_arguments)] // reason: the job, its context and what the claim and the plan gave
async fn run_won(
    ctx: &Context,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
    mut job: Job,
    previous: Option<Box<Job>>,
    mut reserved: Option<Reservation>,
    observed: Option<Observed>,
    lease: &ResourceLease,
) -> Result<Ended, ReconcileError> {
    lease.renew_claim_of(&job.id, &ctx.owner);
    // A new job's item holds only what its claim wrote, so its outcome is written whole.
    let write = match &previous {
        Some(p) => {
            job.created_at = p.created_at.clone();
            job.attempts = p.attempts + 1;
            JobWrite::Changes
        }
        None => {
            job.attempts = 1;
            JobWrite::Whole
        }
    };
    let mut decision = decide(
        ctx,
        r,
        snapshot,
        &mut job,
        previous.as_deref(),
        observed,
        &mut reserved,
        lease,
    )
    .await;
    if let Some(said) = gates::interrupted(previous.as_deref()) {
        warn!("{said}");
        decision.note = Some(noted(decision.note.take(), &said));
    }
    // An enforcement counted in the claim and not made is given back with the outcome.
    record(ctx, r, &mut job, write, &decision, lease, reserved.as_ref()).await?;
    if !update_hub(ctx, r, snapshot, &job).await {
        mark_hub_retry(ctx, &job.id, true).await;
    }
    Ok(Ended {
        status: job.status,
        retry: decision.retry,
    })
}

/// Writes a recorded job's outcome back to the Security Hub finding that started it (when it
/// came from one, its outcome calls for it, and the remediation's setting allows it). Returns
/// false when the write failed: the failure is logged and counted, and never fails the job.
async fn update_hub(
    ctx: &Context,
    r: &Remediation,
    snapshot: &SettingsSnapshot,
    job: &Job,
) -> bool {
    let Some(hub) = &job.hub else { return true };
    if !snapshot.securityhub_updates(r) {
        return true;
    }
    let Some(update) = crate::securityhub::update_for(job) else {
        return true;
    };
    match Box::pin(crate::securityhub::write(
        &ctx.cloud,
        &job.account,
        hub,
        &update,
    ))
    .await
    {
        Ok(()) => {
            info!(finding = %hub.id, status = ?update.status, "Security Hub finding updated");
            true
        }
        Err(e) => {
            warn!(finding = %hub.id, error = %e,
                "the Security Hub finding cannot be updated: the job stands, and the update is tried once more on the finding's next delivery");
            crate::metrics::securityhub_update_failed(r.name());
            false
        }
    }
}

/// The one more try of a write-back that failed, on a later delivery of the finding; whatever
/// it gives, it is not tried again.
async fn retry_hub_update(ctx: &Context, r: &Remediation, snapshot: &SettingsSnapshot, job: &Job) {
    update_hub(ctx, r, snapshot, job).await;
    mark_hub_retry(ctx, &job.id, false).await;
}

async fn mark_hub_retry(ctx: &Context, id: &str, retry: bool) {
    if let Err(e) = ctx.store.set_hub_retry(id, retry).await {
        warn!(error = %e, "the Security Hub write-back's retry mark cannot be written");
    }
}

/// What deciding a job came to.
struct Decision {
    outcome: Outcome,
    /// Leave the message for a retry, for this reason.
    retry: Option<String>,
    /// Said after the outcome's reason (a `rectify:exempt` tag that was ignored, and why).
    note: Option<String>,
    /// How long the script took, and applying, in milliseconds.
    plan_ms: f64,
    apply_ms: f64,
}

/// A note with `more` said after what it already says.
fn noted(note: Option<String>, more: &str) -> String {
    match note {
        Some(n) => format!("{n}; {more}"),
        None => more.to_string(),
    }
}

impl Decision {
    fn ended(outcome: Outcome) -> Decision {
        Decision {
            outcome,
            retry: None,
            note: None,
            plan_ms: 0.0,
            apply_ms: 0.0,
        }
    }
}

/// The job's steps, in order: gates, observe and plan, gates, apply, verify. Nothing is applied
/// once `lease` no longer holds the resource and the job.
#[allow(clippy::too_many_arguments)] // reason: the job, its context and what the claim gave
async fn decide(
    ctx: &Context,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
    job: &mut Job,
    previous: Option<&Job>,
    observed: Option<Observed>,
    reserved: &mut Option<Reservation>,
    lease: &ResourceLease,
) -> Decision {
    // An approval still holds (in time, and on the record) before anything is read, planned or
    // recorded under it.
    if let Some(p) = previous.filter(|p| p.status == JobStatus::Approved)
        && let Err(stopped) = approval_holds(ctx, p).await
    {
        // The record shows the plan that was approved and not executed.
        job.plan = p.plan.clone();
        job.plan_hash = p.plan_hash.clone();
        if stopped.outcome.status() == JobStatus::Approved {
            // Its record cannot be read now: the job stays approved for a later try.
            take_approval(job, p);
        }
        return Decision {
            retry: stopped.retry,
            ..Decision::ended(stopped.outcome)
        };
    }
    let today = crate::clock::today();
    let organization = match organization_for(ctx, snapshot, &job.account).await {
        Ok(o) => o,
        Err(e) => {
            return Decision {
                retry: e.retryable().then(|| e.to_string()),
                ..Decision::ended(Outcome::AccountsUnreadable {
                    error: e.to_string(),
                })
            };
        }
    };
    let params = match gates::before_observe(
        snapshot,
        r,
        job.mode,
        &job.account,
        &job.resource_id,
        &today,
        organization.as_deref(),
    ) {
        Ok(p) => p,
        Err(outcome) => return Decision::ended(outcome),
    };
    let observed = match observed {
        Some(o) => o,
        None => match plan::observe_and_plan(ctx, r, snapshot, job, &params, &today).await {
            Ok(o) => o,
            Err(held) => {
                job.before = held.before;
                return Decision {
                    retry: held.retry,
                    ..Decision::ended(held.outcome)
                };
            }
        },
    };
    let Observed {
        before: read,
        plan,
        plan_ms,
        mut note,
    } = observed;
    // A retry of a job that changed its resource before it failed goes on with that try's
    // plan, from the reading it was made from, when this reading asks nothing more: the job's
    // record (and its undo) then covers what both tries applied.
    let (before, plan, left) = match gates::continued(previous, r, job.mode, &plan) {
        Some(earlier) => {
            info!(
                actions = earlier.plan.actions.len(),
                left = plan.actions.len(),
                "an earlier try applied part of this job's plan: it goes on with that plan"
            );
            note = Some(noted(
                note,
                "goes on with the plan of the try that applied part of it",
            ));
            // Until this try applies anything, its record keeps what the earlier one changed
            // and how to undo it.
            job.created = earlier.created.to_vec();
            job.inverse = Some(earlier.inverse.to_vec());
            job.after = Some(read.clone());
            (
                earlier.before.clone(),
                earlier.plan.clone(),
                Some(plan.actions),
            )
        }
        None => {
            if let Some(said) = gates::left_behind(previous) {
                warn!("{said}");
                note = Some(noted(note, &said));
            }
            (read.clone(), plan, None)
        }
    };
    job.before = Some(before.clone());
    let hash = plan.hash();
    job.plan_hash = Some(hash.clone());
    job.plan = Some(plan.clone());
    let decision = |outcome| Decision {
        plan_ms,
        note: note.clone(),
        ..Decision::ended(outcome)
    };
    if let Some(p) = gates::approval(previous, &plan, &hash) {
        take_approval(job, p);
    }
    let go = match gates::after_plan(snapshot, r, job.mode, &plan, &hash, previous, &job.id) {
        Ok(go) => go,
        Err(outcome) => return decision(outcome),
    };
    let target = apply::Target {
        plan: &plan,
        before: &before,
        read: &read,
        left: left.as_deref(),
    };
    let apply_ms = match apply::apply(ctx, r, snapshot, job, &target, go, reserved, lease).await {
        Ok(ms) => ms,
        Err(stopped) => {
            return Decision {
                retry: stopped.retry,
                ..decision(stopped.outcome)
            };
        }
    };
    let outcome = verify::verify(ctx, r, job, &read, &params, plan.actions.len()).await;
    Decision {
        apply_ms,
        ..decision(outcome)
    }
}

/// The records an approval names (`id`, of job `job`): the record at that place when it
/// approves the job (one GetItem), else the job's records in that chain (a Query, for a record
/// that ended up elsewhere in its chain, or an approval that names a chain alone).
async fn approval_records(
    ctx: &Context,
    id: &str,
    job: &str,
) -> Result<Vec<crate::audit::Stored>, StateError> {
    let (chain, seq) = crate::audit::record_place(id);
    if let Some(seq) = seq
        && let Some(s) = ctx.audit.read_record(chain, seq).await?
        && s.record.job_id.as_deref() == Some(job)
        && s.record.outcome == crate::audit::RecordOutcome::Job(JobStatus::Approved)
    {
        return Ok(vec![s]);
    }
    ctx.audit.read_job_in_chain(chain, job).await
}

/// The job runs under `p`'s approval: it carries who approved, when, which plan, why, and
/// where that is recorded.
fn take_approval(job: &mut Job, p: &Job) {
    job.approved_by = p.approved_by.clone();
    job.approved_at = p.approved_at.clone();
    job.approved_plan_hash = p.approved_plan_hash.clone();
    job.approval_reason = p.approval_reason.clone();
    job.approved_in = p.approved_in.clone();
}

/// Whether the approval of `p` (an approved job) still holds: given within the TTL
/// ([`gates::approval_in_time`]), and on the record ([`gates::approval_on_record`]: its record
/// is read only once the job names one in a command's chain). Records that cannot be read now
/// keep the approval, and the job is tried again later.
async fn approval_holds(ctx: &Context, p: &Job) -> Result<(), Stopped> {
    if let Err(outcome) = gates::approval_in_time(Some(p), chrono::Utc::now(), ctx.approval_ttl) {
        warn!(
            approved_by = p.approved_by.as_deref().unwrap_or(""),
            "approval expired before it was executed: nothing is changed"
        );
        return Err(Stopped {
            retry: None,
            outcome,
        });
    }
    let not_on_record = |outcome: Outcome| {
        warn!(
            approved_by = p.approved_by.as_deref().unwrap_or(""),
            reason = %outcome.reason(),
            "approval not on the record: nothing is changed"
        );
        Stopped {
            retry: None,
            outcome,
        }
    };
    let id = gates::approval_record_named(p).map_err(not_on_record)?;
    let chain = match approval_records(ctx, id, &p.id).await {
        Ok(chain) => chain,
        Err(e) => {
            let again = if e.retryable() {
                "the approved plan is tried again later".to_string()
            } else {
                format!(
                    "the job stays approved: `rectify jobs retry {}` runs it once the audit table can be read",
                    p.id
                )
            };
            let reason = format!(
                "the audit record of the approval cannot be read ({e}): nothing was changed; {again}"
            );
            warn!(error = %e, "approval's audit record unreadable: nothing is changed");
            return Err(Stopped {
                retry: e.retryable().then(|| e.to_string()),
                outcome: Outcome::NotReady {
                    reason,
                    approved: true,
                },
            });
        }
    };
    gates::approval_on_record(p, &chain, chrono::Utc::now(), ctx.approval_ttl)
        .map_err(not_on_record)
}

/// Makes a decided job durable: the audit record (and its anchor, when one is due), the job's
/// outcome, the release of the resource's lock and an unspent breaker count given back, in one
/// write (the message is deleted only after it); then the metric, the
/// log line, the notification and, when the breaker tripped, the switch to approval.
async fn record(
    ctx: &Context,
    r: &Arc<Remediation>,
    job: &mut Job,
    write: JobWrite,
    decision: &Decision,
    lease: &ResourceLease,
    release: Option<&Reservation>,
) -> Result<(), ReconcileError> {
    job.status = decision.outcome.status();
    job.reason = Some(match &decision.note {
        Some(note) => format!("{}; {note}", decision.outcome.reason()),
        None => decision.outcome.reason(),
    });
    job.updated_at = now_text();
    let actor = job.approved_by.clone().unwrap_or_else(|| "worker".into());
    let pending = ctx.audit.prepare(Record::for_job(job, &actor)).await;
    let puts = AuditPuts {
        record: pending.put().map_err(ReconcileError::Audit)?,
        anchor: pending.anchor_put().map_err(ReconcileError::Audit)?,
    };
    // A renewal after the lock's release would take it again.
    lease.stop_renewing();
    let written = ctx
        .store
        .finish_recorded(job, &ctx.owner, write, puts, Some(lease.lock()), release)
        .await;
    match written {
        Ok(Finished::Written { anchored }) => {
            lease.released_with_outcome();
            pending.written(anchored).await;
        }
        Ok(Finished::AuditTaken) => match pending.landed().await {
            // An earlier try of this very write landed before its answer was lost (whether its
            // anchor did is not known: the anchor chain's head is read again).
            Ok(true) => {
                lease.released_with_outcome();
                pending.written(false).await;
            }
            Ok(false) => {
                let e = pending.place_taken();
                warn!(error = %e, "audit record cannot be written: the message will be retried");
                return Err(ReconcileError::Audit(e));
            }
            Err(e) => {
                warn!(error = %e, "audit record cannot be written: the message will be retried");
                return Err(ReconcileError::Audit(e));
            }
        },
        Ok(Finished::LeaseLost) => {
            // The decision is on the record even though another worker holds the job now.
            if let Err(e) = pending.write_alone().await {
                warn!(error = %e, "audit record cannot be written: the message will be retried");
                return Err(ReconcileError::Audit(e));
            }
            let e = crate::state::StateError::LeaseLost(job.id.clone());
            warn!(error = %e, "job outcome cannot be written: the message will be retried");
            return Err(ReconcileError::Finish(e));
        }
        Err(e) => {
            warn!(error = %e, "job outcome and audit record cannot be written: the message will be retried");
            return Err(ReconcileError::Finish(e));
        }
    }
    // Counted once its record is in the audit trail: one job metric for each job record, so a
    // retry after a failed write is not counted twice.
    crate::metrics::job_ended(
        r.name(),
        job.status.as_str(),
        decision.plan_ms,
        decision.apply_ms,
    );
    ctx.tally.count(job.status);
    info!(
        outcome = job.status.as_str(),
        mode = job.mode.as_str(),
        actions = job.plan.as_ref().map_or(0, |p| p.actions.len()),
        reason = job.reason.as_deref().unwrap_or(""),
        "job ended"
    );
    if let Some(n) = &ctx.notifier {
        n.job(job).await;
    }
    if let Outcome::BreakerTripped {
        count,
        limit,
        window,
    } = decision.outcome
    {
        trip_breaker(ctx, r, job, count, limit, window).await;
    }
    Ok(())
}

/// A plan left waiting for an approval longer than the approval TTL expires; it is never applied.
async fn expire_if_due(ctx: &Context, job: &Job) -> Result<Ended, ReconcileError> {
    if !approval_expired(job, ctx.approval_ttl) {
        info!("duplicate delivery: the job waits for an approval");
        return Ok(Ended {
            status: job.status,
            retry: None,
        });
    }
    let expired = expire(&ctx.store, &ctx.audit, job, ctx.approval_ttl)
        .await
        .map_err(ReconcileError::Expire)?;
    Ok(Ended {
        status: expired.map_or(job.status, |j| j.status),
        retry: None,
    })
}

/// Whether a job pending approval has waited longer than `ttl`.
pub fn approval_expired(job: &Job, ttl: Duration) -> bool {
    job.status == JobStatus::PendingApproval
        && chrono::DateTime::parse_from_rfc3339(&job.updated_at).is_ok_and(|since| {
            chrono::Utc::now()
                .signed_duration_since(since)
                .num_milliseconds()
                >= i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)
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
        .transition_recorded(
            job,
            &[JobStatus::PendingApproval],
            JobStatus::Expired,
            &[("reason", Some(reason))],
            &audit.job_recorder(store, "worker"),
        )
        .await?;
    if let Some(j) = &expired {
        info!(job = %j.id, "approval expired");
    }
    Ok(expired)
}

/// The breaker tripped in the job's account: the remediation goes to approval mode in that
/// account alone (over an `enforce` override of its own too), loudly, on the record. Other
/// accounts keep their mode.
async fn trip_breaker(
    ctx: &Context,
    r: &Arc<Remediation>,
    job: &Job,
    count: usize,
    limit: u32,
    window: u64,
) {
    let account = job.account.as_str();
    error!(
        remediation = r.name(),
        account,
        count,
        limit,
        window_seconds = window,
        "BLAST-RADIUS BREAKER TRIPPED: the remediation is switched to approval mode in account {account}; other accounts keep their mode; reset with `rectify settings set {} --account {account} --mode enforce`",
        r.name()
    );
    let by = "rectify (blast-radius breaker)".to_string();
    // The switch and its record are one write.
    let recorder = ctx
        .audit
        .settings_recorder(&ctx.store, |_, _: &crate::state::Setting| {
            Record::breaker_tripped(r.name(), account, &job.id, count, limit, window, &by)
        });
    let switched = ctx
        .store
        .update_setting(
            r.name(),
            account,
            |s| {
                // Another job may have tripped it a moment ago: its record stands.
                if s.mode != Some(Mode::Approval) {
                    s.mode = Some(Mode::Approval);
                    s.updated_by = Some(by.clone());
                }
            },
            &recorder,
        )
        .await;
    match switched {
        Ok((old, _)) if old.as_ref().and_then(|o| o.mode) == Some(Mode::Approval) => return,
        Ok(_) => {}
        Err(e) => {
            // The switch and its record were written together or not at all (after an
            // answer lost, either may be so): the next job over the limit tries again.
            error!(error = %e, account, "the breaker could not switch the remediation to approval");
            return;
        }
    }
    if let Some(n) = &ctx.notifier {
        n.breaker_tripped(job, count, limit, window).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Compliance, Source};

    fn job(region: &str, remediation: &str) -> Job {
        let catalog = Catalog::load(&crate::script::hardened_engine(&Default::default()), None)
            .expect("the shipped catalog loads");
        let r = catalog.get(remediation).expect("in the catalog");
        let finding = Finding {
            source: Source::Config,
            event_id: None,
            account: "111122223333".into(),
            region: region.into(),
            rule: "r".into(),
            rule_base: "r".into(),
            resource_type: "AWS::::Account".into(),
            resource_id: "111122223333".into(),
            compliance: Compliance::NonCompliant,
            ordered_at: None,
            observation: "o".into(),
            annotation: None,
            hub: None,
            rectify_noted: false,
        };
        new_job(&finding, r, Mode::Enforce)
    }

    #[test]
    fn an_account_wide_setting_is_locked_across_regions_and_a_regional_one_per_region() {
        use crate::resource::Scope;
        let (east, west) = (
            job("us-east-1", "s3-account-block-public-access"),
            job("eu-west-1", "s3-account-block-public-access"),
        );
        // One job per region, one lock for the account.
        assert_ne!(east.id, west.id);
        assert_eq!(
            lock_key(&east, Scope::Global, &east.resource_id),
            lock_key(&west, Scope::Global, &west.resource_id)
        );
        let (east, west) = (
            job("us-east-1", "ebs-default-encryption"),
            job("eu-west-1", "ebs-default-encryption"),
        );
        assert_ne!(
            lock_key(&east, Scope::Regional, &east.resource_id),
            lock_key(&west, Scope::Regional, &west.resource_id)
        );
        assert_eq!(
            lock_key(&east, Scope::Regional, &east.resource_id),
            east.resource_key()
        );
    }

    #[test]
    fn a_user_named_by_its_unique_id_or_by_its_name_is_locked_under_its_name() {
        use crate::resource::{Scope, lock_name_of};
        let user = |id: &str| Job {
            resource_type: "AWS::IAM::User".into(),
            resource_id: id.into(),
            ..job("us-east-1", "iam-deactivate-stale-keys")
        };
        let (by_id, by_name) = (user("AIDAEXAMPLE12345678"), user("alice"));
        let read = serde_json::json!({ "user_name": "Alice", "user_id": "AIDAEXAMPLE12345678" });
        let name = lock_name_of(&by_id.resource_type, &by_id.resource_id, &read);
        assert_eq!(name, "Alice");
        let wanted = lock_key(&by_id, Scope::Global, &name);
        // One lock, whichever name the finding used and however it spelt it.
        assert_eq!(wanted, lock_key(&by_name, Scope::Global, "alice"));
        assert_eq!(gates::locked_under(&wanted, &wanted, &name), None);
        // Locked under the unique id (its name not looked up): nothing is applied.
        let held = lock_key(&by_id, Scope::Global, &by_id.resource_id);
        assert_ne!(held, wanted);
        let why = gates::locked_under(&held, &wanted, &name).expect("held under another name");
        assert!(why.contains("\"Alice\""), "{why}");
        // A type named one way is locked under the finding's id.
        let bucket = Job {
            resource_type: "AWS::S3::Bucket".into(),
            resource_id: "b1".into(),
            ..job("us-east-1", "s3-block-public-access")
        };
        assert_eq!(
            lock_name_of(&bucket.resource_type, "b1", &serde_json::json!({})),
            "b1"
        );
    }
}
