//! `AWS::ECR::Repository`: a private image repository and whether it scans images on push.

use aws_sdk_ecr::types::Repository;
use serde_json::{Value, json};

use super::{BoxFuture, Info, ResourceType, Scope, gone, not_found, tag_map};
use crate::cloud::{Clients, CloudError, classify};

/// Private ECR repositories, per region.
pub struct EcrRepository;

/// Its names, scope and read permissions.
const INFO: Info = Info {
    config_type: "AWS::ECR::Repository",
    asff_types: &["AwsEcrRepository"],
    ocsf_type: "AwsEcrRepository",
    scope: Scope::Regional,
    noun: "ecr repository",
    read_permissions: &["ecr:DescribeRepositories", "ecr:ListTagsForResource"],
};

impl ResourceType for EcrRepository {
    fn info(&self) -> &'static Info {
        &INFO
    }

    /// A repository name, as AWS Config names a repository (Security Hub's ARN gives it too).
    fn valid_id(&self, id: &str) -> bool {
        is_repository_name(id)
    }

    fn observe<'a>(
        &'a self,
        clients: &'a Clients,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Value, CloudError>> {
        Box::pin(observe_repository(clients, id))
    }

    fn enumerate<'a>(
        &'a self,
        clients: &'a Clients,
    ) -> BoxFuture<'a, Result<Vec<String>, CloudError>> {
        Box::pin(async move {
            let repositories = clients
                .get(aws_sdk_ecr::Client::new)
                .describe_repositories()
                .registry_id(clients.account())
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| classify("ecr:DescribeRepositories", e))?;
            Ok(repositories
                .into_iter()
                .filter_map(|r| r.repository_name)
                .collect())
        })
    }
}

/// Whether `id` is an ECR repository name: 2 to 256 characters, path components separated by
/// `/`, each lower-case letters and digits joined by single `.`, `_` or `-` (the API's pattern
/// `(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*`).
fn is_repository_name(id: &str) -> bool {
    let component = |c: &str| {
        let b = c.as_bytes();
        !b.is_empty()
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.last()
                .is_some_and(|l| l.is_ascii_lowercase() || l.is_ascii_digit())
            && b.iter().all(|x| {
                x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-')
            })
            && b.windows(2).all(|w| {
                !(matches!(w[0], b'.' | b'_' | b'-') && matches!(w[1], b'.' | b'_' | b'-'))
            })
    };
    (2..=256).contains(&id.len()) && id.split('/').all(component)
}

async fn observe_repository(c: &Clients, name: &str) -> Result<Value, CloudError> {
    let gone_codes = ["RepositoryNotFoundException"];
    let ecr = c.get(aws_sdk_ecr::Client::new);
    // The account's own registry: a repository of another account is never read.
    let out = ecr
        .describe_repositories()
        .registry_id(c.account())
        .repository_names(name)
        .send()
        .await
        .map_err(|e| not_found(classify("ecr:DescribeRepositories", e), &gone_codes))?;
    let repository = out
        .repositories()
        .iter()
        .find(|r| r.repository_name() == Some(name))
        .ok_or_else(gone)?;
    let tags = match repository.repository_arn() {
        Some(arn) => ecr
            .list_tags_for_resource()
            .resource_arn(arn)
            .send()
            .await
            .map_err(|e| not_found(classify("ecr:ListTagsForResource", e), &gone_codes))?
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect(),
        None => Vec::new(),
    };
    Ok(shape(repository, &tags))
}

/// The JSON scripts read. The repository policy is not read: no remediation of this type
/// changes it.
fn shape(r: &Repository, tags: &[(String, String)]) -> Value {
    json!({
        "repository_name": r.repository_name(),
        "arn": r.repository_arn(),
        "registry_id": r.registry_id(),
        "scan_on_push": r.image_scanning_configuration().is_some_and(aws_sdk_ecr::types::ImageScanningConfiguration::scan_on_push),
        "image_tag_mutability": r.image_tag_mutability().map(aws_sdk_ecr::types::ImageTagMutability::as_str),
        "tags": tag_map(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        let t = EcrRepository;
        for ok in ["app", "team/app", "team/app-1.2_x", "a/b/c", "0a"] {
            assert!(t.valid_id(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "App",
            "team//app",
            "/app",
            "app/",
            "-app",
            "app-",
            "ap--p",
            "ap._p",
            "a b",
            "../x",
            "arn:aws:ecr:us-east-1:111122223333:repository/app",
            &"a".repeat(257),
        ] {
            assert!(!t.valid_id(bad), "{bad}");
        }
    }
}
