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

use std::collections::{HashMap, HashSet};

use crate::tree::Tree;
use crate::walk::{Change, FileKind};

#[derive(Debug, Default, Clone, Copy)]
struct PathData {
    cumulative: u64,
    min: u64,
    count: u32,
}

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
                next.len() > path.len() && next.starts_with(path) && next[path.len()] == b'/'
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::walk::EntryMeta;

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
}
