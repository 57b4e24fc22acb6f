//! The `tinyserve` binary: parse the configuration, bind, run until a signal, exit with the
//! contract's codes (0 clean shutdown, 2 bad configuration, 1 anything else).

use std::process::ExitCode;

use tinyserve::ops::config::{self, Command, Config};

fn main() -> ExitCode {
    let command = match config::parse(std::env::args_os().skip(1), |k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    match command {
        Command::Help => {
            print!("{}", config::help());
            ExitCode::SUCCESS
        }
        Command::Version => {
            println!("{}", config::version());
            ExitCode::SUCCESS
        }
        Command::Healthcheck(listen) => match tinyserve::ops::healthcheck::check(listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("healthcheck failed: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Check(options) => {
            let mut report = tinyserve::check::run(&options);
            print!("{}", report.render());
            if report.count(tinyserve::check::Level::Error) > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Serve(config) => serve(*config),
    }
}

fn usage_error(e: &config::ConfigError) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// Raises the soft limit on open descriptors to the hard one, as Go's runtime and nginx's
/// `worker_rlimit_nofile` do: the soft limit (often 1024) is a compatibility default for
/// programs using select(2), and a server with thousands of connections and open files
/// needs more. Failure leaves the limit as it was.
fn raise_descriptor_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write only the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn serve(config: Config) -> ExitCode {
    raise_descriptor_limit();
    if let Err(e) =
        tinyserve::ops::logging::init(config.log_format, std::env::var("RUST_LOG").ok().as_deref())
    {
        return usage_error(&e);
    }
    // As many workers as CPUs this process may use (affinity and cgroup quota count);
    // on one CPU a single-threaded runtime avoids cross-thread wakeups altogether.
    let workers = config
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let shutdown = match tinyserve::ops::signal::shutdown() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot install signal handlers: {e}");
                return ExitCode::FAILURE;
            }
        };
        let listener = match tinyserve::http::listen::bind(config.listen, "--listen") {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "error: cannot listen on {} (--listen, TINYSERVE_LISTEN): {e}",
                    config.listen
                );
                return ExitCode::FAILURE;
            }
        };
        match tinyserve::run(listener, config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
