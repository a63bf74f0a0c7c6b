//! From one HTTP request to the operation it calls and its input as a tree of member names
//! ([`Decoded`]), for each wire protocol the models use: awsJson (the body is the tree),
//! awsQuery and EC2 (form keys `Member.member.N`, `Member.entry.N.key`, `Member.N` flattened,
//! read against the input shape), and REST-XML (path labels, query string, headers and the
//! XML body, each placed by the member's `location`).
//!
//! Invariant: nothing in the request is dropped on the way. A key, element or query parameter
//! that names no member is kept under its wire name, so the validator reports it as unknown.
//! The only things left out are protocol plumbing, listed at [`PLUMBING_QUERY`].

use serde_json::{Map, Value};

use super::model::{self, Member, Model, Shape, WireProtocol};
use crate::proxy::Request;

/// A request read against its model.
#[derive(Debug)]
pub struct Decoded {
    pub model: &'static Model,
    pub operation: String,
    /// The input members, named as the model names them (absent: the operation has no input).
    pub input: Value,
    /// Scalars arrived as text (query, EC2, REST): numbers and booleans are parsed by the validator.
    pub textual: bool,
}

/// Why a request could not be read against a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    pub service: String,
    pub operation: String,
    pub reason: String,
}

/// Query parameters the REST protocols add that are not input members: the Rust SDK's
/// `x-id=<Operation>` hint on S3 calls.
pub const PLUMBING_QUERY: &[&str] = &["x-id"];

fn unreadable(service: &str, operation: &str, reason: impl Into<String>) -> Unreadable {
    Unreadable {
        service: service.into(),
        operation: operation.into(),
        reason: reason.into(),
    }
}

/// Read `req` against its model. `Ok(None)`: not an AWS API call (moto's own `/moto-api/`).
pub fn decode(req: &Request) -> Result<Option<Decoded>, Unreadable> {
    if req.path.starts_with("/moto-api") {
        return Ok(None);
    }
    let signing = req
        .header("authorization")
        .and_then(|a| a.split("Credential=").nth(1))
        .and_then(|scope| scope.split('/').nth(3))
        .map(str::to_string);
    if let Some(target) = req.header("x-amz-target") {
        return decode_json(req, target).map(Some);
    }
    let ct = req.header("content-type").unwrap_or_default();
    let body = String::from_utf8_lossy(&req.body);
    if ct.contains("x-www-form-urlencoded") && body.contains("Action=") {
        return decode_query(&body, signing.as_deref()).map(Some);
    }
    let service = match signing.as_deref() {
        Some(s) => s.to_string(),
        None if req.path.starts_with("/2013-04-01/") => "route53".into(),
        None => "s3".into(),
    };
    let model = model::by_name(&service).filter(|m| m.protocol == WireProtocol::RestXml);
    match model {
        Some(m) => decode_rest_xml(req, m).map(Some),
        None => Err(unreadable(
            &service,
            &format!("{} {}", req.method, req.path),
            "no REST-XML model is loaded for this signing name",
        )),
    }
}

fn decode_json(req: &Request, target: &str) -> Result<Decoded, Unreadable> {
    let (prefix, op) = target
        .rsplit_once('.')
        .ok_or_else(|| unreadable("?", target, "X-Amz-Target is not PREFIX.Operation"))?;
    let model = model::by_target_prefix(prefix)
        .ok_or_else(|| unreadable(prefix, op, "no model is loaded for this target prefix"))?;
    let operation = model
        .operations
        .get(op)
        .ok_or_else(|| unreadable(model.name, op, "the model has no such operation"))?;
    let input = if req.body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(&req.body)
            .map_err(|e| unreadable(model.name, op, format!("the body is not JSON: {e}")))?
    };
    let input = if operation.input.is_some() {
        input
    } else {
        Value::Null
    };
    Ok(Decoded {
        model,
        operation: op.to_string(),
        input,
        textual: false,
    })
}

/// Percent-decoded `key=value` pairs of a form or query string.
pub fn form_pairs(s: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(s.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn decode_query(body: &str, signing: Option<&str>) -> Result<Decoded, Unreadable> {
    let pairs = form_pairs(body);
    let get = |k: &str| pairs.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.clone());
    let action = get("Action").unwrap_or_default();
    let version = get("Version").ok_or_else(|| {
        unreadable(
            signing.unwrap_or("?"),
            &action,
            "a query request without Version",
        )
    })?;
    let model = model::by_query_version(signing, &version).ok_or_else(|| {
        unreadable(
            signing.unwrap_or("?"),
            &action,
            format!("no query model is loaded for Version={version}"),
        )
    })?;
    let operation = model
        .operations
        .get(&action)
        .ok_or_else(|| unreadable(model.name, &action, "the model has no such operation"))?;
    let entries: Vec<(Vec<&str>, &str)> = pairs
        .iter()
        .filter(|(k, _)| k != "Action" && k != "Version")
        .map(|(k, v)| (k.split('.').collect(), v.as_str()))
        .collect();
    let input = match &operation.input {
        Some(r) => query_value(model, model.shape(&r.shape), &entries),
        None if entries.is_empty() => Value::Null,
        None => query_untyped(&entries),
    };
    Ok(Decoded {
        model,
        operation: action,
        input,
        textual: true,
    })
}

/// The key a structure member has on a query wire.
fn query_member_key(model: &Model, name: &str, m: &Member) -> String {
    if model.protocol == WireProtocol::Ec2 {
        if let Some(q) = &m.query_name {
            return q.clone();
        }
        let base = m.location_name.as_deref().unwrap_or(name);
        let mut c = base.chars();
        return c
            .next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default();
    }
    m.location_name.clone().unwrap_or_else(|| name.to_string())
}

/// One form entry: its key split at the dots, and its value.
type Entry<'a> = (Vec<&'a str>, &'a str);

/// Entries sharing a first key segment (or list index), with that segment removed.
type Group<'a, K> = (K, Vec<Entry<'a>>);

/// Group entries by their first key segment, in first-seen order.
fn group<'a>(entries: &[Entry<'a>]) -> Vec<Group<'a, &'a str>> {
    let mut out: Vec<Group<'a, &'a str>> = Vec::new();
    for (path, v) in entries {
        let Some((first, rest)) = path.split_first() else {
            continue;
        };
        let rest = (rest.to_vec(), *v);
        match out.iter_mut().find(|(k, _)| k == first) {
            Some((_, list)) => list.push(rest),
            None => out.push((first, vec![rest])),
        }
    }
    out
}

/// Entries that name no member: kept as a tree of strings, so they are reported as unknown.
fn query_untyped(entries: &[(Vec<&str>, &str)]) -> Value {
    if let [(path, v)] = entries {
        if path.is_empty() {
            return Value::String(v.to_string());
        }
    }
    let mut map = Map::new();
    for (k, rest) in group(entries) {
        map.insert(k.to_string(), query_untyped(&rest));
    }
    Value::Object(map)
}

fn indexed<'a>(entries: &[Entry<'a>]) -> Vec<Group<'a, Option<usize>>> {
    let mut groups: Vec<Group<'a, Option<usize>>> = group(entries)
        .into_iter()
        .map(|(k, rest)| (k.parse::<usize>().ok(), rest))
        .collect();
    groups.sort_by_key(|(i, _)| *i);
    groups
}

/// The entries inside the `wrapper` segment (`member`, `entry`) every key starts with, or the
/// entries themselves when there is none (flattened); `None` when a key lacks the wrapper.
fn unwrapped<'a>(entries: &[Entry<'a>], wrapper: Option<&str>) -> Option<Vec<Entry<'a>>> {
    let Some(wrapper) = wrapper else {
        return Some(entries.to_vec());
    };
    let mut groups = group(entries);
    if groups.len() != 1 || groups[0].0 != wrapper {
        return None;
    }
    groups.pop().map(|(_, r)| r)
}

fn query_value(model: &Model, shape: &Shape, entries: &[(Vec<&str>, &str)]) -> Value {
    let scalar = match entries {
        [(path, v)] if path.is_empty() => Some(*v),
        _ => None,
    };
    match shape.kind.as_str() {
        "structure" => {
            if let Some(v) = scalar.filter(|v| !v.is_empty()) {
                return Value::String(v.to_string());
            }
            let mut map = Map::new();
            for (key, rest) in group(entries) {
                let member = shape
                    .members
                    .iter()
                    .find(|(n, m)| query_member_key(model, n, m) == key);
                match member {
                    Some((name, m)) => {
                        map.insert(
                            name.clone(),
                            query_value(model, model.shape(&m.shape), &rest),
                        );
                    }
                    None => {
                        map.insert(key.to_string(), query_untyped(&rest));
                    }
                }
            }
            Value::Object(map)
        }
        "list" => {
            // `Name=` alone is the awsQuery spelling of an empty list.
            if scalar == Some("") {
                return Value::Array(vec![]);
            }
            let member = shape.member.as_ref().expect("a list shape has a member");
            let flattened =
                model.protocol == WireProtocol::Ec2 || shape.flattened || member.flattened;
            let wrapper = member.location_name.as_deref().unwrap_or("member");
            let Some(items) = unwrapped(entries, (!flattened).then_some(wrapper)) else {
                return query_untyped(entries);
            };
            let element = model.shape(&member.shape);
            let mut out = Vec::new();
            for (index, rest) in indexed(&items) {
                if index.is_none() {
                    return query_untyped(entries);
                }
                out.push(query_value(model, element, &rest));
            }
            Value::Array(out)
        }
        "map" => {
            let (Some(k), Some(v)) = (&shape.key, &shape.value) else {
                return query_untyped(entries);
            };
            let key_name = k.location_name.as_deref().unwrap_or("key");
            let value_name = v.location_name.as_deref().unwrap_or("value");
            let Some(items) = unwrapped(entries, (!shape.flattened).then_some("entry")) else {
                return query_untyped(entries);
            };
            let mut map = Map::new();
            for (_, rest) in indexed(&items) {
                let parts = group(&rest);
                let key = parts
                    .iter()
                    .find(|(n, _)| *n == key_name)
                    .and_then(|(_, r)| r.first().map(|(_, v)| v.to_string()))
                    .unwrap_or_default();
                let value = parts
                    .iter()
                    .find(|(n, _)| *n == value_name)
                    .map(|(_, r)| query_value(model, model.shape(&v.shape), r))
                    .unwrap_or(Value::Null);
                map.insert(key, value);
            }
            Value::Object(map)
        }
        _ => match scalar {
            Some(v) => Value::String(v.to_string()),
            None => query_untyped(entries),
        },
    }
}

/// One segment of a REST `requestUri` path template.
enum Segment<'a> {
    Fixed(&'a str),
    Label(&'a str),
    Greedy(&'a str),
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect()
}

fn template(uri: &str) -> (Vec<Segment<'_>>, Vec<(&str, Option<&str>)>) {
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let segs = segments(path)
        .into_iter()
        .map(
            |s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(l) => match l.strip_suffix('+') {
                    Some(g) => Segment::Greedy(g),
                    None => Segment::Label(l),
                },
                None => Segment::Fixed(s),
            },
        )
        .collect();
    let fixed = query
        .split('&')
        .filter(|q| !q.is_empty())
        .map(|q| match q.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (q, None),
        })
        .collect();
    (segs, fixed)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The labels of `path` when it matches the template's segments.
fn match_path(template: &[Segment], path: &[&str]) -> Option<Vec<(String, String)>> {
    let mut labels = Vec::new();
    for (i, seg) in template.iter().enumerate() {
        match seg {
            Segment::Fixed(f) => {
                if path.get(i) != Some(f) {
                    return None;
                }
            }
            Segment::Label(l) => labels.push((l.to_string(), percent_decode(path.get(i)?))),
            Segment::Greedy(l) => {
                let rest = path.get(i..).filter(|r| !r.is_empty())?;
                let rest: Vec<String> = rest.iter().map(|p| percent_decode(p)).collect();
                labels.push((l.to_string(), rest.join("/")));
                return Some(labels);
            }
        }
    }
    (template.len() == path.len()).then_some(labels)
}

fn decode_rest_xml(req: &Request, model: &'static Model) -> Result<Decoded, Unreadable> {
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    let path_segs = segments(path);
    let query_pairs = form_pairs(query);
    let has = |k: &str, v: Option<&str>| {
        query_pairs
            .iter()
            .any(|(qk, qv)| qk == k && v.is_none_or(|v| v == qv))
    };
    // The SDK names S3 operations in `x-id`; otherwise several operations can share a method
    // and path (PUT /{Bucket}/{Key+} is PutObject, UploadPart, CopyObject...): a candidate
    // whose required query or header members are absent is not the one, and the template
    // with the most fixed query keys wins, then one that is not deprecated (PUT
    // /{Bucket}?notification is PutBucketNotificationConfiguration, the SDK's, not the
    // deprecated PutBucketNotification), ties broken by name so the choice is stable.
    let hint = query_pairs
        .iter()
        .find(|(k, _)| k == "x-id")
        .map(|(_, v)| v.as_str());
    // (hinted, fixed query keys, not deprecated), name, path labels, fixed query keys.
    type Candidate<'a> = (
        (bool, usize, bool),
        &'a str,
        Vec<(String, String)>,
        Vec<&'a str>,
    );
    let mut best: Option<Candidate> = None;
    let mut names: Vec<&String> = model.operations.keys().collect();
    names.sort();
    for name in names {
        let op = &model.operations[name];
        if !op.http.method.eq_ignore_ascii_case(&req.method) {
            continue;
        }
        let (segs, fixed) = template(&op.http.request_uri);
        if !fixed.iter().all(|(k, v)| has(k, *v)) {
            continue;
        }
        let Some(labels) = match_path(&segs, &path_segs) else {
            continue;
        };
        let hinted = hint == Some(name.as_str());
        if !hinted && !located_required_present(model, op, req, &query_pairs) {
            continue;
        }
        let score = (hinted, fixed.len(), !op.deprecated);
        if best.as_ref().is_none_or(|(s, ..)| score > *s) {
            best = Some((score, name, labels, fixed.iter().map(|(k, _)| *k).collect()));
        }
    }
    let Some((_, op_name, labels, fixed_keys)) = best else {
        return Err(unreadable(
            model.name,
            &format!("{} {}", req.method, req.path),
            "no operation of the model matches this method and path",
        ));
    };
    let operation = &model.operations[op_name];
    let Some(input_ref) = &operation.input else {
        return Ok(Decoded {
            model,
            operation: op_name.to_string(),
            input: Value::Null,
            textual: true,
        });
    };
    let shape = model.shape(&input_ref.shape);
    let mut input = Map::new();
    for (label, value) in labels {
        let name = located_member(shape, "uri", &label).unwrap_or(label);
        input.insert(name, Value::String(value));
    }
    for (k, v) in &query_pairs {
        if fixed_keys.contains(&k.as_str()) || PLUMBING_QUERY.contains(&k.as_str()) {
            continue;
        }
        let name = located_member(shape, "querystring", k).unwrap_or_else(|| format!("?{k}"));
        input.insert(name, Value::String(v.clone()));
    }
    for (name, m) in &shape.members {
        match m.location.as_deref() {
            Some("header") => {
                let h = m.location_name.as_deref().unwrap_or(name);
                if let Some(v) = req.header(h) {
                    input.insert(name.clone(), Value::String(v.to_string()));
                }
            }
            Some("headers") => {
                let prefix = m
                    .location_name
                    .as_deref()
                    .unwrap_or("")
                    .to_ascii_lowercase();
                let found: Map<String, Value> = req
                    .headers
                    .iter()
                    .filter_map(|(k, v)| {
                        let k = k.to_ascii_lowercase();
                        k.strip_prefix(&prefix)
                            .map(|rest| (rest.to_string(), Value::String(v.clone())))
                    })
                    .collect();
                if !found.is_empty() {
                    input.insert(name.clone(), Value::Object(found));
                }
            }
            _ => {}
        }
    }
    let body = String::from_utf8_lossy(&req.body);
    if !body.trim().is_empty() {
        let payload = shape.payload.as_ref().map(|p| (p, &shape.members[p]));
        match payload {
            Some((name, m)) if model.shape(&m.shape).kind != "structure" => {
                // A blob or string payload (an object's bytes): nothing to check inside.
                input.insert(name.clone(), Value::String(String::new()));
            }
            _ => {
                let doc = roxmltree::Document::parse(&body).map_err(|e| {
                    unreadable(model.name, op_name, format!("the body is not XML: {e}"))
                })?;
                let root = doc.root_element();
                match payload {
                    Some((name, m)) => {
                        input.insert(name.clone(), xml_value(model, model.shape(&m.shape), root));
                    }
                    None => {
                        if let Value::Object(body) = xml_value(model, shape, root) {
                            input.extend(body);
                        }
                    }
                }
            }
        }
    }
    Ok(Decoded {
        model,
        operation: op_name.to_string(),
        input: Value::Object(input),
        textual: true,
    })
}

/// The member of `shape` at `location` (`uri`, `querystring`) whose wire name is `wire`.
fn located_member(shape: &Shape, location: &str, wire: &str) -> Option<String> {
    shape
        .members
        .iter()
        .find(|(n, m)| {
            m.location.as_deref() == Some(location)
                && m.location_name.as_deref().unwrap_or(n) == wire
        })
        .map(|(n, _)| n.clone())
}

/// Whether the request carries every required query-string and header member of `op`.
fn located_required_present(
    model: &Model,
    op: &model::Operation,
    req: &Request,
    query: &[(String, String)],
) -> bool {
    let Some(input) = &op.input else {
        return true;
    };
    let shape = model.shape(&input.shape);
    shape.required.iter().all(|r| {
        let Some(m) = shape.members.get(r) else {
            return true;
        };
        let wire = m.location_name.as_deref().unwrap_or(r);
        match m.location.as_deref() {
            Some("querystring") => query.iter().any(|(k, _)| k == wire),
            Some("header") => req.header(wire).is_some(),
            _ => true,
        }
    })
}

fn elements<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    node.children().filter(|c| c.is_element())
}

/// An element whose content names no member: a tree of strings.
fn xml_untyped(node: roxmltree::Node) -> Value {
    if elements(node).next().is_none() {
        return Value::String(node.text().unwrap_or_default().to_string());
    }
    let mut map = Map::new();
    for c in elements(node) {
        map.insert(c.tag_name().name().to_string(), xml_untyped(c));
    }
    Value::Object(map)
}

fn xml_value(model: &Model, shape: &Shape, node: roxmltree::Node) -> Value {
    match shape.kind.as_str() {
        "structure" => {
            let mut map = Map::new();
            for (name, m) in &shape.members {
                if m.xml_attribute {
                    let attr = m.location_name.as_deref().unwrap_or(name);
                    if let Some(v) = node.attributes().find(|a| a.name() == attr) {
                        map.insert(name.clone(), Value::String(v.value().to_string()));
                    }
                }
            }
            for c in elements(node) {
                let tag = c.tag_name().name();
                let member = shape.members.iter().find(|(n, m)| {
                    m.location.is_none()
                        && !m.xml_attribute
                        && m.location_name.as_deref().unwrap_or(n) == tag
                });
                match member {
                    Some((name, m)) => {
                        let target = model.shape(&m.shape);
                        let flat = target.kind == "list" && (target.flattened || m.flattened);
                        if flat {
                            let element = target.member.as_ref().expect("a list has a member");
                            let v = xml_value(model, model.shape(&element.shape), c);
                            match map.get_mut(name) {
                                Some(Value::Array(a)) => a.push(v),
                                _ => {
                                    map.insert(name.clone(), Value::Array(vec![v]));
                                }
                            }
                        } else {
                            map.insert(name.clone(), xml_value(model, target, c));
                        }
                    }
                    None => {
                        map.insert(tag.to_string(), xml_untyped(c));
                    }
                }
            }
            Value::Object(map)
        }
        "list" => {
            let member = shape.member.as_ref().expect("a list has a member");
            let wrapper = member.location_name.as_deref().unwrap_or("member");
            let element = model.shape(&member.shape);
            Value::Array(
                elements(node)
                    .map(|c| {
                        if c.tag_name().name() == wrapper {
                            xml_value(model, element, c)
                        } else {
                            let mut m = Map::new();
                            m.insert(c.tag_name().name().to_string(), xml_untyped(c));
                            Value::Object(m)
                        }
                    })
                    .collect(),
            )
        }
        "map" => {
            let (Some(k), Some(v)) = (&shape.key, &shape.value) else {
                return xml_untyped(node);
            };
            let key_name = k.location_name.as_deref().unwrap_or("key");
            let value_name = v.location_name.as_deref().unwrap_or("value");
            let mut map = Map::new();
            for entry in elements(node) {
                let key = elements(entry)
                    .find(|c| c.tag_name().name() == key_name)
                    .and_then(|c| c.text())
                    .unwrap_or_default()
                    .to_string();
                let value = elements(entry)
                    .find(|c| c.tag_name().name() == value_name)
                    .map(|c| xml_value(model, model.shape(&v.shape), c))
                    .unwrap_or(Value::Null);
                map.insert(key, value);
            }
            Value::Object(map)
        }
        _ => {
            if elements(node).next().is_some() {
                xml_untyped(node)
            } else {
                Value::String(node.text().unwrap_or_default().to_string())
            }
        }
    }
}
