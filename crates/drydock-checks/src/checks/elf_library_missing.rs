//! `elf.library-missing`: a `DT_NEEDED` library the dynamic loader will not find in the image.
//! The program dies before `main` with "error while loading shared libraries: libfoo.so.1:
//! cannot open shared object file: No such file or directory" (glibc) or "Error loading shared
//! library libfoo.so.1: No such file or directory" (musl).

use drydock_facts::Libc;

use crate::loader::Target;
use crate::{Check, Finding, ImageContext, Severity};

#[derive(Debug)]
pub struct LibraryMissing;

const ID: &str = "elf.library-missing";

impl Check for LibraryMissing {
    fn id(&self) -> &'static str {
        ID
    }

    fn severity(&self) -> Severity {
        Severity::Critical
    }

    fn summary(&self) -> &'static str {
        "A library a program needs (DT_NEEDED) is not where the dynamic loader looks"
    }

    fn run(&self, cx: &ImageContext<'_>) -> Vec<Finding> {
        let analysis = cx.analysis();
        let mut findings = Vec::new();
        for program in &analysis.programs {
            let outcome = &program.outcome;
            for (object, deps) in outcome.deps.iter().enumerate() {
                for (name, target) in deps {
                    let Target::Missing { skipped, hint } = target else {
                        continue;
                    };
                    let chain = outcome.chain(object);
                    let needs = if chain.len() > 1 {
                        format!(
                            "{} needs {}, which needs {name}",
                            chain[0],
                            chain[1..].join(", which needs ")
                        )
                    } else {
                        format!("{} needs {name}", chain[0])
                    };
                    let error = if outcome.flavour == Libc::Musl {
                        format!("Error loading shared library {name}: No such file or directory")
                    } else {
                        format!(
                            "error while loading shared libraries: {name}: cannot open shared object file: No such file or directory"
                        )
                    };
                    let mut why = String::new();
                    if !skipped.is_empty() {
                        why.push_str(&format!(
                            " The loader skips {}: wrong class or machine.",
                            skipped.join(", ")
                        ));
                    }
                    let fix = match hint {
                        Some(found) => {
                            why.push_str(&format!(
                                " It is at {found}, in a directory /etc/ld.so.conf lists, but {}.",
                                if analysis.has_ld_cache {
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
                    };
                    let (severity, reach) = cx.reach(program.node, self.severity());
                    findings.push(Finding {
                        program: Some(program.path.clone()),
                        id: ID.into(),
                        severity,
                        title: "Shared library missing".into(),
                        message: format!(
                            "{} \"{}: {error}\": {needs}, and it is in none of the directories the loader searches.{why}{}",
                            if reach.is_none() { "The container fails at start with" } else { "Running it fails with" },
                            program.path,
                            reach.map(|r| format!(" {r}")).unwrap_or_default()
                        ),
                        path: Some(program.path.clone()),
                        layer: Some(cx.tree.entry(program.node).layer as usize),
                        remediation: fix,
                    });
                }
            }
        }
        findings
    }
}
