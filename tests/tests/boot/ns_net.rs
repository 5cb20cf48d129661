//! `net` in `namespaces`: the unit sees only `lo`, and it is up; a unit
//! without it sees the host's interfaces (here lo and dummy0).
use crate::*;

/// Interface names of `ip -o link` output ("1: lo: <...> ...").
fn links(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| {
            let name = l.split(':').nth(1)?.trim();
            Some(name.split('@').next()?.to_string())
        })
        .collect()
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
fn ns_net_sees_only_lo_and_it_is_up() {
    let mut vm = boot("nsnet");
    let st = vm.wait_states(
        &[
            ("dummy", &["exited"]),
            ("netns", &["running"]),
            ("hostnet", &["running"]),
            ("usernet", &["running"]),
            ("barenet", &["running"]),
        ],
        Duration::from_secs(40),
    );
    wait_file(&mut vm, "/run/netns.done");
    wait_file(&mut vm, "/run/hostnet.done");
    wait_file(&mut vm, "/run/nsout/usernet.done");
    wait_file(&mut vm, "/run/barenet.done");

    // Without `net`: the host's interfaces, dummy0 among them.
    let host = vm.sh("cat /run/hostnet.link", CMD);
    let host_links = links(&host);
    assert!(
        host_links.contains(&"dummy0".to_string()) && host_links.contains(&"lo".to_string()),
        "host interfaces seen from a unit without net: {host}"
    );
    assert_eq!(links(&vm.sh("ip -o link", CMD)), host_links);

    // With `net`: lo only, up, with its address, and it carries traffic;
    // with a PID namespace (the reaper makes the network namespace), with
    // a user namespace too (which owns it: its root brought lo up), and
    // without either (the unit's own process makes it).
    for at in ["/run/netns", "/run/nsout/usernet", "/run/barenet"] {
        lo_only(&mut vm, at);
    }
    // Each its own: the reaper's and the service's are one; two units'
    // are two.
    let ns = |vm: &mut wren_boot_tests::Vm, unit: &str| {
        let pid = st[unit].pid.unwrap();
        vm.sh(&format!("readlink /proc/{pid}/ns/net"), CMD)
    };
    let host_ns = vm.sh("readlink /proc/1/ns/net", CMD);
    let a = ns(&mut vm, "netns");
    let b = ns(&mut vm, "barenet");
    assert!(a.starts_with("net:[") && b.starts_with("net:["), "{a} {b}");
    assert_ne!(a, host_ns);
    assert_ne!(b, host_ns);
    assert_ne!(a, b);
}

/// `PREFIX.link`, `.addr` and `.ping` (links.sh) of a unit with `net`.
fn lo_only(vm: &mut wren_boot_tests::Vm, at: &str) {
    let inside = vm.sh(&format!("cat {at}.link"), CMD);
    assert_eq!(links(&inside), ["lo"], "{at}: interfaces inside: {inside}");
    let flags = inside
        .split('<')
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap_or("");
    assert!(
        flags.split(',').any(|f| f == "UP"),
        "{at}: lo is not up inside: {inside}"
    );
    let addr = vm.sh(&format!("cat {at}.addr"), CMD);
    assert!(
        addr.contains("inet 127.0.0.1/8"),
        "{at}: lo has no address inside: {addr}"
    );
    let ping = vm.sh(&format!("cat {at}.ping"), CMD);
    assert!(
        ping.contains("rc=0"),
        "{at}: ping 127.0.0.1 inside failed: {ping}"
    );
}
