//! Command line and environment: every flag has an environment variable, a flag beats its
//! variable, and the variable beats the default. Parsing produces a [`Config`] that has
//! already been checked, so the rest of the program never meets an invalid value.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

pub use crate::headers::{ImmutableRule, REFUSED_HEADERS};

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Serve the site with this configuration.
    Serve(Box<Config>),
    /// `tinyserve healthcheck`: probe `/healthz` on this address and exit 0 or 1.
    Healthcheck(SocketAddr),
    /// `tinyserve check`: lint the site and exit 0, or 1 on errors.
    Check(Box<crate::check::Options>),
    /// `--help`: print [`help`] and exit 0.
    Help,
    /// `--version`: print [`version`] and exit 0.
    Version,
}

/// Format of the access and event log on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for cluster log pipelines.
    Json,
}

/// A validated configuration: every field holds a value the server can use as it is.
#[derive(Debug, Clone)]
pub struct Config {
    /// Folder to serve, canonicalised; it existed and was a directory at startup.
    pub root: PathBuf,
    /// Address to bind the public listener to.
    pub listen: SocketAddr,
    /// After SIGTERM: keep serving (readiness failing) this long before closing the listener.
    pub shutdown_delay: Duration,
    /// Then: wait at most this long for in-flight requests to finish.
    pub drain_timeout: Duration,
    /// Log format on stdout.
    pub log_format: LogFormat,
    /// Separate listener for Prometheus `/metrics`; `None` means no metrics endpoint.
    pub metrics_listen: Option<SocketAddr>,
    /// Whether to write one log line per request.
    pub access_log: bool,
    /// File (relative to the root) that answers unknown paths with 200, for single-page apps.
    pub fallback: Option<String>,
    /// `Cache-Control` for every file that is not immutable (HTML included).
    pub cache_control: HeaderValue,
    /// Which files get `public, max-age=31536000, immutable`.
    pub immutable: ImmutableRule,
    /// Extra headers added to every response (CSP, HSTS, ...).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// A client must send a complete request head within this time.
    pub header_timeout: Duration,
    /// A connection with no bytes moving either way for this long is closed.
    pub idle_timeout: Duration,
    /// Largest request head accepted; larger ones get 431.
    pub max_header_size: usize,
    /// Connections served at once; further clients wait in the kernel's accept queue.
    pub max_connections: usize,
    /// Where `max_connections` came from: `set`, `default`, or the cgroup memory limit.
    pub max_connections_reason: String,
    /// Memory for the file cache: entries at 0.5 KiB each, and small files' content.
    pub cache_max: u64,
    /// Files larger than this are sent from disk (sendfile), never kept in memory.
    pub cache_file_max: u64,
    /// Runtime worker threads; `None` means the CPUs this process may use.
    pub workers: Option<usize>,
    /// Request paths whose lookup is kept (found or not).
    pub cache_entries: usize,
    /// Files kept open; `None` means a quarter of the descriptor limit, at most 16384.
    pub cache_open_files: Option<usize>,
    /// How changes to the site are noticed.
    pub watch: crate::watch::Mode,
    /// Peers whose `Forwarded` / `X-Forwarded-For` / `X-Real-IP` name the client.
    pub trusted_proxies: crate::proxies::TrustedProxies,
    /// Origins allowed to read the files cross-origin; `None`: CORS off.
    pub cors_origins: Option<crate::cors::CorsOrigins>,
    /// Users who may see the site (every path but the probes); `None`: open.
    pub basic_auth: Option<std::sync::Arc<crate::auth::BasicAuth>>,
    /// The root's `_headers` and `_redirects` as they were at startup.
    pub rules: std::sync::Arc<crate::rules::Rules>,
}

/// A configuration error: the message names the flag, its variable and the bad value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// One option: its flag, its environment variable, its default and its help line.
struct Opt {
    flag: &'static str,
    env: &'static str,
    value: &'static str,
    default: Option<&'static str>,
    help: &'static str,
}

const ROOT: usize = 0;
const LISTEN: usize = 1;
const SHUTDOWN_DELAY: usize = 2;
const DRAIN_TIMEOUT: usize = 3;
const LOG_FORMAT: usize = 4;
const METRICS_LISTEN: usize = 5;
const ACCESS_LOG: usize = 6;
const FALLBACK: usize = 7;
const CACHE_CONTROL: usize = 8;
const IMMUTABLE: usize = 9;
const HEADER: usize = 10;
const HEADER_TIMEOUT: usize = 11;
const IDLE_TIMEOUT: usize = 12;
const MAX_HEADER_SIZE: usize = 13;
const MAX_CONNECTIONS: usize = 14;
const CACHE_MAX: usize = 15;
const CACHE_FILE_MAX: usize = 16;
const WORKERS: usize = 17;
const CACHE_ENTRIES: usize = 18;
const CACHE_OPEN_FILES: usize = 19;
const WATCH: usize = 21;
const TRUSTED_PROXIES: usize = 20;
const CORS_ORIGINS: usize = 23;
const BASIC_AUTH_FILE: usize = 22;

/// Every option, in the order `--help` lists them. The indices above point into it.
const OPTS: [Opt; 24] = [
    Opt { flag: "root", env: "TINYSERVE_ROOT", value: "DIR", default: Some("static"), help: "folder to serve; must exist at startup" },
    Opt { flag: "listen", env: "TINYSERVE_LISTEN", value: "ADDR", default: Some("[::]:8080"), help: "address to bind; [::] is IPv4 and IPv6 (IPv4 only where the host has no IPv6); port 0 picks a free port" },
    Opt { flag: "shutdown-delay", env: "TINYSERVE_SHUTDOWN_DELAY", value: "DUR", default: Some("0s"), help: "after SIGTERM, keep serving (readiness failing) this long before closing the listener" },
    Opt { flag: "drain-timeout", env: "TINYSERVE_DRAIN_TIMEOUT", value: "DUR", default: Some("10s"), help: "then wait at most this long for in-flight requests" },
    Opt { flag: "log-format", env: "TINYSERVE_LOG_FORMAT", value: "text|json", default: Some("text"), help: "access and event log format on stdout (level through RUST_LOG)" },
    Opt { flag: "metrics-listen", env: "TINYSERVE_METRICS_LISTEN", value: "ADDR", default: None, help: "separate listener for Prometheus /metrics (off when unset)" },
    Opt { flag: "access-log", env: "TINYSERVE_ACCESS_LOG", value: "on|off", default: Some("on"), help: "one log line per request" },
    Opt { flag: "fallback", env: "TINYSERVE_FALLBACK", value: "FILE", default: None, help: "file under the root that answers unknown paths with 200 for navigations only (single-page apps)" },
    Opt { flag: "cache-control", env: "TINYSERVE_CACHE_CONTROL", value: "VALUE", default: Some("no-cache"), help: "Cache-Control of every file that is not immutable, HTML included" },
    Opt { flag: "immutable", env: "TINYSERVE_IMMUTABLE", value: "LIST", default: Some("fingerprint"), help: "comma-separated: 'fingerprint' (hashed file names) and /path/prefixes/ served with max-age=31536000, immutable; empty for none" },
    Opt { flag: "header", env: "TINYSERVE_HEADERS", value: "'NAME: VALUE'", default: None, help: "extra response header; repeat the flag, or one per line in the variable" },
    Opt { flag: "header-timeout", env: "TINYSERVE_HEADER_TIMEOUT", value: "DUR", default: Some("10s"), help: "close a connection whose request head takes longer (slowloris)" },
    Opt { flag: "idle-timeout", env: "TINYSERVE_IDLE_TIMEOUT", value: "DUR", default: Some("60s"), help: "close a connection with no bytes moving for this long (keep-alive, stalled transfers)" },
    Opt { flag: "max-header-size", env: "TINYSERVE_MAX_HEADER_SIZE", value: "SIZE", default: Some("16KiB"), help: "largest request head; larger ones get 431 (at least 8KiB)" },
    Opt { flag: "max-connections", env: "TINYSERVE_MAX_CONNECTIONS", value: "N", default: Some("10000"), help: "connections served at once; more wait in the accept queue (unset under a cgroup memory limit: what the limit leaves after --cache-max and 8 MiB, at 20 KiB per connection)" },
    Opt { flag: "cache-max", env: "TINYSERVE_CACHE_MAX", value: "SIZE", default: Some("64MiB"), help: "memory for the file cache in all: 0.5 KiB per path kept, and small files' bytes" },
    Opt { flag: "cache-file-max", env: "TINYSERVE_CACHE_FILE_MAX", value: "SIZE", default: Some("8KiB"), help: "larger files are sent from disk with sendfile(2), not kept in memory" },
    Opt { flag: "workers", env: "TINYSERVE_WORKERS", value: "N", default: None, help: "worker threads (default: the CPUs this process may use, cgroup quota included)" },
    Opt { flag: "cache-entries", env: "TINYSERVE_CACHE_ENTRIES", value: "N", default: Some("65536"), help: "request paths whose lookup is kept, found or not, at most (each counts 0.5 KiB against --cache-max)" },
    Opt { flag: "cache-open-files", env: "TINYSERVE_CACHE_OPEN_FILES", value: "N", default: None, help: "files kept open for sendfile (default: a quarter of the descriptor limit, at most 16384)" },
    Opt { flag: "trusted-proxies", env: "TINYSERVE_TRUSTED_PROXIES", value: "CIDR,...", default: None, help: "peers (load balancers, ingress) whose Forwarded / X-Forwarded-For / X-Real-IP name the client in the access log; others' are ignored" },
    Opt { flag: "watch", env: "TINYSERVE_WATCH", value: "auto|inotify|poll|off", default: Some("auto"), help: "how site changes are noticed: inotify, a stat at most every 0.5 s per file in use (poll; auto picks it on network file systems), or never (off)" },
    Opt { flag: "basic-auth-file", env: "TINYSERVE_BASIC_AUTH_FILE", value: "FILE", default: None, help: "htpasswd file (bcrypt lines, htpasswd -B): every path but /healthz and /readyz needs those credentials (off when unset)" },
    Opt { flag: "cors-origins", env: "TINYSERVE_CORS_ORIGINS", value: "LIST", default: None, help: "origins allowed to read the files cross-origin (https://app.example.com,... or *); preflights answered (off when unset)" },
];

/// The `--help` text: every option with its variable and default.
pub fn help() -> String {
    let mut out = String::from(
        "tinyserve: a tiny static-file server for containers and Kubernetes\n\n\
         usage: tinyserve [OPTIONS]\n       tinyserve healthcheck [--listen ADDR]\n       \
         tinyserve check [--root DIR] [--fallback FILE] [--immutable LIST] [--cache-control VALUE]\n\n\
         Every option can also be set by its environment variable; a flag wins over its variable.\n\
         DUR is a duration like 500ms, 5s or 2m; SIZE is bytes like 8192, 16KiB or 2MiB.\n\noptions:\n",
    );
    for o in &OPTS {
        let default = match o.default {
            Some(d) => format!("default: {}", if d.is_empty() { "none" } else { d }),
            None => "default: unset".to_string(),
        };
        out.push_str(&format!(
            "  --{} {}\n      {}\n      [env: {}] [{}]\n",
            o.flag, o.value, o.help, o.env, default
        ));
    }
    out.push_str(
        "  -h, --help\n      print this help\n  -V, --version\n      print the version and git commit\n\n\
         endpoints: GET|HEAD /healthz (liveness), /readyz (readiness: 503 once SIGTERM arrives)\n",
    );
    out
}

/// `tinyserve 0.1.0 (commit abc123)`.
pub fn version() -> String {
    format!(
        "tinyserve {} (commit {})",
        env!("CARGO_PKG_VERSION"),
        env!("TINYSERVE_COMMIT")
    )
}

/// Parses the arguments (without the program name) and the environment into a [`Command`].
pub fn parse<I, E>(args: I, env: E) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = OsString>,
    E: Fn(&str) -> Option<String>,
{
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut given: Vec<Vec<String>> = vec![Vec::new(); OPTS.len()];
    let mut healthcheck = false;
    let mut check = false;
    while let Some(arg) = parser.next().map_err(lexopt_error)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long(name) => {
                let Some(i) = OPTS.iter().position(|o| o.flag == name) else {
                    return Err(ConfigError(format!(
                        "unknown option '--{name}'; run 'tinyserve --help' to list the options"
                    )));
                };
                let name = name.to_string();
                let value = parser.value().map_err(|_| {
                    ConfigError(format!(
                        "--{name} needs a value ({}); for example --{name} {}",
                        OPTS[i].value,
                        OPTS[i].default.unwrap_or("...")
                    ))
                })?;
                let value = value
                    .into_string()
                    .map_err(|v| ConfigError(format!("--{name}: {v:?} is not valid UTF-8")))?;
                given[i].push(value);
            }
            Value(v) if v == "healthcheck" && !healthcheck && !check => healthcheck = true,
            Value(v) if v == "check" && !healthcheck && !check => check = true,
            other => return Err(lexopt_error(other.unexpected())),
        }
    }

    // One source per option: the flags if given, else the variable, else the default.
    let source = |i: usize| -> Source {
        let o = &OPTS[i];
        if let Some(v) = given[i].last() {
            Source {
                value: Some(v.clone()),
                from: format!("--{} ({})", o.flag, o.env),
            }
        } else if let Some(v) = env(o.env) {
            Source {
                value: Some(v),
                from: format!("{} (--{})", o.env, o.flag),
            }
        } else {
            Source {
                value: o.default.map(str::to_string),
                from: format!("--{} ({})", o.flag, o.env),
            }
        }
    };

    if healthcheck {
        let listen =
            source(LISTEN).parse_with(parse_addr, "an address like [::]:8080 or 0.0.0.0:8080")?;
        return Ok(Command::Healthcheck(listen.expect("listen has a default")));
    }

    if check {
        // What changes what the server serves; the rest (listeners, limits) does not apply.
        if let Some(i) = (0..OPTS.len()).find(|&i| {
            !given[i].is_empty() && ![ROOT, FALLBACK, IMMUTABLE, CACHE_CONTROL].contains(&i)
        }) {
            return Err(ConfigError(format!(
                "--{} does not apply to 'tinyserve check', which takes --root, --fallback, \
                 --immutable and --cache-control",
                OPTS[i].flag
            )));
        }
        let root_src = source(ROOT);
        let root_raw = root_src.value.clone().unwrap_or_default();
        let root = std::fs::canonicalize(&root_raw)
            .ok()
            .filter(|r| r.is_dir())
            .ok_or_else(|| root_src.error(&root_raw, "no such directory; point it at your site"))?;
        return Ok(Command::Check(Box::new(crate::check::Options {
            root,
            fallback: source(FALLBACK)
                .value
                .filter(|v| !v.is_empty())
                .map(|f| f.trim_start_matches('/').to_string()),
            immutable: source(IMMUTABLE)
                .parse_with(
                    parse_immutable,
                    "'fingerprint' and/or path prefixes starting with '/', comma-separated",
                )?
                .unwrap_or_default(),
            cache_control: source(CACHE_CONTROL).value.unwrap_or_default(),
        })));
    }

    let root_src = source(ROOT);
    let root_raw = root_src.value.clone().unwrap_or_default();
    let root = std::fs::canonicalize(&root_raw).map_err(|_| {
        root_src.error(
            &root_raw,
            "no such directory; create it or point it at your site",
        )
    })?;
    if !root.is_dir() {
        return Err(root_src.error(
            &root_raw,
            "not a directory; point it at the folder to serve",
        ));
    }

    let fallback = match source(FALLBACK).value.filter(|v| !v.is_empty()) {
        None => None,
        Some(f) => {
            let rel = f.trim_start_matches('/').to_string();
            let hidden = rel.split('/').any(|s| s.is_empty() || s.starts_with('.'));
            if hidden || !root.join(&rel).is_file() {
                return Err(source(FALLBACK).error(
                    &f,
                    "not a file under the root; name one like index.html, relative to --root",
                ));
            }
            Some(rel)
        }
    };

    let cache_control_src = source(CACHE_CONTROL);
    let cc_raw = cache_control_src.value.clone().unwrap_or_default();
    let cache_control = HeaderValue::from_str(&cc_raw)
        .map_err(|_| cache_control_src.error(&cc_raw, "not a valid header value"))?;

    let headers = {
        // Flags come one per occurrence; the variable holds one header per line.
        let lines: Vec<String> = if !given[HEADER].is_empty() {
            given[HEADER].clone()
        } else {
            env(OPTS[HEADER].env)
                .map(|v| v.lines().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let src = source(HEADER);
        let mut out = Vec::new();
        for line in lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
            let (name, value) = parse_header(line).ok_or_else(|| {
                src.error(
                    line,
                    "expected 'Name: value', e.g. 'Content-Security-Policy: default-src 'self''",
                )
            })?;
            if REFUSED_HEADERS.contains(&name.as_str()) {
                return Err(src.error(
                    line,
                    "the server sets this header per response (message framing, a hop-by-hop \
                     header or the representation's own); add others, like CSP or HSTS",
                ));
            }
            out.push((name, value));
        }
        out
    };

    let max_header_size = source(MAX_HEADER_SIZE)
        .parse_with(parse_size, "a size like 16KiB")?
        .unwrap_or(0);
    if max_header_size < 8192 {
        let src = source(MAX_HEADER_SIZE);
        return Err(src.error(src.value.as_deref().unwrap_or(""), "must be at least 8KiB"));
    }

    let workers =
        source(WORKERS).parse_with(parse_count, "a whole number of threads, at least 1")?;

    let rules = std::sync::Arc::new(
        crate::rules::Rules::load(&root, &REFUSED_HEADERS)
            .map_err(|why| root_src.error(&root_raw, &format!("the site's {why}")))?,
    );

    let cache_max = source(CACHE_MAX)
        .parse_with(parse_size, "a size like 64MiB")?
        .unwrap_or(0);
    let cap_given = !given[MAX_CONNECTIONS].is_empty() || env(OPTS[MAX_CONNECTIONS].env).is_some();
    let (max_connections, max_connections_reason) = if cap_given {
        let n = source(MAX_CONNECTIONS)
            .parse_with(parse_count, "a whole number, at least 1")?
            .unwrap_or(1);
        (n, "set".to_string())
    } else {
        default_max_connections(crate::cgroup::memory_limit(), cache_max)
    };

    Ok(Command::Serve(Box::new(Config {
        rules,
        root,
        listen: source(LISTEN)
            .parse_with(parse_addr, "an address like 0.0.0.0:8080 or [::]:8080")?
            .unwrap_or_else(|| unreachable!()),
        shutdown_delay: source(SHUTDOWN_DELAY)
            .parse_with(parse_duration, DURATION_HINT)?
            .unwrap_or_default(),
        drain_timeout: source(DRAIN_TIMEOUT)
            .parse_with(parse_duration, DURATION_HINT)?
            .unwrap_or_default(),
        log_format: source(LOG_FORMAT)
            .parse_with(parse_log_format, "'text' or 'json'")?
            .unwrap_or(LogFormat::Text),
        metrics_listen: source(METRICS_LISTEN)
            .parse_with(parse_addr_or_off, "an address like 0.0.0.0:9090")?
            .flatten(),
        access_log: source(ACCESS_LOG)
            .parse_with(parse_switch, "'on' or 'off'")?
            .unwrap_or(true),
        fallback,
        cache_control,
        immutable: source(IMMUTABLE)
            .parse_with(
                parse_immutable,
                "'fingerprint' and/or path prefixes starting with '/', comma-separated",
            )?
            .unwrap_or_default(),
        headers,
        header_timeout: source(HEADER_TIMEOUT)
            .parse_with(parse_positive_duration, POSITIVE_DURATION_HINT)?
            .unwrap_or_default(),
        idle_timeout: source(IDLE_TIMEOUT)
            .parse_with(parse_positive_duration, POSITIVE_DURATION_HINT)?
            .unwrap_or_default(),
        max_header_size: max_header_size as usize,
        max_connections,
        max_connections_reason,
        cache_max,
        cache_file_max: source(CACHE_FILE_MAX)
            .parse_with(parse_size, "a size like 32KiB")?
            .unwrap_or(0),
        workers,
        cache_entries: source(CACHE_ENTRIES)
            .parse_with(parse_count, "a whole number, at least 1")?
            .unwrap_or(1),
        cache_open_files: source(CACHE_OPEN_FILES)
            .parse_with(parse_count, "a whole number, at least 1")?,
        basic_auth: match source(BASIC_AUTH_FILE).value.filter(|v| !v.is_empty()) {
            None => None,
            Some(path) => Some(std::sync::Arc::new(
                crate::auth::BasicAuth::load(std::path::Path::new(&path))
                    .map_err(|why| source(BASIC_AUTH_FILE).error(&path, &why))?,
            )),
        },
        cors_origins: source(CORS_ORIGINS).parse_with(
            crate::cors::CorsOrigins::parse,
            "'*' or origins like https://app.example.com, comma-separated",
        )?,
        trusted_proxies: source(TRUSTED_PROXIES)
            .parse_with(
                crate::proxies::TrustedProxies::parse,
                "networks like 10.0.0.0/8,fd00::/8 (or single addresses), comma-separated",
            )?
            .unwrap_or_default(),
        watch: source(WATCH)
            .parse_with(parse_watch, "'auto', 'inotify', 'poll' or 'off'")?
            .unwrap_or(crate::watch::Mode::Auto),
    })))
}

/// Memory per open connection, measured (`bench/connections.py`: 15.4-16.5 KiB in the
/// middle of a download, which the cap must allow for every connection; 4.8 KiB idle after
/// a request in a burst, once parked), with headroom.
pub const CONNECTION_MEMORY: u64 = 20 * 1024;
/// The process apart from the cache and the connections (1.6 MiB at start), with room for
/// the allocator's slack and requests in progress.
pub const BASE_MEMORY: u64 = 8 << 20;
/// `--max-connections` where no memory limit applies.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The default connection cap and why: 10 000, or under a memory limit as many connections
/// as fit in what it leaves after the cache and the process (at least 16), so that a burst
/// of clients queues in the kernel instead of getting the process OOM-killed.
pub fn default_max_connections(memory_limit: Option<u64>, cache_max: u64) -> (usize, String) {
    let Some(limit) = memory_limit else {
        return (DEFAULT_MAX_CONNECTIONS, "default".to_string());
    };
    let room = limit.saturating_sub(cache_max.saturating_add(BASE_MEMORY));
    let fit = (room / CONNECTION_MEMORY).min(DEFAULT_MAX_CONNECTIONS as u64) as usize;
    let n = fit.max(16);
    (
        n,
        format!(
            "cgroup memory limit {} MiB: {} MiB left after --cache-max and 8 MiB, at 20 KiB \
             per connection",
            limit >> 20,
            room >> 20
        ),
    )
}

const DURATION_HINT: &str = "a duration like 500ms, 5s or 2m";
const POSITIVE_DURATION_HINT: &str = "a duration above zero, like 500ms, 5s or 2m";

/// Where one option's value came from, so an error can name it.
struct Source {
    value: Option<String>,
    from: String,
}

impl Source {
    fn error(&self, value: &str, why: &str) -> ConfigError {
        ConfigError(format!("invalid value {value:?} for {}: {why}", self.from))
    }

    /// Parses the value if there is one; an unparsable value is an error that names it.
    fn parse_with<T>(
        &self,
        parse: fn(&str) -> Option<T>,
        expected: &str,
    ) -> Result<Option<T>, ConfigError> {
        match &self.value {
            None => Ok(None),
            Some(v) => parse(v.trim())
                .map(Some)
                .ok_or_else(|| self.error(v, &format!("expected {expected}"))),
        }
    }
}

fn lexopt_error(e: lexopt::Error) -> ConfigError {
    ConfigError(format!("{e}; run 'tinyserve --help' to list the options"))
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

fn parse_positive_duration(s: &str) -> Option<Duration> {
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

fn parse_addr(s: &str) -> Option<SocketAddr> {
    s.parse().ok()
}

fn parse_addr_or_off(s: &str) -> Option<Option<SocketAddr>> {
    if s.is_empty() || s == "off" {
        Some(None)
    } else {
        parse_addr(s).map(Some)
    }
}

fn parse_count(s: &str) -> Option<usize> {
    s.parse().ok().filter(|&n| n >= 1)
}

fn parse_switch(s: &str) -> Option<bool> {
    match s {
        "on" | "true" | "1" | "yes" => Some(true),
        "off" | "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn parse_watch(s: &str) -> Option<crate::watch::Mode> {
    use crate::watch::Mode;
    [Mode::Auto, Mode::Inotify, Mode::Poll, Mode::Off]
        .into_iter()
        .find(|m| m.name() == s)
}

fn parse_log_format(s: &str) -> Option<LogFormat> {
    match s {
        "text" => Some(LogFormat::Text),
        "json" => Some(LogFormat::Json),
        _ => None,
    }
}

fn parse_immutable(s: &str) -> Option<ImmutableRule> {
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

fn parse_header(line: &str) -> Option<(HeaderName, HeaderValue)> {
    let (name, value) = line.split_once(':')?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).ok()?;
    let value = HeaderValue::from_str(value.trim()).ok()?;
    Some((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_args(args: &[&str], env: &[(&str, &str)]) -> Result<Command, ConfigError> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(args.iter().map(OsString::from), move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    fn config(args: &[&str], env: &[(&str, &str)]) -> Config {
        let dir = env!("CARGO_MANIFEST_DIR");
        let mut all = vec!["--root", dir];
        all.extend_from_slice(args);
        match parse_args(&all, env).unwrap() {
            Command::Serve(c) => *c,
            other => panic!("expected serve, got {other:?}"),
        }
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("5"), None);
        assert_eq!(parse_duration("-5s"), None);
        assert_eq!(parse_duration("5 s"), None);
        assert_eq!(parse_size("16KiB"), Some(16384));
        assert_eq!(parse_size("2MiB"), Some(2 << 20));
        assert_eq!(parse_size("12"), Some(12));
        assert_eq!(parse_size("1.5M"), None);
    }

    #[test]
    fn flag_beats_env_beats_default() {
        let c = config(&[], &[]);
        assert_eq!(c.listen, "[::]:8080".parse().unwrap());
        assert_eq!(c.drain_timeout, Duration::from_secs(10));
        let c = config(&[], &[("TINYSERVE_LISTEN", "127.0.0.1:9")]);
        assert_eq!(c.listen, "127.0.0.1:9".parse().unwrap());
        let c = config(
            &["--listen", "127.0.0.1:7"],
            &[("TINYSERVE_LISTEN", "127.0.0.1:9")],
        );
        assert_eq!(c.listen, "127.0.0.1:7".parse().unwrap());
    }

    #[test]
    fn headers_from_flags_and_env_lines() {
        let c = config(&["--header", "X-A: 1", "--header", "X-B: two"], &[]);
        assert_eq!(c.headers.len(), 2);
        let c = config(
            &[],
            &[(
                "TINYSERVE_HEADERS",
                "X-A: 1\nStrict-Transport-Security: max-age=63072000\n",
            )],
        );
        assert_eq!(c.headers[1].0, "strict-transport-security");
    }

    #[test]
    fn immutable_rule() {
        let c = config(&["--immutable", "fingerprint,/assets/"], &[]);
        assert!(c.immutable.fingerprinted);
        assert_eq!(c.immutable.prefixes, vec!["/assets/".to_string()]);
        let c = config(&["--immutable", ""], &[]);
        assert_eq!(c.immutable, ImmutableRule::default());
    }

    #[test]
    fn errors_name_flag_env_and_value() {
        let e = parse_args(&["--root", ".", "--drain-timeout", "ten"], &[])
            .unwrap_err()
            .0;
        assert!(
            e.contains("--drain-timeout") && e.contains("\"ten\""),
            "{e}"
        );
        let e = parse_args(&["--root", "."], &[("TINYSERVE_SHUTDOWN_DELAY", "5x")])
            .unwrap_err()
            .0;
        assert!(
            e.contains("TINYSERVE_SHUTDOWN_DELAY")
                && e.contains("--shutdown-delay")
                && e.contains("\"5x\""),
            "{e}"
        );
        let e = parse_args(&["--root", "/nonexistent/site"], &[])
            .unwrap_err()
            .0;
        assert!(
            e.contains("TINYSERVE_ROOT") && e.contains("/nonexistent/site"),
            "{e}"
        );
        let e = parse_args(&["--bogus", "1"], &[]).unwrap_err().0;
        assert!(e.contains("--bogus"), "{e}");
    }

    #[test]
    fn every_index_names_its_option() {
        let indices = [
            (ROOT, "root"),
            (LISTEN, "listen"),
            (SHUTDOWN_DELAY, "shutdown-delay"),
            (DRAIN_TIMEOUT, "drain-timeout"),
            (LOG_FORMAT, "log-format"),
            (METRICS_LISTEN, "metrics-listen"),
            (ACCESS_LOG, "access-log"),
            (FALLBACK, "fallback"),
            (CACHE_CONTROL, "cache-control"),
            (IMMUTABLE, "immutable"),
            (HEADER, "header"),
            (HEADER_TIMEOUT, "header-timeout"),
            (IDLE_TIMEOUT, "idle-timeout"),
            (MAX_HEADER_SIZE, "max-header-size"),
            (MAX_CONNECTIONS, "max-connections"),
            (CACHE_MAX, "cache-max"),
            (CACHE_FILE_MAX, "cache-file-max"),
            (WORKERS, "workers"),
            (CACHE_ENTRIES, "cache-entries"),
            (CACHE_OPEN_FILES, "cache-open-files"),
            (TRUSTED_PROXIES, "trusted-proxies"),
            (WATCH, "watch"),
            (CORS_ORIGINS, "cors-origins"),
            (BASIC_AUTH_FILE, "basic-auth-file"),
        ];
        assert_eq!(indices.len(), OPTS.len());
        for (i, flag) in indices {
            assert_eq!(OPTS[i].flag, flag);
        }
    }

    #[test]
    fn healthcheck_reads_listen() {
        match parse_args(&["healthcheck"], &[("TINYSERVE_LISTEN", "0.0.0.0:9999")]).unwrap() {
            Command::Healthcheck(a) => assert_eq!(a.port(), 9999),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_connection_cap_fits_the_memory_limit() {
        let mib = 1u64 << 20;
        assert_eq!(default_max_connections(None, 64 * mib).0, 10_000);
        // The manifest's pod: 96 MiB, a 32 MiB cache: 56 MiB left, 2 867 connections.
        let (n, why) = default_max_connections(Some(96 * mib), 32 * mib);
        assert_eq!(n, 2867);
        assert!(why.contains("96 MiB") && why.contains("56 MiB"), "{why}");
        assert_eq!(default_max_connections(Some(96 * mib), 64 * mib).0, 1228);
        // Plenty of memory: the usual default; too little: a floor, not zero.
        assert_eq!(
            default_max_connections(Some(4096 * mib), 64 * mib).0,
            10_000
        );
        assert_eq!(default_max_connections(Some(32 * mib), 64 * mib).0, 16);
        // At the cap, cache and connections stay within the limit.
        for limit in [64, 96, 128, 256, 512] {
            let (n, _) = default_max_connections(Some(limit * mib), 32 * mib);
            assert!(32 * mib + BASE_MEMORY + n as u64 * CONNECTION_MEMORY <= limit * mib);
        }
    }
}
