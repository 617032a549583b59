//! The `ipcheck` scorer function: the package's code, the scorer settings in its environment,
//! and the memory, timeout and architecture of the manifest. Code drift is read from
//! `CodeSha256`, the base64 SHA-256 of the zip, so an unchanged package is never uploaded again.
//! The environment is compared variable by variable, so that a plan names the one that drifted.
//!
//! The environment names the scorer's queues by the URLs their resources publish, so that the
//! scorer sends to them without asking SQS for a URL its role may not ask for. A URL not known
//! yet (its queue is created in the same apply) shows in the plan as known after apply.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture as LambdaArchitecture, Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, Runtime,
    State,
};
use sha2::{Digest, Sha256};

use crate::aws::error::service_error;
use crate::aws::propagation::{self, Bound, Service};
use crate::aws::retry::{create_once, single_attempt};
use crate::engine::{AFTER_APPLY, Change, Input, Known, Ownership, Readiness, UNSET};
use crate::manifest::{Architecture, Scorer, ThresholdPolicy};
use crate::resource::{Identity, Resource, ResourceError, ownership_from_tags, tag_change};
use crate::scorer::Config;
use crate::scorer::config::var;
use crate::stack::{RoleKind, Stack};

pub const ADDRESS: &str = "lambda.function/ipcheck";
const HANDLER: &str = "bootstrap";

/// The package as read from disk.
#[derive(Debug, Clone)]
pub struct Package {
    pub path: String,
    pub zip: Arc<Vec<u8>>,
    /// What Lambda reports as `CodeSha256` for this zip.
    pub sha256: String,
}

impl Package {
    pub fn read(path: &str) -> Result<Package, String> {
        let zip = std::fs::read(path).map_err(|e| format!("cannot read the scorer package {path}: {e}"))?;
        let sha256 = aws_smithy_types::base64::encode(Sha256::digest(&zip));
        Ok(Package { path: path.to_owned(), zip: Arc::new(zip), sha256 })
    }
}

/// The settings lakesight manages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub role: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub architecture: String,
    pub runtime: String,
    pub handler: String,
    pub environment: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub arn: String,
    pub code_sha256: String,
    pub settings: Settings,
    pub state: Option<String>,
    pub last_update: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The URLs of the scorer's queues, from their resources; `None` for a queue the manifest turns off.
#[derive(Debug, Clone, Default)]
pub struct Queues {
    pub findings: Option<Input<String>>,
    pub dead_letter: Option<Input<String>>,
}

/// A calibrated threshold and the generation's variant it belongs to, from the calibration.
#[derive(Debug, Clone)]
pub struct Calibrated {
    pub threshold: Input<f64>,
    pub variant: Input<String>,
}

pub struct Function {
    identity: Identity,
    client: Client,
    package: Result<Package, String>,
    /// The settings but the environment, which [`Function::environment_now`] adds.
    settings: Settings,
    config: Config,
    queues: Queues,
    calibrated: Option<Calibrated>,
    tags: BTreeMap<String, String>,
}

/// The scorer settings the function's environment carries, but the queue URLs, which come from
/// the queues' resources.
pub fn scorer_config(stack: &Stack, scorer: &Scorer) -> Config {
    let mut config = Config::new(stack.endpoint_name());
    // A calibrated threshold comes from the calibration of the serving generation, through
    // [`Calibrated`]; without one the scorer logs scores only.
    config.threshold = match scorer.threshold.policy {
        ThresholdPolicy::Fixed => scorer.threshold.value,
        ThresholdPolicy::Calibrated => None,
    };
    config.observe_only = scorer.findings.observe_only;
    config.max_payload_bytes = scorer.max_payload_bytes as usize;
    // The scorer pairs as the model's features were paired, or its scores mean nothing.
    config.peer = stack.manifest.spec.features.as_ref().map(|f| f.peer).unwrap_or_default();
    config
}

impl Function {
    /// `calibrated`: the calibration's outputs, when the stack calibrates its threshold.
    pub fn new(stack: &Stack, scorer: &Scorer, client: Client, queues: Queues, calibrated: Option<Calibrated>) -> Self {
        let mut identity = Identity::new(stack, ADDRESS, stack.scorer_function_name());
        for queue in [&queues.dead_letter, &queues.findings].into_iter().flatten() {
            identity.depends_on.push(queue.source().to_owned());
        }
        if let Some(c) = &calibrated {
            identity.depends_on.push(c.threshold.source().to_owned());
        }
        let package = scorer
            .package
            .as_deref()
            .ok_or_else(|| "spec.scorer.package names no package".to_owned())
            .and_then(Package::read);
        Function {
            identity,
            client,
            package,
            settings: Settings {
                role: stack.role_arn(RoleKind::Scorer),
                memory_mb: i32::try_from(scorer.memory_mb).unwrap_or(i32::MAX),
                timeout_s: i32::try_from(scorer.timeout.as_secs()).unwrap_or(i32::MAX),
                architecture: match scorer.architecture {
                    Architecture::X86_64 => LambdaArchitecture::X8664,
                    Architecture::Arm64 => LambdaArchitecture::Arm64,
                }
                .as_str()
                .to_owned(),
                runtime: Runtime::Providedal2023.as_str().to_owned(),
                handler: HANDLER.to_owned(),
                environment: BTreeMap::new(),
            },
            config: scorer_config(stack, scorer),
            queues,
            calibrated,
            tags: stack.tags(),
        }
    }

    /// The environment wanted now, and the variables whose queue URL is not known yet; those
    /// read as `(known after apply)`.
    fn environment_now(&self) -> (BTreeMap<String, String>, Vec<&'static str>) {
        let mut config = self.config.clone();
        let mut unknown = Vec::new();
        let queues = [
            (&self.queues.findings, &mut config.findings_queue_url, var::FINDINGS_QUEUE_URL),
            (&self.queues.dead_letter, &mut config.dead_letter_queue_url, var::DEAD_LETTER_QUEUE_URL),
        ];
        for (input, slot, name) in queues {
            let Some(input) = input else { continue };
            *slot = Some(match input.get() {
                Known::Now(url) => url,
                Known::AfterApply => {
                    unknown.push(name);
                    AFTER_APPLY.to_owned()
                }
            });
        }
        let mut vars = config.to_vars();
        if let Some(c) = &self.calibrated {
            for (name, value) in
                [(var::THRESHOLD, c.threshold.get().render()), (var::THRESHOLD_VARIANT, c.variant.get().render())]
            {
                if value == AFTER_APPLY {
                    unknown.push(name);
                }
                vars.insert(name.to_owned(), value);
            }
        }
        (vars, unknown)
    }

    fn package(&self) -> Result<&Package, ResourceError> {
        self.package.as_ref().map_err(|e| ResourceError::Invalid(e.clone()))
    }

    /// The environment to send: every value must be known by then, since what it comes from
    /// (a queue, the calibration) is a dependency and has settled before the function acts.
    fn environment(&self) -> Result<Environment, ResourceError> {
        let (vars, unknown) = self.environment_now();
        if let Some(name) = unknown.first() {
            return Err(ResourceError::Invalid(format!(
                "{name} is not known: the resource it comes from has not produced it yet"
            )));
        }
        Ok(Environment::builder().set_variables(Some(vars.into_iter().collect())).build())
    }

    fn architecture(&self) -> LambdaArchitecture {
        LambdaArchitecture::from(self.settings.architecture.as_str())
    }

    /// Lambda refuses a configuration change while a code update is still being applied, so
    /// the update waits for its own readiness in between.
    async fn settle(&self) -> Result<(), ResourceError> {
        let deadline = tokio::time::Instant::now() + self.identity.wait_timeout;
        loop {
            match Resource::readiness(self).await? {
                Readiness::Ready => return Ok(()),
                Readiness::Pending { retry_after, .. } if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(retry_after).await
                }
                Readiness::Pending { status, .. } | Readiness::Waiting { reason: status } => {
                    return Err(ResourceError::Invalid(format!("{} is still {status}", self.identity.name)));
                }
            }
        }
    }

    async fn configuration(&self) -> Result<GetFunctionConfigurationOutput, ResourceError> {
        self.client
            .get_function_configuration()
            .function_name(&self.identity.name)
            .send()
            .await
            .map_err(|e| service_error("GetFunctionConfiguration", e))
    }
}

fn update_failed(reason: Option<&str>) -> ResourceError {
    ResourceError::Service {
        operation: "UpdateFunction",
        code: "Failed".into(),
        message: reason.unwrap_or("no reason given").to_owned(),
    }
}

fn observed_settings(config: &FunctionConfiguration) -> Settings {
    Settings {
        role: config.role().unwrap_or_default().to_owned(),
        memory_mb: config.memory_size().unwrap_or_default(),
        timeout_s: config.timeout().unwrap_or_default(),
        architecture: config.architectures().first().map(|a| a.as_str().to_owned()).unwrap_or_default(),
        runtime: config.runtime().map(|r| r.as_str().to_owned()).unwrap_or_default(),
        handler: config.handler().unwrap_or_default().to_owned(),
        environment: config
            .environment()
            .and_then(|e| e.variables())
            .map(|v| v.clone().into_iter().collect())
            .unwrap_or_default(),
    }
}

/// The field of one environment variable in a plan: `environment.<NAME>`.
const ENVIRONMENT: &str = "environment";

/// How a plan shows the value of a variable lakesight never writes: someone else set it, and it
/// may hold a secret.
const NOT_SHOWN: &str = "(set outside lakesight, not shown)";

/// How a plan shows an external id, here as on the subscriber.
const SECRET: &str = "(secret)";

/// One change per environment variable that differs, `environment.<NAME>: <have> -> <want>`,
/// with `(unset)` on the side where the variable is missing. The scorer's own `LAKESIGHT_`
/// variables hold only what the manifest and the stack's resources say, and are shown, but for
/// an external id; the value of any other variable is not.
fn environment_changes(have: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> Vec<Change> {
    let shown = |name: &str, value: Option<&String>| match value {
        None => UNSET.to_owned(),
        Some(_) if !name.starts_with(var::PREFIX) => NOT_SHOWN.to_owned(),
        Some(_) if name == var::SOURCE_EXTERNAL_ID => SECRET.to_owned(),
        Some(value) => value.clone(),
    };
    let names: std::collections::BTreeSet<&String> = have.keys().chain(want.keys()).collect();
    names
        .into_iter()
        .filter(|name| have.get(*name) != want.get(*name))
        .map(|name| {
            Change::in_place(format!("{ENVIRONMENT}.{name}"), shown(name, have.get(name)), shown(name, want.get(name)))
        })
        .collect()
}

/// Whether `change` is one of the environment's.
fn is_environment(change: &Change) -> bool {
    change.field.strip_prefix(ENVIRONMENT).is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

#[async_trait]
impl Resource for Function {
    type Observed = Observed;

    fn identity(&self) -> &Identity {
        &self.identity
    }

    async fn read(&self) -> Result<Option<Observed>, ResourceError> {
        let out = match self.client.get_function().function_name(&self.identity.name).send().await {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => return Err(service_error("GetFunction", e)),
        };
        let Some(config) = out.configuration() else { return Ok(None) };
        Ok(Some(Observed {
            arn: config.function_arn().unwrap_or_default().to_owned(),
            code_sha256: config.code_sha256().unwrap_or_default().to_owned(),
            settings: observed_settings(config),
            state: config.state().map(|s| s.as_str().to_owned()),
            last_update: config.last_update_status().map(|s| s.as_str().to_owned()),
            tags: out.tags().map(|t| t.clone().into_iter().collect()).unwrap_or_default(),
        }))
    }

    fn owner(&self, observed: &Observed) -> Ownership {
        ownership_from_tags(&observed.tags, &self.identity.stack)
    }

    fn diff(&self, observed: &Observed) -> Vec<Change> {
        let (have, want) = (&observed.settings, &self.settings);
        let mut changes = Vec::new();
        match &self.package {
            Ok(package) if package.sha256 != observed.code_sha256 => {
                changes.push(Change::in_place("code", &observed.code_sha256, &package.sha256))
            }
            Ok(_) => {}
            Err(e) => changes.push(Change::in_place("code", &observed.code_sha256, e)),
        }
        let fields = [
            ("architecture", &have.architecture, &want.architecture),
            ("role", &have.role, &want.role),
            ("runtime", &have.runtime, &want.runtime),
            ("handler", &have.handler, &want.handler),
        ];
        for (field, h, w) in fields {
            if h != w {
                changes.push(Change::in_place(field, h, w));
            }
        }
        if have.memory_mb != want.memory_mb {
            changes.push(Change::in_place("memoryMb", have.memory_mb.to_string(), want.memory_mb.to_string()));
        }
        if have.timeout_s != want.timeout_s {
            changes.push(Change::in_place("timeout", format!("{}s", have.timeout_s), format!("{}s", want.timeout_s)));
        }
        let (environment, _) = self.environment_now();
        changes.extend(environment_changes(&have.environment, &environment));
        changes.extend(tag_change(&self.tags, &observed.tags));
        changes
    }

    fn id(&self, observed: &Observed) -> String {
        observed.arn.clone()
    }

    fn health(&self, observed: &Observed) -> Option<String> {
        Some(match (&observed.state, &observed.last_update) {
            (Some(state), Some(update)) => format!("{state}, last update {update}"),
            (Some(state), None) => state.clone(),
            _ => "unknown".to_owned(),
        })
    }

    async fn create(&self) -> Result<(), ResourceError> {
        let package = self.package()?;
        let s = &self.settings;
        let environment = self.environment()?;
        // No client token: one attempt at a time (each uploads the package), looking before the next.
        let once = || async {
            self.client
                .create_function()
                .function_name(&self.identity.name)
                .description(format!(
                    "lakesight stack {}: scores Security Lake flows on IP Insights",
                    self.identity.stack
                ))
                .runtime(Runtime::from(s.runtime.as_str()))
                .handler(&s.handler)
                .role(&s.role)
                .code(FunctionCode::builder().zip_file(Blob::new(package.zip.as_slice())).build())
                .memory_size(s.memory_mb)
                .timeout(s.timeout_s)
                .architectures(self.architecture())
                .environment(environment.clone())
                .set_tags(Some(self.tags.clone().into_iter().collect()))
                .customize()
                .config_override(single_attempt!(aws_sdk_lambda))
                .send()
                .await
                .map(drop)
                .map_err(|e| service_error("CreateFunction", e))
        };
        // A role created moments ago may not be assumable by Lambda yet. Lambda refused it, so
        // nothing was created and the next create_once starts with a create again.
        let bound = Bound::starting_at(self.identity.poll_interval);
        propagation::retry(Service::Lambda, bound, || create_once(&once, || async { Ok(self.read().await?.is_some()) }))
            .await
    }

    async fn update(&self, observed: &Observed, changes: &[Change]) -> Result<(), ResourceError> {
        if changes.iter().any(|c| c.field == "code" || c.field == "architecture") {
            let package = self.package()?;
            self.client
                .update_function_code()
                .function_name(&self.identity.name)
                .zip_file(Blob::new(package.zip.as_slice()))
                .architectures(self.architecture())
                .send()
                .await
                .map_err(|e| service_error("UpdateFunctionCode", e))?;
            self.settle().await?;
        }
        let configured = ["role", "runtime", "handler", "memoryMb", "timeout"];
        if changes.iter().any(|c| configured.contains(&c.field.as_str()) || is_environment(c)) {
            let s = &self.settings;
            self.client
                .update_function_configuration()
                .function_name(&self.identity.name)
                .role(&s.role)
                .runtime(Runtime::from(s.runtime.as_str()))
                .handler(&s.handler)
                .memory_size(s.memory_mb)
                .timeout(s.timeout_s)
                .environment(self.environment()?)
                .send()
                .await
                .map_err(|e| service_error("UpdateFunctionConfiguration", e))?;
        }
        if changes.iter().any(|c| c.field == "tags") {
            super::tag(&self.client, &observed.arn, &self.tags).await?;
        }
        Ok(())
    }

    async fn delete(&self, _observed: &Observed) -> Result<(), ResourceError> {
        match self.client.delete_function().function_name(&self.identity.name).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(service_error("DeleteFunction", e)),
        }
    }

    async fn readiness(&self) -> Result<Readiness, ResourceError> {
        let config = self.configuration().await?;
        match (config.state(), config.last_update_status()) {
            (Some(State::Failed), _) => Err(ResourceError::Service {
                operation: "CreateFunction",
                code: "Failed".into(),
                message: config.state_reason().unwrap_or("no reason given").to_owned(),
            }),
            (_, Some(LastUpdateStatus::Failed)) => Err(update_failed(config.last_update_status_reason())),
            (Some(State::Pending), _) => Ok(self.identity.pending("Pending")),
            (_, Some(LastUpdateStatus::InProgress)) => Ok(self.identity.pending("updating")),
            _ => Ok(Readiness::Ready),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use aws_sdk_lambda::operation::create_function::CreateFunctionOutput;
    use aws_sdk_lambda::operation::get_function::{GetFunctionError, GetFunctionOutput};
    use aws_sdk_lambda::operation::get_function_configuration::GetFunctionConfigurationOutput;
    use aws_sdk_lambda::operation::update_function_code::UpdateFunctionCodeOutput;
    use aws_sdk_lambda::operation::update_function_configuration::UpdateFunctionConfigurationOutput;
    use aws_sdk_lambda::types::EnvironmentResponse;
    use aws_sdk_lambda::types::error::ResourceNotFoundException;
    use aws_smithy_mocks::{Rule, mock};

    use super::*;
    use crate::aws::mocked_client;
    use crate::aws::propagation::tests::lambda_error;
    use crate::aws::securitylake::test_rules::LAKE;
    use crate::aws::sqs::queue::{DEAD_LETTER, FINDINGS, QUEUE_URL};
    use crate::engine::{Action, Intent, Node, Outputs, Values, plan_action};
    use crate::resource::Managed;
    use crate::stack::tests::stack;

    const NAME: &str = "lakesight-demo-ipcheck";
    const DLQ_URL: &str = "https://sqs.eu-west-1.amazonaws.com/111122223333/lakesight-demo-ipcheck-dlq";
    const FINDINGS_URL: &str = "https://sqs.eu-west-1.amazonaws.com/111122223333/lakesight-demo-ipcheck-findings";

    struct Fixture {
        _dir: tempfile::TempDir,
        stack: Stack,
        sha: String,
    }

    fn fixture(extra: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ipcheck.zip");
        std::fs::File::create(&path).and_then(|mut f| f.write_all(b"PK\x05\x06 a zip")).expect("package");
        let stack = stack(&format!(
            "{LAKE}  endpoint:\n    instanceType: ml.m5.large\n  scorer:\n    package: {}\n    memoryMb: 1024\n{extra}",
            path.display()
        ));
        let sha = Package::read(&path.to_string_lossy()).expect("package").sha256;
        Fixture { _dir: dir, stack, sha }
    }

    /// Values in which the dead-letter queue, which is on by default, has published its URL.
    fn values() -> Arc<Values> {
        let values = Values::new();
        values.publish(DEAD_LETTER, Some(Outputs::new().with(QUEUE_URL, &DLQ_URL.to_owned())));
        values
    }

    /// The function as the wiring builds it: each queue the manifest declares by its URL.
    fn node_with(f: &Fixture, rules: &[&Rule], values: &Arc<Values>) -> Managed<Function> {
        let scorer = f.stack.manifest.spec.scorer.clone().expect("scorer");
        let url = |address: &str| Input::new(values, address, QUEUE_URL);
        let queues = Queues {
            findings: scorer.findings.queue.then(|| url(FINDINGS)),
            dead_letter: scorer.dead_letter_queue.then(|| url(DEAD_LETTER)),
        };
        Managed::new(Function::new(&f.stack, &scorer, mocked_client!(aws_sdk_lambda, rules), queues, None))
    }

    fn node(f: &Fixture, rules: &[&Rule]) -> Managed<Function> {
        node_with(f, rules, &values())
    }

    fn deployed(sha: String, memory: i32, endpoint: &'static str) -> Rule {
        mock!(Client::get_function).then_output(move || {
            let config = FunctionConfiguration::builder()
                .function_name(NAME)
                .function_arn(format!("arn:aws:lambda:eu-west-1:111122223333:function:{NAME}"))
                .code_sha256(&sha)
                .role("arn:aws:iam::111122223333:role/lakesight-demo-scorer")
                .memory_size(memory)
                .timeout(120)
                .architectures(LambdaArchitecture::X8664)
                .runtime(Runtime::Providedal2023)
                .handler("bootstrap")
                .state(State::Active)
                .last_update_status(LastUpdateStatus::Successful)
                .environment(
                    EnvironmentResponse::builder()
                        .variables(var::ENDPOINT, endpoint)
                        .variables(var::OBSERVE_ONLY, "false")
                        .variables(var::MAX_PAYLOAD_BYTES, "5000000")
                        .variables(var::INVOKE_CONCURRENCY, "4")
                        .variables(var::READ_CONCURRENCY, "4")
                        .variables(var::DEAD_LETTER_QUEUE_URL, DLQ_URL)
                        .build(),
                )
                .build();
            GetFunctionOutput::builder()
                .configuration(config)
                .tags("lakesight:stack", "demo")
                .tags("team", "secops")
                .build()
        })
    }

    fn missing() -> Rule {
        mock!(Client::get_function)
            .then_error(|| GetFunctionError::ResourceNotFoundException(ResourceNotFoundException::builder().build()))
    }

    fn settled() -> Rule {
        mock!(Client::get_function_configuration).then_output(|| {
            GetFunctionConfigurationOutput::builder()
                .state(State::Active)
                .last_update_status(LastUpdateStatus::Successful)
                .build()
        })
    }

    #[tokio::test]
    async fn the_function_is_created_from_the_package_with_the_scorer_settings() {
        let f = fixture("    threshold:\n      policy: fixed\n      value: 2.5\n");
        let create = mock!(Client::create_function)
            .match_requests(|r| {
                let env = r.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
                r.function_name() == Some(NAME)
                    && r.runtime() == Some(&Runtime::Providedal2023)
                    && r.handler() == Some("bootstrap")
                    && r.memory_size() == Some(1024)
                    && r.code().and_then(|c| c.zip_file()).map(|z| z.as_ref()) == Some(b"PK\x05\x06 a zip".as_slice())
                    && env.get(var::ENDPOINT).map(String::as_str) == Some("lakesight-demo-endpoint")
                    && env.get(var::THRESHOLD).map(String::as_str) == Some("2.5")
                    && env.get(var::DEAD_LETTER_QUEUE_URL).map(String::as_str) == Some(DLQ_URL)
                    && !env.contains_key(var::FINDINGS_QUEUE_URL)
                    && r.tags().and_then(|t| t.get("lakesight:stack")).map(String::as_str) == Some("demo")
            })
            .then_output(|| CreateFunctionOutput::builder().build());
        let node = node(&f, &[&missing(), &create, &settled()]);
        assert_eq!(node.observe().await.expect("observe").ownership, None);
        node.apply(Action::Create).await.expect("create");
        assert_eq!(create.num_calls(), 1);
        assert_eq!(node.readiness().await.expect("ready"), Readiness::Ready);
    }

    #[tokio::test]
    async fn a_role_lambda_cannot_assume_yet_is_waited_for_and_other_invalid_parameters_are_not() {
        let f = fixture("  timeouts:\n    pollInterval: 50ms\n");
        let not_assumable = || {
            lambda_error(
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
            )
        };
        let create = mock!(Client::create_function)
            .sequence()
            .http_response(not_assumable)
            .times(2)
            .output(|| CreateFunctionOutput::builder().build())
            .build();
        let waiting = node(&f, &[&missing(), &create, &settled()]);
        waiting.observe().await.expect("observe");
        waiting.apply(Action::Create).await.expect("created once the role is assumable");
        assert_eq!(create.num_calls(), 3);

        let invalid = mock!(Client::create_function)
            .then_http_response(|| lambda_error("InvalidParameterValueException", "Unsupported runtime: cobol"));
        let refused = node(&f, &[&missing(), &invalid]);
        refused.observe().await.expect("observe");
        refused.apply(Action::Create).await.expect_err("an invalid parameter is reported");
        assert_eq!(invalid.num_calls(), 1);
    }

    #[tokio::test]
    async fn the_same_package_and_settings_are_no_change() {
        let f = fixture("");
        let seen =
            node(&f, &[&deployed(f.sha.clone(), 1024, "lakesight-demo-endpoint")]).observe().await.expect("observe");
        assert!(seen.changes.is_empty(), "{:?}", seen.changes);
        assert_eq!(seen.health.as_deref(), Some("Active, last update Successful"));
    }

    #[tokio::test]
    async fn a_new_package_uploads_code_and_drifted_settings_are_set_back() {
        let f = fixture("");
        let code = mock!(Client::update_function_code)
            .match_requests(|r| r.function_name() == Some(NAME) && r.zip_file().is_some())
            .then_output(|| UpdateFunctionCodeOutput::builder().build());
        let config = mock!(Client::update_function_configuration)
            .match_requests(|r| {
                r.memory_size() == Some(1024)
                    && r.environment().and_then(|e| e.variables()?.get(var::ENDPOINT).cloned()).as_deref()
                        == Some("lakesight-demo-endpoint")
            })
            .then_output(|| UpdateFunctionConfigurationOutput::builder().build());
        let node = node(&f, &[&deployed("old".into(), 512, "elsewhere"), &code, &settled(), &config]);
        let seen = node.observe().await.expect("observe");
        let fields: Vec<&str> = seen.changes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, ["code", "memoryMb", "environment.LAKESIGHT_ENDPOINT"]);
        assert_eq!(
            seen.changes[2],
            Change::in_place("environment.LAKESIGHT_ENDPOINT", "elsewhere", "lakesight-demo-endpoint")
        );
        node.apply(Action::Update).await.expect("update");
        assert_eq!((code.num_calls(), config.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn an_edited_variable_and_a_removed_tag_are_drift_set_back_without_new_code() {
        let f = fixture("    threshold:\n      policy: fixed\n      value: 9\n");
        // As deployed, then changed outside lakesight: the threshold edited, a variable of
        // someone else's added, and the team tag removed.
        let sha = f.sha.clone();
        let drifted = mock!(Client::get_function).then_output(move || {
            let env = EnvironmentResponse::builder()
                .variables(var::ENDPOINT, "lakesight-demo-endpoint")
                .variables(var::THRESHOLD, "4")
                .variables(var::OBSERVE_ONLY, "false")
                .variables(var::MAX_PAYLOAD_BYTES, "5000000")
                .variables(var::INVOKE_CONCURRENCY, "4")
                .variables(var::READ_CONCURRENCY, "4")
                .variables(var::DEAD_LETTER_QUEUE_URL, DLQ_URL)
                .variables("API_TOKEN", "s3cr3t")
                .variables(var::SOURCE_EXTERNAL_ID, "ext-123")
                .build();
            let config = FunctionConfiguration::builder()
                .function_arn(format!("arn:aws:lambda:eu-west-1:111122223333:function:{NAME}"))
                .code_sha256(&sha)
                .role("arn:aws:iam::111122223333:role/lakesight-demo-scorer")
                .memory_size(1024)
                .timeout(120)
                .architectures(LambdaArchitecture::X8664)
                .runtime(Runtime::Providedal2023)
                .handler("bootstrap")
                .environment(env)
                .build();
            GetFunctionOutput::builder().configuration(config).tags("lakesight:stack", "demo").build()
        });
        let config = mock!(Client::update_function_configuration)
            .match_requests(|r| {
                let env = r.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
                env.get(var::THRESHOLD).map(String::as_str) == Some("9") && !env.contains_key("API_TOKEN")
            })
            .then_output(|| UpdateFunctionConfigurationOutput::builder().build());
        let tag = mock!(Client::tag_resource)
            .match_requests(|r| r.tags().and_then(|t| t.get("team")).map(String::as_str) == Some("secops"))
            .then_output(|| aws_sdk_lambda::operation::tag_resource::TagResourceOutput::builder().build());
        let code = mock!(Client::update_function_code).then_output(|| UpdateFunctionCodeOutput::builder().build());
        let node = node(&f, &[&drifted, &config, &tag, &code]);
        let seen = node.observe().await.expect("observe");
        assert_eq!(
            seen.changes,
            [
                Change::in_place("environment.API_TOKEN", NOT_SHOWN, UNSET),
                Change::in_place("environment.LAKESIGHT_SOURCE_EXTERNAL_ID", SECRET, UNSET),
                Change::in_place("environment.LAKESIGHT_THRESHOLD", "4", "9"),
                Change::in_place("tags", "{team=(unset)}", "{team=secops}"),
            ]
        );
        let planned = plan_action(Intent::Present, &node.observe().await.expect("observe"), None);
        let reason = planned.expect("planned").1;
        assert!(reason.contains("environment.LAKESIGHT_THRESHOLD") && reason.contains("tags"), "{reason}");
        node.apply(Action::Update).await.expect("update");
        assert_eq!((config.num_calls(), tag.num_calls(), code.num_calls()), (1, 1, 0));
    }

    #[tokio::test]
    async fn a_failed_update_reports_lambdas_reason() {
        let f = fixture("");
        let failed = mock!(Client::get_function_configuration).then_output(|| {
            GetFunctionConfigurationOutput::builder()
                .state(State::Active)
                .last_update_status(LastUpdateStatus::Failed)
                .last_update_status_reason("The role cannot be assumed")
                .build()
        });
        let err = node(&f, &[&failed]).readiness().await.expect_err("failed");
        assert!(err.to_string().contains("The role cannot be assumed"), "{err}");
    }

    #[test]
    fn a_calibrated_threshold_leaves_the_scorer_observing_until_calibration_exists() {
        let f = fixture("    findings:\n      queue: true\n");
        let scorer = f.stack.manifest.spec.scorer.clone().expect("scorer");
        let config = scorer_config(&f.stack, &scorer);
        assert_eq!(config.threshold, None);
        assert!(!config.raises_findings());
    }

    #[tokio::test]
    async fn remote_pairing_reaches_the_scorer_as_an_environment_update() {
        let f = fixture("  features:\n    peer: remote\n");
        let scorer = f.stack.manifest.spec.scorer.clone().expect("scorer");
        assert_eq!(scorer_config(&f.stack, &scorer).peer, crate::scorer::Peer::Remote);
        let seen =
            node(&f, &[&deployed(f.sha.clone(), 1024, "lakesight-demo-endpoint")]).observe().await.expect("observe");
        assert_eq!(seen.changes, [Change::in_place("environment.LAKESIGHT_PEER", UNSET, "remote")]);
    }

    #[tokio::test]
    async fn a_new_findings_queue_is_an_environment_update_known_after_apply() {
        let f = fixture("    findings:\n      queue: true\n");
        let values = values();
        let config = mock!(Client::update_function_configuration)
            .match_requests(|r| {
                let env = r.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
                env.get(var::FINDINGS_QUEUE_URL).map(String::as_str) == Some(FINDINGS_URL)
                    && env.get(var::DEAD_LETTER_QUEUE_URL).map(String::as_str) == Some(DLQ_URL)
            })
            .then_output(|| UpdateFunctionConfigurationOutput::builder().build());
        let node = node_with(&f, &[&deployed(f.sha.clone(), 1024, "lakesight-demo-endpoint"), &config], &values);

        let planned = node.observe().await.expect("observe");
        assert_eq!(planned.changes.len(), 1, "{:?}", planned.changes);
        let field = format!("environment.{}", var::FINDINGS_QUEUE_URL);
        assert_eq!(planned.changes[0], Change::in_place(&field, UNSET, AFTER_APPLY));
        let refused = node.apply(Action::Update).await.expect_err("no URL to send yet");
        assert!(refused.to_string().contains(var::FINDINGS_QUEUE_URL), "{refused}");
        assert_eq!(config.num_calls(), 0);

        values.publish(FINDINGS, Some(Outputs::new().with(QUEUE_URL, &FINDINGS_URL.to_owned())));
        let seen = node.observe().await.expect("observe");
        assert_eq!(seen.changes[0], Change::in_place(&field, UNSET, FINDINGS_URL));
        node.apply(Action::Update).await.expect("update");
        assert_eq!(config.num_calls(), 1);
    }

    #[tokio::test]
    async fn queue_names_of_an_earlier_environment_are_replaced_by_urls() {
        let f = fixture("");
        let old = mock!(Client::get_function).then_output(|| {
            let env = EnvironmentResponse::builder()
                .variables(var::ENDPOINT, "lakesight-demo-endpoint")
                .variables(var::OBSERVE_ONLY, "false")
                .variables(var::MAX_PAYLOAD_BYTES, "5000000")
                .variables(var::INVOKE_CONCURRENCY, "4")
                .variables(var::READ_CONCURRENCY, "4")
                .variables("LAKESIGHT_DEAD_LETTER_QUEUE", "lakesight-demo-ipcheck-dlq")
                .build();
            GetFunctionOutput::builder()
                .configuration(FunctionConfiguration::builder().environment(env).build())
                .tags("lakesight:stack", "demo")
                .build()
        });
        let seen = node(&f, &[&old]).observe().await.expect("observe");
        let environment: Vec<&Change> = seen.changes.iter().filter(|c| is_environment(c)).collect();
        assert_eq!(
            environment,
            [
                &Change::in_place("environment.LAKESIGHT_DEAD_LETTER_QUEUE", "lakesight-demo-ipcheck-dlq", UNSET),
                &Change::in_place(format!("environment.{}", var::DEAD_LETTER_QUEUE_URL), UNSET, DLQ_URL),
            ]
        );
    }
}
