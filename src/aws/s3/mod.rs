//! Amazon S3 resources.

pub mod bucket;
pub mod record;
