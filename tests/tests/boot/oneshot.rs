use crate::*;

/// prep (oneshot, 3 s, exit 0) <- user; bad (oneshot, 1 s, exit 3) <- dependent.
#[test]
fn oneshot_dependents_wait_for_it_and_do_not_start_if_it_fails() {
    let mut vm = boot("oneshot");
    // While prep has not finished, user must not have started.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // Observe user first, prep second: if prep is still unfinished at
        // the later look, user must not have been started at the earlier.
        let user = marks(&mut vm, "/run/user");
        let unit = vm.unit("user");
        let prep = marks(&mut vm, "/run/prep");
        if mark(&prep, "done").is_some() {
            break;
        }
        assert!(
            user.is_empty(),
            "user started while prep was still running: {prep:?} {user:?}"
        );
        if let Some(u) = unit {
            // Waiting for a dependency: listed, maybe as `starting`, but
            // not spawned.
            assert!(
                u.pid.is_none() && u.state != "running",
                "user is {u:?} before prep exited"
            );
        }
        assert!(Instant::now() < deadline, "prep never finished");
        std::thread::sleep(Duration::from_millis(300));
    }
    let st = vm.wait_states(
        &[
            ("prep", &["exited"]),
            ("user", &["running"]),
            ("bad", &["failed"]),
        ],
        Duration::from_secs(30),
    );
    let prep = marks(&mut vm, "/run/prep");
    let user = marks(&mut vm, "/run/user");
    assert!(mark(&user, "start").expect("user ran").2 >= mark(&prep, "done").unwrap().2);
    assert!(st["bad"].pid.is_none());
    // bad failed: its dependent never starts.
    vm.sh("sleep 2", CMD);
    assert_eq!(
        vm.sh("ls /run/dependent 2>&1 >/dev/null | grep -c 'No such'", CMD)
            .trim(),
        "1"
    );
    let d = vm.unit("dependent").expect("dependent listed");
    assert!(
        ["stopped", "failed"].contains(&d.state.as_str()),
        "dependent is {d:?}"
    );
    assert!(mark(&marks(&mut vm, "/run/bad"), "start").is_some());
    let out = vm.output();
    assert!(
        out.contains("[FAILED] bad: exit 3"),
        "no failure line for bad"
    );
    assert!(
        out.contains("[FAILED] dependent: dependency bad failed"),
        "no dependency line"
    );
}
