//! Boot tests: the real kernel in QEMU aarch64 with wren as PID 1, observed
//! through the serial console. One binary so `--test-threads=2` keeps two
//! VMs busy. Scenario fixtures: tests/units/<scenario>/ (image: /test/...).
//! Serial logs: target/boot-logs/<test>.log.

mod alloc;
mod backoff;
mod broken;
mod confine;
mod console;
mod degrade;
mod demo;
mod disk;
mod disk_data;
mod disk_degrade;
mod disk_root;
mod fair;
mod faults;
mod gate;
mod idle;
mod initctl_abuse;
mod initctl_common;
mod initctl_edit;
mod initctl_json;
mod initctl_log;
mod initctl_ops;
mod initctl_reload;
mod initctl_status;
mod kernel_gaps;
mod limits_bomb;
mod limits_low;
mod limits_oom;
mod logsize;
mod memory;
mod metrics;
mod nested;
mod notify;
mod ns;
mod ns_net;
mod ns_root;
mod ns_user;
mod oci;
mod oneshot;
mod order;
mod panic_abort;
mod pressure;
mod reap;
mod reexec;
mod reload_faults;
mod rescue;
mod restart;
mod scale;
mod short;
mod stop;
mod sysctl;
mod top;
mod watchdog;

use std::time::{Duration, Instant};
use wren_boot_tests::{parse_marks, Vm};

/// Time for the kernel to boot and the console shell to answer.
pub const BOOT: Duration = Duration::from_secs(90);
/// Time for one shell command.
pub const CMD: Duration = Duration::from_secs(20);

pub fn boot(scenario: &str) -> Vm {
    let mut vm = Vm::boot(scenario, "");
    vm.wait_shell(BOOT);
    vm
}

/// Lines of a wren-testkit mark file in the guest: (text, pid, millis).
pub fn marks(vm: &mut Vm, file: &str) -> Vec<(String, u32, u64)> {
    let out = vm.sh(&format!("cat {file} 2>/dev/null"), CMD);
    parse_marks(&out)
}

pub fn mark<'a>(m: &'a [(String, u32, u64)], text: &str) -> Option<&'a (String, u32, u64)> {
    m.iter().find(|(t, _, _)| t == text)
}

/// Polls a mark file until `pred` holds; panics after `timeout`.
pub fn wait_marks(
    vm: &mut Vm,
    file: &str,
    timeout: Duration,
    pred: impl Fn(&[(String, u32, u64)]) -> bool,
) -> Vec<(String, u32, u64)> {
    let deadline = Instant::now() + timeout;
    loop {
        let m = marks(vm, file);
        if pred(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "{file} did not reach the expected marks within {timeout:?}: {m:?} (log: {})",
            vm.log_path.display()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Asserts that `needles` occur in the console output in this order.
pub fn assert_in_order(out: &str, needles: &[&str]) {
    let mut last = 0usize;
    let mut prev = "";
    for n in needles {
        let p = out
            .find(n)
            .unwrap_or_else(|| panic!("{n:?} not in the console output"));
        assert!(p >= last, "{n:?} came before {prev:?} on the console");
        last = p;
        prev = n;
    }
}

/// Waits up to `timeout` for QEMU to end after a shutdown asked for when
/// the console output was `before` long, and asserts that the kernel
/// ended it as `how` says ("reboot: Power down", "reboot: Restarting
/// system"), with no panic since. QEMU's exit status cannot tell: under
/// `-no-reboot` it exits 0 just the same when PID 1 dies (`panic=-1`).
pub fn assert_shut_down(vm: &mut Vm, before: usize, how: &str, timeout: Duration) {
    let st = vm.wait_exit(timeout).unwrap_or_else(|| {
        panic!(
            "VM still running {timeout:?} after the shutdown\n{}",
            vm.tail()
        )
    });
    assert!(st.success(), "qemu exit {st:?}");
    let out = vm.output();
    let out = &out[before..];
    assert!(
        !out.contains("Kernel panic"),
        "kernel panicked at shutdown\n{}",
        vm.tail()
    );
    assert!(out.contains(how), "no {how:?} at shutdown\n{}", vm.tail());
}

/// PID 1 wakes zero times in 10 s: its voluntary context switches (each
/// return from epoll_wait is one) do not move.
pub fn assert_pid1_idle(vm: &mut Vm) {
    let out = vm.sh(
        "a=$(grep '^voluntary_ctxt_switches' /proc/1/status); sleep 10; \
         b=$(grep '^voluntary_ctxt_switches' /proc/1/status); echo \"$a|$b\"",
        CMD,
    );
    let (a, b) = out.trim().split_once('|').expect("two readings");
    assert!(a.starts_with("voluntary_ctxt_switches"), "{out:?}");
    assert_eq!(a, b, "PID 1 woke up while the system was idle");
}
