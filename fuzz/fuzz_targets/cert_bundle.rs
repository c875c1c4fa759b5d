//! `drydock_fuzz::cert_bundle`: see `fuzz/src/bodies.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| drydock_fuzz::cert_bundle(data));
