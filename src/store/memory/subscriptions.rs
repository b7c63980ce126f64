//! The in-process subscriptions: a map and its indexes under one short-lived lock.

use std::collections::{BTreeSet, HashMap};
use std::future::ready;
use std::sync::PoisonError;

use super::MemoryStore;
use crate::domain::{Subscription, SubscriptionEnd};
use crate::store::outbox::Change;
use crate::store::{StoreError, StoreFuture, SubscriptionChange, SubscriptionStore, now_ms};

/// Subscriptions and their indexes. Ended ones stay in `by_id` (as a record) until their `gone`
/// time; `by_owner` and `live` hold only those not yet ended.
#[derive(Debug, Default)]
pub(super) struct Subscriptions {
    by_id: HashMap<String, Subscription>,
    /// Ids per owner.
    by_owner: HashMap<String, Vec<String>>,
    /// Ids per phone number whose events they receive.
    by_number: HashMap<String, Vec<String>>,
    /// How many have not ended.
    live: usize,
    /// Ended records, by when they are dropped.
    gone: BTreeSet<(u64, String)>,
    /// Those not yet ended that end by themselves, by when ([`Subscription::due_at_ms`]).
    due: BTreeSet<(u64, String)>,
    /// Events counted per subscription not yet ended.
    events: HashMap<String, u64>,
}

impl Subscriptions {
    fn purge(&mut self, now_ms: u64) {
        super::purge_gone(&mut self.gone, &mut self.by_id, now_ms);
    }

    fn active(&self, id: &str, now_ms: u64) -> Option<&Subscription> {
        self.by_id.get(id).filter(|s| s.is_active(now_ms))
    }

    /// Files `subscription` under its due time, `old` being what it was filed under.
    fn refile(&mut self, old: Option<u64>, subscription: &Subscription) {
        if let Some(at) = old {
            self.due.remove(&(at, subscription.id.clone()));
        }
        if let Some(at) = subscription
            .due_at_ms()
            .filter(|_| subscription.ended.is_none())
        {
            self.due.insert((at, subscription.id.clone()));
        }
    }
}

/// Takes `id` out of `index[key]`, and the key out once it lists none.
fn unindex(index: &mut HashMap<String, Vec<String>>, key: &str, id: &str) {
    if let Some(ids) = index.get_mut(key) {
        ids.retain(|other| other != id);
        if ids.is_empty() {
            index.remove(key);
        }
    }
}

/// The active subscriptions `ids` name, oldest first.
fn active_of(s: &Subscriptions, ids: Option<&Vec<String>>, now_ms: u64) -> Vec<Subscription> {
    let mut found: Vec<Subscription> = (ids.into_iter().flatten())
        .filter_map(|id| s.active(id, now_ms).cloned())
        .collect();
    found.sort_by(|a, b| (a.starts_at_ms, &a.id).cmp(&(b.starts_at_ms, &b.id)));
    found
}

impl MemoryStore {
    fn subscriptions<T>(&self, now_ms: u64, f: impl FnOnce(&mut Subscriptions) -> T) -> T {
        // Each operation leaves the maps whole before it can panic, so a poisoned lock is safe.
        let mut subscriptions = self
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        subscriptions.purge(now_ms);
        f(&mut subscriptions)
    }
}

impl SubscriptionStore for MemoryStore {
    fn subscribe(
        &self,
        subscription: Subscription,
        max_per_owner: usize,
        now_ms: u64,
    ) -> StoreFuture<'_, ()> {
        let capacity = self.limits.capacity;
        let done = self.subscriptions(now_ms, |s| {
            let held = (s.by_owner.get(&subscription.owner).into_iter().flatten())
                .filter(|id| s.active(id, now_ms).is_some())
                .count();
            if held >= max_per_owner {
                return Err(StoreError::OwnerFull(max_per_owner));
            }
            if s.live >= capacity {
                return Err(StoreError::Full(capacity));
            }
            if s.by_id.contains_key(&subscription.id) {
                return Err(StoreError::AlreadyExists);
            }
            let ids = s.by_owner.entry(subscription.owner.clone()).or_default();
            ids.push(subscription.id.clone());
            for number in &subscription.phone_numbers {
                let ids = s.by_number.entry(number.clone()).or_default();
                ids.push(subscription.id.clone());
            }
            s.live += 1;
            s.refile(None, &subscription);
            s.by_id.insert(subscription.id.clone(), subscription);
            Ok(())
        });
        Box::pin(ready(done))
    }

    fn stored_subscription<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Subscription>> {
        let found = self.subscriptions(now_ms(), |s| s.by_id.get(id).cloned());
        Box::pin(ready(Ok(found)))
    }

    fn owned<'a>(&'a self, owner: &'a str, now_ms: u64) -> StoreFuture<'a, Vec<Subscription>> {
        let found = self.subscriptions(now_ms, |s| active_of(s, s.by_owner.get(owner), now_ms));
        Box::pin(ready(Ok(found)))
    }

    fn for_number<'a>(
        &'a self,
        phone_number: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Vec<Subscription>> {
        let found = self.subscriptions(now_ms, |s| {
            active_of(s, s.by_number.get(phone_number), now_ms)
        });
        Box::pin(ready(Ok(found)))
    }

    fn change<'a>(
        &'a self,
        id: &'a str,
        change: SubscriptionChange,
        now_ms: u64,
    ) -> StoreFuture<'a, Subscription> {
        let done = self.subscriptions(now_ms, |s| {
            s.active(id, now_ms).ok_or(StoreError::NotFound)?;
            let subscription = s.by_id.get_mut(id).expect("found above");
            let old = subscription.due_at_ms();
            change.apply(subscription);
            let changed = subscription.clone();
            s.refile(old, &changed);
            Ok(changed)
        });
        Box::pin(ready(done))
    }

    fn end_subscription<'a>(
        &'a self,
        id: &'a str,
        reason: SubscriptionEnd,
        active_only: bool,
        now_ms: u64,
    ) -> StoreFuture<'a, Subscription> {
        let keep_ms = crate::store::subscriptions::ended_record_ms(self.limits.ended_ttl, reason);
        let done = self.subscriptions(now_ms, |s| {
            let found = s.by_id.get(id).filter(|found| found.ended.is_none());
            if found.is_none_or(|found| active_only && !found.is_active(now_ms)) {
                return Err(StoreError::NotFound);
            }
            let subscription = s.by_id.get_mut(id).expect("found above");
            let due = subscription.due_at_ms();
            subscription.ended = Some(reason);
            let ended = subscription.clone();
            s.refile(due, &ended);
            s.events.remove(id);
            unindex(&mut s.by_owner, &ended.owner, id);
            for number in &ended.phone_numbers {
                unindex(&mut s.by_number, number, id);
            }
            s.live -= 1;
            s.gone
                .insert((now_ms.saturating_add(keep_ms), id.to_owned()));
            (self.outbox).record(Change::SubscriptionEnded(Box::new(ended.clone())));
            Ok(ended)
        });
        Box::pin(ready(done))
    }

    fn due_subscriptions(&self, now_ms: u64, limit: usize) -> StoreFuture<'_, Vec<Subscription>> {
        let due = self.subscriptions(now_ms, |s| {
            (s.due.iter())
                .take_while(|(at, _)| *at <= now_ms)
                .take(limit)
                .filter_map(|(_, id)| s.by_id.get(id).cloned())
                .collect()
        });
        Box::pin(ready(Ok(due)))
    }

    fn active_subscriptions(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<Subscription>, usize)> {
        let found = self.subscriptions(now_ms, |s| {
            let ids: Vec<String> = (s.by_id.keys())
                .filter(|id| s.active(id, now_ms).is_some())
                .take(limit)
                .cloned()
                .collect();
            (active_of(s, Some(&ids), now_ms), s.live)
        });
        Box::pin(ready(Ok(found)))
    }

    fn live_subscriptions(&self) -> StoreFuture<'_, u64> {
        let live = self.subscriptions(now_ms(), |s| s.live as u64);
        Box::pin(ready(Ok(live)))
    }

    fn count_event<'a>(&'a self, id: &'a str) -> StoreFuture<'a, u64> {
        let counted = self.subscriptions(now_ms(), |s| {
            if s.by_id.get(id).is_none_or(|found| found.ended.is_some()) {
                return Err(StoreError::NotFound);
            }
            let count = s.events.entry(id.to_owned()).or_default();
            *count += 1;
            Ok(*count)
        });
        Box::pin(ready(counted))
    }
}
