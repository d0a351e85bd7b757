//! `rectify worker` (run the worker, see [`crate::app::run`]) and `rectify healthcheck`.

use std::time::{Duration, Instant};

use clap::Args;
use tokio_util::sync::CancellationToken;

use super::{Failure, Result};
use crate::app::{self, RunOptions};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Drain the queue and exit: poll with a short wait, exit 0 once a receive returns nothing
    /// and all work in flight is done.
    #[arg(long)]
    pub once: bool,
    /// Messages worked on at once [default: 8]
    #[arg(long, env = "RECTIFY_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Long-poll wait: seconds or a duration (20s), 0 to 20 s [default: 20; 1 with --once]
    #[arg(long, value_name = "DURATION", value_parser = wait_arg)]
    pub wait_seconds: Option<i32>,
    /// Also sweep the worker's own account and region this often: seconds or a duration
    /// (15m, 6h, 1d), at least 60 s (not with --once) [default: off]
    #[arg(long, value_name = "DURATION", value_parser = sweep_every_arg)]
    pub sweep_every: Option<u64>,
}

#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The longest time since the last poll that counts as healthy: seconds or a duration
    /// (90s, 2m) (a long poll waits 20 s).
    #[arg(long, default_value_t = 90, value_name = "DURATION", value_parser = crate::clock::seconds_arg)]
    max_age: u64,
}

/// `--sweep-every`: a duration of at least a minute, as seconds.
fn sweep_every_arg(text: &str) -> std::result::Result<u64, String> {
    let secs = crate::clock::seconds_arg(text)?;
    if secs < 60 {
        return Err(format!(
            "{text:?} is {secs} s: sweep at most once a minute (60 s or more)"
        ));
    }
    Ok(secs)
}

/// `--wait-seconds`: SQS long polls wait 0 to 20 seconds.
fn wait_arg(text: &str) -> std::result::Result<i32, String> {
    crate::clock::seconds_within(text, 0, 20).map(|s| s as i32)
}

pub(super) async fn run(config: Config, args: WorkerArgs, started: Instant) -> Result<()> {
    let opts = RunOptions {
        once: args.once,
        wait_seconds: args.wait_seconds,
        sweep_every: args.sweep_every.map(Duration::from_secs),
        started,
    };
    Ok(app::run(config, opts, CancellationToken::new()).await?)
}

pub(super) fn healthcheck(config: &Config, args: HealthcheckArgs) -> Result<()> {
    let max_age = args.max_age;
    let path = &config.liveness_file;
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| {
            Failure::failed(format!(
                "unhealthy: {} cannot be read ({e}): the worker has not polled",
                path.display()
            ))
        })?;
    let age = modified.elapsed().unwrap_or_default();
    if age.as_secs() > max_age {
        return Err(Failure::failed(format!(
            "unhealthy: the last poll was {} s ago (more than {max_age} s)",
            age.as_secs()
        )));
    }
    println!("healthy: the last poll was {} s ago", age.as_secs());
    Ok(())
}
