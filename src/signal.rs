//! SIGTERM and SIGINT. The process may be PID 1 in a container, where the kernel installs no
//! default handlers, so both are handled explicitly.

use tokio::signal::unix::{signal, SignalKind};

/// Completes on the first SIGTERM or SIGINT. A second one ends the process at once, for the
/// person pressing Ctrl-C twice.
pub async fn shutdown() {
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing a SIGINT handler");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    tracing::info!(signal = name, "shutdown signal received");
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
        tracing::warn!("second signal: exiting without draining");
        std::process::exit(1);
    });
}
