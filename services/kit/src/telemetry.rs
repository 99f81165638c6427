//! Logging set-up: human-readable lines on stderr, filtered by `RUST_LOG`
//! (default `info` for Orchestra, `warn` for everything else).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing, so tests and
/// the all-in-one process may call it freely.
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,orchestra=info,orchestra_=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
