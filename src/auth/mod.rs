//! Bearer tokens: verification keys, claims → [`Caller`], and development-token minting.

mod cache;
mod caller;
mod mint;
mod verifier;

pub use cache::TokenCache;
pub use caller::{Caller, Scope};
pub use mint::{TokenSpec, mint, mint_with_private_key};
pub use verifier::{AuthError, Claims, Verifier};
