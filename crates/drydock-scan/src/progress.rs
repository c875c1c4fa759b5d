//! How a scan tells a display what it is doing, without knowing what the display is.

use std::io::Read;

/// What a scan reports as it goes. Layers are walked on several threads at once, so every
/// method may be called from any of them; each does nothing by default.
pub trait ScanProgress: Sync {
    /// The image is resolved: `count` layers, `total_bytes` to read when every size is known
    /// (an archive read once as it streams knows them only at its end).
    fn layers(&self, count: usize, total_bytes: Option<u64>) {
        let _ = (count, total_bytes);
    }

    /// One more layer is walked.
    fn layer_done(&self) {}

    /// Every byte the scan reads from the image goes through the reader returned here, so that
    /// a display can count them.
    fn reader<'a>(&self, reader: Box<dyn Read + Send + 'a>) -> Box<dyn Read + Send + 'a> {
        reader
    }

    /// The bytes are read; the checks and the report start.
    fn analysing(&self) {}

    /// What the layer facts cache did for one layer (only when the scan has one).
    fn facts_cache(&self, event: FactsCacheEvent) {
        let _ = event;
    }
}

/// What the layer facts cache did for one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactsCacheEvent {
    /// Its entry stood in for the walk: the layer's blob was not read.
    Hit,
    /// No entry for this layer and blob: walked.
    Miss,
    /// An entry was there and is not believed (damaged, another version's or layer's): walked,
    /// and the entry written again.
    Ignored,
    /// A verified walk was stored.
    Stored,
    /// The layer was in a snapshot this process kept of the lowest layers of an earlier scan:
    /// neither read nor walked nor applied (see `snapshots.rs`).
    Snapshot,
}

/// No display: for callers that only want the result.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl ScanProgress for NoProgress {}
