//! The log on stdout: `text` for people, `json` (one object per line) for log pipelines.
//! Levels come from `RUST_LOG` in its usual `target=level` form; `Targets` parses it without
//! pulling in a regex engine (that would add ~350 KB to the binary).
//!
//! JSON lines are tracing-subscriber's `json` format, flattened: `timestamp` (RFC 3339,
//! UTC), `level`, `target` and the event's fields (`message` among them) at the top level
//! of one object per line, integers and booleans as JSON numbers and booleans.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

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
            .with(
                fmt.json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_filter(filter),
            )
            .init(),
    }
    Ok(())
}
