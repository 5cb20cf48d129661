//! `wren.*` options on the kernel command line (the text of /proc/cmdline),
//! docs/boot.md, "Kernel command line". Pure: the caller reads the file.
//!
//! A bad option is a warning naming it, never an error: a typo on the
//! command line must not keep the device from booting.

use heapless::String;

use crate::vocab::DEFAULT_UNITS_DIR;

/// Longest `wren.units=` value.
pub const UNITS_DIR_MAX: usize = 128;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// `wren.rescue` (also `single`, `emergency` as other inits accept):
    /// start only the emergency shell.
    pub rescue: bool,
    /// `wren.units=DIR`; None means `DEFAULT_UNITS_DIR`.
    pub units_dir: Option<String<UNITS_DIR_MAX>>,
    /// `wren.debug`: log at debug level.
    pub debug: bool,
    /// `wren.stamp`: give every unit `WREN_SPAWN_NS`, the CLOCK_MONOTONIC
    /// time at which PID 1 decided to start it, for spawn-latency
    /// benchmarks (the service subtracts it from its own first reading).
    pub stamp: bool,
    /// `quiet` (the kernel's own option) or `wren.quiet`: no status lines
    /// on the console.
    pub quiet: bool,
    /// `wren.shed=PERCENT/DURATION`: the system's memory stall
    /// (`/proc/pressure/memory`, `some`) above which units with a
    /// `shed_order` are stopped, lowest first.
    pub shed: Option<crate::unit::PressureLimit>,
    /// `wren.watchdog[=DEVICE[,SECONDS]]`: feed a hardware watchdog.
    pub watchdog: Option<WatchdogOption>,
}

/// The hardware watchdog to feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchdogOption {
    pub device: String<UNITS_DIR_MAX>,
    pub timeout_s: u32,
}

/// `wren.watchdog` without a value.
pub const WATCHDOG_DEVICE: &str = "/dev/watchdog";
pub const WATCHDOG_TIMEOUT_S: u32 = 15;

/// `DEVICE[,SECONDS]`, an on word (the defaults) or an off word (None).
/// A part that is not right (a DEVICE not absolute or too long, SECONDS
/// out of 1..=3600) takes its default, and the second value says so: a
/// board asked to be watched is not left unwatched by a typo that nobody
/// on site reads.
fn watchdog_value(v: Option<&str>) -> (Option<WatchdogOption>, Option<&'static str>) {
    let v = match flag(v) {
        Some(false) => return (None, None),
        Some(true) => "",
        None => v.unwrap_or(""),
    };
    let (dev, secs) = match v.split_once(',') {
        Some((d, s)) => (d, Some(s)),
        None => (v, None),
    };
    let (dev, bad_dev) = match dev {
        "" => (WATCHDOG_DEVICE, false),
        d if d.starts_with('/') && d.len() <= UNITS_DIR_MAX => (d, false),
        _ => (WATCHDOG_DEVICE, true),
    };
    let (timeout_s, bad_secs) = match secs.map(wren_core::num::dec::<u32>) {
        None => (WATCHDOG_TIMEOUT_S, false),
        Some(Some(n)) if (1..=3600).contains(&n) => (n, false),
        Some(_) => (WATCHDOG_TIMEOUT_S, true),
    };
    let why = match (bad_dev, bad_secs) {
        (false, false) => None,
        (true, false) => {
            Some("DEVICE must be an absolute path (of at most 128 bytes): /dev/watchdog armed")
        }
        (false, true) => Some("SECONDS must be from 1 to 3600: armed with 15"),
        (true, true) => Some(
            "DEVICE must be an absolute path and SECONDS from 1 to 3600: /dev/watchdog armed with 15",
        ),
    };
    let device = String::try_from(dev).unwrap_or_default();
    (Some(WatchdogOption { device, timeout_s }), why)
}

impl Options {
    /// The unit directory to read.
    pub fn units_dir(&self) -> &str {
        self.units_dir.as_deref().unwrap_or(DEFAULT_UNITS_DIR)
    }
}

/// Split the command line as the kernel's `next_arg` does: blanks separate
/// parameters except inside double quotes; a leading quote of the
/// parameter or of its value is removed with the matching trailing one.
/// Yields `(key, value)`, value None when there is no `=`.
pub fn params(text: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let mut rest = text;
    core::iter::from_fn(move || {
        rest = rest.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\0');
        if rest.is_empty() {
            return None;
        }
        let mut in_quote = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            if c == '"' {
                in_quote = !in_quote;
            } else if !in_quote && (c.is_ascii_whitespace() || c == '\0') {
                end = i;
                break;
            }
        }
        let (tok, tail) = rest.split_at_checked(end).unwrap_or((rest, ""));
        rest = tail;
        Some(split_param(tok))
    })
}

fn split_param(tok: &str) -> (&str, Option<&str>) {
    // `"a b"` as a whole parameter: the quotes go.
    let tok = match tok.strip_prefix('"') {
        Some(t) => t.strip_suffix('"').unwrap_or(t),
        None => tok,
    };
    match tok.split_once('=') {
        None => (tok, None),
        Some((k, v)) => {
            let v = match v.strip_prefix('"') {
                Some(v) => v.strip_suffix('"').unwrap_or(v),
                None => v,
            };
            (k, Some(v))
        }
    }
}

/// A boolean option: present alone means yes; `=1/yes/true/on` and
/// `=0/no/false/off` as usual.
fn flag(value: Option<&str>) -> Option<bool> {
    match value {
        None => Some(true),
        Some("1" | "yes" | "y" | "true" | "on") => Some(true),
        Some("0" | "no" | "n" | "false" | "off") => Some(false),
        Some(_) => None,
    }
}

/// The kernel command line as PID 1 reads it, and `initctl` too, so that
/// both take the same `wren.units` from it: at most `buf`'s 4 KiB, a
/// byte that is not UTF-8 (a boot loader's environment) read as `?`,
/// not taken for an empty line.
pub fn read_text(buf: &mut [u8; 4096]) -> Result<&str, rustix::io::Errno> {
    crate::sys::file::read_lossy_at(rustix::fs::CWD, "/proc/cmdline", buf)
}

/// Parse the kernel command line. `warn(token, why)` is called for each
/// `wren.*` option that is unknown or has a bad value; the option is then
/// ignored (a later good one still counts: the last one wins).
pub fn parse(text: &str, warn: &mut dyn FnMut(&str, &'static str)) -> Options {
    let mut o = Options::default();
    for (key, value) in params(text) {
        let set = match key {
            "wren.rescue" => &mut o.rescue,
            "wren.debug" => &mut o.debug,
            "wren.stamp" => &mut o.stamp,
            "wren.quiet" => &mut o.quiet,
            "single" | "emergency" if value.is_none() => {
                o.rescue = true;
                continue;
            }
            "quiet" if value.is_none() => {
                o.quiet = true;
                continue;
            }
            "wren.units" => {
                match value {
                    None => warn(
                        key,
                        "needs a value: wren.units=DIR; units read from /etc/units",
                    ),
                    Some("") => warn(key, "empty directory; units read from /etc/units"),
                    Some(v) if !v.starts_with('/') => warn(
                        key,
                        "directory must be an absolute path; units read from /etc/units",
                    ),
                    Some(v) => match String::try_from(v) {
                        Ok(s) => o.units_dir = Some(s),
                        Err(_) => warn(
                            key,
                            "directory path too long (over 128 bytes); units read from /etc/units",
                        ),
                    },
                }
                continue;
            }
            "wren.watchdog" => {
                let (w, why) = watchdog_value(value);
                o.watchdog = w;
                if let Some(why) = why {
                    warn(key, why);
                }
                continue;
            }
            "wren.shed" => {
                match value.and_then(crate::unit::parse_pressure_limit) {
                    Some(l) => o.shed = Some(l),
                    None => warn(
                        key,
                        "expected wren.shed=PERCENT/DURATION, 1-100% over 500ms to 10s",
                    ),
                }
                continue;
            }
            k if k.starts_with("wren.") => {
                warn(
                    key,
                    "unknown option (known: wren.rescue, wren.units=DIR, wren.debug, wren.quiet, wren.stamp, wren.shed=P%/T, wren.watchdog[=DEV[,S]])",
                );
                continue;
            }
            _ => continue,
        };
        match flag(value) {
            Some(b) => *set = b,
            None => warn(key, "bad value (use 0/1, yes/no, true/false, on/off)"),
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (Options, Vec<(std::string::String, &'static str)>) {
        let mut w = Vec::new();
        let o = parse(text, &mut |t, why| w.push((t.to_string(), why)));
        (o, w)
    }

    #[test]
    fn defaults_from_a_plain_cmdline() {
        let (o, w) = run("console=ttyAMA0,115200 root=/dev/vda rw init=/sbin/init\n");
        assert_eq!(o, Options::default());
        assert_eq!(o.units_dir(), "/etc/units");
        assert!(w.is_empty());
        let (o, w) = run("");
        assert_eq!(o, Options::default());
        assert!(w.is_empty());
    }

    #[test]
    fn wren_options() {
        let (o, w) = run("root=/dev/vda wren.rescue wren.debug wren.units=/opt/units quiet\n");
        assert!(o.rescue && o.debug && o.quiet);
        assert_eq!(o.units_dir(), "/opt/units");
        assert!(w.is_empty());
    }

    #[test]
    fn watchdog_option() {
        let w = run("wren.watchdog").0.watchdog.unwrap();
        assert_eq!((w.device.as_str(), w.timeout_s), ("/dev/watchdog", 15));
        let w = run("wren.watchdog=/dev/watchdog1,5").0.watchdog.unwrap();
        assert_eq!((w.device.as_str(), w.timeout_s), ("/dev/watchdog1", 5));
        let w = run("wren.watchdog=,30").0.watchdog.unwrap();
        assert_eq!((w.device.as_str(), w.timeout_s), ("/dev/watchdog", 30));
        assert_eq!(run("wren.watchdog=off").0.watchdog, None);
        assert_eq!(run("wren.watchdog=0").0.watchdog, None);
        assert_eq!(run("").0.watchdog, None);
        // Asked for, it is armed: on words take the defaults, and so does
        // a part that is not right, said once.
        for (on, dev, secs, warned) in [
            ("wren.watchdog=on", "/dev/watchdog", 15, 0),
            ("wren.watchdog=1", "/dev/watchdog", 15, 0),
            ("wren.watchdog=yes", "/dev/watchdog", 15, 0),
            ("wren.watchdog=dev", "/dev/watchdog", 15, 1),
            ("wren.watchdog=dev,5", "/dev/watchdog", 5, 1),
            ("wren.watchdog=/dev/w,0", "/dev/w", 15, 1),
            ("wren.watchdog=/dev/w,x", "/dev/w", 15, 1),
            ("wren.watchdog=dev,0", "/dev/watchdog", 15, 1),
        ] {
            let (o, w) = run(on);
            let o = o.watchdog.unwrap_or_else(|| panic!("{on}: not armed"));
            assert_eq!((o.device.as_str(), o.timeout_s), (dev, secs), "{on}");
            assert_eq!(w.len(), warned, "{on}: {w:?}");
        }
        let (_, w) = run("wren.watchdog=dev,0");
        assert!(
            w[0].1.contains("DEVICE") && w[0].1.contains("SECONDS"),
            "{w:?}"
        );
        let (o, w) = run(&format!("wren.watchdog=/{}", "d".repeat(200)));
        assert_eq!(o.watchdog.unwrap().device.as_str(), "/dev/watchdog");
        assert!(w[0].1.starts_with("DEVICE"), "{w:?}");
    }

    #[test]
    fn shed_threshold() {
        let (o, w) = run("wren.shed=10%/2s");
        let l = o.shed.unwrap();
        assert_eq!((l.percent, l.window), (10, 2000));
        assert!(w.is_empty());
        for bad in [
            "wren.shed",
            "wren.shed=10",
            "wren.shed=0%/1s",
            "wren.shed=10%/20s",
        ] {
            let (o, w) = run(bad);
            assert_eq!(o.shed, None, "{bad}");
            assert_eq!(w.len(), 1, "{bad}");
            assert!(w[0].1.contains("PERCENT/DURATION"), "{bad}: {w:?}");
        }
    }

    #[test]
    fn flag_values() {
        assert!(run("wren.stamp").0.stamp);
        assert!(!run("").0.stamp);
        let (o, w) = run("wren.debug=1 wren.rescue=no");
        assert!(o.debug && !o.rescue);
        assert!(w.is_empty());
        let (o, w) = run("wren.debug=on wren.debug=off");
        assert!(!o.debug, "last one wins");
        assert!(w.is_empty());
        let (o, w) = run("wren.debug=maybe");
        assert!(!o.debug);
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].0, "wren.debug");
        assert!(w[0].1.starts_with("bad value"));
    }

    #[test]
    fn other_inits_rescue_words() {
        assert!(run("single").0.rescue);
        assert!(run("ro emergency").0.rescue);
        // As a key=value it is someone else's option.
        assert!(!run("single=1").0.rescue);
        assert!(!run("singleuser").0.rescue);
    }

    #[test]
    fn unknown_wren_option_warns_and_names_it() {
        let (o, w) = run("wren.rescu wren.unit=/x wren.debug");
        assert!(o.debug && !o.rescue);
        assert_eq!(o.units_dir, None);
        let names: Vec<&str> = w.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(names, ["wren.rescu", "wren.unit"]);
        assert!(w[0].1.starts_with("unknown option"));
        // Not ours: silent.
        assert!(run("wrenx.foo=1 xwren.debug").1.is_empty());
    }

    #[test]
    fn bad_units_dir_values_warn_and_keep_the_default() {
        for (text, why) in [
            ("wren.units", "needs a value"),
            ("wren.units=", "empty"),
            ("wren.units=etc/units", "absolute"),
            ("wren.units=\"\"", "empty"),
        ] {
            let (o, w) = run(text);
            assert_eq!(o.units_dir(), DEFAULT_UNITS_DIR, "{text}");
            assert_eq!(w.len(), 1, "{text}");
            assert_eq!(w[0].0, "wren.units");
            assert!(w[0].1.contains(why), "{text}: {}", w[0].1);
            // What is read instead, as the watchdog's warnings say.
            assert!(
                w[0].1.ends_with("; units read from /etc/units"),
                "{}",
                w[0].1
            );
        }
        let long = format!("wren.units=/{}", "a".repeat(128));
        let (o, w) = run(&long);
        assert_eq!(o.units_dir(), DEFAULT_UNITS_DIR);
        assert!(w[0].1.contains("too long"));
        // Exactly 128 bytes fits.
        let fits = format!("/{}", "a".repeat(127));
        let (o, w) = run(&format!("wren.units={fits}"));
        assert_eq!(o.units_dir(), fits);
        assert!(w.is_empty());
        // A bad value after a good one keeps the good one.
        let (o, _) = run("wren.units=/a wren.units=b");
        assert_eq!(o.units_dir(), "/a");
    }

    #[test]
    fn kernel_quoting() {
        let p: Vec<_> = params(r#"a "b c" d="e f" "g=h i" j="k" l=m"n o"p q"#).collect();
        assert_eq!(
            p,
            [
                ("a", None),
                ("b c", None),
                ("d", Some("e f")),
                ("g", Some("h i")),
                ("j", Some("k")),
                // A quote in the middle only groups, as in the kernel.
                ("l", Some(r#"m"n o"p"#)),
                ("q", None),
            ]
        );
        let (o, w) = run(r#"wren.units="/my units" wren.debug"#);
        assert_eq!(o.units_dir(), "/my units");
        assert!(o.debug && w.is_empty());
    }

    #[test]
    fn odd_whitespace_and_unterminated_quotes() {
        let p: Vec<_> = params("  a\tb\n\n c=\"unterminated rest").collect();
        assert_eq!(
            p,
            [("a", None), ("b", None), ("c", Some("unterminated rest"))]
        );
        let p: Vec<_> = params("x=1=2 -- wren.debug").collect();
        assert_eq!(p, [("x", Some("1=2")), ("--", None), ("wren.debug", None)]);
        // Options after `--` are init's own arguments: still ours.
        assert!(run("ro -- wren.debug").0.debug);
        // Multi-byte text does not upset the splitter.
        let p: Vec<_> = params("ä=\"ö ü\" ß").collect();
        assert_eq!(p, [("ä", Some("ö ü")), ("ß", None)]);
    }
}
