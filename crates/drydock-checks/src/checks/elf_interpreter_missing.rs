//! `elf.interpreter-missing`: an executable whose program loader (`PT_INTERP`) is not in the
//! image. `execve` fails with `ENOENT` before the program runs a single instruction, and the
//! runtime reports it as "exec /app/server: no such file or directory", naming the program,
//! which is there, instead of the loader, which is not.

use drydock_facts::Libc;
use drydock_layers::{FileKind, Lookup, path};

use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct InterpreterMissing;

const ID: &str = "elf.interpreter-missing";

/// The C library the image itself provides, judged by its loaders and `libc.so.6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageLibc {
    Glibc,
    Musl,
    None,
}

fn image_libc(cx: &ImageContext<'_>) -> ImageLibc {
    let mut libc = ImageLibc::None;
    // Every entry but a directory named like a C library or its loader, in tree order.
    for (path, _) in cx.libc_entries() {
        let is_musl = path::split_last(path).1.starts_with(b"ld-musl-");
        // A dangling link is no C library.
        let resolves = cx
            .tree
            .resolve(path, true)
            .is_ok_and(|t| cx.tree.entry(t).kind == FileKind::File);
        if !resolves {
            continue;
        }
        if is_musl {
            return ImageLibc::Musl;
        }
        libc = ImageLibc::Glibc;
    }
    libc
}

/// Why the loader does not resolve, in the words of someone reading the image.
fn explain_absence(cx: &ImageContext<'_>, interpreter: &str) -> String {
    match cx.tree.resolve(interpreter.as_bytes(), false) {
        Ok(id) => {
            let entry = cx.tree.entry(id);
            match (entry.kind, entry.link) {
                (FileKind::Symlink, Some(target)) => {
                    match cx.tree.resolve(interpreter.as_bytes(), true) {
                        Err(Lookup::TooManyLinks) => {
                            format!("{interpreter} is a symlink loop")
                        }
                        _ => format!(
                            "{interpreter} is a symlink to {}, which is not in the image",
                            String::from_utf8_lossy(target)
                        ),
                    }
                }
                (kind, _) => format!(
                    "{interpreter} is a {} in the image, not a file",
                    kind_name(kind)
                ),
            }
        }
        Err(Lookup::TooManyLinks) => format!("resolving {interpreter} loops through symlinks"),
        Err(_) => "the image has no such file".to_string(),
    }
}

fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Dir => "directory",
        FileKind::Symlink => "symlink",
        FileKind::Char => "character device",
        FileKind::Block => "block device",
        FileKind::Fifo => "named pipe",
    }
}

fn diagnosis(binary: Option<Libc>, image: ImageLibc) -> (&'static str, &'static str) {
    match (binary, image) {
        (Some(Libc::Glibc), ImageLibc::Musl) => (
            "it was linked against glibc, but the image's C library is musl (Alpine-style)",
            "Build it where it runs: set CGO_ENABLED=0 for Go, build on an Alpine (musl) builder \
             or link statically (`-static`); or use a glibc final stage such as debian:bookworm-slim \
             or gcr.io/distroless/base-debian12",
        ),
        (Some(Libc::Glibc), ImageLibc::None) => (
            "it was linked against glibc, but the image has no C library (scratch or distroless/static)",
            "Build a static binary (CGO_ENABLED=0 for Go, `-static` for C), or use a final stage \
             that ships glibc, such as gcr.io/distroless/base-debian12 or debian:bookworm-slim",
        ),
        (Some(Libc::Musl), ImageLibc::Glibc) => (
            "it was linked against musl, but the image's C library is glibc",
            "Build it against glibc on a Debian-based builder, link it statically, or use an Alpine \
             final stage",
        ),
        (Some(Libc::Musl), ImageLibc::None) => (
            "it was linked against musl, but the image has no C library",
            "Link it statically (`-static`, or CGO_ENABLED=0 for Go), or use an Alpine final stage",
        ),
        _ => (
            "the program loader it names is not where it says",
            "Install the package that provides the loader, fix the symlink that should lead to it, \
             or build the program statically",
        ),
    }
}

impl Check for InterpreterMissing {
    fn id(&self) -> &'static str {
        ID
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    fn summary(&self) -> &'static str {
        "An executable's ELF interpreter (PT_INTERP) is not a file in the image"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        let mut libc = None;
        for (path, id) in cx.elf_entries() {
            let entry = cx.tree.entry(id);
            // Only files the kernel would execute: a shared library's PT_INTERP is never used.
            if entry.meta.mode & 0o111 == 0 {
                continue;
            }
            let Some(elf) = entry.fact.and_then(|f| f.elf()) else {
                continue;
            };
            let Some(interpreter) = elf.interpreter.as_deref() else {
                continue;
            };
            if let Ok(target) = cx.tree.resolve(interpreter.as_bytes(), true)
                && cx.tree.entry(target).kind == FileKind::File
            {
                continue;
            }
            let image = *libc.get_or_insert_with(|| image_libc(cx));
            let (why, fix) = diagnosis(elf.libc(), image);
            let shown = path::display(path);
            let (severity, reach) = cx.reach(id, self.severity());
            findings.push(Finding {
                program: Some(shown.clone()),
                id: ID.into(),
                severity,
                title: "ELF interpreter missing".into(),
                message: format!(
                    "{} \"exec {shown}: no such file or directory\": {shown} needs the program loader \
                     {interpreter}, but {}; {why}.{}",
                    if reach.is_none() { "The container fails at start with" } else { "Running it fails with" },
                    explain_absence(cx, interpreter),
                    reach.map(|r| format!(" {r}")).unwrap_or_default()
                ),
                path: Some(shown),
                layer: Some(entry.layer as usize),
                remediation: format!("{fix}."),
            });
        }
        findings
    }
}
