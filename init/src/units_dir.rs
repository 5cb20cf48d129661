//! Reading a unit directory and checking it as a whole (being written).

use crate::unit::{UnitDef, MAX_UNITS};
use std::path::Path;

/// One problem found while loading: shown as `FILE:LINE: message`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    pub file: String,
    /// 1-based; 0 when the problem is the file as a whole.
    pub line: u32,
    pub msg: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.msg)
        } else {
            write!(f, "{}: {}", self.file, self.msg)
        }
    }
}

/// Load every `*.unit` in `dir` (sorted by name) into `defs`, checking the
/// set as a whole; each unit with a problem is reported through `err` and
/// left out, the others are loaded.
pub fn load_dir(
    dir: &Path,
    defs: &mut heapless::Vec<UnitDef, MAX_UNITS>,
    err: &mut dyn FnMut(LoadError),
) {
    let _ = (dir, defs, err);
    todo!()
}

/// `initctl check [FILE...]`: validate files (or a directory when one path
/// names a directory) without applying them. Writes one line per problem
/// to `out`; returns true when everything is valid.
pub fn check(paths: &[&Path], out: &mut dyn std::io::Write) -> bool {
    let _ = (paths, out);
    todo!()
}
