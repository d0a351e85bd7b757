//! Resource types: the registry of what rectify can read, list and validate.
//!
//! Each AWS resource type rectify handles is one file in this folder, implementing
//! [`ResourceType`]: the names Config, Security Hub (ASFF) and OCSF give it, whether it lives in an
//! account or in each region, the form of its ids, how to read one live (the JSON shape scripts
//! see, documented in docs/writing-remediations.md), how to list them all (for the sweep) and the
//! IAM read permissions that needs. [`REGISTRY`] lists them; everything else (the event decoder,
//! the catalog's manifest check, [`observe`], the sweep, the member role's permissions)
//! asks the registry instead of naming types itself.

use std::future::Future;
use std::pin::Pin;

use serde_json::Value;

use crate::cloud::{Clients, Cloud, CloudError};

mod account;
mod cloudtrail_trail;
mod ec2_instance;
mod ecr_repository;
mod iam_user;
mod kms_key;
mod network_acl;
mod rds_instance;
mod rds_snapshot;
mod s3_bucket;
mod security_group;
mod vpc;
mod vpc_endpoint;

/// A boxed, sendable future, so that [`ResourceType`] stays object-safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whether a resource type (or what a remediation changes) exists once per account or once per
/// region; a manifest writes it `account` or `region`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum Scope {
    /// One namespace per account, served by a global endpoint (IAM users, the account's S3
    /// Public Access Block): listed once, not once per region.
    #[serde(rename = "account")]
    Global,
    /// Each resource lives in one region and is reached there (EC2 resources, S3 buckets).
    #[serde(rename = "region")]
    Regional,
}

/// What is fixed about a resource type: its names, where it lives, what reading it needs.
#[derive(Debug)]
pub struct Info {
    /// The AWS Config (CloudFormation) name, e.g. `AWS::S3::Bucket`; what manifests name.
    pub config_type: &'static str,
    /// The Security Hub ASFF `Resources[].Type` names that mean this type, e.g. `AwsS3Bucket`.
    pub asff_types: &'static [&'static str],
    /// The OCSF `resources[].type` Security Hub gives it (the same names as ASFF).
    pub ocsf_type: &'static str,
    /// Whether it is listed once per account or once per region.
    pub scope: Scope,
    /// What a person calls one (`security group`): "security group sg-… does not exist".
    pub noun: &'static str,
    /// The IAM permissions [`ResourceType::observe`] and [`ResourceType::enumerate`] need in
    /// the member account.
    pub read_permissions: &'static [&'static str],
}

/// One AWS resource type: its names, its ids, and how to read and list it in a member account.
/// `Clients` are those of the account and region the resource is in.
pub trait ResourceType: Send + Sync {
    /// Its names, scope and read permissions.
    fn info(&self) -> &'static Info;

    /// Whether an id has the form this type allows, so nothing else reaches an AWS call.
    fn valid_id(&self, id: &str) -> bool;

    /// Reads one resource live as the JSON object its scripts read, without the head fields,
    /// which [`observe`] adds. A resource that is not there is [`CloudError::NotFound`] (an
    /// empty `resource` is filled in with the type's noun and the id).
    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>>;

    /// [`ResourceType::observe`] for a remediation that may take the action kinds `kinds`: a
    /// type whose part is read by one more call that only some kinds need (a bucket's policy)
    /// reads it only for those, so the other remediations of the type pay nothing for it.
    fn observe_for<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
        kinds: &'a [String],
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        let _ = kinds;
        self.observe(clients, id)
    }

    /// Reads the resource back after the actions of kinds `applied` were applied to it, for
    /// the verification: a type that knows which of its parts those kinds change reads only
    /// those and takes the rest from `before` (the reading the plan was made from, without
    /// its `observed_at`), so a fix is checked with the fewest calls. By default the whole
    /// resource is read again, as [`ResourceType::observe_for`] with the remediation's kinds.
    fn reread<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
        kinds: &'a [String],
        before: &'a Value,
        applied: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        let _ = (before, applied);
        self.observe_for(clients, id, kinds)
    }

    /// Lists the id of every resource of this type in the clients' account and region.
    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>>;

    /// Why the resource, as observed, cannot be changed now (an RDS instance that is not
    /// `available`), or `None` when it can. A plan for a resource that is not ready is not
    /// applied: the job fails with this reason and its finding is retried later.
    fn not_ready(&self, _observed: &Value) -> Option<String> {
        None
    }

    /// Every id the resource, as observed, is named by where findings and operators differ
    /// (an IAM user's name and its unique id `AIDA…`): an exemption recorded under any of them
    /// holds. Empty for a type named one way only.
    fn names(&self, _observed: &Value) -> Vec<String> {
        Vec::new()
    }

    /// Whether `id` names the resource otherwise than by the first of its
    /// [`ResourceType::names`] (Config's `AIDA…` for an IAM user whose name the rest use). A
    /// finding naming it so is locked under the name [`ResourceType::lock_name`] looks up, so
    /// that findings naming one resource two ways never run at once.
    fn named_otherwise(&self, _id: &str) -> bool {
        false
    }

    /// The first of the resource's names, for an id [`ResourceType::named_otherwise`].
    fn lock_name<'a>(
        &'a self,
        _clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<String, CloudError>> {
        Box::pin(async move { Ok(id.to_string()) })
    }
}

/// The fields of `observed` that hold text, as names ([`ResourceType::names`]).
fn named_by(observed: &Value, fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .filter_map(|f| observed.get(*f).and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

/// Every resource type rectify knows, in the order error messages list them.
static REGISTRY: &[&dyn ResourceType] = &[
    &s3_bucket::S3Bucket,
    &security_group::SecurityGroup,
    &iam_user::IamUser,
    &vpc_endpoint::VpcEndpoint,
    &ec2_instance::Ec2Instance,
    &account::Account,
    &network_acl::NetworkAcl,
    &rds_instance::RdsInstance,
    &rds_snapshot::RdsSnapshot,
    &ecr_repository::EcrRepository,
    &kms_key::KmsKey,
    &cloudtrail_trail::CloudTrailTrail,
    &vpc::Vpc,
];

/// Reads a resource live, for a remediation whose manifest lists the action kinds `kinds` (see
/// [`ResourceType::observe_for`]), and returns the JSON shape its scripts read: the head
/// (`type`, `id`, `account`, `region`, `observed_at`), then the type's own fields.
pub async fn observe(
    cloud: &Cloud,
    account: &str,
    region: &str,
    resource_type: &str,
    id: &str,
    kinds: &[String],
) -> Result<Value, CloudError> {
    let rt = known(resource_type)?;
    let c = cloud.clients(account, region).await;
    let body = rt.observe_for(&c, id, kinds).await;
    shaped(rt, resource_type, account, region, id, body)
}

/// Reads a resource back after the actions of kinds `applied` (see [`ResourceType::reread`]),
/// in the shape [`observe`] returns; `before` is the reading the plan was made from.
pub async fn reread(
    cloud: &Cloud,
    resource_type: &str,
    before: &Value,
    kinds: &[String],
    applied: &[&str],
) -> Result<Value, CloudError> {
    let text = |k: &str| before.get(k).and_then(Value::as_str).unwrap_or_default();
    let (account, region, id) = (text("account"), text("region"), text("id"));
    let rt = known(resource_type)?;
    // The parts taken over keep their values; the time of the reading is now.
    let mut earlier = before.clone();
    if let Value::Object(fields) = &mut earlier {
        fields.remove("observed_at");
    }
    let c = cloud.clients(account, region).await;
    let body = rt.reread(&c, id, kinds, &earlier, applied).await;
    shaped(rt, resource_type, account, region, id, body)
}

fn known(resource_type: &str) -> Result<&'static dyn ResourceType, CloudError> {
    lookup(resource_type).ok_or_else(|| {
        CloudError::Unsupported(format!(
            "rectify cannot observe resources of type {resource_type}"
        ))
    })
}

/// A reading's shape: the head (`type`, `id`, `account`, `region`, `observed_at`), then the
/// type's own fields.
fn shaped(
    rt: &dyn ResourceType,
    resource_type: &str,
    account: &str,
    region: &str,
    id: &str,
    body: Result<Value, CloudError>,
) -> Result<Value, CloudError> {
    let body = match body {
        Err(CloudError::NotFound { resource }) if resource.is_empty() => {
            return Err(CloudError::NotFound {
                resource: format!("{} {id}", rt.info().noun),
            });
        }
        other => other?,
    };
    let mut shape = serde_json::json!({
        "type": resource_type,
        "id": id,
        "account": account,
        "region": region,
        "observed_at": crate::clock::now_text(),
    });
    if let (Value::Object(head), Value::Object(fields)) = (&mut shape, body) {
        head.extend(fields);
    }
    Ok(shape)
}

/// Every id a resource of this type, as observed, is named by ([`ResourceType::names`]).
pub fn names(resource_type: &str, observed: &Value) -> Vec<String> {
    lookup(resource_type).map_or_else(Vec::new, |rt| rt.names(observed))
}

/// The resource as it matters for a comparison: without the observation time, with security
/// group rules (ingress and egress) compared by content, not by id, and with secrets redacted as the jobs table
/// stores them (so a live state compares equal to its stored copy).
pub fn comparable(resource: &Value) -> Value {
    let mut v = resource.clone();
    crate::redact::redact(&mut v);
    if let Value::Object(m) = &mut v {
        m.remove("observed_at");
        for list in ["ingress_rules", "egress_rules"] {
            if let Some(Value::Array(rules)) = m.get_mut(list) {
                for r in rules.iter_mut() {
                    if let Value::Object(r) = r {
                        r.remove("rule_id");
                    }
                }
                rules.sort_by_key(|r| {
                    serde_json::to_string(&crate::action::canonical_value(r)).unwrap_or_default()
                });
            }
        }
    }
    crate::action::canonical_value(&v)
}

/// The name a resource of this type, as observed, is locked under: the first of its
/// [`ResourceType::names`], or `id` for a type named one way.
pub fn lock_name_of(resource_type: &str, id: &str, observed: &Value) -> String {
    names(resource_type, observed)
        .into_iter()
        .next()
        .unwrap_or_else(|| id.to_string())
}

/// Why a resource of this type, as observed, cannot be changed now ([`ResourceType::not_ready`]).
pub fn not_ready(resource_type: &str, observed: &Value) -> Option<String> {
    lookup(resource_type).and_then(|rt| rt.not_ready(observed))
}

/// A role rectify uses in member accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    /// The worker's role (`rectify-remediation`): it reads and tightens, never loosens.
    Worker,
    /// The operator's role (`rectify-operator`) that undo assumes: it reads and holds the
    /// inverses.
    Operator,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MemberRole::Worker => "worker",
            MemberRole::Operator => "operator",
        }
    }
}

/// What a member-account role must allow: every type's reads, and the calls of the action kinds
/// a plan may use (the worker) or of the kinds that are inverses (the operator), sorted, once
/// each. IAM grants a call, not a value: `s3:PutBucketPublicAccessBlock`,
/// `iam:UpdateAccessKey` and `ecr:PutImageScanningConfiguration` serve both directions, so the
/// worker's role holds them and the typed action layer holds the direction (see
/// [`crate::action::bind`]).
pub fn member_permissions(role: MemberRole) -> Vec<&'static str> {
    let held = |k: &crate::action::ActionKind| match role {
        MemberRole::Worker => k.in_plans,
        MemberRole::Operator => k.is_inverse,
    };
    let kinds: Vec<&crate::action::ActionKind> = crate::action::ACTION_KINDS
        .iter()
        .filter(|k| held(k))
        .collect();
    // A kind's call may need more than its own permission (see FURTHER_PERMISSIONS).
    let further = crate::action::FURTHER_PERMISSIONS
        .iter()
        .filter(|(kind, _)| kinds.iter().any(|k| k.kind == *kind))
        .map(|(_, p)| *p);
    // `sweep --all-regions` reads each account's enabled regions through the worker's role.
    let sweep = match role {
        MemberRole::Worker => SWEEP_PERMISSIONS,
        MemberRole::Operator => &[],
    };
    let mut all: Vec<&'static str> = read_permissions()
        .into_iter()
        .chain(kinds.iter().map(|k| k.permission))
        .chain(further)
        .chain(sweep.iter().copied())
        .collect();
    all.sort_unstable();
    all.dedup();
    all
}

/// What the sweep reads in a member account beyond the resource types' own reads.
pub const SWEEP_PERMISSIONS: &[&str] = &["ec2:DescribeRegions"];

/// The resource type with this Config name (`AWS::S3::Bucket`), if rectify knows it.
pub fn lookup(config_type: &str) -> Option<&'static dyn ResourceType> {
    REGISTRY
        .iter()
        .copied()
        .find(|r| r.info().config_type == config_type)
}

/// The resource type a Security Hub ASFF type (`AwsIamAccessKey`) belongs to, if rectify knows it.
pub fn from_asff(asff_type: &str) -> Option<&'static dyn ResourceType> {
    REGISTRY
        .iter()
        .copied()
        .find(|r| r.info().asff_types.contains(&asff_type))
}

/// The Config names of every registered type, for messages that list what is known.
pub fn config_types() -> Vec<&'static str> {
    REGISTRY.iter().map(|r| r.info().config_type).collect()
}

/// The read permissions of every type, once each, grouped by service in registry order (so one
/// service's calls stand together when listed for a person).
pub fn read_permissions() -> Vec<&'static str> {
    let service = |p: &str| p.split_once(':').map_or(p, |(s, _)| s).to_string();
    let mut services: Vec<String> = Vec::new();
    let mut all: Vec<&'static str> = Vec::new();
    for p in REGISTRY.iter().flat_map(|r| r.info().read_permissions) {
        if !services.contains(&service(p)) {
            services.push(service(p));
        }
        if !all.contains(p) {
            all.push(p);
        }
    }
    all.sort_by_key(|p| services.iter().position(|s| *s == service(p)));
    all
}

/// Lists the ids of every resource of a type in an account and region.
pub async fn enumerate(
    cloud: &Cloud,
    account: &str,
    region: &str,
    resource_type: &str,
) -> Result<Vec<String>, CloudError> {
    let rt = lookup(resource_type).ok_or_else(|| {
        CloudError::Unsupported(format!("rectify cannot enumerate {resource_type}"))
    })?;
    let clients = cloud.clients(account, region).await;
    rt.enumerate(&clients).await
}

/// Whether `id` is an account id: twelve digits.
pub(crate) fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `id` is `prefix` followed by 8 to 17 lower-case hex digits (the EC2 id form).
pub(crate) fn is_hex_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|h| {
        (8..=17).contains(&h.len())
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Resource tags as a JSON object.
pub(crate) fn tag_map<'a>(tags: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    Value::Object(
        tags.map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
            .collect(),
    )
}

/// A resource that is not there (named by [`observe`]).
pub(crate) fn gone() -> CloudError {
    CloudError::NotFound {
        resource: String::new(),
    }
}

/// Turns an error whose AWS code means "no such resource" into [`gone`].
pub(crate) fn not_found(e: CloudError, codes: &[&str]) -> CloudError {
    if e.is(codes) { gone() } else { e }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MALFORMED_ID: &str = "malformed";

    #[test]
    fn every_type_is_found_by_its_config_and_asff_names_and_only_once() {
        for r in REGISTRY {
            let info = r.info();
            assert!(!info.asff_types.is_empty(), "{}", info.config_type);
            assert!(std::ptr::eq(
                lookup(info.config_type).expect("registered").info(),
                info
            ));
            for asff in info.asff_types {
                assert!(
                    std::ptr::eq(from_asff(asff).expect("registered").info(), info),
                    "{asff}"
                );
            }
            assert!(
                info.asff_types.contains(&info.ocsf_type),
                "{}",
                info.config_type
            );
        }
        let names = config_types();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len(), "one registration per type");
        assert!(lookup("AWS::Nope::Thing").is_none());
        assert!(from_asff("AwsNopeThing").is_none());
    }

    #[test]
    fn asff_types_map_as_before() {
        for (asff, config) in [
            ("AwsS3Bucket", "AWS::S3::Bucket"),
            ("AwsEc2SecurityGroup", "AWS::EC2::SecurityGroup"),
            ("AwsIamUser", "AWS::IAM::User"),
            ("AwsIamAccessKey", "AWS::IAM::User"),
            ("AwsEc2VpcEndpointService", "AWS::EC2::VPCEndpoint"),
            ("AwsEc2Instance", "AWS::EC2::Instance"),
            ("AwsAccount", "AWS::::Account"),
            ("AwsEc2NetworkAcl", "AWS::EC2::NetworkAcl"),
            ("AwsRdsDbInstance", "AWS::RDS::DBInstance"),
            ("AwsRdsDbSnapshot", "AWS::RDS::DBSnapshot"),
            ("AwsEcrRepository", "AWS::ECR::Repository"),
            ("AwsKmsKey", "AWS::KMS::Key"),
            ("AwsCloudTrailTrail", "AWS::CloudTrail::Trail"),
        ] {
            assert_eq!(from_asff(asff).map(|r| r.info().config_type), Some(config));
        }
    }

    #[test]
    fn scopes() {
        let scope = |t| lookup(t).expect("registered").info().scope;
        assert_eq!(scope("AWS::S3::Bucket"), Scope::Regional);
        assert_eq!(scope("AWS::IAM::User"), Scope::Global);
        assert_eq!(scope("AWS::EC2::SecurityGroup"), Scope::Regional);
        assert_eq!(scope("AWS::EC2::VPCEndpoint"), Scope::Regional);
        assert_eq!(scope("AWS::EC2::Instance"), Scope::Regional);
        // EBS encryption by default is a setting of each region.
        assert_eq!(scope("AWS::::Account"), Scope::Regional);
        assert_eq!(scope("AWS::EC2::NetworkAcl"), Scope::Regional);
        assert_eq!(scope("AWS::RDS::DBInstance"), Scope::Regional);
        assert_eq!(scope("AWS::RDS::DBSnapshot"), Scope::Regional);
        assert_eq!(scope("AWS::ECR::Repository"), Scope::Regional);
        assert_eq!(scope("AWS::KMS::Key"), Scope::Regional);
        // A trail is changed in its home region.
        assert_eq!(scope("AWS::CloudTrail::Trail"), Scope::Regional);
    }

    #[test]
    fn the_worker_role_reads_each_accounts_enabled_regions_for_the_sweep() {
        assert!(member_permissions(MemberRole::Worker).contains(&"ec2:DescribeRegions"));
        assert!(!member_permissions(MemberRole::Operator).contains(&"ec2:DescribeRegions"));
    }

    #[test]
    fn the_worker_role_only_tightens_and_the_operator_role_holds_the_inverses() {
        let worker = member_permissions(MemberRole::Worker);
        let operator = member_permissions(MemberRole::Operator);
        assert!(!worker.contains(&"ec2:AuthorizeSecurityGroupIngress"));
        assert!(!worker.contains(&"ec2:AuthorizeSecurityGroupEgress"));
        assert!(!worker.contains(&"ec2:CreateNetworkAclEntry"));
        assert!(worker.contains(&"ec2:RevokeSecurityGroupEgress"));
        assert!(worker.contains(&"ec2:DeleteNetworkAclEntry"));
        assert!(operator.contains(&"ec2:AuthorizeSecurityGroupEgress"));
        assert!(operator.contains(&"ec2:CreateNetworkAclEntry"));
        // A trail is started and created by a fix, stopped and deleted only by undo.
        for tighten in ["cloudtrail:StartLogging", "cloudtrail:CreateTrail"] {
            assert!(worker.contains(&tighten), "{tighten}");
        }
        for loosen in ["cloudtrail:StopLogging", "cloudtrail:DeleteTrail"] {
            assert!(!worker.contains(&loosen), "{loosen}");
            assert!(operator.contains(&loosen), "{loosen}");
        }
        assert!(!operator.contains(&"cloudtrail:CreateTrail"));
        assert!(!operator.contains(&"ec2:DeleteNetworkAclEntry"));
        assert!(worker.contains(&"ec2:RevokeSecurityGroupIngress"));
        assert!(operator.contains(&"ec2:AuthorizeSecurityGroupIngress"));
        assert!(!operator.contains(&"ec2:RevokeSecurityGroupIngress"));
        for read in read_permissions() {
            assert!(worker.contains(&read) && operator.contains(&read), "{read}");
        }
    }

    #[test]
    fn read_permissions_are_what_the_observers_always_read() {
        let expected = vec![
            "s3:GetBucketPublicAccessBlock",
            "s3:GetBucketTagging",
            "s3:ListAllMyBuckets",
            "s3:GetBucketPolicy",
            "s3:GetAccountPublicAccessBlock",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeSecurityGroupRules",
            "ec2:DescribeNetworkInterfaces",
            "ec2:DescribeVpcEndpoints",
            "ec2:DescribeInstances",
            "ec2:GetEbsEncryptionByDefault",
            "ec2:DescribeNetworkAcls",
            "ec2:DescribeVpcs",
            "ec2:DescribeFlowLogs",
            "iam:GetUser",
            "iam:ListUsers",
            "iam:ListAccessKeys",
            "iam:GetAccessKeyLastUsed",
            "iam:ListUserTags",
            "iam:GetAccountPasswordPolicy",
            "cloudtrail:DescribeTrails",
            "cloudtrail:GetTrailStatus",
            "cloudtrail:ListTags",
            "config:DescribeConfigurationRecorders",
            "config:DescribeConfigurationRecorderStatus",
            "config:DescribeDeliveryChannels",
            "guardduty:ListDetectors",
            "guardduty:GetDetector",
            "rds:DescribeDBInstances",
            "rds:DescribeDBSnapshots",
            "rds:DescribeDBSnapshotAttributes",
            "ecr:DescribeRepositories",
            "ecr:ListTagsForResource",
            "kms:ListKeys",
            "kms:DescribeKey",
            "kms:GetKeyRotationStatus",
            "kms:ListResourceTags",
        ];
        // Listed for people grouped by service, in this order.
        assert_eq!(read_permissions(), expected);
    }

    #[test]
    fn ids_validate_by_type() {
        fn valid(t: &str, id: &str) -> Result<(), &'static str> {
            if lookup(t).expect("registered").valid_id(id) {
                Ok(())
            } else {
                Err(MALFORMED_ID)
            }
        }
        for ok in [
            "acme-reports-prod",
            "a.b-c",
            "Legacy_Bucket",
            "abc",
            "x2345678901234567890123456789012345678901234567890123456789012345",
        ] {
            assert_eq!(valid("AWS::S3::Bucket", ok), Ok(()), "{ok}");
        }
        for bad in [
            "ab", "../etc", "a..b", "-abc", ".abc", "a/b", "a b", "a\"b", "",
        ] {
            assert_eq!(valid("AWS::S3::Bucket", bad), Err(MALFORMED_ID), "{bad}");
        }
        assert_eq!(
            valid("AWS::S3::Bucket", &"a".repeat(256)),
            Err(MALFORMED_ID)
        );

        for (t, prefix) in [
            ("AWS::EC2::SecurityGroup", "sg-"),
            ("AWS::EC2::VPCEndpoint", "vpce-"),
            ("AWS::EC2::Instance", "i-"),
            ("AWS::EC2::NetworkAcl", "acl-"),
            ("AWS::EC2::VPC", "vpc-"),
        ] {
            for ok in ["0f9e8d7c", "0f9e8d7c6b5a43210"] {
                assert_eq!(valid(t, &format!("{prefix}{ok}")), Ok(()), "{t} {ok}");
            }
            for bad in ["0f9e8d7", "0f9e8d7c6b5a432100", "0F9E8D7C", "../../x", ""] {
                let id = format!("{prefix}{bad}");
                assert_eq!(valid(t, &id), Err(MALFORMED_ID), "{t} {id}");
            }
            assert_eq!(valid(t, "0f9e8d7c6b5a43210"), Err(MALFORMED_ID), "{t}");
        }
        assert_eq!(
            valid("AWS::EC2::Instance", "sg-0f9e8d7c"),
            Err(MALFORMED_ID)
        );

        for ok in ["AIDAEXAMPLE123", "alice", "svc+ci=x,y.z@corp_1-2"] {
            assert_eq!(valid("AWS::IAM::User", ok), Ok(()), "{ok}");
        }
        for bad in ["", "a/b", "a b", "a\\b", "a\"b"] {
            assert_eq!(valid("AWS::IAM::User", bad), Err(MALFORMED_ID), "{bad}");
        }
        assert_eq!(valid("AWS::IAM::User", &"a".repeat(129)), Err(MALFORMED_ID));

        assert_eq!(valid("AWS::::Account", "111122223333"), Ok(()));
        for bad in [
            "11112222333",
            "1111222233334",
            "11112222333x",
            "",
            "../../11112222",
        ] {
            assert_eq!(valid("AWS::::Account", bad), Err(MALFORMED_ID), "{bad}");
        }

        for ok in [
            "management-events",
            "arn:aws:cloudtrail:us-east-1:111122223333:trail/management-events",
        ] {
            assert_eq!(valid("AWS::CloudTrail::Trail", ok), Ok(()), "{ok}");
        }
        for bad in ["", "ab", "a/b", "../trail", "arn:aws:s3:::bucket"] {
            assert_eq!(
                valid("AWS::CloudTrail::Trail", bad),
                Err(MALFORMED_ID),
                "{bad}"
            );
        }
    }

    #[test]
    fn hex_ids() {
        assert!(is_hex_id("sg-01234567", "sg-"));
        assert!(!is_hex_id("sg-0123456", "sg-"));
        assert!(!is_hex_id("sg-0123456g", "sg-"));
        assert!(!is_hex_id("vpce-01234567", "sg-"));
    }
}
