//! `AWS::::Account`: settings that belong to an account rather than to one of its resources.
//!
//! Config and Security Hub name the account itself as the resource (its id is the account id):
//! the account's S3 Public Access Block, which is one setting for the whole account (S3 Control,
//! reached from any region), and EBS encryption by default, which is one setting per region.
//! So the type is regional (listed once in each region, where its EBS setting lives), and a
//! remediation of an account-wide setting says `scope = "account"` in its manifest: it is swept
//! once per account and its jobs in every region share one lock.

use aws_sdk_s3control::types::PublicAccessBlockConfiguration as Block;
use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, gone};
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
    ],
};

/// Whether `id` is an account id: twelve digits.
pub(crate) fn is_account_id(id: &str) -> bool {
    id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit())
}

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
        Box::pin(observe_account(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        // The clients' own account, and only it: one account per account and region.
        Box::pin(async move { Ok(vec![clients.account().to_string()]) })
    }
}

async fn observe_account(c: &Clients, id: &str) -> Result<Value, CloudError> {
    // The clients act in one account; another account's settings are not reachable from it.
    if id != c.account() {
        return Err(gone());
    }
    let block = match c
        .get(s3control_client)
        .get_public_access_block()
        .account_id(id)
        .send()
        .await
    {
        Ok(out) => out.public_access_block_configuration().map(block_json),
        Err(e) => match classify("s3:GetAccountPublicAccessBlock", e) {
            e if e.is(&["NoSuchPublicAccessBlockConfiguration"]) => None,
            e => return Err(e),
        },
    };
    let ebs = c
        .get(aws_sdk_ec2::Client::new)
        .get_ebs_encryption_by_default()
        .send()
        .await
        .map_err(|e| classify("ec2:GetEbsEncryptionByDefault", e))?;
    Ok(json!({
        "account_id": id,
        "public_access_block": block,
        "ebs_encryption_by_default": ebs.ebs_encryption_by_default().unwrap_or(false),
    }))
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
