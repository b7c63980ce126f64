//! Development-token minting (the `token` command, tests and benchmarks): HS256 with the
//! configured secret, or an RS*/PS*/ES*/EdDSA algorithm with a private key in PEM form. The tokens carry
//! the configured `iss` and `aud`, so the service's own verifier accepts them.

use std::fs;

use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
use serde_json::json;

use super::verifier::now;
use crate::config::{AuthConfig, ConfigError};

/// Mints an HS256 token with the configured secret (the `token` command). A negative `ttl_seconds`
/// gives a token that has already expired.
pub fn mint(
    auth: &AuthConfig,
    sub: &str,
    scope: &str,
    client_id: Option<&str>,
    ttl_seconds: i64,
) -> Result<String, ConfigError> {
    let secret = auth.hs256_in_force().ok_or_else(|| ConfigError::Invalid {
        key: "auth.hs256_secret".into(),
        reason: "HS256 is off (the secret is unset or \"\", or it is the development key beside a key source of your own): mint with --private-key, or get a token from your identity provider".into(),
    })?;
    let key = EncodingKey::from_secret(secret.expose().as_bytes());
    let spec = TokenSpec {
        sub,
        scope,
        client_id,
        ttl_seconds,
    };
    mint_with(&key, Algorithm::HS256, auth, &spec)
}

/// What a minted token says: its subject, scopes, consumer and lifetime (negative: expired).
#[derive(Debug, Clone, Copy)]
pub struct TokenSpec<'a> {
    pub sub: &'a str,
    pub scope: &'a str,
    pub client_id: Option<&'a str>,
    pub ttl_seconds: i64,
}

/// Mints a token signed with a private key in PEM form (`token --private-key`), for deployments
/// (and load tests) that verify with `auth.public_keys`.
pub fn mint_with_private_key(
    pem_path: &std::path::Path,
    algorithm: Algorithm,
    auth: &AuthConfig,
    spec: &TokenSpec<'_>,
) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: "--private-key".into(),
        reason,
    };
    let pem = fs::read(pem_path)
        .map_err(|e| invalid(format!("cannot read {}: {e}", pem_path.display())))?;
    let key = match algorithm.family() {
        AlgorithmFamily::Rsa => EncodingKey::from_rsa_pem(&pem),
        AlgorithmFamily::Ec => EncodingKey::from_ec_pem(&pem),
        AlgorithmFamily::Ed => EncodingKey::from_ed_pem(&pem),
        AlgorithmFamily::Hmac => return Err(invalid("HS algorithms use auth.hs256_secret".into())),
    }
    .map_err(|e| invalid(format!("not a {algorithm:?} private key: {e}")))?;
    mint_with(&key, algorithm, auth, spec)
}

/// Signs the claims of `spec` (issued now) with `key`.
fn mint_with(
    key: &EncodingKey,
    algorithm: Algorithm,
    auth: &AuthConfig,
    spec: &TokenSpec<'_>,
) -> Result<String, ConfigError> {
    let now = now() as i64;
    let mut claims = json!({
        "sub": spec.sub,
        "scope": spec.scope,
        "iat": now,
        "exp": now.saturating_add(spec.ttl_seconds),
    });
    // `client_id`, `iss` and `aud` only when there is one.
    let optional = [
        ("client_id", spec.client_id),
        ("iss", auth.issuer.as_deref()),
        ("aud", auth.audience.as_deref()),
    ];
    for (claim, value) in optional {
        if let Some(value) = value {
            claims[claim] = value.into();
        }
    }
    jsonwebtoken::encode(&Header::new(algorithm), &claims, key).map_err(|e| ConfigError::Invalid {
        key: "token".into(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthError, Verifier};
    use crate::config::Config;

    #[test]
    fn a_minted_token_carries_the_spec_and_the_configured_issuer_and_audience() {
        let mut auth = Config::embedded().auth;
        auth.issuer = Some("https://auth.example.com".into());
        auth.audience = Some("camara-webrtc".into());
        let verifier = Verifier::from_config(&auth).unwrap();
        let token = mint(&auth, "tel:+17085854000", "a b", Some("app"), 60).unwrap();
        let claims = verifier.verify(&token).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("tel:+17085854000"));
        assert_eq!(claims.client_id.as_deref(), Some("app"));
        assert_eq!(claims.scope, ["a", "b"]);
        let expired = mint(&auth, "tel:+17085854000", "a", None, -120).unwrap();
        assert_eq!(verifier.verify(&expired), Err(AuthError::Expired));
    }

    #[test]
    fn minting_names_what_is_missing() {
        let mut auth = Config::embedded().auth;
        auth.hs256_secret = None;
        let err = mint(&auth, "app", "a", None, 60).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("auth.hs256_secret: HS256 is off"),
            "{err}"
        );
        // The development key is off beside a key source of the operator's own.
        let mut beside = Config::embedded().auth;
        beside.public_keys = vec!["key.pem".into()];
        let err = mint(&beside, "app", "a", None, 60).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("auth.hs256_secret: HS256 is off"),
            "{err}"
        );
        let spec = TokenSpec {
            sub: "app",
            scope: "a",
            client_id: None,
            ttl_seconds: 60,
        };
        let pem = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/keys/ec256-private.pem"
        ));
        let err = mint_with_private_key(pem, Algorithm::HS256, &auth, &spec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--private-key: HS algorithms use auth.hs256_secret"
        );
    }
}
