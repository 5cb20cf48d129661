//! Nothing written is lost at shutdown, on a disk root (issue 8): a unit
//! writes one file with fsync and one without, then the system goes down
//! by each path there is (BusyBox `poweroff`, i.e. SIGUSR2 to PID 1;
//! `reboot`, SIGTERM; `initctl reboot`; Ctrl-Alt-Del on a keyboard, SIGINT)
//! right after the writes returned; and the unit writes a third file,
//! unsynced, when its stop signal comes. At the next boot of the same disk
//! all three files are there in full, and `e2fsck -fn` finds the file
//! system clean. One test per path, all through `data_survives`.
//!
//! The root is mounted with `commit=120` (`rootflags=`), so that within a
//! test neither a periodic journal commit nor writeback saves unsynced
//! data: only the fsync and PID 1's shutdown do. The control test
//! `disk_data_lost_by_a_reset_without_sync` shows that this set-up does
//! lose the unsynced file when the system is reset without a sync.
use crate::*;
use wren_boot_tests::{disk_copy, fsck, hmp, monitor_socket, secs};

const CMDLINE: &str = "console=ttyAMA0 root=/dev/vda rootfstype=ext4 rootflags=commit=120 \
     rootwait rw init=/sbin/init wren.units=/test/diskdata";

/// How the test takes the system down.
#[derive(Clone, Copy, Debug)]
enum Down {
    /// BusyBox `poweroff`: SIGUSR2 to PID 1.
    Poweroff,
    /// BusyBox `reboot`: SIGTERM to PID 1.
    Reboot,
    /// `initctl reboot`: over the control socket.
    InitctlReboot,
    /// Ctrl-Alt-Del from QEMU's monitor on a virtio keyboard: SIGINT.
    CtrlAltDel,
}

/// What `seq FIRST LAST` writes, as the writer unit makes its files.
fn seq(first: u32, last: u32) -> String {
    (first..=last).map(|i| format!("{i}\n")).collect()
}

/// Checks one file of the guest against the text it must hold: its size,
/// and every byte (the same `seq` again, compared by `cmp`).
fn assert_file(vm: &mut Vm, path: &str, first: u32, last: u32, row: Down) {
    let want = seq(first, last);
    let size = vm.sh(&format!("wc -c < {path}"), CMD);
    assert_eq!(
        size.trim().parse::<usize>().ok(),
        Some(want.len()),
        "{row:?}: size of {path}: {size:?}"
    );
    let (out, rc) = vm.sh_rc(&format!("seq {first} {last} | cmp - {path}"), secs(90));
    assert_eq!(rc, 0, "{row:?}: {path} differs: {out}");
    // The guest's `seq` is the text the test means: first and last line.
    let head = vm.sh(&format!("head -n 1 {path}; tail -n 1 {path}"), CMD);
    assert_eq!(head.trim(), format!("{first}\n{last}"), "{row:?}");
}

/// Boots `disk` with the writer and waits until both of its writes
/// returned (the fsync'd one first).
fn boot_and_write(disk: &std::path::Path, args: &[&str]) -> Vm {
    let mut vm = Vm::boot_disk_with(disk, CMDLINE, args);
    vm.wait_shell(BOOT);
    vm.wait_states(&[("writer", &["running"])], secs(60));
    let deadline = Instant::now() + secs(60);
    while vm.sh("cat /run/written 2>/dev/null", CMD).trim() != "done" {
        assert!(
            Instant::now() < deadline,
            "the writer never wrote\n{}",
            vm.tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    vm
}

fn data_survives(name: &str, row: Down) {
    let disk = disk_copy(name);
    let (mon, mut args) = monitor_socket(name);
    args.extend(["-device".to_string(), "virtio-keyboard-pci".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut vm = boot_and_write(&disk, &args);
    let before = vm.output().len();
    // Down at once: the unsynced file is still only in the page cache.
    match row {
        Down::Poweroff => vm.send("poweroff\n"),
        Down::Reboot => vm.send("reboot\n"),
        Down::InitctlReboot => vm.send("initctl reboot\n"),
        Down::CtrlAltDel => {
            let said = hmp(&mon, "sendkey ctrl-alt-delete");
            assert!(
                !said.contains("Error") && !said.contains("unknown"),
                "{said}"
            );
        }
    }
    vm.expect("[ STOP ] writer: stopped", secs(60));
    vm.expect("remounted / read-only", secs(60));
    let how = match row {
        Down::Poweroff => "reboot: Power down",
        Down::Reboot | Down::InitctlReboot | Down::CtrlAltDel => "reboot: Restarting system",
    };
    assert_shut_down(&mut vm, before, how, secs(90));
    let (clean, report) = fsck(&disk);
    assert!(clean, "{row:?}: e2fsck -fn:\n{report}");
    // The next boot: the rescue shell only, so that nothing writes the
    // files again.
    let mut vm = Vm::boot_disk(&disk, &format!("{CMDLINE} wren.rescue"));
    vm.wait_shell(BOOT);
    assert_file(&mut vm, "/root/fsynced", 1, 30000, row);
    assert_file(&mut vm, "/root/unsynced", 30001, 60000, row);
    assert_file(&mut vm, "/root/atstop", 60001, 90000, row);
    let before = vm.output().len();
    vm.send("poweroff\n");
    assert_shut_down(&mut vm, before, "reboot: Power down", secs(90));
    let (clean, report) = fsck(&disk);
    assert!(
        clean,
        "{row:?}: e2fsck -fn after the second boot:\n{report}"
    );
}

#[test]
fn disk_data_kept_by_poweroff() {
    data_survives("data_poweroff", Down::Poweroff);
}

#[test]
fn disk_data_kept_by_reboot() {
    data_survives("data_reboot", Down::Reboot);
}

#[test]
fn disk_data_kept_by_initctl_reboot() {
    data_survives("data_initctl_reboot", Down::InitctlReboot);
}

#[test]
fn disk_data_kept_by_ctrl_alt_del() {
    data_survives("data_ctrl_alt_del", Down::CtrlAltDel);
}

/// The control: the same writes, then a reset with no sync at all (SysRq
/// `b`, as a power cut): the fsync'd file is there, the other is not (at
/// least not in full). Were it kept, the tests above would prove nothing.
#[test]
fn disk_data_lost_by_a_reset_without_sync() {
    let disk = disk_copy("data_reset");
    let mut vm = boot_and_write(&disk, &[]);
    vm.send("echo b > /proc/sysrq-trigger\n");
    let status = vm.wait_exit(secs(60)).expect("no reset within 60 s");
    assert!(status.success(), "qemu exit {status:?}");
    assert!(!vm.output().contains("remounted / read-only"));
    let mut vm = Vm::boot_disk(&disk, &format!("{CMDLINE} wren.rescue"));
    vm.wait_shell(BOOT);
    assert_file(&mut vm, "/root/fsynced", 1, 30000, Down::Poweroff);
    let want = seq(30001, 60000);
    let size = vm.sh("wc -c < /root/unsynced 2>/dev/null || echo 0", CMD);
    let size: usize = size.trim().parse().unwrap_or(0);
    assert!(
        size < want.len(),
        "the unsynced file survived a reset without sync ({size} bytes): \
         the disk_data tests cannot tell a sync from none"
    );
}
