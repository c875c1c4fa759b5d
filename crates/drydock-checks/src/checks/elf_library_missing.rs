//! `elf.library-missing`: a `DT_NEEDED` library the dynamic loader will not find in the image.
//! The program dies before `main` with "error while loading shared libraries: libfoo.so.1:
//! cannot open shared object file: No such file or directory" (glibc) or "Error loading shared
//! library libfoo.so.1: No such file or directory" (musl). Shared objects nothing links
//! (extension modules, plugins) fail the same way when a runtime loads them with `dlopen`.

use drydock_facts::Libc;

use crate::context::ProgramLoad;
use crate::loader::{Miss, Outcome, Rejection};
use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct LibraryMissing;

const ID: &str = "elf.library-missing";

/// The runtime that would load a shared object nothing links, told by its path; `dlopen` when
/// it cannot be told.
fn loaded_by(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    if path.contains("/site-packages/")
        || path.contains("/dist-packages/")
        || name.contains(".cpython-")
        || name.ends_with(".abi3.so")
    {
        "Python's import"
    } else if path.contains("/node_modules/") || name.ends_with(".node") {
        "Node.js's require"
    } else if path.contains("/security/pam_") {
        "PAM"
    } else if name.starts_with("libnss_") {
        "glibc's NSS"
    } else if path.contains("/jvm/") || path.contains("/jre/") {
        "the JVM's System.loadLibrary"
    } else {
        "dlopen"
    }
}

/// "/app/x needs libfoo.so.1, which needs libbar.so.2".
fn needs(outcome: &Outcome<'_>, object: usize, name: &str) -> String {
    let chain = outcome.chain(object);
    if chain.len() > 1 {
        format!(
            "{} needs {}, which needs {name}",
            chain[0],
            chain[1..].join(", which needs ")
        )
    } else {
        format!("{} needs {name}", chain[0])
    }
}

/// Where the search ended, in words: nowhere, or at the files the loader would not use.
fn search_end(miss: &Miss) -> String {
    let mut said = String::new();
    if miss.skipped.is_empty() && miss.stopped_at.is_none() {
        said.push_str(", and it is in none of the directories the loader searches.");
    } else {
        said.push('.');
    }
    if !miss.skipped.is_empty() {
        let skipped: Vec<String> = miss.skipped.iter().map(|r| r.describe()).collect();
        said.push_str(&format!(" The loader skips {}.", skipped.join(", ")));
    }
    if let Some(stop) = &miss.stopped_at {
        let musl_machine = matches!(stop.why, Rejection::WrongMachine(_));
        said.push_str(&format!(
            " The loader stops at {}{}.",
            stop.describe(),
            if musl_machine {
                ": musl does not check the machine, maps it and cannot run it"
            } else {
                " and gives up"
            }
        ));
    }
    said
}

fn fix(name: &str, hint: Option<&str>, has_ld_cache: bool, why: &mut String) -> String {
    match hint {
        Some(found) => {
            why.push_str(&format!(
                " It is at {found}, in a directory /etc/ld.so.conf lists, but {}.",
                if has_ld_cache {
                    "/etc/ld.so.cache does not list it"
                } else {
                    "the image has no /etc/ld.so.cache"
                }
            ));
            "Run `ldconfig` in the Dockerfile after installing the library (RUN ldconfig), or set LD_LIBRARY_PATH to its directory.".to_owned()
        }
        None => format!(
            "Install the package that ships {name} in the final stage (apt-get install / apk add), \
             COPY it from the build stage next to the program with a RUNPATH of $ORIGIN, or link the program statically."
        ),
    }
}

fn hint_of<'o>(outcome: &'o Outcome<'_>, miss: &Miss) -> Option<&'o str> {
    outcome
        .deps
        .get(miss.needer)?
        .iter()
        .find_map(|(n, t)| match t {
            crate::loader::Target::Missing { hint, .. } if *n == miss.name => hint.as_deref(),
            _ => None,
        })
}

impl LibraryMissing {
    fn program_findings(&self, cx: &ImageContext<'_>, program: &ProgramLoad<'_>) -> Vec<Finding> {
        let outcome = &program.outcome;
        let has_cache = cx.analysis().has_ld_cache;
        let mut findings = Vec::new();
        for miss in &outcome.misses {
            let needer = &outcome.objects[miss.needer].path;
            let words = miss.loader_words(outcome.flavour, needer);
            let error = if outcome.flavour == Libc::Musl {
                words
            } else {
                format!(
                    "{}: error while loading shared libraries: {words}",
                    program.path
                )
            };
            let mut why = search_end(miss);
            let remediation = fix(&miss.name, hint_of(outcome, miss), has_cache, &mut why);
            let (severity, reach) = cx.reach(program.node, self.severity());
            findings.push(Finding {
                program: Some(program.path.clone()),
                id: ID.into(),
                severity,
                title: "Shared library missing".into(),
                message: format!(
                    "{} \"{error}\": {}{why}{}",
                    if reach.is_none() {
                        "The container fails at start with"
                    } else {
                        "Running it fails with"
                    },
                    needs(outcome, miss.needer, &miss.name),
                    reach.map(|r| format!(" {r}")).unwrap_or_default()
                ),
                path: Some(program.path.clone()),
                layer: Some(cx.tree.entry(program.node).layer as usize),
                remediation,
            });
        }
        findings
    }

    /// A shared object nothing links: it breaks only what loads it, two levels below a
    /// program the entrypoint runs when a runtime that loads such files can be named (an
    /// extension module is imported by the application's code), and info for a plugin only
    /// an unknown `dlopen` would load (packages ship plugins whose libraries they leave
    /// optional, such as iproute2's `tc/q_atm.so` without libatm1).
    fn library_findings(&self, cx: &ImageContext<'_>, library: &ProgramLoad<'_>) -> Vec<Finding> {
        let outcome = &library.outcome;
        let has_cache = cx.analysis().has_ld_cache;
        let runtime = loaded_by(&library.path);
        let libc = if outcome.flavour == Libc::Musl {
            "musl"
        } else {
            "glibc"
        };
        let mut findings = Vec::new();
        for miss in &outcome.misses {
            let needer = &outcome.objects[miss.needer].path;
            // dlerror() is the loader's words without the program's prefix.
            let error = miss.loader_words(outcome.flavour, needer);
            let mut why = search_end(miss);
            let remediation = fix(&miss.name, hint_of(outcome, miss), has_cache, &mut why);
            findings.push(Finding {
                program: Some(library.path.clone()),
                id: ID.into(),
                severity: if runtime == "dlopen" {
                    Severity::Info
                } else {
                    self.severity().lowered().lowered()
                },
                title: "Shared library missing".into(),
                message: format!(
                    "Loading {} ({runtime}, in a {libc} process) fails with \"{error}\": {}{why} Nothing in the image \
                     links it, so this breaks only what loads it.",
                    library.path,
                    needs(outcome, miss.needer, &miss.name),
                ),
                path: Some(library.path.clone()),
                layer: Some(cx.tree.entry(library.node).layer as usize),
                remediation,
            });
        }
        findings
    }
}

impl Check for LibraryMissing {
    fn id(&self) -> &'static str {
        ID
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    fn summary(&self) -> &'static str {
        "A library a program or shared object needs (DT_NEEDED) is not where the dynamic loader looks"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let mut findings: Vec<Finding> = cx
            .analysis()
            .programs
            .iter()
            .flat_map(|p| self.program_findings(cx, p))
            .collect();
        for library in cx.unlinked_libraries() {
            findings.extend(self.library_findings(cx, library));
        }
        findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runtime_is_told_by_the_path() {
        assert_eq!(
            loaded_by(
                "/usr/lib/python3.11/site-packages/fastmath/_core.cpython-311-x86_64-linux-gnu.so"
            ),
            "Python's import"
        );
        assert_eq!(
            loaded_by("/app/node_modules/sharp/build/Release/sharp.node"),
            "Node.js's require"
        );
        assert_eq!(
            loaded_by("/usr/lib/x86_64-linux-gnu/security/pam_unix.so"),
            "PAM"
        );
        assert_eq!(loaded_by("/usr/lib/libplugin.so"), "dlopen");
    }
}
