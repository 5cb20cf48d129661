//! Field faults (issue 8): each leaves PID 1 running, the console shell
//! answering and the other units with their PIDs. Fixtures:
//! tests/units/faults/ (`a`: default namespaces, so a reaper; `b`: a
//! bystander; `esc`: prints terminal control sequences; `sh`: the console).
//! Ctrl-Alt-Del is pressed for real on a virtio keyboard through QEMU's
//! monitor, on the disk-root image so that what was written is checked.

use crate::initctl_common::*;
use crate::*;
use std::collections::HashMap;
use wren_boot_tests::{disk_copy, fsck, hmp, monitor_socket, secs, S_IFDIR, S_IFIFO, S_IFLNK};

const DIR: &str = "/test/faults";

fn settle(vm: &mut Vm) -> HashMap<String, u32> {
    vm.wait_states(
        &[
            ("sh", &["running"]),
            ("a", &["running"]),
            ("b", &["running"]),
            ("esc", &["running"]),
        ],
        secs(30),
    );
    pids(vm)
}

/// PID 1 is still wren and answers; `same` kept their PIDs.
fn survived(vm: &mut Vm, before: &HashMap<String, u32>, same: &[&str]) {
    assert_eq!(vm.sh("cat /proc/1/comm", CMD).trim(), "init");
    let (out, rc, took) = timed(vm, "initctl status", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(took < 5.0, "initctl status took {took:.1} s");
    assert_same_pids(before, &pids(vm), same);
}

/// A FIFO (no writer: opening it blocking would wait for ever), a link to
/// a device and a directory, each named like a unit, in the unit
/// directory at boot and added before a reload: refused with a reason,
/// without blocking; the other units run.
#[test]
fn fault_unit_files_that_are_not_regular_are_refused_without_blocking() {
    let mut vm = Vm::boot_with_files(
        "faults",
        "",
        &[
            ("/test/faults/fifo.unit", b"", S_IFIFO | 0o644),
            ("/test/faults/dev.unit", b"/dev/null", S_IFLNK | 0o777),
            ("/test/faults/dir.unit", b"", S_IFDIR | 0o755),
        ],
    );
    vm.wait_shell(BOOT);
    let p0 = settle(&mut vm);
    let (ls, _) = vm.sh_rc(&format!("ls -l {DIR}/"), CMD);
    assert!(
        ls.contains("fifo.unit") && ls.lines().any(|l| l.starts_with('p')),
        "{ls}"
    );
    let log = vm.sh(
        "dmesg | grep 'not a regular file' | sed 's/^\\[[^]]*\\] //'",
        CMD,
    );
    for f in ["fifo", "dev", "dir"] {
        assert!(
            log.contains(&format!("{DIR}/{f}.unit: not a regular file")),
            "{f}.unit not refused at boot:\n{log}"
        );
    }
    let names: Vec<String> = vm.status().into_iter().map(|u| u.name).collect();
    assert!(
        !names
            .iter()
            .any(|n| ["fifo", "dev", "dir"].contains(&n.as_str())),
        "{names:?}"
    );
    // Added later, then a reload: refused the same way, at once.
    vm.sh(
        &format!("mkfifo {DIR}/late.unit && ln -s /dev/zero {DIR}/zero.unit"),
        CMD,
    );
    let (out, rc, took) = timed(&mut vm, "initctl reload", CMD);
    assert!(took < 5.0, "reload took {took:.1} s:\n{out}");
    assert!(
        out.contains("late.unit: not a regular file"),
        "exit {rc}:\n{out}"
    );
    assert!(
        out.contains("zero.unit: not a regular file"),
        "exit {rc}:\n{out}"
    );
    survived(&mut vm, &p0, &["sh", "a", "b", "esc"]);
}

/// `initctl edit` of a 0600 unit owned by someone else: the installed file
/// is 0600 with the same owner; two edits of one unit at once both
/// succeed, each with its own staging file, and none is left.
#[test]
fn fault_initctl_edit_keeps_mode_and_owner() {
    let mut vm = boot("faults");
    let p0 = settle(&mut vm);
    vm.sh(
        &format!("chown 1234:1234 {DIR}/a.unit && chmod 600 {DIR}/a.unit"),
        CMD,
    );
    let (out, rc, _) = timed(
        &mut vm,
        "EDITOR='sed -i s/v1/v2/' initctl edit a </dev/null",
        CMD,
    );
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("a.unit installed"), "{out}");
    assert_eq!(
        vm.sh(&format!("stat -c '%a %u %g' {DIR}/a.unit"), CMD)
            .trim(),
        "600 1234 1234"
    );
    assert!(vm.sh(&format!("cat {DIR}/a.unit"), CMD).contains(" v2 "));
    // Two at once: the editors overlap for a second.
    let (out, rc, _) = timed(
        &mut vm,
        "(EDITOR='sleep 1; sed -i s/v2/v3/' initctl edit a </dev/null >/tmp/e1 2>&1; echo $? >>/tmp/e1) & \
         (EDITOR='sleep 1; sed -i s/v2/v4/' initctl edit a </dev/null >/tmp/e2 2>&1; echo $? >>/tmp/e2) & wait",
        secs(40),
    );
    assert_eq!(rc, 0, "{out}");
    let e1 = vm.sh("cat /tmp/e1", CMD);
    let e2 = vm.sh("cat /tmp/e2", CMD);
    for e in [&e1, &e2] {
        assert!(
            e.contains("a.unit installed") && e.trim_end().ends_with('0'),
            "{e1}\n--\n{e2}"
        );
    }
    let text = vm.sh(&format!("cat {DIR}/a.unit"), CMD);
    assert!(text.contains(" v3 ") || text.contains(" v4 "), "{text}");
    assert_eq!(
        vm.sh(&format!("stat -c '%a %u %g' {DIR}/a.unit"), CMD)
            .trim(),
        "600 1234 1234"
    );
    let left = vm.sh(&format!("ls -a {DIR}/ /tmp/"), CMD);
    assert!(
        !left.contains(".new") && !left.contains("wren-edit-"),
        "{left}"
    );
    vm.wait_states(&[("a", &["running"])], secs(10));
    survived(&mut vm, &p0, &["sh", "b", "esc"]);
}

/// What `esc` prints, control sequences shown in caret form.
const SHOWN: &str = "before^[[2J^[[Hafter^[]0;pwned^G\\x9b2Jcr^Mend";

/// The control sequences a unit prints never reach the terminal through
/// `initctl log`, `log -f` or `status NAME`; they are shown visibly, and
/// `--json` escapes them as before.
#[test]
fn fault_unit_escape_sequences_do_not_reach_the_terminal() {
    let mut vm = boot("faults");
    let p0 = settle(&mut vm);
    let start = vm.output().len();
    let (out, rc) = vm.sh_raw_rc("initctl log esc", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains(SHOWN), "log:\n{out:?}");
    let (out, _) = vm.sh_raw_rc("timeout 2 initctl log -f esc", CMD);
    assert!(out.contains(SHOWN), "log -f:\n{out:?}");
    let (out, rc) = vm.sh_raw_rc("initctl status esc", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains(SHOWN), "status:\n{out:?}");
    let (out, rc) = vm.sh_raw_rc("initctl status esc --json", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(out.contains("\\u001b[2J"), "json:\n{out:?}");
    assert!(out.contains("\\u009b2J"), "json:\n{out:?}");
    // Nothing of it on the console, raw.
    let console = vm.output();
    let console = &console[start..];
    for raw in ["\x1b[2J", "\x1b]0;pwned", "\u{9b}2J", "\x07"] {
        assert!(!console.contains(raw), "{raw:?} reached the console");
    }
    survived(&mut vm, &p0, &["sh", "a", "b", "esc"]);
}

/// Ten `log -f` followers (the table has 8 slots): the oldest are let go
/// with a reason, `initctl status` answers at once, and so do `start`
/// and `stop` waiters.
#[test]
fn fault_waiting_clients_do_not_lock_the_operator_out() {
    let mut vm = boot("faults");
    let p0 = settle(&mut vm);
    vm.sh(
        "for i in 0 1 2 3 4 5 6 7 8 9; do initctl log -f b >/tmp/f$i 2>&1 & sleep 0.2; done",
        secs(30),
    );
    std::thread::sleep(Duration::from_secs(1));
    let (out, rc, took) = timed(&mut vm, "initctl status", CMD);
    assert_eq!(rc, 0, "{out}");
    assert!(took < 2.0, "initctl status took {took:.1} s");
    let following = vm.sh("ps | grep -c '[i]nitctl log -f b'", CMD);
    assert_eq!(following.trim(), "6", "followers left: {following}");
    let gone = vm.sh("cat /tmp/f0 /tmp/f1 /tmp/f2 /tmp/f3", CMD);
    assert_eq!(gone.matches("let go").count(), 4, "{gone}");
    // A start waiter gets in too (and lets the oldest follower go).
    let (out, rc, _) = timed(&mut vm, "initctl restart a", CMD);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(vm.sh("ps | grep -c '[i]nitctl log -f b'", CMD).trim(), "5");
    vm.sh("kill $(jobs -p) 2>/dev/null; wait", CMD);
    survived(&mut vm, &p0, &["sh", "b", "esc"]);
}

/// PID 1 of `a`'s PID namespace (its reaper, forked from PID 1, then
/// exec'd as `wren-reaper`) holds stdio and its report pipe only, none of
/// PID 1's sockets, epoll, signalfd or executable; its report still works
/// (a stop is seen as such).
#[test]
fn fault_namespace_reaper_holds_only_its_report_pipe() {
    let mut vm = boot("faults");
    let p0 = settle(&mut vm);
    let reaper = p0["a"];
    let fds = vm.sh(
        &format!("ls /proc/{reaper}/fd | sort -n | tr '\\n' ' '"),
        CMD,
    );
    let fds: Vec<u32> = fds.split_whitespace().map(|f| f.parse().unwrap()).collect();
    assert_eq!(fds.len(), 4, "reaper fds: {fds:?}");
    assert_eq!(&fds[..3], &[0, 1, 2]);
    let what = vm.sh(&format!("readlink /proc/{reaper}/fd/{}", fds[3]), CMD);
    assert!(what.trim().starts_with("pipe:"), "{what}");
    // Exec'd, not a fork still holding PID 1's pages: it runs as the
    // reaper entry, its state (service, report fd, PID 1's nice value +
    // 20) in its environment.
    let cmd = vm.sh(&format!("tr '\\0' ' ' < /proc/{reaper}/cmdline"), CMD);
    assert_eq!(cmd.trim(), "wren-reaper", "reaper cmdline");
    let env = vm.sh(&format!("tr '\\0' ' ' < /proc/{reaper}/environ"), CMD);
    assert_eq!(
        env.trim(),
        format!("WREN_REAPER=2,{},20", fds[3]),
        "reaper environment"
    );
    // It exec'd at nice 19 and is back at PID 1's 0 (field 19 of stat;
    // its comm, field 2, has no space).
    let nice = vm.sh(&format!("cut -d' ' -f19 /proc/{reaper}/stat"), CMD);
    assert_eq!(nice.trim(), "0", "reaper nice");
    // PID 1 itself has many more (the control socket among them).
    let pid1 = vm.sh("ls -l /proc/1/fd | grep -c socket", CMD);
    assert!(pid1.trim().parse::<u32>().unwrap() >= 1, "{pid1}");
    // The report pipe still carries the service's end.
    let (out, rc, _) = timed(&mut vm, "initctl stop a", CMD);
    assert_eq!(rc, 0, "{out}");
    let st = vm.wait_states(&[("a", &["stopped"])], secs(10));
    assert!(st["a"].pid.is_none());
    let (out, rc, _) = timed(&mut vm, "initctl start a", CMD);
    assert_eq!(rc, 0, "{out}");
    survived(&mut vm, &p0, &["sh", "b", "esc"]);
}

/// Ctrl-Alt-Del pressed on a (virtio) keyboard: the kernel gives it to
/// PID 1 as SIGINT instead of restarting at once, so units are stopped and
/// the disk synced and remounted read-only; what was written without
/// fsync is there at the next boot and the file system is clean.
#[test]
fn fault_ctrl_alt_del_reboots_cleanly() {
    let disk = disk_copy("ctrl_alt_del");
    let (mon, mut args) = monitor_socket("ctrl_alt_del");
    args.extend(["-device".to_string(), "virtio-keyboard-pci".to_string()]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cmdline = "console=ttyAMA0 root=/dev/vda rootfstype=ext4 rootwait rw init=/sbin/init";
    let mut vm = Vm::boot_disk_with(&disk, cmdline, &args);
    vm.wait_shell(BOOT);
    vm.wait_states(&[("web", &["running"])], secs(60));
    assert_eq!(vm.sh("cat /proc/sys/kernel/ctrl-alt-del", CMD).trim(), "0");
    assert!(vm
        .sh("cat /proc/bus/input/devices", CMD)
        .contains("Virtio Keyboard"));
    vm.sh("echo unsynced > /root/cad", CMD);
    let before = vm.output().len();
    let said = hmp(&mon, "sendkey ctrl-alt-delete");
    assert!(
        !said.contains("Error") && !said.contains("unknown"),
        "{said}"
    );
    vm.expect("[ STOP ] web: stopped", secs(30));
    vm.expect("all units stopped; Reboot", secs(30));
    vm.expect("remounted / read-only", secs(30));
    assert_shut_down(&mut vm, before, "reboot: Restarting system", secs(60));
    let (clean, report) = fsck(&disk);
    assert!(clean, "e2fsck after Ctrl-Alt-Del:\n{report}");
    let mut vm = Vm::boot_disk(&disk, cmdline);
    vm.wait_shell(BOOT);
    assert_eq!(vm.sh("cat /root/cad", CMD).trim(), "unsynced");
}

/// An initramfs with neither /dev/console nor /dev/null (each a
/// directory here): the kernel starts PID 1 with no fd 0, 1 or 2, and
/// nothing to open in their place until PID 1 has mounted devtmpfs. PID 1
/// comes up, gives itself the console and runs its units (Rust's runtime
/// start-up would abort on this, before any of wren's code ran).
#[test]
fn fault_no_console_and_no_dev_null_in_the_initramfs() {
    let mut vm = Vm::boot_with_files(
        "faults",
        "",
        &[
            ("/dev/console", b"", S_IFDIR | 0o755),
            ("/dev/null", b"", S_IFDIR | 0o755),
        ],
    );
    vm.wait_shell(BOOT);
    assert!(
        vm.output()
            .contains("Warning: unable to open an initial console"),
        "the kernel found a console: the fault was not set up"
    );
    settle(&mut vm);
    assert_eq!(vm.sh("cat /proc/1/comm", CMD).trim(), "init");
    // devtmpfs over the image's /dev, and PID 1's stdio on the console.
    assert!(vm.sh("ls -l /dev/null", CMD).starts_with('c'));
    let fd0 = vm.sh("readlink /proc/1/fd/0", CMD);
    assert_eq!(fd0.trim(), "/dev/console", "{fd0}");
}

/// An early mount that fails (here /run, a plain file in the image) is
/// said in the kernel log and on the console, though it happens before
/// the logger knows its level from the command line; PID 1 goes on.
#[test]
fn fault_an_early_mount_failure_is_logged() {
    let mut vm = Vm::boot_with_files("faults", "", &[("/run", b"not a dir", 0o644)]);
    vm.wait_shell(BOOT);
    // Taken before any command: the `dmesg` below echoes the line too.
    let console = vm.output();
    assert_eq!(vm.sh("cat /proc/1/comm", CMD).trim(), "init");
    let dmesg = vm.sh_raw_rc("dmesg | grep 'wren: mount:'", CMD).0;
    assert!(
        dmesg.lines().any(|l| l.contains("/run")),
        "the failed mount of /run is not in the kernel log:\n{dmesg}"
    );
    assert!(
        console
            .lines()
            .any(|l| l.contains("wren: mount:") && l.contains("/run")),
        "the failed mount of /run is not on the console"
    );
}
