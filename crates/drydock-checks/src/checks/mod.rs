//! The catalogue. One module per check; the order here is the order of `drydock checks`.

pub(crate) mod build_leftovers;
mod certs;
mod elf_interpreter_missing;
mod elf_library_missing;
mod elf_not_stripped;
mod elf_symbol_version_missing;
mod elf_unloadable;
mod elf_wrong_architecture;
mod entrypoint;
mod fs_setuid;
mod fs_tmp_missing;
mod go_gomaxprocs;
mod layers_wasted;
mod secrets;
mod tz;
mod user;

use crate::Check;

/// Every check drydock runs.
pub fn all() -> &'static [&'static dyn Check] {
    &[
        &elf_interpreter_missing::InterpreterMissing,
        &elf_library_missing::LibraryMissing,
        &elf_symbol_version_missing::SymbolVersionMissing,
        &elf_wrong_architecture::WrongArchitecture,
        &elf_not_stripped::NotStripped,
        &elf_unloadable::Unloadable,
        &entrypoint::Missing,
        &entrypoint::InterpreterMissing,
        &entrypoint::ShellForm,
        &user::Unknown,
        &user::Root,
        &certs::CertsMissing,
        &certs::CertsInvalid,
        &tz::ZoneinfoMissing,
        &tz::LocaltimeDangling,
        &fs_tmp_missing::TmpMissing,
        &go_gomaxprocs::Gomaxprocs,
        &build_leftovers::Toolchain,
        &build_leftovers::Source,
        &layers_wasted::Wasted,
        &secrets::SecretFile,
        &secrets::SecretConfig,
        &fs_setuid::Setuid,
    ]
}
