//! Build script shared by every crate whose binaries or tests link libtorch
//! (`models/nn` = tcanet-nn, `trainer`, `tests`): link arguments apply to
//! the crate's own binaries and tests only, so each of them runs it.
//!
//! It bakes an rpath to the project's libtorch into the binaries, so they run
//! without `LD_LIBRARY_PATH`, and keeps `libtorch_cuda.so` as a NEEDED library:
//! nothing references it directly, so the linker would drop it and CUDA would
//! never be available. `LD_LIBRARY_PATH` still wins over
//! the rpath, which is how a GPU machine's own libtorch gets loaded.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-changed=build_libtorch.rs");
    let Ok(libtorch) = std::env::var("LIBTORCH") else {
        return;
    };
    let link_arg = "cargo:rustc-link-arg";
    let lib = Path::new(&libtorch).join("lib");
    println!("{link_arg}=-Wl,-rpath,{}", lib.display());
    if lib.join("libtorch_cuda.so").exists() {
        println!("{link_arg}=-L{}", lib.display());
        println!("{link_arg}=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
    }
}
