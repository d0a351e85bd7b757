//! The running worker: start-up (catalog, AWS, queues, context), the pollers of the event and
//! control queues, the catalog reload
//! on SIGHUP, the periodic sweep, and shutdown.
//!
//! Start-up checks the catalog before anything touches AWS, so a broken script stops it with the
//! file and line. The poller, the reload and the sweep run in one task tracker under one
//! cancellation token: a stop signal (or the caller) cancels the token, the poller takes no new
//! messages, the sweep stops after the run in progress (waited for as long as the grace period),
//! and the worker returns only once every task has ended, then anchors its audit chain. A
//! fourth task keeps the audit trail covered while the worker runs (liveness, timed anchors).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::audit::{AuditWriter, IDLE_ANCHOR, Liveness, adopt_stopped};
use crate::catalog::Catalog;
use crate::cloud::{Cloud, CloudError, classify};
use crate::config::Config;
use crate::notify::Notifier;
use crate::organization::OrganizationAccounts;
use crate::reconcile::{CatalogHandle, Context};
use crate::script::hardened_engine;
use crate::source::poll::{self, QueueKind, Queues, WorkerOptions};
use crate::source::{QueueError, queue_url};
use crate::state::{Names, SettingsCache, Store};

/// Why the worker (or a command that needs its context) could not start or ended badly.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(
        "no AWS region: set AWS_REGION (export AWS_REGION=eu-west-1), or `region` for the profile in ~/.aws/config"
    )]
    NoRegion,
    #[error(
        "no AWS credentials: {0}; set AWS_PROFILE (after `aws sso login` or `aws configure`), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role (ECS task role, instance profile)"
    )]
    NoCredentials(String),
    #[error("the catalog cannot be loaded: {0}")]
    Catalog(String),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(
        "stopped: the state store (DynamoDB) cannot be read, so nothing was changed; the messages stay on the queue"
    )]
    StoreUnreachable,
}

impl AppError {
    /// Whether the operator's set-up is at fault (exit code 2), not AWS.
    pub fn is_usage(&self) -> bool {
        match self {
            AppError::NoRegion | AppError::NoCredentials(_) | AppError::Catalog(_) => true,
            AppError::Queue(q) => q.is_usage(),
            AppError::Cloud(_) | AppError::StoreUnreachable => false,
        }
    }
}

/// Control messages (approvals, retries) worked on at once, beside `worker.concurrency` findings.
pub const CONTROL_CONCURRENCY: usize = 2;

/// How long a job run by an operator's command (undo, sweep) holds its resource lock.
pub const COMMAND_LEASE: Duration = Duration::from_secs(300);

/// The AWS configuration from the standard chain, each attempt of a call bounded by
/// `config.call_timeout`; an error when it names no region or its credential chain finds no
/// credentials (said before any call, so a missing credential does not read as an unreachable
/// AWS).
pub async fn aws_config(config: &Config) -> Result<aws_config::SdkConfig, AppError> {
    use aws_sdk_sts::config::ProvideCredentials;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(call_timeouts(config.call_timeout))
        .load()
        .await;
    if config.region().is_none() {
        return Err(AppError::NoRegion);
    }
    let Some(provider) = config.credentials_provider() else {
        return Err(AppError::NoCredentials(
            "no credential provider is configured".into(),
        ));
    };
    if let Err(e) = provider.provide_credentials().await {
        return Err(AppError::NoCredentials(crate::cloud::error_chain(&e)));
    }
    Ok(config)
}

/// Each attempt of a call bounded by `attempt`; the SDK's other timeouts (connecting) stay as
/// they are. An attempt that takes longer fails as a timeout, which the SDK retries like any
/// transient error: a call that never answers does not hold its job for ever.
pub fn call_timeouts(attempt: Duration) -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_attempt_timeout(attempt)
        .build()
}

/// The state tables of the configured prefix.
pub fn store(config: &Config, aws: &aws_config::SdkConfig) -> Store {
    Store::new(
        aws_sdk_dynamodb::Client::new(aws),
        Names::new(&config.prefix),
    )
}

/// The hardened script engine and the catalog (embedded, plus the configured directory), every
/// script compiled and every manifest checked.
pub fn load_catalog(config: &Config) -> Result<(Arc<rhai::Engine>, Arc<Catalog>), AppError> {
    let engine = Arc::new(hardened_engine(&config.limits));
    let catalog = Catalog::load(&engine, config.remediations.as_deref())
        .map_err(|e| AppError::Catalog(e.to_string()))?;
    Ok((engine, Arc::new(catalog)))
}

/// Who the AWS credentials belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account: the worker's home account.
    pub account: String,
    /// The identity's ARN: who made a change when an operator does not say.
    pub arn: String,
}

/// The caller's identity, from `sts:GetCallerIdentity`.
pub async fn caller(aws: &aws_config::SdkConfig) -> Result<Caller, CloudError> {
    let id = aws_sdk_sts::Client::new(aws)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| classify("sts:GetCallerIdentity", e))?;
    Ok(Caller {
        account: id.account().unwrap_or_default().to_string(),
        arn: id.arn().unwrap_or("unknown").to_string(),
    })
}

/// Whose records a context's audit writer makes.
pub enum Writer {
    /// The worker's own, in its home account `home` (the caller's, see [`caller`]).
    Worker { home: String },
    /// The pipeline's, run by a command (a sweep, an undo) as `caller`: each record names the
    /// caller's AWS identity; the chain is still a pipeline's, which vouches for no approval.
    Command(Caller),
}

impl Writer {
    fn home(&self) -> String {
        match self {
            Writer::Worker { home } => home.clone(),
            Writer::Command(c) => c.account.clone(),
        }
    }
}

/// Builds what the worker and the sweep need around a loaded catalog: clients whose home
/// account is the writer's, state, audit writer. Member accounts are reached through the
/// worker's role, which can only tighten.
pub fn build_context(
    config: &Config,
    aws: &aws_config::SdkConfig,
    loaded: (Arc<rhai::Engine>, Arc<Catalog>),
    lease: Duration,
    writer: Writer,
) -> Arc<Context> {
    build_context_as(config, aws, loaded, lease, writer, &config.role_name)
}

/// [`build_context`] for undo, run as `caller`: member accounts are reached through the
/// operator's role (`operator_role_name`), which holds the inverses.
pub fn build_undo_context(
    config: &Config,
    aws: &aws_config::SdkConfig,
    loaded: (Arc<rhai::Engine>, Arc<Catalog>),
    lease: Duration,
    caller: Caller,
) -> Arc<Context> {
    build_context_as(
        config,
        aws,
        loaded,
        lease,
        Writer::Command(caller),
        &config.operator_role_name,
    )
}

fn build_context_as(
    config: &Config,
    aws: &aws_config::SdkConfig,
    (engine, catalog): (Arc<rhai::Engine>, Arc<Catalog>),
    lease: Duration,
    writer: Writer,
    role_name: &str,
) -> Arc<Context> {
    let store = store(config, aws);
    let home = writer.home();
    let mut audit = AuditWriter::new(store.client().clone(), store.names.audit.clone())
        .anchored_every(config.anchor_every_records);
    if let Writer::Command(c) = writer {
        audit = audit.on_behalf_of(c.arn);
    }
    Arc::new(Context {
        catalog: CatalogHandle::new(catalog),
        engine,
        limits: config.limits.clone(),
        cloud: Cloud::new(
            aws.clone(),
            home,
            role_name.to_string(),
            config.external_id.clone(),
        ),
        settings: SettingsCache::new(
            store.clone(),
            Duration::from_secs(config.settings_cache_seconds),
        ),
        organization: OrganizationAccounts::new(aws_sdk_organizations::Client::new(aws)),
        notifier: config
            .notify_topic_arn
            .clone()
            .map(|topic| Notifier::new(aws_sdk_sns::Client::new(aws), topic, config.notify_chat)),
        tally: Default::default(),
        owner: audit.chain().to_string(),
        audit,
        store,
        lease,
        approval_ttl: Duration::from_secs(config.approval_ttl_seconds),
    })
}

/// How the worker runs, beyond its configuration.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Drain the queue and return (no periodic sweep).
    pub once: bool,
    /// The long-poll wait with `once` [default: the configuration's `once_wait_seconds`].
    pub wait_seconds: Option<i32>,
    /// Also sweep the worker's own account and region this often.
    pub sweep_every: Option<Duration>,
    /// When the process started, for the start-up time in the "worker ready" line.
    pub started: Instant,
}

/// Runs the worker until `shutdown` is cancelled or a SIGINT/SIGTERM arrives (a second signal
/// exits at once), or with `once` until the queue is drained. SIGHUP reloads the catalog.
pub async fn run(
    config: Config,
    opts: RunOptions,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    // The catalog is checked before anything touches AWS: a broken script stops start-up.
    let loaded = load_catalog(&config)?;
    let aws = aws_config(&config).await?;
    let names = Names::new(&config.prefix);
    // A long poll answers after up to 20 s of waiting for messages: its attempts may take that
    // on top of the call timeout.
    let sqs = aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(&aws)
            .timeout_config(call_timeouts(config.call_timeout + Duration::from_secs(20)))
            .build(),
    );
    // What start-up reads does not depend on each other but for the event queue's visibility
    // timeout on its URL: the reads run at once.
    let events = async {
        let url = queue_url(&sqs, &names.queue).await?;
        let visibility = sqs
            .get_queue_attributes()
            .queue_url(&url)
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
        Ok::<_, AppError>((url, visibility))
    };
    let (events, control_url, dlq_url, identity) = tokio::join!(
        events,
        queue_url(&sqs, &names.control),
        queue_url(&sqs, &names.dlq),
        caller(&aws),
    );
    // Errors in the order the reads were once made, so a missing set of queues names the
    // event queue first.
    let (events_url, visibility) = events?;
    let (control_url, dlq_url, identity) = (control_url?, dlq_url?, identity?);
    let home = identity.account;
    let ctx = build_context(
        &config,
        &aws,
        loaded,
        Duration::from_secs(visibility),
        Writer::Worker { home: home.clone() },
    );
    tracing::info!(account = %home, writer = %ctx.owner, remediations = ctx.catalog.current().all().len(),
        startup_ms = opts.started.elapsed().as_millis() as u64, "worker ready");
    tokio::spawn(stop_on_signal(shutdown.clone()));
    let grace = Duration::from_secs(config.shutdown_grace_seconds);
    // The background tasks stop with the poller: at a shutdown, and when `once` has drained.
    let stop = shutdown.child_token();
    let tracker = TaskTracker::new();
    #[cfg(unix)]
    tracker.spawn(reload_on_hangup(
        ctx.clone(),
        config.remediations.clone(),
        stop.clone(),
    ));
    let liveness = Liveness::new(ctx.store.client().clone(), ctx.store.names.settings.clone());
    tracker.spawn(anchor_periodically(
        ctx.clone(),
        liveness.clone(),
        Duration::from_secs(config.anchor_every_seconds),
        stop.clone(),
    ));
    if let (Some(every), false) = (opts.sweep_every, opts.once) {
        let region = aws
            .region()
            .map(std::string::ToString::to_string)
            .unwrap_or_default();
        tracker.spawn(sweep_periodically(
            ctx.clone(),
            every,
            region,
            grace,
            stop.clone(),
        ));
    }
    let worker_opts = WorkerOptions {
        once: opts.once,
        concurrency: config.concurrency,
        visibility: Duration::from_secs(visibility),
        grace,
        liveness_file: Some(config.liveness_file.clone()),
        wait_seconds: if opts.once {
            opts.wait_seconds.unwrap_or(config.once_wait_seconds)
        } else {
            config.wait_seconds
        },
    };
    // The control queue has a poller of its own, so an approval never waits behind findings.
    let control_opts = WorkerOptions {
        concurrency: CONTROL_CONCURRENCY,
        ..worker_opts.clone()
    };
    let control = tracker.spawn(poll::run(
        ctx.clone(),
        Queues {
            sqs: sqs.clone(),
            queue_url: control_url,
            dlq_url: dlq_url.clone(),
            kind: QueueKind::Control,
        },
        control_opts,
        shutdown.clone(),
    ));
    let poller = tracker.spawn(poll::run(
        ctx.clone(),
        Queues {
            sqs,
            queue_url: events_url,
            dlq_url,
            kind: QueueKind::Events,
        },
        worker_opts,
        shutdown,
    ));
    tracker.close();
    let (summary, control) = match (poller.await, control.await) {
        (Ok(summary), Ok(control)) => (summary, control),
        (Err(e), _) | (_, Err(e)) => std::panic::resume_unwind(e.into_panic()),
    };
    stop.cancel();
    tracker.wait().await;
    match ctx.audit.anchor().await {
        // Anchored: this writer is no longer running, and nothing of it needs adopting.
        Ok(()) => {
            if let Err(e) = liveness.forget(ctx.audit.chain(), None).await {
                tracing::warn!(error = %e, "the worker's liveness item could not be removed; it runs out by itself");
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "the audit chain head could not be anchored; the next worker adopts it");
        }
    }
    if let Err(e) = adopt_stopped(&ctx.audit, &liveness).await {
        tracing::warn!(error = %e, "stopped writers' audit chains could not be adopted");
    }
    let sum = |f: fn(&poll::Summary) -> &std::sync::atomic::AtomicU64| {
        f(&summary).load(Ordering::Relaxed) + f(&control).load(Ordering::Relaxed)
    };
    let jobs = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let totals = poll::RunTotals {
        received: sum(|s| &s.received),
        applied: jobs(&ctx.tally.applied),
        planned: jobs(&ctx.tally.planned),
        held: jobs(&ctx.tally.held),
        failed: jobs(&ctx.tally.failed),
        dead_lettered: sum(|s| &s.dead_lettered),
        left_for_retry: sum(|s| &s.left_for_retry),
    };
    tracing::info!(
        received = totals.received,
        deleted = sum(|s| &s.deleted),
        applied = totals.applied,
        planned = totals.planned,
        held = totals.held,
        failed = totals.failed,
        dead_lettered = totals.dead_lettered,
        left_for_retry = totals.left_for_retry,
        "worker stopped"
    );
    if opts.once {
        // For the person who ran it, whatever the log format.
        eprintln!("rectify worker --once: {totals}");
    }
    if summary.store_unreachable.load(Ordering::Relaxed)
        || control.store_unreachable.load(Ordering::Relaxed)
    {
        // A table that is not there is not an outage (exit 3): it is named, with the command
        // that creates it (exit 1).
        if let Err(crate::state::StateError::Store(e)) = ctx.store.settings().await
            && e.is(&["ResourceNotFoundException"])
        {
            return Err(AppError::Cloud(e));
        }
        return Err(AppError::StoreUnreachable);
    }
    Ok(())
}

/// Cancels `shutdown` at the first SIGINT/SIGTERM and exits the process at the second.
async fn stop_on_signal(shutdown: CancellationToken) {
    wait_for_signal().await;
    tracing::info!(
        "stopping: no new messages are taken; work in flight finishes (a second signal exits at once)"
    );
    shutdown.cancel();
    wait_for_signal().await;
    tracing::warn!(
        "second signal: exiting now; unfinished messages come back after their visibility timeout"
    );
    std::process::exit(130);
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

/// Reloads the remediations at each SIGHUP until `stop`; a catalog that fails to load leaves
/// the current one in force.
#[cfg(unix)]
async fn reload_on_hangup(
    ctx: Arc<Context>,
    remediations: Option<std::path::PathBuf>,
    stop: CancellationToken,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    loop {
        tokio::select! {
            _ = hup.recv() => {},
            () = stop.cancelled() => break,
        }
        match Catalog::load(&ctx.engine, remediations.as_deref()) {
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
                tracing::error!(error = %e, "catalog reload failed; the previous catalog stays in force");
            }
        }
    }
}

/// Keeps the audit trail covered while the worker runs, every `every` (T) until `stop`: renews
/// this writer's liveness item (for three periods, so one slow call does not lapse it), anchors
/// the head when a record is unanchored (so a SIGKILL leaves at most T seconds unanchored) or
/// when nothing was anchored for a minute, and adopts the chains of writers whose liveness ran
/// out (killed before they anchored). The first round runs at once, at start-up.
async fn anchor_periodically(
    ctx: Arc<Context>,
    liveness: Liveness,
    every: Duration,
    stop: CancellationToken,
) {
    let mut adopted_at: Option<Instant> = None;
    loop {
        if let Err(e) = liveness.beat(ctx.audit.chain(), every * 3).await {
            tracing::warn!(error = %e, "the worker's liveness item could not be renewed");
        }
        if adopted_at.is_none_or(|t| t.elapsed() >= IDLE_ANCHOR) {
            adopted_at = Some(Instant::now());
            if let Err(e) = adopt_stopped(&ctx.audit, &liveness).await {
                tracing::warn!(error = %e, "stopped writers' audit chains could not be adopted");
            }
        }
        if let Err(e) = ctx.audit.anchor_if_due().await {
            tracing::warn!(error = %e, "the audit chain head could not be anchored; it will be at the next try");
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {},
            () = stop.cancelled() => break,
        }
    }
}

/// Sweeps the worker's own account and region every `every` until `stop`. A sweep in progress
/// when `stop` is cancelled may finish within `grace`; past it, its unfinished jobs are left
/// (their claims expire and the next sweep or event takes them up).
async fn sweep_periodically(
    ctx: Arc<Context>,
    every: Duration,
    region: String,
    grace: Duration,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {},
            () = stop.cancelled() => break,
        }
        let all = ctx.catalog.current().all().to_vec();
        let accounts = [ctx.cloud.home_account().to_string()];
        let sweep =
            crate::sweep::sweep(&ctx, &all, &accounts, std::slice::from_ref(&region), false);
        let over = async {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            r = sweep => r,
            () = over => {
                tracing::warn!("grace period over: the periodic sweep in progress is stopped; the next sweep finds what it left");
                break;
            }
        };
        match result {
            Ok(lines) => {
                let found: usize = lines.iter().map(|l| l.would_change.len()).sum();
                let scanned: usize = lines.iter().map(|l| l.scanned).sum();
                tracing::info!(scanned, non_compliant = found, "periodic sweep done");
            }
            Err(e) => tracing::warn!(error = %e, "periodic sweep failed"),
        }
    }
}
