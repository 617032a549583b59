//! The stack manifest: strict parsing, semantic validation, and diagnostics that point into the file.

#[cfg(test)]
mod aws_rules_tests;
mod bucket_name;
mod instance_types;
mod kms;
mod locate;
mod schema;
mod tags;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use locate::{Position, Segment};
pub use schema::*;
pub use validate::{RESERVED_TAG_PREFIX, SOURCE_VERSIONS};

/// One problem in a manifest, located in its file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub file: PathBuf,
    pub position: Option<Position>,
    /// The field, as `spec.training.hyperparameters.vectorDim`; empty when the whole document is wrong.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(p) = self.position {
            write!(f, ":{}:{}", p.line, p.column)?;
        }
        if self.field.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.field, self.message)
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl Manifest {
    /// Reads, parses and validates a manifest file. Makes no AWS call.
    pub fn load(path: &Path) -> Result<Manifest, ManifestError> {
        let source =
            std::fs::read_to_string(path).map_err(|source| ManifestError::Read { path: path.to_owned(), source })?;
        let mut manifest = Self::parse(path, &source)?;
        manifest.resolve_package(path, &source)?;
        Ok(manifest)
    }

    /// Makes `scorer.package` absolute, relative to the manifest's directory, and checks that
    /// the zip is there before any AWS call.
    fn resolve_package(&mut self, path: &Path, source: &str) -> Result<(), ManifestError> {
        let Some(package) = self.spec.scorer.as_mut().and_then(|s| s.package.as_mut()) else { return Ok(()) };
        let resolved = path.parent().unwrap_or(Path::new(".")).join(&*package);
        if !resolved.is_file() {
            let at: Vec<Segment> = ["spec", "scorer", "package"].map(|k| Segment::Key(k.to_owned())).into();
            return Err(ManifestError::Invalid(vec![Diagnostic {
                file: path.to_owned(),
                position: locate::locate(source, &at),
                field: locate::render(&at),
                message: format!("{} is not a file: build it with `scorer/package`", resolved.display()),
            }]));
        }
        *package = resolved.to_string_lossy().into_owned();
        Ok(())
    }

    /// Parses and validates manifest text; `path` only labels the diagnostics.
    pub fn parse(path: &Path, source: &str) -> Result<Manifest, ManifestError> {
        let manifest: Manifest =
            yaml_serde::from_str(source).map_err(|e| ManifestError::Invalid(vec![parse_diagnostic(path, &e)]))?;
        let issues = validate::validate(&manifest);
        if issues.is_empty() {
            return Ok(manifest);
        }
        Err(ManifestError::Invalid(
            issues
                .into_iter()
                .map(|issue| Diagnostic {
                    file: path.to_owned(),
                    position: locate::locate(source, &issue.path),
                    field: locate::render(&issue.path),
                    message: issue.message,
                })
                .collect(),
        ))
    }
}

/// The JSON Schema of the manifest, for editors.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Manifest)).unwrap_or_default()
}

/// Splits the deserializer's "path: message at line L column C" into our diagnostic fields.
fn parse_diagnostic(path: &Path, error: &yaml_serde::Error) -> Diagnostic {
    let text = error.to_string();
    let position = error.location().map(|l| Position { line: l.line(), column: l.column() });
    let text = match text.rfind(" at line ") {
        Some(i) if position.is_some() => text[..i].to_owned(),
        _ => text,
    };
    let (field, message) = match text.split_once(": ") {
        Some((field, message)) if !field.contains(' ') => (field.to_owned(), message.to_owned()),
        _ => (String::new(), text),
    };
    Diagnostic { file: path.to_owned(), position, field, message }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str =
        "apiVersion: lakesight.io/v1\nkind: Stack\nmetadata:\n  name: demo\nspec:\n  region: us-east-1\n";

    fn errors(source: &str) -> Vec<Diagnostic> {
        match Manifest::parse(Path::new("m.yaml"), source) {
            Err(ManifestError::Invalid(d)) => d,
            other => panic!("expected diagnostics, got {other:?}"),
        }
    }

    #[test]
    fn minimal_manifest_is_valid() {
        let m = Manifest::parse(Path::new("m.yaml"), VALID).expect("valid");
        assert_eq!(m.metadata.name, "demo");
    }

    #[test]
    fn unknown_field_names_field_position_and_allowed_keys() {
        let d = &errors(&format!("{VALID}  artifactBuckt: {{}}\n"))[0];
        assert_eq!(d.position, Some(Position { line: 7, column: 3 }));
        assert_eq!(d.field, "spec");
        assert!(d.message.contains("unknown field `artifactBuckt`"), "{}", d.message);
        assert!(d.message.contains("`artifactBucket`"), "{}", d.message);
    }

    #[test]
    fn a_scorer_needs_its_package_endpoint_and_subscriber_and_a_window_for_large_batches() {
        let d = errors(&format!("{VALID}  scorer:\n    batchSize: 100\n    batchWindow: 0s\n"));
        let found: Vec<(&str, &str)> = d.iter().map(|d| (d.field.as_str(), d.message.as_str())).collect();
        assert_eq!(
            found,
            [
                ("spec.scorer.batchWindow", "at least 1s when batchSize is above 10, as Lambda requires"),
                ("spec.scorer.package", "required: the ipcheck zip that `scorer/package` builds"),
                ("spec.scorer", "needs spec.endpoint: the scorer scores on the stack's endpoint"),
                ("spec.scorer", "needs spec.subscriber: the scorer reads the subscriber's notifications"),
            ]
        );
        assert_eq!(d[0].position, Some(Position { line: 9, column: 18 }));
    }

    #[test]
    fn a_package_path_is_resolved_next_to_the_manifest_and_must_exist() {
        let dir = tempfile::tempdir().expect("dir");
        let spec = "  securityLake: {}\n  subscriber:\n    principal: \"111122223333\"\n    externalId: ext-id\n  endpoint: {}\n  scorer:\n    package: build/ipcheck.zip\n";
        let path = dir.path().join("stack.yaml");
        std::fs::write(&path, format!("{VALID}{spec}")).expect("manifest");
        let Err(ManifestError::Invalid(d)) = Manifest::load(&path) else { panic!("a missing package is an error") };
        assert_eq!(
            (d[0].field.as_str(), d[0].position),
            ("spec.scorer.package", Some(Position { line: 13, column: 14 }))
        );
        std::fs::create_dir(dir.path().join("build")).expect("dir");
        std::fs::write(dir.path().join("build/ipcheck.zip"), b"zip").expect("zip");
        let m = Manifest::load(&path).expect("valid");
        let package = m.spec.scorer.and_then(|s| s.package).expect("package");
        assert_eq!(Path::new(&package), dir.path().join("build/ipcheck.zip"));
    }

    #[test]
    fn semantic_error_is_located() {
        let src = format!("{VALID}  training:\n    hyperparameters:\n      vectorDim: 2\n");
        let d = &errors(&src)[0];
        assert_eq!(d.field, "spec.training.hyperparameters.vectorDim");
        assert_eq!(d.position, Some(Position { line: 9, column: 18 }));
        assert!(d.message.contains("4 to 4096"), "{}", d.message);
    }

    #[test]
    fn negative_sampling_sum_is_bounded() {
        let src = format!(
            "{VALID}  training:\n    hyperparameters:\n      randomNegativeSamplingRate: 0\n      shuffledNegativeSamplingRate: 0\n"
        );
        let d = &errors(&src)[0];
        assert!(d.message.contains("= 0"), "{}", d.message);
        let src = format!(
            "{VALID}  training:\n    hyperparameters:\n      randomNegativeSamplingRate: 250\n      shuffledNegativeSamplingRate: 251\n"
        );
        assert!(errors(&src)[0].message.contains("= 501"));
        let ok = format!(
            "{VALID}  training:\n    hyperparameters:\n      randomNegativeSamplingRate: 0\n      shuffledNegativeSamplingRate: 1\n"
        );
        assert!(Manifest::parse(Path::new("m.yaml"), &ok).is_ok());
    }

    #[test]
    fn hyperparameter_range_edges() {
        let cases: &[(&str, &str, bool)] = &[
            ("numEntityVectors", "1", true),
            ("numEntityVectors", "250000000", true),
            ("numEntityVectors", "250000001", false),
            ("vectorDim", "4", true),
            ("vectorDim", "4096", true),
            ("vectorDim", "4097", false),
            ("epochs", "1", true),
            ("epochs", "0", false),
            ("learningRate", "0.000001", true),
            ("learningRate", "10", true),
            ("learningRate", "10.5", false),
            ("learningRate", "0.0000009", false),
            ("miniBatchSize", "500000", true),
            ("miniBatchSize", "500001", false),
            ("miniBatchSize", "0", false),
            ("numIpEncoderLayers", "0", true),
            ("numIpEncoderLayers", "100", true),
            ("numIpEncoderLayers", "101", false),
            ("weightDecay", "0", true),
            ("weightDecay", "10", true),
            ("weightDecay", "10.1", false),
            ("batchMetricsPublishInterval", "1", true),
            ("batchMetricsPublishInterval", "0", false),
            ("randomNegativeSamplingRate", "499", true),
            ("randomNegativeSamplingRate", "500", false), // 500 + default shuffled 1 = 501
            ("shuffledNegativeSamplingRate", "501", false),
        ];
        for (field, value, ok) in cases {
            let src = format!("{VALID}  training:\n    hyperparameters:\n      {field}: {value}\n");
            let result = Manifest::parse(Path::new("m.yaml"), &src);
            assert_eq!(result.is_ok(), *ok, "{field}={value}: {result:?}");
        }
    }

    #[test]
    fn source_version_and_accounts_are_checked() {
        let src = format!(
            "{VALID}  securityLake:\n    accounts: ['12345']\n    sources:\n      - name: VPC_FLOW\n        version: '3.0'\n"
        );
        let d = errors(&src);
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].field, "spec.securityLake.accounts[0]");
        assert_eq!(d[0].position, Some(Position { line: 8, column: 16 }));
        assert_eq!(d[1].field, "spec.securityLake.sources[0].version");
        assert!(d[1].message.contains("allowed: 1.0, 2.0"));
    }

    #[test]
    fn peer_defaults_to_source_and_remote_pairs_flow_and_dns_sources_only() {
        let m = Manifest::parse(Path::new("m.yaml"), &format!("{VALID}  features: {{}}\n")).expect("valid");
        assert_eq!(m.spec.features.expect("features").peer, Peer::Source);
        let remote = format!("{VALID}  features:\n    peer: remote\n");
        let m = Manifest::parse(Path::new("m.yaml"), &remote).expect("valid");
        assert_eq!(m.spec.features.expect("features").peer, Peer::Remote);

        let d = errors(&format!("{VALID}  features:\n    peer: remote\n    sources: [VPC_FLOW, WAF]\n"));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].field, "spec.features.sources[1]");
        assert!(d[0].message.starts_with("WAF has no remote end to pair with"), "{}", d[0].message);
        let d = errors(&format!("{VALID}  features:\n    peer: Remote\n"));
        assert!(d[0].message.contains("source") && d[0].message.contains("remote"), "{d:?}");
        let source = format!("{VALID}  features:\n    peer: source\n    sources: [VPC_FLOW, WAF]\n");
        assert!(Manifest::parse(Path::new("m.yaml"), &source).is_ok(), "source pairing reads any source");
    }

    #[test]
    fn unknown_source_name_lists_allowed_values() {
        let src = format!("{VALID}  securityLake:\n    sources:\n      - name: VPC_FLOWS\n");
        let d = &errors(&src)[0];
        assert!(d.message.contains("unknown variant `VPC_FLOWS`"), "{}", d.message);
        assert!(d.message.contains("`ROUTE53`"), "{}", d.message);
        assert_eq!(d.position.map(|p| p.line), Some(9));
    }

    #[test]
    fn external_id_is_checked_but_never_echoed() {
        let src =
            format!("{VALID}  securityLake: {{}}\n  subscriber:\n    principal: '123456789012'\n    externalId: 'x'\n");
        let d = &errors(&src)[0];
        assert_eq!(d.field, "spec.subscriber.externalId");
        assert!(d.message.contains("got 1 characters"));
        let src = format!(
            "{VALID}  securityLake: {{}}\n  subscriber:\n    principal: 'me'\n    externalId: 'secret-value'\n"
        );
        let d = &errors(&src)[0];
        assert_eq!(d.field, "spec.subscriber.principal");
        assert!(!d.to_string().contains("secret-value"));
    }

    #[test]
    fn training_in_a_region_without_a_known_image_needs_an_image() {
        let src = "apiVersion: lakesight.io/v1\nkind: Stack\nmetadata:\n  name: demo\nspec:\n  region: xx-nowhere-1\n  training: {}\n";
        let d = &errors(src)[0];
        assert_eq!(d.field, "spec.training");
        assert!(d.message.contains("set spec.training.image"), "{}", d.message);
        let fixed =
            src.replace("training: {}", "training:\n    image: 1.dkr.ecr.xx-nowhere-1.amazonaws.com/ipinsights:1");
        assert!(Manifest::parse(Path::new("m.yaml"), &fixed).is_ok());
    }

    #[test]
    fn a_subscriber_needs_a_lake_section() {
        let src = format!("{VALID}  subscriber:\n    principal: '123456789012'\n    externalId: 'ext-id'\n");
        let d = &errors(&src)[0];
        assert_eq!((d.field.as_str(), d.position.map(|p| p.line)), ("spec.subscriber", Some(8)));
        assert!(d.message.contains("needs spec.securityLake"), "{}", d.message);
    }

    #[test]
    fn names_regions_arns_and_instance_types_are_checked() {
        let src = "apiVersion: lakesight.io/v1\nkind: Stack\nmetadata:\n  name: Demo_Stack\nspec:\n  region: useast1\n  iam:\n    scorerRoleArn: arn:aws:iam::12:role/x\n  endpoint:\n    instanceType: m5.large\n";
        let fields: Vec<String> = errors(src).into_iter().map(|d| d.field).collect();
        assert_eq!(fields, ["metadata.name", "spec.region", "spec.iam.scorerRoleArn", "spec.endpoint.instanceType"]);
    }

    #[test]
    fn wrong_api_version_lists_the_allowed_one() {
        let d = &errors(&VALID.replace("lakesight.io/v1", "lakesight.io/v2"))[0];
        assert!(d.message.contains("lakesight.io/v1"), "{}", d.message);
        assert_eq!(d.position.map(|p| p.line), Some(1));
    }

    #[test]
    fn schema_is_strict() {
        let schema = json_schema();
        assert_eq!(schema["additionalProperties"], serde_json::json!(false));
        assert!(schema["$defs"]["Hyperparameters"]["properties"]["vectorDim"].is_object());
    }
}
