//! Facts about files, read from their bytes while the layer streams past.
//!
//! This crate owns the [`FactsHook`] the layer walk calls for every regular file, and the
//! parsers behind it: ELF (program headers, dynamic section, symbol versions, section headers,
//! Go build information) read in one forward pass the way the kernel and the loader read it,
//! and the small configuration files other analyses need whole (the loader's cache and
//! configuration), captured by path.
//!
//! It must never fail on malformed content (a damaged ELF file is a fact, not an error), never
//! buffer a whole large file, and never do I/O other than reading the stream it is handed.

mod elf;

use std::io::{self, Read};

use drydock_layers::{ContentHook, EntryMeta};

pub use elf::{
    ElfClass, ElfFacts, ElfKind, GoBuildInfo, GoModule, Libc, NeededVersion, Sections, VersionNeed,
    elf_facts, machine_name,
};

/// Files captured whole are at most this large.
const MAX_CAPTURE: u64 = 8 << 20;

/// What drydock learned from a file's content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FileFacts {
    Elf(Box<ElfFacts>),
    /// A configuration file kept whole (see [`wants_content`]).
    Captured {
        #[serde(skip)]
        bytes: Vec<u8>,
        size: usize,
    },
}

impl FileFacts {
    pub fn elf(&self) -> Option<&ElfFacts> {
        match self {
            Self::Elf(facts) => Some(facts),
            Self::Captured { .. } => None,
        }
    }

    pub fn captured(&self) -> Option<&[u8]> {
        match self {
            Self::Captured { bytes, .. } => Some(bytes),
            Self::Elf(_) => None,
        }
    }
}

/// The files whose whole content analyses need: the dynamic loaders' cache and configuration.
pub fn wants_content(path: &[u8]) -> bool {
    path == b"etc/ld.so.cache"
        || path == b"etc/ld.so.conf"
        || (path.starts_with(b"etc/ld.so.conf.d/") && path.ends_with(b".conf"))
        || (path.starts_with(b"etc/ld-musl-") && path.ends_with(b".path"))
}

/// The content hook that extracts [`FileFacts`].
#[derive(Debug, Clone, Copy, Default)]
pub struct FactsHook;

impl ContentHook for FactsHook {
    type Fact = FileFacts;

    fn inspect(
        &self,
        path: &[u8],
        meta: &EntryMeta,
        content: &mut dyn Read,
    ) -> io::Result<Option<FileFacts>> {
        if wants_content(path) && meta.size <= MAX_CAPTURE {
            let mut bytes = Vec::with_capacity(usize::try_from(meta.size).unwrap_or(0));
            content.take(MAX_CAPTURE).read_to_end(&mut bytes)?;
            return Ok(Some(FileFacts::Captured {
                size: bytes.len(),
                bytes,
            }));
        }
        if meta.size < 52 {
            return Ok(None);
        }
        let mut magic = [0u8; 4];
        content.read_exact(&mut magic)?;
        if magic != *b"\x7fELF" {
            return Ok(None);
        }
        let facts = elf::read(&magic, content, meta.size)?;
        Ok(Some(FileFacts::Elf(Box::new(facts))))
    }
}
