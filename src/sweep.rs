//! The sweep: find violations no event announced (Config delivers events best effort).
//!
//! For each remediation, its resource type is enumerated in each account and region
//! (ListBuckets, DescribeSecurityGroups, ListUsers, DescribeVpcEndpoints), each resource is read
//! and planned, and those whose plan is not empty go through the same gates as an event's
//! finding, as a finding of source `sweep`. With `what_if`, nothing is changed or recorded: the
//! report says what enforcing would change.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::catalog::Remediation;
use crate::cloud::CloudError;
use crate::controller::{Context, Disposition, plan_blocking, reconcile};
use crate::event::{Compliance, Finding, Source};

/// What a sweep found for one remediation in one account and region.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Line {
    pub remediation: String,
    pub account: String,
    pub region: String,
    /// Resources read.
    pub scanned: usize,
    /// Resources whose plan is not empty, with the number of actions each needs.
    pub would_change: Vec<(String, usize)>,
    /// Resources that could not be read or planned, with why.
    pub errors: Vec<(String, String)>,
    /// Outcomes of the jobs run (not with what-if): status → count.
    pub outcomes: BTreeMap<String, usize>,
}

/// Lists the ids of every resource of a type in an account and region.
pub async fn enumerate(
    ctx: &Context,
    account: &str,
    region: &str,
    resource_type: &str,
) -> Result<Vec<String>, CloudError> {
    crate::resource::enumerate(&ctx.cloud, account, region, resource_type).await
}

/// Sweeps the given remediations over the given accounts and regions.
pub async fn sweep(
    ctx: &Context,
    remediations: &[Arc<Remediation>],
    accounts: &[String],
    regions: &[String],
    what_if: bool,
) -> Result<Vec<Line>, String> {
    let snapshot = ctx
        .settings
        .get()
        .await
        .map_err(|e| format!("settings cannot be read: {e}"))?;
    let run = format!("sweep:{}", crate::state::now_text());
    let deadline = Duration::from_millis(ctx.limits.deadline_ms);
    let mut lines = Vec::new();
    for r in remediations {
        for account in accounts {
            for region in regions {
                let mut line = Line {
                    remediation: r.name().to_string(),
                    account: account.clone(),
                    region: region.clone(),
                    ..Line::default()
                };
                let ids = match enumerate(ctx, account, region, &r.manifest.resource_type).await {
                    Ok(ids) => ids,
                    Err(e) => {
                        line.errors.push(("*".into(), e.to_string()));
                        lines.push(line);
                        continue;
                    }
                };
                let params = snapshot.params_for(r, account);
                let missing = r.missing_params(&params);
                for id in ids {
                    line.scanned += 1;
                    if !missing.is_empty() {
                        line.errors
                            .push((id, format!("parameter {} has no value", missing.join(", "))));
                        continue;
                    }
                    let resource = match ctx
                        .cloud
                        .observe(account, region, &r.manifest.resource_type, &id)
                        .await
                    {
                        Ok(v) => v,
                        Err(e) => {
                            line.errors.push((id, e.to_string()));
                            continue;
                        }
                    };
                    let plan = match plan_blocking(
                        ctx.engine.clone(),
                        r.clone(),
                        resource,
                        params.clone(),
                        deadline,
                    )
                    .await
                    {
                        Ok(p) => p,
                        Err(e) => {
                            line.errors.push((id, e));
                            continue;
                        }
                    };
                    if plan.is_empty() {
                        continue;
                    }
                    line.would_change.push((id.clone(), plan.actions.len()));
                    if what_if {
                        continue;
                    }
                    let finding = Finding {
                        source: Source::Sweep,
                        event_id: None,
                        account: account.clone(),
                        region: region.clone(),
                        rule: format!("rectify-sweep-{}", r.name()),
                        rule_base: format!("rectify-sweep-{}", r.name()),
                        resource_type: r.manifest.resource_type.clone(),
                        resource_id: id.clone(),
                        compliance: Compliance::NonCompliant,
                        ordered_at: None,
                        observation: run.clone(),
                        annotation: None,
                    };
                    let outcome = match reconcile(ctx, &finding, r, &snapshot).await {
                        Disposition::Done => {
                            let job_id = crate::state::Job::id_for(
                                account,
                                region,
                                r.name(),
                                &r.manifest.resource_type,
                                &id,
                                &run,
                            );
                            match ctx.store.job(&job_id).await {
                                Ok(Some(j)) => j.status.as_str().to_string(),
                                _ => "unknown".into(),
                            }
                        }
                        Disposition::Retry(reason) => {
                            line.errors.push((id, reason));
                            "retry".into()
                        }
                    };
                    *line.outcomes.entry(outcome).or_default() += 1;
                }
                lines.push(line);
            }
        }
    }
    Ok(lines)
}
