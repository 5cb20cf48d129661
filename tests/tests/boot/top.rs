//! `initctl top` on a real terminal emulator: QEMU runs inside a tmux
//! pane of 80x24 with the guest's serial console on it, keys are typed
//! with `tmux send-keys`, and the screen is read with `capture-pane`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use wren_boot_tests::{image, log_dir, BASE_CMDLINE, SHELL_BANNER};

use crate::metrics::SETTLED;
use crate::*;

/// A tmux server of our own (`-L`), killed on drop with QEMU in it.
struct Tmux {
    socket: String,
    log: PathBuf,
}

impl Tmux {
    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-f", "/dev/null", "-L", &self.socket]);
        c
    }

    fn start(scenario: &str) -> Tmux {
        let have = Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        assert!(
            have,
            "tmux missing: run scripts/setup-host (apt-get install tmux)"
        );
        let (kernel, initrd) = image();
        assert!(initrd.exists(), "boot image missing: run tests/run first");
        std::fs::create_dir_all(log_dir()).unwrap();
        let log = log_dir().join("top__tmux.log");
        let _ = std::fs::remove_file(&log);
        let cmdline = format!("{BASE_CMDLINE} wren.units=/test/{scenario}");
        let qemu = format!(
            "exec qemu-system-aarch64 -M virt -cpu cortex-a53 -smp 1 -m 256 \
             -nic none -display none -monitor none -no-reboot \
             -chardev stdio,id=s0,signal=off,logfile={} -serial chardev:s0 \
             -kernel {} -initrd {} -append '{cmdline}'",
            log.display(),
            kernel.display(),
            initrd.display()
        );
        let t = Tmux {
            socket: format!("wren-top-{}", std::process::id()),
            log,
        };
        let st = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-x",
                "80",
                "-y",
                "24",
                "-s",
                "vm",
                &qemu,
            ])
            .status()
            .expect("run tmux");
        assert!(st.success(), "tmux new-session failed");
        // The pane keeps its size even if a client attaches.
        let _ = t
            .cmd()
            .args(["set-option", "-g", "window-size", "manual"])
            .status();
        t
    }

    fn keys(&self, literal: &str) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", "vm", "-l", literal])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn enter(&self) {
        let st = self
            .cmd()
            .args(["send-keys", "-t", "vm", "Enter"])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn line(&self, text: &str) {
        self.keys(text);
        self.enter();
    }

    /// Types `text`, and presses Enter only once the shell has echoed all
    /// of it: a busy single-CPU guest under TCG can drop characters typed
    /// into the serial console, so a line that came out short is wiped
    /// (Ctrl-U) and typed again, three times at most.
    fn line_checked(&self, text: &str) {
        for _ in 0..3 {
            self.keys(text);
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                let screen = self.screen();
                let last = screen
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                if last.trim_end().ends_with(text) {
                    self.enter();
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = self.cmd().args(["send-keys", "-t", "vm", "C-u"]).status();
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!("the shell never echoed {text:?}:\n{}", self.screen());
    }

    /// The terminal's modes `stty` shows after the marker `since` (typed
    /// with its own end marker `@@T{tag}@@`), checked on: canonical
    /// input, echo and signals.
    fn modes_after(&self, since: &str, tag: &str) -> Vec<String> {
        self.line(&format!(
            "stty -a | grep -o -- '-*icanon\\|-*echo \\|-*isig' | tr '\\n' ' '; echo \"@@T\"\"{tag}@@\""
        ));
        let end = format!("@@T{tag}@@");
        self.wait_serial(&end, 1, CMD);
        let serial = self.serial();
        let tail = &serial[serial.rfind(since).unwrap()..];
        let after = &tail[..tail.find(&end).unwrap()];
        let modes: Vec<String> = after
            .lines()
            .last()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_string)
            .collect();
        for m in ["icanon", "echo", "isig"] {
            assert!(
                modes.iter().any(|x| x == m),
                "{m} off after {since}: {after:?}"
            );
        }
        modes
    }

    fn screen(&self) -> String {
        let o = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "vm"])
            .output()
            .unwrap();
        assert!(o.status.success(), "capture-pane failed");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Captures the pane until `ok` holds for it; panics after `timeout`.
    fn wait_screen(&self, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "screen not as expected within {timeout:?}:\n{s}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn serial(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until the serial log has `needle` `count` times.
    fn wait_serial(&self, needle: &str, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.serial().matches(needle).count() < count {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on the serial console within {timeout:?}; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// Sizes in `human_bytes` form (`512B`, `4.2M`, `180K`) back to bytes.
fn bytes(s: &str) -> Option<f64> {
    let (num, unit) = s.split_at(s.len().checked_sub(1)?);
    let m = match unit {
        "B" => 1.0,
        "K" => 1024.0,
        "M" => 1048576.0,
        "G" => 1073741824.0,
        _ => return None,
    };
    Some(num.parse::<f64>().ok()? * m)
}

/// The unit rows of a top screen: (name, memory column, uptime column).
fn rows(screen: &str) -> Vec<(String, String, String)> {
    let lines: Vec<&str> = screen.lines().collect();
    let head = lines
        .iter()
        .position(|l| l.starts_with("NAME "))
        .unwrap_or_else(|| panic!("no header on screen:\n{screen}"));
    lines[head + 1..]
        .iter()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(w.len(), 9, "row {l:?}");
            (w[0].to_string(), w[4].to_string(), w[7].to_string())
        })
        .collect()
}

#[test]
fn top_on_a_terminal_fits_updates_and_quits() {
    let t = Tmux::start("metrics");
    t.wait_serial(SHELL_BANNER, 1, BOOT);
    // Type nothing before the shell has the console open (see wait_shell).
    std::thread::sleep(Duration::from_millis(500));
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut n = 0;
    loop {
        n += 1;
        t.line(&format!("echo \"@@R\"\"{n}@@\""));
        let probe = Instant::now();
        let mut ok = false;
        while probe.elapsed() < Duration::from_secs(2) {
            if t.serial().contains("@@R")
                && (1..=n).any(|k| t.serial().contains(&format!("@@R{k}@@")))
            {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if ok {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no shell on the console:\n{}",
            t.screen()
        );
    }
    // Wait until every unit has settled (crashy and oomy give up).
    let states = SETTLED
        .iter()
        .map(|(n, s)| format!("{n}:{}", s[0]))
        .collect::<Vec<_>>()
        .join(" ");
    t.line_checked("stty rows 24 cols 80; dmesg -n 1");
    let script =
        std::fs::read_to_string(wren_boot_tests::repo_root().join("tests/units/metrics/settle.sh"))
            .unwrap();
    assert!(
        script.contains(&format!("want=\"{states}\"")),
        "settle.sh and SETTLED disagree"
    );
    t.line_checked("sh /test/metrics/settle.sh");
    // Wait for the answer itself, not a mere "@@D".
    let deadline = Instant::now() + Duration::from_secs(90);
    while !t.serial().contains("@@D1@@") && !t.serial().contains("@@D0@@") {
        assert!(Instant::now() < deadline, "no answer:\n{}", t.screen());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        t.serial().contains("@@D1@@"),
        "units did not settle:\n{}",
        t.screen()
    );

    t.line_checked("clear; initctl top -d 1");
    // A full frame (the last unit row drawn), then one that moved on.
    let full = |s: &str| {
        s.starts_with("wren top: ")
            && s.lines().filter(|l| !l.trim().is_empty()).count() >= 2 + SETTLED.len()
    };
    let first = t.wait_screen(Duration::from_secs(20), full);
    std::thread::sleep(Duration::from_millis(2500));
    let second = t.wait_screen(Duration::from_secs(15), |s| full(s) && s != first);
    for s in [&first, &second] {
        let lines: Vec<&str> = s.lines().collect();
        assert!(lines.len() <= 24, "{s}");
        assert!(
            lines[0].starts_with("wren top: 6 units, 3 running"),
            "the frame does not start at the top of the screen:\n{s}"
        );
        let r = rows(s);
        let names: BTreeSet<&str> = r.iter().map(|(n, _, _)| n.as_str()).collect();
        let want: BTreeSet<&str> = SETTLED.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, want, "{s}");
        // Sorted by memory, largest first ("-": no cgroup, counts as 0).
        let mem: Vec<f64> = r.iter().map(|(_, m, _)| bytes(m).unwrap_or(0.0)).collect();
        assert!(
            mem.windows(2).all(|w| w[0] >= w[1]),
            "not sorted by memory: {mem:?}\n{s}"
        );
        assert_eq!(r[0].0, "hog", "{s}");
    }
    assert_ne!(first, second, "the screen did not change");
    let up = |s: &str| rows(s).into_iter().find(|(n, _, _)| n == "idle").unwrap().2;
    assert_ne!(
        up(&first),
        up(&second),
        "uptime did not move:\n{first}\n{second}"
    );

    // q ends it; the shell is back with a sane terminal (echo, lines).
    t.keys("q");
    std::thread::sleep(Duration::from_millis(1000));
    t.line("echo \"@@O\"\"K@@\"; stty -a | grep -o -- '-*icanon\\|-*echo ' | tr '\\n' ' '; echo \"@@T\"\"T@@\"");
    t.wait_serial("@@TT@@", 1, CMD);
    let serial = t.serial();
    assert!(
        serial.contains("@@OK@@"),
        "no shell after q:\n{}",
        t.screen()
    );
    let tail = &serial[serial.rfind("@@OK@@").unwrap()..];
    assert!(
        tail.contains("icanon") && !tail.contains("-icanon"),
        "{tail}"
    );
    assert!(tail.contains("echo ") && !tail.contains("-echo "), "{tail}");
    t.line("echo ok");
    std::thread::sleep(Duration::from_millis(1500));
    let screen = t.screen();
    let lines: Vec<&str> = screen
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    let i = lines
        .iter()
        .rposition(|l| l.ends_with("echo ok"))
        .unwrap_or_else(|| panic!("typed line not echoed:\n{screen}"));
    assert_eq!(lines.get(i + 1), Some(&"ok"), "{screen}");

    // Ctrl-C ends it too (a byte in raw mode: the modes are restored).
    // Clear first, so the old frame on the screen is not taken for the new.
    t.line("clear");
    t.wait_screen(Duration::from_secs(10), |s| !s.contains("wren top: "));
    t.line_checked("initctl top -d 1; echo \"@@C\"\"C:$?@@\"");
    t.wait_screen(Duration::from_secs(20), |s| s.starts_with("wren top: "));
    let st = t
        .cmd()
        .args(["send-keys", "-t", "vm", "C-c"])
        .status()
        .unwrap();
    assert!(st.success());
    t.wait_serial("@@CC:0@@", 1, CMD);
    let modes = t.modes_after("@@CC:0@@", "2");
    assert!(
        !modes.iter().any(|m| m.starts_with('-')),
        "modes after Ctrl-C: {modes:?}"
    );
    // Killed (`timeout 60 initctl top`, a hang-up): the modes are
    // restored first, then the signal ends it as it would have (143).
    t.line("clear");
    t.wait_screen(Duration::from_secs(10), |s| !s.contains("wren top: "));
    t.line_checked("(sleep 3;kill $(pidof initctl))& initctl top -d 1;echo \"@@K\"\"K:$?@@\"");
    t.wait_serial("@@KK:143@@", 1, Duration::from_secs(30));
    t.modes_after("@@KK:143@@", "3");
    std::fs::write(
        log_dir().join("top__screens.txt"),
        format!("{first}\n----\n{second}\n----\n{screen}"),
    )
    .unwrap();
}
