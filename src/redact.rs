//! Secrets kept out of everything rectify stores: the audit copy of a resource's states and the
//! jobs table's before- and after-states go through this one function.
//!
//! A resource view rarely holds a secret, but a tag value, a description or a policy may, and
//! the trail and the jobs table are read by more people than the resource itself.

use serde_json::Value;

/// The settings of an account's IAM password policy: they name passwords without holding
/// one, and undo compares them as stored.
const PASSWORD_POLICY_SETTINGS: &[&str] = &[
    "password_policy",
    "minimum_password_length",
    "allow_users_to_change_password",
    "expire_passwords",
    "max_password_age",
    "password_reuse_prevention",
];

/// Keys whose values are secrets, wherever they appear.
fn secret_key(key: &str) -> bool {
    if PASSWORD_POLICY_SETTINGS.contains(&key) {
        return false;
    }
    let k = key.to_ascii_lowercase().replace(['_', '-'], "");
    [
        "secret",
        "password",
        "passphrase",
        "privatekey",
        "sessiontoken",
        "credential",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// Whether a string looks like a secret: an AWS secret access key (40 characters of base64) or a
/// PEM private key.
pub fn secret_text(s: &str) -> bool {
    (s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'+')
        && s.bytes()
            .any(|b| b == b'/' || b == b'+' || b.is_ascii_lowercase())
        && s.bytes().any(|b| b.is_ascii_uppercase()))
        || s.contains("PRIVATE KEY-----")
}

/// Replaces secrets in a value with `[redacted]`.
pub fn redact(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if secret_key(k) && !v.is_null() {
                    *v = Value::String("[redacted]".into());
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(s) if secret_text(s) => *s = "[redacted]".into(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_password_policy_is_kept_and_a_password_is_not() {
        let policy = json!({"minimum_password_length": 14, "allow_users_to_change_password": true,
            "expire_passwords": true, "max_password_age": 90, "password_reuse_prevention": 24});
        let mut v = json!({"password_policy": policy.clone(), "tags": {"db_password": "hunter2"},
            "password": "hunter2"});
        redact(&mut v);
        assert_eq!(v["password_policy"], policy);
        assert_eq!(v["tags"]["db_password"], "[redacted]");
        assert_eq!(v["password"], "[redacted]");
    }
}
