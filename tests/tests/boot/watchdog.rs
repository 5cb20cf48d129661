//! The hardware watchdog (`wren.watchdog=DEVICE,SECONDS`) for real: QEMU's
//! i6300esb on the virt board, its driver loaded by the disk boot's first
//! stage. A healthy system runs past several timeouts (also when a
//! non-critical unit fails); a failed `critical` unit stops the feeding and
//! the board resets within the timeout; a clean poweroff disarms it (the
//! magic close) and causes no reset. With `-no-reboot`, a reset ends QEMU:
//! the console then has no "Power down" line.
use crate::*;
use wren_boot_tests::{disk_copy, secs};

const CMDLINE: &str = "console=ttyAMA0,115200 root=/dev/vda rootwait rw init=/sbin/init \
     wren.units=/test/watchdog";

fn boot_wd(name: &str) -> wren_boot_tests::Vm {
    boot_wd_timeout(name, 4)
}

/// Booted with the watchdog's timeout `secs` long.
fn boot_wd_timeout(name: &str, secs: u32) -> wren_boot_tests::Vm {
    let disk = disk_copy(name);
    let cmdline = format!("{CMDLINE} wren.watchdog=/dev/watchdog,{secs}");
    let mut vm = wren_boot_tests::Vm::boot_disk_with(&disk, &cmdline, &["-device", "i6300esb"]);
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

#[test]
fn watchdog_fed_while_healthy_reset_after_a_critical_failure() {
    let mut vm = boot_wd("watchdog_reset");
    // Four timeouts, a non-critical unit failing in between: still up.
    vm.sh("touch /run/plain.fail", CMD);
    vm.wait_states(&[("plain", &["failed"])], CMD);
    vm.sh("sleep 16", Duration::from_secs(40));
    assert!(!vm.exited(), "reset while healthy");
    assert_eq!(vm.sh("echo alive", CMD).trim(), "alive");
    // The critical unit fails: no more feeding, a reset within the timeout
    // (4 s, plus the i6300esb's second stage and TCG's slowness).
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
