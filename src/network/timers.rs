//! The service's scheduler ([`Scheduler`]), and how it fires the network's timers (DESIGN §12):
//! every instance claims the timers
//! that are due from the store (with Redis, each goes to exactly one replica; one that dies
//! holding it leaves it to another once its claim's lease is over), plays each, and ends it in
//! the same step as it schedules the script's next step.
//!
//! A step is played at most once however often it fires: the session records how many steps
//! were played ([`Session::steps_played`]) in the same write as the step. A step the network's
//! table refuses when its time comes (the call has moved on, e.g. answered by hand) is skipped
//! and the script goes on; a call that is over ends its script.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};

use super::{Applied, apply, moved};
use crate::domain::{Session, SessionId, SessionStatus};
use crate::store::timers::Claimed;
use crate::store::{
    RegistrationStore, Scheduled, ScriptStep, SessionStore, StoreError, SubscriptionStore, Timer,
    TimerStore, now_ms, sweep_expired, sweep_idle,
};

/// The longest the scheduler sleeps before it looks again: a timer another replica scheduled
/// (one this instance schedules wakes it) fires at most this late.
const POLL: Duration = Duration::from_millis(250);

/// Timers claimed at once, and played at once by one instance.
const BATCH: usize = 256;
const IN_FLIGHT: usize = 512;

/// The reason a call not answered in time ends with.
pub const NO_ANSWER_REASON: &str = "Not answered in time";

/// The service's one scheduler: everything it does on time rather than on request runs in this
/// task — the network's timers (script steps, no-answer deadlines), which it claims when due;
/// and, on their own cadence, the sweeps that end registrations past their expiry, subscriptions
/// that are due and sessions left idle. Each kind's due times are kept by the store beside its
/// records, written in the same step as them (with Redis: sorted sets, each due item acted on by
/// one replica: a claim with a lease, or an end only one writer lands).
pub struct Scheduler {
    pub sessions: Weak<dyn SessionStore>,
    pub registrations: Weak<dyn RegistrationStore>,
    pub subscriptions: Weak<dyn SubscriptionStore>,
    pub timers: Weak<dyn TimerStore>,
    /// How long a claimed timer is held (`events.claim_idle_ms`).
    pub lease: Duration,
    /// `registration.end_calls_on_expiry`.
    pub end_calls_on_expiry: bool,
    /// `sessions.idle_ttl_seconds`.
    pub idle_ttl: Duration,
    /// Wakes it before its next look (this instance scheduled a timer).
    pub wake: Arc<Notify>,
}

/// Reports a kind of work that fails once when it starts failing and once when it recovers,
/// rather than on every pass.
struct Reporter {
    what: &'static str,
    failing: bool,
}

impl Reporter {
    const fn new(what: &'static str) -> Self {
        Self {
            what,
            failing: false,
        }
    }

    fn report<T>(&mut self, result: Result<T, StoreError>) -> Option<T> {
        match result {
            Ok(value) => {
                if std::mem::take(&mut self.failing) {
                    tracing::info!(work = self.what, "scheduled work done again");
                }
                Some(value)
            }
            Err(e) => {
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::warn!(work = self.what, error = %e, "scheduled work not done; retrying");
                }
                None
            }
        }
    }
}

/// A sweep run every so often.
struct Sweep {
    every: Duration,
    next: Instant,
    reporter: Reporter,
}

impl Sweep {
    fn new(what: &'static str, every: Duration) -> Self {
        Self {
            every,
            next: Instant::now(),
            reporter: Reporter::new(what),
        }
    }

    /// Runs `sweep` if it is due, then schedules the next run.
    async fn run_if_due(&mut self, sweep: impl Future<Output = Result<(), StoreError>>) {
        if Instant::now() < self.next {
            return;
        }
        self.reporter.report(sweep.await);
        self.next = Instant::now() + self.every;
    }
}

impl Scheduler {
    /// Runs until the stores are dropped.
    pub async fn run(self) {
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut timers = Reporter::new("network timers");
        let mut registrations = Sweep::new("expired registrations", crate::store::expiry::INTERVAL);
        let mut subscriptions = Sweep::new("due subscriptions", crate::events::DUE_SWEEP);
        let mut idle = Sweep::new("idle sessions", crate::store::idle_interval(self.idle_ttl));
        loop {
            let (Some(store), Some(due), Some(registered), Some(subscribed)) = (
                self.sessions.upgrade(),
                self.timers.upgrade(),
                self.registrations.upgrade(),
                self.subscriptions.upgrade(),
            ) else {
                return;
            };
            let fired = claim_and_fire(&store, &due, self.lease, &permits, &self.wake).await;
            let mut wait = timers.report(fired).unwrap_or(POLL);
            let expired = sweep_expired(
                store.as_ref(),
                registered.as_ref(),
                self.end_calls_on_expiry,
            );
            registrations.run_if_due(expired).await;
            subscriptions
                .run_if_due(crate::events::end_due_subscriptions(subscribed.as_ref()))
                .await;
            idle.run_if_due(sweep_idle(store.as_ref(), self.idle_ttl))
                .await;
            drop((store, due, registered, subscribed));
            let now = Instant::now();
            for sweep in [&registrations, &subscriptions, &idle] {
                wait = wait.min(sweep.next.saturating_duration_since(now));
            }
            if !wait.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = self.wake.notified() => {}
                }
            }
        }
    }
}

/// Claims the due timers this instance has room for and starts playing each; returns how long
/// to wait before looking again (zero when more may be due).
async fn claim_and_fire(
    sessions: &Arc<dyn SessionStore>,
    timers: &Arc<dyn TimerStore>,
    lease: Duration,
    permits: &Arc<Semaphore>,
    wake: &Arc<Notify>,
) -> Result<Duration, StoreError> {
    let room = permits.available_permits().min(BATCH);
    if room == 0 {
        return Ok(POLL);
    }
    let (claimed, next) = timers.claim_timers(now_ms(), lease, room).await?;
    let full = claimed.len() == room;
    for timer in claimed {
        let Ok(permit) = Arc::clone(permits).try_acquire_owned() else {
            break;
        };
        let (sessions, timers, wake) = (Arc::clone(sessions), Arc::clone(timers), Arc::clone(wake));
        tokio::spawn(async move {
            match fire(sessions.as_ref(), timers.as_ref(), &timer).await {
                // The script's next step is scheduled: look again when it is due.
                Ok(true) => wake.notify_one(),
                Ok(false) => {}
                // Left claimed: due again when the lease is over.
                Err(e) => {
                    tracing::warn!(timer = timer.scheduled.key.as_str(), error = %e, "timer not played yet");
                }
            }
            drop(permit);
        });
    }
    if full {
        return Ok(Duration::ZERO);
    }
    let now = now_ms();
    Ok(next.map_or(POLL, |at| {
        Duration::from_millis(at.saturating_sub(now)).min(POLL)
    }))
}

/// Plays one claimed timer and ends it, scheduling the script's next step with the end; returns
/// whether it scheduled one.
pub async fn fire(
    sessions: &dyn SessionStore,
    timers: &dyn TimerStore,
    claimed: &Claimed,
) -> Result<bool, StoreError> {
    let scheduled = &claimed.scheduled;
    let late = now_ms().saturating_sub(scheduled.due_ms);
    let next = match &scheduled.timer {
        Timer::Step {
            session,
            placed_ms,
            index,
            script,
        } => {
            crate::telemetry::metrics::timer_fired("step", late);
            let goes_on = play_step(sessions, session, *index, script).await?;
            (goes_on.then(|| index.checked_add(1)).flatten())
                .and_then(|next| Scheduled::step(session, *placed_ms, next, script))
        }
        Timer::NoAnswer { session } => {
            crate::telemetry::metrics::timer_fired("no_answer", late);
            end_unanswered(sessions, session).await?;
            None
        }
    };
    let scheduled_next = next.is_some();
    Ok(timers.advance(claimed, next).await? && scheduled_next)
}

/// Plays step `index` of `script` on the session unless it was played already; returns whether
/// the script goes on (the call is not over).
async fn play_step(
    sessions: &dyn SessionStore,
    id: &SessionId,
    index: u16,
    script: &[ScriptStep],
) -> Result<bool, StoreError> {
    let Some(step) = script.get(usize::from(index)) else {
        return Ok(false);
    };
    let decide = |session: &Session| {
        if session.is_over() || session.steps_played > index {
            return Ok(None);
        }
        let mut next = moved(session, step.status, None, None, step.reason.clone())?;
        next.steps_played = index + 1;
        Ok(Some(next))
    };
    Ok(match apply(sessions, id, decide).await? {
        Applied::Moved(session) => !session.is_over(),
        Applied::Refused(refused) => {
            tracing::info!(session = id.as_str(), step = index, error = %refused, "script step skipped: the network cannot make it now");
            true
        }
        // Played before (by this or another instance): the next step is scheduled again, and
        // plays once likewise.
        Applied::Left(session) => !session.is_over(),
        Applied::Gone => false,
    })
}

/// Ends the call NoAnswer unless it was answered (Connected, Hold, Resume) or is over.
async fn end_unanswered(sessions: &dyn SessionStore, id: &SessionId) -> Result<(), StoreError> {
    let decide = |session: &Session| {
        if session.is_over() || session.status.is_established() {
            return Ok(None);
        }
        moved(
            session,
            SessionStatus::NoAnswer,
            None,
            None,
            Some(NO_ANSWER_REASON.into()),
        )
        .map(Some)
    };
    match apply(sessions, id, decide).await? {
        Applied::Refused(refused) => {
            tracing::info!(session = id.as_str(), error = %refused, "no-answer timer: the network cannot end the call now");
        }
        Applied::Moved(_) | Applied::Left(_) | Applied::Gone => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Limits, MemoryStore};

    /// A step fired twice (two claimants: the first's lease ran out while it played) changes
    /// the session once and schedules the next step once.
    #[tokio::test]
    async fn a_step_fired_twice_plays_once() {
        let store = MemoryStore::new(Limits {
            capacity: 8,
            per_owner: 8,
            ended_ttl: Duration::from_secs(60),
        });
        let session = Session::example(SessionStatus::Initial);
        let step = |status| ScriptStep {
            after_ms: 0,
            status,
            reason: None,
        };
        let script: Arc<[ScriptStep]> =
            Arc::from([step(SessionStatus::Ringing), step(SessionStatus::Ringing)]);
        let first = Scheduled::step(&session.id, 0, 0, &script).unwrap();
        store
            .insert_with(session.clone(), vec![first.clone()])
            .await
            .unwrap();
        let lease = Duration::from_secs(1);
        let (claimed, _) = store.claim_timers(1, lease, 8).await.unwrap();
        let (again, _) = store.claim_timers(1 + 1000, lease, 8).await.unwrap();
        assert_eq!(
            (&claimed[0].scheduled, &again[0].scheduled),
            (&first, &first)
        );
        // Both play it; only the claimant of the timer the store still holds schedules the next.
        let played = [
            fire(&store, &store, &again[0]).await.unwrap(),
            fire(&store, &store, &claimed[0]).await.unwrap(),
        ];
        assert_eq!(played, [true, false]);
        let stored = store.get(&session.id).await.unwrap().unwrap();
        assert_eq!(
            (
                stored.version,
                stored.session.status,
                stored.session.steps_played
            ),
            (2, SessionStatus::Ringing, 1)
        );
        // The second step, once: it plays (Ringing again) and the script is done.
        let (next, _) = store.claim_timers(2000, lease, 8).await.unwrap();
        assert_eq!(next.len(), 1);
        assert_eq!(
            next[0].scheduled,
            Scheduled::step(&session.id, 0, 1, &script).unwrap()
        );
        assert!(!fire(&store, &store, &next[0]).await.unwrap());
        let stored = store.get(&session.id).await.unwrap().unwrap();
        assert_eq!((stored.version, stored.session.steps_played), (3, 2));
        assert_eq!(
            store.claim_timers(u64::MAX / 2, lease, 8).await.unwrap(),
            (vec![], None)
        );
    }
}
