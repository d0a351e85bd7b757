//! `AWS::EC2::NetworkAcl`: a network ACL and its entries, each named by rule number and
//! direction.

use aws_sdk_ec2::types::{NetworkAclEntry, RuleAction};
use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, gone, is_hex_id, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// Network ACLs, per region.
pub struct NetworkAcl;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::EC2::NetworkAcl",
    asff_types: &["AwsEc2NetworkAcl"],
    ocsf_type: "AwsEc2NetworkAcl",
    scope: Scope::Regional,
    noun: "network ACL",
    read_permissions: &["ec2:DescribeNetworkAcls"],
};

impl ResourceType for NetworkAcl {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn valid_id(&self, id: &str) -> bool {
        is_hex_id(id, "acl-")
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_network_acl(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let acls = clients
                .get(aws_sdk_ec2::Client::new)
                .describe_network_acls()
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("ec2:DescribeNetworkAcls", e))?;
            Ok(acls.into_iter().filter_map(|a| a.network_acl_id).collect())
        })
    }
}

/// One entry as scripts read it; `port_range` and `icmp_type_code` are null when the entry has
/// none (protocol -1 covers every port).
fn entry(e: &NetworkAclEntry) -> Value {
    json!({
        "rule_number": e.rule_number(),
        "egress": e.egress().unwrap_or(false),
        "protocol": e.protocol(),
        "rule_action": e.rule_action().map(RuleAction::as_str),
        "cidr_block": e.cidr_block(),
        "ipv6_cidr_block": e.ipv6_cidr_block(),
        "port_range": e.port_range().map(|r| json!({"from": r.from(), "to": r.to()})),
        "icmp_type_code": e.icmp_type_code().map(|i| json!({"type": i.r#type(), "code": i.code()})),
    })
}

async fn observe_network_acl(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let gone_codes = ["InvalidNetworkAclID.NotFound"];
    let out = c
        .get(aws_sdk_ec2::Client::new)
        .describe_network_acls()
        .network_acl_ids(id)
        .send()
        .await
        .map_err(|e| not_found(classify("ec2:DescribeNetworkAcls", e), &gone_codes))?;
    let acl = out
        .network_acls()
        .iter()
        .find(|a| a.network_acl_id() == Some(id))
        .ok_or_else(gone)?;
    let mut entries: Vec<Value> = acl.entries().iter().map(entry).collect();
    // Ingress first, each direction in rule order: the order AWS evaluates them in.
    entries.sort_by_key(|e| (e["egress"].as_bool(), e["rule_number"].as_i64()));
    let mut subnets: Vec<&str> = acl
        .associations()
        .iter()
        .filter_map(|a| a.subnet_id())
        .collect();
    subnets.sort_unstable();
    Ok(json!({
        "network_acl_id": id,
        "vpc_id": acl.vpc_id(),
        "is_default": acl.is_default().unwrap_or(false),
        "subnet_ids": subnets,
        "entries": entries,
        "tags": tag_map(acl.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
    }))
}
