//! The loop's side of the exchange: answers to the commands `poll` handed
//! out, the clients waiting on a unit, and feeding `log -f` followers.

use super::{ClientId, Mode, Server, Waiter, Want, MAX_CLIENTS, MAX_WAITING};
use crate::log_ring::LogRing;
use crate::proto::ErrCode;
use crate::proto::{CtlError, Reply, UnitDetail, TAIL_LINES};
use crate::vocab::Name;

impl Server {
    /// The clients that wait on their unit: after every supervisor step
    /// the loop answers the settled ones and feeds the followers.
    pub fn waiters(&self) -> heapless::Vec<(ClientId, Waiter), MAX_CLIENTS> {
        let mut out = heapless::Vec::new();
        for (slot, c) in self.clients.iter().enumerate() {
            let w = match &c.mode {
                Mode::Waiting { name, want } => Waiter::Settle {
                    name: name.clone(),
                    want: *want,
                },
                Mode::Following { name, .. } => Waiter::Follow { name: name.clone() },
                _ => continue,
            };
            let _ = out.push((ClientId(c.token(slot)), w));
        }
        out
    }

    /// The slot of a connection still open.
    fn live(&self, id: ClientId) -> Option<usize> {
        let slot = id.slot();
        let c = self.clients.get(slot)?;
        (c.fd.is_some() && c.token(slot) == id.0).then_some(slot)
    }

    /// The last reply to `id`: sent, then the connection closed.
    pub fn answer(&mut self, id: ClientId, reply: &Reply<'_>, now_ms: u64) {
        let Some(slot) = self.live(id) else { return };
        if let Some(c) = self.clients.get_mut(slot) {
            c.enqueue(reply);
        }
        self.finish(slot, now_ms);
    }

    /// `status NAME`: the detail with the last lines of `log`.
    pub fn answer_detail(
        &mut self,
        id: ClientId,
        detail: Result<UnitDetail, CtlError>,
        log: Option<&LogRing>,
        now_ms: u64,
    ) {
        let Some(slot) = self.live(id) else { return };
        let Some(c) = self.clients.get_mut(slot) else {
            return;
        };
        match detail {
            Err(e) => {
                c.enqueue(&Reply::Error(e));
            }
            Ok(detail) => {
                // The output's end, in the room the detail leaves in a
                // frame (a long last line would not leave the detail any).
                let scratch = &mut self.scratch[..];
                let room = scratch.len().min(crate::proto::DETAIL_TAIL_MAX);
                let tail = scratch.get_mut(..room).unwrap_or(&mut []);
                let n = log.map_or(0, |ring| ring.tail_lines(TAIL_LINES).copy_tail(tail));
                c.enqueue(&Reply::Detail {
                    detail,
                    log: scratch.get(..n).unwrap_or(&[]),
                });
            }
        }
        self.finish(slot, now_ms);
    }

    /// `log NAME`: the ring's contents, then the close or, with `follow`,
    /// whatever the unit writes next (see `feed`).
    pub fn answer_log(
        &mut self,
        id: ClientId,
        name: Name,
        follow: bool,
        ring: Result<&LogRing, CtlError>,
        now_ms: u64,
    ) {
        let Some(slot) = self.live(id) else { return };
        let Some(c) = self.clients.get_mut(slot) else {
            return;
        };
        match ring {
            Err(e) => {
                c.enqueue(&Reply::Error(e));
            }
            Ok(ring) => {
                let pos = c.queue_log(&mut self.scratch[..], ring, ring.start_pos());
                if follow {
                    c.mode = Mode::Following { name, pos };
                    c.deadline = None;
                    self.began_waiting(slot, now_ms);
                    self.flush(slot, now_ms);
                    return;
                }
            }
        }
        self.finish(slot, now_ms);
    }

    /// Start, stop or restart begun and not settled yet: the reply waits
    /// (see `waiters`).
    pub fn wait_for(&mut self, id: ClientId, name: Name, want: Want) {
        let Some(slot) = self.live(id) else { return };
        let Some(c) = self.clients.get_mut(slot) else {
            return;
        };
        // The client has its own timeout; it hanging up frees the slot, so
        // no deadline here.
        c.mode = Mode::Waiting { name, want };
        c.deadline = None;
        // The request came from `poll` just now.
        self.began_waiting(slot, self.polled_at);
        self.sync_interest(slot);
    }

    /// `slot` now waits: stamped, and if waiting clients and lookers
    /// (`Client::unreserved`) hold more than `MAX_WAITING` slots, the
    /// oldest other one is let go (a looker's before the operator's, a
    /// follower before a waiter, whose action goes on without it), so the
    /// `RESERVED_SLOTS` stay free for the operator. A looker's new client
    /// may be let go itself: it never pushes out the operator's.
    fn began_waiting(&mut self, slot: usize, now_ms: u64) {
        self.stamp(slot);
        if self.clients.iter().filter(|c| c.unreserved()).count() <= MAX_WAITING {
            return;
        }
        let oldest = self
            .clients
            .iter()
            .enumerate()
            .filter(|(i, c)| c.unreserved() && (*i != slot || c.observer))
            .min_by_key(|(_, c)| {
                // A looker's first, then a follower, each the oldest
                // first (the count of waits never reaches 2^62).
                let follower = matches!(c.mode, Mode::Following { .. });
                u64::from(!c.observer) << 63 | u64::from(!follower) << 62 | c.waiting_since
            })
            .map(|(i, _)| i);
        let Some(old) = oldest else { return };
        let Some(c) = self.clients.get_mut(old) else {
            return;
        };
        crate::info!("control: too many waiting clients, client {old} let go");
        c.mode = Mode::Answering;
        let told = c.enqueue(&Reply::Error(CtlError::new(
            ErrCode::Busy,
            "too many clients waiting: this oldest one was let go",
        )));
        if told {
            self.finish(old, now_ms);
        } else {
            self.close(old);
        }
    }

    /// `slot`'s client is the newest: at its connection (a looker that
    /// never waits is let go by its age too) and when it begins to wait.
    pub(super) fn stamp(&mut self, slot: usize) {
        self.waiting_seq = self.waiting_seq.wrapping_add(1);
        if let Some(c) = self.clients.get_mut(slot) {
            c.waiting_since = self.waiting_seq;
        }
    }

    /// Sends a follower what its unit wrote since it was last fed; an
    /// error (the unit went away) is sent and ends the follow.
    pub fn feed(&mut self, id: ClientId, ring: Result<&LogRing, CtlError>, now_ms: u64) {
        let Some(slot) = self.live(id) else { return };
        let Some(c) = self.clients.get_mut(slot) else {
            return;
        };
        let Mode::Following { name, pos } = &c.mode else {
            return;
        };
        let (name, pos) = (name.clone(), *pos);
        let ring = match ring {
            Ok(r) => r,
            Err(e) => {
                c.enqueue(&Reply::Error(e));
                self.finish(slot, now_ms);
                return;
            }
        };
        // A ring that went backwards was replaced: start over.
        let mut pos = if pos > ring.write_pos() {
            ring.start_pos()
        } else {
            pos
        };
        // Chunk after chunk while the socket takes them: a follower of a
        // quiet unit would otherwise get one chunk a wake-up, and nothing
        // wakes PID 1 for the rest. Bounded by the ring (1 MiB at most).
        loop {
            let Some(c) = self.clients.get_mut(slot) else {
                return;
            };
            let new = c.queue_log(&mut self.scratch[..], ring, pos);
            c.mode = Mode::Following {
                name: name.clone(),
                pos: new,
            };
            if !c.pending() {
                return;
            }
            self.flush(slot, now_ms);
            let caught_up = new == pos;
            let Some(c) = self.clients.get(slot) else {
                return;
            };
            // Still sending (the socket is full: its write interest brings
            // the rest), closed, or at the ring's end.
            if c.fd.is_none() || c.pending() || caught_up {
                return;
            }
            pos = new;
        }
    }
}
