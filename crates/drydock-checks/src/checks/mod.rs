//! The catalogue. One module per check; the order here is the order of `drydock checks`.

mod elf_interpreter_missing;
mod elf_library_missing;
mod elf_not_stripped;
mod elf_symbol_version_missing;
mod elf_wrong_architecture;

use crate::Check;

/// Every check drydock runs.
pub fn all() -> &'static [&'static dyn Check] {
    &[
        &elf_interpreter_missing::InterpreterMissing,
        &elf_library_missing::LibraryMissing,
        &elf_symbol_version_missing::SymbolVersionMissing,
        &elf_wrong_architecture::WrongArchitecture,
        &elf_not_stripped::NotStripped,
    ]
}
