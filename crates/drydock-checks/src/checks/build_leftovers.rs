//! `build.toolchain` and `build.source`: what a build stage left in the final image.

use std::collections::BTreeMap;

use drydock_layers::{FileKind, path};

use crate::{Check, Finding, ImageContext, Severity};

/// Toolchains, SDKs and caches: (what, path prefix, or file name anywhere).
pub(crate) const TOOLCHAIN_DIRS: &[(&str, &str)] = &[
    ("the Go distribution", "/usr/local/go/"),
    ("the Go module cache", "/root/go/pkg/mod/"),
    ("the Go module cache", "/go/pkg/mod/"),
    ("the Go build cache", "/root/.cache/go-build/"),
    ("the Cargo registry", "/root/.cargo/registry/"),
    ("the Rust toolchain", "/root/.rustup/"),
    ("the Rust toolchain", "/usr/local/rustup/"),
    ("the Cargo registry", "/usr/local/cargo/registry/"),
    ("the pip cache", "/root/.cache/pip/"),
    ("apt's package lists", "/var/lib/apt/lists/"),
    ("apt's downloaded packages", "/var/cache/apt/archives/"),
    ("apk's cache", "/var/cache/apk/"),
    ("GCC", "/usr/lib/gcc/"),
];
pub(crate) const TOOLCHAIN_BINARIES: &[&str] = &[
    "go", "gcc", "cc1", "cc1plus", "rustc", "cargo", "ld.bfd", "ld.gold",
];
/// Caches found anywhere in the tree: (what, path component sequence).
pub(crate) const TOOLCHAIN_ANYWHERE: &[(&str, &str)] =
    &[("the node_modules build cache", "/node_modules/.cache/")];
const MEDIUM_BYTES: u64 = 100 << 20;
/// Package directories whose sources and test data belong to the language runtime.
pub(crate) const PACKAGE_DIRS: &[&str] = &[
    "/usr/",
    "/lib/",
    "/etc/",
    "/var/lib/",
    "/opt/conda/",
    "/root/go/pkg/mod/",
    "/go/pkg/mod/",
    "/root/.cargo/",
    "/root/.rustup/",
];
pub(crate) const SOURCE_EXTENSIONS: &[&str] = &[".go", ".rs", ".c", ".cc", ".cpp", ".java", ".ts"];
pub(crate) const SOURCE_NAMES: &[&str] = &[
    "go.mod",
    "go.sum",
    "Cargo.toml",
    "Cargo.lock",
    "Dockerfile",
    "Makefile",
    "CMakeLists.txt",
];

/// The toolchain or cache whose files are under `dir`, a directory path as shown with a final
/// `/` (`/usr/local/go/src/`), as bytes. The rules are ASCII and end in `/`, so they match the
/// raw bytes exactly when they match the lossily decoded path (a replacement character is
/// never ASCII, and an ASCII byte always stays itself).
pub(crate) fn toolchain_place(dir: &[u8]) -> Option<&'static str> {
    TOOLCHAIN_DIRS
        .iter()
        .find(|(_, prefix)| dir.starts_with(prefix.as_bytes()))
        .or_else(|| {
            TOOLCHAIN_ANYWHERE.iter().find(|(_, part)| {
                let part = part.as_bytes();
                dir.windows(part.len())
                    .any(|w| w[0] == part[0] && w == part)
            })
        })
        .map(|(what, _)| *what)
}

/// Whether the entries under `dir` (as [`toolchain_place`] takes it) belong to a package
/// directory, whose sources are the language runtime's.
pub(crate) fn package_place(dir: &[u8]) -> bool {
    PACKAGE_DIRS.iter().any(|d| dir.starts_with(d.as_bytes()))
}

/// A compiler's name, when it is an executable ELF file. Names are compared as bytes: an
/// ASCII name matches only the same bytes, whatever the lossy decoding does to others.
pub(crate) fn toolchain_binary(name: &[u8]) -> bool {
    TOOLCHAIN_BINARIES.iter().any(|b| b.as_bytes() == name)
}

/// A source or build file's name.
pub(crate) fn source_file(name: &[u8]) -> bool {
    SOURCE_NAMES.iter().any(|n| n.as_bytes() == name)
        || SOURCE_EXTENSIONS
            .iter()
            .any(|e| name.ends_with(e.as_bytes()))
}

fn human(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

#[derive(Debug)]
pub struct Toolchain;

impl Check for Toolchain {
    fn id(&self) -> &'static str {
        "build.toolchain"
    }

    fn severity(&self) -> Severity {
        Severity::Low
    }

    fn summary(&self) -> &'static str {
        "Compilers, SDKs and package caches in the final image"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        // what -> (bytes, first path, layer of the largest file)
        let mut found: BTreeMap<&str, (u64, String, usize, u64)> = BTreeMap::new();
        for (raw, node, what) in cx.toolchain_files() {
            let entry = cx.tree.entry(node);
            let slot = found
                .entry(what)
                .or_insert_with(|| (0, path::display(raw), entry.layer as usize, 0));
            slot.0 += entry.meta.size;
            if entry.meta.size > slot.3 {
                slot.2 = entry.layer as usize;
                slot.3 = entry.meta.size;
            }
        }
        found
            .into_iter()
            .filter(|(_, (bytes, ..))| *bytes > 0)
            .map(|(what, (bytes, first, layer, _))| {
                let made_by = cx.layers.get(layer).and_then(|l| l.created_by.clone()).unwrap_or_default();
                Finding {
                    program: None,
                    id: self.id().into(),
                    severity: if bytes >= MEDIUM_BYTES { Severity::Medium } else { self.severity() },
                    title: "Build toolchain in the image".into(),
                    message: format!(
                        "The final image ships {what} ({}, e.g. {first}), which the program does not need at run time; \
                         layer {layer}{} added it.",
                        human(bytes),
                        if made_by.is_empty() { String::new() } else { format!(" ({})", made_by.trim()) }
                    ),
                    path: Some(first),
                    layer: Some(layer),
                    remediation: "Use a multi-stage build: compile in a builder stage and start the final stage FROM scratch, \
                                  distroless or a slim base, with COPY --from=build /out/app /app; clean package caches in the \
                                  RUN that fills them."
                        .into(),
                }
            })
            .collect()
    }
}

#[derive(Debug)]
pub struct Source;

impl Check for Source {
    fn id(&self) -> &'static str {
        "build.source"
    }

    fn severity(&self) -> Severity {
        Severity::Low
    }

    fn summary(&self) -> &'static str {
        "Source code, build files and VCS metadata next to the program"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let mut by_dir: BTreeMap<String, (usize, u64, usize, Vec<String>)> = BTreeMap::new();
        // Source files and .git directories outside package directories, in tree order.
        for (raw, node) in cx.source_entries() {
            let entry = cx.tree.entry(node);
            let shown = path::display(raw);
            let is_git = entry.kind == FileKind::Dir;
            // Group by the top directory (/app, /src, /workspace).
            let top = shown
                .split('/')
                .nth(1)
                .map(|t| format!("/{t}"))
                .unwrap_or_else(|| "/".into());
            let slot = by_dir
                .entry(top)
                .or_insert((0, 0, entry.layer as usize, Vec::new()));
            slot.0 += 1;
            slot.1 += if is_git {
                cx.tree.bytes_under(raw)
            } else {
                entry.meta.size
            };
            if slot.3.len() < 3 {
                slot.3.push(shown);
            }
        }
        by_dir
            .into_iter()
            .map(|(dir, (count, bytes, layer, examples))| Finding {
                program: None,
                id: self.id().into(),
                severity: self.severity(),
                title: "Sources in the image".into(),
                message: format!(
                    "{dir} holds {count} source or build files and VCS directories ({:.1} KiB), e.g. {}: a `COPY . .` without a \
                     .dockerignore, or a single-stage build.",
                    bytes as f64 / 1024.0,
                    examples.join(", ")
                ),
                path: Some(dir),
                layer: Some(layer),
                remediation: "Add a .dockerignore (.git, *.go, Dockerfile, ...) and COPY only the built program into the final \
                              stage (COPY --from=build /out/app /app)."
                    .into(),
            })
            .collect()
    }
}
