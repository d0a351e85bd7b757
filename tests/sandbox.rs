//! Hostile and broken scripts against the worker: each is stopped within its limit with a clear
//! error, its job fails on the record, and the worker goes on to serve the next message.
//! Scripts that cannot compile stop start-up, naming the file and line.

mod support;

use support::*;

const HOSTILE: &[(&str, &str, &str)] = &[
    (
        "loop",
        "fn plan(r, p) { loop {} }",
        "Too many operations|deadline",
    ),
    (
        "recursion",
        "fn f(n) { f(n + 1) } fn plan(r, p) { f(0) }",
        "max_call_levels",
    ),
    (
        "string",
        r#"fn plan(r, p) { let s = "x"; loop { s += s; } }"#,
        "string",
    ),
    (
        "array",
        "fn plan(r, p) { let a = []; loop { a.push(1); } }",
        "array",
    ),
    (
        "map",
        r#"fn plan(r, p) { let m = #{}; let i = 0; loop { m["k" + i] = i; i += 1; } }"#,
        "object map|Too many operations|deadline",
    ),
    (
        "sleep",
        "fn plan(r, p) { sleep(30); [] }",
        "sleep is not available",
    ),
    (
        "throw",
        r#"fn plan(r, p) { throw "no plan for you"; }"#,
        "no plan for you",
    ),
    (
        "escape",
        r#"fn plan(r, p) { [#{kind: "iam:UpdateAccessKey", user_name: "admin", access_key_id: "AKIA0000", status: "Inactive"}] }"#,
        "the manifest does not allow",
    ),
];

fn write_remediation(dir: &std::path::Path, name: &str, script: &str) {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("remediation.toml"),
        format!(
            "name = \"{name}\"\ndescription = \"hostile\"\nresource_type = \"AWS::S3::Bucket\"\n\
             default_mode = \"enforce\"\nactions = [\"s3:PutPublicAccessBlock\"]\n[triggers]\nrules = [\"{name}\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(folder.join("plan.rhai"), script).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_scripts_fail_their_jobs_and_the_worker_serves_the_next_message() {
    let env = Env::new().await;
    let dir = std::env::temp_dir().join(unique("hostile"));
    for (name, script, _) in HOSTILE {
        write_remediation(&dir, &format!("hostile-{name}"), script);
    }
    let dir_text = dir.to_str().unwrap().to_string();
    env.ok(&[
        "settings",
        "set",
        "s3-block-public-access",
        "--mode",
        "enforce",
        "--yes",
        "--by",
        "test",
        "--remediations",
        &dir_text,
    ])
    .await;
    let s3 = aws_sdk_s3::Client::new(&env.sdk);
    let mut victims = Vec::new();
    for (name, _, _) in HOSTILE {
        let bucket = unique(name);
        s3.create_bucket().bucket(&bucket).send().await.unwrap();
        env.send(&config_event(
            HOME,
            &format!("hostile-{name}"),
            "AWS::S3::Bucket",
            &bucket,
        ))
        .await;
        victims.push(bucket);
    }
    let good = unique("after-hostile");
    s3.create_bucket().bucket(&good).send().await.unwrap();
    env.send(&config_event(
        HOME,
        "s3-bucket-public-read-prohibited",
        "AWS::S3::Bucket",
        &good,
    ))
    .await;

    let started = std::time::Instant::now();
    let r = env
        .run(&["worker", "--once", "--remediations", &dir_text])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "the limits took too long"
    );

    let mut wrong = Vec::new();
    for ((name, _, want), bucket) in HOSTILE.iter().zip(&victims) {
        let job = env.job_for(bucket).await;
        let reason = job["reason"].as_str().unwrap_or_default();
        if job["status"] != "failed"
            || !reason.contains("the script failed")
            || !want.split('|').any(|w| reason.contains(w))
        {
            wrong.push(format!("{name}: {} {reason}", job["status"]));
        }
        assert_eq!(
            public_access_block(&env.sdk, bucket).await,
            None,
            "{name} changed its bucket"
        );
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    assert_eq!(
        env.job_for(&good).await["status"],
        "applied",
        "the worker kept serving"
    );
    let failed = env
        .audit()
        .await
        .into_iter()
        .filter(|r| r["outcome"] == "failed")
        .count();
    assert_eq!(failed, HOSTILE.len(), "every failure is on the record");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A script aims its plan at another bucket than the finding's, or sets a flag false: the plan
/// is refused whole in Rust, the job fails naming the action and the rule, and no bucket changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_plans_that_aim_elsewhere_or_loosen_are_refused_and_change_nothing() {
    let env = Env::new().await;
    let dir = std::env::temp_dir().join(unique("unbound"));
    let other = env.bucket("someone-else").await;
    let put = |bucket: &str, flag: &str| {
        format!(
            "fn plan(r, p) {{ [#{{kind: \"s3:PutPublicAccessBlock\", bucket: {bucket}, block_public_acls: {flag}, \
             ignore_public_acls: {flag}, block_public_policy: true, restrict_public_buckets: true}}] }}"
        )
    };
    let cases = [
        (
            "aim",
            put(&format!("\"{other}\""), "true"),
            "an action targets only the observed resource",
        ),
        (
            "loosen",
            put("r.bucket", "false"),
            "a Public Access Block is only ever set to true",
        ),
    ];
    let mut victims = Vec::new();
    for (name, script, _) in &cases {
        write_remediation(&dir, &format!("unbound-{name}"), script);
        let bucket = env.bucket(name).await;
        if *name == "loosen" {
            block_public_access(&env.sdk, &bucket).await;
        }
        env.send(&config_event(
            HOME,
            &format!("unbound-{name}"),
            "AWS::S3::Bucket",
            &bucket,
        ))
        .await;
        victims.push(bucket);
    }
    let dir_text = dir.to_str().unwrap().to_string();
    let r = env
        .run(&["worker", "--once", "--remediations", &dir_text])
        .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    for ((name, _, rule), bucket) in cases.iter().zip(&victims) {
        let job = env.job_for(bucket).await;
        let reason = job["reason"].as_str().unwrap_or_default();
        assert_eq!(job["status"], "failed", "{name}: {reason}");
        assert!(
            reason.contains("action 1 (s3:PutPublicAccessBlock)") && reason.contains(rule),
            "{name}: {reason}"
        );
        assert!(job["inverse"].is_null(), "{name}: nothing was applied");
    }
    assert_eq!(
        public_access_block(&env.sdk, &other).await,
        None,
        "the bucket the finding did not name is untouched"
    );
    assert_eq!(
        public_access_block(&env.sdk, &victims[0]).await,
        None,
        "the finding's bucket is untouched too"
    );
    assert_eq!(
        public_access_block(&env.sdk, &victims[1]).await,
        Some([true; 4]),
        "no flag was set false"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_that_do_not_compile_stop_start_up() {
    let env = Env::new().await;
    for (script, line) in [
        ("fn plan(r, p) {\n  eval(\"[]\")\n}\n", ":2:"),
        (
            "import \"/etc/passwd\" as secrets;\nfn plan(r, p) { [] }\n",
            ":1:",
        ),
        ("fn plan(r, p) {\n  [\n", ":3:"),
        (
            "fn plan(r, p) {\n  let x = undefined_thing;\n  []\n}\n",
            ":2:",
        ),
    ] {
        let dir = std::env::temp_dir().join(unique("broken"));
        write_remediation(&dir, "broken-script", script);
        let r = env
            .run(&["worker", "--once", "--remediations", dir.to_str().unwrap()])
            .await;
        assert_eq!(r.code, 2, "{script}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("broken-script/plan.rhai{line}")),
            "{script}: {}",
            r.stderr
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_directory_and_a_broken_reload_keeps_the_catalog() {
    use std::time::Duration;
    let env = Env::new().await;
    let dir = std::env::temp_dir().join(unique("reload"));
    let script = |comment: &str| {
        format!(
            "// {comment}\nfn plan(r, p) {{ if r.public_access_block == () {{ [s3_put_public_access_block(r.bucket)] }} else {{ [] }} }}\n"
        )
    };
    write_remediation(&dir, "reloadable", &script("version one"));
    let plan = dir.join("reloadable/plan.rhai");
    let dir_text = dir.to_str().unwrap().to_string();
    let alive = std::env::temp_dir().join(unique("alive"));
    let alive_text = alive.to_str().unwrap().to_string();
    let mut worker = env.spawn(&[
        "worker",
        "--wait-seconds",
        "1",
        "--remediations",
        &dir_text,
        "--liveness-file",
        &alive_text,
    ]);
    assert!(
        worker.wait_for("polling", Duration::from_secs(30)).await,
        "{:#?}",
        worker.log
    );
    let healthy = eventually(Duration::from_secs(30), || async {
        (env.run(&["healthcheck", "--liveness-file", &alive_text])
            .await
            .code
            == 0)
            .then_some(())
    })
    .await;
    assert!(healthy.is_some(), "the worker's liveness file is not fresh");

    let mut shas = Vec::new();
    for step in 0..3 {
        match step {
            1 => {
                std::fs::write(&plan, script("version two")).unwrap();
                worker.signal("HUP");
                assert!(
                    worker
                        .wait_for("catalog reloaded", Duration::from_secs(30))
                        .await,
                    "{:#?}",
                    worker.log
                );
            }
            2 => {
                std::fs::write(&plan, "fn plan(r, p) {\n  [\n").unwrap();
                worker.signal("HUP");
                assert!(
                    worker
                        .wait_for("catalog reload failed", Duration::from_secs(30))
                        .await,
                    "{:#?}",
                    worker.log
                );
                assert!(
                    worker
                        .log
                        .iter()
                        .any(|l| l.contains("reloadable/plan.rhai:")),
                    "the failure names the file"
                );
            }
            _ => {}
        }
        let bucket = env.bucket("reload").await;
        env.send(&config_event(
            HOME,
            "reloadable",
            "AWS::S3::Bucket",
            &bucket,
        ))
        .await;
        let job = eventually(Duration::from_secs(30), || async {
            env.jobs()
                .await
                .into_iter()
                .find(|j| j["resource_id"] == bucket.as_str() && j["status"] != "in-progress")
        })
        .await
        .unwrap_or_else(|| panic!("step {step}: no planned job; log: {:#?}", worker.log));
        shas.push(job["script_sha256"].as_str().unwrap().to_string());
    }
    assert_ne!(shas[0], shas[1], "the reload took effect");
    assert_eq!(
        shas[1], shas[2],
        "a failed reload keeps the previous catalog"
    );
    worker.signal("TERM");
    assert_eq!(worker.exit(Duration::from_secs(30)).await, Some(0));
    std::fs::remove_dir_all(dir).unwrap();
}
