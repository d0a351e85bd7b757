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
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use backon::{ExponentialBuilder, Retryable};
use serde::Serialize;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::catalog::Remediation;
use crate::cloud::{CloudError, classify};
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

/// Where a sweep looks: the regions of each account.
#[derive(Debug, Clone)]
pub enum Regions {
    /// These regions, in every account.
    These(Vec<String>),
    /// The regions enabled in each account (ec2:DescribeRegions in the account, through its
    /// remediation role: opt-in regions differ between accounts), read in `home` first; the
    /// account-wide types are swept in `home` when it is enabled there.
    Enabled { home: String },
}

/// How a sweep fans out: how many enumerations run at once, and how fast one account's
/// service is called.
#[derive(Debug, Clone, Copy)]
pub struct Fanout {
    /// Enumerations (an account, a region, a resource type) worked on at once.
    pub concurrency: usize,
    /// Steps per second, at most, per account and service: a step is one enumeration (its
    /// pages) or one resource's read, plan and fix.
    pub rate: f64,
}

impl Default for Fanout {
    fn default() -> Fanout {
        Fanout {
            concurrency: DEFAULT_CONCURRENCY,
            rate: DEFAULT_RATE,
        }
    }
}

/// Enumerations worked on at once unless `--concurrency` says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Steps per second per account and service unless `--rate` says otherwise.
pub const DEFAULT_RATE: f64 = 20.0;

/// How far the sweep has come, for a progress bar or a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The account and region whose every enumeration has just ended.
    pub account: String,
    pub region: String,
    /// Accounts × regions done, of `total`.
    pub done: usize,
    pub total: usize,
    /// Resources found so far whose plan is not empty.
    pub found: usize,
}

/// Sweeps the given remediations over the given accounts and regions, through the same gates
/// as an event: resources the gates hold back are reported and never read; the rest are read
/// and planned once (under the resource's lock when not `what_if`), and those whose plan is not
/// empty become jobs of source `sweep`. With `what_if`, nothing is changed or recorded. It fans
/// out as [`Fanout::default`] says (see [`sweep_across`]).
pub async fn sweep(
    ctx: &Arc<Context>,
    remediations: &[Arc<Remediation>],
    accounts: &[String],
    regions: &[String],
    what_if: bool,
) -> Result<Vec<Line>, String> {
    sweep_across(
        ctx,
        remediations,
        accounts,
        &Regions::These(regions.to_vec()),
        what_if,
        Fanout::default(),
        &mut |_| {},
    )
    .await
}

/// [`sweep`], over each account's own regions when `regions` says so, fanned out as `fanout`
/// says.
///
/// Accounts × regions × resource types are enumerated concurrently, at most
/// `fanout.concurrency` at once, each account's service at most `fanout.rate` steps a second;
/// an enumeration throttled after the SDK's own retries is tried again with exponential
/// backoff. An account or region that fails is reported in its lines (resource `*`) and the
/// others go on. `progress` is told each time an account and region is done.
pub async fn sweep_across(
    ctx: &Arc<Context>,
    remediations: &[Arc<Remediation>],
    accounts: &[String],
    regions: &Regions,
    what_if: bool,
    fanout: Fanout,
    progress: &mut (dyn FnMut(&Progress) + Send),
) -> Result<Vec<Line>, String> {
    // Settings that cannot be read stop the sweep before it starts; each resource is then
    // gated on the settings as they are when it is reached.
    ctx.settings
        .get()
        .await
        .map_err(|e| format!("settings cannot be read: {e}"))?;
    let shared = Arc::new(Shared {
        ctx: ctx.clone(),
        run: format!("sweep:{}", crate::clock::now_text()),
        today: crate::clock::today(),
        what_if,
        limit: RateLimit::new(fanout.rate),
    });
    let bound = fanout.concurrency.max(1);
    let mut lines: Vec<(Order, Line)> = Vec::new();

    // The regions of each account, read concurrently when they are each account's own.
    let per_account: Vec<Result<Vec<String>, String>> = match regions {
        Regions::These(r) => accounts.iter().map(|_| Ok(r.clone())).collect(),
        Regions::Enabled { home } => {
            let mut set = JoinSet::new();
            let mut out: Vec<Result<Vec<String>, String>> = vec![Ok(Vec::new()); accounts.len()];
            for (i, account) in accounts.iter().enumerate() {
                if set.len() >= bound
                    && let Some(joined) = set.join_next().await
                {
                    let (i, r) = joined.map_err(|e| format!("a sweep task failed: {e}"))?;
                    out[i] = r;
                }
                let (shared, account, home) = (shared.clone(), account.clone(), home.clone());
                set.spawn(async move { (i, enabled_regions(&shared, &account, &home).await) });
            }
            while let Some(joined) = set.join_next().await {
                let (i, r) = joined.map_err(|e| format!("a sweep task failed: {e}"))?;
                out[i] = r;
            }
            out
        }
    };

    // Remediations of one resource type share its listing (two remediations of security
    // groups list the groups once): one unit per account, region and resource type.
    let mut types: Vec<(&str, Numbered)> = Vec::new();
    for (i, r) in remediations.iter().enumerate() {
        let t = r.manifest.resource_type.as_str();
        match types.iter_mut().find(|(k, _)| *k == t) {
            Some((_, rs)) => rs.push((i, r.clone())),
            None => types.push((t, vec![(i, r.clone())])),
        }
    }
    for (a, account) in accounts.iter().enumerate() {
        if let Err(e) = &per_account[a] {
            for (i, r) in remediations.iter().enumerate() {
                let mut line = Line {
                    remediation: r.name().to_string(),
                    account: account.clone(),
                    region: "*".into(),
                    ..Line::default()
                };
                line.error("*", e.clone());
                lines.push(((i, a, 0), line));
            }
        }
    }
    // Units go out account after account (each type and region in turn), so the bound is
    // spread over accounts rather than spent on one account's rate limit.
    let widest = per_account
        .iter()
        .filter_map(|r| r.as_ref().ok().map(Vec::len))
        .max()
        .unwrap_or(0);
    let mut units = Vec::new();
    let mut pending: HashMap<(usize, usize), usize> = HashMap::new();
    for (t, rs) in &types {
        for g in 0..widest {
            for (a, account) in accounts.iter().enumerate() {
                let Some(region) = per_account[a].as_ref().ok().and_then(|r| r.get(g)) else {
                    continue;
                };
                // A remediation of a setting that is one per account (its manifest's `scope`)
                // is swept once per account too, though its resource type is regional.
                let these: Numbered = rs
                    .iter()
                    .filter(|(_, r)| {
                        g == 0 || !(is_global(t) || r.manifest.scope == Some(Scope::Global))
                    })
                    .cloned()
                    .collect();
                if these.is_empty() {
                    continue;
                }
                *pending.entry((a, g)).or_default() += 1;
                units.push(Unit {
                    account: (a, account.clone()),
                    region: (g, region.clone()),
                    resource_type: (*t).to_string(),
                    remediations: these,
                });
            }
        }
    }

    let total = pending.len();
    let mut done = 0;
    let mut found = 0;
    let mut set = JoinSet::new();
    let mut units = units.into_iter();
    loop {
        // Start units while the bound allows, and take each that ends as it ends.
        let next = if set.len() < bound {
            units.next()
        } else {
            None
        };
        if let Some(unit) = next {
            let shared = shared.clone();
            set.spawn(async move {
                let key = (unit.account.0, unit.region.0);
                (key, sweep_unit(&shared, unit).await)
            });
            continue;
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let ((a, g), out) = joined.map_err(|e| format!("a sweep task failed: {e}"))?;
        found += out.iter().map(|(_, l)| l.would_change.len()).sum::<usize>();
        let region = out.first().map(|(_, l)| l.region.clone());
        lines.extend(out);
        let left = pending.get_mut(&(a, g)).expect("every unit is counted");
        *left -= 1;
        if *left == 0 {
            done += 1;
            progress(&Progress {
                account: accounts[a].clone(),
                region: region.unwrap_or_default(),
                done,
                total,
                found,
            });
        }
    }
    lines.sort_by_key(|(order, _)| *order);
    Ok(lines.into_iter().map(|(_, l)| l).collect())
}

/// Where a line goes in the report: remediation, account, region (each as given).
type Order = (usize, usize, usize);

/// What every unit of one sweep shares.
struct Shared {
    ctx: Arc<Context>,
    run: String,
    today: String,
    what_if: bool,
    limit: RateLimit,
}

/// One enumeration: an account, a region and a resource type, with the remediations that
/// sweep it there (each with its place in the report).
struct Unit {
    account: (usize, String),
    region: (usize, String),
    resource_type: String,
    remediations: Numbered,
}

/// Remediations, each with its place in the report.
type Numbered = Vec<(usize, Arc<Remediation>)>;

/// The retries of a step AWS throttled after the SDK's own retries: exponential from 200 ms
/// to 5 s, with jitter, five times at most.
fn throttle_backoff() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(5)
        .with_jitter()
}

/// Runs one rate-limited step of `account`'s `service`, again with backoff when AWS throttled
/// it; a throttled step also holds back that account's service for the backoff's delay.
async fn step<T, F, Fut>(
    shared: &Shared,
    account: &str,
    service: &str,
    f: F,
) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    shared.limit.wait(account, service).await;
    f.retry(throttle_backoff())
        .when(CloudError::throttled)
        .notify(|e, delay| {
            tracing::warn!(account, service, retry_in = ?delay, error = %e, "throttled: backing off");
            shared.limit.hold(account, service, delay);
        })
        .await
}

/// The regions enabled in an account (without `AllRegions`, DescribeRegions lists only
/// those), sorted, with `home` first when it is one of them.
async fn enabled_regions(
    shared: &Shared,
    account: &str,
    home: &str,
) -> Result<Vec<String>, String> {
    let clients = shared.ctx.cloud.clients(account, home).await;
    let ec2 = &clients.get(aws_sdk_ec2::Client::new);
    let out = step(shared, account, "EC2", move || async move {
        ec2.describe_regions()
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeRegions", e))
    })
    .await
    .map_err(|e| format!("the enabled regions cannot be listed: {e}"))?;
    let names = out
        .regions()
        .iter()
        .filter_map(|r| r.region_name().map(str::to_string))
        .collect();
    Ok(home_first(names, home))
}

/// Regions sorted, `home` first when it is among them.
fn home_first(mut regions: Vec<String>, home: &str) -> Vec<String> {
    regions.sort();
    regions.dedup();
    if let Some(i) = regions.iter().position(|r| r == home) {
        let h = regions.remove(i);
        regions.insert(0, h);
    }
    regions
}

/// The service a resource type's calls go to, for the rate limit (`AWS::S3::Bucket` → `S3`).
fn service_of(resource_type: &str) -> &str {
    resource_type.split("::").nth(1).unwrap_or(resource_type)
}

/// Enumerates one unit and sweeps each resource found for each of its remediations.
async fn sweep_unit(shared: &Shared, unit: Unit) -> Vec<(Order, Line)> {
    let (a, account) = &unit.account;
    let (g, region) = &unit.region;
    let resource_type = unit.resource_type.as_str();
    let service = service_of(resource_type);
    let listed = step(shared, account, service, move || {
        resource::enumerate(&shared.ctx.cloud, account, region, resource_type)
    })
    .await;
    let mut out = Vec::new();
    for (i, r) in &unit.remediations {
        let mut line = Line {
            remediation: r.name().to_string(),
            account: account.clone(),
            region: region.clone(),
            ..Line::default()
        };
        match &listed {
            Err(e) => line.error("*", e.to_string()),
            Ok(ids) => {
                for id in ids {
                    line.scanned += 1;
                    let finding = Finding {
                        source: Source::Sweep,
                        event_id: None,
                        account: account.clone(),
                        region: region.clone(),
                        rule: format!("rectify-sweep-{}", r.name()),
                        rule_base: format!("rectify-sweep-{}", r.name()),
                        resource_type: resource_type.to_string(),
                        resource_id: id.clone(),
                        compliance: Compliance::NonCompliant,
                        ordered_at: None,
                        observation: shared.run.clone(),
                        annotation: None,
                        hub: None,
                        rectify_noted: false,
                    };
                    shared.limit.wait(account, service).await;
                    // A pause, a mode, the allow-list or an exemption changed while the
                    // sweep runs holds for every resource it has yet to reach.
                    let snapshot = match shared.ctx.settings.get().await {
                        Ok(s) => s,
                        Err(e) => {
                            line.error(id, format!("settings cannot be read: {e}"));
                            continue;
                        }
                    };
                    sweep_one(
                        &shared.ctx,
                        r,
                        &snapshot,
                        &finding,
                        &shared.today,
                        shared.what_if,
                        &mut line,
                    )
                    .await;
                }
            }
        }
        out.push(((*i, *a, *g), line));
    }
    out
}

/// At most `rate` steps a second per account and service: each step takes the next free slot
/// of its key, and a throttled step pushes the key's next slot back.
struct RateLimit {
    interval: Duration,
    next: std::sync::Mutex<HashMap<(String, String), Instant>>,
}

impl RateLimit {
    fn new(rate: f64) -> RateLimit {
        RateLimit {
            interval: Duration::from_secs_f64(1.0 / rate),
            next: std::sync::Mutex::default(),
        }
    }

    /// Waits for this account's service's next slot.
    async fn wait(&self, account: &str, service: &str) {
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
            let key = (account.to_string(), service.to_string());
            reserve(
                next.entry(key).or_insert_with(Instant::now),
                Instant::now(),
                self.interval,
            )
        };
        tokio::time::sleep_until(slot.into()).await;
    }

    /// Holds back this account's service for `delay` from now.
    fn hold(&self, account: &str, service: &str, delay: Duration) {
        let mut next = self.next.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (account.to_string(), service.to_string());
        let until = Instant::now() + delay;
        let at = next.entry(key).or_insert(until);
        *at = (*at).max(until);
    }
}

/// Takes the next slot from a key whose next free slot is `next`: the slot is `next`, or `now`
/// when that has passed, and the key's next free slot is one `interval` later.
fn reserve(next: &mut Instant, now: Instant, interval: Duration) -> Instant {
    let slot = (*next).max(now);
    *next = slot + interval;
    slot
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
    use backon::BackoffBuilder;

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
    fn each_step_of_a_key_takes_the_next_slot_and_an_idle_key_starts_now() {
        let t0 = Instant::now();
        let tick = Duration::from_millis(50);
        let mut next = t0;
        assert_eq!(reserve(&mut next, t0, tick), t0);
        assert_eq!(reserve(&mut next, t0, tick), t0 + tick);
        assert_eq!(reserve(&mut next, t0, tick), t0 + 2 * tick);
        // Idle for a while: the next step goes now, not in a burst of missed slots.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(reserve(&mut next, later, tick), later);
        assert_eq!(next, later + tick);
    }

    #[test]
    fn a_throttled_key_waits_for_the_backoff_and_other_keys_do_not() {
        let limit = RateLimit::new(1000.0);
        limit.hold("111111111111", "S3", Duration::from_secs(60));
        let next = limit.next.lock().unwrap();
        let held = next[&("111111111111".to_string(), "S3".to_string())];
        assert!(held > Instant::now() + Duration::from_secs(59));
        assert!(!next.contains_key(&("111111111111".to_string(), "EC2".to_string())));
    }

    #[test]
    fn the_rate_limit_is_per_account_and_service() {
        assert_eq!(service_of("AWS::S3::Bucket"), "S3");
        assert_eq!(service_of("AWS::EC2::SecurityGroup"), "EC2");
        assert_eq!(service_of("AWS::EC2::VPCEndpoint"), "EC2");
        assert_eq!(service_of("AWS::IAM::User"), "IAM");
    }

    #[test]
    fn enabled_regions_are_sorted_with_the_home_region_first() {
        let r = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
        assert_eq!(
            home_first(
                r(&["us-west-2", "eu-west-1", "us-east-1", "eu-west-1"]),
                "us-east-1"
            ),
            r(&["us-east-1", "eu-west-1", "us-west-2"])
        );
        assert_eq!(
            home_first(r(&["us-west-2", "eu-west-1"]), "us-east-1"),
            r(&["eu-west-1", "us-west-2"])
        );
    }

    #[test]
    fn only_throttling_is_backed_off() {
        let e = |code: &str, status| CloudError::Service {
            call: "s3:ListBuckets",
            code: code.into(),
            message: String::new(),
            status: Some(status),
        };
        assert!(e("SlowDown", 503).throttled());
        assert!(e("RequestLimitExceeded", 503).throttled());
        assert!(e("Throttling", 400).throttled());
        assert!(!e("AccessDenied", 403).throttled());
        assert!(!e("InternalError", 500).throttled());
        let backoff: Vec<Duration> = throttle_backoff().build().collect();
        assert_eq!(backoff.len(), 5, "bounded retries");
        assert!(backoff.iter().all(|d| *d <= Duration::from_secs(10)));
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
