use crate::*;
use wren_boot_tests::pos;

const FIRST: &str = "# comment\n\
; comment too\n\
kernel.domainname = first\n\
vm.swappiness = 10\n\
kernel/printk_ratelimit = 7\n\
kernel.nosuchkey = 1\n\
kernel.pid_max = notanumber\n\
-kernel.alsonosuch = 1\n\
this line has no equals sign\n\
- kernel.pid_max = alsobad\n";
const SECOND: &str = "kernel.domainname = wrentest\n\
vm.swappiness=33\n\
kernel.printk = 8 4 1 7\n";
const MAIN: &str = "\n\
kernel.printk_ratelimit_burst = 17\n\
  ; an indented comment\n\
vm/nosuch/deeper = 2\n";

/// /etc/sysctl.d/*.conf in name order, then /etc/sysctl.conf, applied
/// before any unit starts: good lines land in /proc/sys, a later file
/// wins, each failure is logged once as FILE:LINE, `-` lines stay quiet,
/// and every unit still starts.
#[test]
fn sysctl_files_are_applied_at_boot() {
    let mut vm = Vm::boot_with_files(
        "sysctl",
        "",
        &[
            ("/etc/sysctl.d/10-first.conf", FIRST.as_bytes(), 0o644),
            ("/etc/sysctl.d/20-second.conf", SECOND.as_bytes(), 0o644),
            // Not *.conf: not applied.
            (
                "/etc/sysctl.d/30-skipped.conf.off",
                b"vm.swappiness = 99\n",
                0o644,
            ),
            ("/etc/sysctl.conf", MAIN.as_bytes(), 0o644),
            ("/etc/hostname", b"wrenbox\n", 0o644),
            // A directory named like a file: reported, skipped.
            (
                "/etc/sysctl.d/40-dir.conf/x",
                b"vm.swappiness = 98\n",
                0o644,
            ),
        ],
    );
    vm.wait_shell(BOOT);
    vm.wait_states(
        &[
            ("sh", &["running"]),
            ("svc", &["running"]),
            ("once", &["exited"]),
        ],
        Duration::from_secs(30),
    );
    let read = |vm: &mut Vm, key: &str| {
        vm.sh(&format!("cat /proc/sys/{key}"), CMD)
            .trim()
            .to_string()
    };
    assert_eq!(
        read(&mut vm, "kernel/domainname"),
        "wrentest",
        "later file wins"
    );
    assert_eq!(read(&mut vm, "vm/swappiness"), "33", "later file wins");
    assert_eq!(read(&mut vm, "kernel/printk_ratelimit"), "7");
    assert_eq!(read(&mut vm, "kernel/printk_ratelimit_burst"), "17");
    // Blanks inside a value are kept: four numbers.
    assert_eq!(read(&mut vm, "kernel/printk"), "8\t4\t1\t7");
    let pid_max: u64 = read(&mut vm, "kernel/pid_max")
        .parse()
        .expect("pid_max still a number");
    assert!(pid_max > 0);

    // Taken before the `dmesg` below, which echoes the lines too.
    let console = vm.output();
    // What PID 1 logged, from the kernel log in the guest.
    // Raw: vm.sh would drop the kernel-log lines this wants.
    let dmesg = vm.sh_raw_rc("dmesg | grep sysctl", CMD).0;
    let first = "/etc/sysctl.d/10-first.conf";
    let want = [
        format!("wren: sysctl: {first}:6: kernel.nosuchkey: unknown key"),
        format!("wren: sysctl: {first}:7: kernel.pid_max: cannot set: "),
        format!("wren: sysctl: {first}:9: expected `key = value`"),
        "wren: sysctl: /etc/sysctl.conf:4: vm/nosuch/deeper: unknown key".to_string(),
        "wren: sysctl: /etc/sysctl.d/40-dir.conf: not a regular file, skipped".to_string(),
        "wren: sysctl: 7 set, 5 failed".to_string(),
    ];
    for w in &want {
        assert_eq!(
            dmesg.matches(w.as_str()).count(),
            1,
            "{w:?} once in dmesg:\n{dmesg}"
        );
    }
    let reported = dmesg
        .lines()
        .filter(|l| l.contains("wren: sysctl: /"))
        .count();
    assert_eq!(reported, 5, "only the five failures are reported:\n{dmesg}");
    for quiet in [
        "alsonosuch",
        "alsobad",
        ":8:",
        ":10:",
        "20-second",
        "30-skipped",
    ] {
        assert!(!dmesg.contains(quiet), "{quiet:?} reported:\n{dmesg}");
    }
    // The console showed them too, before any unit started.
    for w in &want {
        assert!(console.contains(w.as_str()), "{w:?} not on the console");
    }
    let tuned = pos(&console, "wren: sysctl: 7 set").unwrap();
    for unit in ["svc", "once", "sh"] {
        let started = pos(&console, &format!("] {unit}: "))
            .unwrap_or_else(|| panic!("no status line for {unit}"));
        assert!(tuned < started, "sysctl after {unit} started");
    }

    // A re-exec replaces PID 1 in place: what was set since the boot
    // (the hostname, a sysctl) stays, not put back from /etc.
    assert_eq!(vm.sh("hostname", CMD).trim(), "wrenbox");
    vm.sh("hostname changed; echo 50 > /proc/sys/vm/swappiness", CMD);
    let (out, rc) = vm.sh_rc("initctl reexec", CMD);
    assert_eq!(rc, 0, "{out}");
    assert_eq!(vm.sh("hostname", CMD).trim(), "changed");
    assert_eq!(read(&mut vm, "vm/swappiness"), "50");
    let dmesg = vm.sh_raw_rc("dmesg | grep -c 'wren: sysctl: 7 set'", CMD).0;
    assert_eq!(dmesg.trim(), "1", "sysctl applied again at the re-exec");
}
