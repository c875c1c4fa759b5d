//! Interned names: every distinct path component stored once, in one arena, and named by a
//! `u32`. Trees of many files repeat few names (`index.js`, `package.json`, `lib`), and a
//! `u32` is a quarter of a boxed slice.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher, RandomState};

/// "No name" and "no node": the end of a chain or a list.
pub(crate) const NONE: u32 = u32::MAX;

/// A hasher for keys that are already uniform 64-bit hashes (keyed SipHash outputs): it
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

/// The names of one tree (or one path set), each stored once.
#[derive(Debug, Default)]
pub(crate) struct Names {
    bytes: Vec<u8>,
    /// Where name `i` ends in `bytes`; it starts where name `i - 1` ends.
    ends: Vec<u64>,
    /// A name's keyed hash → the newest name with that hash; `next` chains the others.
    index: HashIndex,
    next: Vec<u32>,
    keys: RandomState,
}

impl Names {
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
        let mut names = Names::default();
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
}
