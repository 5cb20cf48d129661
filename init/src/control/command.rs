//! A decoded request, with its unit name copied out of the read buffer:
//! what the server hands to PID 1's loop.

use crate::proto::{decode_request, CtlError, ErrCode, ProtoError, Request, PROTO_VERSION};
use crate::vocab::{Name, ShutdownKind};

/// What a client asked for. The loop executes it and answers through the
/// server (`Server::answer` and its siblings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `status`: answer with `Reply::Status`, the page from slot `from`.
    Status {
        from: u16,
    },
    /// `status NAME`: answer with `Server::answer_detail`.
    Detail(Name),
    /// Begin the action, then `Server::wait_for` (or answer an error).
    Start(Name),
    Stop(Name),
    Restart(Name),
    /// Answer Ok first, then begin the shutdown.
    Shutdown(ShutdownKind),
    /// Answer with `Server::answer_log`.
    Log {
        name: Name,
        follow: bool,
    },
    /// Answer with `Reply::Cat`.
    Cat(Name),
    /// Answer with `Reply::Reload`.
    Reload,
    /// Answer with `Reply::Reload` once no unit is on probation (or wait:
    /// `Server::wait_for` with `Want::Verdict`).
    Verdict,
    /// Check the binary, answer, then re-exec (or answer an error).
    Reexec(heapless::String<{ crate::vocab::PATH_BYTES }>),
    /// Answer with `Reply::Info`.
    Info,
}

impl Command {
    /// Changes what runs (or the machine's state), rather than looks.
    pub fn changes(&self) -> bool {
        matches!(
            self,
            Command::Start(_)
                | Command::Stop(_)
                | Command::Restart(_)
                | Command::Shutdown(_)
                | Command::Reload
                | Command::Reexec(_)
                // A reload's second half: hearing it ends the verdict owed
                // to the operator's reload (`Pid1::verdict_asked`).
                | Command::Verdict
        )
    }
}

/// The payload of one frame as a command, or the error to reply with.
pub(super) fn parse(payload: &[u8]) -> Result<Command, CtlError> {
    let req = match decode_request(payload) {
        Ok(r) => r,
        Err(ProtoError::Version { got }) => {
            return Err(CtlError::fmt(
                ErrCode::Version,
                format_args!(
                    "initctl speaks protocol {got}, init speaks {PROTO_VERSION}: \
                     use the initctl of the running init"
                ),
            ))
        }
        Err(e) => {
            return Err(CtlError::fmt(ErrCode::BadRequest, format_args!("{e}")));
        }
    };
    let name = |n: &str| -> Result<Name, CtlError> {
        let mut s = Name::new();
        s.push_str(n).map_err(|_| {
            CtlError::new(
                ErrCode::NoSuchUnit,
                "no such unit (name longer than 32 bytes)",
            )
        })?;
        Ok(s)
    };
    match req {
        Request::Status { name: None, from } => Ok(Command::Status { from }),
        Request::Status {
            name: Some(n),
            from: _,
        } => name(n).map(Command::Detail),
        Request::Start { name: n } => name(n).map(Command::Start),
        Request::Stop { name: n } => name(n).map(Command::Stop),
        Request::Restart { name: n } => name(n).map(Command::Restart),
        Request::Shutdown(k) => Ok(Command::Shutdown(k)),
        Request::Log { name: n, follow } => name(n).map(|name| Command::Log { name, follow }),
        Request::Cat { name: n } => name(n).map(Command::Cat),
        Request::Reload => Ok(Command::Reload),
        Request::Verdict => Ok(Command::Verdict),
        Request::Reexec { path } => heapless::String::try_from(path)
            .map(Command::Reexec)
            .map_err(|_| CtlError::new(ErrCode::BadRequest, "path too long")),
        Request::Info => Ok(Command::Info),
    }
}
