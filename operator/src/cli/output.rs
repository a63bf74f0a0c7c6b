//! Output formats shared by commands: aligned tables, JSON, YAML.

use serde_json::Value;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

/// A JSON value as YAML text (a single document, starting with `---`).
pub fn to_yaml(value: &Value) -> String {
    fn convert(v: &Value) -> Yaml {
        match v {
            Value::Null => Yaml::Null,
            Value::Bool(b) => Yaml::Boolean(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Yaml::Integer(i),
                None => Yaml::Real(n.to_string()),
            },
            Value::String(s) => Yaml::String(s.clone()),
            Value::Array(a) => Yaml::Array(a.iter().map(convert).collect()),
            Value::Object(o) => {
                let mut h = Hash::new();
                for (k, v) in o {
                    h.insert(Yaml::String(k.clone()), convert(v));
                }
                Yaml::Hash(h)
            }
        }
    }
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter
        .dump(&convert(value))
        .expect("writing to a String cannot fail");
    out.push('\n');
    out
}

/// Rows as a table with columns padded to their widest cell; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_output_round_trips_through_the_loader() {
        let v = serde_json::json!({"a": [1, "two", {"b": null}], "c": "yes", "d": "1.0"});
        let text = to_yaml(&v);
        let loaded = crate::spec::yaml::load(&text, Default::default());
        assert_eq!(loaded.documents[0].1.value, v, "{text}");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(&["A", "B"], &[vec!["long-value".into(), "x".into()]]);
        assert_eq!(t, "A           B\nlong-value  x\n");
    }
}
