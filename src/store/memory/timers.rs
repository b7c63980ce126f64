//! The in-process timers: by due time, under one short-lived lock.

use std::collections::{BTreeSet, HashMap};
use std::future::ready;
use std::sync::PoisonError;
use std::time::Duration;

use super::MemoryStore;
use crate::store::StoreFuture;
use crate::store::timers::{Claimed, Scheduled, TimerStore, encode, keys_of};

/// The timers by key (each with its stored form), and their keys by when each is due (or its
/// lease ends).
#[derive(Debug, Default)]
pub(super) struct Timers {
    by_key: HashMap<String, (u64, Claimed)>,
    due: BTreeSet<(u64, String)>,
}

impl Timers {
    /// Keeps `scheduled` (replacing any timer under its key), due at its time.
    pub(super) fn schedule(&mut self, scheduled: Scheduled) {
        // The stored form only tells one timer from the next under the same key; a timer that
        // does not serialise (it always does) is told apart by nothing and ends with its key.
        let stored = encode(&scheduled).unwrap_or_default();
        self.set(scheduled.due_ms, Claimed { scheduled, stored });
    }

    /// Keeps `timer`, next looked at `at_ms`.
    fn set(&mut self, at_ms: u64, timer: Claimed) {
        let key = timer.scheduled.key.clone();
        if let Some((old, _)) = self.by_key.insert(key.clone(), (at_ms, timer)) {
            self.due.remove(&(old, key.clone()));
        }
        self.due.insert((at_ms, key));
    }

    fn remove(&mut self, key: &str) {
        if let Some((at, _)) = self.by_key.remove(key) {
            self.due.remove(&(at, key.to_owned()));
        }
    }

    /// Drops the timers of `session` (it ended, or is gone).
    pub(super) fn drop_session(&mut self, session: &str) {
        for key in keys_of(session) {
            self.remove(&key);
        }
    }
}

impl MemoryStore {
    pub(super) fn timers<T>(&self, f: impl FnOnce(&mut Timers) -> T) -> T {
        f(&mut self.timers.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl TimerStore for MemoryStore {
    fn claim_timers(
        &self,
        now_ms: u64,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<Claimed>, Option<u64>)> {
        let lease_end = now_ms.saturating_add(crate::store::millis(lease));
        let claimed = self.timers(|t| {
            let due: Vec<String> = (t.due.iter())
                .take_while(|(at, _)| *at <= now_ms)
                .take(limit)
                .map(|(_, key)| key.clone())
                .collect();
            let claimed: Vec<Claimed> = (due.into_iter())
                .filter_map(|key| {
                    let (_, timer) = t.by_key.get(&key)?.clone();
                    t.set(lease_end, timer.clone());
                    Some(timer)
                })
                .collect();
            (claimed, t.due.first().map(|(at, _)| *at))
        });
        Box::pin(ready(Ok(claimed)))
    }

    fn advance<'a>(
        &'a self,
        claimed: &'a Claimed,
        next: Option<Scheduled>,
    ) -> StoreFuture<'a, bool> {
        let key = &claimed.scheduled.key;
        let advanced = self.timers(|t| {
            if t.by_key
                .get(key)
                .is_none_or(|(_, held)| held.stored != claimed.stored)
            {
                return false;
            }
            t.remove(key);
            if let Some(next) = next {
                t.schedule(next);
            }
            true
        });
        Box::pin(ready(Ok(advanced)))
    }
}
