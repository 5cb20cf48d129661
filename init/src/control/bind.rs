//! Making the listening socket: its private directory, a stale socket
//! replaced, peers limited by mode 0600, and the server's own epoll set.

use super::{Client, Server, EVENT_BATCH, LISTENER_TOKEN, LISTEN_BACKLOG, MAX_CLIENTS, NO_EVENT};
use crate::pathname::Show as _;
use rustix::event::epoll;
use rustix::io::Errno;
use rustix::net::{self, SocketFlags};
use std::path::Path;

/// A step of `Server::bind` that failed. It borrows the path: a bind
/// retried while it fails (`pid1::event_loop`) allocates nothing.
#[derive(Debug)]
pub enum ServerError<'a> {
    /// The socket's directory could not be made.
    Dir {
        path: &'a Path,
        err: Errno,
    },
    /// Something not a socket sits where the socket goes.
    NotSocket(&'a Path),
    Unlink {
        path: &'a Path,
        err: Errno,
    },
    Socket(Errno),
    Bind {
        path: &'a Path,
        err: Errno,
    },
    Chmod {
        path: &'a Path,
        err: Errno,
    },
    Listen(Errno),
    Epoll(Errno),
}

impl core::fmt::Display for ServerError<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Few formatting sites: `VERB PATH: ERR`, `WHAT: ERR`.
        fn what(f: &mut core::fmt::Formatter<'_>, what: &str, e: &Errno) -> core::fmt::Result {
            write!(f, "{what}: {e}")
        }
        let (verb, path, err) = match self {
            ServerError::NotSocket(p) => {
                return write!(f, "{} exists and is not a socket", p.shown())
            }
            ServerError::Dir { path, err } => ("mkdir", path, err),
            ServerError::Unlink { path, err } => ("remove stale", path, err),
            ServerError::Bind { path, err } => ("bind", path, err),
            ServerError::Chmod { path, err } => ("chmod", path, err),
            ServerError::Socket(e) => return what(f, "control socket", e),
            ServerError::Listen(e) => return what(f, "listen on control socket", e),
            ServerError::Epoll(e) => return what(f, "control epoll", e),
        };
        write!(f, "{verb} {}: {err}", path.shown())
    }
}

impl Server {
    /// Listens at `path`, making its directory (mode 0700) if missing and
    /// replacing a stale socket left there. Only peers of `allowed_uid`
    /// are served. Allocates the client table: call once, at boot.
    pub fn bind(path: &Path, allowed_uid: u32) -> Result<Server, ServerError<'_>> {
        use rustix::fs::Mode;
        if let Some(dir) = crate::pathname::parent(path).filter(|d| !d.as_os_str().is_empty()) {
            let mut c = crate::sys::path::CPath::new();
            match c
                .of_path(dir)
                .and_then(|dir| rustix::fs::mkdir(dir, Mode::RWXU))
            {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(err) => return Err(ServerError::Dir { path: dir, err }),
            }
        }
        // The path as a C string once, for the four calls below; a path
        // that cannot be one fails each of them as rustix's own copy did.
        let mut c = crate::sys::path::CPath::new();
        let cpath = c.of_path(path);
        if let Ok(st) = cpath.and_then(rustix::fs::lstat) {
            if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
                return Err(ServerError::NotSocket(path));
            }
            cpath
                .and_then(rustix::fs::unlink)
                .map_err(|err| ServerError::Unlink { path, err })?;
        }
        let listener = net::socket_with(
            net::AddressFamily::UNIX,
            net::SocketType::STREAM,
            SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
            None,
        )
        .map_err(ServerError::Socket)?;
        let addr = cpath
            .and_then(net::SocketAddrUnix::new)
            .map_err(|err| ServerError::Bind { path, err })?;
        net::bind(&listener, &addr).map_err(|err| ServerError::Bind { path, err })?;
        let private = cpath.and_then(|p| rustix::fs::chmod(p, Mode::RUSR | Mode::WUSR));
        private.map_err(|err| ServerError::Chmod { path, err })?;
        net::listen(&listener, LISTEN_BACKLOG).map_err(ServerError::Listen)?;
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(ServerError::Epoll)?;
        epoll::add(
            &epoll,
            &listener,
            epoll::EventData::new_u64(LISTENER_TOKEN),
            epoll::EventFlags::IN,
        )
        .map_err(ServerError::Epoll)?;
        Ok(Server {
            listener,
            epoll,
            allowed_uid,
            clients: (0..MAX_CLIENTS).map(|_| Client::new()).collect(),
            scratch: Box::default(),
            events: [NO_EVENT; EVENT_BATCH],
            event_count: 0,
            next_event: 0,
            accepts_left: 0,
            in_round: false,
            waiting_seq: 0,
            polled_at: 0,
            grown: 0,
            paused_until: None,
            accept_failing: false,
        })
    }
}
