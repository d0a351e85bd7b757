//! Member accounts: credentials, observers (read a resource live) and the action layer (apply).
//!
//! A finding in another account is handled through STS AssumeRole into that account's
//! remediation role; the resulting configuration and clients are cached per account and region.
//! Observers turn what AWS says into the JSON shapes scripts read (documented in
//! docs/writing-remediations.md). [`Cloud::apply`] is the one place rectify changes AWS: each
//! action is idempotent, and a change that is already in place counts as done.

use std::collections::HashMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::action::Action;

/// A failed call to a member account.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("{resource} does not exist")]
    NotFound { resource: String },
    #[error("{call}: {code}: {message}")]
    Service {
        call: &'static str,
        code: String,
        message: String,
        status: Option<u16>,
    },
    #[error("{call}: could not reach AWS: {message}")]
    Transport { call: &'static str, message: String },
    #[error("{0}")]
    Unsupported(String),
}

const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "SlowDown",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
];

impl CloudError {
    /// Whether the whole job is worth trying again later (the SDK has already retried the call).
    pub fn retryable(&self) -> bool {
        match self {
            CloudError::Transport { .. } => true,
            CloudError::Service { code, status, .. } => {
                status.is_some_and(|s| s >= 500) || THROTTLING.contains(&code.as_str())
            }
            CloudError::NotFound { .. } | CloudError::Unsupported(_) => false,
        }
    }

    /// The AWS error code, when AWS answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Service { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// Classifies an SDK error (after the SDK's own retries).
pub fn classify<E>(call: &'static str, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            CloudError::Service {
                call,
                code: err.code().unwrap_or("Unknown").to_string(),
                message: err
                    .message()
                    .map(str::to_string)
                    .unwrap_or_else(|| error_chain(&err)),
                status,
            }
        }
        _ => CloudError::Transport {
            call,
            message: error_chain(&err),
        },
    }
}

/// An error and its sources on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Clients for one account and region.
pub struct Clients {
    pub s3: aws_sdk_s3::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
}

/// What applying an action did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Applied {
    Changed,
    /// The change was already in place (a revoked rule already gone).
    AlreadyDone,
}

/// Access to member accounts.
pub struct Cloud {
    base: SdkConfig,
    home_account: String,
    role_name: String,
    external_id: Option<String>,
    accounts: Mutex<HashMap<String, SdkConfig>>,
    clients: Mutex<HashMap<(String, String), Arc<Clients>>>,
    /// Per account: IAM unique id (`AIDA…`) → user name.
    users: Mutex<HashMap<String, HashMap<String, String>>>,
}

impl Cloud {
    pub fn new(
        base: SdkConfig,
        home_account: String,
        role_name: String,
        external_id: Option<String>,
    ) -> Cloud {
        Cloud {
            base,
            home_account,
            role_name,
            external_id,
            accounts: Mutex::default(),
            clients: Mutex::default(),
            users: Mutex::default(),
        }
    }

    /// The account rectify's own credentials belong to.
    pub fn home_account(&self) -> &str {
        &self.home_account
    }

    /// Every account, the controller's own included, is reached through its remediation role:
    /// the worker's own role has no rights on resources.
    async fn account_config(&self, account: &str) -> SdkConfig {
        let mut accounts = self.accounts.lock().await;
        if let Some(c) = accounts.get(account) {
            return c.clone();
        }
        let role = format!("arn:aws:iam::{account}:role/{}", self.role_name);
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("rectify")
            .configure(&self.base);
        if let Some(id) = &self.external_id {
            builder = builder.external_id(id.clone());
        }
        let provider = builder.build().await;
        let config = self
            .base
            .to_builder()
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(provider))
            .build();
        accounts.insert(account.to_string(), config.clone());
        config
    }

    /// The clients for an account and region, made once and cached.
    pub async fn clients(&self, account: &str, region: &str) -> Arc<Clients> {
        let key = (account.to_string(), region.to_string());
        if let Some(c) = self.clients.lock().await.get(&key) {
            return c.clone();
        }
        let config = self.account_config(account).await;
        let region = aws_config::Region::new(region.to_string());
        let clients = Arc::new(Clients {
            s3: aws_sdk_s3::Client::from_conf(
                aws_sdk_s3::config::Builder::from(&config)
                    .region(region.clone())
                    .build(),
            ),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&config)
                    .region(region.clone())
                    .build(),
            ),
            iam: aws_sdk_iam::Client::from_conf(
                aws_sdk_iam::config::Builder::from(&config)
                    .region(region)
                    .build(),
            ),
        });
        self.clients.lock().await.insert(key, clients.clone());
        clients
    }

    /// Reads a resource live and returns the JSON shape its scripts read.
    pub async fn observe(
        &self,
        account: &str,
        region: &str,
        resource_type: &str,
        id: &str,
    ) -> Result<Value, CloudError> {
        let c = self.clients(account, region).await;
        let mut body = match resource_type {
            "AWS::S3::Bucket" => observe_bucket(&c, id).await?,
            "AWS::EC2::SecurityGroup" => observe_security_group(&c, id).await?,
            "AWS::IAM::User" => {
                // Config names users by their unique id (`AIDA…` on AWS); a plain user name
                // works too. An id that is not a user name is looked up by id.
                if id.starts_with("AIDA") {
                    let name = self.resolve_user(&c, account, id).await?;
                    observe_user(&c, &name).await?
                } else {
                    match observe_user(&c, id).await {
                        Err(CloudError::NotFound { .. }) => {
                            let name = self.resolve_user(&c, account, id).await?;
                            observe_user(&c, &name).await?
                        }
                        other => other?,
                    }
                }
            }
            "AWS::EC2::VPCEndpoint" => observe_vpc_endpoint(&c, id).await?,
            "AWS::EC2::Instance" => observe_instance(&c, id).await?,
            other => {
                return Err(CloudError::Unsupported(format!(
                    "rectify cannot observe resources of type {other}"
                )));
            }
        };
        let head = json!({
            "type": resource_type,
            "id": id,
            "account": account,
            "region": region,
            "observed_at": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        if let (Value::Object(b), Value::Object(h)) = (&mut body, head) {
            for (k, v) in h.into_iter().rev() {
                b.insert(k, v);
            }
        }
        Ok(body)
    }

    /// Resolves an IAM unique id to a user name, through a per-account cache of ListUsers that
    /// is refreshed when the id is not in it.
    async fn resolve_user(
        &self,
        c: &Clients,
        account: &str,
        id: &str,
    ) -> Result<String, CloudError> {
        if let Some(name) = self.users.lock().await.get(account).and_then(|m| m.get(id)) {
            return Ok(name.clone());
        }
        let map: HashMap<String, String> = list_users(c).await?.into_iter().collect();
        let found = map.get(id).cloned();
        self.users.lock().await.insert(account.to_string(), map);
        found.ok_or_else(|| CloudError::NotFound {
            resource: format!("IAM user with unique id {id}"),
        })
    }

    /// Applies one action. Idempotent: work already done counts as done.
    pub async fn apply(
        &self,
        account: &str,
        region: &str,
        action: &Action,
    ) -> Result<Applied, CloudError> {
        let c = self.clients(account, region).await;
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
                c.s3.put_public_access_block()
                    .bucket(bucket)
                    .public_access_block_configuration(config)
                    .send()
                    .await
                    .map_err(|e| classify("s3:PutPublicAccessBlock", e))?;
                Ok(Applied::Changed)
            }
            Action::DeletePublicAccessBlock { bucket } => {
                match c
                    .s3
                    .delete_public_access_block()
                    .bucket(bucket)
                    .send()
                    .await
                {
                    Ok(_) => Ok(Applied::Changed),
                    Err(e) => match classify("s3:DeletePublicAccessBlock", e) {
                        e if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => {
                            Ok(Applied::AlreadyDone)
                        }
                        e => Err(e),
                    },
                }
            }
            Action::RevokeSecurityGroupIngress { group_id, rule_id } => {
                // One rule id per call: a call that names a missing rule fails as a whole.
                match c
                    .ec2
                    .revoke_security_group_ingress()
                    .group_id(group_id)
                    .security_group_rule_ids(rule_id)
                    .send()
                    .await
                {
                    Ok(out) if out.unknown_ip_permissions().is_empty() => Ok(Applied::Changed),
                    Ok(_) => Ok(Applied::AlreadyDone),
                    Err(e) => match classify("ec2:RevokeSecurityGroupIngress", e) {
                        e if e.code() == Some("InvalidPermission.NotFound") => {
                            Ok(Applied::AlreadyDone)
                        }
                        e => Err(e),
                    },
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
            } => {
                let mut permission = aws_sdk_ec2::types::IpPermission::builder()
                    .ip_protocol(protocol)
                    .from_port(*from_port)
                    .to_port(*to_port);
                if let Some(cidr) = cidr_ipv4 {
                    permission = permission.ip_ranges(
                        aws_sdk_ec2::types::IpRange::builder()
                            .cidr_ip(cidr)
                            .set_description(description.clone())
                            .build(),
                    );
                }
                if let Some(cidr) = cidr_ipv6 {
                    permission = permission.ipv6_ranges(
                        aws_sdk_ec2::types::Ipv6Range::builder()
                            .cidr_ipv6(cidr)
                            .set_description(description.clone())
                            .build(),
                    );
                }
                match c
                    .ec2
                    .authorize_security_group_ingress()
                    .group_id(group_id)
                    .ip_permissions(permission.build())
                    .send()
                    .await
                {
                    Ok(_) => Ok(Applied::Changed),
                    Err(e) => match classify("ec2:AuthorizeSecurityGroupIngress", e) {
                        e if e.code() == Some("InvalidPermission.Duplicate") => {
                            Ok(Applied::AlreadyDone)
                        }
                        e => Err(e),
                    },
                }
            }
            Action::UpdateAccessKey {
                user_name,
                access_key_id,
                status,
            } => {
                c.iam
                    .update_access_key()
                    .user_name(user_name)
                    .access_key_id(access_key_id)
                    .status(aws_sdk_iam::types::StatusType::from(status.as_str()))
                    .send()
                    .await
                    .map_err(|e| classify("iam:UpdateAccessKey", e))?;
                Ok(Applied::Changed)
            }
            Action::ModifyInstanceMetadataOptions {
                instance_id,
                http_tokens,
            } => {
                c.ec2
                    .modify_instance_metadata_options()
                    .instance_id(instance_id)
                    .http_tokens(aws_sdk_ec2::types::HttpTokensState::from(
                        http_tokens.as_str(),
                    ))
                    .send()
                    .await
                    .map_err(|e| classify("ec2:ModifyInstanceMetadataOptions", e))?;
                Ok(Applied::Changed)
            }
            Action::ModifyVpcEndpointPolicy {
                vpc_endpoint_id,
                policy_document,
            } => {
                c.ec2
                    .modify_vpc_endpoint()
                    .vpc_endpoint_id(vpc_endpoint_id)
                    .policy_document(policy_document)
                    .send()
                    .await
                    .map_err(|e| classify("ec2:ModifyVpcEndpoint", e))?;
                Ok(Applied::Changed)
            }
        }
    }
}

/// What the controller's own task role calls in its account (queue, tables, topic, member
/// roles, audit export), as IAM permissions.
pub const CONTROLLER_PERMISSIONS: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:SendMessage",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "sns:Publish",
    "sts:AssumeRole",
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:GetBucketObjectLockConfiguration",
    "s3:PutObjectRetention",
];

/// What the member-account role must allow: every observer's reads and every action's call,
/// sorted, once each.
pub fn member_permissions() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = OBSERVER_PERMISSIONS
        .iter()
        .copied()
        .chain(crate::action::ACTION_KINDS.iter().map(|k| k.permission))
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// Every IAM user of an account, as (unique id, user name).
pub async fn list_users(c: &Clients) -> Result<Vec<(String, String)>, CloudError> {
    let mut users = Vec::new();
    let mut marker = None;
    loop {
        let out = c
            .iam
            .list_users()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| classify("iam:ListUsers", e))?;
        users.extend(
            out.users()
                .iter()
                .map(|u| (u.user_id().to_string(), u.user_name().to_string())),
        );
        match out.marker() {
            Some(m) if out.is_truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    Ok(users)
}

/// The read-only calls the observers make, as IAM permissions.
pub const OBSERVER_PERMISSIONS: &[&str] = &[
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging",
    "s3:ListAllMyBuckets",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeVpcEndpoints",
    "ec2:DescribeInstances",
    "iam:GetUser",
    "iam:ListUsers",
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
    "iam:ListUserTags",
];

async fn observe_instance(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let out = c
        .ec2
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
        .flat_map(|r| r.instances())
        .find(|i| i.instance_id() == Some(id))
        .ok_or_else(|| CloudError::NotFound {
            resource: format!("instance {id}"),
        })?;
    let m = instance.metadata_options();
    Ok(json!({
        "instance_id": id,
        "state": instance.state().and_then(|s| s.name()).map(|n| n.as_str()),
        "metadata_options": {
            "http_tokens": m.and_then(|m| m.http_tokens()).map(|t| t.as_str()).unwrap_or("optional"),
            "http_endpoint": m.and_then(|m| m.http_endpoint()).map(|t| t.as_str()),
            "http_put_response_hop_limit": m.and_then(|m| m.http_put_response_hop_limit()),
        },
        "tags": tag_map(instance.tags().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
    }))
}

/// Resource tags as a JSON object.
fn tag_map<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Object(
        tags.map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
    )
}

fn not_found(e: CloudError, codes: &[&str], resource: String) -> CloudError {
    match e.code() {
        Some(code) if codes.contains(&code) => CloudError::NotFound { resource },
        _ => e,
    }
}

async fn observe_bucket(c: &Clients, bucket: &str) -> Result<Value, CloudError> {
    let pab = match c.s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => {
            let p = out.public_access_block_configuration();
            let flag = |f: Option<bool>| f.unwrap_or(false);
            json!({
                "block_public_acls": flag(p.and_then(|p| p.block_public_acls())),
                "ignore_public_acls": flag(p.and_then(|p| p.ignore_public_acls())),
                "block_public_policy": flag(p.and_then(|p| p.block_public_policy())),
                "restrict_public_buckets": flag(p.and_then(|p| p.restrict_public_buckets())),
            })
        }
        Err(e) => match classify("s3:GetPublicAccessBlock", e) {
            e if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => Value::Null,
            e => return Err(not_found(e, &["NoSuchBucket"], format!("bucket {bucket}"))),
        },
    };
    let tags = match c.s3.get_bucket_tagging().bucket(bucket).send().await {
        Ok(out) => tag_map(out.tag_set().iter().map(|t| (t.key(), t.value()))),
        Err(e) => match classify("s3:GetBucketTagging", e) {
            e if e.code() == Some("NoSuchTagSet") => json!({}),
            e => return Err(e),
        },
    };
    Ok(json!({ "bucket": bucket, "public_access_block": pab, "tags": tags }))
}

async fn observe_security_group(c: &Clients, group_id: &str) -> Result<Value, CloudError> {
    let groups = c
        .ec2
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
        let out = c
            .ec2
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

fn time_text(t: &aws_sdk_iam::primitives::DateTime) -> Option<String> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

async fn observe_user(c: &Clients, user_name: &str) -> Result<Value, CloudError> {
    let user = c
        .iam
        .get_user()
        .user_name(user_name)
        .send()
        .await
        .map_err(|e| {
            not_found(
                classify("iam:GetUser", e),
                &["NoSuchEntity"],
                format!("IAM user {user_name}"),
            )
        })?;
    let user_id = user.user().map(|u| u.user_id().to_string());
    let mut keys = Vec::new();
    let mut marker = None;
    loop {
        let out = c
            .iam
            .list_access_keys()
            .user_name(user_name)
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| classify("iam:ListAccessKeys", e))?;
        for k in out.access_key_metadata() {
            let Some(key_id) = k.access_key_id() else {
                continue;
            };
            let last_used = c
                .iam
                .get_access_key_last_used()
                .access_key_id(key_id)
                .send()
                .await
                .map_err(|e| classify("iam:GetAccessKeyLastUsed", e))?;
            keys.push(json!({
                "access_key_id": key_id,
                "status": k.status().map(|s| s.as_str()),
                "created_at": k.create_date().and_then(time_text),
                "last_used_at": last_used.access_key_last_used().and_then(|u| u.last_used_date()).and_then(time_text),
            }));
        }
        match out.marker() {
            Some(m) if out.is_truncated() => marker = Some(m.to_string()),
            _ => break,
        }
    }
    let tags = c
        .iam
        .list_user_tags()
        .user_name(user_name)
        .send()
        .await
        .map_err(|e| classify("iam:ListUserTags", e))?;
    let tags = tag_map(tags.tags().iter().map(|t| (t.key(), t.value())));
    Ok(json!({ "user_name": user_name, "user_id": user_id, "access_keys": keys, "tags": tags }))
}

async fn observe_vpc_endpoint(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let out = c
        .ec2
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
