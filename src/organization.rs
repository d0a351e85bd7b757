//! The Organization's accounts, for an allow-list set to `organization`: every ACTIVE account
//! that AWS Organizations `ListAccounts` returns, read with rectify's own credentials (the
//! management account, or a delegated administrator), cached for a few minutes.
//!
//! A miss (an account not in the cached set) reads the list again, at most once per
//! [`MISS_REFRESH`], so an account that has just joined is allowed without waiting for the cache
//! to expire, and findings from outside the Organization do not each call Organizations. A read
//! that fails is an error, never the old answer past its time: the gate fails closed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_organizations::types::{Account, AccountState, AccountStatus};
use tokio::sync::Mutex;

use crate::cloud::{CloudError, classify};
use crate::state::Global;

/// How long the list is trusted.
pub const TTL: Duration = Duration::from_secs(300);
/// How often, at most, a miss reads the list again.
pub const MISS_REFRESH: Duration = Duration::from_secs(15);

/// The Organization's ACTIVE accounts, cached.
pub struct OrganizationAccounts {
    client: aws_sdk_organizations::Client,
    cached: Mutex<Option<(Instant, Arc<BTreeSet<String>>)>>,
}

impl OrganizationAccounts {
    pub fn new(client: aws_sdk_organizations::Client) -> OrganizationAccounts {
        OrganizationAccounts {
            client,
            cached: Mutex::new(None),
        }
    }

    /// The ACTIVE accounts, read again when the cache is older than [`TTL`], or when `account`
    /// is not among them and the cache is older than [`MISS_REFRESH`].
    pub async fn active(&self, account: &str) -> Result<Arc<BTreeSet<String>>, CloudError> {
        let mut cached = self.cached.lock().await;
        if let Some((at, set)) = cached.as_ref()
            && fresh(at.elapsed(), set.contains(account))
        {
            return Ok(set.clone());
        }
        *cached = None;
        let set = Arc::new(self.list().await?);
        *cached = Some((Instant::now(), set.clone()));
        Ok(set)
    }

    /// The accounts `global`'s allow-list allows: its own list or, set to `organization`, the
    /// ACTIVE accounts (`home` is the account asking) but those it leaves out.
    pub async fn allowed(&self, global: &Global, home: &str) -> Result<Vec<String>, CloudError> {
        if !global.organization {
            return Ok(global.accounts.clone());
        }
        let active = self.active(home).await?;
        Ok(active
            .iter()
            .filter(|a| !global.leaves_out(a))
            .cloned()
            .collect())
    }

    async fn list(&self) -> Result<BTreeSet<String>, CloudError> {
        let mut pages = self.client.list_accounts().into_paginator().send();
        let mut out = BTreeSet::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| classify("organizations:ListAccounts", e))?;
            out.extend(active_ids(page.accounts()));
        }
        Ok(out)
    }
}

/// Whether a cached list of this age can answer, given whether the account is in it.
pub fn fresh(age: Duration, contains: bool) -> bool {
    age < if contains { TTL } else { MISS_REFRESH }
}

/// The ids of the accounts that are ACTIVE (by `State`, or by the older `Status` when AWS
/// sends no `State`); suspended, closing and joining accounts are not.
pub fn active_ids(accounts: &[Account]) -> impl Iterator<Item = String> + '_ {
    accounts
        .iter()
        .filter(|a| match (a.state(), a.status()) {
            (Some(state), _) => *state == AccountState::Active,
            (None, Some(status)) => *status == AccountStatus::Active,
            (None, None) => false,
        })
        .filter_map(|a| a.id().map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_active_accounts_count() {
        let accounts = [
            Account::builder()
                .id("111111111111")
                .state(AccountState::Active)
                .build(),
            Account::builder()
                .id("222222222222")
                .state(AccountState::Suspended)
                .status(AccountStatus::Active)
                .build(),
            Account::builder()
                .id("333333333333")
                .status(AccountStatus::Active)
                .build(),
            Account::builder()
                .id("444444444444")
                .status(AccountStatus::PendingClosure)
                .build(),
            Account::builder().id("555555555555").build(),
        ];
        let ids: Vec<String> = active_ids(&accounts).collect();
        assert_eq!(ids, ["111111111111", "333333333333"]);
    }

    #[test]
    fn a_miss_reads_again_sooner_than_a_hit() {
        assert!(fresh(Duration::from_secs(60), true));
        assert!(!fresh(TTL, true));
        assert!(fresh(Duration::from_secs(1), false));
        assert!(!fresh(MISS_REFRESH, false));
    }
}
