//! SIGTERM and SIGINT. The process may be PID 1 in a container, where the kernel installs no
//! default handlers, so both are handled explicitly.

use std::future::Future;

use tokio::signal::unix::{signal, SignalKind};

/// Installs the handlers now (so a signal arriving during startup is not lost to the
/// default action) and returns a future that completes on the first SIGTERM or SIGINT.
/// A second signal ends the process at once, for the person pressing Ctrl-C twice.
///
/// Must be called inside the Tokio runtime.
pub fn shutdown() -> std::io::Result<impl Future<Output = ()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
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
    })
}
