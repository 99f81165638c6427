//! Start-up of the review service binary with bad settings (the newcomer review's B8 table).
//!
//! The real binary is started with one bad variable: it must stop at once
//! with exit status 2 and one line naming the variable and what to do, with
//! no Rust `Debug` output.

use orchestra_kit::testing;

/// Asserts the binary stopped for a bad configuration that `says` each text.
fn refused(vars: &[(&str, &str)], says: &[&str]) -> String {
    testing::refused(env!("CARGO_BIN_EXE_orchestra-review"), vars, says)
}

#[test]
fn a_port_already_in_use_names_its_variable_and_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    refused(
        &[("ORCHESTRA_REVIEW_LISTEN_ADDR", &addr)],
        &[
            "ORCHESTRA_REVIEW_LISTEN_ADDR",
            &addr,
            "already in use",
            "set ORCHESTRA_REVIEW_LISTEN_ADDR to a free address",
        ],
    );
}

#[test]
fn an_address_that_does_not_parse_exits_2() {
    refused(
        &[("ORCHESTRA_REVIEW_LISTEN_ADDR", "127.0.0.1:99999")],
        &["ORCHESTRA_REVIEW_LISTEN_ADDR", "127.0.0.1:99999"],
    );
}

#[test]
fn an_empty_peer_url_exits_2() {
    refused(
        &[("ORCHESTRA_REVIEW_SCHEDULER_URL", "")],
        &["ORCHESTRA_REVIEW_SCHEDULER_URL", "http://"],
    );
}
