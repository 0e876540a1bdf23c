//! Generates the prost types and tonic server traits for `protos/myapp` from a descriptor set
//! compiled by protox, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/../../protos/myapp");
    println!("cargo:rerun-if-changed={protos}");
    let descriptors = protox::compile(["notification.proto", "user.proto"], [protos])?;
    tonic_prost_build::configure().build_client(true).build_server(true).compile_fds(descriptors)?;
    Ok(())
}
