//! Command line and environment: every flag has an environment variable, a flag beats its
//! variable, and the variable beats the default. Parsing produces a [`Config`] that has
//! already been checked, so the rest of the program never meets an invalid value.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

pub use crate::files::headers::{ImmutableRule, REFUSED_HEADERS};

pub mod flags;
pub mod values;

use flags::{Flag, Info};

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
    /// Whether the probes' requests (`/healthz`, `/readyz`) get their line too.
    pub access_log_probes: bool,
    /// File (relative to the root) that answers unknown paths with 200, for single-page apps.
    pub fallback: Option<String>,
    /// `/about` answers with `about.html`, and `/about.html` redirects there.
    pub pretty_urls: bool,
    /// A file under the root (relative) whose presence takes the site down: every path but
    /// the probes answers 503 with it.
    pub maintenance: Option<String>,
    /// Whether compressible files without sidecars are gzipped (once, in the background).
    pub compress: bool,
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
    pub watch: crate::cache::watch::Mode,
    /// Peers whose `Forwarded` / `X-Forwarded-For` / `X-Real-IP` name the client.
    pub trusted_proxies: crate::http::proxies::TrustedProxies,
    /// Origins allowed to read the files cross-origin; `None`: CORS off.
    pub cors_origins: Option<crate::http::cors::CorsOrigins>,
    /// Users who may see the site (every path but the probes); `None`: open.
    pub basic_auth: Option<std::sync::Arc<crate::http::auth::BasicAuth>>,
    /// The root's `_headers` and `_redirects` as they were at startup.
    pub rules: std::sync::Arc<crate::files::rules::Rules>,
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

/// The `--help` text: every option with its variable and default.
pub fn help() -> String {
    let mut out = String::from(
        "tinyserve: a tiny static-file server for containers and Kubernetes\n\n\
         usage: tinyserve [OPTIONS]\n       \
         tinyserve healthcheck [--listen ADDR]     probe /healthz, exit 0 or 1\n       \
         tinyserve check [--root DIR] [...]        lint a site, exit 1 on errors\n\n\
         Each --some-option is also the variable TINYSERVE_SOME_OPTION (a flag wins).\n\
         DUR: 500ms, 5s, 2m. SIZE: 8192, 16KiB, 2MiB. Defaults in [ ].\n\noptions:\n",
    );
    for o in &flags::ALL {
        let mut line = format!("  --{} {}", o.flag, o.value);
        // The help starts in one column, on the next line after a long name.
        if line.len() > HELP_COLUMN - 2 {
            line.push('\n');
            line.push_str(&" ".repeat(HELP_COLUMN));
        } else {
            line.push_str(&" ".repeat(HELP_COLUMN - line.len()));
        }
        line.push_str(o.help);
        if let Some(d) = o.default.filter(|d| !d.is_empty()) {
            line.push_str(&format!(" [{d}]"));
        }
        if o.env != derived_env(o.flag) {
            line.push_str(&format!(" (env {})", o.env));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str(
        "  -h, --help                print this help\n  \
         -V, --version             print the version and git commit\n\n\
         Probes: GET /healthz (alive), /readyz (503 once SIGTERM arrives).\n\
         Every option in full, _headers and _redirects: docs/configuration.md in the\n\
         source, beside README.md.\n",
    );
    out
}

/// Where `--help` starts each option's text.
const HELP_COLUMN: usize = 28;

/// The variable a flag's name gives: `cache-max` is `TINYSERVE_CACHE_MAX`.
fn derived_env(flag: &str) -> String {
    format!("TINYSERVE_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

/// `tinyserve 0.1.0 (commit abc123)`.
pub fn version() -> String {
    format!(
        "tinyserve {} (commit {})",
        env!("CARGO_PKG_VERSION"),
        env!("TINYSERVE_COMMIT")
    )
}

/// The values given on the command line, by option, and the environment to fall back on.
struct Given<E> {
    /// Per option of [`flags::ALL`], each value given, in order.
    flags: Vec<Vec<String>>,
    env: E,
}

impl<E: Fn(&str) -> Option<String>> Given<E> {
    fn index(info: &Info) -> usize {
        flags::ALL
            .iter()
            .position(|o| std::ptr::eq(*o, info))
            .expect("every flag is in flags::ALL")
    }

    fn was_given(&self, info: &Info) -> bool {
        !self.flags[Self::index(info)].is_empty()
    }

    /// The option's one source: the flag if given (the last one wins), else the variable,
    /// else the default.
    fn source(&self, info: &Info) -> Source {
        if let Some(v) = self.flags[Self::index(info)].last() {
            Source {
                value: Some(v.clone()),
                from: format!("--{} ({})", info.flag, info.env),
            }
        } else if let Some(v) = (self.env)(info.env) {
            Source {
                value: Some(v),
                from: format!("{} (--{})", info.env, info.flag),
            }
        } else {
            Source {
                value: info.default.map(str::to_string),
                from: format!("--{} ({})", info.flag, info.env),
            }
        }
    }

    /// The option's value, read by its own parser; `None` when unset.
    fn get<T>(&self, flag: &Flag<T>) -> Result<Option<T>, ConfigError> {
        self.source(&flag.info)
            .parse_with(flag.parse, flag.expected)
    }

    /// Like [`Self::get`], for an option that has a default.
    fn value<T>(&self, flag: &Flag<T>) -> Result<T, ConfigError> {
        Ok(self.get(flag)?.expect("an option with a default"))
    }

    /// A path option's value; unset or empty is `None`.
    fn path(&self, flag: &Flag<String>) -> Option<String> {
        self.source(&flag.info).value.filter(|v| !v.is_empty())
    }
}

/// Parses the arguments (without the program name) and the environment into a [`Command`].
pub fn parse<I, E>(args: I, env: E) -> Result<Command, ConfigError>
where
    I: IntoIterator<Item = OsString>,
    E: Fn(&str) -> Option<String>,
{
    use lexopt::prelude::*;

    let mut parser = lexopt::Parser::from_args(args);
    let mut given = Given {
        flags: vec![Vec::new(); flags::ALL.len()],
        env,
    };
    let mut healthcheck = false;
    let mut check = false;
    while let Some(arg) = parser.next().map_err(lexopt_error)? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Long(name) => {
                let Some(i) = flags::ALL.iter().position(|o| o.flag == name) else {
                    return Err(ConfigError(format!(
                        "unknown option '--{name}'; run 'tinyserve --help' to list the options"
                    )));
                };
                let name = name.to_string();
                let value = parser.value().map_err(|_| {
                    ConfigError(format!(
                        "--{name} needs a value ({}); for example --{name} {}",
                        flags::ALL[i].value,
                        flags::ALL[i].default.unwrap_or("...")
                    ))
                })?;
                let value = value
                    .into_string()
                    .map_err(|v| ConfigError(format!("--{name}: {v:?} is not valid UTF-8")))?;
                given.flags[i].push(value);
            }
            Value(v) if v == "healthcheck" && !healthcheck && !check => healthcheck = true,
            Value(v) if v == "check" && !healthcheck && !check => check = true,
            other => return Err(lexopt_error(other.unexpected())),
        }
    }

    if healthcheck {
        return Ok(Command::Healthcheck(given.value(&flags::LISTEN)?));
    }
    if check {
        return check_options(&given).map(|o| Command::Check(Box::new(o)));
    }

    let root_src = given.source(&flags::ROOT.info);
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

    // Named before it exists (that is the point), so only its form is checked.
    let maintenance = match given.path(&flags::MAINTENANCE) {
        None => None,
        Some(f) => {
            let rel = f.trim_start_matches('/').to_string();
            let safe = matches!(
                crate::files::path::check(&format!("/{rel}")),
                crate::files::path::Checked::Path(_)
            );
            if !safe || rel.is_empty() || rel.ends_with('/') {
                return Err(given.source(&flags::MAINTENANCE.info).error(
                    &f,
                    "not a file name under the root; name one like maintenance.html, \
                     relative to --root (it need not exist yet)",
                ));
            }
            Some(rel)
        }
    };
    let fallback = match given.path(&flags::FALLBACK) {
        None => None,
        Some(f) => {
            let rel = f.trim_start_matches('/').to_string();
            let hidden = rel.split('/').any(|s| s.is_empty() || s.starts_with('.'));
            if hidden || !root.join(&rel).is_file() {
                return Err(given.source(&flags::FALLBACK.info).error(
                    &f,
                    "not a file under the root; name one like index.html, relative to --root",
                ));
            }
            Some(rel)
        }
    };

    let headers = {
        // Flags come one per occurrence; the variable holds one header per line.
        let info = &flags::HEADER.info;
        let lines: Vec<String> = if given.was_given(info) {
            given.flags[Given::<E>::index(info)].clone()
        } else {
            (given.env)(info.env)
                .map(|v| v.lines().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let src = given.source(info);
        let mut out = Vec::new();
        for line in lines.iter().map(|l| l.trim()).filter(|l| !l.is_empty()) {
            let (name, value) = (flags::HEADER.parse)(line)
                .ok_or_else(|| src.error(line, &format!("expected {}", flags::HEADER.expected)))?;
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

    let rules = std::sync::Arc::new(
        crate::files::rules::Rules::load(&root, &REFUSED_HEADERS)
            .map_err(|why| root_src.error(&root_raw, &format!("the site's {why}")))?,
    );

    let cache_max = given.value(&flags::CACHE_MAX)?;
    let cap = &flags::MAX_CONNECTIONS;
    let (max_connections, max_connections_reason) =
        if given.was_given(&cap.info) || (given.env)(cap.info.env).is_some() {
            (given.value(cap)?, "set".to_string())
        } else {
            default_max_connections(crate::ops::cgroup::memory_limit(), cache_max)
        };

    let basic_auth = match given.path(&flags::BASIC_AUTH_FILE) {
        None => None,
        Some(path) => Some(std::sync::Arc::new(
            crate::http::auth::BasicAuth::load(std::path::Path::new(&path)).map_err(|why| {
                given
                    .source(&flags::BASIC_AUTH_FILE.info)
                    .error(&path, &why)
            })?,
        )),
    };

    Ok(Command::Serve(Box::new(Config {
        rules,
        root,
        listen: given.value(&flags::LISTEN)?,
        shutdown_delay: given.value(&flags::SHUTDOWN_DELAY)?,
        drain_timeout: given.value(&flags::DRAIN_TIMEOUT)?,
        log_format: given.value(&flags::LOG_FORMAT)?,
        metrics_listen: given.get(&flags::METRICS_LISTEN)?.flatten(),
        access_log: given.value(&flags::ACCESS_LOG)?,
        access_log_probes: given.value(&flags::ACCESS_LOG_PROBES)?,
        fallback,
        pretty_urls: given.value(&flags::PRETTY_URLS)?,
        maintenance,
        compress: given.value(&flags::COMPRESS)?,
        cache_control: given.value(&flags::CACHE_CONTROL)?,
        immutable: given.value(&flags::IMMUTABLE)?,
        headers,
        header_timeout: given.value(&flags::HEADER_TIMEOUT)?,
        idle_timeout: given.value(&flags::IDLE_TIMEOUT)?,
        max_header_size: given.value(&flags::MAX_HEADER_SIZE)? as usize,
        max_connections,
        max_connections_reason,
        cache_max,
        cache_file_max: given.value(&flags::CACHE_FILE_MAX)?,
        workers: given.get(&flags::WORKERS)?,
        cache_entries: given.value(&flags::CACHE_ENTRIES)?,
        cache_open_files: given.get(&flags::CACHE_OPEN_FILES)?,
        basic_auth,
        cors_origins: given.get(&flags::CORS_ORIGINS)?,
        trusted_proxies: given.get(&flags::TRUSTED_PROXIES)?.unwrap_or_default(),
        watch: given.value(&flags::WATCH)?,
    })))
}

/// `tinyserve check`'s options: those that change what the server serves; the rest
/// (listeners, limits) do not apply.
fn check_options<E: Fn(&str) -> Option<String>>(
    given: &Given<E>,
) -> Result<crate::check::Options, ConfigError> {
    let applies = [
        &flags::ROOT.info,
        &flags::FALLBACK.info,
        &flags::IMMUTABLE.info,
        &flags::CACHE_CONTROL.info,
        &flags::PRETTY_URLS.info,
    ];
    if let Some(o) = flags::ALL
        .iter()
        .find(|o| given.was_given(o) && !applies.iter().any(|a| std::ptr::eq(*a, **o)))
    {
        return Err(ConfigError(format!(
            "--{} does not apply to 'tinyserve check', which takes --root, --fallback, \
             --immutable, --cache-control and --pretty-urls",
            o.flag
        )));
    }
    let root_src = given.source(&flags::ROOT.info);
    let root_raw = root_src.value.clone().unwrap_or_default();
    let root = std::fs::canonicalize(&root_raw)
        .ok()
        .filter(|r| r.is_dir())
        .ok_or_else(|| root_src.error(&root_raw, "no such directory; point it at your site"))?;
    Ok(crate::check::Options {
        root,
        fallback: given
            .path(&flags::FALLBACK)
            .map(|f| f.trim_start_matches('/').to_string()),
        immutable: given.value(&flags::IMMUTABLE)?,
        pretty_urls: given.value(&flags::PRETTY_URLS)?,
        cache_control: given
            .source(&flags::CACHE_CONTROL.info)
            .value
            .unwrap_or_default(),
    })
}

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

#[cfg(test)]
mod tests;
