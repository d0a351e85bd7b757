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
    /// An operator asked for a job to run again (`jobs retry`).
    RetryRequested,
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
        (RecordOutcome::RetryRequested, "retry-requested"),
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

/// How a record is made canonical before it is hashed. Stored in the record as `format`; a
/// record without that key is format 1, so that chains written before formats were numbered
/// still verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Format(pub u32);

impl Format {
    /// Keys sorted by code point at every depth, no white space, serde_json's text otherwise.
    pub const LEGACY: Format = Format(1);
    /// RFC 8785, the JSON Canonicalization Scheme: what every new record is written in.
    pub const JCS: Format = Format(2);
    /// RFC 8785 as format 2, for a record that names the AWS identity its command ran as
    /// (`identity`): a rectify that knows only formats 1 and 2 would drop that field, and so
    /// could not hash the record, and says so instead of calling it edited.
    pub const IDENTIFIED: Format = Format(3);

    fn legacy() -> Format {
        Format::LEGACY
    }

    fn is_legacy(&self) -> bool {
        *self == Format::LEGACY
    }

    /// Whether this rectify can recompute hashes of this format.
    pub fn is_known(self) -> bool {
        self == Format::LEGACY || self == Format::JCS || self == Format::IDENTIFIED
    }

    /// Whether records of this format are hashed over their RFC 8785 form (formats 2 and 3).
    fn is_rfc_8785(self) -> bool {
        self == Format::JCS || self == Format::IDENTIFIED
    }

    /// The canonical text of `value` in this format (format 1's for a format this rectify does
    /// not know: readable, but [`Record::compute_hash`] matches no hash of it).
    fn canonical(self, value: &Value) -> String {
        if self.is_rfc_8785() {
            serde_json_canonicalizer::to_string(value).unwrap_or_default()
        } else {
            canonical_json(value)
        }
    }
}

/// New records are written in the current format.
impl Default for Format {
    fn default() -> Self {
        Format::JCS
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One audit record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// How the record is canonicalised for its hash (absent, and so 1, in older records).
    #[serde(default = "Format::legacy", skip_serializing_if = "Format::is_legacy")]
    pub format: Format,
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
    /// The AWS identity (ARN) the command that made the record ran as, beside `actor`, which
    /// may be a label (`--by`). Absent from a worker's records, and from records made before
    /// commands recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    pub error: Option<String>,
    #[serde(default)]
    pub hash: String,
}

impl Record {
    /// sha256 over the UTF-8 of the canonical JSON of every field but `hash`, in the record's
    /// format (RFC 8785 for format 2); empty for a format this rectify does not know.
    pub fn compute_hash(&self) -> String {
        if !self.format.is_known() {
            return String::new();
        }
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut v {
            map.remove("hash");
        }
        sha256_hex(&self.format.canonical(&v))
    }

    /// Fills in `hash` and returns the whole record's canonical text, what the table stores:
    /// what [`Record::compute_hash`] then [`Record::canonical`] give, with each member made
    /// canonical once. An RFC 8785 object is its members in the order of their names'
    /// UTF-16 code units, so the text with `hash` and the text without it share every other
    /// member's text.
    pub(crate) fn seal(&mut self) -> String {
        let map = match serde_json::to_value(&*self) {
            Ok(Value::Object(map)) if self.format.is_rfc_8785() => map,
            _ => {
                self.hash = self.compute_hash();
                return self.canonical();
            }
        };
        let text = |v: &Value| serde_json_canonicalizer::to_string(v).unwrap_or_default();
        let utf16_order = |a: &str, b: &str| a.encode_utf16().cmp(b.encode_utf16());
        let mut members: Vec<(&str, String)> = map
            .iter()
            .filter(|(name, _)| name.as_str() != "hash")
            .map(|(name, value)| {
                let name_text = text(&Value::String(name.clone()));
                (name.as_str(), format!("{name_text}:{}", text(value)))
            })
            .collect();
        members.sort_by(|a, b| utf16_order(a.0, b.0));
        let object = |members: &[(&str, String)]| {
            let size = members.iter().map(|(_, m)| m.len() + 1).sum::<usize>() + 1;
            let mut out = String::with_capacity(size);
            out.push('{');
            for (i, (_, member)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(member);
            }
            out.push('}');
            out
        };
        let hash = sha256_hex(&object(&members));
        let at = members.partition_point(|(name, _)| utf16_order(name, "hash").is_lt());
        members.insert(at, ("hash", format!(r#""hash":"{hash}""#)));
        let stored = object(&members);
        self.hash = hash;
        stored
    }

    /// The whole record, `hash` included, as canonical JSON in its format: what the table stores
    /// and an export holds, one a line.
    pub(crate) fn canonical(&self) -> String {
        self.format
            .canonical(&serde_json::to_value(self).unwrap_or(Value::Null))
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

    /// The record of `requester` asking for `job` to run again: who asked, the job as it was.
    pub fn retry_requested(job: &Job, requester: &str) -> Record {
        Record {
            outcome: RecordOutcome::RetryRequested,
            reason: Some(format!(
                "{requester} asked for job {} ({}) to run again through every gate",
                job.id,
                job.status.as_str()
            )),
            ..Record::for_job(job, requester)
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

    /// A format 2 record with the RFC 8785 examples (section 3.2.2's literals, numbers and
    /// string; section 3.2.3's keys, sorted by UTF-16 code units) in its states.
    #[allow(
        clippy::excessive_precision,
        reason = "RFC 8785's example number, written as the RFC writes it"
    )]
    fn jcs_record() -> Record {
        Record {
            id: "w-a-00000001".into(),
            chain: "w-a".into(),
            seq: 1,
            prev_hash: GENESIS.into(),
            time: "2026-11-22T00:00:01Z".into(),
            kind: RecordKind::Settings,
            outcome: RecordOutcome::SettingsChanged,
            reason: Some("caf\u{e9} \u{1f600}".into()),
            actor: Some("alice".into()),
            before: Some(serde_json::json!({
                "numbers": [333_333_333.333_333_29, 1E30, 4.50, 2e-3, 0.000_000_000_000_000_000_000_000_001],
                "string": "\u{20ac}$\u{f}\nA'B\"\\\\\"/",
                "literals": [null, true, false]
            })),
            after: Some(serde_json::json!({
                "\u{20ac}": "Euro Sign",
                "\r": "Carriage Return",
                "\u{fb33}": "Hebrew Letter Dalet With Dagesh",
                "1": "One",
                "\u{1f600}": "Emoji: Grinning Face",
                "\u{80}": "Control",
                "\u{f6}": "Latin Small Letter O With Diaeresis"
            })),
            ..Record::default()
        }
    }

    #[test]
    fn new_records_are_hashed_over_their_rfc_8785_form() {
        let mut r = jcs_record();
        assert_eq!(r.format, Format::JCS);
        r.hash = r.compute_hash();
        // Written out by hand from RFC 8785: keys sorted by UTF-16 code units (U+1F600 before
        // U+FB33), numbers as ECMAScript prints them, only control characters escaped.
        let after = r#"{"\r":"Carriage Return","1":"One","<80>":"Control","ö":"Latin Small Letter O With Diaeresis","€":"Euro Sign","😀":"Emoji: Grinning Face","<fb33>":"Hebrew Letter Dalet With Dagesh"}"#
            .replace("<80>", "\u{80}")
            .replace("<fb33>", "\u{fb33}");
        let before = r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#;
        let expected = |hash: &str| {
            format!(
                r#"{{"account":null,"actor":"alice","after":{after},"before":{before},"chain":"w-a","error":null,"event_id":null,"format":2,{hash}"id":"w-a-00000001","job_id":null,"kind":"settings","mode":null,"outcome":"settings-changed","plan":null,"prev_hash":"{GENESIS}","reason":"café 😀","region":null,"remediation":null,"resource_id":null,"resource_type":null,"rule":null,"script_sha256":null,"seq":1,"time":"2026-11-22T00:00:01Z"}}"#
            )
        };
        // sha256 of expected("") as bytes, computed apart from rectify.
        let hash = "cc0fa12387f7677e526af77c7ea25679eb57ca3d4c4f6ed0329909d980b23f37";
        assert_eq!(sha256_hex(&expected("")), hash);
        assert_eq!(r.hash, hash);
        assert_eq!(r.canonical(), expected(&format!(r#""hash":"{hash}","#)));
        let back: Record = serde_json::from_str(&r.canonical()).unwrap();
        assert_eq!(back.format, Format::JCS);
        assert_eq!(back.compute_hash(), hash);
    }

    #[test]
    fn a_sealed_record_is_hashed_and_stored_as_its_canonical_form_says() {
        let mut jcs = jcs_record();
        let text = jcs.seal();
        let hash = "cc0fa12387f7677e526af77c7ea25679eb57ca3d4c4f6ed0329909d980b23f37";
        assert_eq!(
            jcs.hash, hash,
            "the RFC 8785 form written out by hand above"
        );
        assert_eq!(text, jcs.canonical());
        let records = [
            Record {
                identity: Some("arn:aws:iam::111122223333:user/alice".into()),
                format: Format::IDENTIFIED,
                ..jcs_record()
            },
            Record {
                format: Format::LEGACY,
                ..jcs_record()
            },
            Record {
                // Nothing of the record's own: `hash` sorts between `format` and `id` still.
                format: Format::JCS,
                before: Some(
                    serde_json::json!({"hash": "a member's, not the record's", "id": [1, {"b": 2, "a": 1}]}),
                ),
                ..jcs_record()
            },
        ];
        for mut r in records {
            let mut apart = r.clone();
            apart.hash = apart.compute_hash();
            let text = r.seal();
            assert_eq!(r.hash, apart.hash, "{:?}", r.format);
            assert_eq!(text, apart.canonical(), "{:?}", r.format);
            let back: Record = serde_json::from_str(&text).unwrap();
            assert_eq!(back.compute_hash(), r.hash);
        }
        // A format this rectify cannot hash is sealed with no hash, as compute_hash gives.
        let mut unknown = Record {
            format: Format(4),
            ..jcs_record()
        };
        unknown.seal();
        assert_eq!(unknown.hash, "");
    }

    #[test]
    fn a_record_without_a_format_is_format_1_and_hashes_as_before() {
        // As the table and exports hold records written before formats were numbered: keys in
        // code point order (U+FB33 before U+1F600), no `format` key.
        let stored = r#"{"account":"111122223333","actor":"worker","after":null,"before":{"<fb33>":2,"😀":1},"chain":"w-old","error":null,"event_id":null,"hash":"c02a347eb5bbc3a24205ae2649e31b4efed2053d9b31a1205d72a7df6a5d2d9d","id":"w-old-00000001","job_id":"j-1","kind":"job","mode":"enforce","outcome":"applied","plan":null,"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","reason":"café","region":"eu-west-1","remediation":"s3-block-public-access","resource_id":"b","resource_type":"AWS::S3::Bucket","rule":"r","script_sha256":null,"seq":1,"time":"2026-01-01T00:00:00Z"}"#
            .replace("<fb33>", "\u{fb33}");
        let r: Record = serde_json::from_str(&stored).unwrap();
        assert_eq!(r.format, Format::LEGACY);
        assert_eq!(r.compute_hash(), r.hash);
        assert_eq!(
            r.canonical(),
            stored,
            "a format 1 record is stored as it was"
        );
        assert!(serde_json::to_value(&r).unwrap().get("format").is_none());
        let mut jcs = r.clone();
        jcs.format = Format::JCS;
        assert_ne!(jcs.compute_hash(), r.hash);
        let mut unknown = r;
        unknown.format = Format(4);
        assert_eq!(unknown.compute_hash(), "");
    }

    #[test]
    fn a_record_naming_its_commands_identity_is_format_3_and_its_identity_is_hashed() {
        let mut r = Record {
            identity: Some("arn:aws:iam::111122223333:user/alice".into()),
            format: Format::IDENTIFIED,
            ..jcs_record()
        };
        r.hash = r.compute_hash();
        let text = r.canonical();
        assert!(
            text.contains(r#""format":3"#)
                && text.contains(r#""identity":"arn:aws:iam::111122223333:user/alice""#),
            "{text}"
        );
        let back: Record = serde_json::from_str(&text).unwrap();
        assert_eq!(back.compute_hash(), r.hash);
        // The identity is covered by the hash: changed, the record no longer matches it.
        let mut other = back.clone();
        other.identity = Some("arn:aws:iam::111122223333:user/mallory".into());
        assert_ne!(other.compute_hash(), r.hash);
        // A reader that drops the field it does not know no longer matches the hash either,
        // which is why such a record has a format of its own.
        let mut dropped = back;
        dropped.identity = None;
        assert_ne!(dropped.compute_hash(), r.hash);
        // A record with no identity serialises without the key, as every record before.
        assert!(!jcs_record().canonical().contains("identity"));
    }

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
