//! Errors of the resource modules, and how they map onto the runtime's retry decisions.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::runtime::failure::{Cause, Failure};

#[derive(Debug, Clone, thiserror::Error)]
pub enum ResourceError {
    /// An AWS call failed after the SDK's own retries.
    #[error("{operation} ({resource}): {code}: {message}")]
    Aws {
        operation: &'static str,
        resource: String,
        /// The AWS error code (`ClusterNotFoundException`), or `Transport` / `Timeout`.
        code: String,
        message: String,
        /// Throttling, 5xx and transport errors are worth retrying; validation errors are not.
        retryable: bool,
    },
    /// The resource exists but carries no ownership tags of ours, and the spec did not ask to
    /// adopt it.
    #[error("{resource} exists and is not owned by this operator (tags {managed_by}/{owner} missing or different); add the annotation ecs-operator.io/adopt: \"true\" to take it over")]
    NotOwned {
        resource: String,
        managed_by: &'static str,
        owner: &'static str,
    },
    /// The spec asks for something AWS cannot change in place.
    #[error("{resource}: {field} cannot be changed in place ({observed} -> {desired}); the resource is left as it is")]
    Immutable {
        resource: String,
        field: String,
        observed: String,
        desired: String,
    },
    /// Something this spec needs is not there (yet): its ClusterSpec, a load balancer...
    #[error("{0}")]
    Dependency(String),
    /// The spec is valid but cannot be satisfied (a hosted zone that does not exist...).
    #[error("{0}")]
    Unsatisfiable(String),
}

impl ResourceError {
    /// Wrap an SDK error with the operation and resource it was about.
    pub fn aws<E, R>(operation: &'static str, resource: &str, err: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let (code, message, retryable) = match &err {
            SdkError::ServiceError(se) => {
                let e = se.err();
                let code = e.code().unwrap_or("Unknown").to_string();
                let retryable = is_retryable_code(&code);
                (code, e.message().unwrap_or_default().to_string(), retryable)
            }
            SdkError::TimeoutError(_) => ("Timeout".into(), "the call timed out".into(), true),
            SdkError::DispatchFailure(d) => ("Transport".into(), format!("{d:?}"), true),
            SdkError::ResponseError(r) => ("Response".into(), format!("{r:?}"), true),
            other => (
                "Client".into(),
                aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
                false,
            ),
        };
        ResourceError::Aws {
            operation,
            resource: resource.to_string(),
            code,
            message,
            retryable,
        }
    }

    /// A request the SDK refused to build (a required field missing): a bug or an impossible
    /// spec, never worth retrying.
    pub fn request(e: impl std::fmt::Display) -> Self {
        ResourceError::Unsatisfiable(format!("cannot build the AWS request: {e}"))
    }

    /// The AWS error code, when this is an AWS error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ResourceError::Aws { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn is_retryable(&self) -> bool {
        match self {
            ResourceError::Aws { retryable, .. } => *retryable,
            ResourceError::Dependency(_) => true,
            _ => false,
        }
    }
}

/// An answer in which AWS saying that the resource does not exist is an answer, not a failure:
/// a describe by name finds nothing, a delete finds the resource already gone.
pub trait Absent<T> {
    /// `Ok(None)` when the call failed with the AWS error code `code`; any other failure
    /// stays a failure.
    fn absent_if(self, code: &str) -> Result<Option<T>, ResourceError>;
}

impl<T> Absent<T> for Result<T, ResourceError> {
    fn absent_if(self, code: &str) -> Result<Option<T>, ResourceError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code() == Some(code) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn is_retryable_code(code: &str) -> bool {
    code.contains("Throttl")
        || code.contains("TooManyRequests")
        || code.contains("RequestLimitExceeded")
        || code.contains("ServiceUnavailable")
        || code.contains("InternalFailure")
        || code.contains("InternalError")
        || code.contains("ServerException")
        || code == "PriorRequestNotComplete"
        || code == "ResourceInUse"
        || code == "ResourceInUseException"
        || code == "ConcurrentModificationException"
        || code == "ServiceException"
        || code == "Unknown"
}

impl From<ResourceError> for Failure {
    fn from(e: ResourceError) -> Self {
        if e.is_retryable() {
            Failure::Retryable(Cause::of(e))
        } else {
            Failure::Terminal(Cause::of(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws_error(code: &str) -> ResourceError {
        ResourceError::Aws {
            operation: "DeleteRule",
            resource: "rule".into(),
            code: code.into(),
            message: String::new(),
            retryable: false,
        }
    }

    #[test]
    fn only_the_named_error_code_counts_as_absent() {
        assert_eq!(
            Ok::<_, ResourceError>(7).absent_if("RuleNotFound").unwrap(),
            Some(7)
        );
        assert_eq!(
            Err::<u8, _>(aws_error("RuleNotFound"))
                .absent_if("RuleNotFound")
                .unwrap(),
            None
        );
        let other = Err::<u8, _>(aws_error("AccessDenied")).absent_if("RuleNotFound");
        assert_eq!(other.unwrap_err().code(), Some("AccessDenied"));
        let not_aws = Err::<u8, _>(ResourceError::Dependency("cluster".into()));
        assert!(not_aws.absent_if("RuleNotFound").is_err());
    }
}
