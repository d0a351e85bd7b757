//! `rectify bootstrap`: creates the event queue, the control queue, their DLQ and the tables, or
//! finds them. Idempotent.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::cloud::{CloudError, classify};
use crate::state::{BY_RESOURCE_INDEX, Names};

fn attr(name: &str) -> Result<AttributeDefinition, CloudError> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| CloudError::Unsupported(e.to_string()))
}

/// Receives before SQS moves a message to the DLQ.
pub const MAX_RECEIVE_COUNT: u32 = 5;
/// How long the DLQ keeps a message: 14 days, SQS's maximum.
pub const DLQ_RETENTION_SECONDS: u32 = 14 * 24 * 3600;

/// One thing bootstrap made or found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Made {
    pub kind: &'static str,
    pub name: String,
    /// `created`, `found` or `updated`.
    pub state: &'static str,
    pub detail: String,
}

/// Creates (or finds) the DLQ, the event queue and the control queue with their redrive
/// policies, and the three tables.
pub async fn bootstrap(
    sqs: &aws_sdk_sqs::Client,
    ddb: &aws_sdk_dynamodb::Client,
    names: &Names,
    visibility_timeout: u32,
) -> Result<Vec<Made>, CloudError> {
    let mut made = Vec::new();
    let (dlq_url, state) = ensure_queue(
        sqs,
        &names.dlq,
        &[(
            QueueAttributeName::MessageRetentionPeriod,
            DLQ_RETENTION_SECONDS.to_string(),
        )],
    )
    .await?;
    made.push(Made {
        kind: "dlq",
        name: names.dlq.clone(),
        state,
        detail: "retention 14 days".into(),
    });
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| classify("sqs:GetQueueAttributes", e))?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| CloudError::Unsupported(format!("{} has no ARN", names.dlq)))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": MAX_RECEIVE_COUNT.to_string(),
    })
    .to_string();
    for (kind, name, what) in [
        ("queue", &names.queue, "findings"),
        (
            "control queue",
            &names.control,
            "approvals and retries only",
        ),
    ] {
        let (_, state) = ensure_queue(
            sqs,
            name,
            &[
                (
                    QueueAttributeName::VisibilityTimeout,
                    visibility_timeout.to_string(),
                ),
                (QueueAttributeName::RedrivePolicy, redrive.clone()),
            ],
        )
        .await?;
        made.push(Made {
            kind,
            name: name.clone(),
            state,
            detail: format!(
                "{what}; visibility {visibility_timeout} s, to the DLQ after {MAX_RECEIVE_COUNT} receives"
            ),
        });
    }
    for (table, pk, sk) in [
        (
            &names.settings,
            "remediation",
            Some(("scope", ScalarAttributeType::S)),
        ),
        (&names.jobs, "id", None),
        (&names.audit, "chain", Some(("seq", ScalarAttributeType::N))),
    ] {
        let index = (table == &names.jobs).then_some(BY_RESOURCE_INDEX);
        let mut detail = match &sk {
            Some((sk, _)) => format!("key {pk} + {sk}, on demand"),
            None => format!("key {pk}, on demand"),
        };
        if let Some(i) = index {
            detail.push_str(&format!(", index {i}"));
        }
        let state = ensure_table(ddb, table, pk, sk, index).await?;
        made.push(Made {
            kind: "table",
            name: table.clone(),
            state,
            detail,
        });
    }
    Ok(made)
}

/// A redrive policy's target and receive count, whatever JSON spelling carries them: SQS takes
/// `maxReceiveCount` as a string and returns it as a number.
fn redrive_meaning(policy: &str) -> Option<(String, u64)> {
    let v: serde_json::Value = serde_json::from_str(policy).ok()?;
    let target = v.get("deadLetterTargetArn")?.as_str()?.to_string();
    let count = match v.get("maxReceiveCount")? {
        serde_json::Value::String(s) => s.parse().ok()?,
        n => n.as_u64()?,
    };
    Some((target, count))
}

async fn ensure_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(QueueAttributeName, String)],
) -> Result<(String, &'static str), CloudError> {
    if let Ok(out) = sqs.get_queue_url().queue_name(name).send().await {
        let url = out.queue_url().unwrap_or_default().to_string();
        let current = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| classify("sqs:GetQueueAttributes", e))?;
        let current = current.attributes().cloned().unwrap_or_default();
        let differs = attributes.iter().any(|(k, v)| {
            let have = current.get(k).map_or("", String::as_str);
            match k {
                // Compare the redrive policy by meaning, not by its JSON spelling.
                QueueAttributeName::RedrivePolicy => redrive_meaning(have) != redrive_meaning(v),
                _ => have != v,
            }
        });
        if !differs {
            return Ok((url, "found"));
        }
        sqs.set_queue_attributes()
            .queue_url(&url)
            .set_attributes(Some(attributes.iter().cloned().collect()))
            .send()
            .await
            .map_err(|e| classify("sqs:SetQueueAttributes", e))?;
        return Ok((url, "updated"));
    }
    let out = sqs
        .create_queue()
        .queue_name(name)
        .set_attributes(Some(attributes.iter().cloned().collect()))
        .send()
        .await
        .map_err(|e| classify("sqs:CreateQueue", e))?;
    Ok((out.queue_url().unwrap_or_default().to_string(), "created"))
}

/// The jobs table's index of jobs by resource (`resource_key`, newest by `created_at`).
fn by_resource_index() -> Result<GlobalSecondaryIndex, CloudError> {
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(|e| CloudError::Unsupported(e.to_string()))
    };
    GlobalSecondaryIndex::builder()
        .index_name(BY_RESOURCE_INDEX)
        .key_schema(key("resource_key", KeyType::Hash)?)
        .key_schema(key("created_at", KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| CloudError::Unsupported(e.to_string()))
}

async fn ensure_table(
    ddb: &aws_sdk_dynamodb::Client,
    name: &str,
    pk: &str,
    sk: Option<(&str, ScalarAttributeType)>,
    index: Option<&str>,
) -> Result<&'static str, CloudError> {
    match ddb.describe_table().table_name(name).send().await {
        Ok(out) => {
            let has_index = out.table().is_some_and(|t| {
                t.global_secondary_indexes()
                    .iter()
                    .any(|i| i.index_name() == index)
            });
            if index.is_none() || has_index {
                return Ok("found");
            }
            let create = aws_sdk_dynamodb::types::CreateGlobalSecondaryIndexAction::builder()
                .index_name(BY_RESOURCE_INDEX)
                .set_key_schema(Some(by_resource_index()?.key_schema().to_vec()))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| CloudError::Unsupported(e.to_string()))?;
            ddb.update_table()
                .table_name(name)
                .attribute_definitions(attr("resource_key")?)
                .attribute_definitions(attr("created_at")?)
                .global_secondary_index_updates(
                    aws_sdk_dynamodb::types::GlobalSecondaryIndexUpdate::builder()
                        .create(create)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| classify("dynamodb:UpdateTable", e))?;
            return Ok("updated");
        }
        Err(e) => {
            let e = classify("dynamodb:DescribeTable", e);
            if e.code() != Some("ResourceNotFoundException") {
                return Err(e);
            }
        }
    }
    let attr = |n: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(n)
            .attribute_type(t)
            .build()
            .map_err(|e| CloudError::Unsupported(e.to_string()))
    };
    let key = |n: &str, t: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(n)
            .key_type(t)
            .build()
            .map_err(|e| CloudError::Unsupported(e.to_string()))
    };
    let mut create = ddb
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr(pk, ScalarAttributeType::S)?)
        .key_schema(key(pk, KeyType::Hash)?);
    if let Some((sk, t)) = sk {
        create = create
            .attribute_definitions(attr(sk, t)?)
            .key_schema(key(sk, KeyType::Range)?);
    }
    if index.is_some() {
        create = create
            .attribute_definitions(attr("resource_key", ScalarAttributeType::S)?)
            .attribute_definitions(attr("created_at", ScalarAttributeType::S)?)
            .global_secondary_indexes(by_resource_index()?);
    }
    match create.send().await {
        Ok(_) => Ok("created"),
        Err(e) => match classify("dynamodb:CreateTable", e) {
            // Another bootstrap got there first.
            e if e.code() == Some("ResourceInUseException") => Ok("found"),
            e => Err(e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::redrive_meaning;

    #[test]
    fn a_redrive_policy_means_the_same_whether_its_count_is_a_string_or_a_number() {
        let arn = "arn:aws:sqs:us-east-1:111122223333:p-events-dlq";
        let sent = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":"5"}}"#);
        let read = format!(r#"{{"maxReceiveCount":5,"deadLetterTargetArn":"{arn}"}}"#);
        assert_eq!(redrive_meaning(&sent), Some((arn.to_string(), 5)));
        assert_eq!(redrive_meaning(&sent), redrive_meaning(&read));
        let other = format!(r#"{{"deadLetterTargetArn":"{arn}","maxReceiveCount":6}}"#);
        assert_ne!(redrive_meaning(&sent), redrive_meaning(&other));
        assert_eq!(redrive_meaning(""), None);
    }
}
