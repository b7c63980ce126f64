//! Bearer tokens: verification keys, claims → [`Caller`], and development-token minting.

mod caller;
mod verifier;

pub use caller::{Caller, Scope};
pub use verifier::{AuthError, Claims, Verifier, mint};
