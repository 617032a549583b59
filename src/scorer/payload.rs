//! InvokeEndpoint bodies: `text/csv`, one `entity,ip` line per distinct pair, each body below the
//! byte limit. The sample sent whole objects in one request and failed above 6 MB.

use std::fmt::Write;
use std::net::Ipv4Addr;
use std::ops::Range;

use super::pairs::Pair;

/// One request body and the pairs it scores, as a range of the batch's pair list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub body: String,
    pub pairs: Range<usize>,
}

/// Splits `pairs` into bodies of at most `max_bytes`. Every pair lands in exactly one chunk, in
/// order. A line never exceeds the limit: entities are capped at
/// [`super::pairs::MAX_ENTITY_BYTES`] and the configuration keeps the limit above that.
pub fn chunks(pairs: &[Pair], max_bytes: usize) -> Vec<Chunk> {
    chunks_of(pairs.iter().map(|p| (p.entity.as_str(), p.ip)), max_bytes)
}

/// [`chunks`] of any (entity, address) pairs, such as ad-hoc ones read from a file.
pub fn chunks_of<'a>(pairs: impl Iterator<Item = (&'a str, Ipv4Addr)>, max_bytes: usize) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut body = String::new();
    let mut start = 0;
    let mut line = String::new();
    let mut count = 0;
    for (i, (entity, ip)) in pairs.enumerate() {
        count = i + 1;
        line.clear();
        let _ = writeln!(line, "{entity},{ip}");
        if !body.is_empty() && body.len() + line.len() > max_bytes {
            out.push(Chunk { body: std::mem::take(&mut body), pairs: start..i });
            start = i;
        }
        body.push_str(&line);
    }
    if !body.is_empty() {
        out.push(Chunk { body, pairs: start..count });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scorer::pairs::Sightings;

    fn pairs(n: usize) -> Vec<Pair> {
        (0..n)
            .map(|i| Pair {
                entity: format!("i-{i:04}"),
                ip: Ipv4Addr::new(10, 0, (i / 256) as u8, (i % 256) as u8),
                seen: Sightings { count: 1, first_ms: None, last_ms: None, sources: vec![0] },
            })
            .collect()
    }

    #[test]
    fn every_pair_is_in_exactly_one_chunk_below_the_limit() {
        let pairs = pairs(1_000);
        let max = 1_024;
        let chunks = chunks(&pairs, max);
        let mut next = 0;
        for chunk in &chunks {
            assert!(chunk.body.len() <= max);
            assert_eq!(chunk.pairs.start, next);
            assert_eq!(chunk.body.lines().count(), chunk.pairs.len());
            for (line, pair) in chunk.body.lines().zip(&pairs[chunk.pairs.clone()]) {
                assert_eq!(line, format!("{},{}", pair.entity, pair.ip));
            }
            next = chunk.pairs.end;
        }
        assert_eq!(next, pairs.len());
        for w in chunks.windows(2) {
            let next = &pairs[w[1].pairs.start];
            let next_line = format!("{},{}\n", next.entity, next.ip);
            assert!(w[0].body.len() + next_line.len() > max, "a body closes only when the next line would not fit");
        }
    }

    #[test]
    fn a_body_that_fits_is_sent_whole_and_nothing_is_sent_for_no_pairs() {
        assert_eq!(chunks(&pairs(3), 5_000_000).len(), 1);
        assert!(chunks(&[], 5_000_000).is_empty());
    }
}
