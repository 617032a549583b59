//! Shared test harness: an emulator per test (or the endpoint in `AWS_ENDPOINT_URL`), the real
//! `lakesight` binary, and SDK clients for independent checks.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::Once;

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

    /// Sets test behaviour (pending polls, latency, conflicts) on the bundled emulator.
    pub fn configure(&self, body: &str) {
        assert!(self.is_bundled(), "only the bundled emulator takes behaviour settings");
        let out = Command::new(repo().join("localstack/.venv/bin/python"))
            .args(["-c", "import sys,urllib.request as u; u.urlopen(u.Request(sys.argv[1], data=sys.argv[2].encode(), method='POST', headers={'Content-Type':'application/json'}))"])
            .arg(format!("{}/lakesight-emulator/config", self.endpoint))
            .arg(body)
            .output()
            .expect("configure emulator");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    /// The real binary, pointed at this emulator, never at a real account.
    pub fn lakesight(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_lakesight"));
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

    pub async fn iam(&self) -> aws_sdk_iam::Client {
        aws_sdk_iam::Client::new(&self.sdk().await)
    }

    pub async fn sagemaker(&self) -> aws_sdk_sagemaker::Client {
        aws_sdk_sagemaker::Client::new(&self.sdk().await)
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

    /// Every InvokeEndpoint call the bundled emulator served: `{"endpoint", "bytes", "lines"}`.
    pub fn invocations(&self) -> Vec<serde_json::Value> {
        let out = Command::new(repo().join("localstack/.venv/bin/python"))
            .args(["-c", "import sys,urllib.request as u; print(u.urlopen(sys.argv[1]).read().decode())"])
            .arg(format!("{}/lakesight-emulator/invocations", self.endpoint))
            .output()
            .expect("read the emulator's invocations");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let body: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
        body["invocations"].as_array().cloned().unwrap_or_default()
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
