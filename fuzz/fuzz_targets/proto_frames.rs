//! Arbitrary bytes in arbitrary chunks through the `initctl` frame decoder
//! and the request / reply decoders. See `checks::proto_frames` for the
//! input layout and the invariants.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| wren_fuzz::checks::proto_frames(data));
