//! ELF facts, read the way the kernel and the dynamic loader read them, from one forward pass
//! over a file as it streams out of a layer.
//!
//! Everything that decides "will it run" comes from the program headers and the dynamic
//! section (the loader's view); section headers only feed the "stripped" facts. The file is
//! never buffered whole: the reader keeps the header page, the non-executable part of the
//! image up to the dynamic section (where `.dynstr` and the version tables live), the section
//! header table with a window before it (for `.shstrtab`), and the Go build information,
//! found by its magic as the bytes go by.

use std::io::{self, Read};

use goblin::elf::header;
use memchr::memmem;

/// Bytes read up front: the ELF header, the program headers and `PT_INTERP`.
const HEAD: u64 = 64 * 1024;
/// How far into a file the program header table may lie.
const MAX_PHDR_END: u64 = 1 << 20;
/// The most one file may make us keep.
const MAX_KEPT: u64 = 96 << 20;
/// Bytes kept before the section header table, where linkers put `.shstrtab` (and, in
/// stripped binaries, cargo-auditable's `.dep-v0`).
const SHSTRTAB_WINDOW: u64 = 1024 * 1024;
/// The most a `.dep-v0` dependency list may inflate to.
const MAX_AUDIT_JSON: u64 = 8 << 20;
/// Bytes kept after the Go build information magic (version and module list).
const GO_BUILDINFO_WINDOW: u64 = 256 * 1024;
const CHUNK: usize = 64 * 1024;
const GO_BUILDINFO_MAGIC: &[u8] = b"\xff Go buildinf:";
/// Package paths whose presence in a Go binary's symbol and file tables is a fact.
const GO_CRYPTO_TLS: &[u8] = b"crypto/tls.";
const GO_TIME_TZDATA: &[u8] = b"time/tzdata";
/// The section-name table names itself; where it is found, it is kept (Go's linker puts it
/// near the start of the file, GNU ld just before the section headers).
const SHSTRTAB_NAME: &[u8] = b".shstrtab\0";
/// Bytes kept on each side of a `.shstrtab` name, and how many places are kept at most.
const SHSTRTAB_SPAN: u64 = 8 * 1024;
const MAX_SHSTRTAB_HITS: usize = 4;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PF_X: u32 = 1;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
const DT_FLAGS_1: u64 = 0x6fff_fffb;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_VERNEEDNUM: u64 = 0x6fff_ffff;
const DF_1_PIE: u64 = 0x0800_0000;
const VER_FLG_BASE: u16 = 1;
const VER_FLG_WEAK: u16 = 2;
const SHT_SYMTAB: u32 = 2;
const SHT_RELA: u32 = 4;
const SHT_HASH: u32 = 5;
const SHT_NOBITS: u32 = 8;
const SHT_REL: u32 = 9;
const SHT_DYNSYM: u32 = 11;
const SHT_GNU_HASH: u32 = 0x6fff_fff6;
/// Loops over linked structures stop here: hostile files may link them in circles.
const MAX_ENTRIES: usize = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
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
    /// `ET_REL`: an object file (`.o`); it has no program headers by design.
    Relocatable,
    /// `ET_CORE`: a core dump; program headers (`PT_NOTE`, `PT_LOAD`s), usually no sections.
    Core,
    /// `ET_NONE` and anything else.
    Other,
}

/// The C library a dynamic binary was linked against, told by its interpreter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
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

/// A version a binary needs from one of its libraries (`DT_VERNEED`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VersionNeed {
    /// The library, as its `DT_NEEDED` names it.
    pub file: String,
    pub versions: Vec<NeededVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NeededVersion {
    pub name: String,
    /// A weak need does not stop the program from loading.
    pub weak: bool,
}

/// What the section headers say (absent when the file has none).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sections {
    /// `.symtab` is present.
    pub symtab: bool,
    /// `.debug_*` (or `.zdebug_*`) sections are present.
    pub debug_info: bool,
    /// Bytes `strip` would remove: `.symtab`, `.strtab` and debug sections.
    pub strippable_bytes: u64,
}

/// A Go module, as `go version -m` prints it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GoModule {
    pub path: String,
    pub version: String,
}

/// The build information the Go linker embeds (`go version -m`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct GoBuildInfo {
    /// `go1.22.3`.
    pub go_version: String,
    /// The main package path.
    pub path: Option<String>,
    pub main: Option<GoModule>,
    pub deps: Vec<GoModule>,
    /// `build` lines: `CGO_ENABLED`, `-ldflags`, `-tags`, `-trimpath`, `GOOS`, `GOARCH`, ...
    pub settings: Vec<(String, String)>,
}

impl GoBuildInfo {
    pub fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn depends_on(&self, module: &str) -> bool {
        self.deps.iter().any(|d| d.path == module)
    }
}

/// A crate in a `cargo auditable` dependency list.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RustPackage {
    pub name: String,
    pub version: String,
    /// `crates.io`, `git`, `local`, `registry`, ...
    #[serde(default)]
    pub source: String,
}

/// What the kernel and the loader look at, and a few facts other checks need.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ElfFacts {
    pub class: ElfClass,
    pub little_endian: bool,
    /// `e_machine`.
    pub machine: u16,
    pub kind: ElfKind,
    /// `PT_INTERP`: the program loader `execve` starts; `None` for static binaries.
    pub interpreter: Option<String>,
    /// Has a dynamic section (`PT_DYNAMIC`).
    pub dynamic: bool,
    /// A static position-independent executable: `ET_DYN`, no interpreter, relocates itself.
    pub static_pie: bool,
    pub soname: Option<String>,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    pub version_needs: Vec<VersionNeed>,
    /// Versions this object defines (`DT_VERDEF`), without its base entry.
    pub version_defs: Vec<String>,
    pub sections: Option<Sections>,
    pub go: Option<GoBuildInfo>,
    /// The crates a Rust binary was built from, when built with `cargo auditable`
    /// (the zlib-compressed JSON in `.dep-v0`).
    pub rust_packages: Option<Vec<RustPackage>>,
    /// A Go binary that contains `crypto/tls` (it can make TLS connections).
    pub go_crypto_tls: bool,
    /// A Go binary that embeds the time zone database (`time/tzdata`).
    pub go_tzdata: bool,
    /// Why the facts are incomplete, when they are.
    pub malformed: Option<String>,
    /// Why `execve` would fail before the program or its loader runs, judged as Linux's
    /// `binfmt_elf` loads a program; `None` when the kernel would load it.
    pub exec_refusal: Option<ExecRefusal>,
}

/// What `execve` returns for a file the kernel will not load, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExecRefusal {
    /// As the runtime prints it: `exec format error` (`ENOEXEC`) or `input/output error`
    /// (`EIO`, for a `PT_INTERP` that lies past the end of the file).
    pub error: &'static str,
    pub reason: String,
}

pub(crate) const ENOEXEC: &str = "exec format error";
pub(crate) const EIO: &str = "input/output error";

/// The checks of `load_elf_binary` and `load_elf_phdrs` (fs/binfmt_elf.c), in their order:
/// the file type, the program header entry size and table size (at most 64 KiB), the table
/// within the file, then the first `PT_INTERP`: 2 to `PATH_MAX` bytes, within the file, ending
/// in a NUL. The machine is `elf.wrong-architecture`'s business.
fn exec_refusal(h: &Header, phdrs: &[Phdr], sparse: &Sparse, size: u64) -> Option<ExecRefusal> {
    let refuse = |error, reason: String| Some(ExecRefusal { error, reason });
    if !matches!(h.e_type, header::ET_EXEC | header::ET_DYN) {
        let what = match h.e_type {
            header::ET_REL => "an object file (ET_REL)".to_owned(),
            header::ET_CORE => "a core dump (ET_CORE)".to_owned(),
            other => format!("of ELF type {other}"),
        };
        return refuse(ENOEXEC, format!("it is {what}, not a program"));
    }
    let entry_size: u64 = if h.layout.wide { 56 } else { 32 };
    if u64::from(h.phentsize) != entry_size {
        return refuse(
            ENOEXEC,
            format!(
                "its program header entries are {} bytes, not {entry_size}",
                h.phentsize
            ),
        );
    }
    let table = entry_size * u64::from(h.phnum);
    if table == 0 || table > 65536 {
        return refuse(
            ENOEXEC,
            format!(
                "it has {} program headers ({table} bytes; the kernel reads 1 to 65536)",
                h.phnum
            ),
        );
    }
    // load_elf_phdrs drops the read error: the caller's ENOEXEC is what execve returns.
    if h.phoff.checked_add(table).is_none_or(|end| end > size) {
        return refuse(
            ENOEXEC,
            format!(
                "its program headers (offset {:#x}, {table} bytes) lie past the end of the \
                 {size}-byte file",
                h.phoff
            ),
        );
    }
    let interp = phdrs.iter().find(|p| p.kind == PT_INTERP)?;
    if interp.filesz < 2 || interp.filesz > 4096 {
        return refuse(
            ENOEXEC,
            format!(
                "its PT_INTERP is {} bytes (the kernel takes 2 to 4096)",
                interp.filesz
            ),
        );
    }
    if interp
        .offset
        .checked_add(interp.filesz)
        .is_none_or(|end| end > size)
    {
        return refuse(
            EIO,
            format!(
                "its PT_INTERP (offset {:#x}, {} bytes) lies past the end of the {size}-byte file",
                interp.offset, interp.filesz
            ),
        );
    }
    let last = sparse.get(interp.offset + interp.filesz - 1, 1)?;
    if last != [0] {
        return refuse(
            ENOEXEC,
            "its PT_INTERP path does not end in a NUL byte".to_owned(),
        );
    }
    None
}

impl ElfFacts {
    /// The architecture name for `e_machine`, as `uname -m` spells it.
    pub fn machine_name(&self) -> &'static str {
        machine_name(self.machine, self.class)
    }

    pub fn libc(&self) -> Option<Libc> {
        self.interpreter.as_deref().map(Libc::from_interpreter)
    }

    /// Whether the kernel would run it as a program (not a library or object file).
    pub fn is_program(&self) -> bool {
        self.kind == ElfKind::Executable || self.interpreter.is_some() || self.static_pie
    }

    fn empty(bytes: &[u8]) -> Self {
        Self {
            class: if bytes.get(4) == Some(&2) {
                ElfClass::Elf64
            } else {
                ElfClass::Elf32
            },
            little_endian: bytes.get(5) != Some(&2),
            machine: 0,
            kind: ElfKind::Other,
            interpreter: None,
            dynamic: false,
            static_pie: false,
            soname: None,
            needed: Vec::new(),
            rpath: Vec::new(),
            runpath: Vec::new(),
            version_needs: Vec::new(),
            version_defs: Vec::new(),
            sections: None,
            go: None,
            rust_packages: None,
            go_crypto_tls: false,
            go_tzdata: false,
            malformed: None,
            exec_refusal: None,
        }
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
        (header::EM_S390, ElfClass::Elf32) => "s390",
        (header::EM_S390, ElfClass::Elf64) => "s390x",
        (header::EM_SPARC, _) => "sparc",
        (header::EM_SPARCV9, _) => "sparc64",
        (header::EM_MIPS, _) => "mips",
        (258, _) => "loongarch64",
        _ => "unknown",
    }
}

/// Byte ranges of a file kept while it streamed past.
#[derive(Debug, Default)]
struct Sparse {
    /// (offset, bytes), sorted by offset, not overlapping.
    pieces: Vec<(u64, Vec<u8>)>,
}

impl Sparse {
    fn get(&self, offset: u64, len: u64) -> Option<&[u8]> {
        let end = offset.checked_add(len)?;
        self.pieces.iter().find_map(|(start, bytes)| {
            let piece_end = start + bytes.len() as u64;
            if offset >= *start && end <= piece_end {
                bytes.get(usize::try_from(offset - start).ok()?..usize::try_from(end - start).ok()?)
            } else {
                None
            }
        })
    }

    /// The NUL-terminated string at `offset`, read no further than `limit`.
    fn c_str(&self, offset: u64, limit: u64) -> Option<String> {
        let (start, bytes) = self
            .pieces
            .iter()
            .find(|(s, b)| offset >= *s && offset < s + b.len() as u64)?;
        let from = usize::try_from(offset - start).ok()?;
        let rest = &bytes[from..];
        let max = usize::try_from(limit).unwrap_or(usize::MAX).min(rest.len());
        let end = rest[..max].iter().position(|&b| b == 0)?;
        Some(String::from_utf8_lossy(&rest[..end]).into_owned())
    }
}

/// Integers of the file's byte order and class.
#[derive(Debug, Clone, Copy)]
struct Layout {
    little: bool,
    wide: bool,
}

impl Layout {
    fn u16(self, b: &[u8], at: usize) -> Option<u16> {
        let bytes: [u8; 2] = b.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(if self.little {
            u16::from_le_bytes(bytes)
        } else {
            u16::from_be_bytes(bytes)
        })
    }
    fn u32(self, b: &[u8], at: usize) -> Option<u32> {
        let bytes: [u8; 4] = b.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(if self.little {
            u32::from_le_bytes(bytes)
        } else {
            u32::from_be_bytes(bytes)
        })
    }
    fn u64(self, b: &[u8], at: usize) -> Option<u64> {
        let bytes: [u8; 8] = b.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.little {
            u64::from_le_bytes(bytes)
        } else {
            u64::from_be_bytes(bytes)
        })
    }
    /// A word: 8 bytes in ELF64, 4 in ELF32.
    fn word(self, b: &[u8], at: usize) -> Option<u64> {
        if self.wide {
            self.u64(b, at)
        } else {
            self.u32(b, at).map(u64::from)
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Phdr {
    kind: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

#[derive(Debug, Clone, Copy)]
struct Header {
    layout: Layout,
    e_type: u16,
    machine: u16,
    phoff: u64,
    phentsize: u16,
    phnum: u16,
    shoff: u64,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
}

fn parse_header(b: &[u8]) -> Result<Header, String> {
    if b.len() < 52 || &b[..4] != b"\x7fELF" {
        return Err("shorter than an ELF header".into());
    }
    let wide = match b[4] {
        1 => false,
        2 => true,
        other => return Err(format!("unknown ELF class {other}")),
    };
    let little = match b[5] {
        1 => true,
        2 => false,
        other => return Err(format!("unknown byte order {other}")),
    };
    let l = Layout { little, wide };
    let short = || "truncated ELF header".to_string();
    let (phoff, shoff, rest) = if wide {
        (
            l.u64(b, 32).ok_or_else(short)?,
            l.u64(b, 40).ok_or_else(short)?,
            52,
        )
    } else {
        (
            u64::from(l.u32(b, 28).ok_or_else(short)?),
            u64::from(l.u32(b, 32).ok_or_else(short)?),
            40,
        )
    };
    Ok(Header {
        layout: l,
        e_type: l.u16(b, 16).ok_or_else(short)?,
        machine: l.u16(b, 18).ok_or_else(short)?,
        phoff,
        phentsize: l.u16(b, rest + 2).ok_or_else(short)?,
        phnum: l.u16(b, rest + 4).ok_or_else(short)?,
        shoff,
        shentsize: l.u16(b, rest + 6).ok_or_else(short)?,
        shnum: l.u16(b, rest + 8).ok_or_else(short)?,
        shstrndx: l.u16(b, rest + 10).ok_or_else(short)?,
    })
}

/// The program header table, when the header page holds it. `ET_REL` objects have none by
/// design (`e_phnum` 0); that is an empty table, not an error.
fn parse_phdrs(h: &Header, b: &[u8]) -> Result<Vec<Phdr>, String> {
    if h.phnum == 0 {
        return Ok(Vec::new());
    }
    let l = h.layout;
    let size = if l.wide { 56 } else { 32 };
    if usize::from(h.phentsize) < size {
        return Err(format!(
            "e_phentsize {} is smaller than a program header ({size} bytes)",
            h.phentsize
        ));
    }
    let past = || {
        format!(
            "{} program headers at offset {:#x} lie past what drydock reads",
            h.phnum, h.phoff
        )
    };
    let mut phdrs = Vec::with_capacity(usize::from(h.phnum));
    for i in 0..u64::from(h.phnum) {
        let at = h
            .phoff
            .checked_add(i * u64::from(h.phentsize))
            .and_then(|at| usize::try_from(at).ok())
            .ok_or_else(past)?;
        // Bounds-checked as a whole first: hostile offsets must not overflow below.
        let entry = at
            .checked_add(size)
            .and_then(|end| b.get(at..end))
            .ok_or_else(past)?;
        let phdr = if l.wide {
            Phdr {
                kind: l.u32(entry, 0).ok_or_else(past)?,
                flags: l.u32(entry, 4).ok_or_else(past)?,
                offset: l.u64(entry, 8).ok_or_else(past)?,
                vaddr: l.u64(entry, 16).ok_or_else(past)?,
                filesz: l.u64(entry, 32).ok_or_else(past)?,
            }
        } else {
            Phdr {
                kind: l.u32(entry, 0).ok_or_else(past)?,
                offset: u64::from(l.u32(entry, 4).ok_or_else(past)?),
                vaddr: u64::from(l.u32(entry, 8).ok_or_else(past)?),
                filesz: u64::from(l.u32(entry, 16).ok_or_else(past)?),
                flags: l.u32(entry, 24).ok_or_else(past)?,
            }
        };
        phdrs.push(phdr);
    }
    Ok(phdrs)
}

/// Where a virtual address lies in the file, through the `PT_LOAD` segments.
fn file_offset(phdrs: &[Phdr], vaddr: u64) -> Option<u64> {
    phdrs
        .iter()
        .filter(|p| p.kind == PT_LOAD)
        .find(|p| vaddr >= p.vaddr && vaddr < p.vaddr.saturating_add(p.filesz))
        .and_then(|p| (vaddr - p.vaddr).checked_add(p.offset))
}

/// Merges ranges and trims them to `MAX_KEPT` bytes in all.
fn normalise(mut ranges: Vec<(u64, u64)>, size: u64) -> Vec<(u64, u64)> {
    for range in &mut ranges {
        range.0 = range.0.min(size);
        range.1 = range.1.min(size);
    }
    ranges.retain(|(s, e)| s < e);
    ranges.sort_unstable();
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (start, end) in ranges {
        match merged.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => merged.push((start, end)),
        }
    }
    let mut budget = MAX_KEPT;
    let mut kept = Vec::new();
    for (start, end) in merged {
        if budget == 0 {
            break;
        }
        let end = end.min(start.saturating_add(budget));
        budget -= end - start;
        kept.push((start, end));
    }
    kept
}

/// The streaming pass: keeps `ranges` (more may be added as the Go magic is found) and looks
/// for the needles in every byte.
struct Pass<'a> {
    content: &'a mut dyn Read,
    pos: u64,
    size: u64,
    ranges: Vec<(u64, u64)>,
    pieces: Vec<(u64, Vec<u8>)>,
    carry: Vec<u8>,
    /// The last bytes streamed, so that a table found by its content can be kept from before
    /// the match.
    history: Vec<u8>,
    shstrtab_hits: usize,
    go_buildinfo: Option<u64>,
    crypto_tls: bool,
    tzdata: bool,
}

impl Pass<'_> {
    fn take(&mut self, offset: u64, chunk: &[u8]) {
        let end = offset + chunk.len() as u64;
        for &(start, stop) in &self.ranges {
            let (from, to) = (start.max(offset), stop.min(end));
            if from >= to {
                continue;
            }
            let slice = &chunk[(from - offset) as usize..(to - offset) as usize];
            match self
                .pieces
                .iter_mut()
                .find(|(s, b)| *s + b.len() as u64 == from && *s >= start)
            {
                Some((_, bytes)) => bytes.extend_from_slice(slice),
                None => self.pieces.push((from, slice.to_vec())),
            }
        }
    }

    fn search(&mut self, offset: u64, chunk: &[u8]) {
        let mut window = std::mem::take(&mut self.carry);
        let window_start = offset - window.len() as u64;
        window.extend_from_slice(chunk);
        // The header is 16-byte aligned and followed by a pointer size and flags the Go linker
        // writes; anything else is a coincidence in data, or the magic as a constant in some
        // other program (a scanner that looks for it: drydock itself).
        if self.go_buildinfo.is_none()
            && let Some(i) = memmem::find_iter(&window, GO_BUILDINFO_MAGIC).find(|&i| {
                (window_start + i as u64).is_multiple_of(16)
                    && window
                        .get(i + GO_BUILDINFO_MAGIC.len()..i + 16)
                        .is_none_or(go_buildinfo_header_is_valid)
            })
        {
            let at = window_start + i as u64;
            self.go_buildinfo = Some(at);
            self.ranges.push((at, at + GO_BUILDINFO_WINDOW));
            self.ranges = normalise(std::mem::take(&mut self.ranges), self.size);
            // Bytes of the magic already past are in the window: keep them too.
            let before = &window[i..window.len() - chunk.len().min(window.len() - i)];
            if !before.is_empty() {
                self.pieces.push((at, before.to_vec()));
            }
        }
        if self.shstrtab_hits < MAX_SHSTRTAB_HITS {
            for i in memmem::find_iter(chunk, SHSTRTAB_NAME) {
                if self.shstrtab_hits >= MAX_SHSTRTAB_HITS {
                    break;
                }
                self.shstrtab_hits += 1;
                let at = offset + i as u64;
                // Keep what came before the match from the history and this chunk, and ask
                // for what follows.
                let before_start = at.saturating_sub(SHSTRTAB_SPAN);
                let history_start = offset - self.history.len() as u64;
                let from = before_start.max(history_start);
                let mut piece = Vec::new();
                if from < offset {
                    piece.extend_from_slice(&self.history[(from - history_start) as usize..]);
                    piece.extend_from_slice(&chunk[..i]);
                } else {
                    piece.extend_from_slice(&chunk[(from - offset) as usize..i]);
                }
                if !piece.is_empty() {
                    self.pieces.push((from, piece));
                }
                self.ranges.push((at, at + SHSTRTAB_SPAN));
                self.ranges = normalise(std::mem::take(&mut self.ranges), self.size);
            }
        }
        if !self.crypto_tls && memmem::find(&window, GO_CRYPTO_TLS).is_some() {
            self.crypto_tls = true;
        }
        if !self.tzdata && memmem::find(&window, GO_TIME_TZDATA).is_some() {
            self.tzdata = true;
        }
        let keep = 32.min(window.len());
        self.carry = window[window.len() - keep..].to_vec();
    }

    /// Streams to `until` (or the end), keeping and searching.
    fn advance(&mut self, until: u64) -> io::Result<()> {
        let mut buffer = vec![0u8; CHUNK];
        while self.pos < until.min(self.size) {
            let want = usize::try_from((until.min(self.size) - self.pos).min(CHUNK as u64))
                .unwrap_or(CHUNK);
            let n = self.content.read(&mut buffer[..want])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file ends before its size",
                ));
            }
            let offset = self.pos;
            self.search(offset, &buffer[..n]);
            self.take(offset, &buffer[..n]);
            self.pos += n as u64;
            let keep = (SHSTRTAB_SPAN as usize).min(n);
            if keep == n {
                let excess = (self.history.len() + n).saturating_sub(SHSTRTAB_SPAN as usize);
                self.history.drain(..excess.min(self.history.len()));
                self.history.extend_from_slice(&buffer[..n]);
            } else {
                self.history.clear();
                self.history.extend_from_slice(&buffer[n - keep..n]);
            }
        }
        Ok(())
    }

    fn sparse(mut self) -> Sparse {
        self.pieces.sort_by_key(|(s, _)| *s);
        // Pieces kept for different reasons may touch or overlap: join them.
        let mut merged: Vec<(u64, Vec<u8>)> = Vec::with_capacity(self.pieces.len());
        for (start, bytes) in self.pieces {
            if let Some((last_start, last)) = merged.last_mut() {
                let last_end = *last_start + last.len() as u64;
                if start <= last_end {
                    let skip = usize::try_from(last_end - start).unwrap_or(usize::MAX);
                    if skip < bytes.len() {
                        last.extend_from_slice(&bytes[skip..]);
                    }
                    continue;
                }
            }
            merged.push((start, bytes));
        }
        Sparse { pieces: merged }
    }
}

/// Reads the ELF facts of a file whose first four bytes (`magic`) were already consumed,
/// streaming it to its end. Only I/O errors of the stream are errors; a malformed file
/// gives facts with `malformed` set.
pub(crate) fn read(magic: &[u8; 4], content: &mut dyn Read, size: u64) -> io::Result<ElfFacts> {
    let mut pass = Pass {
        content,
        pos: 4,
        size,
        ranges: vec![(0, HEAD.min(size))],
        pieces: vec![(0, magic.to_vec())],
        carry: magic.to_vec(),
        history: magic.to_vec(),
        shstrtab_hits: 0,
        go_buildinfo: None,
        crypto_tls: false,
        tzdata: false,
    };
    pass.advance(HEAD)?;
    let head = pass.pieces[0].1.clone();
    let Ok(h) = parse_header(&head) else {
        pass.advance(size)?;
        return Ok(facts_from(&pass.sparse(), size, None, false, false));
    };
    let table_end = h
        .phoff
        .saturating_add(u64::from(h.phnum) * u64::from(h.phentsize));
    if table_end > head.len() as u64 && table_end <= MAX_PHDR_END.min(size) {
        pass.ranges.push((0, table_end));
        pass.ranges = normalise(std::mem::take(&mut pass.ranges), size);
        pass.advance(table_end)?;
    }
    let phdrs = {
        let sparse_head = &pass.pieces[0].1;
        parse_phdrs(&h, sparse_head).unwrap_or_default()
    };
    let mut ranges = pass.ranges.clone();
    if let Some(dynamic) = phdrs.iter().find(|p| p.kind == PT_DYNAMIC) {
        let dynamic_end = dynamic.offset.saturating_add(dynamic.filesz);
        ranges.push((dynamic.offset, dynamic_end));
        for load in phdrs.iter().filter(|p| p.kind == PT_LOAD) {
            // Code is never where the loader's tables are, unless the segment holds the
            // headers too (old layouts without -z separate-code).
            if load.flags & PF_X == 0 || load.offset == 0 {
                ranges.push((
                    load.offset,
                    load.offset.saturating_add(load.filesz).min(dynamic_end),
                ));
            }
        }
    }
    for interp in phdrs.iter().filter(|p| p.kind == PT_INTERP) {
        ranges.push((
            interp.offset,
            interp.offset.saturating_add(interp.filesz.min(4096)),
        ));
    }
    if h.shoff > 0 && h.shnum > 0 {
        let table = u64::from(h.shnum) * u64::from(h.shentsize);
        ranges.push((
            h.shoff.saturating_sub(SHSTRTAB_WINDOW),
            h.shoff.saturating_add(table),
        ));
    }
    pass.ranges = normalise(ranges, size);
    pass.advance(size)?;
    let (crypto_tls, tzdata, go_at) = (pass.crypto_tls, pass.tzdata, pass.go_buildinfo);
    let sparse = pass.sparse();
    Ok(facts_from(&sparse, size, go_at, crypto_tls, tzdata))
}

/// ELF facts from a whole file in memory (tests, fuzzing, small files).
pub fn elf_facts(bytes: &[u8]) -> ElfFacts {
    if bytes.len() < 4 {
        let mut facts = ElfFacts::empty(bytes);
        facts.malformed = Some("shorter than an ELF header".into());
        return facts;
    }
    let magic: [u8; 4] = bytes[..4].try_into().unwrap_or_default();
    let mut rest = &bytes[4..];
    read(&magic, &mut rest, bytes.len() as u64).unwrap_or_else(|e| {
        let mut facts = ElfFacts::empty(bytes);
        facts.malformed = Some(e.to_string());
        facts
    })
}

fn facts_from(
    sparse: &Sparse,
    size: u64,
    go_at: Option<u64>,
    crypto_tls: bool,
    tzdata: bool,
) -> ElfFacts {
    let head = sparse
        .pieces
        .first()
        .map(|(_, b)| b.as_slice())
        .unwrap_or_default();
    let mut facts = ElfFacts::empty(head);
    let h = match parse_header(head) {
        Ok(h) => h,
        Err(e) => {
            // The kernel reads a short header as zeros: no program type, ENOEXEC.
            facts.exec_refusal = Some(ExecRefusal {
                error: ENOEXEC,
                reason: format!("its ELF header is unreadable ({e})"),
            });
            facts.malformed = Some(format!("unreadable ELF header: {e}"));
            return facts;
        }
    };
    facts.class = if h.layout.wide {
        ElfClass::Elf64
    } else {
        ElfClass::Elf32
    };
    facts.little_endian = h.layout.little;
    facts.machine = h.machine;
    facts.kind = match h.e_type {
        header::ET_EXEC => ElfKind::Executable,
        header::ET_DYN => ElfKind::Shared,
        header::ET_REL => ElfKind::Relocatable,
        header::ET_CORE => ElfKind::Core,
        _ => ElfKind::Other,
    };
    if let Some(at) = go_at {
        facts.go = sparse
            .get(at, (size - at).min(GO_BUILDINFO_WINDOW))
            .and_then(parse_go_buildinfo);
        facts.go_crypto_tls = crypto_tls;
        facts.go_tzdata = tzdata;
    }
    // Without program headers the loader's facts are unknown, but the section headers (what
    // `strip` would remove) are still worth reading.
    let phdrs = parse_phdrs(&h, head).unwrap_or_else(|e| {
        facts.malformed = Some(format!("unreadable program headers: {e}"));
        Vec::new()
    });
    facts.exec_refusal = exec_refusal(&h, &phdrs, sparse, size);
    if h.phnum == 0 && matches!(h.e_type, header::ET_EXEC | header::ET_DYN) {
        facts.malformed = Some("no program headers: the kernel cannot load it".into());
    }
    if let Some(interp) = phdrs.iter().find(|p| p.kind == PT_INTERP) {
        if interp.filesz == 0 {
            // `objcopy --only-keep-debug` companions keep the program headers but not the
            // bytes; the kernel refuses such a file.
            facts.malformed = Some("PT_INTERP holds no bytes (a debug-only file?)".into());
        } else {
            match sparse.c_str(interp.offset, interp.filesz.min(4096)) {
                Some(path) => facts.interpreter = Some(path),
                None => facts.malformed = Some("PT_INTERP points outside the file".into()),
            }
        }
    }
    if let Some(dynamic) = phdrs.iter().find(|p| p.kind == PT_DYNAMIC) {
        facts.dynamic = true;
        if let Err(e) = read_dynamic(&mut facts, sparse, &h, &phdrs, dynamic) {
            facts.malformed.get_or_insert(e);
        }
    }
    match read_sections(sparse, &h, size) {
        Ok(sections) => facts.sections = sections,
        Err(Damaged { sections, reason }) => {
            facts.sections = sections;
            facts.malformed.get_or_insert(reason);
        }
    }
    facts.rust_packages = read_auditable(sparse, &h);
    facts
}

fn read_dynamic(
    facts: &mut ElfFacts,
    sparse: &Sparse,
    h: &Header,
    phdrs: &[Phdr],
    dynamic: &Phdr,
) -> Result<(), String> {
    let l = h.layout;
    let bytes = sparse
        .get(dynamic.offset, dynamic.filesz)
        .ok_or("the dynamic section lies outside the file or beyond what drydock reads")?;
    let entry = if l.wide { 16 } else { 8 };
    let mut entries = Vec::new();
    for i in 0..(bytes.len() / entry).min(MAX_ENTRIES) {
        let tag = l.word(bytes, i * entry).ok_or("truncated dynamic entry")?;
        let value = l
            .word(bytes, i * entry + entry / 2)
            .ok_or("truncated dynamic entry")?;
        if tag == DT_NULL {
            break;
        }
        entries.push((tag, value));
    }
    let get = |tag: u64| entries.iter().find(|(t, _)| *t == tag).map(|(_, v)| *v);
    let strtab = get(DT_STRTAB).and_then(|a| file_offset(phdrs, a));
    let strsz = get(DT_STRSZ).unwrap_or(0);
    let string = |index: u64| -> Option<String> {
        let base = strtab?;
        if index >= strsz {
            return None;
        }
        sparse.c_str(base.checked_add(index)?, strsz - index)
    };
    let flags_1 = get(DT_FLAGS_1).unwrap_or(0);
    facts.static_pie =
        h.e_type == header::ET_DYN && facts.interpreter.is_none() && flags_1 & DF_1_PIE != 0;
    if strtab.is_none() && entries.iter().any(|(t, _)| *t == DT_NEEDED) {
        return Err("DT_STRTAB does not map into the file".into());
    }
    let split = |s: String| {
        s.split(':')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    for &(tag, value) in &entries {
        match tag {
            DT_NEEDED => facts.needed.extend(string(value)),
            DT_SONAME => facts.soname = string(value),
            DT_RPATH => facts
                .rpath
                .extend(string(value).map(split).unwrap_or_default()),
            DT_RUNPATH => facts
                .runpath
                .extend(string(value).map(split).unwrap_or_default()),
            _ => {}
        }
    }
    if let (Some(address), Some(count)) = (get(DT_VERNEED), get(DT_VERNEEDNUM)) {
        let mut at = file_offset(phdrs, address).ok_or("DT_VERNEED does not map into the file")?;
        for _ in 0..count.min(MAX_ENTRIES as u64) {
            let need = sparse
                .get(at, 16)
                .ok_or("DT_VERNEED lies beyond what drydock reads")?;
            let (cnt, file, aux, next) = (
                l.u16(need, 2),
                l.u32(need, 4),
                l.u32(need, 8),
                l.u32(need, 12),
            );
            let (Some(cnt), Some(file), Some(aux), Some(next)) = (cnt, file, aux, next) else {
                break;
            };
            let mut versions = Vec::new();
            let mut aux_at = at + u64::from(aux);
            for _ in 0..cnt.min(4096) {
                let Some(entry) = sparse.get(aux_at, 16) else {
                    break;
                };
                let (flags, name, next_aux) = (l.u16(entry, 4), l.u32(entry, 8), l.u32(entry, 12));
                if let (Some(flags), Some(name)) = (flags, name.and_then(|n| string(u64::from(n))))
                {
                    versions.push(NeededVersion {
                        name,
                        weak: flags & VER_FLG_WEAK != 0,
                    });
                }
                match next_aux {
                    Some(0) | None => break,
                    Some(n) => aux_at += u64::from(n),
                }
            }
            facts.version_needs.push(VersionNeed {
                file: string(u64::from(file)).unwrap_or_default(),
                versions,
            });
            if next == 0 {
                break;
            }
            at += u64::from(next);
        }
    }
    if let (Some(address), Some(count)) = (get(DT_VERDEF), get(DT_VERDEFNUM)) {
        let mut at = file_offset(phdrs, address).ok_or("DT_VERDEF does not map into the file")?;
        for _ in 0..count.min(MAX_ENTRIES as u64) {
            let def = sparse
                .get(at, 20)
                .ok_or("DT_VERDEF lies beyond what drydock reads")?;
            let (flags, aux, next) = (l.u16(def, 2), l.u32(def, 12), l.u32(def, 16));
            let (Some(flags), Some(aux), Some(next)) = (flags, aux, next) else {
                break;
            };
            if flags & VER_FLG_BASE == 0
                && let Some(name) = sparse
                    .get(at + u64::from(aux), 8)
                    .and_then(|a| l.u32(a, 0))
                    .and_then(|n| string(u64::from(n)))
            {
                facts.version_defs.push(name);
            }
            if next == 0 {
                break;
            }
            at += u64::from(next);
        }
    }
    Ok(())
}

/// Section headers that cannot be trusted: what could still be read, and why not all.
#[derive(Debug)]
struct Damaged {
    sections: Option<Sections>,
    reason: String,
}

impl Damaged {
    fn unreadable(reason: String) -> Self {
        Self {
            sections: None,
            reason,
        }
    }
}

/// One section header, the fields drydock looks at.
#[derive(Debug, Clone, Copy)]
struct Shdr {
    name: u32,
    kind: u32,
    offset: u64,
    size: u64,
    link: u32,
}

fn parse_shdr(l: Layout, entry: &[u8]) -> Option<Shdr> {
    Some(if l.wide {
        Shdr {
            name: l.u32(entry, 0)?,
            kind: l.u32(entry, 4)?,
            offset: l.u64(entry, 24)?,
            size: l.u64(entry, 32)?,
            link: l.u32(entry, 40)?,
        }
    } else {
        Shdr {
            name: l.u32(entry, 0)?,
            kind: l.u32(entry, 4)?,
            offset: u64::from(l.u32(entry, 16)?),
            size: u64::from(l.u32(entry, 20)?),
            link: l.u32(entry, 24)?,
        }
    })
}

/// What the section headers say about symbols and debug information. `Ok(None)` when the file
/// has no section header table (`strip --strip-sections`, most core files); a table that
/// lies past the end of the file, has entries of an impossible size, or links sections
/// impossibly is `Damaged`, with whatever could still be read.
fn read_sections(sparse: &Sparse, h: &Header, size: u64) -> Result<Option<Sections>, Damaged> {
    let l = h.layout;
    let entry = if l.wide { 64 } else { 40 };
    if h.shnum == 0 {
        // (A zero count with an offset is the extended numbering of >= 0xff00 sections,
        // which no file in an image needs for the facts read here.)
        return Ok(None);
    }
    if h.shoff == 0 {
        return Err(Damaged::unreadable(format!(
            "e_shnum is {} but e_shoff is 0",
            h.shnum
        )));
    }
    if usize::from(h.shentsize) < entry {
        return Err(Damaged::unreadable(format!(
            "e_shentsize {} is smaller than a section header ({entry} bytes)",
            h.shentsize
        )));
    }
    let table_len = u64::from(h.shnum) * u64::from(h.shentsize);
    if h.shoff.checked_add(table_len).is_none_or(|end| end > size) {
        return Err(Damaged::unreadable(format!(
            "{} section headers at offset {:#x} lie past the end of the file",
            h.shnum, h.shoff
        )));
    }
    let Some(table) = sparse.get(h.shoff, table_len) else {
        return Err(Damaged::unreadable(
            "the section header table lies beyond what drydock reads".into(),
        ));
    };
    let shnum = usize::from(h.shnum);
    let headers: Vec<Option<Shdr>> = (0..shnum)
        .map(|i| {
            let at = i * usize::from(h.shentsize);
            table.get(at..at + entry).and_then(|e| parse_shdr(l, e))
        })
        .collect();
    let mut damage = None;
    // SHN_XINDEX: the real index is in section 0's sh_link.
    let names_index = if h.shstrndx == 0xffff {
        headers[0].map_or(0, |s| s.link as usize)
    } else {
        usize::from(h.shstrndx)
    };
    let names = match headers.get(names_index) {
        Some(Some(section)) if names_index != 0 => Some((section.offset, section.size)),
        _ => {
            if names_index != 0 {
                damage = Some(format!(
                    "e_shstrndx {names_index} is past the {shnum} section headers"
                ));
            }
            None
        }
    };
    let mut facts = Sections::default();
    for (i, section) in headers.iter().enumerate() {
        let Some(section) = section else {
            continue;
        };
        // Tables that point at a symbol or string table: pointing at themselves or past the
        // table is a corrupt file (readelf and pyelftools refuse them too).
        if matches!(
            section.kind,
            SHT_SYMTAB | SHT_RELA | SHT_HASH | SHT_REL | SHT_DYNSYM | SHT_GNU_HASH
        ) && section.link != 0
            && damage.is_none()
        {
            let link = section.link as usize;
            if link == i {
                damage = Some(format!(
                    "section {i} (type {}) links to itself",
                    section.kind
                ));
            } else if link >= shnum {
                damage = Some(format!(
                    "section {i} links to section {link}, past the {shnum} section headers"
                ));
            }
        }
        let name = names.and_then(|(offset, len)| {
            let index = u64::from(section.name);
            (index < len)
                .then(|| sparse.c_str(offset.checked_add(index)?, len - index))
                .flatten()
        });
        let name = name.as_deref().unwrap_or("");
        // NOBITS sections (in `--only-keep-debug` files, most of them) take no bytes.
        let bytes = if section.kind == SHT_NOBITS {
            0
        } else {
            section.size.min(size)
        };
        let strippable = if section.kind == SHT_SYMTAB {
            facts.symtab = true;
            true
        } else if name.starts_with(".debug_") || name.starts_with(".zdebug_") {
            facts.debug_info = true;
            true
        } else {
            name == ".strtab"
        };
        if strippable {
            facts.strippable_bytes = facts.strippable_bytes.saturating_add(bytes).min(size);
        }
    }
    match damage {
        None => Ok(Some(facts)),
        Some(reason) => Err(Damaged {
            sections: Some(facts),
            reason,
        }),
    }
}

/// The section headers as (name, offset, size), when the names can be read.
fn named_sections(sparse: &Sparse, h: &Header) -> Vec<(String, u64, u64)> {
    let l = h.layout;
    let entry = if l.wide { 64 } else { 40 };
    if h.shoff == 0 || h.shnum == 0 || usize::from(h.shentsize) < entry {
        return Vec::new();
    }
    let Some(table) = sparse.get(h.shoff, u64::from(h.shnum) * u64::from(h.shentsize)) else {
        return Vec::new();
    };
    let section = |i: usize| -> Option<(u32, u64, u64)> {
        let at = i * usize::from(h.shentsize);
        let name = l.u32(table, at)?;
        let (offset, size) = if l.wide {
            (l.u64(table, at + 24)?, l.u64(table, at + 32)?)
        } else {
            (
                u64::from(l.u32(table, at + 16)?),
                u64::from(l.u32(table, at + 20)?),
            )
        };
        Some((name, offset, size))
    };
    let Some((_, names_at, names_len)) = section(usize::from(h.shstrndx)) else {
        return Vec::new();
    };
    (0..usize::from(h.shnum))
        .filter_map(|i| {
            let (name, offset, size) = section(i)?;
            let name = sparse.c_str(
                names_at.checked_add(u64::from(name))?,
                names_len.checked_sub(u64::from(name))?,
            )?;
            Some((name, offset, size))
        })
        .collect()
}

/// `cargo auditable`'s `.dep-v0`: zlib-compressed JSON listing every crate in the build.
fn read_auditable(sparse: &Sparse, h: &Header) -> Option<Vec<RustPackage>> {
    let (_, offset, size) = named_sections(sparse, h)
        .into_iter()
        .find(|(name, _, _)| name == ".dep-v0")?;
    let compressed = sparse.get(offset, size)?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_AUDIT_JSON)
        .read_to_end(&mut json)
        .ok()?;
    #[derive(serde::Deserialize)]
    struct Audit {
        packages: Vec<RustPackage>,
    }
    serde_json::from_slice::<Audit>(&json)
        .ok()
        .map(|a| a.packages)
}

/// Reads an unsigned LEB128 varint.
fn uvarint(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// The Go 1.18+ build information: a 32-byte header (magic, pointer size, flags) followed,
/// when flag bit 2 is set, by two varint-prefixed strings: the Go version and the module info.
/// Go build information from the bytes at its magic (`\xff Go buildinf:`), as `go version -m`
/// reads it; for the fuzz targets, which reach it without an ELF file around it.
#[doc(hidden)]
pub fn go_build_info(bytes: &[u8]) -> Option<GoBuildInfo> {
    parse_go_buildinfo(bytes)
}

/// Bytes 14 and 15 of a Go build info header: the pointer size (4 or 8) and the flags (bit 0
/// big-endian, bit 1 inline strings), as `go version` requires them.
fn go_buildinfo_header_is_valid(pointer_size_and_flags: &[u8]) -> bool {
    matches!(pointer_size_and_flags, [4 | 8, flags] if *flags <= 3)
}

fn parse_go_buildinfo(bytes: &[u8]) -> Option<GoBuildInfo> {
    if bytes.len() < 32 || !bytes.starts_with(GO_BUILDINFO_MAGIC) {
        return None;
    }
    if !go_buildinfo_header_is_valid(&bytes[14..16]) {
        return None;
    }
    let flags = bytes[15];
    if flags & 2 == 0 {
        // Go before 1.18 points into the data segment instead; only the fact remains.
        return Some(GoBuildInfo {
            go_version: "go1.17 or older".into(),
            ..GoBuildInfo::default()
        });
    }
    let mut at = 32;
    let mut next = || -> Option<&[u8]> {
        let (len, used) = uvarint(bytes.get(at..)?)?;
        let start = at + used;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        at = end;
        bytes.get(start..end)
    };
    let version = String::from_utf8_lossy(next()?).into_owned();
    let modinfo = next().unwrap_or_default();
    // The module info is framed by 16-byte sentinels.
    let modinfo = if modinfo.len() >= 33 {
        &modinfo[16..modinfo.len() - 16]
    } else {
        &[][..]
    };
    let mut info = GoBuildInfo {
        go_version: version,
        ..GoBuildInfo::default()
    };
    for line in String::from_utf8_lossy(modinfo).lines() {
        let fields: Vec<&str> = line.split('\t').collect();
        match fields.as_slice() {
            ["path", path, ..] => info.path = Some((*path).to_owned()),
            ["mod", path, version, ..] => {
                info.main = Some(GoModule {
                    path: (*path).to_owned(),
                    version: (*version).to_owned(),
                });
            }
            ["dep", path, version, ..] => {
                info.deps.push(GoModule {
                    path: (*path).to_owned(),
                    version: (*version).to_owned(),
                });
            }
            ["=>", path, version, ..] => {
                if let Some(last) = info.deps.last_mut() {
                    *last = GoModule {
                        path: (*path).to_owned(),
                        version: (*version).to_owned(),
                    };
                }
            }
            ["build", setting] => {
                if let Some((key, value)) = setting.split_once('=') {
                    info.settings
                        .push((key.to_owned(), value.trim_matches('"').to_owned()));
                }
            }
            _ => {}
        }
    }
    Some(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host_binary(path: &str) -> Option<Vec<u8>> {
        std::fs::read(path).ok()
    }

    #[test]
    fn reads_what_the_loader_reads_from_a_host_binary() {
        // Every Debian machine that builds drydock has a dynamic /bin/sh.
        let Some(bytes) = host_binary("/bin/sh") else {
            return;
        };
        let facts = elf_facts(&bytes);
        assert_eq!(facts.malformed, None);
        let interp = facts.interpreter.clone().expect("a dynamic /bin/sh");
        assert!(interp.contains("ld-"), "{interp}");
        assert_eq!(facts.libc(), Some(Libc::Glibc));
        assert!(facts.dynamic);
        assert!(
            facts.needed.iter().any(|n| n == "libc.so.6"),
            "{:?}",
            facts.needed
        );
        let libc = facts
            .version_needs
            .iter()
            .find(|v| v.file == "libc.so.6")
            .expect("verneed on libc");
        assert!(libc.versions.iter().any(|v| v.name.starts_with("GLIBC_2.")));
    }

    #[test]
    fn reads_version_definitions_of_libc() {
        let Some(path) = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists()) else {
            return;
        };
        let facts = elf_facts(&std::fs::read(path).unwrap());
        assert_eq!(facts.soname.as_deref(), Some("libc.so.6"));
        assert!(
            facts
                .version_defs
                .iter()
                .any(|v| v == "GLIBC_2.2.5" || v == "GLIBC_2.17"),
            "{:?}",
            facts.version_defs
        );
        assert!(facts.version_defs.iter().any(|v| v == "GLIBC_2.34"));
    }

    #[test]
    fn the_stream_reads_in_small_pieces_the_same() {
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(1000);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let Some(bytes) = host_binary("/bin/sh") else {
            return;
        };
        let mut trickle = Trickle(&bytes[4..]);
        let streamed = read(&[0x7f, b'E', b'L', b'F'], &mut trickle, bytes.len() as u64).unwrap();
        assert_eq!(streamed, elf_facts(&bytes));
    }

    #[test]
    fn never_panics_on_truncated_or_damaged_files() {
        let Some(bytes) = host_binary("/bin/sh") else {
            return;
        };
        for len in [4, 16, 52, 63, 64, 65, 100, 200, 600, 5000, bytes.len() / 2] {
            let _ = elf_facts(&bytes[..len.min(bytes.len())]);
        }
        let mut damaged = bytes.clone();
        let mut seed = 0x2545_f491_u32;
        for _ in 0..800 {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            let at = (seed as usize) % damaged.len().min(8192);
            damaged[at] ^= (seed >> 8) as u8;
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

    #[test]
    fn the_magic_without_a_linker_header_is_not_go() {
        // drydock's own binary holds the magic as a constant, followed by whatever comes next.
        let mut blob = GO_BUILDINFO_MAGIC.to_vec();
        blob.extend([0x66, 0x6f]);
        blob.resize(64, 0);
        assert!(parse_go_buildinfo(&blob).is_none());
        let mut blob = GO_BUILDINFO_MAGIC.to_vec();
        blob.extend([8, 0x20]);
        blob.resize(64, 0);
        assert!(parse_go_buildinfo(&blob).is_none());
    }

    #[test]
    fn go_build_info_is_parsed() {
        let mut blob = GO_BUILDINFO_MAGIC.to_vec();
        blob.extend([8, 2]);
        blob.resize(32, 0);
        let version = b"go1.22.3";
        blob.push(version.len() as u8);
        blob.extend(version);
        let mut modinfo = vec![b'x'; 16];
        modinfo.extend(b"path\texample.com/app\nmod\texample.com/app\t(devel)\t\ndep\tgo.uber.org/automaxprocs\tv1.5.3\th1:x\nbuild\tCGO_ENABLED=0\nbuild\t-ldflags=\"-s -w\"\n");
        modinfo.extend([b'y'; 16]);
        let mut len = modinfo.len();
        while len >= 0x80 {
            blob.push((len as u8) | 0x80);
            len >>= 7;
        }
        blob.push(len as u8);
        blob.extend(&modinfo);
        let info = parse_go_buildinfo(&blob).unwrap();
        assert_eq!(info.go_version, "go1.22.3");
        assert_eq!(info.path.as_deref(), Some("example.com/app"));
        assert!(info.depends_on("go.uber.org/automaxprocs"));
        assert_eq!(info.setting("CGO_ENABLED"), Some("0"));
        assert_eq!(info.setting("-ldflags"), Some("-s -w"));
    }

    /// A little-endian ELF64 file: the header, program headers `(p_type, offset, filesz)`,
    /// and sections `(name, sh_type, sh_link, bytes)` after a null one, with `.shstrtab` last.
    fn tiny_elf(
        e_type: u16,
        phdrs: &[(u32, u64, u64)],
        sections: &[(&str, u32, u32, &[u8])],
    ) -> Vec<u8> {
        let mut out = b"\x7fELF\x02\x01\x01".to_vec();
        out.resize(16, 0);
        out.extend(e_type.to_le_bytes());
        out.extend(header::EM_X86_64.to_le_bytes());
        out.extend(1u32.to_le_bytes());
        out.extend(0u64.to_le_bytes()); // e_entry
        out.extend(if phdrs.is_empty() { 0u64 } else { 64 }.to_le_bytes());
        out.extend(0u64.to_le_bytes()); // e_shoff, patched below
        out.extend(0u32.to_le_bytes());
        out.extend(64u16.to_le_bytes());
        out.extend(if phdrs.is_empty() { 0u16 } else { 56 }.to_le_bytes());
        out.extend((phdrs.len() as u16).to_le_bytes());
        out.extend(64u16.to_le_bytes());
        out.extend(0u16.to_le_bytes()); // e_shnum, patched below
        out.extend(0u16.to_le_bytes()); // e_shstrndx, patched below
        for &(kind, offset, filesz) in phdrs {
            out.extend(kind.to_le_bytes());
            out.extend(4u32.to_le_bytes());
            for value in [offset, offset, offset, filesz, filesz, 1] {
                out.extend(value.to_le_bytes());
            }
        }
        if sections.is_empty() {
            return out;
        }
        let mut names = vec![0u8];
        let mut headers = vec![(0u32, 0u32, 0u32, 0u64, 0u64)];
        for &(name, kind, link, bytes) in sections {
            let name_at = names.len() as u32;
            names.extend(name.as_bytes());
            names.push(0);
            headers.push((name_at, kind, link, out.len() as u64, bytes.len() as u64));
            out.extend(bytes);
        }
        let name_at = names.len() as u32;
        names.extend(b".shstrtab\0");
        headers.push((name_at, 3, 0, out.len() as u64, names.len() as u64));
        out.extend(&names);
        let shoff = out.len() as u64;
        for (name, kind, link, offset, size) in &headers {
            out.extend(name.to_le_bytes());
            out.extend(kind.to_le_bytes());
            out.extend([0u8; 16]); // sh_flags, sh_addr
            out.extend(offset.to_le_bytes());
            out.extend(size.to_le_bytes());
            out.extend(link.to_le_bytes());
            out.extend([0u8; 20]); // sh_info, sh_addralign, sh_entsize
        }
        out[40..48].copy_from_slice(&shoff.to_le_bytes());
        out[60..62].copy_from_slice(&(headers.len() as u16).to_le_bytes());
        out[62..64].copy_from_slice(&((headers.len() - 1) as u16).to_le_bytes());
        out
    }

    const OBJECT_SECTIONS: &[(&str, u32, u32, &[u8])] = &[
        (".text", 1, 0, &[0xc3; 16]),
        (".symtab", SHT_SYMTAB, 3, &[0; 48]),
        (".strtab", 3, 0, b"\0main\0"),
        (".debug_info", 1, 0, &[1; 30]),
    ];

    #[test]
    fn relocatable_objects_have_sections_and_no_program_headers() {
        let facts = elf_facts(&tiny_elf(header::ET_REL, &[], OBJECT_SECTIONS));
        assert_eq!(facts.malformed, None);
        assert_eq!(facts.kind, ElfKind::Relocatable);
        assert_eq!(
            facts.sections,
            Some(Sections {
                symtab: true,
                debug_info: true,
                strippable_bytes: 48 + 6 + 30,
            })
        );
    }

    #[test]
    fn a_program_without_program_headers_is_reported() {
        let facts = elf_facts(&tiny_elf(header::ET_EXEC, &[], OBJECT_SECTIONS));
        assert!(facts.malformed.unwrap().contains("no program headers"));
        assert!(facts.sections.unwrap().symtab);
    }

    #[test]
    fn core_files_have_segments_and_no_sections() {
        let mut bytes = tiny_elf(header::ET_CORE, &[(4, 176, 20), (PT_LOAD, 196, 4096)], &[]);
        bytes.resize(196 + 4096, 0);
        let facts = elf_facts(&bytes);
        assert_eq!(facts.malformed, None);
        assert_eq!(facts.kind, ElfKind::Core);
        assert_eq!(facts.sections, None);
        assert_eq!(facts.interpreter, None);
    }

    #[test]
    fn damaged_section_tables_are_reasons_not_panics() {
        let sound = tiny_elf(header::ET_EXEC, &[(PT_LOAD, 0, 64)], OBJECT_SECTIONS);
        let patched = |at: usize, value: &[u8]| {
            let mut bytes = sound.clone();
            bytes[at..at + value.len()].copy_from_slice(value);
            elf_facts(&bytes)
        };
        let zero_entries = patched(58, &0u16.to_le_bytes());
        assert!(zero_entries.malformed.unwrap().contains("e_shentsize 0"));
        assert_eq!(zero_entries.sections, None);
        let past_the_end = patched(40, &65_535u64.to_le_bytes());
        assert!(past_the_end.malformed.unwrap().contains("past the end"));
        assert_eq!(past_the_end.kind, ElfKind::Executable);
        let names_missing = patched(62, &39u16.to_le_bytes());
        assert!(names_missing.malformed.unwrap().contains("e_shstrndx 39"));
        // The symbol table is still found by its type.
        assert!(names_missing.sections.unwrap().symtab);
        let linked_to_self = elf_facts(&tiny_elf(
            header::ET_NONE,
            &[],
            &[(".hash", SHT_HASH, 1, &[0; 16])],
        ));
        assert!(
            linked_to_self
                .malformed
                .unwrap()
                .contains("links to itself")
        );
        let absurd = {
            let mut bytes = sound.clone();
            bytes[32..48].copy_from_slice(&[0xff; 16]); // e_phoff, e_shoff
            bytes[54..64].copy_from_slice(&[0xff; 10]); // every count and size
            elf_facts(&bytes)
        };
        assert!(absurd.malformed.is_some());
        assert_eq!(absurd.sections, None);
    }

    #[test]
    fn a_debug_only_companion_has_no_interpreter() {
        let facts = elf_facts(&tiny_elf(header::ET_DYN, &[(PT_INTERP, 120, 0)], &[]));
        assert_eq!(facts.interpreter, None);
        assert!(facts.malformed.unwrap().contains("PT_INTERP"));
    }
}
