//! ELBv2 listener and rule actions in a normalised form ([`Act`]: AWS's redirect defaults filled
//! in, status codes without `HTTP_`, forward targets as a set), so an action AWS echoes back
//! spelt differently is not a change; shared by the listeners and the listener rules.

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, FixedResponseActionConfig, RedirectActionConfig,
    RedirectActionStatusCodeEnum,
};

/// The body of the HTTPS listener's default 404.
pub const NOT_FOUND_BODY: &str = "Not Found";

/// An action, normalised for comparison.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Act {
    Redirect {
        protocol: String,
        port: String,
        host: String,
        path: String,
        query: String,
        /// `301` or `302`.
        status: String,
    },
    Fixed {
        status: String,
        content_type: String,
        body: String,
    },
    Forward {
        target_groups: BTreeSet<String>,
    },
    /// Anything else (authenticate...), by type.
    Other(String),
}

impl Act {
    /// HTTP :80's default: 301 to HTTPS :443, same host, path and query.
    pub fn https_redirect() -> Act {
        Act::Redirect {
            protocol: "HTTPS".into(),
            port: "443".into(),
            host: "#{host}".into(),
            path: "/#{path}".into(),
            query: "#{query}".into(),
            status: "301".into(),
        }
    }

    /// HTTPS :443's default: a plain-text 404.
    pub fn not_found() -> Act {
        Act::Fixed {
            status: "404".into(),
            content_type: "text/plain".into(),
            body: NOT_FOUND_BODY.into(),
        }
    }

    pub fn forward(target_group: &str) -> Act {
        Act::Forward {
            target_groups: BTreeSet::from([target_group.to_string()]),
        }
    }

    /// The normalised form of an SDK action.
    pub fn from_sdk(a: &Action) -> Act {
        match a.r#type() {
            Some(ActionTypeEnum::Redirect) => {
                let r = a.redirect_config();
                let get = |v: Option<&str>, default: &str| v.unwrap_or(default).to_string();
                Act::Redirect {
                    protocol: get(r.and_then(|r| r.protocol()), "#{protocol}").to_uppercase(),
                    port: get(r.and_then(|r| r.port()), "#{port}"),
                    host: get(r.and_then(|r| r.host()), "#{host}"),
                    path: get(r.and_then(|r| r.path()), "/#{path}"),
                    query: get(r.and_then(|r| r.query()), "#{query}"),
                    status: r
                        .and_then(|r| r.status_code())
                        .map(|s| s.as_str().trim_start_matches("HTTP_").to_string())
                        .unwrap_or_default(),
                }
            }
            Some(ActionTypeEnum::FixedResponse) => {
                let f = a.fixed_response_config();
                Act::Fixed {
                    status: f
                        .and_then(|f| f.status_code())
                        .unwrap_or_default()
                        .to_string(),
                    content_type: f
                        .and_then(|f| f.content_type())
                        .unwrap_or_default()
                        .to_string(),
                    body: f
                        .and_then(|f| f.message_body())
                        .unwrap_or_default()
                        .to_string(),
                }
            }
            Some(ActionTypeEnum::Forward) => {
                let mut tgs: BTreeSet<String> = a
                    .target_group_arn()
                    .map(str::to_string)
                    .into_iter()
                    .collect();
                if let Some(f) = a.forward_config() {
                    tgs.extend(
                        f.target_groups()
                            .iter()
                            .filter_map(|t| t.target_group_arn().map(str::to_string)),
                    );
                }
                Act::Forward { target_groups: tgs }
            }
            other => Act::Other(other.map(|t| t.as_str().to_string()).unwrap_or_default()),
        }
    }

    /// The SDK action for this (never called on `Other`).
    pub fn to_sdk(&self) -> Action {
        match self {
            Act::Redirect {
                protocol,
                port,
                host,
                path,
                query,
                status,
            } => Action::builder()
                .r#type(ActionTypeEnum::Redirect)
                .redirect_config(
                    RedirectActionConfig::builder()
                        .protocol(protocol)
                        .port(port)
                        .host(host)
                        .path(path)
                        .query(query)
                        .status_code(RedirectActionStatusCodeEnum::from(
                            format!("HTTP_{status}").as_str(),
                        ))
                        .build(),
                )
                .build(),
            Act::Fixed {
                status,
                content_type,
                body,
            } => Action::builder()
                .r#type(ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    FixedResponseActionConfig::builder()
                        .status_code(status)
                        .content_type(content_type)
                        .message_body(body)
                        .build(),
                )
                .build(),
            Act::Forward { target_groups } => Action::builder()
                .r#type(ActionTypeEnum::Forward)
                .target_group_arn(target_groups.iter().next().cloned().unwrap_or_default())
                .build(),
            Act::Other(t) => Action::builder()
                .r#type(ActionTypeEnum::from(t.as_str()))
                .build(),
        }
    }

    /// In plain words: `redirect 301 to HTTPS:443`, `fixed 404`, `forward to web`.
    pub fn text(&self) -> String {
        match self {
            Act::Redirect {
                protocol,
                port,
                host,
                path,
                query,
                status,
            } => {
                let mut s = format!("redirect {status} to {protocol}:{port}");
                if (host.as_str(), path.as_str(), query.as_str())
                    != ("#{host}", "/#{path}", "#{query}")
                {
                    s.push_str(&format!(" {host}{path}?{query}"));
                }
                s
            }
            Act::Fixed { status, .. } => format!("fixed {status}"),
            Act::Forward { target_groups } => format!(
                "forward to {}",
                target_groups
                    .iter()
                    .map(|a| short_arn(a))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Act::Other(t) => t.clone(),
        }
    }
}

/// The name part of an ELBv2 ARN (`targetgroup/web/abc` -> `web`), for messages.
pub fn short_arn(arn: &str) -> &str {
    let mut parts = arn.rsplit('/');
    let _id = parts.next();
    parts.next().unwrap_or(arn)
}
