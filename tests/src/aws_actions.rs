//! Every AWS API operation the operator's source calls, found statically, as IAM actions.
//!
//! Used by `tests/tests/manifests.rs` to hold the task role's IAM policy to the code. Static, so
//! that calls on paths no test exercises (deletions, adoption, rare errors) are covered too.
//!
//! How it works:
//! 1. The operation names of each AWS SDK crate the operator depends on come from that crate's
//!    own source in the cargo registry (`aws-sdk-<svc>-<version>/src/operation/<snake_name>.rs`,
//!    whose `pub struct PascalName;` is the API name), at the version `Cargo.lock` pins. Nothing
//!    is hard-coded but the IAM prefix of each crate and the few API names whose IAM action
//!    differs (S3's `ListObjectsV2` is `s3:ListBucket`...).
//! 2. Every `operator/src/**/*.rs` file is read with comments, strings and `#[cfg(test)]` items
//!    blanked out, and cut into tokens.
//! 3. Client bindings are collected: struct fields and parameters typed as an SDK `Client`
//!    (`ecs: aws_sdk_ecs::Client`, `client: Client` with `use aws_sdk_s3::Client`), functions
//!    returning one (`fn s3(&self) -> aws_sdk_s3::Client`), and `let` bindings of either
//!    (`let elb = &run.aws.elbv2;`, `let client = Client::new(sdk);`). Fields are known crate-wide
//!    (`run.aws.ecs` resolves through the `Aws` struct's field `ecs`); a file's own fields,
//!    parameters and `let`s take precedence, so `client` can be S3 in `s3.rs` and DynamoDB in
//!    `dynamodb.rs`.
//! 4. Every method call `.name(` whose name is an operation of some SDK is resolved through its
//!    receiver (`run.aws.ecs.tag_resource()`, `elb.create_rule()`, `self.client.put_item()`):
//!    the service is the receiver's client type, so `list_tags_for_resource` on `aws.ecs` is
//!    `ecs:ListTagsForResource` and on `aws.ecr` is `ecr:ListTagsForResource`.
//! 5. Safety net: every argument-less `.send()` (the end of every SDK call, paginated or not)
//!    must lead back to an operation on a resolved client, or to a `let` builder whose
//!    initialiser holds one (`let mut req = client.create_table()...; req.send()`). A call the
//!    scanner cannot attribute is a reported problem, never a silent miss.
//!
//! Limits: name-based, not type-checked. A client reached through a generic, a trait object, a
//! macro, or a closure parameter whose type is not written is not resolved (the safety net
//! reports its `.send()`); a binding name reused within one file for two services is reported
//! as ambiguous; a method of the crate's own that shares an operation's name is ignored unless
//! its receiver is a client binding.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An AWS SDK crate: its Rust name, its IAM action prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Sdk {
    pub krate: &'static str,
    pub iam_prefix: &'static str,
}

/// Every SDK crate the scanner knows. An `aws-sdk-*` dependency not listed here fails the scan,
/// so a new client cannot be added without its calls being checked.
pub const SDKS: &[Sdk] = &[
    Sdk {
        krate: "aws_sdk_ecs",
        iam_prefix: "ecs",
    },
    Sdk {
        krate: "aws_sdk_ecr",
        iam_prefix: "ecr",
    },
    Sdk {
        krate: "aws_sdk_elasticloadbalancingv2",
        iam_prefix: "elasticloadbalancing",
    },
    Sdk {
        krate: "aws_sdk_route53",
        iam_prefix: "route53",
    },
    Sdk {
        krate: "aws_sdk_acm",
        iam_prefix: "acm",
    },
    Sdk {
        krate: "aws_sdk_applicationautoscaling",
        iam_prefix: "application-autoscaling",
    },
    Sdk {
        krate: "aws_sdk_autoscaling",
        iam_prefix: "autoscaling",
    },
    Sdk {
        krate: "aws_sdk_ec2",
        iam_prefix: "ec2",
    },
    Sdk {
        krate: "aws_sdk_iam",
        iam_prefix: "iam",
    },
    Sdk {
        krate: "aws_sdk_cloudwatch",
        iam_prefix: "cloudwatch",
    },
    Sdk {
        krate: "aws_sdk_cloudwatchlogs",
        iam_prefix: "logs",
    },
    Sdk {
        krate: "aws_sdk_sns",
        iam_prefix: "sns",
    },
    Sdk {
        krate: "aws_sdk_s3",
        iam_prefix: "s3",
    },
    Sdk {
        krate: "aws_sdk_dynamodb",
        iam_prefix: "dynamodb",
    },
    // DynamoDB Streams actions are in the dynamodb namespace (dynamodb:GetRecords...).
    Sdk {
        krate: "aws_sdk_dynamodbstreams",
        iam_prefix: "dynamodb",
    },
    Sdk {
        krate: "aws_sdk_sqs",
        iam_prefix: "sqs",
    },
    Sdk {
        krate: "aws_sdk_eventbridge",
        iam_prefix: "events",
    },
    Sdk {
        krate: "aws_sdk_sts",
        iam_prefix: "sts",
    },
];

/// The IAM actions of one API operation, where they are not `prefix:OperationName`.
/// `None`: the operation needs a mapping that this table does not have yet (the scan reports it).
pub fn iam_actions(sdk: &Sdk, operation: &str) -> Option<Vec<String>> {
    let one = |a: &str| Some(vec![format!("{}:{a}", sdk.iam_prefix)]);
    match (sdk.iam_prefix, operation) {
        // S3's API names and IAM actions differ often; only names checked against the S3
        // documentation ("Actions, resources, and condition keys for Amazon S3") are mapped.
        ("s3", "ListObjectsV2" | "ListObjects" | "HeadBucket") => one("ListBucket"),
        ("s3", "ListObjectVersions") => one("ListBucketVersions"),
        ("s3", "HeadObject" | "GetObjectAttributes") => one("GetObject"),
        ("s3", "DeleteObjects") => one("DeleteObject"),
        ("s3", "CopyObject") => Some(vec!["s3:GetObject".into(), "s3:PutObject".into()]),
        ("s3", "CreateMultipartUpload" | "UploadPart" | "CompleteMultipartUpload") => {
            one("PutObject")
        }
        ("s3", "AbortMultipartUpload") => one("AbortMultipartUpload"),
        ("s3", "PutBucketEncryption" | "GetBucketEncryption") => Some(vec![format!(
            "s3:{}EncryptionConfiguration",
            &operation[..3]
        )]),
        ("s3", "PutPublicAccessBlock" | "GetPublicAccessBlock") => Some(vec![format!(
            "s3:{}BucketPublicAccessBlock",
            &operation[..3]
        )]),
        ("s3", "PutBucketLifecycleConfiguration" | "GetBucketLifecycleConfiguration") => Some(
            vec![format!("s3:{}LifecycleConfiguration", &operation[..3])],
        ),
        ("s3", "PutBucketNotificationConfiguration" | "GetBucketNotificationConfiguration") => {
            Some(vec![format!("s3:{}BucketNotification", &operation[..3])])
        }
        (
            "s3",
            "GetObject"
            | "PutObject"
            | "DeleteObject"
            | "CreateBucket"
            | "DeleteBucket"
            | "GetBucketLocation"
            | "PutBucketVersioning"
            | "GetBucketVersioning"
            | "PutBucketPolicy"
            | "GetBucketPolicy"
            | "PutBucketTagging"
            | "GetBucketTagging"
            | "PutObjectTagging"
            | "GetObjectTagging"
            | "ListBuckets",
        ) => one(operation),
        ("s3", _) => None,
        // SQS authorises a batch as its single-message action ("Amazon SQS API permissions:
        // Actions and resource reference").
        ("sqs", "DeleteMessageBatch") => one("DeleteMessage"),
        ("sqs", "SendMessageBatch") => one("SendMessage"),
        ("sqs", "ChangeMessageVisibilityBatch") => one("ChangeMessageVisibility"),
        // Transactions, batches of statements and PartiQL are authorised per item operation.
        (
            "dynamodb",
            "TransactWriteItems"
            | "TransactGetItems"
            | "ExecuteStatement"
            | "BatchExecuteStatement"
            | "ExecuteTransaction",
        ) => None,
        _ => one(operation),
    }
}

/// One call of an AWS operation in the operator's source.
#[derive(Debug, Clone)]
pub struct Call {
    pub sdk: Sdk,
    /// The API name, e.g. `ListObjectsV2`.
    pub operation: String,
    /// The IAM actions it needs, e.g. `["s3:ListBucket"]`.
    pub actions: Vec<String>,
    /// Relative to the workspace root.
    pub file: String,
    pub line: usize,
    /// The name of the enclosing `fn`.
    pub function: String,
}

impl Call {
    pub fn location(&self) -> String {
        format!("{}:{} (fn {})", self.file, self.line, self.function)
    }
}

/// What the scan found, and what it could not attribute.
#[derive(Debug, Default)]
pub struct Scan {
    pub calls: Vec<Call>,
    /// Each a sentence with file:line. A non-empty list means the scan cannot be trusted.
    pub problems: Vec<String>,
    /// The SDK crates the operator depends on.
    pub sdks: Vec<Sdk>,
}

impl Scan {
    /// IAM action -> where it is called.
    pub fn actions(&self) -> BTreeMap<String, Vec<&Call>> {
        let mut out: BTreeMap<String, Vec<&Call>> = BTreeMap::new();
        for c in &self.calls {
            for a in &c.actions {
                out.entry(a.clone()).or_default().push(c);
            }
        }
        out
    }
}

/// Scan `workspace/operator`.
pub fn scan(workspace: &Path) -> Scan {
    let mut scan = Scan::default();
    let ops = match sdk_operations(workspace) {
        Ok(ops) => ops,
        Err(e) => {
            scan.problems.push(e);
            return scan;
        }
    };
    scan.sdks = ops.keys().copied().collect();
    let src = workspace.join("operator/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(workspace)
                .unwrap_or(p)
                .to_string_lossy()
                .replace('\\', "/");
            let text = std::fs::read_to_string(p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            (rel, text)
        })
        .collect();
    scan_sources(&sources, &ops, &mut scan);
    scan
}

/// Operation names (snake_case method name -> PascalCase API name) of every SDK crate that
/// `operator/Cargo.toml` depends on, read from the crate sources at the locked version.
pub fn sdk_operations(workspace: &Path) -> Result<BTreeMap<Sdk, BTreeMap<String, String>>, String> {
    let manifest = std::fs::read_to_string(workspace.join("operator/Cargo.toml"))
        .map_err(|e| format!("cannot read operator/Cargo.toml: {e}"))?;
    let lock = std::fs::read_to_string(workspace.join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let registries = registry_src_dirs();
    let mut out = BTreeMap::new();
    for line in manifest.lines() {
        let dep = line.split(['=', '.', ' ']).next().unwrap_or("").trim();
        let Some(short) = dep.strip_prefix("aws-sdk-") else {
            continue;
        };
        let krate = format!("aws_sdk_{}", short.replace('-', "_"));
        let sdk = *SDKS.iter().find(|s| s.krate == krate).ok_or_else(|| {
            format!(
                "operator/Cargo.toml depends on {dep}, which tests/src/aws_actions.rs SDKS does not \
                 know: add it with its IAM action prefix"
            )
        })?;
        let version = locked_version(&lock, dep)
            .ok_or_else(|| format!("Cargo.lock has no version of {dep}"))?;
        let dir = registries
            .iter()
            .map(|r| r.join(format!("{dep}-{version}/src/operation")))
            .find(|d| d.is_dir())
            .ok_or_else(|| {
                format!(
                    "the sources of {dep} {version} are not in the cargo registry ({registries:?}); \
                     run `cargo fetch` (or set CARGO_HOME)"
                )
            })?;
        let mut names = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if !path.is_dir() {
                continue;
            }
            let snake = path.file_name().unwrap().to_string_lossy().to_string();
            let file = dir.join(format!("{snake}.rs"));
            let text =
                std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
            let pascal = text
                .lines()
                .find_map(|l| {
                    l.trim()
                        .strip_prefix("pub struct ")?
                        .strip_suffix(';')
                        .map(str::to_string)
                })
                .ok_or_else(|| format!("{}: no `pub struct Name;`", file.display()))?;
            names.insert(snake, pascal);
        }
        if names.is_empty() {
            return Err(format!("{}: no operations", dir.display()));
        }
        out.insert(sdk, names);
    }
    if out.is_empty() {
        return Err("operator/Cargo.toml depends on no aws-sdk-* crate".into());
    }
    Ok(out)
}

fn locked_version(lock: &str, name: &str) -> Option<String> {
    let mut lines = lock.lines();
    while let Some(l) = lines.next() {
        if l.trim() == format!("name = \"{name}\"") {
            let v = lines.next()?.trim();
            return Some(
                v.strip_prefix("version = \"")?
                    .strip_suffix('"')?
                    .to_string(),
            );
        }
    }
    None
}

/// `$CARGO_HOME/registry/src/*` (default `~/.cargo`).
fn registry_src_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    let Some(home) = home else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(home.join("registry/src")) else {
        return Vec::new();
    };
    entries.filter_map(|e| Some(e.ok()?.path())).collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

// ---- source text -> tokens --------------------------------------------------------------------

/// The source with comments and the contents of string, byte-string and char literals replaced
/// by spaces (newlines kept, so byte offsets and line numbers stay).
pub fn blank_non_code(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == b'/' && next == Some(b'/') {
            let end = b[i..]
                .iter()
                .position(|&x| x == b'\n')
                .map_or(b.len(), |p| i + p);
            blank(&mut out, i, end);
            i = end;
        } else if c == b'/' && next == Some(b'*') {
            let mut depth = 0;
            let mut j = i;
            while j < b.len() {
                if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                    depth += 1;
                    j += 2;
                } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j.min(b.len()));
            i = j;
        } else if (c == b'r' || (c == b'b' && next == Some(b'r')))
            && (i == 0 || !ident(b[i - 1]))
            && {
                let s = if c == b'b' { i + 2 } else { i + 1 };
                let hashes = b[s..].iter().take_while(|&&x| x == b'#').count();
                b.get(s + hashes) == Some(&b'"')
            }
        {
            // Raw string: r"..", r#".."#, br".."
            let s = if c == b'b' { i + 2 } else { i + 1 };
            let hashes = b[s..].iter().take_while(|&&x| x == b'#').count();
            let body = s + hashes + 1;
            let mut closing = vec![b'"'];
            closing.extend(std::iter::repeat_n(b'#', hashes));
            let end = b[body..]
                .windows(closing.len())
                .position(|w| w == closing.as_slice())
                .map_or(b.len(), |p| body + p + closing.len());
            blank(&mut out, i, end);
            i = end;
        } else if c == b'"' || (c == b'b' && next == Some(b'"') && (i == 0 || !ident(b[i - 1]))) {
            let start = i;
            let mut j = if c == b'b' { i + 2 } else { i + 1 };
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            blank(&mut out, start, end);
            i = end;
        } else if c == b'\'' {
            // A char literal ('a', '\n', '\'', 'é'), or a lifetime ('a) left alone.
            if next == Some(b'\\') {
                let mut j = i + 3;
                while j < b.len() && b[j] != b'\'' {
                    j += 1;
                }
                let end = (j + 1).min(b.len());
                blank(&mut out, i, end);
                i = end;
            } else {
                let ch_len = std::str::from_utf8(&b[i + 1..(i + 5).min(b.len())])
                    .ok()
                    .or_else(|| {
                        (2..5)
                            .rev()
                            .find_map(|n| std::str::from_utf8(b.get(i + 1..i + n)?).ok())
                    })
                    .and_then(|s| s.chars().next())
                    .map_or(1, char::len_utf8);
                if b.get(i + 1 + ch_len) == Some(&b'\'') {
                    let end = i + 2 + ch_len;
                    blank(&mut out, i, end);
                    i = end;
                } else {
                    i += 1;
                }
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// `::`, `->`, `=>` or one punctuation character.
    Punct(String),
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
}

impl Token {
    fn ident(&self) -> Option<&str> {
        match &self.tok {
            Tok::Ident(s) => Some(s),
            Tok::Punct(_) => None,
        }
    }
    fn is(&self, p: &str) -> bool {
        matches!(&self.tok, Tok::Punct(s) if s == p) || self.ident() == Some(p)
    }
}

fn tokenize(code: &str) -> Vec<Token> {
    let b = code.as_bytes();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            line += 1;
            i += 1;
        } else if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            // A raw identifier (`r#type`) is the identifier `type`.
            if c == b'r'
                && b.get(i + 1) == Some(&b'#')
                && b.get(i + 2)
                    .is_some_and(|x| x.is_ascii_alphabetic() || *x == b'_')
            {
                i += 2;
            }
            let s = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80) {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(String::from_utf8_lossy(&b[s..i]).into_owned()),
                line,
            });
        } else if c.is_ascii_digit() {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
        } else if c == b'\'' {
            // A lifetime: drop it with its name.
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
        } else {
            let two = b.get(i..i + 2).unwrap_or(&[]);
            let p = if two == b"::" || two == b"->" || two == b"=>" {
                i += 2;
                String::from_utf8_lossy(two).into_owned()
            } else {
                i += 1;
                (c as char).to_string()
            };
            out.push(Token {
                tok: Tok::Punct(p),
                line,
            });
        }
    }
    out
}

/// For each bracket token, the index of its partner.
fn partners(t: &[Token]) -> Vec<Option<usize>> {
    let mut out = vec![None; t.len()];
    let mut stack: Vec<usize> = Vec::new();
    for (i, tok) in t.iter().enumerate() {
        if tok.is("(") || tok.is("[") || tok.is("{") {
            stack.push(i);
        } else if tok.is(")") || tok.is("]") || tok.is("}") {
            if let Some(o) = stack.pop() {
                out[o] = Some(i);
                out[i] = Some(o);
            }
        }
    }
    out
}

/// Token ranges of `#[cfg(test)]` items (modules, functions, impls), and the names of test
/// modules declared as `#[cfg(test)] mod name;` (in their own file).
fn test_items(t: &[Token], pair: &[Option<usize>]) -> (Vec<(usize, usize)>, Vec<String>) {
    let mut ranges = Vec::new();
    let mut files = Vec::new();
    let mut i = 0;
    while i + 6 < t.len() {
        let is_cfg_test = t[i].is("#")
            && t[i + 1].is("[")
            && t[i + 2].is("cfg")
            && t[i + 3].is("(")
            && t[i + 4].is("test")
            && t[i + 5].is(")")
            && t[i + 6].is("]");
        if !is_cfg_test {
            i += 1;
            continue;
        }
        let start = i;
        let mut j = i + 7;
        // Further attributes.
        while j + 1 < t.len() && t[j].is("#") && t[j + 1].is("[") {
            j = pair[j + 1].map_or(j + 2, |e| e + 1);
        }
        if j + 2 < t.len() && t[j].is("mod") && t[j + 2].is(";") {
            if let Some(name) = t[j + 1].ident() {
                files.push(name.to_string());
            }
        }
        let mut k = j;
        while k < t.len() && !t[k].is(";") && !t[k].is("{") {
            k += 1;
        }
        let end = if k < t.len() && t[k].is("{") {
            pair[k].unwrap_or(t.len() - 1)
        } else {
            k.min(t.len() - 1)
        };
        ranges.push((start, end));
        i = end + 1;
    }
    (ranges, files)
}

// ---- bindings and calls -----------------------------------------------------------------------

struct File {
    rel: String,
    tokens: Vec<Token>,
    pair: Vec<Option<usize>>,
    /// Local names of SDK client types (`use aws_sdk_s3::Client;` -> `Client`).
    aliases: BTreeMap<String, Sdk>,
}

impl File {
    /// The SDK of a client type path ending at token `end` (`aws_sdk_s3::Client`, or an alias
    /// not preceded by `::`).
    fn client_type_at(&self, end: usize) -> Option<Sdk> {
        let t = &self.tokens;
        let name = t[end].ident()?;
        let qualified = end >= 2 && t[end - 1].is("::");
        if qualified {
            if name != "Client" {
                return None;
            }
            // `aws_sdk_x::Client`, or `aws_sdk_x::client::Client`.
            let mut krate = t[end - 2].ident()?;
            if krate == "client" && end >= 4 && t[end - 3].is("::") {
                krate = t[end - 4].ident()?;
            }
            return SDKS.iter().find(|s| s.krate == krate).copied();
        }
        self.aliases.get(name).copied()
    }

    /// A client type starting at token `i`, through `&`, `mut`, `Arc<`, `Option<` and paths:
    /// its SDK and the index after it.
    fn client_type_from(&self, mut i: usize) -> Option<Sdk> {
        let t = &self.tokens;
        let mut steps = 0;
        while i < t.len() && steps < 16 {
            steps += 1;
            match &t[i].tok {
                Tok::Punct(p) if p == "&" || p == "<" || p == "::" => i += 1,
                Tok::Ident(s) if s == "mut" || s == "dyn" => i += 1,
                Tok::Ident(_) => {
                    if let Some(sdk) = self.client_type_at(i) {
                        let after = t.get(i + 1);
                        // `Client` itself, not `Client::new` (a value, handled elsewhere).
                        if !after.is_some_and(|a| a.is("::")) {
                            return Some(sdk);
                        }
                    }
                    i += 1;
                }
                _ => return None,
            }
        }
        None
    }

    /// The enclosing `fn` of token `i`.
    fn function_at(&self, i: usize) -> String {
        let t = &self.tokens;
        (0..i)
            .rev()
            .find_map(|k| {
                (t[k].is("fn") && k + 1 < t.len())
                    .then(|| t[k + 1].ident())
                    .flatten()
            })
            .unwrap_or("<top level>")
            .to_string()
    }
}

fn use_aliases(t: &[Token]) -> BTreeMap<String, Sdk> {
    let mut out = BTreeMap::new();
    for (i, tok) in t.iter().enumerate() {
        if !tok.is("use") {
            continue;
        }
        let Some(krate) = t.get(i + 1).and_then(Token::ident) else {
            continue;
        };
        let Some(sdk) = SDKS.iter().find(|s| s.krate == krate) else {
            continue;
        };
        // `use aws_sdk_x::Client [as Y];`, `use aws_sdk_x::client::Client;` or
        // `use aws_sdk_x::{.., Client [as Y], ..};`
        let mut j = i + 2;
        while j < t.len() && !t[j].is(";") {
            if t[j].is("Client") {
                let by_path =
                    t[j - 1].is("::") && (j == i + 3 || (j == i + 5 && t[i + 3].is("client")));
                let in_braces = (t[j - 1].is("{") || t[j - 1].is(",")) && {
                    // The innermost open brace is the one right after `aws_sdk_x::`.
                    let mut depth = 0;
                    let mut k = j - 1;
                    loop {
                        if t[k].is("}") {
                            depth += 1;
                        } else if t[k].is("{") {
                            if depth == 0 {
                                break k == i + 3;
                            }
                            depth -= 1;
                        }
                        if k == i + 2 {
                            break false;
                        }
                        k -= 1;
                    }
                };
                if by_path || in_braces {
                    let alias = if t.get(j + 1).is_some_and(|a| a.is("as")) {
                        t.get(j + 2).and_then(Token::ident).unwrap_or("Client")
                    } else {
                        "Client"
                    };
                    out.insert(alias.to_string(), *sdk);
                }
            }
            j += 1;
        }
    }
    out
}

/// Bindings of names to SDK clients.
#[derive(Default)]
struct Bindings {
    /// Struct fields and parameters: name -> SDKs (crate-wide, and per file).
    fields: BTreeMap<String, BTreeSet<Sdk>>,
    /// Functions returning a client: name -> SDKs.
    ctors: BTreeMap<String, BTreeSet<Sdk>>,
}

fn declarations(f: &File, fields: &mut Bindings) {
    let t = &f.tokens;
    for i in 0..t.len() {
        // `name: <client type>` (fields and parameters; `let x: T` too).
        if t[i].is(":") && i >= 1 && !t[i - 1].is(":") {
            if let (Some(name), Some(sdk)) = (t[i - 1].ident(), f.client_type_from(i + 1)) {
                fields
                    .fields
                    .entry(name.to_string())
                    .or_default()
                    .insert(sdk);
            }
        }
        // `fn name(...) -> <client type>`
        if t[i].is("fn") {
            let Some(name) = t.get(i + 1).and_then(Token::ident) else {
                continue;
            };
            let mut k = i + 2;
            while k < t.len() && !t[k].is("(") {
                k += 1;
            }
            let Some(close) = t.get(k).and(f.pair[k]) else {
                continue;
            };
            if t.get(close + 1).is_some_and(|x| x.is("->")) {
                if let Some(sdk) = f.client_type_from(close + 2) {
                    fields
                        .ctors
                        .entry(name.to_string())
                        .or_default()
                        .insert(sdk);
                }
            }
        }
    }
}

/// What an expression's receiver is.
#[derive(Debug)]
enum Receiver {
    /// `a.b.name` or `name`: the last name.
    Name(String),
    /// `...name(..)`, with `Type::` before `name` when written (`aws_sdk_s3::Client::new(..)`).
    Call {
        name: String,
        ty: Option<Sdk>,
    },
    Other,
}

/// The receiver of the method call whose `.` is token `dot`.
fn receiver(f: &File, dot: usize) -> Receiver {
    let t = &f.tokens;
    if dot == 0 {
        return Receiver::Other;
    }
    let j = dot - 1;
    if let Some(name) = t[j].ident() {
        return Receiver::Name(name.to_string());
    }
    if t[j].is(")") {
        let Some(open) = f.pair[j] else {
            return Receiver::Other;
        };
        let Some(name) = open.checked_sub(1).and_then(|k| t[k].ident()) else {
            return Receiver::Other;
        };
        let ty = (open >= 3 && t[open - 2].is("::"))
            .then(|| f.client_type_at(open - 3))
            .flatten();
        return Receiver::Call {
            name: name.to_string(),
            ty,
        };
    }
    Receiver::Other
}

/// One `let` statement: its name and the token range of its initialiser.
struct Let {
    name: String,
    at: usize,
    init: (usize, usize),
}

fn lets(f: &File) -> Vec<Let> {
    let t = &f.tokens;
    let mut out = Vec::new();
    for i in 0..t.len() {
        if !t[i].is("let") {
            continue;
        }
        let mut k = i + 1;
        if t.get(k).is_some_and(|x| x.is("mut")) {
            k += 1;
        }
        let Some(name) = t.get(k).and_then(Token::ident) else {
            continue;
        };
        // Up to `=` (past a type), then to the `;` at this depth.
        let mut e = k + 1;
        while e < t.len() && !t[e].is("=") && !t[e].is(";") {
            e += 1;
        }
        if e >= t.len() || !t[e].is("=") {
            continue;
        }
        let mut end = e + 1;
        while end < t.len() && !t[end].is(";") {
            if let Some(p) = f.pair[end].filter(|&p| p > end) {
                end = p;
            }
            end += 1;
        }
        out.push(Let {
            name: name.to_string(),
            at: i,
            init: (e + 1, end.min(t.len())),
        });
    }
    out
}

/// The SDK a `let` initialiser evaluates to, when it is a client: `&a.b.field`,
/// `a.field.clone()`, `ctor(..)`, `x.ctor()`, `aws_sdk_x::Client::new(..)`.
fn let_client(f: &File, l: &Let, b: &Bindings, local: &Bindings) -> Option<Sdk> {
    let t = &f.tokens;
    let (s, mut e) = l.init;
    // Drop a trailing `.clone()`.
    if e >= s + 4
        && t[e - 1].is(")")
        && t[e - 2].is("(")
        && t[e - 3].is("clone")
        && t[e - 4].is(".")
    {
        e -= 4;
    }
    if e <= s {
        return None;
    }
    let last = e - 1;
    if let Some(name) = t[last].ident() {
        // A path `&a.b.name`: every token a name, `.` or a leading `&`.
        let plain =
            (s..e).all(|k| t[k].ident().is_some() || t[k].is(".") || (k == s && t[k].is("&")));
        if plain {
            return one(lookup(&local.fields, name).or_else(|| lookup(&b.fields, name)));
        }
        return None;
    }
    if t[last].is(")") {
        let open = f.pair[last]?;
        if open < s + 1 {
            return None;
        }
        let name = t[open - 1].ident()?;
        if open >= 3 && t[open - 2].is("::") {
            if let Some(sdk) = f.client_type_at(open - 3) {
                if name == "new" || name == "from_conf" {
                    return Some(sdk);
                }
            }
        }
        return one(lookup(&local.ctors, name).or_else(|| lookup(&b.ctors, name)));
    }
    None
}

fn lookup<'a>(m: &'a BTreeMap<String, BTreeSet<Sdk>>, name: &str) -> Option<&'a BTreeSet<Sdk>> {
    m.get(name).filter(|s| !s.is_empty())
}

fn one(s: Option<&BTreeSet<Sdk>>) -> Option<Sdk> {
    s.filter(|s| s.len() == 1)
        .and_then(|s| s.iter().next().copied())
}

fn scan_sources(
    sources: &[(String, String)],
    ops: &BTreeMap<Sdk, BTreeMap<String, String>>,
    scan: &mut Scan,
) {
    // Every operation name of every SDK: snake -> SDKs that have it.
    let mut op_names: BTreeMap<&str, Vec<Sdk>> = BTreeMap::new();
    for (sdk, names) in ops {
        for snake in names.keys() {
            op_names.entry(snake).or_default().push(*sdk);
        }
    }

    // Files with test code removed.
    let mut files: Vec<File> = Vec::new();
    let mut test_files: BTreeSet<String> = BTreeSet::new();
    for (rel, text) in sources {
        let code = blank_non_code(text);
        let mut tokens = tokenize(&code);
        let pair = partners(&tokens);
        let (ranges, test_mods) = test_items(&tokens, &pair);
        let dir = module_dir(rel);
        for m in test_mods {
            test_files.insert(format!("{dir}{m}.rs"));
            test_files.insert(format!("{dir}{m}/mod.rs"));
        }
        for (s, e) in ranges.into_iter().rev() {
            tokens.drain(s..=e);
        }
        let pair = partners(&tokens);
        let aliases = use_aliases(&tokens);
        files.push(File {
            rel: rel.clone(),
            tokens,
            pair,
            aliases,
        });
    }
    files.retain(|f| !test_files.contains(&f.rel));

    // Crate-wide declarations, then each file's own.
    let mut global = Bindings::default();
    let mut locals: Vec<Bindings> = Vec::new();
    for f in &files {
        let mut local = Bindings::default();
        declarations(f, &mut local);
        for (k, v) in &local.fields {
            global.fields.entry(k.clone()).or_default().extend(v);
        }
        for (k, v) in &local.ctors {
            global.ctors.entry(k.clone()).or_default().extend(v);
        }
        locals.push(local);
    }

    for (f, local) in files.iter().zip(locals.iter_mut()) {
        let t = &f.tokens;
        // `let` bindings of clients join the file's names.
        let file_lets = lets(f);
        for l in &file_lets {
            if let Some(sdk) = let_client(f, l, &global, local) {
                local.fields.entry(l.name.clone()).or_default().insert(sdk);
            }
        }
        let resolve = |name: &str| -> Result<Option<Sdk>, String> {
            if name == "self" || name == "Self" {
                return Ok(None);
            }
            let set = lookup(&local.fields, name).or_else(|| lookup(&global.fields, name));
            match set {
                None => Ok(None),
                Some(s) if s.len() == 1 => Ok(s.iter().next().copied()),
                Some(s) => Err(format!(
                    "`{name}` names clients of {:?}",
                    s.iter().map(|s| s.krate).collect::<Vec<_>>()
                )),
            }
        };
        let resolve_receiver = |r: &Receiver| -> Result<Option<Sdk>, String> {
            match r {
                Receiver::Name(n) => resolve(n),
                Receiver::Call { name, ty } => {
                    if let Some(sdk) = ty.filter(|_| name == "new" || name == "from_conf") {
                        return Ok(Some(sdk));
                    }
                    Ok(one(
                        lookup(&local.ctors, name).or_else(|| lookup(&global.ctors, name))
                    ))
                }
                Receiver::Other => Ok(None),
            }
        };

        // Operation calls: `.op(` on a client.
        let mut op_call_at: Vec<usize> = Vec::new();
        for i in 0..t.len().saturating_sub(2) {
            if !(t[i].is(".") && t[i + 2].is("(")) {
                continue;
            }
            let Some(name) = t[i + 1].ident() else {
                continue;
            };
            let Some(sdks) = op_names.get(name) else {
                continue;
            };
            let r = receiver(f, i);
            let sdk = match resolve_receiver(&r) {
                Ok(Some(sdk)) => sdk,
                Ok(None) => continue,
                Err(e) => {
                    scan.problems.push(format!(
                        "{}:{}: `.{name}(` on an ambiguous receiver: {e}; give the binding a \
                         name of its own",
                        f.rel, t[i].line
                    ));
                    continue;
                }
            };
            if !sdks.contains(&sdk) {
                scan.problems.push(format!(
                    "{}:{}: `.{name}(` is called on a name bound to {} but is an operation of \
                     {:?} only: the scanner cannot tell which client this is",
                    f.rel,
                    t[i].line,
                    sdk.krate,
                    sdks.iter().map(|s| s.krate).collect::<Vec<_>>()
                ));
                continue;
            }
            let operation = ops[&sdk][name].clone();
            let Some(actions) = iam_actions(&sdk, &operation) else {
                scan.problems.push(format!(
                    "{}:{}: {}::{operation} has no IAM action mapping in tests/src/aws_actions.rs \
                     iam_actions()",
                    f.rel, t[i].line, sdk.krate
                ));
                continue;
            };
            op_call_at.push(i);
            scan.calls.push(Call {
                sdk,
                operation,
                actions,
                file: f.rel.clone(),
                line: t[i].line,
                function: f.function_at(i),
            });
        }

        // Safety net: every `.send()` leads back to one of those calls.
        let builder_lets: Vec<&Let> = file_lets
            .iter()
            .filter(|l| op_call_at.iter().any(|&c| c >= l.init.0 && c < l.init.1))
            .collect();
        for i in 0..t.len().saturating_sub(3) {
            if !(t[i].is(".") && t[i + 1].is("send") && t[i + 2].is("(") && t[i + 3].is(")")) {
                continue;
            }
            // Walk the method chain back to its head.
            let mut dot = i;
            let mut methods = vec![i];
            loop {
                let j = dot - 1;
                if t[j].is(")") {
                    let Some(open) = f.pair[j] else { break };
                    if open >= 2 && t[open - 1].ident().is_some() && t[open - 2].is(".") {
                        dot = open - 2;
                        methods.push(dot);
                        continue;
                    }
                    break;
                }
                if t[j].ident().is_some() && j >= 1 && t[j - 1].is(".") {
                    // A field (`.aws`, `.ecs`) or `.await`.
                    dot = j - 1;
                    continue;
                }
                break;
            }
            if methods.iter().any(|m| op_call_at.contains(m)) {
                continue;
            }
            let first_method = *methods.last().expect("`.send` itself");
            // A stored builder: `req.send()`, `req.x(..).send()`.
            if let Receiver::Name(n) = receiver(f, first_method) {
                let known = builder_lets.iter().any(|l| l.at < i && l.name == n);
                if known {
                    continue;
                }
            }
            scan.problems.push(format!(
                "{}:{}: an SDK call (`.send()`) whose operation and client the scanner cannot \
                 resolve (fn {}); call it on a client field, parameter or `let` it can see",
                f.rel,
                t[i].line,
                f.function_at(i)
            ));
        }
    }
}

/// The folder holding the modules declared in `rel` (`a/mod.rs` -> `a/`, `a/b.rs` -> `a/b/`).
fn module_dir(rel: &str) -> String {
    let (dir, file) = rel.rsplit_once('/').unwrap_or(("", rel));
    let dir = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    match file {
        "mod.rs" | "lib.rs" | "main.rs" => dir,
        f => format!("{dir}{}/", f.trim_end_matches(".rs")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> BTreeMap<Sdk, BTreeMap<String, String>> {
        let sdk = |k: &str| *SDKS.iter().find(|s| s.krate == k).unwrap();
        let mut m = BTreeMap::new();
        let names = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        m.insert(
            sdk("aws_sdk_ecs"),
            names(&[
                ("list_tags_for_resource", "ListTagsForResource"),
                ("describe_services", "DescribeServices"),
            ]),
        );
        m.insert(
            sdk("aws_sdk_ecr"),
            names(&[("list_tags_for_resource", "ListTagsForResource")]),
        );
        m.insert(
            sdk("aws_sdk_s3"),
            names(&[
                ("list_objects_v2", "ListObjectsV2"),
                ("get_object", "GetObject"),
            ]),
        );
        m.insert(
            sdk("aws_sdk_dynamodb"),
            names(&[
                ("get_item", "GetItem"),
                ("create_table", "CreateTable"),
                ("query", "Query"),
            ]),
        );
        m
    }

    fn run(files: &[(&str, &str)]) -> Scan {
        let sources: Vec<(String, String)> = files
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let mut scan = Scan::default();
        scan_sources(&sources, &ops(), &mut scan);
        scan
    }

    fn found(scan: &Scan) -> Vec<String> {
        scan.calls
            .iter()
            .map(|c| format!("{}@{}", c.actions.join("+"), c.line))
            .collect()
    }

    const AWS: &str =
        "pub struct Aws { pub ecs: aws_sdk_ecs::Client, pub ecr: aws_sdk_ecr::Client }\n";

    #[test]
    fn a_shared_operation_name_resolves_by_the_client_it_is_called_on() {
        let scan = run(&[
            ("ctx.rs", AWS),
            (
                "a.rs",
                "fn f(run: &Run) {\n  run.aws.ecs.list_tags_for_resource().send();\n  let e = &run.aws.ecr;\n  e\n   .list_tags_for_resource()\n   .send();\n}\n",
            ),
        ]);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(
            found(&scan),
            ["ecs:ListTagsForResource@2", "ecr:ListTagsForResource@5"]
        );
    }

    #[test]
    fn the_same_field_name_is_a_different_client_in_each_file() {
        let scan = run(&[
            (
                "s3.rs",
                "use aws_sdk_s3::Client;\nstruct S { client: Client }\nimpl S { async fn f(&self) { self.client.list_objects_v2().into_paginator().send(); } }\n",
            ),
            (
                "ddb.rs",
                "use aws_sdk_dynamodb::Client;\nstruct D { client: Client }\nfn g(d: &D) { let mut req = d.client.create_table();\n req = req.x(1);\n req.send(); }\n",
            ),
        ]);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(found(&scan), ["s3:ListBucket@3", "dynamodb:CreateTable@3"]);
    }

    #[test]
    fn comments_strings_and_test_modules_are_not_calls() {
        let scan = run(&[(
            "a.rs",
            "use aws_sdk_s3::Client;\n// client.get_object().send()\nfn f(client: &Client) { let s = \"client.get_object().send()\"; let c = 'x'; }\n#[cfg(test)]\nmod tests { fn t(client: Client) { client.get_object().send(); } }\n",
        )]);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert!(scan.calls.is_empty(), "{:?}", found(&scan));
    }

    #[test]
    fn clients_imported_under_other_names_and_paths_resolve() {
        let scan = run(&[
            (
                "a.rs",
                "use aws_sdk_s3::{primitives::ByteStream, Client as S3};\nfn f(c: &S3) { c.get_object().send(); }\n",
            ),
            (
                "b.rs",
                "use aws_sdk_dynamodb::client::Client;\nfn g(d: Client) { d.get_item().send(); }\nfn h(e: &aws_sdk_dynamodb::client::Client) { e.create_table().send(); }\n",
            ),
            (
                "c.rs",
                "use aws_sdk_s3::types::{Client};\nfn k(x: Client) { x.get_object(); }\n",
            ),
        ]);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(
            found(&scan),
            [
                "s3:GetObject@2",
                "dynamodb:GetItem@2",
                "dynamodb:CreateTable@3"
            ]
        );
    }

    #[test]
    fn an_operation_name_on_something_else_is_not_a_call() {
        // `r.query()` is a getter of an SDK type, not DynamoDB's Query.
        let scan = run(&[(
            "a.rs",
            "fn f(r: &Redirect) -> String { r.query().to_string() }\n",
        )]);
        assert!(scan.problems.is_empty() && scan.calls.is_empty());
    }

    #[test]
    fn a_send_the_scanner_cannot_attribute_is_a_problem_not_a_silent_miss() {
        let scan = run(&[(
            "a.rs",
            "fn f(x: &Mystery) { x.get_object().bucket(b).send(); }\nfn g(c: impl Fn() -> Thing) { c().get_item().send(); }\n",
        )]);
        assert!(scan.calls.is_empty());
        assert_eq!(scan.problems.len(), 2, "{:?}", scan.problems);
        assert!(
            scan.problems[0].starts_with("a.rs:1:"),
            "{:?}",
            scan.problems
        );
    }

    #[test]
    fn a_binding_name_used_for_two_clients_in_one_file_is_ambiguous() {
        let scan = run(&[(
            "a.rs",
            "fn f(c: &aws_sdk_ecs::Client) { c.describe_services().send(); }\nfn g(c: &aws_sdk_s3::Client) { c.get_object().send(); }\n",
        )]);
        assert!(
            scan.problems.iter().any(|p| p.contains("ambiguous")),
            "{:?}",
            scan.problems
        );
    }

    #[test]
    fn clients_made_by_constructors_resolve() {
        let scan = run(&[
            ("sdk.rs", "impl Sdk { pub fn s3(&self) -> aws_sdk_s3::Client { todo!() } }\n"),
            (
                "a.rs",
                "fn f(sdk: &Sdk) { let s = sdk.s3(); s.get_object().send(); sdk.s3().get_object().send(); }\nfn g(c: &Conf) { aws_sdk_dynamodb::Client::new(c).get_item().send(); }\n",
            ),
        ]);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(
            found(&scan),
            ["s3:GetObject@1", "s3:GetObject@1", "dynamodb:GetItem@2"]
        );
    }

    #[test]
    fn raw_identifiers_do_not_break_a_call_chain() {
        let scan = run(&[(
            "a.rs",
            "fn f(c: &aws_sdk_s3::Client) { c.get_object()\n .r#type(1)\n .send(); }\n",
        )]);
        assert!(scan.problems.is_empty(), "{:?}", scan.problems);
        assert_eq!(found(&scan), ["s3:GetObject@1"]);
    }

    #[test]
    fn literals_with_quotes_and_lifetimes_are_blanked_safely() {
        let src =
            "fn f<'a>(x: &'a str) -> char { let q = '\\''; let r = r#\"a \"quoted\" b\"#; '\"' }";
        let out = blank_non_code(src);
        assert_eq!(out.len(), src.len());
        assert!(out.contains("fn f<'a>(x: &'a str)"), "{out}");
        assert!(!out.contains("quoted"), "{out}");
    }
}
