//! The source of work: the SQS event queue. [`poll`] receives with bounded concurrency and
//! turns each job's [`crate::reconcile::Disposition`] into the SQS call (delete, leave, DLQ);
//! [`dlq`] lists and redrives what was dead-lettered; [`queue_url`] finds a queue by name.

pub mod delete;
pub mod dlq;
pub mod poll;

use crate::cloud::{CloudError, classify};

/// A queue that could not be found by name.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue {name} does not exist: run `rectify bootstrap` (with the same --prefix) first")]
    Missing { name: String },
    #[error(transparent)]
    Cloud(#[from] CloudError),
}

impl QueueError {
    /// Never the operator's input: a missing queue is a prefix not bootstrapped (exit code 1,
    /// with the command that creates it), anything else AWS.
    pub fn is_usage(&self) -> bool {
        false
    }
}

/// The URL of the queue named `name`.
pub async fn queue_url(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String, QueueError> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url().unwrap_or_default().to_string()),
        Err(e) => {
            let e = classify("sqs:GetQueueUrl", e);
            if e.code().is_some_and(|c| c.contains("NonExistentQueue")) {
                Err(QueueError::Missing {
                    name: name.to_string(),
                })
            } else {
                Err(e.into())
            }
        }
    }
}
