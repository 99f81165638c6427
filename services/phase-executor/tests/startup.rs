//! Start-up of the executor binary with bad settings (the newcomer review's B8 table).
//!
//! The real binary is started with one bad variable: it must stop at once
//! with exit status 2 and one line naming the variable and what to do, with
//! no Rust `Debug` output.

use orchestra_kit::testing;

/// Asserts the binary stopped for a bad configuration that `says` each text.
fn refused(vars: &[(&str, &str)], says: &[&str]) -> String {
    testing::refused(env!("CARGO_BIN_EXE_orchestra-phase-executor"), vars, says)
}

#[test]
fn zero_slots_are_refused() {
    refused(
        &[("ORCHESTRA_EXECUTOR_SLOTS", "0")],
        &["ORCHESTRA_EXECUTOR_SLOTS", "at least 1"],
    );
    refused(
        &[("ORCHESTRA_EXECUTOR_SLOTS", "many")],
        &["ORCHESTRA_EXECUTOR_SLOTS", "many"],
    );
    refused(
        &[("ORCHESTRA_EXECUTOR_FUNCTION_SLOTS", "0")],
        &["ORCHESTRA_EXECUTOR_FUNCTION_SLOTS", "at least 1"],
    );
}

#[test]
fn a_scheduler_url_that_is_not_http_is_refused() {
    refused(
        &[("ORCHESTRA_EXECUTOR_SCHEDULER_URL", "ftp://x")],
        &["ORCHESTRA_EXECUTOR_SCHEDULER_URL", "http://", "`ftp://x`"],
    );
}

#[test]
fn a_typo_in_a_variable_names_the_one_meant() {
    refused(
        &[("ORCHESTRA_EXECUTOR_SLOT", "2")],
        &[
            "ORCHESTRA_EXECUTOR_SLOT:",
            "did you mean ORCHESTRA_EXECUTOR_SLOTS?",
        ],
    );
}

#[test]
fn provider_settings_that_cannot_be_used_are_refused_by_name() {
    let said = refused(
        &[
            ("ANTHROPIC_API_KEY", "sk-ant-startup-secret"),
            ("ANTHROPIC_BASE_URL", "api.anthropic.com"),
        ],
        &["ANTHROPIC_BASE_URL", "http://", "`api.anthropic.com`"],
    );
    assert!(!said.contains("startup-secret"), "{said}");
    refused(
        &[("ORCHESTRA_PROVIDER_OLLAMA_URL", "http://127.0.0.1:11434/v1")],
        &[
            "ORCHESTRA_PROVIDER_OLLAMA_URL",
            "ORCHESTRA_PROVIDER_<NAME>_BASE_URL",
        ],
    );
    refused(
        &[("ORCHESTRA_EXECUTOR_PROVIDER_CONCURRENCY", "0")],
        &["ORCHESTRA_EXECUTOR_PROVIDER_CONCURRENCY", "at least 1"],
    );
}
