//! Binding a plan to its finding: every action must act on the resource that was observed (or a
//! sub-resource of it: a rule of that group, a key of that user) and may only tighten it.
//!
//! A script is trusted to decide, not to aim: whatever it returns, this check runs in Rust on
//! every plan before any gate sees it, in the worker, the sweep and `rectify plan` alike. A
//! plan that breaks a rule is refused whole, naming the action and the rule, and nothing of it
//! is applied. The kinds that loosen (a Public Access Block removed, an ingress rule authorised,
//! a key made `Active`, IMDSv1 allowed, a policy document replaced by another, a bucket policy deleted
//! or put back without its TLS deny) are inverses:
//! only undo applies them, computed from the stored before-state, never taken from a plan.

use serde_json::Value;

use super::{Action, HttpTokens, KeyStatus, Plan, canonical_value};

/// An action of a plan that is not bound to its finding or does not tighten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("action {index} ({kind}) breaks the rule \"{rule}\": {detail}")]
pub struct Unbound {
    /// The action's position in the plan, from 1.
    pub index: usize,
    pub kind: &'static str,
    /// The rule it breaks, as a person reads it.
    pub rule: &'static str,
    /// What in the action breaks it.
    pub detail: String,
}

/// Rules a plan's actions must keep.
pub const SAME_RESOURCE: &str = "an action targets only the observed resource";
pub const SUB_RESOURCE: &str = "an action targets only a sub-resource of the observed resource";
pub const BLOCK_ONLY_TRUE: &str = "a Public Access Block is only ever set to true";
pub const REVOKE_ONLY: &str = "security group rules are only revoked, never authorised";
pub const KEYS_ONLY_INACTIVE: &str = "access keys are only set Inactive";
pub const TOKENS_ONLY_REQUIRED: &str = "HttpTokens is only set to required";
pub const POLICY_ONLY_CONDITIONS: &str = "an endpoint policy may only gain conditions";
pub const POLICY_ONLY_ADDS_TLS_DENY: &str = "a bucket policy may only gain one statement denying requests without TLS, every existing statement kept byte for byte and in order";
pub const NACL_ONLY_ALLOW: &str =
    "only allow entries of a network ACL are deleted, never a deny entry or the default rule";
pub const PUBLIC_ACCESS_ONLY_OFF: &str =
    "an RDS instance's PubliclyAccessible is only set to false";
pub const SNAPSHOT_ONLY_UNSHARED: &str =
    "an RDS snapshot is only unshared from `all`, never shared";
pub const SCAN_ONLY_ON: &str = "an ECR repository's ScanOnPush is only set to true";
pub const ROTATION_ONLY_ELIGIBLE_KEY: &str = "key rotation is only turned on for an enabled, customer-managed, symmetric key whose material KMS generated";
pub const TRAIL_STARTED_ONLY_HOME: &str = "logging is started only on a trail the observed account has in the finding's region (its home region), or on the trail the plan creates";
pub const TRAIL_CREATED_ONLY_WHERE_NONE: &str =
    "a trail is created only where the observed account has no trail at all";
pub const TRAIL_CREATED_MULTI_REGION_VALIDATED: &str =
    "a created trail is multi-region with log file validation on";
pub const TRAIL_CHANGED_ONLY_HOME: &str =
    "a trail is changed only in its home region (the finding's region)";
pub const VALIDATION_ONLY_ON: &str = "a trail's log file validation is only turned on";
pub const PASSWORD_POLICY_ONLY_STRICTER: &str =
    "a password policy is only made at least as strict as the observed one, in every field";
pub const CONFIG_ONLY_WHERE_NONE: &str = "a configuration recorder or delivery channel is created only where the region has none; an existing one is never changed";
pub const DETECTOR_ONLY_WHERE_NONE: &str =
    "a GuardDuty detector is only created in a region of the account that has none";
pub const DETECTOR_ONLY_ENABLED: &str = "a GuardDuty detector is only ever enabled";
pub const FLOW_LOG_ONLY_WHERE_NONE: &str = "a flow log is only created for a VPC that has no active flow log, to a named log group through a named role";
pub const NO_INVERSE_IN_PLAN: &str = "a plan never loosens: inverses run only through undo";

/// Checks every action of `plan` against the resource of type `resource_type` as observed
/// (`before`, in the observer's JSON shape). The first action that breaks a rule is the error.
pub fn check(resource_type: &str, before: &Value, plan: &Plan) -> Result<(), Unbound> {
    // Trails created by earlier actions of the plan, which a later action may start.
    let mut created: Vec<&str> = Vec::new();
    for (i, action) in plan.actions.iter().enumerate() {
        let bound = match action {
            Action::StartTrailLogging { account_id, name } if created.contains(&name.as_str()) => {
                same_resource(resource_type, ACCOUNT, before, "account_id", account_id)
            }
            _ => check_action(resource_type, before, action),
        };
        bound.map_err(|(rule, detail)| Unbound {
            index: i + 1,
            kind: action.kind(),
            rule,
            detail,
        })?;
        if let Action::CreateTrail { name, .. } = action {
            created.push(name);
        }
    }
    Ok(())
}

type Broken = (&'static str, String);

/// The observed resource's id in `field`, which must equal `target`, for a resource of
/// `wanted` type.
fn same_resource(
    resource_type: &str,
    wanted: &str,
    before: &Value,
    field: &str,
    target: &str,
) -> Result<(), Broken> {
    if resource_type != wanted {
        return Err((
            SAME_RESOURCE,
            format!("it acts on a {wanted}, but the finding's resource is a {resource_type}"),
        ));
    }
    match before.get(field).and_then(Value::as_str) {
        Some(observed) if observed == target => Ok(()),
        Some(observed) => Err((
            SAME_RESOURCE,
            format!("it targets {target:?}, but the observed resource is {observed:?}"),
        )),
        None => Err((
            SAME_RESOURCE,
            format!("it targets {target:?}, but the observed resource has no `{field}`"),
        )),
    }
}

/// The entry of the observed array `list` whose `key` is `id`.
fn sub_resource<'a>(
    before: &'a Value,
    list: &str,
    key: &str,
    id: &str,
    noun: &str,
) -> Result<&'a Value, Broken> {
    before
        .get(list)
        .and_then(Value::as_array)
        .and_then(|items| {
            items
                .iter()
                .find(|x| x.get(key).and_then(Value::as_str) == Some(id))
        })
        .ok_or_else(|| {
            (
                SUB_RESOURCE,
                format!("{noun} {id:?} is not one of the observed resource's"),
            )
        })
}

fn check_action(resource_type: &str, before: &Value, action: &Action) -> Result<(), Broken> {
    match action {
        Action::PutPublicAccessBlock {
            bucket,
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
        } => {
            same_resource(resource_type, "AWS::S3::Bucket", before, "bucket", bucket)?;
            all_flags_true([
                block_public_acls,
                ignore_public_acls,
                block_public_policy,
                restrict_public_buckets,
            ])
        }
        Action::PutAccountPublicAccessBlock {
            account_id,
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
        } => {
            same_resource(resource_type, ACCOUNT, before, "account_id", account_id)?;
            all_flags_true([
                block_public_acls,
                ignore_public_acls,
                block_public_policy,
                restrict_public_buckets,
            ])
        }
        Action::EnableEbsEncryptionByDefault { account_id } => {
            same_resource(resource_type, ACCOUNT, before, "account_id", account_id)
        }
        Action::RevokeSecurityGroupIngress { group_id, rule_id } => {
            same_resource(
                resource_type,
                "AWS::EC2::SecurityGroup",
                before,
                "group_id",
                group_id,
            )?;
            sub_resource(before, "ingress_rules", "rule_id", rule_id, "ingress rule")?;
            Ok(())
        }
        Action::RevokeSecurityGroupEgress { group_id, rule_id } => {
            same_resource(
                resource_type,
                "AWS::EC2::SecurityGroup",
                before,
                "group_id",
                group_id,
            )?;
            sub_resource(before, "egress_rules", "rule_id", rule_id, "egress rule")?;
            Ok(())
        }
        Action::DeleteNetworkAclEntry {
            network_acl_id,
            rule_number,
            egress,
        } => {
            same_resource(
                resource_type,
                "AWS::EC2::NetworkAcl",
                before,
                "network_acl_id",
                network_acl_id,
            )?;
            let dir = if *egress { "egress" } else { "ingress" };
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
                .ok_or_else(|| {
                    (
                        SUB_RESOURCE,
                        format!(
                            "{dir} entry {rule_number} is not one of the observed network ACL's"
                        ),
                    )
                })?;
            // Deleting a deny entry, or the default rule that denies what nothing else
            // matched, lets traffic through: only an allow entry is ever deleted.
            if *rule_number == 32767 {
                return Err((
                    NACL_ONLY_ALLOW,
                    format!("{dir} entry 32767 is the default rule"),
                ));
            }
            match entry.get("rule_action").and_then(Value::as_str) {
                Some("allow") => Ok(()),
                other => Err((
                    NACL_ONLY_ALLOW,
                    format!(
                        "{dir} entry {rule_number} is a {} entry",
                        other.unwrap_or("(unknown action)")
                    ),
                )),
            }
        }
        Action::UpdateAccessKey {
            user_name,
            access_key_id,
            status,
        } => {
            same_resource(
                resource_type,
                "AWS::IAM::User",
                before,
                "user_name",
                user_name,
            )?;
            sub_resource(
                before,
                "access_keys",
                "access_key_id",
                access_key_id,
                "access key",
            )?;
            if *status == KeyStatus::Inactive {
                Ok(())
            } else {
                Err((
                    KEYS_ONLY_INACTIVE,
                    format!("it sets key {access_key_id} {}", status.as_str()),
                ))
            }
        }
        Action::ModifyInstanceMetadataOptions {
            instance_id,
            http_tokens,
        } => {
            same_resource(
                resource_type,
                "AWS::EC2::Instance",
                before,
                "instance_id",
                instance_id,
            )?;
            if *http_tokens == HttpTokens::Required {
                Ok(())
            } else {
                Err((
                    TOKENS_ONLY_REQUIRED,
                    format!("it sets HttpTokens {}", http_tokens.as_str()),
                ))
            }
        }
        Action::ModifyVpcEndpointPolicy {
            vpc_endpoint_id,
            policy_document,
        } => {
            same_resource(
                resource_type,
                "AWS::EC2::VPCEndpoint",
                before,
                "vpc_endpoint_id",
                vpc_endpoint_id,
            )?;
            let observed = before
                .get("policy_document")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    (
                        POLICY_ONLY_CONDITIONS,
                        "the observed endpoint has no policy document to compare with".to_string(),
                    )
                })?;
            only_gains_conditions(observed, policy_document)
                .map_err(|why| (POLICY_ONLY_CONDITIONS, why))
        }
        Action::ModifyDbInstancePublicAccess {
            db_instance_identifier,
            publicly_accessible,
        } => {
            same_resource(
                resource_type,
                "AWS::RDS::DBInstance",
                before,
                "db_instance_identifier",
                db_instance_identifier,
            )?;
            if *publicly_accessible {
                Err((
                    PUBLIC_ACCESS_ONLY_OFF,
                    "it sets PubliclyAccessible true".to_string(),
                ))
            } else {
                Ok(())
            }
        }
        Action::ModifyDbSnapshotRestoreAll {
            db_snapshot_identifier,
            shared_with_all,
        } => {
            same_resource(
                resource_type,
                "AWS::RDS::DBSnapshot",
                before,
                "db_snapshot_identifier",
                db_snapshot_identifier,
            )?;
            if *shared_with_all {
                Err((
                    SNAPSHOT_ONLY_UNSHARED,
                    "it adds `all` to the restore attribute".to_string(),
                ))
            } else {
                Ok(())
            }
        }
        Action::PutImageScanningConfiguration {
            repository_name,
            scan_on_push,
        } => {
            same_resource(
                resource_type,
                "AWS::ECR::Repository",
                before,
                "repository_name",
                repository_name,
            )?;
            if *scan_on_push {
                Ok(())
            } else {
                Err((SCAN_ONLY_ON, "it sets ScanOnPush false".to_string()))
            }
        }
        Action::EnableKeyRotation { key_id } => {
            same_resource(resource_type, "AWS::KMS::Key", before, "key_id", key_id)?;
            rotation_eligible(before).map_err(|why| (ROTATION_ONLY_ELIGIBLE_KEY, why))
        }
        Action::PutBucketPolicy { bucket, policy } => {
            same_resource(resource_type, "AWS::S3::Bucket", before, "bucket", bucket)?;
            let observed = match before.get("policy") {
                Some(Value::String(text)) => Some(text.as_str()),
                Some(Value::Null) => None,
                _ => {
                    return Err((
                        POLICY_ONLY_ADDS_TLS_DENY,
                        "the observed bucket's policy was not read, so there is nothing to compare with"
                            .to_string(),
                    ));
                }
            };
            let region = before.get("region").and_then(Value::as_str).unwrap_or("");
            super::policy::only_adds_tls_deny(observed, policy, bucket, region)
                .map_err(|why| (POLICY_ONLY_ADDS_TLS_DENY, why))
        }
        Action::StartTrailLogging { account_id, name } => {
            same_resource(resource_type, ACCOUNT, before, "account_id", account_id)?;
            let trails = before
                .get("trails")
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice);
            match super::home_trail(before, trails, name) {
                Some(_) => Ok(()),
                None => Err((
                    TRAIL_STARTED_ONLY_HOME,
                    format!(
                        "trail {name:?} is not one the observed account has in the finding's region"
                    ),
                )),
            }
        }
        Action::CreateTrail {
            account_id,
            name,
            is_multi_region_trail,
            enable_log_file_validation,
            ..
        } => {
            same_resource(resource_type, ACCOUNT, before, "account_id", account_id)?;
            match before.get("trails").and_then(Value::as_array) {
                Some(trails) if trails.is_empty() => {}
                Some(trails) => {
                    return Err((
                        TRAIL_CREATED_ONLY_WHERE_NONE,
                        format!(
                            "it creates trail {name:?}, but the observed account has {} trail(s) here",
                            trails.len()
                        ),
                    ));
                }
                None => {
                    return Err((
                        TRAIL_CREATED_ONLY_WHERE_NONE,
                        "the observed account's trails were not read".to_string(),
                    ));
                }
            }
            let mut off = Vec::new();
            if !is_multi_region_trail {
                off.push("is_multi_region_trail");
            }
            if !enable_log_file_validation {
                off.push("enable_log_file_validation");
            }
            if off.is_empty() {
                Ok(())
            } else {
                Err((
                    TRAIL_CREATED_MULTI_REGION_VALIDATED,
                    format!("it sets {} false", off.join(", ")),
                ))
            }
        }
        Action::UpdateTrailLogFileValidation {
            name,
            enable_log_file_validation,
        } => {
            same_resource(
                resource_type,
                "AWS::CloudTrail::Trail",
                before,
                "name",
                name,
            )?;
            let home = before.get("home_region").and_then(Value::as_str);
            let region = before.get("region").and_then(Value::as_str);
            if home.is_none() || home != region {
                return Err((
                    TRAIL_CHANGED_ONLY_HOME,
                    format!(
                        "trail {name:?} is homed in {}, not in {}",
                        home.unwrap_or("(unknown)"),
                        region.unwrap_or("(unknown)")
                    ),
                ));
            }
            if *enable_log_file_validation {
                Ok(())
            } else {
                Err((
                    VALIDATION_ONLY_ON,
                    "it turns log file validation off".to_string(),
                ))
            }
        }
        Action::UpdateAccountPasswordPolicy {
            account_id,
            minimum_password_length,
            require_symbols,
            require_numbers,
            require_uppercase_characters,
            require_lowercase_characters,
            allow_users_to_change_password,
            max_password_age,
            password_reuse_prevention,
            hard_expiry,
        } => {
            same_resource(resource_type, ACCOUNT, before, "account_id", account_id)?;
            let observed = match before.get("password_policy") {
                Some(Value::Null) => None,
                Some(p @ Value::Object(_)) => Some(p),
                _ => {
                    return Err((
                        PASSWORD_POLICY_ONLY_STRICTER,
                        "the observed account's password policy was not read, so there is nothing to compare with".to_string(),
                    ));
                }
            };
            let new = NewPasswordPolicy {
                minimum_password_length: *minimum_password_length,
                flags: [
                    ("require_symbols", *require_symbols),
                    ("require_numbers", *require_numbers),
                    (
                        "require_uppercase_characters",
                        *require_uppercase_characters,
                    ),
                    (
                        "require_lowercase_characters",
                        *require_lowercase_characters,
                    ),
                    ("hard_expiry", *hard_expiry),
                ],
                allow_users_to_change_password: *allow_users_to_change_password,
                max_password_age: *max_password_age,
                password_reuse_prevention: *password_reuse_prevention,
            };
            new.at_least_as_strict_as(observed)
                .map_err(|why| (PASSWORD_POLICY_ONLY_STRICTER, why))
        }
        Action::PutConfigurationRecorder { account_id, .. } => {
            same_resource(resource_type, ACCOUNT, before, "account_id", account_id)?;
            let recorders = super::config_recorder_list(before, "recorders")
                .map_err(|why| (CONFIG_ONLY_WHERE_NONE, why.to_string()))?;
            match recorders.iter().find(|r| super::is_own_recorder(r)) {
                None => Ok(()),
                Some(r) => Err((
                    CONFIG_ONLY_WHERE_NONE,
                    format!(
                        "the region has configuration recorder {}",
                        r.get("name").and_then(Value::as_str).unwrap_or("?")
                    ),
                )),
            }
        }
        Action::PutDeliveryChannel { account_id, .. } => {
            same_resource(resource_type, ACCOUNT, before, "account_id", account_id)?;
            let channels = super::config_recorder_list(before, "delivery_channels")
                .map_err(|why| (CONFIG_ONLY_WHERE_NONE, why.to_string()))?;
            match channels.first() {
                None => Ok(()),
                Some(ch) => Err((
                    CONFIG_ONLY_WHERE_NONE,
                    format!(
                        "the region has delivery channel {}",
                        ch.get("name").and_then(Value::as_str).unwrap_or("?")
                    ),
                )),
            }
        }
        Action::StartConfigurationRecorder { account_id, name } => {
            same_resource(resource_type, ACCOUNT, before, "account_id", account_id)?;
            let recorders = super::config_recorder_list(before, "recorders")
                .map_err(|why| (SUB_RESOURCE, why.to_string()))?;
            let own: Vec<&Value> = recorders
                .iter()
                .filter(|r| super::is_own_recorder(r))
                .collect();
            // The region's own recorder, or, where it has none, the one the plan creates.
            if own.is_empty()
                || own
                    .iter()
                    .any(|r| r.get("name").and_then(Value::as_str) == Some(name))
            {
                Ok(())
            } else {
                Err((
                    SUB_RESOURCE,
                    format!("configuration recorder {name:?} is not the observed region's"),
                ))
            }
        }
        Action::CreateDetector { account_id } => {
            same_resource(resource_type, ACCOUNT, before, "account_id", account_id)?;
            match detectors(before) {
                Some([]) => Ok(()),
                Some(existing) => Err((
                    DETECTOR_ONLY_WHERE_NONE,
                    format!(
                        "the region has detector {}",
                        existing[0].get("id").and_then(Value::as_str).unwrap_or("?")
                    ),
                )),
                None => Err((
                    DETECTOR_ONLY_WHERE_NONE,
                    "the account's detectors were not read".to_string(),
                )),
            }
        }
        Action::UpdateDetector {
            account_id,
            detector_id,
            enable,
        } => {
            same_resource(resource_type, ACCOUNT, before, "account_id", account_id)?;
            let known = detectors(before)
                .unwrap_or_default()
                .iter()
                .any(|d| d.get("id").and_then(Value::as_str) == Some(detector_id.as_str()));
            if !known {
                return Err((
                    SUB_RESOURCE,
                    format!("detector {detector_id:?} is not one of the observed account's"),
                ));
            }
            if *enable {
                Ok(())
            } else {
                Err((DETECTOR_ONLY_ENABLED, "it sets Enable false".to_string()))
            }
        }
        Action::CreateFlowLogs {
            vpc_id,
            log_group,
            deliver_logs_role_arn,
            ..
        } => {
            same_resource(resource_type, "AWS::EC2::VPC", before, "vpc_id", vpc_id)?;
            let Some(flow_logs) = before.get("flow_logs").and_then(Value::as_array) else {
                return Err((
                    FLOW_LOG_ONLY_WHERE_NONE,
                    "the VPC's flow logs were not read".to_string(),
                ));
            };
            if let Some(active) = flow_logs
                .iter()
                .find(|f| f.get("status").and_then(Value::as_str) == Some("ACTIVE"))
            {
                return Err((
                    FLOW_LOG_ONLY_WHERE_NONE,
                    format!(
                        "the VPC has active flow log {}",
                        active
                            .get("flow_log_id")
                            .and_then(Value::as_str)
                            .unwrap_or("?")
                    ),
                ));
            }
            if log_group.trim().is_empty() || deliver_logs_role_arn.trim().is_empty() {
                return Err((
                    FLOW_LOG_ONLY_WHERE_NONE,
                    "log_group and deliver_logs_role_arn must both be named".to_string(),
                ));
            }
            Ok(())
        }
        Action::DeletePublicAccessBlock { .. }
        | Action::DeleteAccountPasswordPolicy { .. }
        | Action::DeleteConfigurationRecorder { .. }
        | Action::DeleteDeliveryChannel { .. }
        | Action::StopConfigurationRecorder { .. }
        | Action::DeleteDetector { .. }
        | Action::DeleteFlowLogs { .. }
        | Action::AuthorizeSecurityGroupIngress { .. }
        | Action::AuthorizeSecurityGroupEgress { .. }
        | Action::CreateNetworkAclEntry { .. }
        | Action::DeleteBucketPolicy { .. }
        | Action::DeleteAccountPublicAccessBlock { .. }
        | Action::DisableEbsEncryptionByDefault { .. }
        | Action::DisableKeyRotation { .. }
        | Action::StopTrailLogging { .. }
        | Action::DeleteTrail { .. } => Err((
            NO_INVERSE_IN_PLAN,
            "this kind loosens a resource; only undo applies it".to_string(),
        )),
    }
}

/// The account's GuardDuty detectors as observed, when they were read.
fn detectors(before: &Value) -> Option<&[Value]> {
    before
        .get("guardduty")
        .and_then(|g| g.get("detectors"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
}

/// The Config type of findings about an account itself.
const ACCOUNT: &str = crate::event::ACCOUNT_TYPE;

/// Whether the observed key is one whose rotation rectify turns on: managed by the customer
/// (AWS rotates its own keys), symmetric (KMS rotates no asymmetric or HMAC key), of KMS-made
/// material (imported material is rotated by hand) and `Enabled` (a disabled key, or one
/// pending deletion, is refused by KMS and is no place to start rotating). Says which it is not.
fn rotation_eligible(before: &Value) -> Result<(), String> {
    let field = |k: &str| before.get(k).and_then(Value::as_str).unwrap_or("unknown");
    for (k, wanted) in [
        ("key_manager", "CUSTOMER"),
        ("key_spec", "SYMMETRIC_DEFAULT"),
        ("origin", "AWS_KMS"),
        ("key_state", "Enabled"),
    ] {
        if field(k) != wanted {
            return Err(format!(
                "the observed key's {k} is {}, not {wanted}",
                field(k)
            ));
        }
    }
    Ok(())
}

/// A password policy a plan sets, in the terms it is compared in.
struct NewPasswordPolicy {
    minimum_password_length: i32,
    /// The requirements where `true` is the stricter value.
    flags: [(&'static str, bool); 5],
    allow_users_to_change_password: bool,
    max_password_age: Option<i32>,
    password_reuse_prevention: Option<i32>,
}

/// The length AWS asks for when an account has no password policy.
const DEFAULT_MINIMUM_PASSWORD_LENGTH: i64 = 8;

impl NewPasswordPolicy {
    /// Whether this policy is at least as strict as the observed one (`None`: the account has
    /// none) in every field: no shorter minimum length, no fewer remembered passwords, no
    /// longer (or no) maximum age where one is set, no requirement dropped, and
    /// `allow_users_to_change_password` as it was. Against no policy, the length is at least
    /// AWS's default (8).
    fn at_least_as_strict_as(&self, observed: Option<&Value>) -> Result<(), String> {
        let number = |k: &str| observed.and_then(|p| p.get(k)).and_then(Value::as_i64);
        let old_length =
            number("minimum_password_length").unwrap_or(DEFAULT_MINIMUM_PASSWORD_LENGTH);
        if i64::from(self.minimum_password_length) < old_length {
            return Err(format!(
                "it sets minimum_password_length {} below {old_length}",
                self.minimum_password_length
            ));
        }
        let old_reuse = number("password_reuse_prevention").unwrap_or(0);
        if i64::from(self.password_reuse_prevention.unwrap_or(0)) < old_reuse {
            return Err(format!(
                "it sets password_reuse_prevention {} below {old_reuse}",
                self.password_reuse_prevention
                    .map_or("none".to_string(), |n| n.to_string())
            ));
        }
        if let Some(old_age) = number("max_password_age") {
            match self.max_password_age {
                Some(age) if i64::from(age) <= old_age => {}
                other => {
                    return Err(format!(
                        "it sets max_password_age {} where passwords expire after {old_age} days",
                        other.map_or("none".to_string(), |n| n.to_string())
                    ));
                }
            }
        }
        let Some(observed) = observed else {
            return Ok(());
        };
        for (name, on) in self.flags {
            if !on && observed.get(name).and_then(Value::as_bool) != Some(false) {
                return Err(format!("it sets {name} false"));
            }
        }
        let allow = observed
            .get("allow_users_to_change_password")
            .and_then(Value::as_bool);
        if allow != Some(self.allow_users_to_change_password) {
            return Err(format!(
                "it sets allow_users_to_change_password {}, which it keeps as it was",
                self.allow_users_to_change_password
            ));
        }
        Ok(())
    }
}

/// The four Public Access Block flags, in their API order, must all be true.
fn all_flags_true(flags: [&bool; 4]) -> Result<(), Broken> {
    let names = [
        "block_public_acls",
        "ignore_public_acls",
        "block_public_policy",
        "restrict_public_buckets",
    ];
    let off: Vec<&str> = names
        .iter()
        .zip(flags)
        .filter(|(_, on)| !**on)
        .map(|(name, _)| *name)
        .collect();
    if off.is_empty() {
        Ok(())
    } else {
        Err((BLOCK_ONLY_TRUE, format!("it sets {} false", off.join(", "))))
    }
}

/// A policy's statements as an array (a single statement may be written as an object).
fn statements(policy: &Value) -> Vec<Value> {
    match policy.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(single @ Value::Object(_)) => vec![single.clone()],
        _ => Vec::new(),
    }
}

/// Whether `new` is `old` with only Condition entries added to Allow statements: the same
/// top-level fields, the same statements in the same order, each equal but for its Condition,
/// where every operator and key of the old Condition is kept with the same value. A Deny
/// statement may not change at all: a condition narrows what it denies.
pub fn only_gains_conditions(old: &str, new: &str) -> Result<(), String> {
    super::policy::unique_keys(new, "planned")?;
    let parse = |text: &str, which: &str| {
        serde_json::from_str::<Value>(text)
            .ok()
            .filter(Value::is_object)
            .ok_or_else(|| format!("the {which} policy document is not a JSON object"))
    };
    let (old, new) = (parse(old, "observed")?, parse(new, "planned")?);
    let without_statements = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(m) = &mut v {
            m.remove("Statement");
        }
        canonical_value(&v)
    };
    if without_statements(&old) != without_statements(&new) {
        return Err("it changes fields of the policy other than its statements".into());
    }
    let (old_st, new_st) = (statements(&old), statements(&new));
    if old_st.len() != new_st.len() {
        return Err(format!(
            "it has {} statements where the observed policy has {}",
            new_st.len(),
            old_st.len()
        ));
    }
    for (i, (o, n)) in old_st.iter().zip(&new_st).enumerate() {
        let number = i + 1;
        let split = |s: &Value| {
            let mut rest = s.clone();
            let condition = match &mut rest {
                Value::Object(m) => m.remove("Condition"),
                _ => None,
            };
            (canonical_value(&rest), condition.unwrap_or(Value::Null))
        };
        let ((o_rest, o_cond), (n_rest, n_cond)) = (split(o), split(n));
        if o_rest != n_rest {
            return Err(format!(
                "statement {number} changes its effect, principals, actions or resources"
            ));
        }
        if canonical_value(&o_cond) == canonical_value(&n_cond) {
            continue;
        }
        if o.get("Effect").and_then(Value::as_str) != Some("Allow") {
            return Err(format!(
                "statement {number} is not an Allow: a condition would narrow what it denies"
            ));
        }
        let empty = serde_json::Map::new();
        let o_ops = match &o_cond {
            Value::Null => &empty,
            Value::Object(m) => m,
            _ => {
                return Err(format!(
                    "statement {number}'s observed Condition is not an object"
                ));
            }
        };
        let Value::Object(n_ops) = &n_cond else {
            return Err(format!(
                "statement {number} loses or malforms its Condition"
            ));
        };
        for (op, o_keys) in o_ops {
            let Some(n_keys) = n_ops.get(op) else {
                return Err(format!("statement {number} drops the condition {op}"));
            };
            let (Value::Object(o_keys), Value::Object(n_keys)) = (o_keys, n_keys) else {
                return Err(format!(
                    "statement {number}'s condition {op} is not an object"
                ));
            };
            for (key, value) in o_keys {
                if n_keys.get(key).map(canonical_value) != Some(canonical_value(value)) {
                    return Err(format!(
                        "statement {number} changes or drops the condition {op} {key}"
                    ));
                }
            }
        }
        for (op, keys) in n_ops {
            if keys.as_object().is_none_or(serde_json::Map::is_empty) {
                return Err(format!(
                    "statement {number}'s condition {op} names no condition key"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plan(actions: Vec<Action>) -> Plan {
        Plan {
            actions,
            reason: None,
            ..Default::default()
        }
    }

    fn rule_of(resource_type: &str, before: &Value, action: Action) -> Option<&'static str> {
        check(resource_type, before, &plan(vec![action]))
            .err()
            .map(|e| e.rule)
    }

    fn put(bucket: &str, all: bool) -> Action {
        Action::PutPublicAccessBlock {
            bucket: bucket.into(),
            block_public_acls: true,
            ignore_public_acls: all,
            block_public_policy: true,
            restrict_public_buckets: true,
        }
    }

    #[test]
    fn a_public_access_block_is_only_set_to_true_on_the_observed_bucket() {
        let before = json!({"bucket": "mine", "public_access_block": null});
        assert_eq!(rule_of("AWS::S3::Bucket", &before, put("mine", true)), None);
        assert_eq!(
            rule_of("AWS::S3::Bucket", &before, put("theirs", true)),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of("AWS::S3::Bucket", &before, put("mine", false)),
            Some(BLOCK_ONLY_TRUE)
        );
        let e = check("AWS::S3::Bucket", &before, &plan(vec![put("mine", false)])).unwrap_err();
        assert!(e.to_string().contains("ignore_public_acls"), "{e}");
        assert!(
            e.to_string().contains("action 1 (s3:PutPublicAccessBlock)"),
            "{e}"
        );
        assert_eq!(
            rule_of(
                "AWS::S3::Bucket",
                &before,
                Action::DeletePublicAccessBlock {
                    bucket: "mine".into()
                }
            ),
            Some(NO_INVERSE_IN_PLAN)
        );
        // An observation that does not say which bucket it is binds nothing.
        assert_eq!(
            rule_of("AWS::S3::Bucket", &json!({}), put("mine", true)),
            Some(SAME_RESOURCE)
        );
        // The kind must belong to the finding's resource type.
        assert_eq!(
            rule_of(
                "AWS::EC2::SecurityGroup",
                &json!({"bucket": "mine"}),
                put("mine", true)
            ),
            Some(SAME_RESOURCE)
        );
    }

    #[test]
    fn trails_are_started_only_where_they_live_and_created_only_where_none_is() {
        let t = "AWS::::Account";
        let acct = "111122223333";
        let before = json!({"account_id": acct, "region": "us-east-1", "trails": [
            {"name": "audit", "home_region": "us-east-1", "is_logging": false},
            {"name": "org", "home_region": "eu-west-1", "is_logging": false}
        ]});
        let start = |account: &str, name: &str| Action::StartTrailLogging {
            account_id: account.into(),
            name: name.into(),
        };
        assert_eq!(rule_of(t, &before, start(acct, "audit")), None);
        assert_eq!(
            rule_of(t, &before, start("999988887777", "audit")),
            Some(SAME_RESOURCE)
        );
        // A shadow of another region's trail is started in its home region, not here.
        assert_eq!(
            rule_of(t, &before, start(acct, "org")),
            Some(TRAIL_STARTED_ONLY_HOME)
        );
        assert_eq!(
            rule_of(t, &before, start(acct, "nope")),
            Some(TRAIL_STARTED_ONLY_HOME)
        );
        let e = check(t, &before, &plan(vec![start(acct, "org")])).unwrap_err();
        assert!(e.to_string().contains("\"org\""), "{e}");

        let create = |name: &str, multi: bool, validated: bool| Action::CreateTrail {
            account_id: acct.into(),
            name: name.into(),
            s3_bucket_name: "logs".into(),
            is_multi_region_trail: multi,
            enable_log_file_validation: validated,
        };
        let none = json!({"account_id": acct, "region": "us-east-1", "trails": []});
        // Created, then started: the start names the trail the plan creates.
        assert!(
            check(
                t,
                &none,
                &plan(vec![
                    create("rectify-trail", true, true),
                    start(acct, "rectify-trail")
                ])
            )
            .is_ok()
        );
        // Not started before it is created, nor another name.
        let e = check(
            t,
            &none,
            &plan(vec![
                start(acct, "rectify-trail"),
                create("rectify-trail", true, true),
            ]),
        )
        .unwrap_err();
        assert_eq!((e.index, e.rule), (1, TRAIL_STARTED_ONLY_HOME));
        let e = check(
            t,
            &none,
            &plan(vec![
                create("rectify-trail", true, true),
                start(acct, "other"),
            ]),
        )
        .unwrap_err();
        assert_eq!((e.index, e.rule), (2, TRAIL_STARTED_ONLY_HOME));
        // Only where the account has no trail, whichever region it is homed in.
        assert_eq!(
            rule_of(t, &before, create("rectify-trail", true, true)),
            Some(TRAIL_CREATED_ONLY_WHERE_NONE)
        );
        assert_eq!(
            rule_of(t, &json!({"account_id": acct}), create("x1x", true, true)),
            Some(TRAIL_CREATED_ONLY_WHERE_NONE)
        );
        for (multi, validated) in [(false, true), (true, false), (false, false)] {
            assert_eq!(
                rule_of(t, &none, create("rectify-trail", multi, validated)),
                Some(TRAIL_CREATED_MULTI_REGION_VALIDATED)
            );
        }
        // Stopping and deleting are inverses.
        for inverse in [
            Action::StopTrailLogging {
                account_id: acct.into(),
                name: "audit".into(),
            },
            Action::DeleteTrail {
                account_id: acct.into(),
                name: "audit".into(),
            },
        ] {
            assert_eq!(rule_of(t, &before, inverse), Some(NO_INVERSE_IN_PLAN));
        }
    }

    #[test]
    fn a_trail_s_log_file_validation_is_only_turned_on_in_its_home_region() {
        let t = "AWS::CloudTrail::Trail";
        let before = json!({"name": "audit", "region": "us-east-1", "home_region": "us-east-1",
                            "log_file_validation": false});
        let validate = |name: &str, on: bool| Action::UpdateTrailLogFileValidation {
            name: name.into(),
            enable_log_file_validation: on,
        };
        assert_eq!(rule_of(t, &before, validate("audit", true)), None);
        assert_eq!(
            rule_of(t, &before, validate("audit", false)),
            Some(VALIDATION_ONLY_ON)
        );
        assert_eq!(
            rule_of(t, &before, validate("other", true)),
            Some(SAME_RESOURCE)
        );
        let shadow = json!({"name": "audit", "region": "us-east-1", "home_region": "eu-west-1"});
        assert_eq!(
            rule_of(t, &shadow, validate("audit", true)),
            Some(TRAIL_CHANGED_ONLY_HOME)
        );
        assert_eq!(
            rule_of(
                "AWS::::Account",
                &json!({"account_id": "111122223333", "name": "audit"}),
                validate("audit", true)
            ),
            Some(SAME_RESOURCE)
        );
    }

    #[test]
    fn account_settings_are_only_tightened_on_the_observed_account() {
        let t = "AWS::::Account";
        let before = json!({"account_id": "111122223333", "public_access_block": null,
                            "ebs_encryption_by_default": false});
        let put_account = |account: &str, all: bool| Action::PutAccountPublicAccessBlock {
            account_id: account.into(),
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: all,
            restrict_public_buckets: true,
        };
        assert_eq!(rule_of(t, &before, put_account("111122223333", true)), None);
        assert_eq!(
            rule_of(t, &before, put_account("999988887777", true)),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &before, put_account("111122223333", false)),
            Some(BLOCK_ONLY_TRUE)
        );
        let e = check(t, &before, &plan(vec![put_account("111122223333", false)])).unwrap_err();
        assert!(e.to_string().contains("block_public_policy"), "{e}");
        // A bucket's finding cannot change the account's block, nor an account's a bucket's.
        assert_eq!(
            rule_of(
                "AWS::S3::Bucket",
                &json!({"bucket": "b", "account_id": "111122223333"}),
                put_account("111122223333", true)
            ),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(
                t,
                &json!({"account_id": "111122223333", "bucket": "b"}),
                put("b", true)
            ),
            Some(SAME_RESOURCE)
        );

        let enable = |account: &str| Action::EnableEbsEncryptionByDefault {
            account_id: account.into(),
        };
        assert_eq!(rule_of(t, &before, enable("111122223333")), None);
        assert_eq!(
            rule_of(t, &before, enable("999988887777")),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &json!({}), enable("111122223333")),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(
                "AWS::EC2::Instance",
                &json!({"account_id": "111122223333"}),
                enable("111122223333")
            ),
            Some(SAME_RESOURCE)
        );
        // Loosening kinds are inverses: only undo applies them.
        for inverse in [
            Action::DeleteAccountPublicAccessBlock {
                account_id: "111122223333".into(),
            },
            Action::DisableEbsEncryptionByDefault {
                account_id: "111122223333".into(),
            },
        ] {
            assert_eq!(rule_of(t, &before, inverse), Some(NO_INVERSE_IN_PLAN));
        }
    }

    fn password_policy(edit: &dyn Fn(&mut Action)) -> Action {
        let mut a = Action::UpdateAccountPasswordPolicy {
            account_id: "111122223333".into(),
            minimum_password_length: 14,
            require_symbols: true,
            require_numbers: true,
            require_uppercase_characters: true,
            require_lowercase_characters: true,
            allow_users_to_change_password: false,
            max_password_age: Some(90),
            password_reuse_prevention: Some(24),
            hard_expiry: true,
        };
        edit(&mut a);
        a
    }

    #[test]
    fn a_password_policy_is_only_made_stricter_in_every_field() {
        let t = "AWS::::Account";
        let before = json!({"account_id": "111122223333", "password_policy": {
            "minimum_password_length": 12, "require_symbols": true, "require_numbers": false,
            "require_uppercase_characters": false, "require_lowercase_characters": false,
            "allow_users_to_change_password": false, "expire_passwords": true,
            "max_password_age": 90, "password_reuse_prevention": 5, "hard_expiry": true}});
        assert_eq!(rule_of(t, &before, password_policy(&|_| {})), None);
        let weaker: Vec<(&str, Action)> = vec![
            (
                "shorter",
                password_policy(&|a| {
                    if let Action::UpdateAccountPasswordPolicy {
                        minimum_password_length,
                        ..
                    } = a
                    {
                        *minimum_password_length = 11;
                    }
                }),
            ),
            (
                "fewer remembered",
                password_policy(&|a| {
                    if let Action::UpdateAccountPasswordPolicy {
                        password_reuse_prevention,
                        ..
                    } = a
                    {
                        *password_reuse_prevention = Some(4);
                    }
                }),
            ),
            (
                "none remembered",
                password_policy(&|a| {
                    if let Action::UpdateAccountPasswordPolicy {
                        password_reuse_prevention,
                        ..
                    } = a
                    {
                        *password_reuse_prevention = None;
                    }
                }),
            ),
            (
                "older passwords",
                password_policy(&|a| {
                    if let Action::UpdateAccountPasswordPolicy {
                        max_password_age, ..
                    } = a
                    {
                        *max_password_age = Some(91);
                    }
                }),
            ),
            (
                "never expire",
                password_policy(&|a| {
                    if let Action::UpdateAccountPasswordPolicy {
                        max_password_age, ..
                    } = a
                    {
                        *max_password_age = None;
                    }
                }),
            ),
            (
                "symbols dropped",
                password_policy(&|a| {
                    if let Action::UpdateAccountPasswordPolicy {
                        require_symbols, ..
                    } = a
                    {
                        *require_symbols = false;
                    }
                }),
            ),
            (
                "hard expiry dropped",
                password_policy(&|a| {
                    if let Action::UpdateAccountPasswordPolicy { hard_expiry, .. } = a {
                        *hard_expiry = false;
                    }
                }),
            ),
            (
                "users allowed to change",
                password_policy(&|a| {
                    if let Action::UpdateAccountPasswordPolicy {
                        allow_users_to_change_password,
                        ..
                    } = a
                    {
                        *allow_users_to_change_password = true;
                    }
                }),
            ),
        ];
        for (what, action) in weaker {
            assert_eq!(
                rule_of(t, &before, action),
                Some(PASSWORD_POLICY_ONLY_STRICTER),
                "{what}"
            );
        }
        // Another account's policy, or a finding of another type, is not bound.
        assert_eq!(
            rule_of(
                t,
                &json!({"account_id": "999988887777", "password_policy": null}),
                password_policy(&|_| {})
            ),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(
                "AWS::IAM::User",
                &json!({"account_id": "111122223333", "password_policy": null}),
                password_policy(&|_| {})
            ),
            Some(SAME_RESOURCE)
        );
        // With no policy, anything at least AWS's default length is stricter; with an
        // observation that did not read the policy, nothing is.
        let none = json!({"account_id": "111122223333", "password_policy": null});
        assert_eq!(rule_of(t, &none, password_policy(&|_| {})), None);
        let short = password_policy(&|a| {
            if let Action::UpdateAccountPasswordPolicy {
                minimum_password_length,
                ..
            } = a
            {
                *minimum_password_length = 6;
            }
        });
        assert_eq!(
            rule_of(t, &none, short),
            Some(PASSWORD_POLICY_ONLY_STRICTER)
        );
        assert_eq!(
            rule_of(
                t,
                &json!({"account_id": "111122223333"}),
                password_policy(&|_| {})
            ),
            Some(PASSWORD_POLICY_ONLY_STRICTER)
        );
        assert_eq!(
            rule_of(
                t,
                &before,
                Action::DeleteAccountPasswordPolicy {
                    account_id: "111122223333".into()
                }
            ),
            Some(NO_INVERSE_IN_PLAN)
        );
    }

    #[test]
    fn a_config_recorder_is_created_only_where_none_is_and_only_started_otherwise() {
        let t = "AWS::::Account";
        let a = || "111122223333".to_string();
        let state = |recorders: Value, channels: Value| {
            json!({"account_id": "111122223333",
                   "config_recorder": {"recorders": recorders, "delivery_channels": channels}})
        };
        let put = Action::PutConfigurationRecorder {
            account_id: a(),
            name: "default".into(),
            role_arn: "arn:aws:iam::111122223333:role/config".into(),
            include_global_resource_types: false,
        };
        let channel = Action::PutDeliveryChannel {
            account_id: a(),
            name: "default".into(),
            s3_bucket_name: "logs".into(),
        };
        let start = |name: &str| Action::StartConfigurationRecorder {
            account_id: a(),
            name: name.into(),
        };
        let empty = state(json!([]), json!([]));
        for action in [put.clone(), channel.clone(), start("default")] {
            assert_eq!(rule_of(t, &empty, action), None);
        }
        let stopped = state(
            json!([{"name": "main", "recording": false, "service_principal": null}]),
            json!([{"name": "main"}]),
        );
        assert_eq!(rule_of(t, &stopped, start("main")), None);
        assert_eq!(rule_of(t, &stopped, start("default")), Some(SUB_RESOURCE));
        // What an existing recorder records, and where its channel delivers, never change.
        assert_eq!(
            rule_of(t, &stopped, put.clone()),
            Some(CONFIG_ONLY_WHERE_NONE)
        );
        assert_eq!(
            rule_of(t, &stopped, channel.clone()),
            Some(CONFIG_ONLY_WHERE_NONE)
        );
        // A recorder a service linked to itself is not the region's own.
        let linked = state(
            json!([{"name": "AWSConfigurationRecorderForSecurityHub", "recording": true,
                    "service_principal": "securityhub.amazonaws.com"}]),
            json!([]),
        );
        assert_eq!(rule_of(t, &linked, put.clone()), None);
        // An observation that did not read the recorder binds nothing.
        assert_eq!(
            rule_of(t, &json!({"account_id": "111122223333"}), put.clone()),
            Some(CONFIG_ONLY_WHERE_NONE)
        );
        assert_eq!(
            rule_of(
                t,
                &json!({"account_id": "999988887777", "config_recorder": {"recorders": [], "delivery_channels": []}}),
                put
            ),
            Some(SAME_RESOURCE)
        );
        for inverse in [
            Action::StopConfigurationRecorder {
                account_id: a(),
                name: "main".into(),
            },
            Action::DeleteConfigurationRecorder {
                account_id: a(),
                name: "main".into(),
            },
            Action::DeleteDeliveryChannel {
                account_id: a(),
                name: "main".into(),
            },
        ] {
            assert_eq!(rule_of(t, &stopped, inverse), Some(NO_INVERSE_IN_PLAN));
        }
    }

    #[test]
    fn a_detector_is_only_created_where_there_is_none_and_only_ever_enabled() {
        let t = "AWS::::Account";
        let acct = "111122223333";
        let before =
            |detectors: Value| json!({"account_id": acct, "guardduty": {"detectors": detectors}});
        let create = |a: &str| Action::CreateDetector {
            account_id: a.into(),
        };
        let update = |id: &str, enable| Action::UpdateDetector {
            account_id: acct.into(),
            detector_id: id.into(),
            enable,
        };
        let none = before(json!([]));
        let off = before(json!([{"id": "d1", "status": "DISABLED"}]));
        assert_eq!(rule_of(t, &none, create(acct)), None);
        assert_eq!(
            rule_of(t, &none, create("444455556666")),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of("AWS::EC2::VPC", &none, create(acct)),
            Some(SAME_RESOURCE)
        );
        // A second detector, or one where the detectors were not read, is never created.
        assert_eq!(
            rule_of(t, &off, create(acct)),
            Some(DETECTOR_ONLY_WHERE_NONE)
        );
        assert_eq!(
            rule_of(t, &json!({"account_id": acct}), create(acct)),
            Some(DETECTOR_ONLY_WHERE_NONE)
        );
        assert_eq!(rule_of(t, &off, update("d1", true)), None);
        assert_eq!(
            rule_of(t, &off, update("d1", false)),
            Some(DETECTOR_ONLY_ENABLED)
        );
        assert_eq!(rule_of(t, &off, update("d2", true)), Some(SUB_RESOURCE));
        let delete = Action::DeleteDetector {
            account_id: acct.into(),
            detector_id: "d1".into(),
        };
        assert_eq!(rule_of(t, &off, delete), Some(NO_INVERSE_IN_PLAN));
    }

    #[test]
    fn a_flow_log_is_only_created_for_the_observed_vpc_without_an_active_one_and_never_deleted() {
        let t = "AWS::EC2::VPC";
        let before = |flow_logs: Value| json!({"vpc_id": "vpc-1", "flow_logs": flow_logs});
        let create = |vpc: &str, group: &str| Action::CreateFlowLogs {
            vpc_id: vpc.into(),
            traffic_type: super::super::TrafficType::Reject,
            log_group: group.into(),
            deliver_logs_role_arn: "arn:aws:iam::111122223333:role/deliver".into(),
        };
        let none = before(json!([]));
        assert_eq!(rule_of(t, &none, create("vpc-1", "g")), None);
        assert_eq!(rule_of(t, &none, create("vpc-2", "g")), Some(SAME_RESOURCE));
        assert_eq!(
            rule_of(t, &none, create("vpc-1", " ")),
            Some(FLOW_LOG_ONLY_WHERE_NONE)
        );
        let active = before(json!([{"flow_log_id": "fl-1", "status": "ACTIVE"}]));
        assert_eq!(
            rule_of(t, &active, create("vpc-1", "g")),
            Some(FLOW_LOG_ONLY_WHERE_NONE)
        );
        let inactive = before(json!([{"flow_log_id": "fl-1", "status": "DELETING"}]));
        assert_eq!(rule_of(t, &inactive, create("vpc-1", "g")), None);
        assert_eq!(
            rule_of(t, &json!({"vpc_id": "vpc-1"}), create("vpc-1", "g")),
            Some(FLOW_LOG_ONLY_WHERE_NONE)
        );
        let delete = Action::DeleteFlowLogs {
            vpc_id: "vpc-1".into(),
            flow_log_id: "fl-1".into(),
        };
        assert_eq!(rule_of(t, &active, delete), Some(NO_INVERSE_IN_PLAN));
    }

    #[test]
    fn a_revoke_only_removes_a_rule_of_the_observed_group() {
        let before = json!({"group_id": "sg-1", "ingress_rules": [{"rule_id": "sgr-1"}]});
        let revoke = |g: &str, r: &str| Action::RevokeSecurityGroupIngress {
            group_id: g.into(),
            rule_id: r.into(),
        };
        let t = "AWS::EC2::SecurityGroup";
        assert_eq!(rule_of(t, &before, revoke("sg-1", "sgr-1")), None);
        assert_eq!(
            rule_of(t, &before, revoke("sg-2", "sgr-1")),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &before, revoke("sg-1", "sgr-9")),
            Some(SUB_RESOURCE)
        );
        let authorize = Action::AuthorizeSecurityGroupIngress {
            group_id: "sg-1".into(),
            protocol: "tcp".into(),
            from_port: 22,
            to_port: 22,
            cidr_ipv4: Some("0.0.0.0/0".into()),
            cidr_ipv6: None,
            description: None,
            referenced_group_id: None,
            prefix_list_id: None,
        };
        assert_eq!(rule_of(t, &before, authorize), Some(NO_INVERSE_IN_PLAN));
    }

    #[test]
    fn an_egress_revoke_only_removes_an_egress_rule_of_the_observed_group_and_authorize_is_refused()
    {
        let before = json!({"group_id": "sg-1", "ingress_rules": [{"rule_id": "sgr-1"}],
                            "egress_rules": [{"rule_id": "sgr-2"}]});
        let revoke = |g: &str, r: &str| Action::RevokeSecurityGroupEgress {
            group_id: g.into(),
            rule_id: r.into(),
        };
        let t = "AWS::EC2::SecurityGroup";
        assert_eq!(rule_of(t, &before, revoke("sg-1", "sgr-2")), None);
        assert_eq!(
            rule_of(t, &before, revoke("sg-2", "sgr-2")),
            Some(SAME_RESOURCE)
        );
        // An ingress rule's id is not an egress rule of the group.
        assert_eq!(
            rule_of(t, &before, revoke("sg-1", "sgr-1")),
            Some(SUB_RESOURCE)
        );
        assert_eq!(
            rule_of(
                "AWS::EC2::Instance",
                &json!({"group_id": "sg-1"}),
                revoke("sg-1", "sgr-2")
            ),
            Some(SAME_RESOURCE)
        );
        let authorize = Action::AuthorizeSecurityGroupEgress {
            group_id: "sg-1".into(),
            protocol: "-1".into(),
            from_port: -1,
            to_port: -1,
            cidr_ipv4: Some("0.0.0.0/0".into()),
            cidr_ipv6: None,
            description: None,
            referenced_group_id: None,
            prefix_list_id: None,
        };
        assert_eq!(rule_of(t, &before, authorize), Some(NO_INVERSE_IN_PLAN));
    }

    #[test]
    fn only_allow_entries_of_the_observed_nacl_are_deleted() {
        let entry = |n: i64, egress: bool, action: &str| json!({"rule_number": n, "egress": egress, "rule_action": action});
        let before = json!({"network_acl_id": "acl-1", "entries": [
            entry(100, false, "allow"), entry(110, false, "deny"), entry(100, true, "allow"),
            entry(32767, false, "allow"), entry(32767, true, "deny")
        ]});
        let delete = |acl: &str, n: i32, egress: bool| Action::DeleteNetworkAclEntry {
            network_acl_id: acl.into(),
            rule_number: n,
            egress,
        };
        let t = "AWS::EC2::NetworkAcl";
        assert_eq!(rule_of(t, &before, delete("acl-1", 100, false)), None);
        assert_eq!(rule_of(t, &before, delete("acl-1", 100, true)), None);
        assert_eq!(
            rule_of(t, &before, delete("acl-2", 100, false)),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &before, delete("acl-1", 120, false)),
            Some(SUB_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &before, delete("acl-1", 110, true)),
            Some(SUB_RESOURCE),
            "the direction is part of the entry's name"
        );
        assert_eq!(
            rule_of(t, &before, delete("acl-1", 110, false)),
            Some(NACL_ONLY_ALLOW)
        );
        // The default rule is never deleted, even where an observation calls it allow.
        assert_eq!(
            rule_of(t, &before, delete("acl-1", 32767, false)),
            Some(NACL_ONLY_ALLOW)
        );
        assert_eq!(
            rule_of(t, &before, delete("acl-1", 32767, true)),
            Some(NACL_ONLY_ALLOW)
        );
        assert_eq!(
            rule_of(
                "AWS::EC2::SecurityGroup",
                &json!({"network_acl_id": "acl-1"}),
                delete("acl-1", 100, false)
            ),
            Some(SAME_RESOURCE)
        );
        let create = Action::CreateNetworkAclEntry {
            network_acl_id: "acl-1".into(),
            rule_number: 90,
            egress: false,
            protocol: "6".into(),
            rule_action: "deny".into(),
            cidr_block: Some("0.0.0.0/0".into()),
            ipv6_cidr_block: None,
            port_from: Some(22),
            port_to: Some(22),
            icmp_type: None,
            icmp_code: None,
        };
        assert_eq!(
            rule_of(t, &before, create),
            Some(NO_INVERSE_IN_PLAN),
            "even a deny entry is created only by undo"
        );
    }

    #[test]
    fn access_keys_of_the_observed_user_are_only_set_inactive() {
        let before = json!({"user_name": "alice", "access_keys": [{"access_key_id": "AKIA1"}]});
        let key = |u: &str, k: &str, status| Action::UpdateAccessKey {
            user_name: u.into(),
            access_key_id: k.into(),
            status,
        };
        let t = "AWS::IAM::User";
        assert_eq!(
            rule_of(t, &before, key("alice", "AKIA1", KeyStatus::Inactive)),
            None
        );
        assert_eq!(
            rule_of(t, &before, key("admin", "AKIA1", KeyStatus::Inactive)),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &before, key("alice", "AKIA2", KeyStatus::Inactive)),
            Some(SUB_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &before, key("alice", "AKIA1", KeyStatus::Active)),
            Some(KEYS_ONLY_INACTIVE)
        );
    }

    #[test]
    fn http_tokens_are_only_set_required_on_the_observed_instance() {
        let before = json!({"instance_id": "i-1"});
        let imds = |i: &str, t| Action::ModifyInstanceMetadataOptions {
            instance_id: i.into(),
            http_tokens: t,
        };
        let t = "AWS::EC2::Instance";
        assert_eq!(rule_of(t, &before, imds("i-1", HttpTokens::Required)), None);
        assert_eq!(
            rule_of(t, &before, imds("i-2", HttpTokens::Required)),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &before, imds("i-1", HttpTokens::Optional)),
            Some(TOKENS_ONLY_REQUIRED)
        );
    }

    #[test]
    fn an_rds_instance_is_only_made_private_and_only_the_observed_one() {
        let before = json!({"db_instance_identifier": "orders", "publicly_accessible": true});
        let modify = |id: &str, public| Action::ModifyDbInstancePublicAccess {
            db_instance_identifier: id.into(),
            publicly_accessible: public,
        };
        let t = "AWS::RDS::DBInstance";
        assert_eq!(rule_of(t, &before, modify("orders", false)), None);
        assert_eq!(
            rule_of(t, &before, modify("billing", false)),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &before, modify("orders", true)),
            Some(PUBLIC_ACCESS_ONLY_OFF)
        );
        assert_eq!(
            rule_of("AWS::RDS::DBSnapshot", &before, modify("orders", false)),
            Some(SAME_RESOURCE)
        );
    }

    #[test]
    fn an_rds_snapshot_is_only_unshared_from_all_and_only_the_observed_one() {
        let before =
            json!({"db_snapshot_identifier": "nightly", "restore": ["111122223333", "all"]});
        let modify = |id: &str, all| Action::ModifyDbSnapshotRestoreAll {
            db_snapshot_identifier: id.into(),
            shared_with_all: all,
        };
        let t = "AWS::RDS::DBSnapshot";
        assert_eq!(rule_of(t, &before, modify("nightly", false)), None);
        assert_eq!(
            rule_of(t, &before, modify("weekly", false)),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &before, modify("nightly", true)),
            Some(SNAPSHOT_ONLY_UNSHARED)
        );
        // A named account id cannot even be expressed: the kind has no field for one.
        let named = serde_json::from_value::<Action>(json!({
            "kind": "rds:ModifyDBSnapshotAttribute", "db_snapshot_identifier": "nightly",
            "shared_with_all": false, "values_to_remove": ["111122223333"]
        }));
        assert!(named.is_err());
    }

    #[test]
    fn scan_on_push_is_only_turned_on_and_only_for_the_observed_repository() {
        let before = json!({"repository_name": "team/app", "scan_on_push": false});
        let put = |name: &str, on| Action::PutImageScanningConfiguration {
            repository_name: name.into(),
            scan_on_push: on,
        };
        let t = "AWS::ECR::Repository";
        assert_eq!(rule_of(t, &before, put("team/app", true)), None);
        assert_eq!(
            rule_of(t, &before, put("team/other", true)),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of(t, &before, put("team/app", false)),
            Some(SCAN_ONLY_ON)
        );
        assert_eq!(
            rule_of("AWS::KMS::Key", &before, put("team/app", true)),
            Some(SAME_RESOURCE)
        );
        // Nothing else of the repository can even be expressed.
        let more = serde_json::from_value::<Action>(json!({
            "kind": "ecr:PutImageScanningConfiguration", "repository_name": "team/app",
            "scan_on_push": true, "image_tag_mutability": "MUTABLE"
        }));
        assert!(more.is_err());
    }

    #[test]
    fn key_rotation_is_only_turned_on_for_the_observed_eligible_key() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        let key = json!({"key_id": id, "key_manager": "CUSTOMER", "key_spec": "SYMMETRIC_DEFAULT",
            "origin": "AWS_KMS", "key_state": "Enabled", "enabled": true,
            "rotation_enabled": false});
        let enable = |k: &str| Action::EnableKeyRotation { key_id: k.into() };
        let t = "AWS::KMS::Key";
        assert_eq!(rule_of(t, &key, enable(id)), None);
        assert_eq!(
            rule_of(t, &key, enable("0000abcd-12ab-34cd-56ef-1234567890ab")),
            Some(SAME_RESOURCE)
        );
        assert_eq!(
            rule_of("AWS::ECR::Repository", &key, enable(id)),
            Some(SAME_RESOURCE)
        );
        for (field, value) in [
            ("key_manager", "AWS"),
            ("key_spec", "RSA_2048"),
            ("key_spec", "ECC_NIST_P256"),
            ("key_spec", "HMAC_256"),
            ("origin", "EXTERNAL"),
            ("origin", "AWS_CLOUDHSM"),
            ("key_state", "Disabled"),
            ("key_state", "PendingDeletion"),
            ("key_state", "PendingImport"),
        ] {
            let mut other = key.clone();
            other[field] = json!(value);
            let e = check(t, &other, &plan(vec![enable(id)])).unwrap_err();
            assert_eq!(e.rule, ROTATION_ONLY_ELIGIBLE_KEY, "{field}={value}");
            assert!(
                e.detail.contains(&format!("{field} is {value}")),
                "{field}={value}: {e}"
            );
        }
        // A key observed without saying what it is binds nothing.
        let mut unknown = key.clone();
        unknown.as_object_mut().unwrap().remove("key_spec");
        assert_eq!(
            rule_of(t, &unknown, enable(id)),
            Some(ROTATION_ONLY_ELIGIBLE_KEY)
        );
        assert_eq!(
            rule_of(t, &key, Action::DisableKeyRotation { key_id: id.into() }),
            Some(NO_INVERSE_IN_PLAN)
        );
    }

    #[test]
    fn an_endpoint_policy_may_only_gain_conditions() {
        let old = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Allow", "Principal": "*", "Action": "s3:PutObject", "Resource": "*",
             "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}}},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "*"}
        ]});
        let org = json!({"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}});
        let with = |edit: &dyn Fn(&mut Value)| {
            let mut v = old.clone();
            edit(&mut v);
            v.to_string()
        };
        let before = json!({"vpc_endpoint_id": "vpce-1", "policy_document": old.to_string()});
        let modify = |id: &str, doc: String| Action::ModifyVpcEndpointPolicy {
            vpc_endpoint_id: id.into(),
            policy_document: doc,
        };
        let t = "AWS::EC2::VPCEndpoint";
        let tightened = with(&|v| v["Statement"][0]["Condition"] = org.clone());
        assert_eq!(
            rule_of(t, &before, modify("vpce-1", tightened.clone())),
            None
        );
        assert_eq!(
            rule_of(t, &before, modify("vpce-2", tightened)),
            Some(SAME_RESOURCE)
        );
        let added_key = with(&|v| {
            v["Statement"][1]["Condition"]["StringEquals"]["aws:PrincipalOrgID"] =
                json!("o-abcdefghij");
        });
        assert_eq!(rule_of(t, &before, modify("vpce-1", added_key)), None);

        let loosening: Vec<(&str, String)> = vec![
            (
                "a new statement",
                with(&|v| {
                    v["Statement"].as_array_mut().unwrap().push(
                    json!({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}),
                );
                }),
            ),
            (
                "a statement removed",
                with(&|v| {
                    v["Statement"].as_array_mut().unwrap().pop();
                }),
            ),
            (
                "a new action",
                with(&|v| v["Statement"][0]["Action"] = json!("s3:*")),
            ),
            (
                "a new principal",
                with(&|v| {
                    v["Statement"][1]["Principal"] = json!({"AWS": ["*", "arn:aws:iam::1:root"]});
                }),
            ),
            (
                "a new resource",
                with(&|v| v["Statement"][0]["Resource"] = json!(["*", "x"])),
            ),
            (
                "Deny made Allow",
                with(&|v| v["Statement"][2]["Effect"] = json!("Allow")),
            ),
            (
                "a condition on a Deny",
                with(&|v| v["Statement"][2]["Condition"] = org.clone()),
            ),
            (
                "a condition dropped",
                with(&|v| {
                    v["Statement"][1]
                        .as_object_mut()
                        .unwrap()
                        .remove("Condition");
                }),
            ),
            (
                "a condition widened",
                with(&|v| {
                    v["Statement"][1]["Condition"]["StringEquals"]["aws:SourceVpc"] =
                        json!(["vpc-1", "vpc-2"]);
                }),
            ),
            (
                "an empty condition",
                with(&|v| v["Statement"][0]["Condition"] = json!({"StringEquals": {}})),
            ),
            (
                "a new Version",
                with(&|v| v["Version"] = json!("2008-10-17")),
            ),
            ("not JSON", "{".to_string()),
        ];
        for (what, doc) in loosening {
            assert_eq!(
                rule_of(t, &before, modify("vpce-1", doc)),
                Some(POLICY_ONLY_CONDITIONS),
                "{what}"
            );
        }
        assert_eq!(
            rule_of(
                t,
                &json!({"vpc_endpoint_id": "vpce-1", "policy_document": null}),
                modify("vpce-1", old.to_string())
            ),
            Some(POLICY_ONLY_CONDITIONS),
            "nothing observed to compare with"
        );
        // A single statement written as an object is a list of one.
        let single = json!({"Statement": {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}});
        let mut restricted = single.clone();
        restricted["Statement"]["Condition"] = org.clone();
        assert!(only_gains_conditions(&single.to_string(), &restricted.to_string()).is_ok());
        // A key written twice could be read as either value: the planned text is refused,
        // though the value serde keeps (the last) would pass.
        let old = r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}]}"#;
        let twice = r#"{"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}, "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}]}"#;
        let once = twice.replacen(
            r#", "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}"#,
            "",
            1,
        );
        assert!(only_gains_conditions(old, &once).is_ok());
        let why = only_gains_conditions(old, twice).unwrap_err();
        assert!(why.contains("the key \"Condition\" appears twice"), "{why}");
    }

    #[test]
    fn a_bucket_policy_only_gains_the_tls_deny_of_the_observed_bucket() {
        let deny = |bucket: &str| {
            json!({"Effect": "Deny", "Principal": "*", "Action": "s3:*",
                   "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
                   "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
            .to_string()
        };
        let old = "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Effect\": \"Allow\", \"Principal\": \"*\", \"Action\": \"s3:GetObject\", \"Resource\": \"arn:aws:s3:::mine/*\"}]}";
        let before = json!({"bucket": "mine", "region": "us-east-1", "policy": old});
        let put = |bucket: &str, policy: String| Action::PutBucketPolicy {
            bucket: bucket.into(),
            policy,
        };
        let t = "AWS::S3::Bucket";
        let added = super::super::policy::append_statement(Some(old), &deny("mine")).unwrap();
        assert_eq!(rule_of(t, &before, put("mine", added.clone())), None);
        // The same text with the deny's Effect written twice, Allow first: refused.
        let twice = added.replacen(
            r#""Effect":"Deny""#,
            r#""Effect":"Allow","Effect":"Deny""#,
            1,
        );
        assert_ne!(twice, added);
        assert_eq!(
            rule_of(t, &before, put("mine", twice)),
            Some(POLICY_ONLY_ADDS_TLS_DENY)
        );
        assert_eq!(
            rule_of(t, &before, put("theirs", added.clone())),
            Some(SAME_RESOURCE)
        );
        // The old statement re-encoded: the same JSON, other bytes.
        let reencoded = added.replacen("\"Effect\": \"Allow\"", "\"Effect\":\"Allow\"", 1);
        assert_eq!(
            rule_of(t, &before, put("mine", reencoded)),
            Some(POLICY_ONLY_ADDS_TLS_DENY)
        );
        // The old policy's statement dropped: only the deny left.
        let replaced = super::super::policy::append_statement(None, &deny("mine")).unwrap();
        assert_eq!(
            rule_of(t, &before, put("mine", replaced.clone())),
            Some(POLICY_ONLY_ADDS_TLS_DENY)
        );
        // A bucket without a policy gets a new one holding only the deny.
        let none = json!({"bucket": "mine", "region": "us-east-1", "policy": null});
        assert_eq!(rule_of(t, &none, put("mine", replaced.clone())), None);
        let other = super::super::policy::append_statement(None, &deny("theirs")).unwrap();
        assert_eq!(
            rule_of(t, &none, put("mine", other)),
            Some(POLICY_ONLY_ADDS_TLS_DENY)
        );
        // An observation that did not read the policy binds no policy.
        assert_eq!(
            rule_of(t, &json!({"bucket": "mine"}), put("mine", replaced)),
            Some(POLICY_ONLY_ADDS_TLS_DENY)
        );
        assert_eq!(
            rule_of(
                t,
                &before,
                Action::DeleteBucketPolicy {
                    bucket: "mine".into()
                }
            ),
            Some(NO_INVERSE_IN_PLAN)
        );
        // The inverse, the old text put back, is no plan either: it drops the deny.
        let with_deny = json!({"bucket": "mine", "region": "us-east-1", "policy": added});
        assert_eq!(
            rule_of(t, &with_deny, put("mine", old.to_string())),
            Some(POLICY_ONLY_ADDS_TLS_DENY)
        );
    }

    #[test]
    fn the_first_breaking_action_is_named_by_its_position() {
        let before = json!({"bucket": "mine"});
        let e = check(
            "AWS::S3::Bucket",
            &before,
            &plan(vec![put("mine", true), put("theirs", true)]),
        )
        .unwrap_err();
        assert_eq!(e.index, 2);
        assert_eq!(e.rule, SAME_RESOURCE);
        assert!(e.to_string().contains("\"theirs\""), "{e}");
    }
}
