//! wren-core: everything wren decides without touching the system.
//!
//! The unit model and its parser, the supervisor state machine, the
//! `initctl` wire protocol and the per-unit output ring. This crate has no
//! syscall dependency at all (no `nix`, `rustix` or `libc`) and forbids
//! `unsafe`, so the compiler enforces that parsing and supervising reach no
//! syscall; the `wren` crate runs it against the kernel. See
//! docs/architecture.md.

#![forbid(unsafe_code)]

pub(crate) mod codec;
pub mod confine;
pub mod handover;
pub mod log_ring;
pub mod num;
pub mod proto;
pub mod sort;
pub mod supervisor;
pub mod unit;
pub mod vocab;
