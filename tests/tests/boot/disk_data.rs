//! Nothing written is lost at shutdown, on a disk root (issue 8): a unit
//! writes one file with fsync and one without, then the system goes down
//! by each path there is (BusyBox `poweroff`, i.e. SIGUSR2 to PID 1;
//! `reboot`, SIGTERM; `initctl reboot`; Ctrl-Alt-Del on a keyboard, SIGINT)
//! right after the writes returned. At the next boot of the same disk both
//! files are there in full, and `e2fsck -fn` finds the file system clean.
//! One test per path, all through `data_survives`.
use crate::*;
use wren_boot_tests::{disk_copy, fsck, hmp, monitor_socket, secs};

const CMDLINE: &str = "console=ttyAMA0 root=/dev/vda rootfstype=ext4 rootwait rw \
     init=/sbin/init wren.units=/test/diskdata";

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

fn data_survives(name: &str, row: Down) {
    let disk = disk_copy(name);
    let (mon, mut args) = monitor_socket(name);
    args.extend(["-device".to_string(), "virtio-keyboard-pci".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut vm = Vm::boot_disk_with(&disk, CMDLINE, &args);
    vm.wait_shell(BOOT);
    vm.wait_states(&[("writer", &["running"])], secs(60));
    // Both writes returned (the fsync'd one first).
    let deadline = Instant::now() + secs(60);
    while vm.sh("cat /run/written 2>/dev/null", CMD).trim() != "done" {
        assert!(
            Instant::now() < deadline,
            "{row:?}: the writer never wrote\n{}",
            vm.tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
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
    let status = vm
        .wait_exit(secs(90))
        .unwrap_or_else(|| panic!("{row:?}: VM still running 90 s later\n{}", vm.tail()));
    assert!(status.success(), "{row:?}: qemu exit {status:?}");
    let (clean, report) = fsck(&disk);
    assert!(clean, "{row:?}: e2fsck -fn:\n{report}");
    // The next boot: the rescue shell only, so that nothing writes the
    // files again.
    let mut vm = Vm::boot_disk(&disk, &format!("{CMDLINE} wren.rescue"));
    vm.wait_shell(BOOT);
    assert_file(&mut vm, "/root/fsynced", 1, 30000, row);
    assert_file(&mut vm, "/root/unsynced", 30001, 60000, row);
    vm.send("poweroff\n");
    assert!(
        vm.wait_exit(secs(90)).is_some(),
        "{row:?}: second boot did not power off"
    );
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
