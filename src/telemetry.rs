//! Log output: text or JSON lines on stdout, filtered by `RUST_LOG` when set, else `log.level`.
//! A runtime worker's lines are written in batches (see `batch`): the binary's runtime calls
//! [`worker_idle`] when a worker parks and [`flush`] when one stops.

mod batch;
mod text;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::{LogConfig, LogFormat};

use batch::BatchedStdout;
pub use batch::{flush, worker_idle};
use text::{TextFields, TextLine};

/// Installs the global subscriber. Call once, from the binary.
pub fn init(log: &LogConfig) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::new(directives),
        _ => EnvFilter::new(&log.level),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::NONE)
        .with_writer(BatchedStdout);
    match log.format {
        LogFormat::Text => builder.fmt_fields(TextFields).event_format(TextLine).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}
