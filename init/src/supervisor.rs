//! The supervisor: a pure state machine over the unit table.
//! (Being written by the lead; the public `State` is fixed here so the
//! control protocol can carry it.)

use serde::{Deserialize, Serialize};

/// A unit's state as `initctl status` shows it (CONTRACT section 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Starting,
    Running,
    Stopping,
    Stopped,
    Exited,
    Backoff,
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Stopped => "stopped",
            State::Exited => "exited",
            State::Backoff => "backoff",
            State::Failed => "failed",
        }
    }
}
