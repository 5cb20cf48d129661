//! Default namespaces (`pid mount uts ipc`): the service is the child of
//! its namespace's PID 1 (wren's reaper), sees only its own processes,
//! has its own hostname, and its orphans are reaped inside the namespace.
use crate::*;
use std::collections::BTreeSet;

fn field<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in {text:?}"))
        .split_whitespace()
        .collect()
}

/// `ps -o pid,ppid,stat,comm` output: (pid, ppid, stat, comm).
fn ps_rows(ps: &str) -> Vec<(u32, u32, String, String)> {
    ps.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some((
                w.first()?.parse().ok()?,
                w.get(1)?.parse().ok()?,
                w.get(2)?.to_string(),
                w.get(3..)?.join(" "),
            ))
        })
        .collect()
}

#[test]
fn ns_default_pid_uts_and_reaping() {
    let mut vm = boot("ns");
    vm.wait_states(
        &[("probe", &["running"]), ("named", &["running"])],
        Duration::from_secs(30),
    );
    // The probe script takes ~6 s (its orphans live 2 s, then it waits).
    let deadline = Instant::now() + Duration::from_secs(60);
    while vm
        .sh("cat /run/probe/done 2>/dev/null", CMD)
        .trim()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "probe did not finish");
        std::thread::sleep(Duration::from_millis(500));
    }
    let cat = |vm: &mut wren_boot_tests::Vm, f: &str| vm.sh(&format!("cat /run/probe/{f}"), CMD);

    // Inside: the service is pid 2, child of the namespace's PID 1, and its
    // /proc knows no other pid namespace level.
    let me = cat(&mut vm, "self");
    assert_eq!(field(&me, "PPid:"), ["1"], "service's parent inside: {me}");
    let my_pid = field(&me, "Pid:")[0].to_string();
    assert_eq!(field(&me, "NSpid:"), [my_pid.as_str()], "{me}");
    let pid1comm = cat(&mut vm, "pid1comm");
    assert_ne!(
        pid1comm.trim(),
        "sh",
        "PID 1 of the namespace is the service itself"
    );

    // Only its own processes: PID 1 (the reaper), the service and the
    // commands of the pipeline that listed them; no kernel thread, no
    // process of the host.
    let inside: Vec<u32> = cat(&mut vm, "procpids")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let host_count = vm
        .sh("ls /proc | grep -cE '^[0-9]+$'", CMD)
        .trim()
        .parse::<usize>()
        .unwrap();
    assert!(inside.contains(&1), "/proc inside: {inside:?}");
    assert!(
        inside.contains(&my_pid.parse().unwrap()),
        "/proc inside lacks the service: {inside:?}"
    );
    assert!(
        inside.len() <= 6 && inside.iter().all(|&p| p < 20),
        "/proc inside lists more than the unit's processes: {inside:?}"
    );
    assert!(host_count >= 20, "host /proc lists only {host_count} pids");
    let ps = cat(&mut vm, "ps");
    let rows = ps_rows(&ps);
    assert!(rows.len() >= 2 && rows.len() <= 4, "ps inside: {ps}");
    assert!(
        rows.iter().any(|r| r.0 == 1),
        "ps inside has no PID 1: {ps}"
    );
    assert!(!ps.contains("kthreadd"), "{ps}");

    // Seen from the host: the unit's cgroup holds the reaper (pid 1 in the
    // namespace, forked by the host's PID 1) and the service (pid 2 in the
    // namespace, the reaper's child).
    let procs = vm.sh("cat /sys/fs/cgroup/units/probe/cgroup.procs", CMD);
    let mut by_ns = std::collections::HashMap::new();
    for p in procs.split_whitespace() {
        let st = vm.sh(&format!("cat /proc/{p}/status"), CMD);
        let nspid = field(&st, "NSpid:");
        assert_eq!(nspid.len(), 2, "pid {p} not in a child pid namespace: {st}");
        assert_eq!(nspid[0], p);
        by_ns.insert(
            nspid[1].to_string(),
            (p.to_string(), field(&st, "PPid:")[0].to_string()),
        );
    }
    let (reaper, reaper_parent) = by_ns
        .get("1")
        .expect("no namespace PID 1 in the cgroup")
        .clone();
    assert_eq!(reaper_parent, "1", "the reaper is not a child of PID 1");
    let (_, svc_parent) = by_ns
        .get(&my_pid)
        .unwrap_or_else(|| panic!("service not in cgroup.procs: {procs} / {by_ns:?}"))
        .clone();
    assert_eq!(
        svc_parent, reaper,
        "service's host parent is not the reaper"
    );

    // Hostnames: the unit's name by default, `hostname =` when given, and
    // the host's own is untouched.
    assert_eq!(cat(&mut vm, "hostname").trim(), "probe");
    assert_eq!(vm.sh("cat /run/named.hostname", CMD).trim(), "boxhost");
    assert_eq!(vm.sh("hostname", CMD).trim(), "wren");

    // Orphans: re-parented to the namespace's PID 1 while alive...
    let ppids = cat(&mut vm, "orphan-ppids");
    assert_eq!(
        ppids.split_whitespace().collect::<Vec<_>>(),
        ["1", "1", "1"],
        "orphans not re-parented to the namespace's PID 1"
    );
    let orphans: BTreeSet<u32> = (1..=3)
        .map(|i| cat(&mut vm, &format!("orphan{i}")).trim().parse().unwrap())
        .collect();
    let during = ps_rows(&cat(&mut vm, "ps-orphans"));
    for o in &orphans {
        assert!(
            during.iter().any(|r| r.0 == *o && r.1 == 1),
            "orphan {o} not a child of PID 1 in ps: {during:?}"
        );
    }
    // ...and reaped by it once they exit: no zombie inside, nor outside.
    let after = cat(&mut vm, "ps-after");
    let rows = ps_rows(&after);
    assert!(!rows.is_empty(), "ps-after empty");
    for r in &rows {
        assert!(
            !r.2.starts_with('Z'),
            "zombie in the unit's namespace: {after}"
        );
        assert!(
            !orphans.contains(&r.0) || r.3 == "ps",
            "orphan still there: {after}"
        );
    }
    let host_ps = vm.sh("ps -o stat,pid,ppid,comm", CMD);
    let zombies: Vec<&str> = host_ps
        .lines()
        .filter(|l| l.trim_start().starts_with('Z'))
        .collect();
    assert!(
        zombies.is_empty(),
        "zombies on the host: {zombies:?}\n{host_ps}"
    );
    // PID 1 and the unit are still fine.
    let st = vm.wait_states(&[("probe", &["running"])], CMD);
    assert_eq!(st["probe"].restarts, 0);

    // A file system mounted on the host after the unit started reaches
    // the unit's mount namespace (PID 1 makes `/` shared at boot, a unit's
    // mounts a one-way copy), and its unmount leaves it: private, the
    // unit kept it mounted, alive and unsynced, after the `umount`.
    let pid = vm.unit("probe").and_then(|u| u.pid).expect("probe's pid");
    let count = format!("grep -c ' /mnt/late ' /proc/{pid}/mountinfo");
    vm.sh("mkdir -p /mnt/late && mount -t tmpfs late /mnt/late", CMD);
    assert_eq!(vm.sh(&count, CMD).trim(), "1", "a later mount not seen");
    vm.sh("umount /mnt/late", CMD);
    assert_eq!(vm.sh(&count, CMD).trim(), "0", "an unmount not seen");
    assert!(!vm.output().contains("make / shared"), "{}", vm.tail());
}
