//! Interned names: every distinct path component stored once, in one arena, and named by a
//! `u32`. Trees of many files repeat few names (`index.js`, `package.json`, `lib`), and a
//! `u32` is a quarter of a boxed slice.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// "No name" and "no node": the end of a chain or a list.
pub(crate) const NONE: u32 = u32::MAX;

/// The keyed hash of the maps whose keys come from the image (names, ids derived from
/// them): foldhash, seeded at random per process and per map, as SipHash (std's
/// `RandomState`) was, at a few times less cost per key. Names are chosen by whoever built
/// the image, so the seed must stay secret and random: never a fixed one.
pub(crate) type Keyed = foldhash::fast::RandomState;

/// A map keyed by the [`Keyed`] hash.
pub(crate) type KeyedMap<K, V> = HashMap<K, V, Keyed>;

/// The key of a (container, name) index: one word, hashed once.
pub(crate) fn pair_key(container: u32, name: u32) -> u64 {
    (u64::from(container) << 32) | u64::from(name)
}

/// A hasher for keys that are already uniform 64-bit hashes (keyed hash outputs): it
/// passes them through, so that no key is hashed twice.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type HashIndex = HashMap<u64, u32, BuildHasherDefault<PassThrough>>;

/// The heap bytes a hash map takes: its buckets and their control bytes (an estimate, as
/// hashbrown lays them out).
pub(crate) fn map_heap<K, V, S>(map: &HashMap<K, V, S>) -> usize {
    map.capacity() * (std::mem::size_of::<(K, V)>() + 1)
}

/// The names of one tree (or one path set), each stored once. `S` keys the hash of names
/// (tests use a degenerate one to make every name collide).
#[derive(Debug, Default, Clone)]
pub(crate) struct Names<S = Keyed> {
    bytes: Vec<u8>,
    /// Where name `i` ends in `bytes`; it starts where name `i - 1` ends.
    ends: Vec<u64>,
    /// A name's keyed hash → the newest name with that hash; `next` chains the others.
    index: HashIndex,
    next: Vec<u32>,
    keys: S,
}

impl<S: BuildHasher> Names<S> {
    /// The heap bytes these names take.
    pub(crate) fn heap_size(&self) -> usize {
        self.bytes.capacity()
            + self.ends.capacity() * 8
            + map_heap(&self.index)
            + self.next.capacity() * 4
    }

    fn hash(&self, name: &[u8]) -> u64 {
        self.keys.hash_one(name)
    }

    /// The bytes of name `id`.
    pub(crate) fn get(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    /// The id of `name`, if it was ever interned.
    pub(crate) fn find(&self, name: &[u8]) -> Option<u32> {
        let mut id = *self.index.get(&self.hash(name))?;
        while id != NONE {
            if self.get(id) == name {
                return Some(id);
            }
            id = self.next[id as usize];
        }
        None
    }

    /// The id of `name`, interning it when it is new.
    pub(crate) fn intern(&mut self, name: &[u8]) -> u32 {
        let hash = self.hash(name);
        let head = self.index.get(&hash).copied().unwrap_or(NONE);
        let mut id = head;
        while id != NONE {
            if self.get(id) == name {
                return id;
            }
            id = self.next[id as usize];
        }
        let id = u32::try_from(self.ends.len()).unwrap_or(NONE);
        self.bytes.extend_from_slice(name);
        self.ends.push(self.bytes.len() as u64);
        self.next.push(head);
        self.index.insert(hash, id);
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_stored_once_and_found_again() {
        let mut names: Names = Names::default();
        let a = names.intern(b"index.js");
        let b = names.intern(b"lib");
        assert_eq!(names.intern(b"index.js"), a);
        assert_ne!(a, b);
        assert_eq!(names.get(b), b"lib");
        assert_eq!(names.find(b"lib"), Some(b));
        assert_eq!(names.find(b"nope"), None);
        let empty = names.intern(b"");
        assert_eq!(names.get(empty), b"");
    }

    /// Interns `count` names (with prefixes of each other, empty and non-UTF-8 ones) into
    /// `names`, then checks that every one is found again under its first id.
    fn every_name_found<S: BuildHasher>(mut names: Names<S>, count: usize) {
        let name = |i: usize| -> Vec<u8> {
            let mut name = format!("n{i}").into_bytes();
            name.truncate(1 + i % 4);
            name.extend(std::iter::repeat_n(b'\xff', i % 3));
            name.extend_from_slice(&i.to_le_bytes()[..i % 5]);
            name
        };
        let mut ids = std::collections::HashMap::new();
        for i in 0..count {
            let id = names.intern(&name(i));
            assert_eq!(*ids.entry(name(i)).or_insert(id), id, "name {i}");
        }
        let distinct: std::collections::HashSet<u32> = ids.values().copied().collect();
        assert_eq!(distinct.len(), ids.len());
        for (name, &id) in &ids {
            assert_eq!(names.find(name), Some(id));
            assert_eq!(names.intern(name), id);
            assert_eq!(names.get(id), name.as_slice());
        }
        assert_eq!(names.find(b"absent"), None);
    }

    #[test]
    fn every_name_is_found_after_many_inserts() {
        every_name_found(Names::<Keyed>::default(), 50_000);
    }

    /// Every name hashes the same: one chain holds them all.
    #[derive(Debug, Default, Clone, Copy)]
    struct Colliding;

    impl BuildHasher for Colliding {
        type Hasher = Colliding;
        fn build_hasher(&self) -> Colliding {
            Colliding
        }
    }

    impl Hasher for Colliding {
        fn finish(&self) -> u64 {
            7
        }
        fn write(&mut self, _: &[u8]) {}
    }

    #[test]
    fn every_name_is_found_when_every_hash_collides() {
        every_name_found(Names::<Colliding>::default(), 2_000);
    }
}
