//! `root = DIR`: the unit sees only the container rootfs (/srv/box in the
//! image), a minimal /dev, its own /proc and a private /tmp; `user` is
//! resolved from the container's /etc/passwd; a missing root or user fails
//! that unit's start with a reason, not PID 1.
use crate::confine::detail_field;
use crate::*;

fn lines(s: &str) -> Vec<&str> {
    s.lines().map(str::trim).filter(|l| !l.is_empty()).collect()
}

fn wait_file(vm: &mut wren_boot_tests::Vm, f: &str) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while vm
        .sh(&format!("cat {f} 2>/dev/null"), CMD)
        .trim()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "{f} never written");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn ns_root_sees_only_its_rootfs() {
    let mut vm = boot("nsroot");
    vm.wait_states(
        &[("box", &["running"]), ("boxuser", &["running"])],
        Duration::from_secs(30),
    );
    // A file in the host's /tmp before the box looks at its own.
    vm.sh("echo host > /tmp/hostmark; touch /srv/box/out/go", CMD);
    wait_file(&mut vm, "/srv/box/out/null.write");
    let out = |vm: &mut wren_boot_tests::Vm, f: &str| vm.sh(&format!("cat /srv/box/out/{f}"), CMD);

    assert_eq!(
        lines(&out(&mut vm, "root.ls")),
        ["bin", "dev", "etc", "out", "proc", "tmp"],
        "/ inside the box"
    );
    assert_eq!(
        lines(&out(&mut vm, "etc.ls")),
        ["box-release", "group", "passwd"]
    );
    let units = out(&mut vm, "units.ls");
    assert!(
        units.starts_with("error:"),
        "/etc/units visible in the box: {units}"
    );
    // Private /tmp: neither the host's /tmp nor what the box directory
    // holds underneath, and what the unit writes there stays inside.
    let tmp = out(&mut vm, "tmp.ls");
    assert!(
        lines(&tmp).is_empty(),
        "/tmp inside the box is not private: {tmp}"
    );
    assert_eq!(out(&mut vm, "tmp.write").trim(), "ok");
    let (_, rc) = vm.sh_rc("test -e /tmp/boxmark || test -e /srv/box/tmp/boxmark", CMD);
    assert_ne!(rc, 0, "the box's /tmp/boxmark leaked out");
    // Minimal /dev: the listed nodes, no host device.
    let dev = lines(&out(&mut vm, "dev.ls"))
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    for want in [
        "null", "zero", "full", "random", "urandom", "tty", "pts", "shm",
    ] {
        assert!(
            dev.iter().any(|d| d == want),
            "/dev/{want} missing in the box: {dev:?}"
        );
    }
    for host_only in ["kmsg", "mem", "ttyAMA0", "console"] {
        assert!(
            !dev.iter().any(|d| d == host_only),
            "host /dev/{host_only} visible in the box: {dev:?}"
        );
    }
    assert!(dev.len() <= 10, "/dev in the box: {dev:?}");
    assert_eq!(out(&mut vm, "null.write").trim(), "ok");
    // Its own /proc: only the box's processes.
    let pids: Vec<u32> = lines(&out(&mut vm, "proc.ls"))
        .into_iter()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(
        !pids.is_empty() && pids.len() <= 3 && pids.contains(&1),
        "/proc in the box: {pids:?}"
    );

    // `user = svc` comes from the box's /etc/passwd (1234), not the host's.
    wait_file(&mut vm, "/srv/box/out/boxuser.done");
    let st = out(&mut vm, "boxuser.status");
    assert!(st.contains("Uid:\t1234\t1234\t1234\t1234"), "{st}");
    assert!(st.contains("Gid:\t1234\t1234\t1234\t1234"), "{st}");
    let etc = out(&mut vm, "boxuser.etc");
    assert!(
        etc.contains("errno 13"),
        "svc could write the box's /etc: {etc}"
    );
    assert_eq!(out(&mut vm, "boxuser.own").trim(), "ok");

    assert_eq!(vm.unit("box").map(|u| u.state), Some("running".to_string()));

    // Root with CAP_MKNOD (Docker's set, no CAP_SYS_ADMIN): the device
    // nodes it makes, in its /dev, its root or a file system mounted
    // below its root (boxsub's tmpfs), open nothing (nodev), and
    // /proc/sys is read-only.
    wait_file(&mut vm, "/srv/box/out/caps.done");
    for node in ["caps.dev", "caps.root", "caps.sub"] {
        let r = out(&mut vm, node);
        assert!(
            r.starts_with("error:") && r.contains("errno 13"),
            "{node}: {r}"
        );
    }
    let sysctl = out(&mut vm, "caps.sysctl");
    assert!(sysctl.contains("errno 30"), "/proc/sys writable: {sysctl}");
}

/// The root directory is gone when the unit starts, the user does not
/// exist: each start fails with its reason in `initctl status NAME` (not
/// only in the kernel log), the other units and PID 1 carry on.
#[test]
fn ns_setup_failure_reason_in_status() {
    let mut vm = boot("nsroot");
    // Setup failures fail the unit with a reason; PID 1 carries on.
    let st = vm.wait_states(
        &[
            ("rmgone", &["exited"]),
            ("nobox", &["failed"]),
            ("nouser", &["failed"]),
        ],
        Duration::from_secs(20),
    );
    assert_eq!(st["box"].state, "running");
    // The reason line itself: the confinement line above it names the
    // root and the user from the unit's file whether or not any start
    // failed.
    let reason = |vm: &mut Vm, unit: &str| {
        let out = vm.sh(&format!("initctl status {unit}"), CMD);
        detail_field(&out, "reason: ")
    };
    let nobox = reason(&mut vm, "nobox");
    assert!(
        nobox.contains("bind-mount root: No such file or directory"),
        "nobox's status does not say why: {nobox}"
    );
    let nouser = reason(&mut vm, "nouser");
    assert!(nouser.contains("user not found in /etc/passwd"), "{nouser}");
    // A root whose /dev links out of it: refused before anything is made
    // there (it would have been PID 1's own /).
    vm.wait_states(&[("symbox", &["failed"])], Duration::from_secs(20));
    let symbox = reason(&mut vm, "symbox");
    assert!(symbox.contains("mount /dev: Not a directory"), "{symbox}");
    let (_, rc) = vm.sh_rc("test -e /null || test -e /pts || test -e /shm", CMD);
    assert_ne!(rc, 0, "nodes made in PID 1's /");
}
