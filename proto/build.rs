//! Compiles `orchestra/v1/*.proto` with protox (pure Rust, no protoc) into
//! `OUT_DIR`, and writes the descriptor set that server reflection serves.

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
    std::fs::write(
        out_dir.join("orchestra_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    println!("cargo:rerun-if-changed=orchestra");
    Ok(())
}
