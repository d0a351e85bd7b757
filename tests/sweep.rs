//! The sweep against moto: violations no event announced are found in a member account;
//! `--what-if` changes and records nothing and counts what enforcing would change.

mod support;

use serde_json::Value;
use support::*;

/// An account no other test uses: the sweep enumerates everything in it.
const SWEPT: &str = "333344445555";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_finds_what_no_event_announced_and_what_if_changes_nothing() {
    let env = Env::new().await;
    env.allow(&[SWEPT]).await;
    let member = env.account(SWEPT).await;
    let s3 = aws_sdk_s3::Client::new(&member);
    let mut open = Vec::new();
    for _ in 0..2 {
        let b = unique("swept");
        s3.create_bucket().bucket(&b).send().await.unwrap();
        open.push(b);
    }
    let closed = unique("swept-ok");
    s3.create_bucket().bucket(&closed).send().await.unwrap();
    let pab = aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    s3.put_public_access_block()
        .bucket(&closed)
        .public_access_block_configuration(pab)
        .send()
        .await
        .unwrap();
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
    for b in &open {
        assert_eq!(public_access_block(&member, b).await, Some([true; 4]));
        let job = env.job_for(b).await;
        assert_eq!(job["source"], "sweep");
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
