//! Unit definitions: the typed, fixed-capacity form of `/etc/units/NAME.unit`
//! (CONTRACT section 4) and the parser that produces it.
//!
//! Everything here is pure: no file system, no syscalls. The loader
//! (`units_dir`) reads files into a fixed buffer and hands the text here.
//! Every capacity is a named constant; exceeding one is a `FILE:LINE:` error,
//! never a truncation.

// Error messages are fixed-size strings so that parsing (which PID 1 does
// on reload) needs no allocator; they are larger than clippy likes.
#![allow(clippy::result_large_err)]

use heapless::{String, Vec};
use serde::{Deserialize, Serialize};

/// Units PID 1 can hold at once (unit table size).
pub const MAX_UNITS: usize = 64;
/// Unit name length, as CONTRACT section 4 fixes it.
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
/// Bytes of `hostname` (the kernel's limit is 64).
pub const HOSTNAME_MAX: usize = 64;
/// Bytes of a user or group name.
pub const ID_NAME_MAX: usize = 32;
/// Largest COUNT in `start_limit`: the failure times are kept in a ring.
pub const START_LIMIT_MAX: usize = 32;
/// Default and bounds of `log_size`, the per-unit output ring in PID 1
/// (RAM only: nothing is written to the SD card).
pub const LOG_SIZE_DEFAULT: u32 = crate::logbuf::LOG_RING_BYTES as u32;
pub const LOG_SIZE_MIN: u32 = 512;
pub const LOG_SIZE_MAX: u32 = 1 << 20;
/// Size of a unit file the loader reads; larger files are an error.
pub const UNIT_FILE_MAX: usize = 8192;

pub type Name = String<NAME_MAX>;

/// Milliseconds; every duration and timestamp in wren is one of these.
pub type Millis = u64;

/// Strings packed as `a\0b\0c` in one fixed buffer, with their count.
/// Used for argv and env so that spawning needs no allocation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Packed<const N: usize, const M: usize> {
    buf: String<N>,
    count: u8,
}

/// Why a `Packed` push failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PackError {
    TooMany,
    TooLong,
    /// An embedded NUL cannot be passed to execve.
    Nul,
}

impl<const N: usize, const M: usize> Packed<N, M> {
    pub const fn new() -> Self {
        Packed {
            buf: String::new(),
            count: 0,
        }
    }

    pub fn push(&mut self, s: &str) -> Result<(), PackError> {
        if s.contains('\0') {
            return Err(PackError::Nul);
        }
        if usize::from(self.count) >= M {
            return Err(PackError::TooMany);
        }
        let need = s.len() + usize::from(self.count > 0);
        if self.buf.len() + need > N {
            return Err(PackError::TooLong);
        }
        if self.count > 0 {
            self.buf.push('\0').map_err(|_| PackError::TooLong)?;
        }
        self.buf.push_str(s).map_err(|_| PackError::TooLong)?;
        self.count += 1;
        Ok(())
    }

    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let n = self.len();
        self.buf.split('\0').take(n)
    }

    pub fn first(&self) -> Option<&str> {
        self.iter().next()
    }
}

pub type Argv = Packed<EXEC_BYTES, ARGS_MAX>;
pub type Env = Packed<ENV_BYTES, ENV_MAX>;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    #[default]
    Service,
    Oneshot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Restart {
    Always,
    OnFailure,
    Never,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ready {
    #[default]
    Started,
    /// s6 style: a line written to the fd named by `$NOTIFY_FD`.
    Notify,
    /// systemd style: `READY=1` datagram to `$NOTIFY_SOCKET`.
    SdNotify,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitAction {
    #[default]
    None,
    Reboot,
    Poweroff,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    Name(String<ID_NAME_MAX>),
}

/// Namespace set as bits; see the `NS_*` constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Namespaces(pub u8);

impl Namespaces {
    pub const PID: u8 = 1;
    pub const MOUNT: u8 = 2;
    pub const UTS: u8 = 4;
    pub const IPC: u8 = 8;
    pub const NET: u8 = 16;
    pub const CGROUP: u8 = 32;
    pub const NONE: Namespaces = Namespaces(0);
    pub const DEFAULT: Namespaces = Namespaces(Self::PID | Self::MOUNT | Self::UTS | Self::IPC);

    pub fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
}

impl Default for Namespaces {
    fn default() -> Self {
        Self::DEFAULT
    }
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

/// One unit file, parsed. Defaults are those of CONTRACT section 4.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitDef {
    pub name: Name,
    pub description: String<DESC_MAX>,
    pub exec: Argv,
    /// Line of `exec`, so the loader can point at it when the program is
    /// missing or not executable.
    pub exec_line: u32,
    pub kind: Kind,
    pub restart: Restart,
    pub restart_delay: Millis,
    pub restart_delay_max: Millis,
    pub start_limit: Option<StartLimit>,
    pub start_limit_action: LimitAction,
    pub after: Vec<Name, AFTER_MAX>,
    /// Line of each `after` name, same order, for dependency errors.
    pub after_lines: Vec<u32, AFTER_MAX>,
    pub ready: Ready,
    /// Signal number (e.g. 15 for TERM).
    pub stop_signal: i32,
    pub stop_timeout: Millis,
    pub user: Option<IdSpec>,
    pub group: Option<IdSpec>,
    pub workdir: String<PATH_BYTES>,
    /// Only the entries from the file; the spawner adds the defaults
    /// (PATH, HOME, TERM) that are not overridden.
    pub env: Env,
    pub console: bool,
    pub output: Output,
    pub namespaces: Namespaces,
    /// Bytes of the unit's output ring (`output = log`): `log_size`.
    pub log_size: u32,
    pub hostname: Option<String<HOSTNAME_MAX>>,
    pub root: Option<String<PATH_BYTES>>,
    pub limits: Limits,
}

impl UnitDef {
    /// A unit with every default and the given name and program; the
    /// parser starts from this, and PID 1 builds the rescue shell with it.
    pub fn with_defaults(name: &str) -> Self {
        let mut n = Name::new();
        // Names are validated before this is called; an over-long name is
        // left empty rather than panicking.
        let _ = n.push_str(name);
        UnitDef {
            name: n,
            description: String::new(),
            exec: Argv::new(),
            exec_line: 0,
            kind: Kind::Service,
            restart: Restart::Always,
            restart_delay: 100,
            restart_delay_max: 30_000,
            start_limit: None,
            start_limit_action: LimitAction::None,
            after: Vec::new(),
            after_lines: Vec::new(),
            ready: Ready::Started,
            stop_signal: 15,
            stop_timeout: 5_000,
            user: None,
            group: None,
            workdir: {
                let mut w = String::new();
                let _ = w.push('/');
                w
            },
            env: Env::new(),
            console: false,
            output: Output::Log,
            namespaces: Namespaces::DEFAULT,
            log_size: LOG_SIZE_DEFAULT,
            hostname: None,
            root: None,
            limits: Limits::default(),
        }
    }
}

/// A parse error: the line (1-based, 0 for the file as a whole) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: u32,
    pub msg: String<160>,
}

/// Is `name` a valid unit name (1-32 of `a-z 0-9 . _ -`, first a letter or
/// digit)?
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= NAME_MAX
        && b[0].is_ascii_alphanumeric()
        && !b[0].is_ascii_uppercase()
        && b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
        })
}

// ---------------------------------------------------------------------------
// The parser.
//
// Syntax decisions where CONTRACT section 4 is silent (also in the report):
// - A UTF-8 byte order mark at the start is skipped; CRLF line ends work
//   (the `\r` is trimmed with the other whitespace).
// - Only whole-line comments: a `#` inside a value is part of the value
//   (so `exec = /bin/sh -c "echo #1"` works). Keys are case-sensitive.
// - Durations: a whole number with `ms`, `s`, `m` or `h`; a plain number is
//   seconds (as in systemd).
// - Sizes: a whole number with an optional `K`, `M`, `G` (either case,
//   powers of 1024), or `max`.
// - `exec`: only `"` quotes group (a `'` is an ordinary character); `\`
//   escapes the next character inside and outside quotes; quotes may sit
//   inside a word (`a"b c"` is the one argument `ab c`); `""` is an empty
//   argument.
// - `restart_delay_max` left unset grows to `restart_delay` when that is
//   longer than 30s; both set with max < delay is an error.
// - `console = yes` without `output` means `output = console`; with an
//   explicit `output`, stdout/stderr follow `output` and only stdin and
//   the controlling tty are the console.
// - `console` takes yes/no/true/false; `stop_signal` a name in any case,
//   with or without `SIG`.
// - `cpu.max = QUOTA` without PERIOD uses the kernel's default 100000us;
//   QUOTA >= 1000 and PERIOD in 1000..=1000000 as the kernel requires.
// - `hostname` needs `uts` in `namespaces`, `root` needs `mount`: without
//   their namespace they would change the whole system.
// - An `env` KEY may not contain blanks or `=` and may not be set twice;
//   an empty value (`after =`, `namespaces =`, ...) is a bad value except
//   for `description`.
// ---------------------------------------------------------------------------

/// Every key, in the order of CONTRACT section 4. The index of a key here
/// is its slot in the parser's "seen on line" table.
pub const KEYS: [&str; 31] = [
    "description",
    "exec",
    "type",
    "restart",
    "restart_delay",
    "restart_delay_max",
    "start_limit",
    "start_limit_action",
    "after",
    "ready",
    "stop_signal",
    "stop_timeout",
    "user",
    "group",
    "workdir",
    "env",
    "console",
    "output",
    "namespaces",
    "log_size",
    "hostname",
    "root",
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

/// Keys that may appear on more than one line.
fn repeatable(key: &str) -> bool {
    matches!(key, "after" | "env")
}

type Msg = String<160>;

/// Formats into a `Msg`, ending it with `...` instead of failing when the
/// text does not fit: an error message is never worth an error.
struct MsgWriter {
    msg: Msg,
    full: bool,
}

impl core::fmt::Write for MsgWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for c in s.chars() {
            if self.full {
                break;
            }
            if self.msg.push(c).is_err() {
                while self.msg.len() + 3 > self.msg.capacity() {
                    if self.msg.pop().is_none() {
                        break;
                    }
                }
                let _ = self.msg.push_str("...");
                self.full = true;
            }
        }
        Ok(())
    }
}

fn msg(args: core::fmt::Arguments<'_>) -> Msg {
    let mut w = MsgWriter {
        msg: Msg::new(),
        full: false,
    };
    let _ = core::fmt::write(&mut w, args);
    w.msg
}

macro_rules! bad {
    ($($arg:tt)*) => { return Err(msg(format_args!($($arg)*))) };
}

/// A value shown in a message, cut to a readable length.
struct Clip<'a>(&'a str);

impl core::fmt::Display for Clip<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        const SHOW: usize = 40;
        match self.0.char_indices().nth(SHOW) {
            Some((i, _)) => write!(f, "{}...", self.0.get(..i).unwrap_or("")),
            None => f.write_str(self.0),
        }
    }
}

/// Optimal string alignment distance (Levenshtein plus transpositions),
/// ASCII-case-insensitive; `None` for strings too long to bother with.
fn edit_distance(a: &str, b: &str) -> Option<usize> {
    const N: usize = 40;
    let a = a.as_bytes();
    let b = b.as_bytes();
    // Both lengths are below N, so every index below (at most len + 1)
    // is in bounds of the N-element rows.
    if a.len() >= N || b.len() >= N {
        return None;
    }
    // Three rows: the one before the previous one is needed for
    // transpositions.
    let mut prev2 = [0usize; N];
    let mut prev = [0usize; N];
    let mut cur = [0usize; N];
    for (j, p) in prev.iter_mut().enumerate().take(b.len() + 1) {
        *p = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cost = usize::from(!ca.eq_ignore_ascii_case(&cb));
            let mut d = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 {
                let (pa, pb) = (a.get(i - 1), b.get(j - 1));
                if pa.is_some_and(|pa| pa.eq_ignore_ascii_case(&cb))
                    && pb.is_some_and(|pb| pb.eq_ignore_ascii_case(&ca))
                {
                    d = d.min(prev2[j - 1] + 1);
                }
            }
            cur[j + 1] = d;
        }
        prev2 = prev;
        prev = cur;
    }
    prev.get(b.len()).copied()
}

/// The known key closest to a misspelt one, if any is close enough.
pub fn suggest_key(key: &str) -> Option<&'static str> {
    let limit = if key.len() >= 5 { 2 } else { 1 };
    KEYS.iter()
        .filter_map(|k| edit_distance(key, k).map(|d| (d, *k)))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// `250ms`, `2s`, `1m`, `1h`, or a plain number of seconds.
pub fn parse_duration(v: &str) -> Option<Millis> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = (v.get(..digits)?, v.get(digits..)?);
    if num.is_empty() {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    let scale = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// Bytes with an optional `K`, `M`, `G` (powers of 1024), or `max`.
pub fn parse_size(v: &str) -> Option<Limit> {
    if v == "max" {
        return Some(Limit::Max);
    }
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = (v.get(..digits)?, v.get(digits..)?);
    if num.is_empty() {
        return None;
    }
    let n: u64 = num.parse().ok()?;
    let shift = match unit {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        _ => return None,
    };
    n.checked_mul(1u64 << shift).map(Limit::Value)
}

/// A signal name (`TERM`, `SIGTERM`, `term`) to its number on this target.
pub fn parse_signal(v: &str) -> Option<i32> {
    let mut full: String<16> = String::new();
    let upper = |c: char| c.to_ascii_uppercase();
    let has_sig = v.len() > 3 && v.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("SIG"));
    if !has_sig {
        full.push_str("SIG").ok()?;
    }
    for c in v.chars() {
        full.push(upper(c)).ok()?;
    }
    full.parse::<nix::sys::signal::Signal>()
        .ok()
        .map(|s| s as i32)
}

/// A hostname: 1-64 of letters, digits, `-` and `.`, not starting with
/// `-` or `.`.
fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= HOSTNAME_MAX
        && !h.starts_with(['-', '.'])
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// A user or group name in the portable set (`a-z A-Z 0-9 . _ -`, not
/// starting with `-`).
fn valid_id_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= ID_NAME_MAX
        && !n.starts_with('-')
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// A whole number of plain decimal digits (no sign, no blanks).
fn number<T: core::str::FromStr>(v: &str) -> Option<T> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse().ok()
}

fn parse_id(key: &str, v: &str) -> Result<IdSpec, Msg> {
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        // (uid_t)-1 means "unchanged" to setuid/setgid, never an id.
        match v.parse::<u32>() {
            Ok(n) if n != u32::MAX => return Ok(IdSpec::Id(n)),
            _ => bad!("{key}: `{}` is not a valid id", Clip(v)),
        }
    }
    if !valid_id_name(v) {
        bad!(
            "{key}: expected a number or a name of up to {ID_NAME_MAX} of a-z A-Z 0-9 . _ -, got `{}`",
            Clip(v)
        );
    }
    let mut s = String::new();
    let _ = s.push_str(v);
    Ok(IdSpec::Name(s))
}

fn parse_path(key: &str, v: &str) -> Result<String<PATH_BYTES>, Msg> {
    if !v.starts_with('/') {
        bad!("{key}: expected an absolute path, got `{}`", Clip(v));
    }
    let mut s = String::new();
    if s.push_str(v).is_err() {
        bad!("{key}: longer than {PATH_BYTES} bytes");
    }
    Ok(s)
}

fn parse_weight(key: &str, v: &str) -> Result<u16, Msg> {
    match number::<u16>(v) {
        Some(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => bad!(
            "{key}: expected a number from 1 to 10000, got `{}`",
            Clip(v)
        ),
    }
}

fn parse_cpu_max(v: &str) -> Result<(Limit, u64), Msg> {
    let mut it = v.split_whitespace();
    let quota = it.next().unwrap_or("");
    let period = it.next();
    if it.next().is_some() {
        bad!(
            "cpu.max: expected `QUOTA PERIOD` or `max PERIOD`, got `{}`",
            Clip(v)
        );
    }
    let quota = match quota {
        "max" => Limit::Max,
        q => match number::<u64>(q) {
            Some(n) if n >= 1_000 => Limit::Value(n),
            _ => bad!(
                "cpu.max: expected a quota of at least 1000 (microseconds) or `max`, got `{}`",
                Clip(q)
            ),
        },
    };
    let period = match period {
        None => 100_000,
        Some(p) => match number::<u64>(p) {
            Some(n) if (1_000..=1_000_000).contains(&n) => n,
            _ => bad!(
                "cpu.max: expected a period from 1000 to 1000000 (microseconds), got `{}`",
                Clip(p)
            ),
        },
    };
    Ok((quota, period))
}

/// Split `exec` into arguments: blanks separate, `"..."` groups, `\`
/// escapes the next character.
pub fn split_exec(v: &str) -> Result<Argv, Msg> {
    fn flush(argv: &mut Argv, word: &mut String<EXEC_BYTES>) -> Result<(), Msg> {
        match argv.push(word) {
            Ok(()) => {}
            Err(PackError::TooMany) => bad!("exec: more than {ARGS_MAX} arguments"),
            Err(PackError::TooLong) => bad!("exec: longer than {EXEC_BYTES} bytes"),
            Err(PackError::Nul) => bad!("exec: contains a NUL byte"),
        }
        word.clear();
        Ok(())
    }
    let mut argv = Argv::new();
    let mut word: String<EXEC_BYTES> = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        let lit = match c {
            '\\' => match chars.next() {
                Some(n) => n,
                None => bad!("exec: `\\` at the end of the line escapes nothing"),
            },
            '"' => {
                quoted = !quoted;
                in_word = true;
                continue;
            }
            ' ' | '\t' if !quoted => {
                if in_word {
                    flush(&mut argv, &mut word)?;
                    in_word = false;
                }
                continue;
            }
            c => c,
        };
        in_word = true;
        if word.push(lit).is_err() {
            bad!("exec: longer than {EXEC_BYTES} bytes");
        }
    }
    if quoted {
        bad!("exec: unterminated `\"`");
    }
    if in_word {
        flush(&mut argv, &mut word)?;
    }
    match argv.first() {
        None => bad!("exec: no program given"),
        Some(p) if !p.starts_with('/') => {
            bad!(
                "exec: the program must be an absolute path, got `{}`",
                Clip(p)
            )
        }
        Some(_) => Ok(argv),
    }
}

/// What the parser tracks besides the `UnitDef` itself.
struct State {
    /// Line each key was first seen on (0: not seen), indexed as `KEYS`.
    seen: [u32; KEYS.len()],
}

impl State {
    fn line_of(&self, key: &str) -> u32 {
        KEYS.iter()
            .position(|k| *k == key)
            .and_then(|i| self.seen.get(i).copied())
            .unwrap_or(0)
    }
}

fn set_str<const N: usize>(key: &str, v: &str, out: &mut String<N>) -> Result<(), Msg> {
    out.clear();
    if out.push_str(v).is_err() {
        bad!("{key}: longer than {N} bytes");
    }
    Ok(())
}

/// Apply one `key = value` (key already known and not a forbidden repeat).
fn apply(def: &mut UnitDef, key: &str, v: &str, line: u32) -> Result<(), Msg> {
    let size = |v: &str| match parse_size(v) {
        Some(s) => Ok(Some(s)),
        None => Err(msg(format_args!(
            "{key}: expected bytes with an optional K, M or G, or `max`, got `{}`",
            Clip(v)
        ))),
    };
    let duration = |v: &str| match parse_duration(v) {
        Some(d) => Ok(d),
        None => Err(msg(format_args!(
            "{key}: expected a duration like 250ms, 2s, 1m or 1h, got `{}`",
            Clip(v)
        ))),
    };
    match key {
        "description" => set_str(key, v, &mut def.description)?,
        "exec" => {
            def.exec = split_exec(v)?;
            def.exec_line = line;
        }
        "type" => {
            def.kind = match v {
                "service" => Kind::Service,
                "oneshot" => Kind::Oneshot,
                _ => bad!("type: expected `service` or `oneshot`, got `{}`", Clip(v)),
            }
        }
        "restart" => {
            def.restart = match v {
                "always" => Restart::Always,
                "on-failure" => Restart::OnFailure,
                "never" => Restart::Never,
                _ => bad!(
                    "restart: expected `always`, `on-failure` or `never`, got `{}`",
                    Clip(v)
                ),
            }
        }
        "restart_delay" => def.restart_delay = duration(v)?,
        "restart_delay_max" => def.restart_delay_max = duration(v)?,
        "start_limit" => {
            let Some((count, window)) = v.split_once('/') else {
                bad!(
                    "start_limit: expected `COUNT/DURATION` like 10/5m, got `{}`",
                    Clip(v)
                );
            };
            let count = match number::<u16>(count.trim()) {
                Some(n) if (1..=START_LIMIT_MAX).contains(&usize::from(n)) => n,
                _ => bad!(
                    "start_limit: COUNT must be from 1 to {START_LIMIT_MAX}, got `{}`",
                    Clip(count.trim())
                ),
            };
            let window = match parse_duration(window.trim()) {
                Some(w) if w > 0 => w,
                _ => bad!(
                    "start_limit: expected a non-zero duration like 5m after `/`, got `{}`",
                    Clip(window.trim())
                ),
            };
            def.start_limit = Some(StartLimit { count, window });
        }
        "start_limit_action" => {
            def.start_limit_action = match v {
                "none" => LimitAction::None,
                "reboot" => LimitAction::Reboot,
                "poweroff" => LimitAction::Poweroff,
                _ => bad!(
                    "start_limit_action: expected `none`, `reboot` or `poweroff`, got `{}`",
                    Clip(v)
                ),
            }
        }
        "after" => {
            if v.is_empty() {
                bad!("after: expected unit names");
            }
            for name in v.split_whitespace() {
                if !valid_name(name) {
                    bad!("after: `{}` is not a valid unit name", Clip(name));
                }
                if name == def.name.as_str() {
                    bad!("after: a unit cannot start after itself");
                }
                if def.after.iter().any(|a| a.as_str() == name) {
                    continue;
                }
                let mut n = Name::new();
                let _ = n.push_str(name);
                if def.after.push(n).is_err() || def.after_lines.push(line).is_err() {
                    bad!("after: more than {AFTER_MAX} units");
                }
            }
        }
        "ready" => {
            def.ready = match v {
                "started" => Ready::Started,
                "notify" => Ready::Notify,
                "sd_notify" => Ready::SdNotify,
                _ => bad!(
                    "ready: expected `started`, `notify` or `sd_notify`, got `{}`",
                    Clip(v)
                ),
            }
        }
        "stop_signal" => match parse_signal(v) {
            Some(n) => def.stop_signal = n,
            None => bad!(
                "stop_signal: expected a signal name like TERM, got `{}`",
                Clip(v)
            ),
        },
        "stop_timeout" => def.stop_timeout = duration(v)?,
        "user" => def.user = Some(parse_id(key, v)?),
        "group" => def.group = Some(parse_id(key, v)?),
        "workdir" => def.workdir = parse_path(key, v)?,
        "env" => {
            let Some((k, _)) = v.split_once('=') else {
                bad!("env: expected `KEY=VALUE`, got `{}`", Clip(v));
            };
            if k.is_empty() || k.contains(char::is_whitespace) {
                bad!("env: `{}` is not a valid variable name", Clip(k));
            }
            if def
                .env
                .iter()
                .any(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k))
            {
                bad!("env: `{}` is set twice", Clip(k));
            }
            match def.env.push(v) {
                Ok(()) => {}
                Err(PackError::TooMany) => bad!("env: more than {ENV_MAX} entries"),
                Err(PackError::TooLong) => bad!("env: more than {ENV_BYTES} bytes in all"),
                Err(PackError::Nul) => bad!("env: contains a NUL byte"),
            }
        }
        "console" => {
            def.console = match v {
                "yes" | "true" => true,
                "no" | "false" => false,
                _ => bad!("console: expected `yes` or `no`, got `{}`", Clip(v)),
            }
        }
        "output" => {
            def.output = match v {
                "log" => Output::Log,
                "console" => Output::Console,
                "null" => Output::Null,
                _ => bad!(
                    "output: expected `log`, `console` or `null`, got `{}`",
                    Clip(v)
                ),
            }
        }
        "namespaces" => {
            let mut bits = 0u8;
            let mut none = false;
            let mut count = 0;
            for w in v.split_whitespace() {
                count += 1;
                bits |= match w {
                    "pid" => Namespaces::PID,
                    "mount" => Namespaces::MOUNT,
                    "uts" => Namespaces::UTS,
                    "ipc" => Namespaces::IPC,
                    "net" => Namespaces::NET,
                    "cgroup" => Namespaces::CGROUP,
                    "none" => {
                        none = true;
                        0
                    }
                    _ => bad!(
                        "namespaces: expected some of pid mount uts ipc net cgroup, or `none`, got `{}`",
                        Clip(w)
                    ),
                };
            }
            if count == 0 {
                bad!("namespaces: expected some of pid mount uts ipc net cgroup, or `none`");
            }
            if none && count > 1 {
                bad!("namespaces: `none` cannot be combined with other namespaces");
            }
            def.namespaces = Namespaces(bits);
        }
        "hostname" => {
            if !valid_hostname(v) {
                bad!(
                    "hostname: expected 1-{HOSTNAME_MAX} of letters, digits, `-` and `.`, got `{}`",
                    Clip(v)
                );
            }
            let mut h = String::new();
            let _ = h.push_str(v);
            def.hostname = Some(h);
        }
        "log_size" => {
            def.log_size = match parse_size(v) {
                Some(Limit::Value(n))
                    if (LOG_SIZE_MIN as u64..=LOG_SIZE_MAX as u64).contains(&n) =>
                {
                    n as u32
                }
                _ => bad!(
                    "log_size: expected a size from 512 to 1M (e.g. `16K`), got `{}`",
                    Clip(v)
                ),
            }
        }
        "root" => def.root = Some(parse_path(key, v)?),
        "memory.max" => def.limits.memory_max = size(v)?,
        "memory.high" => def.limits.memory_high = size(v)?,
        "memory.low" => def.limits.memory_low = size(v)?,
        "memory.min" => def.limits.memory_min = size(v)?,
        "memory.swap.max" => def.limits.memory_swap_max = size(v)?,
        "pids.max" => {
            def.limits.pids_max = Some(match v {
                "max" => Limit::Max,
                _ => match number::<u64>(v) {
                    Some(n) => Limit::Value(n),
                    _ => bad!("pids.max: expected a number or `max`, got `{}`", Clip(v)),
                },
            })
        }
        "cpu.weight" => def.limits.cpu_weight = Some(parse_weight(key, v)?),
        "cpu.max" => def.limits.cpu_max = Some(parse_cpu_max(v)?),
        "io.weight" => def.limits.io_weight = Some(parse_weight(key, v)?),
        // `KEYS` and this match list the same keys; see the test
        // `every_key_is_applied`.
        _ => bad!("unknown key `{}`", Clip(key)),
    }
    Ok(())
}

/// Parse the text of unit `name`, reporting every problem through `err`
/// (in line order, the whole-file ones last). Returns the definition only
/// when there was no problem at all.
pub fn parse_all(name: &str, text: &str, err: &mut dyn FnMut(ParseError)) -> Option<UnitDef> {
    let mut failed = false;
    let mut report = |line: u32, msg: Msg| {
        failed = true;
        err(ParseError { line, msg });
    };
    if !valid_name(name) {
        report(
            0,
            msg(format_args!(
                "`{}` is not a valid unit name (1-{NAME_MAX} of a-z 0-9 . _ -, starting with a letter or digit)",
                Clip(name)
            )),
        );
        return None;
    }
    let mut def = UnitDef::with_defaults(name);
    let mut st = State {
        seen: [0; KEYS.len()],
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.split('\n').enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        if l.contains('\0') {
            report(line, msg(format_args!("the line contains a NUL byte")));
            continue;
        }
        let Some((key, value)) = l.split_once('=') else {
            let first = l.split_whitespace().next().unwrap_or(l);
            let m = if KEYS.contains(&first) {
                msg(format_args!(
                    "expected `{first} = value`, got `{}`",
                    Clip(l)
                ))
            } else {
                msg(format_args!("expected `key = value`, got `{}`", Clip(l)))
            };
            report(line, m);
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        if key.is_empty() {
            report(line, msg(format_args!("missing key before `=`")));
            continue;
        }
        let Some(slot) = KEYS.iter().position(|k| *k == key) else {
            let m = match suggest_key(key) {
                Some(s) => msg(format_args!(
                    "unknown key `{}` (did you mean `{s}`?)",
                    Clip(key)
                )),
                None => msg(format_args!("unknown key `{}`", Clip(key))),
            };
            report(line, m);
            continue;
        };
        let first = st.seen.get(slot).copied().unwrap_or(0);
        if first != 0 && !repeatable(key) {
            report(
                line,
                msg(format_args!("`{key}` given twice (first on line {first})")),
            );
            continue;
        }
        if first == 0 {
            if let Some(s) = st.seen.get_mut(slot) {
                *s = line;
            }
        }
        if let Err(m) = apply(&mut def, key, value, line) {
            report(line, m);
        }
    }

    // Whole-file rules, now that every key is known.
    if st.line_of("exec") == 0 {
        report(0, msg(format_args!("missing `exec`")));
    }
    if st.line_of("restart") == 0 {
        def.restart = match def.kind {
            Kind::Service => Restart::Always,
            Kind::Oneshot => Restart::Never,
        };
    }
    if st.line_of("output") == 0 && def.console {
        def.output = Output::Console;
    }
    let max_line = st.line_of("restart_delay_max");
    if def.restart_delay > def.restart_delay_max {
        if max_line == 0 {
            def.restart_delay_max = def.restart_delay;
        } else {
            report(
                max_line.max(st.line_of("restart_delay")),
                msg(format_args!(
                    "restart_delay_max ({}ms) is shorter than restart_delay ({}ms)",
                    def.restart_delay_max, def.restart_delay
                )),
            );
        }
    }
    if def.root.is_some() && !def.namespaces.has(Namespaces::MOUNT) {
        report(
            st.line_of("root"),
            msg(format_args!("root: needs `mount` in namespaces")),
        );
    }
    if def.hostname.is_some() && !def.namespaces.has(Namespaces::UTS) {
        report(
            st.line_of("hostname"),
            msg(format_args!(
                "hostname: needs `uts` in namespaces (it would rename the whole system)"
            )),
        );
    }
    if failed {
        None
    } else {
        Some(def)
    }
}

/// Parse the text of unit `name`. Errors stop at the first one.
pub fn parse(name: &str, text: &str) -> Result<UnitDef, ParseError> {
    let mut first: Option<ParseError> = None;
    let def = parse_all(name, text, &mut |e| {
        if first.is_none() {
            first = Some(e);
        }
    });
    match (def, first) {
        (Some(d), None) => Ok(d),
        (_, Some(e)) => Err(e),
        // parse_all returns None only after reporting an error.
        (None, None) => Err(ParseError {
            line: 0,
            msg: msg(format_args!("invalid unit")),
        }),
    }
}

/// Write `def` back as unit-file text (`initctl cat`): every key whose
/// value is not the default, in the order of `KEYS`. Parsing the result
/// gives `def` again.
pub fn render(def: &UnitDef, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
    let d = UnitDef::with_defaults(&def.name);
    if !def.description.is_empty() {
        writeln!(out, "description = {}", def.description)?;
    }
    out.write_str("exec =")?;
    for a in def.exec.iter() {
        out.write_char(' ')?;
        write_word(out, a)?;
    }
    out.write_char('\n')?;
    if def.kind == Kind::Oneshot {
        writeln!(out, "type = oneshot")?;
    }
    let default_restart = match def.kind {
        Kind::Service => Restart::Always,
        Kind::Oneshot => Restart::Never,
    };
    if def.restart != default_restart {
        let r = match def.restart {
            Restart::Always => "always",
            Restart::OnFailure => "on-failure",
            Restart::Never => "never",
        };
        writeln!(out, "restart = {r}")?;
    }
    if def.restart_delay != d.restart_delay || def.restart_delay_max != d.restart_delay_max {
        writeln!(out, "restart_delay = {}", Dur(def.restart_delay))?;
        writeln!(out, "restart_delay_max = {}", Dur(def.restart_delay_max))?;
    }
    if let Some(l) = def.start_limit {
        writeln!(out, "start_limit = {}/{}", l.count, Dur(l.window))?;
    }
    match def.start_limit_action {
        LimitAction::None => {}
        LimitAction::Reboot => writeln!(out, "start_limit_action = reboot")?,
        LimitAction::Poweroff => writeln!(out, "start_limit_action = poweroff")?,
    }
    if !def.after.is_empty() {
        out.write_str("after =")?;
        for a in def.after.iter() {
            write!(out, " {a}")?;
        }
        out.write_char('\n')?;
    }
    match def.ready {
        Ready::Started => {}
        Ready::Notify => writeln!(out, "ready = notify")?,
        Ready::SdNotify => writeln!(out, "ready = sd_notify")?,
    }
    if def.stop_signal != d.stop_signal {
        match signal_name(def.stop_signal) {
            Some(n) => writeln!(out, "stop_signal = {n}")?,
            None => writeln!(out, "# stop_signal = {}", def.stop_signal)?,
        }
    }
    if def.stop_timeout != d.stop_timeout {
        writeln!(out, "stop_timeout = {}", Dur(def.stop_timeout))?;
    }
    for (key, id) in [("user", &def.user), ("group", &def.group)] {
        match id {
            None => {}
            Some(IdSpec::Id(n)) => writeln!(out, "{key} = {n}")?,
            Some(IdSpec::Name(n)) => writeln!(out, "{key} = {n}")?,
        }
    }
    if def.workdir != d.workdir {
        writeln!(out, "workdir = {}", def.workdir)?;
    }
    for e in def.env.iter() {
        writeln!(out, "env = {e}")?;
    }
    if def.console {
        writeln!(out, "console = yes")?;
    }
    let default_output = if def.console {
        Output::Console
    } else {
        Output::Log
    };
    if def.output != default_output {
        let o = match def.output {
            Output::Log => "log",
            Output::Console => "console",
            Output::Null => "null",
        };
        writeln!(out, "output = {o}")?;
    }
    if def.namespaces != d.namespaces {
        out.write_str("namespaces =")?;
        if def.namespaces.0 == 0 {
            out.write_str(" none")?;
        }
        for (bit, n) in [
            (Namespaces::PID, "pid"),
            (Namespaces::MOUNT, "mount"),
            (Namespaces::UTS, "uts"),
            (Namespaces::IPC, "ipc"),
            (Namespaces::NET, "net"),
            (Namespaces::CGROUP, "cgroup"),
        ] {
            if def.namespaces.has(bit) {
                write!(out, " {n}")?;
            }
        }
        out.write_char('\n')?;
    }
    if def.log_size != d.log_size {
        writeln!(
            out,
            "log_size = {}",
            Size(Limit::Value(u64::from(def.log_size)))
        )?;
    }
    if let Some(h) = &def.hostname {
        writeln!(out, "hostname = {h}")?;
    }
    if let Some(r) = &def.root {
        writeln!(out, "root = {r}")?;
    }
    let l = &def.limits;
    for (key, v) in [
        ("memory.max", l.memory_max),
        ("memory.high", l.memory_high),
        ("memory.low", l.memory_low),
        ("memory.min", l.memory_min),
        ("memory.swap.max", l.memory_swap_max),
    ] {
        if let Some(v) = v {
            writeln!(out, "{key} = {}", Size(v))?;
        }
    }
    if let Some(v) = l.pids_max {
        match v {
            Limit::Max => writeln!(out, "pids.max = max")?,
            Limit::Value(n) => writeln!(out, "pids.max = {n}")?,
        }
    }
    if let Some(w) = l.cpu_weight {
        writeln!(out, "cpu.weight = {w}")?;
    }
    if let Some((q, p)) = l.cpu_max {
        match q {
            Limit::Max => writeln!(out, "cpu.max = max {p}")?,
            Limit::Value(q) => writeln!(out, "cpu.max = {q} {p}")?,
        }
    }
    if let Some(w) = l.io_weight {
        writeln!(out, "io.weight = {w}")?;
    }
    Ok(())
}

/// An exec word, quoted when it would not survive splitting as it is.
fn write_word(out: &mut dyn core::fmt::Write, w: &str) -> core::fmt::Result {
    let plain = !w.is_empty()
        && !w
            .chars()
            .any(|c| c.is_whitespace() || c == '"' || c == '\\');
    if plain {
        return out.write_str(w);
    }
    out.write_char('"')?;
    for c in w.chars() {
        if c == '"' || c == '\\' {
            out.write_char('\\')?;
        }
        out.write_char(c)?;
    }
    out.write_char('"')
}

/// The name `parse_signal` reads back as `n` (nix's table, without SIG).
fn signal_name(n: i32) -> Option<&'static str> {
    let s = nix::sys::signal::Signal::try_from(n).ok()?;
    let name = s.as_str();
    Some(name.strip_prefix("SIG").unwrap_or(name))
}

struct Dur(Millis);

impl core::fmt::Display for Dur {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ms = self.0;
        if ms != 0 && ms.is_multiple_of(3_600_000) {
            write!(f, "{}h", ms / 3_600_000)
        } else if ms != 0 && ms.is_multiple_of(60_000) {
            write!(f, "{}m", ms / 60_000)
        } else if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

struct Size(Limit);

impl core::fmt::Display for Size {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Limit::Max => f.write_str("max"),
            Limit::Value(b) => {
                for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] {
                    if b != 0 && b.is_multiple_of(1u64 << shift) {
                        return write!(f, "{}{unit}", b >> shift);
                    }
                }
                write!(f, "{b}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> UnitDef {
        match parse("svc", text) {
            Ok(d) => d,
            Err(e) => panic!("unexpected error at line {}: {}", e.line, e.msg),
        }
    }

    fn unit(extra: &str) -> UnitDef {
        ok(&format!("exec = /bin/true\n{extra}\n"))
    }

    /// Parse `exec = /bin/true` plus `extra`; return the first error.
    fn err(extra: &str) -> (u32, std::string::String) {
        let e = parse("svc", &format!("exec = /bin/true\n{extra}\n")).unwrap_err();
        (e.line, e.msg.as_str().to_owned())
    }

    fn all_errors(name: &str, text: &str) -> std::vec::Vec<(u32, std::string::String)> {
        let mut v = std::vec::Vec::new();
        let d = parse_all(name, text, &mut |e| {
            v.push((e.line, e.msg.as_str().to_owned()))
        });
        assert_eq!(d.is_none(), !v.is_empty());
        v
    }

    fn args(d: &UnitDef) -> std::vec::Vec<&str> {
        d.exec.iter().collect()
    }

    #[test]
    fn minimal_unit_has_contract_defaults() {
        let d = ok("exec = /sbin/getty 115200 ttyS0");
        assert_eq!(d.name.as_str(), "svc");
        assert_eq!(args(&d), ["/sbin/getty", "115200", "ttyS0"]);
        assert_eq!(d.exec_line, 1);
        assert_eq!(d.kind, Kind::Service);
        assert_eq!(d.restart, Restart::Always);
        assert_eq!(d.restart_delay, 100);
        assert_eq!(d.restart_delay_max, 30_000);
        assert_eq!(d.start_limit, None);
        assert_eq!(d.start_limit_action, LimitAction::None);
        assert!(d.after.is_empty());
        assert_eq!(d.ready, Ready::Started);
        assert_eq!(d.stop_signal, 15);
        assert_eq!(d.stop_timeout, 5_000);
        assert_eq!(d.user, None);
        assert_eq!(d.group, None);
        assert_eq!(d.workdir.as_str(), "/");
        assert!(d.env.is_empty());
        assert!(!d.console);
        assert_eq!(d.output, Output::Log);
        assert_eq!(d.namespaces, Namespaces::DEFAULT);
        assert_eq!(d.hostname, None);
        assert_eq!(d.root, None);
        assert_eq!(d.limits, Limits::default());
        assert_eq!(d, {
            let mut w = UnitDef::with_defaults("svc");
            w.exec = d.exec.clone();
            w.exec_line = 1;
            w
        });
    }

    #[test]
    fn full_unit() {
        let text = "\
# A web server.
description = The web server
exec = /usr/sbin/httpd -f -p 80
type = service
restart = on-failure
restart_delay = 250ms
restart_delay_max = 1m
start_limit = 10/5m
start_limit_action = reboot
after = net syslog
after = storage
ready = notify
stop_signal = SIGWINCH
stop_timeout = 10s
user = www-data
group = 33
workdir = /srv/www
env = LANG=C.UTF-8
env = OPTS=a=b
console = no
output = null
namespaces = pid mount net uts
hostname = web.local
root = /srv/rootfs
memory.max = 64M
memory.high = 48M
memory.low = 16M
memory.min = 8M
memory.swap.max = 0
pids.max = 100
cpu.weight = 200
cpu.max = 50000 100000
io.weight = 10000
";
        let d = ok(text);
        assert_eq!(d.description.as_str(), "The web server");
        assert_eq!(args(&d), ["/usr/sbin/httpd", "-f", "-p", "80"]);
        assert_eq!(d.exec_line, 3);
        assert_eq!(d.restart, Restart::OnFailure);
        assert_eq!(d.restart_delay, 250);
        assert_eq!(d.restart_delay_max, 60_000);
        assert_eq!(
            d.start_limit,
            Some(StartLimit {
                count: 10,
                window: 300_000
            })
        );
        assert_eq!(d.start_limit_action, LimitAction::Reboot);
        let after: std::vec::Vec<&str> = d.after.iter().map(|n| n.as_str()).collect();
        assert_eq!(after, ["net", "syslog", "storage"]);
        assert_eq!(d.after_lines.as_slice(), [10, 10, 11]);
        assert_eq!(d.ready, Ready::Notify);
        assert_eq!(d.stop_signal, 28);
        assert_eq!(d.stop_timeout, 10_000);
        assert_eq!(
            d.user,
            Some(IdSpec::Name(String::try_from("www-data").unwrap()))
        );
        assert_eq!(d.group, Some(IdSpec::Id(33)));
        assert_eq!(d.workdir.as_str(), "/srv/www");
        let env: std::vec::Vec<&str> = d.env.iter().collect();
        assert_eq!(env, ["LANG=C.UTF-8", "OPTS=a=b"]);
        assert_eq!(d.output, Output::Null);
        assert_eq!(
            d.namespaces,
            Namespaces(Namespaces::PID | Namespaces::MOUNT | Namespaces::NET | Namespaces::UTS)
        );
        assert_eq!(d.hostname.as_deref(), Some("web.local"));
        assert_eq!(d.root.as_deref(), Some("/srv/rootfs"));
        let l = d.limits;
        assert_eq!(l.memory_max, Some(Limit::Value(64 << 20)));
        assert_eq!(l.memory_high, Some(Limit::Value(48 << 20)));
        assert_eq!(l.memory_low, Some(Limit::Value(16 << 20)));
        assert_eq!(l.memory_min, Some(Limit::Value(8 << 20)));
        assert_eq!(l.memory_swap_max, Some(Limit::Value(0)));
        assert_eq!(l.pids_max, Some(Limit::Value(100)));
        assert_eq!(l.cpu_weight, Some(200));
        assert_eq!(l.cpu_max, Some((Limit::Value(50_000), 100_000)));
        assert_eq!(l.io_weight, Some(10_000));
    }

    #[test]
    fn log_size_is_bounded() {
        let ok = parse("svc", "exec = /bin/x\nlog_size = 64K\n").unwrap();
        assert_eq!(ok.log_size, 65536);
        assert_eq!(
            UnitDef::with_defaults("x").log_size as usize,
            crate::logbuf::LOG_RING_BYTES
        );
        for bad in ["100", "2M", "max", "lots"] {
            let e = parse("svc", &format!("exec = /bin/x\nlog_size = {bad}\n")).unwrap_err();
            assert_eq!(e.line, 2, "{bad}");
            assert!(e.msg.contains("log_size"), "{}", e.msg);
        }
    }

    #[test]
    fn every_key_is_applied() {
        // Each key in KEYS must be handled by `apply` (not fall through to
        // "unknown key"), checked with a value that is valid for it.
        let values = [
            ("description", "x"),
            ("exec", "/bin/x"),
            ("type", "oneshot"),
            ("restart", "never"),
            ("restart_delay", "1s"),
            ("restart_delay_max", "2s"),
            ("start_limit", "1/1s"),
            ("start_limit_action", "poweroff"),
            ("after", "other"),
            ("ready", "notify"),
            ("stop_signal", "INT"),
            ("stop_timeout", "1s"),
            ("user", "0"),
            ("group", "0"),
            ("workdir", "/w"),
            ("env", "A=1"),
            ("console", "yes"),
            ("output", "null"),
            ("namespaces", "mount uts"),
            ("log_size", "16K"),
            ("hostname", "h"),
            ("root", "/r"),
            ("memory.max", "1"),
            ("memory.high", "1"),
            ("memory.low", "1"),
            ("memory.min", "1"),
            ("memory.swap.max", "1"),
            ("pids.max", "1"),
            ("cpu.weight", "1"),
            ("cpu.max", "max"),
            ("io.weight", "1"),
        ];
        assert_eq!(values.len(), KEYS.len());
        for ((k, v), key) in values.iter().zip(KEYS) {
            assert_eq!(*k, key);
            let mut d = UnitDef::with_defaults("svc");
            let before = d.clone();
            apply(&mut d, k, v, 7).unwrap_or_else(|e| panic!("{k}: {e}"));
            assert_ne!(d, before, "{k} changed nothing");
        }
    }

    #[test]
    fn comments_blank_lines_whitespace_crlf_bom() {
        let d = ok("\u{feff}# comment\r\n\r\n   # indented comment\r\n\t exec\t=  /bin/sh  -l \t\r\n  \r\ndescription =   a # not a comment  \r\n");
        assert_eq!(args(&d), ["/bin/sh", "-l"]);
        assert_eq!(d.exec_line, 4);
        assert_eq!(d.description.as_str(), "a # not a comment");
    }

    #[test]
    fn empty_and_comment_only_files_miss_exec() {
        assert_eq!(parse("svc", "").unwrap_err().line, 0);
        let e = parse("svc", "# nothing\n\n").unwrap_err();
        assert_eq!((e.line, e.msg.as_str()), (0, "missing `exec`"));
    }

    #[test]
    fn invalid_unit_name_is_a_whole_file_error() {
        let e = parse("Bad", "exec = /bin/true").unwrap_err();
        assert_eq!(e.line, 0);
        assert!(
            e.msg.starts_with("`Bad` is not a valid unit name"),
            "{}",
            e.msg
        );
        assert!(parse(&"a".repeat(33), "exec = /bin/true").is_err());
        assert!(parse(&"a".repeat(32), "exec = /bin/true").is_ok());
    }

    #[test]
    fn unknown_keys_and_suggestions() {
        assert_eq!(
            err("memroy.max = 1M"),
            (
                2,
                "unknown key `memroy.max` (did you mean `memory.max`?)".into()
            )
        );
        assert_eq!(
            err("Exec = /bin/true").1,
            "unknown key `Exec` (did you mean `exec`?)"
        );
        assert_eq!(
            err("memory_max = 1").1,
            "unknown key `memory_max` (did you mean `memory.max`?)"
        );
        assert_eq!(
            err("restart_dealy = 1s").1,
            "unknown key `restart_dealy` (did you mean `restart_delay`?)"
        );
        assert_eq!(
            err("typ = oneshot").1,
            "unknown key `typ` (did you mean `type`?)"
        );
        assert_eq!(err("frobnicate = 1").1, "unknown key `frobnicate`");
        assert_eq!(err("x = 1").1, "unknown key `x`");
        let long = "k".repeat(100);
        let (_, m) = err(&format!("{long} = 1"));
        assert!(
            m.starts_with("unknown key `kkkk") && m.contains("...`"),
            "{m}"
        );
    }

    #[test]
    fn suggestion_details() {
        assert_eq!(edit_distance("memroy.max", "memory.max"), Some(1));
        assert_eq!(edit_distance("abc", "abc"), Some(0));
        assert_eq!(edit_distance("", "abc"), Some(3));
        assert_eq!(edit_distance("kitten", "sitting"), Some(3));
        assert_eq!(suggest_key("stop_timout"), Some("stop_timeout"));
        assert_eq!(suggest_key("namespace"), Some("namespaces"));
        assert_eq!(suggest_key("zzzzzzz"), None);
    }

    #[test]
    fn lines_without_equals_and_empty_keys() {
        assert_eq!(
            err("exec /bin/sh"),
            (2, "expected `exec = value`, got `exec /bin/sh`".into())
        );
        assert_eq!(
            err("hello world").1,
            "expected `key = value`, got `hello world`"
        );
        assert_eq!(err(" = 5"), (2, "missing key before `=`".into()));
    }

    #[test]
    fn repeated_keys() {
        assert_eq!(
            err("\ntype = oneshot\ntype = service"),
            (4, "`type` given twice (first on line 3)".into())
        );
        let e = parse("svc", "exec = /bin/a\nexec = /bin/b").unwrap_err();
        assert_eq!(
            (e.line, e.msg.as_str()),
            (2, "`exec` given twice (first on line 1)")
        );
        // A bad first occurrence still counts as given.
        assert_eq!(
            all_errors("svc", "exec = /bin/true\nmemory.max = x\nmemory.max = 1"),
            [
                (
                    2,
                    "memory.max: expected bytes with an optional K, M or G, or `max`, got `x`"
                        .into()
                ),
                (3, "`memory.max` given twice (first on line 2)".into())
            ]
        );
    }

    #[test]
    fn parse_all_reports_every_error_and_parse_the_first() {
        let text = "type = daemon\nexec = sh\nbogus\nrestart = sometimes\n";
        let errs = all_errors("svc", text);
        let lines: std::vec::Vec<u32> = errs.iter().map(|e| e.0).collect();
        assert_eq!(lines, [1, 2, 3, 4]);
        assert_eq!(parse("svc", text).unwrap_err().line, 1);
        // A bad exec line does not also produce "missing exec".
        assert_eq!(all_errors("svc", "exec = rel").len(), 1);
        assert!(all_errors("svc", "exec = /bin/true").is_empty());
    }

    #[test]
    fn nul_byte_in_a_line() {
        assert_eq!(
            err("description = a\0b"),
            (2, "the line contains a NUL byte".into())
        );
    }

    #[test]
    fn exec_splitting() {
        let a = |v: &str| -> std::vec::Vec<std::string::String> {
            split_exec(v)
                .unwrap_or_else(|e| panic!("{v}: {e}"))
                .iter()
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(a("/bin/sh"), ["/bin/sh"]);
        assert_eq!(a("/bin/sh  -c \t x"), ["/bin/sh", "-c", "x"]);
        assert_eq!(
            a(r#"/bin/sh -c "echo hi  there""#),
            ["/bin/sh", "-c", "echo hi  there"]
        );
        assert_eq!(a(r#"/bin/echo a"b c"d"#), ["/bin/echo", "ab cd"]);
        assert_eq!(a(r#"/bin/echo "" x"#), ["/bin/echo", "", "x"]);
        assert_eq!(a(r#"/bin/echo a\ b"#), ["/bin/echo", "a b"]);
        assert_eq!(
            a(r#"/bin/echo \"q\" "in \"side\"""#),
            ["/bin/echo", "\"q\"", "in \"side\""]
        );
        assert_eq!(a(r#"/bin/echo \\ \n"#), ["/bin/echo", "\\", "n"]);
        assert_eq!(a("/bin/echo it's"), ["/bin/echo", "it's"]);
        assert_eq!(a("/bin/echo #1 $HOME"), ["/bin/echo", "#1", "$HOME"]);
        assert_eq!(a("\"/opt/my app/run\" x"), ["/opt/my app/run", "x"]);
        assert_eq!(a("/bin/echo ünïcode"), ["/bin/echo", "ünïcode"]);
    }

    #[test]
    fn exec_errors() {
        let e = |v: &str| split_exec(v).unwrap_err().as_str().to_owned();
        assert_eq!(e(r#"/bin/sh -c "echo"#), "exec: unterminated `\"`");
        assert_eq!(
            e(r"/bin/echo \"),
            "exec: `\\` at the end of the line escapes nothing"
        );
        assert_eq!(
            e("sh -c x"),
            "exec: the program must be an absolute path, got `sh`"
        );
        assert_eq!(
            e("\"\" x"),
            "exec: the program must be an absolute path, got ``"
        );
        assert_eq!(e(""), "exec: no program given");
        assert_eq!(e("   "), "exec: no program given");
        assert_eq!(
            err("exec = /bin/x").1,
            "`exec` given twice (first on line 1)"
        );
        assert_eq!(
            parse("svc", "exec =").unwrap_err().msg.as_str(),
            "exec: no program given"
        );
    }

    #[test]
    fn exec_capacities_are_errors_not_truncations() {
        let mut v = std::string::String::from("/bin/echo");
        for i in 1..ARGS_MAX {
            v.push_str(&format!(" {i}"));
        }
        assert_eq!(split_exec(&v).unwrap().len(), ARGS_MAX);
        v.push_str(" extra");
        assert_eq!(
            split_exec(&v).unwrap_err().as_str(),
            "exec: more than 32 arguments"
        );
        let long = format!("/{}", "x".repeat(EXEC_BYTES - 1));
        assert_eq!(split_exec(&long).unwrap().first(), Some(long.as_str()));
        let too_long = format!("/{}", "x".repeat(EXEC_BYTES));
        assert_eq!(
            split_exec(&too_long).unwrap_err().as_str(),
            "exec: longer than 512 bytes"
        );
        // Two arguments whose NUL separator makes them one byte too many.
        let half = format!("/{} {}", "x".repeat(254), "y".repeat(257));
        assert_eq!(
            split_exec(&half).unwrap_err().as_str(),
            "exec: longer than 512 bytes"
        );
    }

    #[test]
    fn type_and_restart_defaults() {
        assert_eq!(unit("type = oneshot").restart, Restart::Never);
        assert_eq!(unit("type = service").restart, Restart::Always);
        // The default follows `type` wherever `type` appears.
        let d = ok("restart_delay = 1s\nexec = /bin/true\ntype = oneshot");
        assert_eq!((d.kind, d.restart), (Kind::Oneshot, Restart::Never));
        let d = ok("restart = on-failure\ntype = oneshot\nexec = /bin/true");
        assert_eq!(d.restart, Restart::OnFailure);
        assert_eq!(unit("restart = always").restart, Restart::Always);
        assert_eq!(unit("restart = never").restart, Restart::Never);
        assert_eq!(
            err("type = daemon").1,
            "type: expected `service` or `oneshot`, got `daemon`"
        );
        assert_eq!(
            err("restart = on_failure").1,
            "restart: expected `always`, `on-failure` or `never`, got `on_failure`"
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(250));
        assert_eq!(parse_duration("2s"), Some(2_000));
        assert_eq!(parse_duration("2"), Some(2_000));
        assert_eq!(parse_duration("1m"), Some(60_000));
        assert_eq!(parse_duration("1h"), Some(3_600_000));
        assert_eq!(parse_duration("0"), Some(0));
        for bad in [
            "",
            "ms",
            "1.5s",
            "-1s",
            "+1s",
            "1 s",
            "1d",
            "1S",
            "1sec",
            "99999999999999999999",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_duration("18446744073709551615h"), None);
        assert_eq!(unit("stop_timeout = 30s").stop_timeout, 30_000);
        assert_eq!(
            err("restart_delay = 1.5s"),
            (
                2,
                "restart_delay: expected a duration like 250ms, 2s, 1m or 1h, got `1.5s`".into()
            )
        );
        assert!(err("stop_timeout = soon")
            .1
            .starts_with("stop_timeout: expected a duration"));
    }

    #[test]
    fn restart_delay_max_interplay() {
        let d = unit("restart_delay = 1m");
        assert_eq!((d.restart_delay, d.restart_delay_max), (60_000, 60_000));
        let d = unit("restart_delay = 1s\nrestart_delay_max = 1s");
        assert_eq!((d.restart_delay, d.restart_delay_max), (1_000, 1_000));
        assert_eq!(
            err("restart_delay_max = 1s\nrestart_delay = 2s"),
            (
                3,
                "restart_delay_max (1000ms) is shorter than restart_delay (2000ms)".into()
            )
        );
        assert_eq!(err("restart_delay_max = 50ms").0, 2);
    }

    #[test]
    fn start_limit() {
        let sl = |v: &str| unit(&format!("start_limit = {v}")).start_limit.unwrap();
        assert_eq!(
            sl("10/5m"),
            StartLimit {
                count: 10,
                window: 300_000
            }
        );
        assert_eq!(
            sl(" 1 / 500ms "),
            StartLimit {
                count: 1,
                window: 500
            }
        );
        assert_eq!(sl("32/1h").count, 32);
        assert_eq!(
            err("start_limit = 33/1m").1,
            "start_limit: COUNT must be from 1 to 32, got `33`"
        );
        assert_eq!(
            err("start_limit = 0/1m").1,
            "start_limit: COUNT must be from 1 to 32, got `0`"
        );
        assert_eq!(
            err("start_limit = 5").1,
            "start_limit: expected `COUNT/DURATION` like 10/5m, got `5`"
        );
        assert_eq!(
            err("start_limit = 5/0").1,
            "start_limit: expected a non-zero duration like 5m after `/`, got `0`"
        );
        assert!(err("start_limit = 5/x").1.contains("got `x`"));
        assert!(err("start_limit = x/5m").1.contains("COUNT"));
        for (v, a) in [
            ("none", LimitAction::None),
            ("reboot", LimitAction::Reboot),
            ("poweroff", LimitAction::Poweroff),
        ] {
            assert_eq!(
                unit(&format!("start_limit_action = {v}")).start_limit_action,
                a
            );
        }
        assert_eq!(
            err("start_limit_action = halt").1,
            "start_limit_action: expected `none`, `reboot` or `poweroff`, got `halt`"
        );
    }

    #[test]
    fn after() {
        let d = unit("after = a b\tc\nafter = b d\n after=e");
        let names: std::vec::Vec<&str> = d.after.iter().map(|n| n.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e"]);
        assert_eq!(d.after_lines.as_slice(), [2, 2, 2, 3, 4]);
        assert_eq!(
            err("after = net Bad"),
            (2, "after: `Bad` is not a valid unit name".into())
        );
        assert_eq!(err("after = -x").1, "after: `-x` is not a valid unit name");
        assert_eq!(
            err("after = net svc").1,
            "after: a unit cannot start after itself"
        );
        assert_eq!(err("after =").1, "after: expected unit names");
        let names: std::vec::Vec<std::string::String> =
            (0..AFTER_MAX).map(|i| format!("u{i}")).collect();
        let d = unit(&format!("after = {}", names.join(" ")));
        assert_eq!(d.after.len(), AFTER_MAX);
        assert_eq!(d.after_lines.len(), AFTER_MAX);
        assert_eq!(
            err(&format!("after = {}\nafter = one-more", names.join(" "))),
            (3, "after: more than 16 units".into())
        );
        // A repeat does not use up capacity.
        assert_eq!(
            unit(&format!("after = {}\nafter = u0", names.join(" ")))
                .after
                .len(),
            AFTER_MAX
        );
    }

    #[test]
    fn ready() {
        assert_eq!(unit("ready = started").ready, Ready::Started);
        assert_eq!(unit("ready = notify").ready, Ready::Notify);
        assert_eq!(unit("ready = sd_notify").ready, Ready::SdNotify);
        assert_eq!(
            err("ready = sd-notify").1,
            "ready: expected `started`, `notify` or `sd_notify`, got `sd-notify`"
        );
    }

    #[test]
    fn stop_signal() {
        let s = |v: &str| unit(&format!("stop_signal = {v}")).stop_signal;
        assert_eq!(s("TERM"), libc::SIGTERM);
        assert_eq!(s("SIGTERM"), libc::SIGTERM);
        assert_eq!(s("term"), libc::SIGTERM);
        assert_eq!(s("sigint"), libc::SIGINT);
        assert_eq!(s("HUP"), libc::SIGHUP);
        assert_eq!(s("QUIT"), libc::SIGQUIT);
        assert_eq!(s("KILL"), libc::SIGKILL);
        assert_eq!(s("USR1"), libc::SIGUSR1);
        assert_eq!(s("USR2"), libc::SIGUSR2);
        assert_eq!(s("ALRM"), libc::SIGALRM);
        assert_eq!(s("WINCH"), libc::SIGWINCH);
        assert_eq!(s("PWR"), libc::SIGPWR);
        for bad in ["15", "SIG", "TERMINATE", "SIGSIGTERM", "", "RTMIN"] {
            assert!(parse_signal(bad).is_none(), "{bad}");
        }
        assert_eq!(
            err("stop_signal = 15").1,
            "stop_signal: expected a signal name like TERM, got `15`"
        );
    }

    #[test]
    fn user_and_group() {
        assert_eq!(unit("user = 0").user, Some(IdSpec::Id(0)));
        assert_eq!(unit("user = 1000").user, Some(IdSpec::Id(1000)));
        assert_eq!(
            unit("group = _daemon.x-1").group,
            Some(IdSpec::Name(String::try_from("_daemon.x-1").unwrap()))
        );
        assert_eq!(
            unit("user = 4294967294").user,
            Some(IdSpec::Id(4_294_967_294))
        );
        assert_eq!(
            err("user = 4294967295").1,
            "user: `4294967295` is not a valid id"
        );
        assert_eq!(
            err("user = 99999999999").1,
            "user: `99999999999` is not a valid id"
        );
        assert!(err("user = -x")
            .1
            .starts_with("user: expected a number or a name"));
        assert!(err("group = a b")
            .1
            .starts_with("group: expected a number or a name"));
        assert!(err("user =").1.starts_with("user: expected"));
        assert!(err(&format!("user = {}", "u".repeat(33)))
            .1
            .starts_with("user: expected"));
        assert!(unit(&format!("user = {}", "u".repeat(32))).user.is_some());
    }

    #[test]
    fn paths() {
        assert_eq!(unit("workdir = /var/lib/x").workdir.as_str(), "/var/lib/x");
        assert_eq!(
            err("workdir = var"),
            (2, "workdir: expected an absolute path, got `var`".into())
        );
        let p = format!("/{}", "p".repeat(PATH_BYTES - 1));
        assert_eq!(unit(&format!("workdir = {p}")).workdir.as_str(), p);
        assert_eq!(
            err(&format!("workdir = {p}x")).1,
            "workdir: longer than 128 bytes"
        );
        assert_eq!(
            err("root = rel").1,
            "root: expected an absolute path, got `rel`"
        );
    }

    #[test]
    fn env() {
        let d = unit("env = A=1\nenv = B=\nenv = C=x = y");
        let e: std::vec::Vec<&str> = d.env.iter().collect();
        assert_eq!(e, ["A=1", "B=", "C=x = y"]);
        assert_eq!(
            err("env = C = x").1,
            "env: `C ` is not a valid variable name"
        );
        assert_eq!(
            err("env = NOVALUE").1,
            "env: expected `KEY=VALUE`, got `NOVALUE`"
        );
        assert_eq!(err("env = =x").1, "env: `` is not a valid variable name");
        assert_eq!(
            err("env = A=1\nenv = A=2"),
            (3, "env: `A` is set twice".into())
        );
        let many: std::string::String = (0..ENV_MAX).map(|i| format!("env = V{i}=x\n")).collect();
        assert_eq!(unit(&many).env.len(), ENV_MAX);
        assert_eq!(
            err(&format!("{many}env = ONE=more")),
            (2 + ENV_MAX as u32, "env: more than 16 entries".into())
        );
        let big = format!("env = A={}\nenv = B={}", "a".repeat(600), "b".repeat(600));
        assert_eq!(err(&big), (3, "env: more than 1024 bytes in all".into()));
    }

    #[test]
    fn console_and_output() {
        assert!(unit("console = yes").console);
        assert!(unit("console = true").console);
        assert!(!unit("console = no").console);
        assert!(!unit("console = false").console);
        assert_eq!(
            err("console = 1").1,
            "console: expected `yes` or `no`, got `1`"
        );
        // console = yes means output on the console unless output is given.
        assert_eq!(unit("console = yes").output, Output::Console);
        assert_eq!(unit("output = log\nconsole = yes").output, Output::Log);
        assert_eq!(unit("console = no").output, Output::Log);
        assert_eq!(unit("output = console").output, Output::Console);
        assert_eq!(unit("output = null").output, Output::Null);
        assert_eq!(
            err("output = file").1,
            "output: expected `log`, `console` or `null`, got `file`"
        );
    }

    #[test]
    fn namespaces() {
        let n = |v: &str| unit(&format!("namespaces = {v}")).namespaces;
        assert_eq!(n("none"), Namespaces::NONE);
        assert_eq!(n("pid mount uts ipc net cgroup"), Namespaces(0b11_1111));
        assert_eq!(n("net net"), Namespaces(Namespaces::NET));
        assert_eq!(
            n("cgroup\tipc"),
            Namespaces(Namespaces::CGROUP | Namespaces::IPC)
        );
        assert_eq!(
            err("namespaces = pid user"),
            (
                2,
                "namespaces: expected some of pid mount uts ipc net cgroup, or `none`, got `user`"
                    .into()
            )
        );
        assert_eq!(
            err("namespaces = none pid").1,
            "namespaces: `none` cannot be combined with other namespaces"
        );
        assert!(err("namespaces =").1.starts_with("namespaces: expected"));
    }

    #[test]
    fn hostname() {
        assert_eq!(
            unit("hostname = a-b.c1").hostname.as_deref(),
            Some("a-b.c1")
        );
        let h64 = "h".repeat(64);
        assert_eq!(
            unit(&format!("hostname = {h64}")).hostname.as_deref(),
            Some(h64.as_str())
        );
        for bad in ["", "-a", ".a", "a_b", "a b", &"h".repeat(65)] {
            assert!(
                err(&format!("hostname = {bad}"))
                    .1
                    .starts_with("hostname: expected 1-64"),
                "{bad}"
            );
        }
        assert_eq!(
            err("hostname = h\nnamespaces = pid mount"),
            (
                2,
                "hostname: needs `uts` in namespaces (it would rename the whole system)".into()
            )
        );
    }

    #[test]
    fn root_needs_mount_namespace() {
        assert_eq!(unit("root = /srv/c").root.as_deref(), Some("/srv/c"));
        assert_eq!(
            err("namespaces = pid\n\nroot = /srv/c"),
            (4, "root: needs `mount` in namespaces".into())
        );
        assert_eq!(err("root = /srv/c\nnamespaces = none").0, 2);
        assert!(unit("root = /srv/c\nnamespaces = mount").root.is_some());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("max"), Some(Limit::Max));
        assert_eq!(parse_size("0"), Some(Limit::Value(0)));
        assert_eq!(parse_size("4096"), Some(Limit::Value(4096)));
        assert_eq!(parse_size("1K"), Some(Limit::Value(1024)));
        assert_eq!(parse_size("1k"), Some(Limit::Value(1024)));
        assert_eq!(parse_size("3M"), Some(Limit::Value(3 << 20)));
        assert_eq!(parse_size("2G"), Some(Limit::Value(2 << 30)));
        for bad in [
            "",
            "MAX",
            "1T",
            "1.5M",
            "-1",
            "1 M",
            "M",
            "1KB",
            "17179869184G",
        ] {
            assert_eq!(parse_size(bad), None, "{bad}");
        }
        for key in [
            "memory.max",
            "memory.high",
            "memory.low",
            "memory.min",
            "memory.swap.max",
        ] {
            assert_eq!(
                err(&format!("{key} = lots")).1,
                format!("{key}: expected bytes with an optional K, M or G, or `max`, got `lots`")
            );
        }
        assert_eq!(unit("memory.low = max").limits.memory_low, Some(Limit::Max));
    }

    #[test]
    fn pids_and_weights() {
        assert_eq!(unit("pids.max = max").limits.pids_max, Some(Limit::Max));
        assert_eq!(unit("pids.max = 0").limits.pids_max, Some(Limit::Value(0)));
        assert_eq!(
            err("pids.max = 10K").1,
            "pids.max: expected a number or `max`, got `10K`"
        );
        assert!(err("pids.max = -1").1.starts_with("pids.max:"));
        for key in ["cpu.weight", "io.weight"] {
            let lim = |v: &str| {
                let l = unit(&format!("{key} = {v}")).limits;
                if key == "cpu.weight" {
                    l.cpu_weight
                } else {
                    l.io_weight
                }
            };
            assert_eq!(lim("1"), Some(1));
            assert_eq!(lim("10000"), Some(10_000));
            for bad in ["0", "10001", "+5", "x", "", "70000"] {
                assert_eq!(
                    err(&format!("{key} = {bad}")).1,
                    format!("{key}: expected a number from 1 to 10000, got `{bad}`")
                );
            }
        }
    }

    #[test]
    fn cpu_max() {
        let c = |v: &str| unit(&format!("cpu.max = {v}")).limits.cpu_max.unwrap();
        assert_eq!(c("50000 100000"), (Limit::Value(50_000), 100_000));
        assert_eq!(c("max 20000"), (Limit::Max, 20_000));
        assert_eq!(c("max"), (Limit::Max, 100_000));
        assert_eq!(c("25000"), (Limit::Value(25_000), 100_000));
        assert_eq!(c("1000 1000"), (Limit::Value(1000), 1000));
        assert_eq!(c("200000  1000000"), (Limit::Value(200_000), 1_000_000));
        assert_eq!(
            err("cpu.max = 999 1000").1,
            "cpu.max: expected a quota of at least 1000 (microseconds) or `max`, got `999`"
        );
        assert_eq!(
            err("cpu.max = max 999").1,
            "cpu.max: expected a period from 1000 to 1000000 (microseconds), got `999`"
        );
        assert!(err("cpu.max = max 1000001").1.contains("got `1000001`"));
        assert_eq!(
            err("cpu.max = 1 2 3").1,
            "cpu.max: expected `QUOTA PERIOD` or `max PERIOD`, got `1 2 3`"
        );
        assert!(err("cpu.max =").1.starts_with("cpu.max: expected a quota"));
        assert!(err("cpu.max = 50% 100000").1.contains("got `50%`"));
    }

    #[test]
    fn description() {
        assert_eq!(unit("description =").description.as_str(), "");
        let d = "d".repeat(DESC_MAX);
        assert_eq!(unit(&format!("description = {d}")).description.as_str(), d);
        assert_eq!(
            err(&format!("description = {d}x")).1,
            "description: longer than 96 bytes"
        );
        assert_eq!(
            unit("description = Ünïcode ☃ = fine").description.as_str(),
            "Ünïcode ☃ = fine"
        );
    }

    #[test]
    fn long_values_are_clipped_in_messages() {
        let v = "v".repeat(300);
        let (_, m) = err(&format!("type = {v}"));
        assert!(m.len() <= 160);
        assert!(m.ends_with(&format!("got `{}...`", "v".repeat(40))), "{m}");
        // The message buffer itself never overflows.
        let m = msg(format_args!("{}", "é".repeat(200)));
        assert!(m.ends_with("...") && m.len() <= 160);
    }

    #[test]
    fn line_numbers_count_comments_and_blank_lines() {
        let e = parse("svc", "# c\n\n\nexec = /bin/true\n# c\n\noops = 1\n").unwrap_err();
        assert_eq!(e.line, 7);
        let e = parse("svc", "a\r\nexec = /bin/true\r\n").unwrap_err();
        assert_eq!(e.line, 1);
    }
}

#[cfg(test)]
mod render_tests {
    use super::*;

    fn roundtrip(text: &str) {
        let a = parse("web", text).unwrap();
        let mut out = std::string::String::new();
        render(&a, &mut out).unwrap();
        let b = parse("web", &out).unwrap_or_else(|e| panic!("{out}\n{e:?}"));
        assert_eq!(a, b, "rendered:\n{out}");
    }

    #[test]
    fn render_parses_back_to_the_same_definition() {
        roundtrip("exec = /bin/true\n");
        roundtrip(
            "description = the web server\n\
             exec = /bin/httpd -f \"a b\" \"q\\\"uote\" back\\\\slash\n\
             type = oneshot\nrestart = on-failure\nrestart_delay = 250ms\n\
             restart_delay_max = 1m\nstart_limit = 10/5m\nstart_limit_action = reboot\n\
             after = lo net\nready = sd_notify\nstop_signal = INT\nstop_timeout = 2s\n\
             user = nobody\ngroup = 65534\nworkdir = /tmp\nenv = A=1\nenv = B=x y\n\
             console = yes\noutput = log\nnamespaces = pid mount uts net\nhostname = box\n\
             root = /srv/c\nlog_size = 16K\nmemory.max = 16M\nmemory.high = 1000\nmemory.low = 4K\n\
             memory.min = 1G\nmemory.swap.max = max\npids.max = 64\ncpu.weight = 50\n\
             cpu.max = 50000 100000\nio.weight = 200\n",
        );
        roundtrip("exec = /bin/sh\nnamespaces = none\nconsole = yes\n");
        roundtrip("exec = /bin/sh\ncpu.max = max 20000\npids.max = max\n");
    }
}
