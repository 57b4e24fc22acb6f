//! hyper's service interface over a tower stack, without cloning the stack per request.
//!
//! hyper calls its `Service` with `&self`; tower's takes `&mut self`, so hyper-util's
//! `TowerToHyperService` clones the whole stack for each request (every layer's `Arc`s
//! counted up and down again). An HTTP/1 connection calls its service for one request at
//! a time, from its own task, and the stack's futures own what they need, so the stack
//! can be borrowed mutably just for the call instead.

use std::cell::RefCell;
use std::task::{Context, Poll, Waker};

use tower::Service;

/// A tower service, served by hyper.
pub struct ServeTower<S>(RefCell<S>);

impl<S> ServeTower<S> {
    /// Serves `service`, which must always be ready (the site's stack is: nothing in it
    /// waits for capacity).
    pub fn new(service: S) -> ServeTower<S> {
        ServeTower(RefCell::new(service))
    }
}

impl<S, R> hyper::service::Service<R> for ServeTower<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, req: R) -> S::Future {
        let mut service = self.0.borrow_mut();
        // tower's contract: ready before called. The stack always is; checked here, so
        // that a layer which one day waits fails loudly instead of being called unready.
        match service.poll_ready(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(_)) | Poll::Pending => {
                panic!("the site's stack must always be ready")
            }
        }
        service.call(req)
    }
}
