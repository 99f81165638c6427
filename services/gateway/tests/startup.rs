//! Start-up of the gateway binary with bad settings: it stops at once with
//! exit status 2 and one line naming the variable and what to do.

use orchestra_kit::testing;

/// Asserts the binary stopped for a bad configuration that `says` each text.
fn refused(vars: &[(&str, &str)], says: &[&str]) -> String {
    testing::refused(env!("CARGO_BIN_EXE_orchestra-gateway"), vars, says)
}

#[test]
fn a_port_already_in_use_names_its_variable() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    refused(
        &[("ORCHESTRA_GATEWAY_LISTEN_ADDR", &addr)],
        &["ORCHESTRA_GATEWAY_LISTEN_ADDR", &addr, "already in use"],
    );
}

#[test]
fn a_peer_url_without_a_scheme_names_its_variable() {
    refused(
        &[("ORCHESTRA_GATEWAY_SCHEDULER_URL", "scheduler:50051")],
        &["ORCHESTRA_GATEWAY_SCHEDULER_URL", "scheduler:50051"],
    );
}

#[test]
fn a_bad_web_origin_names_its_variable() {
    refused(
        &[
            ("ORCHESTRA_WEB_ORIGINS", "*"),
            ("ORCHESTRA_GATEWAY_LISTEN_ADDR", "127.0.0.1:0"),
        ],
        &["ORCHESTRA_WEB_ORIGINS", "is not an origin"],
    );
}
