//! Soak run (not part of CI; `tests/soak`, docs/field.md#soak): boots the
//! test image with the `soak` scenario (four units that die at once and are
//! restarted after 0 to 8 ms, a steady unit, the console shell) and drives
//! it through RESTARTS automatic restarts (10,000 unless `SOAK_RESTARTS`
//! says otherwise), with `initctl` traffic (status, status NAME, log NAME,
//! metrics, cat NAME) in every round and an `initctl reload` every
//! `RELOAD_EVERY` rounds, most of them with a real change (a unit changed,
//! added or removed).
//!
//! At the first thousand restarts and every thousand after it, it samples
//! PID 1's `Anonymous` (/proc/1/smaps_rollup), its open fds (/proc/1/fd),
//! its heap's live bytes and the loop wake-ups that allocated. PID 1
//! counts its allocations and the bytes they hold and, booted with
//! `wren.debug`, logs `N allocation(s) in one wake-up (tokens [...]), heap
//! B bytes live` for each such wake-up; the soak reads and clears the
//! kernel log at every sample. Wake-ups whose tokens include the control
//! socket's (3) are operator connections, reloads among them, which may
//! allocate; any other is a loop wake-up that allocated. The heap's bytes
//! are read from a reload with no change made at each sample, with the
//! crashing units stopped, so that each reading finds PID 1 in the same
//! state: the same units, the same one operator connection.
//!
//! It prints a table and exits 1 if the heap's live bytes at the last
//! sample are above every reading of the first half of the run (after the
//! first sample) by more than `HEAP_SLACK`, if `Anonymous`'s lowest
//! sample of the second half is above the first half's highest (the first
//! sample left out of both) by more than `ANON_SLACK_KB`, if any loop wake-up
//! allocated, if the fd count grew, or if an `initctl` command or reload
//! failed.

use std::time::{Duration, Instant};
use wren_boot_tests::Vm;

/// Time for one shell command (rounds run several `initctl`s).
const CMD: Duration = Duration::from_secs(60);
/// Restarts between two samples.
const SAMPLE_EVERY: u64 = 1000;
/// One reload every this many traffic rounds.
const RELOAD_EVERY: u64 = 4;
/// How many bytes the heap's live bytes may rise. They are exact, and
/// each reading is taken in the same state, so a rise is a leak; the
/// slack leaves room for a table that reaches a new high-water mark once
/// (a `Vec` whose capacity doubles), not for a byte a restart (more than
/// 4,000 bytes between the first half and the last sample of 10,000
/// restarts).
const HEAP_SLACK: u64 = 1024;
/// How much `Anonymous`' lowest sample of the second half of the run may
/// be above the highest of the first, the first sample (the heap still
/// finding its size) left out: a leak raises every later sample, noise
/// only some (a median of two samples is their higher, and failed a run
/// with no trend). A coarse guard, for what is not on the heap (stacks, mappings):
/// the kernel counts whole 4 KiB pages, and musl's allocator gives pages
/// back and takes them again as a reload's table or an operator's
/// connection comes and goes, so a sample lands a few pages high or low
/// (a 30,000-restart run sat between 104 and 128 kB from its 3,000th
/// restart to its last, with no trend).
const ANON_SLACK_KB: u64 = 16;
/// fd readings per sample. A unit that runs (or is being spawned) holds
/// pipes, so the crashing units are stopped while PID 1's fds are counted
/// (and started again after); the readings must then agree.
const FD_READINGS: u32 = 10;

/// The `initctl` traffic of one round; output is discarded, a nonzero exit
/// is reported.
const TRAFFIC: [&str; 7] = [
    "status crash1",
    "status steady",
    "log crash3",
    "log steady",
    "metrics",
    "cat crash2",
    "cat crash4",
];

/// The unit files the reloads write, in turn: a changed unit, a new unit,
/// and no change. Each change is undone by the next reload, so that every
/// sample sees the same set of units. The changed and added units run
/// (a crashing one would fail the health gate and be put back).
const STEADY: &str = "exec = /usr/bin/wren-testkit forever\\nnamespaces = none\\n";
const RELOADS: [(&str, &str, &str); 3] = [
    (
        "printf 'STEADYrestart_delay = 150ms\\n' > /test/soak/steady.unit",
        "printf 'STEADY' > /test/soak/steady.unit",
        "0 added, 1 changed, 0 removed",
    ),
    (
        "printf 'STEADY' > /test/soak/extra.unit",
        "rm /test/soak/extra.unit",
        "1 added, 0 changed, 0 removed",
    ),
    ("true", "true", "0 added, 0 changed, 0 removed"),
];
/// What undoing each change makes `initctl reload` print.
const UNDONE: [&str; 3] = [
    "0 added, 1 changed, 0 removed",
    "0 added, 0 changed, 1 removed",
    "0 added, 0 changed, 0 removed",
];
/// The units that crash, stopped while PID 1's fds are counted.
const CRASHERS: &str = "crash1 crash2 crash3 crash4 crash5";

const WAKEUP: &str = "allocation(s) in one wake-up";

struct Sample {
    restarts: u64,
    secs: u64,
    anon_kb: u64,
    /// The heap's live bytes in the sample's reload.
    heap: u64,
    fd_min: u64,
    fd_max: u64,
    /// Allocating wake-ups since the previous sample: operator, loop.
    op_wakeups: u64,
    loop_wakeups: u64,
    reloads: u64,
    /// Crashing units that did not stop for the fd count.
    failed_stops: Vec<String>,
}

fn main() {
    let target: u64 = std::env::var("SOAK_RESTARTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    // The debug log carries the allocating wake-ups; a large kernel log
    // buffer keeps a thousand restarts' worth of debug records between
    // two reads.
    let mut vm = Vm::boot("soak", "wren.debug log_buf_len=8M");
    vm.wait_shell(Duration::from_secs(120));
    eprintln!("soak: booted; serial log {}", vm.log_path.display());
    // Boot allocates; count from here.
    vm.sh("dmesg -c >/dev/null", CMD);
    let started = Instant::now();

    let mut total: u64 = 0;
    let mut rounds: u64 = 0;
    let mut reloads: u64 = 0;
    let mut reloads_since: u64 = 0;
    let mut failures: Vec<String> = Vec::new();
    let mut loop_lines: Vec<String> = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut next = SAMPLE_EVERY;

    while total < target || samples.last().is_none_or(|s| s.restarts < target) {
        rounds += 1;
        if rounds.is_multiple_of(RELOAD_EVERY) {
            let i = (reloads % RELOADS.len() as u64) as usize;
            let (change, undo, want) = RELOADS[i];
            for (cmd, want) in [(change, want), (undo, UNDONE[i])] {
                let cmd = cmd.replace("STEADY", STEADY);
                reloads += 1;
                reloads_since += 1;
                // PID 1's status lines share the console with the shell
                // and can cut into a command's output there, so outputs go
                // to files and the guest prints the verdict in one write.
                // PID 1's console is non-blocking: a line of its that was
                // written in part can end just before the verdict, on its
                // line (`[FAILED] crash3: exit 2, restartreload 0 1`).
                let (out, _) = vm.sh_raw_rc(
                    &format!(
                        "{cmd} && initctl reload > /run/soak-reload 2>&1; echo \"reload $? $(grep -c '{want}' /run/soak-reload)\"; cat /run/soak-reload"
                    ),
                    CMD,
                );
                if !out.lines().any(|l| l.trim_end().ends_with("reload 0 1")) {
                    failures.push(format!("reload after `{cmd}` (want `{want}`): {out}"));
                }
            }
        }
        let traffic: String = TRAFFIC
            .iter()
            .map(|c| format!("initctl {c} >/dev/null 2>&1 || echo \"FAIL {c}: $?\"; "))
            .collect();
        // Raw, not cleaned of PID 1's console lines: a line of its cut
        // short (its console is non-blocking) runs on into the shell's
        // (`[  OK  ] crash2: runnirestarts 1076`), and the cleaning drops
        // such a line whole.
        let (out, _) = vm.sh_raw_rc(
            &format!(
                "{traffic}initctl status > /run/soak-status; \
                 echo \"restarts $(awk '/^crash/ {{ n += $4 }} END {{ print n + 0 }}' /run/soak-status)\""
            ),
            CMD,
        );
        for l in out.lines().filter_map(|l| l.find("FAIL ").map(|i| &l[i..])) {
            failures.push(l.to_string());
        }
        // The crashing units are never removed, so their RESTARTS only
        // grow; their sum is the soak's count.
        // Anywhere in its line: a console line of PID 1's may have come
        // out in the middle of it (`[FAIrestarts 1662`).
        match out
            .lines()
            .find_map(|l| l.rsplit_once("restarts ").map(|(_, n)| n.trim()))
            .and_then(|n| n.parse::<u64>().ok())
        {
            Some(n) if n >= total => total = n,
            _ => failures.push(format!("round {rounds}: no restart count: {out}")),
        }
        if total >= next || total >= target {
            let s = sample(&mut vm, total, started, reloads_since, &mut loop_lines);
            reloads_since = 0;
            failures.extend(s.failed_stops.iter().cloned());
            eprintln!(
                "soak: {} restarts, Anonymous {} kB, heap {} bytes, fds {}..{}, allocating wake-ups {} operator / {} loop",
                s.restarts, s.anon_kb, s.heap, s.fd_min, s.fd_max, s.op_wakeups, s.loop_wakeups
            );
            samples.push(s);
            while next <= total {
                next += SAMPLE_EVERY;
            }
        }
    }

    // Stops QEMU now: `process::exit` below would skip the destructor.
    let log_path = vm.log_path.clone();
    drop(vm);

    println!(
        "soak: {total} restarts in {} s, {rounds} rounds of initctl traffic ({} commands each), {reloads} reloads",
        started.elapsed().as_secs(),
        TRAFFIC.len() + 1
    );
    println!(
        "{:>9} {:>6} {:>14} {:>10} {:>8} {:>8} {:>8} {:>12} {:>10}",
        "RESTARTS",
        "SECS",
        "ANONYMOUS_KB",
        "HEAP_B",
        "FDS_MIN",
        "FDS_MAX",
        "RELOADS",
        "WAKE_OP",
        "WAKE_LOOP"
    );
    for s in &samples {
        println!(
            "{:>9} {:>6} {:>14} {:>10} {:>8} {:>8} {:>8} {:>12} {:>10}",
            s.restarts,
            s.secs,
            s.anon_kb,
            s.heap,
            s.fd_min,
            s.fd_max,
            s.reloads,
            s.op_wakeups,
            s.loop_wakeups
        );
    }
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        eprintln!("soak: FAIL: no sample taken");
        std::process::exit(1);
    };
    // The first sample is left out of both verdicts: the heap and the
    // pages it sits on are still finding their size then.
    let settled = samples
        .get(1..)
        .filter(|s| !s.is_empty())
        .unwrap_or(&samples);
    let (early, late) = settled.split_at(settled.len().div_ceil(2));
    let heap_early = early.iter().map(|s| s.heap).max().unwrap_or(0);
    if last.heap > heap_early + HEAP_SLACK {
        failures.push(format!(
            "the heap's live bytes grew from at most {heap_early} (first half) to {} at the last sample, slack {HEAP_SLACK}",
            last.heap
        ));
    }
    let early = early.iter().map(|s| s.anon_kb).max().unwrap_or(0);
    let late = late.iter().map(|s| s.anon_kb).min().unwrap_or(0);
    if late > early + ANON_SLACK_KB {
        failures.push(format!(
            "Anonymous grew: every sample of the second half at least {late} kB, the first half at most {early} kB, slack {ANON_SLACK_KB} kB"
        ));
    }
    if last.fd_min > first.fd_min || last.fd_max > first.fd_max {
        failures.push(format!(
            "fds grew from {}..{} at {} restarts to {}..{} at {}",
            first.fd_min, first.fd_max, first.restarts, last.fd_min, last.fd_max, last.restarts
        ));
    }
    let loops: u64 = samples.iter().map(|s| s.loop_wakeups).sum();
    if loops > 0 {
        failures.push(format!(
            "{loops} loop wake-up(s) allocated outside reload/operator, e.g.:\n{}",
            loop_lines.join("\n")
        ));
    }
    if failures.is_empty() {
        println!(
            "soak: PASS: heap {heap_early} -> {} bytes live (slack {HEAP_SLACK}), Anonymous {} -> {} kB, first half at most {early}, second at least {late} kB (slack {ANON_SLACK_KB} kB), fds {}..{} -> {}..{}, 0 loop wake-ups allocated",
            last.heap, first.anon_kb, last.anon_kb, first.fd_min, first.fd_max, last.fd_min, last.fd_max
        );
    } else {
        for f in failures.iter().take(30) {
            println!("soak: FAIL: {f}");
        }
        println!("soak: serial log {}", log_path.display());
        std::process::exit(1);
    }
}

/// One sample of PID 1, and the allocating wake-ups logged since the last
/// one (the kernel log is cleared as it is read).
fn sample(
    vm: &mut Vm,
    restarts: u64,
    started: Instant,
    reloads: u64,
    loop_lines: &mut Vec<String>,
) -> Sample {
    let cmd = format!(
        "echo soak-anon $(grep '^Anonymous:' /proc/1/smaps_rollup); \
         for u in {CRASHERS}; do initctl stop $u >/dev/null || echo \"FAIL stop $u\"; done; \
         i=0; while [ $i -lt {FD_READINGS} ]; do echo soak-fds $(ls /proc/1/fd | wc -l); i=$((i+1)); done; \
         initctl reload > /run/soak-reload 2>&1 || echo \"FAIL sample reload: $(cat /run/soak-reload)\"; \
         dmesg -c > /run/soak-kmsg; \
         echo soak-heap $(grep '{WAKEUP}' /run/soak-kmsg | grep -o 'heap [0-9]* bytes live' | tail -n 1); \
         for u in {CRASHERS}; do initctl start $u >/dev/null 2>&1; done; \
         echo soak-op $(grep '{WAKEUP}' /run/soak-kmsg | grep -c '(3, '); \
         echo soak-loop $(grep '{WAKEUP}' /run/soak-kmsg | grep -vc '(3, '); \
         grep '{WAKEUP}' /run/soak-kmsg | grep -v '(3, ' | head -n 5 | sed 's/^/soak-line /'"
    );
    // Raw, and each tag looked for anywhere in its line: see the traffic.
    let (out, _) = vm.sh_raw_rc(&cmd, CMD);
    let field = |tag: &str| -> Vec<u64> {
        out.lines()
            .filter_map(|l| l.find(tag).map(|i| &l[i + tag.len()..]))
            .filter_map(|r| r.split_whitespace().find_map(|w| w.parse().ok()))
            .collect()
    };
    let one = |tag: &str| {
        field(tag)
            .first()
            .copied()
            .unwrap_or_else(|| panic!("no `{tag}` in sample output:\n{out}"))
    };
    let fds = field("soak-fds ");
    for l in out
        .lines()
        .filter_map(|l| l.find("soak-line ").map(|i| &l[i + 10..]))
    {
        if loop_lines.len() < 20 {
            loop_lines.push(l.to_string());
        }
    }
    Sample {
        restarts,
        secs: started.elapsed().as_secs(),
        anon_kb: one("soak-anon Anonymous:"),
        heap: one("soak-heap heap "),
        fd_min: fds.iter().copied().min().unwrap_or(0),
        fd_max: fds.iter().copied().max().unwrap_or(0),
        op_wakeups: one("soak-op "),
        loop_wakeups: one("soak-loop "),
        reloads,
        failed_stops: out
            .lines()
            .filter_map(|l| l.find("FAIL ").map(|i| l[i..].to_string()))
            .collect(),
    }
}
