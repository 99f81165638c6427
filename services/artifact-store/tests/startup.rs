//! Start-up of the artifact store binary with bad settings (the newcomer review's B8 table).
//!
//! The real binary is started with one bad variable: it must stop at once
//! with exit status 2 and one line naming the variable and what to do, with
//! no Rust `Debug` output.

use orchestra_kit::testing;

/// Asserts the binary stopped for a bad configuration that `says` each text.
fn refused(vars: &[(&str, &str)], says: &[&str]) -> String {
    testing::refused(env!("CARGO_BIN_EXE_orchestra-artifact-store"), vars, says)
}

#[test]
fn a_blob_folder_that_cannot_be_created_names_its_variable() {
    refused(
        &[
            ("ORCHESTRA_ARTIFACT_STORE_BLOB_DIR", "/proc/nope"),
            ("ORCHESTRA_ARTIFACT_STORE_LISTEN_ADDR", "127.0.0.1:0"),
        ],
        &[
            "ORCHESTRA_ARTIFACT_STORE_BLOB_DIR",
            "/proc/nope",
            "cannot create the folder",
        ],
    );
}

#[test]
fn a_limit_that_is_zero_or_not_a_number_is_refused() {
    refused(
        &[("ORCHESTRA_ARTIFACT_STORE_INLINE_LIMIT_BYTES", "lots")],
        &["ORCHESTRA_ARTIFACT_STORE_INLINE_LIMIT_BYTES", "lots"],
    );
    refused(
        &[("ORCHESTRA_ARTIFACT_STORE_MAX_MESSAGE_BYTES", "0")],
        &[
            "ORCHESTRA_ARTIFACT_STORE_MAX_MESSAGE_BYTES",
            "at least 1048576",
        ],
    );
}
