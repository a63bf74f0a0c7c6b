//! The published AWS API models (botocore's `service-2.json.gz`, shipped in the pinned
//! virtualenv), loaded once per process and per service, with their patterns compiled.
//!
//! Invariant: a model is read and indexed at most once per process ([`OnceLock`] per service);
//! a pattern that does not compile is kept in [`Model::bad_patterns`] (never silently dropped),
//! and a self-test asserts there are none.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;

/// The services whose models are loaded: the operator's, the stores', and those the fixtures
/// call through the AWS CLI. `(botocore folder, API version)`.
pub const SERVICES: &[(&str, &str)] = &[
    ("ecs", "2014-11-13"),
    ("ecr", "2015-09-21"),
    ("elbv2", "2015-12-01"),
    ("elb", "2012-06-01"),
    ("route53", "2013-04-01"),
    ("acm", "2015-12-08"),
    ("application-autoscaling", "2016-02-06"),
    ("autoscaling", "2011-01-01"),
    ("s3", "2006-03-01"),
    ("dynamodb", "2012-08-10"),
    ("dynamodbstreams", "2012-08-10"),
    ("ec2", "2016-11-15"),
    ("iam", "2010-05-08"),
    ("sts", "2011-06-15"),
    ("logs", "2014-03-28"),
    ("sqs", "2012-11-05"),
    ("events", "2015-10-07"),
    ("cloudwatch", "2010-08-01"),
    ("sns", "2010-03-31"),
];

/// A wire protocol, as the model's `metadata.protocol` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireProtocol {
    Json,
    Query,
    Ec2,
    RestXml,
    RestJson,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub protocol: String,
    pub api_version: String,
    pub endpoint_prefix: String,
    pub target_prefix: Option<String>,
    pub signing_name: Option<String>,
    /// Every protocol the service accepts, the preferred one first (absent: only `protocol`).
    #[serde(default)]
    pub protocols: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Http {
    pub method: String,
    #[serde(rename = "requestUri")]
    pub request_uri: String,
}

#[derive(Debug, Deserialize)]
pub struct ShapeRef {
    pub shape: String,
}

#[derive(Debug, Deserialize)]
pub struct Operation {
    pub http: Http,
    pub input: Option<ShapeRef>,
    /// Replaced by another operation (S3's PutBucketNotification by
    /// PutBucketNotificationConfiguration, on the same method and path).
    #[serde(default)]
    pub deprecated: bool,
}

/// A member of a structure, or the member/key/value of a list or map.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub shape: String,
    /// REST: `uri`, `querystring`, `header`, `headers`; absent for the body.
    pub location: Option<String>,
    pub location_name: Option<String>,
    /// The EC2 protocol's query key.
    pub query_name: Option<String>,
    #[serde(default)]
    pub flattened: bool,
    #[serde(default)]
    pub xml_attribute: bool,
}

/// One shape: its type and the constraints the model publishes.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub members: BTreeMap<String, Member>,
    #[serde(default)]
    pub required: Vec<String>,
    pub member: Option<Member>,
    pub key: Option<Member>,
    pub value: Option<Member>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub pattern: Option<String>,
    #[serde(rename = "enum")]
    pub enum_values: Option<Vec<String>>,
    #[serde(default)]
    pub flattened: bool,
    pub location_name: Option<String>,
    pub payload: Option<String>,
    #[serde(default)]
    pub union: bool,
}

#[derive(Debug, Deserialize)]
struct Raw {
    metadata: Metadata,
    operations: HashMap<String, Operation>,
    shapes: HashMap<String, Shape>,
}

/// One service's model, indexed.
#[derive(Debug)]
pub struct Model {
    /// The botocore folder name (`elbv2`).
    pub name: &'static str,
    pub metadata: Metadata,
    pub protocol: WireProtocol,
    pub operations: HashMap<String, Operation>,
    pub shapes: HashMap<String, Shape>,
    /// Compiled patterns, by shape name.
    pub patterns: HashMap<String, Pattern>,
    /// Shapes whose pattern does not compile, with the error.
    pub bad_patterns: Vec<(String, String)>,
}

impl Model {
    pub fn shape(&self, name: &str) -> &Shape {
        self.shapes
            .get(name)
            .unwrap_or_else(|| panic!("model {}: no shape {name}", self.name))
    }

    /// The name SigV4 signs with (`elasticloadbalancing`).
    pub fn signing_name(&self) -> &str {
        self.metadata
            .signing_name
            .as_deref()
            .unwrap_or(&self.metadata.endpoint_prefix)
    }
}

/// botocore's data folder in the pinned virtualenv.
pub fn data_dir() -> PathBuf {
    let lib = crate::workspace_root().join(".venv/lib");
    let python = std::fs::read_dir(&lib)
        .unwrap_or_else(|e| {
            panic!(
                "{} is unreadable ({e}): run scripts/setup-moto (it installs moto and botocore)",
                lib.display()
            )
        })
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.join("site-packages/botocore/data").is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no botocore under {}: run scripts/setup-moto",
                lib.display()
            )
        });
    python.join("site-packages/botocore/data")
}

fn read_model_file(dir: &Path) -> Vec<u8> {
    let plain = dir.join("service-2.json");
    if let Ok(bytes) = std::fs::read(&plain) {
        return bytes;
    }
    let gz = dir.join("service-2.json.gz");
    let file = std::fs::File::open(&gz)
        .unwrap_or_else(|e| panic!("the API model {} is unreadable: {e}", gz.display()));
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("the API model {} does not decompress: {e}", gz.display()));
    out
}

/// A shape's pattern, compiled to match the whole value.
///
/// AWS validates a value against the whole pattern (an unanchored search would accept
/// `Not_Lower!` as an ECR repository name because `ot` matches; ECR refuses it), so every
/// pattern is compiled as `^(?:PATTERN)$`.
#[derive(Debug)]
pub enum Pattern {
    Plain(regex::Regex),
    /// Patterns with look-around (ACM's domain names), which `regex` does not support.
    Fancy(fancy_regex::Regex),
}

impl Pattern {
    pub fn compile(p: &str) -> Result<Pattern, String> {
        let full = format!("^(?:{})$", translate_pattern(p));
        match regex::Regex::new(&full) {
            Ok(re) => Ok(Pattern::Plain(re)),
            Err(plain) => fancy_regex::Regex::new(&full)
                .map(Pattern::Fancy)
                .map_err(|fancy| format!("{p}: {plain}; {fancy}")),
        }
    }

    /// Whether `s` matches; `Err` when the matcher gave up (backtracking limit).
    pub fn matches(&self, s: &str) -> Result<bool, String> {
        match self {
            Pattern::Plain(re) => Ok(re.is_match(s)),
            Pattern::Fancy(re) => re.is_match(s).map_err(|e| e.to_string()),
        }
    }
}

/// botocore patterns are ECMA-262. Two spellings the `regex` crate reads differently:
/// UTF-16 surrogates, which the models use for "any supplementary character"
/// (`\uD800\uDC00-\uDBFF\uDFFF`), and a class escape before `-` in a set (`[\w-_]`), which
/// ECMA-262 reads as a literal `-`.
pub fn translate_pattern(p: &str) -> String {
    p.replace(r"\uD800\uDC00-\uDBFF\uDFFF", r"\x{10000}-\x{10FFFF}")
        .replace(r"\uD800-\uDBFF\uDC00-\uDFFF", r"\x{10000}-\x{10FFFF}")
        .replace(r"\w-", r"\w\-")
        .replace(r"\d-", r"\d\-")
        .replace(r"\s-", r"\s\-")
}

fn load(name: &'static str, version: &str) -> Model {
    let dir = data_dir().join(name).join(version);
    let raw: Raw = serde_json::from_slice(&read_model_file(&dir))
        .unwrap_or_else(|e| panic!("the API model in {} does not parse: {e}", dir.display()));
    // CloudWatch prefers Smithy RPC v2 CBOR but still accepts the query protocol, which is
    // what the operator's pinned aws-sdk-cloudwatch (and moto) speak: check against that.
    let preferred = match raw.metadata.protocol.as_str() {
        "smithy-rpc-v2-cbor" if raw.metadata.protocols.iter().any(|p| p == "query") => "query",
        other => other,
    };
    let protocol = match preferred {
        "json" => WireProtocol::Json,
        "query" => WireProtocol::Query,
        "ec2" => WireProtocol::Ec2,
        "rest-xml" => WireProtocol::RestXml,
        "rest-json" => WireProtocol::RestJson,
        other => panic!("model {name}: unknown protocol {other}"),
    };
    let mut patterns = HashMap::new();
    let mut bad_patterns = Vec::new();
    for (shape_name, shape) in &raw.shapes {
        if let Some(p) = &shape.pattern {
            match Pattern::compile(p) {
                Ok(re) => {
                    patterns.insert(shape_name.clone(), re);
                }
                Err(e) => bad_patterns.push((shape_name.clone(), e)),
            }
        }
    }
    Model {
        name,
        metadata: raw.metadata,
        protocol,
        operations: raw.operations,
        shapes: raw.shapes,
        patterns,
        bad_patterns,
    }
}

fn cells() -> &'static [OnceLock<Model>] {
    static CELLS: OnceLock<Vec<OnceLock<Model>>> = OnceLock::new();
    CELLS.get_or_init(|| SERVICES.iter().map(|_| OnceLock::new()).collect())
}

/// The model of `SERVICES[i]`, loaded on first use.
fn model_at(i: usize) -> &'static Model {
    let (name, version) = SERVICES[i];
    cells()[i].get_or_init(|| load(name, version))
}

/// The model in botocore folder `name`, if it is one of [`SERVICES`].
pub fn by_name(name: &str) -> Option<&'static Model> {
    SERVICES.iter().position(|(n, _)| *n == name).map(model_at)
}

/// Every model (loads them all: for self-tests).
pub fn all() -> Vec<&'static Model> {
    (0..SERVICES.len()).map(model_at).collect()
}

/// The JSON-protocol model whose `targetPrefix` is `prefix` (`AmazonEC2ContainerServiceV20141113`).
/// The folder is chosen without loading every model.
pub fn by_target_prefix(prefix: &str) -> Option<&'static Model> {
    let folder = match prefix {
        "AmazonEC2ContainerServiceV20141113" => "ecs",
        "AmazonEC2ContainerRegistry_V20150921" => "ecr",
        "CertificateManager" => "acm",
        "AnyScaleFrontendService" => "application-autoscaling",
        "DynamoDB_20120810" => "dynamodb",
        "DynamoDBStreams_20120810" => "dynamodbstreams",
        "Logs_20140328" => "logs",
        "AmazonSQS" => "sqs",
        "AWSEvents" => "events",
        _ => return None,
    };
    by_name(folder).filter(|m| m.metadata.target_prefix.as_deref() == Some(prefix))
}

/// The query or EC2-protocol model for a signing name and `Version=`.
pub fn by_query_version(signing_name: Option<&str>, version: &str) -> Option<&'static Model> {
    SERVICES
        .iter()
        .position(|(n, v)| {
            *v == version
                && matches!(
                    *n,
                    "elbv2" | "elb" | "autoscaling" | "ec2" | "iam" | "sts" | "cloudwatch" | "sns"
                )
        })
        .map(model_at)
        .filter(|m| {
            signing_name.is_none_or(|s| s == m.signing_name() || s == m.metadata.endpoint_prefix)
        })
}
