//! `initctl metrics`: every unit in the Prometheus text exposition format
//! (version 0.0.4), one metric family at a time with its `HELP` and `TYPE`,
//! every series labelled `unit="NAME"`. Unit names are `[a-z0-9._-]`, so
//! label values need no escaping. Absent values (no cgroup, no PSI) are
//! left out rather than faked as 0.

use core::fmt::Write as _;

use super::output::num;
use super::sample::Sample;
use crate::unit::Limit;
use crate::vocab::State;

const STATES: [State; 7] = State::ALL;

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
}

fn family(
    out: &mut String,
    f: &Family,
    samples: &[Sample],
    // `dyn`: one copy of this function, not one per family.
    value: &dyn Fn(&Sample) -> Option<String>,
) {
    let rows: Vec<(&str, String)> = samples
        .iter()
        .filter_map(|s| value(s).map(|v| (s.status.name.as_str(), v)))
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
    let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
    for (unit, v) in rows {
        let _ = writeln!(out, "{}{{unit=\"{unit}\"}} {v}", f.name);
    }
}

fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

/// PSI averages are hundredths of a percent; metrics carry ratios.
fn ratio(hundredths: u32) -> String {
    format!("{}.{:04}", hundredths / 10_000, hundredths % 10_000)
}

/// Renders the exposition text for `samples`.
pub fn render(samples: &[Sample]) -> String {
    let mut out = String::new();
    if !samples.is_empty() {
        out.push_str("# HELP wren_unit_state 1 for the state the unit is in, 0 for the others.\n");
        out.push_str("# TYPE wren_unit_state gauge\n");
        for s in samples {
            for st in STATES {
                let v = u8::from(s.status.state == st);
                let _ = writeln!(
                    out,
                    "wren_unit_state{{unit=\"{}\",state=\"{}\"}} {v}",
                    s.status.name,
                    st.as_str()
                );
            }
        }
    }
    let f = |name, kind, help| Family { name, kind, help };
    family(
        &mut out,
        &f(
            "wren_unit_restarts_total",
            "counter",
            "Times the unit was started again by its restart policy.",
        ),
        samples,
        &|s| Some(num(s.status.restarts.into())),
    );
    family(
        &mut out,
        &f(
            "wren_unit_pid",
            "gauge",
            "Main process id, 0 when the unit has none.",
        ),
        samples,
        &|s| Some(num(s.status.pid.into())),
    );
    family(
        &mut out,
        &f(
            "wren_unit_memory_current_bytes",
            "gauge",
            "memory.current of the unit's cgroup.",
        ),
        samples,
        &|s| s.status.memory_current.map(num),
    );
    family(
        &mut out,
        &f(
            "wren_unit_memory_max_bytes",
            "gauge",
            "memory.max of the unit's cgroup (+Inf: no limit).",
        ),
        samples,
        &|s| {
            s.memory_max.map(|l| match l {
                Limit::Max => "+Inf".to_string(),
                Limit::Value(v) => num(v),
            })
        },
    );
    family(
        &mut out,
        &f(
            "wren_unit_memory_peak_bytes",
            "gauge",
            "memory.peak of the unit's cgroup.",
        ),
        samples,
        &|s| s.memory_peak.map(num),
    );
    family(
        &mut out,
        &f(
            "wren_unit_cpu_seconds_total",
            "counter",
            "CPU time of the unit's cgroup (cpu.stat usage_usec).",
        ),
        samples,
        &|s| s.cpu_usage_us.map(seconds),
    );
    family(
        &mut out,
        &f(
            "wren_unit_oom_kills_total",
            "counter",
            "Processes of the unit killed by the OOM killer (memory.events oom_kill).",
        ),
        samples,
        &|s| s.oom_kills.map(num),
    );
    family(
        &mut out,
        &f(
            "wren_unit_memory_pressure_some_avg10",
            "gauge",
            "Share of the last 10 s some task of the unit stalled on memory (PSI).",
        ),
        samples,
        &|s| s.pressure.map(|p| ratio(p.some.avg10)),
    );
    family(
        &mut out,
        &f(
            "wren_unit_memory_pressure_some_seconds_total",
            "counter",
            "Time some task of the unit stalled on memory (PSI).",
        ),
        samples,
        &|s| s.pressure.map(|p| seconds(p.some.total_us)),
    );
    family(
        &mut out,
        &f(
            "wren_unit_memory_pressure_full_seconds_total",
            "counter",
            "Time all tasks of the unit stalled on memory at once (PSI).",
        ),
        samples,
        &|s| s.pressure.map(|p| seconds(p.full.total_us)),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::sample::{Pressure, Stall};
    use super::*;
    use crate::proto::UnitStatus;

    fn sample(name: &str, state: State) -> Sample {
        Sample {
            status: UnitStatus {
                name: name.try_into().unwrap(),
                state,
                pid: 42,
                restarts: 3,
                memory_current: Some(1 << 20),
                memory_max: Some(Limit::Value(16 << 20)),
                uptime_ms: 1000,
            },
            memory_peak: Some(2 << 20),
            memory_max: Some(Limit::Value(16 << 20)),
            cpu_usage_us: Some(2_500_001),
            oom_kills: Some(1),
            pressure: Some(Pressure {
                some: Stall {
                    avg10: 1250,
                    avg60: 0,
                    avg300: 0,
                    total_us: 1_500_000,
                },
                full: Stall::default(),
            }),
        }
    }

    #[test]
    fn families_and_series() {
        let mut idle = sample("idle", State::Stopped);
        idle.status.memory_current = None;
        idle.memory_peak = None;
        idle.memory_max = Some(Limit::Max);
        idle.pressure = None;
        let t = render(&[sample("web", State::Running), idle]);
        assert!(t.contains("# TYPE wren_unit_state gauge\n"));
        assert!(t.contains("wren_unit_state{unit=\"web\",state=\"running\"} 1\n"));
        assert!(t.contains("wren_unit_state{unit=\"web\",state=\"failed\"} 0\n"));
        assert!(t.contains("wren_unit_state{unit=\"idle\",state=\"stopped\"} 1\n"));
        assert!(t.contains("wren_unit_restarts_total{unit=\"web\"} 3\n"));
        assert!(t.contains("wren_unit_memory_current_bytes{unit=\"web\"} 1048576\n"));
        assert!(!t.contains("wren_unit_memory_current_bytes{unit=\"idle\"}"));
        assert!(t.contains("wren_unit_memory_max_bytes{unit=\"idle\"} +Inf\n"));
        assert!(t.contains("wren_unit_cpu_seconds_total{unit=\"web\"} 2.500001\n"));
        assert!(t.contains("wren_unit_memory_pressure_some_avg10{unit=\"web\"} 0.1250\n"));
        assert!(t.contains("wren_unit_memory_pressure_some_seconds_total{unit=\"web\"} 1.500000\n"));
        // Every family is announced once, before its series.
        for line in t.lines().filter(|l| l.starts_with("# TYPE ")) {
            let name = line.split(' ').nth(2).unwrap();
            assert_eq!(t.matches(&format!("# TYPE {name} ")).count(), 1);
            assert!(t.contains(&format!("# HELP {name} ")));
        }
    }

    #[test]
    fn no_units_no_families() {
        assert_eq!(render(&[]), "");
    }
}
