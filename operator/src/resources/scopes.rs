//! One set of AWS clients per (account, region): the operator's own credentials in its own
//! region, and for every other placement a set built on demand (docs/spec-reference.md,
//! `spec.region` and `spec.account`).
//!
//! Each set has its own call budget (AWS throttles per account and region, so one account's
//! throttling never slows another's), its own hosted-zone cache and, through the spec run,
//! its own shared reads of a resync wave.
//!
//! Another account is reached with STS AssumeRole on the operator's own credentials: one
//! `AssumeRoleProvider` per (role, region), whose credentials the SDK's identity cache keeps
//! and refreshes before they expire. Before a set is kept, GetCallerIdentity with the assumed
//! credentials must name the spec's `account.id`. A set that cannot be made (AssumeRole denied,
//! the identity of another account, an account outside `--allowed-accounts`) is not kept: the
//! next reconcile tries again, so restoring the role recovers without a restart.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use aws_config::sts::AssumeRoleProvider;
use aws_sdk_sts::config::SharedCredentialsProvider;
use aws_smithy_types::error::display::DisplayErrorContext;

use super::context::Aws;
use crate::aws::{Budget, Sdk};
use crate::spec::Placement;

/// Why a placement has no clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unreachable {
    /// The account is not in `--allowed-accounts`.
    NotAllowed(String),
    /// AssumeRole or the identity check failed.
    AssumeRole(String),
}

impl Unreachable {
    pub fn reason(&self) -> &'static str {
        match self {
            Unreachable::NotAllowed(_) => "AccountNotAllowed",
            Unreachable::AssumeRole(_) => "AccountUnreachable",
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Unreachable::NotAllowed(m) | Unreachable::AssumeRole(m) => m,
        }
    }
}

/// The clients of every placement reached so far.
pub struct Scopes {
    own: Arc<Aws>,
    allowed: Option<BTreeSet<String>>,
    /// Resolved placement -> its clients. Only sets that passed the identity check.
    sets: Mutex<HashMap<Placement, Arc<Aws>>>,
    /// Serialises the making of sets, so concurrent reconciles assume a role once.
    making: tokio::sync::Mutex<()>,
}

impl Scopes {
    pub fn new(own: Arc<Aws>, allowed: Option<BTreeSet<String>>) -> Scopes {
        Scopes {
            own,
            allowed,
            sets: Mutex::new(HashMap::new()),
            making: tokio::sync::Mutex::new(()),
        }
    }

    /// The operator's own clients (its credentials and region).
    pub fn own(&self) -> &Arc<Aws> {
        &self.own
    }

    /// `p` with the operator's region filled in.
    pub fn resolve(&self, p: &Placement) -> Placement {
        p.resolved(&self.own.region)
    }

    /// Every set made so far, with its placement (the own one first).
    pub fn known(&self) -> Vec<(Placement, Arc<Aws>)> {
        let mut v: Vec<_> = self
            .sets
            .lock()
            .expect("scopes lock")
            .iter()
            .map(|(p, a)| (p.clone(), a.clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.insert(0, (self.resolve(&Placement::default()), self.own.clone()));
        v
    }

    /// The clients of placement `p` (resolved here), made when first asked for.
    pub async fn aws(&self, p: &Placement) -> Result<Arc<Aws>, Unreachable> {
        let p = self.resolve(p);
        if p.account.is_none() && p.region.as_deref() == Some(self.own.region.as_str()) {
            return Ok(self.own.clone());
        }
        if let (Some(a), Some(allowed)) = (&p.account, &self.allowed) {
            if !allowed.contains(&a.id) {
                return Err(Unreachable::NotAllowed(format!(
                    "account {} is not in --allowed-accounts ({}): this operator does not reach it",
                    a.id,
                    allowed.iter().cloned().collect::<Vec<_>>().join(",")
                )));
            }
        }
        if let Some(aws) = self.sets.lock().expect("scopes lock").get(&p) {
            return Ok(aws.clone());
        }
        let _making = self.making.lock().await;
        if let Some(aws) = self.sets.lock().expect("scopes lock").get(&p) {
            return Ok(aws.clone());
        }
        let aws = self.make(&p).await?;
        self.sets
            .lock()
            .expect("scopes lock")
            .insert(p, aws.clone());
        Ok(aws)
    }

    async fn make(&self, p: &Placement) -> Result<Arc<Aws>, Unreachable> {
        let region = aws_config::Region::new(p.region.clone().unwrap_or_default());
        let base = &self.own.base;
        let calls = base
            .calls
            .scoped(p.account_label(), p.region.as_deref().unwrap_or_default());
        let mut config = base.config.to_builder().region(region.clone()).build();
        if let Some(a) = &p.account {
            let mut role = AssumeRoleProvider::builder(a.role_arn.clone())
                .session_name(format!("{}-{}", self.own.instance, a.id))
                .region(region.clone())
                .configure(&base.config);
            if let Some(x) = &a.external_id {
                role = role.external_id(x.clone());
            }
            let provider = role.build().await;
            config = config
                .into_builder()
                .credentials_provider(SharedCredentialsProvider::new(provider))
                .build();
            let sdk = Sdk::with_calls(config.clone(), calls.clone());
            let sts: aws_sdk_sts::Client = sdk.sts();
            let identity = sts.get_caller_identity().send().await.map_err(|e| {
                Unreachable::AssumeRole(format!(
                    "cannot assume {} for account {}: {}",
                    a.role_arn,
                    a.id,
                    DisplayErrorContext(&e)
                ))
            })?;
            check_identity(&a.id, identity.account())?;
        }
        let sdk = Sdk::with_calls(config, calls);
        tracing::info!(placement = %p, "clients for a new account or region");
        Ok(Aws::in_account(
            &sdk,
            &self.own.instance,
            Budget::default(),
            p.account.as_ref().map(|a| a.id.clone()),
        ))
    }
}

/// The assumed identity must be in the account the spec names.
pub fn check_identity(wanted: &str, got: Option<&str>) -> Result<(), Unreachable> {
    match got {
        Some(got) if got == wanted => Ok(()),
        got => Err(Unreachable::AssumeRole(format!(
            "the assumed identity is in account {}, but account.id is {wanted}: the role does not reach the account the spec names",
            got.unwrap_or("(none given)")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_assumed_identity_must_be_the_specs_account() {
        assert_eq!(check_identity("210987654321", Some("210987654321")), Ok(()));
        let e = check_identity("210987654321", Some("123456789012")).unwrap_err();
        assert!(e.message().contains("123456789012"), "{e:?}");
        assert_eq!(e.reason(), "AccountUnreachable");
        assert!(check_identity("210987654321", None).is_err());
    }
}
