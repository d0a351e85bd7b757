//! Security Hub both ways against moto: ASFF and OCSF findings in, the job's outcome written
//! back to the finding (BatchUpdateFindings, BatchUpdateFindingsV2, added to moto by
//! scripts/moto_server.py) and read back with GetFindings.

mod support;

use serde_json::{Value, json};
use support::*;

/// A finding (ASFF) that a home-account bucket does not block public access, with a fresh id.
fn asff(bucket: &str) -> Value {
    let id = format!(
        "arn:aws:securityhub:{REGION}:{HOME}:security-control/S3.8/finding/{}",
        uuid::Uuid::new_v4()
    );
    json!({
        "SchemaVersion": "2018-10-08",
        "Id": id,
        "ProductArn": format!("arn:aws:securityhub:{REGION}::product/aws/securityhub"),
        "GeneratorId": "security-control/S3.8",
        "AwsAccountId": HOME,
        "Region": REGION,
        "Types": ["Software and Configuration Checks/Industry and Regulatory Standards"],
        "CreatedAt": "2026-11-30T10:00:00.000Z",
        "UpdatedAt": "2026-11-30T10:00:00.000Z",
        "Severity": {"Label": "HIGH"},
        "Title": "S3 general purpose buckets should block public access",
        "Description": "This control checks whether an S3 general purpose bucket blocks public access at the bucket level.",
        "Resources": [{"Type": "AwsS3Bucket", "Id": format!("arn:aws:s3:::{bucket}"), "Partition": "aws", "Region": REGION}],
        "Compliance": {"Status": "FAILED", "SecurityControlId": "S3.8"},
        "Workflow": {"Status": "NEW"},
        "RecordState": "ACTIVE"
    })
}

/// The EventBridge event Security Hub CSPM sends for `finding`.
fn asff_event(finding: &Value) -> String {
    json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Security Hub Findings - Imported", "source": "aws.securityhub",
        "account": HOME, "time": "2026-11-30T10:00:05Z", "region": REGION,
        "resources": [], "detail": {"findings": [finding]}
    })
    .to_string()
}

/// The same control result as Security Hub (OCSF) sends it.
fn ocsf_event(finding: &Value) -> String {
    let bucket = finding["Resources"][0]["Id"].clone();
    json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Findings Imported V2", "source": "aws.securityhub",
        "account": HOME, "time": "2026-11-30T10:00:05Z", "region": REGION,
        "resources": [], "detail": {"findings": [{
            "class_uid": 2003, "class_name": "Compliance Finding", "category_uid": 2,
            "activity_id": 1, "type_uid": 200301,
            "cloud": {"account": {"uid": HOME, "type": "AWS Account"}, "provider": "AWS", "region": REGION},
            "compliance": {"control": "S3.8", "status": "Fail", "status_id": 3},
            "finding_info": {"uid": finding["Id"], "title": finding["Title"],
                             "modified_time_dt": finding["UpdatedAt"]},
            "metadata": {"product": {"name": "Security Hub", "vendor_name": "AWS",
                                     "uid": format!("arn:aws:securityhub:{REGION}::productv2/aws/securityhub")},
                         "uid": finding["Id"], "version": "1.6.0"},
            "resources": [{"type": "AwsS3Bucket", "uid": bucket, "region": REGION,
                           "cloud_partition": "aws"}],
            "severity_id": 4, "status": "New", "status_id": 1,
            "time_dt": finding["UpdatedAt"]
        }]}
    })
    .to_string()
}

/// What the console sends when an operator chooses "Remediate with rectify" on `finding`.
fn custom_action(finding: &Value) -> Value {
    json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Security Hub Findings - Custom Action", "source": "aws.securityhub",
        "account": HOME, "time": "2026-11-30T10:05:00Z", "region": REGION,
        "resources": [format!("arn:aws:securityhub:{REGION}:{HOME}:action/custom/RectifyRemediate")],
        "detail": {"actionName": "Remediate with rectify",
                   "actionDescription": "Run rectify on this finding now",
                   "findings": [finding]}
    })
}

fn hub(env: &Env) -> aws_sdk_securityhub::Client {
    aws_sdk_securityhub::Client::new(&env.sdk)
}

/// Imports `finding` into the local Security Hub, as Security Hub holds its own findings.
async fn import(env: &Env, finding: &Value) {
    let finding: aws_sdk_securityhub::types::AwsSecurityFinding = sdk_finding(finding);
    let out = hub(env)
        .batch_import_findings()
        .findings(finding)
        .send()
        .await
        .unwrap();
    assert_eq!(out.failed_count(), Some(0));
}

/// An SDK finding with the fields the import needs, from the test's JSON.
fn sdk_finding(f: &Value) -> aws_sdk_securityhub::types::AwsSecurityFinding {
    use aws_sdk_securityhub::types::{
        AwsSecurityFinding, Compliance, ComplianceStatus, Resource, Severity, SeverityLabel,
        Workflow, WorkflowStatus,
    };
    let text = |v: &Value| v.as_str().unwrap().to_string();
    AwsSecurityFinding::builder()
        .schema_version(text(&f["SchemaVersion"]))
        .id(text(&f["Id"]))
        .product_arn(text(&f["ProductArn"]))
        .generator_id(text(&f["GeneratorId"]))
        .aws_account_id(text(&f["AwsAccountId"]))
        .region(text(&f["Region"]))
        .types(text(&f["Types"][0]))
        .created_at(text(&f["CreatedAt"]))
        .updated_at(text(&f["UpdatedAt"]))
        .severity(Severity::builder().label(SeverityLabel::High).build())
        .title(text(&f["Title"]))
        .description(text(&f["Description"]))
        .resources(
            Resource::builder()
                .r#type("AwsS3Bucket")
                .id(text(&f["Resources"][0]["Id"]))
                .partition(aws_sdk_securityhub::types::Partition::Aws)
                .region(REGION)
                .build(),
        )
        .compliance(
            Compliance::builder()
                .status(ComplianceStatus::Failed)
                .security_control_id("S3.8")
                .build(),
        )
        .workflow(Workflow::builder().status(WorkflowStatus::New).build())
        .build()
}

/// The finding as Security Hub now holds it: (workflow status, note text, note author).
async fn stored(env: &Env, id: &str) -> (String, String, String) {
    let out = hub(env).get_findings().send().await.unwrap();
    let f = out
        .findings()
        .iter()
        .find(|f| f.id() == Some(id))
        .unwrap_or_else(|| panic!("finding {id} is not in Security Hub"));
    let status = f
        .workflow()
        .and_then(|w| w.status())
        .map_or_else(String::new, |s| s.as_str().to_string());
    let note = f.note();
    (
        status,
        note.and_then(|n| n.text()).unwrap_or_default().to_string(),
        note.and_then(|n| n.updated_by())
            .unwrap_or_default()
            .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_asff_finding_is_notified_when_planned_and_resolved_when_fixed() {
    let env = Env::new().await;
    let bucket = env.bucket("hub-asff").await;
    let finding = asff(&bucket);
    let id = finding["Id"].as_str().unwrap().to_string();
    import(&env, &finding).await;
    assert_eq!(stored(&env, &id).await.0, "NEW");

    // Dry-run (the manifest's default): the plan is recorded and the finding says so.
    env.send(&asff_event(&finding)).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    let job_id = job["id"].as_str().unwrap();
    let (status, note, by) = stored(&env, &id).await;
    assert_eq!(status, "NOTIFIED");
    assert_eq!(by, "rectify");
    assert!(note.contains(job_id) && note.contains("dry-run"), "{note}");
    assert!(note.contains("rectify jobs retry"), "{note}");
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);

    // Enforced: the same evaluation delivered again is fixed, verified, and resolved.
    env.enforce("s3-block-public-access").await;
    env.send(&asff_event(&finding)).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["id"], job_id, "one evaluation, one job");
    let (status, note, _) = stored(&env, &id).await;
    assert_eq!(status, "RESOLVED");
    assert!(
        note.contains("fixed and verified") && note.contains(job_id),
        "{note}"
    );
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_back_imported_again_runs_nothing_again() {
    let env = Env::new().await;
    let bucket = env.bucket("hub-echo").await;
    let finding = asff(&bucket);
    let id = finding["Id"].as_str().unwrap().to_string();
    import(&env, &finding).await;
    env.send(&asff_event(&finding)).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    let (status, note, by) = stored(&env, &id).await;
    assert_eq!((status.as_str(), by.as_str()), ("NOTIFIED", "rectify"));

    // Security Hub imports the write-back as an update of the finding, its UpdatedAt
    // unchanged, in both forms. A dry-run job would run again on each, and write again.
    let mut echoed = finding.clone();
    echoed["Workflow"] = json!({"Status": "NOTIFIED"});
    echoed["Note"] =
        json!({"Text": note, "UpdatedBy": "rectify", "UpdatedAt": "2026-11-30T10:00:09.000Z"});
    let mut ocsf: Value = serde_json::from_str(&ocsf_event(&finding)).unwrap();
    ocsf["detail"]["findings"][0]["status_id"] = json!(2);
    ocsf["detail"]["findings"][0]["comment"] = json!(note);
    env.send(&asff_event(&echoed)).await;
    env.send(&ocsf.to_string()).await;
    env.drain_all().await;
    let again = env.job_for(&bucket).await;
    assert_eq!(again["status"], "planned", "{again:#}");
    assert_eq!(again["attempts"], 1, "the job ran again: {again:#}");
    let records = env.json(&["audit", "list", "--resource", &bucket]).await;
    assert_eq!(records.as_array().unwrap().len(), 1, "{records:#}");

    // A person choosing "Remediate with rectify" on that finding runs it again.
    env.send(&custom_action(&echoed).to_string()).await;
    env.drain().await;
    assert_eq!(env.job_for(&bucket).await["attempts"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ocsf_finding_waits_for_approval_then_resolves_and_its_asff_copy_is_the_same_job() {
    let env = Env::new().await;
    let bucket = env.bucket("hub-ocsf").await;
    let finding = asff(&bucket);
    let id = finding["Id"].as_str().unwrap().to_string();
    import(&env, &finding).await;
    env.approval("s3-block-public-access").await;

    // The OCSF event and the ASFF event of one control result: one job.
    env.send(&ocsf_event(&finding)).await;
    env.send(&asff_event(&finding)).await;
    env.drain_all().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    let job_id = job["id"].as_str().unwrap().to_string();
    let (status, note, _) = stored(&env, &id).await;
    assert_eq!(status, "NOTIFIED");
    assert!(
        note.contains(&format!("rectify jobs approve {job_id}")),
        "{note}"
    );

    env.ok(&["jobs", "approve", &job_id, "--by", "alice"]).await;
    env.drain_all().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    let (status, note, _) = stored(&env, &id).await;
    assert_eq!(status, "RESOLVED");
    assert!(note.contains("approved by"), "{note}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_back_never_repeats_the_fix_and_is_tried_once_more() {
    let env = Env::new().await;
    let bucket = env.bucket("hub-retry").await;
    let finding = asff(&bucket);
    let id = finding["Id"].as_str().unwrap().to_string();
    env.enforce("s3-block-public-access").await;

    // Security Hub does not hold the finding (yet): the update fails, the fix stands.
    env.send(&asff_event(&finding)).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["hub_retry"], true, "{job:#}");
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
    let records = |audit: Vec<Value>| {
        audit
            .into_iter()
            .filter(|r| r["job_id"] == job["id"])
            .count()
    };
    let before = records(env.audit().await);

    // The next delivery writes it; the job is not run again.
    import(&env, &finding).await;
    env.send(&asff_event(&finding)).await;
    env.drain().await;
    assert_eq!(stored(&env, &id).await.0, "RESOLVED");
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "applied");
    assert_eq!(job["hub_retry"], false, "{job:#}");
    assert_eq!(
        records(env.audit().await),
        before,
        "nothing was applied again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_back_can_be_switched_off_per_remediation() {
    let env = Env::new().await;
    let bucket = env.bucket("hub-off").await;
    let finding = asff(&bucket);
    let id = finding["Id"].as_str().unwrap().to_string();
    import(&env, &finding).await;
    env.ok(&[
        "settings",
        "set",
        "s3-block-public-access",
        "--securityhub-updates",
        "off",
        "--by",
        "test",
    ])
    .await;
    env.send(&asff_event(&finding)).await;
    env.drain().await;
    assert_eq!(env.job_for(&bucket).await["status"], "planned");
    let (status, note, _) = stored(&env, &id).await;
    assert_eq!((status.as_str(), note.as_str()), ("NEW", ""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remediate_with_rectify_goes_through_the_gates_and_approves_nothing() {
    let env = Env::new().await;
    let bucket = env.bucket("hub-action").await;
    let finding = asff(&bucket);
    import(&env, &finding).await;
    env.approval("s3-block-public-access").await;
    let action = custom_action(&finding);
    env.send(&action.to_string()).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    assert_eq!(job["approved_by"], Value::Null);
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
    let id = finding["Id"].as_str().unwrap();
    assert_eq!(stored(&env, id).await.0, "NOTIFIED");

    // Paused, an enforced remediation changes nothing either.
    env.enforce("s3-block-public-access").await;
    env.ok(&["pause", "--reason", "change freeze", "--by", "test"])
        .await;
    let other = env.bucket("hub-action-paused").await;
    let mut paused = action.clone();
    paused["detail"]["findings"] = json!([asff(&other)]);
    env.send(&paused.to_string()).await;
    env.drain().await;
    let job = env.job_for(&other).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    assert!(
        job["reason"].as_str().unwrap().contains("paused by test"),
        "{job:#}"
    );
    assert_eq!(public_access_block(&env.sdk, &other).await, None);
}
