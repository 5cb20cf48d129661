use crate::*;

/// nready (ready = notify) and sdready (ready = sd_notify) signal after
/// 3 s; nafter/sdafter must wait for that. mute never signals: muteafter
/// never starts.
#[test]
fn notify_and_sd_notify_readiness_hold_dependents_back() {
    let mut vm = boot("notify");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Status first, marks second: a unit whose `ready` mark is still
        // missing at the later look had not signalled at the earlier one.
        let st = vm.status();
        let n = marks(&mut vm, "/run/n");
        let sd = marks(&mut vm, "/run/sd");
        if mark(&n, "ready").is_some() && mark(&sd, "ready").is_some() {
            break;
        }
        if mark(&n, "ready").is_none() {
            assert!(
                mark(&n, "after").is_none(),
                "nafter started before nready was ready: {n:?}"
            );
        }
        if mark(&sd, "ready").is_none() {
            assert!(
                mark(&sd, "after").is_none(),
                "sdafter started before sdready was ready: {sd:?}"
            );
        }
        for (unit, dep, m) in [("nready", "nafter", &n), ("sdready", "sdafter", &sd)] {
            if mark(m, "ready").is_some() {
                continue;
            }
            for u in &st {
                if u.name == unit && u.pid.is_some() {
                    assert_eq!(u.state, "starting", "{unit} has not signalled yet: {u:?}");
                }
                if u.name == dep {
                    assert!(
                        u.pid.is_none() && u.state != "running",
                        "{dep} started early: {u:?}"
                    );
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "readiness never signalled: {n:?} {sd:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    vm.wait_states(
        &[
            ("nready", &["running"]),
            ("nafter", &["running"]),
            ("sdready", &["running"]),
            ("sdafter", &["running"]),
        ],
        Duration::from_secs(20),
    );
    for f in ["/run/n", "/run/sd"] {
        let m = marks(&mut vm, f);
        let ready = mark(&m, "ready").unwrap().2;
        let after = mark(&m, "after")
            .unwrap_or_else(|| panic!("dependent never ran: {f} {m:?}"))
            .2;
        assert!(
            after >= ready,
            "dependent started before readiness: {f} {m:?}"
        );
    }
    // mute has been up for seconds without signalling: still starting, and
    // its dependent has not run.
    vm.sh("sleep 1", CMD);
    let m = marks(&mut vm, "/run/mute");
    assert!(mark(&m, "start").is_some(), "mute never ran");
    assert!(
        mark(&m, "after").is_none(),
        "muteafter started without mute's READY=1"
    );
    let mute = vm.unit("mute").expect("mute listed");
    assert_eq!(mute.state, "starting");
}
