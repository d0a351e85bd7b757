//! Human output: plans as readable diffs against the before-state, and aligned tables that fit
//! the terminal.

use serde_json::Value;

use crate::action::{Action, Plan};
use crate::catalog::line_diff;

/// How many hex digits of a plan's sha256 every short form shows (and the fewest `--plan-hash`
/// takes).
pub const SHORT_HASH: usize = 12;

/// The short form of a hash: its first [`SHORT_HASH`] hex digits.
pub fn short_hash(hash: &str) -> &str {
    &hash[..SHORT_HASH.min(hash.len())]
}

/// Whether a plan is shown as what will happen (it is about to be applied, or is offered for
/// approval) or as what would have happened (dry-run, a what-if): the plan's first line says
/// "will perform" or "would perform".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tense {
    Will,
    Would,
}

/// A plan the way `terraform plan` prints one: each action, then what it changes.
pub fn plan(plan: &Plan, before: Option<&Value>) -> String {
    plan_as(plan, before, Tense::Will)
}

/// [`plan`], saying "would perform" for a plan that is not going to be applied (dry-run).
pub fn plan_as(plan: &Plan, before: Option<&Value>, tense: Tense) -> String {
    let mut out = String::new();
    if plan.actions.is_empty() && plan.reason.is_some() {
        out.push_str(match tense {
            Tense::Will => "No changes will be made.\n",
            Tense::Would => "No changes would be made.\n",
        });
    } else if plan.actions.is_empty() {
        out.push_str("No changes. The resource is compliant.\n");
    } else {
        out.push_str(&format!(
            "rectify {} perform {} action(s) (plan sha256 {}):\n\n",
            match tense {
                Tense::Will => "will",
                Tense::Would => "would",
            },
            plan.actions.len(),
            short_hash(&plan.hash())
        ));
        for a in &plan.actions {
            out.push_str(&format!("  ~ {}\n", a.summary()));
            for line in changes(a, before) {
                out.push_str(&format!("      {line}\n"));
            }
            out.push('\n');
        }
    }
    if let Some(reason) = &plan.reason {
        out.push_str(&format!("Note: {reason}\n"));
    }
    out
}

fn flag(v: Option<&Value>, key: &str) -> bool {
    v.and_then(|p| p.get(key))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// What one action changes, line by line, given the resource before.
pub fn changes(action: &Action, before: Option<&Value>) -> Vec<String> {
    match action {
        Action::PutPublicAccessBlock {
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
            ..
        } => block_lines(
            "bucket",
            before,
            [
                *block_public_acls,
                *ignore_public_acls,
                *block_public_policy,
                *restrict_public_buckets,
            ],
        ),
        Action::PutAccountPublicAccessBlock {
            block_public_acls,
            ignore_public_acls,
            block_public_policy,
            restrict_public_buckets,
            ..
        } => block_lines(
            "account",
            before,
            [
                *block_public_acls,
                *ignore_public_acls,
                *block_public_policy,
                *restrict_public_buckets,
            ],
        ),
        Action::DeleteAccountPublicAccessBlock { .. } => {
            vec!["- account public access block".into()]
        }
        Action::EnableEbsEncryptionByDefault { .. }
        | Action::DisableEbsEncryptionByDefault { .. } => {
            let on = matches!(action, Action::EnableEbsEncryptionByDefault { .. });
            let old = before
                .and_then(|b| b.get("ebs_encryption_by_default"))
                .and_then(Value::as_bool)
                .map_or_else(|| "?".to_string(), |b| b.to_string());
            vec![format!("~ EbsEncryptionByDefault: {old} -> {on}")]
        }
        Action::CreateDetector { .. } => {
            vec!["+ GuardDuty detector (Enable: true; its id is recorded with the job)".into()]
        }
        Action::UpdateDetector {
            detector_id,
            enable,
            ..
        } => {
            let old = before
                .and_then(|b| b.pointer("/guardduty/detectors"))
                .and_then(Value::as_array)
                .and_then(|ds| {
                    ds.iter()
                        .find(|d| d.get("id").and_then(Value::as_str) == Some(detector_id))
                })
                .and_then(|d| d.get("status").and_then(Value::as_str))
                .map_or_else(|| "?".to_string(), |s| (s == "ENABLED").to_string());
            vec![format!(
                "~ detector {detector_id} Enable: {old} -> {enable}"
            )]
        }
        Action::DeleteDetector { detector_id, .. } => {
            vec![format!("- GuardDuty detector {detector_id}")]
        }
        Action::CreateFlowLogs {
            traffic_type,
            log_group,
            ..
        } => vec![format!(
            "+ flow log: {} traffic to CloudWatch Logs group {log_group} (its id is recorded with the job)",
            traffic_type.as_str()
        )],
        Action::DeleteFlowLogs { flow_log_id, .. } => vec![format!("- flow log {flow_log_id}")],
        Action::DeletePublicAccessBlock { .. } => vec!["- public access block".into()],
        Action::RevokeSecurityGroupIngress { rule_id, .. } => {
            vec![revoked_rule(before, "ingress", rule_id)]
        }
        Action::RevokeSecurityGroupEgress { rule_id, .. } => {
            vec![revoked_rule(before, "egress", rule_id)]
        }
        Action::AuthorizeSecurityGroupIngress {
            protocol,
            from_port,
            to_port,
            cidr_ipv4,
            cidr_ipv6,
            description,
            referenced_group_id,
            prefix_list_id,
            ..
        }
        | Action::AuthorizeSecurityGroupEgress {
            protocol,
            from_port,
            to_port,
            cidr_ipv4,
            cidr_ipv6,
            description,
            referenced_group_id,
            prefix_list_id,
            ..
        } => {
            let (dir, way) = if matches!(action, Action::AuthorizeSecurityGroupEgress { .. }) {
                ("egress", "to")
            } else {
                ("ingress", "from")
            };
            vec![format!(
                "+ {dir} {protocol} {from_port}-{to_port} {way} {}{}",
                cidr_ipv4
                    .as_deref()
                    .or(cidr_ipv6.as_deref())
                    .or(referenced_group_id.as_deref())
                    .or(prefix_list_id.as_deref())
                    .unwrap_or("?"),
                description
                    .as_deref()
                    .map(|d| format!(" ({d:?})"))
                    .unwrap_or_default()
            )]
        }
        Action::DeleteNetworkAclEntry {
            rule_number,
            egress,
            ..
        } => {
            let dir = if *egress { "egress" } else { "ingress" };
            let entry = before
                .and_then(|b| b.get("entries"))
                .and_then(Value::as_array)
                .and_then(|entries| {
                    entries.iter().find(|e| {
                        e["rule_number"].as_i64() == Some(i64::from(*rule_number))
                            && e["egress"].as_bool() == Some(*egress)
                    })
                });
            match entry {
                Some(e) => vec![format!(
                    "- {dir} entry {rule_number}: {} {} {}",
                    e["rule_action"].as_str().unwrap_or("?"),
                    nacl_traffic(
                        e["protocol"].as_str().unwrap_or("?"),
                        &e["port_range"]["from"],
                        &e["port_range"]["to"]
                    ),
                    e["cidr_block"]
                        .as_str()
                        .or(e["ipv6_cidr_block"].as_str())
                        .unwrap_or("?"),
                )],
                None => vec![format!("- {dir} entry {rule_number}")],
            }
        }
        Action::CreateNetworkAclEntry {
            rule_number,
            egress,
            protocol,
            rule_action,
            cidr_block,
            ipv6_cidr_block,
            port_from,
            port_to,
            ..
        } => vec![format!(
            "+ {} entry {rule_number}: {rule_action} {} {}",
            if *egress { "egress" } else { "ingress" },
            nacl_traffic(
                protocol,
                &port_from.map_or(Value::Null, Value::from),
                &port_to.map_or(Value::Null, Value::from)
            ),
            cidr_block
                .as_deref()
                .or(ipv6_cidr_block.as_deref())
                .unwrap_or("?")
        )],
        Action::UpdateAccessKey {
            access_key_id,
            status,
            ..
        } => {
            let key = before
                .and_then(|b| b.get("access_keys"))
                .and_then(Value::as_array)
                .and_then(|keys| {
                    keys.iter()
                        .find(|k| k["access_key_id"].as_str() == Some(access_key_id))
                });
            let old = key.and_then(|k| k["status"].as_str()).unwrap_or("?");
            let used = key
                .and_then(|k| k["last_used_at"].as_str().map(|t| format!("last used {t}")))
                .or_else(|| {
                    key.and_then(|k| {
                        k["created_at"]
                            .as_str()
                            .map(|t| format!("never used, created {t}"))
                    })
                })
                .unwrap_or_default();
            vec![format!(
                "~ {access_key_id}: {old} -> {} ({used})",
                status.as_str()
            )]
        }
        Action::ModifyInstanceMetadataOptions { http_tokens, .. } => {
            let old = before
                .and_then(|b| b.get("metadata_options"))
                .and_then(|m| m.get("http_tokens"))
                .and_then(Value::as_str)
                .unwrap_or("?");
            vec![format!("~ HttpTokens: {old} -> {}", http_tokens.as_str())]
        }
        Action::ModifyDbInstancePublicAccess {
            publicly_accessible,
            ..
        } => {
            let old = before
                .and_then(|b| b.get("publicly_accessible"))
                .map_or_else(|| "?".to_string(), Value::to_string);
            vec![format!(
                "~ PubliclyAccessible: {old} -> {publicly_accessible}"
            )]
        }
        Action::PutImageScanningConfiguration { scan_on_push, .. } => {
            let old = before
                .and_then(|b| b.get("scan_on_push"))
                .map_or_else(|| "?".to_string(), Value::to_string);
            vec![format!("~ ScanOnPush: {old} -> {scan_on_push}")]
        }
        Action::EnableKeyRotation { .. } | Action::DisableKeyRotation { .. } => {
            let on = matches!(action, Action::EnableKeyRotation { .. });
            let old = before
                .and_then(|b| b.get("rotation_enabled"))
                .and_then(Value::as_bool)
                .map_or_else(|| "?".to_string(), |b| b.to_string());
            vec![format!("~ KeyRotationEnabled: {old} -> {on}")]
        }
        Action::ModifyDbSnapshotRestoreAll {
            shared_with_all, ..
        } => {
            let kept: Vec<&str> = before
                .and_then(|b| b.get("restore"))
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .filter(|a| *a != "all")
                        .collect()
                })
                .unwrap_or_default();
            let sign = if *shared_with_all { "+" } else { "-" };
            let mut lines = vec![format!("{sign} restore: all")];
            lines.extend(kept.iter().map(|a| format!("  restore: {a}")));
            lines
        }
        Action::ModifyVpcEndpointPolicy {
            policy_document, ..
        } => {
            let pretty = |text: &str| {
                serde_json::from_str::<Value>(text).map_or_else(
                    |_| text.to_string(),
                    |v| {
                        serde_json::to_string_pretty(&crate::action::canonical_value(&v))
                            .unwrap_or_default()
                    },
                )
            };
            let old = before
                .and_then(|b| b.get("policy_document"))
                .and_then(Value::as_str)
                .map(pretty)
                .unwrap_or_default();
            line_diff(&old, &pretty(policy_document))
                .lines()
                .map(str::to_string)
                .collect()
        }
        Action::PutBucketPolicy { policy, .. } => {
            // In the document's own order: a fix only appends, so the diff is its new lines.
            let pretty = |text: &str| {
                serde_json::from_str::<Value>(text).map_or_else(
                    |_| text.to_string(),
                    |v| serde_json::to_string_pretty(&v).unwrap_or_default(),
                )
            };
            let old = before
                .and_then(|b| b.get("policy"))
                .and_then(Value::as_str)
                .map(pretty);
            let mut lines = Vec::new();
            if old.is_none() {
                lines.push("(the bucket has no policy: a new one is created)".to_string());
            }
            lines.extend(
                line_diff(&old.unwrap_or_default(), &pretty(policy))
                    .lines()
                    .map(str::to_string),
            );
            lines
        }
        Action::DeleteBucketPolicy { .. } => vec!["- bucket policy".into()],
        Action::StartTrailLogging { name, .. } | Action::StopTrailLogging { name, .. } => {
            let on = matches!(action, Action::StartTrailLogging { .. });
            let old = before
                .and_then(|b| b.get("trails"))
                .and_then(Value::as_array)
                .and_then(|trails| crate::action::home_trail(before?, trails, name))
                .and_then(|t| t.get("is_logging"))
                .map_or_else(|| "(new trail) false".to_string(), Value::to_string);
            vec![format!("~ trail {name} IsLogging: {old} -> {on}")]
        }
        Action::CreateTrail {
            name,
            s3_bucket_name,
            is_multi_region_trail,
            enable_log_file_validation,
            ..
        } => vec![
            format!("+ trail {name}"),
            format!("    S3BucketName: {s3_bucket_name}"),
            format!("    IsMultiRegionTrail: {is_multi_region_trail}"),
            format!("    LogFileValidationEnabled: {enable_log_file_validation}"),
        ],
        Action::DeleteTrail { name, .. } => vec![format!("- trail {name}")],
        Action::UpdateTrailLogFileValidation {
            enable_log_file_validation,
            ..
        } => {
            let old = before
                .and_then(|b| b.get("log_file_validation"))
                .map_or_else(|| "?".to_string(), Value::to_string);
            vec![format!(
                "~ LogFileValidationEnabled: {old} -> {enable_log_file_validation}"
            )]
        }
        Action::UpdateAccountPasswordPolicy {
            minimum_password_length,
            require_symbols,
            require_numbers,
            require_uppercase_characters,
            require_lowercase_characters,
            allow_users_to_change_password,
            max_password_age,
            password_reuse_prevention,
            hard_expiry,
            ..
        } => {
            let old = before
                .and_then(|b| b.get("password_policy"))
                .filter(|v| !v.is_null());
            let mut lines = Vec::new();
            if old.is_none() {
                lines.push("(the account has no password policy: a new one is created)".into());
            }
            let number = |n: &Option<i32>| n.map_or(Value::Null, Value::from);
            for (name, key, new) in [
                (
                    "MinimumPasswordLength",
                    "minimum_password_length",
                    Value::from(*minimum_password_length),
                ),
                (
                    "RequireSymbols",
                    "require_symbols",
                    Value::from(*require_symbols),
                ),
                (
                    "RequireNumbers",
                    "require_numbers",
                    Value::from(*require_numbers),
                ),
                (
                    "RequireUppercaseCharacters",
                    "require_uppercase_characters",
                    Value::from(*require_uppercase_characters),
                ),
                (
                    "RequireLowercaseCharacters",
                    "require_lowercase_characters",
                    Value::from(*require_lowercase_characters),
                ),
                (
                    "AllowUsersToChangePassword",
                    "allow_users_to_change_password",
                    Value::from(*allow_users_to_change_password),
                ),
                (
                    "MaxPasswordAge",
                    "max_password_age",
                    number(max_password_age),
                ),
                (
                    "PasswordReusePrevention",
                    "password_reuse_prevention",
                    number(password_reuse_prevention),
                ),
                ("HardExpiry", "hard_expiry", Value::from(*hard_expiry)),
            ] {
                let was = old.and_then(|p| p.get(key)).cloned().unwrap_or(Value::Null);
                if old.is_some() && was == new {
                    lines.push(format!("  {name}: {new}"));
                } else {
                    lines.push(format!("~ {name}: {was} -> {new}"));
                }
            }
            lines
        }
        Action::DeleteAccountPasswordPolicy { .. } => vec!["- password policy".into()],
        Action::PutConfigurationRecorder { name, .. } => {
            vec![format!("+ configuration recorder {name}")]
        }
        Action::DeleteConfigurationRecorder { name, .. } => {
            vec![format!("- configuration recorder {name}")]
        }
        Action::PutDeliveryChannel {
            name,
            s3_bucket_name,
            ..
        } => vec![format!(
            "+ delivery channel {name} -> s3://{s3_bucket_name}"
        )],
        Action::DeleteDeliveryChannel { name, .. } => {
            vec![format!("- delivery channel {name}")]
        }
        Action::StartConfigurationRecorder { name, .. }
        | Action::StopConfigurationRecorder { name, .. } => {
            let on = matches!(action, Action::StartConfigurationRecorder { .. });
            vec![format!("~ recorder {name} recording: -> {on}")]
        }
    }
}

/// The four Public Access Block flags of a bucket or an account, each as it was and will be.
fn block_lines(noun: &str, before: Option<&Value>, new: [bool; 4]) -> Vec<String> {
    let pab = before
        .and_then(|b| b.get("public_access_block"))
        .filter(|v| !v.is_null());
    let mut lines = Vec::new();
    if pab.is_none() {
        lines.push(format!(
            "(the {noun} has no Public Access Block: every setting counts as false)"
        ));
    }
    for ((name, key), new) in [
        ("BlockPublicAcls", "block_public_acls"),
        ("IgnorePublicAcls", "ignore_public_acls"),
        ("BlockPublicPolicy", "block_public_policy"),
        ("RestrictPublicBuckets", "restrict_public_buckets"),
    ]
    .into_iter()
    .zip(new)
    {
        let old = flag(pab, key);
        if old == new {
            lines.push(format!("  {name}: {old}"));
        } else {
            lines.push(format!("~ {name}: {old} -> {new}"));
        }
    }
    lines
}

/// A revoked security group rule as the before-state shows it, or its id when it is not there.
fn revoked_rule(before: Option<&Value>, dir: &str, rule_id: &str) -> String {
    let rule = before
        .and_then(|b| b.get(format!("{dir}_rules")))
        .and_then(Value::as_array)
        .and_then(|rules| {
            rules
                .iter()
                .find(|r| r["rule_id"].as_str() == Some(rule_id))
        });
    let way = if dir == "egress" { "to" } else { "from" };
    match rule {
        Some(r) => format!(
            "- {dir} {} {way} {}{}",
            traffic(
                r["protocol"].as_str().unwrap_or("?"),
                &r["from_port"],
                &r["to_port"]
            ),
            r["cidr_ipv4"]
                .as_str()
                .or(r["cidr_ipv6"].as_str())
                .or(r["referenced_group_id"].as_str())
                .or(r["prefix_list_id"].as_str())
                .unwrap_or("?"),
            r["description"]
                .as_str()
                .map(|d| format!(" ({d:?})"))
                .unwrap_or_default()
        ),
        None => format!("- {dir} rule {rule_id}"),
    }
}

/// A network ACL entry's traffic: `protocol 6 ports 22-22`, or `all traffic` for protocol -1.
fn nacl_traffic(protocol: &str, from: &Value, to: &Value) -> String {
    if protocol == "-1" {
        "all traffic".to_string()
    } else if from.is_null() && to.is_null() {
        format!("protocol {protocol}")
    } else {
        format!("protocol {protocol} ports {from}-{to}")
    }
}

/// `tcp 22-22`, or `all traffic` for protocol -1.
fn traffic(protocol: &str, from: &Value, to: &Value) -> String {
    if protocol == "-1" {
        "all traffic".to_string()
    } else {
        format!("{protocol} {from}-{to}")
    }
}

/// A resource as a person knows it: an IAM user by the name its observed state carries (Config
/// names it by its unique id, `AIDA…`), every other resource by its id.
pub fn resource_name(resource_type: &str, resource_id: &str, before: Option<&Value>) -> String {
    if resource_type == "AWS::IAM::User"
        && let Some(name) = before
            .and_then(|b| b.get("user_name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
    {
        return name.to_string();
    }
    resource_id.to_string()
}

/// How wide tables may be: `COLUMNS` when set, else the terminal's width when stdout is one;
/// `None` (no limit) when the output is piped, so scripts and files get every cell whole.
pub fn width() -> Option<usize> {
    use std::io::IsTerminal;
    if let Some(n) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return Some(n);
    }
    if std::io::stdout().is_terminal() {
        return terminal_size::terminal_size().map(|(w, _)| usize::from(w.0));
    }
    None
}

/// `text` in at most `max` characters: whole when it fits, else cut at the last word boundary
/// after its first 3 characters (else at `max`) and ended with `…`. Line breaks become spaces.
pub fn elide(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        return flat;
    }
    if max == 0 {
        return String::new();
    }
    let keep: String = flat.chars().take(max - 1).collect();
    let next_is_break = flat.chars().nth(max - 1).is_some_and(char::is_whitespace);
    let cut = if next_is_break {
        keep.trim_end().to_string()
    } else {
        match keep.rfind(char::is_whitespace) {
            Some(i) if keep[..i].chars().count() >= 3 => keep[..i].trim_end().to_string(),
            _ => keep,
        }
    };
    format!("{cut}\u{2026}")
}

/// Prints rows as a table with a header, columns padded to their widest cell, as wide as
/// [`width`] allows.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    table_within(header, rows, width())
}

/// The narrowest a column is squeezed to: 4 characters (its header is elided too). An `ID`
/// column is never squeezed: its value is what `show` and the write commands take.
fn min_width(header: &str, natural: usize) -> usize {
    if header == "ID" {
        natural
    } else {
        natural.min(4)
    }
}

/// [`table`] within `max` characters a line (`None`: no limit): while the table is too wide,
/// the widest column that can give way loses a character, and cells longer than their column
/// are elided with `…` (the whole value is in `--output json` and `show`).
pub fn table_within(header: &[&str], rows: &[Vec<String>], max: Option<usize>) -> String {
    let flat = |c: &str| c.replace(['\n', '\r'], " ");
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(flat(cell).chars().count());
            }
        }
    }
    if let Some(max) = max {
        let floors: Vec<usize> = header
            .iter()
            .zip(&widths)
            .map(|(h, w)| min_width(h, *w))
            .collect();
        let gaps = 2 * widths.len().saturating_sub(1);
        while widths.iter().sum::<usize>() + gaps > max {
            let Some(i) = (0..widths.len())
                .filter(|i| widths[*i] > floors[*i])
                .max_by_key(|i| (widths[*i], std::cmp::Reverse(*i)))
            else {
                break;
            };
            widths[i] -= 1;
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(usize::MAX);
            let c = elide(&c, w);
            if i + 1 == n {
                s.push_str(&c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.iter().map(|h| (*h).to_string()).collect());
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

/// A sweep's report as a table (errors are listed separately by the caller).
pub fn sweep(lines: &[crate::sweep::Line]) -> String {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "-".to_string()
        } else {
            items.join(", ")
        }
    };
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                l.remediation.clone(),
                l.account.clone(),
                l.region.clone(),
                l.scanned.to_string(),
                l.would_change.len().to_string(),
                list(
                    l.would_change
                        .iter()
                        .map(|c| format!("{} ({})", c.resource_id, c.actions))
                        .collect(),
                ),
                list(
                    l.held
                        .iter()
                        .map(|h| format!("{} ({})", h.resource_id, h.status))
                        .collect(),
                ),
                list(l.outcomes.iter().map(|(k, v)| format!("{k}:{v}")).collect()),
                l.errors.len().to_string(),
            ]
        })
        .collect();
    table(
        &[
            "REMEDIATION",
            "ACCOUNT",
            "REGION",
            "SCANNED",
            "NON-COMPLIANT",
            "WHICH (ACTIONS)",
            "HELD BACK",
            "JOBS",
            "ERRORS",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn public_access_block_changes_show_old_and_new() {
        let a = Action::PutPublicAccessBlock {
            bucket: "b".into(),
            block_public_acls: true,
            ignore_public_acls: true,
            block_public_policy: true,
            restrict_public_buckets: true,
        };
        let lines = changes(
            &a,
            Some(&json!({"public_access_block": {"block_public_acls": true}})),
        );
        assert!(lines.contains(&"  BlockPublicAcls: true".to_string()));
        assert!(lines.contains(&"~ IgnorePublicAcls: false -> true".to_string()));
    }

    #[test]
    fn trail_changes_show_the_trail_homed_in_the_region() {
        let before = json!({"region": "us-east-1", "log_file_validation": false, "trails": [
            {"name": "audit", "home_region": "eu-west-1", "is_logging": true},
            {"name": "audit", "home_region": "us-east-1", "is_logging": false}
        ]});
        let start = Action::StartTrailLogging {
            account_id: "111122223333".into(),
            name: "audit".into(),
        };
        assert_eq!(
            changes(&start, Some(&before)),
            ["~ trail audit IsLogging: false -> true"]
        );
        let validate = Action::UpdateTrailLogFileValidation {
            name: "audit".into(),
            enable_log_file_validation: true,
        };
        assert_eq!(
            changes(&validate, Some(&before)),
            ["~ LogFileValidationEnabled: false -> true"]
        );
    }

    #[test]
    fn policy_changes_are_a_line_diff() {
        let a = Action::ModifyVpcEndpointPolicy {
            vpc_endpoint_id: "vpce-1".into(),
            policy_document: r#"{"Statement":[{"Effect":"Allow","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-1"}}}]}"#.into(),
        };
        let lines = changes(
            &a,
            Some(&json!({"policy_document": r#"{"Statement":[{"Effect":"Allow"}]}"#})),
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with('+') && l.contains("aws:PrincipalOrgID")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("\"Effect\": \"Allow\"") && !l.starts_with('+')),
            "{lines:?}"
        );
    }

    #[test]
    fn tables_align() {
        let t = table_within(&["A", "BB"], &[vec!["long".into(), "x".into()]], None);
        assert_eq!(t, "A     BB\nlong  x\n");
    }

    #[test]
    fn tables_fit_the_width_eliding_the_widest_cells_and_keeping_ids() {
        let id = "0123456789abcdef01234567".to_string();
        let reason = "the bucket policy allows anonymous reads from anywhere on the internet";
        let rows = vec![vec![
            id.clone(),
            "s3-block-public-access".into(),
            reason.into(),
        ]];
        let t = table_within(&["ID", "REMEDIATION", "REASON"], &rows, Some(60));
        for line in t.lines() {
            assert!(line.chars().count() <= 60, "{line:?} is wider than 60");
        }
        let row = t.lines().nth(1).unwrap();
        assert!(row.starts_with(&id), "the id is kept whole: {row}");
        assert!(row.ends_with('\u{2026}'), "{row}");
        // Without a limit every cell is whole.
        let whole = table_within(&["ID", "REMEDIATION", "REASON"], &rows, None);
        assert!(whole.contains(reason), "{whole}");
    }

    #[test]
    fn elision_cuts_at_a_word_boundary() {
        assert_eq!(elide("short", 10), "short");
        assert_eq!(
            elide("approval expired before the plan ran", 20),
            "approval expired\u{2026}"
        );
        // One long word is cut where it must be.
        assert_eq!(elide("abcdefghijklmnop", 6), "abcde\u{2026}");
        assert_eq!(elide("two\nlines", 20), "two lines");
    }

    #[test]
    fn iam_users_go_by_name() {
        let before = json!({"user_name": "alice", "user_id": "AIDAEXAMPLE"});
        assert_eq!(
            resource_name("AWS::IAM::User", "AIDAEXAMPLE", Some(&before)),
            "alice"
        );
        assert_eq!(
            resource_name("AWS::IAM::User", "AIDAEXAMPLE", None),
            "AIDAEXAMPLE"
        );
        assert_eq!(resource_name("AWS::S3::Bucket", "b", Some(&before)), "b");
    }

    #[test]
    fn short_hashes_have_one_length() {
        let plan = Plan {
            actions: vec![Action::DeletePublicAccessBlock { bucket: "b".into() }],
            reason: None,
            needs_parameters: Vec::new(),
        };
        let hash = plan.hash();
        let text = plan_as(&plan, None, Tense::Would);
        assert!(
            text.starts_with(&format!(
                "rectify would perform 1 action(s) (plan sha256 {}):",
                &hash[..SHORT_HASH]
            )),
            "{text}"
        );
        assert!(!text.contains(&hash[..=SHORT_HASH]), "{text}");
        assert!(plan_as(&plan, None, Tense::Will).starts_with("rectify will perform"));
    }
}
