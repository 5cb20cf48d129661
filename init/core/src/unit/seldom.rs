//! The keys most units do not set, behind one pointer: a unit that sets
//! none of them pays 8 bytes in every slot of PID 1's table instead of the
//! 160 they take inline.

use super::{Caps, IdSpec, PressureLimit, StartLimit, Text, UserMap};
use crate::vocab::{Millis, HOSTNAME_MAX, ROOT_BYTES};

/// Keys of a unit file that most units leave unset (docs/units.md).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Seldom {
    /// `root`: one directory, or overlay lower layers topmost first,
    /// separated by `:` (see `UnitDef::root_layers`).
    pub root: Option<Text<ROOT_BYTES>>,
    pub start_limit: Option<StartLimit>,
    pub user: Option<IdSpec>,
    pub group: Option<IdSpec>,
    pub hostname: Option<Text<HOSTNAME_MAX>>,
    pub pressure_limit: Option<PressureLimit>,
    /// `watchdog` (with `ready = sd_notify`): a running unit that sends no
    /// `WATCHDOG=1` for this long is killed and restarted; None: off.
    pub watchdog: Option<Millis>,
    /// `capabilities`; None: all for root, none for any other user.
    pub capabilities: Option<Caps>,
    /// `user_map`; with `user` in `namespaces`, None is `UserMap::DEFAULT`.
    pub user_map: Option<UserMap>,
}

/// What an unset box reads as: every key unset.
static UNSET: Seldom = Seldom {
    root: None,
    start_limit: None,
    user: None,
    group: None,
    hostname: None,
    pressure_limit: None,
    watchdog: None,
    capabilities: None,
    user_map: None,
};

/// `Seldom` behind a pointer, allocated at the first write (`DerefMut`:
/// the parser, boot and reload, where PID 1 may allocate); a unit that
/// set none of its keys reads `UNSET`. Compares, prints and serializes as
/// the `Seldom` it reads as.
#[derive(Clone, Default)]
pub struct SeldomBox(Option<Box<Seldom>>);

impl SeldomBox {
    /// Is there a box?
    pub fn is_boxed(&self) -> bool {
        self.0.is_some()
    }

    /// Drop a box that holds only unset keys (the parser, once a file is
    /// read: a key written with its default value leaves one).
    pub fn tidy(&mut self) {
        if self.0.as_deref() == Some(&UNSET) {
            self.0 = None;
        }
    }
}

impl From<Seldom> for SeldomBox {
    fn from(s: Seldom) -> Self {
        let mut b = SeldomBox(Some(Box::new(s)));
        b.tidy();
        b
    }
}

impl core::ops::Deref for SeldomBox {
    type Target = Seldom;
    fn deref(&self) -> &Seldom {
        self.0.as_deref().unwrap_or(&UNSET)
    }
}

impl core::ops::DerefMut for SeldomBox {
    fn deref_mut(&mut self) -> &mut Seldom {
        self.0.get_or_insert_with(Box::default)
    }
}

impl PartialEq for SeldomBox {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for SeldomBox {}

impl core::fmt::Debug for SeldomBox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unit::{parse, UnitDef};

    #[test]
    fn a_unit_that_sets_none_of_its_keys_holds_no_box() {
        let d = parse("t", "exec = /bin/true\nmemory.max = 16M\n").unwrap();
        assert!(!d.seldom.is_boxed());
        assert_eq!(*d.seldom, Seldom::default());
        let d = parse(
            "t",
            "exec = /bin/true\nhostname = box\nready = sd_notify\nwatchdog = 2s\n",
        )
        .unwrap();
        assert!(d.seldom.is_boxed());
        assert_eq!(d.seldom.hostname.as_deref(), Some("box"));
        assert_eq!(d.seldom.watchdog, Some(2_000));
        assert_eq!(d.seldom.user, None);
    }

    #[test]
    fn compares_as_what_it_reads_as() {
        let empty = SeldomBox::default();
        let mut boxed_unset = SeldomBox::default();
        let w: &mut Seldom = &mut boxed_unset;
        w.watchdog = None;
        assert!(boxed_unset.is_boxed());
        assert_eq!(empty, boxed_unset);
        boxed_unset.tidy();
        assert!(!boxed_unset.is_boxed());
        let mut set = SeldomBox::default();
        let w: &mut Seldom = &mut set;
        w.user_map = Some(UserMap::DEFAULT);
        assert_ne!(set, empty);
    }

    #[test]
    fn sizes() {
        assert_eq!(core::mem::size_of::<SeldomBox>(), 8);
        assert_eq!(core::mem::size_of::<Seldom>(), 160);
        // `root` among them since it was 16 bytes of every definition, and
        // `after`'s lines beside it (`AfterLines`) since they were 16 more.
        assert!(core::mem::size_of::<UnitDef>() <= 208);
    }
}
