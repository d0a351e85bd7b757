//! Verify by re-planning: the resource is read again (the parts the applied actions change; see
//! [`crate::resource::reread`]) and planned again; only an empty plan is success. A read right after a write may lag on AWS, so a plan that is not yet empty is
//! checked again a few times before the fix is called failed.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::Context;
use super::gates::Params;
use super::outcome::Outcome;
use super::plan::plan_blocking;
use crate::action::Action;
use crate::catalog::Remediation;
use crate::state::Job;

/// How many times the resource is read back, and the pause before the n-th read.
const READS: u32 = 3;
fn pause_before(attempt: u32) -> Duration {
    Duration::from_millis(500 * u64::from(attempt))
}

/// Reads the resource back (into `job.after`) and re-plans; `Applied` only if the plan is empty.
/// `base` is the reading the applied plan was checked against in this run: what the actions do
/// not change is taken from it.
pub async fn verify(
    ctx: &Context,
    r: &Arc<Remediation>,
    job: &mut Job,
    base: &Value,
    params: &Params,
    applied: usize,
) -> Outcome {
    let mut last_plan = None;
    // Only what the applied actions change is read back; the rest is the reading planned from.
    let kinds: Vec<&str> = job
        .plan
        .as_ref()
        .map(|p| p.actions.iter().map(Action::kind).collect())
        .unwrap_or_default();
    for attempt in 0..READS {
        if attempt > 0 {
            tokio::time::sleep(pause_before(attempt)).await;
        }
        let read = crate::resource::reread(
            &ctx.cloud,
            &job.resource_type,
            base,
            &r.manifest.actions,
            &kinds,
        )
        .await;
        let after = match read {
            Ok(v) => v,
            Err(e) => {
                return Outcome::VerifyReadFailed {
                    error: e.to_string(),
                };
            }
        };
        job.after = Some(after.clone());
        match plan_blocking(ctx, r, after, params.clone()).await {
            Ok(p) if p.is_empty() => return Outcome::Applied { actions: applied },
            Ok(p) => last_plan = Some(p),
            Err(error) => return Outcome::VerifyPlanFailed { error },
        }
    }
    Outcome::DidNotHold {
        still: last_plan
            .map(|p| p.actions.iter().map(Action::summary).collect())
            .unwrap_or_default(),
    }
}
