//! `rectify jobs`: list, show, approve, reject, retry and undo jobs.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{Failure, Operator, OutputArgs, Result, operator, print_json};
use crate::app::{COMMAND_LEASE, aws_config, build_undo_context, caller, load_catalog, store};
use crate::config::Config;
use crate::jobs::approval::{self, Decision};
use crate::jobs::{self, ControlQueue, Filter};
use crate::render;
use crate::state::{Job, JobStatus, Store};

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Jobs, newest first.
    List {
        /// Only jobs with this status.
        #[arg(long, value_parser = super::status_values())]
        status: Option<String>,
        /// Only jobs created at or after this time: RFC 3339 with a zone, or a duration ago
        /// (30m, 24h, 7d).
        #[arg(long, value_parser = crate::clock::since_arg, value_name = "TIME")]
        since: Option<chrono::DateTime<chrono::Utc>>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// One job: its resource, outcome and plan as a readable diff.
    Show {
        /// The job id (see `rectify jobs list`).
        id: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Run a job again through every gate (after a change of mode or parameters, or an
    /// approved job whose approval message was lost or dead-lettered).
    ///
    /// With filters (or several ids) it runs every matching job that can run again, after
    /// listing them: it asks on a terminal and needs --yes otherwise.
    ///
    /// Examples:
    ///   rectify jobs retry JOB_ID
    ///   rectify jobs retry --status planned --remediation s3-block-public-access --yes
    #[command(verbatim_doc_comment)]
    Retry {
        #[command(flatten)]
        select: Select,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Approve a job's pending plan: the worker re-reads the resource and applies the plan
    /// only if it is still the one approved.
    ///
    /// With filters (or several ids) it shows every matching pending plan with its sha256 and
    /// approves each only if its plan is still the one shown: it asks on a terminal and needs
    /// --yes otherwise.
    ///
    /// Examples:
    ///   rectify jobs approve JOB_ID --plan-hash 3f2a9c0d1e4b
    ///   rectify jobs approve --remediation s3-block-public-access --account 111122223333
    #[command(verbatim_doc_comment)]
    Approve {
        #[command(flatten)]
        select: Select,
        /// Who [default: the caller's AWS identity]
        #[arg(long)]
        by: Option<String>,
        /// Why it is approved (recorded with the approval; a change ticket, for example).
        #[arg(long)]
        reason: Option<String>,
        /// Approve only if the pending plan has this sha256 (as `jobs show` prints it; a
        /// prefix of at least 12 characters is enough); for one job named by its id.
        #[arg(long)]
        plan_hash: Option<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Undo an applied job: apply the inverse recomputed from its before-state (refused when it
    /// differs from the one recorded), through the operator's role in the member account; check
    /// the resource is as it was before the job, and exempt the resource from the remediation
    /// until --exempt-until (unless --no-exempt). Refuses when rectify is paused, the account is
    /// not allowed, or the resource changed since the job (showing the difference, unless
    /// --force). The record names the caller's AWS identity.
    Undo {
        /// The job id (see `rectify jobs list`).
        id: String,
        /// A label recorded beside the caller's AWS identity (never instead of it).
        #[arg(long)]
        by: Option<String>,
        /// The last day of the exemption the undo adds: YYYY-MM-DD, an RFC 3339 time, or a
        /// duration ahead (30d, 2w) [default: 30 days on].
        #[arg(
            long,
            value_name = "DAY",
            conflicts_with = "no_exempt",
            value_parser = crate::clock::day_arg
        )]
        exempt_until: Option<String>,
        /// Why it is undone (recorded in the audit trail and on the exemption).
        #[arg(long)]
        reason: String,
        /// Undo even though the resource changed since the job.
        #[arg(long)]
        force: bool,
        /// Do not exempt the resource (the next event may fix it again).
        #[arg(long)]
        no_exempt: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Reject a job's pending plan; it is never applied. With filters (or several ids) it lists
    /// every matching pending job first: it asks on a terminal and needs --yes otherwise.
    Reject {
        #[command(flatten)]
        select: Select,
        /// Who [default: the caller's AWS identity]
        #[arg(long)]
        by: Option<String>,
        /// Why it is rejected (recorded, and shown on the job).
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// The jobs a command acts on: ids, or filters, or both (each id must then match them).
#[derive(Debug, Args)]
pub struct Select {
    /// Job ids (see `rectify jobs list`); or choose the jobs with the filters.
    pub ids: Vec<String>,
    /// Only jobs with this status (approve and reject act on pending-approval jobs only;
    /// retry on planned, needs-parameter, failed, off and approved ones).
    #[arg(long, value_parser = super::status_values())]
    pub status: Option<String>,
    /// Only jobs of this remediation.
    #[arg(long)]
    pub remediation: Option<String>,
    /// Only jobs in this account (12 digits).
    #[arg(long)]
    pub account: Option<String>,
    /// Act on the jobs chosen without asking (needed when not on a terminal, for filters or
    /// several ids).
    #[arg(long)]
    pub yes: bool,
}

impl Select {
    /// The filters, checked.
    fn filter(&self) -> Result<Filter> {
        let status = match &self.status {
            Some(s) => Some(parse_status(s)?),
            None => None,
        };
        if let Some(a) = &self.account {
            crate::event::validate_account(a)
                .map_err(|e| Failure::usage(format!("--account: {e}")))?;
        }
        Ok(Filter {
            status,
            remediation: self.remediation.clone(),
            account: self.account.clone(),
        })
    }

    /// The one job id named, when no filter is given: the command then acts as it always did,
    /// without listing or asking.
    fn single(&self) -> Option<&str> {
        match self.ids.as_slice() {
            [id] if self.status.is_none()
                && self.remediation.is_none()
                && self.account.is_none() =>
            {
                Some(id)
            }
            _ => None,
        }
    }
}

fn parse_status(s: &str) -> Result<JobStatus> {
    JobStatus::parse(s).ok_or_else(|| {
        let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
        Failure::usage(format!("--status {s:?}: use one of {}", all.join(", ")))
    })
}

/// What a bulk command does to each job it chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bulk {
    Approve,
    Reject,
    Retry,
}

impl Bulk {
    fn verb(self) -> &'static str {
        match self {
            Bulk::Approve => "approve",
            Bulk::Reject => "reject",
            Bulk::Retry => "run again",
        }
    }

    /// Whether a job in `status` can be acted on.
    fn takes(self, status: JobStatus) -> bool {
        match self {
            Bulk::Approve | Bulk::Reject => status == JobStatus::PendingApproval,
            Bulk::Retry => status.claimable(),
        }
    }

    /// Why `job` cannot be acted on, if it cannot: its status, or (to run again) its being an
    /// undo.
    fn refuses(self, job: &Job) -> Option<Failure> {
        match self {
            Bulk::Retry => approval::rerunnable(job).err().map(Failure::from),
            Bulk::Approve | Bulk::Reject => (!self.takes(job.status)).then(|| {
                Failure::usage(format!(
                    "job {} is {}: it cannot be {}",
                    job.id,
                    job.status.as_str(),
                    if self == Bulk::Approve {
                        "approved"
                    } else {
                        "rejected"
                    }
                ))
            }),
        }
    }
}

/// The filters of `select`, checked for `bulk` before anything is read: something must be named,
/// and a `--status` must be one `bulk` can act on.
fn check_select(select: &Select, bulk: Bulk) -> Result<Filter> {
    let filter = select.filter()?;
    if select.ids.is_empty() && filter.is_empty() {
        return Err(Failure::usage(format!(
            "name job ids or choose jobs with --status, --remediation or --account: nothing to {}",
            bulk.verb()
        )));
    }
    if let Some(status) = filter.status
        && !bulk.takes(status)
    {
        return Err(Failure::usage(format!(
            "--status {}: jobs in that status cannot be {}",
            status.as_str(),
            match bulk {
                Bulk::Approve => "approved (only pending-approval ones)",
                Bulk::Reject => "rejected (only pending-approval ones)",
                Bulk::Retry =>
                    "run again (only planned, needs-parameter, failed, off and approved ones)",
            }
        )));
    }
    Ok(filter)
}

/// The jobs `select` chooses for `bulk`: the ids named (each must exist and match `filter`),
/// or every job `filter` matches; only jobs `bulk` can act on, oldest first.
async fn choose(store: &Store, select: &Select, filter: &Filter, bulk: Bulk) -> Result<Vec<Job>> {
    let mut chosen = Vec::new();
    if select.ids.is_empty() {
        chosen = store.jobs().await?;
        chosen.retain(|j| filter.matches(j) && bulk.refuses(j).is_none());
        chosen.reverse();
    } else {
        for id in &select.ids {
            let job = jobs::find(store, id).await?;
            if !filter.matches(&job) {
                return Err(Failure::usage(format!(
                    "job {id} does not match the filters given ({} {} in account {}, {})",
                    job.remediation,
                    job.resource_id,
                    job.account,
                    job.status.as_str()
                )));
            }
            if let Some(refused) = bulk.refuses(&job) {
                return Err(refused);
            }
            chosen.push(job);
        }
    }
    Ok(chosen)
}

/// Goes on only when the operator agrees to `question`: `--yes`, or `y` typed on a terminal.
/// Not on a terminal and without `--yes`, nothing is done (exit 2); a "no" does nothing (exit 1).
pub(super) fn confirm(question: &str, yes: bool) -> Result<()> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(format!(
            "{question} Not on a terminal, so nothing is done without --yes"
        )));
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::failed(format!("reading the answer: {e}")))?;
    if jobs::confirmed(&answer) {
        Ok(())
    } else {
        Err(Failure::failed("not confirmed: nothing was done"))
    }
}

/// One line naming a job, for the lists bulk commands show before asking.
fn job_line(j: &Job) -> String {
    format!(
        "job {}  {}  {} {} in account {}, {}  ({})",
        j.id,
        j.remediation,
        j.resource_type,
        j.resource_id,
        j.account,
        j.region,
        j.status.as_str()
    )
}

/// Approves, rejects or runs again the jobs `select` chooses, after showing them (for an
/// approval, each plan with its hash, which the approval then binds) and asking.
async fn bulk(
    config: &Config,
    select: &Select,
    bulk: Bulk,
    by: Option<String>,
    reason: Option<String>,
    out: OutputArgs,
) -> Result<()> {
    let filter = check_select(select, bulk)?;
    let op = operator(config, by).await?;
    let chosen = choose(&op.store, select, &filter, bulk).await?;
    let action = match bulk {
        Bulk::Approve => "approve",
        Bulk::Reject => "reject",
        Bulk::Retry => "retry",
    };
    if chosen.is_empty() {
        if out.is_json() {
            print_json(&json!({"action": action, "jobs": [], "failed": 0}));
        } else {
            println!("no job matches: nothing to {}", bulk.verb());
        }
        return Ok(());
    }
    // What is asked about is shown to the person asked; in JSON, stdout carries the result only.
    let show = |line: String| {
        if out.is_json() {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    for j in &chosen {
        show(job_line(j));
        if bulk == Bulk::Approve {
            let hash = j.plan_hash.as_deref().unwrap_or("none");
            show(format!("  plan sha256 {hash}"));
            match &j.plan {
                Some(plan) => {
                    for line in render::plan(plan, j.before.as_ref()).lines() {
                        show(format!("  {line}"));
                    }
                }
                None => show("  no plan".into()),
            }
            show(String::new());
        }
    }
    let n = chosen.len();
    let what = match bulk {
        Bulk::Approve => format!("Approve these {n} plans as shown?"),
        Bulk::Reject => format!("Reject these {n} pending plans?"),
        Bulk::Retry => format!("Run these {n} jobs again?"),
    };
    if bulk == Bulk::Approve {
        check_approvers(&op, &chosen.iter().collect::<Vec<_>>()).await?;
    }
    confirm(&what, select.yes)?;
    let ttl = Duration::from_secs(config.approval_ttl_seconds);
    let queue = control_queue(&op.aws, &op.store);
    let requester = match bulk {
        Bulk::Retry => op.caller.arn.clone(),
        Bulk::Approve | Bulk::Reject => String::new(),
    };
    let mut failed = 0;
    let mut results = Vec::new();
    for j in &chosen {
        let result: std::result::Result<(String, Value), crate::jobs::JobError> = async {
            match bulk {
                Bulk::Retry => {
                    approval::retry(&op.store, &op.audit, &queue, &j.id, &requester).await?;
                    Ok((
                        "queued to run again".to_string(),
                        json!({"job_id": j.id, "result": "queued"}),
                    ))
                }
                Bulk::Approve | Bulk::Reject => {
                    let decision = match bulk {
                        // The hash shown is the hash bound: a plan that changed since is refused.
                        Bulk::Approve => Decision::Approve {
                            reason: reason.clone(),
                            plan_hash: j.plan_hash.clone(),
                        },
                        _ => Decision::Reject {
                            reason: reason.clone().unwrap_or_default(),
                        },
                    };
                    let verb = decision.verb();
                    let pending =
                        approval::check(&op.store, &op.audit, &j.id, decision, ttl).await?;
                    let done =
                        approval::decide(&op.store, &op.audit, &queue, pending, &op.by).await?;
                    let hash = done.plan_hash.clone().unwrap_or_default();
                    Ok((
                        format!("plan {} {verb} by {}", render::short_hash(&hash), op.by),
                        decision_json(&done, verb, &op.by),
                    ))
                }
            }
        }
        .await;
        match result {
            Ok((text, value)) => {
                if !out.is_json() {
                    println!("job {}: {text}", j.id);
                }
                results.push(value);
            }
            Err(e) => {
                failed += 1;
                let error = crate::cloud::error_chain(&e);
                eprintln!("job {}: {error}", j.id);
                results.push(json!({"job_id": j.id, "result": "failed", "error": error}));
            }
        }
    }
    if out.is_json() {
        print_json(&json!({"action": action, "jobs": results, "failed": failed}));
    }
    if failed > 0 {
        return Err(Failure::failed(format!(
            "{failed} of {n} jobs could not be {}",
            match bulk {
                Bulk::Approve => "approved",
                Bulk::Reject => "rejected",
                Bulk::Retry => "queued to run again",
            }
        )));
    }
    Ok(())
}

/// A decided job as `jobs approve|reject` print it in JSON: which job, what was decided, on which
/// plan, by whom and when.
fn decision_json(j: &Job, verb: &str, by: &str) -> Value {
    json!({
        "job_id": j.id,
        "result": verb,
        "status": j.status.as_str(),
        "plan_hash": j.plan_hash,
        "by": by,
        "at": j.approved_at.clone().unwrap_or_else(|| j.updated_at.clone()),
    })
}

fn job_json(j: &Job) -> Value {
    let mut v = serde_json::to_value(j).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("status".into(), json!(j.status.as_str()));
        m.insert("mode".into(), json!(j.mode.as_str()));
    }
    v
}

/// The worker's queue, for control messages.
fn control_queue(aws: &aws_config::SdkConfig, store: &Store) -> ControlQueue {
    ControlQueue::new(aws_sdk_sqs::Client::new(aws), &store.names.control)
}

/// With the approver-must-differ rule on, refuses an approval of `job` by `caller` (the
/// caller's AWS identity, never a `--by` label) when that identity asked for the job to run
/// again (`jobs retry`), or when the setting that gives the job's remediation its mode (the
/// account's, else every account's) was last changed by that identity, or by someone who
/// cannot be told apart from it (a `--by` label, or nobody recorded). A mode nobody set (the
/// manifest's default) has no setter to differ from.
fn check_approver(
    snapshot: &crate::state::SettingsSnapshot,
    job: &Job,
    caller: &str,
) -> std::result::Result<(), String> {
    if !snapshot.global.approver_must_differ {
        return Ok(());
    }
    if job.requested_by.as_deref() == Some(caller) {
        return Err(format!(
            "job {}: approval refused: the approver must differ from who requested the job (settings approver-must-differ is on): {caller} ran jobs retry on it; another operator approves it",
            job.id
        ));
    }
    let Some(setting) = [job.account.as_str(), "*"].iter().find_map(|scope| {
        snapshot
            .settings
            .iter()
            .find(|s| s.remediation == job.remediation && s.scope == *scope && s.mode.is_some())
    }) else {
        return Ok(());
    };
    let scope = if setting.scope == "*" {
        "every account".to_string()
    } else {
        format!("account {}", setting.scope)
    };
    let refuse = |why: String| {
        Err(format!(
            "job {}: approval refused: the approver must differ from who set the mode (settings approver-must-differ is on): {why}; another operator approves it",
            job.id
        ))
    };
    match setting.updated_by.as_deref() {
        Some(by) if by == caller => refuse(format!(
            "{caller} set {}'s mode for {scope}",
            job.remediation
        )),
        Some(by) if !by.starts_with("arn:") => refuse(format!(
            "{}'s mode for {scope} was set by {by:?}, which is no AWS identity to compare with (set the mode again without --by)",
            job.remediation
        )),
        None => refuse(format!(
            "who set {}'s mode for {scope} is not recorded",
            job.remediation
        )),
        Some(_) => Ok(()),
    }
}

/// The approver-must-differ rule for the jobs `op` is about to approve: read the settings (an
/// unreadable table refuses, like every gate) and, when the rule is on, the caller's identity.
async fn check_approvers(op: &Operator, jobs: &[&Job]) -> Result<()> {
    let snapshot = op.store.settings().await?;
    if !snapshot.global.approver_must_differ {
        return Ok(());
    }
    for job in jobs {
        check_approver(&snapshot, job, &op.caller.arn).map_err(Failure::failed)?;
    }
    Ok(())
}

/// Approves or rejects job `id`'s pending plan; returns the job as it is now and who decided.
async fn decide(
    config: &Config,
    id: &str,
    by: Option<String>,
    decision: Decision,
) -> Result<(Job, String)> {
    let op = operator(config, by).await?;
    if matches!(decision, Decision::Approve { .. })
        && let Some(job) = op.store.job(id).await?
    {
        check_approvers(&op, &[&job]).await?;
    }
    let Operator {
        aws,
        store,
        audit,
        by,
        ..
    } = op;
    let ttl = Duration::from_secs(config.approval_ttl_seconds);
    let pending = approval::check(&store, &audit, id, decision, ttl).await?;
    let job = approval::decide(&store, &audit, &control_queue(&aws, &store), pending, &by).await?;
    Ok((job, by))
}

pub(super) async fn run(config: &Config, cmd: JobsCommand) -> Result<()> {
    match cmd {
        JobsCommand::List { status, since, out } => {
            let wanted = match status {
                Some(s) => Some(parse_status(&s)?),
                None => None,
            };
            let jobs: Vec<Job> = store(config, &aws_config(config).await?)
                .jobs()
                .await?
                .into_iter()
                .filter(|j| wanted.is_none_or(|w| j.status == w))
                .filter(|j| {
                    since.is_none_or(|s| {
                        crate::clock::parse_stored(&j.created_at).is_some_and(|t| t >= s)
                    })
                })
                .collect();
            if out.is_json() {
                print_json(&jobs.iter().map(job_json).collect::<Vec<_>>());
                return Ok(());
            }
            let now = chrono::Utc::now();
            let rows: Vec<Vec<String>> = jobs
                .iter()
                .map(|j| {
                    let plan = j
                        .plan
                        .as_ref()
                        .map_or("-".to_string(), |p| match p.actions.len() {
                            0 => "none".into(),
                            1 => p.actions[0].summary(),
                            n => format!("{} (+{} more)", p.actions[0].summary(), n - 1),
                        });
                    vec![
                        j.id.clone(),
                        crate::clock::age(&j.created_at, now),
                        j.remediation.clone(),
                        j.account.clone(),
                        render::resource_name(&j.resource_type, &j.resource_id, j.before.as_ref()),
                        j.mode.to_string(),
                        j.status.as_str().to_string(),
                        plan,
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(
                    &[
                        "ID",
                        "AGE",
                        "REMEDIATION",
                        "ACCOUNT",
                        "RESOURCE",
                        "MODE",
                        "STATUS",
                        "PLAN"
                    ],
                    &rows
                )
            );
            Ok(())
        }
        JobsCommand::Show { id, out } => {
            let job = jobs::find(&store(config, &aws_config(config).await?), &id).await?;
            if out.is_json() {
                print_json(&job_json(&job));
                return Ok(());
            }
            println!("job          {}", job.id);
            println!("remediation  {} (mode {})", job.remediation, job.mode);
            let name =
                render::resource_name(&job.resource_type, &job.resource_id, job.before.as_ref());
            println!(
                "resource     {} {}{} in account {}, {}",
                job.resource_type,
                name,
                if name == job.resource_id {
                    String::new()
                } else {
                    format!(" ({})", job.resource_id)
                },
                job.account,
                job.region
            );
            println!(
                "finding      rule {} from {} ({})",
                job.rule,
                job.source,
                job.event_id.as_deref().unwrap_or("no event id")
            );
            println!(
                "status       {}{}",
                job.status.as_str(),
                job.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            let now = chrono::Utc::now();
            println!(
                "created      {} ({} ago)  updated {}  attempts {}",
                job.created_at,
                crate::clock::age(&job.created_at, now),
                job.updated_at,
                job.attempts
            );
            if let Some(sha) = &job.script_sha256 {
                println!("script       sha256 {sha}");
            }
            println!();
            match &job.plan {
                // A dry-run's plan is what would have been done: it never runs as it stands.
                Some(plan) => print!(
                    "{}",
                    render::plan_as(
                        plan,
                        job.before.as_ref(),
                        if job.status == JobStatus::Planned {
                            render::Tense::Would
                        } else {
                            render::Tense::Will
                        }
                    )
                ),
                None => println!("No plan was made."),
            }
            if !job.created.is_empty() {
                println!("\nCreated:");
                for c in &job.created {
                    println!("  + {} by action {} ({})", c.id, c.action + 1, c.kind);
                }
            }
            if let Some(inverse) = job
                .inverse
                .as_ref()
                .filter(|_| job.status == JobStatus::Applied)
            {
                println!("\nUndo would:");
                for a in inverse {
                    println!("  ~ {}", a.summary());
                }
            }
            Ok(())
        }
        JobsCommand::Retry { select, out } => {
            let Some(id) = select.single().map(str::to_string) else {
                return bulk(config, &select, Bulk::Retry, None, None, out).await;
            };
            let op = operator(config, None).await?;
            let queue = control_queue(&op.aws, &op.store);
            approval::retry(&op.store, &op.audit, &queue, &id, &op.by).await?;
            if out.is_json() {
                print_json(
                    &json!({"job_id": id, "result": "queued", "at": crate::clock::now_text()}),
                );
            } else {
                println!(
                    "job {id} queued to run again; the worker re-reads the resource and re-plans"
                );
            }
            Ok(())
        }
        JobsCommand::Approve {
            select,
            by,
            reason,
            plan_hash,
            out,
        } => {
            let Some(id) = select.single().map(str::to_string) else {
                if plan_hash.is_some() {
                    return Err(Failure::usage(
                        "--plan-hash binds one job named by its id; with filters or several ids each plan's hash is shown and bound",
                    ));
                }
                return bulk(config, &select, Bulk::Approve, by, reason, out).await;
            };
            let decision = Decision::Approve { reason, plan_hash };
            let (approved, by) = decide(config, &id, by, decision).await?;
            if out.is_json() {
                print_json(&decision_json(&approved, "approved", &by));
                return Ok(());
            }
            let hash = approved.plan_hash.unwrap_or_default();
            println!(
                "job {id}: plan {} approved by {by}; the worker re-reads the resource and applies the plan only if it is unchanged",
                render::short_hash(&hash)
            );
            Ok(())
        }
        JobsCommand::Undo {
            id,
            by,
            reason,
            force,
            no_exempt,
            exempt_until,
            out,
        } => {
            let aws = aws_config(config).await?;
            let loaded = load_catalog(config)?;
            // One identity call: the caller's account is the context's home, its ARN the actor
            // on the record (`--by` is a label beside it).
            let me = caller(&aws).await?;
            let actor = crate::undo::Actor {
                arn: me.arn.clone(),
                label: by,
            };
            let by = actor.recorded();
            let ctx = build_undo_context(config, &aws, loaded, COMMAND_LEASE, me);
            let request = crate::undo::Request {
                job_id: &id,
                actor: &actor,
                reason: &reason,
                force,
                exempt: !no_exempt,
                exempt_until: exempt_until.as_deref(),
            };
            let result = crate::undo::undo(&ctx, &request).await;
            ctx.audit.anchor().await?;
            let done = result?;
            // The resource is restored, but the job could not be marked undone: said, exit 1.
            let unmarked = done.unmarked.as_ref().map(|why| {
                Failure::failed(format!(
                    "job {id} is not marked undone: {why}; the resource is restored all the same (undo job {}, `rectify jobs show {id}`). While the job is still applied, `rectify jobs undo {id}` marks it without changing the resource again",
                    done.undo_job.id
                ))
            });
            if out.is_json() {
                print_json(&json!({
                    "job_id": id,
                    "result": if unmarked.is_some() { "undone-not-marked" } else { "undone" },
                    "undo_job_id": done.undo_job.id,
                    "by": by,
                    "at": done.undo_job.updated_at,
                    "actions": done
                        .undo_job
                        .plan
                        .iter()
                        .flat_map(|p| p.actions.iter())
                        .map(crate::action::Action::summary)
                        .collect::<Vec<_>>(),
                    "as_before": done.exact,
                    "resumed": done.resumed,
                    "exempt_until": match &done.exempted {
                        Some(crate::undo::Exempted::Added(until)) => Some(until.as_str()),
                        _ => None,
                    },
                    "exemption_kept": done.exempted == Some(crate::undo::Exempted::Kept),
                }));
                return unmarked.map_or(Ok(()), Err);
            }
            if done.resumed {
                println!(
                    "job {id}: undo job {} had already applied the inverse and recorded it, at {}; nothing is applied again{}; {}",
                    done.undo_job.id,
                    done.undo_job.updated_at,
                    if unmarked.is_none() {
                        format!(", and the job is now marked undone by {by}")
                    } else {
                        String::new()
                    },
                    if done.exact {
                        "the resource is as it was before"
                    } else {
                        "a later change that undo kept is still there, so the resource differs from its state before the job"
                    }
                );
            } else if done.exact {
                println!(
                    "job {id} undone by {by} (undo job {}): the resource is as it was before",
                    done.undo_job.id
                );
            } else {
                println!(
                    "job {id} undone by {by} (undo job {}), forced: the later change the undo did not put back is kept, so the resource differs from its state before the job (`rectify jobs show {}`)",
                    done.undo_job.id, done.undo_job.id
                );
            }
            // What this run applied; a resumed undo applied nothing.
            if !done.resumed {
                for a in done.undo_job.plan.iter().flat_map(|p| p.actions.iter()) {
                    println!("  ~ {}", a.summary());
                }
            }
            match &done.exempted {
                Some(crate::undo::Exempted::Added(until)) => println!(
                    "{} is now exempt from {} until {until} (remove with `rectify exemptions remove --remediation {} --resource {} --account {}`)",
                    done.undo_job.resource_id,
                    done.undo_job.remediation,
                    done.undo_job.remediation,
                    done.undo_job.resource_id,
                    done.undo_job.account
                ),
                Some(crate::undo::Exempted::Kept) => println!(
                    "{} already has an exemption from {} that lasts as long or longer: it is kept (`rectify exemptions list`)",
                    done.undo_job.resource_id, done.undo_job.remediation
                ),
                None => {}
            }
            unmarked.map_or(Ok(()), Err)
        }
        JobsCommand::Reject {
            select,
            by,
            reason,
            out,
        } => {
            let Some(id) = select.single().map(str::to_string) else {
                return bulk(config, &select, Bulk::Reject, by, Some(reason), out).await;
            };
            let (rejected, by) = decide(config, &id, by, Decision::Reject { reason }).await?;
            if out.is_json() {
                print_json(&decision_json(&rejected, "rejected", &by));
                return Ok(());
            }
            println!("job {id} rejected by {by}; it will not be applied");
            Ok(())
        }
    }
}

#[cfg(test)]
mod approver_tests {
    use super::*;
    use crate::catalog::Mode;
    use crate::state::{Global, Setting, SettingsSnapshot};

    fn job() -> Job {
        Job::sample(JobStatus::PendingApproval)
    }

    fn setting(scope: &str, mode: Option<Mode>, by: Option<&str>) -> Setting {
        Setting {
            remediation: "s3-block-public-access".into(),
            scope: scope.into(),
            mode,
            updated_by: by.map(str::to_string),
            ..Setting::default()
        }
    }

    fn snapshot(on: bool, settings: Vec<Setting>) -> SettingsSnapshot {
        SettingsSnapshot::new(
            settings,
            Global {
                approver_must_differ: on,
                ..Global::default()
            },
            Vec::new(),
        )
    }

    const ALICE: &str = "arn:aws:sts::123456789012:assumed-role/ops/alice";
    const BOB: &str = "arn:aws:sts::123456789012:assumed-role/ops/bob";

    #[test]
    fn the_mode_setter_cannot_approve_when_approvers_must_differ() {
        let global = setting("*", Some(Mode::Approval), Some(ALICE));
        // Off, anyone approves.
        assert!(check_approver(&snapshot(false, vec![global.clone()]), &job(), ALICE).is_ok());
        let on = snapshot(true, vec![global.clone()]);
        let refused = check_approver(&on, &job(), ALICE).unwrap_err();
        assert!(
            refused.contains(ALICE) && refused.contains("every account"),
            "{refused}"
        );
        assert!(check_approver(&on, &job(), BOB).is_ok());
        // The account's setting gives the mode, so its setter is the one compared.
        let account = setting("111122223333", Some(Mode::Approval), Some(BOB));
        let on = snapshot(true, vec![global, account]);
        assert!(check_approver(&on, &job(), ALICE).is_ok());
        assert!(check_approver(&on, &job(), BOB).is_err());
        // A setting of the account without a mode does not give the mode.
        let params_only = setting("111122223333", None, Some(BOB));
        let on = snapshot(
            true,
            vec![setting("*", Some(Mode::Approval), Some(ALICE)), params_only],
        );
        assert!(check_approver(&on, &job(), BOB).is_ok());
        assert!(check_approver(&on, &job(), ALICE).is_err());
    }

    #[test]
    fn a_setter_that_cannot_be_compared_refuses_the_approval() {
        let label = snapshot(
            true,
            vec![setting("*", Some(Mode::Approval), Some("alice"))],
        );
        let refused = check_approver(&label, &job(), BOB).unwrap_err();
        assert!(refused.contains("no AWS identity"), "{refused}");
        let nobody = snapshot(true, vec![setting("*", Some(Mode::Approval), None)]);
        assert!(check_approver(&nobody, &job(), BOB).is_err());
        // The manifest's default mode was set by nobody: nothing to differ from.
        assert!(check_approver(&snapshot(true, Vec::new()), &job(), BOB).is_ok());
    }

    #[test]
    fn who_requested_the_job_cannot_approve_it_when_approvers_must_differ() {
        let requested = Job {
            requested_by: Some(ALICE.into()),
            ..job()
        };
        let set_by_bob = vec![setting("*", Some(Mode::Approval), Some(BOB))];
        assert!(check_approver(&snapshot(false, set_by_bob.clone()), &requested, ALICE).is_ok());
        let on = snapshot(true, set_by_bob.clone());
        let refused = check_approver(&on, &requested, ALICE).unwrap_err();
        assert!(
            refused.contains("requested the job") && refused.contains(ALICE),
            "{refused}"
        );
        // Nobody else is refused for it, and the mode's setter still is.
        let carol = "arn:aws:sts::123456789012:assumed-role/ops/carol";
        assert!(check_approver(&on, &requested, carol).is_ok());
        assert!(check_approver(&on, &requested, BOB).is_err());
        // With the manifest's default mode, the requester alone is refused.
        let default_mode = snapshot(true, Vec::new());
        assert!(check_approver(&default_mode, &requested, ALICE).is_err());
        assert!(check_approver(&default_mode, &requested, BOB).is_ok());
    }
}
