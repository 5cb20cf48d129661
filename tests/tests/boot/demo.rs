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
    let rollup = vm.sh(
        "grep -E '^(Rss|Pss|Anonymous|Locked):' /proc/1/smaps_rollup",
        CMD,
    );
    eprintln!("PID 1 smaps_rollup after demo boot:\n{rollup}");
    // Its pages are kept once touched (mlockall with MCL_ONFAULT), those
    // it has at that point of its boot: its text and data, its stack, its
    // first heap (`Locked` counts a page as `Pss` does, shared with the
    // other processes of the binary); not the spawn slots' stacks or the
    // heap's growth, which give their pages back; and nothing was brought
    // in for it (the binary is about 400 KiB of text).
    let kib = |key: &str| -> u64 {
        rollup
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {rollup}"))
    };
    let (rss, pss, anon, locked) = (kib("Rss:"), kib("Pss:"), kib("Anonymous:"), kib("Locked:"));
    assert!(
        locked + anon >= pss && locked < pss,
        "PID 1's executable pages not all locked, or all of its memory: {rollup}"
    );
    assert!(
        rss < 1024,
        "PID 1 resident {rss} KiB: pages brought in for the lock?"
    );
    let status = vm.sh("grep VmLck /proc/1/status", CMD);
    assert!(!status.contains(" 0 kB"), "{status}");
}
