//! The audit trail and undo against moto: every kind of tampering is detected and named by
//! `audit verify`; an applied fix of each remediation is undone to exactly the state before it,
//! on the record, with an exemption; an undo over a later change is refused unless forced.

mod support;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;
use support::*;

/// A worker chain of four records (dry-run plans), anchored when the worker stopped.
async fn trail(env: &Env) -> String {
    for _ in 0..4 {
        let b = env.bucket("trail").await;
        env.send(&config_event(
            HOME,
            "s3-bucket-public-read-prohibited",
            "AWS::S3::Bucket",
            &b,
        ))
        .await;
    }
    env.run(&["worker", "--once", "--concurrency", "1"]).await;
    let audit = env.audit().await;
    let chain = audit.iter().find(|r| r["kind"] == "job").unwrap()["chain"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        audit
            .iter()
            .filter(|r| r["chain"] == chain.as_str())
            .count(),
        4
    );
    assert!(env.ok(&["audit", "verify"]).await.starts_with("OK"));
    chain
}

fn key(chain: &str, seq: u64) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([
        ("chain".to_string(), AttributeValue::S(chain.to_string())),
        ("seq".to_string(), AttributeValue::N(seq.to_string())),
    ])
}

async fn item(
    env: &Env,
    chain: &str,
    seq: u64,
) -> std::collections::HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .get_item()
        .table_name(format!("{}-audit", env.prefix))
        .set_key(Some(key(chain, seq)))
        .send()
        .await
        .unwrap()
        .item()
        .cloned()
        .unwrap()
}

async fn put(env: &Env, item: std::collections::HashMap<String, AttributeValue>) {
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .put_item()
        .table_name(format!("{}-audit", env.prefix))
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

async fn delete(env: &Env, chain: &str, seq: u64) {
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .delete_item()
        .table_name(format!("{}-audit", env.prefix))
        .set_key(Some(key(chain, seq)))
        .send()
        .await
        .unwrap();
}

async fn verify_fails_naming(env: &Env, record: &str, what: &str) {
    let r = env.run(&["audit", "verify"]).await;
    assert_eq!(r.code, 1, "verify passed a tampered trail:\n{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with(record) && l.contains(what)),
        "expected {record}: …{what}… in:\n{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_tampering_is_named() {
    // An edited field.
    let env = Env::new().await;
    let chain = trail(&env).await;
    let mut it = item(&env, &chain, 2).await;
    let text = it["record"]
        .as_s()
        .unwrap()
        .replace("\"outcome\":\"planned\"", "\"outcome\":\"no-op\"");
    it.insert("record".into(), AttributeValue::S(text));
    put(&env, it).await;
    verify_fails_naming(&env, &format!("{chain}-00000002"), "edited").await;

    // A deleted record.
    let env = Env::new().await;
    let chain = trail(&env).await;
    delete(&env, &chain, 2).await;
    verify_fails_naming(&env, &format!("{chain}-00000003"), "removed or inserted").await;

    // A forged record inserted at the end, with a correct-looking hash of its own.
    let env = Env::new().await;
    let chain = trail(&env).await;
    let mut forged: Value =
        serde_json::from_str(item(&env, &chain, 4).await["record"].as_s().unwrap()).unwrap();
    forged["seq"] = 5.into();
    forged["id"] = format!("{chain}-00000005").into();
    forged["outcome"] = "applied".into();
    let record: rectify::audit::Record = serde_json::from_value(forged.clone()).unwrap();
    forged["hash"] = record.compute_hash().into();
    let mut it = item(&env, &chain, 4).await;
    it.insert("seq".into(), AttributeValue::N("5".into()));
    it.insert(
        "hash".into(),
        AttributeValue::S(forged["hash"].as_str().unwrap().into()),
    );
    it.insert("record".into(), AttributeValue::S(forged.to_string()));
    put(&env, it).await;
    verify_fails_naming(&env, &format!("{chain}-00000005"), "predecessor").await;

    // Two records swapped.
    let env = Env::new().await;
    let chain = trail(&env).await;
    let (mut a, mut b) = (item(&env, &chain, 2).await, item(&env, &chain, 3).await);
    let (ra, rb) = (a["record"].clone(), b["record"].clone());
    let (ha, hb) = (a["hash"].clone(), b["hash"].clone());
    a.insert("record".into(), rb);
    a.insert("hash".into(), hb);
    b.insert("record".into(), ra);
    b.insert("hash".into(), ha);
    put(&env, a).await;
    put(&env, b).await;
    verify_fails_naming(&env, &format!("{chain}-00000002"), "moved or forged").await;

    // The tail cut off: the anchor written when the worker stopped still names it.
    let env = Env::new().await;
    let chain = trail(&env).await;
    delete(&env, &chain, 4).await;
    verify_fails_naming(&env, &format!("{chain}-00000004"), "tail was cut off").await;
}

async fn applied(
    env: &Env,
    remediation: &str,
    rule: &str,
    resource_type: &str,
    id: &str,
) -> String {
    env.enforce(remediation).await;
    env.send(&config_event(HOME, rule, resource_type, id)).await;
    env.drain().await;
    let jobs: Vec<Value> = env
        .jobs()
        .await
        .into_iter()
        .filter(|j| j["resource_id"] == id && j["source"] != "operator")
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(jobs[0]["status"], "applied", "{:#}", jobs[0]);
    jobs[0]["id"].as_str().unwrap().to_string()
}

async fn undo(env: &Env, job: &str) {
    let resource = env.json(&["jobs", "show", job]).await["resource_id"].clone();
    let out = env
        .ok(&[
            "jobs",
            "undo",
            job,
            "--by",
            "auditor",
            "--reason",
            "this resource must stay open",
        ])
        .await;
    assert!(out.contains("undone"), "{out}");
    let audit = env.audit().await;
    // The actor is the caller's AWS identity; `--by` is a label beside it, never instead of it.
    let actor = format!("{} (label: auditor)", caller_arn(env).await);
    assert!(audit.iter().any(|r| r["job_id"] == format!("undo-{job}")
        && r["outcome"] == "applied"
        && r["actor"] == actor.as_str()));
    assert!(
        audit
            .iter()
            .any(|r| r["job_id"] == job && r["outcome"] == "undone")
    );
    // Each record the undo made names the identity it ran as.
    let arn = caller_arn(env).await;
    for r in audit.iter().filter(|r| {
        r["job_id"] == format!("undo-{job}") || (r["job_id"] == job && r["outcome"] == "undone")
    }) {
        assert_eq!(r["identity"], arn.as_str(), "{r:#}");
    }
    // This resource's exemption, not an earlier undo's, ending 30 days on.
    assert!(
        audit
            .iter()
            .any(|r| r["outcome"] == "exemption-added" && r["resource_id"] == resource)
    );
    let exemptions = env.json(&["exemptions", "list"]).await;
    let ours = exemptions
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource_id"] == resource)
        .unwrap_or_else(|| panic!("{exemptions:#}"));
    assert_eq!(ours["until"], days_on(30).as_str(), "{ours:#}");
    assert!(env.ok(&["audit", "verify"]).await.starts_with("OK"));
}

/// The date `days` after today (UTC), as `YYYY-MM-DD`.
fn days_on(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// An s3-block-public-access job applied to a new bucket: the bucket and the job.
async fn applied_bucket(env: &Env) -> (String, String) {
    let bucket = env.bucket("undo").await;
    let job = applied(
        env,
        "s3-block-public-access",
        "s3-bucket-public-read-prohibited",
        "AWS::S3::Bucket",
        &bucket,
    )
    .await;
    (bucket, job)
}

async fn undo_run(env: &Env, job: &str, extra: &[&str]) -> Run {
    let mut args = vec!["jobs", "undo", job, "--by", "auditor", "--reason", "r"];
    args.extend_from_slice(extra);
    env.run(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_undo_is_tried_again_by_undo_and_never_run_as_the_fix() {
    let env = Env::new().await;
    let (bucket, job) = applied_bucket(&env).await;
    // The undo's one call is throttled past the SDK's own retries: the undo fails.
    let proxy = FaultProxy::start(0.0, 29).await;
    proxy
        .set(serde_json::json!({"throttle_action": "DeletePublicAccessBlock", "throttle_count": 5}))
        .await;
    let r = env
        .run_env(
            &["jobs", "undo", &job, "--by", "auditor", "--reason", "r"],
            &[("AWS_ENDPOINT_URL", &proxy.url)],
        )
        .await;
    assert_ne!(r.code, 0, "{}", r.stdout);
    let undo_id = format!("undo-{job}");
    assert_eq!(
        env.json(&["jobs", "show", &undo_id]).await["status"],
        "failed"
    );

    // Retrying the failed undo would run the remediation on the resource it undid.
    let r = env.run(&["jobs", "retry", &undo_id]).await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains(&format!("rectify jobs undo {job}")),
        "{}",
        r.stderr
    );
    let listed = env
        .json(&["jobs", "retry", "--status", "failed", "--yes"])
        .await;
    assert!(
        !listed.to_string().contains(&undo_id),
        "a bulk retry took the undo: {listed:#}"
    );
    env.drain_all().await;
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4]),
        "untouched until the undo is tried again"
    );
    // Nothing ran the remediation again: the bucket has its job and the failed undo, no more.
    let jobs = env.jobs().await;
    let ids: Vec<&str> = jobs
        .iter()
        .filter(|j| j["resource_id"] == bucket.as_str())
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(ids.contains(&job.as_str()) && ids.contains(&undo_id.as_str()));

    // `jobs undo` tries it again.
    let r = undo_run(&env, &job, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    assert_eq!(
        env.json(&["jobs", "show", &undo_id]).await["status"],
        "applied"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_whose_job_could_not_be_marked_is_finished_by_undo_again_without_a_second_change() {
    let env = Env::new().await;
    let (bucket, job) = applied_bucket(&env).await;
    let undo_id = format!("undo-{job}");
    // The undo's first transaction (the undo job and its record) goes through; the job's move
    // to undone, its second, is throttled past the SDK's own retries.
    let proxy = FaultProxy::start(0.0, 31).await;
    proxy
        .set(serde_json::json!({"throttle_action": "TransactWriteItems", "throttle_skip": 1, "throttle_count": 5}))
        .await;
    let via_proxy = [("AWS_ENDPOINT_URL", proxy.url.as_str())];
    let args = [
        "jobs",
        "undo",
        &job,
        "--by",
        "auditor",
        "--reason",
        "r",
        "--no-exempt",
    ];
    let r = env.run_env(&args, &via_proxy).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stderr
            .contains(&format!("job {job} is not marked undone"))
            && r.stderr
                .contains(&format!("`rectify jobs undo {job}` marks it")),
        "{}",
        r.stderr
    );
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    assert_eq!(env.json(&["jobs", "show", &job]).await["status"], "applied");
    assert_eq!(
        env.json(&["jobs", "show", &undo_id]).await["status"],
        "applied"
    );
    let deletes = |proxy: &FaultProxy| {
        proxy
            .mutating_calls()
            .iter()
            .filter(|c| c["action"] == "DeletePublicAccessBlock")
            .count()
    };
    assert_eq!(deletes(&proxy), 1);

    // Run again, the undo finds its own earlier run done and only marks the job.
    proxy
        .set(serde_json::json!({"throttle_action": null, "throttle_count": 0, "throttle_skip": 0}))
        .await;
    let r = env.run_env(&args, &via_proxy).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "undo job {undo_id} had already applied the inverse and recorded it"
        )),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("the job is now marked undone")
            && r.stdout.contains("the resource is as it was before")
            && !r.stdout.contains("~ "),
        "{}",
        r.stdout
    );
    assert_eq!(deletes(&proxy), 1, "the inverse was applied a second time");
    let shown = env.json(&["jobs", "show", &job]).await;
    assert_eq!(shown["status"], "undone", "{shown:#}");
    assert!(
        shown["reason"]
            .as_str()
            .is_some_and(|r| r.contains(&format!("in job {undo_id}"))),
        "{shown:#}"
    );
    let audit = env.audit().await;
    assert!(
        audit
            .iter()
            .any(|r| r["job_id"] == job.as_str() && r["outcome"] == "undone"),
        "the move is on the record"
    );
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    assert!(env.ok(&["audit", "verify"]).await.starts_with("OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_of_a_resource_already_put_back_is_recorded_without_force() {
    let env = Env::new().await;
    let (bucket, job) = applied_bucket(&env).await;
    // Put back as before the job, as an undo stopped before its first write leaves it.
    aws_sdk_s3::Client::new(&env.sdk)
        .delete_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let r = undo_run(&env, &job, &["--no-exempt"]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("the resource is as it was before"),
        "{}",
        r.stdout
    );
    assert_eq!(env.json(&["jobs", "show", &job]).await["status"], "undone");
    assert_eq!(
        env.json(&["jobs", "show", &format!("undo-{job}")]).await["status"],
        "applied"
    );
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_recomputes_the_inverse_and_refuses_a_stored_one_that_differs() {
    let env = Env::new().await;
    let (bucket, job) = applied_bucket(&env).await;
    // Another bucket, blocked: an edited job item names it in the inverse to be "put back".
    let other = env.bucket("other").await;
    block_public_access(&env.sdk, &other).await;
    let forged = serde_json::json!([{"kind": "s3:DeletePublicAccessBlock", "bucket": other}]);
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .update_item()
        .table_name(format!("{}-jobs", env.prefix))
        .key("id", AttributeValue::S(job.clone()))
        .update_expression("SET inverse = :i")
        .expression_attribute_values(":i", AttributeValue::S(forged.to_string()))
        .send()
        .await
        .unwrap();
    let r = undo_run(&env, &job, &[]).await;
    assert_ne!(r.code, 0, "{}", r.stdout);
    assert!(
        r.stderr.contains("stored inverse differs") && r.stderr.contains(&other),
        "{}",
        r.stderr
    );
    assert_eq!(public_access_block(&env.sdk, &other).await, Some([true; 4]));
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
    assert_eq!(env.json(&["jobs", "show", &job]).await["status"], "applied");
    let exemptions = env.json(&["exemptions", "list"]).await;
    assert!(exemptions.as_array().unwrap().is_empty(), "{exemptions:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_honours_the_pause_switch_and_the_allow_list() {
    let env = Env::new().await;
    let (bucket, job) = applied_bucket(&env).await;

    env.ok(&["pause", "--reason", "incident", "--by", "t"])
        .await;
    let r = undo_run(&env, &job, &[]).await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("paused"), "{}", r.stderr);
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
    env.ok(&["resume", "--by", "t"]).await;

    env.ok(&["settings", "accounts", "remove", HOME, "--by", "t"])
        .await;
    let r = undo_run(&env, &job, &[]).await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr
            .contains(&format!("account {HOME} is not in the allow-list")),
        "{}",
        r.stderr
    );
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
    assert_eq!(env.json(&["jobs", "show", &job]).await["status"], "applied");

    env.ok(&["settings", "accounts", "add", HOME, "--by", "t"])
        .await;
    let r = undo_run(&env, &job, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_exemption_an_undo_adds_ends_on_the_day_given() {
    let env = Env::new().await;
    let (bucket, job) = applied_bucket(&env).await;
    for (bad, why) in [("2020-01-01", "in the past"), ("next-week", "YYYY-MM-DD")] {
        let r = undo_run(&env, &job, &["--exempt-until", bad]).await;
        assert_eq!(r.code, 2, "{bad}: {}", r.stdout);
        assert!(
            r.stderr.contains("--exempt-until") && r.stderr.contains(why),
            "{bad}: {}",
            r.stderr
        );
    }
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
    let until = days_on(7);
    let r = undo_run(&env, &job, &["--exempt-until", &until]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains(&format!("until {until}")), "{}", r.stdout);
    let exemptions = env.json(&["exemptions", "list"]).await;
    let e = &exemptions.as_array().unwrap()[0];
    assert_eq!(e["resource_id"], bucket.as_str());
    assert_eq!(e["until"], until.as_str());
    assert_eq!(
        e["by"],
        format!("{} (label: auditor)", caller_arn(&env).await).as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_keeps_an_exemption_that_lasts_longer_and_extends_a_shorter_one() {
    let env = Env::new().await;
    let exempt = |bucket: String, until: Option<String>| {
        let env = &env;
        async move {
            let mut args = vec![
                "exemptions".to_string(),
                "add".into(),
                "--remediation".into(),
                "s3-block-public-access".into(),
                "--resource".into(),
                bucket,
                "--account".into(),
                HOME.into(),
                "--reason".into(),
                "partner bucket, CISO ok".into(),
            ];
            if let Some(u) = until {
                args.extend(["--until".into(), u]);
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            env.ok(&args).await;
        }
    };
    let exemption_of = |bucket: String| {
        let env = &env;
        async move {
            let all = env.json(&["exemptions", "list"]).await;
            all.as_array()
                .unwrap()
                .iter()
                .find(|e| e["resource_id"] == bucket.as_str())
                .cloned()
                .unwrap_or_else(|| panic!("{all:#}"))
        }
    };
    // An exemption for good, made after the fix: the undo's 30 days do not cut it short.
    let (kept, job) = applied_bucket(&env).await;
    exempt(kept.clone(), None).await;
    let r = undo_run(&env, &job, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("it is kept"), "{}", r.stdout);
    let e = exemption_of(kept.clone()).await;
    assert_eq!(e["until"], Value::Null, "{e:#}");
    assert_eq!(e["reason"], "partner bucket, CISO ok", "{e:#}");

    // One that ends sooner is extended to the undo's day.
    let (extended, job) = applied_bucket(&env).await;
    exempt(extended.clone(), Some(days_on(2))).await;
    let r = undo_run(&env, &job, &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        exemption_of(extended.clone()).await["until"],
        days_on(30).as_str()
    );
    assert!(env.ok(&["audit", "verify"]).await.starts_with("OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_undo_leaves_each_resource_exactly_as_before() {
    let env = Env::new().await;
    env.param("vpce-restrict-policy", "organization_id=o-a1b2c3d4e5")
        .await;
    env.param("iam-deactivate-stale-keys", "max_unused_days=0")
        .await;

    // S3: no Public Access Block before, none after the undo.
    let bucket = env.bucket("undo").await;
    let job = applied(
        &env,
        "s3-block-public-access",
        "s3-bucket-public-read-prohibited",
        "AWS::S3::Bucket",
        &bucket,
    )
    .await;
    undo(&env, &job).await;
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    let original = env.json(&["jobs", "show", &job]).await;
    assert_eq!(original["status"], "undone");

    // Security group: the revoked rules come back with their descriptions (under new ids).
    let (_, group) = security_group(&env.sdk).await;
    let ec2 = aws_sdk_ec2::Client::new(&env.sdk);
    use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range};
    ec2.authorize_security_group_ingress()
        .group_id(&group)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(
                    IpRange::builder()
                        .cidr_ip("0.0.0.0/0")
                        .description("vendor access")
                        .build(),
                )
                .ipv6_ranges(
                    Ipv6Range::builder()
                        .cidr_ipv6("::/0")
                        .description("vendor v6")
                        .build(),
                )
                .build(),
        )
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .ip_ranges(IpRange::builder().cidr_ip("0.0.0.0/0").build())
                .build(),
        )
        .send()
        .await
        .unwrap();
    let rules = |g: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_security_group_rules()
                .filters(
                    aws_sdk_ec2::types::Filter::builder()
                        .name("group-id")
                        .values(g)
                        .build(),
                )
                .send()
                .await
                .unwrap();
            let mut v: Vec<String> = out
                .security_group_rules()
                .iter()
                .filter(|r| r.is_egress() != Some(true))
                .map(|r| {
                    format!(
                        "{:?} {:?} {:?} {:?} {:?} {:?}",
                        r.ip_protocol(),
                        r.from_port(),
                        r.to_port(),
                        r.cidr_ipv4(),
                        r.cidr_ipv6(),
                        r.description()
                    )
                })
                .collect();
            v.sort();
            v
        }
    };
    let before = rules(group.clone()).await;
    let job = applied(
        &env,
        "sg-revoke-open-ssh",
        "restricted-ssh",
        "AWS::EC2::SecurityGroup",
        &group,
    )
    .await;
    assert_ne!(rules(group.clone()).await, before);
    undo(&env, &job).await;
    assert_eq!(rules(group.clone()).await, before);

    // IAM: the deactivated keys are active again, none deleted.
    let (user, user_id) = user_with_keys(&env.sdk, "undo-user", 1).await;
    let job = applied(
        &env,
        "iam-deactivate-stale-keys",
        "access-keys-rotated",
        "AWS::IAM::User",
        &user,
    )
    .await;
    undo(&env, &job).await;
    assert_eq!(key_statuses(&env.sdk, &user).await, ["Active"]);

    // VPC endpoint: the old policy document, byte for byte.
    let (vpc, _) = security_group(&env.sdk).await;
    let policy = "{\n  \"Statement\": [ {\"Effect\": \"Allow\", \"Principal\": \"*\", \"Action\": \"*\", \"Resource\": \"*\"} ]\n}";
    let endpoint = vpc_endpoint(&env.sdk, &vpc, policy).await;
    let job = applied(
        &env,
        "vpce-restrict-policy",
        "vpce-policy-check",
        "AWS::EC2::VPCEndpoint",
        &endpoint,
    )
    .await;
    undo(&env, &job).await;
    let out = ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(&endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(out.vpc_endpoints()[0].policy_document(), Some(policy));

    // The undo exempted the resources: a new event does not fix them again.
    env.send(&config_event(
        HOME,
        "s3-bucket-public-write-prohibited",
        "AWS::S3::Bucket",
        &bucket,
    ))
    .await;
    env.drain().await;
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    // The user, undone as named by its name, is not fixed again when Config names it by its
    // unique id.
    env.send(&config_event(
        HOME,
        "access-keys-rotated",
        "AWS::IAM::User",
        &user_id,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&user_id).await;
    assert_eq!(job["status"], "exempt", "{job:#}");
    assert_eq!(key_statuses(&env.sdk, &user).await, ["Active"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undo_refuses_to_overwrite_a_later_change_unless_forced() {
    let env = Env::new().await;
    let (_, group) = security_group(&env.sdk).await;
    open_tcp(&env.sdk, &group, 22, 22, "0.0.0.0/0").await;
    let job = applied(
        &env,
        "sg-revoke-open-ssh",
        "restricted-ssh",
        "AWS::EC2::SecurityGroup",
        &group,
    )
    .await;
    open_tcp(&env.sdk, &group, 8443, 8443, "10.0.0.0/8").await;
    let r = undo_run(&env, &job, &["--no-exempt"]).await;
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains("changed since job") && r.stderr.contains("8443"),
        "{}",
        r.stderr
    );
    assert_eq!(env.json(&["jobs", "show", &job]).await["status"], "applied");
    let r = undo_run(&env, &job, &["--force", "--no-exempt"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = r.stdout;
    // It does not claim the resource is as it was: the later rule is still there.
    assert!(
        out.contains("forced") && !out.contains("as it was before"),
        "{out}"
    );
    let undo = env.json(&["jobs", "show", &format!("undo-{job}")]).await;
    assert!(
        undo["reason"].as_str().unwrap().contains("8443"),
        "the record shows what differs: {undo:#}"
    );
    let rules = ingress(&env.sdk, &group).await;
    assert!(
        rules.contains(&("tcp".to_string(), 22, 22, "0.0.0.0/0".to_string())),
        "{rules:?}"
    );
    assert!(
        rules.contains(&("tcp".to_string(), 8443, 8443, "10.0.0.0/8".to_string())),
        "the later change stays"
    );
    let ex = env.json(&["exemptions", "list"]).await;
    assert!(
        ex.as_array().unwrap().is_empty(),
        "--no-exempt adds no exemption"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_to_s3_is_retained_and_catches_later_edits_of_the_table() {
    let env = Env::new().await;
    let chain = trail(&env).await;
    let s3 = aws_sdk_s3::Client::new(&env.sdk);
    let bucket = unique("audit-export");
    s3.create_bucket()
        .bucket(&bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap();
    let out = env
        .ok(&[
            "audit",
            "export",
            "--bucket",
            &bucket,
            "--retention-days",
            "30",
        ])
        .await;
    assert!(
        out.contains(&format!("rectify-audit/{chain}.jsonl: 4 records")),
        "{out}"
    );
    // moto answers GetObjectRetention with the object itself; HeadObject carries the lock.
    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(format!("rectify-audit/{chain}.jsonl"))
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode().unwrap().as_str(), "GOVERNANCE");
    assert!(head.object_lock_retain_until_date().is_some());
    let ok = env
        .ok(&["audit", "verify", "--export-bucket", &bucket])
        .await;
    assert!(ok.contains("OK"), "{ok}");

    // Someone rewrites a record and its hash in the table, consistently: only the export tells.
    let mut it = item(&env, &chain, 4).await;
    let mut record: Value = serde_json::from_str(it["record"].as_s().unwrap()).unwrap();
    record["outcome"] = "no-op".into();
    let parsed: rectify::audit::Record = serde_json::from_value(record.clone()).unwrap();
    record["hash"] = parsed.compute_hash().into();
    it.insert(
        "hash".into(),
        AttributeValue::S(record["hash"].as_str().unwrap().into()),
    );
    it.insert("record".into(), AttributeValue::S(record.to_string()));
    put(&env, it).await;
    let r = env
        .run(&["audit", "verify", "--export-bucket", &bucket])
        .await;
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains(&format!("{chain}-00000004: differs from its exported copy")),
        "{}",
        r.stdout
    );
}

/// A configuration file with these `[audit]` anchoring settings; its path.
fn anchoring(records: u64, seconds: u64) -> String {
    let path = std::env::temp_dir().join(format!("rectify-audit-{}.toml", unique("c")));
    std::fs::write(
        &path,
        format!("[audit]\nanchor_every_records = {records}\nanchor_every_seconds = {seconds}\n"),
    )
    .unwrap();
    path.display().to_string()
}

/// The anchors (from `audit list`) that name `chain`, as (anchor seq, anchored seq).
async fn anchors_of(env: &Env, chain: &str) -> Vec<(u64, u64)> {
    env.audit()
        .await
        .iter()
        .filter(|r| r["kind"] == "anchor" && r["after"]["chain"] == chain)
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                r["after"]["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_stopped_workers_newest_records_with_their_anchors_is_named() {
    let env = Env::new().await;
    let config = anchoring(2, 300);
    for _ in 0..4 {
        let b = env.bucket("cut").await;
        env.send(&config_event(
            HOME,
            "s3-bucket-public-read-prohibited",
            "AWS::S3::Bucket",
            &b,
        ))
        .await;
    }
    let run = env
        .run_env(
            &["worker", "--once", "--concurrency", "1"],
            &[("RECTIFY_CONFIG", &config)],
        )
        .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let audit = env.audit().await;
    let chain = audit.iter().find(|r| r["kind"] == "job").unwrap()["chain"]
        .as_str()
        .unwrap()
        .to_string();
    // Anchored after records 2 and 4, and again when the worker stopped.
    let anchors = anchors_of(&env, &chain).await;
    assert_eq!(
        anchors.iter().map(|a| a.1).collect::<Vec<_>>(),
        vec![2, 4, 4]
    );
    assert!(env.ok(&["audit", "verify"]).await.starts_with("OK"));

    // The newest record cut off, with the anchors that named it (the anchor chain's own tail):
    // every chain is intact, yet the head no longer has an anchor written after it.
    delete(&env, &chain, 4).await;
    for (anchor_seq, anchored) in anchors {
        if anchored == 4 {
            delete(&env, "anchors", anchor_seq).await;
        }
    }
    verify_fails_naming(&env, &format!("{chain}-00000003"), "not covered").await;
    let out = env.run(&["audit", "verify"]).await.stdout;
    assert!(out.contains(&format!("after {chain}-00000002")), "{out}");
    assert!(out.contains("not running"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_workers_unanchored_tail_passes_and_verify_says_so() {
    let env = Env::new().await;
    // No timed anchor within the test: the tail stays unanchored while the worker runs.
    let config = anchoring(1000, 300);
    let mut worker = env.spawn_env(
        &["worker", "--wait-seconds", "1"],
        &[("RECTIFY_CONFIG", &config)],
    );
    assert!(
        worker
            .wait_for("worker ready", Duration::from_secs(30))
            .await
    );
    env.send_bucket_event(&env.bucket("tail").await).await;
    let chain = eventually(Duration::from_secs(30), || async {
        env.audit()
            .await
            .iter()
            .find(|r| r["kind"] == "job")
            .map(|r| r["chain"].as_str().unwrap().to_string())
    })
    .await
    .expect("the worker recorded the job");
    assert!(anchors_of(&env, &chain).await.is_empty());
    let run = env.run(&["audit", "verify"]).await;
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.stdout.starts_with("OK"), "{}", run.stdout);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("note:")
            && l.contains(&format!("chain {chain}: its writer is running"))),
        "{}",
        run.stdout
    );

    // Stopped cleanly: the head is anchored, the liveness item gone, nothing left to excuse.
    worker.signal("TERM");
    assert_eq!(worker.exit(Duration::from_secs(30)).await, Some(0));
    assert_eq!(anchors_of(&env, &chain).await.len(), 1);
    let out = env.ok(&["audit", "verify"]).await;
    assert!(out.starts_with("OK") && !out.contains("note:"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newest_anchor_older_than_the_bound_fails() {
    // No operator command runs first: the hand-written anchor below takes the anchor chain's
    // first place.
    let env = Env::bare().await;
    // A well-formed anchor chain whose newest anchor was written long ago: anchors after it
    // may have been cut off.
    let mut anchor = rectify::audit::Record {
        id: "anchors-00000001".into(),
        chain: "anchors".into(),
        seq: 1,
        prev_hash: rectify::audit::GENESIS.into(),
        time: "2026-01-01T00:00:00.000Z".into(),
        kind: rectify::audit::RecordKind::Anchor,
        outcome: rectify::audit::RecordOutcome::Anchored,
        after: Some(
            serde_json::json!({"chain": "w-000000000000", "seq": 0, "hash": rectify::audit::GENESIS}),
        ),
        ..Default::default()
    };
    anchor.hash = anchor.compute_hash();
    let text = |s: &str| AttributeValue::S(s.to_string());
    put(
        &env,
        std::collections::HashMap::from([
            ("chain".to_string(), text("anchors")),
            ("seq".to_string(), AttributeValue::N("1".into())),
            ("id".to_string(), text(&anchor.id)),
            ("time".to_string(), text(&anchor.time)),
            ("outcome".to_string(), text("anchored")),
            ("hash".to_string(), text(&anchor.hash)),
            (
                "record".to_string(),
                text(&serde_json::to_string(&anchor).unwrap()),
            ),
        ]),
    )
    .await;
    verify_fails_naming(&env, "anchors-00000001", "beyond the bound of 900 s").await;
    // An operator who knows no worker ran since widens the bound.
    let out = env
        .ok(&["audit", "verify", "--max-anchor-age", "100000000"])
        .await;
    assert!(out.starts_with("OK"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_worker_anchors_within_t_seconds_without_n_records() {
    let env = Env::new().await;
    let config = anchoring(1000, 1);
    let mut worker = env.spawn_env(
        &["worker", "--wait-seconds", "1"],
        &[("RECTIFY_CONFIG", &config)],
    );
    assert!(
        worker
            .wait_for("worker ready", Duration::from_secs(30))
            .await
    );
    env.send_bucket_event(&env.bucket("timed").await).await;
    let chain = eventually(Duration::from_secs(30), || async {
        env.audit()
            .await
            .iter()
            .find(|r| r["kind"] == "job")
            .map(|r| r["chain"].as_str().unwrap().to_string())
    })
    .await
    .expect("the worker recorded the job");
    // One record, far fewer than 1000: the timer anchors it while the worker runs.
    let anchored = eventually(Duration::from_secs(10), || async {
        anchors_of(&env, &chain)
            .await
            .into_iter()
            .find(|a| a.1 >= 1)
    })
    .await;
    assert!(
        worker.child.try_wait().unwrap().is_none(),
        "the worker is still running"
    );
    assert!(anchored.is_some(), "no anchor within T seconds");
    worker.signal("TERM");
    assert_eq!(worker.exit(Duration::from_secs(30)).await, Some(0));
    assert!(env.ok(&["audit", "verify"]).await.starts_with("OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_a_before_state_is_stored_redacted_and_undo_still_restores() {
    use aws_sdk_s3::types::{Tag, Tagging};
    let env = Env::new().await;
    let bucket = env.bucket("secret").await;
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let tags = [("note", secret), ("db-password", "hunter2")]
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
        .collect::<Vec<_>>();
    aws_sdk_s3::Client::new(&env.sdk)
        .put_bucket_tagging()
        .bucket(&bucket)
        .tagging(Tagging::builder().set_tag_set(Some(tags)).build().unwrap())
        .send()
        .await
        .unwrap();
    let job = applied(
        &env,
        "s3-block-public-access",
        "s3-bucket-public-read-prohibited",
        "AWS::S3::Bucket",
        &bucket,
    )
    .await;
    let item = env.job_item(&job).await;
    for state in ["before", "after"] {
        let stored: Value = serde_json::from_str(item[state].as_s().unwrap()).unwrap();
        assert_eq!(stored["tags"]["note"], "[redacted]", "{state}: {stored}");
        assert_eq!(
            stored["tags"]["db-password"], "[redacted]",
            "{state}: {stored}"
        );
        assert_eq!(stored["bucket"], bucket.as_str(), "{state}: {stored}");
    }
    let whole = format!("{item:?}");
    assert!(
        !whole.contains(secret) && !whole.contains("hunter2"),
        "{whole}"
    );
    // Undo compares the live bucket (secrets and all) with the redacted stored states, and
    // puts it back as it was.
    undo(&env, &job).await;
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
}

/// The Python check in docs/operations.md, exactly as printed there.
fn operations_guide_check() -> String {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let doc = std::fs::read_to_string(format!("{root}/docs/operations.md")).unwrap();
    let (_, rest) = doc
        .split_once("<!-- check.py: begin -->\n```python\n")
        .expect("docs/operations.md holds the check between its markers");
    let (code, _) = rest.split_once("```\n<!-- check.py: end -->").unwrap();
    code.to_string()
}

/// Runs `check` with python3 over the export in `dir`: exit code and output.
fn run_check(check: &std::path::Path, dir: &std::path::Path) -> (i32, String) {
    let out = std::process::Command::new("python3")
        .arg(check)
        .arg(dir)
        .output()
        .expect("python3 runs");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_check_in_the_operations_guide_verifies_an_export_of_both_formats() {
    use rectify::audit::{Format, GENESIS, Record, RecordKind, RecordOutcome};
    let env = Env::new().await;
    let chain = trail(&env).await;

    // A chain begun before records carried a format and continued in format 2, as a writer
    // upgraded mid-chain leaves it; keys beyond the BMP sort differently in the two formats.
    // And a command's record in format 3, which names the identity the command ran as.
    let mut prev = GENESIS.to_string();
    for (chain, seq, format) in [
        ("w-legacy", 1, Format::LEGACY),
        ("w-legacy", 2, Format::JCS),
        ("c-identified", 1, Format::IDENTIFIED),
    ] {
        if seq == 1 {
            prev = GENESIS.to_string();
        }
        let mut r = Record {
            format,
            id: format!("{chain}-{seq:08}"),
            chain: chain.into(),
            identity: (format == Format::IDENTIFIED)
                .then(|| "arn:aws:iam::123456789012:user/caf\u{e9}".into()),
            seq,
            prev_hash: prev.clone(),
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            kind: RecordKind::Settings,
            outcome: RecordOutcome::SettingsChanged,
            actor: Some("caf\u{e9} \u{1f600}".into()),
            after: Some(
                serde_json::json!({"\u{1f600}": 1, "\u{fb33}": [true, null, -2], "a\"\n": {}}),
            ),
            ..Record::default()
        };
        r.hash = r.compute_hash();
        let text = |s: &str| AttributeValue::S(s.to_string());
        let mut it = key(chain, seq);
        for (k, v) in [
            ("id", r.id.as_str()),
            ("time", r.time.as_str()),
            ("job_id", ""),
            ("resource_id", ""),
            ("remediation", ""),
            ("outcome", r.outcome.as_str()),
            ("hash", r.hash.as_str()),
        ] {
            it.insert(k.into(), text(v));
        }
        it.insert("record".into(), text(&serde_json::to_string(&r).unwrap()));
        put(&env, it).await;
        prev = r.hash.clone();
    }
    // Their writers stopped without anchoring: the next worker adopts the chains.
    for chain in ["w-legacy", "c-identified"] {
        aws_sdk_dynamodb::Client::new(&env.sdk)
            .put_item()
            .table_name(format!("{}-settings", env.prefix))
            .item("remediation", AttributeValue::S("_writers".into()))
            .item("scope", AttributeValue::S(chain.into()))
            .item("alive_until", AttributeValue::N("1".into()))
            .send()
            .await
            .unwrap();
    }
    env.run(&["worker", "--once"]).await;
    let verified = env.ok(&["audit", "verify"]).await;
    assert!(verified.starts_with("OK"), "{verified}");

    let s3 = aws_sdk_s3::Client::new(&env.sdk);
    let bucket = unique("audit-check");
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    env.ok(&["audit", "export", "--bucket", &bucket]).await;
    let dir = std::env::temp_dir().join(unique("rectify-export"));
    std::fs::create_dir_all(&dir).unwrap();
    let listed = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix("rectify-audit/")
        .send()
        .await
        .unwrap();
    let mut lines = 0;
    for obj in listed.contents() {
        let k = obj.key().unwrap();
        let body = s3
            .get_object()
            .bucket(&bucket)
            .key(k)
            .send()
            .await
            .unwrap()
            .body
            .collect()
            .await
            .unwrap()
            .into_bytes();
        lines += body.iter().filter(|b| **b == b'\n').count();
        std::fs::write(dir.join(k.trim_start_matches("rectify-audit/")), &body).unwrap();
    }
    let legacy = std::fs::read_to_string(dir.join("w-legacy.jsonl")).unwrap();
    let legacy: Vec<&str> = legacy.lines().collect();
    assert_eq!(legacy.len(), 2, "{legacy:?}");
    assert!(!legacy[0].contains("\"format\""), "{}", legacy[0]);
    assert!(legacy[1].contains("\"format\":2"), "{}", legacy[1]);
    assert!(
        std::fs::read_to_string(dir.join(format!("{chain}.jsonl")))
            .unwrap()
            .contains("\"format\":2")
    );
    let identified = std::fs::read_to_string(dir.join("c-identified.jsonl")).unwrap();
    assert!(
        identified.contains("\"format\":3") && identified.contains("\"identity\""),
        "{identified}"
    );

    let check = dir.join("check.py.txt");
    std::fs::write(&check, operations_guide_check()).unwrap();
    let (code, out) = run_check(&check, &dir);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.trim(), format!("OK: {lines} records"));

    // An edit of a record in either format, without its hash: that record is named.
    let worker_file = dir.join(format!("{chain}.jsonl"));
    let worker_text = std::fs::read_to_string(&worker_file).unwrap();
    for (file, was, now, named) in [
        (
            dir.join("w-legacy.jsonl"),
            legacy.join("\n") + "\n",
            legacy.join("\n").replacen("settings-changed", "paused", 1) + "\n",
            "w-legacy-00000001".to_string(),
        ),
        (
            worker_file.clone(),
            worker_text.clone(),
            worker_text.replacen("\"seq\":2,", "\"seq\":2,\"x\":1,", 1),
            format!("{chain}-00000002"),
        ),
    ] {
        assert_ne!(was, now);
        std::fs::write(&file, &now).unwrap();
        let (code, out) = run_check(&check, &dir);
        assert_eq!(code, 1, "{out}");
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{named}: edited"))),
            "{out}"
        );
        std::fs::write(&file, &was).unwrap();
    }

    // A consistent rewrite of the newest record, hash and all: the anchor that named it tells.
    let mut records: Vec<String> = worker_text.lines().map(str::to_string).collect();
    let mut head: Record = serde_json::from_str(records.last().unwrap()).unwrap();
    head.outcome = RecordOutcome::Job(rectify::state::JobStatus::NoOp);
    head.hash = head.compute_hash();
    *records.last_mut().unwrap() = serde_json::to_string(&head).unwrap();
    std::fs::write(&worker_file, records.join("\n") + "\n").unwrap();
    let (code, out) = run_check(&check, &dir);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!(
            "{chain}-00000004: missing or changed, though anchors-"
        )),
        "{out}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anchor_another_writer_got_ahead_of_leaves_the_outcome_written_and_anchors_after() {
    use rectify::audit::{ANCHORS, AuditWriter, Record};
    use rectify::event::Message;
    use rectify::state::{AuditPuts, Finished, JobWrite, LockedClaim, Names, Store};
    let env = Env::new().await;
    let ddb = aws_sdk_dynamodb::Client::new(&env.sdk);
    let names = Names::new(&env.prefix);
    let store = Store::new(ddb.clone(), names.clone());
    let engine = rectify::script::hardened_engine(&rectify::script::Limits::default());
    let catalog = rectify::catalog::Catalog::load(&engine, None).unwrap();
    let r = catalog.get("s3-block-public-access").unwrap();
    let event = config_event(
        HOME,
        "s3-bucket-level-public-access-prohibited",
        "AWS::S3::Bucket",
        "anchored-late",
    );
    let Ok(Message::Findings(findings)) = rectify::event::decode(&event) else {
        panic!("the event decodes to a finding");
    };
    let mut job = rectify::reconcile::new_job(&findings[0], r, rectify::catalog::Mode::DryRun);
    let (owner, key) = ("worker-a", job.resource_key());
    let claim = store
        .claim_locked(&key, owner, &job, owner, Duration::from_secs(60), None)
        .await
        .unwrap();
    assert!(matches!(claim, LockedClaim::Won(None, None)), "{claim:?}");

    // The anchor chain so far (the commands that set the test up anchored their records).
    let anchors = || async {
        env.audit()
            .await
            .into_iter()
            .filter(|r| r["chain"] == ANCHORS)
            .collect::<Vec<Value>>()
    };
    let before = anchors().await.len();

    // This writer's record is due an anchor (one every record), prepared from the anchor
    // chain's head as it is now: empty.
    let writer = AuditWriter::new(ddb.clone(), names.audit.clone()).anchored_every(1);
    job.status = rectify::state::JobStatus::Planned;
    job.reason = Some("planned".into());
    let pending = writer.prepare(Record::for_job(&job, "worker")).await;
    let puts = AuditPuts {
        record: pending.put().unwrap(),
        anchor: pending.anchor_put().unwrap(),
    };
    assert!(puts.anchor.is_some(), "an anchor is due with the record");
    // Another writer appends to the anchor chain first, taking the place the anchor was made for.
    let other = AuditWriter::for_command(
        ddb.clone(),
        names.audit.clone(),
        "arn:aws:iam::123456789012:user/operator".into(),
    );
    other
        .append(Record::for_job(&job, "operator"))
        .await
        .unwrap();

    let written = store
        .finish_recorded(
            &job,
            owner,
            JobWrite::Whole,
            puts,
            Some((&key, owner)),
            None,
        )
        .await
        .unwrap();
    // The transaction was made again without the anchor: outcome, record and unlock written.
    assert_eq!(written, Finished::Written { anchored: false });
    pending.written(false).await;
    let stored = store
        .job(&job.id)
        .await
        .unwrap()
        .expect("the job is stored");
    assert_eq!(stored.status, rectify::state::JobStatus::Planned);
    assert!(
        store
            .lock_resource(&key, "worker-b", Duration::from_secs(60))
            .await
            .unwrap(),
        "the lock was released"
    );
    // And the record is anchored after the other writer's anchor, from the head read again.
    let anchors = anchors().await;
    assert_eq!(anchors.len(), before + 2, "{anchors:#?}");
    let named = |a: &Value| (a["after"]["chain"].clone(), a["after"]["seq"].clone());
    assert_eq!(named(&anchors[before]), (other.chain().into(), 1.into()));
    assert_eq!(
        named(&anchors[before + 1]),
        (writer.chain().into(), 1.into())
    );
    let out = env.ok(&["audit", "verify"]).await;
    assert!(out.starts_with("OK"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_whose_answer_was_lost_moves_the_head_on_and_the_next_record_follows_it() {
    use rectify::audit::{AuditWriter, Record};
    use rectify::state::Names;
    let env = Env::new().await;
    let ddb = aws_sdk_dynamodb::Client::new(&env.sdk);
    let names = Names::new(&env.prefix);
    let writer = AuditWriter::new(ddb.clone(), names.audit.clone());
    let record = |id: &str| Record {
        kind: rectify::audit::RecordKind::Job,
        job_id: Some(id.into()),
        outcome: rectify::audit::RecordOutcome::Job(rectify::state::JobStatus::Applied),
        reason: Some(format!("job {id}")),
        ..Record::default()
    };
    // The first record's transaction lands, and its answer is lost: the writer never learns
    // that it was written, and drops it.
    let pending = writer.prepare(record("lost-answer")).await;
    let put = pending.put().unwrap();
    ddb.transact_write_items()
        .transact_items(
            aws_sdk_dynamodb::types::TransactWriteItem::builder()
                .put(put)
                .build(),
        )
        .send()
        .await
        .unwrap();
    drop(pending);
    // The next record reads the chain's head again and takes the place after it, instead of
    // finding the first one's place taken.
    let next = writer.append(record("next")).await.unwrap();
    assert_eq!(next.seq, 2);
    writer.anchor().await.unwrap();
    let chain: Vec<Value> = env
        .audit()
        .await
        .into_iter()
        .filter(|r| r["chain"] == writer.chain())
        .collect();
    let jobs: Vec<_> = chain
        .iter()
        .map(|r| (r["seq"].clone(), r["job_id"].clone()))
        .collect();
    assert_eq!(
        jobs,
        [(1.into(), "lost-answer".into()), (2.into(), "next".into())]
    );
    let out = env.ok(&["audit", "verify"]).await;
    assert!(out.starts_with("OK"), "{out}");
}

/// A user with two stale keys whose job deactivated the first and failed on the second: its
/// name, its unique id, and the fault proxy the worker goes through.
async fn a_user_fixed_half_way(env: &Env) -> (String, String, FaultProxy) {
    env.enforce_on_every_active_key().await;
    let (user, user_id) = user_with_keys(&env.sdk, "halfway", 2).await;
    let proxy = FaultProxy::start(0.0, 23).await;
    // The first key's update goes through; the second's is throttled as often as the SDK tries.
    proxy
        .set(serde_json::json!({"throttle_action": "UpdateAccessKey", "throttle_skip": 1, "throttle_count": 3}))
        .await;
    env.send(&unused_credentials(&user_id)).await;
    env.drain_env(&[("AWS_ENDPOINT_URL", proxy.url.as_str())])
        .await;
    let job = env.job_for(&user_id).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let mut half = key_statuses(&env.sdk, &user).await;
    half.sort();
    assert_eq!(half, ["Active", "Inactive"], "one key was deactivated");
    (user, user_id, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_failed_half_way_goes_on_with_its_plan_and_is_undone_whole() {
    let env = Env::new().await;
    let (user, user_id, proxy) = a_user_fixed_half_way(&env).await;
    let through = [("AWS_ENDPOINT_URL", proxy.url.as_str())];

    // The retry finds one key left to deactivate: it goes on with the whole plan, from the
    // reading before the first try.
    env.drain_all_env(&through).await;
    let job = env.job_for(&user_id).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert!(
        job["reason"]
            .as_str()
            .unwrap()
            .contains("goes on with the plan of the try that applied part of it"),
        "{job:#}"
    );
    assert_eq!(
        job["plan"]["actions"].as_array().unwrap().len(),
        2,
        "{job:#}"
    );
    assert_eq!(
        key_statuses(&env.sdk, &user).await,
        ["Inactive", "Inactive"]
    );

    // Undo puts back what both tries applied.
    let id = job["id"].as_str().unwrap();
    let run = undo_run(&env, id, &["--no-exempt"]).await;
    assert!(
        run.code == 0 && run.stdout.contains("undone"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(key_statuses(&env.sdk, &user).await, ["Active", "Active"]);
    assert!(env.ok(&["audit", "verify"]).await.starts_with("OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_that_plans_afresh_after_a_half_way_try_says_its_undo_starts_from_there() {
    let env = Env::new().await;
    let (user, user_id, proxy) = a_user_fixed_half_way(&env).await;
    // In dry-run the retry does not go on with the enforced plan: it plans afresh, from the
    // user as the failed try left it.
    env.ok(&[
        "settings",
        "set",
        "iam-deactivate-stale-keys",
        "--mode",
        "dry-run",
        "--by",
        "test",
    ])
    .await;
    env.drain_all_env(&[("AWS_ENDPOINT_URL", proxy.url.as_str())])
        .await;
    let job = env.job_for(&user_id).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.contains("try 1 failed and the resource read after it differs")
            && reason.contains("as try 1 left it"),
        "{job:#}"
    );
    let mut keys = key_statuses(&env.sdk, &user).await;
    keys.sort();
    assert_eq!(keys, ["Active", "Inactive"], "dry-run changes nothing");
    // The first try's record holds what it changed.
    let first = env
        .audit()
        .await
        .into_iter()
        .find(|r| r["job_id"] == job["id"] && r["outcome"] == "failed")
        .expect("the first try's record");
    assert_ne!(first["before"], first["after"], "{first:#}");
}

/// Every item of the settings table (settings, the Organization's switches, exemptions), in
/// key order.
async fn settings_items(env: &Env) -> Vec<String> {
    let out = aws_sdk_dynamodb::Client::new(&env.sdk)
        .scan()
        .table_name(format!("{}-settings", env.prefix))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let mut items: Vec<String> = out
        .items()
        .iter()
        .map(|i| {
            format!(
                "{:?}",
                i.iter().collect::<std::collections::BTreeMap<_, _>>()
            )
        })
        .collect();
    items.sort();
    items
}

/// No change is made without its record. While the audit table refuses every request
/// (throttled past the SDK's retries), a mode change, a pause, an exemption and an approval
/// each fail with exit 3 and change nothing; once it takes writes again, each is made with its
/// record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_whose_audit_record_cannot_be_written_is_not_made() {
    let env = Env::new().await;
    env.approval("s3-block-public-access").await;
    let bucket = env.bucket("unrecorded").await;
    env.send_bucket_event(&bucket).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    let id = job["id"].as_str().unwrap().to_string();
    let (settings, recorded) = (settings_items(&env).await, env.audit().await.len());

    let proxy = FaultProxy::start(0.0, 8).await;
    let audit_table = format!("{}-audit", env.prefix);
    proxy
        .set(serde_json::json!({"throttle_table": audit_table, "throttle_count": 100_000}))
        .await;
    let via = [("AWS_ENDPOINT_URL_DYNAMODB", proxy.url.as_str())];
    let changes: [&[&str]; 4] = [
        &[
            "settings",
            "set",
            "sg-revoke-open-ssh",
            "--mode",
            "enforce",
            "--by",
            "ops",
            "--yes",
        ],
        &["pause", "--reason", "maintenance", "--by", "ops"],
        &[
            "exemptions",
            "add",
            "--remediation",
            "s3-block-public-access",
            "--resource",
            &bucket,
            "--reason",
            "owner asked",
            "--by",
            "ops",
        ],
        &["jobs", "approve", &id, "--by", "approver"],
    ];
    for args in changes {
        let r = env.run_env(args, &via).await;
        assert_eq!(
            r.code, 3,
            "rectify {args:?} with its record refused:\n{}",
            r.stderr
        );
    }
    assert_eq!(
        settings_items(&env).await,
        settings,
        "a change left off the record"
    );
    assert_eq!(env.job_for(&bucket).await["status"], "pending-approval");
    assert_eq!(
        env.audit().await.len(),
        recorded,
        "a record without its change"
    );

    proxy
        .set(serde_json::json!({"throttle_table": null, "throttle_count": 0}))
        .await;
    for args in changes {
        let r = env.run_env(args, &via).await;
        assert_eq!(r.code, 0, "rectify {args:?}:\n{}", r.stderr);
    }
    assert_ne!(settings_items(&env).await, settings);
    assert_eq!(env.job_for(&bucket).await["status"], "approved");
    let records = env.audit().await;
    let mut outcomes: Vec<&str> = records[recorded..]
        .iter()
        .filter(|r| r["kind"] != "anchor")
        .map(|r| r["outcome"].as_str().unwrap_or_default())
        .collect();
    outcomes.sort_unstable();
    assert_eq!(
        outcomes,
        ["approved", "exemption-added", "paused", "settings-changed"],
        "one record for each change"
    );

    // Who asks for a job to run again is written only with its record too.
    proxy
        .set(serde_json::json!({"throttle_table": audit_table, "throttle_count": 100_000}))
        .await;
    let retry = ["jobs", "retry", id.as_str()];
    let r = env.run_env(&retry, &via).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        !env.job_item(&id).await.contains_key("requested_by"),
        "who asked was written without its record"
    );
    proxy
        .set(serde_json::json!({"throttle_table": null, "throttle_count": 0}))
        .await;
    let r = env.run_env(&retry, &via).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(env.job_item(&id).await.contains_key("requested_by"));
    let last = env.audit().await;
    assert!(
        last.iter()
            .any(|r| r["job_id"] == id.as_str() && r["outcome"] == "retry-requested"),
        "{last:#?}"
    );
}
