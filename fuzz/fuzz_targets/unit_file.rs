//! Arbitrary bytes as a unit file, through the parser (when UTF-8) and the
//! directory loader. See `checks::unit_file` for the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;
use wren_fuzz::checks::{unit_file, UnitDir};

static DIR: OnceLock<UnitDir> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| {
        // One scratch directory per fuzzing process (-jobs / -fork run
        // several), rewritten by every input.
        // On tmpfs when there is one: the loader's file is rewritten for
        // the inputs it reads, and a disk-backed $TMPDIR (overlayfs in a
        // container) makes each write cost more than the checks.
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let root = base.join(format!("wren-fuzz-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        UnitDir::new(&root)
    });
    unit_file(data, dir, false);
});
