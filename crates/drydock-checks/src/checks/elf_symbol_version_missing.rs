//! `elf.symbol-version-missing`: a symbol version a program needs (`DT_VERNEED`, such as
//! `GLIBC_2.34` from `libc.so.6`) that the library the loader finds does not define. The
//! program dies before `main`: "version `GLIBC_2.34' not found (required by /app/server)".

use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct SymbolVersionMissing;

const ID: &str = "elf.symbol-version-missing";

/// Orders `GLIBC_2.9` before `GLIBC_2.34`.
fn version_key(name: &str) -> (String, Vec<u64>) {
    let (prefix, numbers) = name.split_once('_').unwrap_or((name, ""));
    (
        prefix.to_owned(),
        numbers.split('.').map(|n| n.parse().unwrap_or(0)).collect(),
    )
}

impl Check for SymbolVersionMissing {
    fn id(&self) -> &'static str {
        ID
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    fn summary(&self) -> &'static str {
        "A symbol version a program needs (e.g. GLIBC_2.34) is not defined by the library it loads"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let analysis = cx.analysis();
        let mut findings = Vec::new();
        for program in &analysis.programs {
            let outcome = &program.outcome;
            for (index, object) in outcome.objects.iter().enumerate() {
                for need in &object.facts.version_needs {
                    let Some(library) = outcome.dependency(index, &need.file).or_else(|| {
                        // The interpreter is loaded without being anyone's DT_NEEDED.
                        outcome
                            .objects
                            .iter()
                            .position(|o| o.facts.soname.as_deref() == Some(need.file.as_str()))
                    }) else {
                        continue;
                    };
                    let defined = &outcome.objects[library].facts.version_defs;
                    if defined.is_empty() {
                        // An unversioned library only draws a warning from the loader.
                        continue;
                    }
                    let missing: Vec<&str> = need
                        .versions
                        .iter()
                        .filter(|v| !v.weak && !defined.contains(&v.name))
                        .map(|v| v.name.as_str())
                        .collect();
                    let Some(worst) = missing.iter().max_by_key(|v| version_key(v)) else {
                        continue;
                    };
                    let family = version_key(worst).0;
                    let newest = defined
                        .iter()
                        .filter(|d| version_key(d).0 == family)
                        .max_by_key(|d| version_key(d));
                    let library_path = &outcome.objects[library].path;
                    let (severity, reach) = cx.reach(program.node, self.severity());
                    let required_by = &object.path;
                    findings.push(Finding {
                        program: Some(program.path.clone()),
                        id: ID.into(),
                        severity,
                        title: "Symbol version missing".into(),
                        message: format!(
                            "{} \"{library_path}: version `{worst}' not found (required by {required_by})\": \
                             {required_by} needs {} from {}, which the image's {library_path} does not define{}.{}",
                            if reach.is_none() { "The container fails at start with" } else { "Running it fails with" },
                            missing.join(", "),
                            need.file,
                            newest.map(|n| format!(" (the newest it has is {n})")).unwrap_or_default(),
                            reach.map(|r| format!(" {r}")).unwrap_or_default()
                        ),
                        path: Some(program.path.clone()),
                        layer: Some(cx.tree.entry(program.node).layer as usize),
                        remediation: format!(
                            "Build the program on a base at least as old as the final stage (the build stage's {family} is newer \
                             than the image's), or use a final stage with a {family} that defines {worst} (a newer base image)."
                        ),
                    });
                }
            }
        }
        findings
    }
}
