//! SQS message bodies to S3 objects. The body is always a JSON *string*: parsing it, rather than
//! expecting an object, is what keeps real messages from being dropped. Three shapes arrive:
//!
//! - Security Lake's own notification, which is what its subscriber queue carries: S3's
//!   EventBridge event trimmed to `source`, `time`, `account`, `region`, `resources` and a
//!   `detail` of `bucket`, `object` (`key`, `size`, `etag`), `request-id` and
//!   `requester: securitylake.amazonaws.com`, with no `detail-type`, `id`, `version` or `reason`
//!   (the sample notification of the Security Lake user guide, "Managing data access for
//!   Security Lake subscribers", as OpenSearch Data Prepper's `SECURITY_LAKE_MESSAGE` test
//!   fixture copies it). Security Lake sends it only for new objects.
//! - S3's own event notification (`{"Records": [...]}`), for a queue fed by the bucket directly.
//! - S3's full EventBridge event, with `detail-type`, for a queue fed by an EventBridge rule.
//!
//! Anything else that S3 sends (a deletion, a restore, a test event) is skipped on purpose, not
//! rejected: it is a notification, just not one to score.

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
    #[error(
        "message body is neither a Security Lake object notification, an S3 event notification nor an S3 \
         EventBridge event"
    )]
    UnknownEnvelope,
    #[error("object key {0:?} does not decode to UTF-8")]
    BadKey(String),
}

/// The EventBridge source of S3's events, which Security Lake's notification keeps.
const S3_SOURCE: &str = "aws.s3";
/// The `detail-type` of a new object in a full EventBridge event.
const OBJECT_CREATED: &str = "Object Created";
/// The `detail.reason` values of an "Object Created" event (Amazon S3 user guide, "EventBridge
/// event message structure", event message detail field).
const CREATED_REASONS: [&str; 4] = ["PutObject", "POST Object", "CopyObject", "CompleteMultipartUpload"];

#[derive(Deserialize)]
#[serde(untagged)]
enum Envelope {
    S3 {
        #[serde(rename = "Records")]
        records: Vec<S3Record>,
    },
    /// A full EventBridge event, or Security Lake's trimmed one without `detail-type`. The detail
    /// is read only for an object creation, so that any other event is skipped whatever it holds.
    EventBridge {
        source: String,
        #[serde(rename = "detail-type", default)]
        detail_type: Option<String>,
        detail: serde_json::Value,
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

/// What marks an EventBridge detail as something other than a new object, when the event has
/// no `detail-type` to say so.
#[derive(Deserialize)]
struct DetailKind {
    reason: Option<String>,
    #[serde(rename = "deletion-type")]
    deletion_type: Option<String>,
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
        Envelope::EventBridge { source, .. } if source != S3_SOURCE => return Err(EventError::UnknownEnvelope),
        Envelope::EventBridge { detail_type, detail, .. } => match created_detail(detail_type.as_deref(), detail)? {
            Ok(located) => vec![located],
            Err(skip) => return Ok(skip),
        },
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

/// The object of an EventBridge detail that announces a new object, or why it is skipped. A full
/// event says what it is by `detail-type`; Security Lake's trimmed one has none and announces new
/// objects only, but a `reason` other than a creation or a `deletion-type` is still refused.
fn created_detail(detail_type: Option<&str>, detail: serde_json::Value) -> Result<Result<Located, Notice>, EventError> {
    match detail_type {
        Some(OBJECT_CREATED) => {}
        Some(other) => return Ok(Err(Notice::Skip(format!("EventBridge event {other:?}")))),
        None => {
            let kind = DetailKind::deserialize(&detail).map_err(|_| EventError::UnknownEnvelope)?;
            if let Some(deletion) = kind.deletion_type {
                return Ok(Err(Notice::Skip(format!("S3 event of a deletion ({deletion})"))));
            }
            if let Some(reason) = kind.reason.filter(|r| !CREATED_REASONS.contains(&r.as_str())) {
                return Ok(Err(Notice::Skip(format!("S3 event for {reason:?}, not a new object"))));
            }
        }
    }
    Ok(Ok(Located::deserialize(detail).map_err(|_| EventError::UnknownEnvelope)?))
}

/// Keys arrive URL-encoded, with `+` for a space, and are decoded the same way in every form:
///
/// - S3 event notifications: documented ("The object key name value is URL encoded. For
///   example, "red flower.jpg" becomes "red+flower.jpg"", Amazon S3 user guide, "Event message
///   structure").
/// - Security Lake's notification: its keys come encoded as in S3's notifications, the `=` of
///   every partition as `%3D`.
/// - Full EventBridge events: the S3 user guide does not say; AWS's Powertools for Lambda decode
///   them with `unquote_plus` (`S3EventBridgeNotificationObject.key`). For the lake's own keys
///   (`aws/<SOURCE>/<version>/region=…/accountId=…/eventDay=…/<hex>.gz.parquet`) decoding is
///   right either way, since they hold no `%` or `+` of their own.
fn decode_key(raw: &str) -> Result<String, EventError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced).decode_utf8().map(|k| k.into_owned()).map_err(|_| EventError::BadKey(raw.to_owned()))
}

/// Security Lake writes `….parquet`, `….gz.parquet` or `….zstd.parquet`.
fn is_parquet(key: &str) -> bool {
    key.to_ascii_lowercase().ends_with(".parquet")
}

#[cfg(test)]
mod tests;
