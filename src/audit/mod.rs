//! The audit trail: one record per decision, canonical JSON, hash-chained.
//!
//! Each writer (a worker process, or one CLI command) appends to its own chain: records carry a
//! sequence number and the hash of their predecessor, and a record's hash covers both, so a
//! record changed, removed, inserted or reordered breaks the chain. Chains per writer let several
//! workers write at once without a shared head to contend for; `verify` walks every chain.
//! Conditional writes on (chain, seq) make a chain impossible to fork silently.
//!
//! A chain cannot show that its newest records were cut off, so writers record their heads in a
//! shared anchor chain: a running worker at least every N records or T seconds (and idle, every
//! minute), a command after each record, a worker when it stops. `verify` fails on a head no
//! anchor covers, unless its writer is running ([`liveness`]), and on a newest anchor older than
//! a bound. A worker adopts the chain of a writer killed before it anchored.

pub mod chain;
pub mod export;
pub mod liveness;
pub mod record;
pub mod verify;

pub use crate::redact::redact;
pub use chain::{ANCHORS, AuditWriter, IDLE_ANCHOR, Pending, is_command_chain};
pub use export::{export, read_export};
pub use liveness::{Liveness, adopt_stopped};
pub use record::{Format, GENESIS, Record, RecordKind, RecordOutcome};
pub use verify::{
    Coverage, Problem, Stored, broken, coverage, read_all, read_job_in_chain, read_record,
    record_id, record_place, verify, verify_export,
};

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

    fn anchor(seq: u64, prev: &str, time: &str, chain: &str, head: &Stored) -> Stored {
        let mut a = Record {
            id: format!("anchors-{seq:08}"),
            chain: ANCHORS.into(),
            seq,
            prev_hash: prev.into(),
            time: time.into(),
            kind: RecordKind::Anchor,
            outcome: RecordOutcome::Anchored,
            after: Some(
                serde_json::json!({"chain": chain, "seq": head.seq, "hash": head.record.hash}),
            ),
            ..Record::default()
        };
        a.hash = a.compute_hash();
        Stored {
            chain: ANCHORS.into(),
            seq,
            stored_hash: a.hash.clone(),
            record: a,
        }
    }

    fn at(text: &str) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    #[test]
    fn an_uncovered_head_fails_unless_its_writer_is_running() {
        let mut records = chain(4);
        let a = anchor(1, GENESIS, "2026-11-22T00:01:00Z", "w-a", &records[1]);
        records.push(a);
        let now = at("2026-11-22T00:02:00Z");
        let bound = std::time::Duration::from_secs(900);
        let none = std::collections::BTreeMap::new();
        let c = coverage(&records, &none, now, bound);
        assert_eq!(c.problems.len(), 1, "{c:?}");
        assert_eq!(c.problems[0].record, "w-a-00000004");
        assert!(c.problems[0].what.contains("w-a-00000002"), "{c:?}");
        assert!(c.problems[0].what.contains("not running"), "{c:?}");

        let expired = std::collections::BTreeMap::from([("w-a".to_string(), now.timestamp() - 1)]);
        assert_eq!(coverage(&records, &expired, now, bound).problems.len(), 1);

        let live = std::collections::BTreeMap::from([("w-a".to_string(), now.timestamp() + 10)]);
        let c = coverage(&records, &live, now, bound);
        assert!(c.problems.is_empty(), "{c:?}");
        assert!(
            c.notes[0].contains("w-a") && c.notes[0].contains("running"),
            "{c:?}"
        );

        let head = records[3].clone();
        let prev = records[4].record.hash.clone();
        records.push(anchor(2, &prev, "2026-11-22T00:01:30Z", "w-a", &head));
        assert_eq!(coverage(&records, &none, now, bound), Coverage::default());
        assert!(verify(&records).is_empty());
    }

    #[test]
    fn a_stale_newest_anchor_fails() {
        let mut records = chain(2);
        let a = anchor(1, GENESIS, "2026-11-22T00:01:00Z", "w-a", &records[1]);
        records.push(a);
        let none = std::collections::BTreeMap::new();
        let bound = std::time::Duration::from_secs(900);
        assert!(
            coverage(&records, &none, at("2026-11-22T00:16:00Z"), bound)
                .problems
                .is_empty()
        );
        let c = coverage(&records, &none, at("2026-11-22T00:16:01Z"), bound);
        assert_eq!(c.problems.len(), 1, "{c:?}");
        assert_eq!(c.problems[0].record, "anchors-00000001");
        assert!(c.problems[0].what.contains("900 s"), "{c:?}");
    }

    #[test]
    fn an_idle_anchor_vouches_for_nothing() {
        let mut records = chain(1);
        let mut idle = anchor(1, GENESIS, "2026-11-22T00:01:00Z", "w-b", &records[0]);
        idle.record.after = Some(serde_json::json!({"chain": "w-b", "seq": 0, "hash": GENESIS}));
        idle.record.hash = idle.record.compute_hash();
        idle.stored_hash = idle.record.hash.clone();
        records.push(idle);
        assert!(verify(&records).is_empty(), "{:?}", verify(&records));
    }

    /// A chain whose first `legacy` records were written in format 1, the rest in format 2.
    fn mixed_chain(n: u64, legacy: u64) -> Vec<Stored> {
        let mut records = chain(n);
        let mut prev = GENESIS.to_string();
        for s in &mut records {
            if s.seq <= legacy {
                s.record.format = Format::LEGACY;
            }
            s.record.prev_hash = prev;
            s.record.hash = s.record.compute_hash();
            s.stored_hash = s.record.hash.clone();
            prev = s.record.hash.clone();
        }
        records
    }

    /// The stored text of each record read back, as `read_all` and `read_export` see it.
    fn reread(records: &[Stored]) -> Vec<Stored> {
        records
            .iter()
            .map(|s| Stored {
                record: serde_json::from_str(&s.record.canonical()).unwrap(),
                ..s.clone()
            })
            .collect()
    }

    #[test]
    fn a_chain_of_format_1_records_then_format_2_records_verifies() {
        let records = reread(&mixed_chain(4, 2));
        assert_eq!(records[1].record.format, Format::LEGACY);
        assert_eq!(records[2].record.format, Format::JCS);
        assert!(!records[1].record.canonical().contains("\"format\""));
        assert!(records[2].record.canonical().contains("\"format\":2"));
        assert!(verify(&records).is_empty(), "{:?}", verify(&records));
    }

    #[test]
    fn tampering_is_named_in_either_format() {
        for (seq, format) in [(2, Format::LEGACY), (4, Format::JCS)] {
            let mut edited = reread(&mixed_chain(4, 2));
            let r = &mut edited[seq - 1].record;
            assert_eq!(r.format, format);
            r.reason = Some("edited".into());
            let p = verify(&edited);
            let name = format!("w-a-{seq:08}");
            assert!(
                p.iter()
                    .any(|p| p.record == name && p.what.contains("edited")),
                "format {format}: {p:?}"
            );
        }
        // Claiming the other format changes what is hashed, so it is an edit too.
        let mut downgraded = reread(&mixed_chain(4, 2));
        downgraded[3].record.format = Format::LEGACY;
        assert!(
            verify(&downgraded)
                .iter()
                .any(|p| p.record == "w-a-00000004" && p.what.contains("edited"))
        );
        let mut future = reread(&mixed_chain(2, 0));
        future[1].record.format = Format(4);
        let p = verify(&future);
        assert!(
            p.iter()
                .any(|p| p.record == "w-a-00000002" && p.what.contains("record format 4")),
            "{p:?}"
        );
    }

    #[test]
    fn a_record_id_names_its_chain_and_place() {
        assert_eq!(record_place("c-0a1b2c-00000012"), ("c-0a1b2c", Some(12)));
        assert_eq!(record_place("w-legacy-00000001"), ("w-legacy", Some(1)));
        // A chain alone, or a suffix that is no place.
        assert_eq!(record_place("c-0a1b2c"), ("c-0a1b2c", None));
        assert_eq!(record_place("c-x-0000001"), ("c-x-0000001", None));
        assert_eq!(record_place("c-x-0000000a"), ("c-x-0000000a", None));
        assert_eq!(record_place("anchors"), ("anchors", None));
        // The id a record is given is the place it names.
        assert_eq!(record_id("c-0a1b2c", 12), "c-0a1b2c-00000012");
        assert_eq!(record_place(&record_id("anchors", 7)), ("anchors", Some(7)));
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
