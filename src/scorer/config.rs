//! The scorer's settings, carried in the function's environment. The Lambda function resource
//! writes them with [`Config::to_vars`] and the handler reads them with [`Config::from_env`], so
//! the two sides cannot drift apart.
//!
//! The queues are named by URL, not by name: the function resource takes each URL from its
//! queue's resource, so the scorer never calls `sqs:GetQueueUrl`, which its role does not grant.

use std::collections::BTreeMap;

use super::pairs::MAX_ENTITY_BYTES;
use super::peer::Peer;

/// Environment variable names.
pub mod var {
    /// What every variable of the scorer's own begins with.
    pub const PREFIX: &str = "LAKESIGHT_";
    pub const ENDPOINT: &str = "LAKESIGHT_ENDPOINT";
    pub const THRESHOLD: &str = "LAKESIGHT_THRESHOLD";
    /// The production variant (`g3`) a calibrated threshold belongs to.
    pub const THRESHOLD_VARIANT: &str = "LAKESIGHT_THRESHOLD_VARIANT";
    pub const OBSERVE_ONLY: &str = "LAKESIGHT_OBSERVE_ONLY";
    pub const MAX_PAYLOAD_BYTES: &str = "LAKESIGHT_MAX_PAYLOAD_BYTES";
    pub const INVOKE_CONCURRENCY: &str = "LAKESIGHT_INVOKE_CONCURRENCY";
    pub const READ_CONCURRENCY: &str = "LAKESIGHT_READ_CONCURRENCY";
    pub const FINDINGS_QUEUE_URL: &str = "LAKESIGHT_FINDINGS_QUEUE_URL";
    pub const DEAD_LETTER_QUEUE_URL: &str = "LAKESIGHT_DEAD_LETTER_QUEUE_URL";
    pub const SOURCE_ROLE_ARN: &str = "LAKESIGHT_SOURCE_ROLE_ARN";
    pub const SOURCE_EXTERNAL_ID: &str = "LAKESIGHT_SOURCE_EXTERNAL_ID";
    /// `source` or `remote`: the pairing the model was trained on ([`super::Peer`]).
    pub const PEER: &str = "LAKESIGHT_PEER";

    /// Queue names, which earlier environments carried, and the variable that replaces each. A
    /// new package runs briefly with its old environment while an update is applied; refusing
    /// these makes that invocation fail and its messages come back, rather than drop findings.
    pub const REPLACED: [(&str, &str); 2] =
        [("LAKESIGHT_FINDINGS_QUEUE", FINDINGS_QUEUE_URL), ("LAKESIGHT_DEAD_LETTER_QUEUE", DEAD_LETTER_QUEUE_URL)];
}

/// The real-time InvokeEndpoint limit is 6 MB; the default leaves room for headers.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 5_000_000;
pub const PAYLOAD_LIMIT: usize = 6_000_000;
/// The smallest body limit: one line of the longest entity must fit.
pub const MIN_PAYLOAD_BYTES: usize = 1_024;
const _: () = assert!(MIN_PAYLOAD_BYTES > MAX_ENTITY_BYTES + 17);

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub endpoint: String,
    /// Scores above it are findings. None: no threshold is calibrated yet, so only scores are logged.
    pub threshold: Option<f64>,
    /// The generation's variant a calibrated threshold was chosen for. Scores from any other
    /// variant (a new generation that serves before it is calibrated) are only logged.
    pub threshold_variant: Option<String>,
    pub observe_only: bool,
    pub max_payload_bytes: usize,
    pub invoke_concurrency: usize,
    pub read_concurrency: usize,
    /// Where findings and messages that can never succeed are sent, by queue URL.
    pub findings_queue_url: Option<String>,
    pub dead_letter_queue_url: Option<String>,
    /// Read the lake by assuming the subscriber's role, for a lake in another account.
    pub source_role: Option<SourceRole>,
    /// Which address each entity is paired with: the features' pairing, or the scores mean nothing.
    pub peer: Peer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRole {
    pub arn: String,
    pub external_id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name}={value:?} is invalid: {allowed}")]
    Invalid { name: &'static str, value: String, allowed: String },
    #[error("{old} is no longer read: set {new} instead")]
    Replaced { old: &'static str, new: &'static str },
}

impl Config {
    pub fn new(endpoint: impl Into<String>) -> Config {
        Config {
            endpoint: endpoint.into(),
            threshold: None,
            threshold_variant: None,
            observe_only: false,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            invoke_concurrency: 4,
            read_concurrency: 4,
            findings_queue_url: None,
            dead_letter_queue_url: None,
            source_role: None,
            peer: Peer::Source,
        }
    }

    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the settings through `get`, so tests need not touch the process environment.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        if let Some((old, new)) = var::REPLACED.into_iter().find(|(old, _)| get(old).is_some()) {
            return Err(ConfigError::Replaced { old, new });
        }
        let mut config = Config::new(get(var::ENDPOINT).ok_or(ConfigError::Missing(var::ENDPOINT))?);
        if let Some(value) = get(var::THRESHOLD) {
            config.threshold = Some(
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| invalid(var::THRESHOLD, &value, "a finite number"))?,
            );
        }
        config.threshold_variant = get(var::THRESHOLD_VARIANT);
        if let Some(value) = get(var::PEER) {
            config.peer = Peer::parse(&value).ok_or_else(|| invalid(var::PEER, &value, "source or remote"))?;
        }
        if let Some(value) = get(var::OBSERVE_ONLY) {
            config.observe_only =
                value.parse::<bool>().map_err(|_| invalid(var::OBSERVE_ONLY, &value, "true or false"))?;
        }
        let sizes = [
            (var::MAX_PAYLOAD_BYTES, &mut config.max_payload_bytes, MIN_PAYLOAD_BYTES, PAYLOAD_LIMIT),
            (var::INVOKE_CONCURRENCY, &mut config.invoke_concurrency, 1, 64),
            (var::READ_CONCURRENCY, &mut config.read_concurrency, 1, 64),
        ];
        for (name, slot, min, max) in sizes {
            if let Some(value) = get(name) {
                *slot = value
                    .parse::<usize>()
                    .ok()
                    .filter(|v| (min..=max).contains(v))
                    .ok_or_else(|| invalid(name, &value, &format!("an integer in {min}..={max}")))?;
            }
        }
        for (name, slot) in [
            (var::FINDINGS_QUEUE_URL, &mut config.findings_queue_url),
            (var::DEAD_LETTER_QUEUE_URL, &mut config.dead_letter_queue_url),
        ] {
            if let Some(value) = get(name) {
                if !is_url(&value) {
                    return Err(invalid(
                        name,
                        &value,
                        "a queue URL, such as https://sqs.<region>.amazonaws.com/<account>/<name>",
                    ));
                }
                *slot = Some(value);
            }
        }
        config.source_role = match (get(var::SOURCE_ROLE_ARN), get(var::SOURCE_EXTERNAL_ID)) {
            (Some(arn), Some(external_id)) => Some(SourceRole { arn, external_id }),
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Missing(var::SOURCE_EXTERNAL_ID)),
            (None, Some(_)) => return Err(ConfigError::Missing(var::SOURCE_ROLE_ARN)),
        };
        Ok(config)
    }

    /// The environment that [`Config::from_lookup`] reads back as this configuration.
    pub fn to_vars(&self) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        let mut set = |name: &str, value: String| {
            vars.insert(name.to_owned(), value);
        };
        set(var::ENDPOINT, self.endpoint.clone());
        set(var::OBSERVE_ONLY, self.observe_only.to_string());
        set(var::MAX_PAYLOAD_BYTES, self.max_payload_bytes.to_string());
        set(var::INVOKE_CONCURRENCY, self.invoke_concurrency.to_string());
        set(var::READ_CONCURRENCY, self.read_concurrency.to_string());
        let optional = [
            (var::THRESHOLD, self.threshold.map(|t| t.to_string())),
            (var::THRESHOLD_VARIANT, self.threshold_variant.clone()),
            (var::FINDINGS_QUEUE_URL, self.findings_queue_url.clone()),
            (var::DEAD_LETTER_QUEUE_URL, self.dead_letter_queue_url.clone()),
            (var::SOURCE_ROLE_ARN, self.source_role.as_ref().map(|r| r.arn.clone())),
            (var::SOURCE_EXTERNAL_ID, self.source_role.as_ref().map(|r| r.external_id.clone())),
            // Left out when it is the default, so that functions deployed before the setting
            // existed keep their environment.
            (var::PEER, (self.peer != Peer::Source).then(|| self.peer.as_str().to_owned())),
        ];
        for (name, value) in optional {
            if let Some(value) = value {
                set(name, value);
            }
        }
        vars
    }

    /// Findings need a threshold and a mode that raises them.
    pub fn raises_findings(&self) -> bool {
        !self.observe_only && self.threshold.is_some()
    }

    /// The threshold for scores from `variant`: none for another generation than the one it
    /// was calibrated for.
    pub fn threshold_for(&self, variant: Option<&str>) -> Option<f64> {
        match &self.threshold_variant {
            Some(calibrated) if variant != Some(calibrated.as_str()) => None,
            _ => self.threshold,
        }
    }
}

/// A queue name where a URL belongs would fail only at the first finding; this fails at start.
fn is_url(value: &str) -> bool {
    value.split_once("://").is_some_and(|(scheme, rest)| matches!(scheme, "https" | "http") && rest.contains('/'))
}

fn invalid(name: &'static str, value: &str, allowed: &str) -> ConfigError {
    ConfigError::Invalid { name, value: value.to_owned(), allowed: allowed.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &BTreeMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
        |name| vars.get(name).cloned()
    }

    #[test]
    fn the_environment_round_trips() {
        let mut config = Config::new("lakesight-demo-endpoint");
        config.threshold = Some(2.5);
        config.max_payload_bytes = 2_048;
        config.findings_queue_url =
            Some("https://sqs.eu-west-1.amazonaws.com/111122223333/lakesight-demo-ipcheck-findings".into());
        config.source_role =
            Some(SourceRole { arn: "arn:aws:iam::1:role/AmazonSecurityLake-x".into(), external_id: "ext".into() });
        config.peer = Peer::Remote;
        let vars = config.to_vars();
        assert_eq!(vars.get(var::PEER).map(String::as_str), Some("remote"));
        assert_eq!(Config::from_lookup(lookup(&vars)).unwrap(), config);
        assert!(config.raises_findings());
    }

    #[test]
    fn source_pairing_is_the_default_and_leaves_the_environment_as_it_was() {
        let config = Config::new("e");
        assert_eq!(config.peer, Peer::Source);
        assert!(!config.to_vars().contains_key(var::PEER));
        assert_eq!(Config::from_lookup(lookup(&config.to_vars())).unwrap(), config);
    }

    #[test]
    fn a_calibrated_threshold_applies_only_to_its_own_generation() {
        let vars = BTreeMap::from([
            (var::ENDPOINT.to_owned(), "e".to_owned()),
            (var::THRESHOLD.to_owned(), "3.5".to_owned()),
            (var::THRESHOLD_VARIANT.to_owned(), "g3".to_owned()),
        ]);
        let config = Config::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(Config::from_lookup(lookup(&config.to_vars())).unwrap(), config, "written as read");
        assert_eq!(config.threshold_for(Some("g3")), Some(3.5));
        assert_eq!(config.threshold_for(Some("g4")), None, "a new generation is not judged by g3's threshold");
        assert_eq!(config.threshold_for(None), None);
        let fixed = Config { threshold_variant: None, ..config };
        assert_eq!(fixed.threshold_for(Some("g4")), Some(3.5), "a fixed threshold holds for every generation");
    }

    #[test]
    fn defaults_observe_when_no_threshold_is_set() {
        let vars = BTreeMap::from([(var::ENDPOINT.to_owned(), "e".to_owned())]);
        let config = Config::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(config.max_payload_bytes, DEFAULT_MAX_PAYLOAD_BYTES);
        assert!(!config.raises_findings());
    }

    #[test]
    fn bad_values_name_the_variable_and_what_is_allowed() {
        let base = |k: &str, v: &str| {
            BTreeMap::from([(var::ENDPOINT.to_owned(), "e".to_owned()), (k.to_owned(), v.to_owned())])
        };
        let err = Config::from_lookup(lookup(&base(var::MAX_PAYLOAD_BYTES, "7000000"))).unwrap_err();
        assert_eq!(err.to_string(), "LAKESIGHT_MAX_PAYLOAD_BYTES=\"7000000\" is invalid: an integer in 1024..=6000000");
        assert!(Config::from_lookup(lookup(&base(var::THRESHOLD, "NaN"))).is_err());
        assert_eq!(
            Config::from_lookup(lookup(&base(var::PEER, "destination"))).unwrap_err().to_string(),
            "LAKESIGHT_PEER=\"destination\" is invalid: source or remote"
        );
        assert_eq!(
            Config::from_lookup(lookup(&base(var::SOURCE_ROLE_ARN, "arn"))).unwrap_err(),
            ConfigError::Missing(var::SOURCE_EXTERNAL_ID)
        );
        assert_eq!(Config::from_lookup(|_| None).unwrap_err(), ConfigError::Missing(var::ENDPOINT));
    }

    #[test]
    fn queues_are_urls_and_the_old_name_variables_are_refused() {
        let with = |k: &str, v: &str| {
            BTreeMap::from([(var::ENDPOINT.to_owned(), "e".to_owned()), (k.to_owned(), v.to_owned())])
        };
        let err = Config::from_lookup(lookup(&with(var::DEAD_LETTER_QUEUE_URL, "lakesight-demo-ipcheck-dlq")));
        assert!(matches!(err, Err(ConfigError::Invalid { name: var::DEAD_LETTER_QUEUE_URL, .. })), "{err:?}");
        let local = "http://localhost:4566/000000000000/lakesight-demo-ipcheck-dlq";
        let config = Config::from_lookup(lookup(&with(var::DEAD_LETTER_QUEUE_URL, local))).unwrap();
        assert_eq!(config.dead_letter_queue_url.as_deref(), Some(local));
        assert_eq!(
            Config::from_lookup(lookup(&with("LAKESIGHT_FINDINGS_QUEUE", "lakesight-demo-ipcheck-findings"))),
            Err(ConfigError::Replaced { old: "LAKESIGHT_FINDINGS_QUEUE", new: var::FINDINGS_QUEUE_URL })
        );
        assert!(Config::from_lookup(lookup(&with("LAKESIGHT_DEAD_LETTER_QUEUE", " "))).is_ok(), "empty is unset");
    }
}
