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

mod certs;
pub mod codec;
mod elf;
pub mod secrets;
mod shell;

use std::io::{self, Read};

use drydock_layers::{ContentHook, EntryMeta};

pub use certs::{CertBundle, parse_bundle};
pub use elf::{
    ElfClass, ElfFacts, ElfKind, ExecRefusal, GoBuildInfo, GoModule, Libc, NeededVersion,
    RustPackage, Sections, VersionNeed, elf_facts, go_build_info, machine_name,
};
pub use secrets::SecretFacts;
pub use shell::ShellKind;

/// Files captured whole are at most this large; of a larger one, this much is kept.
pub const MAX_CAPTURE: u64 = 8 << 20;

/// What drydock learned from a file's content.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FileFacts {
    Elf(Box<ElfFacts>),
    /// A POSIX shell program, told by its own strings (see [`ShellKind`]): an ELF file to
    /// every reader, with one more field.
    #[serde(rename = "elf")]
    Shell {
        #[serde(flatten)]
        elf: Box<ElfFacts>,
        shell: ShellKind,
    },
    /// A configuration file kept whole (see [`wants_content`]), or its first `MAX_CAPTURE`
    /// bytes when it is larger (`total` says how large it is).
    Captured {
        #[serde(skip)]
        bytes: Vec<u8>,
        size: usize,
        /// The file's size, when only its beginning was kept.
        #[serde(skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
    },
    /// A PEM file: a certificate bundle, or a single certificate.
    Pem(CertBundle),
    /// A script: the interpreter line after `#!`.
    Script {
        shebang: String,
    },
    /// A credential (its kind and place, never its value).
    Secret(SecretFacts),
}

impl FileFacts {
    pub fn elf(&self) -> Option<&ElfFacts> {
        match self {
            Self::Elf(facts) | Self::Shell { elf: facts, .. } => Some(facts),
            _ => None,
        }
    }

    /// Which shell an ELF program is, when its strings say so.
    pub fn shell(&self) -> Option<ShellKind> {
        match self {
            Self::Shell { shell, .. } => Some(*shell),
            _ => None,
        }
    }

    pub fn captured(&self) -> Option<&[u8]> {
        match self {
            Self::Captured { bytes, .. } => Some(bytes),
            _ => None,
        }
    }

    /// The size of a captured file of which only the beginning was kept: too big is not
    /// absent, and what was not read is not known.
    pub fn captured_in_part(&self) -> Option<u64> {
        match self {
            Self::Captured { total, .. } => *total,
            _ => None,
        }
    }

    pub fn pem(&self) -> Option<&CertBundle> {
        match self {
            Self::Pem(bundle) => Some(bundle),
            _ => None,
        }
    }

    pub fn secret(&self) -> Option<&SecretFacts> {
        match self {
            Self::Secret(secret) => Some(secret),
            _ => None,
        }
    }

    pub fn shebang(&self) -> Option<&str> {
        match self {
            Self::Script { shebang } => Some(shebang),
            _ => None,
        }
    }
}

/// The files whose whole content analyses need: the dynamic loaders' cache and configuration,
/// the user and group databases, and zone database zips (Go's `zoneinfo.zip`, which
/// `$ZONEINFO` may name).
pub fn wants_content(path: &[u8]) -> bool {
    let name = path.rsplit(|&b| b == b'/').next().unwrap_or(path);
    (name.ends_with(b".zip") && memchr::memmem::find(name, b"zoneinfo").is_some())
        || path == b"etc/ld.so.cache"
        || path == b"etc/passwd"
        || path == b"etc/group"
        || path == b"etc/ld.so.conf"
        || (path.starts_with(b"etc/ld.so.conf.d/") && path.ends_with(b".conf"))
        || (path.starts_with(b"etc/ld-musl-") && path.ends_with(b".path"))
}

/// Files read for credentials are at most this large (bundles are read whole up to
/// `MAX_CAPTURE` below).
const MAX_SECRET_READ: u64 = 1 << 20;

/// How much of a script's first line is kept.
const MAX_SHEBANG: u64 = 256;

fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
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
        if wants_content(path) {
            let kept = meta.size.min(MAX_CAPTURE);
            let mut bytes = Vec::with_capacity(usize::try_from(kept).unwrap_or(0));
            content.take(MAX_CAPTURE).read_to_end(&mut bytes)?;
            return Ok(Some(FileFacts::Captured {
                size: bytes.len(),
                bytes,
                total: (meta.size > MAX_CAPTURE).then_some(meta.size),
            }));
        }
        if meta.size < 2 {
            return Ok(None);
        }
        let mut magic = [0u8; 4];
        let got = read_up_to(content, &mut magic)?;
        let magic = &magic[..got];
        // A file too short for a header is an ELF file too: one the kernel refuses.
        if magic == b"\x7fELF" {
            let magic: [u8; 4] = [0x7f, b'E', b'L', b'F'];
            if shell::candidate(path, meta.size) {
                // The ELF pass streams the whole file: look for a shell's strings on the way.
                let mut scan = shell::Scan::new(content);
                let facts = Box::new(elf::read(&magic, &mut scan, meta.size)?);
                return Ok(Some(match scan.found() {
                    Some(shell) => FileFacts::Shell { elf: facts, shell },
                    None => FileFacts::Elf(facts),
                }));
            }
            let facts = elf::read(&magic, content, meta.size)?;
            return Ok(Some(FileFacts::Elf(Box::new(facts))));
        }
        if magic.starts_with(b"#!") {
            let mut line = magic.to_vec();
            content.take(MAX_SHEBANG).read_to_end(&mut line)?;
            let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
            let shebang = String::from_utf8_lossy(&line[2..end]).trim().to_owned();
            return Ok(Some(FileFacts::Script { shebang }));
        }
        // Files that may hold credentials, read up to a bound (private keys in any PEM file).
        let is_candidate = secrets::candidate(path);
        if (is_candidate || magic == b"----") && meta.size <= MAX_SECRET_READ {
            let mut bytes = magic.to_vec();
            content.take(MAX_SECRET_READ).read_to_end(&mut bytes)?;
            if let Some(secret) = secrets::scan(path, &bytes) {
                return Ok(Some(FileFacts::Secret(secret)));
            }
            if magic == b"----" || certs::wants(path) {
                let bundle = parse_bundle(&bytes);
                if bundle.certificates > 0 || bundle.unparsable > 0 || certs::wants(path) {
                    return Ok(Some(FileFacts::Pem(bundle)));
                }
            }
            return Ok(None);
        }
        // Certificate bundles and the files of certificate directories, whatever they start
        // with: a PEM header, comments (Fedora's), or text (Android's), which parsers skip.
        if meta.size <= MAX_CAPTURE && certs::wants(path) {
            let mut bytes = magic.to_vec();
            content.take(MAX_CAPTURE).read_to_end(&mut bytes)?;
            return Ok(Some(FileFacts::Pem(parse_bundle(&bytes))));
        }
        if magic == b"----" && meta.size <= MAX_CAPTURE {
            let mut bytes = magic.to_vec();
            content.take(MAX_CAPTURE).read_to_end(&mut bytes)?;
            let bundle = parse_bundle(&bytes);
            if bundle.certificates > 0 || bundle.unparsable > 0 {
                return Ok(Some(FileFacts::Pem(bundle)));
            }
        }
        Ok(None)
    }
}
