//! Observe and plan: read the resource live, pass the exemption tag's gate, run the script.
//! The event's claim about the resource is never trusted; the plan is made from what was read.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Context;
use super::gates::{self, Params};
use super::outcome::Outcome;
use crate::action::Plan;
use crate::catalog::Remediation;
use crate::cloud::CloudError;
use crate::state::{Job, SettingsSnapshot};

/// A resource as read, and the plan its script made from it.
#[derive(Debug, Clone)]
pub struct Observed {
    pub before: Value,
    pub plan: Plan,
    /// How long the script took, in milliseconds.
    pub plan_ms: f64,
    /// Why a `rectify:exempt` tag on the resource was ignored, when it was.
    pub note: Option<String>,
}

/// Why observing and planning stopped the job, with what was read before it stopped.
#[derive(Debug)]
pub struct Held {
    pub outcome: Outcome,
    pub before: Option<Value>,
    /// Worth trying again later (the read failed for a passing reason).
    pub retry: Option<String>,
}

impl From<Outcome> for Held {
    fn from(outcome: Outcome) -> Held {
        Held {
            outcome,
            before: None,
            retry: None,
        }
    }
}

/// Reads the job's resource live, with the parts its remediation's action kinds need (so the
/// before-state, the after-state and undo's reads of one job all have the same shape).
pub async fn observe(ctx: &Context, job: &Job) -> Result<Value, CloudError> {
    let kinds = ctx
        .catalog
        .current()
        .get(&job.remediation)
        .map(|r| r.manifest.actions.clone())
        .unwrap_or_default();
    crate::resource::observe(
        &ctx.cloud,
        &job.account,
        &job.region,
        &job.resource_type,
        &job.resource_id,
        &kinds,
    )
    .await
}

/// Reads the resource, checks its exemption tag, and plans.
pub async fn observe_and_plan(
    ctx: &Context,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
    job: &Job,
    params: &Params,
    today: &str,
) -> Result<Observed, Held> {
    let before = match observe(ctx, job).await {
        Ok(v) => v,
        Err(CloudError::NotFound { resource }) => return Err(Outcome::Gone { resource }.into()),
        Err(e) => {
            return Err(Held {
                retry: e.retryable().then(|| e.to_string()),
                outcome: Outcome::ObserveFailed {
                    error: e.to_string(),
                },
                before: None,
            });
        }
    };
    let note = match gates::after_observe(snapshot, r, &job.account, &before, today) {
        Ok(note) => note,
        Err(outcome) => {
            return Err(Held {
                outcome,
                before: Some(before),
                retry: None,
            });
        }
    };
    let planning = Instant::now();
    match plan_blocking(ctx, r, before.clone(), params.clone()).await {
        Ok(plan) => Ok(Observed {
            before,
            plan,
            plan_ms: planning.elapsed().as_secs_f64() * 1000.0,
            note,
        }),
        Err(error) => Err(Held {
            outcome: Outcome::ScriptFailed { error },
            before: Some(before),
            retry: None,
        }),
    }
}

/// Runs the remediation's script (the one routed: a reload meanwhile does not change it) with
/// the context's engine and deadline, on a blocking thread, away from the async workers.
pub async fn plan_blocking(
    ctx: &Context,
    r: &Arc<Remediation>,
    resource: Value,
    params: Params,
) -> Result<Plan, String> {
    let (engine, remediation) = (ctx.engine.clone(), r.clone());
    let deadline = Duration::from_millis(ctx.limits.deadline_ms);
    tokio::task::spawn_blocking(move || {
        remediation
            .plan(&engine, &resource, &params, deadline)
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| format!("the script's thread failed: {e}"))?
}
