use crate::*;
use wren_boot_tests::{parse_status, repo_root};

/// A shell command over a thousand units (a 16-page `initctl status`) on
/// a loaded host.
const SLOW: Duration = Duration::from_secs(180);

/// A unit of `sleep_units`: no namespaces, or (`WREN_SCALE_ISO=1`) like
/// `bench/inits`' wren-iso, the default namespaces and a `memory.max`.
fn sleep_unit() -> &'static [u8] {
    if std::env::var("WREN_SCALE_ISO").is_ok_and(|v| v == "1") {
        b"exec = /bin/sleep 100000\nmemory.max = 16M\nrestart_delay = 0ms\n"
    } else {
        b"exec = /bin/sleep 100000\nnamespaces = none\nrestart_delay = 0ms\n"
    }
}

/// `n` units `s0000.unit` ... each a BusyBox `sleep` (`sleep_unit`),
/// for `/test/scale`, and the console shell of the fixture (in the
/// files too, so an image built without the fixture boots them as well).
fn sleep_units(n: usize) -> Vec<(String, Vec<u8>)> {
    let shell = std::fs::read(repo_root().join("tests/units/scale/sh.unit"))
        .expect("tests/units/scale/sh.unit");
    (0..n)
        .map(|i| (format!("/test/scale/s{i:04}.unit"), sleep_unit().to_vec()))
        .chain(std::iter::once(("/test/scale/sh.unit".to_string(), shell)))
        .collect()
}

/// Boots with `n` sleep units and waits until every one is running;
/// returns the VM and PID 1's "N of N units up" line.
fn boot_units(n: usize, cmdline: &str) -> (Vm, String) {
    let units = sleep_units(n);
    let files: Vec<(&str, &[u8], u32)> = units
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice(), 0o644))
        .collect();
    // A thousand cgroups, kernel stacks and page tables need more than
    // the usual 256 MiB guest (the OOM killer takes sleeps at about 900).
    let mut vm = Vm::boot_with_files_qemu("scale", cmdline, &files, &["-m", "1024"]);
    // Generous: a thousand clone3+exec under TCG on a loaded host.
    vm.wait_shell(Duration::from_secs(600));
    let deadline = Instant::now() + Duration::from_secs(1200);
    loop {
        let running = vm.sh("initctl status | grep -c '^s[0-9]* *running '", SLOW);
        if running.trim() == n.to_string() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {n} units running: {}",
            running.trim(),
            vm.tail()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    let line = vm.sh(
        "dmesg | grep -o '[0-9]* of [0-9]* units up.*' | tail -1",
        SLOW,
    );
    let line = line.trim().to_string();
    (vm, line)
}

/// PID 1's `Anonymous` and `Rss` in KiB (smaps_rollup).
fn pid1_memory(vm: &mut Vm) -> (u64, u64) {
    let rollup = vm.sh("grep -E '^(Rss|Anonymous):' /proc/1/smaps_rollup", SLOW);
    let kib = |key: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {key} in smaps_rollup: {rollup}"))
    };
    (kib("Anonymous:"), kib("Rss:"))
}

/// Where PID 1's anonymous memory is, mapping by mapping (KiB, mapping).
fn pid1_mappings(vm: &mut Vm) -> String {
    vm.sh(
        "awk '/^[0-9a-f]+-/{m=$0} /^Anonymous:/{if($2>0) print $2\" kB  \"m}' /proc/1/smaps",
        SLOW,
    )
}

/// A thousand units: all run, one killed is started again, `initctl
/// status` lists them all (in pages), and no wake-up of the loop
/// allocated while they were supervised.
#[test]
fn a_thousand_units_run_restart_and_are_listed() {
    const N: usize = 1000;
    let (mut vm, up) = boot_units(N, "wren.debug");
    eprintln!("scale: {up}");
    // PID 1 keeps a thousand output pipes: starts on a slot go through
    // the trampoline, which copies none of them (`sys::slot`).
    let by_trampoline = up
        .split(", ")
        .find_map(|part| part.strip_suffix(" by trampoline)"))
        .and_then(|n| n.parse::<u32>().ok());
    assert!(by_trampoline.is_some_and(|n| n > 0), "{up}");
    let (anon, rss) = pid1_memory(&mut vm);
    eprintln!("scale: PID 1 with {N} units: Anonymous {anon} kB, Rss {rss} kB");
    eprintln!("scale: PID 1 mappings:\n{}", pid1_mappings(&mut vm));

    let listed = vm.sh("initctl status | grep -c '^s[0-9][0-9][0-9][0-9] '", SLOW);
    assert_eq!(
        listed.trim(),
        N.to_string(),
        "initctl status lists every unit"
    );
    let json = vm.sh("initctl status --json | grep -o '\"name\"' | wc -l", SLOW);
    assert_eq!(json.trim(), (N + 1).to_string(), "--json lists every unit");

    // The last unit: its slot is past every old 8-bit limit.
    let line = vm.sh("initctl status | grep '^s0999 '", SLOW);
    let before = parse_status(&line);
    let pid = before
        .first()
        .and_then(|u| u.pid)
        .unwrap_or_else(|| panic!("no pid for s0999: {line}"));
    vm.sh(&format!("kill -9 {pid}"), SLOW);
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let st = parse_status(&vm.sh("initctl status | grep '^s0999 '", SLOW));
        match st.first() {
            Some(u) if u.state == "running" && u.pid.is_some_and(|p| p != pid) => break u.clone(),
            _ => {}
        }
        assert!(Instant::now() < deadline, "s0999 not restarted: {st:?}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(after.restarts, 1, "{after:?}");
    let running = vm.sh("initctl status | grep -c '^s[0-9]* *running '", SLOW);
    assert_eq!(running.trim(), N.to_string());
    // One fd a unit (its output pipe), not two: no cgroup directory fd
    // is kept between starts, for every clone3 to copy.
    let fds: usize = vm
        .sh("ls /proc/1/fd | wc -l", SLOW)
        .trim()
        .parse()
        .expect("PID 1's fd count");
    eprintln!("scale: PID 1 holds {fds} fds with {N} units");
    assert!(fds <= N + 64, "PID 1 holds {fds} fds for {N} units");

    // The count, then the first such records (wren.debug logs them).
    let report = vm.sh(
        "w='allocation(s) in one wake-up'; dmesg | grep -c \"$w\"; dmesg | grep \"$w\" | head -3",
        SLOW,
    );
    let count = report.lines().next().map(str::trim);
    assert_eq!(
        count,
        Some("0"),
        "PID 1 allocated supervising {N} units:\n{report}"
    );
}

/// PID 1's memory with 10, 100 and 1,000 units (`WREN_SCALE_N=10,60`
/// picks others): printed as `scale-memory` lines with the least-squares
/// bytes per unit; it must grow linearly, by at most `PER_UNIT_MAX`.
#[test]
fn pid1_memory_grows_linearly_with_units() {
    const PER_UNIT_MAX: f64 = 3072.0;
    let ns: Vec<usize> = std::env::var("WREN_SCALE_N")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![10, 100, 1000]);
    assert!(ns.len() >= 2, "need two sizes at least: {ns:?}");
    let mut points = Vec::new();
    for &n in &ns {
        let (mut vm, up) = boot_units(n, "");
        let (anon, rss) = pid1_memory(&mut vm);
        eprintln!("scale-memory units={n} anonymous_kib={anon} rss_kib={rss} ({up})");
        eprintln!(
            "scale-memory units={n} mappings:\n{}",
            pid1_mappings(&mut vm)
        );
        points.push((n as f64, anon as f64 * 1024.0));
    }
    let k = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / k, sy / k);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx) * (x - mx)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let slope = sxy / sxx;
    let base = my - slope * mx;
    eprintln!(
        "scale-memory fit: {slope:.0} bytes per unit + {:.0} KiB (units {ns:?})",
        base / 1024.0
    );
    // Linear: no point is off the line by more than 64 KiB plus 10%.
    for (x, y) in &points {
        let fit = base + slope * x;
        assert!(
            (y - fit).abs() <= 65536.0 + 0.1 * fit,
            "{x} units: {y} bytes, the line says {fit}: {points:?}"
        );
    }
    assert!(
        slope <= PER_UNIT_MAX,
        "PID 1 grows by {slope:.0} bytes per unit (at most {PER_UNIT_MAX}): {points:?}"
    );
}
