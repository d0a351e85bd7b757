//! `rectify audit`: list, show, verify and export the audit trail.

use clap::Subcommand;

use serde_json::{Value, json};

use super::{Failure, OutputArgs, Result, print_json};
use crate::app::{aws_config, store};
use crate::audit::{self, Record, RecordKind};
use crate::config::Config;
use crate::render;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Audit records, oldest first (without the anchors that seal the chains, unless --all).
    List {
        /// Only records about this resource (its id, or an IAM user's name).
        #[arg(long)]
        resource: Option<String>,
        /// Only records of this remediation.
        #[arg(long)]
        remediation: Option<String>,
        /// Only records at or after this time: RFC 3339 with a zone, or a duration ago (30m,
        /// 24h, 7d). Compared as a time, whatever the zone.
        #[arg(long, value_parser = crate::clock::since_arg, value_name = "TIME")]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// Also list the anchor records that seal each writer's chain.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// One record: readable (its plan as a diff), or in full with --output json.
    Show {
        /// The record id (see `rectify audit list`).
        id: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Check every chain; exit 1 naming each record that was changed, removed, inserted or
    /// reordered, or cut off after its anchor; each chain head no anchor covers, unless its
    /// writer is running (its liveness item in the settings table is fresh: said in the output);
    /// and a newest anchor older than --max-anchor-age. With --export-bucket, also check the S3
    /// export and that the table still matches it.
    Verify {
        /// How old the newest anchor may be: seconds, or a duration (15m, 2h, 7d). A running
        /// worker anchors at least every 60 s; after all workers were stopped longer than this,
        /// pass a larger bound.
        #[arg(
            long,
            env = "RECTIFY_AUDIT_MAX_ANCHOR_AGE",
            default_value_t = 900,
            value_name = "DURATION",
            value_parser = crate::clock::seconds_arg
        )]
        max_anchor_age: u64,
        /// Also check the S3 export in this bucket (as `audit export` wrote it) and that the
        /// table still matches it.
        #[arg(long, env = "RECTIFY_AUDIT_EXPORT_BUCKET")]
        export_bucket: Option<String>,
        /// Key prefix of the exported objects.
        #[arg(long, default_value = "rectify-audit/")]
        export_key_prefix: String,
        #[command(flatten)]
        out: OutputArgs,
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
        /// Object Lock retention: days or a duration in whole days (365, 52w), 1 to 36500
        #[arg(long, default_value = "365", value_name = "DAYS", value_parser = retention_arg)]
        retention_days: u32,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// `--retention-days`: S3 Object Lock retains for 1 to 36,500 days.
fn retention_arg(text: &str) -> std::result::Result<u32, String> {
    crate::clock::days_within(text, 36_500)
}

pub(super) async fn run(config: &Config, cmd: AuditCommand) -> Result<()> {
    let aws = aws_config(config).await?;
    let store = store(config, &aws);
    let records = audit::read_all(store.client(), &store.names.audit).await?;
    match cmd {
        AuditCommand::List {
            resource,
            remediation,
            since,
            all,
            out,
        } => {
            let selected: Vec<&Record> = records
                .iter()
                .map(|s| &s.record)
                .filter(|r| all || r.kind != RecordKind::Anchor)
                .filter(|r| {
                    resource.as_ref().is_none_or(|x| {
                        r.resource_id.as_ref() == Some(x) || record_resource(r).as_ref() == Some(x)
                    })
                })
                .filter(|r| {
                    remediation
                        .as_ref()
                        .is_none_or(|x| r.remediation.as_ref() == Some(x))
                })
                .filter(|r| {
                    since
                        .is_none_or(|s| crate::clock::parse_stored(&r.time).is_some_and(|t| t >= s))
                })
                .collect();
            if out.is_json() {
                print_json(&selected);
                return Ok(());
            }
            let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
            let now = chrono::Utc::now();
            let rows: Vec<Vec<String>> = selected
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        crate::clock::age(&r.time, now),
                        r.kind.to_string(),
                        dash(&r.remediation),
                        record_resource(r).unwrap_or_else(|| "-".into()),
                        dash(&r.mode),
                        r.outcome.to_string(),
                        render::elide(&dash(&r.reason), 70),
                    ]
                })
                .collect();
            print!(
                "{}",
                render::table(
                    &[
                        "ID",
                        "AGE",
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
        AuditCommand::Show { id, out } => {
            let r = records.iter().find(|s| s.record.id == id).ok_or_else(|| {
                Failure::usage(format!("no audit record {id:?} (see `rectify audit list`)"))
            })?;
            if out.is_json() {
                print_json(&r.record);
            } else {
                print!("{}", show(&r.record, chrono::Utc::now()));
            }
            Ok(())
        }
        AuditCommand::Export {
            bucket,
            key_prefix,
            retention_days,
            out,
        } => {
            let written = audit::export(
                &aws_sdk_s3::Client::new(&aws),
                &bucket,
                &key_prefix,
                &records,
                retention_days,
            )
            .await?;
            if out.is_json() {
                print_json(&json!({
                    "bucket": bucket,
                    "objects": written
                        .iter()
                        .map(|(key, n)| json!({"key": key, "records": n}))
                        .collect::<Vec<_>>(),
                    "retention_days": retention_days,
                }));
                return Ok(());
            }
            for (key, n) in &written {
                println!("s3://{bucket}/{key}: {n} records");
            }
            Ok(())
        }
        AuditCommand::Verify {
            max_anchor_age,
            export_bucket,
            export_key_prefix: export_prefix,
            out,
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
            let mut export = None;
            if let Some(bucket) = &export_bucket {
                let exported =
                    audit::read_export(&aws_sdk_s3::Client::new(&aws), bucket, &export_prefix)
                        .await?;
                if !out.is_json() {
                    println!(
                        "export: {} records in s3://{bucket}/{export_prefix}",
                        exported.len()
                    );
                }
                export = Some(json!({
                    "bucket": bucket,
                    "key_prefix": export_prefix,
                    "records": exported.len(),
                }));
                problems.extend(audit::verify_export(&records, &exported));
            }
            let chains = records
                .iter()
                .map(|r| r.chain.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            if out.is_json() {
                print_json(&json!({
                    "verified": problems.is_empty(),
                    "records": records.len(),
                    "chains": chains,
                    "checked_at": crate::clock::now_text(),
                    "problems": problems
                        .iter()
                        .map(|p| json!({"record": p.record, "problem": p.what}))
                        .collect::<Vec<_>>(),
                    "notes": covered.notes,
                    "export": export,
                }));
            }
            if problems.is_empty() {
                if out.is_json() {
                    return Ok(());
                }
                println!("OK: {} records in {chains} chains verified", records.len());
                for note in &covered.notes {
                    println!("note: {note}");
                }
                Ok(())
            } else {
                if !out.is_json() {
                    for p in &problems {
                        println!("{}: {}", p.record, p.what);
                    }
                    for note in &covered.notes {
                        println!("note: {note}");
                    }
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

/// The resource a record is about as a person knows it (an IAM user by name).
fn record_resource(r: &Record) -> Option<String> {
    let id = r.resource_id.as_deref()?;
    Some(render::resource_name(
        r.resource_type.as_deref().unwrap_or_default(),
        id,
        r.before.as_ref(),
    ))
}

/// One record as a person reads it: what, when, where, who and why, then its plan as a diff
/// against the state before (a settings record: each field as it was and is now).
fn show(r: &Record, now: chrono::DateTime<chrono::Utc>) -> String {
    let mut out = String::new();
    let mut field = |name: &str, value: String| out.push_str(&format!("{name:<13}{value}\n"));
    field(
        "record",
        format!("{} ({} #{} in chain {})", r.id, r.kind, r.seq, r.chain),
    );
    field(
        "time",
        format!("{} ({} ago)", r.time, crate::clock::age(&r.time, now)),
    );
    field("outcome", r.outcome.to_string());
    if let Some(rem) = &r.remediation {
        field(
            "remediation",
            match &r.mode {
                Some(m) => format!("{rem} (mode {m})"),
                None => rem.clone(),
            },
        );
    }
    if let Some(name) = record_resource(r) {
        let id = r.resource_id.clone().unwrap_or_default();
        field(
            "resource",
            format!(
                "{} {name}{}",
                r.resource_type.as_deref().unwrap_or("resource"),
                if name == id {
                    String::new()
                } else {
                    format!(" ({id})")
                }
            ),
        );
    }
    match (&r.account, &r.region) {
        (Some(a), Some(g)) => field("where", format!("account {a}, {g}")),
        (Some(a), None) => field("where", format!("account {a}")),
        _ => {}
    }
    if let Some(j) = &r.job_id {
        field("job", j.clone());
    }
    if let Some(rule) = &r.rule {
        field("rule", rule.clone());
    }
    if let Some(e) = &r.event_id {
        field("event", e.clone());
    }
    if let Some(a) = &r.actor {
        field("by", a.clone());
    }
    if let Some(i) = r.identity.as_ref().filter(|i| r.actor.as_ref() != Some(*i)) {
        field("as", i.clone());
    }
    if let Some(why) = &r.reason {
        field("reason", why.clone());
    }
    if let Some(e) = &r.error {
        field("error", e.clone());
    }
    if let Some(sha) = &r.script_sha256 {
        field("script", format!("sha256 {sha}"));
    }
    field("hash", format!("{} (previous {})", r.hash, r.prev_hash));
    if let Some(plan) = &r.plan {
        out.push('\n');
        let tense = if r.mode.as_deref() == Some("dry-run") {
            render::Tense::Would
        } else {
            render::Tense::Will
        };
        out.push_str(&render::plan_as(plan, r.before.as_ref(), tense));
    } else if r.kind == RecordKind::Settings
        && let Some(after) = &r.after
    {
        out.push_str("\nchanges:\n");
        for line in settings_lines(r.before.as_ref(), after) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    for c in &r.created {
        out.push_str(&format!(
            "  + {} by action {} ({})\n",
            c.id,
            c.action + 1,
            c.kind
        ));
    }
    out
}

/// A settings record's change, one line a field: `~ field: old -> new` for what changed (the
/// record of a setting holds `{"from", "to"}` pairs; other records, the state before and after).
fn settings_lines(before: Option<&Value>, after: &Value) -> Vec<String> {
    let text = |v: &Value| match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut lines = Vec::new();
    let Some(map) = after.as_object() else {
        return vec![text(after)];
    };
    for (key, value) in map {
        if let Some(pair) = value.as_object()
            && pair.contains_key("from")
            && pair.contains_key("to")
        {
            if pair["from"] != pair["to"] {
                lines.push(format!(
                    "~ {key}: {} -> {}",
                    text(&pair["from"]),
                    text(&pair["to"])
                ));
            }
            continue;
        }
        match before.and_then(|b| b.get(key)) {
            Some(old) if old == value => {}
            Some(old) => lines.push(format!("~ {key}: {} -> {}", text(old), text(value))),
            None => lines.push(format!("  {key}: {}", text(value))),
        }
    }
    if lines.is_empty() {
        lines.push("(nothing changed)".into());
    }
    lines
}
