//! The sweep against moto: violations no event announced are found in a member account;
//! `--what-if` changes and records nothing and counts what enforcing would change.

mod support;

use serde_json::Value;
use support::*;

/// An account no other test uses: the sweep enumerates everything in it.
const SWEPT: &str = "333344445555";

/// Allows `account` and makes `n` new buckets there (public: no Public Access Block): the
/// account's SDK configuration and the buckets.
async fn open_buckets(
    env: &Env,
    account: &str,
    prefix: &str,
    n: usize,
) -> (aws_config::SdkConfig, Vec<String>) {
    env.allow(&[account]).await;
    let member = env.account(account).await;
    let s3 = aws_sdk_s3::Client::new(&member);
    let mut open = Vec::new();
    for _ in 0..n {
        let b = unique(prefix);
        s3.create_bucket().bucket(&b).send().await.unwrap();
        open.push(b);
    }
    (member, open)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_finds_what_no_event_announced_and_what_if_changes_nothing() {
    let env = Env::new().await;
    let (member, open) = open_buckets(&env, SWEPT, "swept", 2).await;
    let s3 = aws_sdk_s3::Client::new(&member);
    let closed = unique("swept-ok");
    s3.create_bucket().bucket(&closed).send().await.unwrap();
    block_public_access(&member, &closed).await;
    env.enforce("s3-block-public-access").await;

    let report = env
        .json(&[
            "sweep",
            "--what-if",
            "--account",
            SWEPT,
            "--remediation",
            "s3-block-public-access",
        ])
        .await;
    let line = &report.as_array().unwrap()[0];
    assert_eq!(line["account"], SWEPT);
    let which: Vec<&str> = line["would_change"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["resource_id"].as_str().unwrap())
        .collect();
    for b in &open {
        assert!(which.contains(&b.as_str()), "{b} missing from {line:#}");
        assert_eq!(
            public_access_block(&member, b).await,
            None,
            "--what-if changed {b}"
        );
    }
    assert!(!which.contains(&closed.as_str()));
    assert!(line["scanned"].as_u64().unwrap() >= 3);
    assert!(env.jobs().await.is_empty(), "--what-if records nothing");

    let text = env
        .ok(&[
            "sweep",
            "--what-if",
            "--account",
            SWEPT,
            "--remediation",
            "s3-block-public-access",
        ])
        .await;
    assert!(
        text.contains("what-if") && text.contains(&open[0]),
        "{text}"
    );

    let report = env
        .json(&[
            "sweep",
            "--account",
            SWEPT,
            "--remediation",
            "s3-block-public-access",
        ])
        .await;
    assert_eq!(
        report[0]["outcomes"]["applied"],
        Value::from(open.len()),
        "{report:#}"
    );
    let arn = caller_arn(&env).await;
    let trail = env.audit().await;
    for b in &open {
        assert_eq!(public_access_block(&member, b).await, Some([true; 4]));
        let job = env.job_for(b).await;
        assert_eq!(job["source"], "sweep");
        // The sweep's records name the AWS identity it ran as.
        let record = trail
            .iter()
            .find(|r| r["job_id"] == job["id"] && r["outcome"] == "applied")
            .unwrap();
        assert_eq!(record["identity"], arn.as_str(), "{record:#}");
    }
}

/// An account of its own, so the gates' report covers only what this test made.
const GATED: &str = "444455556666";

fn ids<'a>(line: &'a Value, key: &str) -> Vec<&'a str> {
    line[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["resource_id"].as_str().unwrap())
        .collect()
}

fn held<'a>(line: &'a Value, id: &str) -> Option<&'a str> {
    line["held"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["resource_id"] == id)
        .map(|h| h["status"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_if_goes_through_the_gates_and_reports_what_they_hold_back() {
    let env = Env::new().await;
    env.allow(&[GATED]).await;
    env.tag_exemptions_on().await;
    let member = env.account(GATED).await;
    let s3 = aws_sdk_s3::Client::new(&member);
    let (recorded, tagged, open) = (unique("gated"), unique("gated"), unique("gated"));
    for b in [&recorded, &tagged, &open] {
        s3.create_bucket().bucket(b).send().await.unwrap();
    }
    let until = chrono::Utc::now().date_naive() + chrono::Duration::days(30);
    tag_exempt(&member, &tagged, &format!("legacy site; until={until}")).await;
    env.ok(&[
        "exemptions",
        "add",
        "--remediation",
        "s3-block-public-access",
        "--resource",
        &recorded,
        "--account",
        GATED,
        "--reason",
        "owner migrates it",
    ])
    .await;
    let what_if = async || {
        let report = env
            .json(&[
                "sweep",
                "--what-if",
                "--account",
                GATED,
                "--remediation",
                "s3-block-public-access",
                // Buckets are listed where they live: these are all in us-east-1.
                "--region",
                "us-east-1",
                "--region",
                "eu-west-1",
            ])
            .await;
        let lines = report.as_array().unwrap();
        assert_eq!(lines.len(), 2, "{report:#}");
        let elsewhere = lines.iter().find(|l| l["region"] == "eu-west-1").unwrap();
        assert_eq!(elsewhere["scanned"], 0, "{report:#}");
        lines
            .iter()
            .find(|l| l["region"] == "us-east-1")
            .unwrap()
            .clone()
    };

    let line = what_if().await;
    assert_eq!(ids(&line, "would_change"), [open.as_str()], "{line:#}");
    assert_eq!(held(&line, &recorded), Some("exempt"), "{line:#}");
    assert_eq!(held(&line, &tagged), Some("exempt"), "{line:#}");
    assert_eq!(line["would_change"][0]["actions"], 1);

    env.ok(&[
        "settings",
        "set",
        "s3-block-public-access",
        "--mode",
        "off",
        "--account",
        GATED,
    ])
    .await;
    let line = what_if().await;
    assert!(ids(&line, "would_change").is_empty(), "{line:#}");
    for b in [&recorded, &tagged, &open] {
        assert_eq!(held(&line, b), Some("off"), "{line:#}");
    }

    env.ok(&["settings", "accounts", "remove", GATED]).await;
    let line = what_if().await;
    assert!(ids(&line, "would_change").is_empty(), "{line:#}");
    assert_eq!(held(&line, &open), Some("account-not-allowed"), "{line:#}");

    // A real sweep records nothing for what the gates hold back.
    env.ok(&[
        "sweep",
        "--account",
        GATED,
        "--remediation",
        "s3-block-public-access",
    ])
    .await;
    assert!(env.jobs().await.is_empty());
    assert_eq!(public_access_block(&member, &open).await, None);

    let bad = env
        .run(&[
            "sweep",
            "--what-if",
            "--account",
            GATED,
            "--region",
            "us-esat-1",
        ])
        .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("unknown region"), "{}", bad.stderr);
}

/// The lines of a JSON sweep report, by account.
fn accounts_of(report: &Value) -> std::collections::BTreeSet<String> {
    report
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["account"].as_str().unwrap().to_string())
        .collect()
}

/// What `sweep --all-accounts --what-if` reports for the S3 remediation.
async fn what_if_everywhere(env: &Env) -> Value {
    env.json(&[
        "sweep",
        "--all-accounts",
        "--what-if",
        "--remediation",
        "s3-block-public-access",
    ])
    .await
}

fn line_of<'a>(report: &'a Value, account: &str, region: &str) -> &'a Value {
    report
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["account"] == account && l["region"] == region)
        .unwrap_or_else(|| panic!("no line for {account} {region}: {report:#}"))
}

/// Accounts of their own: two with buckets, one whose role does not trust rectify.
const FLEET: [&str; 3] = ["555566667777", "555566668888", "555566669999"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_accounts_sweeps_the_allow_list_and_an_account_that_fails_does_not_stop_the_rest() {
    let env = Env::bare().await;
    let args = [
        "sweep",
        "--all-accounts",
        "--what-if",
        "--remediation",
        "s3-block-public-access",
        "--json",
    ];
    // An empty allow-list allows no account: nothing to sweep, and it says so.
    let empty = env.run(&args).await;
    assert_eq!(empty.code, 1, "{}", empty.stderr);
    assert!(
        empty.stderr.contains("--all-accounts") && empty.stderr.contains("allow-list is empty"),
        "{}",
        empty.stderr
    );

    env.allow(&FLEET).await;
    let mut seeded = Vec::new();
    for account in &FLEET[..2] {
        let s3 = aws_sdk_s3::Client::new(&env.account(account).await);
        let b = unique("fleet");
        s3.create_bucket().bucket(&b).send().await.unwrap();
        seeded.push((*account, b));
    }
    let proxy = FaultProxy::start(0.0, 16).await;
    proxy
        .set(serde_json::json!({"deny_assume_role": [FLEET[2]]}))
        .await;
    let run = env
        .run_env(&args, &[("AWS_ENDPOINT_URL", &proxy.url)])
        .await;
    assert_eq!(run.code, 1, "an account failed: {}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    assert_eq!(
        accounts_of(&report),
        FLEET.iter().map(|a| (*a).to_string()).collect(),
        "{report:#}"
    );
    for (account, bucket) in &seeded {
        let line = line_of(&report, account, REGION);
        assert_eq!(ids(line, "would_change"), [bucket.as_str()], "{line:#}");
        assert!(line["errors"].as_array().unwrap().is_empty(), "{line:#}");
    }
    let denied = line_of(&report, FLEET[2], REGION);
    assert_eq!(denied["scanned"], 0, "{denied:#}");
    assert_eq!(denied["errors"][0]["resource_id"], "*", "{denied:#}");
    assert!(
        denied["errors"][0]["error"]
            .as_str()
            .unwrap()
            .contains("AccessDenied"),
        "{denied:#}"
    );
    assert!(
        run.stderr.contains("1 account(s) could not be swept")
            && run.stderr.contains(&format!("  {}: ", FLEET[2])),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_accounts_in_organization_mode_sweeps_the_organizations_active_accounts() {
    let env = Env::bare().await;
    let member = organization_with_a_member(&env).await;
    let org = aws_sdk_organizations::Client::new(&env.sdk);
    let bucket = unique("org");
    aws_sdk_s3::Client::new(&env.account(&member).await)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    env.ok(&["settings", "accounts", "organization", "--by", "test"])
        .await;
    let active: std::collections::BTreeSet<String> = org
        .list_accounts()
        .send()
        .await
        .unwrap()
        .accounts()
        .iter()
        .filter(|a| a.state() == Some(&aws_sdk_organizations::types::AccountState::Active))
        .filter_map(|a| a.id().map(str::to_string))
        .collect();
    assert!(active.contains(&member), "{active:?}");

    let report = what_if_everywhere(&env).await;
    assert_eq!(accounts_of(&report), active, "{report:#}");
    let line = line_of(&report, &member, REGION);
    assert!(
        ids(line, "would_change").contains(&bucket.as_str()),
        "{line:#}"
    );

    // An account left out of the allow-list is not swept.
    env.ok(&["settings", "accounts", "remove", &member, "--by", "test"])
        .await;
    let report = what_if_everywhere(&env).await;
    let mut rest = active.clone();
    rest.remove(&member);
    assert_eq!(accounts_of(&report), rest, "{report:#}");
}

/// An account of its own, with a group open to SSH in two regions.
const REGIONAL: &str = "555566660000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_regions_sweeps_every_region_the_account_has_enabled() {
    let env = Env::bare().await;
    env.allow(&[REGIONAL]).await;
    let member = env.account(REGIONAL).await;
    let mut groups = Vec::new();
    for region in ["us-east-1", "eu-west-1"] {
        let sdk = member
            .to_builder()
            .region(aws_config::Region::new(region))
            .build();
        let (_, group) = security_group(&sdk).await;
        open_tcp(&sdk, &group, 22, 22, "0.0.0.0/0").await;
        groups.push((region, group));
    }
    let enabled: std::collections::BTreeSet<String> = aws_sdk_ec2::Client::new(&member)
        .describe_regions()
        .send()
        .await
        .unwrap()
        .regions()
        .iter()
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    assert!(enabled.len() > 2, "{enabled:?}");

    let report = env
        .json(&[
            "sweep",
            "--account",
            REGIONAL,
            "--all-regions",
            "--what-if",
            "--remediation",
            "sg-revoke-open-ssh",
        ])
        .await;
    let lines = report.as_array().unwrap();
    let swept: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|l| l["region"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(swept, enabled, "{report:#}");
    assert_eq!(lines.len(), enabled.len(), "each region once: {report:#}");
    // The home region comes first.
    assert_eq!(lines[0]["region"], REGION, "{report:#}");
    for (region, group) in &groups {
        let line = line_of(&report, REGIONAL, region);
        assert_eq!(ids(line, "would_change"), [group.as_str()], "{line:#}");
    }

    let bad = env
        .run(&[
            "sweep",
            "--all-regions",
            "--region",
            "us-east-1",
            "--what-if",
        ])
        .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--all-regions"), "{}", bad.stderr);
}

/// An account of its own for the throttling test.
const THROTTLED: &str = "555566661111";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_enumeration_backs_off_and_the_sweep_completes() {
    let env = Env::bare().await;
    env.allow(&[THROTTLED]).await;
    let bucket = unique("throttled");
    aws_sdk_s3::Client::new(&env.account(THROTTLED).await)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let proxy = FaultProxy::start(0.0, 17).await;
    // More throttles than the SDK's own three attempts absorb.
    proxy
        .set(serde_json::json!({"throttle_action": "ListBuckets", "throttle_count": 5}))
        .await;
    let run = env
        .run_env(
            &[
                "sweep",
                "--account",
                THROTTLED,
                "--what-if",
                "--remediation",
                "s3-block-public-access",
                "--json",
            ],
            &[("AWS_ENDPOINT_URL", &proxy.url)],
        )
        .await;
    let state = proxy.set(serde_json::json!({})).await;
    assert_eq!(
        state["throttle_count"], 0,
        "every throttle was met: {state}"
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("backing off"), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    let line = line_of(&report, THROTTLED, REGION);
    assert_eq!(ids(line, "would_change"), [bucket.as_str()], "{line:#}");
    assert!(line["errors"].as_array().unwrap().is_empty(), "{line:#}");
}

/// Accounts of their own for the bound: each with one bucket.
const BOUNDED: [&str; 4] = [
    "555566662221",
    "555566662222",
    "555566662223",
    "555566662224",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_swept_concurrently_within_the_bound() {
    let env = Env::bare().await;
    env.allow(&BOUNDED).await;
    for account in BOUNDED {
        aws_sdk_s3::Client::new(&env.account(account).await)
            .create_bucket()
            .bucket(unique("bounded"))
            .send()
            .await
            .unwrap();
    }
    let proxy = FaultProxy::start(0.0, 18).await;
    // Every call takes 100 ms, so calls that can overlap do; each account's enumeration is one
    // ListBuckets, so at most as many are in flight at once as enumerations run at once.
    proxy
        .set(serde_json::json!({"delay_only": true, "delay_ms": 100}))
        .await;
    let most_at_once = async |concurrency: &str| {
        proxy
            .set(serde_json::json!({"in_flight_max": 0, "in_flight_action": "ListBuckets"}))
            .await;
        let run = env
            .run_env(
                &[
                    "sweep",
                    "--all-accounts",
                    "--what-if",
                    "--remediation",
                    "s3-block-public-access",
                    "--concurrency",
                    concurrency,
                    "--json",
                ],
                &[("AWS_ENDPOINT_URL", &proxy.url)],
            )
            .await;
        assert_eq!(run.code, 0, "{}", run.stderr);
        let report: Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
        assert_eq!(accounts_of(&report).len(), BOUNDED.len(), "{report:#}");
        proxy.set(serde_json::json!({})).await["in_flight_max"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(most_at_once("1").await, 1, "one at a time");
    let four = most_at_once("4").await;
    assert!(
        (2..=4).contains(&four),
        "four accounts at once, at most: {four}"
    );
}

/// An account of its own, with buckets enough that a sweep at one a second is still running
/// when the operator pauses.
const PAUSED: &str = "555566663333";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_for_what_a_running_sweep_has_yet_to_reach() {
    let env = Env::new().await;
    let (member, open) = open_buckets(&env, PAUSED, "paused", 8).await;
    env.enforce("s3-block-public-access").await;
    // Settings read afresh for each resource, so the pause is seen at the next one.
    let config = std::env::temp_dir().join(format!("{}.toml", unique("rectify-sweep")));
    std::fs::write(&config, "[worker]\nsettings_cache_seconds = 0\n").unwrap();
    let extra = [("RECTIFY_CONFIG", config.to_str().unwrap())];
    let sweep = env.run_env(
        &[
            "sweep",
            "--account",
            PAUSED,
            "--remediation",
            "s3-block-public-access",
            "--rate",
            "1",
            "--json",
        ],
        &extra,
    );
    let pause = async {
        // Once the sweep has fixed a first bucket, the operator pauses everything.
        let fixed = eventually(std::time::Duration::from_secs(60), || async {
            env.jobs()
                .await
                .iter()
                .any(|j| j["status"] == "applied")
                .then_some(())
        })
        .await;
        assert!(fixed.is_some(), "the sweep fixed nothing");
        env.ok(&["pause", "--reason", "change freeze", "--by", "test"])
            .await;
    };
    let (run, ()) = tokio::join!(sweep, pause);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).expect(&run.stdout);
    let line = line_of(&report, PAUSED, REGION);
    let mut held = 0;
    for b in &open {
        if public_access_block(&member, b).await.is_none() {
            held += 1;
            let job = env.job_for(b).await;
            assert_eq!(job["status"], "planned", "{job:#}");
            let reason = job["reason"].as_str().unwrap();
            assert!(reason.contains("paused by test"), "{reason}");
        }
    }
    assert!(
        held >= 1,
        "the sweep went on fixing after the pause: {line:#}"
    );
    assert_eq!(line["outcomes"]["planned"], Value::from(held), "{line:#}");
}
