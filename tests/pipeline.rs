//! The worker's handling of the queue against moto: poison messages reach the DLQ with their
//! reason, every gate fails closed when state cannot be read, and repeated deliveries of one
//! finding apply once.

mod support;

use serde_json::Value;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_go_to_the_dlq_with_their_reason_and_the_worker_carries_on() {
    let env = Env::new().await;
    let bucket = env.bucket("after-poison").await;
    let bad = [
        "not json at all",
        r#"{"detail-type": "Config Rules Compliance Change", "detail": "#,
        r#"{"hello": "world"}"#,
        &config_event(
            HOME,
            "restricted-ssh",
            "AWS::EC2::SecurityGroup",
            "sg-../../etc",
        ),
    ];
    for b in bad {
        env.send(b).await;
    }
    env.send_bucket_event(&bucket).await;
    env.drain().await;

    assert_eq!(
        env.depth(false).await,
        0,
        "every message was deleted from the queue"
    );
    let dlq = env.json(&["dlq", "list"]).await;
    let dlq = dlq.as_array().unwrap();
    assert_eq!(dlq.len(), bad.len(), "{dlq:#?}");
    for b in bad {
        let m = dlq
            .iter()
            .find(|m| m["body"] == b)
            .unwrap_or_else(|| panic!("{b} not in the DLQ"));
        let reason = m["reason"].as_str().unwrap();
        assert!(
            !reason.contains("moved by SQS"),
            "rectify gave no reason for {b}: {reason}"
        );
    }
    assert!(
        dlq.iter()
            .any(|m| m["reason"].as_str().unwrap().contains("resource id"))
    );
    let poison: Vec<Value> = env
        .audit()
        .await
        .into_iter()
        .filter(|r| r["kind"] == "poison")
        .collect();
    assert_eq!(poison.len(), bad.len());
    assert_eq!(
        env.job_for(&bucket).await["status"],
        "planned",
        "the valid event after the poison was handled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_changes_when_the_settings_table_cannot_be_read() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    let bucket = env.bucket("closed").await;
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .delete_table()
        .table_name(format!("{}-settings", env.prefix))
        .send()
        .await
        .unwrap();
    env.send_bucket_event(&bucket).await;
    let run = env.run(&["worker", "--once"]).await;
    assert_eq!(
        run.code, 1,
        "--once stops, and says so, when the state store cannot be read"
    );
    assert!(run.stderr.contains("state store"), "{}", run.stderr);
    assert!(
        run.stderr.contains("settings cannot be read"),
        "{}",
        run.stderr
    );
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        None,
        "a change was made with the settings unreadable"
    );
    assert_eq!(
        env.depth(false).await,
        1,
        "the message must stay on the queue to be retried"
    );
    assert!(env.jobs().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_delivered_three_times_is_applied_once() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    let bucket = env.bucket("dup").await;
    let event = bucket_event(&bucket);
    for _ in 0..3 {
        env.send(&event).await;
    }
    env.drain_all().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "applied");
    let records: Vec<Value> = env
        .audit()
        .await
        .into_iter()
        .filter(|r| r["resource_id"] == bucket.as_str())
        .collect();
    assert_eq!(records.len(), 1, "one decision, one record: {records:#?}");
    assert_eq!(records[0]["outcome"], "applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_hub_findings_and_unrouted_rules() {
    let env = Env::new().await;
    let bucket = env.bucket("asff").await;
    let sample = include_str!("fixtures/events/securityhub-finding-imported-s3.json")
        .replace("acme-media-uploads", &bucket)
        .replace("111122223333", HOME);
    env.send(&sample).await;
    // A rule rectify has no remediation for is acknowledged, not dead-lettered.
    env.send(&config_event(
        HOME,
        "ec2-ebs-encryption-by-default",
        "AWS::S3::Bucket",
        &bucket,
    ))
    .await;
    let run = env
        .run_env(&["worker", "--once"], &[("RECTIFY_METRICS", "emf")])
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let metrics: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        metrics
            .iter()
            .any(|m| m["FindingsReceived"] == 1.0 && m["source"] == "security-hub"),
        "{}",
        run.stdout
    );
    assert!(metrics.iter().any(|m| m["Jobs"] == 1.0
        && m["outcome"] == "planned"
        && m["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "rectify"));
    assert_eq!(env.depth(false).await, 0);
    assert_eq!(env.depth(true).await, 0);
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "planned");
    assert_eq!(job["source"], "security-hub");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_envelopes_end_in_the_dlq_with_their_reason_and_change_nothing() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    let bucket = env.bucket("forged").await;
    let event = |body: String| -> Value { serde_json::from_str(&body).unwrap() };
    // A member account's bus speaks for the home account.
    let mut config = event(config_event(
        HOME,
        "s3-bucket-level-public-access-prohibited",
        "AWS::S3::Bucket",
        &bucket,
    ));
    config["account"] = MEMBER.into();
    let mut source = event(bucket_event(&bucket));
    source["source"] = "acme.scanner".into();
    let asff = event(
        include_str!("fixtures/events/securityhub-finding-imported-s3.json")
            .replace("acme-media-uploads", &bucket)
            .replace("111122223333", HOME),
    );
    // A finding a member account imported as its own product.
    let mut product = asff.clone();
    product["detail"]["findings"][0]["ProductArn"] =
        format!("arn:aws:securityhub:{REGION}:{HOME}:product/{HOME}/default").into();
    let mut generator = asff.clone();
    generator["detail"]["findings"][0]["GeneratorId"] = "acme-scanner/public-bucket".into();
    // Delivered by another account than the finding's, which is not the administrator.
    let mut relayed = asff.clone();
    relayed["account"] = MEMBER.into();
    let forged = [
        (config, "is not the finding's `awsAccountId`"),
        (source, "`source` is \"acme.scanner\""),
        (product, "`ProductArn`"),
        (generator, "`GeneratorId`"),
        (
            relayed.clone(),
            "no Security Hub administrator account is set",
        ),
    ];
    for (body, _) in &forged {
        env.send(&body.to_string()).await;
    }
    env.drain().await;

    assert_eq!(env.depth(false).await, 0, "every message was deleted");
    let dlq = env.json(&["dlq", "list"]).await;
    let dlq = dlq.as_array().unwrap();
    assert_eq!(dlq.len(), forged.len(), "{dlq:#?}");
    for (body, want) in &forged {
        let m = dlq
            .iter()
            .find(|m| {
                serde_json::from_str::<Value>(m["body"].as_str().unwrap()).ok()
                    == Some(body.clone())
            })
            .unwrap_or_else(|| panic!("not in the DLQ: {body}"));
        let reason = m["reason"].as_str().unwrap();
        assert!(
            reason.contains("untrusted envelope") && reason.contains(want),
            "{want}: {reason}"
        );
    }
    assert!(env.jobs().await.is_empty(), "no job was made");
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        None,
        "a forged event changed the bucket"
    );
    let poison = env
        .audit()
        .await
        .into_iter()
        .filter(|r| r["kind"] == "poison")
        .count();
    assert_eq!(poison, forged.len());

    // Once the sender is the Security Hub administrator, the relayed finding is acted on.
    let bad = env.run(&["settings", "securityhub-admin", "2109"]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("account id"), "{}", bad.stderr);
    let shown = env
        .ok(&["settings", "securityhub-admin", MEMBER, "--by", "test"])
        .await;
    assert!(shown.contains(MEMBER), "{shown}");
    env.send(&relayed.to_string()).await;
    env.drain().await;
    assert_eq!(env.depth(true).await, forged.len() as u64);
    assert_eq!(env.job_for(&bucket).await["status"], "applied");
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_name_the_dlq_id_a_listing_shows_and_the_run_ends_with_a_summary() {
    let env = Env::new().await;
    let bucket = env.bucket("summary").await;
    env.send("not an event").await;
    env.send_bucket_event(&bucket).await;
    let r = env.drain_env(&[("RECTIFY_LOG_FORMAT", "json")]).await;

    // One `message` key per line: the SQS id is `message_id`, not a second `message`.
    let mut poison = None;
    for line in r.stderr.lines().filter(|l| l.starts_with('{')) {
        assert_eq!(
            line.matches("\"message\":").count(),
            1,
            "one message key: {line}"
        );
        let v: Value = serde_json::from_str(line).unwrap();
        if v["message"] == "poison message sent to the DLQ" {
            poison = Some(v);
        }
    }
    let poison = poison.unwrap_or_else(|| panic!("no poison warning in:\n{}", r.stderr));
    assert!(poison["message_id"].is_string(), "{poison:#}");
    let last = r.stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "rectify worker --once: 2 message(s) received: 0 applied, 1 planned, 0 held for a person, 0 failed, 1 dead-lettered, 0 left for retry",
        "{}",
        r.stderr
    );

    // The id in the warning is the one `dlq list` shows, and listing twice does not raise the
    // receive count it shows: the event queue delivered the message once.
    for _ in 0..2 {
        let dlq = env.json(&["dlq", "list"]).await;
        let dlq = dlq.as_array().unwrap();
        assert_eq!(dlq.len(), 1, "{dlq:#?}");
        assert_eq!(dlq[0]["id"], poison["dlq_message_id"], "{dlq:#?}");
        assert_eq!(dlq[0]["receive_count"], 1, "{dlq:#?}");
    }
}
