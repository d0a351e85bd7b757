//! `rectify jobs`: list, show, approve, reject, retry and undo jobs.

use std::time::Duration;

use clap::Subcommand;
use serde_json::{Value, json};

use super::{Failure, Operator, Result, operator, print_json};
use crate::app::{COMMAND_LEASE, aws_config, build_undo_context, caller, load_catalog, store};
use crate::config::Config;
use crate::jobs::approval::{self, Decision};
use crate::jobs::{self, ControlQueue};
use crate::render;
use crate::state::{Job, JobStatus, Store};

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Jobs, newest first.
    List {
        /// Only jobs with this status (planned, applied, no-op, failed, failed-verify,
        /// needs-parameter, pending-approval, approval-expired, off, in-progress).
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One job: its resource, outcome and plan as a readable diff.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Run a job again through every gate (after a change of mode or parameters, or an
    /// approved job whose approval message was lost or dead-lettered).
    Retry { id: String },
    /// Approve a job's pending plan: the worker re-reads the resource and applies the plan
    /// only if it is still the one approved.
    Approve {
        id: String,
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        reason: Option<String>,
        /// Approve only if the pending plan has this sha256 (as `jobs show` prints it; a
        /// prefix of at least 12 characters is enough).
        #[arg(long)]
        plan_hash: Option<String>,
    },
    /// Undo an applied job: apply the inverse recomputed from its before-state (refused when it
    /// differs from the one recorded), through the operator's role in the member account; check
    /// the resource is as it was before the job, and exempt the resource from the remediation
    /// until --exempt-until (unless --no-exempt). Refuses when rectify is paused, the account is
    /// not allowed, or the resource changed since the job (showing the difference, unless
    /// --force). The record names the caller's AWS identity.
    Undo {
        id: String,
        /// A label recorded beside the caller's AWS identity (never instead of it).
        #[arg(long)]
        by: Option<String>,
        /// The last day of the exemption the undo adds, YYYY-MM-DD [default: 30 days on].
        #[arg(long, value_name = "YYYY-MM-DD", conflicts_with = "no_exempt")]
        exempt_until: Option<String>,
        #[arg(long)]
        reason: String,
        /// Undo even though the resource changed since the job.
        #[arg(long)]
        force: bool,
        /// Do not exempt the resource (the next event may fix it again).
        #[arg(long)]
        no_exempt: bool,
    },
    /// Reject a job's pending plan; it is never applied.
    Reject {
        id: String,
        #[arg(long)]
        by: Option<String>,
        #[arg(long)]
        reason: String,
    },
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

/// Approves or rejects job `id`'s pending plan; returns the job as it is now and who decided.
async fn decide(
    config: &Config,
    id: &str,
    by: Option<String>,
    decision: Decision,
) -> Result<(Job, String)> {
    let Operator {
        aws,
        store,
        audit,
        by,
    } = operator(config, by).await?;
    let ttl = Duration::from_secs(config.approval_ttl_seconds);
    let pending = approval::check(&store, &audit, id, decision, ttl).await?;
    let job = approval::decide(&store, &audit, &control_queue(&aws, &store), pending, &by).await?;
    Ok((job, by))
}

pub(super) async fn run(config: &Config, cmd: JobsCommand) -> Result<()> {
    match cmd {
        JobsCommand::List { status, json } => {
            let wanted = match status {
                Some(s) => Some(JobStatus::parse(&s).ok_or_else(|| {
                    let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                    Failure::usage(format!("--status {s:?}: use one of {}", all.join(", ")))
                })?),
                None => None,
            };
            let jobs: Vec<Job> = store(config, &aws_config().await?)
                .jobs()
                .await?
                .into_iter()
                .filter(|j| wanted.is_none_or(|w| j.status == w))
                .collect();
            if json {
                print_json(&jobs.iter().map(job_json).collect::<Vec<_>>());
                return Ok(());
            }
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
                        j.created_at.get(..19).unwrap_or(&j.created_at).to_string(),
                        j.remediation.clone(),
                        j.account.clone(),
                        j.resource_id.clone(),
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
                        "CREATED",
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
        JobsCommand::Show { id, json } => {
            let job = jobs::find(&store(config, &aws_config().await?), &id).await?;
            if json {
                print_json(&job_json(&job));
                return Ok(());
            }
            println!("job          {}", job.id);
            println!("remediation  {} (mode {})", job.remediation, job.mode);
            println!(
                "resource     {} {} in account {}, {}",
                job.resource_type, job.resource_id, job.account, job.region
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
            println!(
                "created      {}  updated {}  attempts {}",
                job.created_at, job.updated_at, job.attempts
            );
            if let Some(sha) = &job.script_sha256 {
                println!("script       sha256 {sha}");
            }
            println!();
            match &job.plan {
                Some(plan) => print!("{}", render::plan(plan, job.before.as_ref())),
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
        JobsCommand::Retry { id } => {
            let aws = aws_config().await?;
            let store = store(config, &aws);
            approval::retry(&store, &control_queue(&aws, &store), &id).await?;
            println!("job {id} queued to run again; the worker re-reads the resource and re-plans");
            Ok(())
        }
        JobsCommand::Approve {
            id,
            by,
            reason,
            plan_hash,
        } => {
            let decision = Decision::Approve { reason, plan_hash };
            let (approved, by) = decide(config, &id, by, decision).await?;
            let hash = approved.plan_hash.unwrap_or_default();
            println!(
                "job {id}: plan {} approved by {by}; the worker re-reads the resource and applies the plan only if it is unchanged",
                &hash[..12.min(hash.len())]
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
        } => {
            let aws = aws_config().await?;
            let loaded = load_catalog(config)?;
            // One identity call: the caller's account is the context's home, its ARN the actor
            // on the record (`--by` is a label beside it).
            let me = caller(&aws).await?;
            let actor = crate::undo::Actor {
                arn: me.arn,
                label: by,
            };
            let by = actor.recorded();
            let ctx = build_undo_context(config, &aws, loaded, COMMAND_LEASE, me.account);
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
            println!(
                "job {id} undone by {by} (undo job {}): the resource is as it was before",
                done.undo_job.id
            );
            for a in done.undo_job.plan.iter().flat_map(|p| p.actions.iter()) {
                println!("  ~ {}", a.summary());
            }
            if let Some(until) = &done.exempted {
                println!(
                    "{} is now exempt from {} until {until} (remove with `rectify exemptions remove --remediation {} --resource {} --account {}`)",
                    done.undo_job.resource_id,
                    done.undo_job.remediation,
                    done.undo_job.remediation,
                    done.undo_job.resource_id,
                    done.undo_job.account
                );
            }
            Ok(())
        }
        JobsCommand::Reject { id, by, reason } => {
            let (_, by) = decide(config, &id, by, Decision::Reject { reason }).await?;
            println!("job {id} rejected by {by}; it will not be applied");
            Ok(())
        }
    }
}
