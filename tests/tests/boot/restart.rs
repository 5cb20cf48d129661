use crate::*;

/// victim: restart_delay = 500ms.
#[test]
fn sigkilled_unit_is_back_within_its_restart_delay() {
    let mut vm = boot("restart");
    let st = vm.wait_states(&[("victim", &["running"])], Duration::from_secs(30));
    let old = st["victim"].pid.expect("running unit has a pid");
    let restarts = st["victim"].restarts;
    vm.sh(
        &format!("wren-testkit mark /run/victim kill; kill -9 {old}"),
        CMD,
    );
    let m = wait_marks(&mut vm, "/run/victim", Duration::from_secs(15), |m| {
        m.iter().filter(|(t, _, _)| t == "start").count() >= 2
    });
    let kill = mark(&m, "kill").unwrap();
    let again = m.iter().filter(|(t, _, _)| t == "start").nth(1).unwrap();
    let delay = again.2.saturating_sub(kill.2);
    assert!(again.1 != old, "same pid after restart: {m:?}");
    assert!(
        delay >= 400,
        "restarted after {delay} ms, before its 500 ms restart delay"
    );
    assert!(
        delay <= 2000,
        "restarted only after {delay} ms (restart delay 500 ms)"
    );
    let st = vm.wait_states(&[("victim", &["running"])], Duration::from_secs(10));
    assert_eq!(st["victim"].pid, Some(again.1));
    assert_eq!(st["victim"].restarts, restarts + 1);
    assert!(vm.saw("[FAILED] victim: killed by SIGKILL", CMD));
}
