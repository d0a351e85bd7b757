//! Export of the chains to S3 as JSON lines, with Object Lock retention where the bucket has it.

use std::collections::BTreeMap;

use super::record::{Record, RecordOutcome};
use super::verify::Stored;
use crate::cloud::classify;

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
                    outcome: RecordOutcome::Unreadable(format!("unreadable exported record: {e}")),
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
