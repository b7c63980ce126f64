//! The sections of the configuration file, one struct per `[section]`, and the enums their keys
//! take. Every key's default lives in `config/default.toml`, the base layer of every load, and
//! nowhere else (a fixture entry's `direction` aside: a list entry has no layer beneath it).

use std::path::PathBuf;

use serde::{Deserialize, Serialize, Serializer};

use super::Secret;
use crate::auth::keys::shown;
use crate::domain::{Direction, SdpPolicy, SessionStatus};

/// `[server]`: the listener, the API's base paths and the limits on connections and requests.
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
    pub max_concurrent_requests: usize,
    /// Per API consumer, requests per second (a token bucket); 0 turns the limit off. Beyond it:
    /// 429 TOO_MANY_REQUESTS with `Retry-After`.
    pub rate_limit_per_second: u32,
    /// How many requests a consumer may send at once before the rate applies (0: the rate).
    pub rate_limit_burst: u32,
    /// After SIGTERM or SIGINT, how long in-flight requests may take to finish.
    pub shutdown_grace_seconds: u64,
    /// Origins whose pages may call the API from a browser (CORS): exact origins
    /// (`scheme://host[:port]`), `["*"]` for any, `[]` for none (CORS off).
    pub cors_allowed_origins: Vec<String>,
    /// Connections open at once; further ones wait in the kernel's accept backlog until one closes.
    pub max_connections: usize,
    /// How long a connection may take to deliver a request's head (request line and headers):
    /// counted from the connection's start for its first request, and from the first byte of
    /// each later HTTP/1 request. Past it the connection is closed without an answer.
    pub header_read_timeout_ms: u64,
    /// How long a keep-alive connection (HTTP/1 or HTTP/2) may stay open with no request in
    /// flight before it is closed.
    pub idle_timeout_ms: u64,
    /// Where `/metrics` is served: `""` on the main listener; a `host:port` of its own (e.g.
    /// `127.0.0.1:9090`) takes it off the public port, where it then answers 404.
    pub metrics_listen: String,
}

/// `[auth]`: the keys bearer tokens are verified with and the claims they must carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Shared secret for HS256/HS384/HS512 tokens (at least 32 bytes); `""` switches HS256 off.
    /// The development key of the embedded defaults is in force only while no operator key
    /// source is configured (see [`AuthConfig::hs256_in_force`]).
    pub hs256_secret: Option<Secret>,
    /// PEM files of public keys for RS*/PS*/ES256/ES384/EdDSA tokens.
    pub public_keys: Vec<PathBuf>,
    /// JWKS endpoint, read at start-up and every `jwks_refresh_seconds`.
    #[serde(serialize_with = "shown_url")]
    pub jwks_url: Option<String>,
    /// JWKS file, read at start-up and every `jwks_refresh_seconds`.
    pub jwks_file: Option<PathBuf>,
    /// Read the JWKS URL from `{issuer}/.well-known/openid-configuration`.
    pub oidc_discovery: bool,
    /// How often the JWKS is read again.
    pub jwks_refresh_seconds: u64,
    /// A token with an unknown `kid` reads the JWKS again only if no read started this recently.
    pub jwks_cooldown_seconds: u64,
    /// How long the last JWKS read stays in force while reads fail; then tokens fail closed.
    pub jwks_max_age_seconds: u64,
    /// Required `iss` claim, when set.
    #[serde(serialize_with = "shown_url")]
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Known subscribers; a 3-legged `sub` not listed gets 404 IDENTIFIER_NOT_FOUND. Empty: anyone.
    pub subscribers: Vec<String>,
    /// How many verified tokens to remember until their `exp`; 0 verifies every request in full.
    pub token_cache_size: usize,
}

impl AuthConfig {
    /// Whether a key source of the operator's own is configured: PEM keys, a JWKS file or URL,
    /// or OpenID discovery.
    pub fn has_operator_keys(&self) -> bool {
        !self.public_keys.is_empty()
            || self.jwks_file.is_some()
            || self.jwks_url.is_some()
            || self.oidc_discovery
    }

    /// The HS256 secret tokens are verified with: none when it is `""`, and none when it is the
    /// public development key while an operator key source is configured.
    pub fn hs256_in_force(&self) -> Option<&Secret> {
        let development_beside_own = |secret: &Secret| {
            secret.expose() == super::DEVELOPMENT_SECRET && self.has_operator_keys()
        };
        self.hs256_secret
            .as_ref()
            .filter(|secret| !secret.expose().is_empty() && !development_beside_own(secret))
    }

    /// The key sources in force, in words, for `serve`'s start-up line and `check-config`.
    pub fn key_sources(&self) -> Vec<String> {
        let mut sources = Vec::new();
        if let Some(secret) = self.hs256_in_force() {
            sources.push(if secret.expose() == super::DEVELOPMENT_SECRET {
                "hs256_secret (the public development key)".to_owned()
            } else {
                "hs256_secret".to_owned()
            });
        }
        if !self.public_keys.is_empty() {
            sources.push(format!("public_keys ({} PEM)", self.public_keys.len()));
        }
        if let Some(file) = &self.jwks_file {
            sources.push(format!("jwks_file {}", file.display()));
        }
        if let Some(url) = &self.jwks_url {
            sources.push(format!("jwks_url {}", shown(url)));
        }
        if self.oidc_discovery {
            let issuer = self.issuer.as_deref().unwrap_or("");
            sources.push(format!("oidc_discovery from {}", shown(issuer)));
        }
        sources
    }
}

/// `[sdp]`: how strictly SDP offers and answers are checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SdpConfig {
    /// `lenient` or `strict`.
    pub validation: SdpPolicy,
}

/// `[sessions]`: how many sessions are kept, for how long, and which calls are accepted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionsConfig {
    /// The most sessions the store holds at once.
    pub max_sessions: usize,
    /// The most live (not ended) sessions one API consumer holds; beyond it its POST is 429
    /// QUOTA_EXCEEDED. Fixture sessions have no consumer and do not count.
    pub max_sessions_per_consumer: usize,
    /// How long an ended session is kept after DELETE, in seconds.
    pub ended_ttl_seconds: u64,
    /// A live session with no change for this long is ended by the network (`Terminated` once
    /// answered, `Failed` before) and stays readable for `ended_ttl_seconds`.
    pub idle_ttl_seconds: u64,
    /// Check `registrationId` on POST against `registrations`.
    pub check_registration: bool,
    /// The registrations the network knows (from CAMARA's registration API in a real network).
    pub registrations: Vec<String>,
    /// Accept `callType: EMERGENCY`.
    pub emergency_calls: bool,
}

/// `[registration]`: CAMARA's registration API — where it is served and how long a registration
/// lasts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationConfig {
    /// Where the registration API is served. A base path whose last segment is `v0.3` answers as
    /// the released r2.2 document (POST 200, PUT 204); any other as the current draft (POST 201
    /// with `Location`, PUT 200 with the registration).
    pub base_paths: Vec<String>,
    /// The lifetime of a registration created or refreshed without `registrationExpireTime`.
    pub default_ttl_seconds: u64,
    /// A requested expiry sooner than this from now is 400 OUT_OF_RANGE.
    pub min_ttl_seconds: u64,
    /// A requested expiry later than this from now is capped to it.
    pub max_ttl_seconds: u64,
    /// Active registrations one phone number may have; beyond it 403 MAX_REGISTRATION_PER_MSISDN.
    pub max_per_phone_number: usize,
    /// When a registration expires, its live REGULAR calls end (EMERGENCY calls go on).
    pub end_calls_on_expiry: bool,
}

/// `[events]`: CAMARA's events API (subscriptions) and the delivery of its CloudEvents.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Where the events API is served.
    pub base_paths: Vec<String>,
    /// Event types are `{type_prefix}.{name}` (`session-invitation`, `session-status`,
    /// `registration-ends`, `subscription-ended`).
    pub type_prefix: String,
    /// Scopes are `{scope_prefix}:{type}:create`, `{scope_prefix}:read|update|delete`.
    pub scope_prefix: String,
    /// The CloudEvents `source` of every event.
    pub source: String,
    /// Accept `http://` sinks (development); production sinks are `https://`.
    pub allow_http_sinks: bool,
    /// Networks (CIDR) a sink may resolve to although they are loopback, private, link-local,
    /// unique-local, multicast or unspecified (the SSRF guard refuses those otherwise).
    pub allowed_sink_networks: Vec<String>,
    /// A PEM file of CA certificates trusted for `https` sinks besides the system's roots.
    pub ca_file: String,
    /// Delays before each retry of a delivery, in milliseconds (± 20% jitter).
    pub retry_schedule_ms: Vec<u64>,
    /// How long one delivery attempt may take.
    pub delivery_timeout_ms: u64,
    /// Subscriptions one API consumer may hold; beyond it 429 QUOTA_EXCEEDED.
    pub max_subscriptions_per_consumer: usize,
    /// The longest a subscription may last; a later `subscriptionExpireTime` is capped to it.
    pub max_expire_seconds: u64,
    /// Redis store: a recorded change a replica took and left unfinished for this long is taken
    /// over by another replica (at least 1000).
    pub claim_idle_ms: u64,
}

/// `[network]`: the simulated far end of calls (DESIGN §12).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Serve the admin API (`/network/v1`) and the console.
    pub admin_api: bool,
    /// A call not Connected this long after it was placed ends NoAnswer.
    pub no_answer_seconds: u64,
    /// What the far end of a receiver that is neither registered nor scripted does.
    pub default_behaviour: DefaultBehaviour,
    /// Every simulated time (script steps, the no-answer timer) is multiplied by this.
    pub time_scale: f64,
    /// Scripted receivers; one replaces the built-in test number with the same address.
    #[serde(default)]
    pub numbers: Vec<NumberScript>,
}

/// `network.default_behaviour`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DefaultBehaviour {
    /// Nothing happens: the receiver's side is driven through the API.
    None,
    /// As `tel:+12025550100`: Ringing, then Connected with an answer.
    Answer,
}

/// `[[network.numbers]]`: what the far end of one receiver does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberScript {
    /// The receiver's address (`tel:+12025550100`, `sip:bob@example.com`).
    pub address: String,
    /// What the network does, in order, each so long after the call is placed.
    pub steps: Vec<Step>,
}

/// One step of a script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// How long after the call is placed (before `time_scale`), in milliseconds.
    pub after_ms: u64,
    /// The network status it sets.
    pub status: crate::domain::SessionStatus,
    /// The `reason` it gives (e.g. "Call terminated by receiver").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Where sessions are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// In this process: one replica.
    Memory,
    /// In Redis: several replicas sharing one Redis.
    Redis,
}

/// `[store]`: the session store's backend and its connection.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `memory` or `redis`.
    pub backend: Backend,
    /// Redis connection URL, for the redis backend (may carry a password).
    pub redis_url: Option<Secret>,
    /// Prefix of every Redis key, so deployments can share one Redis.
    pub key_prefix: String,
    /// Bound on connecting to Redis and on each Redis command, in milliseconds: past it the
    /// request is answered 503 UNAVAILABLE rather than left hanging.
    pub timeout_ms: u64,
}

/// `[fixtures]`: sessions present from start-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixturesConfig {
    /// Registrations loaded at start-up; they never expire.
    pub registrations: Vec<FixtureRegistration>,
    /// Event subscriptions loaded at start-up; they never expire.
    pub subscriptions: Vec<FixtureSubscription>,
    /// Sessions loaded at start-up, visible to every consumer.
    pub sessions: Vec<FixtureSession>,
}

/// One `[[fixtures.registrations]]` entry, checked by
/// [`Config::fixture_registrations`](super::Config::fixture_registrations).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureRegistration {
    pub registration_id: String,
    /// A UUID.
    pub device_id: String,
    /// `+E.164`.
    pub phone_number: String,
    /// The API consumer it belongs to.
    pub consumer: String,
}

/// One `[[fixtures.subscriptions]]` entry, checked by
/// [`Config::fixture_subscriptions`](super::Config::fixture_subscriptions).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureSubscription {
    pub subscription_id: String,
    /// Where its events go. Printed by `check-config` without credentials.
    #[serde(serialize_with = "shown_string")]
    pub sink: String,
    /// Full event type names (`{events.type_prefix}.session-status`).
    pub types: Vec<String>,
    /// One of the fixture registrations: whose events.
    pub registration_id: String,
    /// The API consumer it belongs to.
    pub consumer: String,
}

/// One `[[fixtures.sessions]]` entry, checked by [`Config::fixture_sessions`](super::Config::fixture_sessions).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureSession {
    /// The session's `mediaSessionId`.
    pub media_session_id: String,
    /// The caller's address: a `tel:` or `sip:` URI.
    pub originator_address: String,
    /// The callee's address: a `tel:` or `sip:` URI.
    pub receiver_address: String,
    /// The caller's display name, at most 256 characters.
    pub originator_name: Option<String>,
    /// The callee's display name, at most 256 characters.
    pub receiver_name: Option<String>,
    /// The status the session starts in.
    pub status: SessionStatus,
    /// The originator's SDP offer (CAMARA's session response requires one). Printed by
    /// `check-config` as its length only (see [`redacted_sdp`]).
    #[serde(serialize_with = "redacted_sdp")]
    pub offer_sdp: String,
    /// The side the session's owner acts for: `outgoing` (the originator; when omitted) or
    /// `incoming` (the receiver).
    // The one serde default: a list entry has no embedded layer beneath it to supply a key.
    #[serde(default)]
    pub direction: Direction,
}

/// An SDP body as the effective configuration is printed: `"[SDP: 951 bytes, redacted]"`, never
/// its text, which carries SRTP keys (`a=crypto`) and ICE passwords (`a=ice-pwd`).
/// A URL in `check-config`'s output, without the parts that may carry credentials.
fn shown_url<S: Serializer>(url: &Option<String>, serializer: S) -> Result<S::Ok, S::Error> {
    url.as_deref().map(shown).serialize(serializer)
}

fn shown_string<S: Serializer>(url: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&shown(url))
}

fn redacted_sdp<S: Serializer>(sdp: &str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("[SDP: {} bytes, redacted]", sdp.len()))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`: the format and the filter of log lines.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// Default filter (`info`, `debug`, `camara_webrtc=trace`, ...); `RUST_LOG` wins when set.
    pub level: String,
}
