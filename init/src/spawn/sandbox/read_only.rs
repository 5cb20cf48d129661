//! `read_only`'s other file systems: the unit sees `/` read-only, so
//! every mount below it is made read-only too (a data partition at
//! `/data` stayed writable), but the kernel's own (`/proc`, `/sys`,
//! `/dev`: a unit writes `/dev/null` and `/proc/self/oom_score_adj`)
//! and the unit's private `/run` and `/tmp`. The mounts come from
//! `/proc/self/mountinfo`, read in a fixed buffer: this runs between
//! clone3 and execve, raw calls only, nothing allocated.

use super::remount::remount_bind;
use core::ffi::CStr;
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mount::MountFlags;

/// Mount points left as they are, with everything below them.
const KEPT: [&[u8]; 5] = [b"/proc", b"/sys", b"/dev", b"/run", b"/tmp"];

/// The mount point of a mountinfo `line` to make read-only: read-write
/// now, not `/` (done already), not in `KEPT` nor below one. As the
/// kernel writes it (`\040` for a space).
pub(super) fn to_make_read_only(line: &[u8]) -> Option<&[u8]> {
    let mut fields = line.split(|&c| c == b' ');
    let point = fields.nth(4)?;
    let options = fields.next()?;
    let below = |k: &[u8]| {
        point
            .strip_prefix(k)
            .is_some_and(|rest| rest.is_empty() || rest.first() == Some(&b'/'))
    };
    let rw = options.split(|&c| c == b',').next() == Some(b"rw");
    (rw && point != b"/" && !KEPT.iter().any(|k| below(k))).then_some(point)
}

/// `point` with mountinfo's octal escapes undone, as a C string in `buf`.
fn unescaped<'b>(point: &[u8], buf: &'b mut [u8; 256]) -> Result<&'b CStr, Errno> {
    let mut n = 0;
    for byte in crate::boot::mounts::unescaped_bytes(point) {
        *buf.get_mut(n).ok_or(Errno::NAMETOOLONG)? = byte;
        n += 1;
    }
    *buf.get_mut(n).ok_or(Errno::NAMETOOLONG)? = 0;
    let bytes = buf.get(..=n).ok_or(Errno::NAMETOOLONG)?;
    CStr::from_bytes_with_nul(bytes).map_err(|_| Errno::INVAL)
}

/// Every mount `to_make_read_only` names in this mount namespace,
/// remounted read-only where it is.
pub(super) fn read_only_below() -> Result<(), Errno> {
    let fd = rustix::fs::openat(
        rustix::fs::CWD,
        c"/proc/self/mountinfo",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    loop {
        let room = buf.get_mut(len..).unwrap_or_default();
        if room.is_empty() {
            // One line longer than the buffer.
            return Err(Errno::NAMETOOLONG);
        }
        let n = rustix::io::read(&fd, room)?;
        len += n;
        let text = buf.get(..len).unwrap_or_default();
        // Whole lines now; at the end, the last one too.
        let whole = match text.iter().rposition(|&c| c == b'\n') {
            Some(i) => i + 1,
            None if n == 0 => len,
            None => 0,
        };
        for line in text.get(..whole).unwrap_or_default().split(|&c| c == b'\n') {
            if let Some(point) = to_make_read_only(line) {
                let mut path = [0u8; 256];
                match remount_bind(unescaped(point, &mut path)?, MountFlags::RDONLY) {
                    // No path of the unit's reaches it: one mounted over
                    // (ENOENT, or another's flags: EINVAL), or one under
                    // a directory its user may not enter (EACCES).
                    Ok(()) | Err(Errno::NOENT | Errno::INVAL | Errno::ACCESS) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        if n == 0 {
            return Ok(());
        }
        buf.copy_within(whole..len, 0);
        len -= whole;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What is made read-only: the other disks and binds below `/`, not
    /// `/` itself, the kernel's file systems, the unit's tmpfs, nor what
    /// is read-only already.
    #[test]
    fn the_mounts_below_root_but_the_kernels_are_made_read_only() {
        let table = "22 1 179:2 / / ro,relatime shared:1 - ext4 /dev/mmcblk0p2 rw\n\
             23 22 0:5 / /dev rw,nosuid - devtmpfs devtmpfs rw\n\
             24 23 0:21 / /dev/pts rw - devpts devpts rw\n\
             25 22 0:22 / /proc rw - proc proc rw\n\
             26 25 0:40 / /proc/sys/fs/binfmt_misc rw - binfmt_misc binfmt_misc rw\n\
             27 22 0:23 / /sys rw - sysfs sysfs rw\n\
             28 22 179:3 / /data rw,noatime - ext4 /dev/mmcblk0p3 rw\n\
             29 28 179:3 /logs /data/logs rw - ext4 /dev/mmcblk0p3 rw\n\
             30 22 179:1 / /boot ro - vfat /dev/mmcblk0p1 rw\n\
             31 22 0:30 / /run rw - tmpfs tmpfs rw\n\
             32 22 0:31 / /tmp rw - tmpfs tmpfs rw\n\
             33 22 0:32 / /media/usb\\040stick rw - vfat /dev/sda1 rw\n\
             34 22 0:33 / /devices rw - ext4 /dev/sdb1 rw";
        let points: Vec<&[u8]> = table
            .lines()
            .filter_map(|l| to_make_read_only(l.as_bytes()))
            .collect();
        assert_eq!(
            points,
            [
                &b"/data"[..],
                b"/data/logs",
                b"/media/usb\\040stick",
                b"/devices"
            ]
        );
        let mut buf = [0u8; 256];
        assert_eq!(
            unescaped(b"/media/usb\\040stick", &mut buf),
            Ok(c"/media/usb stick")
        );
        assert_eq!(unescaped(&[b'a'; 256], &mut buf), Err(Errno::NAMETOOLONG));
        assert_eq!(to_make_read_only(b"garbage"), None);
    }
}
