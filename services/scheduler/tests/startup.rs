//! Start-up of the scheduler binary with bad settings (the newcomer review's B8 table).
//!
//! The real binary is started with one bad variable: it must stop at once
//! with exit status 2 and one line naming the variable and what to do, with
//! no Rust `Debug` output.

use orchestra_kit::testing;

/// Asserts the binary stopped for a bad configuration that `says` each text.
fn refused(vars: &[(&str, &str)], says: &[&str]) -> String {
    testing::refused(env!("CARGO_BIN_EXE_orchestra-scheduler"), vars, says)
}

#[test]
fn a_typo_in_a_variable_names_the_one_meant() {
    refused(
        &[(
            "ORCHESTRA_SCHEDULER_DATABSE_URL",
            "postgres://postgres@127.0.0.1:5432/x",
        )],
        &[
            "ORCHESTRA_SCHEDULER_DATABSE_URL",
            "did you mean ORCHESTRA_SCHEDULER_DATABASE_URL?",
        ],
    );
}

#[test]
fn an_unreachable_database_names_the_variable_the_host_and_what_to_do() {
    let said = refused(
        &[(
            "ORCHESTRA_SCHEDULER_DATABASE_URL",
            "postgres://postgres:hunter2@127.0.0.1:1/x",
        )],
        &[
            "ORCHESTRA_SCHEDULER_DATABASE_URL",
            "postgres://postgres:***@127.0.0.1:1/x",
            "check that the database runs",
        ],
    );
    assert!(!said.contains("hunter2"), "the password is masked: {said}");
}

#[test]
fn a_database_url_of_an_unknown_kind_is_a_configuration_error() {
    refused(
        &[("ORCHESTRA_SCHEDULER_DATABASE_URL", "mysql://x")],
        &["ORCHESTRA_SCHEDULER_DATABASE_URL", "mysql://x"],
    );
}

#[test]
fn a_peer_url_that_is_not_http_is_refused() {
    refused(
        &[("ORCHESTRA_SCHEDULER_REVIEW_URL", "not-a-url")],
        &["ORCHESTRA_SCHEDULER_REVIEW_URL", "http://", "`not-a-url`"],
    );
    refused(
        &[("ORCHESTRA_SCHEDULER_ARTIFACT_STORE_URL", "ftp://x")],
        &["ORCHESTRA_SCHEDULER_ARTIFACT_STORE_URL"],
    );
}

#[test]
fn a_lease_of_zero_is_refused() {
    refused(
        &[("ORCHESTRA_SCHEDULER_LEASE_TTL_MS", "0")],
        &["ORCHESTRA_SCHEDULER_LEASE_TTL_MS", "at least 1"],
    );
}

#[test]
fn values_that_do_not_parse_name_their_variable() {
    refused(
        &[("ORCHESTRA_SCHEDULER_LISTEN_ADDR", "nonsense")],
        &["ORCHESTRA_SCHEDULER_LISTEN_ADDR", "nonsense"],
    );
    refused(
        &[("ORCHESTRA_SCHEDULER_LEASE_TTL_MS", "-5")],
        &["ORCHESTRA_SCHEDULER_LEASE_TTL_MS"],
    );
}
