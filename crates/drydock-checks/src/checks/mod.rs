//! The catalogue. One module per check; the order here is the order of `drydock checks`.

mod elf_interpreter_missing;

use crate::Check;

/// Every check drydock runs.
pub fn all() -> &'static [&'static dyn Check] {
    &[&elf_interpreter_missing::InterpreterMissing]
}
