//! Every option, one definition each: its flag, environment variable, placeholder,
//! default, help line, and how its value is read and described when it is wrong. `--help`,
//! the parser and the error messages all come from here, so they cannot drift apart.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use super::values;
use super::LogFormat;
use crate::cache::watch::Mode;
use crate::files::headers::ImmutableRule;
use crate::http::cors::CorsOrigins;
use crate::http::proxies::TrustedProxies;

/// What an option is, whatever its value's type.
#[derive(Debug)]
pub struct Info {
    /// The flag, without its `--`.
    pub flag: &'static str,
    /// Its environment variable.
    pub env: &'static str,
    /// The placeholder `--help` shows for its value.
    pub value: &'static str,
    /// Its default, read like a given value; `None`: unset unless given.
    pub default: Option<&'static str>,
    /// Its `--help` line.
    pub help: &'static str,
}

/// One option: what it is, and how its value is read.
pub struct Flag<T: 'static> {
    /// Name, variable, default and help.
    pub info: Info,
    /// Reads a value; `None` when the text is not one.
    pub parse: fn(&str) -> Option<T>,
    /// What a value looks like, for the error when one is not.
    pub expected: &'static str,
}

const DURATION_HINT: &str = "a duration like 500ms, 5s or 2m";
const POSITIVE_DURATION_HINT: &str = "a duration above zero, like 500ms, 5s or 2m";

/// `--root`.
pub static ROOT: Flag<String> = Flag {
    info: Info {
        flag: "root",
        env: "TINYSERVE_ROOT",
        value: "DIR",
        default: Some("static"),
        help: "folder to serve; must exist at startup",
    },
    parse: values::text,
    expected: "a folder",
};

/// `--listen`.
pub static LISTEN: Flag<SocketAddr> = Flag {
    info: Info {
        flag: "listen",
        env: "TINYSERVE_LISTEN",
        value: "ADDR",
        default: Some("[::]:8080"),
        help: "address to bind ([::]: IPv4 and IPv6)",
    },
    parse: values::parse_addr,
    expected: "an address like 0.0.0.0:8080 or [::]:8080",
};

/// `--shutdown-delay`.
pub static SHUTDOWN_DELAY: Flag<Duration> = Flag {
    info: Info {
        flag: "shutdown-delay",
        env: "TINYSERVE_SHUTDOWN_DELAY",
        value: "DUR",
        default: Some("0s"),
        help: "after SIGTERM, serve this long with /readyz 503",
    },
    parse: values::parse_duration,
    expected: DURATION_HINT,
};

/// `--drain-timeout`.
pub static DRAIN_TIMEOUT: Flag<Duration> = Flag {
    info: Info {
        flag: "drain-timeout",
        env: "TINYSERVE_DRAIN_TIMEOUT",
        value: "DUR",
        default: Some("10s"),
        help: "then wait this long at most for requests",
    },
    parse: values::parse_duration,
    expected: DURATION_HINT,
};

/// `--log-format`.
pub static LOG_FORMAT: Flag<LogFormat> = Flag {
    info: Info {
        flag: "log-format",
        env: "TINYSERVE_LOG_FORMAT",
        value: "text|json",
        default: Some("text"),
        help: "log format on stdout; level by RUST_LOG",
    },
    parse: values::parse_log_format,
    expected: "'text' or 'json'",
};

/// `--metrics-listen`.
pub static METRICS_LISTEN: Flag<Option<SocketAddr>> = Flag {
    info: Info {
        flag: "metrics-listen",
        env: "TINYSERVE_METRICS_LISTEN",
        value: "ADDR",
        default: None,
        help: "listener for Prometheus /metrics",
    },
    parse: values::parse_addr_or_off,
    expected: "an address like 0.0.0.0:9090",
};

/// `--access-log`.
pub static ACCESS_LOG: Flag<bool> = Flag {
    info: Info {
        flag: "access-log",
        env: "TINYSERVE_ACCESS_LOG",
        value: "on|off",
        default: Some("on"),
        help: "one log line per request",
    },
    parse: values::parse_switch,
    expected: "'on' or 'off'",
};

/// `--access-log-probes`.
pub static ACCESS_LOG_PROBES: Flag<bool> = Flag {
    info: Info {
        flag: "access-log-probes",
        env: "TINYSERVE_ACCESS_LOG_PROBES",
        value: "on|off",
        default: Some("on"),
        help: "log the probes too (metrics count them)",
    },
    parse: values::parse_switch,
    expected: "'on' or 'off'",
};

/// `--fallback`.
pub static FALLBACK: Flag<String> = Flag {
    info: Info {
        flag: "fallback",
        env: "TINYSERVE_FALLBACK",
        value: "FILE",
        default: None,
        help: "file that answers unknown navigations (SPAs)",
    },
    parse: values::text,
    expected: "a file under the root",
};

/// `--pretty-urls`.
pub static PRETTY_URLS: Flag<bool> = Flag {
    info: Info {
        flag: "pretty-urls",
        env: "TINYSERVE_PRETTY_URLS",
        value: "on|off",
        default: Some("off"),
        help: "/about serves about.html (one URL a page)",
    },
    parse: values::parse_switch,
    expected: "'on' or 'off'",
};

/// `--maintenance`.
pub static MAINTENANCE: Flag<String> = Flag {
    info: Info {
        flag: "maintenance",
        env: "TINYSERVE_MAINTENANCE",
        value: "FILE",
        default: None,
        help: "while this file exists, all but probes get 503",
    },
    parse: values::text,
    expected: "a file under the root",
};

/// `--compress`.
pub static COMPRESS: Flag<bool> = Flag {
    info: Info {
        flag: "compress",
        env: "TINYSERVE_COMPRESS",
        value: "auto|off",
        default: Some("auto"),
        help: "gzip text files without sidecars, once each",
    },
    parse: values::parse_auto_off,
    expected: "'auto' or 'off'",
};

/// `--cache-control`.
pub static CACHE_CONTROL: Flag<HeaderValue> = Flag {
    info: Info {
        flag: "cache-control",
        env: "TINYSERVE_CACHE_CONTROL",
        value: "VALUE",
        default: Some("no-cache"),
        help: "Cache-Control of files not immutable",
    },
    parse: values::parse_header_value,
    expected: "a valid header value",
};

/// `--immutable`.
pub static IMMUTABLE: Flag<ImmutableRule> = Flag {
    info: Info {
        flag: "immutable",
        env: "TINYSERVE_IMMUTABLE",
        value: "LIST",
        default: Some("fingerprint"),
        help: "cached a year: fingerprint, /prefixes/",
    },
    parse: values::parse_immutable,
    expected: "'fingerprint' and/or path prefixes starting with '/', comma-separated",
};

/// `--header`.
pub static HEADER: Flag<(HeaderName, HeaderValue)> = Flag {
    info: Info {
        flag: "header",
        env: "TINYSERVE_HEADERS",
        value: "'NAME: VALUE'",
        default: None,
        help: "extra header, repeatable",
    },
    parse: values::parse_header,
    expected: "'Name: value', e.g. 'Content-Security-Policy: default-src 'self''",
};

/// `--header-timeout`.
pub static HEADER_TIMEOUT: Flag<Duration> = Flag {
    info: Info {
        flag: "header-timeout",
        env: "TINYSERVE_HEADER_TIMEOUT",
        value: "DUR",
        default: Some("10s"),
        help: "time allowed for a request head (slowloris)",
    },
    parse: values::parse_positive_duration,
    expected: POSITIVE_DURATION_HINT,
};

/// `--idle-timeout`.
pub static IDLE_TIMEOUT: Flag<Duration> = Flag {
    info: Info {
        flag: "idle-timeout",
        env: "TINYSERVE_IDLE_TIMEOUT",
        value: "DUR",
        default: Some("60s"),
        help: "close connections idle this long",
    },
    parse: values::parse_positive_duration,
    expected: POSITIVE_DURATION_HINT,
};

/// `--max-header-size`.
pub static MAX_HEADER_SIZE: Flag<u64> = Flag {
    info: Info {
        flag: "max-header-size",
        env: "TINYSERVE_MAX_HEADER_SIZE",
        value: "SIZE",
        default: Some("16KiB"),
        help: "largest request head (431 beyond; >= 8KiB)",
    },
    parse: values::parse_header_size,
    expected: "a size of at least 8KiB, like 16KiB",
};

/// `--max-connections`.
pub static MAX_CONNECTIONS: Flag<usize> = Flag {
    info: Info {
        flag: "max-connections",
        env: "TINYSERVE_MAX_CONNECTIONS",
        value: "N",
        default: Some("10000"),
        help: "connections at once, fewer in a memory limit",
    },
    parse: values::parse_count,
    expected: "a whole number, at least 1",
};

/// `--cache-max`.
pub static CACHE_MAX: Flag<u64> = Flag {
    info: Info {
        flag: "cache-max",
        env: "TINYSERVE_CACHE_MAX",
        value: "SIZE",
        default: Some("64MiB"),
        help: "all the memory the file cache may hold",
    },
    parse: values::parse_size,
    expected: "a size like 64MiB",
};

/// `--cache-file-max`.
pub static CACHE_FILE_MAX: Flag<u64> = Flag {
    info: Info {
        flag: "cache-file-max",
        env: "TINYSERVE_CACHE_FILE_MAX",
        value: "SIZE",
        default: Some("8KiB"),
        help: "larger files go by sendfile, not memory",
    },
    parse: values::parse_size,
    expected: "a size like 32KiB",
};

/// `--workers`.
pub static WORKERS: Flag<usize> = Flag {
    info: Info {
        flag: "workers",
        env: "TINYSERVE_WORKERS",
        value: "N",
        default: None,
        help: "worker threads (default: the CPUs allowed)",
    },
    parse: values::parse_count,
    expected: "a whole number of threads, at least 1",
};

/// `--cache-entries`.
pub static CACHE_ENTRIES: Flag<usize> = Flag {
    info: Info {
        flag: "cache-entries",
        env: "TINYSERVE_CACHE_ENTRIES",
        value: "N",
        default: Some("65536"),
        help: "paths whose lookup is kept, at most",
    },
    parse: values::parse_count,
    expected: "a whole number, at least 1",
};

/// `--cache-open-files`.
pub static CACHE_OPEN_FILES: Flag<usize> = Flag {
    info: Info {
        flag: "cache-open-files",
        env: "TINYSERVE_CACHE_OPEN_FILES",
        value: "N",
        default: None,
        help: "files kept open (default: 1/4 of the fd limit)",
    },
    parse: values::parse_count,
    expected: "a whole number, at least 1",
};

/// `--trusted-proxies`.
pub static TRUSTED_PROXIES: Flag<TrustedProxies> = Flag {
    info: Info {
        flag: "trusted-proxies",
        env: "TINYSERVE_TRUSTED_PROXIES",
        value: "CIDR,...",
        default: None,
        help: "proxies whose X-Forwarded-For names the client",
    },
    parse: TrustedProxies::parse,
    expected: "networks like 10.0.0.0/8,fd00::/8 (or single addresses), comma-separated",
};

/// `--watch`.
pub static WATCH: Flag<Mode> = Flag {
    info: Info {
        flag: "watch",
        env: "TINYSERVE_WATCH",
        value: "auto|inotify|poll|off",
        default: Some("auto"),
        help: "how site changes are noticed",
    },
    parse: values::parse_watch,
    expected: "'auto', 'inotify', 'poll' or 'off'",
};

/// `--basic-auth-file`.
pub static BASIC_AUTH_FILE: Flag<String> = Flag {
    info: Info {
        flag: "basic-auth-file",
        env: "TINYSERVE_BASIC_AUTH_FILE",
        value: "FILE",
        default: None,
        help: "htpasswd file (bcrypt): every path needs a login",
    },
    parse: values::text,
    expected: "an htpasswd file",
};

/// `--cors-origins`.
pub static CORS_ORIGINS: Flag<CorsOrigins> = Flag {
    info: Info {
        flag: "cors-origins",
        env: "TINYSERVE_CORS_ORIGINS",
        value: "LIST",
        default: None,
        help: "origins that may read the files cross-origin",
    },
    parse: CorsOrigins::parse,
    expected: "'*' or origins like https://app.example.com, comma-separated",
};

/// Every option, in the order `--help` lists them.
pub static ALL: [&Info; 28] = [
    &ROOT.info,
    &LISTEN.info,
    &SHUTDOWN_DELAY.info,
    &DRAIN_TIMEOUT.info,
    &LOG_FORMAT.info,
    &METRICS_LISTEN.info,
    &ACCESS_LOG.info,
    &ACCESS_LOG_PROBES.info,
    &FALLBACK.info,
    &PRETTY_URLS.info,
    &MAINTENANCE.info,
    &COMPRESS.info,
    &CACHE_CONTROL.info,
    &IMMUTABLE.info,
    &HEADER.info,
    &HEADER_TIMEOUT.info,
    &IDLE_TIMEOUT.info,
    &MAX_HEADER_SIZE.info,
    &MAX_CONNECTIONS.info,
    &CACHE_MAX.info,
    &CACHE_FILE_MAX.info,
    &WORKERS.info,
    &CACHE_ENTRIES.info,
    &CACHE_OPEN_FILES.info,
    &TRUSTED_PROXIES.info,
    &WATCH.info,
    &BASIC_AUTH_FILE.info,
    &CORS_ORIGINS.info,
];
