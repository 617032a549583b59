//! Semantic checks that serde cannot express: name patterns, ranges, cross-field rules.
//! Each problem names its field path and what is allowed; `locate` turns the path into line:column.

use std::sync::LazyLock;

use regex::Regex;

use super::instance_types::Use;
use super::locate::Segment;
use super::schema::{Deployment, Hyperparameters, Manifest, ThresholdPolicy, TrafficRouting};
use super::{bucket_name, instance_types, kms, tags};

/// One semantic problem in a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub path: Vec<Segment>,
    pub message: String,
}

static STACK_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z][a-z0-9-]{1,22}[a-z0-9]$"));
static REGION: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$"));
static ACCOUNT: LazyLock<Regex> = LazyLock::new(|| re(r"^[0-9]{12}$"));
static ARN: LazyLock<Regex> =
    LazyLock::new(|| re(r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:[a-z0-9-]+:[a-z0-9-]*:([0-9]{12})?:.+$"));
static ROLE_ARN: LazyLock<Regex> =
    LazyLock::new(|| re(r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$"));
static PRINCIPAL_ARN: LazyLock<Regex> =
    LazyLock::new(|| re(r"^arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::[0-9]{12}:(role|user)/[A-Za-z0-9_+=,.@/-]+$"));
static SERVICE_PRINCIPAL: LazyLock<Regex> = LazyLock::new(|| re(r"^[a-z0-9.-]+\.amazonaws\.com(\.cn)?$"));
static EXTERNAL_ID: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z0-9_+=,.@:/-]+$"));
static SUBSCRIBER_NAME: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Za-z0-9_ .-]{1,64}$"));
static KMS_KEY: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/.+|alias/.+|[0-9a-f-]{36}|S3_MANAGED_KEY)$")
});

pub(super) fn re(pattern: &str) -> Regex {
    // The patterns are literals above; a typo in one is a programming error caught by the unit tests.
    Regex::new(pattern).unwrap_or_else(|e| panic!("invalid built-in pattern {pattern}: {e}"))
}

/// Source versions whose OCSF tables lakesight knows how to query.
pub const SOURCE_VERSIONS: &[&str] = &["1.0", "2.0"];

/// S3's `TransitionStorageClass` enum (service model), which Security Lake's lifecycle
/// transitions become.
const TRANSITION_STORAGE_CLASSES: &[&str] =
    &["GLACIER", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "DEEP_ARCHIVE", "GLACIER_IR"];

/// Tag keys reserved for lakesight itself.
pub const RESERVED_TAG_PREFIX: &str = "lakesight:";

pub fn validate(manifest: &Manifest) -> Vec<Issue> {
    let mut c = Checker::default();
    let meta = &manifest.metadata;
    c.pattern(
        &["metadata", "name"],
        &meta.name,
        &STACK_NAME,
        "3 to 24 characters: lowercase letters, digits and '-', starting with a letter and not ending with '-'",
    );
    c.tags(meta);

    let spec = &manifest.spec;
    if let Some(region) = &spec.region {
        c.region(&["spec", "region"], region);
    }
    let bucket = &spec.artifact_bucket;
    if let Some(problem) = bucket.name.as_deref().and_then(bucket_name::problem) {
        c.issue(&["spec", "artifactBucket", "name"], problem);
    }
    if let Some(key) = &bucket.kms_key_arn {
        let at = ["spec", "artifactBucket", "kmsKeyArn"];
        if kms::arn_region(key).is_none() {
            c.issue(&at, format!("{key:?} is not a KMS key ARN; expected arn:aws:kms:<region>:<account>:key/<id>"));
        } else if let Some(problem) =
            spec.region.as_deref().and_then(|r| kms::region_problem(key, &[r], "the bucket is"))
        {
            c.issue(&at, problem);
        }
    }
    let iam = &spec.iam;
    for (field, value) in [
        ("sagemakerExecutionRoleArn", &iam.sagemaker_execution_role_arn),
        ("scorerRoleArn", &iam.scorer_role_arn),
        ("metaStoreManagerRoleArn", &iam.meta_store_manager_role_arn),
    ] {
        if let Some(arn) = value {
            c.pattern(
                &["spec", "iam", field],
                arn,
                &ROLE_ARN,
                "an IAM role ARN: arn:aws:iam::<12-digit account>:role/<name>",
            );
        }
    }
    if let Some(arn) = &iam.permissions_boundary_arn {
        c.pattern(&["spec", "iam", "permissionsBoundaryArn"], arn, &ARN, "an IAM policy ARN");
    }

    if let Some(lake) = &spec.security_lake {
        c.regions(&["spec", "securityLake", "regions"], &lake.regions);
        c.accounts(&["spec", "securityLake", "accounts"], &lake.accounts);
        if let Some(key) = &lake.kms_key_id {
            let at = ["spec", "securityLake", "kmsKeyId"];
            c.pattern(&at, key, &KMS_KEY, "a KMS key id, alias or ARN, or S3_MANAGED_KEY");
            let regions: Vec<&str> = match (&lake.regions[..], &spec.region) {
                ([], Some(home)) => vec![home.as_str()],
                (listed, _) => listed.iter().map(String::as_str).collect(),
            };
            if let Some(problem) = kms::region_problem(key, &regions, "the lake is enabled") {
                c.issue(&at, problem);
            }
        }
        if let Some(retention) = &lake.retention {
            if retention.expiration_days == 0 {
                c.issue(&["spec", "securityLake", "retention", "expirationDays"], "must be at least 1 day");
            }
            for (i, t) in retention.transitions.iter().enumerate() {
                let at = path(&["spec", "securityLake", "retention", "transitions"]).idx(i);
                if t.days == 0 {
                    c.issue_at(at.clone().key("days"), "must be at least 1 day, as Security Lake requires");
                } else if t.days >= retention.expiration_days {
                    c.issue_at(
                        at.clone().key("days"),
                        format!("{} days is not before the expiration at {} days", t.days, retention.expiration_days),
                    );
                }
                if !TRANSITION_STORAGE_CLASSES.contains(&t.storage_class.as_str()) {
                    c.issue_at(
                        at.key("storageClass"),
                        format!(
                            "{:?} is not an S3 transition storage class; allowed: {}",
                            t.storage_class,
                            TRANSITION_STORAGE_CLASSES.join(", ")
                        ),
                    );
                }
            }
        }
        if let Some(arn) = lake.query_access.as_ref().and_then(|q| q.principal_arn.as_ref()) {
            c.pattern(
                &["spec", "securityLake", "queryAccess", "principalArn"],
                arn,
                &PRINCIPAL_ARN,
                "an IAM role or user ARN",
            );
        }
        if let Some(replication) = &lake.replication {
            c.regions(&["spec", "securityLake", "replication", "regions"], &replication.regions);
            if let Some(arn) = &replication.role_arn {
                c.pattern(&["spec", "securityLake", "replication", "roleArn"], arn, &ROLE_ARN, "an IAM role ARN");
            }
        }
        if lake.sources.is_empty() {
            c.issue(&["spec", "securityLake", "sources"], "needs at least one source");
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, source) in lake.sources.iter().enumerate() {
            let at = path(&["spec", "securityLake", "sources"]).idx(i);
            if !seen.insert(source.name) {
                c.issue_at(at.clone().key("name"), format!("{:?} is listed twice; list each source once", source.name));
            }
            if !SOURCE_VERSIONS.contains(&source.version.as_str()) {
                c.issue_at(
                    at.clone().key("version"),
                    format!("unknown source version {:?}; allowed: {}", source.version, SOURCE_VERSIONS.join(", ")),
                );
            }
            c.regions_at(at.clone().key("regions"), &source.regions);
            c.accounts_at(at.key("accounts"), &source.accounts);
        }
    }

    let t = &spec.timeouts;
    c.range(&["spec", "timeouts", "pollInterval"], t.poll_interval.as_secs_f64(), 0.05, 300.0);
    if let Some(sub) = &spec.subscriber {
        if spec.security_lake.is_none() {
            c.issue(
                &["spec", "subscriber"],
                "needs spec.securityLake (set securityLake.manage: false to use a lake managed elsewhere)",
            );
        }
        if let Some(name) = &sub.name {
            c.pattern(
                &["spec", "subscriber", "name"],
                name,
                &SUBSCRIBER_NAME,
                "1 to 64 letters, digits, spaces, '_', '.' and '-'",
            );
        }
        if !ACCOUNT.is_match(&sub.principal) && !SERVICE_PRINCIPAL.is_match(&sub.principal) {
            c.issue(
                &["spec", "subscriber", "principal"],
                format!(
                    "{:?} is neither a 12-digit account id nor a service principal such as lambda.amazonaws.com",
                    sub.principal
                ),
            );
        }
        let length = sub.external_id.chars().count();
        if !(2..=1224).contains(&length) || !EXTERNAL_ID.is_match(&sub.external_id) {
            // Never echo the external id itself: it is a secret.
            c.issue(
                &["spec", "subscriber", "externalId"],
                format!(
                    "must be 2 to 1224 characters of letters, digits and + = , . @ : / - _ (got {length} characters)"
                ),
            );
        }
        if sub.access.is_empty() {
            c.issue(&["spec", "subscriber", "access"], "needs at least one of S3, LAKEFORMATION");
        }
        if let Some(lake) = &spec.security_lake {
            for (i, name) in sub.sources.iter().enumerate() {
                if !lake.sources.iter().any(|s| s.name == *name) {
                    c.issue_at(
                        path(&["spec", "subscriber", "sources"]).idx(i),
                        format!("{name:?} is not one of spec.securityLake.sources"),
                    );
                }
            }
        }
    }

    if let Some(features) = &spec.features {
        if features.window_days == 0 {
            c.issue(&["spec", "features", "windowDays"], "must be at least 1");
        }
        if features.validation_days == 0 || features.validation_days >= features.window_days {
            c.issue(
                &["spec", "features", "validationDays"],
                format!(
                    "must be at least 1 and less than windowDays ({}), so that both train and validation get data",
                    features.window_days
                ),
            );
        }
        if features.sources.is_empty() {
            c.issue(&["spec", "features", "sources"], "needs at least one source");
        }
        c.accounts(&["spec", "features", "accounts"], &features.accounts);
        c.regions(&["spec", "features", "regions"], &features.regions);
    }

    if let Some(training) = &spec.training {
        c.instance_type(&["spec", "training", "instanceType"], Use::Training, &training.instance_type);
        c.range(&["spec", "training", "instanceCount"], training.instance_count.into(), 1.0, 100.0);
        c.range(&["spec", "training", "volumeSizeGb"], training.volume_size_gb.into(), 1.0, 16384.0);
        let secs = training.max_runtime.as_secs() as f64;
        c.range(&["spec", "training", "maxRuntime"], secs, 60.0, 28.0 * 86400.0);
        if let Some(auc) = training.min_auc {
            c.range(&["spec", "training", "minAuc"], auc, 0.0, 1.0);
        }
        c.hyperparameters(&training.hyperparameters);
        if let (None, Some(region)) = (&training.image, &spec.region)
            && let Err(e) = crate::pipeline::ipinsights::image_uri(region)
        {
            c.issue(&["spec", "training"], e.to_string());
        }
    }

    if let Some(endpoint) = &spec.endpoint {
        c.instance_type(&["spec", "endpoint", "instanceType"], Use::Endpoint, &endpoint.instance_type);
        c.range(&["spec", "endpoint", "instanceCount"], endpoint.instance_count.into(), 1.0, 100.0);
        if let Some(deployment) = &endpoint.deployment {
            c.deployment(deployment);
        }
    }

    if let Some(scorer) = &spec.scorer {
        c.range(&["spec", "scorer", "memoryMb"], scorer.memory_mb.into(), 128.0, 10240.0);
        c.range(&["spec", "scorer", "timeout"], scorer.timeout.as_secs() as f64, 1.0, 900.0);
        c.range(&["spec", "scorer", "batchSize"], scorer.batch_size.into(), 1.0, 10000.0);
        c.range(&["spec", "scorer", "batchWindow"], scorer.batch_window.as_secs_f64(), 0.0, 300.0);
        if scorer.batch_size > 10 && scorer.batch_window < std::time::Duration::from_secs(1) {
            c.issue(&["spec", "scorer", "batchWindow"], "at least 1s when batchSize is above 10, as Lambda requires");
        }
        if scorer.package.as_deref().is_none_or(|p| p.trim().is_empty()) {
            c.issue(&["spec", "scorer", "package"], "required: the ipcheck zip that `scorer/package` builds");
        }
        if spec.endpoint.is_none() {
            c.issue(&["spec", "scorer"], "needs spec.endpoint: the scorer scores on the stack's endpoint");
        }
        if spec.subscriber.is_none() {
            c.issue(&["spec", "scorer"], "needs spec.subscriber: the scorer reads the subscriber's notifications");
        }
        c.range(&["spec", "scorer", "maxPayloadBytes"], scorer.max_payload_bytes.into(), 1024.0, 6_000_000.0);
        if let Some(mc) = scorer.max_concurrency {
            c.range(&["spec", "scorer", "maxConcurrency"], mc.into(), 2.0, 1000.0);
        }
        let threshold = &scorer.threshold;
        let rate = threshold.target_false_positive_rate;
        if !(rate > 0.0 && rate < 1.0) {
            c.issue(
                &["spec", "scorer", "threshold", "targetFalsePositiveRate"],
                format!("{rate} is outside the open interval (0, 1)"),
            );
        }
        match (threshold.policy, threshold.value) {
            (ThresholdPolicy::Fixed, None) => {
                c.issue(&["spec", "scorer", "threshold", "value"], "policy fixed needs a value")
            }
            (ThresholdPolicy::Calibrated, Some(_)) => c.issue(
                &["spec", "scorer", "threshold", "value"],
                "value is only used with policy: fixed; remove it or set policy: fixed",
            ),
            _ => {}
        }
    }

    if let Some(retrain) = &spec.retrain {
        if let Some(auc) = retrain.min_auc {
            c.range(&["spec", "retrain", "minAuc"], auc, 0.0, 1.0);
        }
        if let Some(drop) = retrain.max_auc_drop {
            c.range(&["spec", "retrain", "maxAucDrop"], drop, 0.0, 1.0);
        }
        c.range(&["spec", "retrain", "keepGenerations"], retrain.keep_generations.into(), 1.0, 20.0);
    }
    c.issues
}

/// A path under construction.
#[derive(Clone)]
struct PathBuf(Vec<Segment>);

fn path(keys: &[&str]) -> PathBuf {
    PathBuf(keys.iter().map(|k| Segment::Key((*k).to_owned())).collect())
}

impl PathBuf {
    fn idx(mut self, i: usize) -> Self {
        self.0.push(Segment::Index(i));
        self
    }
    fn key(mut self, k: &str) -> Self {
        self.0.push(Segment::Key(k.to_owned()));
        self
    }
}

#[derive(Default)]
struct Checker {
    issues: Vec<Issue>,
}

impl Checker {
    fn issue(&mut self, keys: &[&str], message: impl Into<String>) {
        self.issue_at(path(keys), message);
    }

    fn issue_at(&mut self, at: PathBuf, message: impl Into<String>) {
        self.issues.push(Issue { path: at.0, message: message.into() });
    }

    fn pattern(&mut self, keys: &[&str], value: &str, pattern: &Regex, allowed: &str) {
        if !pattern.is_match(value) {
            self.issue(keys, format!("{value:?} is not valid; expected {allowed}"));
        }
    }

    fn range(&mut self, keys: &[&str], value: f64, min: f64, max: f64) {
        if !(min..=max).contains(&value) {
            self.issue(keys, format!("{value} is out of range; allowed: {min} to {max}"));
        }
    }

    fn instance_type(&mut self, keys: &[&str], usage: Use, value: &str) {
        if let Some(problem) = instance_types::problem(usage, value) {
            self.issue(keys, problem);
        }
    }

    /// The blue/green policy against SageMaker's model: `TrafficRoutingConfig.WaitIntervalInSeconds`
    /// and `BlueGreenUpdatePolicy.TerminationWaitInSeconds` are 0 to 3600; a canary step is at
    /// most 50% and a linear step 10% to 50% of the fleet (the `CanarySize` and `LinearStepSize`
    /// documentation); `AutoRollbackConfig.Alarms` holds at most 10 alarms, each named by 1 to
    /// 255 characters that are not all blank (`AlarmList`, `AlarmName`).
    fn deployment(&mut self, d: &Deployment) {
        const AT: [&str; 3] = ["spec", "endpoint", "deployment"];
        let at = |field: &'static str| [AT[0], AT[1], AT[2], field];
        self.range(&at("stepWait"), d.step_wait.as_secs_f64(), 0.0, 3600.0);
        if let Some(wait) = d.termination_wait {
            self.range(&at("terminationWait"), wait.as_secs_f64(), 0.0, 3600.0);
        }
        if let Some(step) = d.step_percent {
            let (min, max, why) = match d.traffic_routing {
                TrafficRouting::Canary => (1, 50, " for CANARY: the canary is at most half the fleet"),
                TrafficRouting::Linear => (10, 50, " for LINEAR: each step is 10% to 50% of the fleet"),
                TrafficRouting::AllAtOnce => (1, 100, ""),
            };
            if !(min..=max).contains(&step) {
                self.issue(&at("stepPercent"), format!("{step} is out of range; allowed: {min} to {max}{why}"));
            }
        }
        if d.rollback_alarms.len() > 10 {
            self.issue(
                &at("rollbackAlarms"),
                format!("{} alarms given; SageMaker takes at most 10", d.rollback_alarms.len()),
            );
        }
        for (i, alarm) in d.rollback_alarms.iter().enumerate() {
            let length = alarm.chars().count();
            if alarm.trim().is_empty() || length > 255 {
                self.issue_at(
                    path(&at("rollbackAlarms")).idx(i),
                    format!("alarm names are 1 to 255 characters, not all blank (got {length})"),
                );
            }
        }
    }

    fn region(&mut self, keys: &[&str], value: &str) {
        self.region_at(path(keys), value);
    }

    fn region_at(&mut self, at: PathBuf, value: &str) {
        if !REGION.is_match(value) {
            self.issue_at(at, format!("{value:?} is not an AWS region; expected a name such as us-east-1"));
        }
    }

    fn regions(&mut self, keys: &[&str], values: &[String]) {
        self.regions_at(path(keys), values);
    }

    fn regions_at(&mut self, at: PathBuf, values: &[String]) {
        for (i, r) in values.iter().enumerate() {
            self.region_at(at.clone().idx(i), r);
        }
    }

    fn accounts(&mut self, keys: &[&str], values: &[String]) {
        self.accounts_at(path(keys), values);
    }

    fn accounts_at(&mut self, at: PathBuf, values: &[String]) {
        for (i, a) in values.iter().enumerate() {
            if !ACCOUNT.is_match(a) {
                self.issue_at(at.clone().idx(i), format!("{a:?} is not an AWS account id; expected 12 digits"));
            }
        }
    }

    fn tags(&mut self, meta: &super::schema::Metadata) {
        if meta.tags.len() > 40 {
            self.issue(
                &["metadata", "tags"],
                format!("{} tags given; at most 40 are allowed, leaving room for lakesight's own", meta.tags.len()),
            );
        }
        for (key, value) in &meta.tags {
            let at = path(&["metadata", "tags"]).key(key);
            if key.starts_with(RESERVED_TAG_PREFIX) {
                self.issue_at(
                    at.clone(),
                    format!("tag key {key:?} uses the prefix {RESERVED_TAG_PREFIX}, which lakesight reserves"),
                );
            }
            if let Some(problem) = tags::key_problem(key) {
                self.issue_at(at.clone(), problem);
            }
            if let Some(problem) = tags::value_problem(value) {
                self.issue_at(at, problem);
            }
        }
    }

    /// The ranges are [`crate::ipinsights::hyperparameters`]'s, which the engine checks a
    /// training job's string map with too.
    fn hyperparameters(&mut self, hp: &Hyperparameters) {
        use crate::ipinsights::hyperparameters as rules;
        const HP: [&str; 3] = ["spec", "training", "hyperparameters"];
        let at = |field: &'static str| [HP[0], HP[1], HP[2], field];
        let fields: [(&'static str, rules::Rule, Option<f64>); 10] = [
            ("numEntityVectors", rules::NUM_ENTITY_VECTORS, hp.num_entity_vectors.map(|v| v as f64)),
            ("vectorDim", rules::VECTOR_DIM, Some(hp.vector_dim.into())),
            ("epochs", rules::EPOCHS, hp.epochs.map(f64::from)),
            ("learningRate", rules::LEARNING_RATE, hp.learning_rate),
            ("miniBatchSize", rules::MINI_BATCH_SIZE, hp.mini_batch_size.map(f64::from)),
            ("numIpEncoderLayers", rules::NUM_IP_ENCODER_LAYERS, hp.num_ip_encoder_layers.map(f64::from)),
            (
                "randomNegativeSamplingRate",
                rules::RANDOM_NEGATIVE_SAMPLING_RATE,
                hp.random_negative_sampling_rate.map(f64::from),
            ),
            (
                "shuffledNegativeSamplingRate",
                rules::SHUFFLED_NEGATIVE_SAMPLING_RATE,
                hp.shuffled_negative_sampling_rate.map(f64::from),
            ),
            ("weightDecay", rules::WEIGHT_DECAY, hp.weight_decay),
            (
                "batchMetricsPublishInterval",
                rules::BATCH_METRICS_PUBLISH_INTERVAL,
                hp.batch_metrics_publish_interval.map(f64::from),
            ),
        ];
        for (field, rule, value) in fields {
            match value {
                Some(v) if rule.max.is_finite() => self.range(&at(field), v, rule.min, rule.max),
                Some(v) if !rule.allows(v) => {
                    self.issue(&at(field), format!("{v} is out of range; allowed: at least {}", rule.min));
                }
                _ => {}
            }
        }
        let rate = |v: Option<u32>| v.map_or(rules::DEFAULT_NEGATIVE_SAMPLING_RATE, u64::from);
        let sum = rate(hp.random_negative_sampling_rate) + rate(hp.shuffled_negative_sampling_rate);
        if !rules::NEGATIVE_RATE_SUM.contains(&sum) {
            let field = if hp.random_negative_sampling_rate.is_some() {
                "randomNegativeSamplingRate"
            } else {
                "shuffledNegativeSamplingRate"
            };
            let (min, max) = (rules::NEGATIVE_RATE_SUM.start(), rules::NEGATIVE_RATE_SUM.end());
            self.issue(&at(field), format!(
                "randomNegativeSamplingRate + shuffledNegativeSamplingRate = {sum}; the sum must be between {min} and {max}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipinsights::hyperparameters::{self as rules, Kind, Rule};
    use crate::pipeline::ipinsights::hyperparameters as sagemaker_strings;

    /// A manifest section with one field set, or `None` when the manifest's type cannot hold the value.
    fn manifest_with(rule: &Rule, v: f64) -> Option<Hyperparameters> {
        let mut hp = Hyperparameters::default();
        let int = || (v >= 0.0 && v.fract() == 0.0 && v <= f64::from(u32::MAX)).then_some(v as u32);
        match rule.name {
            "num_entity_vectors" => hp.num_entity_vectors = Some(u64::from(int()?)),
            "vector_dim" => hp.vector_dim = int()?,
            "epochs" => hp.epochs = Some(int()?),
            "learning_rate" => hp.learning_rate = Some(v),
            "mini_batch_size" => hp.mini_batch_size = Some(int()?),
            "num_ip_encoder_layers" => hp.num_ip_encoder_layers = Some(int()?),
            "random_negative_sampling_rate" => {
                hp.random_negative_sampling_rate = Some(int()?);
                hp.shuffled_negative_sampling_rate = Some(u32::from(v == 0.0));
            }
            "shuffled_negative_sampling_rate" => {
                hp.shuffled_negative_sampling_rate = Some(int()?);
                hp.random_negative_sampling_rate = Some(u32::from(v == 0.0));
            }
            "weight_decay" => hp.weight_decay = Some(v),
            "batch_metrics_publish_interval" => hp.batch_metrics_publish_interval = Some(int()?),
            other => panic!("the manifest has no field for {other}"),
        }
        Some(hp)
    }

    fn manifest_accepts(hp: &Hyperparameters) -> bool {
        let mut c = Checker::default();
        c.hyperparameters(hp);
        c.issues.is_empty()
    }

    /// What the engine says of the very string map apply would send SageMaker for this section.
    fn engine_accepts(hp: &Hyperparameters) -> bool {
        crate::ipinsights::Hyperparameters::from_strings(&sagemaker_strings(hp, 1_000)).is_ok()
    }

    #[test]
    fn the_manifest_and_the_engine_agree_on_every_boundary() {
        let mut checked = 0;
        for rule in rules::RULES {
            let step = match rule.kind {
                Kind::Integer => 1.0,
                Kind::Float => rule.min.max(1e-6) * 1e-3,
            };
            let mut values = vec![rule.min, rule.min - step, rule.min + step];
            if rule.max.is_finite() {
                values.extend([rule.max, rule.max - step, rule.max + step]);
            }
            if rule.kind == Kind::Float {
                values.extend([rule.min.next_down(), rule.max.next_up(), f64::NAN]);
            }
            for v in values {
                let Some(hp) = manifest_with(&rule, v) else { continue };
                let (manifest, engine) = (manifest_accepts(&hp), engine_accepts(&hp));
                assert_eq!(manifest, engine, "{}={v}: manifest {manifest}, engine {engine}", rule.name);
                checked += 1;
            }
        }
        for (random, shuffled) in [
            (None, None),
            (Some(0), Some(0)),
            (Some(0), None),
            (Some(250), Some(250)),
            (Some(250), Some(251)),
            (Some(500), None),
            (None, Some(499)),
        ] {
            let hp = Hyperparameters {
                random_negative_sampling_rate: random,
                shuffled_negative_sampling_rate: shuffled,
                ..Hyperparameters::default()
            };
            assert_eq!(manifest_accepts(&hp), engine_accepts(&hp), "rates {random:?} + {shuffled:?}");
            checked += 1;
        }
        assert!(checked > 60, "only {checked} cases");
    }
}
