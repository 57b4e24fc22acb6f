//! tinyserve: a tiny static-file server for containers and Kubernetes.
//!
//! Map of the crate:
//! - [`config`]: flags and environment variables into a validated [`Config`].
//! - [`site`]: the index of the root, built once at startup (ETags from content, small files
//!   in memory, headers precomputed); path decoding and the rules for what is never served.
//! - [`conditional`]: RFC 9110 preconditions and ranges.
//! - [`service`]: the tower service that answers requests; [`observe`] records them
//!   (access log, [`metrics`]); [`body`] is the response body; [`sendfile`] sends large
//!   files from the page cache without copying them through the server.
//! - [`server`]: the accept loop, connection limits and timeouts ([`idle`]), graceful
//!   shutdown; [`run`] is the entry point tests call with their own shutdown future.
//! - [`signal`], [`logging`], [`healthcheck`]: what `main` wires up around [`run`].

pub mod body;
pub mod conditional;
pub mod config;
pub mod healthcheck;
pub mod idle;
pub mod logging;
pub mod memcpy;
pub mod metrics;
pub mod mime;
pub mod observe;
pub mod sendfile;
pub mod server;
pub mod service;
pub mod signal;
pub mod site;

pub use config::Config;
pub use server::run;
