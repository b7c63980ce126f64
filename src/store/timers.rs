//! The network's timers (DESIGN §12): a script's next step and a call's no-answer deadline, each
//! due at a time, kept in the store so that with Redis exactly one replica fires each and a dead
//! replica's timers are taken over. A timer is scheduled in the same step as the session it is
//! for ([`SessionStore::insert_with`](super::SessionStore::insert_with)), and ends in the same
//! step as the timer that follows it is scheduled ([`TimerStore::advance`]), so none is lost
//! between the two. A session has at most two timers, under the keys [`keys_of`] gives; they go
//! with the session in the same step as it ends or is removed, so none outlives its call.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StoreFuture;
use crate::domain::{SessionId, SessionStatus};

/// A timer as the store keeps it: unique by `key`, due at `due_ms` (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scheduled {
    pub key: String,
    pub due_ms: u64,
    pub timer: Timer,
}

/// What happens when a timer fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Timer {
    /// Step `index` of `script`, the far end's steps for `session` (a scripted number's, or
    /// those sent with an incoming call), each timed from `placed_ms`.
    Step {
        session: SessionId,
        placed_ms: u64,
        index: u16,
        script: Arc<[ScriptStep]>,
    },
    /// The call ends NoAnswer unless it has been answered (or is over).
    NoAnswer { session: SessionId },
}

/// One step of a script, its time already scaled by `network.time_scale`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptStep {
    pub after_ms: u64,
    pub status: SessionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Arc<str>>,
}

impl Scheduled {
    /// Step `index` of `script` for `session`, placed at `placed_ms`; `None` past its last step.
    pub fn step(
        session: &SessionId,
        placed_ms: u64,
        index: u16,
        script: &Arc<[ScriptStep]>,
    ) -> Option<Self> {
        let step = script.get(usize::from(index))?;
        Some(Self {
            key: format!("{session}/step"),
            due_ms: placed_ms.saturating_add(step.after_ms),
            timer: Timer::Step {
                session: session.clone(),
                placed_ms,
                index,
                script: Arc::clone(script),
            },
        })
    }

    /// The no-answer deadline of `session`, due at `due_ms`.
    pub fn no_answer(session: &SessionId, due_ms: u64) -> Self {
        Self {
            key: format!("{session}/no-answer"),
            due_ms,
            timer: Timer::NoAnswer {
                session: session.clone(),
            },
        }
    }
}

/// The keys of the timers a session may have: its script's next step, its no-answer deadline.
pub fn keys_of(session: &str) -> [String; 2] {
    [format!("{session}/step"), format!("{session}/no-answer")]
}

/// A timer a claim returned, with the form the store holds it in: it is ended only while the
/// store still holds that very timer (not the step after it, under the same key).
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub scheduled: Scheduled,
    pub stored: String,
}

/// Where the timers live. A claimed timer stays in the store, due again when its lease is over,
/// until [`TimerStore::advance`] ends it: a process that dies holding it loses nothing.
pub trait TimerStore: Send + Sync + 'static {
    /// Up to `limit` timers due at `now_ms`, soonest first, each claimed for `lease`: no other
    /// caller gets it until the lease is over. Also when the soonest timer left is due (or its
    /// lease ends), if there is one.
    fn claim_timers(
        &self,
        now_ms: u64,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'_, (Vec<Claimed>, Option<u64>)>;

    /// Ends the `claimed` timer and schedules `next` in the same step; `false`, and nothing
    /// scheduled, when the store no longer holds it (another claimant finished it, or its
    /// session ended).
    fn advance<'a>(
        &'a self,
        claimed: &'a Claimed,
        next: Option<Scheduled>,
    ) -> StoreFuture<'a, bool>;
}

/// A timer as a store keeps it: JSON, the same in both stores.
pub(super) fn encode(timer: &Scheduled) -> Result<String, super::StoreError> {
    serde_json::to_string(timer)
        .map_err(|e| super::StoreError::Unavailable(format!("a timer does not serialise: {e}")))
}
