//! `rectify sweep`: find violations no event announced.

use clap::Args;

use super::{Failure, OutputArgs, Result, print_json};
use crate::app::{COMMAND_LEASE, Writer, aws_config, build_context, caller, load_catalog};
use crate::config::Config;
use crate::event::validate_account;
use crate::render;
use crate::settings::find_remediation;
use crate::sweep::{
    DEFAULT_CONCURRENCY, DEFAULT_RATE, Fanout, Line, Progress, Regions, sweep_across,
};

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Accounts to sweep (repeatable) [default: the caller's own account]
    #[arg(long = "account")]
    pub accounts: Vec<String>,
    /// Sweep every account the allow-list allows: its accounts, or every ACTIVE account of the
    /// Organization when it is set to `organization`
    #[arg(long, conflicts_with = "accounts")]
    pub all_accounts: bool,
    /// Regions to sweep (repeatable) [default: the configured AWS region]
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Sweep every region enabled in each account (as its ec2:DescribeRegions lists them)
    #[arg(long, conflicts_with = "regions")]
    pub all_regions: bool,
    /// Enumerations (an account, a region, a resource type) worked on at once
    #[arg(long, default_value_t = DEFAULT_CONCURRENCY, value_parser = parse_concurrency)]
    pub concurrency: usize,
    /// Steps per second, at most, per account and service (a step is an enumeration or one
    /// resource's read, plan and fix); a step AWS throttles is retried with backoff
    #[arg(long, default_value_t = DEFAULT_RATE, value_parser = parse_rate)]
    pub rate: f64,
    /// Only this remediation [default: all]
    #[arg(long)]
    pub remediation: Option<String>,
    /// Change nothing and record nothing, whatever the modes: print what enforcing would
    /// change, per remediation and account. Read it before switching a remediation to enforce.
    #[arg(long)]
    pub what_if: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub(super) async fn run(config: &Config, args: SweepArgs) -> Result<()> {
    for a in &args.accounts {
        validate_account(a).map_err(|e| Failure::usage(format!("--account: {e}")))?;
    }
    crate::sweep::check_regions(&args.regions)
        .map_err(|e| Failure::usage(format!("--region: {e}")))?;
    let aws = aws_config(config).await?;
    let loaded = load_catalog(config)?;
    let me = caller(&aws).await?;
    let ctx = build_context(config, &aws, loaded, COMMAND_LEASE, Writer::Command(me));
    let catalog = ctx.catalog.current();
    let remediations = match &args.remediation {
        Some(name) => vec![find_remediation(&catalog, name)?.clone()],
        None => catalog.all().to_vec(),
    };
    let home_region = aws
        .region()
        .map(std::string::ToString::to_string)
        .unwrap_or_default();
    let accounts = if args.all_accounts {
        allowed_accounts(&ctx).await?
    } else if args.accounts.is_empty() {
        vec![ctx.cloud.home_account().to_string()]
    } else {
        args.accounts.clone()
    };
    let regions = if args.all_regions {
        Regions::Enabled { home: home_region }
    } else if args.regions.is_empty() {
        Regions::These(vec![home_region])
    } else {
        Regions::These(args.regions.clone())
    };
    let fanout = Fanout {
        concurrency: args.concurrency,
        rate: args.rate,
    };
    let bar = progress_bar();
    let mut report = |p: &Progress| match &bar {
        Some(bar) => {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            bar.set_message(format!("{} non-compliant", p.found));
        }
        None => tracing::info!(
            account = %p.account,
            region = %p.region,
            done = p.done,
            total = p.total,
            non_compliant = p.found,
            "swept"
        ),
    };
    let lines = sweep_across(
        &ctx,
        &remediations,
        &accounts,
        &regions,
        args.what_if,
        fanout,
        &mut report,
    )
    .await
    .map_err(Failure::failed)?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    ctx.audit.anchor().await?;
    // Resources or accounts that could not be swept make the run a failure (exit 1): what
    // was found is still printed and recorded.
    let errors: usize = lines.iter().map(|l| l.errors.len()).sum();
    let outcome = if errors == 0 {
        Ok(())
    } else {
        Err(Failure::failed(format!(
            "the sweep is incomplete: {errors} error(s) in reading or fixing (each is listed)"
        )))
    };
    if args.out.is_json() {
        print_json(&lines);
        report_failed_accounts(&lines);
        return outcome;
    }
    if args.what_if {
        println!("what-if: nothing was changed or recorded. Enforcing would change:\n");
    }
    print!("{}", render::sweep(&lines));
    println!("{}", total(&lines));
    for l in &lines {
        for e in &l.errors {
            eprintln!(
                "{} {} {}: {}: {}",
                l.remediation, l.account, l.region, e.resource_id, e.error
            );
        }
    }
    report_failed_accounts(&lines);
    outcome
}

/// Names, on stderr, each account an enumeration failed in, with the reason.
fn report_failed_accounts(lines: &[Line]) {
    let failed = failed_accounts(lines);
    if !failed.is_empty() {
        eprintln!("{} account(s) could not be swept:", failed.len());
        for (account, reason) in &failed {
            eprintln!("  {account}: {reason}");
        }
    }
}

/// `--concurrency`: how many enumerations at once, 1 to 1024.
fn parse_concurrency(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} is not a concurrency: give how many enumerations run at once, 1 to 1024"
        )),
    }
}

/// `--rate`: a positive, finite number of steps per second.
fn parse_rate(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "{s:?} is not a rate: give steps per second, a number above 0 (e.g. 20 or 0.5)"
        )),
    }
}

/// The accounts the allow-list allows: its own list, or the Organization's ACTIVE accounts
/// when it is set to `organization`. An empty list allows none, so there is nothing to sweep.
async fn allowed_accounts(ctx: &crate::reconcile::Context) -> Result<Vec<String>> {
    let snapshot = ctx
        .settings
        .get()
        .await
        .map_err(|e| Failure::failed(format!("settings cannot be read: {e}")))?;
    let accounts = ctx
        .organization
        .allowed(&snapshot.global, ctx.cloud.home_account())
        .await
        .map_err(|e| {
            Failure::failed(format!(
                "--all-accounts: the Organization's accounts cannot be listed: {e}"
            ))
        })?;
    if accounts.is_empty() {
        return Err(Failure::failed(
            "--all-accounts: the allow-list is empty, so rectify acts in no account and there is nothing to sweep (allow some with `rectify settings accounts add ID...` or `rectify settings accounts organization`)",
        ));
    }
    Ok(accounts)
}

/// A progress bar on stderr when it is a terminal; `None` otherwise (log lines say it then).
fn progress_bar() -> Option<indicatif::ProgressBar> {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return None;
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "sweeping {bar:30} {pos}/{len} accounts × regions, {msg} [{elapsed}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// The report's total, one line.
fn total(lines: &[Line]) -> String {
    let pairs: std::collections::BTreeSet<(&str, &str)> = lines
        .iter()
        .map(|l| (l.account.as_str(), l.region.as_str()))
        .collect();
    let accounts: std::collections::BTreeSet<&str> =
        lines.iter().map(|l| l.account.as_str()).collect();
    format!(
        "total: {} account(s), {} account-region(s), {} scanned, {} non-compliant, {} held back, {} error(s)",
        accounts.len(),
        pairs.len(),
        lines.iter().map(|l| l.scanned).sum::<usize>(),
        lines.iter().map(|l| l.would_change.len()).sum::<usize>(),
        lines.iter().map(|l| l.held.len()).sum::<usize>(),
        lines.iter().map(|l| l.errors.len()).sum::<usize>(),
    )
}

/// Accounts with an enumeration that failed (resource `*`), each with the first reason.
fn failed_accounts(lines: &[Line]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for l in lines {
        if out.iter().any(|(a, _)| *a == l.account) {
            continue;
        }
        if let Some(e) = l.errors.iter().find(|e| e.resource_id == "*") {
            out.push((l.account.clone(), e.error.clone()));
        }
    }
    out
}
