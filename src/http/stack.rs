//! The public listener's request path, as one tower stack, outermost first:
//!
//! ```text
//! Observe          access log + metrics, once the socket took the last byte (ours)
//! Finish           HEAD, Connection: close while draining, the sendfile queue (ours)
//! nosniff          tower-http SetResponseHeaderLayer, if not present
//! --header ...     tower-http SetResponseHeaderLayer each, if not present (none on errors
//!                  for caching headers)
//! CorsLayer        tower-http, with --cors-origins
//! RequireAuth      --basic-auth-file (ours: bcrypt off the event loop, verdicts kept)
//! SiteService      probes, _headers/_redirects, files from the cache (ours)
//! ```
//!
//! hyper-util's `TowerToHyperService` serves it on each connection. The stack is built per
//! connection, because the outer layers know their peer and its sendfile queue; building
//! it clones a few `Arc`s.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::header::{self, HeaderName, HeaderValue};
use http::{Request, Response};
use tower::util::{BoxCloneSyncService, Either};
use tower::{Layer, Service, ServiceBuilder};
use tower_http::cors::CorsLayer;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::files::service::{Readiness, SiteService};
use crate::http::auth::BasicAuth;
use crate::http::auth_layer::RequireAuthLayer;
use crate::http::body::Body;
use crate::http::finish::FinishLayer;
use crate::http::observe::{ObserveLayer, Recorder};
use crate::http::proxies::TrustedProxies;
use crate::http::sendfile::Segments;
use crate::ops::config::Config;

/// The stack below the `--header` layers, boxed when there are any: each such layer
/// changes the type, and how many there are is only known at run time. Without them
/// (the default) nothing is boxed and no request allocates for the stack.
type Boxed<B> = BoxCloneSyncService<Request<B>, Response<Body>, Infallible>;

/// What every connection's stack is built from.
pub struct Stack {
    site: SiteService,
    readiness: Arc<Readiness>,
    recorder: Arc<Recorder>,
    cors: Option<CorsLayer>,
    auth: Option<Arc<BasicAuth>>,
    trusted: TrustedProxies,
    /// `--header`, in the order given.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Stack {
    /// The stack `config` describes, answering from `site` and recording with `recorder`.
    pub fn new(
        site: SiteService,
        readiness: Arc<Readiness>,
        recorder: Arc<Recorder>,
        config: &Config,
    ) -> Stack {
        Stack {
            site,
            readiness,
            recorder,
            cors: config.cors_origins.as_ref().map(|o| o.layer()),
            auth: config.basic_auth.clone(),
            trusted: config.trusted_proxies.clone(),
            headers: config
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), crate::files::headers::forever(value)))
                .collect(),
        }
    }

    /// The service for one connection from `peer`, whose file bodies go out through
    /// `segments`.
    pub fn for_connection<B>(
        &self,
        peer: SocketAddr,
        segments: Arc<Segments>,
    ) -> impl Service<
        Request<B>,
        Response = Response<Body>,
        Error = Infallible,
        Future: Send + Unpin + 'static,
    > + Clone
           + Send
           + 'static
    where
        B: Send + 'static,
    {
        let inner = ServiceBuilder::new()
            .option_layer(self.cors.clone())
            .option_layer(
                self.auth
                    .as_ref()
                    .map(|a| RequireAuthLayer::new(a.clone(), self.trusted.clone(), peer)),
            )
            .service(self.site.clone());
        let with_headers = if self.headers.is_empty() {
            Either::Left(inner)
        } else {
            // The last --header innermost: its value is set first, and of two with one
            // name the last wins.
            let mut service: Boxed<B> = BoxCloneSyncService::new(inner);
            for (name, value) in self.headers.iter().rev() {
                service = BoxCloneSyncService::new(
                    SetResponseHeaderLayer::if_not_present(name.clone(), configured(name, value))
                        .layer(service),
                );
            }
            Either::Right(service)
        };
        ServiceBuilder::new()
            .layer(ObserveLayer::new(self.recorder.clone(), peer))
            .layer(FinishLayer::new(self.readiness.clone(), segments))
            // Browsers must not reinterpret a file's type; a --header may say otherwise.
            .layer(SetResponseHeaderLayer::if_not_present(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ))
            .service(with_headers)
    }
}

/// A `--header` value for every response, except a caching header on an error: those
/// describe the file a path serves, and a 404 or 503 kept for a year outlives the fix.
fn configured(
    name: &HeaderName,
    value: &HeaderValue,
) -> impl FnMut(&Response<Body>) -> Option<HeaderValue> + Clone + Send + Sync + 'static {
    let caching = crate::files::headers::is_caching(name);
    let value = value.clone();
    move |response: &Response<Body>| {
        let error = response.status().is_client_error() || response.status().is_server_error();
        (!(caching && error)).then(|| value.clone())
    }
}
