use std::io::{self, Read};
use std::sync::Arc;

use tar::EntryType;

use crate::budget::{CompressedSide, ExpandedSide, ExpansionBudget};
use crate::compression::{Compression, decoder};
use crate::digest::{HashingReader, Sha256Digest};
use crate::error::WalkError;
use crate::path;
use crate::sparse;
use crate::tarstream::{EntryBounds, ForwardSeek, StreamEnd, refused_seek};

/// Bounds on what one layer may make us do; past them the layer is refused.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Tar entries in one layer.
    pub max_entries: u64,
    /// Uncompressed bytes of one layer (`--max-layer-size`).
    pub max_tar_bytes: u64,
    /// Uncompressed bytes per compressed byte, over the whole scan (`--max-expansion`): a
    /// decompression bomb costs time, never memory, so it is cut off by its ratio.
    pub max_expansion: u64,
    /// Uncompressed bytes a scan may expand to whatever its ratio (a layer holding a large
    /// file of zeros is real; minutes of zeros from a few megabytes are not).
    pub expansion_allowance: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 5_000_000,
            max_tar_bytes: 64 << 30,
            max_expansion: 200,
            expansion_allowance: 2 << 30,
        }
    }
}

impl Limits {
    /// A fresh budget for the streams of one scan.
    pub fn budget(&self) -> Arc<ExpansionBudget> {
        Arc::new(ExpansionBudget::new(
            self.max_expansion,
            self.expansion_allowance,
        ))
    }
}

/// What a tar entry creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
}

/// The metadata a tar header gives an entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    /// Content size for regular files, 0 for the rest.
    pub size: u64,
    /// Device numbers of character and block devices.
    pub device: Option<(u32, u32)>,
    /// The `security.capability` xattr, the only one a check needs.
    pub capability: Option<Box<[u8]>>,
}

/// One thing a layer does to the filesystem below it, in tar order.
#[derive(Debug, Clone)]
pub enum Change<F> {
    /// `.wh.NAME`: `path` disappears from the layers below.
    Whiteout { path: Vec<u8> },
    /// `.wh..wh..opq`: the directory `dir` loses every child from the layers below.
    Opaque { dir: Vec<u8> },
    /// A new entry. `link` is a symlink's target as written in the tar header.
    Add {
        path: Vec<u8>,
        kind: FileKind,
        meta: EntryMeta,
        link: Option<Vec<u8>>,
        fact: Option<F>,
    },
    /// A hardlink to `target` (normalised), which an earlier entry or layer wrote.
    Hardlink {
        path: Vec<u8>,
        target: Vec<u8>,
        meta: EntryMeta,
    },
}

/// Everything one pass over a layer blob learns.
#[derive(Debug, Clone)]
pub struct LayerWalk<F> {
    pub compression: Compression,
    /// sha256 and size of the blob as stored (compressed).
    pub blob_digest: Sha256Digest,
    pub blob_size: u64,
    /// sha256 and size of the uncompressed tar: the `diff_id`.
    pub diff_id: Sha256Digest,
    pub tar_size: u64,
    pub changes: Vec<Change<F>>,
}

/// Looks at file contents while the layer streams past, so that no layer is read twice.
///
/// `inspect` is called for every regular file with a reader over its bytes; it reads as little
/// as it can (the first bytes tell an ELF file from the rest) and returns a fact to attach to
/// the entry. Whatever it leaves unread is skipped. I/O errors from `content` are the layer's
/// own errors (a truncated blob) and must be returned as they are.
pub trait ContentHook: Sync {
    type Fact: Send;
    fn inspect(
        &self,
        path: &[u8],
        meta: &EntryMeta,
        content: &mut dyn Read,
    ) -> io::Result<Option<Self::Fact>>;
}

/// A hook that reads no content.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoContent;

impl ContentHook for NoContent {
    type Fact = ();
    fn inspect(&self, _: &[u8], _: &EntryMeta, _: &mut dyn Read) -> io::Result<Option<()>> {
        Ok(None)
    }
}

/// Walks one layer blob from its first byte to its last: decompresses it (sniffing the
/// compression), hashes the blob and the tar, and records every tar entry as a [`Change`].
/// The blob is read exactly once and never held whole in memory.
pub fn walk_layer<R: Read, H: ContentHook>(
    blob: R,
    hook: &H,
    limits: &Limits,
) -> Result<LayerWalk<H::Fact>, WalkError> {
    walk_layer_within(blob, hook, limits, &limits.budget())
}

/// [`walk_layer`] within an expansion budget shared by every layer of a scan.
pub fn walk_layer_within<R: Read, H: ContentHook>(
    blob: R,
    hook: &H,
    limits: &Limits,
    budget: &Arc<ExpansionBudget>,
) -> Result<LayerWalk<H::Fact>, WalkError> {
    let mut changes = Vec::new();
    let mut walk = walk_stream(blob, hook, limits, budget, false, &mut |c| changes.push(c))?;
    walk.changes = changes;
    Ok(walk)
}

/// [`walk_layer_within`] that hands each change to `sink` in tar order as the walk reaches it,
/// instead of collecting them: the caller applies or stores them as they come, and the
/// returned [`LayerWalk`] has no changes. On an error, `sink` has seen the changes before it.
///
/// A long layer's two digests (the blob's and the tar's) are computed on helper threads, fed
/// copies of the bytes through bounded queues, so that this thread only reads, decompresses
/// and walks. [`walk_layer_within`] hashes on the caller's thread: it is the plain path the
/// differential test compares this one with.
pub fn walk_layer_into<R: Read, H: ContentHook>(
    blob: R,
    hook: &H,
    limits: &Limits,
    budget: &Arc<ExpansionBudget>,
    sink: &mut dyn FnMut(Change<H::Fact>),
) -> Result<LayerWalk<H::Fact>, WalkError> {
    walk_stream(blob, hook, limits, budget, true, sink)
}

fn walk_stream<R: Read, H: ContentHook>(
    blob: R,
    hook: &H,
    limits: &Limits,
    budget: &Arc<ExpansionBudget>,
    hash_on_helpers: bool,
    sink: &mut dyn FnMut(Change<H::Fact>),
) -> Result<LayerWalk<H::Fact>, WalkError> {
    let mut raw = HashingReader::new(CompressedSide::new(blob, Arc::clone(budget)));
    if hash_on_helpers {
        raw = raw.on_a_helper_thread();
    }
    let (compression, decoded) = decoder(&mut raw).map_err(WalkError::Read)?;
    let decoded = ExpandedSide::new(decoded, Arc::clone(budget));
    let mut tar_stream = HashingReader::with_limit(decoded, limits.max_tar_bytes);
    if hash_on_helpers {
        tar_stream = tar_stream.on_a_helper_thread();
    }
    if compression == Compression::None {
        // The tar is the blob: one sha256 gives both the blob digest and the diff id.
        tar_stream = tar_stream.without_hashing();
    }
    let over_limit = |e: &io::Error| -> Option<WalkError> {
        if e.kind() == io::ErrorKind::FileTooLarge {
            return Some(WalkError::TooLarge {
                limit: limits.max_tar_bytes,
            });
        }
        ExpansionBudget::exceeded(e).map(|exceeded| WalkError::Expansion {
            ratio: exceeded.ratio,
            allowance: exceeded.allowance,
        })
    };
    match read_entries(&mut tar_stream, hook, limits, sink) {
        Err(WalkError::Entry { source, .. } | WalkError::Read(source))
            if over_limit(&source).is_some() =>
        {
            return Err(over_limit(&source).unwrap_or(WalkError::Read(source)));
        }
        other => other?,
    }
    let (diff_id, tar_size) = tar_stream
        .finish()
        .map_err(|e| over_limit(&e).unwrap_or(WalkError::Read(e)))?;
    let (blob_digest, blob_size) = raw.finish().map_err(WalkError::Read)?;
    let blob_digest =
        blob_digest.ok_or_else(|| WalkError::Read(io::Error::other("blob not hashed")))?;
    let diff_id = diff_id.unwrap_or(blob_digest);
    Ok(LayerWalk {
        compression,
        blob_digest,
        blob_size,
        diff_id,
        tar_size,
        changes: Vec::new(),
    })
}

fn read_entries<R: Read, H: ContentHook>(
    tar_stream: &mut HashingReader<R>,
    hook: &H,
    limits: &Limits,
    sink: &mut dyn FnMut(Change<H::Fact>),
) -> Result<(), WalkError> {
    let (reader, position) = ForwardSeek::new(&mut *tar_stream);
    let mut archive = tar::Archive::new(reader);
    let mut bounds = EntryBounds::default();
    // The raw name of the last entry (none at the start), made printable only for a message.
    let mut last_raw: Option<Vec<u8>> = None;
    let last_path = |last_raw: &Option<Vec<u8>>| match last_raw {
        Some(raw) => path::for_message(raw),
        None => String::from("(start of the layer)"),
    };
    let mut count = 0u64;
    let mut declared_bytes = 0u64;
    let mut entries = archive.entries_with_seek().map_err(WalkError::Read)?;
    let failed = loop {
        let mut entry = match entries.next() {
            None => break None,
            Some(Ok(entry)) => entry,
            Some(Err(source)) => break Some(source),
        };
        bounds.entered(entry.raw_file_position(), entry.size());
        count += 1;
        if count > limits.max_entries {
            return Err(WalkError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let records = pax_records(&mut entry);
        check_pax_numbers(&records).map_err(|r| WalkError::bad(&entry.path_bytes(), r))?;
        let sparse = sparse::pax_sparse(&records)
            .map_err(|r| WalkError::bad(&entry.path_bytes(), format!("PAX sparse records: {r}")))?;
        // A PAX sparse file's entry is named `GNUSparseFile.N/…`; its real name is a record.
        let raw_path = last_raw.get_or_insert_default();
        raw_path.clear();
        match &sparse {
            Some(sparse::PaxSparse {
                name: Some(name), ..
            }) => raw_path.extend_from_slice(name),
            _ => raw_path.extend_from_slice(&entry.path_bytes()),
        }
        let raw_path: &[u8] = raw_path;
        let entry_type = entry.header().entry_type();
        if entry_type.is_pax_global_extensions() {
            continue;
        }
        let size = entry.size();
        declared_bytes = declared_bytes.saturating_add(size);
        if declared_bytes > limits.max_tar_bytes {
            return Err(WalkError::TooLarge {
                limit: limits.max_tar_bytes,
            });
        }
        let normalized = path::normalize(raw_path).map_err(|r| WalkError::bad(raw_path, r))?;
        if let Some(change) = whiteout(&normalized).map_err(|r| WalkError::bad(raw_path, r))? {
            sink(change);
            continue;
        }
        let mut meta = entry_meta(&mut entry, &records).map_err(|r| WalkError::bad(raw_path, r))?;
        let kind = match entry_type {
            EntryType::Regular | EntryType::Continuous => FileKind::File,
            EntryType::Directory => FileKind::Dir,
            EntryType::Symlink => FileKind::Symlink,
            EntryType::Char => FileKind::Char,
            EntryType::Block => FileKind::Block,
            EntryType::Fifo => FileKind::Fifo,
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| WalkError::bad(raw_path, "a hardlink without a target"))?;
                let target = path::normalize(&target)
                    .map_err(|r| WalkError::bad(raw_path, format!("hardlink target: {r}")))?;
                meta.size = 0;
                sink(Change::Hardlink {
                    path: normalized,
                    target,
                    meta,
                });
                continue;
            }
            EntryType::GNUSparse => {
                // Go's archive/tar reads it, but docker, containerd and umoci then stop at
                // "unhandled tar header type 83": such a layer never runs.
                return Err(WalkError::bad(
                    raw_path,
                    "an old GNU sparse entry (type 'S'), which docker, containerd and podman \
                     refuse to unpack; rebuild the layer with PAX sparse files or without --sparse",
                ));
            }
            other => {
                return Err(WalkError::bad(
                    raw_path,
                    format!(
                        "unsupported tar entry type {}",
                        path::printable(&[other.as_byte()])
                    ),
                ));
            }
        };
        if normalized.is_empty() && kind != FileKind::Dir {
            return Err(WalkError::bad(
                raw_path,
                "the image root must be a directory",
            ));
        }
        let mut link = None;
        let mut fact = None;
        match kind {
            FileKind::File => {
                let read_error = |source| WalkError::Entry {
                    path: path::for_message(raw_path),
                    source,
                };
                match sparse {
                    None => {
                        meta.size = size;
                        fact = hook
                            .inspect(&normalized, &meta, &mut entry)
                            .map_err(read_error)?;
                    }
                    Some(sparse) => {
                        let bad = |r: String| WalkError::bad(raw_path, format!("sparse file: {r}"));
                        let (map, map_bytes) = match sparse.map {
                            Some(map) => (map, 0),
                            None => sparse::read_map(&mut entry).map_err(bad)?,
                        };
                        let data = size
                            .checked_sub(map_bytes)
                            .ok_or_else(|| bad("the map is longer than the entry".into()))?;
                        sparse::validate(&map, sparse.real_size, data).map_err(bad)?;
                        meta.size = sparse.real_size;
                        let mut content =
                            sparse::SparseReader::new(&mut entry, map, sparse.real_size);
                        fact = hook
                            .inspect(&normalized, &meta, &mut content)
                            .map_err(read_error)?;
                    }
                }
            }
            FileKind::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| WalkError::bad(raw_path, "a symlink without a target"))?;
                if target.len() > path::MAX_PATH {
                    return Err(WalkError::bad(raw_path, "the symlink target is too long"));
                }
                // A link that climbs out of the root is an attack on extractors, never
                // something a real build produces.
                let (dir, _) = path::split_last(&normalized);
                path::normalize_from(dir, &target).map_err(|r| {
                    WalkError::bad(
                        raw_path,
                        format!("symlink target `{}`: {r}", String::from_utf8_lossy(&target)),
                    )
                })?;
                link = Some(target.into_owned());
            }
            FileKind::Char | FileKind::Block => {
                let major = entry.header().device_major().ok().flatten().unwrap_or(0);
                let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
                meta.device = Some((major, minor));
            }
            FileKind::Dir | FileKind::Fifo => {}
        }
        sink(Change::Add {
            path: normalized,
            kind,
            meta,
            link,
            fact,
        });
    };
    let Some(mut source) = failed else {
        return Ok(());
    };
    if refused_seek(&source) {
        // The tar crate skips more than `i64::MAX` bytes by reading to the end of the stream,
        // but refuses to seek that far: read it as it would have.
        source = archive.into_inner().skip_to_end();
    }
    let last_path = last_path(&last_raw);
    match bounds.judge(&source, position.get()) {
        // Go's archive/tar ends here too: the image runs, so it is read.
        StreamEnd::EndOfArchive => Ok(()),
        StreamEnd::InsideData => Err(WalkError::Truncated { path: last_path }),
        StreamEnd::InsideHeader => Err(WalkError::TruncatedHeader { after: last_path }),
        StreamEnd::Other => Err(WalkError::Entry {
            path: format!("after {last_path}"),
            source: path::printable_error(source),
        }),
    }
}

/// Recognises the OCI/AUFS whiteout names.
fn whiteout<F>(normalized: &[u8]) -> Result<Option<Change<F>>, &'static str> {
    let (parent, name) = path::split_last(normalized);
    let Some(hidden) = name.strip_prefix(b".wh.") else {
        return Ok(None);
    };
    if hidden == b".wh..opq" {
        return Ok(Some(Change::Opaque {
            dir: parent.to_vec(),
        }));
    }
    if hidden.starts_with(b".wh.") {
        // AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): runtimes ignore it.
        return Ok(None);
    }
    if hidden.is_empty() || hidden == b"." || hidden == b".." {
        return Err("a whiteout that names no file");
    }
    let mut path = parent.to_vec();
    if !path.is_empty() {
        path.push(b'/');
    }
    path.extend_from_slice(hidden);
    Ok(Some(Change::Whiteout { path }))
}

/// A numeric header field; a blank one (all NUL or spaces, as some writers leave owner fields)
/// reads as 0, the way GNU tar reads it.
fn numeric(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        other => other,
    }
}

/// A numeric header field in its usual form, octal digits between spaces up to the first NUL,
/// read as the tar crate reads it (`None` for every other form, which it reads instead).
fn plain_octal(field: &[u8]) -> Option<u64> {
    let mut value = 0u64;
    let mut digits = 0usize;
    let mut ended = false;
    for &byte in field {
        match byte {
            0 => break,
            b' ' => ended = digits > 0,
            // 21 octal digits always fit in a u64; header fields hold at most 12.
            b'0'..=b'7' if !ended && digits < 21 => {
                value = (value << 3) | u64::from(byte - b'0');
                digits += 1;
            }
            _ => return None,
        }
    }
    (digits > 0).then_some(value)
}

/// PAX records Go's `archive/tar` parses as numbers, refused as it refuses them (`ErrHeader`):
/// `size`, `uid` and `gid` as 64-bit integers (a size never negative), the times as seconds
/// with an optional fraction. A reader that ignored them would see another file than docker.
fn check_pax_numbers(records: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String> {
    for (key, value) in records {
        let text = std::str::from_utf8(value).unwrap_or("\u{fffd}");
        let ok = match key.as_slice() {
            b"size" => text.parse::<i64>().is_ok_and(|n| n >= 0),
            b"uid" | b"gid" => text.parse::<i64>().is_ok(),
            b"mtime" | b"atime" | b"ctime" => {
                let (seconds, fraction) = text.split_once('.').unwrap_or((text, "0"));
                let digits = seconds.strip_prefix('-').unwrap_or(seconds);
                !digits.is_empty()
                    && digits.bytes().all(|b| b.is_ascii_digit())
                    && digits.len() <= 19
                    && fraction.bytes().all(|b| b.is_ascii_digit())
            }
            _ => true,
        };
        if !ok {
            return Err(format!(
                "the PAX record `{}` is not a valid number: `{}`",
                String::from_utf8_lossy(key),
                path::printable(&value[..value.len().min(64)])
            ));
        }
    }
    Ok(())
}

/// The entry's PAX records (key, value), read once for every use.
fn pax_records<R: Read>(entry: &mut tar::Entry<'_, R>) -> Vec<(Vec<u8>, Vec<u8>)> {
    match entry.pax_extensions() {
        Ok(Some(extensions)) => extensions
            .flatten()
            .map(|e| (e.key_bytes().to_vec(), e.value_bytes().to_vec()))
            .collect(),
        _ => Vec::new(),
    }
}

fn entry_meta<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    records: &[(Vec<u8>, Vec<u8>)],
) -> Result<EntryMeta, String> {
    let header = entry.header();
    let old = header.as_old();
    // Plain octal fields are read here; the tar crate reads the rest (and words the errors).
    let mode = match plain_octal(&old.mode) {
        Some(mode) => mode as u32,
        None => header.mode().map_err(|e| format!("bad mode field: {e}"))?,
    } & 0o7777;
    let uid = match plain_octal(&old.uid) {
        Some(uid) => uid,
        None => numeric(header.uid(), &old.uid).map_err(|e| format!("bad uid field: {e}"))?,
    };
    let gid = match plain_octal(&old.gid) {
        Some(gid) => gid,
        None => numeric(header.gid(), &old.gid).map_err(|e| format!("bad gid field: {e}"))?,
    };
    let mtime = match plain_octal(&old.mtime) {
        Some(mtime) => mtime,
        None => header.mtime().unwrap_or(0),
    };
    let capability = records
        .iter()
        .find(|(key, _)| key.as_slice() == b"SCHILY.xattr.security.capability")
        .map(|(_, value)| value.clone().into_boxed_slice());
    Ok(EntryMeta {
        mode,
        uid,
        gid,
        mtime,
        size: 0,
        device: None,
        capability,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn paths(walk: &LayerWalk<()>) -> Vec<String> {
        walk.changes
            .iter()
            .map(|c| match c {
                Change::Add { path, .. }
                | Change::Hardlink { path, .. }
                | Change::Whiteout { path } => String::from_utf8_lossy(path).into_owned(),
                Change::Opaque { dir } => format!("{}/(opaque)", String::from_utf8_lossy(dir)),
            })
            .collect()
    }

    #[test]
    fn digests_cover_every_byte_of_blob_and_tar() {
        let tar = tar_of(&[("a", b"hello"), ("b/c", b"world")]);
        let blob = gzip(&tar);
        let walk = walk_layer(&blob[..], &NoContent, &Limits::default()).unwrap();
        assert_eq!(walk.compression, Compression::Gzip);
        assert_eq!(walk.blob_digest, Sha256Digest::of(&blob));
        assert_eq!(walk.blob_size, blob.len() as u64);
        assert_eq!(walk.diff_id, Sha256Digest::of(&tar));
        assert_eq!(walk.tar_size, tar.len() as u64);
        assert_eq!(paths(&walk), ["a", "b/c"]);
    }

    #[test]
    fn hashing_on_helper_threads_gives_the_same_walk() {
        // Past the few megabytes after which both digests move to helper threads, in every
        // compression; random bytes so that gzip cannot make the blob small.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..6 << 20)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let tar = tar_of(&[
            ("big", &noise),
            ("small", b"x"),
            ("dir/more", &noise[..99_999]),
        ]);
        let blobs = [
            tar.clone(),
            gzip(&tar),
            zstd::encode_all(&tar[..], 1).unwrap(),
        ];
        for blob in blobs {
            let plain = walk_layer(&blob[..], &NoContent, &Limits::default()).unwrap();
            let mut streamed = Vec::new();
            let limits = Limits::default();
            let helped =
                walk_layer_into(&blob[..], &NoContent, &limits, &limits.budget(), &mut |c| {
                    streamed.push(c)
                })
                .unwrap();
            assert_eq!(helped.blob_digest, Sha256Digest::of(&blob));
            assert_eq!(helped.diff_id, Sha256Digest::of(&tar));
            assert_eq!(helped.blob_digest, plain.blob_digest);
            assert_eq!(helped.diff_id, plain.diff_id);
            assert_eq!(
                (helped.blob_size, helped.tar_size),
                (plain.blob_size, plain.tar_size)
            );
            let helped = LayerWalk {
                changes: streamed,
                ..helped
            };
            assert_eq!(paths(&helped), paths(&plain));
        }
        // A truncated long layer is still refused, with its helpers ended.
        let blob = gzip(&tar);
        let limits = Limits::default();
        let cut = &blob[..blob.len() - 1000];
        assert!(walk_layer_into(cut, &NoContent, &limits, &limits.budget(), &mut |_| {}).is_err());
    }

    #[test]
    fn concatenated_gzip_members_are_one_stream() {
        let first = tar_of(&[("a", b"1")]);
        // A tar split across two gzip members, as pigz and eStargz write them: the end-of-archive
        // blocks are in the second member.
        let (head, tail) = first.split_at(1024);
        let mut blob = gzip(head);
        blob.extend(gzip(tail));
        let walk = walk_layer(&blob[..], &NoContent, &Limits::default()).unwrap();
        assert_eq!(walk.diff_id, Sha256Digest::of(&first));
        assert_eq!(paths(&walk), ["a"]);
    }

    #[test]
    fn zstd_and_plain_layers_are_sniffed() {
        let tar = tar_of(&[("z", b"zstd")]);
        let blob = zstd::encode_all(&tar[..], 3).unwrap();
        let walk = walk_layer(&blob[..], &NoContent, &Limits::default()).unwrap();
        assert_eq!(
            (walk.compression, walk.diff_id),
            (Compression::Zstd, Sha256Digest::of(&tar))
        );
        let walk = walk_layer(&tar[..], &NoContent, &Limits::default()).unwrap();
        assert_eq!(walk.compression, Compression::None);
        assert_eq!(walk.blob_digest, walk.diff_id);
    }

    #[test]
    fn whiteouts_and_opaque_markers_are_recognised() {
        let tar = tar_of(&[
            ("d/.wh..wh..opq", b""),
            ("d/.wh.x", b""),
            (".wh..wh.plnk/1", b""),
            ("d/y", b""),
        ]);
        let walk = walk_layer(&tar[..], &NoContent, &Limits::default()).unwrap();
        assert_eq!(paths(&walk), ["d/(opaque)", "d/x", ".wh..wh.plnk/1", "d/y"]);
    }

    #[test]
    fn plain_octal_fields_read_as_the_tar_crate_reads_them() {
        let mut fields: Vec<Vec<u8>> = vec![
            b"0000644\0".to_vec(),
            b"   644 \0".to_vec(),
            b"644\0\0\0\0\0".to_vec(),
            b"00000001750\0".to_vec(),
            b"7777777\0".to_vec(),
            b"77777777777\0".to_vec(),
            b"\0\0\0\0\0\0\0\0".to_vec(),
            b"        ".to_vec(),
            b" 6 4 \0".to_vec(),
            b"0000648\0".to_vec(),
            b"+000644\0".to_vec(),
            b"\t000644\0".to_vec(),
            b"000644\t\0".to_vec(),
            b"0006\x0044x".to_vec(),
            b"\x80\0\0\0\0\0\x01\x02".to_vec(),
            b"\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
            b"12345678".to_vec(),
            b"\xc3\xa9\0\0\0\0\0\0".to_vec(),
        ];
        for len in [8, 12] {
            for field in fields.iter_mut() {
                field.resize(len, 0);
                let mut header = tar::Header::new_ustar();
                header.as_old_mut().uid.copy_from_slice(&field[..8]);
                header.as_old_mut().mode.copy_from_slice(&field[..8]);
                if len == 12 {
                    header.as_old_mut().mtime.copy_from_slice(field);
                }
                let ours = plain_octal(field);
                let theirs = if len == 12 {
                    header.mtime().ok()
                } else {
                    header.uid().ok()
                };
                if let Some(value) = ours {
                    assert_eq!(Some(value), theirs, "{field:?}");
                    if len == 8 {
                        assert_eq!(header.mode().ok(), Some(value as u32), "{field:?}");
                    }
                }
            }
        }
        assert_eq!(plain_octal(b"0000644\0"), Some(0o644));
        assert_eq!(plain_octal(b"        "), None);
        assert_eq!(plain_octal(b" 6 4 \0\0\0"), None);
    }

    #[test]
    fn capabilities_survive_from_pax_headers() {
        let mut builder = tar::Builder::new(Vec::new());
        builder
            .append_pax_extensions([("SCHILY.xattr.security.capability", &b"\x01\x00\x00\x02"[..])])
            .unwrap();
        let mut header = tar::Header::new_ustar();
        header.set_size(0);
        header.set_mode(0o755);
        header.set_cksum();
        builder
            .append_data(&mut header, "usr/bin/ping", std::io::empty())
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let walk = walk_layer(&tar[..], &NoContent, &Limits::default()).unwrap();
        let Change::Add { meta, .. } = &walk.changes[0] else {
            panic!("an entry")
        };
        assert_eq!(meta.capability.as_deref(), Some(&b"\x01\x00\x00\x02"[..]));
    }

    #[test]
    fn a_decompression_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        let tar = tar_of(&[("bomb", &zeros)]);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&tar).unwrap();
        let blob = encoder.finish().unwrap();
        assert!(blob.len() < 64 << 10, "the fixture really is a bomb");
        let limits = Limits {
            max_tar_bytes: 1 << 20,
            ..Limits::default()
        };
        let err = walk_layer(&blob[..], &NoContent, &limits).unwrap_err();
        assert!(matches!(err, WalkError::TooLarge { .. }), "{err}");
        // Zeros after the end of the archive still inflate and still count.
        let mut padded = tar_of(&[("small", b"x")]);
        padded.extend(vec![0u8; 4 << 20]);
        let limits = Limits {
            max_tar_bytes: 1 << 20,
            ..Limits::default()
        };
        let err = walk_layer(&gzip(&padded)[..], &NoContent, &limits).unwrap_err();
        assert!(matches!(err, WalkError::TooLarge { .. }), "{err}");
        // The ratio: 8 MiB of zeros from a few KiB is refused past the allowance, and the
        // budget is shared, so two layers cannot each spend it.
        let limits = Limits {
            max_expansion: 10,
            expansion_allowance: 1 << 20,
            ..Limits::default()
        };
        let err = walk_layer(&blob[..], &NoContent, &limits).unwrap_err();
        assert!(
            matches!(err, WalkError::Expansion { ratio: 10, .. }),
            "{err}"
        );
        let small = gzip(&tar_of(&[("z", &[0u8; 600 << 10])]));
        let budget = limits.budget();
        walk_layer_within(&small[..], &NoContent, &limits, &budget).unwrap();
        let err = walk_layer_within(&small[..], &NoContent, &limits, &budget).unwrap_err();
        assert!(matches!(err, WalkError::Expansion { .. }), "{err}");
        // An ordinary layer is far within it.
        let ordinary = gzip(&tar_of(&[("a", b"hello"), ("b", &[1u8; 4096])]));
        walk_layer(&ordinary[..], &NoContent, &limits).unwrap();
        let limits = Limits {
            max_entries: 1,
            ..Limits::default()
        };
        let tar = tar_of(&[("a", b""), ("b", b"")]);
        let err = walk_layer(&tar[..], &NoContent, &limits).unwrap_err();
        assert!(matches!(err, WalkError::TooManyEntries { .. }), "{err}");
    }

    #[test]
    fn the_hook_sees_file_bytes_and_what_it_leaves_is_skipped() {
        struct FirstByte;
        impl ContentHook for FirstByte {
            type Fact = u8;
            fn inspect(
                &self,
                _: &[u8],
                _: &EntryMeta,
                content: &mut dyn Read,
            ) -> io::Result<Option<u8>> {
                let mut byte = [0u8; 1];
                content.read_exact(&mut byte)?;
                Ok(Some(byte[0]))
            }
        }
        let tar = tar_of(&[("a", b"xyz"), ("b", b"q")]);
        let walk = walk_layer(&tar[..], &FirstByte, &Limits::default()).unwrap();
        let facts: Vec<Option<u8>> = walk
            .changes
            .iter()
            .map(|c| match c {
                Change::Add { fact, .. } => *fact,
                _ => None,
            })
            .collect();
        assert_eq!(facts, [Some(b'x'), Some(b'q')]);
    }

    #[test]
    fn a_stream_that_ends_after_the_last_data_is_read_as_go_reads_it() {
        let tar = tar_of(&[("a", b"first"), ("zone1970.tab", &[7u8; 700])]);
        // The second entry's header is at 1024, its data at 1536..2236, padded to 2560.
        for cut in [2236, 2300, 2559] {
            let short = &tar[..cut];
            let walk = walk_layer(short, &NoContent, &Limits::default()).unwrap();
            assert_eq!(paths(&walk), ["a", "zone1970.tab"], "cut at {cut}");
            assert_eq!(walk.diff_id, Sha256Digest::of(short), "hashed as it is");
            let walk = walk_layer(&gzip(short)[..], &NoContent, &Limits::default()).unwrap();
            assert_eq!(paths(&walk), ["a", "zone1970.tab"], "gzip, cut at {cut}");
        }
        // Inside the data, or inside a header block: truncated.
        let err = walk_layer(&tar[..2000], &NoContent, &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, WalkError::Truncated { path } if path == "/zone1970.tab"),
            "{err}"
        );
        let err = walk_layer(&tar[..1200], &NoContent, &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, WalkError::TruncatedHeader { after } if after == "/a"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_stream_is_an_error_naming_the_entry() {
        let tar = tar_of(&[("big", &[1u8; 10_000])]);
        let blob = gzip(&tar);
        let err = walk_layer(&blob[..blob.len() / 2], &NoContent, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("/big"), "{err}");
    }

    #[test]
    fn an_entry_too_long_to_seek_past_reads_to_the_end_as_before() {
        // A PAX global header that declares more than i64::MAX bytes: the tar crate will not
        // seek that far, its skip read to the end of the stream, and so does the walk.
        let mut tar = tar_of(&[("a", b"first")]);
        tar.truncate(1024);
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(EntryType::XGlobalHeader);
        header.set_path("pax_global_header").unwrap();
        header.set_size((1 << 63) | 5);
        header.set_cksum();
        tar.extend_from_slice(header.as_bytes());
        tar.extend_from_slice(b"9 a=bcd\n");
        for blob in [tar.clone(), gzip(&tar)] {
            let err = walk_layer(&blob[..], &NoContent, &Limits::default()).unwrap_err();
            assert!(
                matches!(&err, WalkError::Truncated { path } if path == "/pax_global_header"),
                "{err}"
            );
        }
    }

    #[test]
    fn what_the_hook_leaves_is_hashed_and_skipped_over_any_length() {
        struct Prefix;
        impl ContentHook for Prefix {
            type Fact = Vec<u8>;
            fn inspect(
                &self,
                _: &[u8],
                _: &EntryMeta,
                content: &mut dyn Read,
            ) -> io::Result<Option<Vec<u8>>> {
                let mut head = vec![0u8; 3];
                let n = content.read(&mut head)?;
                head.truncate(n);
                Ok(Some(head))
            }
        }
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let tar = tar_of(&[
            ("a", &big),
            ("b", b""),
            ("c", &big[..70_000]),
            ("d", b"xyz"),
        ]);
        for blob in [tar.clone(), gzip(&tar)] {
            let walk = walk_layer(&blob[..], &Prefix, &Limits::default()).unwrap();
            assert_eq!(walk.diff_id, Sha256Digest::of(&tar));
            let heads: Vec<Option<Vec<u8>>> = walk
                .changes
                .into_iter()
                .map(|c| match c {
                    Change::Add { fact, .. } => fact,
                    _ => None,
                })
                .collect();
            assert_eq!(
                heads,
                [
                    Some(vec![0, 1, 2]),
                    Some(vec![]),
                    Some(vec![0, 1, 2]),
                    Some(b"xyz".to_vec())
                ]
            );
        }
        // Cut inside the data of `c`, which the hook leaves to the skip.
        let err =
            walk_layer(&tar[..200_000 + 2048 + 40_000], &Prefix, &Limits::default()).unwrap_err();
        assert!(
            matches!(&err, WalkError::Truncated { path } if path == "/c"),
            "{err}"
        );
    }
}
