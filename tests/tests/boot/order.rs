use crate::*;

/// Directory order is alpha, mid, omega, zeta; dependency order is
/// zeta (oneshot) -> mid -> alpha -> omega (oneshot, also after zeta).
#[test]
fn units_start_in_dependency_order() {
    let mut vm = boot("order");
    vm.wait_states(
        &[
            ("zeta", &["exited"]),
            ("mid", &["running"]),
            ("alpha", &["running"]),
            ("omega", &["exited"]),
            ("sh", &["running"]),
        ],
        Duration::from_secs(30),
    );
    let m = marks(&mut vm, "/run/order");
    let names: Vec<&str> = m.iter().map(|(t, _, _)| t.as_str()).collect();
    let zeta_done = mark(&m, "zeta-done").expect("zeta finished").2;
    for n in ["mid", "alpha", "omega"] {
        let t = mark(&m, n)
            .unwrap_or_else(|| panic!("{n} never ran: {names:?}"))
            .2;
        assert!(
            t >= zeta_done,
            "{n} started before the oneshot zeta exited: {m:?}"
        );
    }
    assert_eq!(
        names.iter().filter(|n| **n == "mid").count(),
        1,
        "mid ran twice: {names:?}"
    );
    // Readiness `started`: the supervisor declares each ready before it
    // starts the next, so the console lines come in dependency order.
    assert_in_order(
        &vm.output(),
        &[
            "[  OK  ] zeta: exited",
            "[  OK  ] mid: running (pid ",
            "[  OK  ] alpha: running (pid ",
            "[  OK  ] omega: exited",
        ],
    );
}
