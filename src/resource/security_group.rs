//! `AWS::EC2::SecurityGroup`: a group and its ingress and egress rules, by rule id; for a VPC's
//! default group, also the network interfaces that use it.

use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, gone, is_hex_id, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// Security groups, per region.
pub struct SecurityGroup;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::EC2::SecurityGroup",
    asff_types: &["AwsEc2SecurityGroup"],
    ocsf_type: "AwsEc2SecurityGroup",
    scope: Scope::Regional,
    noun: "security group",
    read_permissions: &[
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSecurityGroupRules",
        "ec2:DescribeNetworkInterfaces",
    ],
};

impl ResourceType for SecurityGroup {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn valid_id(&self, id: &str) -> bool {
        is_hex_id(id, "sg-")
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_security_group(clients, id))
    }

    /// After rule actions only the group's rules are read back.
    fn reread<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
        _kinds: &'a [String],
        before: &'a Value,
        applied: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(async move {
            if !applied.iter().all(|k| RULE_KINDS.contains(k)) {
                return observe_security_group(clients, id).await;
            }
            let ec2 = clients.get(aws_sdk_ec2::Client::new);
            let (ingress, egress) = read_rules(&ec2, id).await?;
            let mut after = before.clone();
            after["ingress_rules"] = json!(ingress);
            after["egress_rules"] = json!(egress);
            Ok(after)
        })
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let groups = clients
                .get(aws_sdk_ec2::Client::new)
                .describe_security_groups()
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("ec2:DescribeSecurityGroups", e))?;
            Ok(groups.into_iter().filter_map(|g| g.group_id).collect())
        })
    }
}

async fn observe_security_group(c: &Clients, group_id: &str) -> Result<Value, CloudError> {
    let gone_codes = ["InvalidGroup.NotFound", "InvalidGroupId.NotFound"];
    let ec2 = c.get(aws_sdk_ec2::Client::new);
    // The group and its rules are read at once: neither call needs the other's answer.
    let (groups, rules) = tokio::join!(
        async {
            ec2.describe_security_groups()
                .group_ids(group_id)
                .send()
                .await
                .map_err(|e| not_found(classify("ec2:DescribeSecurityGroups", e), &gone_codes))
        },
        read_rules(&ec2, group_id)
    );
    let groups = groups?;
    let group = groups.security_groups().first().ok_or_else(gone)?;
    let (ingress, egress) = rules?;
    let mut shape = json!({
        "group_id": group_id,
        "group_name": group.group_name(),
        "vpc_id": group.vpc_id(),
        "ingress_rules": ingress,
        "egress_rules": egress,
        "tags": tag_map(group.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
    });
    // Only a VPC's default group is closed whole, and only its users matter to that decision:
    // other groups are not asked about, which keeps their observation to two calls.
    if group.group_name() == Some("default") {
        let filter = group_filter(group_id);
        let interfaces = ec2
            .describe_network_interfaces()
            .filters(filter)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| classify("ec2:DescribeNetworkInterfaces", e))?;
        let mut ids: Vec<&str> = interfaces
            .iter()
            .filter_map(|i| i.network_interface_id())
            .collect();
        ids.sort_unstable();
        shape["network_interfaces"] = json!(ids);
    }
    Ok(shape)
}

/// The action kinds that change a group's rules and nothing else of it.
const RULE_KINDS: &[&str] = &[
    "ec2:RevokeSecurityGroupIngress",
    "ec2:RevokeSecurityGroupEgress",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:AuthorizeSecurityGroupEgress",
];

/// The `group-id` filter EC2's describe calls take.
fn group_filter(group_id: &str) -> aws_sdk_ec2::types::Filter {
    aws_sdk_ec2::types::Filter::builder()
        .name("group-id")
        .values(group_id)
        .build()
}

/// A group's ingress and egress rules, each sorted by rule id.
async fn read_rules(
    ec2: &aws_sdk_ec2::Client,
    group_id: &str,
) -> Result<(Vec<Value>, Vec<Value>), CloudError> {
    let filter = group_filter(group_id);
    let all = ec2
        .describe_security_group_rules()
        .filters(filter)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify("ec2:DescribeSecurityGroupRules", e))?;
    let rules = |egress: bool| {
        let mut rules: Vec<Value> = all
            .iter()
            .filter(|r| r.is_egress().unwrap_or(false) == egress && r.group_id() == Some(group_id))
            .map(|r| {
                json!({
                    "rule_id": r.security_group_rule_id(),
                    "protocol": r.ip_protocol(),
                    "from_port": r.from_port(),
                    "to_port": r.to_port(),
                    "cidr_ipv4": r.cidr_ipv4(),
                    "cidr_ipv6": r.cidr_ipv6(),
                    "referenced_group_id": r.referenced_group_info().and_then(|g| g.group_id()),
                    "prefix_list_id": r.prefix_list_id(),
                    "description": r.description(),
                })
            })
            .collect();
        rules.sort_by(|a, b| a["rule_id"].as_str().cmp(&b["rule_id"].as_str()));
        rules
    };
    Ok((rules(false), rules(true)))
}
