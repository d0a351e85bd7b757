//! `s3-bucket-require-tls` end to end against moto: enforce appends one TLS deny to the bucket
//! policy and keeps every existing statement byte for byte (and the bucket's tags and Public
//! Access Block); dry-run changes nothing; undo puts the old policy back byte for byte, or
//! deletes the policy the fix created; only remediations that may put a bucket policy read it.

mod support;

use serde_json::Value;
use support::*;

const RULE: &str = "s3-bucket-ssl-requests-only";
const NAME: &str = "s3-bucket-require-tls";

/// A policy in its owner's layout: indentation, spacing and key order that re-encoding would
/// change.
fn owners_policy(bucket: &str) -> String {
    format!(
        "{{\n  \"Version\": \"2012-10-17\",\n  \"Id\": \"owners\",\n  \"Statement\": [\n    {{\"Sid\":\"Read\", \"Effect\": \"Allow\",\"Principal\":{{\"AWS\":\"arn:aws:iam::{HOME}:root\"}},\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::{bucket}/*\"}},\n    {{ \"Effect\" : \"Deny\", \"Principal\": \"*\", \"Action\": \"s3:DeleteBucket\", \"Resource\": \"arn:aws:s3:::{bucket}\" }}\n  ]\n}}\n"
    )
}

async fn put_policy(env: &Env, bucket: &str, policy: &str) {
    aws_sdk_s3::Client::new(&env.sdk)
        .put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .unwrap();
}

/// The bucket's policy text as moto holds it, or None when it has none.
async fn policy(env: &Env, bucket: &str) -> Option<String> {
    match aws_sdk_s3::Client::new(&env.sdk)
        .get_bucket_policy()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) => Some(out.policy().unwrap().to_string()),
        Err(e) => {
            let e = e.into_service_error();
            assert_eq!(e.meta().code(), Some("NoSuchBucketPolicy"), "{e:?}");
            None
        }
    }
}

async fn tags(env: &Env, bucket: &str) -> Vec<(String, String)> {
    aws_sdk_s3::Client::new(&env.sdk)
        .get_bucket_tagging()
        .bucket(bucket)
        .send()
        .await
        .unwrap()
        .tag_set()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect()
}

async fn send(env: &Env, bucket: &str) {
    env.send(&config_event(HOME, RULE, "AWS::S3::Bucket", bucket))
        .await;
    env.drain().await;
}

/// The jobs of one remediation for a bucket.
async fn jobs_of(env: &Env, remediation: &str, bucket: &str) -> Vec<Value> {
    env.jobs()
        .await
        .into_iter()
        .filter(|j| j["resource_id"] == bucket && j["remediation"] == remediation)
        .collect()
}

async fn undo(env: &Env, job: &Value) {
    env.ok(&[
        "jobs",
        "undo",
        job["id"].as_str().unwrap(),
        "--by",
        "auditor",
        "--reason",
        "the bucket serves a legacy client",
    ])
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_appends_one_tls_deny_keeping_the_policy_byte_for_byte_and_undo_restores_it() {
    let env = Env::new().await;
    env.enforce(NAME).await;
    let bucket = env.bucket("tls").await;
    let old = owners_policy(&bucket);
    put_policy(&env, &bucket, &old).await;
    tag_exempt(&env.sdk, &bucket, "not an exemption").await;
    block_public_access(&env.sdk, &bucket).await;
    // moto hands the text back as it was put: the test compares bytes with what moto holds.
    assert_eq!(policy(&env, &bucket).await.as_deref(), Some(old.as_str()));

    send(&env, &bucket).await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["policy"], old.as_str());
    assert_eq!(job["inverse"][0]["kind"], "s3:PutBucketPolicy");
    assert_eq!(job["inverse"][0]["policy"], old.as_str());

    let live = policy(&env, &bucket).await.expect("a policy");
    // Every old byte is kept, the old statements first and in order; one statement is added
    // after the last of them.
    let cut = old.rfind("\n  ]").unwrap();
    assert!(live.starts_with(&old[..cut]), "{live}");
    assert!(live.ends_with(&old[cut..]), "{live}");
    assert!(live.len() > old.len());
    let added: Value = serde_json::from_str(&live[cut + 1..live.len() - (old.len() - cut)])
        .unwrap_or_else(|e| panic!("{e}: {live}"));
    rectify::action::policy::tls_deny(&added, &bucket, "aws").unwrap();
    assert_eq!(added["Sid"], "DenyInsecureTransport");
    assert!(
        rectify::action::policy::only_adds_tls_deny(Some(&old), &live, &bucket, REGION).is_ok()
    );
    // What the fix does not touch stays.
    assert_eq!(
        tags(&env, &bucket).await,
        vec![("rectify:exempt".to_string(), "not an exemption".to_string())]
    );
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );

    // A second finding for the fixed bucket changes nothing: the deny is already there.
    send(&env, &bucket).await;
    let jobs = jobs_of(&env, NAME, &bucket).await;
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
    assert!(jobs.iter().any(|j| j["status"] == "no-op"), "{jobs:#?}");
    assert_eq!(policy(&env, &bucket).await.as_deref(), Some(live.as_str()));

    undo(&env, &job).await;
    assert_eq!(
        policy(&env, &bucket).await.as_deref(),
        Some(old.as_str()),
        "undo restores the old policy byte for byte"
    );
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
    let job = env
        .json(&["jobs", "show", job["id"].as_str().unwrap()])
        .await;
    assert_eq!(job["status"], "undone", "{job:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_without_a_policy_gets_one_and_undo_deletes_it() {
    let env = Env::new().await;
    env.enforce(NAME).await;
    let bucket = env.bucket("tls-none").await;
    send(&env, &bucket).await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["policy"], Value::Null);
    assert_eq!(job["inverse"][0]["kind"], "s3:DeleteBucketPolicy");
    let live: Value =
        serde_json::from_str(&policy(&env, &bucket).await.expect("a policy")).unwrap();
    assert_eq!(live["Version"], "2012-10-17");
    let statements = live["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{live:#}");
    rectify::action::policy::tls_deny(&statements[0], &bucket, "aws").unwrap();

    undo(&env, &job).await;
    assert_eq!(
        policy(&env, &bucket).await,
        None,
        "undo deletes the policy it created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_records_the_plan_and_changes_nothing() {
    let env = Env::new().await;
    let with_policy = env.bucket("tls-dry").await;
    let old = owners_policy(&with_policy);
    put_policy(&env, &with_policy, &old).await;
    let without = env.bucket("tls-dry-none").await;
    send(&env, &with_policy).await;
    send(&env, &without).await;
    for bucket in [&with_policy, &without] {
        let job = env.job_for(bucket).await;
        assert_eq!(job["status"], "planned", "{job:#}");
        assert_eq!(job["mode"], "dry-run");
        assert_eq!(job["plan"]["actions"][0]["kind"], "s3:PutBucketPolicy");
    }
    let planned = env.job_for(&with_policy).await["plan"]["actions"][0]["policy"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        rectify::action::policy::only_adds_tls_deny(Some(&old), &planned, &with_policy, REGION)
            .is_ok()
    );
    assert_eq!(
        policy(&env, &with_policy).await.as_deref(),
        Some(old.as_str())
    );
    assert_eq!(policy(&env, &without).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_remediations_that_may_put_the_policy_read_it() {
    let env = Env::new().await;
    let bucket = env.bucket("tls-lazy").await;
    put_policy(&env, &bucket, &owners_policy(&bucket)).await;
    // One after the other: two findings for one bucket at once would meet its lock.
    env.send_bucket_event(&bucket).await;
    env.drain().await;
    send(&env, &bucket).await;
    let public = jobs_of(&env, "s3-block-public-access", &bucket).await;
    let tls = jobs_of(&env, NAME, &bucket).await;
    assert_eq!((public.len(), tls.len()), (1, 1));
    assert!(
        public[0]["before"].get("policy").is_none(),
        "s3-block-public-access read the policy: {:#}",
        public[0]["before"]
    );
    assert_eq!(tls[0]["before"]["policy"], owners_policy(&bucket).as_str());
}
