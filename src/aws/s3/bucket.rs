//! The stack's artifact bucket: SSE-S3 or SSE-KMS encryption, all public access blocked,
//! owner-tagged. It holds only what the stack generates, so destroy empties it unless retained.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    BucketLocationConstraint, CreateBucketConfiguration, Delete, ObjectIdentifier, PublicAccessBlockConfiguration,
    ServerSideEncryption, ServerSideEncryptionByDefault, ServerSideEncryptionConfiguration, ServerSideEncryptionRule,
    Tag, Tagging,
};

use crate::aws::error::{code, service_error};
use crate::engine::{Change, Node, Ownership};
use crate::manifest::DeletionPolicy;
use crate::resource::{Identity, Managed, Resource, ResourceError, ownership_from_tags, tag_change};
use crate::stack::Stack;

pub const ADDRESS: &str = "s3.bucket/artifacts";

/// Server-side encryption as configured on the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Encryption {
    S3Managed,
    Kms(String),
    /// Absent or something lakesight does not set.
    Other(String),
}

impl Encryption {
    fn render(&self) -> String {
        match self {
            Encryption::S3Managed => "SSE-S3".into(),
            Encryption::Kms(key) => format!("SSE-KMS {key}"),
            Encryption::Other(what) => what.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub tags: BTreeMap<String, String>,
    pub encryption: Encryption,
    pub public_access_blocked: bool,
}

pub struct ArtifactBucket {
    identity: Identity,
    client: Client,
    arn: String,
    region: String,
    tags: BTreeMap<String, String>,
    encryption: Encryption,
    retain: bool,
}

/// The nodes of this kind, for `aws::wiring`.
pub fn nodes(stack: &Stack, aws: &crate::aws::Aws) -> Vec<Arc<dyn Node>> {
    vec![Arc::new(Managed::new(ArtifactBucket::new(stack, aws.s3.clone())))]
}

impl ArtifactBucket {
    pub fn new(stack: &Stack, client: Client) -> Self {
        let spec = &stack.manifest.spec.artifact_bucket;
        ArtifactBucket {
            identity: Identity::new(stack, ADDRESS, stack.artifact_bucket()),
            client,
            arn: stack.artifact_bucket_arn(),
            region: stack.env.region.clone(),
            tags: stack.tags(),
            encryption: spec.kms_key_arn.clone().map_or(Encryption::S3Managed, Encryption::Kms),
            retain: spec.deletion_policy == DeletionPolicy::Retain,
        }
    }

    fn bucket(&self) -> &str {
        &self.identity.name
    }

    async fn read_tags(&self) -> Result<BTreeMap<String, String>, ResourceError> {
        match self.client.get_bucket_tagging().bucket(self.bucket()).send().await {
            Ok(out) => Ok(out.tag_set().iter().map(|t| (t.key().to_owned(), t.value().to_owned())).collect()),
            Err(e) if code(&e) == Some("NoSuchTagSet") => Ok(BTreeMap::new()),
            Err(e) => Err(service_error("GetBucketTagging", e)),
        }
    }

    async fn read_encryption(&self) -> Result<Encryption, ResourceError> {
        let out = match self.client.get_bucket_encryption().bucket(self.bucket()).send().await {
            Ok(out) => out,
            Err(e) if code(&e) == Some("ServerSideEncryptionConfigurationNotFoundError") => {
                return Ok(Encryption::Other("none".into()));
            }
            Err(e) => return Err(service_error("GetBucketEncryption", e)),
        };
        let default = out
            .server_side_encryption_configuration()
            .and_then(|c| c.rules().first())
            .and_then(|r| r.apply_server_side_encryption_by_default());
        Ok(match default {
            Some(d) if *d.sse_algorithm() == ServerSideEncryption::Aes256 => Encryption::S3Managed,
            Some(d) if *d.sse_algorithm() == ServerSideEncryption::AwsKms => {
                Encryption::Kms(d.kms_master_key_id().unwrap_or_default().to_owned())
            }
            Some(d) => Encryption::Other(d.sse_algorithm().as_str().to_owned()),
            None => Encryption::Other("none".into()),
        })
    }

    async fn read_public_access_block(&self) -> Result<bool, ResourceError> {
        match self.client.get_public_access_block().bucket(self.bucket()).send().await {
            Ok(out) => Ok(out.public_access_block_configuration().is_some_and(|c| {
                c.block_public_acls() == Some(true)
                    && c.ignore_public_acls() == Some(true)
                    && c.block_public_policy() == Some(true)
                    && c.restrict_public_buckets() == Some(true)
            })),
            Err(e) if code(&e) == Some("NoSuchPublicAccessBlockConfiguration") => Ok(false),
            Err(e) => Err(service_error("GetPublicAccessBlock", e)),
        }
    }

    async fn put_tags(&self, existing: &BTreeMap<String, String>) -> Result<(), ResourceError> {
        // PutBucketTagging replaces the whole set: keep tags others added.
        let mut merged = existing.clone();
        merged.extend(self.tags.clone());
        let mut tagging = Tagging::builder();
        for (k, v) in &merged {
            tagging = tagging.tag_set(Tag::builder().key(k).value(v).build().map_err(invalid)?);
        }
        self.client
            .put_bucket_tagging()
            .bucket(self.bucket())
            .tagging(tagging.build().map_err(invalid)?)
            .send()
            .await
            .map_err(|e| service_error("PutBucketTagging", e))?;
        Ok(())
    }

    async fn put_encryption(&self) -> Result<(), ResourceError> {
        let default = match &self.encryption {
            Encryption::Kms(key) => ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::AwsKms)
                .kms_master_key_id(key),
            _ => ServerSideEncryptionByDefault::builder().sse_algorithm(ServerSideEncryption::Aes256),
        };
        let rule = ServerSideEncryptionRule::builder()
            .apply_server_side_encryption_by_default(default.build().map_err(invalid)?)
            .bucket_key_enabled(matches!(self.encryption, Encryption::Kms(_)))
            .build();
        let config = ServerSideEncryptionConfiguration::builder().rules(rule).build().map_err(invalid)?;
        self.client
            .put_bucket_encryption()
            .bucket(self.bucket())
            .server_side_encryption_configuration(config)
            .send()
            .await
            .map_err(|e| service_error("PutBucketEncryption", e))?;
        Ok(())
    }

    async fn block_public_access(&self) -> Result<(), ResourceError> {
        let config = PublicAccessBlockConfiguration::builder()
            .block_public_acls(true)
            .ignore_public_acls(true)
            .block_public_policy(true)
            .restrict_public_buckets(true)
            .build();
        self.client
            .put_public_access_block()
            .bucket(self.bucket())
            .public_access_block_configuration(config)
            .send()
            .await
            .map_err(|e| service_error("PutPublicAccessBlock", e))?;
        Ok(())
    }

    /// Deletes every object version and delete marker, a page at a time.
    async fn empty(&self) -> Result<(), ResourceError> {
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = match self
                .client
                .list_object_versions()
                .bucket(self.bucket())
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
            {
                Ok(p) => p,
                Err(e) if code(&e) == Some("NoSuchBucket") => return Ok(()),
                Err(e) => return Err(service_error("ListObjectVersions", e)),
            };
            let versions = page.versions().iter().filter_map(|v| Some((v.key()?, v.version_id())));
            let markers = page.delete_markers().iter().filter_map(|m| Some((m.key()?, m.version_id())));
            let objects = versions
                .chain(markers)
                .map(|(key, version)| {
                    ObjectIdentifier::builder()
                        .key(key)
                        .set_version_id(version.map(str::to_owned))
                        .build()
                        .map_err(invalid)
                })
                .collect::<Result<Vec<_>, _>>()?;
            if !objects.is_empty() {
                let delete = Delete::builder().set_objects(Some(objects)).quiet(true).build().map_err(invalid)?;
                self.client
                    .delete_objects()
                    .bucket(self.bucket())
                    .delete(delete)
                    .send()
                    .await
                    .map_err(|e| service_error("DeleteObjects", e))?;
            }
            if page.is_truncated() != Some(true) {
                return Ok(());
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
        }
    }
}

fn invalid(e: impl std::fmt::Display) -> ResourceError {
    ResourceError::Invalid(e.to_string())
}

#[async_trait]
impl Resource for ArtifactBucket {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        match self.client.head_bucket().bucket(self.bucket()).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => return Ok(None),
            Err(e) => return Err(service_error("HeadBucket", e)),
        }
        Ok(Some(Observed {
            tags: self.read_tags().await?,
            encryption: self.read_encryption().await?,
            public_access_blocked: self.read_public_access_block().await?,
        }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let mut changes = Vec::new();
        changes.extend(tag_change(&self.tags, &observed.tags));
        if observed.encryption != self.encryption {
            changes.push(Change::in_place("encryption", observed.encryption.render(), self.encryption.render()));
        }
        if !observed.public_access_blocked {
            changes.push(Change::in_place("publicAccessBlock", "not fully blocked", "all blocked"));
        }
        changes
    }

    fn id(&self, _observed: &Observed) -> String {
        self.arn.clone()
    }

    async fn create(&self) -> Result<(), ResourceError> {
        // Tagged in the same call, so that no interruption can leave a bucket of ours without
        // its owner tag. us-east-1 rejects an explicit location constraint.
        let tags = self
            .tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build().map_err(|e| ResourceError::Invalid(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut configuration = CreateBucketConfiguration::builder().set_tags(Some(tags));
        if self.region != "us-east-1" {
            configuration = configuration.location_constraint(BucketLocationConstraint::from(self.region.as_str()));
        }
        let request =
            self.client.create_bucket().bucket(self.bucket()).create_bucket_configuration(configuration.build());
        match request.send().await {
            Ok(_) => {}
            // A create that raced an interrupted earlier apply of ours.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you()) => {}
            Err(e) => return Err(service_error("CreateBucket", e)),
        }
        self.block_public_access().await?;
        self.put_encryption().await
    }

    async fn update(&self, observed: &Observed, changes: &[Change]) -> Result<(), ResourceError> {
        for change in changes {
            match change.field.as_str() {
                "tags" => self.put_tags(&observed.tags).await?,
                "encryption" => self.put_encryption().await?,
                "publicAccessBlock" => self.block_public_access().await?,
                other => return Err(ResourceError::Invalid(format!("bucket field {other} cannot be updated"))),
            }
        }
        Ok(())
    }

    async fn delete(&self, _observed: &Observed) -> Result<(), ResourceError> {
        self.empty().await?;
        match self.client.delete_bucket().bucket(self.bucket()).send().await {
            Ok(_) => Ok(()),
            Err(e) if code(&e) == Some("NoSuchBucket") => Ok(()),
            Err(e) => Err(service_error("DeleteBucket", e)),
        }
    }

    fn retain_on_destroy(&self) -> bool {
        self.retain
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::operation::create_bucket::CreateBucketOutput;
    use aws_sdk_s3::operation::get_bucket_encryption::{GetBucketEncryptionError, GetBucketEncryptionOutput};
    use aws_sdk_s3::operation::get_bucket_tagging::GetBucketTaggingOutput;
    use aws_sdk_s3::operation::get_public_access_block::GetPublicAccessBlockOutput;
    use aws_sdk_s3::operation::head_bucket::{HeadBucketError, HeadBucketOutput};
    use aws_sdk_s3::operation::put_bucket_encryption::PutBucketEncryptionOutput;
    use aws_sdk_s3::operation::put_bucket_tagging::PutBucketTaggingOutput;
    use aws_sdk_s3::operation::put_public_access_block::PutPublicAccessBlockOutput;
    use aws_sdk_s3::types::error::NotFound;
    use aws_smithy_mocks::{Rule, mock};
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;
    use crate::aws::mocked_client;
    use crate::engine::{Action, Intent, Refusal, plan_action};
    use crate::resource::test_support::created_as_planned;
    use crate::stack::tests::stack;

    const BUCKET: &str = "lakesight-demo-111122223333-eu-west-1";

    fn node(rules: &[&Rule]) -> Managed<ArtifactBucket> {
        Managed::new(ArtifactBucket::new(&stack(""), mocked_client!(aws_sdk_s3, rules)))
    }

    fn exists() -> Rule {
        mock!(Client::head_bucket)
            .match_requests(|r| r.bucket() == Some(BUCKET))
            .then_output(|| HeadBucketOutput::builder().build())
    }

    fn tags(pairs: &'static [(&'static str, &'static str)]) -> Rule {
        mock!(Client::get_bucket_tagging).then_output(move || {
            let mut out = GetBucketTaggingOutput::builder();
            for (k, v) in pairs {
                out = out.tag_set(Tag::builder().key(*k).value(*v).build().expect("tag"));
            }
            out.build().expect("tagging output")
        })
    }

    fn encrypted() -> Rule {
        mock!(Client::get_bucket_encryption).then_output(|| {
            let default = ServerSideEncryptionByDefault::builder()
                .sse_algorithm(ServerSideEncryption::Aes256)
                .build()
                .expect("default");
            let rule = ServerSideEncryptionRule::builder().apply_server_side_encryption_by_default(default).build();
            GetBucketEncryptionOutput::builder()
                .server_side_encryption_configuration(
                    ServerSideEncryptionConfiguration::builder().rules(rule).build().expect("config"),
                )
                .build()
        })
    }

    fn blocked() -> Rule {
        mock!(Client::get_public_access_block).then_output(|| {
            let c = PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(true)
                .build();
            GetPublicAccessBlockOutput::builder().public_access_block_configuration(c).build()
        })
    }

    const OWNED: &[(&str, &str)] = &[("lakesight:stack", "demo"), ("team", "secops")];

    #[tokio::test]
    async fn absent_bucket_is_created_tagged_in_the_same_call_blocked_and_encrypted() {
        let head = mock!(Client::head_bucket).then_error(|| HeadBucketError::NotFound(NotFound::builder().build()));
        let create = mock!(Client::create_bucket)
            .match_requests(|r| {
                let config = r.create_bucket_configuration();
                r.bucket() == Some(BUCKET)
                    && config.and_then(|c| c.location_constraint()).map(|l| l.as_str()) == Some("eu-west-1")
                    && config
                        .is_some_and(|c| c.tags().iter().any(|t| t.key() == "lakesight:stack" && t.value() == "demo"))
            })
            .then_output(|| CreateBucketOutput::builder().build());
        let tag = mock!(Client::put_bucket_tagging).then_output(|| PutBucketTaggingOutput::builder().build());
        let block =
            mock!(Client::put_public_access_block).then_output(|| PutPublicAccessBlockOutput::builder().build());
        let encrypt = mock!(Client::put_bucket_encryption).then_output(|| PutBucketEncryptionOutput::builder().build());
        let n = node(&[&head, &create, &tag, &block, &encrypt]);

        created_as_planned(&n).await;
        for rule in [&create, &block, &encrypt] {
            assert_eq!(rule.num_calls(), 1);
        }
        assert_eq!(tag.num_calls(), 0, "no window between create and tagging");
    }

    #[tokio::test]
    async fn bucket_in_sync_is_a_noop() {
        let (head, tags, enc, pab) = (exists(), tags(OWNED), encrypted(), blocked());
        let observed = node(&[&head, &tags, &enc, &pab]).observe().await.expect("observe");
        assert_eq!(observed.ownership, Some(Ownership::Owned));
        assert_eq!(observed.changes, vec![]);
        assert_eq!(observed.id.as_deref(), Some("arn:aws:s3:::lakesight-demo-111122223333-eu-west-1"));
    }

    #[tokio::test]
    async fn drifted_encryption_is_updated_alone() {
        let (head, tags, pab) = (exists(), tags(OWNED), blocked());
        let enc = mock!(Client::get_bucket_encryption).then_error(|| {
            GetBucketEncryptionError::generic(
                ErrorMetadata::builder().code("ServerSideEncryptionConfigurationNotFoundError").build(),
            )
        });
        let encrypt = mock!(Client::put_bucket_encryption).then_output(|| PutBucketEncryptionOutput::builder().build());
        let retag = mock!(Client::put_bucket_tagging).then_output(|| PutBucketTaggingOutput::builder().build());
        let n = node(&[&head, &tags, &enc, &pab, &encrypt, &retag]);
        let observed = n.observe().await.expect("observe");
        assert_eq!(observed.changes, vec![Change::in_place("encryption", "none", "SSE-S3")]);
        n.apply(Action::Update).await.expect("update");
        assert_eq!(encrypt.num_calls(), 1);
        assert_eq!(retag.num_calls(), 0);
    }

    #[tokio::test]
    async fn untagged_bucket_is_refused() {
        let (head, tags, enc, pab) = (exists(), tags(&[("team", "secops")]), encrypted(), blocked());
        let observed = node(&[&head, &tags, &enc, &pab]).observe().await.expect("observe");
        assert_eq!(observed.ownership, Some(Ownership::Foreign(None)));
        assert_eq!(plan_action(Intent::Present, &observed, None), Err(Refusal::Untagged));
    }

    #[tokio::test]
    async fn throttling_and_conflicts_are_retried() {
        let head = mock!(Client::head_bucket)
            .sequence()
            .http_status(503, None)
            .http_response(|| {
                let mut response = Response::new(StatusCode::try_from(409).expect("status"), SdkBody::empty());
                response.headers_mut().insert("x-amzn-errortype", "ConflictException");
                response
            })
            .output(|| HeadBucketOutput::builder().build())
            .build();
        let (tags, enc, pab) = (tags(OWNED), encrypted(), blocked());
        let observed = node(&[&head, &tags, &enc, &pab]).observe().await.expect("retried to success");
        assert_eq!(head.num_calls(), 3);
        assert_eq!(observed.ownership, Some(Ownership::Owned));
    }

    #[tokio::test]
    async fn a_permanent_conflict_is_not_retried() {
        let head = mock!(Client::head_bucket)
            .sequence()
            .http_response(|| {
                let mut response = Response::new(StatusCode::try_from(409).expect("status"), SdkBody::empty());
                response.headers_mut().insert("x-amzn-errortype", "BucketAlreadyExists");
                response
            })
            .repeatedly()
            .build();
        let error = node(&[&head]).observe().await.expect_err("not retried");
        assert_eq!(head.num_calls(), 1, "{error}");
    }
}
