//! The worker: polls the queues, hands each message to the controller, and deletes it only once
//! its outcome is durable.
//!
//! Two queues are read, each by its own poller: the event queue, which takes findings only, and
//! the control queue, which takes rectify's control messages only (approvals, retries); a
//! message of the other kind is poison on either (see [`accept`]). Security Hub findings relayed
//! by another account are acted on only when it is the Security Hub administrator account.
//!
//! Concurrency is a semaphore: the poller asks SQS for no more messages than it has room to work
//! on, so nothing waits on the queue's clock while held here; while busy it waits briefly for
//! room for a whole batch, so each ReceiveMessage brings up to ten. A message that cannot be decoded is
//! a poison message: it is copied to the DLQ at once with its reason as a message attribute,
//! recorded in the audit trail, and deleted, so it never blocks the queue. Work that must be
//! retried is left undeleted: it comes back after its visibility timeout, and after the queue's
//! `maxReceiveCount` receives SQS moves it to the DLQ. Finished messages are deleted in batches
//! ([`super::delete`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    Message as SqsMessage, MessageAttributeValue, MessageSystemAttributeName,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::delete::Deleter;
use crate::audit::Record;
use crate::cloud::classify;
use crate::event::{Control, Message, check_relay, decode};
use crate::reconcile::{
    Context, Disposition, ReconcileError, error_policy, handle_finding, rerun_job,
};

/// The message attribute that carries a dead-lettered message's reason.
pub const REASON_ATTRIBUTE: &str = "rectify-reason";

/// The message attribute that carries how many times the event queue had delivered a message
/// when rectify dead-lettered it.
pub const RECEIVE_COUNT_ATTRIBUTE: &str = "rectify-receive-count";

/// SQS's count of receives of `m`, as received.
fn receive_count(m: &SqsMessage) -> Option<u64> {
    m.attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
}

/// How the worker polls.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Drain the queue and exit.
    pub once: bool,
    /// Messages worked on at once.
    pub concurrency: usize,
    /// Long-poll wait in seconds (SQS allows 0–20).
    pub wait_seconds: i32,
    /// The queue's visibility timeout: a message worked on for longer than half of it has its
    /// visibility extended.
    pub visibility: Duration,
    /// After a stop signal, how long work in flight may take to finish.
    pub grace: Duration,
    /// Touched after every poll; `rectify healthcheck` reads its age.
    pub liveness_file: Option<std::path::PathBuf>,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    pub received: AtomicU64,
    pub deleted: AtomicU64,
    pub dead_lettered: AtomicU64,
    pub left_for_retry: AtomicU64,
    /// Set when the run ended because the state store could not be read (with `once`).
    pub store_unreachable: std::sync::atomic::AtomicBool,
}

/// What one run of the worker did, as the line `worker --once` ends with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunTotals {
    pub received: u64,
    pub applied: u64,
    pub planned: u64,
    pub held: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    pub left_for_retry: u64,
}

impl std::fmt::Display for RunTotals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} message(s) received: {} applied, {} planned, {} held for a person, {} failed, {} dead-lettered, {} left for retry",
            self.received,
            self.applied,
            self.planned,
            self.held,
            self.failed,
            self.dead_lettered,
            self.left_for_retry
        )
    }
}

/// Which queue a poller reads, and so which messages it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueKind {
    /// `<prefix>-events`: findings from EventBridge (and SNS), never control messages.
    Events,
    /// `<prefix>-control`: rectify's control messages only, sent by operators' commands.
    Control,
}

/// The queue a poller reads, and the DLQ it dead-letters to.
#[derive(Clone)]
pub struct Queues {
    pub sqs: Client,
    pub queue_url: String,
    pub dlq_url: String,
    pub kind: QueueKind,
}

/// Refuses a message that does not belong on the queue it came from: a control message on the
/// event queue (whoever can send events must not be able to approve or re-run jobs), or
/// anything but a control message on the control queue. The error is the DLQ reason.
pub fn accept(kind: QueueKind, message: Message) -> Result<Message, String> {
    match (kind, message) {
        (QueueKind::Events, Message::Control(_)) => {
            Err("control messages are not accepted on the event queue: they are sent to the control queue by `rectify jobs approve` and `rectify jobs retry`".into())
        }
        (QueueKind::Control, Message::Control(c)) => Ok(Message::Control(c)),
        (QueueKind::Control, _) => {
            Err("only rectify control messages are accepted on the control queue".into())
        }
        (QueueKind::Events, m) => Ok(m),
    }
}

/// Polls until `shutdown` (or, with `once`, until the queue is drained).
pub async fn run(
    ctx: Arc<Context>,
    queues: Queues,
    opts: WorkerOptions,
    shutdown: CancellationToken,
) -> Arc<Summary> {
    let summary = Arc::new(Summary::default());
    let concurrency = opts.concurrency.max(1);
    let permits = Arc::new(Semaphore::new(concurrency));
    let tracker = TaskTracker::new();
    let mut backoff = Duration::from_millis(250);
    info!(queue = %queues.queue_url, kind = ?queues.kind, concurrency, once = opts.once, "polling");
    let mut store_backoff = Duration::from_millis(500);
    // Set by a job whose disposition says the state store is down.
    let store_down = Arc::new(AtomicBool::new(false));
    let (deleter, deleting) = Deleter::start(queues.sqs.clone(), queues.queue_url.clone());
    loop {
        // While the state store cannot be read, take no messages: they would only come back,
        // and a long outage would drain the queue into the DLQ.
        if store_down.load(Ordering::Relaxed) {
            match ctx.settings.get().await {
                Ok(_) => {
                    store_down.store(false, Ordering::Relaxed);
                    store_backoff = Duration::from_millis(500);
                    info!("state store reachable again: taking messages");
                }
                Err(e) => {
                    error!(error = %e, retry_in_ms = store_backoff.as_millis() as u64,
                        "state store unreachable: not taking messages until it answers");
                    if opts.once {
                        summary.store_unreachable.store(true, Ordering::Relaxed);
                        break;
                    }
                    tokio::select! {
                        () = tokio::time::sleep(store_backoff) => {},
                        () = shutdown.cancelled() => break,
                    }
                    store_backoff = (store_backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
        }
        let held = tokio::select! {
            h = room_for_a_batch(&permits, concurrency.min(BATCH)) => match h { Some(h) => h, None => break },
            () = shutdown.cancelled() => break,
        };
        let room = held.len() as i32;
        let receive = queues
            .sqs
            .receive_message()
            .queue_url(&queues.queue_url)
            .max_number_of_messages(room)
            .wait_time_seconds(opts.wait_seconds)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names("All")
            .send();
        let received = tokio::select! {
            r = receive => r,
            () = shutdown.cancelled() => break,
        };
        let messages = match received {
            Ok(out) => {
                backoff = Duration::from_millis(250);
                if let Some(path) = &opts.liveness_file {
                    touch(path);
                }
                out.messages.unwrap_or_default()
            }
            Err(e) => {
                let e = classify("sqs:ReceiveMessage", e);
                error!(error = %e, retry_in_ms = backoff.as_millis() as u64, "polling the queue failed");
                drop(held);
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {},
                    () = shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        if messages.is_empty() {
            drop(held);
            if opts.once {
                if permits.available_permits() == concurrency {
                    break;
                }
                // Work is still in flight: wait for it, then look once more, since a retried
                // job may have put something back.
                match permits.acquire_many(concurrency as u32).await {
                    Ok(all) => drop(all),
                    Err(_) => break,
                }
            }
            continue;
        }
        // SQS returns at most `room` messages: one held permit each; the rest are released.
        let mut held = held.into_iter();
        for m in messages {
            let Some(permit) = held.next() else { break };
            summary.received.fetch_add(1, Ordering::Relaxed);
            let in_flight = deleter.received();
            let (ctx, queues, summary, store_down, deleter) = (
                ctx.clone(),
                queues.clone(),
                summary.clone(),
                store_down.clone(),
                deleter.clone(),
            );
            let visibility = opts.visibility;
            tracker.spawn(async move {
                let heartbeat = tokio::spawn(heartbeat(
                    queues.clone(),
                    m.receipt_handle().map(str::to_string),
                    visibility,
                ));
                if handle_message(&ctx, &queues, &summary, &deleter, m).await {
                    store_down.store(true, Ordering::Relaxed);
                }
                heartbeat.abort();
                drop(in_flight);
                drop(permit);
            });
        }
    }
    tracker.close();
    if opts.once && store_down.load(Ordering::Relaxed) {
        summary.store_unreachable.store(true, Ordering::Relaxed);
    }
    if !tracker.is_empty() {
        info!(
            in_flight = tracker.len(),
            grace_seconds = opts.grace.as_secs(),
            "waiting for work in flight"
        );
    }
    if tokio::time::timeout(opts.grace, tracker.wait())
        .await
        .is_err()
    {
        warn!(
            in_flight = tracker.len(),
            "grace period over: unfinished messages stay on the queue and come back after their visibility timeout"
        );
    }
    deleting.abort();
    summary
}

/// The most messages one ReceiveMessage returns.
const BATCH: usize = 10;

/// How long a busy poller waits for room for a whole batch before it asks for fewer.
const GATHER: Duration = Duration::from_millis(500);

/// Takes the permits for the next receive: at least one, and up to `batch`. While jobs hold
/// most permits, it waits up to `GATHER` for room for a whole batch, so a busy worker asks
/// SQS for ten messages at a time instead of one each time a job ends. An idle worker polls
/// at once. None when the semaphore is closed.
async fn room_for_a_batch(
    permits: &Arc<Semaphore>,
    batch: usize,
) -> Option<Vec<OwnedSemaphorePermit>> {
    let mut held = vec![permits.clone().acquire_owned().await.ok()?];
    let deadline = tokio::time::Instant::now() + GATHER;
    while held.len() < batch {
        if let Ok(p) = permits.clone().try_acquire_owned() {
            held.push(p);
            continue;
        }
        match tokio::time::timeout_at(deadline, permits.clone().acquire_owned()).await {
            Ok(Ok(p)) => held.push(p),
            Ok(Err(_)) => return None,
            Err(_) => break,
        }
    }
    Some(held)
}

/// Marks the worker alive: the file's modification time is the last successful poll.
fn touch(path: &std::path::Path) {
    let result = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(path)
        .and_then(|mut f| std::io::Write::write_all(&mut f, crate::clock::now_text().as_bytes()));
    if let Err(e) = result {
        warn!(path = %path.display(), error = %e, "the liveness file cannot be written");
    }
}

/// Keeps a message hidden while its job runs: every half visibility timeout, its visibility is
/// extended by a whole one.
async fn heartbeat(queues: Queues, receipt: Option<String>, visibility: Duration) {
    let Some(receipt) = receipt else { return };
    let every = (visibility / 2).max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let extend = queues
            .sqs
            .change_message_visibility()
            .queue_url(&queues.queue_url)
            .receipt_handle(&receipt)
            .visibility_timeout(visibility.as_secs().clamp(1, 43_200) as i32)
            .send()
            .await;
        match extend {
            Ok(_) => tracing::debug!(
                seconds = visibility.as_secs(),
                "message visibility extended"
            ),
            Err(e) => {
                warn!(error = %classify("sqs:ChangeMessageVisibility", e), "message visibility could not be extended");
            }
        }
    }
}

/// Works on one message and acts on its disposition. True when the state store is down.
async fn handle_message(
    ctx: &Context,
    queues: &Queues,
    summary: &Summary,
    deleter: &Deleter,
    m: SqsMessage,
) -> bool {
    let message_id = m.message_id().unwrap_or("?").to_string();
    let body = m.body().unwrap_or_default();
    let decoded = decode(body)
        .map_err(|e| e.to_string())
        .and_then(|m| accept(queues.kind, m));
    let disposition = match decoded {
        Err(reason) => {
            crate::metrics::finding_received("poison");
            dead_letter(ctx, queues, summary, &m, &reason).await;
            return false;
        }
        Ok(Message::Ignored(why)) => {
            info!(message_id = %message_id, why = %why, "message asks nothing of rectify");
            Disposition::Done
        }
        Ok(Message::Control(Control::RunJob { job_id })) => rerun_job(ctx, &job_id).await,
        Ok(Message::Findings(findings)) => handle_findings(ctx, &findings).await,
        Ok(Message::Relayed { by, findings }) => match ctx.settings.get().await {
            Err(e) => error_policy(&ReconcileError::Settings(e)),
            Ok(s) => match check_relay(&by, s.global.securityhub_admin.as_deref()) {
                Ok(()) => handle_findings(ctx, &findings).await,
                Err(reason) => Disposition::Poison(reason),
            },
        },
    };
    let store_down = matches!(disposition, Disposition::StoreDown(_));
    match disposition {
        Disposition::Done => {
            if let Some(receipt) = m.receipt_handle()
                && deleter.delete(receipt).await
            {
                summary.deleted.fetch_add(1, Ordering::Relaxed);
            }
        }
        Disposition::Poison(reason) => dead_letter(ctx, queues, summary, &m, &reason).await,
        Disposition::Retry(reason) | Disposition::StoreDown(reason) => {
            summary.left_for_retry.fetch_add(1, Ordering::Relaxed);
            let receives = m
                .attributes()
                .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                .map_or("?", String::as_str);
            warn!(message_id = %message_id, receives, reason = %reason,
                "message left on the queue: it comes back after its visibility timeout");
        }
    }
    store_down
}

async fn handle_findings(ctx: &Context, findings: &[crate::event::Finding]) -> Disposition {
    let mut d = Disposition::Done;
    for f in findings {
        crate::metrics::finding_received(f.source.as_str());
        d = d.and(handle_finding(ctx, f).await);
    }
    d
}

async fn delete(queues: &Queues, summary: &Summary, m: &SqsMessage) {
    let Some(handle) = m.receipt_handle() else {
        return;
    };
    match queues
        .sqs
        .delete_message()
        .queue_url(&queues.queue_url)
        .receipt_handle(handle)
        .send()
        .await
    {
        Ok(_) => {
            summary.deleted.fetch_add(1, Ordering::Relaxed);
        }
        // The outcome is durable; a redelivery is acknowledged as a duplicate.
        Err(e) => warn!(error = %classify("sqs:DeleteMessage", e), "message could not be deleted"),
    }
}

fn text_attribute(v: &str) -> Option<MessageAttributeValue> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(v)
        .build()
        .ok()
}

/// Sends a poison message to the DLQ with its reason, records it, and deletes it.
async fn dead_letter(
    ctx: &Context,
    queues: &Queues,
    summary: &Summary,
    m: &SqsMessage,
    reason: &str,
) {
    let message_id = m.message_id().unwrap_or("?").to_string();
    let reason: String = reason.chars().take(1000).collect();
    let mut send = queues
        .sqs
        .send_message()
        .queue_url(&queues.dlq_url)
        .message_body(m.body().unwrap_or_default());
    // SQS counts attributes toward its 256 KiB message limit: a body near the limit keeps as
    // much of the reason as fits (the audit record holds it whole).
    let now = crate::clock::now_text();
    let room = 262_144usize.saturating_sub(m.body().unwrap_or_default().len());
    let mut attributes = vec![
        (REASON_ATTRIBUTE, reason.clone()),
        ("rectify-source-message-id", message_id.clone()),
        ("rectify-dead-lettered-at", now),
    ];
    // Kept with the message so that `rectify dlq list` can show how often the event queue
    // delivered it, a count its own receives on the DLQ do not change.
    if let Some(count) = receive_count(m) {
        attributes.insert(1, (RECEIVE_COUNT_ATTRIBUTE, count.to_string()));
    }
    let size = |a: &[(&str, String)]| a.iter().map(|(k, v)| k.len() + v.len() + 6).sum::<usize>();
    while size(&attributes) > room && attributes.len() > 1 {
        attributes.pop();
    }
    if size(&attributes) > room {
        let keep = room.saturating_sub(REASON_ATTRIBUTE.len() + 6);
        attributes[0].1 = attributes[0].1.chars().take(keep).collect();
        if attributes[0].1.is_empty() {
            attributes.clear();
        }
    }
    for (k, v) in &attributes {
        if let Some(attr) = text_attribute(v) {
            send = send.message_attributes(*k, attr);
        }
    }
    let dlq_message_id = match send.send().await {
        Ok(out) => out.message_id().unwrap_or("?").to_string(),
        Err(e) => {
            // Left on the queue: SQS dead-letters it itself after maxReceiveCount receives.
            summary.left_for_retry.fetch_add(1, Ordering::Relaxed);
            error!(message_id = %message_id, reason = %reason, error = %classify("sqs:SendMessage", e), "poison message could not be sent to the DLQ");
            return;
        }
    };
    // The copy in the DLQ has an id of its own: `dlq_message_id` is the one `rectify dlq list`
    // shows and `rectify dlq redrive --id` takes.
    warn!(message_id = %message_id, dlq_message_id = %dlq_message_id, reason = %reason, "poison message sent to the DLQ");
    if let Err(e) = ctx.audit.append(Record::poison(&message_id, &reason)).await {
        // The DLQ holds the message and its reason; deleting it now would leave no audit record.
        summary.left_for_retry.fetch_add(1, Ordering::Relaxed);
        error!(message_id = %message_id, dlq_message_id = %dlq_message_id, error = %e, "poison message could not be recorded; it stays on the queue");
        return;
    }
    summary.dead_lettered.fetch_add(1, Ordering::Relaxed);
    crate::metrics::dlq_sent();
    delete(queues, summary, m).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::JobTally;
    use crate::state::JobStatus;

    #[test]
    fn the_run_summary_counts_jobs_by_what_they_ask_of_a_person() {
        let tally = JobTally::default();
        for s in [
            JobStatus::Applied,
            JobStatus::Planned,
            JobStatus::Planned,
            JobStatus::PendingApproval,
            JobStatus::Exempt,
            JobStatus::NeedsParameter,
            JobStatus::FailedVerify,
            JobStatus::NoOp,
        ] {
            tally.count(s);
        }
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let totals = RunTotals {
            received: 9,
            applied: load(&tally.applied),
            planned: load(&tally.planned),
            held: load(&tally.held),
            failed: load(&tally.failed),
            dead_lettered: 1,
            left_for_retry: 0,
        };
        assert_eq!(
            totals.to_string(),
            "9 message(s) received: 1 applied, 2 planned, 3 held for a person, 1 failed, 1 dead-lettered, 0 left for retry"
        );
    }

    #[test]
    fn each_queue_accepts_only_its_own_kind_of_message() {
        let control = Message::Control(Control::RunJob {
            job_id: "j1".into(),
        });
        let finding = Message::Ignored("a configuration item".into());
        let refused = accept(QueueKind::Events, control.clone()).unwrap_err();
        assert!(
            refused.contains("control messages are not accepted on the event queue"),
            "{refused}"
        );
        assert_eq!(accept(QueueKind::Control, control.clone()), Ok(control));
        let refused = accept(QueueKind::Control, finding.clone()).unwrap_err();
        assert!(refused.contains("control queue"), "{refused}");
        assert_eq!(accept(QueueKind::Events, finding.clone()), Ok(finding));
    }

    #[tokio::test]
    async fn an_idle_worker_takes_room_for_a_whole_batch_at_once() {
        let permits = Arc::new(Semaphore::new(16));
        let held = room_for_a_batch(&permits, BATCH).await.unwrap();
        assert_eq!(held.len(), BATCH);
        assert_eq!(permits.available_permits(), 6);
    }

    #[tokio::test]
    async fn a_busy_worker_waits_for_jobs_to_end_until_a_whole_batch_fits() {
        let permits = Arc::new(Semaphore::new(16));
        let mut busy = Vec::new();
        for _ in 0..14 {
            busy.push(permits.clone().acquire_owned().await.unwrap());
        }
        // Jobs end one after another while the poller waits.
        let ending = tokio::spawn(async move {
            while busy.pop().is_some() {
                tokio::task::yield_now().await;
            }
        });
        let held = room_for_a_batch(&permits, BATCH).await.unwrap();
        assert_eq!(
            held.len(),
            BATCH,
            "not {} as soon as one job ended",
            held.len()
        );
        ending.await.unwrap();
    }

    #[tokio::test]
    async fn jobs_that_do_not_end_leave_the_poller_the_room_there_is() {
        let permits = Arc::new(Semaphore::new(16));
        let _busy = permits.clone().acquire_many_owned(13).await.unwrap();
        let held = room_for_a_batch(&permits, BATCH).await.unwrap();
        assert_eq!(held.len(), 3);
    }

    #[tokio::test]
    async fn a_closed_semaphore_ends_the_wait() {
        let permits = Arc::new(Semaphore::new(4));
        permits.close();
        assert!(room_for_a_batch(&permits, BATCH).await.is_none());
    }
}
