//! The audit trail: one record per decision, canonical JSON, hash-chained.
//!
//! Each writer (a worker process, or one CLI command) appends to its own chain: records carry a
//! sequence number and the hash of their predecessor, and a record's hash covers both, so a
//! record changed, removed, inserted or reordered breaks the chain. Chains per writer let several
//! workers write at once without a shared head to contend for; `verify` walks every chain.
//! Conditional writes on (chain, seq) make a chain impossible to fork silently.

pub mod chain;
pub mod export;
pub mod record;
pub mod verify;

pub use crate::redact::redact;
pub use chain::{ANCHORS, AuditWriter};
pub use export::{export, read_export};
pub use record::{GENESIS, Record, RecordKind, RecordOutcome};
pub use verify::{Problem, Stored, read_all, verify, verify_export};

#[cfg(test)]
mod tests {
    use serde_json::Value;

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
                    kind: RecordKind::Job,
                    outcome: RecordOutcome::Job(crate::state::JobStatus::Applied),
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
            kind: RecordKind::Anchor,
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
        edited[1].record.outcome = RecordOutcome::Job(crate::state::JobStatus::NoOp);
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
