//! IP Insights' inference formats: the request bodies an endpoint accepts (`text/csv`,
//! `application/json`, `application/jsonlines`) and the responses it gives, so that a local
//! endpoint answers what SageMaker's would, in the same shape.

use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::data::{self, DataError, LineProblem, Pair};
use super::model::Prediction;

/// A request body's format (its Content-Type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Csv,
    Json,
    JsonLines,
}

impl FromStr for ContentType {
    type Err = String;

    /// The MIME type; parameters after `;` are ignored, as the container does.
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split(';').next().unwrap_or_default().trim() {
            "text/csv" => Ok(Self::Csv),
            "application/json" => Ok(Self::Json),
            "application/jsonlines" => Ok(Self::JsonLines),
            other => Err(format!(
                "unsupported content type {other:?}: IP Insights takes text/csv, application/json or application/jsonlines"
            )),
        }
    }
}

/// Why a request body was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    #[error(transparent)]
    Csv(#[from] DataError),
    #[error("the body is not a JSON object with an \"instances\" list: {0}")]
    Json(String),
    #[error("line {line}: {message}")]
    JsonLine { line: usize, message: String },
    #[error("instance {index}: {problem}")]
    Instance { index: usize, problem: LineProblem },
}

/// One instance: `{"data":{"features":{"values":[e, ip]}}}` or `{"features":[e, ip]}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Instance {
    Data { data: Features },
    Features { features: [String; 2] },
}

#[derive(Deserialize)]
struct Features {
    features: Values,
}

#[derive(Deserialize)]
struct Values {
    values: [String; 2],
}

#[derive(Deserialize)]
struct Instances {
    instances: Vec<Instance>,
}

impl Instance {
    fn pair(self, index: usize) -> Result<Pair, RequestError> {
        let [entity, ip] = match self {
            Instance::Data { data } => data.features.values,
            Instance::Features { features } => features,
        };
        let ip: Ipv4Addr =
            ip.parse().map_err(|_| RequestError::Instance { index, problem: LineProblem::NotIpv4(ip) })?;
        Ok(Pair::new(entity, ip))
    }
}

/// The pairs of a request body, in order. `source_name` names the body in CSV errors.
pub fn parse_request(content_type: ContentType, source_name: &str, body: &[u8]) -> Result<Vec<Pair>, RequestError> {
    match content_type {
        ContentType::Csv => {
            let mut pairs = Vec::new();
            data::parse(source_name, body, &mut pairs)?;
            Ok(pairs)
        }
        ContentType::Json => {
            let request: Instances = serde_json::from_slice(body).map_err(|e| RequestError::Json(e.to_string()))?;
            request.instances.into_iter().enumerate().map(|(i, instance)| instance.pair(i + 1)).collect()
        }
        ContentType::JsonLines => body
            .split(|&b| b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(i, line)| {
                let instance: Instance = serde_json::from_slice(line)
                    .map_err(|e| RequestError::JsonLine { line: i + 1, message: e.to_string() })?;
                instance.pair(i + 1)
            })
            .collect(),
    }
}

/// A response's format (its Accept type), plus the CSV this command line adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// `entity,ip,dot_product` lines.
    Csv,
    /// `{"predictions":[{"dot_product":x}, ...]}`.
    Json,
    /// One `{"dot_product":x}` a line.
    JsonLines,
}

/// One prediction; the embeddings only for `;verbose=True`.
#[derive(Serialize)]
struct Output {
    dot_product: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    entity_embedding: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ip_embedding: Option<Vec<f32>>,
}

#[derive(Serialize)]
struct Predictions {
    predictions: Vec<Output>,
}

fn outputs(prediction: &Prediction) -> Vec<Output> {
    let row = |m: &Option<ndarray::Array2<f32>>, i: usize| m.as_ref().map(|m| m.row(i).to_vec());
    (0..prediction.scores.len())
        .map(|i| Output {
            dot_product: prediction.scores[i],
            entity_embedding: row(&prediction.entity_embeddings, i),
            ip_embedding: row(&prediction.ip_embeddings, i),
        })
        .collect()
}

/// Renders the predictions of `pairs` (embeddings included when the prediction has them).
/// CSV has no place for the embeddings and leaves them out.
pub fn render(format: ResponseFormat, pairs: &[Pair], prediction: &Prediction) -> Result<String, serde_json::Error> {
    Ok(match format {
        ResponseFormat::Csv => {
            pairs.iter().zip(&prediction.scores).map(|(p, s)| format!("{},{},{s}\n", p.entity, p.ip)).collect()
        }
        ResponseFormat::Json => {
            let mut out = serde_json::to_string(&Predictions { predictions: outputs(prediction) })?;
            out.push('\n');
            out
        }
        ResponseFormat::JsonLines => {
            let mut out = String::new();
            for output in outputs(prediction) {
                out.push_str(&serde_json::to_string(&output)?);
                out.push('\n');
            }
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use ndarray::array;

    use super::*;

    fn pairs() -> Vec<Pair> {
        vec![Pair::new("e", Ipv4Addr::new(1, 2, 3, 4)), Pair::new("f", Ipv4Addr::new(5, 6, 7, 8))]
    }

    #[test]
    fn the_three_request_formats_give_the_same_pairs() {
        let csv = parse_request(ContentType::Csv, "body", b"e,1.2.3.4\nf,5.6.7.8\n");
        let json = parse_request(
            ContentType::Json,
            "body",
            br#"{"instances":[{"data":{"features":{"values":["e","1.2.3.4"]}}},{"features":["f","5.6.7.8"]}]}"#,
        );
        let lines = parse_request(
            "application/jsonlines; charset=utf-8".parse().unwrap_or(ContentType::Csv),
            "body",
            b"{\"features\":[\"e\",\"1.2.3.4\"]}\n\n{\"data\":{\"features\":{\"values\":[\"f\",\"5.6.7.8\"]}}}\n",
        );
        assert_eq!(csv, Ok(pairs()));
        assert_eq!(json, Ok(pairs()));
        assert_eq!(lines, Ok(pairs()));
    }

    #[test]
    fn bad_requests_say_where() {
        let err = |t, b: &[u8]| parse_request(t, "body", b).err().map(|e| e.to_string());
        assert_eq!(
            err(ContentType::Csv, b"e,1.2.3.4\nf,::1\n").as_deref(),
            Some("body:2: \"::1\" is not a dotted IPv4 address")
        );
        assert_eq!(
            err(ContentType::Json, br#"{"instances":[{"features":["e","1.2.3.4"]},{"features":["f","x"]}]}"#)
                .as_deref(),
            Some("instance 2: \"x\" is not a dotted IPv4 address")
        );
        assert!(err(ContentType::Json, b"[1]").is_some_and(|m| m.contains("instances")));
        assert!(err(ContentType::JsonLines, b"{\"features\":[\"e\"]}").is_some_and(|m| m.starts_with("line 1: ")));
        assert!("text/plain".parse::<ContentType>().is_err());
    }

    #[test]
    fn responses_have_sagemakers_shapes() -> Result<(), serde_json::Error> {
        let plain = Prediction { scores: vec![1.5, -2.0], entity_embeddings: None, ip_embeddings: None };
        assert_eq!(render(ResponseFormat::Csv, &pairs(), &plain)?, "e,1.2.3.4,1.5\nf,5.6.7.8,-2\n");
        assert_eq!(
            render(ResponseFormat::Json, &pairs(), &plain)?,
            "{\"predictions\":[{\"dot_product\":1.5},{\"dot_product\":-2.0}]}\n"
        );
        assert_eq!(
            render(ResponseFormat::JsonLines, &pairs(), &plain)?,
            "{\"dot_product\":1.5}\n{\"dot_product\":-2.0}\n"
        );
        let verbose = Prediction {
            entity_embeddings: Some(array![[1.0, 0.5], [0.0, 1.0]]),
            ip_embeddings: Some(array![[1.0, 1.0], [0.0, -2.0]]),
            ..plain
        };
        assert_eq!(
            render(ResponseFormat::JsonLines, &pairs(), &verbose)?.lines().next(),
            Some("{\"dot_product\":1.5,\"entity_embedding\":[1.0,0.5],\"ip_embedding\":[1.0,1.0]}")
        );
        Ok(())
    }
}
