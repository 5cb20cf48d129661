//! Boot-test harness: boots the wren image (build/vmlinuz +
//! build/initramfs.cpio.gz, made by `rootfs/build`) in QEMU aarch64 and talks
//! to it over the serial console.
//!
//! Every byte of serial output is kept in memory (for [`Vm::expect`]) and
//! mirrored to `target/boot-logs/<test>.log`. Commands are typed into the
//! console shell unit of the scenario (or the rescue shell); [`Vm::sh`]
//! returns exactly a command's output by framing it between markers that do
//! not appear in the shell's echo of the command line.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// Kernel arguments every boot gets; the scenario's unit directory and the
/// test's extra arguments are appended.
pub const BASE_CMDLINE: &str = "console=ttyAMA0 rdinit=/sbin/init panic=-1";

/// Workspace root (the parent of the `tests/` crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Kernel and initramfs built by `rootfs/build`.
pub fn image() -> (PathBuf, PathBuf) {
    let b = repo_root().join("build");
    (b.join("vmlinuz"), b.join("initramfs.cpio.gz"))
}

/// Where the serial logs go: `target/boot-logs/` (or under $CARGO_TARGET_DIR).
pub fn log_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("boot-logs")
}

#[derive(Default)]
struct Serial {
    buf: Vec<u8>,
    eof: bool,
}

struct Shared {
    serial: Mutex<Serial>,
    cond: Condvar,
}

/// A running QEMU guest. Dropping it kills QEMU.
pub struct Vm {
    child: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    /// Byte offset in the serial output where the next `expect` starts.
    cursor: usize,
    marker: u32,
    shell_ready: bool,
    pub log_path: PathBuf,
    pub booted_at: Instant,
}

/// One line of `initctl status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitStatus {
    pub name: String,
    pub state: String,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub memory: String,
    pub uptime: String,
}

/// What BusyBox ash prints when an interactive shell starts.
pub const SHELL_BANNER: &str = "built-in shell (ash)";

static LOG_NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn log_name(scenario: &str) -> String {
    let t = std::thread::current();
    let base = match t.name() {
        Some(n) if n != "main" => n.to_string(),
        _ => scenario.to_string(),
    };
    base.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

impl Vm {
    /// Boots the image with the units of `tests/units/<scenario>/` (`demo`:
    /// the image's own /etc/units). `extra_cmdline` is appended to the kernel
    /// command line (a later `rdinit=` wins, so `rdinit=/bin/sh` boots
    /// without wren). Panics, telling to run tests/run, if the image is
    /// missing.
    pub fn boot(scenario: &str, extra_cmdline: &str) -> Vm {
        let (_, initrd) = image();
        Vm::boot_initrd(scenario, extra_cmdline, &initrd, &[])
    }

    /// Like [`Vm::boot`], with extra files in the image for this boot only:
    /// `(path in the image, contents, mode)`. They go into a small cpio
    /// archive that is appended to a copy of the shared initramfs (the
    /// kernel unpacks concatenated archives in order, so a later file
    /// replaces an earlier one); the parent directories are in the archive
    /// too. The combined initrd is `target/boot-initrd/<test>.cpio.gz`.
    pub fn boot_with_files(
        scenario: &str,
        extra_cmdline: &str,
        files: &[(&str, &[u8], u32)],
    ) -> Vm {
        Vm::boot_with_files_qemu(scenario, extra_cmdline, files, &[])
    }

    /// [`Vm::boot_with_files`] with extra QEMU arguments (`-m 1024`: a
    /// guest with more memory than the usual 256 MiB).
    pub fn boot_with_files_qemu(
        scenario: &str,
        extra_cmdline: &str,
        files: &[(&str, &[u8], u32)],
        qemu_args: &[&str],
    ) -> Vm {
        let (_, base) = image();
        assert!(
            base.exists(),
            "boot image {} is missing: run tests/run (or scripts/setup-host && rootfs/build) first",
            base.display()
        );
        let initrd = initrd_with_files(&base, &log_name(scenario), files);
        Vm::boot_initrd(scenario, extra_cmdline, &initrd, qemu_args)
    }

    fn boot_initrd(scenario: &str, extra_cmdline: &str, initrd: &Path, qemu_args: &[&str]) -> Vm {
        let (kernel, _) = image();
        for p in [kernel.as_path(), initrd] {
            assert!(
                p.exists(),
                "boot image {} is missing: run tests/run (or scripts/setup-host && rootfs/build) first",
                p.display()
            );
        }
        if scenario != "demo" {
            let dir = repo_root().join("tests/units").join(scenario);
            assert!(dir.is_dir(), "no fixture directory {}", dir.display());
        }
        let mut cmdline = BASE_CMDLINE.to_string();
        if scenario != "demo" {
            cmdline.push_str(&format!(" wren.units=/test/{scenario}"));
        }
        if !extra_cmdline.trim().is_empty() {
            cmdline.push(' ');
            cmdline.push_str(extra_cmdline.trim());
        }
        Vm::launch(scenario, &cmdline, initrd, None, qemu_args)
    }

    /// Boots from a disk, as a Raspberry Pi or Buildroot's QEMU board does:
    /// `disk` (a copy of `build/rootfs.ext4`, see [`disk_copy`]) as a
    /// virtio disk (`/dev/vda`), the first stage `build/disk-initrd.cpio.gz`
    /// (it loads the disk's driver modules and switch_roots to `root=`,
    /// running `init=`), and `cmdline` as the whole kernel command line.
    pub fn boot_disk(disk: &Path, cmdline: &str) -> Vm {
        Vm::boot_disk_with(disk, cmdline, &[])
    }

    /// [`Vm::boot_disk`] with more QEMU arguments (`-device i6300esb`).
    pub fn boot_disk_with(disk: &Path, cmdline: &str, qemu_args: &[&str]) -> Vm {
        let stage = repo_root().join("build/disk-initrd.cpio.gz");
        for p in [stage.as_path(), disk] {
            assert!(
                p.exists(),
                "disk boot image {} is missing: run tests/run (or rootfs/build) first",
                p.display()
            );
        }
        let cmdline = format!("{} rdinit=/init panic=-1", cmdline.trim());
        Vm::launch("disk", &cmdline, &stage, Some(disk), qemu_args)
    }

    fn launch(
        scenario: &str,
        cmdline: &str,
        initrd: &Path,
        disk: Option<&Path>,
        qemu_args: &[&str],
    ) -> Vm {
        let (kernel, _) = image();
        std::fs::create_dir_all(log_dir()).expect("create boot-logs dir");
        // A test's first boot overwrites the log of an earlier run; a
        // second boot in the same test gets its own `.2.log`.
        let base = log_name(scenario);
        let mut name = base.clone();
        {
            let mut used = LOG_NAMES.lock().unwrap();
            let mut i = 1;
            while used.contains(&name) {
                i += 1;
                name = format!("{base}.{i}");
            }
            used.push(name.clone());
        }
        let log_path = log_dir().join(format!("{name}.log"));
        let mut log = File::create(&log_path).expect("create boot log");
        let _ = writeln!(log, "### qemu-system-aarch64 -append \"{cmdline}\"");

        let mut child = Command::new("qemu-system-aarch64")
            .args(["-M", "virt", "-cpu", "cortex-a53", "-smp", "1", "-m", "256"])
            .args(["-nic", "none", "-display", "none", "-monitor", "none"])
            .args(["-serial", "stdio", "-no-reboot"])
            .arg("-kernel")
            .arg(&kernel)
            .arg("-initrd")
            .arg(initrd)
            .args(disk.map_or_else(Vec::new, |d| {
                vec![
                    "-drive".to_string(),
                    format!("file={},format=raw,if=none,id=hd0", d.display()),
                    "-device".to_string(),
                    "virtio-blk-pci,drive=hd0".to_string(),
                ]
            }))
            .args(qemu_args)
            .arg("-append")
            .arg(cmdline)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start qemu-system-aarch64 (run scripts/setup-host)");
        let shared = Arc::new(Shared {
            serial: Mutex::new(Serial::default()),
            cond: Condvar::new(),
        });
        let log = Arc::new(Mutex::new(log));
        {
            let mut out = child.stdout.take().expect("stdout piped");
            let shared = shared.clone();
            let log = log.clone();
            std::thread::spawn(move || {
                let mut b = [0u8; 4096];
                loop {
                    let n = match out.read(&mut b) {
                        Ok(0) | Err(_) => 0,
                        Ok(n) => n,
                    };
                    if let Ok(mut l) = log.lock() {
                        let _ = l.write_all(&b[..n]);
                        let _ = l.flush();
                    }
                    let mut s = shared.serial.lock().unwrap();
                    if n == 0 {
                        s.eof = true;
                    } else {
                        s.buf.extend_from_slice(&b[..n]);
                    }
                    shared.cond.notify_all();
                    if n == 0 {
                        return;
                    }
                }
            });
        }
        {
            let mut err = child.stderr.take().expect("stderr piped");
            std::thread::spawn(move || {
                let mut s = String::new();
                let _ = err.read_to_string(&mut s);
                if !s.is_empty() {
                    if let Ok(mut l) = log.lock() {
                        let _ = write!(l, "\n### qemu stderr:\n{s}");
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Vm {
            child,
            stdin,
            shared,
            cursor: 0,
            marker: 0,
            shell_ready: false,
            log_path,
            booted_at: Instant::now(),
        }
    }

    /// All serial output so far, lossily decoded.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.shared.serial.lock().unwrap().buf).into_owned()
    }

    pub fn tail(&self) -> String {
        let o = self.output();
        let start = o.len().saturating_sub(3000);
        let start = (start..o.len())
            .find(|&i| o.is_char_boundary(i))
            .unwrap_or(o.len());
        format!(
            "--- last serial output ({}):\n{}\n---",
            self.log_path.display(),
            &o[start..]
        )
    }

    /// Waits until `pred(all output)` returns Some(end offset) or the timeout.
    fn wait_for<F: FnMut(&[u8]) -> Option<usize>>(
        &self,
        timeout: Duration,
        mut pred: F,
    ) -> Option<usize> {
        let deadline = Instant::now() + timeout;
        let mut s = self.shared.serial.lock().unwrap();
        loop {
            if let Some(r) = pred(&s.buf) {
                return Some(r);
            }
            let now = Instant::now();
            if now >= deadline || s.eof {
                return pred(&s.buf);
            }
            s = self.shared.cond.wait_timeout(s, deadline - now).unwrap().0;
        }
    }

    /// Like [`Vm::expect`] but returns None on timeout instead of panicking.
    pub fn try_expect(&mut self, needle: &str, timeout: Duration) -> Option<String> {
        let from = self.cursor;
        let n = needle.as_bytes();
        let end = self.wait_for(timeout, |b| {
            find(&b[from.min(b.len())..], n).map(|i| from + i + n.len())
        })?;
        let s = self.shared.serial.lock().unwrap();
        let text = String::from_utf8_lossy(&s.buf[from..end]).into_owned();
        self.cursor = end;
        Some(text)
    }

    /// Waits for `needle` in the serial output after the previous match and
    /// returns the output up to and including it. Panics on timeout with the
    /// tail of the log.
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        match self.try_expect(needle, timeout) {
            Some(s) => s,
            None => panic!(
                "timed out after {timeout:?} waiting for {needle:?}\n{}",
                self.tail()
            ),
        }
    }

    /// Waits for `needle` anywhere in the whole output (ignoring the cursor).
    pub fn saw(&self, needle: &str, timeout: Duration) -> bool {
        let n = needle.as_bytes();
        self.wait_for(timeout, |b| find(b, n)).is_some()
    }

    /// Bytes of serial output so far: a `from` for [`Vm::saw_since`].
    pub fn output_len(&self) -> usize {
        self.shared.serial.lock().unwrap().buf.len()
    }

    /// Waits for `needle` in the output from byte `from` on (an
    /// [`Vm::output_len`] taken earlier), ignoring the cursor: what a
    /// command's run printed counts though [`Vm::sh`] moved the cursor
    /// past it, and what came before `from` does not.
    pub fn saw_since(&self, from: usize, needle: &str, timeout: Duration) -> bool {
        let n = needle.as_bytes();
        self.wait_for(timeout, |b| find(b.get(from..)?, n))
            .is_some()
    }

    /// Types raw text into the serial console.
    pub fn send(&mut self, text: &str) {
        if let Some(i) = self.stdin.as_mut() {
            let _ = i.write_all(text.as_bytes());
            let _ = i.flush();
        }
    }

    fn next_marker(&mut self) -> u32 {
        self.marker += 1;
        self.marker
    }

    /// Waits until a shell answers on the console (the console shell unit or
    /// the rescue shell), probing once a second, and widens its terminal so
    /// ash does not wrap long command lines.
    pub fn wait_shell(&mut self, timeout: Duration) {
        if self.shell_ready {
            return;
        }
        let deadline = Instant::now() + timeout;
        // Type nothing before a shell has the console open: bytes sent
        // earlier fill the PL011 receive FIFO while the port is closed, and
        // when the port opens the kernel clears the pending receive
        // interrupt; QEMU then never raises another one (its FIFO is full)
        // and the console input stays dead for the whole boot.
        if !self.saw(SHELL_BANNER, timeout) {
            panic!(
                "no shell started on the console within {timeout:?}\n{}",
                self.tail()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
        let first = self.marker + 1;
        loop {
            let m = self.next_marker();
            // Output "@@R<m>@@"; the echo reads "@@R""<m>@@", so it never matches.
            self.send(&format!(
                "stty cols 1000 2>/dev/null; echo \"@@R\"\"{m}@@\"\n"
            ));
            let found = self.wait_for(Duration::from_millis(2000), |b| {
                (first..=m).find_map(|k| find(b, format!("@@R{k}@@").as_bytes()).map(|_| 0))
            });
            if found.is_some() {
                break;
            }
            if Instant::now() >= deadline || self.exited() {
                panic!(
                    "no shell answered on the console within {timeout:?}\n{}",
                    self.tail()
                );
            }
        }
        // Let any queued probes run, then sync on one last marker.
        self.shell_ready = true;
        let _ = self.sh_rc("true", Duration::from_secs(10));
    }

    /// Runs `cmd` in the console shell and returns (output, exit status),
    /// with kernel log lines and PID 1 status lines that the console
    /// interleaves removed. Panics on timeout.
    pub fn sh_rc(&mut self, cmd: &str, timeout: Duration) -> (String, i32) {
        let (raw, rc) = self.sh_raw_rc(cmd, timeout);
        (clean(&raw), rc)
    }

    /// Runs `cmd` in the console shell and returns its output (cleaned as
    /// in [`Vm::sh_rc`]).
    pub fn sh(&mut self, cmd: &str, timeout: Duration) -> String {
        self.sh_rc(cmd, timeout).0
    }

    /// Output exactly as the console showed it (only `\r` removed).
    pub fn sh_raw_rc(&mut self, cmd: &str, timeout: Duration) -> (String, i32) {
        if !self.shell_ready {
            self.wait_shell(Duration::from_secs(60));
        }
        assert!(!cmd.contains('\n'), "one command line at a time");
        let m = self.next_marker();
        let start = format!("@@S{m}@@");
        let end_pfx = format!("@@E{m}:");
        self.send(&format!(
            "echo \"@@S\"\"{m}@@\"; {cmd} ; echo \"@@E\"\"{m}:$?@@\"\n"
        ));
        let (sb, eb) = (start.as_bytes().to_vec(), end_pfx.as_bytes().to_vec());
        let from = self.cursor;
        let found = self.wait_for(timeout, |b| {
            let b = &b[from.min(b.len())..];
            // Serial output has \r\n; compare on a \r-free view lazily.
            let s = strip_cr(b);
            let si = output_start(&s, &sb)?;
            let ei = find(&s[si..], &eb)? + si;
            let rest = &s[ei + eb.len()..];
            find(rest, b"@@").map(|_| b.len())
        });
        if found.is_none() {
            panic!(
                "timed out after {timeout:?} running {cmd:?}\n{}",
                self.tail()
            );
        }
        let buf = strip_cr(&self.shared.serial.lock().unwrap().buf[from..]);
        let si = output_start(&buf, &sb).unwrap();
        let ei = find(&buf[si..], &eb).unwrap() + si;
        let rest = &buf[ei + eb.len()..];
        let close = find(rest, b"@@").unwrap();
        let rc: i32 = String::from_utf8_lossy(&rest[..close])
            .trim()
            .parse()
            .unwrap_or(-1);
        // Advance past the end marker only, so later expects still see
        // whatever the console printed after it.
        let consumed_raw = {
            let b = &self.shared.serial.lock().unwrap().buf[from..];
            let mut seen = 0usize;
            let target = ei + eb.len() + close + 2;
            let mut idx = 0usize;
            while idx < b.len() && seen < target {
                if b[idx] != b'\r' {
                    seen += 1;
                }
                idx += 1;
            }
            idx
        };
        self.cursor = from + consumed_raw;
        (String::from_utf8_lossy(&buf[si..ei]).into_owned(), rc)
    }

    /// `initctl status`, parsed (header skipped; lines that do not look like
    /// a unit line are ignored).
    pub fn status(&mut self) -> Vec<UnitStatus> {
        let out = self.sh("initctl status", Duration::from_secs(20));
        parse_status(&out)
    }

    /// Status of one unit from `initctl status`, if listed.
    pub fn unit(&mut self, name: &str) -> Option<UnitStatus> {
        self.status().into_iter().find(|u| u.name == name)
    }

    /// Polls `initctl status` until every named unit is in one of `states`;
    /// returns the last status. Panics on timeout.
    pub fn wait_states(
        &mut self,
        want: &[(&str, &[&str])],
        timeout: Duration,
    ) -> HashMap<String, UnitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let st: HashMap<String, UnitStatus> = self
                .status()
                .into_iter()
                .map(|u| (u.name.clone(), u))
                .collect();
            let ok = want.iter().all(|(n, states)| {
                st.get(*n)
                    .is_some_and(|u| states.contains(&u.state.as_str()))
            });
            if ok {
                return st;
            }
            if Instant::now() >= deadline {
                panic!(
                    "units did not reach {want:?} within {timeout:?}; last status: {st:#?}\n{}",
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Whether QEMU has ended.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for QEMU to end (e.g. after `poweroff`); None on timeout.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                // Let the reader thread drain the pipe (returns at EOF).
                let _ = self.wait_for(Duration::from_secs(5), |_| None);
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A fresh copy of the disk-root image `build/rootfs.ext4` for one test,
/// `target/boot-disk/<name>.ext4` (sparse): the test writes to it, boots
/// from it again, and checks it with `e2fsck -fn`.
pub fn disk_copy(name: &str) -> PathBuf {
    let src = repo_root().join("build/rootfs.ext4");
    assert!(
        src.exists(),
        "{} is missing: run tests/run (or rootfs/build) first",
        src.display()
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let dir = target.join("boot-disk");
    std::fs::create_dir_all(&dir).expect("create boot-disk dir");
    let dst = dir.join(format!("{name}.ext4"));
    let st = Command::new("cp")
        .arg("--sparse=always")
        .arg(&src)
        .arg(&dst)
        .status()
        .expect("run cp");
    assert!(st.success(), "cp {} {}", src.display(), dst.display());
    dst
}

/// `e2fsck -fn` of a disk image: (clean, its report).
pub fn fsck(disk: &Path) -> (bool, String) {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(disk)
        .output()
        .expect("run e2fsck (e2fsprogs)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// File type bits of a mode for [`Vm::boot_with_files`] and
/// [`initrd_with_files`]: with `S_IFIFO` the entry is a FIFO, with
/// `S_IFDIR` a directory (contents ignored), with `S_IFLNK` a symbolic
/// link to the contents; without any, a regular file.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFIFO: u32 = 0o010000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;

/// Where [`Vm::boot_disk_with`] can have QEMU's HMP monitor, for one test:
/// `target/boot-logs/<name>.mon`, and the QEMU arguments that put it there
/// (the harness itself runs `-monitor none`; this adds one monitor).
pub fn monitor_socket(name: &str) -> (PathBuf, Vec<String>) {
    std::fs::create_dir_all(log_dir()).expect("create boot-logs dir");
    let path = log_dir().join(format!("{name}.mon"));
    let _ = std::fs::remove_file(&path);
    let arg = format!("unix:{},server=on,wait=off", path.display());
    (path, vec!["-monitor".into(), arg])
}

/// Sends one HMP command (`sendkey ctrl-alt-delete`) to the monitor at
/// `path` and returns what the monitor printed until its next prompt.
pub fn hmp(path: &Path, cmd: &str) -> String {
    use std::os::unix::net::UnixStream;
    let mut s = UnixStream::connect(path)
        .unwrap_or_else(|e| panic!("connect to the QEMU monitor {}: {e}", path.display()));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 1024];
    let mut read_prompt = |s: &mut UnixStream, got: &mut Vec<u8>| {
        let from = got.len();
        while !got[from..].windows(7).any(|w| w == b"(qemu) ") {
            match s.read(&mut b) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&b[..n]),
            }
        }
    };
    read_prompt(&mut s, &mut got);
    let start = got.len();
    s.write_all(format!("{cmd}\n").as_bytes()).unwrap();
    read_prompt(&mut s, &mut got);
    String::from_utf8_lossy(&got[start..]).into_owned()
}

/// Writes `target/boot-initrd/<name>.cpio.gz`: `base` followed by a gzip'd
/// newc cpio of `files` (made by `cpio -o -H newc` from a staging
/// directory, owned by root, directories first). A mode may carry a file
/// type (`S_IFIFO`, `S_IFDIR`, `S_IFLNK`).
pub fn initrd_with_files(base: &Path, name: &str, files: &[(&str, &[u8], u32)]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    let dir = target.join("boot-initrd");
    let stage = dir.join(format!("{name}.d"));
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage).expect("create initrd staging dir");
    for (path, contents, mode) in files {
        let rel = path.trim_start_matches('/');
        assert!(
            !rel.is_empty() && !rel.split('/').any(|c| c == ".." || c.is_empty()),
            "bad image path {path:?}"
        );
        let p = stage.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create staging subdir");
        }
        match mode & S_IFMT {
            S_IFIFO => {
                let st = Command::new("mkfifo").arg(&p).status().expect("run mkfifo");
                assert!(st.success(), "mkfifo {}", p.display());
            }
            S_IFDIR => std::fs::create_dir_all(&p).expect("create staged directory"),
            S_IFLNK => {
                let target = std::str::from_utf8(contents).expect("link target is UTF-8");
                std::os::unix::fs::symlink(target, &p).expect("create staged link");
                continue;
            }
            _ => std::fs::write(&p, contents).expect("write staged file"),
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(*mode & 0o7777))
            .expect("chmod staged file");
    }
    // Directories the archive creates get the usual 0755.
    let mut dirs = vec![stage.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("read staging dir").flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o755));
                dirs.push(e.path());
            }
        }
    }
    let extra = dir.join(format!("{name}.extra.cpio.gz"));
    let st = Command::new("sh")
        .arg("-c")
        .arg("set -e; cd \"$1\"; find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0 | gzip -9n > \"$2\"")
        .arg("sh")
        .arg(&stage)
        .arg(&extra)
        .status()
        .expect("run cpio (run scripts/setup-host)");
    assert!(st.success(), "cpio of the extra files failed: {st}");
    let out = dir.join(format!("{name}.cpio.gz"));
    let mut all = std::fs::read(base).expect("read the shared initramfs");
    all.extend(std::fs::read(&extra).expect("read the extra cpio"));
    std::fs::write(&out, all).expect("write the per-test initrd");
    out
}

impl Drop for Vm {
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Reads a `mark` file written by wren-testkit: (text, pid, millis) per line.
pub fn parse_marks(s: &str) -> Vec<(String, u32, u64)> {
    s.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let t = w.next()?.to_string();
            let p = w.next()?.parse().ok()?;
            let ms = w.next()?.parse().ok()?;
            if w.next().is_some() {
                return None;
            }
            Some((t, p, ms))
        })
        .collect()
}

/// Parses `initctl status` output.
pub fn parse_status(out: &str) -> Vec<UnitStatus> {
    const STATES: &[&str] = &[
        "starting", "running", "stopping", "stopped", "exited", "backoff", "failed",
    ];
    out.lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() < 5 || !STATES.contains(&w[1]) {
                return None;
            }
            Some(UnitStatus {
                name: w[0].to_string(),
                state: w[1].to_string(),
                pid: w[2].parse().ok(),
                restarts: w[3].parse().ok()?,
                memory: w[4].to_string(),
                uptime: w.get(5).map(|s| s.to_string()).unwrap_or_default(),
            })
        })
        .collect()
}

/// Where a command's output begins: after the line of its start marker.
/// A console line the kernel printed between the marker and the shell's
/// newline (it can: the tty writes "\r\n" apart) is skipped with it; the
/// marker without its newline yet is no start.
fn output_start(buf: &[u8], marker: &[u8]) -> Option<usize> {
    let mut at = find(buf, marker)? + marker.len();
    loop {
        let rest = buf.get(at..)?;
        if rest.first() == Some(&b'\n') {
            return Some(at + 1);
        }
        if !is_console_noise(&String::from_utf8_lossy(rest)) {
            return None;
        }
        at += find(rest, b"\n")? + 1;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn strip_cr(b: &[u8]) -> Vec<u8> {
    b.iter().copied().filter(|&c| c != b'\r').collect()
}

/// Removes what the console interleaves with a command's output: ANSI
/// escapes (ash's cursor query), kernel log lines `[   1.234567] ...` and
/// PID 1 status lines `[  OK  ] ...`, `[FAILED] ...`, `[ STOP ] ...`,
/// `[ INFO ] ...`, `[ WARN ] ...`, `[ SHED ] ...`, even when they land in
/// the middle of a line of output.
pub fn clean(s: &str) -> String {
    let s = strip_ansi(s);
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find('[') {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        if is_console_noise(tail) {
            match tail.find('\n') {
                Some(nl) => rest = &tail[nl + 1..],
                None => rest = "",
            }
        } else {
            out.push('[');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

fn is_console_noise(t: &str) -> bool {
    const TAGS: [&str; 6] = [
        "[  OK  ] ",
        "[FAILED] ",
        "[ STOP ] ",
        "[ INFO ] ",
        "[ WARN ] ",
        "[ SHED ] ",
    ];
    for tag in TAGS {
        if t.starts_with(tag) {
            return true;
        }
    }
    // "[" spaces digits "." 6 digits "] "
    let b = t.as_bytes();
    let mut i = 1;
    while i < b.len() && b[i] == b' ' {
        i += 1;
    }
    let d0 = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if i == d0 || i >= b.len() || b[i] != b'.' {
        return false;
    }
    i += 1;
    let f0 = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    i - f0 == 6 && b.get(i) == Some(&b']')
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        if c == '\x1b' {
            if it.peek() == Some(&'[') {
                it.next();
                for c in it.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Index of the first occurrence of `needle` in `hay`, for ordering
/// assertions on console output.
pub fn pos(hay: &str, needle: &str) -> Option<usize> {
    hay.find(needle)
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The start marker's line may have a console line glued to it before
    /// its newline: the output begins after both.
    #[test]
    fn output_starts_after_the_markers_line_and_any_glued_console_line() {
        let plain = b"echo x\n@@S2@@\nout\n@@E2:0@@";
        assert_eq!(output_start(plain, b"@@S2@@"), Some(14));
        let glued = b"@@S2@@[    3.797932] wren: 6 of 6 units up\n\nout\n@@E2:0@@";
        let at = output_start(glued, b"@@S2@@").unwrap();
        assert_eq!(&glued[at..at + 4], b"out\n");
        // Not there yet, or not a marker line: no start.
        assert_eq!(output_start(b"@@S2@@", b"@@S2@@"), None);
        assert_eq!(output_start(b"@@S2@@[    3.7", b"@@S2@@"), None);
        assert_eq!(output_start(b"@@S2@@x\n", b"@@S2@@"), None);
    }

    #[test]
    fn clean_removes_interleaved_console_lines() {
        let s = "a\nbc[    1.234567] wren: hello\ndef\n[  OK  ] x: running (pid 5)\n\x1b[6nz\n[not noise]\n";
        assert_eq!(clean(s), "a\nbcdef\nz\n[not noise]\n");
        // A pressure restart's line before a command's output (a boot
        // test read it as the output).
        let s = "[ WARN ] thrash: memory pressure over 10% in 1000ms (avg10 1.79%): restarting\noom_kill 0\n";
        assert_eq!(clean(s), "oom_kill 0\n");
    }

    #[test]
    fn parses_status_lines() {
        let out = "NAME STATE PID RESTARTS MEMORY UPTIME\nsh running 12 0 1.2M/max 3s\nlo exited - 0 0/max -\ngarbage\n";
        let st = parse_status(out);
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].pid, Some(12));
        assert_eq!(st[1].state, "exited");
        assert_eq!(st[1].pid, None);
    }

    #[test]
    fn extra_files_are_appended_as_a_cpio_with_their_directories() {
        let dir = std::env::temp_dir().join(format!("wren-initrd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = dir.join("base.cpio.gz");
        std::fs::write(&base, b"BASE").unwrap();
        let out = initrd_with_files(
            &base,
            "harness_selftest",
            &[
                ("/etc/sysctl.d/10-a.conf", b"vm.swappiness = 1\n", 0o644),
                ("/etc/sysctl.conf", b"x = 1\n", 0o600),
            ],
        );
        let all = std::fs::read(&out).unwrap();
        assert!(all.starts_with(b"BASE"));
        std::fs::write(dir.join("extra.gz"), &all[4..]).unwrap();
        let list = Command::new("sh")
            .arg("-c")
            .arg("gzip -dc \"$1\" | cpio --quiet -itv")
            .arg("sh")
            .arg(dir.join("extra.gz"))
            .output()
            .unwrap();
        assert!(list.status.success());
        let list = String::from_utf8(list.stdout).unwrap();
        let names: Vec<&str> = list
            .lines()
            .filter_map(|l| l.split_whitespace().last())
            .collect();
        assert_eq!(
            names,
            [
                "etc",
                "etc/sysctl.conf",
                "etc/sysctl.d",
                "etc/sysctl.d/10-a.conf"
            ],
            "{list}"
        );
        assert!(list.lines().all(|l| l.contains(" root ")), "{list}");
        assert!(
            list.lines().nth(1).unwrap().starts_with("-rw-------"),
            "{list}"
        );
        assert!(
            list.lines().next().unwrap().starts_with("drwxr-xr-x"),
            "{list}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn parses_marks() {
        let m = parse_marks("a 12 1000\nbad\nb 13 1200\n");
        assert_eq!(m, vec![("a".into(), 12, 1000), ("b".into(), 13, 1200)]);
    }
}
