//! Amazon SageMaker: per model generation, the IP Insights training job, the model and the
//! endpoint configuration; and the endpoint, whose name is stable across generations.

pub mod calibration;
pub mod endpoint;
pub mod endpoint_config;
pub mod gate;
pub mod generation;
pub mod generations;
pub mod model;
pub mod training_job;

use std::collections::BTreeMap;

use aws_sdk_sagemaker::Client;
use aws_sdk_sagemaker::types::Tag;

use crate::aws::error::service_error;
use crate::manifest::{Endpoint, Features, Training};
use crate::pipeline::features::{inputs_hash, tables};
use crate::pipeline::ipinsights::image_uri;
use crate::resource::ResourceError;
use crate::stack::Stack;

/// The stack's model generations: `lakesight-<stack>-g<N>-<digest>` names the training job and
/// the model of generation N; the digest says which inputs trained it.
#[derive(Debug, Clone)]
pub struct Lineage {
    pub prefix: String,
    pub digest: String,
}

impl Lineage {
    pub fn of(stack: &Stack, features: &Features, training: &Training) -> Lineage {
        let image = training.image.clone().or_else(|| image_uri(&stack.env.region).ok()).unwrap_or_default();
        let features_digest = inputs_hash(&tables(stack, features), features);
        Lineage {
            prefix: format!("lakesight-{}-g", stack.name()),
            digest: job_digest(stack.name(), &features_digest, &image, training),
        }
    }

    /// For a stack that trains.
    pub fn of_stack(stack: &Stack) -> Option<Lineage> {
        let spec = &stack.manifest.spec;
        Some(Lineage::of(stack, spec.features.as_ref()?, spec.training.as_ref()?))
    }

    /// Every training job of the stack, by generation.
    pub async fn jobs(&self, client: &Client) -> Result<BTreeMap<u32, String>, ResourceError> {
        let mut jobs = BTreeMap::new();
        let mut pages = client.list_training_jobs().name_contains(&self.prefix).into_paginator().send();
        while let Some(page) = pages.next().await {
            for summary in page.map_err(|e| service_error("ListTrainingJobs", e))?.training_job_summaries() {
                let Some(name) = summary.training_job_name() else { continue };
                if let Some(generation) = self.generation_of(name) {
                    jobs.insert(generation, name.to_owned());
                }
            }
        }
        Ok(jobs)
    }

    /// The endpoint configuration of the job `job` for the manifest's endpoint settings.
    pub fn config_name(&self, job: &str, endpoint: &Endpoint) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{}x{}", endpoint.instance_type, endpoint.instance_count));
        format!("{job}-c{}", digest.iter().take(2).map(|b| format!("{b:02x}")).collect::<String>())
    }

    pub fn is_current(&self, name: &str) -> bool {
        name.ends_with(&format!("-{}", self.digest))
    }

    /// The generation in a name of this lineage: `<prefix><N>-<8 hex digits>`, optionally
    /// followed by `-c<4 hex digits>` for a configuration. Anything else is not ours, even when
    /// it starts with our prefix (stack `demo` must not claim `lakesight-demo-g7-g1-…` of stack
    /// `demo-g7`).
    pub fn generation_of(&self, name: &str) -> Option<u32> {
        let rest = name.strip_prefix(&self.prefix)?;
        let (generation, rest) = rest.split_once('-')?;
        let (digest, config) = match rest.split_once("-c") {
            Some((digest, config)) => (digest, Some(config)),
            None => (rest, None),
        };
        let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
        let valid = !generation.is_empty()
            && generation.bytes().all(|b| b.is_ascii_digit())
            && hex(digest, 8)
            && config.is_none_or(|c| hex(c, 4));
        if valid { generation.parse().ok() } else { None }
    }
}

/// The tags of a SageMaker resource.
pub async fn read_tags(client: &Client, arn: &str) -> Result<BTreeMap<String, String>, ResourceError> {
    let out = client.list_tags().resource_arn(arn).send().await.map_err(|e| service_error("ListTags", e))?;
    Ok(out.tags().iter().filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned()))).collect())
}

/// Adds `tags` to a SageMaker resource.
pub async fn add_tags(client: &Client, arn: &str, tags: &[(&str, &str)]) -> Result<(), ResourceError> {
    let tags = tags.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect();
    client.add_tags().resource_arn(arn).set_tags(Some(tags)).send().await.map_err(|e| service_error("AddTags", e))?;
    Ok(())
}

/// Text reduced to what a SageMaker tag value may hold: at most 256 characters of letters,
/// digits, spaces and `_.:/=+-@`.
pub fn tag_value(text: &str) -> String {
    text.chars().map(|c| if c.is_alphanumeric() || " _.:/=+-@".contains(c) { c } else { ' ' }).take(256).collect()
}

/// A digest of everything that decides what a job learns, and of the stack it belongs to.
fn job_digest(stack: &str, features: &str, image: &str, training: &Training) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    hasher.update(stack);
    hasher.update("\n");
    hasher.update(features);
    hasher.update(image);
    hasher.update(serde_json::to_string(&training.hyperparameters).unwrap_or_default());
    hasher.update(format!(
        "{}x{} {}GB {}s",
        training.instance_type,
        training.instance_count,
        training.volume_size_gb,
        training.max_runtime.as_secs()
    ));
    hasher.finalize().iter().take(4).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_read_from_names() {
        let lineage = Lineage { prefix: "lakesight-demo-g".into(), digest: "0a1b2c3d".into() };
        assert_eq!(lineage.generation_of("lakesight-demo-g12-0a1b2c3d"), Some(12));
        assert_eq!(lineage.generation_of("lakesight-demo-g3-0a1b2c3d-c1234"), Some(3));
        assert_eq!(lineage.generation_of("lakesight-demo-gx-0a1b2c3d"), None);
        assert_eq!(lineage.generation_of("other-g1-0a1b2c3d"), None);
        // Stack `demo-g7`'s generations are not stack `demo`'s.
        assert_eq!(lineage.generation_of("lakesight-demo-g7-g1-0a1b2c3d"), None);
        assert_eq!(lineage.generation_of("lakesight-demo-g7-g1-0a1b2c3d-c1234"), None);
        assert_eq!(lineage.generation_of("lakesight-demo-g1-0a1b2c3d-cxyz"), None);
        assert!(lineage.is_current("lakesight-demo-g12-0a1b2c3d"));
        assert!(!lineage.is_current("lakesight-demo-g12-ffffffff"));
    }

    #[test]
    fn tag_values_keep_only_what_sagemaker_allows() {
        assert_eq!(tag_value("a\"b{c}\n"), "a b c  ");
        assert_eq!(tag_value(&"x".repeat(300)).len(), 256);
    }

    #[test]
    fn the_digest_names_the_stack() {
        let training: Training = serde_json::from_str("{}").expect("defaults");
        assert_ne!(job_digest("demo", "f", "i", &training), job_digest("demo-g7", "f", "i", &training));
    }
}
