//! The exec handshake's status pipe: which step of a start failed and why,
//! written by the child in one five-byte report (`die`), or end of file
//! when its close-on-exec end closed at execve; read by PID 1 without
//! blocking (`poll_status`).

use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::io::Errno;

/// The step of spawning that failed; one variant per step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// argv or env did not fit the fixed buffers.
    Prepare,
    StatusPipe,
    Clone,
    SignalMask,
    Setsid,
    Console,
    Stdio,
    NotifyFd,
    Chdir,
    Groups,
    Setgid,
    Setuid,
    Exec,
    /// The child died before exec without saying why.
    Unknown,
    /// Dropping capabilities from the bounding set.
    Bounding,
    KeepCaps,
    Capset,
    Ambient,
    NoNewPrivs,
    Seccomp,
    /// PID 1 could not write the user namespace's id maps.
    UserMap,
    /// Setting up the unit's namespaces (mounts, root, hostname, lo).
    Namespace(crate::spawn::sandbox::Step),
    /// The namespace's reaper could not fork the service.
    Fork,
    /// Looking up `user` / `group`: the error is `users::why_code`'s (a
    /// reason, and the errno of a read that failed).
    Ids,
    /// Giving the unit's `sd_notify` socket to its user.
    NotifySocket,
    /// The pipe a child in a new user namespace waits on for its maps.
    UserSync,
    /// The child becoming uid and gid 0 of its user namespace.
    UserRoot,
}

impl Step {
    pub(super) const PLAIN: [Step; 25] = [
        Step::Prepare,
        Step::StatusPipe,
        Step::Clone,
        Step::SignalMask,
        Step::Setsid,
        Step::Console,
        Step::Stdio,
        Step::NotifyFd,
        Step::Chdir,
        Step::Groups,
        Step::Setgid,
        Step::Setuid,
        Step::Exec,
        Step::Unknown,
        Step::Bounding,
        Step::KeepCaps,
        Step::Capset,
        Step::Ambient,
        Step::NoNewPrivs,
        Step::Seccomp,
        Step::UserMap,
        Step::Ids,
        Step::NotifySocket,
        Step::UserSync,
        Step::UserRoot,
    ];
    const FORK_CODE: u8 = 30;

    pub(crate) fn code(self) -> u8 {
        match self {
            Step::Namespace(s) => s as u8,
            Step::Fork => Self::FORK_CODE,
            plain => Self::PLAIN
                .iter()
                .position(|p| *p == plain)
                .map(|i| i as u8)
                .unwrap_or(Self::FORK_CODE - 1),
        }
    }

    pub(super) fn from_code(c: u8) -> Step {
        if c == Self::FORK_CODE {
            return Step::Fork;
        }
        if let Some(s) = crate::spawn::sandbox::Step::from_code(c) {
            return Step::Namespace(s);
        }
        Self::PLAIN
            .get(usize::from(c))
            .copied()
            .unwrap_or(Step::Unknown)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Step::Prepare => "prepare argv/env",
            Step::StatusPipe => "status pipe",
            Step::Clone => "clone3 into cgroup",
            Step::SignalMask => "reset signal mask",
            Step::Setsid => "setsid",
            Step::Console => "open console",
            Step::Stdio => "set up stdio",
            Step::NotifyFd => "set up NOTIFY_FD",
            Step::Chdir => "chdir to workdir",
            Step::Groups => "set supplementary groups",
            Step::Setgid => "setgid",
            Step::Setuid => "setuid",
            Step::Exec => "execve",
            Step::Unknown => "child died before exec",
            Step::Bounding => "drop capabilities from the bounding set",
            Step::KeepCaps => "keep capabilities across setuid",
            Step::Capset => "set capabilities",
            Step::Ambient => "raise ambient capabilities",
            Step::NoNewPrivs => "set no_new_privs",
            Step::Seccomp => "install seccomp filter",
            Step::UserMap => "write the user namespace's uid/gid map",
            Step::Namespace(s) => s.as_str(),
            Step::Fork => "fork the service in its PID namespace",
            Step::Ids => "look up user/group",
            Step::NotifySocket => "give the notify socket to the unit's user",
            Step::UserSync => "user namespace's sync pipe",
            Step::UserRoot => "become root of the user namespace",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpawnError {
    pub step: Step,
    pub errno: i32,
}

impl core::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.step == Step::Ids {
            return match crate::config::users::why_text(self.errno) {
                (why, Some(e)) => write!(f, "{why}: {}", crate::sys::errno::Os::from(e)),
                (why, None) => f.write_str(why),
            };
        }
        let e = crate::sys::errno::Os(self.errno);
        write!(f, "{}: {e}", self.step.as_str())?;
        // What the kernel answers when it was built without filters (a
        // board's own kernel): said with the option that turns them on.
        let einval = rustix::io::Errno::INVAL.raw_os_error();
        let nosys = rustix::io::Errno::NOSYS.raw_os_error();
        if self.step == Step::Seccomp && (self.errno == einval || self.errno == nosys) {
            f.write_str(" (a kernel without CONFIG_SECCOMP_FILTER answers so)")?;
        }
        Ok(())
    }
}

/// A child that exists but has not been seen to exec yet.
#[derive(Debug)]
pub struct Pending {
    pub pid: u32,
    /// Read end of the close-on-exec status pipe, non-blocking.
    pub status: OwnedFd,
}

/// Where the exec handshake of a `Pending` child is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Nothing to read yet: the child is still on its way to execve.
    Waiting,
    /// End of file with nothing written: the close-on-exec end closed at
    /// execve (with a PID namespace: at the service's execve).
    Execd,
    Failed(SpawnError),
}

impl Pending {
    /// Read the status pipe once, without blocking. The child writes its
    /// five-byte report in one write, below PIPE_BUF, so it is read whole.
    pub fn poll(&self) -> Handshake {
        poll_status(&self.status)
    }
}

/// `Pending::poll` on the status pipe's read end alone.
pub fn poll_status(status: &OwnedFd) -> Handshake {
    let mut msg = [0u8; 5];
    loop {
        return match rustix::io::read(status, &mut msg) {
            Ok(0) => Handshake::Execd,
            Ok(5) => {
                let [step, e0, e1, e2, e3] = msg;
                Handshake::Failed(SpawnError {
                    step: Step::from_code(step),
                    errno: i32::from_le_bytes([e0, e1, e2, e3]),
                })
            }
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN) => Handshake::Waiting,
            Ok(_) | Err(_) => Handshake::Failed(SpawnError {
                step: Step::Unknown,
                errno: 0,
            }),
        };
    }
}

/// Tell the parent which step failed, then end the child.
pub(super) fn die(status_wr: BorrowedFd<'_>, err: SpawnError) -> ! {
    let [e0, e1, e2, e3] = err.errno.to_le_bytes();
    let _ = rustix::io::write(status_wr, &[err.step.code(), e0, e1, e2, e3]);
    crate::sys::clone::exit(127)
}

pub(super) fn fail(step: Step, e: Errno) -> SpawnError {
    SpawnError {
        step,
        errno: e.raw_os_error(),
    }
}

#[cfg(test)]
mod tests {
    use super::{SpawnError, Step};

    /// A failed start's reason, as each retry writes it: std's errno
    /// text, and no allocation for it, also for a user lookup whose read
    /// failed (its errno rides above the reason's index).
    #[test]
    fn a_spawn_error_reads_its_errno_without_the_heap() {
        let why = "cannot read /etc/passwd";
        let read = crate::config::users::why_code(why, Some(rustix::io::Errno::ACCESS));
        let cases = [
            (
                Step::Exec,
                2,
                "execve: No such file or directory (os error 2)",
            ),
            (
                Step::Ids,
                read,
                "cannot read /etc/passwd: Permission denied (os error 13)",
            ),
            (
                Step::Seccomp,
                22,
                "install seccomp filter: Invalid argument (os error 22) (a kernel without CONFIG_SECCOMP_FILTER answers so)",
            ),
            (
                Step::Seccomp,
                12,
                "install seccomp filter: Cannot allocate memory (os error 12)",
            ),
        ];
        for (step, errno, text) in cases {
            let mut s: heapless::String<160> = heapless::String::new();
            let before = crate::sys::alloc::thread_count();
            core::fmt::write(&mut s, format_args!("{}", SpawnError { step, errno })).unwrap();
            assert_eq!(crate::sys::alloc::thread_count(), before, "{text}");
            assert_eq!(s.as_str(), text);
        }
    }
}
