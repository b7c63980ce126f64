//! Where subscriptions live: the third member of the store family, on the same backend.
//!
//! A subscription is *active* until it ends or its expiry passes
//! ([`Subscription::is_active`]); only active ones exist for the API. An ended one is kept as a
//! record, with its [`SubscriptionEnd`](crate::domain::SubscriptionEnd), for the store's
//! `ended_ttl`.

use super::StoreFuture;
use crate::domain::{AccessToken, Subscription};

/// What a PUT changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscriptionChange {
    pub credential: Option<AccessToken>,
    pub expires_at_ms: Option<u64>,
}

impl SubscriptionChange {
    /// `subscription` with the change made.
    pub fn apply(&self, subscription: &mut Subscription) {
        if let Some(credential) = &self.credential {
            subscription.credential = Some(credential.clone());
        }
        if let Some(at) = self.expires_at_ms {
            subscription.expires_at_ms = Some(at);
        }
    }
}

pub trait SubscriptionStore: Send + Sync + 'static {
    /// Stores a new subscription. [`StoreError::OwnerFull`](super::StoreError) when its owner
    /// holds `max_per_owner` active ones; [`StoreError::Full`](super::StoreError) at the store's
    /// capacity of subscriptions not yet ended.
    fn subscribe(
        &self,
        subscription: Subscription,
        max_per_owner: usize,
        now_ms: u64,
    ) -> StoreFuture<'_, ()>;

    /// The subscription, if it is active.
    fn subscription<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Option<Subscription>>;

    /// The active subscriptions to the events of `phone_number` (every owner's), oldest first.
    fn for_number<'a>(
        &'a self,
        phone_number: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Vec<Subscription>>;

    /// `owner`'s active subscriptions, oldest first.
    fn owned<'a>(&'a self, owner: &'a str, now_ms: u64) -> StoreFuture<'a, Vec<Subscription>>;

    /// Applies `change` to an active subscription; [`StoreError::NotFound`](super::StoreError)
    /// if it is not active.
    fn change<'a>(
        &'a self,
        id: &'a str,
        change: SubscriptionChange,
        now_ms: u64,
    ) -> StoreFuture<'a, Subscription>;

    /// Ends an active subscription now (deleted), returning it;
    /// [`StoreError::NotFound`](super::StoreError) if it is not active.
    fn unsubscribe<'a>(&'a self, id: &'a str, now_ms: u64) -> StoreFuture<'a, Subscription>;
}
