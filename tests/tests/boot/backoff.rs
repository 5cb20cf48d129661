use crate::*;

/// crashy exits 1 at once; restart_delay = 200ms, restart_delay_max = 1600ms.
#[test]
fn crash_loop_backs_off_doubling_and_capped_while_pid1_stays_responsive() {
    let mut vm = boot("backoff");
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut seen_backoff = false;
    let mut last_restarts = 0;
    let m = loop {
        // PID 1 answers promptly all through the crash loop.
        let t = Instant::now();
        let st = vm.status();
        let took = t.elapsed();
        assert!(
            took < Duration::from_secs(3),
            "initctl status took {took:?} during the crash loop"
        );
        let crashy = st
            .iter()
            .find(|u| u.name == "crashy")
            .expect("crashy listed");
        assert!(
            ["backoff", "starting", "running"].contains(&crashy.state.as_str()),
            "crashy is {crashy:?}"
        );
        seen_backoff |= crashy.state == "backoff";
        assert!(
            crashy.restarts >= last_restarts,
            "restart count went down: {st:?}"
        );
        last_restarts = crashy.restarts;
        assert!(
            st.iter()
                .any(|u| u.name == "steady" && u.state == "running"),
            "{st:?}"
        );
        let m = marks(&mut vm, "/run/crashy");
        if m.len() >= 7 {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "only {} starts of crashy: {m:?}",
            m.len()
        );
        std::thread::sleep(Duration::from_millis(400));
    };
    assert!(seen_backoff, "crashy never showed state backoff");
    assert!(last_restarts >= 3, "restart count {last_restarts}");
    let t: Vec<u64> = m.iter().map(|x| x.2).collect();
    let gaps: Vec<u64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    let nominal = [200u64, 400, 800, 1600, 1600, 1600];
    for (i, (g, n)) in gaps.iter().zip(nominal).enumerate() {
        assert!(
            *g + 30 >= n,
            "gap {i} was {g} ms, shorter than the {n} ms delay: {gaps:?}"
        );
        assert!(
            *g <= n + 700,
            "gap {i} was {g} ms, expected about {n} ms: {gaps:?}"
        );
    }
    // Doubling, visibly: each step clearly longer than the one before, up
    // to the cap. The first gap also holds the first run's cold start of
    // the program (slow under TCG), so it is bounded above only.
    assert!(
        gaps[2] > gaps[1] + 200 && gaps[3] > gaps[2] + 400,
        "{gaps:?}"
    );
    let out = vm.output();
    assert!(
        out.contains("[FAILED] crashy: exit 1, restart in 200ms"),
        "no 200ms backoff line"
    );
    assert!(
        out.contains("[FAILED] crashy: exit 1, restart in 400ms"),
        "no 400ms backoff line"
    );
    // Still responsive at the end.
    assert_eq!(vm.sh("echo alive", CMD), "alive\n");
}
