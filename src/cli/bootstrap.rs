//! `rectify bootstrap`: create the event queue, its DLQ, the control queue and the tables.

use clap::Args;

use serde_json::json;

use super::{OutputArgs, Result, print_json};
use crate::app::aws_config;
use crate::bootstrap::bootstrap;
use crate::config::Config;
use crate::render;
use crate::state::Names;

#[derive(Debug, Args)]
pub struct BootstrapArgs {
    /// Visibility timeout of the queue: how long a message is hidden while a worker holds it,
    /// and how long a job's claim lasts; seconds or a duration (2m), 1 s to 12h
    #[arg(long, default_value = "120", value_name = "DURATION", value_parser = visibility_arg)]
    visibility_timeout: u32,
    #[command(flatten)]
    out: OutputArgs,
}

/// SQS takes a visibility timeout of 0 to 43,200 seconds; 0 would hand every message to the
/// next poll at once.
fn visibility_arg(text: &str) -> std::result::Result<u32, String> {
    crate::clock::seconds_within(text, 1, 43_200).map(|s| s as u32)
}

pub(super) async fn run(config: &Config, args: BootstrapArgs) -> Result<()> {
    let aws = aws_config(config).await?;
    let made = bootstrap(
        &aws_sdk_sqs::Client::new(&aws),
        &aws_sdk_dynamodb::Client::new(&aws),
        &Names::new(&config.prefix),
        args.visibility_timeout,
    )
    .await?;
    if args.out.is_json() {
        print_json(&json!({
            "prefix": config.prefix,
            "resources": made
                .iter()
                .map(|m| json!({"kind": m.kind, "name": m.name, "state": m.state, "detail": m.detail}))
                .collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = made
        .iter()
        .map(|m| {
            vec![
                m.kind.into(),
                m.name.clone(),
                m.state.into(),
                m.detail.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        render::table(&["KIND", "NAME", "STATE", "DETAIL"], &rows)
    );
    Ok(())
}
