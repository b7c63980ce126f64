//! Registrations end on time, without a request: every instance's scheduler
//! ([`crate::network::timers`]) sweeps for registrations past
//! their expiry, claims each for a lease (so with several replicas on one Redis exactly one acts
//! on it, and if that one dies another claims it once the lease is over), ends its live REGULAR
//! calls when `registration.end_calls_on_expiry` is on (EMERGENCY calls go on), then records
//! the registration as ended (REGISTRATION_EXPIRED) for the events that report it.

use std::sync::Arc;
use std::time::Duration;

use super::{RegistrationStore, SessionStore, StoreError, now_ms};
use crate::domain::{CallType, Registration};

/// How often to sweep: a registration ends at most this late.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// How long a claim holds before another replica may take the registration over.
pub const LEASE: Duration = Duration::from_secs(30);

/// Registrations per claim; a sweep claims batch after batch while they come full, up to
/// [`BATCHES_PER_SWEEP`].
const BATCH: usize = 64;
const BATCHES_PER_SWEEP: usize = 16;

/// The reason an ended call carries.
pub const REASON: &str = "registration ended";

/// How many times a call's end is retried when a client's write wins the race.
const END_ATTEMPTS: usize = 8;

/// Ends the registrations whose expiry has passed, batch after batch while they come full.
pub async fn sweep_expired(
    sessions: &dyn SessionStore,
    registrations: &dyn RegistrationStore,
    end_calls: bool,
) -> Result<(), StoreError> {
    for _ in 0..BATCHES_PER_SWEEP {
        let claimed = (registrations.claim_expired(now_ms(), LEASE, BATCH)).await?;
        let full = claimed.len() == BATCH;
        for registration in claimed {
            // A failure leaves the claim to lapse: this or another replica tries again.
            if let Err(e) = end(sessions, registrations, &registration, end_calls).await {
                tracing::warn!(registration = registration.id.as_str(), error = %e, "expired registration not ended yet");
            }
        }
        if !full {
            break;
        }
    }
    Ok(())
}

/// Ends one claimed registration: its calls first, then the registration itself, so that a
/// replica dying in between leaves it to be claimed again rather than calls left running.
async fn end(
    sessions: &dyn SessionStore,
    registrations: &dyn RegistrationStore,
    registration: &Registration,
    end_calls: bool,
) -> Result<(), StoreError> {
    if end_calls {
        end_regular_calls(sessions, &registration.id).await?;
    }
    if let Some(ended) = (registrations.finish_expired(&registration.id, now_ms())).await? {
        crate::telemetry::metrics::registration_ended("REGISTRATION_EXPIRED");
        tracing::info!(
            registration = ended.id.as_str(),
            expires_at_ms = ended.expires_at_ms,
            "registration expired"
        );
    }
    Ok(())
}

/// Ends the live REGULAR calls created with `registration`, as the network would: Terminated
/// once answered, Failed before, with [`REASON`].
/// A call that other writers keep changing through [`END_ATTEMPTS`] tries is left for the next
/// claim (the registration is not finished meanwhile): [`StoreError::VersionConflict`].
pub async fn end_regular_calls(
    sessions: &dyn SessionStore,
    registration: &str,
) -> Result<(), StoreError> {
    for mut current in sessions.registered(registration).await? {
        let mut attempts = 0;
        loop {
            attempts += 1;
            if attempts > END_ATTEMPTS {
                tracing::warn!(
                    session = current.session.id.as_str(),
                    registration,
                    "call not ended with its registration: it kept changing; retried at the next claim"
                );
                return Err(StoreError::VersionConflict {
                    current: current.version,
                });
            }
            if current.session.is_over() || current.session.call_type != CallType::Regular {
                break;
            }
            let ended = Arc::new(current.session.end_by_network(REASON));
            let (from, to) = (current.session.status, ended.status);
            match sessions
                .compare_and_swap(current.version, Arc::clone(&ended))
                .await
            {
                Ok(version) => {
                    crate::telemetry::metrics::transition(Some(from), to);
                    tracing::info!(session = current.session.id.as_str(), registration, from = %from, to = %to, version, "call ended with its registration");
                    break;
                }
                Err(StoreError::VersionConflict { .. }) => {
                    match sessions.get(&current.session.id).await? {
                        Some(again) => current = again,
                        None => break,
                    }
                }
                Err(StoreError::NotFound) => break,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}
