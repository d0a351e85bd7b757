//! Test support: a moto server on 127.0.0.1 (the one scripts/test started, or one started here
//! and stopped when the test process exits), a fresh prefix per test, the rectify binary run as a
//! user runs it, and AWS SDK clients to seed and inspect resources.

#![allow(
    dead_code,
    reason = "each test binary uses its own part of the shared support"
)]

use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use serde_json::{Value, json};

pub const HOME: &str = "123456789012";
pub const MEMBER: &str = "210987654321";
pub const REGION: &str = "us-east-1";

static ENDPOINT: OnceLock<String> = OnceLock::new();

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn wait_for_http(endpoint: &str, deadline: Duration) -> bool {
    let addr = endpoint.trim_start_matches("http://").to_string();
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if let Ok(mut s) = std::net::TcpStream::connect(&addr) {
            use std::io::{Read, Write};
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            if s.write_all(b"GET /moto-api/ HTTP/1.0\r\n\r\n").is_ok() {
                let mut buf = [0u8; 12];
                if s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.") {
                    return true;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The moto endpoint: `RECTIFY_TEST_ENDPOINT`, or a server started here for this test process.
pub fn endpoint() -> &'static str {
    ENDPOINT.get_or_init(|| {
        if let Ok(e) = std::env::var("RECTIFY_TEST_ENDPOINT") {
            return e;
        }
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
        let python = std::env::var("RECTIFY_MOTO_PYTHON").unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
        assert!(
            std::path::Path::new(&python).exists(),
            "{python} is missing: run scripts/test (it installs a pinned moto), or set RECTIFY_TEST_ENDPOINT"
        );
        let server = format!("{python}' '{root}/scripts/moto_server.py");
        let port = free_port();
        // moto lives as long as this test process: a watcher stops it when the process is gone.
        let script = format!(
            "'{server}' 127.0.0.1 {port} >/dev/null 2>&1 & m=$!; \
             while kill -0 {pid} 2>/dev/null; do sleep 1; done; kill $m",
            pid = std::process::id()
        );
        #[allow(
            clippy::zombie_processes,
            reason = "the watcher outlives the test process on purpose: it stops moto after it"
        )]
        std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .spawn()
            .expect("start moto");
        let endpoint = format!("127.0.0.1:{port}");
        let url = format!("http://{endpoint}");
        assert!(wait_for_http(&url, Duration::from_secs(60)), "moto did not start on {url}");
        url
    })
}

/// One test's world: its own queue and tables under a fresh prefix.
pub struct Env {
    pub prefix: String,
    pub sdk: SdkConfig,
}

fn sdk_env() -> [(&'static str, String); 5] {
    [
        ("AWS_ENDPOINT_URL", endpoint().to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", REGION.into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// The event Security Hub CSPM sends for a failed finding of `control` (a consolidated control
/// finding: no Config rule name, as Security Hub names it) about one resource (`asff_type`, and
/// the ARN or id Security Hub gives it) of `account` in `region`.
pub fn control_finding(
    account: &str,
    region: &str,
    control: &str,
    asff_type: &str,
    resource_id: &str,
) -> String {
    json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(),
        "detail-type": "Security Hub Findings - Imported", "source": "aws.securityhub",
        "account": account, "time": "2026-11-30T10:00:00Z", "region": region, "resources": [],
        "detail": {"findings": [{
            "Id": format!("arn:aws:securityhub:{region}:{account}:security-control/{control}/finding/{}", uuid::Uuid::new_v4()),
            "ProductArn": format!("arn:aws:securityhub:{region}::product/aws/securityhub"),
            "GeneratorId": format!("security-control/{control}"), "AwsAccountId": account, "Region": region,
            "UpdatedAt": "2026-11-30T10:00:00.000Z", "Title": control,
            "Resources": [{"Type": asff_type, "Id": resource_id, "Partition": "aws", "Region": region}],
            "Compliance": {"Status": "FAILED", "SecurityControlId": control},
            "Workflow": {"Status": "NEW"}, "RecordState": "ACTIVE"
        }]}
    })
    .to_string()
}

/// Runs `rectify catalog test` and insists every case passes and `names` each had cases run;
/// then, for each `(role, granted, withheld)`, that `rectify catalog permissions --role ROLE`
/// lists every granted permission and none of the withheld.
pub async fn check_catalog(env: &Env, names: &[&str], roles: &[(&str, &[&str], &[&str])]) {
    let out = env.ok(&["catalog", "test"]).await;
    assert!(out.contains("0 failed"), "{out}");
    for name in names {
        assert!(out.contains(name), "{name} has no case run: {out}");
    }
    for (role, granted, withheld) in roles {
        let listed = env.ok(&["catalog", "permissions", "--role", role]).await;
        for p in *granted {
            assert!(listed.contains(p), "{role} lacks {p}: {listed}");
        }
        for p in *withheld {
            assert!(!listed.contains(p), "{role} holds {p}: {listed}");
        }
    }
}

/// A fresh account id, allowed by the environment's allow-list: tests of account-wide
/// settings each work in an account of their own.
pub async fn fresh_account(env: &Env) -> String {
    let digits: String = uuid::Uuid::new_v4()
        .as_u128()
        .to_string()
        .chars()
        .take(11)
        .collect();
    let id = format!("4{digits}");
    env.allow(&[id.as_str()]).await;
    id
}

/// A new IAM user (its name made from `prefix`) with `keys` active access keys: its name and
/// the unique id Config names it by.
pub async fn user_with_keys(sdk: &SdkConfig, prefix: &str, keys: usize) -> (String, String) {
    let iam = aws_sdk_iam::Client::new(sdk);
    let user = unique(prefix);
    let created = iam.create_user().user_name(&user).send().await.unwrap();
    for _ in 0..keys {
        iam.create_access_key()
            .user_name(&user)
            .send()
            .await
            .unwrap();
    }
    let id = created.user().unwrap().user_id().to_string();
    (user, id)
}

/// What a rectify command did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    /// A fresh prefix, bootstrapped with a short visibility timeout so retries come back fast,
    /// whose allow-list allows the two test accounts (an empty one allows none).
    pub async fn new() -> Env {
        let env = Env::bare().await;
        env.allow(&[HOME, MEMBER]).await;
        env
    }

    /// [`Env::new`] with the allow-list left empty: no account is allowed.
    pub async fn bare() -> Env {
        let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint())
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await;
        let env = Env { prefix, sdk };
        env.ok(&["bootstrap", "--visibility-timeout", "3"]).await;
        env
    }

    /// Runs the rectify binary with this test's prefix.
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[]).await
    }

    /// Runs the rectify binary with extra environment variables (e.g. an endpoint override).
    pub async fn run_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rectify"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RECTIFY_PREFIX", &self.prefix)
            .env("RECTIFY_LOG_FORMAT", "text")
            .env(
                "RECTIFY_LOG",
                "info,aws_config=warn,aws_smithy_runtime=warn",
            )
            .stdin(Stdio::null())
            // A run a test gives up on does not outlive it.
            .kill_on_drop(true);
        for (k, v) in sdk_env() {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let out = cmd.output().await.expect("run rectify");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts rectify in the background (a long-running worker), its log lines collected.
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        self.spawn_env(args, &[])
    }

    /// Starts rectify in the background with extra environment variables.
    pub fn spawn_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Spawned {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rectify"));
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("RECTIFY_PREFIX", &self.prefix)
            .env("RECTIFY_LOG_FORMAT", "text")
            .env("NO_COLOR", "1")
            .env(
                "RECTIFY_LOG",
                "info,aws_config=warn,aws_smithy_runtime=warn",
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in sdk_env() {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn rectify");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            use tokio::io::AsyncBufReadExt;
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Spawned {
            child,
            lines: rx,
            log: Vec::new(),
        }
    }

    /// Adds accounts to the allow-list.
    pub async fn allow(&self, accounts: &[&str]) {
        let mut args = vec!["settings", "accounts", "add"];
        args.extend_from_slice(accounts);
        args.extend_from_slice(&["--by", "test"]);
        self.ok(&args).await;
    }

    /// Switches tag exemptions on for the Organization (they are off by default).
    pub async fn tag_exemptions_on(&self) {
        self.ok(&["settings", "tag-exemptions", "on", "--by", "test"])
            .await;
    }

    /// Switches a remediation to approval mode in every account: each plan waits for a person.
    pub async fn approval(&self, remediation: &str) {
        self.ok(&[
            "settings",
            "set",
            remediation,
            "--mode",
            "approval",
            "--by",
            "test",
        ])
        .await;
    }

    /// Switches a remediation to enforce in every account.
    pub async fn enforce(&self, remediation: &str) {
        self.set_enforce(remediation, &[]).await;
    }

    /// Switches a remediation to enforce in every account, with at most `limit` enforcements
    /// an hour in each before the blast-radius breaker trips.
    pub async fn enforce_with_breaker(&self, remediation: &str, limit: u32) {
        let limit = limit.to_string();
        self.set_enforce(remediation, &["--breaker-limit", &limit])
            .await;
    }

    async fn set_enforce(&self, remediation: &str, extra: &[&str]) {
        let mut args = vec![
            "settings",
            "set",
            remediation,
            "--mode",
            "enforce",
            "--yes",
            "--by",
            "test",
        ];
        args.extend_from_slice(extra);
        self.ok(&args).await;
    }

    /// Switches `iam-deactivate-stale-keys` to enforce with a threshold of 0 days: every
    /// active key is stale (moto cannot back-date a key).
    pub async fn enforce_on_every_active_key(&self) {
        self.enforce("iam-deactivate-stale-keys").await;
        self.param("iam-deactivate-stale-keys", "max_unused_days=0")
            .await;
    }

    /// Sets one parameter (`KEY=VALUE`) of a remediation in every account.
    pub async fn param(&self, remediation: &str, key_value: &str) {
        self.ok(&[
            "settings",
            "set",
            remediation,
            "--param",
            key_value,
            "--by",
            "test",
        ])
        .await;
    }

    /// Creates a bucket (public: no Public Access Block) in the home account; returns its name.
    pub async fn bucket(&self, prefix: &str) -> String {
        new_bucket(&self.sdk, prefix).await
    }

    /// A new bucket in `account` (public: no Public Access Block) and the Config finding that
    /// says so, sent: the bucket.
    pub async fn open_bucket_found(&self, account: &str, prefix: &str) -> String {
        let bucket = new_bucket(&self.account(account).await, prefix).await;
        self.send(&config_event(
            account,
            "s3-bucket-level-public-access-prohibited",
            "AWS::S3::Bucket",
            &bucket,
        ))
        .await;
        bucket
    }

    /// Runs rectify and insists it succeeds; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args).await;
        assert_eq!(
            r.code, 0,
            "rectify {args:?} failed\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r.stdout
    }

    /// Runs rectify with `--json` appended and parses the output.
    pub async fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let out = self.ok(&a).await;
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("rectify {args:?}: not JSON ({e}):\n{out}"))
    }

    pub async fn jobs(&self) -> Vec<Value> {
        self.json(&["jobs", "list"])
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every audit record, the anchors included.
    pub async fn audit(&self) -> Vec<Value> {
        self.json(&["audit", "list", "--all"])
            .await
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Every job of one remediation.
    pub async fn jobs_of(&self, remediation: &str) -> Vec<Value> {
        self.jobs()
            .await
            .into_iter()
            .filter(|j| j["remediation"] == remediation)
            .collect()
    }

    /// Undoes job `id` as an operator would, and insists it is undone.
    pub async fn undo(&self, id: &str) {
        let out = self
            .ok(&["jobs", "undo", id, "--by", "auditor", "--reason", "r"])
            .await;
        assert!(out.contains("undone"), "{out}");
    }

    /// Approves job `id` as `by`, and runs the worker until both queues are empty.
    pub async fn approve(&self, id: &str, by: &str) {
        self.ok(&["jobs", "approve", id, "--by", by]).await;
        self.drain_all().await;
    }

    /// The raw item of job `id` in the jobs table, read consistently.
    pub async fn job_item(
        &self,
        id: &str,
    ) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
        aws_sdk_dynamodb::Client::new(&self.sdk)
            .get_item()
            .table_name(format!("{}-jobs", self.prefix))
            .key(
                "id",
                aws_sdk_dynamodb::types::AttributeValue::S(id.to_string()),
            )
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item
            .expect("the job's item")
    }

    /// The one job for a resource; fails when there are several or none.
    pub async fn job_for(&self, resource: &str) -> Value {
        let jobs: Vec<Value> = self
            .jobs()
            .await
            .into_iter()
            .filter(|j| j["resource_id"] == resource)
            .collect();
        assert_eq!(jobs.len(), 1, "jobs for {resource}: {jobs:#?}");
        jobs[0].clone()
    }

    /// The state store under this prefix, as rectify's own code reaches it.
    pub fn store(&self) -> rectify::state::Store {
        rectify::state::Store::new(
            aws_sdk_dynamodb::Client::new(&self.sdk),
            rectify::state::Names::new(&self.prefix),
        )
    }

    /// Takes the resource lock `key` as another worker's job would, for two minutes: a job
    /// for that resource waits until [`Env::let_go`].
    pub async fn hold(&self, key: &str) {
        let taken = self
            .store()
            .lock_resource(key, "worker-b", Duration::from_secs(120))
            .await
            .unwrap();
        assert!(taken, "{key} is held already");
    }

    /// Releases a lock taken by [`Env::hold`].
    pub async fn let_go(&self, key: &str) {
        self.store().unlock_resource(key, "worker-b").await.unwrap();
    }

    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    pub async fn queue_url(&self, dlq: bool) -> String {
        self.url_of(if dlq { "events-dlq" } else { "events" }).await
    }

    /// The URL of the queue `<prefix>-<suffix>` (`events`, `control`, `events-dlq`).
    pub async fn url_of(&self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.prefix);
        self.sqs()
            .get_queue_url()
            .queue_name(name)
            .send()
            .await
            .unwrap()
            .queue_url()
            .unwrap()
            .to_string()
    }

    pub async fn send(&self, body: &str) {
        let url = self.queue_url(false).await;
        self.sqs()
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// Sends the finding that a bucket in the home account allows public access.
    pub async fn send_bucket_event(&self, bucket: &str) {
        self.send(&bucket_event(bucket)).await;
    }

    /// Visible plus in-flight messages on the queue (or the DLQ).
    pub async fn depth(&self, dlq: bool) -> u64 {
        self.depth_of(if dlq { "events-dlq" } else { "events" })
            .await
    }

    /// Visible plus in-flight messages on the queue `<prefix>-<suffix>`.
    pub async fn depth_of(&self, suffix: &str) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let url = self.url_of(suffix).await;
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap();
        let attrs = out.attributes().unwrap();
        [
            A::ApproximateNumberOfMessages,
            A::ApproximateNumberOfMessagesNotVisible,
        ]
        .iter()
        .map(|k| {
            attrs
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
    }

    /// Runs `worker --once`.
    pub async fn drain(&self) -> Run {
        self.drain_env(&[]).await
    }

    /// Runs `worker --once` with extra environment variables.
    pub async fn drain_env(&self, extra: &[(&str, &str)]) -> Run {
        let r = self.run_env(&["worker", "--once"], extra).await;
        assert_eq!(r.code, 0, "worker --once failed:\n{}", r.stderr);
        r
    }

    /// Runs `worker --once` until the queue holds nothing, visible or in flight (messages left for
    /// retry come back after the 3 s visibility timeout), with a deadline.
    pub async fn drain_all(&self) {
        self.drain_all_env(&[]).await;
    }

    /// `drain_all` with extra environment variables; returns every worker run.
    pub async fn drain_all_env(&self, extra: &[(&str, &str)]) -> Vec<Run> {
        let end = Instant::now() + Duration::from_secs(180);
        let mut runs = Vec::new();
        loop {
            runs.push(self.drain_env(extra).await);
            if self.depth(false).await == 0 && self.depth_of("control").await == 0 {
                return runs;
            }
            assert!(Instant::now() < end, "the queue did not drain in 180 s");
            // Wait for the in-flight messages to become visible again.
            let until = Instant::now() + Duration::from_secs(10);
            while self.visible().await == 0 && self.depth(false).await > 0 && Instant::now() < until
            {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    async fn visible(&self) -> u64 {
        use aws_sdk_sqs::types::QueueAttributeName as A;
        let url = self.queue_url(false).await;
        let out = self
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(A::ApproximateNumberOfMessages)
            .send()
            .await
            .unwrap();
        out.attributes()
            .and_then(|a| a.get(&A::ApproximateNumberOfMessages))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    /// SDK configuration acting in `account` (AssumeRole, as rectify does; moto routes the
    /// assumed credentials to that account).
    pub async fn account(&self, account: &str) -> SdkConfig {
        if account == HOME {
            return self.sdk.clone();
        }
        let provider = aws_config::sts::AssumeRoleProvider::builder(format!(
            "arn:aws:iam::{account}:role/rectify-remediation"
        ))
        .session_name("test-seed")
        .configure(&self.sdk)
        .build()
        .await;
        self.sdk
            .to_builder()
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(provider))
            .build()
    }
}

/// A rectify process running in the background.
pub struct Spawned {
    pub child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// Every log line read so far.
    pub log: Vec<String>,
}

impl Spawned {
    /// Waits until a log line contains `needle`, with a deadline.
    pub async fn wait_for(&mut self, needle: &str, deadline: Duration) -> bool {
        if self.log.iter().any(|l| l.contains(needle)) {
            return true;
        }
        let end = tokio::time::Instant::now() + deadline;
        loop {
            match tokio::time::timeout_at(end, self.lines.recv()).await {
                Ok(Some(line)) => {
                    let hit = line.contains(needle);
                    self.log.push(line);
                    if hit {
                        return true;
                    }
                }
                Ok(None) | Err(_) => return false,
            }
        }
    }

    /// Sends a signal (`HUP`, `TERM`, `KILL`, …) with kill(1).
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("still running");
        let ok = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(ok.success(), "kill -{name} {pid}");
    }

    /// Waits for the process to exit, with a deadline; returns its exit code (None if killed
    /// by a signal).
    pub async fn exit(&mut self, deadline: Duration) -> Option<i32> {
        let status = tokio::time::timeout(deadline, self.child.wait())
            .await
            .expect("the process did not exit in time")
            .unwrap();
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        status.code()
    }
}

/// Polls `check` until it gives `Some`, with a deadline.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Config's finding that IAM user `user_id` (its unique id, as Config names it) has unused
/// credentials, as the bare compliance detail.
pub fn unused_credentials(user_id: &str) -> String {
    config_detail(
        HOME,
        "iam-user-unused-credentials-check",
        "AWS::IAM::User",
        user_id,
        "NON_COMPLIANT",
    )
    .to_string()
}

/// Each of `user`'s access keys as (key id, status), in key id order.
pub async fn access_keys(sdk: &SdkConfig, user: &str) -> Vec<(String, String)> {
    let mut keys: Vec<(String, String)> = aws_sdk_iam::Client::new(sdk)
        .list_access_keys()
        .user_name(user)
        .send()
        .await
        .unwrap()
        .access_key_metadata()
        .iter()
        .map(|k| {
            (
                k.access_key_id().unwrap_or_default().to_string(),
                k.status().unwrap().as_str().to_string(),
            )
        })
        .collect();
    keys.sort();
    keys
}

/// The status of each of `user`'s access keys, in key id order.
pub async fn key_statuses(sdk: &SdkConfig, user: &str) -> Vec<String> {
    access_keys(sdk, user)
        .await
        .into_iter()
        .map(|(_, s)| s)
        .collect()
}

/// The Config compliance detail for a resource, with a fresh ordering timestamp.
pub fn config_detail(
    account: &str,
    rule: &str,
    resource_type: &str,
    resource_id: &str,
    compliance: &str,
) -> Value {
    json!({
        "resourceId": resource_id, "awsRegion": REGION, "awsAccountId": account, "configRuleName": rule,
        "recordVersion": "1.0", "messageType": "ComplianceChangeNotification", "resourceType": resource_type,
        "configRuleARN": format!("arn:aws:config:{REGION}:{account}:config-rule/config-rule-test"),
        "newEvaluationResult": {
            "evaluationResultIdentifier": {
                "evaluationResultQualifier": {"configRuleName": rule, "resourceType": resource_type, "resourceId": resource_id},
                "orderingTimestamp": now()
            },
            "complianceType": compliance, "resultRecordedTime": now(), "configRuleInvokedTime": now(), "annotation": null
        },
        "notificationCreationTime": now()
    })
}

/// The Config event that says a bucket in the home account allows public access.
pub fn bucket_event(bucket: &str) -> String {
    config_event(
        HOME,
        "s3-bucket-level-public-access-prohibited",
        "AWS::S3::Bucket",
        bucket,
    )
}

/// A raw EventBridge "Config Rules Compliance Change" event, as an EventBridge → SQS target sends it.
pub fn config_event(account: &str, rule: &str, resource_type: &str, resource_id: &str) -> String {
    json!({
        "version": "0", "id": uuid::Uuid::new_v4().to_string(), "detail-type": "Config Rules Compliance Change",
        "source": "aws.config", "account": account, "time": now(), "region": REGION, "resources": [],
        "detail": config_detail(account, rule, resource_type, resource_id, "NON_COMPLIANT")
    })
    .to_string()
}

/// A message inside an SNS envelope.
pub fn sns(message: &str) -> String {
    json!({"Type": "Notification", "MessageId": uuid::Uuid::new_v4().to_string(),
           "TopicArn": format!("arn:aws:sns:{REGION}:{HOME}:config-topic"), "Message": message, "Timestamp": now()})
    .to_string()
}

/// A unique lower-case name for a resource.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

/// Tags a bucket `rectify:exempt` with this value.
pub async fn tag_exempt(sdk: &SdkConfig, bucket: &str, value: &str) {
    use aws_sdk_s3::types::{Tag, Tagging};
    let tag = Tag::builder()
        .key("rectify:exempt")
        .value(value)
        .build()
        .unwrap();
    aws_sdk_s3::Client::new(sdk)
        .put_bucket_tagging()
        .bucket(bucket)
        .tagging(Tagging::builder().tag_set(tag).build().unwrap())
        .send()
        .await
        .unwrap();
}

/// A new bucket named from `prefix`, made with `sdk`'s account.
pub async fn new_bucket(sdk: &SdkConfig, prefix: &str) -> String {
    let bucket = unique(prefix);
    aws_sdk_s3::Client::new(sdk)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    bucket
}

/// Blocks every kind of public access to a bucket, as its owner would.
pub async fn block_public_access(sdk: &SdkConfig, bucket: &str) {
    let pab = aws_sdk_s3::types::PublicAccessBlockConfiguration::builder()
        .block_public_acls(true)
        .ignore_public_acls(true)
        .block_public_policy(true)
        .restrict_public_buckets(true)
        .build();
    aws_sdk_s3::Client::new(sdk)
        .put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(pab)
        .send()
        .await
        .unwrap();
}

/// An SNS topic for notifications and an SQS queue subscribed to it (raw delivery): the topic's
/// ARN and the queue's URL.
pub async fn notification_inbox(env: &Env) -> (String, String) {
    let sns = aws_sdk_sns::Client::new(&env.sdk);
    let topic = sns
        .create_topic()
        .name(unique("rectify-notify"))
        .send()
        .await
        .unwrap()
        .topic_arn()
        .unwrap()
        .to_string();
    let sqs = env.sqs();
    let inbox = sqs
        .create_queue()
        .queue_name(unique("inbox"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&inbox)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(arn)
        .attributes("RawMessageDelivery", "true")
        .send()
        .await
        .unwrap();
    (topic, inbox)
}

/// Every notification waiting in an inbox of [`notification_inbox`].
pub async fn notifications(env: &Env, inbox: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let out = env
            .sqs()
            .receive_message()
            .queue_url(inbox)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        let batch = out.messages.unwrap_or_default();
        if batch.is_empty() {
            return events;
        }
        for m in batch {
            events.push(serde_json::from_str(m.body().unwrap()).unwrap());
        }
    }
}

/// The bucket's Public Access Block, or None when it has none.
pub async fn public_access_block(sdk: &SdkConfig, bucket: &str) -> Option<[bool; 4]> {
    let s3 = aws_sdk_s3::Client::new(sdk);
    match s3.get_public_access_block().bucket(bucket).send().await {
        Ok(out) => {
            let c = out.public_access_block_configuration().unwrap();
            Some([
                c.block_public_acls().unwrap_or(false),
                c.ignore_public_acls().unwrap_or(false),
                c.block_public_policy().unwrap_or(false),
                c.restrict_public_buckets().unwrap_or(false),
            ])
        }
        Err(_) => None,
    }
}

/// An S3 gateway endpoint in `vpc` with the policy document `policy` (as written); its id.
pub async fn vpc_endpoint(sdk: &SdkConfig, vpc: &str, policy: &str) -> String {
    let ep = aws_sdk_ec2::Client::new(sdk)
        .create_vpc_endpoint()
        .vpc_id(vpc)
        .service_name("com.amazonaws.us-east-1.s3")
        .policy_document(policy)
        .send()
        .await
        .unwrap();
    ep.vpc_endpoint()
        .unwrap()
        .vpc_endpoint_id()
        .unwrap()
        .to_string()
}

/// A VPC and a security group in it.
pub async fn security_group(sdk: &SdkConfig) -> (String, String) {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.0.0.0/16")
        .send()
        .await
        .unwrap();
    let vpc_id = vpc.vpc().unwrap().vpc_id().unwrap().to_string();
    let sg = ec2
        .create_security_group()
        .group_name(unique("sg"))
        .description("test")
        .vpc_id(&vpc_id)
        .send()
        .await
        .unwrap();
    (vpc_id, sg.group_id().unwrap().to_string())
}

/// Opens tcp ports `from`–`to` of a group to a CIDR block.
pub async fn open_tcp(sdk: &SdkConfig, group_id: &str, from: i32, to: i32, cidr: &str) {
    aws_sdk_ec2::Client::new(sdk)
        .authorize_security_group_ingress()
        .group_id(group_id)
        .ip_protocol("tcp")
        .from_port(from)
        .to_port(to)
        .cidr_ip(cidr)
        .send()
        .await
        .unwrap();
}

/// The group's ingress rules as (protocol, from, to, source) sorted.
pub async fn ingress(sdk: &SdkConfig, group_id: &str) -> Vec<(String, i32, i32, String)> {
    let ec2 = aws_sdk_ec2::Client::new(sdk);
    let out = ec2
        .describe_security_group_rules()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("group-id")
                .values(group_id)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut rules: Vec<_> = out
        .security_group_rules()
        .iter()
        .filter(|r| r.is_egress() != Some(true))
        .map(|r| {
            let src = r
                .cidr_ipv4()
                .or(r.cidr_ipv6())
                .map(str::to_string)
                .or_else(|| {
                    r.referenced_group_info()
                        .and_then(|g| g.group_id())
                        .map(|g| format!("group:{g}"))
                })
                .or_else(|| r.prefix_list_id().map(|p| format!("prefix-list:{p}")))
                .unwrap_or_default();
            (
                r.ip_protocol().unwrap_or_default().to_string(),
                r.from_port().unwrap_or(0),
                r.to_port().unwrap_or(0),
                src,
            )
        })
        .collect();
    rules.sort();
    rules
}

/// The fault-injecting proxy (scripts/fault_proxy.py) in front of moto, for this test alone.
pub struct FaultProxy {
    pub url: String,
    pub log: std::path::PathBuf,
    _child: tokio::process::Child,
}

impl FaultProxy {
    /// Starts the proxy with a share of faulted requests and a seed for its random choices.
    pub async fn start(fail_rate: f64, seed: u64) -> FaultProxy {
        let root = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
        let python = std::env::var("RECTIFY_MOTO_PYTHON")
            .unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
        let log = std::env::temp_dir()
            .join(unique("fault-proxy"))
            .with_extension("jsonl");
        let mut child = tokio::process::Command::new(python)
            .arg(format!("{root}/scripts/fault_proxy.py"))
            .args(["--target", endpoint(), "--log", log.to_str().unwrap()])
            .args([
                "--fail-rate",
                &fail_rate.to_string(),
                "--seed",
                &seed.to_string(),
            ])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start the fault proxy");
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the proxy printed no port")
            .unwrap()
            .expect("the proxy printed no port");
        FaultProxy {
            url: format!("http://127.0.0.1:{}", port.trim()),
            log,
            _child: child,
        }
    }

    /// Changes the proxy's behaviour: `{"fail_rate": 0.5}`, `{"down": true}`, `{"delay_only": true}`
    /// (see scripts/fault_proxy.py); returns its state after the change.
    pub async fn set(&self, config: Value) -> Value {
        let addr = self.url.trim_start_matches("http://").to_string();
        let body = config.to_string();
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            write!(s, "POST /__proxy/config HTTP/1.1\r\nHost: proxy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}", body.len(), body).unwrap();
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            assert!(out.starts_with("HTTP/1.1 200") || out.starts_with("HTTP/1.0 200"), "{out}");
            let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
            serde_json::from_str(body).unwrap_or(Value::Null)
        })
        .await
        .unwrap()
    }

    /// The calls that changed a resource and reached moto.
    pub fn mutating_calls(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("body").is_some() && v["status"].as_u64().is_some_and(|s| s < 300))
            .collect()
    }

    /// Every request forwarded to moto, as logged: service, action, status (and for DynamoDB
    /// the tables it names and whether it writes an audit anchor).
    pub fn entries(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .collect()
    }

    /// Every request forwarded to moto.
    pub fn forwarded(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .count()
    }
}

/// The Organization moto holds for the home account (created on first use; tests of one moto
/// server share it), and a member account created in it.
pub async fn organization_with_a_member(env: &Env) -> String {
    let org = aws_sdk_organizations::Client::new(&env.sdk);
    if org.describe_organization().send().await.is_err() {
        org.create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .unwrap();
    }
    let created = org
        .create_account()
        .account_name(unique("member"))
        .email(format!("{}@example.com", unique("member")))
        .send()
        .await
        .unwrap();
    created
        .create_account_status()
        .unwrap()
        .account_id()
        .unwrap()
        .to_string()
}

/// The ARN of the credentials the tests (and the rectify they run) use.
pub async fn caller_arn(env: &Env) -> String {
    aws_sdk_sts::Client::new(&env.sdk)
        .get_caller_identity()
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_string()
}
