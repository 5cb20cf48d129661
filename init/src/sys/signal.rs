//! A signal's default action, which nix sets only through its `unsafe`
//! `signal` (a handler it installed could run at any time).

use nix::sys::signal::{SigHandler, Signal};

/// Give `sig` its default action (a program started from PID 1 must not
/// inherit Rust's ignored SIGPIPE).
pub fn set_default(sig: Signal) -> nix::Result<()> {
    // SAFETY: SIG_DFL installs no handler, so no code of ours can run
    // asynchronously because of it.
    unsafe { nix::sys::signal::signal(sig, SigHandler::SigDfl) }.map(|_| ())
}

#[cfg(test)]
mod tests {
    use crate::vocab::{signal, ShutdownKind};
    use nix::sys::signal::Signal;

    /// The core numbers signals without a syscall crate; they must be this
    /// target's C library's.
    #[test]
    fn the_core_signal_table_matches_the_c_library() {
        let libc: Vec<(String, i32)> = Signal::iterator()
            .map(|s| (s.as_str().trim_start_matches("SIG").to_owned(), s as i32))
            .collect();
        let core: Vec<(String, i32)> = signal::NAMES
            .iter()
            .map(|(n, v)| ((*n).to_owned(), *v))
            .collect();
        let mut l = libc.clone();
        l.sort_by_key(|(_, v)| *v);
        assert_eq!(core, l);
        for (name, n) in &libc {
            assert_eq!(signal::name(*n), Some(name.as_str()));
            assert_eq!(signal::parse(name), Some(*n));
            assert_eq!(signal::parse(&format!("SIG{name}")), Some(*n));
            assert_eq!(signal::parse(&name.to_lowercase()), Some(*n));
        }
        for n in [0, 32, 64, -1] {
            assert_eq!(signal::name(n), None);
        }
        assert_eq!(signal::HUP, Signal::SIGHUP as i32);
        assert_eq!(signal::INT, Signal::SIGINT as i32);
        assert_eq!(signal::KILL, Signal::SIGKILL as i32);
        assert_eq!(signal::USR1, Signal::SIGUSR1 as i32);
        assert_eq!(signal::USR2, Signal::SIGUSR2 as i32);
        assert_eq!(signal::TERM, Signal::SIGTERM as i32);
    }

    #[test]
    fn shutdown_kinds_follow_the_c_library_numbers() {
        for s in Signal::iterator() {
            let want = match s {
                Signal::SIGTERM | Signal::SIGINT => Some(ShutdownKind::Reboot),
                Signal::SIGUSR1 => Some(ShutdownKind::Halt),
                Signal::SIGUSR2 => Some(ShutdownKind::Poweroff),
                _ => None,
            };
            assert_eq!(ShutdownKind::for_signal(s as i32), want, "{s}");
        }
    }
}
