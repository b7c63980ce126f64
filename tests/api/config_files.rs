//! The configuration files the repository ships, loaded as `serve` and `check-config` load them.

use std::path::Path;

use camara_webrtc::auth::Verifier;
use camara_webrtc::config::{Backend, Config, LogFormat};

/// `config/production.example.toml` over the embedded defaults, validated as `check-config`
/// validates it, up to reading the identity provider (the JWKS is read by `load_keys`, which is
/// not called): it loads, every development value of the defaults is off, so nothing is warned
/// about, and its placeholders are the ones the README names.
#[test]
fn the_production_example_is_valid_and_turns_every_development_value_off() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production.example.toml");
    let config = Config::from_figment(&Config::figment(Some(&path))).unwrap();
    assert_eq!(config.warnings(), Vec::<&str>::new());
    assert!(!config.uses_development_key());
    assert_eq!(
        config.auth.key_sources(),
        ["oidc_discovery from https://idp.example.com"]
    );
    assert_eq!(config.auth.audience.as_deref(), Some("camara-webrtc"));
    assert!(config.server.cors_allowed_origins.is_empty());
    assert!(config.fixtures.sessions.is_empty());
    assert_eq!(config.store.backend, Backend::Redis);
    assert_eq!(config.log.format, LogFormat::Json);
    Verifier::from_config(&config.auth).unwrap();
}
