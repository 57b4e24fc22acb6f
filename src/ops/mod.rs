//! Running the server: configuration, logs, metrics, signals, probes of itself.
//!
//! - [`config`]: flags and environment variables into a validated [`config::Config`].
//! - [`logging`]: text or JSON lines (tracing-subscriber); [`metrics`]: Prometheus text on
//!   its own listener.
//! - [`signal`]: SIGTERM and SIGINT start the shutdown; [`healthcheck`]: the image's
//!   `HEALTHCHECK` (no shell or curl in a scratch image); [`cgroup`]: the container's
//!   memory limit, which sizes the cache.

pub mod cgroup;
pub mod config;
pub mod healthcheck;
pub mod logging;
pub mod metrics;
pub mod signal;
