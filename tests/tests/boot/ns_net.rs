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
    vm.wait_states(
        &[
            ("dummy", &["exited"]),
            ("netns", &["running"]),
            ("hostnet", &["running"]),
        ],
        Duration::from_secs(40),
    );
    wait_file(&mut vm, "/run/netns.done");
    wait_file(&mut vm, "/run/hostnet.done");

    // Without `net`: the host's interfaces, dummy0 among them.
    let host = vm.sh("cat /run/hostnet.link", CMD);
    let host_links = links(&host);
    assert!(
        host_links.contains(&"dummy0".to_string()) && host_links.contains(&"lo".to_string()),
        "host interfaces seen from a unit without net: {host}"
    );
    assert_eq!(links(&vm.sh("ip -o link", CMD)), host_links);

    // With `net`: lo only, up, with its address, and it carries traffic.
    let inside = vm.sh("cat /run/netns.link", CMD);
    assert_eq!(links(&inside), ["lo"], "interfaces inside: {inside}");
    let flags = inside
        .split('<')
        .nth(1)
        .and_then(|s| s.split('>').next())
        .unwrap_or("");
    assert!(
        flags.split(',').any(|f| f == "UP"),
        "lo is not up inside: {inside}"
    );
    let addr = vm.sh("cat /run/netns.addr", CMD);
    assert!(
        addr.contains("inet 127.0.0.1/8"),
        "lo has no address inside: {addr}"
    );
    let ping = vm.sh("cat /run/netns.ping", CMD);
    assert!(
        ping.contains("rc=0"),
        "ping 127.0.0.1 inside failed: {ping}"
    );
}
