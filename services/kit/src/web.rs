//! What a server that browsers reach needs besides gRPC: the origins
//! allowed to call it from another site ([`WebConfig`], read from
//! `ORCHESTRA_WEB_*`), the CORS rules built from them ([`cors_layer`]), and
//! the built web client's files ([`WebAssets`]), served on the same port
//! as the services.
//!
//! The layers themselves are stacked in [`crate::server::serve`]; this
//! module only builds them, so the all-in-one process and the gateway share
//! one definition.

use std::convert::Infallible;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Deserialize;
use tonic::body::Body;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

use crate::config::ConfigError;

/// The prefix of the web settings' variables.
pub const PREFIX: &str = "ORCHESTRA_WEB_";

/// Where the built client is looked for when `ORCHESTRA_WEB_DIR` is unset:
/// the Vite output in a checkout, relative to where the process starts.
pub const DEFAULT_DIR: &str = "clients/web/dist";

/// The browser-facing settings of a server that hosts the web client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Other sites whose pages may call the services from a browser, as
    /// comma-separated origins (`http://localhost:5173,https://ops.example`).
    /// The page the server itself serves is same-origin and needs none;
    /// empty (the default) refuses every other site.
    #[serde(default)]
    pub origins: Vec<String>,
    /// The folder holding the built web client (`npm run build` in
    /// clients/web writes `clients/web/dist`).
    #[serde(default = "default_dir")]
    pub dir: PathBuf,
}

fn default_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DIR)
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            origins: Vec::new(),
            dir: default_dir(),
        }
    }
}

impl WebConfig {
    /// Reads `ORCHESTRA_WEB_ORIGINS` and `ORCHESTRA_WEB_DIR` and checks them.
    pub fn from_env() -> Result<WebConfig, ConfigError> {
        Self::from_vars(std::env::vars())
    }

    /// Reads the settings from the given variables, as [`Self::from_env`]
    /// does; for tests.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<WebConfig, ConfigError> {
        let mut config: WebConfig = crate::config::from_vars(PREFIX, vars)?;
        // envy reads an empty variable as one empty item.
        config.origins.retain(|origin| !origin.trim().is_empty());
        for origin in &mut config.origins {
            *origin = origin.trim().trim_end_matches('/').to_owned();
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks that every origin is a scheme, a host and maybe a port, which
    /// is all a browser's `Origin` header ever holds.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let variable = format!("{PREFIX}ORIGINS");
        for origin in &self.origins {
            let uri: Option<http::Uri> = origin.parse().ok();
            let fits = uri.as_ref().is_some_and(|uri| {
                matches!(uri.scheme_str(), Some("http" | "https"))
                    && uri.host().is_some()
                    && uri.path_and_query().is_none_or(|p| p.as_str() == "/")
            });
            if !fits || http::HeaderValue::from_str(origin).is_err() {
                return Err(ConfigError::new(
                    variable,
                    format!(
                        "`{origin}` is not an origin; give scheme, host and port only, \
                         comma-separated, such as http://localhost:5173"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The CORS rules for `origins`: preflights from them are answered, their
/// calls may carry any header (grpc-web sends `x-grpc-web`, `x-user-agent`,
/// `grpc-timeout`, `traceparent`), and the gRPC status headers are exposed,
/// without which a browser cannot read an error. Any other origin gets no
/// `Access-Control-Allow-Origin`, so the browser refuses the call.
pub fn cors_layer(origins: &[String]) -> CorsLayer {
    let allowed: Vec<http::HeaderValue> = origins
        .iter()
        .filter_map(|origin| http::HeaderValue::from_str(origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([http::Method::POST, http::Method::GET, http::Method::OPTIONS])
        .allow_headers(tower_http::cors::AllowHeaders::mirror_request())
        .expose_headers([
            http::HeaderName::from_static("grpc-status"),
            http::HeaderName::from_static("grpc-message"),
            http::HeaderName::from_static("grpc-status-details-bin"),
        ])
        .max_age(Duration::from_secs(600))
}

/// Answers the requests that are not gRPC calls: the built web client's
/// files from a folder, `index.html` at `/`, or, while the client is not
/// built, a page at `/` that says how to build it.
#[derive(Clone)]
pub struct WebAssets {
    dir: PathBuf,
    files: ServeDir,
}

impl WebAssets {
    /// Serves the files under `dir` (which need not exist yet: a client
    /// built after start-up is served as soon as it is there).
    pub fn new(dir: impl Into<PathBuf>) -> WebAssets {
        let dir = dir.into();
        WebAssets {
            files: ServeDir::new(&dir),
            dir,
        }
    }

    /// The folder served.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the folder holds a built client.
    pub fn is_built(&self) -> bool {
        self.dir.join("index.html").is_file()
    }
}

impl<B> tower_service::Service<http::Request<B>> for WebAssets
where
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let assets = self.clone();
        Box::pin(async move {
            let at_root = request.uri().path() == "/";
            let response = assets.files.clone().oneshot(request).await?;
            if response.status() == http::StatusCode::NOT_FOUND && at_root && !assets.is_built() {
                return Ok(not_built_page(&assets.dir));
            }
            Ok(response.map(Body::new))
        })
    }
}

/// The page `/` shows while the web client is not built: what to run, and
/// where the server looked.
fn not_built_page(dir: &Path) -> http::Response<Body> {
    let dir = dir
        .display()
        .to_string()
        .replace('&', "&amp;")
        .replace('<', "&lt;");
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Orchestra: web client not built</title></head>\
         <body style=\"font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto\">\
         <h1>The web client is not built</h1>\
         <p>Orchestra's services are up on this port (gRPC and grpc-web), but there is no \
         built web client in <code>{dir}</code>.</p>\
         <p>Build it from the repository root, then reload this page:</p>\
         <pre>npm --prefix clients/web ci\nnpm --prefix clients/web run build</pre>\
         <p>or point <code>{PREFIX}DIR</code> at a folder that holds one.</p></body></html>"
    );
    let mut response = http::Response::new(Body::new(html));
    *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn origins_are_read_comma_separated_and_trimmed() {
        let config = WebConfig::from_vars(vars(&[(
            "ORCHESTRA_WEB_ORIGINS",
            "http://localhost:5173, https://ops.example/",
        )]))
        .expect("config");
        assert_eq!(
            config.origins,
            ["http://localhost:5173", "https://ops.example"]
        );
        assert_eq!(config.dir, PathBuf::from(DEFAULT_DIR));
        let empty = WebConfig::from_vars(vars(&[("ORCHESTRA_WEB_ORIGINS", "")])).expect("empty");
        assert!(empty.origins.is_empty());
    }

    #[test]
    fn a_path_or_a_wildcard_is_not_an_origin() {
        for bad in [
            "http://a.example/app",
            "*",
            "localhost:5173",
            "ftp://a.example",
        ] {
            let error =
                WebConfig::from_vars(vars(&[("ORCHESTRA_WEB_ORIGINS", bad)])).expect_err(bad);
            assert_eq!(error.variable, "ORCHESTRA_WEB_ORIGINS");
            assert!(
                error.problem.contains("is not an origin"),
                "{}",
                error.problem
            );
        }
    }

    #[test]
    fn an_unknown_web_variable_is_refused() {
        let error = WebConfig::from_vars(vars(&[("ORCHESTRA_WEB_ORIGIN", "http://a.example")]))
            .expect_err("typo");
        assert!(
            error.problem.contains("ORCHESTRA_WEB_ORIGINS"),
            "{}",
            error.problem
        );
    }

    #[tokio::test]
    async fn the_root_says_how_to_build_the_client_until_it_is_built() {
        let dir = tempfile::tempdir().expect("dir");
        let assets = WebAssets::new(dir.path());
        let page = assets
            .clone()
            .oneshot(http::Request::get("/").body(()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(page.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        let body = http_body_util::BodyExt::collect(page.into_body())
            .await
            .expect("body")
            .to_bytes();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("npm --prefix clients/web run build"),
            "{text}"
        );
        assert!(text.contains("ORCHESTRA_WEB_DIR"), "{text}");

        std::fs::write(dir.path().join("index.html"), "<p>built</p>").expect("write");
        let page = assets
            .oneshot(http::Request::get("/").body(()).expect("request"))
            .await
            .expect("infallible");
        assert_eq!(page.status(), http::StatusCode::OK);
    }
}
