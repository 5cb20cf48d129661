//! Before the units and after them: kernel options, the early mounts, and
//! the final kill / sync / unmount / reboot sequence.

pub mod cmdline;
pub mod kernel;
pub mod mounts;
pub mod shutdown;
pub mod sysctl;
