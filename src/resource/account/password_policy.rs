//! The account's IAM password policy (IAM is global: one policy per account).

use serde_json::{Value, json};

use crate::cloud::{Clients, CloudError, classify};

/// The policy as the observed shape's `password_policy`, or `null` when the account has none.
///
/// AWS leaves out what is not set: no `MaxPasswordAge` means passwords never expire (`null`),
/// no `PasswordReusePrevention` means none are remembered (`null`), no `HardExpiry` is `false`.
pub(super) async fn read(c: &Clients) -> Result<Value, CloudError> {
    match c
        .get(aws_sdk_iam::Client::new)
        .get_account_password_policy()
        .send()
        .await
    {
        Ok(out) => Ok(out.password_policy().map_or(Value::Null, |p| {
            // A zero is how some endpoints say "not set"; AWS's own minimum for each is 1.
            let set = |n: Option<i32>| n.filter(|n| *n > 0);
            json!({
                "minimum_password_length": p.minimum_password_length().unwrap_or(6),
                "require_symbols": p.require_symbols(),
                "require_numbers": p.require_numbers(),
                "require_uppercase_characters": p.require_uppercase_characters(),
                "require_lowercase_characters": p.require_lowercase_characters(),
                "allow_users_to_change_password": p.allow_users_to_change_password(),
                "expire_passwords": set(p.max_password_age()).is_some(),
                "max_password_age": set(p.max_password_age()),
                "password_reuse_prevention": set(p.password_reuse_prevention()),
                "hard_expiry": p.hard_expiry().unwrap_or(false),
            })
        })),
        Err(e) => match classify("iam:GetAccountPasswordPolicy", e) {
            e if e.is(&["NoSuchEntity"]) => Ok(Value::Null),
            e => Err(e),
        },
    }
}
