//! The in-process path of one finding, without AWS: decode the event, route it, gate it
//! (settings, exemptions, allow-list), plan it with its script, build and hash its audit record.
//! Prints wall and CPU time per finding. Run by `scripts/bench` (release build):
//!
//!     cargo run --release --example controller_bench -- 20000

use std::collections::BTreeMap;
use std::time::Instant;

use rectify::audit::Record;
use rectify::catalog::Catalog;
use rectify::clock::today;
use rectify::event::{Message, decode};
use rectify::reconcile::gates;
use rectify::reconcile::new_job;
use rectify::script::{Limits, hardened_engine};
use rectify::state::SettingsSnapshot;
use serde_json::{Value, json};

#[path = "support/cpu.rs"]
mod cpu;
use cpu::cpu_seconds;

fn event(rule: &str, resource_type: &str, id: &str, n: usize) -> String {
    json!({
        "version": "0", "id": format!("bench-{n}"), "detail-type": "Config Rules Compliance Change",
        "source": "aws.config", "account": "123456789012", "time": "2026-11-22T00:00:00Z", "region": "us-east-1",
        "resources": [], "detail": {
            "resourceId": id, "awsRegion": "us-east-1", "awsAccountId": "123456789012", "configRuleName": rule,
            "resourceType": resource_type, "messageType": "ComplianceChangeNotification",
            "newEvaluationResult": {"evaluationResultIdentifier": {"orderingTimestamp": format!("2026-11-22T00:00:{:02}.{:03}Z", n % 60, n % 1000)},
                                    "complianceType": "NON_COMPLIANT", "annotation": null}
        }
    })
    .to_string()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let engine = hardened_engine(&Limits::default());
    let catalog = Catalog::load(&engine, None).expect("catalog");
    let mut snapshot = SettingsSnapshot::default();
    // The allow-list fails closed: the benchmark's account is allowed.
    snapshot.global.accounts = vec!["123456789012".into()];
    snapshot.settings.push(rectify::state::Setting {
        remediation: "vpce-restrict-policy".into(),
        scope: "*".into(),
        params: serde_json::Map::from_iter([(
            "organization_id".to_string(),
            json!("o-a1b2c3d4e5"),
        )]),
        ..Default::default()
    });
    let now = "2026-11-22T00:00:00.000Z";
    let kinds: Vec<(String, Value)> = vec![
        (
            event(
                "s3-bucket-level-public-access-prohibited",
                "AWS::S3::Bucket",
                "bench-bucket",
                0,
            ),
            json!({"type": "AWS::S3::Bucket", "id": "bench-bucket", "observed_at": now, "bucket": "bench-bucket",
                   "public_access_block": null, "tags": {}}),
        ),
        (
            event(
                "restricted-ssh",
                "AWS::EC2::SecurityGroup",
                "sg-0123456789abcdef0",
                0,
            ),
            json!({"type": "AWS::EC2::SecurityGroup", "id": "sg-0123456789abcdef0", "observed_at": now,
                   "group_id": "sg-0123456789abcdef0", "tags": {}, "ingress_rules": [
                {"rule_id": "sgr-1", "protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_ipv4": "0.0.0.0/0"},
                {"rule_id": "sgr-2", "protocol": "tcp", "from_port": 443, "to_port": 443, "cidr_ipv4": "0.0.0.0/0"},
                {"rule_id": "sgr-3", "protocol": "tcp", "from_port": 22, "to_port": 22, "cidr_ipv4": "10.0.0.0/8"}]}),
        ),
        (
            event("access-keys-rotated", "AWS::IAM::User", "bench-user", 0),
            json!({"type": "AWS::IAM::User", "id": "bench-user", "observed_at": now, "user_name": "bench-user", "tags": {},
                   "access_keys": [{"access_key_id": "AKIA0000000000000001", "status": "Active",
                                    "created_at": "2025-01-01T00:00:00Z", "last_used_at": null}]}),
        ),
        (
            event(
                "vpc-endpoint-policy-check",
                "AWS::EC2::VPCEndpoint",
                "vpce-0123456789abcdef0",
                0,
            ),
            json!({"type": "AWS::EC2::VPCEndpoint", "id": "vpce-0123456789abcdef0", "observed_at": now,
                   "vpc_endpoint_id": "vpce-0123456789abcdef0", "tags": {},
                   "policy_document": "{\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"*\",\"Resource\":\"*\"}]}"}),
        ),
    ];
    let deadline = std::time::Duration::from_millis(250);
    let mut hashes = 0usize;
    let (wall, cpu) = (Instant::now(), cpu_seconds());
    for i in 0..n {
        let (body, resource) = &kinds[i % kinds.len()];
        let Ok(Message::Findings(findings)) = decode(body) else {
            panic!("decode")
        };
        let finding = &findings[0];
        let routes = catalog.route(
            &finding.resource_type,
            &finding.rule,
            &finding.rule_base,
            &BTreeMap::new(),
        );
        for r in routes {
            let mode = snapshot.mode_for(&r, &finding.account);
            let today = today();
            let params = gates::before_observe(
                &snapshot,
                &r,
                mode,
                &finding.account,
                &finding.resource_id,
                &today,
                None,
            )
            .expect("the gates let it through");
            gates::after_observe(&snapshot, &r, &finding.account, resource, &today)
                .expect("not exempt");
            let plan = r.plan(&engine, resource, &params, deadline).expect("plan");
            let mut job = new_job(finding, &r, mode);
            let hash = plan.hash();
            let outcome = gates::after_plan(&snapshot, &r, mode, &plan, &hash, None, &job.id)
                .expect_err("dry-run records the plan");
            job.plan_hash = Some(hash);
            job.plan = Some(plan);
            job.before = Some(resource.clone());
            job.status = outcome.status();
            job.reason = Some(outcome.reason());
            let mut record: Record = Record::for_job(&job, "worker");
            record.hash = record.compute_hash();
            hashes += record.hash.len();
        }
    }
    let (wall, cpu) = (wall.elapsed().as_secs_f64(), cpu_seconds() - cpu);
    assert!(hashes > 0);
    println!(
        "{{\"findings\": {n}, \"wall_us_per_finding\": {:.1}, \"cpu_us_per_finding\": {:.1}}}",
        wall * 1e6 / n as f64,
        cpu * 1e6 / n as f64
    );
}
