//! `AWS::EC2::SecurityGroup`: a security group and its ingress rules.

use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, is_hex_id, not_found, tag_map, well_formed};
use crate::cloud::{Clients, Cloud, CloudError, classify};

/// EC2 security groups, per region.
pub struct SecurityGroup;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::EC2::SecurityGroup",
    asff_types: &["AwsEc2SecurityGroup"],
    ocsf_type: "AwsEc2SecurityGroup",
    scope: Scope::Regional,
    read_permissions: &[
        "ec2:DescribeSecurityGroups",
        "ec2:DescribeSecurityGroupRules",
    ],
};

impl ResourceType for SecurityGroup {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn validate_id(&self, id: &str) -> Result<(), &'static str> {
        well_formed(is_hex_id(id, "sg-"))
    }

    fn observe<'a>(
        &'a self,
        _cloud: &'a Cloud,
        clients: &'a Clients,
        _account: &'a str,
        _region: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_security_group(clients, id))
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
                    .describe_security_groups()
                    .set_next_token(token.take())
                    .send()
                    .await
                    .map_err(|e| classify("ec2:DescribeSecurityGroups", e))?;
                ids.extend(
                    out.security_groups()
                        .iter()
                        .filter_map(|g| g.group_id().map(str::to_string)),
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

async fn observe_security_group(c: &Clients, group_id: &str) -> Result<Value, CloudError> {
    let ec2 = c.get(aws_sdk_ec2::Client::new);
    let groups = ec2
        .describe_security_groups()
        .group_ids(group_id)
        .send()
        .await
        .map_err(|e| {
            not_found(
                classify("ec2:DescribeSecurityGroups", e),
                &["InvalidGroup.NotFound", "InvalidGroupId.NotFound"],
                format!("security group {group_id}"),
            )
        })?;
    let group = groups
        .security_groups()
        .first()
        .ok_or_else(|| CloudError::NotFound {
            resource: format!("security group {group_id}"),
        })?;
    let filter = aws_sdk_ec2::types::Filter::builder()
        .name("group-id")
        .values(group_id)
        .build();
    let mut rules = Vec::new();
    let mut token = None;
    loop {
        let out = ec2
            .describe_security_group_rules()
            .filters(filter.clone())
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| classify("ec2:DescribeSecurityGroupRules", e))?;
        for r in out.security_group_rules() {
            if r.is_egress() == Some(true) || r.group_id() != Some(group_id) {
                continue;
            }
            rules.push(json!({
                "rule_id": r.security_group_rule_id(),
                "protocol": r.ip_protocol(),
                "from_port": r.from_port(),
                "to_port": r.to_port(),
                "cidr_ipv4": r.cidr_ipv4(),
                "cidr_ipv6": r.cidr_ipv6(),
                "referenced_group_id": r.referenced_group_info().and_then(|g| g.group_id()),
                "prefix_list_id": r.prefix_list_id(),
                "description": r.description(),
            }));
        }
        match out.next_token() {
            Some(t) if !t.is_empty() => token = Some(t.to_string()),
            _ => break,
        }
    }
    rules.sort_by(|a, b| a["rule_id"].as_str().cmp(&b["rule_id"].as_str()));
    Ok(json!({
        "group_id": group_id,
        "group_name": group.group_name(),
        "vpc_id": group.vpc_id(),
        "ingress_rules": rules,
        "tags": tag_map(group.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
    }))
}
