//! Which writers are running. A worker keeps one item in the settings table fresh (partition
//! `_writers`, sort key its chain, `alive_until` in epoch seconds): `audit verify` excuses the
//! unanchored tail of a chain whose writer is alive, and a worker adopts (anchors) the chain of
//! a writer whose item ran out, since that writer was stopped without anchoring (killed).
//!
//! The item lives outside the append-only audit table on purpose: it is rewritten every few
//! seconds and deleted when its worker stops cleanly. Forging it only excuses an unanchored tail
//! while the forgery is kept fresh, and says so in verify's output.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::Utc;

use super::chain::AuditWriter;
use crate::clock::now_text;
use crate::cloud::classify;
use crate::state::{StateError, WRITERS};

/// The liveness items of audit writers, in the settings table.
#[derive(Clone)]
pub struct Liveness {
    ddb: Client,
    table: String,
}

impl Liveness {
    /// Liveness items in `settings_table`.
    pub fn new(ddb: Client, settings_table: String) -> Liveness {
        Liveness {
            ddb,
            table: settings_table,
        }
    }

    /// Says that `chain`'s writer runs for `lease` more.
    pub async fn beat(&self, chain: &str, lease: Duration) -> Result<(), StateError> {
        let until = Utc::now().timestamp() + lease.as_secs().max(1) as i64;
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("remediation", AttributeValue::S(WRITERS.into()))
            .item("scope", AttributeValue::S(chain.into()))
            .item("alive_until", AttributeValue::N(until.to_string()))
            .item("updated_at", AttributeValue::S(now_text()))
            .send()
            .await
            .map_err(|e| classify("dynamodb:PutItem", e))?;
        Ok(())
    }

    /// Removes `chain`'s item: its writer stopped and anchored its head. With `until`, only if
    /// the item still says that (a writer that came back meanwhile keeps its item).
    pub async fn forget(&self, chain: &str, until: Option<i64>) -> Result<(), StateError> {
        let mut req = self
            .ddb
            .delete_item()
            .table_name(&self.table)
            .key("remediation", AttributeValue::S(WRITERS.into()))
            .key("scope", AttributeValue::S(chain.into()));
        if let Some(until) = until {
            req = req
                .condition_expression("#u = :u")
                .expression_attribute_names("#u", "alive_until")
                .expression_attribute_values(":u", AttributeValue::N(until.to_string()));
        }
        match req.send().await {
            Ok(_) => Ok(()),
            Err(e) => match classify("dynamodb:DeleteItem", e) {
                e if e.code() == Some("ConditionalCheckFailedException") => Ok(()),
                e => Err(e.into()),
            },
        }
    }

    /// Every writer's item: its chain and until when it is alive (epoch seconds).
    pub async fn writers(&self) -> Result<BTreeMap<String, i64>, StateError> {
        let mut out = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .ddb
                .query()
                .table_name(&self.table)
                .key_condition_expression("#r = :w")
                .expression_attribute_names("#r", "remediation")
                .expression_attribute_values(":w", AttributeValue::S(WRITERS.into()))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb:Query", e))?;
            for item in page.items() {
                let chain = item.get("scope").and_then(|v| v.as_s().ok());
                let until = item
                    .get("alive_until")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok());
                if let (Some(chain), Some(until)) = (chain, until) {
                    out.insert(chain.clone(), until);
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(out)
    }
}

/// Adopts every writer other than `me` whose liveness ran out: anchors its chain's head on its
/// behalf, then forgets its item. The chains adopted.
pub async fn adopt_stopped(
    me: &AuditWriter,
    liveness: &Liveness,
) -> Result<Vec<String>, StateError> {
    let now = Utc::now().timestamp();
    let mut adopted = Vec::new();
    for (chain, until) in liveness.writers().await? {
        if chain == me.chain() || until >= now {
            continue;
        }
        if let Some(seq) = me.adopt(&chain).await? {
            tracing::warn!(chain = %chain, head = seq, "a writer stopped without anchoring its audit chain (killed?); its head is anchored now");
        }
        liveness.forget(&chain, Some(until)).await?;
        adopted.push(chain);
    }
    Ok(adopted)
}
