//! An account's GuardDuty detectors in one region (GuardDuty allows one per account and
//! region): `{"detectors": [{"id", "status"}]}`, the list empty where GuardDuty was never
//! turned on. Only the status is read; a remediation sends nothing else of a detector.

use serde_json::{Value, json};

use crate::cloud::{Clients, CloudError, classify};

/// The region's detectors, each with its status (`ENABLED` or `DISABLED`).
pub(super) async fn read(c: &Clients) -> Result<Value, CloudError> {
    let guardduty = c.get(aws_sdk_guardduty::Client::new);
    let ids: Vec<String> = guardduty
        .list_detectors()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify("guardduty:ListDetectors", e))?;
    let mut detectors = Vec::with_capacity(ids.len());
    for id in ids {
        let detector = guardduty
            .get_detector()
            .detector_id(&id)
            .send()
            .await
            .map_err(|e| classify("guardduty:GetDetector", e))?;
        detectors.push(json!({
            "id": id,
            "status": detector.status().map(aws_sdk_guardduty::types::DetectorStatus::as_str),
        }));
    }
    Ok(json!({ "detectors": detectors }))
}
