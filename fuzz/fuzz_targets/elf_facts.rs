//! ELF facts from arbitrary bytes must never panic, loop or allocate without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = drydock_facts::elf_facts(data);
});
