//! `initctl edit NAME`: edit a working copy, check it among its siblings,
//! offer to edit again while it is invalid, install it atomically and have
//! init reload.

use super::args::Command;
use super::{client, units_dir, FAIL, OK};
use std::io::{self, Write};
use std::path::Path;

/// What `edit_unit` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Edited {
    /// Saved as it was: nothing installed.
    Unchanged,
    /// The checked copy replaced the unit file.
    Installed,
    /// Invalid and the user declined to edit again: nothing installed.
    Aborted,
}

/// How `edit_unit` reaches the world, so tests can stand in.
pub(super) struct EditEnv<'a> {
    /// The unit directory.
    pub(super) dir: &'a Path,
    /// Where the working copy is made.
    pub(super) tmp: &'a Path,
    /// Run through `/bin/sh -c` as git does, so it may carry arguments.
    pub(super) editor: &'a str,
    /// Validates one file, writing problems to the writer.
    pub(super) check: &'a dyn Fn(&Path, &mut dyn Write) -> bool,
}

/// `initctl edit NAME`: edit a copy, validate it, offer to re-edit while
/// invalid, install it (atomic rename) and have init reload.
pub(super) fn edit(name: &str, socket: &Path, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let editor = std::env::var("EDITOR")
        .ok()
        .filter(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".into());
    let tmp = std::env::temp_dir();
    let dir = units_dir();
    // The copy is checked in place of the installed file, among its
    // siblings, so its `after` names resolve.
    let check = |p: &Path, w: &mut dyn Write| {
        crate::config::check_in_context(Path::new("/"), &[p], Path::new(&dir), w)
    };
    let env = EditEnv {
        dir: Path::new(&dir),
        tmp: &tmp,
        editor: &editor,
        check: &check,
    };
    let stdin = io::stdin();
    match edit_unit(name, &env, &mut stdin.lock(), err) {
        Err(msg) => {
            let _ = writeln!(err, "initctl: {msg}");
            FAIL
        }
        Ok(Edited::Aborted) => {
            let _ = writeln!(err, "initctl: {name}.unit left unchanged");
            FAIL
        }
        Ok(Edited::Unchanged) => {
            let _ = writeln!(out, "{name}.unit unchanged");
            OK
        }
        Ok(Edited::Installed) => {
            let _ = writeln!(out, "{name}.unit installed");
            match client::talk(&Command::Reload, socket, out, err) {
                Ok(code) => code,
                Err(msg) => {
                    let _ = writeln!(err, "initctl: installed but not applied: {msg}");
                    FAIL
                }
            }
        }
    }
}

pub(super) fn edit_unit(
    name: &str,
    env: &EditEnv<'_>,
    input: &mut dyn io::BufRead,
    err: &mut dyn Write,
) -> Result<Edited, String> {
    let target = env.dir.join(format!("{name}.unit"));
    let original = match std::fs::read_to_string(&target) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            format!("# {name}: new unit, keys in wren's docs/units.md\nexec = \n")
        }
        Err(e) => return Err(format!("{}: {e}", target.display())),
    };
    // The copy keeps the unit's file name so that `check` sees its name.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let work = env
        .tmp
        .join(format!("wren-edit-{}-{name}-{nanos}", std::process::id()));
    std::fs::create_dir(&work).map_err(|e| format!("{}: {e}", work.display()))?;
    let result = edit_loop(name, env, &original, &target, &work, input, err);
    let _ = std::fs::remove_dir_all(&work);
    result
}

fn edit_loop(
    name: &str,
    env: &EditEnv<'_>,
    original: &str,
    target: &Path,
    work: &Path,
    input: &mut dyn io::BufRead,
    err: &mut dyn Write,
) -> Result<Edited, String> {
    let copy = work.join(format!("{name}.unit"));
    std::fs::write(&copy, original).map_err(|e| format!("{}: {e}", copy.display()))?;
    loop {
        let status = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{} \"$@\"", env.editor))
            .arg(env.editor)
            .arg(&copy)
            .status()
            .map_err(|e| format!("cannot run /bin/sh for the editor: {e}"))?;
        if !status.success() {
            return Err(format!("editor '{}' failed ({status})", env.editor));
        }
        let text =
            std::fs::read_to_string(&copy).map_err(|e| format!("{}: {e}", copy.display()))?;
        if text == original {
            return Ok(Edited::Unchanged);
        }
        if (env.check)(&copy, err) {
            let staged = target.with_file_name(format!(".{name}.unit.new"));
            std::fs::write(&staged, &text)
                .and_then(|()| std::fs::File::open(&staged)?.sync_all())
                .and_then(|()| std::fs::rename(&staged, target))
                .map_err(|e| {
                    let _ = std::fs::remove_file(&staged);
                    format!("installing {}: {e}", target.display())
                })?;
            return Ok(Edited::Installed);
        }
        let _ = write!(err, "{name}.unit is invalid. Edit again? [Y/n] ");
        let _ = err.flush();
        let mut answer = String::new();
        let n = input.read_line(&mut answer).map_err(|e| e.to_string())?;
        if n == 0 || answer.trim_start().starts_with(['n', 'N']) {
            return Ok(Edited::Aborted);
        }
    }
}
