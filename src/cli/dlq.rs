//! `rectify dlq`: list the dead-letter queue and redrive messages from it.

use clap::Subcommand;

use serde_json::json;

use super::{Failure, OutputArgs, Result, print_json};
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
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Move messages from the DLQ back to the queue (all, or those named with --id), once the
    /// cause is fixed. Each is sent to the queue before it is deleted from the DLQ.
    Redrive {
        /// A message id as `dlq list` shows it; repeatable [default: every message]
        #[arg(long = "id")]
        ids: Vec<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

pub(super) async fn run(config: &Config, cmd: DlqCommand) -> Result<()> {
    match cmd {
        DlqCommand::List { out } => list(config, out).await,
        DlqCommand::Redrive { ids, out } => redrive(config, ids, out).await,
    }
}

async fn list(config: &Config, out: OutputArgs) -> Result<()> {
    let aws = aws_config(config).await?;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let names = Names::new(&config.prefix);
    let url = queue_url(&sqs, &names.dlq).await?;
    // Without the event queue's redrive policy, a message SQS moved shows SQS's own count.
    let moved_after = match queue_url(&sqs, &names.queue).await {
        Ok(events) => max_receive_count(&sqs, &events).await,
        Err(_) => None,
    };
    let items = dlq::list(&sqs, &url, moved_after).await?;
    if out.is_json() {
        print_json(&items);
        return Ok(());
    }
    let now = chrono::Utc::now();
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.sent_at
                    .as_deref()
                    .map_or_else(|| "-".into(), |t| crate::clock::age(t, now)),
                m.receive_count.to_string(),
                render::elide(&m.reason, 80),
                render::elide(&m.body, 40),
            ]
        })
        .collect();
    print!(
        "{}",
        render::table(&["ID", "AGE", "RECEIVES", "REASON", "BODY"], &rows)
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

async fn redrive(config: &Config, ids: Vec<String>, out: OutputArgs) -> Result<()> {
    let aws = aws_config(config).await?;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let names = Names::new(&config.prefix);
    let dlq_url = queue_url(&sqs, &names.dlq).await?;
    let queue = queue_url(&sqs, &names.queue).await?;
    let done = dlq::redrive(&sqs, &dlq_url, &queue, &ids).await?;
    if out.is_json() {
        print_json(&json!({
            "from": names.dlq,
            "to": names.queue,
            "moved": done.moved,
            "missing": done.missing,
        }));
    } else {
        println!(
            "{} message(s) moved from {} back to {}",
            done.moved.len(),
            names.dlq,
            names.queue
        );
    }
    if !done.missing.is_empty() {
        return Err(Failure::usage(format!(
            "not found in the DLQ: {}",
            done.missing.join(", ")
        )));
    }
    Ok(())
}
