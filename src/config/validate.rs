//! [`Config::validate`]: every check a configuration must pass before the service starts, each
//! failure naming the offending key.

use std::collections::HashSet;

use super::{Backend, Config, ConfigError, invalid};
use crate::domain::Address;

/// The most connections `server.max_connections` may allow: far beyond any file-descriptor limit,
/// and within what one semaphore holds.
const MAX_CONNECTIONS: usize = 1 << 24;
/// The longest connection timeout accepted: a day.
const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

impl Config {
    /// Checks every key; the error names the first offending one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_host_port()?;
        self.validate_base_paths()?;
        positive(&[
            ("server.request_timeout_ms", self.server.request_timeout_ms),
            (
                "server.max_concurrent_requests",
                self.server.max_concurrent_requests as u64,
            ),
        ])?;
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "must be at least 1024"));
        }
        self.validate_cors_origins()?;
        self.validate_connections()?;
        let metrics = &self.server.metrics_listen;
        if !metrics.is_empty() && super::host_port(metrics).is_none() {
            return Err(invalid(
                "server.metrics_listen",
                format!(
                    "{metrics:?} is not host:port (or \"\" to serve /metrics on server.listen)"
                ),
            ));
        }
        self.validate_auth()?;
        let sessions = &self.sessions;
        positive(&[
            ("sessions.max_sessions", sessions.max_sessions as u64),
            ("sessions.idle_ttl_seconds", sessions.idle_ttl_seconds),
            (
                "sessions.max_sessions_per_consumer",
                sessions.max_sessions_per_consumer as u64,
            ),
        ])?;
        self.validate_registration()?;
        self.validate_events()?;
        self.validate_network()?;
        self.validate_store()?;
        crate::telemetry::parse_filter(&self.log.level).map_err(|e| invalid("log.level", e))?;
        self.fixture_sessions()?;
        self.fixture_subscriptions()?;
        Ok(())
    }

    /// At least one base path of the call-handling API (the registration API may have none: it
    /// is then not served); each absolute, without a trailing `/`, listed once across both APIs,
    /// and clear of the operational routes (`/health/*`, `/metrics`, `/openapi*.yaml`).
    fn validate_base_paths(&self) -> Result<(), ConfigError> {
        if self.server.base_paths.is_empty() {
            return Err(invalid(
                "server.base_paths",
                "must list at least one base path",
            ));
        }
        let mut seen = HashSet::new();
        let apis = [
            ("server.base_paths", &self.server.base_paths),
            ("registration.base_paths", &self.registration.base_paths),
            ("events.base_paths", &self.events.base_paths),
        ];
        for (key, path) in apis
            .into_iter()
            .flat_map(|(key, paths)| paths.iter().map(move |path| (key, path)))
        {
            let ok = path.len() > 1
                && path.starts_with('/')
                && !path.ends_with('/')
                && !path.contains("//")
                && !path.contains(['{', '}', '*', '?', '#'])
                && !path.starts_with("/health")
                && path != "/metrics"
                && !(path.starts_with("/openapi") && path.ends_with(".yaml"));
            if !ok {
                return Err(invalid(
                    key,
                    format!(
                        "{path:?} must start with '/', not end with '/', and not clash with operational routes"
                    ),
                ));
            }
            if !seen.insert(path) {
                return Err(invalid(
                    key,
                    format!("{path:?} is listed twice (a base path serves one API, once)"),
                ));
            }
        }
        Ok(())
    }

    /// Registration lifetimes: a positive minimum (1 s is allowed), a default between it and the
    /// maximum, and at least one registration per phone number.
    fn validate_registration(&self) -> Result<(), ConfigError> {
        let registration = &self.registration;
        positive(&[
            ("registration.min_ttl_seconds", registration.min_ttl_seconds),
            (
                "registration.max_per_phone_number",
                registration.max_per_phone_number as u64,
            ),
        ])?;
        if registration.max_ttl_seconds < registration.min_ttl_seconds {
            return Err(invalid(
                "registration.max_ttl_seconds",
                "must be at least registration.min_ttl_seconds",
            ));
        }
        // A year: beyond it a lifetime is a mistake of units (and far past what a device keeps).
        if registration.max_ttl_seconds > 366 * 86_400 {
            return Err(invalid(
                "registration.max_ttl_seconds",
                "must be at most 31622400 (a year)",
            ));
        }
        if !(registration.min_ttl_seconds..=registration.max_ttl_seconds)
            .contains(&registration.default_ttl_seconds)
        {
            return Err(invalid(
                "registration.default_ttl_seconds",
                "must be between registration.min_ttl_seconds and registration.max_ttl_seconds",
            ));
        }
        Ok(())
    }

    /// The events API: its names non-empty and without spaces, its networks CIDRs, its delays and
    /// limits positive.
    fn validate_events(&self) -> Result<(), ConfigError> {
        let events = &self.events;
        for (key, value) in [
            ("events.type_prefix", &events.type_prefix),
            ("events.scope_prefix", &events.scope_prefix),
            ("events.source", &events.source),
        ] {
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    key,
                    "must be non-empty visible ASCII, without spaces",
                ));
            }
        }
        for network in &events.allowed_sink_networks {
            network
                .parse::<crate::events::Cidr>()
                .map_err(|e| invalid("events.allowed_sink_networks", e))?;
        }
        if events.retry_schedule_ms.len() > 32 {
            return Err(invalid(
                "events.retry_schedule_ms",
                "must list at most 32 delays",
            ));
        }
        let mut delays = vec![("events.delivery_timeout_ms", events.delivery_timeout_ms)];
        delays.extend(
            events
                .retry_schedule_ms
                .iter()
                .map(|d| ("events.retry_schedule_ms", *d)),
        );
        delays.extend([
            (
                "events.max_subscriptions_per_consumer",
                events.max_subscriptions_per_consumer as u64,
            ),
            ("events.max_expire_seconds", events.max_expire_seconds),
        ]);
        positive(&delays)?;
        // A replica keeps what it works on claimed every third of it, every 250 ms at most.
        if events.claim_idle_ms < 1000 {
            return Err(invalid(
                "events.claim_idle_ms",
                "must be at least 1000 (a replica renews its claims every third of it)",
            ));
        }
        Ok(())
    }

    /// The simulator: a positive no-answer time, a time scale in (0, 1000], and numbers with a
    /// valid address, listed once, whose steps the network can play.
    fn validate_network(&self) -> Result<(), ConfigError> {
        let network = &self.network;
        positive(&[("network.no_answer_seconds", network.no_answer_seconds)])?;
        if network.no_answer_seconds > 86_400 {
            return Err(invalid(
                "network.no_answer_seconds",
                "must be at most 86400 (a day)",
            ));
        }
        let scale = network.time_scale;
        if !(scale.is_finite() && scale > 0.0 && scale <= 1000.0) {
            return Err(invalid(
                "network.time_scale",
                "must be greater than 0 and at most 1000",
            ));
        }
        let mut seen = HashSet::new();
        for number in &network.numbers {
            crate::domain::Address::parse(number.address.as_str()).map_err(|e| {
                invalid(
                    "network.numbers",
                    format!("address {:?}: {e}", number.address),
                )
            })?;
            if !seen.insert(number.address.as_str()) {
                return Err(invalid(
                    "network.numbers",
                    format!("{:?} is listed twice", number.address),
                ));
            }
            if let Some(why) = crate::network::numbers::script_error(number) {
                return Err(invalid(
                    "network.numbers",
                    format!("{:?}: {why}", number.address),
                ));
            }
        }
        Ok(())
    }

    /// The connection limits: a positive count within what a semaphore can hold, and timeouts
    /// between 1 ms and a day (a longer one is a mistake in units, not a timeout).
    fn validate_connections(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        if server.max_connections == 0 || server.max_connections > MAX_CONNECTIONS {
            return Err(invalid(
                "server.max_connections",
                format!("must be between 1 and {MAX_CONNECTIONS}"),
            ));
        }
        for (key, ms) in [
            (
                "server.header_read_timeout_ms",
                server.header_read_timeout_ms,
            ),
            ("server.idle_timeout_ms", server.idle_timeout_ms),
        ] {
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                return Err(invalid(
                    key,
                    format!("must be between 1 and {MAX_TIMEOUT_MS} (a day, in milliseconds)"),
                ));
            }
        }
        Ok(())
    }

    fn validate_auth(&self) -> Result<(), ConfigError> {
        let auth = &self.auth;
        if auth
            .hs256_secret
            .as_ref()
            .is_some_and(|s| !s.expose().is_empty() && s.expose().len() < 32)
        {
            return Err(invalid(
                "auth.hs256_secret",
                "must be at least 32 bytes (RFC 7518 section 3.2), or \"\" to switch HS256 off",
            ));
        }
        let jwks_sources = [
            ("auth.jwks_file", auth.jwks_file.is_some()),
            ("auth.jwks_url", auth.jwks_url.is_some()),
            ("auth.oidc_discovery", auth.oidc_discovery),
        ];
        let set: Vec<&str> = jwks_sources
            .iter()
            .filter(|(_, on)| *on)
            .map(|(key, _)| *key)
            .collect();
        if set.len() > 1 {
            return Err(invalid(
                set[1],
                format!("{} is set too: configure one JWKS source", set[0]),
            ));
        }
        if let Some(url) = &auth.jwks_url {
            key_url("auth.jwks_url", url)?;
        }
        if auth.oidc_discovery {
            let issuer = auth.issuer.as_deref().ok_or_else(|| {
                invalid(
                    "auth.oidc_discovery",
                    "needs auth.issuer: the discovery document is read from {issuer}/.well-known/openid-configuration",
                )
            })?;
            key_url("auth.issuer", issuer)?;
        }
        if auth.jwks_refresh_seconds == 0 {
            return Err(invalid("auth.jwks_refresh_seconds", "must be at least 1"));
        }
        if auth.jwks_cooldown_seconds == 0 {
            return Err(invalid(
                "auth.jwks_cooldown_seconds",
                "must be at least 1: without it every token with an unknown kid reads the JWKS again",
            ));
        }
        if auth.jwks_max_age_seconds < auth.jwks_refresh_seconds {
            return Err(invalid(
                "auth.jwks_max_age_seconds",
                "must be at least auth.jwks_refresh_seconds: a set would expire before it is read again",
            ));
        }
        if auth.key_sources().is_empty() {
            return Err(invalid(
                "auth",
                "no key configured: every token would be refused (set hs256_secret, public_keys, jwks_file, jwks_url or oidc_discovery)",
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

    fn validate_store(&self) -> Result<(), ConfigError> {
        if self.store.backend == Backend::Redis {
            let url = self.store.redis_url.as_ref().ok_or_else(|| {
                invalid(
                    "store.redis_url",
                    "is required when store.backend is \"redis\"",
                )
            })?;
            // The URL may carry a password: the message never repeats it.
            let client = redis::Client::open(url.expose()).map_err(|_| {
                invalid(
                    "store.redis_url",
                    "is not a Redis URL (redis://[:password@]host[:port][/db], or rediss:// for TLS)",
                )
            })?;
            if let redis::ConnectionAddr::TcpTls { insecure: true, .. } =
                client.get_connection_info().addr()
            {
                return Err(invalid(
                    "store.redis_url",
                    "#insecure is not supported: the server's certificate is always verified (trust a private CA with SSL_CERT_FILE)",
                ));
            }
        }
        positive(&[("store.timeout_ms", self.store.timeout_ms)])?;
        Ok(())
    }
}

/// Every `(key, value)` must be greater than 0; the error names the first that is not.
fn positive(keys: &[(&str, u64)]) -> Result<(), ConfigError> {
    match keys.iter().find(|(_, value)| *value == 0) {
        Some((key, _)) => Err(invalid(*key, "must be greater than 0")),
        None => Ok(()),
    }
}

/// `value` must be an absolute `http://` or `https://` URL with a host.
/// A URL keys are read from (see [`crate::auth::keys::key_url_refusal`]).
fn key_url(key: &str, value: &str) -> Result<(), ConfigError> {
    match crate::auth::keys::key_url_refusal(value) {
        None => Ok(()),
        Some(reason) => Err(invalid(key, reason)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DEVELOPMENT_SECRET, Secret};
    use super::*;

    /// The message `change` makes validation refuse the embedded config with.
    fn refusal(change: impl FnOnce(&mut Config)) -> String {
        let mut config = Config::embedded();
        change(&mut config);
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn the_network_must_be_playable() {
        use crate::config::{NumberScript, Step};
        use crate::domain::SessionStatus::{Busy, Connected, Ringing};
        let number = |address: &str, steps: Vec<Step>| NumberScript {
            address: address.into(),
            steps,
        };
        let step = |after_ms, status| Step {
            after_ms,
            status,
            reason: None,
        };
        assert_eq!(
            refusal(|c| c.network.no_answer_seconds = 0),
            "network.no_answer_seconds: must be greater than 0"
        );
        assert_eq!(
            refusal(|c| c.network.no_answer_seconds = 86_401),
            "network.no_answer_seconds: must be at most 86400 (a day)"
        );
        let late = vec![number("tel:+12025550199", vec![step(u64::MAX, Busy)])];
        assert_eq!(
            refusal(|c| c.network.numbers = late),
            "network.numbers: \"tel:+12025550199\": step 0 comes more than a day (86400000 ms) after the call"
        );
        for scale in [0.0, -1.0, f64::NAN, 1001.0] {
            assert_eq!(
                refusal(|c| c.network.time_scale = scale),
                "network.time_scale: must be greater than 0 and at most 1000"
            );
        }
        assert_eq!(
            refusal(|c| c.network.numbers = vec![number("12025550100", vec![step(0, Busy)])]),
            "network.numbers: address \"12025550100\": must be a tel: or sip: URI matching CAMARA's Address pattern, at most 256 characters"
        );
        let twice = vec![
            number("tel:+12025550199", vec![step(0, Busy)]),
            number("tel:+12025550199", vec![step(0, Ringing)]),
        ];
        assert_eq!(
            refusal(|c| c.network.numbers = twice),
            "network.numbers: \"tel:+12025550199\" is listed twice"
        );
        let unplayable = vec![number(
            "tel:+12025550199",
            vec![step(0, Busy), step(1, Connected)],
        )];
        assert_eq!(
            refusal(|c| c.network.numbers = unplayable),
            "network.numbers: \"tel:+12025550199\": step 1: the network cannot move a call from Busy to Connected"
        );
    }

    #[test]
    fn key_sources_are_checked() {
        assert_eq!(
            refusal(|c| c.auth.hs256_secret = None),
            refusal(|c| c.auth.hs256_secret = Some(Secret::new("")))
        );
        let plain_http =
            "is plain http: keys must be read over https (http only from a loopback host)";
        type Change = fn(&mut Config);
        let cases: [(Change, String); 8] = [
            (
                |c| c.auth.hs256_secret = Some(Secret::new("")),
                "auth: no key configured: every token would be refused (set hs256_secret, public_keys, jwks_file, jwks_url or oidc_discovery)".into(),
            ),
            (
                |c| {
                    c.auth.jwks_url = Some("https://idp.example.com/jwks".into());
                    c.auth.jwks_file = Some("jwks.json".into());
                },
                "auth.jwks_url: auth.jwks_file is set too: configure one JWKS source".into(),
            ),
            (
                |c| c.auth.jwks_url = Some("idp.example.com/jwks".into()),
                "auth.jwks_url: \"idp.example.com/jwks\" is not an http:// or https:// URL".into(),
            ),
            (
                |c| c.auth.oidc_discovery = true,
                "auth.oidc_discovery: needs auth.issuer: the discovery document is read from {issuer}/.well-known/openid-configuration".into(),
            ),
            (
                |c| {
                    c.auth.jwks_file = Some("jwks.json".into());
                    c.auth.jwks_max_age_seconds = 60;
                },
                "auth.jwks_max_age_seconds: must be at least auth.jwks_refresh_seconds: a set would expire before it is read again".into(),
            ),
            (
                |c| c.auth.jwks_url = Some("http://idp.example.com/jwks".into()),
                format!("auth.jwks_url: \"http://idp.example.com/jwks\" {plain_http}"),
            ),
            (
                |c| {
                    c.auth.oidc_discovery = true;
                    c.auth.issuer = Some("http://idp.example.com".into());
                },
                format!("auth.issuer: \"http://idp.example.com\" {plain_http}"),
            ),
            (
                |c| {
                    c.auth.jwks_file = Some("jwks.json".into());
                    c.auth.jwks_cooldown_seconds = 0;
                },
                "auth.jwks_cooldown_seconds: must be at least 1: without it every token with an unknown kid reads the JWKS again".into(),
            ),
        ];
        for (change, message) in cases {
            assert_eq!(refusal(change), message);
        }
    }

    #[test]
    fn the_development_key_is_in_force_only_without_a_key_source_of_ones_own() {
        let embedded = Config::embedded().auth;
        assert_eq!(
            embedded.hs256_in_force().map(Secret::expose),
            Some(DEVELOPMENT_SECRET)
        );
        assert_eq!(
            embedded.key_sources(),
            ["hs256_secret (the public development key)"]
        );
        for source in ["public_keys", "jwks_file", "jwks_url", "oidc_discovery"] {
            let mut auth = Config::embedded().auth;
            match source {
                "public_keys" => auth.public_keys = vec!["key.pem".into()],
                "jwks_file" => auth.jwks_file = Some("jwks.json".into()),
                "jwks_url" => auth.jwks_url = Some("https://idp.example.com/jwks".into()),
                _ => {
                    auth.oidc_discovery = true;
                    auth.issuer = Some("https://idp.example.com".into());
                }
            }
            assert_eq!(auth.hs256_in_force(), None, "{source}");
            // A secret of the operator's own stays in force beside it.
            auth.hs256_secret = Some(Secret::new("an operator's own secret, 32 bytes or more"));
            assert!(auth.hs256_in_force().is_some(), "{source}");
            assert_eq!(auth.key_sources().len(), 2, "{source}");
        }
        let mut auth = Config::embedded().auth;
        auth.hs256_secret = Some(Secret::new(""));
        auth.public_keys = vec!["key.pem".into()];
        assert_eq!(auth.hs256_in_force(), None);
        assert_eq!(auth.key_sources(), ["public_keys (1 PEM)"]);
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
    }

    #[test]
    fn registration_lifetimes_and_base_paths_are_checked() {
        assert_eq!(
            refusal(|c| c.registration.min_ttl_seconds = 0),
            "registration.min_ttl_seconds: must be greater than 0"
        );
        assert_eq!(
            refusal(|c| c.registration.max_ttl_seconds = 59),
            "registration.max_ttl_seconds: must be at least registration.min_ttl_seconds"
        );
        assert_eq!(
            refusal(|c| c.registration.max_ttl_seconds = 366 * 86_400 + 1),
            "registration.max_ttl_seconds: must be at most 31622400 (a year)"
        );
        assert_eq!(
            refusal(|c| c.registration.default_ttl_seconds = 30),
            "registration.default_ttl_seconds: must be between registration.min_ttl_seconds and registration.max_ttl_seconds"
        );
        assert_eq!(
            refusal(|c| c.registration.max_per_phone_number = 0),
            "registration.max_per_phone_number: must be greater than 0"
        );
        assert_eq!(
            refusal(|c| c.registration.base_paths = vec!["/webrtc-call-handling/v0.3".into()]),
            "registration.base_paths: \"/webrtc-call-handling/v0.3\" is listed twice (a base path serves one API, once)"
        );
        assert_eq!(
            refusal(|c| c.registration.base_paths = vec!["/openapi-registration.yaml".into()]),
            "registration.base_paths: \"/openapi-registration.yaml\" must start with '/', not end with '/', and not clash with operational routes"
        );
        let mut config = Config::embedded();
        config.registration.base_paths.clear();
        assert!(config.validate().is_ok(), "the registration API may be off");
    }

    #[test]
    fn the_events_section_is_checked() {
        assert_eq!(
            refusal(|c| c.events.allowed_sink_networks = vec!["10.0.0.0".into()]),
            "events.allowed_sink_networks: \"10.0.0.0\" is not a network in CIDR form (e.g. 10.0.0.0/8 or fc00::/7)"
        );
        assert_eq!(
            refusal(|c| c.events.type_prefix = "org camara".into()),
            "events.type_prefix: must be non-empty visible ASCII, without spaces"
        );
        assert_eq!(
            refusal(|c| c.events.retry_schedule_ms = vec![1000, 0]),
            "events.retry_schedule_ms: must be greater than 0"
        );
        assert_eq!(
            refusal(|c| c.events.max_subscriptions_per_consumer = 0),
            "events.max_subscriptions_per_consumer: must be greater than 0"
        );
        assert_eq!(
            refusal(|c| c.events.claim_idle_ms = 999),
            "events.claim_idle_ms: must be at least 1000 (a replica renews its claims every third of it)"
        );
        assert_eq!(
            refusal(|c| c.events.base_paths = vec!["/webrtc".into()]),
            "events.base_paths: \"/webrtc\" is listed twice (a base path serves one API, once)"
        );
        let mut config = Config::embedded();
        config.events.retry_schedule_ms.clear();
        assert!(config.validate().is_ok(), "no retries is a valid choice");
    }

    #[test]
    fn connection_limits_must_be_positive_and_sensible() {
        let refusal = |edit: fn(&mut Config)| {
            let mut config = Config::embedded();
            edit(&mut config);
            config.validate().unwrap_err().to_string()
        };
        assert_eq!(
            refusal(|c| c.server.max_connections = 0),
            "server.max_connections: must be between 1 and 16777216"
        );
        assert_eq!(
            refusal(|c| c.server.max_connections = usize::MAX),
            "server.max_connections: must be between 1 and 16777216"
        );
        assert_eq!(
            refusal(|c| c.server.header_read_timeout_ms = 0),
            "server.header_read_timeout_ms: must be between 1 and 86400000 (a day, in milliseconds)"
        );
        assert_eq!(
            refusal(|c| c.server.idle_timeout_ms = 86_400_001),
            "server.idle_timeout_ms: must be between 1 and 86400000 (a day, in milliseconds)"
        );
        let config = Config::embedded();
        assert_eq!(
            (
                config.server.max_connections,
                config.server.header_read_timeout_ms,
                config.server.idle_timeout_ms
            ),
            (10000, 10000, 60000)
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
        assert_eq!(
            err,
            "store.redis_url: is not a Redis URL (redis://[:password@]host[:port][/db], or rediss:// for TLS)"
        );
        for url in [
            "redis://:hunter2@redis:6379/0",
            "rediss://:hunter2@redis.example.com:6380/0",
            "rediss://default:hunter2@localhost/",
        ] {
            config.store.redis_url = Some(Secret::new(url));
            assert!(config.validate().is_ok(), "{url}");
        }
        config.store.redis_url = Some(Secret::new("rediss://:hunter2@redis:6380/0#insecure"));
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "store.redis_url: #insecure is not supported: the server's certificate is always verified (trust a private CA with SSL_CERT_FILE)"
        );
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
