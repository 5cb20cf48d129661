//! `log -f` followers across `initctl reexec`: their connections are kept
//! open through the exec and given to the new PID 1's server, which goes
//! on feeding each from the stream position it had reached.

use super::{Mode, Server, MAX_CLIENTS};
use crate::vocab::Name;
use rustix::fd::{AsFd, AsRawFd, OwnedFd};
use rustix::io::FdFlags;
use rustix::net::SendFlags;

pub use crate::handover::Follower;

impl Server {
    /// Keeps every follower whose output has all gone out across the exec
    /// (clears close-on-exec) and lists them; one still behind is left to
    /// close with the exec (its `initctl` sees the stream end).
    pub fn keep_followers(&mut self) -> heapless::Vec<Follower, MAX_CLIENTS> {
        let mut out = heapless::Vec::new();
        for c in self.clients.iter_mut() {
            let Mode::Following { name, pos } = &c.mode else {
                continue;
            };
            let (name, pos) = (name.clone(), *pos);
            // One last try without blocking.
            while c.pending() {
                let Some(fd) = c.fd.as_ref() else { break };
                match rustix::net::send(fd, c.unsent(), SendFlags::NOSIGNAL | SendFlags::DONTWAIT) {
                    Ok(n) if n > 0 => c.sent(n),
                    _ => break,
                }
            }
            let Some(fd) = c.fd.as_ref() else { continue };
            if c.pending() {
                continue;
            }
            if rustix::io::fcntl_setfd(fd, FdFlags::empty()).is_ok() {
                let _ = out.push((fd.as_raw_fd(), name, pos));
            }
        }
        out
    }

    /// The exec failed: the followers close on the next one again.
    pub fn unkeep_followers(&self) {
        for c in self.clients.iter() {
            if let (Mode::Following { .. }, Some(fd)) = (&c.mode, c.fd.as_ref()) {
                let _ = rustix::io::fcntl_setfd(fd, FdFlags::CLOEXEC);
            }
        }
    }

    /// A follower handed over by the previous PID 1; false when there is
    /// no free slot, or no memory for its buffer (the fd is then closed).
    pub fn adopt_follower(&mut self, fd: OwnedFd, name: Name, pos: u64) -> bool {
        // Looked at again, as at its accept: a peer that may only look
        // stays one (the cap on such peers holds across the re-exec).
        let observer = super::observer(&crate::sys::sockopt::peer(fd.as_fd()));
        self.adopt_follower_as(fd, name, pos, observer)
    }

    pub(super) fn adopt_follower_as(
        &mut self,
        fd: OwnedFd,
        name: Name,
        pos: u64,
        observer: bool,
    ) -> bool {
        use rustix::event::epoll;
        let _ = rustix::io::fcntl_setfd(&fd, FdFlags::CLOEXEC);
        let _ = rustix::io::ioctl_fionbio(&fd, true);
        let Some(slot) = self.free_slot(observer) else {
            return false;
        };
        let interest = epoll::EventFlags::IN | epoll::EventFlags::RDHUP;
        let token = self.clients.get(slot).map_or(0, |c| c.token(slot));
        let data = epoll::EventData::new_u64(token);
        if epoll::add(&self.epoll, &fd, data, interest).is_err()
            || self.give_buffers(slot).is_none()
        {
            return false;
        }
        self.stamp(slot);
        let Some(c) = self.clients.get_mut(slot) else {
            return false;
        };
        c.fd = Some(fd);
        c.observer = observer;
        c.mode = Mode::Following { name, pos };
        c.deadline = None;
        c.interest = interest;
        c.peer_shut = false;
        true
    }
}
