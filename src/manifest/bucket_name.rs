//! S3's naming rules for general purpose buckets, as the S3 user guide's "General purpose bucket
//! naming rules" lists them: 3 to 63 characters of lowercase letters, digits, `.` and `-`,
//! beginning and ending with a letter or digit, no two adjacent periods, not formatted as an IP
//! address, none of the prefixes `xn--`, `sthree-` (which covers `sthree-configurator`) and
//! `amzn-s3-demo-`, and none of the suffixes `-s3alias` (access point aliases), `--ol-s3`
//! (Object Lambda access point aliases), `.mrap` (Multi-Region Access Points), `--x-s3`
//! (directory buckets) and `--table-s3` (table buckets).

use std::sync::LazyLock;

use regex::Regex;

/// The rules in one line, for messages.
pub const ALLOWED: &str = "3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit";

const RESERVED_PREFIXES: &[&str] = &["xn--", "sthree-", "amzn-s3-demo-"];
const RESERVED_SUFFIXES: &[&str] = &["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

static IP_ADDRESS: LazyLock<Regex> = LazyLock::new(|| super::validate::re(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}$"));

/// Why S3 would refuse `name` as a bucket name, if it would.
pub fn problem(name: &str) -> Option<String> {
    let reason = reason(name)?;
    Some(format!("{name:?} is not a valid S3 bucket name: {reason}; allowed: {ALLOWED}"))
}

fn reason(name: &str) -> Option<String> {
    let length = name.chars().count();
    if !(3..=63).contains(&length) {
        return Some(format!("it is {length} characters long"));
    }
    if let Some(c) = name.chars().find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-')) {
        return Some(format!("{c:?} is not allowed"));
    }
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alphanumeric(name.chars().next()) || !alphanumeric(name.chars().last()) {
        return Some("it must begin and end with a letter or digit".to_owned());
    }
    if name.contains("..") {
        return Some("it contains two adjacent periods".to_owned());
    }
    if IP_ADDRESS.is_match(name) {
        return Some("it is formatted as an IP address".to_owned());
    }
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Some(format!("the prefix {prefix} is reserved"));
    }
    if let Some(suffix) = RESERVED_SUFFIXES.iter().find(|s| name.ends_with(**s)) {
        return Some(format!("the suffix {suffix} is reserved"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_are_accepted() {
        for name in ["abc", "lakesight-demo-111122223333-eu-west-1", "my.bucket.01", &"a".repeat(63)] {
            assert_eq!(problem(name), None, "{name}");
        }
    }

    #[test]
    fn each_rule_is_enforced_with_its_reason() {
        let cases = [
            ("ab", "2 characters long"),
            (&"a".repeat(64) as &str, "64 characters long"),
            ("My-Bucket", "'M' is not allowed"),
            ("my_bucket", "'_' is not allowed"),
            ("-bucket", "begin and end"),
            ("bucket.", "begin and end"),
            ("my..bucket", "two adjacent periods"),
            ("192.168.5.4", "IP address"),
            ("xn--bucket", "prefix xn--"),
            ("sthree-bucket", "prefix sthree-"),
            ("sthree-configurator-x", "prefix sthree-"),
            ("amzn-s3-demo-bucket", "prefix amzn-s3-demo-"),
            ("bucket-s3alias", "suffix -s3alias"),
            ("bucket--ol-s3", "suffix --ol-s3"),
            ("bucket.mrap", "suffix .mrap"),
            ("bucket--x-s3", "suffix --x-s3"),
            ("bucket--table-s3", "suffix --table-s3"),
        ];
        for (name, reason) in cases {
            let message = problem(name).unwrap_or_else(|| panic!("{name} accepted"));
            assert!(message.contains(reason), "{name}: {message}");
            assert!(message.contains(ALLOWED), "{name}: {message}");
        }
    }

    #[test]
    fn dotted_names_that_are_not_addresses_are_accepted() {
        assert_eq!(problem("1.2.3.4.5"), None);
        assert_eq!(problem("10.0.0.a"), None);
    }
}
