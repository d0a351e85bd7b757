//! Human output: plans as readable diffs against the before-state, and aligned tables.

use serde_json::Value;

use crate::action::{Action, Plan};
use crate::catalog::line_diff;

/// A plan the way `terraform plan` prints one: each action, then what it changes.
pub fn plan(plan: &Plan, before: Option<&Value>) -> String {
    let mut out = String::new();
    if plan.actions.is_empty() && plan.reason.is_some() {
        out.push_str("No changes will be made.\n");
    } else if plan.actions.is_empty() {
        out.push_str("No changes. The resource is compliant.\n");
    } else {
        out.push_str(&format!(
            "rectify will perform {} action(s) (plan sha256 {}):\n\n",
            plan.actions.len(),
            &plan.hash()[..16]
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
        } => {
            let pab = before
                .and_then(|b| b.get("public_access_block"))
                .filter(|v| !v.is_null());
            let mut lines = Vec::new();
            if pab.is_none() {
                lines.push(
                    "(the bucket has no Public Access Block: every setting counts as false)"
                        .to_string(),
                );
            }
            for (name, key, new) in [
                ("BlockPublicAcls", "block_public_acls", block_public_acls),
                ("IgnorePublicAcls", "ignore_public_acls", ignore_public_acls),
                (
                    "BlockPublicPolicy",
                    "block_public_policy",
                    block_public_policy,
                ),
                (
                    "RestrictPublicBuckets",
                    "restrict_public_buckets",
                    restrict_public_buckets,
                ),
            ] {
                let old = flag(pab, key);
                if old == *new {
                    lines.push(format!("  {name}: {old}"));
                } else {
                    lines.push(format!("~ {name}: {old} -> {new}"));
                }
            }
            lines
        }
        Action::DeletePublicAccessBlock { .. } => vec!["- public access block".into()],
        Action::RevokeSecurityGroupIngress { rule_id, .. } => {
            let rule = before
                .and_then(|b| b.get("ingress_rules"))
                .and_then(Value::as_array)
                .and_then(|rules| {
                    rules
                        .iter()
                        .find(|r| r["rule_id"].as_str() == Some(rule_id))
                });
            match rule {
                Some(r) => vec![format!(
                    "- ingress {} from {}{}",
                    traffic(
                        r["protocol"].as_str().unwrap_or("?"),
                        &r["from_port"],
                        &r["to_port"]
                    ),
                    r["cidr_ipv4"]
                        .as_str()
                        .or(r["cidr_ipv6"].as_str())
                        .unwrap_or("?"),
                    r["description"]
                        .as_str()
                        .map(|d| format!(" ({d:?})"))
                        .unwrap_or_default()
                )],
                None => vec![format!("- ingress rule {rule_id}")],
            }
        }
        Action::AuthorizeSecurityGroupIngress {
            protocol,
            from_port,
            to_port,
            cidr_ipv4,
            cidr_ipv6,
            description,
            ..
        } => vec![format!(
            "+ ingress {protocol} {from_port}-{to_port} from {}{}",
            cidr_ipv4.as_deref().or(cidr_ipv6.as_deref()).unwrap_or("?"),
            description
                .as_deref()
                .map(|d| format!(" ({d:?})"))
                .unwrap_or_default()
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

/// Prints rows as a table with a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
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
        let t = table(&["A", "BB"], &[vec!["long".into(), "x".into()]]);
        assert_eq!(t, "A     BB\nlong  x\n");
    }
}
