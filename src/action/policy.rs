//! Resource policy documents as text: statements appended and compared byte for byte.
//!
//! A bucket policy belongs to its owner, written in their layout. A fix that adds a statement
//! keeps every existing statement exactly as it was (its bytes, its place), so the change a
//! person reviews is the one statement added and nothing else, and the inverse is the old text.
//! The statements are read as raw JSON text (`serde_json`'s `RawValue`), never re-encoded.

use std::collections::BTreeMap;

use serde_json::Value;
use serde_json::value::RawValue;

use super::canonical_value;

/// The policy language version a new document is written in.
pub const VERSION: &str = "2012-10-17";

/// A policy document's statements, each as its exact text, and where they are in the text.
struct Document<'a> {
    /// The statements in order (a single statement written as an object is a list of one).
    statements: Vec<&'a RawValue>,
    /// The `Statement` value itself: a list, or a single object.
    statement: &'a RawValue,
    /// Every top-level field but `Statement`, canonical.
    rest: Value,
}

/// Refuses a policy text in which any object names a key twice. JSON parsers disagree on which
/// of two values counts (serde keeps the last; another reader may keep the first), so a planned
/// document that repeats a key could be checked as one policy and read by AWS as another.
pub fn unique_keys(text: &str, which: &str) -> Result<(), String> {
    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

    /// Any JSON value, read only to check the keys of its objects.
    struct Checked;
    impl<'de> de::Deserialize<'de> for Checked {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Checked, D::Error> {
            d.deserialize_any(Checked)
        }
    }
    impl<'de> Visitor<'de> for Checked {
        type Value = Checked;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_str<E>(self, _: &str) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_unit<E>(self) -> Result<Checked, E> {
            Ok(Checked)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
            while seq.next_element::<Checked>()?.is_some() {}
            Ok(Checked)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
            let mut seen = std::collections::BTreeSet::new();
            while let Some(key) = map.next_key::<String>()? {
                if !seen.insert(key.clone()) {
                    return Err(de::Error::custom(format!(
                        "the key \"{key}\" appears twice"
                    )));
                }
                map.next_value::<Checked>()?;
            }
            Ok(Checked)
        }
    }
    serde_json::from_str::<Checked>(text)
        .map(drop)
        .map_err(|e| format!("the {which} policy is refused: {e}"))
}

/// Where `part`, a slice of `text`, starts in it.
fn offset(text: &str, part: &str) -> usize {
    part.as_ptr() as usize - text.as_ptr() as usize
}

fn parse<'a>(text: &'a str, which: &str) -> Result<Document<'a>, String> {
    let top: BTreeMap<String, &'a RawValue> = serde_json::from_str(text)
        .map_err(|e| format!("the {which} policy is not a JSON object ({e})"))?;
    let statement = *top
        .get("Statement")
        .ok_or_else(|| format!("the {which} policy has no Statement"))?;
    let statements = match statement.get().as_bytes().first() {
        Some(b'[') => serde_json::from_str::<Vec<&'a RawValue>>(statement.get())
            .map_err(|e| format!("the {which} policy's Statement is not a list ({e})"))?,
        Some(b'{') => vec![statement],
        _ => {
            return Err(format!(
                "the {which} policy's Statement is neither a list nor an object"
            ));
        }
    };
    let mut rest = serde_json::Map::new();
    for (k, v) in top.iter().filter(|(k, _)| *k != "Statement") {
        let v: Value = serde_json::from_str(v.get()).map_err(|e| e.to_string())?;
        rest.insert(k.clone(), v);
    }
    Ok(Document {
        statements,
        statement,
        rest: canonical_value(&Value::Object(rest)),
    })
}

/// The policy `policy` with `statement` (JSON text) added as its last statement; every byte of
/// the old text is kept. No policy gives a new document of that one statement. A `Statement`
/// written as a single object becomes a list of it and the new one.
pub fn append_statement(policy: Option<&str>, statement: &str) -> Result<String, String> {
    if !serde_json::from_str::<Value>(statement).is_ok_and(|v| v.is_object()) {
        return Err("the statement to add is not a JSON object".into());
    }
    let Some(old) = policy else {
        return Ok(format!(
            "{{\"Version\":\"{VERSION}\",\"Statement\":[{statement}]}}"
        ));
    };
    let doc = parse(old, "observed")?;
    let list = doc.statement.get();
    let start = offset(old, list);
    let (at, insert) = if list.starts_with('{') {
        let end = start + list.len();
        return Ok(format!(
            "{}[{list},{statement}]{}",
            &old[..start],
            &old[end..]
        ));
    } else if let Some(last) = doc.statements.last() {
        (
            offset(old, last.get()) + last.get().len(),
            format!(",{statement}"),
        )
    } else {
        (start + 1, statement.to_string())
    };
    Ok(format!("{}{insert}{}", &old[..at], &old[at..]))
}

/// The AWS partition of a region (`aws-cn` for `cn-*`, `aws-us-gov` for `us-gov-*`).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// Whether `new` is the bucket policy `old` (none when the bucket had none) with exactly one
/// statement added at the end, every old statement kept byte for byte and in order, the other
/// top-level fields unchanged, and the added statement the TLS deny of [`tls_deny`]. A new
/// document holds only `Version` 2012-10-17 and that statement.
pub fn only_adds_tls_deny(
    old: Option<&str>,
    new: &str,
    bucket: &str,
    region: &str,
) -> Result<(), String> {
    unique_keys(new, "planned")?;
    let planned = parse(new, "planned")?;
    if !planned.statement.get().starts_with('[') {
        return Err("the planned policy's Statement is not a list".into());
    }
    let (old_statements, old_rest) = match old {
        Some(text) => {
            let doc = parse(text, "observed")?;
            (doc.statements, doc.rest)
        }
        None => (Vec::new(), serde_json::json!({ "Version": VERSION })),
    };
    if planned.rest != old_rest {
        return Err(match old {
            Some(_) => "it changes fields of the policy other than its statements".into(),
            None => format!("a new policy holds only Version {VERSION} and its Statement"),
        });
    }
    if planned.statements.len() != old_statements.len() + 1 {
        return Err(format!(
            "it has {} statements where the observed policy has {}: it may add exactly one",
            planned.statements.len(),
            old_statements.len()
        ));
    }
    for (i, (o, n)) in old_statements.iter().zip(&planned.statements).enumerate() {
        if o.get() != n.get() {
            return Err(format!(
                "statement {} differs from the observed one (statements are kept byte for byte, in order)",
                i + 1
            ));
        }
    }
    let added = planned.statements[old_statements.len()];
    let added: Value = serde_json::from_str(added.get()).map_err(|e| e.to_string())?;
    tls_deny(&added, bucket, partition(region)).map_err(|why| {
        format!(
            "the added statement {} is not the TLS deny: {why}",
            old_statements.len() + 1
        )
    })
}

/// Checks that `st` is exactly the statement that denies every S3 call on the bucket and its
/// objects made without TLS: `Effect` `Deny`, `Principal` `*` (or `{"AWS": "*"}`), `Action`
/// `s3:*`, `Resource` the bucket's ARN and its objects' (`arn:aws:s3:::b`, `arn:aws:s3:::b/*`),
/// `Condition` `{"Bool": {"aws:SecureTransport": "false"}}`, an optional `Sid`, nothing else.
pub fn tls_deny(st: &Value, bucket: &str, partition: &str) -> Result<(), String> {
    let m = st.as_object().ok_or("it is not a JSON object")?;
    const FIELDS: [&str; 6] = [
        "Sid",
        "Effect",
        "Principal",
        "Action",
        "Resource",
        "Condition",
    ];
    if let Some(k) = m.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!(
            "it has {k}; it may have only {}",
            FIELDS.join(", ")
        ));
    }
    if m.get("Sid").is_some_and(|s| !s.is_string()) {
        return Err("its Sid is not a string".into());
    }
    if m.get("Effect") != Some(&Value::from("Deny")) {
        return Err("its Effect is not Deny".into());
    }
    let principal = m.get("Principal");
    if principal != Some(&Value::from("*")) && principal != Some(&serde_json::json!({"AWS": "*"})) {
        return Err("its Principal is not \"*\"".into());
    }
    let action = m.get("Action");
    if action != Some(&Value::from("s3:*")) && action != Some(&serde_json::json!(["s3:*"])) {
        return Err("its Action is not \"s3:*\"".into());
    }
    let arn = format!("arn:{partition}:s3:::{bucket}");
    let mut wanted = vec![arn.clone(), format!("{arn}/*")];
    let mut resources: Vec<String> = match m.get("Resource") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| r.as_str().map(str::to_string).ok_or(()))
            .collect::<Result<_, _>>()
            .map_err(|()| "its Resource holds a value that is not text".to_string())?,
        _ => Vec::new(),
    };
    resources.sort();
    wanted.sort();
    if resources != wanted {
        return Err(format!(
            "its Resource is not [{:?}, {:?}]",
            arn,
            format!("{arn}/*")
        ));
    }
    let condition = m.get("Condition").and_then(|c| c.get("Bool"));
    let only_secure_transport = m
        .get("Condition")
        .and_then(Value::as_object)
        .is_some_and(|c| c.len() == 1)
        && condition
            .and_then(Value::as_object)
            .is_some_and(|b| b.len() == 1)
        && condition
            .and_then(|b| b.get("aws:SecureTransport"))
            .is_some_and(|v| match v {
                Value::String(s) => s == "false",
                Value::Bool(b) => !b,
                Value::Array(items) => items.len() == 1 && items[0] == "false",
                _ => false,
            });
    if !only_secure_transport {
        return Err(
            "its Condition is not exactly {\"Bool\": {\"aws:SecureTransport\": \"false\"}}".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deny(bucket: &str) -> String {
        json!({"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
               "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")],
               "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
        .to_string()
    }

    const OLD: &str = "{\n  \"Version\": \"2012-10-17\",\n  \"Id\": \"owners\",\n  \"Statement\": [\n    {\"Sid\":\"Read\", \"Effect\": \"Allow\",\"Principal\":{\"AWS\":\"arn:aws:iam::111122223333:root\"},\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::b/*\"},\n    { \"Effect\" : \"Deny\", \"Principal\": \"*\", \"Action\": \"s3:DeleteBucket\", \"Resource\": \"arn:aws:s3:::b\" }\n  ]\n}\n";

    #[test]
    fn appending_keeps_every_old_byte_and_adds_one_statement_last() {
        let new = append_statement(Some(OLD), &deny("b")).unwrap();
        let cut = OLD.find("\n  ]").unwrap();
        assert_eq!(new, format!("{},{}{}", &OLD[..cut], deny("b"), &OLD[cut..]));
        assert!(only_adds_tls_deny(Some(OLD), &new, "b", "eu-west-1").is_ok());

        let created = append_statement(None, &deny("b")).unwrap();
        let v: Value = serde_json::from_str(&created).unwrap();
        assert_eq!(v["Version"], VERSION);
        assert_eq!(v["Statement"].as_array().unwrap().len(), 1);
        assert!(only_adds_tls_deny(None, &created, "b", "us-east-1").is_ok());

        let empty = r#"{"Version":"2012-10-17","Statement":[ ]}"#;
        let added = append_statement(Some(empty), &deny("b")).unwrap();
        assert_eq!(
            added,
            format!(r#"{{"Version":"2012-10-17","Statement":[{} ]}}"#, deny("b"))
        );
        assert!(only_adds_tls_deny(Some(empty), &added, "b", "us-east-1").is_ok());

        let single = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#;
        let listed = append_statement(Some(single), &deny("b")).unwrap();
        assert!(listed.contains(r#""Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"},{"#));
        assert!(only_adds_tls_deny(Some(single), &listed, "b", "us-east-1").is_ok());

        assert!(append_statement(Some("[]"), &deny("b")).is_err());
        assert!(append_statement(Some(r#"{"Version":"2012-10-17"}"#), &deny("b")).is_err());
        assert!(append_statement(None, "[1]").is_err());
    }

    #[test]
    fn only_one_tls_deny_may_be_added_and_old_statements_stay_byte_for_byte() {
        let good = append_statement(Some(OLD), &deny("b")).unwrap();
        let refused = |new: &str| only_adds_tls_deny(Some(OLD), new, "b", "us-east-1").unwrap_err();
        // An old statement re-encoded (the same JSON value, other bytes).
        let reencoded = good.replacen("\"Effect\": \"Allow\"", "\"Effect\":\"Allow\"", 1);
        assert!(refused(&reencoded).contains("statement 1 differs"));
        // Old statements reordered.
        let v: Value = serde_json::from_str(&good).unwrap();
        let mut swapped = v.clone();
        swapped["Statement"].as_array_mut().unwrap().swap(0, 1);
        assert!(refused(&swapped.to_string()).contains("differs"));
        // A statement dropped, or two added.
        let mut dropped = v.clone();
        dropped["Statement"].as_array_mut().unwrap().remove(0);
        assert!(refused(&dropped.to_string()).contains("exactly one"));
        let twice = append_statement(Some(&good), &deny("b")).unwrap();
        assert!(refused(&twice).contains("exactly one"));
        // The deny placed first (old statements moved).
        let first = OLD.replacen("[\n", &format!("[{},\n", deny("b")), 1);
        assert!(refused(&first).contains("differs"));
        // Another top-level field.
        let id = good.replacen("\"owners\"", "\"mine\"", 1);
        assert!(refused(&id).contains("other than its statements"));
        // Added statements that are not the TLS deny.
        for (what, statement) in [
            ("an Allow", deny("b").replace("Deny\"", "Allow\"")),
            ("another bucket", deny("other")),
            ("no condition", {
                let mut d: Value = serde_json::from_str(&deny("b")).unwrap();
                d.as_object_mut().unwrap().remove("Condition");
                d.to_string()
            }),
            (
                "a wider condition",
                deny("b").replace("aws:SecureTransport", "aws:SourceVpc"),
            ),
            ("an extra condition", {
                let mut d: Value = serde_json::from_str(&deny("b")).unwrap();
                d["Condition"]["StringEquals"] = json!({"aws:SourceVpc": "vpc-1"});
                d.to_string()
            }),
            ("one action only", deny("b").replace("s3:*", "s3:GetObject")),
            (
                "a named principal",
                deny("b").replace(
                    "\"Principal\":\"*\"",
                    "\"Principal\":{\"AWS\":\"arn:aws:iam::1:root\"}",
                ),
            ),
            ("a NotResource", {
                let mut d: Value = serde_json::from_str(&deny("b")).unwrap();
                d["NotResource"] = json!("arn:aws:s3:::b/keep/*");
                d.to_string()
            }),
            ("objects only", {
                let mut d: Value = serde_json::from_str(&deny("b")).unwrap();
                d["Resource"] = json!(["arn:aws:s3:::b/*"]);
                d.to_string()
            }),
        ] {
            let new = append_statement(Some(OLD), &statement).unwrap();
            assert!(
                refused(&new).contains("is not the TLS deny"),
                "{what}: {}",
                refused(&new)
            );
        }
        // A new policy carries nothing but its Version and the deny.
        let created =
            append_statement(None, &deny("b"))
                .unwrap()
                .replacen('{', "{\"Id\":\"x\",", 1);
        assert!(only_adds_tls_deny(None, &created, "b", "us-east-1").is_err());
        assert!(only_adds_tls_deny(Some(OLD), "not json", "b", "us-east-1").is_err());
    }

    #[test]
    fn the_tls_deny_names_the_buckets_partition() {
        let cn = deny("b").replace("arn:aws:", "arn:aws-cn:");
        let new = append_statement(None, &cn).unwrap();
        assert!(only_adds_tls_deny(None, &new, "b", "cn-north-1").is_ok());
        assert!(only_adds_tls_deny(None, &new, "b", "us-east-1").is_err());
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
    }
}
