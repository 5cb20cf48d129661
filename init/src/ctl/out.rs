//! The trait `initctl`'s code writes through (`dyn Out`).

use std::fmt;
use std::io;

/// Where `initctl` writes, standard output or error: the two calls it
/// makes of `io::Write`, and those alone in a `dyn Out`'s vtable. A `dyn
/// io::Write`'s holds every method of the trait, each instantiated for
/// its stream: the vectored writes and `IoSlice::advance_slices`, which
/// nothing here calls (864 bytes of the binary). `write!` is `dyn Out`'s
/// own `write_fmt`, one body for every stream.
pub trait Out {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

impl<W: io::Write + ?Sized> Out for W {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::Write::write_all(self, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::Write::flush(self)
    }
}

impl dyn Out + '_ {
    /// `io::Write::write_fmt` as std's: each piece through `write_all`,
    /// the first error kept. Not a copy of std's adapter per stream.
    pub fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        struct Adapter<'a, 'b> {
            out: &'a mut (dyn Out + 'b),
            error: io::Result<()>,
        }
        impl fmt::Write for Adapter<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                self.out.write_all(s.as_bytes()).map_err(|e| {
                    self.error = Err(e);
                    fmt::Error
                })
            }
        }
        let mut a = Adapter {
            out: self,
            error: Ok(()),
        };
        match fmt::write(&mut a, args) {
            Ok(()) => Ok(()),
            // A `Display` that failed of itself (none here does): an
            // error all the same, as std's "formatter error".
            Err(_) if a.error.is_ok() => Err(io::ErrorKind::Other.into()),
            Err(_) => a.error,
        }
    }
}
