//! Multi-call binary: PID 1 is the init, `initctl` (or `wren CMD`) the
//! client; a PID namespace's reaper comes back here after its exec. The
//! process starts in `wren::sys::entry::wren_main` (C's `main`, without Rust's
//! start-up: see there), which hands over to `wren::entry::run`.

#![no_main]

#[global_allocator]
static ALLOC: wren::sys::alloc::Counting = wren::sys::alloc::Counting;
