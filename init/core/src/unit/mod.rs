//! Unit definitions: the typed, fixed-capacity form of `/etc/units/NAME.unit`
//! (docs/units.md) and the parser that produces it.
//!
//! Everything here is pure: no file system, no syscalls. The loader
//! (`units_dir`) reads files into a fixed buffer and hands the text here.
//! Every capacity is a named constant; exceeding one is a `FILE:LINE:` error,
//! never a truncation.

// Error messages are fixed-size strings so that parsing (which PID 1 does
// on reload) needs no allocator; they are larger than clippy likes.
#![allow(clippy::result_large_err)]

use serde::{Deserialize, Serialize};

pub use crate::confine::caps::Caps;
pub use crate::confine::Seccomp;
use crate::vocab::*;
pub use crate::vocab::{valid_name, Millis, Name};

mod packed;
mod rare;
mod seldom;
mod text;
pub use packed::{Few, PackError, Packed};
pub use rare::LimitsBox;
pub use seldom::{Seldom, SeldomBox};
pub use text::{Text, TooLong};

/// `workdir` when the file does not say (docs/units.md).
pub const WORKDIR_DEFAULT: &str = "/";

/// `start_timeout` when the file does not say (docs/units.md).
pub const START_TIMEOUT_DEFAULT: Millis = 60_000;

pub type Argv = Packed<EXEC_BYTES, ARGS_MAX>;
pub type Env = Packed<ENV_BYTES, ENV_MAX>;
/// `after` names at their real size (a `Name` each took 40 bytes).
pub type After = Packed<{ AFTER_MAX * (NAME_MAX + 1) }, AFTER_MAX>;

/// The line of each `after` name, in order, for the loader's dependency
/// errors (`parse_with_lines`): beside the definition, not in it, which
/// PID 1's table keeps long after those checks.
pub type AfterLines = Few<u32, AFTER_MAX>;

/// The line of `user`, of `group`, of `user_map` and of `root`, 0 when
/// not given: where `initctl check` reports what it finds wrong on disk
/// with the unit's ids or its root's layers (`parse_with_lines`).
pub type IdLines = [u32; 4];

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Kind {
    #[default]
    Service,
    Oneshot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ready {
    #[default]
    Started,
    /// s6 style: a line written to the fd named by `$NOTIFY_FD`.
    Notify,
    /// systemd style: `READY=1` datagram to `$NOTIFY_SOCKET`.
    SdNotify,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LimitAction {
    #[default]
    None,
    Reboot,
    Poweroff,
}

impl LimitAction {
    /// The shutdown it begins, if any.
    pub fn shutdown(self) -> Option<crate::vocab::ShutdownKind> {
        match self {
            LimitAction::None => None,
            LimitAction::Reboot => Some(crate::vocab::ShutdownKind::Reboot),
            LimitAction::Poweroff => Some(crate::vocab::ShutdownKind::Poweroff),
        }
    }
}

/// `pressure_limit = PERCENT/DURATION`: the memory stall (PSI `some`) of
/// the unit's cgroup above which `pressure_action` runs. The kernel's
/// trigger takes a window of 500 ms to 10 s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PressureLimit {
    /// 1 to 100.
    pub percent: u8,
    /// `WINDOW_MIN` to `WINDOW_MAX` ms: a `u16` holds it, and PID 1 keeps
    /// the limit beside each unit's trigger (8 bytes with its fd, not 24).
    pub window: u16,
}

impl PressureLimit {
    /// Shortest and longest window the kernel's PSI trigger accepts.
    pub const WINDOW_MIN: u16 = 500;
    pub const WINDOW_MAX: u16 = 10_000;

    /// The stall threshold in microseconds within the window.
    pub fn stall_us(self) -> u64 {
        Millis::from(self.window)
            .saturating_mul(10)
            .saturating_mul(u64::from(self.percent))
    }

    pub fn window_us(self) -> u64 {
        Millis::from(self.window).saturating_mul(1000)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PressureAction {
    /// A console line and a count in `initctl status NAME`.
    #[default]
    Log,
    Restart,
    Stop,
}

impl PressureAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PressureAction::Log => "log",
            PressureAction::Restart => "restart",
            PressureAction::Stop => "stop",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    #[default]
    Log,
    Console,
    Null,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartLimit {
    pub count: u16,
    pub window: Millis,
}

/// A cgroup value that may be `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Limit {
    Max,
    Value(u64),
}

/// `user` / `group`: a number, or a name resolved at spawn time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum IdSpec {
    Id(u32),
    /// At its real size: `Option<IdSpec>` is 16 bytes, not 48.
    Name(Text<ID_NAME_MAX>),
}

/// Namespace set as bits; see the `NS_*` constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Namespaces(pub u8);

impl Namespaces {
    pub const PID: u8 = 1;
    pub const MOUNT: u8 = 2;
    pub const UTS: u8 = 4;
    pub const IPC: u8 = 8;
    pub const NET: u8 = 16;
    pub const CGROUP: u8 = 32;
    /// The unit's root is an unprivileged uid outside (`user_map`).
    pub const USER: u8 = 64;
    pub const NONE: Namespaces = Namespaces(0);
    pub const DEFAULT: Namespaces = Namespaces(Self::PID | Self::MOUNT | Self::UTS | Self::IPC);

    /// Every namespace by its unit-file name, in the order they are
    /// written: the parser, the renderer and `status`'s confinement line
    /// all read this one table.
    pub const NAMES: [(u8, &'static str); 7] = [
        (Self::PID, "pid"),
        (Self::MOUNT, "mount"),
        (Self::UTS, "uts"),
        (Self::IPC, "ipc"),
        (Self::NET, "net"),
        (Self::CGROUP, "cgroup"),
        (Self::USER, "user"),
    ];

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// The bit of a namespace name (`pid`, `mount`, ...).
    pub fn bit(name: &str) -> Option<u8> {
        Self::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(b, _)| *b)
    }
}

/// `pid mount uts`, or `none`: the value of the `namespaces` key.
impl core::fmt::Display for Namespaces {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut sep = "";
        for (bit, name) in Self::NAMES {
            if self.has(bit) {
                write!(f, "{sep}{name}")?;
                sep = " ";
            }
        }
        Ok(())
    }
}

impl Default for Namespaces {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// `user_map = OUTSIDE COUNT`: uids and gids 0..COUNT inside a user
/// namespace are OUTSIDE.. outside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserMap {
    pub outside: u32,
    pub count: u32,
}

impl UserMap {
    pub const DEFAULT: UserMap = UserMap {
        outside: 100_000,
        count: 65_536,
    };
}

/// The cgroup keys of a unit, written before its first instruction runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub memory_max: Option<Limit>,
    pub memory_high: Option<Limit>,
    pub memory_low: Option<Limit>,
    pub memory_min: Option<Limit>,
    pub memory_swap_max: Option<Limit>,
    pub pids_max: Option<Limit>,
    pub cpu_weight: Option<u16>,
    /// (quota or max, period in microseconds)
    pub cpu_max: Option<(Limit, u64)>,
    pub io_weight: Option<u16>,
}

/// One unit file, parsed. Defaults are those of docs/units.md, "Keys".
/// Two are equal when they mean the same (`PartialEq` below).
#[derive(Clone, Debug)]
pub struct UnitDef {
    pub name: Name,
    pub description: Text<DESC_MAX>,
    pub exec: Argv,
    /// Line of `exec`, so the loader can point at it when the program is
    /// missing or not executable.
    pub exec_line: u32,
    pub kind: Kind,
    pub restart: Restart,
    pub restart_delay: Millis,
    pub restart_delay_max: Millis,
    pub start_limit_action: LimitAction,
    pub after: After,
    pub ready: Ready,
    /// Signal number (e.g. 15 for TERM).
    pub stop_signal: i32,
    pub stop_timeout: Millis,
    pub workdir: Text<PATH_BYTES>,
    /// Only the entries from the file; the spawner adds the defaults
    /// (PATH, HOME, TERM) that are not overridden.
    pub env: Env,
    pub console: bool,
    pub output: Output,
    pub namespaces: Namespaces,
    /// Bytes of the unit's output ring (`output = log`): `log_size`.
    pub log_size: u32,
    /// Only the keys the unit sets, boxed (`LimitsBox`): most set none.
    pub limits: LimitsBox,
    pub pressure_action: PressureAction,
    /// `shed_order`: under system memory pressure (`wren.shed=`), running
    /// units with an order are stopped lowest first; None: never shed.
    pub shed_order: Option<u16>,
    /// `critical = yes`: the device cannot live without it; with a
    /// hardware watchdog (`wren.watchdog`), once it is `failed` PID 1 stops
    /// feeding the watchdog and the board resets.
    pub critical: bool,
    /// `start_timeout`: a unit not ready within this of its spawn is a
    /// failed start.
    pub start_timeout: Millis,
    /// `no_new_privs = yes` (a `seccomp` filter implies it).
    pub no_new_privs: bool,
    /// Boxed: most units have none (8 bytes rather than 56).
    pub seccomp: Option<Box<Seccomp>>,
    /// `root`, `start_limit`, `user`, `group`, `hostname`,
    /// `pressure_limit`, `watchdog`, `capabilities`, `user_map`: boxed, most
    /// units set none.
    pub seldom: SeldomBox,
    /// `read_only = yes`: `/` (or `root`) read-only, private /tmp and /run.
    pub read_only: bool,
    /// `root_overlay = yes`: `root` is the lower layer of an overlay on a
    /// fresh tmpfs at each start.
    pub root_overlay: bool,
}

/// Equal when they mean the same: every field but the source lines of
/// `exec` and `after`, which only point error messages at the file. A
/// reload compares definitions, and a comment added above `exec` must not
/// restart a running unit. Each field is named here (no `..`), so a new
/// one does not build until it is placed.
impl PartialEq for UnitDef {
    fn eq(&self, o: &Self) -> bool {
        let UnitDef {
            name,
            description,
            exec,
            exec_line: _,
            kind,
            restart,
            restart_delay,
            restart_delay_max,
            start_limit_action,
            after,
            ready,
            stop_signal,
            stop_timeout,
            workdir,
            env,
            console,
            output,
            namespaces,
            log_size,
            limits,
            pressure_action,
            shed_order,
            critical,
            start_timeout,
            no_new_privs,
            seccomp,
            seldom,
            read_only,
            root_overlay,
        } = self;
        *name == o.name
            && *description == o.description
            && *exec == o.exec
            && *kind == o.kind
            && *restart == o.restart
            && *restart_delay == o.restart_delay
            && *restart_delay_max == o.restart_delay_max
            && *start_limit_action == o.start_limit_action
            && *after == o.after
            && *ready == o.ready
            && *stop_signal == o.stop_signal
            && *stop_timeout == o.stop_timeout
            && *workdir == o.workdir
            && *env == o.env
            && *console == o.console
            && *output == o.output
            && *namespaces == o.namespaces
            && *log_size == o.log_size
            && *limits == o.limits
            && *pressure_action == o.pressure_action
            && *shed_order == o.shed_order
            && *critical == o.critical
            && *start_timeout == o.start_timeout
            && *no_new_privs == o.no_new_privs
            && *seccomp == o.seccomp
            && *seldom == o.seldom
            && *read_only == o.read_only
            && *root_overlay == o.root_overlay
    }
}

impl Eq for UnitDef {}

impl UnitDef {
    /// Whether the namespace's reaper may start the service again itself,
    /// in the namespaces and cgroup it keeps, when it ends (PID 1 hears of
    /// it after: `Event::Relaunched`): a service restarted at once
    /// (`restart_delay = 0ms`) whose start needs nothing of PID 1's but
    /// what the reaper holds. Not with `ready` other than `started` (PID 1
    /// waits for that), a `watchdog` or a `start_limit` (PID 1's to judge),
    /// a user namespace (PID 1 writes its maps), a root that is new at
    /// each start (`root_overlay`), a seccomp filter (PID 1's copy), or
    /// output to the console (PID 1 opens it).
    pub fn relaunches_in_place(&self) -> bool {
        self.kind == Kind::Service
            && self.restart != Restart::Never
            && self.restart_delay == 0
            && self.namespaces.has(Namespaces::PID)
            && !self.namespaces.has(Namespaces::USER)
            && self.ready == Ready::Started
            && self.seldom.watchdog.is_none()
            && self.seldom.start_limit.is_none()
            && !self.root_is_overlay()
            && self.seccomp.is_none()
            && !self.console
            && self.output != Output::Console
    }

    /// The capabilities the unit keeps: `capabilities`, or all for root
    /// (`root`: it runs as uid 0, inside its user namespace if it has one)
    /// and none for any other user.
    pub fn kept_caps(&self, root: bool) -> Caps {
        self.seldom
            .capabilities
            .unwrap_or(if root { Caps::ALL } else { Caps::NONE })
    }

    /// `no_new_privs`, which a seccomp filter implies: without it the
    /// kernel takes a filter only from a process with CAP_SYS_ADMIN, and
    /// a setuid program could shed the filter's purpose.
    pub fn no_new_privs_effective(&self) -> bool {
        self.no_new_privs || self.seccomp.is_some()
    }

    /// The id map of the unit's user namespace, if it has one.
    pub fn user_map_effective(&self) -> Option<UserMap> {
        self.namespaces
            .has(Namespaces::USER)
            .then(|| self.seldom.user_map.unwrap_or(UserMap::DEFAULT))
    }

    /// The directories of `root`, topmost first (one unless it names
    /// layers).
    pub fn root_layers(&self) -> impl Iterator<Item = &str> {
        self.seldom
            .root
            .as_deref()
            .unwrap_or("")
            .split(':')
            .filter(|l| !l.is_empty())
    }

    /// `root` is mounted as an overlay: several layers, or `root_overlay`.
    pub fn root_is_overlay(&self) -> bool {
        self.root_overlay || self.root_layers().nth(1).is_some()
    }

    /// `user` is unset, 0 or `root` (inside the unit's user namespace, if
    /// it has one).
    pub fn named_root(&self) -> bool {
        match &self.seldom.user {
            None | Some(IdSpec::Id(0)) => true,
            Some(IdSpec::Name(n)) => n.as_str() == "root",
            Some(IdSpec::Id(_)) => false,
        }
    }

    /// A unit file that could run as root (no `user`, or uid 0) with
    /// every capability and no namespace: nothing confines it.
    pub fn unconfined(&self) -> bool {
        self.named_root() && self.unconfined_as_root()
    }

    /// `unconfined` for a unit that runs as root whatever its `user` says
    /// (a name the passwd file gives uid 0, as `check` finds).
    pub fn unconfined_as_root(&self) -> bool {
        self.namespaces == Namespaces::NONE
            && self.kept_caps(true) == Caps::ALL
            && self.seccomp.is_none()
            && !self.no_new_privs
    }

    /// Uses least privilege: a non-root user, fewer than all
    /// capabilities, no_new_privs, a filter, a user namespace or a
    /// read-only or overlay root.
    pub fn confined(&self) -> bool {
        !self.named_root()
            || self.kept_caps(true) != Caps::ALL
            || self.no_new_privs_effective()
            || self.namespaces.has(Namespaces::USER)
            || self.read_only
            || self.root_overlay
    }

    /// A unit with every default and the given name and program; the
    /// parser starts from this, and PID 1 builds the rescue shell with it.
    pub fn with_defaults(name: &str) -> Self {
        let mut d = Self::defaults_but_workdir(name);
        let _ = d.workdir.push_str(WORKDIR_DEFAULT);
        d
    }

    /// `with_defaults` with an empty `workdir`: allocates nothing, so
    /// `render` (a query PID 1 answers in its loop) can compare with it.
    pub(crate) fn defaults_but_workdir(name: &str) -> Self {
        let mut n = Name::new();
        // Names are validated before this is called; an over-long name is
        // left empty rather than panicking.
        let _ = n.push_str(name);
        UnitDef {
            name: n,
            description: Text::new(),
            exec: Argv::new(),
            exec_line: 0,
            kind: Kind::Service,
            restart: Restart::Always,
            restart_delay: RESTART_DELAY_DEFAULT,
            restart_delay_max: 30_000,
            start_limit_action: LimitAction::None,
            after: After::new(),
            ready: Ready::Started,
            stop_signal: 15,
            stop_timeout: 5_000,
            workdir: Text::new(),
            env: Env::new(),
            console: false,
            output: Output::Log,
            namespaces: Namespaces::DEFAULT,
            log_size: LOG_SIZE_DEFAULT,
            limits: LimitsBox::default(),
            pressure_action: PressureAction::Log,
            shed_order: None,
            critical: false,
            start_timeout: START_TIMEOUT_DEFAULT,
            no_new_privs: false,
            seccomp: None,
            seldom: SeldomBox::default(),
            read_only: false,
            root_overlay: false,
        }
    }
}

mod lists;
mod parse;
mod render;
mod rules;
mod suggest;
mod values;

pub use parse::*;
pub use render::render;
pub use suggest::suggest_key;
pub use values::{
    parse_capabilities, parse_duration, parse_pressure_limit, parse_seccomp, parse_signal,
    parse_size, parse_user_map, split_exec,
};

#[cfg(test)]
mod tests;
