//! Tells `src/ui.rs` where the dashboard's build is (`ui/dist` at the workspace root) as a
//! normalized absolute path: rust-embed, in debug builds, accepts at run time only files
//! under the folder as it was spelled at compile time, and `../..` would never match.
//! Release builds embed the files: rebuild when `ui/dist` appears or changes. Debug builds
//! read them at run time, so a new UI build needs no Rust rebuild.

use std::path::PathBuf;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let workspace = manifest_dir
        .parent()
        .and_then(|crates| crates.parent())
        .map(PathBuf::from)
        .unwrap_or_default();
    let dist = workspace.join("ui").join("dist");
    println!("cargo:rustc-env=UI_DIST_DIR={}", dist.display());
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rerun-if-changed={}", dist.display());
    }
}
