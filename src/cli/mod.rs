//! The command line: one binary, subcommands a person can guess.
//!
//! Each command group has its file, holding its arguments and its handler: parse, call into the
//! library ([`crate::app`], [`crate::jobs`], [`crate::settings`], [`crate::source`], …), render.
//!
//! Exit codes: 0 success, 1 a check that failed (`audit verify`, `catalog test`), an AWS call
//! that failed or a prefix that was never bootstrapped, 2 bad usage or input (the region or
//! credentials missing included), 3 AWS or the state store could not be reached (network,
//! throttling, a 5xx after the SDK's retries): nothing was decided, run it again. Each message
//! names what is wrong and what to do.

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
mod manual;
mod output;
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
  rectify bootstrap                       create the queues, DLQ and tables
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

/// Options every command takes: listed under their own heading, after the command's own.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// TOML configuration file (keys: prefix, role_name, operator_role_name, external_id,
    /// remediations, log_format, approval_ttl_seconds, notify_topic_arn, notify_chat,
    /// [worker], [audit], [script]).
    #[arg(long, env = "RECTIFY_CONFIG", global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Prefix of the queue, DLQ and table names: <prefix>-events, <prefix>-jobs, … [default: rectify]
    #[arg(long, env = "RECTIFY_PREFIX", global = true)]
    pub prefix: Option<String>,
    /// Role assumed in member accounts [default: <prefix>-remediation]
    #[arg(long, env = "RECTIFY_ROLE_NAME", global = true)]
    pub role_name: Option<String>,
    /// Role assumed in member accounts by `rectify jobs undo`: it holds the inverses the
    /// worker's role does not [default: <prefix>-operator]
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
    /// Log format on stderr [default: text on a terminal, json otherwise]
    #[arg(
        long,
        env = "RECTIFY_LOG_FORMAT",
        global = true,
        value_parser = ["text", "json"]
    )]
    pub log_format: Option<String>,
    /// How long a plan waits for an approval before it expires, and an approval for its run
    /// before it ends approval-expired: seconds or a duration (12h, 7d) [default: 1d]
    #[arg(
        long,
        env = "RECTIFY_APPROVAL_TTL_SECONDS",
        global = true,
        value_name = "DURATION",
        value_parser = crate::clock::seconds_arg
    )]
    pub approval_ttl_seconds: Option<u64>,
    /// SNS topic told of pending approvals, applied, failed and failed-verify fixes, exempt
    /// resources, expired approvals and tripped breakers.
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
    /// How long one attempt of an AWS call may take before it is given up and retried (the SDK
    /// retries it, then the job's message comes back): seconds or a duration (45s, 2m), 1 s to
    /// 5 m. A long poll of the event queue may take its wait on top [default: 30s]
    #[arg(
        long,
        env = "RECTIFY_CALL_TIMEOUT",
        global = true,
        value_name = "DURATION",
        value_parser = call_timeout_arg
    )]
    pub call_timeout: Option<u64>,
}

/// `--call-timeout`: 1 s to 5 m.
fn call_timeout_arg(text: &str) -> std::result::Result<u64, String> {
    crate::clock::seconds_within(text, 1, crate::config::MAX_CALL_TIMEOUT_SECONDS)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the event queue, its DLQ, the control queue and the tables, or find them
    /// (idempotent).
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
    /// Print a shell completion script for bash, zsh, fish, elvish or PowerShell.
    ///
    /// Examples:
    ///   rectify completions bash > /etc/bash_completion.d/rectify
    ///   rectify completions zsh > "${fpath[1]}/_rectify"
    ///   rectify completions fish > ~/.config/fish/completions/rectify.fish
    #[command(verbatim_doc_comment)]
    Completions(manual::CompletionsArgs),
    /// Print the manual page (roff), or with --dir write one page per command.
    ///
    /// Examples:
    ///   rectify man | man -l -
    ///   rectify man --dir /usr/local/share/man/man1
    #[command(verbatim_doc_comment)]
    Man(manual::ManArgs),
}

/// An error with the exit code it deserves.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

/// Exit code: a check failed, an AWS call failed, or the prefix was never bootstrapped.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad usage or input, or an environment without a region or credentials.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: AWS or the state store could not be reached (network, throttling, a 5xx after
/// the SDK's retries); nothing was decided and running it again may succeed. Distinct so a
/// scheduled `audit verify` tells an outage from a trail that does not verify (1).
pub const EXIT_UNREACHABLE: u8 = 3;

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_FAILED,
            message: message.into(),
        }
    }
}

type Result<T> = std::result::Result<T, Failure>;

/// The one rule for a library error's exit code: 2 when the operator's input is at fault
/// (`usage`, as the error type says); 3 when the AWS call behind it (`cloud`) could not reach
/// AWS or was throttled; else 1. The message is the error with its causes and, for an AWS
/// error a person can act on, what to do.
fn blame(usage: bool, cloud: Option<&CloudError>, e: &dyn std::error::Error) -> Failure {
    let mut message = error_chain(e);
    let code = if usage {
        EXIT_USAGE
    } else if cloud.is_some_and(CloudError::retryable) {
        EXIT_UNREACHABLE
    } else {
        EXIT_FAILED
    };
    if let Some(hint) = cloud.and_then(hint) {
        message.push_str(hint.as_str());
    }
    Failure { code, message }
}

/// AWS error codes that mean the caller's identity lacks a permission.
const DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "UnauthorizedAccess",
];

/// What a person does about an AWS error, when rectify can say more than AWS did.
fn hint(e: &CloudError) -> Option<String> {
    match e {
        CloudError::Service { call, code, .. } if DENIED.contains(&code.as_str()) => Some(format!(
            "\naccess denied: the identity rectify runs as (see `aws sts get-caller-identity`) needs {call} allowed by its IAM policy"
        )),
        CloudError::Transport { .. } => Some(format!(
            "\nAWS could not be reached{}: check the network (and AWS_ENDPOINT_URL when set), then run it again; nothing was changed by this command",
            std::env::var("AWS_ENDPOINT_URL")
                .map(|u| format!(" at {u}"))
                .unwrap_or_default()
        )),
        CloudError::Service { .. } if e.retryable() => Some(
            "\nAWS is throttling or failing (after the SDK's retries): run it again later".into(),
        ),
        _ => None,
    }
}

/// The AWS error behind a state store error, if one is.
fn state_cloud(e: &StateError) -> Option<&CloudError> {
    match e {
        StateError::Store(c) => Some(c),
        _ => None,
    }
}

fn queue_cloud(e: &QueueError) -> Option<&CloudError> {
    match e {
        QueueError::Cloud(c) => Some(c),
        QueueError::Missing { .. } => None,
    }
}

fn settings_cloud(e: &SettingsError) -> Option<&CloudError> {
    match e {
        SettingsError::State(s) => state_cloud(s),
        _ => None,
    }
}

impl From<AppError> for Failure {
    fn from(e: AppError) -> Failure {
        let mut f = blame(
            e.is_usage(),
            match &e {
                AppError::Cloud(c) => Some(c),
                AppError::Queue(q) => queue_cloud(q),
                _ => None,
            },
            &e,
        );
        if matches!(e, AppError::StoreUnreachable) {
            f.code = EXIT_UNREACHABLE;
        }
        f
    }
}

impl From<QueueError> for Failure {
    fn from(e: QueueError) -> Failure {
        blame(e.is_usage(), queue_cloud(&e), &e)
    }
}

impl From<JobError> for Failure {
    fn from(e: JobError) -> Failure {
        let cloud = match &e {
            JobError::Cloud(c) => Some(c),
            JobError::Queue(q) => queue_cloud(q),
            JobError::State(s) => state_cloud(s),
            _ => None,
        };
        blame(e.is_usage(), cloud, &e)
    }
}

impl From<SettingsError> for Failure {
    fn from(e: SettingsError) -> Failure {
        blame(e.is_usage(), settings_cloud(&e), &e)
    }
}

impl From<UndoError> for Failure {
    fn from(e: UndoError) -> Failure {
        let cloud = match &e {
            UndoError::State(s) => state_cloud(s),
            UndoError::Settings(s) => settings_cloud(s),
            UndoError::Unreadable(c) | UndoError::UnreadableAfter(c) => Some(c),
            _ => None,
        };
        blame(e.is_usage(), cloud, &e)
    }
}

/// AWS failed: never the operator's input.
impl From<CloudError> for Failure {
    fn from(e: CloudError) -> Failure {
        blame(false, Some(&e), &e)
    }
}

/// The state store failed: never the operator's input.
impl From<StateError> for Failure {
    fn from(e: StateError) -> Failure {
        blame(false, state_cloud(&e), &e)
    }
}

/// Whether a failure says a table or queue of the prefix does not exist: the state store's
/// `ResourceNotFoundException` (which names no table) or a queue found missing.
fn not_set_up(f: &Failure) -> bool {
    f.code != EXIT_USAGE
        && ((f.message.contains("dynamodb:") && f.message.contains("ResourceNotFoundException"))
            || f.message
                .contains("does not exist: run `rectify bootstrap`"))
}

/// The tables and queues of the prefix that do not exist, each as `table NAME` or `queue NAME`;
/// `None` when that cannot be found out (the failure then keeps its own message).
async fn missing_parts(config: &Config) -> Option<Vec<String>> {
    let aws = aws_config(config).await.ok()?;
    let names = crate::state::Names::new(&config.prefix);
    let ddb = aws_sdk_dynamodb::Client::new(&aws);
    let sqs = aws_sdk_sqs::Client::new(&aws);
    let mut missing = Vec::new();
    for table in [&names.settings, &names.jobs, &names.audit] {
        match ddb.describe_table().table_name(table.as_str()).send().await {
            Ok(_) => {}
            Err(e) => {
                let e = crate::cloud::classify("dynamodb:DescribeTable", e);
                if !e.is(&["ResourceNotFoundException"]) {
                    return None;
                }
                missing.push(format!("table {table}"));
            }
        }
    }
    for queue in [&names.queue, &names.control, &names.dlq] {
        match crate::source::queue_url(&sqs, queue).await {
            Ok(_) => {}
            Err(QueueError::Missing { .. }) => missing.push(format!("queue {queue}")),
            Err(_) => return None,
        }
    }
    Some(missing)
}

/// A failure because the prefix was never bootstrapped, restated with the missing tables and
/// queues by name and the command that creates them (exit 1).
async fn explain_not_set_up(config: &Config, f: Failure) -> Failure {
    let fix = format!(
        "run `rectify bootstrap --prefix {}` to create the queues and tables (or give the --prefix they were created with)",
        config.prefix
    );
    match missing_parts(config).await {
        Some(missing) if !missing.is_empty() => Failure::failed(format!(
            "prefix {:?} is not set up: {} {} not exist; {fix}",
            config.prefix,
            missing.join(", "),
            if missing.len() == 1 { "does" } else { "do" },
        )),
        // Everything is there after all: the failure is something else.
        Some(_) => f,
        None => Failure::failed(format!("{}; {fix}", f.message)),
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
                call_timeout_seconds: self.global.call_timeout,
            },
        )
        .map_err(|e| Failure::usage(e.to_string()))
    }
}

/// Runs a command.
pub async fn run(cli: Cli, config: Config, started: Instant) -> Result<()> {
    let bootstrap = matches!(cli.command, Command::Bootstrap(_));
    let result = dispatch(cli, &config, started).await;
    match result {
        Err(f) if !bootstrap && not_set_up(&f) => Err(explain_not_set_up(&config, f).await),
        r => r,
    }
}

async fn dispatch(cli: Cli, config: &Config, started: Instant) -> Result<()> {
    let config = config.clone();
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
        Command::Completions(args) => manual::completions(&args),
        Command::Man(args) => manual::man(&args),
    }
}

/// `--mode`: the modes, offered as clap's possible values (in `--help`, completions and the
/// error for any other word).
fn mode_values() -> impl clap::builder::TypedValueParser<Value = crate::catalog::Mode> {
    use crate::catalog::Mode;
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(
        [Mode::Off, Mode::DryRun, Mode::Approval, Mode::Enforce].map(Mode::as_str),
    )
    .try_map(|s| s.parse::<Mode>())
}

/// `--status`: every job status, as clap's possible values.
fn status_values() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        crate::state::JobStatus::ALL
            .iter()
            .map(|s| clap::builder::PossibleValue::new(s.as_str())),
    )
}

pub use output::{Format, OutputArgs};

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// What a command that changes something needs: AWS, the state tables, an audit writer of its
/// own chain, who is making the change, and the AWS identity the command runs as.
struct Operator {
    aws: aws_config::SdkConfig,
    store: Store,
    audit: AuditWriter,
    by: String,
    /// Who the command's credentials belong to.
    caller: crate::app::Caller,
}

/// The [`Operator`] of a change: `by` is `--by`, or the caller's AWS identity when it is not
/// given. Every record the command makes names that identity too.
async fn operator(config: &Config, by: Option<String>) -> Result<Operator> {
    let aws = aws_config(config).await?;
    let me = caller(&aws).await?;
    let by = by.unwrap_or_else(|| me.arn.clone());
    let store = store(config, &aws);
    let audit = AuditWriter::for_command(
        store.client().clone(),
        store.names.audit.clone(),
        me.arn.clone(),
    );
    Ok(Operator {
        aws,
        store,
        audit,
        by,
        caller: me,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::JobStatus;

    fn service(call: &'static str, code: &str, status: u16) -> CloudError {
        CloudError::Service {
            call,
            code: code.into(),
            message: "m".into(),
            status: Some(status),
        }
    }

    #[test]
    fn an_unreachable_or_throttling_aws_has_its_own_exit_code() {
        let down = CloudError::Transport {
            call: "dynamodb:Scan",
            message: "connection refused".into(),
        };
        assert_eq!(Failure::from(down).code, EXIT_UNREACHABLE);
        let throttled = service("dynamodb:Scan", "ThrottlingException", 400);
        assert_eq!(Failure::from(throttled).code, EXIT_UNREACHABLE);
        let failing = StateError::Store(service("dynamodb:Query", "InternalServerError", 500));
        assert_eq!(Failure::from(failing).code, EXIT_UNREACHABLE);
        let job = JobError::State(StateError::Store(service(
            "dynamodb:GetItem",
            "ServiceUnavailable",
            503,
        )));
        assert_eq!(Failure::from(job).code, EXIT_UNREACHABLE);
        assert_eq!(
            Failure::from(AppError::StoreUnreachable).code,
            EXIT_UNREACHABLE
        );
        // A failed call that AWS answered, and a corrupt item, are failures (1), not outages.
        let bad = StateError::Store(service("dynamodb:PutItem", "ValidationException", 400));
        assert_eq!(Failure::from(bad).code, EXIT_FAILED);
        assert_eq!(
            Failure::from(StateError::Corrupt("x".into())).code,
            EXIT_FAILED
        );
        assert_eq!(Failure::from(AppError::NoRegion).code, EXIT_USAGE);
        assert_eq!(
            Failure::from(AppError::NoCredentials("none".into())).code,
            EXIT_USAGE
        );
    }

    /// Every command and subcommand has an about text, and every argument a description (clap's
    /// own `--help` and `--version` aside).
    #[test]
    fn every_command_and_argument_is_described() {
        use clap::CommandFactory;
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() && path != "rectify" {
                missing.push(format!("{path}: no about"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}: no help"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &format!("{path} {}", sub.get_name()), missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "rectify", &mut missing);
        assert!(missing.is_empty(), "undescribed:\n{}", missing.join("\n"));
    }

    /// A flag that takes one of a fixed set of words offers them as clap's possible values.
    #[test]
    fn enum_flags_list_their_possible_values() {
        use clap::CommandFactory;
        let cli = Cli::command();
        let values = |path: &[&str], id: &str| -> Vec<String> {
            let mut cmd = &cli;
            for p in path {
                cmd = cmd.find_subcommand(p).unwrap();
            }
            let arg = cmd
                .get_arguments()
                .find(|a| a.get_id() == id)
                .unwrap_or_else(|| panic!("{path:?} has no {id}"));
            arg.get_possible_values()
                .iter()
                .map(|v| v.get_name().to_string())
                .collect()
        };
        assert_eq!(
            values(&["settings", "set"], "mode"),
            ["off", "dry-run", "approval", "enforce"]
        );
        let statuses: Vec<String> = JobStatus::ALL.iter().map(|s| s.as_str().into()).collect();
        assert_eq!(values(&["jobs", "list"], "status"), statuses);
        assert_eq!(values(&["jobs", "retry"], "status"), statuses);
        assert_eq!(values(&[], "log_format"), ["text", "json"]);
        // Every spelling the flag accepted before still parses to the same mode.
        for mode in ["off", "dry-run", "approval", "enforce"] {
            let cli = Cli::try_parse_from(["rectify", "settings", "set", "x", "--mode", mode])
                .unwrap_or_else(|e| panic!("{mode}: {e}"));
            let Command::Settings(settings::SettingsCommand::Set(args)) = cli.command else {
                panic!("not settings set");
            };
            assert_eq!(args.mode.map(crate::catalog::Mode::as_str), Some(mode));
        }
    }

    #[test]
    fn access_denied_names_the_action_to_allow() {
        let f = Failure::from(service("sqs:SendMessage", "AccessDenied", 403));
        assert_eq!(f.code, EXIT_FAILED);
        assert!(
            f.message.contains("access denied")
                && f.message.contains("sqs:SendMessage allowed")
                && f.message.contains("aws sts get-caller-identity"),
            "{}",
            f.message
        );
    }

    #[test]
    fn a_missing_table_or_queue_reads_as_a_prefix_not_set_up() {
        let table = Failure::from(StateError::Store(service(
            "dynamodb:Scan",
            "ResourceNotFoundException",
            400,
        )));
        assert!(not_set_up(&table), "{}", table.message);
        let queue = Failure::from(QueueError::Missing {
            name: "p-events".into(),
        });
        assert_eq!(queue.code, EXIT_FAILED);
        assert!(not_set_up(&queue), "{}", queue.message);
        let other = Failure::from(service(
            "ec2:DescribeVpcs",
            "ResourceNotFoundException",
            400,
        ));
        assert!(!not_set_up(&other));
    }
}
