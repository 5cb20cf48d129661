use crate::*;

/// `log_size` sets the unit's output ring in PID 1: a 512-byte ring keeps
/// only the newest 512 bytes, the default 4 KiB one keeps all 1280.
#[test]
fn log_size_bounds_the_units_output_ring() {
    let mut vm = boot("logsize");
    vm.wait_states(
        &[("small", &["running"]), ("big", &["running"])],
        Duration::from_secs(30),
    );
    // Both have written everything once line 140 is in the big log.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !vm.sh("initctl log big", CMD).contains("line 140") {
        assert!(Instant::now() < deadline, "big never wrote line 140");
        std::thread::sleep(Duration::from_millis(300));
    }
    let big = vm.sh("initctl log big | wc -c", CMD);
    assert_eq!(big.trim(), "1280", "40 lines of 32 bytes");
    let small = vm.sh("initctl log small | wc -c", CMD);
    assert_eq!(small.trim(), "512");
    let tail = vm.sh("initctl log small | tail -n 1", CMD);
    assert!(tail.starts_with("line 140"), "{tail:?}");
    let head = vm.sh("initctl log small", CMD);
    assert!(!head.contains("line 101"), "the oldest lines must be gone");
    assert!(vm.sh("initctl cat small", CMD).contains("log_size = 512"));
}
