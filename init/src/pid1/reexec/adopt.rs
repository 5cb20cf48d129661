//! Adopting the running units when the handed-over state cannot be read
//! (another state format, a damaged one): by the text layer's pids and
//! fds, else by the processes in each unit's cgroup that are PID 1's
//! children; with no state at all, the fds handed over closed first
//! (`close_inherited`).

use super::{slot_limits, VERSION};
use crate::cgroup::{Cgroups, UNITS_DIR};
use crate::handover::Hint;
use crate::kmsg;
use crate::pid1::boot::RESCUE;
use crate::pid1::{now, Pid1};
use crate::proto::Origin;
use crate::sys::handover::take_fd;
use crate::unit::Ready;
use rustix::fd::AsFd;

impl Pid1 {
    /// With no state to name them, the fds the last PID 1 handed over (its
    /// units' pipes and sockets) are closed: left open without
    /// close-on-exec, each would go on into every unit started from here,
    /// and a unit's output pipe held and never read would stop the unit
    /// once full. Closed, a unit's next write ends it and it is started
    /// again with a pipe of its own. The watchdog is the exception: found
    /// by its ioctl, it is kept and fed, never closed (a driver without
    /// the magic close stops at a close, and the board would go unwatched
    /// until it is opened again). Every fd this PID 1 opened has
    /// close-on-exec, which `take_fd` leaves alone.
    pub(super) fn close_inherited(&mut self, opts: &crate::boot::cmdline::Options) {
        let secs = opts
            .watchdog
            .as_ref()
            .map_or(crate::boot::cmdline::WATCHDOG_TIMEOUT_S, |w| w.timeout_s);
        let listed =
            crate::sys::file::for_each_entry(std::path::Path::new("/proc/self/fd"), |n, _| {
                // Above stdin, stdout and stderr, which are not handed over.
                let Some(fd) = n
                    .to_str()
                    .and_then(wren_core::num::dec::<i32>)
                    .filter(|&n| n > 2)
                    .and_then(take_fd)
                else {
                    return;
                };
                if self.watchdog.is_none() && crate::sys::watchdog::is_watchdog(&fd).is_ok() {
                    let secs = crate::sys::watchdog::timeout(&fd).unwrap_or(secs);
                    self.take_watchdog(Some(fd), secs);
                }
            });
        if let Err(e) = listed {
            crate::error!("handover: cannot list the fds handed over: {e}; left open");
        }
    }

    /// The state cannot be read: load the unit directory and take every
    /// unit whose process runs as running, by the text layer's pids and
    /// fds, or else by its cgroup's processes that are PID 1's children.
    pub(super) fn adopt(
        &mut self,
        opts: &crate::boot::cmdline::Options,
        hints: &[Hint],
        format: u32,
    ) {
        // Booted with `wren.rescue`, but the units were loaded since (the
        // operator's reload after the repair) and run: taken from their
        // files, not left unsupervised for the rescue shell alone.
        let reloaded = hints
            .iter()
            .any(|h| h.pid != 0 && h.name.as_str() != RESCUE);
        self.load_units_or_rescue(opts, opts.rescue && !reloaded);
        let t = now();
        let mut n = 0u32;
        for i in 0..self.sup.len() {
            let Some(slot) = self.sup.slot(i as u16) else {
                continue;
            };
            let name = slot.def.name.clone();
            let ready = slot.def.ready;
            let hint = hints.iter().find(|h| h.name == name && h.pid != 0);
            // Without cgroups nothing but the hint names the unit's
            // process: PID 1's child, which no other process can be.
            let cg = self.cg.as_ref();
            let pid = hint
                .map(|h| h.pid)
                .filter(|&p| match cg {
                    Some(cg) => child_in_cgroup(cg, &name, p),
                    None => ppid(p) == Some(own_pid()),
                })
                .or_else(|| cg.and_then(|cg| main_pid(cg, &name)));
            let Some(pid) = pid else { continue };
            self.sup.adopt(i as u16, pid, t);
            n += 1;
            // The running cgroup holds what the last PID 1 wrote, not
            // what the file says now (it may have changed without a
            // reload): the next start writes the limits again.
            let exists = self.cgroup_exists(&name);
            let cgroup = exists.then(|| super::super::stale_limits(slot_limits(&self.sup, i)));
            let not_enforced = self.running_not_enforced(i as u16, exists);
            if let Some(e) = self.edges.get_mut(i) {
                e.not_enforced = not_enforced;
                if let Some(h) = hint.filter(|h| h.pid == pid) {
                    // The output pipe goes on into a new, empty ring,
                    // whatever `output` the file says now: the run was
                    // started with a pipe, and one closed here would kill
                    // it at its next write (SIGPIPE). The next start
                    // follows the file. A readiness pipe is of no use to a
                    // running unit, but an sd_notify socket still takes
                    // its WATCHDOG=1 pings (the supervisor's `adopt` arms
                    // the watchdog).
                    e.log_rd = take_fd(h.log_fd);
                    // A datagram socket only for a unit the file says is
                    // sd_notify's. An s6 readiness pipe is kept whatever
                    // the file says: a unit adopted while it starts writes
                    // its newline to it later, and a pipe closed here
                    // would kill it (SIGPIPE); `on_notify` reads it as
                    // the pipe it is, and lets it go at the newline or
                    // its end.
                    let notify = take_fd(h.notify_fd).and_then(|fd| {
                        let keep = match crate::sys::sockopt::socket_type(fd.as_fd()) {
                            Ok(t) => {
                                ready == Ready::SdNotify && t == rustix::net::SocketType::DGRAM
                            }
                            Err(_) => true,
                        };
                        // What is queued on one turned away goes to a closer;
                        // its file goes with it.
                        if keep {
                            return Some(fd);
                        }
                        super::super::event_loop::end_notify(None, Some(fd), &name, false);
                        None
                    });
                    e.notify = notify;
                    e.exit_report = take_fd(h.report_fd);
                }
                e.cgroup = cgroup;
            }
        }
        // Processes of units that are not in the directory any more: said,
        // not touched (their file may come back with the next reload).
        if let Some(cg) = self.cg.as_ref() {
            let by_name = self.sup.by_name();
            let _ = crate::sys::file::for_each_entry_at(cg.root_fd(), UNITS_DIR, |name, _| {
                let Some(name) = name.to_str() else { return };
                let mut any = false;
                cgroup_pids(cg, name, &mut |_| any = true);
                if self.sup.index_by(&by_name, name).is_none() && any {
                    crate::warn!("{name}: running without a unit file; left alone");
                    kmsg::console_line(format_args!(
                        "[ WARN ] {name}: running without a unit file, left alone"
                    ));
                }
            });
        }
        // fds of units no longer there: closed, so their writers see it.
        for h in hints {
            for f in [h.log_fd, h.report_fd] {
                drop(take_fd(f));
            }
            // A notify socket's queue, with any fds in it, to a closer;
            // its file goes with it.
            let fd = take_fd(h.notify_fd);
            super::super::event_loop::end_notify(None, fd, &h.name, false);
        }
        self.origin = Origin::Adopted { units: n, format };
        // Format 0: what was handed over is no state at all.
        let what: heapless::String<32> = match format {
            0 => crate::proto::formatted(format_args!("the state handed over")),
            f => crate::proto::formatted(format_args!("state format {f}")),
        };
        kmsg::console_line(format_args!(
            "[ WARN ] wren {VERSION} cannot read {what}: adopted {n} running units from the cgroup tree"
        ));
        crate::warn!("adopted {n} running units ({what} not readable)");
    }
}

/// The parent of `pid`, whether `pid` is ending or has ended
/// (`PF_EXITING` in its flags: a zombie not reaped yet, or a PID
/// namespace's init waiting in its exit for the namespace to empty), and
/// when it started (clock ticks since boot), from /proc/PID/stat (after
/// the command name, which may hold blanks and parentheses: the last `)`
/// ends it; the flags are the 7th field after it, the start the 20th).
fn parent(pid: u32) -> Option<(u32, bool, u64)> {
    let path: heapless::String<32> = crate::proto::formatted(format_args!("/proc/{pid}/stat"));
    let mut buf = [0u8; 512];
    let text = crate::sys::file::read_at(rustix::fs::CWD, &path, &mut buf).ok()?;
    let after = text.get(text.rfind(')')?.saturating_add(1)..)?;
    let mut w = after.split_whitespace();
    let ppid = wren_core::num::dec(w.nth(1)?)?;
    let flags = w.nth(4).and_then(wren_core::num::dec::<u32>);
    let start = w.nth(12).and_then(wren_core::num::dec::<u64>);
    let ending = flags.is_some_and(|f| f & PF_EXITING != 0);
    Some((ppid, ending, start.unwrap_or(0)))
}

/// The kernel's flag of a process that has begun its exit.
const PF_EXITING: u32 = 0x4;

fn ppid(pid: u32) -> Option<u32> {
    parent(pid).map(|(p, ..)| p)
}

/// `f` with every pid in the unit's cgroup and in those it made below it
/// (a unit that hands controllers to cgroups of its own, as a container
/// runtime does, has every process there, its main one too), however
/// many, in however many cgroups: a bounded list or walk would drop
/// some, the main one among them (once, at a re-exec).
fn cgroup_pids(cg: &Cgroups, name: &str, f: &mut dyn FnMut(u32)) {
    if let Ok(dir) = cg.unit_dir(name) {
        let all = crate::cgroup::kill::ALL_SUB_CGROUPS;
        let _ = crate::cgroup::kill::each_of_unit(dir.as_fd(), all, f);
    }
}

/// `pid` is PID 1's child in the unit's cgroup, or one that is ending
/// or has ended (one that has begun its exit leaves `cgroup.procs`; its
/// pid is no other process's until PID 1 reaps it).
fn child_in_cgroup(cg: &Cgroups, name: &str, pid: u32) -> bool {
    let Some((parent, ended, _)) = parent(pid) else {
        return false;
    };
    let mut found = ended;
    cgroup_pids(cg, name, &mut |p| found |= p == pid);
    found && parent == own_pid()
}

/// The unit's main process: the newest process in its cgroup that is
/// PID 1's child, by its start, then its pid (a service's own children
/// are not PID 1's; a PID namespace's reaper is; an older one is what a
/// run before left: a reaper holds on for up to a second after its
/// report, which PID 1 takes as its run's end).
fn main_pid(cg: &Cgroups, name: &str) -> Option<u32> {
    let mut main: Option<(u64, u32)> = None;
    cgroup_pids(cg, name, &mut |p| {
        if let Some((parent, _, start)) = parent(p) {
            if parent == own_pid() && main.is_none_or(|m| (start, p) > m) {
                main = Some((start, p));
            }
        }
    });
    main.map(|(_, p)| p)
}

/// This process's pid: 1, but for the host's tests.
fn own_pid() -> u32 {
    rustix::process::getpid()
        .as_raw_nonzero()
        .get()
        .unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{adopting, memfd, units_in};
    use crate::pid1::Pid1;
    use rustix::fd::IntoRawFd;

    const SLEEP: &str = "exec = /bin/sleep 60\n";

    /// `n` children of this process, `sleep 60`, started one after the
    /// other.
    fn sleeps(n: usize) -> Vec<std::process::Child> {
        let sleep = || std::process::Command::new("sleep").arg("60").spawn();
        (0..n).map(|_| sleep().unwrap()).collect()
    }

    fn end(kids: &mut [std::process::Child]) {
        for k in kids {
            let _ = k.kill();
            let _ = k.wait();
        }
    }

    /// `web` (its file saying `unit`) adopted by a new PID 1 on a cgroup
    /// root of plain files whose `units/web/cgroup.procs` is `procs`, from
    /// a state of another format that names `named` as its pid (0: none).
    /// The pid adopted.
    fn adopted_in_cgroup(unit: &str, procs: &str, named: u32) -> Option<u32> {
        let root = crate::testutil::TempDir::new("adopt-cg-root");
        root.file("units/web/cgroup.procs", procs);
        let units = crate::testutil::TempDir::new("adopt-cg-units");
        units.file("web.unit", unit);
        let text = format!("wren-state 999\nreexecs 1\nunit web {named} -1 -1 -1\nend\n");
        let cg = crate::cgroup::Cgroups::open(root.path()).unwrap();
        let mut p = Pid1::new(Some(cg), 0, false);
        p.resume(memfd(text.as_bytes()), &units_in(units.path()));
        p.sup.slot(0).map(|s| s.rt.pid)
    }

    /// A build of another state format adopts under the cgroup root PID 1
    /// was given, not under `/sys/fs/cgroup` whatever it was given: a
    /// running `web`, in `units/web` of a root of plain files, adopted by
    /// the pid the text layer names and, with no pid named, by its
    /// cgroup's processes (the newest that is PID 1's child: pid 1 is
    /// not the test's).
    #[test]
    fn an_adoption_looks_under_its_own_cgroup_root() {
        let mut kids = sleeps(1);
        let pid = kids[0].id();
        let procs = format!("1\n{pid}\n");
        let got = [pid, 0].map(|named| adopted_in_cgroup(SLEEP, &procs, named));
        end(&mut kids);
        assert_eq!(got, [Some(pid), Some(pid)], "named, then by its cgroup");
    }

    /// In a cgroup hierarchy the pid named is the unit's only when its
    /// cgroup lists it (or it has ended): named, the older of two
    /// children there is adopted, not the newest; a live child of PID 1
    /// named but not in the cgroup is not, and the unit is found by its
    /// cgroup (the newest child there).
    #[test]
    fn a_named_pid_is_taken_only_from_the_units_cgroup() {
        let mut kids = sleeps(3);
        let (old, new, outside) = (kids[0].id(), kids[1].id(), kids[2].id());
        let procs = format!("{new}\n{old}\n");
        let got = [old, outside].map(|named| adopted_in_cgroup(SLEEP, &procs, named));
        end(&mut kids);
        assert_eq!(got, [Some(old), Some(new)]);
    }

    /// Found by its cgroup alone (no pid named), a unit is its newest
    /// child of PID 1 there, not the lowest pid: an older one is what a
    /// run before left (a PID namespace's reaper holds on for up to a
    /// second after its report, which PID 1 took as that run's end, and
    /// the next run starts beside it). Adopted, it made the new PID 1
    /// take its exit for the unit's, and start a second instance beside
    /// the one running. The pid1 walk, seed 234 (release).
    #[test]
    fn a_unit_found_by_its_cgroup_is_its_newest_child_of_pid1() {
        let mut kids = sleeps(2);
        let (old, new) = (kids[0].id(), kids[1].id());
        let got = adopted_in_cgroup(SLEEP, &format!("{old}\n{new}\n"), 0);
        end(&mut kids);
        assert_eq!(got, Some(new), "the older process ({old}) adopted");
    }

    /// In a cgroup hierarchy, a unit whose process ended just before the
    /// re-exec (a zombie, not reaped yet: the kernel lists it in no
    /// cgroup's `cgroup.procs`) is adopted by the pid the text layer
    /// names, as without cgroups, so that its end is reaped as the
    /// unit's. It was not: the new PID 1 took the unit as never started
    /// and started it again (a oneshot that had run ran twice, a failure
    /// was not counted).
    #[test]
    fn a_unit_that_ended_before_the_reexec_is_adopted_in_a_cgroup() {
        use rustix::process::{waitid, Pid, WaitId, WaitIdOptions};
        crate::testutil::alone!(a_unit_that_ended_before_the_reexec_is_adopted_in_a_cgroup);
        let mut kids = sleeps(1);
        let pid = kids[0].id();
        kids[0].kill().unwrap();
        // Ended, left unreaped.
        let ended = Pid::from_raw(pid as i32).map(WaitId::Pid).unwrap();
        waitid(ended, WaitIdOptions::EXITED | WaitIdOptions::NOWAIT).unwrap();
        let adopted = adopted_in_cgroup(SLEEP, "", pid);
        end(&mut kids);
        assert_eq!(adopted, Some(pid), "the ended unit not adopted");
    }

    /// So too a unit's PID namespace reaper killed just before the
    /// re-exec and still ending: it waits in its exit for its namespace
    /// to empty (here a process made in it from outside, ended and not
    /// reaped, keeps it so), out of its cgroup's `cgroup.procs` already
    /// and not a zombie yet. The pid1 walk, seed 106 of 200 (release).
    #[test]
    fn an_ending_namespace_reaper_is_adopted_in_a_cgroup() {
        use rustix::process::{waitpid, Pid, Signal, WaitOptions};
        use std::time::{Duration, Instant};
        crate::testutil::alone!(an_ending_namespace_reaper_is_adopted_in_a_cgroup);
        // Entering a PID namespace takes root.
        if !rustix::process::geteuid().is_root() {
            return;
        }
        // The namespace's init as this process's child: `unshare` forks
        // it and is killed; this process, a subreaper, inherits it.
        rustix::process::set_child_subreaper(Some(rustix::process::getpid())).unwrap();
        let mut outer = std::process::Command::new("unshare")
            .args(["--pid", "--fork", "sleep", "60"])
            .spawn()
            .unwrap();
        let children = format!("/proc/{0}/task/{0}/children", outer.id());
        let deadline = Instant::now() + Duration::from_secs(5);
        let stat = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/stat"));
        let till = |what: &str, done: &mut dyn FnMut() -> bool| {
            while !done() {
                assert!(Instant::now() < deadline, "{what}");
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        let mut reaper = 0;
        till("unshare made no child", &mut || {
            let text = std::fs::read_to_string(&children).unwrap_or_default();
            reaper = text
                .split_whitespace()
                .next()
                .map_or(0, |p| p.parse().unwrap());
            reaper != 0
        });
        outer.kill().unwrap();
        outer.wait().unwrap();
        let ns = std::fs::File::open(format!("/proc/{reaper}/ns/pid")).unwrap();
        let ns_type = Some(rustix::thread::LinkNameSpaceType::ProcessID);
        rustix::thread::move_into_link_name_space(rustix::fd::AsFd::as_fd(&ns), ns_type).unwrap();
        let mut inside = std::process::Command::new("true").spawn().unwrap();
        till("true did not end", &mut || {
            stat(inside.id()).is_ok_and(|s| s.contains(") Z "))
        });
        let pid = Pid::from_raw(reaper as i32).unwrap();
        rustix::process::kill_process(pid, Signal::KILL).unwrap();
        // Ending (PF_EXITING in its flags), not ended.
        till("the reaper did not begin its exit", &mut || {
            crate::testutil::exiting(reaper)
        });
        let ending = stat(reaper).unwrap();
        let unit = "exec = /bin/sleep 60\nnamespaces = pid\n";
        let adopted = adopted_in_cgroup(unit, "", reaper);
        let _ = inside.wait();
        let _ = waitpid(Some(pid), WaitOptions::empty());
        assert!(!ending.contains(") Z "), "{ending}");
        assert_eq!(adopted, Some(reaper), "the ending reaper not adopted");
    }

    /// A build of another state format that adopts a running unit but not
    /// its sd_notify socket (its file says no more sd_notify, or is gone:
    /// the file a reload rejected, or removed) closes that socket: its
    /// file in /run goes with it, as at a run's end (`end_notify`). It
    /// was left there for good (the pid1 walk, seed 11).
    #[test]
    fn an_adoption_that_closes_a_notify_socket_removes_its_file() {
        let name = format!("adopted{}", std::process::id());
        std::fs::create_dir_all(crate::vocab::NOTIFY_DIR).unwrap();
        let path = crate::pid1::executor::notify_path(&name);
        for file in [Some("exec = /bin/sleep 60\n"), None] {
            let units = crate::testutil::TempDir::new("adopt-notify");
            if let Some(text) = file {
                units.file(&format!("{name}.unit"), text);
            }
            let sock = std::os::unix::net::UnixDatagram::bind(path.as_str()).unwrap();
            // As handed over: inherited across the exec.
            rustix::io::fcntl_setfd(&sock, rustix::io::FdFlags::empty()).unwrap();
            let n = sock.into_raw_fd();
            let (p, _) = adopting(units.path(), &name, &format!("-1 {n} -1"));
            let left = std::path::Path::new(path.as_str()).exists();
            let _ = std::fs::remove_file(path.as_str());
            assert!(!left, "{path} left, the unit's file {file:?}");
            assert!(p.edges.iter().all(|e| e.notify.is_none()));
        }
    }
}
