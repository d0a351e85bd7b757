//! A job's hold on its resource: the per-resource lock and, once the job is claimed, the job's
//! own lease. Both last one lease (the queue's visibility timeout) and are renewed well within
//! it while the job runs, so a job that outlives one lease keeps what it holds; a crashed
//! worker's hold simply runs out. Used by the worker's jobs and by undo.
//!
//! The hold is known to last until one lease after the last write that took or renewed it began,
//! less a second (the table keeps expiries in whole seconds). A renewal refused because another
//! owner holds the lock or the job ends it; so does a lease run out with no renewal on the way,
//! one that has not answered within a further lease, and one that began after the lease had run
//! out (the lock may have been taken, used and released by another job meanwhile, so taking it
//! again would not make the hold whole). From then on [`ResourceLease::holds`] is false, and no
//! action is applied under it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
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
    /// What is known of the hold, kept by the renewals.
    hold: Arc<watch::Sender<Hold>>,
    lease: Duration,
}

/// What is known of a hold.
#[derive(Debug, Clone, Copy)]
struct Hold {
    /// Until when the lock and the claim are this worker's for sure; None once either was
    /// found taken over.
    until: Option<Instant>,
    /// A renewal is on its way: an `until` passed may yet be moved on.
    renewing: bool,
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
        let (hold, _) = watch::channel(Hold {
            until: Some(taken + known(lease)),
            renewing: false,
        });
        let hold = Arc::new(hold);
        let renewer = tokio::spawn(renew(
            store.clone(),
            key.to_string(),
            owner.to_string(),
            claim.clone(),
            (lease, taken),
            hold.clone(),
        ));
        ResourceLease {
            store: store.clone(),
            key: key.to_string(),
            owner: owner.to_string(),
            claim,
            renewer,
            released: AtomicBool::new(false),
            hold,
            lease,
        }
    }

    /// Whether the lock (and the claim, once renewed with it) is still this worker's for sure.
    /// False once a renewal found either taken over. When the lease known has run out while a
    /// renewal is on its way, waits for its answer (at most one more lease): true only if it
    /// moved the hold on.
    pub async fn holds(&self) -> bool {
        let mut seen = self.hold.subscribe();
        let deadline = tokio::time::Instant::now() + self.lease;
        loop {
            let hold = *seen.borrow_and_update();
            match hold.until {
                None => return false,
                Some(until) if Instant::now() < until => return true,
                Some(_) if !hold.renewing => return false,
                Some(_) => {}
            }
            match tokio::time::timeout_at(deadline, seen.changed()).await {
                Ok(Ok(())) => {}
                // No answer within a lease, or the renewals stopped: not known to hold.
                Ok(Err(_)) | Err(_) => return false,
            }
        }
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

/// How long after a write that took or renewed a hold began it is known to last.
fn known(lease: Duration) -> Duration {
    lease.saturating_sub(Duration::from_secs(1))
}

/// Renews the lock (and the claim, once there is one, at the same time) every half of what a
/// renewal is known to give, counted from `taken`: each renewal begins that long after the one
/// before began (or when it ends, if it took longer). Keeps `hold` up to date: moved on when
/// both renewals land, ended when either is refused or when a renewal would begin after the
/// hold ran out.
async fn renew(
    store: Store,
    key: String,
    owner: String,
    claim: Arc<OnceLock<(String, String)>>,
    (lease, taken): (Duration, Instant),
    hold: Arc<watch::Sender<Hold>>,
) {
    // Half of what a renewal is known to give: each begins well before the last one runs out.
    let every = (known(lease) / 2).max(Duration::from_millis(500));
    let first = tokio::time::Instant::from_std(taken + every);
    let mut ticks = tokio::time::interval_at(first, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let began = Instant::now();
        if hold.borrow().until.is_none_or(|until| began >= until) {
            warn!(
                "the hold on the resource ran out before it was renewed; nothing more is applied under it"
            );
            hold.send_modify(|h| h.until = None);
            return;
        }
        hold.send_modify(|h| h.renewing = true);
        let lock = async {
            match store.renew_lock(&key, &owner, lease).await {
                Ok(true) => {
                    tracing::debug!(seconds = lease.as_secs(), "resource lock renewed");
                    Some(true)
                }
                Ok(false) => {
                    warn!(
                        "the resource lock was taken over or let go (its lease had run out); nothing more is applied under it"
                    );
                    Some(false)
                }
                Err(e) => {
                    warn!(error = %e, "the resource lock could not be renewed");
                    None
                }
            }
        };
        let job = async {
            let Some((job, claim_owner)) = claim.get() else {
                return Some(true);
            };
            match store.renew_claim(job, claim_owner, lease).await {
                Ok(true) => {
                    tracing::debug!(job = %job, "job lease renewed");
                    Some(true)
                }
                Ok(false) => {
                    warn!(job = %job, "the job's lease is no longer this worker's; nothing more is applied under it");
                    Some(false)
                }
                Err(e) => {
                    warn!(job = %job, error = %e, "the job's lease could not be renewed");
                    None
                }
            }
        };
        let (lock, job) = tokio::join!(lock, job);
        let lost = lock == Some(false) || job == Some(false);
        hold.send_modify(|h| {
            h.renewing = false;
            if lost {
                h.until = None;
            } else if lock == Some(true) && job == Some(true) {
                h.until = Some(began + known(lease));
            }
        });
        if lost {
            return;
        }
    }
}
