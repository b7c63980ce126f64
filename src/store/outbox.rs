//! The outbox: every committed change that makes events is recorded by the store in the same
//! step as the change itself, so no change is ever without its events, whoever made it (a
//! request, a sweep, another replica). The emitter ([`crate::events::Events`]) reads the
//! recorded changes, in the order they were committed, and marks each done once every event it
//! made has been delivered, dropped or is no longer wanted.
//!
//! - Memory store: a channel filled under the store's lock (lost on restart).
//! - Redis store: a Redis stream written by the same Lua script as the change, read by a
//!   consumer group that every replica shares; a change a replica took and did not finish is
//!   taken over by another after `events.claim_idle_ms` (see `redis/outbox.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::{Mutex, mpsc};

use super::StoreFuture;
use crate::domain::{Registration, Session, Subscription};

/// A committed change that makes events.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A session was created (version 1) or changed, with the version the change gave it.
    Session { session: Arc<Session>, version: u64 },
    /// A registration ended by itself (expired).
    RegistrationEnded(Box<Registration>),
    /// A subscription ended; its `ended` says why.
    SubscriptionEnded(Box<Subscription>),
}

/// A change as the outbox holds it: `id` is unique to it (and stable when it is read again, so
/// the events it makes keep their ids).
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub id: String,
    /// When it was committed (ms since the epoch): the `time` of its events.
    pub at_ms: u64,
    pub change: Change,
}

/// Where the recorded changes are read from.
pub trait Outbox: Send + Sync + 'static {
    /// Up to `max` changes not yet handed out, oldest first, waiting up to about a second for
    /// one; on Redis, changes another replica took and left for `events.claim_idle_ms` are
    /// among them.
    fn next(&self, max: usize) -> StoreFuture<'_, Vec<Recorded>>;

    /// The changes whose events are all finished: they are never handed out again.
    fn done(&self, ids: Vec<String>) -> StoreFuture<'_, ()>;

    /// Changes this process gives up (their events could not be made): another reader, or
    /// this one, takes them over after `events.claim_idle_ms`.
    fn release(&self, ids: &[String]);

    /// Keeps the changes handed out and not yet done from being taken over, when it is time to
    /// (called every [`KEEP_EVERY`] by the emitter's keeper; on Redis it acts every third of
    /// `events.claim_idle_ms`).
    fn keep(&self) -> StoreFuture<'_, ()>;
}

/// How often [`Outbox::keep`] is called.
pub const KEEP_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The memory store's outbox: a channel, written under the store's locks so that its order is
/// the commit order.
#[derive(Debug)]
pub struct MemoryOutbox {
    /// (number, when, change): the id is made by the reader, off the writer's lock.
    sender: mpsc::UnboundedSender<(u64, u64, Change)>,
    receiver: Mutex<mpsc::UnboundedReceiver<(u64, u64, Change)>>,
    /// Ids are `<boot>-<n>`: unique within this process and, by the random `boot`, across
    /// restarts.
    boot: u64,
    next_id: AtomicU64,
}

impl Default for MemoryOutbox {
    fn default() -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        Self {
            sender,
            receiver: Mutex::new(receiver),
            boot: uuid::Uuid::new_v4().as_u64_pair().0,
            next_id: AtomicU64::new(1),
        }
    }
}

impl MemoryOutbox {
    /// Records `change`; called with the lock of what changed held.
    pub fn record(&self, change: Change) {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        // The receiver lives as long as the store: a send cannot fail.
        let _ = self.sender.send((n, super::now_ms(), change));
    }
}

impl Outbox for MemoryOutbox {
    fn next(&self, max: usize) -> StoreFuture<'_, Vec<Recorded>> {
        Box::pin(async move {
            let mut batch = Vec::with_capacity(max.min(256));
            let mut receiver = self.receiver.lock().await;
            let wait = std::time::Duration::from_secs(1);
            let _ = tokio::time::timeout(wait, receiver.recv_many(&mut batch, max)).await;
            let id = |n| format!("{:016x}-{n}", self.boot);
            Ok((batch.into_iter())
                .map(|(n, at_ms, change)| Recorded {
                    id: id(n),
                    at_ms,
                    change,
                })
                .collect())
        })
    }

    fn done(&self, _: Vec<String>) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn release(&self, _: &[String]) {}

    fn keep(&self) -> StoreFuture<'_, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}
