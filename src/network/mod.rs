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
    let mut nonce: Nonce = [0; 96];
    for chunk in nonce.chunks_mut(16) {
        chunk.copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    }
    let text = answer(offer.text(), &nonce).ok()?;
    Sdp::parse(text, SdpPolicy::Strict).ok()
}
