//! `elf.unloadable`: an executable ELF file the kernel refuses before anything runs: a header
//! it cannot read, a file type that is not a program, a program header table of the wrong
//! entry size, empty, over 64 KiB or past the end of the file, a `PT_INTERP` that is too short,
//! too long, past the end of the file or not NUL-terminated. `execve` returns `ENOEXEC` ("exec
//! format error") or `EIO` ("input/output error"); the facts say which and why.

use drydock_layers::path;

use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct Unloadable;

const ID: &str = "elf.unloadable";

impl Check for Unloadable {
    fn id(&self) -> &'static str {
        ID
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    fn summary(&self) -> &'static str {
        "An executable ELF file the kernel refuses to load (exec format error)"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let mut findings = Vec::new();
        for (raw_path, id) in cx.elf_entries() {
            let entry = cx.tree.entry(id);
            // Only what `execve` would be asked to run: a regular file with an execute bit.
            if entry.meta.mode & 0o111 == 0 {
                continue;
            }
            let Some(elf) = entry.fact.and_then(|f| f.elf()) else {
                continue;
            };
            let Some(refusal) = &elf.exec_refusal else {
                continue;
            };
            // An object file or core dump with an execute bit is a leftover, not a program
            // anybody runs, unless it is the entrypoint.
            let is_entrypoint = cx
                .entrypoint_program()
                .is_some_and(|(_, program)| program == id);
            if !elf.is_program() && !is_entrypoint && elf.malformed.is_none() {
                continue;
            }
            let shown = path::display(raw_path);
            let (severity, reach) = cx.reach(id, self.severity());
            findings.push(Finding {
                program: Some(shown.clone()),
                id: ID.into(),
                severity,
                title: "ELF file the kernel cannot load".into(),
                message: format!(
                    "{} \"exec {shown}: {}\": the kernel refuses it because {}.{}",
                    if reach.is_none() {
                        "The container fails at start with"
                    } else {
                        "Running it fails with"
                    },
                    refusal.error,
                    refusal.reason,
                    reach.map(|r| format!(" {r}")).unwrap_or_default()
                ),
                path: Some(shown),
                layer: Some(entry.layer as usize),
                remediation: "Rebuild the program and copy it whole: a truncated COPY, a file \
                              damaged on its way into the image, or an object file or debug-only \
                              file (objcopy --only-keep-debug) put where the program belongs \
                              cannot be executed"
                    .into(),
            });
        }
        findings
    }
}
