//! The `elf-zoo` fixture group: ELF files of every shape other ELF readers test, made here.
//!
//! Real files come from the compilers of the build machine: a tiny Go program cross-compiled
//! for every GOARCH Go supports on Linux, and gcc/musl-gcc builds of the C sources (dynamic,
//! PIE, static, static-pie, a shared library, RPATH and RUNPATH, objects with plain and
//! compressed debug sections, `--only-keep-debug` and `.gnu_debuglink`). Machines and shapes
//! no toolchain here makes (SPARC, 32-bit s390, PowerPC, big-endian MIPS and AArch64, core
//! files, `ET_NONE`, files without sections) and the corrupt variants are written by the small
//! ELF writer below.
//!
//! Output: `files/NAME` (the loose files), `oci/` (one image with every file under `/zoo/`),
//! and `manifest.json`: for every file the outcome its construction calls for (`ok`;
//! `degraded`: the ELF header reads, some table does not, and what can be read must still be
//! right; `error`: the file is corrupt and must say so; `none`: not an ELF file to anyone)
//! and the facts known from how it was built.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::Context;
use serde_json::{Value, json};

use crate::cmd::run;

const ET_NONE: u16 = 0;
const ET_REL: u16 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const ET_CORE: u16 = 4;

const EM_NONE: u16 = 0;
const EM_SPARC: u16 = 2;
const EM_386: u16 = 3;
const EM_MIPS: u16 = 8;
const EM_PPC: u16 = 20;
const EM_PPC64: u16 = 21;
const EM_S390: u16 = 22;
const EM_ARM: u16 = 40;
const EM_SPARCV9: u16 = 43;
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;
const EM_RISCV: u16 = 243;
const EM_LOONGARCH: u16 = 258;

/// Every GOARCH with a Linux port in Debian's Go, with what its binaries must say.
/// (GOARCH, class is 64-bit, little-endian, e_machine, stripped with `-s -w`).
const GO_ARCHES: &[(&str, bool, bool, u16, bool)] = &[
    ("amd64", true, true, EM_X86_64, true),
    ("386", false, true, EM_386, false),
    ("arm", false, true, EM_ARM, false),
    ("arm64", true, true, EM_AARCH64, false),
    ("ppc64le", true, true, EM_PPC64, true),
    ("ppc64", true, false, EM_PPC64, true),
    ("s390x", true, false, EM_S390, false),
    ("riscv64", true, true, EM_RISCV, false),
    ("mips", false, false, EM_MIPS, false),
    ("mipsle", false, true, EM_MIPS, true),
    ("mips64", true, false, EM_MIPS, true),
    ("mips64le", true, true, EM_MIPS, true),
    ("loong64", true, true, EM_LOONGARCH, true),
];

/// One file of the zoo and what is known about it from how it was made.
struct Entry {
    file: String,
    outcome: &'static str,
    /// readelf reads dynamic strings from the first section named `.dynstr`, the loader from
    /// `DT_STRTAB`: for such a file only the build says what the loader reads.
    loader_only: bool,
    how: String,
    expect: Value,
}

pub fn build(root: &Path, dir: &Path) -> anyhow::Result<()> {
    let files = dir.join("files");
    let scratch = dir.join("build");
    fs::create_dir_all(&files)?;
    fs::create_dir_all(&scratch)?;
    let mut entries = Vec::new();
    go_binaries(root, &files, &mut entries)?;
    c_binaries(root, &scratch, &files, &mut entries)?;
    for spec in synthetic() {
        let bytes = spec.write();
        fs::write(files.join(spec.name), &bytes)?;
        entries.push(spec.entry());
    }
    fs::write(files.join("broken-5-bytes"), b"\x7fELF\n")?;
    entries.push(Entry {
        loader_only: false,
        file: "broken-5-bytes".into(),
        outcome: "none",
        how: "the five bytes \\x7fELF\\n".into(),
        expect: json!({}),
    });
    let manifest: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "file": e.file, "outcome": e.outcome, "how": e.how, "expect": e.expect,
                "loader_only": e.loader_only,
            })
        })
        .collect();
    fs::write(
        dir.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    image(dir, &files, &entries)?;
    fs::remove_dir_all(&scratch)?;
    Ok(())
}

/// One image, one layer: every file of the zoo under `/zoo/`.
fn image(dir: &Path, files: &Path, entries: &[Entry]) -> anyhow::Result<()> {
    let builder = crate::fixtures::Builder::new(dir)?;
    let zoo = builder.rootfs().join("zoo");
    fs::create_dir_all(&zoo)?;
    for entry in entries {
        fs::copy(files.join(&entry.file), zoo.join(&entry.file))
            .with_context(|| format!("copying {} into the image", entry.file))?;
    }
    builder.commit("COPY zoo/ /zoo/")?;
    builder.config(&["--config.entrypoint", "/zoo/go-amd64"])?;
    builder.finish()?;
    Ok(())
}

fn go_binaries(root: &Path, files: &Path, entries: &mut Vec<Entry>) -> anyhow::Result<()> {
    let main = root.join("testdata/src/gozoo/main.go");
    for &(arch, wide, little, machine, stripped) in GO_ARCHES {
        let name = format!("go-{arch}");
        let mut go = Command::new("go");
        go.arg("build");
        if stripped {
            go.arg("-ldflags=-s -w");
        }
        go.arg("-o")
            .arg(files.join(&name))
            .arg(&main)
            .env("CGO_ENABLED", "0")
            .env("GOOS", "linux")
            .env("GOARCH", arch)
            .env("GOCACHE", root.join("target/go-cache"))
            .env("GOPATH", root.join("target/go-path"))
            .env("GOFLAGS", "-buildvcs=false")
            .env("GO111MODULE", "off")
            .env("GOPROXY", "off");
        run(&mut go)?;
        let mut expect = json!({
            "class": if wide { "elf64" } else { "elf32" },
            "little_endian": little,
            "machine": machine,
            "kind": "executable",
            "interpreter": null,
            "needed": [],
            "sections": true,
        });
        if stripped {
            expect["symtab"] = false.into();
            expect["debug_info"] = false.into();
        } else {
            expect["symtab"] = true.into();
            expect["debug_info"] = true.into();
        }
        entries.push(Entry {
            loader_only: false,
            file: name,
            outcome: "ok",
            how: format!(
                "GOARCH={arch} CGO_ENABLED=0 go build{}",
                if stripped { " -ldflags=-s -w" } else { "" }
            ),
            expect,
        });
    }
    Ok(())
}

/// (file, compiler, flags, inputs, what the file must say).
type CBuild<'a> = (&'a str, &'a str, Vec<String>, Vec<&'a Path>, Value);

fn c_binaries(
    root: &Path,
    scratch: &Path,
    files: &Path,
    entries: &mut Vec<Entry>,
) -> anyhow::Result<()> {
    let src = root.join("testdata/src");
    let hello = src.join("hello.c");
    let hello = hello.as_path();
    let voice = src.join("libvoice.c");
    let voice = voice.as_path();
    let x86_64 = json!({"class": "elf64", "little_endian": true, "machine": EM_X86_64});
    let glibc_loader = "/lib64/ld-linux-x86-64.so.2";
    let with = |extra: Value| {
        let mut expect = x86_64.clone();
        if let (Some(expect), Some(extra)) = (expect.as_object_mut(), extra.as_object()) {
            expect.extend(extra.clone());
        }
        expect
    };
    let libvoice = files.join("libzoo.so.1");
    let libvoice = libvoice.as_path();
    let builds: Vec<CBuild<'_>> = vec![
        (
            "libzoo.so.1",
            "gcc",
            vec![
                "-O2".into(),
                "-shared".into(),
                "-fPIC".into(),
                "-Wl,-soname,libzoo.so.1".into(),
            ],
            vec![voice],
            with(json!({"kind": "shared", "interpreter": null, "soname": "libzoo.so.1"})),
        ),
        (
            "c-dynamic",
            "gcc",
            vec!["-O2".into(), "-s".into(), "-no-pie".into()],
            vec![hello],
            with(json!({
                "kind": "executable", "interpreter": glibc_loader, "needed": ["libc.so.6"],
                "symtab": false, "debug_info": false,
            })),
        ),
        (
            "c-pie",
            "gcc",
            vec!["-O2".into(), "-pie".into(), "-fPIE".into()],
            vec![hello],
            with(json!({
                "kind": "shared", "interpreter": glibc_loader, "needed": ["libc.so.6"],
                "symtab": true,
            })),
        ),
        (
            "c-static",
            "gcc",
            vec!["-O2".into(), "-static".into()],
            vec![hello],
            with(json!({"kind": "executable", "interpreter": null, "needed": []})),
        ),
        (
            "c-static-pie",
            "gcc",
            vec!["-O2".into(), "-static-pie".into()],
            vec![hello],
            with(json!({"kind": "shared", "interpreter": null, "needed": []})),
        ),
        (
            "c-rpath",
            "gcc",
            vec![
                "-O2".into(),
                "-no-pie".into(),
                "-Wl,--no-as-needed,--disable-new-dtags,-rpath,/opt/zoo/lib:$ORIGIN/../lib".into(),
            ],
            vec![hello, libvoice],
            with(json!({
                "needed": ["libzoo.so.1", "libc.so.6"],
                "rpath": ["/opt/zoo/lib", "$ORIGIN/../lib"], "runpath": [],
            })),
        ),
        (
            "c-runpath",
            "gcc",
            vec![
                "-O2".into(),
                "-Wl,--no-as-needed,--enable-new-dtags,-rpath,$ORIGIN/lib".into(),
            ],
            vec![hello, libvoice],
            with(json!({
                "needed": ["libzoo.so.1", "libc.so.6"], "rpath": [], "runpath": ["$ORIGIN/lib"],
            })),
        ),
        (
            "zoo.o",
            "gcc",
            vec!["-O2".into(), "-c".into()],
            vec![hello],
            with(json!({
                "kind": "relocatable", "interpreter": null, "needed": [], "symtab": true,
                "debug_info": false, "sections": true,
            })),
        ),
        (
            "zoo-gz.o",
            "gcc",
            vec!["-O0".into(), "-g".into(), "-gz".into(), "-c".into()],
            vec![hello],
            with(json!({
                "kind": "relocatable", "symtab": true, "debug_info": true, "sections": true,
            })),
        ),
        (
            "c-debug",
            "gcc",
            vec!["-O0".into(), "-g".into()],
            vec![hello],
            with(json!({"symtab": true, "debug_info": true})),
        ),
        (
            "c-static-stripped",
            "gcc",
            vec!["-O2".into(), "-static".into(), "-s".into()],
            vec![hello],
            with(json!({
                "kind": "executable", "interpreter": null, "needed": [], "symtab": false,
                "debug_info": false,
            })),
        ),
        (
            "libzoo-musl.so.1",
            "musl-gcc",
            vec![
                "-O2".into(),
                "-s".into(),
                "-shared".into(),
                "-fPIC".into(),
                "-Wl,-soname,libzoo-musl.so.1".into(),
            ],
            vec![voice],
            with(json!({"kind": "shared", "interpreter": null, "soname": "libzoo-musl.so.1"})),
        ),
        (
            "musl-dynamic",
            "musl-gcc",
            vec!["-O2".into()],
            vec![hello],
            with(json!({"interpreter": "/lib/ld-musl-x86_64.so.1", "needed": ["libc.so"]})),
        ),
    ];
    for (file, compiler, flags, inputs, expect) in builds {
        run(Command::new(compiler)
            .args(&flags)
            .arg("-o")
            .arg(files.join(file))
            .args(&inputs))?;
        entries.push(Entry {
            loader_only: false,
            file: file.into(),
            outcome: "ok",
            how: format!("{compiler} {}", flags.join(" ")),
            expect,
        });
    }
    // Debug information split off, and the program stripped of it with a link to the file.
    let debug = files.join("c-debug");
    let companion = files.join("c-debug.debug");
    run(Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(&debug)
        .arg(&companion))?;
    entries.push(Entry {
        loader_only: false,
        file: "c-debug.debug".into(),
        // Its segments keep their headers but hold no bytes: no interpreter to read.
        outcome: "degraded",
        how: "objcopy --only-keep-debug c-debug".into(),
        expect: with(json!({"symtab": true, "debug_info": true})),
    });
    let linked = scratch.join("c-debuglink");
    run(Command::new("objcopy")
        .arg("--strip-debug")
        .arg("--strip-unneeded")
        .arg(&debug)
        .arg(&linked))?;
    // The link names the companion by file name; objcopy reads it from the working directory.
    run(Command::new("objcopy")
        .arg("--add-gnu-debuglink=c-debug.debug")
        .arg(&linked)
        .arg(files.join("c-debuglink"))
        .current_dir(files))?;
    entries.push(Entry {
        loader_only: false,
        file: "c-debuglink".into(),
        outcome: "ok",
        how: "objcopy --strip-debug --strip-unneeded, then --add-gnu-debuglink".into(),
        expect: with(json!({"symtab": false, "debug_info": false, "sections": true})),
    });
    let stripped = files.join("c-stripped");
    run(Command::new("strip").arg("-o").arg(&stripped).arg(&debug))?;
    entries.push(Entry {
        loader_only: false,
        file: "c-stripped".into(),
        outcome: "ok",
        how: "strip c-debug".into(),
        expect: with(json!({"symtab": false, "debug_info": false, "sections": true})),
    });
    Ok(())
}

/// How a synthetic file is damaged after it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Damage {
    None,
    /// `e_shoff` and `e_shnum` point past the end of the file.
    ShoffPastEof,
    /// `e_shentsize` 0 with a non-empty section header table.
    ShentsizeZero,
    /// A `SHT_HASH` section whose `sh_link` is its own index.
    HashLinksToSelf,
    /// One section header and `e_shstrndx` 39.
    ShstrndxOutOfRange,
    /// `e_phoff` past the end of the file; the section headers are intact.
    PhoffPastEof,
    /// Every size and count in the ELF header absurd (a fuzzer's file).
    AbsurdHeader,
    /// Segment and section sizes and offsets near 2^64.
    AbsurdSizes,
}

/// An ELF file the writer makes, described by what it must say.
struct Synthetic {
    name: &'static str,
    how: &'static str,
    wide: bool,
    little: bool,
    e_type: u16,
    machine: u16,
    interpreter: Option<&'static str>,
    needed: &'static [&'static str],
    soname: Option<&'static str>,
    rpath: Option<&'static str>,
    runpath: Option<&'static str>,
    /// A section header table (`.shstrtab` and what the file holds).
    sections: bool,
    symtab: bool,
    debug: bool,
    /// Core files: a `PT_NOTE` and this many `PT_LOAD`s.
    core_loads: usize,
    /// `EI_OSABI` (9: FreeBSD).
    osabi: u8,
    /// A second `.dynstr` section before the real one, which `DT_STRTAB` does not name.
    decoy_dynstr: bool,
    damage: Damage,
}

const PLAIN: Synthetic = Synthetic {
    name: "",
    how: "",
    wide: true,
    little: true,
    e_type: ET_EXEC,
    machine: EM_X86_64,
    interpreter: None,
    needed: &[],
    soname: None,
    rpath: None,
    runpath: None,
    sections: true,
    symtab: false,
    debug: false,
    core_loads: 0,
    osabi: 0,
    decoy_dynstr: false,
    damage: Damage::None,
};

fn synthetic() -> Vec<Synthetic> {
    vec![
        Synthetic {
            name: "sparc-solaris-ls",
            how: "ELF32 big-endian SPARC, Solaris loader, DT_RPATH and DT_RUNPATH both",
            wide: false,
            little: false,
            machine: EM_SPARC,
            interpreter: Some("/usr/lib/ld.so.1"),
            needed: &["librt.so.1", "libsec.so.1", "libc.so.1"],
            rpath: Some("/usr/sfw/lib"),
            runpath: Some("/usr/sfw/lib"),
            symtab: true,
            debug: true,
            ..PLAIN
        },
        Synthetic {
            name: "sparcv9-solaris",
            how: "ELF64 big-endian SPARC v9",
            wide: true,
            little: false,
            machine: EM_SPARCV9,
            interpreter: Some("/usr/lib/sparcv9/ld.so.1"),
            needed: &["libc.so.1"],
            symtab: true,
            ..PLAIN
        },
        Synthetic {
            name: "s390-32",
            how: "ELF32 big-endian s390 (31-bit)",
            wide: false,
            little: false,
            machine: EM_S390,
            interpreter: Some("/lib/ld.so.1"),
            needed: &["libc.so.6"],
            ..PLAIN
        },
        Synthetic {
            name: "s390x-bash",
            how: "ELF64 big-endian s390x with four DT_NEEDED",
            wide: true,
            little: false,
            machine: EM_S390,
            interpreter: Some("/lib/ld64.so.1"),
            needed: &[
                "libreadline.so.6",
                "libncurses.so.5",
                "libdl.so.2",
                "libc.so.6",
            ],
            ..PLAIN
        },
        Synthetic {
            name: "ppc32-bash",
            how: "ELF32 big-endian PowerPC",
            wide: false,
            little: false,
            machine: EM_PPC,
            interpreter: Some("/lib/ld.so.1"),
            needed: &["libtinfo.so.5", "libdl.so.2", "libc.so.6"],
            ..PLAIN
        },
        Synthetic {
            name: "mips32be-bash",
            how: "ELF32 big-endian MIPS",
            wide: false,
            little: false,
            machine: EM_MIPS,
            interpreter: Some("/lib/ld.so.1"),
            needed: &["libncurses.so.5", "libdl.so.2", "libc.so.6"],
            ..PLAIN
        },
        Synthetic {
            name: "mipsel-simple",
            how: "ELF32 little-endian MIPS with symbols and debug sections",
            wide: false,
            little: true,
            machine: EM_MIPS,
            interpreter: Some("/lib/ld.so.1"),
            needed: &["libc.so.6"],
            symtab: true,
            debug: true,
            ..PLAIN
        },
        Synthetic {
            name: "mips64el-base",
            how: "ELF64 little-endian MIPS",
            machine: EM_MIPS,
            interpreter: Some("/lib64/ld.so.1"),
            needed: &["libc.so.6"],
            symtab: true,
            ..PLAIN
        },
        Synthetic {
            name: "armhf-ls",
            how: "ELF32 ARM whose interpreter and a DT_NEEDED are both loaders",
            wide: false,
            machine: EM_ARM,
            interpreter: Some("/lib/ld-linux.so.3"),
            needed: &[
                "libcap.so.2",
                "libacl.so.1",
                "libgcc_s.so.1",
                "libc.so.6",
                "ld-linux-armhf.so.3",
            ],
            ..PLAIN
        },
        Synthetic {
            name: "i386-android.so",
            how: "ELF32 i386 shared object with Android's linker as interpreter",
            wide: false,
            e_type: ET_DYN,
            machine: EM_386,
            interpreter: Some("/system/bin/linker"),
            needed: &[
                "libcutils.so",
                "liblog.so",
                "libc++.so",
                "libdl.so",
                "libc.so",
            ],
            ..PLAIN
        },
        Synthetic {
            name: "i386-origin.so",
            how: "ELF32 i386 library with SONAME and RUNPATH $ORIGIN/lib",
            wide: false,
            e_type: ET_DYN,
            machine: EM_386,
            needed: &["libc.so.6"],
            soname: Some("libflags.so.1"),
            runpath: Some("$ORIGIN/lib"),
            symtab: true,
            ..PLAIN
        },
        Synthetic {
            name: "aarch64-be.so",
            how: "ELF64 big-endian AArch64 shared object",
            little: false,
            e_type: ET_DYN,
            machine: EM_AARCH64,
            needed: &["libc.so.6"],
            soname: Some("libbe.so.1"),
            symtab: true,
            debug: true,
            ..PLAIN
        },
        Synthetic {
            name: "x86_64-rpath-prog",
            how: "ELF64 x86_64 program with an absolute DT_RPATH of two directories",
            e_type: ET_DYN,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2"),
            needed: &["lib64.so", "libdl.so.2", "libc.so.6"],
            rpath: Some("/home/zoo/lib:/opt/lib"),
            symtab: true,
            ..PLAIN
        },
        Synthetic {
            name: "i386-bash",
            how: "ELF32 i386 glibc program",
            wide: false,
            machine: EM_386,
            interpreter: Some("/lib/ld-linux.so.2"),
            needed: &["libncurses.so.5", "libdl.so.2", "libc.so.6"],
            ..PLAIN
        },
        Synthetic {
            name: "i686-pie",
            how: "ELF32 i386 position-independent program",
            wide: false,
            e_type: ET_DYN,
            machine: EM_386,
            interpreter: Some("/lib/ld-linux.so.2"),
            needed: &["libc.so.6"],
            symtab: true,
            ..PLAIN
        },
        Synthetic {
            name: "i386-freebsd",
            how: "ELF32 i386 FreeBSD program (EI_OSABI 9) with debug sections",
            wide: false,
            machine: EM_386,
            osabi: 9,
            interpreter: Some("/libexec/ld-elf.so.1"),
            needed: &["libc.so.6"],
            symtab: true,
            debug: true,
            ..PLAIN
        },
        Synthetic {
            name: "riscv64-dynamic",
            how: "ELF64 RISC-V glibc program",
            machine: EM_RISCV,
            interpreter: Some("/lib/ld-linux-riscv64-lp64d.so.1"),
            needed: &["libc.so.6"],
            ..PLAIN
        },
        Synthetic {
            name: "aarch64-pie",
            how: "ELF64 AArch64 position-independent program",
            e_type: ET_DYN,
            machine: EM_AARCH64,
            interpreter: Some("/lib/ld-linux-aarch64.so.1"),
            needed: &["libc.so.6"],
            symtab: true,
            ..PLAIN
        },
        Synthetic {
            name: "two-dynstr.so",
            how: "x86_64 library with two .dynstr sections; DT_STRTAB names the second",
            e_type: ET_DYN,
            needed: &["libz.so.1", "libc.so.6"],
            soname: Some("lib_versioned.so.1"),
            symtab: true,
            decoy_dynstr: true,
            ..PLAIN
        },
        Synthetic {
            name: "riscv32-static",
            how: "ELF32 RISC-V static program with symbols",
            wide: false,
            machine: EM_RISCV,
            symtab: true,
            ..PLAIN
        },
        Synthetic {
            name: "s390x-object.o",
            how: "ELF64 big-endian s390x relocatable object with debug sections",
            little: false,
            e_type: ET_REL,
            machine: EM_S390,
            symtab: true,
            debug: true,
            ..PLAIN
        },
        Synthetic {
            name: "ppc64le-object.o",
            how: "ELF64 little-endian PowerPC64 relocatable object with debug sections",
            e_type: ET_REL,
            machine: EM_PPC64,
            symtab: true,
            debug: true,
            ..PLAIN
        },
        Synthetic {
            name: "i386-object.o",
            how: "ELF32 i386 relocatable object, no debug sections",
            wide: false,
            e_type: ET_REL,
            machine: EM_386,
            symtab: true,
            ..PLAIN
        },
        Synthetic {
            name: "x86_64-core",
            how: "ELF64 core file: PT_NOTE and 16 PT_LOADs, no sections",
            e_type: ET_CORE,
            sections: false,
            core_loads: 16,
            ..PLAIN
        },
        Synthetic {
            name: "i386-core",
            how: "ELF32 core file: PT_NOTE and 3 PT_LOADs, no sections",
            wide: false,
            e_type: ET_CORE,
            machine: EM_386,
            sections: false,
            core_loads: 3,
            ..PLAIN
        },
        Synthetic {
            name: "et-none",
            how: "ET_NONE, EM_NONE, a section table and nothing else",
            e_type: ET_NONE,
            machine: EM_NONE,
            ..PLAIN
        },
        Synthetic {
            name: "x86_64-strip-sections",
            how: "a PIE without any section headers (strip --strip-sections)",
            e_type: ET_DYN,
            interpreter: Some("/lib64/ld-linux-x86-64.so.2"),
            needed: &["libc.so.6"],
            sections: false,
            ..PLAIN
        },
        Synthetic {
            name: "aarch64-super-stripped",
            how: "an AArch64 program without section headers, DT_NEEDED through PT_DYNAMIC",
            machine: EM_AARCH64,
            interpreter: Some("/lib/ld-linux-aarch64.so.1"),
            needed: &["libc.so.6"],
            sections: false,
            ..PLAIN
        },
        Synthetic {
            name: "corrupt-shoff-past-eof",
            how: "i386 static program whose e_shoff (65535) and e_shnum (255) lie past the end",
            wide: false,
            machine: EM_386,
            symtab: true,
            damage: Damage::ShoffPastEof,
            ..PLAIN
        },
        Synthetic {
            name: "corrupt-shentsize-zero",
            how: "e_shentsize 0 with a non-empty section header table",
            e_type: ET_NONE,
            machine: EM_NONE,
            damage: Damage::ShentsizeZero,
            ..PLAIN
        },
        Synthetic {
            name: "corrupt-hash-link-self",
            how: "a SHT_HASH section whose sh_link is its own index",
            e_type: ET_NONE,
            machine: EM_NONE,
            damage: Damage::HashLinksToSelf,
            ..PLAIN
        },
        Synthetic {
            name: "corrupt-shstrndx",
            how: "x86_64 program with e_shnum 1 and e_shstrndx 39",
            interpreter: Some("/lib64/ld-linux-x86-64.so.2"),
            needed: &["libc.so.6"],
            damage: Damage::ShstrndxOutOfRange,
            ..PLAIN
        },
        Synthetic {
            name: "corrupt-phoff-past-eof",
            how: "x86_64 object-like program whose e_phoff lies past the end, sections intact",
            symtab: true,
            debug: true,
            damage: Damage::PhoffPastEof,
            ..PLAIN
        },
        Synthetic {
            name: "fuzz-absurd-header",
            how: "ELF64 big-endian ET_NONE with every header count and size absurd",
            little: false,
            e_type: ET_NONE,
            machine: EM_NONE,
            symtab: true,
            damage: Damage::AbsurdHeader,
            ..PLAIN
        },
        Synthetic {
            name: "fuzz-absurd-sizes",
            how: "i386 program whose segment and section sizes and offsets are near 2^64",
            wide: false,
            e_type: ET_DYN,
            machine: EM_386,
            interpreter: Some("/lib/ld-linux.so.2"),
            needed: &["libc.so.6"],
            symtab: true,
            damage: Damage::AbsurdSizes,
            ..PLAIN
        },
    ]
}

/// Bytes of one class and byte order.
struct Writer {
    wide: bool,
    little: bool,
    bytes: Vec<u8>,
}

impl Writer {
    fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }
    fn u16(&mut self, value: u16) {
        let b = if self.little {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        };
        self.bytes.extend(b);
    }
    fn u32(&mut self, value: u32) {
        let b = if self.little {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        };
        self.bytes.extend(b);
    }
    fn u64(&mut self, value: u64) {
        let b = if self.little {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        };
        self.bytes.extend(b);
    }
    /// An address or offset: 8 bytes in ELF64, 4 in ELF32 (truncated there on purpose).
    fn word(&mut self, value: u64) {
        if self.wide {
            self.u64(value);
        } else {
            self.u32(value as u32);
        }
    }
    fn align(&mut self, to: usize) {
        while !self.bytes.len().is_multiple_of(to) {
            self.bytes.push(0);
        }
    }
    fn patch_u16(&mut self, at: usize, value: u16) {
        let b = if self.little {
            value.to_le_bytes()
        } else {
            value.to_be_bytes()
        };
        self.bytes[at..at + 2].copy_from_slice(&b);
    }
    fn patch_word(&mut self, at: usize, value: u64) {
        if self.wide {
            let b = if self.little {
                value.to_le_bytes()
            } else {
                value.to_be_bytes()
            };
            self.bytes[at..at + 8].copy_from_slice(&b);
        } else {
            let b = if self.little {
                (value as u32).to_le_bytes()
            } else {
                (value as u32).to_be_bytes()
            };
            self.bytes[at..at + 4].copy_from_slice(&b);
        }
    }
}

/// A string table under construction.
#[derive(Default)]
struct Strings(Vec<u8>);

impl Strings {
    fn add(&mut self, s: &str) -> u32 {
        if self.0.is_empty() {
            self.0.push(0);
        }
        let at = self.0.len() as u32;
        self.0.extend(s.as_bytes());
        self.0.push(0);
        at
    }
}

struct Section {
    name: &'static str,
    kind: u32,
    flags: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_HASH: u32 = 5;
const SHT_DYNAMIC: u32 = 6;
const SHF_WRITE: u64 = 1;
const SHF_ALLOC: u64 = 2;
const SHF_EXECINSTR: u64 = 4;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;

impl Synthetic {
    fn dynamic(&self) -> bool {
        !self.needed.is_empty()
            || self.soname.is_some()
            || self.rpath.is_some()
            || self.runpath.is_some()
    }

    /// The facts the file says by construction, for the conformance test.
    fn entry(&self) -> Entry {
        let outcome = match self.damage {
            Damage::None => "ok",
            Damage::ShoffPastEof | Damage::ShstrndxOutOfRange | Damage::PhoffPastEof => "degraded",
            Damage::ShentsizeZero
            | Damage::HashLinksToSelf
            | Damage::AbsurdHeader
            | Damage::AbsurdSizes => "error",
        };
        let split = |s: Option<&str>| -> Vec<String> {
            s.map(|s| s.split(':').map(str::to_owned).collect())
                .unwrap_or_default()
        };
        let mut expect = json!({
            "class": if self.wide { "elf64" } else { "elf32" },
            "little_endian": self.little,
            "machine": self.machine,
            "kind": match self.e_type {
                ET_EXEC => "executable",
                ET_DYN => "shared",
                ET_REL => "relocatable",
                ET_CORE => "core",
                _ => "other",
            },
        });
        let readable_segments = !matches!(
            self.damage,
            Damage::PhoffPastEof | Damage::AbsurdHeader | Damage::AbsurdSizes
        );
        if readable_segments {
            expect["interpreter"] = self.interpreter.into();
            expect["needed"] = self.needed.into();
            expect["soname"] = self.soname.into();
            expect["rpath"] = split(self.rpath).into();
            expect["runpath"] = split(self.runpath).into();
        }
        let readable_sections = matches!(self.damage, Damage::None | Damage::PhoffPastEof);
        if readable_sections {
            expect["sections"] = self.sections.into();
            if self.sections {
                expect["symtab"] = self.symtab.into();
                expect["debug_info"] = self.debug.into();
            }
        }
        Entry {
            loader_only: self.decoy_dynstr,
            file: self.name.into(),
            outcome,
            how: self.how.into(),
            expect,
        }
    }

    fn write(&self) -> Vec<u8> {
        let mut w = Writer {
            wide: self.wide,
            little: self.little,
            bytes: Vec::new(),
        };
        let (ehsize, phentsize, shentsize) = if self.wide {
            (64u16, 56u16, 64u16)
        } else {
            (52, 32, 40)
        };
        let word = if self.wide { 8u64 } else { 4 };
        let base: u64 = match self.e_type {
            ET_EXEC => 0x40_0000,
            _ => 0,
        };
        let core = self.e_type == ET_CORE;
        let dynamic = self.dynamic();
        let phnum = if core {
            1 + self.core_loads
        } else if self.e_type == ET_REL {
            0
        } else {
            1 + usize::from(self.interpreter.is_some()) + usize::from(dynamic)
        };
        // Header now, offsets patched below.
        w.bytes.extend(b"\x7fELF");
        w.u8(if self.wide { 2 } else { 1 });
        w.u8(if self.little { 1 } else { 2 });
        w.u8(1);
        w.u8(self.osabi);
        w.bytes.resize(16, 0);
        w.u16(self.e_type);
        w.u16(self.machine);
        w.u32(1);
        let entry_at = w.bytes.len();
        w.word(0); // e_entry
        let phoff_at = w.bytes.len();
        w.word(0);
        let shoff_at = w.bytes.len();
        w.word(0);
        w.u32(0); // e_flags
        w.u16(ehsize);
        w.u16(if phnum > 0 { phentsize } else { 0 });
        w.u16(phnum as u16);
        let shentsize_at = w.bytes.len();
        w.u16(shentsize);
        let shnum_at = w.bytes.len();
        w.u16(0);
        let shstrndx_at = w.bytes.len();
        w.u16(0);
        let phoff = w.bytes.len() as u64;
        w.bytes
            .resize(w.bytes.len() + phnum * usize::from(phentsize), 0);
        if phnum > 0 {
            w.patch_word(phoff_at, phoff);
        }
        let mut sections = vec![Section {
            name: "",
            kind: 0,
            flags: 0,
            offset: 0,
            size: 0,
            link: 0,
            info: 0,
            align: 0,
            entsize: 0,
        }];
        // (p_type, p_flags, offset, size, align)
        let mut segments: Vec<(u32, u32, u64, u64, u64)> = Vec::new();
        let place = |w: &mut Writer, data: &[u8], align: usize| -> (u64, u64) {
            w.align(align);
            let at = w.bytes.len() as u64;
            w.bytes.extend(data);
            (at, data.len() as u64)
        };
        if let Some(interpreter) = self.interpreter {
            let mut data = interpreter.as_bytes().to_vec();
            data.push(0);
            let (at, len) = place(&mut w, &data, 1);
            segments.push((PT_INTERP, 4, at, len, 1));
            sections.push(Section {
                name: ".interp",
                kind: SHT_PROGBITS,
                flags: SHF_ALLOC,
                offset: at,
                size: len,
                link: 0,
                info: 0,
                align: 1,
                entsize: 0,
            });
        }
        if dynamic {
            let mut dynstr = Strings::default();
            let mut tags = Vec::new();
            for name in self.needed {
                tags.push((DT_NEEDED, u64::from(dynstr.add(name))));
            }
            if let Some(soname) = self.soname {
                tags.push((DT_SONAME, u64::from(dynstr.add(soname))));
            }
            if let Some(rpath) = self.rpath {
                tags.push((DT_RPATH, u64::from(dynstr.add(rpath))));
            }
            if let Some(runpath) = self.runpath {
                tags.push((DT_RUNPATH, u64::from(dynstr.add(runpath))));
            }
            if self.decoy_dynstr {
                let mut decoy = Strings::default();
                decoy.add("libdecoy.so.9");
                let (at, len) = place(&mut w, &decoy.0, 1);
                sections.push(Section {
                    name: ".dynstr",
                    kind: SHT_STRTAB,
                    flags: SHF_ALLOC,
                    offset: at,
                    size: len,
                    link: 0,
                    info: 0,
                    align: 1,
                    entsize: 0,
                });
            }
            let (strtab_at, strtab_len) = place(&mut w, &dynstr.0, 1);
            tags.push((DT_STRTAB, base + strtab_at));
            tags.push((DT_STRSZ, strtab_len));
            tags.push((0, 0));
            let dynstr_index = sections.len() as u32;
            sections.push(Section {
                name: ".dynstr",
                kind: SHT_STRTAB,
                flags: SHF_ALLOC,
                offset: strtab_at,
                size: strtab_len,
                link: 0,
                info: 0,
                align: 1,
                entsize: 0,
            });
            w.align(word as usize);
            let dynamic_at = w.bytes.len() as u64;
            for (tag, value) in tags {
                w.word(tag);
                w.word(value);
            }
            let dynamic_len = w.bytes.len() as u64 - dynamic_at;
            segments.push((PT_DYNAMIC, 6, dynamic_at, dynamic_len, word));
            sections.push(Section {
                name: ".dynamic",
                kind: SHT_DYNAMIC,
                flags: SHF_ALLOC | SHF_WRITE,
                offset: dynamic_at,
                size: dynamic_len,
                link: dynstr_index,
                info: 0,
                align: word,
                entsize: 2 * word,
            });
        }
        if core {
            // NT_PRSTATUS and NT_PRPSINFO notes of the sizes x86_64 uses, zero-filled.
            let mut notes = Writer {
                wide: self.wide,
                little: self.little,
                bytes: Vec::new(),
            };
            for (kind, size) in [(1u32, 336u32), (3, 136)] {
                notes.u32(5);
                notes.u32(size);
                notes.u32(kind);
                notes.bytes.extend(b"CORE\0\0\0\0");
                notes.bytes.resize(notes.bytes.len() + size as usize, 0);
            }
            let (at, len) = place(&mut w, &notes.bytes, 4);
            segments.push((PT_NOTE, 0, at, len, 1));
            for i in 0..self.core_loads {
                let page = vec![(i as u8).wrapping_mul(7); 4096];
                let (at, len) = place(&mut w, &page, 4096);
                segments.push((PT_LOAD, if i == 0 { 5 } else { 6 }, at, len, 4096));
            }
        }
        let text_index = sections.len() as u32;
        if !core {
            let (at, len) = place(&mut w, &[0xc3; 16], 16);
            sections.push(Section {
                name: ".text",
                kind: SHT_PROGBITS,
                flags: SHF_ALLOC | SHF_EXECINSTR,
                offset: at,
                size: len,
                link: 0,
                info: 0,
                align: 16,
                entsize: 0,
            });
            w.patch_word(entry_at, if self.e_type == ET_REL { 0 } else { base + at });
        }
        let loaded_end = w.bytes.len() as u64;
        if !core && self.e_type != ET_REL {
            segments.insert(0, (PT_LOAD, 5, 0, loaded_end, 0x1000));
        }
        if self.damage == Damage::HashLinksToSelf {
            let mut hash = Writer {
                wide: self.wide,
                little: self.little,
                bytes: Vec::new(),
            };
            for value in [1u32, 1, 0, 0] {
                hash.u32(value);
            }
            let (at, len) = place(&mut w, &hash.bytes, 4);
            let index = sections.len() as u32;
            sections.push(Section {
                name: ".hash",
                kind: SHT_HASH,
                flags: 0,
                offset: at,
                size: len,
                link: index,
                info: 0,
                align: 4,
                entsize: 4,
            });
        }
        if self.symtab {
            let mut strtab = Strings::default();
            let name = strtab.add("zoo_main");
            let mut symbols = Writer {
                wide: self.wide,
                little: self.little,
                bytes: Vec::new(),
            };
            // The null symbol, then one global function in .text.
            for (name, info, shndx, value, size) in
                [(0, 0, 0, 0, 0), (name, 0x12, text_index as u16, base, 16)]
            {
                if self.wide {
                    symbols.u32(name);
                    symbols.u8(info);
                    symbols.u8(0);
                    symbols.u16(shndx);
                    symbols.u64(value);
                    symbols.u64(size);
                } else {
                    symbols.u32(name);
                    symbols.u32(value as u32);
                    symbols.u32(size as u32);
                    symbols.u8(info);
                    symbols.u8(0);
                    symbols.u16(shndx);
                }
            }
            let (sym_at, sym_len) = place(&mut w, &symbols.bytes, word as usize);
            let (str_at, str_len) = place(&mut w, &strtab.0, 1);
            let strtab_index = sections.len() as u32 + 1;
            sections.push(Section {
                name: ".symtab",
                kind: SHT_SYMTAB,
                flags: 0,
                offset: sym_at,
                size: sym_len,
                link: strtab_index,
                info: 1,
                align: word,
                entsize: if self.wide { 24 } else { 16 },
            });
            sections.push(Section {
                name: ".strtab",
                kind: SHT_STRTAB,
                flags: 0,
                offset: str_at,
                size: str_len,
                link: 0,
                info: 0,
                align: 1,
                entsize: 0,
            });
        }
        if self.debug {
            // Not parsed by anyone here: only the names and sizes count.
            for name in [".debug_info", ".debug_abbrev", ".debug_str"] {
                let (at, len) = place(&mut w, name.as_bytes(), 1);
                sections.push(Section {
                    name,
                    kind: SHT_PROGBITS,
                    flags: 0,
                    offset: at,
                    size: len,
                    link: 0,
                    info: 0,
                    align: 1,
                    entsize: 0,
                });
            }
        }
        if self.sections {
            let mut names = Strings::default();
            let offsets: Vec<u32> = sections
                .iter()
                .map(|s| {
                    if s.name.is_empty() {
                        0
                    } else {
                        names.add(s.name)
                    }
                })
                .collect();
            let shstrtab_name = names.add(".shstrtab");
            let (at, len) = place(&mut w, &names.0, 1);
            sections.push(Section {
                name: ".shstrtab",
                kind: SHT_STRTAB,
                flags: 0,
                offset: at,
                size: len,
                link: 0,
                info: 0,
                align: 1,
                entsize: 0,
            });
            w.align(word as usize);
            let shoff = w.bytes.len() as u64;
            for (i, section) in sections.iter().enumerate() {
                let name = offsets.get(i).copied().unwrap_or(shstrtab_name);
                let addr = if section.flags & SHF_ALLOC != 0 {
                    base + section.offset
                } else {
                    0
                };
                w.u32(name);
                w.u32(section.kind);
                w.word(section.flags);
                w.word(addr);
                w.word(section.offset);
                w.word(section.size);
                w.u32(section.link);
                w.u32(section.info);
                w.word(section.align);
                w.word(section.entsize);
            }
            w.patch_word(shoff_at, shoff);
            w.patch_u16(shnum_at, sections.len() as u16);
            w.patch_u16(shstrndx_at, (sections.len() - 1) as u16);
        } else {
            w.patch_u16(shentsize_at, 0);
        }
        for (i, (kind, flags, offset, size, align)) in segments.iter().enumerate() {
            let at = phoff as usize + i * usize::from(phentsize);
            let vaddr = if core {
                0x7f00_0000_0000_u64.wrapping_add(*offset)
                    & if self.wide { u64::MAX } else { 0xffff_ffff }
            } else {
                base + offset
            };
            let mut phdr = Writer {
                wide: self.wide,
                little: self.little,
                bytes: Vec::new(),
            };
            phdr.u32(*kind);
            if self.wide {
                phdr.u32(*flags);
                phdr.u64(*offset);
                phdr.u64(vaddr);
                phdr.u64(vaddr);
                phdr.u64(*size);
                phdr.u64(*size);
                phdr.u64(*align);
            } else {
                phdr.u32(*offset as u32);
                phdr.u32(vaddr as u32);
                phdr.u32(vaddr as u32);
                phdr.u32(*size as u32);
                phdr.u32(*size as u32);
                phdr.u32(*flags);
                phdr.u32(*align as u32);
            }
            w.bytes[at..at + phdr.bytes.len()].copy_from_slice(&phdr.bytes);
        }
        self.damage(&mut w, phoff, phnum, usize::from(phentsize), shoff_at);
        w.bytes
    }

    /// Applies `self.damage` to a written file.
    fn damage(&self, w: &mut Writer, phoff: u64, phnum: usize, phentsize: usize, shoff_at: usize) {
        let (phoff_at, phentsize_at, phnum_at, shentsize_at, shnum_at, shstrndx_at) = if self.wide {
            (32, 54, 56, 58, 60, 62)
        } else {
            (28, 42, 44, 46, 48, 50)
        };
        let len = w.bytes.len() as u64;
        match self.damage {
            Damage::None | Damage::HashLinksToSelf => {}
            Damage::ShoffPastEof => {
                w.patch_word(shoff_at, 65_535.max(len + 1));
                w.patch_u16(shnum_at, 255);
            }
            Damage::ShentsizeZero => w.patch_u16(shentsize_at, 0),
            Damage::ShstrndxOutOfRange => {
                w.patch_u16(shnum_at, 1);
                w.patch_u16(shstrndx_at, 39);
            }
            Damage::PhoffPastEof => w.patch_word(phoff_at, len + 4096),
            Damage::AbsurdHeader => {
                w.patch_word(phoff_at, 0xffff_ffff_ffff_ff00);
                w.patch_u16(phentsize_at, 0xffff);
                w.patch_u16(phnum_at, 0xffff);
                w.patch_word(shoff_at, 0x4e00_0000_0000_0000);
                w.patch_u16(shentsize_at, 0xffff);
                w.patch_u16(shnum_at, 0xffff);
                w.patch_u16(shstrndx_at, 0xfffe);
            }
            Damage::AbsurdSizes => {
                // Every segment's offset and sizes, and every section's size, near the top.
                let huge = 0xffff_fff0_ffff_fff0_u64;
                for i in 0..phnum {
                    let at = phoff as usize + i * phentsize;
                    let (offset_at, filesz_at, memsz_at) = if self.wide {
                        (at + 8, at + 32, at + 40)
                    } else {
                        (at + 4, at + 16, at + 20)
                    };
                    if i > 0 {
                        w.patch_word(offset_at, huge - 0x1000);
                    }
                    w.patch_word(filesz_at, huge);
                    w.patch_word(memsz_at, huge);
                }
                let shoff = read_word(w, shoff_at);
                let shentsize = if self.wide { 64 } else { 40 };
                let size_field = if self.wide { 32 } else { 20 };
                let mut at = shoff as usize + shentsize;
                while at + shentsize <= w.bytes.len() {
                    w.patch_word(at + size_field, huge);
                    at += shentsize;
                }
            }
        }
    }
}

fn read_word(w: &Writer, at: usize) -> u64 {
    let width = if w.wide { 8 } else { 4 };
    let bytes = &w.bytes[at..at + width];
    let mut value = 0u64;
    for i in 0..width {
        let byte = if w.little {
            bytes[width - 1 - i]
        } else {
            bytes[i]
        };
        value = (value << 8) | u64::from(byte);
    }
    value
}
