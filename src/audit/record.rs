//! The audit record: one decision, canonical JSON, hashed; every record kind is built here, and
//! secrets are redacted before a record is hashed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::{Plan, canonical_json, sha256_hex};
use crate::catalog::Mode;
use crate::redact::{redact, secret_text};
use crate::state::{Exemption, Global, Job, JobStatus, Setting};

/// The hash a chain's first record names as its predecessor.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about. Serialises to the strings stored since the first record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordKind {
    /// A job's outcome.
    #[default]
    Job,
    /// A message that is no event, dead-lettered.
    Poison,
    /// A change of settings, exemptions, allow-list or pause, or a tripped breaker.
    Settings,
    /// A writer's head, in the shared anchor chain.
    Anchor,
}

impl std::fmt::Display for RecordKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RecordKind::Job => "job",
            RecordKind::Poison => "poison",
            RecordKind::Settings => "settings",
            RecordKind::Anchor => "anchor",
        })
    }
}

/// What a record says happened. Serialises to the strings stored since the first record: a
/// job's status, or one of the settings and trail outcomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordOutcome {
    Job(JobStatus),
    SettingsChanged,
    AccountsChanged,
    Paused,
    Resumed,
    ExemptionAdded,
    ExemptionRemoved,
    BreakerTripped,
    DeadLettered,
    Anchored,
    /// A stored record that could not be read, with why (never written).
    Unreadable(String),
}

impl RecordOutcome {
    const NAMED: &[(RecordOutcome, &'static str)] = &[
        (RecordOutcome::SettingsChanged, "settings-changed"),
        (RecordOutcome::AccountsChanged, "accounts-changed"),
        (RecordOutcome::Paused, "paused"),
        (RecordOutcome::Resumed, "resumed"),
        (RecordOutcome::ExemptionAdded, "exemption-added"),
        (RecordOutcome::ExemptionRemoved, "exemption-removed"),
        (RecordOutcome::BreakerTripped, "breaker-tripped"),
        (RecordOutcome::DeadLettered, "dead-lettered"),
        (RecordOutcome::Anchored, "anchored"),
    ];

    /// The stored string.
    pub fn as_str(&self) -> &str {
        match self {
            RecordOutcome::Job(s) => s.as_str(),
            RecordOutcome::Unreadable(why) => why,
            named => RecordOutcome::NAMED
                .iter()
                .find(|(o, _)| o == named)
                .map_or("", |(_, s)| s),
        }
    }

    /// The outcome a stored string names, if any.
    pub fn parse(s: &str) -> Option<RecordOutcome> {
        JobStatus::parse(s).map(RecordOutcome::Job).or_else(|| {
            RecordOutcome::NAMED
                .iter()
                .find(|(_, name)| *name == s)
                .map(|(o, _)| o.clone())
        })
    }
}

impl Default for RecordOutcome {
    fn default() -> Self {
        RecordOutcome::Unreadable(String::new())
    }
}

impl std::fmt::Display for RecordOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RecordOutcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RecordOutcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RecordOutcome::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown record outcome {s:?}")))
    }
}

/// One audit record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub chain: String,
    pub seq: u64,
    pub prev_hash: String,
    pub time: String,
    /// What was decided about.
    pub kind: RecordKind,
    pub job_id: Option<String>,
    pub event_id: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub remediation: Option<String>,
    pub rule: Option<String>,
    pub script_sha256: Option<String>,
    pub mode: Option<String>,
    pub before: Option<Value>,
    pub plan: Option<Plan>,
    pub after: Option<Value>,
    /// What the job's actions created, by the id AWS gave each (absent when nothing was).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<crate::action::Created>,
    pub outcome: RecordOutcome,
    pub reason: Option<String>,
    /// Who asked for it: the operator for settings, `worker` for the worker's own decisions.
    pub actor: Option<String>,
    pub error: Option<String>,
    #[serde(default)]
    pub hash: String,
}

impl Record {
    /// sha256 over the canonical JSON of every field but `hash`.
    pub fn compute_hash(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.remove("hash");
        }
        sha256_hex(&canonical_json(&v))
    }

    pub(crate) fn canonical(&self) -> String {
        canonical_json(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// The record of a job's outcome (`actor`: who decided: `worker`, or the approver).
    pub fn for_job(job: &Job, actor: &str) -> Record {
        Record {
            kind: RecordKind::Job,
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
            created: job.created.clone(),
            outcome: RecordOutcome::Job(job.status),
            reason: job.reason.clone(),
            actor: Some(actor.to_string()),
            ..Record::default()
        }
    }

    /// The record of adding an exemption.
    pub fn exemption_added(e: &Exemption) -> Record {
        Record {
            kind: RecordKind::Settings,
            remediation: Some(e.remediation.clone()),
            account: (e.account != "*").then(|| e.account.clone()),
            resource_id: Some(e.resource_id.clone()),
            after: Some(serde_json::to_value(e).unwrap_or(Value::Null)),
            outcome: RecordOutcome::ExemptionAdded,
            reason: Some(e.reason.clone()),
            actor: Some(e.by.clone()),
            ..Default::default()
        }
    }

    /// The record of removing an exemption (`by`: who removed it).
    pub fn exemption_removed(e: &Exemption, by: &str) -> Record {
        Record {
            kind: RecordKind::Settings,
            remediation: Some(e.remediation.clone()),
            account: (e.account != "*").then(|| e.account.clone()),
            resource_id: Some(e.resource_id.clone()),
            outcome: RecordOutcome::ExemptionRemoved,
            actor: Some(by.to_string()),
            ..Default::default()
        }
    }

    /// The record of a change to a remediation's setting: the setting as it was (none: never
    /// set) and what it is now, field by field.
    pub fn settings_changed(old: Option<&Setting>, new: &Setting, by: &str) -> Record {
        let change = serde_json::json!({
            "scope": new.scope,
            "mode": {"from": old.and_then(|o| o.mode).map(Mode::as_str), "to": new.mode.map(Mode::as_str)},
            "params": {"from": old.map(|o| o.params.clone()), "to": new.params},
            "triggers": {"from": old.map(|o| o.triggers.clone()), "to": new.triggers},
            "tag_exemptions": new.tag_exemptions,
            "breaker": {"limit": new.breaker_limit, "window_seconds": new.breaker_window_seconds},
        });
        Record {
            kind: RecordKind::Settings,
            remediation: Some(new.remediation.clone()),
            account: (new.scope != "*").then(|| new.scope.clone()),
            before: old.map(|o| serde_json::to_value(o).unwrap_or(Value::Null)),
            after: Some(change),
            outcome: RecordOutcome::SettingsChanged,
            reason: Some(setting_change(old, new)),
            actor: Some(by.to_string()),
            ..Record::default()
        }
    }

    /// The record of a change to the Organization-wide settings, as `outcome` (accounts
    /// changed, paused, resumed); a pause carries its reason.
    pub fn global_changed(outcome: RecordOutcome, old: &Global, new: &Global, by: &str) -> Record {
        Record {
            kind: RecordKind::Settings,
            before: Some(serde_json::to_value(old).unwrap_or(Value::Null)),
            after: Some(serde_json::to_value(new).unwrap_or(Value::Null)),
            reason: new
                .pause_reason
                .clone()
                .filter(|_| outcome == RecordOutcome::Paused),
            outcome,
            actor: Some(by.to_string()),
            ..Record::default()
        }
    }

    /// The record of a tripped blast-radius breaker that switched its remediation to approval
    /// in one account.
    pub fn breaker_tripped(
        remediation: &str,
        account: &str,
        job_id: &str,
        count: usize,
        limit: u32,
        window: u64,
        by: &str,
    ) -> Record {
        Record {
            kind: RecordKind::Settings,
            remediation: Some(remediation.to_string()),
            account: Some(account.to_string()),
            job_id: Some(job_id.to_string()),
            outcome: RecordOutcome::BreakerTripped,
            reason: Some(format!(
                "{count} enforcements in account {account} in {window} s reached the limit of {limit}; mode set to approval in account {account}"
            )),
            actor: Some(by.to_string()),
            ..Record::default()
        }
    }

    /// The record of a message that is no event, sent to the DLQ.
    pub fn poison(message_id: &str, reason: &str) -> Record {
        Record {
            kind: RecordKind::Poison,
            event_id: Some(message_id.to_string()),
            outcome: RecordOutcome::DeadLettered,
            reason: Some(reason.to_string()),
            actor: Some("worker".into()),
            ..Record::default()
        }
    }
}

/// What a change of setting changed, field by field as `field old -> new` (`-`: not set), in
/// the scope it applies to: the reason a settings record gives, so a listing says it.
pub fn setting_change(old: Option<&Setting>, new: &Setting) -> String {
    fn text<T: std::fmt::Display>(v: Option<T>) -> String {
        v.map_or_else(|| "-".to_string(), |v| v.to_string())
    }
    let mut changes = Vec::new();
    let mut field = |name: &str, was: String, now: String| {
        if was != now {
            changes.push(format!("{name} {was} -> {now}"));
        }
    };
    field(
        "mode",
        text(old.and_then(|o| o.mode).map(Mode::as_str)),
        text(new.mode.map(Mode::as_str)),
    );
    let empty = serde_json::Map::new();
    let old_params = old.map_or(&empty, |o| &o.params);
    let keys: std::collections::BTreeSet<&String> =
        old_params.keys().chain(new.params.keys()).collect();
    for key in keys {
        field(
            &format!("parameter {key}"),
            text(old_params.get(key)),
            text(new.params.get(key)),
        );
    }
    let list = |t: &[String]| {
        if t.is_empty() {
            "-".to_string()
        } else {
            t.join(",")
        }
    };
    field(
        "triggers",
        list(old.map_or(&[][..], |o| &o.triggers)),
        list(&new.triggers),
    );
    field(
        "tag-exemptions",
        text(old.and_then(|o| o.tag_exemptions)),
        text(new.tag_exemptions),
    );
    field(
        "securityhub-updates",
        text(old.and_then(|o| o.securityhub_updates)),
        text(new.securityhub_updates),
    );
    field(
        "breaker-limit",
        text(old.and_then(|o| o.breaker_limit)),
        text(new.breaker_limit),
    );
    field(
        "breaker-window",
        text(
            old.and_then(|o| o.breaker_window_seconds)
                .map(|s| format!("{s}s")),
        ),
        text(new.breaker_window_seconds.map(|s| format!("{s}s"))),
    );
    let scope = if new.scope == "*" {
        "all accounts".to_string()
    } else {
        format!("account {}", new.scope)
    };
    if changes.is_empty() {
        format!("{scope}: nothing changed")
    } else {
        format!("{scope}: {}", changes.join("; "))
    }
}

/// Redacts a record's states and texts before it is hashed.
pub(crate) fn redact_record(r: &mut Record) {
    for v in [&mut r.before, &mut r.after].into_iter().flatten() {
        redact(v);
    }
    for s in [&mut r.reason, &mut r.error].into_iter().flatten() {
        if secret_text(s) {
            *s = "[redacted]".into();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_outcomes_serialise_to_the_stored_strings() {
        let r = Record {
            kind: RecordKind::Settings,
            outcome: RecordOutcome::ExemptionAdded,
            ..Record::default()
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["kind"], "settings");
        assert_eq!(v["outcome"], "exemption-added");
        let back: Record = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        for status in JobStatus::ALL {
            let o = RecordOutcome::Job(*status);
            assert_eq!(RecordOutcome::parse(o.as_str()), Some(o));
        }
        for (o, s) in RecordOutcome::NAMED {
            assert_eq!(o.as_str(), *s);
            assert_eq!(RecordOutcome::parse(s).as_ref(), Some(o));
        }
        assert!(serde_json::from_value::<RecordOutcome>("nonsense".into()).is_err());
    }

    #[test]
    fn a_settings_record_says_what_changed() {
        let old = Setting {
            remediation: "r".into(),
            scope: "*".into(),
            mode: Some(Mode::DryRun),
            ..Setting::default()
        };
        let mut new = old.clone();
        new.mode = Some(Mode::Enforce);
        new.params
            .insert("organization_id".into(), "o-a1b2c3d4e5".into());
        let r = Record::settings_changed(Some(&old), &new, "alice");
        assert_eq!(
            r.reason.as_deref(),
            Some(
                "all accounts: mode dry-run -> enforce; parameter organization_id - -> \"o-a1b2c3d4e5\""
            )
        );
        new.scope = "111122223333".into();
        assert_eq!(
            setting_change(None, &new),
            "account 111122223333: mode - -> enforce; parameter organization_id - -> \"o-a1b2c3d4e5\""
        );
        assert_eq!(
            setting_change(Some(&old), &old),
            "all accounts: nothing changed"
        );
    }

    #[test]
    fn exemption_records_name_the_account_unless_it_is_every_account() {
        let mut e = Exemption {
            remediation: "r".into(),
            account: "*".into(),
            resource_id: "b".into(),
            by: "alice".into(),
            ..Exemption::default()
        };
        assert_eq!(Record::exemption_added(&e).account, None);
        assert_eq!(Record::exemption_removed(&e, "bob").account, None);
        e.account = "111122223333".into();
        let removed = Record::exemption_removed(&e, "bob");
        assert_eq!(removed.account.as_deref(), Some("111122223333"));
        assert_eq!(removed.actor.as_deref(), Some("bob"));
        assert_eq!(removed.outcome, RecordOutcome::ExemptionRemoved);
        assert_eq!(
            Record::exemption_added(&e).account,
            Some("111122223333".into())
        );
    }
}
