//! Reading what the kernel writes in cgroup files: the few-line texts
//! of `cgroup.controllers`, `memory.events`, `cgroup.events` and the
//! single values, parsed without allocating.

use super::{Controllers, WANTED};
use crate::unit::Limit;

/// Which of the wanted controllers a `cgroup.controllers` text lists.
pub fn parse_controllers(text: &str) -> Controllers {
    let mut set = Controllers::NONE;
    for word in text.split_ascii_whitespace() {
        for c in WANTED {
            if word == c.name() {
                set.insert(c);
            }
        }
    }
    set
}

/// Counters of `memory.events` (all since the cgroup was created).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    pub low: u64,
    pub high: u64,
    pub max: u64,
    pub oom: u64,
    pub oom_kill: u64,
    pub oom_group_kill: u64,
}

/// Parse `memory.events`. Keys the kernel may add later are ignored; a
/// known key with a value that is not a number makes the whole text bad.
pub fn parse_memory_events(text: &str) -> Option<MemoryEvents> {
    let mut ev = MemoryEvents::default();
    for line in text.lines() {
        let mut it = line.split_ascii_whitespace();
        let (Some(key), Some(val)) = (it.next(), it.next()) else {
            continue;
        };
        let slot = match key {
            "low" => &mut ev.low,
            "high" => &mut ev.high,
            "max" => &mut ev.max,
            "oom" => &mut ev.oom,
            "oom_kill" => &mut ev.oom_kill,
            "oom_group_kill" => &mut ev.oom_group_kill,
            _ => continue,
        };
        *slot = wren_core::num::dec(val)?;
    }
    Some(ev)
}

/// Parse `cgroup.events` for its `populated` line.
pub fn parse_populated(text: &str) -> Option<bool> {
    text.lines()
        .find_map(|line| match line.trim().strip_prefix("populated ") {
            Some("1") => Some(true),
            Some("0") => Some(false),
            _ => None,
        })
}

/// Parse a single number (`memory.current`, `pids.current`).
pub fn parse_u64(text: &str) -> Option<u64> {
    wren_core::num::dec(text.trim())
}

/// Parse a value that may be `max` (`memory.max`, `pids.max`).
pub fn parse_limit(text: &str) -> Option<Limit> {
    match text.trim() {
        "max" => Some(Limit::Max),
        t => wren_core::num::dec(t).map(Limit::Value),
    }
}
