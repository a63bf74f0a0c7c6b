//! The API-model check: every request a test's moto receives is read against the published
//! AWS API model of its service (botocore's `service-2.json` in the pinned virtualenv) and
//! checked for what AWS would refuse and moto accepts: required and unknown members, types,
//! string lengths, number ranges, enums, patterns, list sizes, and the per-operation limits the
//! API reference documents ([`validate::DOCUMENTED_LIMITS`]).
//!
//! [`ApiCheck`] is a [`crate::proxy::Policy`] that records every violation and forwards every
//! request unchanged; [`crate::Moto`] puts one in front of every moto server, so every
//! end-to-end test runs behind it and fails at the end when anything was recorded.
//!
//! Layout: [`model`] loads and indexes the models, [`wire`] reads a request into its
//! operation and input members, [`validate`] checks them (pure).

pub mod model;
pub mod validate;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

pub use validate::{Rule, Violation};

use crate::proxy::{Action, Policy, Request};

/// Every violation of one request (empty when it is valid, or not an AWS call).
pub fn check(req: &Request) -> Vec<Violation> {
    match wire::decode(req) {
        Ok(None) => Vec::new(),
        Ok(Some(d)) => {
            let op = &d.model.operations[&d.operation];
            match &op.input {
                Some(input) => {
                    validate::check(d.model, &d.operation, &input.shape, &d.input, d.textual)
                }
                None if d.input.is_null() => Vec::new(),
                None => vec![Violation {
                    service: d.model.name.into(),
                    operation: d.operation.clone(),
                    path: String::new(),
                    rule: Rule::UnknownMember,
                    detail: format!("the operation takes no input, got {}", d.input),
                }],
            }
        }
        Err(e) => vec![Violation {
            service: e.service,
            operation: e.operation,
            path: String::new(),
            rule: Rule::Unreadable,
            detail: e.reason,
        }],
    }
}

/// A proxy policy that checks every request and forwards it unchanged.
#[derive(Debug, Default)]
pub struct ApiCheck {
    violations: Mutex<Vec<Violation>>,
    checked: AtomicU64,
}

impl ApiCheck {
    /// Everything recorded so far, and forget it.
    pub fn take(&self) -> Vec<Violation> {
        std::mem::take(&mut *self.violations.lock().expect("the violations lock"))
    }

    /// How many requests were checked.
    pub fn checked(&self) -> u64 {
        self.checked.load(Ordering::Relaxed)
    }

    /// Everything recorded so far.
    pub fn violations(&self) -> Vec<Violation> {
        self.violations.lock().expect("the violations lock").clone()
    }
}

impl Policy for ApiCheck {
    fn decide(&self, req: &Request) -> Action {
        let found = check(req);
        self.checked.fetch_add(1, Ordering::Relaxed);
        if !found.is_empty() {
            self.violations
                .lock()
                .expect("the violations lock")
                .extend(found);
        }
        Action::Forward
    }
}

/// The violations as a report, one per line, each distinct one once with its count.
pub fn report(violations: &[Violation]) -> String {
    let mut counted: std::collections::BTreeMap<&Violation, usize> = Default::default();
    for v in violations {
        *counted.entry(v).or_default() += 1;
    }
    counted
        .into_iter()
        .map(|(v, n)| {
            if n > 1 {
                format!("  {v} (x{n})")
            } else {
                format!("  {v}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests;
