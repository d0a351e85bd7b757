//! The dead-letter queue: what is in it and why, and moving messages back to the queue once
//! the cause is fixed.
//!
//! SQS has no way to look at a queue without receiving from it, so both listing and redriving
//! start with one scan: receive until the DLQ has nothing more to show, each message hidden
//! meanwhile so a scan sees each once, then make what was not moved visible again at once.
//!
//! Each of those receives raises SQS's own receive count of the message in the DLQ, so the
//! count a listing shows is not that one: it is how many times the event queue delivered the
//! message before it was dead-lettered, which no listing changes. rectify keeps that count in a
//! message attribute when it dead-letters a message; a message SQS moved itself was delivered
//! exactly the event queue's `maxReceiveCount` times.

use std::collections::BTreeMap;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use serde::Serialize;

use crate::cloud::{CloudError, classify};
use crate::source::poll::{REASON_ATTRIBUTE, RECEIVE_COUNT_ATTRIBUTE};

/// One message in the DLQ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    pub id: String,
    /// The reason rectify gave when it dead-lettered the message, or a note that SQS moved it.
    pub reason: String,
    /// Times the event queue delivered the message before it was dead-lettered (a listing's
    /// own receives do not count).
    pub receive_count: u64,
    pub body: String,
    /// When the message was sent to the queue it is in (RFC 3339, UTC): when rectify
    /// dead-lettered it, or when it was first sent for one SQS moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
}

/// What [`redrive`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Redriven {
    /// Ids of the messages moved back to the queue.
    pub moved: Vec<String>,
    /// Ids asked for that are not in the DLQ.
    pub missing: Vec<String>,
}

/// How long a scan hides each message it received, in seconds: long enough that a scan sees
/// each message once.
const SCAN_VISIBILITY: i32 = 300;

/// Receives in a row that bring nothing new before a scan stops (a scan slower than the
/// visibility timeout sees messages again).
const STALE_RECEIVES: usize = 3;

/// A message seen by a scan, with the receipt handle of its latest receive (only that one is
/// sure to change its visibility or delete it).
struct Scanned {
    letter: DeadLetter,
    receipt: Option<String>,
}

/// Every message in the DLQ at `url`, by id, each hidden until released. `moved_after` is the
/// event queue's `maxReceiveCount`, the receive count of a message SQS moved itself.
async fn scan_dlq(
    sqs: &Client,
    url: &str,
    moved_after: Option<u64>,
) -> Result<BTreeMap<String, Scanned>, CloudError> {
    let mut seen: BTreeMap<String, Scanned> = BTreeMap::new();
    let mut stale = 0;
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(SCAN_VISIBILITY)
            .wait_time_seconds(0)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await;
        let messages = match received {
            Ok(out) => out.messages.unwrap_or_default(),
            Err(e) => {
                release(sqs, url, seen.values()).await;
                return Err(classify("sqs:ReceiveMessage", e));
            }
        };
        // Stop when the DLQ has nothing more to show: an empty receive, or (the scan being
        // slower than the visibility timeout) a few receives in a row with nothing new.
        if messages.is_empty() {
            break;
        }
        let before = seen.len();
        for m in messages {
            let letter = dead_letter(&m, moved_after);
            let receipt = m.receipt_handle().map(str::to_string);
            seen.insert(letter.id.clone(), Scanned { letter, receipt });
        }
        if seen.len() == before {
            stale += 1;
            if stale >= STALE_RECEIVES {
                break;
            }
        } else {
            stale = 0;
        }
    }
    Ok(seen)
}

fn dead_letter(m: &Message, moved_after: Option<u64>) -> DeadLetter {
    let attribute = |name: &str| {
        m.message_attributes()
            .and_then(|a| a.get(name))
            .and_then(|v| v.string_value())
    };
    let kept = attribute(RECEIVE_COUNT_ATTRIBUTE).and_then(|c| c.parse::<u64>().ok());
    let moved_by_sqs = attribute(REASON_ATTRIBUTE).is_none();
    // Without either, SQS's own count (which includes listings) is all there is.
    let sqs_count = || {
        m.attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let receive_count = kept
        .or(moved_after.filter(|_| moved_by_sqs))
        .unwrap_or_else(sqs_count);
    DeadLetter {
        id: m.message_id().unwrap_or_default().to_string(),
        reason: m
            .message_attributes()
            .and_then(|a| a.get(REASON_ATTRIBUTE))
            .and_then(|v| v.string_value())
            .unwrap_or("(moved by SQS after too many receives)")
            .to_string(),
        receive_count,
        body: m.body().unwrap_or_default().to_string(),
        sent_at: m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .and_then(|t| t.parse::<i64>().ok())
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    }
}

/// Makes scanned messages visible again at once (best effort: a message left hidden comes
/// back after the scan's visibility timeout anyway).
async fn release<'a>(sqs: &Client, url: &str, scanned: impl IntoIterator<Item = &'a Scanned>) {
    for r in scanned.into_iter().filter_map(|s| s.receipt.as_ref()) {
        let _ = sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(r)
            .visibility_timeout(0)
            .send()
            .await;
    }
}

/// The messages in the DLQ at `url`, by id; they stay in it. `moved_after` is the event
/// queue's `maxReceiveCount` when it is known.
pub async fn list(
    sqs: &Client,
    url: &str,
    moved_after: Option<u64>,
) -> Result<Vec<DeadLetter>, CloudError> {
    let seen = scan_dlq(sqs, url, moved_after).await?;
    release(sqs, url, seen.values()).await;
    Ok(seen.into_values().map(|s| s.letter).collect())
}

/// Moves messages from the DLQ at `dlq_url` back to the queue at `queue_url`: those named in
/// `ids`, or every one when `ids` is empty. Each is sent to the queue before it is deleted from
/// the DLQ, so a failure between the two duplicates a message and never loses one.
pub async fn redrive(
    sqs: &Client,
    dlq_url: &str,
    queue_url: &str,
    ids: &[String],
) -> Result<Redriven, CloudError> {
    let mut seen = scan_dlq(sqs, dlq_url, None).await?;
    let wanted: Vec<String> = seen
        .keys()
        .filter(|id| ids.is_empty() || ids.contains(id))
        .cloned()
        .collect();
    let mut done = Redriven::default();
    let mut failed = None;
    for id in wanted {
        if let Err(e) = move_back(sqs, dlq_url, queue_url, &seen[&id]).await {
            failed = Some(e);
            break;
        }
        seen.remove(&id);
        done.moved.push(id);
    }
    // What was not moved: visible again at once for other readers.
    release(sqs, dlq_url, seen.values()).await;
    if let Some(e) = failed {
        return Err(e);
    }
    done.missing = ids
        .iter()
        .filter(|i| !done.moved.contains(i))
        .cloned()
        .collect();
    Ok(done)
}

async fn move_back(
    sqs: &Client,
    dlq_url: &str,
    queue_url: &str,
    m: &Scanned,
) -> Result<(), CloudError> {
    sqs.send_message()
        .queue_url(queue_url)
        .message_body(&m.letter.body)
        .send()
        .await
        .map_err(|e| classify("sqs:SendMessage", e))?;
    if let Some(receipt) = &m.receipt {
        sqs.delete_message()
            .queue_url(dlq_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| classify("sqs:DeleteMessage", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;

    #[test]
    fn a_dead_letter_carries_its_reason_and_receive_count() {
        let m = Message::builder()
            .message_id("m1")
            .body("not an event")
            .message_attributes(
                REASON_ATTRIBUTE,
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("not JSON")
                    .build()
                    .unwrap(),
            )
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "3")
            .build();
        assert_eq!(
            dead_letter(&m, None),
            DeadLetter {
                id: "m1".into(),
                reason: "not JSON".into(),
                receive_count: 3,
                body: "not an event".into(),
                sent_at: None,
            }
        );
    }

    #[test]
    fn a_message_sqs_moved_says_so() {
        let m = Message::builder().message_id("m2").body("{}").build();
        let d = dead_letter(&m, None);
        assert_eq!(d.reason, "(moved by SQS after too many receives)");
        assert_eq!(d.receive_count, 0);
    }

    fn text(v: &str) -> MessageAttributeValue {
        MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    }

    #[test]
    fn a_listing_shows_the_event_queue_count_not_its_own_receives() {
        // Dead-lettered by rectify after two deliveries, then received by three listings.
        let m = Message::builder()
            .message_id("m3")
            .body("x")
            .message_attributes(REASON_ATTRIBUTE, text("not JSON"))
            .message_attributes(RECEIVE_COUNT_ATTRIBUTE, text("2"))
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "5")
            .build();
        assert_eq!(dead_letter(&m, Some(5)).receive_count, 2);
        // Moved by SQS once the event queue had delivered it maxReceiveCount times.
        let m = Message::builder()
            .message_id("m4")
            .body("{}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "9")
            .build();
        assert_eq!(dead_letter(&m, Some(5)).receive_count, 5);
    }

    #[test]
    fn a_listing_keeps_the_json_shape() {
        let d = DeadLetter {
            id: "m1".into(),
            reason: "r".into(),
            receive_count: 2,
            body: "b".into(),
            sent_at: None,
        };
        assert_eq!(
            serde_json::to_string(&d).unwrap(),
            r#"{"id":"m1","reason":"r","receive_count":2,"body":"b"}"#
        );
    }
}
