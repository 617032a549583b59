//! Training and validation rows as Athena's `UNLOAD ... WITH (format = 'TEXTFILE',
//! field_delimiter = ',', compression = 'NONE')` writes them: `entity,ipv4` lines, no header,
//! no quoting, one or more files under a prefix. Bad rows are counted, never fatal, so one
//! malformed log line cannot fail a training run.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

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

/// The rows read from one file or directory, and how many lines were skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dataset {
    pub pairs: Vec<Pair>,
    /// Lines without a valid dotted IPv4 in the last column, or with an empty or NULL (`\N`)
    /// entity, or not valid UTF-8. Empty lines are not counted.
    pub skipped_lines: usize,
    /// The files read, in the order read.
    pub files: Vec<PathBuf>,
}

/// Why a data path could not be read.
#[derive(Debug, Error)]
pub enum DataError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no data files in {0}")]
    NoFiles(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io { path: path.to_path_buf(), source }
}

/// Parses one line; `None` when it is not a usable row.
///
/// TEXTFILE output does not quote, so an entity containing a comma is written as is: the
/// address is taken after the *last* comma and everything before it is the entity.
fn parse_line(line: &[u8]) -> Option<Pair> {
    let line = std::str::from_utf8(line).ok()?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let (entity, ip) = line.rsplit_once(',')?;
    if entity.is_empty() || entity == "\\N" {
        return None;
    }
    let ip: Ipv4Addr = ip.parse().ok()?;
    Some(Pair::new(entity, ip))
}

/// Parses the bytes of one file into `dataset`.
pub fn parse_into(bytes: &[u8], dataset: &mut Dataset) {
    for line in bytes.split(|&b| b == b'\n') {
        if line.is_empty() || line == b"\r" {
            continue;
        }
        match parse_line(line) {
            Some(pair) => dataset.pairs.push(pair),
            None => dataset.skipped_lines += 1,
        }
    }
}

/// Hadoop-style marker and hidden files (`_SUCCESS`, `.crc`, ...) are not data.
fn is_data_file(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| !n.starts_with('.') && !n.starts_with('_'))
}

/// Reads a file, or every regular data file directly in a directory in byte order of their
/// names (so that a run is reproducible whatever order the file system lists them in).
pub fn read_path(path: &Path) -> Result<Dataset, DataError> {
    let meta = fs::metadata(path).map_err(io_error(path))?;
    let files = if meta.is_dir() {
        let mut files = Vec::new();
        for entry in fs::read_dir(path).map_err(io_error(path))? {
            let entry = entry.map_err(io_error(path))?;
            let file = entry.path();
            let is_file = entry.file_type().map_err(io_error(&file))?.is_file();
            if is_file && is_data_file(&file) {
                files.push(file);
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(DataError::NoFiles(path.to_path_buf()));
        }
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut dataset = Dataset::default();
    for file in files {
        let bytes = fs::read(&file).map_err(io_error(&file))?;
        parse_into(&bytes, &mut dataset);
        dataset.files.push(file);
    }
    Ok(dataset)
}

/// Hex SHA-256 of the rows as `entity,ip\n` lines in order: identifies the training data a
/// model was fitted on, independent of how the rows were split into files.
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
    use super::*;

    #[test]
    fn parses_rows_and_counts_bad_lines() {
        let mut ds = Dataset::default();
        let text = "alice,10.0.0.1\nbob,256.1.1.1\n\ncarol,1.2.3\r\ndave,01.2.3.4\n\\N,1.1.1.1\nno-comma\n\
                    a,b,192.168.0.1\r\n,8.8.8.8\nerin,8.8.4.4";
        parse_into(text.as_bytes(), &mut ds);
        parse_into(b"\xff\xfe,1.2.3.4\n", &mut ds);
        assert_eq!(
            ds.pairs,
            vec![
                Pair::new("alice", Ipv4Addr::new(10, 0, 0, 1)),
                Pair::new("a,b", Ipv4Addr::new(192, 168, 0, 1)),
                Pair::new("erin", Ipv4Addr::new(8, 8, 4, 4)),
            ]
        );
        assert_eq!(ds.skipped_lines, 7);
    }

    #[test]
    fn reads_a_directory_in_name_order_and_a_single_file() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("b"), "second,2.2.2.2\n")?;
        fs::write(dir.path().join("a"), "first,1.1.1.1\nbad,x\n")?;
        fs::write(dir.path().join("_SUCCESS"), "")?;
        fs::create_dir(dir.path().join("sub"))?;
        let ds = read_path(dir.path())?;
        let entities: Vec<&str> = ds.pairs.iter().map(|p| p.entity.as_str()).collect();
        assert_eq!(entities, ["first", "second"]);
        assert_eq!(ds.skipped_lines, 1);
        assert_eq!(ds.files.len(), 2);
        let one = read_path(&dir.path().join("b"))?;
        assert_eq!(one.pairs.len(), 1);
        assert!(matches!(read_path(&dir.path().join("sub")), Err(DataError::NoFiles(_))));
        assert!(matches!(read_path(&dir.path().join("missing")), Err(DataError::Io { .. })));
        Ok(())
    }

    #[test]
    fn digest_depends_on_rows_and_order() {
        let a = Pair::new("a", Ipv4Addr::new(1, 2, 3, 4));
        let b = Pair::new("b", Ipv4Addr::new(1, 2, 3, 5));
        let ab = digest(&[a.clone(), b.clone()]);
        assert_eq!(ab.len(), 64);
        assert_ne!(ab, digest(&[b, a]));
        assert_eq!(digest(&[]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
