//! `user` / `group` to numbers, from the passwd and group files of the
//! unit's root (no NSS: a static binary has none), with initgroups
//! semantics: a named user also gets every group that lists it. Read at
//! every spawn of a unit that names a user, in its child (not PID 1: the
//! files may be on a mount that hangs), so streamed through a fixed
//! buffer: files of any size, bytes that are not UTF-8 (a GECOS field in
//! Latin-1) are no problem, and nothing is allocated.

use rustix::io::Errno;

use crate::unit::{IdSpec, UnitDef};

/// Supplementary groups a unit can get (Linux allows 65536; a device
/// user is in a handful).
pub const GROUPS_MAX: usize = 32;
/// Longest passwd or group line considered. The fields matched (name,
/// ids) lead the line; a longer group line has its members beyond this
/// ignored.
const LINE_MAX: usize = 4096;

const BAD_UID: &str = "user: 4294967295 is not a valid uid";
const NO_LINE: &str = "numeric user has no line in /etc/passwd: set `group`";
const NO_USER: &str = "user not found in /etc/passwd";
const BAD_GID: &str = "group: 4294967295 is not a valid gid";
const NO_GROUP: &str = "group not found in /etc/group";
const PASSWD_UID: &str = "/etc/passwd gives the user uid 4294967295, which is not valid";
const PASSWD_GID: &str = "/etc/passwd gives the user gid 4294967295, which is not valid";
const READ_PASSWD: &str = "cannot read /etc/passwd";
const READ_GROUP: &str = "cannot read /etc/group";
const GROUP_GID: &str = "/etc/group gives the group gid 4294967295, which is not valid";
const TOO_MANY: &str = "user is in more than 32 groups";
const OUTSIDE_MAP: &str = "uid or gid not in the user namespace's map: see user_map";

/// Every reason a lookup fails: a start's child looks its unit's ids up
/// and reports a failure to PID 1 in the four bytes of its status report
/// as its index here, with the read's errno above it (`why_code`).
const WHY: [&str; 12] = [
    BAD_UID,
    NO_LINE,
    NO_USER,
    BAD_GID,
    NO_GROUP,
    PASSWD_UID,
    PASSWD_GID,
    READ_PASSWD,
    READ_GROUP,
    GROUP_GID,
    TOO_MANY,
    OUTSIDE_MAP,
];

/// Whether `why` is about the files read (their lines, or reading them),
/// not the ids found against the unit's `user_map`.
pub fn from_the_files(why: &str) -> bool {
    why != OUTSIDE_MAP
}

/// A lookup that failed on the unit's `group` (with a `group` given,
/// /etc/group is read for it before the user's other groups).
pub fn at_the_group(why: &str) -> bool {
    matches!(why, BAD_GID | NO_GROUP | READ_GROUP | GROUP_GID)
}

/// `why` (with the errno of the read that failed, for `cannot read`) as
/// one number: its index in `WHY` in the low byte, the errno above.
pub fn why_code(why: &str, errno: Option<Errno>) -> i32 {
    let i = WHY
        .iter()
        .position(|w| *w == why)
        .map_or(0xff, |i| i as i32);
    let errno = errno
        .filter(|_| why == READ_PASSWD || why == READ_GROUP)
        .map_or(0, |e| e.raw_os_error());
    i | errno << 8
}

/// What `why_code` made `code` of.
pub fn why_text(code: i32) -> (&'static str, Option<Errno>) {
    let why = usize::try_from(code & 0xff)
        .ok()
        .and_then(|i| WHY.get(i))
        .copied()
        .unwrap_or("cannot look up `user` or `group`");
    let errno = Some(code >> 8)
        .filter(|&e| e > 0)
        .map(Errno::from_raw_os_error);
    (why, errno)
}

/// What the spawn sets: uid, gid, supplementary groups.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ids {
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Set (as given, possibly empty) whenever `uid` or `gid` is.
    pub groups: heapless::Vec<u32, GROUPS_MAX>,
}

/// `(uid_t)-1` means "unchanged" to the set-id calls: a unit given it
/// would silently keep running as root.
fn valid_id(n: u32) -> bool {
    n != u32::MAX
}

/// Calls its second argument with each line of the file it names
/// (`/etc/passwd`, `/etc/group`) until that returns true: `scan` in a
/// unit's root for a start, the image's file for `initctl check --root`,
/// so that both read the same lines the same way.
pub type Lines<'a> = dyn FnMut(&str, &mut dyn FnMut(&[u8]) -> bool) -> Result<(), Errno> + 'a;

/// The unit's ids: numbers as given, names looked up in the unit's root.
/// A named user brings its primary group (unless `group` is set) and the
/// groups that list it; a numeric user without `group` takes the primary
/// group of its passwd line, and is refused without one.
pub fn resolve_ids(def: &UnitDef) -> Result<Ids, &'static str> {
    resolve_ids_errno(def).map_err(|(why, _)| why)
}

/// `resolve_ids`, with the error of the last read that failed.
pub fn resolve_ids_errno(def: &UnitDef) -> Result<Ids, (&'static str, Option<Errno>)> {
    let root = def.seldom.root.as_deref().unwrap_or("");
    let mut failed = None;
    resolve_ids_in(def, &mut |file, f| {
        scan(root, file, f).inspect_err(|e| failed = Some(*e))
    })
    .map_err(|why| (why, failed))
}

/// `resolve_ids` with the files read by `lines`.
pub fn resolve_ids_in(def: &UnitDef, lines: &mut Lines<'_>) -> Result<Ids, &'static str> {
    let mut ids = Ids::default();
    let mut member_name: Option<heapless::String<64>> = None;
    match &def.seldom.user {
        None => {}
        Some(IdSpec::Id(n)) => {
            if !valid_id(*n) {
                return Err(BAD_UID);
            }
            ids.uid = Some(*n);
            if def.seldom.group.is_none() {
                let entry = passwd_by_uid(lines, *n)?.ok_or(NO_LINE)?;
                ids.gid = Some(entry.gid);
                member_name = Some(entry.name);
            }
        }
        Some(IdSpec::Name(n)) => {
            let entry = passwd_by_name(lines, n)?.ok_or(NO_USER)?;
            ids.uid = Some(entry.uid);
            ids.gid = Some(entry.gid);
            member_name = Some(entry.name);
        }
    }
    match &def.seldom.group {
        None => {}
        Some(IdSpec::Id(n)) => {
            if !valid_id(*n) {
                return Err(BAD_GID);
            }
            ids.gid = Some(*n);
        }
        Some(IdSpec::Name(n)) => {
            ids.gid = Some(group_by_name(lines, n)?.ok_or(NO_GROUP)?);
        }
    }
    if let Some(name) = member_name {
        member_groups(lines, &name, ids.gid, &mut ids.groups)?;
    }
    // In a user namespace the ids are the namespace's: one its map does
    // not cover cannot be taken (setuid's EINVAL, said with no name).
    if let Some(map) = def.user_map_effective() {
        if [ids.uid, ids.gid]
            .into_iter()
            .flatten()
            .any(|n| n >= map.count)
        {
            return Err(OUTSIDE_MAP);
        }
    }
    Ok(ids)
}

/// A passwd line's name, uid and gid.
struct PwEntry {
    name: heapless::String<64>,
    uid: u32,
    gid: u32,
}

fn field(line: &[u8], i: usize) -> Option<&[u8]> {
    line.split(|&c| c == b':').nth(i)
}

fn number(f: &[u8]) -> Option<u32> {
    wren_core::num::dec(core::str::from_utf8(f).ok()?)
}

/// A passwd line: `Ok(None)` when it is not a valid entry.
fn pw_entry(line: &[u8]) -> Result<Option<PwEntry>, &'static str> {
    let (Some(name), Some(uid), Some(gid)) = (field(line, 0), field(line, 2), field(line, 3))
    else {
        return Ok(None);
    };
    let (Some(uid), Some(gid)) = (number(uid), number(gid)) else {
        return Ok(None);
    };
    let Ok(name) = core::str::from_utf8(name) else {
        return Ok(None);
    };
    let mut n = heapless::String::new();
    if n.push_str(name).is_err() {
        return Ok(None);
    }
    Ok(Some(PwEntry { name: n, uid, gid }))
}

fn checked(e: PwEntry) -> Result<PwEntry, &'static str> {
    if !valid_id(e.uid) {
        return Err(PASSWD_UID);
    }
    if !valid_id(e.gid) {
        return Err(PASSWD_GID);
    }
    Ok(e)
}

fn passwd_by_name(lines: &mut Lines<'_>, name: &str) -> Result<Option<PwEntry>, &'static str> {
    let mut found = None;
    lines("/etc/passwd", &mut |line| {
        if field(line, 0) == Some(name.as_bytes()) {
            found = pw_entry(line).ok().flatten();
            return true;
        }
        false
    })
    .map_err(|_| READ_PASSWD)?;
    found.map(checked).transpose()
}

fn passwd_by_uid(lines: &mut Lines<'_>, uid: u32) -> Result<Option<PwEntry>, &'static str> {
    let mut found = None;
    lines("/etc/passwd", &mut |line| {
        if field(line, 2).and_then(number) == Some(uid) {
            found = pw_entry(line).ok().flatten();
            return found.is_some();
        }
        false
    })
    .map_err(|_| READ_PASSWD)?;
    found.map(checked).transpose()
}

fn group_by_name(lines: &mut Lines<'_>, name: &str) -> Result<Option<u32>, &'static str> {
    let mut found = None;
    lines("/etc/group", &mut |line| {
        if field(line, 0) == Some(name.as_bytes()) {
            found = field(line, 2).and_then(number);
            return true;
        }
        false
    })
    .map_err(|_| READ_GROUP)?;
    match found {
        Some(g) if !valid_id(g) => Err(GROUP_GID),
        other => Ok(other),
    }
}

/// initgroups(3): every group whose member list names `user`, the primary
/// group first. A missing /etc/group means no supplementary group.
fn member_groups(
    lines: &mut Lines<'_>,
    user: &str,
    primary: Option<u32>,
    out: &mut heapless::Vec<u32, GROUPS_MAX>,
) -> Result<(), &'static str> {
    out.clear();
    if let Some(g) = primary {
        let _ = out.push(g);
    }
    let mut full = false;
    let r = lines("/etc/group", &mut |line| {
        let listed =
            field(line, 3).is_some_and(|m| m.split(|&c| c == b',').any(|u| u == user.as_bytes()));
        if let (true, Some(g)) = (listed, field(line, 2).and_then(number)) {
            if valid_id(g) && !out.contains(&g) && out.push(g).is_err() {
                full = true;
                return true;
            }
        }
        false
    });
    match r {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(_) => return Err(READ_GROUP),
    }
    if full {
        return Err(TOO_MANY);
    }
    Ok(())
}

/// `file` under `root`; with several `root` layers (`TOP:...:BASE`), in
/// the topmost layer that has it, as the unit's overlay will show it: a
/// whiteout (a 0/0 character device) there hides the layers below, and so
/// does a parent directory that is opaque or is not a directory. Links
/// resolve inside the layer (`RESOLVE_IN_ROOT`), as the unit will see
/// them after its pivot, never to the host's file of that name.
fn open_in_root(root: &str, file: &str) -> Result<rustix::fd::OwnedFd, Errno> {
    use rustix::fs::{FileType, Mode, OFlags};
    let rel = file.trim_start_matches('/');
    for layer in root.split(':') {
        let path = layer_path(layer, file)?;
        let top = if layer.is_empty() { "/" } else { layer };
        let base = crate::sys::file::openat(
            rustix::fs::CWD,
            top,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        match in_root(&base, rel, OFlags::PATH).and_then(|at| rustix::fs::fstat(&at)) {
            Err(Errno::NOENT | Errno::NOTDIR) if hides_below(&path) => return Err(Errno::NOENT),
            Err(Errno::NOENT | Errno::NOTDIR) => continue,
            Err(e) => return Err(e),
            Ok(st)
                if FileType::from_raw_mode(st.st_mode) == FileType::CharacterDevice
                    && st.st_rdev == 0 =>
            {
                return Err(Errno::NOENT)
            }
            Ok(_) => {
                let fd = in_root(
                    &base,
                    rel,
                    OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY,
                )?;
                let st = rustix::fs::fstat(&fd)?;
                if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                    return Err(Errno::INVAL);
                }
                return Ok(fd);
            }
        }
    }
    Err(Errno::NOENT)
}

/// `rel` under `base` with its links resolved inside `base`; before
/// Linux 5.6 (no openat2), as the host resolves them.
fn in_root(
    base: &rustix::fd::OwnedFd,
    rel: &str,
    flags: rustix::fs::OFlags,
) -> Result<rustix::fd::OwnedFd, Errno> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    let flags = flags | OFlags::CLOEXEC;
    let mut c = crate::sys::path::CPath::new();
    let rel = c.of_str(rel)?;
    let base = rustix::fd::AsFd::as_fd(base);
    match rustix::fs::openat2(base, rel, flags, Mode::empty(), how) {
        Err(Errno::NOSYS) => rustix::fs::openat(base, rel, flags, Mode::empty()),
        r => r,
    }
}

/// `file` in `layer`, as one path.
fn layer_path(
    layer: &str,
    file: &str,
) -> Result<heapless::String<{ crate::vocab::PATH_BYTES + 16 }>, Errno> {
    let mut path = heapless::String::new();
    path.push_str(layer.trim_end_matches('/'))
        .and_then(|()| path.push_str(file))
        .map_err(|_| Errno::NAMETOOLONG)?;
    Ok(path)
}

/// Does the parent directory of `path` (a layer's `/etc`) hide the lower
/// layers' copy: opaque (`trusted.overlay.opaque=y`), or not a directory
/// (a whiteout, a file)?
fn hides_below(path: &str) -> bool {
    let Some((parent, _)) = path.rsplit_once('/') else {
        return false;
    };
    let mut c = crate::sys::path::CPath::new();
    let Ok(parent) = c.of_str(parent) else {
        return false;
    };
    match rustix::fs::statat(
        rustix::fs::CWD,
        parent,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    ) {
        Ok(st)
            if rustix::fs::FileType::from_raw_mode(st.st_mode)
                == rustix::fs::FileType::Directory =>
        {
            crate::sys::file::overlay_opaque(parent)
        }
        Ok(_) => true,
        Err(_) => false,
    }
}

/// Calls `f` with each line (without its newline) of `root` + `file`
/// until it returns true. The file is read in chunks through a fixed
/// buffer; it must be a regular file (opened non-blocking, so a FIFO put
/// there never blocks PID 1).
pub fn scan(root: &str, file: &str, f: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), Errno> {
    let fd = open_in_root(root, file)?;
    let mut buf = [0u8; LINE_MAX];
    // Bytes of buf holding the start of the current line.
    let mut have = 0usize;
    // Inside a line longer than the buffer: its first LINE_MAX bytes were
    // given; skip to its end.
    let mut skipping = false;
    loop {
        let Some(spare) = buf.get_mut(have..) else {
            return Err(Errno::IO);
        };
        let n = match rustix::io::read(&fd, spare) {
            Ok(n) => n,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e),
        };
        let end = have + n;
        let Some(data) = buf.get(..end) else {
            return Err(Errno::IO);
        };
        let mut start = 0usize;
        while let Some(nl) = data
            .get(start..)
            .and_then(|d| d.iter().position(|&c| c == b'\n'))
        {
            let line = data.get(start..start + nl).unwrap_or(&[]);
            if !skipping && f(line) {
                return Ok(());
            }
            skipping = false;
            start += nl + 1;
        }
        let rest = end - start;
        if n == 0 {
            // The last line may lack its newline.
            if rest > 0 && !skipping {
                if let Some(line) = data.get(start..end) {
                    let _ = f(line);
                }
            }
            return Ok(());
        }
        if rest == LINE_MAX {
            // A line longer than the buffer: judge it by its start.
            if !skipping && f(data) {
                return Ok(());
            }
            skipping = true;
            have = 0;
        } else {
            buf.copy_within(start..end, 0);
            have = rest;
        }
    }
}

#[cfg(test)]
mod tests;
