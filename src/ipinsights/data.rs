//! Pairs as the feature run's `UNLOAD ... WITH (format = 'TEXTFILE', field_delimiter = ',')`
//! writes them: `entity,ipv4` lines, no header, no quoting, in one or more files.
//!
//! TEXTFILE output does not quote, so an entity containing a comma is written as it is: the
//! address is read after the *last* comma and everything before it is the entity. Athena
//! documents gzip as the default compression of text output, so gzip files (by their magic
//! bytes) are read as well as plain ones.
//!
//! A line whose address is not a dotted IPv4 is refused with its file and line number, for
//! training as for scoring. The feature SQL selects only addresses matching a dotted-decimal
//! IPv4 pattern with the same grammar as the parser here (no leading zeros, octets up to 255)
//! and only non-NULL entities, so such a line means the input is not what the feature run
//! wrote (a header, swapped columns, IPv6): skipping it would train on something else than
//! asked for.

use std::io::Read;
use std::net::Ipv4Addr;

use sha2::{Digest, Sha256};
use thiserror::Error;

/// One observed (entity, address) pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub entity: String,
    pub ip: Ipv4Addr,
}

impl Pair {
    pub fn new(entity: impl Into<String>, ip: Ipv4Addr) -> Self {
        Self { entity: entity.into(), ip }
    }
}

/// What is wrong with one line.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LineProblem {
    #[error("no comma: expected entity,ipv4")]
    NoComma,
    #[error("{0:?} is not a dotted IPv4 address")]
    NotIpv4(String),
    #[error("not valid UTF-8")]
    NotUtf8,
}

/// Why pairs could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DataError {
    #[error("{source_name}:{line}: {problem}")]
    Line { source_name: String, line: usize, problem: LineProblem },
    #[error("{source_name}: cannot decompress gzip: {message}")]
    Gzip { source_name: String, message: String },
}

/// Parses one line (without its `\n`).
pub fn parse_line(line: &[u8]) -> Result<Pair, LineProblem> {
    let line = std::str::from_utf8(line).map_err(|_| LineProblem::NotUtf8)?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (entity, ip) = line.rsplit_once(',').ok_or(LineProblem::NoComma)?;
    let ip = ip.parse().map_err(|_| LineProblem::NotIpv4(ip.to_owned()))?;
    Ok(Pair::new(entity, ip))
}

/// The bytes of a file, gunzipped when they start with gzip's magic bytes.
fn decompressed<'a>(source_name: &str, bytes: &'a [u8]) -> Result<std::borrow::Cow<'a, [u8]>, DataError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.into());
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| DataError::Gzip { source_name: source_name.to_owned(), message: e.to_string() })?;
    Ok(out.into())
}

/// Appends the pairs of one file, named `source_name` in errors, to `out`. Empty lines are skipped.
pub fn parse(source_name: &str, bytes: &[u8], out: &mut Vec<Pair>) -> Result<(), DataError> {
    let bytes = decompressed(source_name, bytes)?;
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() || line == b"\r" {
            continue;
        }
        let pair = parse_line(line).map_err(|problem| DataError::Line {
            source_name: source_name.to_owned(),
            line: index + 1,
            problem,
        })?;
        out.push(pair);
    }
    Ok(())
}

/// The number of distinct entities, which sizes `num_entity_vectors` when a manifest leaves it open.
pub fn distinct_entities(pairs: &[Pair]) -> usize {
    pairs.iter().map(|p| p.entity.as_str()).collect::<std::collections::HashSet<_>>().len()
}

/// Hex SHA-256 of the rows as `entity,ip\n` lines in order: identifies the training data a
/// model was fitted on, whatever files and compression carried it.
pub fn digest(pairs: &[Pair]) -> String {
    let mut hasher = Sha256::new();
    for pair in pairs {
        hasher.update(pair.entity.as_bytes());
        hasher.update(b",");
        hasher.update(pair.ip.to_string().as_bytes());
        hasher.update(b"\n");
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn parsed(text: &[u8]) -> Result<Vec<Pair>, DataError> {
        let mut out = Vec::new();
        parse("part-0", text, &mut out).map(|()| out)
    }

    #[test]
    fn reads_unload_lines_with_commas_in_entities_and_crlf() {
        let pairs = parsed(b"alice,10.0.0.1\n\na,b,192.168.0.1\r\n,8.8.8.8\nerin,8.8.4.4");
        assert_eq!(
            pairs,
            Ok(vec![
                Pair::new("alice", Ipv4Addr::new(10, 0, 0, 1)),
                Pair::new("a,b", Ipv4Addr::new(192, 168, 0, 1)),
                Pair::new("", Ipv4Addr::new(8, 8, 8, 8)),
                Pair::new("erin", Ipv4Addr::new(8, 8, 4, 4)),
            ])
        );
    }

    #[test]
    fn a_line_without_a_dotted_ipv4_is_refused_with_its_number() {
        let refused = |text: &[u8]| parsed(text).err().map(|e| e.to_string());
        assert_eq!(
            refused(b"a,1.1.1.1\nb,256.1.1.1\n").as_deref(),
            Some("part-0:2: \"256.1.1.1\" is not a dotted IPv4 address")
        );
        assert_eq!(
            refused(b"a,1.1.1.1\n\nb,01.2.3.4\n").as_deref(),
            Some("part-0:3: \"01.2.3.4\" is not a dotted IPv4 address")
        );
        assert_eq!(refused(b"entity,ip\n").as_deref(), Some("part-0:1: \"ip\" is not a dotted IPv4 address"));
        assert_eq!(refused(b"a,::1\n").as_deref(), Some("part-0:1: \"::1\" is not a dotted IPv4 address"));
        assert_eq!(refused(b"no-comma\n").as_deref(), Some("part-0:1: no comma: expected entity,ipv4"));
        assert_eq!(refused(b"\xff,1.2.3.4\n").as_deref(), Some("part-0:1: not valid UTF-8"));
    }

    #[test]
    fn gzip_files_are_read_like_plain_ones() -> Result<(), Box<dyn std::error::Error>> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"alice,10.0.0.1\nbob,10.0.0.2\n")?;
        let bytes = gz.finish()?;
        assert_eq!(parsed(&bytes)?.len(), 2);
        assert!(matches!(parsed(&bytes[..bytes.len() / 2]), Err(DataError::Gzip { .. })));
        Ok(())
    }

    #[test]
    fn digest_depends_on_rows_and_order_and_entities_are_counted() {
        let a = Pair::new("a", Ipv4Addr::new(1, 2, 3, 4));
        let b = Pair::new("b", Ipv4Addr::new(1, 2, 3, 5));
        let ab = digest(&[a.clone(), b.clone()]);
        assert_eq!(ab.len(), 64);
        assert_ne!(ab, digest(&[b.clone(), a.clone()]));
        assert_eq!(digest(&[]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(distinct_entities(&[a.clone(), b, a]), 2);
    }
}
