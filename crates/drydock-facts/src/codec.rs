//! [`FileFacts`] as bytes, for the layer facts cache: a compact, hand-written encoding (the
//! JSON form skips captured bytes and renames variants for the report, so it cannot come back).
//!
//! What is encoded is exactly what the walk produced, and nothing more. A secret is its kind
//! and its place (`SecretFacts` never holds the value), so a credential's bytes never reach
//! the cache. Captured files (`etc/passwd`, the loader's cache and configuration, zone
//! databases) are kept whole, as the walk keeps them for the checks.
//!
//! Bump [`VERSION`] whenever a fact type, the hook or this encoding changes: the cache is keyed
//! by it, so entries of another version are never read.

use crate::FileFacts;
use crate::certs::CertBundle;
use crate::elf::{
    EIO, ENOEXEC, ElfClass, ElfFacts, ElfKind, ExecRefusal, GoBuildInfo, GoModule, NeededVersion,
    RustPackage, Sections, VersionNeed,
};
use crate::secrets::SecretFacts;
use crate::shell::ShellKind;

/// The version of the facts, the hook and this encoding.
pub const VERSION: u32 = 1;

/// This crate's version: the cache is keyed by it too, so a new release never reads facts an
/// older hook computed.
pub const CRATE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Appends what `decode` reads back.
#[derive(Debug, Default)]
pub struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    pub fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.out.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.out.push(value as u8);
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        self.varint(bytes.len() as u64);
        self.out.extend_from_slice(bytes);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub fn byte(&mut self, byte: u8) {
        self.out.push(byte);
    }

    fn bool(&mut self, value: bool) {
        self.byte(u8::from(value));
    }

    fn opt_str(&mut self, value: Option<&str>) {
        match value {
            Some(s) => {
                self.byte(1);
                self.str(s);
            }
            None => self.byte(0),
        }
    }

    fn strs(&mut self, values: &[String]) {
        self.varint(values.len() as u64);
        for v in values {
            self.str(v);
        }
    }
}

/// Reads what [`Writer`] wrote; every read is bounded by the input, `None` past its end.
#[derive(Debug)]
pub struct Reader<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    pub fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    pub fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    pub fn count(&mut self) -> Option<usize> {
        let len = usize::try_from(self.varint()?).ok()?;
        // No count can be larger than the bytes left: a damaged count allocates nothing.
        (len <= self.bytes.len() - self.at).then_some(len)
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.count()?;
        let bytes = self.bytes.get(self.at..self.at + len)?;
        self.at += len;
        Some(bytes)
    }

    pub fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_owned)
    }

    fn bool(&mut self) -> Option<bool> {
        match self.byte()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }

    fn opt_string(&mut self) -> Option<Option<String>> {
        Some(match self.byte()? {
            0 => None,
            1 => Some(self.string()?),
            _ => return None,
        })
    }

    fn strings(&mut self) -> Option<Vec<String>> {
        let n = self.count()?;
        (0..n).map(|_| self.string()).collect()
    }

    pub fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// Encodes one fact; `None` for a fact this encoding cannot hold exactly (then the layer is
/// not cached, never cached wrong).
pub fn encode(fact: &FileFacts, w: &mut Writer) -> Option<()> {
    match fact {
        FileFacts::Elf(elf) => {
            w.byte(0);
            encode_elf(elf, w)?;
        }
        FileFacts::Shell { elf, shell } => {
            w.byte(1);
            encode_elf(elf, w)?;
            w.byte(match shell {
                ShellKind::Dash => 0,
                ShellKind::Bash => 1,
                ShellKind::Busybox => 2,
            });
        }
        FileFacts::Captured { bytes, size, total } => {
            w.byte(2);
            w.bytes(bytes);
            w.varint(*size as u64);
            match total {
                Some(total) => {
                    w.byte(1);
                    w.varint(*total);
                }
                None => w.byte(0),
            }
        }
        FileFacts::Pem(bundle) => {
            w.byte(3);
            w.varint(bundle.certificates as u64);
            w.varint(bundle.unparsable as u64);
            w.varint(bundle.expired as u64);
            match bundle.earliest_expiry {
                Some(at) => {
                    w.byte(1);
                    w.bytes(&at.to_le_bytes());
                }
                None => w.byte(0),
            }
        }
        FileFacts::Script { shebang } => {
            w.byte(4);
            w.str(shebang);
        }
        FileFacts::Secret(SecretFacts { kind, detail }) => {
            // Kind and place only: `SecretFacts` has no value to leak.
            w.byte(5);
            w.str(kind);
            w.str(detail);
        }
    }
    Some(())
}

fn encode_elf(elf: &ElfFacts, w: &mut Writer) -> Option<()> {
    let ElfFacts {
        class,
        little_endian,
        machine,
        kind,
        interpreter,
        dynamic,
        static_pie,
        soname,
        needed,
        rpath,
        runpath,
        version_needs,
        version_defs,
        sections,
        go,
        rust_packages,
        go_crypto_tls,
        go_tzdata,
        malformed,
        exec_refusal,
    } = elf;
    w.byte(match class {
        ElfClass::Elf32 => 0,
        ElfClass::Elf64 => 1,
    });
    w.bool(*little_endian);
    w.varint(u64::from(*machine));
    w.byte(match kind {
        ElfKind::Executable => 0,
        ElfKind::Shared => 1,
        ElfKind::Relocatable => 2,
        ElfKind::Core => 3,
        ElfKind::Other => 4,
    });
    w.opt_str(interpreter.as_deref());
    w.bool(*dynamic);
    w.bool(*static_pie);
    w.opt_str(soname.as_deref());
    w.strs(needed);
    w.strs(rpath);
    w.strs(runpath);
    w.varint(version_needs.len() as u64);
    for need in version_needs {
        w.str(&need.file);
        w.varint(need.versions.len() as u64);
        for v in &need.versions {
            w.str(&v.name);
            w.bool(v.weak);
        }
    }
    w.strs(version_defs);
    match sections {
        Some(s) => {
            w.byte(1);
            w.bool(s.symtab);
            w.bool(s.debug_info);
            w.varint(s.strippable_bytes);
        }
        None => w.byte(0),
    }
    match go {
        Some(go) => {
            w.byte(1);
            w.str(&go.go_version);
            w.opt_str(go.path.as_deref());
            match &go.main {
                Some(m) => {
                    w.byte(1);
                    w.str(&m.path);
                    w.str(&m.version);
                }
                None => w.byte(0),
            }
            w.varint(go.deps.len() as u64);
            for m in &go.deps {
                w.str(&m.path);
                w.str(&m.version);
            }
            w.varint(go.settings.len() as u64);
            for (k, v) in &go.settings {
                w.str(k);
                w.str(v);
            }
        }
        None => w.byte(0),
    }
    match rust_packages {
        Some(packages) => {
            w.byte(1);
            w.varint(packages.len() as u64);
            for p in packages {
                w.str(&p.name);
                w.str(&p.version);
                w.str(&p.source);
            }
        }
        None => w.byte(0),
    }
    w.bool(*go_crypto_tls);
    w.bool(*go_tzdata);
    w.opt_str(malformed.as_deref());
    match exec_refusal {
        Some(refusal) => {
            w.byte(match refusal.error {
                ENOEXEC => 1,
                EIO => 2,
                _ => return None,
            });
            w.str(&refusal.reason);
        }
        None => w.byte(0),
    }
    Some(())
}

/// Decodes one fact written by [`encode`]; `None` for anything else.
pub fn decode(r: &mut Reader<'_>) -> Option<FileFacts> {
    Some(match r.byte()? {
        0 => FileFacts::Elf(Box::new(decode_elf(r)?)),
        1 => {
            let elf = Box::new(decode_elf(r)?);
            let shell = match r.byte()? {
                0 => ShellKind::Dash,
                1 => ShellKind::Bash,
                2 => ShellKind::Busybox,
                _ => return None,
            };
            FileFacts::Shell { elf, shell }
        }
        2 => {
            let bytes = r.bytes()?.to_vec();
            let size = usize::try_from(r.varint()?).ok()?;
            let total = match r.byte()? {
                0 => None,
                1 => Some(r.varint()?),
                _ => return None,
            };
            FileFacts::Captured { bytes, size, total }
        }
        3 => {
            let count = |r: &mut Reader<'_>| usize::try_from(r.varint()?).ok();
            let certificates = count(r)?;
            let unparsable = count(r)?;
            let expired = count(r)?;
            let earliest_expiry = match r.byte()? {
                0 => None,
                1 => Some(i64::from_le_bytes(r.bytes()?.try_into().ok()?)),
                _ => return None,
            };
            FileFacts::Pem(CertBundle {
                certificates,
                unparsable,
                expired,
                earliest_expiry,
            })
        }
        4 => FileFacts::Script {
            shebang: r.string()?,
        },
        5 => FileFacts::Secret(SecretFacts {
            kind: r.string()?,
            detail: r.string()?,
        }),
        _ => return None,
    })
}

fn decode_elf(r: &mut Reader<'_>) -> Option<ElfFacts> {
    let class = match r.byte()? {
        0 => ElfClass::Elf32,
        1 => ElfClass::Elf64,
        _ => return None,
    };
    let little_endian = r.bool()?;
    let machine = u16::try_from(r.varint()?).ok()?;
    let kind = match r.byte()? {
        0 => ElfKind::Executable,
        1 => ElfKind::Shared,
        2 => ElfKind::Relocatable,
        3 => ElfKind::Core,
        4 => ElfKind::Other,
        _ => return None,
    };
    let interpreter = r.opt_string()?;
    let dynamic = r.bool()?;
    let static_pie = r.bool()?;
    let soname = r.opt_string()?;
    let needed = r.strings()?;
    let rpath = r.strings()?;
    let runpath = r.strings()?;
    let n = r.count()?;
    let mut version_needs = Vec::with_capacity(n);
    for _ in 0..n {
        let file = r.string()?;
        let m = r.count()?;
        let mut versions = Vec::with_capacity(m);
        for _ in 0..m {
            versions.push(NeededVersion {
                name: r.string()?,
                weak: r.bool()?,
            });
        }
        version_needs.push(VersionNeed { file, versions });
    }
    let version_defs = r.strings()?;
    let sections = match r.byte()? {
        0 => None,
        1 => Some(Sections {
            symtab: r.bool()?,
            debug_info: r.bool()?,
            strippable_bytes: r.varint()?,
        }),
        _ => return None,
    };
    let module = |r: &mut Reader<'_>| {
        Some(GoModule {
            path: r.string()?,
            version: r.string()?,
        })
    };
    let go = match r.byte()? {
        0 => None,
        1 => {
            let go_version = r.string()?;
            let path = r.opt_string()?;
            let main = match r.byte()? {
                0 => None,
                1 => Some(module(r)?),
                _ => return None,
            };
            let n = r.count()?;
            let deps = (0..n).map(|_| module(r)).collect::<Option<Vec<_>>>()?;
            let n = r.count()?;
            let settings = (0..n)
                .map(|_| Some((r.string()?, r.string()?)))
                .collect::<Option<Vec<_>>>()?;
            Some(GoBuildInfo {
                go_version,
                path,
                main,
                deps,
                settings,
            })
        }
        _ => return None,
    };
    let rust_packages = match r.byte()? {
        0 => None,
        1 => {
            let n = r.count()?;
            Some(
                (0..n)
                    .map(|_| {
                        Some(RustPackage {
                            name: r.string()?,
                            version: r.string()?,
                            source: r.string()?,
                        })
                    })
                    .collect::<Option<Vec<_>>>()?,
            )
        }
        _ => return None,
    };
    let go_crypto_tls = r.bool()?;
    let go_tzdata = r.bool()?;
    let malformed = r.opt_string()?;
    let exec_refusal = match r.byte()? {
        0 => None,
        1 => Some(ExecRefusal {
            error: ENOEXEC,
            reason: r.string()?,
        }),
        2 => Some(ExecRefusal {
            error: EIO,
            reason: r.string()?,
        }),
        _ => return None,
    };
    Some(ElfFacts {
        class,
        little_endian,
        machine,
        kind,
        interpreter,
        dynamic,
        static_pie,
        soname,
        needed,
        rpath,
        runpath,
        version_needs,
        version_defs,
        sections,
        go,
        rust_packages,
        go_crypto_tls,
        go_tzdata,
        malformed,
        exec_refusal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf() -> ElfFacts {
        ElfFacts {
            class: ElfClass::Elf64,
            little_endian: true,
            machine: 62,
            kind: ElfKind::Shared,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2".into()),
            dynamic: true,
            static_pie: false,
            soname: None,
            needed: vec!["libc.so.6".into(), "libm.so.6".into()],
            rpath: vec![],
            runpath: vec!["$ORIGIN/../lib".into()],
            version_needs: vec![VersionNeed {
                file: "libc.so.6".into(),
                versions: vec![NeededVersion {
                    name: "GLIBC_2.34".into(),
                    weak: false,
                }],
            }],
            version_defs: vec!["V1".into()],
            sections: Some(Sections {
                symtab: true,
                debug_info: false,
                strippable_bytes: 1 << 33,
            }),
            go: Some(GoBuildInfo {
                go_version: "go1.22.3".into(),
                path: Some("example.com/app".into()),
                main: Some(GoModule {
                    path: "example.com/app".into(),
                    version: "(devel)".into(),
                }),
                deps: vec![GoModule {
                    path: "golang.org/x/net".into(),
                    version: "v0.1.0".into(),
                }],
                settings: vec![("CGO_ENABLED".into(), "0".into())],
            }),
            rust_packages: Some(vec![RustPackage {
                name: "serde".into(),
                version: "1.0.0".into(),
                source: "crates.io".into(),
            }]),
            go_crypto_tls: true,
            go_tzdata: false,
            malformed: Some("truncated \u{e9}".into()),
            exec_refusal: Some(ExecRefusal {
                error: EIO,
                reason: "PT_INTERP past the end".into(),
            }),
        }
    }

    fn every_fact() -> Vec<FileFacts> {
        vec![
            FileFacts::Elf(Box::new(elf())),
            FileFacts::Shell {
                elf: Box::new(ElfFacts {
                    exec_refusal: None,
                    go: None,
                    sections: None,
                    rust_packages: None,
                    ..elf()
                }),
                shell: ShellKind::Busybox,
            },
            FileFacts::Captured {
                bytes: b"root:x:0:0::/root:/bin/sh\n".to_vec(),
                size: 26,
                total: Some(1 << 40),
            },
            FileFacts::Pem(CertBundle {
                certificates: 140,
                unparsable: 1,
                expired: 2,
                earliest_expiry: Some(-5),
            }),
            FileFacts::Script {
                shebang: "/usr/bin/env python3".into(),
            },
            FileFacts::Secret(SecretFacts {
                kind: ".env credentials".into(),
                detail: "API_TOKEN (line 2)".into(),
            }),
        ]
    }

    #[test]
    fn every_fact_comes_back_as_it_went_in() {
        let mut w = Writer::default();
        for fact in every_fact() {
            encode(&fact, &mut w).unwrap();
        }
        let mut r = Reader::new(&w.out);
        let back: Vec<FileFacts> = (0..every_fact().len())
            .map(|_| decode(&mut r).unwrap())
            .collect();
        assert!(r.done());
        assert_eq!(back, every_fact());
    }

    #[test]
    fn damaged_bytes_decode_to_none_or_another_fact_never_a_panic() {
        let mut w = Writer::default();
        for fact in every_fact() {
            encode(&fact, &mut w).unwrap();
        }
        for cut in 0..w.out.len() {
            let mut r = Reader::new(&w.out[..cut]);
            while decode(&mut r).is_some() {}
        }
        for at in 0..w.out.len() {
            let mut bytes = w.out.clone();
            bytes[at] ^= 0xff;
            let mut r = Reader::new(&bytes);
            while decode(&mut r).is_some() {}
        }
    }

    #[test]
    fn an_exec_refusal_this_encoding_does_not_know_is_not_encoded() {
        let fact = FileFacts::Elf(Box::new(ElfFacts {
            exec_refusal: Some(ExecRefusal {
                error: "no such file or directory",
                reason: String::new(),
            }),
            ..elf()
        }));
        assert!(encode(&fact, &mut Writer::default()).is_none());
    }
}
