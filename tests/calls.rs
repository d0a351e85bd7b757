//! Calls per remediated finding, counted at a proxy in front of moto: every call the worker
//! makes to AWS and to its state store, by service, for findings of each of the four original
//! kinds fixed in enforce mode. A count, not a timing: the bounds hold on any machine.
//!
//! Bounds per fixed finding: at most 4 calls to the remediated service (read, apply, read back;
//! an IAM user with one key takes 5: its tags, its keys, the key's last use, the change, the
//! keys read back), and at most 2 state writes in all: the claim with the resource lock and the
//! enforcement counted on the blast-radius breaker, then the outcome with its audit record and
//! the unlock. A write of the breaker alone (made when a claim could not count) is counted
//! with them. Audit anchors (a writer's head, every few records and when it stops) are counted
//! apart: they are per writer, not per finding.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::*;

/// Findings of each kind per run: enough that what a worker does once per run (queue lookups,
/// the settings read, the member role's credentials) weighs little.
const N: usize = 8;

const STATE_WRITES: &[&str] = &[
    "PutItem",
    "UpdateItem",
    "DeleteItem",
    "TransactWriteItems",
    "BatchWriteItem",
];

/// Calls by "service action" in these log entries; anchors, and writes to the settings table
/// (the breaker), apart.
fn tally(entries: &[Value]) -> BTreeMap<String, f64> {
    let mut t = BTreeMap::new();
    for e in entries {
        let service = e["service"].as_str().unwrap_or("?");
        let action = e["action"].as_str().unwrap_or("?");
        let settings_only = e["tables"].as_array().is_some_and(|ts| {
            !ts.is_empty()
                && ts
                    .iter()
                    .all(|t| t.as_str().is_some_and(|t| t.ends_with("-settings")))
        });
        let key = if e["anchor"] == true {
            format!("{service} {action} (anchor)")
        } else if settings_only {
            format!("{service} {action} (settings)")
        } else {
            format!("{service} {action}")
        };
        *t.entry(key).or_insert(0.0) += 1.0;
    }
    t
}

/// Calls per finding of one worker run that fixed `n` findings, less what a run with nothing
/// to do makes.
fn per_finding(
    run: &BTreeMap<String, f64>,
    idle: &BTreeMap<String, f64>,
    n: usize,
) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for (k, v) in run {
        let extra = (v - idle.get(k).copied().unwrap_or(0.0)).max(0.0);
        if extra > 0.0 {
            out.insert(k.clone(), extra / n as f64);
        }
    }
    out
}

fn sum(t: &BTreeMap<String, f64>, keep: impl Fn(&str) -> bool) -> f64 {
    t.iter().filter(|(k, _)| keep(k)).map(|(_, v)| v).sum()
}

/// Runs the worker once through the proxy; the entries it logged.
async fn drain_counted(env: &Env, proxy: &FaultProxy) -> Vec<Value> {
    let from = proxy.entries().len();
    env.drain_env(&[("AWS_ENDPOINT_URL", &proxy.url)]).await;
    proxy.entries().split_off(from)
}

/// N findings of one kind: the resource ids, once each finding is on the queue.
async fn seed(env: &Env, kind: &str) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..N {
        let id = match kind {
            "s3-block-public-access" => {
                let b = env.bucket("calls").await;
                env.send_bucket_event(&b).await;
                b
            }
            "sg-revoke-open-ssh" => {
                let (_, g) = security_group(&env.sdk).await;
                open_tcp(&env.sdk, &g, 22, 22, "0.0.0.0/0").await;
                env.send(&config_event(
                    HOME,
                    "restricted-ssh",
                    "AWS::EC2::SecurityGroup",
                    &g,
                ))
                .await;
                g
            }
            "iam-deactivate-stale-keys" => {
                // Config names a user by its unique id, which rectify resolves.
                let (_, id) = user_with_keys(&env.sdk, "calls", 1).await;
                env.send(&config_event(
                    HOME,
                    "access-keys-rotated",
                    "AWS::IAM::User",
                    &id,
                ))
                .await;
                id
            }
            "vpce-restrict-policy" => {
                let (vpc, _) = security_group(&env.sdk).await;
                let policy = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
                let id = vpc_endpoint(&env.sdk, &vpc, policy).await;
                env.send(&config_event(
                    HOME,
                    "my-vpce-policy-check",
                    "AWS::EC2::VPCEndpoint",
                    &id,
                ))
                .await;
                id
            }
            other => panic!("no seed for {other}"),
        };
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_finding_costs_few_calls_to_its_service_and_two_job_and_audit_writes() {
    let env = Env::new().await;
    for r in [
        "s3-block-public-access",
        "sg-revoke-open-ssh",
        "iam-deactivate-stale-keys",
        "vpce-restrict-policy",
    ] {
        env.enforce(r).await;
    }
    env.param("vpce-restrict-policy", "organization_id=o-a1b2c3d4e5")
        .await;
    env.param("iam-deactivate-stale-keys", "max_unused_days=0")
        .await;
    // A lease longer than any run here: its renewals are a cost per minute of work, not per
    // finding.
    env.sqs()
        .set_queue_attributes()
        .queue_url(env.queue_url(false).await)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "120",
        )
        .send()
        .await
        .unwrap();
    let proxy = FaultProxy::start(0.0, 16).await;
    let idle = tally(&drain_counted(&env, &proxy).await);

    let mut report = Vec::new();
    let mut failures = Vec::new();
    for (remediation, service, bound) in [
        ("s3-block-public-access", "s3", 4.0),
        ("sg-revoke-open-ssh", "ec2", 4.0),
        // Plus one ListUsers per account and worker run, to resolve users' unique ids.
        ("iam-deactivate-stale-keys", "iam", 5.0 + 1.0 / N as f64),
        ("vpce-restrict-policy", "ec2", 4.0),
    ] {
        let ids = seed(&env, remediation).await;
        let entries = drain_counted(&env, &proxy).await;
        for id in &ids {
            let job = env.job_for(id).await;
            assert_eq!(job["status"], "applied", "{remediation}: {job:#}");
        }
        let calls = per_finding(&tally(&entries), &idle, N);
        let remediated = sum(&calls, |k| k.starts_with(&format!("{service} ")));
        let writes = sum(&calls, |k| {
            STATE_WRITES.iter().any(|w| k == format!("dynamodb {w}"))
        });
        let breaker = sum(&calls, |k| {
            STATE_WRITES
                .iter()
                .any(|w| k == format!("dynamodb {w} (settings)"))
        });
        let anchors = entries.iter().filter(|e| e["anchor"] == true).count();
        report.push(format!(
            "{remediation}: {:.2} calls per finding, {remediated:.2} to {service}, {writes:.2} job and \
             audit writes, {breaker:.2} breaker writes, {anchors} anchor calls in the run\n    {calls:?}",
            sum(&calls, |_| true)
        ));
        if remediated > bound {
            failures.push(format!(
                "{remediation}: {remediated:.2} calls to {service} per fix (at most {bound:.3})"
            ));
        }
        if writes + breaker > 2.0 {
            failures.push(format!(
                "{remediation}: {writes:.2} job and audit writes and {breaker:.2} breaker writes \
                 per fix (at most 2 in all)"
            ));
        }
        // A writer anchors every ten records and when it stops: each anchor is one read of the
        // anchor chain's head and one write.
        assert!(
            anchors <= 2 * (N / 10 + 1),
            "{remediation}: {anchors} anchor calls for {N} records"
        );
    }
    eprintln!("idle run: {idle:?}\n{}", report.join("\n"));
    assert!(failures.is_empty(), "{failures:#?}\n{}", report.join("\n"));
}
