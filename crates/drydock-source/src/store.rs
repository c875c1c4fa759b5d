use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::SourceError;
use crate::spec::{ImageSpec, Location};

/// Members up to this size are kept in memory when an archive can only be read once; the
/// documents (manifests, configs, indexes) are all far smaller.
const SMALL_MEMBER: u64 = 1 << 20;
/// A JSON document larger than this is refused.
pub(crate) const MAX_DOCUMENT: u64 = 16 << 20;
/// What a streamed archive may keep in memory in all.
const MAX_BUFFERED: u64 = 256 << 20;
/// Symlinks followed inside an archive (`docker save` links duplicate layers).
const MAX_ALIAS_HOPS: usize = 8;

/// Named blobs of an archive or layout: `manifest.json`, `blobs/sha256/<hex>`, `<id>/layer.tar`.
pub trait BlobStore: Sync {
    /// Reads a whole member, refusing one larger than `limit`; `None` if there is no such member.
    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError>;
    /// Opens a member as a byte stream.
    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>, SourceError>;
    /// Whether a member exists.
    fn contains(&self, name: &str) -> bool;
    /// The archive or directory, for messages.
    fn origin(&self) -> &Path;
}

/// What [`open`] found: a store that can be read in any order (a directory, an uncompressed
/// archive on disk), or a stream that must be read once from start to end (a gzip-compressed
/// archive, standard input) with [`stream_archive`].
pub enum Opened {
    Random(Box<dyn BlobStore>),
    Streaming {
        origin: PathBuf,
        reader: Box<dyn Read + Send>,
    },
}

impl std::fmt::Debug for Opened {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Random(store) => write!(f, "Random({})", store.origin().display()),
            Self::Streaming { origin, .. } => write!(f, "Streaming({})", origin.display()),
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Opens what `spec` names.
pub fn open(spec: &ImageSpec) -> Result<Opened, SourceError> {
    let path = match &spec.location {
        Location::Stdin => {
            let origin = PathBuf::from("(standard input)");
            let reader = decompressed(Box::new(io::stdin()), &origin)?;
            return Ok(Opened::Streaming { origin, reader });
        }
        Location::DockerArchive(p)
        | Location::OciArchive(p)
        | Location::OciLayout(p)
        | Location::Path(p) => p,
    };
    let metadata = std::fs::metadata(path).map_err(io_error(path))?;
    if metadata.is_dir() {
        if matches!(
            spec.location,
            Location::DockerArchive(_) | Location::OciArchive(_)
        ) {
            return Err(SourceError::NotAnImage {
                path: path.clone(),
                reason: "a directory, not an archive (use oci:DIR for an OCI layout)".into(),
            });
        }
        return Ok(Opened::Random(Box::new(DirStore::new(path)?)));
    }
    if matches!(spec.location, Location::OciLayout(_)) {
        return Err(SourceError::NotAnImage {
            path: path.clone(),
            reason: "a file, not an OCI layout directory (use oci-archive:PATH)".into(),
        });
    }
    let mut file = File::open(path).map_err(io_error(path))?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut file, &mut magic).map_err(io_error(path))?;
    file.seek(SeekFrom::Start(0)).map_err(io_error(path))?;
    if is_compressed(&magic[..n]) {
        let reader = decompressed(Box::new(file), path)?;
        return Ok(Opened::Streaming {
            origin: path.clone(),
            reader,
        });
    }
    Ok(Opened::Random(Box::new(TarStore::index(path)?)))
}

fn is_compressed(magic: &[u8]) -> bool {
    magic.starts_with(&[0x1f, 0x8b]) || magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// An archive compressed as a whole (`docker save | gzip`) is decompressed on the fly.
fn decompressed(
    reader: Box<dyn Read + Send>,
    origin: &Path,
) -> Result<Box<dyn Read + Send>, SourceError> {
    let mut buffered = BufReader::with_capacity(256 * 1024, reader);
    let magic = buffered.fill_buf().map_err(io_error(origin))?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(buffered)))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Err(SourceError::NotAnImage {
            path: origin.to_owned(),
            reason: "a zstd-compressed archive; decompress it first (`zstd -d`)".into(),
        })
    } else {
        Ok(Box::new(buffered))
    }
}

/// Member names as archives write them: `./manifest.json` and `manifest.json` are one name.
fn member_name(raw: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(raw).ok()?;
    let parts: Vec<&str> = s
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    if parts.contains(&"..") {
        return None;
    }
    Some(parts.join("/"))
}

/// Resolves a symlink member's target relative to its own directory.
fn alias_target(name: &str, target: &[u8]) -> Option<String> {
    let target = std::str::from_utf8(target).ok()?;
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        name.split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, d)| d.to_vec())
            .unwrap_or_default()
    };
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// An OCI image layout directory.
#[derive(Debug)]
pub struct DirStore {
    root: PathBuf,
}

impl DirStore {
    pub fn new(root: &Path) -> Result<Self, SourceError> {
        let root = root.canonicalize().map_err(io_error(root))?;
        Ok(Self { root })
    }

    /// The file for a member, refusing names and links that lead outside the layout.
    fn locate(&self, name: &str) -> Result<Option<PathBuf>, SourceError> {
        let Some(clean) = member_name(name.as_bytes()) else {
            return Err(SourceError::invalid(
                name,
                "the name leaves the layout directory",
            ));
        };
        let candidate = self.root.join(clean);
        match candidate.canonicalize() {
            Ok(real) if real.starts_with(&self.root) => Ok(Some(real)),
            Ok(_) => Err(SourceError::invalid(
                name,
                "a link that leaves the layout directory",
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SourceError::Io {
                path: candidate,
                source,
            }),
        }
    }
}

impl BlobStore for DirStore {
    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(path) = self.locate(name)? else {
            return Ok(None);
        };
        let file = File::open(&path).map_err(io_error(&path))?;
        read_capped(file, name, limit).map(Some)
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let path = self.locate(name)?.ok_or_else(|| missing(name))?;
        Ok(Box::new(File::open(&path).map_err(io_error(&path))?))
    }

    fn contains(&self, name: &str) -> bool {
        matches!(self.locate(name), Ok(Some(p)) if p.is_file())
    }

    fn origin(&self) -> &Path {
        &self.root
    }
}

fn missing(name: &str) -> SourceError {
    SourceError::invalid(name, "the blob is not in the image")
}

fn read_capped(reader: impl Read, name: &str, limit: u64) -> Result<Vec<u8>, SourceError> {
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| SourceError::invalid(name, format!("reading: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(SourceError::invalid(
            name,
            format!("larger than the {limit}-byte limit"),
        ));
    }
    Ok(bytes)
}

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Alias(String),
}

fn follow<'a>(members: &'a HashMap<String, Member>, name: &str) -> Option<(&'a Member, String)> {
    let mut current = name.to_owned();
    for _ in 0..=MAX_ALIAS_HOPS {
        match members.get(&current)? {
            Member::Alias(target) => current = target.clone(),
            member @ Member::File { .. } => return Some((member, current)),
        }
    }
    None
}

/// An uncompressed archive on disk (`docker save`, `oci-archive`), indexed once by reading its
/// headers; members are then read in place, in any order and in parallel.
#[derive(Debug)]
pub struct TarStore {
    path: PathBuf,
    members: HashMap<String, Member>,
}

impl TarStore {
    pub fn index(path: &Path) -> Result<Self, SourceError> {
        let not_tar = |e: io::Error| SourceError::NotAnImage {
            path: path.to_owned(),
            reason: format!("not a tar archive ({e})"),
        };
        let file = File::open(path).map_err(io_error(path))?;
        let mut archive = tar::Archive::new(file);
        let mut members = HashMap::new();
        for entry in archive.entries_with_seek().map_err(not_tar)? {
            let entry = entry.map_err(not_tar)?;
            let Some(name) = member_name(&entry.path_bytes()) else {
                continue;
            };
            match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let member = Member::File {
                        offset: entry.raw_file_position(),
                        size: entry.size(),
                    };
                    members.insert(name, member);
                }
                tar::EntryType::Symlink => {
                    if let Some(target) = entry
                        .link_name_bytes()
                        .and_then(|t| alias_target(&name, &t))
                    {
                        members.insert(name, Member::Alias(target));
                    }
                }
                tar::EntryType::Link => {
                    if let Some(target) = entry.link_name_bytes().and_then(|t| member_name(&t)) {
                        members.insert(name, Member::Alias(target));
                    }
                }
                _ => {}
            }
        }
        if members.is_empty() {
            return Err(SourceError::NotAnImage {
                path: path.to_owned(),
                reason: "an empty archive".into(),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            members,
        })
    }

    fn section(&self, name: &str) -> Result<Option<io::Take<File>>, SourceError> {
        let Some((Member::File { offset, size }, _)) = follow(&self.members, name) else {
            return Ok(None);
        };
        let mut file = File::open(&self.path).map_err(io_error(&self.path))?;
        file.seek(SeekFrom::Start(*offset))
            .map_err(io_error(&self.path))?;
        Ok(Some(file.take(*size)))
    }
}

impl BlobStore for TarStore {
    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        match self.section(name)? {
            Some(section) => read_capped(section, name, limit).map(Some),
            None => Ok(None),
        }
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let section = self.section(name)?.ok_or_else(|| missing(name))?;
        Ok(Box::new(section))
    }

    fn contains(&self, name: &str) -> bool {
        follow(&self.members, name).is_some()
    }

    fn origin(&self) -> &Path {
        &self.path
    }
}

/// What remains of an archive that could be read only once: its small members (the JSON
/// documents, tiny layers). The large members were handed to the caller as they streamed past.
#[derive(Debug)]
pub struct StreamedStore {
    origin: PathBuf,
    members: HashMap<String, Member>,
    small: HashMap<String, Vec<u8>>,
    streamed: Vec<String>,
}

impl StreamedStore {
    /// Members that were streamed to the caller rather than kept.
    pub fn streamed(&self) -> &[String] {
        &self.streamed
    }

    /// The member name `name` stands for, after following archive symlinks.
    pub fn canonical_name(&self, name: &str) -> Option<String> {
        follow(&self.members, name).map(|(_, n)| n)
    }
}

impl BlobStore for StreamedStore {
    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(canonical) = self.canonical_name(name) else {
            return Ok(None);
        };
        match self.small.get(&canonical) {
            Some(bytes) if bytes.len() as u64 > limit => Err(SourceError::invalid(
                name,
                format!("larger than the {limit}-byte limit"),
            )),
            Some(bytes) => Ok(Some(bytes.clone())),
            None => Err(SourceError::invalid(
                name,
                "a large member cannot be read twice from a stream",
            )),
        }
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let canonical = self.canonical_name(name).ok_or_else(|| missing(name))?;
        match self.small.get(&canonical) {
            Some(bytes) => Ok(Box::new(bytes.as_slice())),
            None => Err(SourceError::invalid(
                name,
                "a large member cannot be read twice from a stream",
            )),
        }
    }

    fn contains(&self, name: &str) -> bool {
        self.canonical_name(name).is_some()
    }

    fn origin(&self) -> &Path {
        &self.origin
    }
}

/// Reads an archive once, from start to end. Small members and JSON documents are kept; every
/// other member is handed to `on_blob(name, stream)` as it streams past (the caller walks it as
/// a candidate layer and remembers the result by name). Errors from `on_blob` are the caller's
/// to keep: a member that turns out not to be a layer may well fail to walk.
pub fn stream_archive(
    origin: PathBuf,
    reader: Box<dyn Read + Send>,
    on_blob: &mut dyn FnMut(&str, &mut dyn Read),
) -> Result<StreamedStore, SourceError> {
    let not_tar = |e: io::Error| SourceError::NotAnImage {
        path: origin.clone(),
        reason: format!("not a readable tar archive ({e})"),
    };
    let mut archive = tar::Archive::new(reader);
    let mut members = HashMap::new();
    let mut small = HashMap::new();
    let mut streamed = Vec::new();
    let mut buffered = 0u64;
    for entry in archive.entries().map_err(not_tar)? {
        let mut entry = entry.map_err(not_tar)?;
        let Some(name) = member_name(&entry.path_bytes()) else {
            continue;
        };
        match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            tar::EntryType::Symlink => {
                if let Some(target) = entry
                    .link_name_bytes()
                    .and_then(|t| alias_target(&name, &t))
                {
                    members.insert(name, Member::Alias(target));
                }
                continue;
            }
            tar::EntryType::Link => {
                if let Some(target) = entry.link_name_bytes().and_then(|t| member_name(&t)) {
                    members.insert(name, Member::Alias(target));
                }
                continue;
            }
            _ => continue,
        }
        let size = entry.size();
        members.insert(name.clone(), Member::File { offset: 0, size });
        let mut head = [0u8; 64];
        let head_len = read_up_to(&mut entry, &mut head).map_err(not_tar)?;
        let head = &head[..head_len];
        let looks_like_json = head
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{' || *b == b'[');
        if size <= SMALL_MEMBER || (looks_like_json && size <= MAX_DOCUMENT) {
            buffered += size;
            if buffered > MAX_BUFFERED {
                return Err(SourceError::NotAnImage {
                    path: origin.clone(),
                    reason: "more small members than an image archive holds".into(),
                });
            }
            let mut bytes = head.to_vec();
            entry.read_to_end(&mut bytes).map_err(not_tar)?;
            small.insert(name, bytes);
        } else {
            let mut stream = head.chain(&mut entry);
            on_blob(&name, &mut stream);
            // Whatever the caller left unread is skipped by the tar reader.
            streamed.push(name);
        }
    }
    if members.is_empty() {
        return Err(SourceError::NotAnImage {
            path: origin,
            reason: "an empty archive".into(),
        });
    }
    Ok(StreamedStore {
        origin,
        members,
        small,
        streamed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_normalised_and_escapes_dropped() {
        assert_eq!(
            member_name(b"./manifest.json").as_deref(),
            Some("manifest.json")
        );
        assert_eq!(
            member_name(b"blobs/sha256//ab").as_deref(),
            Some("blobs/sha256/ab")
        );
        assert_eq!(member_name(b"../etc/passwd"), None);
    }

    #[test]
    fn archive_symlinks_resolve_relative_to_their_directory() {
        assert_eq!(
            alias_target("a/layer.tar", b"../b/layer.tar").as_deref(),
            Some("b/layer.tar")
        );
        assert_eq!(alias_target("a/layer.tar", b"../../x"), None);
    }
}
