//! Linux capability names and numbers (linux/capability.h), and the set of
//! them a unit keeps (`capabilities`).

use serde::{Deserialize, Serialize};

/// The capabilities by number: `NAMES[n]` is capability `n`, without `CAP_`.
pub const NAMES: [&str; 41] = [
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// Highest capability number wren knows (`CAP_CHECKPOINT_RESTORE`).
pub const LAST: u32 = NAMES.len() as u32 - 1;

pub const SYS_ADMIN: u32 = 21;
pub const NET_ADMIN: u32 = 12;

/// A set of capabilities as the kernel's 64-bit mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caps(pub u64);

impl Caps {
    pub const NONE: Caps = Caps(0);
    /// Every capability wren knows.
    pub const ALL: Caps = Caps((1u64 << (LAST + 1)) - 1);

    pub fn has(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1u64 << cap) != 0
    }

    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// The names in the set, lowest number first.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        NAMES
            .iter()
            .enumerate()
            .filter(move |(n, _)| self.has(*n as u32))
            .map(|(_, name)| *name)
    }
}

/// The number of capability `name`: `CAP_NET_BIND_SERVICE` or
/// `net_bind_service`, in any case.
pub fn number(name: &str) -> Option<u32> {
    let bare = match name.get(..4) {
        Some(p) if p.eq_ignore_ascii_case("cap_") => name.get(4..)?,
        _ => name,
    };
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(bare))
        .map(|i| i as u32)
}
