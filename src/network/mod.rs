//! The simulated far end of calls (DESIGN §12): the test numbers and their scripts
//! ([`numbers`]); the network's own transition table is
//! [`SessionStatus::network_targets`](crate::domain::SessionStatus::network_targets).

pub mod numbers;
pub mod timers;

pub use numbers::{Numbers, builtin};

use std::sync::Arc;
use std::time::Duration;

use crate::config::NetworkConfig;
use crate::domain::sdp::answer::{Nonce, answer};
use crate::domain::{
    Address, Registration, Sdp, SdpPolicy, Session, SessionId, SessionStatus, TransitionError,
};
use crate::store::{RegistrationStore, Scheduled, ScriptStep, SessionStore, StoreError, now_ms};

/// The built-in number whose script `default_behaviour = "answer"` plays for everyone else.
const ANSWERING: &str = "tel:+12025550100";

/// The active registrations of `receiver`'s phone number (none for an address without one),
/// soonest expiry first.
pub async fn registrations_of(
    registrations: &dyn RegistrationStore,
    receiver: &Address,
) -> Result<Vec<Registration>, StoreError> {
    match receiver.phone_number() {
        Some(number) => registrations.number_registrations(number, now_ms()).await,
        None => Ok(Vec::new()),
    }
}

/// The registration of `found` (a receiver's, soonest expiry first) a call is delivered to (on
/// net, or from the admin API): of those that are proven (the network knows the device holds
/// the number) and are not of the consumer `except` (the caller's own), the one expiring last.
pub fn receiving<'a>(found: &'a [Registration], except: Option<&str>) -> Option<&'a Registration> {
    (found.iter().rev()).find(|r| r.proven && Some(r.owner.as_str()) != except)
}

/// The network as the service runs it: the scripted numbers, the no-answer time, what the far
/// end of anyone else does, and the scheduler's wake-up.
///
/// The simulated far end (the test numbers, `default_behaviour`) plays only while
/// `network.admin_api` is on, as the admin API and console do: a production service scripts no
/// number. On-net calls and their no-answer time are the network's own, always on.
#[derive(Debug)]
pub struct Network {
    pub numbers: Numbers,
    /// `network.no_answer_seconds` × `time_scale`.
    pub no_answer: Duration,
    /// With `default_behaviour = "answer"`: the built-in `tel:+12025550100`'s script, scaled.
    default: Option<Arc<[ScriptStep]>>,
    /// `network.admin_api`: the simulated far end plays.
    simulating: bool,
    /// Wakes the scheduler when this instance schedules a timer.
    wake: Arc<tokio::sync::Notify>,
}

impl Network {
    pub fn from_config(config: &NetworkConfig) -> Self {
        let builtin_only = NetworkConfig {
            numbers: Vec::new(),
            ..config.clone()
        };
        let answers = config.default_behaviour == crate::config::DefaultBehaviour::Answer;
        Self {
            numbers: Numbers::from_config(config),
            no_answer: numbers::scaled(
                Duration::from_secs(config.no_answer_seconds),
                config.time_scale,
            ),
            default: answers
                .then(|| Numbers::from_config(&builtin_only).plan(ANSWERING))
                .flatten(),
            simulating: config.admin_api,
            wake: Arc::default(),
        }
    }

    /// What wakes the scheduler ([`timers::fire_due_timers`]).
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.wake)
    }

    /// Tells the scheduler a timer was scheduled, so that it looks before its next poll.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether the simulator plays the far end of calls to `receiver` (a scripted number): such
    /// a call is never delivered on-net.
    pub fn scripts(&self, receiver: &Address) -> bool {
        self.simulating && self.numbers.script(receiver.as_str()).is_some()
    }

    /// The timers a call placed at `placed_ms` starts with: a scripted receiver's script, or
    /// (for a receiver with no registration here, `registered` false)
    /// `default_behaviour = "answer"`'s, with the no-answer deadline; an on-net call's no-answer
    /// deadline alone; none otherwise.
    pub fn outgoing_timers(
        &self,
        session: &Session,
        placed_ms: u64,
        registered: bool,
    ) -> Vec<Scheduled> {
        let plan = (self.numbers.plan(session.receiver.as_str()))
            .or_else(|| self.default.clone().filter(|_| !registered))
            .filter(|_| self.simulating);
        match plan {
            Some(plan) => self.timers(&session.id, placed_ms, &plan),
            None if session.is_on_net() => self.timers(&session.id, placed_ms, &Arc::from([])),
            None => Vec::new(),
        }
    }

    /// The first step of `plan` (when it has one) and the no-answer deadline of a call placed
    /// at `placed_ms`.
    pub fn timers(
        &self,
        id: &SessionId,
        placed_ms: u64,
        plan: &Arc<[ScriptStep]>,
    ) -> Vec<Scheduled> {
        let deadline = placed_ms.saturating_add(crate::store::millis(self.no_answer));
        (Scheduled::step(id, placed_ms, 0, plan).into_iter())
            .chain([Scheduled::no_answer(id, deadline)])
            .collect()
    }
}

/// The session after the network moves it to `status` with the SDPs and reason given, or why
/// the network's table refuses it; to InProgress or Connected without an answer, with one
/// generated for the offer in force after the move (one sent with it included).
pub fn moved(
    session: &Session,
    status: SessionStatus,
    offer: Option<Sdp>,
    answer: Option<Sdp>,
    reason: Option<Arc<str>>,
) -> Result<Session, TransitionError> {
    let mut next = session.network_move(status, offer, answer, reason)?;
    if let Some(generated) = generated_answer(&next, status) {
        next.answer = Some(generated);
    }
    Ok(next)
}

/// What [`apply`] did.
#[derive(Debug)]
pub enum Applied {
    /// Written: the session as it is now.
    Moved(Arc<Session>),
    /// Nothing to do for the session as it is (the session, as read).
    Left(Arc<Session>),
    /// The network's table refuses the move from the session's status.
    Refused(TransitionError),
    /// Absent, or DELETEd by its client (gone for the API, DESIGN §4).
    Gone,
}

/// How many times a move is tried again when a client's write wins the race.
const MOVE_ATTEMPTS: usize = 8;

/// Applies a network move to the session `id` as the store holds it: `decide` gives the session
/// after it (`Ok(None)`: nothing to do), written with compare-and-swap and decided again on the
/// session a client's write left, up to [`MOVE_ATTEMPTS`] times
/// ([`StoreError::VersionConflict`] after that).
pub async fn apply(
    sessions: &dyn SessionStore,
    id: &SessionId,
    decide: impl Fn(&Session) -> Result<Option<Session>, TransitionError>,
) -> Result<Applied, StoreError> {
    let mut current = 0;
    for _ in 0..MOVE_ATTEMPTS {
        let Some(stored) = (sessions.get(id).await?).filter(|c| !c.session.ended) else {
            return Ok(Applied::Gone);
        };
        current = stored.version;
        let next = match decide(&stored.session) {
            Ok(Some(next)) => next,
            Ok(None) => return Ok(Applied::Left(stored.session)),
            Err(refused) => return Ok(Applied::Refused(refused)),
        };
        let (from, to) = (stored.session.status, next.status);
        let next = Arc::new(next);
        match sessions
            .compare_and_swap(stored.version, Arc::clone(&next))
            .await
        {
            Ok(version) => {
                crate::telemetry::metrics::transition(Some(from), to);
                tracing::info!(session = id.as_str(), from = %from, to = %to, version, "network move");
                return Ok(Applied::Moved(next));
            }
            Err(StoreError::VersionConflict { .. }) => {}
            Err(StoreError::NotFound) => return Ok(Applied::Gone),
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::VersionConflict { current })
}

/// The answer the network gives with a move to `status` when none was given: one generated for
/// the session's offer (DESIGN §12), for InProgress (early media) and Connected, while the
/// session has an offer and no answer yet. `None` when the offer cannot be answered.
pub fn generated_answer(session: &Session, status: SessionStatus) -> Option<Sdp> {
    let answers = matches!(status, SessionStatus::InProgress | SessionStatus::Connected);
    if !answers || session.answer.is_some() {
        return None;
    }
    let offer = session.offer.as_ref()?;
    let mut nonce: Nonce = [0; 128];
    for chunk in nonce.chunks_mut(16) {
        chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    // The reasons are named, never quoted: an SDP's lines carry keys and passwords.
    let generated = answer(offer.text(), &nonce)
        .map_err(|_| "the offer has no answerable media section")
        .and_then(|text| {
            Sdp::parse(text, SdpPolicy::Strict)
                .map_err(|_| "the answer does not pass the strict check")
        });
    generated
        .inspect_err(|why| {
            tracing::info!(
                session = session.id.as_str(),
                why,
                "no answer generated for the offer"
            )
        })
        .ok()
}
