//! CAMARA's fifteen session statuses and the two transition tables: the one a client PUT is
//! checked against, and the network's own (the far end and the admin API, DESIGN §12).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A media session's status, exactly as CAMARA's `SessionStatus` enum spells it. Read from a
/// string, so a value of another type is a type error and an unknown name lists the known ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String")]
pub enum SessionStatus {
    Initial,
    InProgress,
    Ringing,
    Proceeding,
    Connected,
    Terminated,
    Hold,
    Resume,
    SessionCancelled,
    Declined,
    Failed,
    Waiting,
    NoAnswer,
    NotReachable,
    Busy,
}

use SessionStatus::*;

impl SessionStatus {
    /// Every status, in the order of CAMARA's enum.
    pub const ALL: [SessionStatus; 15] = [
        Initial,
        InProgress,
        Ringing,
        Proceeding,
        Connected,
        Terminated,
        Hold,
        Resume,
        SessionCancelled,
        Declined,
        Failed,
        Waiting,
        NoAnswer,
        NotReachable,
        Busy,
    ];

    /// The statuses a client PUT may move a session to *from* `self`: the transition table.
    ///
    /// This match is the only place the state machine lives. It has no `_` arm, so a new status
    /// cannot be added without deciding its row.
    pub const fn client_targets(self) -> &'static [SessionStatus] {
        match self {
            Initial | InProgress | Ringing | Proceeding | Waiting => {
                &[InProgress, Ringing, Connected]
            }
            Connected => &[Connected, Hold],
            Hold => &[Hold, Resume],
            Resume => &[Resume, Hold, Connected],
            Terminated | SessionCancelled | Declined | Failed | NoAnswer | NotReachable | Busy => {
                &[]
            }
        }
    }

    /// The statuses the network (the far end of a call, the admin API) may move a session to
    /// *from* `self`: before it is answered, any progress or ending of an unanswered call; once
    /// answered, hold, resume, connected again or terminated; from a terminal status, nothing.
    ///
    /// Like [`SessionStatus::client_targets`], one match without a `_` arm.
    pub const fn network_targets(self) -> &'static [SessionStatus] {
        match self {
            Initial | InProgress | Ringing | Proceeding | Waiting => &[
                InProgress,
                Ringing,
                Proceeding,
                Waiting,
                Connected,
                Busy,
                Declined,
                NoAnswer,
                NotReachable,
                Failed,
                SessionCancelled,
            ],
            Connected | Hold | Resume => &[Hold, Resume, Connected, Terminated],
            Terminated | SessionCancelled | Declined | Failed | NoAnswer | NotReachable | Busy => {
                &[]
            }
        }
    }

    /// Checks a network move from `self` to `to`.
    pub fn network_transition(self, to: SessionStatus) -> Result<SessionStatus, TransitionError> {
        match self.network_targets().contains(&to) {
            true => Ok(to),
            false => Err(TransitionError::NotAllowed { from: self, to }),
        }
    }

    /// Whether a client may ever request this status in a PUT (the others are set by the network).
    pub const fn is_client_settable(self) -> bool {
        matches!(self, InProgress | Ringing | Connected | Hold | Resume)
    }

    /// Whether the session has ended: no client PUT can move it any more.
    pub const fn is_terminal(self) -> bool {
        self.client_targets().is_empty()
    }

    /// Whether the call was answered at some point (it is or was `Connected`).
    pub const fn is_established(self) -> bool {
        matches!(self, Connected | Hold | Resume)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Initial => "Initial",
            InProgress => "InProgress",
            Ringing => "Ringing",
            Proceeding => "Proceeding",
            Connected => "Connected",
            Terminated => "Terminated",
            Hold => "Hold",
            Resume => "Resume",
            SessionCancelled => "SessionCancelled",
            Declined => "Declined",
            Failed => "Failed",
            Waiting => "Waiting",
            NoAnswer => "NoAnswer",
            NotReachable => "NotReachable",
            Busy => "Busy",
        }
    }

    /// Checks a client's requested move from `self` to `to`.
    pub fn client_transition(self, to: SessionStatus) -> Result<SessionStatus, TransitionError> {
        if !to.is_client_settable() {
            return Err(TransitionError::NetworkOnly(to));
        }
        if self.client_targets().contains(&to) {
            Ok(to)
        } else {
            Err(TransitionError::NotAllowed { from: self, to })
        }
    }
}

/// Why a requested status change was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("status {0} is set by the network; use DELETE to end a session")]
    NetworkOnly(SessionStatus),
    #[error("session status {from} cannot change to {to}")]
    NotAllowed {
        from: SessionStatus,
        to: SessionStatus,
    },
}

impl fmt::Display for SessionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string is not one of CAMARA's fifteen statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownStatus;

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must be one of ")?;
        for (i, status) in SessionStatus::ALL.iter().enumerate() {
            f.write_str(if i == 0 { "" } else { ", " })?;
            f.write_str(status.as_str())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownStatus {}

impl TryFrom<String> for SessionStatus {
    type Error = UnknownStatus;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}

impl FromStr for SessionStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;
    use proptest::sample::select;

    use super::*;

    #[test]
    fn names_round_trip() {
        for status in SessionStatus::ALL {
            assert_eq!(status.as_str().parse::<SessionStatus>(), Ok(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        assert_eq!("connected".parse::<SessionStatus>(), Err(UnknownStatus));
    }

    #[test]
    fn only_client_settable_statuses_are_targets() {
        for from in SessionStatus::ALL {
            for to in from.client_targets() {
                assert!(to.is_client_settable(), "{from} -> {to}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Any sequence of client PUTs moves a session only to statuses a client may set, never
        /// out of a terminal status, and never from an answered call back to an unanswered one.
        #[test]
        fn client_puts_stay_within_the_table(
            start in select(SessionStatus::ALL.to_vec()),
            requests in vec(select(SessionStatus::ALL.to_vec()), 0..24),
        ) {
            let mut status = start;
            for to in requests {
                match status.client_transition(to) {
                    Ok(next) => {
                        prop_assert_eq!(next, to);
                        prop_assert!(to.is_client_settable() && !status.is_terminal());
                        prop_assert!(!status.is_established() || next.is_established());
                        status = next;
                    }
                    Err(TransitionError::NetworkOnly(refused)) => {
                        prop_assert!(!refused.is_client_settable());
                    }
                    Err(TransitionError::NotAllowed { from, to: refused }) => {
                        prop_assert_eq!((from, refused), (status, to));
                        prop_assert!(!status.client_targets().contains(&to));
                    }
                }
            }
            if start.is_terminal() {
                prop_assert_eq!(status, start);
            }
        }
    }

    /// The network's table, walked 15 × 15 against DESIGN §12's words written out here as the
    /// rows they describe.
    #[test]
    fn the_network_moves_as_design_12_says() {
        let unanswered = [Initial, InProgress, Ringing, Proceeding, Waiting];
        let answered = [Connected, Hold, Resume];
        let before_connected = "InProgress Ringing Proceeding Waiting Connected Busy Declined \
                                NoAnswer NotReachable Failed SessionCancelled";
        let after_connected = "Hold Resume Connected Terminated";
        let mut allowed = 0;
        for from in SessionStatus::ALL {
            let row = match () {
                _ if unanswered.contains(&from) => before_connected,
                _ if answered.contains(&from) => after_connected,
                _ => "",
            };
            let row: Vec<SessionStatus> =
                row.split_whitespace().map(|s| s.parse().unwrap()).collect();
            for to in SessionStatus::ALL {
                let expected = match row.contains(&to) {
                    true => Ok(to),
                    false => Err(TransitionError::NotAllowed { from, to }),
                };
                assert_eq!(from.network_transition(to), expected, "{from} -> {to}");
                allowed += usize::from(expected.is_ok());
            }
            // A status the network cannot leave is one a client cannot leave either.
            assert_eq!(
                from.network_targets().is_empty(),
                from.is_terminal(),
                "{from}"
            );
        }
        assert_eq!(allowed, 5 * 11 + 3 * 4);
    }

    #[test]
    fn network_only_status_is_refused_before_the_table() {
        assert_eq!(
            Connected.client_transition(Terminated),
            Err(TransitionError::NetworkOnly(Terminated))
        );
        assert_eq!(
            Terminated.client_transition(Hold),
            Err(TransitionError::NotAllowed {
                from: Terminated,
                to: Hold
            })
        );
    }
}
