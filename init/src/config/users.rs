//! `user` / `group` names to numbers, from /etc/passwd and /etc/group (no
//! NSS: a static binary has none). Read at every spawn of a unit that names
//! its user, so through a fixed buffer, without allocating.

use crate::sys::file::read_at;
use crate::unit::{IdSpec, UnitDef};

/// The unit's uid and gid: numbers as given, names looked up in the
/// unit's root when it has one.
pub fn resolve_ids(def: &UnitDef) -> Result<(Option<u32>, Option<u32>), &'static str> {
    let mut uid = None;
    let mut gid = None;
    match &def.user {
        None => {}
        Some(IdSpec::Id(n)) => uid = Some(*n),
        Some(IdSpec::Name(n)) => {
            let (u, g) = lookup(def, "/etc/passwd", n).ok_or("user not found in /etc/passwd")?;
            uid = Some(u);
            gid = Some(g);
        }
    }
    match &def.group {
        None => {}
        Some(IdSpec::Id(n)) => gid = Some(*n),
        Some(IdSpec::Name(n)) => {
            let (g, _) = lookup(def, "/etc/group", n).ok_or("group not found in /etc/group")?;
            gid = Some(g);
        }
    }
    Ok((uid, gid))
}

/// Field 3 (and 4) of the line whose first field is `name`, read through a
/// fixed buffer, from the unit's root when it has one.
fn lookup(def: &UnitDef, file: &str, name: &str) -> Option<(u32, u32)> {
    let mut path: heapless::String<{ crate::vocab::PATH_BYTES + 16 }> = heapless::String::new();
    if let Some(r) = def.root.as_deref() {
        path.push_str(r.trim_end_matches('/')).ok()?;
    }
    path.push_str(file).ok()?;
    let mut buf = [0u8; 8192];
    find_ids(read_at(rustix::fs::CWD, &path, &mut buf).ok()?, name)
}

/// Fields 3 and 4 (0 when absent, as in /etc/group) of `name`'s line in
/// passwd or group text.
pub fn find_ids(text: &str, name: &str) -> Option<(u32, u32)> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        if f.next()? != name {
            return None;
        }
        let _pw = f.next()?;
        let a = f.next()?.parse().ok()?;
        let b = f.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        Some((a, b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_from_passwd_and_group_text() {
        let pw = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n";
        assert_eq!(find_ids(pw, "nobody"), Some((65534, 65534)));
        assert_eq!(find_ids(pw, "root"), Some((0, 0)));
        assert_eq!(find_ids(pw, "nob"), None);
        assert_eq!(find_ids("wheel:x:10:root,a\n", "wheel"), Some((10, 0)));
    }
}
