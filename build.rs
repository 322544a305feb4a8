//! Compiles `proto/worker.proto` with protox (a protobuf compiler in Rust), so building needs no
//! `protoc`: the descriptors go to tonic-prost-build, which writes the gRPC service code.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/worker.proto");
    let fds = protox::compile(["worker.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
