//! Build script shared by every crate whose binaries or tests link libtorch
//! (`models/nn` = tcanet-nn, `trainer`, `tests`).
//!
//! It bakes an rpath to the project's libtorch into the binaries, so they run
//! without `LD_LIBRARY_PATH`, and keeps `libtorch_cuda.so` as a NEEDED library:
//! nothing references it directly, so the linker would drop it and CUDA would
//! never be available (see ../shared/GPU.md). `LD_LIBRARY_PATH` still wins over
//! the rpath, which is how a GPU machine's own libtorch gets loaded.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build_libtorch.rs");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        return;
    };
    // The tests crate links libtorch into its integration tests only (tch is
    // a dev-dependency there); its binaries (tcanet-demo) must not link it.
    let link_arg = if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("tcanet-tests") {
        "cargo:rustc-link-arg-tests"
    } else {
        "cargo:rustc-link-arg"
    };
    let lib = Path::new(&libtorch).join("lib");
    println!("{link_arg}=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("{link_arg}=-L{}", lib.display());
        println!("{link_arg}=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
