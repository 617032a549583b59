//! SageMaker instance types as the service model enumerates them, and which of them IP Insights
//! can use.
//!
//! `sagemaker-instance-types.json` holds the `TrainingInstanceType` enum (what
//! `CreateTrainingJob`'s `ResourceConfig.InstanceType` takes) and the
//! `ProductionVariantInstanceType` enum (what `CreateEndpointConfig`'s production variants take),
//! vendored from botocore's SageMaker model. Regenerate it from a botocore checkout with:
//!
//! ```text
//! python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["shapes"]; print(json.dumps({"note": sys.argv[2], "training": s["TrainingInstanceType"]["enum"], "endpoint": s["ProductionVariantInstanceType"]["enum"]}, indent=1))' botocore/data/sagemaker/2017-07-24/service-2.json "<source and commit>" > src/manifest/sagemaker-instance-types.json
//! ```
//!
//! The SageMaker developer guide's IP Insights page says the algorithm "can run on both GPU and
//! CPU instances". AWS Inferentia (`inf1`, `inf2`), Trainium (`trn1`, `trn1n`, `trn2`) and
//! Gaudi (`dl1`) instances are neither, so they are refused for training and for the endpoint.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use serde::Deserialize;

const TABLE: &str = include_str!("sagemaker-instance-types.json");

#[derive(Deserialize)]
struct Table {
    training: Vec<String>,
    endpoint: Vec<String>,
}

static TYPES: LazyLock<Table> = LazyLock::new(|| {
    // The table is a literal of this crate; a unit test parses it.
    serde_json::from_str(TABLE).unwrap_or_else(|e| panic!("sagemaker-instance-types.json is unreadable: {e}"))
});

/// Instance families with accelerators that are neither CPU nor GPU.
const NOT_CPU_OR_GPU: &[&str] = &["inf1", "inf2", "trn1", "trn1n", "trn2", "dl1"];

/// Where an instance type is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Training,
    Endpoint,
}

impl Use {
    fn types(self) -> &'static [String] {
        match self {
            Use::Training => &TYPES.training,
            Use::Endpoint => &TYPES.endpoint,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Use::Training => "a SageMaker training instance type (TrainingInstanceType)",
            Use::Endpoint => "a SageMaker endpoint instance type (ProductionVariantInstanceType)",
        }
    }
}

/// Why SageMaker or IP Insights would refuse `value` for `usage`, if they would.
pub fn problem(usage: Use, value: &str) -> Option<String> {
    let types = usage.types();
    let family = family(value);
    if !types.iter().any(|t| t == value) {
        let sizes: Vec<&str> =
            types.iter().filter(|t| family.is_some() && self::family(t) == family).filter_map(|t| size(t)).collect();
        let allowed = if sizes.is_empty() {
            let families: BTreeSet<&str> = types.iter().filter_map(|t| family_prefix(t)).collect();
            format!("families: {}", families.into_iter().collect::<Vec<_>>().join(", "))
        } else {
            format!("ml.{} sizes: {}", family.unwrap_or_default(), sizes.join(", "))
        };
        return Some(format!("{value:?} is not {}; allowed {allowed}", usage.describe()));
    }
    if family.is_some_and(|f| NOT_CPU_OR_GPU.contains(&f)) {
        return Some(format!(
            "{value:?} has neither CPU nor GPU compute for the model; IP Insights runs on CPU and GPU instances only, such as ml.m5.large or ml.p3.2xlarge"
        ));
    }
    None
}

/// `m5` of `ml.m5.large`.
fn family(instance_type: &str) -> Option<&str> {
    let mut parts = instance_type.split('.');
    (parts.next() == Some("ml")).then(|| parts.next()).flatten()
}

/// `ml.m5` of `ml.m5.large`.
fn family_prefix(instance_type: &str) -> Option<&str> {
    instance_type.rfind('.').map(|i| &instance_type[..i])
}

/// `large` of `ml.m5.large`.
fn size(instance_type: &str) -> Option<&str> {
    instance_type.rsplit('.').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_enums_load() {
        assert!(TYPES.training.len() > 50 && TYPES.endpoint.len() > 50);
        assert!(TYPES.training.iter().chain(&TYPES.endpoint).all(|t| t.starts_with("ml.")));
    }

    #[test]
    fn known_cpu_and_gpu_types_are_accepted() {
        for t in ["ml.m5.large", "ml.m5.xlarge", "ml.c5.2xlarge", "ml.p3.2xlarge", "ml.g5.xlarge"] {
            assert_eq!(problem(Use::Training, t), None, "{t}");
            assert_eq!(problem(Use::Endpoint, t), None, "{t}");
        }
    }

    #[test]
    fn each_use_has_its_own_enum() {
        // ml.t2.medium can host an endpoint but not run a training job.
        assert_eq!(problem(Use::Endpoint, "ml.t2.medium"), None);
        let message = problem(Use::Training, "ml.t2.medium").expect("not a training type");
        assert!(message.contains("TrainingInstanceType"), "{message}");
        assert!(message.contains("families: "), "{message}");
        assert!(message.contains("ml.m5"), "{message}");
    }

    #[test]
    fn a_wrong_size_lists_the_family_sizes() {
        let message = problem(Use::Endpoint, "ml.m5.huge").expect("unknown size");
        assert!(message.contains("ml.m5 sizes: large, xlarge, 2xlarge"), "{message}");
        assert!(problem(Use::Endpoint, "m5.large").expect("no ml. prefix").contains("families: "));
    }

    #[test]
    fn accelerators_ip_insights_cannot_use_are_refused() {
        let message = problem(Use::Endpoint, "ml.inf1.xlarge").expect("Inferentia");
        assert!(message.contains("CPU and GPU instances only"), "{message}");
        assert!(problem(Use::Training, "ml.trn1.2xlarge").is_some());
        assert!(problem(Use::Endpoint, "ml.dl1.24xlarge").is_some());
    }
}
