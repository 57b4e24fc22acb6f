//! The log on stdout: `text` for people, `json` (one object per line) for log pipelines.
//! Levels come from `RUST_LOG` in its usual `target=level` form; `Targets` parses it without
//! pulling in a regex engine (that would add ~350 KB to the binary).
//!
//! JSON lines are written by [`JsonLines`], not tracing-subscriber's `json` feature: the
//! feature brings serde, serde_json and a float printer, 61 KB of the binary, to write
//! flat objects of strings, integers and booleans.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

use crate::ops::config::{ConfigError, LogFormat};

/// Installs the global subscriber. `rust_log` is the value of `RUST_LOG`, if set.
pub fn init(format: LogFormat, rust_log: Option<&str>) -> Result<(), ConfigError> {
    let filter = match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        None => Targets::new().with_default(LevelFilter::INFO),
        Some(s) => s.parse::<Targets>().map_err(|_| {
            ConfigError(format!("invalid value {s:?} for RUST_LOG: expected a level like info, or target=level pairs like info,access=off"))
        })?,
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stdout)
        .with_ansi(false);
    match format {
        LogFormat::Text => tracing_subscriber::registry()
            .with(fmt.with_filter(filter))
            .init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(fmt.event_format(JsonLines).with_filter(filter))
            .init(),
    }
    Ok(())
}

/// One JSON object per event: `timestamp` (RFC 3339, UTC), `level`, `target`, then the
/// event's fields (`message` among them) at the top level. Integers and booleans stay
/// numbers and booleans; everything else is a string.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> fmt::Result {
        w.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut w)?;
        let meta = event.metadata();
        write!(w, "\",\"level\":\"{}\",\"target\":", meta.level())?;
        write_string(&mut w, meta.target())?;
        let mut fields = JsonFields {
            out: &mut w,
            result: Ok(()),
        };
        event.record(&mut fields);
        fields.result?;
        w.write_str("}\n")
    }
}

/// Writes each field as `,"name":value`.
struct JsonFields<'a, 'w> {
    out: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = (|| {
                self.out.write_char(',')?;
                write_string(self.out, field.name())?;
                self.out.write_char(':')?;
                value(self.out)
            })();
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| write_string(w, value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.field(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// `s` as a JSON string, quotes included.
fn write_string(w: &mut Writer<'_>, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// Escapes what JSON requires inside a string: `"`, `\` and control characters.
struct Escaped<'a, 'w>(&'a mut Writer<'w>);

impl fmt::Write for Escaped<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, b) in s.bytes().enumerate() {
            if b >= 0x20 && b != b'"' && b != b'\\' {
                continue;
            }
            self.0.write_str(&s[plain..i])?;
            match b {
                b'"' => self.0.write_str("\\\"")?,
                b'\\' => self.0.write_str("\\\\")?,
                b'\n' => self.0.write_str("\\n")?,
                b'\r' => self.0.write_str("\\r")?,
                b'\t' => self.0.write_str("\\t")?,
                _ => write!(self.0, "\\u{b:04x}")?,
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_backslashes_and_controls() {
        let mut out = String::new();
        write_string(&mut Writer::new(&mut out), "a\"b\\c\nd\u{1}é").unwrap();
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
    }
}
