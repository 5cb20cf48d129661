//! The hardware watchdog (`wren.watchdog=DEVICE,SECONDS`) for real: QEMU's
//! i6300esb on the virt board, its driver loaded by the disk boot's first
//! stage. A healthy system runs past several timeouts (also when a
//! non-critical unit fails); a failed `critical` unit stops the feeding and
//! the board resets within the timeout; a clean poweroff disarms it (the
//! magic close) and causes no reset. Where the board must reset, QEMU
//! pauses instead (`-action watchdog=pause`) and its monitor tells why:
//! under `-no-reboot` a reset would end QEMU just as PID 1's death
//! (`panic=-1`) or a reboot does.
use crate::*;
use std::path::{Path, PathBuf};
use wren_boot_tests::{disk_copy, hmp, monitor_socket, secs};

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
fn boot_wd_on(disk: &Path, secs: u32) -> wren_boot_tests::Vm {
    boot_wd_with(disk, secs, &[])
}

/// Booted as `boot_wd_on` does, QEMU paused by the watchdog rather than
/// reset, with the monitor that says so (`fired_after`).
fn boot_wd_paused(name: &str, secs: u32) -> (wren_boot_tests::Vm, PathBuf, PathBuf) {
    let disk = disk_copy(name);
    let (mon, mut args) = monitor_socket(name);
    args.extend(["-action".to_string(), "watchdog=pause".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (boot_wd_with(&disk, secs, &args), mon, disk)
}

fn boot_wd_with(disk: &Path, secs: u32, qemu_args: &[&str]) -> wren_boot_tests::Vm {
    let cmdline = format!("{CMDLINE} wren.watchdog=/dev/watchdog,{secs}");
    let mut args = vec!["-device", "i6300esb"];
    args.extend(qemu_args);
    let mut vm = wren_boot_tests::Vm::boot_disk_with(disk, &cmdline, &args);
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

/// What QEMU's monitor says of the VM: "VM status: running", or "paused
/// (watchdog)" once the watchdog fired.
fn vm_status(mon: &Path) -> String {
    hmp(mon, "info status").trim().to_string()
}

/// Waits until the watchdog of a `boot_wd_paused` VM fires, up to
/// `limit` after `since`, and returns how long after `since` it did.
/// Panics when QEMU ends first: something other than the watchdog ended
/// the VM (PID 1 died, the kernel rebooted or powered off).
fn fired_after(
    vm: &mut wren_boot_tests::Vm,
    mon: &Path,
    since: Instant,
    limit: Duration,
) -> Duration {
    loop {
        assert!(
            !vm.exited(),
            "QEMU ended before the watchdog fired (panic: {})\n{}",
            vm.output().contains("Kernel panic"),
            vm.tail()
        );
        let st = vm_status(mon);
        if st.contains("paused (watchdog)") {
            return since.elapsed();
        }
        assert!(st.contains("running"), "{st}\n{}", vm.tail());
        assert!(
            since.elapsed() < limit,
            "the watchdog did not fire within {limit:?}\n{}",
            vm.tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The soonest a watchdog of `secs` can fire after the failure was seen
/// on the console: fed every third of it, the last feed may come just
/// before the failure; a second off for the console's delay.
fn soonest(secs: u32) -> Duration {
    Duration::from_millis(u64::from(secs) * 2000 / 3 - 1000)
}

/// ... and what was written before the failure, not synced, is on the
/// disk after the reset: PID 1 asked the kernel to write it out when it
/// stopped feeding (a reset without a sync loses it:
/// disk_data_lost_by_a_reset_without_sync).
#[test]
fn watchdog_fed_while_healthy_reset_after_a_critical_failure() {
    let (mut vm, mon, disk) = boot_wd_paused("watchdog_reset", 4);
    // Four timeouts, a non-critical unit failing in between: still up.
    vm.sh("touch /run/plain.fail", CMD);
    vm.wait_states(&[("plain", &["failed"])], CMD);
    vm.sh("sleep 16", Duration::from_secs(40));
    let st = vm_status(&mon);
    assert!(st.contains("running"), "reset while healthy: {st}");
    assert_eq!(vm.sh("echo alive", CMD).trim(), "alive");
    // The critical unit fails: no more feeding, a reset within the timeout
    // (4 s, plus the i6300esb's second stage and TCG's slowness).
    vm.sh("seq 1 30000 > /root/unsynced", CMD);
    let before = vm.output().len();
    vm.send("touch /run/crit.fail\n");
    vm.expect("crit: critical unit failed", Duration::from_secs(10));
    let took = fired_after(&mut vm, &mon, Instant::now(), secs(30));
    eprintln!("reset {} ms after the failure was seen", took.as_millis());
    assert!(took >= soonest(4), "reset {took:?} after the failure");
    assert!(!vm.output()[before..].contains("Kernel panic"));
    // Paused, QEMU holds the disk's lock; killed, it has written what the
    // guest wrote, as a reset leaves it.
    drop(vm);
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
    let before = vm.output().len();
    vm.send("poweroff\n");
    assert_shut_down(&mut vm, before, "reboot: Power down", secs(60));
    let out = vm.output();
    assert_in_order(
        &out[before..],
        &["wren: shutdown: watchdog disarmed", "reboot: Power down"],
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
    let (mut vm, mon, _disk) = boot_wd_paused("watchdog_crit_reexec", 10);
    vm.send("touch /run/crit.fail\n");
    vm.expect("crit: critical unit failed", Duration::from_secs(10));
    let failed = Instant::now();
    let before = vm.output().len();
    vm.send("initctl reexec\n");
    vm.expect(
        "refused: a critical unit failed: the watchdog is no longer fed",
        Duration::from_secs(20),
    );
    let took = fired_after(&mut vm, &mon, failed, secs(60));
    let out = vm.output();
    assert!(
        !out[before..].contains("took over as PID 1"),
        "re-executed:\n{}",
        vm.tail()
    );
    assert!(!out[before..].contains("Kernel panic"));
    assert!(took >= soonest(10), "reset {took:?} after the failure");
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
