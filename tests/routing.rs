//! Routing in process, through the code the binary runs: `tinyserve::run` on a loopback
//! listener (the accept loop, the connection stack with its timeouts and sendfile, the
//! recording layer), asked over real sockets. The shutdown future is the test's own.

mod common;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use common::{request, Response};
use tinyserve::ops::config::{self, Command};

/// Starts `run` in this process with `args`; returns its address and the trigger of its
/// shutdown (what SIGTERM is to the binary).
async fn serve(
    root: &std::path::Path,
    args: &[&str],
) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let mut argv = vec![OsString::from("--root"), root.as_os_str().to_owned()];
    argv.extend(args.iter().map(OsString::from));
    let Command::Serve(config) = config::parse(argv, |_| None).unwrap() else {
        panic!("expected a serve configuration")
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tinyserve::run(listener, *config, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (addr, stop)
}

/// `request` off the runtime's threads (it blocks on the socket).
async fn ask(addr: SocketAddr, method: &'static str, path: &'static str) -> Response {
    tokio::task::spawn_blocking(move || request(addr, method, path, &[]))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_answer_in_process() {
    let site = common::demo_site();
    let (addr, _stop) = serve(site.path(), &[]).await;
    let cases = [
        ("GET", "/", 200),
        ("HEAD", "/style.css", 200),
        ("GET", "/docs", 308),
        ("GET", "/nope", 404),
        ("GET", "/.env", 404),
        ("GET", "/bad%zz", 400),
        ("POST", "/", 405),
        ("GET", "/healthz", 200),
        ("GET", "/readyz", 200),
    ];
    for (method, path, want) in cases {
        let r = ask(addr, method, path).await;
        assert_eq!(r.status, want, "{method} {path}");
        assert_eq!(
            r.header("x-content-type-options"),
            Some("nosniff"),
            "{method} {path}"
        );
    }
    let head = ask(addr, "HEAD", "/style.css").await;
    assert!(head.body.is_empty(), "HEAD has no body");
    assert_eq!(head.header("content-length"), Some("37"));
    let get = ask(addr, "GET", "/style.css").await;
    assert_eq!(
        get.body,
        std::fs::read(site.path().join("style.css")).unwrap()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn draining_fails_readiness_and_closes_connections() {
    let site = common::demo_site();
    let (addr, stop) = serve(site.path(), &["--shutdown-delay", "5s"]).await;
    assert_eq!(ask(addr, "GET", "/readyz").await.status, 200);
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let r = ask(addr, "GET", "/readyz").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("connection"), Some("close"));
    let r = ask(addr, "GET", "/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("connection"), Some("close"));
}
