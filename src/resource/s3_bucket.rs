//! `AWS::S3::Bucket`: a bucket's Public Access Block and tags, and its policy for the
//! remediations that may change it.

use aws_sdk_s3::types::PublicAccessBlockConfiguration as Block;
use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// S3 buckets. Bucket names are unique across accounts, but a bucket lives in one region and is
/// reached through that region's endpoint (the SDK does not follow a redirect to another), so
/// buckets are listed per region, each where it lives.
pub struct S3Bucket;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::S3::Bucket",
    asff_types: &["AwsS3Bucket"],
    ocsf_type: "AwsS3Bucket",
    scope: Scope::Regional,
    noun: "bucket",
    read_permissions: &[
        "s3:GetBucketPublicAccessBlock",
        "s3:GetBucketTagging",
        "s3:ListAllMyBuckets",
        "s3:GetBucketPolicy",
    ],
};

/// The action kind whose remediations read the bucket policy: one more call per observation
/// (`s3:GetBucketPolicy`), which only they pay.
const POLICY_KIND: &str = "s3:PutBucketPolicy";
/// The action kinds that change a bucket's Public Access Block and nothing else of it.
const BLOCK_KINDS: &[&str] = &["s3:PutPublicAccessBlock", "s3:DeletePublicAccessBlock"];

impl ResourceType for S3Bucket {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn valid_id(&self, id: &str) -> bool {
        // Bucket names: 3-63 of [a-z0-9.-] today; older us-east-1 buckets may also hold
        // upper case and underscores, up to 255.
        (3..=255).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && !id.contains("..")
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_bucket(clients, id, false))
    }

    fn observe_for<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
        kinds: &'a [String],
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        let policy = kinds.iter().any(|k| k == POLICY_KIND);
        Box::pin(observe_bucket(clients, id, policy))
    }

    /// After Public Access Block actions only the block is read back.
    fn reread<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
        kinds: &'a [String],
        before: &'a Value,
        applied: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(async move {
            if !applied.iter().all(|k| BLOCK_KINDS.contains(k)) {
                return observe_bucket(clients, id, kinds.iter().any(|k| k == POLICY_KIND)).await;
            }
            let s3 = clients.get(aws_sdk_s3::Client::new);
            let mut after = before.clone();
            after["public_access_block"] = read_block(clients, &s3, id).await?;
            Ok(after)
        })
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let buckets = clients
                .get(aws_sdk_s3::Client::new)
                .list_buckets()
                .bucket_region(clients.region())
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("s3:ListBuckets", e))?;
            Ok(buckets.into_iter().filter_map(|b| b.name).collect())
        })
    }
}

/// Every call on a bucket names the account expected to own it (`ExpectedBucketOwner`): a
/// finding that names another account's bucket reads nothing and changes nothing there (AWS
/// answers 403), even where that bucket's policy would let the member role in.
/// With `policy`, the bucket's policy is read too (`policy`: its text exactly as S3 returns it,
/// or null when it has none); without, the field is left out.
async fn observe_bucket(c: &Clients, bucket: &str, policy: bool) -> Result<Value, CloudError> {
    let s3 = c.get(aws_sdk_s3::Client::new);
    // The block and the tags are read at once: neither call needs the other's answer. A
    // bucket that is not there is named by the block's answer, as when read one after the
    // other.
    let (pab, tags) = tokio::join!(read_block(c, &s3, bucket), async {
        match s3
            .get_bucket_tagging()
            .bucket(bucket)
            .expected_bucket_owner(c.account())
            .send()
            .await
        {
            Ok(out) => Ok(tag_map(out.tag_set().iter().map(|t| (t.key(), t.value())))),
            Err(e) => match classify("s3:GetBucketTagging", e) {
                e if e.is(&["NoSuchTagSet"]) => Ok(json!({})),
                e => Err(e),
            },
        }
    });
    let (pab, tags) = (pab?, tags?);
    let mut shape = json!({ "bucket": bucket, "public_access_block": pab, "tags": tags });
    if policy {
        let text = match s3
            .get_bucket_policy()
            .bucket(bucket)
            .expected_bucket_owner(c.account())
            .send()
            .await
        {
            Ok(out) => out.policy().map_or(Value::Null, Value::from),
            Err(e) => match classify("s3:GetBucketPolicy", e) {
                e if e.is(&["NoSuchBucketPolicy"]) => Value::Null,
                e => return Err(not_found(e, &["NoSuchBucket"])),
            },
        };
        shape["policy"] = text;
    }
    Ok(shape)
}

/// A bucket's Public Access Block (null when it has none).
async fn read_block(
    c: &Clients,
    s3: &aws_sdk_s3::Client,
    bucket: &str,
) -> Result<Value, CloudError> {
    match s3
        .get_public_access_block()
        .bucket(bucket)
        .expected_bucket_owner(c.account())
        .send()
        .await
    {
        Ok(out) => {
            let p = out.public_access_block_configuration();
            let flag = |f: fn(&Block) -> Option<bool>| p.and_then(f).unwrap_or(false);
            Ok(json!({
                "block_public_acls": flag(Block::block_public_acls),
                "ignore_public_acls": flag(Block::ignore_public_acls),
                "block_public_policy": flag(Block::block_public_policy),
                "restrict_public_buckets": flag(Block::restrict_public_buckets),
            }))
        }
        Err(e) => match classify("s3:GetPublicAccessBlock", e) {
            e if e.is(&["NoSuchPublicAccessBlockConfiguration"]) => Ok(Value::Null),
            e => Err(not_found(e, &["NoSuchBucket"])),
        },
    }
}
