//! The walk's units: their files and the cgroup they run under.

use super::{reap_all, Rng, NAMES};
use std::fmt::Write as _;
use std::path::PathBuf;

/// A unit file: random programs, readiness, restarts, output, order.
pub(super) fn unit_text(rng: &mut Rng, i: usize) -> String {
    let exec = match rng.below(10) {
        0 => "/bin/true",
        1 => "/bin/false",
        2 => "/bin/wren-walk-nothing-here",
        3 | 4 => "/bin/sh -c \"echo up; echo >&3; exec /bin/sleep 30\"",
        _ => "/bin/sleep 30",
    };
    // A PID namespace's reaper (a fork of the test) between PID 1 and
    // the program, and its exit report.
    let ns = rng.pick(&["none", "none", "none", "pid mount"]);
    let mut t = format!("namespaces = {ns}\n");
    let _ = writeln!(t, "env = W={}", rng.below(3));
    // An sd_notify unit says what its plan says (`notifier`), some with
    // a watchdog.
    match rng.pick(&["started", "started", "notify", "sd_notify", "sd_notify"]) {
        "sd_notify" => {
            let watchdog = rng.chance(50);
            match exec.contains("nothing-here") {
                true => t += &format!("exec = {exec}\n"),
                false => t += &super::notifier::unit_lines(rng, watchdog),
            }
            t += "ready = sd_notify\n";
            if watchdog {
                t += "watchdog = 60ms\n";
            }
        }
        ready => {
            let _ = writeln!(t, "exec = {exec}\nready = {ready}");
        }
    }
    let _ = writeln!(
        t,
        "restart = {}",
        rng.pick(&["always", "on-failure", "never"])
    );
    let _ = writeln!(t, "type = {}", rng.pick(&["service", "service", "oneshot"]));
    t.push_str("restart_delay = 5ms\nrestart_delay_max = 40ms\nstop_timeout = 60ms\n");
    let _ = writeln!(t, "start_timeout = {}", rng.pick(&["60ms", "300ms"]));
    let _ = writeln!(t, "output = {}", rng.pick(&["log", "log", "null"]));
    if rng.chance(50) {
        let _ = writeln!(t, "shed_order = {}", 1 + rng.below(4));
    }
    if rng.chance(40) {
        t.push_str("pressure_limit = 10%/1s\n");
        let _ = writeln!(
            t,
            "pressure_action = {}",
            rng.pick(&["stop", "restart", "log"])
        );
    }
    if rng.chance(20) {
        t.push_str("memory.max = 64M\n");
    }
    for d in NAMES.iter().take(i) {
        if rng.chance(25) {
            let _ = writeln!(t, "after = {d}");
        }
    }
    t
}

/// A cgroup of the walk's own under the host's cgroup2 (root only), as
/// PID 1's root: `units/` in it. Its units' processes killed and its
/// directories removed when dropped.
pub(super) struct CgRoot(pub(super) PathBuf);

impl CgRoot {
    pub(super) fn make(seed: u64) -> Option<CgRoot> {
        let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
        let mount = mounts.lines().find_map(|l| {
            let mut f = l.split(' ');
            let (_, dir, ty) = (f.next()?, f.next()?, f.next()?);
            (ty == "cgroup2").then(|| dir.to_owned())
        })?;
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
        let dir = PathBuf::from(format!(
            "{mount}{rel}/wren-walk-{}-{seed}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("units")).ok()?;
        Some(CgRoot(dir))
    }
}

impl Drop for CgRoot {
    fn drop(&mut self) {
        let units = self.0.join("units");
        let dirs = || {
            let all = std::fs::read_dir(&units).into_iter().flatten().flatten();
            all.filter(|d| d.file_type().is_ok_and(|t| t.is_dir()))
        };
        for d in dirs() {
            let _ = std::fs::write(d.path().join("cgroup.kill"), "1");
        }
        // A killed child is in its cgroup until reaped.
        for _ in 0..400 {
            reap_all();
            if dirs().all(|d| std::fs::remove_dir(d.path()).is_ok()) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = std::fs::remove_dir(&units);
        let _ = std::fs::remove_dir(&self.0);
    }
}
