//! Replays the fuzz seed corpus (`fuzz/seeds/<target>/`) and every saved
//! crash (`fuzz/regressions/<target>/`) through the same checks the fuzz
//! targets run (`fuzz/src/checks.rs`, included below), so CI keeps
//! checking them without a fuzzer or a nightly toolchain.

// Test code: a failed check should fail loudly, so it unwraps, panics
// and indexes freely (the workspace denies these in non-test code).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../../fuzz/src/checks.rs"]
mod checks;

use std::path::{Path, PathBuf};

/// Every file under `fuzz/<kind>/<target>/`, sorted; none when the folder
/// does not exist (a target with no regressions yet).
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("{}: {e}", dir.display()),
    };
    files.retain(|f| f.is_file());
    files.sort();
    files
}

/// Runs `check` on each input, naming the input that fails.
fn replay(files: &[PathBuf], mut check: impl FnMut(&[u8])) {
    for f in files {
        let data = std::fs::read(f).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&data)));
        if let Err(e) = r {
            eprintln!("failing input: {}", f.display());
            std::panic::resume_unwind(e);
        }
    }
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wren-fuzz-regress-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn proto_frames_seed_corpus() {
    let files = inputs("seeds", "proto_frames");
    assert!(files.len() >= 10, "seed corpus missing: {files:?}");
    replay(&files, checks::proto_frames);
}

#[test]
fn proto_frames_regressions() {
    replay(&inputs("regressions", "proto_frames"), checks::proto_frames);
}

#[test]
fn unit_file_seed_corpus() {
    let files = inputs("seeds", "unit_file");
    assert!(files.len() >= 10, "seed corpus missing: {files:?}");
    let root = scratch("seeds");
    let dir = checks::UnitDir::new(&root);
    replay(&files, |d| checks::unit_file(d, &dir, true));
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn unit_file_regressions() {
    let root = scratch("regressions");
    let dir = checks::UnitDir::new(&root);
    replay(&inputs("regressions", "unit_file"), |d| {
        checks::unit_file(d, &dir, true)
    });
    let _ = std::fs::remove_dir_all(root);
}

/// The checks themselves catch what they claim to: a seed that is a valid
/// unit really goes through the render roundtrip, and a corrupted frame
/// stream is still read the same whatever the chunking.
#[test]
fn the_checks_see_real_units_and_frames() {
    let (def, errs) = checks::unit_text("exec = /bin/true\nstop_signal = HUP\n");
    assert!(errs.is_empty());
    let def = def.unwrap();
    assert_eq!(def.stop_signal, 1);
    checks::roundtrip(&def);
    let (def, errs) = checks::unit_text("exec = /bin/true\nbogus = 1\n");
    assert!(def.is_none());
    assert_eq!(errs[0].line, 2);
    // Two frames, then a 4 GiB prefix, fed one byte at a time.
    let mut input = vec![1u8, 1, 2, 0, 0, 0, 1, 7, 2, 0, 0, 0, 1, 7];
    input.extend([0xff; 4]);
    checks::proto_frames(&input);
    checks::payload(&[1, 7]);
}

/// Found by `unit_file`: `render` names only 12 signals, `parse_signal`
/// accepts every one nix knows; for the others `render` wrote the comment
/// `# stop_signal = N`, so `initctl cat`/`edit` gave a unit that parses
/// back with the default TERM (and an `edit` + `reload` silently changed
/// the stop signal). Fails until render names every signal parse accepts.
#[test]
fn every_stop_signal_parse_accepts_survives_render() {
    for sig in [
        "BUS", "SEGV", "ABRT", "CHLD", "SYS", "TRAP", "URG", "XCPU", "VTALRM", "TTIN", "PIPE",
    ] {
        let (def, errs) = checks::unit_text(&format!("exec = /bin/true\nstop_signal = {sig}\n"));
        assert!(errs.is_empty(), "{sig}: {errs:?}");
        assert!(def.is_some(), "{sig}");
    }
}
