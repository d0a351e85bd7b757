//! Remediations that create what AWS names, against moto: `guardduty-enabled` (a detector per
//! account and region) and `vpc-flow-logs-on` (a flow log of a VPC). The job records the id AWS
//! gave what it created, its inverse deletes exactly that, undo refuses without it, and a
//! creating call repeated with the job's client token gets the same resource back instead of a
//! second one. GuardDuty tests each work in an account of their own (one detector per account
//! and region).

mod support;

use aws_config::SdkConfig;
use rectify::action::apply::{Applied, apply};
use rectify::action::{Action, TrafficType, client_token};
use serde_json::{Value, json};
use support::*;

const OTHER_REGION: &str = "eu-west-1";
const GUARDDUTY_RULE: &str = "guardduty-enabled-centralized";
const FLOW_LOGS_RULE: &str = "vpc-flow-logs-enabled";
const ROLE: &str = "arn:aws:iam::123456789012:role/flow-logs-delivery";

fn in_region(sdk: &SdkConfig, region: &str) -> SdkConfig {
    sdk.to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

fn guardduty(sdk: &SdkConfig, region: &str) -> aws_sdk_guardduty::Client {
    aws_sdk_guardduty::Client::new(&in_region(sdk, region))
}

/// The region's detectors as moto holds them: id, status, finding frequency.
async fn detectors(sdk: &SdkConfig, region: &str) -> Vec<(String, String, String)> {
    let gd = guardduty(sdk, region);
    let ids = gd
        .list_detectors()
        .send()
        .await
        .unwrap()
        .detector_ids()
        .to_vec();
    let mut out = Vec::new();
    for id in ids {
        let d = gd.get_detector().detector_id(&id).send().await.unwrap();
        out.push((
            id,
            d.status().unwrap().as_str().to_string(),
            d.finding_publishing_frequency()
                .map(|f| f.as_str().to_string())
                .unwrap_or_default(),
        ));
    }
    out
}

/// A Config event about the account itself, from `region`.
fn account_event(account: &str, region: &str) -> String {
    let mut detail = config_detail(
        account,
        GUARDDUTY_RULE,
        "AWS::::Account",
        account,
        "NON_COMPLIANT",
    );
    detail["awsRegion"] = json!(region);
    json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Config Rules Compliance Change",
        "source": "aws.config", "account": account, "time": "2026-11-30T10:00:00Z", "region": region,
        "resources": [], "detail": detail
    })
    .to_string()
}

/// The audit records of one job.
async fn records_of(env: &Env, job: &str) -> Vec<Value> {
    env.audit()
        .await
        .into_iter()
        .filter(|r| r["job_id"] == job)
        .collect()
}

/// Removes one attribute of a job item by hand, as someone with write access to the jobs table
/// (not rectify) would.
async fn remove_job_attribute(env: &Env, id: &str, name: &str) {
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .update_item()
        .table_name(format!("{}-jobs", env.prefix))
        .key("id", aws_sdk_dynamodb::types::AttributeValue::S(id.into()))
        .update_expression("REMOVE #a")
        .expression_attribute_names("#a", name)
        .condition_expression("attribute_exists(id)")
        .send()
        .await
        .unwrap();
}

/// rectify's own view of AWS, acting in member accounts through their remediation role.
fn cloud(env: &Env) -> rectify::cloud::Cloud {
    rectify::cloud::Cloud::new(
        env.sdk.clone(),
        HOME.to_string(),
        "rectify-remediation".to_string(),
        None,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_region_without_a_detector_gets_one_its_id_is_recorded_and_undo_deletes_exactly_it() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    // What must survive: the detector of another region.
    guardduty(&sdk, OTHER_REGION)
        .create_detector()
        .enable(false)
        .send()
        .await
        .unwrap();
    let elsewhere = detectors(&sdk, OTHER_REGION).await;

    env.enforce("guardduty-enabled").await;
    env.send(&account_event(&acct, REGION)).await;
    env.drain().await;
    let jobs = env.jobs_of("guardduty-enabled").await;
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    let job = &jobs[0];
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["guardduty"], json!({"detectors": []}));
    let made = detectors(&sdk, REGION).await;
    assert_eq!(made.len(), 1, "{made:?}");
    let (id, status, _) = &made[0];
    assert_eq!(status, "ENABLED");
    assert_eq!(
        job["created"],
        json!([{"action": 0, "kind": "guardduty:CreateDetector", "id": id}])
    );
    assert_eq!(
        job["inverse"],
        json!([{"kind": "guardduty:DeleteDetector", "account_id": acct, "detector_id": id}])
    );
    let job_id = job["id"].as_str().unwrap();
    let records = records_of(&env, job_id).await;
    assert!(
        records.iter().any(|r| r["created"][0]["id"] == id.as_str()),
        "the audit record names the detector: {records:#?}"
    );
    assert_eq!(detectors(&sdk, OTHER_REGION).await, elsewhere);
    let shown = env.ok(&["jobs", "show", job_id]).await;
    assert!(
        shown.contains(&format!("+ {id} by action 1 (guardduty:CreateDetector)")),
        "{shown}"
    );

    env.undo(job_id).await;
    assert!(detectors(&sdk, REGION).await.is_empty());
    assert_eq!(detectors(&sdk, OTHER_REGION).await, elsewhere);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_detector_is_only_enabled_and_undo_disables_it_again() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let gd = guardduty(&sdk, REGION);
    gd.create_detector()
        .enable(false)
        .finding_publishing_frequency(aws_sdk_guardduty::types::FindingPublishingFrequency::OneHour)
        .send()
        .await
        .unwrap();
    let before = detectors(&sdk, REGION).await;
    let (id, _, frequency) = before[0].clone();
    assert_eq!(frequency, "ONE_HOUR");

    env.enforce("guardduty-enabled").await;
    // Security Hub names the account `AWS::::Account:<id>` and the control GuardDuty.1 only.
    env.send(&control_finding(
        &acct,
        REGION,
        "GuardDuty.1",
        "AwsAccount",
        &format!("AWS::::Account:{acct}"),
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&acct).await;
    assert_eq!(job["remediation"], "guardduty-enabled");
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(
        job["plan"]["actions"],
        json!([{"kind": "guardduty:UpdateDetector", "account_id": acct, "detector_id": id, "enable": true}])
    );
    assert!(job.get("created").is_none(), "nothing is created: {job:#}");
    // Enabled, the same one detector, its finding frequency kept.
    assert_eq!(
        detectors(&sdk, REGION).await,
        [(id.clone(), "ENABLED".to_string(), frequency.clone())]
    );

    env.undo(job["id"].as_str().unwrap()).await;
    assert_eq!(detectors(&sdk, REGION).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_dry_run_no_detector_is_created_and_without_its_recorded_id_undo_deletes_nothing() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    // Not set: the manifest's default mode, dry-run.
    env.send(&account_event(&acct, REGION)).await;
    env.drain().await;
    let job = env.job_for(&acct).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    assert_eq!(job["mode"], "dry-run");
    assert_eq!(
        job["plan"]["actions"],
        json!([{"kind": "guardduty:CreateDetector", "account_id": acct}])
    );
    assert!(detectors(&sdk, REGION).await.is_empty());

    // Enforced in another region; then the job's record of what it created is lost.
    env.enforce("guardduty-enabled").await;
    env.send(&account_event(&acct, OTHER_REGION)).await;
    env.drain().await;
    let job = env
        .jobs_of("guardduty-enabled")
        .await
        .into_iter()
        .find(|j| j["region"] == OTHER_REGION)
        .expect("a job in the other region");
    assert_eq!(job["status"], "applied", "{job:#}");
    let id = job["id"].as_str().unwrap();
    remove_job_attribute(&env, id, "created").await;
    let run = env
        .run(&["jobs", "undo", id, "--by", "auditor", "--reason", "r"])
        .await;
    assert_eq!(run.code, 2, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("did not record") && run.stderr.contains("guardduty:CreateDetector"),
        "{}",
        run.stderr
    );
    assert_eq!(detectors(&sdk, OTHER_REGION).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creating_call_repeated_with_the_jobs_token_gets_the_same_resource_back() {
    let env = Env::new().await;
    let acct = fresh_account(&env).await;
    let sdk = env.account(&acct).await;
    let cloud = cloud(&env);
    // A worker killed after its call reached AWS runs the job's action again: same token.
    let create = Action::CreateDetector {
        account_id: acct.clone(),
    };
    let token = client_token("job-1", 0, &create);
    let first = apply(&cloud, &acct, REGION, &create, &token).await.unwrap();
    let again = apply(&cloud, &acct, REGION, &create, &token).await.unwrap();
    let Applied::Created(id) = &first else {
        panic!("{first:?}")
    };
    assert_eq!(again, first);
    assert_eq!(detectors(&sdk, REGION).await.len(), 1);
    assert_eq!(&detectors(&sdk, REGION).await[0].0, id);
    // Another job's call does not get it: GuardDuty holds one detector per region.
    let other = client_token("job-2", 0, &create);
    assert!(apply(&cloud, &acct, REGION, &create, &other).await.is_err());
    assert_eq!(detectors(&sdk, REGION).await.len(), 1);

    let ec2 = aws_sdk_ec2::Client::new(&env.sdk);
    let vpc = new_vpc(&ec2, "10.41.0.0/16").await;
    let group = log_group();
    let flow = Action::CreateFlowLogs {
        vpc_id: vpc.clone(),
        traffic_type: TrafficType::Reject,
        log_group: group,
        deliver_logs_role_arn: ROLE.into(),
    };
    let token = client_token("job-3", 0, &flow);
    let first = apply(&cloud, HOME, REGION, &flow, &token).await.unwrap();
    let again = apply(&cloud, HOME, REGION, &flow, &token).await.unwrap();
    assert!(matches!(first, Applied::Created(_)), "{first:?}");
    assert_eq!(again, first);
    assert_eq!(flow_logs(&ec2, &vpc).await.len(), 1);
    // The sweep lists VPCs.
    let listed = rectify::resource::enumerate(&cloud, HOME, REGION, "AWS::EC2::VPC")
        .await
        .unwrap();
    assert!(listed.contains(&vpc), "{listed:?}");
}

async fn new_vpc(ec2: &aws_sdk_ec2::Client, cidr: &str) -> String {
    ec2.create_vpc()
        .cidr_block(cidr)
        .send()
        .await
        .unwrap()
        .vpc()
        .unwrap()
        .vpc_id()
        .unwrap()
        .to_string()
}

/// A log group name of its own (AWS, like moto, accepts a flow log to a group not created yet).
fn log_group() -> String {
    format!("/vpc/{}", unique("flow"))
}

/// A VPC's own flow logs: (id, traffic type, log group, role).
async fn flow_logs(
    ec2: &aws_sdk_ec2::Client,
    resource: &str,
) -> Vec<(String, String, String, String)> {
    let out = ec2
        .describe_flow_logs()
        .filter(
            aws_sdk_ec2::types::Filter::builder()
                .name("resource-id")
                .values(resource)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut all: Vec<_> = out
        .flow_logs()
        .iter()
        .map(|f| {
            (
                f.flow_log_id().unwrap_or_default().to_string(),
                f.traffic_type()
                    .map(|t| t.as_str().to_string())
                    .unwrap_or_default(),
                f.log_group_name().unwrap_or_default().to_string(),
                f.deliver_logs_permission_arn()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

async fn create_flow_log(
    ec2: &aws_sdk_ec2::Client,
    kind: aws_sdk_ec2::types::FlowLogsResourceType,
    resource: &str,
    group: &str,
) {
    ec2.create_flow_logs()
        .resource_type(kind)
        .resource_ids(resource)
        .traffic_type(aws_sdk_ec2::types::TrafficType::All)
        .log_group_name(group)
        .deliver_logs_permission_arn(ROLE)
        .send()
        .await
        .unwrap();
}

async fn set_flow_log_params(env: &Env, group: &str) {
    env.param("vpc-flow-logs-on", &format!("log_group={group}"))
        .await;
    env.param("vpc-flow-logs-on", &format!("deliver_logs_role_arn={ROLE}"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vpc_without_a_flow_log_gets_one_its_id_is_recorded_and_undo_deletes_only_it() {
    let env = Env::new().await;
    let ec2 = aws_sdk_ec2::Client::new(&env.sdk);
    let vpc = new_vpc(&ec2, "10.42.0.0/16").await;
    let group = log_group();
    // What must survive: a flow log of a subnet of the VPC, and another VPC's, to the same group.
    let subnet = ec2
        .create_subnet()
        .vpc_id(&vpc)
        .cidr_block("10.42.1.0/24")
        .send()
        .await
        .unwrap()
        .subnet()
        .unwrap()
        .subnet_id()
        .unwrap()
        .to_string();
    use aws_sdk_ec2::types::FlowLogsResourceType;
    create_flow_log(&ec2, FlowLogsResourceType::Subnet, &subnet, &group).await;
    let neighbour = new_vpc(&ec2, "10.43.0.0/16").await;
    create_flow_log(&ec2, FlowLogsResourceType::Vpc, &neighbour, &group).await;
    let kept = (
        flow_logs(&ec2, &subnet).await,
        flow_logs(&ec2, &neighbour).await,
    );
    assert_eq!((kept.0.len(), kept.1.len()), (1, 1));

    set_flow_log_params(&env, &group).await;
    env.enforce("vpc-flow-logs-on").await;
    env.send(&config_event(HOME, FLOW_LOGS_RULE, "AWS::EC2::VPC", &vpc))
        .await;
    env.drain().await;
    let job = env.job_for(&vpc).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["flow_logs"], json!([]));
    let made = flow_logs(&ec2, &vpc).await;
    assert_eq!(made.len(), 1, "{made:?}");
    let (id, traffic, made_group, role) = &made[0];
    assert_eq!(
        (traffic.as_str(), made_group.as_str(), role.as_str()),
        ("REJECT", group.as_str(), ROLE)
    );
    assert_eq!(
        job["created"],
        json!([{"action": 0, "kind": "ec2:CreateFlowLogs", "id": id}])
    );
    assert_eq!(
        job["inverse"],
        json!([{"kind": "ec2:DeleteFlowLogs", "vpc_id": vpc, "flow_log_id": id}])
    );
    assert_eq!(job["after"]["flow_logs"][0]["flow_log_id"], id.as_str());
    let job_id = job["id"].as_str().unwrap();
    assert!(
        records_of(&env, job_id)
            .await
            .iter()
            .any(|r| r["created"][0]["id"] == id.as_str()),
        "the audit record names the flow log"
    );

    env.undo(job_id).await;
    assert!(flow_logs(&ec2, &vpc).await.is_empty());
    assert_eq!(
        (
            flow_logs(&ec2, &subnet).await,
            flow_logs(&ec2, &neighbour).await
        ),
        kept
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_log_needs_its_parameters_dry_run_changes_nothing_and_an_active_one_is_compliant() {
    let env = Env::new().await;
    let ec2 = aws_sdk_ec2::Client::new(&env.sdk);
    let group = log_group();

    // No log group or role set: needs-parameter, in the default mode, and nothing is created.
    let bare = new_vpc(&ec2, "10.44.0.0/16").await;
    env.send(&config_event(HOME, FLOW_LOGS_RULE, "AWS::EC2::VPC", &bare))
        .await;
    env.drain().await;
    let job = env.job_for(&bare).await;
    assert_eq!(job["status"], "needs-parameter", "{job:#}");
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.contains("log_group") && reason.contains("deliver_logs_role_arn"),
        "{reason}"
    );
    assert!(flow_logs(&ec2, &bare).await.is_empty());

    // With them, in dry-run (the manifest's default): planned, nothing created.
    set_flow_log_params(&env, &group).await;
    env.param("vpc-flow-logs-on", "traffic_type=ALL").await;
    let planned = new_vpc(&ec2, "10.45.0.0/16").await;
    env.send(&config_event(
        HOME,
        FLOW_LOGS_RULE,
        "AWS::EC2::VPC",
        &planned,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&planned).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    assert_eq!(job["mode"], "dry-run");
    assert_eq!(
        job["plan"]["actions"],
        json!([{"kind": "ec2:CreateFlowLogs", "vpc_id": planned, "traffic_type": "ALL",
                "log_group": group, "deliver_logs_role_arn": ROLE}])
    );
    assert!(flow_logs(&ec2, &planned).await.is_empty());

    // A VPC with an active flow log is compliant: enforced, it keeps its one flow log.
    let logged = new_vpc(&ec2, "10.46.0.0/16").await;
    create_flow_log(
        &ec2,
        aws_sdk_ec2::types::FlowLogsResourceType::Vpc,
        &logged,
        &group,
    )
    .await;
    let before = flow_logs(&ec2, &logged).await;
    env.enforce("vpc-flow-logs-on").await;
    // As Security Hub reports it: control EC2.6, the VPC by its ARN.
    env.send(&control_finding(
        HOME,
        REGION,
        "EC2.6",
        "AwsEc2Vpc",
        &format!("arn:aws:ec2:{REGION}:{HOME}:vpc/{logged}"),
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&logged).await;
    assert_eq!(job["remediation"], "vpc-flow-logs-on");
    assert_eq!(job["status"], "no-op", "{job:#}");
    assert_eq!(flow_logs(&ec2, &logged).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_catalog_runs_their_cases_and_grants_creation_to_the_worker_and_deletion_to_the_operator()
 {
    let env = Env::new().await;
    let deletes: &[&str] = &["guardduty:DeleteDetector", "ec2:DeleteFlowLogs"];
    let worker: &[&str] = &[
        "guardduty:CreateDetector",
        "guardduty:UpdateDetector",
        "ec2:CreateFlowLogs",
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
        "ec2:DescribeFlowLogs",
    ];
    let operator: &[&str] = &[
        "guardduty:DeleteDetector",
        "ec2:DeleteFlowLogs",
        "guardduty:UpdateDetector",
    ];
    let creates: &[&str] = &[
        "guardduty:CreateDetector",
        "ec2:CreateFlowLogs",
        "iam:PassRole",
    ];
    check_catalog(
        &env,
        &["guardduty-enabled", "vpc-flow-logs-on"],
        &[("worker", worker, deletes), ("operator", operator, creates)],
    )
    .await;
}
