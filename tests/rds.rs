//! RDS against moto: a publicly accessible instance is made private and nothing else of it
//! changes; an instance that is not `available` is left alone, the job says why, and the finding
//! is retried until the instance is available; a snapshot shared with `all` loses only `all`;
//! dry-run changes nothing; undo restores each exactly.

mod support;

use aws_sdk_rds::Client;
use serde_json::Value;
use support::*;

const INSTANCE_RULE: &str = "rds-instance-public-access-check";
const SNAPSHOT_RULE: &str = "rds-snapshots-public-prohibited";
const SHARED_WITH: &str = "444455556666";

fn rds(env: &Env) -> Client {
    Client::new(&env.sdk)
}

/// An account of its own for the sweep, so other tests' instances are not in its counts.
const SWEPT: &str = "555566667777";

/// A new publicly accessible, tagged instance; its identifier.
async fn public_instance(env: &Env) -> String {
    let id = unique("orders");
    rds(env)
        .create_db_instance()
        .db_instance_identifier(&id)
        .engine("postgres")
        .db_instance_class("db.t3.micro")
        .master_username("admin")
        .master_user_password("correct-horse-battery")
        .allocated_storage(20)
        .backup_retention_period(7)
        .publicly_accessible(true)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("team")
                .value("billing")
                .build(),
        )
        .send()
        .await
        .unwrap();
    id
}

/// What an instance is, as moto holds it: the attributes a fix must not touch, and
/// PubliclyAccessible.
async fn instance_state(env: &Env, id: &str) -> (Value, bool) {
    let out = rds(env)
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap();
    let i = &out.db_instances()[0];
    let rest = serde_json::json!({
        "status": i.db_instance_status(),
        "engine": i.engine(),
        "class": i.db_instance_class(),
        "storage": i.allocated_storage(),
        "backup_retention": i.backup_retention_period(),
        "multi_az": i.multi_az(),
        "tags": i.tag_list().iter().map(|t| format!("{}={}", t.key().unwrap_or(""), t.value().unwrap_or(""))).collect::<Vec<_>>(),
    });
    (rest, i.publicly_accessible().unwrap_or(false))
}

/// A new manual snapshot shared with `all` and with one named account; its identifier.
async fn public_snapshot(env: &Env) -> String {
    let instance = public_instance(env).await;
    let id = unique("nightly");
    let c = rds(env);
    c.create_db_snapshot()
        .db_instance_identifier(instance)
        .db_snapshot_identifier(&id)
        .send()
        .await
        .unwrap();
    c.modify_db_snapshot_attribute()
        .db_snapshot_identifier(&id)
        .attribute_name("restore")
        .values_to_add("all")
        .values_to_add(SHARED_WITH)
        .send()
        .await
        .unwrap();
    id
}

/// The snapshot's `restore` values as moto holds them, sorted.
async fn restore(env: &Env, id: &str) -> Vec<String> {
    let out = rds(env)
        .describe_db_snapshot_attributes()
        .db_snapshot_identifier(id)
        .send()
        .await
        .unwrap();
    let mut values: Vec<String> = out
        .db_snapshot_attributes_result()
        .unwrap()
        .db_snapshot_attributes()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().iter().cloned())
        .collect();
    values.sort();
    values
}

async fn undo(env: &Env, job: &str) {
    let out = env
        .ok(&[
            "jobs",
            "undo",
            job,
            "--by",
            "auditor",
            "--reason",
            "shared on purpose",
        ])
        .await;
    assert!(out.contains("undone"), "{out}");
    assert_eq!(env.json(&["jobs", "show", job]).await["status"], "undone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_instance_is_made_private_nothing_else_changes_and_undo_restores_it() {
    let env = Env::new().await;
    env.enforce("rds-instance-not-public").await;
    let id = public_instance(&env).await;
    let (untouched, public) = instance_state(&env, &id).await;
    assert!(public);

    env.send(&config_event(
        HOME,
        INSTANCE_RULE,
        "AWS::RDS::DBInstance",
        &id,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["before"]["publicly_accessible"], true);
    assert_eq!(job["after"]["publicly_accessible"], false);
    assert_eq!(job["plan"]["actions"][0]["kind"], "rds:ModifyDBInstance");
    assert_eq!(job["inverse"][0]["publicly_accessible"], true);
    assert_eq!(
        instance_state(&env, &id).await,
        (untouched.clone(), false),
        "only PubliclyAccessible may change"
    );

    undo(&env, job["id"].as_str().unwrap()).await;
    assert_eq!(instance_state(&env, &id).await, (untouched, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_records_the_instance_and_snapshot_plans_and_changes_nothing() {
    let env = Env::new().await;
    let instance = public_instance(&env).await;
    let snapshot = public_snapshot(&env).await;
    let before = instance_state(&env, &instance).await;
    env.send(&config_event(
        HOME,
        INSTANCE_RULE,
        "AWS::RDS::DBInstance",
        &instance,
    ))
    .await;
    env.send(&config_event(
        HOME,
        SNAPSHOT_RULE,
        "AWS::RDS::DBSnapshot",
        &snapshot,
    ))
    .await;
    env.drain_all().await;
    for (resource, kind) in [
        (&instance, "rds:ModifyDBInstance"),
        (&snapshot, "rds:ModifyDBSnapshotAttribute"),
    ] {
        let job = env.job_for(resource).await;
        assert_eq!(job["status"], "planned", "{job:#}");
        assert_eq!(job["mode"], "dry-run");
        assert_eq!(job["plan"]["actions"][0]["kind"], kind);
    }
    assert_eq!(instance_state(&env, &instance).await, before);
    assert_eq!(
        restore(&env, &snapshot).await,
        vec![SHARED_WITH.to_string(), "all".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_that_is_not_available_is_left_alone_and_retried_until_it_is() {
    let env = Env::new().await;
    env.enforce("rds-instance-not-public").await;
    let id = public_instance(&env).await;
    rds(&env)
        .stop_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();

    env.send(&config_event(
        HOME,
        INSTANCE_RULE,
        "AWS::RDS::DBInstance",
        &id,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["status"], "failed", "{job:#}");
    let reason = job["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("db instance {id} is `stopped`, not `available`"))
            && reason.contains("retried later"),
        "{reason}"
    );
    assert!(
        instance_state(&env, &id).await.1,
        "a stopped instance was modified"
    );
    assert_eq!(
        env.depth(false).await,
        1,
        "the finding stays on the queue to be retried"
    );
    assert!(
        env.audit()
            .await
            .iter()
            .any(|r| r["resource_id"] == id.as_str() && r["outcome"] == "failed"),
        "the failure is on the record"
    );

    rds(&env)
        .start_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();
    env.drain_all().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert!(
        !instance_state(&env, &id).await.1,
        "the retried finding made the instance private"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_snapshot_loses_only_all_and_undo_shares_it_with_all_again() {
    let env = Env::new().await;
    env.enforce("rds-snapshot-not-public").await;
    let id = public_snapshot(&env).await;

    env.send(&config_event(
        HOME,
        SNAPSHOT_RULE,
        "AWS::RDS::DBSnapshot",
        &id,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(
        job["before"]["restore"],
        serde_json::json!([SHARED_WITH, "all"])
    );
    assert_eq!(job["inverse"][0]["shared_with_all"], true);
    assert_eq!(
        restore(&env, &id).await,
        vec![SHARED_WITH.to_string()],
        "the named account keeps its share"
    );

    undo(&env, job["id"].as_str().unwrap()).await;
    assert_eq!(
        restore(&env, &id).await,
        vec![SHARED_WITH.to_string(), "all".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweep_finds_public_instances_and_snapshots_and_what_if_changes_nothing() {
    let env = Env::new().await;
    env.allow(&[SWEPT]).await;
    env.enforce("rds-instance-not-public").await;
    env.enforce("rds-snapshot-not-public").await;
    let c = Client::new(&env.account(SWEPT).await);
    let mut instances = Vec::new();
    for public in [true, false] {
        let id = unique(if public { "open" } else { "closed" });
        c.create_db_instance()
            .db_instance_identifier(&id)
            .engine("postgres")
            .db_instance_class("db.t3.micro")
            .master_username("admin")
            .master_user_password("correct-horse-battery")
            .allocated_storage(20)
            .publicly_accessible(public)
            .send()
            .await
            .unwrap();
        instances.push(id);
    }
    let snapshot = unique("shared");
    c.create_db_snapshot()
        .db_instance_identifier(&instances[1])
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    c.modify_db_snapshot_attribute()
        .db_snapshot_identifier(&snapshot)
        .attribute_name("restore")
        .values_to_add("all")
        .send()
        .await
        .unwrap();

    let would_change = |report: &Value| -> Vec<String> {
        report[0]["would_change"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["resource_id"].as_str().unwrap().to_string())
            .collect()
    };
    let report = env
        .json(&[
            "sweep",
            "--what-if",
            "--account",
            SWEPT,
            "--remediation",
            "rds-instance-not-public",
        ])
        .await;
    assert_eq!(
        would_change(&report),
        vec![instances[0].clone()],
        "{report:#}"
    );
    assert!(report[0]["scanned"].as_u64().unwrap() >= 2, "{report:#}");
    let report = env
        .json(&[
            "sweep",
            "--what-if",
            "--account",
            SWEPT,
            "--remediation",
            "rds-snapshot-not-public",
        ])
        .await;
    assert!(would_change(&report).contains(&snapshot), "{report:#}");

    let out = c
        .describe_db_instances()
        .db_instance_identifier(&instances[0])
        .send()
        .await
        .unwrap();
    assert_eq!(out.db_instances()[0].publicly_accessible(), Some(true));
    assert!(env.jobs().await.is_empty(), "--what-if records nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_plan_for_an_instance_that_is_not_available_stays_approved_and_runs_later() {
    let env = Env::new().await;
    env.approval("rds-instance-not-public").await;
    let id = public_instance(&env).await;
    env.send(&config_event(
        HOME,
        INSTANCE_RULE,
        "AWS::RDS::DBInstance",
        &id,
    ))
    .await;
    env.drain().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["status"], "pending-approval", "{job:#}");
    let job_id = job["id"].as_str().unwrap().to_string();

    rds(&env)
        .stop_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();
    env.ok(&["jobs", "approve", &job_id, "--by", "alice"]).await;
    env.drain().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["status"], "approved", "{job:#}");
    assert!(
        job["reason"]
            .as_str()
            .unwrap()
            .contains("is `stopped`, not `available`"),
        "{job:#}"
    );
    assert!(
        instance_state(&env, &id).await.1,
        "a stopped instance was modified"
    );

    rds(&env)
        .start_db_instance()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();
    env.drain_all().await;
    let job = env.job_for(&id).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert_eq!(job["approved_by"], "alice");
    assert!(!instance_state(&env, &id).await.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_named_by_its_resource_id_waits_for_a_job_holding_it_by_its_identifier() {
    use rectify::state::resource_key;
    let env = Env::new().await;
    env.enforce("rds-instance-not-public").await;
    let id = public_instance(&env).await;
    let out = rds(&env)
        .describe_db_instances()
        .db_instance_identifier(&id)
        .send()
        .await
        .unwrap();
    let resource_id = out.db_instances()[0].dbi_resource_id().unwrap().to_string();
    // A job for the instance found by its identifier (Security Hub, the sweep) holds it.
    let key = resource_key(HOME, REGION, "AWS::RDS::DBInstance", &id);
    env.hold(&key).await;
    // Config names the instance by its resource id (`db-…`): the job waits.
    env.send(&config_event(
        HOME,
        INSTANCE_RULE,
        "AWS::RDS::DBInstance",
        &resource_id,
    ))
    .await;
    let run = env.drain().await;
    assert!(
        run.stderr.contains("another job holds this resource"),
        "{}",
        run.stderr
    );
    assert!(instance_state(&env, &id).await.1, "still public");
    // Once the other job let go, the finding is fixed, under the lock of the identifier.
    env.let_go(&key).await;
    env.drain_all().await;
    let job = env.job_for(&resource_id).await;
    assert_eq!(job["status"], "applied", "{job:#}");
    assert!(!instance_state(&env, &id).await.1);

    // Renamed since, it is locked under another name and its inverse names it as it was: undo
    // refuses.
    let renamed = format!("{id}-renamed");
    rds(&env)
        .modify_db_instance()
        .db_instance_identifier(&id)
        .new_db_instance_identifier(&renamed)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    let job_id = job["id"].as_str().unwrap();
    let run = env
        .run(&["jobs", "undo", job_id, "--by", "auditor", "--reason", "r"])
        .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("goes by {renamed}")),
        "{}",
        run.stderr
    );
    assert!(!instance_state(&env, &renamed).await.1, "still private");
    assert_eq!(
        env.json(&["jobs", "show", job_id]).await["status"],
        "applied"
    );
}
