//! Watching a store for spec changes.
//!
//! One loop for every backend: poll on an interval (a file store also wakes on filesystem
//! notifications; a store with a change feed, DynamoDB, reads its stream and re-reads only the
//! items it names, with a full listing every `full_scan_interval`).
//!
//! Invariants:
//! - the first event is always a complete listing (the readiness gate waits for it);
//! - an event is produced only when spec sources changed (added, modified, removed), so status
//!   writes, which live elsewhere, never produce one;
//! - a failed read produces [`WatchEvent::Failed`] and leaves the last good listing in place:
//!   a store outage never looks like deleted specs.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
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
        }
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
            self.wait().await;
            match self.step().await {
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

    async fn wait(&mut self) {
        let sleep = tokio::time::sleep(self.opts.poll_interval);
        match &mut self.wake {
            Some(rx) => {
                tokio::select! {
                    _ = sleep => {}
                    Some(()) = rx.recv() => {
                        // Let a burst of writes (editors, git checkouts) settle.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        while rx.try_recv().is_ok() {}
                    }
                }
            }
            None => sleep.await,
        }
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
        let (changed, removed) = diff(&previous, &next);
        if changed.is_empty() && removed.is_empty() {
            self.current = Some(next);
            return Ok(None);
        }
        self.current = Some(next.clone());
        Ok(Some(WatchEvent::Changed {
            listing: next,
            changed,
            removed,
            initial: false,
        }))
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
