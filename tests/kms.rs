//! KMS against moto: an enabled customer-managed symmetric key without rotation gets rotation and
//! nothing else of it changes; undo turns rotation off again; dry-run changes nothing; a Security
//! Hub KMS.4 finding names the key by its ARN; asymmetric, HMAC, imported,
//! disabled and pending-deletion keys are left alone in enforce, and each job says why.

mod support;

use aws_sdk_kms::Client;
use aws_sdk_kms::types::{KeySpec, KeyUsageType, OriginType, Tag};
use serde_json::{Value, json};
use support::*;

const RULE: &str = "cmk-backing-key-rotation-enabled";
const TYPE: &str = "AWS::KMS::Key";

fn kms(env: &Env) -> Client {
    Client::new(&env.sdk)
}

/// A new customer-managed symmetric key, described and tagged; its id.
async fn symmetric_key(env: &Env) -> String {
    kms(env)
        .create_key()
        .description("orders database")
        .tags(
            Tag::builder()
                .tag_key("team")
                .tag_value("billing")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string()
}

/// What a key is, as moto holds it: what a fix must not touch, and whether it rotates.
async fn state(env: &Env, id: &str) -> (Value, bool) {
    let c = kms(env);
    let m = c.describe_key().key_id(id).send().await.unwrap();
    let m = m.key_metadata().unwrap();
    let rest = json!({
        "description": m.description(),
        "state": m.key_state().map(|s| s.as_str().to_string()),
        "enabled": m.enabled(),
        "spec": m.key_spec().map(|s| s.as_str().to_string()),
    });
    let rotation = c
        .get_key_rotation_status()
        .key_id(id)
        .send()
        .await
        .unwrap()
        .key_rotation_enabled();
    (rest, rotation)
}

/// A Security Hub finding of control KMS.4 (and no Config rule name) about a key, named by its
/// ARN as Security Hub names it.
fn security_hub_finding(id: &str) -> String {
    let arn = format!("arn:aws:kms:{REGION}:{HOME}:key/{id}");
    control_finding(HOME, REGION, "KMS.4", "AwsKmsKey", &arn)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symmetric_key_gets_rotation_nothing_else_changes_and_undo_turns_it_off() {
    let env = Env::new().await;
    env.enforce("kms-key-rotation").await;
    let id = symmetric_key(&env).await;
    let (untouched, rotation) = state(&env, &id).await;
    assert!(!rotation);

    env.send(&config_event(HOME, RULE, TYPE, &id)).await;
    env.drain().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["remediation"], "kms-key-rotation");
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["rotation_enabled"], false);
    assert_eq!(job["before"]["key_manager"], "CUSTOMER");
    assert_eq!(job["before"]["tags"], json!({"team": "billing"}));
    assert_eq!(job["after"]["rotation_enabled"], true);
    assert_eq!(
        job["plan"]["actions"],
        json!([{"kind": "kms:EnableKeyRotation", "key_id": id}])
    );
    assert_eq!(
        job["inverse"],
        json!([{"kind": "kms:DisableKeyRotation", "key_id": id}])
    );
    assert_eq!(
        state(&env, &id).await,
        (untouched.clone(), true),
        "only rotation may change"
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
            "rotated by hand",
        ])
        .await;
    assert!(out.contains("undone"), "{out}");
    assert_eq!(
        env.json(&["jobs", "show", job_id]).await["status"],
        "undone"
    );
    assert_eq!(state(&env, &id).await, (untouched, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_plans_rotation_for_a_security_hub_finding_and_changes_nothing() {
    let env = Env::new().await;
    let id = symmetric_key(&env).await;
    let before = state(&env, &id).await;

    env.send(&security_hub_finding(&id)).await;
    env.drain().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["remediation"], "kms-key-rotation");
    assert_eq!(job["status"], "planned", "{job:#}");
    assert_eq!(job["mode"], "dry-run");
    assert_eq!(job["plan"]["actions"][0]["kind"], "kms:EnableKeyRotation");
    assert_eq!(state(&env, &id).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_kms_cannot_or_should_not_rotate_are_left_alone_and_the_job_says_why() {
    let env = Env::new().await;
    env.enforce("kms-key-rotation").await;
    let c = kms(&env);
    let create = |spec: KeySpec, usage: KeyUsageType, origin: OriginType| {
        let c = c.clone();
        async move {
            c.create_key()
                .key_spec(spec)
                .key_usage(usage)
                .origin(origin)
                .send()
                .await
                .unwrap()
                .key_metadata()
                .unwrap()
                .key_id()
                .to_string()
        }
    };
    let asymmetric = create(
        KeySpec::Rsa2048,
        KeyUsageType::SignVerify,
        OriginType::AwsKms,
    )
    .await;
    let hmac = create(
        KeySpec::Hmac256,
        KeyUsageType::GenerateVerifyMac,
        OriginType::AwsKms,
    )
    .await;
    let imported = create(
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
        OriginType::External,
    )
    .await;
    let disabled = symmetric_key(&env).await;
    c.disable_key().key_id(&disabled).send().await.unwrap();
    let pending = symmetric_key(&env).await;
    c.schedule_key_deletion()
        .key_id(&pending)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();

    // Rotation is read only where it is a setting of the key (AWS refuses the call for the
    // others): `null` says it was not.
    let cases = [
        (&asymmetric, "the key is RSA_2048", Value::Null),
        (&hmac, "the key is HMAC_256", Value::Null),
        (
            &imported,
            "the key's material comes from EXTERNAL",
            Value::Null,
        ),
        (&disabled, "the key is Disabled", json!(false)),
        (&pending, "the key is PendingDeletion", Value::Null),
    ];
    for (id, _, _) in &cases {
        env.send(&config_event(HOME, RULE, TYPE, id)).await;
    }
    env.drain_all().await;
    for (id, why, rotation) in &cases {
        let job = env.job_for(id).await;
        assert_eq!(job["status"], "no-op", "{why}: {job:#}");
        assert!(
            job["reason"].as_str().unwrap_or_default().contains(why),
            "{why}: {job:#}"
        );
        assert_eq!(&job["before"]["rotation_enabled"], rotation, "{why}");
    }
    // Rotation is a setting of the disabled key, and it is still off.
    assert!(
        !c.get_key_rotation_status()
            .key_id(&disabled)
            .send()
            .await
            .unwrap()
            .key_rotation_enabled()
    );
}
