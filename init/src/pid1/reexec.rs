//! `initctl reexec [PATH]`.

use super::Pid1;
use crate::control::ClientId;
use crate::proto::{CtlError, ErrCode, Reply};

impl Pid1 {
    pub(super) fn reexec(&mut self, id: ClientId, _path: &str) {
        let reply = Reply::Error(CtlError::new(ErrCode::Refused, "reexec: not built yet"));
        if let Some(srv) = self.control.as_mut() {
            srv.answer(id, &reply, super::now());
        }
    }
}
