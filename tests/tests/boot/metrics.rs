use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::initctl_json::{parse as parse_json, Json};
use crate::*;

/// The units of tests/units/metrics/ once settled: (name, state).
pub const SETTLED: &[(&str, &[&str])] = &[
    ("sh", &["running"]),
    ("hog", &["running"]),
    ("idle", &["running"]),
    ("once", &["exited"]),
    ("crashy", &["failed"]),
    ("oomy", &["failed"]),
];

/// Parses Prometheus text with the reference parser (`prometheus_client`
/// from PyPI, installed here if missing): one `F\tfamily\ttype\thelp` line
/// per family and one `S\tname\tlabels\tvalue` line per sample.
const PARSER: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(sys.stdin.read()):
    print("F\t%s\t%s\t%s" % (fam.name, fam.type, fam.documentation))
    for s in fam.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("S\t%s\t%s\t%r" % (s.name, labels, float(s.value)))
"#;

fn python_has_parser() -> bool {
    Command::new("python3")
        .args(["-c", "import prometheus_client.parser"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs `prometheus_client` when missing; panics (no skip) when it
/// still cannot be imported.
pub fn ensure_prometheus_client() {
    if python_has_parser() {
        return;
    }
    let _ = Command::new("python3")
        .args(["-m", "pip", "install", "--quiet", "prometheus_client"])
        .status();
    assert!(
        python_has_parser(),
        "python3 cannot import prometheus_client (pip install prometheus_client)"
    );
}

#[derive(Debug, Default)]
pub struct Parsed {
    /// family -> (type, help)
    pub families: BTreeMap<String, (String, String)>,
    /// (sample name, labels) -> value
    pub samples: BTreeMap<(String, BTreeMap<String, String>), f64>,
}

impl Parsed {
    pub fn get(&self, name: &str, unit: &str) -> Option<f64> {
        self.samples
            .iter()
            .find(|((n, l), _)| {
                n == name && l.get("unit").map(String::as_str) == Some(unit) && l.len() == 1
            })
            .map(|(_, v)| *v)
    }
}

pub fn prom_parse(text: &str) -> Parsed {
    ensure_prometheus_client();
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client rejected the output: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut p = Parsed::default();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.splitn(4, '\t').collect();
        match f[0] {
            "F" => {
                p.families
                    .insert(f[1].to_string(), (f[2].to_string(), f[3].to_string()));
            }
            "S" => {
                let labels = f[2]
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(|kv| {
                        let (k, v) = kv.split_once('=').unwrap();
                        (k.to_string(), v.to_string())
                    })
                    .collect();
                let v: f64 = f[3].parse().unwrap_or_else(|_| panic!("value {line}"));
                assert!(
                    p.samples.insert((f[1].to_string(), labels), v).is_none(),
                    "duplicate series {line}"
                );
            }
            _ => panic!("parser output {line:?}"),
        }
    }
    p
}

fn md5(b: &[u8]) -> String {
    let mut c = Command::new("md5sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b).unwrap();
    let o = c.wait_with_output().unwrap();
    String::from_utf8(o.stdout).unwrap()[..32].to_string()
}

/// A guest file's contents exactly, checked against its size and md5 in
/// the guest (console output can interleave; then read it again).
pub fn guest_file(vm: &mut Vm, path: &str) -> String {
    for _ in 0..5 {
        let (text, rc) = vm.sh_raw_rc(&format!("cat {path}"), CMD);
        assert_eq!(rc, 0, "cat {path}");
        let sum = vm.sh(&format!("md5sum < {path}"), CMD);
        if sum.trim().starts_with(&md5(text.as_bytes())) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("could not read {path} exactly over the console");
}

/// cgroup files of every unit, as the guest read them: unit -> key -> value.
fn cgroup_values(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut cur = String::new();
    for l in text.lines() {
        let Some((k, v)) = l.split_once(' ') else {
            continue;
        };
        if k == "U" {
            cur = v.to_string();
            out.entry(cur.clone()).or_default();
        } else {
            out.get_mut(&cur)
                .unwrap()
                .insert(k.to_string(), v.trim().to_string());
        }
    }
    out
}

const SNAPSHOT: &str = "initctl metrics > /tmp/m; echo $? > /tmp/m.rc; \
    for d in /sys/fs/cgroup/units/*/; do u=$(basename $d); echo \"U $u\"; \
    echo \"memory.current $(cat $d/memory.current)\"; echo \"memory.max $(cat $d/memory.max)\"; \
    [ -f $d/memory.peak ] && echo \"memory.peak $(cat $d/memory.peak)\"; \
    grep '^usage_usec ' $d/cpu.stat; grep '^oom_kill ' $d/memory.events; \
    sed -n 's/^\\(some\\|full\\) .*total=/psi_\\1 /p' $d/memory.pressure; done > /tmp/cg; \
    initctl status --json > /tmp/j";

struct Snapshot {
    text: String,
    prom: Parsed,
    cg: BTreeMap<String, BTreeMap<String, String>>,
    json: Json,
}

fn snapshot(vm: &mut Vm) -> Snapshot {
    let (_, rc) = vm.sh_rc(SNAPSHOT, CMD);
    assert_eq!(rc, 0);
    assert_eq!(
        vm.sh("cat /tmp/m.rc", CMD).trim(),
        "0",
        "initctl metrics failed"
    );
    let text = guest_file(vm, "/tmp/m");
    let prom = prom_parse(&text);
    let cg = cgroup_values(&guest_file(vm, "/tmp/cg"));
    let json = parse_json(guest_file(vm, "/tmp/j").trim()).expect("status --json");
    Snapshot {
        text,
        prom,
        cg,
        json,
    }
}

/// `initctl metrics` parses with the reference Prometheus parser, every
/// family has HELP and TYPE and every series a `unit` label, and the
/// values are those of the cgroup files and `initctl status --json` read
/// at the same moment. Then `initctl top` off a terminal prints plain
/// frames, and PID 1 still wakes zero times while the system is idle.
#[test]
fn metrics_parse_and_match_the_cgroup_files() {
    ensure_prometheus_client();
    let mut vm = boot("metrics");
    vm.wait_states(SETTLED, Duration::from_secs(60));
    // Kernel messages (OOM reports) must not land in the captures.
    vm.sh("dmesg -n 1", CMD);
    let a = snapshot(&mut vm);
    let text = &a.text;

    // Exposition format: HELP then TYPE before each family's samples.
    let mut seen = BTreeSet::new();
    let mut help: Option<String> = None;
    let mut typed: Option<String> = None;
    for l in text.lines() {
        if let Some(r) = l.strip_prefix("# HELP ") {
            let name = r.split(' ').next().unwrap().to_string();
            assert!(r.len() > name.len() + 1, "empty HELP: {l}");
            assert!(seen.insert(name.clone()), "family {name} twice");
            help = Some(name);
            typed = None;
        } else if let Some(r) = l.strip_prefix("# TYPE ") {
            let mut w = r.split(' ');
            let name = w.next().unwrap();
            assert_eq!(help.as_deref(), Some(name), "TYPE without HELP: {l}");
            assert!(matches!(w.next(), Some("gauge" | "counter")), "{l}");
            typed = Some(name.to_string());
        } else {
            let name = l.split(['{', ' ']).next().unwrap();
            assert_eq!(
                typed.as_deref(),
                Some(name),
                "sample outside its family: {l}"
            );
            assert!(l.contains("{unit=\""), "no unit label: {l}");
        }
    }
    assert!(text.ends_with('\n'));
    let fam = |n: &str| a.prom.families.get(n).map(|(t, _)| t.as_str());
    assert_eq!(fam("wren_unit_state"), Some("gauge"));
    assert_eq!(fam("wren_unit_restarts"), Some("counter"));
    assert_eq!(fam("wren_unit_pid"), Some("gauge"));
    assert_eq!(fam("wren_unit_memory_current_bytes"), Some("gauge"));
    assert_eq!(fam("wren_unit_memory_max_bytes"), Some("gauge"));
    assert_eq!(fam("wren_unit_cpu_seconds"), Some("counter"));
    assert_eq!(fam("wren_unit_oom_kills"), Some("counter"));
    for (n, (_, h)) in &a.prom.families {
        assert!(!h.is_empty(), "{n} has no HELP text");
    }
    for (name, labels) in a.prom.samples.keys() {
        assert!(
            labels.contains_key("unit"),
            "{name} {labels:?} without unit"
        );
    }

    // State, restarts and pid: those of `initctl status --json`.
    let units = a.json.arr().expect("status --json is an array");
    assert_eq!(units.len(), SETTLED.len(), "{units:?}");
    for u in units {
        let name = u.get("name").str().unwrap();
        let state = u.get("state").str().unwrap();
        let ones: Vec<&String> = a
            .prom
            .samples
            .iter()
            .filter(|((n, l), v)| {
                n == "wren_unit_state"
                    && l.get("unit").map(String::as_str) == Some(name)
                    && **v == 1.0
            })
            .map(|((_, l), _)| &l["state"])
            .collect();
        assert_eq!(ones, vec![state], "{name}: state");
        let states = a
            .prom
            .samples
            .keys()
            .filter(|(n, l)| n == "wren_unit_state" && l["unit"] == name)
            .count();
        assert_eq!(states, 7, "{name}: one series per state");
        assert_eq!(
            a.prom.get("wren_unit_restarts_total", name),
            u.get("restarts").num(),
            "{name}: restarts"
        );
        assert_eq!(
            a.prom.get("wren_unit_pid", name),
            Some(u.get("pid").num().unwrap_or(0.0)),
            "{name}: pid"
        );
    }
    let json_of = |n: &str| {
        units
            .iter()
            .find(|u| u.get("name").str() == Some(n))
            .unwrap()
    };
    assert!(json_of("crashy").get("restarts").num().unwrap() >= 2.0);

    // Memory, CPU and OOM kills: those of the cgroup files.
    for (unit, files) in &a.cg {
        let max = &files["memory.max"];
        let want = if max == "max" {
            f64::INFINITY
        } else {
            max.parse().unwrap()
        };
        assert_eq!(
            a.prom.get("wren_unit_memory_max_bytes", unit),
            Some(want),
            "{unit}: memory.max"
        );
        let cur: f64 = files["memory.current"].parse().unwrap();
        let got = a
            .prom
            .get("wren_unit_memory_current_bytes", unit)
            .expect("memory.current");
        assert!(
            (got - cur).abs() <= 512.0 * 1024.0,
            "{unit}: memory.current {got} vs {cur}"
        );
        if let Some(peak) = files.get("memory.peak") {
            let p: f64 = peak.parse().unwrap();
            let got = a
                .prom
                .get("wren_unit_memory_peak_bytes", unit)
                .expect("memory.peak");
            assert!(
                got <= p && got >= cur.min(p) - 512.0 * 1024.0,
                "{unit}: peak {got} vs {p}"
            );
        }
        let usage: f64 = files["usage_usec"].parse::<f64>().unwrap() / 1e6;
        let cpu = a
            .prom
            .get("wren_unit_cpu_seconds_total", unit)
            .expect("cpu");
        assert!(
            cpu >= 0.0 && cpu <= usage + 1e-9,
            "{unit}: cpu {cpu} after {usage}"
        );
        // PSI: stall time never ahead of the file read after it.
        for kind in ["some", "full"] {
            let after: f64 = files[&format!("psi_{kind}")].parse::<f64>().unwrap() / 1e6;
            let got = a
                .prom
                .get(
                    &format!("wren_unit_memory_pressure_{kind}_seconds_total"),
                    unit,
                )
                .expect("pressure");
            assert!(
                got <= after + 1e-9 && got >= after - 0.5,
                "{unit}: {kind} stall {got} vs {after}"
            );
        }
        let avg10 = a
            .prom
            .get("wren_unit_memory_pressure_some_avg10", unit)
            .expect("avg10");
        assert!(
            (0.0..=1.0).contains(&avg10),
            "{unit}: avg10 {avg10} is not a ratio"
        );
        let oom: f64 = files["oom_kill"].parse().unwrap();
        assert_eq!(
            a.prom.get("wren_unit_oom_kills_total", unit),
            Some(oom),
            "{unit}: oom_kill"
        );
    }
    for u in ["hog", "idle", "sh"] {
        assert!(a.cg.contains_key(u), "no cgroup for {u}: {:?}", a.cg.keys());
    }
    assert_eq!(
        a.prom.get("wren_unit_memory_max_bytes", "hog"),
        Some(24.0 * 1048576.0)
    );
    assert!(a.prom.get("wren_unit_memory_current_bytes", "hog").unwrap() >= 4.0 * 1048576.0);
    assert_eq!(
        a.prom.get("wren_unit_memory_max_bytes", "idle"),
        Some(f64::INFINITY)
    );
    if a.cg.contains_key("oomy") {
        assert!(a.prom.get("wren_unit_oom_kills_total", "oomy").unwrap() >= 1.0);
    }

    // Counters only go up: a second scrape after some work in the shell.
    vm.sh("i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done", CMD);
    let b = snapshot(&mut vm);
    for ((name, labels), v) in &a.prom.samples {
        if name.ends_with("_total") {
            let w = b.prom.samples[&(name.clone(), labels.clone())];
            assert!(w >= *v, "{name} {labels:?} went down: {v} -> {w}");
        }
    }
    let (c0, c1) = (
        a.prom.get("wren_unit_cpu_seconds_total", "sh").unwrap(),
        b.prom.get("wren_unit_cpu_seconds_total", "sh").unwrap(),
    );
    assert!(c1 > c0, "the shell's CPU time did not grow: {c0} -> {c1}");

    // Off a terminal, top prints COUNT plain frames, no escape byte.
    let (out, rc) = vm.sh_raw_rc("initctl top -n 2 -d 1 | cat", CMD);
    assert_eq!(rc, 0);
    assert!(!out.contains('\x1b'), "escape in plain top output: {out:?}");
    assert_eq!(out.matches("wren top: ").count(), 2, "{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with("NAME ")).count(),
        2,
        "{out}"
    );
    for l in out.lines() {
        assert!(l.chars().count() <= 80, "line over 80 columns: {l:?}");
    }

    // A reader that goes away ends it quietly, with success.
    let (out, _) = vm.sh_raw_rc(
        "{ initctl top -n 3 -d 1 2>/tmp/top.err; echo $? > /tmp/top.rc; } | head -1; \
         cat /tmp/top.err; echo \"rc=$(cat /tmp/top.rc)\"",
        CMD,
    );
    assert!(out.starts_with("wren top: "), "{out}");
    assert_eq!(out.lines().nth(1), Some("rc=0"), "top | head: {out}");

    // Idle: PID 1 does not wake in 10 s (see idle.rs).
    vm.sh("sleep 2", CMD);
    assert_pid1_idle(&mut vm);

    // A stopped unit: still listed, state `stopped`; values of a cgroup
    // that is gone are left out, not faked as 0.
    let (_, rc) = vm.sh_rc("initctl stop idle", CMD);
    assert_eq!(rc, 0);
    let stopped = |s: &Snapshot| -> Vec<String> {
        s.prom
            .samples
            .iter()
            .filter(|((n, l), v)| n == "wren_unit_state" && l["unit"] == "idle" && **v == 1.0)
            .map(|((_, l), _)| l["state"].clone())
            .collect()
    };
    let c = snapshot(&mut vm);
    assert_eq!(stopped(&c), ["stopped"]);
    assert_eq!(c.prom.get("wren_unit_pid", "idle"), Some(0.0));
    // A stopped unit keeps its cgroup (until it is removed from the
    // configuration): gone only by hand here, as an operator's rmdir or
    // a cgroup cleaner would, the unit still listed.
    assert!(c.cg.contains_key("idle"), "{:?}", c.cg.keys());
    let (out, rc) = vm.sh_rc("rmdir /sys/fs/cgroup/units/idle 2>&1", CMD);
    assert_eq!(rc, 0, "{out}");
    let d = snapshot(&mut vm);
    assert!(!d.cg.contains_key("idle"), "{:?}", d.cg.keys());
    assert_eq!(stopped(&d), ["stopped"]);
    for f in [
        "memory_current_bytes",
        "memory_max_bytes",
        "memory_peak_bytes",
        "cpu_seconds_total",
        "oom_kills_total",
        "memory_pressure_some_avg10",
        "memory_pressure_some_seconds_total",
        "memory_pressure_full_seconds_total",
    ] {
        assert_eq!(
            d.prom.get(&format!("wren_unit_{f}"), "idle"),
            None,
            "{f} of a unit without a cgroup"
        );
    }
    // The others keep theirs: the values are left out per unit.
    assert!(d
        .prom
        .get("wren_unit_memory_current_bytes", "hog")
        .is_some());
}
