//! YAML text -> one JSON value per document, with the line and column of every field path.
//!
//! Built on yaml-rust2's event parser so that positions survive: the typed spec is then decoded
//! from the JSON value, and any error found later (schema, semantic) is mapped back to a line and
//! column through [`Positions`].
//!
//! Invariants:
//! - plain scalars resolve with the YAML 1.2 core schema (`true`, `42`, `1.5`, `null`, `~`);
//!   quoted and block scalars are always strings; mapping keys are always strings;
//! - a duplicate mapping key is an error (YAML forbids it and silently keeping one hides typos);
//! - anchors and aliases are allowed but their expansion is bounded ([`Limits`]), so an alias bomb
//!   costs an error, not the operator's memory;
//! - nesting deeper than [`Limits::max_depth`] is an error.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Number, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};
use yaml_rust2::Yaml;

/// A 1-based line and column in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Display for Pos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Where each field path of one document starts. Paths are JSON Pointers (`/spec/container/port`);
/// for a mapping entry the position is that of its key, for a sequence item that of the item.
#[derive(Debug, Clone, Default)]
pub struct Positions(BTreeMap<String, Pos>);

impl Positions {
    pub fn insert(&mut self, pointer: String, pos: Pos) {
        self.0.entry(pointer).or_insert(pos);
    }

    /// Every recorded pointer and its position.
    pub fn iter(&self) -> impl Iterator<Item = (&String, Pos)> + '_ {
        self.0.iter().map(|(k, v)| (k, *v))
    }

    /// The position of `pointer`, or of its nearest ancestor that has one.
    pub fn lookup(&self, pointer: &str) -> Option<Pos> {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.0.get(p) {
                return Some(*pos);
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return None,
            }
        }
    }
}

/// One parsed document: its value and where its fields are.
#[derive(Debug, Clone)]
pub struct YamlDocument {
    pub value: Value,
    pub positions: Positions,
    /// Where the document starts.
    pub start: Pos,
}

/// A document that could not be turned into a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Index of the document the error is in (0-based).
    pub document: usize,
    pub pos: Option<Pos>,
    pub message: String,
}

/// Bounds on what one file may make the loader build.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_depth: usize,
    /// Total nodes built per document, aliases counted at their expanded size.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 64,
            max_nodes: 100_000,
        }
    }
}

/// The outcome of loading one file: every document that parsed, and the errors of those that did not.
/// After a syntax error the parser cannot resynchronise, so later documents of that file are lost;
/// the error says so.
#[derive(Debug, Default)]
pub struct Loaded {
    pub documents: Vec<(usize, YamlDocument)>,
    pub errors: Vec<YamlError>,
}

/// Parse every document of a YAML stream. Empty documents (only comments, or `---` with nothing
/// after it) are skipped but still count for document indexes.
pub fn load(text: &str, limits: Limits) -> Loaded {
    let mut builder = Builder::new(limits);
    let mut parser = Parser::new_from_str(text);
    let result = parser.load(&mut builder, true);
    let mut loaded = Loaded {
        documents: builder.done,
        errors: builder.errors,
    };
    if let Err(e) = result {
        let m = e.marker();
        loaded.errors.push(YamlError {
            document: builder.doc_index,
            pos: Some(to_pos(m)),
            message: format!(
                "invalid YAML: {} (documents after this point are not read)",
                e.info()
            ),
        });
    }
    loaded
}

fn to_pos(m: &Marker) -> Pos {
    // yaml-rust2 markers: line is 1-based, column 0-based.
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

/// A JSON Pointer segment, escaped per RFC 6901.
pub fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

enum Frame {
    Seq {
        anchor: usize,
        items: Vec<Value>,
        pointer: String,
    },
    Map {
        anchor: usize,
        map: Map<String, Value>,
        pointer: String,
        pending_key: Option<String>,
    },
}

struct Builder {
    limits: Limits,
    stack: Vec<Frame>,
    anchors: HashMap<usize, (Value, usize)>,
    positions: Positions,
    nodes: usize,
    doc_index: usize,
    doc_start: Pos,
    doc_failed: Option<YamlError>,
    root: Option<Value>,
    done: Vec<(usize, YamlDocument)>,
    errors: Vec<YamlError>,
}

impl Builder {
    fn new(limits: Limits) -> Self {
        Builder {
            limits,
            stack: Vec::new(),
            anchors: HashMap::new(),
            positions: Positions::default(),
            nodes: 0,
            doc_index: 0,
            doc_start: Pos { line: 1, column: 1 },
            doc_failed: None,
            root: None,
            done: Vec::new(),
            errors: Vec::new(),
        }
    }

    fn fail(&mut self, pos: Pos, message: String) {
        if self.doc_failed.is_none() {
            self.doc_failed = Some(YamlError {
                document: self.doc_index,
                pos: Some(pos),
                message,
            });
        }
    }

    /// The pointer of the node that is about to be added at the top of the stack; for a mapping
    /// in key position, `None` (keys get no pointer of their own).
    fn child_pointer(&self) -> Option<String> {
        match self.stack.last() {
            None => Some(String::new()),
            Some(Frame::Seq { items, pointer, .. }) => Some(format!("{pointer}/{}", items.len())),
            Some(Frame::Map {
                pending_key: Some(k),
                pointer,
                ..
            }) => Some(format!("{pointer}/{}", escape_pointer(k))),
            Some(Frame::Map {
                pending_key: None, ..
            }) => None,
        }
    }

    fn count(&mut self, n: usize, pos: Pos) -> bool {
        self.nodes += n;
        if self.nodes > self.limits.max_nodes {
            self.fail(
                pos,
                format!(
                    "document too large: more than {} nodes once aliases are expanded",
                    self.limits.max_nodes
                ),
            );
            return false;
        }
        true
    }

    /// Add a finished node to its parent (or make it the root), recording its anchor.
    fn add(&mut self, value: Value, anchor: usize, size: usize, pos: Pos) {
        if anchor > 0 {
            self.anchors.insert(anchor, (value.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.root = Some(value),
            Some(Frame::Seq { items, .. }) => items.push(value),
            Some(Frame::Map {
                pending_key, map, ..
            }) => match pending_key.take() {
                Some(k) => {
                    map.insert(k, value);
                }
                None => {
                    // Key position.
                    let key = match value {
                        Value::String(s) => s,
                        Value::Number(n) => n.to_string(),
                        Value::Bool(b) => b.to_string(),
                        Value::Null => "null".to_string(),
                        _ => {
                            self.fail(pos, "mapping keys must be plain strings".to_string());
                            return;
                        }
                    };
                    if map.contains_key(&key) {
                        let msg = format!("duplicate key `{key}`");
                        self.fail(pos, msg);
                        return;
                    }
                    if let Some(Frame::Map {
                        pointer,
                        pending_key,
                        ..
                    }) = self.stack.last_mut()
                    {
                        let p = format!("{pointer}/{}", escape_pointer(&key));
                        *pending_key = Some(key);
                        self.positions.insert(p, pos);
                    }
                }
            },
        }
    }

    fn reset_document(&mut self) {
        self.stack.clear();
        self.anchors.clear();
        self.positions = Positions::default();
        self.nodes = 0;
        self.doc_failed = None;
        self.root = None;
    }
}

/// A plain (unquoted) scalar resolved with the YAML 1.2 core schema, as the loader resolves one:
/// `42` is a number, `true` a boolean, `~` null, anything else a string. Used where a value comes
/// from outside a YAML file (`render --set path=value`).
pub fn resolve_scalar(text: &str) -> Value {
    resolve_plain(text, None)
}

fn resolve_plain(text: &str, tag: Option<&Tag>) -> Value {
    if let Some(t) = tag {
        if t.handle == "!!" && t.suffix == "str" {
            return Value::String(text.to_string());
        }
    }
    match Yaml::from_str(text) {
        Yaml::Integer(i) => Value::Number(i.into()),
        Yaml::Real(r) => match r.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Value::Number(n),
            None => Value::String(text.to_string()),
        },
        Yaml::Boolean(b) => Value::Bool(b),
        Yaml::Null => Value::Null,
        _ => Value::String(text.to_string()),
    }
}

fn value_size(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(value_size).sum::<usize>(),
        Value::Object(o) => 1 + o.values().map(value_size).sum::<usize>(),
        _ => 1,
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = to_pos(&mark);
        if self.doc_failed.is_some() && !matches!(ev, Event::DocumentEnd | Event::StreamEnd) {
            // Drain the rest of a failed document, but keep the nesting consistent.
            return;
        }
        match ev {
            Event::Nothing | Event::StreamStart | Event::StreamEnd => {}
            Event::DocumentStart => {
                self.reset_document();
                self.doc_start = pos;
            }
            Event::DocumentEnd => {
                if let Some(err) = self.doc_failed.take() {
                    self.errors.push(err);
                } else if let Some(value) = self.root.take() {
                    if !value.is_null() {
                        let positions = std::mem::take(&mut self.positions);
                        self.done.push((
                            self.doc_index,
                            YamlDocument {
                                value,
                                positions,
                                start: self.doc_start,
                            },
                        ));
                    }
                }
                self.reset_document();
                self.doc_index += 1;
            }
            Event::Alias(id) => {
                let Some((value, size)) = self.anchors.get(&id).cloned() else {
                    self.fail(pos, "alias to an unknown anchor".to_string());
                    return;
                };
                if !self.count(size, pos) {
                    return;
                }
                if let Some(p) = self.child_pointer() {
                    self.positions.insert(p, pos);
                }
                self.add(value, 0, size, pos);
            }
            Event::Scalar(text, style, anchor, tag) => {
                if !self.count(1, pos) {
                    return;
                }
                let value = match style {
                    TScalarStyle::Plain => resolve_plain(&text, tag.as_ref()),
                    _ => Value::String(text),
                };
                if let Some(p) = self.child_pointer() {
                    self.positions.insert(p, pos);
                }
                self.add(value, anchor, 1, pos);
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                if !self.count(1, pos) {
                    return;
                }
                if self.stack.len() >= self.limits.max_depth {
                    self.fail(
                        pos,
                        format!("nesting deeper than {} levels", self.limits.max_depth),
                    );
                    return;
                }
                let Some(pointer) = self.child_pointer() else {
                    self.fail(pos, "mapping keys must be plain strings".to_string());
                    return;
                };
                self.positions.insert(pointer.clone(), pos);
                let frame = if matches!(ev, Event::SequenceStart(..)) {
                    Frame::Seq {
                        anchor,
                        items: Vec::new(),
                        pointer,
                    }
                } else {
                    Frame::Map {
                        anchor,
                        map: Map::new(),
                        pointer,
                        pending_key: None,
                    }
                };
                self.stack.push(frame);
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return;
                };
                let (value, anchor) = match frame {
                    Frame::Seq { anchor, items, .. } => (Value::Array(items), anchor),
                    Frame::Map { anchor, map, .. } => (Value::Object(map), anchor),
                };
                let size = if anchor > 0 { value_size(&value) } else { 0 };
                self.add(value, anchor, size, pos);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> YamlDocument {
        let l = load(text, Limits::default());
        assert!(l.errors.is_empty(), "{:?}", l.errors);
        assert_eq!(l.documents.len(), 1);
        l.documents.into_iter().next().unwrap().1
    }

    #[test]
    fn plain_scalars_resolve_with_the_core_schema_and_quoted_ones_stay_strings() {
        let d = one("a: 1\nb: true\nc: '1'\nd: 1.5\ne: ~\nf: hello\ng: \"true\"\n");
        assert_eq!(
            d.value,
            serde_json::json!({"a": 1, "b": true, "c": "1", "d": 1.5, "e": null, "f": "hello", "g": "true"})
        );
    }

    #[test]
    fn positions_are_one_based_line_and_column_of_the_key() {
        let d = one("spec:\n  container:\n    port: 70000\n  items:\n    - x\n    - y\n");
        assert_eq!(
            d.positions.lookup("/spec/container/port"),
            Some(Pos { line: 3, column: 5 })
        );
        assert_eq!(
            d.positions.lookup("/spec/items/1"),
            Some(Pos { line: 6, column: 7 })
        );
        // An absent child maps to its nearest ancestor.
        assert_eq!(
            d.positions.lookup("/spec/container/missing"),
            Some(Pos { line: 2, column: 3 })
        );
    }

    #[test]
    fn several_documents_keep_their_indexes_and_empty_ones_are_skipped() {
        let l = load("a: 1\n---\n# nothing\n---\nb: 2\n", Limits::default());
        let idx: Vec<usize> = l.documents.iter().map(|(i, _)| *i).collect();
        assert_eq!(idx, vec![0, 2]);
    }

    #[test]
    fn duplicate_keys_are_an_error_with_position() {
        let l = load("a: 1\nb: 2\na: 3\n", Limits::default());
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].pos, Some(Pos { line: 3, column: 1 }));
        assert!(l.errors[0].message.contains("duplicate key `a`"));
    }

    #[test]
    fn syntax_errors_carry_document_index_and_position() {
        let l = load("a: 1\n---\nb: [1, 2\n", Limits::default());
        assert_eq!(l.documents.len(), 1);
        assert_eq!(l.errors.len(), 1);
        assert_eq!(l.errors[0].document, 1);
        assert!(l.errors[0].pos.is_some());
    }

    #[test]
    fn alias_bombs_stop_at_the_node_limit() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let l = load(&text, Limits::default());
        assert!(l.documents.is_empty());
        assert!(l.errors[0].message.contains("too large"), "{:?}", l.errors);
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let text = "[".repeat(200) + &"]".repeat(200);
        let l = load(&text, Limits::default());
        assert!(l.documents.is_empty());
        assert!(
            l.errors[0].message.contains("nesting deeper"),
            "{:?}",
            l.errors
        );
    }

    #[test]
    fn anchors_within_limits_expand() {
        let d = one("base: &b {x: 1}\nother: *b\n");
        assert_eq!(
            d.value,
            serde_json::json!({"base": {"x": 1}, "other": {"x": 1}})
        );
    }
}
