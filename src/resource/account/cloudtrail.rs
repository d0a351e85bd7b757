//! The account's trails as seen from one region: whether anything records its API activity
//! there.
//!
//! DescribeTrails in a region lists the trails homed there and the multi-region trails homed
//! elsewhere (their shadows), which also log this region; one GetTrailStatus per trail (by
//! ARN, which CloudTrail requires for a shadow) says whether it is logging. Single-region
//! trails of other regions are not listed: they record nothing here.

use serde_json::{Value, json};

use super::super::cloudtrail_trail::describe_trails;
use crate::cloud::{Clients, CloudError, classify};

/// `trails`: every trail that can log the clients' region, sorted by name (then home region),
/// each with whether it is logging.
pub(super) async fn read_trails(c: &Clients) -> Result<Value, CloudError> {
    let mut trails = describe_trails(c, true).await?;
    trails.sort_by(|a, b| (a.name(), a.home_region()).cmp(&(b.name(), b.home_region())));
    let client = c.get(aws_sdk_cloudtrail::Client::new);
    let mut out = Vec::with_capacity(trails.len());
    for t in &trails {
        let Some(id) = t.trail_arn().or(t.name()) else {
            continue;
        };
        let status = match client.get_trail_status().name(id).send().await {
            Ok(status) => status,
            // Deleted since it was listed: it logs nothing.
            Err(e) => match classify("cloudtrail:GetTrailStatus", e) {
                e if e.is(&["TrailNotFoundException"]) => continue,
                e => return Err(e),
            },
        };
        out.push(json!({
            "name": t.name(),
            "arn": t.trail_arn(),
            "home_region": t.home_region(),
            "is_multi_region": t.is_multi_region_trail().unwrap_or(false),
            "is_logging": status.is_logging().unwrap_or(false),
            "s3_bucket": t.s3_bucket_name(),
            "log_file_validation": t.log_file_validation_enabled().unwrap_or(false),
        }));
    }
    Ok(Value::Array(out))
}
