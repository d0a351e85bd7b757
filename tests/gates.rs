//! The gates against moto: exemption records and tags (and their expiry), the account
//! allow-list, the pause switch and the blast-radius breaker. Each is on the record.

mod support;

use serde_json::Value;
use support::*;

/// The day `n` days from today, `YYYY-MM-DD`.
fn days_ahead(n: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::Duration::days(n))
        .format("%Y-%m-%d")
        .to_string()
}

async fn public_bucket(env: &Env) -> String {
    env.bucket("gate").await
}

/// `n` public buckets, a finding for each sent.
async fn reported_public_buckets(env: &Env, n: usize) -> Vec<String> {
    let mut buckets = Vec::new();
    for _ in 0..n {
        let b = public_bucket(env).await;
        env.send_bucket_event(&b).await;
        buckets.push(b);
    }
    buckets
}

/// The statuses of the jobs for these buckets, sorted.
async fn sorted_statuses(env: &Env, buckets: &[String]) -> Vec<String> {
    let mut statuses = Vec::new();
    for b in buckets {
        statuses.push(env.job_for(b).await["status"].as_str().unwrap().to_string());
    }
    statuses.sort();
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemption_records_hold_until_they_expire() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    let (kept, lapsed) = (public_bucket(&env).await, public_bucket(&env).await);
    env.ok(&[
        "exemptions",
        "add",
        "--remediation",
        "s3-block-public-access",
        "--resource",
        &kept,
        "--reason",
        "public website",
        "--by",
        "web-team",
        "--until",
        "2999-12-31",
    ])
    .await;
    env.ok(&[
        "exemptions",
        "add",
        "--remediation",
        "s3-block-public-access",
        "--resource",
        &lapsed,
        "--account",
        HOME,
        "--reason",
        "migration",
        "--by",
        "web-team",
        "--until",
        "2020-01-01",
    ])
    .await;
    let list = env.json(&["exemptions", "list"]).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .any(|e| e["resource_id"] == lapsed.as_str() && e["active"] == false)
    );
    env.send_bucket_event(&kept).await;
    env.send_bucket_event(&lapsed).await;
    env.drain().await;

    let job = env.job_for(&kept).await;
    assert_eq!(job["status"], "exempt", "{job:#}");
    assert!(job["reason"].as_str().unwrap().contains("web-team"));
    assert_eq!(public_access_block(&env.sdk, &kept).await, None);
    assert_eq!(
        env.job_for(&lapsed).await["status"],
        "applied",
        "an expired exemption does not count"
    );

    let removed = env
        .run(&[
            "exemptions",
            "remove",
            "--remediation",
            "s3-block-public-access",
            "--resource",
            &kept,
            "--by",
            "x",
        ])
        .await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    assert!(
        env.audit()
            .await
            .iter()
            .any(|r| r["outcome"] == "exemption-removed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exemption_tags_count_unless_switched_off_or_expired() {
    let env = Env::new().await;
    env.tag_exemptions_on().await;
    env.enforce("s3-block-public-access").await;
    let (tagged, old_tag) = (public_bucket(&env).await, public_bucket(&env).await);
    tag_exempt(
        &env.sdk,
        &tagged,
        &format!("serves the public docs site; until={}", days_ahead(30)),
    )
    .await;
    tag_exempt(&env.sdk, &old_tag, "temporary; until=2020-01-01").await;
    env.send_bucket_event(&tagged).await;
    env.send_bucket_event(&old_tag).await;
    env.drain().await;
    let job = env.job_for(&tagged).await;
    assert_eq!(job["status"], "exempt", "{job:#}");
    assert!(job["reason"].as_str().unwrap().contains("public docs site"));
    assert_eq!(env.job_for(&old_tag).await["status"], "applied");

    // Not every organisation lets resource owners exempt themselves.
    env.ok(&[
        "settings",
        "set",
        "s3-block-public-access",
        "--tag-exemptions",
        "off",
        "--by",
        "test",
    ])
    .await;
    env.ok(&[
        "jobs",
        "retry",
        env.job_for(&tagged).await["id"].as_str().unwrap(),
    ])
    .await;
    env.drain().await;
    assert_eq!(env.job_for(&tagged).await["status"], "applied");
    assert_eq!(
        public_access_block(&env.sdk, &tagged).await,
        Some([true; 4])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_outside_the_allow_list_are_never_acted_on() {
    // An allow-list of its own: empty at first.
    let env = Env::bare().await;
    env.enforce("s3-block-public-access").await;
    let out = env
        .ok(&["settings", "accounts", "add", MEMBER, "--by", "test"])
        .await;
    assert!(out.contains(MEMBER), "{out}");
    let bucket = public_bucket(&env).await;
    env.send_bucket_event(&bucket).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "account-not-allowed", "{job:#}");
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    assert_eq!(
        env.run(&["settings", "accounts", "add", "12345"])
            .await
            .code,
        2
    );
    // Emptying the list, or removing its last id, allows nothing more.
    let out = env
        .ok(&["settings", "accounts", "clear", "--by", "test"])
        .await;
    assert!(out.contains("acts in no account"), "{out}");
    env.ok(&["jobs", "retry", job["id"].as_str().unwrap()])
        .await;
    env.drain().await;
    assert_eq!(env.job_for(&bucket).await["status"], "account-not-allowed");
    env.allow(&[HOME]).await;
    env.ok(&["settings", "accounts", "remove", HOME, "--by", "test"])
        .await;
    env.ok(&["jobs", "retry", job["id"].as_str().unwrap()])
        .await;
    env.drain().await;
    assert_eq!(env.job_for(&bucket).await["status"], "account-not-allowed");
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    // Naming the account lets rectify act in it.
    env.allow(&[HOME]).await;
    env.ok(&["jobs", "retry", job["id"].as_str().unwrap()])
        .await;
    env.drain().await;
    assert_eq!(env.job_for(&bucket).await["status"], "applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organization_mode_allows_the_organizations_accounts_and_refuses_others_before_assuming_a_role()
 {
    let env = Env::bare().await;
    env.enforce("s3-block-public-access").await;
    let member = organization_with_a_member(&env).await;
    let out = env
        .ok(&["settings", "accounts", "organization", "--by", "test"])
        .await;
    assert!(out.contains("every ACTIVE account"), "{out}");

    // An account outside the Organization: refused, and nothing reaches it, not even STS.
    let outsider = "444455556666";
    let foreign = unique("foreign");
    let proxy = FaultProxy::start(0.0, 3).await;
    env.send(&config_event(
        outsider,
        "s3-bucket-level-public-access-prohibited",
        "AWS::S3::Bucket",
        &foreign,
    ))
    .await;
    env.drain_env(&[("AWS_ENDPOINT_URL", &proxy.url)]).await;
    let job = env.job_for(&foreign).await;
    assert_eq!(job["status"], "account-not-allowed", "{job:#}");
    assert_eq!(job["account"], outsider);
    let log = std::fs::read_to_string(&proxy.log).unwrap();
    assert!(
        log.contains("\"ListAccounts\""),
        "the Organization was listed: {log}"
    );
    assert!(
        !log.contains("AssumeRole"),
        "no role was assumed for a refused account: {log}"
    );

    // The home (management) account and a member created in the Organization are allowed.
    let home_bucket = public_bucket(&env).await;
    env.send_bucket_event(&home_bucket).await;
    let member_sdk = env.account(&member).await;
    let member_bucket = env.open_bucket_found(&member, "org-member").await;
    env.drain().await;
    assert_eq!(env.job_for(&home_bucket).await["status"], "applied");
    let job = env.job_for(&member_bucket).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(
        public_access_block(&member_sdk, &member_bucket).await,
        Some([true; 4])
    );

    // An account left out of the Organization's allow-list: refused, the others still allowed.
    let out = env
        .ok(&["settings", "accounts", "remove", &member, "--by", "test"])
        .await;
    assert!(out.contains(&format!("but {member}")), "{out}");
    let left_out = env.open_bucket_found(&member, "org-left-out").await;
    env.drain().await;
    assert_eq!(
        env.job_for(&left_out).await["status"],
        "account-not-allowed"
    );
    assert_eq!(public_access_block(&member_sdk, &left_out).await, None);
    env.ok(&["settings", "accounts", "organization", "--by", "test"])
        .await;

    // A closed (suspended) account is no longer ACTIVE: refused again.
    aws_sdk_organizations::Client::new(&env.sdk)
        .close_account()
        .account_id(&member)
        .send()
        .await
        .unwrap();
    let later = env.open_bucket_found(&member, "org-closed").await;
    env.drain().await;
    assert_eq!(env.job_for(&later).await["status"], "account-not-allowed");
    assert_eq!(public_access_block(&member_sdk, &later).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_every_change_and_still_plans() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    env.ok(&["pause", "--reason", "incident 42", "--by", "oncall"])
        .await;
    let bucket = public_bucket(&env).await;
    env.send_bucket_event(&bucket).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    assert!(job["reason"].as_str().unwrap().contains("incident 42"));
    assert!(
        job["plan"]["actions"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    );
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    env.ok(&["resume", "--by", "oncall"]).await;
    env.ok(&["jobs", "retry", job["id"].as_str().unwrap()])
        .await;
    env.drain().await;
    assert_eq!(env.job_for(&bucket).await["status"], "applied");
    let outcomes: Vec<Value> = env
        .audit()
        .await
        .into_iter()
        .map(|r| r["outcome"].clone())
        .collect();
    assert!(
        outcomes.contains(&Value::from("paused")) && outcomes.contains(&Value::from("resumed"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_trips_at_the_limit_plus_one() {
    let env = Env::new().await;
    env.enforce_with_breaker("s3-block-public-access", 2).await;
    let buckets = reported_public_buckets(&env, 3).await;
    let r = env.run(&["worker", "--once", "--concurrency", "1"]).await;
    assert!(
        r.stderr.contains("BREAKER TRIPPED"),
        "the trip is loud: {}",
        r.stderr
    );
    assert_eq!(
        sorted_statuses(&env, &buckets).await,
        ["applied", "applied", "pending-approval"]
    );
    let settings = env.json(&["settings", "list"]).await;
    let row = settings
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["remediation"] == "s3-block-public-access" && s["scope"] == HOME)
        .unwrap()
        .clone();
    assert_eq!(row["mode"], "approval", "{row:#}");
    assert_eq!(row["updated_by"], "rectify (blast-radius breaker)");
    assert!(
        env.audit()
            .await
            .iter()
            .any(|r| r["outcome"] == "breaker-tripped")
    );

    // The held job runs once an operator approves it; an approved plan is not counted again.
    let held = env
        .jobs()
        .await
        .into_iter()
        .find(|j| j["status"] == "pending-approval")
        .unwrap();
    env.ok(&[
        "jobs",
        "approve",
        held["id"].as_str().unwrap(),
        "--by",
        "oncall",
    ])
    .await;
    env.drain().await;
    for b in &buckets {
        assert_eq!(
            public_access_block(&env.sdk, b).await,
            Some([true; 4]),
            "{b}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_not_enforced_gives_back_what_its_claim_counted() {
    let env = Env::new().await;
    env.enforce_with_breaker("s3-block-public-access", 2).await;
    // Three findings whose buckets are fixed already: each claim counts an enforcement on the
    // breaker, and each outcome, with nothing to change, gives it back.
    let mut fixed = Vec::new();
    for _ in 0..3 {
        let b = public_bucket(&env).await;
        block_public_access(&env.sdk, &b).await;
        env.send_bucket_event(&b).await;
        fixed.push(b);
    }
    env.drain().await;
    for b in &fixed {
        assert_eq!(env.job_for(b).await["status"], "no-op", "{b}");
    }
    // So the whole limit of two is there for two fixes, and a third is held.
    let open = reported_public_buckets(&env, 3).await;
    env.run(&["worker", "--once", "--concurrency", "1"]).await;
    assert_eq!(
        sorted_statuses(&env, &open).await,
        ["applied", "applied", "pending-approval"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_counts_across_workers_and_honours_a_reset() {
    use rectify::state::{Breaker, BreakerLimit};
    let env = Env::new().await;
    let store = |_: u8| env.store();
    let (one, two) = (store(1), store(2));
    let r = "s3-block-public-access";
    let b = &BreakerLimit {
        remediation: r.to_string(),
        account: HOME.to_string(),
        limit: 3,
        window_seconds: 3600,
    };
    assert_eq!(one.breaker_admit(b).await.unwrap(), Breaker::Admitted);
    // Another worker's admission is counted by the first, whose remembered item is now stale.
    assert_eq!(two.breaker_admit(b).await.unwrap(), Breaker::Admitted);
    assert_eq!(one.breaker_admit(b).await.unwrap(), Breaker::Admitted);
    assert_eq!(two.breaker_admit(b).await.unwrap(), Breaker::Tripped(3));
    assert_eq!(one.breaker_admit(b).await.unwrap(), Breaker::Tripped(3));
    // An operator resets it from elsewhere: both workers admit again, up to the limit.
    store(3).breaker_reset(r, None).await.unwrap();
    assert_eq!(one.breaker_admit(b).await.unwrap(), Breaker::Admitted);
    assert_eq!(two.breaker_admit(b).await.unwrap(), Breaker::Admitted);
    assert_eq!(one.breaker_admit(b).await.unwrap(), Breaker::Admitted);
    assert_eq!(one.breaker_admit(b).await.unwrap(), Breaker::Tripped(3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parameter_that_breaks_its_rule_is_refused_and_a_stored_one_changes_nothing() {
    let env = Env::new().await;
    env.enforce("sg-revoke-open-ssh").await;
    // Once, a port of -5 was stored, and the script then matched no rule: SSH stayed open and
    // the job said "already compliant". Now the value is refused and nothing is stored.
    let r = env
        .run(&[
            "settings",
            "set",
            "sg-revoke-open-ssh",
            "--param",
            "port=-5",
            "--by",
            "test",
        ])
        .await;
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains("--param port") && r.stderr.contains("an integer from 1 to 65535"),
        "{}",
        r.stderr
    );
    let settings = env.json(&["settings", "list"]).await;
    let ssh = settings
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["remediation"] == "sg-revoke-open-ssh" && s["scope"] == "*")
        .unwrap()
        .clone();
    assert_eq!(ssh["params"]["port"], 22, "{ssh:#}");

    // The same value written straight into the settings table ends the job needs-parameter
    // before the group is read, and the group is left as it is.
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .update_item()
        .table_name(format!("{}-settings", env.prefix))
        .key(
            "remediation",
            aws_sdk_dynamodb::types::AttributeValue::S("sg-revoke-open-ssh".into()),
        )
        .key(
            "scope",
            aws_sdk_dynamodb::types::AttributeValue::S("*".into()),
        )
        .update_expression("SET params = :p")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S(r#"{"port": -5}"#.into()),
        )
        .condition_expression("attribute_exists(remediation)")
        .send()
        .await
        .unwrap();
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
    assert_eq!(job["status"], "needs-parameter", "{job:#}");
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.contains("port = -5 is refused")
            && reason.contains("an integer from 1 to 65535")
            && reason.contains("rectify settings set sg-revoke-open-ssh --param port=VALUE"),
        "{reason}"
    );
    assert_eq!(job["before"], Value::Null, "the group is not even read");
    assert_eq!(ingress(&env.sdk, &group).await.len(), 1, "nothing changed");
    assert!(
        env.audit()
            .await
            .iter()
            .any(|r| r["job_id"] == job["id"] && r["outcome"] == "needs-parameter"),
        "the outcome is on the record"
    );

    // A good value through the command line, then the job runs again and closes SSH.
    env.param("sg-revoke-open-ssh", "port=22").await;
    env.ok(&["jobs", "retry", job["id"].as_str().unwrap()])
        .await;
    env.drain().await;
    assert_eq!(env.job_for(&group).await["status"], "applied");
    assert!(ingress(&env.sdk, &group).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_exemption_counts_only_when_switched_on_and_for_a_near_day() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    // Off by default: the owner's tag is ignored, and the job says so.
    let tagged = public_bucket(&env).await;
    tag_exempt(
        &env.sdk,
        &tagged,
        &format!("migrating; until={}", days_ahead(5)),
    )
    .await;
    env.send_bucket_event(&tagged).await;
    env.drain().await;
    let job = env.job_for(&tagged).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert!(
        job["reason"]
            .as_str()
            .unwrap()
            .contains("rectify:exempt tag ignored: tag exemptions are off"),
        "{job:#}"
    );

    env.ok(&[
        "settings",
        "tag-exemptions",
        "on",
        "--max-days",
        "30",
        "--by",
        "test",
    ])
    .await;
    assert_eq!(
        env.run(&["settings", "tag-exemptions", "on", "--max-days", "0"])
            .await
            .code,
        2
    );
    let near = public_bucket(&env).await;
    tag_exempt(
        &env.sdk,
        &near,
        &format!("migrating; until={}", days_ahead(30)),
    )
    .await;
    let far = public_bucket(&env).await;
    tag_exempt(
        &env.sdk,
        &far,
        &format!("forever; until={}", days_ahead(31)),
    )
    .await;
    let undated = public_bucket(&env).await;
    tag_exempt(&env.sdk, &undated, "legacy site").await;
    let garbled = public_bucket(&env).await;
    tag_exempt(&env.sdk, &garbled, "until=someday").await;
    for b in [&near, &far, &undated, &garbled] {
        env.send_bucket_event(b).await;
    }
    env.drain().await;
    assert_eq!(env.job_for(&near).await["status"], "exempt");
    assert_eq!(public_access_block(&env.sdk, &near).await, None);
    for (b, why) in [
        (&far, "more than 30 days ahead"),
        (&undated, "names no until="),
        (&garbled, "is not a day"),
    ] {
        let job = env.job_for(b).await;
        assert_eq!(job["status"], "applied", "{job:#}");
        let reason = job["reason"].as_str().unwrap();
        assert!(reason.contains("rectify:exempt tag ignored"), "{reason}");
        assert!(reason.contains(why), "{reason}");
        assert_eq!(public_access_block(&env.sdk, b).await, Some([true; 4]));
    }
    // The audit trail carries the job's reason.
    assert!(env.audit().await.iter().any(|r| {
        r["resource_id"] == far.as_str()
            && r["reason"]
                .as_str()
                .is_some_and(|t| t.contains("rectify:exempt tag ignored"))
    }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_breaker_holds_only_the_account_that_crossed_its_limit() {
    let env = Env::new().await;
    env.enforce_with_breaker("s3-block-public-access", 2).await;
    // The home account has an enforce override of its own: a trip holds it all the same.
    env.ok(&[
        "settings",
        "set",
        "s3-block-public-access",
        "--account",
        HOME,
        "--mode",
        "enforce",
        "--by",
        "test",
    ])
    .await;
    let mut buckets = Vec::new();
    for _ in 0..3 {
        let b = public_bucket(&env).await;
        env.send_bucket_event(&b).await;
        buckets.push(b);
    }
    let r = env.run(&["worker", "--once", "--concurrency", "1"]).await;
    assert!(
        r.stderr.contains("BREAKER TRIPPED") && r.stderr.contains(HOME),
        "the trip is loud and names the account: {}",
        r.stderr
    );
    assert_eq!(
        sorted_statuses(&env, &buckets).await,
        ["applied", "applied", "pending-approval"]
    );
    let trip = env
        .audit()
        .await
        .into_iter()
        .find(|r| r["outcome"] == "breaker-tripped")
        .expect("the trip is on the record");
    assert_eq!(trip["account"], HOME, "{trip:#}");
    assert!(trip["reason"].as_str().unwrap().contains(HOME), "{trip:#}");
    let settings = env.json(&["settings", "list"]).await;
    let row = |scope: &str| {
        settings
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["remediation"] == "s3-block-public-access" && s["scope"] == scope)
            .unwrap()
            .clone()
    };
    assert_eq!(row(HOME)["mode"], "approval", "{settings:#}");
    assert_eq!(row("*")["mode"], "enforce", "{settings:#}");

    // The home account's next job waits for approval; the member account's is enforced.
    let next = public_bucket(&env).await;
    env.send_bucket_event(&next).await;
    let member = env.account(MEMBER).await;
    let elsewhere = unique("breaker-member");
    aws_sdk_s3::Client::new(&member)
        .create_bucket()
        .bucket(&elsewhere)
        .send()
        .await
        .unwrap();
    env.send(&config_event(
        MEMBER,
        "s3-bucket-level-public-access-prohibited",
        "AWS::S3::Bucket",
        &elsewhere,
    ))
    .await;
    env.drain().await;
    assert_eq!(env.job_for(&next).await["status"], "pending-approval");
    assert_eq!(public_access_block(&env.sdk, &next).await, None);
    assert_eq!(env.job_for(&elsewhere).await["status"], "applied");
    assert_eq!(
        public_access_block(&member, &elsewhere).await,
        Some([true; 4])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_taken_over_by_another_owner_is_known_lost_at_its_next_renewal() {
    use rectify::reconcile::lease::ResourceLease;
    use std::time::Duration;
    let env = Env::new().await;
    let store = env.store();
    let key = "123456789012/us-east-1/AWS::S3::Bucket/held";
    let lease = Duration::from_secs(6);
    let taken = std::time::Instant::now();
    let hold = ResourceLease::take(&store, key, "worker-a", lease)
        .await
        .unwrap()
        .expect("the lock is free");
    assert!(hold.holds().await);
    // Another owner takes the lock over (as after a lease that ran out): the next renewal is
    // refused, and from then on nothing may be applied under the hold.
    store.unlock_resource(key, "worker-a").await.unwrap();
    assert!(store.lock_resource(key, "worker-b", lease).await.unwrap());
    let lost = eventually(Duration::from_secs(10), || async {
        (!hold.holds().await).then(|| taken.elapsed())
    })
    .await
    .expect("the hold still claims the resource");
    // Known at the renewal (every half lease), not when the lease it had would run out.
    assert!(lost < lease, "known lost only after {lost:?}");
    hold.release().await;
    // Releasing a hold that was taken over leaves the new owner's lock in place.
    assert!(!store.lock_resource(key, "worker-c", lease).await.unwrap());

    // A lock let go meanwhile (another job took it, used it and released it) is not taken
    // again by a renewal: the hold is lost and the lock stays free.
    let key = "123456789012/us-east-1/AWS::S3::Bucket/let-go";
    let taken = std::time::Instant::now();
    let hold = ResourceLease::take(&store, key, "worker-a", lease)
        .await
        .unwrap()
        .expect("the lock is free");
    store.unlock_resource(key, "worker-a").await.unwrap();
    let lost = eventually(Duration::from_secs(10), || async {
        (!hold.holds().await).then(|| taken.elapsed())
    })
    .await
    .expect("the hold still claims the resource");
    assert!(lost < lease, "known lost only after {lost:?}");
    assert!(store.lock_resource(key, "worker-c", lease).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_named_by_its_unique_id_waits_for_a_job_holding_it_by_its_name() {
    use rectify::state::resource_key;
    let env = Env::new().await;
    env.enforce_on_every_active_key().await;
    let (user, user_id) = user_with_keys(&env.sdk, &env.prefix, 1).await;
    // A job for the user found by its name (a Security Hub finding, the sweep) holds it.
    let key = resource_key(HOME, "*", "AWS::IAM::User", &user.to_ascii_lowercase());
    env.hold(&key).await;
    // Config names the user by its unique id: the job waits for the one holding it by name.
    env.send(&unused_credentials(&user_id)).await;
    let run = env.drain().await;
    assert!(
        run.stderr.contains("another job holds this resource"),
        "{}",
        run.stderr
    );
    assert_eq!(key_statuses(&env.sdk, &user).await, ["Active"]);
    assert_eq!(env.depth(false).await, 1, "the finding comes back");
    // Once the other job let go, the finding is fixed once.
    env.let_go(&key).await;
    env.drain_all().await;
    assert_eq!(key_statuses(&env.sdk, &user).await, ["Inactive"]);
    assert_eq!(env.job_for(&user_id).await["status"], "applied");
}
