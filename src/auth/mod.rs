//! Bearer tokens: verification keys, claims → [`Caller`], and development-token minting.

mod cache;
mod caller;
mod verifier;

pub use cache::TokenCache;
pub use caller::{Caller, Scope};
pub use verifier::{AuthError, Claims, TokenSpec, Verifier, mint, mint_with_private_key};
