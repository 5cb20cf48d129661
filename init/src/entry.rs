//! What this process is, from what started it: a namespace's reaper
//! exec'd by PID 1, PID 1 itself, or `initctl` (`wren CMD`). Called from
//! `sys::entry::wren_main`; returns the client's exit code.

pub fn run() -> u8 {
    // A PID namespace's reaper, exec'd by its fork of PID 1 (see
    // `spawn::reaper`); returns at once for anything else.
    crate::spawn::reaper::serve_if_reaper();
    if rustix::process::getpid().is_init() {
        // Never returns: PID 1 must not exit.
        crate::pid1::run();
    }
    client()
}

/// `initctl --self-test-panic`: panics, in std (a test of the panic
/// path of a build without an unwinder: its message, then the abort;
/// docs/initctl.md).
const SELF_TEST_PANIC: &str = "--self-test-panic";

/// Any other name (`initctl CMD ...`, `wren CMD ...`) is the client.
fn client() -> u8 {
    // As under Rust's own start-up (`sys::entry`): stdio that a caller
    // left closed reads and writes /dev/null, not the control socket that
    // would take its number; and a closed pipe on stdout is an error to
    // report, not a SIGPIPE.
    if crate::boot::mounts::ensure_std_fds(std::path::Path::new("/dev/null")).is_err() {
        let _ = crate::boot::mounts::hold_std_fds();
    }
    let _ = crate::sys::signal::ignore(nix::sys::signal::Signal::SIGPIPE);
    // An argument that is not UTF-8 (a file name of another encoding) is
    // refused, not read as another name with U+FFFD in it.
    let mut rest: Vec<String> = Vec::new();
    for a in crate::sys::entry::args().skip(1) {
        match a.to_str() {
            Some(s) => rest.push(s.to_owned()),
            None => {
                // One raw write: std's unlocked stderr would link its own
                // writer (1 KB) for this one line.
                let msg = format!("initctl: argument '{}' is not UTF-8\n", a.to_string_lossy());
                let _ = rustix::io::write(rustix::stdio::stderr(), msg.as_bytes());
                return 2;
            }
        }
    }
    // A PID 1 about to exec this binary asks first (`initctl reexec`).
    let first = rest.first().map(String::as_str);
    if first == Some(SELF_TEST_PANIC) {
        // The boot test `panic_abort`: a real panic of the real binary,
        // which has no unwinder (`sys::unwind`), through std's hook: a
        // vector larger than an address space, std's "capacity overflow".
        let too_many = core::hint::black_box(usize::MAX);
        core::hint::black_box(Vec::<u8>::with_capacity(too_many));
    }
    if first == Some(crate::handover::HANDSHAKE_ARG) {
        u8::from(!crate::pid1::print_handshake())
    } else {
        crate::ctl::main(&rest)
    }
}
