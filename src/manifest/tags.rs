//! Tag keys and values as every service that receives `metadata.tags` accepts them.
//!
//! The tags go on IAM roles, the S3 bucket, SQS queues, the Lambda function and its event
//! source mapping, the Athena workgroup, Security Lake's data lake and subscriber, and SageMaker
//! training jobs, models, endpoint configs and endpoints. A tag one of them refuses fails apply
//! halfway, so the manifest is held to the strictest combination of their rules:
//!
//! - Characters: Unicode letters, digits and space separators, and `_ . : / = + - @`. This is the
//!   `[\p{L}\p{Z}\p{N}_.:/=+\-@]*` pattern of `tagKeyType`/`tagValueType` in the IAM service model
//!   and of `TagKey`/`TagValue` in the SageMaker and Lambda models, and of S3 Control's `Tag`
//!   (API reference). Athena's `Tag` (service model documentation), Security Lake's `Tag` (API
//!   reference) and SQS's queue quotas (developer guide) list the same set; S3 bucket tags and
//!   SQS queue tags have no pattern in their models but do not widen it.
//! - Lengths: keys 1 to 128 characters, values 0 to 256 (every model above).
//! - `aws:` in any letter case is reserved for AWS as a key prefix (AWS tagging guidelines),
//!   and SQS's queue quotas refuse it as a value prefix as well.

use std::sync::LazyLock;

use regex::Regex;

/// What tags may consist of, for messages.
pub const ALLOWED: &str = "Unicode letters, digits, spaces and _ . : / = + - @";

static TAG_CHAR: LazyLock<Regex> = LazyLock::new(|| super::validate::re(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]$"));

/// Why AWS would refuse `key` as a tag key, if it would.
pub fn key_problem(key: &str) -> Option<String> {
    let length = key.chars().count();
    if !(1..=128).contains(&length) {
        return Some(format!("tag key {key:?} is {length} characters long; allowed: 1 to 128"));
    }
    if has_aws_prefix(key) {
        return Some(format!("tag key {key:?} starts with the prefix aws:, which AWS reserves"));
    }
    refused_characters(key).map(|bad| format!("tag key {key:?} contains {bad}; allowed: {ALLOWED}"))
}

/// Why AWS would refuse `value` as a tag value, if it would.
pub fn value_problem(value: &str) -> Option<String> {
    let length = value.chars().count();
    if length > 256 {
        return Some(format!("tag value is {length} characters long; allowed: 0 to 256"));
    }
    if has_aws_prefix(value) {
        return Some(format!("tag value {value:?} starts with the prefix aws:, which SQS refuses in values"));
    }
    refused_characters(value).map(|bad| format!("tag value {value:?} contains {bad}; allowed: {ALLOWED}"))
}

fn has_aws_prefix(text: &str) -> bool {
    text.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// The refused characters of `text`, quoted and deduplicated, or `None` when all are allowed.
fn refused_characters(text: &str) -> Option<String> {
    let mut bad: Vec<char> = Vec::new();
    let mut buf = [0u8; 4];
    for c in text.chars() {
        if !TAG_CHAR.is_match(c.encode_utf8(&mut buf)) && !bad.contains(&c) {
            bad.push(c);
        }
    }
    if bad.is_empty() {
        return None;
    }
    let listed: Vec<String> = bad.iter().map(|c| format!("{:?}", c)).collect();
    Some(listed.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_tag_and_a_stack_name_are_valid_everywhere() {
        assert_eq!(key_problem("lakesight:stack"), None);
        assert_eq!(value_problem("netanomaly"), None);
        assert_eq!(value_problem(""), None);
    }

    #[test]
    fn unicode_letters_digits_and_spaces_are_allowed() {
        assert_eq!(key_problem("Kostenstelle Zürich 4711"), None);
        assert_eq!(value_problem("team@example.com/ops=+_-:."), None);
    }

    #[test]
    fn other_characters_are_refused_and_named() {
        let message = key_problem("cost#center*").expect("refused");
        assert!(message.contains("'#', '*'"), "{message}");
        assert!(message.contains(ALLOWED), "{message}");
        assert!(value_problem("a,b").expect("refused").contains("','"));
        assert!(value_problem("tab\there").is_some(), "a tab is not a space separator");
        assert!(key_problem("new\nline").is_some());
    }

    #[test]
    fn lengths_and_the_aws_prefix_are_checked() {
        assert!(key_problem("").expect("empty").contains("1 to 128"));
        assert_eq!(key_problem(&"k".repeat(128)), None);
        assert!(key_problem(&"k".repeat(129)).is_some());
        assert_eq!(value_problem(&"é".repeat(256)), None);
        assert!(value_problem(&"v".repeat(257)).expect("long").contains("0 to 256"));
        assert!(key_problem("AWS:owner").expect("reserved").contains("aws:"));
        assert!(value_problem("aws:thing").is_some());
        assert_eq!(key_problem("awsome"), None);
    }
}
