//! Multi-call entry: PID 1 is the init, `initctl` (or `wren CMD`) the client.

use std::process::ExitCode;

#[global_allocator]
static ALLOC: wren::sys::alloc::Counting = wren::sys::alloc::Counting;

fn main() -> ExitCode {
    if rustix::process::getpid().is_init() {
        // Never returns: PID 1 must not exit.
        wren::pid1::run();
    }
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let base = std::path::Path::new(&argv0)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let rest: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    let code = if base == "initctl" {
        wren::ctl::main(&rest)
    } else {
        // `wren CMD ...` behaves as `initctl CMD ...`.
        wren::ctl::main(&rest)
    };
    ExitCode::from(code)
}
