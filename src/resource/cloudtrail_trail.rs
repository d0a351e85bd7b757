//! `AWS::CloudTrail::Trail`: a trail's delivery settings (log file validation, its bucket) as
//! seen from its home region.
//!
//! A trail lives in the region it was created in (its home region). A multi-region trail is
//! also listed in every other region of the account, as a "shadow"; CloudTrail changes a trail
//! only in its home region (elsewhere it answers `InvalidHomeRegionException`). So a trail is
//! observed in the finding's region with its `home_region`, and the sweep lists only the trails
//! homed in each region, so that each trail is listed once.

use aws_sdk_cloudtrail::types::Trail;
use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, gone, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// CloudTrail trails, per region.
pub struct CloudTrailTrail;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::CloudTrail::Trail",
    asff_types: &["AwsCloudTrailTrail"],
    ocsf_type: "AwsCloudTrailTrail",
    scope: Scope::Regional,
    noun: "trail",
    read_permissions: &["cloudtrail:DescribeTrails", "cloudtrail:ListTags"],
};

impl ResourceType for CloudTrailTrail {
    fn info(&self) -> &'static Info {
        &INFO
    }

    /// A trail is named by its name or its ARN.
    fn names(&self, observed: &Value) -> Vec<String> {
        super::named_by(observed, &["name", "arn"])
    }

    /// A trail's name, or its ARN (`arn:aws:cloudtrail:<region>:<account>:trail/<name>`):
    /// AWS Config names a trail by its name, Security Hub by its ARN (which the event decoder
    /// turns into the name); both are taken.
    fn valid_id(&self, id: &str) -> bool {
        is_trail_name(id) || is_trail_arn(id)
    }

    /// A trail's ARN: locked under the name it ends with, with no call.
    fn named_otherwise(&self, id: &str) -> bool {
        is_trail_arn(id)
    }

    fn lock_name<'a>(
        &'a self,
        _clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<String, CloudError>> {
        Box::pin(async move { Ok(trail_name(id).to_string()) })
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_trail(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let region = clients.region();
            Ok(describe_trails(clients, false)
                .await?
                .iter()
                .filter(|t| t.home_region() == Some(region))
                .filter_map(|t| t.name().map(str::to_string))
                .collect())
        })
    }
}

/// Whether `id` is a trail name as CloudTrail allows it: 3 to 128 letters, digits, `.`, `_`
/// and `-`, starting and ending with a letter or digit, with no two of `.`, `_`, `-` adjacent.
pub(crate) fn is_trail_name(id: &str) -> bool {
    let b = id.as_bytes();
    let punct = |c: &u8| matches!(c, b'.' | b'_' | b'-');
    (3..=128).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || punct(c))
        && !b.windows(2).any(|w| punct(&w[0]) && punct(&w[1]))
}

/// The name a trail's ARN ends with; a name as it is.
fn trail_name(id: &str) -> &str {
    id.rsplit_once(":trail/").map_or(id, |(_, name)| name)
}

/// Whether `id` is a trail ARN of the `aws` partition: a region, a twelve-digit account and
/// `trail/` and a trail name.
fn is_trail_arn(id: &str) -> bool {
    let Some(rest) = id.strip_prefix("arn:aws:cloudtrail:") else {
        return false;
    };
    let mut parts = rest.splitn(3, ':');
    let (Some(region), Some(account), Some(resource)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !region.is_empty()
        && region
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && super::is_account_id(account)
        && resource.strip_prefix("trail/").is_some_and(is_trail_name)
}

/// Every trail DescribeTrails lists in the clients' region: those homed there and, with
/// `shadows`, the multi-region trails homed elsewhere.
pub(super) async fn describe_trails(c: &Clients, shadows: bool) -> Result<Vec<Trail>, CloudError> {
    // DescribeTrails answers in one page (it takes no token). A trail is matched by name or
    // ARN here rather than by `trailNameList`, which finds a trail of another region only by
    // its ARN.
    let out = c
        .get(aws_sdk_cloudtrail::Client::new)
        .describe_trails()
        .include_shadow_trails(shadows)
        .send()
        .await
        .map_err(|e| classify("cloudtrail:DescribeTrails", e))?;
    Ok(out.trail_list().to_vec())
}

async fn observe_trail(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let trails = describe_trails(c, true).await?;
    let region = c.region();
    let matches = |t: &&Trail| t.name() == Some(id) || t.trail_arn() == Some(id);
    // A trail homed here before a shadow of the same name.
    let trail = trails
        .iter()
        .filter(matches)
        .min_by_key(|t| t.home_region() != Some(region))
        .ok_or_else(gone)?;
    let home = trail.home_region() == Some(region);
    // Tags are read where the trail lives; a shadow's are its home region's to read.
    let tags = match (home, trail.trail_arn()) {
        (true, Some(arn)) => {
            let out = c
                .get(aws_sdk_cloudtrail::Client::new)
                .list_tags()
                .resource_id_list(arn)
                .send()
                .await
                .map_err(|e| classify("cloudtrail:ListTags", e))?;
            tag_map(
                out.resource_tag_list()
                    .iter()
                    .flat_map(aws_sdk_cloudtrail::types::ResourceTag::tags_list)
                    .map(|t| (t.key(), t.value().unwrap_or_default())),
            )
        }
        _ => json!({}),
    };
    Ok(json!({
        "name": trail.name(),
        "arn": trail.trail_arn(),
        "home_region": trail.home_region(),
        "is_multi_region": trail.is_multi_region_trail().unwrap_or(false),
        "log_file_validation": trail.log_file_validation_enabled().unwrap_or(false),
        "s3_bucket": trail.s3_bucket_name(),
        "tags": tags,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trail_names_and_arns() {
        let t = CloudTrailTrail;
        for ok in [
            "management-events",
            "org.trail_1",
            "abc",
            "arn:aws:cloudtrail:us-east-1:111122223333:trail/management-events",
            &"a".repeat(128),
        ] {
            assert!(t.valid_id(ok), "{ok}");
        }
        for bad in [
            "",
            "ab",
            "-trail",
            "trail-",
            "my--trail",
            "my._trail",
            "my trail",
            "a/b",
            "../x",
            &"a".repeat(129),
            "arn:aws:cloudtrail:us-east-1:111122223333:trail/",
            "arn:aws:cloudtrail:us-east-1:1111222233:trail/t1x",
            "arn:aws:cloudtrail:us-east-1:111122223333:bucket/t1x",
            "arn:aws-cn:cloudtrail:cn-north-1:111122223333:trail/t1x",
            "arn:aws:cloudtrail::111122223333:trail/t1x",
            "arn:aws:cloudtrail:us-east-1:111122223333:trail/a/b",
        ] {
            assert!(!t.valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn a_trail_named_by_its_arn_is_locked_under_its_name() {
        let arn = "arn:aws:cloudtrail:us-east-1:111122223333:trail/management-events";
        assert!(CloudTrailTrail.named_otherwise(arn));
        assert_eq!(trail_name(arn), "management-events");
        assert!(!CloudTrailTrail.named_otherwise("management-events"));
        assert_eq!(trail_name("management-events"), "management-events");
        let read = serde_json::json!({ "name": "management-events", "arn": arn });
        assert_eq!(CloudTrailTrail.names(&read)[0], trail_name(arn));
    }
}
