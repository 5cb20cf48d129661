//! PID 1's CPU scheduling policy.
//!
//! On a one-CPU machine PID 1, woken by the exec handshake's EOF right
//! after it started a unit, preempts the service it just exec'd and runs
//! its wake-up to the end first. As `SCHED_BATCH` it gets the same fair
//! share of the CPU but does not preempt the running task when it wakes:
//! the service runs first.
//!
//! The policy is inherited by every copy of PID 1, and
//! `SCHED_RESET_ON_FORK` does not help: it resets only real-time policies
//! and negative nice values, `SCHED_BATCH` stays. So every copy
//! (`clone::clone_into`) and every unit's program on a spawn slot sets
//! `SCHED_OTHER` back before it runs anything; a namespace's reaper keeps
//! `SCHED_BATCH`, so that its service's exec, which wakes it, is not
//! preempted (`sys::slot`).
//!
//! Having slept, though, PID 1 (or the reaper) is still the task picked at
//! the next tick, and on a slow CPU an exec outlasts a time slice: on one
//! CPU (`one_cpu`) a restart's exec is followed by a short sleep of both
//! before their own work (`pid1::handshake::wait_in_place`).

use std::io;

/// Makes the calling process `SCHED_BATCH` (nice unchanged); kept across
/// execve (`initctl reexec`).
pub fn batch() -> io::Result<()> {
    set(libc::SCHED_BATCH, 0)
}

/// Makes the calling process `SCHED_OTHER` again (nice unchanged). One
/// raw system call: safe in a copy of PID 1 before its exec.
pub fn normal() -> io::Result<()> {
    set(libc::SCHED_OTHER, 0)
}

/// Makes the calling thread `SCHED_FIFO` at priority 1 (tests: a PID 1
/// that the scheduler runs before anything it wakes on its CPU).
#[cfg(test)]
pub(crate) fn fifo() -> io::Result<()> {
    set(libc::SCHED_FIFO, 1)
}

/// The calling thread may run on one CPU only (its affinity mask, which
/// follows the CPUs online). An unreadable mask counts as more than one.
pub fn one_cpu() -> bool {
    rustix::thread::sched_getaffinity(None).is_ok_and(|set| set.count() == 1)
}

fn set(policy: libc::c_int, priority: libc::c_int) -> io::Result<()> {
    // Neither rustix nor nix wraps sched_setscheduler, and musl's
    // sched_setscheduler is a stub that always fails with ENOSYS: the raw
    // system call (`raw`: no errno, which a copy of PID 1 on a spawn slot
    // shares with it).
    // The kernel's `struct sched_param` is one int, the priority (0 for
    // the fair policies); musl's has more fields, which the kernel ignores.
    // SAFETY: sched_setscheduler(pid 0 = the caller, policy, param) only
    // reads the kernel's `struct sched_param` (one int) behind the
    // pointer, a live local int for the duration of the call.
    unsafe {
        super::raw::syscall6(
            libc::SYS_sched_setscheduler,
            [
                0,
                policy as usize,
                core::ptr::addr_of!(priority) as usize,
                0,
                0,
                0,
            ],
        )
    }
    .map(|_| ())
    .map_err(io::Error::from)
}

/// The policy a /proc/PID/sched prints (3 for SCHED_BATCH, 0 for
/// SCHED_OTHER), for the tests here and `slot`'s.
#[cfg(test)]
pub(crate) fn policy_of(sched: &str) -> String {
    let line = sched.lines().find(|l| l.starts_with("policy")).unwrap();
    line.split(':').nth(1).unwrap().trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::exec::CStrings;

    /// The CPUs of a kernel list ("0-1,3").
    fn cpus(list: &str) -> Vec<usize> {
        list.trim()
            .split(',')
            .flat_map(|r| match r.split_once('-') {
                Some((a, b)) => a.parse().unwrap()..=b.parse().unwrap(),
                None => r.parse().unwrap()..=r.parse().unwrap(),
            })
            .collect()
    }

    /// The mask's CPUs that are online (sched_getaffinity counts those).
    #[test]
    fn one_cpu_follows_the_affinity_mask() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let allowed = cpus(
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .unwrap(),
        );
        let online = cpus(&std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap());
        let n = allowed.iter().filter(|c| online.contains(c)).count();
        assert_eq!(one_cpu(), n == 1);
    }

    /// The policy line of /proc/PID/sched as a child of `spawn` prints it.
    fn child_policy(spawn: impl FnOnce(&CStrings<64, 4>, rustix::fd::BorrowedFd<'_>)) -> String {
        let mut argv: CStrings<64, 4> = CStrings::new();
        argv.push(&["/bin/cat"]).unwrap();
        argv.push(&["/proc/self/sched"]).unwrap();
        let (r, w) = rustix::pipe::pipe().unwrap();
        spawn(&argv, rustix::fd::AsFd::as_fd(&w));
        drop(w);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut out).unwrap();
        policy_of(&String::from_utf8(out).unwrap())
    }

    /// A thread that takes `batch` is SCHED_BATCH (3); a plain fork of it
    /// (std's Command) inherits that, a copy made by `clone_into` (every
    /// child wren makes) is SCHED_OTHER (0) again.
    #[test]
    fn batch_for_the_caller_other_for_its_copies() {
        // A thread of its own: the policy is per thread, and the test
        // harness's other threads keep theirs.
        std::thread::spawn(|| {
            batch().unwrap();
            let own = std::fs::read_to_string("/proc/thread-self/sched").unwrap();
            assert_eq!(policy_of(&own), "3");
            let inherited = child_policy(|argv, out| {
                let mut c =
                    std::process::Command::new(argv.iter().next().unwrap().to_str().unwrap());
                c.args(argv.iter().skip(1).map(|a| a.to_str().unwrap()));
                c.stdout(std::process::Stdio::from(out.try_clone_to_owned().unwrap()));
                c.status().unwrap();
            });
            assert_eq!(inherited, "3");
            let reset = child_policy(|argv, out| {
                let child = crate::sys::child::spawn(argv, [None, Some(out), None]).unwrap();
                assert!(child.wait().unwrap().success());
            });
            assert_eq!(reset, "0");
        })
        .join()
        .unwrap();
    }
}
