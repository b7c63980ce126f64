//! Token verification with jsonwebtoken (aws-lc-rs backend). Each key is bound to one algorithm
//! family, and a token is only ever checked against keys of its header's family: an HS256 token is
//! never verified with a public key's bytes (algorithm confusion), and `alg: none` never parses.
//! A token with a `crit` header is refused (RFC 7515 §4.1.11: no extension is understood here).
//! The verified-token cache is emptied whenever the JWKS keys in force change or expire, so no
//! cached token outlives the key that verified it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, Validation};

use super::cache::TokenCache;
use super::claims::{AuthError, Claims};
use super::keys::{Jwks, JwksError, Key, fixed_keys};
use crate::config::{AuthConfig, ConfigError};

/// Verifies bearer tokens against the configured keys, remembering verified ones until they expire.
pub struct Verifier {
    /// The HS256 secret in force and the PEM public keys.
    fixed: Vec<Key>,
    /// The JWKS source, when one is configured.
    jwks: Option<Jwks>,
    /// One set of checks per algorithm family, built once.
    validations: Vec<(AlgorithmFamily, Validation)>,
    issuer: Option<String>,
    cache: TokenCache,
    /// Bumped whenever the keys in force change or expire, before the cache is emptied: a
    /// verification that saw the old keys never leaves an entry behind (see [`Self::verify`]).
    generation: AtomicU64,
}

/// The algorithms each family accepts.
const FAMILIES: [(AlgorithmFamily, &[Algorithm]); 4] = [
    (
        AlgorithmFamily::Hmac,
        &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
    ),
    (
        AlgorithmFamily::Rsa,
        &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
    ),
    (AlgorithmFamily::Ec, &[Algorithm::ES256, Algorithm::ES384]),
    (AlgorithmFamily::Ed, &[Algorithm::EdDSA]),
];

fn validation(auth: &AuthConfig, algorithms: &[Algorithm]) -> Validation {
    let mut validation = Validation::new(algorithms[0]);
    validation.algorithms = algorithms.to_vec();
    validation.leeway = auth.leeway_seconds;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp"]);
    if let Some(issuer) = &auth.issuer {
        validation.set_issuer(&[issuer]);
    }
    match &auth.audience {
        Some(audience) => validation.set_audience(&[audience]),
        None => validation.validate_aud = false,
    }
    validation
}

/// Seconds since the Unix epoch (0 for a clock before it).
pub(super) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("fixed_keys", &self.fixed.len())
            .field("jwks", &self.jwks.as_ref().map(Jwks::describe))
            .finish_non_exhaustive()
    }
}

impl Verifier {
    /// The verifier `auth` configures. Its JWKS, if any, is not read yet: see [`Self::load_keys`].
    pub fn from_config(auth: &AuthConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            fixed: fixed_keys(auth)?,
            jwks: Jwks::from_config(auth)?,
            validations: FAMILIES
                .iter()
                .map(|(family, algorithms)| (*family, validation(auth, algorithms)))
                .collect(),
            issuer: auth.issuer.clone(),
            cache: TokenCache::new(auth.token_cache_size),
            generation: AtomicU64::new(0),
        })
    }

    /// Reads the JWKS, if one is configured. Until a read succeeds, tokens that only a JWKS key
    /// could verify are refused.
    pub async fn load_keys(&self) -> Result<(), JwksError> {
        if let Some(jwks) = &self.jwks
            && jwks.read().await?
        {
            self.forget_tokens();
        }
        Ok(())
    }

    /// Whether every configured key source is in force (a JWKS, if configured, was read and is
    /// not past its max age).
    pub fn keys_in_force(&self) -> bool {
        self.jwks.as_ref().is_none_or(|jwks| jwks.keys().is_some())
    }

    /// Keeps the JWKS fresh while the verifier lives: reads it every `jwks_refresh_seconds`
    /// (after a failed read, again after the cooldown, and at least a second later), and at the
    /// moment the set in force passes its max age drops it and empties the token cache. Returns at
    /// once when no JWKS is configured, and when the verifier is dropped.
    pub async fn keep_keys_fresh(verifier: Weak<Self>) {
        let retry = |jwks: &Jwks, ok: bool| {
            if ok {
                jwks.refresh
            } else {
                jwks.cooldown.max(Duration::from_secs(1))
            }
        };
        let Some(first) = verifier
            .upgrade()
            .and_then(|v| Some(retry(v.jwks.as_ref()?, v.keys_in_force())))
        else {
            return;
        };
        let mut next_read = tokio::time::Instant::now() + first;
        loop {
            // Wake for the next read, or earlier when the set in force expires before it.
            let Some((wake, read)) = verifier.upgrade().and_then(|v| {
                let remaining = v.jwks.as_ref()?.remaining();
                let until_read = next_read.saturating_duration_since(tokio::time::Instant::now());
                Some(if !remaining.is_zero() && remaining < until_read {
                    (remaining + Duration::from_millis(1), false)
                } else {
                    (until_read, true)
                })
            }) else {
                return;
            };
            tokio::time::sleep(wake).await;
            let Some(verifier) = verifier.upgrade() else {
                return;
            };
            let Some(jwks) = &verifier.jwks else { return };
            if jwks.expire() {
                verifier.forget_tokens();
                tracing::error!(
                    source = jwks.describe(),
                    max_age_seconds = jwks.max_age.as_secs(),
                    "the JWKS could not be read for its max age: tokens only it could verify are refused until a read succeeds"
                );
            }
            if read {
                let ok = verifier.read_jwks(jwks, false).await;
                next_read = tokio::time::Instant::now() + retry(jwks, ok);
            }
        }
    }

    /// Reads `jwks` (`prompted`: for a token's unknown key, so only outside the cooldown), empties
    /// the token cache when the keys changed, and logs the outcome; whether the read succeeded.
    async fn read_jwks(&self, jwks: &Jwks, prompted: bool) -> bool {
        let outcome = if prompted {
            jwks.read_unless_cooling().await
        } else {
            jwks.read().await
        };
        match outcome {
            Ok(changed) => {
                if changed {
                    self.forget_tokens();
                    tracing::info!(source = jwks.describe(), "JWKS keys changed");
                }
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "JWKS read failed; the last good set stays in force until its max age");
                false
            }
        }
    }

    /// How many verified tokens are cached now.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Verifies the value of an `Authorization` header and returns the token's claims.
    pub fn verify_header(&self, header: Option<&[u8]>) -> Result<Arc<Claims>, AuthError> {
        let header = header.ok_or(AuthError::MissingHeader)?;
        let header = std::str::from_utf8(header).map_err(|_| AuthError::Malformed)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        self.verify(token.trim())
    }

    /// [`Self::verify_header`], reading the JWKS again first when the token names a key not in the
    /// set (or no set is in force), unless a read started within the cooldown.
    pub async fn authenticate(&self, header: Option<&[u8]>) -> Result<Arc<Claims>, AuthError> {
        match self.verify_header(header) {
            Err(AuthError::UnknownKey | AuthError::KeysUnavailable) if self.jwks.is_some() => {
                let jwks = self.jwks.as_ref().expect("checked above");
                self.read_jwks(jwks, true).await;
                self.verify_header(header)
            }
            outcome => outcome,
        }
    }

    /// Verifies one compact JWT: from the cache when this exact token was verified before and has
    /// not reached its `exp`, else in full (and then cached).
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        let now = now();
        if let Some(claims) = self.cache.get(token, now) {
            return Ok(claims);
        }
        let generation = self.generation.load(Ordering::Acquire);
        let claims = Arc::new(self.verify_signature(token)?);
        if claims.consumer().is_none() {
            return Err(AuthError::NoConsumer);
        }
        self.cache.insert(token, Arc::clone(&claims), now);
        // The keys changed while it was verified: the entry may rest on a key no longer in force.
        if self.generation.load(Ordering::Acquire) != generation {
            self.cache.remove(token);
        }
        Ok(claims)
    }

    /// Empties the token cache because the keys in force changed or expired; the generation goes
    /// first, so a verification still running on the old keys drops its own entry.
    fn forget_tokens(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cache.clear();
    }

    /// Full verification: header, signature with the keys of the header's family, claims.
    fn verify_signature(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => {
                AuthError::Algorithm
            }
            _ => AuthError::Malformed,
        })?;
        if header.crit.is_some() {
            return Err(AuthError::Critical);
        }
        let family = header.alg.family();
        let Some((_, validation)) = self.validations.iter().find(|(f, _)| *f == family) else {
            return Err(AuthError::Algorithm);
        };
        let set = self.jwks.as_ref().and_then(Jwks::keys);
        let jwks_keys = set.as_ref().map_or(&[][..], |set| &set.keys[..]);
        let kid = header.kid.as_deref();
        // A JWKS key is chosen by kid; a token without one tries every key of its family.
        let named = jwks_keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.as_deref() == kid);
        let candidates = self
            .fixed
            .iter()
            .chain(named)
            .filter(|k| k.fits(header.alg));
        let mut outcome = Err(AuthError::Algorithm);
        for key in candidates {
            outcome = jsonwebtoken::decode::<Claims>(token, &key.key, validation)
                .map(|data| data.claims)
                .map_err(|e| match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                    ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => {
                        AuthError::MissingExp
                    }
                    ErrorKind::InvalidIssuer | ErrorKind::MissingRequiredClaim(_)
                        if self.issuer.is_some() =>
                    {
                        AuthError::Issuer
                    }
                    ErrorKind::InvalidAudience => AuthError::Audience,
                    ErrorKind::InvalidSignature
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidEddsaKey
                    | ErrorKind::InvalidKeyFormat => AuthError::Signature,
                    ErrorKind::InvalidAlgorithm => AuthError::Algorithm,
                    _ => AuthError::Malformed,
                });
            // Only a bad signature means "try the next key"; any other verdict is final.
            if !matches!(outcome, Err(AuthError::Signature)) {
                break;
            }
        }
        let no_key_fits = matches!(outcome, Err(AuthError::Signature | AuthError::Algorithm));
        if !no_key_fits || self.jwks.is_none() {
            return outcome;
        }
        // A JWKS is configured and no key verified the token: say whether a read could help.
        match &set {
            None => Err(AuthError::KeysUnavailable),
            Some(set)
                if kid
                    .is_some_and(|kid| set.keys.iter().all(|k| k.kid.as_deref() != Some(kid))) =>
            {
                Err(AuthError::UnknownKey)
            }
            Some(_) => outcome,
        }
    }
}
