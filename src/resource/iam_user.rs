//! `AWS::IAM::User`: a user's access keys (with when each was last used) and tags.
//!
//! Config names users by their unique id (`AIDA…` on AWS); a plain user name works too. An id
//! that is not a user name is looked up by id, through a per-account cache of ListUsers.

use std::collections::HashMap;

use chrono::SecondsFormat;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{BoxFuture, Info, ResourceType, Scope, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// IAM users: one namespace per account, so listed once, not once per region. Security Hub
/// files access-key findings under the user.
pub struct IamUser;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::IAM::User",
    asff_types: &["AwsIamUser", "AwsIamAccessKey"],
    ocsf_type: "AwsIamUser",
    scope: Scope::Global,
    noun: "IAM user",
    read_permissions: &[
        "iam:GetUser",
        "iam:ListUsers",
        "iam:ListAccessKeys",
        "iam:GetAccessKeyLastUsed",
        "iam:ListUserTags",
    ],
};

impl ResourceType for IamUser {
    fn info(&self) -> &'static Info {
        &INFO
    }

    /// Config names a user by its unique id, Security Hub and the sweep by its name.
    fn names(&self, observed: &Value) -> Vec<String> {
        super::named_by(observed, &["user_name", "user_id"])
    }

    /// A unique id; its user's name is looked up through the same cache as
    /// [`ResourceType::observe`] uses.
    fn named_otherwise(&self, id: &str) -> bool {
        is_unique_id(id)
    }

    fn lock_name<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<String, CloudError>> {
        Box::pin(resolve_user(clients, id, false))
    }

    fn valid_id(&self, id: &str) -> bool {
        (1..=128).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(async move {
            if !is_unique_id(id) {
                match observe_user(clients, id).await {
                    Err(CloudError::NotFound { .. }) => {}
                    other => return other,
                }
            }
            observe_by_unique_id(clients, id).await
        })
    }

    /// After key actions only the keys are read back.
    fn reread<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
        kinds: &'a [String],
        before: &'a Value,
        applied: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(async move {
            let user_name = before["user_name"].as_str();
            let Some(user_name) = user_name.filter(|_| applied.iter().all(|k| *k == KEY_KIND))
            else {
                return self.observe_for(clients, id, kinds).await;
            };
            let iam = clients.get(aws_sdk_iam::Client::new);
            let keys = read_keys(&iam, user_name, &before["access_keys"]).await?;
            let mut after = before.clone();
            after["access_keys"] = json!(keys);
            Ok(after)
        })
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            Ok(list_users(clients)
                .await?
                .into_iter()
                .map(|(_, name)| name)
                .collect())
        })
    }
}

/// Whether `id` has the form of a user's unique id: `AIDA` and more upper-case letters and
/// digits, 16 to 32 in all (AWS gives 21). A user name may begin with `AIDA` too (`AIDAN`,
/// `aidan-ci`); it is read as a name.
fn is_unique_id(id: &str) -> bool {
    (16..=32).contains(&id.len())
        && id.starts_with("AIDA")
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// The action kind that changes a user's access keys and nothing else of it.
const KEY_KIND: &str = "iam:UpdateAccessKey";

/// Per account: IAM unique id (`AIDA…`) → user name; kept for as long as the worker runs.
#[derive(Default)]
struct UserIds(Mutex<HashMap<String, HashMap<String, String>>>);

/// Reads the user whose unique id is `id`. The name the id resolves to counts only when the
/// user read under it has that id: a user deleted and made again under the same name, or
/// renamed, is another user or goes by another name, so a cached name that no longer reads as
/// the id is looked up afresh once, and an id no user has is gone.
async fn observe_by_unique_id(c: &Clients, id: &str) -> Result<Value, CloudError> {
    let gone = || CloudError::NotFound {
        resource: format!("IAM user with unique id {id}"),
    };
    for fresh in [false, true] {
        let name = resolve_user(c, id, fresh).await?;
        match observe_user(c, &name).await {
            Ok(user) if user["user_id"] == id => return Ok(user),
            Ok(_) | Err(CloudError::NotFound { .. }) if fresh => return Err(gone()),
            Ok(_) | Err(CloudError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Err(gone())
}

/// Resolves an IAM unique id to a user name, through a per-account cache of ListUsers that
/// is refreshed when the id is not in it, or when `fresh` (a name once resolved may since
/// have been deleted, made again or renamed: [`observe_by_unique_id`] checks what it reads).
async fn resolve_user(c: &Clients, id: &str, fresh: bool) -> Result<String, CloudError> {
    let users = c.shared::<UserIds>();
    // Held while the users are listed: findings of one account that arrive together wait for
    // one ListUsers instead of each making its own.
    let mut known = users.0.lock().await;
    if let Some(name) = known
        .get(c.account())
        .and_then(|m| m.get(id))
        .filter(|_| !fresh)
    {
        return Ok(name.clone());
    }
    let map: HashMap<String, String> = list_users(c).await?.into_iter().collect();
    let found = map.get(id).cloned();
    known.insert(c.account().to_string(), map);
    found.ok_or_else(|| CloudError::NotFound {
        resource: format!("IAM user with unique id {id}"),
    })
}

/// Every IAM user of an account, as (unique id, user name).
async fn list_users(c: &Clients) -> Result<Vec<(String, String)>, CloudError> {
    let users = c
        .get(aws_sdk_iam::Client::new)
        .list_users()
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify("iam:ListUsers", e))?;
    Ok(users
        .into_iter()
        .map(|u| (u.user_id, u.user_name))
        .collect())
}

fn time_text(t: &aws_sdk_iam::primitives::DateTime) -> Option<String> {
    chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos())
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// A user as its scripts read it: its name, unique id, tags (GetUser returns them), and its
/// access keys with when each was last used.
async fn observe_user(c: &Clients, user_name: &str) -> Result<Value, CloudError> {
    let iam = c.get(aws_sdk_iam::Client::new);
    let (user, keys) = tokio::join!(
        async {
            iam.get_user()
                .user_name(user_name)
                .send()
                .await
                .map_err(|e| not_found(classify("iam:GetUser", e), &["NoSuchEntity"]))
        },
        read_keys(&iam, user_name, &Value::Null)
    );
    let user = user?;
    let keys = keys?;
    let user_id = user.user().map(|u| u.user_id().to_string());
    let tags = tag_map(
        user.user()
            .map(aws_sdk_iam::types::User::tags)
            .unwrap_or_default()
            .iter()
            .map(|t| (t.key(), t.value())),
    );
    Ok(json!({ "user_name": user_name, "user_id": user_id, "access_keys": keys, "tags": tags }))
}

/// A user's access keys. When a key was last used is asked of IAM for each key not in `known`
/// (the keys of an earlier reading): deactivating a key does not change it.
async fn read_keys(
    iam: &aws_sdk_iam::Client,
    user_name: &str,
    known: &Value,
) -> Result<Vec<Value>, CloudError> {
    let metadata = iam
        .list_access_keys()
        .user_name(user_name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| not_found(classify("iam:ListAccessKeys", e), &["NoSuchEntity"]))?;
    let mut keys = Vec::new();
    for k in &metadata {
        let Some(key_id) = k.access_key_id() else {
            continue;
        };
        let earlier = known
            .as_array()
            .and_then(|ks| ks.iter().find(|e| e["access_key_id"] == key_id));
        let last_used_at = match earlier {
            Some(e) => e["last_used_at"].clone(),
            None => {
                let last_used = iam
                    .get_access_key_last_used()
                    .access_key_id(key_id)
                    .send()
                    .await
                    .map_err(|e| classify("iam:GetAccessKeyLastUsed", e))?;
                json!(
                    last_used
                        .access_key_last_used()
                        .and_then(|u| u.last_used_date())
                        .and_then(time_text)
                )
            }
        };
        keys.push(json!({
            "access_key_id": key_id,
            "status": k.status().map(aws_sdk_iam::types::StatusType::as_str),
            "created_at": k.create_date().and_then(time_text),
            "last_used_at": last_used_at,
        }));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_unique_id_is_told_from_a_name_that_begins_like_one() {
        for id in ["AIDAJQABLZS4A3QDU576Q", "AIDAQ3EGRTBDEXAMPLE1"] {
            assert!(IamUser.named_otherwise(id), "{id}");
        }
        for name in [
            "AIDAN",
            "aidan-ci",
            "AIDAJQABLZS4A3QDU576q",
            "alice",
            "AIDA-JQABLZS4A3QDU5",
        ] {
            assert!(!IamUser.named_otherwise(name), "{name}");
        }
    }
}
