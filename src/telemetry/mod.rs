//! Logs and metrics. Logs are tracing-subscriber's `fmt` lines on stdout, as text or JSON,
//! filtered by `RUST_LOG` when set, else `log.level`; metrics are recorded into one process-wide
//! Prometheus recorder ([`metrics`]).

pub mod metrics;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber, filtered by [`filter`]. Call once, from the binary.
///
/// Text lines are tracing's usual layout without colours
/// (`2026-11-23T22:34:00.123456Z  INFO target: message k=v`). A `&str` value is written quoted
/// and escaped, so a value with a line break cannot forge a line: whatever a client chose is
/// logged that way, never with `%` (Display).
pub fn init(log: &LogConfig) -> Result<(), String> {
    let filter = filter(log)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(std::io::stdout);
    match log.format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    Ok(())
}

/// The log filter in force: `RUST_LOG` when it is set and not empty, else `log.level`. An
/// invalid one is an error naming its source (`RUST_LOG: ...`, `log.level: ...`), never a
/// filter that silently drops every line.
pub fn filter(log: &LogConfig) -> Result<EnvFilter, String> {
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => {
            parse_filter(&directives).map_err(|e| format!("RUST_LOG: {e}"))
        }
        _ => parse_filter(&log.level).map_err(|e| format!("log.level: {e}")),
    }
}

/// `directives` as an [`EnvFilter`], when it is valid by tracing-subscriber's grammar and each
/// directive states a level: a level alone (`info`) or `target=level`
/// (`camara_webrtc=debug`, `[request]=trace`). A bare word is refused, since EnvFilter reads it
/// as a target at TRACE and silences everything else: `inf` and `warning` are typos, not
/// targets. A filter of no directive at all is refused for the same reason.
pub fn parse_filter(directives: &str) -> Result<EnvFilter, String> {
    let filter = EnvFilter::builder()
        .parse(directives)
        .map_err(|e| format!("{directives:?} is not a log filter: {e}"))?;
    // EnvFilter's own split: on every comma, empty pieces skipped.
    let mut pieces = directives.split(',').filter(|d| !d.is_empty()).peekable();
    if pieces.peek().is_none() {
        return Err(format!("{directives:?} {NEEDS_A_LEVEL}"));
    }
    for directive in pieces {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        if level.is_empty() || level.parse::<LevelFilter>().is_err() {
            return Err(format!("directive {directive:?} {NEEDS_A_LEVEL}"));
        }
    }
    Ok(filter)
}

const NEEDS_A_LEVEL: &str =
    "names no level: write a level (off, error, warn, info, debug, trace) or target=level";

#[cfg(test)]
mod tests {
    use super::parse_filter;

    #[test]
    fn a_filter_must_state_a_level_in_every_directive() {
        for good in [
            "info",
            "WARN",
            "off",
            "info,",
            "camara_webrtc=debug",
            "warn,camara_webrtc::http=trace",
            "info,[request]=debug",
            "camara_webrtc[request{method=PUT}]=trace",
        ] {
            assert!(parse_filter(good).is_ok(), "{good}");
        }
        let refusal = |bad| parse_filter(bad).unwrap_err();
        assert_eq!(
            refusal("inf"),
            "directive \"inf\" names no level: write a level (off, error, warn, info, debug, trace) or target=level"
        );
        assert_eq!(
            refusal("info,camara_webrtc"),
            "directive \"camara_webrtc\" names no level: write a level (off, error, warn, info, debug, trace) or target=level"
        );
        assert_eq!(
            refusal(""),
            "\"\" names no level: write a level (off, error, warn, info, debug, trace) or target=level"
        );
        assert!(refusal("hyper=x").starts_with("\"hyper=x\" is not a log filter: "));
    }
}
