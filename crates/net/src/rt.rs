//! What the driver needs from its host: the wall clock and OS entropy.

/// Milliseconds since the Unix epoch, by the wall clock (`Date.now()` in a JS host).
pub fn now_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// 32 bytes of OS entropy (`crypto.getRandomValues` in a JS host).
pub fn entropy() -> [u8; 32] {
    let mut b = [0u8; 32];
    // No entropy source means no safe keys: there is nothing sensible to continue with.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the host has no entropy source");
    b
}

/// The body of a native binary's `main`: logs to stderr (`RUST_LOG`, default `info`, no colours),
/// a two-thread tokio runtime running `run`, and the exit code (an error is printed as
/// `<name>: <error and its causes>`).
#[cfg(not(js_host))]
pub fn run_binary<E, F>(name: &str, run: F) -> std::process::ExitCode
where
    E: std::fmt::Debug,
    F: std::future::Future<Output = Result<(), E>>,
{
    use std::process::ExitCode;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:?}");
            ExitCode::FAILURE
        }
    }
}
