//! The audit record: one decision, canonical JSON, hashed; every record kind is built here, and
//! secrets are redacted before a record is hashed.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::action::{Plan, canonical_json, sha256_hex};
use crate::state::{Exemption, Job};

/// The hash a chain's first record names as its predecessor.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub chain: String,
    pub seq: u64,
    pub prev_hash: String,
    pub time: String,
    /// What was decided about: `job`, `poison` or `settings`.
    pub kind: String,
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
    pub outcome: String,
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

    /// The record of adding an exemption.
    pub fn exemption_added(e: &Exemption) -> Record {
        Record {
            kind: "settings".into(),
            remediation: Some(e.remediation.clone()),
            account: (e.account != "*").then(|| e.account.clone()),
            resource_id: Some(e.resource_id.clone()),
            after: Some(serde_json::to_value(e).unwrap_or(Value::Null)),
            outcome: "exemption-added".into(),
            reason: Some(e.reason.clone()),
            actor: Some(e.by.clone()),
            ..Default::default()
        }
    }

    /// The record of a tripped blast-radius breaker that switched its remediation to approval.
    pub fn breaker_tripped(
        remediation: &str,
        job_id: &str,
        count: usize,
        limit: u32,
        window: u64,
        by: &str,
    ) -> Record {
        Record {
            kind: "settings".into(),
            remediation: Some(remediation.to_string()),
            job_id: Some(job_id.to_string()),
            outcome: "breaker-tripped".into(),
            reason: Some(format!(
                "{count} enforcements in {window} s reached the limit of {limit}; mode set to approval"
            )),
            actor: Some(by.to_string()),
            ..Record::default()
        }
    }

    /// The record of a message that is no event, sent to the DLQ.
    pub fn poison(message_id: &str, reason: &str) -> Record {
        Record {
            kind: "poison".into(),
            event_id: Some(message_id.to_string()),
            outcome: "dead-lettered".into(),
            reason: Some(reason.to_string()),
            actor: Some("worker".into()),
            ..Record::default()
        }
    }
}

/// Keys whose values are secrets, wherever they appear.
fn secret_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase().replace(['_', '-'], "");
    [
        "secret",
        "password",
        "passphrase",
        "privatekey",
        "sessiontoken",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Whether a string looks like a secret: an AWS secret access key (40 characters of base64) or a
/// PEM private key.
fn secret_text(s: &str) -> bool {
    (s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
        && s.bytes()
            .any(|b| b == b'/' || b == b'+' || b.is_ascii_lowercase())
        && s.bytes().any(|b| b.is_ascii_uppercase()))
        || s.contains("PRIVATE KEY-----")
}

/// Replaces secrets in a value with `[redacted]`.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if secret_key(k) && !v.is_null() {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) if secret_text(s) => *s = "[redacted]".into(),
        _ => {}
    }
}

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
