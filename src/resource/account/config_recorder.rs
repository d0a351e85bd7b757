//! AWS Config's configuration recorder and delivery channel in one region of the account.

use aws_sdk_config::types::RecordingGroup;
use serde_json::{Value, json};

use crate::cloud::{Clients, CloudError, classify};

/// The region's recorders and delivery channels as the observed shape's `config_recorder`,
/// each list sorted by name. A recorder is recording or not (its status); what it records is
/// `all_supported`, `include_global_resource_types` and `resource_types`; a recorder a service
/// linked to itself names its `service_principal` (null for the account's own).
pub(super) async fn read(c: &Clients) -> Result<Value, CloudError> {
    let config = c.get(aws_sdk_config::Client::new);
    let recorders = config
        .describe_configuration_recorders()
        .send()
        .await
        .map_err(|e| classify("config:DescribeConfigurationRecorders", e))?;
    let status = config
        .describe_configuration_recorder_status()
        .send()
        .await
        .map_err(|e| classify("config:DescribeConfigurationRecorderStatus", e))?;
    let channels = config
        .describe_delivery_channels()
        .send()
        .await
        .map_err(|e| classify("config:DescribeDeliveryChannels", e))?;
    let mut recorders: Vec<Value> = recorders
        .configuration_recorders()
        .iter()
        .map(|r| {
            let name = r.name().unwrap_or_default();
            let recording = status
                .configuration_recorders_status()
                .iter()
                .any(|s| s.name() == Some(name) && s.recording());
            let group = r.recording_group();
            let mut types: Vec<&str> = group
                .map(|g| {
                    g.resource_types()
                        .iter()
                        .map(aws_sdk_config::types::ResourceType::as_str)
                        .collect()
                })
                .unwrap_or_default();
            types.sort_unstable();
            json!({
                "name": name,
                "role_arn": r.role_arn(),
                "recording": recording,
                "all_supported": group.is_some_and(RecordingGroup::all_supported),
                "include_global_resource_types": group.is_some_and(RecordingGroup::include_global_resource_types),
                "resource_types": types,
                "service_principal": r.service_principal(),
            })
        })
        .collect();
    recorders.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    let mut channels: Vec<Value> = channels
        .delivery_channels()
        .iter()
        .map(|d| {
            json!({
                "name": d.name(),
                "s3_bucket_name": d.s3_bucket_name(),
                "s3_key_prefix": d.s3_key_prefix(),
                "sns_topic_arn": d.sns_topic_arn(),
            })
        })
        .collect();
    channels.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(json!({"recorders": recorders, "delivery_channels": channels}))
}
