//! tinyserve: a tiny static-file server for containers and Kubernetes.
//!
//! Map of the crate:
//! - [`config`]: flags and environment variables into a validated [`Config`].
//! - [`path`]: percent-decoding and the rule for what no servable path can be.
//! - [`cache`]: what request paths name ([`entry`]), loaded on first use ([`resolve`]),
//!   kept within budgets by [`store`] with [`s3fifo`] eviction orders (small files' bytes in
//!   memory of their own: [`mapped`]), kept fresh by
//!   [`watch`]; ETags from content, checked against each file's identity ([`file_id`]).
//! - [`negotiate`] (`Accept-Encoding`), [`headers`] (dates, `Cache-Control` policy),
//!   [`mime`], [`conditional`] (RFC 9110 preconditions and ranges).
//! - [`service`]: the service that answers requests; [`observe`] records them
//!   (the client behind trusted proxies: [`proxies`])
//!   (access log, [`metrics`]) once [`delivery`] says the socket took the last byte;
//!   [`body`] is the response body; [`sendfile`] sends large files from the page cache
//!   without copying them through the server.
//! - [`host`]: the RFC 9112 rules for `Host`; [`listen`]: dual-stack binding.
//! - [`server`]: the accept loop, the connection cap and the shutdown sequence;
//!   [`connection`]: one client's connection, timeouts ([`idle`]) and parking between
//!   requests; [`run`] is the entry point tests call with their own shutdown future.
//! - [`signal`], [`logging`], [`healthcheck`]: what `main` wires up around [`run`].
//! - [`check`]: the `tinyserve check` subcommand, a linter for the site.

pub mod auth;
pub mod auth_layer;
pub mod body;
pub mod cache;
pub mod cgroup;
pub mod check;
pub mod conditional;
pub mod config;
pub mod connection;
pub mod cors;
pub mod delivery;
pub mod entry;
pub mod file_id;
pub mod finish;
pub mod headers;
pub mod healthcheck;
pub mod host;
pub mod idle;
pub mod listen;
pub mod logging;
pub mod mapped;
pub mod metrics;
pub mod mime;
pub mod negotiate;
pub mod observe;
pub mod path;
pub mod proxies;
pub mod resolve;
pub mod rules;
pub mod s3fifo;
pub mod sendfile;
pub mod serve_tower;
pub mod server;
pub mod service;
pub mod signal;
pub mod stack;
pub mod store;
pub mod watch;

pub use config::Config;
pub use server::run;
