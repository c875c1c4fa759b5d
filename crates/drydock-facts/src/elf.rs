use std::io::{self, Read};

use goblin::container::{Container, Ctx};
use goblin::elf::program_header::{PT_INTERP, ProgramHeader};
use goblin::elf::{Elf, header};

/// Bytes read up front: the ELF header, the program headers and `PT_INTERP` sit in the first
/// page of every binary a linker produces.
const FIRST_READ: u64 = 16 * 1024;
/// Furthest into a file we read to find the structures above, for hand-made layouts.
const MAX_READ: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ElfClass {
    #[serde(rename = "elf32")]
    Elf32,
    #[serde(rename = "elf64")]
    Elf64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ElfKind {
    /// `ET_EXEC`.
    Executable,
    /// `ET_DYN`: a shared library or a position-independent executable.
    Shared,
    Relocatable,
    Core,
    Other,
}

/// The C library a dynamic binary was linked against, told by its interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    Glibc,
    Musl,
    Other,
}

impl Libc {
    pub fn from_interpreter(interpreter: &str) -> Self {
        let name = interpreter.rsplit('/').next().unwrap_or(interpreter);
        if name.starts_with("ld-musl-") {
            Self::Musl
        } else if name.starts_with("ld-linux") || name.starts_with("ld64.so") || name == "ld.so.1" {
            Self::Glibc
        } else {
            Self::Other
        }
    }
}

/// What the kernel looks at when it executes a file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ElfFacts {
    pub class: ElfClass,
    pub little_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    pub kind: ElfKind,
    /// `PT_INTERP`: the program loader `execve` starts; `None` for static binaries.
    pub interpreter: Option<String>,
    /// Why the headers could not be read completely, when they could not.
    pub malformed: Option<String>,
}

impl ElfFacts {
    /// The architecture name for `e_machine`, as `uname -m` spells it.
    pub fn machine_name(&self) -> &'static str {
        machine_name(self.machine, self.class)
    }

    pub fn libc(&self) -> Option<Libc> {
        self.interpreter.as_deref().map(Libc::from_interpreter)
    }
}

pub fn machine_name(machine: u16, class: ElfClass) -> &'static str {
    match (machine, class) {
        (header::EM_X86_64, _) => "x86_64",
        (header::EM_386, _) => "i386",
        (header::EM_AARCH64, _) => "aarch64",
        (header::EM_ARM, _) => "arm",
        (header::EM_RISCV, ElfClass::Elf64) => "riscv64",
        (header::EM_RISCV, ElfClass::Elf32) => "riscv32",
        (header::EM_PPC64, _) => "ppc64",
        (header::EM_PPC, _) => "ppc",
        (header::EM_S390, _) => "s390x",
        (header::EM_MIPS, _) => "mips",
        (258, _) => "loongarch64",
        _ => "unknown",
    }
}

/// Reads the ELF facts of a file whose first four bytes (`magic`) were already consumed.
/// Only I/O errors of the stream are errors; malformed headers become `malformed`.
pub(crate) fn read(magic: &[u8; 4], content: &mut dyn Read, size: u64) -> io::Result<ElfFacts> {
    let mut bytes = magic.to_vec();
    fill_to(&mut bytes, content, FIRST_READ.min(size))?;
    // Read further only if the headers say the structures lie beyond the first read.
    if let Some(end) = needed_end(&bytes)
        && end > bytes.len() as u64
        && end <= MAX_READ.min(size)
    {
        fill_to(&mut bytes, content, end)?;
    }
    Ok(elf_facts(&bytes))
}

fn fill_to(bytes: &mut Vec<u8>, content: &mut dyn Read, len: u64) -> io::Result<()> {
    let missing = len.saturating_sub(bytes.len() as u64);
    content.take(missing).read_to_end(bytes)?;
    Ok(())
}

fn context(header: &header::Header) -> Option<Ctx> {
    let container = header.container().ok()?;
    let endian = header.endianness().ok()?;
    Some(Ctx::new(container, endian))
}

/// The end of the last structure the facts need, when the headers can be read.
fn needed_end(bytes: &[u8]) -> Option<u64> {
    let header = Elf::parse_header(bytes).ok()?;
    let ctx = context(&header)?;
    let table_end = header
        .e_phoff
        .checked_add(u64::from(header.e_phnum) * u64::from(header.e_phentsize))?;
    let mut end = table_end;
    if let Ok(phdrs) = ProgramHeader::parse(
        bytes,
        usize::try_from(header.e_phoff).ok()?,
        usize::from(header.e_phnum),
        ctx,
    ) {
        for phdr in phdrs.iter().filter(|p| p.p_type == PT_INTERP) {
            end = end.max(phdr.p_offset.checked_add(phdr.p_filesz)?);
        }
    }
    Some(end)
}

/// ELF facts from the first bytes of a file (at least the headers and `PT_INTERP`).
pub fn elf_facts(bytes: &[u8]) -> ElfFacts {
    let mut facts = ElfFacts {
        class: if bytes.get(4) == Some(&2) {
            ElfClass::Elf64
        } else {
            ElfClass::Elf32
        },
        little_endian: bytes.get(5) != Some(&2),
        machine: 0,
        kind: ElfKind::Other,
        interpreter: None,
        malformed: None,
    };
    let header = match Elf::parse_header(bytes) {
        Ok(header) => header,
        Err(e) => {
            facts.malformed = Some(format!("unreadable ELF header: {e}"));
            return facts;
        }
    };
    facts.machine = header.e_machine;
    facts.kind = match header.e_type {
        header::ET_EXEC => ElfKind::Executable,
        header::ET_DYN => ElfKind::Shared,
        header::ET_REL => ElfKind::Relocatable,
        header::ET_CORE => ElfKind::Core,
        _ => ElfKind::Other,
    };
    let Some(ctx) = context(&header) else {
        facts.malformed = Some("unknown ELF class or byte order".into());
        return facts;
    };
    facts.class = if matches!(ctx.container, Container::Big) {
        ElfClass::Elf64
    } else {
        ElfClass::Elf32
    };
    let phdrs = usize::try_from(header.e_phoff)
        .map_err(|_| "program header offset out of range".to_string())
        .and_then(|offset| {
            ProgramHeader::parse(bytes, offset, usize::from(header.e_phnum), ctx)
                .map_err(|e| e.to_string())
        });
    let phdrs = match phdrs {
        Ok(phdrs) => phdrs,
        Err(e) => {
            facts.malformed = Some(format!("unreadable program headers: {e}"));
            return facts;
        }
    };
    if let Some(interp) = phdrs.iter().find(|p| p.p_type == PT_INTERP) {
        let range = usize::try_from(interp.p_offset).ok().and_then(|start| {
            let end = start.checked_add(usize::try_from(interp.p_filesz).ok()?)?;
            bytes.get(start..end)
        });
        match range {
            Some(raw) => {
                let raw = raw.split(|&b| b == 0).next().unwrap_or(raw);
                facts.interpreter = Some(String::from_utf8_lossy(raw).into_owned());
            }
            None => {
                facts.malformed = Some("PT_INTERP points outside the file's first megabyte".into())
            }
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_binary(path: &str) -> Option<Vec<u8>> {
        std::fs::read(path).ok()
    }

    #[test]
    fn reads_the_interpreter_of_a_host_binary() {
        // Every Debian machine that builds drydock has a dynamic /bin/sh.
        let Some(bytes) = host_binary("/bin/sh") else {
            return;
        };
        let facts = elf_facts(&bytes);
        assert_eq!(facts.malformed, None);
        let interp = facts.interpreter.clone().expect("a dynamic /bin/sh");
        assert!(interp.contains("ld-"), "{interp}");
        assert_eq!(facts.libc(), Some(Libc::Glibc));
    }

    #[test]
    fn the_streamed_read_matches_the_whole_file() {
        let Some(bytes) = host_binary("/bin/sh") else {
            return;
        };
        let mut rest = &bytes[4..];
        let streamed = read(&[0x7f, b'E', b'L', b'F'], &mut rest, bytes.len() as u64).unwrap();
        assert_eq!(streamed, elf_facts(&bytes));
    }

    #[test]
    fn never_panics_on_truncated_or_damaged_headers() {
        let Some(bytes) = host_binary("/bin/sh") else {
            return;
        };
        for len in [4, 16, 52, 64, 65, 100, 200, 600] {
            let facts = elf_facts(&bytes[..len.min(bytes.len())]);
            assert!(facts.malformed.is_some() || facts.interpreter.is_none() || len >= 600);
        }
        let mut damaged = bytes[..4096].to_vec();
        for i in (16..128).step_by(3) {
            damaged[i] ^= 0xff;
            let _ = elf_facts(&damaged);
        }
    }

    #[test]
    fn libc_flavours_from_interpreter_names() {
        assert_eq!(
            Libc::from_interpreter("/lib/ld-musl-x86_64.so.1"),
            Libc::Musl
        );
        assert_eq!(
            Libc::from_interpreter("/lib64/ld-linux-x86-64.so.2"),
            Libc::Glibc
        );
        assert_eq!(
            Libc::from_interpreter("/lib/ld-linux-aarch64.so.1"),
            Libc::Glibc
        );
        assert_eq!(Libc::from_interpreter("/system/bin/linker64"), Libc::Other);
    }
}
