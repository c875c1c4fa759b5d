//! The layer walk: from layer blobs to the image's final filesystem, in memory.
//!
//! This crate owns three things:
//! - [`walk_layer`]: streams one layer blob (plain, gzip or zstd tar) exactly once, hashing the
//!   compressed bytes and the tar (for the `diff_id`), reading tar headers, and handing each
//!   regular file's bytes to a [`ContentHook`] while they stream past. Layers are independent,
//!   so callers walk them in parallel.
//! - [`Tree`]: applies walked layers in order the way a container runtime does (whiteouts,
//!   opaque directories, hardlinks sharing an inode, symlinks resolved inside the image root),
//!   remembering which layer last wrote each entry and which bytes later layers waste.
//! - [`path`]: the normalisation of untrusted tar paths.
//!
//! It must never write image content to the host filesystem, never follow a link outside the
//! image root, never hold a whole layer in memory, and never panic on hostile input: every
//! problem is a [`WalkError`] or [`ApplyError`] naming the entry path.

mod budget;
mod changes;
mod compression;
mod digest;
mod efficiency;
mod error;
mod names;
mod offload;
pub mod path;
mod readahead;
mod sparse;
pub mod tarstream;
mod tree;
mod walk;

pub use budget::{
    CompressedSide, ExpandedSide, ExpansionBudget, ExpansionExceeded, parse_byte_size,
};
pub use changes::ChangeBuffer;
pub use compression::{Compression, Decoder, decoder, describe_content, is_tar_header};
pub use digest::{HashingReader, Sha256Digest};
pub use efficiency::{Efficiency, EfficiencySummary, Inefficiency};
pub use error::{ApplyError, WalkError};
pub use offload::{OFFLOAD_AFTER, Offload, has_spare_core};
pub use readahead::ReadAhead;
pub use tree::{EntryView, FirstLayer, LayerStats, Lookup, MAX_SYMLINK_HOPS, NodeId, Tree};
pub use walk::{
    Change, ContentHook, EntryMeta, FileKind, LayerWalk, Limits, NoContent, walk_layer,
    walk_layer_into, walk_layer_within,
};
