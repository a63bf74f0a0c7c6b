//! Where a spec's resources live: the account and region of its ClusterSpec (a ServiceSpec
//! inherits its cluster's). Pure.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::types::Account;
use super::{Spec, SpecKey};

/// The account (`None`: the operator's own credentials) and region (`None`: the operator's
/// region) of a spec, as the status record keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<Account>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl Placement {
    /// The same placement with the region filled in (`own` when the spec gives none).
    pub fn resolved(&self, own: &str) -> Placement {
        Placement {
            account: self.account.clone(),
            region: Some(self.region.clone().unwrap_or_else(|| own.to_string())),
        }
    }

    /// The account id, or `own` for the operator's own account (a metrics label).
    pub fn account_label(&self) -> &str {
        self.account.as_ref().map_or("own", |a| a.id.as_str())
    }

    pub fn region_label(&self) -> &str {
        self.region.as_deref().unwrap_or("default")
    }

    /// One string per (account, region): what shared reads, budgets and guards are keyed by.
    pub fn scope_key(&self) -> String {
        format!("{}/{}", self.account_label(), self.region_label())
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.account {
            Some(a) => write!(f, "account {} ({})", a.id, a.role_arn)?,
            None => write!(f, "the operator's account")?,
        }
        match &self.region {
            Some(r) => write!(f, ", region {r}"),
            None => write!(f, ", the operator's region"),
        }
    }
}

/// The placement of `spec`: its own fields for a ClusterSpec, its cluster's for a ServiceSpec
/// (`None` when that cluster is not among `specs`).
pub fn placement_of(
    spec: &Spec,
    specs: &std::collections::BTreeMap<SpecKey, std::sync::Arc<Spec>>,
) -> Option<Placement> {
    let cluster = match spec {
        Spec::Cluster(c) => c.as_ref(),
        Spec::Service(s) => super::cluster_spec_of(s, specs)?,
    };
    Some(Placement {
        account: cluster.spec.account.clone(),
        region: cluster.spec.region.clone(),
    })
}

/// Why a spec at `now` may not be reconciled when its resources were recorded at `recorded`
/// (both resolved): the account and region of a cluster cannot change in place.
pub fn moved(recorded: &Placement, now: &Placement) -> Option<String> {
    let mut what = Vec::new();
    if recorded.region != now.region {
        what.push(format!(
            "region {} -> {}",
            recorded.region_label(),
            now.region_label()
        ));
    }
    if recorded.account.as_ref().map(|a| &a.id) != now.account.as_ref().map(|a| &a.id) {
        what.push(format!(
            "account {} -> {}",
            recorded.account_label(),
            now.account_label()
        ));
    }
    (!what.is_empty()).then(|| {
        format!(
            "{} cannot change in place: the spec's resources live in {recorded}; nothing is moved or recreated. Set it back, or delete the spec (its resources are deleted or released per deletionPolicy) and create it again",
            what.join(" and ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(account: Option<&str>, region: &str) -> Placement {
        Placement {
            account: account.map(|id| Account {
                id: id.into(),
                role_arn: format!("arn:aws:iam::{id}:role/r"),
                external_id: None,
            }),
            region: Some(region.into()),
        }
    }

    #[test]
    fn a_region_or_account_move_is_refused_naming_both_sides() {
        let why = moved(&p(None, "eu-west-1"), &p(None, "us-east-1")).expect("refused");
        assert!(why.contains("region eu-west-1 -> us-east-1"), "{why}");
        let why =
            moved(&p(None, "eu-west-1"), &p(Some("210987654321"), "eu-west-1")).expect("refused");
        assert!(why.contains("account own -> 210987654321"), "{why}");
    }

    #[test]
    fn the_same_place_or_another_role_of_the_same_account_is_not_a_move() {
        assert_eq!(moved(&p(None, "eu-west-1"), &p(None, "eu-west-1")), None);
        let mut other_role = p(Some("210987654321"), "eu-west-1");
        other_role.account.as_mut().unwrap().role_arn = "arn:aws:iam::210987654321:role/x".into();
        assert_eq!(
            moved(&p(Some("210987654321"), "eu-west-1"), &other_role),
            None
        );
    }

    #[test]
    fn an_unset_region_resolves_to_the_operators() {
        let unset = Placement::default();
        assert_eq!(unset.resolved("eu-west-1"), p(None, "eu-west-1"));
        assert_eq!(
            p(None, "us-east-1").resolved("eu-west-1"),
            p(None, "us-east-1")
        );
    }
}
