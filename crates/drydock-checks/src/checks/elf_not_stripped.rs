//! `elf.not-stripped`: binaries that ship their symbol table or debug information, which the
//! program does not need at run time.

use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct NotStripped;

const ID: &str = "elf.not-stripped";
/// Symbol tables below this are not worth a finding.
const SMALL_SYMTAB: u64 = 64 * 1024;

fn human(bytes: u64) -> String {
    match bytes {
        0..1024 => format!("{bytes} B"),
        1024..1_048_576 => format!("{:.1} KiB", bytes as f64 / 1024.0),
        _ => format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    }
}

impl Check for NotStripped {
    fn id(&self) -> &'static str {
        ID
    }

    fn severity(&self) -> Severity {
        Severity::Low
    }

    fn summary(&self) -> &'static str {
        "A binary ships its symbol table or debug information"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (file, node, facts, _) in cx.elf_files() {
            let Some(sections) = &facts.sections else {
                continue;
            };
            // A small symbol table is often kept on purpose (Debian keeps libpthread's for
            // debuggers); debug information never is.
            if !(sections.debug_info
                || (sections.symtab && sections.strippable_bytes >= SMALL_SYMTAB))
            {
                continue;
            }
            let what = match (sections.symtab, sections.debug_info) {
                (true, true) => "a symbol table and debug information",
                (true, false) => "a symbol table",
                _ => "debug information",
            };
            let fix = if facts.go.is_some() {
                "Build with `go build -ldflags=\"-s -w\"` (or `-trimpath -ldflags=\"-s -w\"`)."
            } else {
                "Strip it in the build stage (`strip --strip-unneeded`, or `-s` when linking; for Rust, `strip = true` in the release profile)."
            };
            findings.push(Finding {
                program: None,
                id: ID.into(),
                severity: self.severity(),
                title: "Binary not stripped".into(),
                message: format!(
                    "{file} ships {what}; stripping it would save {} ({} bytes) of the image.",
                    human(sections.strippable_bytes),
                    sections.strippable_bytes
                ),
                path: Some(file),
                layer: Some(cx.tree.entry(node).layer as usize),
                remediation: fix.into(),
            });
        }
        findings
    }
}
