use std::io::{self, Read};

use tar::EntryType;

use crate::compression::{Compression, decoder};
use crate::digest::{HashingReader, Sha256Digest};
use crate::error::WalkError;
use crate::path;

/// Bounds on what one layer may make us do; past them the layer is refused.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Tar entries in one layer.
    pub max_entries: u64,
    /// Uncompressed bytes of one layer (a decompression bomb costs time, never memory,
    /// but nobody wants to wait for a petabyte of zeros).
    pub max_tar_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_entries: 5_000_000,
            max_tar_bytes: 256 << 30,
        }
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
#[derive(Debug)]
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
#[derive(Debug)]
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
    let mut raw = HashingReader::new(blob);
    let (compression, decoded) = decoder(&mut raw).map_err(WalkError::Read)?;
    let mut tar_stream = HashingReader::new(decoded);
    let changes = read_entries(&mut tar_stream, hook, limits)?;
    let (diff_id, tar_size) = tar_stream.finish().map_err(WalkError::Read)?;
    let (blob_digest, blob_size) = raw.finish().map_err(WalkError::Read)?;
    Ok(LayerWalk {
        compression,
        blob_digest,
        blob_size,
        diff_id,
        tar_size,
        changes,
    })
}

fn read_entries<R: Read, H: ContentHook>(
    tar_stream: &mut HashingReader<R>,
    hook: &H,
    limits: &Limits,
) -> Result<Vec<Change<H::Fact>>, WalkError> {
    let mut changes = Vec::new();
    let mut archive = tar::Archive::new(&mut *tar_stream);
    let mut last_path = String::from("(start of the layer)");
    let mut count = 0u64;
    let mut declared_bytes = 0u64;
    let entries = archive.entries().map_err(WalkError::Read)?;
    for entry in entries {
        let mut entry = entry.map_err(|source| WalkError::Entry {
            path: format!("after {last_path}"),
            source,
        })?;
        count += 1;
        if count > limits.max_entries {
            return Err(WalkError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let raw_path = entry.path_bytes().into_owned();
        last_path = path::display(&raw_path);
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
        let normalized = path::normalize(&raw_path).map_err(|r| WalkError::bad(&raw_path, r))?;
        if let Some(change) = whiteout(&normalized).map_err(|r| WalkError::bad(&raw_path, r))? {
            changes.push(change);
            continue;
        }
        let mut meta = entry_meta(&mut entry).map_err(|r| WalkError::bad(&raw_path, r))?;
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
                    .ok_or_else(|| WalkError::bad(&raw_path, "a hardlink without a target"))?;
                let target = path::normalize(&target)
                    .map_err(|r| WalkError::bad(&raw_path, format!("hardlink target: {r}")))?;
                meta.size = 0;
                changes.push(Change::Hardlink {
                    path: normalized,
                    target,
                    meta,
                });
                continue;
            }
            other => {
                return Err(WalkError::bad(
                    &raw_path,
                    format!("unsupported tar entry type {:?}", other.as_byte() as char),
                ));
            }
        };
        if normalized.is_empty() && kind != FileKind::Dir {
            return Err(WalkError::bad(
                &raw_path,
                "the image root must be a directory",
            ));
        }
        let mut link = None;
        let mut fact = None;
        match kind {
            FileKind::File => {
                meta.size = size;
                fact = hook
                    .inspect(&normalized, &meta, &mut entry)
                    .map_err(|source| WalkError::Entry {
                        path: last_path.clone(),
                        source,
                    })?;
            }
            FileKind::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| WalkError::bad(&raw_path, "a symlink without a target"))?;
                if target.len() > path::MAX_PATH {
                    return Err(WalkError::bad(&raw_path, "the symlink target is too long"));
                }
                // A link that climbs out of the root is an attack on extractors, never
                // something a real build produces.
                let (dir, _) = path::split_last(&normalized);
                path::normalize_from(dir, &target).map_err(|r| {
                    WalkError::bad(
                        &raw_path,
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
        changes.push(Change::Add {
            path: normalized,
            kind,
            meta,
            link,
            fact,
        });
    }
    Ok(changes)
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

fn entry_meta<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<EntryMeta, String> {
    let header = entry.header();
    let mode = header.mode().map_err(|e| format!("bad mode field: {e}"))? & 0o7777;
    let uid = header.uid().map_err(|e| format!("bad uid field: {e}"))?;
    let gid = header.gid().map_err(|e| format!("bad gid field: {e}"))?;
    let mtime = header.mtime().unwrap_or(0);
    let mut capability = None;
    if let Ok(Some(extensions)) = entry.pax_extensions() {
        for extension in extensions.flatten() {
            if extension.key_bytes() == b"SCHILY.xattr.security.capability" {
                capability = Some(extension.value_bytes().into());
            }
        }
    }
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
