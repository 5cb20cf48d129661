//! wren: a PID 1 supervisor for tiny Linux images.
//!
//! Where things happen, by file:
//! - `unit`: unit file syntax and the typed `UnitDef` (pure).
//! - `units_dir`: reading a unit directory and checking it as a whole
//!   (dependencies, programs that exist).
//! - `supervisor`: the state machine, `step(event) -> actions` (pure).
//! - `pid1`: the event loop that feeds it: signalfd, timerfd, epoll.
//! - `spawn`: clone3 into the unit's cgroup and namespaces, fds, execve.
//! - `sandbox`: inside the new namespaces: mounts, root, hostname, lo.
//! - `reaper`: PID 1 of a unit's PID namespace.
//! - `cgroup`: the typed writer of cgroup files.
//! - `mounts`: early mounts and the shutdown unmount.
//! - `kmsg`: the `log` backend writing `/dev/kmsg`.
//! - `cmdline`: `wren.*` kernel options.
//! - `shutdown`: the final kill / sync / unmount / reboot sequence.
//! - `proto`, `control`, `ctl`: the `initctl` protocol, its server in PID 1
//!   and its client.

pub mod alloc;
pub mod cgroup;
pub mod cmdline;
pub mod control;
pub mod ctl;
pub mod kmsg;
pub mod logbuf;
pub mod mounts;
pub mod pid1;
pub mod proto;
pub mod reaper;
pub mod sandbox;
pub mod shutdown;
pub mod spawn;
pub mod supervisor;
pub mod unit;
pub mod units_dir;
