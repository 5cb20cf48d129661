//! One connection to PID 1's control socket: a request out, its replies
//! in, every wait bounded by a deadline (`log -f`'s excepted), and what
//! went wrong with the connection itself (`ClientError`).

use super::client::REPLY_TIMEOUT;
use crate::pathname::Show as _;
use crate::proto::{
    decode_reply, encode_request, FrameDecoder, ProtoError, Reply, Request, FRAME_BUF,
};
use crate::sys::clock::Instant;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

#[derive(Debug)]
pub(super) enum ClientError {
    Io(io::Error),
    Timeout,
    Proto(ProtoError),
    /// The server closed mid-frame.
    Truncated,
    /// Standard output's reader went away while `log -f` waited.
    OutputGone,
    /// The server closed without replying.
    Closed,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "control socket: {e}"),
            ClientError::Timeout => f.write_str("timed out waiting for init"),
            ClientError::Proto(e) => write!(f, "bad reply: {e}"),
            ClientError::Truncated => f.write_str("init closed the connection mid-reply"),
            ClientError::Closed => f.write_str("init closed the connection without replying"),
            ClientError::OutputGone => f.write_str("standard output closed"),
        }
    }
}

pub(super) struct Conn {
    stream: UnixStream,
    dec: Box<FrameDecoder<FRAME_BUF>>,
    /// The first frame held is a reply handed out (`next`).
    decoded: bool,
}

impl Conn {
    pub(super) fn open(path: &Path) -> Result<Conn, String> {
        Conn::open_within(path, REPLY_TIMEOUT)
    }

    /// Connects, waiting at most `within` for room in PID 1's queue of
    /// connections: a blocking connect to a full queue (PID 1 stalled, or
    /// pausing its listener for lack of fds) would wait for ever.
    pub(super) fn open_within(path: &Path, within: Duration) -> Result<Conn, String> {
        use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
        let cannot = |e: &dyn std::fmt::Display| {
            format!(
                "cannot connect to {}: {e} (is wren running as PID 1, and are you root?)",
                path.shown()
            )
        };
        let addr = crate::sys::path::CPath::new()
            .of_path(path)
            .and_then(SocketAddrUnix::new)
            .map_err(|e| cannot(&e))?;
        let deadline = Instant::now() + within;
        let fd = loop {
            let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
            let fd = rustix::net::socket_with(AddressFamily::UNIX, SocketType::STREAM, flags, None)
                .map_err(|e| cannot(&e))?;
            match rustix::net::connect(&fd, &addr) {
                Ok(()) => break fd,
                // A Unix socket's queue is full: no wait in the kernel.
                Err(rustix::io::Errno::AGAIN) if Instant::now() < deadline => {
                    crate::sys::clock::sleep(Duration::from_millis(20))
                }
                Err(rustix::io::Errno::AGAIN) => {
                    return Err(cannot(&"init accepts no connection (its queue stays full)"))
                }
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(cannot(&e)),
            }
        };
        let stream = UnixStream::from(fd);
        stream.set_nonblocking(false).map_err(|e| cannot(&e))?;
        Ok(Conn {
            stream,
            dec: Box::new(FrameDecoder::new()),
            decoded: false,
        })
    }

    /// Sends `req`; `Err` is the message for stderr (one copy of its
    /// formatting, not one per caller).
    pub(super) fn send(&mut self, req: &Request<'_>) -> Result<(), String> {
        self.put(req).map_err(|e| e.to_string())
    }

    fn put(&mut self, req: &Request<'_>) -> Result<(), ClientError> {
        let mut buf = [0u8; crate::proto::HEADER_LEN + crate::proto::REQUEST_MAX];
        let n = encode_request(req, &mut buf).map_err(ClientError::Proto)?;
        let frame = buf.get(..n).ok_or(ClientError::Proto(ProtoError::NoRoom))?;
        match self.stream.write_all(frame) {
            // PID 1 refuses a client (not root, too many waiting) with an
            // error frame and a close right after its accept: that frame,
            // already here, is read as the reply and says why, not the
            // write's EPIPE (no frame: "closed without replying").
            Err(e)
                if matches!(
                    rustix::io::Errno::from_io_error(&e),
                    Some(rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET)
                ) =>
            {
                Ok(())
            }
            r => r.map_err(ClientError::Io),
        }
    }

    /// The next reply handed to `f`; `Ok(None)` when the server closed
    /// cleanly. `deadline` `None` waits for ever (`log -f`).
    pub(super) fn recv<R>(
        &mut self,
        deadline: Option<Instant>,
        f: impl FnOnce(Reply<'_>) -> R,
    ) -> Result<Option<R>, ClientError> {
        Ok(self.next(deadline)?.map(f))
    }

    /// `recv` without its caller's handling: one copy of the wait and
    /// the decoding, not one per caller. The frame a reply was decoded
    /// from is dropped at the next call.
    fn next(&mut self, deadline: Option<Instant>) -> Result<Option<Reply<'_>>, ClientError> {
        if std::mem::take(&mut self.decoded) {
            self.dec.consume();
        }
        if !self.fill(deadline)? {
            return Ok(None);
        }
        match self.dec.frame() {
            Ok(Some(p)) => {
                let r = decode_reply(p).map_err(ClientError::Proto)?;
                self.decoded = true;
                Ok(Some(r))
            }
            Ok(None) => Err(ClientError::Truncated),
            Err(e) => Err(ClientError::Proto(e)),
        }
    }

    /// Reads until one whole frame is buffered (`true`) or the stream
    /// ends cleanly (`false`).
    fn fill(&mut self, deadline: Option<Instant>) -> Result<bool, ClientError> {
        while self.dec.frame().map_err(ClientError::Proto)?.is_none() {
            let wait = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(w) if !w.is_zero() => Some(w),
                    _ => return Err(ClientError::Timeout),
                },
            };
            if wait.is_none() && !self.readable_unless_output_gone()? {
                return Err(ClientError::OutputGone);
            }
            self.stream
                .set_read_timeout(wait)
                .map_err(ClientError::Io)?;
            match self.stream.read(self.dec.spare()) {
                Ok(0) if self.dec.buffered() > 0 => return Err(ClientError::Truncated),
                Ok(0) => return Ok(false),
                Ok(n) => self.dec.advance(n),
                Err(e)
                    if matches!(
                        rustix::io::Errno::from_io_error(&e),
                        Some(rustix::io::Errno::AGAIN | rustix::io::Errno::TIMEDOUT)
                    ) =>
                {
                    return Err(ClientError::Timeout)
                }
                Err(e) if crate::sys::file::is_errno(&e, rustix::io::Errno::INTR) => {}
                Err(e) => return Err(ClientError::Io(e)),
            }
        }
        Ok(true)
    }

    /// Waits without a bound (`log -f`) until the socket is readable
    /// (`true`) or standard output's reader went away (`false`): a pipe
    /// whose reader closed (`| head -1`) says so in poll (POLLERR), while
    /// a unit that writes nothing more would leave the follow blocked in
    /// its read for ever.
    fn readable_unless_output_gone(&self) -> Result<bool, ClientError> {
        use rustix::event::{poll, PollFd, PollFlags};
        let stdout = rustix::stdio::stdout();
        let mut fds = [
            PollFd::new(&self.stream, PollFlags::IN),
            PollFd::new(&stdout, PollFlags::empty()),
        ];
        loop {
            match poll(&mut fds, None) {
                Ok(_) => break,
                Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(ClientError::Io(e.into())),
            }
        }
        let [sock, out] = &fds;
        let gone = PollFlags::ERR | PollFlags::HUP;
        Ok(sock.revents().contains(PollFlags::IN) || !out.revents().intersects(gone))
    }

    /// Exactly one reply is expected.
    pub(super) fn reply<R>(
        &mut self,
        timeout: Duration,
        f: impl FnOnce(Reply<'_>) -> R,
    ) -> Result<R, ClientError> {
        self.one(timeout).map(f)
    }

    /// `reply` without its caller's handling (one copy of the deadline).
    fn one(&mut self, timeout: Duration) -> Result<Reply<'_>, ClientError> {
        self.next(Some(Instant::now() + timeout))?
            .ok_or(ClientError::Closed)
    }
}
