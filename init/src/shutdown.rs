//! The end of the world: kill what is left, sync, unmount, reboot(2).

use serde::{Deserialize, Serialize};

/// What the machine does once everything is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Reboot,
    Halt,
    Poweroff,
}
