//! `AWS::S3::Bucket`: a bucket's Public Access Block and tags.

use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, not_found, tag_map, well_formed};
use crate::cloud::{Clients, Cloud, CloudError, classify};

/// S3 buckets: one namespace per account, so listed once, not once per region.
pub struct S3Bucket;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::S3::Bucket",
    asff_types: &["AwsS3Bucket"],
    ocsf_type: "AwsS3Bucket",
    scope: Scope::Global,
    read_permissions: &[
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketTagging",
        "s3:ListAllMyBuckets",
    ],
};

impl ResourceType for S3Bucket {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn validate_id(&self, id: &str) -> Result<(), &'static str> {
        // Bucket names: 3-63 of [a-z0-9.-] today; older us-east-1 buckets may also hold
        // upper case and underscores, up to 255.
        well_formed(
            (3..=255).contains(&id.len())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
                && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && !id.contains(".."),
        )
    }

    fn observe<'a>(
        &'a self,
        _cloud: &'a Cloud,
        clients: &'a Clients,
        _account: &'a str,
        _region: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_bucket(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        _cloud: &'a Cloud,
        clients: &'a Clients,
        _account: &'a str,
        _region: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let out = clients
                .get(aws_sdk_s3::Client::new)
                .list_buckets()
                .send()
                .await
                .map_err(|e| classify("s3:ListBuckets", e))?;
            Ok(out
                .buckets()
                .iter()
                .filter_map(|b| b.name().map(str::to_string))
                .collect())
        })
    }
}

async fn observe_bucket(c: &Clients, bucket: &str) -> Result<Value, CloudError> {
    let s3 = c.get(aws_sdk_s3::Client::new);
    let pab = match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => {
            let p = out.public_access_block_configuration();
            let flag = |f: Option<bool>| f.unwrap_or(false);
            json!({
                "block_public_acls": flag(p.and_then(aws_sdk_s3::types::PublicAccessBlockConfiguration::block_public_acls)),
                "ignore_public_acls": flag(p.and_then(aws_sdk_s3::types::PublicAccessBlockConfiguration::ignore_public_acls)),
                "block_public_policy": flag(p.and_then(aws_sdk_s3::types::PublicAccessBlockConfiguration::block_public_policy)),
                "restrict_public_buckets": flag(p.and_then(aws_sdk_s3::types::PublicAccessBlockConfiguration::restrict_public_buckets)),
            })
        }
        Err(e) => match classify("s3:GetPublicAccessBlock", e) {
            e if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => Value::Null,
            e => return Err(not_found(e, &["NoSuchBucket"], format!("bucket {bucket}"))),
        },
    };
    let tags = match s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => tag_map(out.tag_set().iter().map(|t| (t.key(), t.value()))),
        Err(e) => match classify("s3:GetBucketTagging", e) {
            e if e.code() == Some("NoSuchTagSet") => json!({}),
            e => return Err(e),
        },
    };
    Ok(json!({ "bucket": bucket, "public_access_block": pab, "tags": tags }))
}
