//! Session storage behind one async trait, so a networked backend slots in without touching handlers.
//! Every write is a compare-and-swap on the session's version: racing updates serialise, none is lost.

pub mod expiry;
mod idle;
mod memory;
pub mod outbox;
mod redis;
mod registrations;
mod subscriptions;
pub mod timers;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use expiry::{end_regular_calls, sweep_expired};
pub use idle::{interval as idle_interval, sweep_idle};
pub use memory::MemoryStore;
pub use outbox::{Change, Outbox, Recorded};
pub use redis::RedisStore;
pub use registrations::{RegistrationStore, millis, now_ms};
pub use subscriptions::{SubscriptionChange, SubscriptionStore};
pub use timers::{Scheduled, ScriptStep, Timer, TimerStore};

use crate::domain::{Session, SessionId, SessionStatus};

/// The store family on one backend, as the application holds it.
#[derive(Clone)]
pub struct Stores {
    pub sessions: Arc<dyn SessionStore>,
    pub registrations: Arc<dyn RegistrationStore>,
    pub subscriptions: Arc<dyn SubscriptionStore>,
    /// The network's timers.
    pub timers: Arc<dyn TimerStore>,
    /// The changes that make events, recorded with them.
    pub outbox: Arc<dyn Outbox>,
}

impl Stores {
    /// Every member on one store.
    pub fn on<S: SessionStore + RegistrationStore + SubscriptionStore + TimerStore + Outbox>(
        store: S,
    ) -> Self {
        let store = Arc::new(store);
        Self {
            sessions: Arc::clone(&store) as Arc<dyn SessionStore>,
            registrations: Arc::clone(&store) as Arc<dyn RegistrationStore>,
            subscriptions: Arc::clone(&store) as Arc<dyn SubscriptionStore>,
            timers: Arc::clone(&store) as Arc<dyn TimerStore>,
            outbox: store,
        }
    }
}

/// A stored session with the version its last write gave it (1 on insert, +1 per update). The
/// session is shared: a read hands out a pointer to what the store holds, not a copy of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned {
    pub session: Arc<Session>,
    pub version: u64,
}

/// Why a store operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("nothing with that id (or no longer)")]
    NotFound,
    #[error("it exists already")]
    AlreadyExists,
    #[error("the session changed since it was read (now at version {current})")]
    VersionConflict { current: u64 },
    #[error("the store holds its maximum of {0} sessions")]
    Full(usize),
    #[error("the session's owner has its maximum of {0} live sessions")]
    OwnerFull(usize),
    #[error("the phone number has its maximum of {0} active registrations")]
    NumberFull(usize),
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
}

/// What a store holds at most, and for how long it keeps an ended session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sessions held at once, ended ones included (`sessions.max_sessions`).
    pub capacity: usize,
    /// Live (not ended) sessions one owner may hold (`sessions.max_sessions_per_consumer`);
    /// sessions without an owner (fixtures) are not counted.
    pub per_owner: usize,
    /// How long an ended session is kept (`sessions.ended_ttl_seconds`).
    pub ended_ttl: Duration,
}

/// The boxed future every store method returns (the trait is used as `dyn SessionStore`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where sessions live. Implementations never hold a lock across an await.
///
/// A session written over ([`Session::is_over`]: ended by DELETE, or in a terminal status) is
/// kept, final status and all, for the store's `ended_ttl` and then dropped: from then on it is
/// absent from `get`, `list` and every write. At
/// capacity, an insert first drops the oldest ended session before it reports [`StoreError::Full`].
/// An insert for an owner that already holds `per_owner` live sessions is
/// [`StoreError::OwnerFull`]; a session stops counting for its owner when it ends or is removed.
pub trait SessionStore: Send + Sync + 'static {
    /// The session and its version, if present.
    fn get<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>>;

    /// Stores a new session at version 1; [`StoreError::AlreadyExists`] if the id is taken.
    fn insert(&self, session: Session) -> StoreFuture<'_, u64> {
        self.insert_with(session, Vec::new())
    }

    /// [`SessionStore::insert`], scheduling `timers` in the same step (none when it is refused).
    fn insert_with(&self, session: Session, timers: Vec<Scheduled>) -> StoreFuture<'_, u64>;

    /// Replaces the session if it is still at `expected`; returns the new version.
    fn compare_and_swap(&self, expected: u64, session: Arc<Session>) -> StoreFuture<'_, u64>;

    /// Removes the session, returning what was stored.
    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Versioned>;

    /// Up to `limit` stored sessions — those not over first (any of them, when there are more),
    /// then the most recently over — and how many are stored in all: the console's first look.
    /// On a shared store it reads only what it returns and the counts, never every session.
    fn list(&self, limit: usize) -> StoreFuture<'_, (Vec<Versioned>, usize)>;

    /// How many sessions that have not ended are in each status (statuses with none left out).
    /// Its cost does not grow with the number of sessions on a shared store (a metrics scrape).
    fn status_counts(&self) -> StoreFuture<'_, Vec<(SessionStatus, u64)>>;

    /// Up to `limit` sessions that are not over and were not written for `untouched_for` (their
    /// insert or last compare-and-swap), oldest first. Sessions without an owner (fixtures, there
    /// for CAMARA's scenarios and the README) are never idle.
    fn idle(&self, untouched_for: Duration, limit: usize) -> StoreFuture<'_, Vec<Versioned>>;

    /// The sessions created with `registration` in their `registrationId` header, or delivered
    /// to it on-net, while it had not ended, that are not over (order unspecified).
    fn registered<'a>(&'a self, registration: &'a str) -> StoreFuture<'a, Vec<Versioned>>;

    /// Whether the store can serve requests now.
    fn ping(&self) -> StoreFuture<'_, ()>;
}

/// Counts statuses of the sessions that are not over.
fn count_live<'a>(sessions: impl Iterator<Item = &'a Session>) -> Vec<(SessionStatus, u64)> {
    let mut counts = [0u64; SessionStatus::ALL.len()];
    for session in sessions.filter(|s| !s.is_over()) {
        if let Some(i) = SessionStatus::ALL.iter().position(|s| *s == session.status) {
            counts[i] += 1;
        }
    }
    SessionStatus::ALL
        .into_iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .collect()
}
