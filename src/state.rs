//! State in DynamoDB: settings (modes, parameters, triggers), jobs (claim, status, plan) and the
//! queue and table names every command shares.
//!
//! Every read that gates a change fails closed: when the settings or a job cannot be read, the
//! caller gets an error and changes nothing. A job is claimed with a conditional write keyed on
//! the finding, so repeated and concurrent deliveries of one finding run it once; the claim is a
//! lease that expires with the message's visibility, so a crashed worker's job is reclaimed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use chrono::Utc;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::action::{Action, Plan};
use crate::catalog::{Mode, Remediation};
use crate::clock::now_text;
use crate::cloud::{CloudError, classify};

mod breaker;
mod txn;
use breaker::BREAKER;
pub use breaker::{Breaker, BreakerLimit, Reservation};
pub use txn::{AuditPuts, Finished, JobWrite, LockedClaim, Recorded};

/// The names of the queues, DLQ and tables for one prefix.
#[derive(Debug, Clone)]
pub struct Names {
    /// The event queue: findings from EventBridge.
    pub queue: String,
    /// The control queue: approvals and retries from operators' commands.
    pub control: String,
    pub dlq: String,
    pub settings: String,
    pub jobs: String,
    pub audit: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        Names {
            queue: format!("{prefix}-events"),
            control: format!("{prefix}-control"),
            dlq: format!("{prefix}-events-dlq"),
            settings: format!("{prefix}-settings"),
            jobs: format!("{prefix}-jobs"),
            audit: format!("{prefix}-audit"),
        }
    }
}

/// A state read or write that did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("state store: {0}")]
    Store(#[from] CloudError),
    #[error("job {0}: another worker took over its lease")]
    LeaseLost(String),
    #[error("{0} was changed by someone else meanwhile; read it again and retry")]
    Conflict(String),
    #[error("state store holds an unreadable item: {0}")]
    Corrupt(String),
}

impl StateError {
    /// Whether the work that needed the state should be retried later. A store that cannot be
    /// reached is always worth retrying: the work is not lost, only delayed.
    pub fn retryable(&self) -> bool {
        match self {
            StateError::Store(e) => !matches!(e, CloudError::NotFound { .. }),
            StateError::LeaseLost(_) | StateError::Conflict(_) => true,
            StateError::Corrupt(_) => false,
        }
    }
}

/// The status of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    InProgress,
    Planned,
    PendingApproval,
    Approved,
    Applied,
    NoOp,
    Failed,
    FailedVerify,
    NeedsParameter,
    Rejected,
    Expired,
    ApprovalExpired,
    Cancelled,
    Exempt,
    AccountNotAllowed,
    Off,
    Undone,
}

impl JobStatus {
    pub const ALL: &[JobStatus] = &[
        JobStatus::InProgress,
        JobStatus::Planned,
        JobStatus::PendingApproval,
        JobStatus::Approved,
        JobStatus::Applied,
        JobStatus::NoOp,
        JobStatus::Failed,
        JobStatus::FailedVerify,
        JobStatus::NeedsParameter,
        JobStatus::Rejected,
        JobStatus::Expired,
        JobStatus::ApprovalExpired,
        JobStatus::Cancelled,
        JobStatus::Exempt,
        JobStatus::AccountNotAllowed,
        JobStatus::Off,
        JobStatus::Undone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::InProgress => "in-progress",
            JobStatus::Planned => "planned",
            JobStatus::PendingApproval => "pending-approval",
            JobStatus::Approved => "approved",
            JobStatus::Applied => "applied",
            JobStatus::NoOp => "no-op",
            JobStatus::Failed => "failed",
            JobStatus::FailedVerify => "failed-verify",
            JobStatus::NeedsParameter => "needs-parameter",
            JobStatus::Rejected => "rejected",
            JobStatus::Expired => "expired",
            JobStatus::ApprovalExpired => "approval-expired",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Exempt => "exempt",
            JobStatus::AccountNotAllowed => "account-not-allowed",
            JobStatus::Off => "off",
            JobStatus::Undone => "undone",
        }
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.iter().copied().find(|j| j.as_str() == s)
    }

    /// A job that ended without an effect runs again when its finding is delivered again (or
    /// on `jobs retry`), so that a change of mode, parameters, exemptions or allow-list takes
    /// effect.
    pub fn reruns_on_delivery(self) -> bool {
        matches!(
            self,
            JobStatus::Planned
                | JobStatus::NeedsParameter
                | JobStatus::Failed
                | JobStatus::Off
                | JobStatus::Expired
                | JobStatus::ApprovalExpired
                | JobStatus::Cancelled
                | JobStatus::Exempt
                | JobStatus::AccountNotAllowed
        )
    }

    /// Whether a worker may claim a job in this status: one that reruns, or an approved one
    /// waiting to be executed.
    pub fn claimable(self) -> bool {
        self.reruns_on_delivery() || self == JobStatus::Approved
    }
}

/// One finding handled by one remediation.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: String,
    pub remediation: String,
    pub account: String,
    pub region: String,
    pub resource_type: String,
    pub resource_id: String,
    pub rule: String,
    pub source: String,
    pub event_id: Option<String>,
    pub observation: String,
    pub status: JobStatus,
    pub mode: Mode,
    pub reason: Option<String>,
    pub plan: Option<Plan>,
    pub plan_hash: Option<String>,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// The actions that undo what was applied, in the order to apply them.
    pub inverse: Option<Vec<Action>>,
    /// What the job's actions created, by the id AWS gave each (the inverse deletes exactly it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<crate::action::Created>,
    pub script_sha256: Option<String>,
    /// Who approved the plan, when, with which hash and why (approval mode).
    pub approved_by: Option<String>,
    pub approved_at: Option<String>,
    pub approved_plan_hash: Option<String>,
    pub approval_reason: Option<String>,
    /// The approval's audit record (its id: a command's chain and a sequence number): the
    /// worker applies an approved plan only when that record is there, whole, and says what the
    /// job says.
    pub approved_in: Option<String>,
    /// Who last asked for the job to run again (`jobs retry`), as an AWS identity: with
    /// approver-must-differ on, that identity may not approve its plan.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    pub attempts: u32,
    /// The Security Hub finding that started the job, which its outcome is written back to.
    pub hub: Option<crate::event::HubFinding>,
    /// Writing the outcome back failed: it is tried once more on the finding's next delivery.
    pub hub_retry: bool,
}

#[cfg(test)]
impl Job {
    /// A job for unit tests: an S3 bucket `b` in 111122223333/us-east-1 under
    /// `s3-block-public-access`, in approval mode, with no plan yet.
    pub(crate) fn sample(status: JobStatus) -> Job {
        Job {
            id: "j1".into(),
            remediation: "s3-block-public-access".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            resource_type: "AWS::S3::Bucket".into(),
            resource_id: "b".into(),
            rule: "r".into(),
            source: "config".into(),
            event_id: None,
            observation: "t".into(),
            status,
            mode: crate::catalog::Mode::Approval,
            reason: None,
            plan: None,
            plan_hash: None,
            before: None,
            after: None,
            inverse: None,
            created: Vec::new(),
            script_sha256: None,
            approved_by: None,
            approved_at: None,
            approved_plan_hash: None,
            approval_reason: None,
            approved_in: None,
            requested_by: None,
            created_at: "t".into(),
            updated_at: "t".into(),
            attempts: 1,
            hub: None,
            hub_retry: false,
        }
    }
}

impl Job {
    /// A job id is derived from the finding, so every delivery of one evaluation names one job.
    pub fn id_for(
        account: &str,
        region: &str,
        remediation: &str,
        resource_type: &str,
        resource_id: &str,
        observation: &str,
    ) -> String {
        let key = [
            account,
            region,
            remediation,
            resource_type,
            resource_id,
            observation,
        ]
        .join("\n");
        crate::action::sha256_hex(&key)[..24].to_string()
    }

    /// The id of the undo of job `id`.
    pub fn undo_id(id: &str) -> String {
        format!("{UNDO_PREFIX}{id}")
    }

    /// The job this one undid, when it is an undo (`jobs undo`): such a job applies an
    /// inverse, and is never run again as a remediation.
    pub fn undoes(&self) -> Option<&str> {
        self.id.strip_prefix(UNDO_PREFIX)
    }

    /// Names the resource as its finding did, for the by-resource index (the lock is taken under
    /// the resource's first name, `reconcile::lock_key`).
    pub fn resource_key(&self) -> String {
        resource_key(
            &self.account,
            &self.region,
            &self.resource_type,
            &self.resource_id,
        )
    }
}

/// How the id of an undo job begins (a remediation's job id is a hash of its finding).
const UNDO_PREFIX: &str = "undo-";

/// `account|region|type|id`: one resource.
pub fn resource_key(account: &str, region: &str, resource_type: &str, resource_id: &str) -> String {
    [account, region, resource_type, resource_id].join("|")
}

/// The jobs table's index of jobs by resource.
pub const BY_RESOURCE_INDEX: &str = "by-resource";

/// The result of trying to claim a job.
#[derive(Debug, Clone)]
pub enum Claim {
    /// This worker holds the job's lease now; the job as it was before, if it existed.
    Won(Option<Box<Job>>),
    /// The job already ended (or waits for an approval); the delivery is a duplicate.
    Done(Box<Job>),
    /// Another worker holds a live lease on it.
    Busy,
}

/// Mode, parameters and triggers set by operators for one remediation, globally (`scope` `*`)
/// or for one account.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Setting {
    pub remediation: String,
    pub scope: String,
    pub mode: Option<Mode>,
    pub params: serde_json::Map<String, Value>,
    pub triggers: Vec<String>,
    /// Whether a `rectify:exempt` tag on a resource exempts it, when tag exemptions are on for
    /// the Organization (default yes there).
    pub tag_exemptions: Option<bool>,
    /// Whether jobs write their outcome back to the Security Hub finding that started them
    /// (default yes).
    pub securityhub_updates: Option<bool>,
    /// At most this many enforcements in `breaker_window_seconds` before the breaker trips.
    pub breaker_limit: Option<u32>,
    pub breaker_window_seconds: Option<u64>,
    pub updated_by: Option<String>,
    pub updated_at: Option<String>,
    pub version: u64,
}

/// Settings for the whole Organization: the account allow-list, the pause switch and whether
/// resource owners may exempt their resources with a tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Global {
    /// The accounts rectify acts in; empty means none (the allow-list fails closed).
    pub accounts: Vec<String>,
    /// The allow-list is `organization`: every ACTIVE account AWS Organizations lists, instead
    /// of `accounts`.
    pub organization: bool,
    /// In `organization` mode, the Organization's accounts left out of the allow-list
    /// (`settings accounts remove`); sorted.
    pub left_out: Vec<String>,
    /// Whether `rectify:exempt` tags count at all (default no).
    pub tag_exemptions: bool,
    /// How many days ahead a tag's `until=` may lie and still count
    /// ([`DEFAULT_TAG_EXEMPTION_MAX_DAYS`] when not set).
    pub tag_exemption_max_days: Option<u32>,
    pub paused: bool,
    pub pause_reason: Option<String>,
    /// The Security Hub administrator account, whose bus carries member accounts' findings;
    /// Security Hub findings about another account are acted on only when it sent them.
    pub securityhub_admin: Option<String>,
    /// Whether `jobs approve` refuses an approver who is the AWS identity that set the job's
    /// remediation's mode (four eyes; default no).
    pub approver_must_differ: bool,
    pub updated_by: Option<String>,
    pub updated_at: Option<String>,
    pub version: u64,
}

impl Global {
    /// Whether `account` is left out of the allow-list in `organization` mode.
    pub fn leaves_out(&self, account: &str) -> bool {
        self.left_out.iter().any(|a| a == account)
    }

    /// Who paused the Organization and why, for messages ("an operator" and "no reason given"
    /// when the item does not say).
    pub fn pause_by_and_why(&self) -> (String, String) {
        (
            self.updated_by
                .clone()
                .unwrap_or_else(|| "an operator".into()),
            self.pause_reason
                .clone()
                .unwrap_or_else(|| "no reason given".into()),
        )
    }
}

/// An operator's exemption of one resource from one remediation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Exemption {
    pub remediation: String,
    /// An account id, or `*` for any account.
    pub account: String,
    pub resource_id: String,
    pub reason: String,
    pub by: String,
    /// The last day (UTC, `YYYY-MM-DD`) it holds; none means until removed.
    pub until: Option<String>,
    pub created_at: String,
}

impl Exemption {
    /// Whether it holds on `today` (`YYYY-MM-DD`).
    pub fn active(&self, today: &str) -> bool {
        self.until.as_deref().is_none_or(|u| u >= today)
    }

    fn scope(&self) -> String {
        format!("exemption:{}:{}", self.account, self.resource_id)
    }
}

/// The remediation name under which the Organization-wide settings are stored.
const GLOBAL: &str = "_global";
/// The settings table's partition of audit writers' liveness items (see `audit::liveness`).
pub const WRITERS: &str = "_writers";
/// Default blast-radius breaker: enforcements per window, and the window.
pub const DEFAULT_BREAKER_LIMIT: u32 = 20;
pub const DEFAULT_BREAKER_WINDOW_SECONDS: u64 = 3600;
/// Default for how many days ahead a `rectify:exempt` tag's `until=` may lie.
pub const DEFAULT_TAG_EXEMPTION_MAX_DAYS: u32 = 90;

/// All settings at one moment.
#[derive(Debug, Clone, Default)]
pub struct SettingsSnapshot {
    pub settings: Vec<Setting>,
    pub global: Global,
    pub exemptions: Vec<Exemption>,
    /// Operators' trigger mappings, worked out once per snapshot, not once per message.
    triggers: std::sync::OnceLock<BTreeMap<String, Vec<String>>>,
}

impl SettingsSnapshot {
    /// A snapshot of these settings, global item and exemption records.
    pub fn new(settings: Vec<Setting>, global: Global, exemptions: Vec<Exemption>) -> Self {
        SettingsSnapshot {
            settings,
            global,
            exemptions,
            triggers: std::sync::OnceLock::new(),
        }
    }

    fn find(&self, remediation: &str, scope: &str) -> Option<&Setting> {
        self.settings
            .iter()
            .find(|s| s.remediation == remediation && s.scope == scope)
    }

    /// The mode in force: the account's setting, else the global one, else the manifest's.
    /// (A plan may still run lower: see [`Remediation::capped_mode`].)
    pub fn mode_for(&self, r: &Remediation, account: &str) -> Mode {
        self.find(r.name(), account)
            .and_then(|s| s.mode)
            .or_else(|| self.find(r.name(), "*").and_then(|s| s.mode))
            .unwrap_or(r.manifest.default_mode)
    }

    /// Parameters: the manifest's defaults, overridden by global, then account settings.
    pub fn params_for(&self, r: &Remediation, account: &str) -> serde_json::Map<String, Value> {
        let mut params = r.default_params();
        for scope in ["*", account] {
            if let Some(s) = self.find(r.name(), scope) {
                params.extend(s.params.clone());
            }
        }
        params
    }

    fn global_setting(&self, r: &Remediation) -> Option<&Setting> {
        self.find(r.name(), "*")
    }

    /// Whether `rectify:exempt` tags count for this remediation: only when they are switched on
    /// for the Organization, and not off for the remediation.
    pub fn tag_exemptions(&self, r: &Remediation) -> bool {
        self.global.tag_exemptions
            && self
                .global_setting(r)
                .and_then(|s| s.tag_exemptions)
                .unwrap_or(true)
    }

    /// Whether this remediation's jobs write their outcome back to Security Hub (default yes).
    pub fn securityhub_updates(&self, r: &Remediation) -> bool {
        self.global_setting(r)
            .and_then(|s| s.securityhub_updates)
            .unwrap_or(true)
    }

    /// How many days ahead a tag's `until=` may lie and still count.
    pub fn tag_exemption_max_days(&self) -> u32 {
        self.global
            .tag_exemption_max_days
            .unwrap_or(DEFAULT_TAG_EXEMPTION_MAX_DAYS)
    }

    /// The blast-radius breaker a job of this remediation in `account` counts against: its
    /// limit and window.
    pub fn breaker(&self, r: &Remediation, account: &str) -> BreakerLimit {
        let s = self.global_setting(r);
        BreakerLimit {
            remediation: r.name().to_string(),
            account: account.to_string(),
            limit: s
                .and_then(|s| s.breaker_limit)
                .unwrap_or(DEFAULT_BREAKER_LIMIT),
            window_seconds: s
                .and_then(|s| s.breaker_window_seconds)
                .unwrap_or(DEFAULT_BREAKER_WINDOW_SECONDS),
        }
    }

    /// The exemption record that holds for this resource today, if any.
    pub fn exemption(
        &self,
        remediation: &str,
        account: &str,
        resource_id: &str,
        today: &str,
    ) -> Option<&Exemption> {
        self.exemptions.iter().find(|e| {
            e.remediation == remediation
                && (e.account == account || e.account == "*")
                && e.resource_id == resource_id
                && e.active(today)
        })
    }

    /// Whether the allow-list lets rectify act in this account. It fails closed: an empty list
    /// allows no account, and in `organization` mode only an account among `organization` (the
    /// Organization's ACTIVE accounts, looked up by the caller) is allowed; none when they were
    /// not looked up.
    pub fn account_allowed(&self, account: &str, organization: Option<&BTreeSet<String>>) -> bool {
        if self.global.organization {
            organization.is_some_and(|o| o.contains(account)) && !self.global.leaves_out(account)
        } else {
            self.global.accounts.iter().any(|a| a == account)
        }
    }

    /// Operators' extra trigger rules, per remediation.
    pub fn triggers(&self) -> &BTreeMap<String, Vec<String>> {
        self.triggers.get_or_init(|| {
            let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for s in self.settings.iter().filter(|s| !s.triggers.is_empty()) {
                out.entry(s.remediation.clone())
                    .or_default()
                    .extend(s.triggers.iter().cloned());
            }
            out
        })
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn get_s(item: &HashMap<String, AttributeValue>, k: &str) -> Option<String> {
    item.get(k).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(item: &HashMap<String, AttributeValue>, k: &str) -> Option<u64> {
    item.get(k)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn get_bool(item: &HashMap<String, AttributeValue>, k: &str) -> bool {
    item.get(k)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

fn get_json<T: serde::de::DeserializeOwned>(
    item: &HashMap<String, AttributeValue>,
    k: &str,
) -> Result<Option<T>, StateError> {
    match get_s(item, k) {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StateError::Corrupt(format!("attribute {k}: {e}"))),
    }
}

/// Builds an UpdateItem expression with placeholders for every name and value, so no
/// attribute name ever collides with a DynamoDB reserved word.
#[derive(Default)]
struct Update {
    sets: Vec<String>,
    removes: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    fn name(&mut self, attr: &str) -> String {
        let key = format!("#{attr}");
        self.names.insert(key.clone(), attr.to_string());
        key
    }

    fn value(&mut self, v: AttributeValue) -> String {
        let key = format!(":v{}", self.values.len());
        self.values.insert(key.clone(), v);
        key
    }

    fn set(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attr), self.value(v));
        self.sets.push(format!("{name} = {value}"));
        self
    }

    fn set_opt(&mut self, attr: &str, v: Option<AttributeValue>) -> &mut Self {
        match v {
            Some(v) => self.set(attr, v),
            None => {
                let name = self.name(attr);
                self.removes.push(name);
                self
            }
        }
    }

    fn set_if_absent(&mut self, attr: &str, v: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attr), self.value(v));
        self.sets
            .push(format!("{name} = if_not_exists({name}, {value})"));
        self
    }

    fn expression(&self) -> String {
        let mut e = format!("SET {}", self.sets.join(", "));
        if !self.removes.is_empty() {
            e.push_str(&format!(" REMOVE {}", self.removes.join(", ")));
        }
        e
    }
}

/// A job's created ids as stored: nothing when the job created nothing.
fn created_attr(created: &[crate::action::Created]) -> Option<AttributeValue> {
    json_attr(&(!created.is_empty()).then_some(created))
}

fn json_attr<T: Serialize>(v: &Option<T>) -> Option<AttributeValue> {
    v.as_ref()
        .map(|v| s(serde_json::to_string(v).unwrap_or_default()))
}

/// A resource state as the jobs table stores it: secrets redacted, as in the audit copy.
fn state_attr(v: &Option<Value>) -> Option<AttributeValue> {
    v.as_ref().map(|v| {
        let mut v = v.clone();
        crate::redact::redact(&mut v);
        s(v.to_string())
    })
}

/// A job as one whole item: every field it holds, the ones it does not have left out. Written
/// whole where nothing else can be in the item: an undo job, a new job's claim and that job's
/// outcome (see [`JobWrite`]).
fn job_item(job: &Job) -> HashMap<String, AttributeValue> {
    let mut item = HashMap::new();
    for (k, v) in [
        ("id", &job.id),
        ("remediation", &job.remediation),
        ("account", &job.account),
        ("region", &job.region),
        ("resource_type", &job.resource_type),
        ("resource_id", &job.resource_id),
        ("rule", &job.rule),
        ("source", &job.source),
        ("observation", &job.observation),
        ("created_at", &job.created_at),
        ("updated_at", &job.updated_at),
    ] {
        item.insert(k.to_string(), s(v));
    }
    item.insert("resource_key".into(), s(job.resource_key()));
    item.insert("status".into(), s(job.status.as_str()));
    item.insert("mode".into(), s(job.mode.as_str()));
    item.insert("attempts".into(), n(job.attempts));
    for (k, v) in [
        ("event_id", job.event_id.clone().map(s)),
        ("reason", job.reason.clone().map(s)),
        ("plan", json_attr(&job.plan)),
        ("plan_hash", job.plan_hash.clone().map(s)),
        ("before", state_attr(&job.before)),
        ("after", state_attr(&job.after)),
        ("inverse", json_attr(&job.inverse)),
        ("created", created_attr(&job.created)),
        ("script_sha256", job.script_sha256.clone().map(s)),
        ("approved_by", job.approved_by.clone().map(s)),
        ("approved_at", job.approved_at.clone().map(s)),
        ("approved_plan_hash", job.approved_plan_hash.clone().map(s)),
        ("approval_reason", job.approval_reason.clone().map(s)),
        ("approved_in", job.approved_in.clone().map(s)),
        ("requested_by", job.requested_by.clone().map(s)),
        ("hub", json_attr(&job.hub)),
        (
            "hub_retry",
            job.hub_retry.then_some(AttributeValue::Bool(true)),
        ),
    ] {
        if let Some(v) = v {
            item.insert(k.to_string(), v);
        }
    }
    item
}

/// A new job's claim as one whole item: the job in progress, its first attempt, under this
/// owner's lease of `lease` from `now`. What [`claim_update`] writes to a job not there yet.
fn claim_item(
    job: &Job,
    owner: &str,
    lease: Duration,
    now: chrono::DateTime<Utc>,
) -> HashMap<String, AttributeValue> {
    let until = now.timestamp() + lease.as_secs().max(1) as i64;
    let mut item = job_item(&Job {
        status: JobStatus::InProgress,
        updated_at: crate::clock::text(now),
        attempts: 1,
        ..job.clone()
    });
    item.insert("lease_owner".into(), s(owner));
    item.insert("lease_until".into(), n(until));
    item
}

/// The claim's writes: the job's identity fields, status in progress, this owner's lease of
/// `lease` from `now`, and one more attempt.
fn claim_update(job: &Job, owner: &str, lease: Duration, now: chrono::DateTime<Utc>) -> Update {
    let until = now.timestamp() + lease.as_secs().max(1) as i64;
    let mut u = Update::default();
    u.set("status", s(JobStatus::InProgress.as_str()))
        .set("lease_owner", s(owner))
        .set("lease_until", n(until))
        .set("updated_at", s(crate::clock::text(now)))
        .set_if_absent("created_at", s(&job.created_at))
        .set("remediation", s(&job.remediation))
        .set("account", s(&job.account))
        .set("region", s(&job.region))
        .set("resource_type", s(&job.resource_type))
        .set("resource_id", s(&job.resource_id))
        .set("rule", s(&job.rule))
        .set("source", s(&job.source))
        .set("observation", s(&job.observation))
        .set("resource_key", s(job.resource_key()))
        .set("mode", s(job.mode.as_str()))
        .set_opt("event_id", job.event_id.clone().map(s))
        .set_opt("hub", json_attr(&job.hub));
    let attempts = u.name("attempts");
    let (zero, one) = (u.value(n(0)), u.value(n(1)));
    u.sets.push(format!(
        "{attempts} = if_not_exists({attempts}, {zero}) + {one}"
    ));
    u
}

/// A job's outcome as written when it ends: every field the job decided, and its lease
/// removed. The condition (returned with it) holds while `owner` still holds the lease.
fn finish_update(job: &Job, owner: &str) -> (Update, String) {
    let mut u = Update::default();
    u.set("status", s(job.status.as_str()))
        .set("mode", s(job.mode.as_str()))
        .set("updated_at", s(&job.updated_at))
        .set_opt("reason", job.reason.clone().map(s))
        .set_opt("plan", json_attr(&job.plan))
        .set_opt("plan_hash", job.plan_hash.clone().map(s))
        .set_opt("before", state_attr(&job.before))
        .set_opt("after", state_attr(&job.after))
        .set_opt("inverse", json_attr(&job.inverse))
        .set_opt("created", created_attr(&job.created))
        .set_opt("script_sha256", job.script_sha256.clone().map(s))
        .set_opt("approved_by", job.approved_by.clone().map(s))
        .set_opt("approved_at", job.approved_at.clone().map(s))
        .set_opt("approved_plan_hash", job.approved_plan_hash.clone().map(s))
        .set_opt("approval_reason", job.approval_reason.clone().map(s))
        .set_opt("approved_in", job.approved_in.clone().map(s));
    let lease_owner = u.name("lease_owner");
    let lease_until = u.name("lease_until");
    u.removes.push(lease_owner.clone());
    u.removes.push(lease_until);
    let me = u.value(s(owner));
    (u, format!("{lease_owner} = {me}"))
}

/// The DynamoDB tables.
#[derive(Clone)]
pub struct Store {
    ddb: Client,
    pub names: Names,
    /// The breaker items this process last read or wrote, by remediation and account.
    breakers: breaker::Slots,
}

impl Store {
    pub fn new(ddb: Client, names: Names) -> Store {
        Store {
            ddb,
            names,
            breakers: Arc::default(),
        }
    }

    pub fn client(&self) -> &Client {
        &self.ddb
    }

    /// Reads every setting (the table is small: one item per remediation and scope).
    pub async fn settings(&self) -> Result<SettingsSnapshot, StateError> {
        let mut snapshot = SettingsSnapshot::default();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .scan()
                .table_name(&self.names.settings)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb:Scan", e))?;
            for item in out.items() {
                let remediation = get_s(item, "remediation").unwrap_or_default();
                let scope = get_s(item, "scope").unwrap_or_default();
                if remediation == GLOBAL {
                    snapshot.global = global_from_item(item)?;
                } else if scope.starts_with("exemption:") {
                    snapshot.exemptions.push(exemption_from_item(item));
                } else if scope.starts_with(BREAKER) || remediation == WRITERS {
                    continue;
                } else {
                    snapshot.settings.push(setting_from_item(item)?);
                }
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(snapshot)
    }

    /// Claims a job: creates it, or takes it over when it ended without effect or its lease
    /// expired. Writes the job's identity fields and a lease of `lease` length.
    pub async fn claim(
        &self,
        job: &Job,
        owner: &str,
        lease: Duration,
    ) -> Result<Claim, StateError> {
        let now = Utc::now();
        let mut u = claim_update(job, owner, lease, now);
        let (id, status, lease_until) = (u.name("id"), u.name("status"), u.name("lease_until"));
        let rerun: Vec<String> = JobStatus::ALL
            .iter()
            .filter(|j| j.claimable())
            .map(|j| u.value(s(j.as_str())))
            .collect();
        let running = u.value(s(JobStatus::InProgress.as_str()));
        let now_secs = u.value(n(now.timestamp()));
        let condition = format!(
            "attribute_not_exists({id}) OR {status} IN ({}) OR ({status} = {running} AND {lease_until} < {now_secs})",
            rerun.join(", ")
        );
        let result = self
            .ddb
            .update_item()
            .table_name(&self.names.jobs)
            .key("id", s(&job.id))
            .update_expression(u.expression())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let previous = match out.attributes() {
                    Some(item) if !item.is_empty() => Some(Box::new(job_from_item(item)?)),
                    _ => None,
                };
                Ok(Claim::Won(previous))
            }
            Err(e) => match classify("dynamodb:UpdateItem", e) {
                e if e.code() == Some("ConditionalCheckFailedException") => {
                    match self.job(&job.id).await? {
                        Some(existing) if existing.status == JobStatus::InProgress => {
                            Ok(Claim::Busy)
                        }
                        Some(existing) => Ok(Claim::Done(Box::new(existing))),
                        // Deleted in between: let the delivery come back and try again.
                        None => Ok(Claim::Busy),
                    }
                }
                e => Err(e.into()),
            },
        }
    }

    /// Marks (or clears) a job whose outcome could not be written back to Security Hub.
    pub async fn set_hub_retry(&self, id: &str, retry: bool) -> Result<(), StateError> {
        self.set_on_job(id, "hub_retry", AttributeValue::Bool(retry))
            .await
    }

    /// The write that records who asked for job `id` to run again (`jobs retry`), as an AWS
    /// identity, for a transaction with its audit record: it holds only while the job exists.
    pub fn requested_by_update(&self, id: &str, by: &str) -> Result<TransactWriteItem, StateError> {
        let mut u = Update::default();
        u.set("requested_by", s(by));
        let exists = format!("attribute_exists({})", u.name("id"));
        txn::tx_update(self.job_update(id, u, exists))
    }

    /// Sets one attribute of a job that exists.
    async fn set_on_job(&self, id: &str, attr: &str, v: AttributeValue) -> Result<(), StateError> {
        let mut u = Update::default();
        u.set(attr, v);
        let exists = u.name("id");
        self.ddb
            .update_item()
            .table_name(&self.names.jobs)
            .key("id", s(id))
            .update_expression(u.expression())
            .condition_expression(format!("attribute_exists({exists})"))
            .set_expression_attribute_names(Some(u.names))
            .set_expression_attribute_values(Some(u.values))
            .send()
            .await
            .map_err(|e| classify("dynamodb:UpdateItem", e))?;
        Ok(())
    }

    /// The write of a whole job that no worker claims (an operator's undo), for a transaction
    /// with its audit record.
    pub fn job_put(&self, job: &Job) -> Result<TransactWriteItem, StateError> {
        txn::tx_put(
            aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.names.jobs)
                .set_item(Some(job_item(job))),
        )
    }

    /// One job, read consistently.
    pub async fn job(&self, id: &str) -> Result<Option<Job>, StateError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.names.jobs)
            .key("id", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", e))?;
        out.item().map(job_from_item).transpose()
    }

    /// Every job, newest first.
    pub async fn jobs(&self) -> Result<Vec<Job>, StateError> {
        let mut jobs = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .scan()
                .table_name(&self.names.jobs)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb:Scan", e))?;
            for item in out.items().iter().filter(|i| !is_lock(i)) {
                jobs.push(job_from_item(item)?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        jobs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(jobs)
    }
}

fn setting_from_item(item: &HashMap<String, AttributeValue>) -> Result<Setting, StateError> {
    let mode = match get_s(item, "mode") {
        Some(m) => Some(m.parse::<Mode>().map_err(StateError::Corrupt)?),
        None => None,
    };
    Ok(Setting {
        remediation: get_s(item, "remediation")
            .ok_or_else(|| StateError::Corrupt("setting without remediation".into()))?,
        scope: get_s(item, "scope").unwrap_or_else(|| "*".into()),
        mode,
        params: get_json(item, "params")?.unwrap_or_default(),
        triggers: get_json(item, "triggers")?.unwrap_or_default(),
        tag_exemptions: item
            .get("tag_exemptions")
            .and_then(|v| v.as_bool().ok())
            .copied(),
        securityhub_updates: item
            .get("securityhub_updates")
            .and_then(|v| v.as_bool().ok())
            .copied(),
        breaker_limit: get_n(item, "breaker_limit").map(|v| v as u32),
        breaker_window_seconds: get_n(item, "breaker_window_seconds"),
        updated_by: get_s(item, "updated_by"),
        updated_at: get_s(item, "updated_at"),
        version: get_n(item, "version").unwrap_or(0),
    })
}

fn job_from_item(item: &HashMap<String, AttributeValue>) -> Result<Job, StateError> {
    let text = |k: &str| get_s(item, k).unwrap_or_default();
    let id = text("id");
    let status = JobStatus::parse(&text("status"))
        .ok_or_else(|| StateError::Corrupt(format!("job {id}: status {:?}", text("status"))))?;
    let mode = text("mode")
        .parse::<Mode>()
        .map_err(|e| StateError::Corrupt(format!("job {id}: {e}")))?;
    Ok(Job {
        remediation: text("remediation"),
        account: text("account"),
        region: text("region"),
        resource_type: text("resource_type"),
        resource_id: text("resource_id"),
        rule: text("rule"),
        source: text("source"),
        event_id: get_s(item, "event_id"),
        observation: text("observation"),
        status,
        mode,
        reason: get_s(item, "reason"),
        plan: get_json(item, "plan")?,
        plan_hash: get_s(item, "plan_hash"),
        before: get_json(item, "before")?,
        after: get_json(item, "after")?,
        inverse: get_json(item, "inverse")?,
        created: get_json(item, "created")?.unwrap_or_default(),
        script_sha256: get_s(item, "script_sha256"),
        approved_by: get_s(item, "approved_by"),
        approved_at: get_s(item, "approved_at"),
        approved_plan_hash: get_s(item, "approved_plan_hash"),
        approval_reason: get_s(item, "approval_reason"),
        approved_in: get_s(item, "approved_in"),
        requested_by: get_s(item, "requested_by"),
        created_at: text("created_at"),
        updated_at: text("updated_at"),
        attempts: get_n(item, "attempts").unwrap_or(0) as u32,
        hub: get_json(item, "hub")?,
        hub_retry: get_bool(item, "hub_retry"),
        id,
    })
}

fn global_from_item(item: &HashMap<String, AttributeValue>) -> Result<Global, StateError> {
    Ok(Global {
        accounts: get_json(item, "accounts")?.unwrap_or_default(),
        organization: get_bool(item, "allow_organization"),
        left_out: get_json(item, "left_out_accounts")?.unwrap_or_default(),
        tag_exemptions: get_bool(item, "tag_exemptions"),
        tag_exemption_max_days: get_n(item, "tag_exemption_max_days").map(|v| v as u32),
        paused: item
            .get("paused")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        pause_reason: get_s(item, "pause_reason"),
        securityhub_admin: get_s(item, "securityhub_admin"),
        approver_must_differ: get_bool(item, "approver_must_differ"),
        updated_by: get_s(item, "updated_by"),
        updated_at: get_s(item, "updated_at"),
        version: get_n(item, "version").unwrap_or(0),
    })
}

fn exemption_from_item(item: &HashMap<String, AttributeValue>) -> Exemption {
    let scope = get_s(item, "scope").unwrap_or_default();
    let mut parts = scope.splitn(3, ':').skip(1);
    Exemption {
        remediation: get_s(item, "remediation").unwrap_or_default(),
        account: parts.next().unwrap_or("*").to_string(),
        resource_id: parts.next().unwrap_or_default().to_string(),
        reason: get_s(item, "reason").unwrap_or_default(),
        by: get_s(item, "by").unwrap_or_default(),
        until: get_s(item, "until"),
        created_at: get_s(item, "created_at").unwrap_or_default(),
    }
}

/// The jobs-table item that locks one resource.
fn lock_id(key: &str) -> String {
    format!("lock:{}", &crate::action::sha256_hex(key)[..32])
}

fn is_lock(item: &HashMap<String, AttributeValue>) -> bool {
    get_s(item, "id").is_some_and(|id| id.starts_with("lock:"))
}

impl Store {
    /// The Put of a settings item (a setting, the Organization's settings, a breaker) that
    /// holds only if the item is still at `expected_version`. Version 0 is an item not written
    /// yet; past that, the item must still be there: one deleted since it was read (a reset
    /// breaker) is a conflict, not a blank slate.
    fn versioned_put(
        &self,
        item: HashMap<String, AttributeValue>,
        expected_version: u64,
    ) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        let condition = if expected_version == 0 {
            "attribute_not_exists(#r) OR #v = :v"
        } else {
            "attribute_exists(#r) AND #v = :v"
        };
        aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.names.settings)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_names("#r", "remediation")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(expected_version))
    }

    /// The write that adds or replaces an exemption record, for a transaction with its audit
    /// record. With `only_longer`, it holds only where no exemption of the same resource and
    /// scope lasts as long or longer (or has no end): an extension never shortens one.
    pub fn exemption_put(
        &self,
        e: &Exemption,
        only_longer: bool,
    ) -> Result<TransactWriteItem, StateError> {
        debug_assert!(
            !only_longer || e.until.is_some(),
            "an extension has a last day"
        );
        let mut item = HashMap::from([
            ("remediation".to_string(), s(&e.remediation)),
            ("scope".to_string(), s(e.scope())),
            ("reason".to_string(), s(&e.reason)),
            ("by".to_string(), s(&e.by)),
            ("created_at".to_string(), s(&e.created_at)),
        ]);
        if let Some(u) = &e.until {
            item.insert("until".into(), s(u));
        }
        let mut put = aws_sdk_dynamodb::types::Put::builder()
            .table_name(&self.names.settings)
            .set_item(Some(item));
        if only_longer {
            // Days are YYYY-MM-DD, so they compare as text.
            put = put
                .condition_expression(
                    "attribute_not_exists(#r) OR (attribute_exists(#u) AND #u < :u)",
                )
                .expression_attribute_names("#r", "remediation")
                .expression_attribute_names("#u", "until")
                .expression_attribute_values(":u", s(e.until.as_deref().unwrap_or_default()));
        }
        txn::tx_put(put)
    }

    /// The write that removes an exemption record, for a transaction with its audit record:
    /// it holds only where there is one.
    pub fn exemption_delete(&self, e: &Exemption) -> Result<TransactWriteItem, StateError> {
        txn::tx_delete(
            aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.names.settings)
                .key("remediation", s(&e.remediation))
                .key("scope", s(e.scope()))
                .condition_expression("attribute_exists(#r)")
                .expression_attribute_names("#r", "remediation"),
        )
    }

    /// Makes alone a write built for a transaction. False when its condition did not hold.
    async fn put_alone(&self, put: aws_sdk_dynamodb::types::Put) -> Result<bool, StateError> {
        let result = self
            .ddb
            .put_item()
            .table_name(put.table_name)
            .set_item(Some(put.item))
            .set_condition_expression(put.condition_expression)
            .set_expression_attribute_names(put.expression_attribute_names)
            .set_expression_attribute_values(put.expression_attribute_values)
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match classify("dynamodb:PutItem", e) {
                e if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
                e => Err(e.into()),
            },
        }
    }

    /// Takes the lock on one resource for `lease` (or extends this owner's own). Two jobs on one
    /// resource never run at once, across workers.
    pub async fn lock_resource(
        &self,
        key: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StateError> {
        // The same write as the lock in `claim_locked`'s transaction, made alone.
        self.lock_alone(key, owner, lease, txn::LockWrite::Take)
            .await
    }

    /// Renews this owner's lock on one resource for `lease`. False when the lock is no longer
    /// there or no longer this owner's, or its lease ran out: a renewal never takes a lock.
    pub async fn renew_lock(
        &self,
        key: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StateError> {
        self.lock_alone(key, owner, lease, txn::LockWrite::Renew)
            .await
    }

    async fn lock_alone(
        &self,
        key: &str,
        owner: &str,
        lease: Duration,
        write: txn::LockWrite,
    ) -> Result<bool, StateError> {
        let now = Utc::now().timestamp();
        self.put_alone(self.lock_write(key, owner, lease, now, write)?)
            .await
    }

    /// Extends this owner's lease on a claimed job that is still in progress. False when the
    /// lease is no longer this owner's.
    pub async fn renew_claim(
        &self,
        job_id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StateError> {
        let until = Utc::now().timestamp() + lease.as_secs().max(1) as i64;
        let result = self
            .ddb
            .update_item()
            .table_name(&self.names.jobs)
            .key("id", s(job_id))
            .update_expression("SET #until = :until")
            .condition_expression("#owner = :me AND #status = :running")
            .expression_attribute_names("#until", "lease_until")
            .expression_attribute_names("#owner", "lease_owner")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":me", s(owner))
            .expression_attribute_values(":running", s(JobStatus::InProgress.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) => match classify("dynamodb:UpdateItem", e) {
                e if e.code() == Some("ConditionalCheckFailedException") => Ok(false),
                e => Err(e.into()),
            },
        }
    }

    /// Releases this owner's lock on a resource.
    pub async fn unlock_resource(&self, key: &str, owner: &str) -> Result<(), StateError> {
        let id = lock_id(key);
        let result = self
            .ddb
            .delete_item()
            .table_name(&self.names.jobs)
            .key("id", s(id))
            .condition_expression("#owner = :me")
            .expression_attribute_names("#owner", "lease_owner")
            .expression_attribute_values(":me", s(owner))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match classify("dynamodb:DeleteItem", e) {
                // Someone else took it over after our lease ran out: not ours to release.
                e if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
                e => Err(e.into()),
            },
        }
    }

    /// The jobs of one resource, through the by-resource index.
    pub async fn jobs_for_resource(&self, key: &str) -> Result<Vec<Job>, StateError> {
        let mut jobs = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.names.jobs)
                .index_name(BY_RESOURCE_INDEX)
                .key_condition_expression("#k = :k")
                .expression_attribute_names("#k", "resource_key")
                .expression_attribute_values(":k", s(key))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb:Query", e))?;
            for item in out.items().iter().filter(|i| !is_lock(i)) {
                jobs.push(job_from_item(item)?);
            }
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(jobs)
    }

    /// Moves `job` (as read) from one of the statuses `from` to `to`, setting `fields` (a
    /// `None` removes the field), in one transaction with its audit record, which `record`
    /// makes of the job as it becomes. The move holds only if the job's status is one of
    /// `from` and its last update (`updated_at`) is the one read, so the record, of the job as
    /// read with the move applied, describes what was written. (Markers that do not stamp an
    /// update, `hub_retry` and `requested_by`, are not part of a record.) `None` when the move
    /// does not hold: nothing was written.
    pub async fn transition_recorded(
        &self,
        job: &Job,
        from: &[JobStatus],
        to: JobStatus,
        fields: &[(&str, Option<String>)],
        record: &RecordJob<'_>,
    ) -> Result<Option<Job>, StateError> {
        let now = now_text();
        let mut u = Update::default();
        u.set("status", s(to.as_str())).set("updated_at", s(&now));
        let mut item = job_item(job);
        item.insert("status".into(), s(to.as_str()));
        item.insert("updated_at".into(), s(&now));
        for (k, v) in fields {
            u.set_opt(k, v.clone().map(s));
            match v {
                Some(v) => item.insert((*k).to_string(), s(v)),
                None => item.remove(*k),
            };
        }
        let moved = job_from_item(&item)?;
        let status = u.name("status");
        let allowed: Vec<String> = from.iter().map(|f| u.value(s(f.as_str()))).collect();
        let updated = u.name("updated_at");
        let read_at = u.value(s(&job.updated_at));
        let condition = format!(
            "{status} IN ({}) AND {updated} = {read_at}",
            allowed.join(", ")
        );
        let change = txn::tx_update(self.job_update(&job.id, u, condition))?;
        Ok(record(&moved, change).await?.then_some(moved))
    }

    /// [`Store::transition_recorded`] of the job as it is now: a job changed since it was read
    /// is read again and moved as it is, if its status is still one of `from`. `None` when it
    /// no longer is (or is gone): nothing was written.
    pub async fn transition_latest_recorded(
        &self,
        job: &Job,
        from: &[JobStatus],
        to: JobStatus,
        fields: &[(&str, Option<String>)],
        record: &RecordJob<'_>,
    ) -> Result<Option<Job>, StateError> {
        const TRIES: usize = 3;
        let mut current = job.clone();
        for _ in 0..TRIES {
            if let Some(moved) = self
                .transition_recorded(&current, from, to, fields, record)
                .await?
            {
                return Ok(Some(moved));
            }
            match self.job(&job.id).await? {
                Some(now) if from.contains(&now.status) => current = now,
                _ => return Ok(None),
            }
        }
        Err(StateError::Conflict(format!(
            "the move of job {} to {}",
            job.id,
            to.as_str()
        )))
    }
}

/// Settings cached for a short time. A refresh that fails is an error, never a stale answer:
/// the gate fails closed.
pub struct SettingsCache {
    store: Store,
    ttl: Duration,
    cached: Mutex<Option<(Instant, Arc<SettingsSnapshot>)>>,
}

impl SettingsCache {
    pub fn new(store: Store, ttl: Duration) -> SettingsCache {
        SettingsCache {
            store,
            ttl,
            cached: Mutex::new(None),
        }
    }

    pub async fn get(&self) -> Result<Arc<SettingsSnapshot>, StateError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, snapshot)) = cached.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(snapshot.clone());
        }
        *cached = None;
        let snapshot = Arc::new(self.store.settings().await?);
        *cached = Some((Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }
}

/// How many times a read-modify-write of one settings item is tried when someone else wrote
/// the item between the read and the write.
const UPDATE_TRIES: usize = 5;

/// A change written in one transaction with its audit record, by the audit trail
/// ([`crate::audit::AuditWriter::append_with`]): `Ok(false)` when the change's own condition
/// does not hold, and nothing was written.
pub type RecordedWrite<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<bool, StateError>> + Send + 'a>>;

/// What writes a settings item's change (from what it was, to what it becomes) with its
/// audit record.
pub type RecordSettings<'a, T> =
    dyn Fn(Option<&T>, &T, TransactWriteItem) -> RecordedWrite<'a> + Sync + 'a;

/// What writes a job's move to another status (the job as it becomes) with its audit record.
pub type RecordJob<'a> = dyn Fn(&Job, TransactWriteItem) -> RecordedWrite<'a> + Sync + 'a;

impl Store {
    /// Changes one remediation's setting for one scope (`*` or an account) with an optimistic
    /// update (see [`Store::update_item`]), written with its audit record by `record`. Returns
    /// the setting as it was (none: never set) and as it is now.
    pub async fn update_setting(
        &self,
        remediation: &str,
        scope: &str,
        edit: impl FnMut(&mut Setting),
        record: &RecordSettings<'_, Setting>,
    ) -> Result<(Option<Setting>, Setting), StateError> {
        let blank = Setting {
            remediation: remediation.to_string(),
            scope: scope.to_string(),
            ..Setting::default()
        };
        self.update_item(blank, edit, record).await
    }

    /// Changes the Organization-wide settings (pause switch, account allow-list) the same way.
    /// Returns them as they were and as they are now.
    pub async fn update_global(
        &self,
        edit: impl FnMut(&mut Global),
        record: &RecordSettings<'_, Global>,
    ) -> Result<(Global, Global), StateError> {
        let (old, new) = self.update_item(Global::default(), edit, record).await?;
        Ok((old.unwrap_or_default(), new))
    }

    /// The one read-modify-write of a settings item: a consistent read of the item (`blank`
    /// when there is none), `edit`, then a write that holds only if nobody wrote the item
    /// meanwhile, made by `record` together with its audit record, tried again a few times on
    /// a conflict. An edit that changes nothing writes nothing, and records nothing.
    async fn update_item<T: SettingsItem>(
        &self,
        blank: T,
        mut edit: impl FnMut(&mut T),
        record: &RecordSettings<'_, T>,
    ) -> Result<(Option<T>, T), StateError> {
        let (remediation, scope) = blank.key();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let old = self
                .get_settings_item(&remediation, &scope)
                .await?
                .map(|item| T::from_item(&item))
                .transpose()?;
            let mut new = old.clone().unwrap_or_else(|| blank.clone());
            edit(&mut new);
            if old.as_ref() == Some(&new) {
                return Ok((old, new));
            }
            let (version, updated_at) = new.stamps();
            let expected = *version;
            *version += 1;
            *updated_at = Some(now_text());
            let change = txn::tx_put(self.versioned_put(new.to_item(), expected))?;
            if record(old.as_ref(), &new, change).await? {
                return Ok((old, new));
            }
            if attempt >= UPDATE_TRIES {
                return Err(StateError::Conflict(new.what()));
            }
        }
    }

    /// One item of the settings table, read consistently.
    async fn get_settings_item(
        &self,
        remediation: &str,
        scope: &str,
    ) -> Result<Option<HashMap<String, AttributeValue>>, StateError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.names.settings)
            .key("remediation", s(remediation))
            .key("scope", s(scope))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("dynamodb:GetItem", e))?;
        Ok(out.item.filter(|i| !i.is_empty()))
    }
}

/// An item of the settings table that is changed by read-modify-write.
trait SettingsItem: Clone + PartialEq {
    /// Its key: (remediation, scope).
    fn key(&self) -> (String, String);
    /// How a conflict on it is named.
    fn what(&self) -> String;
    /// Its version and the time it was written.
    fn stamps(&mut self) -> (&mut u64, &mut Option<String>);
    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, StateError>;
    fn to_item(&self) -> HashMap<String, AttributeValue>;
}

impl SettingsItem for Setting {
    fn key(&self) -> (String, String) {
        (self.remediation.clone(), self.scope.clone())
    }

    fn what(&self) -> String {
        format!("setting {}/{}", self.remediation, self.scope)
    }

    fn stamps(&mut self) -> (&mut u64, &mut Option<String>) {
        (&mut self.version, &mut self.updated_at)
    }

    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, StateError> {
        setting_from_item(item)
    }

    fn to_item(&self) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            ("remediation".to_string(), s(&self.remediation)),
            ("scope".to_string(), s(&self.scope)),
            (
                "params".to_string(),
                s(serde_json::to_string(&self.params).unwrap_or_default()),
            ),
            (
                "triggers".to_string(),
                s(serde_json::to_string(&self.triggers).unwrap_or_default()),
            ),
            ("version".to_string(), n(self.version)),
        ]);
        if let Some(at) = &self.updated_at {
            item.insert("updated_at".into(), s(at));
        }
        if let Some(mode) = self.mode {
            item.insert("mode".into(), s(mode.as_str()));
        }
        if let Some(t) = self.tag_exemptions {
            item.insert("tag_exemptions".into(), AttributeValue::Bool(t));
        }
        if let Some(u) = self.securityhub_updates {
            item.insert("securityhub_updates".into(), AttributeValue::Bool(u));
        }
        if let Some(l) = self.breaker_limit {
            item.insert("breaker_limit".into(), n(l));
        }
        if let Some(w) = self.breaker_window_seconds {
            item.insert("breaker_window_seconds".into(), n(w));
        }
        if let Some(by) = &self.updated_by {
            item.insert("updated_by".into(), s(by));
        }
        item
    }
}

impl SettingsItem for Global {
    fn key(&self) -> (String, String) {
        (GLOBAL.to_string(), "*".to_string())
    }

    fn what(&self) -> String {
        "the Organization settings".into()
    }

    fn stamps(&mut self) -> (&mut u64, &mut Option<String>) {
        (&mut self.version, &mut self.updated_at)
    }

    fn from_item(item: &HashMap<String, AttributeValue>) -> Result<Self, StateError> {
        global_from_item(item)
    }

    fn to_item(&self) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            ("remediation".to_string(), s(GLOBAL)),
            ("scope".to_string(), s("*")),
            (
                "accounts".to_string(),
                s(serde_json::to_string(&self.accounts).unwrap_or_default()),
            ),
            ("paused".to_string(), AttributeValue::Bool(self.paused)),
            (
                "allow_organization".to_string(),
                AttributeValue::Bool(self.organization),
            ),
            (
                "tag_exemptions".to_string(),
                AttributeValue::Bool(self.tag_exemptions),
            ),
            ("version".to_string(), n(self.version)),
        ]);
        if !self.left_out.is_empty() {
            item.insert(
                "left_out_accounts".into(),
                s(serde_json::to_string(&self.left_out).unwrap_or_default()),
            );
        }
        if let Some(d) = self.tag_exemption_max_days {
            item.insert("tag_exemption_max_days".into(), n(d));
        }
        if let Some(at) = &self.updated_at {
            item.insert("updated_at".into(), s(at));
        }
        if let Some(r) = &self.pause_reason {
            item.insert("pause_reason".into(), s(r));
        }
        if let Some(a) = &self.securityhub_admin {
            item.insert("securityhub_admin".into(), s(a));
        }
        if self.approver_must_differ {
            item.insert(
                "approver_must_differ".into(),
                AttributeValue::Bool(self.approver_must_differ),
            );
        }
        if let Some(by) = &self.updated_by {
            item.insert("updated_by".into(), s(by));
        }
        item
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_stable_and_distinct() {
        let a = Job::id_for("1", "r", "x", "t", "id", "2026-01-01T00:00:00Z");
        assert_eq!(
            a,
            Job::id_for("1", "r", "x", "t", "id", "2026-01-01T00:00:00Z")
        );
        assert_ne!(
            a,
            Job::id_for("1", "r", "x", "t", "id", "2026-01-01T00:00:01Z")
        );
        assert_ne!(
            a,
            Job::id_for("1", "r", "y", "t", "id", "2026-01-01T00:00:00Z")
        );
        assert_eq!(a.len(), 24);
    }

    #[test]
    fn statuses_round_trip_and_only_effectless_ones_rerun() {
        for s in JobStatus::ALL {
            assert_eq!(JobStatus::parse(s.as_str()), Some(*s));
        }
        assert!(JobStatus::Planned.reruns_on_delivery());
        assert!(JobStatus::Failed.reruns_on_delivery());
        assert!(!JobStatus::Applied.reruns_on_delivery());
        assert!(!JobStatus::NoOp.reruns_on_delivery());
        assert!(!JobStatus::InProgress.reruns_on_delivery());
    }

    #[test]
    fn a_job_written_whole_reads_back_as_itself() {
        let job = Job {
            event_id: Some("e1".into()),
            reason: Some("applied".into()),
            plan_hash: Some("h".into()),
            before: Some(serde_json::json!({"block": false})),
            after: Some(serde_json::json!({"block": true})),
            script_sha256: Some("sha".into()),
            approved_by: Some("alice".into()),
            approved_at: Some("t2".into()),
            approved_plan_hash: Some("h".into()),
            approval_reason: Some("ok".into()),
            approved_in: Some("w-1".into()),
            requested_by: Some("bob".into()),
            attempts: 3,
            hub_retry: true,
            ..Job::sample(JobStatus::Applied)
        };
        let item = job_item(&job);
        let back = job_from_item(&item).unwrap();
        assert_eq!(
            serde_json::to_value(&back).unwrap(),
            serde_json::to_value(&job).unwrap()
        );
        assert!(back.hub_retry);
        assert_eq!(
            item["resource_key"],
            s("111122223333|us-east-1|AWS::S3::Bucket|b")
        );
        // What a job does not have is not written at all.
        let bare = job_item(&Job::sample(JobStatus::Applied));
        for absent in [
            "reason",
            "plan",
            "before",
            "requested_by",
            "hub",
            "hub_retry",
        ] {
            assert!(!bare.contains_key(absent), "{absent}");
        }
    }

    #[test]
    fn a_new_jobs_claim_is_its_first_attempt_in_progress_under_the_lease() {
        let now = Utc::now();
        let item = claim_item(
            &Job::sample(JobStatus::Applied),
            "w1",
            Duration::from_secs(90),
            now,
        );
        assert_eq!(item["status"], s("in-progress"));
        assert_eq!(item["attempts"], n(1));
        assert_eq!(item["lease_owner"], s("w1"));
        assert_eq!(item["lease_until"], n(now.timestamp() + 90));
        assert_eq!(item["created_at"], s("t"));
    }

    #[test]
    fn update_expression_uses_placeholders() {
        let mut u = Update::default();
        u.set("status", s("x"))
            .set_opt("reason", None)
            .set_if_absent("created_at", s("t"));
        assert_eq!(
            u.expression(),
            "SET #status = :v0, #created_at = if_not_exists(#created_at, :v1) REMOVE #reason"
        );
    }
}
