//! Wasted bytes and image efficiency, with dive's definitions (`dive --ci`), so that users can
//! compare: every path each layer touches (the leaves of its own tree) counts its size; a
//! whiteout counts the size of the directory it hides (a file's whiteout counts 0); a path
//! touched by more than one layer wastes all its sizes; efficiency is the sum of each path's
//! smallest size over the sum of all.
//!
//! One quirk of dive's is kept, because users compare the figures: dive stacks the layers
//! below a whiteout and asks whether the hidden path is a directory, and a layer that writes
//! under a directory without a tar entry of the directory itself gives it an empty record
//! there (not a directory). So a whiteout counts the bytes it hides only when the last layer
//! that touched the directory had an entry for it.
//!
//! The paths are kept in a trie of interned names (a few tens of bytes per path, where a map of
//! owned paths took a few hundred), and a layer can be observed change by change as it streams
//! ([`Efficiency::first_layer`]) or whole ([`Efficiency::observe`]); both give the figures of a
//! sort of the layer's paths, to the byte (see [`Efficiency::end_layer`]).

use crate::changes::ChangeBuffer;
use crate::names::{KeyedMap, NONE, Names, map_heap, pair_key};
use crate::tree::Tree;
use crate::walk::{Change, FileKind};

/// A path some layer touched: a node of the trie of every such path.
#[derive(Debug, Clone, Copy)]
struct PathNode {
    parent: u32,
    name: u32,
    /// With `count == 1`, the size the path had; with more, its figures are in `multi`.
    size: u64,
    /// How many layers touched the path as a leaf of their own tree.
    count: u32,
    flags: u8,
}

/// Dive sees a directory here: the last layer that touched the path wrote a directory entry.
const RECORDED: u8 = 1;
/// The flags below only live while one layer is observed.
const TOUCHED: u8 = 1 << 1;
/// A path under this one is touched.
const HAS_DESCENDANT: u8 = 1 << 2;
const IN_PARENTS: u8 = 1 << 3;
const WRITTEN: u8 = 1 << 4;
/// The parent of a touched path that has touched paths under it.
const CANDIDATE_PARENT: u8 = 1 << 5;
/// Counted as a leaf although paths under it are touched (see [`Efficiency::end_layer`]).
const SORTED_AS_LEAF: u8 = 1 << 6;

const ROOT: u32 = 0;

/// A path several layers touch.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Inefficiency {
    pub path: String,
    /// How many layers touch it.
    pub count: u32,
    /// The sizes it has in all of them, added.
    pub wasted_bytes: u64,
}

/// The image-wide figures, as `dive --ci` prints them.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EfficiencySummary {
    /// 0.0 to 1.0.
    pub efficiency: f64,
    pub wasted_bytes: u64,
    /// Wasted bytes over the bytes of every layer but the first (the base), 0.0 to 1.0+.
    pub user_wasted_ratio: f64,
    /// The paths that waste the most, largest first.
    pub largest: Vec<Inefficiency>,
}

/// What one layer touched, while it is observed.
#[derive(Debug, Default, Clone)]
struct LayerScratch {
    bytes: u64,
    /// Touched paths, each once, in the order first touched, with the size of that first touch.
    touched: Vec<u32>,
    sizes: Vec<u64>,
    /// Paths that are no longer directories for dive (a file, a link or a whiteout there).
    unrecord: Vec<u32>,
    written: Vec<u32>,
    parents: Vec<u32>,
    /// The last path looked up, and the trie node at the end of each of its components.
    last: Vec<u8>,
    last_ids: Vec<(usize, u32)>,
}

/// Accumulates layers as they are applied; call [`Efficiency::observe`] before
/// [`Tree::apply`] for each layer, in order. A clone goes on from where this one is.
#[derive(Debug, Clone)]
pub struct Efficiency {
    names: Names,
    /// (parent, name) → path ([`pair_key`]).
    index: KeyedMap<u64, u32>,
    paths: Vec<PathNode>,
    /// (smallest size, sum of sizes) of the paths touched by two layers or more.
    multi: KeyedMap<u32, (u64, u64)>,
    layer_bytes: Vec<u64>,
    layer: LayerScratch,
}

impl Default for Efficiency {
    fn default() -> Self {
        Self::new()
    }
}

/// The first layer observed change by change as its walk yields them, from
/// [`Efficiency::first_layer`]; [`FirstObservation::finish`] closes it.
#[derive(Debug)]
pub struct FirstObservation<'e> {
    efficiency: &'e mut Efficiency,
}

impl FirstObservation<'_> {
    /// Observes the next change of the layer, in tar order.
    pub fn touch<G>(&mut self, change: &Change<G>) {
        self.efficiency.touch::<(), G>(None, change);
    }

    pub fn finish(self) {
        self.efficiency.end_layer();
    }
}

impl Efficiency {
    /// The heap bytes the measure takes so far (an estimate).
    pub fn heap_size(&self) -> usize {
        let scratch = &self.layer;
        self.names.heap_size()
            + map_heap(&self.index)
            + self.paths.capacity() * std::mem::size_of::<PathNode>()
            + map_heap(&self.multi)
            + self.layer_bytes.capacity() * 8
            + (scratch.touched.capacity()
                + scratch.unrecord.capacity()
                + scratch.written.capacity()
                + scratch.parents.capacity())
                * 4
            + scratch.sizes.capacity() * 8
            + scratch.last.capacity()
            + scratch.last_ids.capacity() * 16
    }

    pub fn new() -> Self {
        let mut names = Names::default();
        let root = names.intern(b"");
        Self {
            names,
            index: KeyedMap::default(),
            paths: vec![PathNode {
                parent: NONE,
                name: root,
                size: 0,
                count: 0,
                flags: 0,
            }],
            multi: KeyedMap::default(),
            layer_bytes: Vec::new(),
            layer: LayerScratch::default(),
        }
    }

    /// Records what one layer touches; `below` is the tree of the layers under it.
    pub fn observe<F>(&mut self, below: &Tree<F>, changes: &[Change<F>]) {
        for change in changes {
            self.touch(Some(below), change);
        }
        self.end_layer();
    }

    /// [`Efficiency::observe`] for changes held compactly.
    pub fn observe_buffer<F>(&mut self, below: &Tree<F>, changes: &ChangeBuffer<F>) {
        for change in changes.iter() {
            self.touch(Some(below), &change);
        }
        self.end_layer();
    }

    /// Observes the first layer change by change, when no layer was observed yet (else `None`).
    /// Below the first layer there is nothing, so no change needs the tree under it.
    pub fn first_layer(&mut self) -> Option<FirstObservation<'_>> {
        if !self.layer_bytes.is_empty() {
            return None;
        }
        Some(FirstObservation { efficiency: self })
    }

    /// The trie node of a normalised path, created with its ancestors when new.
    fn path_id(&mut self, path: &[u8]) -> u32 {
        let Self {
            names,
            index,
            paths,
            layer,
            ..
        } = self;
        // Consecutive changes share their directories: start from the last path's components.
        let common = crate::path::common_prefix(path, &layer.last);
        let reusable = layer
            .last_ids
            .iter()
            .take_while(|&&(end, _)| end <= common && (end == path.len() || path[end] == b'/'))
            .count();
        layer.last_ids.truncate(reusable);
        let (mut current, mut start) = match layer.last_ids.last() {
            Some(&(end, id)) => (id, end + 1),
            None => (ROOT, 0),
        };
        while start < path.len() {
            let end = path[start..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(path.len(), |i| start + i);
            let name = names.intern(&path[start..end]);
            let next = u32::try_from(paths.len()).unwrap_or(NONE);
            current = *index.entry(pair_key(current, name)).or_insert_with(|| {
                paths.push(PathNode {
                    parent: current,
                    name,
                    size: 0,
                    count: 0,
                    flags: 0,
                });
                next
            });
            layer.last_ids.push((end, current));
            start = end + 1;
        }
        layer.last.clear();
        layer.last.extend_from_slice(path);
        current
    }

    fn flag(&self, id: u32, flag: u8) -> bool {
        self.paths[id as usize].flags & flag != 0
    }

    /// Sets `flag` on `id`; whether it was unset.
    fn set(&mut self, id: u32, flag: u8) -> bool {
        let flags = &mut self.paths[id as usize].flags;
        let was_unset = *flags & flag == 0;
        *flags |= flag;
        was_unset
    }

    fn touched(&mut self, id: u32, size: u64) {
        // The first touch of a path in a layer is the one that counts.
        if self.set(id, TOUCHED) {
            self.layer.touched.push(id);
            self.layer.sizes.push(size);
        }
    }

    /// The directories above `id` (not the root) take part in the layer: a directory of the
    /// layer that has no entry of its own is no directory for dive.
    fn mark_parents(&mut self, id: u32) {
        if id == ROOT {
            return;
        }
        let mut current = self.paths[id as usize].parent;
        while current != ROOT && current != NONE && self.set(current, IN_PARENTS) {
            self.layer.parents.push(current);
            current = self.paths[current as usize].parent;
        }
    }

    /// One change of the layer being observed; `below` is the tree under the layer (`None`
    /// for the first layer, under which there is nothing).
    fn touch<F, G>(&mut self, below: Option<&Tree<F>>, change: &Change<G>) {
        match change {
            Change::Add {
                path, kind, meta, ..
            } => {
                let size = if *kind == FileKind::File {
                    meta.size
                } else {
                    0
                };
                self.layer.bytes += size;
                let id = self.path_id(path);
                self.touched(id, size);
                if *kind == FileKind::Dir {
                    if self.set(id, WRITTEN) {
                        self.layer.written.push(id);
                    }
                } else {
                    self.layer.unrecord.push(id);
                }
                self.mark_parents(id);
            }
            Change::Hardlink { path, .. } => {
                let id = self.path_id(path);
                self.touched(id, 0);
                self.layer.unrecord.push(id);
                self.mark_parents(id);
            }
            Change::Whiteout { path } => {
                let id = self.path_id(path);
                let hidden = match below {
                    Some(below)
                        if self.flag(id, RECORDED)
                            && below
                                .resolve(path, false)
                                .is_ok_and(|n| below.entry(n).kind == FileKind::Dir) =>
                    {
                        below.bytes_under(path)
                    }
                    _ => 0,
                };
                self.touched(id, hidden);
                self.layer.unrecord.push(id);
                self.mark_parents(id);
            }
            Change::Opaque { dir } => {
                let id = self.path_id(dir);
                if self.set(id, IN_PARENTS) {
                    self.layer.parents.push(id);
                }
            }
        }
    }

    /// Closes the layer being observed: every path it touched that is a leaf of its tree
    /// counts its size.
    ///
    /// "Leaf" is what a sort of the layer's paths says, as drydock always measured it: a path
    /// is a leaf unless the path after it in byte order lies under it. That is the layer's
    /// tree but for one case kept for stable figures: `a` with both `a/x` and `a.txt` (any
    /// name that extends `a` by a byte below `/`) touched sorts `a.txt` between `a` and `a/x`,
    /// and counts `a` as a leaf too.
    fn end_layer(&mut self) {
        let mut layer = std::mem::take(&mut self.layer);
        self.layer_bytes.push(layer.bytes);
        // Which touched paths have touched paths under them.
        let mut marked = Vec::new();
        for &id in &layer.touched {
            let mut current = if id == ROOT {
                NONE
            } else {
                self.paths[id as usize].parent
            };
            while current != NONE && self.set(current, HAS_DESCENDANT) {
                marked.push(current);
                current = self.paths[current as usize].parent;
            }
        }
        self.sorted_as_leaves(&layer.touched, &marked);
        for (&id, &size) in layer.touched.iter().zip(&layer.sizes) {
            if id == ROOT || (self.flag(id, HAS_DESCENDANT) && !self.flag(id, SORTED_AS_LEAF)) {
                continue;
            }
            let node = &mut self.paths[id as usize];
            match node.count {
                0 => node.size = size,
                1 => {
                    let first = node.size;
                    self.multi.insert(id, (first.min(size), first + size));
                }
                _ => {
                    let entry = self.multi.entry(id).or_insert((size, 0));
                    entry.0 = entry.0.min(size);
                    entry.1 += size;
                }
            }
            node.count += 1;
        }
        // Which directories dive sees as directories after this layer.
        for &id in &layer.unrecord {
            self.paths[id as usize].flags &= !RECORDED;
        }
        for &id in &layer.parents {
            if !self.flag(id, WRITTEN) {
                self.paths[id as usize].flags &= !RECORDED;
            }
        }
        for &id in &layer.written {
            self.paths[id as usize].flags |= RECORDED;
        }
        for list in [&layer.touched, &marked, &layer.written, &layer.parents] {
            for &id in list {
                let node = &mut self.paths[id as usize];
                node.flags &= RECORDED;
                let parent = node.parent;
                if parent != NONE {
                    self.paths[parent as usize].flags &= RECORDED;
                }
            }
        }
        // Keep the allocations and the path cache for the next layer.
        layer.bytes = 0;
        for list in [
            &mut layer.touched,
            &mut layer.unrecord,
            &mut layer.written,
            &mut layer.parents,
        ] {
            list.clear();
        }
        layer.sizes.clear();
        self.layer = layer;
    }

    /// Flags [`SORTED_AS_LEAF`] the touched paths with touched paths under them whose next
    /// path in byte order is not under them: the next active sibling's name extends theirs
    /// by a byte below `/`.
    ///
    /// Without sorting: the names after `name` in byte order start with those that extend it
    /// (`name` + a byte + …), the smallest byte first, so the next one extends it by a byte
    /// below `/` exactly when some active sibling does. Each active sibling in a candidate's
    /// directory looks up the candidate its name would extend, once per byte below `/` in
    /// its name (a `.` or a `-`, mostly).
    fn sorted_as_leaves(&mut self, touched: &[u32], marked: &[u32]) {
        let mut any = false;
        for &id in touched {
            if id != ROOT && self.flag(id, HAS_DESCENDANT) {
                let parent = self.paths[id as usize].parent;
                self.set(parent, CANDIDATE_PARENT);
                any = true;
            }
        }
        if !any {
            return;
        }
        // Every active path (touched, or above a touched one) in those parents.
        for &id in touched.iter().chain(marked) {
            if id == ROOT {
                continue;
            }
            let node = self.paths[id as usize];
            if !self.flag(node.parent, CANDIDATE_PARENT) {
                continue;
            }
            let name = self.names.get(node.name);
            for (end, _) in name.iter().enumerate().filter(|&(_, &b)| b < b'/') {
                let Some(shorter) = self.names.find(&name[..end]) else {
                    continue;
                };
                let Some(&candidate) = self.index.get(&pair_key(node.parent, shorter)) else {
                    continue;
                };
                if self.paths[candidate as usize].flags & (TOUCHED | HAS_DESCENDANT)
                    == TOUCHED | HAS_DESCENDANT
                {
                    self.paths[candidate as usize].flags |= SORTED_AS_LEAF;
                }
            }
        }
    }

    /// A path's bytes, from the trie.
    fn path_of(&self, mut id: u32) -> Vec<u8> {
        let mut names = Vec::new();
        while id != ROOT && id != NONE {
            let node = &self.paths[id as usize];
            names.push(self.names.get(node.name));
            id = node.parent;
        }
        names.reverse();
        names.join(&b'/')
    }

    pub fn summary(&self) -> EfficiencySummary {
        let (mut minimum, mut discovered, mut wasted) = (0u64, 0u64, 0u64);
        let mut largest = Vec::new();
        for (id, node) in self.paths.iter().enumerate() {
            let (min, cumulative) = match node.count {
                0 => continue,
                1 => (node.size, node.size),
                _ => self
                    .multi
                    .get(&u32::try_from(id).unwrap_or(NONE))
                    .copied()
                    .unwrap_or_default(),
            };
            minimum += min;
            discovered += cumulative;
            if node.count > 1 {
                wasted += cumulative;
                largest.push(Inefficiency {
                    path: crate::path::display(&self.path_of(u32::try_from(id).unwrap_or(NONE))),
                    count: node.count,
                    wasted_bytes: cumulative,
                });
            }
        }
        largest.sort_by(|a, b| {
            b.wasted_bytes
                .cmp(&a.wasted_bytes)
                .then_with(|| a.path.cmp(&b.path))
        });
        largest.truncate(20);
        let user_bytes: u64 = self.layer_bytes.iter().skip(1).sum();
        EfficiencySummary {
            efficiency: if discovered == 0 {
                1.0
            } else {
                minimum as f64 / discovered as f64
            },
            wasted_bytes: wasted,
            user_wasted_ratio: if user_bytes == 0 {
                0.0
            } else {
                wasted as f64 / user_bytes as f64
            },
            largest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::EntryMeta;

    /// The implementation before the trie (a map of owned paths and a sort per layer), kept
    /// as the oracle of the one above.
    #[allow(clippy::all)]
    mod reference {
        use std::collections::{HashMap, HashSet};

        use crate::tree::Tree;
        use crate::walk::{Change, FileKind};

        use super::super::{EfficiencySummary, Inefficiency};

        #[derive(Debug, Default, Clone, Copy)]
        struct PathData {
            cumulative: u64,
            min: u64,
            count: u32,
        }

        /// Accumulates layers as they are applied; call [`Efficiency::observe`] before
        /// [`Tree::apply`] for each layer, in order.
        #[derive(Debug, Default)]
        pub struct Efficiency {
            paths: HashMap<Vec<u8>, PathData>,
            layer_bytes: Vec<u64>,
            /// Directories whose last toucher wrote an entry for them (dive sees a directory there).
            recorded_dirs: HashSet<Vec<u8>>,
        }

        impl Efficiency {
            pub fn new() -> Self {
                Self::default()
            }

            /// Records what one layer touches; `below` is the tree of the layers under it.
            pub fn observe<F>(&mut self, below: &Tree<F>, changes: &[Change<F>]) {
                let mut touched: Vec<(&[u8], u64)> = Vec::with_capacity(changes.len());
                let mut layer_bytes = 0;
                for change in changes {
                    match change {
                        Change::Add {
                            path, kind, meta, ..
                        } => {
                            let size = if *kind == FileKind::File {
                                meta.size
                            } else {
                                0
                            };
                            layer_bytes += size;
                            touched.push((path, size));
                        }
                        Change::Hardlink { path, .. } => touched.push((path, 0)),
                        Change::Whiteout { path } => {
                            let hides_dir = self.recorded_dirs.contains(path.as_slice())
                                && below
                                    .resolve(path, false)
                                    .is_ok_and(|n| below.entry(n).kind == FileKind::Dir);
                            touched.push((
                                path,
                                if hides_dir {
                                    below.bytes_under(path)
                                } else {
                                    0
                                },
                            ));
                        }
                        Change::Opaque { .. } => {}
                    }
                }
                self.layer_bytes.push(layer_bytes);
                self.record_dirs(changes);
                touched.sort_by(|a, b| a.0.cmp(b.0));
                touched.dedup_by(|b, a| a.0 == b.0);
                for (i, (path, size)) in touched.iter().enumerate() {
                    if path.is_empty() {
                        continue;
                    }
                    // A leaf of this layer's tree: nothing else in the layer lies under it.
                    let has_child = touched.get(i + 1).is_some_and(|(next, _)| {
                        next.len() > path.len()
                            && next.starts_with(path)
                            && next[path.len()] == b'/'
                    });
                    if has_child {
                        continue;
                    }
                    let data = self.paths.entry(path.to_vec()).or_default();
                    data.min = if data.count == 0 {
                        *size
                    } else {
                        data.min.min(*size)
                    };
                    data.cumulative += size;
                    data.count += 1;
                }
            }

            /// Updates which directories dive would see as directories after this layer.
            fn record_dirs<F>(&mut self, changes: &[Change<F>]) {
                let mut written: HashSet<&[u8]> = HashSet::new();
                let mut parents: HashSet<&[u8]> = HashSet::new();
                for change in changes {
                    let path: &[u8] = match change {
                        Change::Add { path, kind, .. } => {
                            if *kind == FileKind::Dir {
                                written.insert(path);
                            } else {
                                self.recorded_dirs.remove(path.as_slice());
                            }
                            path
                        }
                        Change::Hardlink { path, .. } => {
                            self.recorded_dirs.remove(path.as_slice());
                            path
                        }
                        Change::Whiteout { path } => {
                            self.recorded_dirs.remove(path.as_slice());
                            path
                        }
                        Change::Opaque { dir } => {
                            parents.insert(dir);
                            continue;
                        }
                    };
                    let mut rest = path;
                    while let Some(slash) = rest.iter().rposition(|b| *b == b'/') {
                        rest = &rest[..slash];
                        if !parents.insert(rest) {
                            break;
                        }
                    }
                }
                for parent in &parents {
                    if !written.contains(parent) {
                        self.recorded_dirs.remove(*parent);
                    }
                }
                for dir in written {
                    self.recorded_dirs.insert(dir.to_vec());
                }
            }

            pub fn summary(&self) -> EfficiencySummary {
                let (mut minimum, mut discovered, mut wasted) = (0u64, 0u64, 0u64);
                let mut largest = Vec::new();
                for (path, data) in &self.paths {
                    minimum += data.min;
                    discovered += data.cumulative;
                    if data.count > 1 {
                        wasted += data.cumulative;
                        largest.push(Inefficiency {
                            path: crate::path::display(path),
                            count: data.count,
                            wasted_bytes: data.cumulative,
                        });
                    }
                }
                largest.sort_by(|a, b| {
                    b.wasted_bytes
                        .cmp(&a.wasted_bytes)
                        .then_with(|| a.path.cmp(&b.path))
                });
                largest.truncate(20);
                let user_bytes: u64 = self.layer_bytes.iter().skip(1).sum();
                EfficiencySummary {
                    efficiency: if discovered == 0 {
                        1.0
                    } else {
                        minimum as f64 / discovered as f64
                    },
                    wasted_bytes: wasted,
                    user_wasted_ratio: if user_bytes == 0 {
                        0.0
                    } else {
                        wasted as f64 / user_bytes as f64
                    },
                    largest,
                }
            }
        }
    }

    fn file(path: &str, size: u64) -> Change<()> {
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

    fn dir(path: &str) -> Change<()> {
        Change::Add {
            path: path.into(),
            kind: FileKind::Dir,
            meta: EntryMeta::default(),
            link: None,
            fact: None,
        }
    }

    fn summarise(layers: Vec<Vec<Change<()>>>) -> EfficiencySummary {
        let mut tree: Tree<()> = Tree::new();
        let mut efficiency = Efficiency::new();
        for (i, changes) in layers.into_iter().enumerate() {
            efficiency.observe(&tree, &changes);
            tree.apply(i as u32, changes).unwrap();
        }
        efficiency.summary()
    }

    fn whiteout(path: &str) -> Change<()> {
        Change::Whiteout {
            path: path.as_bytes().to_vec(),
        }
    }

    #[test]
    fn overwritten_and_deleted_files_waste_all_their_sizes() {
        let summary = summarise(vec![
            vec![
                file("a", 100),
                dir("d"),
                file("d/x", 10),
                file("d/y", 20),
                file("keep", 5),
            ],
            vec![file("a", 50), whiteout("d")],
            vec![whiteout("a")],
        ]);
        // a: 100 + 50 + 0. A deleted directory wastes nothing by dive's definition: `d` is a
        // leaf only in the layer that hides it, and d/x, d/y only in the one that added them.
        assert_eq!(summary.wasted_bytes, 150);
        // minimum: a 0, d 30, d/x 10, d/y 20, keep 5 = 65; discovered: 150 + 30 + 10 + 20 + 5 = 215.
        assert!((summary.efficiency - 65.0 / 215.0).abs() < 1e-9);
        assert_eq!(summary.largest[0].path, "/a");
        assert!((summary.user_wasted_ratio - 150.0 / 50.0).abs() < 1e-9);
    }

    #[test]
    fn a_directory_last_written_without_its_own_entry_hides_nothing_for_dive() {
        // `d` is recorded in layer 0, then layer 1 writes d/z without an entry for `d`: dive's
        // stacked tree then holds an empty record at `d`, and the whiteout counts 0.
        let summary = summarise(vec![
            vec![dir("d"), file("d/x", 10)],
            vec![file("d/z", 7)],
            vec![whiteout("d")],
        ]);
        // minimum: d 0, d/x 10, d/z 7; discovered the same.
        assert!((summary.efficiency - 1.0).abs() < 1e-9);
        let summary = summarise(vec![
            vec![dir("d"), file("d/x", 10)],
            vec![file("d/x", 4)],
            vec![whiteout("d")],
        ]);
        // Implicit `d` in layer 1: d counts 0. minimum: d 0 + d/x 4 = 4; discovered 0 + 14.
        assert!((summary.efficiency - 4.0 / 14.0).abs() < 1e-9);
        let summary = summarise(vec![
            vec![dir("d"), file("d/x", 10)],
            vec![dir("d"), file("d/x", 4)],
            vec![whiteout("d")],
        ]);
        // Recorded `d`: the whiteout hides 4 bytes. minimum 4 + 4 = 8; discovered 4 + 14 = 18.
        assert!((summary.efficiency - 8.0 / 18.0).abs() < 1e-9);
    }

    /// A small deterministic generator (xorshift), for random layers.
    struct Random(u64);

    impl Random {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_path(random: &mut Random) -> Vec<u8> {
        // Names that extend each other by bytes below and above `/`, the case sorting decides.
        // `a.b-` extends two of them so.
        const NAMES: [&str; 7] = ["a", "a.b", "a-", "ab", "b", "a0", "a.b-"];
        let depth = 1 + random.below(3) as usize;
        let names: Vec<&str> = (0..depth)
            .map(|_| NAMES[random.below(NAMES.len() as u64) as usize])
            .collect();
        names.join("/").into_bytes()
    }

    fn random_change(random: &mut Random) -> Change<()> {
        let path = random_path(random);
        let size = random.below(1000);
        match random.below(10) {
            0..=3 => Change::Add {
                path,
                kind: FileKind::File,
                meta: EntryMeta {
                    size,
                    ..EntryMeta::default()
                },
                link: None,
                fact: None,
            },
            4..=6 => Change::Add {
                path,
                kind: FileKind::Dir,
                meta: EntryMeta::default(),
                link: None,
                fact: None,
            },
            7 => Change::Whiteout { path },
            8 => Change::Opaque { dir: path },
            _ => Change::Add {
                path: Vec::new(),
                kind: FileKind::Dir,
                meta: EntryMeta::default(),
                link: None,
                fact: None,
            },
        }
    }

    fn copy(change: &Change<()>) -> Change<()> {
        match change {
            Change::Add {
                path, kind, meta, ..
            } => Change::Add {
                path: path.clone(),
                kind: *kind,
                meta: meta.clone(),
                link: None,
                fact: None,
            },
            Change::Whiteout { path } => Change::Whiteout { path: path.clone() },
            Change::Opaque { dir } => Change::Opaque { dir: dir.clone() },
            Change::Hardlink { path, target, meta } => Change::Hardlink {
                path: path.clone(),
                target: target.clone(),
                meta: meta.clone(),
            },
        }
    }

    #[test]
    fn the_trie_gives_the_figures_of_the_sort_on_random_layers() {
        let mut random = Random(0x9e37_79b9_7f4a_7c15);
        let mut compared = 0;
        for case in 0..3000 {
            let layers: Vec<Vec<Change<()>>> = (0..1 + random.below(4))
                .map(|_| {
                    (0..random.below(12))
                        .map(|_| random_change(&mut random))
                        .collect()
                })
                .collect();
            let mut tree: Tree<()> = Tree::new();
            let mut reference_tree: Tree<()> = Tree::new();
            let mut ours = Efficiency::new();
            let mut theirs = reference::Efficiency::new();
            let mut ok = true;
            for (i, changes) in layers.iter().enumerate() {
                if i == 0 {
                    // The first layer as it streams.
                    let mut first = ours.first_layer().unwrap();
                    for change in changes {
                        first.touch(change);
                    }
                    first.finish();
                } else {
                    ours.observe(&tree, changes);
                }
                theirs.observe(&reference_tree, changes);
                let a = tree.apply(i as u32, changes.iter().map(copy).collect());
                let b = reference_tree.apply(i as u32, changes.iter().map(copy).collect());
                if a.is_err() || b.is_err() {
                    ok = false;
                    break;
                }
            }
            if !ok {
                continue;
            }
            compared += 1;
            assert_eq!(ours.summary(), theirs.summary(), "case {case}: {layers:?}");
        }
        assert!(compared > 1000, "{compared}");
    }
}
