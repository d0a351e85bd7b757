//! Operators' changes to settings: a remediation's mode, parameters, triggers, tag exemptions and
//! breaker; the Organization's pause switch and account allow-list; exemption records.
//!
//! Each change is checked first, without I/O (a request that is built is valid), then written
//! with an optimistic update of that one item ([`Store::update_setting`],
//! [`Store::update_global`]) in one transaction with its audit record, which says who made it:
//! no change is written that is not on the record. A switch to enforce then resets the
//! remediation's breaker, a consequence of the recorded switch (a reset asked for with nothing
//! else to change is recorded on its own).

use std::sync::Arc;

use serde_json::Value;

use crate::audit::{AuditWriter, Record, RecordOutcome};
use crate::catalog::{Catalog, Mode, Remediation};
use crate::event::{DecodeError, validate_account, validate_resource_id};
use crate::state::{Exemption, Global, Job, Setting, StateError, Store};

/// A settings change that was refused or did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The change itself is wrong (the message names the flag and what to give instead).
    #[error("{0}")]
    Invalid(String),
    #[error("unknown remediation {name:?}; the catalog has: {known}")]
    UnknownRemediation { name: String, known: String },
    #[error(
        "no exemption of {resource_id} from {remediation} in {account} (see `rectify exemptions list`)"
    )]
    NoExemption {
        remediation: String,
        resource_id: String,
        account: String,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

impl SettingsError {
    /// Whether the operator's input is at fault (exit code 2), not the state store.
    pub fn is_usage(&self) -> bool {
        !matches!(self, SettingsError::State(_))
    }
}

/// The remediation named `name`, or an error that lists the catalog's names.
pub fn find_remediation<'a>(
    catalog: &'a Catalog,
    name: &str,
) -> Result<&'a Arc<Remediation>, SettingsError> {
    catalog
        .get(name)
        .ok_or_else(|| SettingsError::UnknownRemediation {
            name: name.to_string(),
            known: catalog
                .all()
                .iter()
                .map(|r| r.name())
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The scope a setting or exemption applies to: the account (checked), or `*` for every one.
pub fn scope_of(account: Option<&str>) -> Result<String, SettingsError> {
    match account {
        Some(a) => {
            validate_account(a).map_err(|e| SettingsError::Invalid(format!("--account: {e}")))?;
            Ok(a.to_string())
        }
        None => Ok("*".to_string()),
    }
}

/// Parses a parameter given as `KEY=VALUE`; VALUE is JSON when it parses as JSON, else text.
pub fn parse_param(p: &str) -> Result<(String, Value), SettingsError> {
    let (k, v) = p
        .split_once('=')
        .ok_or_else(|| SettingsError::Invalid(format!("--param {p:?}: expected KEY=VALUE")))?;
    if k.is_empty() {
        return Err(SettingsError::Invalid(format!(
            "--param {p:?}: the key is empty"
        )));
    }
    let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

/// Refuses a parameter the remediation's manifest does not declare, or a value that breaks its
/// rule (type and bounds). An empty text value removes the override, whatever its name: a value
/// stored under a name the manifest no longer declares can be taken away.
fn check_param(r: &Remediation, key: &str, value: &Value) -> Result<(), SettingsError> {
    if value.as_str() == Some("") {
        return Ok(());
    }
    r.check_param(key, value)
        .map_err(|e| SettingsError::Invalid(format!("--param {key}: {e}")))
}

/// What an operator asks to change in one remediation's setting.
#[derive(Debug, Clone, Default)]
pub struct SettingChange {
    pub mode: Option<Mode>,
    /// Parameter overrides; an empty text value removes the override.
    pub params: Vec<(String, Value)>,
    /// Extra Config rule names that trigger the remediation (added to those already set).
    pub triggers: Vec<String>,
    pub tag_exemptions: Option<bool>,
    pub securityhub_updates: Option<bool>,
    pub breaker_limit: Option<u32>,
    pub breaker_window_seconds: Option<u64>,
}

impl SettingChange {
    /// Applies the change to a setting (the stored one, or a blank one).
    pub fn apply(&self, s: &mut Setting) {
        if let Some(mode) = self.mode {
            s.mode = Some(mode);
        }
        for (k, v) in &self.params {
            if v.as_str() == Some("") {
                s.params.remove(k);
            } else {
                s.params.insert(k.clone(), v.clone());
            }
        }
        for t in &self.triggers {
            if !s.triggers.contains(t) {
                s.triggers.push(t.clone());
            }
        }
        if let Some(t) = self.tag_exemptions {
            s.tag_exemptions = Some(t);
        }
        if let Some(u) = self.securityhub_updates {
            s.securityhub_updates = Some(u);
        }
        if let Some(l) = self.breaker_limit {
            s.breaker_limit = Some(l);
        }
        if let Some(w) = self.breaker_window_seconds {
            s.breaker_window_seconds = Some(w);
        }
    }
}

/// A settings change checked against the remediation's manifest; only [`SettingRequest::new`]
/// builds one.
#[derive(Debug, Clone)]
pub struct SettingRequest {
    remediation: Arc<Remediation>,
    scope: String,
    change: SettingChange,
}

impl SettingRequest {
    /// Checks `change` for `r` in `scope` (`*` or an account, see [`scope_of`]): known
    /// parameters, rule-like triggers, something to set, Organization-wide-only fields without
    /// an account, a breaker of at least 1.
    pub fn new(
        r: &Arc<Remediation>,
        scope: &str,
        change: SettingChange,
    ) -> Result<SettingRequest, SettingsError> {
        for (k, v) in &change.params {
            check_param(r, k, v)?;
        }
        for t in &change.triggers {
            if t.is_empty()
                || t.len() > 128
                || t.chars().any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(SettingsError::Invalid(format!(
                    "--trigger {t:?}: not a Config rule name"
                )));
            }
        }
        if let Some(why) = change.mode.and_then(|m| r.mode_refused(m)) {
            return Err(SettingsError::Invalid(format!("--mode: {why}")));
        }
        if change.mode.is_none()
            && change.params.is_empty()
            && change.triggers.is_empty()
            && change.tag_exemptions.is_none()
            && change.breaker_limit.is_none()
            && change.breaker_window_seconds.is_none()
            && change.securityhub_updates.is_none()
        {
            return Err(SettingsError::Invalid(
                "nothing to set: give --mode, --param, --trigger, --tag-exemptions, --securityhub-updates, --breaker-limit or --breaker-window".into(),
            ));
        }
        if scope != "*"
            && (change.tag_exemptions.is_some()
                || change.securityhub_updates.is_some()
                || change.breaker_limit.is_some()
                || change.breaker_window_seconds.is_some())
        {
            return Err(SettingsError::Invalid(
                "--tag-exemptions, --securityhub-updates and the breaker are set for a remediation in every account: drop --account".into(),
            ));
        }
        if change.breaker_limit == Some(0) || change.breaker_window_seconds == Some(0) {
            return Err(SettingsError::Invalid(
                "--breaker-limit and --breaker-window must be at least 1".into(),
            ));
        }
        Ok(SettingRequest {
            remediation: r.clone(),
            scope: scope.to_string(),
            change,
        })
    }
}

/// Writes a setting change, resets the breaker when the remediation is switched to enforce (in
/// one account: that account's breaker; in every account: every account's; that is how an
/// operator resets a tripped breaker), and records it; returns the setting as it is now.
pub async fn set(
    store: &Store,
    audit: &AuditWriter,
    request: &SettingRequest,
    by: &str,
) -> Result<Setting, SettingsError> {
    let r = &request.remediation;
    let scope = request.scope.as_str();
    let recorder =
        audit.settings_recorder(store, |old, new| Record::settings_changed(old, new, by));
    let (old, new) = store
        .update_setting(
            r.name(),
            scope,
            |s| {
                request.change.apply(s);
                s.updated_by = Some(by.to_string());
            },
            &recorder,
        )
        .await?;
    if request.change.mode == Some(Mode::Enforce) {
        // The reset follows a recorded switch to enforce. Asked for again with nothing to
        // change (to reset a tripped breaker, or after a reset that did not happen), it is
        // recorded on its own.
        store
            .breaker_reset(r.name(), (scope != "*").then_some(scope))
            .await?;
        if old.as_ref() == Some(&new) {
            audit
                .append(Record::settings_changed(old.as_ref(), &new, by))
                .await?;
        }
    }
    Ok(new)
}

/// A change to the account allow-list; the constructors check the account ids. The list fails
/// closed: empty, it allows no account, and no edit widens it but one that names what to allow
/// (accounts, or `organization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowListEdit(Edit);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Edit {
    Add(Vec<String>),
    Remove(Vec<String>),
    Clear,
    Organization,
}

impl AllowListEdit {
    /// Allow these accounts too. In `organization` mode, the list becomes these accounts alone.
    pub fn add(accounts: Vec<String>) -> Result<AllowListEdit, SettingsError> {
        check_accounts(&accounts)?;
        Ok(AllowListEdit(Edit::Add(accounts)))
    }

    /// Stop allowing these accounts (the last one removed leaves a list that allows none).
    pub fn remove(accounts: Vec<String>) -> Result<AllowListEdit, SettingsError> {
        check_accounts(&accounts)?;
        Ok(AllowListEdit(Edit::Remove(accounts)))
    }

    /// Empty the list, leaving `organization` mode: no account is allowed.
    pub fn clear() -> AllowListEdit {
        AllowListEdit(Edit::Clear)
    }

    /// Allow every ACTIVE account of the Organization (as AWS Organizations lists them), and
    /// no other.
    pub fn organization() -> AllowListEdit {
        AllowListEdit(Edit::Organization)
    }

    /// Applies the edit to the Organization settings' allow-list (kept sorted when accounts
    /// are added).
    pub fn apply(&self, g: &mut Global) {
        match &self.0 {
            Edit::Add(accounts) => {
                if g.organization {
                    g.organization = false;
                    g.accounts.clear();
                    g.left_out.clear();
                }
                for a in accounts {
                    if !g.accounts.contains(a) {
                        g.accounts.push(a.clone());
                    }
                }
                g.accounts.sort();
            }
            Edit::Remove(accounts) if g.organization => {
                for a in accounts {
                    if !g.left_out.contains(a) {
                        g.left_out.push(a.clone());
                    }
                }
                g.left_out.sort();
            }
            Edit::Remove(accounts) => g.accounts.retain(|a| !accounts.contains(a)),
            Edit::Clear => {
                g.organization = false;
                g.accounts.clear();
                g.left_out.clear();
            }
            Edit::Organization => {
                g.organization = true;
                g.accounts.clear();
                g.left_out.clear();
            }
        }
    }
}

/// The allow-list in words, as the CLI prints it.
pub fn describe_allow_list(g: &Global) -> String {
    if g.organization && !g.left_out.is_empty() {
        format!(
            "allow-list: organization: rectify acts in every ACTIVE account of the Organization but {} (`rectify settings accounts organization` allows them again)",
            g.left_out.join(", ")
        )
    } else if g.organization {
        "allow-list: organization: rectify acts in every ACTIVE account of the Organization".into()
    } else if g.accounts.is_empty() {
        "allow-list empty: rectify acts in no account (allow some with `rectify settings accounts add ID...` or `rectify settings accounts organization`)".into()
    } else {
        format!("rectify acts only in: {}", g.accounts.join(", "))
    }
}

fn check_accounts(ids: &[String]) -> Result<(), SettingsError> {
    if ids.is_empty() {
        return Err(SettingsError::Invalid(
            "name at least one account id".into(),
        ));
    }
    for a in ids {
        validate_account(a).map_err(|e| SettingsError::Invalid(e.to_string()))?;
    }
    Ok(())
}

/// Changes the account allow-list and records it; returns the Organization settings after.
pub async fn edit_allow_list(
    store: &Store,
    audit: &AuditWriter,
    edit: &AllowListEdit,
    by: &str,
) -> Result<Global, SettingsError> {
    update_global(store, audit, by, RecordOutcome::AccountsChanged, |g| {
        edit.apply(g);
    })
    .await
}

/// The most days ahead an operator may let a `rectify:exempt` tag's `until=` lie.
pub const MAX_TAG_EXEMPTION_DAYS: u32 = 365;

/// Checks `--max-days` for tag exemptions: from 1 to [`MAX_TAG_EXEMPTION_DAYS`].
pub fn check_tag_exemption_days(days: u32) -> Result<u32, SettingsError> {
    if (1..=MAX_TAG_EXEMPTION_DAYS).contains(&days) {
        Ok(days)
    } else {
        Err(SettingsError::Invalid(format!(
            "--max-days {days}: must be from 1 to {MAX_TAG_EXEMPTION_DAYS}"
        )))
    }
}

/// Switches `rectify:exempt` tags on or off for the Organization, optionally with how many days
/// ahead a tag's `until=` may lie (checked with [`check_tag_exemption_days`]), and records it.
pub async fn set_tag_exemptions(
    store: &Store,
    audit: &AuditWriter,
    on: bool,
    max_days: Option<u32>,
    by: &str,
) -> Result<Global, SettingsError> {
    if let Some(d) = max_days {
        check_tag_exemption_days(d)?;
    }
    update_global(store, audit, by, RecordOutcome::SettingsChanged, |g| {
        g.tag_exemptions = on;
        if max_days.is_some() {
            g.tag_exemption_max_days = max_days;
        }
    })
    .await
}

/// Switches on or off the rule that an approver must not be the AWS identity that set the
/// mode of the job's remediation, and records it.
pub async fn set_approver_must_differ(
    store: &Store,
    audit: &AuditWriter,
    on: bool,
    by: &str,
) -> Result<Global, SettingsError> {
    update_global(store, audit, by, RecordOutcome::SettingsChanged, |g| {
        g.approver_must_differ = on;
    })
    .await
}

/// Sets (or with `None` clears) the Security Hub administrator account, whose findings about
/// other accounts are acted on, and records it; returns the Organization settings after.
pub async fn set_securityhub_admin(
    store: &Store,
    audit: &AuditWriter,
    account: Option<&str>,
    by: &str,
) -> Result<Global, SettingsError> {
    if let Some(a) = account {
        validate_account(a).map_err(|e| SettingsError::Invalid(e.to_string()))?;
    }
    update_global(store, audit, by, RecordOutcome::SettingsChanged, |g| {
        g.securityhub_admin = account.map(str::to_string);
    })
    .await
}

/// Stops every change in the Organization (jobs are still planned and recorded), and records
/// it with the reason; returns the Organization settings after.
pub async fn pause(
    store: &Store,
    audit: &AuditWriter,
    reason: &str,
    by: &str,
) -> Result<Global, SettingsError> {
    update_global(store, audit, by, RecordOutcome::Paused, |g| {
        g.paused = true;
        g.pause_reason = Some(reason.to_string());
    })
    .await
}

/// Lets changes happen again after [`pause`], and records it.
pub async fn resume(store: &Store, audit: &AuditWriter, by: &str) -> Result<Global, SettingsError> {
    update_global(store, audit, by, RecordOutcome::Resumed, |g| {
        g.paused = false;
        g.pause_reason = None;
    })
    .await
}

/// Changes the Organization-wide settings, and records the change as `what`.
async fn update_global(
    store: &Store,
    audit: &AuditWriter,
    by: &str,
    what: RecordOutcome,
    mut edit: impl FnMut(&mut Global),
) -> Result<Global, SettingsError> {
    let recorder = audit.settings_recorder(store, |old: Option<&Global>, new: &Global| {
        let old = old.cloned().unwrap_or_default();
        Record::global_changed(what.clone(), &old, new, by)
    });
    let (_, new) = store
        .update_global(
            |g| {
                edit(g);
                g.updated_by = Some(by.to_string());
            },
            &recorder,
        )
        .await?;
    Ok(new)
}

/// An exemption checked before it is written; only [`ExemptionRequest::new`] builds one.
#[derive(Debug, Clone)]
pub struct ExemptionRequest {
    remediation: String,
    resource_id: String,
    scope: String,
    reason: String,
    until: Option<String>,
}

impl ExemptionRequest {
    /// Checks the last day (`YYYY-MM-DD`), the resource id (as findings of the remediation's
    /// resource type must name it, see [`validate_resource_id`]) and the
    /// account (none: any account). The remediation is one of the catalog's (see
    /// [`find_remediation`]).
    pub fn new(
        remediation: &Remediation,
        resource_id: &str,
        account: Option<&str>,
        reason: &str,
        until: Option<&str>,
    ) -> Result<ExemptionRequest, SettingsError> {
        if let Some(u) = until {
            chrono::NaiveDate::parse_from_str(u, "%Y-%m-%d")
                .map_err(|_| SettingsError::Invalid(format!("--until {u:?}: use YYYY-MM-DD")))?;
        }
        let resource_type = &remediation.manifest.resource_type;
        validate_resource_id(resource_type, resource_id).map_err(|e| {
            let why = match e {
                DecodeError::Invalid { reason, .. } => reason.to_string(),
                other => other.to_string(),
            };
            SettingsError::Invalid(format!(
                "--resource {resource_id:?}: not a resource id of {resource_type} ({why})"
            ))
        })?;
        Ok(ExemptionRequest {
            remediation: remediation.name().to_string(),
            resource_id: resource_id.to_string(),
            scope: scope_of(account)?,
            reason: reason.to_string(),
            until: until.map(str::to_string),
        })
    }

    /// The exemption of a job's resource from the job's remediation in the job's account, until
    /// a last day (`YYYY-MM-DD`, checked by the caller): what an undo adds. The job's fields
    /// were checked when it was made.
    pub fn for_job(job: &Job, reason: String, until: String) -> ExemptionRequest {
        ExemptionRequest {
            remediation: job.remediation.clone(),
            resource_id: job.resource_id.clone(),
            scope: job.account.clone(),
            reason,
            until: Some(until),
        }
    }
}

/// Writes an exemption record (replacing one of the same resource and account) and records it.
pub async fn add_exemption(
    store: &Store,
    audit: &AuditWriter,
    request: ExemptionRequest,
    by: &str,
) -> Result<Exemption, SettingsError> {
    let e = exemption_of(request, by);
    let put = store.exemption_put(&e, false)?;
    // An unconditional write is never refused.
    audit
        .append_with(store, put, Record::exemption_added(&e))
        .await?;
    Ok(e)
}

/// Adds an exemption as [`add_exemption`] does, unless one of the same resource and scope
/// already lasts as long or longer (or has no end): that one is kept, nothing is recorded, and
/// `None` is returned.
pub async fn extend_exemption(
    store: &Store,
    audit: &AuditWriter,
    request: ExemptionRequest,
    by: &str,
) -> Result<Option<Exemption>, SettingsError> {
    let e = exemption_of(request, by);
    let put = store.exemption_put(&e, true)?;
    let written = audit
        .append_with(store, put, Record::exemption_added(&e))
        .await?;
    Ok(written.map(|_| e))
}

fn exemption_of(request: ExemptionRequest, by: &str) -> Exemption {
    Exemption {
        remediation: request.remediation,
        account: request.scope,
        resource_id: request.resource_id,
        reason: request.reason,
        by: by.to_string(),
        until: request.until,
        created_at: crate::clock::now_text(),
    }
}

/// Removes the exemption of a resource from a remediation in `scope` (`*` or an account, see
/// [`scope_of`]) and records it; an error when there was none.
pub async fn remove_exemption(
    store: &Store,
    audit: &AuditWriter,
    remediation: &Remediation,
    resource_id: &str,
    scope: &str,
    by: &str,
) -> Result<Exemption, SettingsError> {
    let e = Exemption {
        remediation: remediation.name().to_string(),
        account: scope.to_string(),
        resource_id: resource_id.to_string(),
        ..Exemption::default()
    };
    let delete = store.exemption_delete(&e)?;
    let written = audit
        .append_with(store, delete, Record::exemption_removed(&e, by))
        .await?;
    if written.is_none() {
        return Err(SettingsError::NoExemption {
            remediation: e.remediation,
            resource_id: e.resource_id,
            account: e.account,
        });
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::{Limits, hardened_engine};
    use serde_json::json;

    fn catalog() -> Catalog {
        Catalog::load(&hardened_engine(&Limits::default()), None).unwrap()
    }

    fn invalid(e: SettingsError) -> String {
        assert!(e.is_usage(), "{e}");
        match e {
            SettingsError::Invalid(text) => text,
            other => panic!("not an input error: {other}"),
        }
    }

    #[test]
    fn a_remediation_is_found_by_name_or_the_catalog_is_listed() {
        let catalog = catalog();
        assert_eq!(
            find_remediation(&catalog, "sg-revoke-open-ssh")
                .unwrap()
                .name(),
            "sg-revoke-open-ssh"
        );
        let e = find_remediation(&catalog, "nope").unwrap_err();
        assert!(e.is_usage());
        let text = e.to_string();
        assert!(text.starts_with("unknown remediation \"nope\"; the catalog has: "));
        assert!(text.contains("s3-block-public-access"), "{text}");
    }

    #[test]
    fn parameters_are_json_when_they_parse_and_text_otherwise() {
        assert_eq!(parse_param("n=90").unwrap(), ("n".into(), json!(90)));
        assert_eq!(parse_param("b=true").unwrap(), ("b".into(), json!(true)));
        assert_eq!(
            parse_param("org=o-a1b2c3d4e5").unwrap(),
            ("org".into(), json!("o-a1b2c3d4e5"))
        );
        assert_eq!(parse_param("k=a=b").unwrap(), ("k".into(), json!("a=b")));
        // An empty value (which removes an override) is the empty text.
        assert_eq!(parse_param("k=").unwrap(), ("k".into(), json!("")));
        assert!(invalid(parse_param("k").unwrap_err()).contains("expected KEY=VALUE"));
        assert!(invalid(parse_param("=1").unwrap_err()).contains("the key is empty"));
    }

    #[test]
    fn the_scope_is_an_account_or_every_account() {
        assert_eq!(scope_of(None).unwrap(), "*");
        assert_eq!(scope_of(Some("111122223333")).unwrap(), "111122223333");
        assert!(invalid(scope_of(Some("12")).unwrap_err()).starts_with("--account: "));
    }

    #[test]
    fn a_mode_above_a_cap_for_every_plan_is_refused_and_one_for_some_plans_is_not() {
        let catalog = catalog();
        let trail = find_remediation(&catalog, "cloudtrail-logging-on").unwrap();
        let enforce = || SettingChange {
            mode: Some(Mode::Enforce),
            ..SettingChange::default()
        };
        // Only plans that create a trail are capped: enforce may be set.
        assert!(SettingRequest::new(trail, "*", enforce()).is_ok());
        let mut manifest = trail.manifest.clone();
        manifest.max_mode_kinds.clear();
        let always = Arc::new(Remediation {
            manifest,
            script: trail.script.clone(),
            script_sha256: String::new(),
            origin: "test".into(),
            cases: vec![],
        });
        let text = invalid(SettingRequest::new(&always, "*", enforce()).unwrap_err());
        assert!(
            text.starts_with("--mode: cloudtrail-logging-on always needs a person"),
            "{text}"
        );
        assert!(
            SettingRequest::new(
                &always,
                "*",
                SettingChange {
                    mode: Some(Mode::Approval),
                    ..SettingChange::default()
                }
            )
            .is_ok()
        );
    }

    #[test]
    fn a_setting_change_is_checked_against_the_manifest() {
        let catalog = catalog();
        let keys = find_remediation(&catalog, "iam-deactivate-stale-keys").unwrap();
        let ssh = find_remediation(&catalog, "sg-revoke-open-ssh").unwrap();
        let mode = |m| SettingChange {
            mode: Some(m),
            ..SettingChange::default()
        };
        assert!(SettingRequest::new(ssh, "*", mode(Mode::Enforce)).is_ok());
        assert!(SettingRequest::new(ssh, "111122223333", mode(Mode::Off)).is_ok());

        let unknown = SettingChange {
            params: vec![("prot".into(), json!(23))],
            ..SettingChange::default()
        };
        let text = invalid(SettingRequest::new(ssh, "*", unknown).unwrap_err());
        assert!(
            text.starts_with("--param prot: sg-revoke-open-ssh has no parameter"),
            "{text}"
        );
        let known = SettingChange {
            params: vec![("max_unused_days".into(), json!(30))],
            ..SettingChange::default()
        };
        assert!(SettingRequest::new(keys, "*", known).is_ok());

        let text = invalid(SettingRequest::new(ssh, "*", SettingChange::default()).unwrap_err());
        assert!(text.starts_with("nothing to set"), "{text}");

        for bad in ["", "two words", "tab\there"] {
            let change = SettingChange {
                triggers: vec![bad.into()],
                ..SettingChange::default()
            };
            let text = invalid(SettingRequest::new(ssh, "*", change).unwrap_err());
            assert!(text.contains("not a Config rule name"), "{text}");
        }

        let breaker = |limit, window| SettingChange {
            breaker_limit: limit,
            breaker_window_seconds: window,
            ..SettingChange::default()
        };
        assert!(SettingRequest::new(ssh, "*", breaker(Some(5), Some(60))).is_ok());
        let text =
            invalid(SettingRequest::new(ssh, "111122223333", breaker(Some(5), None)).unwrap_err());
        assert!(text.contains("drop --account"), "{text}");
        let tags = SettingChange {
            tag_exemptions: Some(false),
            ..SettingChange::default()
        };
        assert!(SettingRequest::new(ssh, "111122223333", tags).is_err());
        let text = invalid(SettingRequest::new(ssh, "*", breaker(Some(0), None)).unwrap_err());
        assert!(text.contains("at least 1"), "{text}");
        assert!(SettingRequest::new(ssh, "*", breaker(None, Some(0))).is_err());
    }

    #[test]
    fn a_change_sets_what_it_names_and_keeps_the_rest() {
        let mut s = Setting {
            remediation: "r".into(),
            scope: "*".into(),
            mode: Some(Mode::DryRun),
            triggers: vec!["a".into()],
            breaker_limit: Some(3),
            ..Setting::default()
        };
        s.params.insert("keep".into(), json!(1));
        s.params.insert("drop".into(), json!(2));
        SettingChange {
            params: vec![("drop".into(), json!("")), ("new".into(), json!("x"))],
            triggers: vec!["a".into(), "b".into()],
            tag_exemptions: Some(false),
            ..SettingChange::default()
        }
        .apply(&mut s);
        assert_eq!(s.mode, Some(Mode::DryRun));
        assert_eq!(
            Value::Object(s.params.clone()),
            json!({"keep": 1, "new": "x"})
        );
        assert_eq!(s.triggers, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(s.tag_exemptions, Some(false));
        assert_eq!(s.breaker_limit, Some(3));
        SettingChange {
            mode: Some(Mode::Enforce),
            breaker_window_seconds: Some(60),
            ..SettingChange::default()
        }
        .apply(&mut s);
        assert_eq!(s.mode, Some(Mode::Enforce));
        assert_eq!(s.breaker_window_seconds, Some(60));
    }

    #[test]
    fn the_allow_list_is_edited_sorted_and_without_duplicates() {
        let mut g = Global {
            accounts: vec!["333333333333".to_string()],
            ..Global::default()
        };
        let list = |g: &Global| g.accounts.clone();
        AllowListEdit::add(vec!["222222222222".into(), "333333333333".into()])
            .unwrap()
            .apply(&mut g);
        assert_eq!(list(&g), ["222222222222", "333333333333"]);
        AllowListEdit::remove(vec!["333333333333".into()])
            .unwrap()
            .apply(&mut g);
        assert_eq!(list(&g), ["222222222222"]);
        AllowListEdit::clear().apply(&mut g);
        assert!(list(&g).is_empty());
        assert!(invalid(AllowListEdit::add(vec![]).unwrap_err()).contains("at least one"));
        assert!(AllowListEdit::remove(vec!["12".into()]).is_err());
    }

    #[test]
    fn tag_exemption_days_are_bounded() {
        assert_eq!(check_tag_exemption_days(90).unwrap(), 90);
        assert!(check_tag_exemption_days(365).is_ok());
        for bad in [0, 366] {
            let text = invalid(check_tag_exemption_days(bad).unwrap_err());
            assert!(text.starts_with(&format!("--max-days {bad}: must be from 1 to 365")));
        }
    }

    #[test]
    fn no_edit_of_the_allow_list_widens_it_without_naming_what_to_allow() {
        let allows = |g: &Global, a: &str| {
            crate::state::SettingsSnapshot::new(vec![], g.clone(), vec![]).account_allowed(a, None)
        };
        let mut g = Global::default();
        assert!(!allows(&g, "111111111111"), "empty allows none");
        AllowListEdit::add(vec!["111111111111".into()])
            .unwrap()
            .apply(&mut g);
        assert!(allows(&g, "111111111111") && !allows(&g, "222222222222"));
        AllowListEdit::remove(vec!["111111111111".into()])
            .unwrap()
            .apply(&mut g);
        assert!(g.accounts.is_empty() && !g.organization);
        assert!(
            !allows(&g, "111111111111"),
            "removing the last id allows none"
        );
        assert!(describe_allow_list(&g).contains("acts in no account"));

        AllowListEdit::organization().apply(&mut g);
        assert!(g.organization);
        assert!(describe_allow_list(&g).contains("every ACTIVE account"));
        // Removing an id in organization mode leaves it out; adding one names the list.
        AllowListEdit::remove(vec!["111111111111".into(), "222222222222".into()])
            .unwrap()
            .apply(&mut g);
        assert!(g.organization);
        assert_eq!(g.left_out, ["111111111111", "222222222222"]);
        assert!(g.leaves_out("111111111111") && !g.leaves_out("333333333333"));
        assert!(
            describe_allow_list(&g).contains("but 111111111111, 222222222222"),
            "{}",
            describe_allow_list(&g)
        );
        AllowListEdit::add(vec!["333333333333".into()])
            .unwrap()
            .apply(&mut g);
        assert!(!g.organization);
        assert_eq!(g.accounts, ["333333333333"]);
        assert!(g.left_out.is_empty());
        AllowListEdit::organization().apply(&mut g);
        AllowListEdit::clear().apply(&mut g);
        assert!(!g.organization && g.accounts.is_empty());
    }

    #[test]
    fn an_exemption_needs_a_resource_id_and_a_date() {
        let catalog = catalog();
        let r = find_remediation(&catalog, "s3-block-public-access").unwrap();
        let ok = ExemptionRequest::new(
            r,
            "my-bucket",
            Some("111122223333"),
            "why",
            Some("2030-01-31"),
        )
        .unwrap();
        assert_eq!(ok.scope, "111122223333");
        assert_eq!(
            ExemptionRequest::new(r, "my-bucket", None, "why", None)
                .unwrap()
                .scope,
            "*"
        );
        let text =
            invalid(ExemptionRequest::new(r, "b", None, "why", Some("31/01/2030")).unwrap_err());
        assert!(text.contains("use YYYY-MM-DD"), "{text}");
        for bad in ["", "arn:aws:s3:::b", "a\nb"] {
            let text = invalid(ExemptionRequest::new(r, bad, None, "why", None).unwrap_err());
            assert!(text.contains("not a resource id"), "{text}");
        }
        assert!(ExemptionRequest::new(r, "my-bucket", Some("x"), "why", None).is_err());
        // The id is checked as findings of the remediation's resource type name it.
        let text = invalid(ExemptionRequest::new(r, "ab", None, "why", None).unwrap_err());
        assert!(
            text.contains("not a resource id of AWS::S3::Bucket"),
            "{text}"
        );
        let ssh = find_remediation(&catalog, "sg-revoke-open-ssh").unwrap();
        assert!(ExemptionRequest::new(ssh, "sg-0123456789abcdef0", None, "why", None).is_ok());
        assert!(ExemptionRequest::new(ssh, "my-bucket", None, "why", None).is_err());
    }

    #[test]
    fn store_failures_are_not_the_operators_fault() {
        assert!(
            !SettingsError::State(StateError::Conflict("the Organization settings".into()))
                .is_usage()
        );
        assert!(!SettingsError::State(StateError::Corrupt("x".into())).is_usage());
        assert!(
            SettingsError::NoExemption {
                remediation: "r".into(),
                resource_id: "b".into(),
                account: "*".into()
            }
            .is_usage()
        );
    }
}
