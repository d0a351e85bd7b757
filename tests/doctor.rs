//! `rectify doctor` against moto: one line per check (queues, tables, the allow-list, the member
//! role in each allowed account and its permissions, by IAM policy simulation), exit 1 when any
//! fails.

mod support;

use aws_config::SdkConfig;
use support::*;

/// Creates the member role `name` in the account `sdk` acts in, allowing `actions`.
async fn role(sdk: &SdkConfig, name: &str, actions: &str) {
    let iam = aws_sdk_iam::Client::new(sdk);
    iam.create_role()
        .role_name(name)
        .assume_role_policy_document(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#,
        )
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name(name)
        .policy_name("rectify")
        .policy_document(format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{actions},"Resource":"*"}}]}}"#
        ))
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_a_whole_deployment_with_one_line_per_check() {
    let env = Env::new().await;
    let name = unique("doctor-ok");
    role(&env.sdk, &name, r#""*""#).await;
    role(&env.account(MEMBER).await, &name, r#""*""#).await;
    let out = env.ok(&["doctor", "--role-name", &name]).await;
    for line in [
        format!("ok    event queue {}-events: 0 messages", env.prefix),
        format!(
            "ok    dead-letter queue {}-events-dlq: 0 messages",
            env.prefix
        ),
        format!("ok    control queue {}-control: ", env.prefix),
        format!("ok    settings table {}-settings: active", env.prefix),
        format!("ok    jobs table {}-jobs: active", env.prefix),
        format!("ok    audit table {}-audit: active", env.prefix),
        "ok    allow-list: 2 account(s): ".to_string(),
        format!("ok    assume arn:aws:iam::{HOME}:role/{name}: sts:GetCallerIdentity as "),
        format!("ok    assume arn:aws:iam::{MEMBER}:role/{name}: "),
        format!("ok    permissions of arn:aws:iam::{MEMBER}:role/{name}: "),
        format!("ok    permissions of arn:aws:iam::{HOME}:role/{name}: "),
    ] {
        assert!(out.contains(&line), "{line:?} not in:\n{out}");
    }
    assert!(!out.contains("FAIL"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_fails_on_a_role_that_lacks_what_the_catalog_needs() {
    let env = Env::new().await;
    let name = unique("doctor-narrow");
    role(&env.sdk, &name, r#""*""#).await;
    role(&env.account(MEMBER).await, &name, r#"["s3:*"]"#).await;
    let r = env.run(&["doctor", "--role-name", &name]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let line = r
        .stdout
        .lines()
        .find(|l| l.contains(&format!("permissions of arn:aws:iam::{MEMBER}:role/{name}")))
        .unwrap_or_else(|| panic!("no permissions line:\n{}", r.stdout));
    assert!(line.starts_with("FAIL  "), "{line}");
    assert!(
        line.contains("ec2:RevokeSecurityGroupIngress (implicitDeny)"),
        "{line}"
    );
    assert!(!line.contains("s3:PutBucketPublicAccessBlock"), "{line}");
    assert!(
        r.stdout.contains(&format!(
            "ok    permissions of arn:aws:iam::{HOME}:role/{name}: "
        )),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("1 of 11 checks failed"), "{}", r.stderr);

    // Where the simulation cannot run (here: no such role to simulate), the check says so and
    // does not fail.
    let missing = unique("doctor-none");
    let r = env.run(&["doctor", "--role-name", &missing]).await;
    assert_eq!(r.code, 0, "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "skip  permissions of arn:aws:iam::{MEMBER}:role/{missing}: not checked: IAM policy simulation is not available"
        )),
        "{}",
        r.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_missing_tables_and_queues_and_an_empty_allow_list() {
    let env = Env::bare().await;
    aws_sdk_dynamodb::Client::new(&env.sdk)
        .delete_table()
        .table_name(format!("{}-jobs", env.prefix))
        .send()
        .await
        .unwrap();
    let dlq = env.queue_url(true).await;
    env.sqs()
        .delete_queue()
        .queue_url(dlq)
        .send()
        .await
        .unwrap();
    let r = env.run(&["doctor"]).await;
    assert_eq!(r.code, 1, "{}\n{}", r.stdout, r.stderr);
    let bootstrap = format!("missing (run `rectify bootstrap --prefix {}`)", env.prefix);
    for line in [
        format!("FAIL  jobs table {}-jobs: {bootstrap}", env.prefix),
        format!(
            "FAIL  dead-letter queue {}-events-dlq: {bootstrap}",
            env.prefix
        ),
        format!("ok    event queue {}-events: ", env.prefix),
        format!("ok    settings table {}-settings: active", env.prefix),
        "FAIL  allow-list: allows no account".to_string(),
    ] {
        assert!(r.stdout.contains(&line), "{line:?} not in:\n{}", r.stdout);
    }
    assert!(r.stderr.contains("3 of 7 checks failed"), "{}", r.stderr);
}
