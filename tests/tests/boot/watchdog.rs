//! The hardware watchdog (`wren.watchdog=DEVICE,SECONDS`) for real: QEMU's
//! i6300esb on the virt board, its driver loaded by the disk boot's first
//! stage. A healthy system runs past several timeouts (also when a
//! non-critical unit fails); a failed `critical` unit stops the feeding and
//! the board resets within the timeout; a clean poweroff disarms it (the
//! magic close) and causes no reset. With `-no-reboot`, a reset ends QEMU:
//! the console then has no "Power down" line.
use crate::*;
use wren_boot_tests::{disk_copy, secs};

/// `commit=120`: within a test only a sync writes a file out (as in
/// disk_data.rs), not the journal's periodic commit.
const CMDLINE: &str = "console=ttyAMA0,115200 root=/dev/vda rootflags=commit=120 rootwait rw \
     init=/sbin/init wren.units=/test/watchdog";

fn boot_wd(name: &str) -> wren_boot_tests::Vm {
    boot_wd_timeout(name, 4)
}

/// Booted with the watchdog's timeout `secs` long.
fn boot_wd_timeout(name: &str, secs: u32) -> wren_boot_tests::Vm {
    boot_wd_on(&disk_copy(name), secs)
}

/// `boot_wd_timeout` on a copy of the disk made already.
fn boot_wd_on(disk: &std::path::Path, secs: u32) -> wren_boot_tests::Vm {
    let cmdline = format!("{CMDLINE} wren.watchdog=/dev/watchdog,{secs}");
    let mut vm = wren_boot_tests::Vm::boot_disk_with(disk, &cmdline, &["-device", "i6300esb"]);
    vm.wait_shell(BOOT);
    vm.wait_states(
        &[("crit", &["running"]), ("plain", &["running"])],
        Duration::from_secs(30),
    );
    let armed = vm.sh(
        &format!("dmesg | grep -c 'wren: watchdog /dev/watchdog: armed, timeout {secs} s'"),
        CMD,
    );
    assert_eq!(armed.trim(), "1", "watchdog not armed:\n{}", vm.tail());
    vm
}

/// ... and what was written before the failure, not synced, is on the
/// disk after the reset: PID 1 asked the kernel to write it out when it
/// stopped feeding (a reset without a sync loses it:
/// disk_data_lost_by_a_reset_without_sync).
#[test]
fn watchdog_fed_while_healthy_reset_after_a_critical_failure() {
    let disk = disk_copy("watchdog_reset");
    let mut vm = boot_wd_on(&disk, 4);
    // Four timeouts, a non-critical unit failing in between: still up.
    vm.sh("touch /run/plain.fail", CMD);
    vm.wait_states(&[("plain", &["failed"])], CMD);
    vm.sh("sleep 16", Duration::from_secs(40));
    assert!(!vm.exited(), "reset while healthy");
    assert_eq!(vm.sh("echo alive", CMD).trim(), "alive");
    // The critical unit fails: no more feeding, a reset within the timeout
    // (4 s, plus the i6300esb's second stage and TCG's slowness).
    vm.sh("seq 1 30000 > /root/unsynced", CMD);
    let before = vm.output().len();
    vm.send("touch /run/crit.fail\n");
    vm.expect("crit: critical unit failed", Duration::from_secs(10));
    let t = Instant::now();
    let st = vm
        .wait_exit(secs(30))
        .expect("no reset 30 s after the critical unit failed");
    let out = vm.output();
    assert!(
        !out[before..].contains("reboot: Power down"),
        "it powered off, no reset"
    );
    assert!(
        !out[before..].contains("reboot: Restarting"),
        "a clean reboot, no reset"
    );
    eprintln!(
        "reset {} ms after the failure was seen ({st:?})",
        t.elapsed().as_millis()
    );
    let mut vm = wren_boot_tests::Vm::boot_disk(&disk, &format!("{CMDLINE} wren.rescue"));
    vm.wait_shell(BOOT);
    let want: String = (1..=30000).map(|i| format!("{i}\n")).collect();
    let size = vm.sh("wc -c < /root/unsynced 2>/dev/null || echo 0", CMD);
    assert_eq!(
        size.trim().parse::<usize>().ok(),
        Some(want.len()),
        "{size}"
    );
}

#[test]
fn watchdog_clean_poweroff_disarms_it() {
    let mut vm = boot_wd("watchdog_poweroff");
    vm.send("poweroff\n");
    let st = vm
        .wait_exit(secs(60))
        .expect("VM still running 60 s after poweroff");
    assert!(st.success(), "qemu exit {st:?}");
    let out = vm.output();
    assert!(
        out.contains("wren: shutdown: watchdog disarmed") || out.contains("reboot: Power down")
    );
    assert!(
        out.contains("reboot: Power down"),
        "no clean power down:\n{}",
        vm.tail()
    );
    // The driver says so when closed without the magic character.
    assert!(
        !out.contains("watchdog did not stop"),
        "closed without the magic close"
    );
}

/// `initctl reexec` keeps the board fed: the old PID 1 feeds right before
/// the exec and hands the open device over (never closed: the driver
/// would say "did not stop" at a close without the magic character), the
/// new one feeds it at once.
#[test]
fn watchdog_stays_fed_across_reexec() {
    let mut vm = boot_wd("watchdog_reexec");
    let (out, rc) = vm.sh_rc("initctl reexec", Duration::from_secs(60));
    assert_eq!(rc, 0, "{out}");
    vm.sh("sleep 14", Duration::from_secs(40));
    assert!(!vm.exited(), "reset after the re-exec:\n{}", vm.tail());
    let armed = vm.sh(
        "dmesg | grep -c 'wren: watchdog /dev/watchdog: armed, timeout 4 s'",
        CMD,
    );
    assert_eq!(armed.trim(), "1", "opened again by the new PID 1");
    let handed = vm.sh(
        "dmesg | grep -c 'wren: watchdog: handed over, timeout 4 s'",
        CMD,
    );
    assert_eq!(handed.trim(), "1", "not handed over");
    assert!(
        !vm.output().contains("watchdog did not stop"),
        "closed across the exec"
    );
    assert_eq!(vm.sh("echo alive", CMD).trim(), "alive");
}

/// Once a critical unit has failed, a re-exec is refused: a new PID 1
/// would feed the watchdog again (one of another state format knows
/// nothing of the failure). The board resets as it would have without
/// it (docs/update.md). A 10 s timeout, so that the refusal comes before
/// the reset.
#[test]
fn watchdog_not_armed_again_by_a_reexec_after_a_critical_failure() {
    let mut vm = boot_wd_timeout("watchdog_crit_reexec", 10);
    vm.send("touch /run/crit.fail\n");
    vm.expect("crit: critical unit failed", Duration::from_secs(10));
    let before = vm.output().len();
    vm.send("initctl reexec\n");
    vm.expect(
        "refused: a critical unit failed: the watchdog is no longer fed",
        Duration::from_secs(20),
    );
    let st = vm
        .wait_exit(secs(60))
        .expect("no reset 60 s after the re-exec");
    let out = vm.output();
    assert!(
        !out[before..].contains("took over as PID 1"),
        "re-executed:\n{}",
        vm.tail()
    );
    assert!(
        !out[before..].contains("reboot: Power down")
            && !out[before..].contains("reboot: Restarting"),
        "a clean shutdown, no reset ({st:?})"
    );
}

/// A re-exec whose state cannot be read at all (here a wrapper writes
/// over the memfd before it execs this build) closes the fds handed over,
/// all but the watchdog's: the new PID 1 finds the open device among them
/// and feeds it. Closed, the device would say "did not stop" and go on
/// counting with nobody feeding it until PID 1 opened it again; a driver
/// without the magic close stops at a close, and the board would go
/// unwatched.
#[test]
fn watchdog_kept_when_the_handed_over_state_is_unreadable() {
    let mut vm = boot_wd("watchdog_garbled");
    let fds_of = |vm: &mut wren_boot_tests::Vm| {
        let st = vm.wait_states(&[("plain", &["running"])], secs(10));
        let pid = st["plain"].pid.expect("plain's pid");
        vm.sh(
            &format!("ls -l /proc/{pid}/fd | sed 's/.* [0-9]* -> //;s/:.*//' | sort"),
            CMD,
        )
    };
    // What a unit has of its own (stdio, its exit report's pipe).
    let own = fds_of(&mut vm);
    crate::initctl_common::heredoc(
        &mut vm,
        "cat > /run/garbled",
        "#!/bin/sh\n[ \"$1\" = --handover ] && printf 'garbage' > /proc/self/fd/$2\nexec /sbin/init \"$@\"\n",
    );
    vm.sh("chmod 755 /run/garbled", CMD);
    let (out, rc) = vm.sh_rc("initctl reexec /run/garbled 2>&1", Duration::from_secs(60));
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("(state unreadable)"), "{out}");
    assert!(
        vm.saw(
            "cannot read the state handed over: adopted 3 running units",
            secs(10)
        ),
        "the state was read:\n{}",
        vm.tail()
    );
    vm.sh("sleep 14", Duration::from_secs(40));
    assert!(!vm.exited(), "reset after the re-exec:\n{}", vm.tail());
    assert!(
        !vm.output().contains("watchdog did not stop"),
        "the watchdog's fd was closed"
    );
    let held = vm.sh("ls -l /proc/1/fd | grep -c /dev/watchdog", CMD);
    assert_eq!(held.trim(), "1", "{}", vm.sh("ls -l /proc/1/fd", CMD));
    // The rest were closed: a unit started from here inherits none of
    // them (the units' pipes handed over, above all).
    vm.sh("initctl restart plain", CMD);
    assert_eq!(fds_of(&mut vm), own);
    assert_eq!(vm.sh("echo alive", CMD).trim(), "alive");
}
