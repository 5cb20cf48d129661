use crate::*;

/// An idle system wakes PID 1 zero times: no polling, no periodic timer.
/// PID 1's voluntary context switches (each return from epoll_wait is
/// one) do not move over 10 s once the demo units are up.
#[test]
fn idle_pid1_does_not_wake_up() {
    let mut vm = boot("demo");
    vm.wait_states(
        &[
            ("shell", &["running"]),
            ("lo", &["exited"]),
            ("web", &["running"]),
        ],
        Duration::from_secs(30),
    );
    // Let boot's last deferred work (console backlog, control replies) end.
    vm.sh("sleep 2", CMD);
    assert_pid1_idle(&mut vm);
}
