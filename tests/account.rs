//! Account-level remediations against moto: the account's S3 Public Access Block (S3 Control,
//! one per account) and EBS encryption by default (one per region). Each test works in an
//! account of its own, since these settings are shared by everything in an account.

mod support;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use support::*;

const OTHER_REGION: &str = "eu-west-1";

/// The account's S3 Public Access Block as moto holds it (`None`: there is none).
async fn account_block(sdk: &SdkConfig, account: &str) -> Option<[bool; 4]> {
    match rectify::cloud::s3control_client(sdk)
        .get_public_access_block()
        .account_id(account)
        .send()
        .await
    {
        Ok(out) => {
            let b = out.public_access_block_configuration().unwrap();
            Some([
                b.block_public_acls().unwrap_or(false),
                b.ignore_public_acls().unwrap_or(false),
                b.block_public_policy().unwrap_or(false),
                b.restrict_public_buckets().unwrap_or(false),
            ])
        }
        Err(e) => {
            let code = aws_sdk_s3control::error::ProvideErrorMetadata::code(&e);
            assert_eq!(code, Some("NoSuchPublicAccessBlockConfiguration"), "{e:?}");
            None
        }
    }
}

async fn put_account_block(sdk: &SdkConfig, account: &str, flags: [bool; 4]) {
    let config = aws_sdk_s3control::types::PublicAccessBlockConfiguration::builder()
        .block_public_acls(flags[0])
        .ignore_public_acls(flags[1])
        .block_public_policy(flags[2])
        .restrict_public_buckets(flags[3])
        .build();
    rectify::cloud::s3control_client(sdk)
        .put_public_access_block()
        .account_id(account)
        .public_access_block_configuration(config)
        .send()
        .await
        .unwrap();
}

/// Whether EBS encryption by default is on in a region of the account.
async fn ebs_default(sdk: &SdkConfig, region: &str) -> bool {
    let sdk = sdk
        .to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build();
    aws_sdk_ec2::Client::new(&sdk)
        .get_ebs_encryption_by_default()
        .send()
        .await
        .unwrap()
        .ebs_encryption_by_default()
        .unwrap()
}

/// A Config event about the account itself, from `region`.
fn account_event(account: &str, rule: &str, region: &str) -> String {
    let mut detail = config_detail(account, rule, "AWS::::Account", account, "NON_COMPLIANT");
    detail["awsRegion"] = json!(region);
    json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Config Rules Compliance Change",
        "source": "aws.config", "account": account, "time": "2026-11-30T10:00:00Z", "region": region,
        "resources": [], "detail": detail
    })
    .to_string()
}

const S3_RULE: &str = "s3-account-level-public-access-blocks-periodic";
const EBS_RULE: &str = "ec2-ebs-encryption-by-default";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_block_is_merged_to_all_on_and_undo_restores_it_exactly() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    // What must survive: the flags already on, a bucket's own block, and the EBS setting.
    put_account_block(&sdk, &acct, [true, false, false, true]).await;
    let bucket = unique("acct");
    let s3 = aws_sdk_s3::Client::new(&sdk);
    s3.create_bucket().bucket(&bucket).send().await.unwrap();
    block_public_access(&sdk, &bucket).await;
    let bucket_block = public_access_block(&sdk, &bucket).await;
    assert!(!ebs_default(&sdk, REGION).await);

    env.enforce("s3-account-block-public-access").await;
    env.send(&account_event(&acct, S3_RULE, REGION)).await;
    env.drain().await;
    let jobs = env.jobs_of("s3-account-block-public-access").await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    let job = &jobs[0];
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["resource_type"], "AWS::::Account");
    assert_eq!(job["resource_id"], acct.as_str());
    assert_eq!(
        job["before"]["public_access_block"]["ignore_public_acls"],
        false
    );
    assert_eq!(
        job["inverse"][0],
        json!({"kind": "s3control:PutPublicAccessBlock", "account_id": acct,
               "block_public_acls": true, "ignore_public_acls": false,
               "block_public_policy": false, "restrict_public_buckets": true})
    );
    assert_eq!(account_block(&sdk, &acct).await, Some([true; 4]));
    assert_eq!(public_access_block(&sdk, &bucket).await, bucket_block);
    assert!(
        !ebs_default(&sdk, REGION).await,
        "EBS is another remediation's"
    );
    assert!(
        env.jobs_of("ebs-default-encryption").await.is_empty(),
        "the rule routes to the S3 account block only"
    );

    env.undo(job["id"].as_str().unwrap()).await;
    assert_eq!(
        account_block(&sdk, &acct).await,
        Some([true, false, false, true])
    );
    assert_eq!(public_access_block(&sdk, &bucket).await, bucket_block);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_a_block_gets_one_and_undo_deletes_it() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    assert_eq!(account_block(&sdk, &acct).await, None);
    env.enforce("s3-account-block-public-access").await;
    // Security Hub names the account `AWS::::Account:<id>` and the control S3.1 only.
    let finding = json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Security Hub Findings - Imported", "source": "aws.securityhub",
        "account": acct, "time": "2026-11-30T10:00:00Z", "region": REGION, "resources": [],
        "detail": {"findings": [{
            "Id": format!("arn:aws:securityhub:{REGION}:{acct}:security-control/S3.1/finding/{}", uuid::Uuid::new_v4()),
            "ProductArn": format!("arn:aws:securityhub:{REGION}::product/aws/securityhub"),
            "GeneratorId": "security-control/S3.1", "AwsAccountId": acct, "Region": REGION,
            "UpdatedAt": "2026-11-30T10:00:00.000Z", "Title": "S3 general purpose buckets should have block public access settings enabled",
            "Resources": [{"Type": "AwsAccount", "Id": format!("AWS::::Account:{acct}"), "Partition": "aws", "Region": REGION}],
            "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.1"},
            "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE"
        }]}
    });
    env.send(&finding.to_string()).await;
    env.drain().await;
    let job = env.job_for(&acct).await;
    assert_eq!(job["remediation"], "s3-account-block-public-access");
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["public_access_block"], Value::Null);
    assert_eq!(
        job["inverse"][0],
        json!({"kind": "s3control:DeletePublicAccessBlock", "account_id": acct})
    );
    assert_eq!(account_block(&sdk, &acct).await, Some([true; 4]));
    env.undo(job["id"].as_str().unwrap()).await;
    assert_eq!(account_block(&sdk, &acct).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dry_run_account_settings_are_planned_and_nothing_changes() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    put_account_block(&sdk, &acct, [false, true, false, false]).await;
    // Neither remediation is set: both run in their manifest's default mode, dry-run.
    env.send(&account_event(&acct, S3_RULE, REGION)).await;
    env.send(&account_event(&acct, EBS_RULE, REGION)).await;
    env.drain().await;
    for remediation in ["s3-account-block-public-access", "ebs-default-encryption"] {
        let jobs = env.jobs_of(remediation).await;
        assert_eq!(jobs.len(), 1, "{remediation}: {jobs:#?}");
        assert_eq!(jobs[0]["status"], "planned", "{:#}", jobs[0]);
        assert_eq!(jobs[0]["mode"], "dry-run");
        assert_eq!(jobs[0]["plan"]["actions"].as_array().unwrap().len(), 1);
    }
    assert_eq!(
        account_block(&sdk, &acct).await,
        Some([false, true, false, false])
    );
    assert!(!ebs_default(&sdk, REGION).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ebs_encryption_is_turned_on_in_the_finding_region_only_and_undo_turns_it_off() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    env.enforce("ebs-default-encryption").await;
    env.send(&account_event(&acct, EBS_RULE, OTHER_REGION))
        .await;
    env.drain().await;
    let jobs = env.jobs_of("ebs-default-encryption").await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    let job = &jobs[0];
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["region"], OTHER_REGION);
    assert_eq!(
        job["inverse"][0],
        json!({"kind": "ec2:DisableEbsEncryptionByDefault", "account_id": acct})
    );
    assert!(ebs_default(&sdk, OTHER_REGION).await);
    // Another region of the same account, and the account's S3 block, are left as they were.
    assert!(!ebs_default(&sdk, REGION).await);
    assert_eq!(account_block(&sdk, &acct).await, None);

    env.undo(job["id"].as_str().unwrap()).await;
    assert!(!ebs_default(&sdk, OTHER_REGION).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exempt_account_is_left_alone() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    env.enforce("ebs-default-encryption").await;
    env.ok(&[
        "exemptions",
        "add",
        "--remediation",
        "ebs-default-encryption",
        "--resource",
        &acct,
        "--account",
        &acct,
        "--reason",
        "legacy AMIs",
        "--by",
        "test",
    ])
    .await;
    env.send(&account_event(&acct, EBS_RULE, REGION)).await;
    env.drain().await;
    let job = env.job_for(&acct).await;
    assert_eq!(job["status"], "exempt", "{job:#}");
    assert!(!ebs_default(&sdk, REGION).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_lists_the_account_block_once_per_account_and_ebs_once_per_region() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let report = env
        .json(&[
            "sweep",
            "--what-if",
            "--account",
            &acct,
            "--region",
            REGION,
            "--region",
            OTHER_REGION,
        ])
        .await;
    let lines = |remediation: &str| -> Vec<Value> {
        report
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["remediation"] == remediation)
            .cloned()
            .collect()
    };
    let s3 = lines("s3-account-block-public-access");
    assert_eq!(s3.len(), 1, "{report:#}");
    assert_eq!(s3[0]["scanned"], 1, "{report:#}");
    assert_eq!(s3[0]["would_change"][0]["resource_id"], acct.as_str());
    let ebs = lines("ebs-default-encryption");
    let regions: Vec<&str> = ebs.iter().map(|l| l["region"].as_str().unwrap()).collect();
    assert_eq!(regions, [REGION, OTHER_REGION], "{report:#}");
    for line in &ebs {
        assert_eq!(line["scanned"], 1, "{line:#}");
        assert_eq!(line["would_change"][0]["resource_id"], acct.as_str());
    }
    assert!(env.jobs().await.is_empty(), "--what-if records nothing");
    assert_eq!(account_block(&sdk, &acct).await, None);
    assert!(!ebs_default(&sdk, OTHER_REGION).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_runs_the_account_remediations_cases_and_lists_their_permissions() {
    let env = Env::new().await;
    let worker: &[&str] = &[
        "s3:PutAccountPublicAccessBlock",
        "ec2:EnableEbsEncryptionByDefault",
    ];
    let operator: &[&str] = &["ec2:DisableEbsEncryptionByDefault"];
    check_catalog(
        &env,
        &["s3-account-block-public-access", "ebs-default-encryption"],
        &[("worker", worker, operator), ("operator", operator, &[])],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_findings_of_the_account_block_are_two_jobs_and_one_change() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    env.enforce("s3-account-block-public-access").await;
    env.send(&account_event(&acct, S3_RULE, REGION)).await;
    env.send(&account_event(&acct, S3_RULE, OTHER_REGION)).await;
    env.drain_all().await;
    let mut jobs = env.jobs_of("s3-account-block-public-access").await;
    jobs.sort_by_key(|j| j["status"].as_str().unwrap_or_default().to_string());
    let seen: Vec<(&str, &str)> = jobs
        .iter()
        .map(|j| (j["status"].as_str().unwrap(), j["region"].as_str().unwrap()))
        .collect();
    assert_eq!(seen.len(), 2, "one job per region: {jobs:#?}");
    assert_ne!(seen[0].1, seen[1].1, "{jobs:#?}");
    // The account's one block is changed once: the job that ran second (under the same lock)
    // reads it already on and has nothing to do.
    assert_eq!([seen[0].0, seen[1].0], ["applied", "no-op"], "{jobs:#?}");
    assert_eq!(account_block(&sdk, &acct).await, Some([true; 4]));
}
