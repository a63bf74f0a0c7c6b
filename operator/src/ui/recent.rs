//! The last few reconcile outcomes of every spec, in memory, for the web page.
//!
//! Invariants: at most [`Recent::PER_SPEC`] outcomes per spec (the oldest is dropped first),
//! and only for keys still known (the run loop calls [`Recent::retain`] after every listing),
//! so memory is bounded by the size of the fleet. Messages are cut to [`MAX_MESSAGE`] bytes.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use crate::runtime::{Action, Failure};
use crate::spec::SpecKey;
use crate::store::Phase;

/// The longest message kept per outcome, in bytes.
pub const MAX_MESSAGE: usize = 500;

/// How one reconcile ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// When it ended (RFC 3339, UTC).
    pub at: String,
    pub took: Duration,
    /// `converged`, `requeued`, `retrying` (a retryable error: backoff) or `failed` (terminal).
    pub result: &'static str,
    /// The requeue delay, or the error's first line.
    pub detail: String,
    /// The spec's phase once it ended, as its status record says.
    pub phase: Option<Phase>,
}

impl Outcome {
    /// Describe what the runtime got back from a reconcile.
    pub fn of(
        result: &Result<Action, Failure>,
        at: String,
        took: Duration,
        phase: Option<Phase>,
    ) -> Outcome {
        let (result, detail) = match result {
            Ok(Action::AwaitChange) => ("converged", String::new()),
            Ok(Action::RequeueAfter(d)) => ("requeued", format!("again in {}", short(*d))),
            Err(Failure::Retryable(m)) => ("retrying", first_line(m)),
            Err(Failure::Terminal(m)) => ("failed", first_line(m)),
        };
        Outcome {
            at,
            took,
            result,
            detail,
            phase,
        }
    }
}

/// A duration as `850ms`, `15s`, `5m`, `2h 10m`.
pub fn short(d: Duration) -> String {
    let s = d.as_secs();
    if s == 0 {
        format!("{}ms", d.as_millis())
    } else if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        match s % 60 {
            0 => format!("{}m", s / 60),
            r => format!("{}m {r}s", s / 60),
        }
    } else if s < 86_400 {
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d {}h", s / 86_400, (s % 86_400) / 3600)
    }
}

fn first_line(m: &str) -> String {
    let line = m.lines().next().unwrap_or_default();
    if line.len() <= MAX_MESSAGE {
        return line.to_string();
    }
    let mut end = MAX_MESSAGE;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}

/// The bounded ring of recent outcomes per spec.
#[derive(Debug, Default)]
pub struct Recent {
    rings: Mutex<HashMap<SpecKey, VecDeque<Outcome>>>,
}

impl Recent {
    /// Outcomes kept per spec.
    pub const PER_SPEC: usize = 10;

    pub fn record(&self, key: &SpecKey, outcome: Outcome) {
        let mut rings = self.rings.lock().expect("recent lock");
        let ring = rings.entry(key.clone()).or_default();
        if ring.len() == Self::PER_SPEC {
            ring.pop_front();
        }
        ring.push_back(outcome);
    }

    /// The outcomes of `key`, newest first.
    pub fn of(&self, key: &SpecKey) -> Vec<Outcome> {
        let rings = self.rings.lock().expect("recent lock");
        rings
            .get(key)
            .map(|r| r.iter().rev().cloned().collect())
            .unwrap_or_default()
    }

    /// Forget every spec that is not in `known`.
    pub fn retain(&self, known: &BTreeSet<SpecKey>) {
        self.rings
            .lock()
            .expect("recent lock")
            .retain(|k, _| known.contains(k));
    }

    /// How many specs have outcomes.
    pub fn len(&self) -> usize {
        self.rings.lock().expect("recent lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Kind;

    fn outcome(n: u64) -> Outcome {
        Outcome::of(
            &Ok(Action::RequeueAfter(Duration::from_secs(n))),
            format!("t{n}"),
            Duration::from_millis(n),
            Some(Phase::Progressing),
        )
    }

    #[test]
    fn a_ring_keeps_the_last_ten_outcomes_newest_first() {
        let r = Recent::default();
        let web = SpecKey::new(Kind::ServiceSpec, "web");
        for n in 1..=13 {
            r.record(&web, outcome(n));
        }
        let got: Vec<String> = r.of(&web).into_iter().map(|o| o.at).collect();
        let want: Vec<String> = (4..=13).rev().map(|n| format!("t{n}")).collect();
        assert_eq!(got, want);
        assert!(r.of(&SpecKey::new(Kind::ServiceSpec, "admin")).is_empty());
    }

    #[test]
    fn specs_that_are_no_longer_known_are_forgotten() {
        let r = Recent::default();
        let (web, admin) = (
            SpecKey::new(Kind::ServiceSpec, "web"),
            SpecKey::new(Kind::ServiceSpec, "admin"),
        );
        r.record(&web, outcome(1));
        r.record(&admin, outcome(2));
        r.retain(&BTreeSet::from([admin.clone()]));
        assert_eq!(r.len(), 1);
        assert!(r.of(&web).is_empty());
        assert_eq!(r.of(&admin).len(), 1);
    }

    #[test]
    fn outcomes_say_how_the_reconcile_ended_with_the_first_line_of_an_error_cut_short() {
        let at = || "2026-01-01T00:00:00Z".to_string();
        let took = Duration::from_millis(40);
        let ok = Outcome::of(&Ok(Action::AwaitChange), at(), took, Some(Phase::Ready));
        assert_eq!((ok.result, ok.detail.as_str()), ("converged", ""));
        let long = format!("{}\nsecond line", "é".repeat(400));
        let err = Outcome::of(
            &Err(Failure::Retryable(long.into())),
            at(),
            took,
            Some(Phase::Degraded),
        );
        assert_eq!(err.result, "retrying");
        assert!(
            err.detail.len() <= MAX_MESSAGE + '…'.len_utf8(),
            "{}",
            err.detail.len()
        );
        assert!(err.detail.ends_with('…') && !err.detail.contains("second"));
        let bad = Outcome::of(
            &Err(Failure::Terminal("invalid spec".into())),
            at(),
            took,
            Some(Phase::Invalid),
        );
        assert_eq!(
            (bad.result, bad.detail.as_str()),
            ("failed", "invalid spec")
        );
    }

    #[test]
    fn durations_read_short() {
        assert_eq!(short(Duration::from_millis(850)), "850ms");
        assert_eq!(short(Duration::from_secs(15)), "15s");
        assert_eq!(short(Duration::from_secs(300)), "5m");
        assert_eq!(short(Duration::from_secs(303)), "5m 3s");
        assert_eq!(short(Duration::from_secs(7800)), "2h 10m");
        assert_eq!(short(Duration::from_secs(3 * 86_400 + 7200)), "3d 2h");
    }
}
