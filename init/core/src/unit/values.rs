//! The values of unit-file keys: durations, sizes, signals, ids, paths,
//! weights, `cpu.max` and `exec` splitting, and the error text they give.
//! `parse` applies them key by key.

use super::*;
use heapless::String;

/// An error message about one line.
pub(super) type Msg = String<160>;

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

pub(super) fn msg(args: core::fmt::Arguments<'_>) -> Msg {
    let mut w = MsgWriter {
        msg: Msg::new(),
        full: false,
    };
    let _ = core::fmt::write(&mut w, args);
    w.msg
}

/// Returns the formatted message as an error.
macro_rules! bad {
    ($($arg:tt)*) => { return Err($crate::unit::values::msg(format_args!($($arg)*))) };
}
pub(super) use bad;

/// A value shown in a message, cut to a readable length.
pub(super) struct Clip<'a>(pub(super) &'a str);

/// At most 40 characters of the value, control characters shown as `?`
/// (the message goes to a terminal: `initctl check`, the console).
impl core::fmt::Display for Clip<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        use core::fmt::Write;
        const SHOW: usize = 40;
        for (i, c) in self.0.chars().enumerate() {
            if i == SHOW {
                return f.write_str("...");
            }
            f.write_char(if c.is_control() { '?' } else { c })?;
        }
        Ok(())
    }
}

/// `250ms`, `2s`, `1m`, `1h`, or a plain number of seconds.
pub fn parse_duration(v: &str) -> Option<Millis> {
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    let (num, unit) = (v.get(..digits)?, v.get(digits..)?);
    if num.is_empty() {
        return None;
    }
    let n: u64 = crate::num::dec(num)?;
    let scale = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// `PERCENT/DURATION` (`20%/10s`): 1-100 percent over 500 ms to 10 s, the
/// window the kernel's PSI trigger accepts.
pub fn parse_pressure_limit(v: &str) -> Option<PressureLimit> {
    let (p, d) = v.split_once('/')?;
    let percent: u8 = number(p.trim().strip_suffix('%')?.trim())?;
    let window = u16::try_from(parse_duration(d.trim())?).ok()?;
    let ok = (1..=100).contains(&percent)
        && (PressureLimit::WINDOW_MIN..=PressureLimit::WINDOW_MAX).contains(&window);
    ok.then_some(PressureLimit { percent, window })
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
    let n: u64 = crate::num::dec(num)?;
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
    crate::vocab::signal::parse(v)
}

/// A hostname: 1-64 of letters, digits, `-` and `.`, not starting with
/// `-` or `.`.
pub(super) fn valid_hostname(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= HOSTNAME_MAX
        && !h.starts_with(['-', '.'])
        && h.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.')
}

/// A user or group name in the portable set (`a-z A-Z 0-9 . _ -`, not
/// starting with `-`).
pub(super) fn valid_id_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= ID_NAME_MAX
        && !n.starts_with('-')
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

/// A whole number of plain decimal digits (no sign, no blanks).
pub(super) fn number<T: TryFrom<u64>>(v: &str) -> Option<T> {
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    crate::num::dec(v)
}

pub(super) fn parse_id(key: &str, v: &str) -> Result<IdSpec, Msg> {
    if !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()) {
        // (uid_t)-1 means "unchanged" to setuid/setgid, never an id.
        match crate::num::dec::<u32>(v) {
            Some(n) if n != u32::MAX => return Ok(IdSpec::Id(n)),
            _ => bad!("{key}: `{}` is not a valid id", Clip(v)),
        }
    }
    if !valid_id_name(v) {
        bad!(
            "{key}: expected a number or a name of up to {ID_NAME_MAX} of a-z A-Z 0-9 . _ -, got `{}`",
            Clip(v)
        );
    }
    match Text::try_from(v) {
        Ok(s) => Ok(IdSpec::Name(s)),
        Err(_) => bad!(
            "{key}: a name of up to {ID_NAME_MAX} bytes, got `{}`",
            Clip(v)
        ),
    }
}

pub(super) fn parse_path(key: &str, v: &str) -> Result<Text<PATH_BYTES>, Msg> {
    if !v.starts_with('/') {
        bad!("{key}: expected an absolute path, got `{}`", Clip(v));
    }
    let mut s = Text::new();
    if s.push_str(v).is_err() {
        bad!("{key}: longer than {PATH_BYTES} bytes");
    }
    Ok(s)
}

/// `root`: a directory, or overlay lower layers topmost first separated
/// by `:` (the order of overlayfs' `lowerdir`), each absolute.
pub(super) fn parse_root(v: &str) -> Result<Text<ROOT_BYTES>, Msg> {
    if !v.contains(':') {
        let p = parse_path("root", v)?;
        return Text::try_from(p.as_str()).map_err(|_| msg(format_args!("root: too long")));
    }
    // Counted first: each layer is compared with those before it, so a
    // value of a thousand layers (a unit file's size allows it) took a
    // quadratic time in PID 1's loop before it was refused.
    let count = v.split(':').count();
    if count > MAX_ROOT_LAYERS {
        bad!("root: {count} layers, at most {MAX_ROOT_LAYERS}");
    }
    let mut layers = 0usize;
    for layer in v.split(':') {
        layers += 1;
        if !layer.starts_with('/') {
            bad!(
                "root: layer {layers}: expected an absolute path, got `{}`",
                Clip(layer)
            );
        }
        // overlayfs splits its options on ',' and unescapes '\\'.
        if layer.contains([',', '\\']) {
            bad!(
                "root: layer {layers}: `,` and `\\` are not allowed, got `{}`",
                Clip(layer)
            );
        }
        if layer.len() > PATH_BYTES {
            bad!("root: layer {layers}: longer than {PATH_BYTES} bytes");
        }
        // overlayfs refuses a lower directory twice (ELOOP at every start).
        let same = |l: &str| l.trim_end_matches('/') == layer.trim_end_matches('/');
        if let Some(i) = v.split(':').take(layers - 1).position(same) {
            bad!("root: layer {layers} is layer {} again", i + 1);
        }
    }
    let mut s = Text::new();
    if s.push_str(v).is_err() {
        bad!("root: longer than {ROOT_BYTES} bytes");
    }
    Ok(s)
}

pub(super) fn yes_no(key: &str, v: &str) -> Result<bool, Msg> {
    match v {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => bad!("{key}: expected `yes` or `no`, got `{}`", Clip(v)),
    }
}

pub(super) fn set_str<const N: usize>(key: &str, v: &str, out: &mut Text<N>) -> Result<(), Msg> {
    out.clear();
    if out.push_str(v).is_err() {
        bad!("{key}: longer than {N} bytes");
    }
    Ok(())
}

pub(super) fn parse_weight(key: &str, v: &str) -> Result<u16, Msg> {
    match number::<u16>(v) {
        Some(n) if (1..=10_000).contains(&n) => Ok(n),
        _ => bad!(
            "{key}: expected a number from 1 to 10000, got `{}`",
            Clip(v)
        ),
    }
}

/// The largest `cpu.max` quota the kernel takes: its max_cfs_runtime,
/// 2^44 - 1 microseconds.
pub(super) const CPU_QUOTA_MAX: u64 = (1 << 44) - 1;

/// The largest `pids.max` the kernel takes: PID_MAX_LIMIT on 64-bit.
pub(super) const PIDS_MAX_LIMIT: u64 = 4 * 1024 * 1024;

pub(super) fn parse_cpu_max(v: &str) -> Result<(Limit, u64), Msg> {
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
        // The kernel refuses a quota above its max_cfs_runtime (EINVAL at
        // every start): said here instead.
        q => match number::<u64>(q) {
            Some(n) if (1_000..=CPU_QUOTA_MAX).contains(&n) => Limit::Value(n),
            _ => bad!(
                "cpu.max: expected a quota from 1000 to {CPU_QUOTA_MAX} (microseconds) or `max`, got `{}`",
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

/// `capabilities`: names (`CAP_NET_BIND_SERVICE` or `net_bind_service`),
/// blank-separated, or `all` or `none` alone; all in any case.
pub fn parse_capabilities(v: &str) -> Result<Caps, Msg> {
    let mut caps = Caps::NONE;
    let mut words = 0u32;
    let mut whole: Option<Caps> = None;
    for w in v.split_whitespace() {
        words = words.saturating_add(1);
        let all = w.eq_ignore_ascii_case("all");
        if all || w.eq_ignore_ascii_case("none") {
            whole = Some(if all { Caps::ALL } else { Caps::NONE });
            continue;
        }
        match crate::confine::caps::number(w) {
            Some(n) => caps.0 |= 1u64 << n,
            None => bad!(
                "capabilities: unknown capability `{}` (e.g. net_bind_service or CAP_NET_RAW; see capabilities(7))",
                Clip(w)
            ),
        }
    }
    match (words, whole) {
        (0, _) => bad!("capabilities: expected capability names, `all` or `none`"),
        (1, Some(c)) => Ok(c),
        (_, Some(_)) => bad!("capabilities: `all` and `none` stand alone"),
        (_, None) => Ok(caps),
    }
}

/// `seccomp`: `none`, or system call names and `@groups`; a leading `~`
/// makes it a deny list. None for `none`.
pub fn parse_seccomp(v: &str) -> Result<Option<Seccomp>, Msg> {
    if v == "none" {
        return Ok(None);
    }
    let (deny, list) = match v.strip_prefix('~') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, v),
    };
    let mut sc = Seccomp {
        deny,
        ..Seccomp::default()
    };
    let mut words = 0u32;
    for w in list.split_whitespace() {
        words = words.saturating_add(1);
        if let Some(g) = w.strip_prefix('@') {
            match crate::confine::groups::index(g) {
                Some(i) => sc.groups |= 1u32 << i,
                None => bad!(
                    "seccomp: unknown group `{}` (see docs/units.md, \"seccomp\")",
                    Clip(w)
                ),
            }
        } else {
            match crate::confine::syscall_index(w) {
                Some(i) => sc.names.insert(i),
                None if w == "none" => bad!("seccomp: `none` stands alone"),
                None => bad!("seccomp: unknown system call `{}`", Clip(w)),
            }
        }
    }
    if words == 0 {
        bad!("seccomp: expected system call names or @groups, or `none`");
    }
    Ok(Some(sc))
}

/// `user_map = OUTSIDE COUNT`: OUTSIDE 1 or more (0 would make the unit's
/// root the real root), COUNT 1 or more, the range within 32 bits.
pub fn parse_user_map(v: &str) -> Result<UserMap, Msg> {
    let mut it = v.split_whitespace();
    let (Some(o), Some(c), None) = (it.next(), it.next(), it.next()) else {
        bad!(
            "user_map: expected `OUTSIDE_UID COUNT` like `100000 65536`, got `{}`",
            Clip(v)
        );
    };
    let (Some(outside), Some(count)) = (number::<u32>(o), number::<u32>(c)) else {
        bad!("user_map: expected two numbers, got `{}`", Clip(v));
    };
    if outside == 0 {
        bad!("user_map: OUTSIDE_UID 0 would make the unit's root the real root");
    }
    if count == 0 || outside.checked_add(count).is_none() {
        bad!("user_map: COUNT must be 1 or more and OUTSIDE_UID + COUNT fit in 32 bits");
    }
    Ok(UserMap { outside, count })
}
