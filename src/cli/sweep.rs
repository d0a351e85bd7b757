//! `rectify sweep`: find violations no event announced.

use clap::Args;

use super::{Failure, OutputArgs, Result, print_json};
use crate::app::{COMMAND_LEASE, aws_config, build_context, caller, load_catalog};
use crate::config::Config;
use crate::event::validate_account;
use crate::render;
use crate::settings::find_remediation;
use crate::sweep::sweep;

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Accounts to sweep (repeatable) [default: the caller's own account]
    #[arg(long = "account")]
    pub accounts: Vec<String>,
    /// Regions to sweep (repeatable) [default: the configured AWS region]
    #[arg(long = "region")]
    pub regions: Vec<String>,
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
    let aws = aws_config().await?;
    let loaded = load_catalog(config)?;
    let home = caller(&aws).await?.account;
    let ctx = build_context(config, &aws, loaded, COMMAND_LEASE, home);
    let catalog = ctx.catalog.current();
    let remediations = match &args.remediation {
        Some(name) => vec![find_remediation(&catalog, name)?.clone()],
        None => catalog.all().to_vec(),
    };
    let accounts = if args.accounts.is_empty() {
        vec![ctx.cloud.home_account().to_string()]
    } else {
        args.accounts.clone()
    };
    let regions = if args.regions.is_empty() {
        vec![
            aws.region()
                .map(std::string::ToString::to_string)
                .unwrap_or_default(),
        ]
    } else {
        args.regions.clone()
    };
    let lines = sweep(&ctx, &remediations, &accounts, &regions, args.what_if)
        .await
        .map_err(Failure::failed)?;
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
        return outcome;
    }
    if args.what_if {
        println!("what-if: nothing was changed or recorded. Enforcing would change:\n");
    }
    print!("{}", render::sweep(&lines));
    for l in &lines {
        for e in &l.errors {
            eprintln!(
                "{} {} {}: {}: {}",
                l.remediation, l.account, l.region, e.resource_id, e.error
            );
        }
    }
    outcome
}
