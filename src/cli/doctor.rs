//! `rectify doctor`: checks that a deployment can work, one line per check: the queues and
//! tables exist, the allow-list allows some account, the member role can be assumed in each
//! allowed account, and it allows what the catalog needs (IAM policy simulation where the
//! account lets rectify run it). Exit 1 when any check fails.

use std::sync::Arc;

use clap::Args;

use serde_json::json;

use super::{Failure, OutputArgs, Result, print_json};
use crate::app::{aws_config, caller, load_catalog, store};
use crate::catalog::Remediation;
use crate::cloud::{Cloud, classify, error_chain};
use crate::config::Config;
use crate::source::queue_url;
use crate::state::Store;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    out: OutputArgs,
}

/// How one check ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok(String),
    Failed(String),
    /// The check could not be made (the API is not available, or rectify may not call it):
    /// said, not counted as a failure.
    NotChecked(String),
}

/// One check and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub verdict: Verdict,
}

impl Check {
    fn new(name: impl Into<String>, verdict: Verdict) -> Check {
        Check {
            name: name.into(),
            verdict,
        }
    }

    /// The check's line: `ok`, `FAIL` or `skip`, what was checked, and what was found.
    pub fn line(&self) -> String {
        let (tag, text) = match &self.verdict {
            Verdict::Ok(t) => ("ok  ", t.clone()),
            Verdict::Failed(t) => ("FAIL", t.clone()),
            Verdict::NotChecked(t) => ("skip", format!("not checked: {t}")),
        };
        format!("{tag}  {}: {text}", self.name)
    }
}

/// The IAM permissions the catalog's remediations need in a member account: reading each
/// resource type they act on, and each action kind they may plan (with what its call needs
/// besides), sorted.
pub fn catalog_permissions(remediations: &[Arc<Remediation>]) -> Vec<&'static str> {
    let mut all: Vec<&'static str> = Vec::new();
    for r in remediations {
        if let Some(t) = crate::resource::lookup(&r.manifest.resource_type) {
            all.extend(t.info().read_permissions.iter().copied());
        }
        for kind in &r.manifest.actions {
            if let Some(k) = crate::action::ACTION_KINDS.iter().find(|k| k.kind == kind) {
                all.push(k.permission);
            }
            all.extend(
                crate::action::FURTHER_PERMISSIONS
                    .iter()
                    .filter(|(k, _)| k == kind)
                    .map(|(_, p)| *p),
            );
        }
    }
    all.sort_unstable();
    all.dedup();
    all
}

/// The verdict on a policy simulation's results (action, decision): every action must be
/// `allowed`.
pub fn judge_simulation(role: &str, results: &[(String, String)]) -> Verdict {
    let denied: Vec<String> = results
        .iter()
        .filter(|(_, decision)| decision != "allowed")
        .map(|(action, decision)| format!("{action} ({decision})"))
        .collect();
    if denied.is_empty() {
        Verdict::Ok(format!(
            "{role} allows all {} permissions the catalog needs",
            results.len()
        ))
    } else {
        Verdict::Failed(format!(
            "{role} does not allow {} (see `rectify catalog permissions --role worker`)",
            denied.join(", ")
        ))
    }
}

pub(super) async fn run(config: &Config, args: DoctorArgs) -> Result<()> {
    let json_out = args.out.is_json();
    let aws = aws_config(config).await?;
    let store = store(config, &aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let mut checks = Vec::new();
    let bootstrap = format!("run `rectify bootstrap --prefix {}`", config.prefix);
    for (what, name) in [
        ("event queue", &store.names.queue),
        ("dead-letter queue", &store.names.dlq),
        ("control queue", &store.names.control),
    ] {
        checks.push(Check::new(
            format!("{what} {name}"),
            queue(&sqs, name, &bootstrap).await,
        ));
    }
    let dynamodb = store.client().clone();
    for (what, name) in [
        ("settings table", &store.names.settings),
        ("jobs table", &store.names.jobs),
        ("audit table", &store.names.audit),
    ] {
        checks.push(Check::new(
            format!("{what} {name}"),
            table(&dynamodb, name, &bootstrap).await,
        ));
    }
    if !json_out {
        print_lines(&checks);
    }
    let done = checks.len();
    member_checks(config, &aws, &store, &mut checks).await;
    if !json_out {
        print_lines(&checks[done..]);
    }
    let failed = checks
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Failed(_)))
        .count();
    if json_out {
        print_json(&json!({
            "passed": failed == 0,
            "failed": failed,
            "checks": checks
                .iter()
                .map(|c| {
                    let (result, detail) = match &c.verdict {
                        Verdict::Ok(t) => ("ok", t),
                        Verdict::Failed(t) => ("failed", t),
                        Verdict::NotChecked(t) => ("not-checked", t),
                    };
                    json!({"check": c.name, "result": result, "detail": detail})
                })
                .collect::<Vec<_>>(),
        }));
    }
    if failed > 0 {
        return Err(Failure::failed(format!(
            "{failed} of {} checks failed",
            checks.len()
        )));
    }
    if !json_out {
        println!("all {} checks passed", checks.len());
    }
    Ok(())
}

fn print_lines(checks: &[Check]) {
    for c in checks {
        println!("{}", c.line());
    }
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str, bootstrap: &str) -> Verdict {
    let url = match queue_url(sqs, name).await {
        Ok(url) => url,
        Err(crate::source::QueueError::Missing { .. }) => {
            return Verdict::Failed(format!("missing ({bootstrap})"));
        }
        Err(e) => return Verdict::Failed(error_chain(&e)),
    };
    match sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
    {
        Ok(out) => {
            let depth = out
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                })
                .map_or("?", String::as_str)
                .to_string();
            Verdict::Ok(format!("{depth} messages"))
        }
        Err(e) => Verdict::Failed(error_chain(&classify("sqs:GetQueueAttributes", e))),
    }
}

async fn table(dynamodb: &aws_sdk_dynamodb::Client, name: &str, bootstrap: &str) -> Verdict {
    match dynamodb.describe_table().table_name(name).send().await {
        Ok(out) => {
            let status = out
                .table()
                .and_then(|t| t.table_status())
                .map_or("unknown", |s| s.as_str())
                .to_string();
            if status == "ACTIVE" {
                Verdict::Ok("active".into())
            } else {
                Verdict::Failed(format!("status {status}, not ACTIVE"))
            }
        }
        Err(e) => {
            let e = classify("dynamodb:DescribeTable", e);
            if e.is(&["ResourceNotFoundException"]) {
                Verdict::Failed(format!("missing ({bootstrap})"))
            } else {
                Verdict::Failed(error_chain(&e))
            }
        }
    }
}

/// The allow-list, and for each allowed account: AssumeRole into the member role with one
/// harmless read, and the catalog's permissions against what the role allows.
async fn member_checks(
    config: &Config,
    aws: &aws_config::SdkConfig,
    store: &Store,
    checks: &mut Vec<Check>,
) {
    let global = match store.settings().await {
        Ok(s) => s.global,
        Err(e) => {
            checks.push(Check::new(
                "allow-list",
                Verdict::Failed(format!("the settings cannot be read: {}", error_chain(&e))),
            ));
            return;
        }
    };
    let home = match caller(aws).await {
        Ok(c) => c.account,
        Err(e) => {
            checks.push(Check::new(
                "rectify's own identity",
                Verdict::Failed(error_chain(&e)),
            ));
            return;
        }
    };
    let org =
        crate::organization::OrganizationAccounts::new(aws_sdk_organizations::Client::new(aws));
    let accounts = match org.allowed(&global, &home).await {
        Ok(accounts) => accounts,
        Err(e) => {
            checks.push(Check::new(
                "allow-list",
                Verdict::Failed(format!(
                    "organization: the Organization's accounts cannot be listed: {}",
                    error_chain(&e)
                )),
            ));
            return;
        }
    };
    if accounts.is_empty() {
        checks.push(Check::new(
            "allow-list",
            Verdict::Failed(
                "allows no account: every finding ends account-not-allowed (`rectify settings accounts add ACCOUNT`)"
                    .into(),
            ),
        ));
        return;
    }
    checks.push(Check::new(
        "allow-list",
        Verdict::Ok(format!(
            "{}{} account(s): {}",
            if global.organization {
                "organization, "
            } else {
                ""
            },
            accounts.len(),
            accounts.join(", ")
        )),
    ));
    let permissions = match load_catalog(config) {
        Ok((_, catalog)) => catalog_permissions(catalog.all()),
        Err(e) => {
            checks.push(Check::new("catalog", Verdict::Failed(e.to_string())));
            return;
        }
    };
    let region = aws
        .region()
        .map(std::string::ToString::to_string)
        .unwrap_or_default();
    let cloud = Cloud::new(
        aws.clone(),
        home,
        config.role_name.clone(),
        config.external_id.clone(),
    );
    for account in &accounts {
        let role = format!("arn:aws:iam::{account}:role/{}", config.role_name);
        let clients = cloud.clients(account, &region).await;
        let sts: aws_sdk_sts::Client = clients.get(aws_sdk_sts::Client::new);
        let assumed = match sts.get_caller_identity().send().await {
            Ok(id) if id.account() == Some(account.as_str()) => Verdict::Ok(format!(
                "sts:GetCallerIdentity as {}",
                id.arn().unwrap_or("?")
            )),
            Ok(id) => Verdict::Failed(format!(
                "the assumed role is in account {}, not {account}",
                id.account().unwrap_or("?")
            )),
            Err(e) => Verdict::Failed(format!(
                "{} (is deploy/member.json deployed in {account}, trusting this account?)",
                error_chain(&classify("sts:AssumeRole", e))
            )),
        };
        let ok = matches!(assumed, Verdict::Ok(_));
        checks.push(Check::new(format!("assume {role}"), assumed));
        if !ok {
            checks.push(Check::new(
                format!("permissions of {role}"),
                Verdict::NotChecked("the role could not be assumed".into()),
            ));
            continue;
        }
        let iam: aws_sdk_iam::Client = clients.get(aws_sdk_iam::Client::new);
        checks.push(Check::new(
            format!("permissions of {role}"),
            simulate(&iam, &role, &permissions).await,
        ));
    }
}

/// Asks IAM whether `role` allows each of `permissions` (SimulatePrincipalPolicy, called as the
/// role itself: it needs `iam:SimulatePrincipalPolicy` on itself).
async fn simulate(iam: &aws_sdk_iam::Client, role: &str, permissions: &[&str]) -> Verdict {
    let mut results = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = iam
            .simulate_principal_policy()
            .policy_source_arn(role)
            .set_action_names(Some(permissions.iter().map(|p| (*p).to_string()).collect()))
            .set_marker(marker.clone())
            .send()
            .await;
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                let e = classify("iam:SimulatePrincipalPolicy", e);
                return Verdict::NotChecked(format!(
                    "IAM policy simulation is not available to the role ({}); compare the role with `rectify catalog permissions --role worker`",
                    error_chain(&e)
                ));
            }
        };
        results.extend(out.evaluation_results().iter().map(|r| {
            (
                r.eval_action_name().to_string(),
                r.eval_decision().as_str().to_string(),
            )
        }));
        match out.marker() {
            Some(m) if out.is_truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    judge_simulation(role, &results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulation_passes_only_when_every_action_is_allowed() {
        let role = "arn:aws:iam::111122223333:role/rectify-remediation";
        let allowed = vec![
            (
                "s3:GetBucketPublicAccessBlock".to_string(),
                "allowed".to_string(),
            ),
            (
                "s3:PutBucketPublicAccessBlock".to_string(),
                "allowed".to_string(),
            ),
        ];
        assert!(matches!(judge_simulation(role, &allowed), Verdict::Ok(_)));
        let mut denied = allowed.clone();
        denied.push((
            "ec2:RevokeSecurityGroupIngress".into(),
            "implicitDeny".into(),
        ));
        denied.push(("iam:UpdateAccessKey".into(), "explicitDeny".into()));
        let Verdict::Failed(text) = judge_simulation(role, &denied) else {
            panic!("a denied action passed");
        };
        assert!(
            text.contains("ec2:RevokeSecurityGroupIngress (implicitDeny)")
                && text.contains("iam:UpdateAccessKey (explicitDeny)")
                && !text.contains("s3:PutBucketPublicAccessBlock"),
            "{text}"
        );
    }

    #[test]
    fn a_check_line_says_how_it_ended() {
        assert_eq!(
            Check::new("jobs table t-jobs", Verdict::Ok("active".into())).line(),
            "ok    jobs table t-jobs: active"
        );
        assert_eq!(
            Check::new("x", Verdict::Failed("missing".into())).line(),
            "FAIL  x: missing"
        );
        assert_eq!(
            Check::new("x", Verdict::NotChecked("no API".into())).line(),
            "skip  x: not checked: no API"
        );
    }

    #[test]
    fn the_catalog_needs_what_its_remediations_read_and_plan() {
        let engine = crate::script::hardened_engine(&crate::script::Limits::default());
        let catalog = crate::catalog::Catalog::load(&engine, None).expect("the embedded catalog");
        let s3: Vec<Arc<Remediation>> = catalog
            .all()
            .iter()
            .filter(|r| r.name() == "s3-block-public-access")
            .cloned()
            .collect();
        let needed = catalog_permissions(&s3);
        assert!(
            needed.contains(&"s3:PutBucketPublicAccessBlock"),
            "{needed:?}"
        );
        assert!(
            needed.contains(&"s3:GetBucketPublicAccessBlock"),
            "{needed:?}"
        );
        assert!(
            !needed.contains(&"ec2:RevokeSecurityGroupIngress"),
            "{needed:?}"
        );
        let all = catalog_permissions(catalog.all());
        assert!(all.contains(&"ec2:RevokeSecurityGroupIngress"), "{all:?}");
        // Creating flow logs passes a role: the call needs iam:PassRole besides its own.
        assert!(all.contains(&"iam:PassRole"), "{all:?}");
    }
}
