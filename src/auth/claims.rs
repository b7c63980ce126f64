//! What a verified token says ([`Claims`]) and why a token is refused ([`AuthError`]).

use std::sync::OnceLock;

use serde::Deserialize;

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
    #[error("the access token has a crit header, and no extension is understood")]
    Critical,
    #[error("the access token's key is not known")]
    UnknownKey,
    #[error("the access token cannot be verified: the signing keys are not available")]
    KeysUnavailable,
    #[error("the access token names no API consumer (client_id, azp or sub)")]
    NoConsumer,
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
            Self::Critical => "crit",
            Self::UnknownKey => "unknown_key",
            Self::KeysUnavailable => "keys_unavailable",
            Self::NoConsumer => "no_consumer",
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
    /// The API consumer: `client_id`, else `azp`, else `sub`; `None` when the first of them
    /// present is empty, or none is. Such a token is refused, so every caller has an owner.
    pub fn consumer(&self) -> Option<&str> {
        self.client_id
            .as_deref()
            .or(self.azp.as_deref())
            .or(self.sub.as_deref())
            .filter(|consumer| !consumer.is_empty())
    }

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
        // RFC 6749 §3.3: scopes are delimited by the space character, and nothing else.
        Some(ScopeClaim::Text(text)) => text
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        Some(ScopeClaim::List(list)) => list,
    })
}
