//! Keys whose value is a list: `after` and `env` (which may also repeat
//! over lines, adding to what earlier lines gave) and `namespaces`.

use super::values::{bad, Clip, Msg};
use super::*;

/// `after = A B ...`: each valid name once, never the unit itself.
pub(super) fn add_after(
    def: &mut UnitDef,
    lines: &mut AfterLines,
    v: &str,
    line: u32,
) -> Result<(), Msg> {
    if v.is_empty() {
        bad!("after: expected unit names");
    }
    for name in v.split_whitespace() {
        if !valid_name(name) {
            bad!("after: `{}` is not a valid unit name", Clip(name));
        }
        if name == def.name.as_str() {
            bad!("after: a unit cannot start after itself");
        }
        if def.after.iter().any(|a| a == name) {
            continue;
        }
        if def.after.push(name).is_err() || lines.push(line).is_err() {
            bad!("after: more than {AFTER_MAX} units");
        }
    }
    Ok(())
}

/// `env = KEY=VALUE`: one entry, its KEY not set before.
pub(super) fn add_env(def: &mut UnitDef, v: &str) -> Result<(), Msg> {
    let Some((k, _)) = v.split_once('=') else {
        bad!("env: expected `KEY=VALUE`, got `{}`", Clip(v));
    };
    if k.is_empty() || k.contains(char::is_whitespace) {
        bad!("env: `{}` is not a valid variable name", Clip(k));
    }
    if def
        .env
        .iter()
        .any(|e| e.split_once('=').is_some_and(|(ek, _)| ek == k))
    {
        bad!("env: `{}` is set twice", Clip(k));
    }
    match def.env.push(v) {
        Ok(()) => {}
        Err(PackError::TooMany) => bad!("env: more than {ENV_MAX} entries"),
        Err(PackError::TooLong) => bad!("env: more than {ENV_BYTES} bytes in all"),
        Err(PackError::Nul) => bad!("env: contains a NUL byte"),
    }
    Ok(())
}

/// `namespaces = pid mount ...` or `none`.
pub(super) fn parse_namespaces(v: &str) -> Result<Namespaces, Msg> {
    let mut bits = 0u8;
    let mut none = false;
    let mut count = 0u32;
    for w in v.split_whitespace() {
        count = count.saturating_add(1);
        bits |= match (w, Namespaces::bit(w)) {
                (_, Some(bit)) => bit,
                ("none", None) => {
                    none = true;
                    0
                }
                _ => bad!(
                    "namespaces: expected some of pid mount uts ipc net cgroup user, or `none`, got `{}`",
                    Clip(w)
                ),
            };
    }
    if count == 0 {
        bad!("namespaces: expected some of pid mount uts ipc net cgroup user, or `none`");
    }
    if none && count > 1 {
        bad!("namespaces: `none` cannot be combined with other namespaces");
    }
    Ok(Namespaces(bits))
}
