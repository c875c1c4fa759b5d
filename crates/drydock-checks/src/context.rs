use std::collections::HashSet;
use std::sync::OnceLock;

use drydock_facts::{ElfFacts, ElfKind, FileFacts, Libc};
use drydock_layers::{EfficiencySummary, FileKind, NodeId, Tree, path};

use crate::finding::Severity;
use crate::loader::{Loader, Outcome};

/// The image's final filesystem with the facts read from its files.
pub type ImageTree = Tree<FileFacts>;

/// The search path runtimes use when the config sets none (containerd, docker, podman).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the image config tells the runtime (the parts checks use).
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// Every history entry's `created_by`, empty layers included.
    pub history: Vec<String>,
}

impl RuntimeConfig {
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
    }

    /// The command the runtime starts: `Entrypoint` followed by `Cmd`.
    pub fn argv(&self) -> Vec<&str> {
        self.entrypoint
            .iter()
            .chain(&self.cmd)
            .map(String::as_str)
            .collect()
    }
}

/// A layer as findings cite it.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    pub index: usize,
    pub digest: Option<String>,
    pub created_by: Option<String>,
}

/// A credential found in a layer, whether or not a later layer deleted it.
#[derive(Debug, Clone)]
pub struct LayerSecret {
    pub layer: usize,
    /// The path, displayed (`/root/.aws/credentials`).
    pub path: String,
    pub kind: String,
    pub detail: String,
}

/// A dynamically linked program and what the loader makes of it.
#[derive(Debug)]
pub struct ProgramLoad<'a> {
    pub path: String,
    pub node: NodeId,
    pub outcome: Outcome<'a>,
}

/// The C library of the processes that could `dlopen` `library`: the one its own needs name
/// (`libc.musl-*`), else the one of the image's programs of its class and machine (glibc when
/// there are both and it needs `libc.so.6`). `None` when no such program exists.
fn library_flavour(library: &ElfFacts, programs: &[ProgramLoad<'_>]) -> Option<Libc> {
    if library.needed.iter().any(|n| n.starts_with("libc.musl-")) {
        return Some(Libc::Musl);
    }
    let of_its_kind = |flavour: Libc| {
        programs.iter().any(|p| {
            let facts = p.outcome.objects[0].facts;
            facts.class == library.class
                && facts.machine == library.machine
                && p.outcome.flavour == flavour
        })
    };
    match (of_its_kind(Libc::Glibc), of_its_kind(Libc::Musl)) {
        (true, false) => Some(Libc::Glibc),
        (false, true) => Some(Libc::Musl),
        (true, true) if library.needed.iter().any(|n| n == "libc.so.6") => Some(Libc::Glibc),
        (true, true) => Some(Libc::Musl),
        (false, false) => None,
    }
}

/// Work several checks share, done once per image.
#[derive(Debug)]
pub struct Analysis<'a> {
    /// The program the runtime starts, and its path.
    pub entrypoint: Option<(String, NodeId)>,
    /// Every dynamically linked program whose interpreter is present, loaded.
    pub programs: Vec<ProgramLoad<'a>>,
    /// Nodes the entrypoint loads (itself, its interpreter and libraries).
    pub reached: Vec<NodeId>,
    pub has_ld_cache: bool,
}

/// Everything a check may look at.
#[derive(Debug)]
pub struct ImageContext<'a> {
    pub tree: &'a ImageTree,
    pub config: &'a RuntimeConfig,
    /// `os/arch[/variant]` from the image config.
    pub platform: &'a str,
    pub layers: &'a [LayerInfo],
    /// dive-style wasted bytes and efficiency, when the layers were measured.
    pub efficiency: Option<&'a EfficiencySummary>,
    /// Credentials found in any layer.
    pub secrets: &'a [LayerSecret],
    entries: OnceLock<Vec<(Vec<u8>, NodeId)>>,
    analysis: OnceLock<Analysis<'a>>,
    libraries: OnceLock<Vec<ProgramLoad<'a>>>,
}

impl<'a> ImageContext<'a> {
    pub fn new(
        tree: &'a ImageTree,
        config: &'a RuntimeConfig,
        platform: &'a str,
        layers: &'a [LayerInfo],
    ) -> Self {
        Self {
            tree,
            config,
            platform,
            layers,
            efficiency: None,
            secrets: &[],
            entries: OnceLock::new(),
            analysis: OnceLock::new(),
            libraries: OnceLock::new(),
        }
    }

    pub fn with_secrets(mut self, secrets: &'a [LayerSecret]) -> Self {
        self.secrets = secrets;
        self
    }

    pub fn with_efficiency(mut self, efficiency: &'a EfficiencySummary) -> Self {
        self.efficiency = Some(efficiency);
        self
    }

    /// Every regular file with ELF facts: (path, node, facts, mode). Test data inside source
    /// trees (a `testdata` directory, as Go's standard library ships foreign and broken ELF
    /// files there on purpose) is left out: nothing runs it.
    pub fn elf_files(&self) -> impl Iterator<Item = (String, NodeId, &'a ElfFacts, u32)> + '_ {
        let tree = self.tree;
        self.entries().iter().filter_map(move |(p, id)| {
            if p.split(|&b| b == b'/').any(|c| c == b"testdata") {
                return None;
            }
            let entry = tree.entry(*id);
            if entry.kind != FileKind::File {
                return None;
            }
            let facts = entry.fact?.elf()?;
            Some((path::display(p), *id, facts, entry.meta.mode))
        })
    }

    /// Every entry of the final filesystem (normalised path, node), listed once per scan for
    /// all the checks that walk it.
    pub fn entries(&self) -> &[(Vec<u8>, NodeId)] {
        self.entries.get_or_init(|| self.tree.entries())
    }

    pub fn analysis(&self) -> &Analysis<'a> {
        self.analysis.get_or_init(|| {
            let loader = Loader::new(self.tree, &self.config.env);
            let entrypoint = self.entrypoint_program();
            let mut programs = Vec::new();
            for (file, node, facts, mode) in self.elf_files() {
                let interpreter_present = facts.interpreter.as_deref().is_some_and(|i| {
                    self.tree
                        .resolve(i.as_bytes(), true)
                        .is_ok_and(|n| self.tree.entry(n).kind == FileKind::File)
                });
                if mode & 0o111 == 0
                    || !facts.is_program()
                    || !facts.dynamic
                    || !interpreter_present
                {
                    continue;
                }
                let outcome = loader.load(&file, facts, node);
                programs.push(ProgramLoad {
                    path: file,
                    node,
                    outcome,
                });
            }
            let reached = entrypoint
                .as_ref()
                .and_then(|(_, node)| programs.iter().find(|p| p.node == *node))
                .map(|p| p.outcome.objects.iter().map(|o| o.node).collect())
                .unwrap_or_else(|| entrypoint.iter().map(|(_, n)| *n).collect());
            Analysis {
                entrypoint,
                programs,
                reached,
                has_ld_cache: loader.has_cache(),
            }
        })
    }

    /// Shared objects no program in the image loads (extension modules, plugins, libraries
    /// only `dlopen` reaches), each loaded as `dlopen` in a process of the image's C library
    /// would load it. Objects no dynamic program of their class and machine could load are
    /// left out: nothing in the image can `dlopen` them.
    pub fn unlinked_libraries(&self) -> &[ProgramLoad<'a>] {
        self.libraries.get_or_init(|| {
            let analysis = self.analysis();
            let linked: HashSet<NodeId> = analysis
                .programs
                .iter()
                .flat_map(|p| p.outcome.objects.iter().map(|o| o.node))
                .collect();
            // A library a program needs and cannot find is that program's finding already.
            let wanted: HashSet<&str> = analysis
                .programs
                .iter()
                .flat_map(|p| p.outcome.misses.iter().map(|m| m.name.as_str()))
                .collect();
            let loader = Loader::new(self.tree, &self.config.env);
            let mut libraries = Vec::new();
            for (file, node, facts, _) in self.elf_files() {
                let name = file.rsplit('/').next().unwrap_or(&file);
                if facts.kind != ElfKind::Shared
                    || facts.is_program()
                    || facts.malformed.is_some()
                    || linked.contains(&node)
                    || wanted.contains(name)
                    || facts.soname.as_deref().is_some_and(|s| wanted.contains(s))
                {
                    continue;
                }
                let Some(flavour) = library_flavour(facts, &analysis.programs) else {
                    continue;
                };
                let outcome = loader.load_library(&file, facts, node, flavour);
                libraries.push(ProgramLoad {
                    path: file,
                    node,
                    outcome,
                });
            }
            libraries
        })
    }

    /// The file the runtime executes: `argv[0]` of `Entrypoint` + `Cmd`, found as the runtime
    /// finds it (relative to `WorkingDir`, or through `PATH`).
    pub fn entrypoint_program(&self) -> Option<(String, NodeId)> {
        let argv0 = *self.config.argv().first()?;
        let (file, node) = crate::runtime::find_program(self, argv0)?;
        let real = self
            .tree
            .canonical(file.as_bytes())
            .map(|p| path::display(&p))
            .unwrap_or(file);
        Some((real, node))
    }

    /// The severity of a finding about `node`: as given when the entrypoint reaches it, one
    /// level lower otherwise, with the reason to add to the message.
    pub fn reach(&self, node: NodeId, severity: Severity) -> (Severity, Option<String>) {
        let analysis = self.analysis();
        if analysis.reached.contains(&node) {
            return (severity, None);
        }
        let why = match &analysis.entrypoint {
            Some((program, _)) => format!("The image's entrypoint ({program}) does not load it, so this breaks only what runs it."),
            None => "The image has no entrypoint program to reach it from, so this breaks only what runs it.".to_owned(),
        };
        (severity.lowered(), Some(why))
    }
}
