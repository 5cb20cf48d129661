//! `initctl status --json` for scripts (docs/initctl.md), in the documented
//! shape, written by hand: serde and serde-json-core for these two shapes
//! were 3 KB of the binary (issue 10, the 400 KiB budget). The wire types
//! are not written as they are: their shape is postcard's (a pid of 0,
//! enum variant numbers), not the one scripts read.

use crate::proto::{LastExit, UnitDetail, UnitStatus};
use crate::unit::Limit;
use crate::vocab::signal;
use wren_core::num::decimal;

/// What can be written as JSON text.
pub(super) trait ToJson {
    fn write(&self, out: &mut Vec<u8>);
}

/// A string literal. The escapes are those initctl has always written:
/// `"`, `\` and the C0 controls (`\b \t \n \f \r`, the others as
/// `\u00xx` in lower case), and DEL, the C1 controls and U+2028/2029 too,
/// since DEL and C1 (U+009B is CSI) upset terminals and the other two
/// break JavaScript before ES2019.
impl ToJson for &str {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        for c in self.chars() {
            let short = match c {
                '"' => b'"',
                '\\' => b'\\',
                '\u{8}' => b'b',
                '\t' => b't',
                '\n' => b'n',
                '\u{c}' => b'f',
                '\r' => b'r',
                '\0'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{2028}' | '\u{2029}' => {
                    hex_escape(c, out);
                    continue;
                }
                _ => {
                    out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    continue;
                }
            };
            out.extend_from_slice(&[b'\\', short]);
        }
        out.push(b'"');
    }
}

/// `\uXXXX`, lower-case hex, for a character of the basic plane.
fn hex_escape(c: char, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let n = u32::from(c);
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        let digit = (n >> shift) & 0xf;
        out.extend(HEX.get(digit as usize));
    }
}

/// A number, or `null`.
fn number(n: Option<u64>, out: &mut Vec<u8>) {
    match n {
        Some(n) => out.extend_from_slice(decimal(n, &mut [0; 20]).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
}

/// A signed number (an exit code or a signal's), as `Display` writes it.
fn signed(n: i32, out: &mut Vec<u8>) {
    if n < 0 {
        out.push(b'-');
    }
    number(Some(n.unsigned_abs().into()), out);
}

/// `,"key":`, or `{"key":` for the first key of an object.
fn key(first: bool, key: &str, out: &mut Vec<u8>) {
    out.push(if first { b'{' } else { b',' });
    key.write(out);
    out.push(b':');
}

/// One unit's fields of the table, in the documented order, without the
/// closing brace. `pid` and `uptime_ms` are null when not running,
/// `memory_current` when unknown, `memory_max` when unset.
fn unit(u: &UnitStatus, out: &mut Vec<u8>) {
    let running = u.pid != 0;
    key(true, "name", out);
    u.name.as_str().write(out);
    key(false, "state", out);
    u.state.as_str().write(out);
    key(false, "pid", out);
    number(running.then_some(u64::from(u.pid)), out);
    key(false, "restarts", out);
    number(Some(u64::from(u.restarts)), out);
    key(false, "memory_current", out);
    number(u.memory_current, out);
    key(false, "memory_max", out);
    match u.memory_max {
        // No limit.
        Some(Limit::Max) => "max".write(out),
        Some(Limit::Value(v)) => number(Some(v), out),
        None => number(None, out),
    }
    key(false, "uptime_ms", out);
    number(running.then_some(u.uptime_ms), out);
}

/// The table: an array with one object per unit.
struct Table<'a>(&'a [UnitStatus]);

impl ToJson for Table<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        for (i, u) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            unit(u, out);
            out.push(b'}');
        }
        out.push(b']');
    }
}

/// One unit in detail: the table's fields, then those of `status NAME`.
struct Detail<'a> {
    d: &'a UnitDetail,
    /// The last lines, invalid UTF-8 replaced.
    log: &'a str,
}

impl ToJson for Detail<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let d = self.d;
        unit(&d.status, out);
        // `{"code":N}`, `{"signal":N,"name":"SIGX"}` (name null when
        // unknown) or `"oom-kill"`; null when the main process never ended.
        key(false, "last_exit", out);
        match d.last_exit {
            LastExit::None => number(None, out),
            LastExit::Code(code) => {
                key(true, "code", out);
                signed(code, out);
                out.push(b'}');
            }
            LastExit::Signal(n) => {
                key(true, "signal", out);
                signed(n, out);
                key(false, "name", out);
                match signal::name(n) {
                    // `KILL` as `"SIGKILL"`, as `kill -l` and strace print it.
                    Some(name) => {
                        // Signal names need no escape.
                        out.extend_from_slice(b"\"SIG");
                        out.extend_from_slice(name.as_bytes());
                        out.push(b'"');
                    }
                    None => number(None, out),
                }
                out.push(b'}');
            }
            LastExit::OomKill => "oom-kill".write(out),
        }
        key(false, "oom_kills", out);
        number(Some(u64::from(d.oom_kills)), out);
        // Memory `some` avg10 in basis points (hundredths of a percent):
        // an integer keeps floating point (and its tens of KB) out of the
        // binary. Null: no PSI.
        key(false, "pressure_avg10_bp", out);
        number(d.pressure_avg10.map(u64::from), out);
        key(false, "pressure_events", out);
        number(Some(u64::from(d.pressure_events)), out);
        // Limit keys not enforced, blank-separated (`""`: none).
        for (k, v) in [
            ("not_enforced", d.not_enforced.as_str()),
            ("reason", d.reason.as_str()),
            // The confinement line of `status NAME`.
            ("confinement", d.confinement.as_str()),
            ("log", self.log),
        ] {
            key(false, k, out);
            v.write(out);
        }
        out.push(b'}');
    }
}

/// `status --json`: an array with one object per unit, and a newline.
pub(super) fn units(units: &[UnitStatus]) -> Result<Vec<u8>, String> {
    text(&Table(units))
}

/// `status NAME --json`: one object, and a newline.
pub(super) fn detail(d: &UnitDetail, log: &[u8]) -> Result<Vec<u8>, String> {
    let log = String::from_utf8_lossy(log);
    text(&Detail { d, log: &log })
}

/// `v` as JSON text and a newline. Never an error: the `Result` is the
/// shape every `status` output has.
pub(super) fn text<T: ToJson + ?Sized>(v: &T) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(4096);
    v.write(&mut out);
    out.push(b'\n');
    Ok(out)
}
