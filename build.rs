//! Link settings for the `vigil` binary: in release builds for x86-64 Linux (where Rust links
//! with its bundled LLD), identical code folding, so the many byte-identical copies of generic
//! code the crates instantiate are kept once (about 8 MB of the binary). Other targets and
//! debug and test builds link as usual.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let lld = std::env::var("TARGET").as_deref() == Ok("x86_64-unknown-linux-gnu");
    if release && lld {
        println!("cargo:rustc-link-arg-bins=-Wl,--icf=all");
    }
}
