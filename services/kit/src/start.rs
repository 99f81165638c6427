//! The one `main` of every service binary: logging, settings, the listening
//! socket, then the service until Ctrl-C or SIGTERM. A bad configuration
//! (a setting that does not parse or make sense, a port already taken, a
//! database that cannot be opened) is one line naming the variable, and
//! exit status 2; any later failure is one line and status 1. No Rust
//! `Debug` output reaches the person starting the service.

use std::future::Future;
use std::pin::Pin;
use std::process::ExitCode;

use tokio::net::TcpListener;

use crate::config::{ConfigError, Settings, load};

/// The shutdown signal a service is handed: Ctrl-C or SIGTERM.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The exit status of a bad configuration, as sysexits' EX_USAGE family
/// and clap use for bad arguments.
pub const CONFIG_EXIT: u8 = 2;

/// Runs a service binary named `binary`: reads `S` from the environment,
/// binds its listen address, and runs `serve` until the shutdown signal.
///
/// Faults caused by a setting reach here as a [`ConfigError`] anywhere in
/// the error's `source()` chain, and exit with [`CONFIG_EXIT`].
pub async fn main<S, E, F, Fut>(binary: &str, serve: F) -> ExitCode
where
    S: Settings,
    E: std::error::Error + 'static,
    F: FnOnce(S, TcpListener, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    crate::telemetry::init();
    let settings = match load::<S>() {
        Ok(settings) => settings,
        Err(error) => return config_failure(binary, &error),
    };
    let addr = settings.listen_addr();
    let listener = match TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(cause) => {
            let variable = S::variable("listen_addr");
            return config_failure(binary, &ConfigError::listen(&variable, addr, &cause));
        }
    };
    match serve(
        settings,
        listener,
        Box::pin(crate::server::shutdown_signal()),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => match config_error(&error) {
            Some(config) => config_failure(binary, config),
            None => {
                eprintln!("{binary}: {}", chain(&error));
                ExitCode::FAILURE
            }
        },
    }
}

fn config_failure(binary: &str, error: &ConfigError) -> ExitCode {
    eprintln!("{binary}: {error}");
    ExitCode::from(CONFIG_EXIT)
}

/// The first [`ConfigError`] in an error's chain, the error included.
pub fn config_error<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a ConfigError> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(config) = error.downcast_ref::<ConfigError>() {
            return Some(config);
        }
        next = error.source();
    }
    None
}

/// An error and its causes on one line, each told once.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum ServiceError {
        #[error("{0}")]
        Config(#[from] ConfigError),
        #[error("server failed")]
        Server(#[source] std::io::Error),
    }

    #[test]
    fn a_config_error_is_found_in_the_chain() {
        let error = ServiceError::Config(ConfigError::new("X_URL", "bad"));
        assert_eq!(
            config_error(&error).map(|e| e.variable.as_str()),
            Some("X_URL")
        );
        let error = ServiceError::Server(std::io::Error::other("reset"));
        assert!(config_error(&error).is_none());
        assert_eq!(chain(&error), "server failed: reset");
    }
}
