//! Exactly-once effect under at-least-once delivery, against moto: two workers on one queue
//! with every finding delivered twice, and a crashed worker's stale lease reclaimed.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_queue_apply_each_fix_once() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    let mut buckets = Vec::new();
    for _ in 0..6 {
        let b = env.bucket("pair").await;
        let event = bucket_event(&b);
        env.send(&event).await;
        env.send(&event).await;
        buckets.push(b);
    }
    let (a, b) = tokio::join!(
        env.run(&["worker", "--once", "--concurrency", "4"]),
        env.run(&["worker", "--once", "--concurrency", "4"])
    );
    assert_eq!(a.code, 0, "{}", a.stderr);
    assert_eq!(b.code, 0, "{}", b.stderr);
    env.drain_all().await;
    let audit = env.audit().await;
    for bucket in &buckets {
        assert_eq!(public_access_block(&env.sdk, bucket).await, Some([true; 4]));
        let applied: Vec<&Value> = audit
            .iter()
            .filter(|r| r["resource_id"] == bucket.as_str() && r["outcome"] == "applied")
            .collect();
        assert_eq!(applied.len(), 1, "{bucket}: {applied:#?}");
        let decisions = audit
            .iter()
            .filter(|r| r["resource_id"] == bucket.as_str())
            .count();
        assert_eq!(
            decisions, 1,
            "{bucket}: a duplicate delivery is acknowledged without a new decision"
        );
    }
    assert!(env.ok(&["audit", "verify"]).await.starts_with("OK"));
}

/// An enforced public bucket, its finding, and that finding's job written as claimed by
/// another worker whose lease ends `lease_from_now` seconds from now.
async fn claimed_elsewhere(
    env: &Env,
    owner: &str,
    lease_from_now: i64,
) -> (String, String, String) {
    env.enforce("s3-block-public-access").await;
    let bucket = env.bucket("claimed").await;
    let event = bucket_event(&bucket);
    let v: Value = serde_json::from_str(&event).unwrap();
    let ordering =
        v["detail"]["newEvaluationResult"]["evaluationResultIdentifier"]["orderingTimestamp"]
            .as_str()
            .unwrap();
    let observation = chrono::DateTime::parse_from_rfc3339(ordering)
        .unwrap()
        .with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let id = rectify::state::Job::id_for(
        HOME,
        REGION,
        "s3-block-public-access",
        "AWS::S3::Bucket",
        &bucket,
        &observation,
    );
    let s = |v: &str| AttributeValue::S(v.to_string());
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .put_item()
        .table_name(format!("{}-jobs", env.prefix))
        .item("id", s(&id))
        .item("status", s("in-progress"))
        .item("mode", s("enforce"))
        .item("lease_owner", s(owner))
        .item(
            "lease_until",
            AttributeValue::N((chrono::Utc::now().timestamp() + lease_from_now).to_string()),
        )
        .item("attempts", AttributeValue::N("1".into()))
        .item("created_at", s("2026-01-01T00:00:00.000Z"))
        .send()
        .await
        .unwrap();
    (bucket, event, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_workers_stale_lease_is_reclaimed() {
    let env = Env::new().await;
    // A worker claimed this job and died: its lease ran out a minute ago.
    let (bucket, event, id) = claimed_elsewhere(&env, "w-crashed", -60).await;
    env.send(&event).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["id"], id.as_str());
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["attempts"], 2);
    let reason = job["reason"].as_str().unwrap();
    assert!(reason.contains("try 1 was interrupted"), "{reason}");
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_made_by_a_try_killed_before_its_record_is_named_on_the_record() {
    let env = Env::new().await;
    // A worker claimed this job, blocked the bucket's public access and died before it wrote
    // the outcome.
    let (bucket, event, _) = claimed_elsewhere(&env, "w-killed", -60).await;
    block_public_access(&env.sdk, &bucket).await;
    env.send(&event).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "no-op", "{job:#}");
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.contains("try 1 was interrupted before its outcome was recorded")
            && reason.contains("undo cannot put it back"),
        "{reason}"
    );
    let records = env.json(&["audit", "list", "--resource", &bucket]).await;
    let said = records
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .any(|r| r.contains("try 1 was interrupted"));
    assert!(said, "the audit record says it: {records:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_lease_is_respected() {
    let env = Env::new().await;
    let (bucket, event, _) = claimed_elsewhere(&env, "w-busy", 600).await;
    env.send(&event).await;
    env.drain().await;
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        None,
        "another worker's live job was run"
    );
    assert_eq!(
        env.depth(false).await,
        1,
        "the message stays for that worker's outcome"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_jobs_outcome_is_its_whole_item_and_a_reclaimed_one_keeps_what_it_held() {
    let env = Env::new().await;
    // A new job: claimed and ended by whole-item writes.
    env.enforce("s3-block-public-access").await;
    let bucket = env.bucket("whole").await;
    env.send_bucket_event(&bucket).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    let item = env.job_item(job["id"].as_str().unwrap()).await;
    for attr in [
        "id",
        "remediation",
        "account",
        "region",
        "resource_type",
        "resource_id",
        "resource_key",
        "rule",
        "source",
        "observation",
        "status",
        "mode",
        "reason",
        "plan",
        "plan_hash",
        "before",
        "after",
        "inverse",
        "script_sha256",
        "created_at",
        "updated_at",
        "attempts",
    ] {
        assert!(item.contains_key(attr), "{attr} missing: {item:#?}");
    }
    for gone in ["lease_owner", "lease_until", "approved_by", "requested_by"] {
        assert!(!item.contains_key(gone), "{gone} left: {item:#?}");
    }
    assert_eq!(item["attempts"], AttributeValue::N("1".into()));
    assert_eq!(
        item["resource_key"],
        AttributeValue::S(format!("{HOME}|{REGION}|AWS::S3::Bucket|{bucket}"))
    );
    let shown = env.ok(&["jobs", "show", job["id"].as_str().unwrap()]).await;
    assert!(shown.contains("attempts 1"), "{shown}");

    // A job found claimed by a worker that died, holding a field of its own: the claim and the
    // outcome change only what they decide, and the field stays.
    let (bucket, event, id) = claimed_elsewhere(&env, "w-gone", -60).await;
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .update_item()
        .table_name(format!("{}-jobs", env.prefix))
        .key("id", AttributeValue::S(id.clone()))
        .update_expression("SET requested_by = :who")
        .expression_attribute_values(":who", AttributeValue::S("arn:aws:iam::1:user/op".into()))
        .send()
        .await
        .unwrap();
    env.send(&event).await;
    env.drain().await;
    let item = env.job_item(&id).await;
    assert_eq!(
        item["status"],
        AttributeValue::S("applied".into()),
        "{item:#?}"
    );
    assert_eq!(item["attempts"], AttributeValue::N("2".into()));
    assert_eq!(
        item["requested_by"],
        AttributeValue::S("arn:aws:iam::1:user/op".into()),
        "{item:#?}"
    );
    assert_eq!(
        item["created_at"],
        AttributeValue::S("2026-01-01T00:00:00.000Z".into())
    );
    assert!(!item.contains_key("lease_owner"), "{item:#?}");
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
}
