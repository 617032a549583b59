//! Semantic checks that serde cannot express: name patterns, ranges, cross-field rules.
//! Each problem names its field path and what is allowed; `locate` turns the path into line:column.

use std::sync::LazyLock;

use regex::Regex;

use super::instance_types::Use;
use super::locate::Segment;
use super::schema::{Deployment, Hyperparameters, Manifest, Peer, SourceName, ThresholdPolicy, TrafficRouting};
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
        if features.peer == Peer::Remote {
            for (i, name) in features.sources.iter().enumerate() {
                if !matches!(name, SourceName::VpcFlow | SourceName::Route53) {
                    c.issue_at(
                        path(&["spec", "features", "sources"]).idx(i),
                        format!(
                            "{} has no remote end to pair with; peer: remote reads VPC_FLOW and ROUTE53 only",
                            name.as_str()
                        ),
                    );
                }
            }
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

    fn optional_range<T: Into<f64> + Copy>(&mut self, keys: &[&str], value: Option<T>, min: f64, max: f64) {
        if let Some(v) = value {
            self.range(keys, v.into(), min, max);
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

    fn hyperparameters(&mut self, hp: &Hyperparameters) {
        const HP: [&str; 3] = ["spec", "training", "hyperparameters"];
        let at = |field: &'static str| [HP[0], HP[1], HP[2], field];
        if let Some(n) = hp.num_entity_vectors {
            self.range(&at("numEntityVectors"), n as f64, 1.0, 250_000_000.0);
        }
        self.range(&at("vectorDim"), hp.vector_dim.into(), 4.0, 4096.0);
        self.optional_range(&at("epochs"), hp.epochs, 1.0, f64::from(u32::MAX));
        self.optional_range(&at("learningRate"), hp.learning_rate, 1e-6, 10.0);
        self.optional_range(&at("miniBatchSize"), hp.mini_batch_size, 1.0, 500_000.0);
        self.optional_range(&at("numIpEncoderLayers"), hp.num_ip_encoder_layers, 0.0, 100.0);
        self.optional_range(&at("randomNegativeSamplingRate"), hp.random_negative_sampling_rate, 0.0, 500.0);
        self.optional_range(&at("shuffledNegativeSamplingRate"), hp.shuffled_negative_sampling_rate, 0.0, 500.0);
        self.optional_range(&at("weightDecay"), hp.weight_decay, 0.0, 10.0);
        self.optional_range(
            &at("batchMetricsPublishInterval"),
            hp.batch_metrics_publish_interval,
            1.0,
            f64::from(u32::MAX),
        );
        // Both rates default to 1 in the algorithm when unset.
        let random = hp.random_negative_sampling_rate.unwrap_or(1);
        let shuffled = hp.shuffled_negative_sampling_rate.unwrap_or(1);
        let sum = u64::from(random) + u64::from(shuffled);
        if !(1..=500).contains(&sum) {
            let field = if hp.random_negative_sampling_rate.is_some() {
                "randomNegativeSamplingRate"
            } else {
                "shuffledNegativeSamplingRate"
            };
            self.issue(&at(field), format!(
                "randomNegativeSamplingRate + shuffledNegativeSamplingRate = {sum}; the sum must be between 1 and 500"));
        }
    }
}
