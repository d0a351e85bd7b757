//! `AWS::EC2::VPCEndpoint`: a VPC endpoint and its policy document.

use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, gone, is_hex_id, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// VPC endpoints, per region.
pub struct VpcEndpoint;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::EC2::VPCEndpoint",
    // Security Hub files its VPC endpoint findings under the endpoint service type.
    asff_types: &["AwsEc2VpcEndpointService"],
    ocsf_type: "AwsEc2VpcEndpointService",
    scope: Scope::Regional,
    noun: "VPC endpoint",
    read_permissions: &["ec2:DescribeVpcEndpoints"],
};

impl ResourceType for VpcEndpoint {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn valid_id(&self, id: &str) -> bool {
        is_hex_id(id, "vpce-")
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_vpc_endpoint(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let endpoints = clients
                .get(aws_sdk_ec2::Client::new)
                .describe_vpc_endpoints()
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("ec2:DescribeVpcEndpoints", e))?;
            Ok(endpoints
                .into_iter()
                .filter_map(|e| e.vpc_endpoint_id)
                .collect())
        })
    }
}

async fn observe_vpc_endpoint(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let gone_codes = [
        "InvalidVpcEndpointId.NotFound",
        "InvalidVpcEndpoint.NotFound",
    ];
    let out = c
        .get(aws_sdk_ec2::Client::new)
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(id)
        .send()
        .await
        .map_err(|e| not_found(classify("ec2:DescribeVpcEndpoints", e), &gone_codes))?;
    let ep = out.vpc_endpoints().first().ok_or_else(gone)?;
    Ok(json!({
        "vpc_endpoint_id": id,
        "vpc_id": ep.vpc_id(),
        "service_name": ep.service_name(),
        "policy_document": ep.policy_document(),
        "tags": tag_map(ep.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
    }))
}
