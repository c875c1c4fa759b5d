//! `drydock_fuzz::ld_conf`: see `fuzz/src/bodies.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| drydock_fuzz::ld_conf(data));
