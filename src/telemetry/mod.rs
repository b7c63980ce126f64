//! Logs and metrics. Logs are tracing-subscriber's `fmt` lines on stdout, as text or JSON,
//! filtered by `RUST_LOG` when set, else `log.level`; metrics are recorded into one process-wide
//! Prometheus recorder ([`metrics`]).

pub mod metrics;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Call once, from the binary.
///
/// Text lines are tracing's usual layout without colours
/// (`2026-11-23T22:34:00.123456Z  INFO target: message k=v`). A `&str` value is written quoted
/// and escaped, so a value with a line break cannot forge a line: whatever a client chose is
/// logged that way, never with `%` (Display).
pub fn init(log: &LogConfig) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(&log.level),
    };
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
}
