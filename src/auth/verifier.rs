//! Token verification with jsonwebtoken (aws-lc-rs backend). Each key is bound to one algorithm
//! family, and a token is only ever checked against keys of its header's family: an HS256 token is
//! never verified with a public key's bytes (algorithm confusion), and `alg: none` never parses.

use std::fs;
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;

use super::cache::TokenCache;
use crate::config::{AuthConfig, ConfigError};
use crate::domain::Address;

/// Why a request is not authenticated. The text is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header is missing")]
    MissingHeader,
    #[error("the Authorization header must use the Bearer scheme")]
    NotBearer,
    #[error("the access token is malformed")]
    Malformed,
    #[error("the access token's algorithm is not accepted")]
    Algorithm,
    #[error("the access token's signature is invalid")]
    Signature,
    #[error("the access token has expired")]
    Expired,
    #[error("the access token is not valid yet")]
    NotYetValid,
    #[error("the access token has no exp claim")]
    MissingExp,
    #[error("the access token's issuer is not accepted")]
    Issuer,
    #[error("the access token's audience is not accepted")]
    Audience,
}

impl AuthError {
    /// A short label for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::NotBearer => "not_bearer",
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::MissingExp => "missing_exp",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
        }
    }
}

/// `scope` as a space-separated string (RFC 8693) or, as some servers send it, an array.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    Text(String),
    List(Vec<String>),
}

/// The claims the service reads; `exp`, `nbf`, `iss` and `aud` are checked by jsonwebtoken.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub sub: Option<String>,
    pub client_id: Option<String>,
    pub azp: Option<String>,
    #[serde(default, deserialize_with = "scopes")]
    pub scope: Vec<String>,
    /// Checked by jsonwebtoken; kept to bound how long the verified token is cached.
    #[serde(default)]
    pub exp: Option<u64>,
    /// `sub` as a subscriber's TEL URI, worked out once per verified token: the token cache
    /// shares these claims between all the requests that carry the token.
    #[serde(skip)]
    pub(super) subscriber: OnceLock<Option<Address>>,
}

/// Claims are equal when the token's claims are: whether the subscriber was worked out yet is
/// not part of them.
impl PartialEq for Claims {
    fn eq(&self, other: &Self) -> bool {
        (&self.sub, &self.client_id, &self.azp, &self.scope, self.exp)
            == (
                &other.sub,
                &other.client_id,
                &other.azp,
                &other.scope,
                other.exp,
            )
    }
}

impl Eq for Claims {}

impl Claims {
    /// The subscriber a 3-legged token acts for: its `sub` as a TEL URI, if it is a phone number.
    pub fn subscriber(&self) -> Option<&Address> {
        self.subscriber
            .get_or_init(|| self.sub.as_deref().and_then(Address::from_phone_number))
            .as_ref()
    }
}

fn scopes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Option::<ScopeClaim>::deserialize(d)? {
        None => Vec::new(),
        Some(ScopeClaim::Text(text)) => text.split_whitespace().map(str::to_owned).collect(),
        Some(ScopeClaim::List(list)) => list,
    })
}

struct Key {
    family: AlgorithmFamily,
    key: DecodingKey,
}

/// Verifies bearer tokens against the configured keys, remembering verified ones until they expire.
pub struct Verifier {
    keys: Vec<Key>,
    /// One set of checks per algorithm family, built once.
    validations: Vec<(AlgorithmFamily, Validation)>,
    issuer: Option<String>,
    cache: TokenCache,
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
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

fn load_pem(path: &std::path::Path, index: usize) -> Result<Key, ConfigError> {
    let key_name = format!("auth.public_keys[{index}]");
    let pem = fs::read(path).map_err(|e| ConfigError::Invalid {
        key: key_name.clone(),
        reason: format!("cannot read {}: {e}", path.display()),
    })?;
    let attempts = [
        (AlgorithmFamily::Rsa, DecodingKey::from_rsa_pem(&pem)),
        (AlgorithmFamily::Ec, DecodingKey::from_ec_pem(&pem)),
        (AlgorithmFamily::Ed, DecodingKey::from_ed_pem(&pem)),
    ];
    attempts
        .into_iter()
        .find_map(|(family, key)| key.ok().map(|key| Key { family, key }))
        .ok_or_else(|| ConfigError::Invalid {
            key: key_name,
            reason: format!(
                "{} is not an RSA, EC or Ed25519 public key in PEM form",
                path.display()
            ),
        })
}

impl Verifier {
    pub fn from_config(auth: &AuthConfig) -> Result<Self, ConfigError> {
        let mut keys = Vec::new();
        if let Some(secret) = &auth.hs256_secret {
            keys.push(Key {
                family: AlgorithmFamily::Hmac,
                key: DecodingKey::from_secret(secret.expose().as_bytes()),
            });
        }
        for (index, path) in auth.public_keys.iter().enumerate() {
            keys.push(load_pem(path, index)?);
        }
        Ok(Self {
            keys,
            validations: FAMILIES
                .iter()
                .map(|(family, algorithms)| (*family, validation(auth, algorithms)))
                .collect(),
            issuer: auth.issuer.clone(),
            cache: TokenCache::new(auth.token_cache_size),
        })
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

    /// Verifies one compact JWT: from the cache when this exact token was verified before and has
    /// not reached its `exp`, else in full (and then cached).
    pub fn verify(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        let now = now();
        if let Some(claims) = self.cache.get(token, now) {
            return Ok(claims);
        }
        let claims = Arc::new(self.verify_signature(token)?);
        self.cache.insert(token, Arc::clone(&claims), now);
        Ok(claims)
    }

    /// Full verification: header, signature with the keys of the header's family, claims.
    fn verify_signature(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => {
                AuthError::Algorithm
            }
            _ => AuthError::Malformed,
        })?;
        let family = header.alg.family();
        let Some((_, validation)) = self.validations.iter().find(|(f, _)| *f == family) else {
            return Err(AuthError::Algorithm);
        };
        let mut outcome = Err(AuthError::Algorithm);
        for key in self.keys.iter().filter(|k| k.family == family) {
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
        outcome
    }
}
