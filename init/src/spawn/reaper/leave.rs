//! A reaper's leave (`Leave`): what it needs to start its service again
//! itself, how that travels across its exec (`state`, `leave_from`), and
//! the start in place (`relaunch`).

use crate::vocab::Exit;
use nix::sys::signal::Signal;

/// A run lasts this long at least for its reaper to start the next one
/// in place: a shorter one may be a crash loop, which PID 1 judges (its
/// backoff, its start limit).
pub(super) const UP_FLOOR_NS: u64 = crate::vocab::QUICK_RUN_MS * 1_000_000;

/// What a reaper needs to start its service again itself
/// (`UnitDef::relaunches_in_place`), given at its exec by the fork of
/// PID 1 that made it: the service's argv and environment travel as the
/// exec'd reaper's own (argv after its name and the working directory;
/// the environment after `WREN_REAPER`, whose fields after the first
/// three carry the rest). It lasts until the reaper gets any signal (a
/// stop from PID 1 above all) or a start fails; without it the reaper
/// reports the end and exits, and PID 1 restarts the unit.
#[derive(Clone, Copy)]
pub(in crate::spawn) struct Leave<'a> {
    /// `restart = on-failure`: not after exit 0.
    pub on_failure: bool,
    pub nofile: (u64, u64),
    pub privs: crate::spawn::privs::Privs<'a>,
}

/// A `Leave` with the service's argv and environment, as the fork of
/// PID 1 has them before the reaper's exec.
pub(in crate::spawn) struct Again<'a> {
    pub leave: Leave<'a>,
    pub workdir: &'a str,
    pub argv: &'a crate::spawn::ArgTable,
    pub env: &'a crate::spawn::EnvTable,
}

/// `WREN_REAPER=` and its fields: three numbers, then with a leave six
/// more and the groups.
pub(super) const STATE_MAX: usize = 96 + 11 * crate::config::users::GROUPS_MAX;

impl Leave<'_> {
    pub(super) fn allows(&self, exit: Exit, up_ns: u64) -> bool {
        up_ns >= UP_FLOOR_NS && !(self.on_failure && exit.success())
    }
}

/// `WREN_REAPER=SERVICE,REPORT_FD,NICE+20`, and with a leave its fields
/// (`leave_from`); None if they do not fit.
pub(super) fn state(
    service: u32,
    fd: i32,
    nice20: i32,
    again: Option<&Again<'_>>,
) -> Option<heapless::String<STATE_MAX>> {
    use core::fmt::Write as _;
    let mut s = heapless::String::new();
    write!(s.as_mut_view(), "{}={service},{fd},{nice20}", super::ENV).ok()?;
    if let Some(a) = again {
        let (l, p) = (&a.leave, &a.leave.privs);
        let flags = u8::from(l.on_failure)
            | u8::from(p.uid.is_some()) << 1
            | u8::from(p.gid.is_some()) << 2
            | u8::from(p.no_new_privs) << 3
            | u8::from(p.userns) << 4;
        write!(
            s.as_mut_view(),
            ",{flags},{},{},{},{},{}",
            l.nofile.0,
            l.nofile.1,
            p.uid.unwrap_or(0),
            p.gid.unwrap_or(0),
            p.keep.0
        )
        .ok()?;
        for g in p.groups {
            write!(s.as_mut_view(), ",{g}").ok()?;
        }
    }
    Some(s)
}

/// The leave `state` wrote after the first three fields, if any, the
/// groups into `groups` (the working directory is argv[1]: `relaunch`).
pub(super) fn leave_from<'a>(
    fields: &mut core::str::Split<'_, char>,
    groups: &'a mut [u32; crate::config::users::GROUPS_MAX],
) -> Option<Leave<'a>> {
    // flags, soft, hard, uid, gid, kept capabilities.
    let mut v = [0u64; 6];
    for x in v.iter_mut() {
        *x = wren_core::num::dec::<u64>(fields.next()?)?;
    }
    let [flags, soft, hard, uid, gid, keep] = v;
    let mut n = 0;
    for (slot, g) in groups.iter_mut().zip(fields.by_ref()) {
        *slot = wren_core::num::dec::<u32>(g)?;
        n += 1;
    }
    if fields.next().is_some() {
        return None;
    }
    let bit = |b: u8| flags & (1 << b) != 0;
    Some(Leave {
        on_failure: bit(0),
        nofile: (soft, hard),
        privs: crate::spawn::privs::Privs {
            uid: bit(1).then_some(u32::try_from(uid).ok()?),
            gid: bit(2).then_some(u32::try_from(gid).ok()?),
            groups: groups.get(..n)?,
            keep: crate::unit::Caps(keep),
            no_new_privs: bit(3),
            userns: bit(4),
        },
    })
}

/// Whether a signal that rt_sigtimedwait would take after SIGCHLD is
/// pending (it takes the lowest number first, and REVOKE, as a stop
/// signal may be, is numbered above it): PID 1 sent it before the service
/// died, and it ends the leave. Asked only with a leave that allows the
/// restart: a reaper without one makes no call for it.
pub(super) fn signalled() -> bool {
    crate::sys::signal::pending()
        .map_or(true, |set| set & !(1 << (Signal::SIGCHLD as i32 - 1)) != 0)
}

/// Start the service again (`spawn::relaunched`), nothing of the last run
/// left in the namespace: the new service's pid, or None when it could
/// not exec (the failed child reaped).
pub(super) fn relaunch(leave: &Leave<'_>) -> Option<i32> {
    let workdir = crate::sys::entry::arg(1)?;
    let failed = core::cell::Cell::new(None);
    // A vfork, as the first start's (`spawn::reaper_child`): the child
    // shares this memory until its exec, and says here that it failed.
    let pid = crate::sys::vfork::spawn(|| {
        failed.set(Some(relaunched(workdir, &leave.privs, leave.nofile)));
    })
    .ok()?;
    let pid = i32::try_from(pid).ok()?;
    if let Some(e) = failed.get() {
        // Said in the unit's output (fd 1): PID 1 sees only the last
        // run's end, and its own start, if it works, would leave the
        // failure untold.
        let line: heapless::String<160> = crate::proto::formatted(format_args!(
            "wren-reaper: restart in place: {e}; PID 1 starts it\n"
        ));
        let _ = rustix::io::write(rustix::stdio::stdout(), line.as_bytes());
        super::empty_namespace();
        return None;
    }
    Some(pid)
}

/// The service started again by its exec'd reaper, in the namespaces it
/// keeps (`relaunch`): `child`'s steps after the namespaces, from
/// what the reaper holds. Its fd 0 is /dev/null and its fd 1 the unit's
/// output, /dev/null or the log pipe (`settle_stdio`), which is
/// the service's stderr too; its argv and environment are the reaper's
/// own past its state (`sys::entry::exec_own`). Returns only on failure.
fn relaunched(
    workdir: &core::ffi::CStr,
    p: &crate::spawn::privs::Privs<'_>,
    nofile: (u64, u64),
) -> crate::spawn::SpawnError {
    let fail = |step, e: rustix::io::Errno| crate::spawn::SpawnError {
        step,
        errno: e.raw_os_error(),
    };
    if let Err((step, e)) = crate::spawn::own_session() {
        return fail(step, e);
    }
    if let Err(e) = rustix::stdio::dup2_stderr(rustix::stdio::stdout()) {
        return fail(crate::spawn::Step::Stdio, e);
    }
    if let Err(e) = rustix::process::chdir(workdir) {
        return fail(crate::spawn::Step::Chdir, e);
    }
    crate::spawn::unit_nofile(nofile);
    if let Err((step, e)) = crate::spawn::privs::confine(p, None) {
        return fail(step, e);
    }
    fail(crate::spawn::Step::Exec, crate::sys::entry::exec_own(2, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leave_round_trips_through_the_reapers_state() {
        let groups = [10, 20, 30];
        let argv = crate::spawn::ArgTable::new();
        let env = crate::spawn::EnvTable::new();
        let again = Again {
            leave: Leave {
                on_failure: true,
                nofile: (1024, 4096),
                privs: crate::spawn::privs::Privs {
                    uid: Some(1000),
                    gid: None,
                    groups: &groups,
                    keep: crate::unit::Caps(1 << 10 | 1 << 40),
                    userns: false,
                    no_new_privs: true,
                },
            },
            workdir: "/srv",
            argv: &argv,
            env: &env,
        };
        let s = state(7, 12, 20, Some(&again)).unwrap();
        let fields = s.strip_prefix("WREN_REAPER=7,12,20,").unwrap();
        let mut back = [0u32; crate::config::users::GROUPS_MAX];
        let l = leave_from(&mut fields.split(','), &mut back).unwrap();
        assert!(l.on_failure);
        assert_eq!(l.nofile, (1024, 4096));
        let p = l.privs;
        assert_eq!((p.uid, p.gid, p.groups), (Some(1000), None, &groups[..]));
        assert_eq!(p.keep.0, 1 << 10 | 1 << 40);
        assert!(p.no_new_privs && !p.userns);
        // Too long a leave (every field at its widest) is none: the
        // three numbers still fit, and `exec` passes them alone.
        let wide = [u32::MAX; crate::config::users::GROUPS_MAX];
        let mut huge = Again {
            leave: Leave {
                nofile: (u64::MAX, u64::MAX),
                ..again.leave
            },
            ..again
        };
        huge.leave.privs.groups = &wide;
        huge.leave.privs.keep = crate::unit::Caps(u64::MAX);
        assert!(state(u32::MAX, i32::MAX, 39, Some(&huge)).is_none());
        assert!(state(u32::MAX, i32::MAX, 39, None).is_some());
        // Without a leave, the three numbers alone.
        assert_eq!(
            state(7, 12, 20, None).unwrap().as_str(),
            "WREN_REAPER=7,12,20"
        );
        // A field missing or one too many is no leave.
        assert!(leave_from(&mut "1,0,1,2,3".split(','), &mut back).is_none());
        let many = format!("0,0,0,0,0,0{}", ",1".repeat(40));
        assert!(leave_from(&mut many.split(','), &mut back).is_none());
    }

    /// A run shorter than a second, or a clean exit under `on-failure`,
    /// is PID 1's to restart.
    #[test]
    fn a_leave_allows_only_a_long_enough_run_its_policy_restarts() {
        let groups = [];
        let mut l = Leave {
            on_failure: false,
            nofile: (0, 0),
            privs: crate::spawn::privs::Privs {
                uid: None,
                gid: None,
                groups: &groups,
                keep: crate::unit::Caps::ALL,
                userns: false,
                no_new_privs: false,
            },
        };
        assert!(l.allows(Exit::Signal(9), UP_FLOOR_NS));
        assert!(!l.allows(Exit::Signal(9), UP_FLOOR_NS - 1));
        assert!(l.allows(Exit::Code(0), UP_FLOOR_NS));
        l.on_failure = true;
        assert!(!l.allows(Exit::Code(0), UP_FLOOR_NS));
        assert!(l.allows(Exit::Code(1), UP_FLOOR_NS));
    }
}
