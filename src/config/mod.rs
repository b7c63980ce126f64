//! Typed configuration: embedded `config/default.toml` < `--config FILE` < `CAMARA_WEBRTC__SECTION__KEY`
//! environment variables < command-line flags, then [`Config::validate`] with errors naming the key.
//!
//! This module owns [`Config`] and its loading, [`Secret`] and [`ConfigError`]; the sections are in
//! `sections`, the checks in `validate` (the CORS origins' in `origins`), the fixture sessions in
//! `fixtures`, the wording of load errors in `load_error`.

mod fixtures;
mod load_error;
mod origins;
mod sections;
mod validate;

use std::fmt;
use std::net::Ipv6Addr;
use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use serde::{Deserialize, Serialize, Serializer};

pub use sections::{
    AuthConfig, Backend, DefaultBehaviour, EventsConfig, FixtureRegistration, FixtureSession,
    FixtureSubscription, FixturesConfig, LogConfig, LogFormat, NetworkConfig, NumberScript,
    RegistrationConfig, SdpConfig, ServerConfig, SessionsConfig, Step, StoreConfig,
};

/// The embedded defaults: a development HS256 key and CAMARA's fixture session.
pub const DEFAULT_TOML: &str = include_str!("../../config/default.toml");
/// Prefix of the environment variables that override keys: `CAMARA_WEBRTC__SERVER__LISTEN`.
pub const ENV_PREFIX: &str = "CAMARA_WEBRTC__";
/// The development key shipped in the embedded defaults; `serve` warns while it is in use.
pub const DEVELOPMENT_SECRET: &str = "camara-webrtc-development-key-do-not-use-in-production";

/// The whole configuration, one field per section of the file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[server]`
    pub server: ServerConfig,
    /// `[auth]`
    pub auth: AuthConfig,
    /// `[sdp]`
    pub sdp: SdpConfig,
    /// `[sessions]`
    pub sessions: SessionsConfig,
    /// `[registration]`
    pub registration: RegistrationConfig,
    /// `[events]`
    pub events: EventsConfig,
    /// `[network]`
    pub network: NetworkConfig,
    /// `[store]`
    pub store: StoreConfig,
    /// `[fixtures]`
    pub fixtures: FixturesConfig,
    /// `[log]`
    pub log: LogConfig,
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
    /// The sources cannot be read into a [`Config`]; the message names the key and the kind
    /// of error, never the value.
    #[error("{0}")]
    Load(String),
    #[error("{key}: {reason}")]
    Invalid { key: String, reason: String },
}

/// A listen address split into (host, port), or `None` when it is not one: the host an IPv4
/// address, a bracketed IPv6 address or a host name (letters, digits, `-`, `.`, `_`), the port
/// 0 to 65535 in digits.
fn host_port(value: &str) -> Option<(&str, u16)> {
    let (host, port) = value.rsplit_once(':')?;
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(ipv6) => ipv6.parse::<Ipv6Addr>().is_ok(),
        None => {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        }
    };
    let digits = !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit());
    let port = port.parse::<u16>().ok().filter(|_| digits && host_ok)?;
    Some((host, port))
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
        let config: Config = figment
            .extract()
            .map_err(|e| ConfigError::Load(load_error::describe(&e)))?;
        config.validate()?;
        Ok(config)
    }

    /// The embedded defaults alone (no file, no environment): what tests start from.
    pub fn embedded() -> Self {
        Self::from_figment(&Figment::from(Toml::string(DEFAULT_TOML)))
            .expect("the embedded config is valid")
    }

    /// Whether the development key of the embedded defaults is in force.
    pub fn uses_development_key(&self) -> bool {
        self.auth
            .hs256_in_force()
            .is_some_and(|s| s.expose() == DEVELOPMENT_SECRET)
    }

    /// What `serve` and `check-config` warn about: the development values of the embedded
    /// defaults that let anybody in, while they are configured.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut warnings = Vec::new();
        if self.uses_development_key() {
            warnings.push(
                "USING THE PUBLIC DEVELOPMENT KEY: anyone can mint valid tokens. Configure a key \
                 source of your own (auth.jwks_url, auth.oidc_discovery, auth.public_keys, or \
                 auth.hs256_secret) before exposing this service.",
            );
        }
        if self.events.allow_http_sinks || !self.events.allowed_sink_networks.is_empty() {
            warnings.push(
                "EVENT SINKS MAY BE PLAIN HTTP OR ON INTERNAL NETWORKS: a subscription can make \
                 this service send requests into its own network. Set events.allow_http_sinks = \
                 false and events.allowed_sink_networks = [] (or only your own sinks' networks) \
                 before exposing this service.",
            );
        }
        if self.network.admin_api {
            warnings.push(
                "THE NETWORK ADMIN API AND CONSOLE ARE ON: a token with scope \
                 camara-webrtc:network can place calls and move any session. Set \
                 network.admin_api = false before exposing this service.",
            );
        }
        if self.server.cors_allowed_origins == ["*"] {
            warnings.push(
                "CORS ALLOWS EVERY ORIGIN: any web page may call this API from a browser. List \
                 your apps' origins in server.cors_allowed_origins (or [] for none) before \
                 exposing this service.",
            );
        }
        warnings
    }

    /// `server.listen` as (host, port), by [`host_port`]: `0.0.0.0:8080`, `[::]:8080` or
    /// `localhost:8080`. The host is resolved only when `serve` binds.
    pub fn listen_host_port(&self) -> Result<(&str, u16), ConfigError> {
        host_port(&self.server.listen).ok_or_else(|| {
            invalid(
                "server.listen",
                "must be host:port with a port from 0 to 65535, e.g. 0.0.0.0:8080, [::]:8080 or localhost:8080",
            )
        })
    }

    /// The effective configuration as TOML, secrets redacted and SDP bodies shown as their
    /// length (`"[SDP: 951 bytes, redacted]"`): for reading, not for loading back.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_printed_config_shows_key_urls_without_credentials() {
        let mut config = Config::embedded();
        config.auth.jwks_url = Some("https://u:s3cr3t@idp.example.com/jwks?token=s3cr3t".into());
        config.auth.issuer = Some("https://idp.example.com".into());
        let printed = config.to_redacted_toml();
        assert!(
            printed.contains("jwks_url = \"https://idp.example.com/jwks\""),
            "{printed}"
        );
        assert!(
            printed.contains("issuer = \"https://idp.example.com\""),
            "{printed}"
        );
        assert!(!printed.contains("s3cr3t"), "{printed}");
    }

    /// Loads `toml` as a `--config` file would be, over the embedded defaults.
    fn load_file(name: &str, toml: &str) -> Result<Config, ConfigError> {
        let path = std::env::temp_dir().join(format!(
            "camara-webrtc-config-{}-{name}.toml",
            std::process::id()
        ));
        std::fs::write(&path, toml).unwrap();
        let config = Config::from_figment(&Config::figment(Some(&path)));
        std::fs::remove_file(&path).unwrap();
        config
    }

    // With no serde defaults, extracting the embedded file alone proves it states every key.
    #[test]
    fn embedded_defaults_are_valid() {
        let config = Config::embedded();
        assert!(config.uses_development_key());
        assert_eq!(
            config.server.base_paths,
            ["/webrtc", "/webrtc-call-handling/v0.3"]
        );
        assert_eq!(config.fixtures.sessions.len(), 1);
        assert_eq!(config.server.cors_allowed_origins, ["*"]);
    }

    #[test]
    fn a_file_that_omits_keys_takes_them_from_the_embedded_defaults() {
        let config = load_file("partial", "[server]\nlisten = \"127.0.0.1:1234\"\n").unwrap();
        let mut expected = Config::embedded();
        expected.server.listen = "127.0.0.1:1234".into();
        assert_eq!(config.to_redacted_toml(), expected.to_redacted_toml());
    }

    #[test]
    fn a_files_fixture_list_replaces_the_embedded_one() {
        let config = load_file("no-fixtures", "[fixtures]\nsessions = []\n").unwrap();
        assert!(config.fixtures.sessions.is_empty());
    }

    #[test]
    fn a_files_unknown_key_is_refused_by_name() {
        let err = load_file("unknown-key", "[server]\nlisten_on = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_on"), "{err}");
    }

    #[test]
    fn listen_addresses_are_host_colon_port_with_a_host_name_allowed() {
        for good in [
            "0.0.0.0:8080",
            "[::]:8080",
            "[::1]:0",
            "localhost:8090",
            "my-host.example_1:65535",
        ] {
            let mut config = Config::embedded();
            config.server.listen = good.into();
            config.server.metrics_listen = good.into();
            assert!(config.validate().is_ok(), "{good}");
        }
        for bad in [
            "8080",
            "localhost",
            "localhost:",
            ":8080",
            "localhost:65536",
            "localhost:+80",
            "::1:8080",
            "[not-v6]:8080",
            "http://localhost:8080",
            "local host:8080",
        ] {
            let refusal = |edit: &dyn Fn(&mut Config)| {
                let mut config = Config::embedded();
                edit(&mut config);
                config.validate().unwrap_err().to_string()
            };
            assert_eq!(
                refusal(&|c| c.server.listen = bad.into()),
                "server.listen: must be host:port with a port from 0 to 65535, e.g. 0.0.0.0:8080, [::]:8080 or localhost:8080",
                "{bad}"
            );
            // server.metrics_listen takes the same shapes.
            assert_eq!(
                refusal(&|c| c.server.metrics_listen = bad.into()),
                format!(
                    "server.metrics_listen: {bad:?} is not host:port (or \"\" to serve /metrics on server.listen)"
                ),
            );
        }
    }

    #[test]
    fn secrets_are_redacted() {
        let config = Config::embedded();
        assert!(!format!("{config:?}").contains(DEVELOPMENT_SECRET));
        assert!(!config.to_redacted_toml().contains(DEVELOPMENT_SECRET));
    }
}
