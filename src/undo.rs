//! Undo: put a resource back as it was before an applied job.
//!
//! The job recorded, before anything was applied, the inverse of each action (computed from the
//! before-state). Undo trusts neither alone: it recomputes the inverse from the stored plan and
//! before-state (after checking that plan was bound to that resource and only tightened, see
//! [`crate::action::bind`]) and refuses when the stored inverse differs, so an edited job item
//! cannot make undo loosen anything else. Undo honours the pause switch and the account
//! allow-list like any job. It re-reads the resource; if it changed since the job (someone else
//! touched it), undo refuses and shows the difference unless forced. It then applies the inverse
//! actions, reads the resource again and compares it with the job's before-state (security group
//! rule ids aside: re-authorised rules get new ids from AWS). The undo is itself a job, audited
//! under the caller's AWS identity (an operator's `--by` is a label beside it), and by default
//! it exempts the resource from the remediation until a last day (30 days on), since an undo
//! says the fix was wrong for it and the next event would otherwise fix it again.

use std::sync::Arc;

use serde_json::Value;

use crate::action::{Action, Plan, inverses_applied};
use crate::audit::Record;
use crate::catalog::Mode;
use crate::clock::now_text;
use crate::cloud::CloudError;
use crate::reconcile::Context;
use crate::reconcile::lease::ResourceLease;
use crate::reconcile::plan::observe;
pub use crate::resource::comparable;
use crate::settings::{ExemptionRequest, SettingsError, extend_exemption};
use crate::state::{Job, JobStatus, StateError};

/// A readable difference between two resource states.
pub fn difference(expected: &Value, actual: &Value) -> String {
    let e = serde_json::to_string_pretty(&comparable(expected)).unwrap_or_default();
    let a = serde_json::to_string_pretty(&comparable(actual)).unwrap_or_default();
    crate::catalog::line_diff(&e, &a)
        .lines()
        .filter(|l| l.starts_with("- ") || l.starts_with("+ "))
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
        "job {id}: its stored inverse differs from the inverse of its stored plan computed from its stored before-state ({detail}); the job item was changed after it was written, so nothing is undone"
    )]
    InverseMismatch { id: String, detail: String },
    #[error(
        "job {id}: action {index} ({kind}) created something whose id the job did not record, so undo cannot name what to delete; nothing is undone (delete it by hand if it must go)"
    )]
    CreatedNotRecorded {
        id: String,
        index: usize,
        kind: &'static str,
    },
    #[error("rectify is paused by {by} ({why}): nothing is undone until `rectify resume`")]
    Paused { by: String, why: String },
    #[error(
        "account {0} is not in the allow-list (`rectify settings accounts`): nothing is undone there"
    )]
    AccountNotAllowed(String),
    #[error("settings cannot be read, so nothing is undone: {0}")]
    SettingsUnreadable(StateError),
    #[error("the Organization's accounts cannot be listed, so nothing is undone: {0}")]
    OrganizationUnreadable(CloudError),
    #[error("--exempt-until {0:?}: {1}")]
    BadExemptUntil(String, &'static str),
    #[error(
        "{resource_id} changed since job {job_id} (- as the job left it, + now):\n{difference}\nundo would overwrite that change; use --force to undo anyway"
    )]
    Changed {
        resource_id: String,
        job_id: String,
        difference: String,
    },
    #[error(
        "{was} goes by {now} since job {job_id}: the job's inverse names it as it was, and undo locked it under that name, so nothing is undone"
    )]
    Renamed {
        was: String,
        now: String,
        job_id: String,
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
            | UndoError::CreatedNotRecorded { .. }
            | UndoError::Busy(_)
            | UndoError::Changed { .. }
            | UndoError::Renamed { .. }
            | UndoError::Paused { .. }
            | UndoError::AccountNotAllowed(_)
            | UndoError::BadExemptUntil(..) => true,
            UndoError::InverseMismatch { .. }
            | UndoError::SettingsUnreadable(_)
            | UndoError::OrganizationUnreadable(_)
            | UndoError::Unreadable(_)
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
    /// The exemption it asked for, when it asked for one.
    pub exempted: Option<Exempted>,
    /// Whether the resource is now as it was before the job (a forced undo may keep a later
    /// change the inverse did not touch).
    pub exact: bool,
    /// Why the job could not be marked undone (it was no longer applied by then, or the
    /// write failed), when it could not. The resource is restored all the same.
    pub unmarked: Option<String>,
    /// Whether an earlier run of this undo had already put the resource back and recorded it
    /// (`undo_job`) without marking the job: this run only marked it.
    pub resumed: bool,
}

/// What came of the exemption an undo asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exempted {
    /// Added, to hold until this day.
    Added(String),
    /// An exemption of the resource that lasts as long or longer was there, and is kept.
    Kept,
}

/// Who undoes: the caller's AWS identity, and the label an operator gave with `--by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The caller's ARN (`sts:GetCallerIdentity`).
    pub arn: String,
    pub label: Option<String>,
}

impl Actor {
    /// As the record names it: the ARN, and the label beside it, never instead of it.
    pub fn recorded(&self) -> String {
        match self.label.as_deref().map(str::trim) {
            Some(label) if !label.is_empty() && label != self.arn => {
                format!("{} (label: {label})", self.arn)
            }
            _ => self.arn.clone(),
        }
    }
}

/// How long the exemption an undo adds lasts when the operator names no last day.
pub const DEFAULT_EXEMPTION_DAYS: i64 = 30;

/// The last day of the exemption an undo adds: `until` (`YYYY-MM-DD`, today or later) or
/// [`DEFAULT_EXEMPTION_DAYS`] after `today`.
pub fn exemption_until(until: Option<&str>, today: &str) -> Result<String, UndoError> {
    let today_date = chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d")
        .unwrap_or_else(|_| chrono::Utc::now().date_naive());
    match until {
        None => Ok(
            (today_date + chrono::Duration::days(DEFAULT_EXEMPTION_DAYS))
                .format("%Y-%m-%d")
                .to_string(),
        ),
        Some(u) => match chrono::NaiveDate::parse_from_str(u, "%Y-%m-%d") {
            Err(_) => Err(UndoError::BadExemptUntil(u.to_string(), "use YYYY-MM-DD")),
            Ok(d) if d < today_date => Err(UndoError::BadExemptUntil(
                u.to_string(),
                "the last day of the exemption is in the past",
            )),
            Ok(d) => Ok(d.format("%Y-%m-%d").to_string()),
        },
    }
}

/// The inverse undo applies: recomputed from the stored plan and before-state, after checking
/// the stored plan was bound to that resource; an error when the stored inverse differs.
///
/// The jobs table stores the before-state with secret-looking values redacted (see
/// [`crate::redact`]) and the inverse exact, so both sides are compared under that same
/// redaction, and the stored inverse, which agrees on everything else, is what runs.
pub fn checked_inverse(
    job: &Job,
    before: &Value,
    stored: &[Action],
) -> Result<Vec<Action>, UndoError> {
    let mismatch = |detail: String| UndoError::InverseMismatch {
        id: job.id.clone(),
        detail,
    };
    let plan = job
        .plan
        .as_ref()
        .ok_or_else(|| mismatch("the job holds no plan".into()))?;
    if let Err(e) = crate::action::bind::check(&job.resource_type, before, plan) {
        let redacted_plan = redacted(&plan.actions).and_then(|actions| {
            crate::action::bind::check(
                &job.resource_type,
                before,
                &Plan {
                    actions,
                    reason: None,
                    ..Default::default()
                },
            )
            .ok()
        });
        if redacted_plan.is_none() {
            return Err(mismatch(format!(
                "its stored plan is not one rectify applies: {e}"
            )));
        }
    }
    // What a creating action made is named only by the id the job recorded: without it,
    // undo cannot say what to delete, and deletes nothing rather than guess.
    for (i, action) in plan.actions.iter().enumerate() {
        if action.creates()
            && !job
                .created
                .iter()
                .any(|c| c.action == i && c.kind == action.kind())
        {
            return Err(UndoError::CreatedNotRecorded {
                id: job.id.clone(),
                index: i + 1,
                kind: action.kind(),
            });
        }
    }
    let recomputed =
        inverses_applied(plan, before, &job.created).map_err(|e| mismatch(e.to_string()))?;
    if recomputed != stored && redacted(&recomputed) != redacted(stored) {
        return Err(mismatch(format!(
            "stored: {}; recomputed: {}",
            summaries(stored),
            summaries(&recomputed)
        )));
    }
    Ok(stored.to_vec())
}

/// Actions with secret-looking values redacted as the jobs table redacts a before-state.
fn redacted(actions: &[Action]) -> Option<Vec<Action>> {
    let mut v = serde_json::to_value(actions).ok()?;
    crate::redact::redact(&mut v);
    serde_json::from_value(v).ok()
}

fn summaries(actions: &[Action]) -> String {
    if actions.is_empty() {
        return "nothing".into();
    }
    actions
        .iter()
        .map(Action::summary)
        .collect::<Vec<_>>()
        .join("; ")
}

/// What an operator asks of an undo.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub job_id: &'a str,
    pub actor: &'a Actor,
    pub reason: &'a str,
    /// Undo even though the resource changed since the job.
    pub force: bool,
    /// Exempt the resource from the remediation afterwards.
    pub exempt: bool,
    /// The exemption's last day, `YYYY-MM-DD` [default: 30 days on].
    pub exempt_until: Option<&'a str>,
}

/// Undoes an applied job.
pub async fn undo(ctx: &Arc<Context>, request: &Request<'_>) -> Result<Undone, UndoError> {
    let job_id = request.job_id;
    let until = if request.exempt {
        Some(exemption_until(
            request.exempt_until,
            &crate::clock::today(),
        )?)
    } else {
        None
    };
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
    // The gates that hold every change hold an undo too, and fail closed.
    let snapshot = ctx
        .settings
        .get()
        .await
        .map_err(UndoError::SettingsUnreadable)?;
    let organization = crate::reconcile::organization_for(ctx, &snapshot, &job.account)
        .await
        .map_err(UndoError::OrganizationUnreadable)?;
    if !snapshot.account_allowed(&job.account, organization.as_deref()) {
        return Err(UndoError::AccountNotAllowed(job.account.clone()));
    }
    if snapshot.global.paused {
        let (by, why) = snapshot.global.pause_by_and_why();
        return Err(UndoError::Paused { by, why });
    }
    let (Some(stored), Some(before), Some(after)) = (&job.inverse, &job.before, &job.after) else {
        return Err(UndoError::NothingRecorded(job_id.to_string()));
    };
    let inverse = checked_inverse(&job, before, stored)?;
    let scope = ctx
        .catalog
        .current()
        .get(&job.remediation)
        .map_or(crate::resource::Scope::Regional, |r| r.scope());
    let name = crate::resource::lock_name_of(&job.resource_type, &job.resource_id, before);
    let key = crate::reconcile::lock_key(&job, scope, &name);
    // The lock's owner is the undo job in this process, as a worker's is its job.
    let owner = format!("{}/{}", ctx.owner, Job::undo_id(job_id));
    let Some(lease) = ResourceLease::take(&ctx.store, &key, &owner, ctx.lease).await? else {
        return Err(UndoError::Busy(job.resource_id.clone()));
    };
    let by = request.actor.recorded();
    let asked = Asked {
        by: &by,
        reason: request.reason,
        force: request.force,
        exempt_until: until,
    };
    let result = run(ctx, &job, &inverse, before, after, &asked, &lease).await;
    lease.release().await;
    result
}

/// What the operator asked of an undo.
struct Asked<'a> {
    by: &'a str,
    reason: &'a str,
    force: bool,
    /// Exempt the resource until this day, or not at all.
    exempt_until: Option<String>,
}

async fn run(
    ctx: &Arc<Context>,
    job: &Job,
    inverse: &[Action],
    before: &Value,
    after: &Value,
    asked: &Asked<'_>,
    lease: &ResourceLease,
) -> Result<Undone, UndoError> {
    let Asked {
        by, reason, force, ..
    } = *asked;
    let live = observe(ctx, job).await.map_err(UndoError::Unreadable)?;
    // The lock was taken under the name the job's reading gave; a job for the resource under
    // another name would not be held off by it.
    let (was, now) = (
        crate::resource::lock_name_of(&job.resource_type, &job.resource_id, before),
        crate::resource::lock_name_of(&job.resource_type, &job.resource_id, &live),
    );
    if !was.eq_ignore_ascii_case(&now) {
        return Err(UndoError::Renamed {
            was,
            now,
            job_id: job.id.clone(),
        });
    }
    // Each state as undo compares it (no observation time, secrets redacted, rules by content).
    let (now_c, before_c) = (comparable(&live), comparable(before));
    // An earlier undo of this job that put the resource back and wrote its own record, but
    // did not move the job to undone (its process stopped between the two writes, or the
    // second failed), is finished: nothing is applied again, the job is marked.
    if let Some(earlier) = ctx.store.job(&Job::undo_id(&job.id)).await?
        && earlier.status == JobStatus::Applied
        && (&earlier.resource_id, &earlier.account, &earlier.region)
            == (&job.resource_id, &job.account, &job.region)
        && earlier
            .after
            .as_ref()
            .is_some_and(|a| comparable(a) == now_c)
    {
        let exact = now_c == before_c;
        return finish(ctx, job, earlier, asked, exact, true).await;
    }
    // A later change: the resource differs from the job's after-state. One already as it was
    // before the job (put back by an earlier undo stopped before it wrote its record, or by
    // hand) holds no later change: the inverse changes nothing, and the undo is recorded.
    let later = now_c != comparable(after) && now_c != before_c;
    if later && !force {
        return Err(UndoError::Changed {
            resource_id: job.resource_id.clone(),
            job_id: job.id.clone(),
            difference: difference(after, &live),
        });
    }
    let now = now_text();
    let mut undo_job = Job {
        id: Job::undo_id(&job.id),
        source: "operator".into(),
        event_id: None,
        observation: format!("undo:{now}"),
        status: JobStatus::InProgress,
        mode: Mode::Enforce,
        reason: None,
        plan: Some(Plan {
            actions: inverse.to_vec(),
            reason: None,
            ..Default::default()
        }),
        plan_hash: None,
        before: Some(live.clone()),
        after: None,
        inverse: None,
        created: Vec::new(),
        approved_by: Some(by.to_string()),
        approved_at: Some(now.clone()),
        approved_plan_hash: None,
        approval_reason: Some(reason.to_string()),
        approved_in: None,
        created_at: now.clone(),
        updated_at: now,
        attempts: 1,
        hub: None,
        hub_retry: false,
        ..job.clone()
    };
    undo_job.plan_hash = undo_job.plan.as_ref().map(Plan::hash);
    let mut failure = None;
    for (i, action) in inverse.iter().enumerate() {
        if !lease.holds().await {
            failure = Some(format!(
                "the hold on the resource ran out after {i} of {} undo actions: nothing more is applied",
                inverse.len()
            ));
            break;
        }
        let token = crate::action::client_token(&undo_job.id, i, action);
        if let Err(e) =
            crate::action::apply::apply(&ctx.cloud, &job.account, &job.region, action, &token).await
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
    let exact = comparable(&restored) == before_c;
    let status = undo_status(failure.is_some(), exact, later);
    let text = match (failure, status) {
        (Some(f), _) => f,
        (None, JobStatus::Applied) if exact => format!(
            "undo of job {} by {by}: {reason}; the resource is as it was before the job",
            job.id
        ),
        // Forced over a later change that the inverse did not put back: the inverse actions
        // were applied, and what differs from before the job is that change.
        (None, JobStatus::Applied) => format!(
            "undo of job {} by {by}, forced over a later change: the inverse is applied and the resource differs from its state before the job where that change was kept (- before, + now): {reason}\n{}",
            job.id,
            difference(before, &restored)
        ),
        (None, _) => format!(
            "undo of job {}: the resource differs from its state before the job (- before, + now):\n{}",
            job.id,
            difference(before, &restored)
        ),
    };
    undo_job.status = status;
    undo_job.reason = Some(text.clone());
    // The undo job and its record are one write, and so are the job's move to undone and its.
    ctx.audit
        .append_with(
            &ctx.store,
            ctx.store.job_put(&undo_job)?,
            Record::for_job(&undo_job, by),
        )
        .await?;
    if status != JobStatus::Applied {
        return Err(UndoError::NotRestored(text));
    }
    finish(ctx, job, undo_job, asked, exact, false).await
}

/// How an undo ends: `failed` when an inverse action failed; applied when the resource read
/// afterwards is as it was before the job (`exact`), or when it was forced over a `later`
/// change that the inverse did not touch; otherwise failed verification (a resource that held
/// no later change and still differs afterwards was not put back, forced or not).
fn undo_status(failed: bool, exact: bool, later: bool) -> JobStatus {
    match (failed, exact, later) {
        (true, _, _) => JobStatus::Failed,
        (false, true, _) | (false, false, true) => JobStatus::Applied,
        (false, false, false) => JobStatus::FailedVerify,
    }
}

/// Marks `job` undone by `undo_job`, which put its resource back (`exact`: as it was before the
/// job) and is on the record (`resumed`: by an earlier run of the undo), and makes the
/// exemption asked for.
async fn finish(
    ctx: &Arc<Context>,
    job: &Job,
    undo_job: Job,
    asked: &Asked<'_>,
    exact: bool,
    resumed: bool,
) -> Result<Undone, UndoError> {
    let Asked { by, reason, .. } = *asked;
    let undone = ctx
        .store
        .transition_latest_recorded(
            job,
            &[JobStatus::Applied, JobStatus::FailedVerify],
            JobStatus::Undone,
            &[(
                "reason",
                Some(format!("undone by {by} in job {}: {reason}", undo_job.id)),
            )],
            &ctx.audit.job_recorder(&ctx.store, by),
        )
        .await;
    // The resource is restored whatever comes of marking its job: a job that could not be
    // marked undone is said, not hidden, and the exemption asked for is still made.
    let unmarked = match undone {
        Ok(Some(_)) => None,
        Ok(None) => Some(match ctx.store.job(&job.id).await {
            Ok(Some(j)) => format!("it is {} now", j.status.as_str()),
            Ok(None) => "it is gone".to_string(),
            Err(e) => format!("it is no longer applied ({e})"),
        }),
        Err(e) => Some(format!("its move could not be written ({e})")),
    };
    let mut exempted = None;
    if let Some(until) = &asked.exempt_until {
        let request = ExemptionRequest::for_job(
            job,
            format!("undo of job {}: {reason}", job.id),
            until.clone(),
        );
        exempted = Some(
            match extend_exemption(&ctx.store, &ctx.audit, request, by).await? {
                Some(_) => Exempted::Added(until.clone()),
                None => Exempted::Kept,
            },
        );
    }
    Ok(Undone {
        undo_job,
        exempted,
        exact,
        unmarked,
        resumed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::KeyStatus;
    use serde_json::json;

    #[test]
    fn the_actor_is_the_callers_identity_with_the_label_beside_it() {
        let arn = "arn:aws:sts::111122223333:assumed-role/ops/alice";
        let actor = |label: Option<&str>| Actor {
            arn: arn.into(),
            label: label.map(str::to_string),
        };
        assert_eq!(actor(None).recorded(), arn);
        assert_eq!(actor(Some("  ")).recorded(), arn);
        assert_eq!(
            actor(Some("auditor")).recorded(),
            format!("{arn} (label: auditor)")
        );
        assert!(
            actor(Some("arn:aws:iam::9:root"))
                .recorded()
                .starts_with(arn)
        );
    }

    #[test]
    fn the_exemption_ends_30_days_on_unless_a_day_is_given() {
        assert_eq!(exemption_until(None, "2026-11-30").unwrap(), "2026-12-30");
        assert_eq!(
            exemption_until(Some("2027-03-01"), "2026-11-30").unwrap(),
            "2027-03-01"
        );
        assert_eq!(
            exemption_until(Some("2026-11-30"), "2026-11-30").unwrap(),
            "2026-11-30"
        );
        for bad in ["2026-11-29", "30/12/2026", "2026-13-01", ""] {
            let e = exemption_until(Some(bad), "2026-11-30").unwrap_err();
            assert!(e.is_usage(), "{bad}");
            assert!(e.to_string().starts_with("--exempt-until"), "{e}");
        }
    }

    fn job_with(plan: Vec<Action>) -> Job {
        let mut job = crate::reconcile::new_job(
            &crate::event::Finding {
                source: crate::event::Source::Operator,
                event_id: None,
                account: "111122223333".into(),
                region: "us-east-1".into(),
                rule: "access-keys-rotated".into(),
                rule_base: "access-keys-rotated".into(),
                resource_type: "AWS::IAM::User".into(),
                resource_id: "alice".into(),
                compliance: crate::event::Compliance::NonCompliant,
                ordered_at: None,
                observation: "o".into(),
                annotation: None,
                hub: None,
                rectify_noted: false,
            },
            &crate::catalog::Catalog::load(
                &crate::script::hardened_engine(&crate::script::Limits::default()),
                None,
            )
            .unwrap()
            .get("iam-deactivate-stale-keys")
            .unwrap()
            .clone(),
            Mode::Enforce,
        );
        job.plan = Some(Plan {
            actions: plan,
            reason: None,
            ..Default::default()
        });
        job
    }

    #[test]
    fn what_a_job_created_is_undone_only_by_its_recorded_id() {
        let acct = "111122223333";
        let mut job = job_with(vec![Action::CreateDetector {
            account_id: acct.into(),
        }]);
        job.resource_type = "AWS::::Account".into();
        let before = json!({"account_id": acct, "guardduty": {"detectors": []}});
        let delete = vec![Action::DeleteDetector {
            account_id: acct.into(),
            detector_id: "d9".into(),
        }];
        // Nothing recorded: undo cannot name what to delete, and refuses saying so.
        let e = checked_inverse(&job, &before, &delete).unwrap_err();
        assert!(matches!(e, UndoError::CreatedNotRecorded { .. }), "{e}");
        assert!(e.to_string().contains("did not record"), "{e}");
        assert!(e.is_usage());
        job.created = vec![crate::action::Created {
            action: 0,
            kind: "guardduty:CreateDetector".into(),
            id: "d9".into(),
        }];
        assert_eq!(checked_inverse(&job, &before, &delete).unwrap(), delete);
        // A stored inverse naming another detector than the recorded one is refused.
        let forged = vec![Action::DeleteDetector {
            account_id: acct.into(),
            detector_id: "d1".into(),
        }];
        let e = checked_inverse(&job, &before, &forged).unwrap_err();
        assert!(matches!(e, UndoError::InverseMismatch { .. }), "{e}");
    }

    #[test]
    fn the_inverse_is_recomputed_and_a_stored_one_that_differs_is_refused() {
        let before = json!({"user_name": "alice", "access_keys": [
            {"access_key_id": "AKIA1", "status": "Active"},
            {"access_key_id": "AKIA2", "status": "Inactive"}
        ]});
        let key = |id: &str, status| Action::UpdateAccessKey {
            user_name: "alice".into(),
            access_key_id: id.into(),
            status,
        };
        let job = job_with(vec![key("AKIA1", KeyStatus::Inactive)]);
        let good = vec![key("AKIA1", KeyStatus::Active)];
        assert_eq!(checked_inverse(&job, &before, &good).unwrap(), good);
        // A stored inverse that reactivates another key than the plan touched.
        let forged = vec![key("AKIA2", KeyStatus::Active)];
        let e = checked_inverse(&job, &before, &forged).unwrap_err();
        assert!(matches!(e, UndoError::InverseMismatch { .. }), "{e}");
        assert!(e.to_string().contains("AKIA2"), "{e}");
        // A before-state stored redacted still recomputes the inverse stored exact.
        let secretish = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789AbCd";
        assert!(crate::redact::secret_text(secretish));
        let sg_before = |description: &str| {
            json!({"group_id": "sg-1", "ingress_rules": [{"rule_id": "sgr-1", "protocol": "tcp",
                "from_port": 22, "to_port": 22, "cidr_ipv4": "0.0.0.0/0", "description": description}]})
        };
        let mut sg_job = job_with(vec![Action::RevokeSecurityGroupIngress {
            group_id: "sg-1".into(),
            rule_id: "sgr-1".into(),
        }]);
        sg_job.resource_type = "AWS::EC2::SecurityGroup".into();
        let exact =
            crate::action::inverses(sg_job.plan.as_ref().unwrap(), &sg_before(secretish)).unwrap();
        let mut stored_before = sg_before(secretish);
        crate::redact::redact(&mut stored_before);
        assert_eq!(
            checked_inverse(&sg_job, &stored_before, &exact).unwrap(),
            exact,
            "the exact stored inverse runs"
        );
        // A stored plan that loosened is no base for an inverse either.
        let loosening = job_with(vec![key("AKIA2", KeyStatus::Active)]);
        let inverse = vec![key("AKIA2", KeyStatus::Inactive)];
        let e = checked_inverse(&loosening, &before, &inverse).unwrap_err();
        assert!(
            e.to_string().contains("access keys are only set Inactive"),
            "{e}"
        );
    }

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
    fn an_undo_is_applied_only_when_the_resource_is_as_before_or_forced_over_a_later_change() {
        assert_eq!(undo_status(true, true, false), JobStatus::Failed);
        assert_eq!(undo_status(false, true, false), JobStatus::Applied);
        // Forced over a later change, which is kept.
        assert_eq!(undo_status(false, false, true), JobStatus::Applied);
        // No later change (the resource was as before, or as the job left it) and still not
        // as before afterwards: not put back.
        assert_eq!(undo_status(false, false, false), JobStatus::FailedVerify);
    }

    #[test]
    fn a_live_state_compares_equal_to_its_redacted_stored_copy() {
        let live = serde_json::json!({"tags": {"note": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}, "observed_at": "t1"});
        let mut stored = live.clone();
        crate::redact::redact(&mut stored);
        assert_ne!(live, stored);
        assert_eq!(comparable(&live), comparable(&stored));
    }

    #[test]
    fn security_group_rules_compare_by_content_in_both_directions() {
        let state = |ingress: &str, egress: &str| {
            serde_json::json!({"group_id": "sg-1",
                "ingress_rules": [{"rule_id": ingress, "protocol": "-1", "referenced_group_id": "sg-1"}],
                "egress_rules": [{"rule_id": egress, "protocol": "-1", "cidr_ipv4": "0.0.0.0/0"},
                                 {"rule_id": "sgr-9", "protocol": "tcp", "cidr_ipv4": "10.0.0.0/8"}]})
        };
        // A re-authorised rule gets a new id from AWS: the state is the same.
        assert_eq!(
            comparable(&state("sgr-1", "sgr-2")),
            comparable(&state("sgr-3", "sgr-4"))
        );
        let mut narrower = state("sgr-1", "sgr-2");
        narrower["egress_rules"][1]["cidr_ipv4"] = serde_json::json!("10.1.0.0/16");
        assert_ne!(comparable(&state("sgr-1", "sgr-2")), comparable(&narrower));
    }
}
