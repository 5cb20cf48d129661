//! The shared vocabulary: what the supervisor, the wire protocol, PID 1's
//! edges and `initctl` all speak of. Names, capacities, states, exits,
//! shutdown kinds, signals and the fixed paths of the running system
//! (docs/units.md and docs/initctl.md describe them for users).

use heapless::String;
use serde::{Deserialize, Serialize};

/// Units PID 1 can hold at once. Its tables are sized to the units
/// configured (at boot and on reload), so this is only a cap: slots are
/// `u16` and epoll tokens carry them in 16 bits, and each unit may hold up
/// to five fds in PID 1 (cgroup directory, output, readiness, reaper
/// report, pressure trigger), which PID 1's raised `RLIMIT_NOFILE` covers.
/// Below it the machine sets the limit: `pid_max` (two processes per unit
/// with a PID namespace) and memory (docs/architecture.md, "Memory").
pub const MAX_UNITS: usize = 4096;
/// Unit name length, as docs/units.md, "Names" fixes it.
pub const NAME_MAX: usize = 32;
/// Bytes of `exec` once split (arguments joined by NUL).
pub const EXEC_BYTES: usize = 512;
/// Arguments in `exec`, the program included.
pub const ARGS_MAX: usize = 32;
/// `env` entries per unit.
pub const ENV_MAX: usize = 16;
/// Bytes of all `env` entries together (joined by NUL).
pub const ENV_BYTES: usize = 1024;
/// Names in `after`, all lines together.
pub const AFTER_MAX: usize = 16;
/// Bytes of `description`.
pub const DESC_MAX: usize = 96;
/// Bytes of a path value (`workdir`, `root`).
pub const PATH_BYTES: usize = 128;
/// Layers in `root` (`LOWER:...`, topmost first): an image's layers
/// from the store, `/var/lib/wren/layers/sha256/HEX`, 92 bytes each.
pub const MAX_ROOT_LAYERS: usize = 8;
/// Bytes of `root`: `MAX_ROOT_LAYERS` store paths and their separators.
pub const ROOT_BYTES: usize = 768;
/// Bytes of `hostname` (the kernel's limit is 64).
pub const HOSTNAME_MAX: usize = 64;
/// Bytes of a user or group name.
pub const ID_NAME_MAX: usize = 32;
/// Largest COUNT in `start_limit`: the failure times are kept in a ring.
pub const START_LIMIT_MAX: usize = 255;
/// Default and bounds of `log_size`, the per-unit output ring in PID 1
/// (RAM only: nothing is written to the SD card).
pub const LOG_SIZE_DEFAULT: u32 = crate::log_ring::LOG_RING_BYTES as u32;
pub const LOG_SIZE_MIN: u32 = 512;
pub const LOG_SIZE_MAX: u32 = 1 << 20;
/// Size of a unit file the loader reads; larger files are an error.
pub const UNIT_FILE_MAX: usize = 8192;
/// `restart_delay` when not given, and the delay a crash loop with none
/// backs off from (`supervisor::process`).
pub const RESTART_DELAY_DEFAULT: Millis = 100;
/// A run shorter than this may be a crash loop: with no `restart_delay`,
/// PID 1 backs its failure off, and a namespace reaper restarts in place
/// only a longer one (as runit's `runsv` waits a second before it starts
/// again a service that ran for less).
pub const QUICK_RUN_MS: Millis = 1_000;

/// A unit's name, its length in a byte: 33 bytes where `usize`'s took 40, in
/// every unit's definition.
pub type Name = String<NAME_MAX, u8>;

/// Milliseconds; every duration and timestamp in wren is one of these.
pub type Millis = u64;

/// A time a timer is due, on the `Millis` clock, never 0: `Option<Due>`
/// is 8 bytes where `Option<Millis>` is 16, and PID 1 keeps a few per
/// unit. Serialized as the `u64` it stands for, so `Option<Due>` travels
/// as an `Option<Millis>` does.
pub type Due = core::num::NonZeroU64;

/// `ms` as a `Due`: 0 becomes 1 ms, which no timer can tell apart
/// (CLOCK_MONOTONIC is far past it before PID 1 runs).
pub const fn due(ms: Millis) -> Option<Due> {
    Due::new(if ms == 0 { 1 } else { ms })
}

/// A `Millis` stored as two `u32` halves: 4-byte aligned, so a `Note`
/// holding one packs into 16 bytes and an `Action` into 20 (with an
/// `Option<u64>` they were 24 and 32: the loop's action buffer holds
/// several per unit). The high half is kept plus one, never 0, so an
/// `Option<Delay>` is 8 bytes too (a delay over 2^64 - 2^32 - 1 ms,
/// hundreds of millions of years, reads back as that). Serialized as the
/// `u64` it stands for.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Delay {
    hi: core::num::NonZeroU32,
    lo: u32,
}

impl Delay {
    pub const fn ms(ms: Millis) -> Self {
        const TOP: Millis = u64::MAX - (1 << 32);
        let ms = if ms > TOP { TOP } else { ms };
        let hi = match core::num::NonZeroU32::new(((ms >> 32) as u32) + 1) {
            Some(hi) => hi,
            None => core::num::NonZeroU32::MIN,
        };
        Delay { hi, lo: ms as u32 }
    }

    pub const fn get(self) -> Millis {
        (((self.hi.get() - 1) as u64) << 32) | self.lo as u64
    }
}

impl From<Millis> for Delay {
    fn from(ms: Millis) -> Self {
        Delay::ms(ms)
    }
}

impl core::fmt::Display for Delay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(&self.get(), f)
    }
}

impl core::fmt::Debug for Delay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&self.get(), f)
    }
}

impl serde::Serialize for Delay {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.get())
    }
}

impl<'de> serde::Deserialize<'de> for Delay {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Millis::deserialize(d).map(Delay::ms)
    }
}

/// Is `name` a valid unit name (1-32 of `a-z 0-9 . _ -`, first a letter or
/// digit)?
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let Some(first) = b.first() else {
        return false;
    };
    b.len() <= NAME_MAX
        && first.is_ascii_alphanumeric()
        && !first.is_ascii_uppercase()
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

/// Why `name` cannot be a unit's, if it has a prefix of the kernel's
/// cgroup files (`cgroup_file_name`): the one wording of the loader,
/// `initctl edit` and `wren-oci`.
pub fn reserved_name(name: &str) -> Option<ReservedName<'_>> {
    cgroup_file_name(name).map(|ctl| ReservedName { name, ctl })
}

/// A unit name the kernel's cgroup files take (`reserved_name`).
pub struct ReservedName<'a> {
    name: &'a str,
    ctl: &'static str,
}

impl core::fmt::Display for ReservedName<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (name, ctl) = (self.name, self.ctl);
        write!(
            f,
            "`{name}` cannot be a unit name: in units/, names beginning `{ctl}.` are the kernel's (its `{ctl}.*` files, and those a later kernel adds)"
        )
    }
}

/// The prefix of `name` that the kernel's cgroup interface files use
/// (`cgroup.procs`, `memory.max`, `cpu.weight`: CONTROLLER.KEY), if it
/// has one: a unit of that name could never have its own cgroup
/// directory, `units/NAME`.
pub fn cgroup_file_name(name: &str) -> Option<&'static str> {
    const PREFIXES: [&str; 10] = [
        "cgroup", "memory", "pids", "cpu", "cpuset", "io", "hugetlb", "rdma", "misc", "irq",
    ];
    let (head, _) = name.split_once('.')?;
    PREFIXES.into_iter().find(|p| *p == head)
}

// Unit slots are `u16` in the supervisor, the protocol and epoll tokens.
const _: () = assert!(MAX_UNITS <= u16::MAX as usize, "unit slots are u16");
const _: () = assert!(START_LIMIT_MAX <= u8::MAX as usize);
const _: () = assert!(MAX_ROOT_LAYERS * 93 <= ROOT_BYTES && ROOT_BYTES >= PATH_BYTES);
const _: () = assert!(LOG_SIZE_MIN <= LOG_SIZE_DEFAULT && LOG_SIZE_DEFAULT <= LOG_SIZE_MAX);

/// Where the unit files live unless `wren.units=DIR` says otherwise.
pub const DEFAULT_UNITS_DIR: &str = "/etc/units";
/// wren-oci's layer store (`sha256/HEX` below it): root's, mode 0700.
pub const LAYER_STORE: &str = "/var/lib/wren/layers";
/// PID 1's runtime directory (root only).
pub const RUN_DIR: &str = "/run/wren";
/// `RUN_DIR` as a C string, as `CGROUP_ROOT_C` is `CGROUP_ROOT`.
pub const RUN_DIR_C: &core::ffi::CStr = c"/run/wren";
/// The control socket `initctl` talks to.
pub const CONTROL_SOCKET: &str = "/run/wren/control";
/// Per-unit `sd_notify` sockets.
pub const NOTIFY_DIR: &str = "/run/wren/notify";
/// `NOTIFY_DIR` as a C string.
pub const NOTIFY_DIR_C: &core::ffi::CStr = c"/run/wren/notify";
/// Where cgroup2 is mounted; every unit `NAME` runs in `units/NAME` below.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
/// `CGROUP_ROOT` as a C string, for a system call given it alone (no
/// copy of the `&str` into one: issue 10).
pub const CGROUP_ROOT_C: &core::ffi::CStr = c"/sys/fs/cgroup";

/// A unit's state as `initctl status` shows it (docs/initctl.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Starting,
    Running,
    Stopping,
    Stopped,
    Exited,
    Backoff,
    Failed,
}

impl State {
    /// Every state, in declaration order (a state's index is its number
    /// on the wire).
    pub const ALL: [State; 7] = [
        State::Starting,
        State::Running,
        State::Stopping,
        State::Stopped,
        State::Exited,
        State::Backoff,
        State::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Exited => "exited",
            State::Backoff => "backoff",
            State::Failed => "failed",
        }
    }
}

/// How a unit's main process ended. An `i16` holds every exit status
/// (0-255) and signal number, and keeps `Exit` at 4 bytes: with it the
/// loop's `Event` is 8, an `Action` 16 and a unit's last `Note` 12. On the
/// wire (postcard's zigzag varints) it is the `i32` it was.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exit {
    Code(i16),
    Signal(i16),
    /// Killed by the kernel's OOM killer inside the unit's cgroup (read from
    /// `memory.events` by the edge).
    OomKill,
}

impl Exit {
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// An exit status as the kernel gives it (an `int`), out of `i16`'s
    /// range clamped (no process can exit so).
    pub fn code(c: i32) -> Exit {
        Exit::Code(clamp_i16(c))
    }

    /// A signal number as the kernel gives it.
    pub fn signal(s: i32) -> Exit {
        Exit::Signal(clamp_i16(s))
    }
}

fn clamp_i16(v: i32) -> i16 {
    i16::try_from(v).unwrap_or(if v < 0 { i16::MIN } else { i16::MAX })
}

/// What the machine does once everything is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShutdownKind {
    Reboot,
    Halt,
    Poweroff,
}

impl ShutdownKind {
    /// The BusyBox signal conventions (docs/boot.md, "Signals to PID 1"):
    /// SIGHUP, the reload, is not a shutdown and gives None.
    pub fn for_signal(signo: i32) -> Option<ShutdownKind> {
        match signo {
            signal::TERM | signal::INT => Some(ShutdownKind::Reboot),
            signal::USR1 => Some(ShutdownKind::Halt),
            signal::USR2 => Some(ShutdownKind::Poweroff),
            _ => None,
        }
    }

    pub fn verb(self) -> &'static str {
        match self {
            ShutdownKind::Reboot => "rebooting",
            ShutdownKind::Halt => "halting",
            ShutdownKind::Poweroff => "powering off",
        }
    }
}

/// Linux signal numbers and names. They are the same on every architecture
/// wren targets (arm, aarch64, x86_64: the asm-generic numbering); a host
/// test in the `wren` crate checks this table against the C library's.
pub mod signal {
    pub const HUP: i32 = 1;
    pub const INT: i32 = 2;
    pub const KILL: i32 = 9;
    pub const USR1: i32 = 10;
    pub const USR2: i32 = 12;
    pub const TERM: i32 = 15;

    /// Every catchable-or-not standard signal, without the `SIG` prefix.
    pub const NAMES: [(&str, i32); 31] = [
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("STKFLT", 16),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("TTIN", 21),
        ("TTOU", 22),
        ("URG", 23),
        ("XCPU", 24),
        ("XFSZ", 25),
        ("VTALRM", 26),
        ("PROF", 27),
        ("WINCH", 28),
        ("IO", 29),
        ("PWR", 30),
        ("SYS", 31),
    ];

    /// The name of signal `n` without `SIG` (`TERM`), if it is a standard one.
    pub fn name(n: i32) -> Option<&'static str> {
        NAMES.iter().find(|(_, v)| *v == n).map(|(s, _)| *s)
    }

    /// A signal name (`TERM`, `SIGTERM`, `term`) to its number.
    pub fn parse(v: &str) -> Option<i32> {
        let bare = match v.get(..3) {
            Some(p) if v.len() > 3 && p.eq_ignore_ascii_case("SIG") => v.get(3..)?,
            _ => v,
        };
        NAMES
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(bare))
            .map(|(_, n)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::cgroup_file_name;

    /// CONTROLLER.KEY, as the kernel names its cgroup files: not a unit's
    /// name; a name that only starts like one is.
    #[test]
    fn names_of_cgroup_files_are_told_apart() {
        assert_eq!(cgroup_file_name("memory.max"), Some("memory"));
        assert_eq!(cgroup_file_name("cgroup.procs"), Some("cgroup"));
        assert_eq!(cgroup_file_name("io.web"), Some("io"));
        assert_eq!(cgroup_file_name("memorial.web"), None);
        assert_eq!(cgroup_file_name("web"), None);
        assert_eq!(cgroup_file_name("web.memory"), None);
    }

    #[test]
    fn the_c_strings_are_the_same_paths() {
        use super::*;
        assert_eq!(CGROUP_ROOT_C.to_bytes(), CGROUP_ROOT.as_bytes());
        assert_eq!(RUN_DIR_C.to_bytes(), RUN_DIR.as_bytes());
        assert_eq!(NOTIFY_DIR_C.to_bytes(), NOTIFY_DIR.as_bytes());
    }
}
