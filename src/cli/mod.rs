//! The command line: one binary, subcommands a person can guess.
//!
//! Each command group has its file, holding its arguments and its handler: parse, call into the
//! library ([`crate::app`], [`crate::jobs`], [`crate::settings`], [`crate::source`], …), render.
//!
//! Exit codes: 0 success, 1 a check that failed (`audit verify`, `catalog test`) or an AWS call
//! that failed, 2 bad usage or input, with a message that names what is wrong.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Parser, Subcommand};

use crate::app::{AppError, aws_config, caller, store};
use crate::audit::AuditWriter;
use crate::cloud::{CloudError, error_chain};
use crate::config::{Config, Overrides};
use crate::jobs::JobError;
use crate::settings::SettingsError;
use crate::source::QueueError;
use crate::state::{StateError, Store};
use crate::undo::UndoError;

mod audit;
mod bootstrap;
mod catalog;
mod control;
mod dlq;
mod doctor;
mod exemptions;
mod jobs;
mod settings;
mod sweep;
mod worker;

const ABOUT: &str = "Corrective guardrails for AWS Organizations: AWS Config findings in, planned, gated, verified and audited fixes out.";

const LONG_ABOUT: &str = "\
Corrective guardrails for AWS Organizations.

A worker polls an SQS queue of AWS Config (and Security Hub) non-compliance events, reads each
resource live, lets the remediation's script plan a fix, gates it through the mode an operator
chose (off, dry-run, approval, enforce), applies it, reads the resource again to verify, and
writes a hash-chained audit record.

Getting started:
  rectify bootstrap                       create the queue, DLQ and tables
  rectify catalog list                    the remediations and their triggers
  rectify worker                          run (every remediation starts in dry-run)
  rectify jobs list                       what was planned or done
  rectify settings set NAME --mode enforce

AWS access uses the standard credential chain; AWS_ENDPOINT_URL points every client at a local
emulator. Configuration: --config FILE (TOML), RECTIFY_* variables, then flags, each overriding
the one before.";

#[derive(Debug, Parser)]
#[command(name = "rectify", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (keys: prefix, role_name, operator_role_name, external_id,
    /// remediations, log_format, [worker], [audit], [script]).
    #[arg(long, env = "RECTIFY_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Prefix of the queue, DLQ and table names: <prefix>-events, <prefix>-jobs, … [default: rectify]
    #[arg(long, env = "RECTIFY_PREFIX", global = true)]
    pub prefix: Option<String>,
    /// Role assumed in member accounts [default: rectify-remediation]
    #[arg(long, env = "RECTIFY_ROLE_NAME", global = true)]
    pub role_name: Option<String>,
    /// Role assumed in member accounts by `rectify jobs undo`: it holds the inverses the
    /// worker's role does not [default: rectify-operator]
    #[arg(long, env = "RECTIFY_OPERATOR_ROLE_NAME", global = true)]
    pub operator_role_name: Option<String>,
    /// External id presented when assuming the member role.
    #[arg(
        long,
        env = "RECTIFY_EXTERNAL_ID",
        global = true,
        hide_env_values = true
    )]
    pub external_id: Option<String>,
    /// A directory of remediations that add to or override the embedded catalog.
    #[arg(long, env = "RECTIFY_REMEDIATIONS", global = true, value_name = "DIR")]
    pub remediations: Option<PathBuf>,
    /// Log format on stderr: text or json [default: text on a terminal, json otherwise]
    #[arg(long, env = "RECTIFY_LOG_FORMAT", global = true)]
    pub log_format: Option<String>,
    /// How long a plan waits for an approval before it expires, in seconds [default: 86400]
    #[arg(long, env = "RECTIFY_APPROVAL_TTL_SECONDS", global = true)]
    pub approval_ttl_seconds: Option<u64>,
    /// SNS topic told of pending approvals, applied and failed fixes, and tripped breakers.
    #[arg(long, env = "RECTIFY_NOTIFY_TOPIC_ARN", global = true)]
    pub notify_topic_arn: Option<String>,
    /// The worker's liveness file, touched after every poll [default: $TMPDIR/rectify-<prefix>.alive]
    #[arg(
        long,
        env = "RECTIFY_LIVENESS_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub liveness_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the queue, its DLQ and the tables, or find them (idempotent).
    Bootstrap(bootstrap::BootstrapArgs),
    /// Poll the queue and remediate (runs until SIGINT/SIGTERM, or with --once until drained).
    Worker(worker::WorkerArgs),
    /// Modes, parameters and triggers of each remediation.
    #[command(subcommand)]
    Settings(settings::SettingsCommand),
    /// Jobs: one finding handled by one remediation.
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// The remediations, their test cases and the actions they may take.
    #[command(subcommand)]
    Catalog(catalog::CatalogCommand),
    /// Plan a remediation against a resource file, offline (nothing is read from or sent to AWS).
    Plan(catalog::PlanArgs),
    /// Messages in the dead-letter queue.
    #[command(subcommand)]
    Dlq(dlq::DlqCommand),
    /// Exempt resources from a remediation (with an owner, a reason and an optional end).
    #[command(subcommand)]
    Exemptions(exemptions::ExemptionsCommand),
    /// Stop every change in the Organization at once; jobs are still planned and recorded.
    Pause(control::PauseArgs),
    /// Let changes happen again after `pause`.
    Resume(control::ResumeArgs),
    /// Exit 0 when the worker polled recently (its liveness file is fresh), 1 when polling has
    /// stalled or never started: the container health check.
    Healthcheck(worker::HealthcheckArgs),
    /// Find violations no event announced: enumerate each remediation's resources and feed
    /// the non-compliant ones through the same gates.
    Sweep(sweep::SweepArgs),
    /// Check the deployment, one line per check: queues, tables, the allow-list, the member
    /// role in each allowed account (AssumeRole and one harmless read) and the catalog's
    /// permissions against what it allows (IAM policy simulation). Exit 1 when any fails.
    Doctor(doctor::DoctorArgs),
}

/// An error with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// The one rule for a library error's exit code: 2 when the operator's input is at fault
/// (`usage`, as the error type says), else 1 (AWS or the state store); the message is the
/// error with its causes.
fn blame(usage: bool, e: &dyn std::error::Error) -> Failure {
    Failure {
        code: if usage { 2 } else { 1 },
        message: error_chain(e),
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Failure {
        blame(e.is_usage(), &e)
    }
}

impl From<QueueError> for Failure {
    fn from(e: QueueError) -> Failure {
        blame(e.is_usage(), &e)
    }
}

impl From<JobError> for Failure {
    fn from(e: JobError) -> Failure {
        blame(e.is_usage(), &e)
    }
}

impl From<SettingsError> for Failure {
    fn from(e: SettingsError) -> Failure {
        blame(e.is_usage(), &e)
    }
}

impl From<UndoError> for Failure {
    fn from(e: UndoError) -> Failure {
        blame(e.is_usage(), &e)
    }
}

/// AWS failed: never the operator's input.
impl From<CloudError> for Failure {
    fn from(e: CloudError) -> Failure {
        blame(false, &e)
    }
}

/// The state store failed: never the operator's input.
impl From<StateError> for Failure {
    fn from(e: StateError) -> Failure {
        blame(false, &e)
    }
}

impl Cli {
    /// The configuration the flags, environment and file give.
    pub fn config(&self) -> Result<Config> {
        let worker = match &self.command {
            Command::Worker(w) => Some(w),
            _ => None,
        };
        Config::load(
            self.global.config.as_deref(),
            Overrides {
                prefix: self.global.prefix.clone(),
                role_name: self.global.role_name.clone(),
                operator_role_name: self.global.operator_role_name.clone(),
                external_id: self.global.external_id.clone(),
                remediations: self.global.remediations.clone(),
                log_format: self.global.log_format.clone(),
                concurrency: worker.and_then(|w| w.concurrency),
                wait_seconds: worker.and_then(|w| w.wait_seconds),
                approval_ttl_seconds: self.global.approval_ttl_seconds,
                notify_topic_arn: self.global.notify_topic_arn.clone(),
                liveness_file: self.global.liveness_file.clone(),
            },
        )
        .map_err(|e| Failure::usage(e.to_string()))
    }
}

/// Runs a command.
pub async fn run(cli: Cli, config: Config, started: Instant) -> Result<()> {
    match cli.command {
        Command::Bootstrap(args) => bootstrap::run(&config, args).await,
        Command::Worker(args) => worker::run(config, args, started).await,
        Command::Settings(cmd) => settings::run(&config, cmd).await,
        Command::Jobs(cmd) => jobs::run(&config, cmd).await,
        Command::Audit(cmd) => audit::run(&config, cmd).await,
        Command::Catalog(cmd) => catalog::run(&config, cmd),
        Command::Plan(args) => catalog::plan(&config, args),
        Command::Dlq(cmd) => dlq::run(&config, cmd).await,
        Command::Exemptions(cmd) => exemptions::run(&config, cmd).await,
        Command::Pause(args) => control::pause(&config, args).await,
        Command::Resume(args) => control::resume(&config, args).await,
        Command::Sweep(args) => sweep::run(&config, args).await,
        Command::Healthcheck(args) => worker::healthcheck(&config, args),
        Command::Doctor(args) => doctor::run(&config, args).await,
    }
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// What a command that changes something needs: AWS, the state tables, an audit writer of its
/// own chain, and who is making the change.
struct Operator {
    aws: aws_config::SdkConfig,
    store: Store,
    audit: AuditWriter,
    by: String,
}

/// The [`Operator`] of a change: `by` is `--by`, or the caller's AWS identity when it is not
/// given.
async fn operator(config: &Config, by: Option<String>) -> Result<Operator> {
    let aws = aws_config().await?;
    let by = match by {
        Some(b) => b,
        None => caller(&aws).await?.arn,
    };
    let store = store(config, &aws);
    let audit = AuditWriter::for_command(store.client().clone(), store.names.audit.clone());
    Ok(Operator {
        aws,
        store,
        audit,
        by,
    })
}
