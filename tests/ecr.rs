//! ECR against moto: a repository that does not scan on push gets scan on push, and its policy,
//! tag mutability and tags stay as they were; a Security Hub ECR.1 finding names a repository
//! whose name holds `/` by its ARN; dry-run changes nothing; undo turns scanning off again; the
//! sweep finds the repositories that do not scan.

mod support;

use aws_sdk_ecr::Client;
use aws_sdk_ecr::types::{ImageScanningConfiguration, ImageTagMutability, Tag};
use serde_json::{Value, json};
use support::*;

const RULE: &str = "ecr-private-image-scanning-enabled";
const TYPE: &str = "AWS::ECR::Repository";

/// An account of its own for the sweep, so other tests' repositories are not in its counts.
const SWEPT: &str = "666677778888";

fn ecr(sdk: &aws_config::SdkConfig) -> Client {
    Client::new(sdk)
}

/// The policy every test repository carries; a fix must leave it as it is.
fn policy(account: &str) -> String {
    json!({"Version": "2012-10-17", "Statement": [{
        "Sid": "PullFromTheAccount", "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    }]})
    .to_string()
}

/// A new repository under a namespace (`team/…`), immutable tags, tagged, with a policy and
/// scan on push as given; its name.
async fn repository(sdk: &aws_config::SdkConfig, account: &str, scan_on_push: bool) -> String {
    let name = format!("team/{}", unique("app"));
    let c = ecr(sdk);
    c.create_repository()
        .repository_name(&name)
        .image_tag_mutability(ImageTagMutability::Immutable)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(scan_on_push)
                .build(),
        )
        .tags(
            Tag::builder()
                .key("team")
                .value("payments")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    c.set_repository_policy()
        .repository_name(&name)
        .policy_text(policy(account))
        .send()
        .await
        .unwrap();
    name
}

/// What a repository is, as moto holds it: what a fix must not touch (mutability, policy text,
/// tags), and whether it scans on push.
async fn state(sdk: &aws_config::SdkConfig, name: &str) -> (Value, bool) {
    let c = ecr(sdk);
    let out = c
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .unwrap();
    let r = &out.repositories()[0];
    let policy = c
        .get_repository_policy()
        .repository_name(name)
        .send()
        .await
        .unwrap();
    let tags = c
        .list_tags_for_resource()
        .resource_arn(r.repository_arn().unwrap())
        .send()
        .await
        .unwrap();
    let rest = json!({
        "mutability": r.image_tag_mutability().map(|m| m.as_str().to_string()),
        "policy": policy.policy_text(),
        "tags": tags.tags().iter().map(|t| format!("{}={}", t.key(), t.value())).collect::<Vec<_>>(),
    });
    let scan = r
        .image_scanning_configuration()
        .is_some_and(ImageScanningConfiguration::scan_on_push);
    (rest, scan)
}

/// A Security Hub finding of control ECR.1 (and no Config rule name) about a repository, named
/// by its ARN as Security Hub names it.
fn security_hub_finding(name: &str) -> String {
    let arn = format!("arn:aws:ecr:{REGION}:{HOME}:repository/{name}");
    control_finding(HOME, REGION, "ECR.1", "AwsEcrRepository", &arn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repository_gets_scan_on_push_nothing_else_changes_and_undo_turns_it_off() {
    let env = Env::new().await;
    env.enforce("ecr-scan-on-push").await;
    let name = repository(&env.sdk, HOME, false).await;
    let (untouched, scan) = state(&env.sdk, &name).await;
    assert!(!scan);

    env.send(&security_hub_finding(&name)).await;
    env.drain().await;
    let job = env.job_for(&name).await;
    assert_eq!(job["remediation"], "ecr-scan-on-push");
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["scan_on_push"], false);
    assert_eq!(job["before"]["image_tag_mutability"], "IMMUTABLE");
    assert_eq!(job["before"]["tags"], json!({"team": "payments"}));
    assert_eq!(job["after"]["scan_on_push"], true);
    assert_eq!(
        job["plan"]["actions"],
        json!([{"kind": "ecr:PutImageScanningConfiguration", "repository_name": name,
                "scan_on_push": true}])
    );
    assert_eq!(
        job["inverse"],
        json!([{"kind": "ecr:PutImageScanningConfiguration", "repository_name": name,
                "scan_on_push": false}])
    );
    assert_eq!(
        state(&env.sdk, &name).await,
        (untouched.clone(), true),
        "only scan on push may change"
    );

    let job_id = job["id"].as_str().unwrap();
    let out = env
        .ok(&[
            "jobs",
            "undo",
            job_id,
            "--by",
            "auditor",
            "--reason",
            "scanned elsewhere",
        ])
        .await;
    assert!(out.contains("undone"), "{out}");
    assert_eq!(
        env.json(&["jobs", "show", job_id]).await["status"],
        "undone"
    );
    assert_eq!(state(&env.sdk, &name).await, (untouched, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_scan_on_push_and_changes_nothing() {
    let env = Env::new().await;
    let name = repository(&env.sdk, HOME, false).await;
    let compliant = repository(&env.sdk, HOME, true).await;
    let before = state(&env.sdk, &name).await;

    env.send(&config_event(HOME, RULE, TYPE, &name)).await;
    env.send(&config_event(HOME, RULE, TYPE, &compliant)).await;
    env.drain_all().await;
    let job = env.job_for(&name).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    assert_eq!(job["mode"], "dry-run");
    assert_eq!(
        job["plan"]["actions"][0]["kind"],
        "ecr:PutImageScanningConfiguration"
    );
    assert_eq!(state(&env.sdk, &name).await, before);
    let job = env.job_for(&compliant).await;
    assert_eq!(job["status"], "no-op", "{job:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_finds_repositories_that_do_not_scan_and_what_if_changes_nothing() {
    let env = Env::new().await;
    env.allow(&[SWEPT]).await;
    env.enforce("ecr-scan-on-push").await;
    let sdk = env.account(SWEPT).await;
    let off = repository(&sdk, SWEPT, false).await;
    let on = repository(&sdk, SWEPT, true).await;

    let report = env
        .json(&[
            "sweep",
            "--what-if",
            "--account",
            SWEPT,
            "--remediation",
            "ecr-scan-on-push",
        ])
        .await;
    let would_change: Vec<&str> = report[0]["would_change"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["resource_id"].as_str().unwrap())
        .collect();
    assert!(would_change.contains(&off.as_str()), "{report:#}");
    assert!(!would_change.contains(&on.as_str()), "{report:#}");
    assert!(!state(&sdk, &off).await.1, "--what-if changed {off}");
    assert!(env.jobs().await.is_empty(), "--what-if records nothing");
}
