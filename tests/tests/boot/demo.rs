use crate::*;

#[test]
fn demo_image_units_all_come_up() {
    let mut vm = boot("demo");
    let st = vm.wait_states(
        &[
            ("shell", &["running"]),
            ("lo", &["exited"]),
            ("web", &["running"]),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(st["lo"].pid, None, "an exited oneshot has no pid");
    assert_in_order(
        &vm.output(),
        &["[  OK  ] lo: exited", "[  OK  ] web: running (pid "],
    );
    // lo is up (IFF_UP|IFF_LOOPBACK|IFF_RUNNING) and the web server answers on it.
    assert_eq!(vm.sh("cat /sys/class/net/lo/flags", CMD).trim(), "0x9");
    let page = vm.sh("wget -q -O - http://127.0.0.1:8080/", CMD);
    assert!(page.contains("wren"), "{page:?}");
    assert_eq!(
        vm.sh("cat /sys/fs/cgroup/units/web/memory.max", CMD).trim(),
        "16777216"
    );
    assert_eq!(
        vm.sh("cat /sys/fs/cgroup/units/web/memory.low", CMD).trim(),
        "4194304"
    );
    assert_eq!(vm.sh("hostname", CMD).trim(), "wren");
    // For the closing note: PID 1's memory after boot.
    let rollup = vm.sh("grep -E '^(Rss|Anonymous):' /proc/1/smaps_rollup", CMD);
    eprintln!("PID 1 smaps_rollup after demo boot:\n{rollup}");
}
