//! SQS message bodies to S3 objects. A Security Lake subscriber queue carries S3 event
//! notifications or EventBridge "Object Created" events, and the body is always a JSON *string*:
//! parsing it, rather than expecting an object, is what keeps real messages from being dropped.

use percent_encoding::percent_decode_str;
use serde::Deserialize;

/// One S3 object named by a notification.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// What one message asks of the scorer.
#[derive(Debug, PartialEq, Eq)]
pub enum Notice {
    /// Parquet objects to score.
    Objects(Vec<ObjectRef>),
    /// Nothing to score, and why: a test event, another event type, or no Parquet key.
    Skip(String),
}

/// A message that can never be scored, however often it is retried.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    #[error("message body is neither an S3 event notification nor an EventBridge Object Created event")]
    UnknownEnvelope,
    #[error("object key {0:?} does not decode to UTF-8")]
    BadKey(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Envelope {
    S3 {
        #[serde(rename = "Records")]
        records: Vec<S3Record>,
    },
    EventBridge {
        #[serde(rename = "detail-type")]
        detail_type: String,
        detail: Located,
    },
    /// Sent once when a notification is configured: `{"Event":"s3:TestEvent",...}`.
    Test {
        #[serde(rename = "Event")]
        event: String,
    },
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventName", default)]
    event_name: String,
    s3: Located,
}

#[derive(Deserialize)]
struct Located {
    bucket: Named,
    object: Keyed,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
struct Keyed {
    key: String,
}

/// Reads one SQS message body.
pub fn parse(body: &str) -> Result<Notice, EventError> {
    let envelope: Envelope = match serde_json::from_str(body) {
        Ok(envelope) => envelope,
        Err(e) if e.is_data() => return Err(EventError::UnknownEnvelope),
        Err(e) => return Err(EventError::NotJson(e.to_string())),
    };
    let located: Vec<Located> = match envelope {
        Envelope::Test { event } => return Ok(Notice::Skip(format!("test event {event}"))),
        Envelope::EventBridge { detail_type, .. } if detail_type != "Object Created" => {
            return Ok(Notice::Skip(format!("EventBridge event {detail_type:?}")));
        }
        Envelope::EventBridge { detail, .. } => vec![detail],
        Envelope::S3 { records } => {
            let created: Vec<Located> =
                records.into_iter().filter(|r| r.event_name.starts_with("ObjectCreated")).map(|r| r.s3).collect();
            if created.is_empty() {
                return Ok(Notice::Skip("S3 notification without ObjectCreated records".into()));
            }
            created
        }
    };
    let mut objects = Vec::with_capacity(located.len());
    let mut skipped = Vec::new();
    for l in located {
        let key = decode_key(&l.object.key)?;
        if is_parquet(&key) {
            objects.push(ObjectRef { bucket: l.bucket.name, key });
        } else {
            skipped.push(key);
        }
    }
    if objects.is_empty() {
        return Ok(Notice::Skip(format!("no Parquet object among {skipped:?}")));
    }
    Ok(Notice::Objects(objects))
}

/// S3 and EventBridge URL-encode keys, with `+` for a space.
fn decode_key(raw: &str) -> Result<String, EventError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8().map(|k| k.into_owned()).map_err(|_| EventError::BadKey(raw.to_owned()))
}

/// Security Lake writes `….parquet`, `….gz.parquet` or `….zstd.parquet`.
fn is_parquet(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with(".parquet")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(bucket: &str, key: &str) -> ObjectRef {
        ObjectRef { bucket: bucket.into(), key: key.into() }
    }

    #[test]
    fn s3_notification_body_is_a_string_with_an_encoded_key() {
        let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"aws-security-data-lake-eu-west-1-abc"},
                  "object":{"key":"ext/VPC_FLOW/2.0/region%3Deu-west-1/accountId%3D1/my+file%2B1.gz.parquet","size":10}}}]}"#;
        assert_eq!(
            parse(body).unwrap(),
            Notice::Objects(vec![object(
                "aws-security-data-lake-eu-west-1-abc",
                "ext/VPC_FLOW/2.0/region=eu-west-1/accountId=1/my file+1.gz.parquet"
            )])
        );
    }

    #[test]
    fn eventbridge_object_created() {
        let body = r#"{"version":"0","detail-type":"Object Created","source":"aws.s3",
            "detail":{"bucket":{"name":"lake"},"object":{"key":"a/b%3Dc/part-0.zstd.parquet","size":1}}}"#;
        assert_eq!(parse(body).unwrap(), Notice::Objects(vec![object("lake", "a/b=c/part-0.zstd.parquet")]));
    }

    #[test]
    fn several_records_keep_only_created_parquet_objects() {
        let body = r#"{"Records":[
            {"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"one.parquet"}}},
            {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"gone.parquet"}}},
            {"eventName":"ObjectCreated:Copy","s3":{"bucket":{"name":"b"},"object":{"key":"manifest.json"}}},
            {"eventName":"ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"b"},"object":{"key":"two.PARQUET"}}}]}"#;
        assert_eq!(parse(body).unwrap(), Notice::Objects(vec![object("b", "one.parquet"), object("b", "two.PARQUET")]));
    }

    #[test]
    fn test_events_and_other_keys_are_skipped() {
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-26T10:00:00.000Z","Bucket":"b"}"#;
        assert_eq!(parse(test).unwrap(), Notice::Skip("test event s3:TestEvent".into()));
        let json = r#"{"detail-type":"Object Created","detail":{"bucket":{"name":"b"},"object":{"key":"x.json"}}}"#;
        assert!(matches!(parse(json).unwrap(), Notice::Skip(reason) if reason.contains("x.json")));
        let deleted =
            r#"{"detail-type":"Object Deleted","detail":{"bucket":{"name":"b"},"object":{"key":"x.parquet"}}}"#;
        assert!(matches!(parse(deleted).unwrap(), Notice::Skip(_)));
    }

    #[test]
    fn malformed_bodies_are_permanent_errors() {
        assert!(matches!(parse("not json"), Err(EventError::NotJson(_))));
        assert_eq!(parse(r#"{"hello":"world"}"#), Err(EventError::UnknownEnvelope));
        let bad_utf8 =
            r#"{"detail-type":"Object Created","detail":{"bucket":{"name":"b"},"object":{"key":"%FF.parquet"}}}"#;
        assert_eq!(parse(bad_utf8), Err(EventError::BadKey("%FF.parquet".into())));
    }
}
