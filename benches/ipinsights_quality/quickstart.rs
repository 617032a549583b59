//! What the quickstart runs, read from the files that run it, so that the bench measures the
//! quickstart and cannot drift from it: the feature split, the training hyperparameters and the
//! scorer's threshold from `manifests/quickstart.yaml`, and the synthetic lake's days, seed and
//! flows per day from the `lakesight-data` command lines of the Makefile's `quickstart` target.
//!
//! The manifest is not read with the crate's own loader, `lakesight::manifest::Manifest`: that is
//! `control-plane` code, and a bench that needed it would build the control plane's AWS SDK
//! crates in release (aws-sdk-sagemaker alone takes about 8 minutes on two cores), which the
//! `ipinsights` feature exists to avoid. So it is read here with `yaml_serde`, the YAML crate the
//! loader uses, and only what the bench needs is taken:
//! - No default of the manifest's is repeated here: a field the bench needs and the quickstart
//!   leaves out (`vectorDim`, `windowDays`, `peer`, the threshold's `policy` and `value`) is an
//!   error, not a guess.
//! - The hyperparameters become the training job's string map and go through
//!   [`Hyperparameters::from_strings`], the engine's own check of that map: an unknown name or a
//!   value out of range is refused, and the ones the manifest leaves out take the engine's
//!   defaults, as they do in a training job.
//! - What the bench does not model is refused: feature `sources`, `accounts` or `regions`, and a
//!   calibrated threshold (its value is chosen per model generation on the endpoint's scores;
//!   `lakesight calibrate` reports it).
//!
//! Under `cargo test`, whose default features include `control-plane`, the bench's smoke run
//! also loads the manifest with the crate's loader and checks that both readings agree (see
//! `agrees_with_the_manifest_loader` in `main.rs`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use lakesight::ipinsights::Hyperparameters;
use lakesight::ipinsights::hyperparameters::{RULES, entity_vectors};
use serde::Deserialize;

/// The quickstart's settings that decide the bench's figures.
#[derive(Debug, Clone)]
pub struct Quickstart {
    /// `lakesight-data --days`, `--seed` and `--flows-per-day`.
    pub days: u32,
    pub seed: u64,
    pub flows_per_day: usize,
    /// `features.windowDays` and `features.validationDays`.
    pub window_days: i64,
    pub validation_days: i64,
    /// `features.peer`: `source` or `remote`.
    pub peer: String,
    /// `training.hyperparameters` as the training job's string map, without
    /// `num_entity_vectors` unless the manifest fixes it.
    pub hyperparameters: BTreeMap<String, String>,
    /// `scorer.threshold.value` on `-dot_product` (`policy: fixed`).
    pub threshold: f64,
}

pub fn manifest_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("manifests/quickstart.yaml")
}

fn makefile_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Makefile")
}

/// Reads `manifests/quickstart.yaml` and the Makefile; panics with the reason when either says
/// something the bench cannot measure.
pub fn read() -> Quickstart {
    let read = |path: PathBuf| std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let manifest = manifest(&read(manifest_path()));
    let (days, seed, flows_per_day) = lake(&read(makefile_path()));
    Quickstart { days, seed, flows_per_day, ..manifest }
}

impl Quickstart {
    /// The hyperparameters a training job of the quickstart gets for a training split of
    /// `entities` distinct entities: `num_entity_vectors` is twice that, within its range, unless
    /// the manifest fixes it (as the feature run sizes it).
    pub fn hyperparameters(&self, entities: usize) -> Hyperparameters {
        let mut map = self.hyperparameters.clone();
        let sized = entity_vectors(entities as u64);
        map.entry("num_entity_vectors".to_owned()).or_insert_with(|| sized.to_string());
        Hyperparameters::from_strings(&map).unwrap_or_else(|e| panic!("manifests/quickstart.yaml: {e}"))
    }

    /// The hyperparameters the manifest sets, as `name value` pairs.
    pub fn declared(&self) -> String {
        self.hyperparameters.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
    }
}

#[derive(Deserialize)]
struct Document {
    spec: Spec,
}

#[derive(Deserialize)]
struct Spec {
    features: Features,
    training: Training,
    scorer: Scorer,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Features {
    window_days: Option<i64>,
    validation_days: Option<i64>,
    peer: Option<String>,
    sources: Option<yaml_serde::Value>,
    accounts: Option<yaml_serde::Value>,
    regions: Option<yaml_serde::Value>,
}

#[derive(Deserialize)]
struct Training {
    #[serde(default)]
    hyperparameters: BTreeMap<String, yaml_serde::Value>,
}

#[derive(Deserialize)]
struct Scorer {
    threshold: Threshold,
}

#[derive(Deserialize)]
struct Threshold {
    policy: Option<String>,
    value: Option<f64>,
}

/// `vectorDim` → `vector_dim`: the manifest's names are SageMaker's in camel case.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// The manifest's part of [`Quickstart`]; the lake's fields are left at zero.
fn manifest(text: &str) -> Quickstart {
    fn fail(what: &str) -> ! {
        panic!("manifests/quickstart.yaml: {what}")
    }
    let doc: Document = yaml_serde::from_str(text).unwrap_or_else(|e| fail(&e.to_string()));
    let Spec { features, training, scorer } = doc.spec;
    for (name, set) in
        [("sources", &features.sources), ("accounts", &features.accounts), ("regions", &features.regions)]
    {
        if set.is_some() {
            fail(&format!("spec.features.{name} is set; the bench builds every source of one account and region"));
        }
    }
    let required = |value: Option<i64>, name: &str| {
        value.unwrap_or_else(|| fail(&format!("spec.features.{name} is not set; the bench takes no default")))
    };
    let mut hyperparameters = BTreeMap::new();
    for (name, value) in training.hyperparameters {
        let yaml_serde::Value::Number(number) = value else {
            fail(&format!("spec.training.hyperparameters.{name} is not a number"))
        };
        hyperparameters.insert(snake_case(&name), number.to_string());
    }
    if let Some(unknown) = hyperparameters.keys().find(|k| !RULES.iter().any(|r| r.name == k.as_str())) {
        fail(&format!("spec.training.hyperparameters: {unknown} is not an IP Insights hyperparameter"));
    }
    if !hyperparameters.contains_key("vector_dim") {
        fail("spec.training.hyperparameters.vectorDim is not set; the bench takes no default");
    }
    let threshold = match (scorer.threshold.policy.as_deref(), scorer.threshold.value) {
        (Some("fixed"), Some(value)) => value,
        (Some("fixed"), None) => fail("spec.scorer.threshold.value is not set"),
        (policy, _) => fail(&format!(
            "spec.scorer.threshold.policy is {}, not fixed: a calibrated threshold is chosen for each model \
             generation on the endpoint's scores (`lakesight calibrate`); the bench measures a fixed one",
            policy.unwrap_or("not set (calibrated)")
        )),
    };
    let quickstart = Quickstart {
        days: 0,
        seed: 0,
        flows_per_day: 0,
        window_days: required(features.window_days, "windowDays"),
        validation_days: required(features.validation_days, "validationDays"),
        peer: features.peer.unwrap_or_else(|| fail("spec.features.peer is not set; the bench takes no default")),
        hyperparameters,
        threshold,
    };
    // The engine's check, now rather than after the lake is built.
    quickstart.hyperparameters(1);
    quickstart
}

/// The recipe lines of a Makefile target, with `\` continuations joined.
fn recipe(makefile: &str, target: &str) -> Vec<String> {
    let heading = format!("{target}:");
    let lines = makefile.lines().skip_while(|l| !l.starts_with(&heading)).skip(1);
    let mut out: Vec<String> = Vec::new();
    let mut continued = false;
    for line in lines.take_while(|l| l.starts_with('\t')) {
        let text = line.trim();
        let (text, next) = match text.strip_suffix('\\') {
            Some(t) => (t.trim_end(), true),
            None => (text, false),
        };
        match out.last_mut() {
            Some(last) if continued => {
                last.push(' ');
                last.push_str(text);
            }
            _ => out.push(text.to_owned()),
        }
        continued = next;
    }
    out
}

/// `--days`, `--seed` and `--flows-per-day` of the quickstart's `lakesight-data` writes. Each
/// write must give all three, and the same ones; `--last-day` (which the bench fixes) and
/// `--part` (which only splits the writing) are the only other options allowed.
fn lake(makefile: &str) -> (u32, u64, usize) {
    fn fail(what: &str) -> ! {
        panic!("Makefile, target quickstart: {what}")
    }
    let mut writes: Vec<BTreeMap<String, String>> = Vec::new();
    for line in recipe(makefile, "quickstart") {
        let words: Vec<&str> = line.split_whitespace().collect();
        for command in words.split(|w| matches!(*w, "&&" | "||" | ";" | "|")) {
            let Some(at) = command.iter().position(|w| w.ends_with("lakesight-data")) else { continue };
            let args = &command[at + 1..];
            if args.first() == Some(&"report") {
                continue;
            }
            let mut options = BTreeMap::new();
            let mut rest = args.iter();
            while let Some(word) = rest.next() {
                let (name, value) = match word.split_once('=') {
                    Some((n, v)) => (n.to_owned(), v.to_owned()),
                    None => (word.to_string(), rest.next().map_or_else(String::new, |v| v.to_string())),
                };
                match name.as_str() {
                    "--days" | "--seed" | "--flows-per-day" => {
                        options.insert(name, value);
                    }
                    "--last-day" | "--part" => {}
                    other => fail(&format!(
                        "lakesight-data {other}: the bench builds its lake from --days, --seed and --flows-per-day only"
                    )),
                }
            }
            writes.push(options);
        }
    }
    let Some(first) = writes.first() else { fail("no lakesight-data write") };
    if writes.iter().any(|w| w != first) {
        fail("the lakesight-data writes differ in --days, --seed or --flows-per-day");
    }
    let get = |name: &str| {
        first.get(name).unwrap_or_else(|| fail(&format!("lakesight-data without {name}; the bench takes no default")))
    };
    let number = |name: &str| -> u64 {
        get(name).parse().unwrap_or_else(|_| fail(&format!("lakesight-data {name} {}: not a number", get(name))))
    };
    let days = u32::try_from(number("--days")).unwrap_or_else(|_| fail("--days is too large"));
    (days, number("--seed"), number("--flows-per-day") as usize)
}
