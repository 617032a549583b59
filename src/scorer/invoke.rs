//! Scoring on the IP Insights endpoint: chunks go out with bounded concurrency, and each answer
//! must hold one prediction per line. The SDK's standard retry mode retries throttling and 5xx
//! with jittered backoff; the client is built with it.

use aws_sdk_sagemakerruntime::Client;
use aws_sdk_sagemakerruntime::error::ProvideErrorMetadata;
use aws_sdk_sagemakerruntime::primitives::Blob;
use futures_util::StreamExt;
use futures_util::stream;
use serde::Deserialize;

use super::payload::Chunk;

#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    #[error("InvokeEndpoint failed ({code}): {message}")]
    Service { code: String, message: String },
    #[error("the endpoint's answer is not IP Insights JSON: {0}")]
    Answer(String),
    #[error("the endpoint returned {got} predictions for {sent} pairs")]
    Count { sent: usize, got: usize },
}

#[derive(Deserialize)]
struct Answer {
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    dot_product: f64,
}

/// The scores of one chunk, in the chunk's pair order, or why there are none.
#[derive(Debug)]
pub struct Scored {
    pub chunk: usize,
    pub scores: Result<Scores, InvokeError>,
}

#[derive(Debug)]
pub struct Scores {
    pub values: Vec<f64>,
    /// The production variant that answered: lakesight names it after the model generation.
    pub variant: Option<String>,
}

/// Sends every chunk, at most `concurrency` at a time. Each pair's anomaly score is
/// `-dot_product`: IP Insights rates expected pairs high.
pub async fn score_chunks(client: &Client, endpoint: &str, chunks: &[Chunk], concurrency: usize) -> Vec<Scored> {
    // The futures are made first, so that the stream holds no closure over borrowed arguments,
    // whose lifetimes would keep callers' futures from being `Send`.
    let requests: Vec<_> = chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| async move { Scored { chunk: i, scores: score(client, endpoint, chunk).await } })
        .collect();
    stream::iter(requests).buffer_unordered(concurrency.max(1)).collect().await
}

async fn score(client: &Client, endpoint: &str, chunk: &Chunk) -> Result<Scores, InvokeError> {
    let out = client
        .invoke_endpoint()
        .endpoint_name(endpoint)
        .content_type("text/csv")
        .accept("application/json")
        .body(Blob::new(chunk.body.as_bytes()))
        .send()
        .await
        .map_err(|e| {
            let e = e.into_service_error();
            InvokeError::Service {
                code: e.code().unwrap_or("Unknown").to_owned(),
                message: e.message().map_or_else(|| e.to_string(), str::to_owned),
            }
        })?;
    let body = out.body().map(Blob::as_ref).unwrap_or_default();
    let answer: Answer = serde_json::from_slice(body).map_err(|e| InvokeError::Answer(e.to_string()))?;
    let sent = chunk.pairs.len();
    if answer.predictions.len() != sent {
        return Err(InvokeError::Count { sent, got: answer.predictions.len() });
    }
    Ok(Scores {
        values: answer.predictions.into_iter().map(|p| -p.dot_product).collect(),
        variant: out.invoked_production_variant().map(str::to_owned),
    })
}
