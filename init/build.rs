//! Link flags for the binary: its entry (`sys::entry`) and, in the release
//! build, `unwind.ld`.
//!
//! A build script cannot see the profile's panic strategy (`CARGO_CFG_PANIC`
//! is the target's default, not the profile's), so it goes by the release
//! profile, which sets `panic = "abort"` (Buildroot sets it too), and by
//! `CARGO_PROFILE_RELEASE_PANIC` when that overrides it. `unwind.ld`
//! fails the link should an unwinder be linked in anyway.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=unwind.ld");
    println!("cargo:rerun-if-env-changed=CARGO_PROFILE_RELEASE_PANIC");
    // The binary starts in `wren_main` (src/sys/entry.rs), not in Rust's
    // start-up (`#![no_main]` in src/main.rs).
    println!("cargo:rustc-link-arg-bins=-Wl,--defsym=main=wren_main");
    let release = env::var("PROFILE").as_deref() == Ok("release");
    let musl = env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("musl");
    let unwind = env::var("CARGO_PROFILE_RELEASE_PANIC").as_deref() == Ok("unwind");
    if release && musl && !unwind {
        let dir = env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/unwind.ld");
    }
}
