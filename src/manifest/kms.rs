//! KMS keys named by ARN must be in the region of the data they encrypt.
//!
//! KMS keys are regional: a key, and each replica of a multi-Region key, has an ARN that names its
//! one region, and the S3 user guide's SSE-KMS pages require the key to be in the bucket's
//! region. The artifact bucket lives in the stack's region, and Security Lake keeps each lake
//! region's data in a bucket of that region, so a key ARN must name the stack's region for
//! `artifactBucket.kmsKeyArn` and every lake region for `securityLake.kmsKeyId`. An alias is
//! resolved by KMS in each region it is used in, which is how one manifest names a key per lake
//! region; only ARNs can be checked without AWS.

use std::sync::LazyLock;

use regex::Regex;

/// A KMS key or alias ARN: `arn:<partition>:kms:<region>:<account>:key/<id>` or `alias/<name>`,
/// the form S3's `ServerSideEncryptionByDefault.KMSMasterKeyID` takes as an ARN.
static KMS_ARN: LazyLock<Regex> = LazyLock::new(|| {
    super::validate::re(r"^arn:aws[a-z-]*:kms:([a-z0-9-]+):[0-9]{12}:(key|alias)/[A-Za-z0-9/_+=.@-]+$")
});

/// The region a KMS ARN names, or `None` when `key` is not a KMS ARN.
pub fn arn_region(key: &str) -> Option<&str> {
    KMS_ARN.captures(key).and_then(|c| c.get(1)).map(|m| m.as_str())
}

/// Why a key ARN cannot encrypt data in `regions`, if it cannot. `key` must be a KMS ARN.
pub fn region_problem(key: &str, regions: &[&str], what: &str) -> Option<String> {
    let key_region = arn_region(key)?;
    let elsewhere: Vec<&str> = regions.iter().copied().filter(|r| *r != key_region).collect();
    if elsewhere.is_empty() {
        return None;
    }
    Some(format!(
        "the key is in {key_region} but {what} in {}; KMS keys work only in their own region: use a key in {}",
        elsewhere.join(", "),
        if regions.len() > 1 {
            "each region, named by an alias that exists in every one of them".to_owned()
        } else {
            regions.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0";

    #[test]
    fn arn_regions_are_read() {
        assert_eq!(arn_region(KEY), Some("eu-west-1"));
        assert_eq!(arn_region("arn:aws-cn:kms:cn-north-1:111122223333:alias/lake"), Some("cn-north-1"));
        assert_eq!(arn_region("alias/lake"), None);
        assert_eq!(arn_region("arn:aws:iam::111122223333:role/x"), None);
        assert_eq!(arn_region("arn:aws:kms:eu-west-1:111122223333:grant/x"), None);
    }

    #[test]
    fn a_key_in_the_data_region_is_accepted() {
        assert_eq!(region_problem(KEY, &["eu-west-1"], "the bucket is"), None);
        assert_eq!(region_problem("alias/lake", &["eu-west-1", "eu-central-1"], "the lake is"), None);
    }

    #[test]
    fn a_key_in_another_region_is_refused_with_the_regions() {
        let message = region_problem(KEY, &["eu-central-1"], "the bucket is").expect("refused");
        assert!(message.contains("the key is in eu-west-1 but the bucket is in eu-central-1"), "{message}");
        assert!(message.ends_with("use a key in eu-central-1"), "{message}");
        let message = region_problem(KEY, &["eu-west-1", "eu-central-1"], "the lake is").expect("refused");
        assert!(message.contains("but the lake is in eu-central-1"), "{message}");
        assert!(message.contains("alias"), "{message}");
    }
}
