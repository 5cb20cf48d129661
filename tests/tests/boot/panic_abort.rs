//! The release binary has no unwinder (init/src/sys/unwind.rs and
//! init/unwind.ld, issue 10): a panic still prints its message and aborts,
//! with or without `RUST_BACKTRACE`.

use crate::*;

/// `initctl --self-test-panic` panics: a real panic of the real binary,
/// through std's panic hook. (`initctl --reexec-handshake` into a pipe
/// nobody reads was the panic used before; it now writes its line
/// itself and exits 1, which is checked too.)
#[test]
fn a_panic_prints_its_message_and_aborts() {
    let mut vm = boot("demo");
    for env in ["", "RUST_BACKTRACE=1 "] {
        let out = vm.sh(
            &format!(
                "{env}initctl --self-test-panic 2>/run/panic.err; \
                 echo rc=$? >/run/panic.rc; cat /run/panic.rc /run/panic.err"
            ),
            CMD,
        );
        // 128 + SIGABRT: the abort, not an exit or another signal.
        assert!(out.contains("rc=134"), "{env}:\n{out}");
        assert!(out.contains("panicked at"), "{env}:\n{out}");
        assert!(out.contains("capacity overflow"), "{env}:\n{out}");
        assert_eq!(
            out.contains("stack backtrace:"),
            !env.is_empty(),
            "{env}:\n{out}"
        );
    }
    let out = vm.sh(
        "{ sleep 1; initctl --reexec-handshake; echo rc=$? >/run/hs.rc; } | true; cat /run/hs.rc",
        CMD,
    );
    assert!(out.contains("rc=1"), "{out}");
    // The same binary as PID 1 goes on.
    let out = vm.sh("initctl status", CMD);
    assert!(out.contains("init: wren "), "{out}");
    assert!(!vm.output().contains("Kernel panic"));
}
