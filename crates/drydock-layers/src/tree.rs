use crate::changes::ChangeBuffer;
use crate::error::ApplyError;
use crate::names::{KeyedMap, NONE, Names, map_heap, pair_key};
use crate::path;
use crate::walk::{Change, EntryMeta, FileKind};

/// Linux's limit on symlinks followed while resolving one path (`MAXSYMLINKS`).
pub const MAX_SYMLINK_HOPS: u32 = 40;

/// A node of the in-memory filesystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(u32);

/// One name in one directory. 24 bytes: a tree of a million files is a few tens of megabytes.
#[derive(Debug, Clone, Copy)]
struct Node {
    /// The name in its directory (`Tree::names`).
    name: u32,
    /// The layer whose tar entry last wrote this node.
    layer: u32,
    /// Metadata (`Tree::inodes`): shared by hardlinked regular files, one per node otherwise.
    inode: u32,
    /// A directory's newest child, then each child's older sibling: a list that may still
    /// hold children since unlinked ([`DEAD`]).
    first_child: u32,
    next_sibling: u32,
    kind: FileKind,
    /// [`OWNS_BYTES`], [`DEAD`], [`INDEXED`].
    flags: u8,
    /// How many children a directory had linked in, up to `u16::MAX`.
    inserted: u16,
}

/// The node's tar entry carried the file's bytes (a hardlink does not).
const OWNS_BYTES: u8 = 1;
/// Unlinked from its directory (deleted, replaced, hidden).
const DEAD: u8 = 1 << 1;
/// A directory whose children are in `Tree::index`; the others are looked up along their
/// list, which holds at most [`SMALL_DIR`] nodes.
const INDEXED: u8 = 1 << 2;
const SMALL_DIR: u16 = 16;

/// An entry's metadata, compact: what does not fit (ids or times past `u32`, mode bits past
/// the permission bits, device numbers, capabilities) is kept whole in `Tree::wide`.
#[derive(Debug, Clone, Copy)]
struct Inode {
    /// Permission bits, or [`WIDE`] when the metadata is in `Tree::wide`.
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: u32,
    size: u64,
    links: u32,
    /// A regular file's fact (`Tree::facts`), a symlink's target (`Tree::links`), or [`NONE`].
    data: u32,
}

/// `Inode::mode` when the metadata lives in `Tree::wide`.
const WIDE: u32 = 1 << 31;

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
    pub meta: EntryMeta,
    /// A symlink's target as written.
    pub link: Option<&'a [u8]>,
    pub layer: u32,
    pub fact: Option<&'a F>,
    /// Hardlink count of a regular file (1 for everything else).
    pub nlink: u32,
}

/// The image's filesystem, rebuilt in memory by applying layers in order. `F` is the fact a
/// [`crate::ContentHook`] attached to regular files.
///
/// Nodes and metadata are fixed-size records in two arenas, names are interned once per tree,
/// and a directory's children are a list of nodes, which one hash index of (directory, name)
/// speeds up for the directories with more than [`SMALL_DIR`] of them: 56 to 80 bytes per
/// entry. A clone goes on from where this one is (more layers may be applied to it).
#[derive(Debug, Clone)]
pub struct Tree<F> {
    nodes: Vec<Node>,
    inodes: Vec<Inode>,
    names: Names,
    /// (directory, name) → the child linked there now ([`pair_key`]).
    index: KeyedMap<u64, u32>,
    /// Metadata that does not fit an [`Inode`], by inode.
    wide: KeyedMap<u32, EntryMeta>,
    facts: Vec<F>,
    links: Vec<Box<[u8]>>,
    layers: Vec<LayerStats>,
    /// The directories the last parent path of an added entry resolved to.
    parents: ParentCache,
}

/// The last parent directory an entry was added under, and the directory each of its leading
/// components resolved to: tar entries come in directory order, so the next entry's parent
/// shares most of them, and only the components past the shared prefix are looked up.
///
/// An entry `(end, dir)` means that `path[..end]` (a whole number of components) resolves,
/// following symlinks, to the directory `dir`. Nothing but unlinking a node can change what a
/// path that resolved resolves to (a lookup finds the one live child of a name, a new child
/// is only linked where the name had none, and node kinds and symlink targets never change),
/// so [`Tree::unlink`] empties the cache; to be safe it is also emptied by every change that
/// is not a plain file or directory, and when a layer starts.
#[derive(Debug, Default, Clone)]
struct ParentCache {
    path: Vec<u8>,
    dirs: Vec<(usize, NodeId)>,
    /// Never use the cache (tests compare the tree built with it and without).
    bypass: bool,
}

impl ParentCache {
    fn clear(&mut self) {
        self.path.clear();
        self.dirs.clear();
    }
}

/// The components still to resolve: what is left of the path and of each symlink target being
/// followed, the innermost last. Every stored segment is non-empty and starts with a
/// component (no `/`). Each symlink followed adds at most one segment, so there are at most
/// [`MAX_SYMLINK_HOPS`] + 1.
struct Pending<'a> {
    segments: [&'a [u8]; MAX_SYMLINK_HOPS as usize + 1],
    len: usize,
}

fn trim_slashes(path: &[u8]) -> &[u8] {
    let start = path.iter().position(|&b| b != b'/').unwrap_or(path.len());
    &path[start..]
}

impl<'a> Pending<'a> {
    fn new() -> Self {
        Self {
            segments: [&[]; MAX_SYMLINK_HOPS as usize + 1],
            len: 0,
        }
    }

    /// Puts the components of `path` before the pending ones; false when there is no room.
    fn push(&mut self, path: &'a [u8]) -> bool {
        let path = trim_slashes(path);
        if path.is_empty() {
            return true;
        }
        let Some(slot) = self.segments.get_mut(self.len) else {
            return false;
        };
        *slot = path;
        self.len += 1;
        true
    }

    /// The next component (never empty).
    fn pop(&mut self) -> Option<&'a [u8]> {
        let top = self.segments.get_mut(self.len.checked_sub(1)?)?;
        let segment: &'a [u8] = top;
        let end = segment
            .iter()
            .position(|&b| b == b'/')
            .unwrap_or(segment.len());
        let rest = trim_slashes(&segment[end..]);
        *top = rest;
        if rest.is_empty() {
            self.len -= 1;
        }
        Some(&segment[..end])
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The directories of a resolution from the root down, the root first: on the stack for the
/// usual depths, on the heap past them.
struct Ancestors {
    inline: [NodeId; 32],
    len: usize,
    spill: Vec<NodeId>,
}

impl Ancestors {
    fn new() -> Self {
        Self {
            inline: [ROOT; 32],
            len: 1,
            spill: Vec::new(),
        }
    }

    fn last(&self) -> NodeId {
        if self.len > self.inline.len() {
            self.spill.last().copied().unwrap_or(ROOT)
        } else {
            self.inline
                .get(self.len.wrapping_sub(1))
                .copied()
                .unwrap_or(ROOT)
        }
    }

    fn push(&mut self, id: NodeId) {
        match self.inline.get_mut(self.len) {
            Some(slot) => *slot = id,
            None => self.spill.push(id),
        }
        self.len += 1;
    }

    /// Back to the parent; the root stays.
    fn pop(&mut self) -> bool {
        if self.len <= 1 {
            return false;
        }
        if self.len > self.inline.len() {
            self.spill.pop();
        }
        self.len -= 1;
        true
    }

    fn back_to_root(&mut self) {
        self.len = 1;
        self.spill.clear();
    }
}

const ROOT: NodeId = NodeId(0);

fn root_meta() -> EntryMeta {
    EntryMeta {
        mode: 0o755,
        ..EntryMeta::default()
    }
}

fn id(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(NONE)
}

impl<F> Default for Tree<F> {
    fn default() -> Self {
        Self::new()
    }
}

/// The changes of a tree's first layer, applied one by one as its walk yields them: below the
/// first layer there is nothing to hide, so whiteouts and opaque markers only count, and no
/// change list is held. From [`Tree::first_layer`].
#[derive(Debug)]
pub struct FirstLayer<'t, F> {
    tree: &'t mut Tree<F>,
    layer: u32,
}

impl<F> FirstLayer<'_, F> {
    /// Applies the next change of the layer, in tar order.
    pub fn apply(&mut self, change: Change<F>) -> Result<(), ApplyError> {
        self.tree.layers[self.layer as usize].entries += 1;
        self.tree.add_change(self.layer, change)
    }
}

impl<F> Tree<F> {
    /// The heap bytes the tree takes (an estimate), with `fact_heap` the heap bytes of one
    /// fact beyond its own size.
    pub fn heap_size(&self, fact_heap: impl Fn(&F) -> usize) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.inodes.capacity() * std::mem::size_of::<Inode>()
            + self.names.heap_size()
            + map_heap(&self.index)
            + map_heap(&self.wide)
            + self.facts.capacity() * std::mem::size_of::<F>()
            + self.facts.iter().map(fact_heap).sum::<usize>()
            + self.links.capacity() * std::mem::size_of::<Box<[u8]>>()
            + self.links.iter().map(|l| l.len()).sum::<usize>()
            + self.layers.capacity() * std::mem::size_of::<LayerStats>()
            + self.parents.path.capacity()
            + self.parents.dirs.capacity() * std::mem::size_of::<(usize, NodeId)>()
    }

    pub fn new() -> Self {
        let mut names = Names::default();
        let root_name = names.intern(b"");
        let mut tree = Self {
            nodes: Vec::new(),
            inodes: Vec::new(),
            names,
            index: KeyedMap::default(),
            wide: KeyedMap::default(),
            facts: Vec::new(),
            links: Vec::new(),
            layers: Vec::new(),
            parents: ParentCache::default(),
        };
        let inode = tree.new_inode(root_meta(), NONE);
        tree.nodes.push(Node {
            name: root_name,
            layer: 0,
            inode,
            first_child: NONE,
            next_sibling: NONE,
            kind: FileKind::Dir,
            flags: 0,
            inserted: 0,
        });
        tree
    }

    pub fn root(&self) -> NodeId {
        ROOT
    }

    pub fn layer_stats(&self) -> &[LayerStats] {
        &self.layers
    }

    /// Applies the first layer as it streams, when no layer was applied yet (else `None`: the
    /// layer's whiteouts must apply before its entries, so its changes must be held first).
    pub fn first_layer(&mut self, layer: u32) -> Option<FirstLayer<'_, F>> {
        if !self.layers.is_empty() {
            return None;
        }
        self.stats_for(layer);
        self.parents.clear();
        Some(FirstLayer { tree: self, layer })
    }

    fn stats_for(&mut self, layer: u32) {
        let index = layer as usize;
        if self.layers.len() <= index {
            self.layers.resize(index + 1, LayerStats::default());
        }
    }

    /// Applies one layer's changes on top of the layers applied before it. Whiteouts and opaque
    /// markers apply first, because they only ever hide what lower layers wrote; then entries in
    /// tar order, the way runtimes extract them.
    pub fn apply(&mut self, layer: u32, changes: Vec<Change<F>>) -> Result<(), ApplyError> {
        self.stats_for(layer);
        self.parents.clear();
        self.layers[layer as usize].entries += changes.len() as u64;
        for change in &changes {
            self.hide(change);
        }
        for change in changes {
            self.add_change(layer, change)?;
        }
        Ok(())
    }

    /// [`Tree::apply`] for changes held compactly.
    pub fn apply_buffer(&mut self, layer: u32, changes: ChangeBuffer<F>) -> Result<(), ApplyError> {
        self.stats_for(layer);
        self.parents.clear();
        self.layers[layer as usize].entries += changes.len() as u64;
        for change in changes.iter() {
            self.hide(&change);
        }
        for change in changes.into_changes() {
            self.add_change(layer, change)?;
        }
        Ok(())
    }

    /// The hiding half of a change: a whiteout or an opaque marker.
    fn hide<G>(&mut self, change: &Change<G>) {
        if matches!(change, Change::Whiteout { .. } | Change::Opaque { .. }) {
            self.parents.clear();
        }
        match change {
            Change::Whiteout { path } => {
                let (parent, name) = path::split_last(path);
                if let Ok(dir) = self.resolve(parent, true)
                    && let Some(child) = self.child(dir, name)
                {
                    self.detach(dir, name, child);
                }
            }
            Change::Opaque { dir } => {
                if let Ok(dir) = self.resolve(dir, true)
                    && self.node(dir).kind == FileKind::Dir
                {
                    for child in self.live_children(dir) {
                        let name = self.node(child).name;
                        self.unlink(dir, name, child);
                    }
                    self.nodes[dir.0 as usize].first_child = NONE;
                }
            }
            Change::Add { .. } | Change::Hardlink { .. } => {}
        }
    }

    /// The adding half of a change: an entry or a hardlink.
    fn add_change(&mut self, layer: u32, change: Change<F>) -> Result<(), ApplyError> {
        if !matches!(
            change,
            Change::Add {
                kind: FileKind::File | FileKind::Dir,
                ..
            }
        ) {
            self.parents.clear();
        }
        match change {
            Change::Add {
                path,
                kind,
                meta,
                link,
                fact,
            } => self.add(layer, &path, kind, meta, link, fact),
            Change::Hardlink { path, target, .. } => self.hardlink(layer, &path, &target),
            Change::Whiteout { .. } | Change::Opaque { .. } => Ok(()),
        }
    }

    fn node(&self, id: NodeId) -> Node {
        self.nodes[id.0 as usize]
    }

    fn new_inode(&mut self, meta: EntryMeta, data: u32) -> u32 {
        let id = id(self.inodes.len());
        let inode = self.compact(id, meta, data, 1);
        self.inodes.push(inode);
        id
    }

    /// `meta` as an [`Inode`] numbered `id`, what does not fit kept in `wide` (which holds
    /// nothing for `id` yet: a new inode, or one [`Tree::set_meta`] cleared).
    fn compact(&mut self, id: u32, meta: EntryMeta, data: u32, links: u32) -> Inode {
        let fits = |n: u64| u32::try_from(n).ok();
        let size = meta.size;
        match (fits(meta.uid), fits(meta.gid), fits(meta.mtime)) {
            (Some(uid), Some(gid), Some(mtime))
                if meta.mode & !0o7777 == 0
                    && meta.device.is_none()
                    && meta.capability.is_none() =>
            {
                Inode {
                    mode: meta.mode,
                    uid,
                    gid,
                    mtime,
                    size,
                    links,
                    data,
                }
            }
            _ => {
                self.wide.insert(id, meta);
                Inode {
                    mode: WIDE,
                    uid: 0,
                    gid: 0,
                    mtime: 0,
                    size,
                    links,
                    data,
                }
            }
        }
    }

    /// Replaces the metadata of inode `id` (a directory declared again, the root).
    fn set_meta(&mut self, id: u32, meta: EntryMeta) {
        let old = self.inodes[id as usize];
        // What the inode kept in `wide` is replaced, or no longer needed.
        self.wide.remove(&id);
        self.inodes[id as usize] = self.compact(id, meta, old.data, old.links);
    }

    fn meta(&self, id: u32) -> EntryMeta {
        let inode = &self.inodes[id as usize];
        if inode.mode == WIDE
            && let Some(meta) = self.wide.get(&id)
        {
            return EntryMeta {
                size: inode.size,
                ..meta.clone()
            };
        }
        EntryMeta {
            mode: inode.mode,
            uid: u64::from(inode.uid),
            gid: u64::from(inode.gid),
            mtime: u64::from(inode.mtime),
            size: inode.size,
            device: None,
            capability: None,
        }
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
            let root = self.node(ROOT);
            self.set_meta(root.inode, meta);
            self.nodes[ROOT.0 as usize].layer = layer;
            return Ok(());
        }
        let (parent, name) = path::split_last(path);
        let dir = self
            .make_dirs(parent, layer)
            .map_err(|r| ApplyError::new(path, r))?;
        if kind == FileKind::File {
            self.layers[layer as usize].added_bytes += meta.size;
        }
        let name_id = self.names.intern(name);
        if let Some(existing) = self.child_named(dir, name_id) {
            let node = self.node(existing);
            if kind == FileKind::Dir && node.kind == FileKind::Dir {
                // Re-declaring a directory updates its metadata and keeps its children.
                self.set_meta(node.inode, meta);
                self.nodes[existing.0 as usize].layer = layer;
                self.parents_descend(parent, dir, name, existing);
                return Ok(());
            }
            self.unlink(dir, name_id, existing);
        }
        let data = match (kind, fact, link) {
            (FileKind::File, Some(fact), _) => {
                self.facts.push(fact);
                id(self.facts.len() - 1)
            }
            (FileKind::Symlink, _, link) => {
                self.links.push(link.unwrap_or_default().into());
                id(self.links.len() - 1)
            }
            _ => NONE,
        };
        let inode = self.new_inode(meta, data);
        let node = self.insert_named(dir, name_id, kind, inode, layer, kind == FileKind::File);
        if kind == FileKind::Dir {
            self.parents_descend(parent, dir, name, node);
        }
        Ok(())
    }

    fn hardlink(&mut self, layer: u32, path: &[u8], target: &[u8]) -> Result<(), ApplyError> {
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
        let source = self.node(source);
        let inode = match source.kind {
            FileKind::Dir => {
                return Err(ApplyError::new(path, "a hardlink to a directory"));
            }
            // Regular files share the inode: content, metadata, facts and the link count.
            FileKind::File => {
                self.inodes[source.inode as usize].links += 1;
                source.inode
            }
            // Anything else is a copy of the node, target and metadata.
            _ => {
                let copy = self.inodes[source.inode as usize];
                let new = id(self.inodes.len());
                if let Some(meta) = self.wide.get(&source.inode).cloned() {
                    self.wide.insert(new, meta);
                }
                self.inodes.push(copy);
                new
            }
        };
        if let Some(existing) = self.child(dir, name) {
            self.detach(dir, name, existing);
        }
        self.insert(dir, name, source.kind, inode, layer, false);
        Ok(())
    }

    fn insert(
        &mut self,
        dir: NodeId,
        name: &[u8],
        kind: FileKind,
        inode: u32,
        layer: u32,
        owns_bytes: bool,
    ) -> NodeId {
        let name = self.names.intern(name);
        self.insert_named(dir, name, kind, inode, layer, owns_bytes)
    }

    /// [`Tree::insert`] by interned name.
    fn insert_named(
        &mut self,
        dir: NodeId,
        name: u32,
        kind: FileKind,
        inode: u32,
        layer: u32,
        owns_bytes: bool,
    ) -> NodeId {
        let id = id(self.nodes.len());
        let mut node = Node {
            name,
            layer,
            inode,
            first_child: NONE,
            next_sibling: NONE,
            kind,
            flags: if owns_bytes { OWNS_BYTES } else { 0 },
            inserted: 0,
        };
        let parent = &mut self.nodes[dir.0 as usize];
        if parent.kind == FileKind::Dir {
            node.next_sibling = parent.first_child;
            parent.first_child = id;
            parent.inserted = parent.inserted.saturating_add(1);
            let (indexed, inserted) = (parent.flags & INDEXED != 0, parent.inserted);
            self.nodes.push(node);
            if indexed {
                self.index.insert(pair_key(dir.0, name), id);
            } else if inserted > SMALL_DIR {
                // Grown past a short list: index every child from now on.
                for child in self.live_children(dir) {
                    let name = self.node(child).name;
                    self.index.insert(pair_key(dir.0, name), child.0);
                }
                self.nodes[dir.0 as usize].flags |= INDEXED;
            }
        } else {
            self.nodes.push(node);
        }
        NodeId(id)
    }

    fn child(&self, dir: NodeId, name: &[u8]) -> Option<NodeId> {
        if self.node(dir).kind != FileKind::Dir {
            return None;
        }
        self.child_named(dir, self.names.find(name)?)
    }

    /// [`Tree::child`] by interned name.
    fn child_named(&self, dir: NodeId, name: u32) -> Option<NodeId> {
        let parent = self.node(dir);
        if parent.kind != FileKind::Dir {
            return None;
        }
        if parent.flags & INDEXED != 0 {
            return self.index.get(&pair_key(dir.0, name)).map(|&id| NodeId(id));
        }
        let mut next = parent.first_child;
        while next != NONE {
            let node = &self.nodes[next as usize];
            if node.name == name && node.flags & DEAD == 0 {
                return Some(NodeId(next));
            }
            next = node.next_sibling;
        }
        None
    }

    /// The children linked in `dir` now, newest first.
    fn live_children(&self, dir: NodeId) -> Vec<NodeId> {
        self.live_children_iter(dir).collect()
    }

    /// The children linked in `dir` now, newest linked first.
    fn live_children_iter(&self, dir: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        let mut next = self.node(dir).first_child;
        std::iter::from_fn(move || {
            while next != NONE {
                let id = next;
                let node = &self.nodes[id as usize];
                next = node.next_sibling;
                if node.flags & DEAD == 0 {
                    return Some(NodeId(id));
                }
            }
            None
        })
    }

    /// Unlinks `name` from `dir`, charging the bytes it held to the layers that wrote them.
    fn detach(&mut self, dir: NodeId, name: &[u8], child: NodeId) {
        if let Some(name) = self.names.find(name) {
            self.unlink(dir, name, child);
        }
    }

    /// [`Tree::detach`] by interned name.
    fn unlink(&mut self, dir: NodeId, name: u32, child: NodeId) {
        // What a cached parent path resolves to may be under the node, or reached through it.
        self.parents.clear();
        self.nodes[child.0 as usize].flags |= DEAD;
        if self.node(dir).flags & INDEXED != 0
            && self.index.get(&pair_key(dir.0, name)) == Some(&child.0)
        {
            self.index.remove(&pair_key(dir.0, name));
        }
        let mut pending = vec![child];
        while let Some(id) = pending.pop() {
            let node = self.node(id);
            match node.kind {
                FileKind::Dir => {
                    // Nothing can reach these again: their index entries go too.
                    let indexed = node.flags & INDEXED != 0;
                    for grandchild in self.live_children(id) {
                        if indexed {
                            let name = self.node(grandchild).name;
                            self.index.remove(&pair_key(id.0, name));
                        }
                        pending.push(grandchild);
                    }
                }
                FileKind::File => {
                    let inode = &mut self.inodes[node.inode as usize];
                    inode.links = inode.links.saturating_sub(1);
                    if node.flags & OWNS_BYTES != 0 {
                        self.layers[node.layer as usize].wasted_bytes += inode.size;
                    }
                }
                _ => {}
            }
        }
    }

    /// `parent` resolved from the cache of the last parent, when its components past the
    /// cached prefix are plain directories (no symlink, `.`, `..`, empty or missing component,
    /// which [`Tree::make_dirs`] resolves from the root). The cache then holds `parent`.
    fn cached_parent(&mut self, parent: &[u8]) -> Option<NodeId> {
        if self.parents.bypass {
            return None;
        }
        let mut parents = std::mem::take(&mut self.parents);
        let found = self.parent_from(&mut parents, parent);
        self.parents = parents;
        found
    }

    fn parent_from(&self, parents: &mut ParentCache, parent: &[u8]) -> Option<NodeId> {
        let common = path::common_prefix(parent, &parents.path);
        let reusable = parents
            .dirs
            .iter()
            .take_while(|&&(end, _)| end <= common && (end == parent.len() || parent[end] == b'/'))
            .count();
        parents.dirs.truncate(reusable);
        parents.path.clear();
        parents.path.extend_from_slice(parent);
        let (mut current, mut start) = match parents.dirs.last() {
            Some(&(end, dir)) => (dir, end + 1),
            None => (ROOT, 0),
        };
        while start < parent.len() {
            let end = parent[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(parent.len(), |i| start + i);
            let component = &parent[start..end];
            if matches!(component, b"" | b"." | b"..") {
                return None;
            }
            let child = self.child(current, component)?;
            if self.node(child).kind != FileKind::Dir {
                return None;
            }
            parents.dirs.push((end, child));
            current = child;
            start = end + 1;
        }
        Some(current)
    }

    /// Records that `parent`, resolved from the root, is the directory `dir`.
    fn remember_parent(&mut self, parent: &[u8], dir: NodeId) {
        let cache = &mut self.parents;
        if cache.bypass {
            return;
        }
        if cache.path.as_slice() != parent {
            cache.clear();
            cache.path.extend_from_slice(parent);
        }
        if cache.dirs.last().is_none_or(|&(end, _)| end < parent.len()) {
            cache.dirs.push((parent.len(), dir));
        }
    }

    /// After the directory `child` was linked (or declared again) as `name` in `dir`, the
    /// directory `parent` resolves to: the cache goes down into it, for the entries under it.
    fn parents_descend(&mut self, parent: &[u8], dir: NodeId, name: &[u8], child: NodeId) {
        let cache = &mut self.parents;
        if cache.bypass || cache.path.as_slice() != parent {
            return;
        }
        let at_parent = match cache.dirs.last() {
            Some(&(end, id)) => end == parent.len() && id == dir,
            None => parent.is_empty() && dir == ROOT,
        };
        if !at_parent {
            return;
        }
        if !cache.path.is_empty() {
            cache.path.push(b'/');
        }
        cache.path.extend_from_slice(name);
        cache.dirs.push((cache.path.len(), child));
    }

    /// Resolves `parent` to a directory, creating missing components as the runtime does
    /// (mode 0755, root-owned), following symlinks inside the image root.
    fn make_dirs(&mut self, parent: &[u8], layer: u32) -> Result<NodeId, String> {
        if let Some(dir) = self.cached_parent(parent) {
            return Ok(dir);
        }
        // Each round creates one missing directory; a path has at most PATH_MAX of them.
        for _ in 0..=path::MAX_PATH {
            match self.resolve(parent, true) {
                Ok(id) => {
                    return match self.node(id).kind {
                        FileKind::Dir => {
                            self.remember_parent(parent, id);
                            Ok(id)
                        }
                        _ => Err(format!("{} is not a directory", path::display(parent))),
                    };
                }
                Err(Lookup::Missing { parent: dir, name }) => {
                    let inode = self.new_inode(root_meta(), NONE);
                    self.insert(dir, &name, FileKind::Dir, inode, layer, false);
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
        self.walk(path, follow_final, None)
    }

    /// The path `path` really names: symlinks followed (all of them), `.` and `..` folded,
    /// as `realpath(3)` inside the image. Normalised, without a leading `/`.
    pub fn canonical(&self, path: &[u8]) -> Result<Vec<u8>, Lookup> {
        let mut names = Vec::new();
        self.walk(path, true, Some(&mut names))?;
        Ok(names.join(&b'/'))
    }

    /// The resolution behind [`Tree::resolve`] and [`Tree::canonical`]: the node reached, and
    /// into `names` the names of the real path to it. Allocates nothing on the way (but for
    /// paths deeper than 32 directories, and the names asked for).
    fn walk<'a>(
        &'a self,
        path: &'a [u8],
        follow_final: bool,
        mut names: Option<&mut Vec<&'a [u8]>>,
    ) -> Result<NodeId, Lookup> {
        let mut ancestors = Ancestors::new();
        let mut pending = Pending::new();
        pending.push(path);
        let mut hops = 0;
        while let Some(component) = pending.pop() {
            match component {
                b"." => continue,
                b".." => {
                    if ancestors.pop()
                        && let Some(names) = names.as_deref_mut()
                    {
                        names.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let current = ancestors.last();
            if self.node(current).kind != FileKind::Dir {
                return Err(Lookup::NotADirectory);
            }
            let Some(child) = self.child(current, component) else {
                return Err(Lookup::Missing {
                    parent: current,
                    name: component.into(),
                });
            };
            let node = self.node(child);
            if node.kind == FileKind::Symlink && (!pending.is_empty() || follow_final) {
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(Lookup::TooManyLinks);
                }
                let target = self.link_of(node);
                if target.starts_with(b"/") {
                    ancestors.back_to_root();
                    if let Some(names) = names.as_deref_mut() {
                        names.clear();
                    }
                }
                if !pending.push(target) {
                    return Err(Lookup::TooManyLinks);
                }
                continue;
            }
            ancestors.push(child);
            if let Some(names) = names.as_deref_mut() {
                names.push(component);
            }
        }
        Ok(ancestors.last())
    }

    fn link_of(&self, node: Node) -> &[u8] {
        let data = self.inodes[node.inode as usize].data;
        self.links.get(data as usize).map_or(&[], |t| &t[..])
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
            let node = self.node(id);
            match node.kind {
                FileKind::Dir => pending.extend(self.live_children(id)),
                FileKind::File if node.flags & OWNS_BYTES != 0 => {
                    total += self.inodes[node.inode as usize].size;
                }
                _ => {}
            }
        }
        total
    }

    /// Describes a node.
    pub fn entry(&self, id: NodeId) -> EntryView<'_, F> {
        let node = self.node(id);
        let inode = &self.inodes[node.inode as usize];
        let (link, fact, nlink) = match node.kind {
            FileKind::File => (None, self.facts.get(inode.data as usize), inode.links),
            FileKind::Symlink => (Some(self.link_of(node)), None, 1),
            _ => (None, None, 1),
        };
        EntryView {
            kind: node.kind,
            meta: self.meta(node.inode),
            link,
            layer: node.layer,
            fact,
            nlink,
        }
    }

    /// The live children of `dir` with their names, in byte order of names.
    fn sorted_children(&self, dir: NodeId) -> Vec<(&[u8], NodeId)> {
        let mut children: Vec<(&[u8], NodeId)> = self.children_unsorted(dir).collect();
        children.sort_unstable_by(|a, b| a.0.cmp(b.0));
        children
    }

    /// The entries directly in the directory `dir` (not following a symlink `dir` itself),
    /// in byte order of names; empty for anything but a directory.
    pub fn children(&self, dir: NodeId) -> Vec<(&[u8], NodeId)> {
        if self.node(dir).kind != FileKind::Dir {
            return Vec::new();
        }
        self.sorted_children(dir)
    }

    /// [`Tree::children`] in no particular order (newest linked first), without sorting or
    /// collecting them: for a walk of every entry that does not need the order.
    pub fn children_unsorted(&self, dir: NodeId) -> impl Iterator<Item = (&[u8], NodeId)> + '_ {
        let dir = (self.node(dir).kind == FileKind::Dir).then_some(dir);
        dir.into_iter()
            .flat_map(|dir| self.live_children_iter(dir))
            .map(|child| (self.names.get(self.node(child).name), child))
    }

    /// Every entry of the final filesystem with its normalised path, the root first, then
    /// depth first in byte order of names.
    pub fn entries(&self) -> Vec<(Vec<u8>, NodeId)> {
        let mut out = Vec::new();
        let mut stack = vec![(Vec::new(), ROOT)];
        while let Some((path, id)) = stack.pop() {
            if self.node(id).kind == FileKind::Dir {
                for (name, child) in self.sorted_children(id).into_iter().rev() {
                    let mut child_path = Vec::with_capacity(path.len() + 1 + name.len());
                    child_path.extend_from_slice(&path);
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

    #[test]
    fn large_directories_are_indexed_and_read_the_same() {
        let mut tree = Tree::new();
        // 40 files: the directory outgrows its list and is indexed half way.
        let names: Vec<String> = (0..40).map(|i| format!("d/f{i:02}")).collect();
        tree.apply(0, names.iter().map(|n| file(n, 1)).collect())
            .unwrap();
        let mut layer = vec![
            Change::Whiteout {
                path: b"d/f03".to_vec(),
            },
            file("d/f05", 2),
            file("d/new", 3),
        ];
        layer.extend((0..3).map(|i| file(&format!("small/x{i}"), 1)));
        tree.apply(1, layer).unwrap();
        tree.apply(
            2,
            vec![
                Change::Whiteout {
                    path: b"small/x1".to_vec(),
                },
                file("small/x2", 9),
            ],
        )
        .unwrap();
        let listed = paths(&tree);
        assert_eq!(listed.len(), 1 + 1 + 39 + 1 + 1 + 2, "{listed:?}");
        assert!(!listed.contains(&"d/f03".to_string()));
        assert!(listed.contains(&"d/new".to_string()));
        assert_eq!(
            tree.entry(tree.resolve(b"d/f05", false).unwrap()).meta.size,
            2
        );
        assert_eq!(
            tree.entry(tree.resolve(b"small/x2", false).unwrap())
                .meta
                .size,
            9
        );
        assert!(tree.resolve(b"small/x1", false).is_err());
        let d = tree.resolve(b"d", false).unwrap();
        let children: Vec<&[u8]> = tree.children(d).into_iter().map(|(n, _)| n).collect();
        let mut sorted = children.clone();
        sorted.sort();
        assert_eq!(children, sorted);
        // The same children unsorted, dead ones (`d/f03`, the old `d/f05`) left out.
        for dir in [d, tree.resolve(b"small", false).unwrap(), tree.root()] {
            let mut unsorted: Vec<(&[u8], NodeId)> = tree.children_unsorted(dir).collect();
            unsorted.sort();
            assert_eq!(unsorted, tree.children(dir));
        }
        let file = tree.resolve(b"d/new", false).unwrap();
        assert_eq!(tree.children_unsorted(file).count(), 0);
        assert_eq!(tree.layer_stats()[0].wasted_bytes, 2);
        assert_eq!(tree.layer_stats()[1].wasted_bytes, 2);
    }

    #[test]
    fn a_layer_applies_the_same_from_a_list_a_buffer_or_as_it_streams() {
        let layer = || {
            vec![
                dir("usr"),
                file("usr/bin/a", 3),
                symlink("bin", "usr/bin"),
                Change::Hardlink {
                    path: "usr/bin/b".into(),
                    target: "usr/bin/a".into(),
                    meta: EntryMeta::default(),
                },
                Change::Whiteout {
                    path: "usr/bin/a".into(),
                },
                Change::Opaque { dir: "usr".into() },
                file("bin/c", 4),
            ]
        };
        let mut listed = Tree::new();
        listed.apply(0, layer()).unwrap();
        let mut buffered = Tree::new();
        let mut buffer = ChangeBuffer::new();
        for change in layer() {
            buffer.push(change);
        }
        buffered.apply_buffer(0, buffer).unwrap();
        let mut streamed = Tree::new();
        let mut first = streamed.first_layer(0).unwrap();
        for change in layer() {
            first.apply(change).unwrap();
        }
        assert_eq!(describe(&listed), describe(&buffered));
        assert_eq!(describe(&listed), describe(&streamed));
        assert_eq!(listed.layer_stats(), streamed.layer_stats());
        assert!(streamed.first_layer(1).is_none());
    }

    fn describe(tree: &Tree<&'static str>) -> Vec<String> {
        tree.entries()
            .into_iter()
            .map(|(p, id)| {
                let e = tree.entry(id);
                format!(
                    "{} {:?} {:?} {:?} {} {}",
                    String::from_utf8_lossy(&p),
                    e.kind,
                    e.meta,
                    e.link.map(String::from_utf8_lossy),
                    e.nlink,
                    e.layer
                )
            })
            .collect()
    }

    /// Applies `steps` change by change (a whiteout or opaque marker hides at once, with no
    /// layer boundary that would empty the parent cache), with the cache and without it, and
    /// checks that both trees and every outcome are the same.
    fn same_with_and_without_cache(steps: Vec<Change<&'static str>>) -> Tree<&'static str> {
        let mut cached = Tree::new();
        let mut plain = Tree::new();
        plain.parents.bypass = true;
        for tree in [&mut cached, &mut plain] {
            tree.stats_for(0);
        }
        for (i, step) in steps.into_iter().enumerate() {
            let copy = step.clone();
            cached.hide(&step);
            plain.hide(&copy);
            let a = cached.add_change(0, step).map_err(|e| e.to_string());
            let b = plain.add_change(0, copy).map_err(|e| e.to_string());
            assert_eq!(a, b, "step {i}");
            assert_eq!(describe(&cached), describe(&plain), "after step {i}");
        }
        assert_eq!(cached.layer_stats(), plain.layer_stats());
        cached
    }

    #[test]
    fn the_parent_cache_follows_a_directory_replaced_by_a_symlink() {
        let tree = same_with_and_without_cache(vec![
            dir("d"),
            file("d/a", 1),
            dir("d/sub"),
            file("d/sub/x", 1),
            dir("e/sub"),
            // `d` (cached, with `d/sub`) becomes a link to `e`: `d/…` now lands in `e`.
            symlink("d", "e"),
            file("d/b", 2),
            file("d/sub/y", 3),
        ]);
        assert_eq!(paths(&tree), ["", "d", "e", "e/b", "e/sub", "e/sub/y"]);
        // And the way back: the link replaced by a directory again.
        let tree = same_with_and_without_cache(vec![
            dir("e"),
            symlink("d", "e"),
            file("d/a", 1),
            dir("d"),
            file("d/b", 2),
        ]);
        assert_eq!(paths(&tree), ["", "d", "d/b", "e", "e/a"]);
        // A directory on the cached path replaced through a link: `a/b` is `..`, so `a/b/a`
        // replaces `a`, which the cache holds as the first component of `a/b`.
        let tree = same_with_and_without_cache(vec![
            dir("a"),
            symlink("a/b", ".."),
            file("a/b/a", 1),
            file("a/c", 2),
            dir("x/y"),
            symlink("x/y/z", "/x"),
            dir("x/y/z/y"),
            file("x/y/w", 3),
        ]);
        assert_eq!(paths(&tree), ["", "a", "x", "x/y", "x/y/w", "x/y/z"]);
        // Through a file: `d/sub` replaced by a file, then written under.
        let mut tree = Tree::new();
        let mut first = tree.first_layer(0).unwrap();
        first.apply(file("d/sub/x", 1)).unwrap();
        first.apply(file("d/sub", 1)).unwrap();
        let err = first.apply(file("d/sub/y", 1)).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn the_parent_cache_forgets_a_whited_out_directory() {
        let tree = same_with_and_without_cache(vec![
            file("d/sub/x", 1),
            file("d/sub/z", 1),
            Change::Whiteout {
                path: b"d/sub".to_vec(),
            },
            file("d/sub/y", 2),
            Change::Whiteout {
                path: b"d".to_vec(),
            },
            file("d/w", 3),
        ]);
        assert_eq!(paths(&tree), ["", "d", "d/w"]);
        // Across layers, as runtimes apply them.
        let mut tree = Tree::new();
        tree.apply(0, vec![file("d/x", 1)]).unwrap();
        tree.apply(
            1,
            vec![
                Change::Whiteout {
                    path: b"d".to_vec(),
                },
                file("d/y", 2),
            ],
        )
        .unwrap();
        assert_eq!(paths(&tree), ["", "d", "d/y"]);
    }

    #[test]
    fn the_parent_cache_forgets_what_an_opaque_directory_hides() {
        let tree = same_with_and_without_cache(vec![
            file("d/sub/x", 1),
            Change::Opaque { dir: b"d".to_vec() },
            file("d/sub/y", 2),
            file("d/z", 3),
        ]);
        assert_eq!(paths(&tree), ["", "d", "d/sub", "d/sub/y", "d/z"]);
    }

    #[test]
    fn the_parent_cache_goes_down_and_back_up_and_through_links() {
        let tree = same_with_and_without_cache(vec![
            dir("usr"),
            dir("usr/lib"),
            file("usr/lib/a", 1),
            dir("usr/lib/x"),
            file("usr/lib/x/b", 1),
            file("usr/lib/c", 1),
            file("usr/libexec/d", 1),
            symlink("lib", "usr/lib"),
            file("lib/x/e", 1),
            file("lib/f", 1),
            symlink("usr/lib/up", "../.."),
            file("usr/lib/up/usr/g", 1),
            Change::Hardlink {
                path: b"usr/lib/x/h".to_vec(),
                target: b"usr/lib/a".to_vec(),
                meta: EntryMeta::default(),
            },
            file("usr/lib/x/i", 1),
        ]);
        let listed = paths(&tree);
        for expected in [
            "usr/lib/x/e",
            "usr/lib/f",
            "usr/g",
            "usr/lib/x/h",
            "usr/lib/x/i",
        ] {
            assert!(
                listed.contains(&expected.to_string()),
                "{expected}: {listed:?}"
            );
        }
    }

    #[test]
    fn the_parent_cache_changes_nothing_on_random_layers() {
        // A small xorshift: the same sequences on every run.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        const NAMES: [&str; 4] = ["a", "b", "c", ".."];
        const TARGETS: [&str; 7] = ["a", "b/c", "..", "/a/b", "../c", ".", "/"];
        for _ in 0..300 {
            let mut steps = Vec::new();
            for _ in 0..40 {
                let depth = 1 + next(4);
                let mut parts = Vec::new();
                for level in 0..depth {
                    // `..` never last: a name to add.
                    let pick = NAMES[next(if level == depth - 1 { 3 } else { 4 })];
                    parts.push(pick);
                }
                let path: &'static str = Box::leak(parts.join("/").into_boxed_str());
                let step = match next(10) {
                    0..=3 => file(path, 1 + next(5) as u64),
                    4..=5 => dir(path),
                    6 => symlink(path, TARGETS[next(TARGETS.len())]),
                    7 => Change::Whiteout {
                        path: path.as_bytes().to_vec(),
                    },
                    8 => Change::Opaque {
                        dir: path.as_bytes().to_vec(),
                    },
                    _ => Change::Hardlink {
                        path: path.as_bytes().to_vec(),
                        target: parts[..parts.len() - 1].join("/").into_bytes(),
                        meta: EntryMeta::default(),
                    },
                };
                steps.push(step);
            }
            same_with_and_without_cache(steps);
        }
    }
}
