//! The gates a job passes, as pure functions of what was read: the settings snapshot, the
//! remediation, the job's subject, the observed resource and the plan, and today's date. No I/O
//! happens here, so each gate and the order they run in are tested without AWS.
//!
//! Order: an approval's age → allow-list → mode `off` → exemption record → required parameters and their types and
//! bounds → (the resource is
//! read) → exemption tag → (the script plans) → empty plan → approval binding → mode
//! (`dry-run`, `approval`) → pause. The blast-radius breaker comes after, in
//! [`super::apply`], since admitting a job to it is a write. Each gate that holds returns the
//! [`Outcome`] the job ends with; everything else goes on.
//!
//! The allow-list comes first so that a finding from an account it does not allow ends before
//! anything reaches that account (no AssumeRole, no read). In `organization` mode the caller
//! looks up the Organization's ACTIVE accounts first (that is I/O) and hands them in.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use serde_json::Value;

use super::outcome::Outcome;
use crate::action::Plan;
use crate::catalog::{Mode, Remediation};
use crate::state::{Job, JobStatus, SettingsSnapshot};

/// The parameters a script gets.
pub type Params = serde_json::Map<String, Value>;

/// Gates before the resource is read: allow-list, mode `off`, exemption record, required
/// parameters, every parameter's type and bounds. `organization` is the Organization's ACTIVE
/// accounts, looked up when the allow-list is `organization` (none there: no account is
/// allowed). Returns the parameters the script gets.
pub fn before_observe(
    snapshot: &SettingsSnapshot,
    r: &Remediation,
    mode: Mode,
    account: &str,
    resource_id: &str,
    today: &str,
    organization: Option<&BTreeSet<String>>,
) -> Result<Params, Outcome> {
    if !snapshot.account_allowed(account, organization) {
        return Err(Outcome::AccountNotAllowed {
            account: account.to_string(),
        });
    }
    if mode == Mode::Off {
        return Err(Outcome::Off);
    }
    if let Some(e) = snapshot.exemption(r.name(), account, resource_id, today) {
        return Err(Outcome::ExemptRecord {
            by: e.by.clone(),
            until: e.until.clone(),
            reason: e.reason.clone(),
        });
    }
    let params = snapshot.params_for(r, account);
    let missing = r.missing_params(&params);
    if !missing.is_empty() {
        return Err(Outcome::NeedsParameter {
            remediation: r.name().to_string(),
            missing,
            because: None,
        });
    }
    // A value written to the settings table by hand never reached `settings set`'s checks.
    if let Err(e) = r.check_params(&params) {
        return Err(Outcome::InvalidParameter {
            remediation: r.name().to_string(),
            name: e.name().to_string(),
            error: e.to_string(),
        });
    }
    Ok(params)
}

/// Why nothing may be applied under the lock `held` when the resource, as read, is locked
/// under `wanted` by its name `name`: the finding named it otherwise and that name could not be
/// looked up before the claim, or the resource was renamed since. A job for it under its name
/// could be running; the finding is tried again, and locked under that name then.
pub fn locked_under(held: &str, wanted: &str, name: &str) -> Option<String> {
    (held != wanted).then(|| {
        format!(
            "its lock was taken under another of its names than {name:?}, the one it is locked under: the finding is tried again under that one"
        )
    })
}

/// The gates after the resource is read: an exemption record under another id the resource
/// is named by (an IAM user found by its unique id, exempted by its name), then a
/// `rectify:exempt` tag that holds today, when tag exemptions are on for the Organization and
/// the remediation. A tag that does not count goes on with a note that says why (the job's
/// reason carries it).
pub fn after_observe(
    snapshot: &SettingsSnapshot,
    r: &Remediation,
    account: &str,
    resource: &Value,
    today: &str,
) -> Result<Option<String>, Outcome> {
    for name in crate::resource::names(r.resource_type(), resource) {
        if let Some(e) = snapshot.exemption(r.name(), account, &name, today) {
            return Err(Outcome::ExemptRecord {
                by: e.by.clone(),
                until: e.until.clone(),
                reason: e.reason.clone(),
            });
        }
    }
    if !snapshot.tag_exemptions(r) {
        return Ok(tag_value(resource).map(|_| {
            "rectify:exempt tag ignored: tag exemptions are off (`rectify settings tag-exemptions`)"
                .to_string()
        }));
    }
    match tag_exemption(resource, today, snapshot.tag_exemption_max_days()) {
        TagExemption::None => Ok(None),
        TagExemption::Holds(reason) => Err(Outcome::ExemptTag { reason }),
        TagExemption::Ignored(why) => Ok(Some(format!("rectify:exempt tag ignored: {why}"))),
    }
}

/// What a resource's `rectify:exempt` tag comes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagExemption {
    /// No tag.
    None,
    /// The tag holds today; its value is the reason.
    Holds(String),
    /// The tag does not count, for this reason.
    Ignored(String),
}

fn tag_value(resource: &Value) -> Option<&str> {
    resource.get("tags")?.get("rectify:exempt")?.as_str()
}

/// Reads the `rectify:exempt` tag: a reason with `until=YYYY-MM-DD`. It holds only when the
/// day parses and lies from `today` to at most `max_days` ahead: a tag without a day, with one
/// that does not parse, that has passed or that lies further ahead is ignored, so a resource's
/// owner cannot exempt it for good.
pub fn tag_exemption(resource: &Value, today: &str, max_days: u32) -> TagExemption {
    let Some(value) = tag_value(resource) else {
        return TagExemption::None;
    };
    let Some(until) = value
        .split([';', ',', ' '])
        .find_map(|part| part.trim().strip_prefix("until="))
    else {
        return TagExemption::Ignored("it names no until=YYYY-MM-DD".into());
    };
    let Ok(day) = NaiveDate::parse_from_str(until, "%Y-%m-%d") else {
        return TagExemption::Ignored(format!("until={until:?} is not a day YYYY-MM-DD"));
    };
    let Ok(today) = NaiveDate::parse_from_str(today, "%Y-%m-%d") else {
        return TagExemption::Ignored(format!("today ({today:?}) is not a day"));
    };
    if day < today {
        return TagExemption::Ignored(format!("it expired on {day}"));
    }
    if (day - today).num_days() > i64::from(max_days) {
        return TagExemption::Ignored(format!(
            "until={day} is more than {max_days} days ahead (the most allowed)"
        ));
    }
    TagExemption::Holds(value.trim().to_string())
}

/// The gate of an approved job, before anything else: its approval holds for `ttl` from the
/// moment it was given (`now` is the current time). An approval with no readable time holds
/// for nothing.
pub fn approval_in_time(
    previous: Option<&Job>,
    now: chrono::DateTime<chrono::Utc>,
    ttl: std::time::Duration,
) -> Result<(), Outcome> {
    let Some(p) = previous.filter(|p| p.status == JobStatus::Approved) else {
        return Ok(());
    };
    if p.approved_at
        .as_deref()
        .is_some_and(|at| given_within(at, now, ttl))
    {
        return Ok(());
    }
    Err(Outcome::ApprovalExpired {
        approved_by: p.approved_by.clone(),
        approved_at: p.approved_at.clone(),
        ttl_seconds: ttl.as_secs(),
        job_id: p.id.clone(),
    })
}

/// The first half of [`approval_on_record`], before anything is read: the approved job `p`
/// names its approval's record (`approved_in`), in a command's chain (a worker's records never
/// vouch for an approval). Returns that id.
pub fn approval_record_named(p: &Job) -> Result<&str, Outcome> {
    let refuse = |why: String| {
        Err(Outcome::ApprovalNotOnRecord {
            approved_by: p.approved_by.clone(),
            job_id: p.id.clone(),
            why,
        })
    };
    let Some(id) = p.approved_in.as_deref() else {
        return refuse("the job names no audit record of its approval".into());
    };
    let name = crate::audit::record_place(id).0;
    if !crate::audit::is_command_chain(name) {
        return refuse(format!(
            "audit chain {name} is no command's: an approval is recorded by `rectify jobs approve`"
        ));
    }
    Ok(id)
}

/// The gate of an approved job (`p`, the job as the approval left it), before anything is read
/// or recorded under its approval: the approval is on the record. `records` are the job's
/// records in the audit chain the job names as holding it (`approved_in`). That chain must be
/// a command's ([`approval_record_named`]), and hold a whole record (its content matching its
/// hash and its key) of job `p.id` moving to approved, by `p.approved_by`, of the plan whose
/// hash `p.approved_plan_hash` is, made less than `ttl` before `now`. An approval written to
/// the job by other means than rectify's (no such record, or one saying something else) runs
/// nothing: the plan waits for an approval again. A record of the job this rectify cannot read
/// (a newer format) keeps the approval, unexecuted.
pub fn approval_on_record(
    p: &Job,
    records: &[crate::audit::Stored],
    now: chrono::DateTime<chrono::Utc>,
    ttl: std::time::Duration,
) -> Result<(), Outcome> {
    let refuse = |why: String| {
        Err(Outcome::ApprovalNotOnRecord {
            approved_by: p.approved_by.clone(),
            job_id: p.id.clone(),
            why,
        })
    };
    let name = crate::audit::record_place(approval_record_named(p)?).0;
    if let Some(r) = records.iter().map(|s| &s.record).find(|r| {
        !r.format.is_known() || matches!(r.outcome, crate::audit::RecordOutcome::Unreadable(_))
    }) {
        return Err(Outcome::NotReady {
            reason: format!(
                "audit chain {name}, which holds the approval by {}, has a record of the job this rectify cannot read ({}, format {}): nothing was changed and the job stays approved; upgrade the worker",
                p.approved_by.as_deref().unwrap_or("someone"),
                r.id,
                r.format
            ),
            approved: true,
        });
    }
    let mut saying = records.iter().filter(|s| {
        let r = &s.record;
        s.chain == name
            && r.kind == crate::audit::RecordKind::Job
            && r.job_id.as_deref() == Some(p.id.as_str())
            && r.outcome == crate::audit::RecordOutcome::Job(JobStatus::Approved)
            && r.actor.is_some()
            && r.actor == p.approved_by
            && r.plan.as_ref().map(Plan::hash) == p.approved_plan_hash
    });
    // The first whole record saying so counts; failing one, the first broken one says why.
    let mut first_broken = None;
    let whole = saying.find(|s| {
        let problems = crate::audit::broken(s);
        if problems.is_empty() {
            return true;
        }
        first_broken.get_or_insert((*s, problems));
        false
    });
    let Some(stored) = whole else {
        if let Some((s, problems)) = first_broken {
            return refuse(format!(
                "its record {} is not whole: {}",
                s.record.id,
                problems.join("; ")
            ));
        }
        return refuse(format!(
            "audit chain {name} holds no record of {} approving plan {} of job {}",
            p.approved_by.as_deref().unwrap_or("anyone"),
            p.approved_plan_hash
                .as_deref()
                .map_or("?", |h| &h[..12.min(h.len())]),
            p.id
        ));
    };
    let record = &stored.record;
    if !given_within(&record.time, now, ttl) {
        return refuse(format!(
            "its record {} was made at {}, not within the approval TTL of {} s",
            record.id,
            record.time,
            ttl.as_secs()
        ));
    }
    Ok(())
}

/// Whether an approval given at `at` (RFC 3339) still holds at `now` under `ttl`: a time that
/// does not parse holds for nothing.
fn given_within(at: &str, now: chrono::DateTime<chrono::Utc>, ttl: std::time::Duration) -> bool {
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    chrono::DateTime::parse_from_rfc3339(at)
        .is_ok_and(|at| now.signed_duration_since(at).num_milliseconds() < ttl_ms)
}

/// How a plan that passed every gate after planning goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Go {
    /// Enforce mode: the breaker admits it, then it is applied.
    Enforce,
    /// An operator approved this very plan: it is applied without the breaker.
    Approved,
}

/// The previous job's approval when it approved exactly this plan (which is not empty): the
/// approval this job runs under, whatever the gates then make of it.
pub fn approval<'a>(previous: Option<&'a Job>, plan: &Plan, hash: &str) -> Option<&'a Job> {
    previous.filter(|p| {
        p.status == JobStatus::Approved
            && !plan.is_empty()
            && p.approved_plan_hash.as_deref() == Some(hash)
    })
}

/// What a job goes on with from an earlier try of it: the reading that try planned from, its
/// plan, the inverse of that plan and what its actions created.
#[derive(Debug, PartialEq)]
pub struct Earlier<'a> {
    pub before: &'a Value,
    pub plan: &'a Plan,
    pub inverse: &'a [crate::action::Action],
    pub created: &'a [crate::action::Created],
}

/// The earlier try a retry goes on with instead of planning afresh, when `previous`, its earlier
/// try in enforce mode, failed after changing the resource (its reading after the failure
/// differs from the one it planned from) and the fresh plan asks for something, nothing that
/// try's plan did not (every action left is one of its actions). Only the actions left are
/// applied; the job's record names the reading before either try and the whole plan, so its
/// inverse puts back what both applied. A plan that would need a person (the manifest's
/// `max_mode` holds for it) is not gone on with: its approval binds the plan a person saw.
/// Anything else plans afresh.
pub fn continued<'a>(
    previous: Option<&'a Job>,
    r: &Remediation,
    mode: Mode,
    fresh: &Plan,
) -> Option<Earlier<'a>> {
    let p = previous?;
    if mode != Mode::Enforce || p.mode != Mode::Enforce || p.status != JobStatus::Failed {
        return None;
    }
    let (Some(before), Some(plan), Some(after), Some(inverse)) =
        (&p.before, &p.plan, &p.after, &p.inverse)
    else {
        return None;
    };
    let changed = crate::resource::comparable(after) != crate::resource::comparable(before)
        || !p.created.is_empty();
    let within = fresh.needs_parameters.is_empty()
        && !fresh.is_empty()
        && fresh.actions.iter().all(|a| plan.actions.contains(a));
    let unattended = r.capped_mode(Mode::Enforce, plan).0 == Mode::Enforce;
    (changed && within && unattended).then_some(Earlier {
        before,
        plan,
        inverse,
        created: &p.created,
    })
}

/// What a job's record says of its earlier try when that try failed and the resource read after
/// it differs from the reading it planned from (the observation time aside), and this one did
/// not go on with its plan ([`continued`]): this try planned from the resource as that one left
/// it, so this job's record, and an undo of it, start from there. That try's own audit record
/// holds both readings.
pub fn left_behind(previous: Option<&Job>) -> Option<String> {
    let p = previous.filter(|p| p.status == JobStatus::Failed)?;
    let changed = matches!((&p.before, &p.after),
        (Some(b), Some(a)) if crate::resource::comparable(a) != crate::resource::comparable(b));
    (changed || !p.created.is_empty()).then(|| {
        format!(
            "try {n} failed and the resource read after it differs from the reading it planned from; this try planned afresh from what it left, so this job's record starts there and an undo of it would put the resource back as try {n} left it, not as it was before (try {n}'s audit record holds both readings)",
            n = p.attempts
        )
    })
}

/// What a job's record says of its earlier try when that try was interrupted: claimed, and its
/// lease ran out with no outcome written (its worker was killed or cut off). Whatever it changed
/// before it stopped is on no record, so this job's record, and its undo, cannot cover it.
pub fn interrupted(previous: Option<&Job>) -> Option<String> {
    let p = previous.filter(|p| p.status == JobStatus::InProgress)?;
    Some(format!(
        "try {} was interrupted before its outcome was recorded: a change it made before it stopped is on no record, and undo cannot put it back",
        p.attempts
    ))
}

/// Gates after planning: an empty plan, the approval binding (an approved plan runs only if
/// the resource still needs exactly that plan), the mode, the pause switch.
pub fn after_plan(
    snapshot: &SettingsSnapshot,
    r: &Remediation,
    mode: Mode,
    plan: &Plan,
    hash: &str,
    previous: Option<&Job>,
    job_id: &str,
) -> Result<Go, Outcome> {
    if !plan.needs_parameters.is_empty() {
        return Err(Outcome::NeedsParameter {
            remediation: r.name().to_string(),
            missing: plan.needs_parameters.clone(),
            because: plan.reason.clone(),
        });
    }
    if plan.is_empty() {
        return Err(Outcome::NoOp {
            reason: plan.reason.clone(),
        });
    }
    let approved = approval(previous, plan, hash);
    if let Some(p) = previous.filter(|p| p.status == JobStatus::Approved)
        && approved.is_none()
    {
        return Err(Outcome::ChangedSinceApproval {
            approved_by: p.approved_by.clone(),
            approved_hash: p.approved_plan_hash.clone(),
            hash: hash.to_string(),
        });
    }
    let (mode, capped) = r.capped_mode(mode, plan);
    match (mode, approved.is_some()) {
        (Mode::DryRun, _) => return Err(Outcome::Planned { capped }),
        (Mode::Approval, false) => return Err(Outcome::AwaitingApproval { capped }),
        _ => {}
    }
    if snapshot.global.paused {
        let (by, why) = snapshot.global.pause_by_and_why();
        return Err(Outcome::Paused {
            by,
            why,
            approved: approved.is_some(),
            job_id: job_id.to_string(),
        });
    }
    Ok(if approved.is_some() {
        Go::Approved
    } else {
        Go::Enforce
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::action::Action;
    use crate::catalog::Catalog;
    use crate::script::{Limits, hardened_engine};
    use crate::state::{Exemption, Global, Setting};

    const ACCOUNT: &str = "111122223333";
    const OTHER: &str = "999988887777";
    const TODAY: &str = "2026-11-30";

    /// Organization settings that allow both test accounts.
    fn allowed() -> Global {
        Global {
            accounts: vec![ACCOUNT.into(), OTHER.into()],
            ..Global::default()
        }
    }

    fn remediation(name: &str) -> Arc<Remediation> {
        let engine = hardened_engine(&Limits::default());
        Catalog::load(&engine, None)
            .unwrap()
            .get(name)
            .unwrap()
            .clone()
    }

    fn setting(name: &str, scope: &str, edit: impl FnOnce(&mut Setting)) -> Setting {
        let mut s = Setting {
            remediation: name.into(),
            scope: scope.into(),
            ..Setting::default()
        };
        edit(&mut s);
        s
    }

    fn exemption(name: &str, resource: &str, until: Option<&str>) -> Exemption {
        Exemption {
            remediation: name.into(),
            account: ACCOUNT.into(),
            resource_id: resource.into(),
            reason: "owner migrates it".into(),
            by: "alice".into(),
            until: until.map(str::to_string),
            created_at: "2026-11-01T00:00:00Z".into(),
        }
    }

    fn before(
        s: &SettingsSnapshot,
        r: &Remediation,
        account: &str,
        resource: &str,
    ) -> Result<Params, Outcome> {
        before_observe(s, r, s.mode_for(r, account), account, resource, TODAY, None)
    }

    #[test]
    fn with_nothing_set_a_remediation_goes_on_with_its_defaults() {
        let r = remediation("iam-deactivate-stale-keys");
        let s = SettingsSnapshot::new(vec![], allowed(), vec![]);
        let params = before(&s, &r, ACCOUNT, "alice").unwrap();
        assert_eq!(params["max_unused_days"], json!(90));
    }

    #[test]
    fn the_allow_list_holds_before_the_mode_and_exemptions() {
        let r = remediation("s3-block-public-access");
        let global = Global {
            accounts: vec!["999988887777".into()],
            ..Global::default()
        };
        let s = SettingsSnapshot::new(
            vec![setting(r.name(), "*", |s| s.mode = Some(Mode::Off))],
            global,
            vec![exemption(r.name(), "b", None)],
        );
        assert_eq!(
            before(&s, &r, ACCOUNT, "b"),
            Err(Outcome::AccountNotAllowed {
                account: ACCOUNT.into()
            })
        );
        assert_eq!(before(&s, &r, "999988887777", "b"), Err(Outcome::Off));
    }

    #[test]
    fn an_empty_allow_list_allows_no_account() {
        let r = remediation("s3-block-public-access");
        let s = SettingsSnapshot::new(vec![], Global::default(), vec![]);
        for account in [ACCOUNT, OTHER] {
            assert_eq!(
                before(&s, &r, account, "b"),
                Err(Outcome::AccountNotAllowed {
                    account: account.into()
                })
            );
        }
    }

    #[test]
    fn organization_mode_allows_only_the_organizations_active_accounts() {
        let r = remediation("s3-block-public-access");
        let global = Global {
            organization: true,
            // The list is not used in organization mode.
            accounts: vec![OTHER.into()],
            ..Global::default()
        };
        let s = SettingsSnapshot::new(vec![], global, vec![]);
        let members: BTreeSet<String> = [ACCOUNT.to_string()].into();
        let gate = |account: &str, org: Option<&BTreeSet<String>>| {
            before_observe(&s, &r, Mode::Enforce, account, "b", TODAY, org)
        };
        assert!(gate(ACCOUNT, Some(&members)).is_ok());
        assert_eq!(
            gate(OTHER, Some(&members)),
            Err(Outcome::AccountNotAllowed {
                account: OTHER.into()
            })
        );
        // Not looked up: nothing is allowed.
        assert!(gate(ACCOUNT, None).is_err());
    }

    #[test]
    fn off_holds_before_an_exemption_record_and_an_account_override_wins() {
        let r = remediation("s3-block-public-access");
        let s = SettingsSnapshot::new(
            vec![
                setting(r.name(), "*", |s| s.mode = Some(Mode::Off)),
                setting(r.name(), ACCOUNT, |s| s.mode = Some(Mode::Enforce)),
            ],
            allowed(),
            vec![exemption(r.name(), "b", Some("2026-12-31"))],
        );
        assert_eq!(before(&s, &r, "999988887777", "b"), Err(Outcome::Off));
        assert_eq!(
            before(&s, &r, ACCOUNT, "b"),
            Err(Outcome::ExemptRecord {
                by: "alice".into(),
                until: Some("2026-12-31".into()),
                reason: "owner migrates it".into()
            })
        );
        assert!(before(&s, &r, ACCOUNT, "other").is_ok());
    }

    #[test]
    fn an_exemption_record_holds_under_every_id_the_resource_is_named_by() {
        let r = remediation("iam-deactivate-stale-keys");
        let user = json!({"user_name": "alice", "user_id": "AIDAEXAMPLE0000000001",
                          "access_keys": [], "tags": {}});
        // Exempted by name (as Security Hub and the sweep name the user), found by Config's
        // unique id; and the other way round.
        for (exempted, found) in [
            ("alice", "AIDAEXAMPLE0000000001"),
            ("AIDAEXAMPLE0000000001", "alice"),
        ] {
            let s =
                SettingsSnapshot::new(vec![], allowed(), vec![exemption(r.name(), exempted, None)]);
            assert!(before(&s, &r, ACCOUNT, found).is_ok(), "{found}");
            assert!(
                matches!(
                    after_observe(&s, &r, ACCOUNT, &user, TODAY),
                    Err(Outcome::ExemptRecord { .. })
                ),
                "exempted as {exempted}, found as {found}"
            );
            // Another account's exemption of the same name does not hold here.
            assert!(after_observe(&s, &r, OTHER, &user, TODAY).is_ok());
        }
        // A type named one way only has no other name to look under.
        let bucket = remediation("s3-block-public-access");
        let s = SettingsSnapshot::new(vec![], allowed(), vec![exemption(bucket.name(), "b", None)]);
        assert_eq!(
            after_observe(
                &s,
                &bucket,
                ACCOUNT,
                &json!({"bucket": "b", "tags": {}}),
                TODAY
            ),
            Ok(None)
        );
    }

    #[test]
    fn an_expired_exemption_record_holds_nothing() {
        let r = remediation("s3-block-public-access");
        let s = SettingsSnapshot::new(
            vec![],
            allowed(),
            vec![exemption(r.name(), "b", Some("2026-11-29"))],
        );
        assert!(before(&s, &r, ACCOUNT, "b").is_ok());
    }

    #[test]
    fn a_missing_required_parameter_holds_after_the_exemption_record() {
        let r = remediation("vpce-restrict-policy");
        let s = SettingsSnapshot::new(vec![], allowed(), vec![]);
        assert_eq!(
            before(&s, &r, ACCOUNT, "vpce-0123456789abcdef0"),
            Err(Outcome::NeedsParameter {
                remediation: r.name().into(),
                missing: vec!["organization_id".into()],
                because: None,
            })
        );
        let s = SettingsSnapshot::new(
            vec![setting(r.name(), ACCOUNT, |s| {
                s.params
                    .insert("organization_id".into(), json!("o-abc1234567"));
            })],
            allowed(),
            vec![exemption(r.name(), "vpce-0123456789abcdef0", None)],
        );
        assert!(matches!(
            before(&s, &r, ACCOUNT, "vpce-0123456789abcdef0"),
            Err(Outcome::ExemptRecord { .. })
        ));
        assert_eq!(
            before(&s, &r, ACCOUNT, "vpce-1123456789abcdef0").unwrap()["organization_id"],
            json!("o-abc1234567")
        );
    }

    #[test]
    fn an_exemption_tag_holds_only_when_switched_on_and_for_a_near_day() {
        let r = remediation("s3-block-public-access");
        let on = Global {
            tag_exemptions: true,
            ..Global::default()
        };
        let s = SettingsSnapshot::new(vec![], on.clone(), vec![]);
        let tagged = |v: &str| json!({"tags": {"rectify:exempt": v}});
        assert_eq!(
            after_observe(
                &s,
                &r,
                ACCOUNT,
                &tagged("legacy site until=2026-12-01"),
                TODAY
            ),
            Err(Outcome::ExemptTag {
                reason: "legacy site until=2026-12-01".into()
            })
        );
        // The last day allowed is 90 days ahead by default.
        assert!(after_observe(&s, &r, ACCOUNT, &tagged("x; until=2027-02-28"), TODAY).is_err());
        let ignored = |v: &str| {
            after_observe(&s, &r, ACCOUNT, &tagged(v), TODAY)
                .unwrap()
                .unwrap()
        };
        assert!(ignored("x; until=2027-03-01").contains("more than 90 days ahead"));
        assert!(ignored("until=2999-01-01").contains("more than 90 days ahead"));
        assert!(ignored("until=2026-11-29").contains("expired on 2026-11-29"));
        assert!(ignored("").contains("names no until="));
        assert!(ignored("legacy site").contains("names no until="));
        assert!(ignored("until=2026-13-01").contains("not a day"));
        assert!(ignored("until=soon").contains("not a day"));
        assert_eq!(
            after_observe(&s, &r, ACCOUNT, &json!({"tags": {}}), TODAY),
            Ok(None)
        );

        let near = SettingsSnapshot::new(
            vec![],
            Global {
                tag_exemption_max_days: Some(1),
                ..on.clone()
            },
            vec![],
        );
        assert!(after_observe(&near, &r, ACCOUNT, &tagged("until=2026-12-01"), TODAY).is_err());
        assert!(
            after_observe(&near, &r, ACCOUNT, &tagged("until=2026-12-02"), TODAY)
                .unwrap()
                .is_some()
        );

        // Off by default, and a remediation can refuse them when they are on.
        let default = SettingsSnapshot::new(vec![], Global::default(), vec![]);
        let off = SettingsSnapshot::new(
            vec![setting(r.name(), "*", |s| s.tag_exemptions = Some(false))],
            on,
            vec![],
        );
        for s in [&default, &off] {
            let note = after_observe(s, &r, ACCOUNT, &tagged("x; until=2026-12-01"), TODAY)
                .unwrap()
                .unwrap();
            assert!(note.contains("tag exemptions are off"), "{note}");
        }
    }

    fn plan() -> Plan {
        Plan {
            actions: vec![Action::RevokeSecurityGroupIngress {
                group_id: "sg-0123456789abcdef0".into(),
                rule_id: "sgr-0123456789abcdef0".into(),
            }],
            reason: None,
            ..Default::default()
        }
    }

    #[test]
    fn a_retry_goes_on_with_the_plan_of_a_try_that_changed_the_resource_and_only_then() {
        let revoke = |rule: &str| crate::action::Action::RevokeSecurityGroupIngress {
            group_id: "sg-1".into(),
            rule_id: rule.into(),
        };
        let plan_of = |rules: &[&str]| Plan {
            actions: rules.iter().map(|r| revoke(r)).collect(),
            ..Default::default()
        };
        let r = remediation("sg-revoke-open-ssh");
        // Two rules planned, the first revoked, then the try failed.
        let earlier = Job {
            mode: Mode::Enforce,
            before: Some(serde_json::json!({"rules": ["r1", "r2"]})),
            plan: Some(plan_of(&["r1", "r2"])),
            inverse: Some(Vec::new()),
            after: Some(serde_json::json!({"rules": ["r2"]})),
            ..Job::sample(JobStatus::Failed)
        };
        let went_on = continued(Some(&earlier), &r, Mode::Enforce, &plan_of(&["r2"])).unwrap();
        assert_eq!(went_on.before, earlier.before.as_ref().unwrap());
        assert_eq!(went_on.plan, &plan_of(&["r1", "r2"]));
        // Nothing left to do: the script's answer stands (an empty plan ends the job).
        assert!(continued(Some(&earlier), &r, Mode::Enforce, &plan_of(&[])).is_none());
        // A fresh plan that asks for more than the earlier one plans afresh.
        assert!(continued(Some(&earlier), &r, Mode::Enforce, &plan_of(&["r2", "r3"])).is_none());
        // Nothing was changed by the earlier try: it plans afresh.
        let unchanged = Job {
            after: earlier.before.clone(),
            ..earlier.clone()
        };
        assert!(continued(Some(&unchanged), &r, Mode::Enforce, &plan_of(&["r2"])).is_none());
        // What the try left is not known: it plans afresh.
        let unread = Job {
            after: None,
            ..earlier.clone()
        };
        assert!(continued(Some(&unread), &r, Mode::Enforce, &plan_of(&["r2"])).is_none());
        // Only a failed try in enforce mode, and only into enforce mode.
        for status in [
            JobStatus::Applied,
            JobStatus::Approved,
            JobStatus::PendingApproval,
        ] {
            let other = Job {
                status,
                ..earlier.clone()
            };
            assert!(continued(Some(&other), &r, Mode::Enforce, &plan_of(&["r2"])).is_none());
        }
        assert!(continued(Some(&earlier), &r, Mode::Approval, &plan_of(&["r2"])).is_none());
        assert!(continued(None, &r, Mode::Enforce, &plan_of(&["r2"])).is_none());
        // A plan that needs a person is approved as a person saw it: it plans afresh.
        let create = crate::action::Action::PutConfigurationRecorder {
            account_id: ACCOUNT.into(),
            name: "default".into(),
            role_arn: "arn:aws:iam::111122223333:role/config".into(),
            include_global_resource_types: false,
        };
        let start = crate::action::Action::StartConfigurationRecorder {
            account_id: ACCOUNT.into(),
            name: "default".into(),
        };
        let recorder = Job {
            plan: Some(Plan {
                actions: vec![create, start.clone()],
                ..Default::default()
            }),
            ..earlier.clone()
        };
        let rest = Plan {
            actions: vec![start],
            ..Default::default()
        };
        let config = remediation("config-recorder-on");
        assert!(continued(Some(&recorder), &config, Mode::Enforce, &rest).is_none());
    }

    #[test]
    fn a_retry_that_plans_afresh_after_a_try_that_changed_the_resource_says_so() {
        let earlier = Job {
            mode: Mode::Enforce,
            attempts: 1,
            before: Some(serde_json::json!({"rules": ["r1", "r2"]})),
            after: Some(serde_json::json!({"rules": ["r2"]})),
            ..Job::sample(JobStatus::Failed)
        };
        let said = left_behind(Some(&earlier)).expect("the first try changed the resource");
        assert!(
            said.contains("try 1 failed and the resource read after it differs"),
            "{said}"
        );
        assert!(said.contains("as try 1 left it"), "{said}");
        // A try that changed nothing (read again only later), or left nothing read, or did not
        // fail: nothing to say.
        let unchanged = Job {
            before: Some(
                serde_json::json!({"rules": ["r1"], "observed_at": "2026-12-01T10:00:00.000Z"}),
            ),
            after: Some(
                serde_json::json!({"rules": ["r1"], "observed_at": "2026-12-01T10:00:01.000Z"}),
            ),
            ..earlier.clone()
        };
        assert_eq!(left_behind(Some(&unchanged)), None);
        let unread = Job {
            after: None,
            ..earlier.clone()
        };
        assert_eq!(left_behind(Some(&unread)), None);
        let applied = Job {
            status: JobStatus::Applied,
            ..earlier.clone()
        };
        assert_eq!(left_behind(Some(&applied)), None);
        assert_eq!(left_behind(None), None);
    }

    #[test]
    fn only_a_try_whose_lease_ran_out_unrecorded_is_called_interrupted() {
        let killed = Job {
            attempts: 2,
            ..Job::sample(JobStatus::InProgress)
        };
        let said = interrupted(Some(&killed)).unwrap();
        assert!(said.starts_with("try 2 was interrupted"), "{said}");
        assert!(said.contains("undo cannot put it back"), "{said}");
        for status in [
            JobStatus::Failed,
            JobStatus::Applied,
            JobStatus::Approved,
            JobStatus::NoOp,
        ] {
            assert_eq!(interrupted(Some(&Job::sample(status))), None, "{status:?}");
        }
        assert_eq!(interrupted(None), None);
    }

    fn approved_job(hash: &str) -> Job {
        Job {
            remediation: "sg-revoke-open-ssh".into(),
            resource_type: "AWS::EC2::SecurityGroup".into(),
            resource_id: "sg-0123456789abcdef0".into(),
            rule: "restricted-ssh".into(),
            account: ACCOUNT.into(),
            approved_by: Some("bob".into()),
            approved_plan_hash: Some(hash.into()),
            ..Job::sample(JobStatus::Approved)
        }
    }

    #[test]
    fn a_plan_that_lacks_a_parameter_needs_it_whatever_the_mode() {
        let s = SettingsSnapshot::new(vec![], Global::default(), vec![]);
        let lacking = Plan {
            reason: Some("no trail exists".into()),
            needs_parameters: vec!["bucket".into()],
            ..Default::default()
        };
        for mode in [Mode::DryRun, Mode::Approval, Mode::Enforce] {
            let got = after_plan(
                &s,
                &remediation("sg-revoke-open-ssh"),
                mode,
                &lacking,
                &lacking.hash(),
                None,
                "j1",
            )
            .unwrap_err();
            assert_eq!(got.status(), JobStatus::NeedsParameter);
            assert!(
                got.reason().contains("--param bucket=VALUE"),
                "{}",
                got.reason()
            );
        }
    }

    #[test]
    fn a_max_mode_holds_an_enforced_plan_for_approval_and_says_why() {
        let s = SettingsSnapshot::new(vec![], Global::default(), vec![]);
        let mut capped = remediation("sg-revoke-open-ssh").manifest.clone();
        capped.max_mode = Some(Mode::Approval);
        capped.max_mode_kinds = vec!["ec2:RevokeSecurityGroupIngress".into()];
        let base = remediation("sg-revoke-open-ssh");
        let r = Remediation {
            manifest: capped,
            script: base.script.clone(),
            script_sha256: String::new(),
            origin: "test".into(),
            cases: vec![],
        };
        let p = plan();
        let got = after_plan(&s, &r, Mode::Enforce, &p, &p.hash(), None, "j1").unwrap_err();
        assert_eq!(got.status(), JobStatus::PendingApproval);
        assert!(
            got.reason().contains("max_mode is approval"),
            "{}",
            got.reason()
        );
        // An approval of exactly this plan still runs it.
        let approved = approved_job(&p.hash());
        assert_eq!(
            after_plan(&s, &r, Mode::Enforce, &p, &p.hash(), Some(&approved), "j1"),
            Ok(Go::Approved)
        );
    }

    #[test]
    fn an_empty_plan_ends_the_job_whatever_the_mode() {
        let s = SettingsSnapshot::new(vec![], Global::default(), vec![]);
        let empty = Plan {
            actions: vec![],
            reason: Some("key in use".into()),
            ..Default::default()
        };
        for mode in [Mode::DryRun, Mode::Approval, Mode::Enforce] {
            assert_eq!(
                after_plan(
                    &s,
                    &remediation("sg-revoke-open-ssh"),
                    mode,
                    &empty,
                    &empty.hash(),
                    None,
                    "j1"
                ),
                Err(Outcome::NoOp {
                    reason: Some("key in use".into())
                })
            );
        }
    }

    #[test]
    fn the_mode_decides_what_a_plan_becomes() {
        let s = SettingsSnapshot::new(vec![], Global::default(), vec![]);
        let p = plan();
        let h = p.hash();
        assert_eq!(
            after_plan(
                &s,
                &remediation("sg-revoke-open-ssh"),
                Mode::DryRun,
                &p,
                &h,
                None,
                "j1"
            ),
            Err(Outcome::Planned { capped: None })
        );
        assert_eq!(
            after_plan(
                &s,
                &remediation("sg-revoke-open-ssh"),
                Mode::Approval,
                &p,
                &h,
                None,
                "j1"
            ),
            Err(Outcome::AwaitingApproval { capped: None })
        );
        assert_eq!(
            after_plan(
                &s,
                &remediation("sg-revoke-open-ssh"),
                Mode::Enforce,
                &p,
                &h,
                None,
                "j1"
            ),
            Ok(Go::Enforce)
        );
        let approved = approved_job(&h);
        assert_eq!(
            after_plan(
                &s,
                &remediation("sg-revoke-open-ssh"),
                Mode::Approval,
                &p,
                &h,
                Some(&approved),
                "j1"
            ),
            Ok(Go::Approved)
        );
        // Dry-run wins even over an approval: nothing is changed in dry-run.
        assert_eq!(
            after_plan(
                &s,
                &remediation("sg-revoke-open-ssh"),
                Mode::DryRun,
                &p,
                &h,
                Some(&approved),
                "j1"
            ),
            Err(Outcome::Planned { capped: None })
        );
    }

    #[test]
    fn an_approval_binds_the_plan_hash_it_was_given() {
        let s = SettingsSnapshot::new(vec![], Global::default(), vec![]);
        let p = plan();
        let approved = approved_job("0000000000000000");
        let got = after_plan(
            &s,
            &remediation("sg-revoke-open-ssh"),
            Mode::Approval,
            &p,
            &p.hash(),
            Some(&approved),
            "j1",
        );
        assert!(
            matches!(&got, Err(Outcome::ChangedSinceApproval { approved_by: Some(b), .. }) if b == "bob"),
            "{got:?}"
        );
        assert_eq!(got.unwrap_err().status(), JobStatus::PendingApproval);
    }

    /// Chain `c` as stored, records in order, each hash computed and linked.
    fn stored_chain(c: &str, records: Vec<crate::audit::Record>) -> Vec<crate::audit::Stored> {
        let mut prev = crate::audit::GENESIS.to_string();
        records
            .into_iter()
            .zip(1..)
            .map(|(mut r, seq)| {
                r.chain = c.into();
                r.seq = seq;
                r.id = format!("{c}-{seq:08}");
                r.prev_hash = prev.clone();
                r.hash = r.compute_hash();
                prev = r.hash.clone();
                crate::audit::Stored {
                    chain: c.into(),
                    seq,
                    stored_hash: r.hash.clone(),
                    record: r,
                }
            })
            .collect()
    }

    #[test]
    fn an_approval_runs_only_when_its_record_says_what_the_job_says() {
        let ttl = std::time::Duration::from_secs(3600);
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-30T10:30:00Z")
            .unwrap()
            .to_utc();
        let p = plan();
        let mut job = approved_job(&p.hash());
        job.plan = Some(p.clone());
        job.approved_in = Some("c-cli".into());
        let record = |by: &str, status: JobStatus, time: &str| crate::audit::Record {
            time: time.into(),
            ..crate::audit::Record::for_job(
                &Job {
                    status,
                    ..job.clone()
                },
                by,
            )
        };
        let approval = record("bob", JobStatus::Approved, "2026-11-30T10:00:00.000Z");
        let chain = stored_chain("c-cli", vec![approval.clone()]);
        assert_eq!(approval_on_record(&job, &chain, now, ttl), Ok(()));
        // Named by its record's id, as `jobs approve` names it.
        let by_id = Job {
            approved_in: Some("c-cli-00000001".into()),
            ..job.clone()
        };
        assert_eq!(approval_on_record(&by_id, &chain, now, ttl), Ok(()));
        assert_eq!(approval_record_named(&by_id), Ok("c-cli-00000001"));
        // After other records of the same command.
        let other = record("bob", JobStatus::Rejected, "2026-11-30T09:59:00.000Z");
        let longer = stored_chain("c-cli", vec![other, approval.clone()]);
        assert_eq!(approval_on_record(&job, &longer, now, ttl), Ok(()));

        let refused = |job: &Job, chain: &[crate::audit::Stored], now| {
            let e = approval_on_record(job, chain, now, ttl).unwrap_err();
            assert_eq!(e.status(), JobStatus::PendingApproval);
            e.reason()
        };
        // No chain named, or an empty one.
        let unnamed = Job {
            approved_in: None,
            ..job.clone()
        };
        assert!(refused(&unnamed, &chain, now).contains("names no audit record"));
        assert!(refused(&job, &[], now).contains("holds no record of bob approving plan"));
        // Another approver, another plan, another job, another outcome.
        let by_eve = stored_chain(
            "c-cli",
            vec![record(
                "eve",
                JobStatus::Approved,
                "2026-11-30T10:00:00.000Z",
            )],
        );
        assert!(refused(&job, &by_eve, now).contains("holds no record of bob"));
        let other_plan = Job {
            approved_plan_hash: Some("0".repeat(64)),
            ..job.clone()
        };
        assert!(refused(&other_plan, &chain, now).contains("holds no record"));
        let other_job = Job {
            id: "j2".into(),
            ..job.clone()
        };
        assert!(refused(&other_job, &chain, now).contains("of job j2"));
        let pending = stored_chain(
            "c-cli",
            vec![record(
                "bob",
                JobStatus::PendingApproval,
                "2026-11-30T10:00:00.000Z",
            )],
        );
        assert!(refused(&job, &pending, now).contains("holds no record"));
        // A record under another chain than the one named.
        let elsewhere = stored_chain("c-other", vec![approval.clone()]);
        assert!(refused(&job, &elsewhere, now).contains("holds no record"));
        // The worker's own records vouch for nothing, even one saying the same.
        let worker = stored_chain("w-worker", vec![approval.clone()]);
        let in_worker = Job {
            approved_in: Some("w-worker".into()),
            ..job.clone()
        };
        assert!(refused(&in_worker, &worker, now).contains("is no command's"));
        // A record this rectify cannot read keeps the approval, and runs nothing.
        let newer = crate::audit::Record {
            format: crate::audit::Format(99),
            ..approval.clone()
        };
        let kept =
            approval_on_record(&job, &stored_chain("c-cli", vec![newer]), now, ttl).unwrap_err();
        assert_eq!(kept.status(), JobStatus::Approved);
        assert!(
            kept.reason().contains("upgrade the worker"),
            "{}",
            kept.reason()
        );
        // A record edited after it was written (its approver changed to the job's).
        let mut edited = stored_chain(
            "c-cli",
            vec![record(
                "eve",
                JobStatus::Approved,
                "2026-11-30T10:00:00.000Z",
            )],
        );
        edited[0].record.actor = Some("bob".into());
        assert!(refused(&job, &edited, now).contains("is not whole: content does not match"));
        // One stored under a key its content does not name (copied from another chain's place).
        let mut moved = chain.clone();
        moved[0].seq = 7;
        assert!(refused(&job, &moved, now).contains("a key its content does not name"));
        // A whole record after a broken one of the same approval: the whole one counts.
        let mut both = edited.clone();
        both.extend(stored_chain("c-cli", vec![approval.clone()]));
        assert_eq!(approval_on_record(&job, &both, now, ttl), Ok(()));
        // A record older than the TTL, whatever the job's own time says.
        let later = now + chrono::Duration::hours(1);
        assert!(refused(&job, &chain, later).contains("not within the approval TTL"));
    }

    #[test]
    fn an_approval_holds_for_the_ttl_from_when_it_was_given() {
        let ttl = std::time::Duration::from_secs(3600);
        let at = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().to_utc();
        let mut approved = approved_job("h");
        approved.approved_at = Some("2026-11-30T10:00:00.000Z".into());
        assert_eq!(
            approval_in_time(Some(&approved), at("2026-11-30T10:59:59Z"), ttl),
            Ok(())
        );
        let late = approval_in_time(Some(&approved), at("2026-11-30T11:00:00Z"), ttl).unwrap_err();
        assert_eq!(late.status(), JobStatus::ApprovalExpired);
        assert!(
            late.reason()
                .contains("approved by bob at 2026-11-30T10:00:00.000Z"),
            "{}",
            late.reason()
        );
        // No time, or one that does not parse: the approval holds for nothing.
        approved.approved_at = None;
        assert!(approval_in_time(Some(&approved), at("2026-11-30T10:00:00Z"), ttl).is_err());
        approved.approved_at = Some("yesterday".into());
        assert!(approval_in_time(Some(&approved), at("2026-11-30T10:00:00Z"), ttl).is_err());
        // Only an approved job has an approval to expire.
        approved.status = JobStatus::Planned;
        assert_eq!(
            approval_in_time(Some(&approved), at("2030-01-01T00:00:00Z"), ttl),
            Ok(())
        );
        assert_eq!(
            approval_in_time(None, at("2030-01-01T00:00:00Z"), ttl),
            Ok(())
        );
    }

    #[test]
    fn a_stored_parameter_that_breaks_its_rule_holds_before_the_resource_is_read() {
        let r = remediation("sg-revoke-open-ssh");
        for (key, value) in [
            ("port", json!(-5)),
            ("port", json!(65536)),
            ("port", json!("22")),
            ("port", json!(22.5)),
            ("port", Value::Null),
            ("prot", json!(22)),
        ] {
            let s = SettingsSnapshot::new(
                vec![setting(r.name(), "*", |s| {
                    s.params.insert(key.into(), value.clone());
                })],
                allowed(),
                vec![],
            );
            let got = before(&s, &r, ACCOUNT, "sg-0123456789abcdef0").unwrap_err();
            assert!(
                matches!(&got, Outcome::InvalidParameter { name, .. } if name == key),
                "{key}={value}: {got:?}"
            );
            assert_eq!(got.status(), JobStatus::NeedsParameter);
            assert!(got.holds_back());
        }
        // An account's bad value holds in that account only.
        let s = SettingsSnapshot::new(
            vec![setting(r.name(), ACCOUNT, |s| {
                s.params.insert("port".into(), json!(0));
            })],
            allowed(),
            vec![],
        );
        assert!(before(&s, &r, ACCOUNT, "sg-0123456789abcdef0").is_err());
        assert_eq!(
            before(&s, &r, OTHER, "sg-0123456789abcdef0").unwrap()["port"],
            json!(22)
        );
    }

    #[test]
    fn pause_holds_enforcement_and_keeps_an_approval() {
        let global = Global {
            paused: true,
            pause_reason: Some("incident".into()),
            updated_by: Some("carol".into()),
            ..Global::default()
        };
        let s = SettingsSnapshot::new(vec![], global, vec![]);
        let p = plan();
        let h = p.hash();
        let got = after_plan(
            &s,
            &remediation("sg-revoke-open-ssh"),
            Mode::Enforce,
            &p,
            &h,
            None,
            "j1",
        )
        .unwrap_err();
        assert_eq!(got.status(), JobStatus::Planned);
        let approved = approved_job(&h);
        let got = after_plan(
            &s,
            &remediation("sg-revoke-open-ssh"),
            Mode::Approval,
            &p,
            &h,
            Some(&approved),
            "j1",
        )
        .unwrap_err();
        assert_eq!(got.status(), JobStatus::Approved);
        assert!(
            got.reason().contains("rectify jobs retry j1"),
            "{}",
            got.reason()
        );
        // Pause comes after the mode: a dry-run plan is just planned.
        assert_eq!(
            after_plan(
                &s,
                &remediation("sg-revoke-open-ssh"),
                Mode::DryRun,
                &p,
                &h,
                None,
                "j1"
            ),
            Err(Outcome::Planned { capped: None })
        );
    }
}
