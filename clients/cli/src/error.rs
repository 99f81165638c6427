//! The one error type of the CLI, and how an error is told to a person.

use std::net::SocketAddr;
use std::path::PathBuf;

use tonic::Code;

use orchestra_kit::config::ConfigError;
use orchestra_kit::error::Violation;

/// Everything that can stop a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with an error status.
    #[error("{}", status_message(.0))]
    Grpc(#[from] tonic::Status),
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file that must hold JSON does not.
    #[error("{} is not valid JSON: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// Where and why.
        source: serde_json::Error,
    },
    /// Something local was refused before anything was sent, one fault per field.
    #[error("{message}")]
    Invalid {
        /// What was refused.
        message: String,
        /// One fault per field path.
        violations: Vec<Violation>,
    },
    /// `--server` is not a URL tonic can dial.
    #[error("--server {url} is not a usable address: {reason}")]
    BadServer {
        /// The URL given.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },
    /// Another process holds the port `orchestra up` wants.
    #[error(
        "cannot listen on {addr}: the address is already in use (is orchestra already up?); choose another with --listen, e.g. --listen 127.0.0.1:{}",
        addr.port().wrapping_add(1)
    )]
    AddressInUse {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Binding failed for another reason.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A setting or flag `orchestra up` was given cannot be used; the
    /// message names it. Exit status 2, as the service binaries use.
    #[error("{0}")]
    Config(ConfigError),
    /// The embedded services stopped with an error.
    #[error("orchestra stopped: {0}")]
    Serve(String),
    /// Standard output could not be written (a closed pipe, say).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// A response lacked a field the contract promises.
    #[error("the server's response has no {0}")]
    Incomplete(&'static str),
    /// No run, task or artifact has the id given, nor an id starting with it.
    #[error("{what} {given} does not exist; {}", list_hint(what))]
    NoSuchId {
        /// `run`, `task` or `artifact`.
        what: &'static str,
        /// The id or prefix given.
        given: String,
    },
    /// More than one id starts with the prefix given.
    #[error(
        "{given} could be any of {} {what}s; give more of the id:\n  {}",
        matches.len(),
        matches.join("\n  ")
    )]
    AmbiguousId {
        /// `run`, `task` or `artifact`.
        what: &'static str,
        /// The prefix given.
        given: String,
        /// Each matching id with a short description.
        matches: Vec<String>,
    },
    /// The command line asks for something that cannot be done as asked.
    #[error("{0}")]
    Usage(String),
    /// A task of one kind was given to the command for the other kind.
    #[error("task {task} is {is}: {what_to_do}")]
    WrongTaskKind {
        /// The task's id.
        task: String,
        /// What it is: "a review", "an input form".
        is: &'static str,
        /// The command that acts on it.
        what_to_do: String,
    },
}

/// Where a person finds the ids of a kind.
fn list_hint(what: &str) -> &'static str {
    match what {
        "run" => "list runs with `orchestra run list`",
        "task" => "list open tasks with `orchestra inbox` (all with `orchestra inbox --all`)",
        _ => "list a run's artifacts with `orchestra artifact list RUN`",
    }
}

/// The CLI's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The field violations the error carries (from a `google.rpc.BadRequest`
    /// detail, or found locally); empty when none.
    pub fn violations(&self) -> Vec<Violation> {
        match self {
            Error::Grpc(status) => orchestra_kit::status::violations(status),
            Error::Invalid { violations, .. } => violations.clone(),
            _ => Vec::new(),
        }
    }

    /// Whether the error is standard output closing early (`| head`), which
    /// ends a command quietly and successfully, as Unix tools do.
    pub fn is_closed_output(&self) -> bool {
        matches!(self, Error::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The text a person reads on stderr: one `error:` line (or the
    /// unreachable-server advice), then one indented line per violation.
    pub fn report(&self, server: &str) -> String {
        if let Error::Grpc(status) = self
            && status.code() == Code::Unavailable
        {
            if let Some(reason) = tls_failure(status) {
                return format!(
                    "error: cannot open a TLS connection to {server}: {reason}; if the server speaks plaintext, use http:// instead; if its certificate is signed by a private CA, point $SSL_CERT_FILE at that CA's PEM file"
                );
            }
            return format!(
                "cannot reach Orchestra at {server}: is it running? start it with: orchestra up"
            );
        }
        let mut text = format!("error: {self}");
        let violations = self.violations();
        // A single fault whose message is already that fault says it once.
        if let [violation] = violations.as_slice()
            && text == format!("error: {violation}")
        {
            return text;
        }
        for violation in violations {
            text.push_str(&format!("\n  {violation}"));
        }
        text
    }

    /// The exit status the error ends the process with: 2 for a setting or
    /// flag that cannot be used (a taken port included), as every Orchestra
    /// binary does; 1 for anything else.
    pub fn exit_status(&self) -> u8 {
        match self {
            Error::Config(_) | Error::AddressInUse { .. } | Error::Listen { .. } => {
                orchestra_kit::start::CONFIG_EXIT
            }
            _ => 1,
        }
    }
}

/// What went wrong setting up TLS, when that is why a connection failed:
/// rustls reports handshake and certificate faults as `InvalidData` I/O
/// errors somewhere in the status's chain of sources.
fn tls_failure(status: &tonic::Status) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::InvalidData
        {
            return Some(io.to_string());
        }
        source = error.source();
    }
    None
}

/// A status's message, or its code when the server sent none.
fn status_message(status: &tonic::Status) -> String {
    if status.message().is_empty() {
        format!("{:?}", status.code())
    } else {
        status.message().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_says_how_to_start_the_server() {
        let error = Error::Grpc(tonic::Status::unavailable("tcp connect error"));
        assert_eq!(
            error.report("http://127.0.0.1:50051"),
            "cannot reach Orchestra at http://127.0.0.1:50051: is it running? start it with: orchestra up"
        );
    }

    #[test]
    fn violations_follow_the_message() {
        let status = orchestra_kit::status::invalid_argument(
            "the template is invalid",
            [("phases[2].needs[0]", "names no phase")],
        );
        assert_eq!(
            Error::Grpc(status).report("x"),
            "error: the template is invalid\n  phases[2].needs[0]: names no phase"
        );
    }

    #[test]
    fn a_single_fault_is_said_once() {
        let status = orchestra_kit::status::invalid_field("selected", "pick one of a, b");
        assert_eq!(
            Error::Grpc(status).report("x"),
            "error: selected: pick one of a, b"
        );
    }

    #[test]
    fn a_taken_port_suggests_another() {
        let error = Error::AddressInUse {
            addr: "127.0.0.1:50051".parse().expect("address"),
        };
        assert!(error.report("x").contains("--listen 127.0.0.1:50052"));
    }
}
