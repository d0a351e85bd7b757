//! `AWS::::Account`: settings that belong to an account rather than to one of its resources.
//!
//! Config and Security Hub name the account itself as the resource (its id is the account id):
//! the account's S3 Public Access Block, which is one setting for the whole account (S3 Control,
//! reached from any region), and EBS encryption by default, which is one setting per region;
//! likewise the IAM password policy (one per account) and AWS Config's recorder (per region).
//! So the type is regional (listed once in each region, where its regional settings live), and a
//! remediation of an account-wide setting says `scope = "account"` in its manifest: it is swept
//! once per account and its jobs in every region share one lock.
//!
//! An account has many settings, each read by its own calls and changed by its own remediation:
//! each is one [`Part`] (in [`PARTS`], one file in this folder when it needs more than a few
//! lines), read only for a remediation whose action kinds change it. The observed shape is
//! `account_id` and one field per part read.

mod cloudtrail;

mod config_recorder;
mod password_policy;

use aws_sdk_s3control::types::PublicAccessBlockConfiguration as Block;
use serde_json::{Value, json};

mod guardduty;

use super::{BoxFuture, Info, ResourceType, Scope, gone, is_account_id};
use crate::cloud::{Clients, CloudError, classify, s3control_client};

/// An account, in one region.
pub struct Account;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::::Account",
    asff_types: &["AwsAccount"],
    ocsf_type: "AwsAccount",
    scope: Scope::Regional,
    noun: "account",
    read_permissions: &[
        "s3:GetAccountPublicAccessBlock",
        "ec2:GetEbsEncryptionByDefault",
        "cloudtrail:DescribeTrails",
        "cloudtrail:GetTrailStatus",
        "iam:GetAccountPasswordPolicy",
        "config:DescribeConfigurationRecorders",
        "config:DescribeConfigurationRecorderStatus",
        "config:DescribeDeliveryChannels",
        "guardduty:ListDetectors",
        "guardduty:GetDetector",
    ],
};

impl ResourceType for Account {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn valid_id(&self, id: &str) -> bool {
        is_account_id(id)
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_account(clients, id, PARTS.iter().collect()))
    }

    fn observe_for<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
        kinds: &'a [String],
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_account(clients, id, parts_for(kinds)))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        // The clients' own account, and only it: one account per account and region.
        Box::pin(async move { Ok(vec![clients.account().to_string()]) })
    }
}

/// One setting of an account: the field of the observed shape it fills, the action kinds that
/// change it (a remediation taking any of them reads it), and how it is read (`null` when the
/// account has none of it).
pub(crate) struct Part {
    pub field: &'static str,
    pub kinds: &'static [&'static str],
    pub read: for<'a> fn(&'a Clients, &'a str) -> BoxFuture<'a, Result<Value, CloudError>>,
}

/// Every part of an account rectify reads, in the order of the observed shape.
static PARTS: &[Part] = &[
    Part {
        field: "public_access_block",
        kinds: &[
            "s3control:PutPublicAccessBlock",
            "s3control:DeletePublicAccessBlock",
        ],
        read: |c, id| Box::pin(read_public_access_block(c, id)),
    },
    Part {
        field: "ebs_encryption_by_default",
        kinds: &[
            "ec2:EnableEbsEncryptionByDefault",
            "ec2:DisableEbsEncryptionByDefault",
        ],
        read: |c, _| Box::pin(read_ebs_encryption_by_default(c)),
    },
    Part {
        field: "trails",
        kinds: &[
            "cloudtrail:StartLogging",
            "cloudtrail:StopLogging",
            "cloudtrail:CreateTrail",
            "cloudtrail:DeleteTrail",
        ],
        read: |c, _| Box::pin(cloudtrail::read_trails(c)),
    },
    Part {
        field: "password_policy",
        kinds: &[
            "iam:UpdateAccountPasswordPolicy",
            "iam:DeleteAccountPasswordPolicy",
        ],
        read: |c, _| Box::pin(password_policy::read(c)),
    },
    Part {
        field: "config_recorder",
        kinds: &[
            "config:PutConfigurationRecorder",
            "config:DeleteConfigurationRecorder",
            "config:PutDeliveryChannel",
            "config:DeleteDeliveryChannel",
            "config:StartConfigurationRecorder",
            "config:StopConfigurationRecorder",
        ],
        read: |c, _| Box::pin(config_recorder::read(c)),
    },
    Part {
        field: "guardduty",
        kinds: &[
            "guardduty:CreateDetector",
            "guardduty:UpdateDetector",
            "guardduty:DeleteDetector",
        ],
        read: |c, _| Box::pin(guardduty::read(c)),
    },
];

/// The parts a remediation taking the action kinds `kinds` reads.
fn parts_for(kinds: &[String]) -> Vec<&'static Part> {
    PARTS
        .iter()
        .filter(|p| kinds.iter().any(|k| p.kinds.contains(&k.as_str())))
        .collect()
}

async fn observe_account(
    c: &Clients,
    id: &str,
    parts: Vec<&'static Part>,
) -> Result<Value, CloudError> {
    // The clients act in one account; another account's settings are not reachable from it.
    if id != c.account() {
        return Err(gone());
    }
    let mut shape = serde_json::Map::new();
    shape.insert("account_id".into(), json!(id));
    for part in parts {
        shape.insert(part.field.into(), (part.read)(c, id).await?);
    }
    Ok(Value::Object(shape))
}

async fn read_public_access_block(c: &Clients, id: &str) -> Result<Value, CloudError> {
    match c
        .get(s3control_client)
        .get_public_access_block()
        .account_id(id)
        .send()
        .await
    {
        Ok(out) => Ok(json!(
            out.public_access_block_configuration().map(block_json)
        )),
        Err(e) => match classify("s3:GetAccountPublicAccessBlock", e) {
            e if e.is(&["NoSuchPublicAccessBlockConfiguration"]) => Ok(Value::Null),
            e => Err(e),
        },
    }
}

async fn read_ebs_encryption_by_default(c: &Clients) -> Result<Value, CloudError> {
    let ebs = c
        .get(aws_sdk_ec2::Client::new)
        .get_ebs_encryption_by_default()
        .send()
        .await
        .map_err(|e| classify("ec2:GetEbsEncryptionByDefault", e))?;
    Ok(json!(ebs.ebs_encryption_by_default().unwrap_or(false)))
}

fn block_json(b: &Block) -> Value {
    json!({
        "block_public_acls": b.block_public_acls().unwrap_or(false),
        "ignore_public_acls": b.ignore_public_acls().unwrap_or(false),
        "block_public_policy": b.block_public_policy().unwrap_or(false),
        "restrict_public_buckets": b.restrict_public_buckets().unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remediation_reads_only_the_parts_its_kinds_change() {
        let fields = |kinds: &[&str]| {
            let kinds: Vec<String> = kinds.iter().map(ToString::to_string).collect();
            parts_for(&kinds)
                .iter()
                .map(|p| p.field)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            fields(&["ec2:EnableEbsEncryptionByDefault"]),
            ["ebs_encryption_by_default"]
        );
        assert_eq!(
            fields(&["s3control:PutPublicAccessBlock"]),
            ["public_access_block"]
        );
        assert!(fields(&["s3:PutPublicAccessBlock"]).is_empty());
        assert_eq!(fields(&["cloudtrail:StartLogging"]), ["trails"]);
        // A trail's own settings are the trail type's, not the account's.
        assert!(fields(&["cloudtrail:UpdateTrail"]).is_empty());
        assert_eq!(
            fields(&["iam:UpdateAccountPasswordPolicy"]),
            ["password_policy"]
        );
        assert_eq!(
            fields(&[
                "config:PutConfigurationRecorder",
                "config:PutDeliveryChannel",
                "config:StartConfigurationRecorder"
            ]),
            ["config_recorder"]
        );
    }

    #[test]
    fn every_kind_of_a_part_is_an_action_kind() {
        for part in PARTS {
            for kind in part.kinds {
                assert!(
                    crate::action::ACTION_KINDS.iter().any(|k| k.kind == *kind),
                    "{kind}"
                );
            }
        }
    }

    #[test]
    fn an_account_id_is_twelve_digits() {
        assert!(is_account_id("111122223333"));
        for bad in [
            "11112222333",
            "1111222233334",
            "11112222333a",
            "",
            "../111122223",
        ] {
            assert!(!is_account_id(bad), "{bad}");
        }
    }
}
