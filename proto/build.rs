//! Compiles `orchestra/v1/*.proto` with protox (pure Rust, no protoc) into
//! `OUT_DIR` with serde implementations (proto3 JSON mapping), and writes
//! the descriptor set that server reflection serves.

use std::path::PathBuf;

use prost::Message;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "orchestra/v1/common.proto",
        "orchestra/v1/template.proto",
        "orchestra/v1/run.proto",
        "orchestra/v1/task.proto",
        "orchestra/v1/artifact.proto",
        "orchestra/v1/review.proto",
        "orchestra/v1/provider.proto",
    ];
    let descriptors = protox::compile(files, ["."])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    // `compile_fds` ignores `file_descriptor_set_path`, so write it ourselves.
    let encoded = descriptors.encode_to_vec();
    std::fs::write(out_dir.join("orchestra_descriptor.bin"), &encoded)?;
    tonic_prost_build::configure()
        // Well-known types with serde support, so every message has it.
        .compile_well_known_types(true)
        .extern_path(".google.protobuf", "::pbjson_types")
        .compile_fds(descriptors)?;
    // Proto3 JSON mapping (serde) for every message, for `--output json`
    // and anything else that speaks JSON.
    pbjson_build::Builder::new()
        .register_descriptors(&encoded)?
        .build(&[".orchestra"])?;
    println!("cargo:rerun-if-changed=orchestra");
    Ok(())
}
