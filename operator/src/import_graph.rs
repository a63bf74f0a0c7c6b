//! The crate's import graph, read from its own sources, and the layout rules it must keep
//! (checked by the tests below, over `operator/src/**.rs`):
//! - `resources` never imports `controller` (the contract between them is `reconcile`);
//! - no import cycle spans two units, a unit being one top-level module (`cli`, `controller`,
//!   `store`...), one module directly under `resources` (`resources::shared`,
//!   `resources::driver`, `resources::run`...), or one kind folder (`resources::kinds::<kind>`).
//!   A cycle inside a unit (a folder's `mod.rs` and the files that implement it) is fine.
//!
//! How edges are found: every `use crate::` / `use super::` / `use self::` tree and every
//! inline `crate::` / `super::` path outside comments and `#[cfg(test)]` code, resolved to the
//! deepest module that exists, then through that module's `pub use` re-exports to the module
//! that defines the item. `mod x;` declarations are not edges. Test-only files (declared
//! `#[cfg(test)] mod x;`) are left out.

use std::collections::{BTreeMap, BTreeSet};

/// A module path below the crate root (`["resources", "kinds", "target_group"]`); the root is
/// empty.
pub type ModPath = Vec<String>;

/// The module graph of a crate: for each module, the modules it imports.
#[derive(Debug, Default)]
pub struct Graph {
    pub edges: BTreeMap<ModPath, BTreeSet<ModPath>>,
}

/// The module path of a source file relative to `src/` (`resources/kinds/tg/mod.rs` ->
/// `resources::kinds::tg`), `None` for the binary's `main.rs`.
pub fn module_of(relative: &str) -> Option<ModPath> {
    let trimmed = relative.strip_suffix(".rs")?;
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_string).collect();
    match parts.last().map(String::as_str) {
        Some("main") if parts.len() == 1 => return None,
        Some("lib") if parts.len() == 1 => parts.clear(),
        Some("mod") => {
            parts.pop();
        }
        _ => {}
    }
    Some(parts)
}

/// The source without comments, string contents and `#[cfg(test)]` items.
fn code_of(source: &str) -> String {
    let mut out = String::with_capacity(source.len());
    let bytes: Vec<char> = source.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let next = bytes.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < bytes.len() && bytes[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < bytes.len() && !(bytes[i] == '*' && bytes[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && !(i > 0 && (bytes[i - 1].is_alphanumeric() || bytes[i - 1] == '_'))
        {
            // A raw string: r"..." or r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while bytes.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if bytes.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            while j < bytes.len() {
                if bytes[j] == '"' && (1..=hashes).all(|h| bytes.get(j + h) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '\'' && next == Some('\\') {
            // An escaped char literal: '\'', '\\', '\"', '\u{..}'.
            let mut j = i + 3;
            while j < bytes.len() && bytes[j] != '\'' {
                j += 1;
            }
            out.push_str("' '");
            i = j + 1;
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < bytes.len() && bytes[i] != '"' {
                if bytes[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && next.is_some_and(|n| n != '\\') && bytes.get(i + 2) == Some(&'\'') {
            // A char literal such as '"' or '{'.
            out.push_str("' '");
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    strip_cfg_test(&out)
}

/// Drop every item that follows `#[cfg(test)]`: up to its `;` or its balanced `{...}`.
fn strip_cfg_test(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]") {
        out.push_str(&rest[..at]);
        let item = &rest[at + "#[cfg(test)]".len()..];
        let end = match (item.find(';'), item.find('{')) {
            (Some(semi), Some(brace)) if semi < brace => semi + 1,
            (_, Some(brace)) => {
                let mut depth = 0usize;
                let mut end = item.len();
                for (k, ch) in item[brace..].char_indices() {
                    match ch {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = brace + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (Some(semi), None) => semi + 1,
            (None, None) => item.len(),
        };
        rest = &item[end..];
    }
    out.push_str(rest);
    out
}

/// The modules a file declares as test-only (`#[cfg(test)] mod x;`).
fn test_only_children(source: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = source;
    while let Some(at) = rest.find("#[cfg(test)]") {
        let item = rest[at + "#[cfg(test)]".len()..].trim_start();
        if let Some(decl) = item.strip_prefix("mod ") {
            if let Some((name, _)) = decl.split_once(';') {
                if !name.contains('{') {
                    out.push(name.trim().to_string());
                }
            }
        }
        rest = &rest[at + 1..];
    }
    out
}

/// One `use` tree flattened: every path it names (`a::{b, c::d}` -> `a::b`, `a::c::d`).
/// `self` inside braces names the prefix itself; globs end the path at their prefix.
fn flatten_use(tree: &str) -> Vec<Vec<String>> {
    fn go(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim();
        if tree.is_empty() {
            return;
        }
        if let Some(open) = tree.find('{') {
            let head: Vec<String> = tree[..open]
                .split("::")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let mut p = prefix.to_vec();
            p.extend(head);
            let mut depth = 0usize;
            let mut start = 0;
            for (k, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        go(&p, &inner[start..k], out);
                        start = k + 1;
                    }
                    _ => {}
                }
            }
            go(&p, &inner[start..], out);
            return;
        }
        let path = tree.split(" as ").next().unwrap_or(tree);
        let mut p = prefix.to_vec();
        for seg in path.split("::").map(str::trim) {
            match seg {
                "*" => break,
                "self" if !p.is_empty() => {}
                s => p.push(s.to_string()),
            }
        }
        out.push(p);
    }
    let mut out = Vec::new();
    go(&[], tree, &mut out);
    out
}

/// The `use` statements of some code (`pub`: whether it is a re-export) and the code without
/// them.
fn split_uses(code: &str) -> (Vec<(bool, String)>, String) {
    let mut uses = Vec::new();
    let mut rest = String::new();
    let mut cursor = 0;
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    while let Some(found) = code[cursor..].find("use ") {
        let at = cursor + found;
        let before = code[..at].chars().next_back();
        if before.is_some_and(is_ident) {
            rest.push_str(&code[cursor..at + 4]);
            cursor = at + 4;
            continue;
        }
        let public = code[..at].trim_end().ends_with("pub")
            || code[..at].trim_end().ends_with(')') && code[..at].contains("pub(");
        let Some(semi) = code[at..].find(';') else {
            break;
        };
        rest.push_str(&code[cursor..at]);
        uses.push((public, code[at + 4..at + semi].to_string()));
        cursor = at + semi + 1;
    }
    rest.push_str(&code[cursor..]);
    (uses, rest)
}

/// Inline paths: `crate::a::b`, `super::super::x` (the segments after the first).
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let chars: Vec<char> = code.chars().collect();
    let word = |i: usize| -> (String, usize) {
        let mut j = i;
        while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
            j += 1;
        }
        (chars[i..j].iter().collect(), j)
    };
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if starts_word && (chars[i].is_alphabetic() || chars[i] == '_') {
            let (w, mut j) = word(i);
            if (w == "crate" || w == "super") && chars.get(j) == Some(&':') {
                let mut path = vec![w];
                while chars.get(j) == Some(&':') && chars.get(j + 1) == Some(&':') {
                    let (seg, k) = word(j + 2);
                    if seg.is_empty() {
                        break;
                    }
                    path.push(seg);
                    j = k;
                }
                out.push(path);
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// One module's source, as the graph builder needs it.
struct Parsed {
    /// Paths it imports (first segment `crate`, `super` or `self`).
    paths: Vec<Vec<String>>,
    /// Its re-exports: item name -> the path it re-exports.
    reexports: BTreeMap<String, Vec<String>>,
}

fn parse(source: &str) -> Parsed {
    let code = code_of(source);
    let (uses, rest) = split_uses(&code);
    let mut paths = Vec::new();
    let mut reexports = BTreeMap::new();
    for (public, tree) in uses {
        for p in flatten_use(&tree) {
            // A path that starts with another name is a child module's (resolved against the
            // module tree later) or an external crate's (then it resolves to nothing).
            let p: Vec<String> = if matches!(
                p.first().map(String::as_str),
                Some("crate" | "super" | "self")
            ) {
                p
            } else {
                std::iter::once("self".to_string()).chain(p).collect()
            };
            if public {
                if let Some(last) = p.last() {
                    let name = tree
                        .split(" as ")
                        .nth(1)
                        .filter(|_| !tree.contains('{'))
                        .map(|a| a.trim().to_string())
                        .unwrap_or_else(|| last.clone());
                    reexports.insert(name, p.clone());
                }
            }
            paths.push(p);
        }
    }
    paths.extend(inline_paths(&rest));
    Parsed { paths, reexports }
}

impl Graph {
    /// The graph of `files`: source text by path relative to `src/` (`controller/mod.rs`).
    pub fn build(files: &BTreeMap<String, String>) -> Graph {
        let mut test_only = BTreeSet::new();
        let mut modules: BTreeMap<ModPath, Parsed> = BTreeMap::new();
        for (path, source) in files {
            let Some(m) = module_of(path) else {
                continue;
            };
            for child in test_only_children(source) {
                let mut c = m.clone();
                c.push(child);
                test_only.insert(c);
            }
            modules.insert(m, parse(source));
        }
        modules.retain(|m, _| !test_only.iter().any(|t| m.starts_with(t)));
        let mut graph = Graph::default();
        for (m, parsed) in &modules {
            let targets = graph.edges.entry(m.clone()).or_default();
            for p in &parsed.paths {
                if let Some(t) = resolve(&modules, m, p, 0) {
                    if &t != m {
                        targets.insert(t);
                    }
                }
            }
        }
        graph
    }

    /// Every import cycle: the strongly connected components of more than one module.
    pub fn cycles(&self) -> Vec<Vec<ModPath>> {
        let nodes: Vec<&ModPath> = self.edges.keys().collect();
        let index_of: BTreeMap<&ModPath, usize> =
            nodes.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        let adjacency: Vec<Vec<usize>> = nodes
            .iter()
            .map(|m| {
                self.edges[*m]
                    .iter()
                    .filter_map(|t| index_of.get(t).copied())
                    .collect()
            })
            .collect();
        tarjan(&adjacency)
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|c| {
                let mut v: Vec<ModPath> = c.into_iter().map(|i| nodes[i].clone()).collect();
                v.sort();
                v
            })
            .collect()
    }
}

/// The module `path` (as written in module `from`) refers to, following re-exports.
fn resolve(
    modules: &BTreeMap<ModPath, Parsed>,
    from: &ModPath,
    path: &[String],
    depth: usize,
) -> Option<ModPath> {
    let mut at: ModPath = from.clone();
    let mut segments = path.iter().peekable();
    match segments.peek().map(|s| s.as_str()) {
        Some("crate") => {
            at.clear();
            segments.next();
        }
        Some("self") => {
            segments.next();
            // `self::x` (or a bare `x::...` in a `use`) must name a child module: an external
            // crate's path names nothing here.
            let mut child = at.clone();
            child.push(segments.peek()?.to_string());
            if !modules.contains_key(&child) {
                return None;
            }
        }
        Some("super") => {
            while segments.peek().map(|s| s.as_str()) == Some("super") {
                at.pop();
                segments.next();
            }
        }
        _ => return None,
    }
    for seg in segments {
        let mut child = at.clone();
        child.push(seg.clone());
        if modules.contains_key(&child) {
            at = child;
            continue;
        }
        if depth < 8 {
            if let Some(target) = modules.get(&at).and_then(|p| p.reexports.get(seg)) {
                if let Some(t) = resolve(modules, &at, target, depth + 1) {
                    return Some(t);
                }
            }
        }
        break;
    }
    Some(at)
}

/// Tarjan's strongly connected components.
fn tarjan(adjacency: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        adjacency: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn visit(s: &mut State<'_>, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for k in 0..s.adjacency[v].len() {
            let w = s.adjacency[v][k];
            match s.index[w] {
                None => {
                    visit(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            s.out.push(component);
        }
    }
    let n = adjacency.len();
    let mut s = State {
        adjacency,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The unit a module belongs to for the cycle rule (see the module doc).
pub fn unit_of(m: &ModPath) -> String {
    let depth = match m.first().map(String::as_str) {
        Some("resources") if m.get(1).map(String::as_str) == Some("kinds") => 3,
        Some("resources") => 2,
        _ => 1,
    };
    m.iter().take(depth).cloned().collect::<Vec<_>>().join("::")
}

/// What breaks the layout rules: cycles spanning two units, and `resources` importing
/// `controller`. Empty when the layout holds.
pub fn violations(graph: &Graph) -> Vec<String> {
    let name = |m: &ModPath| format!("crate::{}", m.join("::"));
    let mut out = Vec::new();
    for cycle in graph.cycles() {
        let units: BTreeSet<String> = cycle.iter().map(unit_of).collect();
        if units.len() > 1 {
            out.push(format!(
                "import cycle across {}: {}",
                units.into_iter().collect::<Vec<_>>().join(", "),
                cycle.iter().map(name).collect::<Vec<_>>().join(" <-> ")
            ));
        }
    }
    for (m, targets) in &graph.edges {
        if m.first().map(String::as_str) != Some("resources") {
            continue;
        }
        for t in targets {
            if t.first().map(String::as_str) == Some("controller") {
                out.push(format!("{} imports {}", name(m), name(t)));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(p, s)| (p.to_string(), s.to_string()))
            .collect()
    }

    /// Every `.rs` file under this crate's `src/`.
    fn crate_sources() -> BTreeMap<String, String> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = BTreeMap::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("read src") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let rel = path.strip_prefix(&root).expect("under src");
                    out.insert(
                        rel.to_string_lossy().replace('\\', "/"),
                        std::fs::read_to_string(&path).expect("read source"),
                    );
                }
            }
        }
        out
    }

    #[test]
    fn the_operator_has_no_cycle_across_units_and_resources_never_import_controller() {
        let sources = crate_sources();
        assert!(sources.len() > 50, "read {} files", sources.len());
        let graph = Graph::build(&sources);
        // The graph is read at all: the resources' reconciler depends on the contract.
        assert!(
            graph.edges[&vec!["resources".to_string(), "reconciler".to_string()]]
                .contains(&vec!["reconcile".to_string()])
        );
        let v = violations(&graph);
        assert!(v.is_empty(), "{}", v.join("\n"));
    }

    #[test]
    fn a_planted_cycle_between_two_kinds_is_found() {
        let g = Graph::build(&files(&[
            ("lib.rs", "pub mod resources;"),
            ("resources/mod.rs", "pub mod kinds;\npub mod shared;"),
            ("resources/shared/mod.rs", "pub const X: u8 = 1;"),
            ("resources/kinds/mod.rs", "pub mod a;\npub mod b;"),
            (
                "resources/kinds/a/mod.rs",
                "mod plan;\nuse super::b::thing;\nuse crate::resources::shared::X;",
            ),
            ("resources/kinds/a/plan.rs", "use super::Desired;"),
            (
                "resources/kinds/b/mod.rs",
                "pub fn thing() { crate::resources::kinds::a::go() }",
            ),
        ]));
        let v = violations(&g);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(
            v[0].contains("resources::kinds::a, resources::kinds::b"),
            "{v:?}"
        );
        // a <-> a::plan is one kind's folder: not a violation on its own.
        assert!(!v[0].contains("plan"), "{v:?}");
    }

    #[test]
    fn an_import_through_a_re_export_counts_as_an_import_of_its_definer() {
        let g = Graph::build(&files(&[
            ("lib.rs", "pub mod controller;\npub mod resources;"),
            (
                "resources/mod.rs",
                "pub mod run;\npub mod error;\npub use error::{ResourceError, Other as O};",
            ),
            ("resources/error.rs", "pub enum ResourceError {}"),
            (
                "resources/run.rs",
                "use super::ResourceError;\nfn f() { let _ = crate::controller::Report::new(); }",
            ),
            (
                "controller/mod.rs",
                "use crate::resources::run; pub struct Report;",
            ),
        ]));
        let run = vec!["resources".to_string(), "run".to_string()];
        assert!(g.edges[&run].contains(&vec!["resources".to_string(), "error".to_string()]));
        let v = violations(&g);
        assert!(
            v.iter()
                .any(|m| m == "crate::resources::run imports crate::controller"),
            "{v:?}"
        );
        assert!(
            v.iter()
                .any(|m| m.starts_with("import cycle across controller, resources::run")),
            "{v:?}"
        );
    }

    #[test]
    fn comments_strings_and_test_code_are_not_imports() {
        let g = Graph::build(&files(&[
            ("lib.rs", "pub mod a;\npub mod b;\n#[cfg(test)]\nmod c;"),
            (
                "a/mod.rs",
                "// use crate::b;\n/// see crate::b::X\nconst S: &str = \"crate::b::X\";\n#[cfg(test)]\nmod tests { use crate::b::Y; }",
            ),
            ("b/mod.rs", "use crate::a;"),
            ("c.rs", "use crate::a;"),
        ]));
        assert!(g.edges[&vec!["a".to_string()]].is_empty(), "{g:?}");
        assert!(!g.edges.contains_key(&vec!["c".to_string()]));
        assert!(g.cycles().is_empty());
    }

    #[test]
    fn use_trees_flatten_to_every_path_they_name() {
        assert_eq!(
            flatten_use("crate::a::{b, c::{d, self}, e as f, g::*}"),
            vec![
                vec!["crate", "a", "b"],
                vec!["crate", "a", "c", "d"],
                vec!["crate", "a", "c"],
                vec!["crate", "a", "e"],
                vec!["crate", "a", "g"],
            ]
        );
    }
}
