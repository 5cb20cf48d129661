//! The one place with `unsafe`: every block here is small and carries a
//! `// SAFETY:` comment naming the invariant it relies on. Everything else
//! in the workspace denies `unsafe_code`.

#![allow(unsafe_code)]

pub mod alloc;
