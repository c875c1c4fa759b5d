//! `drydock_fuzz::image_documents`: see `fuzz/src/bodies.rs`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| drydock_fuzz::image_documents(data));
