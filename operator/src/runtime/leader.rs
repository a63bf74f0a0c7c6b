//! Leader election over one lease record (docs/design.md, runtime invariant 9: with a lease table, at most one
//! replica writes to AWS at a time).
//!
//! The semantics are client-go's `leaderelection`, on a record that a [`LeaseBackend`] changes
//! only by conditional writes. Invariants (each has a test on paused time in `leader_tests.rs`):
//! - the record names at most one holder and carries a version that every write increments (an
//!   absent record is version 0 with no holder), so "unchanged" means same holder and version;
//! - a follower takes a held lease over only after the record it observes has not changed for a
//!   full `lease_duration`, measured on its own monotonic clock from the moment a read returned
//!   that record. Timestamps written by others are never compared with local time. An unheld
//!   record (released, or never taken) is taken at once;
//! - the leader renews every `retry_period`, and stops being leader once its last successful
//!   renew was *sent* `renew_deadline` ago, even while a call is still pending. A renew commits
//!   after it was sent and a follower's clock starts after it read the commit, so the old leader
//!   steps down at least `lease_duration - renew_deadline` before anyone can take over (given
//!   clocks that run at about the same rate);
//! - on shutdown the replica first stops being leader, then releases the record (a conditional
//!   write that clears the holder), so a follower takes over at its next poll;
//! - backend errors are logged and retried every `retry_period`; they never extend leadership.
//!
//! Identities must be unique per process (see [`default_identity`]): a replica that finds its
//! own identity in the record takes it back at once.
//!
//! This module knows nothing of AWS: `store::lease` implements [`LeaseBackend`] on DynamoDB.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout_at, Instant};

/// What a backend call failed with (other than losing a race, which is `Ok(false)`).
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaderError {
    #[error("invalid lease configuration: {0}")]
    InvalidConfig(String),
    #[error("the elector's identity must not be empty")]
    EmptyIdentity,
}

/// The lease record as last written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The replica that holds the lease; `None` when the record is absent or was released.
    pub holder: Option<String>,
    /// Incremented by every successful write; 0 when the record does not exist.
    pub version: u64,
}

/// Conditional operations on one named lease record. A write that finds the record changed
/// returns `Ok(false)` ("lost the race") and changes nothing; `Err` is for everything else
/// (unreachable, throttled, misconfigured), after which the record may or may not have changed.
/// Every successful write sets the version to the expected one plus 1.
#[async_trait]
pub trait LeaseBackend: Send + Sync {
    /// The current record (strongly consistent).
    async fn read(&self) -> Result<LeaseRecord, BackendError>;

    /// Make `holder` the holder if the record is still at `expected` (0: absent).
    /// `lease_duration` is stored for people reading the record; nobody's clock relies on it.
    async fn acquire(
        &self,
        holder: &str,
        expected: u64,
        lease_duration: Duration,
    ) -> Result<bool, BackendError>;

    /// Bump the version if the record still names `holder` at `version`.
    async fn renew(
        &self,
        holder: &str,
        version: u64,
        lease_duration: Duration,
    ) -> Result<bool, BackendError>;

    /// Clear the holder (and bump the version) if the record still names `holder` at `version`.
    async fn release(&self, holder: &str, version: u64) -> Result<bool, BackendError>;
}

/// The lease record in memory, for tests and for electors that share one process.
#[derive(Debug, Default)]
pub struct MemoryLease {
    record: Mutex<LeaseRecord>,
}

impl MemoryLease {
    pub fn new() -> Self {
        MemoryLease::default()
    }

    /// The record now.
    pub fn record(&self) -> LeaseRecord {
        self.record.lock().expect("lease lock").clone()
    }

    fn write_if(&self, ok: impl Fn(&LeaseRecord) -> bool, holder: Option<&str>) -> bool {
        let mut r = self.record.lock().expect("lease lock");
        if !ok(&r) {
            return false;
        }
        r.holder = holder.map(str::to_string);
        r.version += 1;
        true
    }
}

#[async_trait]
impl LeaseBackend for MemoryLease {
    async fn read(&self) -> Result<LeaseRecord, BackendError> {
        Ok(self.record())
    }

    async fn acquire(
        &self,
        holder: &str,
        expected: u64,
        _: Duration,
    ) -> Result<bool, BackendError> {
        Ok(self.write_if(|r| r.version == expected, Some(holder)))
    }

    async fn renew(&self, holder: &str, version: u64, _: Duration) -> Result<bool, BackendError> {
        let held = |r: &LeaseRecord| r.version == version && r.holder.as_deref() == Some(holder);
        Ok(self.write_if(held, Some(holder)))
    }

    async fn release(&self, holder: &str, version: u64) -> Result<bool, BackendError> {
        let held = |r: &LeaseRecord| r.version == version && r.holder.as_deref() == Some(holder);
        Ok(self.write_if(held, None))
    }
}

/// Timings, as in client-go. Require `retry_period < renew_deadline < lease_duration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// How long a follower waits, after the record last changed in its eyes, before taking over.
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renew.
    pub renew_deadline: Duration,
    /// The pause between attempts (renews, polls, retries after errors).
    pub retry_period: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

impl LeaseConfig {
    pub fn validate(&self) -> Result<(), LeaderError> {
        let bad = |m: &str| Err(LeaderError::InvalidConfig(format!("{m} ({self:?})")));
        if self.retry_period.is_zero() {
            return bad("retry_period must be positive");
        }
        if self.renew_deadline >= self.lease_duration {
            return bad("renew_deadline must be shorter than lease_duration");
        }
        if self.retry_period >= self.renew_deadline {
            return bad("retry_period must be shorter than renew_deadline");
        }
        Ok(())
    }
}

/// Where an elector stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderState {
    /// Has not read the record yet.
    Starting,
    /// Another replica may hold the lease: `holder` as the last read named it (`None` when the
    /// record names nobody, or when this replica just stepped down and has not read it since).
    Follower { holder: Option<String> },
    /// Holds the lease: may write to AWS.
    Leader,
    /// The elector stopped (shut down, or its task was dropped); it will not lead again.
    Stopped,
}

impl LeaderState {
    pub fn is_leader(&self) -> bool {
        matches!(self, LeaderState::Leader)
    }
}

/// An identity unique to this process: `$HOSTNAME` (an ECS task's container id, a pod name),
/// the process id and a random suffix.
pub fn default_identity() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into());
    format!("{host}-{}-{:08x}", std::process::id(), fastrand::u32(..))
}

/// Publishes the state; becomes [`LeaderState::Stopped`] when dropped, so aborting the task
/// that runs an elector never leaves a stale `Leader` behind.
#[derive(Debug)]
struct StateTx(watch::Sender<LeaderState>);

impl StateTx {
    fn set(&self, s: LeaderState) {
        self.0.send_if_modified(|cur| {
            let changed = *cur != s;
            *cur = s;
            changed
        });
    }
}

impl Drop for StateTx {
    fn drop(&mut self) {
        self.set(LeaderState::Stopped);
    }
}

/// Campaigns for one lease. Create it, [`subscribe`](Elector::subscribe) to its state, then drive
/// [`run`](Elector::run) (e.g. in `tokio::spawn`).
pub struct Elector {
    backend: Arc<dyn LeaseBackend>,
    identity: String,
    config: LeaseConfig,
    state: StateTx,
}

impl Elector {
    pub fn new(
        backend: Arc<dyn LeaseBackend>,
        identity: impl Into<String>,
        config: LeaseConfig,
    ) -> Result<Elector, LeaderError> {
        config.validate()?;
        let identity = identity.into();
        if identity.is_empty() {
            return Err(LeaderError::EmptyIdentity);
        }
        Ok(Elector {
            backend,
            identity,
            config,
            state: StateTx(watch::channel(LeaderState::Starting).0),
        })
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn config(&self) -> LeaseConfig {
        self.config
    }

    /// The state, as it changes. Check `borrow().is_leader()` before each write to AWS, and stop
    /// writing as soon as it turns false: leadership can be lost at any time.
    pub fn subscribe(&self) -> watch::Receiver<LeaderState> {
        self.state.0.subscribe()
    }

    /// Campaign until `shutdown` resolves; then stop leading (the state becomes `Stopped`) and
    /// release the lease if this replica holds it. Resolve `shutdown` only after the work that
    /// needed leadership has finished or been abandoned: a follower may take over at once.
    pub async fn run<S: Future<Output = ()> + Send>(self, shutdown: S) {
        let mut c = Campaign {
            backend: self.backend,
            identity: self.identity,
            cfg: self.config,
            state: self.state,
            observed: None,
            lead: None,
            may_hold: false,
        };
        tokio::pin!(shutdown);
        loop {
            let wake = tokio::select! {
                biased;
                () = &mut shutdown => break,
                wake = c.step() => wake,
            };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                () = sleep_until(wake) => {}
            }
        }
        c.stop().await;
    }
}

/// While leading: the version this replica last wrote, and when that write was sent.
#[derive(Debug, Clone, Copy)]
struct Lead {
    version: u64,
    renewed_at: Instant,
}

struct Campaign {
    backend: Arc<dyn LeaseBackend>,
    identity: String,
    cfg: LeaseConfig,
    state: StateTx,
    /// While following: the record as last read, and when a read first returned it.
    observed: Option<(LeaseRecord, Instant)>,
    lead: Option<Lead>,
    /// The record may name this replica (it led, or an acquire's answer may have been lost).
    may_hold: bool,
}

impl Campaign {
    /// One attempt; returns when to make the next.
    async fn step(&mut self) -> Instant {
        match self.lead {
            Some(lead) => self.renew(lead).await,
            None => self.follow().await,
        }
    }

    fn names_me(&self, rec: &LeaseRecord) -> bool {
        rec.holder.as_deref() == Some(self.identity.as_str())
    }

    /// A backend call bounded by `until`; errors and time-outs are logged and give `None`.
    async fn call<T>(
        &self,
        op: &'static str,
        until: Instant,
        fut: impl Future<Output = Result<T, BackendError>>,
    ) -> Option<T> {
        match timeout_at(until, fut).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!(identity = %self.identity, op, error = %e, "lease call failed; will retry");
                None
            }
            Err(_) => {
                tracing::warn!(identity = %self.identity, op, "lease call timed out; will retry");
                None
            }
        }
    }

    async fn follow(&mut self) -> Instant {
        let retry = self.cfg.retry_period;
        let call_timeout = self.cfg.renew_deadline;
        let until = Instant::now() + call_timeout;
        let Some(rec) = self.call("read", until, self.backend.read()).await else {
            return Instant::now() + retry;
        };
        let now = Instant::now();
        let mine = self.names_me(&rec);
        self.may_hold = mine;
        let since = match &self.observed {
            Some((seen, since)) if *seen == rec => *since,
            _ => now,
        };
        self.observed = Some((rec.clone(), since));
        let expires = since + self.cfg.lease_duration;
        if rec.holder.is_some() && !mine {
            if now < expires {
                self.state.set(LeaderState::Follower {
                    holder: rec.holder.clone(),
                });
                return (now + retry).min(expires);
            }
            tracing::info!(identity = %self.identity, holder = ?rec.holder, version = rec.version,
                "the lease was not renewed for a full lease duration; taking over");
        }
        let sent = Instant::now();
        self.may_hold = true;
        let acquired = self
            .call(
                "acquire",
                sent + call_timeout,
                self.backend
                    .acquire(&self.identity, rec.version, self.cfg.lease_duration),
            )
            .await;
        if acquired == Some(true) {
            self.lead = Some(Lead {
                version: rec.version + 1,
                renewed_at: sent,
            });
            self.observed = None;
            self.state.set(LeaderState::Leader);
            tracing::info!(identity = %self.identity, version = rec.version + 1, "became leader");
            return sent + retry;
        }
        let mut holder = rec.holder;
        if acquired == Some(false) {
            // Another replica wrote first: read again, so the state names it and the clock starts.
            tracing::debug!(identity = %self.identity, "another replica wrote the lease first");
            self.observed = None;
            let until = Instant::now() + call_timeout;
            if let Some(rec) = self.call("read", until, self.backend.read()).await {
                self.may_hold = self.names_me(&rec);
                holder = rec.holder.clone();
                self.observed = Some((rec, Instant::now()));
            }
        }
        self.state.set(LeaderState::Follower { holder });
        Instant::now() + retry
    }

    async fn renew(&mut self, lead: Lead) -> Instant {
        let retry = self.cfg.retry_period;
        let deadline = lead.renewed_at + self.cfg.renew_deadline;
        if Instant::now() >= deadline {
            return self.step_down("no successful renew within the renew deadline", None);
        }
        let sent = Instant::now();
        let renewed = timeout_at(
            deadline,
            self.backend
                .renew(&self.identity, lead.version, self.cfg.lease_duration),
        )
        .await;
        match renewed {
            Ok(Ok(true)) => {
                self.lead = Some(Lead {
                    version: lead.version + 1,
                    renewed_at: sent,
                });
                sent + retry
            }
            // The record moved. An earlier renew may have committed although its answer was
            // lost: read it, and carry on at its version if it still names this replica (its
            // commit time is unknown, so the deadline does not move).
            Ok(Ok(false)) => match self.call("read", deadline, self.backend.read()).await {
                Some(rec) if self.names_me(&rec) => {
                    self.lead = Some(Lead {
                        version: rec.version,
                        ..lead
                    });
                    (Instant::now() + retry).min(deadline)
                }
                Some(rec) => self.step_down("another replica holds the lease", Some(rec)),
                None if Instant::now() >= deadline => self.step_down("renew deadline passed", None),
                None => (Instant::now() + retry).min(deadline),
            },
            Ok(Err(e)) => {
                tracing::warn!(identity = %self.identity, error = %e, "lease renew failed; will retry");
                (Instant::now() + retry).min(deadline)
            }
            Err(_) => self.step_down("renew deadline passed while renewing", None),
        }
    }

    /// Stop leading now. `rec`: the record just read, if any (its clock starts now).
    fn step_down(&mut self, why: &str, rec: Option<LeaseRecord>) -> Instant {
        let now = Instant::now();
        self.lead = None;
        let holder = rec.as_ref().and_then(|r| r.holder.clone());
        if let Some(rec) = rec {
            self.may_hold = self.names_me(&rec);
            self.observed = Some((rec, now));
        }
        self.state.set(LeaderState::Follower {
            holder: holder.clone(),
        });
        tracing::warn!(identity = %self.identity, reason = why, holder = ?holder, "stopped leading");
        now + self.cfg.retry_period
    }

    /// Stop leading, then release the record if it may name this replica (bounded by the renew
    /// deadline; a release that fails leaves the lease to expire).
    async fn stop(mut self) {
        let leading = self.lead.is_some();
        self.state.set(LeaderState::Stopped);
        if !self.may_hold {
            return;
        }
        let until = Instant::now() + self.cfg.renew_deadline;
        let mut version = self.lead.take().map(|l| l.version);
        for _ in 0..2 {
            let v = match version {
                Some(v) => v,
                None => match self.call("read", until, self.backend.read()).await {
                    Some(rec) if self.names_me(&rec) => rec.version,
                    _ => return,
                },
            };
            let released = self.call("release", until, self.backend.release(&self.identity, v));
            match released.await {
                Some(true) => {
                    tracing::info!(identity = %self.identity, was_leader = leading, "released the lease");
                    return;
                }
                Some(false) => version = None,
                None => return,
            }
        }
    }
}
