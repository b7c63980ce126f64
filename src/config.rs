//! Typed configuration: embedded `config/default.toml` < `--config FILE` < `CAMARA_WEBRTC__SECTION__KEY`
//! environment variables < command-line flags, then [`Config::validate`] with errors naming the key.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize, Serializer};

use crate::domain::{Address, Direction, SdpPolicy, Session, SessionId, SessionStatus};
use crate::domain::{CallType, Sdp};

/// The embedded defaults: a development HS256 key and CAMARA's fixture session.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");
/// Prefix of the environment variables that override keys: `CAMARA_WEBRTC__SERVER__LISTEN`.
pub const ENV_PREFIX: &str = "CAMARA_WEBRTC__";
/// The development key shipped in the embedded defaults; `serve` warns while it is in use.
pub const DEVELOPMENT_SECRET: &str = "camara-webrtc-development-key-do-not-use-in-production";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub sdp: SdpConfig,
    pub sessions: SessionsConfig,
    pub store: StoreConfig,
    #[serde(default)]
    pub fixtures: FixturesConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Address the HTTP server binds (`host:port`).
    pub listen: String,
    /// Base paths the API is mounted under, each starting with `/`.
    pub base_paths: Vec<String>,
    /// Requests running longer are answered 504 TIMEOUT.
    pub request_timeout_ms: u64,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// API requests handled at once; beyond it a request is shed at once with 503 UNAVAILABLE.
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
    /// Per API consumer, requests per second (a token bucket); 0 turns the limit off. Beyond it:
    /// 429 TOO_MANY_REQUESTS with `Retry-After`.
    #[serde(default)]
    pub rate_limit_per_second: u32,
    /// How many requests a consumer may send at once before the rate applies (0: the rate).
    #[serde(default)]
    pub rate_limit_burst: u32,
    /// After SIGTERM or SIGINT, how long in-flight requests may take to finish.
    #[serde(default = "default_shutdown_grace_seconds")]
    pub shutdown_grace_seconds: u64,
}

fn default_max_concurrent_requests() -> usize {
    1024
}

fn default_shutdown_grace_seconds() -> u64 {
    30
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Shared secret for HS256/HS384/HS512 tokens (at least 32 bytes).
    pub hs256_secret: Option<Secret>,
    /// PEM files of public keys for RS*/PS*/ES256/ES384/EdDSA tokens.
    #[serde(default)]
    pub public_keys: Vec<PathBuf>,
    /// JWKS endpoint (not supported by this version; rejected by validation).
    pub jwks_url: Option<String>,
    /// JWKS file (not supported by this version; rejected by validation).
    pub jwks_file: Option<PathBuf>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Known subscribers; a 3-legged `sub` not listed gets 404 IDENTIFIER_NOT_FOUND. Empty: anyone.
    #[serde(default)]
    pub subscribers: Vec<String>,
    /// How many verified tokens to remember until their `exp`; 0 verifies every request in full.
    #[serde(default = "default_token_cache_size")]
    pub token_cache_size: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdpConfig {
    /// `lenient` or `strict`.
    pub validation: SdpPolicy,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// The most sessions the store holds at once.
    pub max_sessions: usize,
    /// How long an ended session is kept after DELETE, in seconds.
    pub ended_ttl_seconds: u64,
    /// Check `registrationId` on POST against `registrations`.
    pub check_registration: bool,
    /// The registrations the network knows (from CAMARA's registration API in a real network).
    #[serde(default)]
    pub registrations: Vec<String>,
    /// Accept `callType: EMERGENCY`.
    pub emergency_calls: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Memory,
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory` or `redis`.
    pub backend: Backend,
    /// Redis connection URL, for the redis backend (may carry a password).
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key, so deployments can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// Bound on connecting to Redis and on each Redis command, in milliseconds: past it the
    /// request is answered 503 UNAVAILABLE rather than left hanging.
    #[serde(default = "default_store_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_token_cache_size() -> usize {
    10_000
}

fn default_key_prefix() -> String {
    "camara-webrtc:".into()
}

fn default_store_timeout_ms() -> u64 {
    1000
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixturesConfig {
    /// Sessions loaded at start-up, visible to every consumer.
    #[serde(default)]
    pub sessions: Vec<FixtureSession>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureSession {
    pub media_session_id: String,
    pub originator_address: String,
    pub receiver_address: String,
    pub originator_name: Option<String>,
    pub receiver_name: Option<String>,
    pub status: SessionStatus,
    /// The originator's SDP offer (CAMARA's session response requires one).
    pub offer_sdp: String,
    #[serde(default)]
    pub direction: Direction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// Default filter (`info`, `debug`, `camara_webrtc=trace`, ...); `RUST_LOG` wins when set.
    pub level: String,
}

/// A secret string: printed as `[redacted]` by `Debug` and by `check-config`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

/// A configuration that cannot be used; the message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Load(#[from] Box<figment::Error>),
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    }
}

impl Config {
    /// The layered sources: embedded defaults, then `file`, then the environment. Callers merge flags on top.
    pub fn figment(file: Option<&Path>) -> Figment {
        let mut figment = Figment::from(Toml::string(DEFAULT_TOML));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        figment.merge(Env::prefixed(ENV_PREFIX).split("__"))
    }

    /// Extracts and validates the configuration from `figment`.
    pub fn from_figment(figment: &Figment) -> Result<Self, ConfigError> {
        let config: Config = figment.extract().map_err(Box::new)?;
        config.validate()?;
        Ok(config)
    }

    /// The embedded defaults alone (no file, no environment): what tests start from.
    pub fn embedded() -> Self {
        Self::from_figment(&Figment::from(Toml::string(DEFAULT_TOML)))
            .expect("the embedded config is valid")
    }

    /// Whether the development key of the embedded defaults is configured.
    pub fn uses_development_key(&self) -> bool {
        self.auth
            .hs256_secret
            .as_ref()
            .is_some_and(|s| s.expose() == DEVELOPMENT_SECRET)
    }

    /// The address to bind, parsed.
    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .listen
            .parse()
            .map_err(|_| invalid("server.listen", "must be host:port, e.g. 0.0.0.0:8080"))
    }

    /// Checks every key; the error names the first offending one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        if self.server.base_paths.is_empty() {
            return Err(invalid(
                "server.base_paths",
                "must list at least one base path",
            ));
        }
        let mut seen = HashSet::new();
        for path in &self.server.base_paths {
            let ok = path.len() > 1
                && path.starts_with('/')
                && !path.ends_with('/')
                && !path.contains("//")
                && !path.contains(['{', '}', '*', '?', '#'])
                && !path.starts_with("/health")
                && path != "/metrics"
                && path != "/openapi.yaml";
            if !ok {
                return Err(invalid(
                    "server.base_paths",
                    format!(
                        "{path:?} must start with '/', not end with '/', and not clash with operational routes"
                    ),
                ));
            }
            if !seen.insert(path) {
                return Err(invalid(
                    "server.base_paths",
                    format!("{path:?} is listed twice"),
                ));
            }
        }
        if self.server.request_timeout_ms == 0 {
            return Err(invalid(
                "server.request_timeout_ms",
                "must be greater than 0",
            ));
        }
        if self.server.max_concurrent_requests == 0 {
            return Err(invalid(
                "server.max_concurrent_requests",
                "must be greater than 0",
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        self.validate_auth()?;
        if self.sessions.max_sessions == 0 {
            return Err(invalid("sessions.max_sessions", "must be greater than 0"));
        }
        if self.store.backend == Backend::Redis {
            let url = self.store.redis_url.as_ref().ok_or_else(|| {
                invalid(
                    "store.redis_url",
                    "is required when store.backend is \"redis\"",
                )
            })?;
            // The URL may carry a password: the message never repeats it.
            redis::Client::open(url.expose()).map_err(|_| {
                invalid(
                    "store.redis_url",
                    "is not a Redis URL (redis://[:password@]host[:port][/db])",
                )
            })?;
        }
        if self.store.timeout_ms == 0 {
            return Err(invalid("store.timeout_ms", "must be greater than 0"));
        }
        if let Err(e) = self.log.level.parse::<tracing_subscriber::EnvFilter>() {
            return Err(invalid("log.level", e.to_string()));
        }
        self.fixture_sessions()?;
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        if auth
            .hs256_secret
            .as_ref()
            .is_some_and(|s| s.expose().len() < 32)
        {
            return Err(invalid(
                "auth.hs256_secret",
                "must be at least 32 bytes (RFC 7518 section 3.2)",
            ));
        }
        if auth.jwks_url.is_some() {
            return Err(invalid(
                "auth.jwks_url",
                "JWKS is not supported by this version; use auth.public_keys",
            ));
        }
        if auth.jwks_file.is_some() {
            return Err(invalid(
                "auth.jwks_file",
                "JWKS is not supported by this version; use auth.public_keys",
            ));
        }
        if auth.hs256_secret.is_none() && auth.public_keys.is_empty() {
            return Err(invalid(
                "auth",
                "configure hs256_secret or public_keys: no token could be verified",
            ));
        }
        for (i, sub) in auth.subscribers.iter().enumerate() {
            if Address::from_phone_number(sub).is_none() {
                return Err(invalid(
                    format!("auth.subscribers[{i}]"),
                    "must be an E.164 number (+..., or tel:+...)",
                ));
            }
        }
        Ok(())
    }

    /// The configured fixtures as sessions, validated.
    pub fn fixture_sessions(&self) -> Result<Vec<Session>, ConfigError> {
        let mut ids = HashSet::new();
        let mut sessions = Vec::with_capacity(self.fixtures.sessions.len());
        for (i, f) in self.fixtures.sessions.iter().enumerate() {
            let key = |field: &str| format!("fixtures.sessions[{i}].{field}");
            let id = SessionId::parse(f.media_session_id.clone())
                .map_err(|e| invalid(key("media_session_id"), e.to_string()))?;
            if !ids.insert(id.clone()) {
                return Err(invalid(
                    key("media_session_id"),
                    format!("{id} is listed twice"),
                ));
            }
            let originator = Address::parse(f.originator_address.clone())
                .map_err(|e| invalid(key("originator_address"), e.to_string()))?;
            let receiver = Address::parse(f.receiver_address.clone())
                .map_err(|e| invalid(key("receiver_address"), e.to_string()))?;
            let offer = Sdp::parse(f.offer_sdp.clone(), self.sdp.validation)
                .map_err(|e| invalid(key("offer_sdp"), e.to_string()))?;
            for (field, name) in [
                ("originator_name", &f.originator_name),
                ("receiver_name", &f.receiver_name),
            ] {
                if name.as_ref().is_some_and(|n| n.chars().count() > 256) {
                    return Err(invalid(key(field), "must be at most 256 characters"));
                }
            }
            sessions.push(Session {
                id,
                originator,
                originator_name: f.originator_name.as_deref().map(Into::into),
                receiver,
                receiver_name: f.receiver_name.as_deref().map(Into::into),
                status: f.status,
                offer: Some(offer),
                answer: None,
                call_type: CallType::Regular,
                location: None,
                owner: None,
                direction: f.direction,
                withheld_originator: None,
                ended: false,
            });
        }
        Ok(sessions)
    }

    /// The effective configuration as TOML, secrets redacted.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid_and_carry_the_fixture() {
        let config = Config::embedded();
        assert!(config.uses_development_key());
        assert_eq!(
            config.server.base_paths,
            ["/webrtc", "/webrtc-call-handling/v0.3"]
        );
        let fixtures = config.fixture_sessions().unwrap();
        assert_eq!(
            fixtures[0].id.as_str(),
            "0AEE1B58BAEEDA3EABA42B32EBB3DFE07E9CFF402EAF9EED8EF"
        );
        assert_eq!(fixtures[0].status, SessionStatus::Initial);
    }

    #[test]
    fn validation_names_the_key() {
        let mut config = Config::embedded();
        config.server.base_paths = vec!["webrtc".into()];
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .starts_with("server.base_paths: ")
        );
        let mut config = Config::embedded();
        config.auth.hs256_secret = Some(Secret::new("short"));
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .starts_with("auth.hs256_secret: ")
        );
        let mut config = Config::embedded();
        config.fixtures.sessions[0].receiver_address = "bob".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("fixtures.sessions[0].receiver_address: "),
            "{err}"
        );
    }

    #[test]
    fn the_redis_backend_needs_a_valid_url_and_never_echoes_it() {
        let mut config = Config::embedded();
        config.store.backend = Backend::Redis;
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "store.redis_url: is required when store.backend is \"redis\""
        );
        config.store.redis_url = Some(Secret::new("http://:hunter2@redis:6379"));
        let err = config.validate().unwrap_err().to_string();
        assert!(
            err.starts_with("store.redis_url: is not a Redis URL"),
            "{err}"
        );
        assert!(!err.contains("hunter2"));
        config.store.redis_url = Some(Secret::new("redis://:hunter2@redis:6379/0"));
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn secrets_are_redacted() {
        let config = Config::embedded();
        assert!(!format!("{config:?}").contains(DEVELOPMENT_SECRET));
        assert!(!config.to_redacted_toml().contains(DEVELOPMENT_SECRET));
    }
}
