//! Why a reconcile failed: the one error type that travels from a reconciler to the runner.
//!
//! The variant is the runner's decision (back off and retry, or wait for the spec to change);
//! the [`Cause`] is what failed: the message the status record and the log show, and, when a
//! reconciler had one, the structured error behind it ([`Cause::error`]), so nothing between
//! the AWS call and the runner flattens it to a string and back.
//!
//! Invariant: the message of a failure is the `Display` of the error it was made from; two
//! failures are equal when their variant and message are.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Why a reconcile failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Worth retrying with backoff (AWS unavailable, throttled past the SDK's retries, a
    /// dependency not ready yet).
    #[error("{0}")]
    Retryable(Cause),
    /// Retrying cannot help until the spec changes (an invalid spec, a resource the spec does
    /// not own, a field AWS cannot change in place): waits for a change.
    #[error("{0}")]
    Terminal(Cause),
}

impl Failure {
    pub fn cause(&self) -> &Cause {
        match self {
            Failure::Retryable(c) | Failure::Terminal(c) => c,
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self, Failure::Retryable(_))
    }
}

/// What failed: a message, and the error it was made from when there was one. Derefs to the
/// message.
#[derive(Debug, Clone)]
pub struct Cause {
    message: String,
    error: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Cause {
    /// A cause that is only a message (the controller's own: an invalid spec, a store error).
    pub fn message(message: impl Into<String>) -> Self {
        Cause {
            message: message.into(),
            error: None,
        }
    }

    /// A cause carrying `error` (its `Display` is the message).
    pub fn of<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Cause {
            message: error.to_string(),
            error: Some(Arc::new(error)),
        }
    }

    /// The structured error behind this cause, if it is an `E`.
    pub fn error<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.error.as_deref()?.downcast_ref::<E>()
    }
}

impl Deref for Cause {
    type Target = str;
    fn deref(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.message == other.message
    }
}

impl Eq for Cause {}

impl From<String> for Cause {
    fn from(message: String) -> Self {
        Cause::message(message)
    }
}

impl From<&str> for Cause {
    fn from(message: &str) -> Self {
        Cause::message(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("boom {0}")]
    struct Boom(u32);

    #[test]
    fn a_cause_keeps_the_error_it_was_made_from() {
        let f = Failure::Terminal(Cause::of(Boom(7)));
        assert_eq!(f.to_string(), "boom 7");
        assert_eq!(f.cause().error::<Boom>().map(|b| b.0), Some(7));
        assert!(f.cause().error::<std::fmt::Error>().is_none());
        assert!(Cause::from("plain").error::<Boom>().is_none());
        assert!(f.cause().contains("boom"));
        assert!(!f.is_retryable());
    }
}
