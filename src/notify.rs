//! Notifications: an optional SNS topic told of what needs a person (a plan pending approval, a
//! resource left unfixed by an exemption, a fix that failed or did not hold, a tripped breaker)
//! and of what was done.
//!
//! Each is published with `MessageStructure=json`, so each subscriber gets the form its protocol
//! reads: email (and every protocol without a key of its own) a plain text a person reads (what,
//! where, why, the commands to act); `sqs`, `lambda`, `firehose` and `https` the JSON object with
//! the job, the resource, a plan summary and the command to act on it. With `notify_chat`,
//! `https` subscribers (Amazon Q Developer in chat applications, which posts to Slack, Microsoft
//! Teams and Amazon Chime) get that service's custom-notification format instead. A
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
    /// `https` subscribers get the chat format.
    chat: bool,
}

impl Notifier {
    /// With `chat`, `https` subscribers get the custom-notification format of Amazon Q
    /// Developer in chat applications.
    pub fn new(sns: aws_sdk_sns::Client, topic_arn: String, chat: bool) -> Notifier {
        Notifier {
            sns,
            topic_arn,
            chat,
        }
    }

    /// Tells of a job's outcome when it is one a person should hear about.
    pub async fn job(&self, job: &Job) {
        if let Some(notice) = job_notice(job) {
            self.publish(&notice).await;
        }
    }

    /// Tells that a remediation's breaker tripped it to approval in the job's account.
    pub async fn breaker_tripped(&self, job: &Job, count: usize, limit: u32, window_seconds: u64) {
        self.publish(&breaker_notice(job, count, limit, window_seconds))
            .await;
    }

    async fn publish(&self, notice: &Notice) {
        let subject: String = notice
            .subject
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        if let Err(e) = self
            .sns
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message_structure("json")
            .message(notice.structured(self.chat))
            .send()
            .await
        {
            warn!(topic = %self.topic_arn, error = %classify("sns:Publish", e), "notification could not be sent");
        }
    }
}

/// One notification, before it is written for each protocol.
#[derive(Debug, Clone)]
struct Notice {
    /// The email subject and chat title.
    subject: String,
    /// One sentence: what happened.
    headline: String,
    account: String,
    region: String,
    /// `TYPE id`, or the id alone when the type is not known.
    resource: String,
    reason: Option<String>,
    plan: Vec<String>,
    /// The commands (or steps) to act, in order.
    steps: Vec<String>,
    /// The JSON object queues and functions get.
    object: Value,
}

impl Notice {
    /// The plain text for email: what, where, why, the plan, then the commands to run.
    fn text(&self) -> String {
        let mut t = format!(
            "{}\n\nWhere: account {}, region {}, {}\n",
            self.headline, self.account, self.region, self.resource
        );
        if let Some(reason) = self.reason.as_deref().filter(|r| !r.is_empty()) {
            t.push_str(&format!("Why: {reason}\n"));
        }
        if !self.plan.is_empty() {
            t.push_str("\nThe plan:\n");
            for a in &self.plan {
                t.push_str(&format!("  - {a}\n"));
            }
        }
        t.push_str("\nTo act:\n");
        for s in &self.steps {
            t.push_str(&format!("  {s}\n"));
        }
        t
    }

    /// The custom-notification format of Amazon Q Developer in chat applications.
    fn chat(&self) -> Value {
        let mut description = format!(
            "{}\n*Where:* account {}, region {}, {}",
            self.headline, self.account, self.region, self.resource
        );
        if let Some(reason) = self.reason.as_deref().filter(|r| !r.is_empty()) {
            description.push_str(&format!("\n*Why:* {reason}"));
        }
        for a in &self.plan {
            description.push_str(&format!("\n• {a}"));
        }
        json!({
            "version": "1.0",
            "source": "custom",
            "content": {
                "textType": "client-markdown",
                "title": self.subject,
                "description": description,
                "nextSteps": self.steps.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>(),
                "keywords": [self.object["event"], self.object["remediation"], self.account],
            },
            "metadata": {
                "summary": self.subject,
                "eventType": self.object["event"],
                "relatedResources": [self.object["resource_id"]],
                "additionalContext": {
                    "job_id": self.object["job_id"],
                    "account": self.account,
                    "region": self.region,
                },
            },
        })
    }

    /// The SNS message for `MessageStructure=json`: one string per protocol, `default` for the
    /// rest. `chat` writes the `https` one for Amazon Q Developer in chat applications.
    fn structured(&self, chat: bool) -> String {
        let text = self.text();
        let object = self.object.to_string();
        let https = if chat {
            self.chat().to_string()
        } else {
            object.clone()
        };
        json!({
            "default": text,
            "email": text,
            "sqs": object,
            "lambda": object,
            "firehose": object,
            "https": https,
        })
        .to_string()
    }
}

/// What a job's outcome asks of a person: a headline, the steps to act, and the same steps as
/// one line for the JSON object's `command`. None when it asks nothing.
fn job_steps(job: &Job) -> Option<(String, Vec<String>, String)> {
    let id = &job.id;
    let r = &job.remediation;
    Some(match job.status {
        JobStatus::PendingApproval => (
            format!("{r} planned a fix that waits for a person to approve or reject it."),
            vec![
                format!("rectify jobs show {id}"),
                format!("rectify jobs approve {id} --by NAME"),
                format!("rectify jobs reject {id} --by NAME --reason TEXT"),
            ],
            format!(
                "rectify jobs show {id}; rectify jobs approve {id} --by NAME, or rectify jobs reject {id} --by NAME --reason TEXT"
            ),
        ),
        // An exemption leaves a violation in place: a person hears of it as of a plan
        // waiting for approval.
        JobStatus::Exempt => (
            format!("{r} found a violation and left it in place: the resource is exempt."),
            vec![
                format!("rectify jobs show {id}"),
                "to act on it anyway: rectify exemptions remove, remove the resource's rectify:exempt tag, or rectify settings tag-exemptions off".into(),
                format!("then: rectify jobs retry {id}"),
            ],
            format!(
                "rectify jobs show {id}; to act on it anyway: rectify exemptions remove, remove the resource's rectify:exempt tag, or rectify settings tag-exemptions off; then rectify jobs retry {id}"
            ),
        ),
        JobStatus::Applied => (
            format!("{r} fixed a violation."),
            vec![format!("rectify jobs show {id}")],
            format!("rectify jobs show {id}"),
        ),
        JobStatus::Failed => (
            format!("{r} could not fix a violation."),
            vec![
                format!("rectify jobs show {id}"),
                format!("after fixing the cause: rectify jobs retry {id}"),
            ],
            format!("rectify jobs show {id}; after fixing the cause: rectify jobs retry {id}"),
        ),
        JobStatus::ApprovalExpired => (
            format!("{r}'s plan waited too long for an approval and expired unapplied."),
            vec![
                format!("rectify jobs show {id}"),
                format!("to plan it again for a new approval: rectify jobs retry {id}"),
            ],
            format!(
                "rectify jobs show {id}; to plan it again for a new approval: rectify jobs retry {id}"
            ),
        ),
        JobStatus::FailedVerify => (
            format!("{r} made a change that did not hold: the resource is still not compliant."),
            vec![
                format!("rectify jobs show {id}"),
                format!("inspect the resource, or put it back: rectify jobs undo {id} --reason TEXT"),
            ],
            format!(
                "rectify jobs show {id}: the change was made but did not hold; inspect the resource, or put it back with rectify jobs undo {id} --reason TEXT"
            ),
        ),
        _ => return None,
    })
}

fn plan_summary(job: &Job) -> Vec<String> {
    job.plan
        .as_ref()
        .map(|p| p.actions.iter().map(Action::summary).collect())
        .unwrap_or_default()
}

fn resource(resource_type: &str, id: &str) -> String {
    if resource_type.is_empty() {
        id.to_string()
    } else {
        format!("{resource_type} {id}")
    }
}

/// The notice for a job's outcome; None when the outcome asks nothing of a person.
fn job_notice(job: &Job) -> Option<Notice> {
    let (headline, steps, command) = job_steps(job)?;
    let summary = plan_summary(job);
    let object = json!({
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
    });
    Some(Notice {
        subject: format!(
            "rectify: {} {} {}",
            job.status.as_str(),
            job.remediation,
            job.resource_id
        ),
        headline,
        account: job.account.clone(),
        region: job.region.clone(),
        resource: resource(&job.resource_type, &job.resource_id),
        reason: job.reason.clone(),
        plan: summary,
        steps,
        object,
    })
}

/// The notice that a remediation's breaker tripped it to approval in the job's account.
fn breaker_notice(job: &Job, count: usize, limit: u32, window_seconds: u64) -> Notice {
    let reason = format!(
        "{count} enforcements in account {} in the last {window_seconds} s reached the limit of {limit}; the remediation is now in approval mode in that account",
        job.account
    );
    let steps = vec![
        "review: rectify jobs list --status pending-approval".to_string(),
        format!(
            "reset: rectify settings set {} --account {} --mode enforce",
            job.remediation, job.account
        ),
    ];
    let summary = plan_summary(job);
    let object = json!({
        "event": "breaker-tripped",
        "job_id": job.id,
        "remediation": job.remediation,
        "account": job.account,
        "region": job.region,
        "resource_id": job.resource_id,
        "reason": reason,
        "plan_summary": summary,
        "command": steps.join("; "),
    });
    Notice {
        subject: format!(
            "rectify: breaker tripped for {} in {}",
            job.remediation, job.account
        ),
        headline: format!(
            "The breaker of {} tripped: it is now in approval mode in account {}.",
            job.remediation, job.account
        ),
        account: job.account.clone(),
        region: job.region.clone(),
        resource: resource(&job.resource_type, &job.resource_id),
        reason: Some(reason),
        plan: summary,
        steps,
        object,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::Plan;
    use crate::catalog::Mode;

    fn pending() -> Job {
        let finding = crate::event::Finding {
            source: crate::event::Source::Config,
            event_id: None,
            account: "111122223333".into(),
            region: "eu-west-1".into(),
            rule: "restricted-ssh".into(),
            rule_base: "restricted-ssh".into(),
            resource_type: "AWS::EC2::SecurityGroup".into(),
            resource_id: "sg-0123456789abcdef0".into(),
            compliance: crate::event::Compliance::NonCompliant,
            ordered_at: None,
            observation: "o".into(),
            annotation: None,
            hub: None,
            rectify_noted: false,
        };
        let catalog = crate::catalog::Catalog::load(
            &crate::script::hardened_engine(&crate::script::Limits::default()),
            None,
        )
        .unwrap();
        let mut job = crate::reconcile::new_job(
            &finding,
            catalog.get("sg-revoke-open-ssh").unwrap(),
            Mode::Approval,
        );
        job.status = JobStatus::PendingApproval;
        job.reason = Some("port 22 open to 0.0.0.0/0".into());
        job.plan = Some(Plan {
            actions: vec![Action::RevokeSecurityGroupIngress {
                group_id: "sg-0123456789abcdef0".into(),
                rule_id: "sgr-0123456789abcdef0".into(),
            }],
            ..Default::default()
        });
        job
    }

    fn protocols(message: &str) -> serde_json::Map<String, Value> {
        let v: Value = serde_json::from_str(message).unwrap();
        let map = v.as_object().unwrap().clone();
        for (k, v) in &map {
            assert!(v.is_string(), "SNS wants a string for {k}, not {v}");
        }
        map
    }

    #[test]
    fn email_reads_what_where_why_and_the_commands_to_run() {
        let job = pending();
        let m = protocols(&job_notice(&job).unwrap().structured(false));
        let text = m["default"].as_str().unwrap();
        assert_eq!(m["email"], m["default"]);
        assert!(
            text.starts_with("sg-revoke-open-ssh planned a fix that waits for a person"),
            "{text}"
        );
        assert!(
            text.contains(
                "Where: account 111122223333, region eu-west-1, AWS::EC2::SecurityGroup sg-0123456789abcdef0"
            ),
            "{text}"
        );
        assert!(text.contains("Why: port 22 open to 0.0.0.0/0"), "{text}");
        assert!(text.contains("  - "), "the plan, one action a line: {text}");
        assert!(
            text.contains(&format!("To act:\n  rectify jobs show {}\n", job.id)),
            "{text}"
        );
        assert!(
            text.contains(&format!("  rectify jobs approve {} --by NAME\n", job.id)),
            "{text}"
        );
        assert!(!text.contains('{'), "no JSON in the text: {text}");
    }

    #[test]
    fn queues_functions_and_https_get_the_json_object() {
        let job = pending();
        let m = protocols(&job_notice(&job).unwrap().structured(false));
        for protocol in ["sqs", "lambda", "firehose", "https"] {
            let o: Value = serde_json::from_str(m[protocol].as_str().unwrap()).unwrap();
            assert_eq!(o["event"], "pending-approval", "{protocol}");
            assert_eq!(o["job_id"], job.id.as_str(), "{protocol}");
            assert!(
                o["command"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("rectify jobs approve {}", job.id))
            );
        }
    }

    #[test]
    fn chat_gets_the_custom_notification_format_of_amazon_q_developer() {
        let job = pending();
        let m = protocols(&job_notice(&job).unwrap().structured(true));
        let c: Value = serde_json::from_str(m["https"].as_str().unwrap()).unwrap();
        assert_eq!(c["version"], "1.0");
        assert_eq!(c["source"], "custom");
        assert_eq!(c["content"]["textType"], "client-markdown");
        assert_eq!(
            c["content"]["title"],
            format!("rectify: pending-approval sg-revoke-open-ssh sg-0123456789abcdef0")
        );
        let description = c["content"]["description"].as_str().unwrap();
        assert!(description.contains("*Why:* port 22 open"), "{description}");
        assert_eq!(
            c["content"]["nextSteps"][1],
            format!("`rectify jobs approve {} --by NAME`", job.id)
        );
        assert_eq!(c["metadata"]["eventType"], "pending-approval");
        assert_eq!(
            c["metadata"]["additionalContext"]["job_id"],
            job.id.as_str()
        );
        // Queues keep the JSON object.
        let o: Value = serde_json::from_str(m["sqs"].as_str().unwrap()).unwrap();
        assert_eq!(o["event"], "pending-approval");
    }

    #[test]
    fn an_outcome_that_asks_nothing_sends_nothing() {
        let mut job = pending();
        job.status = JobStatus::Planned;
        assert!(job_notice(&job).is_none());
    }

    #[test]
    fn a_tripped_breaker_says_how_to_reset_it() {
        let n = breaker_notice(&pending(), 5, 5, 3600);
        let text = n.text();
        assert!(
            text.starts_with("The breaker of sg-revoke-open-ssh tripped"),
            "{text}"
        );
        assert!(
            text.contains("  reset: rectify settings set sg-revoke-open-ssh --account 111122223333 --mode enforce\n"),
            "{text}"
        );
        assert_eq!(n.object["event"], "breaker-tripped");
    }
}
