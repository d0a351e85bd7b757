//! Operators' workflows on jobs: approve or reject a pending plan, run a job again.
//!
//! The worker does the work: these only move a job's status (with a conditional write, so two
//! operators cannot both decide) and queue a control message on the control queue that makes the
//! worker re-read the resource and re-plan.

pub mod approval;

use tokio::sync::OnceCell;

use crate::cloud::{CloudError, classify};
use crate::event::Control;
use crate::source::{QueueError, queue_url};
use crate::state::{Job, JobStatus, StateError, Store};

/// An operator's job workflow that was refused or did not happen.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("no job {0:?} (see `rectify jobs list`)")]
    NotFound(String),
    #[error("job {id} is {status}, not pending-approval: only a pending plan can be {verb}")]
    NotPending {
        id: String,
        status: &'static str,
        verb: &'static str,
    },
    #[error(
        "job {id} waited longer than {ttl_seconds} s for an approval and has expired; it will not be applied (`rectify jobs retry {id}` plans it again)"
    )]
    Expired { id: String, ttl_seconds: u64 },
    #[error(
        "job {id}'s pending plan has sha256 {hash}, not {want}: review it again with `rectify jobs show {id}`"
    )]
    PlanHashMismatch {
        id: String,
        hash: String,
        want: String,
    },
    #[error(
        "job {id}'s stored plan does not hash to its stored plan hash ({stored}; the plan hashes to {computed}): the job was changed outside rectify, so what `rectify jobs show {id}` prints is not what would be approved; nothing is approved (`rectify jobs retry {id}` plans it again)"
    )]
    PlanTampered {
        id: String,
        stored: String,
        computed: String,
    },
    #[error("job {id} changed while it was being {verb}: look again")]
    Changed { id: String, verb: &'static str },
    #[error(
        "job {id} is {status}: only jobs that ended without an effect (planned, needs-parameter, failed, off), and approved jobs, run again"
    )]
    NotRerunnable { id: String, status: &'static str },
    #[error(
        "job {id} is the undo of job {of}: it is not run again as a remediation (that would apply the fix it undid); `rectify jobs undo {of}` tries the undo again"
    )]
    UndoNotRerun { id: String, of: String },
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    State(#[from] StateError),
}

impl JobError {
    /// Whether the operator's request is at fault (exit code 2), not AWS or the state store.
    pub fn is_usage(&self) -> bool {
        match self {
            JobError::Queue(q) => q.is_usage(),
            // A check of the stored job that failed: not the operator's input.
            JobError::Cloud(_) | JobError::State(_) | JobError::PlanTampered { .. } => false,
            _ => true,
        }
    }
}

/// The worker's control queue, to which operators' commands send control messages (the event
/// queue refuses them); its URL is looked up when the first message is sent and kept, so
/// building one costs nothing.
#[derive(Debug, Clone)]
pub struct ControlQueue {
    sqs: aws_sdk_sqs::Client,
    name: String,
    url: OnceCell<String>,
}

impl ControlQueue {
    /// The queue named `name` (see [`crate::state::Names::control`]).
    pub fn new(sqs: aws_sdk_sqs::Client, name: impl Into<String>) -> ControlQueue {
        ControlQueue {
            sqs,
            name: name.into(),
            url: OnceCell::new(),
        }
    }

    /// Queues a control message that makes the worker run a job again through every gate.
    pub async fn run_job(&self, id: &str) -> Result<(), JobError> {
        let url = self
            .url
            .get_or_try_init(|| queue_url(&self.sqs, &self.name))
            .await?;
        let body = Control::RunJob {
            job_id: id.to_string(),
        }
        .body();
        self.sqs
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .map_err(|e| classify("sqs:SendMessage", e))?;
        Ok(())
    }
}

/// The job `id`, read consistently; an error naming it when there is none.
pub async fn find(store: &Store, id: &str) -> Result<Job, JobError> {
    store
        .job(id)
        .await?
        .ok_or_else(|| JobError::NotFound(id.to_string()))
}

/// Which jobs a bulk command acts on: every filter given must match (none given: every job).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub status: Option<JobStatus>,
    pub remediation: Option<String>,
    pub account: Option<String>,
}

impl Filter {
    /// Whether no filter is given.
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.remediation.is_none() && self.account.is_none()
    }

    /// Whether `job` passes every filter given.
    pub fn matches(&self, job: &Job) -> bool {
        self.status.is_none_or(|s| job.status == s)
            && self
                .remediation
                .as_deref()
                .is_none_or(|r| job.remediation == r)
            && self.account.as_deref().is_none_or(|a| job.account == a)
    }
}

/// Whether an answer to a yes/no question asked on a terminal means yes (`y` or `yes`, in any
/// case); anything else, an empty line included, means no.
pub fn confirmed(answer: &str) -> bool {
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(status: JobStatus, remediation: &str, account: &str) -> Job {
        Job {
            remediation: remediation.into(),
            account: account.into(),
            ..Job::sample(status)
        }
    }

    #[test]
    fn a_filter_matches_only_when_every_given_part_matches() {
        let j = job(
            JobStatus::PendingApproval,
            "s3-block-public-access",
            "111122223333",
        );
        assert!(Filter::default().is_empty());
        assert!(Filter::default().matches(&j));
        let f = Filter {
            status: Some(JobStatus::PendingApproval),
            remediation: Some("s3-block-public-access".into()),
            account: Some("111122223333".into()),
        };
        assert!(!f.is_empty());
        assert!(f.matches(&j));
        let other_account = Filter {
            account: Some("444455556666".into()),
            ..f.clone()
        };
        assert!(!other_account.matches(&j));
        let other_status = Filter {
            status: Some(JobStatus::Planned),
            ..f.clone()
        };
        assert!(!other_status.matches(&j));
        let other_remediation = Filter {
            remediation: Some("sg-revoke-open-ssh".into()),
            ..f
        };
        assert!(!other_remediation.matches(&j));
    }

    #[test]
    fn only_y_or_yes_confirms() {
        for yes in ["y", "Y", "yes", "YES\n", " y \n"] {
            assert!(confirmed(yes), "{yes:?}");
        }
        for no in ["", "\n", "n", "no", "yep", "sure", "y es"] {
            assert!(!confirmed(no), "{no:?}");
        }
    }
}
