//! A layer's changes held compactly between its walk and its turn to be applied: one byte
//! stream per layer, each path stored as the bytes it does not share with the path before it
//! (tar order keeps a directory's entries together, so that is a file name), numbers as
//! varints, and the facts, which only some files have, in a list of their own. A million
//! small files take some 20 MB instead of 200.

use crate::walk::{Change, EntryMeta, FileKind};

const WHITEOUT: u8 = 0;
const OPAQUE: u8 = 1;
const ADD: u8 = 2;
const HARDLINK: u8 = 3;
const HAS_FACT: u8 = 1 << 5;
const HAS_LINK: u8 = 1 << 6;
const HAS_EXTRA: u8 = 1 << 7;

const KINDS: [FileKind; 6] = [
    FileKind::File,
    FileKind::Dir,
    FileKind::Symlink,
    FileKind::Char,
    FileKind::Block,
    FileKind::Fifo,
];

fn kind_code(kind: FileKind) -> u8 {
    match kind {
        FileKind::File => 0,
        FileKind::Dir => 1,
        FileKind::Symlink => 2,
        FileKind::Char => 3,
        FileKind::Block => 4,
        FileKind::Fifo => 5,
    }
}

/// One layer's changes in tar order, compact. Build it with [`ChangeBuffer::push`]; read it
/// with [`ChangeBuffer::iter`] (without facts) and [`ChangeBuffer::into_changes`].
#[derive(Debug)]
pub struct ChangeBuffer<F> {
    bytes: Vec<u8>,
    facts: Vec<F>,
    len: usize,
    last_path: Vec<u8>,
}

impl<F> Default for ChangeBuffer<F> {
    fn default() -> Self {
        Self::new()
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

impl<F> ChangeBuffer<F> {
    pub fn new() -> Self {
        Self {
            bytes: Vec::new(),
            facts: Vec::new(),
            len: 0,
            last_path: Vec::new(),
        }
    }

    /// How many changes it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the next change of the layer.
    pub fn push(&mut self, change: Change<F>) {
        self.len += 1;
        match change {
            Change::Whiteout { path } => {
                self.bytes.push(WHITEOUT);
                self.put_path(&path);
            }
            Change::Opaque { dir } => {
                self.bytes.push(OPAQUE);
                self.put_path(&dir);
            }
            Change::Add {
                path,
                kind,
                meta,
                link,
                fact,
            } => {
                let mut tag = ADD | (kind_code(kind) << 2);
                if fact.is_some() {
                    tag |= HAS_FACT;
                }
                if link.is_some() {
                    tag |= HAS_LINK;
                }
                if meta.device.is_some() || meta.capability.is_some() {
                    tag |= HAS_EXTRA;
                }
                self.bytes.push(tag);
                self.put_path(&path);
                self.put_meta(&meta);
                if let Some(link) = link {
                    put_bytes(&mut self.bytes, &link);
                }
                if let Some(fact) = fact {
                    self.facts.push(fact);
                }
            }
            Change::Hardlink { path, target, meta } => {
                let mut tag = HARDLINK;
                if meta.device.is_some() || meta.capability.is_some() {
                    tag |= HAS_EXTRA;
                }
                self.bytes.push(tag);
                self.put_path(&path);
                self.put_meta(&meta);
                put_bytes(&mut self.bytes, &target);
            }
        }
    }

    fn put_path(&mut self, path: &[u8]) {
        let shared = path
            .iter()
            .zip(&self.last_path)
            .take_while(|(a, b)| a == b)
            .count();
        put_varint(&mut self.bytes, shared as u64);
        put_bytes(&mut self.bytes, &path[shared..]);
        self.last_path.truncate(shared);
        self.last_path.extend_from_slice(&path[shared..]);
    }

    fn put_meta(&mut self, meta: &EntryMeta) {
        for value in [
            u64::from(meta.mode),
            meta.uid,
            meta.gid,
            meta.mtime,
            meta.size,
        ] {
            put_varint(&mut self.bytes, value);
        }
        if meta.device.is_some() || meta.capability.is_some() {
            match meta.device {
                Some((major, minor)) => {
                    self.bytes.push(1);
                    put_varint(&mut self.bytes, u64::from(major));
                    put_varint(&mut self.bytes, u64::from(minor));
                }
                None => self.bytes.push(0),
            }
            match &meta.capability {
                Some(capability) => {
                    self.bytes.push(1);
                    put_bytes(&mut self.bytes, capability);
                }
                None => self.bytes.push(0),
            }
        }
    }

    /// The version of this byte encoding. Anything that stores [`ChangeBuffer::raw`] beyond
    /// one scan (the layer facts cache) keys it by this number: bump it whenever the encoding
    /// changes.
    pub const ENCODING: u32 = 1;

    /// This crate's version, for the same keys: the walk that fills a buffer may change with
    /// it.
    pub const CRATE_VERSION: &'static str = env!("CARGO_PKG_VERSION");

    /// The encoded changes and the facts, in order, as [`ChangeBuffer::from_raw`] takes them
    /// back.
    pub fn raw(&self) -> (&[u8], &[F]) {
        (&self.bytes, &self.facts)
    }

    /// A buffer from what [`ChangeBuffer::raw`] gave. The bytes are read to their end once:
    /// `None` unless every change decodes, nothing is left over and there is exactly one fact
    /// per change that has one. (The bytes may come from a file: a damaged one is refused,
    /// never half read.)
    pub fn from_raw(bytes: Vec<u8>, facts: Vec<F>) -> Option<Self> {
        let mut reader = Reader {
            bytes: &bytes,
            at: 0,
            path: Vec::new(),
        };
        // Checked without building a change: no path, metadata or link is allocated.
        let (mut len, mut wanted) = (0usize, 0usize);
        while reader.at < bytes.len() {
            wanted += usize::from(reader.check()?);
            len += 1;
        }
        if wanted != facts.len() {
            return None;
        }
        let last_path = reader.path;
        Some(Self {
            bytes,
            facts,
            len,
            last_path,
        })
    }

    /// The changes in order, without their facts (for what only needs paths and metadata).
    pub fn iter(&self) -> impl Iterator<Item = Change<()>> + '_ {
        let mut reader = Reader {
            bytes: &self.bytes,
            at: 0,
            path: Vec::new(),
        };
        std::iter::from_fn(move || reader.next(&mut || Some(())))
    }

    /// The changes in order, with their facts.
    pub fn into_changes(self) -> impl Iterator<Item = Change<F>> {
        let bytes = self.bytes;
        let mut facts = self.facts.into_iter();
        let mut at = 0;
        let mut path = Vec::new();
        std::iter::from_fn(move || {
            let mut reader = Reader {
                bytes: &bytes,
                at,
                path: std::mem::take(&mut path),
            };
            let change = reader.next(&mut || facts.next());
            at = reader.at;
            path = reader.path;
            change
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    path: Vec<u8>,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        let mut shift = 0;
        loop {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f).checked_shl(shift).unwrap_or(0);
            if byte & 0x80 == 0 {
                return Some(value);
            }
            shift += 7;
        }
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.varint()?).ok()?;
        let end = self.at.checked_add(len)?;
        let bytes = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(bytes)
    }

    fn path(&mut self) -> Option<Vec<u8>> {
        self.path_in_place()?;
        Some(self.path.clone())
    }

    /// The path of the next change, into `self.path` in place (no allocation once it is as
    /// long as the longest path).
    fn path_in_place(&mut self) -> Option<()> {
        let shared = usize::try_from(self.varint()?).ok()?;
        self.path.truncate(shared);
        let suffix = self.bytes()?;
        self.path.extend_from_slice(suffix);
        Some(())
    }

    /// [`Reader::meta`] read and dropped: the same checks, nothing allocated.
    fn skip_meta(&mut self, extra: bool) -> Option<()> {
        u32::try_from(self.varint()?).ok()?;
        for _ in 0..4 {
            self.varint()?;
        }
        if extra {
            if self.byte()? == 1 {
                u32::try_from(self.varint()?).ok()?;
                u32::try_from(self.varint()?).ok()?;
            }
            if self.byte()? == 1 {
                self.bytes()?;
            }
        }
        Some(())
    }

    /// Reads past the next change exactly as [`Reader::next`] would (`None` where it fails),
    /// building nothing but the path in place; whether the change has a fact.
    fn check(&mut self) -> Option<bool> {
        let tag = self.byte()?;
        self.path_in_place()?;
        Some(match tag & 0b11 {
            WHITEOUT | OPAQUE => false,
            ADD => {
                KINDS.get(usize::from((tag >> 2) & 0b111))?;
                self.skip_meta(tag & HAS_EXTRA != 0)?;
                if tag & HAS_LINK != 0 {
                    self.bytes()?;
                }
                tag & HAS_FACT != 0
            }
            _ => {
                self.skip_meta(tag & HAS_EXTRA != 0)?;
                self.bytes()?;
                false
            }
        })
    }

    fn meta(&mut self, extra: bool) -> Option<EntryMeta> {
        let mode = u32::try_from(self.varint()?).ok()?;
        let (uid, gid, mtime, size) = (
            self.varint()?,
            self.varint()?,
            self.varint()?,
            self.varint()?,
        );
        let mut meta = EntryMeta {
            mode,
            uid,
            gid,
            mtime,
            size,
            device: None,
            capability: None,
        };
        if extra {
            if self.byte()? == 1 {
                let major = u32::try_from(self.varint()?).ok()?;
                let minor = u32::try_from(self.varint()?).ok()?;
                meta.device = Some((major, minor));
            }
            if self.byte()? == 1 {
                meta.capability = Some(self.bytes()?.into());
            }
        }
        Some(meta)
    }

    fn next<F>(&mut self, fact: &mut dyn FnMut() -> Option<F>) -> Option<Change<F>> {
        let tag = self.byte()?;
        let path = self.path()?;
        Some(match tag & 0b11 {
            WHITEOUT => Change::Whiteout { path },
            OPAQUE => Change::Opaque { dir: path },
            ADD => {
                let kind = *KINDS.get(usize::from((tag >> 2) & 0b111))?;
                let meta = self.meta(tag & HAS_EXTRA != 0)?;
                let link = if tag & HAS_LINK != 0 {
                    Some(self.bytes()?.to_vec())
                } else {
                    None
                };
                let fact = if tag & HAS_FACT != 0 { fact() } else { None };
                Change::Add {
                    path,
                    kind,
                    meta,
                    link,
                    fact,
                }
            }
            _ => {
                let meta = self.meta(tag & HAS_EXTRA != 0)?;
                let target = self.bytes()?.to_vec();
                Change::Hardlink { path, target, meta }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe<F: std::fmt::Debug>(change: &Change<F>) -> String {
        format!("{change:?}")
    }

    #[test]
    fn every_change_comes_back_as_it_went_in() {
        let meta = EntryMeta {
            mode: 0o4755,
            uid: u64::from(u32::MAX) + 7,
            gid: 3,
            mtime: 1 << 40,
            size: 123_456_789,
            device: None,
            capability: Some(Box::new(*b"\x01\x00\x00\x02")),
        };
        let device = EntryMeta {
            device: Some((4, 64)),
            ..EntryMeta::default()
        };
        let changes: Vec<Change<u8>> = vec![
            Change::Add {
                path: b"usr/bin/ping".to_vec(),
                kind: FileKind::File,
                meta: meta.clone(),
                link: None,
                fact: Some(7),
            },
            Change::Add {
                path: b"usr/bin/pong".to_vec(),
                kind: FileKind::File,
                meta: EntryMeta::default(),
                link: None,
                fact: None,
            },
            Change::Add {
                path: b"usr/bin".to_vec(),
                kind: FileKind::Dir,
                meta: EntryMeta::default(),
                link: None,
                fact: None,
            },
            Change::Add {
                path: b"dev/tty0".to_vec(),
                kind: FileKind::Char,
                meta: device,
                link: None,
                fact: None,
            },
            Change::Add {
                path: b"lib".to_vec(),
                kind: FileKind::Symlink,
                meta: EntryMeta::default(),
                link: Some(b"usr/lib".to_vec()),
                fact: None,
            },
            Change::Hardlink {
                path: b"usr/bin/ping6".to_vec(),
                target: b"usr/bin/ping".to_vec(),
                meta,
            },
            Change::Whiteout {
                path: b"etc/\xffold".to_vec(),
            },
            Change::Opaque { dir: Vec::new() },
            Change::Add {
                path: b"a".to_vec(),
                kind: FileKind::Fifo,
                meta: EntryMeta::default(),
                link: None,
                fact: Some(9),
            },
        ];
        let expected: Vec<String> = changes.iter().map(describe).collect();
        let mut buffer = ChangeBuffer::new();
        for change in changes {
            buffer.push(change);
        }
        assert_eq!(buffer.len(), expected.len());
        let back: Vec<String> = buffer.into_changes().map(|c| describe(&c)).collect();
        assert_eq!(back, expected);
    }

    #[test]
    fn raw_bytes_come_back_as_the_same_buffer_and_damage_is_refused() {
        let mut buffer = ChangeBuffer::new();
        buffer.push(Change::Add {
            path: b"etc/passwd".to_vec(),
            kind: FileKind::File,
            meta: EntryMeta::default(),
            link: None,
            fact: Some(1u8),
        });
        buffer.push(Change::Add {
            path: b"etc/group".to_vec(),
            kind: FileKind::File,
            meta: EntryMeta::default(),
            link: None,
            fact: None,
        });
        buffer.push(Change::Whiteout {
            path: b"etc/old".to_vec(),
        });
        let (bytes, facts) = buffer.raw();
        let (bytes, facts) = (bytes.to_vec(), facts.to_vec());
        let expected: Vec<String> = ChangeBuffer::from_raw(bytes.clone(), facts.clone())
            .unwrap()
            .into_changes()
            .map(|c| describe(&c))
            .collect();
        let original: Vec<String> = buffer.into_changes().map(|c| describe(&c)).collect();
        assert_eq!(expected, original);
        let mut again = ChangeBuffer::from_raw(bytes.clone(), facts.clone()).unwrap();
        assert_eq!(again.len(), 3);
        // Pushing after from_raw continues the path prefixes correctly.
        again.push(Change::Whiteout {
            path: b"etc/older".to_vec(),
        });
        assert_eq!(again.iter().count(), 4);
        // One fact too many or too few, a truncated stream, trailing garbage: refused.
        assert!(ChangeBuffer::from_raw(bytes.clone(), vec![1, 2]).is_none());
        assert!(ChangeBuffer::<u8>::from_raw(bytes.clone(), vec![]).is_none());
        assert!(ChangeBuffer::from_raw(bytes[..bytes.len() - 1].to_vec(), facts.clone()).is_none());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ChangeBuffer::from_raw(longer, facts).is_none());
    }

    /// What `from_raw` accepted when it decoded every change whole: the reference for the
    /// allocation-free check.
    fn decodes_whole(bytes: &[u8], facts: usize) -> Option<(usize, Vec<u8>)> {
        let mut reader = Reader {
            bytes,
            at: 0,
            path: Vec::new(),
        };
        let (mut len, mut wanted) = (0, 0);
        while reader.at < bytes.len() {
            reader.next(&mut || {
                wanted += 1;
                Some(())
            })?;
            len += 1;
        }
        (wanted == facts).then_some((len, reader.path))
    }

    #[test]
    fn from_raw_accepts_exactly_what_decodes_whole() {
        let mut buffer = ChangeBuffer::new();
        let extra = EntryMeta {
            device: Some((u32::MAX, 1)),
            capability: Some(Box::new(*b"cap")),
            ..EntryMeta::default()
        };
        buffer.push(Change::Add {
            path: b"usr/lib/libc.so.6".to_vec(),
            kind: FileKind::File,
            meta: extra.clone(),
            link: None,
            fact: Some(1u8),
        });
        buffer.push(Change::Add {
            path: b"usr/lib/libm.so".to_vec(),
            kind: FileKind::Symlink,
            meta: EntryMeta::default(),
            link: Some(b"libm.so.6".to_vec()),
            fact: None,
        });
        buffer.push(Change::Hardlink {
            path: b"usr/bin/x".to_vec(),
            target: b"usr/lib/libc.so.6".to_vec(),
            meta: extra,
        });
        buffer.push(Change::Opaque {
            dir: b"etc".to_vec(),
        });
        buffer.push(Change::Whiteout {
            path: b"etc/y".to_vec(),
        });
        let (bytes, facts) = buffer.raw();
        let (bytes, facts) = (bytes.to_vec(), facts.to_vec());
        let same = |bytes: &[u8], facts: &[u8]| {
            let reference = decodes_whole(bytes, facts.len());
            let checked = ChangeBuffer::from_raw(bytes.to_vec(), facts.to_vec())
                .map(|b| (b.len, b.last_path));
            assert_eq!(checked, reference, "{bytes:?}");
        };
        same(&bytes, &facts);
        assert_eq!(
            ChangeBuffer::from_raw(bytes.clone(), facts.clone())
                .unwrap()
                .last_path,
            b"etc/y"
        );
        for cut in 0..bytes.len() {
            same(&bytes[..cut], &facts);
        }
        for at in 0..bytes.len() {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                same(&damaged, &facts);
                same(&damaged, &[]);
            }
        }
    }

    #[test]
    fn iter_gives_the_same_changes_without_facts() {
        let mut buffer = ChangeBuffer::new();
        buffer.push(Change::Add {
            path: b"x/y".to_vec(),
            kind: FileKind::File,
            meta: EntryMeta::default(),
            link: None,
            fact: Some("fact"),
        });
        buffer.push(Change::Whiteout {
            path: b"x/z".to_vec(),
        });
        let paths: Vec<String> = buffer
            .iter()
            .map(|c| match c {
                Change::Add { path, fact, .. } => {
                    format!("{}{:?}", String::from_utf8_lossy(&path), fact)
                }
                other => describe(&other),
            })
            .collect();
        assert_eq!(paths, ["x/ySome(())", "Whiteout { path: [120, 47, 122] }"]);
    }
}
