//! The command line: one binary, subcommands a person can guess.
//!
//! Exit codes: 0 success, 1 a check that failed (`audit verify`, `catalog test`) or an AWS call
//! that failed, 2 bad usage or input, with a message that names what is wrong.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::action::{ACTION_KINDS, Plan};
use crate::audit::{self, AuditWriter, Record};
use crate::bootstrap::bootstrap;
use crate::catalog::{Catalog, Mode, run_cases};
use crate::cloud::{Cloud, classify, error_chain};
use crate::config::{Config, Overrides};
use crate::controller::{CatalogHandle, Context, approval_expired, expire, job_record, today};
use crate::event::validate_account;
use crate::notify::Notifier;
use crate::render;
use crate::script::hardened_engine;
use crate::state::{Exemption, Job, JobStatus, Names, Setting, SettingsCache, StateError, Store};
use crate::worker::{self, Queues, REASON_ATTRIBUTE, WorkerOptions};

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
    /// TOML configuration file (keys: prefix, role_name, external_id, remediations, log_format,
    /// [worker], [script]).
    #[arg(long, env = "RECTIFY_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Prefix of the queue, DLQ and table names: <prefix>-events, <prefix>-jobs, … [default: rectify]
    #[arg(long, env = "RECTIFY_PREFIX", global = true)]
    pub prefix: Option<String>,
    /// Role assumed in member accounts [default: rectify-remediation]
    #[arg(long, env = "RECTIFY_ROLE_NAME", global = true)]
    pub role_name: Option<String>,
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
    Bootstrap {
        /// Visibility timeout of the queue in seconds: how long a message is hidden while a
        /// worker holds it, and how long a job's claim lasts.
        #[arg(long, default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..=43200))]
        visibility_timeout: u32,
    },
    /// Poll the queue and remediate (runs until SIGINT/SIGTERM, or with --once until drained).
    Worker(WorkerArgs),
    /// Modes, parameters and triggers of each remediation.
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Jobs: one finding handled by one remediation.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// The remediations, their test cases and the actions they may take.
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Plan a remediation against a resource file, offline (nothing is read from or sent to AWS).
    Plan(PlanArgs),
    /// Messages in the dead-letter queue.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Exempt resources from a remediation (with an owner, a reason and an optional end).
    #[command(subcommand)]
    Exemptions(ExemptionsCommand),
    /// Stop every change in the Organization at once; jobs are still planned and recorded.
    Pause {
        /// Why (shown on every job held while paused).
        #[arg(long)]
        reason: String,
        /// Who [default: the caller's AWS identity]
        #[arg(long)]
        by: Option<String>,
    },
    /// Let changes happen again after `pause`.
    Resume {
        #[arg(long)]
        by: Option<String>,
    },
    /// Exit 0 when the worker polled recently (its liveness file is fresh), 1 when polling has
    /// stalled or never started: the container health check.
    Healthcheck {
        /// The longest time since the last poll that counts as healthy, in seconds (a long poll
        /// waits 20).
        #[arg(long, default_value_t = 90)]
        max_age: u64,
    },
    /// Find violations no event announced: enumerate each remediation's resources and feed
    /// the non-compliant ones through the same gates.
    Sweep(SweepArgs),
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Accounts to sweep (repeatable) [default: the caller's own account]
    #[arg(long = "account")]
    pub accounts: Vec<String>,
    /// Regions to sweep (repeatable) [default: the configured AWS region]
    #[arg(long = "region")]
    pub regions: Vec<String>,
    /// Only this remediation [default: all]
    #[arg(long)]
    pub remediation: Option<String>,
    /// Change nothing and record nothing, whatever the modes: print what enforcing would
    /// change, per remediation and account. Read it before switching a remediation to enforce.
    #[arg(long)]
    pub what_if: bool,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ExemptionsCommand {
    /// Exempt a resource from a remediation.
    Add {
        #[arg(long)]
        remediation: String,
        /// The resource id as findings name it (bucket name, sg-…, vpce-…, IAM user id or name).
        #[arg(long)]
        resource: String,
        /// Only in this account [default: any account]
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        by: Option<String>,
        /// Last day it holds, YYYY-MM-DD (UTC) [default: until removed]
        #[arg(long)]
        until: Option<String>,
    },
    /// Every exemption record, with whether it still holds.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an exemption record.
    Remove {
        #[arg(long)]
        remediation: String,
        #[arg(long)]
        resource: String,
        #[arg(long)]
        account: Option<String>,
        #[arg(long)]
        by: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Drain the queue and exit: poll with a short wait, exit 0 once a receive returns nothing
    /// and all work in flight is done.
    #[arg(long)]
    pub once: bool,
    /// Messages worked on at once [default: 8]
    #[arg(long, env = "RECTIFY_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Long-poll wait in seconds, 0–20 [default: 20; 1 with --once]
    #[arg(long)]
    pub wait_seconds: Option<i32>,
    /// Also sweep the worker's own account and region every this many seconds (not with
    /// --once) [default: off]
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(60..))]
    pub sweep_every: Option<u64>,
}

#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Each remediation's mode, parameters and triggers, with where each comes from.
    List {
        #[arg(long)]
        json: bool,
    },
    /// The account allow-list: when it is not empty, findings from other accounts end
    /// `account-not-allowed` and are never acted on.
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Set a remediation's mode, parameters or extra triggers, for every account or one.
    ///
    /// Examples:
    ///   rectify settings set s3-block-public-access --mode enforce
    ///   rectify settings set vpce-restrict-policy --param organization_id=o-a1b2c3d4e5
    ///   rectify settings set vpce-restrict-policy --trigger corp-endpoint-policy-check
    ///   rectify settings set iam-deactivate-stale-keys --account 111122223333 --mode off
    ///
    /// Config does not resend events for a violation that did not change: after switching a
    /// remediation to enforce, retry its planned jobs (`rectify jobs retry ID`).
    #[command(verbatim_doc_comment)]
    Set(SetArgs),
}

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// The accounts rectify may act in (empty: all).
    List,
    /// Allow these accounts.
    Add {
        accounts: Vec<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Stop allowing these accounts.
    Remove {
        accounts: Vec<String>,
        #[arg(long)]
        by: Option<String>,
    },
    /// Empty the allow-list: every account is allowed again.
    Clear {
        #[arg(long)]
        by: Option<String>,
    },
}

/// `on` or `off`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    /// The remediation (see `rectify catalog list`).
    pub remediation: String,
    /// off, dry-run, approval or enforce.
    #[arg(long)]
    pub mode: Option<Mode>,
    /// A parameter as KEY=VALUE (VALUE is read as JSON when it parses, else as text); repeat
    /// for several. An empty VALUE removes the override.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// An extra Config rule name that triggers this remediation (custom rules have any name).
    #[arg(long = "trigger", value_name = "RULE")]
    pub triggers: Vec<String>,
    /// Apply to this account only (12 digits) instead of every account.
    #[arg(long)]
    pub account: Option<String>,
    /// Whether a `rectify:exempt` tag on a resource exempts it from this remediation.
    #[arg(long, value_enum)]
    pub tag_exemptions: Option<OnOff>,
    /// Blast-radius breaker: at most this many enforcements per window [default: 20]
    #[arg(long)]
    pub breaker_limit: Option<u32>,
    /// Blast-radius breaker window in seconds [default: 3600]
    #[arg(long)]
    pub breaker_window: Option<u64>,
    /// Who is making the change [default: the caller's AWS identity]
    #[arg(long)]
    pub by: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Jobs, newest first.
    List {
        /// Only jobs with this status (planned, applied, no-op, failed, failed-verify,
        /// needs-parameter, pending-approval, off, in-progress).
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
    /// Run a job again through every gate (after a change of mode or parameters).
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
    /// Undo an applied job: apply the inverse it recorded, check the resource is as it was
    /// before the job, and exempt the resource from the remediation (unless --no-exempt).
    /// Refuses when the resource changed since the job, showing the difference, unless --force.
    Undo {
        id: String,
        #[arg(long)]
        by: Option<String>,
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

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Audit records, oldest first.
    List {
        #[arg(long)]
        resource: Option<String>,
        #[arg(long)]
        remediation: Option<String>,
        /// Only records at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// One record in full.
    Show { id: String },
    /// Check every chain; exit 1 naming each record that was changed, removed, inserted or
    /// reordered, or cut off after its anchor. With --export-bucket, also check the S3 export
    /// and that the table still matches it.
    Verify {
        #[arg(long, env = "RECTIFY_AUDIT_EXPORT_BUCKET")]
        export_bucket: Option<String>,
        /// Key prefix of the exported objects.
        #[arg(long, default_value = "rectify-audit/")]
        export_key_prefix: String,
    },
    /// Write every chain to S3 as JSON lines (<prefix><chain>.jsonl); with Object Lock on the
    /// bucket, each object is retained in governance mode.
    Export {
        #[arg(long, env = "RECTIFY_AUDIT_EXPORT_BUCKET")]
        bucket: String,
        /// Key prefix of the objects.
        #[arg(long, default_value = "rectify-audit/")]
        key_prefix: String,
        /// Object Lock retention, in days.
        #[arg(long, default_value_t = 365)]
        retention_days: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum CatalogCommand {
    /// The remediations: resource type, triggers, actions, default mode, origin.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Run every test case (tests/*.json) of every remediation; exit 1 on a failure.
    Test {
        /// A directory of remediations to test instead of only the embedded catalog (it is
        /// loaded over the embedded one, as the worker would load it).
        dir: Option<PathBuf>,
    },
    /// Every action kind, with the IAM permission it needs.
    Actions {
        #[arg(long)]
        json: bool,
    },
    /// The IAM permissions rectify needs: in member accounts (observers and actions) and in the
    /// controller account (queue, tables, topic, assume-role, audit export). The deploy
    /// templates are checked against this list.
    Permissions {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The remediation to plan with.
    #[arg(long)]
    pub remediation: String,
    /// A JSON file holding the resource as the observer would give it (see
    /// docs/writing-remediations.md), or a test case file (its `resource` and `params` are used).
    #[arg(long, value_name = "FILE")]
    pub resource: PathBuf,
    /// A parameter as KEY=VALUE, overriding the manifest's default; repeatable.
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Messages in the DLQ with the reason rectify gave and their receive count (each receive
    /// by a listing counts too).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Move messages from the DLQ back to the queue (all, or those named with --id), once the
    /// cause is fixed. Each is sent to the queue before it is deleted from the DLQ.
    Redrive {
        /// A message id as `dlq list` shows it; repeatable [default: every message]
        #[arg(long = "id")]
        ids: Vec<String>,
    },
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

impl<E: std::error::Error> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::failed(error_chain(&e))
    }
}

type Result<T> = std::result::Result<T, Failure>;

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

async fn aws_config() -> Result<aws_config::SdkConfig> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    if config.region().is_none() {
        return Err(Failure::usage(
            "no AWS region: set AWS_REGION (or a region in the AWS config file)",
        ));
    }
    Ok(config)
}

fn store(config: &Config, aws: &aws_config::SdkConfig) -> Store {
    Store::new(
        aws_sdk_dynamodb::Client::new(aws),
        Names::new(&config.prefix),
    )
}

fn load_catalog(config: &Config) -> Result<(Arc<rhai::Engine>, Arc<Catalog>)> {
    let engine = Arc::new(hardened_engine(&config.limits));
    let catalog = Catalog::load(&engine, config.remediations.as_deref())
        .map_err(|e| Failure::usage(format!("the catalog cannot be loaded: {e}")))?;
    Ok((engine, Arc::new(catalog)))
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Runs a command.
pub async fn run(cli: Cli, config: Config, started: Instant) -> Result<()> {
    match cli.command {
        Command::Bootstrap { visibility_timeout } => {
            let aws = aws_config().await?;
            let made = bootstrap(
                &aws_sdk_sqs::Client::new(&aws),
                &aws_sdk_dynamodb::Client::new(&aws),
                &Names::new(&config.prefix),
                visibility_timeout,
            )
            .await?;
            let rows: Vec<Vec<String>> = made
                .iter()
                .map(|m| {
                    vec![
                        m.kind.into(),
                        m.name.clone(),
                        m.state.into(),
                        m.detail.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(&["KIND", "NAME", "STATE", "DETAIL"], &rows)
            );
            Ok(())
        }
        Command::Worker(args) => run_worker(config, args, started).await,
        Command::Settings(SettingsCommand::List { json }) => settings_list(&config, json).await,
        Command::Settings(SettingsCommand::Set(args)) => settings_set(&config, args).await,
        Command::Jobs(cmd) => jobs(&config, cmd).await,
        Command::Audit(cmd) => audit_cmd(&config, cmd).await,
        Command::Catalog(cmd) => catalog_cmd(&config, cmd),
        Command::Plan(args) => plan_cmd(&config, args),
        Command::Dlq(DlqCommand::List { json }) => dlq_list(&config, json).await,
        Command::Dlq(DlqCommand::Redrive { ids }) => dlq_redrive(&config, ids).await,
        Command::Settings(SettingsCommand::Accounts(cmd)) => accounts(&config, cmd).await,
        Command::Exemptions(cmd) => exemptions(&config, cmd).await,
        Command::Pause { reason, by } => pause(&config, true, Some(reason), by).await,
        Command::Resume { by } => pause(&config, false, None, by).await,
        Command::Sweep(args) => sweep_cmd(&config, args).await,
        Command::Healthcheck { max_age } => {
            let path = &config.liveness_file;
            let modified = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .map_err(|e| {
                    Failure::failed(format!(
                        "unhealthy: {} cannot be read ({e}): the worker has not polled",
                        path.display()
                    ))
                })?;
            let age = modified.elapsed().unwrap_or_default();
            if age.as_secs() > max_age {
                return Err(Failure::failed(format!(
                    "unhealthy: the last poll was {} s ago (more than {max_age} s)",
                    age.as_secs()
                )));
            }
            println!("healthy: the last poll was {} s ago", age.as_secs());
            Ok(())
        }
    }
}

/// How long a job run by an operator's command (undo, sweep) holds its resource lock.
const COMMAND_LEASE: Duration = Duration::from_secs(300);

/// Builds what the worker and the sweep need around a loaded catalog: clients, state, audit
/// writer.
async fn build_context(
    config: &Config,
    aws: &aws_config::SdkConfig,
    (engine, catalog): (Arc<rhai::Engine>, Arc<Catalog>),
    lease: Duration,
) -> Result<Arc<Context>> {
    let identity = aws_sdk_sts::Client::new(aws)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| classify("sts:GetCallerIdentity", e))?;
    let home = identity.account().unwrap_or_default().to_string();
    let store = store(config, aws);
    let audit = AuditWriter::new(store.client().clone(), store.names.audit.clone());
    Ok(Arc::new(Context {
        catalog: CatalogHandle::new(catalog),
        engine,
        limits: config.limits.clone(),
        cloud: Cloud::new(
            aws.clone(),
            home,
            config.role_name.clone(),
            config.external_id.clone(),
        ),
        settings: SettingsCache::new(
            store.clone(),
            Duration::from_secs(config.settings_cache_seconds),
        ),
        notifier: config
            .notify_topic_arn
            .clone()
            .map(|topic| Notifier::new(aws_sdk_sns::Client::new(aws), topic)),
        owner: audit.chain().to_string(),
        audit,
        store,
        lease,
        approval_ttl: Duration::from_secs(config.approval_ttl_seconds),
        store_down: std::sync::atomic::AtomicBool::new(false),
    }))
}

async fn run_worker(config: Config, args: WorkerArgs, started: Instant) -> Result<()> {
    // The catalog is checked before anything touches AWS: a broken script stops start-up.
    let loaded = load_catalog(&config)?;
    let aws = aws_config().await?;
    let names = Names::new(&config.prefix);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let queue_url = queue_url_of(&sqs, &names.queue).await?;
    let dlq_url = queue_url_of(&sqs, &names.dlq).await?;
    let visibility = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
        .send()
        .await
        .map_err(|e| classify("sqs:GetQueueAttributes", e))?
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout)
                .cloned()
        })
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(30);
    let ctx = build_context(&config, &aws, loaded, Duration::from_secs(visibility)).await?;
    let home = ctx.cloud.home_account().to_string();
    tracing::info!(account = %home, writer = %ctx.owner, remediations = ctx.catalog.current().all().len(),
        startup_ms = started.elapsed().as_millis() as u64, "worker ready");
    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!(
            "stopping: no new messages are taken; work in flight finishes (a second signal exits at once)"
        );
        signal.cancel();
        wait_for_signal().await;
        tracing::warn!(
            "second signal: exiting now; unfinished messages come back after their visibility timeout"
        );
        std::process::exit(130);
    });
    #[cfg(unix)]
    {
        // SIGHUP reloads the remediations; a catalog that fails to load leaves the current one.
        let (ctx, stop, config) = (ctx.clone(), shutdown.clone(), config.clone());
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut hup) = signal(SignalKind::hangup()) else {
                return;
            };
            loop {
                tokio::select! {
                    _ = hup.recv() => {},
                    _ = stop.cancelled() => break,
                }
                match Catalog::load(&ctx.engine, config.remediations.as_deref()) {
                    Ok(c) => {
                        let names: Vec<String> = c
                            .all()
                            .iter()
                            .map(|r| format!("{}@{}", r.name(), &r.script_sha256[..12]))
                            .collect();
                        ctx.catalog.replace(Arc::new(c));
                        tracing::info!(remediations = %names.join(", "), "catalog reloaded");
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "catalog reload failed; the previous catalog stays in force")
                    }
                }
            }
        });
    }
    if let (Some(every), false) = (args.sweep_every, args.once) {
        let (ctx, stop) = (ctx.clone(), shutdown.clone());
        let region = aws.region().map(|r| r.to_string()).unwrap_or_default();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(every)) => {},
                    _ = stop.cancelled() => break,
                }
                let all = ctx.catalog.current().all().to_vec();
                let accounts = [ctx.cloud.home_account().to_string()];
                match crate::sweep::sweep(
                    &ctx,
                    &all,
                    &accounts,
                    std::slice::from_ref(&region),
                    false,
                )
                .await
                {
                    Ok(lines) => {
                        let found: usize = lines.iter().map(|l| l.would_change.len()).sum();
                        let scanned: usize = lines.iter().map(|l| l.scanned).sum();
                        tracing::info!(scanned, non_compliant = found, "periodic sweep done");
                    }
                    Err(e) => tracing::warn!(error = %e, "periodic sweep failed"),
                }
            }
        });
    }
    let opts = WorkerOptions {
        once: args.once,
        concurrency: config.concurrency,
        visibility: Duration::from_secs(visibility),
        grace: Duration::from_secs(config.shutdown_grace_seconds),
        liveness_file: Some(config.liveness_file.clone()),
        wait_seconds: if args.once {
            args.wait_seconds.unwrap_or(config.once_wait_seconds)
        } else {
            config.wait_seconds
        },
    };
    let summary = worker::run(
        ctx.clone(),
        Queues {
            sqs,
            queue_url,
            dlq_url,
        },
        opts,
        shutdown,
    )
    .await;
    if let Err(e) = ctx.audit.anchor().await {
        tracing::warn!(error = %e, "the audit chain head could not be anchored");
    }
    use std::sync::atomic::Ordering::Relaxed;
    tracing::info!(
        received = summary.received.load(Relaxed),
        deleted = summary.deleted.load(Relaxed),
        dead_lettered = summary.dead_lettered.load(Relaxed),
        left_for_retry = summary.left_for_retry.load(Relaxed),
        "worker stopped"
    );
    if summary.store_unreachable.load(Relaxed) {
        return Err(Failure::failed(
            "stopped: the state store (DynamoDB) cannot be read, so nothing was changed; the messages stay on the queue",
        ));
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn queue_url_of(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<String> {
    match sqs.get_queue_url().queue_name(name).send().await {
        Ok(out) => Ok(out.queue_url().unwrap_or_default().to_string()),
        Err(e) => {
            let e = classify("sqs:GetQueueUrl", e);
            if e.code().is_some_and(|c| c.contains("NonExistentQueue")) {
                Err(Failure::usage(format!(
                    "queue {name} does not exist: run `rectify bootstrap` (with the same --prefix) first"
                )))
            } else {
                Err(e.into())
            }
        }
    }
}

/// Queues a control message that makes the worker run a job again through every gate.
async fn queue_run_job(aws: &aws_config::SdkConfig, store: &Store, id: &str) -> Result<()> {
    let sqs = aws_sdk_sqs::Client::new(aws);
    let url = queue_url_of(&sqs, &store.names.queue).await?;
    let body = crate::event::Control::RunJob {
        job_id: id.to_string(),
    }
    .body();
    sqs.send_message()
        .queue_url(url)
        .message_body(body)
        .send()
        .await
        .map_err(|e| classify("sqs:SendMessage", e))?;
    Ok(())
}

/// Parses `KEY=VALUE`; VALUE is JSON when it parses as JSON, else text.
fn parse_param(p: &str) -> Result<(String, Value)> {
    let (k, v) = p
        .split_once('=')
        .ok_or_else(|| Failure::usage(format!("--param {p:?}: expected KEY=VALUE")))?;
    if k.is_empty() {
        return Err(Failure::usage(format!("--param {p:?}: the key is empty")));
    }
    let value = serde_json::from_str::<Value>(v).unwrap_or_else(|_| Value::String(v.to_string()));
    Ok((k.to_string(), value))
}

async fn caller(aws: &aws_config::SdkConfig) -> Result<String> {
    let id = aws_sdk_sts::Client::new(aws)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| classify("sts:GetCallerIdentity", e))?;
    Ok(id.arn().unwrap_or("unknown").to_string())
}

async fn settings_list(config: &Config, json_out: bool) -> Result<()> {
    let (_, catalog) = load_catalog(config)?;
    let aws = aws_config().await?;
    let snapshot = store(config, &aws).settings().await?;
    let mut rows = Vec::new();
    for r in catalog.all() {
        let global = snapshot
            .settings
            .iter()
            .find(|s| s.remediation == r.name() && s.scope == "*");
        let (mode, source) = match global.and_then(|s| s.mode) {
            Some(m) => (m, "setting"),
            None => (r.manifest.default_mode, "default"),
        };
        rows.push(json!({
            "remediation": r.name(),
            "scope": "*",
            "mode": mode.as_str(),
            "mode_source": source,
            "params": snapshot.params_for(r, "*"),
            "triggers": global.map(|s| s.triggers.clone()).unwrap_or_default(),
            "updated_by": global.and_then(|s| s.updated_by.clone()),
            "updated_at": global.and_then(|s| s.updated_at.clone()),
        }));
        for s in snapshot
            .settings
            .iter()
            .filter(|s| s.remediation == r.name() && s.scope != "*")
        {
            rows.push(json!({
                "remediation": r.name(),
                "scope": s.scope,
                "mode": s.mode.unwrap_or(mode).as_str(),
                "mode_source": if s.mode.is_some() { "account" } else { source },
                "params": snapshot.params_for(r, &s.scope),
                "triggers": s.triggers,
                "updated_by": s.updated_by,
                "updated_at": s.updated_at,
            }));
        }
    }
    if json_out {
        print_json(&rows);
        return Ok(());
    }
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let params = r["params"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", text(v)))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let triggers = r["triggers"]
                .as_array()
                .map(|t| t.iter().map(text).collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            vec![
                text(&r["remediation"]),
                if r["scope"] == "*" {
                    "all accounts".into()
                } else {
                    text(&r["scope"])
                },
                format!("{} ({})", text(&r["mode"]), text(&r["mode_source"])),
                if params.is_empty() {
                    "-".into()
                } else {
                    params
                },
                if triggers.is_empty() {
                    "-".into()
                } else {
                    triggers
                },
                text(&r["updated_by"]),
            ]
        })
        .collect();
    print!(
        "{}",
        render::table(
            &[
                "REMEDIATION",
                "SCOPE",
                "MODE",
                "PARAMS",
                "EXTRA TRIGGERS",
                "UPDATED BY"
            ],
            &table
        )
    );
    Ok(())
}

async fn settings_set(config: &Config, args: SetArgs) -> Result<()> {
    let (_, catalog) = load_catalog(config)?;
    let r = catalog.get(&args.remediation).ok_or_else(|| {
        let names: Vec<&str> = catalog.all().iter().map(|r| r.name()).collect();
        Failure::usage(format!(
            "unknown remediation {:?}; the catalog has: {}",
            args.remediation,
            names.join(", ")
        ))
    })?;
    let scope = match &args.account {
        Some(a) => {
            validate_account(a).map_err(|e| Failure::usage(format!("--account: {e}")))?;
            a.clone()
        }
        None => "*".to_string(),
    };
    let mut params = Vec::new();
    for p in &args.params {
        let (k, v) = parse_param(p)?;
        if !r.manifest.params.contains_key(&k) {
            let known: Vec<&String> = r.manifest.params.keys().collect();
            return Err(Failure::usage(format!(
                "--param {k}: {} has no parameter {k:?} (it has: {})",
                r.name(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )));
        }
        params.push((k, v));
    }
    for t in &args.triggers {
        if t.is_empty() || t.len() > 128 || t.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(Failure::usage(format!(
                "--trigger {t:?}: not a Config rule name"
            )));
        }
    }
    if args.mode.is_none()
        && params.is_empty()
        && args.triggers.is_empty()
        && args.tag_exemptions.is_none()
        && args.breaker_limit.is_none()
        && args.breaker_window.is_none()
    {
        return Err(Failure::usage(
            "nothing to set: give --mode, --param, --trigger, --tag-exemptions, --breaker-limit or --breaker-window",
        ));
    }
    if args.account.is_some()
        && (args.tag_exemptions.is_some()
            || args.breaker_limit.is_some()
            || args.breaker_window.is_some())
    {
        return Err(Failure::usage(
            "--tag-exemptions and the breaker are set for a remediation in every account: drop --account",
        ));
    }
    if args.breaker_limit == Some(0) || args.breaker_window == Some(0) {
        return Err(Failure::usage(
            "--breaker-limit and --breaker-window must be at least 1",
        ));
    }
    let aws = aws_config().await?;
    let by = by_or_caller(&aws, args.by).await?;
    let store = store(config, &aws);
    // Optimistic update: read, change, write if nobody wrote in between; a few tries.
    let mut attempt = 0;
    let (old, new) = loop {
        attempt += 1;
        let snapshot = store.settings().await?;
        let old = snapshot
            .settings
            .iter()
            .find(|s| s.remediation == r.name() && s.scope == scope)
            .cloned();
        let mut new = old.clone().unwrap_or(Setting {
            remediation: r.name().to_string(),
            scope: scope.clone(),
            ..Setting::default()
        });
        if let Some(mode) = args.mode {
            new.mode = Some(mode);
        }
        for (k, v) in &params {
            if v.as_str() == Some("") {
                new.params.remove(k);
            } else {
                new.params.insert(k.clone(), v.clone());
            }
        }
        for t in &args.triggers {
            if !new.triggers.contains(t) {
                new.triggers.push(t.clone());
            }
        }
        if let Some(t) = args.tag_exemptions {
            new.tag_exemptions = Some(matches!(t, OnOff::On));
        }
        if let Some(l) = args.breaker_limit {
            new.breaker_limit = Some(l);
        }
        if let Some(w) = args.breaker_window {
            new.breaker_window_seconds = Some(w);
        }
        new.updated_by = Some(by.clone());
        match store
            .put_setting(&new, old.as_ref().map_or(0, |o| o.version))
            .await
        {
            Ok(()) => break (old, new),
            Err(crate::state::StateError::Conflict(_)) if attempt < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    };
    if args.mode == Some(Mode::Enforce) && scope == "*" {
        // Switching to enforce is how an operator resets a tripped breaker.
        store.breaker_reset(r.name()).await?;
    }
    let audit = command_audit(&store);
    let change = json!({
        "scope": scope,
        "mode": {"from": old.as_ref().and_then(|o| o.mode).map(|m| m.as_str()), "to": new.mode.map(|m| m.as_str())},
        "params": {"from": old.as_ref().map(|o| o.params.clone()), "to": new.params},
        "triggers": {"from": old.as_ref().map(|o| o.triggers.clone()), "to": new.triggers},
        "tag_exemptions": new.tag_exemptions,
        "breaker": {"limit": new.breaker_limit, "window_seconds": new.breaker_window_seconds},
    });
    audit
        .append(Record {
            kind: "settings".into(),
            remediation: Some(r.name().to_string()),
            account: (scope != "*").then(|| scope.clone()),
            before: old
                .as_ref()
                .map(|o| serde_json::to_value(o).unwrap_or(Value::Null)),
            after: Some(change),
            outcome: "settings-changed".into(),
            actor: Some(by.clone()),
            ..Record::default()
        })
        .await?;
    let scope_text = if scope == "*" {
        "all accounts".to_string()
    } else {
        format!("account {scope}")
    };
    println!(
        "{} ({scope_text}): mode {}, params {}, extra triggers [{}]; set by {by}",
        r.name(),
        new.mode
            .map(|m| m.to_string())
            .unwrap_or_else(|| format!("{} (default)", r.manifest.default_mode)),
        Value::Object(new.params.clone()),
        new.triggers.join(", ")
    );
    if args.mode == Some(Mode::Enforce) {
        println!(
            "Config does not resend events for violations it already reported: run `rectify jobs list --status planned` and `rectify jobs retry ID` to act on them."
        );
    }
    Ok(())
}

fn job_json(j: &Job) -> Value {
    let mut v = serde_json::to_value(j).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("status".into(), json!(j.status.as_str()));
        m.insert("mode".into(), json!(j.mode.as_str()));
    }
    v
}

async fn jobs(config: &Config, cmd: JobsCommand) -> Result<()> {
    let aws = aws_config().await?;
    let store = store(config, &aws);
    match cmd {
        JobsCommand::List { status, json } => {
            let wanted = match status {
                Some(s) => Some(JobStatus::parse(&s).ok_or_else(|| {
                    let all: Vec<&str> = JobStatus::ALL.iter().map(|s| s.as_str()).collect();
                    Failure::usage(format!("--status {s:?}: use one of {}", all.join(", ")))
                })?),
                None => None,
            };
            let jobs: Vec<Job> = store
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
            let job = store.job(&id).await?.ok_or_else(|| {
                Failure::usage(format!("no job {id:?} (see `rectify jobs list`)"))
            })?;
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
            let job = store.job(&id).await?.ok_or_else(|| {
                Failure::usage(format!("no job {id:?} (see `rectify jobs list`)"))
            })?;
            if !job.status.reruns_on_delivery() {
                return Err(Failure::usage(format!(
                    "job {id} is {}: only jobs that ended without an effect (planned, needs-parameter, failed, off) run again",
                    job.status.as_str()
                )));
            }
            queue_run_job(&aws, &store, &id).await?;
            println!("job {id} queued to run again; the worker re-reads the resource and re-plans");
            Ok(())
        }
        JobsCommand::Approve {
            id,
            by,
            reason,
            plan_hash,
        } => {
            let job = store.job(&id).await?.ok_or_else(|| {
                Failure::usage(format!("no job {id:?} (see `rectify jobs list`)"))
            })?;
            if job.status != JobStatus::PendingApproval {
                return Err(Failure::usage(format!(
                    "job {id} is {}, not pending-approval: only a pending plan can be approved",
                    job.status.as_str()
                )));
            }
            let ttl = Duration::from_secs(config.approval_ttl_seconds);
            let audit = command_audit(&store);
            if approval_expired(&job, ttl) {
                expire(&store, &audit, &job, ttl).await?;
                return Err(Failure::usage(format!(
                    "job {id} waited longer than {} s for an approval and has expired; it will not be applied (`rectify jobs retry {id}` plans it again)",
                    ttl.as_secs()
                )));
            }
            let hash = job.plan_hash.clone().unwrap_or_default();
            if let Some(want) = &plan_hash
                && (want.len() < 12 || !hash.starts_with(want.as_str()))
            {
                return Err(Failure::usage(format!(
                    "job {id}'s pending plan has sha256 {hash}, not {want}: review it again with `rectify jobs show {id}`"
                )));
            }
            let by = by_or_caller(&aws, by).await?;
            let approved = store
                .transition(
                    &id,
                    &[JobStatus::PendingApproval],
                    JobStatus::Approved,
                    &[
                        ("approved_by", Some(by.clone())),
                        ("approved_at", Some(crate::state::now_text())),
                        ("approved_plan_hash", Some(hash.clone())),
                        ("approval_reason", reason.clone()),
                        (
                            "reason",
                            Some(format!(
                                "approved by {by}; waiting for the worker to apply it"
                            )),
                        ),
                    ],
                )
                .await?
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "job {id} changed while it was being approved: look again"
                    ))
                })?;
            audit.append(job_record(&approved, &by)).await?;
            queue_run_job(&aws, &store, &id).await?;
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
        } => {
            let by = by_or_caller(&aws, by).await?;
            let ctx = build_context(config, &aws, load_catalog(config)?, COMMAND_LEASE).await?;
            let result = crate::undo::undo(&ctx, &id, &by, &reason, force, !no_exempt).await;
            ctx.audit.anchor().await?;
            match result {
                Ok(done) => {
                    println!(
                        "job {id} undone by {by} (undo job {}): the resource is as it was before",
                        done.undo_job.id
                    );
                    for a in done.undo_job.plan.iter().flat_map(|p| p.actions.iter()) {
                        println!("  ~ {}", a.summary());
                    }
                    if done.exempted {
                        println!(
                            "{} is now exempt from {} (remove with `rectify exemptions remove --remediation {} --resource {} --account {}`)",
                            done.undo_job.resource_id,
                            done.undo_job.remediation,
                            done.undo_job.remediation,
                            done.undo_job.resource_id,
                            done.undo_job.account
                        );
                    }
                    Ok(())
                }
                Err(e) => Err(Failure::usage(e)),
            }
        }
        JobsCommand::Reject { id, by, reason } => {
            let job = store.job(&id).await?.ok_or_else(|| {
                Failure::usage(format!("no job {id:?} (see `rectify jobs list`)"))
            })?;
            if job.status != JobStatus::PendingApproval {
                return Err(Failure::usage(format!(
                    "job {id} is {}, not pending-approval: only a pending plan can be rejected",
                    job.status.as_str()
                )));
            }
            let by = by_or_caller(&aws, by).await?;
            let rejected = store
                .transition(
                    &id,
                    &[JobStatus::PendingApproval],
                    JobStatus::Rejected,
                    &[("reason", Some(format!("rejected by {by}: {reason}")))],
                )
                .await?
                .ok_or_else(|| {
                    Failure::usage(format!(
                        "job {id} changed while it was being rejected: look again"
                    ))
                })?;
            command_audit(&store)
                .append(job_record(&rejected, &by))
                .await?;
            println!("job {id} rejected by {by}; it will not be applied");
            Ok(())
        }
    }
}

/// The audit writer of a command run by an operator (its own chain).
fn command_audit(store: &Store) -> AuditWriter {
    AuditWriter::for_command(store.client().clone(), store.names.audit.clone())
}

async fn by_or_caller(aws: &aws_config::SdkConfig, by: Option<String>) -> Result<String> {
    match by {
        Some(b) => Ok(b),
        None => caller(aws).await,
    }
}

/// Changes the Organization-wide settings with an optimistic update, and records it.
async fn update_global(
    config: &Config,
    by: Option<String>,
    what: &str,
    change: impl Fn(&mut crate::state::Global),
) -> Result<crate::state::Global> {
    let aws = aws_config().await?;
    let by = by_or_caller(&aws, by).await?;
    let store = store(config, &aws);
    for _ in 0..5 {
        let old = store.settings().await?.global;
        let mut new = old.clone();
        change(&mut new);
        new.updated_by = Some(by.clone());
        match store.put_global(&new, old.version).await {
            Ok(()) => {
                command_audit(&store)
                    .append(Record {
                        kind: "settings".into(),
                        before: Some(serde_json::to_value(&old).unwrap_or(Value::Null)),
                        after: Some(serde_json::to_value(&new).unwrap_or(Value::Null)),
                        outcome: what.to_string(),
                        reason: new.pause_reason.clone().filter(|_| what == "paused"),
                        actor: Some(by.clone()),
                        ..Record::default()
                    })
                    .await?;
                return Ok(new);
            }
            Err(StateError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Failure::failed(
        "the Organization settings kept changing under this update; try again",
    ))
}

async fn accounts(config: &Config, cmd: AccountsCommand) -> Result<()> {
    let check = |ids: &[String]| -> Result<()> {
        if ids.is_empty() {
            return Err(Failure::usage("name at least one account id"));
        }
        for a in ids {
            validate_account(a).map_err(|e| Failure::usage(e.to_string()))?;
        }
        Ok(())
    };
    let global = match cmd {
        AccountsCommand::List => {
            let aws = aws_config().await?;
            store(config, &aws).settings().await?.global
        }
        AccountsCommand::Add { accounts, by } => {
            check(&accounts)?;
            update_global(config, by, "accounts-changed", |g| {
                for a in &accounts {
                    if !g.accounts.contains(a) {
                        g.accounts.push(a.clone());
                    }
                }
                g.accounts.sort();
            })
            .await?
        }
        AccountsCommand::Remove { accounts, by } => {
            check(&accounts)?;
            update_global(config, by, "accounts-changed", |g| {
                g.accounts.retain(|a| !accounts.contains(a))
            })
            .await?
        }
        AccountsCommand::Clear { by } => {
            update_global(config, by, "accounts-changed", |g| g.accounts.clear()).await?
        }
    };
    if global.accounts.is_empty() {
        println!("allow-list empty: rectify acts in every account");
    } else {
        println!("rectify acts only in: {}", global.accounts.join(", "));
    }
    Ok(())
}

async fn pause(
    config: &Config,
    paused: bool,
    reason: Option<String>,
    by: Option<String>,
) -> Result<()> {
    let what = if paused { "paused" } else { "resumed" };
    let g = update_global(config, by, what, |g| {
        g.paused = paused;
        g.pause_reason = reason.clone();
    })
    .await?;
    if paused {
        println!(
            "rectify is paused by {}: no change is made anywhere; jobs are still planned and recorded",
            g.updated_by.as_deref().unwrap_or("?")
        );
        println!(
            "settings are cached for up to {} s by running workers",
            config.settings_cache_seconds
        );
    } else {
        println!(
            "rectify resumed by {}; jobs planned while paused run again with `rectify jobs retry ID`",
            g.updated_by.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}

fn check_date(d: &str) -> Result<()> {
    chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
        .map(|_| ())
        .map_err(|_| Failure::usage(format!("--until {d:?}: use YYYY-MM-DD")))
}

async fn exemptions(config: &Config, cmd: ExemptionsCommand) -> Result<()> {
    let (_, catalog) = load_catalog(config)?;
    let known = |name: &str| -> Result<()> {
        if catalog.get(name).is_none() {
            let names: Vec<&str> = catalog.all().iter().map(|r| r.name()).collect();
            return Err(Failure::usage(format!(
                "unknown remediation {name:?}; the catalog has: {}",
                names.join(", ")
            )));
        }
        Ok(())
    };
    let account_of = |a: Option<String>| -> Result<String> {
        match a {
            Some(a) => {
                validate_account(&a).map_err(|e| Failure::usage(format!("--account: {e}")))?;
                Ok(a)
            }
            None => Ok("*".into()),
        }
    };
    match cmd {
        ExemptionsCommand::Add {
            remediation,
            resource,
            account,
            reason,
            by,
            until,
        } => {
            known(&remediation)?;
            if let Some(u) = &until {
                check_date(u)?;
            }
            if resource.is_empty()
                || resource.contains(':')
                || resource.chars().any(char::is_control)
            {
                return Err(Failure::usage(format!(
                    "--resource {resource:?}: not a resource id"
                )));
            }
            let account = account_of(account)?;
            let aws = aws_config().await?;
            let by = by_or_caller(&aws, by).await?;
            let store = store(config, &aws);
            let e = Exemption {
                remediation,
                account,
                resource_id: resource,
                reason,
                by: by.clone(),
                until,
                created_at: crate::state::now_text(),
            };
            store.put_exemption(&e).await?;
            command_audit(&store).append(e.added_record()).await?;
            println!(
                "{} exempted from {} in {}{}",
                e.resource_id,
                e.remediation,
                if e.account == "*" {
                    "every account".to_string()
                } else {
                    format!("account {}", e.account)
                },
                e.until
                    .as_deref()
                    .map(|u| format!(" until {u}"))
                    .unwrap_or_default()
            );
            Ok(())
        }
        ExemptionsCommand::List { json } => {
            let aws = aws_config().await?;
            let snapshot = store(config, &aws).settings().await?;
            let today = today();
            if json {
                let items: Vec<Value> = snapshot
                    .exemptions
                    .iter()
                    .map(|e| {
                        let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
                        v["active"] = json!(e.active(&today));
                        v
                    })
                    .collect();
                print_json(&items);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = snapshot
                .exemptions
                .iter()
                .map(|e| {
                    vec![
                        e.remediation.clone(),
                        e.account.clone(),
                        e.resource_id.clone(),
                        e.until.clone().unwrap_or_else(|| "-".into()),
                        if e.active(&today) {
                            "yes".into()
                        } else {
                            "expired".into()
                        },
                        e.by.clone(),
                        e.reason.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(
                    &[
                        "REMEDIATION",
                        "ACCOUNT",
                        "RESOURCE",
                        "UNTIL",
                        "ACTIVE",
                        "BY",
                        "REASON"
                    ],
                    &rows
                )
            );
            Ok(())
        }
        ExemptionsCommand::Remove {
            remediation,
            resource,
            account,
            by,
        } => {
            known(&remediation)?;
            let account = account_of(account)?;
            let aws = aws_config().await?;
            let by = by_or_caller(&aws, by).await?;
            let store = store(config, &aws);
            let e = Exemption {
                remediation,
                account,
                resource_id: resource,
                ..Exemption::default()
            };
            if !store.delete_exemption(&e).await? {
                return Err(Failure::usage(format!(
                    "no exemption of {} from {} in {} (see `rectify exemptions list`)",
                    e.resource_id, e.remediation, e.account
                )));
            }
            command_audit(&store)
                .append(Record {
                    kind: "settings".into(),
                    remediation: Some(e.remediation.clone()),
                    resource_id: Some(e.resource_id.clone()),
                    outcome: "exemption-removed".into(),
                    actor: Some(by),
                    ..Record::default()
                })
                .await?;
            println!(
                "exemption of {} from {} removed",
                e.resource_id, e.remediation
            );
            Ok(())
        }
    }
}

async fn sweep_cmd(config: &Config, args: SweepArgs) -> Result<()> {
    for a in &args.accounts {
        validate_account(a).map_err(|e| Failure::usage(format!("--account: {e}")))?;
    }
    for r in &args.regions {
        crate::event::validate_region(r).map_err(|e| Failure::usage(format!("--region: {e}")))?;
    }
    let aws = aws_config().await?;
    let ctx = build_context(config, &aws, load_catalog(config)?, COMMAND_LEASE).await?;
    let remediations: Vec<Arc<crate::catalog::Remediation>> = match &args.remediation {
        Some(name) => vec![
            ctx.catalog
                .current()
                .get(name)
                .cloned()
                .ok_or_else(|| Failure::usage(format!("unknown remediation {name:?}")))?,
        ],
        None => ctx.catalog.current().all().to_vec(),
    };
    let accounts = if args.accounts.is_empty() {
        vec![ctx.cloud.home_account().to_string()]
    } else {
        args.accounts.clone()
    };
    let regions = if args.regions.is_empty() {
        vec![aws.region().map(|r| r.to_string()).unwrap_or_default()]
    } else {
        args.regions.clone()
    };
    let lines = crate::sweep::sweep(&ctx, &remediations, &accounts, &regions, args.what_if)
        .await
        .map_err(Failure::failed)?;
    ctx.audit.anchor().await?;
    if args.json {
        print_json(&lines);
        return Ok(());
    }
    if args.what_if {
        println!("what-if: nothing was changed or recorded. Enforcing would change:\n");
    }
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            let which: Vec<String> = l
                .would_change
                .iter()
                .map(|(id, n)| format!("{id} ({n})"))
                .collect();
            vec![
                l.remediation.clone(),
                l.account.clone(),
                l.region.clone(),
                l.scanned.to_string(),
                l.would_change.len().to_string(),
                if which.is_empty() {
                    "-".into()
                } else {
                    which.join(", ")
                },
                if l.outcomes.is_empty() {
                    "-".into()
                } else {
                    l.outcomes
                        .iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                },
                l.errors.len().to_string(),
            ]
        })
        .collect();
    print!(
        "{}",
        render::table(
            &[
                "REMEDIATION",
                "ACCOUNT",
                "REGION",
                "SCANNED",
                "NON-COMPLIANT",
                "WHICH (ACTIONS)",
                "JOBS",
                "ERRORS"
            ],
            &rows
        )
    );
    for l in &lines {
        for (id, e) in &l.errors {
            eprintln!("{} {} {}: {id}: {e}", l.remediation, l.account, l.region);
        }
    }
    Ok(())
}

async fn audit_cmd(config: &Config, cmd: AuditCommand) -> Result<()> {
    let aws = aws_config().await?;
    let store = store(config, &aws);
    let records = audit::read_all(store.client(), &store.names.audit).await?;
    match cmd {
        AuditCommand::List {
            resource,
            remediation,
            since,
            json,
        } => {
            if let Some(s) = &since {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map_err(|_| Failure::usage(format!("--since {s:?}: not an RFC 3339 time")))?;
            }
            let selected: Vec<&Record> = records
                .iter()
                .map(|s| &s.record)
                .filter(|r| {
                    resource
                        .as_ref()
                        .is_none_or(|x| r.resource_id.as_ref() == Some(x))
                })
                .filter(|r| {
                    remediation
                        .as_ref()
                        .is_none_or(|x| r.remediation.as_ref() == Some(x))
                })
                .filter(|r| since.as_ref().is_none_or(|s| r.time.as_str() >= s.as_str()))
                .collect();
            if json {
                print_json(&selected);
                return Ok(());
            }
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let rows: Vec<Vec<String>> = selected
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.time.get(..19).unwrap_or(&r.time).to_string(),
                        r.kind.clone(),
                        dash(&r.remediation),
                        dash(&r.resource_id),
                        dash(&r.mode),
                        r.outcome.clone(),
                        dash(&r.reason).chars().take(70).collect(),
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(
                    &[
                        "ID",
                        "TIME",
                        "KIND",
                        "REMEDIATION",
                        "RESOURCE",
                        "MODE",
                        "OUTCOME",
                        "REASON"
                    ],
                    &rows
                )
            );
            Ok(())
        }
        AuditCommand::Show { id } => {
            let r = records.iter().find(|s| s.record.id == id).ok_or_else(|| {
                Failure::usage(format!("no audit record {id:?} (see `rectify audit list`)"))
            })?;
            print_json(&r.record);
            Ok(())
        }
        AuditCommand::Export {
            bucket,
            key_prefix,
            retention_days,
        } => {
            let written = audit::export(
                &aws_sdk_s3::Client::new(&aws),
                &bucket,
                &key_prefix,
                &records,
                retention_days,
            )
            .await?;
            for (key, n) in &written {
                println!("s3://{bucket}/{key}: {n} records");
            }
            Ok(())
        }
        AuditCommand::Verify {
            export_bucket,
            export_key_prefix: export_prefix,
        } => {
            let mut problems = audit::verify(&records);
            if let Some(bucket) = &export_bucket {
                let exported =
                    audit::read_export(&aws_sdk_s3::Client::new(&aws), bucket, &export_prefix)
                        .await?;
                println!(
                    "export: {} records in s3://{bucket}/{export_prefix}",
                    exported.len()
                );
                problems.extend(audit::verify_export(&records, &exported));
            }
            let chains = records
                .iter()
                .map(|r| r.chain.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            if problems.is_empty() {
                println!("OK: {} records in {chains} chains verified", records.len());
                Ok(())
            } else {
                for p in &problems {
                    println!("{}: {}", p.record, p.what);
                }
                Err(Failure::failed(format!(
                    "the audit trail does not verify: {} problem(s) in {} records",
                    problems.len(),
                    records.len()
                )))
            }
        }
    }
}

fn catalog_cmd(config: &Config, cmd: CatalogCommand) -> Result<()> {
    match cmd {
        CatalogCommand::List { json } => {
            let (_, catalog) = load_catalog(config)?;
            let items: Vec<Value> = catalog
                .all()
                .iter()
                .map(|r| {
                    json!({
                        "name": r.name(),
                        "description": r.manifest.description,
                        "resource_type": r.manifest.resource_type,
                        "default_mode": r.manifest.default_mode.as_str(),
                        "rules": r.manifest.triggers.rules,
                        "patterns": r.manifest.triggers.patterns,
                        "actions": r.manifest.actions,
                        "params": r.manifest.params,
                        "script_sha256": r.script_sha256,
                        "origin": r.origin,
                        "cases": r.cases.len(),
                    })
                })
                .collect();
            if json {
                print_json(&items);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = catalog
                .all()
                .iter()
                .map(|r| {
                    let mut triggers = r.manifest.triggers.rules.clone();
                    triggers.extend(r.manifest.triggers.patterns.iter().cloned());
                    vec![
                        r.name().to_string(),
                        r.manifest.resource_type.clone(),
                        r.manifest.default_mode.to_string(),
                        r.manifest.actions.join(","),
                        triggers.join(", "),
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(
                    &[
                        "NAME",
                        "RESOURCE TYPE",
                        "DEFAULT MODE",
                        "ACTIONS",
                        "TRIGGERS"
                    ],
                    &rows
                )
            );
            Ok(())
        }
        CatalogCommand::Test { dir } => {
            let mut config = config.clone();
            if dir.is_some() {
                config.remediations = dir;
            }
            let (engine, catalog) = load_catalog(&config)?;
            let deadline = Duration::from_millis(config.limits.deadline_ms);
            let (mut passed, mut failed) = (0, 0);
            for r in catalog.all() {
                for result in run_cases(&engine, r, deadline) {
                    match &result.failure {
                        None => {
                            passed += 1;
                            println!("ok      {} ({})", result.file, result.description);
                        }
                        Some(why) => {
                            failed += 1;
                            println!("FAILED  {} ({})", result.file, result.description);
                            for line in why.lines() {
                                println!("        {line}");
                            }
                        }
                    }
                }
            }
            println!("\ncatalog: {passed} passed, {failed} failed");
            if failed > 0 {
                Err(Failure::failed(format!("{failed} test case(s) failed")))
            } else {
                Ok(())
            }
        }
        CatalogCommand::Permissions { json } => {
            let member = crate::cloud::member_permissions();
            let controller = crate::cloud::CONTROLLER_PERMISSIONS;
            if json {
                print_json(&json!({"member": member, "controller": controller}));
            } else {
                println!("member account role (rectify-remediation):");
                for p in &member {
                    println!("  {p}");
                }
                println!("controller task role:");
                for p in controller {
                    println!("  {p}");
                }
            }
            Ok(())
        }
        CatalogCommand::Actions { json } => {
            let items: Vec<Value> = ACTION_KINDS
                .iter()
                .map(|k| {
                    json!({"kind": k.kind, "iam_permission": k.permission, "fields": k.fields,
                           "description": k.description, "inverse": k.inverse})
                })
                .collect();
            if json {
                print_json(&items);
            } else {
                for k in ACTION_KINDS {
                    println!("{}", k.kind);
                    println!("    {}", k.description);
                    println!("    fields:          {}", k.fields);
                    println!("    IAM permission:  {}", k.permission);
                    println!("    undone by:       {}\n", k.inverse);
                }
                println!(
                    "Observers also read (IAM permissions): {}",
                    crate::cloud::OBSERVER_PERMISSIONS.join(", ")
                );
            }
            Ok(())
        }
    }
}

fn plan_cmd(config: &Config, args: PlanArgs) -> Result<()> {
    let (engine, catalog) = load_catalog(config)?;
    let r = catalog.get(&args.remediation).ok_or_else(|| {
        let names: Vec<&str> = catalog.all().iter().map(|r| r.name()).collect();
        Failure::usage(format!(
            "unknown remediation {:?}; the catalog has: {}",
            args.remediation,
            names.join(", ")
        ))
    })?;
    let text = std::fs::read_to_string(&args.resource)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.resource.display())))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Failure::usage(format!("{}: not JSON: {e}", args.resource.display())))?;
    let mut params = r.default_params();
    // A test case file carries its resource and params; a plain file is the resource.
    let resource = match value.get("resource") {
        Some(res) if value.get("expect").is_some() => {
            if let Some(Value::Object(p)) = value.get("params") {
                params.extend(p.clone());
            }
            res.clone()
        }
        _ => value,
    };
    for p in &args.params {
        let (k, v) = parse_param(p)?;
        params.insert(k, v);
    }
    let missing = r.missing_params(&params);
    if !missing.is_empty() {
        return Err(Failure::usage(format!(
            "{} needs parameter {}: add --param {}=VALUE",
            r.name(),
            missing.join(", "),
            missing[0]
        )));
    }
    let plan: Plan = r
        .plan(
            &engine,
            &resource,
            &params,
            Duration::from_millis(config.limits.deadline_ms),
        )
        .map_err(|e| Failure::usage(e.to_string()))?;
    if args.json {
        print_json(&plan);
    } else {
        print!("{}", render::plan(&plan, Some(&resource)));
    }
    Ok(())
}

async fn dlq_redrive(config: &Config, ids: Vec<String>) -> Result<()> {
    let aws = aws_config().await?;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let names = Names::new(&config.prefix);
    let dlq = queue_url_of(&sqs, &names.dlq).await?;
    let queue = queue_url_of(&sqs, &names.queue).await?;
    let mut moved = BTreeMap::new();
    let mut skipped = std::collections::BTreeSet::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&dlq)
            .max_number_of_messages(10)
            .visibility_timeout(30)
            .wait_time_seconds(0)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| classify("sqs:ReceiveMessage", e))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        let mut progress = false;
        for m in messages {
            let id = m.message_id().unwrap_or_default().to_string();
            let receipt = m.receipt_handle().unwrap_or_default().to_string();
            if !ids.is_empty() && !ids.contains(&id) {
                if skipped.insert(id) {
                    progress = true;
                }
                // Not asked for: visible again at once for other readers.
                let _ = sqs
                    .change_message_visibility()
                    .queue_url(&dlq)
                    .receipt_handle(&receipt)
                    .visibility_timeout(0)
                    .send()
                    .await;
                continue;
            }
            if moved.contains_key(&id) {
                continue;
            }
            sqs.send_message()
                .queue_url(&queue)
                .message_body(m.body().unwrap_or_default())
                .send()
                .await
                .map_err(|e| classify("sqs:SendMessage", e))?;
            sqs.delete_message()
                .queue_url(&dlq)
                .receipt_handle(&receipt)
                .send()
                .await
                .map_err(|e| classify("sqs:DeleteMessage", e))?;
            moved.insert(id, ());
            progress = true;
        }
        if !progress {
            break;
        }
    }
    let missing: Vec<&String> = ids.iter().filter(|i| !moved.contains_key(*i)).collect();
    println!(
        "{} message(s) moved from {} back to {}",
        moved.len(),
        names.dlq,
        names.queue
    );
    if !missing.is_empty() {
        return Err(Failure::usage(format!(
            "not found in the DLQ: {}",
            missing
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(())
}

async fn dlq_list(config: &Config, json_out: bool) -> Result<()> {
    let aws = aws_config().await?;
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let url = queue_url_of(&sqs, &Names::new(&config.prefix).dlq).await?;
    let mut seen = BTreeMap::new();
    let mut receipts = Vec::new();
    let mut stale = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .visibility_timeout(300)
            .wait_time_seconds(0)
            .message_attribute_names("All")
            .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(|e| classify("sqs:ReceiveMessage", e))?;
        let messages = out.messages.unwrap_or_default();
        let messages_empty = messages.is_empty();
        let before = seen.len();
        for m in messages {
            let id = m.message_id().unwrap_or_default().to_string();
            let reason = m
                .message_attributes()
                .and_then(|a| a.get(REASON_ATTRIBUTE))
                .and_then(|v| v.string_value())
                .unwrap_or("(moved by SQS after too many receives)")
                .to_string();
            let receives = m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
                })
                .cloned()
                .unwrap_or_default();
            if let Some(r) = m.receipt_handle() {
                receipts.push(r.to_string());
            }
            seen.insert(
                id.clone(),
                json!({
                    "id": id,
                    "reason": reason,
                    "receive_count": receives.parse::<u64>().unwrap_or(0),
                    "body": m.body().unwrap_or_default(),
                }),
            );
        }
        // Stop when the DLQ has nothing more to show: an empty receive, or (the listing being
        // slower than the visibility timeout) a few receives in a row with nothing new.
        if messages_empty {
            break;
        }
        if seen.len() == before {
            stale += 1;
            if stale >= 3 {
                break;
            }
        } else {
            stale = 0;
        }
    }
    // Reading hid the messages; make them visible again at once.
    for r in receipts {
        let _ = sqs
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(r)
            .visibility_timeout(0)
            .send()
            .await;
    }
    let items: Vec<Value> = seen.into_values().collect();
    if json_out {
        print_json(&items);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|m| {
            vec![
                m["id"].as_str().unwrap_or_default().to_string(),
                m["receive_count"].to_string(),
                m["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(80)
                    .collect(),
                m["body"]
                    .as_str()
                    .unwrap_or_default()
                    .chars()
                    .take(40)
                    .collect::<String>()
                    .replace('\n', " "),
            ]
        })
        .collect();
    print!(
        "{}",
        render::table(&["ID", "RECEIVES", "REASON", "BODY"], &rows)
    );
    Ok(())
}
