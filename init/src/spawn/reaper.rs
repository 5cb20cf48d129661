//! PID 1 of a unit's PID namespace: wren itself, forked from PID 1 (so it
//! shares PID 1's pages and costs a few of its own), never exec'd. It
//! reaps every zombie of the namespace, forwards the signals PID 1 sends
//! (the stop signal among them) to the service's process group, and when
//! the service ends, reports exactly how through a pipe and exits, which
//! makes the kernel kill whatever is left in the namespace.
//!
//! Signals stay blocked as inherited from PID 1 and are taken with
//! sigwait: a namespace's init gets signals from its parent namespace only
//! through a handler or while they are blocked, and blocked is simpler.

use crate::vocab::Exit;
use nix::sys::signal::{SigSet, Signal};
use nix::unistd::Pid;
use rustix::fd::BorrowedFd;
use rustix::process::WaitOptions;

/// Bytes of an exit report: kind (0 code, 1 signal) and an i32.
pub const REPORT_LEN: usize = 5;

pub fn encode(exit: Exit) -> [u8; REPORT_LEN] {
    let (kind, v) = match exit {
        Exit::Code(c) => (0u8, c),
        Exit::Signal(s) => (1u8, s),
        Exit::OomKill => (1u8, Signal::SIGKILL as i32),
    };
    let b = v.to_le_bytes();
    [kind, b[0], b[1], b[2], b[3]]
}

pub fn decode(r: &[u8]) -> Option<Exit> {
    let (&kind, rest) = r.split_first()?;
    let v = i32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
    match kind {
        0 => Some(Exit::Code(v)),
        1 => Some(Exit::Signal(v)),
        _ => None,
    }
}

/// How a waited-for child ended; None for a status that is not an end.
fn ended(st: rustix::process::WaitStatus) -> Option<Exit> {
    match (st.exit_status(), st.terminating_signal()) {
        (Some(c), _) => Some(Exit::Code(c)),
        (None, Some(s)) => Some(Exit::Signal(s)),
        (None, None) => None,
    }
}

/// Supervise `service` until it ends; never returns.
///
/// Forked from PID 1 without exec, it holds a copy of every fd PID 1 had
/// (the control listener and clients, other units' pipes, epoll,
/// signalfd): all are closed but stdio and `report`, so that it keeps none
/// of them alive and nothing in the namespace can reach them through it.
/// It opens no fd after, and never returns or drops what it inherited.
pub fn run(service: u32, report: Option<BorrowedFd<'_>>) -> ! {
    crate::sys::fd::close_all_but(report);
    let all = SigSet::all();
    // A pid fits an i32 (the kernel's pid_max is at most 2^22).
    let raw = i32::try_from(service).unwrap_or(i32::MAX);
    let svc = Pid::from_raw(raw);
    loop {
        let sig = match all.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            // The service called setsid, so its group is its pid.
            if nix::sys::signal::kill(Pid::from_raw(-raw), sig).is_err() {
                let _ = nix::sys::signal::kill(svc, sig);
            }
            continue;
        }
        loop {
            let exit = match rustix::process::wait(WaitOptions::NOHANG) {
                Ok(Some((p, st))) if p.as_raw_nonzero().get() == raw => match ended(st) {
                    Some(e) => e,
                    None => continue,
                },
                Ok(None) | Err(_) => break,
                // Some other process of the namespace: reaped, nothing more.
                Ok(Some(_)) => continue,
            };
            if let Some(fd) = report {
                let _ = rustix::io::write(fd, &encode(exit));
            }
            let code = match exit {
                Exit::Code(c) => c,
                Exit::Signal(s) => 128 + s,
                Exit::OomKill => 128 + Signal::SIGKILL as i32,
            };
            // The namespace's init must end when its service is gone; there
            // is nothing of ours to flush.
            crate::sys::clone::exit(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip() {
        for e in [
            Exit::Code(0),
            Exit::Code(3),
            Exit::Code(-1),
            Exit::Signal(9),
            Exit::Signal(15),
        ] {
            assert_eq!(decode(&encode(e)), Some(e));
        }
        assert_eq!(decode(&[2, 0, 0, 0, 0]), None);
        assert_eq!(decode(&[0, 1]), None);
        assert_eq!(decode(&[]), None);
    }
}
