//! `UnitDef` back to unit-file text (`initctl cat`).

use super::*;

/// Write `def` back as unit-file text (`initctl cat`): every key whose
/// value is not the default, in the order of `KEYS`. Parsing the result
/// gives `def` again.
pub fn render(def: &UnitDef, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
    let d = UnitDef::defaults_but_workdir(&def.name);
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
    if let Some(l) = def.seldom.start_limit {
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
    for (key, id) in [("user", &def.seldom.user), ("group", &def.seldom.group)] {
        match id {
            None => {}
            Some(IdSpec::Id(n)) => writeln!(out, "{key} = {n}")?,
            Some(IdSpec::Name(n)) => writeln!(out, "{key} = {n}")?,
        }
    }
    if def.workdir.as_str() != WORKDIR_DEFAULT {
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
        writeln!(out, "namespaces = {}", def.namespaces)?;
    }
    if def.log_size != d.log_size {
        writeln!(
            out,
            "log_size = {}",
            Size(Limit::Value(u64::from(def.log_size)))
        )?;
    }
    if let Some(h) = &def.seldom.hostname {
        writeln!(out, "hostname = {h}")?;
    }
    if let Some(r) = &def.seldom.root {
        writeln!(out, "root = {r}")?;
    }
    let l = def.limits.get();
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
    if let Some(p) = def.seldom.pressure_limit {
        writeln!(
            out,
            "pressure_limit = {}%/{}",
            p.percent,
            Dur(p.window.into())
        )?;
    }
    if def.pressure_action != d.pressure_action {
        writeln!(out, "pressure_action = {}", def.pressure_action.as_str())?;
    }
    if let Some(n) = def.shed_order {
        writeln!(out, "shed_order = {n}")?;
    }
    if def.critical {
        writeln!(out, "critical = yes")?;
    }
    if def.start_timeout != d.start_timeout {
        writeln!(out, "start_timeout = {}", Dur(def.start_timeout))?;
    }
    if let Some(w) = def.seldom.watchdog {
        writeln!(out, "watchdog = {}", Dur(w))?;
    }
    render_confinement(def, out)
}

/// The keys of docs/units.md, "Confinement".
fn render_confinement(def: &UnitDef, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
    match def.seldom.capabilities {
        None => {}
        Some(Caps::ALL) => writeln!(out, "capabilities = all")?,
        Some(c) if c.count() == 0 => writeln!(out, "capabilities = none")?,
        Some(c) => {
            out.write_str("capabilities =")?;
            for n in c.names() {
                write!(out, " {n}")?;
            }
            out.write_char('\n')?;
        }
    }
    if def.no_new_privs {
        writeln!(out, "no_new_privs = yes")?;
    }
    if let Some(sc) = &def.seccomp {
        out.write_str("seccomp =")?;
        if sc.deny {
            out.write_str(" ~")?;
        }
        for g in sc.group_names() {
            write!(out, " @{g}")?;
        }
        for n in sc.names.names() {
            write!(out, " {n}")?;
        }
        out.write_char('\n')?;
    }
    if def.read_only {
        writeln!(out, "read_only = yes")?;
    }
    if def.root_overlay {
        writeln!(out, "root_overlay = yes")?;
    }
    if let Some(m) = def.seldom.user_map {
        writeln!(out, "user_map = {} {}", m.outside, m.count)?;
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
    crate::vocab::signal::name(n)
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
