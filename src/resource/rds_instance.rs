//! `AWS::RDS::DBInstance`: a database instance's status and whether it is publicly accessible.

use aws_sdk_rds::types::{DbInstance, Filter};
use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, gone, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// RDS database instances, per region.
pub struct RdsInstance;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::RDS::DBInstance",
    asff_types: &["AwsRdsDbInstance"],
    ocsf_type: "AwsRdsDbInstance",
    scope: Scope::Regional,
    noun: "db instance",
    read_permissions: &["rds:DescribeDBInstances"],
};

/// The status in which RDS accepts a modification.
const AVAILABLE: &str = "available";

impl ResourceType for RdsInstance {
    fn info(&self) -> &'static Info {
        &INFO
    }

    /// Config names an instance by its resource id (`db-…`), Security Hub and the sweep by its
    /// identifier.
    fn names(&self, observed: &Value) -> Vec<String> {
        super::named_by(observed, &["db_instance_identifier", "dbi_resource_id"])
    }

    /// The `db-…` resource id Config names an instance by; its identifier is read (one
    /// DescribeDBInstances).
    fn named_otherwise(&self, id: &str) -> bool {
        is_resource_id(id)
    }

    fn lock_name<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<String, CloudError>> {
        Box::pin(async move {
            let found = observe_instance(clients, id).await?;
            Ok(found["db_instance_identifier"]
                .as_str()
                .unwrap_or(id)
                .to_string())
        })
    }

    /// An instance identifier, or the `db-…` resource id AWS Config names an instance by.
    fn valid_id(&self, id: &str) -> bool {
        is_identifier(id, 63) || is_resource_id(id)
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_instance(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let instances = clients
                .get(aws_sdk_rds::Client::new)
                .describe_db_instances()
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("rds:DescribeDBInstances", e))?;
            Ok(instances
                .into_iter()
                .filter_map(|i| i.db_instance_identifier)
                .collect())
        })
    }

    /// RDS modifies only an `available` instance (one that is stopped, backing up, being
    /// modified or rebooted refuses or queues the change): until then nothing is attempted.
    fn not_ready(&self, observed: &Value) -> Option<String> {
        let status = observed
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        (status != AVAILABLE).then(|| {
            let id = observed
                .get("db_instance_identifier")
                .and_then(Value::as_str)
                .unwrap_or("?");
            format!(
                "db instance {id} is `{status}`, not `{AVAILABLE}`: nothing was changed; the finding is retried later, and acted on once the instance is `{AVAILABLE}`"
            )
        })
    }
}

/// Whether `id` is an RDS identifier: a letter, then letters, digits and single hyphens, not
/// ending in a hyphen, at most `max` characters.
pub(crate) fn is_identifier(id: &str, max: usize) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !id.contains("--")
        && !id.ends_with('-')
}

/// Whether `id` is an instance's resource id (`DbiResourceId`, `db-` and upper-case letters
/// and digits), which AWS Config uses as the resource id.
fn is_resource_id(id: &str) -> bool {
    id.strip_prefix("db-").is_some_and(|r| {
        (16..=32).contains(&r.len())
            && r.bytes()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    })
}

async fn observe_instance(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let gone_codes = ["DBInstanceNotFound", "DBInstanceNotFoundFault"];
    let call = c.get(aws_sdk_rds::Client::new).describe_db_instances();
    let call = if is_resource_id(id) {
        call.filters(Filter::builder().name("dbi-resource-id").values(id).build())
    } else {
        call.db_instance_identifier(id)
    };
    let out = call
        .send()
        .await
        .map_err(|e| not_found(classify("rds:DescribeDBInstances", e), &gone_codes))?;
    let instance = out
        .db_instances()
        .iter()
        .find(|i| {
            i.dbi_resource_id() == Some(id)
                || i.db_instance_identifier()
                    .is_some_and(|name| name.eq_ignore_ascii_case(id))
        })
        .ok_or_else(gone)?;
    Ok(shape(instance))
}

/// The JSON scripts read.
fn shape(i: &DbInstance) -> Value {
    json!({
        "db_instance_identifier": i.db_instance_identifier(),
        "dbi_resource_id": i.dbi_resource_id(),
        "arn": i.db_instance_arn(),
        "engine": i.engine(),
        "status": i.db_instance_status(),
        "publicly_accessible": i.publicly_accessible().unwrap_or(false),
        "tags": tag_map(i.tag_list().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_available_instance_is_ready() {
        let t = RdsInstance;
        assert_eq!(
            t.not_ready(&json!({"db_instance_identifier": "db1", "status": "available"})),
            None
        );
        for status in [
            "stopped",
            "modifying",
            "backing-up",
            "rebooting",
            "storage-full",
        ] {
            let why = t
                .not_ready(&json!({"db_instance_identifier": "db1", "status": status}))
                .expect(status);
            assert!(
                why.contains(&format!("db instance db1 is `{status}`")),
                "{why}"
            );
            assert!(why.contains("retried later"), "{why}");
        }
        assert!(
            t.not_ready(&json!({"db_instance_identifier": "db1"}))
                .is_some()
        );
    }

    #[test]
    fn identifiers_and_resource_ids() {
        let t = RdsInstance;
        for ok in ["db1", "orders-prod", "A", "db-ABCDEFGHIJKLMNOPQRSTUVWXY2"] {
            assert!(t.valid_id(ok), "{ok}");
        }
        for bad in [
            "",
            "1db",
            "db--1",
            "db-",
            "a_b",
            "a b",
            "../x",
            &"a".repeat(64),
        ] {
            assert!(!t.valid_id(bad), "{bad}");
        }
        assert!(is_resource_id("db-ABCDEFGHIJKLMNOPQRSTUVWXY2"));
        assert!(!is_resource_id("db-orders"));
    }
}
