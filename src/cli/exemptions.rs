//! `rectify exemptions`: add, list and remove exemption records.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{OutputArgs, Result, operator, print_json};
use crate::app::{aws_config, load_catalog, store};
use crate::clock::today;
use crate::config::Config;
use crate::render;
use crate::settings::{self, ExemptionRequest, find_remediation, scope_of};

/// Which exemption: of which resource, from which remediation, in which account; and who.
#[derive(Debug, Args)]
pub struct Exempted {
    /// The remediation (see `rectify catalog list`).
    #[arg(long)]
    remediation: String,
    /// The resource id as findings name it (bucket name, sg-…, vpce-…, IAM user id or name).
    #[arg(long)]
    resource: String,
    /// Only in this account (12 digits) [default: any account]
    #[arg(long)]
    account: Option<String>,
    /// Who [default: the caller's AWS identity]
    #[arg(long)]
    by: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ExemptionsCommand {
    /// Exempt a resource from a remediation.
    Add {
        #[command(flatten)]
        exempted: Exempted,
        /// Why the resource is exempt (shown on the jobs it holds back).
        #[arg(long)]
        reason: String,
        /// Last day it holds (UTC): YYYY-MM-DD, an RFC 3339 time, or a duration ahead (30d,
        /// 2w) [default: until removed]
        #[arg(long, value_name = "DAY", value_parser = crate::clock::day_arg)]
        until: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Every exemption record, with whether it still holds.
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Remove an exemption record.
    Remove {
        #[command(flatten)]
        exempted: Exempted,
        #[command(flatten)]
        out: OutputArgs,
    },
}

pub(super) async fn run(config: &Config, cmd: ExemptionsCommand) -> Result<()> {
    match cmd {
        ExemptionsCommand::Add {
            exempted,
            reason,
            until,
            out,
        } => {
            let (_, catalog) = load_catalog(config)?;
            let r = find_remediation(&catalog, &exempted.remediation)?;
            let request = ExemptionRequest::new(
                r,
                &exempted.resource,
                exempted.account.as_deref(),
                &reason,
                until.as_deref(),
            )?;
            let op = operator(config, exempted.by).await?;
            let e = settings::add_exemption(&op.store, &op.audit, request, &op.by).await?;
            if out.is_json() {
                print_json(&json!({"result": "added", "exemption": exemption_json(&e)}));
                return Ok(());
            }
            println!(
                "{} exempted from {} in {}{}",
                e.resource_id,
                e.remediation,
                if e.account == "*" {
                    "every account".to_string()
                } else {
                    format!("account {}", e.account)
                },
                e.until
                    .as_deref()
                    .map(|u| format!(" until {u}"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        ExemptionsCommand::List { out } => {
            let aws = aws_config(config).await?;
            let snapshot = store(config, &aws).settings().await?;
            let today = today();
            if out.is_json() {
                let items: Vec<Value> = snapshot.exemptions.iter().map(exemption_json).collect();
                print_json(&items);
                return Ok(());
            }
            let now = chrono::Utc::now();
            let rows: Vec<Vec<String>> = snapshot
                .exemptions
                .iter()
                .map(|e| {
                    vec![
                        crate::clock::age(&e.created_at, now),
                        e.remediation.clone(),
                        e.account.clone(),
                        e.resource_id.clone(),
                        e.until.clone().unwrap_or_else(|| "-".into()),
                        if e.active(&today) {
                            "yes".into()
                        } else {
                            "expired".into()
                        },
                        e.by.clone(),
                        e.reason.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(
                    &[
                        "AGE",
                        "REMEDIATION",
                        "ACCOUNT",
                        "RESOURCE",
                        "UNTIL",
                        "ACTIVE",
                        "BY",
                        "REASON"
                    ],
                    &rows
                )
            );
            Ok(())
        }
        ExemptionsCommand::Remove { exempted, out } => {
            let (_, catalog) = load_catalog(config)?;
            let r = find_remediation(&catalog, &exempted.remediation)?;
            let scope = scope_of(exempted.account.as_deref())?;
            let op = operator(config, exempted.by).await?;
            let e = settings::remove_exemption(
                &op.store,
                &op.audit,
                r,
                &exempted.resource,
                &scope,
                &op.by,
            )
            .await?;
            if out.is_json() {
                print_json(&json!({
                    "result": "removed",
                    "by": op.by,
                    "at": crate::clock::now_text(),
                    "exemption": exemption_json(&e),
                }));
                return Ok(());
            }
            println!(
                "exemption of {} from {} removed",
                e.resource_id, e.remediation
            );
            Ok(())
        }
    }
}

/// An exemption as JSON: its fields, and whether it holds today.
fn exemption_json(e: &crate::state::Exemption) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    v["active"] = json!(e.active(&today()));
    v
}
