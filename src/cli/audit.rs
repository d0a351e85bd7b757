//! `rectify audit`: list, show, verify and export the audit trail.

use clap::Subcommand;

use super::{Failure, Result, print_json};
use crate::app::{aws_config, store};
use crate::audit::{self, Record};
use crate::config::Config;
use crate::render;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Audit records, oldest first.
    List {
        /// Only records about this resource id.
        #[arg(long)]
        resource: Option<String>,
        /// Only records of this remediation.
        #[arg(long)]
        remediation: Option<String>,
        /// Only records at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One record in full.
    Show {
        /// The record id (see `rectify audit list`).
        id: String,
    },
    /// Check every chain; exit 1 naming each record that was changed, removed, inserted or
    /// reordered, or cut off after its anchor; each chain head no anchor covers, unless its
    /// writer is running (its liveness item in the settings table is fresh: said in the output);
    /// and a newest anchor older than --max-anchor-age. With --export-bucket, also check the S3
    /// export and that the table still matches it.
    Verify {
        /// How old the newest anchor may be, in seconds. A running worker anchors at least
        /// every 60 s; after all workers were stopped longer than this, pass a larger bound.
        #[arg(
            long,
            env = "RECTIFY_AUDIT_MAX_ANCHOR_AGE",
            default_value_t = 900,
            value_name = "SECONDS"
        )]
        max_anchor_age: u64,
        /// Also check the S3 export in this bucket (as `audit export` wrote it) and that the
        /// table still matches it.
        #[arg(long, env = "RECTIFY_AUDIT_EXPORT_BUCKET")]
        export_bucket: Option<String>,
        /// Key prefix of the exported objects.
        #[arg(long, default_value = "rectify-audit/")]
        export_key_prefix: String,
    },
    /// Write every chain to S3 as JSON lines (<prefix><chain>.jsonl); with Object Lock on the
    /// bucket, each object is retained in governance mode.
    Export {
        /// The bucket to write to (best with Object Lock on).
        #[arg(long, env = "RECTIFY_AUDIT_EXPORT_BUCKET")]
        bucket: String,
        /// Key prefix of the objects.
        #[arg(long, default_value = "rectify-audit/")]
        key_prefix: String,
        /// Object Lock retention, in days.
        #[arg(long, default_value_t = 365)]
        retention_days: u32,
    },
}

pub(super) async fn run(config: &Config, cmd: AuditCommand) -> Result<()> {
    let aws = aws_config().await?;
    let store = store(config, &aws);
    let records = audit::read_all(store.client(), &store.names.audit).await?;
    match cmd {
        AuditCommand::List {
            resource,
            remediation,
            since,
            json,
        } => {
            if let Some(s) = &since {
                chrono::DateTime::parse_from_rfc3339(s)
                    .map_err(|_| Failure::usage(format!("--since {s:?}: not an RFC 3339 time")))?;
            }
            let selected: Vec<&Record> = records
                .iter()
                .map(|s| &s.record)
                .filter(|r| {
                    resource
                        .as_ref()
                        .is_none_or(|x| r.resource_id.as_ref() == Some(x))
                })
                .filter(|r| {
                    remediation
                        .as_ref()
                        .is_none_or(|x| r.remediation.as_ref() == Some(x))
                })
                .filter(|r| since.as_ref().is_none_or(|s| r.time.as_str() >= s.as_str()))
                .collect();
            if json {
                print_json(&selected);
                return Ok(());
            }
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let rows: Vec<Vec<String>> = selected
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.time.get(..19).unwrap_or(&r.time).to_string(),
                        r.kind.to_string(),
                        dash(&r.remediation),
                        dash(&r.resource_id),
                        dash(&r.mode),
                        r.outcome.to_string(),
                        dash(&r.reason).chars().take(70).collect(),
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(
                    &[
                        "ID",
                        "TIME",
                        "KIND",
                        "REMEDIATION",
                        "RESOURCE",
                        "MODE",
                        "OUTCOME",
                        "REASON"
                    ],
                    &rows
                )
            );
            Ok(())
        }
        AuditCommand::Show { id } => {
            let r = records.iter().find(|s| s.record.id == id).ok_or_else(|| {
                Failure::usage(format!("no audit record {id:?} (see `rectify audit list`)"))
            })?;
            print_json(&r.record);
            Ok(())
        }
        AuditCommand::Export {
            bucket,
            key_prefix,
            retention_days,
        } => {
            let written = audit::export(
                &aws_sdk_s3::Client::new(&aws),
                &bucket,
                &key_prefix,
                &records,
                retention_days,
            )
            .await?;
            for (key, n) in &written {
                println!("s3://{bucket}/{key}: {n} records");
            }
            Ok(())
        }
        AuditCommand::Verify {
            max_anchor_age,
            export_bucket,
            export_key_prefix: export_prefix,
        } => {
            let mut problems = audit::verify(&records);
            let live = audit::Liveness::new(store.client().clone(), store.names.settings.clone())
                .writers()
                .await?;
            let covered = audit::coverage(
                &records,
                &live,
                chrono::Utc::now(),
                std::time::Duration::from_secs(max_anchor_age),
            );
            problems.extend(covered.problems);
            if let Some(bucket) = &export_bucket {
                let exported =
                    audit::read_export(&aws_sdk_s3::Client::new(&aws), bucket, &export_prefix)
                        .await?;
                println!(
                    "export: {} records in s3://{bucket}/{export_prefix}",
                    exported.len()
                );
                problems.extend(audit::verify_export(&records, &exported));
            }
            let chains = records
                .iter()
                .map(|r| r.chain.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            if problems.is_empty() {
                println!("OK: {} records in {chains} chains verified", records.len());
                for note in &covered.notes {
                    println!("note: {note}");
                }
                Ok(())
            } else {
                for p in &problems {
                    println!("{}: {}", p.record, p.what);
                }
                for note in &covered.notes {
                    println!("note: {note}");
                }
                Err(Failure::failed(format!(
                    "the audit trail does not verify: {} problem(s) in {} records",
                    problems.len(),
                    records.len()
                )))
            }
        }
    }
}
