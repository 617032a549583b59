//! The bodies here are AWS's published samples, copied as JSON rather than built by the crate's
//! fixtures, so that the parser is held to AWS's shapes and not to its own. Where a sample's key
//! is replaced by a lake key, only the key (and the bucket) changed.

use super::*;

fn object(bucket: &str, key: &str) -> ObjectRef {
    ObjectRef { bucket: bucket.into(), key: key.into() }
}

/// Security Lake's sample subscriber notification, as OpenSearch Data Prepper's
/// `SECURITY_LAKE_MESSAGE` fixture copies it from the Security Lake user guide.
const SECURITY_LAKE_SAMPLE: &str = r#"{"source":"aws.s3","time":"2021-11-12T00:00:00Z","account":"123456789012","region":"ca-central-1","resources":["arn:aws:s3:::example-bucket"],"detail":{"bucket":{"name":"example-bucket"},"object":{"key":"example-key","size":5,"etag":"b57f9512698f4b09e608f4f2a65852e5"},"request-id":"N4N7GDK58NMKJ12R","requester":"securitylake.amazonaws.com"}}"#;

const LAKE: &str = "aws-security-data-lake-us-east-1-abc";
const ENCODED: &str = "aws/VPC_FLOW/2.0/region%3Dus-east-1/accountId%3D123456789012/eventDay%3D20260101/x.gz.parquet";
const DECODED: &str = "aws/VPC_FLOW/2.0/region=us-east-1/accountId=123456789012/eventDay=20260101/x.gz.parquet";

/// The Security Lake sample with a lake bucket and `key` in place of the sample's.
fn security_lake(key: &str) -> String {
    SECURITY_LAKE_SAMPLE.replace("example-bucket", LAKE).replace("example-key", key)
}

#[test]
fn security_lakes_sample_notification_is_read_not_rejected() {
    assert_eq!(parse(SECURITY_LAKE_SAMPLE).unwrap(), Notice::Skip(r#"no Parquet object among ["example-key"]"#.into()));
}

#[test]
fn security_lake_notification_of_a_lake_object_decodes_its_key() {
    assert_eq!(parse(&security_lake(ENCODED)).unwrap(), Notice::Objects(vec![object(LAKE, DECODED)]));
    let spaced = security_lake("aws/ROUTE53/2.0/region%3Dus-east-1/my+file%2B1.zstd.parquet");
    assert_eq!(
        parse(&spaced).unwrap(),
        Notice::Objects(vec![object(LAKE, "aws/ROUTE53/2.0/region=us-east-1/my file+1.zstd.parquet")])
    );
}

#[test]
fn a_trimmed_event_that_is_no_creation_or_not_from_s3_is_not_scored() {
    let deleted = security_lake(ENCODED).replace(
        r#""requester":"securitylake.amazonaws.com""#,
        r#""requester":"123456789012","reason":"DeleteObject","deletion-type":"Permanently Deleted""#,
    );
    assert_eq!(parse(&deleted).unwrap(), Notice::Skip("S3 event of a deletion (Permanently Deleted)".into()));
    let restored =
        security_lake(ENCODED).replace(r#""requester":"securitylake.amazonaws.com""#, r#""reason":"RestoreObject""#);
    assert!(matches!(parse(&restored).unwrap(), Notice::Skip(reason) if reason.contains("RestoreObject")));
    let copied = security_lake(ENCODED).replace(r#""requester":"#, r#""reason":"CopyObject","requester":"#);
    assert_eq!(parse(&copied).unwrap(), Notice::Objects(vec![object(LAKE, DECODED)]));
    let elsewhere = security_lake(ENCODED).replace(r#""source":"aws.s3""#, r#""source":"aws.glue""#);
    assert_eq!(parse(&elsewhere), Err(EventError::UnknownEnvelope));
}

/// The S3 user guide's example event notification ("Event message structure"), key replaced.
#[test]
fn s3_event_notification_decodes_its_key() {
    let body = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-west-2","eventTime":"1970-01-01T00:00:00.000Z","eventName":"ObjectCreated:Put","userIdentity":{"principalId":"AIDAJDPLRKLG7UEXAMPLE"},"requestParameters":{"sourceIPAddress":"127.0.0.1"},"responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},"s3":{"s3SchemaVersion":"1.0","configurationId":"testConfigRule","bucket":{"name":"mybucket","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::mybucket"},"object":{"key":"aws/VPC_FLOW/2.0/region%3Dus-west-2/red+flower%2B1.gz.parquet","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e","versionId":"096fKKXTRTtl3on89fVO.nfljtsv6qko","sequencer":"0055AED6DCD90281E5"}}}]}"#;
    assert_eq!(
        parse(body).unwrap(),
        Notice::Objects(vec![object("mybucket", "aws/VPC_FLOW/2.0/region=us-west-2/red flower+1.gz.parquet")])
    );
}

/// The S3 user guide's EventBridge "Object Created" and "Object Deleted" examples ("EventBridge
/// event message structure"), key replaced in the first.
#[test]
fn s3_eventbridge_events_score_creations_only() {
    let created = r#"{"version":"0","id":"17793124-05d4-b198-2fde-7ededc63b103","detail-type":"Object Created","source":"aws.s3","account":"111122223333","time":"2021-11-12T00:00:00Z","region":"ca-central-1","resources":["arn:aws:s3:::amzn-s3-demo-bucket1"],"detail":{"version":"0","bucket":{"name":"amzn-s3-demo-bucket1"},"object":{"key":"aws/VPC_FLOW/2.0/region%3Dca-central-1/part-0.zstd.parquet","size":5,"etag":"b1946ac92492d2347c6235b4d2611184","version-id":"IYV3p45BT0ac8hjHg1houSdS1a.Mro8e","sequencer":"617f08299329d189"},"request-id":"N4N7GDK58NMKJ12R","requester":"123456789012","source-ip-address":"1.2.3.4","reason":"PutObject"}}"#;
    assert_eq!(
        parse(created).unwrap(),
        Notice::Objects(vec![object(
            "amzn-s3-demo-bucket1",
            "aws/VPC_FLOW/2.0/region=ca-central-1/part-0.zstd.parquet"
        )])
    );
    let deleted = r#"{"version":"0","id":"2ee9cc15-d022-99ea-1fb8-1b1bac4850f9","detail-type":"Object Deleted","source":"aws.s3","account":"111122223333","time":"2021-11-12T00:00:00Z","region":"ca-central-1","resources":["arn:aws:s3:::amzn-s3-demo-bucket1"],"detail":{"version":"0","bucket":{"name":"amzn-s3-demo-bucket1"},"object":{"key":"example-key.parquet","etag":"d41d8cd98f00b204e9800998ecf8427e","version-id":"1QW9g1Z99LUNbvaaYVpW9xDlOLU.qxgF","sequencer":"617f0837b476e463"},"request-id":"0BH729840619AG5K","requester":"123456789012","source-ip-address":"1.2.3.4","reason":"DeleteObject","deletion-type":"Delete Marker Created"}}"#;
    assert_eq!(parse(deleted).unwrap(), Notice::Skip(r#"EventBridge event "Object Deleted""#.into()));
    let odd = r#"{"detail-type":"Object Restore Completed","source":"aws.s3","detail":{"unexpected":true}}"#;
    assert!(matches!(parse(odd).unwrap(), Notice::Skip(_)), "another event is skipped whatever its detail holds");
}

#[test]
fn several_records_keep_only_created_parquet_objects() {
    let body = r#"{"Records":[
        {"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"one.parquet"}}},
        {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"gone.parquet"}}},
        {"eventName":"ObjectCreated:Copy","s3":{"bucket":{"name":"b"},"object":{"key":"manifest.json"}}},
        {"eventName":"ObjectCreated:CompleteMultipartUpload","s3":{"bucket":{"name":"b"},"object":{"key":"two.PARQUET"}}}]}"#;
    assert_eq!(parse(body).unwrap(), Notice::Objects(vec![object("b", "one.parquet"), object("b", "two.PARQUET")]));
    let removed = r#"{"Records":[{"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"x.parquet"}}}]}"#;
    assert!(matches!(parse(removed).unwrap(), Notice::Skip(_)));
}

#[test]
fn test_events_and_other_keys_are_skipped() {
    let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-11-26T10:00:00.000Z","Bucket":"b"}"#;
    assert_eq!(parse(test).unwrap(), Notice::Skip("test event s3:TestEvent".into()));
    let manifest = security_lake("aws/VPC_FLOW/2.0/_manifest.json");
    assert!(matches!(parse(&manifest).unwrap(), Notice::Skip(reason) if reason.contains("_manifest.json")));
}

#[test]
fn malformed_bodies_are_permanent_errors() {
    assert!(matches!(parse("not json"), Err(EventError::NotJson(_))));
    assert_eq!(parse(r#"{"hello":"world"}"#), Err(EventError::UnknownEnvelope));
    assert_eq!(parse(r#"{"source":"aws.s3","detail":{"bucket":{"name":"b"}}}"#), Err(EventError::UnknownEnvelope));
    assert_eq!(parse(&security_lake("%FF.parquet")), Err(EventError::BadKey("%FF.parquet".into())));
}
