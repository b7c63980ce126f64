//! The simulated far end of calls (DESIGN §12): the test numbers and their scripts
//! ([`numbers`]); the network's own transition table is
//! [`SessionStatus::network_targets`](crate::domain::SessionStatus::network_targets).

pub mod numbers;

pub use numbers::{Numbers, builtin};
