//! Fast in-process routing tests: the tower services called with `oneshot`, no socket.

mod common;

use std::ffi::OsString;
use std::sync::Arc;

use http::{Method, Request, StatusCode};
use http_body::Body as _;
use tinyserve::cache::{Cache, Limits};
use tinyserve::config::{self, Command};
use tinyserve::metrics::Metrics;
use tinyserve::observe::{Observe, Recorder};
use tinyserve::service::{Readiness, SiteService};
use tinyserve::watch::Watch;
use tower::ServiceExt;

fn service(root: &std::path::Path) -> (SiteService, Arc<Readiness>) {
    let args = [OsString::from("--root"), root.as_os_str().to_owned()];
    let Command::Serve(config) = config::parse(args, |_| None).unwrap() else {
        panic!("expected a serve configuration")
    };
    let (watch, _) = Watch::start(&config.root, config.watch);
    let limits = Limits {
        memory: config.cache_max,
        file_max: config.cache_file_max,
        entries: config.cache_entries,
        open_files: 16,
    };
    let cache = Cache::new(&config, limits, watch).unwrap();
    let readiness = Arc::new(Readiness::default());
    let service = SiteService::new(cache, readiness.clone(), &config);
    (service, readiness)
}

fn req(method: Method, uri: &str) -> Request<()> {
    Request::builder()
        .method(method)
        .uri(uri)
        .header(http::header::HOST, "test")
        .body(())
        .unwrap()
}

#[tokio::test]
async fn routes_answer_in_process() {
    let site = common::demo_site();
    let (svc, _) = service(site.path());
    let cases = [
        (Method::GET, "/", StatusCode::OK),
        (Method::HEAD, "/style.css", StatusCode::OK),
        (Method::GET, "/docs", StatusCode::PERMANENT_REDIRECT),
        (Method::GET, "/nope", StatusCode::NOT_FOUND),
        (Method::GET, "/.env", StatusCode::NOT_FOUND),
        (Method::GET, "/bad%zz", StatusCode::BAD_REQUEST),
        (Method::POST, "/", StatusCode::METHOD_NOT_ALLOWED),
        (Method::GET, "/healthz", StatusCode::OK),
        (Method::GET, "/readyz", StatusCode::OK),
    ];
    for (method, uri, want) in cases {
        let r = svc.clone().oneshot(req(method.clone(), uri)).await.unwrap();
        assert_eq!(r.status(), want, "{method} {uri}");
        assert_eq!(
            r.headers()["x-content-type-options"],
            "nosniff",
            "{method} {uri}"
        );
    }
    let r = svc
        .clone()
        .oneshot(req(Method::HEAD, "/style.css"))
        .await
        .unwrap();
    assert!(r.body().is_end_stream(), "HEAD has no body");
    assert_eq!(r.headers()["content-length"], "37");
}

#[tokio::test]
async fn draining_fails_readiness_and_closes_connections() {
    let site = common::demo_site();
    let (svc, readiness) = service(site.path());
    readiness.start_draining();
    let r = svc
        .clone()
        .oneshot(req(Method::GET, "/readyz"))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["connection"], "close");
    let r = svc.oneshot(req(Method::GET, "/")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["connection"], "close");
}

#[tokio::test]
async fn the_observe_layer_counts_when_the_body_is_dropped() {
    let site = common::demo_site();
    let (svc, _) = service(site.path());
    let metrics = Arc::new(Metrics::new(None));
    let recorder = Arc::new(Recorder {
        trusted: Default::default(),
        metrics: Some(metrics.clone()),
        access_log: false,
    });
    let observed = Observe::new(svc, recorder);
    let r = observed
        .oneshot(req(Method::GET, "/notes.txt"))
        .await
        .unwrap();
    let before = metrics.render();
    assert!(
        before.contains("tinyserve_http_requests_in_flight 1"),
        "{before}"
    );
    drop(r);
    let after = metrics.render();
    assert!(
        after.contains("tinyserve_http_requests_total{method=\"GET\",status=\"2xx\"} 1"),
        "{after}"
    );
    assert!(
        after.contains("tinyserve_http_requests_in_flight 0"),
        "{after}"
    );
    assert!(
        after.contains("tinyserve_http_response_body_bytes_total 0"),
        "dropped unsent: {after}"
    );
}
