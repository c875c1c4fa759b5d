//! A layer walk over arbitrary bytes (plain, gzip or zstd, then tar) must end in facts or an
//! error, never a panic, and applying what it found must not panic either.
#![no_main]

use drydock_layers::{Limits, NoContent, Tree, walk_layer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_entries: 10_000, max_tar_bytes: 16 << 20 };
    if let Ok(walk) = walk_layer(data, &NoContent, &limits) {
        let mut tree: Tree<()> = Tree::new();
        let _ = tree.apply(0, walk.changes);
        let _ = tree.entries();
    }
});
