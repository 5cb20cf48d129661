//! Random walks of PID 1 itself, as the core's walks are of the
//! supervisor: units of real children (`/bin/sleep`, `/bin/false`, a
//! program that is not there), in a real cgroup where the host lets the
//! test make one, driven through PID 1's own entry points (the control
//! socket's start, stop, restart and reload, edits of the unit files,
//! kills of the units' processes, system and unit memory pressure, the
//! loop's epoll turns and timer) and ended by a shutdown, which must come
//! to its final sequence. After every step PID 1's edges must agree with
//! the supervisor's slots (see `check`). `PID1_WALK_SEEDS=N` runs N seeds,
//! from `PID1_WALK_FROM` (0); a failure names its seed and its steps.

use super::event_loop::{unit_of, TOKEN_CGEVENTS, TOKEN_EXEC, TOKEN_LOG, TOKEN_TIMER};
use super::event_loop::{TOKEN_NOTIFY, TOKEN_NOTIFY_READ, TOKEN_PRESSURE, TOKEN_REPORT};
use super::*;
use crate::proto::{encode_request, Request};
use crate::supervisor::{Phase, Retired};
use crate::vocab::ShutdownKind;
use rustix::event::epoll;
use rustix::fd::AsRawFd;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Units a walk's directory may hold; each may name those before it in
/// `after`.
const NAMES: [&str; 5] = ["db", "web", "app", "job", "aux"];
const STEPS: usize = 40;
/// Fds an edge may hold at once: output, notify, its closer's pipe,
/// exit report, exec status, pressure trigger, cgroup.events.
const FDS_PER_UNIT: usize = 8;

/// xorshift64*, as the core's walks: the same walk on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, of: &[&'a str]) -> &'a str {
        of[self.below(of.len() as u64) as usize]
    }
}

/// A unit file: random programs, readiness, restarts, output, order.
fn unit_text(rng: &mut Rng, i: usize) -> String {
    let exec = match rng.below(10) {
        0 => "/bin/true",
        1 => "/bin/false",
        2 => "/bin/wren-walk-nothing-here",
        3 | 4 => "/bin/sh -c \"echo up; echo >&3; exec /bin/sleep 30\"",
        _ => "/bin/sleep 30",
    };
    let mut t = format!("exec = {exec}\nnamespaces = none\n");
    let _ = writeln!(t, "env = W={}", rng.below(3));
    let _ = writeln!(t, "ready = {}", rng.pick(&["started", "started", "notify"]));
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
struct CgRoot(PathBuf);

impl CgRoot {
    fn make(seed: u64) -> Option<CgRoot> {
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

struct Walk {
    seed: u64,
    rng: Rng,
    p: Pid1,
    dir: crate::testutil::TempDir,
    sock: PathBuf,
    clients: VecDeque<std::os::unix::net::UnixStream>,
    trace: Vec<String>,
    fds_before: usize,
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// epoll's registrations of `ep`: (fd, token), from /proc/self/fdinfo.
fn registrations(ep: &OwnedFd) -> Vec<(i32, u64)> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", ep.as_raw_fd()));
    let info = info.unwrap_or_default();
    let field = |l: &str, k: &str| -> Option<String> {
        let rest = &l[l.find(k)? + k.len()..];
        Some(rest.split_whitespace().next()?.to_owned())
    };
    info.lines()
        .filter_map(|l| {
            let fd = field(l, "tfd:")?.parse().ok()?;
            let data = u64::from_str_radix(&field(l, "data:")?, 16).ok()?;
            Some((fd, data))
        })
        .collect()
}

impl Walk {
    fn new(seed: u64, cg: Option<&CgRoot>) -> Walk {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let fds_before = open_fds();
        let dir = crate::testutil::TempDir::new(&format!("pid1-walk-{seed}"));
        for (i, n) in NAMES.iter().enumerate() {
            if i < 2 || rng.chance(60) {
                dir.file(&format!("units/{n}.unit"), &unit_text(&mut rng, i));
            }
        }
        let cg = cg.and_then(|c| crate::cgroup::Cgroups::open(&c.0).ok());
        let mut p = Pid1::new(cg, now(), false);
        let units = dir.path().join("units");
        let opts = crate::boot::cmdline::Options {
            units_dir: Some(units.to_str().unwrap().try_into().unwrap()),
            ..Default::default()
        };
        p.load_units(&opts);
        p.fit_tables();
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
        let flags = rustix::time::TimerfdFlags::NONBLOCK | rustix::time::TimerfdFlags::CLOEXEC;
        let timer = rustix::time::timerfd_create(rustix::time::TimerfdClockId::Monotonic, flags);
        p.timer = event_loop::watch(&ep, timer.unwrap(), TOKEN_TIMER);
        p.epoll = Some(ep);
        let sock = dir.path().join("control");
        let uid = rustix::process::getuid().as_raw();
        p.control = Some(crate::control::Server::bind(&sock, uid).unwrap());
        p.watch_system_pressure(crate::unit::PressureLimit {
            percent: 50,
            window: 1000,
        });
        let mut w = Walk {
            seed,
            rng,
            p,
            dir,
            sock,
            clients: VecDeque::new(),
            trace: Vec::new(),
            fds_before,
        };
        w.p.feed(Event::Boot);
        w.p.arm_timer();
        w.turn(0);
        w.check("boot");
        w
    }

    fn fail(&self, what: &str, msg: String) -> ! {
        panic!(
            "pid1 walk seed {} (PID1_WALK_FROM={} PID1_WALK_SEEDS=1): {msg}\nafter {what}; steps:\n{}",
            self.seed,
            self.seed,
            self.trace.join("\n")
        );
    }

    /// One wake-up of the loop: what epoll has ready within `ms`, the
    /// children that ended (no signalfd here: the test's threads), the
    /// control requests, then PID 1's batch as `wait_once` makes it.
    fn turn(&mut self, ms: u64) {
        let Some(ep) = self.p.epoll.as_ref() else {
            return;
        };
        let mut buf = [core::mem::MaybeUninit::<epoll::Event>::uninit(); 16];
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: (ms * 1_000_000) as _,
        };
        let tokens: Vec<(u64, bool)> = match epoll::wait(ep, &mut buf, Some(&ts)) {
            Ok((ready, _)) => ready
                .iter()
                .map(|e| {
                    let (data, flags) = (e.data, e.flags);
                    (data.u64(), flags.contains(epoll::EventFlags::ERR))
                })
                .collect(),
            Err(_) => Vec::new(),
        };
        self.p.reap(None);
        self.p.serve_control();
        self.p.handle(&tokens);
    }

    /// `req` on a connection of its own, served at once; the client's end
    /// kept a while (a stop's answer waits for the unit), then dropped.
    fn ask(&mut self, req: Request<'_>) {
        use std::io::Write;
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&self.sock) else {
            return;
        };
        let mut buf = [0u8; 256];
        let n = encode_request(&req, &mut buf).unwrap();
        s.write_all(&buf[..n]).unwrap();
        self.p.serve_control();
        self.clients.push_back(s);
        if self.clients.len() > 3 {
            self.clients.pop_front();
        }
    }

    /// Change the unit directory: a new definition, an invalid file, a
    /// removal, a new unit.
    fn edit(&mut self) -> String {
        let i = self.rng.below(NAMES.len() as u64) as usize;
        let path = self.dir.path().join(format!("units/{}.unit", NAMES[i]));
        let what = match self.rng.below(10) {
            0..=4 => unit_text(&mut self.rng, i),
            5 | 6 => "exec = /bin/sleep 30\nbogus = 1\n".to_owned(),
            _ => {
                let _ = std::fs::remove_file(&path);
                return format!("rm {}", NAMES[i]);
            }
        };
        std::fs::write(&path, &what).unwrap();
        format!("write {}: {}", NAMES[i], what.replace('\n', "; "))
    }

    /// A unit of the table by chance, by name (one not there: refused).
    fn name(&mut self) -> &'static str {
        NAMES[self.rng.below(NAMES.len() as u64) as usize]
    }

    fn step(&mut self) {
        let what = match self.rng.below(20) {
            0..=2 => {
                let mut e = self.edit();
                if self.rng.chance(50) {
                    e = format!("{e} / {}", self.edit());
                }
                if self.rng.chance(70) {
                    self.ask(Request::Reload);
                    if self.rng.chance(50) {
                        self.ask(Request::Verdict);
                    }
                    format!("reload ({e})")
                } else {
                    let _ = self.p.reload(&mut |_| {});
                    format!("SIGHUP ({e})")
                }
            }
            3..=5 => {
                let name = self.name();
                let (req, verb) = match self.rng.below(3) {
                    0 => (Request::Start { name }, "start"),
                    1 => (Request::Stop { name }, "stop"),
                    _ => (Request::Restart { name }, "restart"),
                };
                self.ask(req);
                format!("{verb} {name}")
            }
            6..=8 => {
                let name = self.name();
                let pid = self.p.sup.index(name).and_then(|u| self.p.sup.slot(u));
                let pid = pid.map_or(0, |s| s.rt.pid);
                let sig = if self.rng.chance(50) { 9 } else { 15 };
                if pid != 0 {
                    let _ = crate::sys::signal::kill(pid as i32, sig);
                }
                format!("kill -{sig} {name} ({pid})")
            }
            9 => {
                self.p.on_system_pressure(false);
                "system pressure".to_owned()
            }
            10 => {
                if let Some(s) = self.p.shed.as_mut() {
                    s.calm_at = s.calm_at.map(|_| now());
                }
                self.p.on_shed_calm();
                "calm".to_owned()
            }
            11 => {
                let name = self.name();
                if let Some(u) = self.p.sup.index(name) {
                    self.p.on_pressure(u, self.rng.chance(10));
                }
                format!("{name}'s own pressure")
            }
            _ => {
                let ms = self.rng.below(80);
                self.turn(ms);
                format!("wait {ms}ms")
            }
        };
        self.turn(0);
        let state = self.state();
        self.trace.push(format!("{what} => {state}"));
        self.check(&what);
    }

    /// Each unit's phase, pid, and what its edge holds, for the trace.
    fn state(&self) -> String {
        let mut s = String::new();
        for (i, e) in self.p.edges.iter().enumerate() {
            let Some(slot) = self.p.sup.slot(i as u16) else {
                continue;
            };
            let r = &slot.rt;
            let _ = write!(
                s,
                "{}:{:?}{}{}{}{}{} ",
                slot.def.name,
                r.phase,
                if r.probation { "/prob" } else { "" },
                if e.shed { "/shed" } else { "" },
                if e.exec.is_some() { "/exec" } else { "" },
                if e.drain.active() { "/drain" } else { "" },
                match slot.retired {
                    Retired::No => "",
                    Retired::Leaving => "/leaving",
                    Retired::Free => "/free",
                }
            );
        }
        s
    }

    /// PID 1's state agrees with the supervisor's.
    fn check(&self, what: &str) {
        let p = &self.p;
        let bad = |msg: String| self.fail(what, msg);
        let reg = p.epoll.as_ref().map(registrations).unwrap_or_default();
        let watched = |fd: Option<&OwnedFd>, base: u64, u: u16| {
            fd.is_none_or(|fd| reg.contains(&(fd.as_raw_fd(), base + u64::from(u))))
        };
        let shutting = p.sup.shutting_down().is_some();
        for (i, e) in p.edges.iter().enumerate() {
            let u = i as u16;
            let Some(s) = p.sup.slot(u) else {
                self.fail(what, format!("edge {i} without a slot"));
            };
            let (name, r) = (s.def.name.as_str(), &s.rt);
            let exec = p.exec_pid(u).is_some();
            // A handshake is a start the supervisor has in flight, and
            // such a start has its handshake.
            if exec != (r.phase == Phase::Starting && r.pid == 0) {
                bad(format!(
                    "{name} {:?} pid {} exec wait {exec}",
                    r.phase, r.pid
                ));
            }
            // Every fd the loop waits on is in the epoll set, under its
            // unit's token.
            for (fd, base, role) in [
                (e.log_rd.as_ref(), TOKEN_LOG, "output"),
                (
                    e.notify.as_ref().filter(|_| e.notify_held == 0),
                    TOKEN_NOTIFY,
                    "notify",
                ),
                (e.notify_read.as_ref(), TOKEN_NOTIFY_READ, "closer"),
                (e.exit_report.as_ref(), TOKEN_REPORT, "report"),
                (
                    e.pressure.as_ref().map(|(f, _)| f),
                    TOKEN_PRESSURE,
                    "pressure",
                ),
            ] {
                if !watched(fd, base, u) {
                    bad(format!("{name}'s {role} fd is not in the epoll set"));
                }
            }
            // Readiness is a run's: over with its process.
            if e.notify.is_some() && r.pid == 0 && !exec {
                bad(format!(
                    "{name} {:?} holds a notify fd with no run",
                    r.phase
                ));
            }
            // Shed: stopped, until the calm or the operator starts it.
            if e.shed
                && (s.retired == Retired::Free
                    || matches!(r.phase, Phase::Running | Phase::Starting))
            {
                bad(format!("{name} shed but {:?} {:?}", r.phase, s.retired));
            }
            if let Some(b) = e.rare.as_deref() {
                let holds = !b.last_error.is_empty()
                    || b.last_good.is_some()
                    || b.rejected.is_some()
                    || b.owed.is_some()
                    || b.pressure_stopped;
                if !holds {
                    bad(format!("{name}'s rare box holds nothing"));
                }
                if b.last_good.is_some() && !r.probation && s.retired == Retired::No && !shutting {
                    bad(format!("{name} keeps a last good definition off probation"));
                }
            }
            if (e.drain.active() || e.pressure.is_some()) && e.cgroup.is_none() {
                bad(format!(
                    "{name} drains or watches pressure without a cgroup"
                ));
            }
            if e.cgroup.is_some() && p.cg.is_none() {
                bad(format!("{name} has a cgroup without a hierarchy"));
            }
            // A freed slot's edge has let go of everything but a cgroup
            // still draining.
            if s.retired == Retired::Free {
                let holds = e.log_rd.is_some()
                    || e.log.is_allocated()
                    || e.notify.is_some()
                    || e.notify_read.is_some()
                    || e.exit_report.is_some()
                    || e.rare.is_some()
                    || e.verdict.is_some()
                    || (e.cgroup.is_some() && !p.removing)
                    || exec;
                if holds {
                    bad(format!("{name}'s freed slot keeps its run's state"));
                }
            }
            // A verdict waited for is on its way.
            let judged = r.probation && !s.judged_when_started() && s.retired == Retired::No;
            if e.verdict == Some(gate::Verdict::Pending) && judged && !shutting {
                let coming = match r.phase {
                    Phase::Waiting | Phase::Starting | Phase::Stopping => true,
                    Phase::Running => r.deadline.is_some(),
                    _ => false,
                };
                if !coming {
                    bad(format!(
                        "{name} waits for a verdict that is not coming, {:?}",
                        r.phase
                    ));
                }
            }
        }
        // Every registration is an fd some edge (or the loop) waits on.
        for &(fd, tok) in reg.iter() {
            let owner = |base: u64| {
                unit_of(tok, base).and_then(|u| Some((u, p.edges.get(usize::from(u))?)))
            };
            let is = |f: Option<&OwnedFd>| f.is_some_and(|f| f.as_raw_fd() == fd);
            let ok = tok == TOKEN_TIMER
                || p.shed.as_ref().is_some_and(|s| is(s.trigger.as_ref()))
                || owner(TOKEN_LOG).is_some_and(|(_, e)| is(e.log_rd.as_ref()))
                || owner(TOKEN_NOTIFY).is_some_and(|(_, e)| is(e.notify.as_ref()))
                || owner(TOKEN_NOTIFY_READ).is_some_and(|(_, e)| is(e.notify_read.as_ref()))
                || owner(TOKEN_REPORT).is_some_and(|(_, e)| is(e.exit_report.as_ref()))
                || owner(TOKEN_PRESSURE)
                    .is_some_and(|(_, e)| is(e.pressure.as_ref().map(|x| &x.0)))
                || owner(TOKEN_EXEC).is_some_and(|(u, _)| p.exec_pid(u).is_some())
                || owner(TOKEN_CGEVENTS).is_some_and(|(_, e)| e.drain.active());
            if !ok {
                bad(format!(
                    "epoll watches fd {fd} (token {tok:#x}) that nobody holds"
                ));
            }
        }
        let fds = open_fds();
        let bound = self.fds_before + 16 + FDS_PER_UNIT * p.edges.len();
        if fds > bound {
            bad(format!("{fds} fds open, more than {bound}"));
        }
    }

    /// Shut down and turn the loop until the final sequence: within the
    /// shutdown's deadline, every unit down.
    fn shut_down(mut self) {
        use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
        let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut first = true;
        while std::time::Instant::now() < end {
            let r = catch_unwind(AssertUnwindSafe(|| {
                if std::mem::take(&mut first) {
                    let _ = self
                        .p
                        .ask_shutdown(ShutdownKind::Poweroff, format_args!("walk"));
                }
                self.turn(20);
            }));
            let Err(payload) = r else {
                self.trace
                    .push(format!("shutting down => {}", self.state()));
                self.check("a shutdown's turn");
                continue;
            };
            let Some(f) = payload.downcast_ref::<shutdown::Finished>() else {
                resume_unwind(payload);
            };
            assert_eq!(f.kind, ShutdownKind::Poweroff);
            if self.p.shutdown_deadline.is_some_and(|d| now() >= d) {
                self.fail("shutdown", "finished late, at its deadline".into());
            }
            for (s, e) in self.p.sup.slots().zip(self.p.edges.iter()) {
                let down = matches!(s.rt.phase, Phase::Stopped | Phase::Failed | Phase::Exited);
                if !down || e.drain.active() || e.exec.is_some() {
                    self.fail("shutdown", format!("finished with {} up", s.def.name));
                }
            }
            return;
        }
        self.fail("shutdown", "no final sequence within 20 s".into());
    }
}

/// Every child left ended and reaped (a walk that failed half-way).
fn reap_all() {
    while rustix::process::wait(rustix::process::WaitOptions::NOHANG)
        .ok()
        .flatten()
        .is_some()
    {}
}

#[test]
fn pid1_random_walks() {
    crate::testutil::alone!(pid1_random_walks);
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let from = env("PID1_WALK_FROM", 0);
    let seeds = env("PID1_WALK_SEEDS", 6);
    let root = rustix::process::geteuid().is_root();
    let mut after_first = None;
    // The final sequence's panic (`shutdown::finish`) is the walk's end,
    // not a failure to print.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |i| {
        if i.payload().downcast_ref::<shutdown::Finished>().is_none() {
            hook(i)
        }
    }));
    for seed in from..from + seeds {
        // Even seeds in a cgroup of their own where the host allows,
        // odd ones without cgroups (process groups).
        let cg = (root && seed % 2 == 0)
            .then(|| CgRoot::make(seed))
            .flatten();
        let mut w = Walk::new(seed, cg.as_ref());
        for _ in 0..STEPS {
            w.step();
        }
        w.shut_down();
        drop(cg);
        reap_all();
        // What PID 1 held went with it: no more fds after this walk than
        // after the first (which opened the process's lasting ones: the
        // console, /dev/null, the trampoline's pipes).
        let fds = open_fds();
        let first = *after_first.get_or_insert(fds);
        assert!(
            fds <= first,
            "seed {seed}: {fds} fds open after the walk, {first} after the first"
        );
    }
}
