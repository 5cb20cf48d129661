//! The typed writer of cgroup v2 files (youki libcgroups style): every
//! cgroup file wren touches is named here, written once with a formatted
//! value and read through a fixed stack buffer.
//!
//! Layout (CONTRACT section 2): unit `NAME` runs in `ROOT/units/NAME`, with
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

use crate::unit::{Limit, Limits};
use crate::vocab::{valid_name, Name};

/// Subdirectory of the cgroup root holding one cgroup per unit.
pub const UNITS_DIR: &str = "units";

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

/// Which of the wanted controllers a `cgroup.controllers` text lists.
pub fn parse_controllers(text: &str) -> Controllers {
    let mut set = Controllers::NONE;
    for word in text.split_ascii_whitespace() {
        for c in WANTED {
            if word == c.name() {
                set.insert(c);
            }
        }
    }
    set
}

/// Counters of `memory.events` (all since the cgroup was created).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    pub low: u64,
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
    pub oom_group_kill: u64,
}

/// Parse `memory.events`. Keys the kernel may add later are ignored; a
/// known key with a value that is not a number makes the whole text bad.
pub fn parse_memory_events(text: &str) -> Option<MemoryEvents> {
    let mut ev = MemoryEvents::default();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(key), Some(val)) = (it.next(), it.next()) else {
            continue;
        };
        let slot = match key {
            "low" => &mut ev.low,
            "high" => &mut ev.high,
            "max" => &mut ev.max,
            "oom" => &mut ev.oom,
            "oom_kill" => &mut ev.oom_kill,
            "oom_group_kill" => &mut ev.oom_group_kill,
            _ => continue,
        };
        *slot = val.parse().ok()?;
    }
    Some(ev)
}

/// Parse `cgroup.events` for its `populated` line.
pub fn parse_populated(text: &str) -> Option<bool> {
    text.lines()
        .find_map(|line| match line.trim().strip_prefix("populated ") {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        })
}

/// Parse a single number (`memory.current`, `pids.current`).
pub fn parse_u64(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// Parse a value that may be `max` (`memory.max`, `pids.max`).
pub fn parse_limit(text: &str) -> Option<Limit> {
    match text.trim() {
        "max" => Some(Limit::Max),
        t => t.parse().ok().map(Limit::Value),
    }
}

/// Longest value written: `max 18446744073709551615` and the like.
pub type Value = String<48>;

fn limit_value(l: Limit) -> Value {
    let mut v = Value::new();
    // 48 bytes hold any u64, so these writes cannot fail.
    let _ = match l {
        Limit::Max => v.push_str("max").map_err(|_| fmt::Error),
        Limit::Value(n) => write!(v, "{n}"),
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
        let _ = write!(value, "{}", w.unwrap_or(100));
        Setting {
            file,
            value,
            explicit: w.is_some(),
        }
    }
    let cpu_max = {
        let (quota, period) = limits.cpu_max.unwrap_or((Limit::Max, 100_000));
        let mut value = limit_value(quota);
        let _ = write!(value, " {period}");
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
    /// The unit sets a key whose file does not exist: its controller is not
    /// available (not in the kernel, or not enabled for `units/`).
    Unavailable { unit: Name, file: &'static str },
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
        match self {
            CgroupError::OpenRoot { dir, errno } => {
                write!(f, "cgroup: cannot open cgroup root dir '{dir}': {errno}")
            }
            CgroupError::ReadControllers { errno } => {
                write!(f, "cgroup: cannot read cgroup.controllers: {errno}")
            }
            CgroupError::MkdirUnits { errno } => {
                write!(f, "cgroup: cannot create {UNITS_DIR}/: {errno}")
            }
            CgroupError::BadName { unit } => write!(f, "cgroup: bad unit name '{unit}'"),
            CgroupError::Mkdir { unit, errno } => {
                write!(f, "cgroup: cannot create {UNITS_DIR}/{unit}: {errno}")
            }
            CgroupError::OpenDir { unit, errno } => {
                write!(f, "cgroup: cannot open {UNITS_DIR}/{unit}: {errno}")
            }
            CgroupError::Unavailable { unit, file } => write!(
                f,
                "cgroup: {UNITS_DIR}/{unit}/{file} does not exist (controller not available)"
            ),
            CgroupError::Write { unit, file, errno } => {
                write!(f, "cgroup: cannot write {UNITS_DIR}/{unit}/{file}: {errno}")
            }
            CgroupError::Remove { unit, errno } => {
                write!(f, "cgroup: cannot remove {UNITS_DIR}/{unit}: {errno}")
            }
        }
    }
}

fn unit_name(name: &str) -> Name {
    let mut n = Name::new();
    // Names longer than NAME_MAX are rejected by `check_name` first; an
    // over-long one is cut here rather than failing to report the error.
    for c in name.chars() {
        if n.push(c).is_err() {
            break;
        }
    }
    n
}

fn check_name(name: &str) -> Result<(), CgroupError> {
    if valid_name(name) {
        Ok(())
    } else {
        Err(CgroupError::BadName {
            unit: unit_name(name),
        })
    }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

fn open_dir<Fd: AsFd>(at: Fd, path: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(at, path, DIR_FLAGS, Mode::empty())
}

/// Write `value` to `file` under `dir` in one write(2), as the kernel
/// parses each write of a cgroup file as a whole.
fn write_file<Fd: AsFd>(dir: Fd, file: &str, value: &str) -> Result<(), Errno> {
    // O_TRUNC is what `echo > file` does; it is accepted by cgroupfs and
    // makes fixture files in tests hold exactly the last value.
    let fd = rustix::fs::openat(
        dir,
        file,
        OFlags::WRONLY | OFlags::TRUNC | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let n = rustix::io::write(&fd, value.as_bytes())?;
    if n != value.len() {
        // A cgroup file takes the whole value or fails; a short write means
        // something other than cgroupfs is mounted there.
        return Err(Errno::IO);
    }
    Ok(())
}

/// Read `file` under `dir` into `buf`; the text, if it is UTF-8.
fn read_file<'b, Fd: AsFd>(dir: Fd, file: &str, buf: &'b mut [u8]) -> Result<&'b str, Errno> {
    let fd = rustix::fs::openat(dir, file, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let mut len = 0;
    while len < buf.len() {
        let rest = buf.get_mut(len..).ok_or(Errno::INVAL)?;
        match rustix::io::read(&fd, rest) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    let bytes = buf.get(..len).ok_or(Errno::INVAL)?;
    core::str::from_utf8(bytes).map_err(|_| Errno::INVAL)
}

/// Enable the wanted controllers of `available` in `dir/cgroup.subtree_control`,
/// one write per controller so that one the kernel refuses does not keep
/// the others off. Returns those enabled.
fn enable<Fd: AsFd>(dir: Fd, where_: &str, available: Controllers) -> Controllers {
    let mut done = Controllers::NONE;
    for c in available.iter() {
        let mut v: String<16> = String::new();
        let _ = write!(v, "+{}", c.name());
        match write_file(&dir, "cgroup.subtree_control", &v) {
            Ok(()) => done.insert(c),
            Err(errno) => log::warn!(
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
pub fn setup_units(root: &Path) -> Result<Controllers, CgroupError> {
    let root_fd = rustix::fs::open(root, DIR_FLAGS, Mode::empty())
        .map_err(|errno| CgroupError::OpenRoot { dir: "", errno })?;
    let mut buf = [0u8; READ_BUF];
    let available = read_file(&root_fd, "cgroup.controllers", &mut buf)
        .map(parse_controllers)
        .map_err(|errno| CgroupError::ReadControllers { errno })?;
    for c in WANTED {
        if !available.has(c) {
            log::warn!("cgroup: controller {} not available", c.name());
        }
    }
    let in_root = enable(&root_fd, "", available);
    match rustix::fs::mkdirat(&root_fd, UNITS_DIR, Mode::from_raw_mode(0o755)) {
        Ok(()) | Err(Errno::EXIST) => {}
        Err(errno) => return Err(CgroupError::MkdirUnits { errno }),
    }
    let units_fd = open_dir(&root_fd, UNITS_DIR).map_err(|errno| CgroupError::OpenRoot {
        dir: UNITS_DIR,
        errno,
    })?;
    let enabled = enable(&units_fd, "units/", in_root);
    log::info!("cgroup: controllers for units: {enabled}");
    Ok(enabled)
}

/// Open directory fds of the cgroup root and `units/`, through which every
/// later operation goes.
pub struct Cgroups {
    root: OwnedFd,
    units: OwnedFd,
}

impl Cgroups {
    /// Open `root` and `root/units` (`setup_units` creates the latter).
    pub fn open(root: &Path) -> Result<Cgroups, CgroupError> {
        let root = rustix::fs::open(root, DIR_FLAGS, Mode::empty())
            .map_err(|errno| CgroupError::OpenRoot { dir: "", errno })?;
        let units = open_dir(&root, UNITS_DIR).map_err(|errno| CgroupError::OpenRoot {
            dir: UNITS_DIR,
            errno,
        })?;
        Ok(Cgroups { root, units })
    }

    /// Write `units/`'s own `memory.low` and `memory.min`. The kernel caps
    /// a cgroup's effective protection at its parent's, so with `units/`
    /// at 0 no unit's `memory.low` would protect anything;
    /// `memory_recursiveprot` only shares out protection a parent has.
    /// PID 1 sets them to the sum of its units' values, so each unit gets
    /// what it asked for and unprotected units get none of it.
    pub fn set_units_protection(&self, low: Limit, min: Limit) -> Result<(), CgroupError> {
        for (file, v) in [("memory.low", low), ("memory.min", min)] {
            match write_file(&self.units, file, &limit_value(v)) {
                Ok(()) | Err(Errno::NOENT) => {}
                Err(errno) => {
                    return Err(CgroupError::Write {
                        unit: unit_name("units"),
                        file,
                        errno,
                    })
                }
            }
        }
        Ok(())
    }

    /// The cgroup root directory fd.
    pub fn root_fd(&self) -> &OwnedFd {
        &self.root
    }

    /// Create `units/NAME` if missing and write every limit file: the keys
    /// the unit sets, and the kernel defaults for those it does not (so a
    /// reload that removed a key takes effect). A file missing because its
    /// controller is unavailable is an error only when the unit sets the
    /// key. Returns the cgroup directory fd for clone3's
    /// `CLONE_INTO_CGROUP`.
    pub fn prepare(&self, name: &str, limits: &Limits) -> Result<OwnedFd, CgroupError> {
        check_name(name)?;
        // A cgroup the kernel just made holds the defaults already, so only
        // the keys the unit sets need writing (half a millisecond per file
        // on a slow core, on the way to the unit's first instruction).
        let fresh = match rustix::fs::mkdirat(&self.units, name, Mode::from_raw_mode(0o755)) {
            Ok(()) => true,
            Err(Errno::EXIST) => false,
            Err(errno) => {
                return Err(CgroupError::Mkdir {
                    unit: unit_name(name),
                    errno,
                })
            }
        };
        let dir = open_dir(&self.units, name).map_err(|errno| CgroupError::OpenDir {
            unit: unit_name(name),
            errno,
        })?;
        for s in settings(limits) {
            if fresh && !s.explicit {
                continue;
            }
            match write_file(&dir, s.file, &s.value) {
                Ok(()) => {}
                Err(Errno::NOENT) if !s.explicit => {}
                Err(Errno::NOENT) => {
                    return Err(CgroupError::Unavailable {
                        unit: unit_name(name),
                        file: s.file,
                    })
                }
                Err(errno) => {
                    return Err(CgroupError::Write {
                        unit: unit_name(name),
                        file: s.file,
                        errno,
                    })
                }
            }
        }
        Ok(dir)
    }

    /// Kill every process in `units/NAME` (and below) with SIGKILL through
    /// `cgroup.kill` (Linux 5.14+), which also catches processes that left
    /// the unit's process group or are forking.
    pub fn kill(&self, name: &str) -> Result<(), CgroupError> {
        check_name(name)?;
        let mut path: String<64> = String::new();
        let _ = write!(path, "{name}/cgroup.kill");
        write_file(&self.units, &path, "1").map_err(|errno| CgroupError::Write {
            unit: unit_name(name),
            file: "cgroup.kill",
            errno,
        })
    }

    /// Remove `units/NAME`. Returns `Ok(true)` when it is gone (or was
    /// never there), `Ok(false)` when it still has processes (EBUSY): the
    /// caller tries again once it is empty.
    pub fn remove(&self, name: &str) -> Result<bool, CgroupError> {
        check_name(name)?;
        match rustix::fs::unlinkat(&self.units, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => Ok(true),
            Err(Errno::BUSY) => Ok(false),
            Err(errno) => Err(CgroupError::Remove {
                unit: unit_name(name),
                errno,
            }),
        }
    }

    /// Read `units/NAME/FILE` and parse it; None if any step fails.
    fn read<T>(&self, name: &str, file: &str, parse: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        if !valid_name(name) {
            return None;
        }
        let mut path: String<64> = String::new();
        write!(path, "{name}/{file}").ok()?;
        let mut buf = [0u8; READ_BUF];
        read_file(&self.units, &path, &mut buf).ok().and_then(parse)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A fresh fixture directory under the system temp dir.
    fn fixture(tag: &str) -> PathBuf {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "wren-cgroup-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    const LIMIT_FILES: [&str; 9] = [
        "memory.max",
        "memory.high",
        "memory.low",
        "memory.min",
        "memory.swap.max",
        "pids.max",
        "cpu.weight",
        "cpu.max",
        "io.weight",
    ];

    /// A root as `setup_units` leaves it, with `units/NAME` holding
    /// `files` (what the kernel would create for the enabled controllers).
    fn unit_fixture(tag: &str, name: &str, files: &[&str]) -> PathBuf {
        let root = fixture(tag);
        let dir = root.join("units").join(name);
        fs::create_dir_all(&dir).unwrap();
        for f in files {
            fs::write(dir.join(f), "garbage-from-before\n").unwrap();
        }
        root
    }

    fn read(root: &Path, name: &str, file: &str) -> String<64> {
        let s = fs::read_to_string(root.join("units").join(name).join(file)).unwrap();
        String::try_from(s.as_str()).unwrap()
    }

    #[test]
    fn controllers_parsed_from_text() {
        let c = parse_controllers("cpuset cpu io memory hugetlb pids rdma misc\n");
        assert_eq!(c.iter().count(), 4);
        let c = parse_controllers("cpuset cpu pids\n");
        assert!(c.has(Controller::Cpu) && c.has(Controller::Pids));
        assert!(!c.has(Controller::Memory) && !c.has(Controller::Io));
        // A prefix of a name is not the controller.
        assert_eq!(parse_controllers("memoryx iox\n"), Controllers::NONE);
        assert_eq!(parse_controllers(""), Controllers::NONE);
        let mut s = std::string::String::new();
        write!(s, "{}", parse_controllers("io memory")).unwrap();
        assert_eq!(s, "memory io");
    }

    #[test]
    fn memory_events_parsed() {
        let text = "low 1\nhigh 22\nmax 333\noom 4\noom_kill 5\noom_group_kill 6\n";
        assert_eq!(
            parse_memory_events(text),
            Some(MemoryEvents {
                low: 1,
                high: 22,
                max: 333,
                oom: 4,
                oom_kill: 5,
                oom_group_kill: 6
            })
        );
        // Older kernels lack oom_group_kill; new keys are ignored.
        let ev = parse_memory_events("low 0\nhigh 0\nmax 0\noom 1\noom_kill 1\nsock_throttled 9\n")
            .unwrap();
        assert_eq!((ev.oom, ev.oom_kill, ev.oom_group_kill), (1, 1, 0));
        assert_eq!(parse_memory_events("oom_kill x\n"), None);
    }

    #[test]
    fn populated_and_numbers_parsed() {
        assert_eq!(parse_populated("populated 1\nfrozen 0\n"), Some(true));
        assert_eq!(parse_populated("populated 0\nfrozen 0\n"), Some(false));
        assert_eq!(parse_populated("frozen 0\n"), None);
        assert_eq!(parse_u64("12345678\n"), Some(12_345_678));
        assert_eq!(parse_u64("max\n"), None);
        assert_eq!(parse_limit("max\n"), Some(Limit::Max));
        assert_eq!(parse_limit("67108864\n"), Some(Limit::Value(64 << 20)));
        assert_eq!(parse_limit("-1\n"), None);
    }

    #[test]
    fn settings_format_values_and_defaults() {
        let lim = Limits {
            memory_max: Some(Limit::Value(64 << 20)),
            memory_low: Some(Limit::Value(8 << 20)),
            pids_max: Some(Limit::Max),
            cpu_weight: Some(200),
            cpu_max: Some((Limit::Value(50_000), 100_000)),
            ..Limits::default()
        };
        let all = settings(&lim);
        let got: std::vec::Vec<(&str, &str, bool)> = all
            .iter()
            .map(|s| (s.file, s.value.as_str(), s.explicit))
            .collect();
        assert_eq!(
            got,
            [
                ("memory.max", "67108864", true),
                ("memory.high", "max", false),
                ("memory.low", "8388608", true),
                ("memory.min", "0", false),
                ("memory.swap.max", "max", false),
                ("pids.max", "max", true),
                ("cpu.weight", "200", true),
                ("cpu.max", "50000 100000", true),
                ("io.weight", "100", false),
            ]
        );
        let quota_max = Limits {
            cpu_max: Some((Limit::Max, 20_000)),
            ..Limits::default()
        };
        assert_eq!(settings(&quota_max)[7].value, "max 20000");
        assert_eq!(settings(&Limits::default())[7].value, "max 100000");
        let huge = Limits {
            cpu_max: Some((Limit::Value(u64::MAX), u64::MAX)),
            ..Limits::default()
        };
        assert_eq!(
            settings(&huge)[7].value,
            "18446744073709551615 18446744073709551615"
        );
    }

    #[test]
    fn setup_enables_available_controllers_and_creates_units() {
        let root = fixture("setup");
        fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        // The fixture's units/ has no subtree_control until we make it; a
        // real kernel creates it with the directory.
        let got = setup_units(&root).unwrap();
        assert!(root.join("units").is_dir());
        // One write per controller; O_TRUNC leaves the last one in a plain file.
        assert_eq!(
            fs::read_to_string(root.join("cgroup.subtree_control")).unwrap(),
            "+io"
        );
        // units/cgroup.subtree_control is absent in the fixture: nothing
        // enabled there, and that is a warning, not an error.
        assert_eq!(got, Controllers::NONE);

        fs::write(root.join("units/cgroup.subtree_control"), "").unwrap();
        let got = setup_units(&root).unwrap();
        assert_eq!(got.iter().count(), 4);
        assert_eq!(
            fs::read_to_string(root.join("units/cgroup.subtree_control")).unwrap(),
            "+io"
        );
    }

    #[test]
    fn setup_with_missing_controllers_enables_the_rest() {
        let root = fixture("setup-partial");
        fs::write(root.join("cgroup.controllers"), "cpu pids\n").unwrap();
        fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        fs::create_dir(root.join("units")).unwrap();
        fs::write(root.join("units/cgroup.subtree_control"), "").unwrap();
        let got = setup_units(&root).unwrap();
        assert!(got.has(Controller::Pids) && got.has(Controller::Cpu));
        assert!(!got.has(Controller::Memory) && !got.has(Controller::Io));
    }

    #[test]
    fn setup_errors_name_the_step() {
        let root = fixture("setup-bad");
        assert!(matches!(
            setup_units(&root),
            Err(CgroupError::ReadControllers {
                errno: Errno::NOENT
            })
        ));
        assert!(matches!(
            setup_units(&root.join("nope")),
            Err(CgroupError::OpenRoot { dir: "", .. })
        ));
        assert!(matches!(
            Cgroups::open(&root),
            Err(CgroupError::OpenRoot { dir: "units", .. })
        ));
    }

    #[test]
    fn prepare_writes_set_keys_and_resets_the_rest() {
        let root = unit_fixture("prepare", "web", &LIMIT_FILES);
        let cg = Cgroups::open(&root).unwrap();
        let lim = Limits {
            memory_max: Some(Limit::Value(128 << 20)),
            memory_high: Some(Limit::Value(100 << 20)),
            memory_low: Some(Limit::Value(16 << 20)),
            memory_min: Some(Limit::Value(1 << 20)),
            memory_swap_max: Some(Limit::Value(0)),
            pids_max: Some(Limit::Value(64)),
            cpu_weight: Some(50),
            cpu_max: Some((Limit::Value(25_000), 100_000)),
            io_weight: Some(500),
        };
        let fd = cg.prepare("web", &lim).unwrap();
        assert_eq!(read(&root, "web", "memory.max"), "134217728");
        assert_eq!(read(&root, "web", "memory.high"), "104857600");
        assert_eq!(read(&root, "web", "memory.low"), "16777216");
        assert_eq!(read(&root, "web", "memory.min"), "1048576");
        assert_eq!(read(&root, "web", "memory.swap.max"), "0");
        assert_eq!(read(&root, "web", "pids.max"), "64");
        assert_eq!(read(&root, "web", "cpu.weight"), "50");
        assert_eq!(read(&root, "web", "cpu.max"), "25000 100000");
        assert_eq!(read(&root, "web", "io.weight"), "500");
        // The fd is the cgroup directory.
        let st = rustix::fs::fstat(&fd).unwrap();
        let want = fs::metadata(root.join("units/web")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(st.st_ino, want.ino());

        // A reload that removed every key puts the defaults back.
        cg.prepare("web", &Limits::default()).unwrap();
        for (f, v) in [
            ("memory.max", "max"),
            ("memory.high", "max"),
            ("memory.low", "0"),
            ("memory.min", "0"),
            ("memory.swap.max", "max"),
            ("pids.max", "max"),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("io.weight", "100"),
        ] {
            assert_eq!(read(&root, "web", f), v, "{f}");
        }
    }

    #[test]
    fn prepare_creates_the_cgroup_and_skips_missing_default_files() {
        let root = unit_fixture("prepare-new", "x", &[]);
        let cg = Cgroups::open(&root).unwrap();
        assert!(!root.join("units/db").exists());
        // No controller files at all, no keys set: fine.
        cg.prepare("db", &Limits::default()).unwrap();
        assert!(root.join("units/db").is_dir());
    }

    #[test]
    fn prepare_fails_for_a_set_key_whose_controller_is_missing() {
        // memory controller absent: only pids and cpu files exist.
        let root = unit_fixture(
            "prepare-nomem",
            "web",
            &["pids.max", "cpu.weight", "cpu.max"],
        );
        let cg = Cgroups::open(&root).unwrap();
        let ok = Limits {
            pids_max: Some(Limit::Value(10)),
            ..Limits::default()
        };
        cg.prepare("web", &ok).unwrap();
        assert_eq!(read(&root, "web", "pids.max"), "10");
        let bad = Limits {
            memory_low: Some(Limit::Value(1 << 20)),
            ..Limits::default()
        };
        let err = cg.prepare("web", &bad).unwrap_err();
        assert_eq!(
            err,
            CgroupError::Unavailable {
                unit: unit_name("web"),
                file: "memory.low"
            }
        );
        assert_eq!(
            err.to_string(),
            "cgroup: units/web/memory.low does not exist (controller not available)"
        );
    }

    #[test]
    fn prepare_reports_the_file_that_could_not_be_written() {
        let root = unit_fixture("prepare-dir", "web", &[]);
        // A directory where memory.high should be: open for write fails.
        fs::create_dir(root.join("units/web/memory.high")).unwrap();
        let cg = Cgroups::open(&root).unwrap();
        let err = cg.prepare("web", &Limits::default()).unwrap_err();
        assert_eq!(
            err,
            CgroupError::Write {
                unit: unit_name("web"),
                file: "memory.high",
                errno: Errno::ISDIR
            }
        );
        assert!(err
            .to_string()
            .starts_with("cgroup: cannot write units/web/memory.high: "));
    }

    #[test]
    fn names_that_could_escape_units_are_refused() {
        let root = unit_fixture("names", "web", &[]);
        let cg = Cgroups::open(&root).unwrap();
        for bad in ["../x", "a/b", "", ".hidden", "Web"] {
            assert!(matches!(
                cg.prepare(bad, &Limits::default()),
                Err(CgroupError::BadName { .. })
            ));
            assert!(cg.kill(bad).is_err());
            assert!(cg.remove(bad).is_err());
            assert_eq!(cg.populated(bad), None);
        }
        assert!(!root.join("x").exists());
    }

    #[test]
    fn kill_writes_one_to_cgroup_kill() {
        let root = unit_fixture("kill", "web", &["cgroup.kill"]);
        let cg = Cgroups::open(&root).unwrap();
        cg.kill("web").unwrap();
        assert_eq!(read(&root, "web", "cgroup.kill"), "1");
        assert!(matches!(
            cg.kill("gone"),
            Err(CgroupError::Write {
                file: "cgroup.kill",
                errno: Errno::NOENT,
                ..
            })
        ));
    }

    #[test]
    fn remove_deletes_and_tolerates_absence() {
        let root = unit_fixture("remove", "web", &[]);
        let cg = Cgroups::open(&root).unwrap();
        assert_eq!(cg.remove("web"), Ok(true));
        assert!(!root.join("units/web").exists());
        assert_eq!(cg.remove("web"), Ok(true));
        // A plain directory with files is not removable (cgroupfs ones are):
        // that is reported, with the unit.
        fs::create_dir(root.join("units/full")).unwrap();
        fs::write(root.join("units/full/f"), "").unwrap();
        assert!(matches!(
            cg.remove("full"),
            Err(CgroupError::Remove {
                errno: Errno::NOTEMPTY,
                ..
            })
        ));
    }

    #[test]
    fn readers_parse_files() {
        let root = unit_fixture("read", "web", &[]);
        let d = root.join("units/web");
        fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        fs::write(d.join("memory.current"), "4096\n").unwrap();
        fs::write(d.join("memory.max"), "max\n").unwrap();
        fs::write(d.join("pids.current"), "3\n").unwrap();
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\noom_group_kill 0\n",
        )
        .unwrap();
        let cg = Cgroups::open(&root).unwrap();
        assert_eq!(cg.populated("web"), Some(true));
        assert_eq!(cg.memory_current("web"), Some(4096));
        assert_eq!(cg.memory_max("web"), Some(Limit::Max));
        assert_eq!(cg.pids_current("web"), Some(3));
        let ev = cg.memory_events("web").unwrap();
        assert_eq!((ev.max, ev.oom_kill), (7, 1));
        assert_eq!(cg.memory_current("other"), None);
        fs::write(d.join("memory.max"), "1048576\n").unwrap();
        assert_eq!(cg.memory_max("web"), Some(Limit::Value(1 << 20)));
    }

    #[test]
    fn units_protection_is_written_on_the_parent() {
        let root = fixture("prot");
        fs::create_dir_all(root.join("units")).unwrap();
        for f in ["memory.low", "memory.min"] {
            fs::write(root.join("units").join(f), "0\n").unwrap();
        }
        let cg = Cgroups::open(&root).unwrap();
        cg.set_units_protection(Limit::Value(96 << 20), Limit::Max)
            .unwrap();
        let low = fs::read_to_string(root.join("units/memory.low")).unwrap();
        let min = fs::read_to_string(root.join("units/memory.min")).unwrap();
        assert_eq!((low.as_str(), min.as_str()), ("100663296", "max"));
        // Without the memory controller the files are absent: not an error.
        let bare = fixture("prot-bare");
        fs::create_dir_all(bare.join("units")).unwrap();
        let cg = Cgroups::open(&bare).unwrap();
        assert!(cg
            .set_units_protection(Limit::Value(1), Limit::Value(0))
            .is_ok());
    }

    #[test]
    fn a_fresh_cgroup_gets_only_the_keys_the_unit_sets() {
        let root = fixture("fresh");
        fs::create_dir_all(root.join("units")).unwrap();
        let cg = Cgroups::open(&root).unwrap();
        // No key set: nothing to write into a cgroup the kernel just made
        // (here, an empty directory: any write would fail with ENOENT).
        cg.prepare("plain", &Limits::default()).unwrap();
        assert_eq!(fs::read_dir(root.join("units/plain")).unwrap().count(), 0);
        // A key that is set is written, so its missing file is an error.
        let limits = Limits {
            pids_max: Some(Limit::Value(8)),
            ..Limits::default()
        };
        assert!(matches!(
            cg.prepare("limited", &limits),
            Err(CgroupError::Unavailable {
                file: "pids.max",
                ..
            })
        ));
    }
}
