//! No stack unwinder in the release binary.
//!
//! The release profile has `panic = "abort"`: a panic prints its message
//! and aborts, nothing unwinds. Still, std's default panic hook can print
//! a backtrace (`RUST_BACKTRACE`), and to walk the stack it calls
//! `_Unwind_Backtrace`, which links LLVM's libunwind and, through the
//! per-frame callback, std's whole symbolizer (gimli, addr2line,
//! rustc-demangle, miniz_oxide): about 150 KB of the binary, a third of
//! it. The precompiled std's landing pads and its personality routine
//! also name a few `_Unwind_*` functions, which pull in the rest of
//! libunwind.
//!
//! So, for static musl builds with `panic = "abort"` only, this module
//! defines those symbols itself; the linker then never takes libunwind's
//! archive members (an archive member is only pulled in for a symbol that
//! is still undefined). `_Unwind_Backtrace` reports an empty stack (its
//! documented "end of stack" result, without calling the callback), so
//! under LTO the callback and the symbolizer behind it are dead code. A
//! panic still prints `thread '…' panicked at FILE:LINE: MESSAGE` and
//! aborts; `RUST_BACKTRACE=1` prints an empty backtrace.
//!
//! The other functions are called only by an unwinder in the middle of
//! unwinding (the personality routine's helpers, and `_Unwind_Resume` at
//! the end of a landing pad), and with `panic = "abort"` and no C++ in the
//! binary nothing ever starts an unwind (`_Unwind_RaiseException` is not
//! defined anywhere in the link; if anything came to need it, libunwind's
//! member would be pulled in and clash with these definitions, failing the
//! link rather than mixing two unwinders). They abort, should the
//! impossible happen.
//!
//! With no unwinder in the binary, nothing reads `.eh_frame` or
//! `.gcc_except_table` either, which is why the release link may discard
//! them (see `init/unwind.ld`).

use core::ffi::{c_int, c_void};

/// `_URC_END_OF_STACK`: the walk reached the outermost frame.
const END_OF_STACK: c_int = 5;

/// Reports an empty stack: std's backtrace printer then prints no frames.
#[unsafe(no_mangle)]
pub extern "C" fn _Unwind_Backtrace(
    _trace: extern "C" fn(*mut c_void, *mut c_void) -> c_int,
    _arg: *mut c_void,
) -> c_int {
    END_OF_STACK
}

/// Only called by an unwinder, and there is none: see the module comment.
fn unreachable_unwind() -> ! {
    std::process::abort()
}

macro_rules! never_called {
    ($($name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?;)*) => {$(
        /// Part of the unwinder ABI; unreachable (see the module comment).
        #[unsafe(no_mangle)]
        pub extern "C" fn $name($($arg: $ty),*) $(-> $ret)? {
            $(let _ = $arg;)*
            unreachable_unwind()
        }
    )*};
}

never_called! {
    _Unwind_Resume(exception: *mut c_void);
    _Unwind_GetLanguageSpecificData(ctx: *mut c_void) -> *mut c_void;
    _Unwind_GetRegionStart(ctx: *mut c_void) -> usize;
    _Unwind_GetTextRelBase(ctx: *mut c_void) -> usize;
    _Unwind_GetDataRelBase(ctx: *mut c_void) -> usize;
    _Unwind_GetIP(ctx: *mut c_void) -> usize;
    _Unwind_GetIPInfo(ctx: *mut c_void, ip_before_insn: *mut c_int) -> usize;
    _Unwind_SetGR(ctx: *mut c_void, reg: c_int, value: usize);
    _Unwind_SetIP(ctx: *mut c_void, value: usize);
}
