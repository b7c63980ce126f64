//! [`Config::validate`]: every check a configuration must pass before the service starts, each
//! failure naming the offending key.

use std::collections::HashSet;

use super::{Backend, Config, ConfigError, invalid};
use crate::domain::Address;

impl Config {
    /// Checks every key; the error names the first offending one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen_addr()?;
        self.validate_base_paths()?;
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
        self.validate_store()?;
        if let Err(e) = self.log.level.parse::<tracing_subscriber::EnvFilter>() {
            return Err(invalid("log.level", e.to_string()));
        }
        self.fixture_sessions()?;
        Ok(())
    }

    /// At least one base path; each absolute, without a trailing `/`, listed once, and clear of
    /// the operational routes (`/health/*`, `/metrics`, `/openapi.yaml`).
    fn validate_base_paths(&self) -> Result<(), ConfigError> {
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

    fn validate_store(&self) -> Result<(), ConfigError> {
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
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Secret;
    use super::*;

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
}
