//! Decoding: queue message bodies become typed [`Finding`]s.
//!
//! Real deployments put several shapes on the queue: the EventBridge event "Config Rules Compliance
//! Change" (raw, or inside an SNS envelope), the bare `detail` that Config's own SNS channel sends,
//! "Security Hub Findings - Imported" (ASFF), "Security Hub Findings - Custom Action" (ASFF
//! findings an operator sent with the console's "Remediate with rectify" action: handled like
//! any delivery, through every gate), "Findings Imported V2" (Security Hub's OCSF compliance
//! findings), and rectify's own control messages. Parsing is
//! lenient about what it does not need (unknown fields, a missing `oldEvaluationResult`, a null
//! `annotation`) and strict about what reaches an AWS call: account, region and resource id are
//! validated here, so a hostile id never leaves this module.
//!
//! The envelope is checked too: an EventBridge event's `source` must be the service its
//! `detail-type` belongs to; a Config event's `account` must be the account it is about (an
//! event forwarded from a member account's bus keeps its own account); Security Hub findings
//! are accepted only from Security Hub's own controls (`ProductArn`, `GeneratorId`), and a
//! finding delivered by another account than its own is returned as [`Message::Relayed`], to be
//! acted on only when that account is the Security Hub administrator (an Organization setting,
//! checked with [`check_relay`] where the settings are known).
//!
//! A body that is not a known event is a [`DecodeError`]: the worker sends it to the DLQ with the
//! error's text as the reason.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// The largest body accepted (SQS's own limit is 256 KiB).
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// JSON deeper than this is refused before it is parsed into a tree.
const MAX_JSON_DEPTH: usize = 64;

/// Where a finding came from; part of its identity (see [`Finding::observation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    Config,
    SecurityHub,
    Sweep,
    Operator,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::SecurityHub => "security-hub",
            Source::Sweep => "sweep",
            Source::Operator => "operator",
        }
    }
}

/// What the detective control said about the resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compliance {
    NonCompliant,
    Compliant,
    NotApplicable,
    InsufficientData,
    /// A Security Hub finding an operator suppressed: no work, and nothing cancelled.
    Suppressed,
}

impl Compliance {
    /// Only a non-compliant finding asks for a fix.
    pub fn wants_fix(self) -> bool {
        self == Compliance::NonCompliant
    }

    /// A resource that is now compliant or out of scope cancels pending work.
    pub fn cancels_pending(self) -> bool {
        matches!(self, Compliance::Compliant | Compliance::NotApplicable)
    }

    fn from_config(s: &str) -> Option<Compliance> {
        Some(match s {
            "NON_COMPLIANT" => Compliance::NonCompliant,
            "COMPLIANT" => Compliance::Compliant,
            "NOT_APPLICABLE" => Compliance::NotApplicable,
            "INSUFFICIENT_DATA" => Compliance::InsufficientData,
            _ => return None,
        })
    }
}

/// One decoded event about one resource.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub source: Source,
    /// The EventBridge or SNS id of the event, when the shape has one.
    pub event_id: Option<String>,
    pub account: String,
    pub region: String,
    /// The Config rule name as sent, suffixes and all.
    pub rule: String,
    /// The rule name with the suffixes Security Hub, conformance packs and Organization rules add
    /// taken off; the catalog routes on this (and on `rule`).
    pub rule_base: String,
    /// CloudFormation-style type, e.g. `AWS::S3::Bucket`.
    pub resource_type: String,
    pub resource_id: String,
    pub compliance: Compliance,
    /// When the evaluation happened; Config orders deliveries by it.
    pub ordered_at: Option<DateTime<Utc>>,
    /// What distinguishes this evaluation from another one of the same resource: Config's
    /// ordering timestamp, Security Hub's `UpdatedAt`, or the event id as a last resort.
    pub observation: String,
    pub annotation: Option<String>,
    /// For a Security Hub finding: where it lives, so rectify can write its outcome back.
    pub hub: Option<HubFinding>,
    /// Security Hub imported the finding carrying a note rectify wrote (ASFF `Note.UpdatedBy`
    /// `rectify`, an OCSF `comment` starting [`NOTE_PREFIX`]): each write-back is imported
    /// again, with the evaluation's time unchanged, so a job this delivery names that already
    /// exists is not run again for it. Never set for a custom action, which asks for a run.
    pub rectify_noted: bool,
}

/// Who the notes rectify writes on Security Hub findings say wrote them.
pub const NOTE_BY: &str = "rectify";
/// How every note or comment rectify writes on a Security Hub finding begins (the job's id
/// follows).
pub const NOTE_PREFIX: &str = "rectify job ";

/// The two formats Security Hub delivers findings in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HubFormat {
    /// Security Hub CSPM: "Security Hub Findings - Imported", updated by BatchUpdateFindings.
    Asff,
    /// Security Hub: "Findings Imported V2", updated by BatchUpdateFindingsV2.
    Ocsf,
}

/// A Security Hub finding's identity: what BatchUpdateFindings (`Id`, `ProductArn`) or
/// BatchUpdateFindingsV2 (`finding_info.uid`, `metadata.product.uid`, `cloud.account.uid`,
/// which is the finding's account) need to name it, and the region whose Security Hub
/// delivered it (a member region, or the aggregation region).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HubFinding {
    pub format: HubFormat,
    pub id: String,
    pub product: String,
    pub region: String,
}

/// A decoded queue message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// One or more findings (an ASFF event may carry several).
    Findings(Vec<Finding>),
    /// Security Hub findings about other accounts, delivered on the bus of account `by`: acted
    /// on only when `by` is the Organization's Security Hub administrator account (see
    /// [`check_relay`]); Security Hub emits member accounts' findings on the administrator's bus.
    Relayed { by: String, findings: Vec<Finding> },
    /// A well-formed AWS message that asks nothing of rectify (a configuration-item change on
    /// Config's SNS channel, an SNS subscription confirmation). Acknowledged, not dead-lettered.
    Ignored(String),
    /// An instruction from rectify itself (an approved job to execute).
    Control(Control),
}

/// rectify's own control messages, sent by the CLI to the worker's queue.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Control {
    /// Run a job again through every gate (an approval, or `jobs retry`).
    RunJob { job_id: String },
}

impl Control {
    /// The queue message body that carries this control message.
    pub fn body(&self) -> String {
        serde_json::json!({ "rectify": self }).to_string()
    }
}

/// The body is not something rectify can act on; the text is the DLQ reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("body is {0} bytes, larger than the {MAX_BODY_BYTES}-byte limit")]
    TooLarge(usize),
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error("body nests JSON deeper than {MAX_JSON_DEPTH} levels")]
    TooDeep,
    #[error("not a known event: {0}")]
    UnknownShape(String),
    #[error("malformed {kind}: {reason}")]
    Malformed { kind: &'static str, reason: String },
    #[error("untrusted envelope: {0}")]
    Untrusted(String),
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// Decodes one queue message body.
pub fn decode(body: &str) -> Result<Message, DecodeError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(DecodeError::TooLarge(body.len()));
    }
    let value = parse_json(body)?;
    decode_value(value, 0)
}

fn parse_json(text: &str) -> Result<Value, DecodeError> {
    // serde_json stops at 128 levels itself; refuse earlier and with a clearer reason.
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(DecodeError::TooDeep);
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    serde_json::from_str(text).map_err(|e| DecodeError::NotJson(e.to_string()))
}

fn decode_value(value: Value, depth: usize) -> Result<Message, DecodeError> {
    let Value::Object(obj) = &value else {
        return Err(DecodeError::UnknownShape(format!(
            "expected a JSON object, got {}",
            json_kind(&value)
        )));
    };
    // An SNS envelope: `Message` is a JSON string holding the real event.
    if let Some(kind) = obj.get("Type").and_then(Value::as_str)
        && obj.contains_key("TopicArn")
    {
        return match kind {
            "Notification" if depth == 0 => {
                let inner = obj.get("Message").and_then(Value::as_str).ok_or_else(|| {
                    DecodeError::Malformed {
                        kind: "SNS notification",
                        reason: "`Message` is missing or not a string".into(),
                    }
                })?;
                let mut message = decode_value(parse_json(inner)?, depth + 1)?;
                let sns_id = obj.get("MessageId").and_then(Value::as_str);
                if let (Message::Findings(findings), Some(id)) = (&mut message, sns_id) {
                    for f in findings.iter_mut().filter(|f| f.event_id.is_none()) {
                        f.event_id = Some(id.to_string());
                    }
                }
                Ok(message)
            }
            "Notification" => Err(DecodeError::UnknownShape(
                "an SNS envelope inside an SNS envelope".into(),
            )),
            "SubscriptionConfirmation" | "UnsubscribeConfirmation" => Ok(Message::Ignored(
                format!("SNS {kind}: confirm the subscription from the SNS console or API"),
            )),
            other => Err(DecodeError::UnknownShape(format!(
                "SNS message of type {other:?}"
            ))),
        };
    }
    if let Some(detail_type) = obj.get("detail-type").and_then(Value::as_str) {
        let event_id = obj.get("id").and_then(Value::as_str).map(str::to_string);
        let detail = obj.get("detail").cloned().unwrap_or(Value::Null);
        let want_source = match detail_type {
            "Config Rules Compliance Change" => "aws.config",
            "Security Hub Findings - Imported"
            | "Security Hub Findings - Custom Action"
            | "Findings Imported V2" => "aws.securityhub",
            other => {
                return Err(DecodeError::UnknownShape(format!(
                    "EventBridge detail-type {other:?}"
                )));
            }
        };
        let envelope = Envelope::read(obj, detail_type, want_source)?;
        return match detail_type {
            "Config Rules Compliance Change" => {
                let f = decode_config_detail(detail, event_id)?;
                envelope.check_config(&f)?;
                Ok(Message::Findings(vec![f]))
            }
            "Findings Imported V2" => {
                let findings = decode_hub_event(
                    &detail,
                    "Security Hub OCSF finding",
                    event_id,
                    &envelope.region,
                    decode_ocsf_finding,
                )?;
                Ok(envelope.route_security_hub(findings))
            }
            _ => {
                let mut findings = decode_hub_event(
                    &detail,
                    "Security Hub finding",
                    event_id,
                    &envelope.region,
                    decode_asff_finding,
                )?;
                if detail_type == "Security Hub Findings - Custom Action" {
                    // A person asked for these findings to be run, notes and all.
                    for f in &mut findings {
                        f.rectify_noted = false;
                    }
                }
                Ok(envelope.route_security_hub(findings))
            }
        };
    }
    if let Some(message_type) = obj.get("messageType").and_then(Value::as_str) {
        return match message_type {
            "ComplianceChangeNotification" => {
                decode_config_detail(value, None).map(|f| Message::Findings(vec![f]))
            }
            "ConfigurationItemChangeNotification"
            | "OversizedConfigurationItemChangeNotification"
            | "ConfigurationSnapshotDeliveryStarted"
            | "ConfigurationSnapshotDeliveryCompleted"
            | "ConfigurationHistoryDeliveryCompleted"
            | "ConfigRulesEvaluationStarted" => Ok(Message::Ignored(format!(
                "Config {message_type}: not a compliance change"
            ))),
            other => Err(DecodeError::UnknownShape(format!(
                "Config messageType {other:?}"
            ))),
        };
    }
    if let Some(control) = obj.get("rectify") {
        let control = serde_json::from_value::<Control>(control.clone()).map_err(|e| {
            DecodeError::Malformed {
                kind: "rectify control message",
                reason: e.to_string(),
            }
        })?;
        let Control::RunJob { job_id } = &control;
        validate_token("job id", job_id, 128)?;
        return Ok(Message::Control(control));
    }
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).take(6).collect();
    keys.sort_unstable();
    Err(DecodeError::UnknownShape(format!(
        "an object with keys [{}] is neither an EventBridge event, an SNS envelope, a Config notification nor a rectify control message",
        keys.join(", ")
    )))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The EventBridge envelope's `source`, `account` and `region`, checked before the detail is
/// trusted.
struct Envelope {
    account: String,
    region: String,
}

impl Envelope {
    fn read(
        obj: &serde_json::Map<String, Value>,
        detail_type: &str,
        want_source: &str,
    ) -> Result<Envelope, DecodeError> {
        let source = obj.get("source").and_then(Value::as_str).unwrap_or("");
        if source != want_source {
            return Err(DecodeError::Untrusted(format!(
                "`source` is {:?}: a {detail_type:?} event must come from {want_source:?}",
                truncate(source)
            )));
        }
        let account = obj.get("account").and_then(Value::as_str).ok_or_else(|| {
            DecodeError::Untrusted(
                "`account` (the account that emitted the event) is missing".into(),
            )
        })?;
        validate_account(account)?;
        let region = obj.get("region").and_then(Value::as_str).unwrap_or("");
        validate_region(region)?;
        Ok(Envelope {
            account: account.to_string(),
            region: region.to_string(),
        })
    }

    /// A Config event is emitted in the account it is about, and keeps that account when it is
    /// forwarded to another bus.
    fn check_config(&self, f: &Finding) -> Result<(), DecodeError> {
        if self.account == f.account {
            Ok(())
        } else {
            Err(DecodeError::Untrusted(format!(
                "`account` {} is not the finding's `awsAccountId` {}: a Config event keeps the account it was emitted in",
                self.account, f.account
            )))
        }
    }

    /// Findings all about the emitting account are its own; any other is relayed, and acted on
    /// only when the emitting account is the Security Hub administrator.
    fn route_security_hub(self, findings: Vec<Finding>) -> Message {
        if findings.iter().all(|f| f.account == self.account) {
            Message::Findings(findings)
        } else {
            Message::Relayed {
                by: self.account,
                findings,
            }
        }
    }
}

/// Whether findings relayed by account `by` (see [`Message::Relayed`]) may be acted on, given
/// the Organization's Security Hub administrator account; the error is the DLQ reason.
pub fn check_relay(by: &str, admin: Option<&str>) -> Result<(), String> {
    match admin {
        Some(a) if a == by => Ok(()),
        Some(a) => Err(format!(
            "untrusted envelope: account {by} sent Security Hub findings about other accounts, and it is not the Security Hub administrator account ({a})"
        )),
        None => Err(format!(
            "untrusted envelope: account {by} sent Security Hub findings about other accounts, and no Security Hub administrator account is set (`rectify settings securityhub-admin ID`)"
        )),
    }
}

/// Where Security Hub's own findings come from: `arn:aws:securityhub:<region>::product/aws/securityhub`.
fn check_product_arn(arn: &str) -> Result<(), DecodeError> {
    let ok = arn
        .strip_prefix("arn:aws:securityhub:")
        .and_then(|rest| rest.strip_suffix("::product/aws/securityhub"))
        .is_some_and(|region| validate_region(region).is_ok());
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Untrusted(format!(
            "`ProductArn` {:?} is not Security Hub's own (arn:aws:securityhub:<region>::product/aws/securityhub): findings imported by other products are not acted on",
            truncate(arn)
        )))
    }
}

/// The `GeneratorId` prefixes of Security Hub's standards and controls.
const SECURITY_HUB_GENERATORS: &[&str] = &[
    "security-control/",
    "aws-foundational-security-best-practices/v/",
    "cis-aws-foundations-benchmark/v/",
    "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/",
    "pci-dss/v/",
    "nist-800-53/v/",
    "aws-resource-tagging-standard/v/",
];

fn check_generator(id: &str) -> Result<(), DecodeError> {
    if SECURITY_HUB_GENERATORS
        .iter()
        .any(|p| id.strip_prefix(p).is_some_and(|rest| !rest.is_empty()))
    {
        Ok(())
    } else {
        Err(DecodeError::Untrusted(format!(
            "`GeneratorId` {:?} is not a Security Hub standard or control (such as security-control/S3.8)",
            truncate(id)
        )))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConfigDetail {
    resource_id: Option<String>,
    resource_type: Option<String>,
    aws_region: Option<String>,
    aws_account_id: Option<String>,
    config_rule_name: Option<String>,
    new_evaluation_result: Option<EvaluationResult>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EvaluationResult {
    evaluation_result_identifier: Option<EvaluationResultIdentifier>,
    compliance_type: Option<String>,
    annotation: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EvaluationResultIdentifier {
    evaluation_result_qualifier: Option<Qualifier>,
    ordering_timestamp: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Qualifier {
    config_rule_name: Option<String>,
    resource_type: Option<String>,
    resource_id: Option<String>,
}

fn malformed(kind: &'static str, reason: impl Into<String>) -> DecodeError {
    DecodeError::Malformed {
        kind,
        reason: reason.into(),
    }
}

fn decode_config_detail(detail: Value, event_id: Option<String>) -> Result<Finding, DecodeError> {
    const KIND: &str = "Config compliance change";
    let d: ConfigDetail =
        serde_json::from_value(detail).map_err(|e| malformed(KIND, e.to_string()))?;
    let result = d
        .new_evaluation_result
        .ok_or_else(|| malformed(KIND, "`newEvaluationResult` is missing"))?;
    let qualifier = result
        .evaluation_result_identifier
        .as_ref()
        .and_then(|i| i.evaluation_result_qualifier.as_ref());
    let pick = |top: Option<String>, inner: Option<&Option<String>>, name: &str| {
        top.or_else(|| inner.cloned().flatten())
            .ok_or_else(|| malformed(KIND, format!("`{name}` is missing")))
    };
    let rule = pick(
        d.config_rule_name,
        qualifier.map(|q| &q.config_rule_name),
        "configRuleName",
    )?;
    let resource_type = pick(
        d.resource_type,
        qualifier.map(|q| &q.resource_type),
        "resourceType",
    )?;
    let resource_id = pick(
        d.resource_id,
        qualifier.map(|q| &q.resource_id),
        "resourceId",
    )?;
    let account = d
        .aws_account_id
        .ok_or_else(|| malformed(KIND, "`awsAccountId` is missing"))?;
    let region = d
        .aws_region
        .ok_or_else(|| malformed(KIND, "`awsRegion` is missing"))?;
    let compliance_text = result
        .compliance_type
        .ok_or_else(|| malformed(KIND, "`complianceType` is missing"))?;
    let compliance = Compliance::from_config(&compliance_text)
        .ok_or_else(|| malformed(KIND, format!("unknown complianceType {compliance_text:?}")))?;
    let ordering = result
        .evaluation_result_identifier
        .and_then(|i| i.ordering_timestamp);
    let ordered_at = ordering.as_deref().map(parse_time).transpose()?;
    let observation = match (&ordered_at, &event_id) {
        (Some(t), _) => t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        (None, Some(id)) => format!("event:{id}"),
        (None, None) => {
            return Err(malformed(
                KIND,
                "neither an ordering timestamp nor an event id identifies the evaluation",
            ));
        }
    };
    let annotation = match result.annotation {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    finding(FindingParts {
        hub: None,
        source: Source::Config,
        event_id,
        account,
        region,
        rule,
        resource_type,
        resource_id,
        compliance,
        ordered_at,
        observation,
        annotation,
        rectify_noted: false,
    })
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, DecodeError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| DecodeError::Invalid {
            field: "timestamp",
            value: truncate(s),
            reason: "not an RFC 3339 time",
        })
}

/// Security Hub control ids whose Config rule rectify knows, for findings that do not name it.
const SECURITY_HUB_CONTROLS: &[(&str, &str)] = &[
    ("S3.2", "s3-bucket-public-read-prohibited"),
    ("S3.3", "s3-bucket-public-write-prohibited"),
    ("S3.5", "s3-bucket-ssl-requests-only"),
    ("S3.8", "s3-bucket-level-public-access-prohibited"),
    ("EC2.8", "ec2-imdsv2-check"),
    ("EC2.13", "restricted-ssh"),
    ("EC2.19", "restricted-common-ports"),
    ("EC2.2", "vpc-default-security-group-closed"),
    ("EC2.21", "nacl-no-unrestricted-ssh-rdp"),
    ("IAM.3", "access-keys-rotated"),
    ("IAM.8", "iam-user-unused-credentials-check"),
    ("S3.1", "s3-account-level-public-access-blocks-periodic"),
    ("EC2.7", "ec2-ebs-encryption-by-default"),
    ("RDS.1", "rds-snapshots-public-prohibited"),
    ("RDS.2", "rds-instance-public-access-check"),
    ("ECR.1", "ecr-private-image-scanning-enabled"),
    ("KMS.4", "cmk-backing-key-rotation-enabled"),
    ("CloudTrail.1", "multi-region-cloudtrail-enabled"),
    ("CloudTrail.3", "cloudtrail-enabled"),
    ("CloudTrail.4", "cloud-trail-log-file-validation-enabled"),
    // Config.1 has no Config rule (Config cannot evaluate its own recorder): Security Hub
    // checks it itself, and its findings route here under this name.
    ("Config.1", "config-enabled"),
    ("IAM.7", "iam-password-policy"),
    ("IAM.15", "iam-password-policy"),
    ("IAM.16", "iam-password-policy"),
    ("GuardDuty.1", "guardduty-enabled-centralized"),
    ("EC2.6", "vpc-flow-logs-enabled"),
];

/// The Config rule a Security Hub control id stands for, when rectify knows the control.
pub fn control_rule(control: &str) -> Option<&'static str> {
    SECURITY_HUB_CONTROLS
        .iter()
        .find(|(id, _)| *id == control)
        .map(|(_, rule)| *rule)
}

/// The Security Hub control ids that stand for `rule`.
pub fn rule_controls(rule: &str) -> impl Iterator<Item = &'static str> + '_ {
    SECURITY_HUB_CONTROLS
        .iter()
        .filter(move |(_, r)| *r == rule)
        .map(|(id, _)| *id)
}

/// The findings of a Security Hub event's `detail.findings`, each decoded by `decode` (ASFF or
/// OCSF); `kind` names them in errors.
fn decode_hub_event(
    detail: &Value,
    kind: &'static str,
    event_id: Option<String>,
    delivered_in: &str,
    decode: fn(&Value, Option<String>, &str) -> Result<Finding, DecodeError>,
) -> Result<Vec<Finding>, DecodeError> {
    let findings = detail
        .get("findings")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed(kind, "`detail.findings` is missing or not an array"))?;
    if findings.is_empty() {
        return Err(malformed(kind, "`detail.findings` is empty"));
    }
    findings
        .iter()
        .map(|f| decode(f, event_id.clone(), delivered_in))
        .collect()
}

/// The text at `path` in `v`, when there is text there.
fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().map(str::to_string)
}

fn decode_asff_finding(
    f: &Value,
    event_id: Option<String>,
    delivered_in: &str,
) -> Result<Finding, DecodeError> {
    const KIND: &str = "Security Hub finding";
    let product = text(f, &["ProductArn"]).unwrap_or_default();
    check_product_arn(&product)?;
    let generator = text(f, &["GeneratorId"]).unwrap_or_default();
    check_generator(&generator)?;
    let account =
        text(f, &["AwsAccountId"]).ok_or_else(|| malformed(KIND, "`AwsAccountId` is missing"))?;
    let resource = f
        .get("Resources")
        .and_then(|r| r.get(0))
        .ok_or_else(|| malformed(KIND, "`Resources` is empty"))?;
    let region = text(f, &["Region"])
        .or_else(|| text(resource, &["Region"]))
        .ok_or_else(|| malformed(KIND, "`Region` is missing"))?;
    let asff_type = text(resource, &["Type"])
        .ok_or_else(|| malformed(KIND, "`Resources[0].Type` is missing"))?;
    // ASFF resource types become their CloudFormation names (see `resource::from_asff`).
    let resource_type = crate::resource::from_asff(&asff_type)
        .map_or_else(|| asff_type.clone(), |r| r.info().config_type.to_string());
    let arn_or_id =
        text(resource, &["Id"]).ok_or_else(|| malformed(KIND, "`Resources[0].Id` is missing"))?;
    let resource_id = resource_id_from_arn(&arn_or_id)?;
    let control = text(f, &["Compliance", "SecurityControlId"])
        .or_else(|| text(f, &["ProductFields", "ControlId"]));
    // The control id first (consolidated control findings name it); the rule name Security Hub
    // gave its Config rule for a control rectify does not know.
    let rule = control
        .as_deref()
        .and_then(control_rule)
        .map(str::to_string)
        .or_else(|| text(f, &["ProductFields", "RelatedAWSResources:0/name"]))
        .ok_or_else(|| {
            malformed(
                KIND,
                format!(
                    "names no Config rule (no `ProductFields[\"RelatedAWSResources:0/name\"]`) and its control {:?} is not one rectify knows",
                    control.as_deref().unwrap_or("?")
                ),
            )
        })?;
    let status = text(f, &["Compliance", "Status"]).unwrap_or_default();
    let record_state = text(f, &["RecordState"]).unwrap_or_default();
    let workflow = text(f, &["Workflow", "Status"])
        .or_else(|| text(f, &["WorkflowState"]))
        .unwrap_or_default();
    let compliance = if record_state == "ARCHIVED" {
        Compliance::NotApplicable
    } else if workflow == "SUPPRESSED" {
        Compliance::Suppressed
    } else {
        match status.as_str() {
            "FAILED" => Compliance::NonCompliant,
            "PASSED" => Compliance::Compliant,
            "NOT_AVAILABLE" | "WARNING" | "" => Compliance::InsufficientData,
            other => {
                return Err(malformed(
                    KIND,
                    format!("unknown Compliance.Status {other:?}"),
                ));
            }
        }
    };
    let updated = text(f, &["UpdatedAt"]).or_else(|| text(f, &["LastObservedAt"]));
    let ordered_at = updated.as_deref().map(parse_time).transpose()?;
    let finding_id = text(f, &["Id"]).ok_or_else(|| malformed(KIND, "`Id` is missing"))?;
    // A finding is updated in place; its id and UpdatedAt together name one evaluation (the
    // same in a member region, in the aggregation region, and in its OCSF copy).
    let observation = format!("{}@{}", finding_id, updated.as_deref().unwrap_or("unknown"));
    finding(FindingParts {
        hub: Some(HubFinding {
            format: HubFormat::Asff,
            id: finding_id,
            product,
            region: delivered_in.to_string(),
        }),
        source: Source::SecurityHub,
        event_id,
        account,
        region,
        rule,
        resource_type,
        resource_id,
        compliance,
        ordered_at,
        observation,
        annotation: text(f, &["Title"]),
        rectify_noted: text(f, &["Note", "UpdatedBy"]).as_deref() == Some(NOTE_BY),
    })
}

/// OCSF `compliance.status_id` values, and `status_id` values of a finding's workflow.
const OCSF_COMPLIANCE_PASS: i64 = 1;
const OCSF_COMPLIANCE_FAIL: i64 = 3;
const OCSF_STATUS_SUPPRESSED: i64 = 3;
const OCSF_STATUS_RESOLVED: i64 = 4;
const OCSF_STATUS_ARCHIVED: i64 = 5;
/// The OCSF class of compliance findings, the class of Security Hub's control findings.
const OCSF_COMPLIANCE_FINDING: i64 = 2003;

/// Where Security Hub's own control findings come from in OCSF: `metadata.product.uid` is
/// Security Hub's product ARN (`productv2/aws/securityhub`, or the CSPM `product/…` form).
fn check_ocsf_product(uid: &str) -> Result<(), DecodeError> {
    let ok = uid
        .strip_prefix("arn:aws:securityhub:")
        .and_then(|rest| {
            rest.strip_suffix("::productv2/aws/securityhub")
                .or_else(|| rest.strip_suffix("::product/aws/securityhub"))
        })
        .is_some_and(|region| validate_region(region).is_ok());
    if ok {
        Ok(())
    } else {
        Err(DecodeError::Untrusted(format!(
            "`metadata.product.uid` {:?} is not Security Hub's own (arn:aws:securityhub:<region>::productv2/aws/securityhub): findings of other products are not acted on",
            truncate(uid)
        )))
    }
}

fn decode_ocsf_finding(
    f: &Value,
    event_id: Option<String>,
    delivered_in: &str,
) -> Result<Finding, DecodeError> {
    const KIND: &str = "Security Hub OCSF finding";
    let number = |path: &[&str]| -> Option<i64> {
        let mut cur = f;
        for p in path {
            cur = cur.get(p)?;
        }
        cur.as_i64()
    };
    let class = number(&["class_uid"]);
    if class != Some(OCSF_COMPLIANCE_FINDING) {
        return Err(DecodeError::UnknownShape(format!(
            "an OCSF finding of class_uid {}: rectify acts on compliance findings (2003) of Security Hub's controls",
            class.map_or_else(|| "?".to_string(), |c| c.to_string())
        )));
    }
    let product = text(f, &["metadata", "product", "uid"]).unwrap_or_default();
    check_ocsf_product(&product)?;
    let finding_id = text(f, &["finding_info", "uid"])
        .ok_or_else(|| malformed(KIND, "`finding_info.uid` is missing"))?;
    let account = text(f, &["cloud", "account", "uid"])
        .ok_or_else(|| malformed(KIND, "`cloud.account.uid` is missing"))?;
    let resource = f
        .get("resources")
        .and_then(|r| r.get(0))
        .ok_or_else(|| malformed(KIND, "`resources` is empty"))?;
    let region = text(f, &["cloud", "region"])
        .or_else(|| text(resource, &["region"]))
        .ok_or_else(|| malformed(KIND, "`cloud.region` is missing"))?;
    let ocsf_type = text(resource, &["type"])
        .ok_or_else(|| malformed(KIND, "`resources[0].type` is missing"))?;
    // Security Hub names types as ASFF does (`AwsS3Bucket`); a CloudFormation name is kept.
    let resource_type = crate::resource::from_asff(&ocsf_type)
        .map_or_else(|| ocsf_type.clone(), |r| r.info().config_type.to_string());
    let uid =
        text(resource, &["uid"]).ok_or_else(|| malformed(KIND, "`resources[0].uid` is missing"))?;
    let resource_id = resource_id_from_arn(&uid)?;
    let control = text(f, &["compliance", "control"])
        .ok_or_else(|| malformed(KIND, "`compliance.control` is missing"))?;
    let rule = control_rule(&control).ok_or_else(|| {
        malformed(
            KIND,
            format!(
                "its control {:?} is not one rectify knows",
                truncate(&control)
            ),
        )
    })?;
    let compliance = match number(&["status_id"]) {
        Some(OCSF_STATUS_ARCHIVED | OCSF_STATUS_RESOLVED) => Compliance::NotApplicable,
        Some(OCSF_STATUS_SUPPRESSED) => Compliance::Suppressed,
        _ => match number(&["compliance", "status_id"]) {
            Some(OCSF_COMPLIANCE_FAIL) => Compliance::NonCompliant,
            Some(OCSF_COMPLIANCE_PASS) => Compliance::Compliant,
            // Warning (2), unknown or other: not a failure to fix.
            Some(_) | None => Compliance::InsufficientData,
        },
    };
    let updated = text(f, &["finding_info", "modified_time_dt"]).or_else(|| text(f, &["time_dt"]));
    let ordered_at = updated.as_deref().map(parse_time).transpose()?;
    let observation = format!("{}@{}", finding_id, updated.as_deref().unwrap_or("unknown"));
    finding(FindingParts {
        hub: Some(HubFinding {
            format: HubFormat::Ocsf,
            id: finding_id,
            product,
            region: delivered_in.to_string(),
        }),
        source: Source::SecurityHub,
        event_id,
        account,
        region,
        rule: rule.to_string(),
        resource_type,
        resource_id,
        compliance,
        ordered_at,
        observation,
        annotation: text(f, &["finding_info", "title"]),
        rectify_noted: text(f, &["comment"]).is_some_and(|c| c.starts_with(NOTE_PREFIX)),
    })
}

/// Takes the resource id out of an ARN (`arn:aws:s3:::bucket`, `…:security-group/sg-…`,
/// `…:user/path/name`) or out of Security Hub's name of an account (`AWS::::Account:<id>`);
/// anything else is returned as is for validation.
fn resource_id_from_arn(s: &str) -> Result<String, DecodeError> {
    if let Some(account) = s.strip_prefix(ACCOUNT_RESOURCE_PREFIX) {
        return Ok(account.to_string());
    }
    let Some(rest) = s.strip_prefix("arn:") else {
        return Ok(s.to_string());
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    if parts.len() != 5 {
        return Err(DecodeError::Invalid {
            field: "resource ARN",
            value: truncate(s),
            reason: "an ARN has six colon-separated parts",
        });
    }
    if parts[0] != "aws" {
        return Err(DecodeError::Invalid {
            field: "resource ARN",
            value: truncate(s),
            reason: "rectify serves the `aws` partition only",
        });
    }
    let resource = parts[4];
    Ok(match parts[1] {
        "s3" => resource.to_string(),
        "iam" => resource.rsplit('/').next().unwrap_or(resource).to_string(),
        // `db:NAME`, `snapshot:NAME` (an automated snapshot's name is `rds:…`).
        "rds" => resource
            .split_once(':')
            .map_or(resource, |(_, name)| name)
            .to_string(),
        // `repository/NAME`, where the name may itself hold `/` (`team/app`).
        "ecr" => resource
            .strip_prefix("repository/")
            .unwrap_or(resource)
            .to_string(),
        _ => resource.rsplit('/').next().unwrap_or(resource).to_string(),
    })
}

/// How Security Hub names an account as a resource (`Resources[].Id` of type `AwsAccount`).
const ACCOUNT_RESOURCE_PREFIX: &str = "AWS::::Account:";

/// The resource type of findings about an account itself; its resource id is the account id.
pub const ACCOUNT_TYPE: &str = "AWS::::Account";

struct FindingParts {
    hub: Option<HubFinding>,
    source: Source,
    event_id: Option<String>,
    account: String,
    region: String,
    rule: String,
    resource_type: String,
    resource_id: String,
    compliance: Compliance,
    ordered_at: Option<DateTime<Utc>>,
    observation: String,
    annotation: Option<String>,
    rectify_noted: bool,
}

/// Validates everything that will reach an AWS call or a key, then builds the finding.
fn finding(p: FindingParts) -> Result<Finding, DecodeError> {
    validate_account(&p.account)?;
    validate_region(&p.region)?;
    validate_token("rule name", &p.rule, 128)?;
    validate_token("resource type", &p.resource_type, 128)?;
    validate_resource_id(&p.resource_type, &p.resource_id)?;
    // A finding about an account is about the account it came from: rectify acts on the
    // resource the finding names, in the account it names, and nowhere else.
    if p.resource_type == ACCOUNT_TYPE && p.resource_id != p.account {
        return Err(invalid(
            "resource id",
            &p.resource_id,
            "a finding about an account (AWS::::Account) must name its own account",
        ));
    }
    if let Some(id) = &p.event_id {
        validate_token("event id", id, 128)?;
    }
    validate_token("observation", &p.observation, 512)?;
    if let Some(hub) = &p.hub {
        validate_token("Security Hub finding id", &hub.id, 512)?;
        validate_token("Security Hub product", &hub.product, 512)?;
    }
    Ok(Finding {
        hub: p.hub,
        rule_base: normalise_rule(&p.rule),
        source: p.source,
        event_id: p.event_id,
        account: p.account,
        region: p.region,
        rule: p.rule,
        resource_type: p.resource_type,
        resource_id: p.resource_id,
        compliance: p.compliance,
        ordered_at: p.ordered_at,
        observation: p.observation,
        annotation: p.annotation.map(|a| a.chars().take(1024).collect()),
        rectify_noted: p.rectify_noted,
    })
}

fn truncate(s: &str) -> String {
    let mut out: String = s.chars().take(80).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn invalid(field: &'static str, value: &str, reason: &'static str) -> DecodeError {
    DecodeError::Invalid {
        field,
        value: truncate(value),
        reason,
    }
}

/// An account id is twelve digits.
pub fn validate_account(s: &str) -> Result<(), DecodeError> {
    refuse_format_chars("account id", s)?;
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(invalid("account id", s, "an account id is twelve digits"))
    }
}

/// A region is lower-case words and a number joined by hyphens (`eu-west-1`, `us-gov-east-1`).
pub fn validate_region(s: &str) -> Result<(), DecodeError> {
    refuse_format_chars("region", s)?;
    let parts: Vec<&str> = s.split('-').collect();
    let ok = s.len() <= 32
        && parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(invalid("region", s, "not a region name such as eu-west-1"))
    }
}

/// Whether `c` is a Unicode format character (general category Cf: zero-width characters,
/// bidirectional overrides and isolates, the byte order mark, tags, ...), which can make an id
/// look like another one where it is shown.
pub fn is_format_char(c: char) -> bool {
    matches!(c as u32,
        0x00AD
        | 0x0600..=0x0605
        | 0x061C
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x180E
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x2064
        | 0x2066..=0x206F
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0001
        | 0xE0020..=0xE007F)
}

/// Refuses an id with a Unicode format character in it.
fn refuse_format_chars(field: &'static str, s: &str) -> Result<(), DecodeError> {
    match s.chars().find(|c| is_format_char(*c)) {
        Some(c) => Err(DecodeError::Invalid {
            field,
            value: s.escape_unicode().to_string().chars().take(80).collect(),
            reason: match c as u32 {
                0x202A..=0x202E | 0x2066..=0x2069 | 0x061C | 0x200E | 0x200F => {
                    "contains a Unicode bidirectional control character (general category Cf)"
                }
                _ => "contains a Unicode format character (general category Cf)",
            },
        }),
        None => Ok(()),
    }
}

fn validate_token(field: &'static str, s: &str, max: usize) -> Result<(), DecodeError> {
    refuse_format_chars(field, s)?;
    if s.is_empty() || s.len() > max {
        return Err(invalid(field, s, "empty or too long"));
    }
    if s.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
        return Err(invalid(field, s, "contains control characters or quotes"));
    }
    Ok(())
}

/// Checks a resource id against the form its type allows, so nothing else reaches an AWS call.
pub fn validate_resource_id(resource_type: &str, id: &str) -> Result<(), DecodeError> {
    refuse_format_chars("resource id", id)?;
    match crate::resource::lookup(resource_type) {
        Some(r) if r.valid_id(id) => Ok(()),
        Some(_) => Err(invalid(
            "resource id",
            id,
            "not a well-formed id for its resource type",
        )),
        None => validate_token("resource id", id, 256).and_then(|()| {
            if id.contains("..") || id.contains('/') {
                Err(invalid("resource id", id, "contains a path"))
            } else {
                Ok(())
            }
        }),
    }
}

/// Takes off the parts AWS adds to managed rule names: `securityhub-<rule>-<suffix>`,
/// `<rule>-conformance-pack-<id>` and `OrgConfigRule-<rule>-<suffix>` all become `<rule>`.
pub fn normalise_rule(name: &str) -> String {
    let mut base = name;
    if let Some(i) = base.find("-conformance-pack-") {
        base = &base[..i];
    }
    for prefix in ["securityhub-", "OrgConfigRule-"] {
        if let Some(rest) = base.strip_prefix(prefix) {
            base = rest.rsplit_once('-').map_or(rest, |(head, _)| head);
        }
    }
    base.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_arns_give_the_instance_or_snapshot_name() {
        for (arn, id) in [
            ("arn:aws:rds:us-east-1:111122223333:db:orders", "orders"),
            (
                "arn:aws:rds:us-east-1:111122223333:snapshot:nightly",
                "nightly",
            ),
            (
                "arn:aws:rds:us-east-1:111122223333:snapshot:rds:orders-2026-11-30-03-10",
                "rds:orders-2026-11-30-03-10",
            ),
        ] {
            assert_eq!(resource_id_from_arn(arn).unwrap(), id, "{arn}");
        }
    }

    #[test]
    fn ecr_and_kms_arns_give_the_repository_name_or_key_id() {
        for (arn, id) in [
            (
                "arn:aws:ecr:us-east-1:111122223333:repository/team/app",
                "team/app",
            ),
            ("arn:aws:ecr:us-east-1:111122223333:repository/app", "app"),
            (
                "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
                "1234abcd-12ab-34cd-56ef-1234567890ab",
            ),
        ] {
            assert_eq!(resource_id_from_arn(arn).unwrap(), id, "{arn}");
        }
        assert_eq!(
            control_rule("ECR.1"),
            Some("ecr-private-image-scanning-enabled")
        );
        assert_eq!(
            control_rule("KMS.4"),
            Some("cmk-backing-key-rotation-enabled")
        );
        // A name that is no repository name stops at validation.
        assert!(validate_resource_id("AWS::ECR::Repository", "team//app").is_err());
        assert!(validate_resource_id("AWS::ECR::Repository", "team/app").is_ok());
    }

    fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/events/{name}",
            std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn one(body: &str) -> Finding {
        match decode(body).expect("decodes") {
            Message::Findings(mut f) if f.len() == 1 => f.remove(0),
            other => panic!("expected one finding, got {other:?}"),
        }
    }

    #[test]
    fn raw_eventbridge_config_event() {
        let f = one(&fixture("config-s3-noncompliant.json"));
        assert_eq!(f.source, Source::Config);
        assert_eq!(
            f.event_id.as_deref(),
            Some("6f1c2a9e-0d2b-4a57-9d1e-3c8b7a5e2f10")
        );
        assert_eq!(f.account, "111122223333");
        assert_eq!(f.region, "us-east-1");
        assert_eq!(f.rule_base, "s3-bucket-level-public-access-prohibited");
        assert_eq!(f.resource_type, "AWS::S3::Bucket");
        assert_eq!(f.resource_id, "acme-reports-prod");
        assert_eq!(f.compliance, Compliance::NonCompliant);
        assert_eq!(f.observation, "2026-11-02T09:13:58.112Z");
    }

    #[test]
    fn security_hub_rule_first_evaluation() {
        let f = one(&fixture("config-sg-securityhub-rule-first-evaluation.json"));
        assert_eq!(f.rule, "securityhub-restricted-ssh-7kq2xz");
        assert_eq!(f.rule_base, "restricted-ssh");
        assert_eq!(f.account, "444455556666");
        assert_eq!(f.region, "eu-west-1");
        assert_eq!(f.resource_id, "sg-0a1b2c3d4e5f60718");
        assert!(f.annotation.is_none());
    }

    #[test]
    fn sns_wrapped_conformance_pack_iam_user() {
        let f = one(&fixture("sns-wrapped-config-iam-user.json"));
        assert_eq!(f.rule_base, "access-keys-rotated");
        assert_eq!(f.resource_type, "AWS::IAM::User");
        assert_eq!(f.resource_id, "AIDAQ3EGRTBDEXAMPLE1");
        assert_eq!(
            f.event_id.as_deref(),
            Some("c3d9a0f2-5b61-4b8e-9f07-1e2d3c4b5a69")
        );
        assert_eq!(
            f.annotation.as_deref(),
            Some("Access key AKIAQ3EGRTBDEXAMPLEA is older than 90 days.")
        );
    }

    #[test]
    fn config_sns_channel_bare_detail() {
        let f = one(&fixture("sns-config-channel-sg.json"));
        assert_eq!(f.rule_base, "restricted-ssh");
        assert_eq!(f.resource_id, "sg-0f9e8d7c6b5a43210");
        // No EventBridge envelope: the SNS message id stands in.
        assert_eq!(
            f.event_id.as_deref(),
            Some("2f6b1c3d-8e9a-5b4c-9d0e-1f2a3b4c5d6e")
        );
        assert_eq!(f.observation, "2026-11-07T08:12:30.481Z");
    }

    #[test]
    fn custom_rule_with_annotation() {
        let f = one(&fixture("config-vpce-custom-rule-with-annotation.json"));
        assert_eq!(f.rule_base, "vpc-endpoint-policy-not-overly-permissive");
        assert_eq!(f.resource_type, "AWS::EC2::VPCEndpoint");
        assert_eq!(f.resource_id, "vpce-0f1e2d3c4b5a69788");
        assert!(f.annotation.unwrap().starts_with("Endpoint policy allows"));
    }

    #[test]
    fn security_hub_asff() {
        let f = one(&fixture("securityhub-finding-imported-s3.json"));
        assert_eq!(f.source, Source::SecurityHub);
        assert_eq!(f.rule_base, "s3-bucket-level-public-access-prohibited");
        assert_eq!(f.resource_type, "AWS::S3::Bucket");
        assert_eq!(f.resource_id, "acme-media-uploads");
        assert_eq!(f.compliance, Compliance::NonCompliant);
        assert!(f.observation.ends_with("@2026-11-05T11:20:40.778Z"));
    }

    /// The S3.8 fixture turned into a finding about an account: control, rule, resource.
    fn asff_account_finding(control: &str, rule: Option<&str>, resource_id: &str) -> String {
        let mut body = fixture("securityhub-finding-imported-s3.json")
            .replace("S3.8", control)
            .replace(
                r#"{"Type": "AwsS3Bucket", "Id": "arn:aws:s3:::acme-media-uploads""#,
                &format!(r#"{{"Type": "AwsAccount", "Id": "{resource_id}""#),
            );
        let named = r#""RelatedAWSResources:0/name": "securityhub-s3-bucket-level-public-access-prohibited-4f8k2m","#;
        body = match rule {
            Some(rule) => body.replace(
                named,
                &format!(r#""RelatedAWSResources:0/name": "securityhub-{rule}-9x8y7z","#),
            ),
            None => body.replace(named, ""),
        };
        body
    }

    #[test]
    fn account_findings_name_the_account_and_route_by_rule_or_control() {
        for (control, rule) in [
            ("S3.1", "s3-account-level-public-access-blocks-periodic"),
            ("EC2.7", "ec2-ebs-encryption-by-default"),
        ] {
            for named in [Some(rule), None] {
                let f = one(&asff_account_finding(
                    control,
                    named,
                    "AWS::::Account:111122223333",
                ));
                assert_eq!(f.resource_type, "AWS::::Account", "{control}");
                assert_eq!(f.resource_id, "111122223333", "{control}");
                assert_eq!(f.rule_base, rule, "{control} {named:?}");
                assert_eq!(f.compliance, Compliance::NonCompliant);
            }
        }
        // A bare account id is accepted too.
        let f = one(&asff_account_finding("S3.1", None, "111122223333"));
        assert_eq!(f.resource_id, "111122223333");

        let config = |id: &str| {
            fixture("config-s3-noncompliant.json")
                .replace("AWS::S3::Bucket", "AWS::::Account")
                .replace("acme-reports-prod", id)
                .replace(
                    "s3-bucket-level-public-access-prohibited",
                    "ec2-ebs-encryption-by-default",
                )
        };
        let f = one(&config("111122223333"));
        assert_eq!(
            (f.resource_type.as_str(), f.resource_id.as_str()),
            ("AWS::::Account", "111122223333")
        );
        assert_eq!(f.rule_base, "ec2-ebs-encryption-by-default");
        // Malformed, or about another account than the one the finding comes from.
        for bad in ["11112222333", "../111122223", "999988887777"] {
            let e = decode(&config(bad)).unwrap_err().to_string();
            assert!(e.contains("resource id"), "{bad}: {e}");
            let e = decode(&asff_account_finding(
                "S3.1",
                None,
                &format!("AWS::::Account:{bad}"),
            ))
            .unwrap_err()
            .to_string();
            assert!(e.contains("resource id"), "{bad}: {e}");
        }
        let e = decode(&config("999988887777")).unwrap_err().to_string();
        assert!(e.contains("must name its own account"), "{e}");
    }

    #[test]
    fn asff_suppressed_archived_and_passed() {
        let body = fixture("securityhub-finding-imported-s3.json");
        let suppressed = body.replace(
            r#""Workflow": {"Status": "NEW"}"#,
            r#""Workflow": {"Status": "SUPPRESSED"}"#,
        );
        assert_eq!(one(&suppressed).compliance, Compliance::Suppressed);
        let archived = body.replace(r#""RecordState": "ACTIVE""#, r#""RecordState": "ARCHIVED""#);
        assert_eq!(one(&archived).compliance, Compliance::NotApplicable);
        let passed = body.replace(r#""Status": "FAILED""#, r#""Status": "PASSED""#);
        assert_eq!(one(&passed).compliance, Compliance::Compliant);
    }

    #[test]
    fn security_hub_ocsf() {
        let f = one(&fixture("securityhub-findings-imported-v2-s3.json"));
        assert_eq!(f.source, Source::SecurityHub);
        assert_eq!(f.rule_base, "s3-bucket-level-public-access-prohibited");
        assert_eq!(f.resource_type, "AWS::S3::Bucket");
        assert_eq!(f.resource_id, "acme-media-uploads");
        assert_eq!(
            (f.account.as_str(), f.region.as_str()),
            ("111122223333", "us-east-1")
        );
        assert_eq!(f.compliance, Compliance::NonCompliant);
        let hub = f.hub.unwrap();
        assert_eq!(hub.format, HubFormat::Ocsf);
        assert_eq!(
            hub.product,
            "arn:aws:securityhub:us-east-1::productv2/aws/securityhub"
        );
        assert!(
            hub.id
                .ends_with("/finding/2b7c9d10-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
        );
    }

    #[test]
    fn one_evaluation_is_one_observation_in_every_copy() {
        let asff = one(&fixture("securityhub-finding-imported-s3.json"));
        let ocsf = one(&fixture("securityhub-findings-imported-v2-s3.json"));
        // The copy the aggregation region delivers: the same finding, another envelope region.
        let aggregated = one(&fixture("securityhub-finding-imported-s3.json")
            .replace(r#""region": "us-east-1""#, r#""region": "eu-west-1""#));
        assert_eq!(asff.observation, ocsf.observation);
        assert_eq!(asff.observation, aggregated.observation);
        assert_eq!(aggregated.region, "us-east-1");
        assert_eq!(aggregated.hub.as_ref().unwrap().region, "eu-west-1");
        assert_eq!(asff.hub.as_ref().unwrap().format, HubFormat::Asff);
        // A later evaluation is another observation.
        let later = one(
            &fixture("securityhub-findings-imported-v2-s3.json").replace(
                r#""modified_time_dt": "2026-11-05T11:20:40.778Z""#,
                r#""modified_time_dt": "2026-11-06T09:00:00.000Z""#,
            ),
        );
        assert_ne!(later.observation, ocsf.observation);
    }

    #[test]
    fn ocsf_acts_on_failed_and_not_on_suppressed_resolved_or_archived() {
        let body = fixture("securityhub-findings-imported-v2-s3.json");
        let with_status =
            |id: u8| body.replace(r#""status_id": 1,"#, &format!(r#""status_id": {id},"#));
        assert_eq!(one(&with_status(2)).compliance, Compliance::NonCompliant);
        assert_eq!(one(&with_status(3)).compliance, Compliance::Suppressed);
        for closed in [4, 5] {
            assert_eq!(
                one(&with_status(closed)).compliance,
                Compliance::NotApplicable
            );
        }
        let passed = body.replace(
            r#""status": "Fail",
          "status_id": 3"#,
            r#""status": "Pass",
          "status_id": 1"#,
        );
        assert_eq!(one(&passed).compliance, Compliance::Compliant);
    }

    #[test]
    fn ocsf_findings_of_other_products_classes_or_controls_are_refused() {
        let body = fixture("securityhub-findings-imported-v2-s3.json");
        let other_product = body.replace(
            "arn:aws:securityhub:us-east-1::productv2/aws/securityhub",
            "arn:aws:securityhub:us-east-1::productv2/acme/scanner",
        );
        let e = decode(&other_product).unwrap_err();
        assert!(matches!(e, DecodeError::Untrusted(_)), "{e}");
        let detection = body.replace(r#""class_uid": 2003"#, r#""class_uid": 2004"#);
        assert!(
            decode(&detection)
                .unwrap_err()
                .to_string()
                .contains("class_uid 2004")
        );
        let unknown = body.replace(r#""control": "S3.8""#, r#""control": "Macie.1""#);
        assert!(
            decode(&unknown)
                .unwrap_err()
                .to_string()
                .contains("Macie.1")
        );
        let no_resource = body.replace(
            r#""uid": "arn:aws:s3:::acme-media-uploads""#,
            r#""name": "x""#,
        );
        assert!(
            decode(&no_resource)
                .unwrap_err()
                .to_string()
                .contains("resources[0].uid")
        );
        // About another account than the one that sent it: relayed, like ASFF.
        let relayed = body.replace(
            r#""account": "111122223333""#,
            r#""account": "999988887777""#,
        );
        assert!(
            matches!(decode(&relayed).unwrap(), Message::Relayed { by, .. } if by == "999988887777")
        );
    }

    #[test]
    fn a_custom_action_is_a_delivery_of_its_findings() {
        let body = fixture("securityhub-finding-imported-s3.json").replace(
            "\"detail-type\": \"Security Hub Findings - Imported\"",
            "\"detail-type\": \"Security Hub Findings - Custom Action\"",
        );
        let f = one(&body);
        assert_eq!(
            f.observation,
            one(&fixture("securityhub-finding-imported-s3.json")).observation
        );
        assert_eq!(f.hub.unwrap().format, HubFormat::Asff);
        // Only from Security Hub.
        let forged = body.replace(
            "\"source\": \"aws.securityhub\"",
            "\"source\": \"acme.app\"",
        );
        assert!(matches!(decode(&forged), Err(DecodeError::Untrusted(_))));
    }

    #[test]
    fn a_finding_imported_with_rectifys_own_note_says_so() {
        let asff = fixture("securityhub-finding-imported-s3.json");
        assert!(!one(&asff).rectify_noted);
        let note = |by: &str| {
            asff.replace(
                r#""RecordState": "ACTIVE","#,
                &format!(
                    r#""RecordState": "ACTIVE", "Note": {{"Text": "rectify job j1 (x, dry-run): …", "UpdatedBy": "{by}", "UpdatedAt": "2026-11-05T11:21:00.000Z"}},"#
                ),
            )
        };
        let echoed = one(&note("rectify"));
        assert!(echoed.rectify_noted);
        // The same evaluation: the write-back does not change the finding's time.
        assert_eq!(echoed.observation, one(&asff).observation);
        assert!(!one(&note("alice")).rectify_noted);
        // A person choosing the custom action asks for a run, whoever wrote the note.
        let action = note("rectify").replace(
            "\"detail-type\": \"Security Hub Findings - Imported\"",
            "\"detail-type\": \"Security Hub Findings - Custom Action\"",
        );
        assert!(!one(&action).rectify_noted);

        let ocsf = fixture("securityhub-findings-imported-v2-s3.json");
        assert!(!one(&ocsf).rectify_noted);
        let comment = |text: &str| {
            ocsf.replace(
                r#""status_id": 1,"#,
                &format!(r#""status_id": 2, "comment": "{text}","#),
            )
        };
        assert!(one(&comment("rectify job j1 (x) is failed: …")).rectify_noted);
        assert!(!one(&comment("checked by the platform team")).rectify_noted);
    }

    #[test]
    fn asff_routes_by_control_id_before_the_rule_name() {
        // The control names the rule, whatever name Security Hub gave its Config rule.
        let body = fixture("securityhub-finding-imported-s3.json").replace(
            "securityhub-s3-bucket-level-public-access-prohibited-4f8k2m",
            "securityhub-some-other-rule-1a2b3c",
        );
        assert_eq!(
            one(&body).rule_base,
            "s3-bucket-level-public-access-prohibited"
        );
        // A control rectify does not know falls back to the rule name.
        let unknown = body.replace(
            "\"SecurityControlId\": \"S3.8\"",
            "\"SecurityControlId\": \"Macie.1\"",
        );
        assert_eq!(one(&unknown).rule_base, "some-other-rule");
    }

    #[test]
    fn asff_without_rule_name_uses_control_id() {
        let body = fixture("securityhub-finding-imported-s3.json")
            .replace("\"RelatedAWSResources:0/name\"", "\"Other\"");
        assert_eq!(
            one(&body).rule_base,
            "s3-bucket-level-public-access-prohibited"
        );
    }

    #[test]
    fn network_controls_route_to_their_config_rules() {
        for (control, rule) in [
            ("EC2.2", "vpc-default-security-group-closed"),
            ("EC2.21", "nacl-no-unrestricted-ssh-rdp"),
        ] {
            let body = fixture("securityhub-finding-imported-s3.json")
                .replace("\"RelatedAWSResources:0/name\"", "\"Other\"")
                .replace("S3.8", control);
            assert_eq!(one(&body).rule_base, rule, "{control}");
        }
    }

    #[test]
    fn compliance_types() {
        let body = fixture("config-s3-noncompliant.json");
        let not_applicable = body.replacen("\"NON_COMPLIANT\"", "\"NOT_APPLICABLE\"", 1);
        let f = one(&not_applicable);
        assert_eq!(f.compliance, Compliance::NotApplicable);
        assert!(f.compliance.cancels_pending());
        assert!(!f.compliance.wants_fix());
        let odd = body.replacen("\"NON_COMPLIANT\"", "\"SOMETIMES\"", 1);
        assert!(matches!(decode(&odd), Err(DecodeError::Malformed { .. })));
    }

    #[test]
    fn rule_normalisation() {
        for (input, want) in [
            ("restricted-ssh", "restricted-ssh"),
            ("securityhub-restricted-ssh-7kq2xz", "restricted-ssh"),
            (
                "access-keys-rotated-conformance-pack-8fj3kd0q1",
                "access-keys-rotated",
            ),
            (
                "OrgConfigRule-s3-bucket-public-read-prohibited-a1b2c3",
                "s3-bucket-public-read-prohibited",
            ),
            ("securityhub-x", "x"),
        ] {
            assert_eq!(normalise_rule(input), want, "{input}");
        }
    }

    #[test]
    fn poison_bodies_are_errors_with_reasons() {
        let cases = [
            ("", "not JSON"),
            ("{\"detail-type\": \"Config Rules", "not JSON"),
            ("[1,2,3]", "expected a JSON object"),
            ("{\"hello\": 1}", "neither an EventBridge event"),
            (
                "{\"detail-type\": \"EC2 Instance State-change Notification\"}",
                "detail-type",
            ),
        ];
        for (body, want) in cases {
            let err = decode(body).expect_err(body).to_string();
            assert!(err.contains(want), "{body:?} gave {err:?}");
        }
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        assert_eq!(decode(&deep), Err(DecodeError::TooDeep));
        let big = format!("\"{}\"", "a".repeat(MAX_BODY_BYTES));
        assert!(matches!(decode(&big), Err(DecodeError::TooLarge(_))));
    }

    #[test]
    fn hostile_ids_are_refused() {
        let body = fixture("config-s3-noncompliant.json");
        for bad in [
            "../etc/passwd",
            "a\\\"b",
            "bucket\\nname",
            "arn:aws-cn:s3:::x",
        ] {
            let hostile = body.replace("acme-reports-prod", bad);
            let err = decode(&hostile).expect_err(bad);
            assert!(matches!(err, DecodeError::Invalid { .. }), "{bad}: {err}");
        }
        let sg =
            fixture("sns-config-channel-sg.json").replace("sg-0f9e8d7c6b5a43210", "sg-../../x");
        assert!(decode(&sg).is_err());
        let account = body.replace(
            "\"awsAccountId\": \"111122223333\"",
            "\"awsAccountId\": \"1111\"",
        );
        assert!(decode(&account).is_err());
        let asff = fixture("securityhub-finding-imported-s3.json").replace(
            "arn:aws:s3:::acme-media-uploads\", \"Partition",
            "arn:aws-us-gov:s3:::acme-media-uploads\", \"Partition",
        );
        assert!(decode(&asff).is_err());
    }

    #[test]
    fn ignored_and_control_messages() {
        let ci =
            r#"{"messageType": "ConfigurationItemChangeNotification", "configurationItem": {}}"#;
        assert!(matches!(decode(ci), Ok(Message::Ignored(_))));
        let control = r#"{"rectify": {"action": "run-job", "job_id": "abc"}}"#;
        assert_eq!(
            decode(control),
            Ok(Message::Control(Control::RunJob {
                job_id: "abc".into()
            }))
        );
        assert!(decode(r#"{"rectify": {"action": "format-disk"}}"#).is_err());
        let run = Control::RunJob {
            job_id: "j1".into(),
        };
        assert_eq!(decode(&run.body()), Ok(Message::Control(run)));
    }

    fn untrusted(body: &str) -> String {
        match decode(body) {
            Err(e @ DecodeError::Untrusted(_)) => e.to_string(),
            other => panic!("expected an untrusted envelope, got {other:?}"),
        }
    }

    #[test]
    fn a_config_event_must_come_from_the_account_it_is_about() {
        let body = fixture("config-s3-noncompliant.json");
        let forged = body.replace(
            "\"account\": \"111122223333\"",
            "\"account\": \"999988887777\"",
        );
        assert_ne!(forged, body);
        let why = untrusted(&forged);
        assert!(
            why.contains("999988887777") && why.contains("`awsAccountId` 111122223333"),
            "{why}"
        );
        let missing = body.replace("\"account\": \"111122223333\",", "");
        assert!(untrusted(&missing).contains("`account`"));
        let bad = body.replace("\"account\": \"111122223333\"", "\"account\": \"1\"");
        assert!(matches!(
            decode(&bad),
            Err(DecodeError::Invalid {
                field: "account id",
                ..
            })
        ));
    }

    #[test]
    fn an_event_must_come_from_the_service_of_its_detail_type() {
        let config = fixture("config-s3-noncompliant.json");
        for source in ["acme.scanner", "aws.securityhub", ""] {
            let forged = config.replace("\"aws.config\"", &format!("{source:?}"));
            let why = untrusted(&forged);
            assert!(
                why.contains("`source`") && why.contains("aws.config"),
                "{why}"
            );
        }
        let asff = fixture("securityhub-finding-imported-s3.json").replace(
            "\"source\": \"aws.securityhub\"",
            "\"source\": \"aws.config\"",
        );
        assert!(untrusted(&asff).contains("aws.securityhub"));
    }

    #[test]
    fn asff_findings_are_accepted_only_from_security_hub_controls() {
        let body = fixture("securityhub-finding-imported-s3.json");
        let product = body.replace(
            "\"ProductArn\": \"arn:aws:securityhub:us-east-1::product/aws/securityhub\"",
            "\"ProductArn\": \"arn:aws:securityhub:us-east-1:111122223333:product/111122223333/default\"",
        );
        assert_ne!(product, body);
        assert!(untrusted(&product).contains("`ProductArn`"));
        let other_service = body.replace("product/aws/securityhub\"", "product/aws/inspector\"");
        assert!(untrusted(&other_service).contains("`ProductArn`"));
        let no_product = body.replace("\"ProductArn\"", "\"NotProductArn\"");
        assert!(untrusted(&no_product).contains("`ProductArn`"));
        let generator = body.replace(
            "\"GeneratorId\": \"security-control/S3.8\"",
            "\"GeneratorId\": \"acme-scanner/open-bucket\"",
        );
        assert_ne!(generator, body);
        assert!(untrusted(&generator).contains("`GeneratorId`"));
        for ok in [
            "aws-foundational-security-best-practices/v/1.0.0/S3.8",
            "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/2.3",
            "cis-aws-foundations-benchmark/v/1.4.0/2.1.5",
            "pci-dss/v/3.2.1/PCI.S3.6",
        ] {
            let b = body.replace("security-control/S3.8\"", &format!("{ok}\""));
            assert!(decode(&b).is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_finding_about_another_account_is_relayed_by_the_sender() {
        let body = fixture("securityhub-finding-imported-s3.json").replace(
            "\"account\": \"111122223333\"",
            "\"account\": \"999988887777\"",
        );
        match decode(&body) {
            Ok(Message::Relayed { by, findings }) => {
                assert_eq!(by, "999988887777");
                assert_eq!(findings[0].account, "111122223333");
            }
            other => panic!("expected relayed findings, got {other:?}"),
        }
        check_relay("999988887777", Some("999988887777")).unwrap();
        let why = check_relay("999988887777", Some("555555555555")).unwrap_err();
        assert!(
            why.contains("not the Security Hub administrator account (555555555555)"),
            "{why}"
        );
        let why = check_relay("999988887777", None).unwrap_err();
        assert!(
            why.contains("no Security Hub administrator account is set"),
            "{why}"
        );
    }

    #[test]
    fn ids_with_unicode_format_characters_are_refused() {
        let body = fixture("config-s3-noncompliant.json");
        let cases = [
            // A right-to-left override inside a bucket name.
            (
                "acme-reports-prod",
                "acme-\\u202Eprod",
                "resource id",
                "bidirectional",
            ),
            (
                "acme-reports-prod",
                "acme\\u200Breports",
                "resource id",
                "format character",
            ),
            (
                "\"configRuleName\": \"s3-bucket-level-public-access-prohibited\"",
                "\"configRuleName\": \"s3-bucket-level-public-access-prohibited\\u2066\"",
                "rule name",
                "bidirectional",
            ),
            (
                "\"awsRegion\": \"us-east-1\"",
                "\"awsRegion\": \"us-east-1\\uFEFF\"",
                "region",
                "format character",
            ),
        ];
        for (from, to, field, want) in cases {
            let hostile = body.replace(from, to);
            assert_ne!(hostile, body, "{from}");
            match decode(&hostile) {
                Err(DecodeError::Invalid {
                    field: f, reason, ..
                }) => {
                    assert_eq!(f, field, "{to}");
                    assert!(reason.contains(want), "{to}: {reason}");
                }
                other => panic!("{to}: expected invalid, got {other:?}"),
            }
        }
        let control = "{\"rectify\": {\"action\": \"run-job\", \"job_id\": \"ab\\u202Ecd\"}}";
        assert!(decode(control).is_err());
        for c in [
            '\u{061C}',
            '\u{200E}',
            '\u{2069}',
            '\u{FEFF}',
            '\u{E0041}',
            '\u{00AD}',
        ] {
            assert!(is_format_char(c), "{:X}", c as u32);
        }
        for c in ['a', '-', '\u{00E9}', '\u{4E2D}'] {
            assert!(!is_format_char(c), "{c}");
        }
    }

    #[test]
    fn region_validation() {
        for ok in ["us-east-1", "eu-west-1", "us-gov-west-1", "ap-northeast-3"] {
            validate_region(ok).unwrap();
        }
        for bad in ["", "us-east", "US-EAST-1", "us-east-1/../x", "east-1"] {
            assert!(validate_region(bad).is_err(), "{bad}");
        }
    }
}
