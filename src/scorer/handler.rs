//! One invocation: SQS batch in, partial-batch response out.
//!
//! Pairs are deduplicated across the whole batch, so a pair seen in ten objects is scored once.
//! Each pair remembers the messages it came from: when its chunk cannot be scored, exactly those
//! messages are reported in `batchItemFailures` and come back later. A message that can never
//! succeed (a body that is not a notification, an object that is not OCSF Parquet or is gone)
//! goes to the stack's dead-letter queue instead of blocking its queue.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream;
use serde::Serialize;

use super::batch::{Batch, Failure, Message};
use super::config::Config;
use super::event::ObjectRef;
use super::extract::{self, ObjectContext};
use super::findings::{self, Finding, Kind, Origin};
use super::invoke;
use super::pairs::{Pair, PairTable, Rejected};
use super::payload;

/// The clients the scorer uses, built once per execution environment.
#[derive(Clone, Debug)]
pub struct Clients {
    /// Reads the lake: with the function's role, or with the subscriber role it assumed.
    pub s3: aws_sdk_s3::Client,
    pub runtime: aws_sdk_sagemakerruntime::Client,
    pub sqs: aws_sdk_sqs::Client,
}

pub struct Scorer {
    config: Config,
    clients: Clients,
}

/// What an invocation did, for its summary log line and for tests.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub messages: usize,
    pub skipped: usize,
    pub objects: usize,
    pub rows: u64,
    pub rejected: Rejected,
    pub distinct_pairs: usize,
    pub requests: usize,
    pub scored: usize,
    #[serde(skip)]
    pub findings: Vec<Finding>,
    pub finding_count: usize,
    /// Message ids left on the queue to be retried.
    pub retried: Vec<String>,
    /// Message ids moved to the dead-letter queue.
    pub dead_lettered: Vec<String>,
}

impl Scorer {
    pub fn new(config: Config, clients: Clients) -> Scorer {
        Scorer { config, clients }
    }

    pub async fn handle(&self, event: &SqsEvent) -> (SqsBatchResponse, Report) {
        let mut batch = Batch::of(event);
        let mut report = Report {
            messages: batch.messages.len(),
            skipped: batch.skipped,
            objects: batch.objects.len(),
            ..Report::default()
        };
        let (table, contexts) = self.read_objects(&mut batch).await;
        report.rows = table.rows();
        report.rejected = table.rejected();
        let pairs = table.into_pairs();
        report.distinct_pairs = pairs.len();
        self.score(&pairs, &contexts, &mut batch, &mut report).await;
        findings::log(&report.findings);
        report.finding_count = report.findings.iter().filter(|f| f.kind == Kind::Finding).count();
        if let Err(e) = self.forward_findings(&report.findings).await {
            tracing::error!(error = %e, "findings could not be queued; their messages will be retried");
            let failure = Failure::Transient(e);
            for f in &report.findings {
                batch.fail_object_shown_as(&f.object, &failure);
            }
        }
        let response = self.respond(batch, &mut report).await;
        (response, report)
    }

    /// Scores the distinct pairs and keeps what is to be reported: findings, or every score
    /// when no findings are raised. A request that fails fails the messages behind its pairs.
    async fn score(&self, pairs: &[Pair], contexts: &[ObjectContext], batch: &mut Batch<'_>, report: &mut Report) {
        let chunks = payload::chunks(pairs, self.config.max_payload_bytes);
        report.requests = chunks.len();
        let scored =
            invoke::score_chunks(&self.clients.runtime, &self.config.endpoint, &chunks, self.config.invoke_concurrency)
                .await;
        for outcome in scored {
            let range = chunks[outcome.chunk].pairs.clone();
            let scores = match outcome.scores {
                Ok(scores) => scores,
                Err(e) => {
                    tracing::error!(error = %e, pairs = range.len(), "scoring failed");
                    let failure = Failure::Transient(e.to_string());
                    for pair in &pairs[range] {
                        for s in &pair.seen.sources {
                            batch.fail_object(*s as usize, &failure);
                        }
                    }
                    continue;
                }
            };
            report.scored += scores.values.len();
            let threshold = self.config.threshold_for(scores.variant.as_deref());
            for (pair, score) in pairs[range].iter().zip(scores.values) {
                let kind = match threshold {
                    _ if self.config.observe_only => Kind::Score,
                    None => Kind::Score,
                    Some(t) if score > t => Kind::Finding,
                    Some(_) => continue,
                };
                let first = pair.seen.sources[0] as usize;
                let origin = Origin {
                    object: &batch.objects[first].1,
                    context: &contexts[first],
                    endpoint: &self.config.endpoint,
                    model_generation: scores.variant.as_deref(),
                };
                report.findings.push(Finding::new(kind, pair, score, threshold, &origin));
            }
        }
    }

    /// Dead-letters the messages that can never succeed and reports the rest for retry.
    async fn respond(&self, batch: Batch<'_>, report: &mut Report) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for (m, failure) in batch.failures {
            let message = &batch.messages[m];
            match failure {
                Failure::Permanent(reason) => match self.dead_letter(message, &reason).await {
                    Ok(true) => {
                        tracing::warn!(message = message.id, %reason, "dead-lettered");
                        report.dead_lettered.push(message.id.to_owned());
                        continue;
                    }
                    Ok(false) => {
                        tracing::warn!(message = message.id, %reason, "permanent failure, no dead-letter queue")
                    }
                    Err(e) => tracing::error!(message = message.id, %reason, error = %e, "dead-lettering failed"),
                },
                Failure::Transient(reason) => tracing::warn!(message = message.id, %reason, "will be retried"),
            }
            let mut item = BatchItemFailure::default();
            item.item_identifier = message.id.to_owned();
            response.batch_item_failures.push(item);
            report.retried.push(message.id.to_owned());
        }
        response
    }

    /// Reads every object, a few at a time, decoding off the async workers.
    async fn read_objects(&self, batch: &mut Batch<'_>) -> (PairTable, Vec<ObjectContext>) {
        let reads = stream::iter(batch.objects.iter().enumerate())
            .map(|(source, (_, object))| async move { (source, self.read_object(object, source as u32).await) })
            .buffer_unordered(self.config.read_concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        let mut table = PairTable::default();
        let mut contexts = vec![ObjectContext::default(); batch.objects.len()];
        for (source, read) in reads {
            match read {
                Ok((pairs, context)) => {
                    table.merge(pairs);
                    contexts[source] = context;
                }
                Err(failure) => {
                    tracing::error!(object = %batch.objects[source].1, ?failure, "object not read");
                    batch.fail_object(source, &failure);
                }
            }
        }
        (table, contexts)
    }

    async fn read_object(&self, object: &ObjectRef, source: u32) -> Result<(PairTable, ObjectContext), Failure> {
        let out = self.clients.s3.get_object().bucket(&object.bucket).key(&object.key).send().await.map_err(|e| {
            let e = e.into_service_error();
            match e {
                GetObjectError::NoSuchKey(_) => Failure::Permanent(format!("{object} no longer exists")),
                e => Failure::Transient(format!("GetObject {object}: {}", aws_sdk_s3::error::DisplayErrorContext(&e))),
            }
        })?;
        let bytes: Bytes =
            out.body.collect().await.map_err(|e| Failure::Transient(format!("reading {object}: {e}")))?.into_bytes();
        let peer = self.config.peer;
        tokio::task::spawn_blocking(move || extract::read_pairs(bytes, source, peer))
            .await
            .map_err(|e| Failure::Transient(format!("decoding task for {object}: {e}")))?
            .map_err(|e| Failure::Permanent(format!("{object}: {e}")))
    }

    /// Sends findings (not plain scores) to the findings queue, ten per request. The queue is
    /// named by its URL from the environment: the request goes to the client's endpoint, and
    /// SQS reads the queue from `QueueUrl`.
    async fn forward_findings(&self, all: &[Finding]) -> Result<(), String> {
        let Some(url) = &self.config.findings_queue_url else { return Ok(()) };
        let findings: Vec<&Finding> = all.iter().filter(|f| f.kind == Kind::Finding).collect();
        if findings.is_empty() {
            return Ok(());
        }
        for batch in findings.chunks(10) {
            let entries = batch
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    SendMessageBatchRequestEntry::builder().id(i.to_string()).message_body(f.to_json()).build()
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let out = self
                .clients
                .sqs
                .send_message_batch()
                .queue_url(url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| format!("SendMessageBatch: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
            if let Some(failed) = out.failed().first() {
                return Err(format!("SendMessageBatch refused a finding: {}", failed.code()));
            }
        }
        Ok(())
    }

    /// Moves a message that can never succeed to the dead-letter queue. False when there is none.
    async fn dead_letter(&self, message: &Message<'_>, reason: &str) -> Result<bool, String> {
        let Some(url) = &self.config.dead_letter_queue_url else { return Ok(false) };
        let attribute = |v: &str| MessageAttributeValue::builder().data_type("String").string_value(v).build();
        self.clients
            .sqs
            .send_message()
            .queue_url(url)
            .message_body(message.body)
            .message_attributes("error", attribute(reason).map_err(|e| e.to_string())?)
            .message_attributes("sourceMessageId", attribute(message.id).map_err(|e| e.to_string())?)
            .send()
            .await
            .map_err(|e| format!("SendMessage: {}", aws_sdk_sqs::error::DisplayErrorContext(&e)))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    use aws_sdk_s3::operation::get_object::GetObjectOutput;
    use aws_sdk_s3::primitives::ByteStream;
    use aws_sdk_s3::types::error::NoSuchKey;
    use aws_sdk_sagemakerruntime::operation::invoke_endpoint::{InvokeEndpointError, InvokeEndpointOutput};
    use aws_sdk_sagemakerruntime::types::error::ModelError;
    use aws_sdk_sqs::operation::send_message::SendMessageOutput;
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
    use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
    use aws_smithy_runtime_api::box_error::BoxError;
    use aws_smithy_runtime_api::client::interceptors::Intercept;
    use aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef;
    use aws_smithy_runtime_api::client::orchestrator::Metadata;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::config_bag::ConfigBag;
    use aws_smithy_types::retry::RetryConfig;

    use super::*;
    use crate::synthetic::{
        OcsfVersion, Row, eventbridge_notification, s3_notification, security_lake_notification, sqs_event,
        write_flows, write_parquet,
    };

    const LAKE: &str = "aws-security-data-lake-us-east-1-abc";
    const V2_KEY: &str = "aws/VPC_FLOW/2.0/region=us-east-1/accountId=111122223333/eventDay=20261126/a b.zstd.parquet";
    const V1_KEY: &str = "aws/VPC_FLOW/1.0/region=us-east-1/accountId=111122223333/eventHour=2026112610/b.gz.parquet";
    const GARBAGE_KEY: &str = "aws/VPC_FLOW/2.0/region=us-east-1/garbage.parquet";
    const ENDPOINT: &str = "lakesight-demo-endpoint";
    const FINDINGS_URL: &str = "https://sqs.us-east-1.amazonaws.com/111122223333/lakesight-demo-ipcheck-findings";
    const DLQ_URL: &str = "https://sqs.us-east-1.amazonaws.com/111122223333/lakesight-demo-ipcheck-dlq";

    /// IP Insights stand-in: addresses in 10.0.0.0/8 are expected (dot product 5), others are
    /// not (dot product -10), so their anomaly scores are -5 and 10.
    fn dot_product(line: &str) -> f64 {
        if line.split(',').nth(1).is_some_and(|ip| ip.starts_with("10.")) { 5.0 } else { -10.0 }
    }

    fn predictions(body: &[u8]) -> InvokeEndpointOutput {
        let text = std::str::from_utf8(body).expect("utf-8 body");
        let predictions: Vec<_> = text.lines().map(|l| serde_json::json!({ "dot_product": dot_product(l) })).collect();
        let answer = serde_json::json!({ "predictions": predictions }).to_string();
        InvokeEndpointOutput::builder()
            .body(answer.into_bytes().into())
            .content_type("application/json")
            .invoked_production_variant("g1")
            .build()
    }

    fn runtime_scores() -> Rule {
        mock!(aws_sdk_sagemakerruntime::Client::invoke_endpoint)
            .match_requests(|r| r.endpoint_name() == Some(ENDPOINT) && r.content_type() == Some("text/csv"))
            .then_compute_output(|r| predictions(r.body().map(|b| b.as_ref()).unwrap_or_default()))
    }

    fn objects(files: Vec<(&'static str, Vec<u8>)>) -> Rule {
        mock!(aws_sdk_s3::Client::get_object).then_compute_response(move |r| {
            match files.iter().find(|(key, _)| r.bucket() == Some(LAKE) && r.key() == Some(key)) {
                Some((_, bytes)) => aws_smithy_mocks::MockResponse::Output(
                    GetObjectOutput::builder().body(ByteStream::from(bytes.clone())).build(),
                ),
                None => aws_smithy_mocks::MockResponse::Error(GetObjectError::NoSuchKey(NoSuchKey::builder().build())),
            }
        })
    }

    fn throttled() -> Response {
        let mut response = Response::new(StatusCode::try_from(429).expect("status"), SdkBody::from("{}"));
        response.headers_mut().insert("x-amzn-errortype", "ThrottlingException");
        response
    }

    /// Every operation the clients send, as `(service, operation)`, whatever the mocks answer.
    #[derive(Debug, Clone, Default)]
    struct Sent(Arc<Mutex<BTreeSet<(String, String)>>>);

    impl Intercept for Sent {
        fn name(&self) -> &'static str {
            "Sent"
        }

        fn read_before_serialization(
            &self,
            _context: &BeforeSerializationInterceptorContextRef<'_>,
            _components: &RuntimeComponents,
            cfg: &mut ConfigBag,
        ) -> Result<(), BoxError> {
            if let Some(m) = cfg.load::<Metadata>() {
                self.0.lock().expect("lock").insert((m.service().to_owned(), m.name().to_owned()));
            }
            Ok(())
        }
    }

    macro_rules! client {
        ($krate:ident, $rules:expr, $sent:expr) => {
            mock_client!($krate, RuleMode::MatchAny, $rules, |b| b
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(3)
                        .with_initial_backoff(std::time::Duration::from_millis(1))
                )
                .interceptor($sent.clone()))
        };
    }

    fn recorded(config: Config, s3: &[&Rule], runtime: &[&Rule], sqs: &[&Rule], sent: &Sent) -> Scorer {
        Scorer::new(
            config,
            Clients {
                s3: client!(aws_sdk_s3, s3, sent),
                runtime: client!(aws_sdk_sagemakerruntime, runtime, sent),
                sqs: client!(aws_sdk_sqs, sqs, sent),
            },
        )
    }

    fn scorer(config: Config, s3: &[&Rule], runtime: &[&Rule], sqs: &[&Rule]) -> Scorer {
        recorded(config, s3, runtime, sqs, &Sent::default())
    }

    fn config(threshold: f64) -> Config {
        let mut c = Config::new(ENDPOINT);
        c.threshold = Some(threshold);
        c
    }

    fn event(messages: &[(&str, String)]) -> SqsEvent {
        serde_json::from_value(sqs_event(messages)).expect("an SQS event")
    }

    fn v2_object() -> Vec<u8> {
        write_parquet(
            OcsfVersion::V2,
            &[
                Row::new(1_000, Some("i-1"), Some("10.0.0.1")),
                Row::new(2_000, Some("i-1"), Some("10.0.0.1")),
                Row::new(3_000, Some("i-2"), Some("203.0.113.5")),
                Row::new(4_000, Some("i-2"), Some("2001:db8::5")),
                Row::new(5_000, Some("-"), Some("203.0.113.6")),
            ],
        )
        .expect("v2 file")
    }

    fn v1_object() -> Vec<u8> {
        write_parquet(
            OcsfVersion::V1,
            &[Row::new(6_000, Some("i-1"), Some("10.0.0.1")), Row::new(7_000, Some("i-3"), Some("198.51.100.7"))],
        )
        .expect("v1 file")
    }

    fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
        response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect()
    }

    #[tokio::test]
    async fn every_envelope_gives_findings_above_the_threshold_from_one_request() {
        let s3 = objects(vec![(V2_KEY, v2_object()), (V1_KEY, v1_object())]);
        let runtime = runtime_scores();
        let sent = mock!(aws_sdk_sqs::Client::send_message_batch)
            .match_requests(|r| r.queue_url() == Some(FINDINGS_URL) && r.entries().len() == 2)
            .then_output(|| {
                SendMessageBatchOutput::builder()
                    .set_successful(Some(vec![]))
                    .set_failed(Some(vec![]))
                    .build()
                    .expect("output")
            });
        let mut config = config(1.0);
        config.findings_queue_url = Some(FINDINGS_URL.into());
        let scorer = scorer(config, &[&s3], &[&runtime], &[&sent]);
        let event = event(&[
            ("m-1", security_lake_notification(LAKE, V2_KEY)),
            ("m-2", eventbridge_notification(LAKE, V1_KEY)),
            ("m-3", r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#.to_owned()),
            ("m-4", s3_notification(LAKE, "aws/VPC_FLOW/2.0/_manifest.json")),
        ]);

        let (response, report) = scorer.handle(&event).await;

        assert!(response.batch_item_failures.is_empty(), "{report:?}");
        assert_eq!((report.messages, report.skipped, report.objects), (4, 2, 2));
        assert_eq!((report.rows, report.rejected.missing, report.rejected.not_ipv4), (7, 1, 1));
        assert_eq!((report.distinct_pairs, report.requests, report.scored), (3, 1, 3));
        assert_eq!(runtime.num_calls(), 1);
        assert_eq!(sent.num_calls(), 1);
        let found: Vec<(&str, &str, f64, u64)> =
            report.findings.iter().map(|f| (f.entity.as_str(), f.ip.as_str(), f.score, f.count)).collect();
        assert_eq!(found, vec![("i-2", "203.0.113.5", 10.0, 1), ("i-3", "198.51.100.7", 10.0, 1)]);
        let first = &report.findings[0];
        assert_eq!(first.object, format!("s3://{LAKE}/{V2_KEY}"));
        assert_eq!((first.account.as_deref(), first.model_generation.as_deref()), (Some("111122223333"), Some("g1")));
        assert_eq!(report.findings[1].object, format!("s3://{LAKE}/{V1_KEY}"));
    }

    #[tokio::test]
    async fn a_threshold_calibrated_for_another_generation_only_logs_scores() {
        let s3 = objects(vec![(V2_KEY, v2_object())]);
        let runtime = runtime_scores();
        // The endpoint answers from g1; the threshold was chosen for g2.
        let mut config = config(1.0);
        config.threshold_variant = Some("g2".into());
        let scorer = scorer(config, &[&s3], &[&runtime], &[]);
        let (response, report) = scorer.handle(&event(&[("m-1", security_lake_notification(LAKE, V2_KEY))])).await;
        assert!(response.batch_item_failures.is_empty(), "{report:?}");
        assert!(!report.findings.is_empty(), "every score is still logged");
        assert!(
            report.findings.iter().all(|f| f.kind == Kind::Score && f.threshold.is_none()),
            "{:?}",
            report.findings
        );

        let mut config = self::config(1.0);
        config.threshold_variant = Some("g1".into());
        let scorer = self::scorer(config, &[&s3], &[&runtime], &[]);
        let (_, report) = scorer.handle(&event(&[("m-1", security_lake_notification(LAKE, V2_KEY))])).await;
        let found: Vec<&str> =
            report.findings.iter().filter(|f| f.kind == Kind::Finding).map(|f| f.ip.as_str()).collect();
        assert_eq!(found, ["203.0.113.5"], "its own generation's answers are judged by it");
    }

    #[tokio::test]
    async fn a_notification_delivered_twice_is_read_and_counted_once() {
        let s3 = objects(vec![(V2_KEY, v2_object())]);
        let runtime = runtime_scores();
        let scorer = scorer(config(1.0), &[&s3], &[&runtime], &[]);
        let event = event(&[("m-1", security_lake_notification(LAKE, V2_KEY)), ("m-2", s3_notification(LAKE, V2_KEY))]);

        let (response, report) = scorer.handle(&event).await;

        assert!(response.batch_item_failures.is_empty());
        assert_eq!((report.objects, report.rows), (1, 5));
        assert_eq!(s3.num_calls(), 1);
        assert_eq!(report.findings[0].count, 1);
    }

    #[tokio::test]
    async fn chunked_payloads_score_every_pair_exactly_once() {
        let flows = write_flows(OcsfVersion::V2, 20_000, 11, Vec::new()).expect("flows");
        let s3 = objects(vec![(V2_KEY, flows)]);
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let record = Arc::clone(&seen);
        let runtime = mock!(aws_sdk_sagemakerruntime::Client::invoke_endpoint).then_compute_output(move |r| {
            let body = r.body().map(|b| b.as_ref()).unwrap_or_default();
            assert!(body.len() <= 2_048, "a body of {} bytes", body.len());
            record.lock().expect("lock").extend(std::str::from_utf8(body).expect("utf-8").lines().map(str::to_owned));
            predictions(body)
        });
        let mut config = config(1.0);
        config.max_payload_bytes = 2_048;
        let scorer = scorer(config, &[&s3], &[&runtime], &[]);

        let (response, report) = scorer.handle(&event(&[("m-1", s3_notification(LAKE, V2_KEY))])).await;

        assert!(response.batch_item_failures.is_empty());
        let sent = seen.lock().expect("lock").clone();
        let distinct: BTreeSet<&String> = sent.iter().collect();
        assert_eq!(distinct.len(), sent.len(), "no pair is scored twice");
        assert_eq!(sent.len(), report.distinct_pairs, "no pair is lost");
        assert_eq!(report.scored, report.distinct_pairs);
        let bytes: usize = sent.iter().map(|l| l.len() + 1).sum();
        assert!(report.requests >= bytes.div_ceil(2_048) && report.requests > 10, "{} requests", report.requests);
        assert_eq!(runtime.num_calls(), report.requests);
        let anomalous = sent.iter().filter(|l| dot_product(l) < 0.0).count();
        assert_eq!(report.finding_count, anomalous);
    }

    #[tokio::test]
    async fn throttling_is_retried() {
        let s3 = objects(vec![(V2_KEY, v2_object())]);
        let runtime = mock!(aws_sdk_sagemakerruntime::Client::invoke_endpoint)
            .sequence()
            .http_response(throttled)
            .times(2)
            .output(|| predictions(b"i-1,10.0.0.1\ni-2,203.0.113.5\n"))
            .build();
        let scorer = scorer(config(1.0), &[&s3], &[&runtime], &[]);

        let (response, report) = scorer.handle(&event(&[("m-1", s3_notification(LAKE, V2_KEY))])).await;

        assert!(response.batch_item_failures.is_empty());
        assert_eq!(runtime.num_calls(), 3);
        assert_eq!(report.finding_count, 1);
    }

    #[tokio::test]
    async fn a_missing_object_is_dead_lettered_and_fails_no_other_message() {
        let s3 = objects(vec![(V2_KEY, v2_object())]);
        let runtime = runtime_scores();
        let dead = mock!(aws_sdk_sqs::Client::send_message)
            .match_requests(|r| {
                let source =
                    r.message_attributes().and_then(|a| a.get("sourceMessageId")).and_then(|v| v.string_value());
                let body = r.message_body().unwrap_or_default();
                r.queue_url() == Some(DLQ_URL)
                    && r.message_attributes().is_some_and(|a| a.contains_key("error"))
                    && match source {
                        Some("m-2") => body.contains("gone.parquet"),
                        Some("m-3") => body == "{not json",
                        _ => false,
                    }
            })
            .then_output(|| SendMessageOutput::builder().build());
        let mut config = config(1.0);
        config.dead_letter_queue_url = Some(DLQ_URL.into());
        let scorer = scorer(config, &[&s3], &[&runtime], &[&dead]);
        let event = event(&[
            ("m-1", s3_notification(LAKE, V2_KEY)),
            ("m-2", s3_notification(LAKE, "gone.parquet")),
            ("m-3", "{not json".to_owned()),
        ]);

        let (response, report) = scorer.handle(&event).await;

        assert!(response.batch_item_failures.is_empty(), "{:?}", failed_ids(&response));
        assert_eq!(report.dead_lettered, vec!["m-2", "m-3"]);
        assert_eq!(dead.num_calls(), 2);
        assert_eq!(report.finding_count, 1, "m-1 is scored regardless");
    }

    #[tokio::test]
    async fn without_a_dead_letter_queue_a_bad_object_fails_only_its_own_message() {
        let s3 = objects(vec![(V2_KEY, v2_object()), (GARBAGE_KEY, b"not parquet".to_vec())]);
        let runtime = runtime_scores();
        let scorer = scorer(config(1.0), &[&s3], &[&runtime], &[]);
        let event =
            event(&[("m-1", s3_notification(LAKE, V2_KEY)), ("m-2", security_lake_notification(LAKE, GARBAGE_KEY))]);

        let (response, report) = scorer.handle(&event).await;

        assert_eq!(failed_ids(&response), vec!["m-2"]);
        assert_eq!(report.scored, 2);
    }

    #[tokio::test]
    async fn an_endpoint_failure_leaves_the_messages_on_the_queue() {
        let s3 = objects(vec![(V2_KEY, v2_object()), (V1_KEY, v1_object())]);
        let runtime = mock!(aws_sdk_sagemakerruntime::Client::invoke_endpoint)
            .then_error(|| InvokeEndpointError::ModelError(ModelError::builder().message("container died").build()));
        let scorer = scorer(config(1.0), &[&s3], &[&runtime], &[]);
        let event = event(&[
            ("m-1", s3_notification(LAKE, V2_KEY)),
            ("m-2", eventbridge_notification(LAKE, V1_KEY)),
            ("m-3", r#"{"Service":"Amazon S3","Event":"s3:TestEvent"}"#.to_owned()),
        ]);

        let (response, report) = scorer.handle(&event).await;

        assert_eq!(failed_ids(&response), vec!["m-1", "m-2"]);
        assert_eq!((report.scored, report.finding_count), (0, 0));
    }

    #[tokio::test]
    async fn a_refused_finding_retries_only_the_message_it_came_from() {
        let quiet = write_parquet(OcsfVersion::V2, &[Row::new(1_000, Some("i-9"), Some("10.9.9.9"))]).expect("file");
        let s3 = objects(vec![(V2_KEY, v2_object()), (V1_KEY, quiet)]);
        let runtime = runtime_scores();
        let refused = mock!(aws_sdk_sqs::Client::send_message_batch).then_output(|| {
            let failed = aws_sdk_sqs::types::BatchResultErrorEntry::builder()
                .id("0")
                .code("KMS.AccessDeniedException")
                .sender_fault(true)
                .build()
                .expect("entry");
            SendMessageBatchOutput::builder().set_successful(Some(vec![])).failed(failed).build().expect("output")
        });
        let mut config = config(1.0);
        config.findings_queue_url = Some(FINDINGS_URL.into());
        let scorer = scorer(config, &[&s3], &[&runtime], &[&refused]);
        let event = event(&[("m-1", s3_notification(LAKE, V2_KEY)), ("m-2", s3_notification(LAKE, V1_KEY))]);

        let (response, report) = scorer.handle(&event).await;

        assert_eq!(report.finding_count, 1);
        assert_eq!(failed_ids(&response), vec!["m-1"], "m-2 raised no finding");
    }

    #[tokio::test]
    async fn observe_only_logs_every_score_and_raises_nothing() {
        let s3 = objects(vec![(V2_KEY, v2_object())]);
        let runtime = runtime_scores();
        let mut config = config(1.0);
        config.observe_only = true;
        let scorer = scorer(config, &[&s3], &[&runtime], &[]);

        let (_, report) = scorer.handle(&event(&[("m-1", s3_notification(LAKE, V2_KEY))])).await;

        assert_eq!(report.finding_count, 0);
        assert_eq!(report.findings.len(), 2);
        assert!(report.findings.iter().all(|f| f.kind == Kind::Score));
    }

    /// Every path that calls AWS at once: a finding to forward, an object to dead-letter and one
    /// to score. What the clients sent must be [`crate::scorer::AWS_CALLS`], which the role's
    /// policy is checked against; a call added without it (GetQueueUrl, say) fails here.
    #[tokio::test]
    async fn the_scorer_calls_exactly_the_operations_its_role_is_written_for() {
        let s3 = objects(vec![(V2_KEY, v2_object())]);
        let runtime = runtime_scores();
        let batch = mock!(aws_sdk_sqs::Client::send_message_batch).then_output(|| {
            SendMessageBatchOutput::builder()
                .set_successful(Some(vec![]))
                .set_failed(Some(vec![]))
                .build()
                .expect("out")
        });
        let dead = mock!(aws_sdk_sqs::Client::send_message).then_output(|| SendMessageOutput::builder().build());
        let mut config = config(1.0);
        config.findings_queue_url = Some(FINDINGS_URL.into());
        config.dead_letter_queue_url = Some(DLQ_URL.into());
        let sent = Sent::default();
        let scorer = recorded(config, &[&s3], &[&runtime], &[&batch, &dead], &sent);
        let event = event(&[
            ("m-1", security_lake_notification(LAKE, V2_KEY)),
            ("m-2", security_lake_notification(LAKE, GARBAGE_KEY)),
        ]);

        let (response, report) = scorer.handle(&event).await;

        assert!(response.batch_item_failures.is_empty(), "{report:?}");
        assert_eq!((report.finding_count, report.dead_lettered.len()), (1, 1));
        let called = sent.0.lock().expect("lock").clone();
        let declared: BTreeSet<(String, String)> =
            crate::scorer::AWS_CALLS.iter().map(|c| (c.service.to_owned(), c.operation.to_owned())).collect();
        assert_eq!(called, declared);
    }
}
