//! The deployed scorer as the report finds it, from the function's own configuration rather than
//! from naming rules: its environment names its findings queue and threshold, and its event source
//! mappings name the queues it reads. Everything here is read-only, findings included.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_sqs::types::{ChangeMessageVisibilityBatchRequestEntry, QueueAttributeName};

use super::{Finding, Outcome, Scored, Truth};
use crate::manifest::{Manifest, ThresholdPolicy};
use crate::stack::scorer_function_name;
use crate::synthetic::lake::GROUND_TRUTH;

/// How long the report keeps the findings it reads out of sight: long enough to page through
/// the queue, after which it hands them back at once.
const READ_VISIBILITY: i32 = 120;

/// The scorer function and the queues around it.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub function: String,
    /// `LAKESIGHT_THRESHOLD`: what the function compares `-dot_product` with.
    pub threshold: Option<f64>,
    pub findings_queue: Option<String>,
    /// The URLs of the queues its event source mappings read: the subscriber's.
    pub sources: Vec<String>,
}

impl Deployed {
    pub async fn find(sdk: &SdkConfig, function: &str) -> Result<Deployed, String> {
        let lambda = aws_sdk_lambda::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let out = lambda.get_function_configuration().function_name(function).send().await.map_err(|e| {
            format!("GetFunctionConfiguration {function}: {}", aws_sdk_lambda::error::DisplayErrorContext(&e))
        })?;
        let vars = out.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
        let threshold = match vars.get("LAKESIGHT_THRESHOLD") {
            Some(t) => Some(t.parse().map_err(|_| format!("{function} has LAKESIGHT_THRESHOLD={t}, not a number"))?),
            None => None,
        };
        let mappings = lambda
            .list_event_source_mappings()
            .function_name(function)
            .send()
            .await
            .map_err(|e| format!("ListEventSourceMappings: {}", aws_sdk_lambda::error::DisplayErrorContext(&e)))?;
        let mut sources = Vec::new();
        for arn in mappings.event_source_mappings().iter().filter_map(|m| m.event_source_arn()) {
            sources.push(queue_url(&sqs, arn).await?);
        }
        Ok(Deployed {
            function: function.to_owned(),
            threshold,
            findings_queue: vars.get("LAKESIGHT_FINDINGS_QUEUE_URL").filter(|u| !u.is_empty()).cloned(),
            sources,
        })
    }

    /// Waits until every queue the function reads is empty with nothing in flight. The
    /// emulator's Lambda deletes a batch only once the function has answered, and a message
    /// whose invocation failed comes back after its visibility timeout, so an empty queue with
    /// nothing in flight means every notification so far has been handled. Security Lake's
    /// notification is sent as an object is written, so this is complete once the writer exits.
    pub async fn drained(&self, sdk: &SdkConfig, patience: Duration) -> Result<(), String> {
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let start = Instant::now();
        let mut said = Instant::now();
        loop {
            let (mut queued, mut in_flight) = (0, 0);
            for url in &self.sources {
                let (q, f) = depth(&sqs, url).await?;
                queued += q;
                in_flight += f;
            }
            if queued + in_flight == 0 {
                return Ok(());
            }
            if start.elapsed() > patience {
                return Err(format!(
                    "{} still has {queued} notifications queued and {in_flight} in flight after {}s",
                    self.function,
                    patience.as_secs()
                ));
            }
            if said.elapsed() > Duration::from_secs(15) {
                eprintln!("waiting for {}: {queued} notifications queued, {in_flight} in flight", self.function);
                said = Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every finding on the findings queue, read without consuming it: each message is received
    /// once (it is then out of sight) and made visible again when the queue is exhausted, so the
    /// findings stay for whatever reads them next.
    pub async fn findings(&self, sdk: &SdkConfig) -> Result<Vec<Finding>, String> {
        let url = self.findings_queue.as_ref().ok_or(format!(
            "{} sends no findings to a queue: the report reads them there (scorer.findings.queue: true)",
            self.function
        ))?;
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let call = |e: &dyn std::fmt::Display| format!("findings queue: {e}");
        let (mut findings, mut receipts) = (Vec::new(), Vec::new());
        loop {
            let out = sqs
                .receive_message()
                .queue_url(url)
                .max_number_of_messages(10)
                .visibility_timeout(READ_VISIBILITY)
                .send()
                .await
                .map_err(|e| call(&aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
            if out.messages().is_empty() {
                break;
            }
            for m in out.messages() {
                let body = m.body().unwrap_or_default();
                findings.push(serde_json::from_str(body).map_err(|e| call(&format!("{e}: {body}")))?);
                receipts.push(m.receipt_handle().unwrap_or_default().to_owned());
            }
        }
        for chunk in receipts.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(r)
                        .visibility_timeout(0)
                        .build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| call(&e))?;
            sqs.change_message_visibility_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| call(&aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
        }
        Ok(findings)
    }

    /// The scorer's counts from its log. The runtime writes its REPORT line once the function
    /// has answered and the scorer's summary line comes through its output a moment later, so
    /// this waits, briefly, until there is a summary for every invocation that started.
    pub async fn scored(&self, sdk: &SdkConfig) -> Result<Scored, String> {
        let endpoint = sdk.endpoint_url().ok_or(
            "the report reads the function's log from the bundled emulator's control API: set AWS_ENDPOINT_URL",
        )?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = function_log(endpoint, &self.function)?;
            let scored = Scored::from_log(log.iter().map(String::as_str));
            let started = log.iter().filter(|l| l.starts_with("START ")).count();
            if scored.invocations >= started || Instant::now() > deadline {
                return Ok(scored);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Waits for the scorer to handle every notification, then holds its findings against the
/// ground truth at the manifest's threshold. `truth` is the ground truth's S3 URL; by default
/// the one `lakesight-data` writes beside the lake.
pub async fn report(
    sdk: &SdkConfig,
    manifest: &Manifest,
    truth: Option<&str>,
    patience: Duration,
) -> Result<Outcome, String> {
    let spec = &manifest.spec;
    let threshold = spec
        .scorer
        .as_ref()
        .map(|s| &s.threshold)
        .filter(|t| t.policy == ThresholdPolicy::Fixed)
        .and_then(|t| t.value)
        .ok_or("the report needs a scorer with threshold.policy: fixed and its value")?;
    let peer = spec.features.as_ref().map(|f| f.peer).unwrap_or_default();
    let deployed = Deployed::find(sdk, &scorer_function_name(&manifest.metadata.name)).await?;
    if deployed.threshold != Some(threshold) {
        return Err(format!(
            "{} runs with threshold {:?}, the manifest says {threshold}: apply it first",
            deployed.function, deployed.threshold
        ));
    }
    deployed.drained(sdk, patience).await?;
    let scored = deployed.scored(sdk).await?;
    let findings = deployed.findings(sdk).await?;
    let region = spec
        .region
        .clone()
        .or_else(|| sdk.region().map(ToString::to_string))
        .ok_or("no region: set spec.region or AWS_REGION")?;
    let truth = Truth::from_json(&ground_truth(sdk, &region, truth).await?, peer)?;
    Ok(Outcome::new(&truth, &findings, scored, threshold))
}

/// The ground truth, from `url` or from beside the lake in `region`.
async fn ground_truth(sdk: &SdkConfig, region: &str, url: Option<&str>) -> Result<serde_json::Value, String> {
    let s3 = crate::synthetic::s3::client(sdk);
    let (bucket, key) = match url {
        Some(url) => {
            let (bucket, key) = url
                .strip_prefix("s3://")
                .and_then(|rest| rest.split_once('/'))
                .ok_or(format!("the ground truth must be s3://bucket/key: {url}"))?;
            (bucket.to_owned(), key.to_owned())
        }
        None => (
            crate::synthetic::s3::lake_bucket(&s3, region).await.map_err(|e| e.to_string())?,
            format!("synthetic/{GROUND_TRUTH}"),
        ),
    };
    let out = s3.get_object().bucket(&bucket).key(&key).send().await.map_err(|e| {
        format!(
            "s3://{bucket}/{key}: {}: write the lake with lakesight-data first",
            aws_sdk_s3::error::DisplayErrorContext(&e)
        )
    })?;
    let bytes = out.body.collect().await.map_err(|e| format!("s3://{bucket}/{key}: {e}"))?.into_bytes();
    serde_json::from_slice(&bytes).map_err(|e| format!("s3://{bucket}/{key}: {e}"))
}

/// The URL of the queue an SQS ARN names.
async fn queue_url(sqs: &aws_sdk_sqs::Client, arn: &str) -> Result<String, String> {
    let mut parts = arn.rsplitn(3, ':');
    let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
        return Err(format!("not an SQS queue ARN: {arn}"));
    };
    let out = sqs
        .get_queue_url()
        .queue_name(name)
        .queue_owner_aws_account_id(account)
        .send()
        .await
        .map_err(|e| format!("GetQueueUrl {name}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    out.queue_url().map(str::to_owned).ok_or(format!("no URL for {arn}"))
}

/// Messages waiting and in flight (received, not yet deleted) on a queue.
async fn depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<(u64, u64), String> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| format!("GetQueueAttributes {url}: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
    let attribute = |name| out.attributes().and_then(|a| a.get(&name)).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    Ok((
        attribute(QueueAttributeName::ApproximateNumberOfMessages),
        attribute(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    ))
}

/// The function's log lines from the bundled emulator's control API
/// (`GET /lakesight-emulator/lambda/logs?function=NAME`). The emulator serves plain HTTP on a
/// local port, so one HTTP/1.0 request over a socket does, without an HTTP client crate.
pub fn function_log(endpoint: &str, function: &str) -> Result<Vec<String>, String> {
    let authority = endpoint
        .strip_prefix("http://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| !a.contains('/'))
        .ok_or(format!("the emulator's endpoint must be http://host:port, not {endpoint}"))?;
    let name = percent_encoding::utf8_percent_encode(function, percent_encoding::NON_ALPHANUMERIC);
    let fail = |e: &dyn std::fmt::Display| format!("the emulator's log of {function} at {endpoint}: {e}");
    let mut stream = TcpStream::connect(authority).map_err(|e| fail(&e))?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| fail(&e))?;
    write!(stream, "GET /lakesight-emulator/lambda/logs?function={name} HTTP/1.0\r\nHost: {authority}\r\n\r\n")
        .map_err(|e| fail(&e))?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(|e| fail(&e))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| fail(&"no HTTP response"))?;
    if head.split_whitespace().nth(1) != Some("200") {
        return Err(fail(&head.lines().next().unwrap_or_default()));
    }
    let value: serde_json::Value = serde_json::from_str(body).map_err(|e| fail(&e))?;
    Ok(value["lines"].as_array().into_iter().flatten().filter_map(|l| l.as_str().map(str::to_owned)).collect())
}
