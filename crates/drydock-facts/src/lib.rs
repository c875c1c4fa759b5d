//! Facts about files, read from their bytes while the layer streams past.
//!
//! This crate owns the [`FactsHook`] the layer walk calls for every regular file, and the
//! parsers behind it (for now the ELF header, program headers and `PT_INTERP`, read the way the
//! kernel's `execve` reads them). It reads as few bytes as it can: a file whose first bytes are
//! not interesting is left to be skipped.
//!
//! It must never fail on malformed content (a damaged ELF file is a fact, not an error), never
//! buffer a whole file, and never do I/O other than reading the stream it is handed.

mod elf;

use std::io::{self, Read};

use drydock_layers::{ContentHook, EntryMeta};

pub use elf::{ElfClass, ElfFacts, ElfKind, Libc, elf_facts};

/// What drydock learned from a file's content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FileFacts {
    Elf(ElfFacts),
}

impl FileFacts {
    pub fn elf(&self) -> Option<&ElfFacts> {
        match self {
            Self::Elf(facts) => Some(facts),
        }
    }
}

/// The content hook that extracts [`FileFacts`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FactsHook;

impl ContentHook for FactsHook {
    type Fact = FileFacts;

    fn inspect(
        &self,
        _path: &[u8],
        meta: &EntryMeta,
        content: &mut dyn Read,
    ) -> io::Result<Option<FileFacts>> {
        if meta.size < 4 {
            return Ok(None);
        }
        let mut magic = [0u8; 4];
        content.read_exact(&mut magic)?;
        if magic != *b"\x7fELF" {
            return Ok(None);
        }
        let facts = elf::read(&magic, content, meta.size)?;
        Ok(Some(FileFacts::Elf(facts)))
    }
}
