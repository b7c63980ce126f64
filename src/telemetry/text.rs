//! The `text` log format: tracing-subscriber's default layout without colours,
//! `2026-11-23T22:34:00.123456Z  INFO span{k=v}: target: message k=v`. A line is put together
//! in a per-thread `String` and handed to the subscriber's writer in one piece. The default
//! formatter goes through `fmt::write` for every part and field, and a write through tracing's
//! `Writer` is a dynamic call; the log line was the largest single cost of a request
//! (docs/performance.md). Control characters in values are escaped (`\n`, `\u{1b}`), so one event
//! is always one line and cannot forge another.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::json_string;

/// Formats whole events (see the module documentation).
pub struct TextLine;

/// Formats an event's or a span's fields as `message k=v k=v`.
pub struct TextFields;

thread_local! {
    /// The line being put together; kept, with its capacity, from one event to the next.
    static LINE: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<S, N> FormatEvent<S, N> for TextLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        with_line(|line| {
            event_line(line, ctx, event);
            writer.write_str(line)
        })
    }
}

/// Runs `f` with the thread's line buffer, empty. An event logged while another is being put
/// together (from a field's `Debug`, say; tracing's global dispatcher allows it) gets a fresh
/// buffer instead, as tracing-subscriber's own formatter does.
fn with_line<R>(f: impl FnOnce(&mut String) -> R) -> R {
    LINE.with(|cell| match cell.try_borrow_mut() {
        Ok(mut line) => {
            line.clear();
            let result = f(&mut line);
            // One huge event does not keep its buffer for the thread's life.
            if line.capacity() > 64 * 1024 {
                *line = String::new();
            }
            result
        }
        Err(_) => f(&mut String::new()),
    })
}

fn event_line<S, N>(line: &mut String, ctx: &FmtContext<'_, S, N>, event: &Event<'_>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let meta = event.metadata();
    write_timestamp(line, SystemTime::now());
    line.push_str(match *meta.level() {
        Level::TRACE => " TRACE ",
        Level::DEBUG => " DEBUG ",
        Level::INFO => "  INFO ",
        Level::WARN => "  WARN ",
        Level::ERROR => " ERROR ",
    });
    if let Some(scope) = ctx.event_scope() {
        for span in scope.from_root() {
            line.push_str(span.name());
            if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                && !fields.is_empty()
            {
                line.push('{');
                line.push_str(fields);
                line.push('}');
            }
            line.push(':');
        }
        line.push(' ');
    }
    line.push_str(meta.target());
    line.push_str(": ");
    event.record(&mut FieldWriter {
        out: line,
        empty: true,
    });
    line.push('\n');
}

impl<'w> FormatFields<'w> for TextFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut out = String::new();
        fields.record(&mut FieldWriter {
            out: &mut out,
            empty: true,
        });
        writer.write_str(&out)
    }
}

struct FieldWriter<'a> {
    out: &'a mut String,
    empty: bool,
}

impl FieldWriter<'_> {
    /// Writes the separator and `name=` (nothing for the message), then `value`.
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut String)) {
        let name = field.name();
        if !self.empty {
            self.out.push(' ');
        }
        if name != "message" {
            self.out.push_str(name.strip_prefix("r#").unwrap_or(name));
            self.out.push('=');
        }
        value(self.out);
        self.empty = false;
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| escaped(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write_u64(w, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| {
            if value < 0 {
                w.push('-');
            }
            write_u64(w, value.unsigned_abs());
        });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.field(field, |w| {
            // Latencies are whole microseconds in milliseconds: at most three decimals, written
            // with integers. Anything else goes through `Display`; both print the shortest form.
            let thousandths = (value * 1000.0).round();
            if value.is_finite()
                && (0.0..1e15).contains(&thousandths)
                && thousandths / 1000.0 == value
            {
                let thousandths = thousandths as u64;
                write_u64(w, thousandths / 1000);
                let mut fraction = thousandths % 1000;
                if fraction != 0 {
                    let mut width = 3;
                    while fraction.is_multiple_of(10) {
                        fraction /= 10;
                        width -= 1;
                    }
                    // Writing to a String cannot fail.
                    let _ = write!(w, ".{fraction:0width$}");
                }
                return;
            }
            let _ = write!(w, "{value}");
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| w.push_str(if value { "true" } else { "false" }));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| {
            let _ = write!(Escaped(w), "{value:?}");
        });
    }
}

/// Appends `s`, escaping control characters (see [`Escaped`]).
fn escaped(out: &mut String, s: &str) {
    // Writing to a String cannot fail.
    let _ = Escaped(out).write_str(s);
}

/// Passes text through, escaping control characters (C0, DEL, C1) the way `char::escape_debug`
/// writes them.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Plain printable ASCII, the common case, passes at once; it is checked eight bytes at a
        // time by the JSON escaper's scan, which also stops at `"`, `\` and any non-ASCII byte
        // (C1 controls are non-ASCII). Those few go through the loop below, which escapes only
        // control characters.
        if json_string::next_special::<true>(s.as_bytes(), 0) == s.len() {
            return self.0.write_str(s);
        }
        let mut start = 0;
        for (at, c) in s.char_indices() {
            if c.is_control() {
                self.0.write_str(&s[start..at])?;
                write!(self.0, "{}", c.escape_debug())?;
                start = at + c.len_utf8();
            }
        }
        self.0.write_str(&s[start..])
    }
}

fn write_u64(w: &mut String, value: u64) {
    w.push_str(itoa::Buffer::new().format(value));
}

/// RFC 3339 in UTC with microseconds, like tracing-subscriber's `SystemTime`. The date and time
/// of day are formatted once per second per thread.
fn write_timestamp(w: &mut String, now: SystemTime) {
    thread_local! {
        static SECOND: Cell<(u64, [u8; 19])> = const { Cell::new((u64::MAX, [0; 19])) };
    }
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (cached, mut text) = SECOND.get();
    if cached != secs {
        text = civil(secs);
        SECOND.set((secs, text));
    }
    let micros = since.subsec_micros();
    let mut fraction = *b".000000Z";
    for (i, slot) in fraction[1..7].iter_mut().enumerate() {
        *slot = b'0' + (micros / 10u32.pow(5 - i as u32) % 10) as u8;
    }
    // Both are ASCII digits and punctuation.
    w.push_str(std::str::from_utf8(&text).unwrap_or_default());
    w.push_str(std::str::from_utf8(&fraction).unwrap_or_default());
}

/// `YYYY-MM-DDTHH:MM:SS` for seconds since the Unix epoch (Howard Hinnant's `civil_from_days`).
fn civil(secs: u64) -> [u8; 19] {
    let days = (secs / 86_400) as i64;
    let of_day = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = *b"0000-00-00T00:00:00";
    let mut put = |at: usize, width: usize, value: u64| {
        for i in 0..width {
            out[at + width - 1 - i] = b'0' + (value / 10u64.pow(i as u32) % 10) as u8;
        }
    };
    put(0, 4, year as u64);
    put(5, 2, month as u64);
    put(8, 2, day as u64);
    put(11, 2, of_day / 3600);
    put(14, 2, of_day / 60 % 60);
    put(17, 2, of_day % 60);
    out
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::*;

    fn timestamp(secs: u64, micros: u64) -> String {
        let mut out = String::new();
        let at = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros);
        write_timestamp(&mut out, at);
        out
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        assert_eq!(timestamp(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(timestamp(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(
            timestamp(1_795_478_399, 999_999),
            "2026-11-23T23:59:59.999999Z"
        );
        assert_eq!(
            timestamp(4_107_542_400, 120_000),
            "2100-03-01T00:00:00.120000Z"
        );
        // The per-second cache is refreshed when the second changes.
        assert_eq!(timestamp(1_795_478_400, 1), "2026-11-24T00:00:00.000001Z");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_passes() {
        let mut out = String::new();
        Escaped(&mut out)
            .write_str("a b\né\u{1b}[31m\u{85}\t\u{7f}Ω")
            .unwrap();
        assert_eq!(out, r"a b\né\u{1b}[31m\u{85}\t\u{7f}Ω");
    }

    /// Each control and a few look-alikes, at every offset around the eight-byte scan's words:
    /// controls escaped, everything else passed as it is.
    #[test]
    fn escaping_does_not_depend_on_where_a_character_falls() {
        let chars = [
            '\0', '\u{1f}', '\n', '\t', '\u{7f}', '\u{80}', '\u{85}', '\u{9f}', ' ', '"', '\\',
            'é', 'Ω', '\u{a0}', 'a',
        ];
        for c in chars {
            for at in 0..20 {
                let text: String = (0..20).map(|i| if i == at { c } else { 'x' }).collect();
                let expected: String = text
                    .chars()
                    .map(|c| {
                        if c.is_control() {
                            c.escape_debug().to_string()
                        } else {
                            c.to_string()
                        }
                    })
                    .collect();
                let mut out = String::new();
                Escaped(&mut out).write_str(&text).unwrap();
                assert_eq!(out, expected, "{c:?} at {at}");
            }
        }
    }

    /// What `f` logs through this format, at any level.
    fn capture(f: impl FnOnce()) -> String {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .fmt_fields(TextFields)
            .event_format(TextLine)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.0.lock().unwrap().clone();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn a_line_has_the_default_layout_with_spans_and_escaped_values() {
        let line = capture(|| {
            let span = tracing::debug_span!("request", method = "PUT", route = "/x/{id}");
            let _entered = span.enter();
            tracing::info!(
                consumer = "evil\n2026-01-01T00:00:00.000000Z  INFO forged",
                version = 3u64,
                delta = -4i64,
                ok = true,
                tags = ?["a"],
                status = 200u16,
                "request finished"
            );
        });
        let (timestamp, rest) = line.split_at(27);
        assert!(
            timestamp.ends_with('Z') && timestamp.as_bytes()[10] == b'T',
            "{line}"
        );
        assert_eq!(
            rest,
            "  INFO request{method=PUT route=/x/{id}}: camara_webrtc::telemetry::text::tests: \
             request finished consumer=evil\\n2026-01-01T00:00:00.000000Z  INFO forged version=3 \
             delta=-4 ok=true tags=[\"a\"] status=200\n"
        );
        assert_eq!(line.lines().count(), 1);
        let levels = capture(|| {
            tracing::trace!("t");
            tracing::debug!("d");
            tracing::warn!("w");
            tracing::error!("e");
        });
        let levels: Vec<&str> = levels.lines().map(|l| &l[27..]).collect();
        assert_eq!(
            levels,
            [
                " TRACE camara_webrtc::telemetry::text::tests: t",
                " DEBUG camara_webrtc::telemetry::text::tests: d",
                "  WARN camara_webrtc::telemetry::text::tests: w",
                " ERROR camara_webrtc::telemetry::text::tests: e",
            ]
        );
    }

    #[test]
    fn a_line_put_together_inside_another_gets_its_own_buffer() {
        let outer = with_line(|line| {
            line.push_str("outer ");
            let inner = with_line(|inner| {
                assert!(inner.is_empty());
                inner.push_str("inner");
                inner.clone()
            });
            line.push_str(&inner);
            line.clone()
        });
        assert_eq!(outer, "outer inner");
        assert_eq!(
            with_line(|line| line.len()),
            0,
            "the buffer is handed out empty"
        );
    }

    #[test]
    fn floats_print_as_display_does() {
        let mut values = vec![
            0.0, 0.04, 0.1, 1.0, 12.0, 0.123, 5.5, 999.999, 1e-7, 2.5e20, -0.5,
        ];
        values.extend((0..3000).map(|micros| f64::from(micros) / 1000.0));
        values.extend([f64::NAN, f64::INFINITY, 1.0 / 3.0, 1e15 / 1000.0, 1e18]);
        for value in values {
            let line = capture(|| tracing::info!(latency_ms = value));
            assert!(
                line.ends_with(&format!(": latency_ms={value}\n")),
                "{value}: {line}"
            );
        }
    }

    #[test]
    fn integers_are_written_in_decimal() {
        for value in [0, 7, 10, 200, 12_345, u64::MAX] {
            let mut out = String::new();
            write_u64(&mut out, value);
            assert_eq!(out, value.to_string());
        }
    }
}
