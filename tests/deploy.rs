//! The deployment templates grant exactly what rectify calls: the worker's member role holds
//! what the observers and the tightening actions need, the operator's member role (undo) what
//! the observers and the inverses need, and the controller task role's actions
//! equal what the worker calls in its own account. No `*` action anywhere. (cfn-lint and checkov
//! run on the same templates in CI.)

use std::collections::BTreeSet;

use serde_json::Value;

fn template(name: &str) -> Value {
    let path = format!(
        "{}/deploy/{name}",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// Every Allow action in the inline policies of `role` and in the policies attached to it.
fn role_actions(t: &Value, role: &str) -> BTreeSet<String> {
    let resources = t["Resources"].as_object().unwrap();
    let mut docs: Vec<&Value> = resources[role]["Properties"]["Policies"]
        .as_array()
        .map(|p| p.iter().map(|p| &p["PolicyDocument"]).collect())
        .unwrap_or_default();
    for r in resources.values() {
        let kind = r["Type"].as_str().unwrap_or_default();
        if kind == "AWS::IAM::Policy" || kind == "AWS::IAM::ManagedPolicy" {
            let roles = &r["Properties"]["Roles"];
            if roles
                .as_array()
                .is_some_and(|rs| rs.iter().any(|x| x["Ref"] == role))
            {
                docs.push(&r["Properties"]["PolicyDocument"]);
            }
        }
    }
    let mut actions = BTreeSet::new();
    for doc in docs {
        for st in doc["Statement"].as_array().unwrap() {
            if st["Effect"] == "Allow" {
                actions.extend(strings(&st["Action"]));
            }
        }
    }
    actions
}

fn no_wildcard_actions(v: &Value, path: &str) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "Action" || k == "NotAction" {
                    for a in strings(x) {
                        assert!(!a.contains('*'), "{path}.{k}: wildcard action {a}");
                    }
                }
                no_wildcard_actions(x, &format!("{path}.{k}"));
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, x)| no_wildcard_actions(x, &format!("{path}[{i}]"))),
        _ => {}
    }
}

/// The one role of the template named `name`.
fn role_named<'a>(t: &'a Value, name: &str) -> (&'a String, &'a Value) {
    let roles: Vec<(&String, &Value)> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| {
            r["Type"] == "AWS::IAM::Role" && r["Properties"]["RoleName"].as_str() == Some(name)
        })
        .collect();
    assert_eq!(roles.len(), 1, "one role named {name}");
    roles[0]
}

fn assert_exactly(granted: &BTreeSet<String>, needed: &[&str], role: &str) {
    let needed: BTreeSet<String> = needed
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    let missing: Vec<&String> = needed.difference(granted).collect();
    let extra: Vec<&String> = granted.difference(&needed).collect();
    assert!(
        missing.is_empty(),
        "{role}: calls the role does not allow: {missing:?}"
    );
    assert!(extra.is_empty(), "{role}: grants no call needs: {extra:?}");
}

#[test]
fn the_member_roles_allow_exactly_what_the_catalog_calls() {
    use rectify::resource::{MemberRole, member_permissions};
    let t = template("member.json");
    no_wildcard_actions(&t, "member.json");
    for (name, role) in [
        ("rectify-remediation", MemberRole::Worker),
        ("rectify-operator", MemberRole::Operator),
    ] {
        let (id, _) = role_named(&t, name);
        assert_exactly(&role_actions(&t, id), &member_permissions(role), name);
    }
    // The worker's role only tightens: the inverses that loosen are the operator's.
    let (worker, _) = role_named(&t, "rectify-remediation");
    let worker = role_actions(&t, worker);
    assert!(!worker.contains("ec2:AuthorizeSecurityGroupIngress"));
    assert!(
        member_permissions(MemberRole::Operator).contains(&"ec2:AuthorizeSecurityGroupIngress")
    );
}

#[test]
fn s3_statements_hold_to_buckets_of_the_member_account() {
    let t = template("member.json");
    for name in ["rectify-remediation", "rectify-operator"] {
        let (_, role) = role_named(&t, name);
        for st in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
        {
            let actions = strings(&st["Action"]);
            // s3:ListAllMyBuckets names no bucket: it lists the account's own.
            if actions
                .iter()
                .any(|a| a.starts_with("s3:") && a != "s3:ListAllMyBuckets")
            {
                assert!(
                    actions.iter().all(|a| a.starts_with("s3:")),
                    "{name}: an S3 statement holds S3 actions only: {st:#}"
                );
                assert_eq!(
                    st["Condition"]["StringEquals"]["s3:ResourceAccount"]["Ref"], "AWS::AccountId",
                    "{name}: {st:#}"
                );
            }
        }
    }
}

#[test]
fn only_the_operator_principal_of_the_controller_account_assumes_the_operator_role() {
    let t = template("member.json");
    let (_, role) = role_named(&t, "rectify-operator");
    let trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        .as_array()
        .unwrap();
    assert_eq!(trust.len(), 1);
    let st = &trust[0];
    assert_eq!(st["Effect"], "Allow");
    assert_eq!(
        st["Principal"]["AWS"],
        serde_json::json!([{"Ref": "OperatorRoleArn"}]),
        "the controller's task role may not assume it"
    );
    let equals = &st["Condition"]["StringEquals"];
    assert_eq!(equals["aws:PrincipalAccount"]["Ref"], "ControllerAccountId");
    assert_eq!(equals["sts:ExternalId"]["Ref"], "ExternalId");
    assert_eq!(role["Condition"], "CreateOperatorRole");
}

#[test]
fn the_controller_task_role_allows_exactly_what_the_worker_calls() {
    let t = template("controller.json");
    no_wildcard_actions(&t, "controller.json");
    let resources = t["Resources"].as_object().unwrap();
    let task = resources
        .values()
        .find(|r| r["Type"] == "AWS::ECS::TaskDefinition")
        .expect("a task definition");
    let role = task["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
        .as_str()
        .expect("TaskRoleArn is Fn::GetAtt [Role, Arn]");
    let granted = role_actions(&t, role);
    let needed: BTreeSet<String> = rectify::cloud::CONTROLLER_PERMISSIONS
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    let missing: Vec<&String> = needed.difference(&granted).collect();
    let extra: Vec<&String> = granted.difference(&needed).collect();
    assert!(
        missing.is_empty(),
        "calls the task role does not allow: {missing:?}"
    );
    assert!(extra.is_empty(), "grants no call needs: {extra:?}");
    let tables: Vec<&Value> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::DynamoDB::Table")
        .collect();
    assert_eq!(tables.len(), 3);
    for t in tables {
        assert_eq!(
            t["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
            true
        );
    }
}
