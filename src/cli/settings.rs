//! `rectify settings`: each remediation's mode, parameters and triggers (list, set), and the
//! account allow-list.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use std::sync::Arc;

use super::{Failure, OutputArgs, Result, operator, print_json};
use crate::app::{COMMAND_LEASE, Writer, aws_config, build_context, load_catalog, store};
use crate::catalog::{Mode, Remediation};
use crate::config::Config;
use crate::render;
use crate::settings::{
    self, AllowListEdit, SettingChange, SettingRequest, find_remediation, parse_param, scope_of,
};
use crate::sweep::sweep;

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Each remediation's mode, parameters and triggers, with where each comes from.
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// The account allow-list: findings from accounts it does not allow end
    /// `account-not-allowed` and are never acted on. Empty, it allows no account.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// The Security Hub administrator account: findings about other accounts need its bus.
    ///
    /// Security Hub findings about another account are acted on only when this account's bus
    /// delivered them (without it, only findings an account reports about itself are).
    ///
    /// Examples:
    ///   rectify settings securityhub-admin                 # show it
    ///   rectify settings securityhub-admin 111122223333    # set it
    ///   rectify settings securityhub-admin --clear
    #[command(name = "securityhub-admin", verbatim_doc_comment)]
    SecurityHubAdmin {
        /// The account id (12 digits).
        #[arg(conflicts_with = "clear")]
        account: Option<String>,
        /// Unset it: relayed findings are refused.
        #[arg(long)]
        clear: bool,
        /// Who [default: the caller's AWS identity]
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Whether resource owners may exempt a resource with a `rectify:exempt` tag (off by
    /// default). When on, a tag counts only with `until=YYYY-MM-DD` at most --max-days ahead.
    TagExemptions {
        /// on: tags with a valid until= exempt; off: every rectify:exempt tag is ignored.
        state: OnOff,
        /// How many days ahead a tag's until= may lie: days or whole days as a duration (90,
        /// 12w) [default: 90; 1 to 365]
        #[arg(long, value_name = "DAYS", value_parser = max_days_arg)]
        max_days: Option<u32>,
        /// Who [default: the caller's AWS identity]
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Whether an approver must be another AWS identity than the one that set the mode of the
    /// job's remediation, and than the one that last asked for the job to run again (`jobs
    /// retry`) (off by default). When on, `jobs approve` compares the caller's AWS identity
    /// (never --by) with theirs, and refuses (exit 1) when one is the same or when the setter
    /// is not an AWS identity (a mode set with --by).
    ApproverMustDiffer {
        /// on: the mode's setter and the retry's requester cannot approve; off: anyone may.
        state: OnOff,
        /// A label recorded as who made the change [default: the caller's AWS identity]
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Set a remediation's mode, parameters or extra triggers, for every account or one.
    ///
    /// Examples:
    ///   rectify settings set s3-block-public-access --mode enforce
    ///   rectify settings set vpce-restrict-policy --param organization_id=o-a1b2c3d4e5
    ///   rectify settings set vpce-restrict-policy --trigger corp-endpoint-policy-check
    ///   rectify settings set iam-deactivate-stale-keys --account 111122223333 --mode off
    ///
    /// Config does not resend events for a violation that did not change: after switching a
    /// remediation to enforce, retry its planned jobs (`rectify jobs retry ID`).
    #[command(verbatim_doc_comment)]
    Set(SetArgs),
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// The accounts rectify may act in (empty: none).
    List {
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Allow these accounts (in `organization` mode: allow these accounts alone).
    Add {
        /// Account ids (12 digits).
        accounts: Vec<String>,
        /// Who [default: the caller's AWS identity]
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Stop allowing these accounts. In `organization` mode they are left out of it
    /// (`settings accounts organization` allows them again).
    Remove {
        /// Account ids (12 digits).
        accounts: Vec<String>,
        /// Who [default: the caller's AWS identity]
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Empty the allow-list: no account is allowed.
    Clear {
        /// Who [default: the caller's AWS identity]
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Allow every ACTIVE account of the Organization (AWS Organizations ListAccounts, read by
    /// the worker with its own credentials and cached a few minutes), and no other.
    Organization {
        /// Who [default: the caller's AWS identity]
        #[arg(long)]
        by: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The remediation (see `rectify catalog list`).
    pub remediation: String,
    /// The mode: off records nothing, dry-run records the plan, approval holds it for an
    /// approver, enforce applies it.
    #[arg(long, value_parser = super::mode_values())]
    pub mode: Option<Mode>,
    /// A parameter as KEY=VALUE (VALUE is read as JSON when it parses, else as text); repeat
    /// for several. An empty VALUE removes the override.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// An extra Config rule name that triggers this remediation (custom rules have any name).
    #[arg(long = "trigger", value_name = "RULE")]
    pub triggers: Vec<String>,
    /// Apply to this account only (12 digits) instead of every account.
    #[arg(long)]
    pub account: Option<String>,
    /// Whether a `rectify:exempt` tag on a resource exempts it from this remediation (when tag
    /// exemptions are on for the Organization: `rectify settings tag-exemptions on`).
    #[arg(long, value_enum)]
    pub tag_exemptions: Option<OnOff>,
    /// Whether this remediation's jobs write their outcome back to the Security Hub finding
    /// that started them (workflow status and a note) [default: on]
    #[arg(long, value_enum)]
    pub securityhub_updates: Option<OnOff>,
    /// Blast-radius breaker: at most this many enforcements per window [default: 20]
    #[arg(long)]
    pub breaker_limit: Option<u32>,
    /// Blast-radius breaker window: seconds, or a duration (30m, 1h, 1d) [default: 1h]
    #[arg(long, value_name = "DURATION", value_parser = crate::clock::seconds_arg)]
    pub breaker_window: Option<u64>,
    /// Who is making the change [default: the caller's AWS identity]
    #[arg(long)]
    pub by: Option<String>,
    /// Switch to enforce in every account without showing what it would change now or asking
    /// (needed when not on a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub(super) async fn run(config: &Config, cmd: SettingsCommand) -> Result<()> {
    match cmd {
        SettingsCommand::List { out } => list(config, out).await,
        SettingsCommand::Set(args) => set(config, args).await,
        SettingsCommand::Accounts(cmd) => accounts(config, cmd).await,
        SettingsCommand::SecurityHubAdmin {
            account,
            clear,
            by,
            out,
        } => securityhub_admin(config, account, clear, by, out).await,
        SettingsCommand::TagExemptions {
            state,
            max_days,
            by,
            out,
        } => tag_exemptions(config, matches!(state, OnOff::On), max_days, by, out).await,
        SettingsCommand::ApproverMustDiffer { state, by, out } => {
            let op = operator(config, by).await?;
            let on = matches!(state, OnOff::On);
            let g = settings::set_approver_must_differ(&op.store, &op.audit, on, &op.by).await?;
            if out.is_json() {
                print_json(&global_json(&g));
            } else if g.approver_must_differ {
                println!(
                    "approver must differ: on: an approval by the AWS identity that set the remediation's mode is refused"
                );
            } else {
                println!("approver must differ: off");
            }
            Ok(())
        }
    }
}

async fn list(config: &Config, out: OutputArgs) -> Result<()> {
    let (_, catalog) = load_catalog(config)?;
    let aws = aws_config(config).await?;
    let snapshot = store(config, &aws).settings().await?;
    let mut rows = Vec::new();
    for r in catalog.all() {
        let global = snapshot
            .settings
            .iter()
            .find(|s| s.remediation == r.name() && s.scope == "*");
        let (mode, source) = match global.and_then(|s| s.mode) {
            Some(m) => (m, "setting"),
            None => (r.manifest.default_mode, "default"),
        };
        rows.push(json!({
            "remediation": r.name(),
            "scope": "*",
            "mode": mode.as_str(),
            "mode_source": source,
            "params": snapshot.params_for(r, "*"),
            "triggers": global.map(|s| s.triggers.clone()).unwrap_or_default(),
            "updated_by": global.and_then(|s| s.updated_by.clone()),
            "updated_at": global.and_then(|s| s.updated_at.clone()),
        }));
        for s in snapshot
            .settings
            .iter()
            .filter(|s| s.remediation == r.name() && s.scope != "*")
        {
            rows.push(json!({
                "remediation": r.name(),
                "scope": s.scope,
                "mode": s.mode.unwrap_or(mode).as_str(),
                "mode_source": if s.mode.is_some() { "account" } else { source },
                "params": snapshot.params_for(r, &s.scope),
                "triggers": s.triggers,
                "updated_by": s.updated_by,
                "updated_at": s.updated_at,
            }));
        }
    }
    if out.is_json() {
        print_json(&rows);
        return Ok(());
    }
    let now = chrono::Utc::now();
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let params = r["params"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", text(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let triggers = r["triggers"]
                .as_array()
                .map(|t| t.iter().map(text).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            vec![
                text(&r["remediation"]),
                if r["scope"] == "*" {
                    "all accounts".into()
                } else {
                    text(&r["scope"])
                },
                format!("{} ({})", text(&r["mode"]), text(&r["mode_source"])),
                if params.is_empty() {
                    "-".into()
                } else {
                    params
                },
                if triggers.is_empty() {
                    "-".into()
                } else {
                    triggers
                },
                text(&r["updated_by"]),
                r["updated_at"]
                    .as_str()
                    .map_or_else(|| "-".into(), |t| crate::clock::age(t, now)),
            ]
        })
        .collect();
    print!(
        "{}",
        render::table(
            &[
                "REMEDIATION",
                "SCOPE",
                "MODE",
                "PARAMETERS",
                "EXTRA TRIGGERS",
                "UPDATED BY",
                "AGE"
            ],
            &table
        )
    );
    Ok(())
}

async fn set(config: &Config, args: SetArgs) -> Result<()> {
    let (_, catalog) = load_catalog(config)?;
    let r = find_remediation(&catalog, &args.remediation)?;
    let scope = scope_of(args.account.as_deref())?;
    let params = args
        .params
        .iter()
        .map(|p| parse_param(p))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let request = SettingRequest::new(
        r,
        &scope,
        SettingChange {
            mode: args.mode,
            params,
            triggers: args.triggers,
            tag_exemptions: args.tag_exemptions.map(|t| matches!(t, OnOff::On)),
            securityhub_updates: args.securityhub_updates.map(|t| matches!(t, OnOff::On)),
            breaker_limit: args.breaker_limit,
            breaker_window_seconds: args.breaker_window,
        },
    )?;
    let op = operator(config, args.by).await?;
    if args.mode == Some(Mode::Enforce) && scope == "*" && !args.yes {
        impact(config, &op, r).await?;
    }
    let by = op.by;
    let old = op
        .store
        .settings()
        .await?
        .settings
        .into_iter()
        .find(|s| s.remediation == r.name() && s.scope == scope);
    let new = settings::set(&op.store, &op.audit, &request, &by).await?;
    let changed = crate::audit::record::setting_change(old.as_ref(), &new);
    if args.out.is_json() {
        print_json(&json!({
            "remediation": r.name(),
            "scope": scope,
            "changed": changed,
            "before": old,
            "setting": new,
            "by": by,
            "at": new.updated_at,
        }));
        return Ok(());
    }
    let scope_text = if scope == "*" {
        "all accounts".to_string()
    } else {
        format!("account {scope}")
    };
    println!("{}: {changed}", r.name());
    println!(
        "{} ({scope_text}): mode {}, parameters {}, extra triggers [{}]; set by {by}",
        r.name(),
        new.mode.map_or_else(
            || format!("{} (default)", r.manifest.default_mode),
            |m| m.to_string()
        ),
        Value::Object(new.params.clone()),
        new.triggers.join(", ")
    );
    if let (Some(mode), Some(max)) = (args.mode, r.manifest.max_mode)
        && mode > max
    {
        println!(
            "A plan that takes {} still waits for an operator's approval (the manifest's max_mode is {max}).",
            r.manifest.max_mode_kinds.join(" or ")
        );
    }
    if args.mode == Some(Mode::Enforce) {
        println!(
            "Config does not resend events for violations it already reported: run `rectify jobs list --status planned` and `rectify jobs retry ID` to act on them."
        );
    }
    Ok(())
}

/// Before a remediation is enforced in every account: shows what `sweep --what-if` says
/// enforcing it would change now in the accounts the allow-list allows, and asks.
async fn impact(config: &Config, op: &super::Operator, r: &Arc<Remediation>) -> Result<()> {
    let global = op.store.settings().await?.global;
    let home = op.caller.account.clone();
    let accounts =
        crate::organization::OrganizationAccounts::new(aws_sdk_organizations::Client::new(&op.aws))
            .allowed(&global, &home)
            .await?;
    let question = format!("Enforce {} in every account?", r.name());
    if accounts.is_empty() {
        println!(
            "The allow-list allows no account: enforcing {} changes nothing until it does.",
            r.name()
        );
        return super::jobs::confirm(&question, false);
    }
    let region = op
        .aws
        .region()
        .map(std::string::ToString::to_string)
        .unwrap_or_default();
    let ctx = build_context(
        config,
        &op.aws,
        load_catalog(config)?,
        COMMAND_LEASE,
        Writer::Command(op.caller.clone()),
    );
    let lines = sweep(&ctx, std::slice::from_ref(r), &accounts, &[region], true)
        .await
        .map_err(|e| {
            Failure::failed(format!(
                "what enforcing {} would change could not be found ({e}); nothing was set (--yes sets it without looking)",
                r.name()
            ))
        })?;
    println!(
        "what-if: enforcing {} in every account would change now (nothing was changed or recorded):\n",
        r.name()
    );
    print!("{}", render::sweep(&lines));
    for l in &lines {
        for e in &l.errors {
            eprintln!(
                "{} {} {}: {}: {}",
                l.remediation, l.account, l.region, e.resource_id, e.error
            );
        }
    }
    println!();
    super::jobs::confirm(&question, false)
}

/// `--max-days`: whole days, 1 to the most a tag may lie ahead.
fn max_days_arg(text: &str) -> std::result::Result<u32, String> {
    crate::clock::days_within(text, crate::settings::MAX_TAG_EXEMPTION_DAYS)
}

async fn tag_exemptions(
    config: &Config,
    on: bool,
    max_days: Option<u32>,
    by: Option<String>,
    out: OutputArgs,
) -> Result<()> {
    // --max-days was checked by its parser, and set_tag_exemptions checks it again for every
    // caller of the library.
    let op = operator(config, by).await?;
    let g = settings::set_tag_exemptions(&op.store, &op.audit, on, max_days, &op.by).await?;
    if out.is_json() {
        print_json(&global_json(&g));
    } else if g.tag_exemptions {
        println!(
            "tag exemptions on: a rectify:exempt tag counts with until=YYYY-MM-DD at most {} days ahead",
            g.tag_exemption_max_days
                .unwrap_or(crate::state::DEFAULT_TAG_EXEMPTION_MAX_DAYS)
        );
    } else {
        println!("tag exemptions off: rectify:exempt tags are ignored");
    }
    Ok(())
}

async fn accounts(config: &Config, cmd: AccountsCommand) -> Result<()> {
    let (edit, out) = match cmd {
        AccountsCommand::List { out } => (None, out),
        AccountsCommand::Add { accounts, by, out } => {
            (Some((AllowListEdit::add(accounts)?, by)), out)
        }
        AccountsCommand::Remove { accounts, by, out } => {
            (Some((AllowListEdit::remove(accounts)?, by)), out)
        }
        AccountsCommand::Clear { by, out } => (Some((AllowListEdit::clear(), by)), out),
        AccountsCommand::Organization { by, out } => {
            (Some((AllowListEdit::organization(), by)), out)
        }
    };
    let global = match edit {
        None => {
            store(config, &aws_config(config).await?)
                .settings()
                .await?
                .global
        }
        Some((edit, by)) => {
            let op = operator(config, by).await?;
            settings::edit_allow_list(&op.store, &op.audit, &edit, &op.by).await?
        }
    };
    if out.is_json() {
        print_json(&global_json(&global));
    } else {
        println!("{}", settings::describe_allow_list(&global));
    }
    Ok(())
}

async fn securityhub_admin(
    config: &Config,
    account: Option<String>,
    clear: bool,
    by: Option<String>,
    out: OutputArgs,
) -> Result<()> {
    let global = if account.is_none() && !clear {
        store(config, &aws_config(config).await?)
            .settings()
            .await?
            .global
    } else {
        if let Some(a) = &account {
            crate::event::validate_account(a)
                .map_err(|e| settings::SettingsError::Invalid(e.to_string()))?;
        }
        let op = operator(config, by).await?;
        settings::set_securityhub_admin(&op.store, &op.audit, account.as_deref(), &op.by).await?
    };
    if out.is_json() {
        print_json(&global_json(&global));
        return Ok(());
    }
    match global.securityhub_admin {
        Some(a) => println!(
            "Security Hub administrator account: {a} (its findings about other accounts are acted on)"
        ),
        None => println!(
            "no Security Hub administrator account: only findings an account reports about itself are acted on"
        ),
    }
    Ok(())
}

/// The Organization-wide settings as the commands that show or change them print them in JSON.
fn global_json(g: &crate::state::Global) -> Value {
    json!({
        "accounts": g.accounts,
        "organization": g.organization,
        "left_out": g.left_out,
        "tag_exemptions": g.tag_exemptions,
        "tag_exemption_max_days": g
            .tag_exemption_max_days
            .unwrap_or(crate::state::DEFAULT_TAG_EXEMPTION_MAX_DAYS),
        "paused": g.paused,
        "pause_reason": g.pause_reason,
        "securityhub_admin": g.securityhub_admin,
        "approver_must_differ": g.approver_must_differ,
        "updated_by": g.updated_by,
        "updated_at": g.updated_at,
    })
}
