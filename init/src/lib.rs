//! wren: a PID 1 supervisor for tiny Linux images.
//!
//! The decisions live in `wren-core` (unit model, supervisor, protocol,
//! output ring: pure, no syscalls). This crate runs them against the
//! kernel. Where things happen, by folder (docs/architecture.md has the
//! whole map):
//! - `pid1/`: PID 1 itself: boot steps, the event loop, its event sources,
//!   the executor of the supervisor's actions, reload, status queries.
//! - `boot/`: kernel options, early mounts, the final shutdown sequence.
//! - `config/`: reading and checking a unit directory.
//! - `spawn/`: clone3 into a unit's cgroup and namespaces, the sandbox set
//!   up inside them, the reaper of a unit's PID namespace.
//! - `cgroup/`: the typed writer of cgroup files.
//! - `control/`: the `initctl` server inside PID 1.
//! - `ctl/`: `initctl`, the client.
//! - `kmsg`: the `log` backend (`/dev/kmsg`) and the console status lines.
//! - `watchdog`: the hardware watchdog device (`wren.watchdog`).
//! - `entry`: what the process is (reaper, PID 1 or client).
//! - `sys/`: every `unsafe` block of the project.

pub use wren_core::{handover, log_ring, proto, supervisor, unit, vocab};

pub mod boot;
pub mod cgroup;
pub mod config;
pub mod control;
pub mod ctl;
pub mod entry;
pub mod kmsg;
pub mod pathname;
pub mod pid1;
pub mod spawn;
pub mod sys;
#[cfg(test)]
mod testutil;
pub mod watchdog;
