//! The real binary as `initctl`, for what only its own start sees: the
//! process's arguments as the kernel passed them.

#![allow(clippy::unwrap_used)]

use std::os::unix::ffi::OsStrExt;
use std::process::Command;

/// An argument that is not UTF-8 is refused (exit 2), not read as
/// another name with U+FFFD in it.
#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_wren"))
        .arg("check")
        .arg(std::ffi::OsStr::from_bytes(b"caf\xe9.unit"))
        .env("WREN_CONTROL", "/nonexistent/wren/control")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not UTF-8"), "{err}");
}
