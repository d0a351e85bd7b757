//! CloudTrail remediations against moto: a stopped trail started (and a trail created where
//! there is none), and a trail's log file validation turned on, with what else the trails hold
//! left as it was. Each test works in an account of its own, since an account's trails are seen
//! from every region.

mod support;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use support::*;

const OTHER_REGION: &str = "eu-west-1";
const LOGGING_ON: &str = "cloudtrail-logging-on";
const VALIDATION: &str = "cloudtrail-log-validation";

fn cloudtrail(sdk: &SdkConfig, region: &str) -> aws_sdk_cloudtrail::Client {
    let sdk = sdk
        .to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build();
    aws_sdk_cloudtrail::Client::new(&sdk)
}

/// A bucket of the account, for trails to deliver to.
async fn logs_bucket(sdk: &SdkConfig) -> String {
    new_bucket(sdk, "trail-logs").await
}

/// Creates a stopped trail homed in `region`.
async fn create_trail(sdk: &SdkConfig, region: &str, name: &str, bucket: &str, multi: bool) {
    cloudtrail(sdk, region)
        .create_trail()
        .name(name)
        .s3_bucket_name(bucket)
        .s3_key_prefix("audit")
        .is_multi_region_trail(multi)
        .enable_log_file_validation(false)
        .send()
        .await
        .unwrap();
}

/// What a test compares of a trail homed in `region`: its settings and whether it logs.
async fn trail(sdk: &SdkConfig, region: &str, name: &str) -> Value {
    let client = cloudtrail(sdk, region);
    let trails = client
        .describe_trails()
        .include_shadow_trails(false)
        .send()
        .await
        .unwrap();
    let Some(t) = trails.trail_list().iter().find(|t| t.name() == Some(name)) else {
        return Value::Null;
    };
    let status = client.get_trail_status().name(name).send().await.unwrap();
    json!({
        "bucket": t.s3_bucket_name(),
        "prefix": t.s3_key_prefix(),
        "multi_region": t.is_multi_region_trail(),
        "validation": t.log_file_validation_enabled(),
        "global_events": t.include_global_service_events(),
        "logging": status.is_logging(),
    })
}

/// The names of the trails homed in `region`.
async fn trail_names(sdk: &SdkConfig, region: &str) -> Vec<String> {
    let mut names: Vec<String> = cloudtrail(sdk, region)
        .describe_trails()
        .include_shadow_trails(false)
        .send()
        .await
        .unwrap()
        .trail_list()
        .iter()
        .filter_map(|t| t.name().map(str::to_string))
        .collect();
    names.sort();
    names
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

/// Creating a trail needs a person (the manifest's max_mode): the job waits for approval,
/// saying why; an operator approves it and the worker runs it.
async fn approve_created_trail(env: &Env, job: &Value) {
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.contains("cloudtrail:CreateTrail") && reason.contains("max_mode is approval"),
        "{reason}"
    );
    env.approve(job["id"].as_str().unwrap(), "alice").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_multi_region_trail_is_started_with_nothing_else_changed_and_undo_stops_it() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let bucket = logs_bucket(&sdk).await;
    // Sorted by name the single-region trail comes first: the multi-region one is preferred.
    create_trail(&sdk, REGION, "app-trail", &bucket, false).await;
    create_trail(&sdk, REGION, "org-trail", &bucket, true).await;
    let app = trail(&sdk, REGION, "app-trail").await;
    let org = trail(&sdk, REGION, "org-trail").await;
    assert_eq!(org["logging"], false);

    env.enforce(LOGGING_ON).await;
    env.send(&account_event(
        &acct,
        "multi-region-cloudtrail-enabled",
        REGION,
    ))
    .await;
    env.drain().await;
    let jobs = env.jobs_of(LOGGING_ON).await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    let job = &jobs[0];
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(
        job["plan"]["actions"],
        json!([{"kind": "cloudtrail:StartLogging", "account_id": acct, "name": "org-trail"}])
    );
    assert_eq!(
        job["inverse"],
        json!([{"kind": "cloudtrail:StopLogging", "account_id": acct, "name": "org-trail"}])
    );
    let mut started = org.clone();
    started["logging"] = json!(true);
    assert_eq!(trail(&sdk, REGION, "org-trail").await, started);
    assert_eq!(
        trail(&sdk, REGION, "app-trail").await,
        app,
        "the other trail is left stopped"
    );

    env.undo(job["id"].as_str().unwrap()).await;
    assert_eq!(trail(&sdk, REGION, "org-trail").await, org);
    assert_eq!(trail(&sdk, REGION, "app-trail").await, app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_trail_a_validated_multi_region_trail_is_created_and_undo_deletes_only_it() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let bucket = logs_bucket(&sdk).await;
    env.enforce(LOGGING_ON).await;
    env.param(LOGGING_ON, &format!("bucket={bucket}")).await;
    env.param(LOGGING_ON, "trail_name=acme-audit").await;
    // Security Hub names the account `AWS::::Account:<id>` and the control only.
    env.send(&control_finding(
        &acct,
        REGION,
        "CloudTrail.1",
        "AwsAccount",
        &format!("AWS::::Account:{acct}"),
    ))
    .await;
    env.drain().await;
    approve_created_trail(&env, &env.job_for(&acct).await).await;
    let job = env.job_for(&acct).await;
    assert_eq!(job["remediation"], LOGGING_ON);
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["trails"], json!([]));
    assert_eq!(
        job["inverse"],
        json!([
            {"kind": "cloudtrail:StopLogging", "account_id": acct, "name": "acme-audit"},
            {"kind": "cloudtrail:DeleteTrail", "account_id": acct, "name": "acme-audit"}
        ])
    );
    assert_eq!(
        trail(&sdk, REGION, "acme-audit").await,
        json!({"bucket": bucket, "prefix": null, "multi_region": true, "validation": true,
               "global_events": true, "logging": true})
    );
    // The job recorded the trail it created, ARN included.
    let after = job["after"]["trails"].as_array().unwrap();
    assert_eq!(after.len(), 1, "{job:#}");
    assert_eq!(
        after[0]["arn"],
        format!("arn:aws:cloudtrail:{REGION}:{acct}:trail/acme-audit")
    );

    // A trail made by someone else after the job is not the job's to delete.
    create_trail(&sdk, OTHER_REGION, "team-trail", &bucket, false).await;
    env.undo(job["id"].as_str().unwrap()).await;
    assert!(trail_names(&sdk, REGION).await.is_empty());
    assert_eq!(trail_names(&sdk, OTHER_REGION).await, ["team-trail"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_trail_and_no_bucket_the_job_needs_the_parameter_and_nothing_is_created() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    env.enforce(LOGGING_ON).await;
    env.send(&account_event(&acct, "cloudtrail-enabled", REGION))
        .await;
    env.drain().await;
    let job = env.job_for(&acct).await;
    assert_eq!(job["status"], "needs-parameter", "{job:#}");
    let reason = job["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("bucket"), "{job:#}");
    assert!(trail_names(&sdk, REGION).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dry_run_the_trails_are_planned_for_and_nothing_changes() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let bucket = logs_bucket(&sdk).await;
    create_trail(&sdk, REGION, "app-trail", &bucket, false).await;
    let app = trail(&sdk, REGION, "app-trail").await;
    // Neither remediation is set: both run in their manifest's default mode, dry-run. The
    // trail's finding names it by ARN, as Security Hub does.
    env.send(&account_event(&acct, "cloudtrail-enabled", REGION))
        .await;
    env.send(&control_finding(
        &acct,
        REGION,
        "CloudTrail.4",
        "AwsCloudTrailTrail",
        &format!("arn:aws:cloudtrail:{REGION}:{acct}:trail/app-trail"),
    ))
    .await;
    env.drain().await;
    for (remediation, kind) in [
        (LOGGING_ON, "cloudtrail:StartLogging"),
        (VALIDATION, "cloudtrail:UpdateTrail"),
    ] {
        let jobs = env.jobs_of(remediation).await;
        assert_eq!(jobs.len(), 1, "{remediation}: {jobs:#?}");
        assert_eq!(jobs[0]["status"], "planned", "{:#}", jobs[0]);
        assert_eq!(jobs[0]["mode"], "dry-run");
        assert_eq!(jobs[0]["plan"]["actions"][0]["kind"], kind, "{:#}", jobs[0]);
    }
    assert_eq!(trail(&sdk, REGION, "app-trail").await, app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_file_validation_is_turned_on_alone_in_the_home_region_and_undo_turns_it_off() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let bucket = logs_bucket(&sdk).await;
    create_trail(&sdk, REGION, "app-trail", &bucket, false).await;
    cloudtrail(&sdk, REGION)
        .start_logging()
        .name("app-trail")
        .send()
        .await
        .unwrap();
    // A multi-region trail homed elsewhere, seen here as a shadow.
    create_trail(&sdk, OTHER_REGION, "org-trail", &bucket, true).await;
    let app = trail(&sdk, REGION, "app-trail").await;
    let org = trail(&sdk, OTHER_REGION, "org-trail").await;
    assert_eq!(app["validation"], false);

    env.enforce(VALIDATION).await;
    let rule = "cloud-trail-log-file-validation-enabled";
    env.send(&config_event(
        &acct,
        rule,
        "AWS::CloudTrail::Trail",
        "app-trail",
    ))
    .await;
    env.send(&config_event(
        &acct,
        rule,
        "AWS::CloudTrail::Trail",
        "org-trail",
    ))
    .await;
    env.drain().await;
    let job = env.job_for("app-trail").await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(
        job["inverse"],
        json!([{"kind": "cloudtrail:UpdateTrail", "name": "app-trail", "enable_log_file_validation": false}])
    );
    let mut validated = app.clone();
    validated["validation"] = json!(true);
    assert_eq!(trail(&sdk, REGION, "app-trail").await, validated);

    // The shadow is left to its home region, which is not changed from here.
    let shadow = env.job_for("org-trail").await;
    assert_eq!(shadow["status"], "no-op", "{shadow:#}");
    assert!(
        shadow["reason"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("homed in {OTHER_REGION}")),
        "{shadow:#}"
    );
    assert_eq!(trail(&sdk, OTHER_REGION, "org-trail").await, org);

    env.undo(job["id"].as_str().unwrap()).await;
    assert_eq!(trail(&sdk, REGION, "app-trail").await, app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_runs_the_trail_cases_and_lists_their_permissions() {
    let env = Env::new().await;
    let inverses: &[&str] = &["cloudtrail:StopLogging", "cloudtrail:DeleteTrail"];
    let worker: &[&str] = &[
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "cloudtrail:StartLogging",
        "cloudtrail:CreateTrail",
        "cloudtrail:UpdateTrail",
    ];
    check_catalog(
        &env,
        &[LOGGING_ON, VALIDATION],
        &[("worker", worker, inverses), ("operator", inverses, &[])],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_lists_the_account_once_and_each_trail_in_its_home_region() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let bucket = logs_bucket(&sdk).await;
    create_trail(&sdk, REGION, "app-trail", &bucket, false).await;
    create_trail(&sdk, OTHER_REGION, "org-trail", &bucket, true).await;
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
    let logging = lines(LOGGING_ON);
    assert_eq!(logging.len(), 1, "one job per account: {report:#}");
    assert_eq!(logging[0]["scanned"], 1, "{report:#}");
    assert_eq!(logging[0]["would_change"][0]["resource_id"], acct.as_str());
    // The multi-region trail is listed in its home region only, not as a shadow elsewhere.
    let validation = lines(VALIDATION);
    let listed: Vec<(&str, &str)> = validation
        .iter()
        .map(|l| {
            assert_eq!(l["scanned"], 1, "{l:#}");
            (
                l["region"].as_str().unwrap(),
                l["would_change"][0]["resource_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [(REGION, "app-trail"), (OTHER_REGION, "org-trail")],
        "{report:#}"
    );
    assert!(env.jobs().await.is_empty(), "--what-if records nothing");
    assert_eq!(trail(&sdk, REGION, "app-trail").await["logging"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_regions_findings_of_an_account_without_a_trail_create_one_trail() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let bucket = logs_bucket(&sdk).await;
    env.enforce(LOGGING_ON).await;
    env.param(LOGGING_ON, &format!("bucket={bucket}")).await;
    env.send(&account_event(&acct, "cloudtrail-enabled", REGION))
        .await;
    env.send(&account_event(&acct, "cloudtrail-enabled", OTHER_REGION))
        .await;
    env.drain_all().await;
    // Each region's plan creates a trail, so each waits for a person; both are approved.
    for job in env.jobs_of(LOGGING_ON).await {
        approve_created_trail(&env, &job).await;
    }
    let mut jobs = env.jobs_of(LOGGING_ON).await;
    jobs.sort_by_key(|j| j["status"].as_str().unwrap_or_default().to_string());
    let seen: Vec<(&str, &str)> = jobs
        .iter()
        .map(|j| (j["status"].as_str().unwrap(), j["region"].as_str().unwrap()))
        .collect();
    assert_eq!(seen.len(), 2, "one job per region: {jobs:#?}");
    assert_ne!(seen[0].1, seen[1].1, "{jobs:#?}");
    // One lock for the account: the job that ran second sees the first one's multi-region
    // trail logging its region too, and has nothing to do.
    assert_eq!([seen[0].0, seen[1].0], ["applied", "no-op"], "{jobs:#?}");
    let created_in = seen[0].1;
    let elsewhere = if created_in == REGION {
        OTHER_REGION
    } else {
        REGION
    };
    assert_eq!(trail_names(&sdk, created_in).await, ["rectify-trail"]);
    assert!(trail_names(&sdk, elsewhere).await.is_empty(), "{jobs:#?}");
    assert_eq!(
        trail(&sdk, created_in, "rectify-trail").await["logging"],
        true
    );
}
