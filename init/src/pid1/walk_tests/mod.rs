//! Random walks of PID 1 itself, as the core's walks are of the
//! supervisor: units of real children (`/bin/sleep`, `/bin/false`, a
//! program that is not there, an sd_notify program with a plan of its
//! own: `notifier`), in a real cgroup where the host lets the test make
//! one, driven through PID 1's own entry points (the control
//! socket's start, stop, restart and reload, edits of the unit files,
//! kills of the units' processes, system and unit memory pressure, the
//! closers' places all taken, a unit directory the disk will not write,
//! the loop's epoll turns and timer) and ended
//! by a shutdown, which must come
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

struct Walk {
    seed: u64,
    rng: Rng,
    p: Pid1,
    dir: crate::testutil::TempDir,
    sock: PathBuf,
    /// The walk's own cgroup, if it has one (a new PID 1 opens it again).
    cg_root: Option<PathBuf>,
    clients: VecDeque<std::os::unix::net::UnixStream>,
    trace: Vec<String>,
    fds_before: usize,
    /// The unit directory is mounted read-only (`disk`).
    read_only: bool,
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
        let cg_root = cg.map(|c| c.0.clone());
        let mut p = Pid1::new(open_cgroups(cg_root.as_deref()), now(), false);
        let units = dir.path().join("units");
        p.load_units(&units_opts(&units));
        p.fit_tables();
        let sock = dir.path().join("control");
        into_loop(&mut p, &sock);
        let mut w = Walk {
            seed,
            rng,
            p,
            dir,
            sock,
            cg_root,
            clients: VecDeque::new(),
            trace: Vec::new(),
            fds_before,
            read_only: false,
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

/// PID 1's cgroup layer on the walk's cgroup, if it has one.
fn open_cgroups(root: Option<&std::path::Path>) -> Option<crate::cgroup::Cgroups> {
    root.and_then(|r| crate::cgroup::Cgroups::open(r).ok())
}

fn units_opts(units: &std::path::Path) -> crate::boot::cmdline::Options {
    crate::boot::cmdline::Options {
        units_dir: Some(units.to_str().unwrap().try_into().unwrap()),
        ..Default::default()
    }
}

/// The loop's fds, as `setup_loop` makes them, but for the signalfd
/// (the test's threads): epoll, the timer, the control socket at
/// `sock`, the system pressure trigger.
fn into_loop(p: &mut Pid1, sock: &std::path::Path) {
    let ep = epoll::create(epoll::CreateFlags::CLOEXEC).unwrap();
    let flags = rustix::time::TimerfdFlags::NONBLOCK | rustix::time::TimerfdFlags::CLOEXEC;
    let timer = rustix::time::timerfd_create(rustix::time::TimerfdClockId::Monotonic, flags);
    p.timer = event_loop::watch(&ep, timer.unwrap(), TOKEN_TIMER);
    p.epoll = Some(ep);
    let uid = rustix::process::getuid().as_raw();
    p.control = Some(crate::control::Server::bind(sock, uid).unwrap());
    p.watch_system_pressure(crate::unit::PressureLimit {
        percent: 50,
        window: 1000,
    });
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
    // As root, in a mount namespace of its own with a /run/wren of its
    // own: the units' notify sockets (`executor::notify_path`) are the
    // walk's alone, and their files checked (`check`).
    let root = rustix::process::geteuid().is_root();
    let mount = "mkdir -p /run/wren && mount -t tmpfs -o size=64k walk /run/wren \
                 && mkdir /run/wren/notify";
    let me = (module_path!(), "pid1_random_walks");
    let here = match root {
        true => crate::testutil::run_alone_after_mounting(me.0, me.1, mount),
        false => crate::testutil::run_alone(me.0, me.1),
    };
    if !here {
        return;
    }
    // Closers reaped by the walk's turns, as PID 1's loop reaps them.
    crate::sys::passed::reaps_itself();
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let from = env("PID1_WALK_FROM", 0);
    let seeds = env("PID1_WALK_SEEDS", 6);
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
        if w.read_only {
            w.disk();
        }
        w.shut_down();
        drop(cg);
        // Sockets in the park wait for a place the final sequence's kill
        // would free: let go of as an exec lets go of them.
        crate::sys::passed::before_exec();
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

mod events;
mod invariants;
mod notifier;
mod reexec;
mod units;
use invariants::open_fds;
use units::{unit_text, CgRoot};
