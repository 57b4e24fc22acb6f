//! tinyserve: a tiny static-file server for containers and Kubernetes.
//!
//! Map of the crate, by job:
//! - [`http`]: the accept loop, connections, and the request path as a tower stack
//!   (access log and metrics, tower-http's header and CORS layers, basic auth), served
//!   by hyper; large files leave by `sendfile(2)`.
//! - [`files`]: the site's answer to a path: probes, `_headers`/`_redirects`, files with
//!   content ETags, conditionals and ranges, content types.
//! - [`cache`]: what request paths name, loaded on first use, kept within memory,
//!   entry and descriptor budgets (S3-FIFO eviction) and fresh as files change.
//! - [`ops`]: configuration, logging, metrics, signals, the self-healthcheck.
//! - [`check`]: the `tinyserve check` subcommand, a linter for the site.
//!
//! [`run`] is the entry point: `main` and the tests call it with a bound listener, a
//! [`Config`] and a shutdown future.

pub mod cache;
pub mod check;
pub mod files;
pub mod http;
pub mod ops;

pub use self::http::server::run;
pub use self::ops::config::Config;
