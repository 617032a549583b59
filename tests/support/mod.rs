//! Shared test harness: an emulator per test (or the endpoint in `AWS_ENDPOINT_URL`), the real
//! `lakesight` binary, and SDK clients for independent checks.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::Once;

use lakesight::synthetic::lake::Written;
use lakesight::synthetic::{self, Day, Lake, LakeSpec, OcsfVersion, Part};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running emulator. Dropping it stops it; should the test process die instead, the emulator
/// sees its standard input close and exits by itself.
pub struct Emulator {
    pub endpoint: String,
    child: Option<(Child, ChildStdin)>,
}

static INSTALL: Once = Once::new();

/// The `lakesight` under test, which is also the engine the emulator's SageMaker trains and serves
/// with: this build's own, unless `LAKESIGHT_BIN` names a copy (a target directory that other
/// builds share can replace this one's while tests run).
pub fn binary() -> String {
    std::env::var("LAKESIGHT_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_lakesight").to_owned())
}

impl Emulator {
    /// Starts a private emulator, unless `AWS_ENDPOINT_URL` names one to share.
    pub fn start() -> Emulator {
        if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
            return Emulator { endpoint, child: None };
        }
        INSTALL.call_once(|| {
            let status = Command::new(repo().join("localstack/install")).status().expect("run localstack/install");
            assert!(status.success(), "localstack/install failed");
        });
        let mut child = Command::new(repo().join("localstack/.venv/bin/python"))
            .arg(repo().join("localstack/emulator.py"))
            .args(["--port", "0", "--exit-with-stdin"])
            .env("LAKESIGHT_BIN", binary())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the emulator");
        let stdin = child.stdin.take().expect("emulator stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("emulator stdout"))
            .read_line(&mut line)
            .expect("read emulator banner");
        let endpoint = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("unexpected emulator banner {line:?}"))
            .to_owned();
        Emulator { endpoint, child: Some((child, stdin)) }
    }

    /// Whether this is the bundled emulator, whose test behaviour can be configured.
    pub fn is_bundled(&self) -> bool {
        self.child.is_some()
    }

    /// Sets test behaviour (pending polls, latency, conflicts, faults) on the bundled emulator.
    pub fn configure(&self, body: &str) {
        self.control("config", Some(body));
    }

    /// Forgets every resource and setting of the bundled emulator.
    pub fn reset(&self) {
        self.control("reset", Some("{}"));
    }

    /// The AWS calls counted since the last configuration, and whether an answer is held.
    pub fn faults(&self) -> serde_json::Value {
        self.control("faults", None)
    }

    /// A request to the bundled emulator's control API: POST with `body`, or GET.
    fn control(&self, path: &str, body: Option<&str>) -> serde_json::Value {
        assert!(self.is_bundled(), "only the bundled emulator has a control API");
        let out = Command::new(repo().join("localstack/.venv/bin/python"))
            .args(["-c", "import sys,urllib.request as u; d=sys.argv[2].encode() if len(sys.argv)>2 else None; print(u.urlopen(u.Request(sys.argv[1], data=d, method='POST' if d else 'GET', headers={'Content-Type':'application/json'})).read().decode())"])
            .arg(format!("{}/lakesight-emulator/{path}", self.endpoint))
            .args(body)
            .output()
            .expect("reach the emulator's control API");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    }

    /// Removes `column` from a Glue table, as a schema change made outside lakesight would. It
    /// goes through boto3 because lakesight itself never calls Glue.
    pub fn drop_glue_column(&self, database: &str, table: &str, column: &str) {
        let script = "import sys, boto3\n\
            glue = boto3.client('glue', endpoint_url=sys.argv[1], region_name='us-east-1', \
            aws_access_key_id='test', aws_secret_access_key='test')\n\
            t = glue.get_table(DatabaseName=sys.argv[2], Name=sys.argv[3])['Table']\n\
            sd = t['StorageDescriptor']\n\
            sd['Columns'] = [c for c in sd['Columns'] if c['Name'] != sys.argv[4]]\n\
            keep = ('Name', 'StorageDescriptor', 'PartitionKeys', 'TableType', 'Parameters')\n\
            glue.update_table(DatabaseName=sys.argv[2], TableInput={k: t[k] for k in keep if k in t})\n";
        let out = Command::new(repo().join("localstack/.venv/bin/python"))
            .args(["-c", script, &self.endpoint, database, table, column])
            .output()
            .expect("run boto3");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// The real binary, pointed at this emulator, never at a real account.
    pub fn lakesight(&self) -> Command {
        let mut cmd = Command::new(binary());
        cmd.env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_PROFILE")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .stdin(Stdio::null());
        cmd
    }

    /// Starts `lakesight <args> -f <file>` without waiting for it.
    pub fn spawn(&self, args: &[&str], file: &Path) -> Child {
        self.lakesight()
            .args(args)
            .arg("-f")
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lakesight")
    }

    /// Runs `lakesight <args> -f <file>` to completion.
    pub fn run(&self, args: &[&str], file: &Path) -> Run {
        Run::of(self.lakesight().args(args).arg("-f").arg(file))
    }

    pub async fn sdk(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_s3::config::Credentials::new("test", "test", None, None, "tests"))
            .load()
            .await
    }

    pub async fn s3(&self) -> aws_sdk_s3::Client {
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&self.sdk().await).force_path_style(true).build(),
        )
    }

    /// Writes a small synthetic Security Lake (source version 2.0 unless `versions` says
    /// otherwise), ending today, into the lake bucket the emulator's Security Lake made in
    /// us-east-1, with its ground truth at `synthetic/ground-truth.json` beside it.
    pub async fn seed_lake(&self, part: Part, versions: &[OcsfVersion]) -> Lake {
        let spec = LakeSpec {
            instances: 6,
            flows_per_day: 2_000,
            versions: versions.to_vec(),
            ..LakeSpec::new(7, Day::today())
        };
        let lake = Lake::new(spec);
        self.write_lake(&lake, part).await;
        lake
    }

    /// Writes `part` of `lake` into the lake bucket, as [`Emulator::seed_lake`] does.
    pub async fn write_lake(&self, lake: &Lake, part: Part) -> Written {
        let client = self.s3().await;
        let bucket = synthetic::s3::lake_bucket(&client, "us-east-1").await.expect("the lake's bucket");
        let truth = (bucket.as_str(), "synthetic/ground-truth.json");
        synthetic::s3::write(&client, lake, part, &bucket, truth).await.expect("seed the lake")
    }

    /// Applies `file` once, which makes the data lake and its sources and then waits for data,
    /// and fills the lake with every day but the last: a stack's first apply on a new account.
    pub async fn apply_and_seed(&self, file: &Path) -> Lake {
        let first = self.run(&["apply", "--auto-approve"], file);
        first.expect_code(0);
        assert!(first.stdout.contains("waiting for data: 0 rows, 0 entities"), "an empty lake: {}", first.stdout);
        self.seed_lake(Part::History, &[OcsfVersion::V2]).await
    }

    pub async fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk().await)
    }

    pub async fn sagemaker(&self) -> aws_sdk_sagemaker::Client {
        aws_sdk_sagemaker::Client::new(&self.sdk().await)
    }

    /// The dot products `endpoint` gives `pairs` (`(entity, ip)`), asked for as any client would,
    /// so that a test can say which pairs the deployed model flags.
    pub async fn endpoint_scores(&self, endpoint: &str, pairs: &[(String, String)]) -> Vec<f64> {
        let client = aws_sdk_sagemakerruntime::Client::new(&self.sdk().await);
        let mut scores = Vec::with_capacity(pairs.len());
        for chunk in pairs.chunks(10_000) {
            let body: String = chunk.iter().map(|(e, ip)| format!("{e},{ip}\n")).collect();
            let out = client
                .invoke_endpoint()
                .endpoint_name(endpoint)
                .content_type("text/csv")
                .accept("application/json")
                .body(body.into_bytes().into())
                .send()
                .await
                .expect("InvokeEndpoint");
            let answer: serde_json::Value =
                serde_json::from_slice(out.body().map(|b| b.as_ref()).unwrap_or_default()).expect("JSON");
            let predictions = answer["predictions"].as_array().expect("predictions");
            scores.extend(predictions.iter().map(|p| p["dot_product"].as_f64().expect("dot_product")));
        }
        assert_eq!(scores.len(), pairs.len(), "one dot product per pair");
        scores
    }

    pub async fn athena(&self) -> aws_sdk_athena::Client {
        aws_sdk_athena::Client::new(&self.sdk().await)
    }

    pub async fn securitylake(&self) -> aws_sdk_securitylake::Client {
        aws_sdk_securitylake::Client::new(&self.sdk().await)
    }

    pub async fn lakeformation(&self) -> aws_sdk_lakeformation::Client {
        aws_sdk_lakeformation::Client::new(&self.sdk().await)
    }

    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk().await)
    }

    pub async fn lambda(&self) -> aws_sdk_lambda::Client {
        aws_sdk_lambda::Client::new(&self.sdk().await)
    }

    /// The log of function `name` as the emulator's Lambda keeps it: its output and Lambda's
    /// START, END and REPORT lines.
    pub fn function_log(&self, name: &str) -> Vec<String> {
        let log = self.control(&format!("lambda/logs?function={name}"), None);
        log["lines"]
            .as_array()
            .map(|l| l.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    }

    /// Every InvokeEndpoint call the bundled emulator served: `{"endpoint", "bytes", "lines"}`.
    pub fn invocations(&self) -> Vec<serde_json::Value> {
        self.control("invocations", None)["invocations"].as_array().cloned().unwrap_or_default()
    }

    /// The real `ipcheck` binary, run once on an SQS event file with `vars` as its
    /// environment, against this emulator.
    pub fn ipcheck<'a>(&self, event: &Path, vars: impl IntoIterator<Item = (&'a String, &'a String)>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ipcheck"));
        cmd.env_clear()
            .envs(vars)
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .arg("--event")
            .arg(event)
            .stdin(Stdio::null());
        Run::of(&mut cmd)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some((mut child, stdin)) = self.child.take() {
            drop(stdin);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A finished command, with helpers that print everything when an assertion fails.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(cmd: &mut Command) -> Run {
        let Output { status, stdout, stderr } = cmd.output().expect("run lakesight");
        Run {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr);
        self
    }
}

/// A zip archive with no entries: a stand-in scorer package, which the emulator stores but never runs.
pub const EMPTY_ZIP: &[u8] = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// Writes a manifest for a stack into a temporary directory.
pub fn manifest(dir: &Path, name: &str, extra_spec: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let text = format!(
        "apiVersion: lakesight.io/v1\nkind: Stack\nmetadata:\n  name: {name}\n  tags:\n    team: secops\nspec:\n  region: us-east-1\n{extra_spec}"
    );
    std::fs::write(&path, text).expect("write manifest");
    path
}

/// What exists in the emulator carrying the owner tag of `stack`, found without lakesight's code.
pub async fn owned_by(emulator: &Emulator, stack: &str) -> Vec<String> {
    let mut owned = Vec::new();
    let s3 = emulator.s3().await;
    for bucket in s3.list_buckets().send().await.expect("ListBuckets").buckets() {
        let name = bucket.name().unwrap_or_default();
        let tags = s3.get_bucket_tagging().bucket(name).send().await;
        if tags.is_ok_and(|t| t.tag_set().iter().any(|t| t.key() == "lakesight:stack" && t.value() == stack)) {
            owned.push(format!("bucket {name}"));
        }
    }
    let lambda = emulator.lambda().await;
    for function in lambda.list_functions().send().await.expect("ListFunctions").functions() {
        let arn = function.function_arn().unwrap_or_default();
        let tags = lambda.list_tags().resource(arn).send().await.expect("ListTags");
        if tags.tags().and_then(|t| t.get("lakesight:stack")).is_some_and(|v| v == stack) {
            owned.push(format!("function {}", function.function_name().unwrap_or_default()));
        }
    }
    for mapping in lambda.list_event_source_mappings().send().await.expect("mappings").event_source_mappings() {
        let arn = mapping.event_source_mapping_arn().unwrap_or_default();
        let tags = lambda.list_tags().resource(arn).send().await.expect("ListTags");
        if tags.tags().and_then(|t| t.get("lakesight:stack")).is_some_and(|v| v == stack) {
            owned.push(format!("event source mapping {}", mapping.uuid().unwrap_or_default()));
        }
    }
    let sqs = emulator.sqs().await;
    for url in sqs.list_queues().send().await.expect("ListQueues").queue_urls() {
        let tags = sqs.list_queue_tags().queue_url(url).send().await.expect("ListQueueTags");
        if tags.tags().and_then(|t| t.get("lakesight:stack")).is_some_and(|v| v == stack) {
            owned.push(format!("queue {url}"));
        }
    }
    let lake = emulator.securitylake().await;
    for data_lake in lake.list_data_lakes().send().await.expect("ListDataLakes").data_lakes() {
        let tags = lake.list_tags_for_resource().resource_arn(data_lake.data_lake_arn()).send().await.expect("tags");
        if tags.tags().iter().any(|t| t.key() == "lakesight:stack" && t.value() == stack) {
            owned.push(format!("data lake {}", data_lake.region()));
        }
    }
    for subscriber in lake.list_subscribers().send().await.expect("ListSubscribers").subscribers() {
        let tags = lake.list_tags_for_resource().resource_arn(subscriber.subscriber_arn()).send().await.expect("tags");
        if tags.tags().iter().any(|t| t.key() == "lakesight:stack" && t.value() == stack) {
            owned.push(format!("subscriber {}", subscriber.subscriber_name()));
        }
    }
    let iam = emulator.iam().await;
    for role in iam.list_roles().send().await.expect("ListRoles").roles() {
        let tags = iam.list_role_tags().role_name(role.role_name()).send().await.expect("ListRoleTags");
        if tags.tags().iter().any(|t| t.key() == "lakesight:stack" && t.value() == stack) {
            owned.push(format!("role {}", role.role_name()));
        }
    }
    owned
}
