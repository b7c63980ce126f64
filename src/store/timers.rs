//! The network's timers (DESIGN §12): a script's next step and a call's no-answer deadline, each
//! due at a time, kept in the store so that with Redis exactly one replica fires each and a dead
//! replica's timers are taken over. A timer is scheduled in the same step as the session it is
//! for ([`SessionStore::insert_with`](super::SessionStore::insert_with)), and ends in the same
//! step as the timer that follows it is scheduled ([`TimerStore::advance`]), so none is lost
//! between the two.

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
            key: format!("{session}/step/{index}"),
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

/// Where the timers live. A claimed timer stays in the store, due again when its lease is over,
/// until [`TimerStore::advance`] ends it: a process that dies holding it loses nothing.
pub trait TimerStore: Send + Sync + 'static {
    /// Up to `limit` timers due at `now_ms`, soonest first, each claimed for `lease`: no other
    /// caller gets it until the lease is over.
    fn claim_timers(
        &self,
        now_ms: u64,
        lease: Duration,
        limit: usize,
    ) -> StoreFuture<'_, Vec<Scheduled>>;

    /// Ends the timer `key` and schedules `next` in the same step; `false`, and nothing
    /// scheduled, when `key` has ended already (another claimant finished it).
    fn advance<'a>(&'a self, key: &'a str, next: Option<Scheduled>) -> StoreFuture<'a, bool>;

    /// When the soonest timer is due (or its lease ends), if there is one.
    fn next_due(&self) -> StoreFuture<'_, Option<u64>>;
}
