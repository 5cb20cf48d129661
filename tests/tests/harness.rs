//! Self-test of the boot harness, independent of PID 1: boots the image
//! with BusyBox's shell as init (`rdinit=/bin/sh`, the later rdinit wins).

use std::time::Duration;
use wren_boot_tests::Vm;

const T: Duration = Duration::from_secs(20);

#[test]
fn harness_runs_commands_and_sees_the_console() {
    let mut vm = Vm::boot("demo", "rdinit=/bin/sh");
    vm.expect("Run /bin/sh as init process", Duration::from_secs(60));
    vm.wait_shell(Duration::from_secs(60));
    assert_eq!(vm.sh("echo hello; echo world", T), "hello\nworld\n");
    let (out, rc) = vm.sh_rc("echo no-newline | tr -d '\\n'; false", T);
    assert_eq!((out.as_str(), rc), ("no-newline", 1));
    // A long command line is not wrapped and comes back exactly.
    let long = "x".repeat(300);
    assert_eq!(vm.sh(&format!("echo {long}"), T), format!("{long}\n"));
    // Kernel messages interleaved with the output are filtered out.
    vm.sh("mount -t proc proc /proc; mount -t devtmpfs dev /dev", T);
    let out = vm.sh("echo kmsg-test > /dev/kmsg; sleep 0.2; echo after", T);
    assert_eq!(out, "after\n");
    assert!(vm.saw("kmsg-test", T));
    // The image is what rootfs/build promises.
    assert_eq!(
        vm.sh("readlink /sbin/initctl; cat /etc/hostname", T),
        "init\nwren\n"
    );
    assert_eq!(
        vm.sh("ls /test/empty; ls /etc/units | grep -c unit", T)
            .trim_end()
            .lines()
            .last(),
        // shell, lo, web, and the skeleton's mounts (as Buildroot images).
        Some("4")
    );
    let out = vm.sh(
        "echo hi > /run/m; wren-testkit mark /run/m one; cat /run/m",
        T,
    );
    let marks = wren_boot_tests::parse_marks(&out);
    assert_eq!(marks.len(), 1, "{out}");
    assert_eq!(marks[0].0, "one");
    // expect times out instead of hanging.
    assert!(vm
        .try_expect("never-printed", Duration::from_millis(300))
        .is_none());
    vm.send("poweroff -f\n");
    let st = vm.wait_exit(T).expect("qemu ends after poweroff -f");
    assert!(st.success(), "{st:?}");
    assert!(vm.output().contains("reboot: Power down"));
}

#[test]
fn testkit_steps_work_in_the_image() {
    let mut vm = Vm::boot("demo", "rdinit=/bin/sh");
    vm.wait_shell(Duration::from_secs(60));
    vm.sh("mount -t proc proc /proc", T);
    // notifyfd writes to the inherited fd.
    assert_eq!(
        vm.sh("NOTIFY_FD=3 wren-testkit notifyfd hi 3>&1", T),
        "hi\n"
    );
    // sdnotify sends one datagram, to a path or an abstract address.
    let out = vm.sh(
        "wren-testkit recv /run/n.sock > /run/got & sleep 0.5; NOTIFY_SOCKET=/run/n.sock wren-testkit sdnotify READY=1; wait; cat /run/got",
        T,
    );
    assert_eq!(out, "READY=1\n");
    let out = vm.sh(
        "wren-testkit recv @wren-t > /run/got2 & sleep 0.5; NOTIFY_SOCKET=@wren-t wren-testkit sdnotify READY=1; wait; cat /run/got2",
        T,
    );
    assert_eq!(out, "READY=1\n");
    let (out, rc) = vm.sh_rc(
        "NOTIFY_SOCKET=/run/nosuch wren-testkit sdnotify READY=1 2>&1",
        T,
    );
    assert_ne!(rc, 0);
    assert!(out.contains("/run/nosuch"), "{out}");
    // doublefork leaves an orphan whose parent is PID 1 (here: sh).
    vm.sh("wren-testkit doublefork 30 /run/orphan", T);
    let pid = vm.sh("cat /run/orphan", T).trim().to_string();
    let ppid = vm.sh(&format!("awk '{{print $4}}' /proc/{pid}/stat"), T);
    assert_eq!(ppid.trim(), "1");
    let (_, rc) = vm.sh_rc("wren-testkit exit 7", T);
    assert_eq!(rc, 7);
}
