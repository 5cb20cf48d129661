//! Multi-call entry: PID 1 is the init, `initctl` (or `wren CMD`) the client;
//! a PID namespace's reaper comes back here after its exec.

use std::process::ExitCode;

#[global_allocator]
static ALLOC: wren::sys::alloc::Counting = wren::sys::alloc::Counting;

fn main() -> ExitCode {
    // A PID namespace's reaper, exec'd by its fork of PID 1 (see
    // `spawn::reaper`); returns at once for anything else.
    wren::spawn::reaper::serve_if_reaper();
    if rustix::process::getpid().is_init() {
        // Never returns: PID 1 must not exit.
        wren::pid1::run();
    }
    // Any other name (`initctl CMD ...`, `wren CMD ...`) is the client.
    let rest: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    // A PID 1 about to exec this binary asks first (`initctl reexec`).
    if rest.first().map(String::as_str) == Some(wren::handover::HANDSHAKE_ARG) {
        wren::pid1::print_handshake();
        return ExitCode::SUCCESS;
    }
    ExitCode::from(wren::ctl::main(&rest))
}
