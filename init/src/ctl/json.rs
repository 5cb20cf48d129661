//! `initctl status --json` for scripts (docs/initctl.md): view structs in
//! the documented shape, written by serde. The wire types are not
//! serialized as they are: their shape is postcard's (a pid of 0, enum
//! variant names), not the one scripts read.

use crate::proto::{LastExit, UnitDetail, UnitStatus};
use crate::unit::Limit;
use crate::vocab::signal;
use serde::{Serialize, Serializer};

/// What `status --json` writes: the table, or one unit in detail.
// One type, so that the serializer is instantiated once.
#[derive(Serialize)]
#[serde(untagged)]
enum Json<'a> {
    Table(&'a [Unit<'a>]),
    /// By reference: one unit's detail is large beside a slice.
    One(&'a Unit<'a>),
}

/// One unit. `pid` and `uptime_ms` are null when not running,
/// `memory_current` when unknown. The fields after `uptime_ms` are those
/// of `status NAME --json` only: the table's objects have none of them.
#[derive(Serialize)]
struct Unit<'a> {
    name: &'a str,
    state: &'static str,
    pid: Option<u64>,
    restarts: u64,
    memory_current: Option<u64>,
    /// Null when unset.
    memory_max: Option<MemoryMax>,
    uptime_ms: Option<u64>,
    /// Inner `None` (null): the main process never ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_exit: Option<Option<Exit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oom_kills: Option<u64>,
    /// Inner `None` (null): no PSI. Memory `some` avg10 in basis points
    /// (hundredths of a percent): an integer keeps floating point (and
    /// its tens of KB) out of the binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pressure_avg10_bp: Option<Option<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pressure_events: Option<u64>,
    /// Limit keys not enforced, blank-separated (`""`: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    not_enforced: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    /// The confinement line of `status NAME`.
    #[serde(skip_serializing_if = "Option::is_none")]
    confinement: Option<&'a str>,
    /// The last lines, invalid UTF-8 replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    log: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum MemoryMax {
    Bytes(u64),
    /// `"max"`: no limit.
    Word(&'static str),
}

impl<'a> Unit<'a> {
    fn of(u: &'a UnitStatus) -> Self {
        let running = u.pid != 0;
        Unit {
            name: &u.name,
            state: u.state.as_str(),
            pid: running.then_some(u64::from(u.pid)),
            restarts: u64::from(u.restarts),
            memory_current: u.memory_current,
            memory_max: u.memory_max.map(|m| match m {
                Limit::Max => MemoryMax::Word("max"),
                Limit::Value(v) => MemoryMax::Bytes(v),
            }),
            uptime_ms: running.then_some(u.uptime_ms),
            last_exit: None,
            oom_kills: None,
            pressure_avg10_bp: None,
            pressure_events: None,
            not_enforced: None,
            reason: None,
            confinement: None,
            log: None,
        }
    }
}

/// `{"code":N}`, `{"signal":N,"name":"SIGX"}` (name null when unknown)
/// or `"oom-kill"`.
#[derive(Serialize)]
#[serde(untagged)]
enum Exit {
    Code {
        code: i32,
    },
    Signal {
        signal: i32,
        #[serde(serialize_with = "sig_name")]
        name: Option<&'static str>,
    },
    Word(&'static str),
}

/// `KILL` as `"SIGKILL"`, the name as `kill -l` and strace print it.
fn sig_name<S: Serializer>(name: &Option<&'static str>, s: S) -> Result<S::Ok, S::Error> {
    let mut full = heapless::String::<16>::new();
    match name {
        Some(n) if full.push_str("SIG").and_then(|()| full.push_str(n)).is_ok() => {
            s.serialize_str(&full)
        }
        _ => s.serialize_none(),
    }
}

/// `status --json`: an array with one object per unit, and a newline.
pub(super) fn units(units: &[UnitStatus]) -> Result<Vec<u8>, String> {
    let view: Vec<Unit<'_>> = units.iter().map(Unit::of).collect();
    text(&Json::Table(&view))
}

/// `status NAME --json`: one object, and a newline.
pub(super) fn detail(d: &UnitDetail, log: &[u8]) -> Result<Vec<u8>, String> {
    let log = String::from_utf8_lossy(log);
    let one = Unit {
        last_exit: Some(match d.last_exit {
            LastExit::None => None,
            LastExit::Code(code) => Some(Exit::Code { code }),
            LastExit::Signal(signal) => Some(Exit::Signal {
                signal,
                name: signal::name(signal),
            }),
            LastExit::OomKill => Some(Exit::Word("oom-kill")),
        }),
        oom_kills: Some(u64::from(d.oom_kills)),
        pressure_avg10_bp: Some(d.pressure_avg10.map(u64::from)),
        pressure_events: Some(u64::from(d.pressure_events)),
        not_enforced: Some(&d.not_enforced),
        reason: Some(&d.reason),
        confinement: Some(&d.confinement),
        log: Some(&log),
        ..Unit::of(&d.status)
    };
    text(&Json::One(&one))
}

/// Largest output tried: a whole log tail escaped at 6 bytes a byte fits
/// many times over.
const TEXT_LIMIT: usize = 4 << 20;

/// `v` as JSON and a newline. The serializer writes into a slice, so the
/// buffer grows until the text fits.
pub(super) fn text<T: Serialize>(v: &T) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; 4096];
    let len = loop {
        match serde_json_core::to_slice(v, &mut buf) {
            Ok(n) => break n,
            Err(serde_json_core::ser::Error::BufferFull) if buf.len() < TEXT_LIMIT => {
                buf.resize(buf.len() * 2, 0);
            }
            Err(e) => return Err(format!("cannot write the JSON text: {e}")),
        }
    };
    Ok(house_escapes(buf.get(..len).unwrap_or_default()))
}

/// The escapes initctl has always written, where serde-json-core differs
/// (both are valid JSON): `\u001f` in lower case, and DEL, the C1
/// controls and U+2028/2029 escaped too, since DEL and C1 (U+009B is CSI)
/// upset terminals and the other two break JavaScript before ES2019. Escape sequences are copied whole, so a
/// backslash in the data is never taken for the start of one; whole UTF-8
/// sequences are replaced, so the text stays UTF-8. Adds the final newline.
fn house_escapes(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 1);
    let mut s = json;
    while let [b, rest @ ..] = s {
        s = rest;
        match (*b, rest) {
            (b'\\', [b'u', hex @ ..]) => {
                let (digits, after) = hex.split_at_checked(4).unwrap_or((hex, &[]));
                out.extend_from_slice(b"\\u");
                out.extend(digits.iter().map(u8::to_ascii_lowercase));
                s = after;
            }
            (b'\\', [e, after @ ..]) => {
                out.extend_from_slice(&[b'\\', *e]);
                s = after;
            }
            (0x7f, _) => out.extend_from_slice(b"\\u007f"),
            // C1 controls (U+0080 to U+009F) in UTF-8: a terminal may take
            // U+009B for CSI.
            (0xc2, [c @ 0x80..=0x9f, after @ ..]) => {
                out.extend_from_slice(format!("\\u{:04x}", u16::from(*c)).as_bytes());
                s = after;
            }
            // U+2028 and U+2029 in UTF-8.
            (0xe2, [0x80, 0xa8, after @ ..]) => {
                out.extend_from_slice(b"\\u2028");
                s = after;
            }
            (0xe2, [0x80, 0xa9, after @ ..]) => {
                out.extend_from_slice(b"\\u2029");
                s = after;
            }
            (b, _) => out.push(b),
        }
    }
    out.push(b'\n');
    out
}
