//! The `--basic-auth-file` layer: every path but the probes needs a user and password
//! ([`crate::http::auth`] keeps the users and the verdicts). Credentials seen before are answered
//! at once; new ones are verified with bcrypt off the event loop, and the request waits for
//! that, or gets 429 when too many logins wait already. A CORS preflight never reaches it
//! (the Fetch standard sends preflights without credentials): the CORS layer is outside.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use tower::{Layer, Service};

use crate::http::auth::{self, Admission, BasicAuth, Verdict};
use crate::http::body::Body;
use crate::http::proxies::TrustedProxies;

/// Guards a connection's requests from `peer`.
#[derive(Clone)]
pub struct RequireAuthLayer {
    auth: Arc<BasicAuth>,
    trusted: TrustedProxies,
    peer: SocketAddr,
}

impl RequireAuthLayer {
    /// Requires `auth`'s users; `trusted` proxies may name the client (whose count of
    /// waiting logins is bounded).
    pub fn new(auth: Arc<BasicAuth>, trusted: TrustedProxies, peer: SocketAddr) -> Self {
        RequireAuthLayer {
            auth,
            trusted,
            peer,
        }
    }
}

impl<S> Layer<S> for RequireAuthLayer {
    type Service = RequireAuth<S>;

    fn layer(&self, inner: S) -> RequireAuth<S> {
        RequireAuth {
            inner,
            layer: self.clone(),
        }
    }
}

/// See [`RequireAuthLayer`].
#[derive(Clone)]
pub struct RequireAuth<S> {
    inner: S,
    layer: RequireAuthLayer,
}

/// A verification, then the inner service's answer.
type Verifying<E> = Pin<Box<dyn Future<Output = Result<Response<Body>, E>> + Send>>;

impl<S, B> Service<Request<B>> for RequireAuth<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Authorized<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let auth = &self.layer.auth;
        // Probes answer load balancers, which have no password; a request with a bad Host
        // is a 400 whoever sends it.
        if crate::files::path::is_probe(req.uri().path())
            || crate::http::host::problem(&req).is_some()
        {
            return Authorized::Inner {
                future: self.inner.call(req),
            };
        }
        match auth.verdict(req.headers()) {
            Verdict::Allowed => Authorized::Inner {
                future: self.inner.call(req),
            },
            Verdict::Denied => Authorized::Now {
                response: Some(challenge()),
            },
            Verdict::Unknown => {
                let client = self
                    .layer
                    .trusted
                    .client(self.layer.peer.ip(), req.headers());
                match auth.admit(req.headers(), client) {
                    Admission::Busy => Authorized::Now {
                        response: Some(too_many_logins()),
                    },
                    Admission::Verify(verification) => {
                        // The service that was made ready answers; a clone takes its place.
                        let clone = self.inner.clone();
                        let mut inner = std::mem::replace(&mut self.inner, clone);
                        let auth = auth.clone();
                        Authorized::Verifying {
                            future: Box::pin(async move {
                                verification.run().await;
                                if auth.verdict(req.headers()) == Verdict::Allowed {
                                    inner.call(req).await
                                } else {
                                    Ok(challenge())
                                }
                            }),
                        }
                    }
                }
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer, or this layer's own.
    #[project = Projected]
    pub enum Authorized<F, E> {
        /// Let in: the inner service answers.
        Inner { #[pin] future: F },
        /// 401 or 429, at once.
        Now { response: Option<Response<Body>> },
        /// New credentials being verified.
        Verifying { future: Verifying<E> },
    }
}

impl<F, E> Future for Authorized<F, E>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            Projected::Inner { future } => future.poll(cx),
            Projected::Now { response } => {
                Poll::Ready(Ok(response.take().expect("polled after it completed")))
            }
            Projected::Verifying { future } => future.as_mut().poll(cx),
        }
    }
}

/// 401 with the challenge that makes a browser ask for a user and password.
fn challenge() -> Response<Body> {
    let mut r = text(StatusCode::UNAUTHORIZED, "authentication required\n");
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(auth::CHALLENGE),
    );
    r
}

/// The answer to a request whose credentials cannot be verified now: too many others
/// wait for bcrypt. Nothing was checked, so nothing is said about them.
fn too_many_logins() -> Response<Body> {
    let mut r = text(
        StatusCode::TOO_MANY_REQUESTS,
        "too many logins waiting; try again in a second\n",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::full(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
