//! `drydock_fuzz::go_build_info`: see `fuzz/src/bodies.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| drydock_fuzz::go_build_info(data));
