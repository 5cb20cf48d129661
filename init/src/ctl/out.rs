//! The trait `initctl`'s code writes through (`dyn Out`).

use std::io;

/// Where `initctl` writes, standard output or error: the three calls it
/// makes of `io::Write`, and those alone in a `dyn Out`'s vtable. A `dyn
/// io::Write`'s holds every method of the trait, each instantiated for
/// its stream: the vectored writes and `IoSlice::advance_slices`, which
/// nothing here calls (864 bytes of the binary).
pub trait Out {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    fn write_fmt(&mut self, args: std::fmt::Arguments<'_>) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
}

impl<W: io::Write + ?Sized> Out for W {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::Write::write_all(self, buf)
    }

    fn write_fmt(&mut self, args: std::fmt::Arguments<'_>) -> io::Result<()> {
        io::Write::write_fmt(self, args)
    }

    fn flush(&mut self) -> io::Result<()> {
        io::Write::flush(self)
    }
}
