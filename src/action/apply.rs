//! Applying actions: the one place rectify changes AWS.
//!
//! Each action is idempotent, and a change that is already in place counts as done (a revoke of
//! a rule already gone, an authorize of a rule already there, a delete of a block already
//! removed). The action's inverse is computed before this runs (see [`Action::inverse`]). Every
//! S3 call names the account expected to own the bucket (`ExpectedBucketOwner`), so a bucket of
//! another account is never changed.

use crate::action::Action;
use crate::cloud::{Cloud, CloudError, classify, s3control_client};

/// What applying an action did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// The change was already in place (a revoked rule already gone).
    AlreadyDone,
    /// The action created something, which AWS gave this id (a detector id, a flow log id).
    Created(String),
}

/// Applies one action. Idempotent: work already done counts as done, and a creating call sends
/// `token` as its `ClientToken` (see [`crate::action::client_token`]), so calling again with
/// the same token returns what the first call created instead of creating another.
pub async fn apply(
    cloud: &Cloud,
    account: &str,
    region: &str,
    action: &Action,
    token: &str,
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
        Action::RevokeSecurityGroupIngress { group_id, rule_id }
        | Action::RevokeSecurityGroupEgress { group_id, rule_id } => {
            // One rule id per call: a call that names a missing rule fails as a whole. A rule
            // AWS reports back as unknown was already gone.
            let ec2 = c.get(aws_sdk_ec2::Client::new);
            let revoked = if matches!(action, Action::RevokeSecurityGroupIngress { .. }) {
                ec2.revoke_security_group_ingress()
                    .group_id(group_id)
                    .security_group_rule_ids(rule_id)
                    .send()
                    .await
                    .map(|out| out.unknown_ip_permissions().is_empty())
                    .map_err(|e| classify(call, e))
            } else {
                ec2.revoke_security_group_egress()
                    .group_id(group_id)
                    .security_group_rule_ids(rule_id)
                    .send()
                    .await
                    .map(|out| out.unknown_ip_permissions().is_empty())
                    .map_err(|e| classify(call, e))
            };
            match revoked {
                Ok(true) => Ok(Applied::Changed),
                Ok(false) => Ok(Applied::AlreadyDone),
                Err(e) => done_if(e, &["InvalidPermission.NotFound"]),
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
            referenced_group_id,
            prefix_list_id,
        }
        | Action::AuthorizeSecurityGroupEgress {
            group_id,
            protocol,
            from_port,
            to_port,
            cidr_ipv4,
            cidr_ipv6,
            description,
            referenced_group_id,
            prefix_list_id,
        } => {
            let permission = ip_permission(
                protocol,
                *from_port,
                *to_port,
                cidr_ipv4,
                cidr_ipv6,
                description,
                referenced_group_id,
                prefix_list_id,
            );
            let ec2 = c.get(aws_sdk_ec2::Client::new);
            let authorized = if matches!(action, Action::AuthorizeSecurityGroupIngress { .. }) {
                ec2.authorize_security_group_ingress()
                    .group_id(group_id)
                    .ip_permissions(permission)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify(call, e))
            } else {
                ec2.authorize_security_group_egress()
                    .group_id(group_id)
                    .ip_permissions(permission)
                    .send()
                    .await
                    .map(drop)
                    .map_err(|e| classify(call, e))
            };
            match authorized {
                Ok(()) => Ok(Applied::Changed),
                Err(e) => done_if(e, &["InvalidPermission.Duplicate"]),
            }
        }
        Action::DeleteNetworkAclEntry {
            network_acl_id,
            rule_number,
            egress,
        } => {
            match c
                .get(aws_sdk_ec2::Client::new)
                .delete_network_acl_entry()
                .network_acl_id(network_acl_id)
                .rule_number(*rule_number)
                .egress(*egress)
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["InvalidNetworkAclEntry.NotFound"]),
            }
        }
        Action::CreateNetworkAclEntry {
            network_acl_id,
            rule_number,
            egress,
            protocol,
            rule_action,
            cidr_block,
            ipv6_cidr_block,
            port_from,
            port_to,
            icmp_type,
            icmp_code,
        } => {
            let mut call_builder = c
                .get(aws_sdk_ec2::Client::new)
                .create_network_acl_entry()
                .network_acl_id(network_acl_id)
                .rule_number(*rule_number)
                .egress(*egress)
                .protocol(protocol)
                .rule_action(aws_sdk_ec2::types::RuleAction::from(rule_action.as_str()))
                .set_cidr_block(cidr_block.clone())
                .set_ipv6_cidr_block(ipv6_cidr_block.clone());
            if port_from.is_some() || port_to.is_some() {
                call_builder = call_builder.port_range(
                    aws_sdk_ec2::types::PortRange::builder()
                        .set_from(*port_from)
                        .set_to(*port_to)
                        .build(),
                );
            }
            if icmp_type.is_some() || icmp_code.is_some() {
                call_builder = call_builder.icmp_type_code(
                    aws_sdk_ec2::types::IcmpTypeCode::builder()
                        .set_type(*icmp_type)
                        .set_code(*icmp_code)
                        .build(),
                );
            }
            match call_builder.send().await {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["NetworkAclEntryAlreadyExists"]),
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
        Action::PutBucketPolicy { bucket, policy } => {
            c.get(aws_sdk_s3::Client::new)
                .put_bucket_policy()
                .bucket(bucket)
                .expected_bucket_owner(c.account())
                .policy(policy)
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
        Action::DeleteBucketPolicy { bucket } => {
            match c
                .get(aws_sdk_s3::Client::new)
                .delete_bucket_policy()
                .bucket(bucket)
                .expected_bucket_owner(c.account())
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["NoSuchBucketPolicy"]),
            }
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
        Action::PutAccountPublicAccessBlock {
            account_id,
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
        } => {
            let config = aws_sdk_s3control::types::PublicAccessBlockConfiguration::builder()
                .block_public_acls(*block_public_acls)
                .ignore_public_acls(*ignore_public_acls)
                .block_public_policy(*block_public_policy)
                .restrict_public_buckets(*restrict_public_buckets)
                .build();
            c.get(s3control_client)
                .put_public_access_block()
                .account_id(own_account(c.account(), account_id)?)
                .public_access_block_configuration(config)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::DeleteAccountPublicAccessBlock { account_id } => {
            match c
                .get(s3control_client)
                .delete_public_access_block()
                .account_id(own_account(c.account(), account_id)?)
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["NoSuchPublicAccessBlockConfiguration"]),
            }
        }
        Action::EnableEbsEncryptionByDefault { account_id } => {
            own_account(c.account(), account_id)?;
            c.get(aws_sdk_ec2::Client::new)
                .enable_ebs_encryption_by_default()
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::DisableEbsEncryptionByDefault { account_id } => {
            own_account(c.account(), account_id)?;
            c.get(aws_sdk_ec2::Client::new)
                .disable_ebs_encryption_by_default()
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::PutImageScanningConfiguration {
            repository_name,
            scan_on_push,
        } => {
            // Only the scanning configuration is sent, to the account's own registry: the
            // repository's policy and tag mutability stay as they are.
            c.get(aws_sdk_ecr::Client::new)
                .put_image_scanning_configuration()
                .registry_id(c.account())
                .repository_name(repository_name)
                .image_scanning_configuration(
                    aws_sdk_ecr::types::ImageScanningConfiguration::builder()
                        .scan_on_push(*scan_on_push)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::EnableKeyRotation { key_id } => {
            // No rotation period is sent: KMS keeps the key's own (365 days unless set).
            c.get(aws_sdk_kms::Client::new)
                .enable_key_rotation()
                .key_id(key_id)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::DisableKeyRotation { key_id } => {
            c.get(aws_sdk_kms::Client::new)
                .disable_key_rotation()
                .key_id(key_id)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        // Starting a trail that logs, or stopping one that does not, succeeds.
        Action::StartTrailLogging { account_id, name } => {
            own_account(c.account(), account_id)?;
            c.get(aws_sdk_cloudtrail::Client::new)
                .start_logging()
                .name(name)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::StopTrailLogging { account_id, name } => {
            own_account(c.account(), account_id)?;
            c.get(aws_sdk_cloudtrail::Client::new)
                .stop_logging()
                .name(name)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        // A trail of that name already there is not counted as done: it may be someone
        // else's, and the inverse would delete it. The job fails, and its next plan sees it.
        Action::CreateTrail {
            account_id,
            name,
            s3_bucket_name,
            is_multi_region_trail,
            enable_log_file_validation,
        } => {
            own_account(c.account(), account_id)?;
            c.get(aws_sdk_cloudtrail::Client::new)
                .create_trail()
                .name(name)
                .s3_bucket_name(s3_bucket_name)
                .is_multi_region_trail(*is_multi_region_trail)
                .enable_log_file_validation(*enable_log_file_validation)
                .include_global_service_events(true)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::DeleteTrail { account_id, name } => {
            own_account(c.account(), account_id)?;
            match c
                .get(aws_sdk_cloudtrail::Client::new)
                .delete_trail()
                .name(name)
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["TrailNotFoundException"]),
            }
        }
        Action::UpdateTrailLogFileValidation {
            name,
            enable_log_file_validation,
        } => {
            c.get(aws_sdk_cloudtrail::Client::new)
                .update_trail()
                .name(name)
                .enable_log_file_validation(*enable_log_file_validation)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::UpdateAccountPasswordPolicy {
            account_id,
            minimum_password_length,
            require_symbols,
            require_numbers,
            require_uppercase_characters,
            require_lowercase_characters,
            allow_users_to_change_password,
            max_password_age,
            password_reuse_prevention,
            hard_expiry,
        } => {
            own_account(c.account(), account_id)?;
            // The call replaces the whole policy: every field is sent, the two that may be
            // absent (no expiry, no reuse prevention) by leaving them out, as AWS reads them.
            c.get(aws_sdk_iam::Client::new)
                .update_account_password_policy()
                .minimum_password_length(*minimum_password_length)
                .require_symbols(*require_symbols)
                .require_numbers(*require_numbers)
                .require_uppercase_characters(*require_uppercase_characters)
                .require_lowercase_characters(*require_lowercase_characters)
                .allow_users_to_change_password(*allow_users_to_change_password)
                .set_max_password_age(*max_password_age)
                .set_password_reuse_prevention(*password_reuse_prevention)
                .hard_expiry(*hard_expiry)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::DeleteAccountPasswordPolicy { account_id } => {
            own_account(c.account(), account_id)?;
            match c
                .get(aws_sdk_iam::Client::new)
                .delete_account_password_policy()
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["NoSuchEntity"]),
            }
        }
        Action::PutConfigurationRecorder {
            account_id,
            name,
            role_arn,
            include_global_resource_types,
        } => {
            own_account(c.account(), account_id)?;
            use aws_sdk_config::types::{ConfigurationRecorder, RecordingGroup};
            let recorder = ConfigurationRecorder::builder()
                .name(name)
                .role_arn(role_arn)
                .recording_group(
                    RecordingGroup::builder()
                        .all_supported(true)
                        .include_global_resource_types(*include_global_resource_types)
                        .build(),
                )
                .build();
            c.get(aws_sdk_config::Client::new)
                .put_configuration_recorder()
                .configuration_recorder(recorder)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::DeleteConfigurationRecorder { account_id, name } => {
            own_account(c.account(), account_id)?;
            match c
                .get(aws_sdk_config::Client::new)
                .delete_configuration_recorder()
                .configuration_recorder_name(name)
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["NoSuchConfigurationRecorderException"]),
            }
        }
        Action::PutDeliveryChannel {
            account_id,
            name,
            s3_bucket_name,
        } => {
            own_account(c.account(), account_id)?;
            let channel = aws_sdk_config::types::DeliveryChannel::builder()
                .name(name)
                .s3_bucket_name(s3_bucket_name)
                .build();
            c.get(aws_sdk_config::Client::new)
                .put_delivery_channel()
                .delivery_channel(channel)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::DeleteDeliveryChannel { account_id, name } => {
            own_account(c.account(), account_id)?;
            match c
                .get(aws_sdk_config::Client::new)
                .delete_delivery_channel()
                .delivery_channel_name(name)
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["NoSuchDeliveryChannelException"]),
            }
        }
        Action::StartConfigurationRecorder { account_id, name } => {
            own_account(c.account(), account_id)?;
            // Starting a recorder that records already succeeds.
            c.get(aws_sdk_config::Client::new)
                .start_configuration_recorder()
                .configuration_recorder_name(name)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::StopConfigurationRecorder { account_id, name } => {
            own_account(c.account(), account_id)?;
            match c
                .get(aws_sdk_config::Client::new)
                .stop_configuration_recorder()
                .configuration_recorder_name(name)
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => done_if(classify(call, e), &["NoSuchConfigurationRecorderException"]),
            }
        }
        Action::CreateDetector { account_id } => {
            own_account(c.account(), account_id)?;
            // Only Enable is sent: features and finding frequency keep GuardDuty's defaults.
            let out = c
                .get(aws_sdk_guardduty::Client::new)
                .create_detector()
                .enable(true)
                .client_token(token)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            created(call, out.detector_id())
        }
        Action::UpdateDetector {
            account_id,
            detector_id,
            enable,
        } => {
            own_account(c.account(), account_id)?;
            c.get(aws_sdk_guardduty::Client::new)
                .update_detector()
                .detector_id(detector_id)
                .enable(*enable)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            Ok(Applied::Changed)
        }
        Action::DeleteDetector {
            account_id,
            detector_id,
        } => {
            own_account(c.account(), account_id)?;
            let guardduty = c.get(aws_sdk_guardduty::Client::new);
            match guardduty
                .delete_detector()
                .detector_id(detector_id)
                .send()
                .await
            {
                Ok(_) => Ok(Applied::Changed),
                Err(e) => {
                    // GuardDuty answers a detector that is not there with a generic
                    // BadRequestException: a detector no longer listed was deleted already.
                    let e = classify(call, e);
                    let listed = guardduty
                        .list_detectors()
                        .into_paginator()
                        .items()
                        .send()
                        .try_collect()
                        .await
                        .map_err(|e| classify("guardduty:ListDetectors", e))?;
                    if listed.iter().any(|d| d == detector_id) {
                        Err(e)
                    } else {
                        Ok(Applied::AlreadyDone)
                    }
                }
            }
        }
        Action::CreateFlowLogs {
            vpc_id,
            traffic_type,
            log_group,
            deliver_logs_role_arn,
        } => {
            use aws_sdk_ec2::types::{FlowLogsResourceType, LogDestinationType, TrafficType};
            let out = c
                .get(aws_sdk_ec2::Client::new)
                .create_flow_logs()
                .resource_type(FlowLogsResourceType::Vpc)
                .resource_ids(vpc_id)
                .traffic_type(TrafficType::from(traffic_type.as_str()))
                .log_destination_type(LogDestinationType::CloudWatchLogs)
                .log_group_name(log_group)
                .deliver_logs_permission_arn(deliver_logs_role_arn)
                .client_token(token)
                .send()
                .await
                .map_err(|e| classify(call, e))?;
            if let Some(failed) = out.unsuccessful().first() {
                let error = failed.error();
                return Err(CloudError::Service {
                    call,
                    code: error.and_then(|e| e.code()).unwrap_or_default().to_string(),
                    message: error
                        .and_then(|e| e.message())
                        .unwrap_or("the flow log was not created")
                        .to_string(),
                    status: None,
                });
            }
            created(call, out.flow_log_ids().first().map(String::as_str))
        }
        Action::DeleteFlowLogs { flow_log_id, .. } => {
            let gone = "InvalidFlowLogId.NotFound";
            match c
                .get(aws_sdk_ec2::Client::new)
                .delete_flow_logs()
                .flow_log_ids(flow_log_id)
                .send()
                .await
            {
                // AWS lists a flow log it could not delete as unsuccessful, with its reason.
                Ok(out) => match out.unsuccessful().first().and_then(|u| u.error()) {
                    None => Ok(Applied::Changed),
                    Some(e) if e.code() == Some(gone) => Ok(Applied::AlreadyDone),
                    Some(e) => Err(CloudError::Service {
                        call,
                        code: e.code().unwrap_or_default().to_string(),
                        message: e.message().unwrap_or_default().to_string(),
                        status: None,
                    }),
                },
                Err(e) => done_if(classify(call, e), &[gone]),
            }
        }
    }
}

/// What a creating call returned: the id AWS gave what it created, which the job must record.
fn created(call: &'static str, id: Option<&str>) -> Result<Applied, CloudError> {
    match id {
        Some(id) if !id.is_empty() => Ok(Applied::Created(id.to_string())),
        _ => Err(CloudError::Unsupported(format!(
            "{call} returned no id for what it created"
        ))),
    }
}

/// An account-level action acts only in the account whose role it runs under: the account id
/// it names must be that account (S3 Control takes the id as a parameter; EC2 has none).
fn own_account<'a>(acting: &str, named: &'a str) -> Result<&'a str, CloudError> {
    if acting == named {
        Ok(named)
    } else {
        Err(CloudError::Unsupported(format!(
            "an action on account {named} cannot run in account {acting}"
        )))
    }
}

/// One security group rule as the EC2 API takes it: a protocol and ports, and one peer (a CIDR,
/// a group, or a prefix list) carrying the description.
#[allow(clippy::too_many_arguments)] // reason: the fields of one rule, passed from one action
fn ip_permission(
    protocol: &str,
    from_port: i32,
    to_port: i32,
    cidr_ipv4: &Option<String>,
    cidr_ipv6: &Option<String>,
    description: &Option<String>,
    referenced_group_id: &Option<String>,
    prefix_list_id: &Option<String>,
) -> aws_sdk_ec2::types::IpPermission {
    use aws_sdk_ec2::types::{IpPermission, IpRange, Ipv6Range, PrefixListId, UserIdGroupPair};
    let mut permission = IpPermission::builder()
        .ip_protocol(protocol)
        .from_port(from_port)
        .to_port(to_port);
    if let Some(cidr) = cidr_ipv4 {
        permission = permission.ip_ranges(
            IpRange::builder()
                .cidr_ip(cidr)
                .set_description(description.clone())
                .build(),
        );
    }
    if let Some(cidr) = cidr_ipv6 {
        permission = permission.ipv6_ranges(
            Ipv6Range::builder()
                .cidr_ipv6(cidr)
                .set_description(description.clone())
                .build(),
        );
    }
    if let Some(group) = referenced_group_id {
        permission = permission.user_id_group_pairs(
            UserIdGroupPair::builder()
                .group_id(group)
                .set_description(description.clone())
                .build(),
        );
    }
    if let Some(list) = prefix_list_id {
        permission = permission.prefix_list_ids(
            PrefixListId::builder()
                .prefix_list_id(list)
                .set_description(description.clone())
                .build(),
        );
    }
    permission.build()
}

/// A call that failed because its work is already done counts as done.
fn done_if(e: CloudError, codes: &[&str]) -> Result<Applied, CloudError> {
    if e.is(codes) {
        Ok(Applied::AlreadyDone)
    } else {
        Err(e)
    }
}
