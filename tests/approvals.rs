//! Approval mode against moto: a plan waits for an operator; an approval names the plan hash it
//! approves, and the worker applies only that plan; plans expire, are rejected, or are
//! cancelled when the resource is reported compliant; notifications reach an SNS topic.

mod support;

use serde_json::Value;
use support::*;

async fn pending_bucket(env: &Env) -> (String, String) {
    env.approval("s3-block-public-access").await;
    let bucket = env.bucket("approve").await;
    env.send_bucket_event(&bucket).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        None,
        "approval mode changed the bucket"
    );
    (bucket, job["id"].as_str().unwrap().to_string())
}

/// Asserts that `bucket`'s job is applied, under `by`'s approval when one is named, and that
/// the bucket now blocks public access.
async fn assert_applied(env: &Env, bucket: &str, by: Option<&str>) {
    let job = env.job_for(bucket).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    if let Some(by) = by {
        assert_eq!(job["approved_by"], by, "{job:#}");
    }
    assert_eq!(public_access_block(&env.sdk, bucket).await, Some([true; 4]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_plan_is_applied_once_and_only_a_pending_plan_can_be_approved() {
    let env = Env::new().await;
    let (bucket, id) = pending_bucket(&env).await;
    let shown = env.ok(&["jobs", "show", &id]).await;
    assert!(
        shown.contains("~ BlockPublicAcls: false -> true"),
        "{shown}"
    );

    let wrong = env
        .run(&[
            "jobs",
            "approve",
            &id,
            "--by",
            "alice",
            "--plan-hash",
            "0000000000000000",
        ])
        .await;
    assert_eq!(wrong.code, 2, "{}", wrong.stderr);
    env.ok(&[
        "jobs",
        "approve",
        &id,
        "--by",
        "alice",
        "--reason",
        "ticket SEC-1",
    ])
    .await;
    assert_eq!(env.job_for(&bucket).await["status"], "approved");
    env.drain().await;
    assert_applied(&env, &bucket, Some("alice")).await;
    let applied: Vec<Value> = env
        .audit()
        .await
        .into_iter()
        .filter(|r| r["job_id"] == id.as_str())
        .collect();
    let outcomes: Vec<&str> = applied
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["pending-approval", "approved", "applied"]);
    assert_eq!(
        applied[2]["actor"], "alice",
        "the approver is on the record"
    );
    // The job names its approval's record, which the worker read before applying.
    assert_eq!(
        env.job_for(&bucket).await["approved_in"],
        applied[1]["id"],
        "{:#}",
        applied[1]
    );
    // The approval names the AWS identity the command ran as, beside the label `--by` gave;
    // the worker's own records name none.
    let identity = applied[1]["identity"].as_str().unwrap_or_default();
    assert!(identity.starts_with("arn:aws:"), "{:#}", applied[1]);
    assert_eq!(applied[1]["actor"], "alice");
    assert_eq!(applied[1]["format"], 3, "{:#}", applied[1]);
    assert!(applied[2].get("identity").is_none(), "{:#}", applied[2]);
    let shown = env
        .ok(&["audit", "show", applied[1]["id"].as_str().unwrap()])
        .await;
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("as ") && l.ends_with(identity)),
        "{shown}"
    );
    let why = applied[1]["reason"].as_str().unwrap();
    assert!(
        why.contains("ticket SEC-1"),
        "the approver's reason too: {why}"
    );

    let again = env.run(&["jobs", "approve", &id, "--by", "alice"]).await;
    assert_eq!(again.code, 2);
    assert!(
        again.stderr.contains("not pending-approval"),
        "{}",
        again.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_that_changed_since_approval_is_not_applied_without_a_new_approval() {
    let env = Env::new().await;
    env.approval("sg-revoke-open-ssh").await;
    let (_, group) = security_group(&env.sdk).await;
    open_tcp(&env.sdk, &group, 22, 22, "0.0.0.0/0").await;
    env.send(&config_event(
        HOME,
        "restricted-ssh",
        "AWS::EC2::SecurityGroup",
        &group,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&group).await;
    assert_eq!(job["status"], "pending-approval");
    let id = job["id"].as_str().unwrap().to_string();
    env.ok(&["jobs", "approve", &id, "--by", "alice"]).await;

    // Someone opens another port range covering 22 before the worker runs the approval.
    open_tcp(&env.sdk, &group, 20, 30, "0.0.0.0/0").await;
    env.drain().await;
    let job = env.job_for(&group).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    assert!(
        job["reason"]
            .as_str()
            .unwrap()
            .contains("changed since approval"),
        "{job:#}"
    );
    assert_eq!(
        ingress(&env.sdk, &group).await.len(),
        2,
        "nothing may be applied"
    );

    env.ok(&["jobs", "approve", &id, "--by", "bob"]).await;
    env.drain().await;
    let job = env.job_for(&group).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["approved_by"], "bob");
    assert!(ingress(&env.sdk, &group).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_and_expired_plans_are_never_applied() {
    let env = Env::new().await;
    let (bucket, id) = pending_bucket(&env).await;
    let r = env
        .run(&[
            "jobs",
            "reject",
            &id,
            "--by",
            "carol",
            "--reason",
            "owner says this bucket is a public website",
        ])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "rejected");
    assert!(job["reason"].as_str().unwrap().contains("public website"));
    assert_eq!(
        env.run(&["jobs", "approve", &id, "--by", "alice"])
            .await
            .code,
        2
    );

    // With a TTL of 0 every pending plan has already expired: approving it fails and marks it.
    let (bucket, id) = pending_bucket(&env).await;
    let r = env
        .run(&[
            "jobs",
            "approve",
            &id,
            "--by",
            "alice",
            "--approval-ttl-seconds",
            "0",
        ])
        .await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("expired"), "{}", r.stderr);
    assert_eq!(env.job_for(&bucket).await["status"], "expired");
    env.drain().await;
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);

    // The worker expires a pending plan when it sees its finding again.
    let (bucket, _) = pending_bucket(&env).await;
    let job = env.job_for(&bucket).await;
    let event = bucket_event(&bucket);
    // The same evaluation again: same job.
    let mut v: Value = serde_json::from_str(&event).unwrap();
    v["detail"]["newEvaluationResult"]["evaluationResultIdentifier"]["orderingTimestamp"] =
        Value::String(job["observation"].as_str().unwrap().to_string());
    env.send(&v.to_string()).await;
    let r = env
        .run(&["worker", "--once", "--approval-ttl-seconds", "0"])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(env.job_for(&bucket).await["status"], "expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compliant_finding_cancels_the_pending_plan() {
    let env = Env::new().await;
    let (bucket, _) = pending_bucket(&env).await;
    // The resource really is fixed: the job is cancelled only once a re-read shows it.
    block_public_access(&env.sdk, &bucket).await;
    let detail = config_detail(
        HOME,
        "s3-bucket-level-public-access-prohibited",
        "AWS::S3::Bucket",
        &bucket,
        "NOT_APPLICABLE",
    );
    env.send(&detail.to_string()).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    assert!(job["reason"].as_str().unwrap().contains("NOT_APPLICABLE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_reach_the_topic_with_the_command_to_act() {
    let env = Env::new().await;
    let (topic, inbox) = notification_inbox(&env).await;

    env.approval("s3-block-public-access").await;
    let bucket = env.bucket("notify").await;
    env.send_bucket_event(&bucket).await;
    let r = env
        .run(&["worker", "--once", "--notify-topic-arn", &topic])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = env.job_for(&bucket).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(&["jobs", "approve", &id, "--by", "alice"]).await;
    let r = env
        .run(&["worker", "--once", "--notify-topic-arn", &topic])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);

    let events = notifications(&env, &inbox).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["pending-approval", "applied"], "{events:#?}");
    let pending = &events[0];
    assert_eq!(pending["job_id"], id.as_str());
    assert_eq!(pending["resource_id"], bucket.as_str());
    assert!(
        pending["command"]
            .as_str()
            .unwrap()
            .contains(&format!("rectify jobs approve {id}"))
    );
    assert!(
        pending["plan_summary"][0]
            .as_str()
            .unwrap()
            .contains(&bucket)
    );
}

/// Sets one attribute of a job item by hand, as someone with write access to the jobs table
/// (not rectify) would.
async fn write_job_attribute(env: &Env, id: &str, name: &str, value: &str) {
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .update_item()
        .table_name(format!("{}-jobs", env.prefix))
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", name)
        .expression_attribute_values(
            ":v",
            aws_sdk_dynamodb::types::AttributeValue::S(value.into()),
        )
        .condition_expression("attribute_exists(id)")
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_written_into_the_jobs_table_by_hand_is_not_applied() {
    let env = Env::new().await;
    let (bucket, id) = pending_bucket(&env).await;
    let job = env.job_for(&bucket).await;
    let hash = job["plan_hash"].as_str().unwrap().to_string();
    let trail = env.audit().await;
    let chain_of = |wanted: &dyn Fn(&Value) -> bool| {
        trail
            .iter()
            .find(|r| wanted(r))
            .and_then(|r| r["chain"].as_str().map(str::to_string))
            .unwrap()
    };
    // The chain of the worker's own records, which record this job's plan.
    let worker_chain = chain_of(&|r| r["job_id"] == id.as_str());
    // The chain of the command that set the mode: an operator's, but it approves nothing.
    let command_chain = chain_of(&|r| r["outcome"] == "settings-changed");
    for (named, paused, why) in [
        (None, false, "names no audit record of its approval"),
        (Some(worker_chain.as_str()), false, "is no command's"),
        (
            Some(command_chain.as_str()),
            false,
            "holds no record of mallory approving plan",
        ),
        // Checked before the pause: the forged approval is not kept for after a resume.
        (Some(worker_chain.as_str()), true, "is no command's"),
    ] {
        if paused {
            env.ok(&["pause", "--reason", "incident", "--by", "ops"])
                .await;
        }
        // Everything `jobs approve` writes to the job, written by hand, and the job queued to
        // run again: the worker would run the plan under that approval.
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for (name, value) in [
            ("approved_by", "mallory"),
            ("approved_at", now.as_str()),
            ("approved_plan_hash", hash.as_str()),
            ("status", "approved"),
        ] {
            write_job_attribute(&env, &id, name, value).await;
        }
        if let Some(chain) = named {
            write_job_attribute(&env, &id, "approved_in", chain).await;
        }
        env.ok(&["jobs", "retry", &id]).await;
        env.drain().await;
        assert_eq!(
            public_access_block(&env.sdk, &bucket).await,
            None,
            "an approval not on the record changed the bucket"
        );
        let job = env.job_for(&bucket).await;
        assert_eq!(job["status"], "pending-approval", "{job:#}");
        let reason = job["reason"].as_str().unwrap();
        assert!(
            reason.contains("approval by mallory not on the record") && reason.contains(why),
            "{reason}"
        );
        assert_eq!(job["approved_by"], Value::Null, "{job:#}");
        let last = env
            .audit()
            .await
            .into_iter()
            .rfind(|r| r["job_id"] == id.as_str())
            .unwrap();
        assert_eq!(last["outcome"], "pending-approval", "{last:#}");
        assert_eq!(last["actor"], "worker", "{last:#}");
        if paused {
            env.ok(&["resume", "--by", "ops"]).await;
        }
    }

    // An approval made with rectify is on the record, and runs.
    env.ok(&["jobs", "approve", &id, "--by", "alice"]).await;
    env.drain().await;
    assert_applied(&env, &bucket, Some("alice")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_is_refused_when_the_stored_plan_does_not_hash_to_the_stored_hash() {
    let env = Env::new().await;
    let (bucket, id) = pending_bucket(&env).await;
    let job = env.json(&["jobs", "show", &id]).await;
    let hash = job["plan_hash"].as_str().unwrap().to_string();
    // The stored plan is edited to look harmless (it now names another bucket) and its hash is
    // left as it was: what `jobs show` prints is no longer what the hash binds.
    let mut plan = job["plan"].clone();
    plan["actions"][0]["bucket"] = Value::String(format!("{bucket}-elsewhere"));
    write_job_attribute(&env, &id, "plan", &plan.to_string()).await;
    let shown = env.ok(&["jobs", "show", &id]).await;
    assert!(shown.contains(&format!("{bucket}-elsewhere")), "{shown}");

    for args in [
        vec!["jobs", "approve", &id, "--by", "alice"],
        vec![
            "jobs",
            "approve",
            &id,
            "--by",
            "alice",
            "--plan-hash",
            &hash,
        ],
    ] {
        let r = env.run(&args).await;
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stderr
                .contains("stored plan does not hash to its stored plan hash")
                && r.stderr.contains(&hash),
            "{}",
            r.stderr
        );
    }
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    assert_eq!(job["approved_by"], Value::Null);
    env.drain().await;
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        None,
        "nothing may be applied"
    );
    assert!(
        !env.audit()
            .await
            .iter()
            .any(|r| r["job_id"] == id.as_str() && r["outcome"] == "approved"),
        "no approval on the record"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_not_executed_within_the_ttl_expires_and_changes_nothing() {
    let env = Env::new().await;
    let (bucket, id) = pending_bucket(&env).await;
    env.ok(&["jobs", "approve", &id, "--by", "alice"]).await;
    assert_eq!(env.job_for(&bucket).await["status"], "approved");
    // The approval was given two days ago (the default TTL is one day), and the worker meets it
    // only now, for example after a pause or an outage.
    let two_days_ago = (chrono::Utc::now() - chrono::Duration::days(2))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    write_job_attribute(&env, &id, "approved_at", &two_days_ago).await;
    env.drain().await;

    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "approval-expired", "{job:#}");
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.contains("approved by alice")
            && reason.contains(&two_days_ago)
            && reason.contains("86400 s")
            && reason.contains(&format!("rectify jobs retry {id}")),
        "{reason}"
    );
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        None,
        "an expired approval is never executed"
    );
    let outcomes: Vec<String> = env
        .audit()
        .await
        .into_iter()
        .filter(|r| r["job_id"] == id.as_str())
        .map(|r| r["outcome"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        outcomes,
        ["pending-approval", "approved", "approval-expired"],
        "the expiry is on the record"
    );
    // The operator sees it, and plans it again for a new approval.
    let listed = env
        .ok(&["jobs", "list", "--status", "approval-expired"])
        .await;
    assert!(listed.contains(&id), "{listed}");
    env.ok(&["jobs", "retry", &id]).await;
    env.drain().await;
    assert_eq!(env.job_for(&bucket).await["status"], "pending-approval");
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    // Who asked for the retry is on the record, before what came of it.
    let outcomes: Vec<(String, String)> = env
        .audit()
        .await
        .into_iter()
        .filter(|r| r["job_id"] == id.as_str())
        .map(|r| {
            (
                r["outcome"].as_str().unwrap().to_string(),
                r["actor"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let me = caller_arn(&env).await;
    assert_eq!(
        outcomes[3..],
        [
            ("retry-requested".to_string(), me),
            ("pending-approval".to_string(), "worker".to_string())
        ],
        "{outcomes:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approvals_travel_on_the_control_queue_and_the_event_queue_refuses_control_messages() {
    let env = Env::new().await;
    let (bucket, id) = pending_bucket(&env).await;
    // Whoever may send events cannot run a job: a control message on the event queue is
    // poison, and the job stays where it was.
    let forged = format!(r#"{{"rectify": {{"action": "run-job", "job_id": "{id}"}}}}"#);
    env.send(&forged).await;
    // Nor does a finding belong on the control queue.
    let control_url = env.url_of("control").await;
    let misplaced = bucket_event(&bucket);
    env.sqs()
        .send_message()
        .queue_url(&control_url)
        .message_body(&misplaced)
        .send()
        .await
        .unwrap();
    env.drain().await;
    assert_eq!(env.depth(false).await, 0);
    assert_eq!(env.depth_of("control").await, 0);
    let dlq = env.json(&["dlq", "list"]).await;
    let reason_of = |body: &str| {
        dlq.as_array()
            .unwrap()
            .iter()
            .find(|m| m["body"] == body)
            .unwrap_or_else(|| panic!("not in the DLQ: {body}\n{dlq:#}"))["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        reason_of(&forged).contains("control messages are not accepted on the event queue"),
        "{dlq:#}"
    );
    assert!(
        reason_of(&misplaced).contains("only rectify control messages are accepted"),
        "{dlq:#}"
    );
    assert_eq!(env.job_for(&bucket).await["status"], "pending-approval");
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);

    // An approval is queued on the control queue, and the worker acts on it.
    env.ok(&["jobs", "approve", &id, "--by", "alice"]).await;
    assert_eq!(env.depth_of("control").await, 1);
    assert_eq!(env.depth(false).await, 0);
    // Were that message lost (or dead-lettered, which is never put back on the control
    // queue), `jobs retry` queues the approved job again.
    let lost = env
        .sqs()
        .receive_message()
        .queue_url(&control_url)
        .send()
        .await
        .unwrap();
    let lost = &lost.messages()[0];
    assert!(lost.body().unwrap().contains(&id));
    env.sqs()
        .delete_message()
        .queue_url(&control_url)
        .receipt_handle(lost.receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(env.depth_of("control").await, 0);
    assert_eq!(env.job_for(&bucket).await["status"], "approved");
    env.ok(&["jobs", "retry", &id]).await;
    assert_eq!(env.depth_of("control").await, 1);
    env.drain().await;
    assert_eq!(env.depth_of("control").await, 0);
    assert_applied(&env, &bucket, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_compliant_event_cancels_nothing_while_the_resource_still_needs_its_fix() {
    let env = Env::new().await;
    let (bucket, _) = pending_bucket(&env).await;
    let compliant = || {
        config_detail(
            HOME,
            "s3-bucket-level-public-access-prohibited",
            "AWS::S3::Bucket",
            &bucket,
            "COMPLIANT",
        )
        .to_string()
    };
    // The bucket is still public: the event lies.
    env.send(&compliant()).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    let kept = env
        .audit()
        .await
        .into_iter()
        .find(|r| {
            r["job_id"] == job["id"]
                && r["reason"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("kept: "))
        })
        .expect("the audit says why the job was kept");
    let why = kept["reason"].as_str().unwrap();
    assert!(why.contains("COMPLIANT"), "{why}");
    assert!(why.contains("still needs"), "{why}");
    // Approved, it stays approved too.
    let id = job["id"].as_str().unwrap().to_string();
    env.ok(&[
        "pause",
        "--reason",
        "hold the approved plan",
        "--by",
        "oncall",
    ])
    .await;
    env.ok(&["jobs", "approve", &id, "--by", "alice"]).await;
    env.drain().await;
    assert_eq!(env.job_for(&bucket).await["status"], "approved");
    env.send(&compliant()).await;
    env.drain().await;
    assert_eq!(env.job_for(&bucket).await["status"], "approved");

    // Once the bucket really is fixed, the same event cancels it.
    block_public_access(&env.sdk, &bucket).await;
    env.send(&compliant()).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    assert!(job["reason"].as_str().unwrap().contains("COMPLIANT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exempt_outcome_is_notified_like_a_pending_approval() {
    let env = Env::new().await;
    let (topic, inbox) = notification_inbox(&env).await;
    env.tag_exemptions_on().await;
    env.enforce("s3-block-public-access").await;
    let bucket = env.bucket("exempt-notify").await;
    let until = chrono::Utc::now().date_naive() + chrono::Duration::days(10);
    tag_exempt(&env.sdk, &bucket, &format!("campaign site; until={until}")).await;
    env.send_bucket_event(&bucket).await;
    let r = env
        .run(&["worker", "--once", "--notify-topic-arn", &topic])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "exempt", "{job:#}");
    let events = notifications(&env, &inbox).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = &events[0];
    assert_eq!(e["event"], "exempt");
    assert_eq!(e["job_id"], job["id"]);
    assert_eq!(e["resource_id"], bucket.as_str());
    assert!(
        e["reason"].as_str().unwrap().contains("campaign site"),
        "{e:#}"
    );
    assert!(
        e["command"]
            .as_str()
            .unwrap()
            .contains("rectify settings tag-exemptions off"),
        "{e:#}"
    );
}

/// Accepts HTTP POSTs on `listener` (as SNS delivers to an `http` subscriber) and sends each
/// body on `tx`.
async fn collect_posts(
    listener: tokio::net::TcpListener,
    tx: tokio::sync::mpsc::UnboundedSender<String>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    while let Ok((mut socket, _)) = listener.accept().await {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let body = loop {
            let n = socket.read(&mut chunk).await.unwrap_or(0);
            if n == 0 {
                break None;
            }
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).into_owned();
            let Some(end) = text.find("\r\n\r\n") else {
                continue;
            };
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                break Some(String::from_utf8_lossy(&buf[end + 4..end + 4 + length]).into_owned());
            }
        };
        let _ = socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        if let Some(body) = body {
            let _ = tx.send(body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_get_a_plain_text_and_queues_the_json_object() {
    let env = Env::new().await;
    let (topic, inbox) = notification_inbox(&env).await;
    // An `http` subscriber has no key of its own in the message: it gets the text email gets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(collect_posts(listener, tx));
    aws_sdk_sns::Client::new(&env.sdk)
        .subscribe()
        .topic_arn(&topic)
        .protocol("http")
        .endpoint(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();

    env.approval("s3-block-public-access").await;
    let bucket = env.bucket("readable").await;
    env.send_bucket_event(&bucket).await;
    let r = env
        .run(&["worker", "--once", "--notify-topic-arn", &topic])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let id = env.job_for(&bucket).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let post = tokio::time::timeout(std::time::Duration::from_secs(30), rx.recv())
        .await
        .expect("no notification reached the http subscriber within 30 s")
        .unwrap();
    server.abort();
    let envelope: Value = serde_json::from_str(&post).unwrap();
    let text = envelope["Message"].as_str().unwrap();
    assert!(
        text.starts_with("s3-block-public-access planned a fix that waits for a person"),
        "{text}"
    );
    assert!(
        text.contains(&format!("AWS::S3::Bucket {bucket}")),
        "{text}"
    );
    assert!(
        text.contains(&format!("  rectify jobs approve {id} --by NAME\n")),
        "{text}"
    );
    assert!(serde_json::from_str::<Value>(text).is_err(), "{text}");

    let events = notifications(&env, &inbox).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["event"], "pending-approval");
    assert_eq!(events[0]["job_id"], id.as_str());
}

/// Credentials of another principal of the home account (an assumed role, as a second operator
/// would have), as the environment variables the CLI reads.
async fn other_operator(env: &Env, session: &str) -> (String, Vec<(&'static str, String)>) {
    let creds = aws_sdk_sts::Client::new(&env.sdk)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{HOME}:role/approver"))
        .role_session_name(session)
        .send()
        .await
        .unwrap();
    let c = creds.credentials().unwrap();
    let arn = creds.assumed_role_user().unwrap().arn().to_string();
    (
        arn,
        vec![
            ("AWS_ACCESS_KEY_ID", c.access_key_id().to_string()),
            ("AWS_SECRET_ACCESS_KEY", c.secret_access_key().to_string()),
            ("AWS_SESSION_TOKEN", c.session_token().to_string()),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_approver_must_differ_whoever_set_the_mode_cannot_approve_and_another_can() {
    let env = Env::new().await;
    // The mode is set by the tests' own identity (no --by: the caller's AWS identity is recorded).
    env.ok(&[
        "settings",
        "set",
        "s3-block-public-access",
        "--mode",
        "approval",
    ])
    .await;
    let me = caller_arn(&env).await;
    let bucket = env.bucket("four-eyes").await;
    env.send_bucket_event(&bucket).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    let id = job["id"].as_str().unwrap().to_string();

    // Off (the default), the setter may approve: switch it on first, and check both paths.
    env.ok(&["settings", "approver-must-differ", "on"]).await;
    for args in [
        &["jobs", "approve", id.as_str()][..],
        &[
            "jobs",
            "approve",
            "--remediation",
            "s3-block-public-access",
            "--yes",
        ],
        // A --by label does not change who the caller is.
        &["jobs", "approve", id.as_str(), "--by", "someone-else"],
    ] {
        let refused = env.run(args).await;
        assert_eq!(
            refused.code, 1,
            "{args:?}: {}{}",
            refused.stdout, refused.stderr
        );
        assert!(
            refused.stderr.contains("approver must differ") && refused.stderr.contains(&me),
            "{args:?}: {}",
            refused.stderr
        );
    }
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    assert!(job["approved_by"].is_null(), "{job:#}");

    // Another principal approves.
    let (other, creds) = other_operator(&env, "second-operator").await;
    assert_ne!(other, me);
    let creds: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ok = env.run_env(&["jobs", "approve", &id], &creds).await;
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "approved", "{job:#}");
    assert_eq!(job["approved_by"], other.as_str(), "{job:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_approver_must_differ_whoever_requested_the_job_cannot_approve_it() {
    let env = Env::new().await;
    // A dry run plans the fix; the tests' own identity sets nothing.
    let bucket = env.bucket("requested").await;
    env.send_bucket_event(&bucket).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    let id = job["id"].as_str().unwrap().to_string();

    // Another operator moves the remediation to approval and switches the rule on.
    let (setter, creds) = other_operator(&env, "mode-setter").await;
    let setter_env: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [
        &[
            "settings",
            "set",
            "s3-block-public-access",
            "--mode",
            "approval",
        ][..],
        &["settings", "approver-must-differ", "on"],
    ] {
        let r = env.run_env(args, &setter_env).await;
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    }

    // The tests' identity asks for the job to run again: it is recorded as the requester.
    env.ok(&["jobs", "retry", &id]).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    let me = caller_arn(&env).await;
    assert_eq!(job["requested_by"], me.as_str(), "{job:#}");

    let refused = env.run(&["jobs", "approve", &id]).await;
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    assert!(
        refused.stderr.contains("requested the job") && refused.stderr.contains(&me),
        "{}",
        refused.stderr
    );
    // Neither may the mode's setter; a third operator may.
    let refused = env.run_env(&["jobs", "approve", &id], &setter_env).await;
    assert_eq!(refused.code, 1, "{}{}", refused.stdout, refused.stderr);
    let (third, creds) = other_operator(&env, "third-operator").await;
    assert!(third != me && third != setter);
    let third_env: Vec<(&str, &str)> = creds.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ok = env.run_env(&["jobs", "approve", &id], &third_env).await;
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert_eq!(env.job_for(&bucket).await["approved_by"], third.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compliant_finding_by_unique_id_cancels_the_plan_pending_for_the_user_by_name() {
    let env = Env::new().await;
    env.approval("iam-deactivate-stale-keys").await;
    env.param("iam-deactivate-stale-keys", "max_unused_days=0")
        .await;
    let (user, user_id) = user_with_keys(&env.sdk, &env.prefix, 1).await;
    let finding = |id: &str, compliance: &str| {
        config_detail(
            HOME,
            "iam-user-unused-credentials-check",
            "AWS::IAM::User",
            id,
            compliance,
        )
        .to_string()
    };
    // A finding that names the user by name waits for approval.
    env.send(&finding(&user, "NON_COMPLIANT")).await;
    env.drain().await;
    assert_eq!(env.job_for(&user).await["status"], "pending-approval");
    // The key is deactivated by hand, and Config reports the user compliant by its unique id.
    let (key, _) = access_keys(&env.sdk, &user).await.remove(0);
    aws_sdk_iam::Client::new(&env.sdk)
        .update_access_key()
        .user_name(&user)
        .access_key_id(key)
        .status(aws_sdk_iam::types::StatusType::Inactive)
        .send()
        .await
        .unwrap();
    env.send(&finding(&user_id, "COMPLIANT")).await;
    env.drain().await;
    let job = env.job_for(&user).await;
    assert_eq!(job["status"], "cancelled", "{job:#}");
    assert!(job["reason"].as_str().unwrap().contains("COMPLIANT"));
}
