//! Reliability against moto behind a fault-injecting proxy: AWS errors and throttling, a state
//! store that goes away and comes back, a flood of poison messages, graceful shutdown, and a
//! worker killed with SIGKILL mid-remediation. Every finding converges and no change reaches
//! AWS twice (the proxy logs every mutating call that reached moto).

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::*;

/// A bucket and a group with two world-open SSH rules, per index.
async fn seed(env: &Env, n: usize) -> (Vec<String>, Vec<String>) {
    let (mut buckets, mut groups) = (Vec::new(), Vec::new());
    for i in 0..n {
        let b = env.bucket("fault").await;
        env.send_bucket_event(&b).await;
        buckets.push(b);
        if i % 2 == 0 {
            let (_, g) = security_group(&env.sdk).await;
            for cidr in ["0.0.0.0/0", "10.0.0.0/8"] {
                open_tcp(&env.sdk, &g, 22, 22, cidr).await;
            }
            open_tcp(&env.sdk, &g, 0, 100, "0.0.0.0/0").await;
            env.send(&config_event(
                HOME,
                "restricted-ssh",
                "AWS::EC2::SecurityGroup",
                &g,
            ))
            .await;
            groups.push(g);
        }
    }
    (buckets, groups)
}

/// Every resource is fixed, the queue is empty, and no mutating call reached moto twice.
async fn assert_converged_once(
    env: &Env,
    proxy: &FaultProxy,
    buckets: &[String],
    groups: &[String],
) {
    for b in buckets {
        assert_eq!(
            public_access_block(&env.sdk, b).await,
            Some([true; 4]),
            "{b} not fixed"
        );
    }
    for g in groups {
        assert_eq!(
            ingress(&env.sdk, g).await,
            vec![("tcp".to_string(), 22, 22, "10.0.0.0/8".to_string())],
            "{g}"
        );
    }
    assert_eq!(env.depth(false).await, 0, "messages left on the queue");
    let dlq = env.json(&["dlq", "list"]).await;
    assert!(
        dlq.as_array().unwrap().is_empty(),
        "valid findings in the DLQ: {dlq:#}"
    );
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for call in proxy.mutating_calls() {
        let key = match call["action"].as_str().unwrap() {
            "PutPublicAccessBlock" => format!("pab {}", call["path"].as_str().unwrap()),
            "RevokeSecurityGroupIngress" => {
                let body = call["body"].as_str().unwrap();
                let rule = body
                    .split('&')
                    .find(|kv| kv.starts_with("SecurityGroupRuleId"))
                    .unwrap_or(body);
                format!("revoke {rule}")
            }
            other => format!("{other} {}", call["body"]),
        };
        *counts.entry(key).or_default() += 1;
    }
    let twice: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "applied more than once: {twice:#?}");
    assert_eq!(
        counts.len(),
        buckets.len() + 2 * groups.len(),
        "{counts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_twenty_percent_injected_faults_every_finding_converges_and_nothing_is_applied_twice() {
    let env = Env::new().await;
    for r in ["s3-block-public-access", "sg-revoke-open-ssh"] {
        env.enforce(r).await;
    }
    let (buckets, groups) = seed(&env, 6).await;
    let proxy = FaultProxy::start(0.2, 20261122).await;
    let runs = env
        .drain_all_env(&[("AWS_ENDPOINT_URL", &proxy.url), ("RECTIFY_METRICS", "emf")])
        .await;
    assert_converged_once(&env, &proxy, &buckets, &groups).await;
    // One job metric for each job record in the audit trail, however often a message was
    // retried on the way.
    let ended: Vec<serde_json::Value> = runs
        .iter()
        .flat_map(|r| r.stdout.lines())
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["Jobs"] == 1.0)
        .collect();
    let recorded = env.audit().await;
    let recorded: Vec<_> = recorded.iter().filter(|r| r["kind"] == "job").collect();
    assert_eq!(ended.len(), recorded.len(), "{ended:#?}\n{recorded:#?}");
}

/// An endpoint that stops answering in the middle of a fix, first the remediated service's,
/// then the state store's: each call held is given up after the call timeout and retried, and
/// every finding converges once. Without a timeout the worker would wait on it for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_never_answers_is_given_up_and_retried_and_every_finding_converges_once() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    let proxy = FaultProxy::start(0.0, 5).await;
    let mut buckets = Vec::new();
    for (held, action) in ["PutPublicAccessBlock", "TransactWriteItems"]
        .into_iter()
        .enumerate()
    {
        let b = env.bucket("hang").await;
        env.send_bucket_event(&b).await;
        buckets.push(b);
        proxy
            .set(serde_json::json!({"hang_action": action, "hang_count": 1}))
            .await;
        let through_proxy = [
            ("AWS_ENDPOINT_URL", proxy.url.as_str()),
            ("RECTIFY_CALL_TIMEOUT", "2s"),
        ];
        let drained = env.drain_all_env(&through_proxy);
        tokio::time::timeout(Duration::from_secs(150), drained)
            .await
            .unwrap_or_else(|_| panic!("the worker still waits on a {action} that never answers"));
        let state = proxy.set(serde_json::json!({})).await;
        assert_eq!(state["hang_count"], 0, "no {action} was held: {state}");
        assert_eq!(
            state["hangs_abandoned"],
            held + 1,
            "the held {action} was not given up: {state}"
        );
    }
    assert_converged_once(&env, &proxy, &buckets, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_state_store_down_nothing_changes_no_message_is_taken_and_work_resumes() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    let proxy = FaultProxy::start(0.0, 1).await;
    proxy.set(serde_json::json!({"down": true})).await;
    let bucket = env.bucket("store-down").await;
    env.send_bucket_event(&bucket).await;
    let mut worker = env.spawn_env(
        &["worker", "--wait-seconds", "1"],
        &[("AWS_ENDPOINT_URL_DYNAMODB", &proxy.url)],
    );
    assert!(
        worker
            .wait_for("not taking messages", Duration::from_secs(60))
            .await,
        "{:#?}",
        worker.log
    );
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    // The message comes back after its visibility timeout and then stays where it is.
    let visible = eventually(Duration::from_secs(30), || async {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let out = env
            .sqs()
            .get_queue_attributes()
            .queue_url(env.queue_url(false).await)
            .attribute_names(A::All)
            .send()
            .await
            .unwrap();
        let a = out.attributes().unwrap();
        (a[&A::ApproximateNumberOfMessages] == "1"
            && a[&A::ApproximateNumberOfMessagesNotVisible] == "0")
            .then_some(())
    })
    .await;
    assert!(
        visible.is_some(),
        "the message did not come back to the queue"
    );
    let url = env.queue_url(false).await;
    let peek = env
        .sqs()
        .receive_message()
        .queue_url(&url)
        .visibility_timeout(0)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .send()
        .await
        .unwrap();
    let receives: u32 = peek.messages()[0].attributes().unwrap()
        [&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount]
        .parse()
        .unwrap();
    assert!(
        receives <= 2,
        "the worker kept taking the message while the store was down: {receives} receives"
    );

    proxy.set(serde_json::json!({"down": false})).await;
    assert!(
        worker
            .wait_for("state store reachable again", Duration::from_secs(60))
            .await,
        "{:#?}",
        worker.log
    );
    let fixed = eventually(Duration::from_secs(60), || async {
        public_access_block(&env.sdk, &bucket).await
    })
    .await;
    assert_eq!(fixed, Some([true; 4]));
    worker.signal("TERM");
    assert_eq!(worker.exit(Duration::from_secs(40)).await, Some(0));
}

/// Bodies that must all end in the DLQ, each with a reason.
fn poison(count: usize, seed: u64) -> Vec<String> {
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let valid = config_event(
        HOME,
        "restricted-ssh",
        "AWS::EC2::SecurityGroup",
        "sg-0123456789abcdef0",
    );
    (0..count)
        .map(|i| match i % 8 {
            0 => (0..=(next() % 200)).map(|_| char::from_u32((next() % 0x24F) as u32 + 0x20).unwrap_or('?')).collect(),
            1 => valid[..=(next() as usize % (valid.len() - 1))].to_string(),
            2 => serde_json::json!({"detail-type": "Config Rules Compliance Change", "detail": {"n": next()}}).to_string(),
            3 => format!("{{\"pad\": \"{}\"}}", "x".repeat(255 * 1024 + (next() % 512) as usize)),
            4 => format!("{}{}", "[".repeat(200 + (next() % 100) as usize), "]".repeat(200)),
            5 => valid.replace("sg-0123456789abcdef0", "sg-\\\"; DROP TABLE jobs; --"),
            6 => valid.replace("sg-0123456789abcdef0", "../../../etc/passwd"),
            _ => valid
                .replace("\"awsRegion\":\"us-east-1\"", "\"awsRegion\":\"us-east-1\\nX-Injected: 1\"")
                .replace("\"awsAccountId\":\"123456789012\"", "\"awsAccountId\":\"arn:aws-cn:iam::123456789012:root\""),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_flood_ends_in_the_dlq_with_reasons_and_valid_findings_are_fixed() {
    let count: usize = std::env::var("RECTIFY_POISON_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let env = Env::new().await;
    // Many fixes in a minute: lift the blast-radius breaker, or it rightly holds them.
    env.enforce_with_breaker("s3-block-public-access", 100000)
        .await;
    let bodies = poison(count, 0x5eed_1234);
    let mut buckets = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        env.send(body).await;
        if i % 10 == 0 {
            let b = env.bucket("flood").await;
            env.send_bucket_event(&b).await;
            buckets.push(b);
        }
    }
    env.drain_all().await;
    for b in &buckets {
        assert_eq!(
            public_access_block(&env.sdk, b).await,
            Some([true; 4]),
            "{b}"
        );
    }
    let dlq = env.json(&["dlq", "list"]).await;
    let dlq = dlq.as_array().unwrap();
    let missing: Vec<(usize, usize)> = bodies
        .iter()
        .enumerate()
        .filter(|(_, b)| !dlq.iter().any(|m| m["body"].as_str() == Some(b.as_str())))
        .map(|(i, b)| (i, b.len()))
        .collect();
    assert!(
        missing.is_empty(),
        "not in the DLQ (index, length): {missing:?}"
    );
    assert_eq!(dlq.len(), count, "every bad body is in the DLQ once");
    let no_reason: Vec<&Value> = dlq
        .iter()
        .filter(|m| m["reason"].as_str().unwrap().contains("moved by SQS"))
        .collect();
    assert!(
        no_reason.is_empty(),
        "dead-lettered without a reason: {}",
        no_reason.len()
    );
    let jobs = env.jobs().await;
    assert_eq!(jobs.len(), buckets.len(), "no job was made from a bad body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_work_in_flight_finish_and_a_second_signal_exits_at_once() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    let proxy = FaultProxy::start(0.0, 2).await;
    // Every call to AWS takes 300 ms, so a job is surely in flight when the signal comes.
    proxy
        .set(serde_json::json!({"delay_only": true, "delay_ms": 300}))
        .await;
    let bucket = env.bucket("graceful").await;
    env.send_bucket_event(&bucket).await;
    let mut worker = env.spawn_env(
        &["worker", "--wait-seconds", "1"],
        &[("AWS_ENDPOINT_URL", &proxy.url)],
    );
    let in_flight = eventually(Duration::from_secs(60), || async {
        let jobs = env.jobs().await;
        jobs.iter()
            .any(|j| j["resource_id"] == bucket.as_str())
            .then_some(())
    })
    .await;
    assert!(in_flight.is_some(), "{:#?}", worker.log);
    worker.signal("TERM");
    assert_eq!(
        worker.exit(Duration::from_secs(40)).await,
        Some(0),
        "{:#?}",
        worker.log
    );
    assert_eq!(
        env.job_for(&bucket).await["status"],
        "applied",
        "the job in flight finished"
    );
    assert_eq!(env.depth(false).await, 0, "its message was deleted");

    // A second signal does not wait.
    let other = env.bucket("impatient").await;
    env.send_bucket_event(&other).await;
    let mut worker = env.spawn_env(
        &["worker", "--wait-seconds", "1"],
        &[("AWS_ENDPOINT_URL", &proxy.url)],
    );
    let started = eventually(Duration::from_secs(60), || async {
        env.jobs()
            .await
            .iter()
            .any(|j| j["resource_id"] == other.as_str())
            .then_some(())
    })
    .await;
    assert!(started.is_some());
    worker.signal("TERM");
    assert!(worker.wait_for("stopping", Duration::from_secs(10)).await);
    worker.signal("TERM");
    assert_eq!(worker.exit(Duration::from_secs(10)).await, Some(130));
    // The unfinished job converges on the next run.
    proxy.set(serde_json::json!({"delay_only": false})).await;
    env.drain_all_env(&[("AWS_ENDPOINT_URL", &proxy.url)]).await;
    assert_eq!(public_access_block(&env.sdk, &other).await, Some([true; 4]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_mid_remediation_with_sigkill_every_finding_converges_once() {
    let kills: usize = std::env::var("RECTIFY_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    let env = Env::new().await;
    // Many fixes in a minute: lift the blast-radius breaker, or it rightly holds them.
    for r in ["s3-block-public-access", "sg-revoke-open-ssh"] {
        env.enforce_with_breaker(r, 100000).await;
    }
    let (buckets, groups) = seed(&env, (kills * 2).clamp(8, 60)).await;
    let proxy = FaultProxy::start(0.0, 3).await;
    // Slow calls widen the windows between a change and its record, where a kill hurts most.
    proxy
        .set(serde_json::json!({"delay_only": true, "delay_ms": 40}))
        .await;
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut killed_after = Vec::new();
    for _ in 0..kills {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let after = Duration::from_millis(300 + seed % 1500);
        let mut worker = env.spawn_env(
            &["worker", "--wait-seconds", "1"],
            &[("AWS_ENDPOINT_URL", &proxy.url)],
        );
        // The kill comes at a random moment: waiting for that moment is the point.
        tokio::time::sleep(after).await;
        worker.signal("KILL");
        assert_eq!(
            worker.exit(Duration::from_secs(10)).await,
            None,
            "killed by a signal"
        );
        killed_after.push(after.as_millis());
    }
    proxy.set(serde_json::json!({"delay_only": false})).await;
    env.drain_all_env(&[("AWS_ENDPOINT_URL", &proxy.url)]).await;
    // A message received five times by killed workers is moved to the DLQ by SQS, as configured:
    // nothing is lost, and an operator redrives it.
    let dead = env
        .json(&["dlq", "list"])
        .await
        .as_array()
        .map_or(0, Vec::len);
    if dead > 0 {
        env.ok(&["dlq", "redrive"]).await;
        env.drain_all_env(&[("AWS_ENDPOINT_URL", &proxy.url)]).await;
    }
    assert_converged_once(&env, &proxy, &buckets, &groups).await;
    let applied = env
        .audit()
        .await
        .iter()
        .filter(|r| r["outcome"] == "applied")
        .count();
    println!(
        "kills: {kills} (after ms {killed_after:?}); findings: {}; applied records: {applied}; mutating calls: {}; forwarded calls: {}; redriven from the DLQ: {dead}",
        buckets.len() + groups.len(),
        proxy.mutating_calls().len(),
        proxy.forwarded()
    );
    // A killed worker's records since its last anchor (at most T seconds of them) are anchored
    // by a later worker once its liveness has run out: wait for that, and run one.
    let settings = format!("{}-settings", env.prefix);
    let ddb = aws_sdk_dynamodb::Client::new(&env.sdk);
    let lapsed = eventually(Duration::from_secs(60), || async {
        let out = ddb
            .query()
            .table_name(&settings)
            .key_condition_expression("remediation = :w")
            .expression_attribute_values(
                ":w",
                aws_sdk_dynamodb::types::AttributeValue::S("_writers".into()),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        let now = chrono::Utc::now().timestamp();
        out.items()
            .iter()
            .all(|i| i["alive_until"].as_n().unwrap().parse::<i64>().unwrap() < now)
            .then_some(())
    })
    .await;
    assert!(lapsed.is_some(), "killed workers' liveness did not run out");
    env.drain().await;
    assert!(env.ok(&["audit", "verify"]).await.starts_with("OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_keeps_its_message_hidden_and_the_dlq_can_be_redriven() {
    let env = Env::new().await;
    env.enforce("sg-revoke-open-ssh").await;
    let proxy = FaultProxy::start(0.0, 4).await;
    // Every call takes 900 ms: the job runs far longer than the queue's 3 s visibility timeout,
    // long enough for its lock and its lease to be renewed (every 1.5 s, two calls) before it
    // ends.
    proxy
        .set(serde_json::json!({"delay_only": true, "delay_ms": 900}))
        .await;
    let (_, group) = security_group(&env.sdk).await;
    for port in [22, 2222] {
        open_tcp(&env.sdk, &group, port - 22, port, "0.0.0.0/0").await;
    }
    env.send(&config_event(
        HOME,
        "restricted-ssh",
        "AWS::EC2::SecurityGroup",
        &group,
    ))
    .await;
    let started = std::time::Instant::now();
    let r = env
        .run_env(
            &["worker", "--once", "--concurrency", "4"],
            &[
                ("AWS_ENDPOINT_URL", &proxy.url),
                (
                    "RECTIFY_LOG",
                    "info,rectify::source::poll=debug,rectify::reconcile::lease=debug,aws_config=warn",
                ),
            ],
        )
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        started.elapsed() > Duration::from_secs(4),
        "the job was not long enough to test anything"
    );
    assert!(
        r.stderr.contains("message visibility extended"),
        "{}",
        r.stderr
    );
    // The resource lock and the job's own lease outlive the visibility timeout too.
    for renewed in ["resource lock renewed", "job lease renewed"] {
        assert!(
            r.stderr.contains(renewed),
            "{renewed} missing: {}",
            r.stderr
        );
    }
    assert!(
        !r.stderr.contains("lease is no longer this worker's")
            && !r.stderr.contains("was taken over")
            && !r.stderr.contains("nothing more is applied"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("another job holds") && !r.stderr.contains("held by another worker"),
        "{}",
        r.stderr
    );
    let job = env.job_for(&group).await;
    assert_eq!(job["status"], "applied");
    assert_eq!(job["attempts"], 1);
    assert_eq!(env.depth(false).await, 0);

    // dlq redrive moves a message back to the queue, and only the one named.
    env.send("not an event").await;
    env.send("not an event either").await;
    env.drain().await;
    let dlq = env.json(&["dlq", "list"]).await;
    assert_eq!(dlq.as_array().unwrap().len(), 2);
    let id = dlq[0]["id"].as_str().unwrap().to_string();
    let out = env.ok(&["dlq", "redrive", "--id", &id]).await;
    assert!(out.contains("1 message(s) moved"), "{out}");
    assert_eq!(env.depth(false).await, 1);
    assert_eq!(
        env.run(&["dlq", "redrive", "--id", "no-such-message"])
            .await
            .code,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefix_never_bootstrapped_is_named_with_the_command_that_creates_it() {
    let env = Env::new().await;
    let fresh = unique("nobs");
    for args in [
        &["settings", "list"][..],
        &[
            "settings",
            "set",
            "s3-block-public-access",
            "--mode",
            "enforce",
            "--by",
            "t",
        ],
        &["jobs", "list"],
        &["jobs", "show", "j-1"],
        &["sweep"],
        &["audit", "verify"],
        &["worker", "--once"],
        &["dlq", "list"],
    ] {
        let r = env.run_env(args, &[("RECTIFY_PREFIX", &fresh)]).await;
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(&format!("table {fresh}-jobs"))
                && r.stderr.contains(&format!("queue {fresh}-events"))
                && r.stderr
                    .contains(&format!("run `rectify bootstrap --prefix {fresh}`")),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            !r.stderr.contains("ResourceNotFoundException"),
            "{args:?}: {}",
            r.stderr
        );
    }
    // The bootstrapped prefix is unaffected.
    env.ok(&["jobs", "list"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_tells_an_unreachable_state_store_from_a_trail_that_does_not_verify() {
    let env = Env::new().await;
    let proxy = FaultProxy::start(0.0, 1).await;
    proxy.set(serde_json::json!({"down": true})).await;
    let r = env
        .run_env(
            &["audit", "verify"],
            &[("AWS_ENDPOINT_URL_DYNAMODB", &proxy.url)],
        )
        .await;
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("could not reach AWS") && r.stderr.contains("run it again"),
        "{}",
        r.stderr
    );
    let r = env.run(&["audit", "verify"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
}
