//! `AWS::EC2::Instance`: an instance's state and metadata options.

use aws_sdk_ec2::types::{
    HttpTokensState, InstanceMetadataEndpointState, InstanceMetadataOptionsResponse,
    InstanceStateName,
};
use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, gone, is_hex_id, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// EC2 instances, per region.
pub struct Ec2Instance;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::EC2::Instance",
    asff_types: &["AwsEc2Instance"],
    ocsf_type: "AwsEc2Instance",
    scope: Scope::Regional,
    noun: "instance",
    read_permissions: &["ec2:DescribeInstances"],
};

impl ResourceType for Ec2Instance {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn valid_id(&self, id: &str) -> bool {
        is_hex_id(id, "i-")
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_instance(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let reservations = clients
                .get(aws_sdk_ec2::Client::new)
                .describe_instances()
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("ec2:DescribeInstances", e))?;
            Ok(reservations
                .into_iter()
                .flat_map(|r| r.instances.unwrap_or_default())
                .filter_map(|i| i.instance_id)
                .collect())
        })
    }
}

async fn observe_instance(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let gone_codes = ["InvalidInstanceID.NotFound", "InvalidInstanceID.Malformed"];
    let out = c
        .get(aws_sdk_ec2::Client::new)
        .describe_instances()
        .instance_ids(id)
        .send()
        .await
        .map_err(|e| not_found(classify("ec2:DescribeInstances", e), &gone_codes))?;
    let instance = out
        .reservations()
        .iter()
        .flat_map(aws_sdk_ec2::types::Reservation::instances)
        .find(|i| i.instance_id() == Some(id))
        .ok_or_else(gone)?;
    let m = instance.metadata_options();
    Ok(json!({
        "instance_id": id,
        "state": instance.state().and_then(|s| s.name()).map(InstanceStateName::as_str),
        "metadata_options": {
            "http_tokens": m.and_then(|m| m.http_tokens()).map_or("optional", HttpTokensState::as_str),
            "http_endpoint": m.and_then(|m| m.http_endpoint()).map(InstanceMetadataEndpointState::as_str),
            "http_put_response_hop_limit": m.and_then(InstanceMetadataOptionsResponse::http_put_response_hop_limit),
        },
        "tags": tag_map(instance.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
    }))
}
