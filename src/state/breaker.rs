//! The blast-radius breaker: at most `limit` enforcements of one remediation in one account
//! within a window. One item per remediation and account in the settings table holds the times
//! of the enforcements it counts and a version; every write of it is conditional on the version
//! it was made from, so no worker's count is lost to another's.
//!
//! An enforcement is counted before anything changes, in one of two ways. Ahead: the
//! transaction that claims a fresh job in enforce mode also counts it (a [`Reservation`]), and
//! the job's outcome transaction gives it back when the plan was not enforced after all (empty,
//! refused, held, the resource not ready); the breaker then costs no write of its own. Or
//! alone, just before applying ([`Store::breaker_admit`]): for a job claimed again, and when
//! the breaker was full at the claim, so that a trip is decided on what the table says then. A
//! worker killed between a claim and its outcome leaves the reservation counted: the breaker
//! errs towards tripping.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};

use aws_sdk_dynamodb::types::Put;
use chrono::Utc;
use tokio::sync::{Mutex, OwnedMutexGuard};

use super::{StateError, Store, get_json, get_n, get_s, n, s, txn::built};
use crate::cloud::classify;

/// The scope under which breaker items are stored: `breaker:<account>`, one per remediation
/// and account.
pub(super) const BREAKER: &str = "breaker";

fn breaker_scope(account: &str) -> String {
    format!("{BREAKER}:{account}")
}

/// Whether the breaker let an enforcement through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Breaker {
    Admitted,
    /// The limit was reached: this many enforcements are already in the window.
    Tripped(usize),
}

/// A breaker item: its version and the times of the enforcements it counts.
type Item = (u64, Vec<i64>);

/// One breaker item as this process last read or wrote it: `None` until read, and again once
/// a write found it changed. Held while a write of the item is made, so that this process's
/// writes of one item take turns instead of racing each other for its version.
pub(super) type Slot = Arc<Mutex<Option<Item>>>;

/// The slots, by remediation and account.
pub(super) type Slots = Arc<std::sync::Mutex<HashMap<(String, String), Slot>>>;

/// The breaker a job counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerLimit {
    pub remediation: String,
    pub account: String,
    pub limit: u32,
    pub window_seconds: u64,
}

/// An enforcement counted ahead, in a job's claim: the breaker and the time counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub remediation: String,
    pub account: String,
    pub at: i64,
}

/// A write of a breaker item to make in a transaction, and the item once it is made.
pub(super) struct ItemWrite {
    pub put: Put,
    pub item: Item,
}

/// What counting one enforcement against a breaker comes to.
enum Count {
    /// The limit is reached: this many enforcements are in the window.
    Full(usize),
    /// The write that counts it.
    Write(Box<ItemWrite>),
}

/// Keeps the times that fall in the window ending `now`.
fn within(times: &mut Vec<i64>, now: i64, window_seconds: u64) {
    times.retain(|t| now - t < window_seconds as i64);
}

impl Store {
    /// The breaker item of (`remediation`, `account`) as this process knows it, held: writes of
    /// one item in this process take turns.
    pub(super) async fn breaker_held(
        &self,
        remediation: &str,
        account: &str,
    ) -> OwnedMutexGuard<Option<Item>> {
        let slot = self
            .breakers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((remediation.to_string(), account.to_string()))
            .or_default()
            .clone();
        slot.lock_owned().await
    }

    /// The write of the breaker item of (`remediation`, `account`) as `times`, made from the
    /// item at `version`.
    fn breaker_put(
        &self,
        remediation: &str,
        account: &str,
        version: u64,
        times: &[i64],
    ) -> Result<Put, StateError> {
        let item = HashMap::from([
            ("remediation".to_string(), s(remediation)),
            ("scope".to_string(), s(breaker_scope(account))),
            (
                "times".to_string(),
                s(serde_json::to_string(times).unwrap_or_default()),
            ),
            ("version".to_string(), n(version + 1)),
        ]);
        built(self.versioned_put(item, version).build())
    }

    /// The item the slot holds, read first when it holds none.
    async fn breaker_known(
        &self,
        slot: &mut Option<Item>,
        remediation: &str,
        account: &str,
    ) -> Result<Item, StateError> {
        if let Some(item) = slot.as_ref() {
            return Ok(item.clone());
        }
        let item = self.breaker_item(remediation, account).await?;
        *slot = Some(item.clone());
        Ok(item)
    }

    /// Counts one enforcement against the breaker of (`remediation`, `account`) at `now`, from
    /// the item the slot holds (read first when it holds none).
    async fn breaker_count(
        &self,
        slot: &mut Option<Item>,
        b: &BreakerLimit,
        now: i64,
    ) -> Result<Count, StateError> {
        let (version, mut times) = self.breaker_known(slot, &b.remediation, &b.account).await?;
        within(&mut times, now, b.window_seconds);
        if times.len() >= b.limit as usize {
            return Ok(Count::Full(times.len()));
        }
        times.push(now);
        let put = self.breaker_put(&b.remediation, &b.account, version, &times)?;
        Ok(Count::Write(Box::new(ItemWrite {
            put,
            item: (version + 1, times),
        })))
    }

    /// The write that counts one enforcement against `b` at `now`, for a claim's transaction.
    /// `None` when the breaker is full or cannot be read: the job is then claimed without it,
    /// and [`Store::breaker_admit`] decides when the plan is about to be enforced.
    pub(super) async fn breaker_reserve(
        &self,
        slot: &mut Option<Item>,
        b: &BreakerLimit,
        now: i64,
    ) -> Option<ItemWrite> {
        match self.breaker_count(slot, b, now).await {
            Ok(Count::Write(w)) => Some(*w),
            Ok(Count::Full(_)) | Err(_) => None,
        }
    }

    /// The write that gives `r` back, for the job's outcome transaction: `None` when there is
    /// nothing to give back (an operator reset the breaker since).
    pub(super) async fn breaker_release(
        &self,
        slot: &mut Option<Item>,
        r: &Reservation,
    ) -> Result<Option<ItemWrite>, StateError> {
        let (version, mut times) = self.breaker_known(slot, &r.remediation, &r.account).await?;
        let Some(i) = times.iter().position(|t| *t == r.at) else {
            return Ok(None);
        };
        times.remove(i);
        let put = self.breaker_put(&r.remediation, &r.account, version, &times)?;
        Ok(Some(ItemWrite {
            put,
            item: (version + 1, times),
        }))
    }

    /// Counts one enforcement against `b`, the breaker of one remediation in one account:
    /// admitted while fewer than its limit fall in its window. Each account has a
    /// breaker of its own, so one account's burst never holds another's fixes. Optimistic:
    /// prune, then write if the item's version is unchanged. The version this process last
    /// wrote is kept, so an admission is one conditional write; the item is read again only
    /// when that write finds it changed (another worker, or an operator's reset) and before the
    /// breaker is declared tripped.
    pub async fn breaker_admit(&self, b: &BreakerLimit) -> Result<Breaker, StateError> {
        let mut cached = self.breaker_held(&b.remediation, &b.account).await;
        for _ in 0..10 {
            let fresh = cached.is_none();
            match self
                .breaker_count(&mut cached, b, Utc::now().timestamp())
                .await?
            {
                // Trip only on what the table says now: it may have been reset.
                Count::Full(_) if !fresh => *cached = None,
                Count::Full(n) => return Ok(Breaker::Tripped(n)),
                Count::Write(w) => {
                    *cached = None;
                    if self.put_alone(w.put).await? {
                        *cached = Some(w.item);
                        return Ok(Breaker::Admitted);
                    }
                }
            }
        }
        Err(StateError::Conflict(format!(
            "the breaker of {} in {}",
            b.remediation, b.account
        )))
    }

    /// The breaker item as stored: its version and enforcement times.
    async fn breaker_item(&self, remediation: &str, account: &str) -> Result<Item, StateError> {
        let item = self
            .get_settings_item(remediation, &breaker_scope(account))
            .await?
            .unwrap_or_default();
        let version = get_n(&item, "version").unwrap_or(0);
        let times: Vec<i64> = get_json(&item, "times")?.unwrap_or_default();
        Ok((version, times))
    }

    /// Forgets a remediation's recent enforcements in one account, or in every account with
    /// `None` (an operator reset the breaker).
    pub async fn breaker_reset(
        &self,
        remediation: &str,
        account: Option<&str>,
    ) -> Result<(), StateError> {
        let scopes = match account {
            Some(a) => vec![breaker_scope(a)],
            None => self.breaker_scopes(remediation).await?,
        };
        for scope in scopes {
            self.ddb
                .delete_item()
                .table_name(&self.names.settings)
                .key("remediation", s(remediation))
                .key("scope", s(scope))
                .send()
                .await
                .map_err(|e| classify("dynamodb:DeleteItem", e))?;
        }
        Ok(())
    }

    /// The scopes of a remediation's breaker items, one per account that has one.
    async fn breaker_scopes(&self, remediation: &str) -> Result<Vec<String>, StateError> {
        let mut scopes = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .ddb
                .query()
                .table_name(&self.names.settings)
                .consistent_read(true)
                .key_condition_expression("#r = :r AND begins_with(#s, :b)")
                .expression_attribute_names("#r", "remediation")
                .expression_attribute_names("#s", "scope")
                .expression_attribute_values(":r", s(remediation))
                .expression_attribute_values(":b", s(BREAKER))
                .projection_expression("#s")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| classify("dynamodb:Query", e))?;
            scopes.extend(out.items().iter().filter_map(|i| get_s(i, "scope")));
            match out.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(scopes)
    }
}
