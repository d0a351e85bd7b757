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

/// A name as the template gives it with its parameters' defaults: a string, or an `Fn::Sub` of
/// parameters (`rectify-remediation` for `${Prefix}-remediation`).
fn default_name(t: &Value, v: &Value) -> Option<String> {
    if let Some(s) = v.as_str() {
        return Some(s.to_string());
    }
    let mut s = v["Fn::Sub"].as_str()?.to_string();
    for (name, p) in t["Parameters"].as_object()? {
        if let Some(d) = p["Default"].as_str() {
            s = s.replace(&format!("${{{name}}}"), d);
        }
    }
    Some(s)
}

/// The one role of the template named `name`.
fn role_named<'a>(t: &'a Value, name: &str) -> (&'a String, &'a Value) {
    let roles: Vec<(&String, &Value)> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| {
            r["Type"] == "AWS::IAM::Role"
                && default_name(t, &r["Properties"]["RoleName"]).as_deref() == Some(name)
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

/// The statements of the queue policy that covers the queue resource `queue`.
fn queue_policy(t: &Value, queue: &str) -> Vec<Value> {
    let resources = t["Resources"].as_object().unwrap();
    let policies: Vec<&Value> = resources
        .values()
        .filter(|r| {
            r["Type"] == "AWS::SQS::QueuePolicy"
                && r["Properties"]["Queues"]
                    .as_array()
                    .is_some_and(|q| q.iter().any(|x| x["Ref"] == queue))
        })
        .collect();
    assert_eq!(policies.len(), 1, "one queue policy for {queue}");
    policies[0]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn both_security_hub_formats_and_the_remediate_action_reach_the_queue() {
    let t = template("controller.json");
    let r = &t["Resources"];
    let ocsf = &r["SecurityHubOcsfFindingsRule"]["Properties"]["EventPattern"];
    assert_eq!(
        ocsf["detail-type"],
        serde_json::json!(["Findings Imported V2"])
    );
    assert_eq!(
        ocsf["detail"]["findings"]["class_uid"],
        serde_json::json!([2003])
    );
    let action = &r["RemediateAction"];
    assert_eq!(action["Type"], "AWS::SecurityHub::ActionTarget");
    assert_eq!(action["Properties"]["Name"], "Remediate with rectify");
    let custom = &r["SecurityHubCustomActionRule"]["Properties"]["EventPattern"];
    assert_eq!(
        custom["detail-type"],
        serde_json::json!(["Security Hub Findings - Custom Action"])
    );
    assert_eq!(
        custom["resources"],
        serde_json::json!([{"Ref": "RemediateAction"}]),
        "only this action's findings"
    );
    for rule in ["SecurityHubOcsfFindingsRule", "SecurityHubCustomActionRule"] {
        assert_eq!(
            r[rule]["Properties"]["Targets"][0]["Arn"],
            serde_json::json!({"Fn::GetAtt": ["Queue", "Arn"]}),
            "{rule}"
        );
    }
}

#[test]
fn only_the_event_rules_send_to_the_event_queue_and_only_operators_to_the_control_queue() {
    let t = template("controller.json");
    let resources = t["Resources"].as_object().unwrap();
    let rules = serde_json::json!([
        {"Fn::GetAtt": ["ConfigComplianceRule", "Arn"]},
        {"Fn::GetAtt": ["SecurityHubFindingsRule", "Arn"]},
        {"Fn::GetAtt": ["SecurityHubOcsfFindingsRule", "Arn"]},
        {"Fn::GetAtt": ["SecurityHubCustomActionRule", "Arn"]}
    ]);
    let operators = serde_json::json!({"Ref": "OperatorPrincipalArns"});

    // The event queue: the EventBridge rules are let in, and everyone else is denied.
    let events = queue_policy(&t, "Queue");
    for st in events.iter().filter(|s| s["Effect"] == "Allow") {
        assert_eq!(
            st["Principal"],
            serde_json::json!({"Service": "events.amazonaws.com"})
        );
        assert_eq!(st["Condition"]["ArnEquals"]["aws:SourceArn"], rules);
    }
    let deny = events
        .iter()
        .find(|s| s["Effect"] == "Deny")
        .expect("the event queue's policy denies other senders explicitly");
    assert_eq!(deny["Principal"], "*");
    assert_eq!(
        deny["Action"], "sqs:SendMessage",
        "receive and delete stay the owner's"
    );
    assert_eq!(deny["Condition"]["ArnNotEquals"]["aws:SourceArn"], rules);
    assert_eq!(
        deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"],
        operators
    );

    // The control queue: operators only.
    let control = &resources["ControlQueue"];
    assert_eq!(control["Type"], "AWS::SQS::Queue");
    assert_eq!(
        control["Properties"]["QueueName"],
        serde_json::json!({"Fn::Sub": "${Prefix}-control"})
    );
    let statements = queue_policy(&t, "ControlQueue");
    let allows: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .collect();
    assert_eq!(allows.len(), 1);
    assert_eq!(allows[0]["Principal"]["AWS"], operators);
    assert_eq!(allows[0]["Action"], "sqs:SendMessage");
    let deny = statements
        .iter()
        .find(|s| s["Effect"] == "Deny")
        .expect("the control queue's policy denies other senders explicitly");
    assert_eq!(deny["Principal"], "*");
    assert_eq!(deny["Action"], "sqs:SendMessage");
    assert_eq!(
        deny["Condition"],
        serde_json::json!({"ArnNotEquals": {"aws:PrincipalArn": operators}})
    );

    // The worker reads the control queue and never writes to it.
    let task_policy = &resources["TaskRolePolicy"]["Properties"]["PolicyDocument"]["Statement"];
    for st in task_policy.as_array().unwrap() {
        let on_control = strings(&st["Resource"]).is_empty()
            && st["Resource"].to_string().contains("\"ControlQueue\"");
        if on_control {
            assert!(
                !strings(&st["Action"])
                    .iter()
                    .any(|a| a == "sqs:SendMessage"),
                "the task role can send to the control queue: {st}"
            );
        }
    }
    assert!(
        task_policy.to_string().contains("\"ControlQueue\""),
        "the task role reads the control queue"
    );
}

#[test]
fn the_audit_table_is_append_only_for_every_principal() {
    let t = template("controller.json");
    let resources = t["Resources"].as_object().unwrap();
    let audit = &resources["AuditTable"]["Properties"];
    assert_eq!(audit["DeletionProtectionEnabled"], true);
    let statements = audit["ResourcePolicy"]["PolicyDocument"]["Statement"]
        .as_array()
        .expect("the audit table has a resource policy");
    let denied: BTreeSet<String> = statements
        .iter()
        .filter(|s| s["Effect"] == "Deny" && s["Principal"] == "*" && s["Condition"].is_null())
        .flat_map(|s| strings(&s["Action"]))
        .collect();
    for action in [
        "dynamodb:DeleteItem",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:PartiQLDelete",
        "dynamodb:PartiQLUpdate",
        "dynamodb:UpdateTimeToLive",
        "dynamodb:DeleteTable",
    ] {
        assert!(
            denied.contains(action),
            "{action} is not denied to every principal: {denied:?}"
        );
    }
    assert!(
        statements.iter().all(|s| s["Effect"] == "Deny"),
        "the audit table's policy only denies"
    );
    // Nor does the task role's own policy grant a change of the audit table.
    for r in resources.values() {
        if r["Type"] != "AWS::IAM::Policy" {
            continue;
        }
        for st in r["Properties"]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
        {
            if st["Effect"] == "Allow" && st["Resource"].to_string().contains("\"AuditTable\"") {
                let actions = strings(&st["Action"]);
                for a in ["dynamodb:DeleteItem", "dynamodb:UpdateItem"] {
                    assert!(
                        !actions.contains(&a.to_string()),
                        "{a} allowed on the audit table"
                    );
                }
            }
        }
    }
}

fn repo_file(name: &str) -> String {
    let path = format!(
        "{}/{name}",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_image_runs_any_command_from_pinned_bases_with_dependencies_cached() {
    let dockerfile = repo_file("Dockerfile");
    let lines: Vec<&str> = dockerfile
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    // `docker run IMAGE audit verify` replaces the command, not the entry point.
    assert!(lines.contains(&r#"ENTRYPOINT ["rectify"]"#), "{dockerfile}");
    assert!(lines.contains(&r#"CMD ["worker"]"#), "{dockerfile}");
    let froms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("FROM ")).collect();
    assert_eq!(froms.len(), 2, "{dockerfile}");
    for from in froms {
        let image = from.split_whitespace().nth(1).unwrap();
        let digest = image.split_once("@sha256:").map(|(_, d)| d);
        assert!(
            digest.is_some_and(|d| d.len() == 64 && d.chars().all(|c| c.is_ascii_hexdigit())),
            "{from}: pin the base image by digest"
        );
    }
    // The dependency build comes before the sources are copied, so it is a layer of its own.
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(needle))
            .unwrap_or_else(|| panic!("no line starting {needle:?}"))
    };
    let deps = pos("COPY Cargo.toml Cargo.lock");
    let first_build = lines
        .iter()
        .enumerate()
        .find(|(_, l)| l.contains("cargo build"))
        .map(|(i, _)| i)
        .unwrap();
    assert!(
        deps < first_build && first_build < pos("COPY src"),
        "{dockerfile}"
    );
}

/// CloudFormation takes a template of at most 51,200 bytes inline (`--template-body`), and up to
/// 1 MB from S3 (`--template-url`, or `deploy --s3-bucket`).
const INLINE_LIMIT: usize = 51_200;

#[test]
fn each_template_is_deployed_the_way_its_size_allows() {
    let ops = repo_file("docs/operations.md");
    for (name, inline) in [
        (
            "deploy/controller.json",
            "--template-file deploy/controller.json",
        ),
        (
            "deploy/member.json",
            "--template-body file://deploy/member.json",
        ),
    ] {
        let size = repo_file(name).len();
        assert!(size < 1_000_000, "{name}: {size} bytes, over S3's 1 MB");
        for (i, _) in ops.match_indices(inline) {
            // The command the guide gives: up to the end of its shell line continuation.
            let command = ops[i..].split("\n\n").next().unwrap();
            if size > INLINE_LIMIT {
                assert!(
                    command.contains("--s3-bucket"),
                    "{name} is {size} bytes, over the inline limit: docs/operations.md must deploy it through S3: {command}"
                );
            }
        }
        if size > INLINE_LIMIT {
            assert!(
                ops.contains("--template-url"),
                "{name}: no --template-url in the guide"
            );
        }
    }
}

/// Every property that names an AWS resource (a role, a rule, an alarm, a metric, a policy).
fn names(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = format!("{path}.{k}");
                if [
                    "RoleName",
                    "Name",
                    "AlarmName",
                    "MetricName",
                    "PolicyName",
                    "ManagedPolicyName",
                ]
                .contains(&k.as_str())
                    && !path.contains("Fn::Sub")
                {
                    out.push((p.clone(), x.clone()));
                }
                names(x, &p, out);
            }
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, x)| names(x, &format!("{path}[{i}]"), out)),
        _ => {}
    }
}

#[test]
fn member_names_derive_from_the_prefix_so_two_controllers_share_an_organization() {
    let member = template("member.json");
    let controller = template("controller.json");
    // One prefix rule for both stacks: the member stack's Prefix is the controller's.
    assert_eq!(
        member["Parameters"]["Prefix"]["AllowedPattern"],
        controller["Parameters"]["Prefix"]["AllowedPattern"]
    );
    assert_eq!(member["Parameters"]["Prefix"]["Default"], "rectify");
    let mut found = Vec::new();
    names(&member["Resources"], "Resources", &mut found);
    let mut derived = 0;
    for (path, v) in &found {
        match v {
            Value::String(s) => assert!(
                !s.contains("rectify"),
                "{path}: {s:?} is fixed: a second stack with another prefix collides"
            ),
            _ => {
                let s = v["Fn::Sub"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{path}: {v}"));
                assert!(s.starts_with("${Prefix}-"), "{path}: {s}");
                derived += 1;
            }
        }
    }
    // Three forwarding rules, two roles and their two policies, the metric (twice) and the alarm.
    assert_eq!(derived, 10, "{found:?}");
    // Longest name within the limits (64 for rules and roles) at the longest prefix (30).
    for (path, v) in &found {
        // (Alarm, metric and policy names may be longer: 255 and 128.)
        let limited = path.ends_with(".RoleName") || path.ends_with(".Name");
        if let Some(s) = v["Fn::Sub"].as_str().filter(|_| limited) {
            let longest = s.replace("${Prefix}", &"p".repeat(30));
            assert!(longest.len() <= 64, "{path}: {longest} is over 64");
        }
    }
    // The AssumeRole alarm watches this prefix's role.
    let filter = member["Resources"]["UnexpectedAssumeRoleFilter"]["Properties"]["FilterPattern"]
        .to_string();
    assert!(filter.contains(":role/${Prefix}-remediation"), "{filter}");
    // The controller assumes (and may assume) the role of its own prefix.
    let env = controller.to_string();
    assert!(
        env.contains(r#"{"Name":"RECTIFY_ROLE_NAME","Value":{"Fn::Sub":"${Prefix}-remediation"}}"#),
        "the task's RECTIFY_ROLE_NAME must follow the prefix"
    );
    assert!(env.contains("role/${Prefix}-remediation"));
    assert!(!env.contains("role/rectify-remediation"));
}

/// (action, resource) pairs a managed policy of the operator template allows; a statement under
/// `Fn::If` counts as present.
fn policy_grants(t: &Value, id: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for st in t["Resources"][id]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .unwrap()
    {
        let st = if st.get("Fn::If").is_some() {
            &st["Fn::If"][1]
        } else {
            st
        };
        assert_eq!(st["Effect"], "Allow", "{id}: {st}");
        let resources: Vec<String> = match &st["Resource"] {
            Value::Array(rs) => rs
                .iter()
                .map(|r| r["Fn::Sub"].as_str().unwrap_or_default().to_string())
                .collect(),
            r => vec![r["Fn::Sub"].as_str().unwrap_or_default().to_string()],
        };
        for a in strings(&st["Action"]) {
            for r in &resources {
                assert!(
                    r.contains("${Prefix}-") || r.contains("${AuditExportBucket}"),
                    "{id}: {a} on {r:?} is not scoped to the prefix"
                );
                out.insert((a.clone(), r.clone()));
            }
        }
    }
    out
}

fn grant(action: &str, resource_suffix: &str) -> (String, String) {
    let r = match resource_suffix.split_once(':') {
        Some(("table", n)) => format!(
            "arn:${{AWS::Partition}}:dynamodb:${{AWS::Region}}:${{AWS::AccountId}}:table/${{Prefix}}-{n}"
        ),
        Some(("queue", n)) => {
            format!(
                "arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:${{Prefix}}-{n}"
            )
        }
        Some(("role", n)) => format!("arn:${{AWS::Partition}}:iam::*:role/${{Prefix}}-{n}"),
        _ => panic!("{resource_suffix}"),
    };
    (action.to_string(), r)
}

#[test]
fn operator_policies_grow_from_viewer_to_approver_to_administrator() {
    let t = template("operator-policies.json");
    no_wildcard_actions(&t, "operator-policies");
    for (id, name) in [
        ("ViewerPolicy", "${Prefix}-viewer"),
        ("ApproverPolicy", "${Prefix}-approver"),
        ("AdministratorPolicy", "${Prefix}-administrator"),
    ] {
        assert_eq!(t["Resources"][id]["Type"], "AWS::IAM::ManagedPolicy");
        assert_eq!(
            t["Resources"][id]["Properties"]["ManagedPolicyName"]["Fn::Sub"],
            name
        );
    }
    let viewer = policy_grants(&t, "ViewerPolicy");
    let approver = policy_grants(&t, "ApproverPolicy");
    let admin = policy_grants(&t, "AdministratorPolicy");
    // The viewer reads: `jobs list|show`, `settings list`, `audit list|show|verify`, `dlq list`.
    for (a, r) in [
        ("dynamodb:Scan", "table:jobs"),
        ("dynamodb:GetItem", "table:jobs"),
        ("dynamodb:Scan", "table:settings"),
        ("dynamodb:Query", "table:audit"),
        ("dynamodb:Scan", "table:audit"),
        ("sqs:ReceiveMessage", "queue:events-dlq"),
    ] {
        assert!(viewer.contains(&grant(a, r)), "viewer lacks {a} on {r}");
    }
    for (a, r) in &viewer {
        let verb = a.split(':').nth(1).unwrap();
        assert!(
            [
                "Describe",
                "Get",
                "Query",
                "Scan",
                "List",
                "Receive",
                "ChangeMessageVisibility"
            ]
            .iter()
            .any(|p| verb.starts_with(p)),
            "viewer may {a} on {r}"
        );
    }
    // The approver adds exactly what `jobs approve|reject` write: the job's status, the audit
    // record, and the message that asks the worker to run the approved job.
    assert!(viewer.is_subset(&approver));
    let added: BTreeSet<_> = approver.difference(&viewer).cloned().collect();
    let want: BTreeSet<_> = [
        grant("dynamodb:UpdateItem", "table:jobs"),
        grant("dynamodb:PutItem", "table:audit"),
        grant("sqs:SendMessage", "queue:control"),
    ]
    .into_iter()
    .collect();
    assert_eq!(added, want);
    // The administrator can do what the approver can and every other command.
    assert!(
        approver.is_subset(&admin),
        "{:?}",
        approver.difference(&admin)
    );
    for (a, r) in [
        ("dynamodb:PutItem", "table:settings"),
        ("dynamodb:UpdateItem", "table:settings"),
        ("dynamodb:DeleteItem", "table:settings"),
        ("sqs:SendMessage", "queue:events"),
        ("sqs:DeleteMessage", "queue:events-dlq"),
        ("sts:AssumeRole", "role:operator"),
        ("sts:AssumeRole", "role:remediation"),
    ] {
        assert!(
            admin.contains(&grant(a, r)),
            "administrator lacks {a} on {r}"
        );
    }
    // The audit trail is append-only for everyone.
    for grants in [&viewer, &approver, &admin] {
        for a in ["dynamodb:UpdateItem", "dynamodb:DeleteItem"] {
            assert!(
                !grants.contains(&grant(a, "table:audit")),
                "{a} on the audit table"
            );
        }
    }
}
