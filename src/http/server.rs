//! The accept loop and the shutdown sequence.
//!
//! Shutdown, once the `shutdown` future completes: readiness fails at once, the listener keeps
//! accepting for the shutdown delay (load balancers need that long to notice), every response
//! meanwhile carries `Connection: close`; then the listener closes, idle connections are
//! closed and in-flight responses get up to the drain timeout to finish.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::server::conn::http1;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::cache::mapped::PageSize;
use crate::cache::watch::Watch;
use crate::cache::{self, Cache, Limits};
use crate::files::service::{Readiness, SiteService};
use crate::http::connection::{self, Shared};
use crate::http::idle::Timeouts;
use crate::http::observe::Recorder;
use crate::http::stack::Stack;
use crate::ops::config::Config;
use crate::ops::metrics::{self, Metrics};

/// Any fatal error after startup checks: printed once by `main`, exit code 1.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Serves the configured root on `listener` until `shutdown` completes, then drains.
///
/// Reads nothing of the site before it prints the line `listening on <addr>`: files are
/// looked up as they are asked for, so start-up does not grow with the site.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let started = Instant::now();
    let (watch, watch_reason) = Watch::start(&config.root, config.watch);
    let limits = Limits {
        memory: config.cache_max,
        file_max: config.cache_file_max,
        entries: config.cache_entries,
        open_files: config
            .cache_open_files
            .unwrap_or_else(cache::default_open_files),
        page: PageSize::of_system(),
    };
    let watch_mode = watch.mode();
    // The one check of the site before serving: the root can be opened (a folder the
    // server's user cannot read would otherwise show up as 404s only).
    let cache = Cache::new(&config, limits, watch).map_err(|e| {
        format!(
            "cannot read --root {:?} (TINYSERVE_ROOT): {e}",
            config.root.display().to_string()
        )
    })?;

    let metrics = match config.metrics_listen {
        None => None,
        Some(addr) => {
            let l = crate::http::listen::bind(addr, "--metrics-listen").map_err(|e| {
                format!("cannot listen on {addr} (--metrics-listen, TINYSERVE_METRICS_LISTEN): {e}")
            })?;
            Some((l, Arc::new(Metrics::new(Some(cache.clone())))))
        }
    };

    let readiness = Arc::new(Readiness::default());
    let recorder = Arc::new(Recorder {
        metrics: metrics.as_ref().map(|(_, m)| m.clone()),
        access_log: config.access_log,
        log_probes: config.access_log_probes,
        trusted: config.trusted_proxies.clone(),
    });
    let stack = Stack::new(
        SiteService::new(cache, readiness.clone(), &config),
        readiness.clone(),
        recorder.clone(),
        &config,
    );

    let addr = listener.local_addr()?;
    tracing::info!(
        root = %config.root.display(),
        watch = watch_mode.name(),
        watch_reason = %watch_reason,
        cache_max = limits.memory,
        cache_entries = limits.entries,
        cache_open_files = limits.open_files,
        page_size = limits.page.bytes(),
        max_connections = config.max_connections,
        max_connections_reason = %config.max_connections_reason,
        startup_us = started.elapsed().as_micros() as u64,
        "listening on {addr}"
    );
    let timeouts = Timeouts {
        header: config.header_timeout,
        idle: config.idle_timeout,
    };
    let metrics_task = metrics.map(|(l, m)| {
        tracing::info!(
            "metrics on http://{}/metrics",
            l.local_addr().map(|a| a.to_string()).unwrap_or_default()
        );
        tokio::spawn(metrics::serve(l, m, timeouts))
    });

    let mut http = http1::Builder::new();
    // Header and idle timeouts are TimedIo's: one timer per connection, none per request.
    http.header_read_timeout(None)
        .max_buf_size(config.max_header_size)
        .keep_alive(true)
        // A client may send its request and then shut its sending side (`printf … | nc`,
        // scripted health checks, proxies that forward a half-close): it still gets every
        // answer, and the connection closes once the last one is written. Without this,
        // hyper drops a request whose EOF it reads before it has answered.
        .half_close(true);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let delay = config.shutdown_delay;
    // Turned true when the listener closes: connections finish what they are doing and
    // close; parked ones close at once.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        http,
        stack,
        recorder,
        timeouts,
    });

    let mut stop_accepting = pin!(async {
        shutdown.await;
        readiness.start_draining();
        tracing::info!(
            shutdown_delay_ms = delay.as_millis() as u64,
            "shutdown: readiness failing, still serving for the shutdown delay"
        );
        tokio::time::sleep(delay).await;
    });

    loop {
        // Wait for a free slot first: past the cap, clients queue in the kernel's backlog.
        let permit = tokio::select! {
            biased;
            _ = &mut stop_accepting => break,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut stop_accepting => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE, ECONNABORTED...: log, breathe, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (shared, stopped) = (shared.clone(), stopped.clone());
        tokio::spawn(async move {
            connection::serve(stream, peer, shared, stopped).await;
            drop(permit);
        });
    }

    drop(listener);
    let open = config.max_connections - slots.available_permits();
    tracing::info!(
        open_connections = open,
        drain_timeout_ms = config.drain_timeout.as_millis() as u64,
        "shutdown: listener closed, draining"
    );
    let _ = stop.send(true);
    let all = u32::try_from(config.max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => tracing::info!("shutdown: all connections finished"),
        _ = tokio::time::sleep(config.drain_timeout) => {
            let open = config.max_connections - slots.available_permits();
            tracing::warn!(open_connections = open, "shutdown: drain timeout reached, closing what is left");
        }
    }
    if let Some(task) = metrics_task {
        task.abort();
    }
    tracing::info!("shutdown complete");
    Ok(())
}
