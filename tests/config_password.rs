//! AWS Config's recorder (`config-recorder-on`, per region) and the IAM password policy
//! (`iam-password-policy`, one per account) against moto: enforce, dry-run and undo. Each test
//! works in an account of its own, since these settings are shared by everything in it.

mod support;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use support::*;

const OTHER_REGION: &str = "eu-west-1";
const CONFIG: &str = "config-recorder-on";
const PASSWORDS: &str = "iam-password-policy";

fn in_region(sdk: &SdkConfig, region: &str) -> SdkConfig {
    sdk.to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

/// A Security Hub (ASFF) finding of `control` about the account itself, from `region`.
fn account_finding(account: &str, control: &str, region: &str) -> String {
    let id = format!("AWS::::Account:{account}");
    control_finding(account, region, control, "AwsAccount", &id)
}

/// A Config event of `rule` about the account itself, from `region`.
fn rule_event(account: &str, rule: &str, region: &str) -> String {
    let mut detail = config_detail(account, rule, "AWS::::Account", account, "NON_COMPLIANT");
    detail["awsRegion"] = json!(region);
    json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Config Rules Compliance Change",
        "source": "aws.config", "account": account, "time": "2026-11-30T10:00:00Z", "region": region,
        "resources": [], "detail": detail
    })
    .to_string()
}

async fn only_job(env: &Env, remediation: &str) -> Value {
    let jobs = env.jobs_of(remediation).await;
    assert_eq!(jobs.len(), 1, "{remediation}: {jobs:#?}");
    jobs[0].clone()
}

/// Creating a recorder or a delivery channel needs a person (the manifest's max_mode): the job
/// waits for approval, saying why; an operator approves it and the worker runs it.
async fn approve_created(env: &Env, job: &Value) {
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    let reason = job["reason"].as_str().unwrap();
    assert!(reason.contains("max_mode is approval"), "{reason}");
    env.approve(job["id"].as_str().unwrap(), "alice").await;
}

// ---- the password policy ----

/// The account's password policy as moto holds it, in the fields rectify reads (`None`: none).
async fn password_policy(sdk: &SdkConfig) -> Option<Value> {
    match aws_sdk_iam::Client::new(sdk)
        .get_account_password_policy()
        .send()
        .await
    {
        Ok(out) => {
            let p = out.password_policy().unwrap();
            Some(json!({
                "minimum_password_length": p.minimum_password_length(),
                "require_symbols": p.require_symbols(),
                "require_numbers": p.require_numbers(),
                "require_uppercase_characters": p.require_uppercase_characters(),
                "require_lowercase_characters": p.require_lowercase_characters(),
                "allow_users_to_change_password": p.allow_users_to_change_password(),
                "max_password_age": p.max_password_age().filter(|n| *n > 0),
                "password_reuse_prevention": p.password_reuse_prevention().filter(|n| *n > 0),
                "hard_expiry": p.hard_expiry().unwrap_or(false),
            }))
        }
        Err(e) => {
            let code = aws_sdk_iam::error::ProvideErrorMetadata::code(&e);
            assert_eq!(code, Some("NoSuchEntity"), "{e:?}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_weak_password_policy_is_merged_keeping_stricter_values_and_undo_restores_it_exactly() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    // Stricter than the defaults in length and age; weaker in reuse and character classes.
    aws_sdk_iam::Client::new(&sdk)
        .update_account_password_policy()
        .minimum_password_length(20)
        .require_numbers(true)
        .allow_users_to_change_password(false)
        .max_password_age(30)
        .password_reuse_prevention(5)
        .hard_expiry(true)
        .send()
        .await
        .unwrap();
    let before = password_policy(&sdk).await.unwrap();

    env.enforce(PASSWORDS).await;
    env.send(&rule_event(&acct, "iam-password-policy", REGION))
        .await;
    env.drain().await;
    let job = only_job(&env, PASSWORDS).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    // The inverse is the whole previous policy, every field.
    assert_eq!(
        job["inverse"][0],
        json!({"kind": "iam:UpdateAccountPasswordPolicy", "account_id": acct,
               "minimum_password_length": 20, "require_symbols": false, "require_numbers": true,
               "require_uppercase_characters": false, "require_lowercase_characters": false,
               "allow_users_to_change_password": false, "max_password_age": 30,
               "password_reuse_prevention": 5, "hard_expiry": true})
    );
    assert_eq!(
        password_policy(&sdk).await.unwrap(),
        json!({"minimum_password_length": 20, "require_symbols": true, "require_numbers": true,
               "require_uppercase_characters": true, "require_lowercase_characters": true,
               "allow_users_to_change_password": false, "max_password_age": 30,
               "password_reuse_prevention": 24, "hard_expiry": true}),
        "the stricter length and age, and the fields no parameter names, survive"
    );

    env.undo(job["id"].as_str().unwrap()).await;
    assert_eq!(password_policy(&sdk).await.unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_without_a_password_policy_gets_one_from_iam_7_and_undo_deletes_it() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    assert_eq!(password_policy(&sdk).await, None);
    env.enforce(PASSWORDS).await;
    env.param(PASSWORDS, "minimum_password_length=16").await;
    env.send(&account_finding(&acct, "IAM.7", REGION)).await;
    env.drain().await;
    let job = only_job(&env, PASSWORDS).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["password_policy"], Value::Null);
    assert_eq!(
        job["inverse"][0],
        json!({"kind": "iam:DeleteAccountPasswordPolicy", "account_id": acct})
    );
    assert_eq!(
        password_policy(&sdk).await.unwrap(),
        json!({"minimum_password_length": 16, "require_symbols": true, "require_numbers": true,
               "require_uppercase_characters": true, "require_lowercase_characters": true,
               "allow_users_to_change_password": true, "max_password_age": 90,
               "password_reuse_prevention": 24, "hard_expiry": false})
    );
    env.undo(job["id"].as_str().unwrap()).await;
    assert_eq!(password_policy(&sdk).await, None);
}

// ---- AWS Config's recorder ----

/// The region's recorders (name, recording, all supported, resource types) and channels
/// (name, bucket) as moto holds them.
async fn recorder_state(sdk: &SdkConfig, region: &str) -> Value {
    let config = aws_sdk_config::Client::new(&in_region(sdk, region));
    let recorders = config
        .describe_configuration_recorders()
        .send()
        .await
        .unwrap();
    let status = config
        .describe_configuration_recorder_status()
        .send()
        .await
        .unwrap();
    let channels = config.describe_delivery_channels().send().await.unwrap();
    json!({
        "recorders": recorders.configuration_recorders().iter().map(|r| {
            let name = r.name().unwrap();
            let group = r.recording_group().unwrap();
            json!({
                "name": name,
                "role_arn": r.role_arn(),
                "recording": status.configuration_recorders_status().iter()
                    .any(|s| s.name() == Some(name) && s.recording()),
                "all_supported": group.all_supported(),
                "include_global_resource_types": group.include_global_resource_types(),
                "resource_types": group.resource_types().iter().map(aws_sdk_config::types::ResourceType::as_str).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
        "delivery_channels": channels.delivery_channels().iter()
            .map(|d| json!({"name": d.name(), "bucket": d.s3_bucket_name()}))
            .collect::<Vec<_>>(),
    })
}

fn empty_config() -> Value {
    json!({"recorders": [], "delivery_channels": []})
}

const ROLE: &str = "role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_without_a_recorder_needs_role_and_bucket_then_gets_one_and_undo_deletes_it() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    env.enforce(CONFIG).await;
    env.send(&account_finding(&acct, "Config.1", OTHER_REGION))
        .await;
    env.drain().await;
    let job = only_job(&env, CONFIG).await;
    assert_eq!(job["status"], "needs-parameter", "{job:#}");
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.contains("role_arn") && reason.contains("bucket"),
        "{reason}"
    );
    assert_eq!(recorder_state(&sdk, OTHER_REGION).await, empty_config());

    let bucket = unique("cfg");
    aws_sdk_s3::Client::new(&sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let role = format!("arn:aws:iam::{acct}:{ROLE}");
    env.param(CONFIG, &format!("role_arn={role}")).await;
    env.param(CONFIG, &format!("bucket={bucket}")).await;
    env.ok(&["jobs", "retry", job["id"].as_str().unwrap()])
        .await;
    env.drain().await;
    approve_created(&env, &only_job(&env, CONFIG).await).await;
    let job = only_job(&env, CONFIG).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["region"], OTHER_REGION);
    let named = |kind: &str| json!({"kind": kind, "account_id": acct, "name": "default"});
    assert_eq!(
        job["inverse"],
        json!([
            named("config:StopConfigurationRecorder"),
            named("config:DeleteDeliveryChannel"),
            named("config:DeleteConfigurationRecorder"),
        ])
    );
    assert_eq!(
        recorder_state(&sdk, OTHER_REGION).await,
        json!({"recorders": [{"name": "default", "role_arn": role, "recording": true,
                              "all_supported": true, "include_global_resource_types": false,
                              "resource_types": []}],
               "delivery_channels": [{"name": "default", "bucket": bucket}]})
    );
    assert_eq!(
        recorder_state(&sdk, REGION).await,
        empty_config(),
        "another region is left alone"
    );

    env.undo(job["id"].as_str().unwrap()).await;
    assert_eq!(recorder_state(&sdk, OTHER_REGION).await, empty_config());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_recorder_is_started_keeping_what_it_records_and_undo_stops_it() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let config = aws_sdk_config::Client::new(&sdk);
    let role = format!("arn:aws:iam::{acct}:role/config-recorder");
    let bucket = unique("cfg");
    aws_sdk_s3::Client::new(&sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    config
        .put_configuration_recorder()
        .configuration_recorder(
            aws_sdk_config::types::ConfigurationRecorder::builder()
                .name("main")
                .role_arn(&role)
                .recording_group(
                    aws_sdk_config::types::RecordingGroup::builder()
                        .all_supported(false)
                        .resource_types(aws_sdk_config::types::ResourceType::Bucket)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    config
        .put_delivery_channel()
        .delivery_channel(
            aws_sdk_config::types::DeliveryChannel::builder()
                .name("main")
                .s3_bucket_name(&bucket)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let before = recorder_state(&sdk, REGION).await;
    assert_eq!(before["recorders"][0]["recording"], false);

    env.enforce(CONFIG).await;
    env.send(&account_finding(&acct, "Config.1", REGION)).await;
    env.drain().await;
    let job = only_job(&env, CONFIG).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(
        job["plan"]["actions"],
        json!([{"kind": "config:StartConfigurationRecorder", "account_id": acct, "name": "main"}])
    );
    let mut started = before.clone();
    started["recorders"][0]["recording"] = json!(true);
    assert_eq!(
        recorder_state(&sdk, REGION).await,
        started,
        "only recording changes: the recorder still records buckets only, to its own channel"
    );

    env.undo(job["id"].as_str().unwrap()).await;
    assert_eq!(recorder_state(&sdk, REGION).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_to_a_missing_bucket_fails_the_job_and_its_retry_starts_the_recorder_it_created()
{
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let bucket = unique("cfg");
    let role = format!("arn:aws:iam::{acct}:{ROLE}");
    env.enforce(CONFIG).await;
    env.param(CONFIG, &format!("role_arn={role}")).await;
    env.param(CONFIG, &format!("bucket={bucket}")).await;
    env.send(&account_finding(&acct, "Config.1", REGION)).await;
    env.drain().await;
    approve_created(&env, &only_job(&env, CONFIG).await).await;
    let job = only_job(&env, CONFIG).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    assert!(
        job["reason"]
            .as_str()
            .unwrap()
            .contains("NoSuchBucketException"),
        "{job:#}"
    );
    // The recorder was created before the channel failed; it does not record.
    let stopped = json!({"recorders": [{"name": "default", "role_arn": role, "recording": false,
        "all_supported": true, "include_global_resource_types": false, "resource_types": []}],
        "delivery_channels": []});
    assert_eq!(recorder_state(&sdk, REGION).await, stopped);

    aws_sdk_s3::Client::new(&sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    env.ok(&["jobs", "retry", job["id"].as_str().unwrap()])
        .await;
    env.drain().await;
    approve_created(&env, &only_job(&env, CONFIG).await).await;
    let job = only_job(&env, CONFIG).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    // The retry reads the recorder it left and only adds the channel and starts it.
    let named = |kind: &str| json!({"kind": kind, "account_id": acct, "name": "default"});
    let mut channel = named("config:PutDeliveryChannel");
    channel["s3_bucket_name"] = json!(bucket);
    assert_eq!(
        job["plan"]["actions"],
        json!([channel, named("config:StartConfigurationRecorder")])
    );
    let mut on = stopped.clone();
    on["recorders"][0]["recording"] = json!(true);
    on["delivery_channels"] = json!([{"name": "default", "bucket": bucket}]);
    assert_eq!(recorder_state(&sdk, REGION).await, on);
    // Undo puts back the job's own before-state: the stopped recorder, without the channel.
    env.undo(job["id"].as_str().unwrap()).await;
    assert_eq!(recorder_state(&sdk, REGION).await, stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dry_run_the_recorder_and_the_policy_are_planned_and_nothing_changes() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let bucket = unique("cfg");
    aws_sdk_s3::Client::new(&sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    // Neither remediation is set to a mode: both run in their manifest's default, dry-run.
    env.param(CONFIG, &format!("role_arn=arn:aws:iam::{acct}:{ROLE}"))
        .await;
    env.param(CONFIG, &format!("bucket={bucket}")).await;
    env.send(&account_finding(&acct, "Config.1", REGION)).await;
    env.send(&rule_event(&acct, "iam-password-policy", REGION))
        .await;
    env.drain().await;
    for (remediation, actions) in [(CONFIG, 3), (PASSWORDS, 1)] {
        let job = only_job(&env, remediation).await;
        assert_eq!(job["status"], "planned", "{job:#}");
        assert_eq!(job["mode"], "dry-run");
        assert_eq!(
            job["plan"]["actions"].as_array().unwrap().len(),
            actions,
            "{job:#}"
        );
    }
    assert_eq!(recorder_state(&sdk, REGION).await, empty_config());
    assert_eq!(password_policy(&sdk).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_runs_their_cases_and_the_roles_split_tightening_from_inverses() {
    let env = Env::new().await;
    let tightening: &[&str] = &[
        "config:PutConfigurationRecorder",
        "config:PutDeliveryChannel",
        "config:StartConfigurationRecorder",
        "iam:UpdateAccountPasswordPolicy",
        "iam:GetAccountPasswordPolicy",
        "config:DescribeConfigurationRecorderStatus",
    ];
    let inverses: &[&str] = &[
        "config:StopConfigurationRecorder",
        "config:DeleteConfigurationRecorder",
        "config:DeleteDeliveryChannel",
        "iam:DeleteAccountPasswordPolicy",
    ];
    check_catalog(
        &env,
        &[CONFIG, PASSWORDS],
        &[
            ("worker", tightening, inverses),
            ("operator", inverses, &[]),
        ],
    )
    .await;
}
