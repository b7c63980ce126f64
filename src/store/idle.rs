//! Idle sessions end on time, without a request: a live session with no write for
//! `sessions.idle_ttl_seconds` is ended as the network would end it ([`Session::end_idle`]).
//!
//! Every instance's scheduler ([`crate::network::timers`]) sweeps; each end is a compare-and-swap on the version the sweep read, so with
//! several replicas on one Redis exactly one of them ends a session, and a session written in the
//! meantime (no longer idle) is left alone.

use std::sync::Arc;
use std::time::Duration;

use super::{SessionStore, StoreError};
use crate::domain::Session;

/// How many idle sessions one store read returns; a sweep reads batch after batch while they
/// come full.
const BATCH: usize = 256;

/// How many batches one sweep reads at most, so that a sweep of a huge backlog yields to the
/// next interval (and a store that keeps answering full batches cannot hold the sweeper).
const BATCHES_PER_SWEEP: usize = 64;

/// How often to sweep for sessions idle for `idle_ttl`: a quarter of it, between 100 ms and 60 s.
pub fn interval(idle_ttl: Duration) -> Duration {
    (idle_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Ends the sessions idle for `idle_ttl` now: batch after batch while they come full, up to
/// [`BATCHES_PER_SWEEP`].
pub async fn sweep_idle(store: &dyn SessionStore, idle_ttl: Duration) -> Result<(), StoreError> {
    for _ in 0..BATCHES_PER_SWEEP {
        if end_batch(store, idle_ttl).await? < BATCH {
            break;
        }
    }
    Ok(())
}

/// Ends one batch of idle sessions; returns how many the store returned.
async fn end_batch(store: &dyn SessionStore, idle_ttl: Duration) -> Result<usize, StoreError> {
    let batch = store.idle(idle_ttl, BATCH).await?;
    let read = batch.len();
    for idle in batch {
        if idle.session.is_over() {
            continue;
        }
        let ended = Arc::new(Session::end_idle(&idle.session, idle_ttl.as_secs()));
        let (id, from, to) = (ended.id.clone(), idle.session.status, ended.status);
        match store.compare_and_swap(idle.version, ended).await {
            Ok(version) => {
                crate::telemetry::metrics::transition(Some(from), to);
                tracing::info!(session = id.as_str(), from = %from, to = %to, version, "idle session ended by the network");
            }
            // Written (or ended) since the sweep read it: it is not idle any more.
            Err(StoreError::VersionConflict { .. } | StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(read)
}
