//! Member accounts: credentials, clients and the errors of AWS calls, beneath every module
//! that reaches AWS.
//!
//! A finding in another account is handled through STS AssumeRole into that account's
//! remediation role; the resulting configuration and clients are cached per account and region.
//! Reading a resource is [`crate::resource::observe`]; changing one is
//! [`crate::action::apply`], the one place rectify changes AWS.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use aws_config::SdkConfig;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use tokio::sync::Mutex;

/// A failed call to a member account.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("{resource} does not exist")]
    NotFound { resource: String },
    #[error("{call}: {code}: {message}")]
    Service {
        call: &'static str,
        code: String,
        message: String,
        status: Option<u16>,
    },
    #[error("{call}: could not reach AWS: {message}")]
    Transport { call: &'static str, message: String },
    #[error("{0}")]
    Unsupported(String),
}

/// Error codes of a call AWS throttled (the first [`THROTTLED`]) or could not serve for now.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "SlowDown",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "ProvisionedThroughputExceededException",
    // The codes above say "slow down"; those below, "not now".
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
];

/// How many of [`THROTTLING`]'s codes say "slow down".
const THROTTLED: usize = 9;

impl CloudError {
    /// Whether the whole job is worth trying again later (the SDK has already retried the call).
    pub fn retryable(&self) -> bool {
        match self {
            CloudError::Transport { .. } => true,
            CloudError::Service { code, status, .. } => {
                status.is_some_and(|s| s >= 500) || THROTTLING.contains(&code.as_str())
            }
            CloudError::NotFound { .. } | CloudError::Unsupported(_) => false,
        }
    }

    /// Whether AWS throttled the call (after the SDK's own retries): worth trying again after
    /// a pause, at a slower pace.
    pub fn throttled(&self) -> bool {
        self.is(&THROTTLING[..THROTTLED])
    }

    /// The AWS error code, when AWS answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            CloudError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Whether AWS answered with one of these error codes.
    pub fn is(&self, codes: &[&str]) -> bool {
        self.code().is_some_and(|c| codes.contains(&c))
    }
}

/// Classifies an SDK error (after the SDK's own retries).
pub fn classify<E>(call: &'static str, err: SdkError<E, HttpResponse>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &err {
        SdkError::ServiceError(_) | SdkError::ResponseError(_) => {
            let status = err.raw_response().map(|r| r.status().as_u16());
            CloudError::Service {
                call,
                code: err.code().unwrap_or("Unknown").to_string(),
                message: err
                    .message()
                    .map_or_else(|| error_chain(&err), str::to_string),
                status,
            }
        }
        _ => CloudError::Transport {
            call,
            message: error_chain(&err),
        },
    }
}

/// An error and its sources on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// State kept for as long as a [`Cloud`] lives, one value per type (a resource type's cache of
/// lookups, say).
type Shared = Arc<std::sync::Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>>;

/// Clients for one account and region, each SDK client made the first time it is asked for, so a
/// resource type can use a service without a field here for it.
pub struct Clients {
    account: String,
    /// The member account's configuration, with the region set.
    config: SdkConfig,
    made: std::sync::Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
    shared: Shared,
}

impl Clients {
    /// The account these clients act in.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// The region these clients act in.
    pub fn region(&self) -> &str {
        self.config.region().map_or("", aws_config::Region::as_ref)
    }

    /// The client of type `C`, made with `make` (an SDK's `Client::new`) on first use and cached.
    pub fn get<C: Clone + Send + Sync + 'static>(&self, make: fn(&SdkConfig) -> C) -> C {
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        made.entry(TypeId::of::<C>())
            .or_insert_with(|| Box::new(make(&self.config)))
            .downcast_ref::<C>()
            .expect("the entry of a type holds that type")
            .clone()
    }

    /// The one value of type `T` kept across every account and region for as long as the
    /// [`Cloud`] lives (a resource type's cache of lookups, say), made with `T::default()` on
    /// first use.
    pub fn shared<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let value = self
            .shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(T::default()))
            .clone();
        value
            .downcast::<T>()
            .unwrap_or_else(|_| unreachable!("the entry of a type holds that type"))
    }
}

/// Access to member accounts.
pub struct Cloud {
    base: SdkConfig,
    home_account: String,
    role_name: String,
    external_id: Option<String>,
    accounts: Mutex<HashMap<String, SdkConfig>>,
    clients: Mutex<HashMap<(String, String), Arc<Clients>>>,
    /// Clients with rectify's own credentials, by region.
    home: Mutex<HashMap<String, Arc<Clients>>>,
    shared: Shared,
}

impl Cloud {
    pub fn new(
        base: SdkConfig,
        home_account: String,
        role_name: String,
        external_id: Option<String>,
    ) -> Cloud {
        Cloud {
            base,
            home_account,
            role_name,
            external_id,
            accounts: Mutex::default(),
            clients: Mutex::default(),
            home: Mutex::default(),
            shared: Shared::default(),
        }
    }

    /// The account rectify's own credentials belong to.
    pub fn home_account(&self) -> &str {
        &self.home_account
    }

    /// Every account, the controller's own included, is reached through its remediation role:
    /// the worker's own role has no rights on resources.
    async fn account_config(&self, account: &str) -> SdkConfig {
        let mut accounts = self.accounts.lock().await;
        if let Some(c) = accounts.get(account) {
            return c.clone();
        }
        let role = format!("arn:aws:iam::{account}:role/{}", self.role_name);
        let mut builder = aws_config::sts::AssumeRoleProvider::builder(role)
            .session_name("rectify")
            .configure(&self.base);
        if let Some(id) = &self.external_id {
            builder = builder.external_id(id.clone());
        }
        let provider = builder.build().await;
        let config = self
            .base
            .to_builder()
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(provider))
            .build();
        accounts.insert(account.to_string(), config.clone());
        config
    }

    /// Clients with rectify's own credentials (not a member role) in `region`, made once and
    /// cached: for what rectify does in its own account, such as updating Security Hub
    /// findings as the administrator account.
    pub async fn home_clients(&self, region: &str) -> Arc<Clients> {
        let mut home = self.home.lock().await;
        if let Some(c) = home.get(region) {
            return c.clone();
        }
        let clients = Arc::new(Clients {
            account: self.home_account.clone(),
            config: self
                .base
                .to_builder()
                .region(aws_config::Region::new(region.to_string()))
                .build(),
            made: std::sync::Mutex::default(),
            shared: self.shared.clone(),
        });
        home.insert(region.to_string(), clients.clone());
        clients
    }

    /// The clients for an account and region, made once and cached.
    pub async fn clients(&self, account: &str, region: &str) -> Arc<Clients> {
        let key = (account.to_string(), region.to_string());
        if let Some(c) = self.clients.lock().await.get(&key) {
            return c.clone();
        }
        let config = self
            .account_config(account)
            .await
            .to_builder()
            .region(aws_config::Region::new(region.to_string()))
            .build();
        let clients = Arc::new(Clients {
            account: account.to_string(),
            config,
            made: std::sync::Mutex::default(),
            shared: self.shared.clone(),
        });
        self.clients.lock().await.insert(key, clients.clone());
        clients
    }
}

/// An S3 Control client. S3 Control puts the account id in front of the endpoint's host
/// (`111122223333.s3-control.<region>.amazonaws.com`); when the configured endpoint is an IP
/// address (a local emulator) that name cannot resolve, so the configured address is used as
/// it is and the account travels in the `x-amz-account-id` header alone, as the S3 client
/// uses path-style addressing for an IP endpoint.
pub fn s3control_client(config: &SdkConfig) -> aws_sdk_s3control::Client {
    let conf = aws_sdk_s3control::config::Builder::from(config)
        .endpoint_resolver(KeepIpEndpoint(
            aws_sdk_s3control::config::endpoint::DefaultResolver::new(),
        ))
        .build();
    aws_sdk_s3control::Client::from_conf(conf)
}

/// S3 Control's endpoint rules, except that an endpoint configured as an IP address is kept.
#[derive(Debug)]
struct KeepIpEndpoint(aws_sdk_s3control::config::endpoint::DefaultResolver);

impl aws_sdk_s3control::config::endpoint::ResolveEndpoint for KeepIpEndpoint {
    fn resolve_endpoint<'a>(
        &'a self,
        params: &'a aws_sdk_s3control::config::endpoint::Params,
    ) -> aws_sdk_s3control::config::endpoint::EndpointFuture<'a> {
        aws_sdk_s3control::config::endpoint::EndpointFuture::new(async move {
            let resolved = aws_sdk_s3control::config::endpoint::ResolveEndpoint::resolve_endpoint(
                &self.0, params,
            )
            .await?;
            match params.endpoint().filter(|url| is_ip_endpoint(url)) {
                Some(url) => {
                    let mut kept = aws_sdk_s3control::config::endpoint::Endpoint::builder()
                        .url(url.trim_end_matches('/').to_string());
                    for (name, values) in resolved.headers() {
                        for value in values {
                            kept = kept.header(name.to_string(), value.to_string());
                        }
                    }
                    for (key, value) in resolved.properties() {
                        kept = kept.property(key.clone(), value.clone());
                    }
                    Ok(kept.build())
                }
                None => Ok(resolved),
            }
        })
    }
}

/// Whether an endpoint URL's host is an IP address (`http://127.0.0.1:5000`, `http://[::1]`).
fn is_ip_endpoint(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host.parse::<std::net::IpAddr>().is_ok()
}

/// What the controller's own task role calls in its account (queue, tables, topic, member
/// roles, Security Hub write-back, audit export), as IAM permissions.
pub const CONTROLLER_PERMISSIONS: &[&str] = &[
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:SendMessage",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "sns:Publish",
    "organizations:ListAccounts",
    "sts:AssumeRole",
    // BatchUpdateFindings and BatchUpdateFindingsV2 are both authorised by this one action.
    "securityhub:BatchUpdateFindings",
    "s3:PutObject",
    "s3:GetObject",
    "s3:ListBucket",
    "s3:GetBucketObjectLockConfiguration",
    "s3:PutObjectRetention",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_ip_endpoint_is_kept_as_configured() {
        assert!(is_ip_endpoint("http://127.0.0.1:5000"));
        assert!(is_ip_endpoint("http://127.0.0.1:5000/"));
        assert!(is_ip_endpoint("http://[::1]:5000"));
        assert!(!is_ip_endpoint(
            "https://s3-control.eu-west-1.amazonaws.com"
        ));
        assert!(!is_ip_endpoint("http://localhost:5000"));
    }
}
