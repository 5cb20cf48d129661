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

/// Debian's arm64 systemd-notify (a client nobody here wrote) and what it
/// needs, from build/sdnotify/ (rootfs/build): the tree of the `root =`
/// unit at /srv/sdn, and links to it where a host program looks (so
/// `user =` units on the host's root run it too). Only these boots carry
/// it; the shared image stays small.
fn sdnotify_files() -> Vec<(String, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    use wren_boot_tests::{repo_root, S_IFDIR, S_IFLNK};
    let base = repo_root().join("build/sdnotify");
    assert!(
        base.join("srv/sdn/bin/systemd-notify").exists(),
        "{} has no systemd-notify: run scripts/setup-host and rootfs/build",
        base.display()
    );
    let mut out = Vec::new();
    let mut dirs = vec![base.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let rel = format!("/{}", p.strip_prefix(&base).unwrap().display());
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                // Empty ones too (the root's mount points, /out).
                out.push((rel, Vec::new(), S_IFDIR | 0o755));
                dirs.push(p);
            } else if meta.file_type().is_symlink() {
                let to = std::fs::read_link(&p).unwrap();
                out.push((
                    rel,
                    to.to_str().unwrap().as_bytes().to_vec(),
                    S_IFLNK | 0o777,
                ));
            } else {
                out.push((rel, std::fs::read(&p).unwrap(), meta.permissions().mode()));
            }
        }
    }
    for (link, to) in [
        ("/usr/bin/systemd-notify", "/srv/sdn/bin/systemd-notify"),
        (
            "/lib/ld-linux-aarch64.so.1",
            "/srv/sdn/lib/ld-linux-aarch64.so.1",
        ),
        ("/lib/aarch64-linux-gnu", "/srv/sdn/lib/aarch64-linux-gnu"),
        (
            "/usr/lib/aarch64-linux-gnu",
            "/srv/sdn/usr/lib/aarch64-linux-gnu",
        ),
    ] {
        out.push((link.to_string(), to.as_bytes().to_vec(), S_IFLNK | 0o777));
    }
    out
}

fn boot_sdclient() -> Vm {
    let files = sdnotify_files();
    let refs: Vec<(&str, &[u8], u32)> = files
        .iter()
        .map(|(p, b, m)| (p.as_str(), b.as_slice(), *m))
        .collect();
    let mut vm = Vm::boot_with_files("sdclient", "", &refs);
    vm.wait_shell(BOOT);
    vm
}

/// `systemd-notify --ready` from a `user =` unit (nobody, in its own
/// network namespace), from one in a user namespace (nobody there), and
/// from a `root =` unit (its root's own user) is
/// what makes them `running`, and nothing before (and it gets through
/// from `read_only` and `root_overlay` units too); another user's unit
/// can neither send to a socket not its own nor list them.
#[test]
fn systemd_notify_readiness_for_user_and_root_units() {
    let mut vm = boot_sdclient();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        // Status first, marks second: a unit that had not begun sending
        // at the later look had not sent at the earlier one.
        let st = vm.status();
        let user = marks(&mut vm, "/tmp/sduser");
        let root = vm.sh("cat /srv/sdn/out/sdroot 2>/dev/null", CMD);
        let user_sent = mark(&user, "sent").is_some();
        let root_sent = root.lines().any(|l| l.trim() == "sent");
        if user_sent && root_sent {
            break;
        }
        for (unit, began) in [
            ("sduser", mark(&user, "sending").is_some()),
            ("sdroot", root.contains("sending")),
        ] {
            if began {
                continue;
            }
            if let Some(u) = st.iter().find(|u| u.name == unit && u.pid.is_some()) {
                assert_eq!(
                    u.state, "starting",
                    "{unit} is ready before it sent READY=1: {u:?}"
                );
            }
        }
        assert!(
            Instant::now() < deadline,
            "systemd-notify never got through: sduser {user:?}, sdroot {root:?}; {}\n{}",
            vm.sh(
                "cat /tmp/sduser.err /tmp/sduser.stderr /srv/sdn/out/* 2>&1; \
                 initctl log sduser; initctl log sdroot",
                CMD
            ),
            vm.tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // With them, one in a read-only overlay root and one read_only on the
    // host's root, where private mounts cover /run/wren.
    vm.wait_states(
        &[
            ("sduser", &["running"]),
            ("sdroot", &["running"]),
            ("sdovl", &["running"]),
            ("sdro", &["running"]),
            ("sdns", &["running"]),
        ],
        Duration::from_secs(30),
    );
    // The root unit found its socket inside its root, and no host path.
    let env = vm.sh("cat /srv/sdn/out/env", CMD);
    assert_eq!(
        env.trim(),
        "/dev/wren-notify",
        "NOTIFY_SOCKET of the root unit"
    );
    // As the unit's users own them, mode 0600, in a directory others may
    // pass through but not list.
    let ls = vm.sh(
        "stat -c '%a %u %F' /run/wren/notify /run/wren/notify/sduser /run/wren/notify/sdroot \
         /run/wren/notify/sdns",
        CMD,
    );
    let ls: Vec<&str> = ls.lines().map(str::trim).collect();
    assert_eq!(
        ls,
        [
            "711 0 directory",
            "600 65534 socket",
            "600 2345 socket",
            "600 165534 socket"
        ],
        "notify socket modes and owners"
    );
    // snoop (uid 2346) tried to make sduser ready and to list the sockets.
    let snoop = vm.sh(
        "cat /tmp/snoop.rc; cat /tmp/snoop.ls; cat /tmp/snoop.err",
        CMD,
    );
    let mut lines = snoop.lines().map(str::trim);
    let rc: i32 = lines
        .next()
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("snoop did not record systemd-notify's exit code: {snoop:?}"));
    assert_ne!(
        rc, 0,
        "another user's unit sent to sduser's socket: {snoop:?}"
    );
    assert!(
        snoop.contains("Permission denied"),
        "snoop was not refused by permissions: {snoop:?}"
    );
    assert!(
        !snoop.contains("sdroot") && !snoop.contains("sduser"),
        "snoop listed the notify sockets: {snoop:?}"
    );
}

/// `watchdog = 10s` with `systemd-notify WATCHDOG=1` pings: the unit stays
/// up past several periods with the same pid; when it stops pinging it is
/// killed and started again (a new pid, a restart counted, "watchdog
/// timeout" in the kernel log), and the new one, pinging, stays up.
#[test]
fn systemd_notify_watchdog_pings_keep_a_unit_up_and_silence_restarts_it() {
    let mut vm = boot_sdclient();
    let st = vm.wait_states(&[("sdwd", &["running"])], Duration::from_secs(60));
    let first = st["sdwd"].clone();
    let pid = first.pid.expect("sdwd has a pid");
    let env = vm.sh("cat /run/sdwd.env", CMD);
    let env: Vec<&str> = env.split_whitespace().collect();
    assert_eq!(env.first(), Some(&"10000000"), "WATCHDOG_USEC: {env:?}");
    assert!(
        env.len() == 3 && env[1] == env[2],
        "WATCHDOG_PID is not the program's own pid: {env:?}"
    );
    // Three periods and more.
    vm.sh("sleep 31", Duration::from_secs(60));
    let u = vm.unit("sdwd").expect("sdwd listed");
    assert_eq!(
        (u.state.as_str(), u.pid, u.restarts),
        ("running", Some(pid), first.restarts),
        "a pinging unit was disturbed: {}\n{}",
        vm.sh("cat /run/sdwd.pings; initctl log sdwd", CMD),
        vm.tail()
    );
    assert!(!vm.output().contains("sdwd: watchdog timeout"));
    // The figures behind `watchdog = 10s`: how long one systemd-notify
    // WATCHDOG=1 took here (a ping mark to the pinged mark after it).
    let pings = marks(&mut vm, "/run/sdwd.pings");
    let mut took: Vec<u64> = pings
        .windows(2)
        .filter(|w| w[0].0 == "ping" && w[1].0 == "pinged")
        .map(|w| w[1].2.saturating_sub(w[0].2))
        .collect();
    took.sort_unstable();
    assert!(took.len() >= 3, "too few pings in 31s: {pings:?}");
    eprintln!(
        "systemd-notify WATCHDOG=1: {} runs, min {} ms, median {} ms, max {} ms",
        took.len(),
        took[0],
        took[took.len() / 2],
        took[took.len() - 1]
    );
    // Silence.
    vm.sh("touch /run/sdwd.stop", CMD);
    let deadline = Instant::now() + Duration::from_secs(60);
    let second = loop {
        let u = vm.unit("sdwd").expect("sdwd listed");
        if u.state == "running" && u.pid.is_some() && u.pid != Some(pid) {
            break u;
        }
        assert!(
            Instant::now() < deadline,
            "sdwd was not restarted after it went silent: {u:?}\n{}",
            vm.tail()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        second.restarts > first.restarts,
        "the restart was not counted: {first:?} -> {second:?}"
    );
    // (Counted: the console reader drops lines that look like the kernel's.)
    let n = vm.sh(
        "dmesg | grep -c 'wren: sdwd: watchdog timeout (10000ms), killed, restart in'",
        CMD,
    );
    assert_eq!(n.trim(), "1", "watchdog lines in the kernel log");
    assert_eq!(vm.sh("cat /run/sdwd.log", CMD).trim(), "silent");
    // The new one pings: still the same pid periods later.
    vm.sh("sleep 21", Duration::from_secs(60));
    let u = vm.unit("sdwd").expect("sdwd listed");
    assert_eq!(
        (u.state.as_str(), u.pid, u.restarts),
        ("running", second.pid, second.restarts),
        "the restarted unit was disturbed:\n{}",
        vm.tail()
    );
}

/// stuck passes, with READY=1, a socket whose last close waits 20 s (a
/// lingering TCP socket four unix sockets down, deeper than a closer reads
/// passed sockets): a closer makes that close, so PID 1 answers at once
/// and the unit is running. Without closers PID 1's read of the datagram
/// waited the 20 s, and every `initctl` with it.
#[test]
fn a_socket_passed_with_ready_that_waits_on_its_close_does_not_hold_pid1() {
    let mut vm = boot("notify");
    let deadline = Instant::now() + Duration::from_secs(30);
    while mark(&marks(&mut vm, "/run/stuck"), "sent").is_none() {
        assert!(
            Instant::now() < deadline,
            "stuck never sent: {}\n{}",
            vm.sh("initctl log stuck", CMD),
            vm.tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let t = Instant::now();
    vm.wait_states(&[("stuck", &["running"])], Duration::from_secs(40));
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "PID 1 answered {took:?} after the unit sent: its close waited"
    );
    // The closer (`wren-closer`, a child of PID 1's) waits out the linger,
    // then ends and is reaped.
    let closers = |vm: &mut Vm| {
        vm.sh(
            "for d in /proc/[0-9]*; do \
             [ \"$(cut -d' ' -f4 $d/stat)\" = 1 ] && [ \"$(cat $d/comm)\" = wren-closer ] && echo ${d#/proc/}; \
             done | wc -l",
            CMD,
        )
        .trim()
        .parse::<u32>()
        .unwrap_or(99)
    };
    assert_eq!(closers(&mut vm), 1, "the closer, while the linger lasts");
    std::thread::sleep(Duration::from_secs(24));
    assert_eq!(closers(&mut vm), 0, "the closer, after the linger");
    assert_eq!(vm.unit("stuck").map(|u| u.state), Some("running".into()));
}
