//! The in-process timers: by due time, under one short-lived lock.

use std::collections::{BTreeSet, HashMap};
use std::future::ready;
use std::sync::PoisonError;
use std::time::Duration;

use super::MemoryStore;
use crate::store::StoreFuture;
use crate::store::timers::{Scheduled, TimerStore};

/// The timers by key, and their keys by when each is due (or its lease ends).
#[derive(Debug, Default)]
pub(super) struct Timers {
    by_key: HashMap<String, (u64, Scheduled)>,
    due: BTreeSet<(u64, String)>,
}

impl Timers {
    pub(super) fn schedule(&mut self, scheduled: Scheduled) {
        self.set(scheduled.due_ms, scheduled);
    }

    /// Keeps `scheduled`, next looked at `at_ms`.
    fn set(&mut self, at_ms: u64, scheduled: Scheduled) {
        let key = scheduled.key.clone();
        if let Some((old, _)) = self.by_key.insert(key.clone(), (at_ms, scheduled)) {
            self.due.remove(&(old, key.clone()));
        }
        self.due.insert((at_ms, key));
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
    ) -> StoreFuture<'_, Vec<Scheduled>> {
        let lease_end = now_ms.saturating_add(u64::try_from(lease.as_millis()).unwrap_or(u64::MAX));
        let claimed = self.timers(|t| {
            let due: Vec<String> = (t.due.iter())
                .take_while(|(at, _)| *at <= now_ms)
                .take(limit)
                .map(|(_, key)| key.clone())
                .collect();
            (due.into_iter())
                .filter_map(|key| {
                    let (_, scheduled) = t.by_key.get(&key)?.clone();
                    t.set(lease_end, scheduled.clone());
                    Some(scheduled)
                })
                .collect()
        });
        Box::pin(ready(Ok(claimed)))
    }

    fn advance<'a>(&'a self, key: &'a str, next: Option<Scheduled>) -> StoreFuture<'a, bool> {
        let advanced = self.timers(|t| {
            let Some((at, _)) = t.by_key.remove(key) else {
                return false;
            };
            t.due.remove(&(at, key.to_owned()));
            if let Some(next) = next {
                t.schedule(next);
            }
            true
        });
        Box::pin(ready(Ok(advanced)))
    }

    fn next_due(&self) -> StoreFuture<'_, Option<u64>> {
        let next = self.timers(|t| t.due.first().map(|(at, _)| *at));
        Box::pin(ready(Ok(next)))
    }
}
