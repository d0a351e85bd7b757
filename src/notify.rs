//! Notifications: an optional SNS topic told of what needs a person (a plan pending approval, a
//! resource left unfixed by an exemption, a fix that failed or did not hold, a tripped breaker)
//! and of what was done. Each message is one
//! JSON object with the job, the resource, a plan summary and the command to act on it. A
//! notification that cannot be sent is logged; it never changes a job's outcome.

use serde_json::{Value, json};
use tracing::warn;

use crate::action::Action;
use crate::cloud::classify;
use crate::state::{Job, JobStatus};

/// Publishes to one SNS topic.
pub struct Notifier {
    sns: aws_sdk_sns::Client,
    topic_arn: String,
}

impl Notifier {
    pub fn new(sns: aws_sdk_sns::Client, topic_arn: String) -> Notifier {
        Notifier { sns, topic_arn }
    }

    /// Tells of a job's outcome when it is one a person should hear about.
    pub async fn job(&self, job: &Job) {
        let command = match job.status {
            JobStatus::PendingApproval => format!(
                "rectify jobs show {id}; rectify jobs approve {id} --by NAME, or rectify jobs reject {id} --by NAME --reason TEXT",
                id = job.id
            ),
            // An exemption leaves a violation in place: a person hears of it as of a plan
            // waiting for approval.
            JobStatus::Exempt => format!(
                "rectify jobs show {id}; to act on it anyway: rectify exemptions remove, remove the resource's rectify:exempt tag, or rectify settings tag-exemptions off; then rectify jobs retry {id}",
                id = job.id
            ),
            JobStatus::Applied => format!("rectify jobs show {}", job.id),
            JobStatus::Failed => format!(
                "rectify jobs show {id}; after fixing the cause: rectify jobs retry {id}",
                id = job.id
            ),
            JobStatus::ApprovalExpired => format!(
                "rectify jobs show {id}; to plan it again for a new approval: rectify jobs retry {id}",
                id = job.id
            ),
            JobStatus::FailedVerify => format!(
                "rectify jobs show {id}: the change was made but did not hold; inspect the resource, or put it back with rectify jobs undo {id} --reason TEXT",
                id = job.id
            ),
            _ => return,
        };
        let summary: Vec<String> = job
            .plan
            .as_ref()
            .map(|p| p.actions.iter().map(Action::summary).collect())
            .unwrap_or_default();
        self.publish(
            &format!(
                "rectify: {} {} {}",
                job.status.as_str(),
                job.remediation,
                job.resource_id
            ),
            json!({
                "event": job.status.as_str(),
                "job_id": job.id,
                "remediation": job.remediation,
                "account": job.account,
                "region": job.region,
                "resource_type": job.resource_type,
                "resource_id": job.resource_id,
                "mode": job.mode.as_str(),
                "reason": job.reason,
                "plan_summary": summary,
                "plan_hash": job.plan_hash,
                "command": command,
            }),
        )
        .await;
    }

    /// Tells that a remediation's breaker tripped it to approval in the job's account.
    pub async fn breaker_tripped(&self, job: &Job, count: usize, limit: u32, window_seconds: u64) {
        self.publish(
            &format!(
                "rectify: breaker tripped for {} in {}",
                job.remediation, job.account
            ),
            json!({
                "event": "breaker-tripped",
                "job_id": job.id,
                "remediation": job.remediation,
                "account": job.account,
                "region": job.region,
                "resource_id": job.resource_id,
                "reason": format!("{count} enforcements in account {} in the last {window_seconds} s reached the limit of {limit}; the remediation is now in approval mode in that account", job.account),
                "plan_summary": job.plan.as_ref().map(|p| p.actions.iter().map(Action::summary).collect::<Vec<_>>()).unwrap_or_default(),
                "command": format!(
                    "review: rectify jobs list --status pending-approval; reset: rectify settings set {} --account {} --mode enforce",
                    job.remediation, job.account
                ),
            }),
        )
        .await;
    }

    async fn publish(&self, subject: &str, message: Value) {
        let subject: String = subject
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        if let Err(e) = self
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message.to_string())
            .send()
            .await
        {
            warn!(topic = %self.topic_arn, error = %classify("sns:Publish", e), "notification could not be sent");
        }
    }
}
