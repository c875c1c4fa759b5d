use std::collections::HashSet;
use std::sync::OnceLock;

use drydock_facts::{ElfFacts, ElfKind, FileFacts, Libc};
use drydock_layers::{EfficiencySummary, FileKind, NodeId, Tree, path};

use crate::checks::build_leftovers;
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
    index: OnceLock<EntryIndex>,
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
            index: OnceLock::new(),
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
        let index = self.index();
        index
            .elf
            .iter()
            .filter(|e| !e.testdata)
            .filter_map(move |e| {
                let entry = tree.entry(e.node);
                let facts = entry.fact?.elf()?;
                Some((
                    path::display(index.path(e.path)),
                    e.node,
                    facts,
                    entry.meta.mode,
                ))
            })
    }

    /// Every regular file with ELF facts, test data included: (normalised path, node).
    pub(crate) fn elf_entries(&self) -> impl Iterator<Item = (&[u8], NodeId)> + '_ {
        let index = self.index();
        index.elf.iter().map(|e| (index.path(e.path), e.node))
    }

    /// Regular files that are setuid, setgid (with group execute) or carry file capabilities.
    pub(crate) fn privileged_files(&self) -> impl Iterator<Item = (&[u8], NodeId)> + '_ {
        self.index().listed(&self.index().privileged)
    }

    /// Entries but directories named like a C library or its loader (`ld-musl-*`,
    /// `ld-linux*`, `libc.so.6`).
    pub(crate) fn libc_entries(&self) -> impl Iterator<Item = (&[u8], NodeId)> + '_ {
        self.index().listed(&self.index().libc)
    }

    /// Regular files `build.toolchain` counts, with what they are part of.
    pub(crate) fn toolchain_files(
        &self,
    ) -> impl Iterator<Item = (&[u8], NodeId, &'static str)> + '_ {
        let index = self.index();
        index
            .toolchain
            .iter()
            .map(|(span, node, what)| (index.path(*span), *node, *what))
    }

    /// Source files and `.git` directories outside package directories, for `build.source`.
    pub(crate) fn source_entries(&self) -> impl Iterator<Item = (&[u8], NodeId)> + '_ {
        self.index().listed(&self.index().sources)
    }

    /// The entries the checks that would otherwise walk every entry care about, listed in one
    /// pass over the tree per scan.
    fn index(&self) -> &EntryIndex {
        self.index.get_or_init(|| EntryIndex::build(self.tree))
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

/// Where a listed entry's normalised path lies in [`EntryIndex::paths`].
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
}

/// A regular file with ELF facts.
#[derive(Debug)]
struct ElfEntry {
    path: Span,
    node: NodeId,
    /// A component of its path is `testdata`.
    testdata: bool,
}

/// The entries of the final filesystem that per-entry checks look at, found in one walk of
/// the tree, in its order (depth first, names in byte order), each list in a category of its
/// own. Only the paths of listed entries are kept, all in one arena: a check visits the few
/// entries it can care about, and no path is kept for the others.
#[derive(Debug, Default)]
struct EntryIndex {
    paths: Vec<u8>,
    elf: Vec<ElfEntry>,
    privileged: Vec<(Span, NodeId)>,
    libc: Vec<(Span, NodeId)>,
    toolchain: Vec<(Span, NodeId, &'static str)>,
    sources: Vec<(Span, NodeId)>,
}

/// What a directory's path says about every entry directly in it.
#[derive(Debug, Clone, Copy)]
struct Place {
    /// A component of the directory's path is `testdata`.
    testdata: bool,
    /// The toolchain or cache the directory is in (`build.toolchain`).
    toolchain: Option<&'static str>,
    /// The directory is in a package directory (`build.source` leaves it alone).
    package: bool,
}

impl Place {
    /// The place of the entries in the directory at `dir` (normalised; the root is empty).
    /// The rules of `build.toolchain` and `build.source` match a shown path against prefixes
    /// and infixes that end in `/`; an entry's name holds no `/`, so they match the entry
    /// exactly when they match its directory's path between a leading and a final `/`.
    /// `scratch` is a buffer to spell that path in.
    fn of(dir: &[u8], testdata: bool, scratch: &mut Vec<u8>) -> Self {
        scratch.clear();
        scratch.push(b'/');
        if !dir.is_empty() {
            scratch.extend_from_slice(dir);
            scratch.push(b'/');
        }
        Self {
            testdata,
            toolchain: build_leftovers::toolchain_place(scratch),
            package: build_leftovers::package_place(scratch),
        }
    }
}

impl EntryIndex {
    fn path(&self, span: Span) -> &[u8] {
        &self.paths[span.start..span.end]
    }

    fn listed<'s>(
        &'s self,
        list: &'s [(Span, NodeId)],
    ) -> impl Iterator<Item = (&'s [u8], NodeId)> + 's {
        list.iter().map(|(span, node)| (self.path(*span), *node))
    }

    /// The entry's path in the arena, stored once whatever the lists it is in.
    fn keep(&mut self, path: &[u8], span: &mut Option<Span>) -> Span {
        *span.get_or_insert_with(|| {
            let start = self.paths.len();
            self.paths.extend_from_slice(path);
            Span {
                start,
                end: self.paths.len(),
            }
        })
    }

    /// Walks the tree in whatever order its directories hold their children (no sort per
    /// directory), then puts each list in the tree's order: few entries are listed.
    fn build(tree: &ImageTree) -> Self {
        struct Dir<I> {
            children: I,
            /// The length of the directory's path.
            len: usize,
            place: Place,
        }
        let mut index = Self::default();
        let mut path: Vec<u8> = Vec::new();
        let mut scratch: Vec<u8> = Vec::new();
        // The root itself is a directory no list wants.
        let mut stack = vec![Dir {
            children: tree.children_unsorted(tree.root()),
            len: 0,
            place: Place::of(b"", false, &mut scratch),
        }];
        while let Some(dir) = stack.last_mut() {
            let Some((name, node)) = dir.children.next() else {
                stack.pop();
                continue;
            };
            let place = dir.place;
            path.truncate(dir.len);
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(name);
            let entry = tree.entry(node);
            let testdata = place.testdata || name == b"testdata";
            let mut span = None;
            match entry.kind {
                FileKind::File => {
                    let elf = entry.fact.and_then(|f| f.elf()).is_some();
                    let mode = entry.meta.mode;
                    if elf {
                        let path = index.keep(&path, &mut span);
                        index.elf.push(ElfEntry {
                            path,
                            node,
                            testdata,
                        });
                    }
                    let setuid = mode & 0o4000 != 0;
                    let setgid = mode & 0o2000 != 0 && mode & 0o010 != 0;
                    if setuid || setgid || entry.meta.capability.is_some() {
                        let path = index.keep(&path, &mut span);
                        index.privileged.push((path, node));
                    }
                    let toolchain = place.toolchain.or_else(|| {
                        (elf && mode & 0o111 != 0 && build_leftovers::toolchain_binary(name))
                            .then_some("compilers")
                    });
                    if let Some(what) = toolchain {
                        let path = index.keep(&path, &mut span);
                        index.toolchain.push((path, node, what));
                    }
                    if !place.package && build_leftovers::source_file(name) {
                        let path = index.keep(&path, &mut span);
                        index.sources.push((path, node));
                    }
                }
                FileKind::Dir => {
                    if !place.package && name == b".git" {
                        let path = index.keep(&path, &mut span);
                        index.sources.push((path, node));
                    }
                    stack.push(Dir {
                        children: tree.children_unsorted(node),
                        len: path.len(),
                        place: Place::of(&path, testdata, &mut scratch),
                    });
                    continue;
                }
                _ => {}
            }
            if name.starts_with(b"ld-musl-")
                || name.starts_with(b"ld-linux")
                || name == b"libc.so.6"
            {
                let path = index.keep(&path, &mut span);
                index.libc.push((path, node));
            }
        }
        index.sort();
        index
    }

    /// Puts every list in the order of a walk of the tree, depth first with names in byte
    /// order: the order of paths compared component by component.
    fn sort(&mut self) {
        let paths = &self.paths;
        let key = |span: &Span| paths[span.start..span.end].split(|&b| b == b'/');
        let order = |a: &Span, b: &Span| key(a).cmp(key(b));
        self.elf.sort_unstable_by(|a, b| order(&a.path, &b.path));
        self.privileged.sort_unstable_by(|a, b| order(&a.0, &b.0));
        self.libc.sort_unstable_by(|a, b| order(&a.0, &b.0));
        self.toolchain.sort_unstable_by(|a, b| order(&a.0, &b.0));
        self.sources.sort_unstable_by(|a, b| order(&a.0, &b.0));
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use drydock_facts::elf_facts;
    use drydock_layers::{Change, EntryMeta};

    use super::*;
    use crate::checks::build_leftovers::{
        PACKAGE_DIRS, SOURCE_EXTENSIONS, SOURCE_NAMES, TOOLCHAIN_ANYWHERE, TOOLCHAIN_BINARIES,
        TOOLCHAIN_DIRS,
    };

    /// A small deterministic generator (xorshift), enough to vary trees.
    struct Random(u64);

    impl Random {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    const NAMES: &[&[u8]] = &[
        b"usr",
        b"local",
        b"go",
        b"root",
        b".cache",
        b"go-build",
        b"pip",
        b"node_modules",
        b"testdata",
        b"lib",
        b"etc",
        b"var",
        b"apt",
        b"lists",
        b"pkg",
        b"mod",
        b"opt",
        b"conda",
        b".cargo",
        b"registry",
        b"app",
        b"src",
        b".git",
        b"main.go",
        b"lib.rs",
        b"Makefile",
        b"Dockerfile",
        b"gcc",
        b"cc1",
        b"libc.so.6",
        b"ld-musl-x86_64.so.1",
        b"ld-linux-x86-64.so.2",
        b"x\xffy.go",
        b"caf\xc3\xa9",
        b"\xfe",
        b"a-b",
        b"a",
        b"b.c",
        b"x.cc",
        b".go",
        b"a.b.rs",
        b"go.mod",
        b"main.cpp",
        b"ld.gold",
    ];

    /// Directories the rules name, to start paths in.
    const PLACES: &[&[u8]] = &[
        b"usr/local/go",
        b"usr/local",
        b"root/.cache/go-build",
        b"root/.cache",
        b"app/node_modules/.cache",
        b"node_modules/.cache",
        b"node_modules",
        b"usr/lib/gcc",
        b"var/lib/apt/lists",
        b"root/go/pkg/mod",
        b"go/pkg",
        b"opt/conda",
        b"app/.git",
        b"app/x\xff/testdata",
    ];

    /// A random tree of the names above: files (some ELF, some setuid, setgid or with
    /// capabilities), directories and symlinks.
    pub(crate) fn random_tree(seed: u64) -> ImageTree {
        let mut random = Random(seed);
        let mut tree = ImageTree::new();
        for _ in 0..600 {
            let depth = 1 + random.below(5);
            let mut parts: Vec<&[u8]> = Vec::new();
            if random.below(2) == 0 {
                parts.push(PLACES[random.below(PLACES.len())]);
            }
            parts.extend((0..depth).map(|_| NAMES[random.below(NAMES.len())]));
            let path = parts.join(&b'/');
            let kind = [
                FileKind::File,
                FileKind::File,
                FileKind::Dir,
                FileKind::Symlink,
            ][random.below(4)];
            let meta = EntryMeta {
                mode: [0o644, 0o755, 0o4755, 0o2755, 0o2745, 0o600][random.below(6)],
                size: random.below(5000) as u64,
                capability: (random.below(8) == 0).then(|| vec![1, 2, 3].into_boxed_slice()),
                ..EntryMeta::default()
            };
            let fact = (kind == FileKind::File && random.below(2) == 0)
                .then(|| FileFacts::Elf(Box::new(elf_facts(b"\x7fELF"))));
            let link = (kind == FileKind::Symlink).then(|| b"/usr/lib".to_vec());
            // A path through a file is refused; the tree stays as it was.
            let _ = tree.apply(
                random.below(3) as u32,
                vec![Change::Add {
                    path,
                    kind,
                    meta,
                    link,
                    fact,
                }],
            );
        }
        tree
    }

    type Listing = Vec<(Vec<u8>, NodeId)>;

    /// The lists as every check made them before the index, from the full listing.
    #[allow(clippy::type_complexity)]
    fn listed_by_every_entry(
        tree: &ImageTree,
    ) -> (
        Vec<(Vec<u8>, NodeId, bool)>,
        Listing,
        Listing,
        Vec<(Vec<u8>, NodeId, &'static str)>,
        Listing,
    ) {
        let (mut elf, mut privileged, mut libc, mut toolchain, mut sources) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (raw, node) in tree.entries() {
            let entry = tree.entry(node);
            let shown = path::display(&raw);
            let name = shown.rsplit('/').next().unwrap_or("");
            let is_elf = entry.fact.and_then(|f| f.elf()).is_some();
            let mode = entry.meta.mode;
            if entry.kind == FileKind::File && is_elf {
                let testdata = raw.split(|&b| b == b'/').any(|c| c == b"testdata");
                elf.push((raw.clone(), node, testdata));
            }
            let setgid = mode & 0o2000 != 0 && mode & 0o010 != 0;
            if entry.kind == FileKind::File
                && (mode & 0o4000 != 0 || setgid || entry.meta.capability.is_some())
            {
                privileged.push((raw.clone(), node));
            }
            let last = path::split_last(&raw).1;
            if entry.kind != FileKind::Dir
                && (last.starts_with(b"ld-musl-")
                    || last == b"libc.so.6"
                    || last.starts_with(b"ld-linux"))
            {
                libc.push((raw.clone(), node));
            }
            // build.toolchain and build.source as they were, on the shown path.
            if entry.kind == FileKind::File {
                let what = TOOLCHAIN_DIRS
                    .iter()
                    .find(|(_, prefix)| shown.starts_with(prefix))
                    .or_else(|| {
                        TOOLCHAIN_ANYWHERE
                            .iter()
                            .find(|(_, part)| shown.contains(part))
                    })
                    .map(|(what, _)| *what)
                    .or_else(|| {
                        (TOOLCHAIN_BINARIES.contains(&name) && is_elf && mode & 0o111 != 0)
                            .then_some("compilers")
                    });
                if let Some(what) = what {
                    toolchain.push((raw.clone(), node, what));
                }
            }
            if !PACKAGE_DIRS.iter().any(|d| shown.starts_with(d)) {
                let is_git = entry.kind == FileKind::Dir && name == ".git";
                let is_source = entry.kind == FileKind::File
                    && (SOURCE_NAMES.contains(&name)
                        || SOURCE_EXTENSIONS.iter().any(|e| name.ends_with(e)));
                if is_git || is_source {
                    sources.push((raw.clone(), node));
                }
            }
        }
        (elf, privileged, libc, toolchain, sources)
    }

    #[test]
    fn the_index_lists_what_a_walk_of_every_entry_finds() {
        let config = RuntimeConfig::default();
        let mut nonempty = [0; 5];
        let mut kinds = HashSet::new();
        for seed in 1..=60_u64 {
            let tree = random_tree(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            let cx = ImageContext::new(&tree, &config, "linux/amd64", &[]);
            let (elf, privileged, libc, toolchain, sources) = listed_by_every_entry(&tree);
            let owned = |(p, n): (&[u8], NodeId)| (p.to_vec(), n);
            let index = cx.index();
            let indexed_elf: Vec<_> = index
                .elf
                .iter()
                .map(|e| (index.path(e.path).to_vec(), e.node, e.testdata))
                .collect();
            assert_eq!(indexed_elf, elf, "seed {seed}");
            assert_eq!(
                cx.elf_entries().map(owned).collect::<Vec<_>>(),
                elf.iter()
                    .map(|(p, n, _)| (p.clone(), *n))
                    .collect::<Vec<_>>()
            );
            assert_eq!(
                cx.privileged_files().map(owned).collect::<Vec<_>>(),
                privileged,
                "seed {seed}"
            );
            assert_eq!(
                cx.libc_entries().map(owned).collect::<Vec<_>>(),
                libc,
                "seed {seed}"
            );
            assert_eq!(
                cx.toolchain_files()
                    .map(|(p, n, w)| (p.to_vec(), n, w))
                    .collect::<Vec<_>>(),
                toolchain,
                "seed {seed}"
            );
            assert_eq!(
                cx.source_entries().map(owned).collect::<Vec<_>>(),
                sources,
                "seed {seed}"
            );
            kinds.extend(toolchain.iter().map(|(.., what)| *what));
            for (i, len) in [
                elf.len(),
                privileged.len(),
                libc.len(),
                toolchain.len(),
                sources.len(),
            ]
            .into_iter()
            .enumerate()
            {
                nonempty[i] += usize::from(len > 0);
            }
        }
        // Every list was exercised.
        assert!(nonempty.iter().all(|&n| n > 10), "{nonempty:?}");
        for what in [
            "the Go distribution",
            "the Go build cache",
            "the node_modules build cache",
            "compilers",
        ] {
            assert!(kinds.contains(what), "{what}: {kinds:?}");
        }
    }
}
