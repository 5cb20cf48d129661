//! The control socket, the operator's way in: bound at the loop's set-up
//! and, when it cannot be, tried again at the ticks.

use super::event_loop::TOKEN_CONTROL;
use super::{now, Pid1};
use crate::control::Server as ControlServer;
use crate::vocab::Millis;
use rustix::event::epoll;
use std::path::Path;

/// How often a control socket that could not be bound is tried again.
const CONTROL_RETRY_MS: Millis = 5_000;

impl Pid1 {
    /// At a tick: the control socket bound again if it is not and its
    /// retry is due.
    pub(super) fn retry_control(&mut self, t: Millis, path: &Path) {
        if self.control.is_none() && self.control_retry != 0 && t >= self.control_retry {
            self.bind_control(path);
        }
    }

    /// The operator's way in, bound and in the loop; when it cannot be
    /// (/run out of inodes, PID 1 short of memory or fds at a re-exec),
    /// tried again every `CONTROL_RETRY_MS`, said at the first failure
    /// and at the bind that works: a fault that clears must not leave
    /// the device without `initctl` until its next boot.
    pub(super) fn bind_control(&mut self, path: &Path) {
        use crate::pathname::Show;
        let Some(ep) = self.epoll.as_ref() else {
            return;
        };
        let failing = self.control_retry != 0;
        self.control_retry = now().saturating_add(CONTROL_RETRY_MS);
        let srv = match ControlServer::bind(path, 0) {
            Ok(srv) => srv,
            Err(e) => {
                if !failing {
                    crate::error!(
                        "control socket {}: {e}; tried again every 5 s",
                        path.shown()
                    );
                }
                return;
            }
        };
        let token = epoll::EventData::new_u64(TOKEN_CONTROL);
        if let Err(e) = epoll::add(ep, srv.fd(), token, epoll::EventFlags::IN) {
            if !failing {
                crate::error!("control socket: epoll: {e}; tried again every 5 s");
            }
            return;
        }
        if failing {
            crate::info!("control socket {}: bound", path.shown());
        }
        self.control = Some(srv);
        self.control_retry = 0;
    }
}
