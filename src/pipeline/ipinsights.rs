//! SageMaker's built-in IP Insights algorithm: its image per region, and the hyperparameters as
//! the training job takes them (strings), with `num_entity_vectors` sized from the data.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::ipinsights::hyperparameters::entity_vectors;
use crate::manifest::Hyperparameters;

/// Per-region registry accounts, vendored from the SageMaker Python SDK's image table.
const REGISTRIES: &str = include_str!("ipinsights-image-registries.json");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImageError {
    #[error("no IP Insights image is known for region {0}; set spec.training.image to the image URI")]
    UnknownRegion(String),
    #[error("the bundled image table is unreadable: {0}")]
    Table(String),
}

#[derive(Deserialize)]
struct Table {
    versions: BTreeMap<String, Version>,
}

#[derive(Deserialize)]
struct Version {
    registries: BTreeMap<String, String>,
    repository: String,
}

/// `<account>.dkr.ecr.<region>.amazonaws.com[.cn]/ipinsights:1`.
pub fn image_uri(region: &str) -> Result<String, ImageError> {
    let table: Table = serde_json::from_str(REGISTRIES).map_err(|e| ImageError::Table(e.to_string()))?;
    let (tag, version) = table.versions.iter().next_back().ok_or_else(|| ImageError::Table("no versions".into()))?;
    let account = version.registries.get(region).ok_or_else(|| ImageError::UnknownRegion(region.to_owned()))?;
    let suffix = if region.starts_with("cn-") { "amazonaws.com.cn" } else { "amazonaws.com" };
    Ok(format!("{account}.dkr.ecr.{region}.{suffix}/{}:{tag}", version.repository))
}

/// The quality metric IP Insights reports when a validation channel exists.
pub const AUC_METRIC: &str = "validation:discriminator_auc";

/// The hyperparameters as the training job takes them. `num_entity_vectors` comes from the
/// manifest when it fixes one, else from the data.
pub fn hyperparameters(hp: &Hyperparameters, distinct_entities: u64) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let n = hp.num_entity_vectors.unwrap_or_else(|| entity_vectors(distinct_entities));
    out.insert("num_entity_vectors".to_owned(), n.to_string());
    out.insert("vector_dim".to_owned(), hp.vector_dim.to_string());
    let optional: [(&str, Option<String>); 8] = [
        ("epochs", hp.epochs.map(|v| v.to_string())),
        ("learning_rate", hp.learning_rate.map(|v| v.to_string())),
        ("mini_batch_size", hp.mini_batch_size.map(|v| v.to_string())),
        ("num_ip_encoder_layers", hp.num_ip_encoder_layers.map(|v| v.to_string())),
        ("random_negative_sampling_rate", hp.random_negative_sampling_rate.map(|v| v.to_string())),
        ("shuffled_negative_sampling_rate", hp.shuffled_negative_sampling_rate.map(|v| v.to_string())),
        ("weight_decay", hp.weight_decay.map(|v| v.to_string())),
        ("batch_metrics_publish_interval", hp.batch_metrics_publish_interval.map(|v| v.to_string())),
    ];
    out.extend(optional.into_iter().filter_map(|(k, v)| Some((k.to_owned(), v?))));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_resolve_per_region_and_partition() {
        assert_eq!(image_uri("us-east-1"), Ok("382416733822.dkr.ecr.us-east-1.amazonaws.com/ipinsights:1".into()));
        assert_eq!(image_uri("cn-north-1"), Ok("390948362332.dkr.ecr.cn-north-1.amazonaws.com.cn/ipinsights:1".into()));
        assert_eq!(image_uri("xx-nowhere-1"), Err(ImageError::UnknownRegion("xx-nowhere-1".into())));
    }

    #[test]
    fn hyperparameters_are_strings_and_a_fixed_entity_count_wins() {
        let hp = Hyperparameters { epochs: Some(5), learning_rate: Some(0.01), ..Hyperparameters::default() };
        let out = hyperparameters(&hp, 500);
        let expected: BTreeMap<String, String> =
            [("num_entity_vectors", "1000"), ("vector_dim", "128"), ("epochs", "5"), ("learning_rate", "0.01")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        assert_eq!(out, expected);
        let fixed = Hyperparameters { num_entity_vectors: Some(20_000), ..Hyperparameters::default() };
        assert_eq!(hyperparameters(&fixed, 500)["num_entity_vectors"], "20000");
    }
}
