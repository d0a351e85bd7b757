//! Metrics as CloudWatch Embedded Metric Format: one JSON line on stdout per thing that happens.
//! On ECS the awslogs driver ships stdout to CloudWatch Logs, which turns these lines into
//! metrics in the `rectify` namespace without any API call from the worker. Off unless
//! `RECTIFY_METRICS=emf` (the container image sets it).

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns metric lines on or off (`RECTIFY_METRICS=emf` turns them on at start-up).
pub fn init_from_env() {
    let on = std::env::var("RECTIFY_METRICS").is_ok_and(|v| v.eq_ignore_ascii_case("emf"));
    ENABLED.store(on, Ordering::Relaxed);
}

/// One EMF line: `dimensions` name the dimension fields, `metrics` are (name, unit, value).
pub fn line(dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]) -> Value {
    let mut doc = json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": "rectify",
                "Dimensions": [dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": metrics.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
            }]
        }
    });
    for (k, v) in dimensions {
        doc[*k] = json!(v);
    }
    for (n, _, v) in metrics {
        doc[*n] = json!(v);
    }
    doc
}

fn emit(dimensions: &[(&str, &str)], metrics: &[(&str, &str, f64)]) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let text = line(dimensions, metrics).to_string();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// A message was received and decoded into findings (or was poison).
pub fn finding_received(source: &str) {
    emit(&[("source", source)], &[("FindingsReceived", "Count", 1.0)]);
}

/// A job ended: by remediation and outcome, with how long planning and applying took.
pub fn job_ended(remediation: &str, outcome: &str, plan_ms: f64, apply_ms: f64) {
    emit(
        &[("remediation", remediation), ("outcome", outcome)],
        &[
            ("Jobs", "Count", 1.0),
            ("PlanLatency", "Milliseconds", plan_ms),
            ("ApplyLatency", "Milliseconds", apply_ms),
        ],
    );
}

/// A job's outcome could not be written back to its Security Hub finding.
pub fn securityhub_update_failed(remediation: &str) {
    emit(
        &[("remediation", remediation)],
        &[("SecurityHubUpdateFailed", "Count", 1.0)],
    );
}

/// A poison message was sent to the DLQ.
pub fn dlq_sent() {
    emit(&[("queue", "dlq")], &[("DeadLettered", "Count", 1.0)]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_embedded_metric_format() {
        let v = line(
            &[
                ("remediation", "s3-block-public-access"),
                ("outcome", "applied"),
            ],
            &[("Jobs", "Count", 1.0)],
        );
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "rectify");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            json!(["remediation", "outcome"])
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0],
            json!({"Name": "Jobs", "Unit": "Count"})
        );
        assert_eq!(v["remediation"], "s3-block-public-access");
        assert_eq!(v["Jobs"], 1.0);
        assert!(v["_aws"]["Timestamp"].as_i64().unwrap() > 0);
    }
}
