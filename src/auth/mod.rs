//! Bearer tokens: verification keys, claims → [`Caller`], and development-token minting.

mod cache;
mod caller;
mod claims;
pub(crate) mod keys;
mod mint;
mod verifier;

pub use cache::TokenCache;
pub use caller::{Caller, Scope};
pub use claims::{AuthError, Claims};
pub use keys::JwksError;
pub use mint::{TokenSpec, mint, mint_with_private_key};
pub use verifier::Verifier;
