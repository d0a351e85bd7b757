//! `rectify pause` and `rectify resume`: the Organization-wide stop switch.

use clap::Args;

use super::{Result, operator};
use crate::config::Config;
use crate::settings;

#[derive(Debug, Args)]
pub struct PauseArgs {
    /// Why (shown on every job held while paused).
    #[arg(long)]
    reason: String,
    /// Who [default: the caller's AWS identity]
    #[arg(long)]
    by: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Who [default: the caller's AWS identity]
    #[arg(long)]
    by: Option<String>,
}

pub(super) async fn pause(config: &Config, args: PauseArgs) -> Result<()> {
    let op = operator(config, args.by).await?;
    let g = settings::pause(&op.store, &op.audit, &args.reason, &op.by).await?;
    println!(
        "rectify is paused by {}: no change is made anywhere; jobs are still planned and recorded",
        g.updated_by.as_deref().unwrap_or("?")
    );
    println!(
        "settings are cached for up to {} s by running workers",
        config.settings_cache_seconds
    );
    Ok(())
}

pub(super) async fn resume(config: &Config, args: ResumeArgs) -> Result<()> {
    let op = operator(config, args.by).await?;
    let g = settings::resume(&op.store, &op.audit, &op.by).await?;
    println!(
        "rectify resumed by {}; jobs planned while paused run again with `rectify jobs retry ID`",
        g.updated_by.as_deref().unwrap_or("?")
    );
    Ok(())
}
