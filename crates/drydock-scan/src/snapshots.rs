//! Snapshots: an image's lowest layers as applied, kept in memory by a long-lived process
//! (`drydock serve`), so that the next scan of an image on the same base starts from a copy
//! instead of reading the base's facts cache entries and applying them again — as containerd
//! keeps a snapshot per chain of layers.
//!
//! **What a snapshot holds**: the tree and the efficiency measure after the layers of a chain
//! were applied, and for each of those layers what its walk measured (digests, sizes,
//! compression) and the secrets found in it — everything the apply loop takes from a layer.
//! The checks and the report are still computed fresh by every scan, and the tree a scan
//! checks is its own copy: a snapshot is never changed once kept.
//!
//! **Key**: the chain of (diff id, blob digest, blob size) of the layers, from the lowest.
//! Only layers named by a blob digest are chained. A scan uses the longest kept chain that its
//! image starts with.
//!
//! **Trust**: snapshots are made in this process from layers it applied (walked, or read from
//! the facts cache and checked), are never written anywhere and never read from anywhere: they
//! are as trustworthy as the tree a scan builds. They are only used by scans that use the facts
//! cache, which already trusts a blob digest to name the bytes walked before.
//!
//! **Which chains**: the lowest layers of a scan that came from the facts cache (or from a
//! snapshot), up to the first layer it walked and never its top layer: layers found in the
//! cache are shared by another image, so the next image is likely to share them too; the
//! layers a scan walked, and its top layer, are often its own (and a top layer found in the
//! cache was walked ahead by `prefetch`, for this very image).
//!
//! **Memory**: kept within a budget of bytes (estimated), the least recently used dropped
//! first.

use std::sync::{Arc, Mutex};

use drydock_checks::{ImageTree, LayerSecret};
use drydock_facts::FileFacts;
use drydock_facts::codec::{self, Writer};
use drydock_layers::{Efficiency, LayerWalk};
use drydock_source::Layer;

/// One layer of a chain: what names its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Link {
    diff_id: String,
    digest: String,
    size: u64,
}

impl Link {
    /// The link of `layer`, when it is named by a blob digest.
    fn of(layer: &Layer) -> Option<Self> {
        layer.blob.as_ref()?;
        Some(Self {
            diff_id: layer.diff_id.clone(),
            digest: layer.digest.clone()?,
            size: layer.size?,
        })
    }
}

/// What the apply loop took from one layer of a snapshot.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotLayer {
    /// Its measurements (no changes).
    pub walk: LayerWalk<FileFacts>,
    pub secrets: Vec<LayerSecret>,
}

/// The lowest layers of an image, applied.
pub(crate) struct Snapshot {
    chain: Vec<Link>,
    pub tree: ImageTree,
    pub efficiency: Efficiency,
    pub layers: Vec<SnapshotLayer>,
    bytes: usize,
}

impl Snapshot {
    /// How many layers it holds.
    pub fn len(&self) -> usize {
        self.chain.len()
    }
}

/// The snapshots a process keeps, within a budget of bytes.
pub struct Snapshots {
    budget: usize,
    kept: Mutex<Kept>,
}

impl std::fmt::Debug for Snapshots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (count, bytes) = self.usage();
        f.debug_struct("Snapshots")
            .field("budget", &self.budget)
            .field("kept", &count)
            .field("bytes", &bytes)
            .finish()
    }
}

#[derive(Default)]
struct Kept {
    /// Each with when it was last used.
    snapshots: Vec<(Arc<Snapshot>, u64)>,
    bytes: usize,
    clock: u64,
}

/// The chain of the image's lowest `len` layers, if each is named by a blob digest.
fn chain(layers: &[Layer], len: usize) -> Option<Vec<Link>> {
    layers.get(..len)?.iter().map(Link::of).collect()
}

/// The heap bytes of one fact beyond its own size (an estimate: its encoding, twice).
fn fact_heap(fact: &FileFacts) -> usize {
    let mut w = Writer::default();
    codec::encode(fact, &mut w).map_or(1024, |()| 2 * w.out.len())
}

impl Snapshots {
    /// Snapshots kept within `budget` bytes (estimated); 0 keeps none.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            kept: Mutex::new(Kept::default()),
        }
    }

    /// The snapshot of the longest chain of lowest layers of `layers` that is kept.
    pub(crate) fn longest(&self, layers: &[Layer]) -> Option<Arc<Snapshot>> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.clock += 1;
        let clock = kept.clock;
        let (snapshot, used) = kept
            .snapshots
            .iter_mut()
            .filter(|(s, _)| {
                s.chain.len() <= layers.len()
                    && s.chain
                        .iter()
                        .zip(layers)
                        .all(|(link, layer)| Link::of(layer).as_ref() == Some(link))
            })
            .max_by_key(|(s, _)| s.chain.len())?;
        *used = clock;
        Some(Arc::clone(snapshot))
    }

    /// Keeps a copy of `tree` and `efficiency` as they are after the lowest `applied.len()`
    /// of `layers`, unless that chain is kept already or not every one of its layers is named
    /// by a blob digest; drops the least recently used beyond the budget.
    pub(crate) fn keep(
        &self,
        layers: &[Layer],
        applied: &[SnapshotLayer],
        tree: &ImageTree,
        efficiency: &Efficiency,
    ) {
        if applied.is_empty() || self.budget == 0 {
            return;
        }
        let Some(chain) = chain(layers, applied.len()) else {
            return;
        };
        if self
            .kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .snapshots
            .iter()
            .any(|(s, _)| s.chain == chain)
        {
            return;
        }
        let secrets: usize = applied
            .iter()
            .flat_map(|l| &l.secrets)
            .map(|s| s.path.len() + s.kind.len() + s.detail.len() + 96)
            .sum();
        let bytes = tree.heap_size(fact_heap) + efficiency.heap_size() + secrets;
        if bytes > self.budget {
            log::debug!(
                "a snapshot of {} layer(s) would take {bytes} bytes, over the budget",
                applied.len()
            );
            return;
        }
        let snapshot = Arc::new(Snapshot {
            chain,
            tree: tree.clone(),
            efficiency: efficiency.clone(),
            layers: applied.to_vec(),
            bytes,
        });
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept
            .snapshots
            .iter()
            .any(|(s, _)| s.chain == snapshot.chain)
        {
            return;
        }
        kept.clock += 1;
        let clock = kept.clock;
        kept.bytes += bytes;
        kept.snapshots.push((snapshot, clock));
        while kept.bytes > self.budget {
            let Some(oldest) = kept
                .snapshots
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(i, _)| i)
            else {
                break;
            };
            let (dropped, _) = kept.snapshots.swap_remove(oldest);
            kept.bytes -= dropped.bytes;
        }
        log::debug!(
            "snapshot of {} layer(s) kept ({bytes} bytes; {} kept, {} bytes)",
            applied.len(),
            kept.snapshots.len(),
            kept.bytes
        );
    }

    /// How many snapshots are kept, and their bytes (estimated).
    pub fn usage(&self) -> (usize, usize) {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        (kept.snapshots.len(), kept.bytes)
    }
}
