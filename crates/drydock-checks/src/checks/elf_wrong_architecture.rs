//! `elf.wrong-architecture`: a program built for another machine or class than the image's
//! platform. `execve` refuses it: "exec format error".

use drydock_facts::ElfClass;

use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct WrongArchitecture;

const ID: &str = "elf.wrong-architecture";

/// The ELF machine and class an OCI architecture runs.
fn expected(architecture: &str) -> Option<(u16, ElfClass)> {
    Some(match architecture {
        "amd64" => (62, ElfClass::Elf64),
        "arm64" => (183, ElfClass::Elf64),
        "arm" => (40, ElfClass::Elf32),
        "386" => (3, ElfClass::Elf32),
        "ppc64le" => (21, ElfClass::Elf64),
        "s390x" => (22, ElfClass::Elf64),
        "riscv64" => (243, ElfClass::Elf64),
        _ => return None,
    })
}

impl Check for WrongArchitecture {
    fn id(&self) -> &'static str {
        ID
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    fn summary(&self) -> &'static str {
        "A program is built for another CPU architecture than the image's platform"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let architecture = cx.platform.split('/').nth(1).unwrap_or("");
        let Some((machine, class)) = expected(architecture) else {
            return Vec::new();
        };
        let mut findings = Vec::new();
        for (file, node, facts, mode) in cx.elf_files() {
            if mode & 0o111 == 0
                || !facts.is_program()
                || (facts.machine == machine && facts.class == class)
            {
                continue;
            }
            let (severity, reach) = cx.reach(node, self.severity());
            let bits = if facts.class == ElfClass::Elf64 {
                "64-bit"
            } else {
                "32-bit"
            };
            findings.push(Finding {
                program: None,
                id: ID.into(),
                severity,
                title: "Wrong architecture".into(),
                message: format!(
                    "{} \"exec {file}: exec format error\": it is a {bits} {} program, but the image is for {}.{}",
                    if reach.is_none() { "The container fails at start with" } else { "Running it fails with" },
                    facts.machine_name(),
                    cx.platform,
                    reach.map(|r| format!(" {r}")).unwrap_or_default()
                ),
                path: Some(file),
                layer: Some(cx.tree.entry(node).layer as usize),
                remediation: format!(
                    "Build the program for {architecture} (GOARCH={architecture} for Go, or `docker buildx build --platform {}` \
                     with a cross-compiling build stage), or set the image's platform to the binary's.",
                    cx.platform
                ),
            });
        }
        findings
    }
}
