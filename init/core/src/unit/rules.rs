//! The unit-file rules across keys, once every key of a file is known:
//! what one key needs of another, and the defaults that follow from
//! others. Each problem is reported at the line of the key it names.

use super::parse::{key, State};
use super::values::{msg, Msg};
use super::*;

/// Checks `def` as parsed, and fills in the defaults that depend on other
/// keys; `st` has the line each key was first seen on.
pub(super) fn across_keys(def: &mut UnitDef, st: &State, report: &mut dyn FnMut(u32, Msg)) {
    if st.line_of(const { key("exec") }) == 0 {
        report(0, msg(format_args!("missing `exec`")));
    }
    if st.line_of(const { key("restart") }) == 0 {
        def.restart = match def.kind {
            Kind::Service => Restart::Always,
            Kind::Oneshot => Restart::Never,
        };
    }
    if st.line_of(const { key("output") }) == 0 && def.console {
        def.output = Output::Console;
    }
    // The one given bounds the other's default: a long delay alone is its
    // own maximum, a short maximum alone (`0ms`: every restart at once)
    // the first delay too.
    let max_line = st.line_of(const { key("restart_delay_max") });
    let delay_line = st.line_of(const { key("restart_delay") });
    if def.restart_delay > def.restart_delay_max {
        if max_line == 0 {
            def.restart_delay_max = def.restart_delay;
        } else if delay_line == 0 {
            def.restart_delay = def.restart_delay_max;
        } else {
            report(
                max_line.max(delay_line),
                msg(format_args!(
                    "restart_delay_max ({}ms) is shorter than restart_delay ({}ms)",
                    def.restart_delay_max, def.restart_delay
                )),
            );
        }
    }
    if def.seldom.root.is_some() && !def.namespaces.has(Namespaces::MOUNT) {
        report(
            st.line_of(const { key("root") }),
            msg(format_args!("root: needs `mount` in namespaces")),
        );
    }
    if def.read_only && !def.namespaces.has(Namespaces::MOUNT) {
        report(
            st.line_of(const { key("read_only") }),
            msg(format_args!("read_only: needs `mount` in namespaces")),
        );
    }
    let overlay = match def.seldom.root.as_deref() {
        None => Some((
            const { key("root_overlay") },
            "root_overlay: needs `root` (the overlay's lower layer)",
        )),
        // One directory is overlayfs' `lowerdir` too (layers: `parse_root`).
        Some(r) if !r.contains(':') && r.contains([',', '\\']) => Some((
            const { key("root") },
            "root: `,` and `\\` are not allowed with root_overlay",
        )),
        Some(_) => None,
    };
    if let (true, Some((k, m))) = (def.root_overlay, overlay) {
        report(st.line_of(k), msg(format_args!("{m}")));
    }
    if def.seldom.user_map.is_some() && !def.namespaces.has(Namespaces::USER) {
        report(
            st.line_of(const { key("user_map") }),
            msg(format_args!("user_map: needs `user` in namespaces")),
        );
    }
    // `watchdog = 0` is none, and needs nothing.
    if def.seldom.watchdog.is_some() && def.ready != Ready::SdNotify {
        report(
            st.line_of(const { key("watchdog") }),
            msg(format_args!(
                "watchdog: needs `ready = sd_notify` (the pings are `WATCHDOG=1` on its socket)"
            )),
        );
    }
    if def.seldom.hostname.is_some() && !def.namespaces.has(Namespaces::UTS) {
        report(
            st.line_of(const { key("hostname") }),
            msg(format_args!(
                "hostname: needs `uts` in namespaces (it would rename the whole system)"
            )),
        );
    }
    // Said, not overridden in silence: the unit would run with it on.
    let nnp = st.line_of(const { key("no_new_privs") });
    if nnp != 0 && !def.no_new_privs && def.seccomp.is_some() {
        report(
            nnp,
            msg(format_args!(
                "no_new_privs: `no` cannot hold with a `seccomp` filter, which sets it \
                 (drop this line, or the filter)"
            )),
        );
    }
}
