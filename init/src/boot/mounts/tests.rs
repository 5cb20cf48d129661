use super::*;
use crate::testutil::TempDir;

/// A Debian-like table after boot, with an initramfs root below the
/// real one, a stacked mount and a target with a blank.
const TABLE: &str = "\
rootfs / rootfs rw 0 0
/dev/vda / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
devtmpfs /dev devtmpfs rw,nosuid,size=10240k,mode=755 0 0
devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=666 0 0
tmpfs /run tmpfs rw,nosuid,nodev,mode=755 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0
/dev/vdb /data ext4 rw,relatime 0 0
/dev/vdc /data/my\\040disk vfat rw 0 0
/dev/vdd /data ext4 rw 0 0
tmpfs /data/tmp tmpfs rw 0 0
/dev/vde /run/media/usb ext4 rw 0 0
";

#[test]
fn mounted_fstype_matches_whole_targets() {
    let is_target = |text, target| mounted_fstype(text, target).is_some();
    assert!(is_target(TABLE, "/proc"));
    assert!(is_target(TABLE, "/sys/fs/cgroup"));
    assert!(is_target(TABLE, "/data/my disk"));
    assert!(!is_target(TABLE, "/data/my\\040disk"));
    assert!(!is_target(TABLE, "/dev/shm"));
    assert!(!is_target(TABLE, "/sys/fs"));
    assert!(!is_target(TABLE, "/pro"));
    assert!(!is_target("", "/proc"));
    // A truncated line is skipped, not misread.
    assert!(!is_target("proc /proc\n", "/proc"));
}

#[test]
fn escapes() {
    assert_eq!(unescape("/a\\040b\\011c\\134d"), "/a b\tc\\d");
    // Not an escape: kept as written.
    assert_eq!(unescape("/a\\9x\\04"), "/a\\9x\\04");
    assert!(field_eq("/a\\134b", "/a\\b"));
    assert!(!field_eq("/a\\9", "/a\\9"));
}

/// The topmost file system on a target decides: a cgroup2 there is
/// remounted with wren's options, a v1 tmpfs is left alone.
#[test]
fn the_topmost_mount_on_a_target_is_its_type() {
    assert_eq!(mounted_fstype(TABLE, "/sys/fs/cgroup"), Some("cgroup2"));
    assert_eq!(mounted_fstype(TABLE, "/data"), Some("ext4"));
    assert_eq!(mounted_fstype(TABLE, "/"), Some("ext4"));
    assert_eq!(mounted_fstype(TABLE, "/dev/shm"), None);
    let v1 = "tmpfs /sys/fs/cgroup tmpfs rw 0 0\ncgroup /sys/fs/cgroup/memory cgroup rw 0 0\n";
    assert_eq!(mounted_fstype(v1, "/sys/fs/cgroup"), Some("tmpfs"));
}

#[test]
fn early_mounts_skip_what_is_there() {
    let missing: Vec<&str> = EARLY
        .iter()
        .filter(|s| mounted_fstype(TABLE, s.target).is_none())
        .map(|s| s.target)
        .collect();
    assert_eq!(missing, ["/dev/shm"]);
    // Parents before children.
    for (i, s) in EARLY.iter().enumerate() {
        for later in &EARLY[i + 1..] {
            assert!(
                !s.target.starts_with(&format!("{}/", later.target)),
                "{} must come after {}",
                s.target,
                later.target
            );
        }
    }
    let cg = EARLY.last().unwrap();
    assert_eq!(cg.fstype, "cgroup2");
    assert_eq!(cg.options.len(), 3);
    assert_eq!(cg.options[2], c"");
}

#[test]
fn plan_unmounts_real_filesystems_in_reverse_then_root() {
    let plan = unmount_plan(TABLE);
    let want = [
        Action::Unmount("/run/media/usb".into()),
        Action::Unmount("/data".into()),
        Action::Unmount("/data/my disk".into()),
        Action::Unmount("/data".into()),
        Action::RemountRoot,
    ];
    assert_eq!(plan, want);
}

/// A dead server hangs whatever flushes its mount, sync(2) included: the
/// remote mounts come after every local one and the root, behind a sync.
#[test]
fn plan_leaves_remote_filesystems_to_the_end() {
    let t = "/dev/root / ext4 rw 0 0\n\
             srv:/export /mnt/nfs nfs4 rw 0 0\n\
             /dev/mmcblk0p3 /data ext4 rw 0 0\n\
             //srv/share /data/smb cifs rw 0 0\n\
             sshfs#me@srv: /home/me fuse.sshfs rw 0 0\n\
             /dev/sda1 /data/usb vfat rw 0 0\n\
             /dev/sda2 /media/ntfs fuseblk rw 0 0\n";
    let want = [
        Action::Unmount("/media/ntfs".into()),
        Action::Unmount("/data/usb".into()),
        Action::Unmount("/data".into()),
        Action::RemountRoot,
        Action::Sync,
        Action::Unmount("/home/me".into()),
        Action::Unmount("/data/smb".into()),
        Action::Unmount("/mnt/nfs".into()),
    ];
    assert_eq!(unmount_plan(t), want);
    // An NFS root is not remounted: the last sync flushes it.
    let t = "rootfs / rootfs rw 0 0\nsrv:/root / nfs rw 0 0\n/dev/sda1 /boot vfat rw 0 0\n";
    assert_eq!(unmount_plan(t), [Action::Unmount("/boot".into())]);
}

#[test]
fn plan_for_an_initramfs_root_leaves_it() {
    let t = "rootfs / rootfs rw 0 0\nproc /proc proc rw 0 0\n/dev/sda1 /boot vfat rw 0 0\n";
    assert_eq!(unmount_plan(t), [Action::Unmount("/boot".into())]);
    assert_eq!(unmount_plan(""), []);
    // A tmpfs root (as some initramfs setups have) has nothing to flush.
    assert_eq!(unmount_plan("none / tmpfs rw 0 0\n"), []);
    // A real root mounted over rootfs counts, whatever the order seen.
    assert_eq!(
        unmount_plan("rootfs / rootfs rw 0 0\n/dev/root / ext4 rw 0 0\n"),
        [Action::RemountRoot]
    );
}

#[test]
fn unmount_all_reports_and_survives() {
    // umount2 and the remount both fail on a path that is not mounted;
    // both are reported, nothing panics. A table that cannot be read
    // is reported and the root is tried.
    let dir = TempDir::new("mounts");
    let table = dir.join("mounts");
    std::fs::write(&table, "/dev/nope /nonexistent-wren-test ext4 rw 0 0\n").unwrap();
    let mut got = Vec::new();
    assert!(
        unmount_all(&table, &mut |r| got.push(r.to_string())),
        "a mount neither unmounted nor made read-only is said to be left read-write"
    );
    assert_eq!(got.len(), 1);
    // Unprivileged: EPERM twice; privileged: ENOENT twice.
    assert!(
        got[0].starts_with("cannot unmount /nonexistent-wren-test ("),
        "{got:?}"
    );
    // A remote one left (a dead server) asks for no forced remount,
    // which writes out local disks only.
    std::fs::write(&table, "srv:/x /nonexistent-wren-nfs nfs rw 0 0\n").unwrap();
    let mut got = Vec::new();
    assert!(
        !unmount_all(&table, &mut |r| got.push(r.to_string())),
        "{got:?}"
    );
    assert!(
        got.iter()
            .any(|l| l.starts_with("cannot unmount /nonexistent-wren-nfs")),
        "{got:?}"
    );
    // Not executed: the fallback would remount the host's / read-only.
    let mut got = Vec::new();
    let plan = load_plan(&dir.join("missing"), &mut |r| got.push(r.to_string()));
    assert_eq!(plan, [Action::RemountRoot]);
    assert_eq!(got.len(), 1);
    assert!(got[0].starts_with("cannot read the mount table"), "{got:?}");
}

/// A mount point that is not UTF-8 (a stick's Latin-1 label) loses its
/// own line only: the other mounts are in the plan still.
#[test]
fn a_mount_point_not_utf8_leaves_the_rest_of_the_plan() {
    let dir = TempDir::new("mounts-latin1");
    let table = dir.join("mounts");
    std::fs::write(
        &table,
        b"/dev/root / ext4 rw 0 0\n/dev/sda1 /data ext4 rw 0 0\n/dev/sdb1 /media/\xe9t vfat rw 0 0\n",
    )
    .unwrap();
    let mut got = Vec::new();
    let plan = load_plan(&table, &mut |r| got.push(r.to_string()));
    assert!(got.is_empty(), "{got:?}");
    assert!(plan.contains(&Action::Unmount("/data".into())), "{plan:?}");
    assert!(plan.contains(&Action::RemountRoot), "{plan:?}");
}

/// Any file system left read-write asks for the kernel's forced
/// remount: the root, a data partition a stuck writer keeps busy, a disk
/// root under another mount on `/`; one made read-only does not.
#[test]
fn a_file_system_left_read_write_is_told_from_the_rest() {
    let failed = |target| Unmounted::Failed {
        target,
        umount: Some(Errno::BUSY),
        remount: Errno::BUSY,
    };
    assert!(left_read_write(&failed("/")));
    assert!(left_read_write(&failed("/data")));
    let under = Unmounted::UnderRoot {
        source: "/dev/mmcblk0p2",
    };
    assert!(left_read_write(&under));
    assert!(!left_read_write(&Unmounted::RemountedRo {
        target: "/data",
        umount: Some(Errno::BUSY)
    }));
    assert!(!left_read_write(&Unmounted::Unmounted { target: "/data" }));
}

/// A disk root under an overlay or a tmpfs on `/` is reached by no path:
/// the plan says so (for the forced remount), unless it is read-only
/// already; the top mount is remounted read-only when it is a disk's.
#[test]
fn a_disk_root_under_another_mount_on_root_is_in_the_plan() {
    let disk = "/dev/mmcblk0p2 / ext4 rw,relatime 0 0\n";
    let under = Action::UnderRoot("/dev/mmcblk0p2".into());
    let overlay = format!("{disk}overlay / overlay rw,lowerdir=/ro,upperdir=/run/u 0 0\n");
    assert_eq!(unmount_plan(&overlay), [under.clone(), Action::RemountRoot]);
    let tmpfs = format!("{disk}tmpfs / tmpfs rw 0 0\n");
    assert_eq!(unmount_plan(&tmpfs), [under]);
    let ro = "/dev/mmcblk0p2 / ext4 ro,relatime 0 0\ntmpfs / tmpfs rw 0 0\n";
    assert_eq!(unmount_plan(ro), []);
    // The initramfs under a disk root is nothing to write out.
    assert_eq!(
        unmount_plan("rootfs / rootfs rw 0 0\n/dev/root / ext4 rw 0 0\n"),
        [Action::RemountRoot]
    );
}

#[test]
fn errors_name_the_step() {
    let e = MountError::Mount {
        target: "/sys/fs/cgroup",
        fstype: "cgroup2",
        errno: Errno::NODEV,
    };
    assert!(e
        .to_string()
        .starts_with("cannot mount cgroup2 on /sys/fs/cgroup: "));
    let e = MountError::FewerOptions {
        target: "/sys/fs/cgroup",
        wanted: "nsdelegate,memory_recursiveprot",
        used: "nsdelegate",
    };
    assert_eq!(
        e.to_string(),
        "/sys/fs/cgroup mounted with options 'nsdelegate': kernel refused 'nsdelegate,memory_recursiveprot'; a unit's memory.low then protects only its own cgroup, not those it makes below it (memory_recursiveprot: Linux 5.7)"
    );
}

#[test]
fn std_fds_left_alone_when_open() {
    // The test process has 0, 1, 2 open.
    assert_eq!(ensure_std_fds(Path::new("/dev/null")), Ok(0));
}

/// Runs `std_fds_child` in a fresh process (its stdin closed there, as
/// PID 1's may be from a bare initramfs) in `mode`; returns its stdout.
fn std_fds_child_says(mode: &str) -> String {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "boot::mounts::tests::std_fds_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WREN_STD_FDS_CHILD", mode)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    stdout
}

#[test]
fn std_fds_filled_when_missing() {
    let said = std_fds_child_says("fill");
    assert!(said.contains("CHILD-OK filled=1"), "{said}");
}

/// With no device that opens, the hole is held on "/", so the next fd
/// opened does not take number 0.
#[test]
fn std_fds_held_when_no_device_opens() {
    let said = std_fds_child_says("hold");
    assert!(
        said.contains("CHILD-HELD held=1 next_is_stdio=false"),
        "{said}"
    );
}

/// Only does something when started by `std_fds_child_says`.
#[test]
fn std_fds_child() {
    let Some(mode) = std::env::var_os("WREN_STD_FDS_CHILD") else {
        return;
    };
    crate::sys::fd::close_stdin();
    if mode == "hold" {
        let none = Path::new("/nonexistent/wren-console");
        assert_eq!(ensure_std_fds(none), Err(Errno::NOENT));
        let held = hold_std_fds().unwrap();
        let next = rustix::fs::open("/", OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let mut b = [0u8; 1];
        assert!(rustix::io::read(rustix::stdio::stdin(), &mut b).is_err());
        println!(
            "CHILD-HELD held={held} next_is_stdio={}",
            next.as_raw_fd() <= 2
        );
        return;
    }
    let filled = ensure_std_fds(Path::new("/dev/null")).unwrap();
    let st = rustix::fs::fstat(rustix::stdio::stdin()).unwrap();
    let null = rustix::fs::stat("/dev/null").unwrap();
    assert_eq!(st.st_rdev, null.st_rdev);
    println!("CHILD-OK filled={filled}");
}
