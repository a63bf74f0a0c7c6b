//! Watching a store for spec changes.
//!
//! One loop for every backend: poll on an interval (a file store also wakes on filesystem
//! notifications; a store with a change feed, DynamoDB, reads its stream and re-reads only the
//! items it names, with a full listing every `full_scan_interval`). [`Nudges`] (an S3 store's
//! object events, from the events queue) wake the loop to re-read only the keys they name; the
//! next poll stays due when it was, so listings remain the backstop for a lost event.
//!
//! Invariants:
//! - the first event is always a complete listing (the readiness gate waits for it);
//! - an event is produced only when spec sources changed (added, modified, removed), so status
//!   writes, which live elsewhere, never produce one;
//! - a failed read produces [`WatchEvent::Failed`] and leaves the last good listing in place:
//!   a store outage never looks like deleted specs.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

use super::{Listing, Source, Store, StoreError};

/// A source of change notices that is cheaper than a full listing (a DynamoDB stream).
#[async_trait]
pub trait ChangeFeed: Send {
    /// Source keys changed since the last poll, and whether continuity was lost.
    async fn poll(&mut self) -> Result<super::dynamodb::FeedPoll, StoreError>;
}

#[async_trait]
impl ChangeFeed for super::dynamodb::StreamFeed {
    async fn poll(&mut self) -> Result<super::dynamodb::FeedPoll, StoreError> {
        super::dynamodb::StreamFeed::poll(self).await
    }
}

/// Store keys to re-read at once, named by someone who saw them change (the events listener,
/// from an S3 object event). Coalescing: a key named many times before the watcher wakes is
/// read once. Bounded: past [`Nudges::MAX_KEYS`] waiting keys the watcher lists everything
/// instead. Shared (`Arc`) between the one who names keys and the watcher.
#[derive(Debug, Default)]
pub struct Nudges {
    keys: Mutex<BTreeSet<String>>,
    overflow: AtomicBool,
    notify: Notify,
}

impl Nudges {
    /// Waiting keys beyond which a full listing is cheaper than reading each.
    pub const MAX_KEYS: usize = 1000;

    /// `key` (a store key, as in [`super::Source::key`]) changed: wake the watcher.
    pub fn key(&self, key: String) {
        {
            let mut keys = self.keys.lock().expect("nudges lock");
            if keys.len() >= Self::MAX_KEYS && !keys.contains(&key) {
                self.overflow.store(true, Ordering::Relaxed);
            } else {
                keys.insert(key);
            }
        }
        self.notify.notify_one();
    }

    /// The waiting keys, and whether some were dropped (then only a listing is complete).
    fn take(&self) -> (BTreeSet<String>, bool) {
        let keys = std::mem::take(&mut *self.keys.lock().expect("nudges lock"));
        (keys, self.overflow.swap(false, Ordering::Relaxed))
    }
}

/// What a watcher reports.
#[derive(Debug)]
pub enum WatchEvent {
    /// The store's specs changed; `listing` is the complete new content. `initial` marks the first
    /// complete listing.
    Changed {
        listing: Listing,
        changed: BTreeSet<String>,
        removed: BTreeSet<String>,
        initial: bool,
    },
    /// Reading the store failed; the previous listing still stands.
    Failed(StoreError),
}

#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    pub poll_interval: Duration,
    /// For stores with a change feed: how often to list everything anyway.
    pub full_scan_interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            poll_interval: Duration::from_secs(10),
            full_scan_interval: Duration::from_secs(300),
        }
    }
}

pub struct Watcher {
    store: Arc<dyn Store>,
    opts: WatchOptions,
    current: Option<Listing>,
    feed: Option<Box<dyn ChangeFeed>>,
    last_full: Instant,
    wake: Option<mpsc::Receiver<()>>,
    _notifier: Option<notify::RecommendedWatcher>,
    polls: u64,
    /// Keys the feed reported that are not fetched yet (kept across a cancelled step).
    pending: BTreeSet<String>,
    /// The feed lost continuity and a full listing is owed (kept across a cancelled step).
    resync_owed: bool,
    nudges: Option<Arc<Nudges>>,
    /// When the next poll is due; nudges do not move it.
    next_poll: Instant,
}

/// How soon a full detection step follows a nudged key that could not be read.
const RETRY_FAILED_READ: Duration = Duration::from_secs(5);

/// Why the watcher woke.
enum Wake {
    /// The poll interval passed, or the filesystem changed: detect changes the usual way.
    Poll,
    /// Keys were named ([`Nudges`]), or are left from a cancelled step: re-read those.
    Keys,
}

/// Filesystem notifications for `dir`, as a wake-up channel. `None` when the platform cannot
/// watch (polling still works).
fn notifier(dir: PathBuf) -> Option<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
    use notify::Watcher as _;
    let (tx, rx) = mpsc::channel(1);
    let mut w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            let _ = tx.try_send(());
        }
    })
    .ok()?;
    w.watch(&dir, notify::RecursiveMode::Recursive).ok()?;
    Some((w, rx))
}

impl Watcher {
    pub fn new(store: Arc<dyn Store>, opts: WatchOptions) -> Self {
        let (notifier, wake) = match store.local_dir().and_then(notifier) {
            Some((n, rx)) => (Some(n), Some(rx)),
            None => (None, None),
        };
        Watcher {
            store,
            opts,
            current: None,
            feed: None,
            last_full: Instant::now(),
            wake,
            _notifier: notifier,
            polls: 0,
            pending: BTreeSet::new(),
            resync_owed: false,
            nudges: None,
            next_poll: Instant::now() + opts.poll_interval,
        }
    }

    /// Also wake on `nudges`, re-reading only the keys they name.
    pub fn with_nudges(mut self, nudges: Arc<Nudges>) -> Self {
        self.nudges = Some(nudges);
        self
    }

    /// How many change-detection steps have run since the initial listing.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    /// The last complete listing, if any.
    pub fn current(&self) -> Option<&Listing> {
        self.current.as_ref()
    }

    /// Wait for the next change (or failure). The first call lists at once.
    pub async fn next(&mut self) -> WatchEvent {
        if self.current.is_none() {
            return self.initial().await;
        }
        loop {
            let step = match self.wait().await {
                Wake::Poll => {
                    let step = self.step().await;
                    self.next_poll = Instant::now() + self.opts.poll_interval;
                    step
                }
                Wake::Keys => self.step_keys().await,
            };
            match step {
                Err(e) => return WatchEvent::Failed(e),
                Ok(Some(event)) => return event,
                Ok(None) => continue,
            }
        }
    }

    async fn initial(&mut self) -> WatchEvent {
        // Open the feed before listing, so no change between the two is missed.
        match self.store.change_feed().await {
            Ok(feed) => self.feed = feed,
            Err(e) => {
                tokio::time::sleep(self.opts.poll_interval).await;
                return WatchEvent::Failed(e);
            }
        }
        match self.store.list().await {
            Ok(listing) => {
                self.last_full = Instant::now();
                self.next_poll = self.last_full + self.opts.poll_interval;
                let changed = listing.sources.keys().cloned().collect();
                self.current = Some(listing.clone());
                WatchEvent::Changed {
                    listing,
                    changed,
                    removed: BTreeSet::new(),
                    initial: true,
                }
            }
            Err(e) => {
                self.feed = None;
                tokio::time::sleep(self.opts.poll_interval).await;
                WatchEvent::Failed(e)
            }
        }
    }

    /// Wait for the next poll, a filesystem change or a nudge. Cancel-safe: the poll's time is
    /// kept in `next_poll`, nudged keys stay in [`Nudges`] until taken.
    async fn wait(&mut self) -> Wake {
        if !self.pending.is_empty() {
            return Wake::Keys;
        }
        let sleep = tokio::time::sleep_until(self.next_poll);
        let nudges = self.nudges.clone();
        let nudged = async {
            match &nudges {
                Some(n) => n.notify.notified().await,
                None => std::future::pending().await,
            }
        };
        let wake = &mut self.wake;
        let files = async {
            match wake {
                Some(rx) => {
                    if rx.recv().await.is_none() {
                        std::future::pending::<()>().await;
                    }
                    // Let a burst of writes (editors, git checkouts) settle.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    while rx.try_recv().is_ok() {}
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => Wake::Poll,
            _ = files => Wake::Poll,
            _ = nudged => Wake::Keys,
        }
    }

    /// Re-read the nudged keys (and any left from a cancelled step) one by one, no listing;
    /// a full detection step instead when nudges overflowed.
    async fn step_keys(&mut self) -> Result<Option<WatchEvent>, StoreError> {
        if let Some(n) = &self.nudges {
            let (keys, overflow) = n.take();
            self.pending.extend(keys);
            if overflow {
                self.pending.clear();
                let step = self.step().await;
                self.next_poll = Instant::now() + self.opts.poll_interval;
                return step;
            }
        }
        self.polls += 1;
        let previous = self.current.clone().unwrap_or_default();
        let mut next = previous.clone();
        // Cleared only once all are read: a cancelled step reads them all again. A failed read
        // leaves them to a full detection step, brought forward to a few seconds from now.
        let keys: Vec<String> = self.pending.iter().cloned().collect();
        for key in keys {
            let fetched = match self.store.fetch_source(&key).await {
                Ok(f) => f,
                Err(e) => {
                    self.pending.clear();
                    self.resync_owed |= self.feed.is_some();
                    self.next_poll = self.next_poll.min(Instant::now() + RETRY_FAILED_READ);
                    return Err(e);
                }
            };
            match fetched {
                Some(source) => {
                    next.sources.insert(key.clone(), Arc::new(source));
                }
                None => {
                    next.sources.remove(&key);
                }
            }
        }
        self.pending.clear();
        Ok(self.changed_to(previous, next))
    }

    /// One detection step: the new listing when something changed. Cancel-safe: what the feed
    /// reported is kept in `pending` / `resync_owed` until it has been read.
    async fn step(&mut self) -> Result<Option<WatchEvent>, StoreError> {
        self.polls += 1;
        let previous = self.current.clone().unwrap_or_default();
        let full_due = self.last_full.elapsed() >= self.opts.full_scan_interval;
        let next = match &mut self.feed {
            Some(feed) => {
                let poll = feed.poll().await?;
                self.pending.extend(poll.changed);
                self.resync_owed |= poll.resync;
                if self.resync_owed || full_due {
                    let listing = self.store.list().await?;
                    self.resync_owed = false;
                    self.pending.clear();
                    listing
                } else {
                    let mut next = previous.clone();
                    for key in &self.pending {
                        match self.store.fetch_source(key).await? {
                            Some(source) => {
                                next.sources.insert(key.clone(), Arc::new(source));
                            }
                            None => {
                                next.sources.remove(key);
                            }
                        }
                    }
                    self.pending.clear();
                    next
                }
            }
            None => self.store.refresh(&previous).await?,
        };
        if self.feed.is_none() || full_due {
            self.last_full = Instant::now();
        }
        Ok(self.changed_to(previous, next))
    }

    /// Make `next` current; the event, when it differs from `previous`.
    fn changed_to(&mut self, previous: Listing, next: Listing) -> Option<WatchEvent> {
        let (changed, removed) = diff(&previous, &next);
        if changed.is_empty() && removed.is_empty() {
            self.current = Some(next);
            return None;
        }
        self.current = Some(next.clone());
        Some(WatchEvent::Changed {
            listing: next,
            changed,
            removed,
            initial: false,
        })
    }
}

/// Keys added or whose version changed, and keys removed.
pub fn diff(old: &Listing, new: &Listing) -> (BTreeSet<String>, BTreeSet<String>) {
    let changed = new
        .sources
        .iter()
        .filter(|(k, s)| {
            old.sources
                .get(*k)
                .map(|o: &Arc<Source>| o.version != s.version)
                .unwrap_or(true)
        })
        .map(|(k, _)| k.clone())
        .collect();
    let removed = old
        .sources
        .keys()
        .filter(|k| !new.sources.contains_key(*k))
        .cloned()
        .collect();
    (changed, removed)
}
