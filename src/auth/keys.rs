//! The keys tokens are verified with: fixed ones from the configuration (the HS256 secret, PEM
//! public keys) and a JWKS read from a file, a URL or the issuer's OpenID discovery document.
//!
//! What this guarantees:
//! - Every key is bound to one algorithm family, and a JWK that names an `alg` to that algorithm
//!   alone. Symmetric (`oct`) keys and keys for encryption (`use: enc`) are never taken from a JWKS.
//! - The JWKS is replaced as a whole by every successful read. A read that fails keeps the last
//!   good set until it is `jwks_max_age_seconds` old; after that no JWKS key verifies anything
//!   (fail closed) until a read succeeds.
//! - Reads are one at a time; one prompted by a token's unknown `kid` happens only when no read
//!   started within `jwks_cooldown_seconds`, so unknown `kid`s cannot make the service hammer
//!   its identity provider.
//! - A fetch times out after 5 s, follows no redirect, and reads at most 1 MiB.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

use crate::config::{AuthConfig, ConfigError};

/// How long one fetch (discovery document or JWKS) may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest discovery document or JWKS read.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// One verification key.
pub(super) struct Key {
    pub family: AlgorithmFamily,
    /// The JWK's `kid`; fixed keys have none.
    pub kid: Option<String>,
    /// The one algorithm the key may verify, when its JWK names one.
    pub algorithm: Option<Algorithm>,
    pub key: DecodingKey,
}

impl Key {
    /// Whether this key may verify a token signed with `alg`.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.family == alg.family() && self.algorithm.is_none_or(|a| a == alg)
    }
}

/// The fixed keys of `auth`: the HS256 secret in force and the PEM public keys.
pub(super) fn fixed_keys(auth: &AuthConfig) -> Result<Vec<Key>, ConfigError> {
    let mut keys = Vec::new();
    if let Some(secret) = auth.hs256_in_force() {
        keys.push(Key {
            family: AlgorithmFamily::Hmac,
            kid: None,
            algorithm: None,
            key: DecodingKey::from_secret(secret.expose().as_bytes()),
        });
    }
    for (index, path) in auth.public_keys.iter().enumerate() {
        keys.push(load_pem(path, index)?);
    }
    Ok(keys)
}

fn load_pem(path: &Path, index: usize) -> Result<Key, ConfigError> {
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
        .find_map(|(family, key)| {
            key.ok().map(|key| Key {
                family,
                kid: None,
                algorithm: None,
                key,
            })
        })
        .ok_or_else(|| ConfigError::Invalid {
            key: key_name,
            reason: format!(
                "{} is not an RSA, EC or Ed25519 public key in PEM form",
                path.display()
            ),
        })
}

/// A JWKS as last read.
pub(super) struct KeySet {
    pub keys: Vec<Key>,
    /// The usable keys as read, to tell whether a new read changed anything.
    document: Vec<Value>,
    read_at: Instant,
}

/// Where the JWKS comes from.
#[derive(Debug)]
enum Source {
    File(PathBuf),
    Url(String),
    /// The `jwks_uri` of this issuer's discovery document.
    Discovery(String),
}

/// Why a JWKS read failed; safe to log (no key material).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("reading {0}: {1}")]
    File(String, String),
    #[error("fetching {0}: {1}")]
    Fetch(String, String),
    #[error("{0}: {1}")]
    Document(String, String),
}

/// The JWKS source and the set last read from it.
pub(super) struct Jwks {
    source: Source,
    client: reqwest::Client,
    current: RwLock<Option<Arc<KeySet>>>,
    /// Held while a read runs; when the last read started.
    last_read: tokio::sync::Mutex<Option<Instant>>,
    pub refresh: Duration,
    pub cooldown: Duration,
    pub max_age: Duration,
}

impl Jwks {
    /// The JWKS source `auth` configures, if any.
    pub fn from_config(auth: &AuthConfig) -> Result<Option<Self>, ConfigError> {
        let source = match (&auth.jwks_file, &auth.jwks_url, auth.oidc_discovery) {
            (Some(file), _, _) => Source::File(file.clone()),
            (None, Some(url), _) => Source::Url(url.clone()),
            (None, None, true) => Source::Discovery(auth.issuer.clone().unwrap_or_default()),
            (None, None, false) => return Ok(None),
        };
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ConfigError::Invalid {
                key: "auth.jwks_url".into(),
                reason: format!("cannot build an HTTPS client: {e}"),
            })?;
        Ok(Some(Self {
            source,
            client,
            current: RwLock::new(None),
            last_read: tokio::sync::Mutex::new(None),
            refresh: Duration::from_secs(auth.jwks_refresh_seconds),
            cooldown: Duration::from_secs(auth.jwks_cooldown_seconds),
            max_age: Duration::from_secs(auth.jwks_max_age_seconds),
        }))
    }

    /// The set in force: the last one read, unless it is older than the max age.
    pub fn keys(&self) -> Option<Arc<KeySet>> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current
            .as_ref()
            .filter(|set| set.read_at.elapsed() <= self.max_age)
            .cloned()
    }

    /// How long the set read last stays in force (zero when there is none).
    pub fn remaining(&self) -> Duration {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.as_ref().map_or(Duration::ZERO, |set| {
            self.max_age.saturating_sub(set.read_at.elapsed())
        })
    }

    /// Drops a set older than the max age; whether one was dropped.
    pub fn expire(&self) -> bool {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let expired = current
            .as_ref()
            .is_some_and(|set| set.read_at.elapsed() > self.max_age);
        if expired {
            *current = None;
        }
        expired
    }

    /// Reads the set now (after any read in progress); `Ok(true)` when the keys changed.
    pub async fn read(&self) -> Result<bool, JwksError> {
        let mut last_read = self.last_read.lock().await;
        *last_read = Some(Instant::now());
        self.read_locked().await
    }

    /// Reads the set unless a read started within the cooldown (then waits for any read in
    /// progress and reads nothing); `Ok(true)` when the keys changed.
    pub async fn read_unless_cooling(&self) -> Result<bool, JwksError> {
        let mut last_read = self.last_read.lock().await;
        if last_read.is_some_and(|at| at.elapsed() < self.cooldown) {
            return Ok(false);
        }
        *last_read = Some(Instant::now());
        self.read_locked().await
    }

    async fn read_locked(&self) -> Result<bool, JwksError> {
        let document: Value = match &self.source {
            Source::File(path) => {
                let text = tokio::fs::read(path)
                    .await
                    .map_err(|e| JwksError::File(path.display().to_string(), e.to_string()))?;
                serde_json::from_slice(&text).map_err(|e| {
                    JwksError::Document(path.display().to_string(), format!("not JSON: {e}"))
                })?
            }
            Source::Url(url) => self.fetch(url).await?,
            Source::Discovery(issuer) => {
                let url = discovery_url(issuer);
                let discovery: Discovery = serde_json::from_value(self.fetch(&url).await?)
                    .map_err(|e| JwksError::Document(shown(&url), e.to_string()))?;
                if discovery.issuer != *issuer {
                    return Err(JwksError::Document(
                        shown(&url),
                        format!(
                            "its issuer {:?} is not auth.issuer {:?} (OpenID Connect Discovery §4.3)",
                            shown(&discovery.issuer),
                            shown(issuer)
                        ),
                    ));
                }
                if let Some(refusal) = key_url_refusal(&discovery.jwks_uri) {
                    return Err(JwksError::Document(
                        shown(&url),
                        format!("its jwks_uri {refusal}"),
                    ));
                }
                self.fetch(&discovery.jwks_uri).await?
            }
        };
        let (keys, document) =
            parse_set(&document).map_err(|reason| JwksError::Document(self.describe(), reason))?;
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let changed = current.as_ref().is_none_or(|set| set.document != document);
        *current = Some(Arc::new(KeySet {
            keys,
            document,
            read_at: Instant::now(),
        }));
        Ok(changed)
    }

    async fn fetch(&self, url: &str) -> Result<Value, JwksError> {
        let failed = |reason: String| JwksError::Fetch(shown(url), reason);
        let mut response = self
            .client
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(failed(format!("answered {}", response.status())));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| failed(e.without_url().to_string()))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(failed(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        serde_json::from_slice(&body).map_err(|e| failed(format!("not JSON: {e}")))
    }

    /// The source, for logs and `check-config`.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::File(path) => format!("jwks_file {}", path.display()),
            Source::Url(url) => format!("jwks_url {}", shown(url)),
            Source::Discovery(issuer) => {
                format!("oidc_discovery {}", shown(&discovery_url(issuer)))
            }
        }
    }
}

/// Why `value` may not be a URL keys are read from: it must be `https`, or `http` to a loopback
/// host (`localhost`, 127.0.0.0/8, `[::1]`: an identity provider on the same machine, as in
/// development) — a key set read in clear text could be replaced on the way.
pub(crate) fn key_url_refusal(value: &str) -> Option<String> {
    let not_a_url = || {
        Some(format!(
            "{:?} is not an http:// or https:// URL",
            shown(value)
        ))
    };
    let Ok(url) = reqwest::Url::parse(value) else {
        return not_a_url();
    };
    let Some(host) = url.host_str() else {
        return not_a_url();
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => None,
        "http" if loopback => None,
        "http" => Some(format!(
            "{:?} is plain http: keys must be read over https (http only from a loopback host)",
            shown(value)
        )),
        _ => not_a_url(),
    }
}

/// A URL as logs and messages show it: as written when it has none of `@?#`, else without user
/// info, query or fragment, which may carry credentials (and "(not a URL)" when it has no host).
pub(crate) fn shown(value: &str) -> String {
    if !value.contains(['@', '?', '#']) {
        return value.to_owned();
    }
    match reqwest::Url::parse(value) {
        Ok(mut url) if url.has_host() => {
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        _ => "(not a URL)".to_owned(),
    }
}

/// `{issuer}/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §4).
fn discovery_url(issuer: &str) -> String {
    format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    )
}

/// The fields of a discovery document the service reads.
#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The usable keys of a JWKS document (and their JSON, to compare sets). A key this service
/// cannot use is skipped with a warning, so one odd key does not take the set down; a set with no
/// usable key is refused.
fn parse_set(document: &Value) -> Result<(Vec<Key>, Vec<Value>), String> {
    let entries = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("not a JWK Set: no \"keys\" array")?;
    let mut keys = Vec::new();
    let mut usable = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        match parse_key(entry) {
            Ok(key) => {
                keys.push(key);
                usable.push(entry.clone());
            }
            Err(reason) => {
                let kid = entry.get("kid").and_then(Value::as_str).unwrap_or("");
                tracing::warn!(index, kid, reason, "JWKS key skipped");
            }
        }
    }
    if keys.is_empty() {
        return Err(format!(
            "none of its {} keys can verify tokens (RSA, EC P-256/P-384, Ed25519 signing keys)",
            entries.len()
        ));
    }
    Ok((keys, usable))
}

fn parse_key(entry: &Value) -> Result<Key, String> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| e.to_string())?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("a key for encryption (use: enc)".into());
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa,
        AlgorithmParameters::EllipticCurve(_) => AlgorithmFamily::Ec,
        AlgorithmParameters::OctetKeyPair(_) => AlgorithmFamily::Ed,
        AlgorithmParameters::OctetKey(_) => {
            return Err("a symmetric key (kty: oct) has no place in a public JWKS".into());
        }
        _ => return Err("an unknown key type".into()),
    };
    let algorithm = match jwk.common.key_algorithm {
        Some(alg) => Some(Algorithm::try_from(alg).map_err(|e| format!("alg {alg}: {e}"))?),
        None => None,
    };
    if algorithm.is_some_and(|alg| alg.family() != family) {
        return Err("its alg does not fit its key type".into());
    }
    // An elliptic-curve key verifies the one algorithm of its curve (RFC 7518 §3.4, RFC 8037 §3.1).
    let curve = match &jwk.algorithm {
        AlgorithmParameters::EllipticCurve(ec) => Some(&ec.curve),
        AlgorithmParameters::OctetKeyPair(okp) => Some(&okp.curve),
        _ => None,
    };
    let bound = match curve {
        None => None,
        Some(EllipticCurve::P256) if family == AlgorithmFamily::Ec => Some(Algorithm::ES256),
        Some(EllipticCurve::P384) if family == AlgorithmFamily::Ec => Some(Algorithm::ES384),
        Some(EllipticCurve::Ed25519) if family == AlgorithmFamily::Ed => Some(Algorithm::EdDSA),
        Some(other) => return Err(format!("its curve {other:?} cannot verify tokens here")),
    };
    if let (Some(alg), Some(bound)) = (algorithm, bound)
        && alg != bound
    {
        return Err(format!(
            "its alg {alg:?} does not fit its curve ({bound:?})"
        ));
    }
    let algorithm = algorithm.or(bound);
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    Ok(Key {
        family,
        kid: jwk.common.key_id,
        algorithm,
        key,
    })
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::EncodingKey;
    use serde_json::json;

    use super::*;

    /// The public JWK of the fixture key `pem` (private, in `tests/fixtures/keys`) for `alg`,
    /// without an `alg` member.
    fn fixture_jwk(pem: &[u8], alg: Algorithm) -> Value {
        let key = match alg {
            Algorithm::EdDSA => EncodingKey::from_ed_pem(pem),
            _ => EncodingKey::from_ec_pem(pem),
        }
        .unwrap();
        let mut jwk = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
        jwk.as_object_mut().unwrap().remove("alg");
        jwk
    }

    const EC256: &[u8] = include_bytes!("../../tests/fixtures/keys/ec256-private.pem");
    const EC384: &[u8] = include_bytes!("../../tests/fixtures/keys/ec384-private.pem");
    const ED25519: &[u8] = include_bytes!("../../tests/fixtures/keys/ed25519-private.pem");

    #[test]
    fn a_curve_binds_its_key_to_one_algorithm() {
        for (pem, alg) in [
            (EC256, Algorithm::ES256),
            (EC384, Algorithm::ES384),
            (ED25519, Algorithm::EdDSA),
        ] {
            let key = parse_key(&fixture_jwk(pem, alg)).unwrap();
            assert_eq!(key.algorithm, Some(alg));
            assert!(key.fits(alg));
        }
        let p256 = parse_key(&fixture_jwk(EC256, Algorithm::ES256)).unwrap();
        assert!(!p256.fits(Algorithm::ES384));
    }

    #[test]
    fn an_alg_or_a_curve_that_does_not_fit_is_refused() {
        let mut declared = fixture_jwk(EC256, Algorithm::ES256);
        declared["alg"] = json!("ES384");
        assert_eq!(
            parse_key(&declared).err().unwrap(),
            "its alg ES384 does not fit its curve (ES256)"
        );
        let mut p521 = fixture_jwk(EC256, Algorithm::ES256);
        p521["crv"] = json!("P-521");
        assert_eq!(
            parse_key(&p521).err().unwrap(),
            "its curve P521 cannot verify tokens here"
        );
    }

    #[test]
    fn keys_are_read_over_https_or_from_a_loopback_host() {
        for allowed in [
            "https://idp.example.com/jwks",
            "http://127.0.0.1:8081/jwks",
            "http://127.1.2.3/jwks",
            "http://localhost:8081",
            "http://[::1]:8081/jwks",
        ] {
            assert_eq!(key_url_refusal(allowed), None, "{allowed}");
        }
        let plain = "is plain http: keys must be read over https (http only from a loopback host)";
        let not_http = "is not an http:// or https:// URL";
        for (refused, shown, reason) in [
            (
                "http://idp.example.com/jwks",
                "http://idp.example.com/jwks",
                plain,
            ),
            ("http://10.0.0.1/jwks", "http://10.0.0.1/jwks", plain),
            (
                "ftp://idp.example.com/jwks",
                "ftp://idp.example.com/jwks",
                not_http,
            ),
            // Credentials in a URL are never repeated.
            (
                "http://user:s3cr3t@idp.example.com/jwks?key=s3cr3t#s3cr3t",
                "http://idp.example.com/jwks",
                plain,
            ),
            ("idp:s3cr3t@example.com", "(not a URL)", not_http),
        ] {
            assert_eq!(
                key_url_refusal(refused).unwrap(),
                format!("{shown:?} {reason}")
            );
        }
    }
}
