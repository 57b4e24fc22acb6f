//! What a request path gets: the site's answer, from a file, a rule or a probe.
//!
//! - [`service`]: the site as a tower `Service` (probes, rules, files from the cache).
//! - [`path`]: percent-decoding and what no servable path can be; [`resolve`]: a path to
//!   the file that serves it, never outside the root.
//! - [`negotiate`] (`Accept-Encoding`), [`conditional`] (RFC 9110 preconditions and
//!   ranges), [`headers`] (dates, `Cache-Control` policy), [`mime`] (`mime_guess` with the
//!   types browsers insist on).
//! - [`pages`]: the answers the server makes itself (404, 5xx, maintenance) and the site's
//!   pages for them.
//! - [`rules`]: the site's `_headers` and `_redirects`; [`pattern`]: their path patterns,
//!   matched as Netlify matches them.

pub mod conditional;
pub mod headers;
pub mod mime;
pub mod negotiate;
pub mod pages;
pub mod path;
pub mod pattern;
pub mod resolve;
pub mod rules;
pub mod service;
