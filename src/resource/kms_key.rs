//! `AWS::KMS::Key`: a KMS key, who manages it, what kind of key it is, its state, and whether
//! its key material is rotated automatically.

use aws_sdk_kms::types::{
    KeyManagerType, KeyMetadata, KeySpec, KeyState, KeyUsageType, OriginType,
};
use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// KMS keys, per region.
pub struct KmsKey;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::KMS::Key",
    asff_types: &["AwsKmsKey"],
    ocsf_type: "AwsKmsKey",
    scope: Scope::Regional,
    noun: "kms key",
    read_permissions: &[
        "kms:ListKeys",
        "kms:DescribeKey",
        "kms:GetKeyRotationStatus",
        "kms:ListResourceTags",
    ],
};

impl ResourceType for KmsKey {
    fn info(&self) -> &'static Info {
        &INFO
    }

    /// A key id, as AWS Config names a key (Security Hub's key ARN gives it too): a UUID, or
    /// `mrk-` and 32 hex digits for a multi-Region key.
    fn valid_id(&self, id: &str) -> bool {
        is_key_id(id)
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_key(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let keys = clients
                .get(aws_sdk_kms::Client::new)
                .list_keys()
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("kms:ListKeys", e))?;
            Ok(keys.into_iter().filter_map(|k| k.key_id).collect())
        })
    }
}

/// Whether `id` is a KMS key id: a lower-case UUID (8-4-4-4-12 hex digits), or `mrk-` and 32
/// lower-case hex digits.
fn is_key_id(id: &str) -> bool {
    let hex = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if let Some(rest) = id.strip_prefix("mrk-") {
        return rest.len() == 32 && hex(rest);
    }
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && hex(g))
}

/// Whether rotation is a setting of this key: a customer-managed, symmetric encryption key
/// whose material KMS generated, enabled or disabled. AWS refuses GetKeyRotationStatus for
/// the others (asymmetric, HMAC, imported material, custom key stores), and rotates
/// AWS-managed keys itself.
fn rotation_is_readable(m: &KeyMetadata) -> bool {
    m.key_manager() == Some(&KeyManagerType::Customer)
        && m.key_spec() == Some(&KeySpec::SymmetricDefault)
        && m.origin() == Some(&OriginType::AwsKms)
        && matches!(m.key_state(), Some(KeyState::Enabled | KeyState::Disabled))
}

async fn observe_key(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let gone_codes = ["NotFoundException"];
    let kms = c.get(aws_sdk_kms::Client::new);
    // A bare key id names a key of the clients' own account and region.
    let out = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .map_err(|e| not_found(classify("kms:DescribeKey", e), &gone_codes))?;
    let Some(meta) = out.key_metadata() else {
        return Err(super::gone());
    };
    let rotation = if rotation_is_readable(meta) {
        let status = kms
            .get_key_rotation_status()
            .key_id(id)
            .send()
            .await
            .map_err(|e| not_found(classify("kms:GetKeyRotationStatus", e), &gone_codes))?;
        Some(status.key_rotation_enabled())
    } else {
        None
    };
    // AWS-managed keys carry no tags of the account's.
    let tags: Vec<(String, String)> = if meta.key_manager() == Some(&KeyManagerType::Customer) {
        kms.list_resource_tags()
            .key_id(id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| not_found(classify("kms:ListResourceTags", e), &gone_codes))?
            .into_iter()
            .map(|t| (t.tag_key().to_string(), t.tag_value().to_string()))
            .collect()
    } else {
        Vec::new()
    };
    Ok(shape(meta, rotation, &tags))
}

/// The JSON scripts read; `rotation_enabled` is `null` where rotation is not a setting of the
/// key (see [`rotation_is_readable`]).
fn shape(m: &KeyMetadata, rotation: Option<bool>, tags: &[(String, String)]) -> Value {
    json!({
        "key_id": m.key_id(),
        "arn": m.arn(),
        "key_manager": m.key_manager().map(KeyManagerType::as_str),
        "key_spec": m.key_spec().map(KeySpec::as_str),
        "key_usage": m.key_usage().map(KeyUsageType::as_str),
        "key_state": m.key_state().map(KeyState::as_str),
        "origin": m.origin().map(OriginType::as_str),
        "enabled": m.enabled(),
        "multi_region": m.multi_region().unwrap_or(false),
        "rotation_enabled": rotation,
        "tags": tag_map(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids() {
        let t = KmsKey;
        for ok in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
        ] {
            assert!(t.valid_id(ok), "{ok}");
        }
        for bad in [
            "",
            "1234ABCD-12AB-34CD-56EF-1234567890AB",
            "1234abcd-12ab-34cd-56ef-1234567890a",
            "1234abcd12ab34cd56ef1234567890ab",
            "1234abcd-12ab-34cd-56ef-1234567890ab-",
            "mrk-1234abcd",
            "alias/aws/s3",
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "../x",
        ] {
            assert!(!t.valid_id(bad), "{bad}");
        }
    }

    #[test]
    fn rotation_is_read_only_where_it_is_a_setting_of_the_key() {
        let key = |manager, spec, origin, state| {
            KeyMetadata::builder()
                .key_id("k")
                .key_manager(manager)
                .key_spec(spec)
                .origin(origin)
                .key_state(state)
                .build()
                .unwrap()
        };
        let customer = KeyManagerType::Customer;
        let symmetric = KeySpec::SymmetricDefault;
        let kms = OriginType::AwsKms;
        assert!(rotation_is_readable(&key(
            customer.clone(),
            symmetric.clone(),
            kms.clone(),
            KeyState::Enabled
        )));
        assert!(rotation_is_readable(&key(
            customer.clone(),
            symmetric.clone(),
            kms.clone(),
            KeyState::Disabled
        )));
        for m in [
            key(
                KeyManagerType::Aws,
                symmetric.clone(),
                kms.clone(),
                KeyState::Enabled,
            ),
            key(
                customer.clone(),
                KeySpec::Rsa2048,
                kms.clone(),
                KeyState::Enabled,
            ),
            key(
                customer.clone(),
                KeySpec::Hmac256,
                kms.clone(),
                KeyState::Enabled,
            ),
            key(
                customer.clone(),
                symmetric.clone(),
                OriginType::External,
                KeyState::Enabled,
            ),
            key(customer, symmetric, kms, KeyState::PendingDeletion),
        ] {
            assert!(!rotation_is_readable(&m), "{m:?}");
        }
    }
}
