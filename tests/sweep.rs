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
        .map(|w| w[0].as_str().unwrap())
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
