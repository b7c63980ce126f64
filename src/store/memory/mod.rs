//! The in-process store: a map under a short-lived lock, bounded by `sessions.max_sessions`, and
//! the registrations ([`registrations`]).

mod registrations;
mod subscriptions;
mod timers;

use std::collections::{HashMap, VecDeque};
use std::future::ready;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use super::outbox::{Change, MemoryOutbox, Outbox, Recorded};
use super::timers::Scheduled;
use super::{Limits, SessionStore, StoreError, StoreFuture, Versioned};
use crate::domain::{Session, SessionId, SessionStatus};

/// Drops from `by_id` the ended records of `gone` (by when each is dropped) that are due at
/// `now_ms`: the registrations' and subscriptions' records alike.
fn purge_gone<T>(
    gone: &mut std::collections::BTreeSet<(u64, String)>,
    by_id: &mut HashMap<String, T>,
    now_ms: u64,
) {
    while gone.first().is_some_and(|(at, _)| *at <= now_ms) {
        if let Some((_, id)) = gone.pop_first() {
            by_id.remove(&id);
        }
    }
}

/// One stored session; `expires` is set once the session is over.
#[derive(Debug)]
struct Slot {
    stored: Versioned,
    expires: Option<Instant>,
    /// When it was last written.
    touched: Instant,
}

impl Slot {
    fn live_at(&self, now: Instant) -> bool {
        self.expires.is_none_or(|at| at > now)
    }

    /// Whether the session is live now; the clock is read only for an ended one.
    fn live(&self) -> bool {
        self.expires.is_none() || self.live_at(Instant::now())
    }
}

#[derive(Debug, Default)]
struct Sessions {
    /// Hashed with foldhash: only ids the service generated or was configured with are inserted,
    /// so SipHash's defence against keys chosen to collide buys nothing here.
    map: HashMap<SessionId, Slot, foldhash::fast::RandomState>,
    /// Ended sessions in the order they ended; with one TTL that is also their expiry order.
    ended: VecDeque<(Instant, SessionId)>,
    /// Live sessions per owner (owners with none are left out).
    owners: HashMap<Arc<str>, usize, foldhash::fast::RandomState>,
    /// Sessions by the registration they were created with; ids of sessions over or gone are
    /// dropped when the registration's sessions are read.
    registered: HashMap<Arc<str>, Vec<SessionId>, foldhash::fast::RandomState>,
}

impl Sessions {
    /// Drops the ended session at the front of the queue if `due`, returning whether it did.
    fn drop_oldest_ended(&mut self, due: impl Fn(Instant) -> bool) -> bool {
        let Some((at, id)) = self.ended.front() else {
            return false;
        };
        if !due(*at) {
            return false;
        }
        if self
            .map
            .get(id)
            .is_some_and(|slot| slot.expires == Some(*at))
            && let Some(slot) = self.map.remove(id)
        {
            self.unlink(&slot.stored.session);
        }
        self.ended.pop_front();
        true
    }

    /// Takes a session that leaves the map out of its registration's list.
    fn unlink(&mut self, session: &Session) {
        for registration in session.registrations() {
            if let Some(ids) = self.registered.get_mut(registration) {
                ids.retain(|id| *id != session.id);
                if ids.is_empty() {
                    self.registered.remove(registration);
                }
            }
        }
    }

    /// One live session of `session`'s owner fewer (it ended or was removed).
    fn uncount(&mut self, session: &Session) {
        let Some(owner) = &session.owner else { return };
        if let Some(n) = self.owners.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                self.owners.remove(owner);
            }
        }
    }

    /// Drops the ended sessions that are due; the clock is read only when there are some.
    fn purge_expired(&mut self) {
        if self.ended.is_empty() {
            return;
        }
        let now = Instant::now();
        while self.drop_oldest_ended(|at| at <= now) {}
    }
}

/// Sessions in a `RwLock<HashMap>`. Each operation takes the lock, finishes, and releases it
/// before its (already ready) future is returned, so no guard ever crosses an await.
///
/// Ended sessions are kept for `ended_ttl`, then dropped; at capacity the oldest ended session
/// gives way to a new one before an insert is refused.
#[derive(Debug)]
pub struct MemoryStore {
    sessions: RwLock<Sessions>,
    registrations: Mutex<registrations::Registrations>,
    subscriptions: Mutex<subscriptions::Subscriptions>,
    /// The network's timers; their lock is only ever taken inside the sessions' one, or alone.
    timers: Mutex<timers::Timers>,
    limits: Limits,
    /// Every change that makes events, recorded under the lock that made it.
    outbox: MemoryOutbox,
}

impl MemoryStore {
    pub fn new(limits: Limits) -> Self {
        Self {
            sessions: RwLock::new(Sessions::default()),
            registrations: Mutex::default(),
            subscriptions: Mutex::default(),
            timers: Mutex::default(),
            limits,
            outbox: MemoryOutbox::default(),
        }
    }

    fn write<T>(&self, f: impl FnOnce(&mut Sessions) -> T) -> T {
        // A panic while holding the lock cannot leave a half-written entry (each write is one
        // map operation), so a poisoned lock is safe to keep using.
        let mut sessions = self
            .sessions
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        sessions.purge_expired();
        f(&mut sessions)
    }

    fn read<T>(&self, f: impl FnOnce(&Sessions) -> T) -> T {
        f(&self.sessions.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Outbox for MemoryStore {
    fn next(&self, max: usize) -> StoreFuture<'_, Vec<Recorded>> {
        self.outbox.next(max)
    }

    fn done(&self, ids: Vec<String>) -> StoreFuture<'_, ()> {
        self.outbox.done(ids)
    }

    fn release(&self, ids: &[String]) {
        self.outbox.release(ids);
    }

    fn keep(&self) -> StoreFuture<'_, ()> {
        self.outbox.keep()
    }
}

impl SessionStore for MemoryStore {
    fn get<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Option<Versioned>> {
        let found = self.read(|s| {
            s.map
                .get(id)
                .filter(|slot| slot.live())
                .map(|slot| slot.stored.clone())
        });
        Box::pin(ready(Ok(found)))
    }

    fn insert_with(&self, session: Session, timers: Vec<Scheduled>) -> StoreFuture<'_, u64> {
        let result = self.write(|s| {
            if s.map.contains_key(&session.id) {
                return Err(StoreError::AlreadyExists);
            }
            // The owner's quota first: a refused insert must not drop anyone's ended sessions.
            let owner = session.owner.clone().filter(|_| !session.is_over());
            if let Some(owner) = &owner
                && s.owners
                    .get(owner)
                    .is_some_and(|live| *live >= self.limits.per_owner)
            {
                return Err(StoreError::OwnerFull(self.limits.per_owner));
            }
            while s.map.len() >= self.limits.capacity {
                if !s.drop_oldest_ended(|_| true) {
                    return Err(StoreError::Full(self.limits.capacity));
                }
            }
            if let Some(owner) = owner {
                *s.owners.entry(owner).or_default() += 1;
            }
            // Linked only while the registration has not ended, so no list outlives it (the
            // registrations' lock is only ever taken inside the sessions' one).
            for registration in session.registrations() {
                if self.registration_not_ended(registration) {
                    let ids = s.registered.entry(Arc::clone(registration)).or_default();
                    ids.push(session.id.clone());
                }
            }
            let slot = Slot {
                stored: Versioned {
                    session: Arc::new(session),
                    version: 1,
                },
                expires: None,
                touched: Instant::now(),
            };
            self.outbox.record(Change::Session {
                session: Arc::clone(&slot.stored.session),
                version: 1,
            });
            s.map.insert(slot.stored.session.id.clone(), slot);
            self.timers(|t| timers.into_iter().for_each(|timer| t.schedule(timer)));
            Ok(1)
        });
        Box::pin(ready(result))
    }

    fn compare_and_swap(&self, expected: u64, session: Arc<Session>) -> StoreFuture<'_, u64> {
        let result = self.write(|s| {
            let slot = match s.map.get_mut(&session.id) {
                None => return Err(StoreError::NotFound),
                Some(slot) if slot.stored.version != expected => {
                    return Err(StoreError::VersionConflict {
                        current: slot.stored.version,
                    });
                }
                Some(slot) => slot,
            };
            // The session is over with this write: it expires after the TTL and leaves its owner's
            // count.
            let now = Instant::now();
            let ends_at =
                (session.is_over() && slot.expires.is_none()).then(|| now + self.limits.ended_ttl);
            slot.touched = now;
            if ends_at.is_some() {
                slot.expires = ends_at;
            }
            slot.stored.version += 1;
            let version = slot.stored.version;
            let before = std::mem::replace(&mut slot.stored.session, Arc::clone(&session));
            self.outbox.record(Change::Session { session, version });
            if let Some(at) = ends_at {
                s.ended.push_back((at, before.id.clone()));
                s.uncount(&before);
                self.timers(|t| t.drop_session(before.id.as_str()));
            }
            Ok(version)
        });
        Box::pin(ready(result))
    }

    fn remove<'a>(&'a self, id: &'a SessionId) -> StoreFuture<'a, Versioned> {
        let result = self.write(|s| {
            let slot = s.map.remove(id).ok_or(StoreError::NotFound)?;
            if slot.expires.is_none() {
                s.uncount(&slot.stored.session);
            }
            s.unlink(&slot.stored.session);
            self.timers(|t| t.drop_session(id.as_str()));
            Ok(slot.stored)
        });
        Box::pin(ready(result))
    }

    fn list(&self, limit: usize) -> StoreFuture<'_, (Vec<Versioned>, usize)> {
        let listed = self.read(|s| {
            let now = Instant::now();
            let going = s.map.values().filter(|slot| slot.expires.is_none());
            let mut listed: Vec<Versioned> =
                going.take(limit).map(|slot| slot.stored.clone()).collect();
            let over = (s.ended.iter().rev())
                .filter_map(|(_, id)| s.map.get(id))
                .filter(|slot| slot.live_at(now));
            let room = limit - listed.len();
            listed.extend(over.take(room).map(|slot| slot.stored.clone()));
            let total = s.map.values().filter(|slot| slot.live_at(now)).count();
            (listed, total)
        });
        Box::pin(ready(Ok(listed)))
    }

    fn status_counts(&self) -> StoreFuture<'_, Vec<(SessionStatus, u64)>> {
        let counts = self.read(|s| {
            let now = Instant::now();
            super::count_live(
                s.map
                    .values()
                    .filter(|slot| slot.live_at(now))
                    .map(|slot| &*slot.stored.session),
            )
        });
        Box::pin(ready(Ok(counts)))
    }

    fn idle(&self, untouched_for: Duration, limit: usize) -> StoreFuture<'_, Vec<Versioned>> {
        let idle = self.read(|s| {
            let Some(cutoff) = Instant::now().checked_sub(untouched_for) else {
                return Vec::new();
            };
            let mut idle: Vec<&Slot> = s
                .map
                .values()
                .filter(|slot| {
                    slot.expires.is_none()
                        && slot.touched <= cutoff
                        && slot.stored.session.owner.is_some()
                })
                .collect();
            idle.sort_by_key(|slot| slot.touched);
            idle.into_iter()
                .take(limit)
                .map(|slot| slot.stored.clone())
                .collect()
        });
        Box::pin(ready(Ok(idle)))
    }

    fn registered<'a>(&'a self, registration: &'a str) -> StoreFuture<'a, Vec<Versioned>> {
        let found = self.write(|s| {
            let Some(mut ids) = s.registered.remove(registration) else {
                return Vec::new();
            };
            let live = |id: &SessionId| {
                s.map
                    .get(id)
                    .filter(|slot| slot.expires.is_none())
                    .map(|slot| slot.stored.clone())
            };
            ids.retain(|id| live(id).is_some());
            let found = ids.iter().filter_map(live).collect();
            if !ids.is_empty() {
                s.registered.insert(registration.into(), ids);
            }
            found
        });
        Box::pin(ready(Ok(found)))
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(ready(Ok(())))
    }
}
