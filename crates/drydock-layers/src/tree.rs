use std::collections::BTreeMap;

use crate::error::ApplyError;
use crate::path;
use crate::walk::{Change, EntryMeta, FileKind};

/// The names of a resolved path, root first.
type RealPath = Vec<Box<[u8]>>;

/// Linux's limit on symlinks followed while resolving one path (`MAXSYMLINKS`).
pub const MAX_SYMLINK_HOPS: u32 = 40;

/// A node of the in-memory filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct InodeId(u32);

#[derive(Debug)]
enum NodeKind {
    Dir(BTreeMap<Box<[u8]>, NodeId>),
    /// Regular files live in inodes so that hardlinks share content, metadata and facts.
    File(InodeId),
    Symlink(Box<[u8]>),
    Special(FileKind),
}

#[derive(Debug)]
struct Node {
    kind: NodeKind,
    /// Metadata of everything but regular files (theirs is in the inode).
    meta: EntryMeta,
    /// The layer whose tar entry last wrote this node.
    layer: u32,
    /// Whether this node's tar entry carried the file's bytes (a hardlink does not).
    owns_bytes: bool,
}

#[derive(Debug)]
struct Inode<F> {
    meta: EntryMeta,
    fact: Option<F>,
    links: u32,
}

/// Per-layer accounting, as dive defines it: the bytes of regular files a layer adds, and how
/// many of them later layers overwrite or delete (and so waste, since the layer still ships them).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LayerStats {
    pub entries: u64,
    pub added_bytes: u64,
    pub wasted_bytes: u64,
}

/// Why a path did not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// `name` is not in the directory `parent` (after following symlinks).
    Missing { parent: NodeId, name: Vec<u8> },
    /// A component other than the last is not a directory.
    NotADirectory,
    /// More than [`MAX_SYMLINK_HOPS`] symlinks: a loop, as `ELOOP`.
    TooManyLinks,
}

/// What a tree node is, for readers.
#[derive(Debug)]
pub struct EntryView<'a, F> {
    pub kind: FileKind,
    pub meta: &'a EntryMeta,
    /// A symlink's target as written.
    pub link: Option<&'a [u8]>,
    pub layer: u32,
    pub fact: Option<&'a F>,
    /// Hardlink count of a regular file (1 for everything else).
    pub nlink: u32,
}

/// The image's filesystem, rebuilt in memory by applying layers in order. `F` is the fact a
/// [`crate::ContentHook`] attached to regular files.
#[derive(Debug)]
pub struct Tree<F> {
    nodes: Vec<Node>,
    inodes: Vec<Inode<F>>,
    layers: Vec<LayerStats>,
}

const ROOT: NodeId = NodeId(0);

fn root_meta() -> EntryMeta {
    EntryMeta {
        mode: 0o755,
        ..EntryMeta::default()
    }
}

impl<F> Default for Tree<F> {
    fn default() -> Self {
        Self::new()
    }
}

impl<F> Tree<F> {
    pub fn new() -> Self {
        let root = Node {
            kind: NodeKind::Dir(BTreeMap::new()),
            meta: root_meta(),
            layer: 0,
            owns_bytes: false,
        };
        Self {
            nodes: vec![root],
            inodes: Vec::new(),
            layers: Vec::new(),
        }
    }

    pub fn root(&self) -> NodeId {
        ROOT
    }

    pub fn layer_stats(&self) -> &[LayerStats] {
        &self.layers
    }

    /// Applies one layer's changes on top of the layers applied before it. Whiteouts and opaque
    /// markers apply first, because they only ever hide what lower layers wrote; then entries in
    /// tar order, the way runtimes extract them.
    pub fn apply(&mut self, layer: u32, changes: Vec<Change<F>>) -> Result<(), ApplyError> {
        let index = layer as usize;
        if self.layers.len() <= index {
            self.layers.resize(index + 1, LayerStats::default());
        }
        let (hiding, adding): (Vec<_>, Vec<_>) = changes
            .into_iter()
            .partition(|c| matches!(c, Change::Whiteout { .. } | Change::Opaque { .. }));
        self.layers[index].entries += (hiding.len() + adding.len()) as u64;
        for change in hiding {
            match change {
                Change::Whiteout { path } => {
                    let (parent, name) = path::split_last(&path);
                    if let Ok(dir) = self.resolve(parent, true)
                        && let Some(child) = self.child(dir, name)
                    {
                        self.detach(dir, name, child);
                    }
                }
                Change::Opaque { dir } => {
                    if let Ok(dir) = self.resolve(&dir, true) {
                        let names: Vec<Box<[u8]>> = match &self.nodes[dir.0 as usize].kind {
                            NodeKind::Dir(children) => children.keys().cloned().collect(),
                            _ => Vec::new(),
                        };
                        for name in names {
                            if let Some(child) = self.child(dir, &name) {
                                self.detach(dir, &name, child);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        for change in adding {
            match change {
                Change::Add {
                    path,
                    kind,
                    meta,
                    link,
                    fact,
                } => {
                    self.add(layer, &path, kind, meta, link, fact)?;
                }
                Change::Hardlink { path, target, meta } => {
                    self.hardlink(layer, &path, &target, meta)?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn add(
        &mut self,
        layer: u32,
        path: &[u8],
        kind: FileKind,
        meta: EntryMeta,
        link: Option<Vec<u8>>,
        fact: Option<F>,
    ) -> Result<(), ApplyError> {
        if path.is_empty() {
            let root = &mut self.nodes[ROOT.0 as usize];
            root.meta = meta;
            root.layer = layer;
            return Ok(());
        }
        let (parent, name) = path::split_last(path);
        let dir = self
            .make_dirs(parent, layer)
            .map_err(|r| ApplyError::new(path, r))?;
        if kind == FileKind::File {
            self.layers[layer as usize].added_bytes += meta.size;
        }
        if let Some(existing) = self.child(dir, name) {
            let node = &mut self.nodes[existing.0 as usize];
            if kind == FileKind::Dir && matches!(node.kind, NodeKind::Dir(_)) {
                // Re-declaring a directory updates its metadata and keeps its children.
                node.meta = meta;
                node.layer = layer;
                return Ok(());
            }
            self.detach(dir, name, existing);
        }
        let node_kind = match kind {
            FileKind::Dir => NodeKind::Dir(BTreeMap::new()),
            FileKind::File => {
                let inode = InodeId(self.inodes.len() as u32);
                self.inodes.push(Inode {
                    meta,
                    fact,
                    links: 1,
                });
                let node = Node {
                    kind: NodeKind::File(inode),
                    meta: EntryMeta::default(),
                    layer,
                    owns_bytes: true,
                };
                self.insert(dir, name, node);
                return Ok(());
            }
            FileKind::Symlink => NodeKind::Symlink(link.unwrap_or_default().into()),
            other => NodeKind::Special(other),
        };
        self.insert(
            dir,
            name,
            Node {
                kind: node_kind,
                meta,
                layer,
                owns_bytes: false,
            },
        );
        Ok(())
    }

    fn hardlink(
        &mut self,
        layer: u32,
        path: &[u8],
        target: &[u8],
        meta: EntryMeta,
    ) -> Result<(), ApplyError> {
        let source = self.resolve(target, false).map_err(|_| {
            ApplyError::new(
                path,
                format!(
                    "hardlink target {} does not exist in the image",
                    path::display(target)
                ),
            )
        })?;
        if path.is_empty() {
            return Err(ApplyError::new(
                path,
                "a hardlink cannot replace the image root",
            ));
        }
        let (parent, name) = path::split_last(path);
        let dir = self
            .make_dirs(parent, layer)
            .map_err(|r| ApplyError::new(path, r))?;
        if self.child(dir, name) == Some(source) {
            return Ok(());
        }
        let kind = match &self.nodes[source.0 as usize].kind {
            NodeKind::Dir(_) => {
                return Err(ApplyError::new(path, "a hardlink to a directory"));
            }
            NodeKind::File(inode) => {
                self.inodes[inode.0 as usize].links += 1;
                NodeKind::File(*inode)
            }
            NodeKind::Symlink(t) => NodeKind::Symlink(t.clone()),
            NodeKind::Special(k) => NodeKind::Special(*k),
        };
        let node_meta = match kind {
            NodeKind::File(_) => meta,
            _ => self.nodes[source.0 as usize].meta.clone(),
        };
        if let Some(existing) = self.child(dir, name) {
            self.detach(dir, name, existing);
        }
        self.insert(
            dir,
            name,
            Node {
                kind,
                meta: node_meta,
                layer,
                owns_bytes: false,
            },
        );
        Ok(())
    }

    fn insert(&mut self, dir: NodeId, name: &[u8], node: Node) {
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(node);
        if let NodeKind::Dir(children) = &mut self.nodes[dir.0 as usize].kind {
            children.insert(name.into(), id);
        }
    }

    fn child(&self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        match &self.nodes[dir.0 as usize].kind {
            NodeKind::Dir(children) => children.get(name).copied(),
            _ => None,
        }
    }

    /// Unlinks `name` from `dir`, charging the bytes it held to the layers that wrote them.
    fn detach(&mut self, dir: NodeId, name: &[u8], child: NodeId) {
        if let NodeKind::Dir(children) = &mut self.nodes[dir.0 as usize].kind {
            children.remove(name);
        }
        let mut pending = vec![child];
        while let Some(id) = pending.pop() {
            let node = &self.nodes[id.0 as usize];
            match &node.kind {
                NodeKind::Dir(children) => pending.extend(children.values().copied()),
                NodeKind::File(inode) => {
                    let inode = &mut self.inodes[inode.0 as usize];
                    inode.links = inode.links.saturating_sub(1);
                    if node.owns_bytes {
                        self.layers[node.layer as usize].wasted_bytes += inode.meta.size;
                    }
                }
                _ => {}
            }
        }
    }

    /// Resolves `parent` to a directory, creating missing components as the runtime does
    /// (mode 0755, root-owned), following symlinks inside the image root.
    fn make_dirs(&mut self, parent: &[u8], layer: u32) -> Result<NodeId, String> {
        // Each round creates one missing directory; a path has at most PATH_MAX of them.
        for _ in 0..=path::MAX_PATH {
            match self.resolve(parent, true) {
                Ok(id) => {
                    return match self.nodes[id.0 as usize].kind {
                        NodeKind::Dir(_) => Ok(id),
                        _ => Err(format!("{} is not a directory", path::display(parent))),
                    };
                }
                Err(Lookup::Missing { parent: dir, name }) => {
                    let node = Node {
                        kind: NodeKind::Dir(BTreeMap::new()),
                        meta: root_meta(),
                        layer,
                        owns_bytes: false,
                    };
                    self.insert(dir, &name, node);
                }
                Err(Lookup::NotADirectory) => {
                    return Err(format!(
                        "a component of {} is not a directory",
                        path::display(parent)
                    ));
                }
                Err(Lookup::TooManyLinks) => {
                    return Err(format!(
                        "too many levels of symbolic links in {}",
                        path::display(parent)
                    ));
                }
            }
        }
        Err(format!("{} cannot be created", path::display(parent)))
    }

    /// Resolves `path` (relative to the image root; a leading `/` is allowed) the way the
    /// kernel resolves it inside a container: symlinks are followed (the last component only
    /// when `follow_final`), absolute targets start again at the image root, and `..` at the
    /// root stays at the root, so no resolution ever leaves the image.
    pub fn resolve(&self, path: &[u8], follow_final: bool) -> Result<NodeId, Lookup> {
        self.walk(path, follow_final).map(|(node, _)| node)
    }

    /// The path `path` really names: symlinks followed (all of them), `.` and `..` folded,
    /// as `realpath(3)` inside the image. Normalised, without a leading `/`.
    pub fn canonical(&self, path: &[u8]) -> Result<Vec<u8>, Lookup> {
        self.walk(path, true).map(|(_, names)| names.join(&b'/'))
    }

    /// The resolution behind [`Tree::resolve`] and [`Tree::canonical`]: the node reached and
    /// the names of the real path to it.
    fn walk(&self, path: &[u8], follow_final: bool) -> Result<(NodeId, RealPath), Lookup> {
        let mut ancestors = vec![ROOT];
        let mut names: RealPath = Vec::new();
        let mut pending: Vec<Box<[u8]>> = path::components(path).rev().map(Into::into).collect();
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match &*component {
                b"." => continue,
                b".." => {
                    if ancestors.len() > 1 {
                        ancestors.pop();
                        names.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let current = *ancestors.last().unwrap_or(&ROOT);
            let NodeKind::Dir(children) = &self.nodes[current.0 as usize].kind else {
                return Err(Lookup::NotADirectory);
            };
            let Some(&child) = children.get(&component) else {
                return Err(Lookup::Missing {
                    parent: current,
                    name: component.into(),
                });
            };
            if let NodeKind::Symlink(target) = &self.nodes[child.0 as usize].kind
                && (!pending.is_empty() || follow_final)
            {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(Lookup::TooManyLinks);
                }
                if target.starts_with(b"/") {
                    ancestors.truncate(1);
                    names.clear();
                }
                pending.extend(path::components(target).rev().map(Into::into));
                continue;
            }
            ancestors.push(child);
            names.push(component);
        }
        Ok((*ancestors.last().unwrap_or(&ROOT), names))
    }

    /// Bytes of regular files at or under `path` (not following a final symlink), counting
    /// each file once where its tar entry carried its bytes (hardlinks carry none).
    pub fn bytes_under(&self, path: &[u8]) -> u64 {
        let Ok(node) = self.resolve(path, false) else {
            return 0;
        };
        let mut total = 0;
        let mut pending = vec![node];
        while let Some(id) = pending.pop() {
            let node = &self.nodes[id.0 as usize];
            match &node.kind {
                NodeKind::Dir(children) => pending.extend(children.values().copied()),
                NodeKind::File(inode) if node.owns_bytes => {
                    total += self.inodes[inode.0 as usize].meta.size
                }
                _ => {}
            }
        }
        total
    }

    /// Describes a node.
    pub fn entry(&self, id: NodeId) -> EntryView<'_, F> {
        let node = &self.nodes[id.0 as usize];
        let (kind, meta, link, fact, nlink) = match &node.kind {
            NodeKind::Dir(_) => (FileKind::Dir, &node.meta, None, None, 1),
            NodeKind::File(inode) => {
                let inode = &self.inodes[inode.0 as usize];
                (
                    FileKind::File,
                    &inode.meta,
                    None,
                    inode.fact.as_ref(),
                    inode.links,
                )
            }
            NodeKind::Symlink(target) => (FileKind::Symlink, &node.meta, Some(&**target), None, 1),
            NodeKind::Special(kind) => (*kind, &node.meta, None, None, 1),
        };
        EntryView {
            kind,
            meta,
            link,
            layer: node.layer,
            fact,
            nlink,
        }
    }

    /// The entries directly in the directory `dir` (not following a symlink `dir` itself),
    /// in byte order of names; empty for anything but a directory.
    pub fn children(&self, dir: NodeId) -> Vec<(&[u8], NodeId)> {
        match &self.nodes[dir.0 as usize].kind {
            NodeKind::Dir(children) => children
                .iter()
                .map(|(name, &child)| (&name[..], child))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Every entry of the final filesystem with its normalised path, the root first, then
    /// depth first in byte order of names.
    pub fn entries(&self) -> Vec<(Vec<u8>, NodeId)> {
        let mut out = Vec::new();
        let mut stack = vec![(Vec::new(), ROOT)];
        while let Some((path, id)) = stack.pop() {
            if let NodeKind::Dir(children) = &self.nodes[id.0 as usize].kind {
                for (name, &child) in children.iter().rev() {
                    let mut child_path = path.clone();
                    if !child_path.is_empty() {
                        child_path.push(b'/');
                    }
                    child_path.extend_from_slice(name);
                    stack.push((child_path, child));
                }
            }
            out.push((path, id));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, size: u64) -> Change<&'static str> {
        let meta = EntryMeta {
            mode: 0o644,
            size,
            ..EntryMeta::default()
        };
        Change::Add {
            path: path.into(),
            kind: FileKind::File,
            meta,
            link: None,
            fact: None,
        }
    }
    fn dir(path: &str) -> Change<&'static str> {
        let meta = EntryMeta {
            mode: 0o700,
            ..EntryMeta::default()
        };
        Change::Add {
            path: path.into(),
            kind: FileKind::Dir,
            meta,
            link: None,
            fact: None,
        }
    }
    fn symlink(path: &str, target: &str) -> Change<&'static str> {
        let meta = EntryMeta {
            mode: 0o777,
            ..EntryMeta::default()
        };
        Change::Add {
            path: path.into(),
            kind: FileKind::Symlink,
            meta,
            link: Some(target.into()),
            fact: None,
        }
    }
    fn paths(tree: &Tree<&'static str>) -> Vec<String> {
        tree.entries()
            .into_iter()
            .map(|(p, _)| String::from_utf8(p).unwrap())
            .collect()
    }

    #[test]
    fn whiteouts_hide_lower_layers_only() {
        let mut tree = Tree::new();
        tree.apply(0, vec![file("a/x", 10), file("a/y", 5)])
            .unwrap();
        // The layer both deletes `a/x` from below and writes `a/z`; tar order puts the
        // whiteout last, which must not matter.
        tree.apply(
            1,
            vec![file("a/z", 1), Change::Whiteout { path: "a/x".into() }],
        )
        .unwrap();
        assert_eq!(paths(&tree), ["", "a", "a/y", "a/z"]);
        assert_eq!(tree.layer_stats()[0].wasted_bytes, 10);
        assert_eq!(tree.layer_stats()[1].added_bytes, 1);
    }

    #[test]
    fn opaque_directories_drop_lower_children_and_keep_their_own() {
        let mut tree = Tree::new();
        tree.apply(0, vec![dir("d"), file("d/old", 3), file("keep", 1)])
            .unwrap();
        tree.apply(
            1,
            vec![
                dir("d"),
                file("d/new", 2),
                Change::Opaque { dir: "d".into() },
            ],
        )
        .unwrap();
        assert_eq!(paths(&tree), ["", "d", "d/new", "keep"]);
        assert_eq!(tree.entry(tree.resolve(b"d", false).unwrap()).layer, 1);
    }

    #[test]
    fn hardlinks_share_the_inode_of_an_earlier_layers_file() {
        let mut tree = Tree::new();
        tree.apply(0, vec![file("bin/a", 7)]).unwrap();
        let meta = EntryMeta::default();
        tree.apply(
            1,
            vec![Change::Hardlink {
                path: "bin/b".into(),
                target: "bin/a".into(),
                meta,
            }],
        )
        .unwrap();
        let b = tree.entry(tree.resolve(b"bin/b", false).unwrap());
        assert_eq!(
            (b.kind, b.meta.size, b.nlink, b.layer),
            (FileKind::File, 7, 2, 1)
        );
        // Overwriting the original leaves the link with the old content.
        tree.apply(2, vec![file("bin/a", 1)]).unwrap();
        assert_eq!(
            tree.entry(tree.resolve(b"bin/b", false).unwrap()).meta.size,
            7
        );
        assert_eq!(tree.entry(tree.resolve(b"bin/b", false).unwrap()).nlink, 1);
    }

    #[test]
    fn a_hardlink_to_nothing_is_an_error() {
        let mut tree: Tree<&str> = Tree::new();
        let meta = EntryMeta::default();
        let err = tree
            .apply(
                0,
                vec![Change::Hardlink {
                    path: "x".into(),
                    target: "nope".into(),
                    meta,
                }],
            )
            .unwrap_err();
        assert!(err.to_string().contains("/nope does not exist"), "{err}");
    }

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let mut tree = Tree::new();
        tree.apply(
            0,
            vec![
                dir("usr/lib64"),
                file("usr/lib64/ld.so", 1),
                symlink("lib64", "usr/lib64"),
                symlink("up", "../../../../usr"),
                symlink("abs", "/lib64/ld.so"),
            ],
        )
        .unwrap();
        let ld = tree.resolve(b"usr/lib64/ld.so", false).unwrap();
        assert_eq!(tree.resolve(b"/lib64/ld.so", true), Ok(ld));
        assert_eq!(tree.resolve(b"abs", true), Ok(ld));
        assert_eq!(tree.resolve(b"up/lib64/ld.so", true), Ok(ld));
        assert_ne!(tree.resolve(b"abs", false), Ok(ld));
    }

    #[test]
    fn canonical_paths_follow_every_link() {
        let mut tree = Tree::new();
        tree.apply(
            0,
            vec![
                dir("usr/lib/x86_64-linux-gnu"),
                symlink("lib", "usr/lib"),
                symlink("usr/lib/x86_64-linux-gnu/libc.so", "../../../lib/real.so"),
            ],
        )
        .unwrap();
        tree.apply(1, vec![file("usr/lib/real.so", 1)]).unwrap();
        assert_eq!(
            tree.canonical(b"/lib/x86_64-linux-gnu/libc.so").unwrap(),
            b"usr/lib/real.so"
        );
        assert_eq!(
            tree.canonical(b"lib/x86_64-linux-gnu/../x86_64-linux-gnu")
                .unwrap(),
            b"usr/lib/x86_64-linux-gnu"
        );
    }

    #[test]
    fn symlink_loops_end_in_eloop() {
        let mut tree = Tree::new();
        tree.apply(0, vec![symlink("a", "b"), symlink("b", "a")])
            .unwrap();
        assert_eq!(tree.resolve(b"a", true), Err(Lookup::TooManyLinks));
        assert!(tree.resolve(b"a", false).is_ok());
    }

    #[test]
    fn entries_written_through_a_symlinked_parent_land_in_its_target() {
        let mut tree = Tree::new();
        tree.apply(0, vec![dir("usr/lib"), symlink("lib", "usr/lib")])
            .unwrap();
        tree.apply(1, vec![file("lib/libc.so", 4)]).unwrap();
        assert!(tree.resolve(b"usr/lib/libc.so", false).is_ok());
        assert_eq!(
            tree.entry(tree.resolve(b"lib", false).unwrap()).kind,
            FileKind::Symlink
        );
    }

    #[test]
    fn implicit_parents_are_created_and_replacing_a_directory_wastes_its_files() {
        let mut tree = Tree::new();
        tree.apply(0, vec![file("a/b/c", 4)]).unwrap();
        let b = tree.entry(tree.resolve(b"a/b", false).unwrap());
        assert_eq!((b.kind, b.meta.mode), (FileKind::Dir, 0o755));
        tree.apply(1, vec![file("a", 2)]).unwrap();
        assert_eq!(paths(&tree), ["", "a"]);
        assert_eq!(tree.layer_stats()[0].wasted_bytes, 4);
    }
}
