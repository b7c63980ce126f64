//! Where registrations live: the second member of the store family, beside the sessions, on the
//! same backend (memory or Redis).
//!
//! Every method takes the caller's wall-clock time (`now_ms`, since the epoch) rather than
//! reading a clock: a registration's expiry is a wall time the client was told, replicas judge it
//! by one clock, and the contract suite drives time itself.
//!
//! A registration is *active* until it ends or its expiry passes ([`Registration::is_active`]).
//! Expiry is acted on without a request: [`RegistrationStore::claim_expired`] hands each expired
//! registration to one claimant for a lease, and [`RegistrationStore::finish_expired`] records its
//! end; a claimant that dies before finishing loses its lease, and another replica claims the
//! registration again. An ended registration (expired or deleted) is kept as a record, with its
//! [`EndReason`](crate::domain::EndReason), for the store's `ended_ttl`, invisible to the API.

use std::time::Duration;

use super::StoreFuture;
use crate::domain::Registration;

pub trait RegistrationStore: Send + Sync + 'static {
    /// Stores a new active registration. [`StoreError::AlreadyExists`](super::StoreError) when
    /// its owner has an active registration of the same device and phone number;
    /// [`StoreError::NumberFull`](super::StoreError) when the phone number has `max_per_number`
    /// active ones (every owner's); [`StoreError::Full`](super::StoreError) when the store holds
    /// its capacity of registrations not yet ended.
    fn register(
        &self,
        registration: Registration,
        max_per_number: usize,
        now_ms: u64,
    ) -> StoreFuture<'_, ()>;

    /// The registration, if it is active.
    fn registration<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Option<Registration>>;

    /// `owner`'s active registrations of the device (one per phone number), soonest expiry first.
    fn device_registrations<'a>(
        &'a self,
        owner: &'a str,
        device_id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Vec<Registration>>;

    /// The active registrations of `phone_number` (every owner's), soonest expiry first.
    fn number_registrations<'a>(
        &'a self,
        phone_number: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Vec<Registration>>;

    /// Gives an active registration a new expiry; [`StoreError::NotFound`](super::StoreError)
    /// if it is not active.
    fn refresh<'a>(
        &'a self,
        id: &'a str,
        expires_at_ms: u64,
        now_ms: u64,
    ) -> StoreFuture<'a, Registration>;

    /// Ends an active registration now (deleted), returning it;
    /// [`StoreError::NotFound`](super::StoreError) if it is not active.
    fn unregister<'a>(&'a self, id: &'a str, now_ms: u64) -> StoreFuture<'a, Registration> {
        self.end_registration(id, crate::domain::EndReason::Deleted, now_ms)
    }

    /// Ends an active registration now for `reason` (deleted, or by the network), returning it;
    /// [`StoreError::NotFound`](super::StoreError) if it is not active.
    fn end_registration<'a>(
        &'a self,
        id: &'a str,
        reason: crate::domain::EndReason,
        now_ms: u64,
    ) -> StoreFuture<'a, Registration>;

    /// Up to `limit` registrations whose expiry has passed and that nobody holds a lease on,
    /// each now leased to the caller for `lease`, soonest first.
    fn claim_expired(
        &self,
        now_ms: u64,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'_, Vec<Registration>>;

    /// Records the end of an expired registration the caller claimed, returning it ended; `None`
    /// when there is nothing to end: it was ended already, or refreshed in time (it then waits
    /// for its new expiry).
    fn finish_expired<'a>(
        &'a self,
        id: &'a str,
        now_ms: u64,
    ) -> StoreFuture<'a, Option<Registration>>;

    /// Up to `limit` registrations active at `now_ms` (every owner's; those due soonest when
    /// there are more), soonest expiry first, and how many are due after `now_ms` in all (the
    /// active ones, and any being ended): the console's first look. On a shared store it reads
    /// only what it returns and a count.
    fn active_registrations(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<Registration>, usize)>;
}

/// Puts registrations in the order every list of them comes in: soonest expiry first, then id.
pub(super) fn soonest_first(found: &mut [Registration]) {
    found.sort_by(|a, b| (a.expires_at_ms, &a.id).cmp(&(b.expires_at_ms, &b.id)));
}

/// The wall clock, in milliseconds since the Unix epoch: the `now_ms` callers pass.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, millis)
}

/// `duration` in whole milliseconds, saturating at `u64::MAX`.
pub fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}
