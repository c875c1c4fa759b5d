//! The layer facts cache kept in the store (`facts_cache = "store"`), so that every replica
//! sharing the database walks a layer once, and the scan's facts cache events counted in the
//! metrics.
//!
//! The store only keeps bytes: `drydock_scan` checks every entry it gets back (its own key,
//! version and a sha256 of the whole), so a damaged row or a database answering with another
//! row is walked again, never believed. A store that cannot be reached is a miss, logged: the
//! scan goes on and walks the layer.

use std::sync::Arc;
use std::time::Instant;

use drydock_scan::{FactsCacheEvent, FactsKey, FactsStore, ScanProgress};

use crate::metrics::Metrics;
use crate::state::now;
use crate::store::Store;

/// A [`FactsStore`] over the server's [`Store`].
#[derive(Debug)]
pub struct StoreFacts(pub Arc<dyn Store>);

impl FactsStore for StoreFacts {
    fn head(&self, key: &FactsKey<'_>, len: usize) -> Option<Vec<u8>> {
        let head = if len > crate::sql::FACTS_HEAD_LEN {
            self.0.facts_get(key.version, key.diff_id, now())
        } else {
            self.0.facts_head(key.version, key.diff_id)
        };
        match head {
            Ok(head) => head.map(|mut head| {
                head.truncate(len);
                head
            }),
            Err(e) => {
                log::warn!("{}: facts cache lookup failed: {e}", key.diff_id);
                None
            }
        }
    }

    fn get(&self, key: &FactsKey<'_>) -> Option<Vec<u8>> {
        let started = Instant::now();
        let entry = self
            .0
            .facts_get(key.version, key.diff_id, now())
            .map_err(|e| log::warn!("{}: facts cache read failed: {e}", key.diff_id))
            .ok()
            .flatten();
        log::debug!(
            "{}: {} bytes from the store's facts cache in {:.2?}",
            key.diff_id,
            entry.as_ref().map_or(0, Vec::len),
            started.elapsed()
        );
        entry
    }

    fn put(&self, key: &FactsKey<'_>, entry: &[u8]) -> bool {
        let started = Instant::now();
        let stored = self
            .0
            .facts_put(key.version, key.diff_id, entry, now())
            .map_err(|e| log::warn!("{}: facts cache write failed: {e}", key.diff_id))
            .is_ok();
        log::debug!(
            "{}: {} bytes into the store's facts cache in {:.2?}",
            key.diff_id,
            entry.len(),
            started.elapsed()
        );
        stored
    }

    fn claim(&self, key: &FactsKey<'_>) -> Option<Box<dyn Send>> {
        self.0
            .facts_claim(key.version, key.diff_id)
            .unwrap_or_else(|e| {
                // Walked without telling the other replicas: at worst twice.
                log::debug!("{}: the walk is not claimed: {e}", key.diff_id);
                Some(Box::new(()))
            })
    }
}

/// A scan's progress as the server sees it: only what the facts cache did, counted.
pub struct CountFacts<'a>(pub &'a Metrics);

impl ScanProgress for CountFacts<'_> {
    fn facts_cache(&self, event: FactsCacheEvent) {
        self.0.facts_cache(match event {
            FactsCacheEvent::Hit => "hit",
            FactsCacheEvent::Miss => "miss",
            FactsCacheEvent::Ignored => "ignored",
            FactsCacheEvent::Stored => "stored",
            FactsCacheEvent::Snapshot => "snapshot",
        });
    }
}
