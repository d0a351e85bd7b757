//! Deleting finished messages in batches: one `DeleteMessageBatch` (at most ten) for the
//! messages whose outcomes became durable at about the same time.
//!
//! A message is handed over only once its outcome is durable, and waits here until its
//! deletion is answered. It waits only while other messages received are still being worked
//! on, and never longer than [`WINDOW`]: an idle worker deletes at once, a busy one deletes the
//! messages of a batch together. A message whose deletion fails stays on the queue; its
//! redelivery is acknowledged as a duplicate.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_sqs::types::DeleteMessageBatchRequestEntry;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;
use tracing::warn;

use crate::cloud::classify;

/// The longest a finished message waits for others to be deleted with it.
pub const WINDOW: Duration = Duration::from_millis(100);

/// The most messages one DeleteMessageBatch deletes (SQS's limit).
const BATCH: usize = 10;

#[derive(Default)]
struct State {
    /// Receipt handles waiting for their deletion, oldest first, with whom to tell.
    waiting: Vec<(String, oneshot::Sender<bool>)>,
    /// Since when the oldest has waited.
    since: Option<Instant>,
    /// Messages received and not yet done with (those waiting here included).
    in_flight: usize,
}

impl State {
    /// Whether the waiting messages are deleted now: a whole batch, or every message in flight
    /// is waiting (no other will join them), or the oldest has waited long enough.
    fn due(&self, now: Instant) -> bool {
        !self.waiting.is_empty()
            && (self.waiting.len() >= BATCH
                || self.waiting.len() >= self.in_flight
                || self.since.is_some_and(|s| now >= s + WINDOW))
    }
}

/// Deletes one queue's finished messages in batches.
#[derive(Clone)]
pub struct Deleter {
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    state: Arc<Mutex<State>>,
    wake: Arc<Notify>,
}

/// One received message, counted in flight until dropped.
pub struct InFlight(Deleter);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.with(|s| s.in_flight = s.in_flight.saturating_sub(1));
        self.0.wake.notify_one();
    }
}

impl Deleter {
    /// A deleter for `queue_url`, and the task that sends its batches (abort it once every
    /// message is done with).
    pub fn start(
        sqs: aws_sdk_sqs::Client,
        queue_url: String,
    ) -> (Deleter, tokio::task::JoinHandle<()>) {
        let d = Deleter {
            sqs,
            queue_url,
            state: Arc::default(),
            wake: Arc::default(),
        };
        let task = tokio::spawn(d.clone().run());
        (d, task)
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A message was received: it is in flight until the value returned is dropped.
    pub fn received(&self) -> InFlight {
        self.with(|s| s.in_flight += 1);
        InFlight(self.clone())
    }

    /// Deletes a message whose outcome is durable; true once SQS confirmed it.
    pub async fn delete(&self, receipt: &str) -> bool {
        let (tx, rx) = oneshot::channel();
        self.with(|s| {
            if s.waiting.is_empty() {
                s.since = Some(Instant::now());
            }
            s.waiting.push((receipt.to_string(), tx));
        });
        self.wake.notify_one();
        rx.await.unwrap_or(false)
    }

    async fn run(self) {
        loop {
            let deadline = self.with(|s| s.since.map(|t| t + WINDOW));
            match deadline {
                Some(d) => {
                    tokio::select! {
                        () = self.wake.notified() => {}
                        () = tokio::time::sleep_until(d) => {}
                    }
                }
                None => self.wake.notified().await,
            }
            loop {
                let batch = self.with(|s| {
                    if !s.due(Instant::now()) {
                        return Vec::new();
                    }
                    let n = s.waiting.len().min(BATCH);
                    let batch: Vec<_> = s.waiting.drain(..n).collect();
                    s.since = (!s.waiting.is_empty()).then(Instant::now);
                    batch
                });
                if batch.is_empty() {
                    break;
                }
                self.send(batch).await;
            }
        }
    }

    async fn send(&self, batch: Vec<(String, oneshot::Sender<bool>)>) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = batch
            .iter()
            .enumerate()
            .filter_map(|(i, (receipt, _))| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .receipt_handle(receipt)
                    .build()
                    .ok()
            })
            .collect();
        let result = self
            .sqs
            .delete_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await;
        let deleted: Vec<bool> = match result {
            Ok(out) => {
                for f in out.failed() {
                    warn!(code = %f.code(), error = f.message().unwrap_or_default(),
                        "message could not be deleted");
                }
                (0..batch.len())
                    .map(|i| {
                        let id = format!("m{i}");
                        out.successful().iter().any(|s| s.id() == id)
                    })
                    .collect()
            }
            Err(e) => {
                warn!(error = %classify("sqs:DeleteMessageBatch", e), count = batch.len(),
                    "messages could not be deleted");
                vec![false; batch.len()]
            }
        };
        for ((_, tx), ok) in batch.into_iter().zip(deleted) {
            let _ = tx.send(ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(n: usize) -> Vec<(String, oneshot::Sender<bool>)> {
        (0..n)
            .map(|i| (format!("r{i}"), oneshot::channel().0))
            .collect()
    }

    #[test]
    fn finished_messages_wait_only_for_others_still_in_flight_and_only_so_long() {
        let now = Instant::now();
        let state = |w: usize, in_flight: usize, since: Option<Instant>| State {
            waiting: waiting(w),
            since,
            in_flight,
        };
        // Nothing waits: nothing to send.
        assert!(!state(0, 3, None).due(now));
        // An idle worker's one finished message is deleted at once.
        assert!(state(1, 1, Some(now)).due(now));
        // Others are still being worked on: wait for them, within the window.
        assert!(!state(2, 5, Some(now)).due(now));
        assert!(state(2, 5, Some(now)).due(now + WINDOW));
        // A whole batch goes at once.
        assert!(state(10, 16, Some(now)).due(now));
    }
}
