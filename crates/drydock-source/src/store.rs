use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use drydock_layers::path::printable_error;
use drydock_layers::tarstream::{Counted, EntryBounds, StreamEnd};
use drydock_layers::{
    CompressedSide, Compression, Decoder, ExpandedSide, ExpansionBudget, ReadAhead,
    describe_content, is_tar_header,
};

use crate::error::SourceError;
use crate::resolve::sha256_digest;
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
    /// Whether this is skopeo's `dir:` layout presented as an OCI layout.
    fn is_skopeo_dir(&self) -> bool {
        false
    }
    /// Whether [`BlobStore::fetch_ahead`] does anything: a store that reads from a network
    /// into a local cache.
    fn fetches_ahead(&self) -> bool {
        false
    }
    /// Downloads member `name` into the local cache while other members are walked, so that
    /// every layer downloads at once; a later [`BlobStore::open`] of it reads the bytes as
    /// they arrive. Blocks until the download ends, fails, or `stop` is set; does nothing for
    /// a member already cached, downloading or open.
    fn fetch_ahead(&self, _name: &str, _stop: &std::sync::atomic::AtomicBool) {}
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

/// Opens what `spec` names. An archive compressed as a whole expands within `budget`.
pub fn open(spec: &ImageSpec, budget: &Arc<ExpansionBudget>) -> Result<Opened, SourceError> {
    let path = match &spec.location {
        Location::Stdin => {
            let origin = PathBuf::from("(standard input)");
            let reader = decompressed(Box::new(io::stdin()), &origin, budget)?;
            return Ok(Opened::Streaming { origin, reader });
        }
        Location::DockerArchive(p)
        | Location::OciArchive(p)
        | Location::OciLayout(p)
        | Location::SkopeoDir(p)
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
        let is_skopeo_dir = SkopeoDirStore::detect(path);
        if matches!(spec.location, Location::SkopeoDir(_)) || is_skopeo_dir {
            return Ok(Opened::Random(Box::new(SkopeoDirStore::new(path)?)));
        }
        return Ok(Opened::Random(Box::new(DirStore::new(path)?)));
    }
    if matches!(
        spec.location,
        Location::OciLayout(_) | Location::SkopeoDir(_)
    ) {
        return Err(SourceError::NotAnImage {
            path: path.clone(),
            reason: "a file, not a layout directory (use oci-archive:PATH)".into(),
        });
    }
    let mut file = File::open(path).map_err(io_error(path))?;
    let mut head = [0u8; 512];
    let n = read_up_to(&mut file, &mut head).map_err(io_error(path))?;
    file.seek(SeekFrom::Start(0)).map_err(io_error(path))?;
    let head = &head[..n];
    if Compression::sniff(head) != Compression::None {
        let reader = decompressed(Box::new(file), path, budget)?;
        return Ok(Opened::Streaming {
            origin: path.clone(),
            reader,
        });
    }
    if !is_tar_header(head) {
        let reason = if n == 512 && head.iter().all(|b| *b == 0) {
            "an empty tar archive"
        } else {
            describe_content(head)
        };
        return Err(SourceError::NotAnImage {
            path: path.clone(),
            reason: reason.into(),
        });
    }
    Ok(Opened::Random(Box::new(TarStore::index(path)?)))
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

/// An archive compressed as a whole (`docker save | gzip`, `| bzip2`, `| xz`, `| zstd`) is
/// decompressed on the fly, as `docker load` does, on a thread of its own: the archive's
/// layers are hashed and walked as it streams by on the reader's thread, so the two stages
/// take a core each instead of taking turns on one.
fn decompressed(
    reader: Box<dyn Read + Send>,
    origin: &Path,
    budget: &Arc<ExpansionBudget>,
) -> Result<Box<dyn Read + Send>, SourceError> {
    let counted = CompressedSide::new(reader, Arc::clone(budget));
    let decoder = Decoder::new(counted).map_err(io_error(origin))?;
    let ahead = ReadAhead::spawn(decoder).map_err(io_error(origin))?;
    Ok(Box::new(ExpandedSide::new(ahead, Arc::clone(budget))))
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
        if path.is_dir() {
            return Err(SourceError::invalid(name, "a directory, not a file"));
        }
        let file = File::open(&path).map_err(io_error(&path))?;
        read_capped(file, name, limit).map(Some)
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let path = self.locate(name)?.ok_or_else(|| missing(name))?;
        Ok(Box::new(File::open(&path).map_err(io_error(&path))?))
    }

    fn contains(&self, name: &str) -> bool {
        // A directory where a file belongs is there, and reading it says what is wrong.
        matches!(self.locate(name), Ok(Some(_)))
    }

    fn origin(&self) -> &Path {
        &self.root
    }
}

/// skopeo's `dir:` layout (`skopeo copy … dir:PATH`): `version`, `manifest.json` (the image's
/// manifest, or an index with `<hex>.manifest.json` per instance) and blobs named by their hex
/// digest. It is presented as a one-entry OCI layout, so that resolution and verification are
/// those of every other source.
#[derive(Debug)]
pub struct SkopeoDirStore {
    dir: DirStore,
    index: Vec<u8>,
    manifest_hex: String,
}

/// What skopeo writes into `version` (containers/image's `directory` transport).
const SKOPEO_VERSION_PREFIX: &[u8] = b"Directory Transport Version:";

impl SkopeoDirStore {
    /// Whether `dir` holds skopeo's `version` file.
    pub fn detect(dir: &Path) -> bool {
        let mut head = [0u8; 64];
        File::open(dir.join("version"))
            .and_then(|mut f| read_up_to(&mut f, &mut head))
            .is_ok_and(|n| head[..n].starts_with(SKOPEO_VERSION_PREFIX))
    }

    pub fn new(root: &Path) -> Result<Self, SourceError> {
        let dir = DirStore::new(root)?;
        let Some(version) = dir.read_small("version", 1024)? else {
            return Err(SourceError::NotAnImage {
                path: root.to_owned(),
                reason: "no `version` file: not a skopeo dir: layout".into(),
            });
        };
        if !version.starts_with(SKOPEO_VERSION_PREFIX) {
            return Err(SourceError::invalid(
                "version",
                "not skopeo's `Directory Transport Version` file",
            ));
        }
        let manifest = dir
            .read_small("manifest.json", MAX_DOCUMENT)?
            .ok_or_else(|| SourceError::invalid("manifest.json", "missing from the layout"))?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&manifest)
            .ok()
            .and_then(|v| {
                let explicit = v
                    .get("mediaType")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned);
                explicit.or_else(|| {
                    v.get("manifests")
                        .map(|_| "application/vnd.oci.image.index.v1+json".to_owned())
                })
            })
            .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".to_owned());
        let digest = sha256_digest(&manifest);
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{"mediaType": media_type, "digest": digest, "size": manifest.len()}],
        });
        Ok(Self {
            dir,
            index: serde_json::to_vec(&index).unwrap_or_default(),
            manifest_hex: digest.trim_start_matches("sha256:").to_owned(),
        })
    }

    /// The file of the layout that holds an OCI layout's member.
    fn member(&self, name: &str) -> Option<String> {
        let hex = name.strip_prefix("blobs/sha256/")?;
        if hex == self.manifest_hex {
            return Some("manifest.json".into());
        }
        let instance = format!("{hex}.manifest.json");
        if self.dir.contains(&instance) {
            return Some(instance);
        }
        Some(hex.to_owned())
    }
}

impl BlobStore for SkopeoDirStore {
    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        if name == "index.json" {
            return Ok(Some(self.index.clone()));
        }
        match self.member(name) {
            Some(file) => self.dir.read_small(&file, limit),
            None => Ok(None),
        }
    }

    fn open(&self, name: &str) -> Result<Box<dyn Read + Send + '_>, SourceError> {
        let file = self.member(name).ok_or_else(|| missing(name))?;
        self.dir.open(&file)
    }

    fn contains(&self, name: &str) -> bool {
        name == "index.json" || self.member(name).is_some_and(|f| self.dir.contains(&f))
    }

    fn origin(&self) -> &Path {
        self.dir.origin()
    }

    fn is_skopeo_dir(&self) -> bool {
        true
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

/// Follows archive symlinks from `name`; `Err` for a link cycle (or a chain too long to be
/// anything else), `Ok(None)` for a name that is not there.
fn follow<'a>(
    members: &'a HashMap<String, Member>,
    name: &str,
) -> Result<Option<(&'a Member, String)>, SourceError> {
    let mut current = name.to_owned();
    for _ in 0..=MAX_ALIAS_HOPS {
        match members.get(&current) {
            None => return Ok(None),
            Some(Member::Alias(target)) => current = target.clone(),
            Some(member @ Member::File { .. }) => return Ok(Some((member, current))),
        }
    }
    Err(SourceError::invalid(
        name,
        format!("a link cycle between archive members (more than {MAX_ALIAS_HOPS} links)"),
    ))
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
            reason: format!("not a readable tar archive ({})", printable_error(e)),
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
        let Some((Member::File { offset, size }, _)) = follow(&self.members, name)? else {
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
        // A member in a link cycle counts as present, so that reading it reports the cycle.
        !matches!(follow(&self.members, name), Ok(None))
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
        follow(&self.members, name).ok().flatten().map(|(_, n)| n)
    }

    fn canonical(&self, name: &str) -> Result<Option<String>, SourceError> {
        Ok(follow(&self.members, name)?.map(|(_, n)| n))
    }
}

impl BlobStore for StreamedStore {
    fn read_small(&self, name: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        let Some(canonical) = self.canonical(name)? else {
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
        let canonical = self.canonical(name)?.ok_or_else(|| missing(name))?;
        match self.small.get(&canonical) {
            Some(bytes) => Ok(Box::new(bytes.as_slice())),
            None => Err(SourceError::invalid(
                name,
                "a large member cannot be read twice from a stream",
            )),
        }
    }

    fn contains(&self, name: &str) -> bool {
        !matches!(follow(&self.members, name), Ok(None))
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
    let not_tar = |e: io::Error| match ExpansionBudget::exceeded(&e) {
        Some(exceeded) => SourceError::invalid(
            origin.display().to_string(),
            format!("decompressing the archive: {exceeded}; raise the limit with --max-expansion"),
        ),
        None => SourceError::NotAnImage {
            path: origin.clone(),
            reason: format!("not a readable tar archive ({})", printable_error(e)),
        },
    };
    let (counted, position) = Counted::new(reader);
    let mut archive = tar::Archive::new(counted);
    let mut bounds = EntryBounds::default();
    let mut members = HashMap::new();
    let mut small = HashMap::new();
    let mut streamed = Vec::new();
    let mut buffered = 0u64;
    for entry in archive.entries().map_err(not_tar)? {
        let mut entry = match entry {
            Ok(entry) => entry,
            // As Go's archive/tar (and so `docker load`) reads it.
            Err(e) if bounds.judge(&e, position.get()) == StreamEnd::EndOfArchive => break,
            Err(e) if members.is_empty() && ExpansionBudget::exceeded(&e).is_none() => {
                return Err(SourceError::NotAnImage {
                    path: origin.clone(),
                    reason: format!("its content is not a tar archive ({})", printable_error(e)),
                });
            }
            Err(e) => {
                return Err(match bounds.judge(&e, position.get()) {
                    StreamEnd::InsideData | StreamEnd::InsideHeader => SourceError::invalid(
                        origin.display().to_string(),
                        "the archive is truncated (it ends inside a member or a header)",
                    ),
                    _ => not_tar(e),
                });
            }
        };
        bounds.entered(entry.raw_file_position(), entry.size());
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
