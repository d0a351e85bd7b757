//! Reading the trail back and checking it: every chain, every anchor, and an export against
//! the table.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;

use super::chain::ANCHORS;
use super::record::{GENESIS, Record, RecordOutcome};
use crate::cloud::classify;
use crate::state::StateError;

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
    let items = ddb
        .scan()
        .table_name(table)
        .consistent_read(true)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify("dynamodb:Scan", e))?;
    let mut records: Vec<Stored> = items.iter().map(stored).collect();
    records.sort_by(|a, b| {
        a.record
            .time
            .cmp(&b.record.time)
            .then(a.chain.cmp(&b.chain))
            .then(a.seq.cmp(&b.seq))
    });
    Ok(records)
}

/// Reads the record `seq` of chain `chain`, when there is one.
pub async fn read_record(
    ddb: &Client,
    table: &str,
    chain: &str,
    seq: u64,
) -> Result<Option<Stored>, StateError> {
    let out = ddb
        .get_item()
        .table_name(table)
        .key("chain", AttributeValue::S(chain.to_string()))
        .key("seq", AttributeValue::N(seq.to_string()))
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| classify("dynamodb:GetItem", e))?;
    Ok(out.item().map(stored))
}

/// The id of record `seq` of chain `chain`: `<chain>-<8 digits>` ([`record_place`] reads it).
pub fn record_id(chain: &str, seq: u64) -> String {
    format!("{chain}-{seq:08}")
}

/// The chain and sequence number a record id names ([`record_id`]); a text without that
/// suffix names a chain alone.
pub fn record_place(id: &str) -> (&str, Option<u64>) {
    match id.rsplit_once('-') {
        Some((chain, seq)) if seq.len() == 8 && seq.bytes().all(|b| b.is_ascii_digit()) => {
            (chain, seq.parse().ok())
        }
        _ => (id, None),
    }
}

/// Reads the records of job `job` in chain `chain`, in order of their sequence numbers.
pub async fn read_job_in_chain(
    ddb: &Client,
    table: &str,
    chain: &str,
    job: &str,
) -> Result<Vec<Stored>, StateError> {
    let items = ddb
        .query()
        .table_name(table)
        .consistent_read(true)
        .key_condition_expression("#c = :c")
        .filter_expression("#j = :j")
        .expression_attribute_names("#c", "chain")
        .expression_attribute_names("#j", "job_id")
        .expression_attribute_values(":c", AttributeValue::S(chain.to_string()))
        .expression_attribute_values(":j", AttributeValue::S(job.to_string()))
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify("dynamodb:Query", e))?;
    Ok(items.iter().map(stored).collect())
}

/// A stored audit item as it was read: a record that does not parse is kept as one whose
/// outcome says so, for [`verify`] to report.
fn stored(item: &std::collections::HashMap<String, AttributeValue>) -> Stored {
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
        outcome: RecordOutcome::Unreadable(format!("unreadable record: {e}")),
        ..Record::default()
    });
    Stored {
        record,
        chain: get("chain"),
        seq,
        stored_hash: get("hash"),
    }
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
        let name = record_id(&e.chain, e.seq);
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

/// What is wrong with one stored record on its own, whatever its chain holds around it: a key
/// its content does not name, a format this rectify cannot hash, content that does not match
/// its hash. Empty for a whole record.
pub fn broken(s: &Stored) -> Vec<String> {
    let r = &s.record;
    let mut problems = Vec::new();
    if r.chain != s.chain || r.seq != s.seq || r.id != record_id(&s.chain, s.seq) {
        problems.push("stored under a key its content does not name: moved or forged".into());
    }
    if !r.format.is_known() {
        problems.push(format!(
            "record format {}, which this rectify cannot hash (it knows formats {} to {}): verify with a newer rectify",
            r.format,
            super::Format::LEGACY,
            super::Format::IDENTIFIED
        ));
    } else if r.compute_hash() != r.hash || r.hash != s.stored_hash {
        problems.push("content does not match its hash: the record was edited".into());
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
/// predecessor's hash, each hash matching its record's content and key, whatever the format
/// each record was written in (a chain may hold format 1 records, then format 2 ones).
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
        // An idle writer's anchor, written only to keep the newest anchor fresh.
        if seq == 0 {
            continue;
        }
        match stored.get(&(chain, seq)) {
            None => problems.push(Problem {
                record: record_id(chain, seq),
                what: format!("missing, though anchor {} recorded it as the head of its chain: the tail was cut off", a.record.id),
            }),
            Some(h) if *h != hash => problems.push(Problem {
                record: record_id(chain, seq),
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
            let name = record_id(chain, s.seq);
            let mut problem = |what: String| {
                problems.push(Problem {
                    record: name.clone(),
                    what,
                });
            };
            if s.seq != expected_seq {
                problem(format!(
                    "sequence {} where {expected_seq} was expected: records removed or inserted before it",
                    s.seq
                ));
            }
            for what in broken(s) {
                problem(what);
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

/// What [`coverage`] found: problems, and notes on what was excused and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    pub problems: Vec<Problem>,
    pub notes: Vec<String>,
}

/// Checks what the chains cannot show themselves: every writer's head is covered by an anchor
/// written after it (an anchor naming that record or a later one), except for a writer still
/// running (`live`: chain → alive until, epoch seconds, as [`super::Liveness`] keeps it; a
/// running worker anchors within seconds); and the newest anchor is at most `max_age` older than
/// `now`, so the anchor chain's own tail was not cut off. Deleting a stopped writer's newest
/// records, with the anchors that named them, fails the first check; deleting the newest anchors
/// with the records they covered fails one of them.
pub fn coverage(
    records: &[Stored],
    live: &BTreeMap<String, i64>,
    now: chrono::DateTime<chrono::Utc>,
    max_age: Duration,
) -> Coverage {
    let mut out = Coverage::default();
    let mut heads: BTreeMap<&str, u64> = BTreeMap::new();
    let mut anchored: BTreeMap<String, u64> = BTreeMap::new();
    let mut newest: Option<&Stored> = None;
    for r in records {
        if r.chain == ANCHORS {
            if newest.is_none_or(|n| r.seq > n.seq) {
                newest = Some(r);
            }
            if let Some(head) = &r.record.after
                && let (Some(chain), Some(seq)) = (head["chain"].as_str(), head["seq"].as_u64())
            {
                let a = anchored.entry(chain.to_string()).or_default();
                *a = (*a).max(seq);
            }
        } else {
            let h = heads.entry(r.chain.as_str()).or_default();
            *h = (*h).max(r.seq);
        }
    }
    for (chain, head) in heads {
        let covered = anchored.get(chain).copied().unwrap_or(0);
        if head <= covered {
            continue;
        }
        let tail = if covered == 0 {
            "no record of it is anchored".to_string()
        } else {
            format!("records after {chain}-{covered:08} are not anchored")
        };
        match live.get(chain) {
            Some(until) if *until >= now.timestamp() => out.notes.push(format!(
                "chain {chain}: its writer is running (liveness item in the settings table, alive until {}); {tail} yet, which it does within seconds",
                chrono::DateTime::from_timestamp(*until, 0).map_or_else(|| until.to_string(), |t| t.to_rfc3339())
            )),
            _ => out.problems.push(Problem {
                record: format!("{chain}-{head:08}"),
                what: format!(
                    "the head of its chain is not covered by an anchor written after it ({tail}) and its writer is not running: newer records may have been cut off, or the writer was killed before it anchored them and no worker has adopted its chain since"
                ),
            }),
        }
    }
    if let Some(n) = newest {
        let written = chrono::DateTime::parse_from_rfc3339(&n.record.time)
            .map(|t| t.with_timezone(&chrono::Utc));
        match written {
            Ok(t) => {
                let age = (now - t).num_seconds().max(0);
                if age as u64 > max_age.as_secs() {
                    out.problems.push(Problem {
                        record: n.record.id.clone(),
                        what: format!(
                            "the newest anchor was written {age} s ago, beyond the bound of {} s: newer anchors may have been cut off with the records they covered (a running worker anchors at least every {} s; when no worker has run since, pass a larger --max-anchor-age)",
                            max_age.as_secs(),
                            super::IDLE_ANCHOR.as_secs()
                        ),
                    });
                }
            }
            Err(_) => out.problems.push(Problem {
                record: n.record.id.clone(),
                what: format!(
                    "the newest anchor has no readable time ({:?})",
                    n.record.time
                ),
            }),
        }
    }
    out
}
