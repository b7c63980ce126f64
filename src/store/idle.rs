//! Idle sessions end on time, without a request: a live session with no write for
//! `sessions.idle_ttl_seconds` is ended as the network would end it ([`Session::end_idle`]).
//!
//! Every instance sweeps; each end is a compare-and-swap on the version the sweep read, so with
//! several replicas on one Redis exactly one of them ends a session, and a session written in the
//! meantime (no longer idle) is left alone.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{SessionStore, StoreError};
use crate::domain::Session;

/// How many idle sessions one sweep ends at most; the next sweep takes the rest.
const BATCH: usize = 256;

/// How often to sweep for sessions idle for `idle_ttl`: a quarter of it, between 100 ms and 60 s.
fn interval(idle_ttl: Duration) -> Duration {
    (idle_ttl / 4).clamp(Duration::from_millis(100), Duration::from_secs(60))
}

/// Sweeps `store` for idle sessions until it is dropped.
pub async fn end_idle_sessions(store: Weak<dyn SessionStore>, idle_ttl: Duration) {
    loop {
        tokio::time::sleep(interval(idle_ttl)).await;
        let Some(store) = store.upgrade() else {
            return;
        };
        if let Err(e) = sweep(&store, idle_ttl).await {
            tracing::warn!(error = %e, "idle sessions not swept");
        }
    }
}

/// Ends the sessions idle for `idle_ttl` now (up to [`BATCH`]).
async fn sweep(store: &Arc<dyn SessionStore>, idle_ttl: Duration) -> Result<(), StoreError> {
    for idle in store.idle(idle_ttl, BATCH).await? {
        if idle.session.is_over() {
            continue;
        }
        let ended = Session::end_idle(&idle.session, idle_ttl.as_secs());
        let (id, from, to) = (ended.id.clone(), idle.session.status, ended.status);
        match store.compare_and_swap(idle.version, Arc::new(ended)).await {
            Ok(version) => {
                crate::telemetry::metrics::transition(Some(from), to);
                tracing::info!(session = id.as_str(), from = %from, to = %to, version, "idle session ended by the network");
            }
            // Written (or ended) since the sweep read it: it is not idle any more.
            Err(StoreError::VersionConflict { .. } | StoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
