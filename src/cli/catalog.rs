//! `rectify catalog` (list, test, actions, permissions) and `rectify plan` (offline).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{Failure, OutputArgs, Result, print_json};
use crate::action::{ACTION_KINDS, Plan};
use crate::app::load_catalog;
use crate::catalog::{Mode, run_cases};
use crate::config::Config;
use crate::render;
use crate::settings::{find_remediation, parse_param};

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// The remediations: resource type, triggers, actions, default mode (with --json also
    /// each one's origin: `remediations`, embedded, or the --remediations directory).
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Run every test case (tests/*.json) of every remediation; exit 1 on a failure.
    Test {
        /// A directory of remediations to test instead of only the embedded catalog (it is
        /// loaded over the embedded one, as the worker would load it).
        dir: Option<PathBuf>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Every action kind, with the IAM permission it needs.
    Actions {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// The IAM permissions rectify needs: in member accounts, the worker's role (reads and the
    /// calls that tighten) and the operator's role that undo assumes (reads and the inverses);
    /// in the controller account (queue, tables, topic, assume-role, audit export). The deploy
    /// templates are checked against these lists.
    Permissions {
        /// Only this role's: worker, operator or controller.
        #[arg(long, value_parser = ["worker", "operator", "controller"])]
        role: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The remediation to plan with.
    #[arg(long)]
    pub remediation: String,
    /// A JSON file holding the resource as the observer would give it (see
    /// docs/writing-remediations.md), or a test case file (its `resource` and `params` are used).
    #[arg(long, value_name = "FILE")]
    pub resource: PathBuf,
    /// A parameter as KEY=VALUE, overriding the manifest's default; repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub(super) fn run(config: &Config, cmd: CatalogCommand) -> Result<()> {
    match cmd {
        CatalogCommand::List { out } => {
            let (_, catalog) = load_catalog(config)?;
            let items: Vec<Value> = catalog
                .all()
                .iter()
                .map(|r| {
                    json!({
                        "name": r.name(),
                        "description": r.manifest.description,
                        "resource_type": r.manifest.resource_type,
                        "default_mode": r.manifest.default_mode.as_str(),
                        "max_mode": r.manifest.max_mode.map(Mode::as_str),
                        "max_mode_kinds": r.manifest.max_mode_kinds,
                        "rules": r.manifest.triggers.rules,
                        "controls": r.manifest.triggers.controls,
                        "patterns": r.manifest.triggers.patterns,
                        "actions": r.manifest.actions,
                        "params": r.manifest.params,
                        "script_sha256": r.script_sha256,
                        "origin": r.origin,
                        "cases": r.cases.len(),
                    })
                })
                .collect();
            if out.is_json() {
                print_json(&items);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = catalog
                .all()
                .iter()
                .map(|r| {
                    let mut triggers = r.manifest.triggers.rules.clone();
                    triggers.extend(r.manifest.triggers.patterns.iter().cloned());
                    triggers.extend(r.manifest.triggers.controls.iter().cloned());
                    let mode = match r.max_mode_text() {
                        Some(max) => format!("{} (max {max})", r.manifest.default_mode),
                        None => r.manifest.default_mode.to_string(),
                    };
                    vec![
                        r.name().to_string(),
                        r.manifest.resource_type.clone(),
                        mode,
                        r.manifest.actions.join(","),
                        triggers.join(", "),
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(
                    &[
                        "NAME",
                        "RESOURCE TYPE",
                        "DEFAULT MODE",
                        "ACTIONS",
                        "TRIGGERS"
                    ],
                    &rows
                )
            );
            Ok(())
        }
        CatalogCommand::Test { dir, out } => {
            let mut config = config.clone();
            if dir.is_some() {
                config.remediations = dir;
            }
            let (engine, catalog) = load_catalog(&config)?;
            let deadline = Duration::from_millis(config.limits.deadline_ms);
            let (mut passed, mut failed) = (0, 0);
            let mut cases = Vec::new();
            for r in catalog.all() {
                for result in run_cases(&engine, r, deadline) {
                    cases.push(json!({
                        "remediation": r.name(),
                        "file": result.file,
                        "description": result.description,
                        "passed": result.failure.is_none(),
                        "failure": result.failure,
                    }));
                    match &result.failure {
                        None => {
                            passed += 1;
                            if !out.is_json() {
                                println!("ok      {} ({})", result.file, result.description);
                            }
                        }
                        Some(why) => {
                            failed += 1;
                            if !out.is_json() {
                                println!("FAILED  {} ({})", result.file, result.description);
                                for line in why.lines() {
                                    println!("        {line}");
                                }
                            }
                        }
                    }
                }
            }
            if out.is_json() {
                print_json(&json!({"passed": passed, "failed": failed, "cases": cases}));
            } else {
                println!("\ncatalog: {passed} passed, {failed} failed");
            }
            if failed > 0 {
                Err(Failure::failed(format!("{failed} test case(s) failed")))
            } else {
                Ok(())
            }
        }
        CatalogCommand::Permissions { role, out } => {
            use crate::resource::{MemberRole, member_permissions};
            let roles: [(&str, &str, Vec<&str>); 3] = [
                (
                    "worker",
                    "member account, the worker's role (rectify-remediation): reads and tightens",
                    member_permissions(MemberRole::Worker),
                ),
                (
                    "operator",
                    "member account, the operator's role undo assumes (rectify-operator): reads and the inverses",
                    member_permissions(MemberRole::Operator),
                ),
                (
                    "controller",
                    "controller task role",
                    crate::cloud::CONTROLLER_PERMISSIONS.to_vec(),
                ),
            ];
            let wanted = roles
                .iter()
                .filter(|(name, _, _)| role.as_deref().is_none_or(|r| r == *name));
            if out.is_json() {
                let mut out = serde_json::Map::new();
                for (name, _, permissions) in wanted {
                    out.insert((*name).to_string(), json!(permissions));
                }
                print_json(&Value::Object(out));
            } else {
                for (_, title, permissions) in wanted {
                    println!("{title}:");
                    for p in permissions {
                        println!("  {p}");
                    }
                }
            }
            Ok(())
        }
        CatalogCommand::Actions { out } => {
            let items: Vec<Value> = ACTION_KINDS
                .iter()
                .map(|k| {
                    json!({"kind": k.kind, "iam_permission": k.permission, "fields": k.fields,
                           "description": k.description, "inverse": k.inverse,
                           "in_plans": k.in_plans})
                })
                .collect();
            if out.is_json() {
                print_json(&items);
            } else {
                for k in ACTION_KINDS {
                    println!("{}", k.kind);
                    println!("    {}", k.description);
                    println!("    fields:          {}", k.fields);
                    println!("    IAM permission:  {}", k.permission);
                    println!("    undone by:       {}", k.inverse);
                    if !k.in_plans {
                        println!("    a plan may not use it: it loosens, and only undo applies it");
                    }
                    println!();
                }
                println!(
                    "Observers also read (IAM permissions): {}",
                    crate::resource::read_permissions().join(", ")
                );
            }
            Ok(())
        }
    }
}

/// The head fields every observed resource carries, whatever its type.
const HEAD: &[&str] = &["type", "id", "account", "region", "observed_at"];

/// The fields every test case of `r` gives its resource (the head aside): the shape its script
/// reads.
fn shape(r: &crate::catalog::Remediation) -> std::collections::BTreeSet<String> {
    let mut common: Option<std::collections::BTreeSet<String>> = None;
    for (_, text) in &r.cases {
        let Some(Value::Object(res)) = serde_json::from_str::<Value>(text)
            .ok()
            .and_then(|v| v.get("resource").cloned())
        else {
            continue;
        };
        let keys = res
            .keys()
            .filter(|k| !HEAD.contains(&k.as_str()))
            .cloned()
            .collect();
        common = Some(match common {
            None => keys,
            Some(c) => c.intersection(&keys).cloned().collect(),
        });
    }
    common.unwrap_or_default()
}

/// When a script failed on a resource without the fields its type has: which type the
/// remediation expects, with the fields missing, and which type the file looks like.
fn shape_hint(
    catalog: &crate::catalog::Catalog,
    r: &crate::catalog::Remediation,
    resource: &Value,
) -> Option<String> {
    let held: std::collections::BTreeSet<String> = resource.as_object()?.keys().cloned().collect();
    let wanted = shape(r);
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|k| !held.contains(*k))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return None;
    }
    let expected = r.manifest.resource_type.as_str();
    let looks_like = catalog
        .all()
        .iter()
        .filter(|o| o.manifest.resource_type != expected)
        .find(|o| {
            let s = shape(o);
            !s.is_empty() && s.is_subset(&held)
        })
        .map(|o| {
            format!(
                ", and the file holds what looks like an {}",
                o.manifest.resource_type
            )
        })
        .unwrap_or_default();
    Some(format!(
        "{} expects an {expected} resource, with {} (missing here){looks_like}",
        r.name(),
        missing.join(", "),
    ))
}

pub(super) fn plan(config: &Config, args: PlanArgs) -> Result<()> {
    let (engine, catalog) = load_catalog(config)?;
    let r = find_remediation(&catalog, &args.remediation)?;
    let text = std::fs::read_to_string(&args.resource)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.resource.display())))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("{}: not JSON: {e}", args.resource.display())))?;
    let mut params = r.default_params();
    // A test case file carries its resource and params; a plain file is the resource.
    let resource = match value.get("resource") {
        Some(res) if value.get("expect").is_some() => {
            if let Some(Value::Object(p)) = value.get("params") {
                params.extend(p.clone());
            }
            res.clone()
        }
        _ => value,
    };
    for p in &args.params {
        let (k, v) = parse_param(p)?;
        r.check_param(&k, &v)
            .map_err(|e| Failure::usage(format!("--param {k}: {e}")))?;
        params.insert(k, v);
    }
    let missing = r.missing_params(&params);
    if !missing.is_empty() {
        return Err(Failure::usage(format!(
            "{} needs parameter {}: add --param {}=VALUE",
            r.name(),
            missing.join(", "),
            missing[0]
        )));
    }
    // The case file's own params follow the same rules.
    r.check_params(&params)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.resource.display())))?;
    let expected = r.manifest.resource_type.as_str();
    if let Some(held) = resource.get("type").and_then(Value::as_str)
        && held != expected
    {
        return Err(Failure::usage(format!(
            "{}: {} plans {expected} resources, and the file holds an {held} (its \"type\"); give it an {expected} (`rectify catalog list` shows each remediation's type)",
            args.resource.display(),
            r.name(),
        )));
    }
    let plan: Plan = r
        .plan(
            &engine,
            &resource,
            &params,
            Duration::from_millis(config.limits.deadline_ms),
        )
        .map_err(|e| {
            let mut message = e.to_string();
            if let Some(hint) = shape_hint(&catalog, r, &resource) {
                message.push_str(&format!("\n{}: {hint}", args.resource.display()));
            }
            Failure::usage(message)
        })?;
    if args.out.is_json() {
        print_json(&plan);
    } else {
        print!("{}", render::plan(&plan, Some(&resource)));
    }
    Ok(())
}
