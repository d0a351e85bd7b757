//! Configuration: a TOML file, overridden by `RECTIFY_*` environment variables, overridden by
//! flags. clap merges flags with the environment; the file fills in what neither set.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::script::Limits;

/// The configuration file. Every key is optional; unknown keys are an error that names them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Prefix of the queue, DLQ and table names (`<prefix>-events`, `<prefix>-jobs`, …).
    pub prefix: Option<String>,
    /// Name of the role assumed in member accounts.
    pub role_name: Option<String>,
    /// Name of the role `rectify jobs undo` assumes in member accounts (it holds the inverses).
    pub operator_role_name: Option<String>,
    /// External id presented when assuming the member role.
    pub external_id: Option<String>,
    /// A directory of remediations that add to or override the embedded catalog.
    pub remediations: Option<PathBuf>,
    /// `text` or `json`.
    pub log_format: Option<String>,
    /// How long a plan waits for an approval before it expires, in seconds (default 24 h).
    pub approval_ttl_seconds: Option<u64>,
    /// SNS topic told of pending approvals, applied and failed fixes and tripped breakers.
    pub notify_topic_arn: Option<String>,
    /// Write the notification `https` subscribers get in the custom-notification format of
    /// Amazon Q Developer in chat applications (Slack, Microsoft Teams) instead of the JSON
    /// object (default false).
    pub notify_chat: Option<bool>,
    #[serde(default)]
    pub worker: WorkerFile,
    #[serde(default)]
    pub audit: AuditFile,
    #[serde(default)]
    pub aws: AwsFile,
    /// Script limits (see `script::Limits`).
    #[serde(default)]
    pub script: Option<Limits>,
}

/// `[worker]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerFile {
    /// Messages worked on at once.
    pub concurrency: Option<usize>,
    /// Long-poll wait in seconds, 0–20 (SQS's maximum is 20).
    pub wait_seconds: Option<i32>,
    /// Long-poll wait with `--once`, in seconds.
    pub once_wait_seconds: Option<i32>,
    /// How long settings read from the table are reused, in seconds.
    pub settings_cache_seconds: Option<u64>,
    /// After SIGTERM, how long work in flight may take, in seconds (ECS waits 30 s by default
    /// before it kills the task).
    pub shutdown_grace_seconds: Option<u64>,
    /// A file touched after every poll, for `rectify healthcheck`.
    pub liveness_file: Option<std::path::PathBuf>,
}

/// `[audit]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    /// A worker anchors its chain's head after this many records (default 10).
    pub anchor_every_records: Option<u64>,
    /// ... and at most this many seconds after an unanchored record (default 5): what a SIGKILL
    /// can leave unanchored. The worker's liveness item lasts three times as long.
    pub anchor_every_seconds: Option<u64>,
}

/// `[aws]` in the configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsFile {
    /// How long one attempt of an AWS call may take before it is given up and retried, in
    /// seconds (default 30). A long poll of the event queue may take its wait on top.
    pub call_timeout_seconds: Option<u64>,
}

/// The longest attempt of an AWS call that may be allowed, in seconds.
pub const MAX_CALL_TIMEOUT_SECONDS: u64 = 300;

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub prefix: String,
    pub role_name: String,
    /// The role undo assumes in member accounts.
    pub operator_role_name: String,
    pub external_id: Option<String>,
    pub remediations: Option<PathBuf>,
    pub log_json: bool,
    pub concurrency: usize,
    pub wait_seconds: i32,
    pub once_wait_seconds: i32,
    pub settings_cache_seconds: u64,
    pub shutdown_grace_seconds: u64,
    pub liveness_file: std::path::PathBuf,
    pub approval_ttl_seconds: u64,
    pub notify_topic_arn: Option<String>,
    /// `https` subscribers of the topic get the chat format.
    pub notify_chat: bool,
    pub limits: Limits,
    /// A worker anchors its audit chain's head after this many records...
    pub anchor_every_records: u64,
    /// ... or this long after an unanchored record, whichever comes first.
    pub anchor_every_seconds: u64,
    /// How long one attempt of an AWS call may take before the SDK gives it up and retries it
    /// (a long poll may take its wait on top): a call that never answers fails instead of
    /// holding its job, its resource's lock and its message for ever.
    pub call_timeout: std::time::Duration,
}

/// A configuration that cannot be used; the message names the file and key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("{key}: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Values given on the command line or in `RECTIFY_*` variables.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub prefix: Option<String>,
    pub role_name: Option<String>,
    pub operator_role_name: Option<String>,
    pub external_id: Option<String>,
    pub remediations: Option<PathBuf>,
    pub log_format: Option<String>,
    pub concurrency: Option<usize>,
    pub wait_seconds: Option<i32>,
    pub approval_ttl_seconds: Option<u64>,
    pub notify_topic_arn: Option<String>,
    pub liveness_file: Option<std::path::PathBuf>,
    pub call_timeout_seconds: Option<u64>,
}

impl Config {
    /// Reads the file (if any) and applies the overrides.
    pub fn load(file: Option<&Path>, o: Overrides) -> Result<Config, ConfigError> {
        let f = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse {
                    path: path.display().to_string(),
                    message: e.to_string().trim().replace('\n', " "),
                })?
            }
            None => FileConfig::default(),
        };
        let prefix = o.prefix.or(f.prefix).unwrap_or_else(|| "rectify".into());
        if prefix.is_empty()
            || prefix.len() > 40
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(ConfigError::Invalid {
                key: "prefix",
                message: format!("{prefix:?}: use 1–40 letters, digits, - or _"),
            });
        }
        let log_format = o.log_format.or(f.log_format);
        let log_json = match log_format.as_deref() {
            None => !std::io::IsTerminal::is_terminal(&std::io::stderr()),
            Some("json") => true,
            Some("text") => false,
            Some(other) => {
                return Err(ConfigError::Invalid {
                    key: "log_format",
                    message: format!("{other:?}: use text or json"),
                });
            }
        };
        let wait_seconds = o.wait_seconds.or(f.worker.wait_seconds).unwrap_or(20);
        if !(0..=20).contains(&wait_seconds) {
            return Err(ConfigError::Invalid {
                key: "worker.wait_seconds",
                message: format!("{wait_seconds}: SQS long polls wait 0 to 20 seconds"),
            });
        }
        let once_wait_seconds = f.worker.once_wait_seconds.unwrap_or(1);
        if !(0..=20).contains(&once_wait_seconds) {
            return Err(ConfigError::Invalid {
                key: "worker.once_wait_seconds",
                message: format!("{once_wait_seconds}: SQS long polls wait 0 to 20 seconds"),
            });
        }
        let concurrency = o.concurrency.or(f.worker.concurrency).unwrap_or(8);
        if !(1..=256).contains(&concurrency) {
            return Err(ConfigError::Invalid {
                key: "worker.concurrency",
                message: format!("{concurrency}: use 1 to 256"),
            });
        }
        let anchor_every_records = f.audit.anchor_every_records.unwrap_or(10);
        if !(1..=1000).contains(&anchor_every_records) {
            return Err(ConfigError::Invalid {
                key: "audit.anchor_every_records",
                message: format!("{anchor_every_records}: use 1 to 1000"),
            });
        }
        let anchor_every_seconds = f.audit.anchor_every_seconds.unwrap_or(5);
        if !(1..=300).contains(&anchor_every_seconds) {
            return Err(ConfigError::Invalid {
                key: "audit.anchor_every_seconds",
                message: format!(
                    "{anchor_every_seconds}: use 1 to 300 (what a killed worker can leave unanchored)"
                ),
            });
        }
        let settings_cache_seconds = f.worker.settings_cache_seconds.unwrap_or(5);
        if settings_cache_seconds > 60 {
            return Err(ConfigError::Invalid {
                key: "worker.settings_cache_seconds",
                message: format!(
                    "{settings_cache_seconds}: use 0 to 60 (how long a pause or a mode change may take to be seen)"
                ),
            });
        }
        let call_timeout_seconds = o
            .call_timeout_seconds
            .or(f.aws.call_timeout_seconds)
            .unwrap_or(30);
        if !(1..=MAX_CALL_TIMEOUT_SECONDS).contains(&call_timeout_seconds) {
            return Err(ConfigError::Invalid {
                key: "aws.call_timeout_seconds",
                message: format!(
                    "{call_timeout_seconds}: use 1 to {MAX_CALL_TIMEOUT_SECONDS} (how long one attempt of an AWS call may take)"
                ),
            });
        }
        Ok(Config {
            prefix: prefix.clone(),
            // The member stack names its roles from the same prefix as the controller's
            // queues and tables, so each prefix (staging, production) finds its own roles.
            role_name: o
                .role_name
                .or(f.role_name)
                .unwrap_or_else(|| format!("{prefix}-remediation")),
            operator_role_name: o
                .operator_role_name
                .or(f.operator_role_name)
                .unwrap_or_else(|| format!("{prefix}-operator")),
            external_id: o.external_id.or(f.external_id).filter(|s| !s.is_empty()),
            remediations: o.remediations.or(f.remediations),
            log_json,
            concurrency,
            wait_seconds,
            once_wait_seconds,
            settings_cache_seconds,
            shutdown_grace_seconds: f.worker.shutdown_grace_seconds.unwrap_or(25),
            liveness_file: o
                .liveness_file
                .or(f.worker.liveness_file)
                .unwrap_or_else(|| std::env::temp_dir().join(format!("rectify-{}.alive", &prefix))),
            approval_ttl_seconds: o
                .approval_ttl_seconds
                .or(f.approval_ttl_seconds)
                .unwrap_or(86_400),
            notify_topic_arn: o
                .notify_topic_arn
                .or(f.notify_topic_arn)
                .filter(|s| !s.is_empty()),
            notify_chat: f.notify_chat.unwrap_or(false),
            limits: f.script.unwrap_or_default(),
            anchor_every_records,
            anchor_every_seconds,
            call_timeout: std::time::Duration::from_secs(call_timeout_seconds),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("rectify-config-{}.toml", uuid::Uuid::new_v4()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn notify_chat_is_a_file_key_off_by_default() {
        assert!(
            !Config::load(None, Overrides::default())
                .unwrap()
                .notify_chat
        );
        let p = write("notify_chat = true\n");
        assert!(
            Config::load(Some(&p), Overrides::default())
                .unwrap()
                .notify_chat
        );
    }

    #[test]
    fn defaults() {
        let c = Config::load(None, Overrides::default()).unwrap();
        assert_eq!(c.prefix, "rectify");
        assert_eq!(c.role_name, "rectify-remediation");
        assert_eq!(c.operator_role_name, "rectify-operator");
        assert_eq!(c.wait_seconds, 20);
        assert_eq!(c.once_wait_seconds, 1);
        assert_eq!((c.anchor_every_records, c.anchor_every_seconds), (10, 5));
        assert_eq!(c.call_timeout, std::time::Duration::from_secs(30));
    }

    #[test]
    fn a_call_timeout_comes_from_the_file_or_the_flag_and_a_bad_one_names_its_key() {
        let p = write("[aws]\ncall_timeout_seconds = 7\n");
        let c = Config::load(Some(&p), Overrides::default()).unwrap();
        assert_eq!(c.call_timeout, std::time::Duration::from_secs(7));
        let c = Config::load(
            Some(&p),
            Overrides {
                call_timeout_seconds: Some(2),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.call_timeout, std::time::Duration::from_secs(2));
        std::fs::remove_file(p).unwrap();
        for bad in [0, MAX_CALL_TIMEOUT_SECONDS + 1] {
            let e = Config::load(
                None,
                Overrides {
                    call_timeout_seconds: Some(bad),
                    ..Default::default()
                },
            )
            .unwrap_err()
            .to_string();
            assert!(e.starts_with("aws.call_timeout_seconds: "), "{e}");
        }
        let p = write("[aws]\ncall_timeout = 7\n");
        let e = Config::load(Some(&p), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("call_timeout"), "{e}");
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn flags_override_the_file() {
        let p = write("prefix = \"from-file\"\nrole_name = \"r\"\n[worker]\nconcurrency = 3\n");
        let c = Config::load(
            Some(&p),
            Overrides {
                prefix: Some("flag".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.prefix, "flag");
        assert_eq!(c.role_name, "r");
        assert_eq!(c.concurrency, 3);
        std::fs::remove_file(p).unwrap();
    }

    #[test]
    fn the_member_role_names_follow_the_prefix() {
        let c = Config::load(
            None,
            Overrides {
                prefix: Some("staging".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.role_name, "staging-remediation");
        assert_eq!(c.operator_role_name, "staging-operator");
        let c = Config::load(
            None,
            Overrides {
                prefix: Some("staging".into()),
                role_name: Some("rectify-remediation".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(c.role_name, "rectify-remediation");
    }

    #[test]
    fn bad_keys_and_values_are_named() {
        let p = write("prefx = \"x\"\n");
        let err = Config::load(Some(&p), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("prefx"), "{err}");
        std::fs::remove_file(p).unwrap();
        let p = write("[worker]\nwait_seconds = 30\n");
        let err = Config::load(Some(&p), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("worker.wait_seconds"), "{err}");
        std::fs::remove_file(p).unwrap();
        let p = write("[audit]\nanchor_every_seconds = 0\n");
        let err = Config::load(Some(&p), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("audit.anchor_every_seconds"), "{err}");
        std::fs::remove_file(p).unwrap();
        // Settings reused for an hour would leave a pause unseen for an hour.
        let p = write("[worker]\nsettings_cache_seconds = 3600\n");
        let err = Config::load(Some(&p), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("worker.settings_cache_seconds"), "{err}");
        std::fs::remove_file(p).unwrap();
        let p = write("[script]\nmax_operatons = 1\n");
        let err = Config::load(Some(&p), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_operatons"), "{err}");
        std::fs::remove_file(p).unwrap();
    }
}
