//! Actions and plans: the typed changes rectify may make, and the lists scripts decide on.
//!
//! An [`Action`] is the only way rectify changes AWS. Each kind is named after the API call it
//! makes (which is also the IAM permission it needs), is idempotent (applying it to a resource
//! where the work is already done succeeds), and has an inverse computed from the resource's
//! before-state, so that a fix can be undone exactly.

pub mod apply;
pub mod bind;
pub mod policy;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One typed, idempotent change to AWS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", deny_unknown_fields)]
pub enum Action {
    /// Sets all four flags of a bucket's Public Access Block.
    #[serde(rename = "s3:PutPublicAccessBlock")]
    PutPublicAccessBlock {
        bucket: String,
        block_public_acls: bool,
        ignore_public_acls: bool,
        block_public_policy: bool,
        restrict_public_buckets: bool,
    },
    /// Removes a bucket's Public Access Block (the inverse of a first put).
    #[serde(rename = "s3:DeletePublicAccessBlock")]
    DeletePublicAccessBlock { bucket: String },
    /// Revokes one ingress rule of a security group, by its rule id.
    #[serde(rename = "ec2:RevokeSecurityGroupIngress")]
    RevokeSecurityGroupIngress { group_id: String, rule_id: String },
    /// Authorizes one CIDR ingress rule (the inverse of a revoke).
    #[serde(rename = "ec2:AuthorizeSecurityGroupIngress")]
    AuthorizeSecurityGroupIngress {
        group_id: String,
        protocol: String,
        from_port: i32,
        to_port: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cidr_ipv4: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cidr_ipv6: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// A group the rule admits (a default group's rule names the group itself).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        referenced_group_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix_list_id: Option<String>,
    },
    /// Revokes one egress rule of a security group, by its rule id.
    #[serde(rename = "ec2:RevokeSecurityGroupEgress")]
    RevokeSecurityGroupEgress { group_id: String, rule_id: String },
    /// Authorizes one egress rule (the inverse of an egress revoke).
    #[serde(rename = "ec2:AuthorizeSecurityGroupEgress")]
    AuthorizeSecurityGroupEgress {
        group_id: String,
        protocol: String,
        from_port: i32,
        to_port: i32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cidr_ipv4: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cidr_ipv6: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        referenced_group_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix_list_id: Option<String>,
    },
    /// Deletes one entry of a network ACL, named by its rule number and direction.
    #[serde(rename = "ec2:DeleteNetworkAclEntry")]
    DeleteNetworkAclEntry {
        network_acl_id: String,
        rule_number: i32,
        egress: bool,
    },
    /// Creates one entry of a network ACL (the inverse of a delete).
    #[serde(rename = "ec2:CreateNetworkAclEntry")]
    CreateNetworkAclEntry {
        network_acl_id: String,
        rule_number: i32,
        egress: bool,
        /// The protocol number as text (`6`, `17`, `-1` for all).
        protocol: String,
        /// `allow` or `deny`.
        rule_action: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cidr_block: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ipv6_cidr_block: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port_from: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port_to: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        icmp_type: Option<i32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        icmp_code: Option<i32>,
    },
    /// Sets an access key `Active` or `Inactive`; keys are never deleted.
    #[serde(rename = "iam:UpdateAccessKey")]
    UpdateAccessKey {
        user_name: String,
        access_key_id: String,
        status: KeyStatus,
    },
    /// Replaces a VPC endpoint's policy document.
    #[serde(rename = "ec2:ModifyVpcEndpoint")]
    ModifyVpcEndpointPolicy {
        vpc_endpoint_id: String,
        policy_document: String,
    },
    /// Sets whether an instance's metadata service requires session tokens (IMDSv2).
    #[serde(rename = "ec2:ModifyInstanceMetadataOptions")]
    ModifyInstanceMetadataOptions {
        instance_id: String,
        http_tokens: HttpTokens,
    },
    /// Replaces a bucket's policy with `policy` (JSON text); a plan may only add one TLS deny.
    #[serde(rename = "s3:PutBucketPolicy")]
    PutBucketPolicy { bucket: String, policy: String },
    /// Removes a bucket's policy (the inverse of a first put).
    #[serde(rename = "s3:DeleteBucketPolicy")]
    DeleteBucketPolicy { bucket: String },
    /// Sets all four flags of an account's S3 Public Access Block (S3 Control, account-wide).
    #[serde(rename = "s3control:PutPublicAccessBlock")]
    PutAccountPublicAccessBlock {
        account_id: String,
        block_public_acls: bool,
        ignore_public_acls: bool,
        block_public_policy: bool,
        restrict_public_buckets: bool,
    },
    /// Removes an account's S3 Public Access Block (the inverse of a first put).
    #[serde(rename = "s3control:DeletePublicAccessBlock")]
    DeleteAccountPublicAccessBlock { account_id: String },
    /// Turns on EBS encryption by default in the account and the job's region.
    #[serde(rename = "ec2:EnableEbsEncryptionByDefault")]
    EnableEbsEncryptionByDefault { account_id: String },
    /// Turns off EBS encryption by default (the inverse of turning it on).
    #[serde(rename = "ec2:DisableEbsEncryptionByDefault")]
    DisableEbsEncryptionByDefault { account_id: String },
    /// Sets whether an RDS instance is publicly accessible, applied immediately.
    #[serde(rename = "rds:ModifyDBInstance")]
    ModifyDbInstancePublicAccess {
        db_instance_identifier: String,
        publicly_accessible: bool,
    },
    /// Removes `all` from (or adds it to) an RDS snapshot's `restore` attribute; account ids
    /// named in the attribute are never touched.
    #[serde(rename = "rds:ModifyDBSnapshotAttribute")]
    ModifyDbSnapshotRestoreAll {
        db_snapshot_identifier: String,
        shared_with_all: bool,
    },
    /// Sets whether an ECR repository scans each image pushed to it; nothing else of the
    /// repository (its policy, tag mutability) is sent.
    #[serde(rename = "ecr:PutImageScanningConfiguration")]
    PutImageScanningConfiguration {
        repository_name: String,
        scan_on_push: bool,
    },
    /// Turns on automatic rotation of a KMS key's material.
    #[serde(rename = "kms:EnableKeyRotation")]
    EnableKeyRotation { key_id: String },
    /// Turns off automatic rotation of a KMS key's material (the inverse of turning it on).
    #[serde(rename = "kms:DisableKeyRotation")]
    DisableKeyRotation { key_id: String },
    /// Starts a trail's logging, in the trail's home region (the job's region).
    #[serde(rename = "cloudtrail:StartLogging")]
    StartTrailLogging { account_id: String, name: String },
    /// Stops a trail's logging (the inverse of starting it).
    #[serde(rename = "cloudtrail:StopLogging")]
    StopTrailLogging { account_id: String, name: String },
    /// Creates a trail in the job's region, delivering to an existing bucket; a plan creates one
    /// only in an account and region with no trail, multi-region with log file validation on.
    #[serde(rename = "cloudtrail:CreateTrail")]
    CreateTrail {
        account_id: String,
        name: String,
        s3_bucket_name: String,
        is_multi_region_trail: bool,
        enable_log_file_validation: bool,
    },
    /// Deletes the trail a job created (the inverse of creating it).
    #[serde(rename = "cloudtrail:DeleteTrail")]
    DeleteTrail { account_id: String, name: String },
    /// Sets whether a trail writes digest files that validate its log files; no other
    /// attribute of the trail is sent.
    #[serde(rename = "cloudtrail:UpdateTrail")]
    UpdateTrailLogFileValidation {
        name: String,
        enable_log_file_validation: bool,
    },
    /// Replaces the account's IAM password policy by this one. The call resets every field it
    /// is not sent to its default, so the action carries the whole policy.
    #[serde(rename = "iam:UpdateAccountPasswordPolicy")]
    UpdateAccountPasswordPolicy {
        account_id: String,
        minimum_password_length: i32,
        require_symbols: bool,
        require_numbers: bool,
        require_uppercase_characters: bool,
        require_lowercase_characters: bool,
        allow_users_to_change_password: bool,
        /// Days a password lasts; null: passwords never expire.
        max_password_age: Option<i32>,
        /// How many earlier passwords a user may not reuse; null: none are remembered.
        password_reuse_prevention: Option<i32>,
        hard_expiry: bool,
    },
    /// Removes the account's IAM password policy (the inverse of a first policy).
    #[serde(rename = "iam:DeleteAccountPasswordPolicy")]
    DeleteAccountPasswordPolicy { account_id: String },
    /// Creates AWS Config's configuration recorder in the job's region, recording every
    /// supported resource type; only where the region has none.
    #[serde(rename = "config:PutConfigurationRecorder")]
    PutConfigurationRecorder {
        account_id: String,
        name: String,
        role_arn: String,
        include_global_resource_types: bool,
    },
    /// Deletes a configuration recorder (the inverse of creating it).
    #[serde(rename = "config:DeleteConfigurationRecorder")]
    DeleteConfigurationRecorder { account_id: String, name: String },
    /// Creates AWS Config's delivery channel to an S3 bucket; only where the region has none.
    #[serde(rename = "config:PutDeliveryChannel")]
    PutDeliveryChannel {
        account_id: String,
        name: String,
        s3_bucket_name: String,
    },
    /// Deletes a delivery channel (the inverse of creating it).
    #[serde(rename = "config:DeleteDeliveryChannel")]
    DeleteDeliveryChannel { account_id: String, name: String },
    /// Starts a configuration recorder.
    #[serde(rename = "config:StartConfigurationRecorder")]
    StartConfigurationRecorder { account_id: String, name: String },
    /// Stops a configuration recorder (the inverse of starting it).
    #[serde(rename = "config:StopConfigurationRecorder")]
    StopConfigurationRecorder { account_id: String, name: String },
    /// Creates a GuardDuty detector, enabled, in the job's region; AWS gives it its id, which
    /// the job records (see [`Created`]).
    #[serde(rename = "guardduty:CreateDetector")]
    CreateDetector { account_id: String },
    /// Sets whether a GuardDuty detector is enabled; nothing else of the detector is sent.
    #[serde(rename = "guardduty:UpdateDetector")]
    UpdateDetector {
        account_id: String,
        detector_id: String,
        enable: bool,
    },
    /// Deletes the GuardDuty detector a job created (the inverse of a create).
    #[serde(rename = "guardduty:DeleteDetector")]
    DeleteDetector {
        account_id: String,
        detector_id: String,
    },
    /// Creates a flow log of a VPC, delivered to a CloudWatch Logs group through a role; AWS
    /// gives it its id, which the job records (see [`Created`]).
    #[serde(rename = "ec2:CreateFlowLogs")]
    CreateFlowLogs {
        vpc_id: String,
        traffic_type: TrafficType,
        log_group: String,
        deliver_logs_role_arn: String,
    },
    /// Deletes the flow log a job created (the inverse of a create), by its id.
    #[serde(rename = "ec2:DeleteFlowLogs")]
    DeleteFlowLogs { vpc_id: String, flow_log_id: String },
}

/// The traffic a flow log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum TrafficType {
    All,
    Accept,
    Reject,
}

impl TrafficType {
    pub fn as_str(self) -> &'static str {
        match self {
            TrafficType::All => "ALL",
            TrafficType::Accept => "ACCEPT",
            TrafficType::Reject => "REJECT",
        }
    }
}

/// What an action of a job created, by the id AWS gave it: recorded on the job and in its audit
/// record, so that the inverse deletes exactly that and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    /// The action's position in the plan, from 0.
    pub action: usize,
    pub kind: String,
    /// The id AWS gave what it created (a detector id, a flow log id).
    pub id: String,
}

/// The idempotency token a creating call sends (`ClientToken`): derived from the job, the
/// action's position and the action itself, so every run of one job's action (a redelivery
/// after the worker was killed mid-call) gets the resource the first run created back, never a
/// second one. 32 hex digits: within every API's limit (64 characters).
pub fn client_token(job_id: &str, index: usize, action: &Action) -> String {
    let action = canonical_json(&serde_json::to_value(action).unwrap_or(Value::Null));
    sha256_hex(&format!("{job_id}\n{index}\n{action}"))[..32].to_string()
}

/// Whether an instance's metadata service requires session tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpTokens {
    /// IMDSv2 only.
    Required,
    /// IMDSv1 allowed.
    Optional,
}

impl HttpTokens {
    pub fn as_str(self) -> &'static str {
        match self {
            HttpTokens::Required => "required",
            HttpTokens::Optional => "optional",
        }
    }
}

/// The status of an IAM access key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
        }
    }
}

/// One action kind as `rectify catalog actions` lists it.
pub struct ActionKind {
    pub kind: &'static str,
    /// The IAM permission its call needs in the member account.
    pub permission: &'static str,
    /// Its fields, as a script writes them.
    pub fields: &'static str,
    pub description: &'static str,
    /// What undoes it.
    pub inverse: &'static str,
    /// Whether a plan may use it: kinds that only loosen are inverses, which only undo applies
    /// (with the operator's role, see `rectify catalog permissions --role operator`).
    pub in_plans: bool,
    /// Whether it is the inverse of some kind, so the operator's role needs its permission.
    pub is_inverse: bool,
}

/// Every action kind.
pub const ACTION_KINDS: &[ActionKind] = &[
    ActionKind {
        kind: "s3:PutPublicAccessBlock",
        permission: "s3:PutBucketPublicAccessBlock",
        fields: "bucket, block_public_acls, ignore_public_acls, block_public_policy, restrict_public_buckets",
        description: "set a bucket's Public Access Block flags (a plan sets all four true)",
        inverse: "the previous flags, or s3:DeletePublicAccessBlock when there was no block",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "s3:DeletePublicAccessBlock",
        permission: "s3:PutBucketPublicAccessBlock",
        fields: "bucket",
        description: "remove a bucket's Public Access Block",
        inverse: "the previous flags",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "ec2:RevokeSecurityGroupIngress",
        permission: "ec2:RevokeSecurityGroupIngress",
        fields: "group_id, rule_id",
        description: "revoke one ingress rule by its rule id",
        inverse: "ec2:AuthorizeSecurityGroupIngress of the same protocol, ports, CIDR and description",
        in_plans: true,
        is_inverse: false,
    },
    ActionKind {
        kind: "ec2:AuthorizeSecurityGroupIngress",
        permission: "ec2:AuthorizeSecurityGroupIngress",
        fields: "group_id, protocol, from_port, to_port, cidr_ipv4 | cidr_ipv6 | referenced_group_id | prefix_list_id, description?",
        description: "authorize one ingress rule (used by undo)",
        inverse: "none: AWS gives the new rule an id (a plan may not use it)",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "ec2:RevokeSecurityGroupEgress",
        permission: "ec2:RevokeSecurityGroupEgress",
        fields: "group_id, rule_id",
        description: "revoke one egress rule by its rule id",
        inverse: "ec2:AuthorizeSecurityGroupEgress of the same protocol, ports, destination and description",
        in_plans: true,
        is_inverse: false,
    },
    ActionKind {
        kind: "ec2:AuthorizeSecurityGroupEgress",
        permission: "ec2:AuthorizeSecurityGroupEgress",
        fields: "group_id, protocol, from_port, to_port, cidr_ipv4 | cidr_ipv6 | referenced_group_id | prefix_list_id, description?",
        description: "authorize one egress rule (used by undo)",
        inverse: "none: AWS gives the new rule an id (a plan may not use it)",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "ec2:DeleteNetworkAclEntry",
        permission: "ec2:DeleteNetworkAclEntry",
        fields: "network_acl_id, rule_number, egress",
        description: "delete one allow entry of a network ACL (never a deny entry, never the default rule 32767)",
        inverse: "ec2:CreateNetworkAclEntry of the same number, direction, protocol, ports, action and CIDR",
        in_plans: true,
        is_inverse: false,
    },
    ActionKind {
        kind: "ec2:CreateNetworkAclEntry",
        permission: "ec2:CreateNetworkAclEntry",
        fields: "network_acl_id, rule_number, egress, protocol, rule_action, cidr_block | ipv6_cidr_block, port_from?, port_to?, icmp_type?, icmp_code?",
        description: "create one entry of a network ACL (used by undo)",
        inverse: "ec2:DeleteNetworkAclEntry of the same number and direction (a plan may not use it)",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "iam:UpdateAccessKey",
        permission: "iam:UpdateAccessKey",
        fields: "user_name, access_key_id, status (Active | Inactive)",
        description: "set an access key Active or Inactive (a plan only Inactive; keys are never deleted)",
        inverse: "the previous status",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "ec2:ModifyVpcEndpoint",
        permission: "ec2:ModifyVpcEndpoint",
        fields: "vpc_endpoint_id, policy_document (JSON text)",
        description: "replace a VPC endpoint's policy document (a plan may only add conditions to Allow statements)",
        inverse: "the previous document, byte for byte",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "ec2:ModifyInstanceMetadataOptions",
        permission: "ec2:ModifyInstanceMetadataOptions",
        fields: "instance_id, http_tokens (required | optional)",
        description: "set whether an instance's metadata service requires session tokens (required: IMDSv2 only; a plan only required)",
        inverse: "the previous http_tokens",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "s3:PutBucketPolicy",
        permission: "s3:PutBucketPolicy",
        fields: "bucket, policy (JSON text)",
        description: "replace a bucket's policy (a plan may only add one statement denying requests without TLS, every existing statement kept byte for byte and in order)",
        inverse: "the previous policy, byte for byte, or s3:DeleteBucketPolicy when there was none",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "rds:ModifyDBInstance",
        permission: "rds:ModifyDBInstance",
        fields: "db_instance_identifier, publicly_accessible (a plan only false)",
        description: "set whether an RDS instance is publicly accessible, with ApplyImmediately; no other attribute is sent; only an `available` instance is modified",
        inverse: "the previous publicly_accessible",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "s3control:PutPublicAccessBlock",
        permission: "s3:PutAccountPublicAccessBlock",
        fields: "account_id, block_public_acls, ignore_public_acls, block_public_policy, restrict_public_buckets",
        description: "set an account's S3 Public Access Block flags, for every bucket of the account (a plan sets all four true)",
        inverse: "the previous flags, or s3control:DeletePublicAccessBlock when there was no block",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "s3:DeleteBucketPolicy",
        permission: "s3:DeleteBucketPolicy",
        fields: "bucket",
        description: "remove a bucket's policy (used by undo)",
        inverse: "the previous policy",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "s3control:DeletePublicAccessBlock",
        permission: "s3:PutAccountPublicAccessBlock",
        fields: "account_id",
        description: "remove an account's S3 Public Access Block",
        inverse: "the previous flags",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "ec2:EnableEbsEncryptionByDefault",
        permission: "ec2:EnableEbsEncryptionByDefault",
        fields: "account_id",
        description: "encrypt every new EBS volume of the account in the job's region by default",
        inverse: "ec2:DisableEbsEncryptionByDefault, or itself when it was on already",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "ec2:DisableEbsEncryptionByDefault",
        permission: "ec2:DisableEbsEncryptionByDefault",
        fields: "account_id",
        description: "stop encrypting new EBS volumes by default in the job's region (used by undo)",
        inverse: "ec2:EnableEbsEncryptionByDefault",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "rds:ModifyDBSnapshotAttribute",
        permission: "rds:ModifyDBSnapshotAttribute",
        fields: "db_snapshot_identifier, shared_with_all (a plan only false)",
        description: "remove `all` from an RDS snapshot's restore attribute (true adds it back); named account ids are never touched",
        inverse: "`all` added back when the snapshot was shared with all",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "ecr:PutImageScanningConfiguration",
        permission: "ecr:PutImageScanningConfiguration",
        fields: "repository_name, scan_on_push (a plan only true)",
        description: "set whether an ECR repository scans each image pushed to it; its policy and tag mutability are not sent",
        inverse: "the previous scan_on_push",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "kms:EnableKeyRotation",
        permission: "kms:EnableKeyRotation",
        fields: "key_id",
        description: "turn on automatic rotation of a KMS key's material (only an enabled, customer-managed, symmetric key whose material KMS generated)",
        inverse: "kms:DisableKeyRotation, or itself when rotation was on already",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "kms:DisableKeyRotation",
        permission: "kms:DisableKeyRotation",
        fields: "key_id",
        description: "turn off automatic rotation of a KMS key's material (used by undo)",
        inverse: "kms:EnableKeyRotation",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "cloudtrail:StartLogging",
        permission: "cloudtrail:StartLogging",
        fields: "account_id, name",
        description: "start logging on a trail homed in the job's region (a plan: a stopped trail the account has, or the one the plan creates); nothing else of the trail changes",
        inverse: "cloudtrail:StopLogging when the trail was not logging (or did not exist), else itself",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "cloudtrail:StopLogging",
        permission: "cloudtrail:StopLogging",
        fields: "account_id, name",
        description: "stop logging on a trail (used by undo)",
        inverse: "cloudtrail:StartLogging when the trail was logging",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "cloudtrail:CreateTrail",
        permission: "cloudtrail:CreateTrail",
        fields: "account_id, name, s3_bucket_name, is_multi_region_trail, enable_log_file_validation (a plan: both true, and only where the account has no trail)",
        description: "create a trail in the job's region delivering to an existing bucket whose policy already lets CloudTrail write (the bucket is never changed)",
        inverse: "cloudtrail:DeleteTrail of the trail created, by its name",
        in_plans: true,
        is_inverse: false,
    },
    ActionKind {
        kind: "cloudtrail:DeleteTrail",
        permission: "cloudtrail:DeleteTrail",
        fields: "account_id, name",
        description: "delete the trail a job created (used by undo)",
        inverse: "none: a deleted trail's history and settings cannot be put back (a plan may not use it)",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "cloudtrail:UpdateTrail",
        permission: "cloudtrail:UpdateTrail",
        fields: "name, enable_log_file_validation (a plan only true)",
        description: "set whether a trail validates its log files (digest files); no other attribute of the trail is sent",
        inverse: "the previous log_file_validation",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "iam:UpdateAccountPasswordPolicy",
        permission: "iam:UpdateAccountPasswordPolicy",
        fields: "account_id, minimum_password_length, require_symbols, require_numbers, require_uppercase_characters, require_lowercase_characters, allow_users_to_change_password, max_password_age (or null), password_reuse_prevention (or null), hard_expiry",
        description: "replace the account's IAM password policy, every field sent (a plan only makes each field at least as strict as observed)",
        inverse: "the previous policy, every field, or iam:DeleteAccountPasswordPolicy when there was none",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "iam:DeleteAccountPasswordPolicy",
        permission: "iam:DeleteAccountPasswordPolicy",
        fields: "account_id",
        description: "remove the account's IAM password policy (used by undo)",
        inverse: "the previous policy",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "config:PutConfigurationRecorder",
        permission: "config:PutConfigurationRecorder",
        fields: "account_id, name, role_arn, include_global_resource_types",
        description: "create AWS Config's configuration recorder in the job's region, recording every supported resource type (only where the region has none: an existing recorder is never changed)",
        inverse: "config:DeleteConfigurationRecorder of the recorder it created",
        in_plans: true,
        is_inverse: false,
    },
    ActionKind {
        kind: "config:DeleteConfigurationRecorder",
        permission: "config:DeleteConfigurationRecorder",
        fields: "account_id, name",
        description: "delete a configuration recorder rectify created (used by undo)",
        inverse: "none (a plan may not use it)",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "config:PutDeliveryChannel",
        permission: "config:PutDeliveryChannel",
        fields: "account_id, name, s3_bucket_name",
        description: "create AWS Config's delivery channel to an S3 bucket in the job's region (only where the region has none)",
        inverse: "config:DeleteDeliveryChannel of the channel it created",
        in_plans: true,
        is_inverse: false,
    },
    ActionKind {
        kind: "config:DeleteDeliveryChannel",
        permission: "config:DeleteDeliveryChannel",
        fields: "account_id, name",
        description: "delete a delivery channel rectify created (used by undo)",
        inverse: "none (a plan may not use it)",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "config:StartConfigurationRecorder",
        permission: "config:StartConfigurationRecorder",
        fields: "account_id, name",
        description: "start a configuration recorder of the job's region (it needs a delivery channel)",
        inverse: "config:StopConfigurationRecorder, or itself when it was recording already",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "config:StopConfigurationRecorder",
        permission: "config:StopConfigurationRecorder",
        fields: "account_id, name",
        description: "stop a configuration recorder (used by undo)",
        inverse: "config:StartConfigurationRecorder",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "guardduty:CreateDetector",
        permission: "guardduty:CreateDetector",
        fields: "account_id",
        description: "create a GuardDuty detector, enabled, in the job's region (only where there is none; creates: the job records the detector id)",
        inverse: "guardduty:DeleteDetector of the detector it created, by its recorded id",
        in_plans: true,
        is_inverse: false,
    },
    ActionKind {
        kind: "guardduty:UpdateDetector",
        permission: "guardduty:UpdateDetector",
        fields: "account_id, detector_id, enable (a plan only true)",
        description: "enable (or disable) a GuardDuty detector; only Enable is sent, its features and finding frequency are kept",
        inverse: "the previous enable",
        in_plans: true,
        is_inverse: true,
    },
    ActionKind {
        kind: "guardduty:DeleteDetector",
        permission: "guardduty:DeleteDetector",
        fields: "account_id, detector_id",
        description: "delete the GuardDuty detector a job created (used by undo)",
        inverse: "none (a plan may not use it)",
        in_plans: false,
        is_inverse: true,
    },
    ActionKind {
        kind: "ec2:CreateFlowLogs",
        permission: "ec2:CreateFlowLogs",
        fields: "vpc_id, traffic_type (ALL | ACCEPT | REJECT), log_group, deliver_logs_role_arn",
        description: "create a flow log of a VPC to a CloudWatch Logs group, delivered through a role (only where the VPC has no active flow log; creates: the job records the flow log id)",
        inverse: "ec2:DeleteFlowLogs of the flow log it created, by its recorded id",
        in_plans: true,
        is_inverse: false,
    },
    ActionKind {
        kind: "ec2:DeleteFlowLogs",
        permission: "ec2:DeleteFlowLogs",
        fields: "vpc_id, flow_log_id",
        description: "delete the flow log a job created (used by undo; other flow logs are never deleted)",
        inverse: "none (a plan may not use it)",
        in_plans: false,
        is_inverse: true,
    },
];

/// IAM permissions a kind's call needs besides its own, each with the kind: creating a flow
/// log passes the delivery role to VPC Flow Logs; the first GuardDuty detector of an account
/// creates GuardDuty's service-linked role.
pub const FURTHER_PERMISSIONS: &[(&str, &str)] = &[
    ("ec2:CreateFlowLogs", "iam:PassRole"),
    ("guardduty:CreateDetector", "iam:CreateServiceLinkedRole"),
];

/// Why an inverse could not be computed.
#[derive(Debug, thiserror::Error)]
#[error("cannot compute the inverse of {kind}: {reason}")]
pub struct InverseError {
    kind: &'static str,
    reason: String,
}

impl InverseError {
    /// The kind of the action whose inverse could not be computed.
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

impl Action {
    /// The action's kind as scripts and manifests name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::PutPublicAccessBlock { .. } => "s3:PutPublicAccessBlock",
            Action::DeletePublicAccessBlock { .. } => "s3:DeletePublicAccessBlock",
            Action::RevokeSecurityGroupIngress { .. } => "ec2:RevokeSecurityGroupIngress",
            Action::AuthorizeSecurityGroupIngress { .. } => "ec2:AuthorizeSecurityGroupIngress",
            Action::RevokeSecurityGroupEgress { .. } => "ec2:RevokeSecurityGroupEgress",
            Action::AuthorizeSecurityGroupEgress { .. } => "ec2:AuthorizeSecurityGroupEgress",
            Action::DeleteNetworkAclEntry { .. } => "ec2:DeleteNetworkAclEntry",
            Action::CreateNetworkAclEntry { .. } => "ec2:CreateNetworkAclEntry",
            Action::UpdateAccessKey { .. } => "iam:UpdateAccessKey",
            Action::ModifyVpcEndpointPolicy { .. } => "ec2:ModifyVpcEndpoint",
            Action::ModifyInstanceMetadataOptions { .. } => "ec2:ModifyInstanceMetadataOptions",
            Action::PutBucketPolicy { .. } => "s3:PutBucketPolicy",
            Action::DeleteBucketPolicy { .. } => "s3:DeleteBucketPolicy",
            Action::PutAccountPublicAccessBlock { .. } => "s3control:PutPublicAccessBlock",
            Action::DeleteAccountPublicAccessBlock { .. } => "s3control:DeletePublicAccessBlock",
            Action::EnableEbsEncryptionByDefault { .. } => "ec2:EnableEbsEncryptionByDefault",
            Action::DisableEbsEncryptionByDefault { .. } => "ec2:DisableEbsEncryptionByDefault",
            Action::ModifyDbInstancePublicAccess { .. } => "rds:ModifyDBInstance",
            Action::ModifyDbSnapshotRestoreAll { .. } => "rds:ModifyDBSnapshotAttribute",
            Action::PutImageScanningConfiguration { .. } => "ecr:PutImageScanningConfiguration",
            Action::EnableKeyRotation { .. } => "kms:EnableKeyRotation",
            Action::DisableKeyRotation { .. } => "kms:DisableKeyRotation",
            Action::StartTrailLogging { .. } => "cloudtrail:StartLogging",
            Action::StopTrailLogging { .. } => "cloudtrail:StopLogging",
            Action::CreateTrail { .. } => "cloudtrail:CreateTrail",
            Action::DeleteTrail { .. } => "cloudtrail:DeleteTrail",
            Action::UpdateTrailLogFileValidation { .. } => "cloudtrail:UpdateTrail",
            Action::UpdateAccountPasswordPolicy { .. } => "iam:UpdateAccountPasswordPolicy",
            Action::DeleteAccountPasswordPolicy { .. } => "iam:DeleteAccountPasswordPolicy",
            Action::PutConfigurationRecorder { .. } => "config:PutConfigurationRecorder",
            Action::DeleteConfigurationRecorder { .. } => "config:DeleteConfigurationRecorder",
            Action::PutDeliveryChannel { .. } => "config:PutDeliveryChannel",
            Action::DeleteDeliveryChannel { .. } => "config:DeleteDeliveryChannel",
            Action::StartConfigurationRecorder { .. } => "config:StartConfigurationRecorder",
            Action::StopConfigurationRecorder { .. } => "config:StopConfigurationRecorder",
            Action::CreateDetector { .. } => "guardduty:CreateDetector",
            Action::UpdateDetector { .. } => "guardduty:UpdateDetector",
            Action::DeleteDetector { .. } => "guardduty:DeleteDetector",
            Action::CreateFlowLogs { .. } => "ec2:CreateFlowLogs",
            Action::DeleteFlowLogs { .. } => "ec2:DeleteFlowLogs",
        }
    }

    /// Whether the action creates something AWS names (a detector, a flow log): its inverse
    /// deletes that, by the id applying it returned (see [`Created`]).
    pub fn creates(&self) -> bool {
        matches!(
            self,
            Action::CreateDetector { .. } | Action::CreateFlowLogs { .. }
        )
    }

    /// The inverse of a creating action: the delete of what it created, `id`, which must not be
    /// anything the resource had before (so no existing detector or flow log is ever named).
    pub fn inverse_of_created(&self, before: &Value, id: &str) -> Result<Action, InverseError> {
        let fail = |reason: String| InverseError {
            kind: self.kind(),
            reason,
        };
        let existed = |list: Option<&Value>, key: &str| {
            list.and_then(Value::as_array).is_some_and(|items| {
                items
                    .iter()
                    .any(|x| x.get(key).and_then(Value::as_str) == Some(id))
            })
        };
        if id.is_empty() {
            return Err(fail("the recorded id is empty".into()));
        }
        match self {
            Action::CreateDetector { account_id } => {
                if existed(
                    before.get("guardduty").and_then(|g| g.get("detectors")),
                    "id",
                ) {
                    return Err(fail(format!(
                        "detector {id} existed before the job: it is not the one it created"
                    )));
                }
                Ok(Action::DeleteDetector {
                    account_id: account_id.clone(),
                    detector_id: id.to_string(),
                })
            }
            Action::CreateFlowLogs { vpc_id, .. } => {
                if existed(before.get("flow_logs"), "flow_log_id") {
                    return Err(fail(format!(
                        "flow log {id} existed before the job: it is not the one it created"
                    )));
                }
                Ok(Action::DeleteFlowLogs {
                    vpc_id: vpc_id.clone(),
                    flow_log_id: id.to_string(),
                })
            }
            _ => Err(fail("it creates nothing".into())),
        }
    }

    /// One line a person reads, as a plan prints it.
    pub fn summary(&self) -> String {
        match self {
            Action::PutPublicAccessBlock {
                bucket,
                block_public_acls,
                ignore_public_acls,
                block_public_policy,
                restrict_public_buckets,
            } => format!(
                "s3 bucket {bucket}: public access block = BlockPublicAcls:{block_public_acls} IgnorePublicAcls:{ignore_public_acls} BlockPublicPolicy:{block_public_policy} RestrictPublicBuckets:{restrict_public_buckets}"
            ),
            Action::DeletePublicAccessBlock { bucket } => {
                format!("s3 bucket {bucket}: delete public access block")
            }
            Action::RevokeSecurityGroupIngress { group_id, rule_id } => {
                format!("security group {group_id}: revoke ingress rule {rule_id}")
            }
            Action::AuthorizeSecurityGroupIngress {
                group_id,
                protocol,
                from_port,
                to_port,
                cidr_ipv4,
                cidr_ipv6,
                referenced_group_id,
                prefix_list_id,
                ..
            } => format!(
                "security group {group_id}: authorize ingress {protocol} {from_port}-{to_port} from {}",
                rule_peer(cidr_ipv4, cidr_ipv6, referenced_group_id, prefix_list_id)
            ),
            Action::RevokeSecurityGroupEgress { group_id, rule_id } => {
                format!("security group {group_id}: revoke egress rule {rule_id}")
            }
            Action::AuthorizeSecurityGroupEgress {
                group_id,
                protocol,
                from_port,
                to_port,
                cidr_ipv4,
                cidr_ipv6,
                referenced_group_id,
                prefix_list_id,
                ..
            } => format!(
                "security group {group_id}: authorize egress {protocol} {from_port}-{to_port} to {}",
                rule_peer(cidr_ipv4, cidr_ipv6, referenced_group_id, prefix_list_id)
            ),
            Action::DeleteNetworkAclEntry {
                network_acl_id,
                rule_number,
                egress,
            } => format!(
                "network acl {network_acl_id}: delete {} entry {rule_number}",
                direction(*egress)
            ),
            Action::CreateNetworkAclEntry {
                network_acl_id,
                rule_number,
                egress,
                protocol,
                rule_action,
                cidr_block,
                ipv6_cidr_block,
                port_from,
                port_to,
                ..
            } => format!(
                "network acl {network_acl_id}: create {} entry {rule_number} {rule_action} protocol {protocol} ports {}-{} {}",
                direction(*egress),
                port_from.map_or("*".to_string(), |p| p.to_string()),
                port_to.map_or("*".to_string(), |p| p.to_string()),
                cidr_block
                    .as_deref()
                    .or(ipv6_cidr_block.as_deref())
                    .unwrap_or("?")
            ),
            Action::UpdateAccessKey {
                user_name,
                access_key_id,
                status,
            } => format!(
                "iam user {user_name}: set access key {access_key_id} {}",
                status.as_str()
            ),
            Action::ModifyVpcEndpointPolicy {
                vpc_endpoint_id, ..
            } => format!("vpc endpoint {vpc_endpoint_id}: replace policy document"),
            Action::ModifyInstanceMetadataOptions {
                instance_id,
                http_tokens,
            } => format!(
                "ec2 instance {instance_id}: metadata HttpTokens = {}",
                http_tokens.as_str()
            ),
            Action::PutBucketPolicy { bucket, .. } => {
                format!("s3 bucket {bucket}: replace bucket policy")
            }
            Action::DeleteBucketPolicy { bucket } => {
                format!("s3 bucket {bucket}: delete bucket policy")
            }
            Action::PutAccountPublicAccessBlock {
                account_id,
                block_public_acls,
                ignore_public_acls,
                block_public_policy,
                restrict_public_buckets,
            } => format!(
                "account {account_id}: s3 public access block = BlockPublicAcls:{block_public_acls} IgnorePublicAcls:{ignore_public_acls} BlockPublicPolicy:{block_public_policy} RestrictPublicBuckets:{restrict_public_buckets}"
            ),
            Action::DeleteAccountPublicAccessBlock { account_id } => {
                format!("account {account_id}: delete s3 public access block")
            }
            Action::EnableEbsEncryptionByDefault { account_id } => {
                format!("account {account_id}: EBS encryption by default = on")
            }
            Action::DisableEbsEncryptionByDefault { account_id } => {
                format!("account {account_id}: EBS encryption by default = off")
            }
            Action::ModifyDbInstancePublicAccess {
                db_instance_identifier,
                publicly_accessible,
            } => format!(
                "rds instance {db_instance_identifier}: PubliclyAccessible = {publicly_accessible} (applied immediately)"
            ),
            Action::ModifyDbSnapshotRestoreAll {
                db_snapshot_identifier,
                shared_with_all,
            } => format!(
                "rds snapshot {db_snapshot_identifier}: {} `all` {} the restore attribute",
                if *shared_with_all { "add" } else { "remove" },
                if *shared_with_all { "to" } else { "from" },
            ),
            Action::PutImageScanningConfiguration {
                repository_name,
                scan_on_push,
            } => format!("ecr repository {repository_name}: ScanOnPush = {scan_on_push}"),
            Action::EnableKeyRotation { key_id } => {
                format!("kms key {key_id}: automatic key rotation = on")
            }
            Action::DisableKeyRotation { key_id } => {
                format!("kms key {key_id}: automatic key rotation = off")
            }
            Action::StartTrailLogging { account_id, name } => {
                format!("account {account_id}: trail {name}: start logging")
            }
            Action::StopTrailLogging { account_id, name } => {
                format!("account {account_id}: trail {name}: stop logging")
            }
            Action::CreateTrail {
                account_id,
                name,
                s3_bucket_name,
                is_multi_region_trail,
                enable_log_file_validation,
            } => format!(
                "account {account_id}: create trail {name} to bucket {s3_bucket_name} (IsMultiRegionTrail:{is_multi_region_trail} LogFileValidation:{enable_log_file_validation})"
            ),
            Action::DeleteTrail { account_id, name } => {
                format!("account {account_id}: delete trail {name}")
            }
            Action::UpdateTrailLogFileValidation {
                name,
                enable_log_file_validation,
            } => format!("trail {name}: LogFileValidationEnabled = {enable_log_file_validation}"),
            Action::UpdateAccountPasswordPolicy {
                account_id,
                minimum_password_length,
                max_password_age,
                password_reuse_prevention,
                ..
            } => format!(
                "account {account_id}: IAM password policy = MinimumPasswordLength:{minimum_password_length} PasswordReusePrevention:{} MaxPasswordAge:{} (every field sent)",
                password_reuse_prevention.map_or("none".to_string(), |n| n.to_string()),
                max_password_age.map_or("none".to_string(), |n| n.to_string()),
            ),
            Action::DeleteAccountPasswordPolicy { account_id } => {
                format!("account {account_id}: delete the IAM password policy")
            }
            Action::PutConfigurationRecorder {
                account_id,
                name,
                role_arn,
                include_global_resource_types,
            } => format!(
                "account {account_id}: create configuration recorder {name} (all supported resource types, global types {include_global_resource_types}, role {role_arn})"
            ),
            Action::DeleteConfigurationRecorder { account_id, name } => {
                format!("account {account_id}: delete configuration recorder {name}")
            }
            Action::PutDeliveryChannel {
                account_id,
                name,
                s3_bucket_name,
            } => format!(
                "account {account_id}: create delivery channel {name} to s3 bucket {s3_bucket_name}"
            ),
            Action::DeleteDeliveryChannel { account_id, name } => {
                format!("account {account_id}: delete delivery channel {name}")
            }
            Action::StartConfigurationRecorder { account_id, name } => {
                format!("account {account_id}: start configuration recorder {name}")
            }
            Action::StopConfigurationRecorder { account_id, name } => {
                format!("account {account_id}: stop configuration recorder {name}")
            }
            Action::CreateDetector { account_id } => {
                format!("account {account_id}: create a GuardDuty detector, enabled")
            }
            Action::UpdateDetector {
                account_id,
                detector_id,
                enable,
            } => {
                format!("account {account_id}: GuardDuty detector {detector_id} Enable = {enable}")
            }
            Action::DeleteDetector {
                account_id,
                detector_id,
            } => format!("account {account_id}: delete GuardDuty detector {detector_id}"),
            Action::CreateFlowLogs {
                vpc_id,
                traffic_type,
                log_group,
                deliver_logs_role_arn,
            } => format!(
                "vpc {vpc_id}: create a flow log of {} traffic to log group {log_group} through role {deliver_logs_role_arn}",
                traffic_type.as_str()
            ),
            Action::DeleteFlowLogs {
                vpc_id,
                flow_log_id,
            } => format!("vpc {vpc_id}: delete flow log {flow_log_id}"),
        }
    }

    /// The action that puts back what this one changes, computed from the resource as it was
    /// observed before (the observer's JSON shape, see `cloud`).
    pub fn inverse(&self, before: &Value) -> Result<Action, InverseError> {
        let fail = |reason: &str| InverseError {
            kind: self.kind(),
            reason: reason.to_string(),
        };
        match self {
            Action::PutPublicAccessBlock { bucket, .. }
            | Action::DeletePublicAccessBlock { bucket } => {
                match before.get("public_access_block") {
                    Some(Value::Object(pab)) => {
                        let flag = |k: &str| pab.get(k).and_then(Value::as_bool).unwrap_or(false);
                        Ok(Action::PutPublicAccessBlock {
                            bucket: bucket.clone(),
                            block_public_acls: flag("block_public_acls"),
                            ignore_public_acls: flag("ignore_public_acls"),
                            block_public_policy: flag("block_public_policy"),
                            restrict_public_buckets: flag("restrict_public_buckets"),
                        })
                    }
                    _ => Ok(Action::DeletePublicAccessBlock {
                        bucket: bucket.clone(),
                    }),
                }
            }
            Action::RevokeSecurityGroupIngress { group_id, rule_id } => {
                let r = SgRule::from_before(before, "ingress_rules", rule_id).map_err(&fail)?;
                Ok(Action::AuthorizeSecurityGroupIngress {
                    group_id: group_id.clone(),
                    protocol: r.protocol,
                    from_port: r.from_port,
                    to_port: r.to_port,
                    cidr_ipv4: r.cidr_ipv4,
                    cidr_ipv6: r.cidr_ipv6,
                    description: r.description,
                    referenced_group_id: r.referenced_group_id,
                    prefix_list_id: r.prefix_list_id,
                })
            }
            Action::RevokeSecurityGroupEgress { group_id, rule_id } => {
                let r = SgRule::from_before(before, "egress_rules", rule_id).map_err(&fail)?;
                Ok(Action::AuthorizeSecurityGroupEgress {
                    group_id: group_id.clone(),
                    protocol: r.protocol,
                    from_port: r.from_port,
                    to_port: r.to_port,
                    cidr_ipv4: r.cidr_ipv4,
                    cidr_ipv6: r.cidr_ipv6,
                    description: r.description,
                    referenced_group_id: r.referenced_group_id,
                    prefix_list_id: r.prefix_list_id,
                })
            }
            Action::DeleteNetworkAclEntry {
                network_acl_id,
                rule_number,
                egress,
            } => {
                let entry = before
                    .get("entries")
                    .and_then(Value::as_array)
                    .and_then(|entries| {
                        entries.iter().find(|e| {
                            e.get("rule_number").and_then(Value::as_i64)
                                == Some(i64::from(*rule_number))
                                && e.get("egress").and_then(Value::as_bool) == Some(*egress)
                        })
                    })
                    .ok_or_else(|| fail("the entry is not in the before-state"))?;
                let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_string);
                let number = |v: Option<&Value>| {
                    v.and_then(Value::as_i64)
                        .and_then(|n| i32::try_from(n).ok())
                };
                let range = entry.get("port_range");
                let icmp = entry.get("icmp_type_code");
                Ok(Action::CreateNetworkAclEntry {
                    network_acl_id: network_acl_id.clone(),
                    rule_number: *rule_number,
                    egress: *egress,
                    protocol: text("protocol").ok_or_else(|| fail("the entry has no protocol"))?,
                    rule_action: text("rule_action")
                        .ok_or_else(|| fail("the entry has no rule action"))?,
                    cidr_block: text("cidr_block"),
                    ipv6_cidr_block: text("ipv6_cidr_block"),
                    port_from: number(range.and_then(|r| r.get("from"))),
                    port_to: number(range.and_then(|r| r.get("to"))),
                    icmp_type: number(icmp.and_then(|r| r.get("type"))),
                    icmp_code: number(icmp.and_then(|r| r.get("code"))),
                })
            }
            Action::CreateNetworkAclEntry {
                network_acl_id,
                rule_number,
                egress,
                ..
            } => Ok(Action::DeleteNetworkAclEntry {
                network_acl_id: network_acl_id.clone(),
                rule_number: *rule_number,
                egress: *egress,
            }),
            Action::AuthorizeSecurityGroupIngress { .. }
            | Action::AuthorizeSecurityGroupEgress { .. } => Err(fail(
                "an authorized rule gets its id from AWS; revoke it by that id",
            )),
            Action::UpdateAccessKey {
                user_name,
                access_key_id,
                ..
            } => {
                let status = before
                    .get("access_keys")
                    .and_then(Value::as_array)
                    .and_then(|keys| {
                        keys.iter().find(|k| {
                            k.get("access_key_id").and_then(Value::as_str) == Some(access_key_id)
                        })
                    })
                    .and_then(|k| k.get("status").and_then(Value::as_str))
                    .ok_or_else(|| fail("the key is not in the before-state"))?;
                Ok(Action::UpdateAccessKey {
                    user_name: user_name.clone(),
                    access_key_id: access_key_id.clone(),
                    status: if status == "Active" {
                        KeyStatus::Active
                    } else {
                        KeyStatus::Inactive
                    },
                })
            }
            Action::ModifyVpcEndpointPolicy {
                vpc_endpoint_id, ..
            } => {
                let doc = before
                    .get("policy_document")
                    .and_then(Value::as_str)
                    .ok_or_else(|| fail("the endpoint had no policy document"))?;
                Ok(Action::ModifyVpcEndpointPolicy {
                    vpc_endpoint_id: vpc_endpoint_id.clone(),
                    policy_document: doc.to_string(),
                })
            }
            Action::ModifyInstanceMetadataOptions { instance_id, .. } => {
                let tokens = before
                    .get("metadata_options")
                    .and_then(|m| m.get("http_tokens"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        fail("the instance's metadata options are not in the before-state")
                    })?;
                Ok(Action::ModifyInstanceMetadataOptions {
                    instance_id: instance_id.clone(),
                    http_tokens: if tokens == "required" {
                        HttpTokens::Required
                    } else {
                        HttpTokens::Optional
                    },
                })
            }
            Action::PutBucketPolicy { bucket, .. } | Action::DeleteBucketPolicy { bucket } => {
                match before.get("policy") {
                    Some(Value::String(text)) => Ok(Action::PutBucketPolicy {
                        bucket: bucket.clone(),
                        policy: text.clone(),
                    }),
                    Some(Value::Null) => Ok(Action::DeleteBucketPolicy {
                        bucket: bucket.clone(),
                    }),
                    _ => Err(fail("the bucket's policy is not in the before-state")),
                }
            }
            Action::PutAccountPublicAccessBlock { account_id, .. }
            | Action::DeleteAccountPublicAccessBlock { account_id } => {
                match before.get("public_access_block") {
                    Some(Value::Object(pab)) => {
                        let flag = |k: &str| pab.get(k).and_then(Value::as_bool).unwrap_or(false);
                        Ok(Action::PutAccountPublicAccessBlock {
                            account_id: account_id.clone(),
                            block_public_acls: flag("block_public_acls"),
                            ignore_public_acls: flag("ignore_public_acls"),
                            block_public_policy: flag("block_public_policy"),
                            restrict_public_buckets: flag("restrict_public_buckets"),
                        })
                    }
                    Some(Value::Null) => Ok(Action::DeleteAccountPublicAccessBlock {
                        account_id: account_id.clone(),
                    }),
                    _ => Err(fail(
                        "the account's Public Access Block is not in the before-state",
                    )),
                }
            }
            Action::EnableEbsEncryptionByDefault { account_id }
            | Action::DisableEbsEncryptionByDefault { account_id } => {
                let on = before
                    .get("ebs_encryption_by_default")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| fail("EBS encryption by default is not in the before-state"))?;
                let account_id = account_id.clone();
                Ok(if on {
                    Action::EnableEbsEncryptionByDefault { account_id }
                } else {
                    Action::DisableEbsEncryptionByDefault { account_id }
                })
            }
            Action::ModifyDbInstancePublicAccess {
                db_instance_identifier,
                ..
            } => {
                let public = before
                    .get("publicly_accessible")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| {
                        fail("the instance's publicly_accessible is not in the before-state")
                    })?;
                Ok(Action::ModifyDbInstancePublicAccess {
                    db_instance_identifier: db_instance_identifier.clone(),
                    publicly_accessible: public,
                })
            }
            Action::ModifyDbSnapshotRestoreAll {
                db_snapshot_identifier,
                ..
            } => {
                let restore = before
                    .get("restore")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        fail("the snapshot's restore attribute is not in the before-state")
                    })?;
                Ok(Action::ModifyDbSnapshotRestoreAll {
                    db_snapshot_identifier: db_snapshot_identifier.clone(),
                    shared_with_all: restore.iter().any(|v| v.as_str() == Some("all")),
                })
            }
            Action::PutImageScanningConfiguration {
                repository_name, ..
            } => {
                let on = before
                    .get("scan_on_push")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| {
                        fail("the repository's scan_on_push is not in the before-state")
                    })?;
                Ok(Action::PutImageScanningConfiguration {
                    repository_name: repository_name.clone(),
                    scan_on_push: on,
                })
            }
            Action::EnableKeyRotation { key_id } | Action::DisableKeyRotation { key_id } => {
                // `null` (rotation is not a setting of the key) is no before-state to restore.
                let on = before
                    .get("rotation_enabled")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| fail("the key's rotation_enabled is not in the before-state"))?;
                let key_id = key_id.clone();
                Ok(if on {
                    Action::EnableKeyRotation { key_id }
                } else {
                    Action::DisableKeyRotation { key_id }
                })
            }
            Action::StartTrailLogging { account_id, name }
            | Action::StopTrailLogging { account_id, name } => {
                let trails = before
                    .get("trails")
                    .and_then(Value::as_array)
                    .ok_or_else(|| fail("the account's trails are not in the before-state"))?;
                // A trail absent before was created by the same plan: it was not logging.
                let was_logging = home_trail(before, trails, name)
                    .and_then(|t| t.get("is_logging"))
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let (account_id, name) = (account_id.clone(), name.clone());
                Ok(if was_logging {
                    Action::StartTrailLogging { account_id, name }
                } else {
                    Action::StopTrailLogging { account_id, name }
                })
            }
            Action::CreateTrail {
                account_id, name, ..
            } => {
                let trails = before
                    .get("trails")
                    .and_then(Value::as_array)
                    .ok_or_else(|| fail("the account's trails are not in the before-state"))?;
                // Deleting a trail the job did not create would remove someone's trail.
                if trails
                    .iter()
                    .any(|t| t.get("name").and_then(Value::as_str) == Some(name))
                {
                    return Err(fail(&format!(
                        "a trail named {name} existed before: it was not created by this plan"
                    )));
                }
                Ok(Action::DeleteTrail {
                    account_id: account_id.clone(),
                    name: name.clone(),
                })
            }
            Action::DeleteTrail { .. } => Err(fail(
                "a deleted trail's history and settings cannot be put back",
            )),
            Action::UpdateTrailLogFileValidation { name, .. } => {
                let on = before
                    .get("log_file_validation")
                    .and_then(Value::as_bool)
                    .ok_or_else(|| {
                        fail("the trail's log_file_validation is not in the before-state")
                    })?;
                Ok(Action::UpdateTrailLogFileValidation {
                    name: name.clone(),
                    enable_log_file_validation: on,
                })
            }
            Action::UpdateAccountPasswordPolicy { account_id, .. }
            | Action::DeleteAccountPasswordPolicy { account_id } => {
                match before.get("password_policy") {
                    Some(Value::Null) => Ok(Action::DeleteAccountPasswordPolicy {
                        account_id: account_id.clone(),
                    }),
                    Some(policy @ Value::Object(_)) => {
                        password_policy_action(account_id, policy).map_err(|why| fail(&why))
                    }
                    _ => Err(fail(
                        "the account's password policy is not in the before-state",
                    )),
                }
            }
            Action::PutConfigurationRecorder {
                account_id, name, ..
            } => {
                let recorders = config_recorder_list(before, "recorders").map_err(&fail)?;
                if recorders.iter().any(is_own_recorder) {
                    return Err(fail(
                        "the region had a configuration recorder, which a plan never replaces",
                    ));
                }
                Ok(Action::DeleteConfigurationRecorder {
                    account_id: account_id.clone(),
                    name: name.clone(),
                })
            }
            Action::PutDeliveryChannel {
                account_id, name, ..
            } => {
                if !config_recorder_list(before, "delivery_channels")
                    .map_err(&fail)?
                    .is_empty()
                {
                    return Err(fail(
                        "the region had a delivery channel, which a plan never replaces",
                    ));
                }
                Ok(Action::DeleteDeliveryChannel {
                    account_id: account_id.clone(),
                    name: name.clone(),
                })
            }
            Action::StartConfigurationRecorder { account_id, name }
            | Action::StopConfigurationRecorder { account_id, name } => {
                let recorders = config_recorder_list(before, "recorders").map_err(&fail)?;
                // A recorder that was not there (the plan created it) was not recording.
                let recording = recorders.iter().any(|r| {
                    r.get("name").and_then(Value::as_str) == Some(name)
                        && r.get("recording").and_then(Value::as_bool) == Some(true)
                });
                let (account_id, name) = (account_id.clone(), name.clone());
                Ok(if recording {
                    Action::StartConfigurationRecorder { account_id, name }
                } else {
                    Action::StopConfigurationRecorder { account_id, name }
                })
            }
            Action::DeleteConfigurationRecorder { .. } | Action::DeleteDeliveryChannel { .. } => {
                Err(fail(
                    "only undo deletes what rectify created; nothing puts it back",
                ))
            }
            Action::CreateDetector { .. } | Action::CreateFlowLogs { .. } => Err(fail(
                "it deletes what it creates, by the id AWS gives it when it runs",
            )),
            Action::UpdateDetector {
                account_id,
                detector_id,
                ..
            } => {
                let status = before
                    .get("guardduty")
                    .and_then(|g| g.get("detectors"))
                    .and_then(Value::as_array)
                    .and_then(|ds| {
                        ds.iter()
                            .find(|d| d.get("id").and_then(Value::as_str) == Some(detector_id))
                    })
                    .and_then(|d| d.get("status").and_then(Value::as_str))
                    .ok_or_else(|| fail("the detector is not in the before-state"))?;
                Ok(Action::UpdateDetector {
                    account_id: account_id.clone(),
                    detector_id: detector_id.clone(),
                    enable: status == "ENABLED",
                })
            }
            Action::DeleteDetector { .. } | Action::DeleteFlowLogs { .. } => {
                Err(fail("what it deletes cannot be put back as it was"))
            }
        }
    }
}

/// The entry of the account's observed `trails` named `name` and homed in the observed region
/// (a shadow of another region's trail may share its name), if there is one.
pub(crate) fn home_trail<'a>(before: &Value, trails: &'a [Value], name: &str) -> Option<&'a Value> {
    let region = before.get("region").and_then(Value::as_str);
    trails.iter().find(|t| {
        t.get("name").and_then(Value::as_str) == Some(name)
            && t.get("home_region").and_then(Value::as_str) == region
    })
}

/// An `iam:UpdateAccountPasswordPolicy` that sets the whole policy `policy` (the observed
/// shape's `password_policy`).
pub(crate) fn password_policy_action(account_id: &str, policy: &Value) -> Result<Action, String> {
    let flag = |k: &str| {
        policy
            .get(k)
            .and_then(Value::as_bool)
            .ok_or_else(|| format!("the password policy has no `{k}`"))
    };
    let number = |k: &str| match policy.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .and_then(|n| i32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("the password policy's `{k}` is not a whole number")),
    };
    Ok(Action::UpdateAccountPasswordPolicy {
        account_id: account_id.to_string(),
        minimum_password_length: number("minimum_password_length")?
            .ok_or("the password policy has no `minimum_password_length`")?,
        require_symbols: flag("require_symbols")?,
        require_numbers: flag("require_numbers")?,
        require_uppercase_characters: flag("require_uppercase_characters")?,
        require_lowercase_characters: flag("require_lowercase_characters")?,
        allow_users_to_change_password: flag("allow_users_to_change_password")?,
        max_password_age: number("max_password_age")?,
        password_reuse_prevention: number("password_reuse_prevention")?,
        hard_expiry: flag("hard_expiry")?,
    })
}

/// The before-state's `config_recorder.<list>` (`recorders` or `delivery_channels`).
pub(crate) fn config_recorder_list<'a>(
    before: &'a Value,
    list: &str,
) -> Result<&'a Vec<Value>, &'static str> {
    before
        .get("config_recorder")
        .and_then(|c| c.get(list))
        .and_then(Value::as_array)
        .ok_or("the region's AWS Config recorder is not in the before-state")
}

/// Whether an observed recorder is the region's own (customer managed) recorder, not one a
/// service links to itself (those name their `service_principal`).
pub(crate) fn is_own_recorder(recorder: &Value) -> bool {
    recorder.get("service_principal").is_none_or(Value::is_null)
}

/// What a rule admits (or reaches), as a person reads it.
fn rule_peer<'a>(
    cidr_ipv4: &'a Option<String>,
    cidr_ipv6: &'a Option<String>,
    referenced_group_id: &'a Option<String>,
    prefix_list_id: &'a Option<String>,
) -> &'a str {
    cidr_ipv4
        .as_deref()
        .or(cidr_ipv6.as_deref())
        .or(referenced_group_id.as_deref())
        .or(prefix_list_id.as_deref())
        .unwrap_or("?")
}

/// `ingress` or `egress`.
fn direction(egress: bool) -> &'static str {
    if egress { "egress" } else { "ingress" }
}

/// A security group rule as the before-state records it, for re-authorising it.
struct SgRule {
    protocol: String,
    from_port: i32,
    to_port: i32,
    cidr_ipv4: Option<String>,
    cidr_ipv6: Option<String>,
    description: Option<String>,
    referenced_group_id: Option<String>,
    prefix_list_id: Option<String>,
}

impl SgRule {
    /// The rule `rule_id` of the before-state's `list` (`ingress_rules` or `egress_rules`).
    fn from_before(before: &Value, list: &str, rule_id: &str) -> Result<SgRule, &'static str> {
        let rule = before
            .get(list)
            .and_then(Value::as_array)
            .and_then(|rules| {
                rules
                    .iter()
                    .find(|r| r.get("rule_id").and_then(Value::as_str) == Some(rule_id))
            })
            .ok_or("the rule is not in the before-state")?;
        let text = |k: &str| rule.get(k).and_then(Value::as_str).map(str::to_string);
        let port = |k: &str| {
            rule.get(k)
                .and_then(Value::as_i64)
                .and_then(|p| i32::try_from(p).ok())
                .unwrap_or(-1)
        };
        Ok(SgRule {
            protocol: text("protocol").ok_or("the rule has no protocol")?,
            from_port: port("from_port"),
            to_port: port("to_port"),
            cidr_ipv4: text("cidr_ipv4"),
            cidr_ipv6: text("cidr_ipv6"),
            description: text("description"),
            referenced_group_id: text("referenced_group_id"),
            prefix_list_id: text("prefix_list_id"),
        })
    }
}

/// The inverse of each action of `plan` that creates nothing, in the order that undoes it (last
/// action first), computed from the resource as observed before the plan ran: what is checked
/// before anything is applied. A creating action's inverse is always a delete by the id AWS
/// returns, so it is added once applied (see [`inverses_applied`]).
pub fn inverses(plan: &Plan, before: &Value) -> Result<Vec<Action>, InverseError> {
    plan.actions
        .iter()
        .rev()
        .filter(|a| !a.creates())
        .map(|a| a.inverse(before))
        .collect()
}

/// The inverse of every action of an applied `plan`, in the order that undoes it: each creating
/// action's is the delete of what it created, by the id in `created`; a creating action
/// without one has no inverse (an error). Undo recomputes it from the stored plan,
/// before-state and created ids; it is never taken from a plan.
pub fn inverses_applied(
    plan: &Plan,
    before: &Value,
    created: &[Created],
) -> Result<Vec<Action>, InverseError> {
    plan.actions
        .iter()
        .enumerate()
        .rev()
        .map(|(i, a)| {
            if !a.creates() {
                return a.inverse(before);
            }
            match created.iter().find(|c| c.action == i && c.kind == a.kind()) {
                Some(c) => a.inverse_of_created(before, &c.id),
                None => Err(InverseError {
                    kind: a.kind(),
                    reason: format!(
                        "no id of what action {} created is recorded, so what to delete cannot be named",
                        i + 1
                    ),
                }),
            }
        })
        .collect()
}

/// What a script decided: the actions to take (none when compliant) and, when it chose not to
/// act on a non-compliant resource, why; or, when the fix this resource needs takes a parameter
/// that has no value (a trail to create needs a bucket), which parameters it needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Parameters the fix needs and lacks; a plan that names any holds no action.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs_parameters: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    /// The sha256 of the plan's canonical JSON; an approval names the hash it approves.
    pub fn hash(&self) -> String {
        let canonical = canonical_json(&serde_json::to_value(&self.actions).unwrap_or(Value::Null));
        hex(&Sha256::digest(canonical.as_bytes()))
    }
}

/// JSON with object keys sorted and no insignificant white space, so equal values hash equally.
pub fn canonical_json(value: &Value) -> String {
    serde_json::to_string(&canonical_value(value)).unwrap_or_default()
}

/// The value with object keys sorted at every depth.
pub fn canonical_value(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), canonical_value(&map[k]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical_value).collect()),
        other => other.clone(),
    }
}

/// Lower-case hex of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// sha256 of text, as lower-case hex.
pub fn sha256_hex(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn actions_round_trip_through_json_with_their_kind() {
        let a: Action = serde_json::from_value(json!({
            "kind": "ec2:RevokeSecurityGroupIngress", "group_id": "sg-1", "rule_id": "sgr-1"
        }))
        .unwrap();
        assert_eq!(a.kind(), "ec2:RevokeSecurityGroupIngress");
        assert_eq!(
            serde_json::to_value(&a).unwrap()["kind"],
            "ec2:RevokeSecurityGroupIngress"
        );
        let unknown =
            serde_json::from_value::<Action>(json!({"kind": "iam:DeleteUser", "user_name": "x"}));
        assert!(unknown.is_err());
        let extra = serde_json::from_value::<Action>(json!({
            "kind": "ec2:RevokeSecurityGroupIngress", "group_id": "sg-1", "rule_id": "sgr-1", "cidr": "x"
        }));
        assert!(extra.is_err(), "unknown fields are refused");
    }

    #[test]
    fn every_action_is_listed_once_under_the_name_it_serialises_to() {
        let s = String::new;
        let every = [
            Action::PutPublicAccessBlock {
                bucket: s(),
                block_public_acls: true,
                ignore_public_acls: true,
                block_public_policy: true,
                restrict_public_buckets: true,
            },
            Action::DeletePublicAccessBlock { bucket: s() },
            Action::RevokeSecurityGroupIngress {
                group_id: s(),
                rule_id: s(),
            },
            Action::AuthorizeSecurityGroupIngress {
                group_id: s(),
                protocol: s(),
                from_port: 22,
                to_port: 22,
                cidr_ipv4: None,
                cidr_ipv6: None,
                description: None,
                referenced_group_id: None,
                prefix_list_id: None,
            },
            Action::RevokeSecurityGroupEgress {
                group_id: s(),
                rule_id: s(),
            },
            Action::AuthorizeSecurityGroupEgress {
                group_id: s(),
                protocol: s(),
                from_port: -1,
                to_port: -1,
                cidr_ipv4: None,
                cidr_ipv6: None,
                description: None,
                referenced_group_id: None,
                prefix_list_id: None,
            },
            Action::DeleteNetworkAclEntry {
                network_acl_id: s(),
                rule_number: 100,
                egress: false,
            },
            Action::CreateNetworkAclEntry {
                network_acl_id: s(),
                rule_number: 100,
                egress: false,
                protocol: s(),
                rule_action: s(),
                cidr_block: None,
                ipv6_cidr_block: None,
                port_from: None,
                port_to: None,
                icmp_type: None,
                icmp_code: None,
            },
            Action::UpdateAccessKey {
                user_name: s(),
                access_key_id: s(),
                status: KeyStatus::Inactive,
            },
            Action::ModifyVpcEndpointPolicy {
                vpc_endpoint_id: s(),
                policy_document: s(),
            },
            Action::ModifyInstanceMetadataOptions {
                instance_id: s(),
                http_tokens: HttpTokens::Required,
            },
            Action::PutBucketPolicy {
                bucket: s(),
                policy: s(),
            },
            Action::DeleteBucketPolicy { bucket: s() },
            Action::PutAccountPublicAccessBlock {
                account_id: s(),
                block_public_acls: true,
                ignore_public_acls: true,
                block_public_policy: true,
                restrict_public_buckets: true,
            },
            Action::DeleteAccountPublicAccessBlock { account_id: s() },
            Action::EnableEbsEncryptionByDefault { account_id: s() },
            Action::DisableEbsEncryptionByDefault { account_id: s() },
            Action::ModifyDbInstancePublicAccess {
                db_instance_identifier: s(),
                publicly_accessible: false,
            },
            Action::ModifyDbSnapshotRestoreAll {
                db_snapshot_identifier: s(),
                shared_with_all: false,
            },
            Action::PutImageScanningConfiguration {
                repository_name: s(),
                scan_on_push: true,
            },
            Action::EnableKeyRotation { key_id: s() },
            Action::DisableKeyRotation { key_id: s() },
            Action::StartTrailLogging {
                account_id: s(),
                name: s(),
            },
            Action::StopTrailLogging {
                account_id: s(),
                name: s(),
            },
            Action::CreateTrail {
                account_id: s(),
                name: s(),
                s3_bucket_name: s(),
                is_multi_region_trail: true,
                enable_log_file_validation: true,
            },
            Action::DeleteTrail {
                account_id: s(),
                name: s(),
            },
            Action::UpdateTrailLogFileValidation {
                name: s(),
                enable_log_file_validation: true,
            },
            Action::UpdateAccountPasswordPolicy {
                account_id: s(),
                minimum_password_length: 14,
                require_symbols: true,
                require_numbers: true,
                require_uppercase_characters: true,
                require_lowercase_characters: true,
                allow_users_to_change_password: true,
                max_password_age: Some(90),
                password_reuse_prevention: Some(24),
                hard_expiry: false,
            },
            Action::DeleteAccountPasswordPolicy { account_id: s() },
            Action::PutConfigurationRecorder {
                account_id: s(),
                name: s(),
                role_arn: s(),
                include_global_resource_types: false,
            },
            Action::DeleteConfigurationRecorder {
                account_id: s(),
                name: s(),
            },
            Action::PutDeliveryChannel {
                account_id: s(),
                name: s(),
                s3_bucket_name: s(),
            },
            Action::DeleteDeliveryChannel {
                account_id: s(),
                name: s(),
            },
            Action::StartConfigurationRecorder {
                account_id: s(),
                name: s(),
            },
            Action::StopConfigurationRecorder {
                account_id: s(),
                name: s(),
            },
            Action::CreateDetector { account_id: s() },
            Action::UpdateDetector {
                account_id: s(),
                detector_id: s(),
                enable: true,
            },
            Action::DeleteDetector {
                account_id: s(),
                detector_id: s(),
            },
            Action::CreateFlowLogs {
                vpc_id: s(),
                traffic_type: TrafficType::Reject,
                log_group: s(),
                deliver_logs_role_arn: s(),
            },
            Action::DeleteFlowLogs {
                vpc_id: s(),
                flow_log_id: s(),
            },
        ];
        assert_eq!(every.len(), ACTION_KINDS.len());
        for a in &every {
            assert_eq!(serde_json::to_value(a).unwrap()["kind"], a.kind());
            assert_eq!(
                ACTION_KINDS.iter().filter(|k| k.kind == a.kind()).count(),
                1,
                "{}",
                a.kind()
            );
        }
    }

    #[test]
    fn inverse_of_public_access_block() {
        let put = Action::PutPublicAccessBlock {
            bucket: "b".into(),
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        };
        assert_eq!(
            put.inverse(&json!({"public_access_block": null})).unwrap(),
            Action::DeletePublicAccessBlock { bucket: "b".into() }
        );
        let back = put
            .inverse(&json!({"public_access_block": {"block_public_acls": true, "ignore_public_acls": false,
                "block_public_policy": false, "restrict_public_buckets": true}}))
            .unwrap();
        assert_eq!(
            back,
            Action::PutPublicAccessBlock {
                bucket: "b".into(),
                block_public_acls: true,
                ignore_public_acls: false,
                block_public_policy: false,
                restrict_public_buckets: true,
            }
        );
    }

    #[test]
    fn inverses_of_account_settings_restore_the_before_state() {
        let a = || "111122223333".to_string();
        let put = Action::PutAccountPublicAccessBlock {
            account_id: a(),
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        };
        assert_eq!(
            put.inverse(&json!({"public_access_block": null})).unwrap(),
            Action::DeleteAccountPublicAccessBlock { account_id: a() }
        );
        assert_eq!(
            put.inverse(&json!({"public_access_block": {"block_public_acls": true,
                "ignore_public_acls": false, "block_public_policy": true,
                "restrict_public_buckets": false}}))
                .unwrap(),
            Action::PutAccountPublicAccessBlock {
                account_id: a(),
                block_public_acls: true,
                ignore_public_acls: false,
                block_public_policy: true,
                restrict_public_buckets: false,
            }
        );
        // A before-state that does not say is no reason to delete a block.
        assert!(put.inverse(&json!({})).is_err());

        let enable = Action::EnableEbsEncryptionByDefault { account_id: a() };
        assert_eq!(
            enable
                .inverse(&json!({"ebs_encryption_by_default": false}))
                .unwrap(),
            Action::DisableEbsEncryptionByDefault { account_id: a() }
        );
        assert_eq!(
            enable
                .inverse(&json!({"ebs_encryption_by_default": true}))
                .unwrap(),
            Action::EnableEbsEncryptionByDefault { account_id: a() }
        );
        assert!(enable.inverse(&json!({})).is_err());
    }

    #[test]
    fn inverse_of_revoke_reauthorizes_the_same_rule() {
        let before = json!({"ingress_rules": [
            {"rule_id": "sgr-1", "protocol": "tcp", "from_port": 22, "to_port": 22,
             "cidr_ipv4": "0.0.0.0/0", "cidr_ipv6": null, "description": "ops"}
        ]});
        let revoke = Action::RevokeSecurityGroupIngress {
            group_id: "sg-1".into(),
            rule_id: "sgr-1".into(),
        };
        assert_eq!(
            revoke.inverse(&before).unwrap(),
            Action::AuthorizeSecurityGroupIngress {
                group_id: "sg-1".into(),
                protocol: "tcp".into(),
                from_port: 22,
                to_port: 22,
                cidr_ipv4: Some("0.0.0.0/0".into()),
                cidr_ipv6: None,
                description: Some("ops".into()),
                referenced_group_id: None,
                prefix_list_id: None,
            }
        );
        let missing = Action::RevokeSecurityGroupIngress {
            group_id: "sg-1".into(),
            rule_id: "sgr-9".into(),
        };
        assert!(missing.inverse(&before).is_err());
    }

    #[test]
    fn inverse_of_an_egress_revoke_reauthorizes_the_rule_and_of_a_self_reference_names_the_group() {
        let before = json!({
            "ingress_rules": [{"rule_id": "sgr-1", "protocol": "-1", "from_port": -1, "to_port": -1,
                "cidr_ipv4": null, "cidr_ipv6": null, "referenced_group_id": "sg-1",
                "prefix_list_id": null, "description": null}],
            "egress_rules": [{"rule_id": "sgr-2", "protocol": "-1", "from_port": -1, "to_port": -1,
                "cidr_ipv4": "0.0.0.0/0", "cidr_ipv6": null, "referenced_group_id": null,
                "prefix_list_id": null, "description": "out"}]
        });
        let ingress = Action::RevokeSecurityGroupIngress {
            group_id: "sg-1".into(),
            rule_id: "sgr-1".into(),
        };
        assert!(matches!(
            ingress.inverse(&before).unwrap(),
            Action::AuthorizeSecurityGroupIngress { referenced_group_id: Some(g), cidr_ipv4: None, .. } if g == "sg-1"
        ));
        let egress = Action::RevokeSecurityGroupEgress {
            group_id: "sg-1".into(),
            rule_id: "sgr-2".into(),
        };
        assert_eq!(
            egress.inverse(&before).unwrap(),
            Action::AuthorizeSecurityGroupEgress {
                group_id: "sg-1".into(),
                protocol: "-1".into(),
                from_port: -1,
                to_port: -1,
                cidr_ipv4: Some("0.0.0.0/0".into()),
                cidr_ipv6: None,
                description: Some("out".into()),
                referenced_group_id: None,
                prefix_list_id: None,
            }
        );
        // An ingress rule id is not an egress rule.
        let crossed = Action::RevokeSecurityGroupEgress {
            group_id: "sg-1".into(),
            rule_id: "sgr-1".into(),
        };
        assert!(crossed.inverse(&before).is_err());
    }

    #[test]
    fn inverse_of_a_nacl_entry_delete_recreates_it_exactly() {
        let before = json!({"entries": [
            {"rule_number": 100, "egress": false, "protocol": "6", "rule_action": "allow",
             "cidr_block": "0.0.0.0/0", "ipv6_cidr_block": null,
             "port_range": {"from": 20, "to": 25}, "icmp_type_code": null},
            {"rule_number": 100, "egress": true, "protocol": "-1", "rule_action": "allow",
             "cidr_block": "0.0.0.0/0", "ipv6_cidr_block": null, "port_range": null,
             "icmp_type_code": null}
        ]});
        let delete = Action::DeleteNetworkAclEntry {
            network_acl_id: "acl-1".into(),
            rule_number: 100,
            egress: false,
        };
        assert_eq!(
            delete.inverse(&before).unwrap(),
            Action::CreateNetworkAclEntry {
                network_acl_id: "acl-1".into(),
                rule_number: 100,
                egress: false,
                protocol: "6".into(),
                rule_action: "allow".into(),
                cidr_block: Some("0.0.0.0/0".into()),
                ipv6_cidr_block: None,
                port_from: Some(20),
                port_to: Some(25),
                icmp_type: None,
                icmp_code: None,
            }
        );
        let missing = Action::DeleteNetworkAclEntry {
            network_acl_id: "acl-1".into(),
            rule_number: 200,
            egress: false,
        };
        assert!(missing.inverse(&before).is_err());
    }

    #[test]
    fn inverse_of_key_and_policy() {
        let before = json!({"access_keys": [{"access_key_id": "AKIA1", "status": "Active"}],
                            "policy_document": "{\"Statement\": []}"});
        let deactivate = Action::UpdateAccessKey {
            user_name: "u".into(),
            access_key_id: "AKIA1".into(),
            status: KeyStatus::Inactive,
        };
        assert!(matches!(
            deactivate.inverse(&before).unwrap(),
            Action::UpdateAccessKey {
                status: KeyStatus::Active,
                ..
            }
        ));
        let policy = Action::ModifyVpcEndpointPolicy {
            vpc_endpoint_id: "vpce-1".into(),
            policy_document: "{}".into(),
        };
        match policy.inverse(&before).unwrap() {
            Action::ModifyVpcEndpointPolicy {
                policy_document, ..
            } => {
                assert_eq!(policy_document, "{\"Statement\": []}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn inverse_of_a_bucket_policy_is_the_old_text_or_a_delete() {
        let put = Action::PutBucketPolicy {
            bucket: "b".into(),
            policy: "{}".into(),
        };
        let old = "{ \"Version\": \"2012-10-17\",\n\"Statement\": [] }";
        assert_eq!(
            put.inverse(&json!({"policy": old})).unwrap(),
            Action::PutBucketPolicy {
                bucket: "b".into(),
                policy: old.into()
            }
        );
        assert_eq!(
            put.inverse(&json!({"policy": null})).unwrap(),
            Action::DeleteBucketPolicy { bucket: "b".into() }
        );
        // A bucket observed without reading its policy has no inverse to offer.
        assert!(put.inverse(&json!({"bucket": "b"})).is_err());
    }

    #[test]
    fn inverses_of_rds_actions_restore_the_before_state() {
        let private = Action::ModifyDbInstancePublicAccess {
            db_instance_identifier: "db1".into(),
            publicly_accessible: false,
        };
        assert_eq!(
            private
                .inverse(&json!({"publicly_accessible": true}))
                .unwrap(),
            Action::ModifyDbInstancePublicAccess {
                db_instance_identifier: "db1".into(),
                publicly_accessible: true,
            }
        );
        assert!(private.inverse(&json!({})).is_err());
        let unshare = Action::ModifyDbSnapshotRestoreAll {
            db_snapshot_identifier: "s1".into(),
            shared_with_all: false,
        };
        let back = |restore: Value| match unshare.inverse(&json!({ "restore": restore })) {
            Ok(Action::ModifyDbSnapshotRestoreAll {
                shared_with_all, ..
            }) => shared_with_all,
            other => panic!("{other:?}"),
        };
        assert!(back(json!(["111122223333", "all"])));
        assert!(!back(json!(["111122223333"])));
        assert!(unshare.inverse(&json!({})).is_err());
    }

    #[test]
    fn inverses_of_scan_on_push_and_key_rotation_restore_the_before_state() {
        let scan = Action::PutImageScanningConfiguration {
            repository_name: "team/app".into(),
            scan_on_push: true,
        };
        assert_eq!(
            scan.inverse(&json!({"scan_on_push": false})).unwrap(),
            Action::PutImageScanningConfiguration {
                repository_name: "team/app".into(),
                scan_on_push: false,
            }
        );
        assert_eq!(scan.inverse(&json!({"scan_on_push": true})).unwrap(), scan);
        assert!(scan.inverse(&json!({})).is_err());

        let k = || "1234abcd-12ab-34cd-56ef-1234567890ab".to_string();
        let enable = Action::EnableKeyRotation { key_id: k() };
        assert_eq!(
            enable.inverse(&json!({"rotation_enabled": false})).unwrap(),
            Action::DisableKeyRotation { key_id: k() }
        );
        assert_eq!(
            enable.inverse(&json!({"rotation_enabled": true})).unwrap(),
            enable
        );
        assert_eq!(
            Action::DisableKeyRotation { key_id: k() }
                .inverse(&json!({"rotation_enabled": true}))
                .unwrap(),
            enable
        );
        // A key whose rotation was not read has no state to go back to.
        assert!(enable.inverse(&json!({"rotation_enabled": null})).is_err());
        assert!(enable.inverse(&json!({})).is_err());
    }

    #[test]
    fn inverses_of_trail_actions_restore_the_before_state() {
        let a = || "111122223333".to_string();
        let trail = |name: &str, home: &str, logging: bool| json!({"name": name, "home_region": home, "is_logging": logging});
        let before = json!({"region": "us-east-1", "trails": [
            trail("main", "eu-west-1", true),
            trail("main", "us-east-1", false),
            trail("audit", "us-east-1", true),
        ]});
        let start = |name: &str| Action::StartTrailLogging {
            account_id: a(),
            name: name.into(),
        };
        // The trail homed here counts, not another region's trail of the same name.
        assert_eq!(
            start("main").inverse(&before).unwrap(),
            Action::StopTrailLogging {
                account_id: a(),
                name: "main".into()
            }
        );
        assert_eq!(start("audit").inverse(&before).unwrap(), start("audit"));
        // A trail the plan created was not logging before.
        assert_eq!(
            start("rectify-trail").inverse(&before).unwrap(),
            Action::StopTrailLogging {
                account_id: a(),
                name: "rectify-trail".into()
            }
        );
        assert!(start("main").inverse(&json!({})).is_err());

        let create = |name: &str| Action::CreateTrail {
            account_id: a(),
            name: name.into(),
            s3_bucket_name: "logs".into(),
            is_multi_region_trail: true,
            enable_log_file_validation: true,
        };
        assert_eq!(
            create("rectify-trail")
                .inverse(&json!({"region": "us-east-1", "trails": []}))
                .unwrap(),
            Action::DeleteTrail {
                account_id: a(),
                name: "rectify-trail".into()
            }
        );
        // Never the delete of a trail that was there before the plan.
        assert!(create("audit").inverse(&before).is_err());
        assert!(create("x").inverse(&json!({})).is_err());
        assert!(
            Action::DeleteTrail {
                account_id: a(),
                name: "x".into()
            }
            .inverse(&before)
            .is_err()
        );

        let validate = Action::UpdateTrailLogFileValidation {
            name: "main".into(),
            enable_log_file_validation: true,
        };
        assert_eq!(
            validate
                .inverse(&json!({"log_file_validation": false}))
                .unwrap(),
            Action::UpdateTrailLogFileValidation {
                name: "main".into(),
                enable_log_file_validation: false,
            }
        );
        assert!(validate.inverse(&json!({})).is_err());
    }

    #[test]
    fn the_inverse_of_a_password_policy_is_the_whole_previous_policy_or_a_delete() {
        let a = || "111122223333".to_string();
        let update = Action::UpdateAccountPasswordPolicy {
            account_id: a(),
            minimum_password_length: 14,
            require_symbols: true,
            require_numbers: true,
            require_uppercase_characters: true,
            require_lowercase_characters: true,
            allow_users_to_change_password: true,
            max_password_age: Some(90),
            password_reuse_prevention: Some(24),
            hard_expiry: false,
        };
        assert_eq!(
            update.inverse(&json!({"password_policy": null})).unwrap(),
            Action::DeleteAccountPasswordPolicy { account_id: a() }
        );
        let before = json!({"password_policy": {
            "minimum_password_length": 10, "require_symbols": false, "require_numbers": true,
            "require_uppercase_characters": false, "require_lowercase_characters": true,
            "allow_users_to_change_password": false, "expire_passwords": false,
            "max_password_age": null, "password_reuse_prevention": 5, "hard_expiry": true}});
        assert_eq!(
            update.inverse(&before).unwrap(),
            Action::UpdateAccountPasswordPolicy {
                account_id: a(),
                minimum_password_length: 10,
                require_symbols: false,
                require_numbers: true,
                require_uppercase_characters: false,
                require_lowercase_characters: true,
                allow_users_to_change_password: false,
                max_password_age: None,
                password_reuse_prevention: Some(5),
                hard_expiry: true,
            }
        );
        // A before-state that does not say is no reason to delete a policy.
        assert!(update.inverse(&json!({})).is_err());
        let mut partial = before.clone();
        partial["password_policy"]
            .as_object_mut()
            .unwrap()
            .remove("hard_expiry");
        let e = update.inverse(&partial).unwrap_err();
        assert!(e.to_string().contains("hard_expiry"), "{e}");
    }

    #[test]
    fn inverses_of_the_config_recorder_delete_what_was_created_and_stop_what_was_started() {
        let a = || "111122223333".to_string();
        let n = || "default".to_string();
        let none = json!({"config_recorder": {"recorders": [], "delivery_channels": []}});
        let put = Action::PutConfigurationRecorder {
            account_id: a(),
            name: n(),
            role_arn: "arn:aws:iam::111122223333:role/config".into(),
            include_global_resource_types: false,
        };
        let channel = Action::PutDeliveryChannel {
            account_id: a(),
            name: n(),
            s3_bucket_name: "logs".into(),
        };
        let start = Action::StartConfigurationRecorder {
            account_id: a(),
            name: n(),
        };
        let plan = Plan {
            actions: vec![put.clone(), channel.clone(), start.clone()],
            ..Default::default()
        };
        // Undone last first: stopped, then the channel and the recorder deleted.
        assert_eq!(
            inverses(&plan, &none).unwrap(),
            vec![
                Action::StopConfigurationRecorder {
                    account_id: a(),
                    name: n()
                },
                Action::DeleteDeliveryChannel {
                    account_id: a(),
                    name: n()
                },
                Action::DeleteConfigurationRecorder {
                    account_id: a(),
                    name: n()
                },
            ]
        );
        let recorder = |recording: bool| {
            json!({"config_recorder": {"recorders": [{"name": "default", "recording": recording,
                "service_principal": null}], "delivery_channels": [{"name": "default"}]}})
        };
        assert!(put.inverse(&recorder(false)).is_err());
        assert!(channel.inverse(&recorder(false)).is_err());
        assert_eq!(
            start.inverse(&recorder(false)).unwrap(),
            Action::StopConfigurationRecorder {
                account_id: a(),
                name: n()
            }
        );
        assert_eq!(start.inverse(&recorder(true)).unwrap(), start);
        assert!(start.inverse(&json!({})).is_err());
        // A service-linked recorder is not the region's own: creating one beside it is undone.
        let linked = json!({"config_recorder": {"recorders": [{"name": "AWSConfigurationRecorderForSecurityHub",
            "recording": true, "service_principal": "securityhub.amazonaws.com"}], "delivery_channels": []}});
        assert!(matches!(
            put.inverse(&linked).unwrap(),
            Action::DeleteConfigurationRecorder { .. }
        ));
    }

    #[test]
    fn what_an_action_created_is_undone_by_deleting_exactly_its_recorded_id() {
        let acct = || "111122223333".to_string();
        let flow = Action::CreateFlowLogs {
            vpc_id: "vpc-1".into(),
            traffic_type: TrafficType::Reject,
            log_group: "g".into(),
            deliver_logs_role_arn: "arn:aws:iam::111122223333:role/r".into(),
        };
        let vpc_before = json!({"vpc_id": "vpc-1", "flow_logs": [{"flow_log_id": "fl-old", "status": "ACTIVE"}]});
        let plan = Plan {
            actions: vec![flow.clone()],
            ..Default::default()
        };
        // Before applying, a creating action's inverse cannot be named yet, and is left out.
        assert!(flow.creates());
        assert!(flow.inverse(&vpc_before).is_err());
        assert_eq!(inverses(&plan, &vpc_before).unwrap(), vec![]);
        let made = |id: &str| Created {
            action: 0,
            kind: "ec2:CreateFlowLogs".into(),
            id: id.into(),
        };
        assert_eq!(
            inverses_applied(&plan, &vpc_before, &[made("fl-new")]).unwrap(),
            vec![Action::DeleteFlowLogs {
                vpc_id: "vpc-1".into(),
                flow_log_id: "fl-new".into()
            }]
        );
        // No recorded id, an id of another action, or a flow log that was there before: no inverse.
        assert!(inverses_applied(&plan, &vpc_before, &[]).is_err());
        let elsewhere = Created {
            action: 1,
            ..made("fl-new")
        };
        assert!(inverses_applied(&plan, &vpc_before, &[elsewhere]).is_err());
        let e = inverses_applied(&plan, &vpc_before, &[made("fl-old")]).unwrap_err();
        assert!(e.to_string().contains("existed before"), "{e}");

        let create = Action::CreateDetector { account_id: acct() };
        let none = json!({"account_id": acct(), "guardduty": {"detectors": []}});
        assert_eq!(
            create.inverse_of_created(&none, "d9").unwrap(),
            Action::DeleteDetector {
                account_id: acct(),
                detector_id: "d9".into()
            }
        );
        assert!(create.inverse_of_created(&none, "").is_err());
        let enable = Action::UpdateDetector {
            account_id: acct(),
            detector_id: "d1".into(),
            enable: true,
        };
        assert!(!enable.creates());
        let off = json!({"account_id": acct(), "guardduty": {"detectors": [{"id": "d1", "status": "DISABLED"}]}});
        assert_eq!(
            enable.inverse(&off).unwrap(),
            Action::UpdateDetector {
                account_id: acct(),
                detector_id: "d1".into(),
                enable: false
            }
        );
        assert!(enable.inverse(&none).is_err());
    }

    #[test]
    fn a_client_token_is_the_same_for_every_run_of_one_jobs_action_only() {
        let create = Action::CreateDetector {
            account_id: "111122223333".into(),
        };
        let token = client_token("job1", 0, &create);
        assert_eq!(token, client_token("job1", 0, &create));
        assert_eq!(token.len(), 32);
        assert_ne!(token, client_token("job2", 0, &create));
        assert_ne!(token, client_token("job1", 1, &create));
        let other = Action::CreateDetector {
            account_id: "444455556666".into(),
        };
        assert_ne!(token, client_token("job1", 0, &other));
    }

    #[test]
    fn plan_hash_is_stable_and_order_sensitive() {
        let a = Action::DeletePublicAccessBlock { bucket: "a".into() };
        let b = Action::DeletePublicAccessBlock { bucket: "b".into() };
        let p1 = Plan {
            actions: vec![a.clone(), b.clone()],
            reason: None,
            ..Default::default()
        };
        let p2 = Plan {
            actions: vec![a.clone(), b.clone()],
            reason: Some("x".into()),
            ..Default::default()
        };
        let p3 = Plan {
            actions: vec![b, a],
            reason: None,
            ..Default::default()
        };
        assert_eq!(p1.hash(), p2.hash());
        assert_ne!(p1.hash(), p3.hash());
        assert_eq!(p1.hash().len(), 64);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = json!({"b": 1, "a": {"d": [ {"z": 1, "y": 2} ], "c": null}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}"#
        );
    }
}
