//! The output contract against moto: `--output table|json` on every command that prints data,
//! write commands included (a labelled object with RFC 3339 times), `--json` as its alias;
//! `--since` compared as a time; AGE columns; tables elided to fit `COLUMNS`; `audit show`
//! readable; anchors hidden from `audit list` unless `--all`; a settings record that says what
//! changed; a dry-run's plan that says "would perform".

mod support;

use serde_json::Value;
use support::*;

const S3: &str = "s3-block-public-access";

/// Runs rectify, insists it succeeds, and parses its stdout as one JSON object.
async fn object(env: &Env, args: &[&str]) -> Value {
    let out = env.ok(args).await;
    let v: Value = serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("rectify {args:?}: not JSON ({e}):\n{out}"));
    assert!(v.is_object(), "rectify {args:?}: not an object: {v:#}");
    v
}

/// A time as rectify prints it: RFC 3339 with a zone.
fn assert_time(v: &Value, what: &str) {
    let t = v
        .as_str()
        .unwrap_or_else(|| panic!("{what}: not a string: {v}"));
    assert!(
        chrono::DateTime::parse_from_rfc3339(t).is_ok(),
        "{what}: {t:?} is not RFC 3339 with a zone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_commands_print_a_labelled_object_in_json() {
    let env = Env::new().await;

    // The same visibility timeout the set-up bootstrapped with, so every resource is found as is.
    let boot = object(
        &env,
        &["bootstrap", "--visibility-timeout", "3", "--output", "json"],
    )
    .await;
    assert_eq!(boot["prefix"], env.prefix.as_str(), "{boot:#}");
    let resources = boot["resources"].as_array().expect("resources");
    assert!(resources.len() >= 6, "{boot:#}");
    assert!(
        resources
            .iter()
            .all(|r| r["kind"].is_string() && r["name"].is_string() && r["state"] == "found"),
        "{boot:#}"
    );

    let set = object(
        &env,
        &[
            "settings",
            "set",
            S3,
            "--account",
            MEMBER,
            "--mode",
            "enforce",
            "--by",
            "alice",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(set["remediation"], S3, "{set:#}");
    assert_eq!(set["scope"], MEMBER, "{set:#}");
    assert_eq!(set["setting"]["mode"], "enforce", "{set:#}");
    assert_eq!(set["by"], "alice", "{set:#}");
    assert_time(&set["at"], "settings set: at");
    assert!(
        set["changed"]
            .as_str()
            .is_some_and(|c| c.contains("mode - -> enforce")),
        "{set:#}"
    );

    // --json is the same as --output json.
    let paused = object(
        &env,
        &["pause", "--reason", "incident", "--by", "bob", "--json"],
    )
    .await;
    assert_eq!(paused["paused"], true, "{paused:#}");
    assert_eq!(paused["reason"], "incident", "{paused:#}");
    assert_eq!(paused["by"], "bob", "{paused:#}");
    assert_time(&paused["at"], "pause: at");
    let resumed = object(&env, &["resume", "--by", "bob", "--output", "json"]).await;
    assert_eq!(resumed["paused"], false, "{resumed:#}");

    let added = object(
        &env,
        &[
            "exemptions",
            "add",
            "--remediation",
            S3,
            "--resource",
            "kept-public",
            "--reason",
            "a website",
            "--until",
            "30d",
            "--by",
            "carol",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(added["result"], "added", "{added:#}");
    assert_eq!(
        added["exemption"]["resource_id"], "kept-public",
        "{added:#}"
    );
    assert_eq!(added["exemption"]["active"], true, "{added:#}");
    assert_time(&added["exemption"]["created_at"], "exemption created_at");
    // A relative last day is stored as the day it ends on.
    let day = (chrono::Utc::now() + chrono::Duration::days(30))
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(added["exemption"]["until"], day.as_str(), "{added:#}");
    let removed = object(
        &env,
        &[
            "exemptions",
            "remove",
            "--remediation",
            S3,
            "--resource",
            "kept-public",
            "--by",
            "carol",
            "--output",
            "json",
        ],
    )
    .await;
    assert_eq!(removed["result"], "removed", "{removed:#}");
    assert_time(&removed["at"], "exemptions remove: at");

    let verified = object(&env, &["audit", "verify", "--output", "json"]).await;
    assert_eq!(verified["verified"], true, "{verified:#}");
    assert!(verified["records"].as_u64().unwrap() > 0, "{verified:#}");
    assert!(verified["problems"].as_array().unwrap().is_empty());
    assert_time(&verified["checked_at"], "audit verify: checked_at");

    // The text form stays a sentence, not JSON.
    let text = env.ok(&["pause", "--reason", "again", "--by", "bob"]).await;
    assert!(text.starts_with("rectify is paused"), "{text}");
    env.ok(&["resume", "--by", "bob"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_decisions_print_a_labelled_object_in_json() {
    let env = Env::new().await;
    env.approval(S3).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let bucket = env.bucket("out").await;
        env.send_bucket_event(&bucket).await;
        env.drain().await;
        let job = env.job_for(&bucket).await;
        assert_eq!(job["status"], "pending-approval", "{job:#}");
        ids.push(job["id"].as_str().unwrap().to_string());
    }

    let approved = object(
        &env,
        &[
            "jobs", "approve", &ids[0], "--by", "alice", "--output", "json",
        ],
    )
    .await;
    assert_eq!(approved["job_id"], ids[0].as_str(), "{approved:#}");
    assert_eq!(approved["result"], "approved", "{approved:#}");
    assert_eq!(approved["by"], "alice", "{approved:#}");
    assert_eq!(approved["plan_hash"].as_str().unwrap().len(), 64);
    assert_time(&approved["at"], "jobs approve: at");

    let rejected = object(
        &env,
        &[
            "jobs", "reject", &ids[1], "--by", "bob", "--reason", "not now", "--json",
        ],
    )
    .await;
    assert_eq!(rejected["result"], "rejected", "{rejected:#}");
    assert_eq!(rejected["status"], "rejected", "{rejected:#}");
    assert_time(&rejected["at"], "jobs reject: at");

    let retried = object(&env, &["jobs", "retry", &ids[0], "--output", "json"]).await;
    assert_eq!(retried["job_id"], ids[0].as_str(), "{retried:#}");
    assert_eq!(retried["result"], "queued", "{retried:#}");
    assert_time(&retried["at"], "jobs retry: at");

    // In bulk, the result is one object listing each job (what is asked about goes to stderr).
    let bulk = env
        .run(&[
            "jobs",
            "approve",
            &ids[2],
            "--remediation",
            S3,
            "--by",
            "alice",
            "--yes",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(bulk.code, 0, "{}\n{}", bulk.stdout, bulk.stderr);
    let v: Value = serde_json::from_str(&bulk.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", bulk.stdout));
    assert_eq!(v["action"], "approve", "{v:#}");
    assert!(
        v["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j.is_object() && j["job_id"] == ids[2].as_str()),
        "{v:#}"
    );
    assert!(bulk.stderr.contains("plan sha256"), "{}", bulk.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_compares_as_a_time_and_takes_relative_durations() {
    let env = Env::new().await;
    env.ok(&["settings", "set", S3, "--mode", "dry-run", "--by", "test"])
        .await;
    let count = |records: &Value| {
        records
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["outcome"] == "settings-changed")
            .count()
    };
    let now = chrono::Utc::now();
    let east = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
    let west = chrono::FixedOffset::west_opt(5 * 3600).unwrap();
    // An hour ago, written at +02:00: the text sorts after the records' UTC times, the time
    // before them. The record is included.
    let before = (now - chrono::Duration::hours(1))
        .with_timezone(&east)
        .to_rfc3339();
    let listed = env.json(&["audit", "list", "--since", &before]).await;
    assert_eq!(count(&listed), 1, "--since {before}: {listed:#}");
    // An hour ahead, written at -05:00: the text sorts before, the time after. Excluded.
    let after = (now + chrono::Duration::hours(1))
        .with_timezone(&west)
        .to_rfc3339();
    let listed = env.json(&["audit", "list", "--since", &after]).await;
    assert_eq!(count(&listed), 0, "--since {after}: {listed:#}");
    // Relative forms.
    assert_eq!(
        count(&env.json(&["audit", "list", "--since", "1h"]).await),
        1
    );
    assert_eq!(
        count(&env.json(&["audit", "list", "--since", "7d"]).await),
        1
    );
    // Bad input names the flag and the rule (exit 2).
    let bad = env.run(&["audit", "list", "--since", "yesterday"]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(
        bad.stderr.contains("--since") && bad.stderr.contains("RFC 3339"),
        "{}",
        bad.stderr
    );

    let bucket = env.bucket("since").await;
    env.send_bucket_event(&bucket).await;
    env.drain().await;
    let jobs = env.json(&["jobs", "list", "--since", "30m"]).await;
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs:#}");
    let later = (now + chrono::Duration::hours(1)).to_rfc3339();
    let jobs = env.json(&["jobs", "list", "--since", &later]).await;
    assert!(jobs.as_array().unwrap().is_empty(), "{jobs:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_show_an_age_and_fit_the_width() {
    let env = Env::new().await;
    let reason = "the bucket serves the public website of the marketing team and must stay readable by anyone";
    env.ok(&[
        "exemptions",
        "add",
        "--remediation",
        S3,
        "--resource",
        "www-bucket",
        "--reason",
        reason,
        "--by",
        "carol",
    ])
    .await;

    let wide = env.ok(&["exemptions", "list"]).await;
    let header = wide.lines().next().unwrap();
    assert!(header.starts_with("AGE"), "{wide}");
    let row = wide.lines().nth(1).unwrap();
    let age = row.split_whitespace().next().unwrap();
    assert!(
        age.ends_with('s') || age.ends_with('m'),
        "a fresh record's age is seconds or minutes: {wide}"
    );
    // Piped without COLUMNS: every cell whole.
    assert!(wide.contains(reason), "{wide}");

    let narrow = env
        .run_env(&["exemptions", "list"], &[("COLUMNS", "60")])
        .await;
    assert_eq!(narrow.code, 0, "{}", narrow.stderr);
    for line in narrow.stdout.lines() {
        assert!(
            line.chars().count() <= 60,
            "{line:?} is wider than 60:\n{}",
            narrow.stdout
        );
    }
    assert!(narrow.stdout.contains('\u{2026}'), "{}", narrow.stdout);
    // Cut at a word boundary: what is left of the reason ends with a whole word.
    let row = narrow.stdout.lines().nth(1).unwrap();
    let cut = row
        .rsplit("  ")
        .next()
        .unwrap()
        .trim_end_matches('\u{2026}');
    assert!(reason.starts_with(cut), "{row}");
    assert!(
        reason[cut.len()..].starts_with(' '),
        "cut mid-word: {cut:?}"
    );
    // The whole value is in JSON.
    let listed = env
        .run_env(
            &["exemptions", "list", "--output", "json"],
            &[("COLUMNS", "60")],
        )
        .await;
    assert!(listed.stdout.contains(reason), "{}", listed.stdout);

    let audit = env.ok(&["audit", "list"]).await;
    assert!(audit.lines().next().unwrap().contains("AGE"), "{audit}");
    let jobs = env.ok(&["jobs", "list"]).await;
    assert!(jobs.lines().next().unwrap().contains("AGE"), "{jobs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_records_read_as_text_and_anchors_hide_unless_all() {
    let env = Env::new().await;
    env.ok(&[
        "settings",
        "set",
        S3,
        "--account",
        MEMBER,
        "--mode",
        "approval",
        "--by",
        "alice",
    ])
    .await;
    env.ok(&[
        "settings",
        "set",
        S3,
        "--account",
        MEMBER,
        "--mode",
        "enforce",
        "--by",
        "alice",
    ])
    .await;

    let all = env.json(&["audit", "list", "--all"]).await;
    let all = all.as_array().unwrap();
    assert!(
        all.iter().any(|r| r["kind"] == "anchor"),
        "operator commands anchor their chains: {all:#?}"
    );
    let listed = env.json(&["audit", "list"]).await;
    let listed = listed.as_array().unwrap();
    assert!(!listed.is_empty());
    assert!(listed.iter().all(|r| r["kind"] != "anchor"), "{listed:#?}");
    assert!(!env.ok(&["audit", "list"]).await.contains("anchored"));
    assert!(
        env.ok(&["audit", "list", "--all"])
            .await
            .contains("anchored")
    );

    // The second change says what it changed, old -> new.
    let record = listed
        .iter()
        .rev()
        .find(|r| r["outcome"] == "settings-changed" && r["account"] == MEMBER)
        .unwrap();
    assert_eq!(
        record["reason"],
        format!("account {MEMBER}: mode approval -> enforce"),
        "{record:#}"
    );
    let id = record["id"].as_str().unwrap();
    let shown = env.ok(&["audit", "show", id]).await;
    assert!(
        shown.starts_with(&format!("record       {id}")),
        "readable by default:\n{shown}"
    );
    assert!(shown.contains("outcome      settings-changed"), "{shown}");
    assert!(shown.contains("by           alice"), "{shown}");
    assert!(shown.contains("~ mode: approval -> enforce"), "{shown}");
    assert!(serde_json::from_str::<Value>(&shown).is_err(), "{shown}");
    let raw = object(&env, &["audit", "show", id, "--output", "json"]).await;
    assert_eq!(raw["id"], id);
    assert_eq!(raw["hash"], record["hash"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_says_what_it_would_perform() {
    let env = Env::new().await;
    let bucket = env.bucket("would").await;
    env.send_bucket_event(&bucket).await;
    env.drain().await;
    let job = env.job_for(&bucket).await;
    assert_eq!(job["status"], "planned", "{job:#}");
    assert!(
        job["reason"]
            .as_str()
            .is_some_and(|r| r.contains("would perform")),
        "{job:#}"
    );
    let id = job["id"].as_str().unwrap();
    let shown = env.ok(&["jobs", "show", id]).await;
    assert!(
        shown.contains("rectify would perform 1 action(s)"),
        "{shown}"
    );
    assert!(!shown.contains("will perform"), "{shown}");
    // The short hash has one length everywhere.
    let hash = job["plan_hash"].as_str().unwrap();
    assert!(
        shown.contains(&format!("(plan sha256 {}):", &hash[..12])),
        "{shown}"
    );
    // Its audit record, shown, says the same.
    let records = env.json(&["audit", "list", "--resource", &bucket]).await;
    let rid = records.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = env.ok(&["audit", "show", &rid]).await;
    assert!(
        shown.contains("rectify would perform 1 action(s)"),
        "{shown}"
    );
}
