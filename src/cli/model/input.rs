//! Where pairs come from: a file, every regular file under a directory (sorted by path), an
//! S3 prefix (every object under it, in key order), or `-` for stdin. The order is fixed so
//! that a seeded training run reads the same rows in the same order every time.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use super::super::{CliError, Global};
use crate::aws::stats::CallStats;
use crate::aws::{self, ConnectOptions};
use crate::ipinsights::data::{self, Pair};

/// A `--input`, `--train` or `--validation` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Stdin,
    Local(PathBuf),
    S3 { bucket: String, prefix: String },
}

impl FromStr for Source {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s == "-" {
            return Ok(Self::Stdin);
        }
        match s.strip_prefix("s3://") {
            Some(rest) => match rest.split_once('/') {
                Some((bucket, prefix)) if !bucket.is_empty() => {
                    Ok(Self::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() })
                }
                None if !rest.is_empty() => Ok(Self::S3 { bucket: rest.to_owned(), prefix: String::new() }),
                _ => Err(format!("{s}: expected s3://bucket/prefix")),
            },
            None => Ok(Self::Local(PathBuf::from(s))),
        }
    }
}

/// One file's bytes, with the name errors give it.
pub struct Object {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// Reads every object of a source.
pub async fn read(global: &Global, source: &Source, stats: Arc<CallStats>) -> Result<Vec<Object>, CliError> {
    match source {
        Source::Stdin => {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)?;
            Ok(vec![Object { name: "stdin".into(), bytes }])
        }
        Source::Local(path) => local(path),
        Source::S3 { bucket, prefix } => s3(global, bucket, prefix, stats).await,
    }
}

/// Reads the pairs of a source. A line that is not `entity,ipv4` is the algorithm's refusal.
pub async fn pairs(global: &Global, source: &Source, stats: Arc<CallStats>) -> Result<Vec<Pair>, CliError> {
    let mut pairs = Vec::new();
    for object in read(global, source, stats).await? {
        data::parse(&object.name, &object.bytes, &mut pairs)
            .map_err(|e| CliError::Client(format!("ClientError: {e}")))?;
    }
    Ok(pairs)
}

fn local(path: &Path) -> Result<Vec<Object>, CliError> {
    let cannot = |p: &Path, e: std::io::Error| CliError::Failed(format!("cannot read {}: {e}", p.display()));
    let mut files = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(next) = pending.pop() {
        let meta = std::fs::metadata(&next).map_err(|e| cannot(&next, e))?;
        if !meta.is_dir() {
            files.push(next);
            continue;
        }
        for entry in std::fs::read_dir(&next).map_err(|e| cannot(&next, e))? {
            let entry = entry.map_err(|e| cannot(&next, e))?;
            let kind = entry.file_type().map_err(|e| cannot(&entry.path(), e))?;
            if kind.is_dir() || kind.is_file() {
                pending.push(entry.path());
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let bytes = std::fs::read(&file).map_err(|e| cannot(&file, e))?;
            Ok(Object { name: file.display().to_string(), bytes })
        })
        .collect()
}

async fn s3(global: &Global, bucket: &str, prefix: &str, stats: Arc<CallStats>) -> Result<Vec<Object>, CliError> {
    let options = ConnectOptions {
        region: global.region.clone(),
        profile: global.profile.clone(),
        endpoint_url: global.endpoint_url.clone(),
    };
    let client = aws::s3_client(&options, stats).await?;
    let objects = aws::s3::read_prefix(&client, bucket, prefix)
        .await
        .map_err(|e| CliError::Failed(format!("cannot read s3://{bucket}/{prefix}: {e}")))?;
    Ok(objects.into_iter().map(|(key, bytes)| Object { name: format!("s3://{bucket}/{key}"), bytes }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse() {
        assert_eq!("-".parse(), Ok(Source::Stdin));
        assert_eq!(
            "s3://b/features/run/train/".parse(),
            Ok(Source::S3 { bucket: "b".into(), prefix: "features/run/train/".into() })
        );
        assert_eq!("s3://b".parse(), Ok(Source::S3 { bucket: "b".into(), prefix: String::new() }));
        assert!("s3://".parse::<Source>().is_err());
        assert!("s3:///x".parse::<Source>().is_err());
        assert_eq!("data/x.csv".parse(), Ok(Source::Local("data/x.csv".into())));
    }

    #[test]
    fn a_directory_is_read_recursively_in_path_order() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("a"))?;
        std::fs::write(dir.path().join("b"), "second")?;
        std::fs::write(dir.path().join("a").join("z"), "first")?;
        let objects = local(dir.path())?;
        let texts: Vec<&[u8]> = objects.iter().map(|o| o.bytes.as_slice()).collect();
        assert_eq!(texts, [b"first".as_slice(), b"second"]);
        assert!(local(&dir.path().join("missing")).is_err());
        Ok(())
    }
}
