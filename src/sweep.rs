//! The sweep: find violations no event announced (Config delivers events best effort).
//!
//! For each remediation, its resource type is enumerated in each account (and each region,
//! for regional types). Every resource goes through the same gates as an event's finding:
//! those the gates hold back (not allowed, off, exempt, missing parameters) are reported and
//! never read; the rest are read and planned once, under the resource's lock, and those whose
//! plan is not empty become jobs of source `sweep` that go on from that reading (pause, breaker,
//! apply, verify). With `what_if`, nothing is locked, changed or recorded: the report says what
//! enforcing would change and what the gates hold back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::Serialize;

use tracing::Instrument;

use crate::catalog::Remediation;
use crate::event::{Compliance, Finding, Source};
use crate::reconcile::gates::Params;
use crate::reconcile::plan::{Observed, observe_and_plan};
use crate::reconcile::{
    Context, Outcome, gates, job_span, new_job, organization_for, run_claimed, take_lease,
};
use crate::resource::{self, Scope};
use crate::state::{Job, SettingsSnapshot};

/// What a sweep found for one remediation in one account and region.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Line {
    pub remediation: String,
    pub account: String,
    pub region: String,
    /// Resources enumerated.
    pub scanned: usize,
    /// Resources whose plan is not empty (what enforcing would change).
    pub would_change: Vec<Change>,
    /// Resources the gates hold back before anything would change: `off`, `exempt`,
    /// `account-not-allowed`, `needs-parameter`.
    pub held: Vec<HeldBack>,
    /// Resources that could not be read, planned or worked on, with why.
    pub errors: Vec<SweepError>,
    /// Outcomes of the jobs run (not with what-if): status → count.
    pub outcomes: BTreeMap<String, usize>,
}

/// A resource enforcing would change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub resource_id: String,
    /// How many actions its plan has.
    pub actions: usize,
}

/// A resource a gate holds back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldBack {
    pub resource_id: String,
    /// The job status the gate ends a job in.
    pub status: String,
    pub reason: String,
}

/// A resource (or, with `*`, a whole enumeration) the sweep could not handle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SweepError {
    pub resource_id: String,
    pub error: String,
}

impl Line {
    fn error(&mut self, resource_id: &str, error: impl Into<String>) {
        self.errors.push(SweepError {
            resource_id: resource_id.to_string(),
            error: error.into(),
        });
    }

    fn hold(&mut self, resource_id: &str, outcome: &Outcome) {
        self.held.push(HeldBack {
            resource_id: resource_id.to_string(),
            status: outcome.status().as_str().to_string(),
            reason: outcome.reason(),
        });
    }
}

/// Region codes AWS has (commercial, China, GovCloud), so a typo in `--region` is an error
/// rather than an empty sweep.
pub const KNOWN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

/// Checks that every region an operator names is one AWS has.
pub fn check_regions(regions: &[String]) -> Result<(), String> {
    match regions
        .iter()
        .find(|r| !KNOWN_REGIONS.contains(&r.as_str()))
    {
        Some(r) => Err(format!(
            "unknown region {r:?} (known: {})",
            KNOWN_REGIONS.join(", ")
        )),
        None => Ok(()),
    }
}

/// Resource types that are not regional (IAM users): enumerated once per account, in the first
/// region given, not once per region.
fn is_global(resource_type: &str) -> bool {
    crate::resource::lookup(resource_type).is_some_and(|t| t.info().scope == Scope::Global)
}

/// Sweeps the given remediations over the given accounts and regions, through the same gates
/// as an event: resources the gates hold back are reported and never read; the rest are read
/// and planned once (under the resource's lock when not `what_if`), and those whose plan is not
/// empty become jobs of source `sweep`. With `what_if`, nothing is changed or recorded.
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
    let run = format!("sweep:{}", crate::clock::now_text());
    let today = crate::clock::today();
    // Remediations of one resource type share its listing (two remediations of security
    // groups list the groups once).
    let mut listed: HashMap<(&str, &str, &str), Result<Vec<String>, String>> = HashMap::new();
    let mut lines = Vec::new();
    for r in remediations {
        let resource_type = &r.manifest.resource_type;
        // A remediation of a setting that is one per account (its manifest's `scope`) is swept
        // once per account too, though its resource type is regional.
        let regions = if is_global(resource_type) || r.manifest.scope == Some(Scope::Global) {
            &regions[..regions.len().min(1)]
        } else {
            regions
        };
        for account in accounts {
            for region in regions {
                let mut line = Line {
                    remediation: r.name().to_string(),
                    account: account.clone(),
                    region: region.clone(),
                    ..Line::default()
                };
                let key = (resource_type.as_str(), account.as_str(), region.as_str());
                if let std::collections::hash_map::Entry::Vacant(entry) = listed.entry(key) {
                    entry.insert(
                        resource::enumerate(&ctx.cloud, account, region, resource_type)
                            .await
                            .map_err(|e| e.to_string()),
                    );
                }
                let ids = match &listed[&key] {
                    Ok(ids) => ids.clone(),
                    Err(e) => {
                        line.error("*", e.clone());
                        lines.push(line);
                        continue;
                    }
                };
                for id in ids {
                    line.scanned += 1;
                    let finding = Finding {
                        source: Source::Sweep,
                        event_id: None,
                        account: account.clone(),
                        region: region.clone(),
                        rule: format!("rectify-sweep-{}", r.name()),
                        rule_base: format!("rectify-sweep-{}", r.name()),
                        resource_type: resource_type.clone(),
                        resource_id: id.clone(),
                        compliance: Compliance::NonCompliant,
                        ordered_at: None,
                        observation: run.clone(),
                        annotation: None,
                        hub: None,
                    };
                    sweep_one(ctx, r, &snapshot, &finding, &today, what_if, &mut line).await;
                }
                lines.push(line);
            }
        }
    }
    Ok(lines)
}

/// One enumerated resource: gates, then (unless held back) read and plan once, then, when
/// the plan is not empty and this is no what-if, the job, from that reading.
async fn sweep_one(
    ctx: &Context,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
    finding: &Finding,
    today: &str,
    what_if: bool,
    line: &mut Line,
) {
    let id = finding.resource_id.as_str();
    let mode = snapshot.mode_for(r, &finding.account);
    let job = new_job(finding, r, mode);
    let organization = match organization_for(ctx, snapshot, &finding.account).await {
        Ok(o) => o,
        Err(e) => {
            let outcome = Outcome::AccountsUnreadable {
                error: e.to_string(),
            };
            return line.error(id, outcome.reason());
        }
    };
    let params = match gates::before_observe(
        snapshot,
        r,
        mode,
        &finding.account,
        id,
        today,
        organization.as_deref(),
    ) {
        Ok(p) => p,
        Err(outcome) => return line.hold(id, &outcome),
    };
    if what_if {
        if let Some(observed) = read(ctx, r, snapshot, &job, &params, today, line).await {
            line.would_change.push(Change {
                resource_id: id.to_string(),
                actions: observed.plan.actions.len(),
            });
        }
        return;
    }
    let lease = match take_lease(ctx, r, &job).await {
        Ok(lease) => lease,
        Err(e) => return line.error(id, e.to_string()),
    };
    if let Some(observed) = read(ctx, r, snapshot, &job, &params, today, line).await {
        line.would_change.push(Change {
            resource_id: id.to_string(),
            actions: observed.plan.actions.len(),
        });
        let span = job_span(&job);
        let result = run_claimed(ctx, r, snapshot, job, Some(observed), &lease)
            .instrument(span)
            .await;
        let status = match result {
            Ok(ended) => {
                if let Some(reason) = ended.retry {
                    line.error(id, reason);
                }
                ended.status.as_str().to_string()
            }
            Err(e) => {
                line.error(id, e.to_string());
                "retry".into()
            }
        };
        *line.outcomes.entry(status).or_default() += 1;
    }
    lease.release().await;
}

/// Reads and plans one resource; the reading when its plan is not empty. What stopped it
/// otherwise goes in the report: a gate's hold, or an error (a resource gone since it was
/// listed has nothing to fix).
async fn read(
    ctx: &Context,
    r: &Arc<Remediation>,
    snapshot: &SettingsSnapshot,
    job: &Job,
    params: &Params,
    today: &str,
    line: &mut Line,
) -> Option<Observed> {
    match observe_and_plan(ctx, r, snapshot, job, params, today).await {
        Ok(observed) if observed.plan.is_empty() => None,
        Ok(observed) => Some(observed),
        Err(held) => {
            match &held.outcome {
                Outcome::Gone { .. } => {}
                o if o.holds_back() => line.hold(&job.resource_id, o),
                o => line.error(&job.resource_id, o.reason()),
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_are_checked_against_the_ones_aws_has() {
        assert!(check_regions(&["us-east-1".into(), "eu-west-1".into()]).is_ok());
        let e = check_regions(&["us-esat-1".into()]).unwrap_err();
        assert!(e.contains("unknown region \"us-esat-1\""), "{e}");
    }

    #[test]
    fn users_are_account_wide_and_buckets_live_in_a_region() {
        assert!(!is_global("AWS::S3::Bucket"));
        assert!(is_global("AWS::IAM::User"));
        assert!(!is_global("AWS::EC2::SecurityGroup"));
    }

    #[test]
    fn a_report_line_serialises_as_labelled_objects() {
        let mut line = Line {
            remediation: "s3-block-public-access".into(),
            ..Line::default()
        };
        line.would_change.push(Change {
            resource_id: "b".into(),
            actions: 1,
        });
        line.hold("c", &Outcome::Off);
        line.error("d", "AccessDenied");
        let v = serde_json::to_value(&line).unwrap();
        assert_eq!(v["would_change"][0]["resource_id"], "b");
        assert_eq!(v["would_change"][0]["actions"], 1);
        assert_eq!(v["held"][0]["status"], "off");
        assert_eq!(v["held"][0]["reason"], "the remediation is off");
        assert_eq!(v["errors"][0]["resource_id"], "d");
        assert_eq!(v["errors"][0]["error"], "AccessDenied");
    }
}
