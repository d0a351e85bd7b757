//! What can stop a reconcile before its outcome is durable, and the one policy that turns it
//! into what happens to the message that carried the work.

use crate::state::StateError;

/// A reconcile that could not reach a durable outcome.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("settings cannot be read: {0}")]
    Settings(#[source] StateError),
    #[error("another job holds the resource")]
    ResourceHeld,
    #[error("the resource cannot be locked: {0}")]
    Lock(#[source] StateError),
    #[error("job is held by another worker")]
    JobHeld,
    #[error("job cannot be claimed: {0}")]
    Claim(#[source] StateError),
    #[error("job {job} cannot be read: {source}")]
    ReadJob {
        job: String,
        #[source]
        source: StateError,
    },
    #[error("jobs of {resource} cannot be read: {source}")]
    JobsOfResource {
        resource: String,
        #[source]
        source: StateError,
    },
    #[error("job {job} cannot be cancelled: {source}")]
    Cancel {
        job: String,
        #[source]
        source: StateError,
    },
    #[error("job cannot be expired: {0}")]
    Expire(#[source] StateError),
    #[error("audit cannot be written: {0}")]
    Audit(#[source] StateError),
    #[error("job outcome cannot be written: {0}")]
    Finish(#[source] StateError),
    #[error("the name to lock the resource under cannot be looked up: {0}")]
    LockName(#[source] crate::cloud::CloudError),
}

impl ReconcileError {
    fn state(&self) -> Option<&StateError> {
        match self {
            ReconcileError::Settings(e)
            | ReconcileError::Lock(e)
            | ReconcileError::Claim(e)
            | ReconcileError::Expire(e)
            | ReconcileError::Audit(e)
            | ReconcileError::Finish(e)
            | ReconcileError::ReadJob { source: e, .. }
            | ReconcileError::JobsOfResource { source: e, .. }
            | ReconcileError::Cancel { source: e, .. } => Some(e),
            ReconcileError::ResourceHeld
            | ReconcileError::JobHeld
            | ReconcileError::LockName(_) => None,
        }
    }
}

/// What to do with the message that carried the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Its outcome is durable: delete it.
    Done,
    /// Leave it on the queue; it comes back after its visibility timeout (and after
    /// `maxReceiveCount` receives lands in the DLQ).
    Retry(String),
    /// It can never succeed: copy it to the DLQ with this reason, record it, delete it.
    Poison(String),
    /// The state store cannot be read: leave it, and take no more messages until the store
    /// answers (a long outage would otherwise drain the queue into the DLQ).
    StoreDown(String),
}

impl Disposition {
    /// Of two dispositions for parts of one message, the one the message must follow: a part
    /// that cannot be done yet keeps the whole message on the queue, even beside a part that
    /// never can (that one is met again on the next delivery, and the message is dead-lettered
    /// with its reason once every other part is done): unfinished work is never sent to the DLQ.
    pub fn and(self, other: Disposition) -> Disposition {
        fn rank(d: &Disposition) -> u8 {
            match d {
                Disposition::Done => 0,
                Disposition::Poison(_) => 1,
                Disposition::Retry(_) => 2,
                Disposition::StoreDown(_) => 3,
            }
        }
        if rank(&other) > rank(&self) {
            other
        } else {
            self
        }
    }
}

/// The error policy: an item the store holds but rectify cannot read is poison (retrying reads
/// it again); settings that cannot be read mean the store is down; anything else is retried.
pub fn error_policy(e: &ReconcileError) -> Disposition {
    match (e, e.state()) {
        (_, Some(StateError::Corrupt(_))) => Disposition::Poison(e.to_string()),
        (ReconcileError::Settings(_), _) => Disposition::StoreDown(e.to_string()),
        _ => Disposition::Retry(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::CloudError;

    fn unreachable() -> StateError {
        StateError::Store(CloudError::Transport {
            call: "dynamodb:Scan",
            message: "connection refused".into(),
        })
    }

    #[test]
    fn unreadable_settings_stop_polling_and_keep_the_message() {
        let d = error_policy(&ReconcileError::Settings(unreachable()));
        assert!(
            matches!(&d, Disposition::StoreDown(r) if r.contains("settings cannot be read")),
            "{d:?}"
        );
    }

    #[test]
    fn a_corrupt_job_item_is_poison_wherever_it_is_met() {
        for e in [
            ReconcileError::Claim(StateError::Corrupt("job j1: status \"??\"".into())),
            ReconcileError::ReadJob {
                job: "j1".into(),
                source: StateError::Corrupt("job j1".into()),
            },
            ReconcileError::Settings(StateError::Corrupt("setting x".into())),
        ] {
            assert!(matches!(error_policy(&e), Disposition::Poison(_)), "{e:?}");
        }
    }

    #[test]
    fn contention_and_write_failures_are_retried() {
        for e in [
            ReconcileError::ResourceHeld,
            ReconcileError::JobHeld,
            ReconcileError::Lock(unreachable()),
            ReconcileError::Audit(unreachable()),
            ReconcileError::Finish(StateError::LeaseLost("j1".into())),
        ] {
            assert!(matches!(error_policy(&e), Disposition::Retry(_)), "{e:?}");
        }
        assert_eq!(
            error_policy(&ReconcileError::ResourceHeld),
            Disposition::Retry("another job holds the resource".into())
        );
    }

    #[test]
    fn the_strongest_disposition_of_a_message_wins() {
        let retry = Disposition::Retry("r".into());
        let poison = Disposition::Poison("p".into());
        assert_eq!(Disposition::Done.and(retry.clone()), retry);
        assert_eq!(retry.clone().and(Disposition::Done), retry);
        assert_eq!(Disposition::Done.and(poison.clone()), poison);
        // A part still to do keeps the message from the DLQ, whichever part came first.
        assert_eq!(retry.clone().and(poison.clone()), retry);
        assert_eq!(poison.clone().and(retry.clone()), retry);
        let down = Disposition::StoreDown("s".into());
        assert_eq!(poison.and(down.clone()), down);
        assert_eq!(retry.and(down.clone()), down);
    }
}
