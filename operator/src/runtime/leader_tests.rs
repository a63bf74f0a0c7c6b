//! Leader election (docs/design.md, runtime invariant 9), proven on paused tokio time against an in-memory
//! lease reached through links that can be cut, hung, slowed, or made to lose answers.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep, sleep_until, Instant};

use super::leader::{
    BackendError, Elector, LeaderError, LeaderState, LeaseBackend, LeaseConfig, LeaseRecord,
    MemoryLease,
};

const LEASE: Duration = Duration::from_secs(15);
const RENEW: Duration = Duration::from_secs(10);
const RETRY: Duration = Duration::from_secs(2);

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

/// How a link treats the calls that pass through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Up,
    /// Calls fail without reaching the record.
    Down,
    /// Calls never return.
    Hang,
    /// Calls reach the record, but their answers are lost (the caller gets an error).
    LoseAnswers,
}

/// One call that went through a link.
#[derive(Debug, Clone)]
struct Call {
    op: &'static str,
    sent: Instant,
    /// The call wrote the record.
    committed: bool,
    /// The caller learnt the result.
    answered: bool,
}

/// One replica's way to the shared record.
struct Link {
    lease: Arc<MemoryLease>,
    mode: Mutex<Mode>,
    /// Each way, each call: uniform in [0, max].
    max_latency: Mutex<Duration>,
    rng: Mutex<fastrand::Rng>,
    /// Added to every answer's way back.
    slow_answers: Mutex<Duration>,
    calls: Mutex<Vec<Call>>,
}

impl Link {
    fn new(lease: &Arc<MemoryLease>, seed: u64) -> Arc<Link> {
        Arc::new(Link {
            lease: lease.clone(),
            mode: Mutex::new(Mode::Up),
            max_latency: Mutex::new(Duration::ZERO),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            slow_answers: Mutex::new(Duration::ZERO),
            calls: Mutex::new(Vec::new()),
        })
    }

    fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = m;
    }

    fn delay(&self) -> Duration {
        let max = *self.max_latency.lock().unwrap();
        max.mul_f64(self.rng.lock().unwrap().f64())
    }

    fn calls(&self, op: &str) -> Vec<Call> {
        let calls = self.calls.lock().unwrap();
        calls.iter().filter(|c| c.op == op).cloned().collect()
    }

    /// When the last write the caller learnt about was sent.
    fn last_answered_write(&self) -> Option<Instant> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .rev()
            .find(|c| c.committed && c.answered)
            .map(|c| c.sent)
    }

    async fn through<T>(
        &self,
        op: &'static str,
        apply: impl Future<Output = Result<T, BackendError>>,
        wrote: impl Fn(&T) -> bool,
    ) -> Result<T, BackendError> {
        let sent = Instant::now();
        sleep(self.delay()).await;
        let mode = *self.mode.lock().unwrap();
        let result = match mode {
            Mode::Hang => std::future::pending().await,
            Mode::Down => Err("link down".into()),
            Mode::Up | Mode::LoseAnswers => apply.await,
        };
        let committed = matches!(&result, Ok(v) if wrote(v));
        let answered = mode == Mode::Up;
        self.calls.lock().unwrap().push(Call {
            op,
            sent,
            committed,
            answered,
        });
        let slow = *self.slow_answers.lock().unwrap();
        sleep(self.delay() + slow).await;
        if !answered {
            return Err(format!("{op}: no answer").into());
        }
        result
    }
}

#[async_trait]
impl LeaseBackend for Link {
    async fn read(&self) -> Result<LeaseRecord, BackendError> {
        self.through("read", self.lease.read(), |_| false).await
    }
    async fn acquire(&self, h: &str, v: u64, d: Duration) -> Result<bool, BackendError> {
        self.through("acquire", self.lease.acquire(h, v, d), |w| *w)
            .await
    }
    async fn renew(&self, h: &str, v: u64, d: Duration) -> Result<bool, BackendError> {
        self.through("renew", self.lease.renew(h, v, d), |w| *w)
            .await
    }
    async fn release(&self, h: &str, v: u64) -> Result<bool, BackendError> {
        self.through("release", self.lease.release(h, v), |w| *w)
            .await
    }
}

type StateLog = Arc<Mutex<Vec<(Instant, LeaderState)>>>;

/// An elector running in its own task, with every state it published.
struct Replica {
    link: Arc<Link>,
    rx: watch::Receiver<LeaderState>,
    states: StateLog,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

fn replica(lease: &Arc<MemoryLease>, id: &str, seed: u64) -> Replica {
    let link = Link::new(lease, seed);
    let elector = Elector::new(link.clone(), id, LeaseConfig::default()).unwrap();
    let rx = elector.subscribe();
    let states = record_states(elector.subscribe());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(elector.run(async move {
        let _ = stopped.await;
    }));
    Replica {
        link,
        rx,
        states,
        stop: Some(stop),
        task: Some(task),
    }
}

fn record_states(mut rx: watch::Receiver<LeaderState>) -> StateLog {
    let log: StateLog = Arc::new(Mutex::new(vec![(
        Instant::now(),
        rx.borrow_and_update().clone(),
    )]));
    let l = log.clone();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let s = rx.borrow_and_update().clone();
            l.lock().unwrap().push((Instant::now(), s));
        }
    });
    log
}

impl Replica {
    fn state(&self) -> LeaderState {
        self.rx.borrow().clone()
    }

    fn is_leader(&self) -> bool {
        self.rx.borrow().is_leader()
    }

    /// The spans of time it led: (from, until; `None` while still leading).
    fn terms(&self) -> Vec<(Instant, Option<Instant>)> {
        let mut out: Vec<(Instant, Option<Instant>)> = Vec::new();
        for (at, s) in self.states.lock().unwrap().iter() {
            match out.last_mut() {
                Some((_, end @ None)) if !s.is_leader() => *end = Some(*at),
                Some((_, None)) => {}
                _ if s.is_leader() => out.push((*at, None)),
                _ => {}
            }
        }
        out
    }

    fn ever_led(&self) -> bool {
        !self.terms().is_empty()
    }

    /// Signal shutdown and wait for the elector to finish.
    async fn shutdown(&mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

/// Let every task that is due now run.
async fn settle() {
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_lone_elector_takes_an_absent_lease_at_once() {
    let lease = Arc::new(MemoryLease::new());
    let t0 = Instant::now();
    let a = replica(&lease, "a", 1);
    settle().await;
    assert_eq!(a.state(), LeaderState::Leader);
    assert_eq!(a.terms(), vec![(t0, None)]);
    assert_eq!(
        lease.record(),
        LeaseRecord {
            holder: Some("a".into()),
            version: 1
        }
    );
}

#[tokio::test(start_paused = true)]
async fn the_loser_of_a_race_for_the_lease_names_the_winner_at_once() {
    let lease = Arc::new(MemoryLease::new());
    let t0 = Instant::now();
    let a = replica(&lease, "a", 1);
    let b = replica(&lease, "b", 2);
    // Both read an absent record; each call takes 0.1 s, so both try to acquire version 0.
    for r in [&a, &b] {
        *r.link.slow_answers.lock().unwrap() = secs(0.1);
    }
    sleep_until(t0 + secs(0.5)).await;
    assert_eq!(a.link.calls("acquire").len(), 1);
    assert_eq!(b.link.calls("acquire").len(), 1);
    let (winner, loser, name) = if a.is_leader() {
        (&a, &b, "a")
    } else {
        (&b, &a, "b")
    };
    assert!(winner.is_leader());
    assert_eq!(winner.terms().len(), 1);
    assert_eq!(
        loser.state(),
        LeaderState::Follower {
            holder: Some(name.into())
        }
    );
    assert_eq!(loser.link.calls("read").len(), 2);
}

#[tokio::test(start_paused = true)]
async fn follower_takes_over_only_after_a_full_lease_duration_without_renewal() {
    let lease = Arc::new(MemoryLease::new());
    // Another replica holds the lease, and renews it once, at 9 s.
    assert!(lease.acquire("other", 0, LEASE).await.unwrap());
    let t0 = Instant::now();
    let me = replica(&lease, "me", 1);
    sleep(secs(9.0)).await;
    assert!(lease.renew("other", 1, LEASE).await.unwrap());
    // Its first read (at 0) would expire at 15, but the renew it sees at its poll at 10 restarts
    // the clock: not at 15, not a moment before 25.
    sleep_until(t0 + secs(24.9)).await;
    assert_eq!(
        me.state(),
        LeaderState::Follower {
            holder: Some("other".into())
        }
    );
    sleep_until(t0 + secs(25.1)).await;
    assert_eq!(me.terms(), vec![(t0 + secs(25.0), None)]);
    assert_eq!(
        lease.record(),
        LeaseRecord {
            holder: Some("me".into()),
            version: 3
        }
    );
    // It polled every retry period, and took over with one conditional write at the version it
    // had watched.
    let reads: Vec<Duration> = me.link.calls("read").iter().map(|c| c.sent - t0).collect();
    assert_eq!(reads.len(), 14, "{reads:?}");
    assert_eq!(me.link.calls("acquire").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn renewing_leader_keeps_the_lease_indefinitely() {
    let lease = Arc::new(MemoryLease::new());
    let mut a = replica(&lease, "a", 1);
    settle().await;
    sleep(secs(0.5)).await;
    let mut b = replica(&lease, "b", 2);
    let t0 = Instant::now();
    for _ in 0..3600 {
        sleep(secs(1.0)).await;
        assert!(a.is_leader());
        assert_eq!(
            b.state(),
            LeaderState::Follower {
                holder: Some("a".into())
            }
        );
    }
    assert_eq!(a.terms().len(), 1);
    assert!(!b.ever_led());
    // One renew per retry period, no more.
    let renews = a.link.calls("renew");
    let hour: Vec<_> = renews.iter().filter(|c| c.sent >= t0).collect();
    assert_eq!(hour.len(), 1800, "renews in an hour");
    assert!(hour.iter().all(|c| c.committed));
    // A follower that shuts down leaves the record alone; the leader releases it.
    let before = lease.record();
    b.shutdown().await;
    assert_eq!(lease.record(), before);
    assert!(b.link.calls("release").is_empty());
    a.shutdown().await;
    assert_eq!(lease.record().holder, None);
}

#[tokio::test(start_paused = true)]
async fn leader_that_cannot_renew_steps_down_before_its_lease_expires() {
    let lease = Arc::new(MemoryLease::new());
    let t0 = Instant::now();
    let a = replica(&lease, "a", 1);
    settle().await;
    sleep(secs(1.0)).await;
    let b = replica(&lease, "b", 2);
    sleep_until(t0 + secs(31.0)).await;
    a.link.set_mode(Mode::Down);
    sleep_until(t0 + secs(120.0)).await;

    let last_renew = a.link.last_answered_write().unwrap();
    assert_eq!(last_renew, t0 + secs(30.0));
    let a_terms = a.terms();
    assert_eq!(a_terms.len(), 1, "{a_terms:?}");
    let stepped_down = a_terms[0].1.expect("a stepped down");
    assert_eq!(stepped_down, last_renew + RENEW);
    // It kept trying every retry period until then.
    let tries = a
        .link
        .calls("renew")
        .iter()
        .filter(|c| c.sent > last_renew && c.sent < stepped_down)
        .count();
    assert_eq!(tries, 4);
    // b saw the last version at its poll at 31 and took over 15 s later: 6 s after a stopped.
    let b_terms = b.terms();
    assert_eq!(b_terms, vec![(t0 + secs(46.0), None)]);
    assert!(b_terms[0].0 >= stepped_down + (LEASE - RENEW));
    assert_eq!(a.state(), LeaderState::Follower { holder: None });
}

#[tokio::test(start_paused = true)]
async fn leader_counts_its_renew_deadline_from_when_a_renew_was_sent_not_answered() {
    let lease = Arc::new(MemoryLease::new());
    let t0 = Instant::now();
    let a = replica(&lease, "a", 1);
    settle().await;
    sleep_until(t0 + secs(1.0)).await;
    let b = replica(&lease, "b", 2);
    // The renew sent at 2 commits at once but its answer takes 7 s; every later call fails.
    *a.link.slow_answers.lock().unwrap() = secs(7.0);
    sleep_until(t0 + secs(2.5)).await;
    a.link.set_mode(Mode::Down);
    sleep_until(t0 + secs(60.0)).await;
    assert_eq!(a.link.last_answered_write(), Some(t0 + secs(2.0)));
    // Counted from the answer (at 9), a would lead until 19, past b's takeover at 18 (b read
    // the commit at 3).
    assert_eq!(a.terms(), vec![(t0, Some(t0 + secs(12.0)))]);
    assert_eq!(b.terms(), vec![(t0 + secs(18.0), None)]);
}

#[tokio::test(start_paused = true)]
async fn leader_steps_down_on_time_even_while_its_renew_call_hangs() {
    let lease = Arc::new(MemoryLease::new());
    let t0 = Instant::now();
    let a = replica(&lease, "a", 1);
    settle().await;
    sleep_until(t0 + secs(5.0)).await;
    a.link.set_mode(Mode::Hang);
    sleep_until(t0 + secs(60.0)).await;
    // The renew sent at 4 answered; the one sent at 6 never did.
    let renews = a.link.calls("renew");
    assert_eq!(renews.last().unwrap().sent, t0 + secs(4.0));
    assert_eq!(a.terms(), vec![(t0, Some(t0 + secs(14.0)))]);
    assert_eq!(a.state(), LeaderState::Follower { holder: None });
}

#[tokio::test(start_paused = true)]
async fn a_renew_whose_answer_was_lost_does_not_cost_the_leadership() {
    let lease = Arc::new(MemoryLease::new());
    let t0 = Instant::now();
    let a = replica(&lease, "a", 1);
    settle().await;
    // The renew at 6 reaches the record but its answer is lost; the one at 8 then finds the
    // record moved, reads it, sees its own name and carries on at the newer version.
    sleep_until(t0 + secs(5.0)).await;
    a.link.set_mode(Mode::LoseAnswers);
    sleep_until(t0 + secs(7.0)).await;
    a.link.set_mode(Mode::Up);
    sleep_until(t0 + secs(60.0)).await;
    assert_eq!(a.terms(), vec![(t0, None)]);
    let renews = a.link.calls("renew");
    assert!(renews.iter().any(|c| c.committed && !c.answered));
    assert!(renews.iter().any(|c| !c.committed && c.answered));
    assert_eq!(lease.record().holder.as_deref(), Some("a"));
    assert!(renews.last().unwrap().committed);
}

#[tokio::test(start_paused = true)]
async fn released_lease_is_taken_over_without_waiting() {
    let lease = Arc::new(MemoryLease::new());
    let t0 = Instant::now();
    let mut a = replica(&lease, "a", 1);
    settle().await;
    sleep_until(t0 + secs(1.0)).await;
    let b = replica(&lease, "b", 2);
    sleep_until(t0 + secs(20.5)).await;
    assert!(a.is_leader());
    a.shutdown().await;
    assert_eq!(a.state(), LeaderState::Stopped);
    assert_eq!(a.terms(), vec![(t0, Some(t0 + secs(20.5)))]);
    assert_eq!(lease.record().holder, None, "a released the lease");
    // b polls at odd seconds: it takes the released lease at its next poll, not 15 s later.
    sleep_until(t0 + secs(30.0)).await;
    let b_terms = b.terms();
    assert_eq!(b_terms, vec![(t0 + secs(21.0), None)]);
    assert!(b_terms[0].0 - (t0 + secs(20.5)) <= RETRY);
}

#[tokio::test(start_paused = true)]
async fn aborting_an_electors_task_ends_its_leadership_at_once_without_releasing() {
    let lease = Arc::new(MemoryLease::new());
    let t0 = Instant::now();
    let mut a = replica(&lease, "a", 1);
    settle().await;
    sleep_until(t0 + secs(1.0)).await;
    let b = replica(&lease, "b", 2);
    sleep_until(t0 + secs(10.5)).await;
    a.task.take().unwrap().abort();
    settle().await;
    assert_eq!(a.state(), LeaderState::Stopped);
    assert_eq!(lease.record().holder.as_deref(), Some("a"));
    // a's last renew (at 10) is seen by b at 11; b takes over 15 s later.
    sleep_until(t0 + secs(60.0)).await;
    assert_eq!(b.terms(), vec![(t0 + secs(26.0), None)]);
}

#[tokio::test(start_paused = true)]
async fn backend_errors_are_retried_every_retry_period() {
    let lease = Arc::new(MemoryLease::new());
    let t0 = Instant::now();
    let a = replica(&lease, "a", 1);
    a.link.set_mode(Mode::Down);
    sleep_until(t0 + secs(10.5)).await;
    assert_eq!(a.state(), LeaderState::Starting);
    let reads: Vec<Duration> = a.link.calls("read").iter().map(|c| c.sent - t0).collect();
    assert_eq!(
        reads,
        (0..=5).map(|i| secs(2.0 * i as f64)).collect::<Vec<_>>()
    );
    a.link.set_mode(Mode::Up);
    sleep_until(t0 + secs(13.0)).await;
    assert_eq!(a.terms(), vec![(t0 + secs(12.0), None)]);
}

#[tokio::test(start_paused = true)]
async fn two_electors_are_never_leader_at_the_same_moment() {
    // Half an hour of faults: every 5 s each link is, at random, up, down, hung or losing
    // answers, with up to 1.5 s of latency each way.
    let lease = Arc::new(MemoryLease::new());
    let a = replica(&lease, "a", 1);
    let b = replica(&lease, "b", 2);
    let mut rng = fastrand::Rng::with_seed(7);
    let t0 = Instant::now();
    let mut samples = 0u32;
    let mut led = 0u32;
    while Instant::now() < t0 + Duration::from_secs(1800) {
        for link in [&a.link, &b.link] {
            let mode = match rng.u32(0..10) {
                0..=5 => Mode::Up,
                6 | 7 => Mode::Down,
                8 => Mode::Hang,
                _ => Mode::LoseAnswers,
            };
            link.set_mode(mode);
            *link.max_latency.lock().unwrap() = secs([0.0, 0.5, 1.5][rng.usize(0..3)]);
        }
        for _ in 0..50 {
            sleep(secs(0.1)).await;
            samples += 1;
            assert!(
                !(a.is_leader() && b.is_leader()),
                "two leaders at {:?}",
                Instant::now() - t0
            );
            led += u32::from(a.is_leader() || b.is_leader());
        }
    }
    // Every published state, not only the samples: the terms never overlap.
    let end = Instant::now();
    for (a_from, a_until) in a.terms() {
        for (b_from, b_until) in b.terms() {
            let overlap = a_from < b_until.unwrap_or(end) && b_from < a_until.unwrap_or(end);
            assert!(
                !overlap,
                "a led {:?}..{:?}, b led {:?}..{:?}",
                a_from - t0,
                a_until.map(|t| t - t0),
                b_from - t0,
                b_until.map(|t| t - t0)
            );
        }
    }
    // And the test did exercise handovers, with a leader most of the time.
    let handovers = a.terms().len() + b.terms().len();
    assert!(handovers >= 10, "only {handovers} terms");
    assert!(
        f64::from(led) >= 0.5 * f64::from(samples),
        "a leader in only {led} of {samples} samples"
    );
}

#[test]
fn lease_config_demands_retry_period_under_renew_deadline_under_lease_duration() {
    assert_eq!(LeaseConfig::default().validate(), Ok(()));
    let bad = [
        (15, 15, 2),
        (15, 20, 2),
        (15, 10, 10),
        (15, 10, 12),
        (15, 10, 0),
    ];
    for (lease, renew, retry) in bad {
        let cfg = LeaseConfig {
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(retry),
        };
        assert!(
            matches!(cfg.validate(), Err(LeaderError::InvalidConfig(_))),
            "{cfg:?}"
        );
        assert!(Elector::new(Arc::new(MemoryLease::new()), "a", cfg).is_err());
    }
    assert_eq!(
        Elector::new(Arc::new(MemoryLease::new()), "", LeaseConfig::default()).err(),
        Some(LeaderError::EmptyIdentity)
    );
}
