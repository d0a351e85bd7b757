//! `AWS::EC2::VPCEndpoint`: a VPC endpoint and its policy document.

use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, is_hex_id, not_found, tag_map, well_formed};
use crate::cloud::{Clients, Cloud, CloudError, classify};

/// VPC endpoints, per region.
pub struct VpcEndpoint;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::EC2::VPCEndpoint",
    // Security Hub files its VPC endpoint findings under the endpoint service type.
    asff_types: &["AwsEc2VpcEndpointService"],
    ocsf_type: "AwsEc2VpcEndpointService",
    scope: Scope::Regional,
    read_permissions: &["ec2:DescribeVpcEndpoints"],
};

impl ResourceType for VpcEndpoint {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn validate_id(&self, id: &str) -> Result<(), &'static str> {
        well_formed(is_hex_id(id, "vpce-"))
    }

    fn observe<'a>(
        &'a self,
        _cloud: &'a Cloud,
        clients: &'a Clients,
        _account: &'a str,
        _region: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_vpc_endpoint(clients, id))
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
                    .describe_vpc_endpoints()
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify("ec2:DescribeVpcEndpoints", e))?;
                ids.extend(
                    out.vpc_endpoints()
                        .iter()
                        .filter_map(|e| e.vpc_endpoint_id().map(str::to_string)),
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

async fn observe_vpc_endpoint(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let out = c
        .get(aws_sdk_ec2::Client::new)
        .describe_vpc_endpoints()
        .vpc_endpoint_ids(id)
        .send()
        .await
        .map_err(|e| {
            not_found(
                classify("ec2:DescribeVpcEndpoints", e),
                &[
                    "InvalidVpcEndpointId.NotFound",
                    "InvalidVpcEndpoint.NotFound",
                ],
                format!("VPC endpoint {id}"),
            )
        })?;
    let ep = out
        .vpc_endpoints()
        .first()
        .ok_or_else(|| CloudError::NotFound {
            resource: format!("VPC endpoint {id}"),
        })?;
    Ok(json!({
        "vpc_endpoint_id": id,
        "vpc_id": ep.vpc_id(),
        "service_name": ep.service_name(),
        "policy_document": ep.policy_document(),
        "tags": tag_map(ep.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
    }))
}
