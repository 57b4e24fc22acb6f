//! The HTTP side: accepting connections and serving requests on them.
//!
//! - [`server`]: the accept loop, the connection cap and the shutdown sequence;
//!   [`listen`]: dual-stack binding.
//! - [`connection`]: one client's connection, its timeouts ([`idle`]) and parking between
//!   requests; [`serve_tower`] hands hyper the request path.
//! - [`stack`]: the request path as a tower stack: [`observe`] (access log and metrics,
//!   once [`delivery`] says the socket took the last byte), [`finish`], tower-http's
//!   header and CORS layers ([`cors`] checks the origins), [`auth_layer`] (users and
//!   verdicts in [`auth`]), then the site ([`crate::files::service`]).
//! - [`body`]: the response body; [`sendfile`]: file bytes sent from the page cache by
//!   `sendfile(2)`, behind placeholders that only this server's socket writer accepts.
//! - [`host`]: RFC 9112's rules for `Host`; [`proxies`]: the client behind trusted proxies.

pub mod auth;
pub mod auth_layer;
pub mod body;
pub mod connection;
pub mod cors;
pub mod delivery;
pub mod finish;
pub mod host;
pub mod idle;
pub mod listen;
pub mod observe;
pub mod proxies;
pub mod sendfile;
pub mod serve_tower;
pub mod server;
pub mod stack;
