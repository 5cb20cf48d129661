//! The release binary has no unwinder (init/src/sys/unwind.rs and
//! init/unwind.ld, issue 10): a panic still prints its message and aborts,
//! with or without `RUST_BACKTRACE`.

use crate::*;

/// `initctl --reexec-handshake` prints its line with `print!`, which
/// panics when stdout is a pipe nobody reads any more (Rust's runtime
/// ignores SIGPIPE, so the write fails with EPIPE): a real panic of the
/// real binary, through std's panic hook.
#[test]
fn a_panic_prints_its_message_and_aborts() {
    let mut vm = boot("demo");
    for env in ["", "RUST_BACKTRACE=1 "] {
        let out = vm.sh(
            &format!(
                "{{ sleep 1; {env}initctl --reexec-handshake 2>/run/panic.err; \
                 echo rc=$? >/run/panic.rc; }} | true; cat /run/panic.rc /run/panic.err"
            ),
            CMD,
        );
        // 128 + SIGABRT: the abort, not an exit or another signal.
        assert!(out.contains("rc=134"), "{env}:\n{out}");
        assert!(out.contains("panicked at"), "{env}:\n{out}");
        assert!(out.contains("failed printing to stdout"), "{env}:\n{out}");
        assert_eq!(
            out.contains("stack backtrace:"),
            !env.is_empty(),
            "{env}:\n{out}"
        );
    }
    // The same binary as PID 1 goes on.
    let out = vm.sh("initctl status", CMD);
    assert!(out.contains("init: wren "), "{out}");
    assert!(!vm.output().contains("Kernel panic"));
}
