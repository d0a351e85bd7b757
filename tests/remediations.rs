//! Each remediation end to end against moto: dry-run changes nothing and records the plan;
//! enforce fixes exactly what it should, verifies, and records it; an already compliant
//! resource gives `no-op`; a member account is reached through AssumeRole.

mod support;

use serde_json::Value;
use support::*;

fn statuses(jobs: &[Value]) -> Vec<String> {
    jobs.iter()
        .map(|j| j["status"].as_str().unwrap_or("?").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_dry_run_records_the_plan_then_enforce_blocks_public_access() {
    let env = Env::new().await;
    let bucket = env.bucket("public").await;

    env.send_bucket_event(&bucket).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "planned");
    assert_eq!(job["mode"], "dry-run");
    assert_eq!(job["plan"]["actions"][0]["kind"], "s3:PutPublicAccessBlock");
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        None,
        "dry-run changed the bucket"
    );
    for field in [
        "id",
        "remediation",
        "account",
        "region",
        "resource_id",
        "status",
        "mode",
        "created_at",
    ] {
        assert!(
            job.get(field).is_some_and(|v| !v.is_null()),
            "job JSON lacks {field}: {job}"
        );
    }

    env.enforce("s3-block-public-access").await;
    let id = job["id"].as_str().unwrap();
    env.ok(&["jobs", "retry", id]).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(
        public_access_block(&env.sdk, &bucket).await,
        Some([true; 4])
    );
    assert_eq!(job["before"]["public_access_block"], Value::Null);
    assert_eq!(
        job["after"]["public_access_block"]["restrict_public_buckets"],
        true
    );
    assert_eq!(job["inverse"][0]["kind"], "s3:DeletePublicAccessBlock");

    let audit = env.audit().await;
    let applied: Vec<&Value> = audit
        .iter()
        .filter(|r| r["job_id"] == id && r["outcome"] == "applied")
        .collect();
    assert_eq!(applied.len(), 1, "{audit:#?}");
    let r = applied[0];
    for field in [
        "id",
        "job_id",
        "time",
        "resource_id",
        "outcome",
        "script_sha256",
        "before",
        "plan",
        "after",
        "event_id",
    ] {
        assert!(
            r.get(field).is_some_and(|v| !v.is_null()),
            "audit record lacks {field}: {r}"
        );
    }
    assert!(env.ok(&["audit", "verify"]).await.starts_with("OK"));

    // A new evaluation of a bucket that is now compliant: nothing to do.
    env.send(&config_event(
        HOME,
        "s3-bucket-public-read-prohibited",
        "AWS::S3::Bucket",
        &bucket,
    ))
    .await;
    env.drain().await;
    let jobs: Vec<Value> = env
        .jobs()
        .await
        .into_iter()
        .filter(|j| j["resource_id"] == bucket.as_str())
        .collect();
    let mut s = statuses(&jobs);
    s.sort();
    assert_eq!(s, ["applied", "no-op"]);
    let noop = jobs.iter().find(|j| j["status"] == "no-op").unwrap();
    assert_eq!(noop["reason"], "already compliant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sg_enforce_revokes_only_world_open_ssh() {
    let env = Env::new().await;
    env.enforce("sg-revoke-open-ssh").await;
    let (_, group) = security_group(&env.sdk).await;
    let (_, peer) = security_group(&env.sdk).await;
    let ec2 = aws_sdk_ec2::Client::new(&env.sdk);
    use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, UserIdGroupPair};
    let cidr = |c: &str| IpRange::builder().cidr_ip(c).description("d").build();
    ec2.authorize_security_group_ingress()
        .group_id(&group)
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(cidr("0.0.0.0/0"))
                .ipv6_ranges(Ipv6Range::builder().cidr_ipv6("::/0").build())
                .build(),
        )
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(0)
                .to_port(1024)
                .ip_ranges(cidr("0.0.0.0/0"))
                .build(),
        )
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(cidr("10.0.0.0/8"))
                .build(),
        )
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(443)
                .to_port(443)
                .ip_ranges(cidr("0.0.0.0/0"))
                .build(),
        )
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("udp")
                .from_port(22)
                .to_port(22)
                .ip_ranges(cidr("0.0.0.0/0"))
                .build(),
        )
        .ip_permissions(
            IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(22)
                .to_port(22)
                .user_id_group_pairs(UserIdGroupPair::builder().group_id(&peer).build())
                .build(),
        )
        .send()
        .await
        .unwrap();

    // Security Hub's copy of the rule, inside an SNS envelope.
    env.send(&sns(&config_event(
        HOME,
        "securityhub-restricted-ssh-a1b2c3",
        "AWS::EC2::SecurityGroup",
        &group,
    )))
    .await;
    env.drain().await;

    let job = env.job_for(&group).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(
        job["plan"]["actions"].as_array().unwrap().len(),
        3,
        "{job:#}"
    );
    let left = ingress(&env.sdk, &group).await;
    let want: Vec<(String, i32, i32, String)> = vec![
        ("tcp".into(), 22, 22, "10.0.0.0/8".into()),
        ("tcp".into(), 22, 22, format!("group:{peer}")),
        ("tcp".into(), 443, 443, "0.0.0.0/0".into()),
        ("udp".into(), 22, 22, "0.0.0.0/0".into()),
    ];
    assert_eq!(left, want);
    // The inverse re-authorises exactly what was revoked.
    let inverse = job["inverse"].as_array().unwrap();
    assert_eq!(inverse.len(), 3);
    assert!(
        inverse
            .iter()
            .all(|a| a["kind"] == "ec2:AuthorizeSecurityGroupIngress")
    );
    assert!(inverse.iter().any(|a| a["cidr_ipv6"] == "::/0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn iam_keys_in_use_stay_and_stale_keys_are_deactivated_never_deleted() {
    let env = Env::new().await;
    env.enforce("iam-deactivate-stale-keys").await;
    let (user, user_id) = user_with_keys(&env.sdk, "deployer", 2).await;
    // Config names the user by its unique id; Config's own SNS channel sends the bare detail.
    let detail = config_detail(
        HOME,
        "access-keys-rotated-conformance-pack-x1",
        "AWS::IAM::User",
        &user_id,
        "NON_COMPLIANT",
    );
    env.send(&sns(&detail.to_string())).await;
    env.drain().await;
    let job = env.job_for(&user_id).await;
    assert_eq!(job["status"], "no-op", "{job:#}");
    assert!(
        job["reason"].as_str().unwrap().contains("must rotate"),
        "{job:#}"
    );
    assert!(
        key_statuses(&env.sdk, &user)
            .await
            .iter()
            .all(|s| s == "Active")
    );

    // With a threshold of 0 days every active key is stale (moto cannot back-date a key).
    env.param("iam-deactivate-stale-keys", "max_unused_days=0")
        .await;
    env.send(&unused_credentials(&user_id)).await;
    env.drain().await;
    let jobs: Vec<Value> = env
        .jobs()
        .await
        .into_iter()
        .filter(|j| j["status"] == "applied")
        .collect();
    assert_eq!(jobs.len(), 1, "{jobs:#?}");
    assert_eq!(
        key_statuses(&env.sdk, &user).await,
        ["Inactive", "Inactive"],
        "keys must never be deleted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vpce_needs_its_parameter_then_gets_the_organization_condition() {
    let env = Env::new().await;
    env.enforce("vpce-restrict-policy").await;
    let (vpc, _) = security_group(&env.sdk).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::acme/*"},{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"*","Condition":{"StringEquals":{"aws:SourceVpc":"vpc-1"}}}]}"#;
    let ec2 = aws_sdk_ec2::Client::new(&env.sdk);
    let id = vpc_endpoint(&env.sdk, &vpc, policy).await;
    // A custom rule name an operator maps with --trigger.
    env.ok(&[
        "settings",
        "set",
        "vpce-restrict-policy",
        "--trigger",
        "corp-endpoint-guard",
        "--by",
        "test",
    ])
    .await;
    env.send(&config_event(
        HOME,
        "corp-endpoint-guard",
        "AWS::EC2::VPCEndpoint",
        &id,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["status"], "needs-parameter", "{job:#}");
    assert!(job["reason"].as_str().unwrap().contains("organization_id"));
    let read = || async {
        let out = ec2
            .describe_vpc_endpoints()
            .vpc_endpoint_ids(&id)
            .send()
            .await
            .unwrap();
        out.vpc_endpoints()[0]
            .policy_document()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        read().await,
        policy,
        "nothing may change without the parameter"
    );

    env.param("vpce-restrict-policy", "organization_id=o-a1b2c3d4e5")
        .await;
    env.ok(&["jobs", "retry", job["id"].as_str().unwrap()])
        .await;
    env.drain().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    let now: Value = serde_json::from_str(&read().await).unwrap();
    let st = now["Statement"].as_array().unwrap();
    assert_eq!(
        st[0]["Condition"]["StringEquals"]["aws:PrincipalOrgID"],
        "o-a1b2c3d4e5"
    );
    assert_eq!(
        st[0]["Action"],
        serde_json::json!(["s3:GetObject", "s3:PutObject"])
    );
    assert_eq!(st[0]["Resource"], "arn:aws:s3:::acme/*");
    assert_eq!(
        st[1]["Condition"],
        serde_json::json!({"StringEquals": {"aws:SourceVpc": "vpc-1"}}),
        "a conditioned statement is kept"
    );
    // The inverse restores the old document byte for byte.
    assert_eq!(job["inverse"][0]["policy_document"], policy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_account_is_fixed_through_assume_role() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    let member = env.account(MEMBER).await;
    let bucket = unique("member");
    aws_sdk_s3::Client::new(&member)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    env.send(&config_event(
        MEMBER,
        "s3-bucket-public-write-prohibited",
        "AWS::S3::Bucket",
        &bucket,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["account"], MEMBER);
    assert_eq!(public_access_block(&member, &bucket).await, Some([true; 4]));
}

/// A finding from one account that names a bucket of another: every S3 call names the account
/// expected to own the bucket, so AWS refuses it and the other account's bucket is not touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finding_naming_another_accounts_bucket_changes_nothing() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    let bucket = env.bucket("not-the-members").await;
    env.send(&config_event(
        MEMBER,
        "s3-bucket-public-write-prohibited",
        "AWS::S3::Bucket",
        &bucket,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["account"], MEMBER);
    assert_eq!(job["status"], "failed", "{job:#}");
    assert!(
        job["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("AccessDenied"),
        "{job:#}"
    );
    assert_eq!(public_access_block(&env.sdk, &bucket).await, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_that_is_gone_ends_no_op() {
    let env = Env::new().await;
    env.enforce("sg-revoke-open-ssh").await;
    env.send(&config_event(
        HOME,
        "restricted-ssh",
        "AWS::EC2::SecurityGroup",
        "sg-0123456789abcdef0",
    ))
    .await;
    env.drain().await;
    let job = env.job_for("sg-0123456789abcdef0").await;
    assert_eq!(job["status"], "no-op", "{job:#}");
    assert!(
        job["reason"].as_str().unwrap().contains("does not exist"),
        "{job:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing_for_any_kind_and_records_each_plan() {
    let env = Env::new().await;
    env.param("vpce-restrict-policy", "organization_id=o-a1b2c3d4e5")
        .await;
    env.param("iam-deactivate-stale-keys", "max_unused_days=0")
        .await;
    let (vpc, group) = security_group(&env.sdk).await;
    let ec2 = aws_sdk_ec2::Client::new(&env.sdk);
    open_tcp(&env.sdk, &group, 22, 22, "0.0.0.0/0").await;
    let policy =
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}]}"#;
    let endpoint = vpc_endpoint(&env.sdk, &vpc, policy).await;
    let (user, _) = user_with_keys(&env.sdk, "dry", 1).await;
    let rules_before = ingress(&env.sdk, &group).await;

    env.send(&config_event(
        HOME,
        "restricted-ssh",
        "AWS::EC2::SecurityGroup",
        &group,
    ))
    .await;
    env.send(&config_event(
        HOME,
        "my-vpce-policy-check",
        "AWS::EC2::VPCEndpoint",
        &endpoint,
    ))
    .await;
    env.send(&config_event(
        HOME,
        "access-keys-rotated",
        "AWS::IAM::User",
        &user,
    ))
    .await;
    env.drain().await;

    for (resource, kind) in [
        (group.as_str(), "ec2:RevokeSecurityGroupIngress"),
        (endpoint.as_str(), "ec2:ModifyVpcEndpoint"),
        (user.as_str(), "iam:UpdateAccessKey"),
    ] {
        let job = env.job_for(resource).await;
        assert_eq!(job["status"], "planned", "{job:#}");
        assert_eq!(job["mode"], "dry-run");
        assert_eq!(job["plan"]["actions"][0]["kind"], kind, "{job:#}");
        assert!(job["plan_hash"].as_str().is_some_and(|h| h.len() == 64));
    }
    assert_eq!(ingress(&env.sdk, &group).await, rules_before);
    let out = ec2
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(&endpoint)
        .send()
        .await
        .unwrap();
    assert_eq!(out.vpc_endpoints()[0].policy_document(), Some(policy));
    assert_eq!(key_statuses(&env.sdk, &user).await, ["Active"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_switched_off_is_left_alone() {
    let env = Env::new().await;
    env.enforce("s3-block-public-access").await;
    env.ok(&[
        "settings",
        "set",
        "s3-block-public-access",
        "--account",
        MEMBER,
        "--mode",
        "off",
        "--by",
        "test",
    ])
    .await;
    let member = env.account(MEMBER).await;
    let bucket = unique("off");
    aws_sdk_s3::Client::new(&member)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    env.send(&config_event(
        MEMBER,
        "s3-bucket-public-read-prohibited",
        "AWS::S3::Bucket",
        &bucket,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "off", "{job:#}");
    assert_eq!(public_access_block(&member, &bucket).await, None);
    let list = env.json(&["settings", "list"]).await;
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["remediation"] == "s3-block-public-access" && r["scope"] == MEMBER)
        .cloned()
        .unwrap();
    assert_eq!(row["mode"], "off");
    assert_eq!(row["mode_source"], "account");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fix_that_does_not_hold_is_failed_verify_never_success() {
    let env = Env::new().await;
    // A remediation whose plan never comes out empty, so the re-plan after applying fails.
    let dir = std::env::temp_dir().join(unique("never-satisfied"));
    let folder = dir.join("pab-never-satisfied");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("remediation.toml"),
        "name = \"pab-never-satisfied\"\ndescription = \"test\"\nresource_type = \"AWS::S3::Bucket\"\n\
         default_mode = \"enforce\"\nactions = [\"s3:PutPublicAccessBlock\"]\n[triggers]\nrules = [\"test-never-satisfied\"]\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("plan.rhai"),
        "fn plan(r, p) { [#{kind: \"s3:PutPublicAccessBlock\", bucket: r.bucket, block_public_acls: true,\n\
         ignore_public_acls: true, block_public_policy: true, restrict_public_buckets: true}] }\n",
    )
    .unwrap();
    let bucket = env.bucket("verify").await;
    env.send(&config_event(
        HOME,
        "test-never-satisfied",
        "AWS::S3::Bucket",
        &bucket,
    ))
    .await;
    let r = env
        .run(&["worker", "--once", "--remediations", dir.to_str().unwrap()])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "failed-verify", "{job:#}");
    assert!(
        job["reason"].as_str().unwrap().contains("did not hold"),
        "{job:#}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ports_open_to_the_world_are_revoked_and_ssh_is_left_to_its_own_remediation() {
    let env = Env::new().await;
    env.enforce("sg-revoke-open-admin-ports").await;
    let (_, group) = security_group(&env.sdk).await;
    for (port, cidr) in [
        (3306, "0.0.0.0/0"),
        (5432, "10.0.0.0/8"),
        (22, "0.0.0.0/0"),
        (27017, "0.0.0.0/0"),
    ] {
        open_tcp(&env.sdk, &group, port, port, cidr).await;
    }
    env.send(&config_event(
        HOME,
        "restricted-common-ports",
        "AWS::EC2::SecurityGroup",
        &group,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&group).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(
        ingress(&env.sdk, &group).await,
        vec![
            ("tcp".to_string(), 22, 22, "0.0.0.0/0".to_string()),
            ("tcp".to_string(), 5432, 5432, "10.0.0.0/8".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_that_allow_imdsv1_get_imdsv2_required() {
    let env = Env::new().await;
    env.enforce("ec2-require-imdsv2").await;
    let ec2 = aws_sdk_ec2::Client::new(&env.sdk);
    let image = ec2.describe_images().send().await.unwrap().images()[0]
        .image_id()
        .unwrap()
        .to_string();
    let run = ec2
        .run_instances()
        .image_id(image)
        .min_count(1)
        .max_count(1)
        .metadata_options(
            aws_sdk_ec2::types::InstanceMetadataOptionsRequest::builder()
                .http_tokens(aws_sdk_ec2::types::HttpTokensState::Optional)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let id = run.instances()[0].instance_id().unwrap().to_string();
    env.send(&config_event(
        HOME,
        "securityhub-ec2-imdsv2-check-q1w2e3",
        "AWS::EC2::Instance",
        &id,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["metadata_options"]["http_tokens"], "optional");
    assert_eq!(job["inverse"][0]["http_tokens"], "optional");
    let out = ec2
        .describe_instances()
        .instance_ids(&id)
        .send()
        .await
        .unwrap();
    let tokens = out.reservations()[0].instances()[0]
        .metadata_options()
        .unwrap()
        .http_tokens()
        .unwrap()
        .as_str()
        .to_string();
    assert_eq!(tokens, "required");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_id_whose_user_was_made_again_under_its_name_changes_nothing() {
    use std::time::Duration;
    let env = Env::new().await;
    env.enforce_on_every_active_key().await;
    let (other, other_id) = user_with_keys(&env.sdk, &env.prefix, 1).await;
    let (user, user_id) = user_with_keys(&env.sdk, &env.prefix, 1).await;
    let mut worker = env.spawn(&["worker", "--wait-seconds", "1"]);
    assert!(
        worker
            .wait_for("worker ready", Duration::from_secs(30))
            .await
    );
    let ended = |id: String| {
        let env = &env;
        async move {
            eventually(Duration::from_secs(60), || async {
                env.jobs()
                    .await
                    .into_iter()
                    .find(|j| j["resource_id"] == id.as_str() && j["status"] != "in-progress")
            })
            .await
            .unwrap_or_else(|| panic!("no job for {id} ended"))
        }
    };
    // The worker looks the account's users up once, by their unique ids.
    env.send(&unused_credentials(&other_id)).await;
    assert_eq!(ended(other_id).await["status"], "applied");
    assert_eq!(key_statuses(&env.sdk, &other).await, ["Inactive"]);
    // The user is deleted and made again under its name: another user, another unique id.
    let iam = aws_sdk_iam::Client::new(&env.sdk);
    for (key, _) in access_keys(&env.sdk, &user).await {
        iam.delete_access_key()
            .user_name(&user)
            .access_key_id(key)
            .send()
            .await
            .unwrap();
    }
    iam.delete_user().user_name(&user).send().await.unwrap();
    iam.create_user().user_name(&user).send().await.unwrap();
    iam.create_access_key()
        .user_name(&user)
        .send()
        .await
        .unwrap();
    // A finding naming the first user finds it gone, and the new user's key stays active.
    env.send(&unused_credentials(&user_id)).await;
    let job = ended(user_id.clone()).await;
    assert_eq!(job["status"], "no-op", "{job:#}");
    assert!(
        job["reason"].as_str().unwrap().contains(&user_id),
        "{job:#}"
    );
    assert_eq!(key_statuses(&env.sdk, &user).await, ["Active"]);
    worker.signal("TERM");
    assert_eq!(worker.exit(Duration::from_secs(30)).await, Some(0));
}
