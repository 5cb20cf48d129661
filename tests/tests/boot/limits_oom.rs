//! A unit that allocates past its memory.max is OOM-killed alone: the other
//! units keep their processes, the OOM count rises (status and the
//! cgroup's memory.events), and the unit restarts after its delay.
use crate::*;

fn detail_value(detail: &str, key: &str) -> String {
    detail
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key:?} in:\n{detail}"))
        .trim()
        .to_string()
}

fn oom_kill_events(vm: &mut wren_boot_tests::Vm) -> u64 {
    let ev = vm.sh("cat /sys/fs/cgroup/units/oomer/memory.events", CMD);
    ev.lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .unwrap_or_else(|| panic!("no oom_kill in memory.events: {ev}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn limits_oom_kills_only_the_unit_and_it_restarts() {
    let mut vm = boot("limitsoom");
    // oomer: 16M max, allocates 64M 0.5 s after each start, restart_delay
    // 2s doubling: starts at about 0, 2.5, 7, 15.5 s.
    let m = wait_marks(&mut vm, "/run/oomer", Duration::from_secs(60), |m| {
        m.len() >= 2
    });
    let before = vm.wait_states(
        &[
            ("calm", &["running"]),
            ("plain", &["running"]),
            ("sh", &["running"]),
        ],
        CMD,
    );
    let d1 = vm.sh("initctl status oomer", CMD);
    let kills1: u32 = detail_value(&d1, "oom kills:").parse().unwrap();
    assert!(kills1 >= 1, "no OOM kill counted after a restart:\n{d1}");

    let m = wait_marks(&mut vm, "/run/oomer", Duration::from_secs(60), |n| {
        n.len() >= m.len() + 2
    });
    // Let the current start be killed too, then look while it waits.
    let st = vm.wait_states(&[("oomer", &["backoff"])], Duration::from_secs(30));
    let d2 = vm.sh("initctl status oomer", CMD);
    assert_eq!(detail_value(&d2, "last exit:"), "oom-kill", "{d2}");
    let kills2: u32 = detail_value(&d2, "oom kills:").parse().unwrap();
    assert!(
        kills2 >= kills1 + 2,
        "OOM count did not rise: {kills1} then {kills2}\n{d2}"
    );
    let events = oom_kill_events(&mut vm);
    assert_eq!(
        events,
        u64::from(kills2),
        "memory.events oom_kill vs status:\n{d2}"
    );
    assert!(st["oomer"].restarts >= 3, "{:?}", st["oomer"]);

    // Never survived its allocation; each start came after the delay,
    // doubling (2 s, 4 s, ...): start-to-start gaps include the delay.
    assert!(
        crate::mark(&m, "survived").is_none(),
        "alloc past memory.max survived"
    );
    let starts: Vec<u64> = m.iter().filter(|x| x.0 == "start").map(|x| x.2).collect();
    let gaps: Vec<u64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
    println!("oomer start-to-start gaps (ms): {gaps:?}");
    assert!(gaps.len() >= 3);
    assert!(gaps[0] >= 2000, "restarted before its 2s delay: {gaps:?}");
    assert!(gaps[1] >= 4000, "second delay not doubled: {gaps:?}");
    assert!(gaps[2] >= 8000, "third delay not doubled: {gaps:?}");

    // The others: same pids, never restarted, started once.
    let after = vm.wait_states(
        &[
            ("calm", &["running"]),
            ("plain", &["running"]),
            ("sh", &["running"]),
        ],
        CMD,
    );
    for u in ["calm", "plain", "sh"] {
        assert_eq!(after[u].pid, before[u].pid, "{u} was replaced");
        assert_eq!(after[u].restarts, 0, "{u} restarted");
    }
    assert_eq!(marks(&mut vm, "/run/calm").len(), 1);
    assert_eq!(marks(&mut vm, "/run/plain").len(), 1);
    // The kernel's own account: every OOM kill was inside units/oomer.
    let dmesg = vm.sh("dmesg | grep -o 'task_memcg=[^,]*'", CMD);
    let memcgs: Vec<&str> = dmesg.split_whitespace().collect();
    assert!(
        memcgs.len() as u64 >= events,
        "OOM kills missing from dmesg: {dmesg}"
    );
    assert!(
        memcgs.iter().all(|m| *m == "task_memcg=/units/oomer"),
        "OOM kill outside oomer: {dmesg}"
    );
}
