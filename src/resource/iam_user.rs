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
            if id.starts_with("AIDA") {
                let name = resolve_user(clients, id).await?;
                observe_user(clients, &name).await
            } else {
                match observe_user(clients, id).await {
                    Err(CloudError::NotFound { .. }) => {
                        let name = resolve_user(clients, id).await?;
                        observe_user(clients, &name).await
                    }
                    other => other,
                }
            }
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

/// Per account: IAM unique id (`AIDA…`) → user name; kept for as long as the worker runs.
#[derive(Default)]
struct UserIds(Mutex<HashMap<String, HashMap<String, String>>>);

/// Resolves an IAM unique id to a user name, through a per-account cache of ListUsers that
/// is refreshed when the id is not in it.
async fn resolve_user(c: &Clients, id: &str) -> Result<String, CloudError> {
    let users = c.shared::<UserIds>();
    if let Some(name) = users
        .0
        .lock()
        .await
        .get(c.account())
        .and_then(|m| m.get(id))
    {
        return Ok(name.clone());
    }
    let map: HashMap<String, String> = list_users(c).await?.into_iter().collect();
    let found = map.get(id).cloned();
    users.0.lock().await.insert(c.account().to_string(), map);
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

async fn observe_user(c: &Clients, user_name: &str) -> Result<Value, CloudError> {
    let iam = c.get(aws_sdk_iam::Client::new);
    let user = iam
        .get_user()
        .user_name(user_name)
        .send()
        .await
        .map_err(|e| not_found(classify("iam:GetUser", e), &["NoSuchEntity"]))?;
    let user_id = user.user().map(|u| u.user_id().to_string());
    let metadata = iam
        .list_access_keys()
        .user_name(user_name)
        .into_paginator()
        .items()
        .send()
        .try_collect()
        .await
        .map_err(|e| classify("iam:ListAccessKeys", e))?;
    let mut keys = Vec::new();
    for k in &metadata {
        let Some(key_id) = k.access_key_id() else {
            continue;
        };
        let last_used = iam
            .get_access_key_last_used()
            .access_key_id(key_id)
            .send()
            .await
            .map_err(|e| classify("iam:GetAccessKeyLastUsed", e))?;
        keys.push(json!({
            "access_key_id": key_id,
            "status": k.status().map(aws_sdk_iam::types::StatusType::as_str),
            "created_at": k.create_date().and_then(time_text),
            "last_used_at": last_used.access_key_last_used().and_then(|u| u.last_used_date()).and_then(time_text),
        }));
    }
    let tags = iam
        .list_user_tags()
        .user_name(user_name)
        .send()
        .await
        .map_err(|e| classify("iam:ListUserTags", e))?;
    let tags = tag_map(tags.tags().iter().map(|t| (t.key(), t.value())));
    Ok(json!({ "user_name": user_name, "user_id": user_id, "access_keys": keys, "tags": tags }))
}
