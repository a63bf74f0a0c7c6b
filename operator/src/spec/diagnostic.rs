//! One validation error, located as precisely as the input allows.

use std::fmt;

use serde::Serialize;

use super::yaml::Pos;

/// An error in a spec file. `document` is the 0-based index of the document in its file (absent
/// for errors about the whole file); `path` is the dotted field path (`spec.container.port`,
/// `spec.loadBalancers[0].subnets`), empty for the document itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<usize>,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    pub message: String,
}

impl Diagnostic {
    pub fn file_level(file: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            document: None,
            path: String::new(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn at(
        file: &str,
        document: usize,
        pointer: &str,
        pos: Option<Pos>,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.to_string(),
            document: Some(document),
            path: pointer_to_path(pointer),
            line: pos.map(|p| p.line),
            column: pos.map(|p| p.column),
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    /// `file:line:col: document N: path: message`, leaving out the parts that are unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let (Some(l), Some(c)) = (self.line, self.column) {
            write!(f, ":{l}:{c}")?;
        }
        if let Some(d) = self.document {
            write!(f, ": document {d}")?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// `/spec/loadBalancers/0/subnets` -> `spec.loadBalancers[0].subnets`.
pub fn pointer_to_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&seg);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_render_as_dotted_paths_with_indexes() {
        assert_eq!(
            pointer_to_path("/spec/loadBalancers/0/subnets"),
            "spec.loadBalancers[0].subnets"
        );
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(
            pointer_to_path("/metadata/annotations/ecs-operator.io~1adopt"),
            "metadata.annotations.ecs-operator.io/adopt"
        );
    }

    #[test]
    fn display_names_file_position_document_and_path() {
        let d = Diagnostic::at(
            "a.yaml",
            1,
            "/spec/cluster",
            Some(Pos { line: 4, column: 3 }),
            "bad",
        );
        assert_eq!(d.to_string(), "a.yaml:4:3: document 1: spec.cluster: bad");
    }
}
