//! `initctl`'s command line: the usage text and the parse into a `Command`.
//! Nothing here touches the world, so a usage error never contacts init.

use crate::vocab::{valid_name, ShutdownKind, NAME_MAX, PATH_BYTES};

pub(super) const USAGE: &str = "\
usage: initctl COMMAND [ARGS]
  status [NAME] [--json]   units, or one unit in detail
  start NAME               start and wait until ready
  stop NAME                stop and wait until stopped
  restart NAME             restart and wait until ready
  reload                   re-read the unit directory
  check [--root DIR] [PATH...]
                           validate unit files (default the unit directory, or
                           DIR/etc/units with programs, users and groups
                           looked up under DIR: an image on a build host)
  cat NAME                 the unit's definition as loaded
  edit NAME                edit the unit's file ($EDITOR), check, apply
  log NAME [-f|--follow]   the unit's output; -f follows
  metrics                  every unit in the Prometheus text format
  top [-d SECS] [-n COUNT] live view, sorted by memory (q quits)
  reexec [PATH]            replace init by PATH (/sbin/init), keeping units
  poweroff | reboot | halt
  help                     this text
";

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Command {
    Help,
    Status {
        name: Option<String>,
        json: bool,
    },
    Start(String),
    Stop(String),
    Restart(String),
    Shutdown(ShutdownKind),
    Check {
        root: Option<String>,
        files: Vec<String>,
    },
    Log {
        name: String,
        follow: bool,
    },
    Cat(String),
    Edit(String),
    Reload,
    /// The path (empty: PID 1's default, /sbin/init).
    Reexec(String),
    Metrics,
    /// Refresh interval in seconds; frames to show (None: until `q` on a
    /// terminal, one elsewhere).
    Top {
        interval: u32,
        count: Option<u32>,
    },
}

/// `Err` is the usage message's first line.
pub(super) fn parse(args: &[String]) -> Result<Command, String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Err("missing command".into());
    };
    let one_name = |rest: &[String]| -> Result<String, String> {
        match rest {
            [n] => checked_name(n),
            [] => Err(format!("{cmd}: missing unit name")),
            _ => Err(format!("{cmd}: too many arguments")),
        }
    };
    let none = |rest: &[String]| -> Result<(), String> {
        if rest.is_empty() {
            Ok(())
        } else {
            Err(format!("{cmd}: takes no arguments"))
        }
    };
    Ok(match cmd.as_str() {
        "help" | "-h" | "--help" => {
            none(rest)?;
            Command::Help
        }
        "status" => {
            let mut name = None;
            let mut json = false;
            for a in rest {
                match a.as_str() {
                    "--json" => json = true,
                    s if s.starts_with('-') => return Err(format!("status: unknown option {s}")),
                    s if name.is_none() => name = Some(checked_name(s)?),
                    _ => return Err("status: too many arguments".into()),
                }
            }
            Command::Status { name, json }
        }
        "start" => Command::Start(one_name(rest)?),
        "stop" => Command::Stop(one_name(rest)?),
        "restart" => Command::Restart(one_name(rest)?),
        "poweroff" => none(rest).map(|_| Command::Shutdown(ShutdownKind::Poweroff))?,
        "reboot" => none(rest).map(|_| Command::Shutdown(ShutdownKind::Reboot))?,
        "halt" => none(rest).map(|_| Command::Shutdown(ShutdownKind::Halt))?,
        "reload" => none(rest).map(|_| Command::Reload)?,
        "check" => {
            let mut root = None;
            let mut files = Vec::new();
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    // The end of options: a file may be named `-x.unit`.
                    "--" => {
                        files.extend(it.by_ref().cloned());
                        break;
                    }
                    // `--root DIR` or `--root=DIR`, once, and not empty
                    // (which would check `etc/units` under the cwd).
                    s if s == "--root" || s.starts_with("--root=") => {
                        let d = match s.strip_prefix("--root=") {
                            Some(d) => Some(d),
                            None => it.next().map(String::as_str),
                        };
                        match d {
                            _ if root.is_some() => return Err("check: --root given twice".into()),
                            Some(d) if !d.is_empty() => root = Some(d.to_string()),
                            _ => return Err("check: --root needs a directory".into()),
                        }
                    }
                    s if s.starts_with('-') && s.len() > 1 => {
                        return Err(format!("check: unknown option {s}"))
                    }
                    s => files.push(s.to_string()),
                }
            }
            Command::Check { root, files }
        }
        "reexec" => match rest {
            [] => Command::Reexec(String::new()),
            [p] if p.len() > PATH_BYTES => {
                return Err(format!("reexec: PATH longer than {PATH_BYTES} bytes"))
            }
            [p] if p.starts_with('/') => Command::Reexec(p.clone()),
            [p] => return Err(format!("reexec: {p}: an absolute path is needed")),
            _ => return Err("reexec: too many arguments".into()),
        },
        "metrics" => none(rest).map(|_| Command::Metrics)?,
        "top" => {
            let mut interval = 2;
            let mut count = None;
            let mut it = rest.iter();
            while let Some(a) = it.next() {
                let mut number = |what: &str| -> Result<u32, String> {
                    it.next()
                        .and_then(|v| wren_core::num::dec(v))
                        .filter(|v| *v > 0)
                        .ok_or_else(|| format!("top: {what} needs a positive number"))
                };
                match a.as_str() {
                    "-d" => interval = number("-d")?,
                    "-n" => count = Some(number("-n")?),
                    s => return Err(format!("top: unknown argument {s}")),
                }
            }
            Command::Top { interval, count }
        }
        "cat" => Command::Cat(one_name(rest)?),
        "edit" => Command::Edit(one_name(rest).and_then(new_name)?),
        "log" => {
            let mut name = None;
            let mut follow = false;
            for a in rest {
                match a.as_str() {
                    "-f" | "--follow" => follow = true,
                    s if s.starts_with('-') => return Err(format!("log: unknown option {s}")),
                    s if name.is_none() => name = Some(checked_name(s)?),
                    _ => return Err("log: too many arguments".into()),
                }
            }
            let name = name.ok_or("log: missing unit name")?;
            Command::Log { name, follow }
        }
        other => return Err(format!("unknown command '{other}'")),
    })
}

/// A name `edit` may make a unit file of: not one the loader refuses
/// for the kernel's cgroup files (`memory.x`: `units/memory.x` could not
/// be its cgroup), which no edit could ever install.
fn new_name(name: String) -> Result<String, String> {
    match crate::vocab::reserved_name(&name) {
        Some(why) => Err(why.to_string()),
        None => Ok(name),
    }
}

/// A unit name from the command line, checked before init is asked.
fn checked_name(s: &str) -> Result<String, String> {
    if valid_name(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "invalid unit name '{s}' (1-{NAME_MAX} of a-z 0-9 . _ -, first a letter or digit)"
        ))
    }
}
