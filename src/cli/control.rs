//! `rectify pause` and `rectify resume`: the Organization-wide stop switch.

use clap::Args;

use serde_json::json;

use super::{OutputArgs, Result, operator, print_json};
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
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Who [default: the caller's AWS identity]
    #[arg(long)]
    by: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

/// The pause switch as `pause` and `resume` print it in JSON.
fn switch_json(g: &crate::state::Global, settings_cache_seconds: u64) -> serde_json::Value {
    json!({
        "paused": g.paused,
        "reason": g.pause_reason,
        "by": g.updated_by,
        "at": g.updated_at,
        "settings_cache_seconds": settings_cache_seconds,
    })
}

pub(super) async fn pause(config: &Config, args: PauseArgs) -> Result<()> {
    let op = operator(config, args.by).await?;
    let g = settings::pause(&op.store, &op.audit, &args.reason, &op.by).await?;
    if args.out.is_json() {
        print_json(&switch_json(&g, config.settings_cache_seconds));
        return Ok(());
    }
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
    if args.out.is_json() {
        print_json(&switch_json(&g, config.settings_cache_seconds));
        return Ok(());
    }
    println!(
        "rectify resumed by {}; jobs planned while paused run again with `rectify jobs retry ID`",
        g.updated_by.as_deref().unwrap_or("?")
    );
    Ok(())
}
