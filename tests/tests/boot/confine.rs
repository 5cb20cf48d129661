//! Least privilege per unit (docs/units.md, "Confinement"), read from the
//! kernel rather than from wren: /proc/PID/status (CapEff, CapPrm, CapBnd,
//! CapAmb, NoNewPrivs, Seccomp, Uid), /proc/PID/uid_map and file owners,
//! and behaviour: binding port 80, a setuid-root program, a refused system
//! call, writes to a read-only root and to an overlay root.
use crate::*;
use wren_boot_tests::Vm;

fn wait_file(vm: &mut Vm, f: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let out = vm.sh(&format!("cat {f} 2>/dev/null"), CMD);
        if !out.trim().is_empty() {
            return out.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{f} never written ({})",
            vm.log_path.display()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The pid of a unit's program: `initctl status` shows the reaper of a
/// unit with a PID namespace, whose one child is the program.
fn pid(vm: &mut Vm, unit: &str) -> u32 {
    let p = vm
        .unit(unit)
        .and_then(|u| u.pid)
        .unwrap_or_else(|| panic!("{unit} has no pid"));
    let kids = vm.sh(&format!("cat /proc/{p}/task/{p}/children"), CMD);
    match kids.split_whitespace().next() {
        Some(k) => k
            .parse()
            .unwrap_or_else(|_| panic!("children of {p}: {kids}")),
        None => p,
    }
}

/// The value of `key:` in a /proc/PID/status text.
fn field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {key} in {status}"))
}

/// /proc/PID/status of a unit's main process, as the host sees it.
fn proc_status(vm: &mut Vm, unit: &str) -> String {
    let p = pid(vm, unit);
    vm.sh(&format!("cat /proc/{p}/status"), CMD)
}

fn caps(status: &str, key: &str) -> u64 {
    u64::from_str_radix(field(status, key), 16).unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// What `initctl status NAME` says on its confinement line.
fn confinement(vm: &mut Vm, unit: &str) -> String {
    let out = vm.sh(&format!("initctl status {unit}"), CMD);
    detail_field(&out, "confinement: ")
}

/// The value of `initctl status NAME`'s line that starts with `prefix`,
/// its continuation lines (two blanks in: the line is wrapped to fit 80
/// columns) joined back with a blank.
pub fn detail_field(out: &str, prefix: &str) -> String {
    let mut lines = out.lines().skip_while(|l| !l.starts_with(prefix));
    let first = lines
        .next()
        .and_then(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line:\n{out}"));
    let rest = lines.map_while(|l| l.strip_prefix("  "));
    std::iter::once(first)
        .chain(rest)
        .collect::<Vec<_>>()
        .join(" ")
}

const NET_BIND_SERVICE: u64 = 1 << 10;
const NET_RAW: u64 = 1 << 13;

#[test]
fn confine_capabilities_no_new_privs_and_seccomp() {
    let mut vm = boot("confine");
    vm.wait_states(
        &[
            ("prep", &["exited"]),
            ("bindcap", &["running"]),
            ("bindnone", &["running"]),
            ("suidnnp", &["running"]),
            ("suid", &["running"]),
            ("filtered", &["running"]),
            ("denied", &["running"]),
            ("open", &["running"]),
            ("rootcaps", &["running"]),
            ("userns", &["running"]),
        ],
        Duration::from_secs(40),
    );

    // capabilities = net_bind_service for nobody: port 80 binds, and the
    // kernel shows exactly that one capability, ambient too.
    assert_eq!(wait_file(&mut vm, "/run/out/bindcap"), "ok");
    let st = proc_status(&mut vm, "bindcap");
    assert_eq!(field(&st, "Uid"), "65534\t65534\t65534\t65534", "{st}");
    for key in ["CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"] {
        assert_eq!(caps(&st, key), NET_BIND_SERVICE, "{key}:\n{st}");
    }
    assert_eq!(
        confinement(&mut vm, "bindcap"),
        "namespaces pid mount uts ipc, user nobody, capabilities net_bind_service, seccomp none, / read-write"
    );
    // Without it, nobody cannot bind below 1024, and has no capability
    // left to gain, not even in the bounding set.
    let none = wait_file(&mut vm, "/run/out/bindnone");
    assert!(
        none.contains("(errno 13)"),
        "port 81 without the capability: {none}"
    );
    let st = proc_status(&mut vm, "bindnone");
    for key in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(caps(&st, key), 0, "{key}:\n{st}");
    }

    // Root with two capabilities: the bounding set has only those.
    let st = proc_status(&mut vm, "rootcaps");
    for key in ["CapEff", "CapPrm", "CapBnd"] {
        assert_eq!(caps(&st, key), NET_BIND_SERVICE | NET_RAW, "{key}:\n{st}");
    }
    assert_eq!(caps(&st, "CapAmb"), 0, "{st}");
    assert_eq!(field(&st, "NoNewPrivs"), "0");

    // Root without CAP_SYS_ADMIN, in a user namespace of its own (full
    // capabilities there): its `initctl stop` is denied, the unit runs on.
    let said = wait_file(&mut vm, "/run/out/userns.initctl");
    let eff: Vec<&str> = said.lines().filter(|l| l.starts_with("CapEff:")).collect();
    assert_eq!(eff.len(), 2, "{said}");
    assert_ne!(eff[0], eff[1], "no fuller set in its own namespace: {said}");
    assert!(said.contains("lacks CAP_SYS_ADMIN"), "{said}");
    assert!(said.contains("rc=1"), "{said}");
    assert_eq!(vm.unit("bindnone").unwrap().state, "running");

    // A setuid-root program: euid 0 without no_new_privs, nothing with it.
    let suid = wait_file(&mut vm, "/run/out/suid.status");
    assert_eq!(field(&suid, "Uid"), "65534\t0\t0\t0", "{suid}");
    let nnp = wait_file(&mut vm, "/run/out/suidnnp.status");
    assert_eq!(field(&nnp, "Uid"), "65534\t65534\t65534\t65534", "{nnp}");
    assert_eq!(field(&nnp, "NoNewPrivs"), "1");
    assert_eq!(caps(&nnp, "CapEff"), 0);
    let st = proc_status(&mut vm, "suidnnp");
    assert_eq!(field(&st, "NoNewPrivs"), "1", "{st}");
    assert_eq!(field(&st, "Seccomp"), "0", "{st}");

    // seccomp: a call outside the allow list fails with EPERM, the unit
    // goes on; an allowed call works; the kernel has the filter, and
    // no_new_privs with it.
    let pid_before = pid(&mut vm, "filtered");
    let refused = wait_file(&mut vm, "/run/out/filtered.umount2");
    assert!(
        refused.contains("(errno 1)"),
        "umount2 under @system-service: {refused}"
    );
    assert_eq!(wait_file(&mut vm, "/run/out/filtered.getpid"), "ok");
    let st = proc_status(&mut vm, "filtered");
    assert_eq!(field(&st, "Seccomp"), "2", "{st}");
    assert_eq!(field(&st, "NoNewPrivs"), "1", "{st}");
    std::thread::sleep(Duration::from_secs(1));
    let u = vm.unit("filtered").unwrap();
    assert_eq!((u.state.as_str(), u.restarts), ("running", 0));
    assert_eq!(
        pid(&mut vm, "filtered"),
        pid_before,
        "the filtered program died"
    );
    let line = confinement(&mut vm, "filtered");
    assert!(
        line.contains("capabilities all, no_new_privs, seccomp allow "),
        "{line}"
    );
    // A deny list refuses its calls only; the control unit shows what
    // umount2 says when nothing filters it.
    let denied = wait_file(&mut vm, "/run/out/denied.umount2");
    assert!(
        denied.contains("(errno 1)"),
        "umount2 under ~@mount: {denied}"
    );
    assert_eq!(wait_file(&mut vm, "/run/out/denied.getpid"), "ok");
    let st = proc_status(&mut vm, "denied");
    assert_eq!(field(&st, "Seccomp"), "2", "{st}");
    let open = wait_file(&mut vm, "/run/out/open.umount2");
    assert!(open.contains("(errno 2)"), "umount2 unfiltered: {open}");
    let st = proc_status(&mut vm, "open");
    assert_eq!(field(&st, "Seccomp"), "0", "{st}");
    assert_eq!(caps(&st, "CapBnd"), caps(&st, "CapEff"), "{st}");

    // What only the kernel can tell is a clear start failure: no overlay
    // module loaded here.
    vm.wait_states(&[("ovl", &["failed"])], Duration::from_secs(30));
    let out = vm.sh("initctl status ovl", CMD);
    let reason = detail_field(&out, "reason: ");
    assert!(
        reason.contains("mount overlay root") && reason.contains("No such device"),
        "{reason}"
    );
    // A bad value is a FILE:LINE error, and the unit is left out.
    let (out, rc) = vm.sh_rc("initctl check /test/confine/bad.unit", CMD);
    assert_eq!(rc, 1, "{out}");
    assert!(
        out.contains("/test/confine/bad.unit:3: seccomp: unknown system call `frobnicate`"),
        "{out}"
    );
    assert!(vm.unit("bad").is_none());
    // The root shell next to confined units is worth a warning, not an
    // error.
    let (out, _) = vm.sh_rc("initctl check /test/confine", CMD);
    assert!(
        out.contains("/test/confine/sh.unit: warning: runs as root with every capability and no namespaces while other units are confined"),
        "{out}"
    );
}

#[test]
fn confine_user_namespace() {
    let mut vm = boot("confineuser");
    vm.wait_states(
        &[("inns", &["running"]), ("rootless", &["running"])],
        Duration::from_secs(40),
    );
    // Root inside...
    let inside = wait_file(&mut vm, "/run/out/inns.status");
    assert_eq!(field(&inside, "Uid"), "0\t0\t0\t0", "{inside}");
    assert_eq!(field(&inside, "Gid"), "0\t0\t0\t0", "{inside}");
    let map = wait_file(&mut vm, "/run/out/inns.uidmap");
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    // ...uid 100000 outside: the kernel's view from the host, and the
    // owner of what it wrote to a shared directory.
    assert_eq!(wait_file(&mut vm, "/run/out/inns.write"), "ok");
    let p = pid(&mut vm, "inns");
    let st = vm.sh(&format!("cat /proc/{p}/status"), CMD);
    assert_eq!(field(&st, "Uid"), "100000\t100000\t100000\t100000", "{st}");
    let host_map = vm.sh(&format!("cat /proc/{p}/uid_map"), CMD);
    assert_eq!(
        host_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    let gid_map = vm.sh(&format!("cat /proc/{p}/gid_map"), CMD);
    assert_eq!(
        gid_map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    assert_eq!(
        vm.sh(&format!("cat /proc/{p}/setgroups"), CMD).trim(),
        "deny"
    );
    for f in ["inns.file", "inns.status"] {
        let owner = vm.sh(&format!("stat -c '%u %g' /run/out/{f}"), CMD);
        assert_eq!(owner.trim(), "100000 100000", "{f}");
    }
    let line = confinement(&mut vm, "inns");
    assert!(
        line.starts_with("namespaces pid mount user (root = uid 100000 outside), user root"),
        "{line}"
    );

    // Combined with `root`: a rootless container with its own map.
    assert_eq!(wait_file(&mut vm, "/srv/box/out/rootless.write"), "ok");
    let map = wait_file(&mut vm, "/srv/box/out/rootless.uidmap");
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "200000", "1000"]
    );
    let owner = vm.sh("stat -c '%u %g' /srv/box/out/rootless.file", CMD);
    assert_eq!(owner.trim(), "200000 200000");
    let p = pid(&mut vm, "rootless");
    let st = vm.sh(&format!("cat /proc/{p}/status"), CMD);
    assert_eq!(field(&st, "Uid"), "200000\t200000\t200000\t200000", "{st}");
}

#[test]
fn confine_read_only_and_overlay_roots() {
    let mut vm = boot("confinefs");
    vm.wait_states(
        &[
            ("prep", &["exited"]),
            ("ro", &["running"]),
            ("ovl", &["running"]),
        ],
        Duration::from_secs(40),
    );
    let lower_before = vm.sh(
        "find /srv/lower | sort; md5sum /srv/lower/lower-release",
        CMD,
    );

    // read_only: / refuses writes with EROFS, its own /tmp and /run take
    // them, and nothing reaches the host's.
    let p = pid(&mut vm, "ro");
    let etc = wait_file(&mut vm, &format!("/proc/{p}/root/tmp/etc.write"));
    assert!(
        etc.contains("(errno 30)"),
        "write to / under read_only: {etc}"
    );
    assert_eq!(
        wait_file(&mut vm, &format!("/proc/{p}/root/tmp/tmp.write")),
        "ok"
    );
    assert_eq!(
        wait_file(&mut vm, &format!("/proc/{p}/root/tmp/run.write")),
        "ok"
    );
    let (_, rc) = vm.sh_rc(
        "test -e /etc/rotest || test -e /tmp/x || test -e /run/x",
        CMD,
    );
    assert_ne!(rc, 0, "a write of the read-only unit reached the host");
    assert!(confinement(&mut vm, "ro").ends_with(", / read-only"));

    // root_overlay: the unit writes into its root; a restart starts from
    // a clean copy; the lower directory never changes.
    let p = pid(&mut vm, "ovl");
    assert_eq!(wait_file(&mut vm, &format!("/proc/{p}/root/write")), "ok");
    let first = wait_file(&mut vm, &format!("/proc/{p}/root/report"));
    assert!(
        first.contains("(errno 2)"),
        "/written before the first write: {first}"
    );
    vm.sh(&format!("echo extra > /proc/{p}/root/extra"), CMD);
    assert_eq!(
        vm.sh(&format!("cat /proc/{p}/root/extra"), CMD).trim(),
        "extra"
    );
    let (out, rc) = vm.sh_rc("initctl restart ovl", CMD);
    assert_eq!(rc, 0, "{out}");
    let q = pid(&mut vm, "ovl");
    assert_ne!(p, q);
    assert_eq!(wait_file(&mut vm, &format!("/proc/{q}/root/write")), "ok");
    let second = wait_file(&mut vm, &format!("/proc/{q}/root/report"));
    assert!(
        second.contains("(errno 2)"),
        "the previous start's /written survived the restart: {second}"
    );
    let (_, rc) = vm.sh_rc(&format!("test -e /proc/{q}/root/extra"), CMD);
    assert_ne!(rc, 0, "a write from outside survived the restart");
    let lower_after = vm.sh(
        "find /srv/lower | sort; md5sum /srv/lower/lower-release",
        CMD,
    );
    assert_eq!(lower_before, lower_after, "the lower directory changed");
    assert_eq!(
        lower_after.lines().take(4).collect::<Vec<_>>(),
        [
            "/srv/lower",
            "/srv/lower/bin",
            "/srv/lower/bin/wren-testkit",
            "/srv/lower/lower-release"
        ],
    );
    assert!(confinement(&mut vm, "ovl").ends_with(", /srv/lower overlay"));
}
