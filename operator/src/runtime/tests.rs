//! The runtime invariants (docs/design.md "Runtime invariants"), each proven on paused tokio time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::{sleep, Instant};

use super::failure::Failure;
use super::runner::{runner, Action, Handle, Reason, Run, RunnerConfig, RunnerMetrics, WaveId};
use super::BackoffPolicy;

/// Records every reconcile: when each key started, and how many ran at once.
#[derive(Default)]
struct Probe {
    starts: Mutex<Vec<(u32, Instant, Run)>>,
    per_key: Mutex<HashMap<u32, usize>>,
    max_per_key: AtomicUsize,
    now: AtomicUsize,
    max_now: AtomicUsize,
}

impl Probe {
    fn enter(&self, k: u32, run: Run) {
        self.starts.lock().unwrap().push((k, Instant::now(), run));
        let mut m = self.per_key.lock().unwrap();
        let c = m.entry(k).or_default();
        *c += 1;
        self.max_per_key.fetch_max(*c, Ordering::SeqCst);
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_now.fetch_max(n, Ordering::SeqCst);
    }
    fn exit(&self, k: u32) {
        *self.per_key.lock().unwrap().get_mut(&k).unwrap() -= 1;
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn runs(&self, k: u32) -> Vec<Instant> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(key, _, _)| *key == k)
            .map(|(_, t, _)| *t)
            .collect()
    }
    /// The wave of each run of `k`, in order.
    fn waves(&self, k: u32) -> Vec<Option<WaveId>> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(key, _, _)| *key == k)
            .map(|(_, _, r)| r.wave)
            .collect()
    }
    /// Whether each run of `k`, in order, was a follow-up.
    fn follow_ups(&self, k: u32) -> Vec<bool> {
        self.starts
            .lock()
            .unwrap()
            .iter()
            .filter(|(key, _, _)| *key == k)
            .map(|(_, _, r)| r.follow_up)
            .collect()
    }
    fn total(&self) -> usize {
        self.starts.lock().unwrap().len()
    }
}

type Behaviour = Arc<dyn Fn(u32, usize) -> (Duration, Result<Action, Failure>) + Send + Sync>;

/// Start a runner whose reconcile of key `k`, on its `n`th run (0-based), takes and returns
/// what `behaviour(k, n)` says. The gate is opened at once unless `gated`.
fn start(
    cfg: RunnerConfig,
    gated: bool,
    behaviour: Behaviour,
) -> (
    Handle<u32>,
    Arc<Probe>,
    Arc<RunnerMetrics>,
    tokio::task::JoinHandle<()>,
) {
    let probe = Arc::new(Probe::default());
    let metrics = Arc::new(RunnerMetrics::default());
    let p = probe.clone();
    let (handle, fut) = runner(cfg, metrics.clone(), move |k: u32, run: Run| {
        let p = p.clone();
        let b = behaviour.clone();
        async move {
            let n = p.runs(k).len();
            p.enter(k, run);
            let (took, result) = b(k, n);
            sleep(took).await;
            p.exit(k);
            result
        }
    });
    let task = tokio::spawn(fut);
    if !gated {
        handle.ready();
    }
    (handle, probe, metrics, task)
}

fn cfg() -> RunnerConfig {
    RunnerConfig {
        concurrency: 16,
        resync_interval: Duration::from_secs(3600),
        resync_jitter: 0.1,
        backoff: BackoffPolicy {
            min: Duration::from_secs(1),
            max: Duration::from_secs(300),
            jitter: false,
        },
        shutdown_grace: Duration::from_secs(30),
    }
}

/// [`cfg`] with `n` slots.
fn slots(n: usize) -> RunnerConfig {
    RunnerConfig {
        concurrency: n,
        ..cfg()
    }
}

/// One slot, and a wave every `secs` seconds exactly.
fn one_slot_waves_every(secs: u64) -> RunnerConfig {
    RunnerConfig {
        resync_interval: Duration::from_secs(secs),
        resync_jitter: 0.0,
        ..slots(1)
    }
}

fn ok_after(d: Duration) -> Behaviour {
    Arc::new(move |_, _| (d, Ok(Action::AwaitChange)))
}

#[tokio::test(start_paused = true)]
async fn runner_never_runs_two_reconciles_of_one_key_at_once() {
    let (h, probe, _, _) = start(cfg(), false, ok_after(Duration::from_secs(10)));
    for _ in 0..20 {
        h.trigger(1, Reason::Change);
        h.trigger(2, Reason::Change);
        sleep(Duration::from_secs(3)).await;
    }
    sleep(Duration::from_secs(30)).await;
    assert_eq!(probe.max_per_key.load(Ordering::SeqCst), 1);
    assert!(
        probe.runs(1).len() >= 5,
        "key 1 ran {} times",
        probe.runs(1).len()
    );
}

#[tokio::test(start_paused = true)]
async fn ten_triggers_during_one_running_reconcile_give_exactly_two_runs() {
    let (h, probe, _, _) = start(cfg(), false, ok_after(Duration::from_secs(10)));
    h.trigger(7, Reason::Change);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(probe.runs(7).len(), 1);
    for _ in 0..10 {
        h.trigger(7, Reason::Change);
        sleep(Duration::from_millis(500)).await;
    }
    sleep(Duration::from_secs(60)).await;
    let runs = probe.runs(7);
    assert_eq!(runs.len(), 2, "{runs:?}");
    // The follow-up starts as soon as the first run ends.
    assert_eq!(runs[1] - runs[0], Duration::from_secs(10));
}

#[tokio::test(start_paused = true)]
async fn a_key_scheduled_for_two_deadlines_runs_once_at_the_earliest() {
    let (h, probe, _, _) = start(cfg(), false, ok_after(Duration::from_millis(1)));
    let t0 = Instant::now();
    h.trigger_at(3, Reason::Change, t0 + Duration::from_secs(10));
    h.trigger_at(3, Reason::Change, t0 + Duration::from_secs(5));
    h.trigger_at(3, Reason::Resync, t0 + Duration::from_secs(20));
    sleep(Duration::from_secs(60)).await;
    assert_eq!(probe.runs(3), vec![t0 + Duration::from_secs(5)]);
}

#[tokio::test(start_paused = true)]
async fn running_reconciles_never_exceed_the_concurrency() {
    let (h, probe, metrics, _) = start(slots(4), false, ok_after(Duration::from_secs(1)));
    for k in 0..100 {
        h.trigger(k, Reason::Change);
    }
    sleep(Duration::from_secs(60)).await;
    assert_eq!(probe.total(), 100);
    assert_eq!(probe.max_now.load(Ordering::SeqCst), 4);
    assert_eq!(metrics.reconciles_succeeded.load(Ordering::SeqCst), 100);
    assert_eq!(metrics.running.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn five_thousand_keys_that_all_requeue_immediately_do_not_deadlock() {
    // Every key asks to run again at once, three times, then converges.
    let behaviour: Behaviour = Arc::new(|_, n| {
        let action = if n < 3 {
            Action::RequeueAfter(Duration::ZERO)
        } else {
            Action::AwaitChange
        };
        (Duration::ZERO, Ok(action))
    });
    let (h, probe, metrics, _) = start(cfg(), false, behaviour);
    for k in 0..5000 {
        h.trigger(k, Reason::Change);
    }
    tokio::time::timeout(Duration::from_secs(600), async {
        while metrics.finished() < 20_000 {
            sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the runner stalled");
    assert_eq!(probe.total(), 20_000);
    assert_eq!(probe.max_per_key.load(Ordering::SeqCst), 1);
    assert!(probe.max_now.load(Ordering::SeqCst) <= 16);
}

#[tokio::test(start_paused = true)]
async fn a_failing_keys_delays_grow_and_reset_on_success() {
    // Fails 5 times, succeeds once (asking to requeue in 1 s), then fails again.
    let behaviour: Behaviour = Arc::new(|_, n| match n {
        0..=4 => (Duration::ZERO, Err(Failure::Retryable("throttled".into()))),
        5 => (
            Duration::ZERO,
            Ok(Action::RequeueAfter(Duration::from_secs(1))),
        ),
        _ => (Duration::ZERO, Err(Failure::Retryable("again".into()))),
    });
    let (h, probe, metrics, _) = start(cfg(), false, behaviour);
    h.trigger(9, Reason::Change);
    sleep(Duration::from_secs(100)).await;
    let runs = probe.runs(9);
    let gaps: Vec<u64> = runs.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    // 1, 2, 4, 8, 16 after the failures; 1 after the success (its requeue); then back to 1, 2, 4...
    assert_eq!(&gaps[..8], &[1, 2, 4, 8, 16, 1, 1, 2], "{gaps:?}");
    assert!(metrics.backoffs.load(Ordering::SeqCst) >= 7);
}

#[tokio::test(start_paused = true)]
async fn triggers_do_not_bypass_a_keys_backoff() {
    let behaviour: Behaviour = Arc::new(|_, n| match n {
        0..=3 => (Duration::ZERO, Err(Failure::Retryable("down".into()))),
        _ => (Duration::ZERO, Ok(Action::AwaitChange)),
    });
    let (h, probe, _, _) = start(cfg(), false, behaviour);
    let t0 = Instant::now();
    h.trigger(4, Reason::Change);
    // Failures at 0, 1, 3, 7: the next retry is due at 15.
    sleep(Duration::from_secs(8)).await;
    assert_eq!(probe.runs(4).len(), 4);
    for _ in 0..5 {
        h.trigger(4, Reason::Change);
        h.trigger(4, Reason::Resync);
        sleep(Duration::from_secs(1)).await;
    }
    sleep(Duration::from_secs(20)).await;
    let runs = probe.runs(4);
    assert_eq!(runs.len(), 5, "{runs:?}");
    assert_eq!(runs[4] - t0, Duration::from_secs(15));
}

#[tokio::test(start_paused = true)]
async fn terminal_errors_wait_for_a_change_and_resyncs_do_not_retry_them() {
    let behaviour: Behaviour = Arc::new(|_, n| match n {
        0 => (
            Duration::ZERO,
            Err(Failure::Terminal("invalid spec".into())),
        ),
        _ => (Duration::ZERO, Ok(Action::AwaitChange)),
    });
    let (h, probe, metrics, _) = start(
        RunnerConfig {
            resync_interval: Duration::from_secs(60),
            ..cfg()
        },
        false,
        behaviour,
    );
    h.trigger(5, Reason::Change);
    sleep(Duration::from_secs(600)).await;
    h.trigger(5, Reason::Resync);
    sleep(Duration::from_secs(600)).await;
    assert_eq!(probe.runs(5).len(), 1);
    assert_eq!(metrics.reconciles_terminal.load(Ordering::SeqCst), 1);
    h.trigger(5, Reason::Change);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(probe.runs(5).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn every_key_is_resynced_within_the_interval_in_one_wave_and_waves_are_jittered() {
    let interval = Duration::from_secs(300);
    let (h, probe, metrics, _) = start(
        RunnerConfig {
            resync_interval: interval,
            ..cfg()
        },
        false,
        ok_after(Duration::ZERO),
    );
    let t0 = Instant::now();
    for k in 0..100 {
        h.trigger(k, Reason::Change);
    }
    sleep(interval * 6).await;
    let first = probe.runs(0);
    assert!(first.len() >= 6, "{first:?}");
    for k in 0..100 {
        let runs = probe.runs(k);
        // Every key runs in every wave, at the same instant as every other key.
        assert_eq!(runs, first, "key {k}");
        assert_eq!(
            probe.waves(k)[..3],
            [None, Some(2), Some(3)],
            "key {k}: the first run was a change"
        );
    }
    assert_eq!(first[0], t0);
    let gaps: Vec<Duration> = first.windows(2).map(|w| w[1] - w[0]).collect();
    for gap in &gaps {
        assert!(
            *gap >= interval.mul_f64(0.9) && *gap <= interval.mul_f64(1.1),
            "a wave after {gap:?}"
        );
    }
    assert!(
        gaps.iter().any(|g| *g != gaps[0]),
        "waves are not jittered: {gaps:?}"
    );
    assert_eq!(metrics.waves.load(Ordering::SeqCst), first.len() as u64 - 1);
}

#[tokio::test(start_paused = true)]
async fn only_runs_started_by_a_wave_are_told_their_wave() {
    // Waves at 100 s, 200 s, 300 s... Key 1 converges; key 2 follows a rollout (requeue every
    // 25 s, five times); key 3 fails once; key 4 takes 30 s, so a wave can start while it runs.
    let behaviour: Behaviour = Arc::new(|k, n| match (k, n) {
        (2, 0..=4) => (
            Duration::ZERO,
            Ok(Action::RequeueAfter(Duration::from_secs(25))),
        ),
        (3, 0) => (Duration::ZERO, Err(Failure::Retryable("throttled".into()))),
        (4, _) => (Duration::from_secs(30), Ok(Action::AwaitChange)),
        _ => (Duration::ZERO, Ok(Action::AwaitChange)),
    });
    let (h, probe, _, _) = start(
        RunnerConfig {
            resync_interval: Duration::from_secs(100),
            resync_jitter: 0.0,
            ..cfg()
        },
        true,
        behaviour,
    );
    // Start-up: every key joins the first wave.
    for k in 1..=3 {
        h.trigger(k, Reason::Resync);
    }
    h.ready();
    sleep(Duration::from_secs(80)).await;
    // Key 4 starts at 80 s by a change and is still running when wave 2 starts.
    h.trigger(4, Reason::Change);
    sleep(Duration::from_secs(70)).await;
    assert_eq!(probe.waves(1), [Some(1), Some(2)]);
    // Requeues are fresh, including the one due when wave 2 started (fresh wins).
    assert_eq!(probe.waves(2), [Some(1), None, None, None, None, None]);
    // The retry after the failure is fresh.
    assert_eq!(probe.waves(3), [Some(1), None, Some(2)]);
    // Running when wave 2 started: not run again by it.
    assert_eq!(probe.waves(4), [None]);
    sleep(Duration::from_secs(200)).await;
    assert_eq!(probe.waves(2)[6..], [Some(3), Some(4)]);
    assert_eq!(probe.waves(4), [None, Some(3), Some(4)]);
}

#[tokio::test(start_paused = true)]
async fn only_a_run_scheduled_by_its_own_requeue_is_a_follow_up() {
    // Every run of every key asks to be requeued after 10 s (key 3 fails on its second run);
    // waves every 100 s.
    let behaviour: Behaviour = Arc::new(|k, n| match (k, n) {
        (3, 1) => (Duration::ZERO, Err(Failure::Retryable("throttled".into()))),
        _ => (
            Duration::ZERO,
            Ok(Action::RequeueAfter(Duration::from_secs(10))),
        ),
    });
    let (h, probe, _, _) = start(
        RunnerConfig {
            resync_interval: Duration::from_secs(100),
            resync_jitter: 0.0,
            ..cfg()
        },
        false,
        behaviour,
    );
    for k in 1..=3 {
        h.trigger(k, Reason::Change);
    }
    sleep(Duration::from_secs(25)).await;
    // Runs at 0, 10, 20 s: the first was triggered, the next two follow it up.
    assert_eq!(probe.follow_ups(1), [false, true, true]);
    // A change and an event, each between two requeues, make the next run a full one.
    h.trigger(1, Reason::Change);
    h.trigger(2, Reason::Event);
    sleep(Duration::from_secs(1)).await;
    assert_eq!(probe.follow_ups(1), [false, true, true, false]);
    assert_eq!(probe.follow_ups(2), [false, true, true, false]);
    // After a failure the retry is no follow-up; the requeue after it is again.
    assert_eq!(probe.follow_ups(3)[..3], [false, true, false]);
    sleep(Duration::from_secs(20)).await;
    assert!(probe.follow_ups(3)[3]);
    // A drift check asked for while a requeue is pending makes that run a full one.
    let before = probe.follow_ups(2).len();
    h.trigger(2, Reason::Resync);
    sleep(Duration::from_secs(10)).await;
    assert!(!probe.follow_ups(2)[before]);
    // A wave starting (at 100 s) makes every pending requeue's run a full one.
    sleep_until_after(&probe, 1, Duration::from_secs(100)).await;
    let runs = probe.runs(1);
    let first_after_wave = runs
        .iter()
        .position(|t| t.duration_since(runs[0]) >= Duration::from_secs(100))
        .expect("a run after the wave");
    assert!(!probe.follow_ups(1)[first_after_wave]);
    assert!(probe.follow_ups(1)[first_after_wave + 1]);
}

#[tokio::test(start_paused = true)]
async fn a_requeued_key_runs_as_a_follow_up_ahead_of_a_wave_still_waiting_for_slots() {
    // One slot; twenty keys in the start-up wave, each taking 10 s; key 100 (a change) asks
    // to be looked at again 15 s after its first run ends.
    let behaviour: Behaviour = Arc::new(|k, n| match (k, n) {
        (100, 0) => (
            Duration::from_secs(10),
            Ok(Action::RequeueAfter(Duration::from_secs(15))),
        ),
        _ => (Duration::from_secs(10), Ok(Action::AwaitChange)),
    });
    let (h, probe, _, _) = start(slots(1), true, behaviour);
    let t0 = Instant::now();
    h.trigger(100, Reason::Change);
    for k in 1..=20 {
        h.trigger(k, Reason::Resync);
    }
    h.ready();
    sleep(Duration::from_secs(300)).await;
    let runs = probe.runs(100);
    assert_eq!(runs.len(), 2, "{runs:?}");
    // Due at 25 s, it takes the slot that frees at 30 s, not the one after the wave (210 s).
    assert_eq!(runs[0], t0);
    assert_eq!(runs[1], t0 + Duration::from_secs(30));
    assert_eq!(probe.follow_ups(100), [false, true]);
    // The wave drains all the same, each key once, in its wave.
    for k in 1..=20 {
        assert_eq!(probe.waves(k), [Some(1)], "key {k}");
    }
    assert_eq!(probe.total(), 22);
}

#[tokio::test(start_paused = true)]
async fn a_timed_wave_waits_for_the_previous_wave_to_drain_and_then_starts_at_once() {
    // One slot; thirty keys in the start-up wave, 10 s each: it drains at 300 s, while the
    // next wave is due at 100 s.
    let (h, probe, metrics, _) = start(
        one_slot_waves_every(100),
        true,
        ok_after(Duration::from_secs(10)),
    );
    let t0 = Instant::now();
    for k in 1..=30 {
        h.trigger(k, Reason::Resync);
    }
    h.ready();
    sleep(Duration::from_secs(285)).await;
    // 29 keys have run, once each, in the start-up wave; the keys done early were not queued
    // again behind the one still waiting.
    assert_eq!(metrics.waves.load(Ordering::SeqCst), 0);
    assert_eq!(probe.total(), 29);
    sleep(Duration::from_secs(20)).await;
    for k in 1..=30 {
        assert_eq!(probe.waves(k)[0], Some(1), "key {k}");
    }
    // The last start-up key was taken at 290 s: the overdue wave started then and its first
    // key took the slot as it freed at 300 s.
    assert_eq!(metrics.waves.load(Ordering::SeqCst), 1);
    let second: Vec<Instant> = (1..=30)
        .filter_map(|k| probe.runs(k).get(1).copied())
        .collect();
    assert_eq!(second, [t0 + Duration::from_secs(300)]);
    assert_eq!(probe.total(), 31);
}

#[tokio::test(start_paused = true)]
async fn wave_runs_leave_a_quarter_of_the_slots_to_foreground_work() {
    // Four slots; twenty wave keys that each take 100 s (a long shared read); a change
    // arrives at 5 s.
    let (h, probe, _, _) = start(slots(4), true, ok_after(Duration::from_secs(100)));
    let t0 = Instant::now();
    for k in 1..=20 {
        h.trigger(k, Reason::Resync);
    }
    h.ready();
    sleep(Duration::from_secs(1)).await;
    // Three wave runs at once, never four.
    assert_eq!(probe.total(), 3);
    sleep(Duration::from_secs(4)).await;
    h.trigger(100, Reason::Change);
    sleep(Duration::from_secs(1)).await;
    // The change starts at once in the slot kept back.
    assert_eq!(probe.runs(100), [t0 + Duration::from_secs(5)]);
    sleep(Duration::from_secs(700)).await;
    assert!(probe.max_now.load(Ordering::SeqCst) <= 4);
    // The wave drains all the same, three at a time: 20 keys in 7 rounds of 100 s.
    for k in 1..=20 {
        assert_eq!(probe.waves(k), [Some(1)], "key {k}");
    }
    let last = (1..=20).map(|k| probe.runs(k)[0]).max().unwrap();
    assert_eq!(last, t0 + Duration::from_secs(600));
}

#[test]
fn waves_may_hold_three_quarters_of_the_slots_and_always_at_least_one() {
    assert_eq!(super::runner::wave_slots(16), 12);
    assert_eq!(super::runner::wave_slots(4), 3);
    assert_eq!(super::runner::wave_slots(2), 2);
    assert_eq!(super::runner::wave_slots(1), 1);
    assert_eq!(super::runner::wave_slots(0), 1);
}

/// Sleep until `k` has run at least twice after `after` from its first run.
async fn sleep_until_after(probe: &Probe, k: u32, after: Duration) {
    loop {
        let runs = probe.runs(k);
        if runs
            .iter()
            .filter(|t| t.duration_since(runs[0]) >= after)
            .count()
            >= 2
        {
            return;
        }
        sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_change_while_a_wave_run_waits_for_a_slot_makes_it_fresh() {
    let (h, probe, _, _) = start(
        one_slot_waves_every(100),
        true,
        ok_after(Duration::from_secs(10)),
    );
    for k in 1..=3 {
        h.trigger(k, Reason::Resync);
    }
    h.ready();
    sleep(Duration::from_secs(1)).await;
    h.trigger(3, Reason::Change);
    sleep(Duration::from_secs(60)).await;
    assert_eq!(probe.waves(1), [Some(1)]);
    assert_eq!(probe.waves(2), [Some(1)]);
    assert_eq!(probe.waves(3), [None]);
}

#[tokio::test(start_paused = true)]
async fn nothing_runs_before_the_readiness_gate_opens() {
    let (h, probe, metrics, _) = start(cfg(), true, ok_after(Duration::ZERO));
    for k in 0..10 {
        h.trigger(k, Reason::Change);
    }
    sleep(Duration::from_secs(60)).await;
    assert_eq!(probe.total(), 0);
    assert_eq!(metrics.queue_depth.load(Ordering::SeqCst), 10);
    h.ready();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(probe.total(), 10);
}

#[tokio::test(start_paused = true)]
async fn shutdown_lets_running_reconciles_finish_and_starts_no_new_ones() {
    let (h, probe, metrics, task) = start(slots(2), false, ok_after(Duration::from_secs(10)));
    for k in 0..6 {
        h.trigger(k, Reason::Change);
    }
    sleep(Duration::from_secs(1)).await;
    h.shutdown();
    task.await.unwrap();
    assert_eq!(probe.total(), 2);
    assert_eq!(
        probe.now.load(Ordering::SeqCst),
        0,
        "a reconcile was cut off"
    );
    assert_eq!(metrics.reconciles_succeeded.load(Ordering::SeqCst), 2);
    assert_eq!(metrics.reconciles_aborted.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn reconciles_that_outlast_the_grace_period_or_a_second_shutdown_are_aborted() {
    let (h, _, metrics, task) = start(
        RunnerConfig {
            shutdown_grace: Duration::from_secs(5),
            ..cfg()
        },
        false,
        ok_after(Duration::from_secs(3600)),
    );
    h.trigger(1, Reason::Change);
    sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    h.shutdown();
    task.await.unwrap();
    assert_eq!(Instant::now() - t, Duration::from_secs(5));
    assert_eq!(metrics.reconciles_aborted.load(Ordering::SeqCst), 1);

    let (h, _, metrics, task) = start(cfg(), false, ok_after(Duration::from_secs(3600)));
    h.trigger(1, Reason::Change);
    sleep(Duration::from_secs(1)).await;
    let t = Instant::now();
    h.shutdown();
    h.shutdown();
    task.await.unwrap();
    assert_eq!(Instant::now(), t);
    assert_eq!(metrics.reconciles_aborted.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_reconcile_backs_off_like_a_failure() {
    let behaviour: Behaviour = Arc::new(|_, n| {
        if n == 0 {
            panic!("bug");
        }
        (Duration::ZERO, Ok(Action::AwaitChange))
    });
    let (h, probe, metrics, _) = start(cfg(), false, behaviour);
    h.trigger(1, Reason::Change);
    sleep(Duration::from_secs(5)).await;
    // The panic happens inside the probe (after enter), so the first run is recorded.
    assert_eq!(metrics.reconciles_panicked.load(Ordering::SeqCst), 1);
    assert_eq!(probe.runs(1).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_forgotten_key_is_not_run_again() {
    let (h, probe, _, _) = start(
        RunnerConfig {
            resync_interval: Duration::from_secs(10),
            ..cfg()
        },
        false,
        ok_after(Duration::from_secs(2)),
    );
    h.trigger(1, Reason::Change);
    sleep(Duration::from_secs(1)).await;
    h.forget(1);
    sleep(Duration::from_secs(60)).await;
    assert_eq!(probe.runs(1).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn event_triggers_run_fresh_coalesce_respect_backoff_and_leave_terminal_errors_alone() {
    // Key 1 fails once (backoff 1 s), then succeeds; key 2 is terminal (an invalid spec).
    let behaviour: Behaviour = Arc::new(|k, n| match (k, n) {
        (1, 0) => (Duration::ZERO, Err(Failure::Retryable("throttled".into()))),
        (2, 0) => (
            Duration::ZERO,
            Err(Failure::Terminal("invalid spec".into())),
        ),
        _ => (Duration::from_millis(10), Ok(Action::AwaitChange)),
    });
    let (h, probe, _, _) = start(cfg(), false, behaviour);
    h.trigger(1, Reason::Change);
    h.trigger(2, Reason::Change);
    sleep(Duration::from_millis(1)).await;
    let failed_at = probe.runs(1)[0];
    // Many events inside the backoff: one run, at the end of the backoff, outside any wave.
    for _ in 0..100 {
        h.trigger(1, Reason::Event);
        h.trigger(2, Reason::Event);
    }
    sleep(Duration::from_secs(10)).await;
    let runs = probe.runs(1);
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs[1] >= failed_at + Duration::from_secs(1));
    assert_eq!(probe.waves(1)[1], None);
    assert_eq!(
        probe.runs(2).len(),
        1,
        "an event does not retry a terminal error"
    );
    // Events while a run is under way give exactly one follow-up.
    h.trigger(1, Reason::Event);
    sleep(Duration::from_millis(1)).await;
    for _ in 0..10 {
        h.trigger(1, Reason::Event);
    }
    sleep(Duration::from_secs(10)).await;
    assert_eq!(probe.runs(1).len(), 4);
}
