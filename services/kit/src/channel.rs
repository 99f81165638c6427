//! The one way a service opens a channel to a peer: lazily, so services may
//! start in any order, and checked at start-up, so a bad URL stops the
//! service naming its variable instead of failing requests later.

use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use crate::config::{ConfigError, check_url};

/// How long dialling a peer may take before a call fails as UNAVAILABLE.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// How long a call to a peer may wait for its response to start; a hung
/// peer then fails the call instead of holding it (and, for an outbox, its
/// delivery loop) for ever. Streams are not cut once they have started.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A channel to the peer at `url`, dialled on first use. `variable` is the
/// setting the URL came from, named when the URL is unusable.
pub fn lazy(url: &str, variable: &str) -> Result<Channel, ConfigError> {
    check_url(variable, url)?;
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| {
        ConfigError::new(
            variable,
            format!("`{url}` is not a URL a gRPC channel can dial: {e}"),
        )
    })?;
    Ok(endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        // Without it a small request can wait ~40 ms for a delayed ACK.
        .tcp_nodelay(true)
        .connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_bad_url_names_its_variable() {
        lazy("http://127.0.0.1:1", "X_URL").expect("a good URL needs no peer");
        let err = lazy("ftp://x", "X_URL").expect_err("not http");
        assert_eq!(err.variable, "X_URL");
        let err = lazy("not a url", "X_URL").expect_err("not a URL");
        assert_eq!(err.variable, "X_URL");
    }
}
