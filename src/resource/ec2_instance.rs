//! `AWS::EC2::Instance`: an instance's state and metadata options.

use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, is_hex_id, not_found, tag_map, well_formed};
use crate::cloud::{Clients, Cloud, CloudError, classify};

/// EC2 instances, per region.
pub struct Ec2Instance;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::EC2::Instance",
    asff_types: &["AwsEc2Instance"],
    ocsf_type: "AwsEc2Instance",
    scope: Scope::Regional,
    read_permissions: &["ec2:DescribeInstances"],
};

impl ResourceType for Ec2Instance {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn validate_id(&self, id: &str) -> Result<(), &'static str> {
        well_formed(is_hex_id(id, "i-"))
    }

    fn observe<'a>(
        &'a self,
        _cloud: &'a Cloud,
        clients: &'a Clients,
        _account: &'a str,
        _region: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_instance(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        _cloud: &'a Cloud,
        clients: &'a Clients,
        _account: &'a str,
        _region: &'a str,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let ec2 = clients.get(aws_sdk_ec2::Client::new);
            let mut ids = Vec::new();
            let mut token = None;
            loop {
                let out = ec2
                    .describe_instances()
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify("ec2:DescribeInstances", e))?;
                ids.extend(
                    out.reservations()
                        .iter()
                        .flat_map(aws_sdk_ec2::types::Reservation::instances)
                        .filter_map(|i| i.instance_id().map(str::to_string)),
                );
                match out.next_token() {
                    Some(t) if !t.is_empty() => token = Some(t.to_string()),
                    _ => break,
                }
            }
            Ok(ids)
        })
    }
}

async fn observe_instance(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let out = c
        .get(aws_sdk_ec2::Client::new)
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|e| {
            not_found(
                classify("ec2:DescribeInstances", e),
                &["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"],
                format!("instance {id}"),
            )
        })?;
    let instance = out
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .find(|i| i.instance_id() == Some(id))
        .ok_or_else(|| CloudError::NotFound {
            resource: format!("instance {id}"),
        })?;
    let m = instance.metadata_options();
    Ok(json!({
        "instance_id": id,
        "state": instance.state().and_then(|s| s.name()).map(aws_sdk_ec2::types::InstanceStateName::as_str),
        "metadata_options": {
            "http_tokens": m.and_then(|m| m.http_tokens()).map_or("optional", aws_sdk_ec2::types::HttpTokensState::as_str),
            "http_endpoint": m.and_then(|m| m.http_endpoint()).map(aws_sdk_ec2::types::InstanceMetadataEndpointState::as_str),
            "http_put_response_hop_limit": m.and_then(aws_sdk_ec2::types::InstanceMetadataOptionsResponse::http_put_response_hop_limit),
        },
        "tags": tag_map(instance.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
    }))
}
