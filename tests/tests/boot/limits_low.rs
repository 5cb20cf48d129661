//! memory.low under pressure: with swap (zram, set up by a oneshot unit;
//! without swap anonymous memory cannot be reclaimed at all), a unit that
//! allocates more than is available forces reclaim; the unit protected by
//! memory.low keeps its resident memory while an unprotected one of the
//! same size is reclaimed.
use crate::*;

fn num(vm: &mut wren_boot_tests::Vm, unit: &str, f: &str) -> u64 {
    let s = vm.sh(&format!("cat /sys/fs/cgroup/units/{unit}/{f}"), CMD);
    s.trim()
        .parse()
        .unwrap_or_else(|_| panic!("{unit}/{f}: {s:?}"))
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

#[test]
fn limits_memory_low_protects_under_pressure() {
    let mut vm = boot("limitslow");
    vm.wait_states(
        &[
            ("zram", &["exited"]),
            ("prot", &["running"]),
            ("unprot", &["running"]),
        ],
        Duration::from_secs(60),
    );
    let swaps = vm.sh("cat /proc/swaps", CMD);
    assert!(swaps.contains("/dev/zram0"), "no zram swap: {swaps}");
    wait_marks(&mut vm, "/run/prot", Duration::from_secs(30), |m| {
        !m.is_empty()
    });
    wait_marks(&mut vm, "/run/unprot", Duration::from_secs(30), |m| {
        !m.is_empty()
    });
    assert_eq!(
        vm.sh("cat /sys/fs/cgroup/units/prot/memory.low", CMD)
            .trim(),
        "67108864"
    );
    let p0 = num(&mut vm, "prot", "memory.current");
    let u0 = num(&mut vm, "unprot", "memory.current");
    assert!(
        p0 >= 48 << 20 && u0 >= 48 << 20,
        "allocations not charged: {p0} {u0}"
    );

    vm.sh("touch /run/press.go", CMD);
    wait_marks(&mut vm, "/run/press", Duration::from_secs(300), |m| {
        !m.is_empty()
    });
    vm.sh("sleep 2", CMD);
    let size = vm.sh("cat /run/press.size", CMD);
    let p1 = num(&mut vm, "prot", "memory.current");
    let u1 = num(&mut vm, "unprot", "memory.current");
    let ps = num(&mut vm, "prot", "memory.swap.current");
    let us = num(&mut vm, "unprot", "memory.swap.current");
    let press = num(&mut vm, "press", "memory.current");
    let press_swap = num(&mut vm, "press", "memory.swap.current");
    let low_events = vm.sh("grep '^low ' /sys/fs/cgroup/units/prot/memory.events", CMD);
    let summary = format!(
        "press (MemAvailable MiB, allocated MiB): {}; \
         prot: {:.1} -> {:.1} MiB resident, {:.1} MiB swapped ({}); \
         unprot: {:.1} -> {:.1} MiB resident, {:.1} MiB swapped; \
         press: {:.1} MiB resident, {:.1} MiB swapped",
        size.trim(),
        mib(p0),
        mib(p1),
        mib(ps),
        low_events.trim(),
        mib(u0),
        mib(u1),
        mib(us),
        mib(press),
        mib(press_swap)
    );
    println!("memory.low: {summary}");
    // The pressure was real: the unprotected unit lost most of its memory.
    assert!(u1 * 2 < u0, "no reclaim of the unprotected unit: {summary}");
    // The protected one kept (nearly) all of it.
    assert!(p1 * 10 >= p0 * 9, "protected unit was reclaimed: {summary}");
    assert!(ps < 4 << 20, "protected unit was swapped out: {summary}");
    // Every unit survived it.
    vm.wait_states(
        &[
            ("prot", &["running"]),
            ("unprot", &["running"]),
            ("press", &["running"]),
        ],
        CMD,
    );
}
