//! A job's hold on its resource: the per-resource lock and, once the job is claimed, the job's
//! own lease. Both last one lease (the queue's visibility timeout) and are renewed every half
//! lease while the job runs, so a job that outlives one lease keeps what it holds; a crashed
//! worker's hold simply runs out. Used by the worker's jobs and by undo.
//!
//! The hold is known to last until one lease after the last write that took or renewed it began.
//! A renewal another owner's hold refused, or no renewal within a lease, ends it: from then on
//! [`ResourceLease::holds`] is false, and no action is applied under it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tracing::warn;

use crate::state::{StateError, Store};

/// The lock on one resource, renewed until released (or dropped).
pub struct ResourceLease {
    store: Store,
    key: String,
    owner: String,
    /// The job whose claim is renewed with the lock, and the claim's owner, once claimed.
    claim: Arc<OnceLock<(String, String)>>,
    renewer: JoinHandle<()>,
    /// The lock was released by the write that recorded the job's outcome.
    released: AtomicBool,
    /// Until when the lock and the claim are this worker's for sure; None once either was
    /// found taken over.
    until: Arc<Mutex<Option<Instant>>>,
}

impl ResourceLease {
    /// Takes the lock on `key` for `owner`; `None` when another owner holds it.
    pub async fn take(
        store: &Store,
        key: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ResourceLease>, StateError> {
        let taken = Instant::now();
        if !store.lock_resource(key, owner, lease).await? {
            return Ok(None);
        }
        Ok(Some(ResourceLease::held(store, key, owner, lease, taken)))
    }

    /// The lease on a lock `owner` has just taken on `key` (with the job's claim, in one
    /// write begun at `taken`): from now on it is renewed until released.
    pub fn held(
        store: &Store,
        key: &str,
        owner: &str,
        lease: Duration,
        taken: Instant,
    ) -> ResourceLease {
        let claim: Arc<OnceLock<(String, String)>> = Arc::default();
        let until = Arc::new(Mutex::new(Some(taken + lease)));
        let renewer = tokio::spawn(renew(
            store.clone(),
            key.to_string(),
            owner.to_string(),
            claim.clone(),
            lease,
            until.clone(),
        ));
        ResourceLease {
            store: store.clone(),
            key: key.to_string(),
            owner: owner.to_string(),
            claim,
            renewer,
            released: AtomicBool::new(false),
            until,
        }
    }

    /// Whether the lock (and the claim, once renewed with it) is still this worker's for sure:
    /// false once a renewal found either taken over, or when no renewal landed within a lease.
    pub fn holds(&self) -> bool {
        held_until(&self.until).is_some_and(|u| Instant::now() < u)
    }

    /// The lock's key and owner, for the write that records the job's outcome and releases
    /// the lock with it.
    pub fn lock(&self) -> (&str, &str) {
        (&self.key, &self.owner)
    }

    /// Stops renewing, before the write that releases the lock: a renewal after it would
    /// take the lock again.
    pub fn stop_renewing(&self) {
        self.renewer.abort();
    }

    /// The lock was released with the job's outcome: [`Self::release`] has nothing to do.
    pub fn released_with_outcome(&self) {
        self.released.store(true, Ordering::Relaxed);
    }

    /// From now on the claim on this job, held by `claim_owner`, is renewed with the lock.
    pub fn renew_claim_of(&self, job_id: &str, claim_owner: &str) {
        // A lease covers one job: a second claim under it is ignored.
        let _ = self
            .claim
            .set((job_id.to_string(), claim_owner.to_string()));
    }

    /// Stops renewing and releases the lock.
    pub async fn release(self) {
        self.renewer.abort();
        if self.released.load(Ordering::Relaxed) {
            return;
        }
        if let Err(e) = self.store.unlock_resource(&self.key, &self.owner).await {
            warn!(error = %e, "the resource lock could not be released; it expires with its lease");
        }
    }
}

impl Drop for ResourceLease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn held_until(until: &Mutex<Option<Instant>>) -> Option<Instant> {
    *until.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Renews the lock (and the claim, once there is one) every half lease, and keeps `until` (the
/// end of the hold) up to date: moved on by a renewal of both, ended by a refused one.
async fn renew(
    store: Store,
    key: String,
    owner: String,
    claim: Arc<OnceLock<(String, String)>>,
    lease: Duration,
    until: Arc<Mutex<Option<Instant>>>,
) {
    let every = (lease / 2).max(Duration::from_secs(1));
    let set = |to: Option<Instant>| *until.lock().unwrap_or_else(PoisonError::into_inner) = to;
    while held_until(&until).is_some() {
        tokio::time::sleep(every).await;
        let began = Instant::now();
        let mut renewed = match store.lock_resource(&key, &owner, lease).await {
            Ok(true) => {
                tracing::debug!(seconds = lease.as_secs(), "resource lock renewed");
                true
            }
            Ok(false) => {
                warn!(
                    "the resource lock was taken over: its lease had run out; nothing more is applied under it"
                );
                set(None);
                return;
            }
            Err(e) => {
                warn!(error = %e, "the resource lock could not be renewed");
                false
            }
        };
        if let Some((job, claim_owner)) = claim.get() {
            match store.renew_claim(job, claim_owner, lease).await {
                Ok(true) => tracing::debug!(job = %job, "job lease renewed"),
                Ok(false) => {
                    warn!(job = %job, "the job's lease is no longer this worker's; nothing more is applied under it");
                    set(None);
                    return;
                }
                Err(e) => {
                    warn!(job = %job, error = %e, "the job's lease could not be renewed");
                    renewed = false;
                }
            }
        }
        if renewed {
            set(Some(began + lease));
        }
    }
}
