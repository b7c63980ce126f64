//! `server.cors_allowed_origins`: the origins a browser may call the API from, checked as a
//! browser sends them.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::{Config, ConfigError, invalid};

/// A serialised origin as a browser sends it in `Origin`: a lower-case scheme, `://`, a
/// lower-case host name or IPv4 address or a bracketed IPv6 address, and an optional port.
static ORIGIN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"^(?<scheme>[a-z][a-z0-9+.-]*)://",
        r"(?:\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*)",
        r"(?::(?<port>[1-9][0-9]{0,4}))?$",
    ))
    .expect("the origin pattern compiles")
});

impl Config {
    /// `["*"]`, `[]`, or origins a browser can send: each one exactly as it appears in an
    /// `Origin` header (tower-http compares the bytes), so an entry that could never match —
    /// upper case, a path or a trailing `/`, a default port — is refused, as is one listed twice.
    pub(super) fn validate_cors_origins(&self) -> Result<(), ConfigError> {
        let origins = &self.server.cors_allowed_origins;
        if origins == &["*"] {
            return Ok(());
        }
        let mut seen = HashSet::new();
        for (i, origin) in origins.iter().enumerate() {
            let key = format!("server.cors_allowed_origins[{i}]");
            if origin == "*" {
                return Err(invalid(
                    key,
                    "\"*\" allows every origin: list it alone, or list origins without it",
                ));
            }
            let origin_as_sent = ORIGIN.captures(origin).is_some_and(|parts| {
                let port = parts.name("port").map(|p| p.as_str());
                let default = matches!(
                    (&parts["scheme"], port),
                    ("http", Some("80")) | ("https", Some("443"))
                );
                !default && port.is_none_or(|p| p.parse::<u16>().is_ok())
            });
            if !origin_as_sent {
                return Err(invalid(
                    key,
                    format!(
                        "{origin:?} is not an origin as a browser sends it: scheme://host[:port] \
                         in lower case, without a path, a trailing '/' or a default port"
                    ),
                ));
            }
            if !seen.insert(origin) {
                return Err(invalid(key, format!("{origin:?} is listed twice")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `origins` as `server.cors_allowed_origins` over the embedded defaults, validated.
    fn with_origins(origins: &[&str]) -> Result<(), String> {
        let mut config = Config::embedded();
        config.server.cors_allowed_origins = origins.iter().map(|o| (*o).to_owned()).collect();
        config.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn cors_origins_are_origins_as_a_browser_sends_them() {
        for origins in [
            &[][..],
            &["*"],
            &[
                "https://app.example.com",
                "http://127.0.0.1:5173",
                "http://[::1]:8080",
                "https://xn--bcher-kva.example",
                "capacitor://localhost",
            ],
        ] {
            assert_eq!(with_origins(origins), Ok(()), "{origins:?}");
        }
        for bad in [
            "",
            "app.example.com",
            "https://App.example.com",
            "https://app.example.com/",
            "https://app.example.com/app",
            "https://app.example.com?x=1",
            "https://user@app.example.com",
            "https://app.example.com:443",
            "http://app.example.com:80",
            "http://app.example.com:0",
            "http://app.example.com:65536",
            "https://-app.example.com",
        ] {
            assert_eq!(
                with_origins(&["https://ok.example", bad]),
                Err(format!(
                    "server.cors_allowed_origins[1]: {bad:?} is not an origin as a browser sends \
                     it: scheme://host[:port] in lower case, without a path, a trailing '/' or a \
                     default port"
                ))
            );
        }
        assert_eq!(
            with_origins(&["https://a.example", "*"]),
            Err(
                "server.cors_allowed_origins[1]: \"*\" allows every origin: list it alone, or \
                 list origins without it"
                    .into()
            )
        );
        assert_eq!(
            with_origins(&["https://a.example", "https://a.example"]),
            Err("server.cors_allowed_origins[1]: \"https://a.example\" is listed twice".into())
        );
    }
}
