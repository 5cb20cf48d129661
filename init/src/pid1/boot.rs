//! The boot steps before the loop: signals blocked, early mounts, kernel
//! options and logging, the hostname, cgroups, then the unit table (or the
//! rescue shell when there is no valid unit).

use super::{Edge, Pid1};
use crate::boot::{cmdline, mounts};
use crate::cgroup::Cgroups;
use crate::config;
use crate::kmsg;
use crate::sys::file::{read_at, write_at};
use crate::unit::{self, Output, UnitDef};
use crate::vocab::CGROUP_ROOT;
use nix::sys::signal::SigSet;
use std::path::Path;

/// Records of steps 1 and 2, made before the logger is up (it needs the
/// kernel options, which need /proc), logged once it is.
#[derive(Default)]
struct Held {
    records: heapless::Vec<(log::Level, heapless::String<160>), 8>,
    more: u32,
}

impl Held {
    fn push(&mut self, level: log::Level, args: core::fmt::Arguments<'_>) {
        if self
            .records
            .push((level, crate::proto::formatted(args)))
            .is_err()
        {
            self.more = self.more.saturating_add(1);
        }
    }

    fn log(&self) {
        for (level, text) in self.records.iter() {
            kmsg::record(*level, format_args!("{text}"));
        }
        if self.more > 0 {
            crate::error!("boot: {} more records before the logger", self.more);
        }
    }
}

/// Steps 1 to 5: what must be up before there are units. Returns the
/// kernel options, the blocked signal mask (for the signalfd) and the
/// cgroup hierarchy if it could be set up. `resumed`: a re-exec, which
/// leaves the hostname and the sysctl settings as they are (an operator
/// or a unit may have changed them since the boot).
pub(super) fn early(resumed: bool) -> (cmdline::Options, SigSet, Option<Cgroups>) {
    // Step 1: signals. Blocked before anything else so that none is lost
    // or delivered with a default action while we boot.
    let mask = SigSet::all();
    let _ = mask.thread_block();
    let mut held = Held::default();
    // What ignored a signal before exec'ing init ignored it for every unit
    // without a PID namespace of its own, SIGCHLD for PID 1's reaping.
    let ignored = crate::sys::signal::default_the_ignored();
    if ignored > 0 {
        held.push(
            log::Level::Info,
            format_args!("{ignored} signal(s) ignored at the start given their default action"),
        );
    }
    // Ctrl-Alt-Del would reboot the kernel at once, with nothing stopped
    // or synced: the kernel sends it to PID 1 as SIGINT instead, a clean
    // reboot (docs/boot.md, "Signals to PID 1").
    if let Err(e) = rustix::system::reboot(rustix::system::RebootCommand::CadOff) {
        held.push(
            log::Level::Warn,
            format_args!("reboot(CAD_OFF): {e}; Ctrl-Alt-Del reboots without a sync"),
        );
    }
    let _ = mounts::ensure_console_fds();
    // Step 2: early mounts (/proc first; everything after reads it).
    mounts::early_mounts(Path::new("/proc/self/mounts"), &mut |e| {
        held.push(log::Level::Error, format_args!("mount: {e}"))
    });
    // Every mount shared, as systemd makes them: a unit's mount namespace,
    // a one-way copy of PID 1's (`spawn::sandbox`), then sees what is
    // mounted after its start (a USB stick, the data partition of a
    // `mounts` unit it did not wait for), and an unmount reaches its copy,
    // which otherwise kept the file system alive and unsynced after the
    // operator's `umount` said it was done.
    let shared = rustix::mount::MountPropagationFlags::SHARED;
    let rec = rustix::mount::MountPropagationFlags::REC;
    if let Err(e) = rustix::mount::mount_change(c"/", rec | shared) {
        held.push(
            log::Level::Warn,
            format_args!("make / shared: {e}; units do not see later mounts"),
        );
    }
    // An initramfs without /dev/console starts us with no stdio at all.
    if mounts::ensure_console_fds().is_err() {
        let _ = mounts::hold_std_fds();
    }
    // Step 3: options and logging. /dev/kmsg rate-limits each writer to
    // 10 lines per 5 s by default, which would drop PID 1's own records in
    // a crash loop; lift it unless the command line fixed the setting
    // (then the kernel refuses the write, which is fine).
    let _ = write_at(rustix::fs::CWD, "/proc/sys/kernel/printk_devkmsg", b"on\n");
    let opts = read_cmdline();
    kmsg::set_quiet(opts.quiet);
    crate::info!("starting (pid 1)");
    held.log();
    // On one CPU PID 1, woken by a unit's exec, would preempt the service
    // it just started; as SCHED_BATCH it still gets its fair share but
    // lets the running task finish its slice (docs/boot.md, step 3).
    if let Err(e) = crate::sys::sched::batch() {
        crate::warn!("sched_setscheduler(SCHED_BATCH): {e}; PID 1 preempts the units it starts");
    }
    // Not dumpable: the children that share PID 1's memory until their
    // exec (on spawn slots, a reaper's vfork) share the flag, and before
    // Linux 5.16 a core dump of one of them (a fault, a SIGQUIT from the
    // console) killed every process sharing its memory, PID 1 with it: a
    // kernel panic. Not dumpable, the kernel gives the dump up before
    // that. A unit's program is dumpable again from its exec.
    let not_dumpable = rustix::process::DumpableBehavior::NotDumpable;
    if let Err(e) = rustix::process::set_dumpable_behavior(not_dumpable) {
        crate::warn!("prctl(PR_SET_DUMPABLE, 0): {e}");
    }
    // Pages once touched stay (none brought in for it): an evicted page
    // of PID 1's text, read again from a card that does not answer, would
    // hold the loop (docs/field.md). Before the spawn slots and the
    // reserve are mapped: those give their pages back, which a locked
    // mapping refuses.
    if let Err(e) = crate::sys::alloc::lock_when_touched() {
        crate::warn!("mlockall: {e}; PID 1's pages may be evicted and read again from disk");
    }
    // The allocator's reserve, for the little a rare event allocates when
    // malloc refuses it (docs/field.md, "Strict overcommit").
    if !crate::sys::alloc::arm_reserve() {
        crate::warn!("no memory reserve could be mapped: a refused allocation ends PID 1");
    }
    if !resumed {
        set_hostname();
        // Step 4: kernel tuning, before any unit runs with the defaults.
        let tuned =
            crate::boot::sysctl::apply(Path::new("/etc"), Path::new("/proc/sys"), &mut |f| {
                crate::error!("sysctl: {f}")
            });
        if tuned.set + tuned.failed > 0 {
            crate::info!("sysctl: {} set, {} failed", tuned.set, tuned.failed);
        }
    }
    // Step 5: cgroups.
    let cg = match Cgroups::setup(Path::new(CGROUP_ROOT)) {
        Ok(c) => Some(c),
        Err(e) => {
            // Said once; units then run without cgroups (executor).
            let found = crate::cgroup::missing::diagnose(Path::new(CGROUP_ROOT));
            crate::error!(
                "{}",
                crate::cgroup::missing::Message {
                    root: CGROUP_ROOT,
                    found,
                    error: Some(&e),
                }
            );
            None
        }
    };
    // The stack on which namespace reapers start their services
    // (`sys::vfork`); without it each maps its own.
    if let Err(e) = crate::sys::vfork::reserve() {
        crate::warn!("mmap of the reapers' service stack: {e}");
    }
    // The slots on which units start sharing PID 1's memory
    // (`sys::slot`); without them every start forks.
    if let Err(e) = crate::sys::slot::reserve() {
        crate::warn!("mmap of the spawn slots: {e}; every start forks");
    }
    // Others may pass through to their own notify socket (mode 0600, one
    // per unit, owned by the unit's user), not list them; the control
    // socket is 0600 and checks its peer.
    // As `&CStr`s: no copy of rustix's conversion of a path in its
    // `mkdir` and `chmod`, generic over the path's type.
    for dir in [crate::vocab::RUN_DIR_C, crate::vocab::NOTIFY_DIR_C] {
        let mode = rustix::fs::Mode::from_raw_mode(0o711);
        let _ = rustix::fs::mkdir(dir, mode);
        let _ = rustix::fs::chmod(dir, mode);
    }
    (opts, mask, cg)
}

/// The kernel command line, with the logger started at the level it asks
/// for (the one place `kmsg::init` is called).
fn read_cmdline() -> cmdline::Options {
    let mut buf = [0u8; 4096];
    let read = cmdline::read_text(&mut buf);
    let text = *read.as_ref().unwrap_or(&"");
    // Warnings wait until the logger is up, so collect the first few.
    let mut warnings: heapless::Vec<(heapless::String<64>, &'static str), 4> = heapless::Vec::new();
    let mut more = 0u32;
    let opts = cmdline::parse(text, &mut |tok, why| {
        if warnings.push((crate::proto::truncated(tok), why)).is_err() {
            more = more.saturating_add(1);
        }
    });
    kmsg::init(opts.debug);
    kmsg::unblock_stderr();
    if let Err(e) = read {
        crate::error!("/proc/cmdline: {e}; no kernel option of wren's is read");
    }
    for (tok, why) in warnings.iter() {
        crate::warn!("kernel option `{tok}`: {why}");
    }
    if more > 0 {
        crate::warn!("kernel options: {more} more not understood");
    }
    opts
}

fn set_hostname() {
    let mut buf = [0u8; 512];
    let name = match read_at(rustix::fs::CWD, "/etc/hostname", &mut buf) {
        Ok(text) => hostname_of(text),
        Err(rustix::io::Errno::NOENT) => return,
        Err(e) => Err(e),
    };
    match name {
        Ok(Some(name)) => {
            if let Err(e) = rustix::system::sethostname(name.as_bytes()) {
                crate::warn!("/etc/hostname: sethostname: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => crate::warn!("/etc/hostname: {e}; the hostname is left as it is"),
    }
}

/// The name in `/etc/hostname`'s text, as hostname(5) and BusyBox's
/// `hostname -F` read it: the first line that is neither blank nor a `#`
/// comment, trimmed. One over the kernel's 64 bytes is refused rather
/// than cut (or the file's comment and name set as one).
fn hostname_of(text: &str) -> Result<Option<&str>, rustix::io::Errno> {
    let name = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    match name {
        Some(n) if n.len() > 64 => Err(rustix::io::Errno::NAMETOOLONG),
        n => Ok(n),
    }
}

/// The rescue shell: a console unit that always comes back.
/// The rescue shell's unit name.
pub(super) const RESCUE: &str = "rescue";

pub(super) fn rescue_unit() -> UnitDef {
    let mut d = UnitDef::with_defaults(RESCUE);
    let _ = d.exec.push("/bin/sh");
    let _ = d.description.push_str("emergency shell");
    d.console = true;
    d.output = Output::Console;
    d.namespaces = unit::Namespaces::NONE;
    d.restart_delay = 1000;
    d
}

impl Pid1 {
    pub(super) fn load_units(&mut self, opts: &cmdline::Options) {
        self.load_units_or_rescue(opts, opts.rescue);
    }

    /// `load_units`, the rescue shell alone if `rescue`.
    pub(super) fn load_units_or_rescue(&mut self, opts: &cmdline::Options, rescue: bool) {
        // Kept with `wren.rescue` too: the reload that follows the repair
        // reads the directory `check` and `edit` wrote.
        let dir = opts.units_dir();
        self.units_dir = heapless::String::try_from(dir).unwrap_or_default();
        if rescue {
            crate::warn!("wren.rescue given, starting rescue shell");
        } else {
            let mut defs: Vec<UnitDef> = Vec::new();
            config::load_dir_booting(Path::new(dir), &mut defs, &mut |e| crate::error!("{e}"));
            self.sup.reserve(defs.len());
            self.edges.reserve_exact(defs.len());
            for d in defs.into_iter() {
                self.add_unit(d);
            }
            if let Err((u, _)) = self.sup.link() {
                crate::error!("unit {u}: unresolved dependency");
            }
            if self.sup.is_empty() {
                crate::warn!("no valid unit, starting rescue shell (unit directory {dir})");
            } else {
                crate::info!("{} units loaded from {dir}", self.sup.len());
            }
        }
        if self.sup.is_empty() {
            self.add_unit(rescue_unit());
            let _ = self.sup.link();
        }
    }

    /// Once at boot, for the units loaded: what they ask of the kernel
    /// that it lacks, with how to turn it on (each start that fails for it
    /// says so again, in the unit's status).
    pub(super) fn report_kernel_gaps(&self) {
        let userns = (0..self.sup.len())
            .filter_map(|i| self.sup.slot(i as u16))
            .filter(|s| s.def.namespaces.has(crate::unit::Namespaces::USER))
            .count();
        if userns == 0 {
            return;
        }
        let Ok(proc) = rustix::fs::openat(
            rustix::fs::CWD,
            c"/proc",
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) else {
            return;
        };
        if let Err((cause, remedy)) = crate::boot::kernel::user_namespaces(&proc) {
            crate::error!(
                "{userns} units with `user` in namespaces cannot start: {cause}; {remedy}"
            );
        }
    }

    /// A unit into the table at boot, with its edge state beside it.
    pub(super) fn add_unit(&mut self, d: UnitDef) {
        let edge = Edge::new(&d);
        if self.sup.add(d).is_ok() {
            self.edges.push(edge);
        }
    }

    /// `units/` must hold the protection its units ask for (see
    /// `Cgroups::set_units_protection`).
    pub(super) fn apply_protection(&self) {
        if let Some(cg) = self.cg.as_ref() {
            let (low, min) = self.sup.protection();
            if let Err(e) = cg.set_units_protection(low, min) {
                crate::warn!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `/etc/hostname` as hostname(5) reads it: comments and blank lines
    /// skipped, the first name taken; a name over 64 bytes refused.
    #[test]
    fn hostname_is_the_first_line_that_is_not_a_comment() {
        assert_eq!(
            hostname_of("# managed by X\n\n  edge-7 \nother\n"),
            Ok(Some("edge-7"))
        );
        assert_eq!(hostname_of("pi\n"), Ok(Some("pi")));
        assert_eq!(hostname_of("# only a comment\n\n"), Ok(None));
        assert_eq!(hostname_of(""), Ok(None));
        let long = "x".repeat(65);
        assert_eq!(hostname_of(&long), Err(rustix::io::Errno::NAMETOOLONG));
        assert_eq!(hostname_of(&long[..64]), Ok(Some(&long[..64])));
    }

    #[test]
    fn rescue_unit_is_a_console_shell_that_comes_back() {
        let d = rescue_unit();
        assert_eq!(d.exec.first(), Some("/bin/sh"));
        assert!(d.console);
        assert_eq!(d.restart, unit::Restart::Always);
        assert_eq!(d.namespaces, unit::Namespaces::NONE);
    }

    /// Under `wren.rescue`, `wren.units` is still where a reload reads
    /// (and a rejected file goes): the directory the operator repairs.
    #[test]
    fn the_rescue_shell_keeps_the_unit_directory() {
        let opts = cmdline::parse("wren.rescue wren.units=/data/units", &mut |_, _| {});
        let mut p = Pid1::new(None, 0, false);
        p.load_units(&opts);
        assert_eq!(p.sup.slot(0).map(|s| s.def.name.as_str()), Some("rescue"));
        assert_eq!(p.units_dir.as_str(), "/data/units");
    }

    /// The reload that follows a repair, typed in the rescue shell, keeps
    /// the shell running (stopping it killed that `initctl` and left the
    /// console without a shell); the repaired directory's units are added.
    /// A `rescue.unit` of the directory takes its place.
    #[test]
    fn a_reload_keeps_the_rescue_shell() {
        use super::super::tests::{step, NO_PID};
        use crate::supervisor::{Event, Phase, Retired};
        let t = crate::testutil::TempDir::new("rescue-reload");
        let dir = t.path().display();
        let opts = cmdline::parse(&format!("wren.rescue wren.units={dir}"), &mut |_, _| {});
        let mut p = Pid1::new(None, 0, false);
        p.load_units(&opts);
        p.fit_tables();
        step(&mut p, 0, Event::Boot);
        step(&mut p, 1, Event::spawned(0, NO_PID));
        t.file("web.unit", "exec = /bin/true\nready = notify\n");
        let mut said = Vec::new();
        assert!(
            p.reload(&mut |l| said.push(l.to_owned())).is_ok(),
            "{said:?}"
        );
        let s = p.sup.slot(0).unwrap();
        assert_eq!(s.def.name.as_str(), "rescue");
        assert!(s.retired == Retired::No && s.rt.phase == Phase::Running);
        assert!(
            p.sup.index("web").is_some(),
            "the directory's unit not added"
        );
        // The directory's own rescue unit replaces it.
        t.file("rescue.unit", "exec = /bin/true\nready = notify\n");
        assert!(p.reload(&mut |_| {}).is_ok());
        let s = p.sup.slot(0).unwrap();
        assert_ne!(s.def, rescue_unit(), "the file's rescue unit not taken");
    }
}
