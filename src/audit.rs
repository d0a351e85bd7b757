//! The audit trail: one record per decision, canonical JSON, hash-chained.
//!
//! Each writer (a worker process, or one CLI command) appends to its own chain: records carry a
//! sequence number and the hash of their predecessor, and a record's hash covers both, so a
//! record changed, removed, inserted or reordered breaks the chain. Chains per writer let several
//! workers write at once without a shared head to contend for; `verify` walks every chain.
//! Conditional writes on (chain, seq) make a chain impossible to fork silently.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::action::{Plan, canonical_json, sha256_hex};
use crate::cloud::classify;
use crate::state::{Exemption, Job, StateError, now_text};

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

    fn canonical(&self) -> String {
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

/// The chain in which writers record their heads.
pub const ANCHORS: &str = "anchors";
/// A writer anchors its head after this many records (and when it stops).
const ANCHOR_EVERY: u64 = 50;

/// Appends records to this writer's chain.
pub struct AuditWriter {
    ddb: Client,
    table: String,
    chain: String,
    head: Mutex<(u64, String)>,
    /// Records since this writer last anchored its head.
    unanchored: std::sync::atomic::AtomicU64,
    anchor_every: u64,
}

impl AuditWriter {
    /// A new chain for this process.
    pub fn new(ddb: Client, table: String) -> AuditWriter {
        let chain = format!("w-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        AuditWriter {
            ddb,
            table,
            chain,
            head: Mutex::new((0, GENESIS.to_string())),
            unanchored: std::sync::atomic::AtomicU64::new(0),
            anchor_every: ANCHOR_EVERY,
        }
    }

    /// A chain for one command: its head is anchored after every record.
    pub fn for_command(ddb: Client, table: String) -> AuditWriter {
        AuditWriter {
            anchor_every: 1,
            ..AuditWriter::new(ddb, table)
        }
    }

    /// Records this writer's head (sequence and hash) in the shared anchor chain, so that
    /// `verify` notices records cut from the end of this chain. Called every 50 records, when a
    /// worker stops, and after every command that writes.
    pub async fn anchor(&self) -> Result<(), StateError> {
        let (seq, hash) = self.head.lock().await.clone();
        if seq == 0 {
            return Ok(());
        }
        for _ in 0..20 {
            let out = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("#c = :c")
                .expression_attribute_names("#c", "chain")
                .expression_attribute_values(":c", AttributeValue::S(ANCHORS.into()))
                .scan_index_forward(false)
                .limit(1)
                .consistent_read(true)
                .send()
                .await
                .map_err(|e| classify("dynamodb:Query", e))?;
            let (prev_seq, prev_hash) = out
                .items()
                .first()
                .map(|i| {
                    let seq = i
                        .get("seq")
                        .and_then(|v| v.as_n().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let hash = i
                        .get("hash")
                        .and_then(|v| v.as_s().ok())
                        .cloned()
                        .unwrap_or_default();
                    (seq, hash)
                })
                .unwrap_or((0, GENESIS.to_string()));
            let mut record = Record {
                kind: "anchor".into(),
                chain: ANCHORS.into(),
                seq: prev_seq + 1,
                prev_hash: prev_hash.clone(),
                id: format!("{ANCHORS}-{:08}", prev_seq + 1),
                time: now_text(),
                after: Some(serde_json::json!({"chain": self.chain, "seq": seq, "hash": hash})),
                outcome: "anchored".into(),
                actor: Some(self.chain.clone()),
                ..Record::default()
            };
            record.hash = record.compute_hash();
            match self.put(&record).await {
                Ok(()) => {
                    self.unanchored
                        .store(0, std::sync::atomic::Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) if e.code() == Some("ConditionalCheckFailedException") => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StateError::Conflict("the audit anchor chain".into()))
    }

    async fn put(&self, record: &Record) -> Result<(), crate::cloud::CloudError> {
        let text = |v: &Option<String>| AttributeValue::S(v.clone().unwrap_or_default());
        let item = HashMap::from([
            ("chain".to_string(), AttributeValue::S(record.chain.clone())),
            ("seq".to_string(), AttributeValue::N(record.seq.to_string())),
            ("id".to_string(), AttributeValue::S(record.id.clone())),
            ("time".to_string(), AttributeValue::S(record.time.clone())),
            ("job_id".to_string(), text(&record.job_id)),
            ("resource_id".to_string(), text(&record.resource_id)),
            ("remediation".to_string(), text(&record.remediation)),
            (
                "outcome".to_string(),
                AttributeValue::S(record.outcome.clone()),
            ),
            ("hash".to_string(), AttributeValue::S(record.hash.clone())),
            ("record".to_string(), AttributeValue::S(record.canonical())),
        ]);
        self.ddb
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(#s)")
            .expression_attribute_names("#s", "seq")
            .send()
            .await
            .map_err(|e| classify("dynamodb:PutItem", e))?;
        Ok(())
    }

    pub fn chain(&self) -> &str {
        &self.chain
    }

    /// Appends a record (its id, chain, sequence, time and hashes are filled in here).
    pub async fn append(&self, mut record: Record) -> Result<Record, StateError> {
        let mut head = self.head.lock().await;
        record.chain = self.chain.clone();
        record.seq = head.0 + 1;
        record.prev_hash = head.1.clone();
        record.id = format!("{}-{:08}", self.chain, record.seq);
        record.time = now_text();
        redact_record(&mut record);
        record.hash = record.compute_hash();
        if let Err(e) = self.put(&record).await {
            if e.code() != Some("ConditionalCheckFailedException") {
                return Err(e.into());
            }
            // An earlier attempt of this very write may have landed before its answer was lost.
            if self.stored_hash(record.seq).await?.as_deref() != Some(record.hash.as_str()) {
                return Err(StateError::Corrupt(format!(
                    "audit chain {} already has a different record {}",
                    self.chain, record.seq
                )));
            }
        }
        *head = (record.seq, record.hash.clone());
        drop(head);
        if self
            .unanchored
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1
            >= self.anchor_every
            && let Err(e) = self.anchor().await
        {
            tracing::warn!(error = %e, "the audit chain head could not be anchored; it will be at the next try");
        }
        Ok(record)
    }

    async fn stored_hash(&self, seq: u64) -> Result<Option<String>, StateError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("chain", AttributeValue::S(self.chain.clone()))
            .key("seq", AttributeValue::N(seq.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", e))?;
        Ok(out
            .item()
            .and_then(|i| i.get("hash"))
            .and_then(|v| v.as_s().ok())
            .cloned())
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

fn redact_record(r: &mut Record) {
    for v in [&mut r.before, &mut r.after].into_iter().flatten() {
        redact(v);
    }
    for s in [&mut r.reason, &mut r.error].into_iter().flatten() {
        if secret_text(s) {
            *s = "[redacted]".into();
        }
    }
}

/// A stored record and the hash attribute stored beside it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub record: Record,
    pub chain: String,
    pub seq: u64,
    pub stored_hash: String,
}

/// Reads the whole trail.
pub async fn read_all(ddb: &Client, table: &str) -> Result<Vec<Stored>, StateError> {
    let mut out_records = Vec::new();
    let mut start = None;
    loop {
        let out = ddb
            .scan()
            .table_name(table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| classify("dynamodb:Scan", e))?;
        for item in out.items() {
            let get = |k: &str| {
                item.get(k)
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default()
            };
            let seq = item
                .get("seq")
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let record: Record = serde_json::from_str(&get("record")).unwrap_or_else(|e| Record {
                id: get("id"),
                outcome: format!("unreadable record: {e}"),
                ..Record::default()
            });
            out_records.push(Stored {
                record,
                chain: get("chain"),
                seq,
                stored_hash: get("hash"),
            });
        }
        match out.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => break,
        }
    }
    out_records.sort_by(|a, b| {
        a.record
            .time
            .cmp(&b.record.time)
            .then(a.chain.cmp(&b.chain))
            .then(a.seq.cmp(&b.seq))
    });
    Ok(out_records)
}

/// Writes each chain to S3 as JSON lines (`<prefix><chain>.jsonl`, one canonical record a line,
/// in sequence order). When the bucket has Object Lock, each object gets a governance-mode
/// retention of `retention_days`. Returns (key, records) per object written.
pub async fn export(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    records: &[Stored],
    retention_days: u32,
) -> Result<Vec<(String, usize)>, crate::cloud::CloudError> {
    let locked = match s3
        .get_object_lock_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => out
            .object_lock_configuration()
            .and_then(|c| c.object_lock_enabled())
            .is_some_and(|e| e.as_str() == "Enabled"),
        Err(e) => {
            let e = classify("s3:GetObjectLockConfiguration", e);
            if e.code() == Some("NoSuchBucket") {
                return Err(e);
            }
            false
        }
    };
    let mut chains: BTreeMap<&str, Vec<&Stored>> = BTreeMap::new();
    for r in records {
        chains.entry(&r.chain).or_default().push(r);
    }
    let mut written = Vec::new();
    for (chain, mut items) in chains {
        items.sort_by_key(|r| r.seq);
        let body: String = items.iter().map(|r| r.record.canonical() + "\n").collect();
        let key = format!("{prefix}{chain}.jsonl");
        let mut put = s3
            .put_object()
            .bucket(bucket)
            .key(&key)
            .content_type("application/x-ndjson")
            .body(body.into_bytes().into());
        if locked {
            let until = chrono::Utc::now() + chrono::Duration::days(i64::from(retention_days));
            put = put
                .object_lock_mode(aws_sdk_s3::types::ObjectLockMode::Governance)
                .object_lock_retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(
                    until.timestamp(),
                ));
        }
        put.send().await.map_err(|e| classify("s3:PutObject", e))?;
        written.push((key, items.len()));
    }
    Ok(written)
}

/// Reads an export back.
pub async fn read_export(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<Stored>, crate::cloud::CloudError> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| classify("s3:ListObjectsV2", e))?;
        for obj in page.contents() {
            let Some(key) = obj.key().filter(|k| k.ends_with(".jsonl")) else {
                continue;
            };
            let got = s3
                .get_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map_err(|e| classify("s3:GetObject", e))?;
            let bytes = got
                .body
                .collect()
                .await
                .map_err(|e| crate::cloud::CloudError::Transport {
                    call: "s3:GetObject",
                    message: e.to_string(),
                })?
                .into_bytes();
            for line in String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                let record: Record = serde_json::from_str(line).unwrap_or_else(|e| Record {
                    id: key.to_string(),
                    outcome: format!("unreadable exported record: {e}"),
                    ..Record::default()
                });
                out.push(Stored {
                    chain: record.chain.clone(),
                    seq: record.seq,
                    stored_hash: record.hash.clone(),
                    record,
                });
            }
        }
        match page.next_continuation_token() {
            Some(t) if page.is_truncated() == Some(true) => token = Some(t.to_string()),
            _ => break,
        }
    }
    Ok(out)
}

/// Checks an export on its own, and against the table: every exported record must still be in
/// the table, unchanged.
pub fn verify_export(table: &[Stored], export: &[Stored]) -> Vec<Problem> {
    let mut problems: Vec<Problem> = verify(export)
        .into_iter()
        .map(|p| Problem {
            record: p.record,
            what: format!("in the export: {}", p.what),
        })
        .collect();
    let stored: std::collections::HashMap<(&str, u64), &str> = table
        .iter()
        .map(|r| ((r.chain.as_str(), r.seq), r.stored_hash.as_str()))
        .collect();
    for e in export {
        let name = format!("{}-{:08}", e.chain, e.seq);
        match stored.get(&(e.chain.as_str(), e.seq)) {
            None => problems.push(Problem {
                record: name,
                what: "exported, but missing from the table".into(),
            }),
            Some(h) if *h != e.record.hash => problems.push(Problem {
                record: name,
                what: "differs from its exported copy: the table was changed after the export"
                    .into(),
            }),
            _ => {}
        }
    }
    problems
}

/// One thing wrong with the trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub record: String,
    pub what: String,
}

/// Checks every chain: sequence numbers from 1 without gaps, each record naming its
/// predecessor's hash, each hash matching its record's content and key.
pub fn verify(records: &[Stored]) -> Vec<Problem> {
    let mut chains: BTreeMap<&str, Vec<&Stored>> = BTreeMap::new();
    for r in records {
        chains.entry(&r.chain).or_default().push(r);
    }
    let mut problems = Vec::new();
    // What each anchor vouches for must still be there, unchanged.
    let stored: std::collections::HashMap<(&str, u64), &str> = records
        .iter()
        .map(|r| ((r.chain.as_str(), r.seq), r.stored_hash.as_str()))
        .collect();
    for a in records.iter().filter(|r| r.chain == ANCHORS) {
        let Some(head) = &a.record.after else {
            continue;
        };
        let (Some(chain), Some(seq), Some(hash)) = (
            head["chain"].as_str(),
            head["seq"].as_u64(),
            head["hash"].as_str(),
        ) else {
            continue;
        };
        match stored.get(&(chain, seq)) {
            None => problems.push(Problem {
                record: format!("{chain}-{seq:08}"),
                what: format!("missing, though anchor {} recorded it as the head of its chain: the tail was cut off", a.record.id),
            }),
            Some(h) if *h != hash => problems.push(Problem {
                record: format!("{chain}-{seq:08}"),
                what: format!("differs from the hash anchor {} recorded for it", a.record.id),
            }),
            _ => {}
        }
    }
    for (chain, mut items) in chains {
        items.sort_by_key(|r| r.seq);
        let mut expected_seq = 1;
        let mut prev_hash = GENESIS.to_string();
        for s in items {
            let r = &s.record;
            let name = format!("{chain}-{:08}", s.seq);
            let mut problem = |what: String| {
                problems.push(Problem {
                    record: name.clone(),
                    what,
                })
            };
            if s.seq != expected_seq {
                problem(format!(
                    "sequence {} where {expected_seq} was expected: records removed or inserted before it",
                    s.seq
                ));
            }
            if r.chain != chain || r.seq != s.seq || r.id != name {
                problem("stored under a key its content does not name: moved or forged".into());
            }
            let computed = r.compute_hash();
            if computed != r.hash || r.hash != s.stored_hash {
                problem("content does not match its hash: the record was edited".into());
            }
            if r.prev_hash != prev_hash {
                problem("does not name its predecessor's hash: a record before it was changed, removed or reordered".into());
            }
            expected_seq = s.seq + 1;
            prev_hash = r.hash.clone();
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<Stored> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let mut r = Record {
                    id: format!("w-a-{seq:08}"),
                    chain: "w-a".into(),
                    seq,
                    prev_hash: prev.clone(),
                    time: format!("2026-11-22T00:00:{seq:02}Z"),
                    kind: "job".into(),
                    outcome: "applied".into(),
                    ..Record::default()
                };
                r.hash = r.compute_hash();
                prev = r.hash.clone();
                Stored {
                    chain: "w-a".into(),
                    seq,
                    stored_hash: r.hash.clone(),
                    record: r,
                }
            })
            .collect()
    }

    #[test]
    fn secrets_are_redacted() {
        let mut v = serde_json::json!({
            "SecretAccessKey": "abc", "nested": [{"session_token": "t", "password": null}],
            "key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "pem": "-----BEGIN RSA PRIVATE KEY-----\nMII...",
            "access_key_id": "AKIAIOSFODNN7EXAMPLE", "http_tokens": "required",
            "sha": "da39a3ee5e6b4b0d3255bfef95601890afd80709"
        });
        redact(&mut v);
        assert_eq!(v["SecretAccessKey"], "[redacted]");
        assert_eq!(v["nested"][0]["session_token"], "[redacted]");
        assert_eq!(v["nested"][0]["password"], Value::Null);
        assert_eq!(v["key"], "[redacted]");
        assert_eq!(v["pem"], "[redacted]");
        assert_eq!(
            v["access_key_id"], "AKIAIOSFODNN7EXAMPLE",
            "key ids are not secrets"
        );
        assert_eq!(v["http_tokens"], "required");
        assert_eq!(v["sha"], "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    }

    #[test]
    fn anchors_detect_a_cut_tail() {
        let mut records = chain(3);
        let head = records[2].record.clone();
        let mut anchor = Record {
            id: "anchors-00000001".into(),
            chain: ANCHORS.into(),
            seq: 1,
            prev_hash: GENESIS.into(),
            kind: "anchor".into(),
            after: Some(serde_json::json!({"chain": "w-a", "seq": 3, "hash": head.hash})),
            ..Record::default()
        };
        anchor.hash = anchor.compute_hash();
        records.push(Stored {
            chain: ANCHORS.into(),
            seq: 1,
            stored_hash: anchor.hash.clone(),
            record: anchor,
        });
        assert!(verify(&records).is_empty());
        records.remove(2);
        let p = verify(&records);
        assert!(
            p.iter()
                .any(|p| p.record == "w-a-00000003" && p.what.contains("tail")),
            "{p:?}"
        );
    }

    #[test]
    fn a_clean_chain_verifies() {
        assert!(verify(&chain(5)).is_empty());
    }

    #[test]
    fn tampering_is_named() {
        let mut edited = chain(4);
        edited[1].record.outcome = "no-op".into();
        let p = verify(&edited);
        assert!(
            p.iter()
                .any(|p| p.record == "w-a-00000002" && p.what.contains("edited")),
            "{p:?}"
        );

        let mut removed = chain(4);
        removed.remove(2);
        let p = verify(&removed);
        assert!(p.iter().any(|p| p.record == "w-a-00000004"), "{p:?}");

        let mut swapped = chain(4);
        let (a, b) = (swapped[1].record.clone(), swapped[2].record.clone());
        swapped[1].record = b;
        swapped[2].record = a;
        assert!(!verify(&swapped).is_empty());
    }
}
