//! The typed writer of cgroup v2 files (youki libcgroups style): every
//! cgroup file wren touches is named here, written once with a formatted
//! value and read through a fixed stack buffer.
//!
//! Layout (docs/boot.md, "Cgroups"): unit `NAME` runs in `ROOT/units/NAME`, with
//! `ROOT` normally `/sys/fs/cgroup`. `Cgroups` keeps directory fds of `ROOT`
//! and `ROOT/units`, so steady-state operations are `openat` calls with
//! short relative paths and allocate nothing. Tests point `ROOT` at a
//! fixture directory of plain files.

use core::fmt::{self, Write as _};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use heapless::String;
use rustix::fs::{AtFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::proto::truncated;
use crate::sys::errno::Os;
use crate::sys::file::{read_kernel_at, write_at};
use crate::unit::{Limit, Limits};
use crate::vocab::{valid_name, Name};

/// Subdirectory of the cgroup root holding one cgroup per unit.
pub const UNITS_DIR: &str = "units";
/// `UNITS_DIR` as a C string, for its mkdir.
const UNITS_DIR_C: &core::ffi::CStr = c"units";

/// Bytes read from a cgroup file; the files read here are a few lines.
const READ_BUF: usize = 256;

/// Controllers wren enables for `units/`, in the order they are enabled.
pub const WANTED: [Controller; 4] = [
    Controller::Memory,
    Controller::Pids,
    Controller::Cpu,
    Controller::Io,
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Controller {
    Memory,
    Pids,
    Cpu,
    Io,
}

impl Controller {
    pub const fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
            Controller::Io => "io",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Controller::Memory => 1,
            Controller::Pids => 2,
            Controller::Cpu => 4,
            Controller::Io => 8,
        }
    }
}

/// A set of the controllers in `WANTED`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Controllers(u8);

impl Controllers {
    pub const NONE: Controllers = Controllers(0);

    pub fn has(self, c: Controller) -> bool {
        self.0 & c.bit() != 0
    }

    pub fn insert(&mut self, c: Controller) {
        self.0 |= c.bit();
    }

    pub fn iter(self) -> impl Iterator<Item = Controller> {
        WANTED.into_iter().filter(move |c| self.has(*c))
    }
}

impl fmt::Display for Controllers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for c in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(c.name())?;
            first = false;
        }
        if first {
            f.write_str("(none)")?;
        }
        Ok(())
    }
}

/// Longest value written: `max 18446744073709551615` and the like.
pub type Value = String<48>;

fn limit_value(l: Limit) -> Value {
    let mut v = Value::new();
    // 48 bytes hold any u64, so these writes cannot fail.
    let _ = match l {
        Limit::Max => v.push_str("max").map_err(|_| fmt::Error),
        Limit::Value(n) => write!(v.as_mut_view(), "{n}"),
    };
    v
}

/// One cgroup file write that `prepare` performs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub file: &'static str,
    pub value: Value,
    /// The unit sets this key; otherwise `value` is the kernel default,
    /// written so that a reload which removed the key takes effect.
    pub explicit: bool,
}

/// The writes that make a cgroup match `limits`, in a fixed order. Keys the
/// unit does not set get their kernel defaults.
pub fn settings(limits: &Limits) -> [Setting; 9] {
    fn lim(file: &'static str, l: Option<Limit>, default: Limit) -> Setting {
        Setting {
            file,
            value: limit_value(l.unwrap_or(default)),
            explicit: l.is_some(),
        }
    }
    fn weight(file: &'static str, w: Option<u16>) -> Setting {
        let mut value = Value::new();
        let _ = write!(value.as_mut_view(), "{}", w.unwrap_or(100));
        Setting {
            file,
            value,
            explicit: w.is_some(),
        }
    }
    let cpu_max = {
        let (quota, period) = limits.cpu_max.unwrap_or((Limit::Max, 100_000));
        let mut value = limit_value(quota);
        let _ = write!(value.as_mut_view(), " {period}");
        Setting {
            file: "cpu.max",
            value,
            explicit: limits.cpu_max.is_some(),
        }
    };
    let zero = Limit::Value(0);
    [
        lim("memory.max", limits.memory_max, Limit::Max),
        lim("memory.high", limits.memory_high, Limit::Max),
        lim("memory.low", limits.memory_low, zero),
        lim("memory.min", limits.memory_min, zero),
        lim("memory.swap.max", limits.memory_swap_max, Limit::Max),
        lim("pids.max", limits.pids_max, Limit::Max),
        weight("cpu.weight", limits.cpu_weight),
        cpu_max,
        weight("io.weight", limits.io_weight),
    ]
}

/// A cgroup operation that failed: the step, the unit (empty for the
/// root), the file, and the errno.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CgroupError {
    /// Opening the cgroup root or `units/` (`dir` is `""` or `"units"`).
    OpenRoot { dir: &'static str, errno: Errno },
    /// Reading `cgroup.controllers` of the root.
    ReadControllers { errno: Errno },
    /// Creating `units/`.
    MkdirUnits { errno: Errno },
    /// The unit name is not a valid unit name (would escape `units/`).
    BadName { unit: Name },
    /// Creating `units/NAME`.
    Mkdir { unit: Name, errno: Errno },
    /// Opening the directory `units/NAME`.
    OpenDir { unit: Name, errno: Errno },
    /// Opening or writing `units/NAME/FILE`.
    Write {
        unit: Name,
        file: &'static str,
        errno: Errno,
    },
    /// Removing `units/NAME`.
    Remove { unit: Name, errno: Errno },
}

impl fmt::Display for CgroupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cgroup: ")?;
        let errno = match self {
            CgroupError::OpenRoot { dir, errno } => {
                write!(f, "cannot open cgroup root dir '{dir}'")?;
                errno
            }
            CgroupError::ReadControllers { errno } => {
                f.write_str("cannot read cgroup.controllers")?;
                errno
            }
            CgroupError::MkdirUnits { errno } => {
                write!(f, "cannot create {UNITS_DIR}/")?;
                errno
            }
            CgroupError::BadName { unit } => return write!(f, "bad unit name '{unit}'"),
            CgroupError::Mkdir { unit, errno } => {
                write!(f, "cannot create {UNITS_DIR}/{unit}")?;
                errno
            }
            CgroupError::OpenDir { unit, errno } => {
                write!(f, "cannot open {UNITS_DIR}/{unit}")?;
                errno
            }
            CgroupError::Write { unit, file, errno } => {
                // No unit: `units/`'s own file.
                let sep = if unit.is_empty() { "" } else { "/" };
                write!(f, "cannot write {UNITS_DIR}/{unit}{sep}{file}")?;
                errno
            }
            CgroupError::Remove { unit, errno } => {
                write!(f, "cannot remove {UNITS_DIR}/{unit}")?;
                errno
            }
        };
        // Without the heap (a start that keeps failing says it each time).
        write!(f, ": {}", Os::from(*errno))
    }
}

fn check_name(name: &str) -> Result<(), CgroupError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(CgroupError::BadName {
            unit: truncated(name),
        })
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

/// mkdir(2) of `name` (0755) under `dir`, its C string (sys::path) in a
/// frame of its own, not in that of PID 1's start of a unit.
#[inline(never)]
fn make_dir_at(dir: &OwnedFd, name: &str) -> Result<(), Errno> {
    let mut c = crate::sys::path::CPath::new();
    rustix::fs::mkdirat(dir, c.of_str(name)?, Mode::from_raw_mode(0o755))
}

fn open_dir<Fd: AsFd>(at: Fd, path: &str) -> Result<OwnedFd, Errno> {
    crate::sys::file::openat(at, path, DIR_FLAGS, Mode::empty())
}

/// Enable the wanted controllers of `available` in `dir/cgroup.subtree_control`;
/// one the kernel refuses does not keep the others off. Returns those
/// enabled.
fn enable<Fd: AsFd>(dir: Fd, where_: &str, available: Controllers) -> Controllers {
    // All in one write first: one open and one pass of the kernel over
    // the subtree instead of four (issue 10, the boot before the first
    // start). A write the kernel refuses changes nothing; then one by
    // one, to say which controller was refused.
    let mut all: String<40> = String::new();
    for c in available.iter() {
        let _ = write!(all.as_mut_view(), "+{} ", c.name());
    }
    if all.is_empty() || write_at(&dir, "cgroup.subtree_control", all.as_bytes()).is_ok() {
        return available;
    }
    let mut done = Controllers::NONE;
    for c in available.iter() {
        let mut v: String<16> = String::new();
        let _ = write!(v.as_mut_view(), "+{}", c.name());
        match write_at(&dir, "cgroup.subtree_control", v.as_bytes()) {
            Ok(()) => done.insert(c),
            Err(errno) => crate::warn!(
                "cgroup: cannot enable {} in {where_}cgroup.subtree_control: {errno}",
                c.name()
            ),
        }
    }
    done
}

/// Prepare the cgroup tree at boot: enable `memory pids cpu io` (those
/// available) in the root's and in `units/`'s `cgroup.subtree_control`,
/// creating `units/`. Controllers the kernel lacks or refuses are logged
/// at warn and are not an error; returns the set enabled for units.
#[cfg(test)]
pub fn setup_units(root: &Path) -> Result<Controllers, CgroupError> {
    set_up(root).map(|(_, enabled)| enabled)
}

/// `setup_units`, keeping the directory fds it opened (PID 1's boot: two
/// opens fewer before the first start than `setup_units` then `open`).
fn set_up(root: &Path) -> Result<(Cgroups, Controllers), CgroupError> {
    let root_fd = crate::sys::file::openat(rustix::fs::CWD, root, DIR_FLAGS, Mode::empty())
        .map_err(|errno| CgroupError::OpenRoot { dir: "", errno })?;
    let mut buf = [0u8; READ_BUF];
    let available = read_kernel_at(&root_fd, "cgroup.controllers", &mut buf)
        .map(parse_controllers)
        .map_err(|errno| CgroupError::ReadControllers { errno })?;
    for c in WANTED {
        if !available.has(c) {
            let how = match c.name() {
                "memory" => "; turn it on with cgroup_enable=memory on the kernel command line (Raspberry Pi: cmdline.txt) in a kernel with CONFIG_MEMCG",
                _ => "; it needs a kernel built with it",
            };
            crate::error!(
                "cgroup: controller {0} not available: {0}.* keys of units are not enforced{how}",
                c.name()
            );
        }
    }
    let in_root = enable(&root_fd, "", available);
    let units_made = match rustix::fs::mkdirat(&root_fd, UNITS_DIR_C, Mode::from_raw_mode(0o755)) {
        Ok(()) => true,
        Err(Errno::EXIST) => false,
        Err(errno) => return Err(CgroupError::MkdirUnits { errno }),
    };
    let units_fd = open_dir(&root_fd, UNITS_DIR).map_err(|errno| CgroupError::OpenRoot {
        dir: UNITS_DIR,
        errno,
    })?;
    if !kill::supported(&units_fd) {
        crate::error!(
            "cgroup: no cgroup.kill (Linux 5.14 added it): a stop kills a unit's processes one pid at a time, and one forked meanwhile can outlive it; run Linux 5.14 or later"
        );
    }
    let enabled = enable(&units_fd, "units/", in_root);
    crate::info!("cgroup: controllers for units: {enabled}");
    let cg = Cgroups {
        root: root_fd,
        units: units_fd,
        units_made: core::cell::Cell::new(units_made),
    };
    Ok((cg, enabled))
}

/// Limit files a unit sets that its cgroup does not have (their
/// controller is not available): not enforced. With no hierarchy at all,
/// `missing::NO_CGROUP` comes first (see `missing::not_enforced`).
pub type NotEnforced = heapless::Vec<&'static str, 10>;

/// A unit's cgroup, ready for clone3.
#[derive(Debug)]
pub struct Prepared {
    pub dir: OwnedFd,
    pub not_enforced: NotEnforced,
    /// The directory was made now: its counters (`memory.events`) are 0.
    pub fresh: bool,
}

/// Open directory fds of the cgroup root and `units/`, through which every
/// later operation goes.
pub struct Cgroups {
    root: OwnedFd,
    units: OwnedFd,
    /// `units/` was made by this set-up and nothing was written to it
    /// since: its files hold the kernel's defaults.
    units_made: core::cell::Cell<bool>,
}

impl Cgroups {
    /// `setup_units`, then the hierarchy it set up.
    pub fn setup(root: &Path) -> Result<Cgroups, CgroupError> {
        set_up(root).map(|(cg, _)| cg)
    }

    /// Open `root` and `root/units` (`setup_units` creates the latter).
    /// PID 1 keeps the fds `setup` opened; tests open a fixture root.
    #[cfg(test)]
    pub fn open(root: &Path) -> Result<Cgroups, CgroupError> {
        let root = rustix::fs::open(root, DIR_FLAGS, Mode::empty())
            .map_err(|errno| CgroupError::OpenRoot { dir: "", errno })?;
        let units = open_dir(&root, UNITS_DIR).map_err(|errno| CgroupError::OpenRoot {
            dir: UNITS_DIR,
            errno,
        })?;
        Ok(Cgroups {
            root,
            units,
            units_made: core::cell::Cell::new(false),
        })
    }

    /// Write `units/`'s own `memory.low` and `memory.min`. The kernel caps
    /// a cgroup's effective protection at its parent's, so with `units/`
    /// at 0 no unit's `memory.low` would protect anything;
    /// `memory_recursiveprot` only shares out protection a parent has.
    /// PID 1 sets them to the sum of its units' values, so each unit gets
    /// what it asked for and unprotected units get none of it.
    pub fn set_units_protection(&self, low: Limit, min: Limit) -> Result<(), CgroupError> {
        // A `units/` the kernel has just made holds 0 in both: nothing to
        // write for units that ask for no protection (the common boot:
        // four system calls fewer before the first start, issue 10).
        // Only the first time: a reload may bring a sum back to 0.
        let untouched = self.units_made.replace(false);
        if untouched && low == Limit::Value(0) && min == Limit::Value(0) {
            return Ok(());
        }
        // Both tried whatever the first does: a failed `memory.low` must
        // not leave `memory.min` unwritten (the units' hard protection).
        let mut first = Ok(());
        for (file, v) in [("memory.low", low), ("memory.min", min)] {
            match write_at(&self.units, file, limit_value(v).as_bytes()) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(errno) if first.is_ok() => {
                    first = Err(CgroupError::Write {
                        unit: truncated(""),
                        file,
                        errno,
                    })
                }
                Err(_) => {}
            }
        }
        first
    }

    /// The cgroup root directory fd.
    pub fn root_fd(&self) -> &OwnedFd {
        &self.root
    }

    /// Create `units/NAME` if missing and write every limit file: the keys
    /// the unit sets, and the kernel defaults for those it does not (so a
    /// reload that removed a key takes effect). An existing one that is
    /// empty (no process in it or below; the cgroups the unit made below
    /// it go first, with their controllers, as in `remove`) is made anew
    /// instead: what its last run left charged to it (page cache, files
    /// in a shared tmpfs) stays with the removed group (counted in
    /// `units/`, freed with its pages) rather than counting against the
    /// new limits, and a lowered `memory.max` does not make PID 1 reclaim
    /// it (the kernel reclaims in the writer's context, writing dirty
    /// pages back first).
    /// A key whose file is missing because its controller is unavailable
    /// (a Raspberry Pi kernel without `cgroup_enable=memory`) is not
    /// enforced, and said so, rather than keeping the unit from running.
    /// A kept one's `memory.max` or `memory.high` value is written by a
    /// child, waited for `polls` (10 ms each, the caller's budget, one at
    /// least; `reclaim`): the kernel reclaims in the writer's context.
    /// Returns the cgroup directory fd for clone3's `CLONE_INTO_CGROUP`.
    pub fn prepare(
        &self,
        name: &str,
        limits: &Limits,
        polls: &mut u8,
    ) -> Result<Prepared, CgroupError> {
        check_name(name)?;
        // A cgroup the kernel just made holds the defaults already, so only
        // the keys the unit sets need writing (half a millisecond per file
        // on a slow core, on the way to the unit's first instruction).
        let mkdir = || make_dir_at(&self.units, name);
        let made = match mkdir() {
            Err(Errno::EXIST) => match self.rmdir(name) {
                Ok(()) => mkdir().map(|()| true),
                // Busy (a process, a child group that stays): kept.
                Err(Errno::BUSY) => Ok(false),
                // Refused otherwise (not a cgroup, no permission): kept
                // too, its files written, and said.
                Err(errno) => {
                    crate::warn!(
                        "{name}: cgroup {UNITS_DIR}/{name} kept, not made anew: {}",
                        Os::from(errno)
                    );
                    Ok(false)
                }
            },
            made => made.map(|()| true),
        };
        let fresh = made.map_err(|errno| CgroupError::Mkdir {
            unit: truncated(name),
            errno,
        })?;
        let dir = open_dir(&self.units, name).map_err(|errno| CgroupError::OpenDir {
            unit: truncated(name),
            errno,
        })?;
        let mut not_enforced = NotEnforced::new();
        for s in settings(limits) {
            if fresh && !s.explicit {
                continue;
            }
            let written = if !fresh && reclaim::may_reclaim(s.file, &s.value) {
                reclaim::write(name, dir.as_fd(), s.file, &s.value, polls)
            } else {
                write_at(&dir, s.file, s.value.as_bytes())
            };
            match written {
                Ok(()) => {}
                Err(Errno::NOENT) if !s.explicit => {}
                Err(Errno::NOENT) => {
                    let _ = not_enforced.push(s.file);
                }
                Err(errno) => {
                    return Err(CgroupError::Write {
                        unit: truncated(name),
                        file: s.file,
                        errno,
                    })
                }
            }
        }
        Ok(Prepared {
            dir,
            not_enforced,
            fresh,
        })
    }

    /// Kill every process in `units/NAME` (and below) with SIGKILL through
    /// `cgroup.kill` (Linux 5.14+), which also catches processes that left
    /// the unit's process group or are forking; where it is missing or
    /// refuses the write, each pid of `cgroup.procs` (`kill::kill_dir`).
    pub fn kill(&self, name: &str) -> Result<kill::Killed, CgroupError> {
        let dir = self.unit_dir(name)?;
        kill::kill_dir(&dir).map_err(|errno| CgroupError::Write {
            unit: truncated(name),
            file: "cgroup.procs",
            errno,
        })
    }

    /// `units/NAME`'s directory fd.
    pub fn unit_dir(&self, name: &str) -> Result<OwnedFd, CgroupError> {
        check_name(name)?;
        open_dir(&self.units, name).map_err(|errno| CgroupError::OpenDir {
            unit: truncated(name),
            errno,
        })
    }

    /// What the unit made of its cgroup undone (`nested::undo`): true
    /// when something was.
    pub fn undo_nested(&self, name: &str) -> Result<bool, Errno> {
        // No directory: nothing made below it.
        let Ok(dir) = self.unit_dir(name) else {
            return Ok(false);
        };
        nested::undo(&dir)
    }

    /// `units/NAME/cgroup.events`, open for reading: the kernel marks it
    /// with EPOLLPRI when `populated` changes (a loop source, not polling;
    /// read it again with `populated_at`).
    pub fn events(&self, name: &str) -> Result<OwnedFd, CgroupError> {
        check_name(name)?;
        let mut path: String<64> = String::new();
        let _ = write!(path.as_mut_view(), "{name}/cgroup.events");
        crate::sys::file::open_kernel_at(&self.units, path.as_str()).map_err(|errno| {
            CgroupError::OpenDir {
                unit: truncated(name),
                errno,
            }
        })
    }

    /// Wait a moment (polls of at most 10 ms, taken from `polls`) for
    /// `units/NAME` to hold no process: what a kill just left dying needs
    /// the CPU to go, which this gives it. True once it is empty.
    pub fn wait_empty(&self, name: &str, polls: &mut u8) -> bool {
        const STEP: rustix::thread::Timespec = rustix::thread::Timespec {
            tv_sec: 0,
            tv_nsec: 10_000_000,
        };
        let Ok(fd) = self.events(name) else {
            return false;
        };
        loop {
            match Self::populated_at(&fd) {
                Some(true) => {}
                other => return other == Some(false),
            }
            if *polls == 0 {
                return false;
            }
            *polls -= 1;
            // The kernel marks the file with POLLPRI when `populated`
            // changes after the read.
            let mut pfd = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::PRI,
            )];
            let _ = rustix::event::poll(&mut pfd, Some(&STEP));
        }
    }

    /// Remove `units/NAME`. Returns `Ok(true)` when it is gone (or was
    /// never there), `Ok(false)` when it still has processes (EBUSY): the
    /// caller tries again once it is empty.
    pub fn remove(&self, name: &str) -> Result<bool, CgroupError> {
        check_name(name)?;
        match self.rmdir(name) {
            Ok(()) | Err(Errno::NOENT) => Ok(true),
            Err(Errno::BUSY) => Ok(false),
            Err(errno) => Err(CgroupError::Remove {
                unit: truncated(name),
                errno,
            }),
        }
    }

    /// rmdir of `units/NAME`; cgroups the unit made below its own keep
    /// it (EBUSY), so when nothing runs in it or below, those go first
    /// with the controllers turned on for them (`undo_nested`). A process
    /// anywhere keeps all as it is: a cgroup still in use keeps its
    /// controllers.
    /// A writer of its files killed inside a reclaim keeps it too: the
    /// kernel's rmdir would wait for that writer (`reclaim`).
    fn rmdir(&self, name: &str) -> Result<(), Errno> {
        if reclaim::inside(name) {
            return Err(Errno::BUSY);
        }
        let rmdir = || crate::sys::file::unlinkat(&self.units, name, AtFlags::REMOVEDIR);
        match rmdir() {
            Err(Errno::BUSY)
                if self.populated(name) == Some(false) && self.undo_nested(name) == Ok(true) =>
            {
                rmdir()
            }
            done => done,
        }
    }

    /// Read `units/NAME/FILE` and parse it; None if any step fails.
    fn read<T>(&self, name: &str, file: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        if !valid_name(name) {
            return None;
        }
        let mut path: String<64> = String::new();
        write!(path.as_mut_view(), "{name}/{file}").ok()?;
        let mut buf = [0u8; READ_BUF];
        read_kernel_at(&self.units, &path, &mut buf)
            .ok()
            .and_then(parse)
    }

    /// `populated` of an open `cgroup.events` (see `events`), read again
    /// from its start.
    pub fn populated_at(fd: &OwnedFd) -> Option<bool> {
        let mut buf = [0u8; READ_BUF];
        let n = rustix::io::pread(fd, &mut buf, 0).ok()?;
        let text = core::str::from_utf8(buf.get(..n)?).ok()?;
        parse_populated(text)
    }

    /// Whether the cgroup still has processes (`cgroup.events`).
    pub fn populated(&self, name: &str) -> Option<bool> {
        self.read(name, "cgroup.events", parse_populated)
    }

    pub fn memory_current(&self, name: &str) -> Option<u64> {
        self.read(name, "memory.current", parse_u64)
    }

    pub fn memory_max(&self, name: &str) -> Option<Limit> {
        self.read(name, "memory.max", parse_limit)
    }

    pub fn memory_events(&self, name: &str) -> Option<MemoryEvents> {
        self.read(name, "memory.events", parse_memory_events)
    }

    pub fn pids_current(&self, name: &str) -> Option<u64> {
        self.read(name, "pids.current", parse_u64)
    }

    /// `some avg10` of the unit's memory pressure, in hundredths of a
    /// percent (None without PSI or without the cgroup).
    pub fn memory_pressure(&self, name: &str) -> Option<u32> {
        self.read(name, psi::MEMORY_PRESSURE, psi::some_avg10)
    }
}

pub mod kill;
pub mod nested;
mod reclaim;
pub(crate) use reclaim::reaped as writer_reaped;
mod text;
pub use text::{
    parse_controllers, parse_limit, parse_memory_events, parse_populated, parse_u64, MemoryEvents,
};
pub mod missing;
pub mod psi;

#[cfg(test)]
mod tests;
