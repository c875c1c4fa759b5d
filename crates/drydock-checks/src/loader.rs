//! The dynamic loader, emulated inside the image: which file each `DT_NEEDED` name loads,
//! following glibc's or musl's search rules, all within the image root.
//!
//! glibc (`elf/dl-load.c`): a name with a slash is a path; otherwise `DT_RPATH` of the object
//! and of the objects that loaded it (only while they have no `DT_RUNPATH`), `LD_LIBRARY_PATH`,
//! the object's own `DT_RUNPATH`, `/etc/ld.so.cache`, then the built-in directories.
//! musl (`ldso/dynlink.c`): `LD_LIBRARY_PATH`, the run path of the object and its loaders,
//! then `/etc/ld-musl-$ARCH.path` or `/lib:/usr/local/lib:/usr/lib`; and the names musl's
//! `libc.so` provides itself are never looked for. Both reuse an object already loaded under
//! that name. They differ on a candidate they cannot use: glibc skips one of another class or
//! machine (and a dangling link) and searches on, but stops at a file that is not ELF; musl
//! stops at the first file it can open, whatever it holds.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use drydock_facts::{ElfClass, ElfFacts, ElfKind, Libc};
use drydock_layers::{FileKind, NodeId, path};

use crate::context::ImageTree;
use crate::ldcache::{LdCache, required_flags};

/// How a library was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    Program,
    Interpreter,
    Path,
    Rpath,
    LdLibraryPath,
    Runpath,
    LdSoCache,
    DefaultPath,
    MuslPath,
    AlreadyLoaded,
}

impl Via {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Program => "the program",
            Self::Interpreter => "the program loader",
            Self::Path => "a path in DT_NEEDED",
            Self::Rpath => "DT_RPATH",
            Self::LdLibraryPath => "LD_LIBRARY_PATH",
            Self::Runpath => "DT_RUNPATH",
            Self::LdSoCache => "/etc/ld.so.cache",
            Self::DefaultPath => "the default directories",
            Self::MuslPath => "musl's search path",
            Self::AlreadyLoaded => "already loaded",
        }
    }
}

/// An object the loader maps.
#[derive(Debug, Clone)]
pub struct Loaded<'a> {
    /// The absolute path it was opened by.
    pub path: String,
    pub node: NodeId,
    pub facts: &'a ElfFacts,
    /// The `DT_NEEDED` name it was loaded for (the program's own path for the program).
    pub name: String,
    pub needed_by: Option<usize>,
    pub via: Via,
}

/// Why the loader did not use a file it found under the name it looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// An ELF file of the other class. glibc skips it and, when nothing else is found, says
    /// "wrong ELF class: ELFCLASS32"; musl stops with "Exec format error".
    WrongClass(ElfClass),
    /// An ELF file for another machine. glibc skips it silently; musl does not check the
    /// machine and maps it.
    WrongMachine(&'static str),
    /// Not an ELF file: glibc stops with "invalid ELF header" ("file too short" below an ELF
    /// header's size); musl with "Exec format error".
    NotElf { too_short: bool },
    /// An ELF file that is not a shared object (an executable): glibc stops with "cannot
    /// dynamically load executable".
    NotShared,
    /// A symbolic link to nothing: `open` fails with `ENOENT` and the search goes on.
    Dangling(String),
}

/// A file the loader found and did not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub path: String,
    pub why: Rejection,
}

impl Rejected {
    /// "/usr/lib/libz.so.1 (32-bit i386, wrong ELF class)".
    pub fn describe(&self) -> String {
        let why = match &self.why {
            Rejection::WrongClass(class) => format!(
                "{}, wrong ELF class",
                if *class == ElfClass::Elf64 {
                    "64-bit"
                } else {
                    "32-bit"
                }
            ),
            Rejection::WrongMachine(machine) => format!("built for {machine}, wrong machine"),
            Rejection::NotElf { too_short: true } => "shorter than an ELF header".to_owned(),
            Rejection::NotElf { too_short: false } => "not an ELF file".to_owned(),
            Rejection::NotShared => "an executable, not a shared object".to_owned(),
            Rejection::Dangling(target) => format!("a dangling link to {target}"),
        };
        format!("{} ({why})", self.path)
    }

    /// Whether the loader stops its search at this file rather than searching on.
    fn is_fatal(&self, flavour: Libc) -> bool {
        match self.why {
            Rejection::Dangling(_) => false,
            Rejection::WrongClass(_) | Rejection::WrongMachine(_) => flavour == Libc::Musl,
            Rejection::NotElf { .. } | Rejection::NotShared => true,
        }
    }
}

/// A `DT_NEEDED` name the loader could not load, and what it found instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Miss {
    /// The object that needs it (an index into `Outcome::objects`).
    pub needer: usize,
    pub name: String,
    /// Files skipped before the search ended.
    pub skipped: Vec<Rejected>,
    /// The file the search stopped at, when the loader gave up on a file it could not use.
    pub stopped_at: Option<Rejected>,
}

impl Miss {
    /// The loader's own words for this failure, after the program's name: glibc's
    /// `_dl_signal_error` text (`elf/dl-load.c`) or musl's (`ldso/dynlink.c`).
    pub fn loader_words(&self, flavour: Libc, needer_path: &str) -> String {
        let name = &self.name;
        if flavour == Libc::Musl {
            let reason = match &self.stopped_at {
                Some(_) => "Exec format error",
                None => "No such file or directory",
            };
            return format!(
                "Error loading shared library {name}: {reason} (needed by {needer_path})"
            );
        }
        match &self.stopped_at {
            Some(Rejected {
                path,
                why: Rejection::NotElf { too_short: true },
            }) => format!("{path}: file too short"),
            Some(Rejected {
                path,
                why: Rejection::NotShared,
            }) => format!("{path}: cannot dynamically load executable"),
            Some(Rejected { path, .. }) => format!("{path}: invalid ELF header"),
            None => match self.skipped.iter().find_map(|r| match r.why {
                Rejection::WrongClass(class) => Some(class),
                _ => None,
            }) {
                Some(class) => format!(
                    "{name}: wrong ELF class: {}",
                    if class == ElfClass::Elf64 {
                        "ELFCLASS64"
                    } else {
                        "ELFCLASS32"
                    }
                ),
                None => {
                    format!("{name}: cannot open shared object file: No such file or directory")
                }
            },
        }
    }
}

/// What a `DT_NEEDED` entry resolved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Object(usize),
    /// A name musl's libc provides itself (`libc.so`, `libpthread.so.0`, ...).
    MuslBuiltin,
    /// Not loaded; `Outcome::misses` says why, in the loader's terms.
    Missing {
        /// Files found under the name and not used, described.
        skipped: Vec<String>,
        /// Where it is, if only the loader looked there (an `ld.so.conf` directory without a
        /// fresh cache).
        hint: Option<String>,
    },
}

/// The result of loading one program.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    pub objects: Vec<Loaded<'a>>,
    /// For each object, its `DT_NEEDED` names and what they resolved to.
    pub deps: Vec<Vec<(String, Target)>>,
    pub flavour: Libc,
    /// Every name that was not loaded, with what the loader found instead.
    pub misses: Vec<Miss>,
}

impl Outcome<'_> {
    /// "/app/x needs libfoo.so.1, which needs libbar.so.2": the chain to `object`.
    pub fn chain(&self, mut object: usize) -> Vec<String> {
        let mut chain = vec![self.objects[object].path.clone()];
        while let Some(parent) = self.objects[object].needed_by {
            chain.push(self.objects[parent].path.clone());
            object = parent;
        }
        chain.reverse();
        chain
    }

    /// Why `needer` could not load `name`.
    pub fn miss(&self, needer: usize, name: &str) -> Option<&Miss> {
        self.misses
            .iter()
            .find(|m| m.needer == needer && m.name == name)
    }

    /// The object `needer` loaded for the name `file`.
    pub fn dependency(&self, needer: usize, file: &str) -> Option<usize> {
        self.deps
            .get(needer)?
            .iter()
            .find_map(|(name, target)| match target {
                Target::Object(i) if name == file => Some(*i),
                _ => None,
            })
    }
}

/// Names musl's `libc.so` answers for itself.
fn musl_builtin(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("lib") else {
        return false;
    };
    let Some((stem, _)) = rest.split_once(".so") else {
        return false;
    };
    matches!(
        stem,
        "c" | "pthread" | "rt" | "m" | "dl" | "util" | "xnet" | "crypt" | "resolv"
    )
}

fn multiarch_tuple(machine: u16, class: ElfClass) -> Option<&'static str> {
    Some(match (machine, class) {
        (62, ElfClass::Elf64) => "x86_64-linux-gnu",
        (183, _) => "aarch64-linux-gnu",
        (3, _) => "i386-linux-gnu",
        (40, _) => "arm-linux-gnueabihf",
        (22, _) => "s390x-linux-gnu",
        (21, _) => "powerpc64le-linux-gnu",
        (243, ElfClass::Elf64) => "riscv64-linux-gnu",
        _ => return None,
    })
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split([':', ';'])
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads `/etc/ld.so.conf` the way `ldconfig` does: directories, and `include` globs (a
/// relative pattern is relative to the including file's directory), each file read once
/// however often it is included, so that files including each other cost their size, not
/// their count to the power of the depth.
fn conf_dirs(tree: &ImageTree, file: &str, out: &mut Vec<String>) {
    let mut pending = vec![file.to_owned()];
    let mut read: std::collections::HashSet<NodeId> = std::collections::HashSet::new();
    while let Some(file) = pending.pop() {
        let Ok(node) = tree.resolve(file.as_bytes(), true) else {
            continue;
        };
        if !read.insert(node) {
            continue;
        }
        let Some(bytes) = tree.entry(node).fact.and_then(|f| f.captured()) else {
            continue;
        };
        let mut included = Vec::new();
        for line in String::from_utf8_lossy(bytes).lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            if let Some(pattern) = line.strip_prefix("include") {
                let pattern = pattern.trim();
                let pattern = if pattern.starts_with('/') {
                    pattern.to_owned()
                } else {
                    let (dir, _) = file.rsplit_once('/').unwrap_or(("", ""));
                    format!("{dir}/{pattern}")
                };
                included.extend(glob_files(tree, &pattern));
            } else if !line.is_empty() {
                out.extend(split_list(line));
            }
        }
        // Depth first, in order, as ldconfig reads them.
        pending.extend(included.into_iter().rev());
    }
}

/// The files a `glob(3)` pattern whose last component holds the wildcards names, sorted as
/// glob sorts them; listed from the directory, never from the whole tree.
fn glob_files(tree: &ImageTree, pattern: &str) -> Vec<String> {
    let (dir, name_pattern) = pattern.rsplit_once('/').unwrap_or(("", pattern));
    let dir = if dir.is_empty() { "/" } else { dir };
    let Ok(dir_node) = tree.resolve(dir.as_bytes(), true) else {
        return Vec::new();
    };
    let mut names: Vec<String> = tree
        .children(dir_node)
        .into_iter()
        .map(|(name, _)| String::from_utf8_lossy(name).into_owned())
        .filter(|name| !name.starts_with('.') && glob_match(name_pattern, name))
        .map(|name| format!("{}/{name}", dir.trim_end_matches('/')))
        .collect();
    names.sort();
    names
}

/// `fnmatch(3)` for one path component: `*`, `?` and `[…]` classes (with `!` or `^` and
/// ranges), iterative, so that no pattern costs more than its length times the name's.
fn glob_match(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                '*' => {
                    backtrack = Some((p, n));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                '[' => {
                    if let Some((matched, next)) = class_match(&pattern, p, name[n])
                        && matched
                    {
                        p = next;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match backtrack {
            Some((star, at)) => {
                p = star + 1;
                n = at + 1;
                backtrack = Some((star, at + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Whether `c` is in the class starting at `pattern[start] == '['`, and where the class ends;
/// `None` for an unterminated class (then `[` is an ordinary character, as in fnmatch).
fn class_match(pattern: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negated = matches!(pattern.get(i), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while let Some(&ch) = pattern.get(i) {
        if ch == ']' && !first {
            return Some((matched != negated, i + 1));
        }
        first = false;
        if pattern.get(i + 1) == Some(&'-') && pattern.get(i + 2).is_some_and(|e| *e != ']') {
            let end = pattern[i + 2];
            matched |= ch <= c && c <= end;
            i += 3;
        } else {
            matched |= ch == c;
            i += 1;
        }
    }
    None
}

/// The content of a file captured by the facts hook.
fn captured<'a>(tree: &'a ImageTree, file: &str) -> Option<&'a [u8]> {
    let node = tree.resolve(file.as_bytes(), true).ok()?;
    tree.entry(node).fact?.captured()
}

/// The loader's view of one image.
#[derive(Debug)]
pub struct Loader<'a> {
    tree: &'a ImageTree,
    cache: Option<LdCache>,
    ld_library_path: Vec<String>,
    conf: Vec<String>,
    /// Searches that depend on nothing but the name and the program's C library, class and
    /// machine (no run path, rpath or `LD_LIBRARY_PATH` directory to try): done once per image
    /// (every program of a distribution needs `libc.so.6`, most the same few libraries).
    searched: RefCell<HashMap<SearchKey, Searched<'a>>>,
}

/// What a search found, or what it skipped and where it stopped.
type Searched<'a> = Result<(String, NodeId, &'a ElfFacts, Via), (Vec<Rejected>, Option<Rejected>)>;

/// A search's inputs when no directory of the requester's own is tried: the name, the C
/// library, the class and the machine.
type SearchKey = (String, Libc, ElfClass, u16);

fn search_key(name: &str, flavour: Libc, program: &ElfFacts) -> SearchKey {
    (name.to_owned(), flavour, program.class, program.machine)
}

impl<'a> Loader<'a> {
    pub fn new(tree: &'a ImageTree, env: &[String]) -> Self {
        let cache = captured(tree, "/etc/ld.so.cache").and_then(LdCache::parse);
        let ld_library_path = env
            .iter()
            .find_map(|e| e.strip_prefix("LD_LIBRARY_PATH="))
            .map(split_list)
            .unwrap_or_default();
        let mut conf = Vec::new();
        conf_dirs(tree, "/etc/ld.so.conf", &mut conf);
        Self {
            tree,
            cache,
            ld_library_path,
            conf,
            searched: RefCell::new(HashMap::new()),
        }
    }

    pub fn has_cache(&self) -> bool {
        self.cache.is_some()
    }

    /// A regular ELF file at `file` (symlinks followed).
    fn elf_at(&self, file: &str) -> Option<(NodeId, &'a ElfFacts)> {
        let node = self.tree.resolve(file.as_bytes(), true).ok()?;
        let entry = self.tree.entry(node);
        if entry.kind != FileKind::File {
            return None;
        }
        Some((node, entry.fact?.elf()?))
    }

    fn exists(&self, file: &str) -> bool {
        self.tree
            .resolve(file.as_bytes(), true)
            .is_ok_and(|n| self.tree.entry(n).kind == FileKind::File)
    }

    fn expand(&self, dir: &str, origin: &str, program: &ElfFacts) -> String {
        let tuple = multiarch_tuple(program.machine, program.class);
        let lib = match tuple {
            Some(t)
                if self
                    .tree
                    .resolve(format!("/lib/{t}").as_bytes(), true)
                    .is_ok() =>
            {
                format!("lib/{t}")
            }
            _ if program.class == ElfClass::Elf64 => "lib64".to_owned(),
            _ => "lib".to_owned(),
        };
        dir.replace("${ORIGIN}", origin)
            .replace("$ORIGIN", origin)
            .replace("${LIB}", &lib)
            .replace("$LIB", &lib)
            .replace("${PLATFORM}", program.machine_name())
            .replace("$PLATFORM", program.machine_name())
    }

    fn default_dirs(
        program: &ElfFacts,
        flavour: Libc,
        musl_path: Option<Vec<String>>,
    ) -> Vec<String> {
        if flavour == Libc::Musl {
            return musl_path.unwrap_or_else(|| split_list("/lib:/usr/local/lib:/usr/lib"));
        }
        let mut dirs = Vec::new();
        if let Some(tuple) = multiarch_tuple(program.machine, program.class) {
            dirs.push(format!("/lib/{tuple}"));
            dirs.push(format!("/usr/lib/{tuple}"));
        }
        if program.class == ElfClass::Elf64 {
            dirs.extend(["/lib64".to_owned(), "/usr/lib64".to_owned()]);
        }
        dirs.extend(["/lib".to_owned(), "/usr/lib".to_owned()]);
        dirs
    }

    /// Loads `program` (at `program_path`) and everything it needs, breadth first.
    pub fn load(&self, program_path: &str, program: &'a ElfFacts, node: NodeId) -> Outcome<'a> {
        let flavour = program.libc().unwrap_or(Libc::Other);
        let musl_arch = program
            .interpreter
            .as_deref()
            .and_then(|i| i.rsplit('/').next())
            .and_then(|n| n.strip_prefix("ld-musl-")?.strip_suffix(".so.1"))
            .map(str::to_owned);
        self.load_as(program_path, program, node, flavour, musl_arch.as_deref())
    }

    /// Loads a shared object the way `dlopen` in a process of the C library `flavour` would:
    /// the object's own run path, `LD_LIBRARY_PATH`, then the C library's defaults.
    pub fn load_library(
        &self,
        library_path: &str,
        library: &'a ElfFacts,
        node: NodeId,
        flavour: Libc,
    ) -> Outcome<'a> {
        // musl names its loader and path file after the machine as `uname -m` spells it.
        let arch = library.machine_name();
        self.load_as(library_path, library, node, flavour, Some(arch))
    }

    fn load_as(
        &self,
        program_path: &str,
        program: &'a ElfFacts,
        node: NodeId,
        flavour: Libc,
        musl_arch: Option<&str>,
    ) -> Outcome<'a> {
        let real = self
            .tree
            .canonical(program_path.as_bytes())
            .map(|p| path::display(&p))
            .unwrap_or_else(|_| program_path.to_owned());
        let mut objects = vec![Loaded {
            path: real,
            node,
            facts: program,
            name: program_path.to_owned(),
            needed_by: None,
            via: Via::Program,
        }];
        let mut deps: Vec<Vec<(String, Target)>> = vec![Vec::new()];
        let mut misses = Vec::new();
        if let Some(interp) = &program.interpreter
            && let Some((interp_node, interp_facts)) = self.elf_at(interp)
        {
            objects.push(Loaded {
                path: interp.clone(),
                node: interp_node,
                facts: interp_facts,
                name: interp.clone(),
                needed_by: None,
                via: Via::Interpreter,
            });
            deps.push(Vec::new());
        }
        let musl_path = if flavour == Libc::Musl {
            musl_arch.and_then(|arch| self.musl_path(arch))
        } else {
            None
        };
        let defaults = Self::default_dirs(program, flavour, musl_path);
        let mut queue: VecDeque<usize> = VecDeque::from([0]);
        while let Some(current) = queue.pop_front() {
            if objects.len() > 4096 {
                break;
            }
            let needed = objects[current].facts.needed.clone();
            for name in needed {
                let target = if let Some(i) = objects.iter().position(|o| {
                    o.name == name
                        || o.facts.soname.as_deref() == Some(name.as_str())
                        || o.path == name
                }) {
                    Target::Object(i)
                } else if flavour == Libc::Musl && musl_builtin(&name) {
                    Target::MuslBuiltin
                } else {
                    match self.search(&name, current, &objects, program, flavour, &defaults) {
                        Ok((found, found_node, facts, via)) => {
                            objects.push(Loaded {
                                path: found,
                                node: found_node,
                                facts,
                                name: name.clone(),
                                needed_by: Some(current),
                                via,
                            });
                            deps.push(Vec::new());
                            queue.push_back(objects.len() - 1);
                            Target::Object(objects.len() - 1)
                        }
                        Err((skipped, stopped_at)) => {
                            let hint = self.hint(&name, flavour);
                            let described = skipped
                                .iter()
                                .chain(stopped_at.as_ref())
                                .map(Rejected::describe)
                                .collect();
                            misses.push(Miss {
                                needer: current,
                                name: name.clone(),
                                skipped,
                                stopped_at,
                            });
                            Target::Missing {
                                skipped: described,
                                hint,
                            }
                        }
                    }
                };
                deps[current].push((name, target));
            }
        }
        Outcome {
            objects,
            deps,
            flavour,
            misses,
        }
    }

    fn musl_path(&self, arch: &str) -> Option<Vec<String>> {
        let bytes = captured(self.tree, &format!("/etc/ld-musl-{arch}.path"))?;
        Some(
            String::from_utf8_lossy(bytes)
                .split(['\n', ':'])
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    /// What the loader makes of `file`: `Ok(None)` when nothing is there (the search goes
    /// on), `Ok(Some(..))` for a usable object, `Err` for a file it rejects.
    #[allow(clippy::type_complexity)]
    fn candidate(
        &self,
        file: &str,
        program: &ElfFacts,
    ) -> Result<Option<(NodeId, &'a ElfFacts)>, Rejected> {
        let rejected = |why| Rejected {
            path: file.to_owned(),
            why,
        };
        let node = match self.tree.resolve(file.as_bytes(), true) {
            Ok(node) => node,
            Err(_) => {
                // A link that leads nowhere fails `open` with ENOENT, like no file at all.
                return match self.tree.resolve(file.as_bytes(), false) {
                    Ok(link) => match self.tree.entry(link).link {
                        Some(target) => Err(rejected(Rejection::Dangling(
                            String::from_utf8_lossy(target).into_owned(),
                        ))),
                        None => Ok(None),
                    },
                    Err(_) => Ok(None),
                };
            }
        };
        let entry = self.tree.entry(node);
        if entry.kind != FileKind::File {
            return Ok(None);
        }
        let Some(facts) = entry.fact.and_then(|f| f.elf()) else {
            let header = if program.class == ElfClass::Elf64 {
                64
            } else {
                52
            };
            return Err(rejected(Rejection::NotElf {
                too_short: entry.meta.size < header,
            }));
        };
        if facts.class != program.class {
            return Err(rejected(Rejection::WrongClass(facts.class)));
        }
        if facts.machine != program.machine {
            return Err(rejected(Rejection::WrongMachine(facts.machine_name())));
        }
        if facts.kind != ElfKind::Shared {
            return Err(rejected(Rejection::NotShared));
        }
        Ok(Some((node, facts)))
    }

    /// Tries one file: `Some(Ok)` to use it, `Some(Err)` when the search stops there; a file
    /// passed over is added to `skipped`.
    fn attempt(
        &self,
        file: &str,
        program: &ElfFacts,
        flavour: Libc,
        skipped: &mut Vec<Rejected>,
    ) -> Option<Result<(NodeId, &'a ElfFacts), Rejected>> {
        match self.candidate(file, program) {
            Ok(Some(found)) => Some(Ok(found)),
            Ok(None) => None,
            Err(rejected) if rejected.is_fatal(flavour) => Some(Err(rejected)),
            Err(rejected) => {
                skipped.push(rejected);
                None
            }
        }
    }

    fn search(
        &self,
        name: &str,
        requester: usize,
        objects: &[Loaded<'a>],
        program: &ElfFacts,
        flavour: Libc,
        defaults: &[String],
    ) -> Searched<'a> {
        if name.contains('/') {
            let mut skipped = Vec::new();
            return match self.attempt(name, program, flavour, &mut skipped) {
                Some(Ok((node, facts))) => Ok((name.to_owned(), node, facts, Via::Path)),
                Some(Err(stop)) => Err((skipped, Some(stop))),
                None => Err((skipped, None)),
            };
        }
        let origin_of = |i: usize| -> String {
            let p = &objects[i].path;
            p.rsplit_once('/').map_or("/".to_owned(), |(d, _)| {
                if d.is_empty() {
                    "/".to_owned()
                } else {
                    d.to_owned()
                }
            })
        };
        let mut dirs: Vec<(String, Via)> = Vec::new();
        let requester_facts = objects[requester].facts;
        if flavour == Libc::Musl {
            dirs.extend(
                self.ld_library_path
                    .iter()
                    .map(|d| (d.clone(), Via::LdLibraryPath)),
            );
            let mut at = Some(requester);
            while let Some(i) = at {
                let facts = objects[i].facts;
                let run = if facts.runpath.is_empty() {
                    &facts.rpath
                } else {
                    &facts.runpath
                };
                dirs.extend(
                    run.iter()
                        .map(|d| (self.expand(d, &origin_of(i), program), Via::Runpath)),
                );
                at = objects[i].needed_by;
            }
            dirs.extend(defaults.iter().map(|d| (d.clone(), Via::MuslPath)));
        } else {
            if requester_facts.runpath.is_empty() {
                let mut at = Some(requester);
                while let Some(i) = at {
                    let facts = objects[i].facts;
                    if !facts.runpath.is_empty() {
                        break;
                    }
                    dirs.extend(
                        facts
                            .rpath
                            .iter()
                            .map(|d| (self.expand(d, &origin_of(i), program), Via::Rpath)),
                    );
                    at = objects[i].needed_by;
                }
            }
            dirs.extend(
                self.ld_library_path
                    .iter()
                    .map(|d| (self.expand(d, &origin_of(0), program), Via::LdLibraryPath)),
            );
            dirs.extend(
                requester_facts
                    .runpath
                    .iter()
                    .map(|d| (self.expand(d, &origin_of(requester), program), Via::Runpath)),
            );
        }
        // With no directory of the requester's own, the rest is the same for every program
        // of this C library, class and machine (musl's path file is the program's: not kept).
        let key =
            (dirs.is_empty() && flavour != Libc::Musl).then(|| search_key(name, flavour, program));
        if let Some(found) = key
            .as_ref()
            .and_then(|key| self.searched.borrow().get(key).cloned())
        {
            return found;
        }
        let found = self.search_files(name, &dirs, program, flavour, defaults);
        if let Some(key) = key {
            self.searched.borrow_mut().insert(key, found.clone());
        }
        found
    }

    /// The files a search tries, in order, after the directories `dirs`: the first usable one.
    fn search_files(
        &self,
        name: &str,
        dirs: &[(String, Via)],
        program: &ElfFacts,
        flavour: Libc,
        defaults: &[String],
    ) -> Searched<'a> {
        let mut skipped = Vec::new();
        let attempt =
            |file: &str, skipped: &mut Vec<Rejected>| self.attempt(file, program, flavour, skipped);
        let mut files: Vec<(String, Via)> = dirs
            .iter()
            .map(|(dir, via)| (format!("{}/{name}", dir.trim_end_matches('/')), *via))
            .collect();
        if flavour != Libc::Musl {
            if let Some(cache) = &self.cache {
                let required = required_flags(program.machine, program.class == ElfClass::Elf64);
                files.extend(
                    cache
                        .lookup(name, required)
                        .map(|file| (file.to_owned(), Via::LdSoCache)),
                );
            }
            files.extend(
                defaults
                    .iter()
                    .map(|dir| (format!("{dir}/{name}"), Via::DefaultPath)),
            );
        }
        for (file, via) in files {
            match attempt(&file, &mut skipped) {
                Some(Ok((node, facts))) => return Ok((file, node, facts, via)),
                Some(Err(stop)) => return Err((dedup(skipped), Some(stop))),
                None => {}
            }
        }
        Err((dedup(skipped), None))
    }

    /// Where a missing library sits in an `ld.so.conf` directory that the loader does not
    /// search by itself (it only knows them through a cache `ldconfig` writes).
    fn hint(&self, name: &str, flavour: Libc) -> Option<String> {
        if flavour == Libc::Musl {
            return None;
        }
        self.conf
            .iter()
            .map(|dir| format!("{}/{name}", dir.trim_end_matches('/')))
            .find(|file| self.exists(file))
    }
}

/// The same file reached twice (a directory listed twice) is one rejection.
fn dedup(mut rejected: Vec<Rejected>) -> Vec<Rejected> {
    let mut seen = Vec::new();
    rejected.retain(|r| {
        let new = !seen.contains(&r.path);
        seen.push(r.path.clone());
        new
    });
    rejected
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_as_fnmatch_does() {
        assert!(glob_match("*.conf", "libc.conf"));
        assert!(!glob_match("*.conf", "libc.conf.bak"));
        assert!(glob_match("x86_64-linux-gnu.conf", "x86_64-linux-gnu.conf"));
        assert!(glob_match("[a-c]?.c*f", "b1.conf"));
        assert!(!glob_match("[!a-c]*", "b1"));
        assert!(glob_match("*a*b*c*", "xxaxxbxxcxx"));
        assert!(!glob_match(&"*a".repeat(30), &"a".repeat(29)));
    }

    fn elf(kind: ElfKind, needed: &[&str], rpath: &[&str]) -> ElfFacts {
        let mut facts = drydock_facts::elf_facts(b"\x7fELF\x02\x01\x01");
        facts.class = ElfClass::Elf64;
        facts.machine = 62;
        facts.kind = kind;
        facts.dynamic = true;
        facts.needed = needed.iter().map(|n| (*n).to_owned()).collect();
        facts.rpath = rpath.iter().map(|n| (*n).to_owned()).collect();
        if kind == ElfKind::Executable {
            facts.interpreter = Some("/lib64/ld-linux-x86-64.so.2".into());
        }
        facts
    }

    fn file(path: &str, facts: ElfFacts) -> drydock_layers::Change<drydock_facts::FileFacts> {
        drydock_layers::Change::Add {
            path: path.as_bytes().to_vec(),
            kind: FileKind::File,
            meta: drydock_layers::EntryMeta {
                mode: 0o755,
                size: 100,
                ..drydock_layers::EntryMeta::default()
            },
            link: None,
            fact: Some(drydock_facts::FileFacts::Elf(Box::new(facts))),
        }
    }

    #[test]
    fn a_search_without_directories_of_its_own_is_done_once_per_image() {
        let mut tree = ImageTree::new();
        let programs = [
            (
                "bin/a",
                elf(ElfKind::Executable, &["libc.so.6", "libgone.so.1"], &[]),
            ),
            (
                "bin/b",
                elf(ElfKind::Executable, &["libc.so.6", "libgone.so.1"], &[]),
            ),
            (
                "opt/c",
                elf(
                    ElfKind::Executable,
                    &["libc.so.6", "libx.so"],
                    &["$ORIGIN/lib"],
                ),
            ),
        ];
        let mut changes: Vec<_> = programs
            .iter()
            .map(|(path, facts)| file(path, facts.clone()))
            .collect();
        changes.push(file(
            "lib64/ld-linux-x86-64.so.2",
            elf(ElfKind::Shared, &[], &[]),
        ));
        changes.push(file(
            "lib/x86_64-linux-gnu/libc.so.6",
            elf(ElfKind::Shared, &[], &[]),
        ));
        changes.push(file(
            "opt/lib/libx.so",
            elf(ElfKind::Shared, &["libc.so.6"], &[]),
        ));
        tree.apply(0, changes).unwrap();
        let node = |path: &str| tree.resolve(path.as_bytes(), true).unwrap();
        let shared = Loader::new(&tree, &[]);
        for (path, facts) in &programs {
            let program = format!("/{path}");
            let once = shared.load(&program, facts, node(path));
            // Each outcome as a loader of its own finds it.
            let fresh = Loader::new(&tree, &[]).load(&program, facts, node(path));
            assert_eq!(format!("{once:?}"), format!("{fresh:?}"));
        }
        // libc.so.6 and libgone.so.1, searched once each for the two programs without a run
        // path; opt/c's searches go through its rpath first, and are not kept.
        let mut kept: Vec<String> = shared
            .searched
            .borrow()
            .keys()
            .map(|k| k.0.clone())
            .collect();
        kept.sort();
        assert_eq!(kept, ["libc.so.6", "libgone.so.1"]);
    }

    #[test]
    fn musl_provides_its_own_names() {
        for name in [
            "libc.so",
            "libpthread.so.0",
            "libm.so.6",
            "libdl.so.2",
            "librt.so.1",
            "libcrypt.so.1",
        ] {
            assert!(musl_builtin(name), "{name}");
        }
        for name in [
            "libssl.so.3",
            "libcurl.so.4",
            "libc.musl-x86_64.so.1",
            "libcrypto.so.3",
        ] {
            assert!(!musl_builtin(name), "{name}");
        }
    }
}
