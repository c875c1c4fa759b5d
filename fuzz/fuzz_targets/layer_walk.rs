//! `drydock_fuzz::layer_walk`: see `fuzz/src/bodies.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| drydock_fuzz::layer_walk(data));
