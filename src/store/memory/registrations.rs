//! The in-process registrations: a map and its indexes under one short-lived lock.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::ready;
use std::sync::PoisonError;
use std::time::Duration;

use super::MemoryStore;
use crate::domain::{EndReason, Registration};
use crate::store::outbox::Change;
use crate::store::{RegistrationStore, StoreError, StoreFuture};

/// Registrations and the indexes the operations need. Ended registrations stay in `by_id` (as a
/// record) until their `gone` time; every index holds only those not yet ended.
#[derive(Debug, Default)]
pub(super) struct Registrations {
    by_id: HashMap<String, Registration>,
    /// Registrations not yet ended, by when the expiry sweep looks at them next: their expiry,
    /// or the end of a claim's lease. `due_at` is each one's key here.
    due: BTreeSet<(u64, String)>,
    due_at: HashMap<String, u64>,
    /// Ended records, by when they are dropped.
    gone: BTreeSet<(u64, String)>,
    by_number: HashMap<String, HashSet<String>>,
    /// Keyed by (owner, device).
    by_device: HashMap<(String, String), HashSet<String>>,
    /// Registrations not yet ended, per owner (owners with none left out).
    by_owner: HashMap<String, usize>,
}

impl Registrations {
    /// Drops the ended records that are due.
    fn purge(&mut self, now_ms: u64) {
        super::purge_gone(&mut self.gone, &mut self.by_id, now_ms);
    }

    fn set_due(&mut self, id: &str, at_ms: u64) {
        if let Some(old) = self.due_at.insert(id.to_owned(), at_ms) {
            self.due.remove(&(old, id.to_owned()));
        }
        self.due.insert((at_ms, id.to_owned()));
    }

    fn active(&self, id: &str, now_ms: u64) -> Option<&Registration> {
        self.by_id.get(id).filter(|r| r.is_active(now_ms))
    }

    /// The active registrations of an index entry, soonest expiry first.
    fn active_in(&self, ids: Option<&HashSet<String>>, now_ms: u64) -> Vec<Registration> {
        let mut found: Vec<Registration> = (ids.into_iter().flatten())
            .filter_map(|id| self.active(id, now_ms).cloned())
            .collect();
        crate::store::registrations::soonest_first(&mut found);
        found
    }

    /// Ends `id` for `reason`: it leaves every index and is kept as a record for `keep`.
    fn end(&mut self, id: &str, reason: EndReason, now_ms: u64, keep: Duration) -> Registration {
        let registration = self.by_id.get_mut(id).expect("ended registrations exist");
        registration.ended = Some(reason);
        let ended = registration.clone();
        if let Some(at) = self.due_at.remove(id) {
            self.due.remove(&(at, id.to_owned()));
        }
        remove_from(&mut self.by_number, &ended.phone_number, id);
        if let Some(n) = self.by_owner.get_mut(&ended.owner) {
            *n -= 1;
            if *n == 0 {
                self.by_owner.remove(&ended.owner);
            }
        }
        remove_from(
            &mut self.by_device,
            &(ended.owner.clone(), ended.device_id.clone()),
            id,
        );
        let keep_ms = crate::store::millis(keep);
        self.gone
            .insert((now_ms.saturating_add(keep_ms), id.to_owned()));
        ended
    }
}

fn remove_from<K: std::hash::Hash + Eq>(
    index: &mut HashMap<K, HashSet<String>>,
    key: &K,
    id: &str,
) {
    if let Some(ids) = index.get_mut(key) {
        ids.remove(id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

impl MemoryStore {
    /// Whether `id` is a registration that has not ended (expired but not yet ended counts).
    pub(super) fn registration_not_ended(&self, id: &str) -> bool {
        let registrations = self
            .registrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        registrations
            .by_id
            .get(id)
            .is_some_and(|r| r.ended.is_none())
    }

    fn registrations<T>(&self, now_ms: u64, f: impl FnOnce(&mut Registrations) -> T) -> T {
        // Each operation leaves the maps whole before it can panic, so a poisoned lock is safe.
        let mut registrations = self
            .registrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        registrations.purge(now_ms);
        f(&mut registrations)
    }
}

impl RegistrationStore for MemoryStore {
    fn register(
        &self,
        registration: Registration,
        max_per_number: usize,
        now_ms: u64,
    ) -> StoreFuture<'_, ()> {
        let (capacity, per_owner) = (self.limits.capacity, self.limits.per_owner);
        let done = self.registrations(now_ms, |r| {
            let mut active = 0;
            for id in r
                .by_number
                .get(&registration.phone_number)
                .into_iter()
                .flatten()
            {
                let Some(other) = r.active(id, now_ms) else {
                    continue;
                };
                if other.owner == registration.owner && other.device_id == registration.device_id {
                    return Err(StoreError::AlreadyExists);
                }
                active += 1;
            }
            if active >= max_per_number {
                return Err(StoreError::NumberFull(max_per_number));
            }
            if r.by_owner.get(&registration.owner).copied().unwrap_or(0) >= per_owner {
                return Err(StoreError::OwnerFull(per_owner));
            }
            if r.due.len() >= capacity {
                return Err(StoreError::Full(capacity));
            }
            if r.by_id.contains_key(&registration.id) {
                return Err(StoreError::AlreadyExists);
            }
            let id = registration.id.clone();
            r.set_due(&id, registration.expires_at_ms);
            r.by_number
                .entry(registration.phone_number.clone())
                .or_default()
                .insert(id.clone());
            r.by_device
                .entry((registration.owner.clone(), registration.device_id.clone()))
                .or_default()
                .insert(id.clone());
            *r.by_owner.entry(registration.owner.clone()).or_default() += 1;
            r.by_id.insert(id, registration);
            Ok(())
        });
        Box::pin(ready(done))
    }

    fn registration<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Option<Registration>> {
        let found = self.registrations(now_ms, |r| r.active(id, now_ms).cloned());
        Box::pin(ready(Ok(found)))
    }

    fn device_registrations<'a>(
        &'a self,
        owner: &'a str,
        device_id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Vec<Registration>> {
        let key = (owner.to_owned(), device_id.to_owned());
        let found = self.registrations(now_ms, |r| r.active_in(r.by_device.get(&key), now_ms));
        Box::pin(ready(Ok(found)))
    }

    fn active_registrations(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<Registration>, usize)> {
        // Those due later than now: a registration due already has expired (or is being ended).
        let found = self.registrations(now_ms, |r| {
            let later = || r.due.range((now_ms + 1, String::new())..);
            let ids: HashSet<String> = later().take(limit).map(|(_, id)| id.clone()).collect();
            (r.active_in(Some(&ids), now_ms), later().count())
        });
        Box::pin(ready(Ok(found)))
    }

    fn number_registrations<'a>(
        &'a self,
        phone_number: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Vec<Registration>> {
        let found = self.registrations(now_ms, |r| {
            r.active_in(r.by_number.get(phone_number), now_ms)
        });
        Box::pin(ready(Ok(found)))
    }

    fn refresh<'a>(
        &'a self,
        id: &'a str,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> StoreFuture<'a, Registration> {
        let done = self.registrations(now_ms, |r| {
            let found = r.active(id, now_ms).ok_or(StoreError::NotFound)?;
            // Claimed by an expiry sweep (due at its lease's end, not at its expiry): it is
            // ending, whatever the caller's clock says.
            if r.due_at.get(id) != Some(&found.expires_at_ms) {
                return Err(StoreError::NotFound);
            }
            r.set_due(id, expires_at_ms);
            let registration = r.by_id.get_mut(id).expect("found above");
            registration.expires_at_ms = expires_at_ms;
            Ok(registration.clone())
        });
        Box::pin(ready(done))
    }

    fn end_registration<'a>(
        &'a self,
        id: &'a str,
        reason: EndReason,
        now_ms: u64,
    ) -> StoreFuture<'a, Registration> {
        let keep = self.limits.ended_ttl;
        let done = self.registrations(now_ms, |r| {
            r.active(id, now_ms).ok_or(StoreError::NotFound)?;
            let ended = r.end(id, reason, now_ms, keep);
            (self.outbox).record(Change::RegistrationEnded(Box::new(ended.clone())));
            Ok(ended)
        });
        Box::pin(ready(done))
    }

    fn claim_expired(
        &self,
        now_ms: u64,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'_, Vec<Registration>> {
        let lease_ms = crate::store::millis(lease);
        let claimed = self.registrations(now_ms, |r| {
            let due: Vec<String> = r
                .due
                .iter()
                .take_while(|(at, _)| *at <= now_ms)
                .take(limit)
                .map(|(_, id)| id.clone())
                .collect();
            due.into_iter()
                .map(|id| {
                    r.set_due(&id, now_ms.saturating_add(lease_ms));
                    r.by_id[&id].clone()
                })
                .collect()
        });
        Box::pin(ready(Ok(claimed)))
    }

    fn finish_expired<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Option<Registration>> {
        let keep = self.limits.ended_ttl;
        let done = self.registrations(now_ms, |r| {
            let registration = r.by_id.get(id).filter(|r| r.ended.is_none())?;
            if registration.expires_at_ms > now_ms {
                // Refreshed since it was claimed: it waits for its new expiry.
                let at = registration.expires_at_ms;
                r.set_due(id, at);
                return None;
            }
            let ended = r.end(id, EndReason::RegistrationExpired, now_ms, keep);
            (self.outbox).record(Change::RegistrationEnded(Box::new(ended.clone())));
            Some(ended)
        });
        Box::pin(ready(Ok(done)))
    }
}
