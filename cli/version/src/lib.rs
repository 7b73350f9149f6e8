//! What tcanet's binaries print for `--version`: the toolkit's version and
//! the git commit they were built from (`unknown` outside a git checkout or
//! without `git`).
//!
//! [`long_version!`] and [`git_commit!`] expand to a string literal inside
//! the crate that uses them, together with an `include_bytes!` of each git
//! file that says which commit is checked out (see `git.rs`). Cargo then
//! recompiles that crate, and only that one, when one of those files
//! changes. Only binaries (and tests) use them: a build script setting the
//! commit would instead make its package, and every crate above it,
//! recompile on each commit (cargo rebuilds all dependents of a rebuilt
//! crate).

#![warn(missing_docs)]

use std::path::Path;

use proc_macro::TokenStream;

mod git;

/// The toolkit's version (all binaries share the workspace's).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `VERSION (commit COMMIT)`, e.g. `0.1.0 (commit 0123456789ab)`: what
/// `--version` prints after the program's name. Takes no arguments.
#[proc_macro]
pub fn long_version(input: TokenStream) -> TokenStream {
    expand(input, |commit| format!("{VERSION} (commit {commit})"))
}

/// The short (12-digit) git commit the crate is compiled from, or
/// `unknown`. Takes no arguments.
#[proc_macro]
pub fn git_commit(input: TokenStream) -> TokenStream {
    expand(input, str::to_string)
}

/// A block of `const _: &[u8] = include_bytes!(FILE);` for each watched
/// git file, ending in the literal `text(commit)`.
fn expand(input: TokenStream, text: impl FnOnce(&str) -> String) -> TokenStream {
    if !input.is_empty() {
        return r#"compile_error!("takes no arguments")"#
            .parse()
            .expect("a fixed, valid token stream");
    }
    // Cargo runs rustc with the using crate's manifest directory set.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into());
    let checkout = git::Checkout::find(Path::new(&dir));
    let mut code = String::from("{");
    for path in checkout.watched.iter().filter_map(|p| p.to_str()) {
        // `{:?}` of a str is a valid Rust string literal.
        code += &format!("const _: &[u8] = include_bytes!({path:?});");
    }
    let commit = checkout.commit.as_deref().unwrap_or("unknown");
    code += &format!("{:?}}}", text(commit));
    code.parse()
        .expect("string literals escaped by Debug form valid tokens")
}
