//! The unit-file parser: text to `UnitDef`, every error as `LINE: message`.

use super::lists::{add_after, add_env, parse_namespaces};
use super::values::{
    bad, msg, number, parse_capabilities, parse_cpu_max, parse_duration, parse_id, parse_path,
    parse_pressure_limit, parse_root, parse_seccomp, parse_signal, parse_size, parse_user_map,
    parse_weight, set_str, split_exec, valid_hostname, yes_no, Clip, Msg, PIDS_MAX_LIMIT,
};
use super::*;
use heapless::String;

/// A parse error: the line (1-based, 0 for the file as a whole) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: u32,
    pub msg: String<160>,
}

// ---------------------------------------------------------------------------
// The parser.
//
// Syntax decisions (docs/units.md, "Syntax", says them for users):
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
// - `read_only` needs `mount`, `root_overlay` needs `root`, `user_map`
//   needs `user` in `namespaces`; `capabilities = all`/`none` stand alone;
//   `seccomp = ~ a b` and `~a b` are the same deny list.
// - `watchdog` needs `ready = sd_notify`; `watchdog = 0` is off.
// - An `env` KEY may not contain blanks or `=` and may not be set twice;
//   an empty value (`after =`, `namespaces =`, ...) is a bad value except
//   for `description`.
// ---------------------------------------------------------------------------

/// Every key, in the order of docs/units.md, "Keys". The index of a key here
/// is its slot in the parser's "seen on line" table.
pub const KEYS: [&str; 43] = [
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
    "pressure_limit",
    "pressure_action",
    "shed_order",
    "critical",
    "start_timeout",
    "watchdog",
    "capabilities",
    "no_new_privs",
    "seccomp",
    "read_only",
    "root_overlay",
    "user_map",
];

/// Keys that may appear on more than one line.
fn repeatable(key: &str) -> bool {
    matches!(key, "after" | "env")
}

/// What the parser tracks besides the `UnitDef` itself.
pub(super) struct State {
    /// Line each key was first seen on (0: not seen), indexed as `KEYS`.
    seen: [u32; KEYS.len()],
}

impl State {
    /// The line key `KEYS[slot]` was first seen on; `slot` from `key`.
    pub(super) fn line_of(&self, slot: usize) -> u32 {
        self.seen.get(slot).copied().unwrap_or(0)
    }
}

/// `KEYS`' index of `k`, for `const { key(..) }`: found when the parser is
/// built, not looked for in every file (a dozen scans of `KEYS` a file);
/// a name that is not a key fails the build.
pub(super) const fn key(k: &str) -> usize {
    let mut rest: &[&str] = &KEYS;
    let mut i = 0;
    while let [first, tail @ ..] = rest {
        if same(first.as_bytes(), k.as_bytes()) {
            return i;
        }
        rest = tail;
        i += 1;
    }
    assert!(i < KEYS.len(), "not a key");
    i
}

const fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut a, mut b) = (a, b);
    while let ([x, ta @ ..], [y, tb @ ..]) = (a, b) {
        if *x != *y {
            return false;
        }
        a = ta;
        b = tb;
    }
    true
}

/// Apply one `key = value` (key already known and not a forbidden repeat).
pub(super) fn apply(
    def: &mut UnitDef,
    lines: &mut AfterLines,
    key: &str,
    v: &str,
    line: u32,
) -> Result<(), Msg> {
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
            def.seldom.start_limit = Some(StartLimit { count, window });
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
        "after" => add_after(def, lines, v, line)?,
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
        "user" => def.seldom.user = Some(parse_id(key, v)?),
        "group" => def.seldom.group = Some(parse_id(key, v)?),
        "workdir" => def.workdir = parse_path(key, v)?,
        "env" => add_env(def, v)?,
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
        "namespaces" => def.namespaces = parse_namespaces(v)?,
        "hostname" => {
            if !valid_hostname(v) {
                bad!(
                    "hostname: expected 1-{HOSTNAME_MAX} of letters, digits, `-` and `.`, got `{}`",
                    Clip(v)
                );
            }
            let mut h = Text::new();
            if h.push_str(v).is_err() {
                bad!("hostname: longer than {HOSTNAME_MAX} bytes");
            }
            def.seldom.hostname = Some(h);
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
        "root" => def.seldom.root = Some(parse_root(v)?),
        "memory.max" | "memory.high" | "memory.low" | "memory.min" | "memory.swap.max" => {
            let v = size(v)?;
            def.limits.edit(|l| {
                *match key {
                    "memory.max" => &mut l.memory_max,
                    "memory.high" => &mut l.memory_high,
                    "memory.low" => &mut l.memory_low,
                    "memory.min" => &mut l.memory_min,
                    _ => &mut l.memory_swap_max,
                } = v;
            });
        }
        "pids.max" => {
            let v = match v {
                "max" => Limit::Max,
                // The kernel refuses more than PID_MAX_LIMIT (EINVAL at
                // every start, the unit never up): said here instead.
                _ => match number::<u64>(v) {
                    Some(n) if n <= PIDS_MAX_LIMIT => Limit::Value(n),
                    Some(_) => bad!(
                        "pids.max: at most {PIDS_MAX_LIMIT} (the kernel's limit) or `max`, got `{}`",
                        Clip(v)
                    ),
                    _ => bad!("pids.max: expected a number or `max`, got `{}`", Clip(v)),
                },
            };
            def.limits.edit(|l| l.pids_max = Some(v));
        }
        "cpu.weight" => {
            let v = parse_weight(key, v)?;
            def.limits.edit(|l| l.cpu_weight = Some(v));
        }
        "cpu.max" => {
            let v = parse_cpu_max(v)?;
            def.limits.edit(|l| l.cpu_max = Some(v));
        }
        "io.weight" => {
            let v = parse_weight(key, v)?;
            def.limits.edit(|l| l.io_weight = Some(v));
        }
        "pressure_limit" => match parse_pressure_limit(v) {
            Some(l) => def.seldom.pressure_limit = Some(l),
            None => bad!(
                "pressure_limit: expected PERCENT/DURATION with 1-100% and 500ms to 10s (e.g. `20%/10s`), got `{}`",
                Clip(v)
            ),
        },
        "pressure_action" => {
            def.pressure_action = match v {
                "log" => PressureAction::Log,
                "restart" => PressureAction::Restart,
                "stop" => PressureAction::Stop,
                _ => bad!(
                    "pressure_action: expected `log`, `restart` or `stop`, got `{}`",
                    Clip(v)
                ),
            }
        }
        "critical" => {
            def.critical = match v {
                "yes" | "true" => true,
                "no" | "false" => false,
                _ => bad!("critical: expected `yes` or `no`, got `{}`", Clip(v)),
            }
        }
        "shed_order" => match number::<u16>(v) {
            Some(n) if (1..=1000).contains(&n) => def.shed_order = Some(n),
            _ => bad!("shed_order: expected a number from 1 to 1000, got `{}`", Clip(v)),
        },
        "start_timeout" => def.start_timeout = duration(v)?,
        "watchdog" => def.seldom.watchdog = Some(duration(v)?).filter(|&d| d > 0),
        "capabilities" => def.seldom.capabilities = Some(parse_capabilities(v)?),
        "no_new_privs" => def.no_new_privs = yes_no(key, v)?,
        "seccomp" => def.seccomp = parse_seccomp(v)?.map(Box::new),
        "read_only" => def.read_only = yes_no(key, v)?,
        "root_overlay" => def.root_overlay = yes_no(key, v)?,
        "user_map" => def.seldom.user_map = Some(parse_user_map(v)?),
        // `KEYS` and this match list the same keys; see the test
        // `every_key_is_applied`.
        _ => bad!("unknown key `{}`", Clip(key)),
    }
    Ok(())
}

/// Parse the text of unit `name`, reporting every problem through `err`:
/// those of single lines in line order, then those of the rules across
/// keys in the order of the rules, each at the line of the key it names
/// (so line 4 may come after line 2 there), `missing exec` at line 0.
/// Returns the definition only when there was no problem at all.
pub fn parse_all(name: &str, text: &str, err: &mut dyn FnMut(ParseError)) -> Option<UnitDef> {
    parse_with_lines(name, text, err).map(|(def, ..)| def)
}

/// `parse_all`, with the line of each `after` name and those of the ids
/// (the loader's checks).
pub fn parse_with_lines(
    name: &str,
    text: &str,
    err: &mut dyn FnMut(ParseError),
) -> Option<(UnitDef, AfterLines, IdLines)> {
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
    let mut lines = AfterLines::new();
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
        if let Err(m) = apply(&mut def, &mut lines, key, value, line) {
            report(line, m);
        }
    }

    // Whole-file rules, now that every key is known.
    super::rules::across_keys(&mut def, &st, &mut report);
    if failed {
        None
    } else {
        // A seldom key written with its default value left a box.
        def.seldom.tidy();
        let ids = [
            st.line_of(const { key("user") }),
            st.line_of(const { key("group") }),
            st.line_of(const { key("user_map") }),
            st.line_of(const { key("root") }),
        ];
        Some((def, lines, ids))
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
