//! Readers of option values: each takes the text and gives the value, or `None` when the
//! text is not one (the caller's error then quotes it and says what was expected).

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::LogFormat;
use crate::files::headers::ImmutableRule;

/// Any text, as it is.
pub fn text(s: &str) -> Option<String> {
    Some(s.to_string())
}

/// `500ms`, `5s`, `2m`, `1h`; a bare `0` is allowed.
pub fn parse_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let ms = match unit {
        "ms" => n,
        "s" => n.checked_mul(1000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(ms))
}

pub fn parse_positive_duration(s: &str) -> Option<Duration> {
    parse_duration(s).filter(|d| !d.is_zero())
}

/// `8192`, `16KiB`, `2MiB`, `1GiB` (K, M, G are binary too).
pub fn parse_size(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult = match unit {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

pub fn parse_addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

pub fn parse_addr_or_off(s: &str) -> Option<Option<SocketAddr>> {
    if s.is_empty() || s == "off" {
        Some(None)
    } else {
        parse_addr(s).map(Some)
    }
}

pub fn parse_count(s: &str) -> Option<usize> {
    s.parse().ok().filter(|&n| n >= 1)
}

pub fn parse_switch(s: &str) -> Option<bool> {
    match s {
        "on" | "true" | "1" | "yes" => Some(true),
        "off" | "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// `auto` (or `on`) and `off`.
pub fn parse_auto_off(s: &str) -> Option<bool> {
    match s {
        "auto" | "on" => Some(true),
        "off" => Some(false),
        _ => None,
    }
}

pub fn parse_watch(s: &str) -> Option<crate::cache::watch::Mode> {
    use crate::cache::watch::Mode;
    [Mode::Auto, Mode::Inotify, Mode::Poll, Mode::Off]
        .into_iter()
        .find(|m| m.name() == s)
}

pub fn parse_log_format(s: &str) -> Option<LogFormat> {
    match s {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        _ => None,
    }
}

pub fn parse_immutable(s: &str) -> Option<ImmutableRule> {
    let mut rule = ImmutableRule::default();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        if item == "fingerprint" {
            rule.fingerprinted = true;
        } else if item.starts_with('/') {
            rule.prefixes.push(item.to_string());
        } else {
            return None;
        }
    }
    Some(rule)
}

pub fn parse_header(line: &str) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = line.split_once(':')?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
    let value = HeaderValue::from_str(value.trim()).ok()?;
    Some((name, value))
}

/// A header value, as `--cache-control` takes it.
pub fn parse_header_value(s: &str) -> Option<HeaderValue> {
    HeaderValue::from_str(s).ok()
}

/// A request head limit: a size, at least 8 KiB (hyper's own floor for a request line
/// and the usual headers).
pub fn parse_header_size(s: &str) -> Option<u64> {
    parse_size(s).filter(|&n| n >= 8192)
}
