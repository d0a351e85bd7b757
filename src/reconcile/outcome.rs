//! How a job ended, and why, in one place: every status a job can end in and the sentence an
//! operator reads beside it are written here and nowhere else.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::state::JobStatus;

/// Why a job ended where it did. Each variant maps to one [`JobStatus`] and one reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The account is not on the allow-list.
    AccountNotAllowed { account: String },
    /// The allow-list is `organization` and the Organization's accounts cannot be listed.
    AccountsUnreadable { error: String },
    /// The remediation is off (for this account or everywhere).
    Off,
    /// An exemption record holds for the resource.
    ExemptRecord {
        by: String,
        until: Option<String>,
        reason: String,
    },
    /// Required parameters have no value.
    NeedsParameter {
        remediation: String,
        missing: Vec<String>,
        /// Why the fix needs them, when only some resources do (the script's reason).
        because: Option<String>,
    },
    /// A stored parameter breaks the manifest's rules (an unknown name, a value of the wrong
    /// type or out of bounds): the script is not run.
    InvalidParameter {
        remediation: String,
        name: String,
        error: String,
    },
    /// The resource does not exist (any more).
    Gone { resource: String },
    /// The resource could not be read.
    ObserveFailed { error: String },
    /// The resource carries a `rectify:exempt` tag that holds today.
    ExemptTag { reason: String },
    /// The script failed or planned something its manifest does not allow.
    ScriptFailed { error: String },
    /// The plan is empty: compliant, or the script chose not to act (with its reason).
    NoOp { reason: Option<String> },
    /// The resource needs another plan than the one approved.
    ChangedSinceApproval {
        approved_by: Option<String>,
        approved_hash: Option<String>,
        hash: String,
    },
    /// The approval a plan was about to run under is not on the audit trail as the job says
    /// (`why`): nothing is changed, and the plan waits for an approval again.
    ApprovalNotOnRecord {
        approved_by: Option<String>,
        job_id: String,
        why: String,
    },
    /// An approval older than the approval TTL: the plan is not executed.
    ApprovalExpired {
        approved_by: Option<String>,
        approved_at: Option<String>,
        ttl_seconds: u64,
        job_id: String,
    },
    /// Dry-run: the plan is recorded. `capped`: why the mode in force was lowered to dry-run
    /// for this plan (the manifest's `max_mode`).
    Planned { capped: Option<String> },
    /// Approval mode: the plan waits for an operator. `capped`: why the mode in force was
    /// lowered to approval for this plan (the manifest's `max_mode`).
    AwaitingApproval { capped: Option<String> },
    /// The kill switch is on; an approved plan stays approved.
    Paused {
        by: String,
        why: String,
        approved: bool,
        job_id: String,
    },
    /// An action's inverse cannot be computed: nothing is applied that cannot be undone.
    Refused { error: String },
    /// The blast-radius breaker holds the plan for approval.
    BreakerTripped {
        count: usize,
        limit: u32,
        window: u64,
    },
    /// The breaker's state cannot be read or written.
    BreakerUnreadable { error: String },
    /// The resource cannot be changed in its present state (an RDS instance that is not
    /// `available`): nothing was applied, and the finding is retried later. An approved plan
    /// stays approved, so the retry runs it.
    NotReady { reason: String, approved: bool },
    /// An action failed after `done` of `total` were applied.
    ApplyFailed {
        kind: String,
        done: usize,
        total: usize,
        error: String,
    },
    /// The hold on the resource and the job ran out (a renewal was refused, or none landed
    /// within a lease) after `done` of `total` actions: nothing more was applied.
    HoldLost { done: usize, total: usize },
    /// Applied, and the re-read resource plans empty.
    Applied { actions: usize },
    /// The resource could not be read back after the fix.
    VerifyReadFailed { error: String },
    /// Re-planning after the fix failed.
    VerifyPlanFailed { error: String },
    /// Re-planning after the fix still wants these actions.
    DidNotHold { still: Vec<String> },
}

impl Outcome {
    /// The job status this outcome ends in.
    pub fn status(&self) -> JobStatus {
        match self {
            Outcome::AccountNotAllowed { .. } => JobStatus::AccountNotAllowed,
            Outcome::Off => JobStatus::Off,
            Outcome::ExemptRecord { .. } | Outcome::ExemptTag { .. } => JobStatus::Exempt,
            Outcome::NeedsParameter { .. } | Outcome::InvalidParameter { .. } => {
                JobStatus::NeedsParameter
            }
            Outcome::Gone { .. } | Outcome::NoOp { .. } => JobStatus::NoOp,
            Outcome::ObserveFailed { .. }
            | Outcome::ScriptFailed { .. }
            | Outcome::Refused { .. }
            | Outcome::BreakerUnreadable { .. }
            | Outcome::AccountsUnreadable { .. }
            | Outcome::NotReady {
                approved: false, ..
            }
            | Outcome::ApplyFailed { .. }
            | Outcome::HoldLost { .. } => JobStatus::Failed,
            Outcome::NotReady { approved: true, .. } => JobStatus::Approved,
            Outcome::ChangedSinceApproval { .. }
            | Outcome::ApprovalNotOnRecord { .. }
            | Outcome::AwaitingApproval { .. }
            | Outcome::BreakerTripped { .. } => JobStatus::PendingApproval,
            Outcome::ApprovalExpired { .. } => JobStatus::ApprovalExpired,
            Outcome::Planned { .. } => JobStatus::Planned,
            Outcome::Paused { approved: true, .. } => JobStatus::Approved,
            Outcome::Paused {
                approved: false, ..
            } => JobStatus::Planned,
            Outcome::Applied { .. } => JobStatus::Applied,
            Outcome::VerifyReadFailed { .. }
            | Outcome::VerifyPlanFailed { .. }
            | Outcome::DidNotHold { .. } => JobStatus::FailedVerify,
        }
    }

    /// The reason an operator reads beside the status.
    pub fn reason(&self) -> String {
        match self {
            Outcome::AccountNotAllowed { account } => {
                format!("account {account} is not in the allow-list")
            }
            Outcome::AccountsUnreadable { error } => format!(
                "the allow-list is `organization` and the Organization's accounts cannot be listed: {error}"
            ),
            Outcome::Off => "the remediation is off".into(),
            Outcome::ExemptRecord { by, until, reason } => {
                let until = until
                    .as_deref()
                    .map(|u| format!(" until {u}"))
                    .unwrap_or_default();
                format!("exempted by {by}{until}: {reason}")
            }
            Outcome::NeedsParameter {
                remediation,
                missing,
                because,
            } => {
                let sets: Vec<String> = missing
                    .iter()
                    .map(|m| format!("--param {m}=VALUE"))
                    .collect();
                let because = because
                    .as_deref()
                    .map(|b| format!(" ({b})"))
                    .unwrap_or_default();
                format!(
                    "parameter {} has no value{because}: set it with `rectify settings set {remediation} {}`",
                    missing.join(", "),
                    sets.join(" ")
                )
            }
            Outcome::InvalidParameter {
                remediation,
                name,
                error,
            } => format!(
                "parameter {error}; nothing was read or changed: set it with `rectify settings set {remediation} --param {name}=VALUE` (or remove it with `--param {name}=`)"
            ),
            Outcome::Gone { resource } => format!("{resource} does not exist: nothing to fix"),
            Outcome::ObserveFailed { error } => format!("observing the resource failed: {error}"),
            Outcome::ExemptTag { reason } => format!("tagged rectify:exempt: {reason}"),
            Outcome::ScriptFailed { error } => format!("the script failed: {error}"),
            Outcome::NoOp { reason } => {
                reason.clone().unwrap_or_else(|| "already compliant".into())
            }
            Outcome::ChangedSinceApproval {
                approved_by,
                approved_hash,
                hash,
            } => format!(
                "changed since approval: {} approved plan {}, the resource now needs plan {}; approve again",
                approved_by.as_deref().unwrap_or("someone"),
                approved_hash
                    .as_deref()
                    .map_or("?", |h| &h[..12.min(h.len())]),
                &hash[..12.min(hash.len())]
            ),
            Outcome::ApprovalNotOnRecord {
                approved_by,
                job_id,
                why,
            } => format!(
                "approval by {} not on the record: {why}; nothing was changed, and the plan waits for an approval again (`rectify jobs approve {job_id}`)",
                approved_by.as_deref().unwrap_or("someone"),
            ),
            Outcome::ApprovalExpired {
                approved_by,
                approved_at,
                ttl_seconds,
                job_id,
            } => format!(
                "approval expired: approved by {} at {} but not executed within the approval TTL of {ttl_seconds} s; nothing was changed (`rectify jobs retry {job_id}` plans it again for a new approval)",
                approved_by.as_deref().unwrap_or("someone"),
                approved_at.as_deref().unwrap_or("an unknown time"),
            ),
            Outcome::Planned { capped } => format!(
                "dry-run: rectify would perform the plan recorded; nothing was changed{}",
                in_parens(capped)
            ),
            Outcome::AwaitingApproval { capped } => {
                format!("waiting for an operator's approval{}", in_parens(capped))
            }
            Outcome::Paused {
                by,
                why,
                approved: true,
                job_id,
            } => format!(
                "paused by {by} ({why}): the approved plan runs after `rectify resume` and `rectify jobs retry {job_id}`"
            ),
            Outcome::Paused { by, why, .. } => {
                format!("paused by {by} ({why}): the plan is recorded and nothing was changed")
            }
            Outcome::Refused { error } => format!("refused: {error}"),
            Outcome::NotReady {
                reason,
                approved: false,
            } => reason.clone(),
            Outcome::NotReady {
                reason,
                approved: true,
            } => format!("{reason}; the plan stays approved"),
            Outcome::BreakerTripped {
                count,
                limit,
                window,
            } => format!(
                "blast-radius breaker: {count} enforcements in {window} s reached the limit of {limit}; held for approval"
            ),
            Outcome::BreakerUnreadable { error } => {
                format!("the breaker cannot be read: {error}")
            }
            Outcome::ApplyFailed {
                kind,
                done,
                total,
                error,
            } => format!("{kind} failed after {done} of {total} actions were applied: {error}"),
            Outcome::HoldLost { done, total } => format!(
                "the hold on the resource and the job ran out after {done} of {total} actions were applied: nothing more is applied under it"
            ),
            Outcome::Applied { actions } => {
                format!("{actions} action(s) applied and verified")
            }
            Outcome::VerifyReadFailed { error } => {
                format!("the resource could not be read back: {error}")
            }
            Outcome::VerifyPlanFailed { error } => {
                format!("re-planning after the fix failed: {error}")
            }
            Outcome::DidNotHold { still } => format!(
                "the fix did not hold: re-planning still wants {}",
                still.join("; ")
            ),
        }
    }

    /// Whether a gate ends the job here before anything would change (`off`, `exempt`,
    /// `account-not-allowed`, `needs-parameter`): a sweep reports these as held back.
    pub fn holds_back(&self) -> bool {
        matches!(
            self,
            Outcome::AccountNotAllowed { .. }
                | Outcome::Off
                | Outcome::ExemptRecord { .. }
                | Outcome::ExemptTag { .. }
                | Outcome::NeedsParameter { .. }
                | Outcome::InvalidParameter { .. }
        )
    }
}

/// ` (why)`, or nothing.
fn in_parens(why: &Option<String>) -> String {
    why.as_deref()
        .map(|w| format!(" ({w})"))
        .unwrap_or_default()
}

/// Jobs a worker ended, by what they ask of a person: applied, planned (dry-run), held for a
/// person (an approval, an exemption, a missing parameter), failed.
#[derive(Debug, Default)]
pub struct JobTally {
    pub applied: AtomicU64,
    pub planned: AtomicU64,
    pub held: AtomicU64,
    pub failed: AtomicU64,
}

impl JobTally {
    /// Counts one job that ended with `status`.
    pub fn count(&self, status: JobStatus) {
        let counter = match status {
            JobStatus::Applied => &self.applied,
            JobStatus::Planned => &self.planned,
            JobStatus::PendingApproval | JobStatus::Exempt | JobStatus::NeedsParameter => {
                &self.held
            }
            JobStatus::Failed | JobStatus::FailedVerify => &self.failed,
            _ => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_has_its_status_and_reason() {
        let cases = [
            (
                Outcome::AccountNotAllowed {
                    account: "111122223333".into(),
                },
                JobStatus::AccountNotAllowed,
                "account 111122223333 is not in the allow-list",
            ),
            (Outcome::Off, JobStatus::Off, "the remediation is off"),
            (
                Outcome::NeedsParameter {
                    remediation: "vpce-restrict-policy".into(),
                    missing: vec!["organization_id".into()],
                    because: None,
                },
                JobStatus::NeedsParameter,
                "parameter organization_id has no value: set it with `rectify settings set vpce-restrict-policy --param organization_id=VALUE`",
            ),
            (
                Outcome::InvalidParameter {
                    remediation: "sg-revoke-open-ssh".into(),
                    name: "port".into(),
                    error: "port = -5 is refused: port must be an integer from 1 to 65535".into(),
                },
                JobStatus::NeedsParameter,
                "parameter port = -5 is refused: port must be an integer from 1 to 65535; nothing was read or changed: set it with `rectify settings set sg-revoke-open-ssh --param port=VALUE` (or remove it with `--param port=`)",
            ),
            (
                Outcome::ApprovalExpired {
                    approved_by: Some("alice".into()),
                    approved_at: Some("2026-01-01T00:00:00.000Z".into()),
                    ttl_seconds: 86400,
                    job_id: "j1".into(),
                },
                JobStatus::ApprovalExpired,
                "approval expired: approved by alice at 2026-01-01T00:00:00.000Z but not executed within the approval TTL of 86400 s; nothing was changed (`rectify jobs retry j1` plans it again for a new approval)",
            ),
            (
                Outcome::NoOp { reason: None },
                JobStatus::NoOp,
                "already compliant",
            ),
            (
                Outcome::Paused {
                    by: "ops".into(),
                    why: "incident".into(),
                    approved: true,
                    job_id: "j1".into(),
                },
                JobStatus::Approved,
                "paused by ops (incident): the approved plan runs after `rectify resume` and `rectify jobs retry j1`",
            ),
            (
                Outcome::BreakerTripped {
                    count: 21,
                    limit: 20,
                    window: 3600,
                },
                JobStatus::PendingApproval,
                "blast-radius breaker: 21 enforcements in 3600 s reached the limit of 20; held for approval",
            ),
            (
                Outcome::NotReady {
                    reason: "db instance db1 is `stopped`, not `available`".into(),
                    approved: false,
                },
                JobStatus::Failed,
                "db instance db1 is `stopped`, not `available`",
            ),
            (
                Outcome::NotReady {
                    reason: "db instance db1 is `stopped`, not `available`".into(),
                    approved: true,
                },
                JobStatus::Approved,
                "db instance db1 is `stopped`, not `available`; the plan stays approved",
            ),
            (
                Outcome::Applied { actions: 2 },
                JobStatus::Applied,
                "2 action(s) applied and verified",
            ),
            (
                Outcome::Planned { capped: None },
                JobStatus::Planned,
                "dry-run: rectify would perform the plan recorded; nothing was changed",
            ),
        ];
        for (outcome, status, reason) in cases {
            assert_eq!(outcome.status(), status, "{outcome:?}");
            assert_eq!(outcome.reason(), reason, "{outcome:?}");
        }
    }

    #[test]
    fn short_hashes_never_panic() {
        let o = Outcome::ChangedSinceApproval {
            approved_by: None,
            approved_hash: Some("abc".into()),
            hash: "0123456789abcdef".into(),
        };
        assert_eq!(
            o.reason(),
            "changed since approval: someone approved plan abc, the resource now needs plan 0123456789ab; approve again"
        );
    }

    #[test]
    fn only_gates_before_a_change_count_as_held_back() {
        assert!(Outcome::Off.holds_back());
        assert!(Outcome::ExemptTag { reason: "x".into() }.holds_back());
        assert!(!Outcome::Planned { capped: None }.holds_back());
        assert!(!Outcome::NoOp { reason: None }.holds_back());
        assert!(!Outcome::ObserveFailed { error: "x".into() }.holds_back());
    }
}
