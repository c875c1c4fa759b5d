//! The layer facts cache: what walking one layer learned, kept between scans so that a rescan
//! of a rebuilt image walks only its new layers.
//!
//! **What an entry holds**: exactly what the apply loop, the efficiency pass, the secrets list
//! and the layer report take from a walk — the layer's changes in their [`ChangeBuffer`] byte
//! form (paths, metadata, links), the facts of its files ([`drydock_facts::codec`]: ELF facts,
//! certificates, scripts, captured configuration files, and secrets as kind and place only —
//! `SecretFacts` never holds a value, so no credential reaches the disk), the secrets found
//! (path, kind, place) and the walk's measurements (compression, blob digest and size, diff id,
//! tar size). The tree, the checks and the report are always computed fresh, so findings never
//! go stale when checks change.
//!
//! **Key**: the layer's diff id, in a directory named by [`version`] (the entry format, the
//! change encoding, the facts encoding and the crate versions): any change to facts, hooks or
//! encodings starts a new directory and old entries are never read. The diff id comes from the
//! image config, itself verified against its digest, so the key is known before any layer blob
//! is read. A blob's digest differs between compressed forms of one diff id, and the report
//! shows the blob's digest and size, so an entry is used only when the manifest names the very
//! blob (digest, and size when given) that was walked to fill it; a layer whose manifest gives
//! no digest is always walked.
//!
//! **Trust**: an entry is written only after the walk's digests checked out against the image
//! (`Layer::verify`), and read only when its header names the same key and blob and a sha256 of
//! the whole entry matches its trailer; the body must then decode to its end. Anything else is
//! logged and ignored: the layer is walked again and the entry overwritten. On a hit the blob
//! is not read at all, which is the saving; that trusts that the blob the manifest's digest
//! names is the one walked before (the same trust as the blob cache's content addressing).
//!
//! **Layout**: `<cache-dir>/facts/<version>/sha256/<diff id hex>`, beside the blob cache's
//! `blobs/`; file names come only from a diff id that is 64 hex digits; written under a
//! temporary name and renamed into place, so concurrent scans never see half an entry. Or, when
//! the caller gives one, a [`FactsStore`] (`drydock serve`'s database, shared by its replicas)
//! keyed by version and diff id, holding the same bytes, checked the same way.
//!
//! **Format**: `MAGIC`, then (as [`codec::Writer`] writes them) the version, the diff id, the
//! blob digest, blob size, tar size, compression; then the body (the change bytes, the facts,
//! the secrets); then the sha256 of everything before it.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use drydock_checks::LayerSecret;
use drydock_facts::FileFacts;
use drydock_facts::codec::{self, Reader, Writer};
use drydock_layers::{ChangeBuffer, Compression, LayerWalk, Sha256Digest};

const MAGIC: &[u8; 14] = b"drydock-facts\n";
/// The layout of an entry (header, body, trailer).
const FORMAT: u32 = 1;
/// Headers are small (a version and three digests): this much is read to look one up.
const HEADER_READ: u64 = 1024;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The name of the directory of this build's entries.
pub(crate) fn version() -> String {
    format!(
        "{FORMAT}.{}.{}-facts{}-layers{}-scan{}",
        ChangeBuffer::<FileFacts>::ENCODING,
        codec::VERSION,
        codec::CRATE_VERSION,
        ChangeBuffer::<FileFacts>::CRATE_VERSION,
        env!("CARGO_PKG_VERSION"),
    )
}

fn hex_of(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

fn parse_digest(digest: &str) -> Option<Sha256Digest> {
    let hex = hex_of(digest)?;
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Sha256Digest(out))
}

fn compression_code(compression: Compression) -> u8 {
    match compression {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Zstd => 2,
        Compression::Bzip2 => 3,
        Compression::Xz => 4,
    }
}

fn compression_of(code: u8) -> Option<Compression> {
    Some(match code {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Zstd,
        3 => Compression::Bzip2,
        4 => Compression::Xz,
        _ => return None,
    })
}

/// A layer as its entry gives it back: the walk's measurements (no changes in the list), its
/// changes, and its secrets (with layer 0; the caller numbers them).
#[derive(Debug)]
pub(crate) struct Entry {
    pub walk: LayerWalk<FileFacts>,
    pub changes: ChangeBuffer<FileFacts>,
    pub secrets: Vec<LayerSecret>,
}

/// The header of an entry, read without its body.
fn header(r: &mut Reader<'_>, version: &str) -> Option<LayerWalk<FileFacts>> {
    if r.bytes.get(..MAGIC.len())? != MAGIC {
        return None;
    }
    r.at = MAGIC.len();
    if r.string()? != version {
        return None;
    }
    let diff_id = parse_digest(&r.string()?)?;
    let blob_digest = parse_digest(&r.string()?)?;
    let blob_size = r.varint()?;
    let tar_size = r.varint()?;
    let compression = compression_of(r.byte()?)?;
    Some(LayerWalk {
        compression,
        blob_digest,
        blob_size,
        diff_id,
        tar_size,
        changes: Vec::new(),
    })
}

/// The whole entry, `Err` with the reason it is not believed.
fn decode(bytes: &[u8], version: &str, diff_id: &str) -> Result<Entry, &'static str> {
    let body_end = bytes
        .len()
        .checked_sub(32)
        .ok_or("shorter than its checksum")?;
    if Sha256Digest::of(&bytes[..body_end]).0[..] != bytes[body_end..] {
        return Err("its checksum does not match");
    }
    let mut r = Reader::new(&bytes[..body_end]);
    let walk = header(&mut r, version).ok_or("its header is not this version's")?;
    if walk.diff_id.to_string() != diff_id {
        return Err("it is another layer's");
    }
    let change_bytes = r.bytes().ok_or("truncated changes")?.to_vec();
    let facts_count = r.count().ok_or("truncated facts")?;
    let mut facts = Vec::with_capacity(facts_count);
    for _ in 0..facts_count {
        facts.push(codec::decode(&mut r).ok_or("a fact does not decode")?);
    }
    let changes = ChangeBuffer::from_raw(change_bytes, facts).ok_or("the changes do not decode")?;
    let secrets_count = r.count().ok_or("truncated secrets")?;
    let mut secrets = Vec::with_capacity(secrets_count);
    for _ in 0..secrets_count {
        let mut field = || r.string().ok_or("a secret does not decode");
        secrets.push(LayerSecret {
            layer: 0,
            path: field()?,
            kind: field()?,
            detail: field()?,
        });
    }
    if !r.done() {
        return Err("bytes after its end");
    }
    Ok(Entry {
        walk,
        changes,
        secrets,
    })
}

/// The bytes of an entry; `None` when a fact cannot be encoded exactly.
fn encode(
    version: &str,
    walk: &LayerWalk<FileFacts>,
    changes: &ChangeBuffer<FileFacts>,
    secrets: &[LayerSecret],
) -> Option<Vec<u8>> {
    let mut w = Writer::default();
    w.out.extend_from_slice(MAGIC);
    w.str(version);
    w.str(&walk.diff_id.to_string());
    w.str(&walk.blob_digest.to_string());
    w.varint(walk.blob_size);
    w.varint(walk.tar_size);
    w.byte(compression_code(walk.compression));
    let (bytes, facts) = changes.raw();
    w.bytes(bytes);
    w.varint(facts.len() as u64);
    for fact in facts {
        codec::encode(fact, &mut w)?;
    }
    w.varint(secrets.len() as u64);
    for secret in secrets {
        w.str(&secret.path);
        w.str(&secret.kind);
        w.str(&secret.detail);
    }
    let sum = Sha256Digest::of(&w.out);
    w.out.extend_from_slice(&sum.0);
    Some(w.out)
}

/// Where entries are kept, when not in a directory: a store the caller provides, keyed by
/// the entry version and the diff id (`drydock serve` keeps them in its database, so that
/// every replica sharing it walks a layer once). The store holds bytes only: every entry it
/// gives back is checked exactly as one read from a file is, so a store can lose, damage or
/// mix up entries without a scan ever believing one.
pub trait FactsStore: Send + Sync + std::fmt::Debug {
    /// The first `len` bytes (or fewer, when it is shorter) of the entry under `key`.
    fn head(&self, key: &FactsKey<'_>, len: usize) -> Option<Vec<u8>>;
    /// The entry under `key`, whole.
    fn get(&self, key: &FactsKey<'_>) -> Option<Vec<u8>>;
    /// Stores `entry` under `key`, replacing what was there; `false` when it could not.
    fn put(&self, key: &FactsKey<'_>, entry: &[u8]) -> bool;
    /// Takes on the walk of the layer under `key` for every scanner sharing the store, so that
    /// a layer wanted by several scans at once is walked once: `Some(guard)` when no other
    /// scanner has it now (the guard gives it up when dropped, and the store must give it up
    /// by itself when the holder's process dies), `None` when another one walks it now. A
    /// store that cannot tell answers `Some`: a layer walked twice is only slower.
    fn claim(&self, key: &FactsKey<'_>) -> Option<Box<dyn Send>> {
        let _ = key;
        Some(Box::new(()))
    }
}

/// The layers some scan of this process is walking for a facts cache, by cache and key.
static WALKING: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// A layer's walk taken on by this scan ([`FactsCache::claim`]): the other scans that want
/// the layer wait for its entry until this is dropped, once the entry is written or the walk
/// failed.
pub(crate) struct Claim {
    /// In [`WALKING`], when the key is one.
    local: Option<String>,
    /// The store's guard, for the scanners of other processes.
    _shared: Option<Box<dyn Send>>,
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claim").field("local", &self.local).finish()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(key) = self.local.take() {
            let mut walking = WALKING.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(at) = walking.iter().position(|k| *k == key) {
                walking.swap_remove(at);
            }
        }
    }
}

/// What a scan does about a layer the facts cache has no entry for.
#[derive(Debug)]
pub(crate) enum Turn {
    /// Walk it: no other scan is walking it.
    Walk(Claim),
    /// Another scan is walking it: wait for its entry ([`FactsCache::wait_for`]).
    Wait,
}

/// What waiting for another scan's walk gave.
#[derive(Debug)]
pub(crate) enum Waited {
    /// Its entry, found as [`FactsCache::probe`] finds one.
    Cached(LayerWalk<FileFacts>),
    /// No entry (the other walk failed, or its store lost it): walk the layer.
    Walk(Claim),
}

/// The key of an entry in a [`FactsStore`].
#[derive(Debug, Clone, Copy)]
pub struct FactsKey<'a> {
    /// The entry format and the versions of everything that made it: entries of another
    /// version are never read (a store may prune them).
    pub version: &'a str,
    /// The layer's diff id, `sha256:` and 64 lowercase hex digits.
    pub diff_id: &'a str,
}

#[derive(Debug, Clone)]
enum Backend {
    /// `<root>/facts/<version>/sha256/`.
    Dir(PathBuf),
    Store(std::sync::Arc<dyn FactsStore>),
}

/// Why [`FactsCache::read`] gave no entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// None stored (or none reachable).
    Absent,
    /// One was stored and is not believed: damaged, another version's or another layer's.
    Ignored,
}

/// The layer facts cache: a directory of entries, `<root>/facts/<version>/sha256/<hex>`, or
/// a [`FactsStore`].
#[derive(Debug, Clone)]
pub(crate) struct FactsCache {
    backend: Backend,
    version: String,
}

impl FactsCache {
    /// The facts cache beside the blob cache whose root is `root`.
    pub fn new(root: &Path) -> Self {
        let version = version();
        Self {
            backend: Backend::Dir(root.join("facts").join(&version).join("sha256")),
            version,
        }
    }

    /// The facts cache in `store`.
    pub fn in_store(store: std::sync::Arc<dyn FactsStore>) -> Self {
        Self {
            backend: Backend::Store(store),
            version: version(),
        }
    }

    fn path(dir: &Path, diff_id: &str) -> Option<PathBuf> {
        Some(dir.join(hex_of(diff_id)?))
    }

    fn key<'a>(&'a self, diff_id: &'a str) -> Option<FactsKey<'a>> {
        hex_of(diff_id)?;
        Some(FactsKey {
            version: &self.version,
            diff_id,
        })
    }

    /// What the entry for `diff_id` says of the walk, when it has one for the blob `digest`
    /// (of `size` bytes, when the manifest gives it). Only the header is read: the whole
    /// entry is checked by [`FactsCache::read`] when its turn comes.
    pub fn probe(
        &self,
        diff_id: &str,
        digest: &str,
        size: Option<u64>,
    ) -> Option<LayerWalk<FileFacts>> {
        let head = match &self.backend {
            Backend::Dir(dir) => {
                let mut head = Vec::new();
                File::open(Self::path(dir, diff_id)?)
                    .ok()?
                    .take(HEADER_READ)
                    .read_to_end(&mut head)
                    .ok()?;
                head
            }
            Backend::Store(store) => store.head(&self.key(diff_id)?, HEADER_READ as usize)?,
        };
        let walk = header(&mut Reader::new(&head), &self.version);
        let hit = walk.filter(|walk| {
            walk.diff_id.to_string() == diff_id
                && walk.blob_digest.to_string() == digest
                && size.is_none_or(|size| size == walk.blob_size)
        });
        if hit.is_none() {
            log::debug!("{diff_id}: the facts cache has no entry for blob {digest}");
        }
        hit
    }

    /// Takes on the walk of `diff_id`, unless another scan (of this process, or of another
    /// sharing the store) is walking it now.
    pub fn claim(&self, diff_id: &str) -> Turn {
        let Some(key) = self.key(diff_id) else {
            // Not a key the cache can hold: nobody waits for it.
            return Turn::Walk(Claim {
                local: None,
                _shared: None,
            });
        };
        let local = match &self.backend {
            Backend::Dir(dir) => format!("{}\0{diff_id}", dir.display()),
            // Any store: callers make one per scan (`drydock serve` does), and a store's own
            // claim may not tell this process's scans apart (PostgreSQL's advisory locks are
            // taken again by the session that holds them).
            Backend::Store(_) => format!("store\0{}\0{diff_id}", self.version),
        };
        {
            let mut walking = WALKING.lock().unwrap_or_else(|e| e.into_inner());
            if walking.contains(&local) {
                return Turn::Wait;
            }
            walking.push(local.clone());
        }
        let mut claim = Claim {
            local: Some(local),
            _shared: None,
        };
        if let Backend::Store(store) = &self.backend {
            match store.claim(&key) {
                Some(guard) => claim._shared = Some(guard),
                // Dropping `claim` gives the local key up.
                None => return Turn::Wait,
            }
        }
        Turn::Walk(claim)
    }

    /// Waits while another scan walks `diff_id` (see [`FactsCache::claim`]), looking for its
    /// entry for the blob `digest` now and then: the entry once it is written, or the walk to
    /// take on when the other scan gave it up without one. `meanwhile` is called, when given,
    /// between looks.
    pub fn wait_for(
        &self,
        diff_id: &str,
        digest: &str,
        size: Option<u64>,
        meanwhile: Option<&(dyn Fn() + Send + Sync)>,
    ) -> Waited {
        let mut pause = std::time::Duration::from_millis(5);
        loop {
            if let Some(walk) = self.probe(diff_id, digest, size) {
                return Waited::Cached(walk);
            }
            if let Turn::Walk(claim) = self.claim(diff_id) {
                // The other scan may have written it just before giving it up.
                return match self.probe(diff_id, digest, size) {
                    Some(walk) => Waited::Cached(walk),
                    None => Waited::Walk(claim),
                };
            }
            if let Some(meanwhile) = meanwhile {
                meanwhile();
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(std::time::Duration::from_millis(100));
        }
    }

    /// The entry for `diff_id`, whole and checked; why not otherwise (logged when ignored).
    pub fn read(&self, diff_id: &str) -> Result<Entry, Miss> {
        let bytes = match &self.backend {
            Backend::Dir(dir) => {
                fs::read(Self::path(dir, diff_id).ok_or(Miss::Absent)?).map_err(|_| Miss::Absent)?
            }
            Backend::Store(store) => store
                .get(&self.key(diff_id).ok_or(Miss::Absent)?)
                .ok_or(Miss::Absent)?,
        };
        match decode(&bytes, &self.version, diff_id) {
            Ok(entry) => {
                log::debug!("{diff_id}: from the facts cache");
                Ok(entry)
            }
            Err(reason) => {
                log::info!(
                    "{diff_id}: the facts cache entry is ignored ({reason}); walking the layer"
                );
                Err(Miss::Ignored)
            }
        }
    }

    /// Stores what a verified walk learned; `true` when it is stored. A write failure loses
    /// the entry, never the scan.
    pub fn write(
        &self,
        walk: &LayerWalk<FileFacts>,
        changes: &ChangeBuffer<FileFacts>,
        secrets: &[LayerSecret],
    ) -> bool {
        let diff_id = walk.diff_id.to_string();
        let Some(bytes) = encode(&self.version, walk, changes, secrets) else {
            log::debug!("{diff_id}: a fact the facts cache cannot hold; not cached");
            return false;
        };
        match &self.backend {
            Backend::Dir(dir) => {
                let Some(target) = Self::path(dir, &diff_id) else {
                    return false;
                };
                match write_atomically(dir, &target, &bytes) {
                    Ok(()) => true,
                    Err(e) => {
                        log::debug!("{diff_id}: not written to the facts cache: {e}");
                        false
                    }
                }
            }
            Backend::Store(store) => self
                .key(&diff_id)
                .is_some_and(|key| store.put(&key, &bytes)),
        }
    }
}

fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    let temp = dir.join(format!(
        ".tmp-{}-{}-{name}",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let written = File::create(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.flush()
    });
    let renamed = written.and_then(|()| fs::rename(&temp, target));
    if renamed.is_err() {
        let _ = fs::remove_file(&temp);
    }
    renamed
}

#[cfg(test)]
mod tests {
    use drydock_facts::SecretFacts;
    use drydock_layers::{Change, EntryMeta, FileKind};

    use super::*;

    fn sample() -> (
        LayerWalk<FileFacts>,
        ChangeBuffer<FileFacts>,
        Vec<LayerSecret>,
    ) {
        let mut changes = ChangeBuffer::new();
        changes.push(Change::Add {
            path: b"app/.env".to_vec(),
            kind: FileKind::File,
            meta: EntryMeta::default(),
            link: None,
            fact: Some(FileFacts::Secret(SecretFacts {
                kind: ".env credentials".into(),
                detail: "API_TOKEN (line 1)".into(),
            })),
        });
        changes.push(Change::Whiteout {
            path: b"etc/old".to_vec(),
        });
        let walk = LayerWalk {
            compression: Compression::Gzip,
            blob_digest: Sha256Digest::of(b"blob"),
            blob_size: 1234,
            diff_id: Sha256Digest::of(b"tar"),
            tar_size: 10240,
            changes: Vec::new(),
        };
        let secrets = vec![LayerSecret {
            layer: 0,
            path: "/app/.env".into(),
            kind: ".env credentials".into(),
            detail: "API_TOKEN (line 1)".into(),
        }];
        (walk, changes, secrets)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("drydock-facts-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn an_entry_comes_back_as_it_went_in() {
        let (walk, changes, secrets) = sample();
        let bytes = encode("v", &walk, &changes, &secrets).unwrap();
        let entry = decode(&bytes, "v", &walk.diff_id.to_string()).unwrap();
        assert_eq!(entry.walk.blob_digest, walk.blob_digest);
        assert_eq!(entry.walk.blob_size, 1234);
        assert_eq!(entry.walk.tar_size, 10240);
        assert_eq!(entry.walk.compression, Compression::Gzip);
        assert_eq!(entry.secrets.len(), 1);
        assert_eq!(entry.secrets[0].detail, "API_TOKEN (line 1)");
        let back: Vec<String> = entry
            .changes
            .into_changes()
            .map(|c| format!("{c:?}"))
            .collect();
        let want: Vec<String> = changes.into_changes().map(|c| format!("{c:?}")).collect();
        assert_eq!(back, want);
    }

    #[test]
    fn any_damage_another_version_or_another_key_is_refused() {
        let (walk, changes, secrets) = sample();
        let key = walk.diff_id.to_string();
        let bytes = encode("v", &walk, &changes, &secrets).unwrap();
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            assert!(decode(&damaged, "v", &key).is_err(), "byte {at} flipped");
        }
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut], "v", &key).is_err(), "cut at {cut}");
        }
        assert!(decode(&bytes, "w", &key).is_err());
        assert!(decode(&bytes, "v", &Sha256Digest::of(b"other").to_string()).is_err());
    }

    #[test]
    fn probe_matches_key_blob_digest_and_size() {
        let root = temp_dir("probe");
        let cache = FactsCache::new(&root);
        let (walk, changes, secrets) = sample();
        let key = walk.diff_id.to_string();
        let blob = walk.blob_digest.to_string();
        assert!(cache.probe(&key, &blob, None).is_none());
        assert!(cache.write(&walk, &changes, &secrets));
        assert!(cache.probe(&key, &blob, Some(1234)).is_some());
        assert!(cache.probe(&key, &blob, None).is_some());
        assert!(cache.probe(&key, &blob, Some(1235)).is_none());
        let other = Sha256Digest::of(b"gzip -9").to_string();
        assert!(cache.probe(&key, &other, None).is_none());
        assert!(cache.read(&key).is_ok());
        // Only hex file names, under the cache directory.
        assert!(
            cache
                .probe("sha256:../../etc/passwd", &blob, None)
                .is_none()
        );
        let Backend::Dir(dir) = &cache.backend else {
            unreachable!()
        };
        assert!(FactsCache::path(dir, "sha256:ABCDEF").is_none());
        let files: Vec<_> = fs::read_dir(dir).unwrap().flatten().collect();
        assert_eq!(files.len(), 1, "no temporary file left behind");
        // A damaged file is read as nothing.
        let path = FactsCache::path(dir, &key).unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 40;
        bytes[last] ^= 0x80;
        fs::write(&path, &bytes).unwrap();
        assert_eq!(cache.read(&key).unwrap_err(), Miss::Ignored);
        fs::remove_dir_all(&root).unwrap();
    }

    /// A store that answers whatever it holds under a key, and can be made to lie.
    #[derive(Debug, Default)]
    struct MemoryStore(std::sync::Mutex<std::collections::HashMap<String, Vec<u8>>>);

    impl FactsStore for MemoryStore {
        fn head(&self, key: &FactsKey<'_>, len: usize) -> Option<Vec<u8>> {
            self.get(key).map(|mut bytes| {
                bytes.truncate(len);
                bytes
            })
        }
        fn get(&self, key: &FactsKey<'_>) -> Option<Vec<u8>> {
            let map = self.0.lock().unwrap();
            map.get(&format!("{}/{}", key.version, key.diff_id))
                .cloned()
        }
        fn put(&self, key: &FactsKey<'_>, entry: &[u8]) -> bool {
            let mut map = self.0.lock().unwrap();
            map.insert(format!("{}/{}", key.version, key.diff_id), entry.to_vec());
            true
        }
    }

    #[test]
    fn a_store_backed_cache_checks_what_the_store_gives_back() {
        let store = std::sync::Arc::new(MemoryStore::default());
        let cache = FactsCache::in_store(store.clone());
        let (walk, changes, secrets) = sample();
        let key = walk.diff_id.to_string();
        let blob = walk.blob_digest.to_string();
        assert!(cache.probe(&key, &blob, None).is_none());
        assert_eq!(cache.read(&key).unwrap_err(), Miss::Absent);
        assert!(cache.write(&walk, &changes, &secrets));
        assert!(cache.probe(&key, &blob, Some(1234)).is_some());
        assert!(cache.probe(&key, &blob, Some(1)).is_none());
        assert_eq!(cache.read(&key).unwrap().secrets.len(), 1);
        // Only well-formed diff ids become keys.
        assert!(cache.probe("sha256:ABC", &blob, None).is_none());

        let stored = format!("{}/{key}", version());
        // Damaged in the store: read as nothing, never believed.
        let good = store.0.lock().unwrap()[&stored].clone();
        let mut damaged = good.clone();
        let at = damaged.len() / 2;
        damaged[at] ^= 0x04;
        store.0.lock().unwrap().insert(stored.clone(), damaged);
        assert_eq!(cache.read(&key).unwrap_err(), Miss::Ignored);
        // Another layer's entry under this key: refused.
        let other = Sha256Digest::of(b"another tar");
        let mut other_walk = sample().0;
        other_walk.diff_id = other;
        let other_entry = encode(&version(), &other_walk, &changes, &secrets).unwrap();
        store.0.lock().unwrap().insert(stored.clone(), other_entry);
        assert!(cache.probe(&key, &blob, None).is_none());
        assert_eq!(cache.read(&key).unwrap_err(), Miss::Ignored);
        // Written again, it is read again.
        assert!(cache.write(&walk, &changes, &secrets));
        assert_eq!(store.0.lock().unwrap()[&stored], good);
    }
}
