//! Maps a field path such as `spec.training.hyperparameters.vectorDim` back to its line and column,
//! so that semantic errors point into the file just as parse errors do.

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based position in the manifest text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One step of a field path: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

/// Renders a path as users write it: `spec.sources[1].name`.
pub fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Finds where the value at `path` starts. Falls back to the deepest ancestor that exists,
/// so a missing field points at the mapping that should hold it.
pub fn locate(source: &str, path: &[Segment]) -> Option<Position> {
    let mut walker = Walker { target: path, stack: Vec::new(), best: None };
    // A document that does not parse has already been reported by the deserializer.
    Parser::new_from_str(source).load(&mut walker, false).ok()?;
    walker.best.map(|(_, marker)| Position { line: marker.line(), column: marker.col() + 1 })
}

enum Frame {
    /// `located`: whether the mapping's own position (that of its first key) is recorded yet.
    Mapping {
        path: Vec<Segment>,
        pending_key: Option<String>,
        expecting_key: bool,
        located: bool,
    },
    Sequence {
        path: Vec<Segment>,
        next: usize,
    },
}

struct Walker<'a> {
    target: &'a [Segment],
    stack: Vec<Frame>,
    /// Longest matched prefix so far and where its value starts.
    best: Option<(usize, Marker)>,
}

impl Walker<'_> {
    /// The path of the node that the next event starts, or `None` for a mapping key.
    fn next_node_path(&mut self) -> Option<Vec<Segment>> {
        match self.stack.last_mut() {
            None => Some(Vec::new()),
            Some(Frame::Sequence { path, next }) => {
                let mut p = path.clone();
                p.push(Segment::Index(*next));
                *next += 1;
                Some(p)
            }
            Some(Frame::Mapping { path, pending_key, expecting_key, .. }) => {
                if *expecting_key {
                    None
                } else {
                    *expecting_key = true;
                    let mut p = path.clone();
                    p.push(Segment::Key(pending_key.take().unwrap_or_default()));
                    Some(p)
                }
            }
        }
    }

    fn consider(&mut self, path: &[Segment], marker: Marker) {
        if self.target.starts_with(path) && self.best.is_none_or(|(len, _)| path.len() > len) {
            self.best = Some((path.len(), marker));
        }
    }
}

impl MarkedEventReceiver for Walker<'_> {
    fn on_event(&mut self, event: Event, marker: Marker) {
        match event {
            Event::Scalar(value, ..) => match self.next_node_path() {
                Some(path) => self.consider(&path, marker),
                None => {
                    let mut first_key_of = None;
                    if let Some(Frame::Mapping { path, pending_key, expecting_key, located }) = self.stack.last_mut() {
                        *pending_key = Some(value);
                        *expecting_key = false;
                        if !*located {
                            *located = true;
                            first_key_of = Some(path.clone());
                        }
                    }
                    // A block mapping is best pointed at by its first key.
                    if let Some(path) = first_key_of {
                        self.consider(&path, marker);
                    }
                }
            },
            Event::MappingStart(..) => {
                let path = self.next_node_path().unwrap_or_default();
                self.stack.push(Frame::Mapping { path, pending_key: None, expecting_key: true, located: false });
            }
            Event::SequenceStart(..) => {
                let path = self.next_node_path().unwrap_or_default();
                self.consider(&path, marker);
                self.stack.push(Frame::Sequence { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                if let Some(path) = self.next_node_path() {
                    self.consider(&path, marker);
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.to_owned())
    }

    const DOC: &str = "a: 1\nspec:\n  list:\n    - name: x\n    - name: y\n      deep:\n        v: 7\n";

    #[test]
    fn finds_nested_scalar() {
        let pos = locate(DOC, &[key("spec"), key("list"), Segment::Index(1), key("deep"), key("v")]);
        assert_eq!(pos, Some(Position { line: 7, column: 12 }));
    }

    #[test]
    fn finds_sequence_item_field() {
        let pos = locate(DOC, &[key("spec"), key("list"), Segment::Index(0), key("name")]);
        assert_eq!(pos, Some(Position { line: 4, column: 13 }));
    }

    #[test]
    fn missing_field_points_at_deepest_parent() {
        let pos = locate(DOC, &[key("spec"), key("list"), Segment::Index(1), key("missing")]);
        assert_eq!(pos, Some(Position { line: 5, column: 7 }));
    }

    #[test]
    fn renders_paths() {
        assert_eq!(
            render(&[key("spec"), key("sources"), Segment::Index(2), key("version")]),
            "spec.sources[2].version"
        );
    }
}
