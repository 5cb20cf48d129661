use super::parse::apply;
use super::suggest::edit_distance;
use super::values::msg;
use super::*;

fn ok(text: &str) -> UnitDef {
    match parse("svc", text) {
        Ok(d) => d,
        Err(e) => panic!("unexpected error at line {}: {}", e.line, e.msg),
    }
}

fn unit(extra: &str) -> UnitDef {
    ok(&format!("exec = /bin/true\n{extra}\n"))
}

/// The line of each `after` name of `text` (`parse_with_lines`).
fn after_lines(text: &str) -> std::vec::Vec<u32> {
    let (_, lines, _) =
        parse_with_lines("svc", text, &mut |e| panic!("line {}: {}", e.line, e.msg)).unwrap();
    lines.as_slice().to_vec()
}

/// Parse `exec = /bin/true` plus `extra`; return the first error.
fn err(extra: &str) -> (u32, std::string::String) {
    let e = parse("svc", &format!("exec = /bin/true\n{extra}\n")).unwrap_err();
    (e.line, e.msg.as_str().to_owned())
}

fn all_errors(name: &str, text: &str) -> std::vec::Vec<(u32, std::string::String)> {
    let mut v = std::vec::Vec::new();
    let d = parse_all(name, text, &mut |e| {
        v.push((e.line, e.msg.as_str().to_owned()))
    });
    assert_eq!(d.is_none(), !v.is_empty());
    v
}

fn args(d: &UnitDef) -> std::vec::Vec<&str> {
    d.exec.iter().collect()
}

#[test]
fn minimal_unit_has_contract_defaults() {
    let d = ok("exec = /sbin/getty 115200 ttyS0");
    assert_eq!(d.name.as_str(), "svc");
    assert_eq!(args(&d), ["/sbin/getty", "115200", "ttyS0"]);
    assert_eq!(d.exec_line, 1);
    assert_eq!(d.kind, Kind::Service);
    assert_eq!(d.restart, Restart::Always);
    assert_eq!(d.restart_delay, 100);
    assert_eq!(d.restart_delay_max, 30_000);
    assert_eq!(d.seldom.start_limit, None);
    assert_eq!(d.start_limit_action, LimitAction::None);
    assert!(d.after.is_empty());
    assert_eq!(d.ready, Ready::Started);
    assert_eq!(d.stop_signal, 15);
    assert_eq!(d.stop_timeout, 5_000);
    assert_eq!(d.seldom.user, None);
    assert_eq!(d.seldom.group, None);
    assert_eq!(d.workdir.as_str(), "/");
    assert!(d.env.is_empty());
    assert!(!d.console);
    assert_eq!(d.output, Output::Log);
    assert_eq!(d.namespaces, Namespaces::DEFAULT);
    assert_eq!(d.seldom.hostname, None);
    assert_eq!(d.seldom.root, None);
    assert_eq!(d.limits, Limits::default());
    assert_eq!(d, {
        let mut w = UnitDef::with_defaults("svc");
        w.exec = d.exec.clone();
        w.exec_line = 1;
        w
    });
}

#[test]
fn full_unit() {
    let text = "\
# A web server.
description = The web server
exec = /usr/sbin/httpd -f -p 80
type = service
restart = on-failure
restart_delay = 250ms
restart_delay_max = 1m
start_limit = 10/5m
start_limit_action = reboot
after = net syslog
after = storage
ready = notify
stop_signal = SIGWINCH
stop_timeout = 10s
user = www-data
group = 33
workdir = /srv/www
env = LANG=C.UTF-8
env = OPTS=a=b
console = no
output = null
namespaces = pid mount net uts
hostname = web.local
root = /srv/rootfs
memory.max = 64M
memory.high = 48M
memory.low = 16M
memory.min = 8M
memory.swap.max = 0
pids.max = 100
cpu.weight = 200
cpu.max = 50000 100000
io.weight = 10000
";
    let d = ok(text);
    assert_eq!(after_lines(text), [10, 10, 11]);
    assert_eq!(d.description.as_str(), "The web server");
    assert_eq!(args(&d), ["/usr/sbin/httpd", "-f", "-p", "80"]);
    assert_eq!(d.exec_line, 3);
    assert_eq!(d.restart, Restart::OnFailure);
    assert_eq!(d.restart_delay, 250);
    assert_eq!(d.restart_delay_max, 60_000);
    assert_eq!(
        d.seldom.start_limit,
        Some(StartLimit {
            count: 10,
            window: 300_000
        })
    );
    assert_eq!(d.start_limit_action, LimitAction::Reboot);
    let after: std::vec::Vec<&str> = d.after.iter().collect();
    assert_eq!(after, ["net", "syslog", "storage"]);
    assert_eq!(d.ready, Ready::Notify);
    assert_eq!(d.stop_signal, 28);
    assert_eq!(d.stop_timeout, 10_000);
    assert_eq!(
        d.seldom.user,
        Some(IdSpec::Name(Text::try_from("www-data").unwrap()))
    );
    assert_eq!(d.seldom.group, Some(IdSpec::Id(33)));
    assert_eq!(d.workdir.as_str(), "/srv/www");
    let env: std::vec::Vec<&str> = d.env.iter().collect();
    assert_eq!(env, ["LANG=C.UTF-8", "OPTS=a=b"]);
    assert_eq!(d.output, Output::Null);
    assert_eq!(
        d.namespaces,
        Namespaces(Namespaces::PID | Namespaces::MOUNT | Namespaces::NET | Namespaces::UTS)
    );
    assert_eq!(d.seldom.hostname.as_deref(), Some("web.local"));
    assert_eq!(d.seldom.root.as_deref(), Some("/srv/rootfs"));
    let l = d.limits.get();
    assert_eq!(l.memory_max, Some(Limit::Value(64 << 20)));
    assert_eq!(l.memory_high, Some(Limit::Value(48 << 20)));
    assert_eq!(l.memory_low, Some(Limit::Value(16 << 20)));
    assert_eq!(l.memory_min, Some(Limit::Value(8 << 20)));
    assert_eq!(l.memory_swap_max, Some(Limit::Value(0)));
    assert_eq!(l.pids_max, Some(Limit::Value(100)));
    assert_eq!(l.cpu_weight, Some(200));
    assert_eq!(l.cpu_max, Some((Limit::Value(50_000), 100_000)));
    assert_eq!(l.io_weight, Some(10_000));
}

#[test]
fn log_size_is_bounded() {
    let ok = parse("svc", "exec = /bin/x\nlog_size = 64K\n").unwrap();
    assert_eq!(ok.log_size, 65536);
    assert_eq!(
        UnitDef::with_defaults("x").log_size as usize,
        crate::log_ring::LOG_RING_BYTES
    );
    for bad in ["100", "2M", "max", "lots"] {
        let e = parse("svc", &format!("exec = /bin/x\nlog_size = {bad}\n")).unwrap_err();
        assert_eq!(e.line, 2, "{bad}");
        assert!(e.msg.contains("log_size"), "{}", e.msg);
    }
}

#[test]
fn critical_key() {
    assert!(!unit("").critical);
    assert!(unit("critical = yes\n").critical);
    assert!(!unit("critical = no\n").critical);
    let (line, m) = err("critical = maybe\n");
    assert_eq!(line, 2);
    assert!(m.contains("critical: expected `yes` or `no`"), "{m}");
}

/// A value quoted in an error shows its control characters as `?`: the
/// message goes to a terminal (`initctl check`, the serial console).
#[test]
fn a_quoted_value_shows_no_control_character() {
    let (_, m) = err("critical = a\u{1b}[2Jb\u{9b}c\n");
    assert!(m.contains("got `a?[2Jb?c`"), "{m}");
    assert!(!m.chars().any(char::is_control), "{m:?}");
}

#[test]
fn pressure_keys() {
    let d = unit("pressure_limit = 20%/10s\npressure_action = stop\nshed_order = 3\n");
    let p = d.seldom.pressure_limit.unwrap();
    assert_eq!((p.percent, p.window), (20, 10_000));
    assert_eq!((p.stall_us(), p.window_us()), (2_000_000, 10_000_000));
    assert_eq!(d.pressure_action, PressureAction::Stop);
    assert_eq!(d.shed_order, Some(3));
    let d = unit("pressure_limit = 5% / 500ms\n");
    assert_eq!(d.seldom.pressure_limit.unwrap().stall_us(), 25_000);
    assert_eq!(d.pressure_action, PressureAction::Log);
    assert_eq!(d.shed_order, None);
    // The default may be written out too.
    let d = unit("pressure_limit = 5%/500ms\npressure_action = log\n");
    assert_eq!(d.pressure_action, PressureAction::Log);
    for bad in [
        "20/10s",
        "0%/1s",
        "101%/1s",
        "20%/100ms",
        "20%/11s",
        "20%",
        "x%/1s",
        "+20%/10s",
    ] {
        let (line, m) = err(&format!("pressure_limit = {bad}\n"));
        assert_eq!(line, 2, "{bad}");
        assert!(
            m.contains("pressure_limit: expected PERCENT/DURATION"),
            "{m}"
        );
    }
    let (_, m) = err("pressure_action = kill\n");
    assert!(m.contains("expected `log`, `restart` or `stop`"), "{m}");
    // Digits only, as every other number of a unit file.
    for bad in ["0", "1001", "-1", "x", "+5"] {
        let (_, m) = err(&format!("shed_order = {bad}\n"));
        assert!(
            m.contains("shed_order: expected a number from 1 to 1000"),
            "{m}"
        );
    }
}

#[test]
fn every_key_is_applied() {
    // Each key in KEYS must be handled by `apply` (not fall through to
    // "unknown key"), checked with a value that is valid for it.
    let values = [
        ("description", "x"),
        ("exec", "/bin/x"),
        ("type", "oneshot"),
        ("restart", "never"),
        ("restart_delay", "1s"),
        ("restart_delay_max", "2s"),
        ("start_limit", "1/1s"),
        ("start_limit_action", "poweroff"),
        ("after", "other"),
        ("ready", "notify"),
        ("stop_signal", "INT"),
        ("stop_timeout", "1s"),
        ("user", "0"),
        ("group", "0"),
        ("workdir", "/w"),
        ("env", "A=1"),
        ("console", "yes"),
        ("output", "null"),
        ("namespaces", "mount uts"),
        ("log_size", "16K"),
        ("hostname", "h"),
        ("root", "/r"),
        ("memory.max", "1"),
        ("memory.high", "1"),
        ("memory.low", "1"),
        ("memory.min", "1"),
        ("memory.swap.max", "1"),
        ("pids.max", "1"),
        ("cpu.weight", "1"),
        ("cpu.max", "max"),
        ("io.weight", "1"),
        ("pressure_limit", "20%/10s"),
        ("pressure_action", "restart"),
        ("shed_order", "5"),
        ("critical", "yes"),
        ("start_timeout", "3s"),
        ("watchdog", "2s"),
        ("capabilities", "net_bind_service"),
        ("no_new_privs", "yes"),
        ("seccomp", "@system-service"),
        ("read_only", "yes"),
        ("root_overlay", "yes"),
        ("user_map", "200000 100"),
    ];
    assert_eq!(values.len(), KEYS.len());
    for ((k, v), key) in values.iter().zip(KEYS) {
        assert_eq!(*k, key);
        let mut d = UnitDef::with_defaults("svc");
        let before = d.clone();
        apply(&mut d, &mut AfterLines::new(), k, v, 7).unwrap_or_else(|e| panic!("{k}: {e}"));
        assert_ne!(d, before, "{k} changed nothing");
    }
}

/// Where the lines stand is not what a definition means: a comment above
/// `exec` or `after` is no change (a reload compares definitions).
#[test]
fn definitions_that_differ_only_in_their_lines_are_equal() {
    let a = ok("exec = /bin/a\nafter = b\nafter = c\n");
    let b = ok("# moved down\n\nafter = b\nexec = /bin/a\n\n# c too\nafter = c\n");
    assert_ne!(a.exec_line, b.exec_line);
    assert_eq!(a, b);
    assert_ne!(a, ok("exec = /bin/z\nafter = b\nafter = c\n"));
    assert_ne!(a, ok("exec = /bin/a\nafter = b\n"));
}

#[test]
fn comments_blank_lines_whitespace_crlf_bom() {
    let d = ok("\u{feff}# comment\r\n\r\n   # indented comment\r\n\t exec\t=  /bin/sh  -l \t\r\n  \r\ndescription =   a # not a comment  \r\n");
    assert_eq!(args(&d), ["/bin/sh", "-l"]);
    assert_eq!(d.exec_line, 4);
    assert_eq!(d.description.as_str(), "a # not a comment");
}

#[test]
fn empty_and_comment_only_files_miss_exec() {
    assert_eq!(parse("svc", "").unwrap_err().line, 0);
    let e = parse("svc", "# nothing\n\n").unwrap_err();
    assert_eq!((e.line, e.msg.as_str()), (0, "missing `exec`"));
}

#[test]
fn invalid_unit_name_is_a_whole_file_error() {
    let e = parse("Bad", "exec = /bin/true").unwrap_err();
    assert_eq!(e.line, 0);
    assert!(
        e.msg.starts_with("`Bad` is not a valid unit name"),
        "{}",
        e.msg
    );
    assert!(parse(&"a".repeat(33), "exec = /bin/true").is_err());
    assert!(parse(&"a".repeat(32), "exec = /bin/true").is_ok());
}

#[test]
fn unknown_keys_and_suggestions() {
    assert_eq!(
        err("memroy.max = 1M"),
        (
            2,
            "unknown key `memroy.max` (did you mean `memory.max`?)".into()
        )
    );
    assert_eq!(
        err("Exec = /bin/true").1,
        "unknown key `Exec` (did you mean `exec`?)"
    );
    assert_eq!(
        err("memory_max = 1").1,
        "unknown key `memory_max` (did you mean `memory.max`?)"
    );
    assert_eq!(
        err("restart_dealy = 1s").1,
        "unknown key `restart_dealy` (did you mean `restart_delay`?)"
    );
    assert_eq!(
        err("typ = oneshot").1,
        "unknown key `typ` (did you mean `type`?)"
    );
    assert_eq!(err("frobnicate = 1").1, "unknown key `frobnicate`");
    assert_eq!(err("x = 1").1, "unknown key `x`");
    let long = "k".repeat(100);
    let (_, m) = err(&format!("{long} = 1"));
    assert!(
        m.starts_with("unknown key `kkkk") && m.contains("...`"),
        "{m}"
    );
}

#[test]
fn suggestion_details() {
    assert_eq!(edit_distance("memroy.max", "memory.max"), Some(1));
    assert_eq!(edit_distance("abc", "abc"), Some(0));
    assert_eq!(edit_distance("", "abc"), Some(3));
    assert_eq!(edit_distance("kitten", "sitting"), Some(3));
    assert_eq!(suggest_key("stop_timout"), Some("stop_timeout"));
    assert_eq!(suggest_key("namespace"), Some("namespaces"));
    assert_eq!(suggest_key("zzzzzzz"), None);
}

#[test]
fn lines_without_equals_and_empty_keys() {
    assert_eq!(
        err("exec /bin/sh"),
        (2, "expected `exec = value`, got `exec /bin/sh`".into())
    );
    assert_eq!(
        err("hello world").1,
        "expected `key = value`, got `hello world`"
    );
    assert_eq!(err(" = 5"), (2, "missing key before `=`".into()));
}

#[test]
fn repeated_keys() {
    assert_eq!(
        err("\ntype = oneshot\ntype = service"),
        (4, "`type` given twice (first on line 3)".into())
    );
    let e = parse("svc", "exec = /bin/a\nexec = /bin/b").unwrap_err();
    assert_eq!(
        (e.line, e.msg.as_str()),
        (2, "`exec` given twice (first on line 1)")
    );
    // A bad first occurrence still counts as given.
    assert_eq!(
        all_errors("svc", "exec = /bin/true\nmemory.max = x\nmemory.max = 1"),
        [
            (
                2,
                "memory.max: expected bytes with an optional K, M or G, or `max`, got `x`".into()
            ),
            (3, "`memory.max` given twice (first on line 2)".into())
        ]
    );
}

#[test]
fn parse_all_reports_every_error_and_parse_the_first() {
    let text = "type = daemon\nexec = sh\nbogus\nrestart = sometimes\n";
    let errs = all_errors("svc", text);
    let lines: std::vec::Vec<u32> = errs.iter().map(|e| e.0).collect();
    assert_eq!(lines, [1, 2, 3, 4]);
    assert_eq!(parse("svc", text).unwrap_err().line, 1);
    // A bad exec line does not also produce "missing exec".
    assert_eq!(all_errors("svc", "exec = rel").len(), 1);
    assert!(all_errors("svc", "exec = /bin/true").is_empty());
}

#[test]
fn nul_byte_in_a_line() {
    assert_eq!(
        err("description = a\0b"),
        (2, "the line contains a NUL byte".into())
    );
}

#[test]
fn exec_splitting() {
    let a = |v: &str| -> std::vec::Vec<std::string::String> {
        split_exec(v)
            .unwrap_or_else(|e| panic!("{v}: {e}"))
            .iter()
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(a("/bin/sh"), ["/bin/sh"]);
    assert_eq!(a("/bin/sh  -c \t x"), ["/bin/sh", "-c", "x"]);
    assert_eq!(
        a(r#"/bin/sh -c "echo hi  there""#),
        ["/bin/sh", "-c", "echo hi  there"]
    );
    assert_eq!(a(r#"/bin/echo a"b c"d"#), ["/bin/echo", "ab cd"]);
    assert_eq!(a(r#"/bin/echo "" x"#), ["/bin/echo", "", "x"]);
    assert_eq!(a(r#"/bin/echo a\ b"#), ["/bin/echo", "a b"]);
    assert_eq!(
        a(r#"/bin/echo \"q\" "in \"side\"""#),
        ["/bin/echo", "\"q\"", "in \"side\""]
    );
    assert_eq!(a(r#"/bin/echo \\ \n"#), ["/bin/echo", "\\", "n"]);
    assert_eq!(a("/bin/echo it's"), ["/bin/echo", "it's"]);
    assert_eq!(a("/bin/echo #1 $HOME"), ["/bin/echo", "#1", "$HOME"]);
    assert_eq!(a("\"/opt/my app/run\" x"), ["/opt/my app/run", "x"]);
    assert_eq!(a("/bin/echo ünïcode"), ["/bin/echo", "ünïcode"]);
}

#[test]
fn exec_errors() {
    let e = |v: &str| split_exec(v).unwrap_err().as_str().to_owned();
    assert_eq!(e(r#"/bin/sh -c "echo"#), "exec: unterminated `\"`");
    assert_eq!(
        e(r"/bin/echo \"),
        "exec: `\\` at the end of the line escapes nothing"
    );
    assert_eq!(
        e("sh -c x"),
        "exec: the program must be an absolute path, got `sh`"
    );
    assert_eq!(
        e("\"\" x"),
        "exec: the program must be an absolute path, got ``"
    );
    assert_eq!(e(""), "exec: no program given");
    assert_eq!(e("   "), "exec: no program given");
    assert_eq!(
        err("exec = /bin/x").1,
        "`exec` given twice (first on line 1)"
    );
    assert_eq!(
        parse("svc", "exec =").unwrap_err().msg.as_str(),
        "exec: no program given"
    );
}

#[test]
fn exec_capacities_are_errors_not_truncations() {
    let mut v = std::string::String::from("/bin/echo");
    for i in 1..ARGS_MAX {
        v.push_str(&format!(" {i}"));
    }
    assert_eq!(split_exec(&v).unwrap().len(), ARGS_MAX);
    v.push_str(" extra");
    assert_eq!(
        split_exec(&v).unwrap_err().as_str(),
        "exec: more than 32 arguments"
    );
    let long = format!("/{}", "x".repeat(EXEC_BYTES - 1));
    assert_eq!(split_exec(&long).unwrap().first(), Some(long.as_str()));
    let too_long = format!("/{}", "x".repeat(EXEC_BYTES));
    assert_eq!(
        split_exec(&too_long).unwrap_err().as_str(),
        "exec: longer than 512 bytes"
    );
    // Two arguments whose NUL separator makes them one byte too many.
    let half = format!("/{} {}", "x".repeat(254), "y".repeat(257));
    assert_eq!(
        split_exec(&half).unwrap_err().as_str(),
        "exec: longer than 512 bytes"
    );
}

#[test]
fn type_and_restart_defaults() {
    assert_eq!(unit("type = oneshot").restart, Restart::Never);
    assert_eq!(unit("type = service").restart, Restart::Always);
    // The default follows `type` wherever `type` appears.
    let d = ok("restart_delay = 1s\nexec = /bin/true\ntype = oneshot");
    assert_eq!((d.kind, d.restart), (Kind::Oneshot, Restart::Never));
    let d = ok("restart = on-failure\ntype = oneshot\nexec = /bin/true");
    assert_eq!(d.restart, Restart::OnFailure);
    assert_eq!(unit("restart = always").restart, Restart::Always);
    assert_eq!(unit("restart = never").restart, Restart::Never);
    assert_eq!(
        err("type = daemon").1,
        "type: expected `service` or `oneshot`, got `daemon`"
    );
    assert_eq!(
        err("restart = on_failure").1,
        "restart: expected `always`, `on-failure` or `never`, got `on_failure`"
    );
}

#[test]
fn durations() {
    assert_eq!(parse_duration("250ms"), Some(250));
    assert_eq!(parse_duration("2s"), Some(2_000));
    assert_eq!(parse_duration("2"), Some(2_000));
    assert_eq!(parse_duration("1m"), Some(60_000));
    assert_eq!(parse_duration("1h"), Some(3_600_000));
    assert_eq!(parse_duration("0"), Some(0));
    for bad in [
        "",
        "ms",
        "1.5s",
        "-1s",
        "+1s",
        "1 s",
        "1d",
        "1S",
        "1sec",
        "99999999999999999999",
    ] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
    assert_eq!(parse_duration("18446744073709551615h"), None);
    assert_eq!(unit("stop_timeout = 30s").stop_timeout, 30_000);
    assert_eq!(
        err("restart_delay = 1.5s"),
        (
            2,
            "restart_delay: expected a duration like 250ms, 2s, 1m or 1h, got `1.5s`".into()
        )
    );
    assert!(err("stop_timeout = soon")
        .1
        .starts_with("stop_timeout: expected a duration"));
}

#[test]
fn start_timeout() {
    assert_eq!(unit("").start_timeout, 60_000);
    assert_eq!(unit("start_timeout = 2s").start_timeout, 2_000);
    assert_eq!(unit("start_timeout = 0").start_timeout, 0);
    assert!(err("start_timeout = never")
        .1
        .starts_with("start_timeout: expected a duration"));
}

/// A seccomp filter sets no_new_privs: `no` written beside one is an
/// error at its line, not a value dropped in silence; `yes`, or the
/// default, with a filter is fine, and `no` alone too.
#[test]
fn no_new_privs_no_cannot_hold_with_a_filter() {
    assert_eq!(
        err("seccomp = ~@mount\nno_new_privs = no"),
        (
            3,
            "no_new_privs: `no` cannot hold with a `seccomp` filter, which sets it \
             (drop this line, or the filter)"
                .into()
        )
    );
    assert!(unit("seccomp = ~@mount\nno_new_privs = yes").no_new_privs_effective());
    assert!(unit("seccomp = ~@mount").no_new_privs_effective());
    assert!(!unit("no_new_privs = no").no_new_privs_effective());
    assert!(!unit("seccomp = none\nno_new_privs = no").no_new_privs_effective());
}

#[test]
fn watchdog_needs_sd_notify() {
    assert_eq!(unit("").seldom.watchdog, None);
    assert_eq!(
        unit("ready = sd_notify\nwatchdog = 2s").seldom.watchdog,
        Some(2_000)
    );
    assert_eq!(
        unit("ready = sd_notify\nwatchdog = 0").seldom.watchdog,
        None
    );
    // The error names the `watchdog` line, whichever comes first.
    assert_eq!(
        err("watchdog = 2s\nready = notify"),
        (
            2,
            "watchdog: needs `ready = sd_notify` (the pings are `WATCHDOG=1` on its socket)".into()
        )
    );
    assert_eq!(err("watchdog = 5s").0, 2);
    // `0` is none: nothing to ping, whatever the readiness.
    assert_eq!(unit("watchdog = 0").seldom.watchdog, None);
    assert_eq!(unit("ready = notify\nwatchdog = 0s").seldom.watchdog, None);
    assert!(err("ready = sd_notify\nwatchdog = often")
        .1
        .starts_with("watchdog: expected a duration"));
}

#[test]
fn restart_delay_max_interplay() {
    let d = unit("restart_delay = 1m");
    assert_eq!((d.restart_delay, d.restart_delay_max), (60_000, 60_000));
    let d = unit("restart_delay = 1s\nrestart_delay_max = 1s");
    assert_eq!((d.restart_delay, d.restart_delay_max), (1_000, 1_000));
    assert_eq!(
        err("restart_delay_max = 1s\nrestart_delay = 2s"),
        (
            3,
            "restart_delay_max (1000ms) is shorter than restart_delay (2000ms)".into()
        )
    );
    // A maximum alone below the default delay is the first delay too.
    let d = unit("restart_delay_max = 50ms");
    assert_eq!((d.restart_delay, d.restart_delay_max), (50, 50));
    let d = unit("restart_delay_max = 0ms");
    assert_eq!((d.restart_delay, d.restart_delay_max), (0, 0));
}

#[test]
fn start_limit() {
    let sl = |v: &str| {
        unit(&format!("start_limit = {v}"))
            .seldom
            .start_limit
            .unwrap()
    };
    assert_eq!(
        sl("10/5m"),
        StartLimit {
            count: 10,
            window: 300_000
        }
    );
    assert_eq!(
        sl(" 1 / 500ms "),
        StartLimit {
            count: 1,
            window: 500
        }
    );
    assert_eq!(sl("100/1h").count, 100);
    assert_eq!(sl("255/1h").count, 255);
    assert_eq!(
        err("start_limit = 256/1m").1,
        "start_limit: COUNT must be from 1 to 255, got `256`"
    );
    assert_eq!(
        err("start_limit = 0/1m").1,
        "start_limit: COUNT must be from 1 to 255, got `0`"
    );
    assert_eq!(
        err("start_limit = 5").1,
        "start_limit: expected `COUNT/DURATION` like 10/5m, got `5`"
    );
    assert_eq!(
        err("start_limit = 5/0").1,
        "start_limit: expected a non-zero duration like 5m after `/`, got `0`"
    );
    assert!(err("start_limit = 5/x").1.contains("got `x`"));
    assert!(err("start_limit = x/5m").1.contains("COUNT"));
    for (v, a) in [
        ("none", LimitAction::None),
        ("reboot", LimitAction::Reboot),
        ("poweroff", LimitAction::Poweroff),
    ] {
        assert_eq!(
            unit(&format!("start_limit_action = {v}")).start_limit_action,
            a
        );
    }
    assert_eq!(
        err("start_limit_action = halt").1,
        "start_limit_action: expected `none`, `reboot` or `poweroff`, got `halt`"
    );
}

#[test]
fn after() {
    let d = unit("after = a b\tc\nafter = b d\n after=e");
    let names: std::vec::Vec<&str> = d.after.iter().collect();
    assert_eq!(names, ["a", "b", "c", "d", "e"]);
    assert_eq!(
        after_lines("exec = /bin/true\nafter = a b\tc\nafter = b d\n after=e\n"),
        [2, 2, 2, 3, 4]
    );
    assert_eq!(
        err("after = net Bad"),
        (2, "after: `Bad` is not a valid unit name".into())
    );
    assert_eq!(err("after = -x").1, "after: `-x` is not a valid unit name");
    assert_eq!(
        err("after = net svc").1,
        "after: a unit cannot start after itself"
    );
    assert_eq!(err("after =").1, "after: expected unit names");
    let names: std::vec::Vec<std::string::String> =
        (0..AFTER_MAX).map(|i| format!("u{i}")).collect();
    let text = format!("exec = /bin/true\nafter = {}\n", names.join(" "));
    assert_eq!(ok(&text).after.len(), AFTER_MAX);
    assert_eq!(after_lines(&text), [2; AFTER_MAX]);
    assert_eq!(
        err(&format!("after = {}\nafter = one-more", names.join(" "))),
        (3, "after: more than 16 units".into())
    );
    // A repeat does not use up capacity.
    assert_eq!(
        unit(&format!("after = {}\nafter = u0", names.join(" ")))
            .after
            .len(),
        AFTER_MAX
    );
}

/// `after`'s room is 16 names of the longest a name may be, not 16 short
/// ones: a unit after 16 others with 32-letter names loads.
#[test]
fn after_holds_sixteen_names_of_the_longest_length() {
    let names: std::vec::Vec<std::string::String> = (0..AFTER_MAX)
        .map(|i| format!("{i:02}{}", "n".repeat(NAME_MAX - 2)))
        .collect();
    let d = unit(&format!("after = {}", names.join(" ")));
    assert_eq!(d.after.iter().collect::<std::vec::Vec<_>>(), names);
}

#[test]
fn ready() {
    assert_eq!(unit("ready = started").ready, Ready::Started);
    assert_eq!(unit("ready = notify").ready, Ready::Notify);
    assert_eq!(unit("ready = sd_notify").ready, Ready::SdNotify);
    assert_eq!(
        err("ready = sd-notify").1,
        "ready: expected `started`, `notify` or `sd_notify`, got `sd-notify`"
    );
}

#[test]
fn stop_signal() {
    let s = |v: &str| unit(&format!("stop_signal = {v}")).stop_signal;
    assert_eq!(s("TERM"), 15);
    assert_eq!(s("SIGTERM"), 15);
    assert_eq!(s("term"), 15);
    assert_eq!(s("sigint"), 2);
    assert_eq!(s("HUP"), 1);
    assert_eq!(s("QUIT"), 3);
    assert_eq!(s("KILL"), 9);
    assert_eq!(s("USR1"), 10);
    assert_eq!(s("USR2"), 12);
    assert_eq!(s("ALRM"), 14);
    assert_eq!(s("WINCH"), 28);
    assert_eq!(s("PWR"), 30);
    for bad in ["15", "SIG", "TERMINATE", "SIGSIGTERM", "", "RTMIN"] {
        assert!(parse_signal(bad).is_none(), "{bad}");
    }
    assert_eq!(
        err("stop_signal = 15").1,
        "stop_signal: expected a signal name like TERM, got `15`"
    );
}

#[test]
fn user_and_group() {
    assert_eq!(unit("user = 0").seldom.user, Some(IdSpec::Id(0)));
    assert_eq!(unit("user = 1000").seldom.user, Some(IdSpec::Id(1000)));
    assert_eq!(
        unit("group = _daemon.x-1").seldom.group,
        Some(IdSpec::Name(Text::try_from("_daemon.x-1").unwrap()))
    );
    assert_eq!(
        unit("user = 4294967294").seldom.user,
        Some(IdSpec::Id(4_294_967_294))
    );
    assert_eq!(
        err("user = 4294967295").1,
        "user: `4294967295` is not a valid id"
    );
    assert_eq!(
        err("user = 99999999999").1,
        "user: `99999999999` is not a valid id"
    );
    assert!(err("user = -x")
        .1
        .starts_with("user: expected a number or a name"));
    assert!(err("group = a b")
        .1
        .starts_with("group: expected a number or a name"));
    assert!(err("user =").1.starts_with("user: expected"));
    assert!(err(&format!("user = {}", "u".repeat(33)))
        .1
        .starts_with("user: expected"));
    assert!(unit(&format!("user = {}", "u".repeat(32)))
        .seldom
        .user
        .is_some());
}

#[test]
fn paths() {
    assert_eq!(unit("workdir = /var/lib/x").workdir.as_str(), "/var/lib/x");
    assert_eq!(
        err("workdir = var"),
        (2, "workdir: expected an absolute path, got `var`".into())
    );
    let p = format!("/{}", "p".repeat(PATH_BYTES - 1));
    assert_eq!(unit(&format!("workdir = {p}")).workdir.as_str(), p);
    assert_eq!(
        err(&format!("workdir = {p}x")).1,
        "workdir: longer than 128 bytes"
    );
    assert_eq!(
        err("root = rel").1,
        "root: expected an absolute path, got `rel`"
    );
}

#[test]
fn env() {
    let d = unit("env = A=1\nenv = B=\nenv = C=x = y");
    let e: std::vec::Vec<&str> = d.env.iter().collect();
    assert_eq!(e, ["A=1", "B=", "C=x = y"]);
    assert_eq!(
        err("env = C = x").1,
        "env: `C ` is not a valid variable name"
    );
    assert_eq!(
        err("env = NOVALUE").1,
        "env: expected `KEY=VALUE`, got `NOVALUE`"
    );
    assert_eq!(err("env = =x").1, "env: `` is not a valid variable name");
    assert_eq!(
        err("env = A=1\nenv = A=2"),
        (3, "env: `A` is set twice".into())
    );
    let many: std::string::String = (0..ENV_MAX).map(|i| format!("env = V{i}=x\n")).collect();
    assert_eq!(unit(&many).env.len(), ENV_MAX);
    assert_eq!(
        err(&format!("{many}env = ONE=more")),
        (2 + ENV_MAX as u32, "env: more than 16 entries".into())
    );
    let big = format!("env = A={}\nenv = B={}", "a".repeat(600), "b".repeat(600));
    assert_eq!(err(&big), (3, "env: more than 1024 bytes in all".into()));
}

#[test]
fn console_and_output() {
    assert!(unit("console = yes").console);
    assert!(unit("console = true").console);
    assert!(!unit("console = no").console);
    assert!(!unit("console = false").console);
    assert_eq!(
        err("console = 1").1,
        "console: expected `yes` or `no`, got `1`"
    );
    // console = yes means output on the console unless output is given.
    assert_eq!(unit("console = yes").output, Output::Console);
    assert_eq!(unit("output = log\nconsole = yes").output, Output::Log);
    assert_eq!(unit("console = no").output, Output::Log);
    assert_eq!(unit("output = console").output, Output::Console);
    assert_eq!(unit("output = null").output, Output::Null);
    assert_eq!(
        err("output = file").1,
        "output: expected `log`, `console` or `null`, got `file`"
    );
}

#[test]
fn namespaces() {
    let n = |v: &str| unit(&format!("namespaces = {v}")).namespaces;
    assert_eq!(n("none"), Namespaces::NONE);
    assert_eq!(n("pid mount uts ipc net cgroup"), Namespaces(0b11_1111));
    assert_eq!(n("net net"), Namespaces(Namespaces::NET));
    assert_eq!(
        n("cgroup\tipc"),
        Namespaces(Namespaces::CGROUP | Namespaces::IPC)
    );
    assert_eq!(
        err("namespaces = pid time"),
        (
            2,
            "namespaces: expected some of pid mount uts ipc net cgroup user, or `none`, got `time`"
                .into()
        )
    );
    assert_eq!(
        n("user pid"),
        Namespaces(Namespaces::USER | Namespaces::PID)
    );
    assert_eq!(
        err("namespaces = none pid").1,
        "namespaces: `none` cannot be combined with other namespaces"
    );
    assert!(err("namespaces =").1.starts_with("namespaces: expected"));
}

#[test]
fn hostname() {
    assert_eq!(
        unit("hostname = a-b.c1").seldom.hostname.as_deref(),
        Some("a-b.c1")
    );
    let h64 = "h".repeat(64);
    assert_eq!(
        unit(&format!("hostname = {h64}"))
            .seldom
            .hostname
            .as_deref(),
        Some(h64.as_str())
    );
    for bad in ["", "-a", ".a", "a_b", "a b", &"h".repeat(65)] {
        assert!(
            err(&format!("hostname = {bad}"))
                .1
                .starts_with("hostname: expected 1-64"),
            "{bad}"
        );
    }
    assert_eq!(
        err("hostname = h\nnamespaces = pid mount"),
        (
            2,
            "hostname: needs `uts` in namespaces (it would rename the whole system)".into()
        )
    );
}

#[test]
fn root_needs_mount_namespace() {
    assert_eq!(unit("root = /srv/c").seldom.root.as_deref(), Some("/srv/c"));
    assert_eq!(
        err("namespaces = pid\n\nroot = /srv/c"),
        (4, "root: needs `mount` in namespaces".into())
    );
    assert_eq!(err("root = /srv/c\nnamespaces = none").0, 2);
    assert!(unit("root = /srv/c\nnamespaces = mount")
        .seldom
        .root
        .is_some());
}

#[test]
fn root_takes_layers_topmost_first() {
    let d = unit("root = /l/top:/l/mid:/l/base");
    assert_eq!(d.seldom.root.as_deref(), Some("/l/top:/l/mid:/l/base"));
    assert_eq!(
        d.root_layers().collect::<std::vec::Vec<_>>(),
        ["/l/top", "/l/mid", "/l/base"]
    );
    assert!(d.root_is_overlay() && !d.root_overlay);
    let one = unit("root = /srv/c");
    assert_eq!(one.root_layers().collect::<std::vec::Vec<_>>(), ["/srv/c"]);
    assert!(!one.root_is_overlay());
    assert!(unit("root = /srv/c\nroot_overlay = yes").root_is_overlay());
    assert!(!unit("").root_is_overlay());
    // Eight full store paths fit, a ninth layer is refused.
    let store = |i: usize| format!("/var/lib/wren/layers/sha256/{:064x}", i);
    let eight: std::vec::Vec<_> = (0..8).map(store).collect();
    let d = unit(&format!("root = {}", eight.join(":")));
    assert_eq!(d.root_layers().count(), 8);
    let nine: std::vec::Vec<_> = (0..9).map(store).collect();
    assert_eq!(
        err(&format!("root = {}", nine.join(":"))),
        (2, "root: 9 layers, at most 8".into())
    );
    // Too many layers are refused before any is looked at: each is
    // compared with those before it (quadratic), and a unit file's size
    // allows 1,600 of them. Here the last repeats the first.
    let many: std::vec::Vec<_> = (0..1600)
        .map(|i| format!("/l{i}"))
        .chain(["/l0".into()])
        .collect();
    assert_eq!(
        err(&format!("root = {}", many.join(":"))),
        (2, "root: 1601 layers, at most 8".into())
    );
    assert_eq!(
        err("root = /a:rel"),
        (
            2,
            "root: layer 2: expected an absolute path, got `rel`".into()
        )
    );
    assert_eq!(
        err("root = /a::/b").1,
        "root: layer 2: expected an absolute path, got ``"
    );
    assert_eq!(
        err("root = /a:").1,
        "root: layer 2: expected an absolute path, got ``"
    );
    // overlayfs refuses a lower directory named twice (ELOOP).
    assert_eq!(err("root = /a:/b:/a/").1, "root: layer 3 is layer 1 again");
    assert_eq!(
        err("root = /a,b:/c").1,
        "root: layer 1: `,` and `\\` are not allowed, got `/a,b`"
    );
    let long = format!("/{}", "x".repeat(130));
    assert_eq!(
        err(&format!("root = /a:{long}")).1,
        "root: layer 2: longer than 128 bytes"
    );
    assert_eq!(
        err(&format!("root = {long}")).1,
        "root: longer than 128 bytes"
    );
    assert_eq!(
        err("namespaces = pid\nroot = /a:/b"),
        (3, "root: needs `mount` in namespaces".into())
    );
    render_tests::roundtrip("exec = /bin/sh\nroot = /l/a:/l/b\nroot_overlay = yes\n");
}

/// A layer of `root` may be as long as any path (128 bytes), as `root`
/// with one directory and `workdir` may.
#[test]
fn a_root_layer_of_the_longest_path_is_taken() {
    let p = format!("/{}", "p".repeat(PATH_BYTES - 1));
    let d = unit(&format!("root = /a:{p}"));
    assert_eq!(d.root_layers().collect::<std::vec::Vec<_>>(), ["/a", &*p]);
}

#[test]
fn sizes() {
    assert_eq!(parse_size("max"), Some(Limit::Max));
    assert_eq!(parse_size("0"), Some(Limit::Value(0)));
    assert_eq!(parse_size("4096"), Some(Limit::Value(4096)));
    assert_eq!(parse_size("1K"), Some(Limit::Value(1024)));
    assert_eq!(parse_size("1k"), Some(Limit::Value(1024)));
    assert_eq!(parse_size("3M"), Some(Limit::Value(3 << 20)));
    assert_eq!(parse_size("2G"), Some(Limit::Value(2 << 30)));
    for bad in [
        "",
        "MAX",
        "1T",
        "1.5M",
        "-1",
        "1 M",
        "M",
        "1KB",
        "17179869184G",
    ] {
        assert_eq!(parse_size(bad), None, "{bad}");
    }
    for key in [
        "memory.max",
        "memory.high",
        "memory.low",
        "memory.min",
        "memory.swap.max",
    ] {
        assert_eq!(
            err(&format!("{key} = lots")).1,
            format!("{key}: expected bytes with an optional K, M or G, or `max`, got `lots`")
        );
    }
    assert_eq!(
        unit("memory.low = max").limits.get().memory_low,
        Some(Limit::Max)
    );
}

#[test]
fn pids_and_weights() {
    assert_eq!(
        unit("pids.max = max").limits.get().pids_max,
        Some(Limit::Max)
    );
    assert_eq!(
        unit("pids.max = 0").limits.get().pids_max,
        Some(Limit::Value(0))
    );
    assert_eq!(
        err("pids.max = 10K").1,
        "pids.max: expected a number or `max`, got `10K`"
    );
    assert!(err("pids.max = -1").1.starts_with("pids.max:"));
    // PID_MAX_LIMIT: the kernel refuses more (EINVAL at every start).
    assert_eq!(
        unit("pids.max = 4194304").limits.get().pids_max,
        Some(Limit::Value(4_194_304))
    );
    assert_eq!(
        err("pids.max = 4194305").1,
        "pids.max: at most 4194304 (the kernel's limit) or `max`, got `4194305`"
    );
    for key in ["cpu.weight", "io.weight"] {
        let lim = |v: &str| {
            let l = unit(&format!("{key} = {v}")).limits.get();
            if key == "cpu.weight" {
                l.cpu_weight
            } else {
                l.io_weight
            }
        };
        assert_eq!(lim("1"), Some(1));
        assert_eq!(lim("10000"), Some(10_000));
        for bad in ["0", "10001", "+5", "x", "", "70000"] {
            assert_eq!(
                err(&format!("{key} = {bad}")).1,
                format!("{key}: expected a number from 1 to 10000, got `{bad}`")
            );
        }
    }
}

#[test]
fn cpu_max() {
    let c = |v: &str| {
        unit(&format!("cpu.max = {v}"))
            .limits
            .get()
            .cpu_max
            .unwrap()
    };
    assert_eq!(c("50000 100000"), (Limit::Value(50_000), 100_000));
    assert_eq!(c("max 20000"), (Limit::Max, 20_000));
    assert_eq!(c("max"), (Limit::Max, 100_000));
    assert_eq!(c("25000"), (Limit::Value(25_000), 100_000));
    assert_eq!(c("1000 1000"), (Limit::Value(1000), 1000));
    assert_eq!(c("200000  1000000"), (Limit::Value(200_000), 1_000_000));
    assert_eq!(
        err("cpu.max = 999 1000").1,
        "cpu.max: expected a quota from 1000 to 17592186044415 (microseconds) or `max`, got `999`"
    );
    // The kernel's max_cfs_runtime: above it every start would fail.
    assert_eq!(c("17592186044415"), (Limit::Value((1 << 44) - 1), 100_000));
    assert!(err("cpu.max = 17592186044416")
        .1
        .contains("got `17592186044416`"));
    assert_eq!(
        err("cpu.max = max 999").1,
        "cpu.max: expected a period from 1000 to 1000000 (microseconds), got `999`"
    );
    assert!(err("cpu.max = max 1000001").1.contains("got `1000001`"));
    assert_eq!(
        err("cpu.max = 1 2 3").1,
        "cpu.max: expected `QUOTA PERIOD` or `max PERIOD`, got `1 2 3`"
    );
    assert!(err("cpu.max =").1.starts_with("cpu.max: expected a quota"));
    assert!(err("cpu.max = 50% 100000").1.contains("got `50%`"));
}

#[test]
fn description() {
    assert_eq!(unit("description =").description.as_str(), "");
    let d = "d".repeat(DESC_MAX);
    assert_eq!(unit(&format!("description = {d}")).description.as_str(), d);
    assert_eq!(
        err(&format!("description = {d}x")).1,
        "description: longer than 96 bytes"
    );
    assert_eq!(
        unit("description = Ünïcode ☃ = fine").description.as_str(),
        "Ünïcode ☃ = fine"
    );
}

#[test]
fn long_values_are_clipped_in_messages() {
    let v = "v".repeat(300);
    let (_, m) = err(&format!("type = {v}"));
    assert!(m.len() <= 160);
    assert!(m.ends_with(&format!("got `{}...`", "v".repeat(40))), "{m}");
    // The message buffer itself never overflows.
    let m = msg(format_args!("{}", "é".repeat(200)));
    assert!(m.ends_with("...") && m.len() <= 160);
}

/// A message longer than its buffer keeps all that fits with the `...`:
/// 157 bytes of it, not fewer.
#[test]
fn a_full_message_keeps_all_it_can_before_the_dots() {
    let m = msg(format_args!("{}", "m".repeat(200)));
    assert_eq!(m.as_str(), format!("{}...", "m".repeat(157)));
}

#[test]
fn line_numbers_count_comments_and_blank_lines() {
    let e = parse("svc", "# c\n\n\nexec = /bin/true\n# c\n\noops = 1\n").unwrap_err();
    assert_eq!(e.line, 7);
    let e = parse("svc", "a\r\nexec = /bin/true\r\n").unwrap_err();
    assert_eq!(e.line, 1);
}

mod render_tests {

    use super::*;

    /// Render `text`'s definition, check it parses back the same, and
    /// return what was rendered.
    pub(super) fn roundtrip(text: &str) -> std::string::String {
        let a = parse("web", text).unwrap();
        let mut out = std::string::String::new();
        render(&a, &mut out).unwrap();
        let b = parse("web", &out).unwrap_or_else(|e| panic!("{out}\n{e:?}"));
        assert_eq!(a, b, "rendered:\n{out}");
        out
    }

    #[test]
    fn render_parses_back_to_the_same_definition() {
        roundtrip("exec = /bin/true\n");
        roundtrip("exec = /bin/true\npressure_limit = 20%/1500ms\npressure_action = restart\nshed_order = 7\n");
        roundtrip("exec = /bin/true\ncritical = yes\n");
        roundtrip("exec = /bin/true\nstart_timeout = 1500ms\n");
        roundtrip("exec = /bin/true\nstart_timeout = 0s\n");
        roundtrip("exec = /bin/true\nready = sd_notify\nwatchdog = 1500ms\n");
        roundtrip(
            "description = the web server\n\
             exec = /bin/httpd -f \"a b\" \"q\\\"uote\" back\\\\slash\n\
             type = oneshot\nrestart = on-failure\nrestart_delay = 250ms\n\
             restart_delay_max = 1m\nstart_limit = 10/5m\nstart_limit_action = reboot\n\
             after = lo net\nready = sd_notify\nstop_signal = INT\nstop_timeout = 2s\n\
             user = nobody\ngroup = 65534\nworkdir = /tmp\nenv = A=1\nenv = B=x y\n\
             console = yes\noutput = log\nnamespaces = pid mount uts net\nhostname = box\n\
             root = /srv/c\nlog_size = 16K\nmemory.max = 16M\nmemory.high = 1000\nmemory.low = 4K\n\
             memory.min = 1G\nmemory.swap.max = max\npids.max = 64\ncpu.weight = 50\n\
             cpu.max = 50000 100000\nio.weight = 200\n",
        );
        roundtrip("exec = /bin/sh\nnamespaces = none\nconsole = yes\n");
        roundtrip("exec = /bin/sh\ncpu.max = max 20000\npids.max = max\n");
        roundtrip("exec = /bin/sh\nuser = www\ncapabilities = CAP_NET_BIND_SERVICE net_raw\nno_new_privs = yes\nseccomp = @system-service @mount sethostname\n");
        roundtrip(
            "exec = /bin/sh\ncapabilities = none\nseccomp = ~ @mount reboot\nread_only = yes\n",
        );
        roundtrip("exec = /bin/sh\ncapabilities = all\n");
        roundtrip("exec = /bin/sh\nnamespaces = user mount pid\nuser_map = 300000 10\nroot = /srv/box\nroot_overlay = yes\n");
    }

    /// `initctl cat` (docs/initctl.md): `exec` and every key that is not
    /// at its default, with normalised values; a default unit is its
    /// `exec` line alone.
    #[test]
    fn render_writes_exec_and_only_the_keys_off_their_default() {
        assert_eq!(roundtrip("exec = /bin/true\n"), "exec = /bin/true\n");
        // `restart_delay_max` alone is off its default too; a word is
        // quoted only when it must be; durations and sizes in their
        // largest whole unit, 0 without one.
        assert_eq!(
            roundtrip(
                "exec = /bin/echo \"a b\" \"\" q\\\"x back\\\\slash plain\n\
                 restart_delay_max = 1m\nstop_timeout = 2h\nstart_timeout = 0\n\
                 memory.max = 16M\nmemory.high = 1000\nmemory.swap.max = 0\n"
            ),
            "exec = /bin/echo \"a b\" \"\" \"q\\\"x\" \"back\\\\slash\" plain\n\
             restart_delay = 100ms\nrestart_delay_max = 1m\nstop_timeout = 2h\n\
             memory.max = 16M\nmemory.high = 1000\nmemory.swap.max = 0\n\
             start_timeout = 0s\n"
        );
    }
}

#[test]
fn confinement_keys() {
    let d = ok("exec = /bin/x\nuser = www\ncapabilities = CAP_NET_BIND_SERVICE\n");
    assert_eq!(d.seldom.capabilities, Some(Caps(1 << 10)));
    assert_eq!(d.kept_caps(false), Caps(1 << 10));
    let d = ok("exec = /bin/x\n");
    assert_eq!(
        (d.kept_caps(true), d.kept_caps(false)),
        (Caps::ALL, Caps::NONE)
    );
    assert!(!d.no_new_privs_effective());
    let d = ok("exec = /bin/x\nseccomp = read\n");
    assert!(d.no_new_privs_effective(), "a filter implies no_new_privs");
    assert_eq!(ok("exec = /bin/x\nseccomp = none\n").seccomp, None);
    let d = ok("exec = /bin/x\nnamespaces = user\n");
    assert_eq!(d.user_map_effective(), Some(UserMap::DEFAULT));
    let d = ok("exec = /bin/x\nnamespaces = user pid\nuser_map = 5000 10\n");
    assert_eq!(
        d.user_map_effective(),
        Some(UserMap {
            outside: 5000,
            count: 10
        })
    );
    // `all` and `none` in any case, as the names are (docs/units.md).
    for (v, caps) in [("ALL", Caps::ALL), ("All", Caps::ALL), ("NONE", Caps::NONE)] {
        let d = ok(&format!("exec = /bin/x\ncapabilities = {v}\n"));
        assert_eq!((d.kept_caps(true), d.kept_caps(false)), (caps, caps), "{v}");
    }
    assert!(ok("exec = /bin/x\nnamespaces = none\n").unconfined());
    assert!(!ok("exec = /bin/x\nnamespaces = none\nno_new_privs = yes\n").unconfined());
    assert!(!ok("exec = /bin/x\nnamespaces = none\nuser = nobody\n").unconfined());
    assert!(ok("exec = /bin/x\nnamespaces = none\nuser = root\n").unconfined());
}

/// Least privilege is any one of: a user other than root, fewer than all
/// capabilities, no_new_privs (or a filter), a user namespace, a
/// read-only or an overlay root.
#[test]
fn any_one_least_privilege_key_confines() {
    for plain in ["", "user = root", "user = 0", "namespaces = none"] {
        assert!(!unit(plain).confined(), "{plain}");
    }
    for key in [
        "user = nobody",
        "user = 1000",
        "capabilities = none",
        "no_new_privs = yes",
        "seccomp = read",
        "namespaces = pid user",
        "read_only = yes",
        "root = /srv/a\nroot_overlay = yes",
    ] {
        assert!(unit(key).confined(), "{key}");
    }
}

#[test]
fn bad_confinement_values_are_line_errors() {
    for (text, line, want) in [
        (
            "exec = /bin/x\ncapabilities = net_bind_servic\n",
            2,
            "unknown capability `net_bind_servic`",
        ),
        (
            "exec = /bin/x\ncapabilities = all net_raw\n",
            2,
            "`all` and `none` stand alone",
        ),
        (
            "exec = /bin/x\nseccomp = read frobnicate\n",
            2,
            "unknown system call `frobnicate`",
        ),
        (
            "exec = /bin/x\nseccomp = @system-servic\n",
            2,
            "unknown group `@system-servic`",
        ),
        (
            "exec = /bin/x\nseccomp = ~\n",
            2,
            "expected system call names",
        ),
        (
            "exec = /bin/x\nseccomp = read none\n",
            2,
            "`none` stands alone",
        ),
        (
            "exec = /bin/x\nno_new_privs = maybe\n",
            2,
            "expected `yes` or `no`",
        ),
        (
            "exec = /bin/x\nnamespaces = user\nuser_map = 100000\n",
            3,
            "expected `OUTSIDE_UID COUNT`",
        ),
        (
            "exec = /bin/x\nnamespaces = user\nuser_map = 0 10\n",
            3,
            "real root",
        ),
        (
            "exec = /bin/x\nnamespaces = user\nuser_map = 4294967295 2\n",
            3,
            "fit in 32 bits",
        ),
        (
            "exec = /bin/x\nnamespaces = user\nuser_map = x 2\n",
            3,
            "two numbers",
        ),
        (
            "exec = /bin/x\nuser_map = 100000 10\n",
            2,
            "needs `user` in namespaces",
        ),
        (
            "exec = /bin/x\nnamespaces = none\nread_only = yes\n",
            3,
            "needs `mount`",
        ),
        ("exec = /bin/x\nroot_overlay = yes\n", 2, "needs `root`"),
        (
            "exec = /bin/x\nroot = /srv/a,lowerdir=/\nroot_overlay = yes\n",
            2,
            "`,` and `\\` are not allowed with root_overlay",
        ),
        (
            "exec = /bin/x\nnamespaces = users\n",
            2,
            "pid mount uts ipc net cgroup user",
        ),
    ] {
        let e = parse("svc", text).unwrap_err();
        assert_eq!(e.line, line, "{text}: {}", e.msg);
        assert!(e.msg.contains(want), "{text}: {}", e.msg);
    }
}

/// Which units their namespace's reaper may restart in place: a service
/// restarted at once in its own PID namespace whose start needs nothing
/// of PID 1's; any one of the keys that does makes it PID 1's.
#[test]
fn only_a_self_contained_unit_restarts_in_place() {
    assert!(unit("restart_delay = 0ms\n").relaunches_in_place());
    assert!(unit("restart_delay = 0ms\nrestart = on-failure\nuser = 1000\n").relaunches_in_place());
    assert!(!unit("").relaunches_in_place(), "a restart delay");
    for key in [
        "restart = never",
        "namespaces = mount uts",
        "namespaces = pid user",
        "ready = notify",
        "ready = sd_notify",
        "ready = sd_notify\nwatchdog = 5s",
        "start_limit = 3/1m",
        "root = /srv/a:/srv/b",
        "root = /srv/a\nroot_overlay = yes",
        "seccomp = @default",
        "console = yes",
        "output = console",
        "type = oneshot",
    ] {
        let d = unit(&format!("restart_delay = 0ms\n{key}\n"));
        assert!(!d.relaunches_in_place(), "{key}");
    }
}
