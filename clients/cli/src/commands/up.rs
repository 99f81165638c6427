//! `orchestra up`: every service in this process on one port, with SQLite
//! under a data directory, until Ctrl-C. It says it is up only once every
//! service has opened; a flag or setting it cannot use ends it with exit
//! status 2, as the service binaries do.

use std::time::Duration;

use orchestra_standalone::Options;
use tokio::net::TcpListener;

use crate::cli::UpArgs;
use crate::error::{Error, Result};
use crate::outln;

/// Binds, opens every service, says where Orchestra is and what to do
/// next, and serves.
pub async fn up(args: &UpArgs) -> Result<()> {
    orchestra_kit::telemetry::init();
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AddrInUse => Error::AddressInUse { addr: args.listen },
            _ => Error::Listen {
                addr: args.listen,
                source,
            },
        })?;
    let addr = listener.local_addr()?;
    let mut options = Options::new(args.data_dir.clone());
    options.database_url = args.database_url.clone();
    if let Some(secs) = args.lease_ttl {
        options.lease_ttl = Duration::from_secs(secs.max(1));
    }
    let mesh = orchestra_standalone::open(options, listener)
        .await
        .map_err(up_error)?;
    let url = format!("http://{addr}");
    let server_flag = if addr.to_string() == "127.0.0.1:50051" {
        String::new()
    } else {
        format!(" --server {url}")
    };
    let storage = match &args.database_url {
        Some(_) => "state in Postgres".to_owned(),
        None => format!("data in {}", args.data_dir.display()),
    };
    outln!("orchestra is up on {url} ({storage})")?;
    outln!(
        "  apply the example:  orchestra{server_flag} template apply examples/backtrack/template.yaml"
    )?;
    outln!("  start a run:        orchestra{server_flag} run start backtrack-ui-patch --watch")?;
    outln!("  stop with Ctrl-C")?;
    // Last, so the URL to open is what the terminal ends on.
    if mesh.web_client_built() {
        outln!("  open in a browser:  {}", mesh.browser_url())?;
    } else {
        outln!(
            "  web client:         not built in {}; ./up builds it, then open {}",
            mesh.web_dir().display(),
            mesh.browser_url()
        )?;
    }
    mesh.serve(orchestra_kit::server::shutdown_signal())
        .await
        .map_err(up_error)
}

/// A fault of the embedded services as the CLI reports it: a flag or
/// setting that cannot be used is [`Error::Config`] (exit status 2).
fn up_error(error: orchestra_standalone::Error) -> Error {
    match error {
        orchestra_standalone::Error::Config(config) => Error::Config(config),
        other => Error::Serve(format!("{other:#}")),
    }
}
