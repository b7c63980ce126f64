//! The simulated far end of calls (DESIGN §12): the test numbers and their scripts
//! ([`numbers`]); the network's own transition table is
//! [`SessionStatus::network_targets`](crate::domain::SessionStatus::network_targets).

pub mod numbers;

pub use numbers::{Numbers, builtin};

use crate::domain::sdp::answer::{Nonce, answer};
use crate::domain::{Sdp, SdpPolicy, Session, SessionStatus};

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
