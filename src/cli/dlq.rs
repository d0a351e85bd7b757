//! `rectify dlq`: list the dead-letter queue and redrive messages from it.

use clap::Subcommand;

use super::{Failure, Result, print_json};
use crate::app::aws_config;
use crate::config::Config;
use crate::render;
use crate::source::dlq;
use crate::source::queue_url;
use crate::state::Names;

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Messages in the DLQ with the reason rectify gave and how many times the event queue
    /// delivered each before it was dead-lettered (listings do not change that count).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Move messages from the DLQ back to the queue (all, or those named with --id), once the
    /// cause is fixed. Each is sent to the queue before it is deleted from the DLQ.
    Redrive {
        /// A message id as `dlq list` shows it; repeatable [default: every message]
        #[arg(long = "id")]
        ids: Vec<String>,
    },
}

pub(super) async fn run(config: &Config, cmd: DlqCommand) -> Result<()> {
    match cmd {
        DlqCommand::List { json } => list(config, json).await,
        DlqCommand::Redrive { ids } => redrive(config, ids).await,
    }
}

async fn list(config: &Config, json_out: bool) -> Result<()> {
    let aws = aws_config().await?;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let names = Names::new(&config.prefix);
    let url = queue_url(&sqs, &names.dlq).await?;
    // Without the event queue's redrive policy, a message SQS moved shows SQS's own count.
    let moved_after = match queue_url(&sqs, &names.queue).await {
        Ok(events) => max_receive_count(&sqs, &events).await,
        Err(_) => None,
    };
    let items = dlq::list(&sqs, &url, moved_after).await?;
    if json_out {
        print_json(&items);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.receive_count.to_string(),
                m.reason.chars().take(80).collect(),
                m.body
                    .chars()
                    .take(40)
                    .collect::<String>()
                    .replace('\n', " "),
            ]
        })
        .collect();
    print!(
        "{}",
        render::table(&["ID", "RECEIVES", "REASON", "BODY"], &rows)
    );
    Ok(())
}

/// The queue's `maxReceiveCount`, from its redrive policy; None when it cannot be read.
async fn max_receive_count(sqs: &aws_sdk_sqs::Client, url: &str) -> Option<u64> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await
        .ok()?;
    let policy: serde_json::Value =
        serde_json::from_str(out.attributes()?.get(&QueueAttributeName::RedrivePolicy)?).ok()?;
    match &policy["maxReceiveCount"] {
        serde_json::Value::String(s) => s.parse().ok(),
        v => v.as_u64(),
    }
}

async fn redrive(config: &Config, ids: Vec<String>) -> Result<()> {
    let aws = aws_config().await?;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let names = Names::new(&config.prefix);
    let dlq_url = queue_url(&sqs, &names.dlq).await?;
    let queue = queue_url(&sqs, &names.queue).await?;
    let done = dlq::redrive(&sqs, &dlq_url, &queue, &ids).await?;
    println!(
        "{} message(s) moved from {} back to {}",
        done.moved.len(),
        names.dlq,
        names.queue
    );
    if !done.missing.is_empty() {
        return Err(Failure::usage(format!(
            "not found in the DLQ: {}",
            done.missing.join(", ")
        )));
    }
    Ok(())
}
