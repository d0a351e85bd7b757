//! Apply: the inverse of every action is computed first (nothing is applied that cannot be
//! undone), then the blast-radius breaker admits the enforcement (so a refused plan never uses
//! a slot; a fresh job's claim counted it ahead, and that count is spent here), then each
//! action runs through the typed action layer. An action that creates something sends a
//! `ClientToken` derived from the job and the action (a redelivery gets the same resource back),
//! and the id AWS gave it is recorded on the job (`created`), from which its inverse, the delete
//! of exactly that, is completed.

use std::time::Instant;

use serde_json::Value;

use super::Context;
use super::gates::Go;
use super::lease::ResourceLease;
use super::outcome::Outcome;
use super::plan::observe;
use tracing::info;

use crate::action::apply::Applied;
use crate::action::{Created, Plan};
use crate::catalog::Remediation;
use crate::state::{Breaker, Job, Reservation, SettingsSnapshot};

/// Why applying stopped the job.
#[derive(Debug)]
pub struct Stopped {
    pub outcome: Outcome,
    pub retry: Option<String>,
}

impl From<Outcome> for Stopped {
    fn from(outcome: Outcome) -> Stopped {
        Stopped {
            outcome,
            retry: None,
        }
    }
}

/// What a job applies.
pub struct Target<'a> {
    pub plan: &'a Plan,
    /// The reading the plan was made from (an earlier try's, when the job goes on with that
    /// try's plan): the inverse is made from it.
    pub before: &'a Value,
    /// This run's reading: whether the resource can be changed now is asked of it.
    pub read: &'a Value,
    /// With a job that goes on with an earlier try's plan, the actions this run's reading still
    /// asks for: only those are applied, the plan's others are in place already. Each keeps its
    /// place in the plan, so a creating action sends the token the earlier try sent.
    pub left: Option<&'a [crate::action::Action]>,
}

/// Applies the target's plan; records the inverse on the job first. Returns how long applying
/// took, in milliseconds. An enforcement `reserved` in the job's claim is spent here, in place of the
/// breaker's admission; one left unspent is given back with the job's outcome. No action is
/// applied once `lease` no longer holds the resource and the job: another worker may have
/// taken them over.
#[allow(clippy::too_many_arguments)] // reason: the job, its context and what the claim and the plan gave
pub async fn apply(
    ctx: &Context,
    r: &Remediation,
    snapshot: &SettingsSnapshot,
    job: &mut Job,
    target: &Target<'_>,
    go: Go,
    reserved: &mut Option<Reservation>,
    lease: &ResourceLease,
) -> Result<f64, Stopped> {
    let Target {
        plan,
        before,
        read,
        left,
    } = *target;
    match crate::action::inverses(plan, before) {
        Ok(inv) => job.inverse = Some(inv),
        Err(e) => {
            return Err(Outcome::Refused {
                error: e.to_string(),
            }
            .into());
        }
    }
    // Checked before the breaker, so that waiting for the resource never uses a slot.
    let name = crate::resource::lock_name_of(&job.resource_type, &job.resource_id, read);
    let why = crate::resource::not_ready(&job.resource_type, read).or_else(|| {
        let wanted = super::lock_key(job, r.scope(), &name);
        super::gates::locked_under(lease.lock().0, &wanted, &name)
    });
    if let Some(why) = why {
        info!(reason = %why, "the resource cannot be changed now: nothing is applied");
        return Err(Stopped {
            outcome: Outcome::NotReady {
                reason: why.clone(),
                approved: go == Go::Approved,
            },
            retry: Some(why),
        });
    }
    let lost = |done: usize| Stopped {
        outcome: Outcome::HoldLost {
            done,
            total: plan.actions.len(),
        },
        retry: Some("the hold on the resource and the job ran out".into()),
    };
    if go == Go::Enforce && reserved.take().is_none() {
        // An admission is a count: none is spent under a hold already lost.
        if !lease.holds().await {
            return Err(lost(0));
        }
        let b = snapshot.breaker(r, &job.account);
        match ctx.store.breaker_admit(&b).await {
            Ok(Breaker::Admitted) => {}
            Ok(Breaker::Tripped(count)) => {
                return Err(Stopped {
                    outcome: Outcome::BreakerTripped {
                        count,
                        limit: b.limit,
                        window: b.window_seconds,
                    },
                    retry: None,
                });
            }
            Err(e) => {
                return Err(Stopped {
                    outcome: Outcome::BreakerUnreadable {
                        error: e.to_string(),
                    },
                    retry: Some(e.to_string()),
                });
            }
        }
    }
    let applying = Instant::now();
    for (i, action) in plan.actions.iter().enumerate() {
        if left.is_some_and(|left| !left.contains(action)) {
            info!(action = %action.summary(), "applied by an earlier try: left as it is");
            continue;
        }
        if !lease.holds().await {
            job.after = observe(ctx, job).await.ok();
            return Err(lost(i));
        }
        let token = crate::action::client_token(&job.id, i, action);
        match crate::action::apply::apply(&ctx.cloud, &job.account, &job.region, action, &token)
            .await
        {
            Ok(Applied::Changed) => {}
            // Recorded at once, so that even a job that fails later names what it created (once:
            // an earlier try may have recorded the same resource).
            Ok(Applied::Created(id)) => {
                info!(action = %action.summary(), id = %id, "created");
                let made = Created {
                    action: i,
                    kind: action.kind().to_string(),
                    id,
                };
                if !job.created.contains(&made) {
                    job.created.push(made);
                }
            }
            // Idempotence at work: a delivery before this one (or an operator) made the change.
            Ok(Applied::AlreadyDone) => {
                info!(action = %action.summary(), "already in place: nothing to change");
            }
            Err(e) => {
                job.after = observe(ctx, job).await.ok();
                return Err(Stopped {
                    outcome: Outcome::ApplyFailed {
                        kind: action.kind().to_string(),
                        done: i,
                        total: plan.actions.len(),
                        error: e.to_string(),
                    },
                    retry: e.retryable().then(|| e.to_string()),
                });
            }
        }
    }
    // Every creating action now has its id: its inverse deletes exactly what it created.
    if !job.created.is_empty() {
        match crate::action::inverses_applied(plan, before, &job.created) {
            Ok(inv) => job.inverse = Some(inv),
            Err(e) => {
                job.after = observe(ctx, job).await.ok();
                return Err(Outcome::ApplyFailed {
                    kind: e.kind().to_string(),
                    done: plan.actions.len(),
                    total: plan.actions.len(),
                    error: e.to_string(),
                }
                .into());
            }
        }
    }
    Ok(applying.elapsed().as_secs_f64() * 1000.0)
}
