//! `AWS::EC2::VPC`: a VPC and its flow logs.
//!
//! The observed shape is the VPC (`vpc_id`, `cidr_block`, `is_default`, `state`, `tags`) and
//! `flow_logs`: every flow log whose resource is this VPC, with its id, status, traffic type and
//! destination, so a script can see whether one is active and a plan's inverse can name only a
//! flow log the job created.

use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, gone, is_hex_id, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// VPCs, per region.
pub struct Vpc;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::EC2::VPC",
    asff_types: &["AwsEc2Vpc"],
    ocsf_type: "AwsEc2Vpc",
    scope: Scope::Regional,
    noun: "VPC",
    read_permissions: &["ec2:DescribeVpcs", "ec2:DescribeFlowLogs"],
};

impl ResourceType for Vpc {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn valid_id(&self, id: &str) -> bool {
        is_hex_id(id, "vpc-")
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_vpc(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let vpcs = clients
                .get(aws_sdk_ec2::Client::new)
                .describe_vpcs()
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("ec2:DescribeVpcs", e))?;
            Ok(vpcs.into_iter().filter_map(|v| v.vpc_id).collect())
        })
    }
}

async fn observe_vpc(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let ec2 = c.get(aws_sdk_ec2::Client::new);
    let out = ec2
        .describe_vpcs()
        .vpc_ids(id)
        .send()
        .await
        .map_err(|e| not_found(classify("ec2:DescribeVpcs", e), &["InvalidVpcID.NotFound"]))?;
    let vpc = out.vpcs().first().ok_or_else(gone)?;
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("resource-id")
        .values(id)
        .build();
    let flow_logs: Vec<_> = ec2
        .describe_flow_logs()
        .filter(filter)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify("ec2:DescribeFlowLogs", e))?;
    let mut flow_logs: Vec<Value> = flow_logs
        .iter()
        // The filter names this VPC; a flow log of anything else is never shown.
        .filter(|f| f.resource_id() == Some(id))
        .map(|f| {
            json!({
                "flow_log_id": f.flow_log_id(),
                "status": f.flow_log_status(),
                "traffic_type": f.traffic_type().map(aws_sdk_ec2::types::TrafficType::as_str),
                "log_destination_type": f
                    .log_destination_type()
                    .map(aws_sdk_ec2::types::LogDestinationType::as_str),
                "log_group": f.log_group_name(),
                "log_destination": f.log_destination(),
                "deliver_logs_role_arn": f.deliver_logs_permission_arn(),
            })
        })
        .collect();
    // Listed in id order, so a plan that follows the list is stable.
    flow_logs.sort_by(|a, b| {
        a["flow_log_id"]
            .as_str()
            .unwrap_or_default()
            .cmp(b["flow_log_id"].as_str().unwrap_or_default())
    });
    Ok(json!({
        "vpc_id": id,
        "cidr_block": vpc.cidr_block(),
        "is_default": vpc.is_default().unwrap_or(false),
        "state": vpc.state().map(aws_sdk_ec2::types::VpcState::as_str),
        "tags": tag_map(vpc.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
        "flow_logs": flow_logs,
    }))
}
