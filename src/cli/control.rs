//! `rectify pause` and `rectify resume`: the Organization-wide stop switch.

use clap::Args;

use super::{Result, aws_config, by_or_caller, command_audit, store};
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
    #[arg(long)]
    by: Option<String>,
}

pub(super) async fn pause(config: &Config, args: PauseArgs) -> Result<()> {
    let aws = aws_config().await?;
    let by = by_or_caller(&aws, args.by).await?;
    let store = store(config, &aws);
    let g = settings::pause(&store, &command_audit(&store), &args.reason, &by).await?;
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
    let aws = aws_config().await?;
    let by = by_or_caller(&aws, args.by).await?;
    let store = store(config, &aws);
    let g = settings::resume(&store, &command_audit(&store), &by).await?;
    println!(
        "rectify resumed by {}; jobs planned while paused run again with `rectify jobs retry ID`",
        g.updated_by.as_deref().unwrap_or("?")
    );
    Ok(())
}
