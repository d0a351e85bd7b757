//! `AWS::RDS::DBSnapshot`: a database snapshot and whom its `restore` attribute shares it with.

use aws_sdk_rds::types::DbSnapshot;
use serde_json::{Value, json};

use super::rds_instance::is_identifier;
use super::{BoxFuture, Info, ResourceType, Scope, gone, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// RDS database snapshots, per region.
pub struct RdsSnapshot;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::RDS::DBSnapshot",
    asff_types: &["AwsRdsDbSnapshot"],
    ocsf_type: "AwsRdsDbSnapshot",
    scope: Scope::Regional,
    noun: "db snapshot",
    read_permissions: &[
        "rds:DescribeDBSnapshots",
        "rds:DescribeDBSnapshotAttributes",
    ],
};

impl ResourceType for RdsSnapshot {
    fn info(&self) -> &'static Info {
        &INFO
    }

    /// A snapshot identifier; an automated snapshot's starts with `rds:`.
    fn valid_id(&self, id: &str) -> bool {
        is_identifier(id.strip_prefix("rds:").unwrap_or(id), 255)
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_snapshot(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let snapshots = clients
                .get(aws_sdk_rds::Client::new)
                .describe_db_snapshots()
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("rds:DescribeDBSnapshots", e))?;
            Ok(snapshots
                .into_iter()
                .filter_map(|s| s.db_snapshot_identifier)
                .collect())
        })
    }
}

async fn observe_snapshot(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let gone_codes = ["DBSnapshotNotFound", "DBSnapshotNotFoundFault"];
    let rds = c.get(aws_sdk_rds::Client::new);
    let out = rds
        .describe_db_snapshots()
        .db_snapshot_identifier(id)
        .send()
        .await
        .map_err(|e| not_found(classify("rds:DescribeDBSnapshots", e), &gone_codes))?;
    let snapshot = out
        .db_snapshots()
        .iter()
        .find(|s| {
            s.db_snapshot_identifier()
                .is_some_and(|name| name.eq_ignore_ascii_case(id))
        })
        .ok_or_else(gone)?;
    let attributes = rds
        .describe_db_snapshot_attributes()
        .db_snapshot_identifier(id)
        .send()
        .await
        .map_err(|e| not_found(classify("rds:DescribeDBSnapshotAttributes", e), &gone_codes))?;
    let mut restore: Vec<String> = attributes
        .db_snapshot_attributes_result()
        .map(aws_sdk_rds::types::DbSnapshotAttributesResult::db_snapshot_attributes)
        .unwrap_or_default()
        .iter()
        .filter(|a| a.attribute_name() == Some("restore"))
        .flat_map(|a| a.attribute_values().iter().cloned())
        .collect();
    // Sorted and once each: AWS keeps the values as a set, so their order says nothing.
    restore.sort_unstable();
    restore.dedup();
    Ok(shape(snapshot, restore))
}

/// The JSON scripts read.
fn shape(s: &DbSnapshot, restore: Vec<String>) -> Value {
    json!({
        "db_snapshot_identifier": s.db_snapshot_identifier(),
        "db_instance_identifier": s.db_instance_identifier(),
        "arn": s.db_snapshot_arn(),
        "snapshot_type": s.snapshot_type(),
        "status": s.status(),
        "encrypted": s.encrypted(),
        "restore": restore,
        "tags": tag_map(s.tag_list().iter().map(|t| (t.key().unwrap_or_default(), t.value().unwrap_or_default()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_identifiers() {
        let t = RdsSnapshot;
        for ok in ["nightly-2026-11-30", "rds:orders-2026-11-30-03-10", "s"] {
            assert!(t.valid_id(ok), "{ok}");
        }
        for bad in ["", "rds:", "1snap", "snap--1", "snap-", "a/b", "rds:rds:x"] {
            assert!(!t.valid_id(bad), "{bad}");
        }
    }
}
