//! Writing a job's outcome back to the Security Hub finding that started it, so the console
//! shows what rectify did: a plan waiting for a person is `NOTIFIED`, a verified fix
//! `RESOLVED`, and a job that could not fix it leaves a note and the finding's status alone.
//!
//! ASFF findings (Security Hub CSPM) are updated with BatchUpdateFindings (`Workflow`, `Note`
//! with `UpdatedBy` = `rectify`); OCSF findings (Security Hub) with BatchUpdateFindingsV2
//! (`StatusId`, `Comment`). Both go through rectify's own credentials in the region whose
//! Security Hub delivered the finding (a member region, or the aggregation region). A write
//! that fails never fails or repeats the fix: the caller logs it, counts it and tries once more
//! on the finding's next delivery.

use aws_sdk_securityhub::types::{
    AwsSecurityFindingIdentifier, NoteUpdate, OcsfFindingIdentifier, WorkflowStatus, WorkflowUpdate,
};

use crate::cloud::{Cloud, CloudError, classify};
use crate::event::{HubFinding, HubFormat, NOTE_BY, NOTE_PREFIX};
use crate::state::{Job, JobStatus};

/// The longest note or comment Security Hub takes.
pub const MAX_NOTE: usize = 512;

/// What happens to a finding's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A person is told: the plan waits for them (or was recorded in dry-run).
    Notified,
    /// Fixed and verified.
    Resolved,
    /// Only the note changes.
    Unchanged,
}

/// The update a job's outcome makes to its finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    pub status: Status,
    /// At most [`MAX_NOTE`] characters.
    pub note: String,
}

impl Status {
    /// The ASFF workflow status.
    fn workflow(self) -> Option<WorkflowStatus> {
        match self {
            Status::Notified => Some(WorkflowStatus::Notified),
            Status::Resolved => Some(WorkflowStatus::Resolved),
            Status::Unchanged => None,
        }
    }

    /// The OCSF `status_id`: 2 (in progress) for a finding a person has been told of, 4
    /// (resolved).
    fn status_id(self) -> Option<i32> {
        match self {
            Status::Notified => Some(2),
            Status::Resolved => Some(4),
            Status::Unchanged => None,
        }
    }
}

/// The update a job's outcome calls for, or `None` when its finding is left as it is (a job
/// that found nothing to do, was cancelled, or is off).
pub fn update_for(job: &Job) -> Option<Update> {
    let id = &job.id;
    let plan = plan_summary(job);
    let (status, text) = match job.status {
        JobStatus::PendingApproval => (
            Status::Notified,
            format!(
                "{NOTE_PREFIX}{id} ({}, approval): waits for approval. Plan: {plan}. Act: rectify jobs show {id}; rectify jobs approve {id}",
                job.remediation
            ),
        ),
        JobStatus::Planned => (
            Status::Notified,
            format!(
                "{NOTE_PREFIX}{id} ({}, dry-run): would perform {plan}. Act: rectify settings set {} --mode approval; rectify jobs retry {id}",
                job.remediation, job.remediation
            ),
        ),
        JobStatus::Applied => {
            let by = job.approved_by.as_deref().map_or_else(
                || "enforce mode".to_string(),
                |b| format!("approved by {b}"),
            );
            (
                Status::Resolved,
                format!(
                    "{NOTE_PREFIX}{id} ({}) fixed and verified it ({by}): {plan}. Undo: rectify jobs undo {id}",
                    job.remediation
                ),
            )
        }
        JobStatus::Failed
        | JobStatus::FailedVerify
        | JobStatus::Exempt
        | JobStatus::NeedsParameter => (
            Status::Unchanged,
            format!(
                "{NOTE_PREFIX}{id} ({}) is {}: {}. See: rectify jobs show {id}",
                job.remediation,
                job.status.as_str(),
                job.reason.as_deref().unwrap_or("no reason recorded")
            ),
        ),
        _ => return None,
    };
    Some(Update {
        status,
        note: clip(&text, MAX_NOTE),
    })
}

/// The plan's actions in one line.
fn plan_summary(job: &Job) -> String {
    match &job.plan {
        Some(p) if !p.actions.is_empty() => p
            .actions
            .iter()
            .map(crate::action::Action::summary)
            .collect::<Vec<_>>()
            .join("; "),
        _ => "no action".into(),
    }
}

/// `text` cut to at most `max` characters, at a word where there is one, ending in `…`.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let head: String = text.chars().take(max - 1).collect();
    let cut = head
        .rfind(' ')
        .filter(|&i| i > max / 2)
        .unwrap_or(head.len());
    format!("{}…", &head[..cut])
}

/// Writes `update` to the finding `hub` of account `account`.
pub async fn write(
    cloud: &Cloud,
    account: &str,
    hub: &HubFinding,
    update: &Update,
) -> Result<(), CloudError> {
    let client = cloud
        .home_clients(&hub.region)
        .await
        .get(aws_sdk_securityhub::Client::new);
    let unprocessed: Vec<String> = match hub.format {
        HubFormat::Asff => {
            let id = AwsSecurityFindingIdentifier::builder()
                .id(&hub.id)
                .product_arn(&hub.product)
                .build();
            let note = NoteUpdate::builder()
                .text(&update.note)
                .updated_by(NOTE_BY)
                .build();
            let out = client
                .batch_update_findings()
                .finding_identifiers(id)
                .note(note)
                .set_workflow(
                    update
                        .status
                        .workflow()
                        .map(|s| WorkflowUpdate::builder().status(s).build()),
                )
                .send()
                .await
                .map_err(|e| classify("securityhub:BatchUpdateFindings", e))?;
            out.unprocessed_findings()
                .iter()
                .map(|u| refusal(u.error_code(), u.error_message()))
                .collect()
        }
        HubFormat::Ocsf => {
            let id = OcsfFindingIdentifier::builder()
                .cloud_account_uid(account)
                .finding_info_uid(&hub.id)
                .metadata_product_uid(&hub.product)
                .build();
            let out = client
                .batch_update_findings_v2()
                .finding_identifiers(id)
                .comment(&update.note)
                .set_status_id(update.status.status_id())
                .send()
                .await
                .map_err(|e| classify("securityhub:BatchUpdateFindingsV2", e))?;
            out.unprocessed_findings()
                .iter()
                .map(|u| refusal(u.error_code().map(aws_sdk_securityhub::types::BatchUpdateFindingsV2UnprocessedFindingErrorCode::as_str), u.error_message()))
                .collect()
        }
    };
    if unprocessed.is_empty() {
        Ok(())
    } else {
        Err(CloudError::Unsupported(format!(
            "Security Hub did not update finding {}: {}",
            hub.id,
            unprocessed.join("; ")
        )))
    }
}

/// How Security Hub said it left one finding unprocessed.
fn refusal(code: Option<&str>, message: Option<&str>) -> String {
    format!("{}: {}", code.unwrap_or("?"), message.unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{Action, Plan};
    use crate::catalog::Mode;

    fn job(status: JobStatus) -> Job {
        let finding = crate::event::Finding {
            source: crate::event::Source::SecurityHub,
            event_id: None,
            account: "111122223333".into(),
            region: "us-east-1".into(),
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
        job.status = status;
        job.plan = Some(Plan {
            actions: vec![Action::RevokeSecurityGroupIngress {
                group_id: "sg-0123456789abcdef0".into(),
                rule_id: "sgr-0123456789abcdef0".into(),
            }],
            ..Default::default()
        });
        job
    }

    #[test]
    fn a_plan_waiting_for_a_person_notifies_with_the_command_to_act() {
        let j = job(JobStatus::PendingApproval);
        let u = update_for(&j).unwrap();
        assert_eq!(u.status, Status::Notified);
        assert!(
            u.note.contains(&format!("rectify jobs approve {}", j.id)),
            "{}",
            u.note
        );
        assert!(
            u.note.contains("revoke ingress rule sgr-0123456789abcdef0"),
            "{}",
            u.note
        );
        let u = update_for(&job(JobStatus::Planned)).unwrap();
        assert_eq!(u.status, Status::Notified);
        assert!(u.note.contains("dry-run): would perform"), "{}", u.note);
    }

    #[test]
    fn only_a_verified_fix_resolves_and_it_names_who_approved() {
        let mut j = job(JobStatus::Applied);
        j.approved_by = Some("arn:aws:iam::111122223333:user/alice".into());
        let u = update_for(&j).unwrap();
        assert_eq!(u.status, Status::Resolved);
        assert!(
            u.note
                .contains("approved by arn:aws:iam::111122223333:user/alice")
        );
        for s in [
            JobStatus::Failed,
            JobStatus::FailedVerify,
            JobStatus::Exempt,
            JobStatus::NeedsParameter,
        ] {
            let mut j = job(s);
            j.reason = Some("why".into());
            let u = update_for(&j).unwrap();
            assert_eq!(u.status, Status::Unchanged, "{s:?}");
            assert!(
                u.note.contains(s.as_str()) && u.note.contains("why"),
                "{}",
                u.note
            );
        }
        for s in [JobStatus::NoOp, JobStatus::Cancelled, JobStatus::Off] {
            assert_eq!(update_for(&job(s)), None, "{s:?}");
        }
    }

    #[test]
    fn notes_fit_security_hub_and_are_cut_at_a_word() {
        let mut j = job(JobStatus::Failed);
        j.reason = Some("word ".repeat(200));
        let note = update_for(&j).unwrap().note;
        assert!(note.chars().count() <= MAX_NOTE);
        assert!(note.ends_with("word…"), "{note}");
        assert_eq!(clip("short", 10), "short");
    }
}
