//! Applying actions: the one place rectify changes AWS.
//!
//! Each action is idempotent, and a change that is already in place counts as done (a revoke of
//! a rule already gone, an authorize of a rule already there, a delete of a block already
//! removed). The action's inverse is computed before this runs (see [`Action::inverse`]). Every
//! S3 call names the account expected to own the bucket (`ExpectedBucketOwner`), so a bucket of
//! another account is never changed.

use crate::action::Action;
use crate::cloud::{Cloud, CloudError, classify};

/// What applying an action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// The change was already in place (a revoked rule already gone).
    AlreadyDone,
}

/// Applies one action. Idempotent: work already done counts as done.
pub async fn apply(
    cloud: &Cloud,
    account: &str,
    region: &str,
    action: &Action,
) -> Result<Applied, CloudError> {
    let c = cloud.clients(account, region).await;
    // Each action is named after the call it makes.
    let call = action.kind();
    match action {
        Action::PutPublicAccessBlock {
            bucket,
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
        } => {
            let config = aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(*block_public_acls)
                .ignore_public_acls(*ignore_public_acls)
                .block_public_policy(*block_public_policy)
                .restrict_public_buckets(*restrict_public_buckets)
                .build();
            c.get(aws_sdk_s3::Client::new)
                .put_public_access_block()
                .bucket(bucket)
                .expected_bucket_owner(c.account())
                .public_access_block_configuration(config)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::DeletePublicAccessBlock { bucket } => {
            match c
                .get(aws_sdk_s3::Client::new)
                .delete_public_access_block()
                .bucket(bucket)
                .expected_bucket_owner(c.account())
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["NoSuchPublicAccessBlockConfiguration"]),
            }
        }
        Action::RevokeSecurityGroupIngress { group_id, rule_id } => {
            // One rule id per call: a call that names a missing rule fails as a whole.
            match c
                .get(aws_sdk_ec2::Client::new)
                .revoke_security_group_ingress()
                .group_id(group_id)
                .security_group_rule_ids(rule_id)
                .send()
                .await
            {
                Ok(out) if out.unknown_ip_permissions().is_empty() => Ok(Applied::Changed),
                Ok(_) => Ok(Applied::AlreadyDone),
                Err(e) => done_if(classify(call, e), &["InvalidPermission.NotFound"]),
            }
        }
        Action::AuthorizeSecurityGroupIngress {
            group_id,
            protocol,
            from_port,
            to_port,
            cidr_ipv4,
            cidr_ipv6,
            description,
        } => {
            let mut permission = aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol(protocol)
                .from_port(*from_port)
                .to_port(*to_port);
            if let Some(cidr) = cidr_ipv4 {
                permission = permission.ip_ranges(
                    aws_sdk_ec2::types::IpRange::builder()
                        .cidr_ip(cidr)
                        .set_description(description.clone())
                        .build(),
                );
            }
            if let Some(cidr) = cidr_ipv6 {
                permission = permission.ipv6_ranges(
                    aws_sdk_ec2::types::Ipv6Range::builder()
                        .cidr_ipv6(cidr)
                        .set_description(description.clone())
                        .build(),
                );
            }
            match c
                .get(aws_sdk_ec2::Client::new)
                .authorize_security_group_ingress()
                .group_id(group_id)
                .ip_permissions(permission.build())
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["InvalidPermission.Duplicate"]),
            }
        }
        Action::UpdateAccessKey {
            user_name,
            access_key_id,
            status,
        } => {
            c.get(aws_sdk_iam::Client::new)
                .update_access_key()
                .user_name(user_name)
                .access_key_id(access_key_id)
                .status(aws_sdk_iam::types::StatusType::from(status.as_str()))
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::ModifyInstanceMetadataOptions {
            instance_id,
            http_tokens,
        } => {
            c.get(aws_sdk_ec2::Client::new)
                .modify_instance_metadata_options()
                .instance_id(instance_id)
                .http_tokens(aws_sdk_ec2::types::HttpTokensState::from(
                    http_tokens.as_str(),
                ))
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::ModifyDbInstancePublicAccess {
            db_instance_identifier,
            publicly_accessible,
        } => {
            // Only this attribute is sent, so nothing else of the instance changes; applied
            // now rather than in the next maintenance window.
            c.get(aws_sdk_rds::Client::new)
                .modify_db_instance()
                .db_instance_identifier(db_instance_identifier)
                .publicly_accessible(*publicly_accessible)
                .apply_immediately(true)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::ModifyDbSnapshotRestoreAll {
            db_snapshot_identifier,
            shared_with_all,
        } => {
            // Only the value `all` is named: accounts the snapshot is shared with stay.
            let call_ = c
                .get(aws_sdk_rds::Client::new)
                .modify_db_snapshot_attribute()
                .db_snapshot_identifier(db_snapshot_identifier)
                .attribute_name("restore");
            let call_ = if *shared_with_all {
                call_.values_to_add("all")
            } else {
                call_.values_to_remove("all")
            };
            call_.send().await.map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::ModifyVpcEndpointPolicy {
            vpc_endpoint_id,
            policy_document,
        } => {
            c.get(aws_sdk_ec2::Client::new)
                .modify_vpc_endpoint()
                .vpc_endpoint_id(vpc_endpoint_id)
                .policy_document(policy_document)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
    }
}

/// A call that failed because its work is already done counts as done.
fn done_if(e: CloudError, codes: &[&str]) -> Result<Applied, CloudError> {
    if e.is(codes) {
        Ok(Applied::AlreadyDone)
    } else {
        Err(e)
    }
}
