//! The offline commands and the command line's contract: exit codes and messages that name
//! what is wrong. None of these reach AWS.

use std::process::Command;

fn rectify(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rectify"))
        .args(args)
        .env_remove("RECTIFY_CONFIG")
        .env("RECTIFY_LOG_FORMAT", "text")
        .output()
        .expect("run rectify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("rectify-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn catalog_test_passes_on_the_embedded_catalog() {
    let (code, out, err) = rectify(&["catalog", "test"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 failed"), "{out}");
    for name in [
        "s3-block-public-access",
        "sg-revoke-open-ssh",
        "iam-deactivate-stale-keys",
        "vpce-restrict-policy",
    ] {
        assert!(out.contains(name), "{name} has no case run: {out}");
    }
}

#[test]
fn catalog_test_fails_with_a_diff_when_a_case_is_wrong() {
    let dir = temp_dir("cases");
    let folder = dir.join("s3-block-public-access");
    std::fs::create_dir_all(folder.join("tests")).unwrap();
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    for f in ["remediation.toml", "plan.rhai"] {
        std::fs::copy(
            format!("{root}/remediations/s3-block-public-access/{f}"),
            folder.join(f),
        )
        .unwrap();
    }
    std::fs::write(
        folder.join("tests/wrong.json"),
        r#"{"description": "expects nothing where a fix is due",
            "resource": {"bucket": "b", "public_access_block": null}, "expect": []}"#,
    )
    .unwrap();
    let (code, out, _) = rectify(&["catalog", "test", dir.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILED") && out.contains("wrong.json"),
        "{out}"
    );
    assert!(
        out.contains("+   {") || out.contains("+ "),
        "a diff is shown: {out}"
    );
}

#[test]
fn a_broken_script_stops_start_up_naming_file_and_line() {
    let dir = temp_dir("broken");
    let folder = dir.join("my-guardrail");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("remediation.toml"),
        "name = \"my-guardrail\"\ndescription = \"x\"\nresource_type = \"AWS::S3::Bucket\"\nactions = [\"s3:PutPublicAccessBlock\"]\n[triggers]\nrules = [\"r\"]\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("plan.rhai"),
        "fn plan(resource, params) {\n    let x = ;\n}\n",
    )
    .unwrap();
    let (code, _, err) = rectify(&["catalog", "list", "--remediations", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("my-guardrail/plan.rhai:2:"), "{err}");
    // The worker refuses to start the same way, before it touches AWS.
    let (code, _, err) = rectify(&["worker", "--once", "--remediations", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("my-guardrail/plan.rhai:2:"), "{err}");
}

#[test]
fn plan_prints_a_readable_plan_offline() {
    let case = format!(
        "{}/remediations/sg-revoke-open-ssh/tests/mixed-rules.json",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    let (code, out, err) = rectify(&[
        "plan",
        "--remediation",
        "sg-revoke-open-ssh",
        "--resource",
        &case,
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("will perform 4 action(s)"), "{out}");
    assert!(
        out.contains("- ingress tcp 22-22 from 0.0.0.0/0 (\"ssh from anywhere\")"),
        "{out}"
    );
    let case = format!(
        "{}/remediations/vpce-restrict-policy/tests/public-statement.json",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    let dir = temp_dir("plan");
    let resource = dir.join("vpce.json");
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(case).unwrap()).unwrap();
    std::fs::write(&resource, value["resource"].to_string()).unwrap();
    let (code, _, err) = rectify(&[
        "plan",
        "--remediation",
        "vpce-restrict-policy",
        "--resource",
        resource.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("organization_id"), "{err}");
    let (code, out, err) = rectify(&[
        "plan",
        "--remediation",
        "vpce-restrict-policy",
        "--resource",
        resource.to_str().unwrap(),
        "--param",
        "organization_id=o-a1b2c3d4e5",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains('+') && out.contains("aws:PrincipalOrgID"),
        "{out}"
    );
}

#[test]
fn bad_input_exits_2_naming_what_is_wrong() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["settings", "set", "no-such-thing", "--mode", "enforce"],
            "no-such-thing",
        ),
        (
            &[
                "settings",
                "set",
                "sg-revoke-open-ssh",
                "--param",
                "prot=23",
            ],
            "prot",
        ),
        (
            &[
                "settings",
                "set",
                "sg-revoke-open-ssh",
                "--mode",
                "sometimes",
            ],
            "sometimes",
        ),
        (
            &[
                "settings",
                "set",
                "sg-revoke-open-ssh",
                "--account",
                "12",
                "--mode",
                "off",
            ],
            "account",
        ),
        (&["settings", "set", "sg-revoke-open-ssh"], "nothing to set"),
        (
            &["plan", "--remediation", "nope", "--resource", "x.json"],
            "nope",
        ),
        (&["worker", "--prefix", "bad prefix!"], "prefix"),
    ];
    for (args, needle) in cases {
        let (code, out, err) = rectify(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    let dir = temp_dir("config");
    let config = dir.join("rectify.toml");
    std::fs::write(&config, "[worker]\nconcurency = 4\n").unwrap();
    let (code, _, err) = rectify(&["catalog", "list", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("concurency"), "{err}");
}

#[test]
fn catalog_lists_remediations_and_actions() {
    let (code, out, _) = rectify(&["catalog", "list", "--json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 21);
    // A fix that creates a trail or a recorder needs a person, and the list says so.
    let named = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap()
            .clone()
    };
    for (name, kind) in [
        ("cloudtrail-logging-on", "cloudtrail:CreateTrail"),
        ("config-recorder-on", "config:PutConfigurationRecorder"),
    ] {
        let r = named(name);
        assert_eq!(r["max_mode"], "approval", "{r:#}");
        assert!(
            r["max_mode_kinds"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!(kind)),
            "{r:#}"
        );
    }
    assert_eq!(
        named("s3-block-public-access")["max_mode"],
        serde_json::Value::Null
    );
    assert_eq!(
        named("s3-block-public-access")["controls"],
        serde_json::json!(["S3.8", "S3.2", "S3.3"])
    );
    let (code, out, _) = rectify(&["catalog", "list"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("dry-run (max approval for a plan that takes cloudtrail:CreateTrail)"),
        "{out}"
    );
    let (code, out, _) = rectify(&["catalog", "actions"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("iam:UpdateAccessKey") && out.contains("s3:PutBucketPublicAccessBlock"),
        "{out}"
    );
}

#[test]
fn healthcheck_reads_the_age_of_the_liveness_file() {
    let dir = temp_dir("health");
    let file = dir.join("alive");
    let f = file.to_str().unwrap();
    let (code, _, err) = rectify(&["healthcheck", "--liveness-file", f]);
    assert_eq!(code, 1, "no file: unhealthy");
    assert!(err.contains("has not polled"), "{err}");
    std::fs::write(&file, "now").unwrap();
    let (code, out, _) = rectify(&["healthcheck", "--liveness-file", f]);
    assert_eq!(code, 0);
    assert!(out.contains("healthy"), "{out}");
    let old = Command::new("touch")
        .args(["-d", "10 minutes ago", f])
        .status()
        .unwrap();
    assert!(old.success());
    let (code, _, err) = rectify(&["healthcheck", "--liveness-file", f, "--max-age", "90"]);
    assert_eq!(code, 1);
    assert!(err.contains("the last poll was"), "{err}");
}

#[test]
fn sweep_refuses_a_malformed_region_naming_the_flag() {
    for region in ["Bad Region!", "eu-nowhere-9"] {
        let (code, out, err) = rectify(&["sweep", "--region", region]);
        assert_eq!(code, 2, "{region}: {out}{err}");
        assert!(err.contains("--region") && err.contains(region), "{err}");
    }
}

#[test]
fn sweep_refuses_a_bound_or_rate_out_of_range_naming_the_flag_and_its_rule() {
    for (flag, value, rule) in [
        ("--concurrency", "0", "1 to 1024"),
        ("--concurrency", "5000", "1 to 1024"),
        ("--rate", "0", "above 0"),
        ("--rate", "-3", "above 0"),
        ("--rate", "NaN", "above 0"),
    ] {
        let arg = format!("{flag}={value}");
        let (code, out, err) = rectify(&["sweep", "--all-accounts", &arg]);
        assert_eq!(code, 2, "{flag} {value}: {out}{err}");
        assert!(err.contains(flag) && err.contains(rule), "{err}");
    }
    // One way to name the accounts, and one way to name the regions.
    let (code, _, err) = rectify(&["sweep", "--all-accounts", "--account", "111122223333"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--all-accounts") && err.contains("--account"),
        "{err}"
    );
    let (code, _, err) = rectify(&["sweep", "--all-regions", "--region", "us-east-1"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--all-regions") && err.contains("--region"),
        "{err}"
    );
}

#[test]
fn duration_and_day_flags_take_units_and_name_their_range() {
    for (cmd, flag, value, rule) in [
        (
            &["bootstrap"][..],
            "--visibility-timeout",
            "13h",
            "1 to 43200 seconds",
        ),
        (
            &["bootstrap"][..],
            "--visibility-timeout",
            "0",
            "1 to 43200 seconds",
        ),
        (
            &["worker", "--once"][..],
            "--wait-seconds",
            "30s",
            "0 to 20 seconds",
        ),
        (
            &["audit", "export", "--bucket", "b"][..],
            "--retention-days",
            "36h",
            "whole number of days",
        ),
        (
            &["settings", "tag-exemptions", "on"][..],
            "--max-days",
            "53w",
            "1 to 365 days",
        ),
    ] {
        let args = [cmd, &[flag, value]].concat();
        let (code, out, err) = rectify(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(flag) && err.contains(rule), "{args:?}: {err}");
    }
}

#[test]
fn a_parameter_of_the_wrong_type_or_out_of_bounds_exits_2_naming_it_and_its_rule() {
    let case = format!(
        "{}/remediations/sg-revoke-open-ssh/tests/mixed-rules.json",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    let set = |remediation: &'static str, param: &'static str| -> Vec<String> {
        [
            "settings",
            "set",
            remediation,
            "--param",
            param,
            "--by",
            "t",
        ]
        .map(String::from)
        .to_vec()
    };
    let plan = |remediation: &'static str, param: &'static str| -> Vec<String> {
        [
            "plan",
            "--remediation",
            remediation,
            "--resource",
            &case,
            "--param",
            param,
        ]
        .map(String::from)
        .to_vec()
    };
    let cases: Vec<(Vec<String>, &[&str])> = vec![
        (
            set("sg-revoke-open-ssh", "port=-5"),
            &["--param port", "port = -5", "an integer from 1 to 65535"],
        ),
        (
            set("sg-revoke-open-ssh", "port=65536"),
            &["--param port", "an integer from 1 to 65535"],
        ),
        (
            set("sg-revoke-open-ssh", "port=ssh"),
            &["--param port", "\"ssh\"", "an integer from 1 to 65535"],
        ),
        (
            set("sg-revoke-open-admin-ports", "ports=[3389,0]"),
            &[
                "--param ports",
                "a non-empty list of integers from 1 to 65535",
            ],
        ),
        (
            set("sg-revoke-open-admin-ports", "ports=[]"),
            &["--param ports", "non-empty"],
        ),
        (
            set("iam-deactivate-stale-keys", "max_unused_days=-1"),
            &["--param max_unused_days", "an integer from 0 to 36500"],
        ),
        (
            set("vpce-restrict-policy", "organization_id=o-abc"),
            &["--param organization_id", "text matching o-[a-z0-9]{10,32}"],
        ),
        (
            set("sg-revoke-open-ssh", "prot=22"),
            &["--param prot", "has no parameter \"prot\" (it has: port)"],
        ),
        (
            plan("sg-revoke-open-ssh", "port=-5"),
            &["--param port", "an integer from 1 to 65535"],
        ),
        (
            plan("sg-revoke-open-ssh", "prot=22"),
            &["--param prot", "has no parameter \"prot\""],
        ),
    ];
    for (args, needles) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = rectify(&args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        for needle in needles {
            assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
        }
    }
    // A value within its rule plans.
    let (code, out, err) = rectify(
        &plan("sg-revoke-open-ssh", "port=2222")
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(code, 0, "{out}{err}");
}

#[test]
fn a_manifest_with_a_bad_parameter_schema_stops_start_up_naming_file_and_line() {
    let dir = temp_dir("schema");
    let folder = dir.join("my-guardrail");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("remediation.toml"),
        "name = \"my-guardrail\"\ndescription = \"x\"\nresource_type = \"AWS::EC2::SecurityGroup\"\nactions = [\"ec2:RevokeSecurityGroupIngress\"]\n[triggers]\nrules = [\"r\"]\n[params.port]\ndescription = \"p\"\ntype = \"integer\"\nmin = 1\nmax = 65535\ndefault = 0\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("plan.rhai"),
        "fn plan(resource, params) { [] }\n",
    )
    .unwrap();
    for args in [vec!["catalog", "list"], vec!["worker", "--once"]] {
        let mut args = args;
        args.extend(["--remediations", dir.to_str().unwrap()]);
        let (code, _, err) = rectify(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("my-guardrail/remediation.toml:7:")
                && err.contains("parameter port: `default` 0 is not an integer from 1 to 65535"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn plan_refuses_a_plan_aimed_at_another_resource_naming_the_action_and_the_rule() {
    let dir = temp_dir("unbound");
    let folder = dir.join("aims-elsewhere");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("remediation.toml"),
        "name = \"aims-elsewhere\"\ndescription = \"x\"\nresource_type = \"AWS::S3::Bucket\"\n\
         actions = [\"s3:PutPublicAccessBlock\"]\n[triggers]\nrules = [\"r\"]\n",
    )
    .unwrap();
    std::fs::write(
        folder.join("plan.rhai"),
        "fn plan(r, p) { [s3_put_public_access_block(\"someone-elses-bucket\")] }\n",
    )
    .unwrap();
    let resource = dir.join("bucket.json");
    std::fs::write(
        &resource,
        r#"{"bucket": "mine", "public_access_block": null, "tags": {}}"#,
    )
    .unwrap();
    let (code, out, err) = rectify(&[
        "plan",
        "--remediations",
        dir.to_str().unwrap(),
        "--remediation",
        "aims-elsewhere",
        "--resource",
        resource.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}");
    assert!(
        err.contains("action 1 (s3:PutPublicAccessBlock)")
            && err.contains("an action targets only the observed resource")
            && err.contains("someone-elses-bucket"),
        "{err}"
    );
}

#[test]
fn catalog_permissions_lists_the_workers_and_the_operators_roles_apart() {
    let list = |role: &str| -> Vec<String> {
        let (code, out, err) = rectify(&["catalog", "permissions", "--role", role, "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        serde_json::from_value(v[role].clone()).unwrap()
    };
    let (worker, operator) = (list("worker"), list("operator"));
    assert!(worker.contains(&"ec2:RevokeSecurityGroupIngress".to_string()));
    assert!(!worker.contains(&"ec2:AuthorizeSecurityGroupIngress".to_string()));
    assert!(operator.contains(&"ec2:AuthorizeSecurityGroupIngress".to_string()));
    assert!(!operator.contains(&"ec2:RevokeSecurityGroupIngress".to_string()));
    let (code, _, err) = rectify(&["catalog", "permissions", "--role", "admin"]);
    assert_eq!(code, 2);
    assert!(err.contains("--role"), "{err}");
}

#[test]
fn scripts_style_their_output_only_on_a_terminal() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .args(["-c", "source scripts/lib.sh && say building"])
        .current_dir(root)
        .env_remove("NO_COLOR")
        .output()
        .expect("run bash");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "\n==> building\n");
}

#[test]
fn bulk_job_commands_refuse_a_bad_selection_before_reading_anything() {
    let cases: &[(&[&str], &str)] = &[
        (&["jobs", "retry"], "name job ids"),
        (
            &["jobs", "approve", "--status", "applied"],
            "--status applied",
        ),
        (&["jobs", "retry", "--status", "sometimes"], "sometimes"),
        (
            &["jobs", "reject", "--account", "12", "--reason", "x"],
            "--account",
        ),
        (
            &[
                "jobs",
                "approve",
                "--remediation",
                "s3-block-public-access",
                "--plan-hash",
                "0123456789abcdef",
            ],
            "--plan-hash",
        ),
    ];
    for (args, needle) in cases {
        let (code, out, err) = rectify(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

/// Runs rectify with no AWS set-up at all but `env`: no profile, no files (a fresh HOME), no metadata service
/// answering (its endpoint refuses connections).
fn rectify_bare_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let home = temp_dir("bare-home");
    let out = Command::new(env!("CARGO_BIN_EXE_rectify"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1")
        .env("RECTIFY_LOG_FORMAT", "text")
        .envs(env.iter().copied())
        .output()
        .expect("run rectify");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_missing_region_or_credentials_is_named_with_its_fix_and_no_sdk_noise() {
    let (code, out, err) = rectify_bare_env(&["jobs", "list"], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("no AWS region") && err.contains("AWS_REGION"),
        "{err}"
    );
    assert!(!err.contains("WARN") && !err.contains("IMDS"), "{err}");
    let (code, out, err) = rectify_bare_env(&["jobs", "list"], &[("AWS_REGION", "eu-west-1")]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("no AWS credentials") && err.contains("AWS_PROFILE"),
        "{err}"
    );
    assert!(!err.contains("could not reach AWS"), "{err}");
    assert!(!err.contains("WARN"), "{err}");
}

#[test]
fn an_endpoint_that_refuses_connections_exits_3_not_1() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (code, out, err) = rectify_bare_env(
        &["audit", "verify"],
        &[
            ("AWS_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_ENDPOINT_URL", &url),
            ("AWS_MAX_ATTEMPTS", "1"),
        ],
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(
        err.contains("could not reach AWS") && err.contains(&url) && err.contains("run it again"),
        "{err}"
    );
}

#[test]
fn plan_names_the_resource_type_a_remediation_expects_and_the_one_the_file_holds() {
    let dir = temp_dir("plan-type");
    let typed = dir.join("typed.json");
    std::fs::write(
        &typed,
        r#"{"type": "AWS::EC2::SecurityGroup", "group_id": "sg-1", "ip_permissions": []}"#,
    )
    .unwrap();
    let (code, out, err) = rectify(&[
        "plan",
        "--remediation",
        "s3-block-public-access",
        "--resource",
        typed.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("AWS::S3::Bucket") && err.contains("AWS::EC2::SecurityGroup"),
        "{err}"
    );
    // Without a "type": the fields the remediation's resources have, and the type the file's
    // fields belong to.
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    let case: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{root}/remediations/sg-revoke-open-ssh/tests/mixed-rules.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let mut group = case["resource"].clone();
    group.as_object_mut().unwrap().remove("type");
    let headless = dir.join("headless.json");
    std::fs::write(&headless, group.to_string()).unwrap();
    let (code, out, err) = rectify(&[
        "plan",
        "--remediation",
        "s3-block-public-access",
        "--resource",
        headless.to_str().unwrap(),
    ]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        err.contains("expects an AWS::S3::Bucket")
            && err.contains("bucket")
            && err.contains("looks like an AWS::EC2::SecurityGroup"),
        "{err}"
    );
}

/// The benchmark's modes are documented and its parts parse their arguments, all without
/// building, starting moto or reaching AWS.
#[test]
fn bench_documents_its_modes_and_refuses_an_unknown_one_without_building() {
    let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    for script in ["bench_latency.py", "bench_peer.py"] {
        let out = Command::new(format!("{root}/.venv/bin/python"))
            .arg(format!("{root}/scripts/{script}"))
            .arg("--help")
            .output()
            .expect("run the project venv's python");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("--rectify"),
            "{script}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let bench = |arg: &str| {
        Command::new("bash")
            .arg(format!("{root}/scripts/bench"))
            .arg(arg)
            .output()
            .expect("run scripts/bench")
    };
    let help = bench("--help");
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(help.status.success(), "{text}");
    for mode in [
        "--latency",
        "--peer",
        "--no-build",
        "--profile",
        "p50/p99",
        "critical",
        "c7n",
    ] {
        assert!(text.contains(mode), "no {mode} in: {text}");
    }
    let bad = bench("--fast");
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(err.contains("'--fast'") && err.contains("--peer"), "{err}");
    // A profile is of the side-by-side run; alone it is refused before anything is built.
    let lone = bench("--profile");
    let err = String::from_utf8_lossy(&lone.stderr);
    assert_eq!(lone.status.code(), Some(2), "{err}");
    assert!(err.contains("--profile goes with --peer"), "{err}");
}

/// The section of `help` that starts at the line `heading`, up to the next heading.
fn help_section<'a>(help: &'a str, heading: &str) -> &'a str {
    let start = help
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("no {heading:?} in:\n{help}"));
    let rest = &help[start + heading.len() + 2..];
    let end = rest
        .match_indices("\n\n")
        .map(|(i, _)| i)
        .find(|&i| {
            rest[i + 2..]
                .lines()
                .next()
                .is_some_and(|l| l.ends_with(':') && !l.starts_with(' '))
        })
        .unwrap_or(rest.len());
    &rest[..end]
}

const GLOBAL_FLAGS: [&str; 10] = [
    "--config",
    "--prefix",
    "--role-name",
    "--operator-role-name",
    "--external-id",
    "--remediations",
    "--log-format",
    "--approval-ttl-seconds",
    "--notify-topic-arn",
    "--liveness-file",
];

#[test]
fn help_lists_global_options_under_their_own_heading_after_the_commands_own() {
    for args in [
        &["--help"][..],
        &["jobs", "list", "--help"],
        &["settings", "set", "--help"],
        &["audit", "verify", "--help"],
    ] {
        let (code, help, err) = rectify(args);
        assert_eq!(code, 0, "{args:?}: {err}");
        let own = help_section(&help, "Options:");
        let global = help_section(&help, "Global options:");
        assert!(
            help.find("\nOptions:\n") < help.find("\nGlobal options:\n"),
            "{args:?}: the command's own options come first:\n{help}"
        );
        for flag in GLOBAL_FLAGS {
            assert!(
                global.contains(flag),
                "{args:?}: {flag} not under Global options:\n{help}"
            );
            assert!(
                !own.contains(flag),
                "{args:?}: {flag} among the command's own:\n{help}"
            );
        }
    }
    let (_, help, _) = rectify(&["jobs", "list", "--help"]);
    assert!(
        help_section(&help, "Options:").contains("--status"),
        "{help}"
    );
}

#[test]
fn enum_flags_show_their_possible_values_in_help() {
    let (_, help, _) = rectify(&["settings", "set", "--help"]);
    assert!(
        help.contains("[possible values: off, dry-run, approval, enforce]"),
        "{help}"
    );
    let (_, help, _) = rectify(&["jobs", "list", "--help"]);
    assert!(
        help.contains("[possible values: in-progress, planned,"),
        "{help}"
    );
    let (_, help, _) = rectify(&["jobs", "approve", "--help"]);
    assert!(help.contains("pending-approval"), "{help}");
    let (_, help, _) = rectify(&["--help"]);
    assert!(help.contains("[possible values: text, json]"), "{help}");
    // A word that is none of them is refused naming the flag and the words it takes.
    let (code, _, err) = rectify(&["jobs", "list", "--status", "done"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--status") && err.contains("pending-approval"),
        "{err}"
    );
}

#[test]
fn bare_rectify_prints_the_full_help() {
    let (code, out, err) = rectify(&[]);
    assert_eq!(code, 0, "{err}");
    let (_, long, _) = rectify(&["--help"]);
    assert_eq!(out, long);
    assert!(
        out.contains("Getting started:") && out.contains("Commands:"),
        "{out}"
    );
}

#[test]
fn completions_for_each_shell_name_the_commands() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = rectify(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        // (fish spells a flag `-l remediation`)
        for word in ["bootstrap", "worker", "approve", "remediation", "dry-run"] {
            assert!(out.contains(word), "{shell}: no {word} in:\n{out}");
        }
    }
    let (code, _, err) = rectify(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("bash"), "{err}");
}

#[test]
fn the_man_page_comes_from_the_same_definitions() {
    let (code, page, err) = rectify(&["man"]);
    assert_eq!(code, 0, "{err}");
    assert!(page.contains(".TH rectify 1"), "{page}");
    for word in ["bootstrap", "worker", "sweep", "doctor", "\\-\\-prefix"] {
        assert!(page.contains(word), "no {word} in:\n{page}");
    }
    let dir = temp_dir("man");
    let (code, _, err) = rectify(&["man", "--dir", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    for page in [
        "rectify.1",
        "rectify-jobs.1",
        "rectify-jobs-approve.1",
        "rectify-settings-set.1",
    ] {
        let text =
            std::fs::read_to_string(dir.join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        assert!(text.contains(".TH"), "{page}: {text}");
    }
    let approve = std::fs::read_to_string(dir.join("rectify-jobs-approve.1")).unwrap();
    assert!(approve.contains("plan\\-hash"), "{approve}");
}

#[test]
fn every_command_that_prints_data_takes_output_table_or_json() {
    for cmd in [
        &["bootstrap"][..],
        &["settings", "list"],
        &["settings", "set"],
        &["settings", "accounts", "add"],
        &["jobs", "list"],
        &["jobs", "show"],
        &["jobs", "approve"],
        &["jobs", "reject"],
        &["jobs", "retry"],
        &["jobs", "undo"],
        &["audit", "list"],
        &["audit", "show"],
        &["audit", "verify"],
        &["audit", "export"],
        &["catalog", "list"],
        &["catalog", "test"],
        &["plan"],
        &["dlq", "list"],
        &["dlq", "redrive"],
        &["exemptions", "add"],
        &["exemptions", "list"],
        &["exemptions", "remove"],
        &["pause"],
        &["resume"],
        &["sweep"],
        &["doctor"],
    ] {
        let mut args = cmd.to_vec();
        args.push("--help");
        let (code, out, err) = rectify(&args);
        assert_eq!(code, 0, "{cmd:?}: {err}");
        // Help wraps to the terminal: compare with runs of whitespace as one space.
        let out = out.split_whitespace().collect::<Vec<_>>().join(" ");
        // Long help lists each possible value with its description; short help lists them
        // in brackets.
        let values = out.contains("[possible values: table, json]")
            || (out.contains("Possible values: - table:") && out.contains("- json:"));
        assert!(
            out.contains("--output <FORMAT>") && values,
            "{cmd:?} has no --output table|json:\n{out}"
        );
        assert!(out.contains("--json"), "{cmd:?} lost --json:\n{out}");
    }
}

#[test]
fn json_is_an_alias_of_output_json_and_they_do_not_mix() {
    let case = format!(
        "{}/remediations/sg-revoke-open-ssh/tests/mixed-rules.json",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    let plan = |flags: &[&str]| {
        let mut args = vec![
            "plan",
            "--remediation",
            "sg-revoke-open-ssh",
            "--resource",
            &case,
        ];
        args.extend_from_slice(flags);
        rectify(&args)
    };
    let (code, by_output, err) = plan(&["--output", "json"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&by_output).expect("JSON");
    assert!(v.is_object() && v["actions"].is_array(), "{v:#}");
    let (code, by_alias, _) = plan(&["--json"]);
    assert_eq!(code, 0);
    assert_eq!(by_alias, by_output);
    let (code, table, _) = plan(&["--output", "table"]);
    assert_eq!(code, 0);
    assert!(table.contains("will perform 4 action(s)"), "{table}");
    let (code, _, err) = plan(&["--json", "--output", "table"]);
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = plan(&["--output", "yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("possible values: table, json"), "{err}");
}

#[test]
fn time_and_duration_flags_take_relative_forms_and_name_the_flag_when_wrong() {
    let dir = temp_dir("durations");
    let file = dir.join("alive");
    let f = file.to_str().unwrap();
    std::fs::write(&file, "now").unwrap();
    let old = Command::new("touch")
        .args(["-d", "10 minutes ago", f])
        .status()
        .unwrap();
    assert!(old.success());
    // Ten minutes old: within 1h, not within 5m (the same bound in seconds agrees).
    let (code, out, err) = rectify(&["healthcheck", "--liveness-file", f, "--max-age", "1h"]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, _) = rectify(&["healthcheck", "--liveness-file", f, "--max-age", "5m"]);
    assert_eq!(code, 1);
    let (code, _, _) = rectify(&["healthcheck", "--liveness-file", f, "--max-age", "300"]);
    assert_eq!(code, 1);
    for (args, flag) in [
        (&["healthcheck", "--max-age", "5x"][..], "--max-age"),
        (&["jobs", "list", "--since", "3600"], "--since"),
        (
            &["audit", "list", "--since", "2026-12-01T10:00:00"],
            "--since",
        ),
        (
            &["audit", "verify", "--max-anchor-age", "soon"],
            "--max-anchor-age",
        ),
        (&["worker", "--sweep-every", "30s"], "--sweep-every"),
        (
            &[
                "exemptions",
                "add",
                "--remediation",
                "r",
                "--resource",
                "b",
                "--reason",
                "x",
                "--until",
                "13/01/2027",
            ],
            "--until",
        ),
    ] {
        let (code, out, err) = rectify(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}
