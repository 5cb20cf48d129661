//! PID 1's console fds.
use crate::*;

/// PID 1 never waits on a busy serial line: its fd 2 is non-blocking. But
/// in an open file of its own: the kernel's console open file (PID 1's fd
/// 0 still), shared with whatever was forked before init's exec (an
/// initramfs script's job, the benchmark's driver), keeps blocking
/// writes, or theirs would fail with EAGAIN whenever the line is busy.
#[test]
fn pid1s_stderr_is_non_blocking_in_an_open_file_of_its_own() {
    let mut vm = boot("restart");
    vm.wait_states(&[("victim", &["running"])], Duration::from_secs(30));
    let mut flags = |fd: u32| -> u32 {
        let text = vm.sh(&format!("grep '^flags' /proc/1/fdinfo/{fd}"), CMD);
        let octal = text
            .split_whitespace()
            .nth(1)
            .unwrap_or_else(|| panic!("{text}"));
        u32::from_str_radix(octal, 8).unwrap_or_else(|_| panic!("{text}"))
    };
    const O_NONBLOCK: u32 = 0o4000;
    assert_eq!(flags(0) & O_NONBLOCK, 0, "the kernel's console open file");
    assert_ne!(flags(2) & O_NONBLOCK, 0, "PID 1's stderr");
    let same = vm.sh("readlink /proc/1/fd/0; readlink /proc/1/fd/2", CMD);
    assert_eq!(same.matches("/dev/console").count(), 2, "{same}");
}
